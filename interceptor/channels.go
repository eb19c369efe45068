package interceptor

import (
	"encoding/binary"

	"golang.org/x/sys/unix"
)

// Channels around the path rewrite that the tracer closes itself when every
// syscall stops (ModePtrace, or no filter could be installed): what the
// seccomp filter refuses (filterSpec.decide), and CLONE_UNTRACED, with
// which a child would run untraced. In seccomp mode an untraced child still
// carries the filter, whose SECCOMP_RET_TRACE without a tracer fails every
// path syscall with ENOSYS; without a filter nothing would stop it.

// stopAllEnter handles a syscall-enter stop in stop-every-syscall mode.
// PTRACE_GET_SYSCALL_INFO tells the ABI of the call (an int 0x80 from
// 64-bit code looks like any syscall in the registers) at the price of the
// register read it replaces for calls outside the table; without it
// (before Linux 5.3, gVisor) the registers are read instead.
func (t *Tracer) stopAllEnter(th *thread) {
	th.inSyscall = true
	var info syscallInfo
	haveRegs := false
	if !t.noSyscallInfo {
		err := ptraceGetSyscallInfo(th.tid, &info)
		if err == unix.ESRCH {
			return
		}
		if err == nil && info.op == unix.PTRACE_SYSCALL_INFO_EXIT {
			// The entry/exit toggle was off by one: the kernel knows.
			t.stopAllExit(th)
			return
		}
		if err != nil || info.op != unix.PTRACE_SYSCALL_INFO_ENTRY {
			t.noSyscallInfo = true
			t.log.Debug("PTRACE_GET_SYSCALL_INFO unavailable; reading registers at every syscall", "err", err, "op", info.op)
		}
	}
	if t.noSyscallInfo {
		if err := getRegs(th.tid, &t.regs); err != nil {
			t.resume(th, 0)
			return
		}
		haveRegs = true
		info.arch = auditArch
		if t.regs.compat() {
			info.arch = 0 // not native; which one does not matter
		}
		info.nr = uint64(t.regs.syscallNo())
		for i := range info.args {
			info.args[i] = t.regs.arg(i)
		}
	}
	compat := info.arch != auditArch
	act := t.spec.decide(info.arch, int32(info.nr), &info.args)
	if act&unix.SECCOMP_RET_ACTION_FULL == retErrno {
		// The registers are read for a 32-bit call too: skipSyscall
		// writes them all back, and stale ones (another stop's) would
		// send the thread elsewhere.
		if !haveRegs {
			if err := getRegs(th.tid, &t.regs); err != nil {
				t.resume(th, 0)
				return
			}
		}
		t.failOther(th, unix.Errno(act&unix.SECCOMP_RET_DATA), compat)
		return
	}
	nr := int(int64(info.nr))
	e := table[nr]
	if e == nil && nr != unix.SYS_CLONE && nr != unix.SYS_CLONE3 {
		t.countOther()
		t.resume(th, 0)
		return
	}
	if !haveRegs {
		if err := getRegs(th.tid, &t.regs); err != nil {
			t.resume(th, 0)
			return
		}
	}
	switch {
	case e != nil:
		t.enter(th, e)
	case nr == unix.SYS_CLONE:
		t.cloneEnter(th)
	default:
		t.clone3Enter(th)
	}
}

// cloneEnter clears CLONE_UNTRACED in clone's flags (the first argument on
// amd64 and arm64), which are in a register: no other thread can change
// them after the tracer looked.
func (t *Tracer) cloneEnter(th *thread) {
	r := &t.regs
	flags := r.arg(0)
	if flags&unix.CLONE_UNTRACED == 0 {
		t.countOther()
		t.resume(th, 0)
		return
	}
	r.setArg(0, flags&^unix.CLONE_UNTRACED)
	if err := setRegs(th.tid, r); err != nil {
		t.lostControl(th, "clear CLONE_UNTRACED", err)
		return
	}
	t.cnt.perCall[otherIndex].stops.Add(1)
	call := &pendingCall{kind: pendRewrite, index: otherIndex, nargs: 1}
	call.argIdx[0], call.argVal[0] = 0, flags
	th.call = call
	t.resume(th, 0)
}

// clone3Enter copies clone3's struct clone_args into the thread's scratch
// slot with CLONE_UNTRACED cleared, and points the argument there: the
// struct is in the tracee's memory, where another thread could set the
// flag again between the tracer's read and the kernel's.
func (t *Tracer) clone3Enter(th *thread) {
	const cloneArgsSizeVer0 = 64
	r := &t.regs
	size := r.arg(1)
	if size < cloneArgsSizeVer0 {
		// The kernel refuses it (EINVAL) before reading anything.
		t.countOther()
		t.resume(th, 0)
		return
	}
	call := &pendingCall{index: otherIndex}
	if size > slotSize {
		// The kernel takes up to a page (only zeros beyond its struct);
		// a slot holds two paths.
		t.fail(th, call, unix.E2BIG)
		return
	}
	if !th.hasSlot() && !t.takeSlot(th) {
		t.inject(th, otherIndex)
		return
	}
	b := make([]byte, size)
	if err := readMem(th.tid, r.arg(0), b); err != nil {
		if err == unix.ESRCH {
			return
		}
		t.fail(th, call, unix.EFAULT)
		return
	}
	flags := binary.NativeEndian.Uint64(b)
	binary.NativeEndian.PutUint64(b, flags&^unix.CLONE_UNTRACED)
	dst := th.mm.addr(th.slot)
	th.slotKnown = [2]bool{}
	if err := th.mm.write(th.tid, dst, b); err != nil {
		if err == unix.ESRCH {
			return
		}
		t.scratchLost(th, dst, err)
		t.fail(th, call, unix.ENOMEM)
		return
	}
	call.nargs = 1
	call.argIdx[0], call.argVal[0] = 0, r.arg(0)
	r.setArg(0, dst)
	if err := setRegs(th.tid, r); err != nil {
		t.lostControl(th, "point clone3 at its copy", err)
		return
	}
	t.cnt.perCall[otherIndex].stops.Add(1)
	th.call = call
	t.resume(th, 0)
}
