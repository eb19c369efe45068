//go:build !nointegration

package interceptor

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// Processes, threads and signals under the tracer.

// TestIntegrationThreads has 32 threads (pthreads, and goroutines locked to
// their OS threads) open redirected, unredirected and missing paths at the
// same time, many times over; every read must be right.
func TestIntegrationThreads(t *testing.T) {
	requireIntegration(t)
	const threads, iters = 32, 100
	pairs := []string{
		"{G}/both", "host-both",
		"{G}/only-guest", "guest-only",
		"{G}/only-host", "host-only",
		"{G}/sub/f", "host2-f",
		"{G}/nothing", "!ENOENT",
		"{T}/other", "outside",
		"/proc/sys/kernel/ostype", procsysOstype,
	}
	const redirectedPerIter = 4 // both, only-host, sub/f, ostype
	for _, prog := range []string{"threads", "go-threads"} {
		for _, mode := range testModes {
			t.Run(prog+"/"+mode.String(), func(t *testing.T) {
				bin := traceeBin(t, prog)
				tr := newFakeTree(t)
				args := []string{prog, fmt.Sprint(threads), fmt.Sprint(iters)}
				args = append(args, tr.expandAll(pairs)...)
				cfg := Config{Path: bin, Args: args, Rules: tr.rules(), Mode: mode}
				began := time.Now()
				r := runTraced(t, cfg)
				t.Logf("%s [%v]: %v", prog, mode, time.Since(began).Round(time.Millisecond))
				want := fmt.Sprintf("ok opens=%d", threads*iters*len(pairs)/2)
				if r.exit != (Exit{}) || strings.TrimSpace(r.stdout) != want {
					t.Fatalf("%s: want exit 0 and %q\n%s", describeRun(cfg), want, r.output())
				}
				st, _ := statsSyscall(r.stats, "openat")
				if least := uint64(threads * iters * redirectedPerIter); st.Rewrites < least {
					t.Errorf("%s: Stats openat Rewrites = %d, want at least %d (%d threads x %d iterations x %d redirected paths)",
						describeRun(cfg), st.Rewrites, least, threads, iters, redirectedPerIter)
				}
			})
		}
	}
}

// TestIntegrationForkExec follows children made by fork, vfork,
// posix_spawn (clone3 or CLONE_VFORK), os/exec and shells three deep: each
// reads a redirected file.
func TestIntegrationForkExec(t *testing.T) {
	requireIntegration(t)
	if _, err := os.Stat("/bin/sh"); err != nil {
		t.Skipf("needs /bin/sh: %v", err)
	}
	for _, mode := range testModes {
		t.Run(mode.String(), func(t *testing.T) {
			t.Run("sh-three-deep", func(t *testing.T) {
				tr := newFakeTree(t)
				// Level 1 runs cat, level 2 a shell redirection, level 3
				// cat of two redirected files.
				script := tr.expand(`cat /proc/sys/kernel/ostype; sh -c 'read -r x < /proc/sys/kernel/ostype; echo "2:$x"; ` +
					`sh -c "cat {G}/both; echo; cat /proc/sys/kernel/ostype"'`)
				cfg := Config{Path: "/bin/sh", Args: []string{"sh", "-c", script}, Rules: tr.rules(), Mode: mode}
				r := runTraced(t, cfg)
				want := "FakeOS\n2:FakeOS\nhost-both\nFakeOS\n"
				if r.exit != (Exit{}) || r.stdout != want {
					t.Errorf("%s: stdout %q, want %q (each level reads the host's files)\n%s", describeRun(cfg), r.stdout, want, r.output())
				}
			})
			t.Run("c-fork-vfork-spawn", func(t *testing.T) {
				forker, sysc := traceeBin(t, "forker"), traceeBin(t, "sysc")
				tr := newFakeTree(t)
				cfg := Config{Path: forker, Args: []string{"forker", sysc, tr.G + "/both"}, Rules: tr.rules(), Mode: mode}
				r := runTraced(t, cfg)
				var got []string
				for _, line := range strings.Split(r.stdout, "\n") {
					if strings.Contains(line, "data=") || strings.HasSuffix(line, ":") || strings.Contains(line, "failed") {
						got = append(got, line)
					}
				}
				want := []string{
					"parent data=host-both",
					"fork data=host-both",
					"grandchild data=host-both",
					"vfork-exec:",
					"data=host-both",
					"spawn:",
					"data=host-both",
					"thread-fork data=host-both",
					"parent-end data=host-both",
				}
				if r.exit != (Exit{}) || strings.Join(got, "\n") != strings.Join(want, "\n") {
					t.Errorf("%s: got lines\n%s\nwant\n%s\n%s", describeRun(cfg), indentOutput(strings.Join(got, "\n")),
						indentOutput(strings.Join(want, "\n")), r.output())
				}
			})
			t.Run("go-os-exec", func(t *testing.T) {
				spawn, sysc := traceeBin(t, "go-spawn"), traceeBin(t, "sysc")
				tr := newFakeTree(t)
				const n = 8
				cfg := Config{Path: spawn, Args: []string{"spawn", fmt.Sprint(n), sysc, "open", tr.G + "/both", "r"},
					Rules: tr.rules(), Mode: mode}
				r := runTraced(t, cfg)
				if c := strings.Count(r.stdout, "data=host-both\n"); r.exit != (Exit{}) || c != n {
					t.Errorf("%s: %d children read host-both, want %d; exit %v\n%s", describeRun(cfg), c, n, r.exit, r.output())
				}
			})
		})
	}
}

// TestIntegrationForkEventAfterChildExec races a fork event against the
// child it announces. The tracer resumes a new child at its first stop,
// which may come before the parent's vfork/fork event; the child can then
// exec and name a redirected path before that event is read. The event
// must not hand the exec'd child the parent's address space, whose scratch
// memory the new program does not have: the path would be left alone.
//
// A slow ProcessObserver (as the virtual kernel is) lets the shell start
// the next child while the tracer is still busy with the last one's exit,
// so both stops are pending and wait4 reports the newer tracee first; busy
// processes on every core delay the tracer further, as on a loaded CI
// machine.
func TestIntegrationForkEventAfterChildExec(t *testing.T) {
	requireIntegration(t)
	if _, err := os.Stat("/bin/sh"); err != nil {
		t.Skipf("needs /bin/sh: %v", err)
	}
	for range runtime.NumCPU() {
		// Bounded by timeout(1) and killed as a group, so that a test
		// binary that is itself killed leaves no busy loop behind.
		hog := exec.Command("timeout", "120", "/bin/sh", "-c", "while :; do :; done")
		hog.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
		if err := hog.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { syscall.Kill(-hog.Process.Pid, syscall.SIGKILL); hog.Wait() })
	}
	const tracers, children = 2, 40
	tr := newFakeTree(t)
	// The shell reads a redirected file itself first, so its address
	// space has scratch memory that a wrongly shared space would offer.
	// It is not the tracer's own child: wait4 looks at the tracer's
	// children before its other tracees, and at the newest tracee first.
	script := tr.expand(`sh -c 'read -r x < {G}/only-host; i=0; while [ $i -lt ` + fmt.Sprint(children) +
		` ]; do cat {G}/only-host || exit 9; echo; i=$((i+1)); done'; exit $?`)
	// The parallel subtests run together once the loop has started them all.
	for i := range tracers {
		t.Run(fmt.Sprint("tracer", i), func(t *testing.T) {
			t.Parallel()
			var logBuf outBuffer
			cfg := Config{Path: "/bin/sh", Args: []string{"sh", "-c", script}, Rules: tr.rules(), Mode: ModeSeccomp,
				Files:  slowObserver{guest: "/nonexistent-nodeboot"},
				Logger: slog.New(slog.NewTextHandler(&logBuf, nil))}
			r := runTraced(t, cfg)
			if c := strings.Count(r.stdout, "host-only\n"); r.exit != (Exit{}) || c != children {
				t.Errorf("%d of %d children read the host file, exit %v\n%s\nlog:\n%s", c, children, r.exit, r.output(), indentOutput(logBuf.String()))
			}
		})
	}
}

// TestIntegrationForeignChildren runs the tracer in a process that has
// other children, started from many OS threads (os/exec forks on whatever
// thread it runs on). The tracer must neither wait for them nor reap them:
// their owners' Wait must still get their status.
func TestIntegrationForeignChildren(t *testing.T) {
	requireIntegration(t)
	var others []*exec.Cmd
	for range 8 {
		done := make(chan struct{})
		go func() {
			defer close(done)
			runtime.LockOSThread()
			defer runtime.UnlockOSThread()
			c := exec.Command("sleep", "1000")
			if err := c.Start(); err != nil {
				t.Error(err)
				return
			}
			others = append(others, c)
		}()
		<-done
	}
	t.Cleanup(func() {
		for _, c := range others {
			c.Process.Kill()
			c.Wait()
		}
	})
	for i := range 8 {
		cfg := Config{Path: "/bin/sh", Args: []string{"sh", "-c", "exit 3"}}
		r := runTraced(t, cfg)
		if r.exit != (Exit{Code: 3}) || r.waitErr != nil {
			t.Fatalf("run %d: exit %v, wait error %v, want exit 3\n%s", i, r.exit, r.waitErr, r.output())
		}
	}
	for _, c := range others {
		c.Process.Kill()
		err := c.Wait()
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.ProcessState.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
			t.Errorf("the other child %d: Wait = %v, want killed by SIGKILL (its status was taken)", c.Process.Pid, err)
		}
	}
	others = nil
}

// slowObserver serves nothing and takes its time over each process event.
type slowObserver struct{ guest string }

func (s slowObserver) Serves(p string) bool          { return p == s.guest }
func (s slowObserver) Serve(req *FileRequest) string { return "" }
func (s slowObserver) Done(*FileRequest, int64)      {}
func (s slowObserver) Forked(parent, child int)      { time.Sleep(200 * time.Microsecond) }
func (s slowObserver) Exited(pid int)                { time.Sleep(2 * time.Millisecond) }

// isStopped reports whether a /proc/PID/stat state letter is a stop: 'T'
// (stopped by a signal) or 't' (a ptrace stop, which is what a traced
// process in group-stop shows under PTRACE_LISTEN).
func isStopped(s byte) bool { return s == 'T' || s == 't' }

// TestIntegrationSignals checks job control and signal delivery through
// the tracer.
func TestIntegrationSignals(t *testing.T) {
	requireIntegration(t)
	for _, mode := range testModes {
		t.Run(mode.String(), func(t *testing.T) {
			t.Run("stop-cont", func(t *testing.T) { testStopCont(t, mode) })
			t.Run("gc-while-tracee-stopped", func(t *testing.T) { testGCWhileStopped(t, mode) })
			t.Run("sigterm", func(t *testing.T) {
				ticker := traceeBin(t, "ticker")
				tr := newFakeTree(t)
				cfg := Config{Path: ticker, Args: []string{"ticker", tr.G + "/both", tr.T + "/done"}, Rules: tr.rules(), Mode: mode}
				tcr, stdout, stderr, rw, cancel := startTraced(t, cfg)
				t.Cleanup(func() { writeTestFile(tr.T+"/done", "") })
				if !stdout.waitFor(5*time.Second, func(s string) bool { return strings.Count(s, "tick ") >= 2 }) {
					tcr.Kill()
					t.Fatalf("%s: no ticks within 5 s\nstdout:\n%s\nstderr:\n%s", describeRun(cfg), stdout, stderr)
				}
				if err := tcr.Signal(syscall.SIGTERM); err != nil {
					t.Errorf("Signal(SIGTERM): %v", err)
				}
				r := finishTraced(t, cfg, tcr, stdout, stderr, rw, cancel)
				if r.exit != (Exit{Signal: syscall.SIGTERM}) || r.exit.ExitCode() != 143 {
					t.Errorf("%s: after SIGTERM exit = %+v (ExitCode %d), want Signal SIGTERM, ExitCode 143\n%s",
						describeRun(cfg), r.exit, r.exit.ExitCode(), r.output())
				}
			})
			t.Run("c-handler", func(t *testing.T) {
				bin := traceeBin(t, "sighandler")
				tr := newFakeTree(t)
				cfg := Config{Path: bin, Args: []string{"sighandler", fmt.Sprint(os.Getpid())}, Rules: tr.rules(), Mode: mode}
				tcr, stdout, stderr, rw, cancel := startTraced(t, cfg)
				if !stdout.waitFor(5*time.Second, func(s string) bool { return strings.Contains(s, "ready\n") }) {
					tcr.Kill()
					t.Fatalf("%s: not ready within 5 s\nstdout:\n%s\nstderr:\n%s", describeRun(cfg), stdout, stderr)
				}
				// Sent with kill(2) from this process, so the handler must
				// see SI_USER and this pid, as without tracing.
				if err := unix.Kill(tcr.PID(), unix.SIGUSR1); err != nil {
					t.Errorf("kill(SIGUSR1): %v", err)
				}
				r := finishTraced(t, cfg, tcr, stdout, stderr, rw, cancel)
				if r.exit != (Exit{}) || !strings.Contains(r.stdout, "all ok") {
					t.Errorf("%s: the handlers saw something else than without tracing (the program prints what it got)\n%s",
						describeRun(cfg), r.output())
				}
			})
			t.Run("signal-all-once-per-process", func(t *testing.T) {
				// Four multi-threaded Go processes, three in sessions of
				// their own: SignalAll must reach each, exactly once.
				bin := traceeBin(t, "go-termcount")
				cfg := Config{Path: bin, Args: []string{"termcount", "3"}, Mode: mode, Rules: newFakeTree(t).rules()}
				tcr, stdout, stderr, rw, cancel := startTraced(t, cfg)
				if !stdout.waitFor(10*time.Second, func(s string) bool { return strings.Count(s, "ready ") == 4 }) {
					tcr.Kill()
					t.Fatalf("%s: not 4 processes ready within 10 s\nstdout:\n%s\nstderr:\n%s", describeRun(cfg), stdout, stderr)
				}
				var pids []string
				threads := 0
				for _, l := range strings.Split(stdout.String(), "\n") {
					if f := strings.Fields(l); len(f) == 3 && f[0] == "ready" {
						pids = append(pids, f[1])
						n, _ := strconv.Atoi(f[2])
						threads += n
					}
				}
				if n := tcr.SignalAll(syscall.SIGTERM); n != 4 {
					t.Errorf("SignalAll(SIGTERM) signalled %d processes, want 4 (%s)", n, strings.Join(pids, ", "))
				}
				r := finishTraced(t, cfg, tcr, stdout, stderr, rw, cancel)
				if r.exit != (Exit{}) {
					t.Errorf("%s: exit = %+v, want 0\n%s", describeRun(cfg), r.exit, r.output())
				}
				for _, pid := range pids {
					if !strings.Contains(r.stdout, pid+" got 1\n") {
						t.Errorf("process %s did not get exactly one SIGTERM (%d threads in the 4 processes)\n%s", pid, threads, r.output())
					}
				}
			})
			t.Run("go-handler", func(t *testing.T) {
				bin := traceeBin(t, "go-signals")
				cfg := Config{Path: bin, Args: []string{"signals"}, Mode: mode, Rules: newFakeTree(t).rules()}
				tcr, stdout, stderr, rw, cancel := startTraced(t, cfg)
				if !stdout.waitFor(5*time.Second, func(s string) bool { return strings.Contains(s, "ready\n") }) {
					tcr.Kill()
					t.Fatalf("%s: not ready within 5 s\nstdout:\n%s\nstderr:\n%s", describeRun(cfg), stdout, stderr)
				}
				if err := tcr.Signal(syscall.SIGUSR1); err != nil {
					t.Errorf("Signal(SIGUSR1): %v", err)
				}
				r := finishTraced(t, cfg, tcr, stdout, stderr, rw, cancel)
				if r.exit != (Exit{Code: 7}) || !strings.Contains(r.stdout, "got SIGUSR1") || !strings.Contains(r.stdout, "got SIGUSR2") {
					t.Errorf("%s: want exit status 7 after got SIGUSR1 and got SIGUSR2\n%s", describeRun(cfg), r.output())
				}
			})
		})
	}
}

// testStopCont stops a ticking tracee with SIGSTOP, checks that it stays
// stopped, continues it with SIGCONT and lets it finish.
func testStopCont(t *testing.T, mode Mode) {
	ticker := traceeBin(t, "ticker")
	tr := newFakeTree(t)
	done := tr.T + "/done"
	cfg := Config{Path: ticker, Args: []string{"ticker", tr.G + "/both", done}, Rules: tr.rules(), Mode: mode}
	tcr, stdout, stderr, rw, cancel := startTraced(t, cfg)
	stopped := false
	t.Cleanup(func() {
		if stopped {
			tcr.Signal(syscall.SIGCONT)
		}
		writeTestFile(done, "")
	})
	ticks := func() int { return strings.Count(stdout.String(), "tick ") }
	if !stdout.waitFor(5*time.Second, func(s string) bool { return strings.Count(s, "tick ") >= 3 }) {
		tcr.Kill()
		t.Fatalf("%s: fewer than 3 ticks within 5 s\nstdout:\n%s\nstderr:\n%s", describeRun(cfg), stdout, stderr)
	}
	pid := tcr.PID()
	// Safety valve: if the tracer blocks this process's stop-the-world
	// while the tracee is stopped (see gc-while-tracee-stopped), nothing
	// here could send SIGCONT; an outside process does after 5 s, which
	// turns a hang into a failure below.
	if valve := exec.Command("/bin/sh", "-c", fmt.Sprintf("sleep 5; kill -CONT %d", pid)); valve.Start() == nil {
		t.Cleanup(func() { valve.Process.Kill(); valve.Wait() })
	}
	if err := tcr.Signal(syscall.SIGSTOP); err != nil {
		t.Fatalf("Signal(SIGSTOP): %v", err)
	}
	stopAt := time.Now()
	valveNote := func() string {
		if time.Since(stopAt) > 4*time.Second {
			return " (more than 4 s after SIGSTOP: this is likely the safety valve's SIGCONT, sent because this " +
				"process could not run: see gc-while-tracee-stopped)"
		}
		return ""
	}
	stopped = true
	var state byte
	deadline := time.Now().Add(time.Second)
	for {
		s, err := procStateOf(pid)
		if err != nil {
			t.Fatalf("%s: after SIGSTOP: %v", describeRun(cfg), err)
		}
		state = s
		if isStopped(s) || time.Now().After(deadline) {
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	if !isStopped(state) {
		t.Fatalf("%s: 1 s after SIGSTOP /proc/%d/stat state is %q, want 'T' (stopped) or 't' (tracing stop)", describeRun(cfg), pid, state)
	}
	t.Logf("[%v] state after SIGSTOP: %q", mode, state)
	// 't' is also the state of every short syscall or seccomp stop, so
	// one sample proves little: the loop below wants it for 300 ms. Let a
	// tick written just before the stop drain through the pipe first.
	time.Sleep(50 * time.Millisecond)
	n1 := ticks()
	for i := 0; i < 30; i++ {
		time.Sleep(10 * time.Millisecond)
		if s, _ := procStateOf(pid); !isStopped(s) {
			t.Errorf("%s: %v after SIGSTOP, without SIGCONT, /proc/%d/stat state is %q, want it still stopped%s",
				describeRun(cfg), time.Since(stopAt).Round(time.Millisecond), pid, s, valveNote())
			break
		}
	}
	if n2 := ticks(); n2 != n1 {
		t.Errorf("%s: %d ticks printed while stopped, want 0%s", describeRun(cfg), n2-n1, valveNote())
	}
	if err := tcr.Signal(syscall.SIGCONT); err != nil {
		t.Fatalf("Signal(SIGCONT): %v", err)
	}
	stopped = false
	n3 := ticks()
	if !stdout.waitFor(3*time.Second, func(s string) bool { return strings.Count(s, "tick ") >= n3+3 }) {
		s, _ := procStateOf(pid)
		tcr.Kill()
		t.Fatalf("%s: no new ticks within 3 s of SIGCONT (state %q): it did not resume\nstdout:\n%s", describeRun(cfg), s, stdout)
	}
	if err := writeTestFile(done, ""); err != nil {
		t.Fatal(err)
	}
	r := finishTraced(t, cfg, tcr, stdout, stderr, rw, cancel)
	if r.exit != (Exit{}) || !strings.HasSuffix(r.stdout, "done\n") {
		t.Errorf("%s: want exit 0 after \"done\"\n%s", describeRun(cfg), r.output())
	}
	for _, line := range strings.Split(strings.TrimSpace(r.stdout), "\n") {
		if strings.HasPrefix(line, "tick ") && !strings.HasSuffix(line, " data=host-both") {
			t.Errorf("%s: tick line %q, want data=host-both on every tick", describeRun(cfg), line)
			break
		}
	}
}

// testGCWhileStopped runs a garbage collection in the tracer's process
// while the only tracee sits in a group-stop, so that no ptrace event is
// due: stop-the-world must not wait for the tracer thread. A helper
// process continues the tracee after 10 s, so that a tracer that does block
// it ends the wait instead of hanging the test binary. Whether GC waited is
// read from the tracee, not from a stopwatch: it is still stopped when GC
// returns unless the helper's SIGCONT ended the wait.
func testGCWhileStopped(t *testing.T, mode Mode) {
	if _, err := os.Stat("/bin/sh"); err != nil {
		t.Skipf("needs /bin/sh for the helper: %v", err)
	}
	ticker := traceeBin(t, "ticker")
	tr := newFakeTree(t)
	done := tr.T + "/done"
	cfg := Config{Path: ticker, Args: []string{"ticker", tr.G + "/both", done}, Rules: tr.rules(), Mode: mode}
	tcr, stdout, stderr, rw, cancel := startTraced(t, cfg)
	t.Cleanup(func() { writeTestFile(done, "") })
	if !stdout.waitFor(5*time.Second, func(s string) bool { return strings.Count(s, "tick ") >= 2 }) {
		tcr.Kill()
		t.Fatalf("%s: fewer than 2 ticks within 5 s\nstdout:\n%s\nstderr:\n%s", describeRun(cfg), stdout, stderr)
	}
	pid := tcr.PID()
	if err := tcr.Signal(syscall.SIGSTOP); err != nil {
		t.Fatalf("Signal(SIGSTOP): %v", err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		if s, _ := procStateOf(pid); isStopped(s) {
			break
		}
		if time.Now().After(deadline) {
			tcr.Kill()
			t.Fatalf("%s: not stopped 10 s after SIGSTOP", describeRun(cfg))
		}
		time.Sleep(5 * time.Millisecond)
	}
	time.Sleep(50 * time.Millisecond) // let the tracer settle in its wait
	helper := exec.Command("/bin/sh", "-c", fmt.Sprintf("sleep 10; kill -CONT %d", pid))
	if err := helper.Start(); err != nil {
		t.Fatal(err)
	}
	began := time.Now()
	runtime.GC()
	took := time.Since(began)
	state, _ := procStateOf(pid)
	helper.Process.Kill()
	helper.Wait()
	if !isStopped(state) {
		t.Errorf("%s: runtime.GC returned after %v, when the tracee was no longer stopped (state %q): it returned only when the helper sent SIGCONT: "+
			"the tracer goroutine blocks stop-the-world while it waits for a ptrace event (wait4 through RawSyscall?)",
			describeRun(cfg), took.Round(time.Millisecond), state)
	}
	tcr.Signal(syscall.SIGCONT)
	writeTestFile(done, "")
	if r := finishTraced(t, cfg, tcr, stdout, stderr, rw, cancel); r.exit != (Exit{}) {
		t.Errorf("%s: exit %v, want 0\n%s", describeRun(cfg), r.exit, r.output())
	}
}

// TestIntegrationExitCodes checks Exit and ExitCode for normal exits and
// deaths by signal, directly and through a shell.
func TestIntegrationExitCodes(t *testing.T) {
	requireIntegration(t)
	sysc := traceeBin(t, "sysc")
	sh := "/bin/sh"
	cases := []struct {
		name     string
		path     string
		args     []string
		want     Exit
		code     int
		stdout   string // "" means not checked
		needsSh  bool
		coreDump bool
	}{
		{name: "exit-0", path: sysc, args: []string{"sysc", "exit", "0"}, want: Exit{}, code: 0},
		{name: "exit-1", path: sysc, args: []string{"sysc", "exit", "1"}, want: Exit{Code: 1}, code: 1},
		{name: "exit-42", path: sysc, args: []string{"sysc", "exit", "42"}, want: Exit{Code: 42}, code: 42},
		{name: "exit-255", path: sysc, args: []string{"sysc", "exit", "255"}, want: Exit{Code: 255}, code: 255},
		{name: "exit_group-from-thread", path: sysc, args: []string{"sysc", "threadexit", "7"}, want: Exit{Code: 7}, code: 7},
		{name: "SIGKILL", path: sysc, args: []string{"sysc", "raise", "9"}, want: Exit{Signal: syscall.SIGKILL}, code: 137},
		{name: "SIGTERM", path: sysc, args: []string{"sysc", "raise", "15"}, want: Exit{Signal: syscall.SIGTERM}, code: 143},
		{name: "SIGUSR1", path: sysc, args: []string{"sysc", "raise", "10"}, want: Exit{Signal: syscall.SIGUSR1}, code: 138},
		{name: "SIGABRT", path: sysc, args: []string{"sysc", "raise", "6"}, want: Exit{Signal: syscall.SIGABRT}, code: 134, coreDump: true},
		{name: "SIGSEGV", path: sysc, args: []string{"sysc", "segv"}, want: Exit{Signal: syscall.SIGSEGV}, code: 139, coreDump: true},
		{name: "sh-exit-3", path: sh, args: []string{"sh", "-c", "exit 3"}, want: Exit{Code: 3}, code: 3, needsSh: true},
		{name: "sh-kills-itself", path: sh, args: []string{"sh", "-c", "kill -TERM $$"}, want: Exit{Signal: syscall.SIGTERM}, code: 143, needsSh: true},
		// The inner shell dies of SIGKILL; the outer one exits normally
		// with 137, which is a code, not a signal.
		{name: "sh-child-killed", path: sh, args: []string{"sh", "-c", `sh -c 'kill -KILL $$'; exit $?`}, want: Exit{Code: 137}, code: 137, needsSh: true},
		// Wait also waits for what the command left behind.
		{name: "sh-background-child-outlives", path: sh, args: []string{"sh", "-c", "(sleep 0.2; cat /proc/sys/kernel/ostype) & exit 5"},
			want: Exit{Code: 5}, code: 5, stdout: procsysOstype, needsSh: true},
	}
	for _, mode := range testModes {
		t.Run(mode.String(), func(t *testing.T) {
			for _, c := range cases {
				t.Run(c.name, func(t *testing.T) {
					if c.needsSh {
						if _, err := os.Stat(sh); err != nil {
							t.Skipf("needs %s: %v", sh, err)
						}
					}
					tr := newFakeTree(t)
					// Signals that dump core do it in the cwd.
					cfg := Config{Path: c.path, Args: c.args, Dir: t.TempDir(), Rules: tr.rules(), Mode: mode}
					r := runTraced(t, cfg)
					if r.exit != c.want || r.exit.ExitCode() != c.code {
						t.Errorf("%s: Exit = %+v (%v, ExitCode %d), want %+v (ExitCode %d)\n%s",
							describeRun(cfg), r.exit, r.exit, r.exit.ExitCode(), c.want, c.code, r.output())
					}
					if c.stdout != "" && r.stdout != c.stdout {
						t.Errorf("%s: stdout %q, want %q\n%s", describeRun(cfg), r.stdout, c.stdout, r.output())
					}
				})
			}
			t.Run("not-found", func(t *testing.T) {
				cfg := Config{Path: "/nonexistent/nodeboot-no-such-program", Mode: mode}
				tcr, err := Start(t.Context(), cfg)
				if err != nil {
					return // refusing to start is fine
				}
				e, err := tcr.Wait()
				if e.ExitCode() != 127 {
					t.Errorf("%s: a missing program started and ended with %v (wait error %v), want Start to fail or exit status 127",
						describeRun(cfg), e, err)
				}
			})
		})
	}
}

// TestIntegrationExecFromThread execs from a thread that is not the thread
// group leader while other threads open a redirected file: the kernel hands
// the leader's tid to the execing thread (PTRACE_EVENT_EXEC's former tid),
// and the new program must be traced, with its own address space's scratch
// memory, from its first syscall.
func TestIntegrationExecFromThread(t *testing.T) {
	requireIntegration(t)
	et, sysc := traceeBin(t, "go-execthread"), traceeBin(t, "sysc")
	for _, mode := range testModes {
		t.Run(mode.String(), func(t *testing.T) {
			tr := newFakeTree(t)
			cfg := Config{Path: et, Args: []string{"execthread", tr.G + "/both", sysc, "open", tr.G + "/both", "r"},
				Rules: tr.rules(), Mode: mode}
			r := runTraced(t, cfg)
			got := parseKV(r.stdout)
			if r.exit.ExitCode() != 0 || got["data"] != "host-both" {
				t.Errorf("%s: exit %v, data %q; want exit 0 and host-both (the exec'd program redirected)\nstdout:\n%s\nstderr:\n%s",
					describeRun(cfg), r.exit, got["data"], r.stdout, r.stderr)
			}
			if !strings.Contains(r.stderr, "exec from tid") {
				t.Errorf("%s: the exec did not come from a non-leader thread:\n%s", describeRun(cfg), r.stderr)
			}
			if r.pid == 0 {
				t.Errorf("%s: no pid recorded", describeRun(cfg))
			}
		})
	}
}

// TestIntegrationSharedOutput: one writer given as both Stdout and Stderr
// gets every line of both, in the order written (one pipe, as os/exec
// does); two copiers writing to one buffer lost lines.
func TestIntegrationSharedOutput(t *testing.T) {
	requireIntegration(t)
	var buf bytes.Buffer
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	tr, err := Start(ctx, Config{
		Path: "/bin/sh", Args: []string{"sh", "-c", `i=0; while [ $i -lt 200 ]; do echo out$i; echo err$i >&2; i=$((i+1)); done`},
		Stdout: &buf, Stderr: &buf,
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tr.Wait(); err != nil {
		t.Fatal(err)
	}
	var want strings.Builder
	for i := 0; i < 200; i++ {
		fmt.Fprintf(&want, "out%d\nerr%d\n", i, i)
	}
	if buf.String() != want.String() {
		t.Errorf("shared Stdout/Stderr got %d bytes, want %d in order:\n%.300s", buf.Len(), want.Len(), buf.String())
	}
}
