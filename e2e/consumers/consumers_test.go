package consumers

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/nodeboot/nodeboot/profile"
)

// programs are the consumer programs below cmd/.
var programs = []string{"sysctl", "cgroups", "cadvisor"}

// hostTunables are the six /proc/sys files kubelet sets, read on the host
// (outside the sandbox) before and after each run.
var hostTunables = []string{
	"vm/overcommit_memory", "vm/panic_on_oom", "kernel/panic",
	"kernel/panic_on_oops", "kernel/keys/root_maxkeys", "kernel/keys/root_maxbytes",
}

var (
	buildOnce sync.Once
	buildErr  error
	binDir    string // temporary: nodeboot, sandbox, and the programs
)

func TestMain(m *testing.M) {
	if os.Geteuid() != 0 {
		fmt.Fprintln(os.Stderr, "e2e/consumers: not root: every test skips (the sandbox unshares a mount namespace and mounts over /proc/sys, /sys/fs/cgroup and /dev)")
	}
	code := m.Run()
	if binDir != "" {
		os.RemoveAll(binDir)
	}
	os.Exit(code)
}

// bin returns the path of a built binary.
func bin(name string) string { return filepath.Join(binDir, name) }

// setup skips without root, and builds everything once.
func setup(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("skipping: the sandbox needs root (it unshares a mount namespace and mounts over /proc/sys, /sys/fs/cgroup and /dev); run as root")
	}
	if _, err := exec.LookPath("unshare"); err != nil {
		t.Fatalf("the sandbox needs unshare(1) (util-linux): %v", err)
	}
	buildOnce.Do(func() { buildErr = build() })
	if buildErr != nil {
		t.Fatal(buildErr)
	}
}

// build compiles, statically: bin/nodeboot from the repository root, the
// sandbox helper from the e2e module, and the consumer programs from this
// module.
func build() error {
	dir, err := os.MkdirTemp("", "nodeboot-consumers-")
	if err != nil {
		return err
	}
	binDir = dir
	wd, err := os.Getwd()
	if err != nil {
		return err
	}
	repo := filepath.Join(wd, "..", "..")
	jobs := [][3]string{ // module dir, package, output
		{repo, "./cmd/nodeboot", "nodeboot"},
		{filepath.Join(repo, "e2e"), "./cmd/sandbox", "sandbox"},
	}
	for _, p := range programs {
		jobs = append(jobs, [3]string{wd, "./cmd/" + p, p})
	}
	for _, j := range jobs {
		cmd := exec.Command("go", "build", "-o", filepath.Join(dir, j[2]), j[1])
		cmd.Dir = j[0]
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("go build %s in %s: %v\n%s", j[1], j[0], err, out)
		}
	}
	return nil
}

// result is what a run printed and how it ended.
type result struct {
	stdout, stderr string
	code           int // exit status; -1 when killed by a signal or not started
	took           time.Duration
}

func (r result) String() string {
	return fmt.Sprintf("exit %d after %s\n--- stdout\n%s--- stderr\n%s", r.code, r.took.Round(time.Millisecond), r.stdout, r.stderr)
}

// all is stdout and stderr.
func (r result) all() string { return r.stdout + r.stderr }

// lockedBuffer is a bytes.Buffer safe for the two copy goroutines of exec.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// sandboxed runs argv in the full simulated sandbox (e2e/cmd/sandbox), in
// its own process group, killed after timeout. With nodeboot set, argv
// runs under "nodeboot exec --profile k3s".
func sandboxed(t *testing.T, timeout time.Duration, nodeboot bool, argv ...string) result {
	t.Helper()
	args := []string{"--"}
	if nodeboot {
		args = append(args, bin("nodeboot"), "exec", "--profile", "k3s", "--")
	}
	args = append(args, argv...)
	return run(t, timeout, bin("sandbox"), args...)
}

// run runs name with args, as sandboxed does.
func run(t *testing.T, timeout time.Duration, name string, args ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 10 * time.Second
	var stdout, stderr lockedBuffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if testing.Verbose() {
		// Show progress of long runs (cAdvisor's soak) as it happens.
		cmd.Stderr = io.MultiWriter(&stderr, prefixWriter{w: os.Stderr, prefix: "    | "})
	}
	t.Logf("run %s %s", name, strings.Join(args, " "))
	start := time.Now()
	err := cmd.Run()
	// Make sure nothing of the group survives (a child of a killed tracer).
	syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	r := result{stdout: stdout.String(), stderr: stderr.String(), code: -1, took: time.Since(start)}
	var ee *exec.ExitError
	switch {
	case err == nil:
		r.code = 0
	case errors.As(err, &ee):
		r.code = ee.ExitCode()
	default:
		t.Fatalf("run %s: %v\n%s", name, err, r)
	}
	if ctx.Err() != nil {
		t.Fatalf("%s %s: killed after %s\n%s", name, strings.Join(args, " "), timeout, r)
	}
	if r.code == 125 {
		t.Fatalf("the sandbox could not be set up:\n%s", r)
	}
	return r
}

// prefixWriter prefixes every line written through it.
type prefixWriter struct {
	w      io.Writer
	prefix string
}

func (p prefixWriter) Write(b []byte) (int, error) {
	s := strings.ReplaceAll(strings.TrimSuffix(string(b), "\n"), "\n", "\n"+p.prefix)
	fmt.Fprintf(p.w, "%s%s\n", p.prefix, s)
	return len(b), nil
}

// mustFail asserts the native run failed with every one of wants.
func mustFail(t *testing.T, r result, wants ...string) {
	t.Helper()
	if r.code == 0 {
		t.Fatalf("natively in the sandbox the consumer passed; the sandbox no longer takes away what it should:\n%s", r)
	}
	for _, w := range wants {
		if !strings.Contains(r.all(), w) {
			t.Errorf("natively in the sandbox: output lacks %q:\n%s", w, r)
		}
	}
	if !t.Failed() {
		t.Logf("natively in the sandbox, as expected: %s", r)
	}
}

// mustPass asserts the run under nodeboot passed and printed every one of
// wants, and logs what the consumer complained about on the way.
func mustPass(t *testing.T, r result, wants ...string) {
	t.Helper()
	mustPassAs(t, "nodeboot exec --profile k3s", r, wants...)
}

// mustPassAs is mustPass for a run under how.
func mustPassAs(t *testing.T, how string, r result, wants ...string) {
	t.Helper()
	if r.code != 0 {
		t.Fatalf("under %s in the sandbox the consumer failed:\n%s", how, r)
	}
	for _, w := range wants {
		if !strings.Contains(r.all(), w) {
			t.Errorf("under %s: output lacks %q:\n%s", how, w, r)
		}
	}
	t.Logf("under %s: exit 0 after %s\n--- stdout\n%s", how, r.took.Round(time.Millisecond), r.stdout)
	logComplaints(t, r.stderr)
}

// complaint matches klog warning and error lines (W1127 13:42:08.506170
// PID file.go:54] message) and logrus/slog warnings.
var (
	complaintRE = regexp.MustCompile(`^[WE]\d{4} [0-9:.]+\s+\d+ ([^\]]+\] .*)$|level=(warn|warning|error) .*`)
	// variable parts of messages, to group repeats
	varRE = regexp.MustCompile(`\.nodeboot-[A-Z0-9]+\.tmp|\d{2,}`)
)

// logComplaints logs the warnings and errors a consumer printed, grouped
// by message with the variable parts (numbers, temporary names) masked.
func logComplaints(t *testing.T, stderr string) {
	t.Helper()
	counts := map[string]int{}
	first := map[string]string{}
	for _, line := range strings.Split(stderr, "\n") {
		m := complaintRE.FindStringSubmatch(line)
		if m == nil {
			continue
		}
		msg := line
		if m[1] != "" {
			msg = line[:1] + " " + m[1]
		}
		key := varRE.ReplaceAllString(msg, "N")
		if counts[key] == 0 {
			first[key] = msg
		}
		counts[key]++
	}
	if len(counts) == 0 {
		t.Logf("complaints under nodeboot: none")
		return
	}
	keys := make([]string, 0, len(counts))
	for k := range counts {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	for _, k := range keys {
		fmt.Fprintf(&b, "  %5d x %s\n", counts[k], first[k])
	}
	t.Logf("complaints under nodeboot (warnings and errors, count x first occurrence):\n%s", b.String())
}

// readHostTunables reads the six tunables from the host's real /proc/sys
// (the test runs outside the sandbox).
func readHostTunables(t *testing.T) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, name := range hostTunables {
		b, err := os.ReadFile("/proc/sys/" + name)
		if err != nil {
			out[name] = "error: " + err.Error()
			continue
		}
		out[name] = strings.TrimSpace(string(b))
	}
	return out
}

// checkHostUnchanged records the host's tunables now and compares them with
// the ones at the end of the test.
func checkHostUnchanged(t *testing.T) {
	t.Helper()
	before := readHostTunables(t)
	t.Logf("host /proc/sys before: %v", before)
	t.Cleanup(func() {
		after := readHostTunables(t)
		t.Logf("host /proc/sys after: %v", after)
		for _, name := range hostTunables {
			if before[name] != after[name] {
				t.Errorf("host /proc/sys/%s changed from %q to %q (unless another test, e.g. the e2e TestBaseline's kubelet, changed it meanwhile)", name, before[name], after[name])
			}
		}
	})
}

func TestSysctl(t *testing.T) {
	setup(t)
	checkHostUnchanged(t)

	// gVisor: overcommit_memory is read-only, the other five are missing.
	r := sandboxed(t, time.Minute, false, bin("sysctl"))
	mustFail(t, r,
		"set vm/overcommit_memory=1: open /proc/sys/vm/overcommit_memory: read-only file system",
		"get vm/panic_on_oom: open /proc/sys/vm/panic_on_oom: no such file or directory",
		"get kernel/panic: open /proc/sys/kernel/panic: no such file or directory",
		"get kernel/panic_on_oops: open /proc/sys/kernel/panic_on_oops: no such file or directory",
		"get kernel/keys/root_maxkeys: open /proc/sys/kernel/keys/root_maxkeys: no such file or directory",
		"get kernel/keys/root_maxbytes: open /proc/sys/kernel/keys/root_maxbytes: no such file or directory",
	)

	r = sandboxed(t, time.Minute, true, bin("sysctl"))
	mustPass(t, r,
		"set vm/overcommit_memory = 1\n",
		"set vm/panic_on_oom = 0\n",
		"set kernel/panic_on_oops = 1\n",
		"set kernel/keys/root_maxkeys = 1000000\n",
		"set kernel/keys/root_maxbytes = 25000000\n",
		"set kernel/panic = 15\n", // a real change, read back
		"set kernel/panic = 10\n",
		"OK\n",
	)
}

// hostCgroupLeftovers lists nodeboot-test cgroups on the host.
func hostCgroupLeftovers() []string {
	m, _ := filepath.Glob("/sys/fs/cgroup/nodeboot-test")
	m2, _ := filepath.Glob("/sys/fs/cgroup/*/nodeboot-test")
	return append(m, m2...)
}

func TestCgroups(t *testing.T) {
	setup(t)
	if l := hostCgroupLeftovers(); len(l) > 0 {
		t.Fatalf("host cgroups left from an earlier run: %v; remove them (rmdir)", l)
	}
	t.Cleanup(func() {
		if l := hostCgroupLeftovers(); len(l) > 0 {
			t.Errorf("the test created host cgroups: %v", l)
		}
	})

	// gVisor without cgroups: /sys/fs/cgroup is sysfs's empty directory.
	r := sandboxed(t, time.Minute, false, bin("cgroups"))
	mustFail(t, r,
		"cgroups.Mode() = Legacy, want Unified",
		"root RootControllers: open /sys/fs/cgroup/cgroup.controllers: no such file or directory",
	)

	r = sandboxed(t, time.Minute, true, bin("cgroups"))
	mustPass(t, r,
		"cgroups.Mode() = Unified\n",
		"created /sys/fs/cgroup/nodeboot-test\n",
		"0::/nodeboot-test\n",
		"deleted /sys/fs/cgroup/nodeboot-test\n",
		"OK\n",
	)
}

// soak is how long cAdvisor runs before the freshness check: CADVISOR_SOAK,
// default 3m.
func soak(t *testing.T) time.Duration {
	s := os.Getenv("CADVISOR_SOAK")
	if s == "" {
		return 3 * time.Minute
	}
	d, err := time.ParseDuration(s)
	if err != nil || d < 0 {
		t.Fatalf("CADVISOR_SOAK=%q: want a duration such as 3m or 30s", s)
	}
	return d
}

func TestCadvisor(t *testing.T) {
	setup(t)
	d := soak(t)
	root := filepath.Join(t.TempDir(), "kubelet") // created by the program, as kubelet does

	// No cgroups: the raw factory cannot register, so Start fails.
	r := sandboxed(t, time.Minute, false, bin("cadvisor"), "-root", root, "-soak", "0s")
	mustFail(t, r, "cadvisor Start: failed to get cgroup subsystems: failed to find cgroup mounts")

	r = sandboxed(t, d+2*time.Minute, true, bin("cadvisor"), "-root", root,
		"-wait", "30s", "-soak", d.String(), "-max-age", "30s")
	mustPass(t, r,
		"GetDirFsInfo("+root+"): device ",
		"stats for / and GetDirFsInfo after ",
		fmt.Sprintf("stats for / after %s: newest sample ", d),
		"OK\n",
	)
}

func TestDiscover(t *testing.T) {
	setup(t)
	dir := t.TempDir()

	// The program only reads: five of the six files are missing.
	r := sandboxed(t, time.Minute, false, bin("sysctl"), "-get")
	mustFail(t, r, "get vm/panic_on_oom: open /proc/sys/vm/panic_on_oom: no such file or directory")

	missing := []string{
		"/proc/sys/vm/panic_on_oom", "/proc/sys/kernel/panic", "/proc/sys/kernel/panic_on_oops",
		"/proc/sys/kernel/keys/root_maxkeys", "/proc/sys/kernel/keys/root_maxbytes",
	}

	// From nothing: every missing file ends up in the profile.
	out := filepath.Join(dir, "discovered.yaml")
	r = run(t, 2*time.Minute, bin("sandbox"), "--", bin("nodeboot"), "discover", "--base", "empty", "--output-file", out, "--", bin("sysctl"), "-get")
	if r.code != 0 {
		t.Fatalf("nodeboot discover --base empty failed:\n%s", r)
	}
	t.Logf("nodeboot discover --base empty:\n%s", r.stderr)
	for _, m := range missing {
		if !strings.Contains(r.stderr, m) {
			t.Errorf("discover's summary lacks %s", m)
		}
	}
	p, err := profile.Load(out)
	if err != nil {
		t.Fatalf("the discovered profile does not load: %v", err)
	}
	raw, _ := os.ReadFile(out)
	t.Logf("discovered profile:\n%s", raw)
	var paths []string
	for _, f := range p.Files {
		paths = append(paths, f.Path)
	}
	for _, m := range missing {
		if !slices.Contains(paths, m) {
			t.Errorf("the discovered profile lacks %s (files: %v)", m, paths)
		}
	}
	if !slices.Contains(p.Redirects, "/proc/sys") {
		t.Errorf("the discovered profile does not redirect /proc/sys: %v", p.Redirects)
	}

	// The discovered profile mends the program.
	r = run(t, time.Minute, bin("sandbox"), "--", bin("nodeboot"), "exec", "--profile", out, "--", bin("sysctl"), "-get")
	mustPassAs(t, "nodeboot exec --profile discovered.yaml", r, "get vm/panic_on_oom = 0\n", "get kernel/keys/root_maxbytes = 0\n", "OK\n")

	// On top of k3s nothing is missing any more. This time the profile
	// comes on stdout, as with "discover -- CMD > p.yaml": the program's
	// own output goes to stderr, and what is left loads.
	r = run(t, 2*time.Minute, bin("sandbox"), "--", bin("nodeboot"), "discover", "--base", "k3s", "--", bin("sysctl"), "-get")
	if r.code != 0 {
		t.Fatalf("nodeboot discover --base k3s failed:\n%s", r)
	}
	raw = []byte(r.stdout)
	out = filepath.Join(dir, "k3s-discovered.yaml")
	if err := os.WriteFile(out, raw, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := profile.Load(out); err != nil {
		t.Errorf("the profile discover printed does not load: %v\n%s", err, raw)
	}
	if !strings.Contains(r.stderr, "get vm/panic_on_oom = 0") {
		t.Errorf("the program's output is not on discover's stderr:\n%s", r.stderr)
	}
	for _, m := range missing {
		if strings.Contains(string(raw), m) {
			t.Errorf("discover --base k3s still reports %s, which the k3s profile has:\n%s", m, raw)
		}
	}
}
