package status_test

import (
	"bytes"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/nodeboot/nodeboot/internal/cli"
	"github.com/nodeboot/nodeboot/internal/instance"
	"github.com/nodeboot/nodeboot/internal/testenv"
	"github.com/nodeboot/nodeboot/node"
)

func run(args ...string) (int, string, string) {
	var out, errOut bytes.Buffer
	code := cli.Run(append([]string{"nodeboot"}, args...), strings.NewReader(""), &out, &errOut)
	return code, out.String(), errOut.String()
}

// hold makes a real process (flock(1)) hold the data dir's lock, as a
// running supervisor does, and writes its PID to the PID file.
func hold(t *testing.T, in *instance.Instance) {
	t.Helper()
	testenv.LookPath(t, "flock") // util-linux
	cmd := exec.Command("flock", "-n", in.LockPath(), "sleep", "60")
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL); cmd.Wait() })
	deadline := time.Now().Add(10 * time.Second)
	for {
		if _, running, _ := in.Running(); running {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("flock did not take the lock")
		}
		time.Sleep(20 * time.Millisecond)
	}
	// The PID file names the holder, as "up" writes its own.
	if err := writePID(in, cmd.Process.Pid); err != nil {
		t.Fatal(err)
	}
}

func writePID(in *instance.Instance, pid int) error {
	return os.WriteFile(in.PIDPath(), []byte(strconv.Itoa(pid)+"\n"), 0o644)
}

func TestStatus(t *testing.T) {
	in, err := instance.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	code, stdout, stderr := run("status", "--data-dir", in.Dir)
	if code != 1 || !strings.Contains(stdout, "not running") || !strings.Contains(stderr, "has no state there") {
		t.Errorf("nothing: exit %d\n%s%s", code, stdout, stderr)
	}

	now := time.Now()
	st := &node.State{
		Phase: node.PhaseReady, PhaseSince: now.Add(-time.Minute), DataDir: in.Dir, NodeName: "n1", Role: "server",
		K3s: "/usr/bin/k3s", StartedAt: now.Add(-5 * time.Minute), SupervisorPID: 1, K3sPID: 2, Restarts: 1,
		RestartHistory: []node.Restart{{Time: now.Add(-3 * time.Minute), Reason: "NotReady for 1m0s: KubeletNotReady"}},
		Health: &node.Health{State: "Ready", Reason: "KubeletReady", Since: now.Add(-time.Minute),
			Conditions: []node.Condition{{Type: "Ready", Status: "True", Reason: "KubeletReady", Message: "kubelet is posting ready status"}}},
		Interceptor: &node.Counters{Mode: "seccomp", Stops: 1000, Rewrites: 400, Passes: 500, Tracees: 80},
	}
	if err := in.WriteState(st); err != nil {
		t.Fatal(err)
	}
	code, stdout, _ = run("status", "--data-dir", in.Dir)
	if code != 1 || !strings.Contains(stdout, "supervisor:   not running") {
		t.Errorf("state but no supervisor: exit %d\n%s", code, stdout)
	}

	hold(t, in)
	code, stdout, stderr = run("status", "--data-dir", in.Dir)
	// The run renders "up" from its own clock, a moment after the state
	// was written: on a slow machine 5m0s is 5m1s.
	if !regexp.MustCompile(`running, pid [0-9]+, up 5m[0-9]+s\n`).MatchString(stdout) {
		t.Errorf("status lacks the supervisor's uptime (up 5m0s, give or take seconds):\n%s", stdout)
	}
	for _, want := range []string{"running, pid", "phase:        ready", "health:       Ready KubeletReady", "restarts:     1",
		"interceptor:  seccomp, 1000 stops, 400 rewrites", "Ready  True    KubeletReady  kubelet is posting ready status", "NotReady for 1m0s: KubeletNotReady"} {
		if !strings.Contains(stdout, want) {
			t.Errorf("status lacks %q:\n%s", want, stdout)
		}
	}
	if code != 0 || stderr != "" {
		t.Errorf("Ready: exit %d, stderr %q", code, stderr)
	}
	code, stdout, _ = run("status", "--data-dir", in.Dir, "--output", "json")
	if code != 0 || !strings.Contains(stdout, `"running": true`) || !strings.Contains(stdout, `"phase": "ready"`) {
		t.Errorf("json: exit %d\n%s", code, stdout)
	}
	if code, short, _ := run("status", "--data-dir", in.Dir, "-o", "json"); code != 0 || short != stdout {
		t.Errorf("-o json: exit %d, output differs from --output json:\n%s", code, short)
	}

	// Ready health during a restart is the previous kubelet's.
	for _, ph := range []node.Phase{node.PhaseRestarting, node.PhaseStarting, node.PhaseRegistered} {
		st.Phase = ph
		if err := in.WriteState(st); err != nil {
			t.Fatal(err)
		}
		if code, stdout, _ = run("status", "--data-dir", in.Dir); code != 3 {
			t.Errorf("health Ready in phase %s: exit %d, want 3\n%s", ph, code, stdout)
		}
	}
	st.Phase = node.PhaseManifestsApplied
	st.Health = &node.Health{State: "NotReady", Reason: "KubeletNotReady", Message: "container runtime network not ready"}
	if err := in.WriteState(st); err != nil {
		t.Fatal(err)
	}
	if code, stdout, _ = run("status", "--data-dir", in.Dir); code != 3 {
		t.Errorf("NotReady: exit %d, want 3\n%s", code, stdout)
	}
	if code, _, stderr = run("status", "--data-dir", in.Dir, "--output", "yaml"); code != 2 {
		t.Errorf("--output yaml: exit %d, %q", code, stderr)
	}
}
