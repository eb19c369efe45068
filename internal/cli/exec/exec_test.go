package exec

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/nodeboot/nodeboot/interceptor/rules"

	"github.com/urfave/cli/v2"

	"github.com/nodeboot/nodeboot/interceptor"
	"github.com/nodeboot/nodeboot/internal/cli/cmdutil"
)

// fakeTracer stands in for *interceptor.Tracer.
type fakeTracer struct {
	exit    interceptor.Exit
	waitErr error
	stats   interceptor.Stats
	// dieOnSignal makes Wait return as if the first forwarded signal killed
	// the command.
	dieOnSignal bool
	// exited, when set, is what Exited returns; Wait then blocks until Kill.
	exited chan struct{}

	// left are the processes Processes reports.
	left []int

	signals chan syscall.Signal
	killed  chan struct{}
	once    sync.Once
}

func newFake() *fakeTracer {
	return &fakeTracer{signals: make(chan syscall.Signal, 8), killed: make(chan struct{})}
}

func (f *fakeTracer) PID() int                      { return 4242 }
func (f *fakeTracer) Exited() <-chan struct{}       { return f.exited }
func (f *fakeTracer) Stats() interceptor.Stats      { return f.stats }
func (f *fakeTracer) Kill()                         { f.once.Do(func() { close(f.killed) }) }
func (f *fakeTracer) Processes() []int              { return f.left }
func (f *fakeTracer) Signal(s syscall.Signal) error { f.signals <- s; return nil }

func (f *fakeTracer) Wait() (interceptor.Exit, error) {
	switch {
	case f.dieOnSignal:
		select {
		case s := <-f.signals:
			return interceptor.Exit{Signal: s}, nil
		case <-time.After(10 * time.Second):
			return interceptor.Exit{}, errors.New("fake: no signal forwarded within 10s")
		}
	case f.exited != nil:
		select {
		case <-f.killed:
		case <-time.After(10 * time.Second):
			return interceptor.Exit{}, errors.New("fake: not killed within 10s")
		}
	}
	return f.exit, f.waitErr
}

// harness runs "nodeboot exec ARGS" in-process with a fake tracer.
type harness struct {
	fake     *fakeTracer
	startErr error
	cfg      interceptor.Config // as passed to start
	started  chan struct{}
	out      bytes.Buffer
	errOut   bytes.Buffer
	logs     bytes.Buffer // the logger's output
	// block makes start wait until its context ends.
	block bool
}

func newHarness(t *testing.T) *harness {
	h := &harness{fake: newFake(), started: make(chan struct{})}
	old := start
	start = func(ctx context.Context, cfg interceptor.Config) (tracer, error) {
		h.cfg = cfg
		close(h.started)
		if h.block {
			<-ctx.Done()
			return nil, ctx.Err()
		}
		if h.startErr != nil {
			return nil, h.startErr
		}
		return h.fake, nil
	}
	t.Cleanup(func() { start = old })
	return h
}

// run returns the exit code nodeboot would have.
func (h *harness) run(args ...string) (int, error) {
	streams := cmdutil.IOStreams{In: strings.NewReader(""), Out: &h.out, ErrOut: &h.errOut}
	app := &cli.App{
		Name:           "nodeboot",
		Writer:         &h.out,
		ErrWriter:      &h.errOut,
		Commands:       []*cli.Command{NewCommand(slog.New(slog.NewTextHandler(&h.logs, nil)), streams)},
		ExitErrHandler: func(*cli.Context, error) {},
	}
	err := app.Run(append([]string{"nodeboot", "exec"}, args...))
	if err == nil {
		return 0, nil
	}
	var ec cli.ExitCoder
	if errors.As(err, &ec) {
		return ec.ExitCode(), err
	}
	return 1, err
}

func TestExitStatus(t *testing.T) {
	tests := []struct {
		name string
		exit interceptor.Exit
		want int
	}{
		{"success", interceptor.Exit{}, 0},
		{"exit 7", interceptor.Exit{Code: 7}, 7},
		{"SIGTERM", interceptor.Exit{Signal: syscall.SIGTERM}, 143},
		{"SIGKILL", interceptor.Exit{Signal: syscall.SIGKILL}, 137},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t)
			h.fake.exit = tt.exit
			code, err := h.run("--", "sh", "-c", "exit")
			if code != tt.want {
				t.Errorf("exit code = %d (%v), want %d", code, err, tt.want)
			}
			if err != nil && err.Error() != "" {
				t.Errorf("error message %q: the child's status must pass silently", err)
			}
			if h.errOut.Len() != 0 {
				t.Errorf("stderr = %q, want nothing", h.errOut.String())
			}
		})
	}
}

func TestStartAndWaitErrors(t *testing.T) {
	h := newHarness(t)
	h.startErr = errors.New("fork/exec /nope: no such file or directory")
	code, err := h.run("/nope", "x")
	if code != 1 || err == nil || err.Error() != "exec /nope: fork/exec /nope: no such file or directory" {
		t.Errorf("start failure: code %d, err %v", code, err)
	}

	h = newHarness(t)
	h.fake.waitErr = errors.New("wait4: boom")
	h.fake.stats = interceptor.Stats{Mode: interceptor.ModePtrace, Stops: 3}
	code, err = h.run("--stats", "true")
	if code != 1 || err == nil || err.Error() != "exec true: wait4: boom" {
		t.Errorf("wait failure: code %d, err %v", code, err)
	}
	if !strings.Contains(h.errOut.String(), "mode   ptrace") {
		t.Errorf("--stats not printed after a wait failure:\n%s", h.errOut.String())
	}
}

// TestArgv checks that everything after the first non-flag or after "--"
// is passed on verbatim.
func TestArgv(t *testing.T) {
	tests := []struct {
		args      []string
		wantArgv  []string
		wantStats bool
	}{
		{[]string{"--", "ls", "-l"}, []string{"ls", "-l"}, false},
		{[]string{"ls", "-l", "--stats"}, []string{"ls", "-l", "--stats"}, false},
		{[]string{"--stats", "ls", "--", "-l"}, []string{"ls", "--", "-l"}, true},
		{[]string{"--stats", "--", "--help"}, []string{"--help"}, true},
		{[]string{"help"}, []string{"help"}, false},
		{[]string{"--", "help", "me"}, []string{"help", "me"}, false},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			h := newHarness(t)
			if code, err := h.run(tt.args...); code != 0 {
				t.Fatalf("exit code %d: %v", code, err)
			}
			if !reflect.DeepEqual(h.cfg.Args, tt.wantArgv) || h.cfg.Path != tt.wantArgv[0] {
				t.Errorf("Path %q Args %q, want %q", h.cfg.Path, h.cfg.Args, tt.wantArgv)
			}
			if got := strings.Contains(h.errOut.String(), "SYSCALL"); got != tt.wantStats {
				t.Errorf("stats printed = %v, want %v", got, tt.wantStats)
			}
		})
	}
}

func TestConfig(t *testing.T) {
	h := newHarness(t)
	dir := t.TempDir()
	_, err := h.run("--redirect", "/proc/sys/=/"+dir+"/./sys", "--redirect", "/sys/fs/cgroup="+dir,
		"--fstype", "9p=ext4", "--fstype", "/var/lib//=0x58465342",
		"--mode", "ptrace", "--keep-env", "--", "k3s", "server")
	if err != nil {
		t.Fatal(err)
	}
	want := rules.Rules{
		Redirects: []rules.Redirect{
			{Guest: "/proc/sys", Host: dir + "/sys"},
			{Guest: "/sys/fs/cgroup", Host: dir},
		},
		FSTypes: []rules.FSTypeRule{
			{From: 0x01021997, To: 0xEF53},
			{Path: "/var/lib", To: 0x58465342},
		},
	}
	if !reflect.DeepEqual(h.cfg.Rules, want) {
		t.Errorf("Rules = %+v\nwant %+v", h.cfg.Rules, want)
	}
	if h.cfg.Mode != interceptor.ModePtrace || !h.cfg.KeepEnv || h.cfg.OnRewrite != nil || h.cfg.Logger == nil {
		t.Errorf("Mode %v KeepEnv %v OnRewrite set %v Logger %v", h.cfg.Mode, h.cfg.KeepEnv, h.cfg.OnRewrite != nil, h.cfg.Logger)
	}
	if h.cfg.Stdout != &h.out || h.cfg.Stderr != &h.errOut || h.cfg.Env != nil || h.cfg.Dir != "" {
		t.Errorf("streams, Env or Dir not passed through: %+v", h.cfg)
	}
}

// TestConfigStreams checks that *os.File streams reach the command as they
// are, so that it inherits the terminal.
func TestConfigStreams(t *testing.T) {
	f := &flagpole{Mode: "auto"}
	streams := cmdutil.IOStreams{In: os.Stdin, Out: os.Stdout, ErrOut: os.Stderr}
	cfg, err := f.config([]string{"true"}, slog.New(slog.DiscardHandler), streams)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Stdin != os.Stdin || cfg.Stdout != os.Stdout || cfg.Stderr != os.Stderr {
		t.Error("streams are not the *os.File values given")
	}
	if cfg.Mode != interceptor.ModeAuto || cfg.KeepEnv {
		t.Errorf("defaults: Mode %v KeepEnv %v", cfg.Mode, cfg.KeepEnv)
	}
}

func TestLogIntercepts(t *testing.T) {
	h := newHarness(t)
	if _, err := h.run("--log-intercepts", "--redirect", "/proc/sys/kernel=/tmp/x", "cat", "/proc/sys/kernel/panic"); err != nil {
		t.Fatal(err)
	}
	if h.cfg.OnRewrite == nil {
		t.Fatal("OnRewrite not set")
	}
	h.cfg.OnRewrite(interceptor.Rewrite{PID: 1, Syscall: "openat", From: "/proc/sys/kernel/panic", To: "/tmp/x/panic"})
	h.cfg.OnRewrite(interceptor.Rewrite{PID: 1, Syscall: "statfs", From: "9p", To: "ext4"})
	want := "openat /proc/sys/kernel/panic -> /tmp/x/panic\nstatfs 9p -> ext4\n"
	if h.errOut.String() != want {
		t.Errorf("stderr = %q, want %q", h.errOut.String(), want)
	}
}

// TestSignalsForwarded sends each forwarded signal to this process while a
// fake command runs; the fake dies of it, so nodeboot exits 128+N.
func TestSignalsForwarded(t *testing.T) {
	for _, sig := range []syscall.Signal{syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP, syscall.SIGQUIT} {
		t.Run(sig.String(), func(t *testing.T) {
			h := newHarness(t)
			h.fake.dieOnSignal = true
			done := make(chan int, 1)
			go func() {
				code, _ := h.run("sleep", "30")
				done <- code
			}()
			<-h.started // signal.Notify is in effect from here on
			if err := syscall.Kill(os.Getpid(), sig); err != nil {
				t.Fatal(err)
			}
			select {
			case code := <-done:
				if want := 128 + int(sig); code != want {
					t.Errorf("exit code = %d, want %d", code, want)
				}
			case <-time.After(15 * time.Second):
				t.Fatal("nodeboot exec did not return")
			}
		})
	}
}

// TestSignalAfterExitPassesOnThenKills checks what signals do once the
// command has exited while a process it left still runs: the first is
// passed on to that process (here a real sleep in a session of its own,
// which dies of it), nothing is killed yet; the second kills what is left.
func TestSignalAfterExitPassesOnThenKills(t *testing.T) {
	left := exec.Command("sleep", "30")
	left.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := left.Start(); err != nil {
		t.Fatal(err)
	}
	leftDone := make(chan error, 1)
	go func() { leftDone <- left.Wait() }()
	t.Cleanup(func() { left.Process.Kill() })

	h := newHarness(t)
	h.fake.exited = make(chan struct{})
	close(h.fake.exited)
	h.fake.exit = interceptor.Exit{Code: 5}
	h.fake.left = []int{left.Process.Pid}
	done := make(chan int, 1)
	go func() {
		code, _ := h.run("sh", "-c", "setsid sleep 30 & exit 5")
		done <- code
	}()
	<-h.started
	if err := syscall.Kill(os.Getpid(), syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-leftDone:
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.Sys().(syscall.WaitStatus).Signal() != syscall.SIGTERM {
			t.Errorf("the process left behind ended with %v, want killed by SIGTERM", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the first SIGTERM was not passed on to the process left behind")
	}
	select {
	case <-h.fake.killed:
		t.Fatal("the first signal after the exit killed everything; it should only be passed on")
	case <-done:
		t.Fatal("nodeboot exec returned while a process was left (the fake's Wait waits for Kill)")
	case <-time.After(200 * time.Millisecond):
	}
	if err := syscall.Kill(os.Getpid(), syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case code := <-done:
		if code != 5 {
			t.Errorf("exit code = %d, want the command's 5", code)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("the second signal did not kill what was left")
	}
	if len(h.fake.signals) != 0 {
		t.Errorf("signal forwarded to an exited command")
	}
}

func TestStatsTable(t *testing.T) {
	st := interceptor.Stats{
		Mode: interceptor.ModeSeccomp,
		Syscalls: []interceptor.SyscallStats{
			{Name: "statfs", Stops: 2, Rewrites: 1, Passes: 1, Time: 40 * time.Microsecond},
			{Name: "read"},
			{Name: "openat", Stops: 12, Rewrites: 3, Passes: 9, Time: 1234567 * time.Nanosecond},
			{Name: "newfstatat", Stops: 2, Passes: 2, Time: 3400 * time.Nanosecond},
			{Name: "io_uring_setup", Stops: 1, Fails: 1, Time: 2 * time.Microsecond},
		},
		Rules: []interceptor.RuleStats{
			{Rule: "redirect /proc/sys/kernel=/tmp/fake/kernel", Hits: 3},
			{Rule: "fstype 9p=ext4", Hits: 0},
		},
		Stops:  18,
		Events: 1,
	}
	var b bytes.Buffer
	writeStats(&b, st)
	want := `SYSCALL         STOPS  REWRITES  PASSES  FAILED  TIME
openat          12     3         9       0       1.235ms
newfstatat      2      0         2       0       3µs
statfs          2      1         1       0       40µs
io_uring_setup  1      0         0       1       2µs
(events)        1      -         -       -       -
total           18     4         12      1       1.28ms

RULE                                        HITS
redirect /proc/sys/kernel=/tmp/fake/kernel  3
fstype 9p=ext4                              0

mode   seccomp
stops  18
`
	if b.String() != want {
		t.Errorf("got:\n%s\nwant:\n%s", b.String(), want)
	}
}

// TestMissingHostsOneWarning: each redirect whose host path is missing used
// to get its own warning; 20,000 of them printed 20,000 lines.
func TestMissingHostsOneWarning(t *testing.T) {
	dir := t.TempDir()
	for _, n := range []int{1, 20000} {
		t.Run(strconv.Itoa(n), func(t *testing.T) {
			h := newHarness(t)
			args := []string{"--redirect", "/proc/sys/present=" + dir}
			for i := 0; i < n; i++ {
				args = append(args, "--redirect", fmt.Sprintf("/proc/sys/r%d=%s/missing%d", i, dir, i))
			}
			if code, err := h.run(append(args, "--", "true")...); code != 0 {
				t.Fatalf("exit %d: %v", code, err)
			}
			lines := strings.Split(strings.TrimSpace(h.logs.String()), "\n")
			if len(lines) != 1 || !strings.Contains(lines[0], "missing") {
				t.Fatalf("%d lines of log, want one warning:\n%.2000s", len(lines), h.logs.String())
			}
			if n > 1 && !strings.Contains(lines[0], fmt.Sprintf("%d of %d redirect host paths are missing", n, n+1)) {
				t.Errorf("warning does not count them: %s", lines[0])
			}
			if n > 1 && strings.Contains(lines[0], "missing3=") {
				t.Errorf("warning names more than %d rules: %.500s", maxNamedMissing, lines[0])
			}
		})
	}
}

// TestSignalWhileStarting: a SIGTERM that arrives before the command runs
// used to be queued until the start was over (forever, when it hung); now
// it cancels the start and nodeboot exits 143.
func TestSignalWhileStarting(t *testing.T) {
	h := newHarness(t)
	h.block = true
	go func() {
		<-h.started
		syscall.Kill(os.Getpid(), syscall.SIGTERM)
	}()
	done := make(chan struct{})
	var code int
	var err error
	go func() {
		code, err = h.run("--", "true")
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(20 * time.Second):
		t.Fatal("exec ignored SIGTERM while starting")
	}
	if code != 143 || err == nil || !strings.Contains(err.Error(), "interrupted by SIGTERM before the command ran") {
		t.Errorf("exit %d, %v; want 143 and the reason", code, err)
	}
}
