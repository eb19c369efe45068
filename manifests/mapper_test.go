package manifests

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/rest"
)

// discoveryServer serves legacy discovery documents shaped like a real
// API server's (trimmed); the mapper against a real kube-apiserver,
// including a CRD applied in the same set, is tested in
// e2e/manifests_test.go.
type discoveryServer struct {
	mu        sync.Mutex
	groups    []metav1.APIGroup
	resources map[string][]metav1.APIResource // "/api/v1", "/apis/apps/v1"
	broken    map[string]bool                 // these paths answer 503
	apisHits  atomic.Int64
}

func newDiscoveryServer() *discoveryServer {
	gv := func(g, v string) metav1.GroupVersionForDiscovery {
		return metav1.GroupVersionForDiscovery{GroupVersion: strings.TrimPrefix(g+"/"+v, "/"), Version: v}
	}
	return &discoveryServer{
		groups: []metav1.APIGroup{
			{Name: "apps", Versions: []metav1.GroupVersionForDiscovery{gv("apps", "v1")}, PreferredVersion: gv("apps", "v1")},
			// Preferred version listed second: the mapper must still put it
			// first.
			{Name: "example.com", Versions: []metav1.GroupVersionForDiscovery{gv("example.com", "v1alpha1"), gv("example.com", "v1")}, PreferredVersion: gv("example.com", "v1")},
			{Name: "metrics.k8s.io", Versions: []metav1.GroupVersionForDiscovery{gv("metrics.k8s.io", "v1beta1")}, PreferredVersion: gv("metrics.k8s.io", "v1beta1")},
		},
		resources: map[string][]metav1.APIResource{
			"/api/v1": {
				{Name: "namespaces", SingularName: "namespace", Kind: "Namespace"},
				{Name: "pods", SingularName: "pod", Namespaced: true, Kind: "Pod"},
				{Name: "pods/status", Namespaced: true, Kind: "Pod"},
				{Name: "configmaps", SingularName: "configmap", Namespaced: true, Kind: "ConfigMap"},
			},
			"/apis/apps/v1": {
				{Name: "deployments", SingularName: "deployment", Namespaced: true, Kind: "Deployment"},
				{Name: "deployments/scale", Namespaced: true, Group: "autoscaling", Version: "v1", Kind: "Scale"},
			},
			"/apis/example.com/v1": {
				{Name: "widgets", SingularName: "widget", Namespaced: true, Kind: "Widget"},
			},
			"/apis/example.com/v1alpha1": {
				{Name: "widgets", Namespaced: true, Kind: "Widget"}, // no singular name: guessed
				{Name: "gadgets", SingularName: "gadget", Kind: "Gadget"},
			},
			"/apis/metrics.k8s.io/v1beta1": {
				{Name: "nodes", SingularName: "", Kind: "NodeMetrics"},
			},
		},
		broken: map[string]bool{},
	}
}

func (s *discoveryServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	reply := func(v any) {
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(v)
	}
	switch p := r.URL.Path; {
	case s.broken[p]:
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusServiceUnavailable)
		reply(metav1.Status{TypeMeta: metav1.TypeMeta{Kind: "Status", APIVersion: "v1"}, Status: metav1.StatusFailure,
			Reason: metav1.StatusReasonServiceUnavailable, Code: http.StatusServiceUnavailable, Message: "the server is currently unable to handle the request"})
	case p == "/api":
		reply(metav1.APIVersions{TypeMeta: metav1.TypeMeta{Kind: "APIVersions"}, Versions: []string{"v1"}})
	case p == "/apis":
		s.apisHits.Add(1)
		reply(metav1.APIGroupList{TypeMeta: metav1.TypeMeta{Kind: "APIGroupList", APIVersion: "v1"}, Groups: s.groups})
	case s.resources[p] != nil:
		gv := strings.TrimPrefix(strings.TrimPrefix(p, "/api/"), "/apis/")
		reply(metav1.APIResourceList{TypeMeta: metav1.TypeMeta{Kind: "APIResourceList", APIVersion: "v1"}, GroupVersion: gv, APIResources: s.resources[p]})
	default:
		http.NotFound(w, r)
	}
}

func startDiscovery(t *testing.T) (*discoveryServer, *mapper) {
	t.Helper()
	ds := newDiscoveryServer()
	srv := httptest.NewServer(ds)
	t.Cleanup(srv.Close)
	m, err := newMapper(&rest.Config{Host: srv.URL})
	if err != nil {
		t.Fatal(err)
	}
	return ds, m
}

func TestMapperRESTMapping(t *testing.T) {
	_, m := startDiscovery(t)
	for _, tc := range []struct {
		group, kind, version string
		want                 schema.GroupVersionResource // zero: no match
		namespaced           bool
	}{
		{"", "Pod", "v1", schema.GroupVersionResource{Version: "v1", Resource: "pods"}, true},
		{"", "Namespace", "v1", schema.GroupVersionResource{Version: "v1", Resource: "namespaces"}, false},
		{"", "ConfigMap", "", schema.GroupVersionResource{Version: "v1", Resource: "configmaps"}, true},
		{"apps", "Deployment", "v1", schema.GroupVersionResource{Group: "apps", Version: "v1", Resource: "deployments"}, true},
		// Subresources are not kinds of their group.
		{"apps", "Scale", "v1", schema.GroupVersionResource{}, false},
		// No version: the group's preferred one, though listed second.
		{"example.com", "Widget", "", schema.GroupVersionResource{Group: "example.com", Version: "v1", Resource: "widgets"}, true},
		{"example.com", "Widget", "v1alpha1", schema.GroupVersionResource{Group: "example.com", Version: "v1alpha1", Resource: "widgets"}, true},
		// Only in the non-preferred version.
		{"example.com", "Gadget", "", schema.GroupVersionResource{Group: "example.com", Version: "v1alpha1", Resource: "gadgets"}, false},
		{"example.com", "Gadget", "v1", schema.GroupVersionResource{}, false},
		{"", "Deployment", "v1", schema.GroupVersionResource{}, false},
		{"apps", "Deployment", "v1beta2", schema.GroupVersionResource{}, false},
	} {
		name := tc.group + "/" + tc.version + "/" + tc.kind
		t.Run(name, func(t *testing.T) {
			got, err := m.RESTMapping(context.Background(), schema.GroupKind{Group: tc.group, Kind: tc.kind}, tc.version)
			if tc.want.Empty() {
				if !meta.IsNoMatchError(err) {
					t.Fatalf("RESTMapping = %v, %v; want a no-match error", got, err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got.Resource != tc.want {
				t.Errorf("resource %v, want %v", got.Resource, tc.want)
			}
			if ns := got.Scope.Name() == meta.RESTScopeNameNamespace; ns != tc.namespaced {
				t.Errorf("namespaced %v, want %v", ns, tc.namespaced)
			}
			if got.GroupVersionKind.Kind != tc.kind {
				t.Errorf("kind %q, want %q", got.GroupVersionKind.Kind, tc.kind)
			}
		})
	}
}

// TestMapperCacheAndReset: discovery is read once; a kind added later (a
// CRD applied in the same set) is found only after Reset.
func TestMapperCacheAndReset(t *testing.T) {
	ds, m := startDiscovery(t)
	ctx := context.Background()
	thing := schema.GroupKind{Group: "things.example.org", Kind: "Thing"}
	for range 3 {
		if _, err := m.RESTMapping(ctx, schema.GroupKind{Kind: "Pod"}, "v1"); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := m.RESTMapping(ctx, thing, "v1"); !meta.IsNoMatchError(err) {
		t.Fatalf("Thing before its CRD: %v, want no match", err)
	}
	if n := ds.apisHits.Load(); n != 1 {
		t.Errorf("/apis read %d times for 4 lookups, want once (cached)", n)
	}

	ds.mu.Lock()
	ds.groups = append(ds.groups, metav1.APIGroup{Name: "things.example.org",
		Versions:         []metav1.GroupVersionForDiscovery{{GroupVersion: "things.example.org/v1", Version: "v1"}},
		PreferredVersion: metav1.GroupVersionForDiscovery{GroupVersion: "things.example.org/v1", Version: "v1"}})
	ds.resources["/apis/things.example.org/v1"] = []metav1.APIResource{{Name: "things", SingularName: "thing", Kind: "Thing"}}
	ds.mu.Unlock()

	if _, err := m.RESTMapping(ctx, thing, "v1"); !meta.IsNoMatchError(err) {
		t.Fatalf("Thing before Reset: %v, want no match (the cache predates the CRD)", err)
	}
	m.Reset()
	got, err := m.RESTMapping(ctx, thing, "v1")
	if err != nil {
		t.Fatalf("Thing after Reset: %v", err)
	}
	if want := (schema.GroupVersionResource{Group: "things.example.org", Version: "v1", Resource: "things"}); got.Resource != want || got.Scope.Name() != meta.RESTScopeNameRoot {
		t.Errorf("Thing maps to %v (%s), want %v, cluster-scoped", got.Resource, got.Scope.Name(), want)
	}
	if n := ds.apisHits.Load(); n != 2 {
		t.Errorf("/apis read %d times, want 2 (once more after Reset)", n)
	}
}

// TestMapperDiscoveryFailures: a failing group version is left out and
// reported for its group; failing /apis fails the lookup with the path.
func TestMapperDiscoveryFailures(t *testing.T) {
	ctx := context.Background()
	t.Run("group version", func(t *testing.T) {
		ds, m := startDiscovery(t)
		ds.broken["/apis/metrics.k8s.io/v1beta1"] = true
		if _, err := m.RESTMapping(ctx, schema.GroupKind{Group: "apps", Kind: "Deployment"}, "v1"); err != nil {
			t.Fatalf("Deployment with metrics.k8s.io down: %v", err)
		}
		_, err := m.RESTMapping(ctx, schema.GroupKind{Group: "metrics.k8s.io", Kind: "NodeMetrics"}, "v1beta1")
		if !meta.IsNoMatchError(err) {
			t.Fatalf("NodeMetrics with its group down: %v, want no match", err)
		}
		derr := m.discoveryFailure("metrics.k8s.io")
		if derr == nil || !strings.Contains(derr.Error(), "metrics.k8s.io/v1beta1") || !strings.Contains(derr.Error(), "unable to handle the request") {
			t.Errorf("discoveryFailure = %v, want the group version and the server's message", derr)
		}
		if derr := m.discoveryFailure("apps"); derr != nil {
			t.Errorf("discoveryFailure(apps) = %v, want nil", derr)
		}
	})
	t.Run("apis", func(t *testing.T) {
		ds, m := startDiscovery(t)
		ds.broken["/apis"] = true
		_, err := m.RESTMapping(ctx, schema.GroupKind{Kind: "Pod"}, "v1")
		if err == nil || meta.IsNoMatchError(err) || !strings.Contains(err.Error(), "GET /apis") {
			t.Fatalf("RESTMapping with /apis down = %v, want an error naming GET /apis", err)
		}
		// Not cached: the next lookup reads again and succeeds.
		ds.mu.Lock()
		ds.broken["/apis"] = false
		ds.mu.Unlock()
		if _, err := m.RESTMapping(ctx, schema.GroupKind{Kind: "Pod"}, "v1"); err != nil {
			t.Errorf("after /apis recovered: %v", err)
		}
	})
}
