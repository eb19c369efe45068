package interceptor

import (
	"unsafe"

	"golang.org/x/sys/unix"
)

// auditArch is the seccomp_data.arch value of native syscalls.
const auditArch = unix.AUDIT_ARCH_X86_64

// syscallInsnLen is the length of the `syscall` instruction (0f 05); the
// tracer moves the instruction pointer back by this much to run a syscall
// again after an injected one.
const syscallInsnLen = 2

// x32Bit marks x32-ABI syscall numbers (__X32_SYSCALL_BIT).
const x32Bit = 0x40000000

// scratchBase is the start of the scratch window, at 32 TiB: the kernel
// hands out mappings top-down from below the stack (0x7f.. on a 47-bit
// address space), PIE binaries and their brk heap sit near 0x55.., static
// ones at 4 MiB, Go's heap starts at 0xc0_0000_0000. Nothing lands at 32 TiB
// unless a program asks for that address.
const scratchBase uint64 = 0x2000_0000_0000

// nativeArch describes this arch to the seccomp program.
var nativeArch = sysArch{
	name:   "amd64",
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

// regs holds a thread's general registers.
type regs struct{ r unix.PtraceRegs }

func getRegs(pid int, r *regs) error {
	return ptrace(unix.PTRACE_GETREGS, pid, 0, uintptr(unsafe.Pointer(&r.r)))
}

func setRegs(pid int, r *regs) error {
	return ptrace(unix.PTRACE_SETREGS, pid, 0, uintptr(unsafe.Pointer(&r.r)))
}

// syscallNo is the syscall number (orig_rax: rax holds -ENOSYS on entry).
func (r *regs) syscallNo() int { return int(int64(r.r.Orig_rax)) }

// arg returns syscall argument i: rdi, rsi, rdx, r10, r8, r9.
func (r *regs) arg(i int) uint64 {
	switch i {
	case 0:
		return r.r.Rdi
	case 1:
		return r.r.Rsi
	case 2:
		return r.r.Rdx
	case 3:
		return r.r.R10
	case 4:
		return r.r.R8
	case 5:
		return r.r.R9
	}
	panic("syscall argument index out of range")
}

func (r *regs) setArg(i int, v uint64) {
	switch i {
	case 0:
		r.r.Rdi = v
	case 1:
		r.r.Rsi = v
	case 2:
		r.r.Rdx = v
	case 3:
		r.r.R10 = v
	case 4:
		r.r.R8 = v
	case 5:
		r.r.R9 = v
	default:
		panic("syscall argument index out of range")
	}
}

// compat reports whether the thread runs 32-bit code (the i386 code
// segment, __USER32_CS). An int 0x80 from 64-bit code does not show here;
// PTRACE_GET_SYSCALL_INFO tells that one.
func (r *regs) compat() bool { return r.r.Cs == 0x23 }

// ret is the syscall's return value (rax) at a syscall-exit stop.
func (r *regs) ret() int64 { return int64(r.r.Rax) }

// setRet sets the return value register (rax).
func (r *regs) setRet(v int64) { r.r.Rax = uint64(v) }

// setSyscall makes the stopped thread run syscall nr with the arguments now
// in r instead of the one it entered. Precondition: seccomp or
// syscall-enter stop.
func setSyscall(pid int, r *regs, nr int) error {
	r.r.Orig_rax = uint64(nr)
	return setRegs(pid, r)
}

// restartFrom turns the registers saved at the entry of a syscall into the
// registers that make the thread execute that syscall again: the
// instruction pointer goes back over `syscall` and rax gets the number
// (the kernel had replaced it by -ENOSYS).
func restartFrom(saved *regs) regs {
	r := *saved
	r.r.Rip -= syscallInsnLen
	r.r.Rax = r.r.Orig_rax
	return r
}

// retArgIdx is the argument register that also carries the return value
// (none on amd64: the result goes to rax).
const retArgIdx = -1

// needRegsToRestore: restoreArgs works without the current registers.
const needRegsToRestore = false

// needRegsToSetReturn: setReturn works without the current registers.
const needRegsToSetReturn = false

// argOffsets are the offsets of rdi, rsi, rdx, r10, r8, r9 in struct
// user_regs_struct, for PTRACE_POKEUSER.
var argOffsets = [6]uintptr{
	unsafe.Offsetof(unix.PtraceRegs{}.Rdi),
	unsafe.Offsetof(unix.PtraceRegs{}.Rsi),
	unsafe.Offsetof(unix.PtraceRegs{}.Rdx),
	unsafe.Offsetof(unix.PtraceRegs{}.R10),
	unsafe.Offsetof(unix.PtraceRegs{}.R8),
	unsafe.Offsetof(unix.PtraceRegs{}.R9),
}

// restoreArgs puts the original values of the argument registers a call
// replaced back at its syscall-exit stop. One PTRACE_POKEUSER per register
// costs one syscall, where GETREGS+SETREGS would cost two.
func restoreArgs(pid int, call *pendingCall, _ *regs) error {
	for i := 0; i < call.nargs; i++ {
		if err := ptrace(unix.PTRACE_POKEUSR, pid, argOffsets[call.argIdx[i]], uintptr(call.argVal[i])); err != nil {
			return err
		}
	}
	return nil
}

// skipSyscall makes the stopped thread skip the syscall it is entering and
// see ret as its result: orig_rax -1 (the kernel runs nothing), rax ret.
// Linux leaves rax as the tracer set it for a skipped call; the tracer
// sets it again at the exit stop for kernels that do not (gVisor).
// Precondition: r holds the registers of a seccomp or syscall-enter stop.
func skipSyscall(pid int, r *regs, ret int64, _ bool) error {
	s := *r
	s.r.Orig_rax = ^uint64(0)
	s.r.Rax = uint64(ret)
	return setRegs(pid, &s)
}

// setReturn sets the return value of the syscall a thread is leaving.
// Precondition: syscall-exit stop; r is not needed on amd64.
func setReturn(pid int, _ *regs, ret int64) error {
	return ptrace(unix.PTRACE_POKEUSR, pid, unsafe.Offsetof(unix.PtraceRegs{}.Rax), uintptr(ret))
}
