package e2e

import (
	"flag"
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nodeboot/nodeboot/e2e/sandbox"
)

func TestMain(m *testing.M) {
	// Re-executed as the sandbox helper: set up the mounts and exec.
	sandbox.Main()
	skipExamplesUnlessRoot()
	code := m.Run()
	if r := bench.report(); r != "" {
		fmt.Print(r)
		if f := os.Getenv("E2E_BENCH_OUT"); f != "" {
			if err := os.WriteFile(f, []byte(r), 0o644); err != nil {
				fmt.Fprintln(os.Stderr, err)
			}
		}
	}
	os.Exit(code)
}

// envDuration reads a duration from the environment.
func envDuration(t testing.TB, name string, def time.Duration) time.Duration {
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	d, err := time.ParseDuration(v)
	if err != nil {
		t.Fatalf("%s=%q: %v", name, v, err)
	}
	return d
}

// cpuWindow is how long kubelet's CPU time is measured once Ready, and how
// long TestNodeboot checks the node stays Ready (E2E_SOAK overrides that).
func cpuWindow(t testing.TB) time.Duration { return envDuration(t, "E2E_CPU_WINDOW", 3*time.Minute) }

// run is one kubelet run's numbers.
type run struct {
	ready      time.Duration
	kubeletHWM int64
	kubeletCPU time.Duration // over window
	window     time.Duration
	tracerRSS  int64 // nodeboot (tracer) VmHWM
	tracerCPU  time.Duration
}

// bench collects the numbers of TestBaseline and TestNodeboot for the
// report printed after the tests.
var bench benchmarks

type benchmarks struct {
	sync.Mutex
	native, nodeboot *run
	// TestPodFigures' two sides.
	podsNative, podsNodeboot *podFigures
}

func mib(b int64) string { return fmt.Sprintf("%.1f MiB", float64(b)/(1<<20)) }

func ratio(a, b time.Duration) string {
	if b <= 0 {
		return "n/a"
	}
	return fmt.Sprintf("%.2fx", float64(a)/float64(b))
}

// report renders the numbers as the markdown table kept in
// docs/benchmarks.md.
func (b *benchmarks) report() string {
	b.Lock()
	defer b.Unlock()
	kubelets := b.native != nil || b.nodeboot != nil
	pods := b.podsNative != nil && b.podsNodeboot != nil
	if !kubelets && !pods {
		return ""
	}
	var s strings.Builder
	host, _ := os.Hostname()
	fmt.Fprintf(&s, "\n## Kubernetes node (e2e) results, %s on %s\n\n", time.Now().UTC().Format("2006-01-02"), host)
	s.WriteString("| metric | native | nodeboot | ratio | target |\n| --- | --- | --- | --- | --- |\n")
	if kubelets {
		b.kubeletRows(&s)
	}
	if pods {
		b.podRows(&s)
	}
	return s.String()
}

// kubeletRows are TestBaseline's and TestNodeboot's rows.
func (b *benchmarks) kubeletRows(s *strings.Builder) {
	get := func(r *run, f func(*run) string) string {
		if r == nil {
			return "not run"
		}
		return f(r)
	}
	n, x := b.native, b.nodeboot
	rt := func(f func(*run) time.Duration) string {
		if n == nil || x == nil {
			return "n/a"
		}
		return ratio(f(x), f(n))
	}
	fmt.Fprintf(s, "| time to Ready (kubelet start to Node Ready) | %s | %s | %s | <= 1.2x |\n",
		get(n, func(r *run) string { return r.ready.Round(10 * time.Millisecond).String() }),
		get(x, func(r *run) string { return r.ready.Round(10 * time.Millisecond).String() }),
		rt(func(r *run) time.Duration { return r.ready }))
	fmt.Fprintf(s, "| kubelet CPU time while Ready | %s | %s | %s | <= 1.15x |\n",
		get(n, func(r *run) string { return fmt.Sprintf("%s in %s", r.kubeletCPU, r.window) }),
		get(x, func(r *run) string { return fmt.Sprintf("%s in %s", r.kubeletCPU, r.window) }),
		rt(func(r *run) time.Duration { return r.kubeletCPU }))
	fmt.Fprintf(s, "| kubelet peak RSS (VmHWM) | %s | %s | | |\n",
		get(n, func(r *run) string { return mib(r.kubeletHWM) }), get(x, func(r *run) string { return mib(r.kubeletHWM) }))
	fmt.Fprintf(s, "| nodeboot peak RSS (VmHWM) | | %s | | < 30 MiB |\n",
		get(x, func(r *run) string { return mib(r.tracerRSS) }))
	fmt.Fprintf(s, "| nodeboot CPU time while Ready | | %s | | |\n",
		get(x, func(r *run) string { return r.tracerCPU.String() }))
}

// podRows are TestPodFigures' rows. The CPU ratio scales nodeboot's
// figure to the native window (the two differ by milliseconds).
func (b *benchmarks) podRows(s *strings.Builder) {
	n, x := b.podsNative, b.podsNodeboot
	fmt.Fprintf(s, "| pod start, create to Running (median of %d, one after another) | %s | %s | %s | <= 1.3x |\n",
		figurePods, n.median.Round(time.Millisecond), x.median.Round(time.Millisecond), ratio(x.median, n.median))
	fmt.Fprintf(s, "| kubelet + containerd + shims CPU time, %d idle pods | %s in %s | %s in %s | %s | <= 1.15x |\n",
		figurePods, n.cpu, n.window.Round(time.Second), x.cpu, x.window.Round(time.Second), ratio(perWindow(x.cpu, x, n), n.cpu))
	fmt.Fprintf(s, "| the same plus nodeboot's tracer | %s | %s | %s | |\n",
		n.cpu, x.cpu+x.tracerCPU, ratio(perWindow(x.cpu+x.tracerCPU, x, n), n.cpu))
}

// skipExamplesUnlessRoot adds the examples to -test.skip when not root:
// the tests skip by themselves (cluster.Require says why), but an Example
// cannot skip, and its test bed needs root.
func skipExamplesUnlessRoot() {
	if os.Geteuid() == 0 {
		return
	}
	flag.Parse()
	f := flag.Lookup("test.skip")
	if f == nil {
		return
	}
	skip := "^Example"
	if v := f.Value.String(); v != "" {
		skip = v + "|" + skip
	}
	if err := f.Value.Set(skip); err == nil {
		fmt.Fprintln(os.Stderr, "e2e: not root: skipping the examples (their test bed needs network namespaces, mounts and cgroups, and an example cannot skip itself)")
	}
}
