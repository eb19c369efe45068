package vkernel

import (
	"bytes"
	"crypto/rand"
	"errors"
	"fmt"
	"io/fs"
	"strings"

	"golang.org/x/sys/unix"
)

// The helpers below touch the host tree only through directory file
// descriptors opened with O_NOFOLLOW, one component at a time, so that a
// symlink the guest plants inside the root is never followed.

// tempPrefix starts the names of temporary files in the tree.
const tempPrefix = ".nodeboot-"

const dirFlags = unix.O_RDONLY | unix.O_DIRECTORY | unix.O_NOFOLLOW | unix.O_CLOEXEC

// openat wraps openat(2), retrying on EINTR.
func openat(dirfd int, name string, flags int, mode uint32) (int, error) {
	for {
		fd, err := unix.Openat(dirfd, name, flags, mode)
		if err != unix.EINTR {
			return fd, err
		}
	}
}

// walkDir opens the directory rel (slash-separated, relative) below dirfd,
// creating missing components with mode perm when create is set. The caller
// closes the returned fd.
func walkDir(dirfd int, rel string, create bool, perm uint32) (int, error) {
	fd, err := openat(dirfd, ".", dirFlags, 0)
	if err != nil {
		return -1, err
	}
	if rel == "" || rel == "." {
		return fd, nil
	}
	for _, name := range strings.Split(rel, "/") {
		if name == "" || name == "." || name == ".." {
			unix.Close(fd)
			return -1, fmt.Errorf("path %q: bad element %q", rel, name)
		}
		next, err := openat(fd, name, dirFlags, 0)
		if errors.Is(err, unix.ENOENT) && create {
			if err = unix.Mkdirat(fd, name, perm); err == nil || errors.Is(err, unix.EEXIST) {
				next, err = openat(fd, name, dirFlags, 0)
			}
		}
		unix.Close(fd)
		if err != nil {
			return -1, &fs.PathError{Op: "openat", Path: rel, Err: err}
		}
		fd = next
	}
	return fd, nil
}

// writeFileAt replaces the file name in dirfd by one holding data (mode
// perm): a temporary file is written and renamed over it, so a reader that
// has the old file open keeps a consistent copy.
func writeFileAt(dirfd int, name string, data []byte, perm uint32) error {
	tmp := tempPrefix + rand.Text()[:12] + ".tmp"
	fd, err := openat(dirfd, tmp, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC, perm)
	if err != nil {
		return &fs.PathError{Op: "openat", Path: tmp, Err: err}
	}
	if err := writeAll(fd, data); err != nil {
		unix.Close(fd)
		unix.Unlinkat(dirfd, tmp, 0)
		return err
	}
	unix.Fchmod(fd, perm) // the umask applied at creation
	unix.Close(fd)
	if err := unix.Renameat(dirfd, tmp, dirfd, name); err != nil {
		unix.Unlinkat(dirfd, tmp, 0)
		return &fs.PathError{Op: "renameat", Path: name, Err: err}
	}
	return nil
}

// rewriteFileAt changes the content of the existing regular file name in
// dirfd in place (readers holding it open, and inotify watches on it, see
// the change). When it is not a regular file with a single link, or is
// missing, the file is replaced instead.
func rewriteFileAt(dirfd int, name string, data []byte, perm uint32) error {
	fd, err := openat(dirfd, name, unix.O_WRONLY|unix.O_NOFOLLOW|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	if err != nil {
		return writeFileAt(dirfd, name, data, perm)
	}
	var st unix.Stat_t
	if unix.Fstat(fd, &st) != nil || st.Mode&unix.S_IFMT != unix.S_IFREG || st.Nlink != 1 {
		unix.Close(fd)
		return writeFileAt(dirfd, name, data, perm)
	}
	defer unix.Close(fd)
	if err := unix.Ftruncate(fd, 0); err != nil {
		return &fs.PathError{Op: "ftruncate", Path: name, Err: err}
	}
	return writeAll(fd, data)
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

// readFileAt reads the regular file name in dirfd, at most max bytes.
func readFileAt(dirfd int, name string, max int) ([]byte, error) {
	fd, err := openat(dirfd, name, unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, err
	}
	defer unix.Close(fd)
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return nil, err
	}
	if st.Mode&unix.S_IFMT != unix.S_IFREG {
		return nil, fmt.Errorf("%s: not a regular file", name)
	}
	return readFD(fd, max)
}

// readFD reads fd to its end, at most max bytes.
func readFD(fd, max int) ([]byte, error) {
	var out []byte
	buf := make([]byte, 4096)
	for len(out) < max {
		n, err := unix.Read(fd, buf)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return out, err
		}
		if n == 0 {
			break
		}
		out = append(out, buf[:n]...)
	}
	return out, nil
}

// readHost reads a host file such as /proc/PID/stat (procfs and sysfs files
// report size 0, so read to EOF).
func readHost(path string, max int) ([]byte, error) {
	fd, err := openat(unix.AT_FDCWD, path, unix.O_RDONLY|unix.O_CLOEXEC|unix.O_NONBLOCK, 0)
	if err != nil {
		return nil, err
	}
	defer unix.Close(fd)
	return readFD(fd, max)
}

// removeAllAt removes name in dirfd and, for a directory, everything below
// it, without following symlinks. A missing name is not an error.
func removeAllAt(dirfd int, name string) error {
	err := unix.Unlinkat(dirfd, name, 0)
	if err == nil || errors.Is(err, unix.ENOENT) {
		return nil
	}
	if !errors.Is(err, unix.EISDIR) && !errors.Is(err, unix.EPERM) {
		return &fs.PathError{Op: "unlinkat", Path: name, Err: err}
	}
	fd, err := openat(dirfd, name, dirFlags, 0)
	if err != nil {
		return &fs.PathError{Op: "openat", Path: name, Err: err}
	}
	names, err := readDirNames(fd)
	if err != nil {
		unix.Close(fd)
		return err
	}
	for _, n := range names {
		if err := removeAllAt(fd, n); err != nil {
			unix.Close(fd)
			return err
		}
	}
	unix.Close(fd)
	if err := unix.Unlinkat(dirfd, name, unix.AT_REMOVEDIR); err != nil && !errors.Is(err, unix.ENOENT) {
		return &fs.PathError{Op: "unlinkat", Path: name, Err: err}
	}
	return nil
}

// readDirNames lists the directory fd (without . and ..). fd's offset is
// moved; it stays open.
func readDirNames(fd int) ([]string, error) {
	var names []string
	buf := make([]byte, 8192)
	if _, err := unix.Seek(fd, 0, 0); err != nil {
		return nil, err
	}
	for {
		n, err := unix.Getdents(fd, buf)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return nil, err
		}
		if n <= 0 {
			return names, nil
		}
		_, _, names = unix.ParseDirent(buf[:n], -1, names)
	}
}

// hasPathPrefix reports whether p is prefix or lies below it.
func hasPathPrefix(p, prefix string) bool {
	return p == prefix || (len(p) > len(prefix) && p[len(prefix)] == '/' && strings.HasPrefix(p, prefix))
}

// sameBytes compares a file's content with a string without allocating.
func sameBytes(b []byte, s string) bool { return bytes.Equal(b, []byte(s)) }
