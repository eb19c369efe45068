package e2e

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/nodeboot/nodeboot/bootstrap"
	"github.com/nodeboot/nodeboot/e2e/cluster"
	"github.com/nodeboot/nodeboot/e2e/sandbox"
)

// TestQuickStart runs the README's first command, the main job, as a new
// user would on a root Linux machine that is not sandboxed: hack/up.sh
// (what `make up` runs once it has built bin/nodeboot) with no k3s
// anywhere, so that it downloads the tested release
// (bootstrap.DefaultK3sVersion), checks its sha256 and runs `nodeboot up
// --wait`; then the next steps it prints: `nodeboot kubectl get nodes`,
// `nodeboot kubeconfig --merge` (used through client-go), and `down`.
//
// Real: the script, the nodeboot binary, its download and checksum code,
// k3s (NODEBOOT_E2E_K3S) with its kubelet, containerd and flannel, the
// host's kernel files (no sandbox: only a private mount namespace, so
// that k3s's mounts go away with it, and the test bed's network
// namespace). Not real: the release server. The test has no internet, so
// it serves the k3s binary NODEBOOT_E2E_K3S names as that release, with a
// sha256sum-ARCH.txt computed here, from a local HTTP server in the
// node's network namespace. TestK3s runs k3s through `nodeboot up` in the
// gVisor-like sandbox.
func TestQuickStart(t *testing.T) {
	k3s := os.Getenv("NODEBOOT_E2E_K3S")
	if k3s == "" {
		t.Skip("NODEBOOT_E2E_K3S not set: point it at a k3s binary to run the quick start (make up) with it")
	}
	asset := map[string]string{"amd64": "k3s", "arm64": "k3s-arm64"}[runtime.GOARCH]
	if asset == "" {
		t.Skipf("k3s publishes no binary for %s", runtime.GOARCH)
	}
	t0 := time.Now()
	c := cluster.New(t, cluster.Options{NoControlPlane: true})
	nodeboot := filepath.Join(c.Dir, "nodeboot")
	build := exec.Command("go", "build", "-o", nodeboot, "./cmd/nodeboot")
	build.Dir = ".."
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if b, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build nodeboot: %v\n%s", err, b)
	}
	script, err := filepath.Abs(filepath.Join("..", "hack", "up.sh"))
	if err != nil {
		t.Fatal(err)
	}

	// The release, as GitHub serves it: /VERSION/ASSET with the '+' as %2B.
	sum, err := fileSum(k3s)
	if err != nil {
		t.Fatal(err)
	}
	release := "/" + strings.ReplaceAll(bootstrap.DefaultK3sVersion, "+", "%2B") + "/"
	var (
		mu     sync.Mutex
		served []string
	)
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		served = append(served, r.URL.EscapedPath())
		mu.Unlock()
		switch r.URL.EscapedPath() {
		case release + asset:
			http.ServeFile(w, r, k3s)
		case release + "sha256sum-" + runtime.GOARCH + ".txt":
			fmt.Fprintf(w, "%s  %s\n", sum, asset)
		default:
			http.NotFound(w, r)
		}
	}))
	srv.Listener.Close()
	if srv.Listener, err = listenInNetNS(c.NetNS); err != nil {
		t.Fatal(err)
	}
	srv.Start()
	defer srv.Close()

	dataDir := filepath.Join(c.Dir, "quickstart-data")
	home := filepath.Join(c.Dir, "home")
	config := filepath.Join(c.Dir, "empty-config.yaml") // keeps /etc/nodeboot/config.yaml out
	for _, err := range []error{os.Mkdir(home, 0o700), os.WriteFile(config, nil, 0o600)} {
		if err != nil {
			t.Fatal(err)
		}
	}
	env := []string{"PATH=" + pathWithoutK3s(), "HOME=" + home, "NODEBOOT_DATA_DIR=" + dataDir,
		"NODEBOOT_K3S_BASE_URL=" + srv.URL, "NODEBOOT_CONFIG=" + config}
	// runNB runs argv in the node's network namespace with a private mount
	// namespace and nothing else changed: a machine that is not sandboxed.
	runNB := func(timeout time.Duration, argv ...string) upResult {
		t.Helper()
		cmd, err := sandbox.Command(sandbox.Options{NetNS: c.NetNS, Spec: sandbox.Spec{}}, argv...)
		if err != nil {
			t.Fatal(err)
		}
		// The sandbox's environment (its spec included) minus nodeboot's
		// settings and the test's PATH, HOME and KUBECONFIG, plus env.
		var keep []string
		for _, e := range cmd.Env {
			name, _, _ := strings.Cut(e, "=")
			own := strings.HasPrefix(name, "NODEBOOT_") && name != sandbox.EnvSpec
			if !own && name != "KUBECONFIG" && name != "PATH" && name != "HOME" {
				keep = append(keep, e)
			}
		}
		cmd.Env = append(keep, env...)
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		cmd.WaitDelay = 5 * time.Second
		start := time.Now()
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		timer := time.AfterFunc(timeout, func() { _ = cmd.Process.Kill() })
		err = cmd.Wait()
		timer.Stop()
		r := upResult{stdout: stdout.String(), stderr: stderr.String(), took: time.Since(start)}
		if ee, ok := err.(*exec.ExitError); ok {
			r.code = ee.ExitCode()
		} else if err != nil {
			t.Fatalf("%s: %v", argv[0], err)
		}
		return r
	}
	t.Cleanup(func() {
		if r := runNB(2*time.Minute, nodeboot, "down", "--data-dir", dataDir); r.code != 0 {
			t.Errorf("down: exit %d\n%s", r.code, r.all())
		}
	})
	t.Logf("setup (netns, build, release server): %s", time.Since(t0).Round(time.Millisecond))

	// The main job.
	r := runNB(12*time.Minute, script, nodeboot, "--timeout", "8m", "--node-name", c.Name, "--",
		"--node-ip="+cluster.NodeIP, "--bind-address="+cluster.NodeIP,
		"--disable=traefik,servicelb,metrics-server,local-storage")
	upTook := r.took
	t.Logf("hack/up.sh: exit %d after %s\n%s", r.code, r.took.Round(time.Millisecond), r.all())
	if r.code != 0 {
		t.Fatalf("the quick start exited %d, want 0", r.code)
	}
	bin := filepath.Join(dataDir, "bin", "k3s")
	for _, want := range []string{
		"✓ k3s " + bootstrap.DefaultK3sVersion + " installed at " + bin + " (sha256 verified)",
		"✓ Node Ready", "==> The node is up. Next:", nodeboot + " kubectl --data-dir " + dataDir + " get nodes",
	} {
		if !strings.Contains(r.all(), want) {
			t.Errorf("the quick start's output lacks %q", want)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if len(served) != 2 {
		t.Errorf("release requests %v, want the checksum file and the binary", served)
	}
	if got, err := fileSum(bin); err != nil || got != sum {
		t.Errorf("installed k3s: sha256 %s (%v), want %s", got, err, sum)
	}

	// Its next steps.
	r = runNB(2*time.Minute, nodeboot, "kubectl", "--data-dir", dataDir, "get", "nodes", "--no-headers")
	t.Logf("nodeboot kubectl get nodes: exit %d\n%s", r.code, r.all())
	if f := strings.Fields(r.stdout); r.code != 0 || len(f) < 2 || f[0] != c.Name || f[1] != "Ready" {
		t.Errorf("nodeboot kubectl get nodes: exit %d, %q; want %s Ready", r.code, r.stdout, c.Name)
	}
	r = runNB(time.Minute, nodeboot, "kubeconfig", "--data-dir", dataDir, "--merge")
	if want := "nodeboot-" + c.Name + "\n"; r.code != 0 || r.stdout != want {
		t.Fatalf("kubeconfig --merge: exit %d, stdout %q (want %q)\n%s", r.code, r.stdout, want, r.stderr)
	}
	merged := filepath.Join(home, ".kube", "config")
	if kc, err := clientcmd.LoadFromFile(merged); err != nil || kc.CurrentContext != "nodeboot-"+c.Name {
		t.Fatalf("merged kubeconfig %s: %v", merged, err)
	}
	if err := c.UseKubeconfig(merged); err != nil {
		t.Fatal(err)
	}
	if n, err := c.Client.CoreV1().Nodes().Get(t.Context(), c.Name, metav1.GetOptions{}); err != nil {
		t.Errorf("the merged kubeconfig does not reach the node: %v", err)
	} else {
		t.Logf("through ~/.kube/config: node %s, kubelet %s", n.Name, n.Status.NodeInfo.KubeletVersion)
	}
	checkHostSysctls(t, c, "at Ready")
	t.Logf("TestQuickStart: Ready %s after the script started (download included); total %s", upTook.Round(time.Millisecond), time.Since(t0).Round(time.Millisecond))
}

// listenInNetNS listens on a loopback port of the network namespace at
// nsPath: the socket is made on a thread that joined it, and keeps it.
func listenInNetNS(nsPath string) (net.Listener, error) {
	type result struct {
		l   net.Listener
		err error
	}
	ch := make(chan result, 1)
	go func() {
		runtime.LockOSThread()
		orig, err := os.Open("/proc/thread-self/ns/net")
		if err != nil {
			ch <- result{nil, err}
			return
		}
		defer orig.Close()
		ns, err := os.Open(nsPath)
		if err != nil {
			ch <- result{nil, err}
			return
		}
		defer ns.Close()
		if err := unix.Setns(int(ns.Fd()), unix.CLONE_NEWNET); err != nil {
			ch <- result{nil, fmt.Errorf("setns %s: %w", nsPath, err)}
			return
		}
		l, err := net.Listen("tcp", "127.0.0.1:0")
		// Unlocked only back in its own namespace; otherwise the thread
		// dies with the goroutine.
		if unix.Setns(int(orig.Fd()), unix.CLONE_NEWNET) == nil {
			runtime.UnlockOSThread()
		}
		ch <- result{l, err}
	}()
	r := <-ch
	return r.l, r.err
}

// fileSum is the hex sha256 of the file at path.
func fileSum(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// pathWithoutK3s is $PATH without the directories that hold a k3s, so that
// the quick start finds none.
func pathWithoutK3s() string {
	var keep []string
	for _, d := range filepath.SplitList(os.Getenv("PATH")) {
		if _, err := os.Stat(filepath.Join(d, "k3s")); err != nil {
			keep = append(keep, d)
		}
	}
	return strings.Join(keep, string(os.PathListSeparator))
}
