package logs_test

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/nodeboot/nodeboot/internal/cli"
)

// -f is tested in a real process, interrupted with SIGINT as by Ctrl-C.
const asMain = "NODEBOOT_TEST_AS_NODEBOOT"

func TestMain(m *testing.M) {
	if os.Getenv(asMain) == "1" {
		os.Exit(cli.Run(os.Args, os.Stdin, os.Stdout, os.Stderr))
	}
	os.Exit(m.Run())
}

func run(args ...string) (int, string, string) {
	var out, errOut bytes.Buffer
	code := cli.Run(append([]string{"nodeboot"}, args...), strings.NewReader(""), &out, &errOut)
	return code, out.String(), errOut.String()
}

func TestLogs(t *testing.T) {
	dir := t.TempDir()
	if err := os.Mkdir(filepath.Join(dir, "logs"), 0o700); err != nil {
		t.Fatal(err)
	}
	var k3s strings.Builder
	for i := 1; i <= 5000; i++ { // more than one 32 KiB chunk
		fmt.Fprintf(&k3s, "k3s line %d\n", i)
	}
	if err := os.WriteFile(filepath.Join(dir, "logs", "k3s.log"), []byte(k3s.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "logs", "nodeboot.log"), []byte("a\nb\nc"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"all", nil, k3s.String()},
		{"tail 2", []string{"--tail", "2"}, "k3s line 4999\nk3s line 5000\n"},
		{"tail 0", []string{"--tail", "0"}, ""},
		{"tail more than there is", []string{"--nodeboot", "--tail", "10"}, "a\nb\nc"},
		{"tail 1 without a final newline", []string{"--nodeboot", "--tail", "1"}, "c"},
		{"tail across chunks", []string{"--tail", "3000"}, k3s.String()[strings.Index(k3s.String(), "k3s line 2001\n"):]},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, stdout, stderr := run(append([]string{"logs", "--data-dir", dir}, tt.args...)...)
			if code != 0 || stdout != tt.want {
				t.Errorf("exit %d, stderr %q, stdout (%d bytes) %.80q; want %.80q", code, stderr, len(stdout), stdout, tt.want)
			}
		})
	}
	code, _, stderr := run("logs", "--data-dir", t.TempDir())
	if code != 1 || !strings.Contains(stderr, "does not exist: has `nodeboot up --data-dir") {
		t.Errorf("no log: exit %d, %q", code, stderr)
	}
	code, stdout, stderr := run("logs", "--data-dir", dir, "--tail", "-1")
	if code != 0 || stdout != k3s.String() {
		t.Errorf("--tail -1 (all): exit %d, %d bytes, stderr %q", code, len(stdout), stderr)
	}
	code, stdout, stderr = run("logs", "--data-dir", dir, "--tail", "-5")
	if want := "nodeboot: logs: --tail -5: want a number of lines, 0 or more (-1, the default, prints them all)\n"; code != 2 || stderr != want || stdout != "" {
		t.Errorf("--tail -5: exit %d, stdout %d bytes, stderr %q; want exit 2 and %q", code, len(stdout), stderr, want)
	}
}

// lockedBuffer is written by the copying goroutine of exec.Cmd.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func TestFollow(t *testing.T) {
	dir := t.TempDir()
	if err := os.Mkdir(filepath.Join(dir, "logs"), 0o700); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "logs", "k3s.log")
	if err := os.WriteFile(path, []byte("old 1\nold 2\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	var out lockedBuffer
	cmd := exec.Command(os.Args[0], "logs", "--data-dir", dir, "-f", "--tail", "1")
	cmd.Env = append(os.Environ(), asMain+"=1")
	cmd.Stdout = &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	wait := func(want string) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for out.String() != want {
			if time.Now().After(deadline) {
				t.Fatalf("output %q, want %q", out.String(), want)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	wait("old 2\n")
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteString("new 1\n")
	f.Close()
	wait("old 2\nnew 1\n")
	// Truncated (a new run): read again from the start.
	if err := os.WriteFile(path, []byte("fresh\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	wait("old 2\nnew 1\nfresh\n")
	cmd.Process.Signal(syscall.SIGINT)
	if err := cmd.Wait(); err != nil {
		t.Errorf("logs -f after SIGINT: %v (want exit 0)", err)
	}
}
