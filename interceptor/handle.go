package interceptor

import (
	"bytes"
	"encoding/binary"
	"os"
	"strconv"
	"sync/atomic"
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
		if r := t.roots[th.tid]; r != nil && r.startup {
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
			t.stopAllEnter(th)
			return
		}
		t.stopAllExit(th)
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

// stopAllExit handles a syscall-exit stop in stop-every-syscall mode.
func (t *Tracer) stopAllExit(th *thread) {
	th.inSyscall = false
	if th.call != nil {
		t.exit(th)
		return
	}
	if th.passed > 0 {
		// The exit of a table syscall that needed no work.
		t.cnt.perCall[th.passed-1].stops.Add(1)
		th.passed = 0
	} else {
		t.countOther()
	}
	t.resume(th, 0)
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
//
// Every path argument the tracer reads is read once, decided on (decide),
// and copied, rewritten or not, into the thread's scratch slot, which the
// argument register then points to: the kernel reads the bytes that were
// decided on, not the tracee's buffer, which another thread could change
// in between. When that cannot be done the call fails (fail closed).
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
		changed [2]bool // newPath[i] names another file than the tracee's path
	)
	call.index = idx
	switch e.kind {
	case kindWatch:
		t.watchEnter(th, &call)
		return
	case kindHandle:
		t.handleEnter(th, &call)
		return
	case kindFdChange:
		t.fdChangeEnter(th, &call)
		return
	case kindMount:
		if !t.mountEnter(th, &call) {
			return
		}
		// A bind mount: its source is decided on as a path, below.
		call.bump = true
	case kindBpf:
		t.bpfEnter(th, &call)
		return
	case kindGetcwd:
		t.getcwdEnter(th, &call)
		return
	}
	readPaths := t.needPaths || (e.kind == kindStatfs && t.m.needPathForFSType())
	if readPaths && hasPathArg(e, r) && !th.hasSlot() && !t.takeSlot(th) {
		// There is no free scratch slot in this address space: map a
		// region first. The thread then enters this syscall again, before
		// anything (decide, which may call a FileServer's Serve) has acted
		// on it.
		t.inject(th, idx)
		return
	}
	// openat2's struct open_how is read once too, and the kernel reads the
	// copy: its flags and RESOLVE_* decide what the path may reach.
	t.how = t.how[:0]
	if e.flagsInHow && readPaths {
		how, errno := t.readHow(th, r)
		if errno != 0 {
			t.fail(th, &call, errno)
			return
		}
		t.how = how
	}
	for i, a := range e.paths {
		addr := r.arg(int(a.idx))
		if !readPaths {
			continue
		}
		if addr == 0 {
			// A NULL path: utimensat's "the dirfd's own file"; other
			// calls fail by themselves (EFAULT).
			if d := t.decide(th, e, i, nil, r); d.errno != 0 {
				t.fail(th, &call, d.errno)
				return
			}
			continue
		}
		raw, ok, err := readString(th.tid, addr, t.buf)
		if err == unix.ESRCH {
			return // killed meanwhile: nothing to resume
		}
		if err != nil || !ok {
			// The kernel would fail too (EFAULT, or ENAMETOOLONG without a
			// NUL in PATH_MAX bytes); reading the buffer again later could
			// find a path there, so the call fails here.
			errno := unix.EFAULT
			if err == nil && len(raw) == len(t.buf) {
				errno = unix.ENAMETOOLONG
			}
			t.fail(th, &call, errno)
			return
		}
		// An empty path names nothing (ENOENT), or the dirfd's own file
		// with AT_EMPTY_PATH (decide refuses changing a covered one): it is
		// copied like any other.
		d := t.decide(th, e, i, raw, r)
		if d.req != nil {
			call.files = append(call.files, d.req)
		}
		if d.errno != 0 {
			t.fail(th, &call, d.errno)
			return
		}
		if e.kind == kindStatfs {
			call.statfsPath = d.guest
		}
		if e.out != noArg {
			t.readlinkEnter(th, e, d.guest, raw, &call)
		}
		if t.cfg.Observe != nil && d.guest != "" {
			call.observed = append(call.observed, d.guest)
		}
		newPath[i], set[i] = d.kernelPath, true
		call.argIdx[call.nargs] = a.idx
		call.argVal[call.nargs] = addr
		call.nargs++
		if !d.rewritten {
			continue
		}
		if e.kind == kindStatfs {
			call.statfsHost = d.host
		}
		if t.cfg.Observe != nil && d.guest != "" {
			call.rewritten[len(call.observed)-1] = true
		}
		changed[i], from[i], rules[i] = true, d.guest, d.rule
		call.rewrote = true
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
	if call.nargs > 0 {
		base := th.mm.addr(th.slot)
		for i := range e.paths {
			if !set[i] {
				continue
			}
			dst := base + uint64(i)*pathMax
			// A thread often names the same file again (a poll loop
			// reading one /proc/sys value): the slot still holds it, as
			// only the tracer writes there.
			if !th.slotKnown[i] || th.slotHolds[i] != newPath[i] {
				b := append(t.buf[:0], newPath[i]...)
				b = append(b, 0)
				if err := th.mm.write(th.tid, dst, b); err != nil {
					if err == unix.ESRCH {
						return
					}
					t.scratchLost(th, dst, err)
					call.nargs = 0
					t.fail(th, &call, unix.ENOMEM)
					return
				}
				th.slotHolds[i], th.slotKnown[i] = newPath[i], true
			}
			r.setArg(int(e.paths[i].idx), dst)
		}
		if len(t.how) > 0 {
			// The path is in the slot's first half; open_how goes in the
			// second.
			dst := base + pathMax
			if err := th.mm.write(th.tid, dst, t.how); err != nil {
				if err == unix.ESRCH {
					return
				}
				t.scratchLost(th, dst, err)
				call.nargs = 0
				t.fail(th, &call, unix.ENOMEM)
				return
			}
			th.slotKnown[1] = false
			call.argIdx[call.nargs] = int8(e.flags)
			call.argVal[call.nargs] = r.arg(int(e.flags))
			call.nargs++
			r.setArg(int(e.flags), dst)
		}
		if err := setRegs(th.tid, r); err != nil {
			t.lostControl(th, "set registers", err)
			return
		}
		for i := range e.paths {
			if !changed[i] {
				continue
			}
			t.cnt.hit(rules[i])
			if t.cfg.OnRewrite != nil {
				t.cfg.OnRewrite(Rewrite{PID: th.tid, Syscall: e.name, From: from[i], To: newPath[i]})
			}
		}
	}
	switch {
	case call.rewrote:
		c.rewrites.Add(1)
		call.counted = true
	case !call.statfs:
		// statfs is counted at its exit, where its result may be changed.
		c.passes.Add(1)
		call.counted = true
	}
	th.call = &call
	th.awaitExit = true
	th.sawEnter = false
	t.resume(th, 0)
}

// readHow reads openat2's struct open_how (argument 2, its size in
// argument 3) for the slot's second half. A size the kernel refuses
// without reading (below OPEN_HOW_SIZE_VER0) gives an empty copy and the
// register stays; a larger struct than the half holds fails the call.
func (t *Tracer) readHow(th *thread, r *regs) ([]byte, unix.Errno) {
	const openHowSizeVer0 = 24
	size := r.arg(3)
	if size < openHowSizeVer0 {
		return nil, 0
	}
	if size > pathMax {
		// The kernel takes up to a page, beyond its own struct only zeros.
		return nil, unix.E2BIG
	}
	b := t.howBuf[:size]
	if err := readMem(th.tid, r.arg(2), b); err != nil {
		return nil, unix.EFAULT
	}
	return b, 0
}

// fail makes the call th is entering fail with errno: the syscall is
// skipped and returns -errno (set at the entry stop, and again at the exit
// stop). FileServer requests already served hear of the failure at the
// exit. Precondition: t.regs holds the entry registers, unchanged.
func (t *Tracer) fail(th *thread, call *pendingCall, errno unix.Errno) {
	t.skip(th, call, -int64(errno), &t.cnt.perCall[call.index].fails)
}

// skip makes the call return ret without running it, counted in counter
// (fails, or rewrites when the tracer answered it itself).
func (t *Tracer) skip(th *thread, call *pendingCall, ret int64, counter *atomic.Uint64) {
	call.kind = pendFail
	call.errno = unix.Errno(-ret)
	call.nargs = 0
	if err := skipSyscall(th.tid, &t.regs, ret, false); err != nil {
		t.lostControl(th, "skip syscall", err)
		return
	}
	counter.Add(1)
	th.call = call
	th.awaitExit = true
	th.sawEnter = false
	t.resume(th, 0)
}

// failOther fails a syscall outside the table (refused by the filter's
// rules in stop-every-syscall mode). compat: the thread is in a 32-bit
// syscall, whose registers the tracer does not write.
func (t *Tracer) failOther(th *thread, errno unix.Errno, compat bool) {
	call := &pendingCall{kind: pendFail, index: otherIndex, errno: errno, compat: compat}
	if err := skipSyscall(th.tid, &t.regs, -int64(errno), compat); err != nil {
		t.lostControl(th, "skip syscall", err)
		return
	}
	t.cnt.perCall[otherIndex].fails.Add(1)
	th.call = call
	th.awaitExit = true
	th.sawEnter = false
	t.resume(th, 0)
}

// lostControl handles a thread whose registers the tracer could not set:
// it would run its syscall as the tracee wrote it, so its process is killed
// (fail closed). ESRCH means it is gone already.
func (t *Tracer) lostControl(th *thread, what string, err error) {
	if err == unix.ESRCH {
		return
	}
	t.log.Error("cannot control a traced thread; killing its process", "pid", th.tid, "op", what, "err", err)
	unix.Tgkill(t.tgidOf(th), th.tid, unix.SIGKILL)
	unix.Kill(t.tgidOf(th), unix.SIGKILL)
	t.resume(th, 0)
}

// scratchLost handles a failed write to scratch memory: the region is gone
// or replaced. The address space gives up its slots; the next call maps
// scratch again.
func (t *Tracer) scratchLost(th *thread, addr uint64, err error) {
	t.warnOnce("scratch-write:"+err.Error(), "scratch memory of a traced process is gone; the call fails with ENOMEM, the next one maps it again",
		"pid", th.tid, "addr", addr, "err", err)
	th.mm.lose()
	th.dropSlot()
}

// warnOnce logs msg the first time key is seen in this trace: one warning
// per cause, however many calls it makes fail.
func (t *Tracer) warnOnce(key, msg string, args ...any) {
	if t.warned[key] {
		return
	}
	t.warned[key] = true
	t.log.Warn(msg, args...)
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
	if call.kind == pendWatch {
		// The root or mount namespace may have changed meanwhile.
		t.res.bump()
		t.resume(th, 0)
		return
	}
	if call.bump {
		t.res.bump()
	}
	r := &t.regs
	if call.kind == pendInject || call.statfs || len(call.files) > 0 || len(call.observed) > 0 || call.rev != revNone ||
		(needRegsToRestore && call.kind != pendFail) || (needRegsToSetReturn && call.kind == pendFail && !call.compat) {
		if err := getRegs(th.tid, r); err != nil {
			t.resume(th, 0)
			return
		}
	}
	if call.kind == pendInject {
		t.injected(th, call, r.ret())
		return
	}
	ret := r.ret()
	if call.kind == pendFail {
		ret = -int64(call.errno)
		if !call.compat {
			if err := setReturn(th.tid, r, ret); err != nil && err != unix.ESRCH {
				t.log.Warn("set syscall return value", "pid", th.tid, "err", err)
			}
		}
	}
	if call.nargs > 0 {
		if err := restoreArgs(th.tid, call, r); err != nil && err != unix.ESRCH {
			t.log.Warn("restore registers", "pid", th.tid, "err", err)
		}
		if ret == -int64(unix.EFAULT) && call.kind == pendRewrite {
			// The kernel could not read the slot: the region may be gone.
			// The next call writes the slot again, and a failed write
			// maps scratch anew.
			th.slotKnown = [2]bool{}
		}
	}
	for _, req := range call.files {
		t.cfg.Files.Done(req, ret)
	}
	if call.rev != revNone && call.kind != pendFail {
		ret = t.reverse(th, call, r, ret)
	}
	var fsType int64
	if call.statfs && ret == 0 {
		rewrote, typ := t.rewriteStatfs(th, call)
		fsType = typ
		if rewrote && !call.counted {
			c.rewrites.Add(1)
		} else if !call.counted {
			c.passes.Add(1)
		}
	} else if call.statfs && !call.counted && call.kind != pendFail {
		c.passes.Add(1)
	}
	if t.cfg.Observe != nil && call.index < len(tableByIndex) {
		var errno syscall.Errno
		if ret < 0 && ret >= -errnoMax {
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
	th.slotGen = th.mm.gen
	th.slotKnown = [2]bool{}
	return true
}

// inject replaces the syscall th is entering by
//
//	mmap(region, regionSize, PROT_READ, MAP_PRIVATE|MAP_ANONYMOUS|MAP_FIXED_NOREPLACE, -1, 0)
//
// at the address space's next region of the scratch window; injected puts
// the original syscall back once the mmap is done. A read-only private
// mapping is not charged to overcommit (only writable private ones are),
// and its pages exist only once the tracer has written them. index is the
// table index of the syscall, for counters.
func (t *Tracer) inject(th *thread, index int) {
	a := th.mm
	if a.nextRegion >= windowRegions {
		t.warnOnce("scratch-full", "the scratch window of a traced process is full; its path calls fail with ENOMEM",
			"pid", th.tid, "regions", len(a.regions))
		t.fail(th, &pendingCall{index: index}, unix.ENOMEM)
		return
	}
	call := &pendingCall{kind: pendInject, index: index, region: a.nextRegion}
	call.saved = t.regs
	r := t.regs
	r.setArg(0, regionAddr(call.region))
	r.setArg(1, regionSize)
	r.setArg(2, unix.PROT_READ)
	r.setArg(3, unix.MAP_PRIVATE|unix.MAP_ANONYMOUS|unix.MAP_FIXED_NOREPLACE)
	r.setArg(4, ^uint64(0))
	r.setArg(5, 0)
	if err := setSyscall(th.tid, &r, sysMmap); err != nil {
		if err == unix.ESRCH {
			return
		}
		// Put the registers back as they were, and fail the call.
		if err := setRegs(th.tid, &call.saved); err != nil {
			t.lostControl(th, "restore registers", err)
			return
		}
		t.warnOnce("inject:"+err.Error(), "cannot make a traced thread map scratch memory; its path calls fail with ENOMEM",
			"pid", th.tid, "err", err)
		t.fail(th, &pendingCall{index: index}, unix.ENOMEM)
		return
	}
	th.call = call
	th.awaitExit = true
	th.sawEnter = false
	t.resume(th, 0)
}

// injected handles the exit of the injected mmap. Mapped: record the
// region and rewind the thread to execute its own syscall again, which
// stops again and then finds a free slot. EEXIST (something of the
// tracee's is there): rewind, and the next region is tried. Failed
// (RLIMIT_AS, vm.max_map_count, a seccomp filter of the program's own
// answering mmap with an error, ...): the tracee's syscall returns ENOMEM
// without running, and the next call tries again.
func (t *Tracer) injected(th *thread, call *pendingCall, ret int64) {
	a := th.mm
	want := regionAddr(call.region)
	switch {
	case uint64(ret) == want:
		a.regions = append(a.regions, want)
		a.nextRegion = max(a.nextRegion, call.region+1)
	case ret == -int64(unix.EEXIST):
		a.nextRegion = max(a.nextRegion, call.region+1)
	default:
		if ret < 0 && ret >= -errnoMax {
			errno := unix.Errno(-ret)
			t.warnOnce("scratch-mmap:"+errno.Error(), "cannot map scratch memory in a traced process; its path calls fail with ENOMEM until it can",
				"pid", th.tid, "errno", errno)
		} else {
			// MAP_FIXED_NOREPLACE came in Linux 4.17; before, the address
			// was a hint. The mapping stays (512 KiB of address space,
			// no memory) outside the window, where the filter cannot
			// protect it: it is not used.
			t.warnOnce("scratch-mmap-elsewhere", "the kernel placed scratch memory outside its window (no MAP_FIXED_NOREPLACE before Linux 4.17); path calls fail with ENOMEM",
				"pid", th.tid, "want", want, "got", uint64(ret))
		}
		// The thread is past the mmap: its own registers back, the
		// result ENOMEM, and no rewind.
		r := call.saved
		r.setRet(-int64(unix.ENOMEM))
		if err := setRegs(th.tid, &r); err != nil {
			t.lostControl(th, "restore registers after mmap", err)
			return
		}
		t.cnt.perCall[call.index].fails.Add(1)
		t.resume(th, 0)
		return
	}
	r := restartFrom(&call.saved)
	if err := setRegs(th.tid, &r); err != nil {
		t.lostControl(th, "restore registers after mmap", err)
		return
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

// openFlags returns the open(2) flags of an open-family call: an argument,
// or the first field of openat2's struct open_how.
func (t *Tracer) openFlags(th *thread, e *entry, r *regs) (uint64, bool) {
	if e.flags == noArg {
		return 0, false
	}
	flags := r.arg(int(e.flags))
	if e.flagsInHow {
		// The copy enter read (and the kernel will read), never the
		// tracee's struct again.
		if len(t.how) < 8 {
			return 0, false
		}
		flags = binary.NativeEndian.Uint64(t.how)
	}
	return flags, true
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
