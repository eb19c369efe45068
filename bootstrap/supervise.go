package bootstrap

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/cenkalti/backoff/v4"
	"k8s.io/utils/clock"

	"github.com/nodeboot/nodeboot/health"
	"github.com/nodeboot/nodeboot/interceptor"
)

// Defaults of SuperviseConfig.
const (
	DefaultStartGrace      = 2 * time.Minute
	DefaultNotReadyGrace   = 60 * time.Second
	DefaultStopTimeout     = 30 * time.Second
	DefaultInitialInterval = time.Second
	DefaultMaxInterval     = time.Minute
	DefaultStableAfter     = 2 * time.Minute
)

// SuperviseConfig says what Supervise runs and when it restarts it. Zero
// durations take the defaults above.
type SuperviseConfig struct {
	// Start starts one incarnation of the supervised command (normally
	// bootstrap.Launch). Its context is not the one given to Supervise: it
	// is cancelled only once the incarnation has been stopped, so that the
	// SIGTERM grace of a stop is honoured (Launch kills the whole tree with
	// SIGKILL when its context ends).
	Start func(ctx context.Context) (*Process, error)
	// Respawn starts the next incarnation after one whose Process keeps
	// shims (LaunchConfig.KeepShims) was stopped by a restart, in its
	// trace: nil is prev.Respawn. Its context is as Start's.
	Respawn func(ctx context.Context, prev *Process) (*Process, error)
	// Health, when non-nil, carries the readiness watcher's statuses
	// (health.Watch feeds it; it spans incarnations). nil: exits are the
	// only reason to restart. Supervise reads it all the time, stopping and
	// backoff waits included, so a sender never blocks for long. A closed
	// channel is as if Health were nil from then on.
	Health <-chan health.Status
	// StartGrace: after each (re)start, not-Ready does not count for this
	// long (default 2m).
	StartGrace time.Duration
	// NotReadyGrace: restart when the node is not Ready (NotReady, Stale,
	// Unreachable, NotRegistered) continuously for longer than this
	// (default 60s).
	NotReadyGrace time.Duration
	// Excuse, when set, is asked before a restart for not being Ready,
	// with the last status. A reason it returns means the command is not
	// at fault (an agent whose API server is away while its kubelet
	// answers its own /healthz: restarting the agent would not bring the
	// server back): there is no restart, an EventExcused says why, and the
	// not-Ready count starts afresh, so that Excuse is asked again a
	// NotReadyGrace later. With Excuse set, a move into or out of
	// APIUnreachable also starts the count afresh, so that an excused
	// outage is never added to a NotReady stretch after it. Excuse runs on
	// Supervise's goroutine with Supervise's context and must return
	// within a few seconds.
	Excuse func(ctx context.Context, st health.Status) (reason string, ok bool)
	// StopTimeout: a stop sends SIGTERM to every traced process (a
	// restart of a Process that keeps shims: every one but the shims and
	// their containers), and SIGKILL to those left after this (default
	// 30s).
	StopTimeout time.Duration
	// MaxRestarts limits the restarts: negative is unlimited (pass -1 for
	// the CLI's default), 0 gives up at the first reason to restart, N at
	// the (N+1)th. Exceeding it ends Supervise with an error naming the
	// last reason.
	MaxRestarts int
	// InitialInterval and MaxInterval shape the backoff between restarts
	// (defaults 1s and 1m): exponential (x1.5) with ±50% jitter
	// (cenkalti/backoff/v4, never giving up by itself), and no wait ever
	// longer than MaxInterval.
	InitialInterval, MaxInterval time.Duration
	// StableAfter: an incarnation that has been Ready this long (with
	// Health nil: running this long) resets the backoff (default 2m).
	StableAfter time.Duration
	// OnEvent is called synchronously, from Supervise's goroutine.
	OnEvent func(Event)
	// Logger gets one line per start, restart (with its reason), stop and
	// backoff reset; nil is slog.Default().
	Logger *slog.Logger
	// Clock times the graces, the backoff waits and StableAfter, and
	// stamps Events; nil is the real clock. Tests pass a fake one, so that
	// "not Ready for longer than the grace" does not depend on how fast
	// the machine schedules the test. (StopTimeout is Process.Stop's and
	// always real.)
	Clock clock.Clock
}

// EventKind names what happened to the supervised command.
type EventKind string

// The events of Supervise, in the order they occur for one incarnation:
// started, then (health)*, then exited or unhealthy+stopping+stopped (or
// stopping+stopped at shutdown), then restarting or gave-up.
const (
	EventStarted    EventKind = "started"    // an incarnation was started (PID set)
	EventExited     EventKind = "exited"     // the command exited by itself; Reason says how, Stats are final
	EventUnhealthy  EventKind = "unhealthy"  // not Ready for longer than NotReadyGrace; Reason says why
	EventExcused    EventKind = "excused"    // not Ready for longer than NotReadyGrace, but Excuse said why that is no reason to restart (Reason)
	EventRestarting EventKind = "restarting" // a restart is due after Delay; Reason is why
	EventStopping   EventKind = "stopping"   // SIGTERM sent to the whole tree (a restart of a Process that keeps shims: all but the shims); Reason is why
	EventStopped    EventKind = "stopped"    // the whole tree (but the kept shims) is gone; Reason is how the command ended
	EventGaveUp     EventKind = "gave-up"    // MaxRestarts exceeded (or the start failed for good); Reason is the last reason
	EventHealth     EventKind = "health"     // the readiness watcher reported a new status
)

// Event is one thing Supervise did or saw.
type Event struct {
	Time     time.Time
	Kind     EventKind
	PID      int            // of the incarnation (0 when none runs)
	Restarts int            // restarts so far
	Reason   string         // why (exit status text, "NotReady for 1m0s: KubeletNotReady ...", "shutdown")
	Delay    time.Duration  // restarting: the backoff wait
	Health   *health.Status // kind "health": the new status
	// Stats are the interceptor counters of the incarnation (exited,
	// stopped).
	Stats *interceptor.Stats
}

// Supervise runs and restarts the command until ctx is cancelled (then
// stops the tree cleanly and returns nil) or MaxRestarts is exceeded
// (returns an error naming the last reason).
//
// A restart is due when the command exits (any exit while ctx is live:
// Supervise's job is to keep it running), when its Start fails, or when
// Health has said not-Ready continuously for longer than NotReadyGrace,
// not counting the StartGrace after each start, and Excuse (if set) finds
// no reason why that is not the command's fault. A restart stops the
// whole traced tree (Process.Stop: SIGTERM to every traced process,
// SIGKILL to all after StopTimeout, then wait until none is left), closes the
// Process, waits the backoff delay (cut short by ctx) and starts again.
// A Process that keeps shims (LaunchConfig.KeepShims) is restarted the
// way k3s is restarted natively: StopKeeping ends all but containerd's
// shims and the containers under them, the trace and the virtual kernel
// live on, and the next incarnation is started in them (Respawn), so
// that its containerd finds the shims again and the pods run on. The
// backoff resets once an incarnation has been Ready for StableAfter.
//
// Everything happens on the calling goroutine, which waits on channels and
// timers only (no polling). When Supervise returns, no traced process of
// any incarnation is left, shims included.
func Supervise(ctx context.Context, cfg SuperviseConfig) error {
	if cfg.Start == nil {
		return errors.New("supervise: no Start function")
	}
	s := newSupervisor(cfg)
	return s.run(ctx)
}

type supervisor struct {
	cfg    SuperviseConfig
	log    *slog.Logger
	clk    clock.Clock
	bo     *backoff.ExponentialBackOff
	health <-chan health.Status

	restarts int
	cur      *Process // the running incarnation, for the deferred cleanup
	// kept is the last incarnation, stopped for a restart with its shims
	// kept: its trace still runs them, and the next incarnation starts in
	// it. keptCancels are the contexts of the incarnations of that trace,
	// cancelled once it has ended (cancelling one kills the trace).
	kept        *Process
	keptCancels []context.CancelFunc

	// Readiness as last reported, spanning incarnations.
	status        *health.Status
	notReadySince time.Time // start of the current unbroken not-Ready stretch; zero when Ready or unknown
	readySince    time.Time // start of the current Ready stretch; zero when not Ready
}

func newSupervisor(cfg SuperviseConfig) *supervisor {
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&cfg.StartGrace, DefaultStartGrace)
	def(&cfg.NotReadyGrace, DefaultNotReadyGrace)
	def(&cfg.StopTimeout, DefaultStopTimeout)
	def(&cfg.InitialInterval, DefaultInitialInterval)
	def(&cfg.MaxInterval, DefaultMaxInterval)
	def(&cfg.StableAfter, DefaultStableAfter)
	if cfg.MaxInterval < cfg.InitialInterval {
		cfg.MaxInterval = cfg.InitialInterval
	}
	log := cfg.Logger
	if log == nil {
		log = slog.Default()
	}
	bo := backoff.NewExponentialBackOff(
		backoff.WithInitialInterval(cfg.InitialInterval),
		backoff.WithMaxInterval(cfg.MaxInterval),
		backoff.WithRandomizationFactor(backoff.DefaultRandomizationFactor),
		backoff.WithMultiplier(backoff.DefaultMultiplier),
		// Never give up by elapsed time: MaxRestarts is the only limit.
		backoff.WithMaxElapsedTime(0),
	)
	clk := cfg.Clock
	if clk == nil {
		clk = clock.RealClock{}
	}
	return &supervisor{cfg: cfg, log: log, clk: clk, bo: bo, health: cfg.Health}
}

func (s *supervisor) emit(e Event) {
	e.Time = s.clk.Now()
	e.Restarts = s.restarts
	if s.cfg.OnEvent != nil {
		s.cfg.OnEvent(e)
	}
}

func (s *supervisor) run(ctx context.Context) (err error) {
	defer func() {
		// Only reached with a live incarnation if something panicked (an
		// OnEvent callback, say): still leave no traced process behind.
		if s.cur != nil {
			s.cur.Kill()
			s.cur.Close()
		}
		if s.kept != nil {
			s.kept.Kill()
			s.kept.Close()
		}
		s.cancelKept()
	}()
	for {
		reason, shutdown := s.incarnation(ctx)
		if shutdown {
			s.stopKept("shutdown")
			return nil
		}
		if s.cfg.MaxRestarts >= 0 && s.restarts >= s.cfg.MaxRestarts {
			s.log.Error("giving up", "restarts", s.restarts, "max", s.cfg.MaxRestarts, "reason", reason)
			s.stopKept(reason)
			s.emit(Event{Kind: EventGaveUp, Reason: reason})
			return fmt.Errorf("gave up after %d restarts: %s", s.restarts, reason)
		}
		delay := s.bo.NextBackOff()
		// The jitter can take the wait past MaxInterval (up to 1.5x);
		// the cap is a promise.
		if delay > s.cfg.MaxInterval || delay == backoff.Stop {
			delay = s.cfg.MaxInterval
		}
		s.restarts++
		s.log.Warn("restarting", "reason", reason, "restart", s.restarts, "delay", delay.Round(time.Millisecond))
		s.emit(Event{Kind: EventRestarting, Reason: reason, Delay: delay})
		if !s.sleep(ctx, delay) {
			s.stopKept("shutdown")
			return nil
		}
	}
}

// stopKept ends what the last incarnation kept (its shims) and closes its
// trace: at shutdown, or when giving up, no process may be left.
func (s *supervisor) stopKept(reason string) {
	p := s.kept
	if p == nil {
		return
	}
	s.kept = nil
	n := len(p.Processes())
	s.log.Info("stopping the kept shims", "processes", n, "reason", reason, "timeout", s.cfg.StopTimeout)
	s.emit(Event{Kind: EventStopping, Reason: reason})
	t0 := s.clk.Now()
	exit, err := s.finish(p, false)
	st := p.Stats()
	s.log.Info("stopped", "took", s.clk.Since(t0).Round(time.Millisecond))
	s.emit(Event{Kind: EventStopped, Reason: exitReason(exit, err), Stats: &st})
	if err := p.Close(); err != nil {
		s.log.Warn("close", "err", err)
	}
	s.cancelKept()
}

func (s *supervisor) cancelKept() {
	for _, c := range s.keptCancels {
		c()
	}
	s.keptCancels = nil
}

// incarnation starts the command once and runs it until a restart is due
// (reason) or ctx ends (shutdown). Either way the whole tree is gone and
// the Process closed when it returns.
func (s *supervisor) incarnation(ctx context.Context) (reason string, shutdown bool) {
	if ctx.Err() != nil {
		return "", true
	}
	// See SuperviseConfig.Start: the incarnation outlives ctx until it has
	// been stopped with SIGTERM first.
	// An incarnation that keeps its shims hands its context on to its
	// trace (s.keptCancels), which outlives it.
	ictx, icancel := context.WithCancel(context.WithoutCancel(ctx))
	handedOn := false
	defer func() {
		if !handedOn {
			icancel()
		}
	}()
	var p *Process
	var err error
	if prev := s.kept; prev != nil {
		if s.cfg.Respawn != nil {
			p, err = s.cfg.Respawn(ictx, prev)
		} else {
			p, err = prev.Respawn(ictx)
		}
		if err != nil {
			select {
			case <-prev.Done():
				// The trace has ended (its processes were killed from
				// outside): the next start is a launch.
				s.kept = nil
				prev.Close()
				s.cancelKept()
			default:
			}
		}
	} else {
		p, err = s.cfg.Start(ictx)
	}
	if err != nil {
		if ctx.Err() != nil {
			return "", true
		}
		reason = "start failed: " + err.Error()
		s.log.Error("start failed", "err", err)
		return reason, false
	}
	if p.KeepsShims() {
		handedOn = true
		s.keptCancels = append(s.keptCancels, icancel)
	}
	// The new incarnation carries the trace on.
	s.kept = nil
	s.cur = p
	startedAt := s.clk.Now()
	pid := p.PID()
	s.log.Info("started", "pid", pid, "restarts", s.restarts)
	s.emit(Event{Kind: EventStarted, PID: pid})

	notReady := s.stoppedTimer()
	defer notReady.Stop()
	stable := s.stoppedTimer()
	defer stable.Stop()
	stableDone := false
	arm := func() {
		s.armNotReady(notReady, startedAt)
		if !stableDone {
			s.armStable(stable, startedAt)
		}
	}
	arm()
	for {
		select {
		case <-ctx.Done():
			s.stop(p, "shutdown", false)
			return "", true
		case <-p.Exited():
			// The command is gone; what it left behind gets the same
			// TERM-then-KILL as a restart (but for the shims it keeps).
			exit, err := s.finish(p, true)
			reason = exitReason(exit, err)
			s.log.Warn("command exited", "pid", pid, "exit", reason, "uptime", s.clk.Since(startedAt).Round(time.Millisecond))
			st := p.Stats()
			s.emit(Event{Kind: EventExited, PID: pid, Reason: reason, Stats: &st})
			s.closeForRestart(p)
			return reason, false
		case st, ok := <-s.health:
			if !ok {
				s.healthClosed()
			} else {
				s.observe(st)
			}
			arm()
		case <-notReady.C():
			if why, ok := s.excused(ctx); ok {
				s.log.Warn("not Ready for too long, but not restarting", "pid", pid, "reason", s.notReadyReason(), "excuse", why)
				s.emit(Event{Kind: EventExcused, PID: pid, Reason: why})
				s.notReadySince = s.clk.Now()
				arm()
				continue
			}
			reason = s.notReadyReason()
			s.log.Warn("not Ready for too long", "pid", pid, "reason", reason)
			s.emit(Event{Kind: EventUnhealthy, PID: pid, Reason: reason})
			s.stop(p, reason, true)
			return reason, false
		case <-stable.C():
			stableDone = true
			s.bo.Reset()
			s.log.Info("stable; backoff reset", "pid", pid, "after", s.cfg.StableAfter)
		}
	}
}

// armNotReady sets t to fire when the not-Ready stretch, counted from no
// earlier than StartGrace after the start, exceeds NotReadyGrace.
func (s *supervisor) armNotReady(t clock.Timer, startedAt time.Time) {
	if s.notReadySince.IsZero() {
		t.Stop()
		return
	}
	from := later(s.notReadySince, startedAt.Add(s.cfg.StartGrace))
	t.Reset(from.Add(s.cfg.NotReadyGrace).Sub(s.clk.Now()))
}

// armStable sets t to fire once the incarnation has been Ready (with no
// health source: running) for StableAfter.
func (s *supervisor) armStable(t clock.Timer, startedAt time.Time) {
	var from time.Time
	switch {
	case s.health == nil:
		from = startedAt
	case !s.readySince.IsZero():
		// Ready before this start (the API remembers the last
		// incarnation's Ready) only counts from the start.
		from = later(s.readySince, startedAt)
	default:
		t.Stop()
		return
	}
	t.Reset(from.Add(s.cfg.StableAfter).Sub(s.clk.Now()))
}

// observe records a status from the watcher.
func (s *supervisor) observe(st health.Status) {
	since := st.Since
	if now := s.clk.Now(); since.IsZero() || since.After(now) {
		since = now
	}
	prev := s.status
	s.status = &st
	if st.State == health.Ready {
		s.notReadySince = time.Time{}
		if s.readySince.IsZero() {
			s.readySince = since
		}
	} else {
		// NotReady, Stale, Unreachable, NotRegistered (and anything a
		// newer watcher adds) all count as not Ready; moving between
		// them does not restart the count.
		s.readySince = time.Time{}
		if s.notReadySince.IsZero() || s.outageEdge(prev, st) {
			s.notReadySince = since
		}
	}
	if prev == nil || prev.State != st.State {
		s.log.Info("health", "state", st.State, "reason", st.Reason, "message", st.Message)
	} else {
		s.log.Debug("health", "state", st.State, "reason", st.Reason, "message", st.Message)
	}
	pid := 0
	if s.cur != nil {
		pid = s.cur.PID()
	}
	s.emit(Event{Kind: EventHealth, PID: pid, Health: &st})
}

// outageEdge says whether, with an Excuse, st moves into or out of
// APIUnreachable from a not-Ready prev: an outage that may be excused is
// counted apart from what comes before and after it.
func (s *supervisor) outageEdge(prev *health.Status, st health.Status) bool {
	return s.cfg.Excuse != nil && prev != nil && prev.State != health.Ready &&
		(prev.State == health.Unreachable) != (st.State == health.Unreachable)
}

// excused asks Excuse, if any, about the last status.
func (s *supervisor) excused(ctx context.Context) (string, bool) {
	if s.cfg.Excuse == nil || s.status == nil || ctx.Err() != nil {
		return "", false
	}
	return s.cfg.Excuse(ctx, *s.status)
}

func (s *supervisor) healthClosed() {
	s.log.Warn("health channel closed; restarting on exits only")
	s.health = nil
	s.notReadySince = time.Time{}
}

func (s *supervisor) notReadyReason() string {
	state, detail := "not Ready", ""
	if s.status != nil {
		state = string(s.status.State)
		detail = strings.TrimSpace(s.status.Reason + " " + s.status.Message)
	}
	r := fmt.Sprintf("%s for %s", state, s.cfg.NotReadyGrace)
	if detail != "" {
		r += ": " + detail
	}
	return r
}

// stop ends the whole tree of p (SIGTERM to every traced process, SIGKILL
// after StopTimeout) and closes p, reporting stopping and stopped. For a
// restart of a Process that keeps shims, the shims and their containers
// are left running and p's trace is kept for the next incarnation.
func (s *supervisor) stop(p *Process, reason string, restart bool) {
	pid := p.PID()
	s.log.Info("stopping", "pid", pid, "reason", reason, "timeout", s.cfg.StopTimeout)
	s.emit(Event{Kind: EventStopping, PID: pid, Reason: reason})
	t0 := s.clk.Now()
	exit, err := s.finish(p, restart)
	st := p.Stats()
	how := exitReason(exit, err)
	s.log.Info("stopped", "pid", pid, "exit", how, "took", s.clk.Since(t0).Round(time.Millisecond))
	s.emit(Event{Kind: EventStopped, PID: pid, Reason: how, Stats: &st})
	if restart {
		s.closeForRestart(p)
	} else {
		s.close(p)
	}
}

// closeForRestart closes p after a restart's stop, or, when it keeps
// shims, keeps its trace for the next incarnation.
func (s *supervisor) closeForRestart(p *Process) {
	select {
	case <-p.Done():
		// The trace itself has ended (its processes were killed from
		// outside): nothing is kept, and the next start is a launch.
		s.close(p)
		return
	default:
	}
	if !p.KeepsShims() {
		s.close(p)
		return
	}
	if kept := p.Kept(); len(kept) > 0 {
		s.log.Info("kept running for the next incarnation", "pid", p.PID(), "processes", kept)
	}
	s.kept = p
	s.cur = nil
}

// finish runs Process.Stop, or for a restart Process.StopKeeping (a no-op
// when everything has already ended), while still reading Health, and
// returns how the command ended.
func (s *supervisor) finish(p *Process, restart bool) (interceptor.Exit, error) {
	type result struct {
		exit interceptor.Exit
		err  error
	}
	done := make(chan result, 1)
	go func() {
		// Not ctx: a cancelled context makes Stop skip the SIGTERM grace.
		var exit interceptor.Exit
		var err error
		if restart {
			exit, err = p.StopKeeping(context.Background(), s.cfg.StopTimeout)
		} else {
			exit, err = p.Stop(context.Background(), s.cfg.StopTimeout)
		}
		done <- result{exit, err}
	}()
	for {
		select {
		case r := <-done:
			return r.exit, r.err
		case st, ok := <-s.health:
			if !ok {
				s.healthClosed()
			} else {
				s.observe(st)
			}
		}
	}
}

func (s *supervisor) close(p *Process) {
	if err := p.Close(); err != nil {
		s.log.Warn("close", "pid", p.PID(), "err", err)
	}
	s.cur = nil
	if p.KeepsShims() {
		s.cancelKept()
	}
}

// sleep waits d (reading Health meanwhile) and reports false when ctx
// ended first.
func (s *supervisor) sleep(ctx context.Context, d time.Duration) bool {
	t := s.clk.NewTimer(d)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return false
		case <-t.C():
			return true
		case st, ok := <-s.health:
			if !ok {
				s.healthClosed()
			} else {
				s.observe(st)
			}
		}
	}
}

// exitReason says how the command ended, for logs and errors.
func exitReason(exit interceptor.Exit, err error) string {
	var r string
	if exit.Signal != 0 {
		r = fmt.Sprintf("command killed by signal %d (%s)", int(exit.Signal), exit.Signal)
	} else {
		r = fmt.Sprintf("command exited with status %d", exit.Code)
	}
	if err != nil {
		r += " (tracer: " + err.Error() + ")"
	}
	return r
}

func (s *supervisor) stoppedTimer() clock.Timer {
	t := s.clk.NewTimer(time.Hour)
	t.Stop()
	return t
}

func later(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}
