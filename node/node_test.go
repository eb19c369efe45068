package node

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nodeboot/nodeboot/bootstrap"
	"github.com/nodeboot/nodeboot/health"
	"github.com/nodeboot/nodeboot/internal/instance"
	"github.com/nodeboot/nodeboot/internal/testenv"
	"github.com/nodeboot/nodeboot/manifests"
	"github.com/nodeboot/nodeboot/profile"
)

// The tests here run the node's lifecycle on the real tracer with a
// stand-in for k3s: a shell script, NOT k3s, which never serves an API, so
// the node never gets past starting-k3s. They test what the library does
// around k3s (the data dir, seeding, supervising, events, state, stopping);
// TestPhaseMachine feeds the phase machine by hand, and
// e2e/node_example_test.go runs the library against a real kube-apiserver
// and kubelet.

func testLogger(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(tWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type tWriter struct{ t *testing.T }

func (w tWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSuffix(string(p), "\n"))
	return len(p), nil
}

// needRoot gates the integration tests: the node traces k3s with
// ptrace+seccomp as root.
func needRoot(t *testing.T) {
	t.Helper()
	testenv.Integration(t)
	testenv.RequireRoot(t, "the node traces k3s with ptrace+seccomp")
}

// standIn writes a stand-in for k3s that logs its arguments, then runs body.
func standIn(t *testing.T, body string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "k3s-stand-in")
	script := "#!/bin/sh\n# A stand-in for k3s for the library's tests; not k3s.\necho \"stand-in k3s $*\"\n" + body + "\n"
	if err := os.WriteFile(path, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	return path
}

func k3sProfile(t *testing.T) *profile.Profile {
	t.Helper()
	p, err := profile.Load("k3s")
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// recorder collects the events OnEvent gets.
type recorder struct {
	mu  sync.Mutex
	evs []Event
}

func (r *recorder) on(e Event) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.evs = append(r.evs, e)
}

// kinds lists the events as "kind" or "phase:<phase>".
func (r *recorder) kinds() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []string
	for _, e := range r.evs {
		if e.Kind == KindPhase {
			out = append(out, "phase:"+string(e.Phase))
		} else if e.Kind != KindHealth {
			out = append(out, string(e.Kind))
		}
	}
	return out
}

func TestCheck(t *testing.T) {
	p := k3sProfile(t)
	dir := t.TempDir()
	base := Config{DataDir: dir, K3s: "/bin/sh", Profile: p, NodeName: "n1"}
	with := func(f func(*Config)) Config { c := base; f(&c); return c }

	plan, err := Check(with(func(c *Config) { c.K3sArgs = []string{"-o", "/k.yaml", "--data-dir=/d"} }))
	if err != nil {
		t.Fatal(err)
	}
	if plan.Kubeconfig != "/k.yaml" || plan.K3sDataDir != "/d" || plan.NodeName != "n1" || plan.Role != RoleServer || plan.Argv[0] != "k3s" {
		t.Errorf("plan %+v: want the user's kubeconfig and data dir, node n1, a server", plan)
	}
	plan, err = Check(base)
	if err != nil {
		t.Fatal(err)
	}
	if plan.Kubeconfig != filepath.Join(dir, "kubeconfig.yaml") || plan.K3sDataDir != filepath.Join(dir, "k3s") {
		t.Errorf("default plan %+v", plan)
	}

	tests := []struct {
		name string
		cfg  Config
		want string
	}{
		{"role", with(func(c *Config) { c.Role = "master" }), `role "master"`},
		{"agent manifests", with(func(c *Config) {
			c.Role, c.Server, c.Token = RoleAgent, "https://h:6443", "t"
			c.Manifests = make([]manifests.Object, 1)
		}), "manifests need a server"},
		{"via", with(func(c *Config) { c.ManifestsVia = "kubectl" }), `manifests via "kubectl"`},
		{"no profile", with(func(c *Config) { c.Profile = nil }), "no profile"},
		{"no k3s", with(func(c *Config) { c.K3s = "" }), "no k3s binary"},
		{"missing k3s", with(func(c *Config) { c.K3s = filepath.Join(dir, "nope") }), "nope"},
		{"no data dir", with(func(c *Config) { c.DataDir = "" }), "data dir is empty"},
		{"k3s args", with(func(c *Config) { c.K3sArgs = []string{"--with-node-id"} }), `K3S-ARGS "--with-node-id"`},
		{"kubelet healthz", with(func(c *Config) { c.KubeletHealthz = "127.0.0.1:10248" }), `kubelet healthz "127.0.0.1:10248"`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Check(tc.cfg)
			if err == nil || !strings.Contains(err.Error(), tc.want) || !errors.Is(err, ErrInvalidConfig) {
				t.Fatalf("Check = %v, want an ErrInvalidConfig containing %q", err, tc.want)
			}
		})
	}
	if _, err := Check(with(func(c *Config) { c.K3sArgs = []string{"-d", "rel"} })); !errors.Is(err, bootstrap.ErrK3sArgs) {
		t.Errorf("a refused K3S-ARGS is not bootstrap.ErrK3sArgs: %v", err)
	}
}

// TestIntegrationStartStop: Start takes the data dir, seeds, starts k3s and reports
// it; a second Start on the same dir is refused; Stop stops k3s with
// SIGTERM and releases everything.
func TestIntegrationStartStop(t *testing.T) {
	needRoot(t)
	dir := filepath.Join(t.TempDir(), "data")
	k3s := standIn(t, `trap 'echo stand-in got SIGTERM; exit 0' TERM
while :; do sleep 0.2; done`)
	var rec recorder
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	runDir := t.TempDir()
	n, err := Start(ctx, Config{DataDir: dir, K3s: k3s, Profile: k3sProfile(t), NodeName: "n1",
		K3sArgs: []string{"--node-label=a=b"}, OnEvent: rec.on, Logger: testLogger(t), RunDir: runDir})
	if err != nil {
		t.Fatal(err)
	}
	defer n.Stop(context.Background())
	in, _ := instance.At(dir)

	// k3s runs; with no kubeconfig the API counts as unreachable.
	var st State
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		st = n.Status()
		if st.K3sPID > 0 && st.Health != nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("k3s not started within 30s: %+v", st)
		}
	}
	if st.Phase != PhaseStarting || st.Health.State != health.Unreachable || st.Health.Reason != "NoKubeconfig" ||
		st.NodeName != "n1" || st.Kubeconfig != in.Kubeconfig() || st.SupervisorPID != os.Getpid() {
		t.Errorf("status %+v", st)
	}
	if _, running, _ := in.Running(); !running {
		t.Error("the data dir is not locked while the node runs")
	}
	short, cancelShort := context.WithTimeout(ctx, 200*time.Millisecond)
	defer cancelShort()
	if _, err := n.WaitFor(short, PhaseAPIReachable); err != context.DeadlineExceeded {
		t.Errorf("WaitFor(api-reachable) with no API = %v, want the context's deadline", err)
	}
	if _, err := Start(ctx, Config{DataDir: dir, K3s: k3s, Profile: k3sProfile(t), RunDir: runDir}); !errors.Is(err, ErrLocked) {
		t.Errorf("a second Start on the same data dir = %v, want ErrLocked", err)
	}
	// Another data dir on this machine: the same node name, or (another
	// name) the same network namespace, is refused, naming this node.
	for _, tc := range []struct{ name, want string }{
		{"n1", `node name "n1" is taken by the node of ` + in.Dir},
		{"n2", "network namespace net:["},
	} {
		// The network namespace and /run/k3s are this machine's for
		// both: whichever is claimed first after the name fails.
		other := filepath.Join(t.TempDir(), "data")
		_, err := Start(ctx, Config{DataDir: other, K3s: k3s, Profile: k3sProfile(t), NodeName: tc.name, RunDir: runDir, Logger: testLogger(t)})
		var ce *ClaimError
		if !errors.Is(err, ErrClaimed) || !errors.As(err, &ce) || !strings.Contains(err.Error(), tc.want) || ce.PID != os.Getpid() {
			t.Errorf("a second node %s beside the first = %v, want ErrClaimed containing %q and our pid", tc.name, err, tc.want)
		}
		if st, err := ReadState(other); err != nil || st.Phase != PhaseFailed || !strings.Contains(st.LastError, "is taken by") {
			t.Errorf("state of the refused node: %+v, %v; want failed, saying why", st, err)
		}
	}

	if err := n.Stop(ctx); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	st = n.Status()
	if st.Phase != PhaseStopped || st.K3sPID != 0 {
		t.Errorf("after Stop: %+v", st)
	}
	if _, running, _ := in.Running(); running {
		t.Error("the data dir is still locked after Stop")
	}
	// Its claims are released: another node of its name starts.
	n2, err := Start(ctx, Config{DataDir: filepath.Join(t.TempDir(), "data"), K3s: k3s, Profile: k3sProfile(t), NodeName: "n1", RunDir: runDir, Logger: testLogger(t)})
	if err != nil {
		t.Errorf("a node named n1 after the first stopped: %v", err)
	} else if err := n2.Stop(ctx); err != nil {
		t.Errorf("stop the second n1: %v", err)
	}
	if _, err := os.Lstat(in.PIDPath()); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("PID file left: %v", err)
	}
	b, _ := os.ReadFile(in.K3sLog())
	for _, want := range []string{"stand-in k3s server --data-dir " + in.K3sDataDir(), "--node-name n1 --node-label=a=b", "stand-in got SIGTERM"} {
		if !strings.Contains(string(b), want) {
			t.Errorf("k3s.log lacks %q:\n%s", want, b)
		}
	}
	got := rec.kinds()
	// The stopping event sets the phase in the same step (no phase event
	// of its own), as "nodeboot up" always did.
	want := []string{"phase:seeding", "phase:starting-k3s", "started", "stopping", "stopped", "phase:stopped"}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("events %v, want %v", got, want)
	}
	file, err := ReadState(dir)
	if err != nil || file.Phase != PhaseStopped {
		t.Errorf("state.json: %+v, %v", file, err)
	}
	if _, err := n.WaitFor(ctx, PhaseReady); err != ErrStopped {
		t.Errorf("WaitFor after Stop = %v, want ErrStopped", err)
	}
}

// TestIntegrationGiveUp: a k3s that keeps exiting ends the node after
// MaxRestarts, with the last reason, and leaves the tree seeded once: a
// file the first incarnation removed is not seeded back for the second.
func TestIntegrationGiveUp(t *testing.T) {
	needRoot(t)
	dir := filepath.Join(t.TempDir(), "data")
	victim := filepath.Join(dir, "root", "proc", "sys", "vm", "overcommit_memory")
	k3s := standIn(t, "rm -f "+victim+"\nexit 7")
	var rec recorder
	n, err := Start(t.Context(), Config{DataDir: dir, K3s: k3s, Profile: k3sProfile(t), NodeName: "n1",
		MaxRestarts: 1, OnEvent: rec.on, Logger: testLogger(t), RunDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		_, err := n.WaitFor(t.Context(), PhaseReady)
		done <- err
	}()
	err = n.Wait()
	if err == nil || !strings.Contains(err.Error(), "gave up after 1 restarts") || !strings.Contains(err.Error(), "status 7") {
		t.Fatalf("Wait = %v, want gave up after 1 restarts with status 7", err)
	}
	if werr := <-done; werr == nil || !strings.Contains(werr.Error(), "status 7") {
		t.Errorf("WaitFor = %v, want the reason the node gave up", werr)
	}
	st := n.Status()
	if st.Phase != PhaseFailed || st.Restarts != 1 || !strings.Contains(st.LastError, "status 7") || len(st.RestartHistory) != 1 {
		t.Errorf("status %+v", st)
	}
	if starts := strings.Count(strings.Join(rec.kinds(), " "), "started"); starts != 2 {
		t.Errorf("%d starts, want 2: %v", starts, rec.kinds())
	}
	if _, err := os.Lstat(victim); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("%s was seeded again for the restart (%v); the tree is seeded once per Start", victim, err)
	}
	if err := n.Stop(t.Context()); err == nil {
		t.Error("Stop after giving up = nil, want the error the node ended with")
	}
}

// TestIntegrationTreeGone: the fake kernel's tree moved away while k3s
// runs ends the node (no restart loop on a tree that will not come back),
// with an error that names the tree, and k3s is stopped.
func TestIntegrationTreeGone(t *testing.T) {
	needRoot(t)
	dir := filepath.Join(t.TempDir(), "data")
	// The stand-in reads a redirected file until the read fails.
	k3s := standIn(t, `while cat /proc/sys/vm/overcommit_memory >/dev/null; do sleep 0.05; done
echo stand-in lost its kernel file; sleep 600`)
	var rec recorder
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	n, err := Start(ctx, Config{DataDir: dir, K3s: k3s, Profile: k3sProfile(t), NodeName: "n1",
		StopTimeout: 5 * time.Second, OnEvent: rec.on, Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	defer n.Stop(context.Background())
	in, _ := instance.At(dir)
	for deadline := time.Now().Add(30 * time.Second); n.Status().K3sPID == 0; time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("k3s not started within 30s")
		}
	}
	time.Sleep(300 * time.Millisecond) // a few reads through the tree
	if err := os.Rename(in.Root(), in.Root()+".moved"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(in.Root() + ".moved") })
	select {
	case <-n.Done():
	case <-time.After(30 * time.Second):
		t.Fatal("the node still runs 30s after its tree was moved away")
	}
	err = n.Wait()
	if err == nil || !strings.Contains(err.Error(), "moved or deleted") || !strings.Contains(err.Error(), in.Root()) {
		t.Errorf("Wait = %v, want the tree %s named as moved or deleted", err, in.Root())
	}
	st := n.Status()
	if st.Phase != PhaseFailed || st.Restarts != 0 {
		t.Errorf("status %+v, want failed with no restart", st)
	}
	b, _ := os.ReadFile(in.K3sLog())
	if !strings.Contains(string(b), "stand-in lost its kernel file") {
		t.Logf("k3s.log (the read failing may race the stop):\n%s", b)
	}
}
