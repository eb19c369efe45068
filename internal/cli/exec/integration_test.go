//go:build !nointegration

package exec_test

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"github.com/nodeboot/nodeboot/internal/testenv"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// The TestIntegration* tests run a real bin/nodeboot, built once per test
// binary (or taken from $NODEBOOT_TEST_BIN), against real commands.

var (
	buildOnce sync.Once
	buildDir  string
	buildBin  string
	buildErr  error
)

func TestMain(m *testing.M) {
	code := m.Run()
	if buildDir != "" {
		os.RemoveAll(buildDir)
	}
	os.Exit(code)
}

// maybeSkip skips integration tests under -short.
func maybeSkip(t *testing.T) {
	t.Helper()
	testenv.Integration(t)
}

// requiresRoot skips t when not running as root.
func requiresRoot(t *testing.T) {
	t.Helper()
	testenv.RequireRoot(t, "nodeboot traces with ptrace and seccomp as root")
}

// nodeboot returns the path of a nodeboot binary.
func nodeboot(t *testing.T) string {
	t.Helper()
	maybeSkip(t)
	if bin := os.Getenv("NODEBOOT_TEST_BIN"); bin != "" {
		return bin
	}
	buildOnce.Do(func() {
		goBin, err := exec.LookPath("go")
		if err != nil {
			goBin = "/usr/local/go/bin/go"
		}
		if buildDir, buildErr = os.MkdirTemp("", "nodeboot-test-"); buildErr != nil {
			return
		}
		buildBin = filepath.Join(buildDir, "nodeboot")
		cmd := exec.Command(goBin, "build", "-o", buildBin, "github.com/nodeboot/nodeboot/cmd/nodeboot")
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("go build ./cmd/nodeboot: %w\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return buildBin
}

// result is how one nodeboot run ended.
type result struct {
	code           int
	stdout, stderr string
}

// runNodeboot runs nodeboot with args and stdin, within 60s.
func runNodeboot(t *testing.T, stdin string, env []string, args ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, nodeboot(t), args...)
	cmd.Stdin = strings.NewReader(stdin)
	cmd.Env = env
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	if ctx.Err() != nil {
		t.Fatalf("nodeboot %q did not end within 60s; stderr:\n%s", args, stderr.String())
	}
	var ee *exec.ExitError
	if err != nil && !errors.As(err, &ee) {
		t.Fatalf("run nodeboot %q: %v", args, err)
	}
	return result{code: cmd.ProcessState.ExitCode(), stdout: stdout.String(), stderr: stderr.String()}
}

// fakeKernel makes a directory with a file "panic" holding "42\n", to stand
// in for /proc/sys/kernel.
func fakeKernel(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "panic"), []byte("42\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

func TestIntegrationUsageError(t *testing.T) {
	r := runNodeboot(t, "", nil, "exec", "--redirect", "proc=/x", "--", "true")
	want := "nodeboot: --redirect \"proc=/x\": guest path \"proc\" is relative; use an absolute path\n"
	if r.code != 2 || r.stderr != want || r.stdout != "" {
		t.Errorf("got exit %d, stdout %q, stderr %q; want exit 2 and stderr %q", r.code, r.stdout, r.stderr, want)
	}
}

func TestIntegrationStartFailure(t *testing.T) {
	for _, tt := range []struct{ cmd, want string }{
		{"/nonexistent/nodeboot-test-cmd", "/nonexistent/nodeboot-test-cmd: no such file\n"},
		{"nodeboot-test-no-such-cmd", "nodeboot-test-no-such-cmd: command not found in PATH ("},
	} {
		r := runNodeboot(t, "", nil, "exec", "--", tt.cmd)
		if r.code != 1 || !strings.HasPrefix(r.stderr, "nodeboot: ") || strings.Count(r.stderr, "\n") != 1 {
			t.Errorf("%s: got exit %d, stderr %q; want exit 1 and one \"nodeboot: \" line", tt.cmd, r.code, r.stderr)
		}
		// Not exec.ErrNotFound's "not found in $PATH" for a path, nor
		// "in $PATH in PATH" after a search.
		if !strings.Contains(r.stderr, tt.want) || strings.Count(r.stderr, "PATH") > 1 {
			t.Errorf("%s: stderr %q, want %q and PATH named at most once", tt.cmd, r.stderr, tt.want)
		}
	}
}

func TestIntegrationExitStatus(t *testing.T) {
	requiresRoot(t)
	tests := []struct {
		name string
		args []string
		want int
	}{
		{"true", []string{"--", "true"}, 0},
		{"exit 7", []string{"--", "sh", "-c", "exit 7"}, 7},
		{"killed by SIGTERM", []string{"--", "sh", "-c", "kill -TERM $$"}, 143},
		{"killed by SIGKILL", []string{"--", "sh", "-c", "kill -KILL $$"}, 137},
		{"ptrace mode", []string{"--mode", "ptrace", "--", "sh", "-c", "exit 3"}, 3},
		{"seccomp mode", []string{"--mode", "seccomp", "--", "sh", "-c", "exit 4"}, 4},
		{"no dashes", []string{"sh", "-c", "exit 5"}, 5},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := runNodeboot(t, "", nil, append([]string{"exec"}, tt.args...)...)
			if r.code != tt.want {
				t.Errorf("exit code = %d, want %d; stderr:\n%s", r.code, tt.want, r.stderr)
			}
		})
	}
}

// TestIntegrationSignals sends a signal to nodeboot while the command sleeps:
// nodeboot forwards it, the command dies of it, and nodeboot exits 128+N.
func TestIntegrationSignals(t *testing.T) {
	requiresRoot(t)
	for _, sig := range []syscall.Signal{syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP} {
		t.Run(sig.String(), func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			cmd := exec.CommandContext(ctx, nodeboot(t), "exec", "--", "sh", "-c", "echo ready; exec sleep 30")
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			stdout, err := cmd.StdoutPipe()
			if err != nil {
				t.Fatal(err)
			}
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			line, err := bufio.NewReader(stdout).ReadString('\n')
			if line != "ready\n" {
				cmd.Process.Kill()
				cmd.Wait()
				t.Fatalf("command did not start: read %q, %v; stderr:\n%s", line, err, stderr.String())
			}
			// No stopwatch: a signal that is not forwarded leaves the
			// sleep to end by itself, with status 0.
			if err := cmd.Process.Signal(sig); err != nil {
				t.Fatal(err)
			}
			_ = cmd.Wait()
			if want := 128 + int(sig); cmd.ProcessState.ExitCode() != want {
				t.Errorf("exit code = %d (%v), want %d; stderr:\n%s", cmd.ProcessState.ExitCode(), cmd.ProcessState, want, stderr.String())
			}
		})
	}
}

// TestIntegrationSignalAfterExit: the command exits at once and leaves a
// process in a session of its own, which records the SIGTERM it gets, and
// a sleep that ignores SIGTERM. The first SIGTERM to nodeboot reaches the
// first (its trap runs) while nodeboot keeps waiting for the sleep; the
// second kills the sleep and nodeboot exits with the command's status.
func TestIntegrationSignalAfterExit(t *testing.T) {
	requiresRoot(t)
	dir := t.TempDir()
	marks := filepath.Join(dir, "marks")
	script := fmt.Sprintf(`setsid sh -c 'trap "" TERM; sleep 1000 & trap "echo termed >> %[1]s; exit 0" TERM; echo ready >> %[1]s; wait' & exit 3`, marks)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, nodeboot(t), "exec", "--", "sh", "-c", script)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	waitMark := func(mark string) bool {
		for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
			if b, _ := os.ReadFile(marks); strings.Contains(string(b), mark+"\n") {
				return true
			}
		}
		return false
	}
	if !waitMark("ready") {
		cmd.Process.Kill()
		t.Fatalf("the process left behind did not start; stderr:\n%s", stderr.String())
	}
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if !waitMark("termed") {
		cmd.Process.Kill()
		t.Fatalf("the first SIGTERM after the command's exit did not reach the process it left; stderr:\n%s", stderr.String())
	}
	select {
	case <-exited:
		t.Fatalf("nodeboot exited after the first SIGTERM although the sleep ignoring it still ran; stderr:\n%s", stderr.String())
	case <-time.After(300 * time.Millisecond):
	}
	sent := time.Now()
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case <-exited:
	case <-time.After(10 * time.Second):
		cmd.Process.Kill()
		t.Fatalf("the second SIGTERM did not end what was left; stderr:\n%s", stderr.String())
	}
	t.Logf("nodeboot returned %s after the second SIGTERM; stderr:\n%s", time.Since(sent).Round(time.Millisecond), stderr.String())
	if code := cmd.ProcessState.ExitCode(); code != 3 {
		t.Errorf("exit code = %d, want the command's 3", code)
	}
	if !strings.Contains(stderr.String(), "send it again to kill them") {
		t.Errorf("stderr does not say what the first signal did")
	}
}

func TestIntegrationLogIntercepts(t *testing.T) {
	requiresRoot(t)
	for _, mode := range []string{"auto", "seccomp", "ptrace"} {
		t.Run(mode, func(t *testing.T) {
			dir := fakeKernel(t)
			r := runNodeboot(t, "", nil, "exec", "--mode", mode, "--log-intercepts",
				"--redirect", "/proc/sys/kernel="+dir, "--", "cat", "/proc/sys/kernel/panic")
			if r.code != 0 || r.stdout != "42\n" {
				t.Fatalf("exit %d, stdout %q (want 0 and the fake file's \"42\\n\"); stderr:\n%s", r.code, r.stdout, r.stderr)
			}
			re := regexp.MustCompile(`(?m)^openat /proc/sys/kernel/panic -> ` + regexp.QuoteMeta(dir+"/panic") + `$`)
			if !re.MatchString(r.stderr) {
				t.Errorf("stderr lacks a line matching %s:\n%s", re, r.stderr)
			}
		})
	}
}

func TestIntegrationStats(t *testing.T) {
	requiresRoot(t)
	dir := fakeKernel(t)
	r := runNodeboot(t, "", nil, "exec", "--stats", "--redirect", "/proc/sys/kernel="+dir,
		"--", "cat", "/proc/sys/kernel/panic")
	if r.code != 0 || r.stdout != "42\n" {
		t.Fatalf("exit %d, stdout %q; stderr:\n%s", r.code, r.stdout, r.stderr)
	}
	for _, re := range []string{
		`(?m)^SYSCALL +STOPS +REWRITES +PASSES +FAILED +TIME$`,
		`(?m)^openat +[1-9][0-9]* +[1-9][0-9]* +[0-9]+ +0 +\S+$`,
		`(?m)^total +[1-9][0-9]* `,
		`(?m)^RULE +HITS$`,
		`(?m)^redirect /proc/sys/kernel=` + regexp.QuoteMeta(dir) + ` +[1-9][0-9]*$`,
		`(?m)^mode +(seccomp|ptrace)$`,
		`(?m)^stops +[1-9][0-9]*$`,
	} {
		if !regexp.MustCompile(re).MatchString(r.stderr) {
			t.Errorf("stats lack a line matching %s:\n%s", re, r.stderr)
		}
	}
	// The table's total is the "stops" line: every stop is in a row,
	// those at no syscall in (events).
	total := regexp.MustCompile(`(?m)^total +([0-9]+) `).FindStringSubmatch(r.stderr)
	stops := regexp.MustCompile(`(?m)^stops +([0-9]+)$`).FindStringSubmatch(r.stderr)
	if total == nil || stops == nil || total[1] != stops[1] {
		t.Fatalf("the table's total %v disagrees with the stops line %v:\n%s", total, stops, r.stderr)
	}
	sum := 0
	for _, m := range regexp.MustCompile(`(?m)^(\S+) +([0-9]+)( |$)`).FindAllStringSubmatch(r.stderr[:strings.Index(r.stderr, "\ntotal")], -1) {
		n, _ := strconv.Atoi(m[2])
		sum += n
	}
	if want, _ := strconv.Atoi(stops[1]); sum != want {
		t.Errorf("the rows add up to %d stops, the stops line says %d:\n%s", sum, want, r.stderr)
	}
}

func TestIntegrationStdin(t *testing.T) {
	requiresRoot(t)
	r := runNodeboot(t, "hello\n", nil, "exec", "--", "cat")
	if r.code != 0 || r.stdout != "hello\n" {
		t.Errorf("exit %d, stdout %q, want 0 and %q; stderr:\n%s", r.code, r.stdout, "hello\n", r.stderr)
	}
}

func TestIntegrationKeepEnv(t *testing.T) {
	requiresRoot(t)
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "GODEBUG=") && !strings.HasPrefix(kv, "NODEBOOT_") {
			env = append(env, kv)
		}
	}
	r := runNodeboot(t, "", env, "exec", "--", "sh", "-c", `echo "$GODEBUG"`)
	if r.code != 0 || !strings.Contains(r.stdout, "asyncpreemptoff=1") {
		t.Errorf("without --keep-env: exit %d, GODEBUG %q, want asyncpreemptoff=1; stderr:\n%s", r.code, r.stdout, r.stderr)
	}
	r = runNodeboot(t, "", env, "exec", "--keep-env", "--", "sh", "-c", `echo "$GODEBUG"`)
	if r.code != 0 || r.stdout != "\n" {
		t.Errorf("with --keep-env: exit %d, GODEBUG %q, want it unset; stderr:\n%s", r.code, r.stdout, r.stderr)
	}
	r = runNodeboot(t, "", append(env, "NODEBOOT_KEEP_ENV=true"), "exec", "--", "sh", "-c", `echo "$GODEBUG"`)
	if r.code != 0 || r.stdout != "\n" {
		t.Errorf("with NODEBOOT_KEEP_ENV=true: exit %d, GODEBUG %q, want it unset; stderr:\n%s", r.code, r.stdout, r.stderr)
	}
}
