package interceptor

import "golang.org/x/sys/unix"

// archEntries lists every arm64 syscall that takes a path nodeboot may
// redirect, with the argument index of each path, plus statfs and fstatfs.
// arm64 uses the generic syscall table: no open, stat, mkdir, rename, ...;
// only their *at forms exist.
var archEntries = []entry{
	openCall(unix.SYS_OPENAT, "openat", 2, at(0, 1)),
	openat2Call(unix.SYS_OPENAT2),
	pathCall(unix.SYS_NEWFSTATAT, "newfstatat", at(0, 1)),
	pathCall(unix.SYS_STATX, "statx", at(0, 1)),
	pathCall(unix.SYS_FACCESSAT, "faccessat", at(0, 1)),
	pathCall(unix.SYS_FACCESSAT2, "faccessat2", at(0, 1)),
	readlinkCall(unix.SYS_READLINKAT, "readlinkat", 2, at(0, 1)),
	pathCall(unix.SYS_MKDIRAT, "mkdirat", mk(at(0, 1))),
	pathCall(unix.SYS_MKNODAT, "mknodat", mk(at(0, 1))),
	pathCall(unix.SYS_UNLINKAT, "unlinkat", at(0, 1)),
	pathCall(unix.SYS_RENAMEAT, "renameat", at(0, 1), mk(at(2, 3))),
	pathCall(unix.SYS_RENAMEAT2, "renameat2", at(0, 1), mk(at(2, 3))),
	pathCall(unix.SYS_LINKAT, "linkat", at(0, 1), mk(at(2, 3))),
	pathCall(unix.SYS_SYMLINKAT, "symlinkat", mk(at(1, 2))),
	pathCall(unix.SYS_TRUNCATE, "truncate", p(0)),
	pathCall(unix.SYS_FCHMODAT, "fchmodat", at(0, 1)),
	pathCall(unix.SYS_FCHMODAT2, "fchmodat2", at(0, 1)),
	pathCall(unix.SYS_FCHOWNAT, "fchownat", at(0, 1)),
	pathCall(unix.SYS_UTIMENSAT, "utimensat", at(0, 1)),
	pathCall(unix.SYS_SETXATTR, "setxattr", p(0)),
	pathCall(unix.SYS_LSETXATTR, "lsetxattr", p(0)),
	pathCall(unix.SYS_GETXATTR, "getxattr", p(0)),
	pathCall(unix.SYS_LGETXATTR, "lgetxattr", p(0)),
	pathCall(unix.SYS_LISTXATTR, "listxattr", p(0)),
	pathCall(unix.SYS_LLISTXATTR, "llistxattr", p(0)),
	pathCall(unix.SYS_REMOVEXATTR, "removexattr", p(0)),
	pathCall(unix.SYS_LREMOVEXATTR, "lremovexattr", p(0)),
	pathCall(unix.SYS_SETXATTRAT, "setxattrat", at(0, 1)),
	pathCall(unix.SYS_GETXATTRAT, "getxattrat", at(0, 1)),
	pathCall(unix.SYS_LISTXATTRAT, "listxattrat", at(0, 1)),
	pathCall(unix.SYS_REMOVEXATTRAT, "removexattrat", at(0, 1)),
	pathCall(unix.SYS_INOTIFY_ADD_WATCH, "inotify_add_watch", p(1)),
	pathCall(unix.SYS_CHDIR, "chdir", p(0)),
	getcwdCall(unix.SYS_GETCWD),
	watchCall(unix.SYS_CHROOT, "chroot"),
	watchCall(unix.SYS_PIVOT_ROOT, "pivot_root"),
	watchCall(unix.SYS_SETNS, "setns"),
	watchCall(unix.SYS_UNSHARE, "unshare"),
	mountCall(unix.SYS_MOUNT),
	bpfCall(unix.SYS_BPF),
	watchCall(unix.SYS_UMOUNT2, "umount2"),
	watchCall(unix.SYS_MOVE_MOUNT, "move_mount"),
	handleCall(unix.SYS_OPEN_BY_HANDLE_AT),
	fdChangeCall(unix.SYS_FCHMOD, "fchmod"),
	fdChangeCall(unix.SYS_FCHOWN, "fchown"),
	fdChangeCall(unix.SYS_FSETXATTR, "fsetxattr"),
	fdChangeCall(unix.SYS_FREMOVEXATTR, "fremovexattr"),
	statfsCall(unix.SYS_STATFS),
	fstatfsCall(unix.SYS_FSTATFS),
}

// sysMmap and sysFstatfs are the numbers the tracer itself uses.
const (
	sysMmap    = unix.SYS_MMAP
	sysFstatfs = unix.SYS_FSTATFS
)

// fstatatNr is newfstatat, which the tracer
// itself calls.
const fstatatNr = unix.SYS_NEWFSTATAT
