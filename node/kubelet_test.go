package node

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/nodeboot/nodeboot/health"
)

// TestExcuse: an agent whose API is unreachable is excused while its
// kubelet's /healthz says ok, and only then; through Config.Dial when set.
func TestExcuse(t *testing.T) {
	var answer atomic.Value
	answer.Store("ok")
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/healthz" {
			http.NotFound(w, r)
			return
		}
		if a := answer.Load().(string); a != "ok" {
			http.Error(w, a, http.StatusInternalServerError)
			return
		}
		_, _ = w.Write([]byte("ok"))
	}))
	defer srv.Close()
	n := &Node{cfg: Config{KubeletHealthz: srv.URL + "/healthz"}, log: testLogger(t)}
	away := health.Status{State: health.Unreachable, Reason: "ConnectionRefused", Message: "dial tcp 10.0.0.1:6443: connect: connection refused"}
	ctx := context.Background()

	why, ok := n.excuse(ctx, away)
	if !ok || !strings.Contains(why, "the kubelet is healthy") || !strings.Contains(why, "ConnectionRefused") {
		t.Errorf("API away, kubelet ok: excuse %q, %v; want excused, naming both", why, ok)
	}
	for _, st := range []health.State{health.NotReady, health.Stale, health.NotRegistered} {
		if why, ok := n.excuse(ctx, health.Status{State: st}); ok {
			t.Errorf("%s with a healthy kubelet excused (%q): only an unreachable API is the server's fault", st, why)
		}
	}
	answer.Store("[-]syncloop failed: sync Loop took longer than expected")
	if why, ok := n.excuse(ctx, away); ok {
		t.Errorf("API away, kubelet /healthz failing: excused (%q)", why)
	}
	srv.Close()
	if why, ok := n.excuse(ctx, away); ok {
		t.Errorf("API away, no kubelet listening: excused (%q)", why)
	}

	// Through Dial: the URL's host is only a name the dialer maps.
	answer.Store("ok")
	srv2 := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { _, _ = w.Write([]byte("ok")) }))
	defer srv2.Close()
	var dials atomic.Int64
	n.cfg.KubeletHealthz = "http://kubelet.invalid:10248/healthz"
	n.cfg.Dial = func(ctx context.Context, network, _ string) (net.Conn, error) {
		dials.Add(1)
		var d net.Dialer
		return d.DialContext(ctx, network, srv2.Listener.Addr().String())
	}
	if why, ok := n.excuse(ctx, away); !ok || dials.Load() != 1 {
		t.Errorf("through Dial: excuse %q, %v after %d dials; want excused after one", why, ok, dials.Load())
	}
}
