package up

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/nodeboot/nodeboot/bootstrap"
	"github.com/nodeboot/nodeboot/health"
	"github.com/nodeboot/nodeboot/interceptor"
	"github.com/nodeboot/nodeboot/internal/cli/cmdutil"
	"github.com/nodeboot/nodeboot/internal/cli/progress"
	"github.com/nodeboot/nodeboot/internal/instance"
	"github.com/nodeboot/nodeboot/manifests"
)

// The supervisor: "up" in the foreground, or the detached child.
//
// Goroutines: the calling one runs bootstrap.Supervise; one watches the
// node (waiting for the kubeconfig first) and feeds Supervise's health
// channel; one refreshes the interceptor counters in state.json; one
// applies the manifests after the first Ready. They all report through
// runner.emit, which holds runner.mu while it updates the state, rewrites
// state.json, appends to events.jsonl and prints.

// counterPeriod is how often state.json gets fresh interceptor counters.
const counterPeriod = 5 * time.Second

// runner is one supervisor run.
type runner struct {
	p       *plan
	log     *slog.Logger // terminal (through the printer) and logs/nodeboot.log
	fileLog *slog.Logger // logs/nodeboot.log only
	libLog  *slog.Logger // for Supervise, Launch, the watcher and the applier
	printer *progress.Printer
	events  *instance.EventLog

	mu           sync.Mutex
	state        instance.State
	cur          *bootstrap.Process // the running incarnation, for counters
	applied      bool               // the manifests were applied (or written for k3s)
	applyStarted bool
	restCfg      *rest.Config // once the kubeconfig loaded
	lastHealth   *health.Status
	// startedAt is when the running incarnation started; heard says its
	// kubelet has been heard from since: it renewed the node's Lease
	// (lastRenew is the latest renew time seen) or posted the Node's
	// status. Until then a Ready node is the previous kubelet's (before a
	// restart, or from an earlier run on this data dir), and the phase
	// stops at node-registered.
	startedAt time.Time
	lastRenew time.Time
	heard     bool
	watchCtx  context.Context
	wg        sync.WaitGroup
}

// supervise runs the supervisor until a signal or giving up. child: this is
// the detached supervisor, which inherits the lock (envLockFD) and whose
// stderr is already logs/nodeboot.log.
func (p *plan) supervise(ctx context.Context, logger *slog.Logger, streams cmdutil.IOStreams, child bool) (err error) {
	in, err := instance.Open(p.in.Dir)
	if err != nil {
		return fmt.Errorf("up: %w", err)
	}
	p.in = in
	if child {
		if err := adoptLock(in); err != nil {
			return fmt.Errorf("up: %w", err)
		}
	} else if err := in.Lock(); err != nil {
		return fmt.Errorf("up: %w", err)
	}
	defer in.Unlock()
	if err := in.WritePID(); err != nil {
		return fmt.Errorf("up: %w", err)
	}
	defer in.RemovePID()

	// The detached parent already started a new events.jsonl, which its
	// --wait follows; a foreground run starts its own.
	events, err := in.OpenEvents(!child)
	if err != nil {
		return fmt.Errorf("up: %w", err)
	}
	defer events.Close()

	start := time.Now()
	r := &runner{p: p, events: events}
	out := streams.ErrOut
	if p.f.Output == "json" && !child {
		out = streams.Out
	}
	mode := progress.ModeFor(p.f.Output, out)
	if child {
		mode = progress.Plain // into logs/nodeboot.log
	}
	r.printer = progress.New(out, mode, start)
	defer r.printer.Close()

	// logs/nodeboot.log gets Info and above (Debug with -v), whatever -q
	// says about the terminal.
	fileLevel := min(levelOf(logger), slog.LevelInfo)
	r.log = slog.New(slog.NewTextHandler(streams.ErrOut, &slog.HandlerOptions{Level: fileLevel}))
	r.fileLog, r.libLog = r.log, r.log
	if !child {
		// Log to logs/nodeboot.log as well as to the terminal, whose lines
		// go through the printer so that they cut the live line cleanly.
		lf, err := instance.OpenLog(in.NodebootLog())
		if err != nil {
			return fmt.Errorf("up: %w", err)
		}
		defer lf.Close()
		var console io.Writer = r.printer
		if mode == progress.JSON {
			console = streams.ErrOut
		}
		file := slog.NewTextHandler(lf, &slog.HandlerOptions{Level: fileLevel})
		r.log = slog.New(slog.NewMultiHandler(file,
			slog.NewTextHandler(console, &slog.HandlerOptions{Level: consoleLevel(logger), ReplaceAttr: dropTime}),
		))
		r.fileLog, r.libLog = slog.New(file), slog.New(file)
		// The supervisor's, watcher's and applier's lines repeat what the
		// progress lines say; they reach the terminal only with -v.
		if consoleLevel(logger) <= slog.LevelDebug {
			r.libLog = r.log
		}
	}
	k3sLog, err := instance.OpenLog(in.K3sLog())
	if err != nil {
		return fmt.Errorf("up: %w", err)
	}
	defer k3sLog.Close()

	r.state = instance.State{
		Phase: instance.PhaseSeeding, PhaseSince: start, DataDir: in.Dir, NodeName: p.nodeName, Role: p.f.Role,
		K3s: p.k3s, StartedAt: start, SupervisorPID: os.Getpid(),
	}

	// One signal context: the first SIGINT or SIGTERM stops k3s cleanly;
	// once it has fired, a second signal gets the default action and ends
	// nodeboot at once (the tracer's death kills the traced tree).
	sctx, stopSignals := signal.NotifyContext(ctx, syscall.SIGINT, syscall.SIGTERM)
	defer stopSignals()
	go func() {
		<-sctx.Done()
		stopSignals()
	}()

	r.log.Info("starting", "data-dir", in.Dir, "k3s", p.k3s, "role", p.f.Role, "node", p.nodeName, "profile", p.profile.Name, "pid", os.Getpid())
	r.phase(instance.PhaseSeeding, "", "")
	rep, err := bootstrap.Seed(sctx, in.Root(), p.profile, bootstrap.SeedOptions{})
	if err != nil {
		return r.fail(fmt.Errorf("up: seed %s: %w", in.Root(), err))
	}
	kubeconfig := in.Kubeconfig()
	k3sArgs, err := bootstrap.K3sArgs(bootstrap.K3sArgsConfig{
		Role: p.f.Role, ServerURL: p.f.Server, Token: p.f.Token,
		DataDir: in.K3sDataDir(), Kubeconfig: kubeconfig, NodeName: p.nodeName,
		Profile: p.profile, Root: in.Root(), UserArgs: p.userArgs,
	})
	if err != nil {
		return r.fail(fmt.Errorf("up: %w", err))
	}
	argv := append([]string{"k3s"}, k3sArgs...)
	r.log.Debug("k3s command", "path", p.k3s, "args", argv)
	r.phase(instance.PhaseStarting, fmt.Sprintf("%d created, %d unchanged, %d kept", rep.Count(bootstrap.Created), rep.Count(bootstrap.Unchanged), rep.Count(bootstrap.Kept)), "")

	healthCh := make(chan health.Status, 16)
	wctx, stopWatch := context.WithCancel(sctx)
	defer stopWatch()
	r.watchCtx = wctx
	r.wg.Add(2)
	go func() {
		defer r.wg.Done()
		r.watch(wctx, healthKubeconfig(p, kubeconfig), healthCh)
	}()
	go func() {
		defer r.wg.Done()
		r.refreshCounters(wctx)
	}()

	err = bootstrap.Supervise(sctx, bootstrap.SuperviseConfig{
		Start: func(ctx context.Context) (*bootstrap.Process, error) {
			proc, err := bootstrap.Launch(ctx, bootstrap.LaunchConfig{
				Profile: p.profile, Root: in.Root(),
				Path: p.k3s, Args: argv,
				Stdout: k3sLog, Stderr: k3sLog,
				Logger: r.libLog, Setpgid: true,
			})
			if err == nil {
				r.mu.Lock()
				r.cur = proc
				r.mu.Unlock()
			}
			return proc, err
		},
		Health:        healthCh,
		StartGrace:    p.f.StartGrace,
		NotReadyGrace: p.f.NotReadyGrace,
		StopTimeout:   p.f.StopTimeout,
		MaxRestarts:   p.f.MaxRestarts,
		OnEvent:       r.superviseEvent,
		Logger:        r.libLog,
	})
	stopWatch()
	r.wg.Wait()
	if err != nil {
		return r.fail(fmt.Errorf("up: %w", err))
	}
	r.phase(instance.PhaseStopped, "", "")
	r.log.Info("stopped", "data-dir", in.Dir)
	return nil
}

// adoptLock takes the lock the detaching parent passed down.
func adoptLock(in *instance.Instance) error {
	fd, err := strconv.Atoi(os.Getenv(envLockFD))
	if err != nil || fd < 3 {
		return fmt.Errorf("%s=%q: not a descriptor", envLockFD, os.Getenv(envLockFD))
	}
	os.Unsetenv(envLockFD) // not for k3s
	return in.AdoptLock(os.NewFile(uintptr(fd), in.LockPath()))
}

// healthKubeconfig is the kubeconfig the watcher uses: the admin one k3s
// server writes, or an agent's kubelet kubeconfig (node credentials may
// read their own Node and Lease).
func healthKubeconfig(p *plan, admin string) string {
	if p.f.Role == "agent" {
		return filepath.Join(p.k3sDataDir, "agent", "kubelet.kubeconfig")
	}
	return admin
}

// fail records err as the end of the run.
func (r *runner) fail(err error) error {
	r.mu.Lock()
	r.state.LastError = err.Error()
	r.mu.Unlock()
	r.phase(instance.PhaseFailed, err.Error(), "")
	r.fileLog.Error("giving up", "err", err) // the terminal gets the error once, from the CLI
	return err
}

// phase records that phase was reached.
func (r *runner) phase(ph instance.Phase, msg, reason string) {
	r.emit(instance.Event{Kind: instance.KindPhase, Phase: ph, Message: msg, Reason: reason})
}

// emit records e: state.json (a phase event sets the phase), events.jsonl
// and the progress display. update, when set, changes the state first.
func (r *runner) emit(e instance.Event, update ...func(*instance.State)) {
	if e.Time.IsZero() {
		e.Time = time.Now()
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, u := range update {
		u(&r.state)
	}
	if e.Kind == instance.KindPhase {
		r.state.Phase, r.state.PhaseSince = e.Phase, e.Time
	}
	r.writeState()
	if err := r.events.Append(e); err != nil {
		r.log.Warn("record event", "err", err)
	}
	r.printer.Event(e)
}

// writeState rewrites state.json. Precondition: r.mu held.
func (r *runner) writeState() {
	r.state.UpdatedAt = time.Now()
	if err := r.p.in.WriteState(&r.state); err != nil {
		r.log.Warn("record state", "err", err)
	}
}

// superviseEvent records an event of bootstrap.Supervise.
func (r *runner) superviseEvent(e bootstrap.Event) {
	if e.Kind == bootstrap.EventHealth {
		return // the watcher's own callback records health
	}
	ev := instance.Event{Time: e.Time, Kind: string(e.Kind), PID: e.PID, Restarts: e.Restarts, Reason: e.Reason}
	if e.Delay > 0 {
		ev.Delay = e.Delay.Round(time.Millisecond).String()
	}
	r.emit(ev, func(s *instance.State) {
		s.Restarts = e.Restarts
		if e.Stats != nil {
			s.Interceptor = counters(*e.Stats)
		}
		switch e.Kind {
		case bootstrap.EventStarted:
			s.K3sPID = e.PID
			if s.Phase == instance.PhaseRestarting {
				s.Phase, s.PhaseSince = instance.PhaseStarting, e.Time
			}
			// Under r.mu (emit holds it). e.Time is just after k3s's
			// exec; its kubelet renews the Lease a good while later.
			r.startedAt = e.Time
			r.heard = r.lastRenew.After(r.startedAt)
		case bootstrap.EventExited, bootstrap.EventStopped:
			s.K3sPID = 0
			r.cur = nil
		case bootstrap.EventRestarting:
			s.AddRestart(instance.Restart{Time: e.Time, Reason: e.Reason, Delay: ev.Delay})
			s.Phase, s.PhaseSince = instance.PhaseRestarting, e.Time
		case bootstrap.EventStopping:
			if e.Reason == "shutdown" {
				s.Phase, s.PhaseSince = instance.PhaseStopping, e.Time
			}
		case bootstrap.EventGaveUp:
			s.LastError = e.Reason
		}
	})
	if e.Kind == bootstrap.EventStarted {
		// A renewal seen between the start and this event has already
		// proved the new kubelet: nothing else may come to move the phase.
		r.advanceIfHeard()
	}
}

// advanceIfHeard moves the phase on for the last health when the running
// incarnation's kubelet has been heard from.
func (r *runner) advanceIfHeard() {
	r.mu.Lock()
	heard, lh, ctx := r.heard, r.lastHealth, r.watchCtx
	r.mu.Unlock()
	if heard && lh != nil && ctx != nil {
		r.advance(ctx, *lh)
	}
}

// onRenew notes a renewal of the node's Lease. One stamped after the
// running incarnation started proves its kubelet alive: the phase may then
// pass node-registered. The watcher reports health changes only, so after
// a quick restart (the node never left Ready) this is what moves the phase
// on again: the new kubelet renews the Lease it finds as it starts.
func (r *runner) onRenew(at time.Time) {
	r.mu.Lock()
	if at.After(r.lastRenew) {
		r.lastRenew = at
	}
	first := !r.heard && !r.startedAt.IsZero() && at.After(r.startedAt)
	if first {
		r.heard = true
	}
	r.mu.Unlock()
	if first {
		r.log.Debug("the kubelet of this start renewed the node's lease", "renewTime", at)
	}
	// Every renewal, not only the first: advance is cheap and idempotent,
	// and whatever set heard (this, a heartbeat, the started event) may
	// have found no Ready health to advance with then.
	r.advanceIfHeard()
}

// counters summarises the interceptor's counters.
func counters(st interceptor.Stats) *instance.Counters {
	c := &instance.Counters{Mode: st.Mode.String(), Stops: st.Stops, Tracees: st.Tracees}
	for _, s := range st.Syscalls {
		c.Rewrites += s.Rewrites
		c.Passes += s.Passes
	}
	return c
}

// refreshCounters copies the running incarnation's counters into
// state.json every counterPeriod.
func (r *runner) refreshCounters(ctx context.Context) {
	t := time.NewTicker(counterPeriod)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		r.mu.Lock()
		if r.cur != nil {
			r.state.Interceptor = counters(r.cur.Stats())
			r.writeState()
		}
		r.mu.Unlock()
	}
}

// watch reports the node's health to out (Supervise) and to the state until
// ctx ends. Until the kubeconfig exists, the API counts as unreachable.
func (r *runner) watch(ctx context.Context, kubeconfig string, out chan<- health.Status) {
	report := func(st health.Status) {
		r.onHealth(ctx, st)
		select {
		case out <- st:
		case <-ctx.Done():
		}
	}
	report(health.Status{State: health.Unreachable, Reason: "NoKubeconfig", Message: "waiting for k3s to write its kubeconfig " + kubeconfig, Since: time.Now()})
	var restCfg *rest.Config
	for {
		if _, err := os.Stat(kubeconfig); err == nil {
			// k3s writes it in place: a half-written file fails to load,
			// and the next try gets the whole.
			cfg, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
			if err == nil {
				restCfg = cfg
				break
			}
			r.log.Debug("kubeconfig not usable yet", "path", kubeconfig, "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(time.Second):
		}
	}
	r.mu.Lock()
	r.restCfg = restCfg
	r.mu.Unlock()
	r.log.Debug("watching the node", "node", r.p.nodeName, "kubeconfig", kubeconfig)
	// Watch builds its REST clients from restCfg; an unusable config (bad
	// TLS files, say) is its immediate error.
	err := health.Watch(ctx, health.Config{REST: restCfg, NodeName: r.p.nodeName, Logger: r.libLog, OnRenew: r.onRenew}, report)
	if err != nil && !errors.Is(err, context.Canceled) {
		r.emit(instance.Event{Kind: instance.KindError, Message: fmt.Sprintf("readiness watcher for %s: %v", kubeconfig, err)})
		r.log.Warn("readiness watcher ended", "err", err)
	}
}

// onHealth records a health report and moves the phase on.
func (r *runner) onHealth(ctx context.Context, st health.Status) {
	h := toHealth(st)
	r.emit(instance.Event{Time: time.Now(), Kind: instance.KindHealth, Health: h}, func(s *instance.State) { s.Health = h })

	r.mu.Lock()
	r.lastHealth = &st
	r.mu.Unlock()
	r.advance(ctx, st)
}

// advance moves the phase on for health st.
func (r *runner) advance(ctx context.Context, st health.Status) {
	r.mu.Lock()
	cur := r.state.Phase
	applied, wantApply := r.applied, len(r.p.objs) > 0 && !r.applyStarted
	// A kubelet posts the Node's status as it starts: a Ready condition
	// with a heartbeat since the start is this kubelet's. (On a new node
	// that comes first: kubelet creates the Lease only at its second
	// renew interval, the Node's owner reference needing the Node.)
	if !r.heard && !r.startedAt.IsZero() && heartbeatSince(st, r.startedAt) {
		r.heard = true
	}
	heard := r.heard
	r.mu.Unlock()
	rank := phaseRank(cur)
	if st.State != health.Unreachable && rank < phaseRank(instance.PhaseAPIReachable) {
		r.phase(instance.PhaseAPIReachable, "", "")
	}
	if (st.State == health.NotReady || st.State == health.Ready || st.State == health.Stale) && rank < phaseRank(instance.PhaseRegistered) {
		r.phase(instance.PhaseRegistered, "", "")
	}
	if st.State != health.Ready || rank >= phaseRank(instance.PhaseNodeReady) {
		return
	}
	if !heard {
		// Ready, but maybe the previous kubelet's: wait for a heartbeat
		// of this one (onRenew advances then).
		return
	}
	switch {
	case len(r.p.objs) == 0:
		r.phase(instance.PhaseReady, "", "")
	case applied:
		r.phase(instance.PhaseManifestsApplied, "", "")
	case !wantApply:
		// Applying (or failed, LastError says why) since an earlier Ready.
		r.phase(instance.PhaseNodeReady, "", "")
	default:
		r.phase(instance.PhaseNodeReady, "", "")
		r.mu.Lock()
		r.applyStarted = true
		r.mu.Unlock()
		r.wg.Add(1)
		go func() {
			defer r.wg.Done()
			r.apply(ctx)
		}()
	}
}

// heartbeatSince reports whether st's Ready condition was last posted at or
// after t (lastHeartbeatTime, the kubelet's clock: the kubelet runs on this
// machine). The heartbeat has whole seconds, so t's second counts.
func heartbeatSince(st health.Status, t time.Time) bool {
	for _, c := range st.Conditions {
		if c.Type == corev1.NodeReady {
			return !c.LastHeartbeatTime.Time.Before(t.Truncate(time.Second))
		}
	}
	return false
}

// phaseRank orders the phases of bringing up; the others rank lowest.
func phaseRank(p instance.Phase) int {
	switch p {
	case instance.PhaseAPIReachable:
		return 1
	case instance.PhaseRegistered:
		return 2
	case instance.PhaseNodeReady:
		return 3
	case instance.PhaseReady, instance.PhaseManifestsApplied, instance.PhaseManifestsFailed:
		return 4
	}
	return 0
}

// apply applies the manifests once, after the first Ready.
func (r *runner) apply(ctx context.Context) {
	p := r.p
	r.mu.Lock()
	restCfg := r.restCfg
	r.mu.Unlock()
	cfg := manifests.ApplyConfig{
		REST: restCfg, FieldManager: "nodeboot", Timeout: p.f.Timeout, Logger: r.libLog,
		OnProgress: func(s string) { r.emit(instance.Event{Kind: instance.KindManifests, Message: s}) },
	}
	var err error
	if p.f.ManifestsVia == "k3s" {
		dir := filepath.Join(p.k3sDataDir, "server", "manifests")
		err = manifests.WriteAutoDeploy(dir, p.objs)
		if err == nil {
			r.log.Info("manifests written for k3s's deploy controller; waiting until it has applied them", "dir", dir)
			// "Applied" means in the cluster and ready, as with nodeboot's
			// own apply: k3s picks the files up within about 15 s.
			err = manifests.Await(ctx, cfg, p.objs, func(o manifests.Object) string {
				file := manifests.AutoDeployName(o)
				addon, _, _ := strings.Cut(file, ".")
				return fmt.Sprintf("not created yet; k3s applies it from %s (kubectl -n kube-system describe addon %s shows how that went)",
					filepath.Join(dir, file), addon)
			})
		}
	} else {
		err = manifests.Apply(ctx, cfg, p.objs)
	}
	if ctx.Err() != nil {
		return // stopping
	}
	if err != nil {
		msg := err.Error()
		r.emit(instance.Event{Kind: instance.KindPhase, Phase: instance.PhaseManifestsFailed, Message: msg}, func(s *instance.State) { s.LastError = "apply manifests: " + msg })
		r.log.Error("applying the manifests failed; the node keeps running", "err", err)
		return
	}
	r.mu.Lock()
	r.applied = true
	r.mu.Unlock()
	r.phase(instance.PhaseManifestsApplied, fmt.Sprintf("%d objects", len(p.objs)), "")
}

// toHealth flattens a health.Status for state.json.
func toHealth(st health.Status) *instance.Health {
	h := &instance.Health{State: string(st.State), Reason: st.Reason, Message: st.Message, Since: st.Since}
	for _, c := range st.Conditions {
		h.Conditions = append(h.Conditions, toCondition(c))
	}
	return h
}

func toCondition(c corev1.NodeCondition) instance.Condition {
	return instance.Condition{Type: string(c.Type), Status: string(c.Status), Reason: c.Reason, Message: c.Message, LastHeartbeat: c.LastHeartbeatTime.Time}
}

// levelOf is the lowest level logger prints (above Error when none).
func levelOf(logger *slog.Logger) slog.Level {
	for _, l := range []slog.Level{slog.LevelDebug, slog.LevelInfo, slog.LevelWarn, slog.LevelError} {
		if logger.Enabled(context.Background(), l) {
			return l
		}
	}
	return slog.LevelError + 1000
}

// consoleLevel is the terminal's level: the progress lines say what the
// Info lines would, so only warnings and errors are printed unless -v.
func consoleLevel(logger *slog.Logger) slog.Level {
	l := levelOf(logger)
	if l <= slog.LevelDebug {
		return l
	}
	return max(l, slog.LevelWarn)
}

// dropTime drops the time from terminal log lines, as the CLI's logger does.
func dropTime(groups []string, a slog.Attr) slog.Attr {
	if len(groups) == 0 && a.Key == slog.TimeKey {
		return slog.Attr{}
	}
	return a
}
