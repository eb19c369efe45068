package node

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"time"

	"k8s.io/client-go/rest"

	"github.com/nodeboot/nodeboot/bootstrap"
	"github.com/nodeboot/nodeboot/health"
	"github.com/nodeboot/nodeboot/interceptor"
	"github.com/nodeboot/nodeboot/internal/instance"
)

// ErrStopped is WaitFor's error when the node stopped (Stop, its context)
// before reaching the phase.
var ErrStopped = errors.New("the node stopped")

// ErrManifestsFailed is WaitFor's error when applying the manifests failed
// (the node is Ready and keeps running).
var ErrManifestsFailed = errors.New("applying the manifests failed")

// Node is a running node: k3s under the interceptor, supervised. Its
// methods are safe for concurrent use.
type Node struct {
	plan *Plan
	cfg  Config
	log  *slog.Logger
	in   *instance.Instance
	seed bootstrap.SeedReport

	events *instance.EventLog
	k3sLog *os.File
	claims *instance.Claims // node name and network namespace, machine-wide

	cancel context.CancelFunc // ends the node's context: Supervise stops k3s
	done   chan struct{}      // closed once everything has ended and the data dir is released
	err    error              // how it ended; set before done is closed

	wg sync.WaitGroup // the watcher, the counters, the applier

	// advMu serialises the phase decisions (advance), evMu orders the
	// events (state, events.jsonl, OnEvent in one order), mu guards the
	// fields below. Lock order: advMu, evMu, mu.
	advMu sync.Mutex
	evMu  sync.Mutex
	mu    sync.Mutex

	state   State
	changed chan struct{} // closed (and replaced) at every event: WaitFor wakes
	cur     *bootstrap.Process
	// applied: the manifests were applied (or written for k3s and seen
	// applied); applyStarted: the applier runs or ran.
	applied, applyStarted bool
	restCfg               *rest.Config // once the kubeconfig loaded
	lastHealth            *health.Status
	// startedAt is when the running incarnation started; heard says its
	// kubelet has been heard from since: it renewed the node's Lease
	// (lastRenew is the latest renew time seen) or posted the Node's
	// status. Until then a Ready node is the previous kubelet's (before a
	// restart, or from an earlier run on this data dir), and the phase
	// stops at node-registered.
	// fault: the tracer reported a fault; the node ends with it.
	fault     error
	startedAt time.Time
	lastRenew time.Time
	heard     bool
	watchCtx  context.Context
	// logFrom is where the running incarnation's output begins in
	// logs/k3s.log; lastLog is what the last one to end left there
	// (Event.Log).
	logFrom int64
	lastLog []string
}

// Start starts the node cfg describes and returns once k3s is on its way:
// it checks cfg (see Check), takes the data directory (its lock, with a
// *LockedError when another process runs a node there), seeds the fake
// tree once, writes the files k3s's arguments name, and starts supervising
// k3s (bootstrap.Supervise, each incarnation launched by bootstrap.Launch
// on that tree) with the readiness watcher (health.Watch) feeding it. From
// then on the phase moves on as the node comes up; the manifests are
// applied after the first Ready; everything is reported to cfg.OnEvent,
// events.jsonl and state.json.
//
// ctx is the node's life: when it is cancelled, the node stops as with
// Stop. An error from Start means nothing runs and the data directory is
// released; state.json then says failed, unless the error came before
// the directory was taken.
func Start(ctx context.Context, cfg Config) (*Node, error) {
	p, err := Check(cfg)
	if err != nil {
		return nil, err
	}
	return p.start(ctx)
}

// LockedError is Start's error when another process runs a node on the
// data directory; it is ErrLocked.
type LockedError = instance.LockedError

// ErrLocked is what a *LockedError is.
var ErrLocked = instance.ErrLocked

func (p *Plan) start(ctx context.Context) (_ *Node, err error) {
	cfg := p.cfg
	in, err := instance.Open(p.DataDir)
	if err != nil {
		return nil, err
	}
	if cfg.InheritedLock != nil {
		err = in.AdoptLock(cfg.InheritedLock)
	} else {
		err = in.Lock()
	}
	if err != nil {
		return nil, err
	}
	n := &Node{plan: p, cfg: cfg, in: in, done: make(chan struct{}), changed: make(chan struct{})}
	n.log = cfg.Logger
	if n.log == nil {
		n.log = slog.Default()
	}
	defer func() {
		if err != nil {
			n.release()
		}
	}()
	if err := in.WritePID(); err != nil {
		return nil, err
	}
	// A parent that took the lock for us started the list of events it
	// follows; otherwise this start begins a new one.
	if n.events, err = in.OpenEvents(cfg.InheritedLock == nil); err != nil {
		return nil, err
	}
	if n.k3sLog, err = instance.OpenLog(in.K3sLog()); err != nil {
		return nil, err
	}

	start := time.Now()
	n.state = State{
		Phase: PhaseSeeding, PhaseSince: start, DataDir: in.Dir, NodeName: p.NodeName, Role: p.Role,
		K3s: p.K3s, Kubeconfig: p.Kubeconfig, K3sDataDir: p.K3sDataDir, PauseImage: p.PauseImage,
		StartedAt: start, SupervisorPID: os.Getpid(),
	}
	// After the lock: a start that fails here says why in state.json.
	if n.claims, err = claim(cfg.RunDir, in.Dir, p.NodeName); err != nil {
		return nil, n.fail(err)
	}
	n.log.Info("starting", "data-dir", in.Dir, "k3s", p.K3s, "role", p.Role, "node", p.NodeName, "profile", cfg.Profile.Name, "pid", os.Getpid())
	n.phase(PhaseSeeding, "", "")
	// Seeded once per start; every incarnation of k3s runs on this tree.
	if n.seed, err = bootstrap.Seed(ctx, in.Root(), cfg.Profile, bootstrap.SeedOptions{}); err != nil {
		return nil, n.fail(fmt.Errorf("seed %s: %w", in.Root(), err))
	}
	if err := p.k3s.WriteFiles(); err != nil {
		return nil, n.fail(err)
	}
	// Before k3s starts: k3s imports the archives, and checks overlay
	// mounts itself (stopping when they fail), before the kubelet runs.
	if err := n.stageImages(); err != nil {
		return nil, n.fail(err)
	}
	n.chooseSnapshotter()
	n.probePodNetwork()
	n.log.Debug("k3s command", "path", p.K3s, "args", p.Argv)
	rep := n.seed
	n.phase(PhaseStarting, fmt.Sprintf("%d created, %d unchanged, %d kept", rep.Count(bootstrap.Created), rep.Count(bootstrap.Unchanged), rep.Count(bootstrap.Kept)), "")

	nctx, cancel := context.WithCancel(ctx)
	n.cancel = cancel
	go n.run(nctx)
	return n, nil
}

// run supervises k3s until ctx ends or the supervisor gives up, then
// releases everything.
func (n *Node) run(ctx context.Context) {
	defer close(n.done)
	defer n.release()
	defer n.cancel()
	healthCh := make(chan health.Status, 16)
	wctx, stopWatch := context.WithCancel(ctx)
	defer stopWatch()
	n.mu.Lock()
	n.watchCtx = wctx
	n.mu.Unlock()
	n.wg.Add(2)
	go func() {
		defer n.wg.Done()
		n.watch(wctx, n.plan.k3s.WatchKubeconfig(), healthCh)
	}()
	go func() {
		defer n.wg.Done()
		n.refreshCounters(wctx)
	}()

	cfg := n.cfg
	var excuse func(context.Context, health.Status) (string, bool)
	if n.plan.Role == RoleAgent {
		// A server's API server is its own k3s: unreachable, it is
		// unhealthy. An agent's is another machine's (see excuse).
		excuse = n.excuse
	}
	// The log is appended to: an incarnation's output starts at its
	// present end.
	markLog := func() {
		if fi, err := n.k3sLog.Stat(); err == nil {
			n.mu.Lock()
			n.logFrom = fi.Size()
			n.mu.Unlock()
		}
	}
	started := func(proc *bootstrap.Process, err error) (*bootstrap.Process, error) {
		if err == nil {
			n.mu.Lock()
			n.cur = proc
			n.mu.Unlock()
		}
		return proc, err
	}
	err := bootstrap.Supervise(ctx, bootstrap.SuperviseConfig{
		Start: func(ctx context.Context) (*bootstrap.Process, error) {
			markLog()
			// KeepShims: a restart of k3s keeps containerd's shims, and
			// so the pods' containers, as native k3s does; the next k3s
			// runs in the same trace and on the same virtual kernel
			// (the pods' cgroups), and its containerd reconnects to them.
			return started(bootstrap.Launch(ctx, bootstrap.LaunchConfig{
				Profile: cfg.Profile, Root: n.seed.Root, Seeded: &n.seed,
				Path: n.plan.K3s, Args: n.plan.Argv,
				Stdout: n.k3sLog, Stderr: n.k3sLog,
				Logger: n.log, Setpgid: true,
				OnFault:   n.onFault,
				KeepShims: true,
			}))
		},
		Respawn: func(ctx context.Context, prev *bootstrap.Process) (*bootstrap.Process, error) {
			markLog()
			return started(prev.Respawn(ctx))
		},
		Health:        healthCh,
		StartGrace:    cfg.StartGrace,
		NotReadyGrace: cfg.NotReadyGrace,
		Excuse:        excuse,
		StopTimeout:   cfg.StopTimeout,
		MaxRestarts:   cfg.MaxRestarts,
		OnEvent:       n.superviseEvent,
		Logger:        n.log,
	})
	stopWatch()
	n.wg.Wait()
	n.mu.Lock()
	if n.fault != nil && err == nil {
		err = n.fault
	}
	n.mu.Unlock()
	if err != nil {
		n.mu.Lock()
		last := n.lastLog
		n.mu.Unlock()
		if len(last) > 0 {
			// The one line a script sees says why k3s died.
			err = fmt.Errorf("%w; k3s's log says: %s (all of it: %s)", err, last[0], n.in.K3sLog())
		}
		n.err = n.fail(err)
		return
	}
	n.phase(PhaseStopped, "", "")
	n.log.Info("stopped", "data-dir", n.in.Dir)
}

// onFault is called by the tracer when calls start failing for good (the
// fake kernel's tree was moved or deleted under k3s): a k3s that goes on
// would only see its kernel files vanish, and a restart would not bring
// them back, so the node stops k3s and ends with the reason. It runs on
// the tracer's thread: it only records and cancels.
func (n *Node) onFault(f interceptor.Fault) {
	n.mu.Lock()
	if n.fault == nil {
		n.fault = fmt.Errorf("the fake kernel's tree %s was moved or deleted while k3s ran (%v): k3s stopped; run nodeboot up again to seed it anew", n.seed.Root, f)
	}
	n.mu.Unlock()
	n.log.Error("the fake kernel's tree is gone; stopping k3s", "fault", f.String(), "tree", n.seed.Root)
	n.cancel()
}

// release closes the files and gives the data directory up: PID file,
// then lock.
func (n *Node) release() {
	if n.events != nil {
		n.events.Close()
	}
	if n.k3sLog != nil {
		n.k3sLog.Close()
	}
	n.claims.Release()
	n.in.RemovePID()
	n.in.Unlock()
}

// ErrClaimed is Start's error when another node on this machine runs with
// this node's name, in its network namespace, or with its /run/k3s (a
// *ClaimError says which).
var ErrClaimed = instance.ErrClaimed

// ClaimError is ErrClaimed with the other node's data dir and PID.
type ClaimError = instance.ClaimError

// claim takes the node's machine-wide claims (Config.RunDir).
func claim(runDir, dataDir, nodeName string) (*instance.Claims, error) {
	if runDir == "" {
		runDir = instance.DefaultRunDir
	}
	ns, err := instance.NetNSKey()
	if err != nil {
		return nil, err
	}
	fs, err := instance.K3sRunDirKey()
	if err != nil {
		return nil, err
	}
	return instance.Claim(runDir, dataDir, instance.NodeNameKey(nodeName), ns, fs)
}

// Stop stops the node: SIGTERM to every process of k3s's traced tree,
// SIGKILL to all after Config.StopTimeout; then the readiness watcher
// and the applier end, and the data directory is released. It returns
// once all that is done, with nil, or with the error the node had
// already ended with (it gave up); or with ctx's error if ctx ends first
// (the node still stops).
func (n *Node) Stop(ctx context.Context) error {
	n.cancel()
	select {
	case <-n.done:
		return n.err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Wait waits until the node has ended (Stop, its context, or giving up)
// and returns nil, or the error it gave up with.
func (n *Node) Wait() error {
	<-n.done
	return n.err
}

// Done is closed when the node has ended and released its data directory.
func (n *Node) Done() <-chan struct{} { return n.done }

// Status returns the node's state now (a copy: it does not change).
func (n *Node) Status() State {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.state.clone()
}

// Plan returns what the node runs.
func (n *Node) Plan() Plan { return *n.plan }

// WaitFor waits until the node is at phase or beyond in bringing up, and
// returns its state then. phase is PhaseAPIReachable, PhaseRegistered,
// PhaseNodeReady (Ready, as this k3s's kubelet reports it) or PhaseReady
// (Ready, and the manifests applied when there are any:
// PhaseManifestsApplied means the same). The condition is a level, not an
// edge: after a restart the node has to get there again. Errors:
//
//   - ErrManifestsFailed when waiting for PhaseReady and applying the
//     manifests failed;
//   - an error with the node's last error when it gave up;
//   - ErrStopped when it stopped first;
//   - ctx.Err() when ctx ends first.
func (n *Node) WaitFor(ctx context.Context, phase Phase) (State, error) {
	var reached func(Phase) bool
	switch phase {
	case PhaseAPIReachable, PhaseRegistered:
		reached = func(p Phase) bool { return p.rank() >= phase.rank() }
	case PhaseNodeReady:
		reached = Phase.NodeReady
	case PhaseReady, PhaseManifestsApplied:
		phase, reached = PhaseReady, Phase.Done
	default:
		return n.Status(), fmt.Errorf("wait for %q: not a phase of bringing the node up; want %s, %s, %s or %s",
			phase, PhaseAPIReachable, PhaseRegistered, PhaseNodeReady, PhaseReady)
	}
	for {
		n.mu.Lock()
		st, changed := n.state.clone(), n.changed
		n.mu.Unlock()
		switch {
		case reached(st.Phase):
			return st, nil
		case st.Phase == PhaseManifestsFailed && phase == PhaseReady:
			return st, fmt.Errorf("%w: %s", ErrManifestsFailed, st.LastError)
		case st.Phase == PhaseFailed:
			return st, fmt.Errorf("the node gave up before %s: %s", phase, st.LastError)
		case st.Phase == PhaseStopping || st.Phase == PhaseStopped:
			return st, ErrStopped
		}
		select {
		case <-changed:
		case <-n.done:
			// The last event is in: one more look decides.
			select {
			case <-changed:
				continue
			default:
			}
			if n.err != nil {
				return n.Status(), fmt.Errorf("the node gave up before %s: %w", phase, n.err)
			}
			return n.Status(), ErrStopped
		case <-ctx.Done():
			return st, ctx.Err()
		}
	}
}
