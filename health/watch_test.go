package health

import (
	"context"
	"errors"
	"fmt"
	"net"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"k8s.io/client-go/rest"
	clocktesting "k8s.io/utils/clock/testing"
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
		if strings.Contains(g, "nodeboot/health.(*") || strings.Contains(g, "nodeboot/health.startInformers") || strings.Contains(g, "nodeboot/health.(*informers)") ||
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

// newFakeClock is the clock of a Watch test: probes and their timeouts
// happen when the test steps it, however fast the machine runs the test.
func newFakeClock() *clocktesting.FakeClock {
	return clocktesting.NewFakeClock(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
}

// waitUntil polls cond (real time: it waits for Watch's goroutines to get
// somewhere, not for a duration to pass) and fails after 30s.
func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

// runWatch runs Watch until the returned stop is called; stop returns
// Watch's error. Watch must return once its context is cancelled, without
// waiting for a probe, a timeout or a tick: on a fake clock that nobody
// steps it would wait forever, and stop fails after 30s.
func runWatch(t *testing.T, cfg Config, r *recorder) (stop func() error) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- Watch(ctx, cfg, r.onChange) }()
	return func() error {
		cancel()
		select {
		case err := <-done:
			return err
		case <-time.After(30 * time.Second):
			t.Fatal("Watch did not return 30s after its context was cancelled")
			return nil
		}
	}
}

// TestWatchRefused: with nothing listening, Watch reports APIUnreachable
// (ConnectionRefused) once, probes once per ProbeInterval and never in
// between, and ends all its goroutines when ctx is done.
func TestWatchRefused(t *testing.T) {
	rc, dials := clientFor(t, closedPort(t))
	r := newRecorder()
	fc := newFakeClock()
	const interval = 100 * time.Millisecond
	stop := runWatch(t, Config{REST: rc, NodeName: "n1", ProbeInterval: interval, Clock: fc}, r)
	var first Status
	select {
	case first = <-r.ch:
	case <-time.After(30 * time.Second):
		t.Fatal("no status within 30s")
	}
	if first.State != Unreachable || first.Reason != "ConnectionRefused" || !strings.Contains(first.Message, "connection refused") {
		t.Errorf("first status %v, want APIUnreachable (ConnectionRefused: ...connection refused)", first)
	}
	if !first.Since.Equal(fc.Now()) || first.Conditions != nil {
		t.Errorf("first status: Since %v, Conditions %v; want %v (the fake clock's now) and nil", first.Since, first.Conditions, fc.Now())
	}
	// One dial per probe, one probe per tick: each step of the clock by
	// the interval makes exactly one more dial.
	d0 := dials.Load()
	const probes = 5
	for i := int64(1); i <= probes; i++ {
		fc.Step(interval)
		waitUntil(t, fmt.Sprintf("dial %d after %d ticks", d0+i, i), func() bool { return dials.Load() >= d0+i })
	}
	// No tick, no probe: a loop without a wait would dial thousands of
	// times while this test sleeps.
	time.Sleep(300 * time.Millisecond)
	if n := dials.Load() - d0; n != probes {
		t.Errorf("%d dials after %d ticks of ProbeInterval %s; want one per tick", n, probes, interval)
	}
	if err := stop(); !errors.Is(err, context.Canceled) {
		t.Errorf("Watch returned %v, want context.Canceled", err)
	}
	if got := r.all(); len(got) != 1 {
		t.Errorf("%d statuses, want only the first (no transitions happened): %v", len(got), got)
	}
	checkNoGoroutines(t)
}

// TestWatchTimeout: an API that accepts connections and never answers is
// Unreachable with Reason Timeout once the probe's timeout passes (on the
// fake clock: exactly then, and not before).
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
	accepted := make(chan struct{}, 100)
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c) // hold it open, say nothing
			mu.Unlock()
			accepted <- struct{}{}
		}
	}()
	rc, _ := clientFor(t, l.Addr().String())
	r := newRecorder()
	fc := newFakeClock()
	interval := 200 * time.Millisecond
	timeout := probeTimeout(interval)
	t0 := fc.Now()
	stop := runWatch(t, Config{REST: rc, NodeName: "n1", ProbeInterval: interval, Clock: fc}, r)
	select {
	case <-accepted:
	case <-time.After(30 * time.Second):
		t.Fatal("the first probe did not connect within 30s")
	}
	// The probe waits for its answer, and its timeout on the clock (the
	// ticker and the timeout's timer).
	waitUntil(t, "the probe's timeout timer", func() bool { return fc.Waiters() >= 2 })
	fc.Step(timeout - time.Millisecond)
	select {
	case s := <-r.ch:
		t.Fatalf("status %v 1ms before the probe timeout (%s)", s, timeout)
	case <-time.After(200 * time.Millisecond):
	}
	fc.Step(time.Millisecond)
	select {
	case s := <-r.ch:
		if s.State != Unreachable || s.Reason != "Timeout" || !strings.Contains(s.Message, "no answer within "+timeout.String()) {
			t.Errorf("status %v, want APIUnreachable (Timeout: ...no answer within %s)", s, timeout)
		}
		// The first probe failing is enough before the API ever answered.
		if got := s.Since.Sub(t0); got != timeout {
			t.Errorf("Unreachable since %s after the start, want one probe timeout (%s)", got, timeout)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("no status within 30s of the probe timeout")
	}
	if err := stop(); !errors.Is(err, context.Canceled) {
		t.Errorf("Watch returned %v; want context.Canceled", err)
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
