package manifests

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"

	"golang.org/x/sys/unix"

	"github.com/nodeboot/nodeboot/internal/safefs"
)

// WriteAutoDeploy writes objs as YAML into k3s's auto-deploy directory dir
// (<k3s-data-dir>/server/manifests; created 0700 when missing), one file
// per source file, named nodeboot-<base>.yaml, which k3s applies by itself.
//
// Safety: dir is checked as sshd's StrictModes does (safefs.OpenDir): it
// must be ours and writable only by us, no directory above it may be
// replaceable by another user, and no symlink on the way is followed.
// Files are opened through dir's descriptor with O_NOFOLLOW, written to a
// temporary name (mode 0600) and renamed into place, so k3s never reads
// half a file and a planted symlink is never followed. An existing file is
// replaced only when it starts with nodeboot's marker line; anything else
// (a symlink, a file of the user's) is an error naming it, and nothing is
// written. Files of earlier runs whose source is gone are left alone.
func WriteAutoDeploy(dir string, objs []Object) error {
	if len(objs) == 0 {
		return nil
	}
	files, err := autoDeployFiles(objs)
	if err != nil {
		return err
	}
	// k3s applies whatever lands in the directory, with its own rights.
	d, err := safefs.OpenDir(dir, safefs.DirOptions{Create: true, Perm: 0o700, ParentPerm: 0o700})
	if errors.Is(err, safefs.ErrUnsafePath) {
		return fmt.Errorf("write auto-deploy manifests (k3s applies whatever lands there): %w", err)
	}
	if err != nil {
		return fmt.Errorf("write auto-deploy manifests: %w", err)
	}
	defer d.Close()
	// Check every file before writing any, so a refusal leaves the
	// directory as it was.
	exists := make([]bool, len(files))
	for i, f := range files {
		if exists[i], err = ours(d.FD(), f.name); err != nil {
			return fmt.Errorf("write auto-deploy manifests: %s/%s: %w", d.Path(), f.name, err)
		}
	}
	for i, f := range files {
		// No .yaml in the temporary name: k3s ignores it. When name did
		// not exist, the rename refuses to replace anything that
		// appeared since.
		err := safefs.WriteFileAt(d.FD(), f.name, f.data, 0o600, safefs.WriteOptions{
			Sync: true, NoReplace: !exists[i], TempPrefix: ".nodeboot-", Path: d.Path() + "/" + f.name})
		if errors.Is(err, fs.ErrExist) {
			err = errors.New("appeared while nodeboot was writing; not replaced")
		}
		if err != nil {
			return fmt.Errorf("write auto-deploy manifests: %s/%s: %w", d.Path(), f.name, err)
		}
	}
	return nil
}

// ours reports whether name exists in dfd, and fails when it exists but
// nodeboot did not write it.
func ours(dfd int, name string) (bool, error) {
	var st unix.Stat_t
	fd, err := safefs.OpenRegularAt(dfd, name, name, &st)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return false, nil
	case errors.Is(err, safefs.ErrSymlink):
		return true, errors.New("is a symlink, which nodeboot neither follows nor replaces; remove it")
	case errors.Is(err, safefs.ErrNotRegular):
		return true, errors.New("exists and is not a regular file; nodeboot does not replace it")
	case err != nil:
		return true, err
	}
	defer unix.Close(fd)
	// The marker is the first line.
	data, err := safefs.ReadFD(fd, len(autoDeployMarker), len(autoDeployMarker))
	if err != nil {
		return true, err
	}
	if !bytes.HasPrefix(data, []byte(autoDeployMarker)) {
		return true, errors.New("exists and was not written by nodeboot (no marker line at its top); nodeboot does not overwrite it: move it away or rename your source file")
	}
	return true, nil
}
