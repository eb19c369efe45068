package manifests

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/cenkalti/backoff/v4"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	utilnet "k8s.io/apimachinery/pkg/util/net"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/rest"
)

// DefaultFieldManager is the server-side apply field manager when
// ApplyConfig.FieldManager is empty.
const DefaultFieldManager = "nodeboot"

// DefaultTimeout bounds Apply when ApplyConfig.Timeout is zero.
const DefaultTimeout = 5 * time.Minute

// ApplyConfig configures Apply.
type ApplyConfig struct {
	// REST reaches the API server (required).
	REST *rest.Config
	// FieldManager owns the applied fields; "" means "nodeboot".
	FieldManager string
	// Timeout bounds the whole of Apply: applying and waiting. 0 means
	// DefaultTimeout.
	Timeout time.Duration
	// Logger gets one debug line per applied object and the API's
	// warnings; nil discards.
	Logger *slog.Logger
	// OnProgress, when set, gets human lines: "applied 5 objects",
	// "waiting for deployment/web (namespace default): 0/1 available". It
	// is never called concurrently.
	OnProgress func(string)
}

var (
	crdGK = schema.GroupKind{Group: "apiextensions.k8s.io", Kind: "CustomResourceDefinition"}
	nsGK  = schema.GroupKind{Kind: "Namespace"}
)

// Apply applies objs with server-side apply and waits until the ones that
// can be ready are, all within cfg.Timeout. Namespaces are applied first,
// then CRDs (waited on until Established), then the rest in order.
//
// A rejected object fails Apply with "FILE doc N (Kind/name): <the API's
// message>", wrapping the API's error (apierrors.IsInvalid and friends
// work on it); the objects before it stay applied. When the timeout passes
// while waiting, the error says what each unfinished object was waiting
// for, and errors.Is(err, context.DeadlineExceeded) holds (a cancelled ctx
// gives context.Canceled instead). A failed Job or Pod, a Deployment past
// its progress deadline or a CRD whose names clash fails Apply at once.
func Apply(ctx context.Context, cfg ApplyConfig, objs []Object) error {
	if cfg.REST == nil {
		return errors.New("apply manifests: no REST config (the kubeconfig of the cluster)")
	}
	if len(objs) == 0 {
		return nil
	}
	a, err := newApplier(cfg)
	if err != nil {
		return fmt.Errorf("apply manifests: %w", err)
	}
	ctx, cancel := context.WithTimeoutCause(ctx, a.cfg.Timeout, &timeoutError{a.cfg.Timeout})
	defer cancel()

	// Namespaces, then CRDs, then the rest; the order within each is kept.
	var nss, crds, rest []Object
	for _, o := range objs {
		if o.Obj == nil {
			return fmt.Errorf("apply manifests: %s doc %d: no object", o.Source, o.Index)
		}
		switch o.Obj.GroupVersionKind().GroupKind() {
		case nsGK:
			nss = append(nss, o)
		case crdGK:
			crds = append(crds, o)
			a.noteCRD(o)
		default:
			rest = append(rest, o)
		}
	}
	first := append(nss, crds...)

	var waits []*waitItem
	applied := 0
	for _, o := range first {
		w, err := a.applyRetrying(ctx, o)
		if err != nil {
			return a.fail(ctx, err)
		}
		applied++
		if w != nil {
			waits = append(waits, w)
		}
	}
	// The custom resources below need their CRDs served first.
	if len(waits) > 0 && len(rest) > 0 {
		if err := a.waitAll(ctx, waits); err != nil {
			return err
		}
		waits = nil
	}
	for _, o := range rest {
		w, err := a.applyRetrying(ctx, o)
		if err != nil {
			return a.fail(ctx, err)
		}
		applied++
		if w != nil {
			waits = append(waits, w)
		}
	}
	a.progress(fmt.Sprintf("applied %d object%s", applied, plural(applied)))
	if err := a.waitAll(ctx, waits); err != nil {
		return err
	}
	return nil
}

// newApplier fills in cfg's defaults and makes the clients. It notes the
// kinds that the CRDs among objs define.
func newApplier(cfg ApplyConfig) (*applier, error) {
	a := &applier{cfg: cfg, crdKinds: map[schema.GroupKind]bool{}}
	if a.cfg.FieldManager == "" {
		a.cfg.FieldManager = DefaultFieldManager
	}
	if a.cfg.Timeout <= 0 {
		a.cfg.Timeout = DefaultTimeout
	}
	if a.cfg.Logger == nil {
		a.cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	rc := rest.CopyConfig(cfg.REST)
	rc.WarningHandler = warningLogger{a.cfg.Logger}
	// Discovery is read once and kept: a manifest set maps many objects to
	// few kinds. Reset (on a kind it does not know) reads it again.
	var err error
	if a.mapper, err = newMapper(rc); err != nil {
		return nil, err
	}
	if a.dyn, err = dynamic.NewForConfig(rc); err != nil {
		return nil, fmt.Errorf("dynamic client: %w", err)
	}
	return a, nil
}

// noteCRD records the kind that the CRD o defines: mapping waits for it
// to be served instead of calling it unknown.
func (a *applier) noteCRD(o Object) {
	g, _, _ := unstructured.NestedString(o.Obj.Object, "spec", "group")
	k, _, _ := unstructured.NestedString(o.Obj.Object, "spec", "names", "kind")
	a.crdKinds[schema.GroupKind{Group: g, Kind: k}] = true
}

// applier is the state of one Apply or Await call.
type applier struct {
	cfg      ApplyConfig
	mapper   *mapper
	dyn      dynamic.Interface
	crdKinds map[schema.GroupKind]bool // kinds the set's CRDs define

	mu sync.Mutex // serialises OnProgress
}

func (a *applier) progress(line string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.cfg.Logger.Debug(line)
	if a.cfg.OnProgress != nil {
		a.cfg.OnProgress(line)
	}
}

// fail adds the timeout to an error that the deadline caused.
func (a *applier) fail(ctx context.Context, err error) error {
	if ctx.Err() != nil && context.Cause(ctx) != ctx.Err() {
		return fmt.Errorf("%w (%w)", err, context.Cause(ctx))
	}
	return err
}

// Retry pacing for applyRetrying: the first retry comes soon (a k3s that
// just turned Ready may still be starting controllers and webhooks), later
// ones no more often than every retryMax.
const (
	retryInitial = 250 * time.Millisecond
	retryMax     = 5 * time.Second
)

// applyRetrying applies o, and applies it again while the API server
// answers with an error that says "try later": it is unreachable or
// restarting (the supervisor may be restarting k3s), overloaded, timing
// out, or a webhook it calls is not up yet. Any other error (an invalid
// object, a forbidden request, an unknown kind) is returned at once. The
// retries stop at Apply's deadline; the error then is the last one, with
// the timeout.
func (a *applier) applyRetrying(ctx context.Context, o Object) (*waitItem, error) {
	var w *waitItem
	err := a.retrying(ctx, o, func() (err error) {
		w, err = a.apply(ctx, o)
		return err
	})
	return w, err
}

// retrying calls fn, about object o, until it succeeds, fails for a reason
// that is not Transient, or ctx ends; see applyRetrying.
func (a *applier) retrying(ctx context.Context, o Object, fn func() error) error {
	b := backoff.WithContext(&backoff.ExponentialBackOff{
		InitialInterval:     retryInitial,
		RandomizationFactor: 0.3,
		Multiplier:          2,
		MaxInterval:         retryMax,
		MaxElapsedTime:      0, // the caller's deadline bounds it
		Stop:                backoff.Stop,
		Clock:               backoff.SystemClock,
	}, ctx)
	b.Reset()
	for attempt := 1; ; attempt++ {
		err := fn()
		if err == nil || ctx.Err() != nil || !Transient(err) {
			return err
		}
		d := b.NextBackOff()
		if d == backoff.Stop {
			return err
		}
		a.progress(fmt.Sprintf("retrying %s in %s (attempt %d failed: %v)", o, d.Round(time.Millisecond), attempt, unwrapObject(err, o)))
		t := time.NewTimer(d)
		select {
		case <-ctx.Done():
			t.Stop()
			return err
		case <-t.C:
		}
	}
}

// passing500 are what the message of a 500 says when the failure is in
// something the API server calls and may be up soon: an admission webhook
// (its Service has no ready endpoint yet, or its pod refuses connections)
// or etcd.
var passing500 = []string{
	"failed calling webhook", "failed to call webhook", "no endpoints available",
	"etcdserver: ", "connection refused", "context deadline exceeded", "i/o timeout",
}

// unwrapObject drops the "FILE doc N (Kind/name): " prefix that apply puts
// on its errors, for a line that names the object already.
func unwrapObject(err error, o Object) string {
	return strings.TrimPrefix(err.Error(), o.String()+": ")
}

// Transient reports whether err from the API server means "try again
// later" rather than "this request is wrong": the server could not be
// reached or dropped the connection, timed out, asked the client to back
// off (429, or a Retry-After), is unavailable (503: starting, or an
// aggregated API not up yet), or failed internally for a reason that
// passes (a 500 from a webhook whose backend is not running yet, or from
// etcd changing leader).
func Transient(err error) bool {
	if err == nil {
		return false
	}
	switch {
	case apierrors.IsInternalError(err):
		// A 500 is not always passing: server-side apply with strict field
		// validation answers an unknown field with 500 ("failed to create
		// typed patch object ...: .colour: field not declared in schema"),
		// and that will fail again however often it is sent.
		var st apierrors.APIStatus
		if !errors.As(err, &st) {
			return false
		}
		msg := st.Status().Message
		for _, s := range passing500 {
			if strings.Contains(msg, s) {
				return true
			}
		}
		return false
	case apierrors.IsServerTimeout(err), apierrors.IsTimeout(err),
		apierrors.IsTooManyRequests(err), apierrors.IsServiceUnavailable(err):
		return true
	}
	if _, ok := apierrors.SuggestsClientDelay(err); ok {
		return true
	}
	if utilnet.IsConnectionRefused(err) || utilnet.IsConnectionReset(err) || utilnet.IsProbableEOF(err) ||
		errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, syscall.ECONNABORTED) || errors.Is(err, syscall.EHOSTUNREACH) {
		return true
	}
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// apply sends one object and returns what to wait for (nil: nothing).
func (a *applier) apply(ctx context.Context, o Object) (*waitItem, error) {
	m, err := a.mapping(ctx, o.Obj)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", o, err)
	}
	u := o.Obj.DeepCopy()
	var ri dynamic.ResourceInterface
	ns := ""
	if m.Scope.Name() == meta.RESTScopeNameNamespace {
		ns = u.GetNamespace()
		if ns == "" {
			ns = metav1.NamespaceDefault
			u.SetNamespace(ns)
		}
		ri = a.dyn.Resource(m.Resource).Namespace(ns)
	} else {
		// A namespace on a cluster-scoped object means nothing; kubectl
		// drops it too.
		u.SetNamespace("")
		ri = a.dyn.Resource(m.Resource)
	}
	data, err := u.MarshalJSON()
	if err != nil {
		return nil, fmt.Errorf("%s: encode: %w", o, err)
	}
	// Force: nodeboot is the source of truth for these manifests. Without
	// it, a field that someone else last set (kubectl edit, a client-side
	// "kubectl apply", k3s's deploy controller) makes the apply fail with a
	// conflict and the node never finishes coming up; with it, the fields
	// in the manifest take ownership, as "kubectl apply --server-side
	// --force-conflicts" does. Fields not in the manifest stay with their
	// owners.
	force := true
	_, err = ri.Patch(ctx, u.GetName(), types.ApplyPatchType, data, metav1.PatchOptions{
		FieldManager: a.cfg.FieldManager,
		Force:        &force,
		// Strict: an unknown or duplicate field is an error, not a warning
		// that leaves the user wondering why the setting had no effect.
		FieldValidation: metav1.FieldValidationStrict,
	})
	if err != nil {
		return nil, fmt.Errorf("%s: %w", o, err)
	}
	a.cfg.Logger.Debug("applied", "object", o.String(), "resource", m.Resource.String(), "namespace", ns)
	check := checkFor(m.GroupVersionKind.GroupKind())
	if check == nil {
		return nil, nil
	}
	return &waitItem{obj: o, gvr: m.Resource, ns: ns, name: u.GetName(), check: check}, nil
}

// mapping finds the resource of u's kind. A kind the cached discovery does
// not know resets it and asks again: a CRD applied earlier in the same set
// adds kinds. A kind that a CRD of this set defines is asked for until the
// deadline, since the API server publishes it in discovery shortly after
// the CRD is Established.
func (a *applier) mapping(ctx context.Context, u *unstructured.Unstructured) (*meta.RESTMapping, error) {
	gvk := u.GroupVersionKind()
	m, err := a.mapper.RESTMapping(ctx, gvk.GroupKind(), gvk.Version)
	if err == nil || !meta.IsNoMatchError(err) {
		return m, err
	}
	a.cfg.Logger.Debug("kind not in the cached discovery; discovery reset", "kind", gvk.Kind, "apiVersion", gvk.GroupVersion().String())
	a.mapper.Reset()
	m, err = a.mapper.RESTMapping(ctx, gvk.GroupKind(), gvk.Version)
	if a.crdKinds[gvk.GroupKind()] {
		tick := time.NewTicker(500 * time.Millisecond)
		defer tick.Stop()
		for err != nil && meta.IsNoMatchError(err) {
			select {
			case <-ctx.Done():
				return nil, fmt.Errorf("kind %s of apiVersion %s not served yet although its CRD is in this set: %w", gvk.Kind, gvk.GroupVersion(), context.Cause(ctx))
			case <-tick.C:
			}
			a.mapper.Reset()
			m, err = a.mapper.RESTMapping(ctx, gvk.GroupKind(), gvk.Version)
		}
	}
	if meta.IsNoMatchError(err) {
		// A group version whose resource list failed (an aggregated API
		// whose backend is down) is the likelier cause than a typo.
		if derr := a.mapper.discoveryFailure(gvk.Group); derr != nil {
			return nil, fmt.Errorf("kind %s of apiVersion %s not found: %w; retry when the API serves it", gvk.Kind, gvk.GroupVersion(), derr)
		}
		return nil, fmt.Errorf("the API server has no kind %s in apiVersion %s: check the spelling, or install its CRD first (or in the same set)", gvk.Kind, gvk.GroupVersion())
	}
	return m, err
}

// warningLogger passes the API's warnings (deprecated APIs, ignored
// fields) to the logger instead of klog's stderr.
type warningLogger struct{ l *slog.Logger }

func (w warningLogger) HandleWarningHeader(code int, agent, text string) {
	if code == 299 && text != "" {
		w.l.Warn("API server warning", "text", text)
	}
}

// label is "deployment/web (namespace default)".
func label(kind, ns, name string) string {
	s := strings.ToLower(kind) + "/" + name
	if ns != "" {
		s += " (namespace " + ns + ")"
	}
	return s
}

func plural(n int) string {
	if n == 1 {
		return ""
	}
	return "s"
}
