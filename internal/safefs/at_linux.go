package safefs

import (
	"crypto/rand"
	"errors"
	"fmt"
	"io/fs"
	"strings"

	"golang.org/x/sys/unix"
)

// DirFlags open a directory without following a symlink: with O_NOFOLLOW a
// symlink as the last component fails with ELOOP, and with O_DIRECTORY
// anything else that is not a directory fails with ENOTDIR.
const DirFlags = unix.O_RDONLY | unix.O_DIRECTORY | unix.O_NOFOLLOW | unix.O_CLOEXEC

// readFlags open a file to read without following a symlink, without
// blocking on a FIFO that was swapped in, and without taking a terminal.
const readFlags = unix.O_RDONLY | unix.O_NOFOLLOW | unix.O_NONBLOCK | unix.O_NOCTTY | unix.O_CLOEXEC

// errMounted is what RemoveAllAt says of a mount point below the tree.
var errMounted = fmt.Errorf("%w: another filesystem is mounted there; unmount it first (see findmnt -R)", ErrMountPoint)

// DefaultTempPrefix starts the names of WriteFileAt's temporary files.
const DefaultTempPrefix = ".nodeboot-"

// Openat is openat(2), retried on EINTR.
func Openat(dirfd int, name string, flags int, mode uint32) (int, error) {
	for {
		fd, err := unix.Openat(dirfd, name, flags, mode)
		if err != unix.EINTR {
			return fd, err
		}
	}
}

// IgnoringEINTR calls fn until it does not fail with EINTR.
func IgnoringEINTR(fn func() error) error {
	for {
		if err := fn(); err != unix.EINTR {
			return err
		}
	}
}

// Fstatat is fstatat(2) without following a symlink, retried on EINTR.
func Fstatat(dirfd int, name string, st *unix.Stat_t) error {
	return IgnoringEINTR(func() error { return unix.Fstatat(dirfd, name, st, unix.AT_SYMLINK_NOFOLLOW) })
}

// WalkOptions tune WalkAt.
type WalkOptions struct {
	// Create makes missing directories, with mode Perm exactly (the umask
	// does not apply). A new directory is made 0700 and opened before it
	// gets Perm, so nothing can use it half made.
	Create bool
	Perm   uint32
	// Base names dirfd in errors: errors name Base/rel.
	Base string
	// Check, when set, is called for each directory opened on the way
	// (not for dirfd itself), with its descriptor and its path for
	// messages; an error stops the walk.
	Check func(fd int, path string) error
}

// WalkAt opens the directory rel (slash-separated, relative; "" or "." is
// dirfd itself) below dirfd one component at a time with O_NOFOLLOW, and
// returns its descriptor, which the caller closes. An element that is
// empty, "." or ".." is refused. A symlink on the way gives a *TypeError
// that is ErrSymlink; another non-directory one that is ErrWrongType.
func WalkAt(dirfd int, rel string, opts WalkOptions) (int, error) {
	fd, err := Openat(dirfd, ".", DirFlags, 0)
	if err != nil {
		return -1, &fs.PathError{Op: "openat", Path: walkPath(opts.Base, rel, len(rel)), Err: err}
	}
	if rel == "" || rel == "." {
		return fd, nil
	}
	for start := 0; start < len(rel); {
		end := len(rel)
		if i := strings.IndexByte(rel[start:], '/'); i >= 0 {
			end = start + i
		}
		name := rel[start:end]
		start = end + 1
		if name == "" || name == "." || name == ".." || strings.IndexByte(name, 0) >= 0 {
			unix.Close(fd)
			return -1, fmt.Errorf("path %q: element %q could leave the directory", walkPath(opts.Base, rel, len(rel)), name)
		}
		next, err := Openat(fd, name, DirFlags, 0)
		if err == unix.ENOENT && opts.Create {
			next, err = mkdirOpen(fd, name, opts.Perm)
		}
		if err != nil {
			err = dirError(fd, name, walkPath(opts.Base, rel, end), err)
			unix.Close(fd)
			return -1, err
		}
		unix.Close(fd)
		fd = next
		if opts.Check != nil {
			if err := opts.Check(fd, walkPath(opts.Base, rel, end)); err != nil {
				unix.Close(fd)
				return -1, err
			}
		}
	}
	return fd, nil
}

// walkPath is base joined with rel[:end], for messages.
func walkPath(base, rel string, end int) string {
	switch {
	case base == "":
		return rel[:end]
	case end == 0:
		return base
	}
	return strings.TrimSuffix(base, "/") + "/" + rel[:end]
}

// mkdirOpen creates the directory name in dirfd (EEXIST is fine: someone
// made it meanwhile; it is then opened like any other) and returns it open,
// with mode perm when this call made it.
func mkdirOpen(dirfd int, name string, perm uint32) (int, error) {
	err := IgnoringEINTR(func() error { return unix.Mkdirat(dirfd, name, 0o700) })
	created := err == nil
	if err != nil && err != unix.EEXIST {
		return -1, err
	}
	fd, err := Openat(dirfd, name, DirFlags, 0)
	if err != nil {
		return -1, err
	}
	if created && perm != 0o700 {
		if err := IgnoringEINTR(func() error { return unix.Fchmod(fd, perm) }); err != nil {
			unix.Close(fd)
			return -1, err
		}
	}
	return fd, nil
}

// dirError turns the failure to open name in dirfd as a directory into a
// *TypeError when something else stands there, else a *fs.PathError.
func dirError(dirfd int, name, path string, err error) error {
	if err == unix.ELOOP || err == unix.ENOTDIR {
		var st unix.Stat_t
		if Fstatat(dirfd, name, &st) == nil && st.Mode&unix.S_IFMT != unix.S_IFDIR {
			return &TypeError{Path: path, What: Describe(dirfd, name, st.Mode), Want: "a directory",
				Link: st.Mode&unix.S_IFMT == unix.S_IFLNK}
		}
	}
	return &fs.PathError{Op: "openat", Path: path, Err: err}
}

// MkdirAt creates the directory name in dirfd with mode perm exactly. It
// fails with EEXIST when name exists.
func MkdirAt(dirfd int, name string, perm uint32) error {
	if err := IgnoringEINTR(func() error { return unix.Mkdirat(dirfd, name, 0o700) }); err != nil {
		return &fs.PathError{Op: "mkdirat", Path: name, Err: err}
	}
	if perm == 0o700 {
		return nil
	}
	fd, err := Openat(dirfd, name, DirFlags, 0)
	if err != nil {
		return &fs.PathError{Op: "openat", Path: name, Err: err}
	}
	defer unix.Close(fd)
	if err := IgnoringEINTR(func() error { return unix.Fchmod(fd, perm) }); err != nil {
		return &fs.PathError{Op: "fchmod", Path: name, Err: err}
	}
	return nil
}

// WriteOptions tune WriteFileAt.
type WriteOptions struct {
	// Sync fsyncs the file before the rename and the directory after it,
	// so that the new content survives a crash. Files that are
	// regenerated anyway (the virtual kernel's) skip it.
	Sync bool
	// NoReplace refuses to replace an entry that exists at the rename
	// (RENAME_NOREPLACE): the error is then fs.ErrExist.
	NoReplace bool
	// TempPrefix starts the temporary file's name; DefaultTempPrefix
	// when empty. Pick one that readers of the directory ignore.
	TempPrefix string
	// Path names the file in errors; name when empty.
	Path string
}

// WriteFileAt replaces (or creates) the file name in dirfd with data and
// mode perm exactly: a temporary file with an unpredictable name is created
// with O_CREAT|O_EXCL|O_NOFOLLOW in the same directory, written, chmod-ed,
// fsynced with opts.Sync, and renamed over name. A reader sees the old
// content or the new, never a mix, and a symlink planted at name is
// replaced, not written through. On error the temporary file is removed.
func WriteFileAt(dirfd int, name string, data []byte, perm uint32, opts WriteOptions) error {
	path := opts.Path
	if path == "" {
		path = name
	}
	prefix := opts.TempPrefix
	if prefix == "" {
		prefix = DefaultTempPrefix
	}
	var tmp string
	var fd int
	for try := 0; ; try++ {
		// 16 base32 characters: 80 random bits.
		tmp = prefix + rand.Text()[:16] + ".tmp"
		var err error
		fd, err = Openat(dirfd, tmp, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o600)
		if err == nil {
			break
		}
		if err != unix.EEXIST || try == 3 {
			return &fs.PathError{Op: "create temporary file for", Path: path, Err: err}
		}
	}
	err := writeAll(fd, data)
	if err != nil {
		err = &fs.PathError{Op: "write", Path: path, Err: err}
	} else if e := IgnoringEINTR(func() error { return unix.Fchmod(fd, perm) }); e != nil {
		err = &fs.PathError{Op: "fchmod", Path: path, Err: e}
	} else if opts.Sync {
		if e := IgnoringEINTR(func() error { return unix.Fsync(fd) }); e != nil {
			err = &fs.PathError{Op: "fsync", Path: path, Err: e}
		}
	}
	if e := unix.Close(fd); e != nil && err == nil {
		err = &fs.PathError{Op: "close", Path: path, Err: e}
	}
	if err == nil {
		var flags uint
		if opts.NoReplace {
			flags = unix.RENAME_NOREPLACE
		}
		if e := renameat(dirfd, tmp, name, flags); e != nil {
			err = &fs.PathError{Op: "rename", Path: path, Err: e}
		}
	}
	if err != nil {
		unix.Unlinkat(dirfd, tmp, 0)
		return err
	}
	if opts.Sync {
		// Make the rename durable. Some filesystems (and gVisor's gofer,
		// at times) refuse fsync on a directory; the data is on disk
		// already, so only real I/O errors count.
		if e := IgnoringEINTR(func() error { return unix.Fsync(dirfd) }); e != nil &&
			e != unix.EINVAL && e != unix.EROFS && e != unix.ENOTSUP {
			return &fs.PathError{Op: "fsync the directory of", Path: path, Err: e}
		}
	}
	return nil
}

// renameat renames in one directory; flags 0 is plain renameat(2), which
// every kernel and sandbox has.
func renameat(dirfd int, from, to string, flags uint) error {
	return IgnoringEINTR(func() error {
		if flags == 0 {
			return unix.Renameat(dirfd, from, dirfd, to)
		}
		return unix.Renameat2(dirfd, from, dirfd, to, flags)
	})
}

// RewriteFileAt changes the content of the existing regular file name in
// dirfd in place, so that readers holding it open, and inotify watches on
// it, see the change (a rename would look like a new file). When name is
// missing, is not a regular file or has other hard links, it is replaced
// with WriteFileAt instead (without Sync). A symlink is never followed.
func RewriteFileAt(dirfd int, name string, data []byte, perm uint32) error {
	fd, err := Openat(dirfd, name, unix.O_WRONLY|unix.O_NOFOLLOW|unix.O_NONBLOCK|unix.O_NOCTTY|unix.O_CLOEXEC, 0)
	if err != nil {
		return WriteFileAt(dirfd, name, data, perm, WriteOptions{})
	}
	var st unix.Stat_t
	if unix.Fstat(fd, &st) != nil || st.Mode&unix.S_IFMT != unix.S_IFREG || st.Nlink != 1 {
		unix.Close(fd)
		return WriteFileAt(dirfd, name, data, perm, WriteOptions{})
	}
	defer unix.Close(fd)
	if err := IgnoringEINTR(func() error { return unix.Ftruncate(fd, 0) }); err != nil {
		return &fs.PathError{Op: "ftruncate", Path: name, Err: err}
	}
	if err := writeAll(fd, data); err != nil {
		return &fs.PathError{Op: "write", Path: name, Err: err}
	}
	return nil
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

// OpenRegularAt opens the regular file name in dirfd for reading, without
// following a symlink at name and without blocking on a FIFO, and returns
// its descriptor (the caller closes it) and its stat. Errors: a *TypeError
// (ErrSymlink) for a symlink, a *NotRegularError for another non-regular
// file, a *fs.PathError otherwise (fs.ErrNotExist for a missing file); path
// names the file in them.
func OpenRegularAt(dirfd int, name, path string, st *unix.Stat_t) (int, error) {
	fd, err := Openat(dirfd, name, readFlags, 0)
	if err != nil {
		if err == unix.ELOOP {
			return -1, &TypeError{Path: path, What: Describe(dirfd, name, unix.S_IFLNK), Want: "a regular file", Link: true}
		}
		return -1, &fs.PathError{Op: "open", Path: path, Err: err}
	}
	if err := unix.Fstat(fd, st); err != nil {
		unix.Close(fd)
		return -1, &fs.PathError{Op: "fstat", Path: path, Err: err}
	}
	if st.Mode&unix.S_IFMT != unix.S_IFREG {
		unix.Close(fd)
		return -1, &NotRegularError{Path: path, What: describeType(st.Mode)}
	}
	return fd, nil
}

// ReadFileAt reads the regular file name in dirfd, at most limit bytes
// (OpenRegularAt says what is refused). A file holding more than limit
// bytes gives a *TooLargeError.
func ReadFileAt(dirfd int, name, path string, limit int) ([]byte, error) {
	var st unix.Stat_t
	fd, err := OpenRegularAt(dirfd, name, path, &st)
	if err != nil {
		return nil, err
	}
	defer unix.Close(fd)
	if st.Size > int64(limit) {
		return nil, &TooLargeError{Path: path, Limit: int64(limit)}
	}
	out, err := ReadFD(fd, int(st.Size), limit+1)
	if err != nil {
		return nil, &fs.PathError{Op: "read", Path: path, Err: err}
	}
	if len(out) > limit {
		return nil, &TooLargeError{Path: path, Limit: int64(limit)}
	}
	return out, nil
}

// ReadFD reads fd from its offset to its end, at most max bytes; hint is
// the expected size (procfs and sysfs files report 0: read to EOF).
func ReadFD(fd, hint, max int) ([]byte, error) {
	size := 512
	if hint >= size {
		size = hint + 1
	}
	out := make([]byte, 0, min(size, max))
	for len(out) < max {
		if len(out) == cap(out) {
			out = append(out, 0)[:len(out)]
		}
		n, err := unix.Read(fd, out[len(out):min(cap(out), max)])
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return out, err
		}
		if n == 0 {
			break
		}
		out = out[:len(out)+n]
	}
	return out, nil
}

// ReadHost reads a kernel file such as /proc/PID/stat, at most max bytes
// (procfs and sysfs files report size 0, so it reads to EOF). Symlinks in
// path are followed: /proc/self is one.
func ReadHost(path string, max int) ([]byte, error) {
	fd, err := Openat(unix.AT_FDCWD, path, unix.O_RDONLY|unix.O_CLOEXEC|unix.O_NONBLOCK|unix.O_NOCTTY, 0)
	if err != nil {
		return nil, err
	}
	defer unix.Close(fd)
	return ReadFD(fd, 0, max)
}

// RemoveAllAt removes name in dirfd and, for a directory, everything below
// it. It never follows a symlink (the link goes, its target stays), makes
// read-only directories it meets writable so that it can empty them, and
// stops at a directory on another filesystem (ErrMountPoint): whatever is
// mounted below is not nodeboot's to remove. A missing name is not an
// error.
func RemoveAllAt(dirfd int, name string) error {
	var st unix.Stat_t
	if err := unix.Fstat(dirfd, &st); err != nil {
		return &fs.PathError{Op: "fstat", Path: ".", Err: err}
	}
	return removeAllAt(dirfd, name, st.Dev)
}

func removeAllAt(dirfd int, name string, dev uint64) error {
	err := unix.Unlinkat(dirfd, name, 0)
	if err == nil || err == unix.ENOENT {
		return nil
	}
	if err != unix.EISDIR && err != unix.EPERM {
		return &fs.PathError{Op: "unlinkat", Path: name, Err: err}
	}
	fd, err := Openat(dirfd, name, DirFlags, 0)
	if err == unix.EACCES {
		// A directory k3s left without read permission (for a user
		// other than root): open it after making it ours to read.
		// fchmodat follows symlinks, so check the type first; only the
		// directory's owner can swap it meanwhile.
		var st unix.Stat_t
		if Fstatat(dirfd, name, &st) == nil && st.Mode&unix.S_IFMT == unix.S_IFDIR &&
			unix.Fchmodat(dirfd, name, 0o700, 0) == nil {
			fd, err = Openat(dirfd, name, DirFlags, 0)
		}
	}
	if err != nil {
		if err == unix.ENOENT {
			return nil
		}
		return &fs.PathError{Op: "openat", Path: name, Err: err}
	}
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		unix.Close(fd)
		return &fs.PathError{Op: "fstat", Path: name, Err: err}
	}
	if st.Dev != dev {
		unix.Close(fd)
		return &fs.PathError{Op: "remove", Path: name, Err: errMounted}
	}
	err = removeChildren(fd, dev)
	if errors.Is(err, unix.EACCES) || errors.Is(err, unix.EPERM) {
		// A read-only directory: make it writable and try once more.
		if unix.Fchmod(fd, st.Mode&0o7777|0o700) == nil {
			err = removeChildren(fd, dev)
		}
	}
	unix.Close(fd)
	if err != nil {
		var pe *fs.PathError
		if errors.As(err, &pe) {
			pe.Path = name + "/" + pe.Path
		}
		return err
	}
	if err := unix.Unlinkat(dirfd, name, unix.AT_REMOVEDIR); err != nil && err != unix.ENOENT {
		return &fs.PathError{Op: "unlinkat", Path: name, Err: err}
	}
	return nil
}

func removeChildren(fd int, dev uint64) error {
	names, err := ReadDirNames(fd)
	if err != nil {
		return &fs.PathError{Op: "getdents", Path: ".", Err: err}
	}
	for _, n := range names {
		if err := removeAllAt(fd, n, dev); err != nil {
			return err
		}
	}
	return nil
}

// ReadDirNames lists the directory fd (without . and ..) from its start.
// fd's offset is moved; it stays open.
func ReadDirNames(fd int) ([]string, error) {
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

// Describe names what stands at name in dirfd, whose type is in mode:
// `a symlink to "/etc"`, "a FIFO", "a directory", ...
func Describe(dirfd int, name string, mode uint32) string {
	if mode&unix.S_IFMT == unix.S_IFLNK {
		buf := make([]byte, 4096)
		n, err := unix.Readlinkat(dirfd, name, buf)
		if err != nil {
			return "a symlink"
		}
		return fmt.Sprintf("a symlink to %q", buf[:n])
	}
	return describeType(mode)
}

func describeType(mode uint32) string {
	switch mode & unix.S_IFMT {
	case unix.S_IFLNK:
		return "a symlink"
	case unix.S_IFDIR:
		return "a directory"
	case unix.S_IFREG:
		return "a regular file"
	case unix.S_IFIFO:
		return "a FIFO"
	case unix.S_IFSOCK:
		return "a socket"
	case unix.S_IFCHR:
		return "a character device"
	case unix.S_IFBLK:
		return "a block device"
	}
	return fmt.Sprintf("a file of type %#o", mode&unix.S_IFMT)
}

// kernelFS are filesystems that hold the real kernel's files.
var kernelFS = map[int64]string{
	unix.PROC_SUPER_MAGIC:    "procfs",
	unix.SYSFS_MAGIC:         "sysfs",
	unix.CGROUP_SUPER_MAGIC:  "cgroup",
	unix.CGROUP2_SUPER_MAGIC: "cgroup2",
	unix.DEVPTS_SUPER_MAGIC:  "devpts",
	unix.DEBUGFS_MAGIC:       "debugfs",
	unix.SECURITYFS_MAGIC:    "securityfs",
	unix.TRACEFS_MAGIC:       "tracefs",
	unix.BPF_FS_MAGIC:        "bpffs",
	unix.PSTOREFS_MAGIC:      "pstore",
	unix.EFIVARFS_MAGIC:      "efivarfs",
}

// KernelFS reports whether fd is on a filesystem of the real kernel's files
// (procfs, sysfs, cgroup, ...), and its name. nodeboot never writes there.
func KernelFS(fd int) (name string, ok bool, err error) {
	var sfs unix.Statfs_t
	if err := IgnoringEINTR(func() error { return unix.Fstatfs(fd, &sfs) }); err != nil {
		return "", false, err
	}
	name, ok = kernelFS[int64(sfs.Type)]
	return name, ok, nil
}
