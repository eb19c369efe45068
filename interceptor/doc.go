// Package interceptor runs a command, and every process and thread it
// starts, under ptrace and a seccomp-BPF filter, and changes what the kernel
// shows it: path syscalls that name a redirected path are served from
// another tree, and statfs/fstatfs report other filesystem types.
//
// # Launch
//
// Go cannot run code between fork and exec, so the tracer re-executes its
// own binary as a shim (see shim.go). The shim blocks on a pipe until the
// tracer thread has attached with PTRACE_SEIZE, reads the BPF program,
// installs it, makes one probe syscall that tells the tracer in which order
// this kernel reports seccomp stops and syscall-enter stops, and execs the
// command. The command is therefore traced from its first instruction; the
// tracer never attaches to a process that already runs user code.
//
// # Persistent traces
//
// With Config.Persist the trace outlives its command: Spawn starts the
// command again as another root (its own Root: pid, Exited, Result), in
// the mode the first settled, while what the earlier commands left (a
// supervisor keeps containerd's shims across a restart of k3s) runs on,
// traced. Only the tracer thread may seize a tracee, and it sleeps in
// wait4, which a signal does not interrupt (Go's handlers restart it); so
// a Spawn (or Release) is queued and the tracer is woken by the exit of
// the doorbell, an untraced child of its thread (roots.go) that exits when
// a byte arrives on its pipe. The doorbell also keeps wait4 from reporting
// ECHILD, the end of the trace, while no tracee runs; after Release the
// trace ends with its last tracee. A tracee whose parent has exited (a
// daemonized shim) is reparented by the kernel, to init or a subreaper;
// the tracer still sees its stops and its exit, since ptrace reports
// them to the tracer whoever the parent is.
//
// # Thread model
//
// Every ptrace request and every wait4 comes from one goroutine locked to
// its OS thread for the whole trace (the kernel ties a tracee to the tracing
// thread). That goroutine owns all per-thread and per-address-space state;
// other goroutines only read atomic counters (Stats) and send signals
// (Signal, Kill), which need no ptrace.
//
// # Deciding on the object
//
// Rules name files, not strings. For every path argument, decide (decide.go)
// asks the resolver (resolve.go, mount.go) which file the kernel will reach
// for the calling thread, in that thread's own view (root, cwd, dirfds,
// symlinks, procfs magic links, openat2's RESOLVE flags, its mount
// namespace), and where that file is in nodeboot's view (its canonical
// path). The rules and the FileServer decide on that path; the host tree of
// a redirect is an overlay on its guest (copyup.go: copy-up before changes,
// the tree-gone fault). The decision is the exact path the kernel must
// resolve, in the thread's view, or an errno the call fails with: when a
// rule matches and cannot be honoured, the call fails; it never reaches the
// real file. Most calls take the fast path: one openat2 with
// RESOLVE_NO_SYMLINKS, for a thread whose root and mount namespace are
// nodeboot's (cached per thread until a chroot, pivot_root, setns or
// unshare).
//
// # Scratch memory: what the kernel reads
//
// A path is never written into the tracee's own buffers, and the kernel
// never reads a path from them either: every path argument the tracer
// inspects, rewritten or not, is read once, decided on (decide), and copied
// into the calling thread's slot of scratch memory, and the argument
// register points there until the syscall's exit puts it back. Another
// thread that changes the tracee's buffer in between changes nothing.
//
// Scratch regions are mapped by an mmap injected at the first syscall that
// needs one (MAP_FIXED_NOREPLACE, PROT_READ) in a fixed window of the
// address space (window.go), and the tracer writes them through
// /proc/PID/mem, which ignores page protection. The tracee cannot write
// them, and the seccomp filter (or the tracer itself, in ptrace mode)
// refuses the calls that would unmap, remap or reprotect the window with
// EPERM, as for a sealed mapping. The only tracee memory the tracer writes
// besides its slots are result buffers the kernel has just filled: the
// statfs result's f_type, and the path that readlink of a /proc magic link
// or getcwd returns when it names a host tree's file (reverse.go).
//
// # Fail closed
//
// When a call needs a rewrite that cannot be made (no scratch memory: the
// mmap failed or was refused; a write to it failed; decide says the call
// must fail), the syscall is skipped at its entry (number -1) and returns
// -errno, set at the entry stop and again at its exit stop. Nothing is
// turned off for the address space or inherited: the next call tries again.
// Each cause is logged once per trace.
//
// # Other channels
//
// The filter answers ENOSYS to syscalls of another ABI (i386 through
// int 0x80, x32, arm32) and to io_uring unless Config.AllowIOUring. In
// ptrace mode the tracer applies the same decisions (filterSpec.decide) and
// clears CLONE_UNTRACED in clone's flags and in a copy of clone3's struct;
// in seccomp mode an untraced child keeps the filter, and its traced
// syscalls fail with ENOSYS (SECCOMP_RET_TRACE without a tracer).
//
// # Lifecycle of a thread
//
//	new (clone/fork/vfork event, or its first stop, whichever comes first;
//	     a first stop waits for the event before the thread runs on)
//	  -> running: seccomp stops (or every syscall stop in ptrace mode),
//	     signal-delivery stops (re-injected), group-stops (PTRACE_LISTEN),
//	     exec events (the address space starts empty again)
//	  -> exited (wait4 reports it; its slot is freed)
package interceptor
