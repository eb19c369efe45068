package interceptor

import "sort"

// entryKind says what the tracer does with a syscall of the table.
type entryKind uint8

const (
	// kindPath: rewrite path arguments that name a redirected path.
	kindPath entryKind = iota
	// kindStatfs: like kindPath, and rewrite the statfs result's f_type.
	kindStatfs
	// kindFstatfs: rewrite the statfs result's f_type of an fd.
	kindFstatfs
	// kindWatch: the call may change the caller's root or mount namespace
	// (chroot, pivot_root, setns, unshare) or the mount table (mount,
	// umount2, move_mount): the resolver's cached views are dropped at its
	// entry and again at its exit.
	kindWatch
	// kindHandle: open_by_handle_at names a file without a path; the
	// resolver opens the handle itself to learn which file it is.
	kindHandle
	// kindFdChange: the call changes the file of its fd argument 0
	// (fchmod, fchown, fsetxattr, fremovexattr): refused when that is a
	// real file a rule covers (opened for reading, the tree lacking it).
	kindFdChange
	// kindMount: mount(2). It changes the mount table, as kindWatch; a
	// bind mount's source (argument 0) is a path like any other (a
	// redirected directory binds its tree); and a cgroup filesystem is
	// refused when the cgroup hierarchy is emulated (see mountEnter).
	kindMount
	// kindGetcwd: getcwd names no path, but its result does: a cwd
	// inside a redirect's host tree is reported as the guest path it
	// serves (reverse.go). Its exit stop is asked for only then.
	kindGetcwd
	// kindBpf: bpf(2), for device programs on emulated cgroups
	// (bpf_cgroup.go).
	kindBpf
)

// noArg marks an absent argument index.
const noArg = -1

// pathArg describes one path argument of a syscall.
type pathArg struct {
	idx    int8 // argument register holding the path pointer
	dirfd  int8 // argument holding the dirfd it is relative to, or noArg (cwd)
	create bool // the call creates this path (mkdir, link's new path, ...)
}

// entry is one syscall the tracer may need to see.
type entry struct {
	nr    int
	name  string
	kind  entryKind
	op    FileOp // what the call does with its paths (see fileOpOf)
	paths []pathArg
	// flags is the argument holding open(2) flags (O_CREAT makes the path a
	// created one), or noArg.
	flags int8
	// flagsInHow: the flags are the first u64 of the struct open_how that
	// argument `flags` points to (openat2).
	flagsInHow bool
	// statfsBuf is the argument pointing to the struct statfs result.
	statfsBuf int8
	// out and outSize are the arguments of a path result buffer and its
	// size (readlink, readlinkat, getcwd), or noArg: a result naming a
	// file inside a redirect's host tree is turned back into the guest
	// path (reverse.go).
	out, outSize int8
	// why says what nodeboot does with the call, for humans reading the table.
	why string
}

// Constructors for table entries; p(i) is a cwd-relative path in argument
// i, at(d, i) one relative to the dirfd in argument d.
func p(i int) pathArg      { return pathArg{idx: int8(i), dirfd: noArg} }
func at(d, i int) pathArg  { return pathArg{idx: int8(i), dirfd: int8(d)} }
func mk(a pathArg) pathArg { a.create = true; return a }

func pathCall(nr int, name string, args ...pathArg) entry {
	return entry{nr: nr, name: name, kind: kindPath, paths: args, flags: noArg, statfsBuf: noArg,
		out: noArg, outSize: noArg, why: "rewrite path when redirected"}
}

// readlinkCall is readlink or readlinkat: the result buffer is argument
// out, its size argument out+1.
func readlinkCall(nr int, name string, out int, path pathArg) entry {
	e := pathCall(nr, name, path)
	e.out, e.outSize = int8(out), int8(out+1)
	e.why = "rewrite path when redirected; a /proc magic link's target inside a host tree reads as its guest path"
	return e
}

func getcwdCall(nr int) entry {
	return entry{nr: nr, name: "getcwd", kind: kindGetcwd, flags: noArg, statfsBuf: noArg, out: 0, outSize: 1,
		why: "a cwd inside a redirect's host tree reads as the guest path it serves"}
}

func openCall(nr int, name string, flags int, args ...pathArg) entry {
	e := pathCall(nr, name, args...)
	e.flags = int8(flags)
	e.why = "rewrite path when redirected; O_CREAT creates below HOST"
	return e
}

func openat2Call(nr int) entry {
	e := openCall(nr, "openat2", 2, at(0, 1))
	e.flagsInHow = true
	return e
}

func statfsCall(nr int) entry {
	return entry{nr: nr, name: "statfs", kind: kindStatfs, paths: []pathArg{p(0)}, flags: noArg, statfsBuf: 1,
		out: noArg, outSize: noArg, why: "rewrite path when redirected; rewrite f_type by --fstype"}
}

func fstatfsCall(nr int) entry {
	return entry{nr: nr, name: "fstatfs", kind: kindFstatfs, flags: noArg, statfsBuf: 1,
		out: noArg, outSize: noArg, why: "rewrite f_type by --fstype"}
}

func watchCall(nr int, name string) entry {
	return entry{nr: nr, name: name, kind: kindWatch, flags: noArg, statfsBuf: noArg, out: noArg, outSize: noArg,
		why: "may change the root or mount namespace: drop the resolver's cached views"}
}

func mountCall(nr int) entry {
	return entry{nr: nr, name: "mount", kind: kindMount, paths: []pathArg{p(0)}, flags: noArg, statfsBuf: noArg, out: noArg, outSize: noArg,
		why: "drop the resolver's cached views; rewrite a bind mount's source when redirected; refuse cgroup mounts over an emulated hierarchy"}
}

func handleCall(nr int) entry {
	return entry{nr: nr, name: "open_by_handle_at", kind: kindHandle, flags: 2, statfsBuf: noArg, out: noArg, outSize: noArg,
		why: "names a file by handle: refused when a rule covers the file (no redirect by handle)"}
}

func fdChangeCall(nr int, name string) entry {
	return entry{nr: nr, name: name, kind: kindFdChange, flags: noArg, statfsBuf: noArg, out: noArg, outSize: noArg,
		why: "changes the file of an fd: refused when a rule covers that real file"}
}

// opByName gives the operation of every syscall of the tables, by name
// (the names are the same on every arch).
var opByName = map[string]FileOp{
	"open": OpOpen, "openat": OpOpen, "openat2": OpOpen, "creat": OpOpen,
	"stat": OpStat, "lstat": OpStat, "newfstatat": OpStat, "statx": OpStat,
	"access": OpStat, "faccessat": OpStat, "faccessat2": OpStat,
	"readlink": OpStat, "readlinkat": OpStat, "statfs": OpStat, "fstatfs": OpStat,
	"getxattr": OpStat, "lgetxattr": OpStat, "listxattr": OpStat, "llistxattr": OpStat,
	"getxattrat": OpStat, "listxattrat": OpStat,
	"mkdir": OpMkdir, "mkdirat": OpMkdir,
	"rmdir": OpRmdir, "unlink": OpUnlink, "unlinkat": OpUnlink, // unlinkat: see fileOp
	"rename": OpRename, "renameat": OpRename, "renameat2": OpRename,
	"link": OpLink, "linkat": OpLink, "symlink": OpSymlink, "symlinkat": OpSymlink,
	"mknod": OpMknod, "mknodat": OpMknod, "truncate": OpTruncate,
	"chmod": OpSetattr, "fchmodat": OpSetattr, "fchmodat2": OpSetattr,
	"chown": OpSetattr, "lchown": OpSetattr, "fchownat": OpSetattr,
	"utime": OpSetattr, "utimes": OpSetattr, "futimesat": OpSetattr, "utimensat": OpSetattr,
	"setxattr": OpSetattr, "lsetxattr": OpSetattr, "removexattr": OpSetattr, "lremovexattr": OpSetattr,
	"setxattrat": OpSetattr, "removexattrat": OpSetattr,
	"inotify_add_watch": OpWatch, "chdir": OpOther, "getcwd": OpOther,
	"chroot": OpOther, "pivot_root": OpOther, "setns": OpOther, "unshare": OpOther,
	"mount": OpOther, "bpf": OpOther, "umount2": OpOther, "move_mount": OpOther,
	"fchmod": OpSetattr, "fchown": OpSetattr, "fsetxattr": OpSetattr, "fremovexattr": OpSetattr, "open_by_handle_at": OpOpen,
}

// table maps syscall numbers of this arch to entries; built from the
// per-arch list archEntries.
var table = func() map[int]*entry {
	m := make(map[int]*entry, len(archEntries))
	for i := range archEntries {
		e := &archEntries[i]
		op, ok := opByName[e.name]
		if !ok {
			panic("interceptor: syscall without an operation: " + e.name)
		}
		e.op = op
		if _, dup := m[e.nr]; dup {
			panic("interceptor: duplicate syscall in table: " + e.name)
		}
		m[e.nr] = e
	}
	return m
}()

// tableIndex gives each entry a dense index, for counters and BPF data.
var tableIndex = func() map[int]int {
	nrs := make([]int, 0, len(archEntries))
	for _, e := range archEntries {
		nrs = append(nrs, e.nr)
	}
	sort.Ints(nrs)
	m := make(map[int]int, len(nrs))
	for i, nr := range nrs {
		m[nr] = i
	}
	return m
}()

// tableByIndex is the inverse of tableIndex.
var tableByIndex = func() []*entry {
	out := make([]*entry, len(tableIndex))
	for nr, i := range tableIndex {
		out[i] = table[nr]
	}
	return out
}()
