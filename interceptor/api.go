package interceptor

import (
	"fmt"
	"io"
	"log/slog"
	"syscall"
	"time"

	"github.com/nodeboot/nodeboot/interceptor/rules"
)

// Mode selects how the tracer learns about the syscalls it must see.
type Mode int

const (
	// ModeAuto installs a seccomp-BPF filter so that only the syscalls the
	// rules need stop, and falls back to ModePtrace (with a warning) when the
	// filter cannot be installed.
	ModeAuto Mode = iota
	// ModeSeccomp insists on the seccomp-BPF filter; Start fails without it.
	ModeSeccomp
	// ModePtrace stops at every syscall entry and exit (PTRACE_SYSCALL).
	ModePtrace
)

func (m Mode) String() string {
	switch m {
	case ModeAuto:
		return "auto"
	case ModeSeccomp:
		return "seccomp"
	case ModePtrace:
		return "ptrace"
	}
	return fmt.Sprintf("Mode(%d)", int(m))
}

// ParseMode parses "auto", "seccomp" or "ptrace".
func ParseMode(s string) (Mode, error) {
	switch s {
	case "auto", "":
		return ModeAuto, nil
	case "seccomp":
		return ModeSeccomp, nil
	case "ptrace":
		return ModePtrace, nil
	}
	return 0, fmt.Errorf("mode %q: want auto, seccomp or ptrace", s)
}

// Config describes one traced command.
type Config struct {
	// Path is the program to run; when it has no slash it is looked up in
	// the PATH of Env (or of nodeboot when Env is nil).
	Path string
	// Args is argv, including argv[0].
	Args []string
	// Env is the environment of the command; nil means nodeboot's own.
	Env []string
	// Dir is the working directory; "" means nodeboot's own.
	Dir string

	Stdin  io.Reader
	Stdout io.Writer
	Stderr io.Writer

	// Rules say which paths are redirected and which statfs types rewritten.
	Rules rules.Rules
	// Mode picks seccomp-BPF or stop-every-syscall tracing.
	Mode Mode
	// KeepEnv leaves the environment as given. Otherwise GODEBUG gains
	// asyncpreemptoff=1 (unless it already sets asyncpreemptoff), because
	// every SIGURG that Go's preemption sends to a traced thread is a stop.
	KeepEnv bool
	// Setpgid puts the command in a process group of its own.
	Setpgid bool
	// AllowIOUring lets the command use io_uring. By default
	// io_uring_setup (and io_uring_enter, io_uring_register) fail with
	// ENOSYS, as in gVisor, because the operations of a ring (an
	// IORING_OP_OPENAT, ...) run in the kernel without a syscall the
	// tracer could see: with io_uring allowed, a program can open any path
	// of the host, redirected or not, and the rules do not apply to it.
	AllowIOUring bool

	// noWindowGuards lets the tracee unmap and remap scratch memory: for
	// the tests of what the tracer does when it is gone anyway.
	noWindowGuards bool

	// Logger receives the tracer's own diagnostics (nil: discard).
	Logger *slog.Logger
	// OnRewrite, when set, is called on the tracer thread for every path or
	// statfs rewrite. It must return quickly.
	OnRewrite func(Rewrite)

	// Files, when set, computes files when they are named (see FileServer).
	// It is consulted before the redirect rules.
	Files FileServer

	// OnFault, when set, is called on the tracer thread once per fault:
	// a condition under which some calls must fail (a redirect's host tree
	// gone). Whoever runs the tracer should then stop the program. It must
	// return quickly.
	OnFault func(Fault)

	// Observe, when set, is called on the tracer thread at the exit of
	// every path syscall and statfs/fstatfs, with its outcome. Every such
	// call then costs two stops: it is for discovery, not production.
	Observe func(rules.Observation)

	// Persist keeps the trace going when the command and everything it
	// started have ended, until Tracer.Release: Tracer.Spawn can start
	// the command again in the same trace, and the processes the last
	// command left behind (a supervisor keeps containerd's shims across a
	// restart of k3s) stay traced meanwhile. Wait returns only after
	// Release (or Kill with the Start context cancelled).
	Persist bool
}

// Rewrite describes one change the tracer made to a syscall.
type Rewrite struct {
	PID     int    // thread id of the caller
	Syscall string // syscall name, e.g. "openat"
	From    string // path as resolved from the caller's view, or fs type name
	To      string // path served, or fs type name
}

// Exit is how the traced command ended.
type Exit struct {
	// Code is the exit status when the command exited normally.
	Code int
	// Signal is the signal that killed the command, or 0.
	Signal syscall.Signal
}

// ExitCode returns Code, or 128+N for a command killed by signal N, as
// shells do.
func (e Exit) ExitCode() int {
	if e.Signal != 0 {
		return 128 + int(e.Signal)
	}
	return e.Code
}

func (e Exit) String() string {
	if e.Signal != 0 {
		return fmt.Sprintf("killed by signal %d (%s)", int(e.Signal), e.Signal)
	}
	return fmt.Sprintf("exit status %d", e.Code)
}

// SyscallStats are the counters of one syscall.
type SyscallStats struct {
	Name     string
	Stops    uint64 // tracer stops caused by this syscall
	Rewrites uint64 // calls whose path or result nodeboot changed
	Passes   uint64 // calls left as they were
	// Fails counts calls nodeboot made fail because it could not do what
	// a rule says (fail closed), or that the filter's rules refuse when
	// every syscall stops (other ABIs, io_uring, the scratch window).
	Fails uint64
	Time  time.Duration // tracer time spent handling them
}

// RuleStats are the counters of one rule.
type RuleStats struct {
	Rule string // "redirect /proc/sys=/x" or "fstype 9p=ext4"
	Hits uint64
}

// Stats is a snapshot of the tracer's counters.
type Stats struct {
	Mode     Mode // the mode in effect (auto resolved to seccomp or ptrace)
	Syscalls []SyscallStats
	Rules    []RuleStats
	// Stops counts every stop the tracer handled: the stops at syscalls of
	// the table (the sum of Syscalls' Stops, injected calls included) and
	// Events.
	Stops uint64
	// Events are the stops at no syscall of the table: the shim's start
	// (its seize and probe), exec, fork and clone events, signal
	// deliveries and group-stops, and the reports of exited threads.
	Events uint64
	// Tracees is the number of threads traced right now.
	Tracees int
}

// FileServer computes files at the moment a tracee names them, like a FUSE
// read without FUSE: the tracer stops at every path syscall anyway, so the
// server can (re)generate a file on the host and have the call use it. The
// virtual kernel's cgroupfs and procfs views are FileServers.
//
// Its methods run on the tracer thread, one call at a time, while the
// calling thread is stopped: they must be quick and must not block on the
// tracees.
type FileServer interface {
	// Serves reports whether guest (clean, absolute, /proc/self resolved)
	// is served. It is called for every path a tracee names.
	Serves(guest string) bool
	// Serve is called at the entry of a path syscall that names a served
	// path. It returns the host path the call should use instead, or "" to
	// leave the path to the redirect rules. Setting req.WantExit asks for
	// Done at the syscall's exit.
	Serve(req *FileRequest) string
	// Done is called at the exit of a call whose Serve set WantExit, with
	// the syscall's return value (-errno on failure).
	Done(req *FileRequest, ret int64)
}

// ProcessObserver is implemented by FileServers that follow processes (a
// forked child starts in its parent's cgroup).
type ProcessObserver interface {
	// Forked is called when process parent starts process child.
	Forked(parent, child int)
	// Exited is called when the last thread of process pid has ended.
	Exited(pid int)
}

// GuestNamer is implemented by FileServers whose host paths a tracee can
// hold: a directory it opens or chdirs into. The kernel names such a file
// by its host path in a /proc/PID/fd link, /proc/PID/cwd and getcwd;
// the tracer shows the tracee the guest path instead (as for the host
// trees of redirects), which runc checks for its /sys/fs/cgroup handle.
type GuestNamer interface {
	// GuestOf returns the guest path that host (a clean absolute path in
	// nodeboot's view) serves, or ok=false for a path the server does not
	// serve. It runs on the tracer thread, like Serves.
	GuestOf(host string) (guest string, ok bool)
}

// FileOp is what a path syscall does with the path it names. Servers
// decide on it, never on the syscall's name: unlinkat is OpRmdir or
// OpUnlink by its AT_REMOVEDIR flag, and the same operation has several
// syscalls (and different ones per arch).
type FileOp uint8

const (
	OpOther    FileOp = iota // anything else (chdir, ...)
	OpOpen                   // open, openat, openat2, creat
	OpStat                   // stat, lstat, newfstatat, statx, access, faccessat, readlink, xattr reads, statfs
	OpMkdir                  // mkdir, mkdirat
	OpRmdir                  // rmdir, unlinkat with AT_REMOVEDIR
	OpUnlink                 // unlink, unlinkat without AT_REMOVEDIR
	OpRename                 // rename, renameat, renameat2 (both paths)
	OpLink                   // link, linkat (both paths)
	OpSymlink                // symlink, symlinkat (the new name)
	OpMknod                  // mknod, mknodat
	OpTruncate               // truncate
	OpSetattr                // chmod, chown, utime(s), utimensat, setxattr, removexattr and their variants
	OpWatch                  // inotify_add_watch
)

var fileOpNames = [...]string{"other", "open", "stat", "mkdir", "rmdir", "unlink", "rename", "link", "symlink",
	"mknod", "truncate", "setattr", "watch"}

func (o FileOp) String() string {
	if int(o) < len(fileOpNames) {
		return fileOpNames[o]
	}
	return "FileOp(" + itoa(int(o)) + ")"
}

// Changes reports whether the operation changes the directory it names a
// path in or the file itself (anything but opening, looking and watching).
func (o FileOp) Changes() bool {
	switch o {
	case OpOther, OpOpen, OpStat, OpWatch:
		return false
	}
	return true
}

// FileRequest is one path of one syscall that a FileServer serves.
type FileRequest struct {
	PID     int    // calling thread
	TGID    int    // calling process
	Op      FileOp // what the call does with the path
	Syscall string // e.g. "openat", "mkdirat", "newfstatat": for logs, not decisions
	Guest   string // the path the caller named, resolved
	Create  bool   // the call creates the path (O_CREAT, mkdir, ...)
	Write   bool   // an open for writing (O_WRONLY, O_RDWR or O_TRUNC)
	// WantExit, set by Serve, asks for Done at the syscall's exit.
	WantExit bool
	// Host is the path Serve returned.
	Host string
}
