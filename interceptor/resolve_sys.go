package interceptor

import (
	"unsafe"

	"golang.org/x/sys/unix"
)

// The resolver's syscalls, wrapped once each. They are raw syscalls: all of
// them act on files the tracer opens itself and return at once (the tracee
// that named the path is stopped), and the scheduler bookkeeping of the
// unix package's wrappers costs more than some of these calls on the
// tracer's hot path. They return the errno itself (0: success), which the
// resolver compares and hands on as a syscall's answer.

// cpath holds NUL-terminated copies of paths for the raw syscalls; it is
// reused, so a pointer it returns is valid until its next call.
type cpath struct{ b []byte }

func (c *cpath) of(s string) *byte {
	if cap(c.b) < len(s)+1 {
		c.b = make([]byte, 0, len(s)+1+256)
	}
	c.b = append(append(c.b[:0], s...), 0)
	return &c.b[0]
}

// emptyPath is "" for calls with AT_EMPTY_PATH.
var emptyPath = [1]byte{}

func sysOpenat(dirfd int, p *byte, flags int) (int, unix.Errno) {
	fd, _, e := unix.RawSyscall6(unix.SYS_OPENAT, uintptr(dirfd), uintptr(unsafe.Pointer(p)),
		uintptr(flags|unix.O_CLOEXEC), 0, 0, 0)
	return int(fd), e
}

func sysOpenatMode(dirfd int, p *byte, flags int, mode uint32) (int, unix.Errno) {
	fd, _, e := unix.RawSyscall6(unix.SYS_OPENAT, uintptr(dirfd), uintptr(unsafe.Pointer(p)),
		uintptr(flags|unix.O_CLOEXEC), uintptr(mode), 0, 0)
	return int(fd), e
}

// sysOpenat2 is openat2 with how; ENOSYS on kernels before 5.6 and on
// gVisor.
func sysOpenat2(dirfd int, p *byte, flags, resolve uint64) (int, unix.Errno) {
	how := unix.OpenHow{Flags: flags | unix.O_CLOEXEC, Resolve: resolve}
	fd, _, e := unix.RawSyscall6(unix.SYS_OPENAT2, uintptr(dirfd), uintptr(unsafe.Pointer(p)),
		uintptr(unsafe.Pointer(&how)), unsafe.Sizeof(how), 0, 0)
	return int(fd), e
}

func sysClose(fd int) {
	if fd >= 0 {
		unix.RawSyscall(unix.SYS_CLOSE, uintptr(fd), 0, 0)
	}
}

// statxMask is what the resolver asks statx for: identity (dev, ino, mount)
// and type. STATX_MNT_ID gives the mount id mountinfo shows.
const statxMask = unix.STATX_TYPE | unix.STATX_MODE | unix.STATX_INO | unix.STATX_NLINK | unix.STATX_MNT_ID

func sysStatx(dirfd int, p *byte, flags int, st *unix.Statx_t) unix.Errno {
	_, _, e := unix.RawSyscall6(unix.SYS_STATX, uintptr(dirfd), uintptr(unsafe.Pointer(p)),
		uintptr(flags|unix.AT_STATX_DONT_SYNC), statxMask, uintptr(unsafe.Pointer(st)), 0)
	return e
}

// fdStatx is statx of an fd's own object.
func fdStatx(fd int, st *unix.Statx_t) unix.Errno {
	return sysStatx(fd, &emptyPath[0], unix.AT_EMPTY_PATH, st)
}

func sysReadlinkat(dirfd int, p *byte, buf []byte) (int, unix.Errno) {
	n, _, e := unix.RawSyscall6(unix.SYS_READLINKAT, uintptr(dirfd), uintptr(unsafe.Pointer(p)),
		uintptr(unsafe.Pointer(&buf[0])), uintptr(len(buf)), 0, 0)
	return int(n), e
}

func fstatfsFd(fd int, st *unix.Statfs_t) unix.Errno {
	_, _, e := unix.RawSyscall(unix.SYS_FSTATFS, uintptr(fd), uintptr(unsafe.Pointer(st)), 0)
	return e
}

// fileID identifies an object as path_equal does: the same inode reached
// through the same mount. mnt is 0 where statx has no mount id (gVisor);
// then dev and ino alone decide.
type fileID struct {
	dev, ino, mnt uint64
}

func idOf(st *unix.Statx_t) fileID {
	id := fileID{dev: unix.Mkdev(st.Dev_major, st.Dev_minor), ino: st.Ino}
	if st.Mask&unix.STATX_MNT_ID != 0 {
		id.mnt = st.Mnt_id
	}
	return id
}

// sameInode reports whether a and b are the same inode (any mount).
func (a fileID) sameInode(b fileID) bool { return a.dev == b.dev && a.ino == b.ino }
