package down_test

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/nodeboot/nodeboot/internal/cli"
	"github.com/nodeboot/nodeboot/internal/instance"
	"github.com/nodeboot/nodeboot/internal/testenv"
)

// The stop path (SIGTERM to a real supervisor, the lock released, nothing
// left) is tested with real processes in internal/cli/up (TestIntegrationDetachStatusDown).

func run(args ...string) (int, string, string) {
	var out, errOut bytes.Buffer
	code := cli.Run(append([]string{"nodeboot"}, args...), strings.NewReader(""), &out, &errOut)
	return code, out.String(), errOut.String()
}

func TestNotRunning(t *testing.T) {
	for _, dir := range []string{t.TempDir(), filepath.Join(t.TempDir(), "never-made")} {
		code, stdout, stderr := run("down", "--data-dir", dir)
		if code != 0 || stdout != "nodeboot is not running for "+dir+"\n" && !strings.HasPrefix(stdout, "nodeboot is not running for "+dir+" ") {
			t.Errorf("%s: exit %d, stdout %q, stderr %q", dir, code, stdout, stderr)
		}
	}
	if code, _, stderr := run("down", "--purge-k3s"); code != 2 || !strings.Contains(stderr, "--purge-k3s goes with --purge") {
		t.Errorf("--purge-k3s alone: exit %d, %q", code, stderr)
	}
}

// TestRefusesStranger: the lock is held by a process that is not nodeboot
// (flock(1) and sleep): down must not signal it.
func TestRefusesStranger(t *testing.T) {
	testenv.LookPath(t, "flock") // util-linux
	in, err := instance.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("flock", "-n", in.LockPath(), "sleep", "60")
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL); cmd.Wait() }()
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
	if err := os.WriteFile(in.PIDPath(), []byte(strconv.Itoa(cmd.Process.Pid)+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	code, _, stderr := run("down", "--data-dir", in.Dir, "--timeout", "1s")
	if code != 1 || !strings.Contains(stderr, "not nodeboot; not signalling it") {
		t.Errorf("exit %d, stderr %q", code, stderr)
	}
	if err := cmd.Process.Signal(syscall.Signal(0)); err != nil {
		t.Errorf("the stranger was signalled: %v", err)
	}
}
