package interceptor

import (
	"bytes"
	"encoding/binary"
	"os"
	"strconv"
	"syscall"
	"time"

	"github.com/nodeboot/nodeboot/interceptor/rules"

	"golang.org/x/sys/unix"
)

// errnoMax bounds the -errno range of syscall return values.
const errnoMax = 4095

// seccompStop handles PTRACE_EVENT_SECCOMP: the thread is entering a
// syscall the filter sends to the tracer. The filter's SECCOMP_RET_DATA
// names the syscall and whether its exit is needed, but the tracer reads the
// registers anyway, and the number in them says the same, so it skips the
// PTRACE_GETEVENTMSG that reading the data would cost on every stop.
func (t *Tracer) seccompStop(th *thread) {
	if err := getRegs(th.tid, &t.regs); err != nil {
		t.resume(th, 0)
		return
	}
	nr := t.regs.syscallNo()
	if nr == sysFstatfs && int32(t.regs.arg(0)) == probeFD {
		// The shim's probe (dataProbe).
		if t.startup {
			th.probe = true
			th.awaitExit = true
		}
		t.resume(th, 0)
		return
	}
	e := table[nr]
	if e == nil {
		t.resume(th, 0)
		return
	}
	t.enter(th, e)
}

// syscallStop handles a syscall-enter or syscall-exit stop (SIGTRAP|0x80).
// ptrace does not say which of the two it is; the thread's state does.
func (t *Tracer) syscallStop(th *thread) {
	if th.probe {
		t.probeStop(th)
		return
	}
	if t.stopAll {
		if !th.inSyscall {
			th.inSyscall = true
			if err := getRegs(th.tid, &t.regs); err != nil {
				t.resume(th, 0)
				return
			}
			e := table[t.regs.syscallNo()]
			if e == nil {
				t.countOther()
				t.resume(th, 0)
				return
			}
			t.enter(th, e)
			return
		}
		th.inSyscall = false
		if th.call == nil {
			if th.passed > 0 {
				// The exit of a table syscall that needed no work.
				t.cnt.perCall[th.passed-1].stops.Add(1)
				th.passed = 0
			} else {
				t.countOther()
			}
			t.resume(th, 0)
			return
		}
		t.exit(th)
		return
	}
	if th.call == nil {
		// Not ours to handle (a stray stop after PTRACE_SYSCALL).
		th.awaitExit = false
		t.resume(th, 0)
		return
	}
	if t.oldOrder && !th.sawEnter {
		// This kernel reported the seccomp stop first; this is the
		// syscall-enter stop of the same call. Its exit comes next.
		th.sawEnter = true
		t.resume(th, 0)
		return
	}
	t.exit(th)
}

// probeStop reads the stop that follows the shim's probe seccomp stop:
// fstatfs(probeFD) fails with EBADF, so a return register holding -EBADF
// means syscall-exit (Linux >= 4.8 order: enter, then seccomp); anything
// else is the syscall-enter stop of the older order (seccomp, then enter),
// which gVisor keeps.
func (t *Tracer) probeStop(th *thread) {
	if err := getRegs(th.tid, &t.regs); err != nil {
		th.clearCall()
		t.resume(th, 0)
		return
	}
	if t.regs.ret() == -int64(unix.EBADF) {
		th.probe = false
		th.awaitExit = false
	} else {
		t.oldOrder = true
	}
	t.resume(th, 0)
}

func (t *Tracer) countOther() {
	c := &t.cnt.perCall[otherIndex]
	c.stops.Add(1)
	c.nanos.Add(int64(time.Since(t.stopStart)))
}

// enter handles the entry of a syscall of the table (seccomp stop, or
// syscall-enter stop in stop-every-syscall mode). Precondition: t.regs holds
// the thread's registers.
func (t *Tracer) enter(th *thread, e *entry) {
	idx := tableIndex[e.nr]
	c := &t.cnt.perCall[idx]
	c.stops.Add(1)
	defer func() { c.nanos.Add(int64(time.Since(t.stopStart))) }()
	r := &t.regs
	var (
		call    pendingCall
		newPath [2]string
		set     [2]bool // newPath[i] is to be written ("" included)
		from    [2]string
		rules   [2]int
	)
	call.index = idx
	readPaths := t.needPaths || (e.kind == kindStatfs && t.m.needPathForFSType())
	if readPaths && th.slot < 0 && !th.mm.injectFailed && hasPathArg(e, r) && !t.takeSlot(th) {
		// The path may be rewritten and there is no scratch memory in this
		// address space yet: run an mmap first. The thread then enters this
		// syscall again, before anything (decide, which may call a
		// FileServer's Serve) has acted on it.
		t.inject(th)
		return
	}
	for i, a := range e.paths {
		addr := r.arg(int(a.idx))
		if addr == 0 || !readPaths {
			continue
		}
		raw, ok, err := readString(th.tid, addr, t.buf)
		if err != nil || !ok || len(raw) == 0 {
			// Unreadable, too long or empty (AT_EMPTY_PATH): the kernel
			// gives its own answer.
			continue
		}
		d := t.decide(th, e, i, raw, r)
		if d.errno != 0 {
			// TODO(scratch): fail the call with d.errno (syscall skipped at
			// entry, -errno at exit). Until then the argument is pointed at
			// an empty path, which fails with ENOENT and reaches nothing.
			d.kernelPath, d.rewritten = "", true
		}
		if d.req != nil {
			call.files = append(call.files, d.req)
		}
		if e.kind == kindStatfs {
			call.statfsPath = d.guest
		}
		if t.cfg.Observe != nil && d.guest != "" {
			call.observed = append(call.observed, d.guest)
		}
		if !d.rewritten {
			continue
		}
		if e.kind == kindStatfs {
			call.statfsHost = d.host
		}
		if t.cfg.Observe != nil && d.guest != "" {
			call.rewritten[len(call.observed)-1] = true
		}
		newPath[i], set[i], from[i], rules[i] = d.kernelPath, true, d.guest, d.rule
		call.argIdx[call.nargs] = a.idx
		call.argVal[call.nargs] = addr
		call.nargs++
	}
	if e.kind == kindStatfs && call.statfsHost == "" && call.statfsPath != "" {
		// Not redirected: a path inside a redirect's host tree is that
		// guest path, as for fstatfs below.
		call.statfsHost = call.statfsPath
		call.statfsPath = t.m.unredirect(call.statfsPath)
	}
	switch e.kind {
	case kindStatfs, kindFstatfs:
		if t.m.hasFSTypes() || t.cfg.Observe != nil {
			call.statfs = true
			call.statfsBuf = r.arg(int(e.statfsBuf))
			if e.kind == kindFstatfs && (t.m.needPathForFSType() || t.cfg.Observe != nil) {
				call.statfsHost = t.fdPath(th, int32(r.arg(0)))
				call.statfsPath = t.m.unredirect(call.statfsHost)
				if t.cfg.Observe != nil {
					call.observed = append(call.observed, call.statfsPath)
				}
			}
		}
	}
	observing := t.cfg.Observe != nil && len(call.observed) > 0
	if call.nargs == 0 && !call.statfs && len(call.files) == 0 && !observing {
		c.passes.Add(1)
		if t.stopAll {
			th.passed = idx + 1
		}
		t.resume(th, 0)
		return
	}
	if call.nargs > 0 && th.slot < 0 {
		// The scratch mmap failed in this address space: paths stay.
		call.nargs = 0
	}
	if call.nargs > 0 {
		base := th.mm.addr(th.slot)
		n := 0
		for i := range e.paths {
			if !set[i] {
				continue
			}
			dst := base + uint64(i)*pathMax
			// A thread often names the same file again (a poll loop
			// reading one /proc/sys value): the slot still holds it, as
			// only the tracer writes there.
			if th.slotHolds[i] != newPath[i] || newPath[i] == "" {
				b := append(t.buf[:0], newPath[i]...)
				b = append(b, 0)
				if err := writeMem(th.tid, dst, b); err != nil {
					if err != unix.ESRCH {
						t.log.Warn("cannot write to scratch memory; the path is left alone",
							"pid", th.tid, "path", from[i], "addr", dst, "err", err)
					}
					th.slotHolds[i] = ""
					call.nargs = 0
					break
				}
				th.slotHolds[i] = newPath[i]
			}
			r.setArg(int(e.paths[i].idx), dst)
			n++
		}
		if call.nargs > 0 {
			if err := setRegs(th.tid, r); err != nil {
				call.nargs = 0
			}
		}
		if call.nargs > 0 {
			for i := range e.paths {
				if !set[i] {
					continue
				}
				t.cnt.hit(rules[i])
				if t.cfg.OnRewrite != nil {
					t.cfg.OnRewrite(Rewrite{PID: th.tid, Syscall: e.name, From: from[i], To: newPath[i]})
				}
			}
		}
	}
	if call.nargs > 0 {
		c.rewrites.Add(1)
	} else if !call.statfs && len(call.files) == 0 && !observing {
		c.passes.Add(1)
		t.resume(th, 0)
		return
	}
	th.call = &call
	th.awaitExit = true
	th.sawEnter = false
	t.resume(th, 0)
}

// exit handles the syscall-exit stop of a call with work pending.
func (t *Tracer) exit(th *thread) {
	call := th.call
	th.call = nil
	th.awaitExit = false
	th.sawEnter = false
	c := &t.cnt.perCall[call.index]
	c.stops.Add(1)
	defer func() { c.nanos.Add(int64(time.Since(t.stopStart))) }()
	r := &t.regs
	if call.kind == pendInject || call.statfs || len(call.files) > 0 || len(call.observed) > 0 || needRegsToRestore {
		if err := getRegs(th.tid, r); err != nil {
			t.resume(th, 0)
			return
		}
	}
	if call.kind == pendInject {
		t.injected(th, call, r.ret())
		return
	}
	if call.nargs > 0 {
		if err := restoreArgs(th.tid, call, r); err != nil && err != unix.ESRCH {
			t.log.Warn("restore registers", "pid", th.tid, "err", err)
		}
	}
	for _, req := range call.files {
		t.cfg.Files.Done(req, r.ret())
	}
	var fsType int64
	if call.statfs && r.ret() == 0 {
		rewrote, typ := t.rewriteStatfs(th, call)
		fsType = typ
		if rewrote && call.nargs == 0 {
			c.rewrites.Add(1)
		} else if call.nargs == 0 {
			c.passes.Add(1)
		}
	} else if call.statfs && call.nargs == 0 {
		c.passes.Add(1)
	}
	if t.cfg.Observe != nil {
		var errno syscall.Errno
		if ret := r.ret(); ret < 0 && ret >= -errnoMax {
			errno = syscall.Errno(-ret)
		}
		name := tableByIndex[call.index].name
		for i, p := range call.observed {
			t.cfg.Observe(rules.Observation{PID: th.tid, Syscall: name, Path: p, Errno: errno,
				FSType: fsType, Rewritten: i < 2 && call.rewritten[i]})
		}
	}
	t.resume(th, 0)
}

// rewriteStatfs changes f_type (the first field of struct statfs on amd64
// and arm64) in the result buffer the kernel has just filled.
// It returns whether it rewrote, and the f_type the caller now sees.
func (t *Tracer) rewriteStatfs(th *thread, call *pendingCall) (bool, int64) {
	var b [8]byte
	if readMem(th.tid, call.statfsBuf, b[:]) != nil {
		return false, 0
	}
	real := int64(binary.NativeEndian.Uint64(b[:]))
	// A path rule may name the guest path or the path after redirection.
	to, rule, ok := t.m.fsType(call.statfsPath, real)
	if call.statfsHost != "" {
		if to2, rule2, ok2 := t.m.fsType(call.statfsHost, real); ok2 && (!ok || t.m.isTypeRule(rule)) {
			to, rule, ok = to2, rule2, ok2
		}
	}
	if !ok || to == real {
		return false, real
	}
	binary.NativeEndian.PutUint64(b[:], uint64(to))
	if writeMem(th.tid, call.statfsBuf, b[:]) != nil {
		return false, real
	}
	t.cnt.hit(rule)
	if t.cfg.OnRewrite != nil {
		name := tableByIndex[call.index].name
		t.cfg.OnRewrite(Rewrite{PID: th.tid, Syscall: name, From: rules.FSTypeName(real), To: rules.FSTypeName(to)})
	}
	return true, to
}

// takeSlot gives th a scratch slot in its address space if one is free.
func (t *Tracer) takeSlot(th *thread) bool {
	slot, ok := th.mm.take()
	if !ok {
		return false
	}
	th.slot = slot
	return true
}

// inject replaces the syscall th is entering by
// mmap(NULL, regionSize, PROT_READ|PROT_WRITE, MAP_PRIVATE|MAP_ANONYMOUS, -1, 0);
// injected puts the original syscall back once the mmap is done.
func (t *Tracer) inject(th *thread) {
	call := &pendingCall{kind: pendInject, index: tableIndex[t.regs.syscallNo()]}
	call.saved = t.regs
	r := t.regs
	r.setArg(0, 0)
	r.setArg(1, regionSize)
	r.setArg(2, unix.PROT_READ|unix.PROT_WRITE)
	r.setArg(3, unix.MAP_PRIVATE|unix.MAP_ANONYMOUS)
	r.setArg(4, ^uint64(0))
	r.setArg(5, 0)
	if err := setSyscall(th.tid, &r, sysMmap); err != nil {
		th.mm.injectFailed = true
		t.log.Warn("inject mmap", "pid", th.tid, "err", err)
		// Put the registers back as they were and let the call run as is.
		setRegs(th.tid, &call.saved)
		t.resume(th, 0)
		return
	}
	th.call = call
	th.awaitExit = true
	th.sawEnter = false
	t.resume(th, 0)
}

// injected handles the exit of the injected mmap: it records the region and
// rewinds the thread to execute its own syscall again, which stops again
// and then finds a free slot.
func (t *Tracer) injected(th *thread, call *pendingCall, ret int64) {
	if ret < 0 && ret >= -errnoMax {
		th.mm.injectFailed = true
		t.log.Warn("scratch mmap failed in tracee; its paths are left alone", "pid", th.tid, "errno", unix.Errno(-ret))
	} else {
		th.mm.regions = append(th.mm.regions, uint64(ret))
	}
	r := restartFrom(&call.saved)
	if err := setRegs(th.tid, &r); err != nil && err != unix.ESRCH {
		t.log.Warn("restore registers after mmap", "pid", th.tid, "err", err)
	}
	t.resume(th, 0)
}

// fileOp is the operation of a call of entry e with registers r:
// unlinkat removes a directory when its flags have AT_REMOVEDIR.
func fileOp(e *entry, r *regs) FileOp {
	if e.op == OpUnlink && len(e.paths) > 0 && e.paths[0].dirfd != noArg && r.arg(2)&unix.AT_REMOVEDIR != 0 {
		return OpRmdir
	}
	return e.op
}

// writes reports whether an open-family call opens for writing.
func (t *Tracer) writes(th *thread, e *entry, r *regs) bool {
	if e.op == OpOpen && e.flags == noArg {
		return true // creat: O_CREAT|O_WRONLY|O_TRUNC
	}
	flags, ok := t.openFlags(th, e, r)
	return ok && (flags&unix.O_ACCMODE != unix.O_RDONLY || flags&unix.O_TRUNC != 0)
}

// openFlags returns the open(2) flags of an open-family call: an argument,
// or the first field of openat2's struct open_how.
func (t *Tracer) openFlags(th *thread, e *entry, r *regs) (uint64, bool) {
	if e.flags == noArg {
		return 0, false
	}
	flags := r.arg(int(e.flags))
	if e.flagsInHow {
		var b [8]byte
		if readMem(th.tid, flags, b[:]) != nil {
			return 0, false
		}
		flags = binary.NativeEndian.Uint64(b[:])
	}
	return flags, true
}

// creates reports whether an open-family call has O_CREAT.
func (t *Tracer) creates(th *thread, e *entry, r *regs) bool {
	flags, ok := t.openFlags(th, e, r)
	return ok && flags&unix.O_CREAT != 0
}

// hostServes reports whether the redirected path should be used: it exists
// below HOST, or the call creates it and its parent exists there.
func hostServes(host string, create bool) bool {
	if lstatExists(host) {
		return true
	}
	if !create {
		return false
	}
	i := len(host) - 1
	for i > 0 && host[i] != '/' {
		i--
	}
	parent := host[:i]
	if parent == "" {
		parent = "/"
	}
	var st unix.Stat_t
	return fstatatRaw(parent, &st, 0) == nil && st.Mode&unix.S_IFMT == unix.S_IFDIR
}

// resolve turns a path argument into the clean absolute path the calling
// thread names: relative to its cwd or to the dirfd, with /proc/self and
// /proc/thread-self replaced by the caller's own /proc entries.
func (t *Tracer) resolve(th *thread, raw []byte, dirfdArg int8, r *regs) (string, bool) {
	var p string
	if raw[0] == '/' {
		p = rules.CleanPath(string(raw))
	} else {
		var base string
		if dirfdArg != noArg && int32(r.arg(int(dirfdArg))) != unix.AT_FDCWD {
			base = t.fdPath(th, int32(r.arg(int(dirfdArg))))
		} else {
			base = readlink("/proc/" + strconv.Itoa(th.tid) + "/cwd")
		}
		if base == "" || base[0] != '/' {
			return "", false
		}
		p = rules.CleanPath(base + "/" + string(raw))
	}
	return t.procSelf(th, p), true
}

// fdPath is the path an fd of the thread refers to, or "".
func (t *Tracer) fdPath(th *thread, fd int32) string {
	if fd < 0 {
		return ""
	}
	p := readlink("/proc/" + strconv.Itoa(th.tid) + "/fd/" + strconv.Itoa(int(fd)))
	if p == "" || p[0] != '/' {
		return ""
	}
	return p
}

// procSelf replaces a leading /proc/self or /proc/thread-self by the
// caller's /proc/TGID or /proc/TGID/task/TID.
func (t *Tracer) procSelf(th *thread, p string) string {
	const self, threadSelf = "/proc/self", "/proc/thread-self"
	switch {
	case rules.HasPathPrefix(p, self):
		return "/proc/" + strconv.Itoa(t.tgidOf(th)) + p[len(self):]
	case rules.HasPathPrefix(p, threadSelf):
		return "/proc/" + strconv.Itoa(t.tgidOf(th)) + "/task/" + strconv.Itoa(th.tid) + p[len(threadSelf):]
	}
	return p
}

// tgidOf returns the thread group of th, reading /proc when no clone event
// has told it yet.
func (t *Tracer) tgidOf(th *thread) int {
	if th.tgid != 0 {
		return th.tgid
	}
	if v, ok := procTgid(th.tid); ok {
		th.tgid = v
		return v
	}
	return th.tid
}

// procTgid reads the thread group of tid from /proc/TID/status; ok is false
// when the thread is gone.
func procTgid(tid int) (tgid int, ok bool) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(tid) + "/status")
	if err != nil {
		return 0, false
	}
	i := bytes.Index(b, []byte("\nTgid:"))
	if i < 0 {
		return 0, false
	}
	line := b[i+len("\nTgid:"):]
	if j := bytes.IndexByte(line, '\n'); j >= 0 {
		line = line[:j]
	}
	v, err := strconv.Atoi(string(bytes.TrimSpace(line)))
	return v, err == nil
}

// mustBeDir reports whether a path names a directory by its form: it ends
// in "/", "/." or "/.." (or is "." or "..").
func mustBeDir(raw []byte) bool {
	n := len(raw)
	switch {
	case n > 0 && raw[n-1] == '/':
		return true
	case bytes.HasSuffix(raw, []byte("/.")) || bytes.HasSuffix(raw, []byte("/..")):
		return true
	}
	return string(raw) == "." || string(raw) == ".."
}

func readlink(p string) string {
	var buf [pathMax]byte
	n, err := unix.Readlink(p, buf[:])
	if err != nil {
		return ""
	}
	return string(buf[:n])
}
