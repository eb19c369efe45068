package node

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/nodeboot/nodeboot/bootstrap"
	"github.com/nodeboot/nodeboot/health"
	"github.com/nodeboot/nodeboot/interceptor"
	"github.com/nodeboot/nodeboot/manifests"
)

// counterPeriod is how often state.json gets fresh interceptor counters.
const counterPeriod = 5 * time.Second

// kubeconfigPoll is how often the watcher looks for k3s's kubeconfig.
const kubeconfigPoll = time.Second

// fail records err as the end of the node and returns it.
func (n *Node) fail(err error) error {
	n.mu.Lock()
	n.state.LastError = err.Error()
	n.mu.Unlock()
	n.phase(PhaseFailed, err.Error(), "")
	n.log.Error("giving up", "err", err)
	return err
}

// phase records that ph was reached.
func (n *Node) phase(ph Phase, msg, reason string) {
	n.emit(Event{Kind: KindPhase, Phase: ph, Message: msg, Reason: reason})
}

// emit records e: the state (a phase event sets the phase; update, when
// set, changes it first), state.json, events.jsonl and OnEvent, in that
// order, one event at a time.
func (n *Node) emit(e Event, update ...func(*State)) {
	if e.Time.IsZero() {
		e.Time = time.Now()
	}
	n.evMu.Lock()
	defer n.evMu.Unlock()
	n.mu.Lock()
	for _, u := range update {
		u(&n.state)
	}
	if e.Kind == KindPhase {
		n.state.Phase, n.state.PhaseSince = e.Phase, e.Time
	}
	n.writeState()
	close(n.changed)
	n.changed = make(chan struct{})
	n.mu.Unlock()
	if err := n.events.Append(e); err != nil {
		n.log.Warn("record event", "err", err)
	}
	if n.cfg.OnEvent != nil {
		n.cfg.OnEvent(e)
	}
}

// writeState rewrites state.json. Precondition: n.mu held.
func (n *Node) writeState() {
	n.state.UpdatedAt = time.Now()
	if err := n.in.WriteState(&n.state); err != nil {
		n.log.Warn("record state", "err", err)
	}
}

// superviseEvent records an event of bootstrap.Supervise.
func (n *Node) superviseEvent(e bootstrap.Event) {
	if e.Kind == bootstrap.EventHealth {
		return // the watcher's own callback records health
	}
	ev := Event{Time: e.Time, Kind: EventKind(e.Kind), PID: e.PID, Restarts: e.Restarts, Reason: e.Reason}
	if e.Delay > 0 {
		ev.Delay = e.Delay.Round(time.Millisecond).String()
	}
	switch e.Kind {
	case bootstrap.EventExited, bootstrap.EventStopped:
		// The incarnation has ended and its output is all in the log.
		n.mu.Lock()
		from := n.logFrom
		n.mu.Unlock()
		lines := logTail(n.in.K3sLog(), from)
		n.mu.Lock()
		n.lastLog = lines
		n.mu.Unlock()
		if e.Kind == bootstrap.EventExited {
			ev.Log = lines
		}
	case bootstrap.EventGaveUp:
		n.mu.Lock()
		ev.Log = n.lastLog
		n.mu.Unlock()
	}
	n.emit(ev, func(s *State) {
		s.Restarts = e.Restarts
		if e.Stats != nil {
			s.Interceptor = counters(*e.Stats)
		}
		switch e.Kind {
		case bootstrap.EventStarted:
			s.K3sPID = e.PID
			if s.Phase == PhaseRestarting {
				s.Phase, s.PhaseSince = PhaseStarting, e.Time
			}
			// Under n.mu (emit holds it). e.Time is just after k3s's
			// exec; its kubelet renews the Lease a good while later.
			n.startedAt = e.Time
			n.heard = n.lastRenew.After(n.startedAt)
		case bootstrap.EventExited, bootstrap.EventStopped:
			s.K3sPID = 0
			n.cur = nil
		case bootstrap.EventRestarting:
			s.AddRestart(Restart{Time: e.Time, Reason: e.Reason, Delay: ev.Delay})
			s.Phase, s.PhaseSince = PhaseRestarting, e.Time
		case bootstrap.EventStopping:
			if e.Reason == "shutdown" {
				s.Phase, s.PhaseSince = PhaseStopping, e.Time
			}
		case bootstrap.EventGaveUp:
			s.LastError = e.Reason
		}
	})
	if e.Kind == bootstrap.EventStarted {
		// A renewal seen between the start and this event has already
		// proved the new kubelet: nothing else may come to move the phase.
		n.advanceIfHeard()
	}
}

// advanceIfHeard moves the phase on for the last health when the running
// incarnation's kubelet has been heard from.
func (n *Node) advanceIfHeard() {
	n.mu.Lock()
	heard, lh, ctx := n.heard, n.lastHealth, n.watchCtx
	n.mu.Unlock()
	if heard && lh != nil && ctx != nil {
		n.advance(ctx, *lh)
	}
}

// onRenew notes a renewal of the node's Lease. One stamped after the
// running incarnation started proves its kubelet alive: the phase may then
// pass node-registered. The watcher reports health changes only, so after
// a quick restart (the node never left Ready) this is what moves the phase
// on again: the new kubelet renews the Lease it finds as it starts.
func (n *Node) onRenew(at time.Time) {
	n.mu.Lock()
	if at.After(n.lastRenew) {
		n.lastRenew = at
	}
	first := !n.heard && !n.startedAt.IsZero() && at.After(n.startedAt)
	if first {
		n.heard = true
	}
	n.mu.Unlock()
	if first {
		n.log.Debug("the kubelet of this start renewed the node's lease", "renewTime", at)
	}
	// Every renewal, not only the first: advance is cheap and idempotent,
	// and whatever set heard (this, a heartbeat, the started event) may
	// have found no Ready health to advance with then.
	n.advanceIfHeard()
}

// counters summarises the interceptor's counters.
func counters(st interceptor.Stats) *Counters {
	c := &Counters{Mode: st.Mode.String(), Stops: st.Stops, Tracees: st.Tracees}
	for _, s := range st.Syscalls {
		c.Rewrites += s.Rewrites
		c.Passes += s.Passes
	}
	return c
}

// refreshCounters copies the running incarnation's counters into
// state.json every counterPeriod.
func (n *Node) refreshCounters(ctx context.Context) {
	t := time.NewTicker(counterPeriod)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		n.mu.Lock()
		if n.cur != nil {
			n.state.Interceptor = counters(n.cur.Stats())
			n.writeState()
		}
		n.mu.Unlock()
	}
}

// watch reports the node's health to out (Supervise) and to the state until
// ctx ends. Until the kubeconfig exists, the API counts as unreachable.
func (n *Node) watch(ctx context.Context, kubeconfig string, out chan<- health.Status) {
	report := func(st health.Status) {
		n.onHealth(ctx, st)
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
			n.log.Debug("kubeconfig not usable yet", "path", kubeconfig, "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(kubeconfigPoll):
		}
	}
	if n.cfg.Dial != nil {
		restCfg.Dial = n.cfg.Dial
	}
	n.mu.Lock()
	n.restCfg = restCfg
	n.mu.Unlock()
	n.log.Debug("watching the node", "node", n.plan.NodeName, "kubeconfig", kubeconfig)
	// Watch builds its REST clients from restCfg; an unusable config (bad
	// TLS files, say) is its immediate error.
	err := health.Watch(ctx, health.Config{REST: restCfg, NodeName: n.plan.NodeName, Logger: n.log, OnRenew: n.onRenew}, report)
	if err != nil && !errors.Is(err, context.Canceled) {
		n.emit(Event{Kind: KindError, Message: fmt.Sprintf("readiness watcher for %s: %v", kubeconfig, err)})
		n.log.Warn("readiness watcher ended", "err", err)
	}
}

// onHealth records a health report and moves the phase on.
func (n *Node) onHealth(ctx context.Context, st health.Status) {
	h := toHealth(st)
	n.emit(Event{Time: time.Now(), Kind: KindHealth, Health: h}, func(s *State) { s.Health = h })
	n.mu.Lock()
	n.lastHealth = &st
	n.mu.Unlock()
	n.advance(ctx, st)
}

// advance moves the phase on for health st: the phase machine. One
// decision at a time (advMu), so that two reports never both take the
// node to the same phase.
func (n *Node) advance(ctx context.Context, st health.Status) {
	n.advMu.Lock()
	defer n.advMu.Unlock()
	n.mu.Lock()
	cur := n.state.Phase
	applied, wantApply := n.applied, len(n.cfg.Manifests) > 0 && !n.applyStarted
	// A kubelet posts the Node's status as it starts: a Ready condition
	// with a heartbeat since the start is this kubelet's. (On a new node
	// that comes first: kubelet creates the Lease only at its second
	// renew interval, the Node's owner reference needing the Node.)
	if !n.heard && !n.startedAt.IsZero() && heartbeatSince(st, n.startedAt) {
		n.heard = true
	}
	heard := n.heard
	n.mu.Unlock()
	rank := cur.rank()
	if st.State != health.Unreachable && rank < PhaseAPIReachable.rank() {
		n.phase(PhaseAPIReachable, "", "")
	}
	if (st.State == health.NotReady || st.State == health.Ready || st.State == health.Stale) && rank < PhaseRegistered.rank() {
		n.phase(PhaseRegistered, "", "")
	}
	if st.State != health.Ready || rank >= PhaseNodeReady.rank() {
		return
	}
	if !heard {
		// Ready, but maybe the previous kubelet's: wait for a heartbeat
		// of this one (onRenew advances then).
		return
	}
	switch {
	case len(n.cfg.Manifests) == 0:
		n.phase(PhaseReady, "", "")
	case applied:
		n.phase(PhaseManifestsApplied, "", "")
	case !wantApply:
		// Applying (or failed, LastError says why) since an earlier Ready.
		n.phase(PhaseNodeReady, "", "")
	default:
		n.phase(PhaseNodeReady, "", "")
		n.mu.Lock()
		n.applyStarted = true
		n.mu.Unlock()
		n.wg.Add(1)
		go func() {
			defer n.wg.Done()
			n.apply(ctx)
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

// apply applies the manifests once, after the first Ready.
func (n *Node) apply(ctx context.Context) {
	objs := n.cfg.Manifests
	n.mu.Lock()
	restCfg := n.restCfg
	n.mu.Unlock()
	cfg := manifests.ApplyConfig{
		REST: restCfg, FieldManager: "nodeboot", Timeout: n.cfg.ManifestTimeout, Logger: n.log,
		OnProgress: func(s string) { n.emit(Event{Kind: KindManifests, Message: s}) },
	}
	var err error
	if n.cfg.ManifestsVia == ManifestsK3s {
		dir := n.plan.k3s.AutoDeployDir()
		err = manifests.WriteAutoDeploy(dir, objs)
		if err == nil {
			n.log.Info("manifests written for k3s's deploy controller; waiting until it has applied them", "dir", dir)
			// "Applied" means in the cluster and ready, as with nodeboot's
			// own apply: k3s picks the files up within about 15 s.
			err = manifests.Await(ctx, cfg, objs, func(o manifests.Object) string {
				file := manifests.AutoDeployName(o)
				addon, _, _ := strings.Cut(file, ".")
				return fmt.Sprintf("not created yet; k3s applies it from %s (kubectl -n kube-system describe addon %s shows how that went)",
					filepath.Join(dir, file), addon)
			})
		}
	} else {
		err = manifests.Apply(ctx, cfg, objs)
	}
	if err == nil && n.cfg.Verify != nil && ctx.Err() == nil {
		var line string
		vctx, cancel := context.WithTimeout(ctx, n.cfg.ManifestTimeout)
		line, err = n.cfg.Verify(vctx, restCfg)
		cancel()
		if err == nil {
			n.emit(Event{Kind: KindManifests, Message: line})
			n.log.Info("manifests verified", "result", line)
		}
	}
	if ctx.Err() != nil {
		return // stopping
	}
	if err != nil {
		msg := err.Error()
		n.emit(Event{Kind: KindPhase, Phase: PhaseManifestsFailed, Message: msg}, func(s *State) { s.LastError = "apply manifests: " + msg })
		n.log.Error("applying the manifests failed; the node keeps running", "err", err)
		return
	}
	n.mu.Lock()
	n.applied = true
	n.mu.Unlock()
	n.phase(PhaseManifestsApplied, fmt.Sprintf("%d objects", len(objs)), "")
}

// toHealth flattens a health.Status for state.json.
func toHealth(st health.Status) *Health {
	h := &Health{State: st.State, Reason: st.Reason, Message: st.Message, Since: st.Since}
	for _, c := range st.Conditions {
		h.Conditions = append(h.Conditions, Condition{
			Type: string(c.Type), Status: string(c.Status), Reason: c.Reason, Message: c.Message, LastHeartbeat: c.LastHeartbeatTime.Time,
		})
	}
	return h
}
