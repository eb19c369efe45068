package inpod_test

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/nodeboot/nodeboot/images"
	"github.com/nodeboot/nodeboot/internal/cli"
)

// helperEnv makes the test binary run "nodeboot pause" (through the whole
// CLI) as a subreaper that has orphaned a child first, instead of the
// tests: the orphan is then its to reap, as a pod's orphans are its PID
// 1's.
const helperEnv = "INPOD_TEST_PAUSE"

// argsEnv makes the test binary run "nodeboot" with the arguments it
// holds (separated by spaces) instead of the tests: a command that runs
// until a signal, in a process of its own.
const argsEnv = "INPOD_TEST_ARGS"

func TestMain(m *testing.M) {
	if os.Getenv(helperEnv) == "1" {
		os.Exit(pauseHelper())
	}
	if a := os.Getenv(argsEnv); a != "" {
		os.Exit(cli.Run(append([]string{"nodeboot"}, strings.Fields(a)...), os.Stdin, os.Stdout, os.Stderr))
	}
	os.Exit(m.Run())
}

// startCommand runs "nodeboot ARGS..." in a process of its own and returns
// it with its stdout.
func startCommand(t *testing.T, args ...string) (*exec.Cmd, *bufio.Reader, *bytes.Buffer) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), argsEnv+"="+strings.Join(args, " "))
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
	})
	return cmd, bufio.NewReader(out), &stderr
}

func pauseHelper() int {
	if err := unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0); err != nil {
		fmt.Fprintln(os.Stderr, "subreaper:", err)
		return 100
	}
	// sh prints its background child's PID and exits: the child is
	// orphaned to us, and ends 300 ms later.
	out, err := exec.Command("sh", "-c", "sleep 0.3 & echo $!").Output()
	if err != nil {
		fmt.Fprintln(os.Stderr, "sh:", err)
		return 101
	}
	fmt.Printf("orphan %s", out)
	return cli.Run([]string{"nodeboot", "pause"}, os.Stdin, os.Stdout, os.Stderr)
}

// startPause starts the helper and returns it with the orphan's PID.
func startPause(t *testing.T) (*exec.Cmd, int) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), helperEnv+"=1")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
	})
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil {
		t.Fatalf("pause helper: %v; stderr: %s", err, stderr.String())
	}
	pid, err := strconv.Atoi(strings.TrimSpace(strings.TrimPrefix(line, "orphan ")))
	if err != nil {
		t.Fatalf("pause helper said %q", line)
	}
	return cmd, pid
}

// procState is the state letter of pid ("" once it is gone).
func procState(pid int) string {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return ""
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 || i+3 > len(s) {
		return "?"
	}
	return s[i+2 : i+3]
}

// TestPauseReapsAndStops: the orphan does not stay a zombie, and SIGTERM
// ends pause with status 0.
func TestPauseReapsAndStops(t *testing.T) {
	for _, sig := range []syscall.Signal{syscall.SIGTERM, syscall.SIGINT} {
		t.Run(sig.String(), func(t *testing.T) {
			cmd, orphan := startPause(t)
			deadline := time.Now().Add(10 * time.Second)
			zombieSince := time.Time{}
			for {
				st := procState(orphan)
				if st == "" {
					break // reaped
				}
				if st == "Z" && zombieSince.IsZero() {
					zombieSince = time.Now()
				}
				if !zombieSince.IsZero() && time.Since(zombieSince) > 3*time.Second {
					t.Fatalf("orphan %d stayed a zombie for 3 s: pause does not reap", orphan)
				}
				if time.Now().After(deadline) {
					t.Fatalf("orphan %d still %s after 10 s", orphan, st)
				}
				time.Sleep(20 * time.Millisecond)
			}
			// pause keeps running: it ends only when told, and not on
			// the signals a PID 1 ignores.
			for _, s := range []syscall.Signal{syscall.SIGHUP, syscall.SIGQUIT, syscall.SIGUSR1} {
				if err := cmd.Process.Signal(s); err != nil {
					t.Fatal(err)
				}
			}
			time.Sleep(200 * time.Millisecond)
			if st := procState(cmd.Process.Pid); st == "" || st == "Z" {
				t.Fatalf("pause ended by itself (state %q)", st)
			}
			start := time.Now()
			if err := cmd.Process.Signal(sig); err != nil {
				t.Fatal(err)
			}
			if err := cmd.Wait(); err != nil {
				t.Fatalf("pause after %s: %v, want exit status 0", sig, err)
			}
			t.Logf("pause exited 0 %s after %s", time.Since(start).Round(time.Millisecond), sig)
		})
	}
}

func TestSmokeEcho(t *testing.T) {
	t.Setenv("NODE_NAME", "node-a")
	var out, errOut bytes.Buffer
	if code := cli.Run([]string{"nodeboot", "smoke-echo"}, nil, &out, &errOut); code != 0 {
		t.Fatalf("exit %d: %s", code, errOut.String())
	}
	if want := images.SmokeLine + "node-a\n"; out.String() != want {
		t.Errorf("printed %q, want %q", out.String(), want)
	}
	t.Setenv("NODE_NAME", "")
	out.Reset()
	cli.Run([]string{"nodeboot", "smoke-echo"}, nil, &out, &errOut)
	if want := images.SmokeLine + "unknown\n"; out.String() != want {
		t.Errorf("without NODE_NAME: %q, want %q", out.String(), want)
	}
	if code := cli.Run([]string{"nodeboot", "smoke-echo", "x"}, nil, &out, &errOut); code != 2 {
		t.Errorf("with an argument: exit %d, want 2", code)
	}
}

func TestSmokeCat(t *testing.T) {
	dir := t.TempDir()
	a, b := dir+"/a", dir+"/b"
	os.WriteFile(a, []byte("67108864\n"), 0o644)
	os.WriteFile(b, []byte("0"), 0o644)
	var out, errOut bytes.Buffer
	if code := cli.Run([]string{"nodeboot", "smoke-cat", a, b}, nil, &out, &errOut); code != 0 {
		t.Fatalf("exit %d: %s", code, errOut.String())
	}
	if want := a + "=67108864\n" + b + "=0\n"; out.String() != want {
		t.Errorf("printed %q, want %q", out.String(), want)
	}
	out.Reset()
	errOut.Reset()
	if code := cli.Run([]string{"nodeboot", "smoke-cat", dir + "/missing"}, nil, &out, &errOut); code != 1 || !strings.Contains(errOut.String(), "missing") {
		t.Errorf("a missing file: exit %d, %q; want 1 naming it", code, errOut.String())
	}
	if code := cli.Run([]string{"nodeboot", "smoke-cat"}, nil, &out, &errOut); code != 2 {
		t.Errorf("no FILE: exit %d, want 2", code)
	}
}

// TestHidden: the in-pod commands are not in the help people read.
func TestHidden(t *testing.T) {
	var out, errOut bytes.Buffer
	if code := cli.Run([]string{"nodeboot", "--help"}, nil, &out, &errOut); code != 0 {
		t.Fatalf("exit %d: %s", code, errOut.String())
	}
	for _, c := range []string{"pause", "smoke-echo", "smoke-cat", "smoke-serve", "smoke-burn"} {
		if strings.Contains(out.String(), "\n   "+c) {
			t.Errorf("--help lists %s:\n%s", c, out.String())
		}
	}
}

// TestSmokeServe: the port it prints answers every connection with the
// serve line of $NODE_NAME, and SIGTERM ends it with status 0.
func TestSmokeServe(t *testing.T) {
	t.Setenv("NODE_NAME", "pf")
	cmd, out, stderr := startCommand(t, "smoke-serve", "--listen", "127.0.0.1:0")
	line, err := out.ReadString('\n')
	addr, ok := strings.CutPrefix(strings.TrimSpace(line), "smoke-serve: listening on ")
	if err != nil || !ok {
		t.Fatalf("first line %q (%v), want the address; stderr: %s", line, err, stderr.String())
	}
	for i := range 3 {
		c, err := net.DialTimeout("tcp", addr, 5*time.Second)
		if err != nil {
			t.Fatalf("connection %d: %v", i, err)
		}
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		b, err := io.ReadAll(c) // the server closes after the line
		c.Close()
		if want := images.ServeLine("pf") + "\n"; err != nil || string(b) != want {
			t.Fatalf("connection %d read %q (%v), want %q", i, b, err, want)
		}
	}
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("smoke-serve after SIGTERM: %v, want exit status 0; stderr: %s", err, stderr.String())
	}
	var o, e bytes.Buffer
	if code := cli.Run([]string{"nodeboot", "smoke-serve", "x"}, nil, &o, &e); code != 2 {
		t.Errorf("with an argument: exit %d, want 2", code)
	}
	if code := cli.Run([]string{"nodeboot", "smoke-serve", "--listen", "127.0.0.1:-1"}, nil, &o, &e); code != 1 || !strings.Contains(e.String(), "smoke-serve") {
		t.Errorf("a bad --listen: exit %d, %q; want 1 naming smoke-serve", code, e.String())
	}
}

// TestSmokeBurn: the process's CPU time grows by about busy/period of the
// wall time, and SIGTERM ends it with status 0.
func TestSmokeBurn(t *testing.T) {
	cmd, _, stderr := startCommand(t, "smoke-burn", "--busy", "50ms", "--period", "100ms")
	time.Sleep(200 * time.Millisecond) // past the Go runtime's start
	c0, w0 := cpuTime(t, cmd.Process.Pid), time.Now()
	time.Sleep(time.Second)
	c1, w1 := cpuTime(t, cmd.Process.Pid), time.Now()
	share := float64(c1-c0) / float64(w1.Sub(w0))
	t.Logf("smoke-burn --busy 50ms --period 100ms: %s of CPU in %s (%.0f%%)", c1-c0, w1.Sub(w0).Round(time.Millisecond), 100*share)
	// Half a CPU asked for; a busy machine gives less, never nothing.
	if share < 0.1 || share > 0.8 {
		t.Errorf("CPU share %.2f, want about 0.5", share)
	}
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("smoke-burn after SIGTERM: %v, want exit status 0; stderr: %s", err, stderr.String())
	}
	var o, e bytes.Buffer
	if code := cli.Run([]string{"nodeboot", "smoke-burn", "--busy", "2s", "--period", "1s"}, nil, &o, &e); code != 2 {
		t.Errorf("--busy above --period: exit %d, want 2", code)
	}
}

// cpuTime is pid's user and system time from /proc/PID/stat.
func cpuTime(t *testing.T, pid int) time.Duration {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		t.Fatal(err)
	}
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+2:])
	// Fields 14 and 15 (utime, stime), counted from the state (field 3).
	ut, _ := strconv.Atoi(f[11])
	st, _ := strconv.Atoi(f[12])
	// USER_HZ is 100 on every Linux ABI Go supports.
	return time.Duration(ut+st) * 10 * time.Millisecond
}
