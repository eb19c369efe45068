package health

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"sync"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/client-go/tools/cache"
	"k8s.io/utils/clock"
)

// leaseNamespace holds one Lease per node, renewed by its kubelet.
const leaseNamespace = "kube-node-lease"

// watcher is the state of one Watch call. Everything but the informers'
// bookkeeping (informers.mu) is owned by the run goroutine.
type watcher struct {
	cfg      Config
	clk      clock.WithTickerAndDelayedExecution
	log      *slog.Logger
	cl       *clients
	onChange func(Status)

	// kick wakes run after an informer event; capacity 1, so events that
	// arrive while run is busy coalesce into one wake-up.
	kick chan struct{}

	// Reachability, from the probe results.
	probed    bool
	reachable bool
	fails     int
	probeErr  error

	inf       *informers // non-nil while the API counts as reachable
	lastConds []corev1.NodeCondition
	last      *Status // last reported
}

func newWatcher(cfg Config, cl *clients, onChange func(Status)) *watcher {
	return &watcher{cfg: cfg, clk: cfg.Clock, log: cfg.Logger.With("node", cfg.NodeName), cl: cl, onChange: onChange, kick: make(chan struct{}, 1)}
}

func (w *watcher) wake() {
	select {
	case w.kick <- struct{}{}:
	default:
	}
}

// run is Watch's loop: it waits for a probe result, an informer event or
// the Lease deadline, derives the state and reports it when it is news.
// Every wait is on a channel or a timer, so it cannot spin.
func (w *watcher) run(parent context.Context) error {
	ctx, cancel := context.WithCancel(parent)
	var wg sync.WaitGroup
	defer func() {
		cancel()
		w.stopInformers()
		wg.Wait()
	}()
	probes := make(chan error)
	wg.Go(func() { w.probeLoop(ctx, probes) })

	staleTimer := w.clk.NewTimer(time.Hour)
	staleTimer.Stop()
	defer staleTimer.Stop()
	for {
		select {
		case <-ctx.Done():
			return parent.Err()
		case err := <-probes:
			w.observeProbe(ctx, err)
		case <-w.kick:
		case <-staleTimer.C():
		}
		now := w.clk.Now()
		obs := w.observe(now)
		st, known := derive(obs)
		if obs.ProbeErr == nil && obs.NodeSynced {
			w.lastConds = st.Conditions
		}
		if known && reportable(w.last, st) {
			st.Since = now
			if w.last != nil && w.last.State == st.State {
				st.Since = w.last.Since
			}
			w.log.Debug("node health", "state", st.State, "reason", st.Reason, "message", st.Message)
			w.last = &st
			out := st // onChange may keep or change its copy
			out.Conditions = slices.Clone(st.Conditions)
			w.onChange(out)
		}
		// Wake up when the Lease would expire, if nothing else happens
		// first. A renewal moves the deadline; the timer is re-armed on
		// every pass, so it only ever fires for a deadline in the future.
		staleTimer.Stop()
		if known && st.State == Ready {
			staleTimer.Reset(obs.Grace - obs.LeaseAge + time.Millisecond)
		}
	}
}

// observeProbe folds a probe result into the reachability verdict and
// starts or stops the informers accordingly.
func (w *watcher) observeProbe(ctx context.Context, err error) {
	if err == nil {
		if w.probed && !w.reachable {
			w.log.Info("API server reachable again")
		}
		w.probed, w.reachable, w.fails, w.probeErr = true, true, 0, nil
		if w.inf == nil {
			w.inf = startInformers(ctx, w.cfg, w.cl, w.log, w.wake)
		}
		return
	}
	w.fails++
	w.probeErr = err
	w.log.Debug("API probe failed", "consecutive", w.fails, "err", err)
	if w.reachable && w.fails < unreachableAfter {
		w.probed = true
		return
	}
	w.probed, w.reachable = true, false
	// While the API is away the informers would only retry (with backoff)
	// and their caches would go stale; new ones list afresh when it is
	// back, which also tells us exactly from when the Lease view is fresh.
	w.stopInformers()
}

func (w *watcher) stopInformers() {
	if w.inf != nil {
		w.inf.stop()
		w.inf = nil
	}
}

// observe takes the current observation.
func (w *watcher) observe(now time.Time) observation {
	o := observation{Grace: w.cfg.LeaseGrace, LastConditions: w.lastConds}
	if !w.probed {
		return o // derive: not known (NodeSynced false, no NodeErr)
	}
	if !w.reachable {
		o.ProbeErr = w.probeErr
		return o
	}
	inf := w.inf
	o.NodeSynced = inf.node.HasSynced()
	if obj, ok, _ := inf.node.GetStore().GetByKey(w.cfg.NodeName); ok {
		o.Node, _ = obj.(*corev1.Node)
	}
	inf.mu.Lock()
	o.LeasePresent = inf.leasePresent
	o.NodeErr, o.LeaseErr = inf.nodeErr, inf.leaseErr
	seen := inf.leaseSeen
	inf.mu.Unlock()
	// Monotonic clock readings on both sides: wall-clock jumps on this
	// machine and kubelet's clock do not enter into it.
	o.LeaseAge = now.Sub(seen)
	return o
}

// probeLoop sends the result of GET /readyz to out every ProbeInterval,
// the first one at once, until ctx is done.
func (w *watcher) probeLoop(ctx context.Context, out chan<- error) {
	t := w.clk.NewTicker(w.cfg.ProbeInterval)
	defer t.Stop()
	timeout := probeTimeout(w.cfg.ProbeInterval)
	timedOut := fmt.Errorf("GET /readyz: no answer within %s: %w", timeout, context.DeadlineExceeded)
	for {
		// The timeout is the clock's, not context.WithTimeout's, so that
		// a fake clock decides it too.
		pctx, cancel := context.WithCancelCause(ctx)
		timer := w.clk.AfterFunc(timeout, func() { cancel(timedOut) })
		// No retries: a failed probe is the answer, and the next one
		// comes at the next tick.
		// AbsPath replaces the client's /api/v1 prefix (keeping any path
		// of the server URL).
		err := w.cl.core.Get().AbsPath("/readyz").MaxRetries(0).Do(pctx).Error()
		timer.Stop()
		if err != nil && context.Cause(pctx) == timedOut {
			err = timedOut
		}
		cancel(nil)
		if ctx.Err() != nil {
			return
		}
		select {
		case out <- err:
		case <-ctx.Done():
			return
		}
		select {
		case <-t.C():
		case <-ctx.Done():
			return
		}
	}
}

// informers are the Node informer and the Lease poller of one reachable
// period of the API.
//
// The Lease is read with GET, not watched: a node's own credentials (an
// agent has no others: k3s agent's kubelet.kubeconfig is
// system:node:NAME) may get, create and update their Lease, but not list
// or watch it, not even by name (the Node authorizer's authorizeLease),
// and an informer would fail Forbidden for ever, the node turning Stale
// after LeaseGrace and its kubelet restarted for nothing. The Node, which
// a node may list and watch by name, keeps its informer.
type informers struct {
	clk    clock.WithTickerAndDelayedExecution
	node   cache.SharedIndexInformer
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu sync.Mutex
	// leaseSeen is when we last saw the Lease renewed, or when these
	// informers started if we have not.
	leaseSeen time.Time
	// leaseGot: a GET of the Lease has answered (found or not);
	// leasePresent: the last one found it; leaseRenew is the renewTime
	// last seen.
	leaseGot, leasePresent bool
	leaseRenew             *metav1.MicroTime
	nodeErr, leaseErr      error
}

// startInformers starts a Node informer on the one object (field selector
// metadata.name) and the Lease poller (a GET every ProbeInterval), calling
// wake on every event.
func startInformers(parent context.Context, cfg Config, cl *clients, log *slog.Logger, wake func()) *informers {
	ctx, cancel := context.WithCancel(parent)
	byName := fields.OneTermEqualSelector("metadata.name", cfg.NodeName)
	inf := &informers{
		clk: cfg.Clock,
		node: cache.NewSharedIndexInformer(
			cache.NewListWatchFromClient(cl.core, "nodes", metav1.NamespaceAll, byName),
			&corev1.Node{}, 0, cache.Indexers{}),
		cancel:    cancel,
		leaseSeen: cfg.Clock.Now(),
	}
	// The reflector retries a failed list or watch after a backoff of its
	// own (client-go tools/cache/reflector.go: 800ms doubling to 30s,
	// jitter, reset after 2m of health), so an error here never spins. The
	// handler replaces the default one, which only logs through klog.
	_ = inf.node.SetWatchErrorHandlerWithContext(func(_ context.Context, _ *cache.Reflector, err error) {
		if errors.Is(err, io.EOF) || apierrors.IsResourceExpired(err) || apierrors.IsGone(err) {
			return // a watch that ended normally, or a relist: no problem
		}
		log.Debug("list/watch failed; the reflector retries with backoff", "object", "node", "err", err)
		inf.mu.Lock()
		inf.nodeErr = err
		inf.mu.Unlock()
		wake()
	})
	_, _ = inf.node.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc: func(any) { inf.clearErr(&inf.nodeErr); wake() },
		UpdateFunc: func(_, _ any) {
			inf.clearErr(&inf.nodeErr)
			wake()
		},
		DeleteFunc: func(any) { wake() },
	})
	inf.wg.Go(func() { inf.node.RunWithContext(ctx) })
	inf.wg.Go(func() { inf.pollLease(ctx, cfg, cl, log, wake) })
	// An empty first list (no Node yet) brings no event: wake run once the
	// store has synced so that NodeNotRegistered is reported at once.
	inf.wg.Go(func() {
		select {
		case <-inf.node.HasSyncedChecker().Done():
			wake()
		case <-ctx.Done():
		}
	})
	log.Debug("watching node and lease")
	return inf
}

// pollLease GETs the node's Lease at once and then every ProbeInterval
// until ctx is done. A GET that fails is the answer until the next one;
// the interval is the only retry, so it never spins.
func (inf *informers) pollLease(ctx context.Context, cfg Config, cl *clients, log *slog.Logger, wake func()) {
	t := inf.clk.NewTicker(cfg.ProbeInterval)
	defer t.Stop()
	timeout := probeTimeout(cfg.ProbeInterval)
	timedOut := fmt.Errorf("GET lease: no answer within %s: %w", timeout, context.DeadlineExceeded)
	for {
		// The clock's timeout, as the probe's: a fake clock decides it.
		gctx, cancel := context.WithCancelCause(ctx)
		timer := inf.clk.AfterFunc(timeout, func() { cancel(timedOut) })
		var l coordinationv1.Lease
		err := cl.coordination.Get().Namespace(leaseNamespace).Resource("leases").Name(cfg.NodeName).
			MaxRetries(0).Do(gctx).Into(&l)
		timer.Stop()
		if err != nil && context.Cause(gctx) == timedOut {
			err = timedOut
		}
		cancel(nil)
		if ctx.Err() != nil {
			return
		}
		if inf.leaseAnswer(&l, err, log, cfg.OnRenew) {
			wake()
		}
		select {
		case <-t.C():
		case <-ctx.Done():
			return
		}
	}
}

// leaseAnswer folds one GET of the Lease into the state and reports
// whether anything changed. The first Lease found counts as a renewal
// seen (the count of staleness starts with the informers anyway), as does
// every change of its renewTime; each calls onRenew.
func (inf *informers) leaseAnswer(l *coordinationv1.Lease, err error, log *slog.Logger, onRenew func(time.Time)) bool {
	notFound := apierrors.IsNotFound(err)
	if err != nil && !notFound {
		log.Debug("get lease failed; trying again at the next interval", "err", err)
		inf.mu.Lock()
		defer inf.mu.Unlock()
		changed := inf.leaseErr == nil || inf.leaseErr.Error() != err.Error()
		inf.leaseErr = err
		return changed
	}
	inf.mu.Lock()
	first := !inf.leaseGot
	wasPresent, hadErr := inf.leasePresent, inf.leaseErr != nil
	inf.leaseGot, inf.leaseErr = true, nil
	if notFound {
		inf.leasePresent, inf.leaseRenew = false, nil
		inf.mu.Unlock()
		return first || wasPresent || hadErr
	}
	renewed := !wasPresent || !sameRenewTime(inf.leaseRenew, l.Spec.RenewTime)
	inf.leasePresent, inf.leaseRenew = true, l.Spec.RenewTime
	if renewed {
		inf.leaseSeen = inf.clk.Now()
	}
	inf.mu.Unlock()
	if renewed && onRenew != nil && l.Spec.RenewTime != nil {
		onRenew(l.Spec.RenewTime.Time)
	}
	return renewed || first || hadErr
}

// sameRenewTime says whether two renewTimes of a Lease are the same
// renewal.
func sameRenewTime(a, b *metav1.MicroTime) bool {
	if (a == nil) != (b == nil) {
		return false
	}
	return a == nil || a.Equal(b)
}

func (inf *informers) clearErr(e *error) {
	inf.mu.Lock()
	*e = nil
	inf.mu.Unlock()
}

// stop stops the informer and the poller and waits for their goroutines.
func (inf *informers) stop() {
	inf.cancel()
	inf.wg.Wait()
}
