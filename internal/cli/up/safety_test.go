package up_test

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/nodeboot/nodeboot/internal/instance"
	"github.com/nodeboot/nodeboot/internal/testenv"
)

// TestConfigSpecialFiles: up --config /dev/zero used to read until the
// process ran out of memory, and a FIFO hung it. Both are usage errors
// now, at once. The child's address space is capped so that a regression
// fails here instead of eating the machine's memory.
func TestConfigSpecialFiles(t *testing.T) {
	fifo := filepath.Join(t.TempDir(), "config.yaml")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ path, want string }{
		{"/dev/zero", "--config: /dev/zero is a character device, not a regular file"},
		{fifo, "--config: " + fifo + " is a FIFO, not a regular file"},
	} {
		t.Run(filepath.Base(tc.path), func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			cmd := nodeboot(nil, "up", "--config", tc.path)
			cmd = exec.CommandContext(ctx, cmd.Path, cmd.Args[1:]...)
			cmd.Env = append(os.Environ(), asMain+"=1")
			var errOut bytes.Buffer
			cmd.Stderr = &errOut
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			lim := unix.Rlimit{Cur: 2 << 30, Max: 2 << 30}
			unix.Prlimit(cmd.Process.Pid, unix.RLIMIT_AS, &lim, nil)
			cmd.Wait()
			if ctx.Err() != nil {
				t.Fatalf("up --config %s did not end within 30s", tc.path)
			}
			if code := cmd.ProcessState.ExitCode(); code != 2 || !strings.Contains(errOut.String(), tc.want) {
				t.Errorf("exit %d, stderr %q; want 2 and %q", code, errOut.String(), tc.want)
			}
		})
	}
}

// TestTokenFileUsage checks --token-file's bad inputs.
func TestTokenFileUsage(t *testing.T) {
	dir := t.TempDir()
	k3s := standIn(t, "exit 0")
	empty := filepath.Join(dir, "empty")
	if err := os.WriteFile(empty, []byte("\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	agent := []string{"up", "--data-dir", filepath.Join(dir, "data"), "--k3s", k3s, "--role", "agent", "--server", "https://10.0.0.1:6443"}
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"both", []string{"--token", "t", "--token-file", empty}, "--token and --token-file both given"},
		{"empty", []string{"--token-file", empty}, "--token-file " + empty + " is empty"},
		{"missing", []string{"--token-file", filepath.Join(dir, "nope")}, "no such file"},
		{"a device", []string{"--token-file", "/dev/zero"}, "/dev/zero is a character device"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.name != "both" {
				testenv.RequireRoot(t, "up reads --token-file after its root check, which refuses a user other than root")
			}
			_, stderr, code := run(t, nil, append(agent, tc.args...)...)
			if code != 2 || !strings.Contains(stderr, tc.want) {
				t.Errorf("exit %d, stderr %q; want 2 and %q", code, stderr, tc.want)
			}
		})
	}
}

// TestIntegrationTokenNotOnCommandLine: the agent's token used to stay in
// the detached supervisor's argv, which every user reads with ps. Now the
// supervisor gets it on a pipe, and k3s in a 0600 file.
func TestIntegrationTokenNotOnCommandLine(t *testing.T) {
	needRoot(t)
	const secret = "K10deadbeef::server:s3cr3t-token"
	tokenFile := filepath.Join(t.TempDir(), "node-token")
	if err := os.WriteFile(tokenFile, []byte(secret+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		env  []string
		args []string
	}{
		{"--token", nil, []string{"--token", secret}},
		{"--token=", nil, []string{"--token=" + secret}},
		{"--token-file", nil, []string{"--token-file", tokenFile}},
		{"NODEBOOT_TOKEN", []string{"NODEBOOT_TOKEN=" + secret}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "data")
			down(t, dir)
			in, _ := instance.At(dir)
			k3s := standIn(t, keepsRunning)
			args := append([]string{"up", "--data-dir", dir, "--k3s", k3s, "--node-name", "n1", "--detach",
				"--role", "agent", "--server", "https://127.0.0.1:1"}, tc.args...)
			stdout, stderr, code := run(t, tc.env, args...)
			if code != 0 {
				t.Fatalf("up --detach: exit %d\n%s", code, stderr)
			}
			pid, err := strconv.Atoi(strings.TrimSpace(stdout))
			if err != nil {
				t.Fatalf("up --detach printed %q", stdout)
			}
			k3sPid := k3sPID(t, in)
			for _, f := range []string{
				"/proc/" + strconv.Itoa(pid) + "/cmdline", "/proc/" + strconv.Itoa(pid) + "/environ",
				"/proc/" + strconv.Itoa(k3sPid) + "/cmdline", "/proc/" + strconv.Itoa(k3sPid) + "/environ",
			} {
				b, err := os.ReadFile(f)
				if err != nil {
					t.Fatal(err)
				}
				if bytes.Contains(b, []byte("s3cr3t")) {
					t.Errorf("%s holds the token: %q", f, bytes.ReplaceAll(b, []byte{0}, []byte{' '}))
				}
			}
			// The stand-in printed its arguments: k3s got the token in a file.
			var log []byte
			waitFor(t, 10*time.Second, "k3s.log", func() bool {
				log, _ = os.ReadFile(in.K3sLog())
				return bytes.Contains(log, []byte("stand-in k3s"))
			})
			m := regexp.MustCompile(`--token-file (\S+)`).FindSubmatch(log)
			if m == nil {
				t.Fatalf("k3s got no --token-file:\n%s", log)
			}
			if b, err := os.ReadFile(string(m[1])); err != nil || strings.TrimSpace(string(b)) != secret {
				t.Errorf("k3s's token file holds %q, %v; want the token", b, err)
			}
			if fi, err := os.Stat(string(m[1])); err == nil && fi.Mode().Perm() != 0o600 {
				t.Errorf("k3s's token file mode %v, want 0600", fi.Mode().Perm())
			}
		})
	}
}
