package instance

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"
)

// Check returns the instance at dataDir once it has checked, creating and
// changing nothing, that Open would succeed there: an existing data
// directory must pass Open's checks (a real directory of ours that only we
// can write, on a writable filesystem); a missing one must be creatable:
// its nearest existing ancestor is a directory we may write, on a
// filesystem that holds ordinary files (not proc, sysfs, a cgroup
// filesystem, and not mounted read-only). "nodeboot up" calls it before
// anything else looks at the data directory, so that a bad --data-dir is
// reported as such, and not as a missing DATA-DIR/bin/k3s.
func Check(dataDir string) (*Instance, error) {
	in, err := At(dataDir)
	if err != nil {
		return nil, err
	}
	fi, err := os.Lstat(in.Dir)
	switch {
	case err == nil:
		if err := checkPrivate(in.Dir, fi); err != nil {
			return nil, fmt.Errorf("data dir %s: %w", in.Dir, err)
		}
		if err := checkFilesystem(in.Dir, in.Dir); err != nil {
			return nil, err
		}
		return in, nil
	case !errors.Is(err, fs.ErrNotExist) && !errors.Is(err, unix.ENOTDIR):
		return nil, fmt.Errorf("data dir %s: %w", in.Dir, err)
	}
	// Missing: Open creates it and any missing parents below the nearest
	// ancestor that exists.
	anc := filepath.Dir(in.Dir)
	for {
		afi, err := os.Stat(anc)
		if err == nil {
			if !afi.IsDir() {
				return nil, fmt.Errorf("data dir %s: %s is not a directory; pick another --data-dir", in.Dir, anc)
			}
			break
		}
		if !errors.Is(err, fs.ErrNotExist) && !errors.Is(err, unix.ENOTDIR) {
			return nil, fmt.Errorf("data dir %s: %w", in.Dir, err)
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
