//go:build linux && !nointegration

package bootstrap

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/nodeboot/nodeboot/health"
	"github.com/nodeboot/nodeboot/internal/testenv"
)

// keepShimScript stands in for containerd-shim-runc-v2's daemon: it moves
// itself into a pod's cgroup of the virtual kernel, starts its "container"
// (a sleep), and answers {D}/go by reading, through the tracer, files the
// virtual kernel serves. Its file is named containerd-shim-test, which is
// what marks it as a shim.
const keepShimScript = `#!/bin/sh
mkdir -p /sys/fs/cgroup/kubepods/pod1
echo $$ > /sys/fs/cgroup/kubepods/pod1/cgroup.procs
sleep 1000 &
echo "container $!" >> {D}/pids
echo "shim $$" >> {D}/pids
while :; do
	if [ -e {D}/go ]; then
		{
			echo "cgroup=$(cat /proc/self/cgroup)"
			echo "procs=$(cat /sys/fs/cgroup/kubepods/pod1/cgroup.procs | tr '\n' ' ')"
			echo "ctl=$(cat /sys/fs/cgroup/cgroup.controllers)"
		} > {D}/out.tmp
		mv {D}/out.tmp {D}/out
		rm {D}/go
	fi
	sleep 0.05
done
`

// keepCommandScript stands in for k3s: a helper child (containerd, which
// a restart must end even once it is reparented) and, the first time, a
// shim daemonized as containerd starts one (a child that forks the
// daemon into a session of its own and exits, so that the daemon's parent
// is gone). Each run says which pod cgroups it sees.
const keepCommandScript = `
echo "command $$" >> {D}/pids
sleep 1000 &
echo "helper-$$ $!" >> {D}/pids
if [ ! -e {D}/started ]; then
	: > {D}/started
	( setsid {D}/bin/containerd-shim-test & )
fi
echo "sees-$$ pod1=$(test -d /sys/fs/cgroup/kubepods/pod1 && echo yes)" >> {D}/pids
wait
`

// TestIntegrationSuperviseKeepsShims: a restart of a Process launched with
// KeepShims ends the command and its helper but keeps the shim and its
// container: the same processes, still traced by this test's tracer and
// still served by the same virtual kernel (their pod cgroup kept); the
// next incarnation runs in the same trace. Shutdown ends everything.
func TestIntegrationSuperviseKeepsShims(t *testing.T) {
	requireLaunch(t)
	testenv.LookPath(t, "setsid")
	dir := t.TempDir()
	exp := func(s string) string { return strings.ReplaceAll(s, "{D}", dir) }
	if err := os.MkdirAll(filepath.Join(dir, "bin"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "bin", "containerd-shim-test"), []byte(exp(keepShimScript)), 0o755); err != nil {
		t.Fatal(err)
	}
	pidFile := filepath.Join(dir, "pids")
	prof := k3sProfile(t)
	rec := newRecorder(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	const stopTimeout = 2 * time.Second
	launches := 0
	// Health drives the second restart: NotReady for longer than the
	// grace.
	hc := make(chan health.Status, 4)
	done := supervise(t, ctx, SuperviseConfig{
		Health:        hc,
		StartGrace:    time.Millisecond,
		NotReadyGrace: 300 * time.Millisecond,
		Start: func(ctx context.Context) (*Process, error) {
			launches++
			return Launch(ctx, LaunchConfig{
				Profile: prof, Root: filepath.Join(dir, "root"), Path: "/bin/sh", Args: []string{"sh", "-c", exp(keepCommandScript)},
				Logger: testLogger(t), KeepShims: true,
			})
		},
		StopTimeout:     stopTimeout,
		MaxRestarts:     -1,
		InitialInterval: 100 * time.Millisecond,
		MaxInterval:     200 * time.Millisecond,
		OnEvent:         rec.on,
		Logger:          testLogger(t),
	})
	first := rec.wait(EventStarted, 30*time.Second)
	pids := pidsFrom(t, pidFile, 4)
	shim, container := pids["shim"], pids["container"]
	helper1 := pids[fmt.Sprintf("helper-%d", first.PID)]
	if shim == 0 || container == 0 || helper1 == 0 {
		t.Fatalf("pids %v", pids)
	}
	if sid := sessionOf(shim); sid == sessionOf(first.PID) {
		t.Fatalf("shim %d is in the command's session %d", shim, sid)
	}
	checkTracedHere(t, shim)
	checkTracedHere(t, container)

	// The command dies as a SIGKILLed k3s does; the supervisor restarts it.
	killed := time.Now()
	if err := unix.Kill(first.PID, unix.SIGKILL); err != nil {
		t.Fatal(err)
	}
	second := rec.wait(EventStarted, 30*time.Second)
	t.Logf("restarted %s after the kill: command %d -> %d", time.Since(killed).Round(time.Millisecond), first.PID, second.PID)
	if second.PID == first.PID || launches != 1 {
		t.Fatalf("second incarnation %d (first %d), %d launches; want a new command in the same trace (one launch)", second.PID, first.PID, launches)
	}
	pids = pidsFrom(t, pidFile, 5)
	if pids["shim"] != shim {
		t.Errorf("a second shim %d was started (first %d)", pids["shim"], shim)
	}
	for name, pid := range map[string]int{"shim": shim, "container": container} {
		if err := unix.Kill(pid, 0); err != nil {
			t.Fatalf("%s %d is gone after the restart: %v", name, pid, err)
		}
		checkTracedHere(t, pid)
	}
	if left, st := leftBehind(helper1); left {
		t.Errorf("the first command's helper %d (reparented, not a shim) is left after the restart: %s", helper1, st)
	}
	// What the new command sees of the cgroup tree: the shim's pod.
	sees := fmt.Sprintf("sees-%d ", second.PID)
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		b, _ := os.ReadFile(pidFile)
		if strings.Contains(string(b), sees) {
			if !strings.Contains(string(b), sees+"pod1=yes\n") {
				t.Errorf("the second incarnation does not see the shim's pod cgroup:\n%s", b)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no %q line:\n%s", sees, b)
		}
	}
	// The shim still has its calls served: the redirected cgroup tree of
	// the same virtual kernel, its membership kept.
	if err := os.WriteFile(filepath.Join(dir, "go"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	out := waitFor(t, filepath.Join(dir, "out"))
	m := kv(out)
	if m["cgroup"] != "0::/kubepods/pod1" || m["ctl"] != "cpuset cpu io memory pids" ||
		!strings.Contains(" "+m["procs"], " "+strconv.Itoa(shim)+" ") {
		t.Errorf("the shim after the restart reads:\n%s\nwant cgroup 0::/kubepods/pod1, the root's controllers, and itself in pod1's cgroup.procs", out)
	}
	if s := rec.all(EventStopped); len(s) != 0 {
		t.Errorf("stopped events %+v after an exit; want none", s)
	}

	// A restart for not being Ready: SIGTERM to the command and its
	// helper, not to the shim and its container.
	hc <- health.Status{State: health.NotReady, Reason: "TestNotReady", Since: time.Now()}
	rec.wait(EventUnhealthy, 30*time.Second)
	third := rec.wait(EventStarted, 30*time.Second)
	hc <- health.Status{State: health.Ready, Reason: "TestReady", Since: time.Now()}
	if st := rec.all(EventStopped); len(st) != 1 || !strings.Contains(st[0].Reason, "signal 15") {
		t.Errorf("stopped events %+v; want one, the command ended by SIGTERM", st)
	}
	pids = pidsFrom(t, pidFile, 6)
	helper2 := pids[fmt.Sprintf("helper-%d", second.PID)]
	if left, st := leftBehind(helper2); helper2 == 0 || left {
		t.Errorf("the second command's helper %d is left after the restart: %s", helper2, st)
	}
	if pids["shim"] != shim || unix.Kill(shim, 0) != nil || unix.Kill(container, 0) != nil {
		t.Errorf("after the second restart (command %d): shim %d (was %d), container %d alive %v", third.PID, pids["shim"], shim,
			container, unix.Kill(container, 0) == nil)
	}
	checkTracedHere(t, shim)

	// Shutdown: nothing is left, the shim and its container included.
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Supervise after cancel = %v, want nil", err)
		}
	case <-time.After(stopTimeout + 30*time.Second):
		t.Fatal("Supervise did not return after cancel")
	}
	pids = pidsFrom(t, pidFile, 6)
	pids["command3"] = third.PID
	pids["command2"] = second.PID
	pids["command1"] = first.PID
	for name, pid := range pids {
		if left, st := leftBehind(pid); left {
			t.Errorf("%s %d is left after shutdown: %s", name, pid, st)
		}
	}
}

// checkTracedHere fails unless pid's tracer is a thread of this test.
func checkTracedHere(t *testing.T, pid int) {
	t.Helper()
	b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	tp := -1
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "TracerPid:"); ok {
			tp, _ = strconv.Atoi(strings.TrimSpace(v))
		}
	}
	if tp <= 0 {
		t.Fatalf("pid %d is not traced (TracerPid %d)", pid, tp)
	}
	if _, err := os.Stat(fmt.Sprintf("/proc/self/task/%d", tp)); err != nil {
		t.Fatalf("pid %d: its tracer %d is no thread of this test: %v", pid, tp, err)
	}
}

// waitFor waits for file and returns its content.
func waitFor(t *testing.T, file string) string {
	t.Helper()
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if b, err := os.ReadFile(file); err == nil {
			return string(b)
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s never appeared", file)
		}
	}
}

// TestIntegrationSuperviseKeptShimsEnd: the shims kept by a restart end
// when no incarnation follows: a shutdown during the backoff wait, or
// giving up (MaxRestarts).
func TestIntegrationSuperviseKeptShimsEnd(t *testing.T) {
	requireLaunch(t)
	testenv.LookPath(t, "setsid")
	for _, tc := range []struct {
		name        string
		maxRestarts int
	}{
		{"shutdown in backoff", -1},
		{"gave up", 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			exp := func(s string) string { return strings.ReplaceAll(s, "{D}", dir) }
			if err := os.MkdirAll(filepath.Join(dir, "bin"), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(dir, "bin", "containerd-shim-test"), []byte(exp(keepShimScript)), 0o755); err != nil {
				t.Fatal(err)
			}
			prof := k3sProfile(t)
			rec := newRecorder(t)
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			done := supervise(t, ctx, SuperviseConfig{
				Start: func(ctx context.Context) (*Process, error) {
					return Launch(ctx, LaunchConfig{
						Profile: prof, Root: filepath.Join(dir, "root"), Path: "/bin/sh", Args: []string{"sh", "-c", exp(keepCommandScript)},
						Logger: testLogger(t), KeepShims: true,
					})
				},
				StopTimeout: 2 * time.Second,
				MaxRestarts: tc.maxRestarts,
				// Long enough for the test to cancel during the wait.
				InitialInterval: time.Minute,
				MaxInterval:     time.Minute,
				OnEvent:         rec.on,
				Logger:          testLogger(t),
			})
			first := rec.wait(EventStarted, 30*time.Second)
			pids := pidsFrom(t, filepath.Join(dir, "pids"), 4)
			if err := unix.Kill(first.PID, unix.SIGKILL); err != nil {
				t.Fatal(err)
			}
			var err error
			if tc.maxRestarts < 0 {
				rec.wait(EventRestarting, 30*time.Second)
				if unix.Kill(pids["shim"], 0) != nil {
					t.Fatalf("shim %d gone during the backoff wait", pids["shim"])
				}
				cancel()
			}
			select {
			case err = <-done:
			case <-time.After(40 * time.Second):
				t.Fatal("Supervise did not return")
			}
			if (err != nil) != (tc.maxRestarts >= 0) {
				t.Errorf("Supervise = %v", err)
			}
			for name, pid := range pids {
				if left, st := leftBehind(pid); left {
					t.Errorf("%s %d is left after Supervise returned: %s", name, pid, st)
				}
			}
		})
	}
}
