package bench

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"text/tabwriter"
	"time"
)

const (
	getppidCalls  = 1_000_000 // workload (a)
	openReadLoops = 20_000    // workload (b)

	// Warm-up runs (not timed) use a small count: they only fill the page
	// cache and check that every variant works before the timed rounds.
	getppidWarm  = 10_000
	openReadWarm = 200

	defaultRounds = 5
	runTimeout    = 5 * time.Minute

	guestDir    = "/proc/sys"
	guestFile   = "/proc/sys/kernel/nodeboot_bench"
	fileRel     = "kernel/nodeboot_bench"
	fileContent = "1\n"

	mib = 1024 * 1024
)

// Targets from the issue. They are printed next to the measurements and
// marked PASS or MISS; a miss never fails the benchmark.
const (
	targetGetppidVsNative = 1.05 // (a) nodeboot (seccomp) / native
	targetOpenVsProot     = 0.5  // (b) nodeboot (seccomp) / proot
	targetOpenVsStrace    = 1.0  // (b) nodeboot (seccomp) / strace --seccomp-bpf
	targetRSSMiB          = 30.0 // nodeboot's peak RSS
)

// env is what the benchmarks share: the binaries built once and the fake
// /proc/sys tree.
type env struct {
	dir      string // temporary directory holding everything below
	nodeboot string // nodeboot binary ("" when no selected variant needs it)
	runstat  string // launcher that measures wall time and ru_maxrss
	floor    string // launcher that installs a one-instruction ALLOW filter
	getppid  string // workload (a)
	openread string // workload (b)
	host     string // HOST of --redirect /proc/sys=HOST
	hostFile string // HOST/kernel/nodeboot_bench, holding "1\n"
	static   bool   // workloads linked statically
	tools    map[string]string
	missing  map[string]string // tool -> why it cannot run
	notes    []string
}

var (
	setupOnce sync.Once
	shared    *env
	setupErr  error

	// results collects every workload's table for BENCH_MARKDOWN.
	resultsMu sync.Mutex
	results   []*workloadResult
)

func TestMain(m *testing.M) {
	code := m.Run()
	if shared != nil {
		os.RemoveAll(shared.dir)
	}
	os.Exit(code)
}

// variant is one way of running a workload.
type variant struct {
	name  string // sub-benchmark name
	label string // the command, for the table
	tool  string // "", "nodeboot", "strace" or "proot"
	// redirected variants see /proc/sys/kernel/nodeboot_bench (served from
	// HOST); the others are pointed at HOST/kernel/nodeboot_bench directly.
	redirected bool
	prefix     func(e *env) []string
}

var allVariants = []variant{
	{
		name:  "native",
		label: "W",
		prefix: func(e *env) []string {
			return nil
		},
	},
	{
		name:  "seccomp-floor",
		label: "allowfilter W (a one-instruction SECCOMP_RET_ALLOW filter: what any seccomp tracer costs at least)",
		prefix: func(e *env) []string {
			return []string{e.floor}
		},
	},
	{
		name:       "nodeboot",
		label:      "nodeboot exec --redirect /proc/sys=HOST -- W",
		tool:       "nodeboot",
		redirected: true,
		prefix: func(e *env) []string {
			return []string{e.nodeboot, "exec", "--redirect", guestDir + "=" + e.host, "--"}
		},
	},
	{
		name:       "nodeboot-ptrace",
		label:      "nodeboot exec --mode ptrace --redirect /proc/sys=HOST -- W",
		tool:       "nodeboot",
		redirected: true,
		prefix: func(e *env) []string {
			return []string{e.nodeboot, "exec", "--mode", "ptrace", "--redirect", guestDir + "=" + e.host, "--"}
		},
	},
	{
		name:  "strace",
		label: "strace -f --seccomp-bpf -e trace=openat -o /dev/null W",
		tool:  "strace",
		prefix: func(e *env) []string {
			return []string{e.tools["strace"], "-f", "--seccomp-bpf", "-e", "trace=openat", "-o", "/dev/null"}
		},
	},
	{
		name:       "proot",
		label:      "proot -b HOST:/proc/sys W",
		tool:       "proot",
		redirected: true,
		prefix: func(e *env) []string {
			return []string{e.tools["proot"], "-b", e.host + ":" + guestDir}
		},
	},
}

// selectedVariants honours BENCH_VARIANTS.
func selectedVariants() ([]variant, error) {
	s := strings.TrimSpace(os.Getenv("BENCH_VARIANTS"))
	if s == "" {
		return allVariants, nil
	}
	var out []variant
	for _, name := range strings.Split(s, ",") {
		name = strings.TrimSpace(name)
		found := false
		for _, v := range allVariants {
			if v.name == name {
				out = append(out, v)
				found = true
			}
		}
		if !found {
			var names []string
			for _, v := range allVariants {
				names = append(names, v.name)
			}
			return nil, fmt.Errorf("BENCH_VARIANTS: unknown variant %q (have %s)", name, strings.Join(names, ", "))
		}
	}
	return out, nil
}

// workload is one of the two C programs.
type workload struct {
	name  string
	title string
	count int
	warm  int
	// argv returns the command line; path is the file to read.
	argv func(e *env, path string, n int) []string
	// targets apply to this workload's rows.
	targets func(rows map[string]*variantResult) []check
}

var getppidWorkload = workload{
	name:  "getppid",
	title: fmt.Sprintf("(a) %s × syscall(SYS_getppid)", thousands(getppidCalls)),
	count: getppidCalls,
	warm:  getppidWarm,
	argv: func(e *env, _ string, n int) []string {
		return []string{e.getppid, strconv.Itoa(n)}
	},
	targets: func(rows map[string]*variantResult) []check {
		return []check{
			ratioCheck(rows, "nodeboot", "native", targetGetppidVsNative),
			// The same limit over the floor of any seccomp filter: what
			// nodeboot's own filter and tracer add.
			ratioCheck(rows, "nodeboot", "seccomp-floor", targetGetppidVsNative),
			// The same, per call: the workload's own loop time leaves out
			// the start (nodeboot's exec, its shim, the tree), which the
			// wall times above include and an untouched syscall never pays.
			loopRatioCheck(rows, "nodeboot", "native", targetGetppidVsNative),
			loopRatioCheck(rows, "nodeboot", "seccomp-floor", targetGetppidVsNative),
		}
	},
}

var openReadWorkload = workload{
	name:  "openread",
	title: fmt.Sprintf("(b) %s × open+read+close of a redirected /proc/sys file", thousands(openReadLoops)),
	count: openReadLoops,
	warm:  openReadWarm,
	argv: func(e *env, path string, n int) []string {
		return []string{e.openread, path, strconv.Itoa(n)}
	},
	targets: func(rows map[string]*variantResult) []check {
		return []check{
			ratioCheck(rows, "nodeboot", "proot", targetOpenVsProot),
			ratioCheck(rows, "nodeboot", "strace", targetOpenVsStrace),
		}
	},
}

func BenchmarkGetppid(b *testing.B) { benchWorkload(b, getppidWorkload) }

func BenchmarkOpenRead(b *testing.B) { benchWorkload(b, openReadWorkload) }

// variantResult is what the timed rounds of one variant measured.
type variantResult struct {
	v       variant
	missing string // why the variant did not run
	walls   []time.Duration
	loops   []time.Duration // the workload's own loop time
	cpus    []time.Duration // user+system time of the variant and workload
	rssKiB  int64           // largest ru_maxrss over the runs
	stderr  string          // first non-empty stderr of a timed run
	mode    string          // nodeboot's mode in effect (from --stats)
	checks  []check
}

// modeNote tells the mode nodeboot reported for its warm-up run.
func (r *variantResult) modeNote() string {
	if r.mode == "" {
		return ""
	}
	return " (mode in effect: " + r.mode + ")"
}

func (r *variantResult) median() time.Duration     { return medianDur(r.walls) }
func (r *variantResult) medianLoop() time.Duration { return medianDur(r.loops) }
func (r *variantResult) medianCPU() time.Duration  { return medianDur(r.cpus) }

// check is one target evaluated against a row.
type check struct {
	variant  string
	desc     string // e.g. "≤ 1.05× native"
	measured string // e.g. "1.012×"
	status   string // PASS, MISS or n/a
	value    float64
	ok       bool
}

type workloadResult struct {
	w      workload
	rows   []*variantResult
	rounds int
	// load averages (1 min) before and after the timed rounds: on a busy
	// machine the numbers are noisy.
	loadBefore, loadAfter string
}

func benchWorkload(b *testing.B, w workload) {
	e := setup(b)
	vs, err := selectedVariants()
	if err != nil {
		b.Fatal(err)
	}
	rounds := defaultRounds
	if s := os.Getenv("BENCH_ROUNDS"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 {
			b.Fatalf("BENCH_ROUNDS=%q: want a positive integer", s)
		}
		rounds = n
	}

	rows := map[string]*variantResult{}
	var order []*variantResult
	var run []*variantResult
	for _, v := range vs {
		r := &variantResult{v: v}
		if v.tool != "" {
			r.missing = e.missing[v.tool]
		}
		rows[v.name] = r
		order = append(order, r)
		if r.missing == "" {
			run = append(run, r)
		} else {
			fmt.Printf("bench: %s: skipping variant %s: %s\n", w.name, v.name, r.missing)
		}
	}

	// Warm-up: every variant once with a small count, to fill the page
	// cache and to fail early when one of them is broken.
	for _, r := range run {
		e.runOnce(b, w, r, w.warm, true)
	}
	for _, r := range run {
		r.walls, r.loops, r.cpus, r.rssKiB, r.stderr = nil, nil, nil, 0, ""
		if r.v.tool == "nodeboot" {
			switch {
			case r.mode == "":
				fmt.Printf("bench: %s/%s: nodeboot --stats printed no \"mode\" line; mode in effect unknown\n", w.name, r.v.name)
			case r.v.name == "nodeboot" && r.mode != "seccomp":
				fmt.Printf("bench: %s/%s: WARNING: auto mode ran as %q, not seccomp\n", w.name, r.v.name, r.mode)
			}
		}
	}
	// Timed rounds, round-robin, starting one variant later each round so
	// that no variant always runs first.
	loadBefore := loadAvg()
	for round := 0; round < rounds; round++ {
		for i := range run {
			r := run[(i+round)%len(run)]
			e.runOnce(b, w, r, w.count, false)
		}
	}

	for _, c := range w.targets(rows) {
		if r := rows[c.variant]; r != nil {
			r.checks = append(r.checks, c)
		}
	}
	for _, name := range []string{"nodeboot", "nodeboot-ptrace"} {
		if r := rows[name]; r != nil {
			r.checks = append(r.checks, rssCheck(r))
		}
	}

	res := &workloadResult{w: w, rows: order, rounds: rounds, loadBefore: loadBefore, loadAfter: loadAvg()}
	printTable(os.Stdout, e, res)
	resultsMu.Lock()
	results = append(results, res)
	all := append([]*workloadResult(nil), results...)
	resultsMu.Unlock()
	if path := os.Getenv("BENCH_MARKDOWN"); path != "" {
		if err := os.WriteFile(path, []byte(markdown(e, all)), 0o644); err != nil {
			b.Errorf("BENCH_MARKDOWN: %v", err)
		}
	}

	for _, r := range order {
		b.Run(r.v.name, func(b *testing.B) {
			if r.missing != "" {
				b.Skip(r.missing)
			}
			b.ReportMetric(float64(r.median().Nanoseconds()), "ns/op")
			b.ReportMetric(float64(r.medianLoop().Nanoseconds()), "loop-ns/op")
			b.ReportMetric(float64(r.medianCPU().Nanoseconds()), "cpu-ns/op")
			if x := cpuRatio(rows, r); x != "" && r.v.name != "native" {
				v, _ := strconv.ParseFloat(x, 64)
				b.ReportMetric(v, "cpu-ratio-vs-native")
			}
			for _, ref := range []string{"native", "proot", "strace"} {
				if ref == r.v.name || (ref != "native" && w.name != openReadWorkload.name) {
					continue
				}
				if x, ok := ratio(rows, r.v.name, ref); ok {
					b.ReportMetric(x, "ratio-vs-"+ref)
				}
			}
			b.ReportMetric(float64(r.rssKiB)*1024/mib, "maxrss-MiB")
		})
	}
}

// runOnce runs w under r's variant through runstat and records wall time,
// the workload's own loop time and ru_maxrss. Any failure is fatal: a
// variant that did not do the work must not produce a number. The warm-up
// run of a nodeboot variant adds --stats, to learn the mode in effect.
func (e *env) runOnce(b *testing.B, w workload, r *variantResult, n int, warm bool) {
	b.Helper()
	path := e.hostFile
	if r.v.redirected {
		path = guestFile
	}
	prefix := r.v.prefix(e)
	stats := warm && r.v.tool == "nodeboot" && len(prefix) >= 2 && prefix[1] == "exec"
	if stats {
		prefix = append(prefix[:2:2], append([]string{"--stats"}, prefix[2:]...)...)
	}
	argv := append(prefix, w.argv(e, path, n)...)
	statFile := filepath.Join(e.dir, "runstat.out")
	os.Remove(statFile)

	ctx, cancel := context.WithTimeout(context.Background(), runTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, e.runstat, append([]string{statFile}, argv...)...)
	cmd.Dir = e.dir
	// The command lines above say everything: no NODEBOOT_* settings from
	// the caller's environment.
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "NODEBOOT_") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	// A process group of its own, so that a run that hangs is killed with
	// everything it started.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 10 * time.Second
	var stdout, stderr bytes.Buffer
	cmd.Stdout = &stdout
	cmd.Stderr = &stderr
	err := cmd.Run()
	shown := strings.Join(argv, " ")
	if ctx.Err() != nil {
		b.Fatalf("%s/%s: %s: timed out after %v\nstdout:\n%s\nstderr:\n%s", w.name, r.v.name, shown, runTimeout, stdout.String(), stderr.String())
	}
	if err != nil {
		b.Fatalf("%s/%s: %s: %v (the workload checks its own results; a failure here means the variant did not do the work)\nstdout:\n%s\nstderr:\n%s",
			w.name, r.v.name, shown, err, stdout.String(), stderr.String())
	}
	stat, err := os.ReadFile(statFile)
	if err != nil {
		b.Fatalf("%s/%s: runstat wrote no result: %v", w.name, r.v.name, err)
	}
	var wallNS, rss, cpuNS int64
	var code, sig int
	if _, err := fmt.Sscan(string(stat), &wallNS, &rss, &code, &sig, &cpuNS); err != nil {
		b.Fatalf("%s/%s: runstat result %q: %v", w.name, r.v.name, stat, err)
	}
	loopNS, err := parseOK(stdout.String(), n)
	if err != nil {
		b.Fatalf("%s/%s: %s: %v\nstdout:\n%s\nstderr:\n%s", w.name, r.v.name, shown, err, stdout.String(), stderr.String())
	}
	if stats {
		if m := modeLine.FindStringSubmatch(stderr.String()); m != nil {
			r.mode = m[1]
		}
		return
	}
	r.walls = append(r.walls, time.Duration(wallNS))
	r.loops = append(r.loops, time.Duration(loopNS))
	r.cpus = append(r.cpus, time.Duration(cpuNS))
	r.rssKiB = max(r.rssKiB, rss)
	if r.stderr == "" && stderr.Len() > 0 {
		r.stderr = stderr.String()
		fmt.Printf("bench: %s/%s: the run wrote to stderr: %s\n", w.name, r.v.name, truncate(r.stderr, 600))
	}
}

// modeLine is the "mode   seccomp" line of nodeboot's --stats.
var modeLine = regexp.MustCompile(`(?m)^mode\s+(\S+)\s*$`)

// parseOK finds the workload's "ok n=N loop_ns=T" line and checks N.
func parseOK(out string, n int) (loopNS int64, err error) {
	for _, line := range strings.Split(out, "\n") {
		if !strings.HasPrefix(line, "ok ") {
			continue
		}
		var gotN int
		if _, err := fmt.Sscanf(line, "ok n=%d loop_ns=%d", &gotN, &loopNS); err != nil {
			return 0, fmt.Errorf("workload result %q: %v", line, err)
		}
		if gotN != n {
			return 0, fmt.Errorf("workload did %d rounds, want %d", gotN, n)
		}
		return loopNS, nil
	}
	return 0, errors.New(`workload printed no "ok" line`)
}

// setup builds everything once.
func setup(b *testing.B) *env {
	b.Helper()
	setupOnce.Do(func() { shared, setupErr = doSetup() })
	if setupErr != nil {
		b.Fatal(setupErr)
	}
	return shared
}

func doSetup() (*env, error) {
	dir, err := os.MkdirTemp("", "nodeboot-bench-")
	if err != nil {
		return nil, err
	}
	e := &env{dir: dir, tools: map[string]string{}, missing: map[string]string{}}
	shared = e // so that TestMain removes dir even when setup fails

	// The fake /proc/sys: the file exists only below HOST.
	e.host = filepath.Join(dir, "host-proc-sys")
	e.hostFile = filepath.Join(e.host, fileRel)
	if err := os.MkdirAll(filepath.Dir(e.hostFile), 0o755); err != nil {
		return nil, err
	}
	if err := os.WriteFile(e.hostFile, []byte(fileContent), 0o644); err != nil {
		return nil, err
	}
	if _, err := os.Stat(guestFile); !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("%s must not exist on this host (stat: %v): the redirected variants prove the redirect by reading a file that exists only below HOST", guestFile, err)
	}

	// The C programs.
	gcc, err := exec.LookPath("gcc")
	if err != nil {
		return nil, fmt.Errorf("gcc is needed to build the workloads: %v", err)
	}
	e.static = true
	for _, p := range []struct {
		src string
		out *string
	}{
		{"getppid.c", &e.getppid},
		{"openread.c", &e.openread},
		{"runstat.c", &e.runstat},
		{"allowfilter.c", &e.floor},
	} {
		src, err := filepath.Abs(filepath.Join("testdata", p.src))
		if err != nil {
			return nil, err
		}
		*p.out = filepath.Join(dir, strings.TrimSuffix(p.src, ".c"))
		args := []string{"-O2", "-Wall", "-o", *p.out, src}
		out, err := exec.Command(gcc, append([]string{"-static"}, args...)...).CombinedOutput()
		if err != nil {
			out2, err2 := exec.Command(gcc, args...).CombinedOutput()
			if err2 != nil {
				return nil, fmt.Errorf("gcc %s: %v\n%s", p.src, err2, out2)
			}
			e.static = false
			e.notes = append(e.notes, fmt.Sprintf("gcc -static failed for %s (%v: %s); linked dynamically", p.src, err, strings.TrimSpace(string(out))))
		}
	}

	// strace and proot: missing ones are reported, not fatal.
	for _, tool := range []string{"strace", "proot"} {
		p, err := exec.LookPath(tool)
		if err != nil {
			e.missing[tool] = fmt.Sprintf("%s not installed (apt-get install %s)", tool, tool)
			continue
		}
		e.tools[tool] = p
	}

	// nodeboot, when a selected variant needs it.
	vs, err := selectedVariants()
	if err != nil {
		return nil, err
	}
	needNodeboot := false
	for _, v := range vs {
		needNodeboot = needNodeboot || v.tool == "nodeboot"
	}
	if p := os.Getenv("BENCH_NODEBOOT"); p != "" {
		e.nodeboot, err = filepath.Abs(p)
		if err != nil {
			return nil, err
		}
		e.notes = append(e.notes, "nodeboot binary from BENCH_NODEBOOT="+p)
	} else if needNodeboot {
		root, err := repoRoot()
		if err != nil {
			return nil, err
		}
		e.nodeboot = filepath.Join(dir, "nodeboot")
		cmd := exec.Command("go", "build", "-o", e.nodeboot, "./cmd/nodeboot")
		cmd.Dir = root
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			return nil, fmt.Errorf("building nodeboot (CGO_ENABLED=0 go build ./cmd/nodeboot in %s): %v\n%s", root, err, out)
		}
	}
	return e, nil
}

// repoRoot is the directory of the main module's go.mod.
func repoRoot() (string, error) {
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if err == nil {
		if gomod := strings.TrimSpace(string(out)); gomod != "" && gomod != os.DevNull {
			return filepath.Dir(gomod), nil
		}
	}
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		return "", errors.New("cannot find the repository root")
	}
	return filepath.Dir(filepath.Dir(file)), nil
}

func ratio(rows map[string]*variantResult, of, ref string) (float64, bool) {
	a, b := rows[of], rows[ref]
	if a == nil || b == nil || a.missing != "" || b.missing != "" || len(a.walls) == 0 || len(b.walls) == 0 {
		return 0, false
	}
	return float64(a.median()) / float64(b.median()), true
}

// cpuRatio is the median CPU time of r over that of native.
func cpuRatio(rows map[string]*variantResult, r *variantResult) string {
	n := rows["native"]
	if n == nil || n.missing != "" || len(n.cpus) == 0 || n.medianCPU() == 0 {
		return ""
	}
	return fmt.Sprintf("%.3f", float64(r.medianCPU())/float64(n.medianCPU()))
}

// refState says why a ratio against ref could not be made.
func refState(rows map[string]*variantResult, ref string) string {
	switch r := rows[ref]; {
	case r == nil:
		return "not run"
	case r.missing != "":
		return "missing"
	}
	return "n/a"
}

func ratioCheck(rows map[string]*variantResult, of, ref string, limit float64) check {
	c := check{variant: of, desc: fmt.Sprintf("≤ %.2f× %s", limit, ref)}
	x, ok := ratio(rows, of, ref)
	if !ok {
		c.status, c.measured = "n/a", ref+" "+refState(rows, ref)
		return c
	}
	c.value, c.ok = x, x <= limit
	c.measured = fmt.Sprintf("%.3f×", x)
	c.status = passMiss(c.ok)
	return c
}

// loopRatioCheck is ratioCheck on the workloads' own loop times.
func loopRatioCheck(rows map[string]*variantResult, of, ref string, limit float64) check {
	c := check{variant: of, desc: fmt.Sprintf("loop ≤ %.2f× %s", limit, ref)}
	a, b := rows[of], rows[ref]
	if a == nil || b == nil || a.missing != "" || b.missing != "" || len(a.loops) == 0 || len(b.loops) == 0 || b.medianLoop() == 0 {
		c.status, c.measured = "n/a", ref+" "+refState(rows, ref)
		return c
	}
	x := float64(a.medianLoop()) / float64(b.medianLoop())
	c.value, c.ok = x, x <= limit
	c.measured = fmt.Sprintf("%.3f×", x)
	c.status = passMiss(c.ok)
	return c
}

func rssCheck(r *variantResult) check {
	c := check{variant: r.v.name, desc: fmt.Sprintf("RSS < %.0f MiB", targetRSSMiB)}
	if r.missing != "" || len(r.walls) == 0 {
		c.status, c.measured = "n/a", "n/a"
		return c
	}
	mb := float64(r.rssKiB) * 1024 / mib
	c.value, c.ok = mb, mb < targetRSSMiB
	c.measured = fmt.Sprintf("%.1f MiB", mb)
	c.status = passMiss(c.ok)
	return c
}

func passMiss(ok bool) string {
	if ok {
		return "PASS"
	}
	return "MISS"
}

// row formats one variant's cells: median, min–max, loop, ratios, RSS,
// targets.
func (w *workloadResult) cells(r *variantResult) []string {
	if r.missing != "" {
		return []string{r.v.name, "MISSING: " + r.missing, "", "", "", "", "", "", "", "", ""}
	}
	rows := map[string]*variantResult{}
	for _, x := range w.rows {
		rows[x.v.name] = x
	}
	rat := func(ref string) string {
		if ref != "native" && w.w.name != openReadWorkload.name {
			return ""
		}
		if ref == r.v.name {
			return "1"
		}
		if x, ok := ratio(rows, r.v.name, ref); ok {
			return fmt.Sprintf("%.3f", x)
		}
		return refState(rows, ref)
	}
	minW, maxW := r.walls[0], r.walls[0]
	for _, d := range r.walls {
		minW, maxW = min(minW, d), max(maxW, d)
	}
	var targets []string
	for _, c := range r.checks {
		targets = append(targets, fmt.Sprintf("%s: %s %s", c.desc, c.measured, c.status))
	}
	return []string{
		r.v.name,
		fmt.Sprintf("%.4f", r.median().Seconds()),
		fmt.Sprintf("%.4f–%.4f", minW.Seconds(), maxW.Seconds()),
		fmt.Sprintf("%.4f", r.medianLoop().Seconds()),
		fmt.Sprintf("%.4f", r.medianCPU().Seconds()),
		rat("native"), rat("proot"), rat("strace"), cpuRatio(rows, r),
		fmt.Sprintf("%.1f", float64(r.rssKiB)*1024/mib),
		strings.Join(targets, "; "),
	}
}

var header = []string{"variant", "median s", "min–max s", "loop s", "cpu s", "×native", "×proot", "×strace", "cpu ×native", "maxRSS MiB", "targets"}

func printTable(out *os.File, e *env, w *workloadResult) {
	fmt.Fprintf(out, "\n%s — median of %d runs per variant (round-robin), HOST=%s\n", w.w.title, w.rounds, e.host)
	fmt.Fprintf(out, "load average (1 min) before %s, after %s%s\n", w.loadBefore, w.loadAfter, busy(w))
	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, strings.Join(header, "\t"))
	for _, r := range w.rows {
		fmt.Fprintln(tw, strings.Join(w.cells(r), "\t"))
	}
	tw.Flush()
	for _, r := range w.rows {
		fmt.Fprintf(out, "  %-16s %s%s\n", r.v.name+":", r.v.label, r.modeNote())
	}
	for _, n := range e.notes {
		fmt.Fprintf(out, "note: %s\n", n)
	}
	fmt.Fprintln(out)
}

func markdown(e *env, all []*workloadResult) string {
	var s strings.Builder
	fmt.Fprintf(&s, "Measured %s on %s.\n\n", time.Now().UTC().Format("2006-01-02 15:04 MST"), machine(e))
	for _, w := range all {
		fmt.Fprintf(&s, "### %s\n\nMedian wall time of %d runs per variant, run round-robin. Load average (1 min) before %s, after %s%s.\n\n",
			w.w.title, w.rounds, w.loadBefore, w.loadAfter, busy(w))
		fmt.Fprintf(&s, "| %s |\n|%s\n", strings.Join(header, " | "), strings.Repeat(" --- |", len(header)))
		for _, r := range w.rows {
			c := w.cells(r)
			for i := range c {
				c[i] = strings.ReplaceAll(c[i], "|", `\|`)
			}
			fmt.Fprintf(&s, "| %s |\n", strings.Join(c, " | "))
		}
		s.WriteString("\n")
		for _, r := range w.rows {
			fmt.Fprintf(&s, "- %s: `%s`%s\n", r.v.name, r.v.label, r.modeNote())
		}
		s.WriteString("\n")
	}
	for _, n := range e.notes {
		fmt.Fprintf(&s, "Note: %s\n\n", n)
	}
	return s.String()
}

// machine describes where the benchmark ran.
func machine(e *env) string {
	var parts []string
	parts = append(parts, fmt.Sprintf("%d cores", runtime.NumCPU()))
	if data, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, line := range strings.Split(string(data), "\n") {
			if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
				parts = append(parts, strings.TrimSpace(v))
				break
			}
		}
	}
	var u syscall.Utsname
	if syscall.Uname(&u) == nil {
		parts = append(parts, "Linux "+utsString(u.Release[:]))
	}
	parts = append(parts, runtime.Version())
	for _, tool := range []string{"strace", "proot"} {
		if p := e.tools[tool]; p != "" {
			parts = append(parts, toolVersion(p, tool))
		}
	}
	if e.static {
		parts = append(parts, "static workloads (gcc -O2 -static)")
	}
	return strings.Join(parts, ", ")
}

func toolVersion(path, tool string) string {
	out, _ := exec.Command(path, "--version").CombinedOutput()
	extra := ""
	if strings.Contains(string(out), "seccomp_filter = no") {
		extra = " (built without seccomp_filter: stops at every syscall)"
	}
	for _, line := range strings.Split(string(out), "\n") {
		if f := strings.Fields(line); len(f) > 0 {
			for _, w := range f {
				if len(w) > 0 && w[0] >= '0' && w[0] <= '9' && strings.Contains(w, ".") {
					return tool + " " + w + extra
				}
			}
		}
	}
	return tool + extra
}

func utsString(b []int8) string {
	var s []byte
	for _, c := range b {
		if c == 0 {
			break
		}
		s = append(s, byte(c))
	}
	return string(s)
}

// loadAvg is the 1-minute load average, as /proc/loadavg spells it.
func loadAvg() string {
	data, err := os.ReadFile("/proc/loadavg")
	if f := strings.Fields(string(data)); err == nil && len(f) > 0 {
		return f[0]
	}
	return "?"
}

// busy warns when the machine had more runnable work than cores.
func busy(w *workloadResult) string {
	for _, l := range []string{w.loadBefore, w.loadAfter} {
		if x, err := strconv.ParseFloat(l, 64); err == nil && x > float64(runtime.NumCPU()) {
			return " (busy machine: numbers are noisy)"
		}
	}
	return ""
}

func medianDur(d []time.Duration) time.Duration {
	if len(d) == 0 {
		return 0
	}
	s := append([]time.Duration(nil), d...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

func thousands(n int) string {
	s := strconv.Itoa(n)
	var out []byte
	for i := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			out = append(out, ',')
		}
		out = append(out, s[i])
	}
	return string(out)
}

func truncate(s string, n int) string {
	s = strings.TrimSpace(s)
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
