package manifests

import (
	"bytes"
	"crypto/rand"
	"errors"
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

// WriteAutoDeploy writes objs as YAML into k3s's auto-deploy directory dir
// (<k3s-data-dir>/server/manifests; created 0700 when missing), one file
// per source file, named nodeboot-<base>.yaml, which k3s applies by itself.
//
// Safety: dir itself may not be a symlink, nor writable by others, nor
// owned by another user. Files are opened through dir's descriptor with
// O_NOFOLLOW, written to a temporary name (mode 0600) and renamed into
// place, so k3s never reads half a file and a planted symlink is never
// followed. An existing file is replaced only when it starts with
// nodeboot's marker line; anything else (a symlink, a file of the user's)
// is an error naming it, and nothing is written. Files of earlier runs
// whose source is gone are left alone.
func WriteAutoDeploy(dir string, objs []Object) error {
	if len(objs) == 0 {
		return nil
	}
	files, err := autoDeployFiles(objs)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("write auto-deploy manifests: %w", err)
	}
	dfd, err := openat(unix.AT_FDCWD, dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		if errors.Is(err, unix.ELOOP) || errors.Is(err, unix.ENOTDIR) {
			return fmt.Errorf("write auto-deploy manifests: %s is a symlink or not a directory; nodeboot does not follow it: use the real directory", dir)
		}
		return fmt.Errorf("write auto-deploy manifests: open %s: %w", dir, err)
	}
	defer unix.Close(dfd)
	var st unix.Stat_t
	if err := unix.Fstat(dfd, &st); err != nil {
		return fmt.Errorf("write auto-deploy manifests: stat %s: %w", dir, err)
	}
	// k3s applies whatever lands in the directory, with its own rights.
	if st.Mode&0o002 != 0 {
		return fmt.Errorf("write auto-deploy manifests: %s is writable by others, so anyone could plant manifests that k3s applies; chmod 0700 it", dir)
	}
	if int(st.Uid) != os.Geteuid() {
		return fmt.Errorf("write auto-deploy manifests: %s is owned by uid %d, not by this user (uid %d); chown it or pick the right k3s data dir", dir, st.Uid, os.Geteuid())
	}
	// Check every file before writing any, so a refusal leaves the
	// directory as it was.
	exists := make([]bool, len(files))
	for i, f := range files {
		if exists[i], err = ours(dfd, f.name); err != nil {
			return fmt.Errorf("write auto-deploy manifests: %s/%s: %w", dir, f.name, err)
		}
	}
	for i, f := range files {
		if err := writeAt(dfd, f.name, f.data, exists[i]); err != nil {
			return fmt.Errorf("write auto-deploy manifests: %s/%s: %w", dir, f.name, err)
		}
	}
	return nil
}

// ours reports whether name exists in dfd, and fails when it exists but
// nodeboot did not write it.
func ours(dfd int, name string) (bool, error) {
	fd, err := openat(dfd, name, unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_NONBLOCK|unix.O_NOCTTY|unix.O_CLOEXEC, 0)
	switch {
	case errors.Is(err, unix.ENOENT):
		return false, nil
	case errors.Is(err, unix.ELOOP):
		return true, errors.New("is a symlink, which nodeboot neither follows nor replaces; remove it")
	case err != nil:
		return true, err
	}
	defer unix.Close(fd)
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return true, err
	}
	if st.Mode&unix.S_IFMT != unix.S_IFREG {
		return true, errors.New("exists and is not a regular file; nodeboot does not replace it")
	}
	head := make([]byte, len(autoDeployMarker))
	n, err := readFull(fd, head)
	if err != nil {
		return true, err
	}
	if !bytes.Equal(head[:n], []byte(autoDeployMarker)) {
		return true, errors.New("exists and was not written by nodeboot (no marker line at its top); nodeboot does not overwrite it: move it away or rename your source file")
	}
	return true, nil
}

// writeAt writes data to a new temporary file in dfd and renames it to
// name. When name did not exist, the rename refuses to replace anything
// that appeared since (RENAME_NOREPLACE).
func writeAt(dfd int, name string, data []byte, replace bool) error {
	tmp := ".nodeboot-" + rand.Text()[:12] + ".tmp" // no .yaml: k3s ignores it
	fd, err := openat(dfd, tmp, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return fmt.Errorf("create temporary file: %w", err)
	}
	err = writeAll(fd, data)
	if err == nil {
		err = unix.Fchmod(fd, 0o600) // whatever the umask did
	}
	if err == nil {
		err = unix.Fsync(fd)
	}
	unix.Close(fd)
	if err == nil {
		flags := uint(unix.RENAME_NOREPLACE)
		if replace {
			flags = 0
		}
		err = unix.Renameat2(dfd, tmp, dfd, name, flags)
		if errors.Is(err, unix.EEXIST) {
			err = errors.New("appeared while nodeboot was writing; not replaced")
		}
	}
	if err != nil {
		unix.Unlinkat(dfd, tmp, 0)
	}
	return err
}

func openat(dirfd int, name string, flags int, mode uint32) (int, error) {
	for {
		fd, err := unix.Openat(dirfd, name, flags, mode)
		if err != unix.EINTR {
			return fd, err
		}
	}
}

func writeAll(fd int, data []byte) error {
	for len(data) > 0 {
		n, err := unix.Write(fd, data)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return err
		}
		data = data[n:]
	}
	return nil
}

func readFull(fd int, buf []byte) (int, error) {
	n := 0
	for n < len(buf) {
		m, err := unix.Read(fd, buf[n:])
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return n, err
		}
		if m == 0 {
			break
		}
		n += m
	}
	return n, nil
}
