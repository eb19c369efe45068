package safefs

import (
	"io/fs"
	"path/filepath"

	"golang.org/x/sys/unix"
)

// WriteFile replaces the file path with data atomically, as WriteFileAt
// does. The directory is opened as named (its caller checked it, with
// OpenDir, when it was made); the file itself is never followed.
func WriteFile(path string, data []byte, perm uint32, opts WriteOptions) error {
	dir, name := filepath.Split(path)
	if dir == "" {
		dir = "."
	}
	dfd, err := Openat(unix.AT_FDCWD, dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return &fs.PathError{Op: "open", Path: dir, Err: err}
	}
	defer unix.Close(dfd)
	if opts.Path == "" {
		opts.Path = path
	}
	return WriteFileAt(dfd, name, data, perm, opts)
}
