package safefs

import (
	"crypto/rand"
	"fmt"
	"io/fs"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// Names in a RunDir parent: a run's directory is published as run-* only
// once its owner holds the flock on it; before that it is a .new-* entry.
const (
	runPrefix = "run-"
	newPrefix = ".new-"
	// newGrace is how old an unpublished .new-* directory must be before
	// a sweep takes it for the leftover of a run killed while starting.
	newGrace = time.Minute
)

// RunDir is a private directory for one run of a command, below a parent
// shared by all runs (e.g. /run/nodeboot-exec-0). Its owner holds an
// exclusive flock on it for as long as it lives; the kernel drops the lock
// when the owner dies, however it dies (SIGKILL included), and the next
// NewRunDir in the same parent removes what the dead run left.
type RunDir struct {
	parent *Dir
	fd     int // the run's directory, flocked
	name   string
}

// NewRunDir makes a new run directory (mode 0700) below parent, which it
// creates (0700) when missing and checks as OpenDir does. First it removes
// the directories of runs whose owner is dead, and returns their paths.
func NewRunDir(parent string) (_ *RunDir, swept []string, _ error) {
	p, err := OpenDir(parent, DirOptions{Create: true, Perm: 0o700})
	if err != nil {
		return nil, nil, err
	}
	ok := false
	defer func() {
		if !ok {
			p.Close()
		}
	}()
	swept, err = sweep(p, time.Now())
	if err != nil {
		return nil, swept, err
	}
	// Make it under a name sweeps leave alone, lock it, then publish it.
	tmp := newPrefix + rand.Text()[:16]
	if err := MkdirAt(p.fd, tmp, 0o700); err != nil {
		return nil, swept, fmt.Errorf("make a run directory in %s: %w", p.path, err)
	}
	fd, err := Openat(p.fd, tmp, DirFlags, 0)
	if err == nil {
		err = IgnoringEINTR(func() error { return unix.Flock(fd, unix.LOCK_EX|unix.LOCK_NB) })
		if err != nil {
			unix.Close(fd)
		}
	}
	name := runPrefix + rand.Text()[:16]
	if err == nil {
		err = renameat(p.fd, tmp, name, 0)
		if err != nil {
			unix.Close(fd)
		}
	}
	if err != nil {
		RemoveAllAt(p.fd, tmp)
		return nil, swept, fmt.Errorf("make a run directory in %s: %w", p.path, err)
	}
	ok = true
	return &RunDir{parent: p, fd: fd, name: name}, swept, nil
}

// sweep removes the run directories below p whose owner is dead: those
// whose flock it can take. An unpublished one counts as dead once it is
// older than newGrace.
func sweep(p *Dir, now time.Time) ([]string, error) {
	names, err := ReadDirNames(p.fd)
	if err != nil {
		return nil, &fs.PathError{Op: "list", Path: p.path, Err: err}
	}
	var swept []string
	for _, n := range names {
		isRun, isNew := strings.HasPrefix(n, runPrefix), strings.HasPrefix(n, newPrefix)
		if !isRun && !isNew {
			continue
		}
		fd, err := Openat(p.fd, n, DirFlags, 0)
		if err != nil {
			continue // gone meanwhile, or not a directory: not ours
		}
		if isNew {
			var st unix.Stat_t
			if unix.Fstat(fd, &st) != nil || now.Sub(time.Unix(st.Ctim.Unix())) < newGrace {
				unix.Close(fd)
				continue
			}
		}
		if IgnoringEINTR(func() error { return unix.Flock(fd, unix.LOCK_EX|unix.LOCK_NB) }) != nil {
			unix.Close(fd) // its owner lives
			continue
		}
		// Holding the lock, nobody else can be sweeping it or own it.
		err = RemoveAllAt(p.fd, n)
		unix.Close(fd)
		if err != nil {
			return swept, fmt.Errorf("remove %s/%s, left by a run that died: %w", p.path, n, err)
		}
		swept = append(swept, join(p.path, n))
	}
	return swept, nil
}

// Path is the run directory's absolute path.
func (r *RunDir) Path() string { return join(r.parent.path, r.name) }

// Remove removes the run directory and everything in it, and drops its
// lock.
func (r *RunDir) Remove() error {
	if r.fd < 0 {
		return nil
	}
	err := RemoveAllAt(r.parent.fd, r.name)
	unix.Close(r.fd)
	r.fd = -1
	r.parent.Close()
	if err != nil {
		return fmt.Errorf("remove %s: %w", r.Path(), err)
	}
	return nil
}
