package interceptor

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// ptraceOptions are set on the shim at PTRACE_SEIZE and inherited by every
// tracee it starts.
const ptraceOptions = 0 |
	// Syscall stops report SIGTRAP|0x80, so they cannot be confused with a
	// real SIGTRAP.
	unix.PTRACE_O_TRACESYSGOOD |
	// Follow every child and thread from its first instruction.
	unix.PTRACE_O_TRACEFORK |
	unix.PTRACE_O_TRACEVFORK |
	unix.PTRACE_O_TRACECLONE |
	// An exec replaces the address space: the scratch slots are gone.
	unix.PTRACE_O_TRACEEXEC |
	// If nodeboot dies, the tracees die with it rather than run on with
	// nobody to answer their SECCOMP_RET_TRACE (they would get ENOSYS).
	unix.PTRACE_O_EXITKILL |
	// Report SECCOMP_RET_TRACE as PTRACE_EVENT_SECCOMP stops.
	unix.PTRACE_O_TRACESECCOMP

// Tracer runs one command and every process and thread it starts under
// ptrace, applying Rules.
type Tracer struct {
	cfg Config
	m   *matcher
	res *resolver
	log *slog.Logger
	cnt *counters
	// first is the command Start started; roots (tracer goroutine) are
	// the commands, first included, whose own process has not exited.
	first *Root
	roots map[int]*Root
	// path, env and prog are the command's and the filter's, for Spawn.
	path string
	env  []string
	prog []byte

	done    chan struct{}
	runErr  error
	copiers sync.WaitGroup

	// alive holds every traced tid, for Kill (read by other goroutines).
	aliveMu sync.Mutex
	alive   map[int]struct{}
	// exitCh is closed and replaced when a tid leaves alive (NextExit).
	exitCh chan struct{}

	// The doorbell of a persistent trace (roots.go): bellW and rung under
	// bellMu, with the queued Spawns and whether Release was called.
	bellMu   sync.Mutex
	bellW    *os.File
	rung     bool
	reqs     []spawnReq
	released bool
	bellPID  int // tracer goroutine

	// Fields below belong to the tracer goroutine.
	threads   map[int]*thread
	stopAll   bool // ModePtrace in effect: every syscall stops
	needPaths bool // redirect rules or a FileServer: read path arguments
	// cgroupEmulated: a rule or the FileServer serves /sys/fs/cgroup, so
	// cgroup filesystems may not be mounted (mountEnter).
	cgroupEmulated bool
	// spec is what the seccomp filter decides; the tracer decides the same
	// itself when every syscall stops.
	spec     filterSpec
	oldOrder bool // seccomp stop comes before syscall-enter stop
	// held counts new tracees stopped until their parent's event.
	held int
	// noSyscallInfo: PTRACE_GET_SYSCALL_INFO failed once (before Linux
	// 5.3, gVisor); stop-every-syscall mode reads registers instead.
	noSyscallInfo bool
	regs          regs
	buf           []byte
	// how is the copy of openat2's struct open_how of the call being
	// entered (in howBuf), or empty.
	how    []byte
	howBuf []byte
	// warned are the causes already logged (warnOnce).
	warned    map[string]bool
	stopStart time.Time
	// spin: the last stop came within spinFor of the one before it, so
	// the next wait polls before it sleeps (see waitStop).
	spin bool
	obs  ProcessObserver
	// namer maps a FileServer's host paths back to guest paths
	// (reverse.go); nil when it does not.
	namer GuestNamer
	// revBuf holds a result being turned back into a guest path.
	revBuf []byte
}

// Start launches cfg's command traced from its exec, and returns once the
// command has been exec'd (or failed to be). Cancelling ctx kills every
// traced process. The error wraps exec.ErrNotFound when the command does not
// exist.
func Start(ctx context.Context, cfg Config) (*Tracer, error) {
	if err := unitBuildErr(); err != nil {
		return nil, err
	}
	if err := cfg.Rules.Validate(); err != nil {
		return nil, err
	}
	if len(cfg.Args) == 0 {
		cfg.Args = []string{cfg.Path}
	}
	if cfg.Path == "" {
		return nil, errors.New("start: no command")
	}
	env := cfg.Env
	if env == nil {
		env = os.Environ()
	}
	if !cfg.KeepEnv {
		env = withAsyncPreemptOff(env)
	}
	path, err := lookPath(cfg.Path, env, cfg.Dir)
	if err != nil {
		return nil, err
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	t := &Tracer{
		cfg:     cfg,
		m:       newMatcher(cfg.Rules),
		log:     log,
		cnt:     newCounters(cfg.Rules),
		first:   newRoot(),
		roots:   map[int]*Root{},
		path:    path,
		env:     env,
		done:    make(chan struct{}),
		alive:   map[int]struct{}{},
		exitCh:  make(chan struct{}),
		threads: map[int]*thread{},
		buf:     make([]byte, pathMax),
		howBuf:  make([]byte, pathMax),
		warned:  map[string]bool{},
	}
	t.needPaths = len(t.m.redirects) > 0 || cfg.Files != nil || cfg.Observe != nil
	t.res = newResolver(t.m, cfg.Files, log, cfg.OnFault)
	t.cgroupEmulated = t.m.covers(cgroupMount) || (cfg.Files != nil && cfg.Files.Serves(cgroupMount))
	t.res.tids = t.tracedTids
	t.res.innerPids = t.tracedWithInnerPid
	t.obs, _ = cfg.Files.(ProcessObserver)
	t.namer, _ = cfg.Files.(GuestNamer)
	t.revBuf = make([]byte, pathMax+1)
	t.spec = filterSpec{
		traced: filterSet(needs{
			paths:   t.needPaths,
			fsTypes: t.m.hasFSTypes() || cfg.Observe != nil,
			observe: cfg.Observe != nil,
		}),
		allowIOUring:   cfg.AllowIOUring,
		noWindowGuards: cfg.noWindowGuards,
	}
	var prog []byte
	modeByte := byte(shimModePtrace)
	if cfg.Mode != ModePtrace {
		p, err := buildFilter(&nativeArch, t.spec)
		if err != nil {
			return nil, fmt.Errorf("build seccomp filter: %w", err)
		}
		prog = encodeFilter(p)
		t.prog = prog
		modeByte = shimModeAuto
		if cfg.Mode == ModeSeccomp {
			modeByte = shimModeSeccomp
		}
	}
	files, closeAfter, err := t.stdio()
	if err != nil {
		return nil, err
	}
	goOnChildlessThread(func() { t.run(files, closeAfter, modeByte) })
	if err := <-t.first.started; err != nil {
		<-t.done
		return nil, err
	}
	go func() {
		select {
		case <-ctx.Done():
			// A persistent trace ends too: nobody is left to Release it.
			t.Release()
			t.Kill()
		case <-t.done:
		}
	}()
	return t, nil
}

// PID is the process id of the command.
func (t *Tracer) PID() int { return t.first.pid }

// First is the command Start started.
func (t *Tracer) First() *Root { return t.first }

// Signal sends sig to the command (not to its children).
func (t *Tracer) Signal(sig syscall.Signal) error { return t.first.Signal(sig) }

// Processes lists the traced processes (thread group ids), each once,
// whatever their process group or session. Safe while the tracer runs.
func (t *Tracer) Processes() []int {
	t.aliveMu.Lock()
	tids := make([]int, 0, len(t.alive))
	for tid := range t.alive {
		tids = append(tids, tid)
	}
	t.aliveMu.Unlock()
	seen := map[int]bool{}
	var out []int
	for _, tid := range tids {
		// The tracer goroutine owns the threads' tgid fields, and a thread
		// may not have reported its clone event yet: ask the kernel.
		if tgid, ok := procTgid(tid); ok && !seen[tgid] {
			seen[tgid] = true
			out = append(out, tgid)
		}
	}
	slices.Sort(out)
	return out
}

// SignalAll sends sig once to every traced process: to each thread group,
// not to each thread. kill(2) on any tid signals the whole group, so one
// kill per tid would deliver a SIGTERM as many times as the process has
// threads; Go programs (k3s among them) take a second SIGTERM as "exit
// now", which would skip the graceful stop the first one asked for. It
// returns how many processes were signalled.
func (t *Tracer) SignalAll(sig syscall.Signal) int {
	n := 0
	for _, pid := range t.Processes() {
		err := unix.Kill(pid, sig)
		if err == nil {
			n++
		} else if err != unix.ESRCH {
			t.log.Warn("signal traced process", "pid", pid, "signal", sig, "err", err)
		}
	}
	return n
}

// Kill sends SIGKILL to every traced process.
func (t *Tracer) Kill() {
	t.aliveMu.Lock()
	defer t.aliveMu.Unlock()
	for tid := range t.alive {
		unix.Kill(tid, unix.SIGKILL)
	}
}

// Wait waits until the command has exited and every process it left behind
// has ended (with Config.Persist: and the trace was released), and returns
// how the command Start started ended.
func (t *Tracer) Wait() (Exit, error) {
	<-t.done
	t.copiers.Wait()
	return t.first.result, t.runErr
}

// Done is closed when the trace has ended: no traced process is left.
func (t *Tracer) Done() <-chan struct{} { return t.done }

// Exited is closed when the command itself has exited (its children may
// still run); Wait returns once they are gone too.
func (t *Tracer) Exited() <-chan struct{} { return t.first.exited }

// Stats returns a snapshot of the counters; safe while the tracer runs.
func (t *Tracer) Stats() Stats {
	t.aliveMu.Lock()
	n := len(t.alive)
	t.aliveMu.Unlock()
	s := t.cnt.snapshot()
	s.Tracees = n
	return s
}

// stdio turns the configured streams into files for the child; writers and
// readers that are not files get a pipe and a copying goroutine.
// sameWriter reports whether a and b are the same writer; writers whose
// dynamic types cannot be compared are taken as different.
func sameWriter(a, b io.Writer) (same bool) {
	defer func() {
		if recover() != nil {
			same = false
		}
	}()
	return a == b
}

func (t *Tracer) stdio() (files, closeAfter []*os.File, err error) {
	files = make([]*os.File, 3)
	for i, s := range []any{t.cfg.Stdin, t.cfg.Stdout, t.cfg.Stderr} {
		switch v := s.(type) {
		case *os.File:
			if v != nil {
				files[i] = v
				continue
			}
		case nil:
		case io.Reader:
			if i == 0 {
				r, w, err := os.Pipe()
				if err != nil {
					return nil, nil, err
				}
				files[i] = r
				closeAfter = append(closeAfter, r)
				t.copiers.Add(1)
				go func() {
					defer t.copiers.Done()
					io.Copy(w, v)
					w.Close()
				}()
				continue
			}
		}
		if w, ok := s.(io.Writer); ok && i > 0 && w != nil {
			if i == 2 && files[1] != nil && sameWriter(t.cfg.Stdout, t.cfg.Stderr) {
				// One writer for both (as os/exec does): one pipe, so
				// that no two copiers write to it at once.
				files[2] = files[1]
				continue
			}
			r, pw, err := os.Pipe()
			if err != nil {
				return nil, nil, err
			}
			files[i] = pw
			closeAfter = append(closeAfter, pw)
			t.copiers.Add(1)
			go func() {
				defer t.copiers.Done()
				io.Copy(w, r)
				r.Close()
			}()
			continue
		}
		f, err := os.OpenFile(os.DevNull, os.O_RDWR, 0)
		if err != nil {
			return nil, nil, err
		}
		files[i] = f
		closeAfter = append(closeAfter, f)
	}
	return files, closeAfter, nil
}

// run is the tracer goroutine, locked to its OS thread for good (see
// goOnChildlessThread): the kernel ties every tracee to this thread, and
// when the goroutine returns the thread exits with it (after the last
// tracee is gone).
func (t *Tracer) run(files, closeAfter []*os.File, modeByte byte) {
	defer close(t.done)
	// Kept mount tables pin containers' namespaces: none outlives the trace.
	defer t.res.foreign.closeAll()
	quietSIGCHLD()
	defer restoreSIGCHLD()
	defer func() {
		if r := recover(); r != nil {
			// Never leave tracees stopped with nobody to resume them.
			t.Kill()
			t.runErr = fmt.Errorf("tracer panic: %v", r)
			t.reapAll()
			t.endRoots(t.runErr)
			t.endRequests()
			panic(r)
		}
	}()
	if err := t.launch(t.first, files, closeAfter, modeByte); err != nil {
		t.finishStartup(t.first, err)
		return
	}
	if t.cfg.Persist {
		if err := t.startBell(); err != nil {
			t.Kill()
			t.reapAll()
			t.finishStartup(t.first, err)
			return
		}
	}
	t.loop()
	t.endRoots(errors.New("tracer ended before the command started"))
	t.endRequests()
}

// endRoots reports the end of the trace to the roots still waiting for
// their start or exit.
func (t *Tracer) endRoots(err error) {
	t.finishStartup(t.first, err)
	t.closeExited(t.first)
	for _, r := range t.roots {
		t.finishStartup(r, err)
		t.closeExited(r)
	}
}

// launch starts r's shim, seizes it and hands it the filter (tracer
// goroutine).
func (t *Tracer) launch(r *Root, files, closeAfter []*os.File, modeByte byte) error {
	path, prog := t.path, t.prog
	if modeByte == shimModePtrace {
		prog = nil
	}
	ctlR, ctlW, err := os.Pipe()
	if err != nil {
		return fmt.Errorf("start: %w", err)
	}
	// The status pipe's read end stays a raw non-blocking fd: it is read
	// once, at the command's exec, without waiting for EOF (a tracee may
	// have inherited the write end before the shim set close-on-exec).
	var sp [2]int
	if err := unix.Pipe2(sp[:], unix.O_CLOEXEC); err != nil {
		ctlR.Close()
		ctlW.Close()
		return fmt.Errorf("start: %w", err)
	}
	r.statusR = sp[0]
	unix.SetNonblock(sp[0], true)
	statusW := os.NewFile(uintptr(sp[1]), "status")
	argv := append([]string{shimArgv0, path}, t.cfg.Args...)
	proc, err := os.StartProcess("/proc/self/exe", argv, &os.ProcAttr{
		Dir:   t.cfg.Dir,
		Env:   t.env,
		Files: append(files, ctlR, statusW),
		Sys: &syscall.SysProcAttr{
			Setpgid:   t.cfg.Setpgid,
			Pdeathsig: syscall.SIGKILL,
		},
	})
	ctlR.Close()
	statusW.Close()
	closeFiles(closeAfter)
	if err != nil {
		ctlW.Close()
		r.closeStatus()
		return fmt.Errorf("start %s: %w", path, err)
	}
	r.pid = proc.Pid
	proc.Release()
	// killShim ends a shim that never got its filter, and waits for it
	// alone: in a persistent trace, other tracees run on.
	killShim := func() {
		unix.Kill(r.pid, unix.SIGKILL)
		var ws unix.WaitStatus
		for {
			_, err := unix.Wait4(r.pid, &ws, unix.WALL, nil)
			if err != unix.EINTR && (err != nil || ws.Exited() || ws.Signaled()) {
				break
			}
		}
		r.closeStatus()
	}
	if err := ptraceSeize(r.pid, ptraceOptions); err != nil {
		ctlW.Close()
		killShim()
		return traceErr(r.pid, "ptrace(PTRACE_SEIZE)", err)
	}
	msg := make([]byte, 5+len(prog))
	msg[0] = modeByte
	binary.LittleEndian.PutUint32(msg[1:], uint32(len(prog)))
	copy(msg[5:], prog)
	_, err = ctlW.Write(msg)
	ctlW.Close()
	if err != nil {
		killShim()
		return fmt.Errorf("start %s: write to shim: %w", path, err)
	}
	// The shim runs no code of the command before it has read the
	// message, so registering it now misses nothing.
	t.addThread(r.pid, r.pid, newAddrSpace())
	t.roots[r.pid] = r
	return nil
}

func (r *Root) closeStatus() {
	if r.statusR >= 0 {
		unix.Close(r.statusR)
		r.statusR = -1
	}
}

// finishStartup reports the outcome of r's launch to Start or Spawn, once.
func (t *Tracer) finishStartup(r *Root, err error) {
	if r.startupDone {
		return
	}
	r.startupDone = true
	r.started <- err
}

func (t *Tracer) closeExited(r *Root) {
	if !r.rootExited {
		r.rootExited = true
		close(r.exited)
	}
}

// spinFor is how long waitStop polls for the next stop before it sleeps.
// A tracer that sleeps in wait4 is woken by the tracee's stop through the
// scheduler, and when its CPU has gone idle meanwhile, through an
// inter-processor interrupt and the idle exit: on a virtual machine that
// costs more than the ptrace round trip itself. While stops come densely
// (a tracee in a loop of redirected calls), polling a few microseconds
// catches the next one awake; when they are sparse, the poll is skipped.
const spinFor = 40 * time.Microsecond

// waitStop returns the next stop or exit of a tracee, as wait4 does.
func (t *Tracer) waitStop(ws *unix.WaitStatus) (int, error) {
	if t.spin {
		begin := time.Now()
		for {
			// WNOHANG never blocks, so a raw syscall keeps the Go
			// scheduler out of the poll.
			pid, err := wait4NoHang(ws)
			if err != nil || pid > 0 {
				return pid, err
			}
			if time.Since(begin) > spinFor {
				break
			}
		}
	}
	before := time.Now()
	pid, err := wait4(ws)
	// Spin next time when this stop came soon after the last one was
	// handled (the tracee ran briefly): polling would have caught it.
	t.spin = time.Since(before) < spinFor
	return pid, err
}

// reapAll waits for every remaining tracee after a Kill.
func (t *Tracer) reapAll() {
	if t.bellPID != 0 {
		// The doorbell would keep wait4 from ever reporting ECHILD.
		unix.Kill(t.bellPID, unix.SIGKILL)
		t.bellPID = 0
	}
	var ws unix.WaitStatus
	for {
		if _, err := wait4(&ws); err != nil {
			return
		}
	}
}

// loop is the wait4 loop. Every stop is classified by one switch and every
// tracee is resumed before the next wait4, except group-stopped ones, which
// stay in PTRACE_LISTEN until SIGCONT as they would without tracing.
func (t *Tracer) loop() {
	var ws unix.WaitStatus
	for {
		tid, err := t.waitStop(&ws)
		if err != nil {
			if err != unix.ECHILD {
				t.runErr = traceErr(0, "wait4", err)
			}
			return
		}
		if tid == t.bellPID && tid != 0 {
			if ws.Exited() || ws.Signaled() {
				t.bellRang()
			}
			continue
		}
		t.stopStart = time.Now()
		t.cnt.stops.Add(1)
		switch {
		case ws.Exited() || ws.Signaled():
			t.threadGone(tid, ws)
			continue
		case !ws.Stopped():
			continue
		}
		th := t.threads[tid]
		fresh := th == nil
		if fresh {
			// A new child's first stop often comes before its parent's
			// fork/clone event (the kernel adds it at the head of the
			// tracer's list, which wait4 walks first); the event fills in
			// what is unknown.
			th = t.addThread(tid, 0, newAddrSpace())
			th.spaceGuessed = true
		}
		sig := ws.StopSignal()
		event := int(uint32(ws)>>16) & 0xff
		switch {
		case sig == unix.SIGTRAP|0x80:
			t.syscallStop(th)
		case event == unix.PTRACE_EVENT_SECCOMP:
			t.seccompStop(th)
		case event == unix.PTRACE_EVENT_FORK, event == unix.PTRACE_EVENT_VFORK, event == unix.PTRACE_EVENT_CLONE:
			t.cloneEvent(th, event)
		case event == unix.PTRACE_EVENT_EXEC:
			t.execEvent(th)
		case event == unix.PTRACE_EVENT_STOP:
			switch sig {
			case unix.SIGSTOP, unix.SIGTSTP, unix.SIGTTIN, unix.SIGTTOU:
				// Group-stop: stay stopped until SIGCONT, but let the
				// tracer see the next event (man 2 ptrace, PTRACE_LISTEN).
				if err := ptraceListen(tid); err != nil && err != unix.ESRCH {
					t.log.Warn("ptrace(PTRACE_LISTEN) failed", "pid", tid, "err", err)
					t.resume(th, 0)
				}
			default:
				if fresh {
					// The first stop of a new tracee whose parent's
					// event has not come yet: it stays stopped until
					// then (cloneEvent), so that its first syscall
					// already knows its address space and scratch.
					th.held = true
					t.held++
					continue
				}
				// The first stop of a new tracee, or the end of a
				// group-stop (SIGCONT).
				t.resume(th, 0)
			}
		case event != 0:
			t.resume(th, 0)
		default:
			// Signal-delivery-stop: deliver the signal as it was sent.
			t.resume(th, int(sig))
		}
	}
}

// resume restarts a stopped tracee: PTRACE_SYSCALL when a syscall stop is
// wanted next, else PTRACE_CONT (seccomp stops arrive either way).
func (t *Tracer) resume(th *thread, sig int) {
	var err error
	if t.stopAll || th.awaitExit {
		err = ptraceSyscall(th.tid, sig)
	} else {
		err = ptraceCont(th.tid, sig)
	}
	if err != nil && err != unix.ESRCH {
		t.log.Warn("resume tracee", "pid", th.tid, "err", err)
	}
}

// release resumes a new tracee held at its first stop.
func (t *Tracer) release(th *thread) {
	th.held = false
	t.held--
	t.resume(th, 0)
}

// threadGone forgets a thread that exited or was killed.
func (t *Tracer) threadGone(tid int, ws unix.WaitStatus) {
	if t.held > 0 {
		// A parent killed (SIGKILL) in clone never reports its event:
		// any exit releases the new tracees still waiting for one, on
		// their guessed address space, rather than leave one stopped.
		for _, h := range t.threads {
			if h.held && h.tid != tid {
				t.release(h)
			}
		}
	}
	if th := t.threads[tid]; th != nil {
		if th.held {
			th.held = false
			t.held--
		}
		th.detachSpace()
		delete(t.threads, tid)
		// A thread group leader is reported last, when its whole group is
		// gone (delay_group_leader in kernel/exit.c).
		if t.obs != nil && (th.tgid == tid || th.tgid == 0) {
			t.obs.Exited(tid)
		}
	}
	t.forget(tid)
	r := t.roots[tid]
	if r == nil {
		return
	}
	delete(t.roots, tid)
	if ws.Signaled() {
		r.result = Exit{Signal: ws.Signal()}
	} else {
		r.result = Exit{Code: ws.ExitStatus()}
	}
	if r.startup {
		// The shim ended without exec'ing the command: say why.
		r.startup = false
		t.finishStartup(r, r.shimFailure())
	}
	r.closeStatus()
	t.closeExited(r)
}

// forget removes tid from alive and tells NextExit's waiters.
func (t *Tracer) forget(tid int) {
	t.aliveMu.Lock()
	delete(t.alive, tid)
	close(t.exitCh)
	t.exitCh = make(chan struct{})
	t.aliveMu.Unlock()
}

// shimFailure turns the shim's status lines into an error.
func (r *Root) shimFailure() error {
	lines, _ := r.readStatus()
	for _, l := range lines {
		if rest, ok := strings.CutPrefix(l, "exec "); ok {
			if strings.HasSuffix(rest, unix.ENOENT.Error()) {
				return fmt.Errorf("%s: %w", rest, exec.ErrNotFound)
			}
			return errors.New(rest)
		}
		if rest, ok := strings.CutPrefix(l, "error "); ok {
			return errors.New(rest)
		}
	}
	return fmt.Errorf("command did not start (%s)", r.result)
}

// readStatus reads what the shim wrote to its status pipe, without
// blocking; ok=false when nothing is there yet. Once something was read the
// pipe is closed: the shim writes everything before it execs or exits.
func (r *Root) readStatus() (lines []string, ok bool) {
	if r.statusR < 0 {
		return nil, false
	}
	var out []byte
	buf := make([]byte, 4096)
	for {
		n, err := unix.Read(r.statusR, buf)
		if n <= 0 || err != nil {
			break
		}
		out = append(out, buf[:n]...)
	}
	if len(out) == 0 {
		return nil, false
	}
	r.closeStatus()
	return strings.Split(strings.TrimSpace(string(out)), "\n"), true
}

// cloneEvent registers the child of a fork, vfork or clone: its thread
// group and whether it shares the parent's address space (and scratch
// slots' mapping) or has a copy of it.
func (t *Tracer) cloneEvent(parent *thread, event int) {
	msg, err := ptraceGetEventMsg(parent.tid)
	if err != nil {
		t.resume(parent, 0)
		return
	}
	child := t.eventChild(parent, int(msg))
	var flags uint64
	switch event {
	case unix.PTRACE_EVENT_VFORK:
		flags = unix.CLONE_VM | unix.CLONE_VFORK
	case unix.PTRACE_EVENT_CLONE, unix.PTRACE_EVENT_FORK:
		flags = t.cloneFlags(parent)
	}
	tgid := child
	if flags&unix.CLONE_THREAD != 0 {
		tgid = parent.tgid
	}
	var space *addrSpace
	if flags&unix.CLONE_VM != 0 {
		space = parent.mm
	} else {
		space = parent.mm.fork()
	}
	if th := t.threads[child]; th != nil {
		// Its first stop came first; it has been running with guesses.
		if th.tgid == 0 {
			th.tgid = tgid
		}
		// Its exec (the event order of different tracees is not
		// fixed) gave it a new address space the parent's is no guide to.
		if th.spaceGuessed && th.slot < 0 && len(th.mm.regions) == 0 {
			th.detachSpace()
			th.attachSpace(space)
		}
		th.spaceGuessed = false
		if th.held {
			t.release(th)
		}
	} else {
		t.addThread(child, tgid, space)
	}
	if t.obs != nil && flags&unix.CLONE_THREAD == 0 {
		t.obs.Forked(t.tgidOf(parent), child)
	}
	t.resume(parent, 0)
}

// cloneFlags reads the flags of the clone or clone3 call the parent is in.
func (t *Tracer) cloneFlags(parent *thread) uint64 {
	if err := getRegs(parent.tid, &t.regs); err != nil {
		return 0
	}
	switch t.regs.syscallNo() {
	case unix.SYS_CLONE:
		return t.regs.arg(0)
	case unix.SYS_CLONE3:
		var b [8]byte
		if readMem(parent.tid, t.regs.arg(0), b[:]) == nil {
			return binary.NativeEndian.Uint64(b[:])
		}
	}
	return 0
}

// execEvent handles PTRACE_EVENT_EXEC: the thread now runs a new program in
// a new, empty address space, under the thread group leader's tid.
func (t *Tracer) execEvent(th *thread) {
	if msg, err := ptraceGetEventMsg(th.tid); err == nil && int(msg) != th.tid {
		// exec from a non-leader thread: the kernel has given the execing
		// thread the leader's tid (man 2 ptrace, "execve(2) under ptrace").
		if old := t.threads[int(msg)]; old != nil {
			old.detachSpace()
			delete(t.threads, int(msg))
			t.forget(int(msg))
		}
	}
	if r := t.roots[th.tid]; r != nil && r.startup {
		// os.StartProcess returns once the shim's exec has closed the
		// close-on-exec fds, which is before that exec reports
		// PTRACE_EVENT_EXEC: a seize in between sees the shim's own exec.
		// The shim writes its status before exec'ing the command, so an
		// empty status pipe means this is still the shim.
		lines, ok := r.readStatus()
		if !ok {
			t.resume(th, 0)
			return
		}
		r.startup = false
		if r == t.first {
			t.startupMode(lines)
		} else {
			// Spawn asked for the mode in effect; the shim failed
			// rather than fall back.
			t.finishStartup(r, nil)
		}
	}
	th.detachSpace()
	th.attachSpace(newAddrSpace())
	th.spaceGuessed = false
	th.tgid = th.tid
	// The thread now has the leader's pid (the same one when it led).
	th.innerPid = 0
	th.clearCall()
	if t.stopAll {
		// The next syscall stop is execve's exit.
		th.inSyscall = true
	}
	t.resume(th, 0)
}

// startupMode reads the shim's report at the command's exec and settles the
// mode: seccomp when the filter is in, else stop-every-syscall.
func (t *Tracer) startupMode(lines []string) {
	mode := ModePtrace
	for _, l := range lines {
		switch {
		case l == "seccomp":
			mode = ModeSeccomp
		case strings.HasPrefix(l, "fallback "):
			t.log.Warn("seccomp filter could not be installed; stopping at every syscall instead (slower)",
				"reason", strings.TrimPrefix(l, "fallback "))
		}
	}
	t.stopAll = mode == ModePtrace
	t.cnt.setMode(mode)
	t.log.Debug("tracing", "pid", t.first.pid, "mode", mode, "seccompBeforeEnter", t.oldOrder)
	t.finishStartup(t.first, nil)
}

func (t *Tracer) addThread(tid, tgid int, space *addrSpace) *thread {
	th := &thread{tid: tid, tgid: tgid, slot: -1}
	th.attachSpace(space)
	t.threads[tid] = th
	t.aliveMu.Lock()
	t.alive[tid] = struct{}{}
	t.aliveMu.Unlock()
	return th
}

// withAsyncPreemptOff adds asyncpreemptoff=1 to GODEBUG unless GODEBUG
// already decides it.
func withAsyncPreemptOff(env []string) []string {
	out := make([]string, 0, len(env)+1)
	found := false
	for _, kv := range env {
		if v, ok := strings.CutPrefix(kv, "GODEBUG="); ok {
			found = true
			if !strings.Contains(v, "asyncpreemptoff=") {
				if v == "" {
					kv = "GODEBUG=asyncpreemptoff=1"
				} else {
					kv = "GODEBUG=" + v + ",asyncpreemptoff=1"
				}
			}
		}
		out = append(out, kv)
	}
	if !found {
		out = append(out, "GODEBUG=asyncpreemptoff=1")
	}
	return out
}

// lookPath finds file in the PATH of env, as the command's own shell would.
// A missing command's error wraps exec.ErrNotFound but says what was
// looked for: exec.ErrNotFound's own text ("executable file not found in
// $PATH") is wrong for a path, and repeats "PATH" after a search.
func lookPath(file string, env []string, dir string) (string, error) {
	if strings.Contains(file, "/") {
		p := file
		if !filepath.IsAbs(p) && dir != "" {
			p = filepath.Join(dir, p)
		}
		if err := checkExecutable(p); err != nil {
			if errors.Is(err, exec.ErrNotFound) {
				return "", &notFoundError{msg: file + ": no such file"}
			}
			return "", fmt.Errorf("%s: %w", file, err)
		}
		return file, nil
	}
	pathEnv := ""
	for _, kv := range env {
		if v, ok := strings.CutPrefix(kv, "PATH="); ok {
			pathEnv = v
		}
	}
	if pathEnv == "" {
		pathEnv = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
	}
	var firstErr error
	for _, d := range filepath.SplitList(pathEnv) {
		if d == "" {
			d = "."
		}
		p := filepath.Join(d, file)
		err := checkExecutable(p)
		if err == nil {
			return p, nil
		}
		if firstErr == nil && !errors.Is(err, exec.ErrNotFound) {
			firstErr = fmt.Errorf("%s: %w", p, err)
		}
	}
	if firstErr != nil {
		return "", firstErr
	}
	return "", &notFoundError{msg: fmt.Sprintf("%s: command not found in PATH (%s)", file, pathEnv)}
}

// notFoundError is lookPath's error for a missing command: its own text,
// and exec.ErrNotFound for errors.Is.
type notFoundError struct{ msg string }

func (e *notFoundError) Error() string { return e.msg }
func (e *notFoundError) Unwrap() error { return exec.ErrNotFound }

func checkExecutable(p string) error {
	st, err := os.Stat(p)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return exec.ErrNotFound
		}
		return err
	}
	if st.IsDir() {
		return errors.New("is a directory")
	}
	if st.Mode()&0o111 == 0 {
		return os.ErrPermission
	}
	return nil
}
