package up_test

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/nodeboot/nodeboot/bootstrap"
	"github.com/nodeboot/nodeboot/internal/cli"
	"github.com/nodeboot/nodeboot/internal/instance"
	"github.com/nodeboot/nodeboot/internal/ptytest"
	"github.com/nodeboot/nodeboot/internal/testenv"
	"github.com/nodeboot/nodeboot/node"
)

// The tests run nodeboot as a real process: this test binary, which acts
// as nodeboot when asMain is set (so that "up --detach" re-executing
// /proc/self/exe starts nodeboot again).
const asMain = "NODEBOOT_TEST_AS_NODEBOOT"

func TestMain(m *testing.M) {
	if os.Getenv(asMain) == "1" {
		os.Exit(cli.Run(os.Args, os.Stdin, os.Stdout, os.Stderr))
	}
	// The tests' own directory of machine-wide claims (inherited by the
	// nodeboot they run): their nodes run in this machine's network
	// namespace, as other test runs' may at the same time.
	runDir, err := os.MkdirTemp("", "nodeboot-up-test-run-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	os.Setenv("NODEBOOT_RUN_DIR", runDir)
	code := m.Run()
	os.RemoveAll(runDir)
	os.Exit(code)
}

// nodeboot returns the command "nodeboot ARGS..." with env added.
func nodeboot(env []string, args ...string) *exec.Cmd {
	cmd := exec.Command(os.Args[0], args...)
	cmd.Env = append(append(os.Environ(), asMain+"=1"), env...)
	return cmd
}

// run runs "nodeboot ARGS..." to the end.
func run(t *testing.T, env []string, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	var out, errOut bytes.Buffer
	cmd := nodeboot(env, args...)
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	var ee *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &ee):
		code = ee.ExitCode()
	default:
		t.Fatalf("run nodeboot %q: %v", args, err)
	}
	return out.String(), errOut.String(), code
}

// standIn writes a stand-in for k3s: a shell script, NOT k3s. It is good
// ONLY for testing the plumbing of up/down/status (lock, PID file, detach,
// signals, exit codes); it never serves an API, so the node never gets
// Ready. What k3s and kubelet really do under the supervisor is tested by
// the bootstrap and health tests and in e2e/ (TestK3s).
func standIn(t *testing.T, body string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "k3s-stand-in")
	script := "#!/bin/sh\n# A stand-in for k3s for plumbing tests; not k3s.\necho \"stand-in k3s $*\"\n" + body + "\n"
	if err := os.WriteFile(path, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	return path
}

// keepsRunning is a stand-in k3s that runs until SIGTERM.
const keepsRunning = `trap 'echo stand-in got SIGTERM; exit 0' TERM
while :; do sleep 0.2; done`

// needRoot gates the integration tests: up traces k3s with ptrace+seccomp
// as root.
func needRoot(t *testing.T) {
	t.Helper()
	testenv.Integration(t)
	testenv.RequireRoot(t, "up traces k3s with ptrace+seccomp")
}

// alive reports whether pid exists and is not a zombie.
func alive(pid int) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	// pid (comm) S ...: the state follows the last ')'.
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	return i < 0 || i+2 >= len(s) || s[i+2] != 'Z'
}

// waitFor polls cond for up to d.
func waitFor(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", d, what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// k3sPID waits until state.json names a running k3s and returns its PID.
func k3sPID(t *testing.T, in *instance.Instance) int {
	t.Helper()
	var pid int
	waitFor(t, 30*time.Second, "k3s to start", func() bool {
		st, err := node.ReadState(in.Dir)
		if err == nil && st.K3sPID > 0 {
			pid = st.K3sPID
			return true
		}
		return false
	})
	return pid
}

// checkNothingLeft checks that neither process runs and the lock is free.
func checkNothingLeft(t *testing.T, in *instance.Instance, pids ...int) {
	t.Helper()
	for _, pid := range pids {
		waitFor(t, 10*time.Second, fmt.Sprintf("pid %d to end", pid), func() bool { return !alive(pid) })
	}
	if _, running, err := in.Running(); err != nil || running {
		t.Errorf("lock still held after stop (running %v, err %v)", running, err)
	}
	if _, err := os.Lstat(in.PIDPath()); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("PID file left behind: %v", err)
	}
}

// down stops whatever a test left running.
func down(t *testing.T, dir string) {
	t.Cleanup(func() { run(t, nil, "down", "--data-dir", dir, "--timeout", "20s") })
}

func TestUsage(t *testing.T) {
	dir := t.TempDir()
	k3s := standIn(t, "exit 0")
	noK3s := []string{"PATH=" + t.TempDir(), "NODEBOOT_K3S="}
	file := filepath.Join(t.TempDir(), "a-file")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name     string
		env      []string
		args     []string
		wantCode int
		wantErr  string
	}{
		{"agent without server", nil, []string{"up", "--data-dir", dir, "--k3s", k3s, "--role", "agent", "--token", "x"}, 2, "--role agent needs --server URL and --token T"},
		{"agent without token", nil, []string{"up", "--data-dir", dir, "--k3s", k3s, "--role", "agent", "--server", "https://x:6443"}, 2, "--role agent needs --server URL and --token T"},
		{"bad role", nil, []string{"up", "--data-dir", dir, "--k3s", k3s, "--role", "master"}, 2, `--role "master": want server or agent`},
		{"bad output", nil, []string{"up", "--data-dir", dir, "--k3s", k3s, "--output", "yaml"}, 2, `--output "yaml": want text or json`},
		{"bad manifests-via", nil, []string{"up", "--data-dir", dir, "--k3s", k3s, "--manifests-via", "kubectl"}, 2, `--manifests-via "kubectl"`},
		{"missing --k3s", nil, []string{"up", "--data-dir", dir, "--k3s", filepath.Join(dir, "nope")}, 2, "--k3s"},
		{"no k3s anywhere", noK3s, []string{"up", "--data-dir", dir}, 1, "run `nodeboot install --data-dir " + dir + "` (downloads k3s " + bootstrap.DefaultK3sVersion + ", the tested release, sha256-checked) or pass --k3s PATH (or set NODEBOOT_K3S=PATH)"},
		// Inputs are checked before k3s is looked for: with no k3s
		// anywhere, each bad input is reported as itself.
		{"data dir on proc, no k3s", noK3s, []string{"up", "--data-dir", "/proc/nope"}, 2, "data dir /proc/nope: /proc is on proc, a kernel filesystem that cannot hold a node's files"},
		{"data dir a file, no k3s", noK3s, []string{"up", "--data-dir", file}, 2, "data dir " + file + ": " + file + " is a regular file, not a directory; remove it or pick another --data-dir"},
		{"data dir below a file, no k3s", noK3s, []string{"up", "--data-dir", filepath.Join(file, "sub")}, 2, file + " is a regular file, not a directory"},
		{"unknown profile, no k3s", noK3s, []string{"up", "--data-dir", dir, "--profile", "k4s"}, 2, `profile "k4s"`},
		{"missing manifest, no k3s", noK3s, []string{"up", "--data-dir", dir, "--manifest", filepath.Join(dir, "none.yaml")}, 1, "none.yaml"},
		{"k3s args, no k3s", noK3s, []string{"up", "--data-dir", dir, "--", "--with-node-id"}, 2, `K3S-ARGS "--with-node-id"`},
		{"negative --max-restarts", nil, []string{"up", "--data-dir", dir, "--k3s", k3s, "--max-restarts", "-2"}, 2, "--max-restarts -2: want a number of restarts (0 gives up at the first exit), or -1 for unlimited"},
		{"negative --start-grace", nil, []string{"up", "--data-dir", dir, "--k3s", k3s, "--start-grace", "-1s"}, 2, "--start-grace -1s: want a positive duration, e.g. 2m"},
		{"zero --notready-grace", nil, []string{"up", "--data-dir", dir, "--k3s", k3s, "--notready-grace", "0s"}, 2, "--notready-grace 0s: want a positive duration"},
		{"negative --stop-timeout", nil, []string{"up", "--data-dir", dir, "--k3s", k3s, "--stop-timeout", "-5s"}, 2, "--stop-timeout -5s: want a positive duration"},
		{"negative --max-restarts from the environment", []string{"NODEBOOT_MAX_RESTARTS=-3"}, []string{"up", "--data-dir", dir, "--k3s", k3s}, 2, "--max-restarts -3"},
		{"unknown profile", nil, []string{"up", "--data-dir", dir, "--k3s", k3s, "--profile", "k4s"}, 2, `profile "k4s"`},
		{"agent with manifests", nil, []string{"up", "--data-dir", dir, "--k3s", k3s, "--role", "agent", "--server", "https://x:6443", "--token", "t", "--smoke"}, 2, "need --role server"},
		{"missing manifest", nil, []string{"up", "--data-dir", dir, "--k3s", k3s, "--manifest", filepath.Join(dir, "none.yaml")}, 1, "none.yaml"},
		{"k3s args: --with-node-id", nil, []string{"up", "--data-dir", dir, "--k3s", k3s, "--", "--with-node-id"}, 2, `K3S-ARGS "--with-node-id": k3s would append an ID`},
		{"k3s args: two node names", nil, []string{"up", "--data-dir", dir, "--k3s", k3s, "--node-name", "a", "--", "-node-name=b"}, 2, `K3S-ARGS "-node-name=b": the node's name is "a" already`},
		{"k3s args: relative data dir", nil, []string{"up", "--data-dir", dir, "--k3s", k3s, "--detach", "--", "-d", "rel"}, 2, `K3S-ARGS "-d rel": the path is relative`},
	}
	// What up checks before it checks for root needs no root.
	beforeRoot := map[string]bool{
		"agent without server": true, "agent without token": true, "bad role": true, "bad output": true,
		"bad manifests-via": true, "agent with manifests": true, "negative --max-restarts": true,
		"negative --start-grace": true, "zero --notready-grace": true, "negative --stop-timeout": true,
		"negative --max-restarts from the environment": true,
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if !beforeRoot[tt.name] {
				testenv.RequireRoot(t, "up checks this after its root check, which refuses a user other than root")
			}
			stdout, stderr, code := run(t, tt.env, tt.args...)
			if code != tt.wantCode || !strings.Contains(stderr, tt.wantErr) {
				t.Errorf("exit %d, stderr %q; want exit %d and %q", code, stderr, tt.wantCode, tt.wantErr)
			}
			if strings.Count(stderr, "\n") != 1 || !strings.HasPrefix(stderr, "nodeboot: ") {
				t.Errorf("stderr is not one nodeboot: line: %q", stderr)
			}
			if stdout != "" {
				t.Errorf("stdout %q, want nothing", stdout)
			}
		})
	}
	if _, err := os.Lstat(filepath.Join(dir, "nodeboot.lock")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a refused up touched the data dir: %v", err)
	}
}

// TestConfigPrecedence checks flag > NODEBOOT_* > --config file > default
// with values that up rejects: the error names the value that won.
func TestConfigPrecedence(t *testing.T) {
	dir := t.TempDir()
	k3s := standIn(t, "exit 0")
	file := filepath.Join(dir, "config.yaml")
	if err := os.WriteFile(file, []byte("role: from-file\ntimeout: -1s\nk3s: "+k3s+"\ndata-dir: "+filepath.Join(dir, "data")+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	typo := filepath.Join(dir, "typo.yaml")
	if err := os.WriteFile(typo, []byte("data_dir: /x\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name     string
		env      []string
		args     []string
		wantCode int
		wantErr  string
	}{
		{"file", nil, []string{"up", "--config", file}, 2, `--role "from-file"`},
		{"env over file", []string{"NODEBOOT_ROLE=from-env"}, []string{"up", "--config", file}, 2, `--role "from-env"`},
		{"flag over env", []string{"NODEBOOT_ROLE=from-env"}, []string{"up", "--config", file, "--role", "from-flag"}, 2, `--role "from-flag"`},
		{"config from env", []string{"NODEBOOT_CONFIG=" + file}, []string{"up"}, 2, `--role "from-file"`},
		{"duration from file", nil, []string{"up", "--config", file, "--role", "server"}, 2, "--timeout -1s"},
		{"duration from env over file", []string{"NODEBOOT_TIMEOUT=-2s"}, []string{"up", "--config", file, "--role", "server"}, 2, "--timeout -2s"},
		{"missing explicit file", nil, []string{"up", "--config", filepath.Join(dir, "none.yaml")}, 2, "none.yaml: no such file"},
		{"unknown key", nil, []string{"up", "--config", typo}, 2, `unknown key "data_dir"`},
		{"duration given as a number", nil, []string{"up", "--config", yamlFile(t, "timeout: 5\n")}, 2, `key "timeout": want a duration such as 5m, 90s or 1h30m, got the number 5`},
		{"duration that does not parse", nil, []string{"up", "--config", yamlFile(t, "start-grace: 5 min\n")}, 2, `key "start-grace": "5 min" is not a duration; write it like 5m, 90s or 1h30m`},
		{"int given as a string", nil, []string{"up", "--config", yamlFile(t, "max-restarts: lots\n")}, 2, `key "max-restarts": want a whole number, e.g. max-restarts: 5, got the string "lots"`},
		{"bool given as a string", nil, []string{"up", "--config", yamlFile(t, "smoke: \"yes\"\n")}, 2, `key "smoke": want true or false, got the string "yes"`},
		{"list given as a string", nil, []string{"up", "--config", yamlFile(t, "manifest: /srv/app.yaml\n")}, 2, `key "manifest": want a list, e.g. manifest: [a, b], got the string "/srv/app.yaml"`},
		{"string given as a number", nil, []string{"up", "--config", yamlFile(t, "node-name: 123\n")}, 2, `key "node-name": want a string, got the number 123; quote it: node-name: "123"`},
		{"status reads data-dir from the file", nil, []string{"status", "--config", file}, 1, "not running for " + filepath.Join(dir, "data")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, stderr, code := run(t, tt.env, tt.args...)
			if code != tt.wantCode || !strings.Contains(stderr, tt.wantErr) {
				t.Errorf("exit %d, stderr %q; want exit %d and %q", code, stderr, tt.wantCode, tt.wantErr)
			}
		})
	}
}

// yamlFile writes a config file holding content and returns its path.
func yamlFile(t *testing.T, content string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "config.yaml")
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestIntegrationForeground: a second up on the same data dir is refused at
// once, and SIGINT to the foreground up stops the stand-in k3s and leaves
// nothing.
func TestIntegrationForeground(t *testing.T) {
	needRoot(t)
	dir := filepath.Join(t.TempDir(), "data")
	down(t, dir)
	in, _ := instance.At(dir)
	k3s := standIn(t, keepsRunning)
	var errOut bytes.Buffer
	up := nodeboot(nil, "up", "--data-dir", dir, "--k3s", k3s, "--node-name", "n1")
	up.Stderr = &errOut
	if err := up.Start(); err != nil {
		t.Fatal(err)
	}
	k3sPid := k3sPID(t, in)
	if pid, err := in.ReadPID(); err != nil || pid != up.Process.Pid {
		t.Errorf("PID file: %d, %v; want %d", pid, err, up.Process.Pid)
	}

	start := time.Now()
	_, stderr, code := run(t, nil, "up", "--data-dir", dir, "--k3s", k3s, "--node-name", "n1")
	want := fmt.Sprintf("nodeboot: up: another nodeboot is running for %s (pid %d); stop it with `nodeboot down --data-dir %s`\n", dir, up.Process.Pid, dir)
	if code != 1 || stderr != want {
		t.Errorf("second up: exit %d, stderr %q; want 1 and %q", code, stderr, want)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("second up took %s to refuse", d)
	}

	if err := up.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	err := up.Wait()
	if err != nil {
		t.Errorf("up after SIGINT: %v\n%s", err, errOut.String())
	}
	checkNothingLeft(t, in, up.Process.Pid, k3sPid)
	b, _ := os.ReadFile(in.K3sLog())
	if !strings.Contains(string(b), "stand-in got SIGTERM") {
		t.Errorf("k3s was not stopped with SIGTERM; k3s.log:\n%s", b)
	}
	st, err := node.ReadState(in.Dir)
	if err != nil || st.Phase != node.PhaseStopped || st.K3sPID != 0 {
		t.Errorf("state after stop: %+v, %v", st, err)
	}
	for _, want := range []string{"✓ Seeded the fake tree", "✓ Started k3s (pid", "✓ Stopped k3s"} {
		if !strings.Contains(errOut.String(), want) {
			t.Errorf("progress lacks %q:\n%s", want, errOut.String())
		}
	}
}

// TestIntegrationDetachStatusDown: --detach prints the supervisor's PID and
// returns; status says running and not Ready (3); down stops it all (0), and
// status then says not running (1).
func TestIntegrationDetachStatusDown(t *testing.T) {
	needRoot(t)
	dir := filepath.Join(t.TempDir(), "data")
	down(t, dir)
	in, _ := instance.At(dir)
	k3s := standIn(t, keepsRunning)
	stdout, stderr, code := run(t, nil, "up", "--data-dir", dir, "--k3s", k3s, "--node-name", "n1", "--detach")
	if code != 0 {
		t.Fatalf("up --detach: exit %d\n%s", code, stderr)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(stdout))
	if err != nil {
		t.Fatalf("up --detach printed %q, want a PID", stdout)
	}
	if got, _ := in.ReadPID(); got != pid {
		t.Errorf("PID file %d, printed %d", got, pid)
	}
	k3sPid := k3sPID(t, in)
	// The supervisor is in a session of its own, away from the terminal.
	if sid, _ := unix.Getsid(pid); sid != pid {
		t.Errorf("supervisor session %d, want its own (%d)", sid, pid)
	}

	stdout, _, code = run(t, nil, "status", "--data-dir", dir)
	if code != 3 || !strings.Contains(stdout, fmt.Sprintf("running, pid %d", pid)) || !strings.Contains(stdout, "APIUnreachable") {
		t.Errorf("status: exit %d, want 3:\n%s", code, stdout)
	}
	stdout, _, code = run(t, nil, "status", "--data-dir", dir, "--output", "json")
	if code != 3 || !strings.Contains(stdout, `"running": true`) || !strings.Contains(stdout, fmt.Sprintf(`"k3sPID": %d`, k3sPid)) {
		t.Errorf("status --output json: exit %d:\n%s", code, stdout)
	}

	stdout, stderr, code = run(t, nil, "down", "--data-dir", dir)
	if code != 0 || !strings.Contains(stdout, fmt.Sprintf("stopped nodeboot (pid %d)", pid)) {
		t.Errorf("down: exit %d, stdout %q, stderr %q", code, stdout, stderr)
	}
	checkNothingLeft(t, in, pid, k3sPid)
	stdout, _, code = run(t, nil, "down", "--data-dir", dir)
	if code != 0 || !strings.Contains(stdout, "not running") {
		t.Errorf("down again: exit %d, %q", code, stdout)
	}
	stdout, stderr, code = run(t, nil, "status", "--data-dir", dir)
	if code != 1 || !strings.Contains(stdout, "not running") || !strings.Contains(stderr, "not running for "+dir) {
		t.Errorf("status after down: exit %d:\n%s%s", code, stdout, stderr)
	}

	// --purge removes nodeboot's files, not k3s's data.
	if err := os.MkdirAll(filepath.Join(in.K3sDataDir(), "server"), 0o700); err != nil {
		t.Fatal(err)
	}
	_, stderr, code = run(t, nil, "down", "--data-dir", dir, "--purge")
	if code != 0 {
		t.Fatalf("down --purge: exit %d, %s", code, stderr)
	}
	for _, gone := range []string{in.Root(), in.StatePath(), in.EventsPath(), in.LogsDir()} {
		if _, err := os.Lstat(gone); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s survived --purge: %v", gone, err)
		}
	}
	if _, err := os.Stat(in.K3sDataDir()); err != nil {
		t.Errorf("--purge removed k3s's data: %v", err)
	}
	if _, _, code = run(t, nil, "down", "--data-dir", dir, "--purge", "--purge-k3s"); code != 0 {
		t.Errorf("down --purge --purge-k3s: exit %d", code)
	}
	if _, err := os.Stat(in.K3sDataDir()); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("--purge-k3s kept k3s's data: %v", err)
	}
}

// TestIntegrationWaitTimeout: the stand-in never writes a kubeconfig, so
// --wait runs out of time: exit 3 with the last health status, and the
// supervisor keeps running.
func TestIntegrationWaitTimeout(t *testing.T) {
	needRoot(t)
	dir := filepath.Join(t.TempDir(), "data")
	down(t, dir)
	in, _ := instance.At(dir)
	k3s := standIn(t, keepsRunning)
	start := time.Now()
	_, stderr, code := run(t, nil, "up", "--data-dir", dir, "--k3s", k3s, "--node-name", "n1", "--wait", "--timeout", "3s")
	if code != 3 {
		t.Fatalf("up --wait: exit %d, want 3\n%s", code, stderr)
	}
	if d := time.Since(start); d > 20*time.Second {
		t.Errorf("up --wait --timeout 3s took %s", d)
	}
	for _, want := range []string{"node n1 not Ready after 3s: APIUnreachable NoKubeconfig: waiting for k3s to write its kubeconfig", "keeps running", "nodeboot down --data-dir " + dir, "✓ Started k3s"} {
		if !strings.Contains(stderr, want) {
			t.Errorf("stderr lacks %q:\n%s", want, stderr)
		}
	}
	pid, running, _ := in.Running()
	if !running || !alive(pid) {
		t.Fatalf("the supervisor did not keep running after the timeout (pid %d)", pid)
	}
	k3sPid := k3sPID(t, in)
	if _, _, code := run(t, nil, "down", "--data-dir", dir); code != 0 {
		t.Errorf("down: exit %d", code)
	}
	checkNothingLeft(t, in, pid, k3sPid)
}

// TestIntegrationGiveUp: a k3s that keeps exiting makes up give up after
// --max-restarts with the last reason (foreground: exit 1; --wait: exit 1).
func TestIntegrationGiveUp(t *testing.T) {
	needRoot(t)
	k3s := standIn(t, "exit 7")
	for _, mode := range []string{"foreground", "wait"} {
		t.Run(mode, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "data")
			down(t, dir)
			in, _ := instance.At(dir)
			args := []string{"up", "--data-dir", dir, "--k3s", k3s, "--node-name", "n1", "--max-restarts", "1"}
			if mode == "wait" {
				args = append(args, "--wait", "--timeout", "1m")
			}
			_, stderr, code := run(t, nil, args...)
			if code != 1 || !strings.Contains(stderr, "status 7") {
				t.Errorf("exit %d, want 1 and the reason (status 7):\n%s", code, stderr)
			}
			if mode == "wait" {
				waitFor(t, 10*time.Second, "the supervisor to end", func() bool { _, r, _ := in.Running(); return !r })
			}
			st, err := node.ReadState(in.Dir)
			if err != nil || st.Phase != node.PhaseFailed || st.Restarts != 1 || !strings.Contains(st.LastError, "status 7") {
				t.Errorf("state: %+v, %v", st, err)
			}
			checkNothingLeft(t, in)
		})
	}
}

// TestIntegrationK3sArgsKubeconfig: a --write-kubeconfig among K3S-ARGS, in
// any spelling, is where k3s writes the kubeconfig and where nodeboot waits
// for it; nodeboot passes no kubeconfig of its own.
func TestIntegrationK3sArgsKubeconfig(t *testing.T) {
	needRoot(t)
	dir := filepath.Join(t.TempDir(), "data")
	down(t, dir)
	in, _ := instance.At(dir)
	kc := filepath.Join(t.TempDir(), "admin.yaml")
	k3s := standIn(t, keepsRunning)
	_, stderr, code := run(t, nil, "up", "--data-dir", dir, "--k3s", k3s, "--node-name", "n1", "--wait", "--timeout", "2s", "--", "-o", kc)
	if code != 3 || !strings.Contains(stderr, "waiting for k3s to write its kubeconfig "+kc) {
		t.Errorf("up --wait: exit %d, want 3, waiting for %s:\n%s", code, kc, stderr)
	}
	st, err := node.ReadState(dir)
	if err != nil || st.Kubeconfig != kc {
		t.Errorf("state: kubeconfig %q (%v), want %s", st.Kubeconfig, err, kc)
	}
	k3sPID(t, in)
	b, _ := os.ReadFile(in.K3sLog())
	if !strings.Contains(string(b), "--node-name n1 -o "+kc) || strings.Contains(string(b), "--write-kubeconfig "+in.Kubeconfig()) {
		t.Errorf("k3s arguments: want the user's -o %s and not nodeboot's kubeconfig:\n%s", kc, b)
	}
	if _, _, code := run(t, nil, "down", "--data-dir", dir); code != 0 {
		t.Errorf("down: exit %d", code)
	}
}

// TestNeedsRoot: as another user than root, up says once, before looking
// at anything, that it needs root and why, and what works without it;
// nothing is started and the data dir is not touched. The test runs
// nodeboot as nobody (setpriv), or as itself when it is not root.
func TestNeedsRoot(t *testing.T) {
	bin, dataDir, k3s := os.Args[0], filepath.Join(t.TempDir(), "data"), standIn(t, keepsRunning)
	var prefix []string
	if os.Geteuid() == 0 {
		setpriv := testenv.LookPath(t, "setpriv") // util-linux: runs nodeboot as another user
		// nobody must reach the binary and the stand-in: copies in a
		// directory anyone may read.
		shared, err := os.MkdirTemp("", "nodeboot-needs-root-")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { os.RemoveAll(shared) })
		for _, c := range []struct{ from, to string }{{bin, "nodeboot.test"}, {k3s, "k3s"}} {
			b, err := os.ReadFile(c.from)
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(shared, c.to), b, 0o755); err != nil {
				t.Fatal(err)
			}
		}
		if err := os.Chmod(shared, 0o755); err != nil {
			t.Fatal(err)
		}
		bin, k3s = filepath.Join(shared, "nodeboot.test"), filepath.Join(shared, "k3s")
		// A data dir nobody owns: without the root check, up would run
		// the stand-in there.
		dataDir = filepath.Join(shared, "data")
		if err := os.Mkdir(dataDir, 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.Chown(dataDir, 65534, 65534); err != nil {
			t.Fatal(err)
		}
		prefix = []string{setpriv, "--reuid=65534", "--regid=65534", "--clear-groups", "--"}
	}
	for _, args := range [][]string{
		{"up", "--data-dir", dataDir, "--k3s", k3s, "--node-name", "n1"},
		{"up", "--data-dir", dataDir, "--k3s", k3s, "--node-name", "n1", "--detach"},
		{"up", "--data-dir", "/nonexistent/data", "--node-name", "n1"}, // bad inputs too: root comes first
	} {
		argv := append(append(prefix, bin), args...)
		cmd := exec.Command(argv[0], argv[1:]...)
		cmd.Env = append(os.Environ(), asMain+"=1", "HOME=/")
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		done := make(chan error, 1)
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		go func() { done <- cmd.Wait() }()
		var err error
		select {
		case err = <-done:
		case <-time.After(30 * time.Second):
			cmd.Process.Kill()
			<-done
			t.Fatalf("%q as uid 65534 still runs after 30s; want a refusal at once\n%s", args, stderr.String())
		}
		code := 0
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			code = ee.ExitCode()
		}
		t.Logf("%q: exit %d: %s", args, code, stderr.String())
		want := "nodeboot: up: needs root (you are uid "
		if code != 1 || !strings.HasPrefix(stderr.String(), want) || strings.Count(stderr.String(), "\n") != 1 || stdout.Len() != 0 {
			t.Errorf("%q: exit %d, stdout %q, stderr %q; want exit 1 and one line starting %q", args, code, stdout.String(), stderr.String(), want)
		}
		for _, why := range []string{"k3s runs containers", "mounts, cgroups, network namespaces and iptables", "sudo nodeboot up", "`nodeboot exec` and `nodeboot seed` work"} {
			if !strings.Contains(stderr.String(), why) {
				t.Errorf("%q: the message lacks %q", args, why)
			}
		}
	}
	if ents, err := os.ReadDir(dataDir); err == nil && len(ents) != 0 {
		t.Errorf("the refused up wrote into the data dir: %v", ents)
	}
}

// diesFatally is a stand-in k3s that logs as k3s does when it cannot run
// (logrus text, klog), then exits 1.
const diesFatally = `echo 'time="2026-01-02T03:04:05Z" level=info msg="Starting k3s v1.36.3+k3s1"'
echo 'E0102 03:04:05.000000    4242 server.go:100] "Failed to listen" err="address in use"' >&2
echo 'time="2026-01-02T03:04:06Z" level=fatal msg="failed to find cpuset cgroup (v2)"' >&2
echo 'time="2026-01-02T03:04:06Z" level=info msg="bye"'
exit 1`

// TestIntegrationExitShowsLog: when k3s dies, up shows why, from k3s's log (fatal
// lines first), with the exit and when it gives up, and says where the
// whole log is; the one error line at the end carries the fatal line.
func TestIntegrationExitShowsLog(t *testing.T) {
	needRoot(t)
	k3s := standIn(t, diesFatally)
	fatal := `level=fatal msg="failed to find cpuset cgroup (v2)"`
	klog := `E0102 03:04:05.000000    4242 server.go:100] "Failed to listen" err="address in use"`
	for _, mode := range []string{"foreground", "wait"} {
		t.Run(mode, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "data")
			down(t, dir)
			in, _ := instance.At(dir)
			args := []string{"up", "--data-dir", dir, "--k3s", k3s, "--node-name", "n1", "--max-restarts", "1"}
			if mode == "wait" {
				args = append(args, "--wait", "--timeout", "1m")
			}
			_, stderr, code := run(t, nil, args...)
			t.Logf("stderr:\n%s", stderr)
			if code != 1 {
				t.Errorf("exit %d, want 1", code)
			}
			header := "! k3s exited: command exited with status 1; k3s's log " + in.K3sLog() + " ends:\n     " + fatal + "\n     " + klog + "\n"
			if strings.Count(stderr, header) != 2 {
				t.Errorf("stderr does not show both exits with the fatal line first, then the error line:\n%s", header)
			}
			if !strings.Contains(stderr, "✗ Gave up: command exited with status 1; k3s's log "+in.K3sLog()+" ends as shown above\n") {
				t.Errorf("stderr lacks the gave-up line pointing at the log")
			}
			lines := strings.Split(strings.TrimSpace(stderr), "\n")
			last := lines[len(lines)-1]
			if !strings.HasPrefix(last, "nodeboot: up") || !strings.Contains(last, "k3s's log says: "+fatal+" (all of it: "+in.K3sLog()+")") {
				t.Errorf("the error line does not carry the fatal line and the log's path: %q", last)
			}
			if strings.Contains(stderr, "level=info") {
				t.Errorf("info lines of k3s's log shown")
			}
			if mode == "wait" {
				waitFor(t, 10*time.Second, "the supervisor to end", func() bool { _, r, _ := in.Running(); return !r })
			}
		})
	}
}

// TestIntegrationWaitTerminal: on a terminal, up --wait speaks in one voice: the
// progress lines and a "•" line for the supervisor, no log lines
// (level=INFO msg=...) between them.
func TestIntegrationWaitTerminal(t *testing.T) {
	needRoot(t)
	dir := filepath.Join(t.TempDir(), "data")
	down(t, dir)
	k3s := standIn(t, keepsRunning)
	pty := ptytest.Open(t)
	cmd := nodeboot(nil, "up", "--data-dir", dir, "--k3s", k3s, "--node-name", "n1", "--wait", "--timeout", "3s")
	var stdout bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, pty.TTY
	err := cmd.Run()
	screen := pty.Output()
	t.Logf("terminal:\n%s", screen)
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 3 {
		t.Fatalf("up --wait: %v, want exit 3", err)
	}
	if strings.Contains(screen, "level=") {
		t.Errorf("a log line on the terminal among the progress lines")
	}
	for _, want := range []string{" • Supervisor running in the background (pid ", " ✓ Seeded the fake tree", " ✓ Started k3s (pid ", "nodeboot: up --wait: node n1 not Ready after 3s: "} {
		if !strings.Contains(screen, want) {
			t.Errorf("terminal lacks %q", want)
		}
	}
}
