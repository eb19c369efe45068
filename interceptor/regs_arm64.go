package interceptor

import (
	"unsafe"

	"golang.org/x/sys/unix"
)

// auditArch is the seccomp_data.arch value of native syscalls.
const auditArch = unix.AUDIT_ARCH_AARCH64

// syscallInsnLen is the length of `svc #0`.
const syscallInsnLen = 4

// x32Bit has no meaning on arm64.
const x32Bit = 0

// scratchBase is the start of the scratch window: 32 GiB, valid on every
// arm64 kernel (the smallest user address space, VA_BITS=36 with 16K
// pages, is 64 GiB) and far from where the kernel hands out mappings by
// default (top-down from below the stack; PIE binaries at 2/3 of the
// address space; static binaries at 4 MiB).
const scratchBase uint64 = 0x8_0000_0000

// nativeArch describes this arch to the seccomp program.
var nativeArch = sysArch{
	name:   "arm64",
	audit:  auditArch,
	x32Bit: x32Bit,
	window: scratchBase,
	nr: map[string]int{
		"munmap": unix.SYS_MUNMAP, "mprotect": unix.SYS_MPROTECT, "pkey_mprotect": unix.SYS_PKEY_MPROTECT,
		"madvise": unix.SYS_MADVISE, "remap_file_pages": unix.SYS_REMAP_FILE_PAGES, "mmap": unix.SYS_MMAP,
		"mremap": unix.SYS_MREMAP, "shmat": unix.SYS_SHMAT,
		"io_uring_setup": unix.SYS_IO_URING_SETUP, "io_uring_enter": unix.SYS_IO_URING_ENTER,
		"io_uring_register": unix.SYS_IO_URING_REGISTER, "fstatfs": unix.SYS_FSTATFS,
	},
}

// regs holds a thread's general registers (user_pt_regs).
type regs struct{ r unix.PtraceRegs }

// arm64 has no PTRACE_GETREGS; registers travel as the NT_PRSTATUS regset.
func getRegs(pid int, r *regs) error {
	return ptraceRegSet(unix.PTRACE_GETREGSET, pid, unix.NT_PRSTATUS, unsafe.Pointer(&r.r), unsafe.Sizeof(r.r))
}

func setRegs(pid int, r *regs) error {
	return ptraceRegSet(unix.PTRACE_SETREGSET, pid, unix.NT_PRSTATUS, unsafe.Pointer(&r.r), unsafe.Sizeof(r.r))
}

// syscallNo is the syscall number, in x8.
func (r *regs) syscallNo() int { return int(int64(r.r.Regs[8])) }

// arg returns syscall argument i: x0..x5. At a syscall-exit stop x0 holds
// the return value instead.
func (r *regs) arg(i int) uint64 {
	if i < 0 || i > 5 {
		panic("syscall argument index out of range")
	}
	return r.r.Regs[i]
}

func (r *regs) setArg(i int, v uint64) {
	if i < 0 || i > 5 {
		panic("syscall argument index out of range")
	}
	r.r.Regs[i] = v
}

// compat reports whether the thread runs 32-bit code; the 64-bit register
// view cannot tell (PTRACE_GET_SYSCALL_INFO does).
func (r *regs) compat() bool { return false }

// ret is the syscall's return value (x0) at a syscall-exit stop.
func (r *regs) ret() int64 { return int64(r.r.Regs[0]) }

// setRet sets the return value register (x0).
func (r *regs) setRet(v int64) { r.r.Regs[0] = uint64(v) }

// setSyscall makes the stopped thread run syscall nr with the arguments now
// in r. The kernel has already copied x8 into its own syscallno by the time
// of a seccomp or syscall-enter stop, so changing x8 alone does nothing:
// the number goes through the NT_ARM_SYSTEM_CALL regset.
func setSyscall(pid int, r *regs, nr int) error {
	r.r.Regs[8] = uint64(nr)
	if err := setRegs(pid, r); err != nil {
		return err
	}
	n := int32(nr)
	return ptraceRegSet(unix.PTRACE_SETREGSET, pid, unix.NT_ARM_SYSTEM_CALL, unsafe.Pointer(&n), unsafe.Sizeof(n))
}

// restartFrom turns the registers saved at the entry of a syscall into the
// registers that execute it again: pc goes back over `svc #0`; x8 and x0..x5
// still hold the number and the arguments.
func restartFrom(saved *regs) regs {
	r := *saved
	r.r.Pc -= syscallInsnLen
	return r
}

// retArgIdx is the argument register that also carries the return value.
const retArgIdx = 0

// needRegsToRestore: restoreArgs rewrites the whole register set, so the
// exit stop reads it first.
const needRegsToRestore = true

// needRegsToSetReturn: setReturn rewrites the whole register set too.
const needRegsToSetReturn = true

// restoreArgs puts the original values of the argument registers a call
// replaced back at its syscall-exit stop. r holds the registers read at
// that stop. x0 is both the first argument and the return value; the ABI
// says x0 is clobbered by the call, so only the result stays there.
func restoreArgs(pid int, call *pendingCall, r *regs) error {
	changed := false
	for i := 0; i < call.nargs; i++ {
		if int(call.argIdx[i]) == retArgIdx {
			continue
		}
		r.setArg(int(call.argIdx[i]), call.argVal[i])
		changed = true
	}
	if !changed {
		return nil
	}
	return setRegs(pid, r)
}

// skipSyscall makes the stopped thread skip the syscall it is entering and
// see ret as its result: x0 ret and the syscall number -1 (NO_SYSCALL)
// through NT_ARM_SYSTEM_CALL, which is how arm64 skips a traced call
// (arch/arm64/kernel/syscall.c, el0_svc_common). compat: the thread runs
// 32-bit code, whose registers r does not describe; only the number is
// changed, and the kernel returns -ENOSYS.
// Precondition: r holds the registers of a seccomp or syscall-enter stop.
func skipSyscall(pid int, r *regs, ret int64, compat bool) error {
	if !compat {
		s := *r
		s.r.Regs[0] = uint64(ret)
		if err := setRegs(pid, &s); err != nil {
			return err
		}
	}
	n := int32(-1)
	return ptraceRegSet(unix.PTRACE_SETREGSET, pid, unix.NT_ARM_SYSTEM_CALL, unsafe.Pointer(&n), unsafe.Sizeof(n))
}

// setReturn sets the return value (x0) of the syscall a thread is leaving.
// Precondition: syscall-exit stop; r holds its registers.
func setReturn(pid int, r *regs, ret int64) error {
	r.r.Regs[0] = uint64(ret)
	return setRegs(pid, r)
}
