package e2e

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"k8s.io/client-go/rest"

	"github.com/nodeboot/nodeboot/e2e/cluster"
	"github.com/nodeboot/nodeboot/health"
)

// Kubelet's lease settings for TestHealth. A 12s lease is renewed every 3s
// (a quarter of it, jitter 4%), so a 10s grace leaves room for a late
// renewal on a loaded machine and still finds a frozen kubelet within 13s,
// instead of 40s (the default lease renewed every 10s, which the default
// 40s grace matches).
const (
	healthLeaseSeconds = 12
	healthLeaseGrace   = 10 * time.Second
	healthProbe        = time.Second
)

// healthCounter counts the requests of a client by kind: the /readyz probe
// and everything else (the informers' lists and watches).
type healthCounter struct {
	mu           sync.Mutex
	probe, other int
	nodeLists    int // requests on /api/v1/nodes
	nodeLog      []string
	t0           time.Time
}

func (c *healthCounter) wrap(rt http.RoundTripper) http.RoundTripper {
	return roundTripFunc(func(r *http.Request) (*http.Response, error) {
		c.mu.Lock()
		switch {
		case r.URL.Path == "/readyz":
			c.probe++
		default:
			c.other++
			if r.URL.Path == "/api/v1/nodes" {
				c.nodeLists++
				c.nodeLog = append(c.nodeLog, fmt.Sprintf("+%.2fs %s", time.Since(c.t0).Seconds(), r.URL.RawQuery))
			}
		}
		c.mu.Unlock()
		return rt.RoundTrip(r)
	})
}

func (c *healthCounter) get() (probe, other, nodeLists int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.probe, c.other, c.nodeLists
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// healthWatch runs health.Watch on a client with counted requests.
type healthWatch struct {
	t      *testing.T
	count  *healthCounter
	ch     chan health.Status
	cancel context.CancelFunc
	done   chan error
	last   health.Status

	stopOnce sync.Once
	stopErr  error
	stopTook time.Duration
}

func startHealthWatch(t *testing.T, c *cluster.Cluster, edit func(*rest.Config)) *healthWatch {
	t.Helper()
	cfg, err := c.RESTConfig()
	if err != nil {
		t.Fatal(err)
	}
	hw := &healthWatch{t: t, count: &healthCounter{t0: time.Now()}, ch: make(chan health.Status, 100), done: make(chan error, 1)}
	cfg.Wrap(hw.count.wrap)
	if edit != nil {
		edit(cfg)
	}
	ctx, cancel := context.WithCancel(context.Background())
	hw.cancel = cancel
	go func() {
		hw.done <- health.Watch(ctx, health.Config{REST: cfg, NodeName: c.Name, LeaseGrace: healthLeaseGrace, ProbeInterval: healthProbe},
			func(s health.Status) { hw.ch <- s })
	}()
	return hw
}

// stop cancels Watch and returns its error and how long it took to return
// (the first time; later calls return the same).
func (hw *healthWatch) stop() (error, time.Duration) {
	hw.stopOnce.Do(func() {
		t0 := time.Now()
		hw.cancel()
		select {
		case hw.stopErr = <-hw.done:
		case <-time.After(30 * time.Second):
			hw.stopErr = errors.New("Watch did not return 30s after cancel")
		}
		hw.stopTook = time.Since(t0)
	})
	return hw.stopErr, hw.stopTook
}

// await waits up to timeout for a status in state want (and, when reason
// is not "", with that reason), failing on a status whose state is not in
// allowed on the way. It returns the status and how long it took.
func (hw *healthWatch) await(want health.State, reason string, timeout time.Duration, allowed ...health.State) (health.Status, time.Duration) {
	hw.t.Helper()
	t0 := time.Now()
	deadline := time.After(timeout)
	for {
		select {
		case s := <-hw.ch:
			took := time.Since(t0)
			hw.t.Logf("+%5.1fs  %s", took.Seconds(), s)
			if s.Since.IsZero() {
				hw.t.Errorf("status %s without Since", s)
			}
			hw.last = s
			if s.State == want && (reason == "" || s.Reason == reason) {
				return s, took
			}
			ok := s.State == want // the right state, a reason not yet the one
			for _, a := range allowed {
				ok = ok || s.State == a
			}
			if !ok {
				hw.t.Fatalf("got %s while waiting for %s %s", s, want, reason)
			}
		case <-deadline:
			hw.t.Fatalf("no %s %s within %s (last %s)", want, reason, timeout, hw.last)
		}
	}
}

// quiet fails when Watch reports anything for d: the state must hold.
func (hw *healthWatch) quiet(d time.Duration) {
	hw.t.Helper()
	select {
	case s := <-hw.ch:
		hw.t.Fatalf("unexpected transition to %s (was %s)", s, hw.last)
	case <-time.After(d):
	}
}

// healthGoroutines lists the goroutines of health.Watch and of client-go's
// informers that are still alive.
func healthGoroutines() []string {
	buf := make([]byte, 4<<20)
	buf = buf[:runtime.Stack(buf, true)]
	var left []string
	for _, g := range strings.Split(string(buf), "\n\n") {
		if strings.Contains(g, "nodeboot/nodeboot/health.") || strings.Contains(g, "k8s.io/client-go/tools/cache.") {
			left = append(left, g)
		}
	}
	return left
}

// TestHealth drives health.Watch through every state with the real
// kube-apiserver and kubelet of the test bed, on one cluster: the node
// registers and turns Ready; the container runtime goes down and kubelet
// reports NotReady; kubelet is frozen and its Lease goes stale while the
// Ready condition stays (no controller-manager runs here); the apiserver
// stops and comes back. Each subtest leaves the node Ready for the next.
func TestHealth(t *testing.T) {
	c := cluster.New(t, cluster.Options{})
	containerd, err := c.StartContainerd()
	if err != nil {
		t.Fatal(err)
	}

	// A client that may not read nodes or leases: /readyz answers (it is
	// public to authenticated users), the node list is Forbidden. Watch
	// must say so, and the reflector must retry with backoff, not spin.
	t.Run("forbidden", func(t *testing.T) {
		hw := startHealthWatch(t, c, func(cfg *rest.Config) {
			cfg.Impersonate = rest.ImpersonationConfig{UserName: "nodeboot-e2e-nobody", Groups: []string{"system:authenticated"}}
		})
		s, took := hw.await(health.Unreachable, "Forbidden", 30*time.Second)
		t.Logf("Forbidden reported after %s: %s", took.Round(10*time.Millisecond), s.Message)
		const window = 8 * time.Second
		time.Sleep(window)
		probes, _, lists := hw.count.get()
		// client-go's reflector: 800ms, doubling, jitter up to 100%: about
		// 4 attempts in the first 8s, each a list (and maybe a watch-list
		// first). A loop without backoff would make thousands.
		t.Logf("in %s: %d /readyz probes, %d requests on /api/v1/nodes", window+took, probes, lists)
		hw.count.mu.Lock()
		t.Logf("node requests:\n%s", strings.Join(hw.count.nodeLog, "\n"))
		hw.count.mu.Unlock()
		if lists < 2 || lists > 14 {
			t.Errorf("%d node list/watch requests in %s; want 2..14 (the reflector's backoff)", lists, window+took)
		}
		select {
		case s := <-hw.ch:
			t.Errorf("unexpected transition to %s", s)
		default:
		}
		if err, took := hw.stop(); !errors.Is(err, context.Canceled) {
			t.Errorf("Watch returned %v after %s, want context.Canceled", err, took)
		}
	})

	hw := startHealthWatch(t, c, nil)
	var kubelet *cluster.Proc
	t.Cleanup(func() {
		if kubelet != nil {
			_ = kubelet.Thaw() // let a frozen kubelet stop cleanly
		}
		hw.stop()
	})

	if !t.Run("registered-ready", func(t *testing.T) {
		hw.await(health.NotRegistered, "", 30*time.Second)
		kubelet, err = c.StartKubelet("kubelet", func(argv []string) (*exec.Cmd, error) {
			dir := filepath.Join(c.Dir, "kubelet.conf.d")
			if err := os.MkdirAll(dir, 0o700); err != nil {
				return nil, err
			}
			dropIn := fmt.Sprintf("apiVersion: kubelet.config.k8s.io/v1beta1\nkind: KubeletConfiguration\nnodeLeaseDurationSeconds: %d\n", healthLeaseSeconds)
			if err := os.WriteFile(filepath.Join(dir, "50-health.conf"), []byte(dropIn), 0o600); err != nil {
				return nil, err
			}
			return c.InNetNS(append(argv, "--config-dir="+dir)...), nil
		})
		if err != nil {
			t.Fatal(err)
		}
		// Kubelet may register the node before its first runtime check:
		// NotReady on the way is fine.
		s, took := hw.await(health.Ready, "", 90*time.Second, health.NotReady)
		t.Logf("Ready %s after kubelet started; %d conditions", took.Round(10*time.Millisecond), len(s.Conditions))
		if len(s.Conditions) == 0 {
			t.Error("Ready status without node conditions")
		}
		// Several lease renewals: a healthy kubelet is never Stale.
		hw.quiet(healthLeaseGrace + 5*time.Second)
	}) {
		return
	}

	if !t.Run("not-ready", func(t *testing.T) {
		// With containerd gone, kubelet's runtime check (every 5s) fails;
		// 30s after the last good one it reports "container runtime is
		// down" (pkg/kubelet/runtime.go), at its next status update.
		if err := containerd.Stop(10 * time.Second); err != nil {
			t.Fatal(err)
		}
		s, took := hw.await(health.NotReady, "KubeletNotReady", 120*time.Second)
		t.Logf("NotReady %s after containerd stopped", took.Round(10*time.Millisecond))
		if !strings.Contains(s.Message, "container runtime is down") {
			t.Errorf("NotReady message %q lacks %q", s.Message, "container runtime is down")
		}
		if containerd, err = c.StartContainerd(); err != nil {
			t.Fatal(err)
		}
		_, took = hw.await(health.Ready, "", 90*time.Second, health.NotReady)
		t.Logf("Ready again %s after containerd restarted", took.Round(10*time.Millisecond))
	}) {
		return
	}

	if !t.Run("stale", func(t *testing.T) {
		t0 := time.Now()
		if err := kubelet.Freeze(); err != nil {
			t.Fatal(err)
		}
		s, _ := hw.await(health.Stale, "LeaseExpired", healthLeaseGrace+time.Duration(healthLeaseSeconds)*time.Second/4+10*time.Second)
		took := s.Since.Sub(t0)
		t.Logf("Stale %s after kubelet was frozen: %s", took.Round(10*time.Millisecond), s.Message)
		// The last renewal came at most one renew interval before the
		// freeze, so Stale comes between grace minus that and grace (plus
		// scheduling slack).
		if lo, hi := healthLeaseGrace-time.Duration(healthLeaseSeconds)*time.Second/4-time.Second, healthLeaseGrace+2*time.Second; took < lo || took > hi {
			t.Errorf("Stale %s after the freeze; want %s..%s", took, lo, hi)
		}
		if err := kubelet.Thaw(); err != nil {
			t.Fatal(err)
		}
		_, took = hw.await(health.Ready, "", 30*time.Second)
		t.Logf("Ready again %s after kubelet was thawed", took.Round(10*time.Millisecond))
	}) {
		return
	}

	if !t.Run("api-unreachable", func(t *testing.T) {
		t0 := time.Now()
		if err := c.StopAPIServer(10 * time.Second); err != nil {
			t.Fatal(err)
		}
		stopped := time.Since(t0)
		s, _ := hw.await(health.Unreachable, "ConnectionRefused", 30*time.Second)
		t.Logf("APIUnreachable %s after the apiserver was told to stop (stopping took %s): %s", s.Since.Sub(t0).Round(10*time.Millisecond), stopped.Round(10*time.Millisecond), s.Message)
		if len(s.Conditions) == 0 {
			t.Error("APIUnreachable status lost the last node conditions")
		}
		// While the API is away: the probe once a second, and nothing else
		// (the informers are stopped until it is back).
		p0, o0, _ := hw.count.get()
		const window = 10 * time.Second
		hw.quiet(window)
		p1, o1, _ := hw.count.get()
		t.Logf("during %s of outage: %d probes, %d other requests", window, p1-p0, o1-o0)
		if n := p1 - p0; n < 5 || n > int(window/healthProbe)+2 {
			t.Errorf("%d probes in %s with ProbeInterval %s", n, window, healthProbe)
		}
		if n := o1 - o0; n > 0 {
			t.Errorf("%d list/watch requests while the API was unreachable; want none", n)
		}

		api, err := c.RestartAPIServer()
		if err != nil {
			t.Fatal(err)
		}
		// No NotRegistered, NotReady or Stale on the way: the node and its
		// Lease are read afresh once the API answers.
		_, took := hw.await(health.Ready, "", 120*time.Second)
		t.Logf("Ready %s after the apiserver was restarted (pid %d)", took.Round(10*time.Millisecond), api.PID())
		// Kubelet could not renew the Lease during the outage; that must
		// not read as Stale now that the API is back.
		hw.quiet(healthLeaseGrace + 5*time.Second)
	}) {
		return
	}

	t.Run("shutdown", func(t *testing.T) {
		err, took := hw.stop()
		if !errors.Is(err, context.Canceled) {
			t.Errorf("Watch returned %v, want context.Canceled", err)
		}
		if took > 2*time.Second {
			t.Errorf("Watch took %s to return after cancel", took)
		}
		var left []string
		for range 50 {
			if left = healthGoroutines(); len(left) == 0 {
				break
			}
			time.Sleep(100 * time.Millisecond)
		}
		if len(left) > 0 {
			t.Errorf("%d goroutines left after Watch returned:\n%s", len(left), strings.Join(left, "\n\n"))
		}
		t.Logf("Watch returned %v %s after cancel; no goroutine left", err, took.Round(time.Millisecond))
	})
}
