package interceptor

import (
	"errors"
	"os"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Thin typed wrappers around the raw syscalls the tracer makes. They return
// raw errnos so that the hot path can compare against ESRCH cheaply; errors
// leave the package wrapped in *TraceError.

// ptrace issues one ptrace request. Precondition: called on the tracer thread.
func ptrace(req int, pid int, addr, data uintptr) error {
	_, _, e := unix.RawSyscall6(unix.SYS_PTRACE, uintptr(req), uintptr(pid), addr, data, 0, 0)
	if e != 0 {
		return e
	}
	return nil
}

func ptraceSeize(pid int, options int) error {
	return ptrace(unix.PTRACE_SEIZE, pid, 0, uintptr(options))
}

func ptraceCont(pid, sig int) error    { return ptrace(unix.PTRACE_CONT, pid, 0, uintptr(sig)) }
func ptraceSyscall(pid, sig int) error { return ptrace(unix.PTRACE_SYSCALL, pid, 0, uintptr(sig)) }
func ptraceListen(pid int) error       { return ptrace(unix.PTRACE_LISTEN, pid, 0, 0) }

func ptraceGetEventMsg(pid int) (uint64, error) {
	var msg uint64
	err := ptrace(unix.PTRACE_GETEVENTMSG, pid, 0, uintptr(unsafe.Pointer(&msg)))
	return msg, err
}

// syscallInfo is struct ptrace_syscall_info (Linux 5.3) as
// PTRACE_GET_SYSCALL_INFO fills it at a syscall-enter stop.
type syscallInfo struct {
	op      uint8
	_       [3]uint8
	arch    uint32
	ip      uint64
	sp      uint64
	nr      uint64
	args    [6]uint64
	retData uint32
	_       uint32
}

func ptraceGetSyscallInfo(pid int, info *syscallInfo) error {
	_, _, e := unix.RawSyscall6(unix.SYS_PTRACE, unix.PTRACE_GET_SYSCALL_INFO, uintptr(pid),
		unsafe.Sizeof(*info), uintptr(unsafe.Pointer(info)), 0, 0)
	if e != 0 {
		return e
	}
	return nil
}

// ptraceGetRegSet reads or writes one register set (NT_PRSTATUS, ...).
func ptraceRegSet(req, pid, which int, p unsafe.Pointer, size uintptr) error {
	iov := unix.Iovec{Base: (*byte)(p)}
	iov.SetLen(int(size))
	return ptrace(req, pid, uintptr(which), uintptr(unsafe.Pointer(&iov)))
}

// wait4 waits for any tracee of the calling thread. __WALL takes threads
// and non-SIGCHLD children; __WNOTHREAD keeps wait4 away from children that
// other threads of nodeboot started (os/exec elsewhere in the program).
//
// It must go through the scheduler-aware syscall path, never RawSyscall: a
// goroutine blocked in a raw syscall counts as running, so a garbage
// collection would wait for the next tracee event, which may never come
// while the tracee sleeps or is stopped.
func wait4(status *unix.WaitStatus) (int, error) {
	for {
		pid, err := unix.Wait4(-1, status, unix.WALL|unix.WNOTHREAD, nil)
		if err == unix.EINTR {
			continue
		}
		return pid, err
	}
}

// wait4NoHang is wait4(-1, WNOHANG): 0 when no tracee has anything to
// report yet.
func wait4NoHang(status *unix.WaitStatus) (int, error) {
	pid, _, e := unix.RawSyscall6(unix.SYS_WAIT4, ^uintptr(0), uintptr(unsafe.Pointer(status)),
		unix.WALL|unix.WNOTHREAD|unix.WNOHANG, 0, 0, 0)
	if e != 0 {
		if e == unix.EINTR {
			return 0, nil
		}
		return 0, e
	}
	return int(pid), nil
}

// readMem reads len(buf) bytes of the tracee at addr.
func readMem(pid int, addr uint64, buf []byte) error {
	if len(buf) == 0 {
		return nil
	}
	n, err := processVM(unix.SYS_PROCESS_VM_READV, pid, addr, buf)
	if err == nil && n == len(buf) {
		return nil
	}
	if err == unix.ESRCH {
		return err
	}
	// process_vm_readv may be missing (ENOSYS) or refused; PTRACE_PEEKDATA
	// works for any tracee stopped by us.
	_, perr := unix.PtracePeekData(pid, uintptr(addr), buf)
	return perr
}

// writeMem writes buf into the tracee at addr, as the tracee could itself
// (process_vm_writev respects page protection). Only used for statfs
// results the kernel has just written; scratch memory is written through
// addrSpace.write.
func writeMem(pid int, addr uint64, buf []byte) error {
	if len(buf) == 0 {
		return nil
	}
	n, err := processVM(unix.SYS_PROCESS_VM_WRITEV, pid, addr, buf)
	if err == nil && n == len(buf) {
		return nil
	}
	if err == unix.ESRCH {
		return err
	}
	_, perr := unix.PtracePokeData(pid, uintptr(addr), buf)
	return perr
}

// pwriteFull writes b at offset off of fd: for /proc/PID/mem the offset is
// the tracee address, and the write ignores page protection (FOLL_FORCE),
// as ptrace's own writes do. A raw syscall, for the reason processVM gives.
func pwriteFull(fd int, b []byte, off uint64) error {
	for len(b) > 0 {
		n, _, e := unix.RawSyscall6(unix.SYS_PWRITE64, uintptr(fd), uintptr(unsafe.Pointer(&b[0])), uintptr(len(b)),
			uintptr(off), 0, 0)
		if e == unix.EINTR {
			continue
		}
		if e != 0 {
			return e
		}
		if n == 0 {
			return unix.EIO
		}
		b = b[n:]
		off += uint64(n)
	}
	return nil
}

// pokeMem writes b at addr with PTRACE_POKEDATA, which ignores page
// protection too: the fallback when /proc/PID/mem cannot be opened.
func pokeMem(pid int, addr uint64, b []byte) error {
	n, err := unix.PtracePokeData(pid, uintptr(addr), b)
	if err != nil {
		return err
	}
	if n != len(b) {
		return unix.EIO
	}
	return nil
}

// processVM is process_vm_readv or process_vm_writev of one buffer. It is a
// raw syscall: it never blocks (the tracee is stopped), and the
// scheduler bookkeeping of unix.ProcessVMReadv costs more than the call on
// the tracer's hot path.
func processVM(nr uintptr, pid int, addr uint64, buf []byte) (int, error) {
	local := unix.Iovec{Base: &buf[0]}
	local.SetLen(len(buf))
	remote := unix.RemoteIovec{Base: uintptr(addr), Len: len(buf)}
	n, _, e := unix.RawSyscall6(nr, uintptr(pid), uintptr(unsafe.Pointer(&local)), 1,
		uintptr(unsafe.Pointer(&remote)), 1, 0)
	if e != 0 {
		return 0, e
	}
	return int(n), nil
}

// lstatExists reports whether path exists (a symlink counts), with a raw
// newfstatat for the same reason as processVM.
func lstatExists(path string) bool {
	var st unix.Stat_t
	return fstatatRaw(path, &st, unix.AT_SYMLINK_NOFOLLOW) == nil
}

func fstatatRaw(path string, st *unix.Stat_t, flags int) error {
	p, err := unix.BytePtrFromString(path)
	if err != nil {
		return err
	}
	cwd := unix.AT_FDCWD
	_, _, e := unix.RawSyscall6(fstatatNr, uintptr(cwd), uintptr(unsafe.Pointer(p)),
		uintptr(unsafe.Pointer(st)), uintptr(flags), 0, 0)
	if e != 0 {
		return e
	}
	return nil
}

const pageSize = 4096

// readString reads a NUL-terminated string of at most len(buf)-1 bytes
// starting at addr, page by page so that a string ending just before an
// unmapped page is still read. It returns the bytes without the NUL and
// ok=false when no NUL was found within the buffer.
func readString(pid int, addr uint64, buf []byte) ([]byte, bool, error) {
	got := 0
	for got < len(buf) {
		a := addr + uint64(got)
		n := int(pageSize - a%pageSize)
		if n > len(buf)-got {
			n = len(buf) - got
		}
		if err := readMem(pid, a, buf[got:got+n]); err != nil {
			if got > 0 && !errors.Is(err, unix.ESRCH) {
				return buf[:got], false, nil
			}
			return nil, false, err
		}
		for i := got; i < got+n; i++ {
			if buf[i] == 0 {
				return buf[:i], true, nil
			}
		}
		got += n
	}
	return buf[:got], false, nil
}

// TraceError is an error of a ptrace-level operation on one tracee.
type TraceError struct {
	PID int
	Op  string
	Err error
}

func (e *TraceError) Error() string {
	return "trace " + itoa(e.PID) + ": " + e.Op + ": " + e.Err.Error()
}

func (e *TraceError) Unwrap() error { return e.Err }

func traceErr(pid int, op string, err error) error {
	return &TraceError{PID: pid, Op: op, Err: os.NewSyscallError(op, err)}
}

func itoa(v int) string {
	if v == 0 {
		return "0"
	}
	neg := v < 0
	if neg {
		v = -v
	}
	var b [20]byte
	i := len(b)
	for v > 0 {
		i--
		b[i] = byte('0' + v%10)
		v /= 10
	}
	if neg {
		i--
		b[i] = '-'
	}
	return string(b[i:])
}
