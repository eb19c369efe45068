package health

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/rest"
)

// fakeNodeAPI is the part of an API server that Watch reads, with the Node
// authorizer's rules for a node's own credentials: the Node may be listed
// and watched by name, the Lease only read with GET (a list or watch of
// leases is Forbidden). The Lease's renewTime moves on with every GET, as
// a live kubelet's would between two polls.
type fakeNodeAPI struct {
	leaseGets, leaseLists atomic.Int64
	mu                    sync.Mutex
	renew                 time.Time
}

func (f *fakeNodeAPI) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	write := func(v any) {
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(v)
	}
	const leases = "/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases"
	switch {
	case r.URL.Path == "/readyz":
		_, _ = w.Write([]byte("ok"))
	case r.URL.Path == "/api/v1/nodes" && r.URL.Query().Get("watch") == "true":
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusOK)
		if r.URL.Query().Get("sendInitialEvents") == "true" {
			// client-go's streaming list: the Node, then the bookmark
			// that ends the initial events.
			enc := json.NewEncoder(w)
			_ = enc.Encode(metav1.WatchEvent{Type: "ADDED", Object: runtime.RawExtension{Object: readyNode()}})
			_ = enc.Encode(metav1.WatchEvent{Type: "BOOKMARK", Object: runtime.RawExtension{Object: &corev1.Node{
				TypeMeta: metav1.TypeMeta{Kind: "Node", APIVersion: "v1"},
				ObjectMeta: metav1.ObjectMeta{ResourceVersion: "1",
					Annotations: map[string]string{metav1.InitialEventsAnnotationKey: "true"}},
			}}})
		}
		w.(http.Flusher).Flush()
		<-r.Context().Done() // no more events
	case r.URL.Path == "/api/v1/nodes":
		write(corev1.NodeList{TypeMeta: metav1.TypeMeta{Kind: "NodeList", APIVersion: "v1"},
			ListMeta: metav1.ListMeta{ResourceVersion: "1"}, Items: []corev1.Node{*readyNode()}})
	case r.URL.Path == leases+"/n1" && r.Method == http.MethodGet:
		f.leaseGets.Add(1)
		f.mu.Lock()
		f.renew = f.renew.Add(time.Second)
		rt := metav1.NewMicroTime(f.renew)
		f.mu.Unlock()
		write(coordinationv1.Lease{
			TypeMeta:   metav1.TypeMeta{Kind: "Lease", APIVersion: "coordination.k8s.io/v1"},
			ObjectMeta: metav1.ObjectMeta{Name: "n1", Namespace: "kube-node-lease"},
			Spec:       coordinationv1.LeaseSpec{RenewTime: &rt},
		})
	case strings.HasPrefix(r.URL.Path, leases):
		f.leaseLists.Add(1)
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusForbidden)
		write(metav1.Status{TypeMeta: metav1.TypeMeta{Kind: "Status", APIVersion: "v1"}, Status: metav1.StatusFailure,
			Reason: metav1.StatusReasonForbidden, Code: http.StatusForbidden,
			Message: `leases.coordination.k8s.io is forbidden: User "system:node:n1" cannot list resource "leases"`})
	default:
		http.NotFound(w, r)
	}
}

// readyNode is node n1, Ready.
func readyNode() *corev1.Node {
	return &corev1.Node{
		TypeMeta:   metav1.TypeMeta{Kind: "Node", APIVersion: "v1"},
		ObjectMeta: metav1.ObjectMeta{Name: "n1", ResourceVersion: "1"},
		Status: corev1.NodeStatus{Conditions: []corev1.NodeCondition{
			{Type: corev1.NodeReady, Status: corev1.ConditionTrue, Reason: "KubeletReady"},
		}},
	}
}

// TestWatchLeaseByGet: with a node's own credentials (which may get their
// Lease but not list or watch it), a node whose kubelet renews its Lease
// is Ready and stays Ready past LeaseGrace, and every renewal is passed to
// OnRenew. A Lease informer would be Forbidden and the node Stale.
func TestWatchLeaseByGet(t *testing.T) {
	api := &fakeNodeAPI{renew: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	srv := httptest.NewTLSServer(api)
	defer srv.Close()
	var renews atomic.Int64
	r := newRecorder()
	const grace = 600 * time.Millisecond
	stop := runWatch(t, Config{
		REST:     &rest.Config{Host: srv.URL, TLSClientConfig: rest.TLSClientConfig{Insecure: true}},
		NodeName: "n1", ProbeInterval: 100 * time.Millisecond, LeaseGrace: grace,
		OnRenew: func(time.Time) { renews.Add(1) },
	}, r)
	select {
	case s := <-r.ch:
		if s.State != Ready {
			t.Fatalf("first status %v, want Ready", s)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("no status within 30s")
	}
	time.Sleep(3 * grace)
	if err := stop(); err == nil {
		t.Error("Watch returned nil after cancel")
	}
	if got := r.all(); len(got) != 1 {
		t.Errorf("statuses %v: want Ready only (the Lease is renewed at every GET)", got)
	}
	if n := api.leaseLists.Load(); n != 0 {
		t.Errorf("%d lists or watches of leases: a node may only get its Lease", n)
	}
	if g, n := api.leaseGets.Load(), renews.Load(); g < 5 || n != g {
		t.Errorf("%d GETs of the Lease, %d OnRenew calls: want at least 5, one call per renewal seen", g, n)
	}
	checkNoGoroutines(t)
}
