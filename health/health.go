package health

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/runtime/serializer"
	"k8s.io/client-go/rest"
	"k8s.io/utils/clock"
)

// State is the node's health as the watcher sees it.
type State string

const (
	// Unreachable: the API server cannot be reached (or no kubeconfig
	// exists yet), or it answers but the Node cannot be read (Reason
	// "Forbidden", "Unauthorized").
	Unreachable State = "APIUnreachable"
	// NotRegistered: the API is up, but there is no Node with that name.
	NotRegistered State = "NodeNotRegistered"
	// NotReady: the Node's Ready condition is False or Unknown (Reason and
	// Message are the condition's), or missing.
	NotReady State = "NotReady"
	// Ready: the Ready condition is True and the Lease is being renewed.
	Ready State = "Ready"
	// Stale: the Ready condition is True, but the node's Lease has not been
	// seen renewed for longer than Config.LeaseGrace.
	Stale State = "Stale"
)

// Status is one report of Watch.
type Status struct {
	State State
	// Reason is short and machine-ish: the Ready condition's reason, the
	// class of a probe error ("ConnectionRefused", "Timeout",
	// "Unauthorized", ...), "LeaseExpired" or "LeaseMissing".
	Reason string
	// Message is human text: the condition's message, the error text, or
	// "lease last renewed 52s ago".
	Message string
	// Since is when this State began (a change of Reason within NotReady
	// keeps it).
	Since time.Time
	// Conditions are the node conditions last seen; nil when the node is
	// not registered. While the API is unreachable they are the ones seen
	// before it went away.
	Conditions []corev1.NodeCondition
}

// String renders the status on one line: "Ready", "NotReady
// (KubeletNotReady: container runtime is down)".
func (s Status) String() string {
	var b strings.Builder
	b.WriteString(string(s.State))
	switch {
	case s.Reason != "" && s.Message != "":
		fmt.Fprintf(&b, " (%s: %s)", s.Reason, s.Message)
	case s.Reason != "":
		fmt.Fprintf(&b, " (%s)", s.Reason)
	case s.Message != "":
		fmt.Fprintf(&b, " (%s)", s.Message)
	}
	return b.String()
}

// Config configures Watch.
type Config struct {
	// REST reaches the API server (required): the rest.Config of the
	// kubeconfig (clientcmd.BuildConfigFromFlags). Watch builds its own
	// REST clients for core/v1 and coordination.k8s.io/v1 from it, sharing
	// one HTTP client; the core one also carries the /readyz probe.
	REST *rest.Config
	// NodeName is the Node (and the Lease in kube-node-lease) to watch
	// (required).
	NodeName string
	// LeaseGrace is how long a Ready node's Lease may go without a renewal
	// we see before the node counts as Stale. Default 40s, kubelet's
	// default nodeLeaseDurationSeconds; it must be longer than kubelet's
	// renew interval (a quarter of nodeLeaseDurationSeconds).
	LeaseGrace time.Duration
	// ProbeInterval is the period of the reachability probe (GET /readyz).
	// Default 2s.
	ProbeInterval time.Duration
	// Logger gets debug and info messages; nil discards them.
	Logger *slog.Logger
	// OnRenew, when set, is called with the Lease's spec.renewTime each
	// time the watcher sees a renewal it had not seen (the first GET of
	// the Lease included): the kubelet is alive and reaching the API. It
	// runs on an informer goroutine and must not block. The renew time is
	// the kubelet's clock; a supervisor that runs the kubelet on its own
	// machine can compare it with when it started the kubelet, to tell a
	// new kubelet's heartbeat from a Ready left by the one before.
	OnRenew func(renewTime time.Time)
	// Clock times the probes (their interval and timeout) and the Lease's
	// grace, and stamps Status.Since; nil is the real clock. Tests pass a
	// fake one, so that "one probe per interval" and "Unreachable after
	// one probe timeout" do not depend on how fast the machine schedules
	// the test.
	Clock clock.WithTickerAndDelayedExecution
}

const (
	defaultLeaseGrace    = 40 * time.Second
	defaultProbeInterval = 2 * time.Second
	// unreachableAfter consecutive failed probes make a reachable API
	// Unreachable: one slow answer on a loaded machine is not an outage.
	// Before the first success, one failure is enough.
	unreachableAfter = 2
)

// probeTimeout bounds one /readyz request: twice the interval, kept within
// [1s, 5s], so that a black-holed API is detected within about
// unreachableAfter*5s while a slow one under load still answers.
func probeTimeout(interval time.Duration) time.Duration {
	return min(max(2*interval, time.Second), 5*time.Second)
}

// Watch reports the initial state and then every transition (and changes of
// Reason within NotReady) to onChange, from a single goroutine, until ctx is
// done (returns ctx.Err()). It never busy-loops and survives API restarts:
// the probe keeps running at ProbeInterval, and the informers, stopped while
// the API is unreachable, are started afresh once it answers again.
//
// onChange runs on Watch's own goroutine; while it blocks, nothing new is
// reported. Watch returns a configuration error at once (nil REST,
// empty NodeName, nil onChange); it returns only after every goroutine it
// started has ended.
func Watch(ctx context.Context, cfg Config, onChange func(Status)) error {
	if cfg.REST == nil {
		return errors.New("health: Config.REST is nil: pass the rest.Config built from the kubeconfig (clientcmd.BuildConfigFromFlags)")
	}
	if cfg.NodeName == "" {
		return errors.New("health: Config.NodeName is empty: pass the node name kubelet registers (its --hostname-override or the host name)")
	}
	if onChange == nil {
		return errors.New("health: onChange is nil")
	}
	if cfg.LeaseGrace <= 0 {
		cfg.LeaseGrace = defaultLeaseGrace
	}
	if cfg.ProbeInterval <= 0 {
		cfg.ProbeInterval = defaultProbeInterval
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Clock == nil {
		cfg.Clock = clock.RealClock{}
	}
	cl, err := newClients(cfg.REST)
	if err != nil {
		return err
	}
	w := newWatcher(cfg, cl, onChange)
	return w.run(ctx)
}

// clients are the REST clients of one Watch: core/v1 (Nodes and the
// /readyz probe) and coordination.k8s.io/v1 (Leases).
type clients struct {
	core, coordination rest.Interface
}

// newClients builds the two REST clients on one HTTP client, so that the
// probe and both informers share connections as a clientset's would.
//
// They decode with a scheme holding only the types read here instead of
// client-go's kubernetes/scheme: that package registers every built-in API
// group, and its init alone adds about 12 MB of resident memory to every
// nodeboot process, including the tracer of "nodeboot exec" that never
// talks to an API server (docs/benchmarks.md, "Binary size and start-up").
func newClients(base *rest.Config) (*clients, error) {
	scheme := runtime.NewScheme()
	// Each AddToScheme also registers metav1's WatchEvent, ListOptions and
	// Status for its group version (metav1.AddToGroupVersion).
	for _, add := range []func(*runtime.Scheme) error{corev1.AddToScheme, coordinationv1.AddToScheme} {
		if err := add(scheme); err != nil {
			return nil, fmt.Errorf("health: build the API scheme: %w", err)
		}
	}
	codecs := serializer.NewCodecFactory(scheme).WithoutConversion()
	cfg := rest.CopyConfig(base)
	if cfg.UserAgent == "" {
		cfg.UserAgent = rest.DefaultKubernetesUserAgent()
	}
	hc, err := rest.HTTPClientFor(cfg)
	if err != nil {
		return nil, fmt.Errorf("health: HTTP client for %s: %w", base.Host, err)
	}
	build := func(apiPath string, gv schema.GroupVersion) (rest.Interface, error) {
		c := rest.CopyConfig(cfg)
		c.APIPath, c.GroupVersion, c.NegotiatedSerializer = apiPath, &gv, codecs
		rc, err := rest.RESTClientForConfigAndClient(c, hc)
		if err != nil {
			return nil, fmt.Errorf("health: REST client for %s at %s: %w", gv, base.Host, err)
		}
		return rc, nil
	}
	core, err := build("/api", corev1.SchemeGroupVersion)
	if err != nil {
		return nil, err
	}
	coord, err := build("/apis", coordinationv1.SchemeGroupVersion)
	if err != nil {
		return nil, err
	}
	return &clients{core: core, coordination: coord}, nil
}
