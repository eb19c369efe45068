package bootstrap

import (
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"
)

// dirFlags open a directory of the tree without following a symlink: with
// O_NOFOLLOW a symlink as the last component fails with ELOOP, and with
// O_DIRECTORY anything else that is not a directory fails with ENOTDIR.
// Every earlier component was opened the same way, from the root's fd.
const dirFlags = unix.O_RDONLY | unix.O_DIRECTORY | unix.O_NOFOLLOW | unix.O_CLOEXEC

// tree is an open root directory. All access goes through fd.
type tree struct {
	root string // absolute, symlinks resolved
	fd   int
}

func (t *tree) close() { unix.Close(t.fd) }

// host is the host path of the guest path elements, for messages.
func (t *tree) host(elems []string) string {
	return filepath.Join(append([]string{t.root}, elems...)...)
}

// split turns a guest path into its elements, refusing any that could
// leave the tree. A validated profile has none; this is the last guard.
func (t *tree) split(guest string) ([]string, error) {
	if !strings.HasPrefix(guest, "/") || guest == "/" {
		return nil, &TreeError{Path: guest, Err: ErrOutsideTree, Msg: "is not an absolute path below /; fix the profile"}
	}
	elems := strings.Split(guest[1:], "/")
	for _, e := range elems {
		if e == "" || e == "." || e == ".." || strings.IndexByte(e, 0) >= 0 {
			return nil, &TreeError{Path: guest, Err: ErrOutsideTree, Msg: "has an empty, \".\" or \"..\" element and could leave the tree; fix the profile"}
		}
	}
	if h := t.host(elems); !strings.HasPrefix(h, t.root+"/") {
		return nil, &TreeError{Path: h, Err: ErrOutsideTree, Msg: "is outside the root " + t.root + "; fix the profile"}
	}
	return elems, nil
}

// walk opens the directory elems below the root one component at a time,
// creating missing ones with mode 0755, and returns its fd (the caller
// closes it). No symlink is followed and no kernel filesystem entered.
func (t *tree) walk(elems []string) (int, error) {
	fd, err := openat(t.fd, ".", dirFlags, 0)
	if err != nil {
		return -1, pathError("openat", t.root, err)
	}
	for i, name := range elems {
		host := t.host(elems[:i+1])
		next, err := openat(fd, name, dirFlags, 0)
		if errors.Is(err, unix.ENOENT) {
			// Create it 0700, then open it and widen it: nothing can use
			// a half-made directory meanwhile.
			err = ignoringEINTR(func() error { return unix.Mkdirat(fd, name, 0o700) })
			created := err == nil
			if err != nil && !errors.Is(err, unix.EEXIST) {
				unix.Close(fd)
				return -1, pathError("mkdirat", host, err)
			}
			next, err = openat(fd, name, dirFlags, 0)
			if err == nil && created {
				if err = ignoringEINTR(func() error { return unix.Fchmod(next, 0o755) }); err != nil {
					unix.Close(next)
					unix.Close(fd)
					return -1, pathError("fchmod", host, err)
				}
			}
		}
		if err != nil {
			defer unix.Close(fd)
			if errors.Is(err, unix.ELOOP) || errors.Is(err, unix.ENOTDIR) {
				var st unix.Stat_t
				if fstatat(fd, name, &st, unix.AT_SYMLINK_NOFOLLOW) == nil {
					what := describeType(fd, name, st.Mode)
					if st.Mode&unix.S_IFMT == unix.S_IFLNK {
						return -1, &TreeError{Path: host, Err: ErrSymlink,
							Msg: "is " + what + "; seeding never follows links inside the tree; remove it (rm " + host + ") and seed again"}
					}
					return -1, &TreeError{Path: host, Err: ErrConflict,
						Msg: "is " + what + ", but entries below it need a directory; remove it and seed again"}
				}
			}
			return -1, pathError("openat", host, err)
		}
		unix.Close(fd)
		fd = next
		if err := checkFS(fd, host); err != nil {
			unix.Close(fd)
			return -1, err
		}
	}
	return fd, nil
}

// openRoot opens root, creating it 0700 when it does not exist, and checks
// that it is safe to seed (see the package comment). created says Seed
// made it.
func openRoot(root string) (_ *tree, created bool, _ error) {
	if root == "" {
		return nil, false, errors.New("root is empty; pass --root DIR (or set NODEBOOT_ROOT)")
	}
	abs, err := filepath.Abs(root)
	if err != nil {
		return nil, false, fmt.Errorf("root %s: %w", root, err)
	}
	if err := checkRootPath(abs); err != nil {
		return nil, false, err
	}
	if real, err := filepath.EvalSymlinks(abs); err == nil {
		abs = real
	} else if errors.Is(err, fs.ErrNotExist) {
		if err := os.MkdirAll(filepath.Dir(abs), 0o755); err != nil {
			return nil, false, fmt.Errorf("create the parent of root %s: %w", abs, err)
		}
		err := ignoringEINTR(func() error { return unix.Mkdir(abs, 0o700) })
		switch {
		case err == nil:
			created = true
		case !errors.Is(err, unix.EEXIST):
			return nil, false, pathError("mkdir", abs, err)
		}
		if real, err := filepath.EvalSymlinks(abs); err == nil {
			abs = real
		}
	} else {
		return nil, false, fmt.Errorf("root %s: %w", abs, err)
	}
	if err := checkRootPath(abs); err != nil {
		return nil, false, err
	}

	fd, err := openat(unix.AT_FDCWD, abs, dirFlags, 0)
	if err != nil {
		if errors.Is(err, unix.ENOTDIR) || errors.Is(err, unix.ELOOP) {
			return nil, false, &TreeError{Path: abs, Err: ErrConflict, Msg: "is not a directory; choose a directory for --root"}
		}
		return nil, false, pathError("open", abs, err)
	}
	ok := false
	defer func() {
		if !ok {
			unix.Close(fd)
		}
	}()
	if created {
		// mkdir's mode went through the umask; make it exactly 0700.
		if err := ignoringEINTR(func() error { return unix.Fchmod(fd, 0o700) }); err != nil {
			return nil, false, pathError("fchmod", abs, err)
		}
	}
	var st unix.Stat_t
	if err := ignoringEINTR(func() error { return unix.Fstat(fd, &st) }); err != nil {
		return nil, false, pathError("fstat", abs, err)
	}
	if euid := os.Geteuid(); int(st.Uid) != euid {
		return nil, false, &TreeError{Path: abs, Err: ErrUnsafeRoot,
			Msg: fmt.Sprintf("is owned by uid %d, not by uid %d who is seeding; another user could change the tree under the guest; chown %d %s, or choose a --root of your own", st.Uid, euid, euid, abs)}
	}
	if st.Mode&0o002 != 0 {
		return nil, false, &TreeError{Path: abs, Err: ErrUnsafeRoot,
			Msg: fmt.Sprintf("is writable by every user (mode %04o); anyone could plant files the guest trusts; chmod o-w %s (0700 is best), or choose another --root", st.Mode&0o7777, abs)}
	}
	if err := checkFS(fd, abs); err != nil {
		return nil, false, err
	}
	ok = true
	return &tree{root: abs, fd: fd}, created, nil
}

// kernelPrefixes hold the real kernel's files; the tree never goes there.
var kernelPrefixes = []string{"/proc", "/sys", "/dev"}

// checkRootPath refuses roots whose tree would land on the real kernel
// files: / itself (root/proc would be /proc) and anything below /proc,
// /sys or /dev.
func checkRootPath(abs string) error {
	if abs == "/" {
		return &TreeError{Path: abs, Err: ErrOutsideTree,
			Msg: "as the root would put the tree over the real /proc and /sys; choose a private directory such as /var/lib/nodeboot/root"}
	}
	for _, p := range kernelPrefixes {
		if abs == p || strings.HasPrefix(abs, p+"/") {
			return &TreeError{Path: abs, Err: ErrOutsideTree,
				Msg: "is under " + p + ", which holds the real kernel's files; choose a private directory such as /var/lib/nodeboot/root"}
		}
	}
	return nil
}

// kernelFS are filesystems that hold the real kernel's files. Seeding never
// writes on them, wherever they are mounted.
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

// checkFS refuses a directory on a kernel filesystem.
func checkFS(fd int, host string) error {
	var sfs unix.Statfs_t
	if err := ignoringEINTR(func() error { return unix.Fstatfs(fd, &sfs) }); err != nil {
		return pathError("fstatfs", host, err)
	}
	if name, ok := kernelFS[int64(sfs.Type)]; ok {
		return &TreeError{Path: host, Err: ErrOutsideTree,
			Msg: "is on " + name + ", the real kernel's files, not on the tree's filesystem; unmount it or choose another --root"}
	}
	return nil
}

// makeDir creates the directory name in dirfd with mode perm exactly.
func makeDir(dirfd int, name, host string, perm uint32) error {
	if err := ignoringEINTR(func() error { return unix.Mkdirat(dirfd, name, 0o700) }); err != nil {
		return pathError("mkdirat", host, err)
	}
	fd, err := openat(dirfd, name, dirFlags, 0)
	if err != nil {
		return pathError("openat", host, err)
	}
	defer unix.Close(fd)
	if err := ignoringEINTR(func() error { return unix.Fchmod(fd, perm) }); err != nil {
		return pathError("fchmod", host, err)
	}
	return nil
}

// readRegular reads the regular file name in dirfd. It returns nil data
// (and no error) when the file is larger than maxFile.
func readRegular(dirfd int, name, host string) ([]byte, error) {
	// O_NONBLOCK: if a FIFO was swapped in after the fstatat, the open
	// does not hang; the fstat below then refuses it.
	fd, err := openat(dirfd, name, unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_NONBLOCK|unix.O_NOCTTY|unix.O_CLOEXEC, 0)
	if err != nil {
		if errors.Is(err, unix.ELOOP) {
			return nil, &TreeError{Path: host, Err: ErrSymlink, Msg: "became a symlink while seeding; remove it and seed again"}
		}
		return nil, pathError("openat", host, err)
	}
	f := os.NewFile(uintptr(fd), host)
	defer f.Close()
	var st unix.Stat_t
	if err := ignoringEINTR(func() error { return unix.Fstat(fd, &st) }); err != nil {
		return nil, pathError("fstat", host, err)
	}
	if st.Mode&unix.S_IFMT != unix.S_IFREG {
		return nil, &TreeError{Path: host, Err: ErrConflict, Msg: "changed type while seeding; remove it and seed again"}
	}
	data, err := io.ReadAll(io.LimitReader(f, maxFile+1))
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", host, err)
	}
	if len(data) > maxFile {
		return nil, nil
	}
	return data, nil
}

// tempPrefix starts the names of Seed's temporary files.
const tempPrefix = ".nodeboot-seed-"

// writeAtomic replaces (or creates) the file name in dirfd with data and
// mode perm: a temporary file with a random name is created with O_EXCL
// in the same directory, written, chmod-ed, fsynced and renamed over name;
// then the directory is fsynced. On error the temporary file is removed.
func writeAtomic(dirfd int, name, host string, data []byte, perm uint32) (err error) {
	var tmp string
	var fd int
	for try := 0; ; try++ {
		tmp = tempPrefix + rand.Text() + ".tmp"
		fd, err = openat(dirfd, tmp, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o600)
		if err == nil {
			break
		}
		if !errors.Is(err, unix.EEXIST) || try == 3 {
			return pathError("openat", filepath.Join(filepath.Dir(host), tmp), err)
		}
	}
	f := os.NewFile(uintptr(fd), tmp)
	renamed := false
	defer func() {
		if f != nil {
			f.Close()
		}
		if !renamed {
			_ = unix.Unlinkat(dirfd, tmp, 0)
		}
	}()
	if _, err := f.Write(data); err != nil {
		return fmt.Errorf("write %s: %w", host, err)
	}
	if err := ignoringEINTR(func() error { return unix.Fchmod(fd, perm) }); err != nil {
		return pathError("fchmod", host, err)
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("fsync %s: %w", host, err)
	}
	cerr := f.Close()
	f = nil
	if cerr != nil {
		return fmt.Errorf("close %s: %w", host, cerr)
	}
	if err := ignoringEINTR(func() error { return unix.Renameat(dirfd, tmp, dirfd, name) }); err != nil {
		return pathError("renameat", host, err)
	}
	renamed = true
	// Make the rename durable. Some filesystems (and gVisor's gofer, at
	// times) refuse fsync on a directory; the data is already on disk, so
	// only real I/O errors count.
	if err := ignoringEINTR(func() error { return unix.Fsync(dirfd) }); err != nil &&
		!errors.Is(err, unix.EINVAL) && !errors.Is(err, unix.EROFS) && !errors.Is(err, unix.ENOTSUP) {
		return pathError("fsync", filepath.Dir(host), err)
	}
	return nil
}

// describeType names what stands at name in dirfd: "a symlink to "/etc"",
// "a FIFO", ...
func describeType(dirfd int, name string, mode uint32) string {
	switch mode & unix.S_IFMT {
	case unix.S_IFLNK:
		buf := make([]byte, 4096)
		n, err := unix.Readlinkat(dirfd, name, buf)
		if err != nil {
			return "a symlink"
		}
		return fmt.Sprintf("a symlink to %q", buf[:n])
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

// openat wraps openat(2), retrying on EINTR.
func openat(dirfd int, name string, flags int, mode uint32) (int, error) {
	for {
		fd, err := unix.Openat(dirfd, name, flags, mode)
		if err != unix.EINTR {
			return fd, err
		}
	}
}

// fstatat wraps fstatat(2), retrying on EINTR.
func fstatat(dirfd int, name string, st *unix.Stat_t, flags int) error {
	return ignoringEINTR(func() error { return unix.Fstatat(dirfd, name, st, flags) })
}

// ignoringEINTR calls fn until it does not fail with EINTR.
func ignoringEINTR(fn func() error) error {
	for {
		if err := fn(); err != unix.EINTR {
			return err
		}
	}
}

// pathError wraps a raw errno so that it names the call and the path and
// still matches fs.ErrNotExist and friends.
func pathError(op, path string, err error) error {
	return &fs.PathError{Op: op, Path: path, Err: err}
}
