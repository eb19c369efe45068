package e2e

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/nodeboot/nodeboot/e2e/cluster"
	"github.com/nodeboot/nodeboot/node"
	"github.com/nodeboot/nodeboot/profile"
)

// Start a node with the node package, wait until it is Ready, read its
// status and stop it.
//
// The test bed (newExampleBed) is a real kube-apiserver, etcd and
// containerd in a network namespace, and, as k3s, a generated stand-in
// script that writes the admin kubeconfig where nodeboot asks and execs
// the test bed's real kubelet in that namespace (no k3s can be had
// offline; TestK3s runs a real one). Everything else is the library for
// real: seeding, the interceptor with the k3s profile, the supervisor, the
// readiness watcher on client-go and the phase machine. The node runs in
// this process, on the host, with kubelet's sysctls and cgroups served by
// the fake kernel.
func Example_node() {
	bed := newExampleBed()
	defer bed.close()

	p, err := profile.Load("k3s")
	if err != nil {
		fmt.Println(err)
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	n, err := node.Start(ctx, node.Config{
		DataDir:  bed.dataDir,
		K3s:      bed.k3s,
		Profile:  p,
		NodeName: bed.nodeName,
		// The test bed's API server is in its own network namespace.
		Dial:   bed.dial,
		Logger: bed.logger,
	})
	if err != nil {
		fmt.Println("start:", err)
		return
	}
	st, err := n.WaitFor(ctx, node.PhaseReady)
	if err != nil {
		fmt.Println("wait:", err)
		n.Stop(context.Background())
		return
	}
	fmt.Println("phase:", st.Phase)
	fmt.Println("health:", st.Health.State)
	fmt.Println("k3s running:", st.K3sPID > 0)
	fmt.Println("restarts:", st.Restarts)

	if err := n.Stop(ctx); err != nil {
		fmt.Println("stop:", err)
	}
	fmt.Println("after Stop:", n.Status().Phase)
	// Output:
	// phase: ready
	// health: Ready
	// k3s running: true
	// restarts: 0
	// after Stop: stopped
}

// exampleBed is the runnable example's test bed.
type exampleBed struct {
	tb       *exampleTB
	c        *cluster.Cluster
	dataDir  string
	k3s      string // the stand-in
	nodeName string
	dial     func(ctx context.Context, network, address string) (net.Conn, error)
	logger   *slog.Logger
	logFile  *os.File
}

// newExampleBed sets up the test bed as TestUp does (e2e/cluster, with a
// k3s stand-in), but with the kubelet entering the cluster's network
// namespace itself: the node runs in this process, not in the sandbox.
// It panics, after undoing what it did, when something fails.
func newExampleBed() (bed *exampleBed) {
	tb := &exampleTB{name: "Example_node"}
	defer func() {
		if r := recover(); r != nil {
			tb.cleanup()
			panic(r)
		}
	}()
	c := cluster.New(tb, cluster.Options{})
	if _, err := c.StartContainerd(); err != nil {
		tb.Fatal(err)
	}
	c.KubeletCgroupRoot = "/" // the emulated cgroup tree, as in TestNodeboot
	argv, err := c.KubeletArgv()
	if err != nil {
		tb.Fatal(err)
	}
	bed = &exampleBed{tb: tb, c: c, dataDir: filepath.Join(c.Dir, "nodeboot-data"), nodeName: c.Name}
	bed.k3s = filepath.Join(c.Dir, "k3s-stand-in")
	if err := writeK3sStandIn(bed.k3s, c.Kubeconfig, slices.Concat([]string{"nsenter", "--net=" + c.NetNS, "--"}, argv)); err != nil {
		tb.Fatal(err)
	}
	rc, err := c.RESTConfig()
	if err != nil {
		tb.Fatal(err)
	}
	bed.dial = rc.Dial
	if bed.logFile, err = os.Create(filepath.Join(c.Dir, "node.log")); err != nil {
		tb.Fatal(err)
	}
	var w io.Writer = bed.logFile
	if os.Getenv("E2E_VERBOSE") != "" {
		w = io.MultiWriter(bed.logFile, os.Stderr)
	}
	bed.logger = slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelDebug}))
	return bed
}

// close keeps the node's logs (E2E_LOG_DIR) and tears the test bed down;
// what went wrong is printed on stdout, so that the example fails.
func (b *exampleBed) close() {
	b.logFile.Close()
	if d := os.Getenv("E2E_LOG_DIR"); d != "" {
		dst := filepath.Join(d, b.tb.name)
		if err := os.MkdirAll(dst, 0o755); err == nil {
			for _, f := range []string{filepath.Join(b.c.Dir, "node.log"), filepath.Join(b.dataDir, "logs", "k3s.log")} {
				if data, err := os.ReadFile(f); err == nil {
					_ = os.WriteFile(filepath.Join(dst, filepath.Base(f)), data, 0o644)
				}
			}
		}
	}
	b.tb.cleanup()
}

// exampleTB stands in for the *testing.T an Example does not get: Fatal
// panics (the example fails, after newExampleBed has undone its work),
// Errorf prints on stdout (the output no longer matches), Logf goes to
// stderr, and the cleanups run when the test bed is closed.
type exampleTB struct {
	name     string
	failed   bool
	cleanups []func()
}

func (tb *exampleTB) Helper()      {}
func (tb *exampleTB) Name() string { return tb.name }
func (tb *exampleTB) Failed() bool { return tb.failed }
func (tb *exampleTB) Logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, tb.name+": "+format+"\n", args...)
}
func (tb *exampleTB) Errorf(format string, args ...any) {
	tb.failed = true
	fmt.Printf(format+"\n", args...)
}
func (tb *exampleTB) Fatal(args ...any) {
	tb.failed = true
	panic(fmt.Sprint(args...))
}
func (tb *exampleTB) Fatalf(format string, args ...any) {
	tb.failed = true
	panic(fmt.Sprintf(format, args...))
}
func (tb *exampleTB) Skip(args ...any) {
	panic("an example cannot skip: " + fmt.Sprint(args...))
}
func (tb *exampleTB) Cleanup(f func()) { tb.cleanups = append(tb.cleanups, f) }

// cleanup runs the cleanups, last first.
func (tb *exampleTB) cleanup() {
	for i := len(tb.cleanups) - 1; i >= 0; i-- {
		tb.cleanups[i]()
	}
	tb.cleanups = nil
}

var _ cluster.TB = (*exampleTB)(nil)
