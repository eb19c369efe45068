package instance

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"

	"github.com/nodeboot/nodeboot/internal/safefs"
)

// Check returns the instance at dataDir once it has checked, creating and
// changing nothing, that Open would succeed there: an existing data
// directory must pass Open's checks (StrictModes, the marker or an empty
// or earlier nodeboot's directory) and be on a writable filesystem for
// ordinary files; for a missing one, the part of its path that exists
// must pass them as parents, and the nearest existing directory must be
// one we may write in, on such a filesystem (not proc, sysfs, a cgroup
// filesystem, nor mounted read-only). "nodeboot up" calls it before
// anything else looks at the data directory, so that a bad --data-dir is
// reported as such, and not as a missing DATA-DIR/bin/k3s.
func Check(dataDir string) (*Instance, error) {
	in, err := At(dataDir)
	if err != nil {
		return nil, err
	}
	if err := checkNotSlash(in.Dir); err != nil {
		return nil, err
	}
	d, err := safefs.OpenDir(in.Dir, safefs.DirOptions{})
	switch {
	case err == nil:
		defer d.Close()
		if _, err := claimable(d); err != nil {
			return nil, err
		}
		if err := checkFilesystem(in.Dir, in.Dir); err != nil {
			return nil, err
		}
		return in, nil
	case !errors.Is(err, fs.ErrNotExist):
		return nil, fmt.Errorf("data dir %s: %w", in.Dir, dirError(err))
	}
	// Missing: OpenDir checked what exists of the path on the way. Open
	// creates the rest below the nearest existing directory.
	anc := filepath.Dir(in.Dir)
	for {
		if _, err := os.Stat(anc); err == nil {
			break
		}
		anc = filepath.Dir(anc)
	}
	if err := checkFilesystem(in.Dir, anc); err != nil {
		return nil, err
	}
	if err := unix.Access(anc, unix.W_OK|unix.X_OK); err != nil {
		return nil, fmt.Errorf("data dir %s: cannot create it: %s is not writable by you (uid %d): %w; pick another --data-dir", in.Dir, anc, os.Geteuid(), err)
	}
	return in, nil
}

// pseudoFS are the filesystems that hold no ordinary files: a data
// directory cannot live there (mkdir fails, or makes something else).
var pseudoFS = map[int64]string{
	unix.PROC_SUPER_MAGIC:    "proc",
	unix.SYSFS_MAGIC:         "sysfs",
	unix.CGROUP_SUPER_MAGIC:  "cgroup",
	unix.CGROUP2_SUPER_MAGIC: "cgroup2",
	unix.DEBUGFS_MAGIC:       "debugfs",
	unix.TRACEFS_MAGIC:       "tracefs",
	unix.SECURITYFS_MAGIC:    "securityfs",
	unix.BPF_FS_MAGIC:        "bpf",
	unix.DEVPTS_SUPER_MAGIC:  "devpts",
}

// checkFilesystem checks that path (the data dir dir or its nearest
// existing ancestor) is on a writable filesystem for ordinary files.
func checkFilesystem(dir, path string) error {
	var st unix.Statfs_t
	if err := unix.Statfs(path, &st); err != nil {
		return fmt.Errorf("data dir %s: statfs %s: %w", dir, path, err)
	}
	if name, ok := pseudoFS[int64(st.Type)]; ok {
		return fmt.Errorf("data dir %s: %s is on %s, a kernel filesystem that cannot hold a node's files; pick a directory on a disk, e.g. --data-dir %s", dir, path, name, DefaultDataDir)
	}
	if st.Flags&unix.ST_RDONLY != 0 {
		return fmt.Errorf("data dir %s: %s is on a read-only filesystem; pick a writable directory, e.g. --data-dir %s", dir, path, DefaultDataDir)
	}
	return nil
}
