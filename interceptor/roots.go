package interceptor

import (
	"errors"
	"fmt"
	"os"
	"syscall"

	"golang.org/x/sys/unix"
)

// Root is one command the tracer started: the first one (Start) or one
// that Spawn added to a persistent trace (Config.Persist). Its processes,
// and whatever they start, are traced with the same rules, FileServer and
// counters as every other tracee.
type Root struct {
	pid int
	// started gets the outcome of the launch, once (buffered).
	started chan error
	exited  chan struct{}

	// Fields below belong to the tracer goroutine until exited is closed;
	// result may be read after that.
	statusR     int  // read end of the shim's status pipe, or -1
	startup     bool // until the command's exec (or the shim's exit)
	startupDone bool
	rootExited  bool
	result      Exit
}

func newRoot() *Root {
	return &Root{started: make(chan error, 1), exited: make(chan struct{}), statusR: -1, startup: true}
}

// PID is the process id of the command.
func (r *Root) PID() int { return r.pid }

// Exited is closed when the command itself has exited (its children may
// still run).
func (r *Root) Exited() <-chan struct{} { return r.exited }

// Result is how the command ended; valid once Exited is closed.
func (r *Root) Result() Exit {
	<-r.exited
	return r.result
}

// Signal sends sig to the command (not to its children).
func (r *Root) Signal(sig syscall.Signal) error {
	select {
	case <-r.exited:
		return os.ErrProcessDone
	default:
	}
	if err := unix.Kill(r.pid, sig); err != nil {
		return fmt.Errorf("signal %d: %w", r.pid, err)
	}
	return nil
}

// The doorbell.
//
// The tracer goroutine spends its life in wait4, and only that thread may
// start a tracee (the kernel ties a tracee to the thread that seized it),
// so a request from another goroutine must wake it. A signal cannot: Go
// installs its handlers with SA_RESTART and wait4 resumes. What wakes
// wait4 is the exit of a child of the tracer thread, so a persistent trace
// keeps one untraced child, the doorbell (nodeboot's own binary under
// bellArgv0), that blocks reading a pipe and exits when a byte arrives.
// Its exit is the tracer's cue to serve the queued requests and start the
// next doorbell. The doorbell also keeps wait4 from reporting ECHILD while
// no tracee runs (between an exited command and the next Spawn), which
// would end the trace. Restarts are rare, so one process per wake-up is
// cheap.
const bellArgv0 = "nodeboot-doorbell"

func init() {
	if len(os.Args) != 1 || os.Args[0] != bellArgv0 {
		return
	}
	// fd 0 is the pipe: any byte, or its write end closed (the tracer
	// is gone), ends the doorbell.
	var b [1]byte
	for {
		_, err := unix.Read(0, b[:])
		if err != unix.EINTR {
			break
		}
	}
	os.Exit(0)
}

// spawnReq asks the tracer goroutine to start the command once more.
type spawnReq struct {
	r          *Root
	files      []*os.File
	closeAfter []*os.File
}

// Spawn starts the command of the Tracer's Config again, as another root
// of this trace, and returns once it has been exec'd (or failed to be).
// It needs Config.Persist, and fails once the trace was released. The
// new command runs in the mode (seccomp or stop-every-syscall) the first
// one settled.
func (t *Tracer) Spawn() (*Root, error) {
	if !t.cfg.Persist {
		return nil, errors.New("spawn: the trace does not persist (Config.Persist unset)")
	}
	files, closeAfter, err := t.stdio()
	if err != nil {
		return nil, fmt.Errorf("spawn: %w", err)
	}
	r := newRoot()
	t.bellMu.Lock()
	if t.released {
		t.bellMu.Unlock()
		closeFiles(closeAfter)
		return nil, errors.New("spawn: the trace was released")
	}
	t.reqs = append(t.reqs, spawnReq{r: r, files: files, closeAfter: closeAfter})
	t.ringLocked()
	t.bellMu.Unlock()
	select {
	case err = <-r.started:
	case <-t.done:
		// The trace ended first; the tracer answers every queued request
		// before it closes done, so the answer is there.
		select {
		case err = <-r.started:
		default:
			err = errors.New("the trace ended")
		}
	}
	if err != nil {
		return nil, fmt.Errorf("spawn %s: %w", t.cfg.Path, err)
	}
	return r, nil
}

// Release lets a persistent trace end: Wait returns once every traced
// process is gone (Kill makes that happen now). Spawn fails from then on.
// Without Config.Persist it does nothing.
func (t *Tracer) Release() {
	t.bellMu.Lock()
	defer t.bellMu.Unlock()
	if !t.released {
		t.released = true
		t.ringLocked()
	}
}

// NextExit returns a channel that is closed the next time a traced thread
// or process ends, for a caller that waits for some processes to be gone:
// take the channel, check, then wait on it.
func (t *Tracer) NextExit() <-chan struct{} {
	t.aliveMu.Lock()
	defer t.aliveMu.Unlock()
	return t.exitCh
}

// ringLocked wakes the tracer goroutine, if a doorbell runs; else the
// tracer serves the queue when it starts the next one. bellMu is held.
func (t *Tracer) ringLocked() {
	if t.bellW == nil || t.rung {
		return
	}
	t.rung = true
	if _, err := t.bellW.Write([]byte{1}); err != nil {
		// The doorbell has already ended (killed from outside): its exit
		// is on its way to the tracer, which serves the queue then.
		t.log.Debug("doorbell", "err", err)
	}
}

// startBell starts the next doorbell (tracer goroutine). When requests
// are already queued, it is rung at once.
func (t *Tracer) startBell() error {
	r, w, err := os.Pipe()
	if err != nil {
		return fmt.Errorf("doorbell: %w", err)
	}
	proc, err := os.StartProcess("/proc/self/exe", []string{bellArgv0}, &os.ProcAttr{
		Files: []*os.File{r},
		// The doorbell must not outlive the tracer thread, whatever
		// happens to nodeboot.
		Sys: &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL},
	})
	r.Close()
	if err != nil {
		w.Close()
		return fmt.Errorf("doorbell: %w", err)
	}
	t.bellPID = proc.Pid
	proc.Release()
	t.bellMu.Lock()
	t.bellW = w
	t.rung = false
	if len(t.reqs) > 0 || t.released {
		t.ringLocked()
	}
	t.bellMu.Unlock()
	return nil
}

// bellRang handles the doorbell's exit (tracer goroutine): it starts the
// queued commands, and the next doorbell unless the trace was released.
func (t *Tracer) bellRang() {
	t.bellPID = 0
	t.bellMu.Lock()
	if t.bellW != nil {
		t.bellW.Close()
		t.bellW = nil
	}
	reqs := t.reqs
	t.reqs = nil
	released := t.released
	t.bellMu.Unlock()
	for _, q := range reqs {
		t.spawn(q)
	}
	if released {
		return
	}
	if err := t.startBell(); err != nil {
		// Without a doorbell nobody can wake the tracer: the trace ends
		// like a released one, when its last tracee is gone.
		t.log.Error("persistent trace: no doorbell; the trace ends with its last process", "err", err)
		t.bellMu.Lock()
		t.released = true
		reqs = t.reqs
		t.reqs = nil
		t.bellMu.Unlock()
		for _, q := range reqs {
			closeFiles(q.closeAfter)
			t.finishStartup(q.r, err)
		}
	}
}

// spawn starts one more root (tracer goroutine), in the mode the first
// one settled: a filter that cannot be installed now is an error, not a
// switch of mode under the processes already traced.
func (t *Tracer) spawn(q spawnReq) {
	mode := byte(shimModeSeccomp)
	if t.stopAll {
		mode = shimModePtrace
	}
	if err := t.launch(q.r, q.files, q.closeAfter, mode); err != nil {
		t.finishStartup(q.r, err)
		return
	}
	t.log.Debug("spawned", "pid", q.r.pid)
}

// endRequests answers what is still queued when the trace ends.
func (t *Tracer) endRequests() {
	t.bellMu.Lock()
	t.released = true
	reqs := t.reqs
	t.reqs = nil
	if t.bellW != nil {
		t.bellW.Close()
		t.bellW = nil
	}
	t.bellMu.Unlock()
	for _, q := range reqs {
		closeFiles(q.closeAfter)
		t.finishStartup(q.r, errors.New("the trace ended"))
	}
}

func closeFiles(fs []*os.File) {
	for _, f := range fs {
		f.Close()
	}
}
