package e2e

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/nodeboot/nodeboot/bootstrap"
	"github.com/nodeboot/nodeboot/e2e/cluster"
	"github.com/nodeboot/nodeboot/e2e/sandbox"
	"github.com/nodeboot/nodeboot/health"
	"github.com/nodeboot/nodeboot/profile"
)

// TestSupervise runs the real kubelet of the test bed in the gVisor-like
// sandbox under bootstrap.Supervise + bootstrap.Launch (the k3s profile),
// with the real readiness watcher (health.Watch) feeding it, as "nodeboot
// up" runs k3s. The supervisor runs inside the sandbox, as nodeboot does:
// the test binary is re-executed there in supervisor mode (envSupervise)
// and reports every Event as a JSON line on fd 3.
//
// The test SIGKILLs kubelet 20 times in a row and checks that each kill is
// followed by a restart, that the backoff delays grow to the cap, that the
// node turns Ready again, that after StableAfter of Ready the backoff is
// back at its initial interval, and that SIGTERM to the supervisor leaves
// no kubelet behind.
func TestSupervise(t *testing.T) {
	const (
		kills       = 20
		initial     = 200 * time.Millisecond
		maxInterval = 3 * time.Second
		stableAfter = 20 * time.Second
	)
	c := cluster.New(t, cluster.Options{})
	if _, err := c.StartContainerd(); err != nil {
		t.Fatal(err)
	}
	c.KubeletCgroupRoot = "/" // the emulated cgroup tree, as in TestNodeboot
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	evR, evW, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer evR.Close()
	sup, err := c.StartKubelet("kubelet-supervised", func(argv []string) (*exec.Cmd, error) {
		hc := helperConfig{
			Root: filepath.Join(c.Dir, "nodeboot"), Argv: argv,
			Kubeconfig: c.Kubeconfig, NodeName: c.Name,
			InitialInterval: initial, MaxInterval: maxInterval, StableAfter: stableAfter,
			StopTimeout: 10 * time.Second,
		}
		b, err := json.Marshal(hc)
		if err != nil {
			return nil, err
		}
		cmd, err := sandbox.Command(sandbox.Options{NetNS: c.NetNS, Spec: sandbox.GVisor}, exe)
		if err != nil {
			return nil, err
		}
		cmd.Env = append(cmd.Env, envSupervise+"="+string(b))
		cmd.ExtraFiles = []*os.File{evW} // fd 3 in the supervisor
		return cmd, nil
	})
	evW.Close()
	if err != nil {
		t.Fatal(err)
	}
	events := make(chan bootstrap.Event, 1024)
	go func() {
		defer close(events)
		dec := json.NewDecoder(evR)
		for {
			var e bootstrap.Event
			if err := dec.Decode(&e); err != nil {
				return
			}
			events <- e
		}
	}()
	// next returns the next event of kind, logging health changes on the
	// way, and keeps the readiness state for the stability wait.
	var ready bool
	var readySince, lastStart time.Time
	next := func(kind bootstrap.EventKind, timeout time.Duration) bootstrap.Event {
		t.Helper()
		timer := time.NewTimer(timeout)
		defer timer.Stop()
		for {
			select {
			case e, ok := <-events:
				if !ok {
					t.Fatalf("the supervisor ended (%v) while waiting for %q\n%s", sup.Err(), kind, sup.Tail(40))
				}
				switch e.Kind {
				case bootstrap.EventHealth:
					t.Logf("health: %s", e.Health)
					if r := e.Health.State == health.Ready; r != ready {
						ready, readySince = r, e.Time
					}
				case bootstrap.EventStarted:
					lastStart = e.Time
				case bootstrap.EventGaveUp:
					t.Fatalf("the supervisor gave up: %s", e.Reason)
				}
				if e.Kind == kind {
					return e
				}
			case <-timer.C:
				t.Fatalf("no %q event within %s\n%s", kind, timeout, sup.Tail(40))
			}
		}
	}

	first := next(bootstrap.EventStarted, time.Minute)
	d, err := c.WaitReady(sup, 3*time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("node %s Ready %s after the supervisor started; kubelet pid %d", c.Name, d.Round(time.Millisecond), first.PID)

	pids := []int{first.PID}
	pid := first.PID
	var delays []time.Duration
	var gaps []time.Duration
	for i := range kills {
		killed := time.Now()
		if err := unix.Kill(pid, unix.SIGKILL); err != nil {
			t.Fatalf("kill %d: SIGKILL kubelet %d: %v", i+1, pid, err)
		}
		ex := next(bootstrap.EventExited, 30*time.Second)
		if ex.PID != pid || !strings.Contains(ex.Reason, "signal 9") {
			t.Errorf("kill %d: exited event %+v, want pid %d killed by signal 9", i+1, ex, pid)
		}
		r := next(bootstrap.EventRestarting, 30*time.Second)
		st := next(bootstrap.EventStarted, maxInterval+30*time.Second)
		if st.PID == pid || st.PID == 0 {
			t.Fatalf("kill %d: restarted as pid %d", i+1, st.PID)
		}
		if r.Restarts != i+1 {
			t.Errorf("kill %d: %d restarts counted", i+1, r.Restarts)
		}
		delays = append(delays, r.Delay)
		gaps = append(gaps, st.Time.Sub(killed))
		pid = st.PID
		pids = append(pids, pid)
	}
	t.Logf("backoff delays after %d kills: %s", kills, durations(delays))
	t.Logf("kill -> restarted kubelet:     %s", durations(gaps))
	for i, dl := range delays {
		exp := backoffInterval(initial, maxInterval, i)
		lo, hi := exp/2-time.Millisecond, min(exp*3/2, maxInterval)+time.Millisecond
		if dl < lo || dl > hi {
			t.Errorf("restart %d: delay %s, want within [%s, %s] (interval %s ±50%%, capped at %s)", i+1, dl, lo, hi, exp, maxInterval)
		}
		if gaps[i] < dl {
			t.Errorf("restart %d: kubelet back %s after the kill, sooner than the delay %s", i+1, gaps[i], dl)
		}
	}
	// At the cap from the 8th restart on (200ms x 1.5^7 > 3s): the last
	// eight waits are all in [1.5s, 3s].
	for i := kills - 8; i < kills; i++ {
		if delays[i] < maxInterval/2 {
			t.Errorf("restart %d: delay %s, want at the cap (%s, -50%% jitter at most)", i+1, delays[i], maxInterval)
		}
	}

	// Stable: the node Ready again, then Ready for StableAfter since the
	// last start. The supervisor resets its backoff then.
	if d, err := c.WaitReady(sup, 3*time.Minute); err != nil {
		t.Fatal(err)
	} else {
		t.Logf("node Ready again %s after the supervisor started", d.Round(time.Millisecond))
	}
	deadline := time.Now().Add(3 * time.Minute)
	for {
		from := lastStart
		if readySince.After(from) {
			from = readySince
		}
		left := time.Until(from.Add(stableAfter + 2*time.Second))
		if ready && left <= 0 {
			t.Logf("Ready since %s, last start %s: stable for %s", readySince.Format(time.TimeOnly), lastStart.Format(time.TimeOnly), time.Since(from).Round(time.Second))
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the node was not Ready for %s in a row (ready=%v)", stableAfter, ready)
		}
		select {
		case e, ok := <-events:
			if !ok {
				t.Fatalf("the supervisor ended: %v\n%s", sup.Err(), sup.Tail(40))
			}
			switch e.Kind {
			case bootstrap.EventHealth:
				t.Logf("health: %s", e.Health)
				if r := e.Health.State == health.Ready; r != ready {
					ready, readySince = r, e.Time
				}
			case bootstrap.EventStarted, bootstrap.EventRestarting, bootstrap.EventUnhealthy:
				t.Fatalf("unexpected %s event while stable: %+v", e.Kind, e)
			}
		case <-time.After(max(left, time.Second)):
		}
	}
	if err := unix.Kill(pid, unix.SIGKILL); err != nil {
		t.Fatalf("SIGKILL kubelet %d: %v", pid, err)
	}
	r := next(bootstrap.EventRestarting, 30*time.Second)
	st := next(bootstrap.EventStarted, 30*time.Second)
	pids = append(pids, st.PID)
	t.Logf("after %s of Ready: delay %s (initial interval %s)", stableAfter, r.Delay.Round(time.Millisecond), initial)
	if r.Delay > initial*3/2+time.Millisecond {
		t.Errorf("delay after a stable period %s, want reset to %s ±50%%", r.Delay, initial)
	}
	if _, err := c.WaitReady(sup, 3*time.Minute); err != nil {
		t.Fatal(err)
	}

	// SIGTERM to the supervisor: it stops kubelet and exits 0, leaving no
	// kubelet of any incarnation behind.
	t0 := time.Now()
	if err := syscall.Kill(sup.PID(), syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case <-sup.Exited():
	case <-time.After(time.Minute):
		t.Fatalf("the supervisor did not exit within a minute of SIGTERM\n%s", sup.Tail(40))
	}
	if err := sup.Err(); err != nil {
		t.Errorf("supervisor exit: %v\n%s", err, sup.Tail(40))
	}
	t.Logf("supervisor and kubelet stopped %s after SIGTERM", time.Since(t0).Round(time.Millisecond))
	var stopping, stopped *bootstrap.Event
	for e := range events {
		switch e.Kind {
		case bootstrap.EventStopping:
			stopping = &e
		case bootstrap.EventStopped:
			stopped = &e
		}
	}
	if stopping == nil || stopping.Reason != "shutdown" || stopped == nil || stopped.PID != st.PID {
		t.Errorf("shutdown events: stopping %+v, stopped %+v; want both, for kubelet %d", stopping, stopped, st.PID)
	} else {
		t.Logf("kubelet %d: %s", stopped.PID, stopped.Reason)
	}
	for _, p := range pids {
		if err := unix.Kill(p, 0); err == nil {
			b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/stat", p))
			if !strings.Contains(string(b), ") Z ") {
				t.Errorf("kubelet pid %d still runs: %s", p, b)
			}
		}
	}
}

func durations(ds []time.Duration) string {
	var s []string
	for _, d := range ds {
		s = append(s, d.Round(10*time.Millisecond).String())
	}
	return strings.Join(s, " ")
}

// backoffInterval is restart i's (0-based) un-jittered interval: initial
// x 1.5^i, capped.
func backoffInterval(initial, maxI time.Duration, i int) time.Duration {
	d := float64(initial)
	for range i {
		d *= 1.5
	}
	return min(time.Duration(d), maxI)
}

// envSupervise holds the helperConfig of the supervisor mode.
const envSupervise = "NODEBOOT_E2E_SUPERVISE"

type helperConfig struct {
	Root            string
	Argv            []string
	Kubeconfig      string
	NodeName        string
	InitialInterval time.Duration
	MaxInterval     time.Duration
	StableAfter     time.Duration
	StopTimeout     time.Duration
}

// init runs the supervisor mode before TestMain: only once the sandbox is
// set up (sandbox.Main re-executes the binary without its variable).
func init() {
	raw, ok := os.LookupEnv(envSupervise)
	if !ok {
		return
	}
	if _, inSetup := os.LookupEnv(sandbox.EnvSpec); inSetup {
		return
	}
	if err := superviseMain(raw); err != nil {
		fmt.Fprintf(os.Stderr, "supervise: %v\n", err)
		os.Exit(1)
	}
	os.Exit(0)
}

// superviseMain is "nodeboot up" in miniature: kubelet under Launch,
// supervised, with health.Watch feeding the supervisor. SIGTERM stops it.
func superviseMain(raw string) error {
	var hc helperConfig
	if err := json.Unmarshal([]byte(raw), &hc); err != nil {
		return fmt.Errorf("parse %s: %w", envSupervise, err)
	}
	os.Unsetenv(envSupervise)
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	evOut := os.NewFile(3, "events")
	enc := json.NewEncoder(evOut)

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	prof, err := profile.Load("k3s")
	if err != nil {
		return err
	}
	rc, err := clientcmd.BuildConfigFromFlags("", hc.Kubeconfig)
	if err != nil {
		return err
	}
	rc.Proxy = func(*http.Request) (*url.URL, error) { return nil, nil }
	statuses := make(chan health.Status)
	wctx, wcancel := context.WithCancel(ctx)
	watchDone := make(chan error, 1)
	go func() {
		watchDone <- health.Watch(wctx, health.Config{REST: rc, NodeName: hc.NodeName, Logger: log.With("component", "health")},
			func(s health.Status) {
				select {
				case statuses <- s:
				case <-wctx.Done():
				}
			})
	}()
	err = bootstrap.Supervise(ctx, bootstrap.SuperviseConfig{
		Start: func(ctx context.Context) (*bootstrap.Process, error) {
			return bootstrap.Launch(ctx, bootstrap.LaunchConfig{
				Profile: prof, Root: hc.Root,
				Path: hc.Argv[0], Args: hc.Argv, Env: os.Environ(),
				Stdout: os.Stdout, Stderr: os.Stderr,
				Logger: log.With("component", "launch"),
			})
		},
		Health:          statuses,
		InitialInterval: hc.InitialInterval,
		MaxInterval:     hc.MaxInterval,
		StableAfter:     hc.StableAfter,
		StopTimeout:     hc.StopTimeout,
		MaxRestarts:     -1,
		OnEvent: func(e bootstrap.Event) {
			if err := enc.Encode(e); err != nil && !errors.Is(err, io.ErrClosedPipe) {
				log.Warn("event pipe", "err", err)
			}
		},
		Logger: log.With("component", "supervise"),
	})
	wcancel()
	<-watchDone
	return err
}
