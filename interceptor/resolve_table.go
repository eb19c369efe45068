package interceptor

import (
	"encoding/binary"

	"golang.org/x/sys/unix"
)

// How each syscall of the table resolves its paths, by name (the argument
// positions are the same on every arch): whether the last component is
// followed when it is a symlink, and which flag argument changes that.

// followRule says whether a path argument's trailing symlink is followed.
type followRule struct {
	// never: the call acts on the last component itself (lstat, unlink,
	// mkdir, rename, readlink, the new name of link and symlink, ...).
	never bool
	// flagArg holds the flags that decide (noArg: always follow).
	flagArg int8
	// noFollow: follow unless these flag bits are set
	// (AT_SYMLINK_NOFOLLOW, IN_DONT_FOLLOW).
	noFollow uint64
	// follow: follow only when these bits are set (linkat's
	// AT_SYMLINK_FOLLOW).
	follow uint64
	// emptyPath: AT_EMPTY_PATH in flagArg makes "" name the dirfd itself.
	emptyPath bool
}

var (
	followAlways = followRule{flagArg: noArg}
	followNever  = followRule{never: true, flagArg: noArg}
)

func atNoFollow(arg int8) followRule {
	return followRule{flagArg: arg, noFollow: unix.AT_SYMLINK_NOFOLLOW, emptyPath: true}
}

// followByName gives the rule of every path syscall of the tables; [1] is
// the second path argument when it differs from the first.
var followByName = map[string][2]followRule{
	"open": {followAlways}, "openat": {followAlways}, "openat2": {followAlways}, "creat": {followAlways},
	"stat": {followAlways}, "lstat": {followNever},
	"newfstatat": {atNoFollow(3)}, "statx": {atNoFollow(2)},
	"access": {followAlways}, "faccessat": {followAlways}, "faccessat2": {atNoFollow(3)},
	"readlink": {followNever}, "readlinkat": {followNever},
	"mkdir": {followNever}, "mkdirat": {followNever}, "mknod": {followNever}, "mknodat": {followNever},
	"rmdir": {followNever}, "unlink": {followNever}, "unlinkat": {followNever},
	"rename": {followNever, followNever}, "renameat": {followNever, followNever}, "renameat2": {followNever, followNever},
	"link":    {followNever, followNever},
	"linkat":  {{flagArg: 4, follow: unix.AT_SYMLINK_FOLLOW, emptyPath: true}, followNever},
	"symlink": {followNever}, "symlinkat": {followNever},
	"truncate": {followAlways},
	"chmod":    {followAlways}, "fchmodat": {followAlways}, "fchmodat2": {atNoFollow(3)},
	"chown": {followAlways}, "lchown": {followNever}, "fchownat": {atNoFollow(4)},
	"utime": {followAlways}, "utimes": {followAlways}, "futimesat": {followAlways}, "utimensat": {atNoFollow(3)},
	"setxattr": {followAlways}, "getxattr": {followAlways}, "listxattr": {followAlways}, "removexattr": {followAlways},
	"lsetxattr": {followNever}, "lgetxattr": {followNever}, "llistxattr": {followNever}, "lremovexattr": {followNever},
	"setxattrat": {atNoFollow(2)}, "getxattrat": {atNoFollow(2)}, "listxattrat": {atNoFollow(2)}, "removexattrat": {atNoFollow(2)},
	"inotify_add_watch": {{flagArg: 2, noFollow: unix.IN_DONT_FOLLOW}},
	"chdir":             {followAlways},
	"statfs":            {followAlways},
	"mount":             {followAlways}, // a bind mount's source
}

// callSemantics is what one path argument of one call does, read from the
// registers (and openat2's struct open_how).
type callSemantics struct {
	op      FileOp
	follow  bool
	resolve uint64 // openat2's RESOLVE_* flags
	// write: an open for writing (O_WRONLY, O_RDWR, O_TRUNC, creat).
	write bool
	// trunc: the open truncates (O_TRUNC, creat): no content to keep.
	trunc bool
	// create: the call may create this path (O_CREAT, mkdir, the new
	// name of link/rename/symlink, ...).
	create bool
	// excl: O_CREAT|O_EXCL.
	excl bool
	// emptyPath: AT_EMPTY_PATH is set.
	emptyPath bool
	// source: the first path of rename or link (the object moved or
	// linked, which must not be a real file a rule covers).
	source bool
}

// semantics reads what path argument i of a call of e does.
func (t *Tracer) semantics(th *thread, e *entry, i int, r *regs) callSemantics {
	s := callSemantics{op: fileOp(e, r), create: e.paths[i].create}
	rules := followByName[e.name]
	fr := rules[0]
	if i == 1 && (rules[1] != followRule{}) {
		fr = rules[1]
	}
	switch {
	case fr.never:
	case fr.flagArg == noArg:
		s.follow = true
	default:
		flags := r.arg(int(fr.flagArg))
		if fr.follow != 0 {
			s.follow = flags&fr.follow != 0
		} else {
			s.follow = flags&fr.noFollow == 0
		}
		if fr.emptyPath && flags&unix.AT_EMPTY_PATH != 0 {
			s.emptyPath = true
		}
	}
	if (s.op == OpRename || s.op == OpLink) && i == 0 {
		s.source = true
	}
	if e.op == OpOpen {
		if e.flags == noArg {
			// creat: O_CREAT|O_WRONLY|O_TRUNC.
			s.write, s.trunc, s.create = true, true, true
			return s
		}
		flags, ok := t.openFlags(th, e, r)
		if !ok {
			// Unreadable struct open_how: the kernel fails it (EFAULT);
			// decide as for a write, the safe side.
			s.write = true
			return s
		}
		if e.flagsInHow && len(t.how) >= 24 {
			// The copy the kernel will read (struct open_how: flags,
			// mode, resolve).
			s.resolve = binary.NativeEndian.Uint64(t.how[16:24])
		}
		if flags&unix.O_PATH != 0 {
			// O_PATH ignores every flag but O_DIRECTORY, O_NOFOLLOW and
			// O_CLOEXEC.
			s.follow = flags&unix.O_NOFOLLOW == 0
			return s
		}
		s.write = flags&unix.O_ACCMODE != unix.O_RDONLY || flags&unix.O_TRUNC != 0
		s.trunc = flags&unix.O_TRUNC != 0
		s.create = flags&unix.O_CREAT != 0 || flags&unix.O_TMPFILE == unix.O_TMPFILE
		s.excl = flags&(unix.O_CREAT|unix.O_EXCL) == unix.O_CREAT|unix.O_EXCL
		// O_CREAT|O_EXCL never follows a trailing symlink (it fails with
		// EEXIST on one); O_NOFOLLOW fails on it with ELOOP.
		s.follow = flags&unix.O_NOFOLLOW == 0 && !s.excl
	}
	return s
}

// changes reports whether the call changes the file or directory entry
// the path names (and so must never reach a real file a rule covers).
func (s callSemantics) changes() bool {
	return s.write || s.create || s.op.Changes()
}
