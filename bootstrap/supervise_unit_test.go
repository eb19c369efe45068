package bootstrap

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	clocktesting "k8s.io/utils/clock/testing"
)

// The helpers of the Supervise tests, and the tests that start no process
// (Start fails): these run in "make unit" too.

// testLogger sends nodeboot's log to the test's log, so a failure shows
// the tracer's and the virtual kernel's warnings.
func testLogger(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(tWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type tWriter struct{ t *testing.T }

func (w tWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSuffix(string(p), "\n"))
	return len(p), nil
}

// watchLog returns a logger like testLogger and a channel that is closed
// at the first record whose message is msg: a test can wait for something
// Supervise does that no Event reports (the backoff reset).
func watchLog(t *testing.T, msg string) (*slog.Logger, <-chan struct{}) {
	seen := make(chan struct{})
	return slog.New(&logWatch{Handler: testLogger(t).Handler(), msg: msg, seen: seen, once: new(sync.Once)}), seen
}

type logWatch struct {
	slog.Handler
	msg  string
	seen chan struct{}
	once *sync.Once
}

func (h *logWatch) Handle(ctx context.Context, r slog.Record) error {
	if r.Message == h.msg {
		h.once.Do(func() { close(h.seen) })
	}
	return h.Handler.Handle(ctx, r)
}

func (h *logWatch) WithAttrs(a []slog.Attr) slog.Handler {
	return &logWatch{Handler: h.Handler.WithAttrs(a), msg: h.msg, seen: h.seen, once: h.once}
}

func (h *logWatch) WithGroup(g string) slog.Handler {
	return &logWatch{Handler: h.Handler.WithGroup(g), msg: h.msg, seen: h.seen, once: h.once}
}

// newFakeClock is the clock of a Supervise test: its graces, backoff waits
// and StableAfter pass only when the test steps it, so what the test checks
// does not depend on how fast the machine runs the test.
func newFakeClock() *clocktesting.FakeClock {
	return clocktesting.NewFakeClock(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
}

// waitTimers waits until n timers are armed on fc: Supervise has reached
// the wait the test expects (a backoff, a grace).
func waitTimers(t *testing.T, fc *clocktesting.FakeClock, n int) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for fc.Waiters() != n {
		if time.Now().After(deadline) {
			t.Fatalf("Supervise armed %d timers, want %d", fc.Waiters(), n)
		}
		time.Sleep(time.Millisecond)
	}
}

// recorder keeps the events of one Supervise run and lets a test wait for
// one of a kind.
type recorder struct {
	t  *testing.T
	mu sync.Mutex
	ev []Event
	ch chan Event
}

func newRecorder(t *testing.T) *recorder {
	return &recorder{t: t, ch: make(chan Event, 4096)}
}

func (r *recorder) on(e Event) {
	r.mu.Lock()
	r.ev = append(r.ev, e)
	r.mu.Unlock()
	select {
	case r.ch <- e:
	default:
	}
	msg := fmt.Sprintf("event %-10s pid=%d restarts=%d", e.Kind, e.PID, e.Restarts)
	if e.Reason != "" {
		msg += " reason=" + strconv.Quote(e.Reason)
	}
	if e.Delay > 0 {
		msg += " delay=" + e.Delay.Round(time.Millisecond).String()
	}
	if e.Health != nil {
		msg += " health=" + string(e.Health.State)
	}
	r.t.Log(msg)
}

// wait returns the next event of kind, failing after timeout.
func (r *recorder) wait(kind EventKind, timeout time.Duration) Event {
	r.t.Helper()
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for {
		select {
		case e := <-r.ch:
			if e.Kind == kind {
				return e
			}
		case <-deadline.C:
			r.t.Fatalf("no %q event within %s", kind, timeout)
		}
	}
}

func (r *recorder) all(kind EventKind) []Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []Event
	for _, e := range r.ev {
		if e.Kind == kind {
			out = append(out, e)
		}
	}
	return out
}

func TestSuperviseStartFailure(t *testing.T) {
	rec := newRecorder(t)
	boom := errors.New("k3s: no such file")
	calls := 0
	err := Supervise(context.Background(), SuperviseConfig{
		Start: func(context.Context) (*Process, error) {
			calls++
			return nil, boom
		},
		InitialInterval: time.Millisecond,
		MaxInterval:     2 * time.Millisecond,
		MaxRestarts:     2,
		OnEvent:         rec.on,
		Logger:          testLogger(t),
	})
	want := "gave up after 2 restarts: start failed: k3s: no such file"
	if err == nil || err.Error() != want {
		t.Fatalf("Supervise = %v, want %q", err, want)
	}
	if calls != 3 {
		t.Errorf("Start called %d times, want 3", calls)
	}
}

// TestSuperviseCancelledDuringBackoff: a cancel ends the backoff wait at
// once (the fake clock never reaches the hour).
func TestSuperviseCancelledDuringBackoff(t *testing.T) {
	fc := newFakeClock()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() {
		done <- Supervise(ctx, SuperviseConfig{
			Start: func(context.Context) (*Process, error) {
				return nil, errors.New("fails")
			},
			InitialInterval: time.Hour,
			MaxInterval:     time.Hour,
			MaxRestarts:     -1,
			Logger:          testLogger(t),
			Clock:           fc,
		})
	}()
	waitTimers(t, fc, 1) // in the backoff wait
	select {
	case err := <-done:
		t.Fatalf("Supervise returned %v during its backoff, before the cancel", err)
	default:
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Supervise = %v, want nil after cancel", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("Supervise still waiting out its backoff after cancel")
	}
}
