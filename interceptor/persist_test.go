//go:build !nointegration

package interceptor

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/nodeboot/nodeboot/internal/testenv"
)

// persistScript is the command of TestIntegrationPersistSpawn: its first
// run leaves a daemon the way containerd-shim-runc-v2 does (a subshell
// forks it in a session of its own and exits, so the daemon's parent is
// gone), and every run reads a redirected file and logs its pid. The
// daemon reads the redirected file again whenever {T}/go appears.
const persistScript = `
echo "root $$" >> {T}/log
if [ ! -e {T}/daemon ]; then
	: > {T}/daemon
	( setsid sh -c 'echo "daemon $$" >> {T}/log
		while :; do
			if [ -e {T}/go ]; then cat {G}/only-host > {T}/out.tmp; mv {T}/out.tmp {T}/out; rm {T}/go; fi
			sleep 0.05
		done' & )
fi
echo "read-$$ $(cat {G}/only-host)" >> {T}/log
`

// TestIntegrationPersistSpawn: a persistent trace outlives its command,
// keeps tracing what the command left (a daemon whose parent is gone),
// starts the command again with Spawn, and ends with Release.
func TestIntegrationPersistSpawn(t *testing.T) {
	requireIntegration(t)
	testenv.LookPath(t, "setsid")
	for _, mode := range testModes {
		t.Run(mode.String(), func(t *testing.T) { testPersistSpawn(t, mode) })
	}
}

func testPersistSpawn(t *testing.T, mode Mode) {
	tr := newFakeTree(t)
	cfg := Config{
		Path: "/bin/sh", Args: []string{"sh", "-c", tr.expand(persistScript)},
		Rules: tr.rules(), Mode: mode, Persist: true,
	}
	tracer, stdout, stderr, rw, cancel := startTraced(t, cfg)
	defer cancel()
	logf := filepath.Join(tr.T, "log")
	first := tracer.First()
	select {
	case <-first.Exited():
	case <-time.After(20 * time.Second):
		t.Fatalf("the first command did not exit\n%s", stderr)
	}
	if ex := first.Result(); ex.Code != 0 || ex.Signal != 0 {
		t.Fatalf("first command: %v\n%s", ex, stderr)
	}
	daemon := waitLogPID(t, logf, "daemon")
	// Nothing of the command runs but the daemon, and the trace goes on;
	// it would go on with nothing at all (Persist).
	select {
	case <-tracer.Done():
		t.Fatal("the persistent trace ended when its command exited")
	case <-time.After(200 * time.Millisecond):
	}
	checkTracedByUs(t, daemon)

	r2, err := tracer.Spawn()
	if err != nil {
		t.Fatalf("Spawn: %v", err)
	}
	if r2.PID() == first.PID() || r2.PID() <= 0 {
		t.Fatalf("spawned pid %d (first %d)", r2.PID(), first.PID())
	}
	select {
	case <-r2.Exited():
	case <-time.After(20 * time.Second):
		t.Fatalf("the spawned command did not exit\n%s", stderr)
	}
	if ex := r2.Result(); ex.Code != 0 || ex.Signal != 0 {
		t.Fatalf("spawned command: %v\n%s", ex, stderr)
	}
	log, _ := os.ReadFile(logf)
	for _, pid := range []int{first.PID(), r2.PID()} {
		if !strings.Contains(string(log), fmt.Sprintf("read-%d host-only\n", pid)) {
			t.Errorf("command %d did not read the redirected file:\n%s", pid, log)
		}
	}
	if strings.Count(string(log), "daemon ") != 1 {
		t.Errorf("want one daemon:\n%s", log)
	}

	// The daemon, the same process, still traced by this trace and still
	// redirected, after its command's restart.
	checkTracedByUs(t, daemon)
	if err := os.WriteFile(filepath.Join(tr.T, "go"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	out := waitFile(t, filepath.Join(tr.T, "out"))
	if out != "host-only" {
		t.Errorf("the daemon read %q after the restart, want the redirect's host-only", out)
	}

	// Release and Kill: nothing is left, and Wait returns.
	tracer.Release()
	tracer.Kill()
	res := finishTraced(t, cfg, tracer, stdout, stderr, rw, cancel)
	if res.waitErr != nil {
		t.Errorf("Wait: %v", res.waitErr)
	}
	if err := unix.Kill(daemon, 0); err == nil && !strings.Contains(procStatusLine(daemon, "State:"), "Z") {
		t.Errorf("daemon %d still runs after Release and Kill", daemon)
	}
	if _, err := tracer.Spawn(); err == nil {
		t.Error("Spawn after the trace ended succeeded")
	}
	t.Logf("daemon %d, commands %d and %d; stats: %d stops", daemon, first.PID(), r2.PID(), res.stats.Stops)
}

// TestIntegrationPersistReleaseEnds: a released persistent trace ends
// with its last process, and Spawn is refused.
func TestIntegrationPersistReleaseEnds(t *testing.T) {
	requireIntegration(t)
	cfg := Config{Path: "/bin/sh", Args: []string{"sh", "-c", "sleep 0.2"}, Persist: true}
	tracer, stdout, stderr, rw, cancel := startTraced(t, cfg)
	defer cancel()
	<-tracer.Exited()
	select {
	case <-tracer.Done():
		t.Fatal("the persistent trace ended before Release")
	case <-time.After(100 * time.Millisecond):
	}
	tracer.Release()
	res := finishTraced(t, cfg, tracer, stdout, stderr, rw, cancel)
	if res.waitErr != nil || res.exit.Code != 0 {
		t.Errorf("Wait: %v, %v", res.exit, res.waitErr)
	}
	if _, err := tracer.Spawn(); err == nil {
		t.Error("Spawn after Release succeeded")
	}
	// Without Persist, Spawn is refused.
	cfg2 := Config{Path: "/bin/true"}
	tr2, o2, e2, rw2, c2 := startTraced(t, cfg2)
	if _, err := tr2.Spawn(); err == nil {
		t.Error("Spawn without Persist succeeded")
	}
	finishTraced(t, cfg2, tr2, o2, e2, rw2, c2)
}

// checkTracedByUs fails unless pid's tracer is a thread of this process.
func checkTracedByUs(t *testing.T, pid int) {
	t.Helper()
	v := strings.TrimSpace(strings.TrimPrefix(procStatusLine(pid, "TracerPid:"), "TracerPid:"))
	tp, err := strconv.Atoi(v)
	if err != nil || tp == 0 {
		t.Fatalf("pid %d: TracerPid %q; want a thread of this test", pid, v)
	}
	if _, err := os.Stat(fmt.Sprintf("/proc/self/task/%d", tp)); err != nil {
		t.Fatalf("pid %d: TracerPid %d is no thread of this test (%v)", pid, tp, err)
	}
}

func procStatusLine(pid int, key string) string {
	b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	for _, l := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(l, key) {
			return l
		}
	}
	return ""
}

// waitLogPID waits for a "NAME PID" line in file.
func waitLogPID(t *testing.T, file, name string) int {
	t.Helper()
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		b, _ := os.ReadFile(file)
		for _, l := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(l, name+" "); ok {
				if p, err := strconv.Atoi(v); err == nil {
					return p
				}
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no %q line in %s:\n%s", name, file, b)
		}
	}
}

// waitFile waits for file to exist and returns its content.
func waitFile(t *testing.T, file string) string {
	t.Helper()
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if b, err := os.ReadFile(file); err == nil {
			return strings.TrimSpace(string(b))
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s never appeared", file)
		}
	}
}
