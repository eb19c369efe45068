package interceptor

import (
	"sync"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Every stop of a tracee sends SIGCHLD to the tracer thread. The Go runtime
// installs a handler for every signal, so each stop also costs a signal
// frame, the handler and rt_sigreturn on the tracer thread: about 6% of the
// tracer's CPU time in a syscall-heavy workload (perf, 2026-11). While any
// Tracer runs, SIGCHLD's action is SIG_DFL, which the kernel discards at
// generation. SIG_DFL is not SIG_IGN: children are still left for wait4.
// The runtime's handler is put back when the last Tracer ends.

var sigchld struct {
	sync.Mutex
	users int
	saved kernelSigaction
}

// kernelSigaction is struct sigaction as rt_sigaction(2) takes it on amd64
// and arm64: handler, flags, restorer, mask.
type kernelSigaction struct {
	handler, flags, restorer, mask uint64
}

func rtSigaction(sig unix.Signal, act, old *kernelSigaction) error {
	_, _, e := unix.RawSyscall6(unix.SYS_RT_SIGACTION, uintptr(sig),
		uintptr(unsafe.Pointer(act)), uintptr(unsafe.Pointer(old)), 8, 0, 0)
	if e != 0 {
		return e
	}
	return nil
}

func quietSIGCHLD() {
	sigchld.Lock()
	defer sigchld.Unlock()
	sigchld.users++
	if sigchld.users > 1 {
		return
	}
	var dfl kernelSigaction
	if rtSigaction(unix.SIGCHLD, &dfl, &sigchld.saved) != nil {
		sigchld.saved = kernelSigaction{}
	}
}

func restoreSIGCHLD() {
	sigchld.Lock()
	defer sigchld.Unlock()
	sigchld.users--
	if sigchld.users > 0 || sigchld.saved.handler == 0 {
		return
	}
	rtSigaction(unix.SIGCHLD, &sigchld.saved, nil)
	sigchld.saved = kernelSigaction{}
}
