package interceptor

import (
	"encoding/binary"
	"fmt"
	"io"
	"os"
	"unsafe"

	"golang.org/x/sys/unix"
)

// The shim is nodeboot's own binary re-executed between fork and the exec of
// the traced command: Go has no hook to run code in a child before exec, and
// the seccomp filter must be installed in the child itself.
//
// The tracer starts /proc/self/exe with
//
//	argv = [shimArgv0, PATH, ARGV0, ARGS...]
//	fd 3 = control pipe (read end): mode byte, u32 length, BPF program
//	fd 4 = status pipe (write end): one line per step
//
// The init function below recognises argv[0] and never returns. Because it
// runs during package initialisation, the Go runtime keeps it on the main
// thread, so the filter is installed on, and exec is called from, the
// thread group leader.
const shimArgv0 = "nodeboot-shim"

const (
	shimCtlFD    = 3
	shimStatusFD = 4
)

// Mode bytes on the control pipe.
const (
	shimModeSeccomp = 's' // install the filter or fail
	shimModeAuto    = 'a' // install the filter or say "fallback"
	shimModePtrace  = 'p' // no filter
)

// Exit codes of the shim when it cannot exec, as shells use them.
const (
	shimExitNotFound = 127
	shimExitNoExec   = 126
	shimExitFilter   = 125
)

func init() {
	if len(os.Args) < 3 || os.Args[0] != shimArgv0 {
		return
	}
	os.Exit(runShim(os.Args[1], os.Args[2:]))
}

func runShim(path string, argv []string) int {
	status := os.NewFile(shimStatusFD, "status")
	say := func(format string, a ...any) { fmt.Fprintf(status, format+"\n", a...) }
	ctl := os.NewFile(shimCtlFD, "control")
	var hdr [5]byte
	if _, err := io.ReadFull(ctl, hdr[:]); err != nil {
		say("error read control pipe: %v", err)
		return shimExitFilter
	}
	prog := make([]byte, binary.LittleEndian.Uint32(hdr[1:]))
	if _, err := io.ReadFull(ctl, prog); err != nil {
		say("error read control pipe: %v", err)
		return shimExitFilter
	}
	ctl.Close()
	unix.CloseOnExec(shimStatusFD)

	switch hdr[0] {
	case shimModePtrace:
		say("ptrace")
	default:
		if err := installFilter(prog); err != nil {
			if hdr[0] == shimModeSeccomp {
				say("error install seccomp filter: %v", err)
				return shimExitFilter
			}
			say("fallback %v", err)
			break
		}
		// The probe: the tracer sees this syscall's seccomp stop and learns
		// from the stop that follows in which order this kernel reports
		// seccomp and syscall-enter stops.
		var st unix.Statfs_t
		fd := probeFD
		unix.Syscall(unix.SYS_FSTATFS, uintptr(fd), uintptr(unsafe.Pointer(&st)), 0)
		say("seccomp")
	}
	err := unix.Exec(path, argv, os.Environ())
	say("exec %s: %v", path, err)
	if err == unix.ENOENT {
		return shimExitNotFound
	}
	return shimExitNoExec
}

// installFilter installs a seccomp-BPF program on the calling thread. It
// needs CAP_SYS_ADMIN or no_new_privs; no_new_privs is only set when the
// first attempt is refused, since it also stops setuid binaries from gaining
// privileges.
func installFilter(b []byte) error {
	prog, err := decodeFilter(b)
	if err != nil {
		return err
	}
	fprog := unix.SockFprog{Len: uint16(len(prog)), Filter: &prog[0]}
	set := func() error {
		_, _, e := unix.RawSyscall(unix.SYS_SECCOMP, unix.SECCOMP_SET_MODE_FILTER, 0, uintptr(unsafe.Pointer(&fprog)))
		if e != 0 {
			return e
		}
		return nil
	}
	err = set()
	if err == unix.EACCES {
		if perr := unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0); perr != nil {
			return fmt.Errorf("seccomp: %w; prctl(PR_SET_NO_NEW_PRIVS): %v", err, perr)
		}
		err = set()
	}
	if err != nil {
		return fmt.Errorf("seccomp(SECCOMP_SET_MODE_FILTER): %w", err)
	}
	return nil
}
