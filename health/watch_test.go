package health

import (
	"context"
	"errors"
	"net"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"k8s.io/client-go/rest"
)

// These tests run Watch against real network conditions (a port nobody
// listens on, a listener that never answers); the states that need a real
// API server and kubelet are tested in e2e/health_test.go.

// clientFor returns a REST config for https://addr and a count of its dials.
func clientFor(t *testing.T, addr string) (*rest.Config, *atomic.Int64) {
	t.Helper()
	var dials atomic.Int64
	d := &net.Dialer{}
	cfg := &rest.Config{
		Host:            "https://" + addr,
		TLSClientConfig: rest.TLSClientConfig{Insecure: true},
		Dial: func(ctx context.Context, network, address string) (net.Conn, error) {
			dials.Add(1)
			return d.DialContext(ctx, network, address)
		},
	}
	return cfg, &dials
}

// closedPort returns an address on which nothing listens (connect gets
// ECONNREFUSED).
func closedPort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}

// ours lists the goroutines that belong to Watch: its own and client-go's
// informer machinery.
func ours() []string {
	buf := make([]byte, 1<<20)
	buf = buf[:runtime.Stack(buf, true)]
	var left []string
	for _, g := range strings.Split(string(buf), "\n\n") {
		if strings.Contains(g, "nodeboot/health.(*") || strings.Contains(g, "nodeboot/health.startInformers") ||
			strings.Contains(g, "nodeboot/health.Watch") || strings.Contains(g, "k8s.io/client-go/tools/cache.") {
			left = append(left, g)
		}
	}
	return left
}

// checkNoGoroutines fails when Watch left goroutines behind.
func checkNoGoroutines(t *testing.T) {
	t.Helper()
	var left []string
	for range 50 {
		if left = ours(); len(left) == 0 {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Errorf("%d goroutines left after Watch returned:\n%s", len(left), strings.Join(left, "\n\n"))
}

// recorder collects the statuses that Watch reports.
type recorder struct {
	mu  sync.Mutex
	got []Status
	ch  chan Status
}

func newRecorder() *recorder { return &recorder{ch: make(chan Status, 100)} }

func (r *recorder) onChange(s Status) {
	r.mu.Lock()
	r.got = append(r.got, s)
	r.mu.Unlock()
	r.ch <- s
}

func (r *recorder) all() []Status {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]Status(nil), r.got...)
}

// runWatch runs Watch until the returned stop is called; stop returns
// Watch's error and how long Watch took to return.
func runWatch(t *testing.T, cfg Config, r *recorder) (stop func() (error, time.Duration)) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- Watch(ctx, cfg, r.onChange) }()
	return func() (error, time.Duration) {
		t0 := time.Now()
		cancel()
		select {
		case err := <-done:
			return err, time.Since(t0)
		case <-time.After(10 * time.Second):
			t.Fatal("Watch did not return 10s after its context was cancelled")
			return nil, 0
		}
	}
}

// TestWatchRefused: with nothing listening, Watch reports APIUnreachable
// (ConnectionRefused) once, keeps probing at ProbeInterval and no faster,
// and ends all its goroutines when ctx is done.
func TestWatchRefused(t *testing.T) {
	rc, dials := clientFor(t, closedPort(t))
	r := newRecorder()
	const interval = 100 * time.Millisecond
	stop := runWatch(t, Config{REST: rc, NodeName: "n1", ProbeInterval: interval}, r)
	var first Status
	select {
	case first = <-r.ch:
	case <-time.After(5 * time.Second):
		t.Fatal("no status within 5s")
	}
	if first.State != Unreachable || first.Reason != "ConnectionRefused" || !strings.Contains(first.Message, "connection refused") {
		t.Errorf("first status %v, want APIUnreachable (ConnectionRefused: ...connection refused)", first)
	}
	if first.Since.IsZero() || first.Conditions != nil {
		t.Errorf("first status: Since %v, Conditions %v; want a time and nil", first.Since, first.Conditions)
	}
	const window = 1500 * time.Millisecond
	d0 := dials.Load()
	time.Sleep(window)
	n := dials.Load() - d0
	// One dial per probe: about window/interval; a loop without a wait
	// would dial thousands of times.
	if max := int64(window/interval) + 3; n > max || n < 5 {
		t.Errorf("%d dials in %s with ProbeInterval %s; want 5..%d", n, window, interval, max)
	}
	err, took := stop()
	if !errors.Is(err, context.Canceled) {
		t.Errorf("Watch returned %v, want context.Canceled", err)
	}
	if took > time.Second {
		t.Errorf("Watch took %s to return after cancel", took)
	}
	if got := r.all(); len(got) != 1 {
		t.Errorf("%d statuses, want only the first (no transitions happened): %v", len(got), got)
	}
	checkNoGoroutines(t)
}

// TestWatchTimeout: an API that accepts connections and never answers is
// Unreachable with Reason Timeout, found within unreachableAfter probe
// timeouts.
func TestWatchTimeout(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	var mu sync.Mutex
	var conns []net.Conn
	defer func() {
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
	}()
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c) // hold it open, say nothing
			mu.Unlock()
		}
	}()
	rc, _ := clientFor(t, l.Addr().String())
	r := newRecorder()
	interval := 200 * time.Millisecond
	stop := runWatch(t, Config{REST: rc, NodeName: "n1", ProbeInterval: interval}, r)
	t0 := time.Now()
	select {
	case s := <-r.ch:
		if s.State != Unreachable || s.Reason != "Timeout" {
			t.Errorf("status %v, want APIUnreachable (Timeout)", s)
		}
		// The first probe failing is enough before the API ever answered.
		if took := time.Since(t0); took > probeTimeout(interval)+2*time.Second {
			t.Errorf("Unreachable after %s; want about one probe timeout (%s)", took, probeTimeout(interval))
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no status within 10s")
	}
	if err, took := stop(); !errors.Is(err, context.Canceled) || took > time.Second {
		t.Errorf("Watch returned %v after %s; want context.Canceled at once", err, took)
	}
	checkNoGoroutines(t)
}

func TestWatchConfigErrors(t *testing.T) {
	rc, _ := clientFor(t, closedPort(t))
	for _, tc := range []struct {
		name string
		cfg  Config
		fn   func(Status)
		want string
	}{
		{"no REST config", Config{NodeName: "n1"}, func(Status) {}, "REST is nil"},
		{"no node name", Config{REST: rc}, func(Status) {}, "NodeName is empty"},
		{"no callback", Config{REST: rc, NodeName: "n1"}, nil, "onChange is nil"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := Watch(context.Background(), tc.cfg, tc.fn)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Watch = %v, want an error containing %q", err, tc.want)
			}
		})
	}
}
