//go:build linux && !nointegration

package bootstrap

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	clocktesting "k8s.io/utils/clock/testing"

	"github.com/nodeboot/nodeboot/health"
	"github.com/nodeboot/nodeboot/internal/testenv"
	"github.com/nodeboot/nodeboot/profile"
)

// These tests supervise real /bin/sh scripts started with Launch (the
// built-in k3s profile, the real tracer). Only the readiness statuses are
// fed by the test, through SuperviseConfig.Health, which is the API the
// real watcher uses.

// shStarter returns a Start function that launches script i (the last
// one once i runs past the list) for incarnation i.
func shStarter(t *testing.T, root string, scripts ...string) func(context.Context) (*Process, error) {
	prof := k3sProfile(t)
	log := testLogger(t)
	n := 0
	return func(ctx context.Context) (*Process, error) {
		s := scripts[min(n, len(scripts)-1)]
		n++
		return Launch(ctx, LaunchConfig{
			Profile: prof, Root: root, Path: "/bin/sh", Args: []string{"sh", "-c", s},
			Logger: log,
		})
	}
}

// supervise runs Supervise in a goroutine and returns its result
// channel. Cleanup waits for it, so that no event is logged after the test
// (the test's deferred cancel runs first).
func supervise(t *testing.T, ctx context.Context, cfg SuperviseConfig) <-chan error {
	done := make(chan error, 1)
	finished := make(chan struct{})
	go func() {
		err := Supervise(ctx, cfg)
		close(finished)
		done <- err
	}()
	t.Cleanup(func() {
		select {
		case <-finished:
		case <-time.After(time.Minute):
			t.Error("Supervise still running a minute after the test")
		}
	})
	return done
}

// expected is the un-jittered backoff interval of restart i (0-based).
func expected(initial, maxI time.Duration, i int) time.Duration {
	d := float64(initial)
	for range i {
		d *= 1.5
	}
	return min(time.Duration(d), maxI)
}

// stepBackoffs steps fc through the backoff wait of each of n restarts:
// with the fake clock, a backoff passes when the test says so, and exactly
// by its delay.
func stepBackoffs(t *testing.T, rec *recorder, fc *clocktesting.FakeClock, n int) {
	t.Helper()
	for range n {
		e := rec.wait(EventRestarting, time.Minute)
		waitTimers(t, fc, 1)
		fc.Step(e.Delay)
	}
}

func TestIntegrationSuperviseRestartsExitsWithGrowingBackoff(t *testing.T) {
	requireLaunch(t)
	const (
		initial = 50 * time.Millisecond
		maxI    = 400 * time.Millisecond
		max     = 10
	)
	rec := newRecorder(t)
	fc := newFakeClock()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	done := supervise(t, ctx, SuperviseConfig{
		Start:           shStarter(t, t.TempDir(), "exit 3"),
		InitialInterval: initial,
		MaxInterval:     maxI,
		StableAfter:     time.Minute,
		StopTimeout:     5 * time.Second,
		MaxRestarts:     max,
		OnEvent:         rec.on,
		Logger:          testLogger(t),
		Clock:           fc,
	})
	stepBackoffs(t, rec, fc, max)
	err := <-done
	want := fmt.Sprintf("gave up after %d restarts: command exited with status 3", max)
	if err == nil || err.Error() != want {
		t.Fatalf("Supervise = %v, want %q", err, want)
	}
	started, restarting := rec.all(EventStarted), rec.all(EventRestarting)
	if len(started) != max+1 || len(restarting) != max || len(rec.all(EventExited)) != max+1 || len(rec.all(EventGaveUp)) != 1 {
		t.Fatalf("started %d, restarting %d, exited %d, gave-up %d times; want %d, %d, %d, 1",
			len(started), len(restarting), len(rec.all(EventExited)), len(rec.all(EventGaveUp)), max+1, max, max+1)
	}
	var delays []string
	for i, e := range restarting {
		exp := expected(initial, maxI, i)
		// ±50% jitter around the interval, never past the cap (1ms of
		// slack for float rounding here and in the backoff package).
		lo, hi := exp/2-time.Millisecond, min(exp*3/2, maxI)+time.Millisecond
		if e.Delay < lo || e.Delay > hi {
			t.Errorf("restart %d: delay %s, want within [%s, %s]", i+1, e.Delay, lo, hi)
		}
		if e.Restarts != i+1 {
			t.Errorf("restart %d: Restarts = %d", i+1, e.Restarts)
		}
		// The clock moved only by the backoff: the next start waited for
		// it, and for nothing else.
		if gap := started[i+1].Time.Sub(started[i].Time); gap != e.Delay {
			t.Errorf("restart %d: started %s after the previous start, want the delay %s", i+1, gap, e.Delay)
		}
		delays = append(delays, e.Delay.Round(time.Millisecond).String())
	}
	t.Logf("backoff delays: %s", strings.Join(delays, " "))
	// Growth despite the jitter: the last three waits (at the cap) add
	// up to more than the first three (around 50, 75, 112ms) can.
	var first, last time.Duration
	for i := range 3 {
		first += restarting[i].Delay
		last += restarting[len(restarting)-1-i].Delay
	}
	if last <= first*2 {
		t.Errorf("delays do not grow: first three %s, last three %s", first, last)
	}
}

func TestIntegrationSuperviseBackoffResetsAfterStable(t *testing.T) {
	requireLaunch(t)
	const (
		initial = 50 * time.Millisecond
		maxI    = 400 * time.Millisecond
		stable  = 1500 * time.Millisecond
	)
	rec := newRecorder(t)
	fc := newFakeClock()
	logger, resetSeen := watchLog(t, "stable; backoff reset")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	// Six quick exits, one incarnation that runs past StableAfter (on the
	// fake clock; the test kills it then), then quick exits again. On the
	// fake clock the quick ones run for no time at all, however slowly
	// the machine starts them.
	quick := "exit 1"
	done := supervise(t, ctx, SuperviseConfig{
		Start:           shStarter(t, t.TempDir(), quick, quick, quick, quick, quick, quick, "exec sleep 1000", quick),
		InitialInterval: initial,
		MaxInterval:     maxI,
		StableAfter:     stable,
		StopTimeout:     5 * time.Second,
		MaxRestarts:     8,
		OnEvent:         rec.on,
		Logger:          logger,
		Clock:           fc,
	})
	stepBackoffs(t, rec, fc, 6)
	long := rec.wait(EventStarted, time.Minute) // the 7th
	// The stable timer is armed from the start; step until Supervise has
	// seen it fire (a step before it is armed only moves the start of
	// nothing), then end the incarnation.
	for stepped := false; !stepped; {
		fc.Step(stable)
		select {
		case <-resetSeen:
			stepped = true
		case <-time.After(50 * time.Millisecond):
		}
	}
	if err := unix.Kill(long.PID, unix.SIGKILL); err != nil {
		t.Fatalf("kill the long incarnation %d: %v", long.PID, err)
	}
	stepBackoffs(t, rec, fc, 2)
	err := <-done
	if err == nil || !strings.Contains(err.Error(), "gave up after 8 restarts") {
		t.Fatalf("Supervise = %v, want gave up after 8 restarts", err)
	}
	r := rec.all(EventRestarting)
	if len(r) != 8 {
		t.Fatalf("%d restarts, want 8", len(r))
	}
	var delays []string
	for _, e := range r {
		delays = append(delays, e.Delay.Round(time.Millisecond).String())
	}
	t.Logf("backoff delays: %s (the 7th follows the stable incarnation)", strings.Join(delays, " "))
	// Restart 6 follows five growths: around 380ms. Restart 7 follows
	// the stable run: back to the initial interval, then growing again.
	if d := r[5].Delay; d < expected(initial, maxI, 5)/2 {
		t.Errorf("restart 6: delay %s, want grown to about %s", d, expected(initial, maxI, 5))
	}
	if d := r[6].Delay; d > initial*3/2+time.Millisecond {
		t.Errorf("restart 7 (after %s stable): delay %s, want reset to about %s", stable, d, initial)
	}
	if d := r[7].Delay; d < initial*3/4-time.Millisecond || d > initial*9/4+time.Millisecond {
		t.Errorf("restart 8: delay %s, want about %s", d, initial*3/2)
	}
}

// pidsFrom reads the "name pid" lines a script wrote, once n are there.
func pidsFrom(t *testing.T, file string, n int) map[string]int {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		b, _ := os.ReadFile(file)
		pids := map[string]int{}
		for _, l := range strings.Split(string(b), "\n") {
			if name, v, ok := strings.Cut(l, " "); ok {
				if p, err := strconv.Atoi(v); err == nil {
					pids[name] = p
				}
			}
		}
		if len(pids) >= n {
			return pids
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s holds %q; want %d PIDs", file, b, n)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// leftBehind reports whether pid still runs, and what /proc says of it.
// A zombie whose parent is init is dead: the traced tree is gone, and init
// (slow to reap in some containers) will take it; gone waits a little for
// that so that the usual case shows a clean /proc.
func leftBehind(pid int) (bool, string) {
	deadline := time.Now().Add(5 * time.Second)
	for {
		if err := unix.Kill(pid, 0); errors.Is(err, unix.ESRCH) {
			return false, "gone"
		}
		st := procState(pid)
		if time.Now().After(deadline) {
			return !strings.Contains(st, "State: Z"), st
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// sessionOf returns the session id of pid from /proc.
func sessionOf(pid int) int {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return -1
	}
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	if len(f) < 4 {
		return -1
	}
	sid, _ := strconv.Atoi(f[3])
	return sid
}

func TestIntegrationSuperviseShutdownStopsTree(t *testing.T) {
	requireLaunch(t)
	testenv.LookPath(t, "setsid")
	// k3s emulates cgroup2, so the virtual kernel also knows every
	// process; empty does not, and only the tracer does.
	for _, name := range []string{"k3s", "empty"} {
		t.Run(name, func(t *testing.T) { testShutdownStopsTree(t, name) })
	}
}

func testShutdownStopsTree(t *testing.T, profileName string) {
	prof, err := profile.Load(profileName)
	if err != nil {
		t.Fatalf("load profile %s: %v", profileName, err)
	}
	dir := t.TempDir()
	pidFile := filepath.Join(dir, "pids")
	// The command leaves three processes: a grandchild in a session of
	// its own (as containerd's shims are) that records the SIGTERM it
	// gets (its sleep ignores SIGTERM, so only the grandchild's own SIGTERM
	// can end its wait), a child that ignores SIGTERM (it needs the SIGKILL
	// after StopTimeout) and a plain child.
	script := fmt.Sprintf(`
setsid sh -c 'trap "" TERM; sleep 1000 & trap "echo termed \$\$ >> %[1]s; exit 0" TERM; echo setsid $$ >> %[1]s; wait' &
sh -c 'trap "" TERM; echo noterm $$ >> %[1]s; while :; do sleep 1; done' &
sleep 1000 &
echo child $! >> %[1]s
echo command $$ >> %[1]s
wait
`, pidFile)
	const stopTimeout = 1500 * time.Millisecond
	rec := newRecorder(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := supervise(t, ctx, SuperviseConfig{
		Start: func(ctx context.Context) (*Process, error) {
			return Launch(ctx, LaunchConfig{
				Profile: prof, Root: filepath.Join(dir, "root"), Path: "/bin/sh", Args: []string{"sh", "-c", script},
				Logger: testLogger(t),
			})
		},
		StopTimeout: stopTimeout,
		OnEvent:     rec.on,
		Logger:      testLogger(t),
	})
	started := rec.wait(EventStarted, 30*time.Second)
	pids := pidsFrom(t, pidFile, 4)
	t.Logf("command %d; tree %v", started.PID, pids)
	if sid := sessionOf(pids["setsid"]); sid != pids["setsid"] {
		t.Fatalf("setsid grandchild %d: session %d, want its own", pids["setsid"], sid)
	}
	if pids["command"] != started.PID {
		t.Fatalf("the script says it is %d, the started event %d", pids["command"], started.PID)
	}
	t0 := time.Now()
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Supervise after cancel = %v, want nil", err)
		}
	case <-time.After(stopTimeout + 30*time.Second):
		t.Fatal("Supervise did not return after cancel")
	}
	took := time.Since(t0)
	t.Logf("shutdown took %s (StopTimeout %s)", took.Round(time.Millisecond), stopTimeout)
	if took < stopTimeout {
		t.Errorf("shutdown took %s: the SIGTERM-ignoring child cannot be gone before the SIGKILL at %s", took, stopTimeout)
	}
	// The grandchild is in no process group or session of the command:
	// only a signal to every traced process gives it its SIGTERM, and
	// with it the chance to stop cleanly (a shim, a database) before the
	// SIGKILL.
	if b, _ := os.ReadFile(pidFile); !strings.Contains(string(b), fmt.Sprintf("termed %d\n", pids["setsid"])) {
		t.Errorf("the setsid grandchild %d did not get SIGTERM before SIGKILL; its trap did not run:\n%s", pids["setsid"], b)
	}
	for name, pid := range pids {
		left, st := leftBehind(pid)
		if left {
			t.Errorf("%s pid %d (%s) is left after Supervise returned", name, pid, st)
		} else {
			t.Logf("%s pid %d: %s", name, pid, st)
		}
	}
	if n := len(rec.all(EventRestarting)); n != 0 {
		t.Errorf("%d restarts during shutdown, want 0", n)
	}
	st := rec.all(EventStopping)
	if len(st) != 1 || st[0].Reason != "shutdown" {
		t.Errorf("stopping events %+v, want one with reason shutdown", st)
	}
	if s := rec.all(EventStopped); len(s) != 1 || s[0].Stats == nil {
		t.Errorf("stopped events %+v, want one with stats", s)
	} else if !strings.Contains(s[0].Reason, "signal 15") {
		t.Errorf("stopped: %q, want the command ended by SIGTERM", s[0].Reason)
	}
}

// procState is the Name, State and Tgid lines of /proc/PID/status.
func procState(pid int) string {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return err.Error()
	}
	var out []string
	for _, l := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(l, "Name:") || strings.HasPrefix(l, "State:") || strings.HasPrefix(l, "PPid:") {
			out = append(out, strings.Join(strings.Fields(l), " "))
		}
	}
	return strings.Join(out, "; ")
}

func TestIntegrationSuperviseRestartsWhenNotReady(t *testing.T) {
	requireLaunch(t)
	const (
		startGrace    = 400 * time.Millisecond
		notReadyGrace = 300 * time.Millisecond
	)
	rec := newRecorder(t)
	fc := newFakeClock()
	hc := make(chan health.Status)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	done := supervise(t, ctx, SuperviseConfig{
		Start:           shStarter(t, t.TempDir(), "exec sleep 1000"),
		Health:          hc,
		StartGrace:      startGrace,
		NotReadyGrace:   notReadyGrace,
		StopTimeout:     5 * time.Second,
		InitialInterval: 50 * time.Millisecond,
		MaxInterval:     100 * time.Millisecond,
		MaxRestarts:     1,
		OnEvent:         rec.on,
		Logger:          testLogger(t),
		Clock:           fc,
	})
	// send hands Supervise a status. The channel is unbuffered: once a
	// send is taken, Supervise has finished with the one before.
	send := func(st health.State, reason, msg string) {
		t.Helper()
		select {
		case hc <- health.Status{State: st, Reason: reason, Message: msg, Since: fc.Now()}:
		case <-time.After(30 * time.Second):
			t.Fatalf("Supervise did not take the %s status", st)
		}
	}
	// notYet checks that the not-Ready timer has not fired: it is still
	// armed, and no more than before unhealthy events were reported.
	notYet := func(what string, before int) {
		t.Helper()
		if n := fc.Waiters(); n != 1 {
			t.Fatalf("%s: %d timers armed, want the not-Ready one", what, n)
		}
		if n := len(rec.all(EventUnhealthy)); n != before {
			t.Fatalf("%s: %d unhealthy events, want %d", what, n, before)
		}
	}

	// 1. Not Ready right from the start: the StartGrace does not count,
	// so the restart comes StartGrace+NotReadyGrace after the start, to
	// the millisecond on the fake clock.
	first := rec.wait(EventStarted, 30*time.Second)
	send(health.NotReady, "KubeletNotReady", "container runtime network not ready")
	waitTimers(t, fc, 1)
	fc.Step(startGrace + notReadyGrace - time.Millisecond)
	notYet("1ms before StartGrace+NotReadyGrace", 0)
	fc.Step(time.Millisecond)
	un := rec.wait(EventUnhealthy, 30*time.Second)
	if d := un.Time.Sub(first.Time); d != startGrace+notReadyGrace {
		t.Errorf("unhealthy %s after the start, want StartGrace+NotReadyGrace = %s", d, startGrace+notReadyGrace)
	}
	if want := "NotReady for 300ms: KubeletNotReady container runtime network not ready"; un.Reason != want {
		t.Errorf("unhealthy reason %q, want %q", un.Reason, want)
	}
	stopped := rec.wait(EventStopped, 30*time.Second)
	if stopped.PID != first.PID || !strings.Contains(stopped.Reason, "signal 15") {
		t.Errorf("stopped %+v: want pid %d ended by SIGTERM", stopped, first.PID)
	}
	if left, st := leftBehind(first.PID); left {
		t.Errorf("pid %d still there after the restart's stop (%s)", first.PID, st)
	}
	stepBackoffs(t, rec, fc, 1)
	restart := rec.all(EventRestarting)[0]
	if restart.Reason != un.Reason || restart.Restarts != 1 {
		t.Errorf("restarting %+v, want reason %q and 1 restart", restart, un.Reason)
	}
	second := rec.wait(EventStarted, 30*time.Second)

	// 2. Ready, then not Ready through three states that each last less
	// than the grace: the stretch is continuous, so it still counts.
	send(health.Ready, "KubeletReady", "kubelet is posting ready status")
	fc.Step(startGrace) // past the StartGrace: not-Ready counts at once now
	t0 := fc.Now()
	send(health.Stale, "LeaseExpired", "lease last renewed 52s ago")
	fc.Step(notReadyGrace / 3)
	send(health.Unreachable, "ConnectionRefused", "dial tcp 127.0.0.1:6443: connect: connection refused")
	fc.Step(notReadyGrace / 3)
	send(health.NotRegistered, "", "node not found")
	fc.Step(notReadyGrace - 2*(notReadyGrace/3) - time.Millisecond)
	notYet("1ms before NotReadyGrace after leaving Ready", 1)
	fc.Step(time.Millisecond)
	select {
	case err := <-done:
		want := "gave up after 1 restarts: NodeNotRegistered for 300ms: node not found"
		if err == nil || err.Error() != want {
			t.Fatalf("Supervise = %v, want %q", err, want)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("Supervise did not give up")
	}
	if un := rec.all(EventUnhealthy); len(un) != 2 || un[1].Time.Sub(t0) != notReadyGrace {
		t.Errorf("unhealthy events %+v: want the second one NotReadyGrace (%s) after the node left Ready", un, notReadyGrace)
	}
	if left, st := leftBehind(second.PID); left {
		t.Errorf("pid %d still there after Supervise gave up (%s)", second.PID, st)
	}
	if n := len(rec.all(EventHealth)); n != 5 {
		t.Errorf("%d health events, want 5 (one per status sent)", n)
	}
}

// TestIntegrationSuperviseHealthyIsLeftAlone: not-Ready blips shorter than
// the grace, each ended by Ready, never add up to a restart. On the fake
// clock each blip lasts exactly half the grace.
func TestIntegrationSuperviseHealthyIsLeftAlone(t *testing.T) {
	requireLaunch(t)
	const (
		startGrace    = 100 * time.Millisecond
		notReadyGrace = 200 * time.Millisecond
	)
	rec := newRecorder(t)
	fc := newFakeClock()
	hc := make(chan health.Status)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := supervise(t, ctx, SuperviseConfig{
		Start:         shStarter(t, t.TempDir(), "exec sleep 1000"),
		Health:        hc,
		StartGrace:    startGrace,
		NotReadyGrace: notReadyGrace,
		StopTimeout:   5 * time.Second,
		MaxRestarts:   0,
		OnEvent:       rec.on,
		Logger:        testLogger(t),
		Clock:         fc,
	})
	send := func(st health.State) {
		t.Helper()
		select {
		case hc <- health.Status{State: st, Reason: "Kubelet" + string(st), Since: fc.Now()}:
		case <-time.After(30 * time.Second):
			t.Fatalf("Supervise did not take the %s status", st)
		}
	}
	rec.wait(EventStarted, 30*time.Second)
	fc.Step(startGrace)
	for range 4 {
		send(health.NotReady)
		fc.Step(notReadyGrace / 2)
		send(health.Ready)
		fc.Step(notReadyGrace / 2)
	}
	// Taken: Supervise is done with the last Ready. Had a not-Ready timer
	// been left armed across a Ready, the steps above (800ms in all, four
	// times the grace) would have fired it, and with nothing else to do
	// Supervise reports it at once.
	send(health.Ready)
	quiet := time.After(time.Second)
	for over := false; !over; {
		select {
		case e := <-rec.ch:
			if e.Kind == EventUnhealthy {
				t.Fatalf("unhealthy for not-Ready blips shorter than the grace: %+v", e)
			}
		case <-quiet:
			over = true
		}
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Supervise = %v, want nil", err)
	}
	if n := len(rec.all(EventUnhealthy)); n != 0 {
		t.Errorf("%d unhealthy events for not-Ready blips shorter than the grace", n)
	}
	if n := len(rec.all(EventStarted)); n != 1 {
		t.Errorf("started %d times, want 1", n)
	}
}

// TestIntegrationSuperviseExcuse: an agent's API server away for longer
// than the grace is no reason to restart while Excuse says the command is
// fine (its kubelet answers /healthz): an excused event each grace, no
// restart. The NotReady after the outage is counted from its own start,
// not from the outage's. An outage Excuse does not excuse (the kubelet is
// unhealthy too) restarts as before.
func TestIntegrationSuperviseExcuse(t *testing.T) {
	requireLaunch(t)
	const (
		startGrace    = 100 * time.Millisecond
		notReadyGrace = 300 * time.Millisecond
	)
	rec := newRecorder(t)
	fc := newFakeClock()
	hc := make(chan health.Status)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var kubeletHealthy atomic.Bool
	kubeletHealthy.Store(true)
	var asked atomic.Int64
	done := supervise(t, ctx, SuperviseConfig{
		Start:           shStarter(t, t.TempDir(), "exec sleep 1000"),
		Health:          hc,
		StartGrace:      startGrace,
		NotReadyGrace:   notReadyGrace,
		StopTimeout:     5 * time.Second,
		InitialInterval: 50 * time.Millisecond,
		MaxInterval:     100 * time.Millisecond,
		MaxRestarts:     1,
		Excuse: func(_ context.Context, st health.Status) (string, bool) {
			asked.Add(1)
			if st.State == health.Unreachable && kubeletHealthy.Load() {
				return "kubelet healthy", true
			}
			return "", false
		},
		OnEvent: rec.on,
		Logger:  testLogger(t),
		Clock:   fc,
	})
	send := func(st health.State) {
		t.Helper()
		select {
		case hc <- health.Status{State: st, Reason: "Test" + string(st), Since: fc.Now()}:
		case <-time.After(30 * time.Second):
			t.Fatalf("Supervise did not take the %s status", st)
		}
	}
	first := rec.wait(EventStarted, 30*time.Second)
	send(health.Ready)
	fc.Step(startGrace)

	// 1. The API away for three graces: excused at each, no restart.
	send(health.Unreachable)
	for i := range 3 {
		waitTimers(t, fc, 1)
		fc.Step(notReadyGrace)
		e := rec.wait(EventExcused, 30*time.Second)
		if e.PID != first.PID || e.Reason != "kubelet healthy" || e.Restarts != 0 {
			t.Fatalf("excused event %d: %+v; want pid %d, reason %q, no restart", i+1, e, first.PID, "kubelet healthy")
		}
	}
	// 2. Back, NotReady (the kubelet not yet through to it): counted from
	// now, so 1ms short of the grace is no restart.
	waitTimers(t, fc, 1)
	t0 := fc.Now()
	send(health.NotReady)
	fc.Step(notReadyGrace - time.Millisecond)
	time.Sleep(100 * time.Millisecond)
	if n := len(rec.all(EventUnhealthy)); n != 0 {
		t.Fatalf("%d unhealthy events 1ms before the grace of the NotReady after the outage: the outage was added to it", n)
	}
	fc.Step(time.Millisecond)
	un := rec.wait(EventUnhealthy, 30*time.Second)
	if d := un.Time.Sub(t0); d != notReadyGrace {
		t.Errorf("unhealthy %s after NotReady began, want the grace %s", d, notReadyGrace)
	}
	stepBackoffs(t, rec, fc, 1)
	rec.wait(EventStarted, 30*time.Second)

	// 3. The API away and the kubelet unhealthy too: a restart (here the
	// last one allowed, so Supervise gives up).
	kubeletHealthy.Store(false)
	send(health.Ready)
	fc.Step(startGrace)
	send(health.Unreachable)
	waitTimers(t, fc, 1)
	fc.Step(notReadyGrace)
	select {
	case err := <-done:
		if err == nil || !strings.Contains(err.Error(), "APIUnreachable for 300ms") {
			t.Errorf("Supervise = %v, want it to give up on APIUnreachable", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("Supervise did not give up")
	}
	if n := len(rec.all(EventExcused)); n != 3 {
		t.Errorf("%d excused events, want 3", n)
	}
	if n := asked.Load(); n != 5 {
		t.Errorf("Excuse asked %d times, want 5 (three outages excused, the NotReady, the last outage)", n)
	}
}
