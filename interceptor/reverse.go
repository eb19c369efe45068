package interceptor

import (
	"strings"

	"golang.org/x/sys/unix"
)

// Reverse translation: a few syscalls answer with the path of an object,
// not with the path the tracee used to reach it. When the object is a file
// a redirect serves from its host tree, the kernel names the tree's file:
// runc opens /sys/fs/cgroup (openat2, O_PATH|O_DIRECTORY), reads the fd's
// link /proc/thread-self/fd/N back and refuses to go on ("cgroupRootHandle
// N unexpectedly opened to <tree>/sys/fs/cgroup != /sys/fs/cgroup"); a
// program that chdirs into a redirected directory finds the tree in
// getcwd and /proc/self/cwd. As proot does, the tracer turns such results
// back into the guest path the file serves (an object inside a redirect's
// host tree is the guest path it serves, as decide says), at the exit of:
//
//   - readlink and readlinkat of a procfs magic link of a traced thread
//     whose target the kernel names by path (/proc/PID/fd/N, cwd, root,
//     exe, and the same below /proc/PID/task/TID; /proc/self and
//     /proc/thread-self resolve to those), decided at the entry from the
//     canonical path of the link itself, which decide computes anyway;
//     and readlinkat(fd, "") of a handle of a procfs symlink, in any
//     procfs (a private one from fsopen too), as filepath-securejoin
//     reads /proc/thread-self/fd/N. The tracer reads the target itself
//     at the entry (one readlink), and the exit does work only when
//     that target is inside a tree;
//   - getcwd, whose exit stop is asked for only when the thread's cwd is
//     in a host tree (one readlink of /proc/TID/cwd by the tracer at the
//     seccomp stop; otherwise the call goes on without an exit stop).
//
// Only the result buffer the kernel has just filled is written, as the
// kernel writes it (process_vm_writev, which respects page protection),
// and the return value follows: readlink truncates to its buffer without
// a NUL and returns the byte count; getcwd returns the length with its
// NUL, or fails with ERANGE when that does not fit. Results outside every
// tree are left as they are.
//
// Only for threads whose root and mount namespace are nodeboot's: the
// kernel's text is relative to the reader's root, and only then is it the
// tree's path in nodeboot's view, which the rules name.

// revKind says which result a call's exit turns back into a guest path.
type revKind uint8

const (
	revNone     revKind = iota
	revReadlink         // readlink, readlinkat of a magic link
	revGetcwd           // getcwd
)

// magicLink reports whether canon, a canonical path, is a procfs magic
// link of a traced thread whose target the kernel gives as a path:
// /proc/ID/{fd/N,cwd,root,exe} or /proc/ID/task/TID/{fd/N,cwd,root,exe}.
func (t *Tracer) magicLink(canon string) bool {
	rest, ok := strings.CutPrefix(canon, "/proc/")
	if !ok {
		return false
	}
	c := strings.Split(rest, "/")
	if len(c) >= 4 && c[1] == "task" {
		c = c[2:]
	}
	switch {
	case len(c) == 3 && c[1] == "fd" && isDigits(c[2]):
	case len(c) == 2 && (c[1] == "cwd" || c[1] == "root" || c[1] == "exe"):
	default:
		return false
	}
	if !isDigits(c[0]) {
		return false
	}
	return t.isTraced(atoiDigits(c[0]))
}

// isTraced reports whether id is a traced thread or thread group.
func (t *Tracer) isTraced(id int) bool {
	if _, ok := t.threads[id]; ok {
		return true
	}
	for _, th := range t.threads {
		if th.tgid == id {
			return true
		}
	}
	return false
}

// atoiDigits converts a string of digits (isDigits) to an int; -1 when it
// does not fit.
func atoiDigits(s string) int {
	n := 0
	for i := 0; i < len(s); i++ {
		if n > (1<<31)/10 {
			return -1
		}
		n = n*10 + int(s[i]-'0')
	}
	return n
}

// guestOfHost returns the guest path that the file at p (a path in
// nodeboot's view, as the kernel names it) serves: below a redirect's
// host tree, or a FileServer's host path (GuestNamer). ok is false for
// any other path, which stays as it is.
func (t *Tracer) guestOfHost(p string) (string, bool) {
	if p == "" || p[0] != '/' {
		return "", false
	}
	if _, _, ok := t.m.inHostTree(p); ok {
		if g := t.m.unredirect(p); g != p {
			return g, true
		}
	}
	if t.namer != nil {
		return t.namer.GuestOf(p)
	}
	return "", false
}

// readlinkEnter notes, at the entry of readlink or readlinkat, that its
// result is to be turned back into a guest path: when the link is a magic
// link of a traced thread (canon, the canonical path of the link, which
// decide computed from raw) or, for readlinkat's empty path (the dirfd's
// own object), any procfs symlink, and its target, read by the tracer, is
// inside a host tree. Precondition: t.regs holds the entry registers.
func (t *Tracer) readlinkEnter(th *thread, e *entry, canon string, raw []byte, call *pendingCall) {
	if !t.res.viewOf(th).same {
		return
	}
	// bufsiz is an int: the kernel reads the low half of the register.
	size := int32(t.regs.arg(int(e.outSize)))
	if size <= 0 {
		return // EINVAL
	}
	var text string
	switch {
	case len(raw) == 0 && e.paths[0].dirfd != noArg:
		// readlinkat(fd, "") reads the link fd is an O_PATH|O_NOFOLLOW
		// handle of: filepath-securejoin's ProcSelfFdReadlink (runc 1.2+)
		// opens thread-self/fd/N so in a private procfs.
		var ok bool
		if text, ok = t.procLinkOfFd(th, int(int32(t.regs.arg(int(e.paths[0].dirfd))))); !ok {
			return
		}
	case canon != "" && t.magicLink(canon):
		n, errno := sysReadlinkat(unix.AT_FDCWD, t.res.cp.of(canon), t.revBuf)
		if errno != 0 || n >= len(t.revBuf) {
			return
		}
		text = string(t.revBuf[:n])
	default:
		return
	}
	if _, ok := t.guestOfHost(text); !ok {
		return
	}
	call.rev, call.revText = revReadlink, text
	call.revBuf, call.revSize = t.regs.arg(int(e.out)), uint64(size)
	call.revSaved = saveResultBuf(th.tid, call.revBuf, min(uint64(len(text)), call.revSize))
}

// procLinkOfFd returns the target of the tracee's fd when that is a
// handle of a procfs symlink (opened O_PATH|O_NOFOLLOW), as readlinkat of
// it with an empty path reads it.
func (t *Tracer) procLinkOfFd(th *thread, fd int) (string, bool) {
	if fd < 0 {
		return "", false
	}
	// Opening the fd's magic link reaches the very object the fd holds.
	obj, e := sysOpenat(unix.AT_FDCWD, t.res.cp.of("/proc/"+itoa(th.tid)+"/fd/"+itoa(fd)), unix.O_PATH)
	if e != 0 {
		return "", false
	}
	defer sysClose(obj)
	var st unix.Statx_t
	var sfs unix.Statfs_t
	if fdStatx(obj, &st) != 0 || st.Mode&unix.S_IFMT != unix.S_IFLNK ||
		fstatfsFd(obj, &sfs) != 0 || sfs.Type != unix.PROC_SUPER_MAGIC {
		return "", false
	}
	n, e := sysReadlinkat(obj, t.res.cp.of(""), t.revBuf)
	if e != 0 || n >= len(t.revBuf) {
		return "", false
	}
	return string(t.revBuf[:n]), true
}

// getcwdEnter handles the seccomp stop (or syscall-enter stop) of
// getcwd(buf, size): its exit stop is asked for only when the thread's cwd
// is inside a host tree, which one readlink of /proc/TID/cwd tells.
func (t *Tracer) getcwdEnter(th *thread, call *pendingCall) {
	t.cnt.perCall[call.index].passes.Add(1)
	call.counted = true
	if t.needPaths && t.res.viewOf(th).same {
		n, e := sysReadlinkat(unix.AT_FDCWD, t.res.cp.of("/proc/"+itoa(th.tid)+"/cwd"), t.revBuf)
		if e == 0 && n > 0 && n < len(t.revBuf) && t.revBuf[0] == '/' {
			if _, ok := t.guestOfHost(string(t.revBuf[:n])); ok {
				call.rev = revGetcwd
				call.revBuf, call.revSize = t.regs.arg(0), t.regs.arg(1)
				call.revSaved = saveResultBuf(th.tid, call.revBuf, min(uint64(n)+1, call.revSize))
				th.call = call
				th.awaitExit = true
				th.sawEnter = false
				t.resume(th, 0)
				return
			}
		}
	}
	if t.stopAll {
		th.passed = call.index + 1
	}
	t.resume(th, 0)
}

// saveResultBuf reads the n bytes of a result buffer that the kernel's
// answer will cover, so that the part of them a shorter guest path does
// not cover can be put back as it was: the kernel would not have written
// there (a C program that zeroes its buffer and reads a NUL-terminated
// link relies on that). nil when they cannot be read; zeros go back then.
func saveResultBuf(pid int, addr, n uint64) []byte {
	if n == 0 || n > pathMax+1 {
		return nil
	}
	b := make([]byte, n)
	if readMem(pid, addr, b) != nil {
		return nil
	}
	return b
}

// reverse turns the result of a readlink or getcwd that names a file
// inside a host tree back into the guest path, at the syscall's exit, and
// returns the call's return value as the tracee now sees it.
// Precondition: r holds the exit registers.
func (t *Tracer) reverse(th *thread, call *pendingCall, r *regs, ret int64) int64 {
	var text string
	wrote := int64(0) // bytes of the buffer the kernel wrote
	switch call.rev {
	case revReadlink:
		if ret <= 0 || uint64(ret) > call.revSize || ret > pathMax {
			return ret
		}
		wrote = ret
		b := t.revBuf[:ret]
		if readMem(th.tid, call.revBuf, b) != nil {
			return ret
		}
		text = string(b)
		if uint64(ret) == call.revSize {
			// Perhaps truncated: the whole target is what the tracer read
			// at the entry (the same text, as the thread's view is
			// nodeboot's), if the kernel's answer starts so.
			if !strings.HasPrefix(call.revText, text) {
				return ret
			}
			text = call.revText
		}
	case revGetcwd:
		switch {
		case ret > 0 && uint64(ret) <= call.revSize && ret <= int64(len(t.revBuf)):
			wrote = ret
			b := t.revBuf[:ret]
			if readMem(th.tid, call.revBuf, b) != nil || b[ret-1] != 0 {
				return ret
			}
			text = string(b[:ret-1])
		case ret == -int64(unix.ERANGE):
			// The tree's path did not fit; the guest path may.
			n, e := sysReadlinkat(unix.AT_FDCWD, t.res.cp.of("/proc/"+itoa(th.tid)+"/cwd"), t.revBuf)
			if e != 0 || n >= len(t.revBuf) {
				return ret
			}
			text = string(t.revBuf[:n])
		default:
			return ret
		}
	default:
		return ret
	}
	guest, ok := t.guestOfHost(text)
	if !ok || guest == text {
		return ret
	}
	var out []byte
	v := int64(0)
	switch call.rev {
	case revReadlink:
		out = []byte(guest)
		if uint64(len(out)) > call.revSize {
			out = out[:call.revSize]
		}
		v = int64(len(out))
	case revGetcwd:
		if uint64(len(guest))+1 > call.revSize {
			v = -int64(unix.ERANGE)
		} else {
			out = append([]byte(guest), 0)
			v = int64(len(out))
		}
	}
	// The bytes the kernel wrote beyond the guest path go back as they
	// were before the call.
	if int64(len(out)) < wrote {
		tail := make([]byte, wrote-int64(len(out)))
		if int64(len(call.revSaved)) >= wrote {
			copy(tail, call.revSaved[len(out):wrote])
		}
		out = append(out, tail...)
	}
	if err := writeResult(th.tid, call.revBuf, out); err != nil {
		if err == unix.ESRCH {
			return ret
		}
		return t.setResult(th, r, ret, -int64(unix.EFAULT))
	}
	if v >= 0 && t.cfg.OnRewrite != nil {
		t.cfg.OnRewrite(Rewrite{PID: th.tid, Syscall: tableByIndex[call.index].name, From: text, To: guest})
	}
	return t.setResult(th, r, ret, v)
}

// setResult makes v the return value of the syscall th is leaving (ret
// until now), and returns what the thread sees.
func (t *Tracer) setResult(th *thread, r *regs, ret, v int64) int64 {
	if v == ret {
		return ret
	}
	if err := setReturn(th.tid, r, v); err != nil {
		if err != unix.ESRCH {
			t.log.Warn("set syscall return value", "pid", th.tid, "err", err)
		}
		return ret
	}
	return v
}

// writeResult writes a syscall's result into the tracee's buffer as the
// kernel's own copy would: process_vm_writev respects page protection, so
// a buffer the kernel could not have written fails (EFAULT). PTRACE_POKEDATA
// only where process_vm_writev is missing.
func writeResult(pid int, addr uint64, b []byte) error {
	if len(b) == 0 {
		return nil
	}
	n, err := processVM(unix.SYS_PROCESS_VM_WRITEV, pid, addr, b)
	switch {
	case err == nil && n == len(b):
		return nil
	case err == unix.ENOSYS:
		_, perr := unix.PtracePokeData(pid, uintptr(addr), b)
		return perr
	case err == nil:
		return unix.EFAULT
	}
	return err
}
