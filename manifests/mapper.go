package manifests

import (
	"context"
	"encoding/json"
	"fmt"
	"path"
	"slices"
	"strings"
	"sync"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/runtime/serializer"
	"k8s.io/client-go/rest"
)

// mapper maps kinds to resources from the API server's discovery
// documents, read once and kept until Reset.
//
// client-go's discovery client and restmapper do the same, but importing
// them pulls in kubernetes/scheme (every built-in API group) and the
// OpenAPI models, whose package init costs every nodeboot process, even
// the tracer of "nodeboot exec", about 12 MB of memory. Apply needs only
// the legacy discovery documents: GET /api, /apis, and the resource list
// of each group version, the same requests kubectl made before aggregated
// discovery.
type mapper struct {
	rc rest.Interface

	mu     sync.Mutex
	m      meta.RESTMapper // nil: not read since the last Reset
	failed []discovered    // group versions whose resource list could not be read
}

// newMapper returns a mapper reading discovery through a client made from
// cfg (not modified).
func newMapper(cfg *rest.Config) (*mapper, error) {
	c := rest.CopyConfig(cfg)
	// Discovery reads one document per group version at once; client-go's
	// discovery client raises the burst for the same reason.
	if c.RateLimiter == nil && c.Burst == 0 {
		c.Burst = 300
	}
	if c.UserAgent == "" {
		c.UserAgent = rest.DefaultKubernetesUserAgent()
	}
	// The documents are decoded with encoding/json; the scheme only lets
	// the client turn an error response into a metav1.Status error.
	scheme := runtime.NewScheme()
	metav1.AddToGroupVersion(scheme, schema.GroupVersion{Version: "v1"})
	c.APIPath, c.GroupVersion = "", nil
	c.NegotiatedSerializer = serializer.NewCodecFactory(scheme).WithoutConversion()
	c.AcceptContentTypes, c.ContentType = "application/json", "application/json"
	rc, err := rest.UnversionedRESTClientFor(c)
	if err != nil {
		return nil, fmt.Errorf("discovery client for %s: %w", cfg.Host, err)
	}
	return &mapper{rc: rc}, nil
}

// Reset forgets what was read: the next RESTMapping reads discovery again.
func (d *mapper) Reset() {
	d.mu.Lock()
	d.m, d.failed = nil, nil
	d.mu.Unlock()
}

// RESTMapping returns the resource of gk in version (the preferred version
// of gk's group when version is ""). An unknown kind gives an error for
// which meta.IsNoMatchError holds.
func (d *mapper) RESTMapping(ctx context.Context, gk schema.GroupKind, version string) (*meta.RESTMapping, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.m == nil {
		m, failed, err := d.read(ctx)
		if err != nil {
			return nil, err
		}
		d.m, d.failed = m, failed
	}
	if version == "" {
		return d.m.RESTMapping(gk)
	}
	return d.m.RESTMapping(gk, version)
}

// discoveryFailure returns the error of a group version of group whose
// resource list could not be read at the last reading, or nil.
func (d *mapper) discoveryFailure(group string) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, f := range d.failed {
		if f.gv.Group == group {
			return fmt.Errorf("discovery of %s failed: %w", f.gv, f.err)
		}
	}
	return nil
}

// discovered is one group version's resources, in discovery order.
type discovered struct {
	gv        schema.GroupVersion
	resources []metav1.APIResource
	err       error
}

// read fetches discovery and builds the mapper. A group version whose
// resource list fails (an aggregated API whose backend is down, typically
// metrics.k8s.io while metrics-server starts) is left out and recorded, as
// client-go's restmapper does; failing to read /api or /apis fails.
func (d *mapper) read(ctx context.Context) (meta.RESTMapper, []discovered, error) {
	var versions metav1.APIVersions
	if err := d.get(ctx, "/api", &versions); err != nil {
		return nil, nil, err
	}
	var groups metav1.APIGroupList
	if err := d.get(ctx, "/apis", &groups); err != nil {
		return nil, nil, err
	}
	// Group versions in priority order: core v1 first (as in client-go's
	// restmapper), then each group's preferred version before its others.
	var gvs []schema.GroupVersion
	for _, v := range versions.Versions {
		gvs = append(gvs, schema.GroupVersion{Version: v})
	}
	for _, g := range groups.Groups {
		pref := g.PreferredVersion.Version
		if pref != "" && slices.ContainsFunc(g.Versions, func(v metav1.GroupVersionForDiscovery) bool { return v.Version == pref }) {
			gvs = append(gvs, schema.GroupVersion{Group: g.Name, Version: pref})
		}
		for _, v := range g.Versions {
			if v.Version != pref {
				gvs = append(gvs, schema.GroupVersion{Group: g.Name, Version: v.Version})
			}
		}
	}

	// One request per group version, all at once (there are a few dozen).
	res := make([]discovered, len(gvs))
	var wg sync.WaitGroup
	for i, gv := range gvs {
		res[i].gv = gv
		wg.Go(func() {
			p := path.Join("/apis", gv.Group, gv.Version)
			if gv.Group == "" {
				p = path.Join("/api", gv.Version)
			}
			var l metav1.APIResourceList
			res[i].err = d.get(ctx, p, &l)
			res[i].resources = l.APIResources
		})
	}
	wg.Wait()
	if err := ctx.Err(); err != nil {
		return nil, nil, fmt.Errorf("read API discovery: %w", context.Cause(ctx))
	}

	m := meta.NewDefaultRESTMapper(gvs)
	var failed []discovered
	for _, r := range res {
		if r.err != nil {
			failed = append(failed, r)
			continue
		}
		for _, ar := range r.resources {
			// "pods/status" and the like are subresources, not kinds of
			// their own.
			if strings.Contains(ar.Name, "/") {
				continue
			}
			scope := meta.RESTScopeRoot
			if ar.Namespaced {
				scope = meta.RESTScopeNamespace
			}
			plural := r.gv.WithResource(ar.Name)
			singular := r.gv.WithResource(ar.SingularName)
			if ar.SingularName == "" {
				// Old servers and some aggregated APIs leave it out.
				_, singular = meta.UnsafeGuessKindToResource(r.gv.WithKind(ar.Kind))
			}
			m.AddSpecific(r.gv.WithKind(ar.Kind), plural, singular, scope)
		}
	}
	return m, failed, nil
}

// get reads the discovery document at p into v.
func (d *mapper) get(ctx context.Context, p string, v any) error {
	body, err := d.rc.Get().AbsPath(p).DoRaw(ctx)
	if err != nil {
		return fmt.Errorf("read API discovery: GET %s: %w", p, err)
	}
	if err := json.Unmarshal(body, v); err != nil {
		return fmt.Errorf("read API discovery: GET %s: decode %T: %w", p, v, err)
	}
	return nil
}
