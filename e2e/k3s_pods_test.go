package e2e

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/nodeboot/nodeboot/e2e/cluster"
	"github.com/nodeboot/nodeboot/images"
)

// TestK3sPods runs a real k3s through `nodeboot up --detach --wait
// --smoke` in the sandbox with no registry: every image comes from an
// archive. It checks that
//
//   - an archive staged with `nodeboot load image-archive` before up is
//     imported at start, and a pod runs from it;
//   - up --smoke --wait returns 0 only after the smoke Job (nodeboot's own
//     smoke image, pull policy Never, nodeboot's pause image as sandbox)
//     completed and its line was read through the API's log endpoint;
//   - an archive loaded while the node runs is imported (k3s's watcher)
//     before load returns, and a pod runs from it;
//   - nothing tried a registry: containerd's only registry is a mirror for
//     every host ("*", with k3s's default endpoints off) on a loopback port
//     of the sandbox's network namespace where the test listens and fails
//     on any connection, and containerd's log has no PullImage.
func TestK3sPods(t *testing.T) {
	k3s := os.Getenv("NODEBOOT_E2E_K3S")
	if k3s == "" {
		t.Skip("NODEBOOT_E2E_K3S not set: point it at a k3s binary to run pods on k3s through `nodeboot up`")
	}
	t0 := time.Now()
	c := cluster.New(t, cluster.Options{NoControlPlane: true})
	u := &upBed{t: t, c: c, dataDir: filepath.Join(c.Dir, "nodeboot-data")}
	u.build()
	t.Cleanup(u.cleanup)
	trap := newRegistryTrap(t, c)
	registries := filepath.Join(c.Dir, "registries.yaml")
	if err := os.WriteFile(registries, []byte(fmt.Sprintf("mirrors:\n  \"*\":\n    endpoint:\n      - http://%s\n", trap.addr)), 0o600); err != nil {
		t.Fatal(err)
	}
	// Two more image pairs from the same binary under other tags: one
	// loaded before up, one while the node runs.
	archive := func(version string) *images.Builtin {
		b, err := images.ForBinary(u.nodeboot, version)
		if err != nil {
			t.Fatal(err)
		}
		if err := b.WriteArchive(filepath.Join(c.Dir, version+".tar")); err != nil {
			t.Fatal(err)
		}
		return b
	}
	before, live := archive("e2e-before"), archive("e2e-live")
	t.Logf("setup (cluster, build, archives): %s", time.Since(t0).Round(time.Millisecond))

	r := u.run(time.Minute, "load", "image-archive", "--data-dir", u.dataDir, filepath.Join(c.Dir, "e2e-before.tar"))
	if r.code != 0 || !strings.Contains(r.stderr, "Staged ") {
		t.Fatalf("load image-archive before up: exit %d\n%s", r.code, r.all())
	}
	t.Logf("load image-archive before up: %s", r.took.Round(time.Millisecond))

	wait := envDuration(t, "E2E_SMOKE_TIMEOUT", 3*time.Minute)
	t1 := time.Now()
	r = u.run(wait+2*time.Minute, "up", "--detach", "--wait", "--smoke", "--timeout", wait.String(),
		"--data-dir", u.dataDir, "--k3s", k3s, "--node-name", c.Name, "--",
		"--node-ip="+cluster.NodeIP, "--bind-address="+cluster.NodeIP,
		"--disable=traefik,servicelb,metrics-server,local-storage,coredns",
		"--private-registry="+registries, "--disable-default-registry-endpoint")
	t.Logf("nodeboot up --detach --wait --smoke: exit %d after %s\n%s", r.code, r.took.Round(time.Millisecond), r.all())
	// Exit 3 (timed out) leaves the node running: what needs no pod is
	// still checked below.
	if r.code != 0 && r.code != 3 {
		t.Fatalf("up --smoke --wait exited %d, want 0", r.code)
	}
	smokeOK := r.code == 0
	if !smokeOK {
		t.Errorf("up --smoke --wait exited %d, want 0: no pod ran; the last sandbox error in k3s's log: %s", r.code, lastMatch(filepath.Join(u.dataDir, "logs", "k3s.log"), "RunPodSandbox from runtime service failed"))
	}
	st := u.status()
	t.Logf("up: %s; phase %s, snapshotter %s, pod network %s, pause image %s", time.Since(t1).Round(time.Millisecond), st.State.Phase, st.State.Snapshotter, st.State.PodNetwork, st.State.PauseImage)
	if !strings.HasPrefix(st.State.PauseImage, images.Registry+"/pause:") {
		t.Errorf("pause image %q, want nodeboot's own", st.State.PauseImage)
	}
	if st.State.Snapshotter == "" {
		t.Error("state.json names no snapshotter")
	}
	// The sandbox's network namespace lets root make veth pairs (the
	// pod-network pods below need them): up's probe must say so.
	if st.State.PodNetwork != "veth" {
		t.Errorf("state.json: podNetwork %q, want veth", st.State.PodNetwork)
	}
	// The archives were imported at start: the staged one, and nodeboot's own.
	k3sLog := filepath.Join(u.dataDir, "logs", "k3s.log")
	for _, ref := range []string{before.Pause, before.Smoke, st.State.PauseImage} {
		if lastMatch(k3sLog, "Imported "+ref) == "" {
			t.Errorf("k3s's log does not say it imported %s", ref)
		}
	}
	if smokeOK {
		smokeLine := images.SmokeLine + c.Name
		events, _ := os.ReadFile(filepath.Join(u.dataDir, "events.jsonl"))
		if !strings.Contains(string(events), smokeLine) {
			t.Errorf("events.jsonl lacks the smoke pod's log line %q", smokeLine)
		}
	}
	if err := c.UseKubeconfig(filepath.Join(u.dataDir, "kubeconfig.yaml")); err != nil {
		t.Fatal(err)
	}
	if smokeOK {
		runImagePod(t, c, "from-before", before.Smoke)
	}

	t2 := time.Now()
	r = u.run(3*time.Minute, "load", "image-archive", "--data-dir", u.dataDir, filepath.Join(c.Dir, "e2e-live.tar"))
	t.Logf("load image-archive while running: exit %d after %s\n%s", r.code, r.took.Round(time.Millisecond), r.all())
	if r.code != 0 || !strings.Contains(r.stderr, "Imported ") {
		t.Fatalf("load image-archive while running: exit %d", r.code)
	}
	if lastMatch(k3sLog, "Imported "+live.Smoke) == "" {
		t.Errorf("k3s's log does not say it imported %s", live.Smoke)
	}
	if smokeOK {
		runImagePod(t, c, "from-live", live.Smoke)
		k3sPodChecks(t, c, u, k3s, live.Smoke)
	}
	t.Logf("load while running (and its pod): %s", time.Since(t2).Round(time.Millisecond))

	// Nothing tried a registry.
	trap.check(t)
	cdLog := filepath.Join(u.dataDir, "k3s", "agent", "containerd", "containerd.log")
	b, err := os.ReadFile(cdLog)
	if err != nil {
		t.Fatalf("containerd's log: %v", err)
	}
	for _, l := range strings.Split(string(b), "\n") {
		if strings.Contains(l, "PullImage") {
			t.Errorf("containerd pulled: %s", l)
		}
	}
	imported := strings.Count(string(b), "ImageCreate")
	t.Logf("containerd's log: %d bytes, %d ImageCreate events, no PullImage", len(b), imported)

	// The trap works: a pull that k3s is asked for (a pre-pull list in its
	// images directory, which it pulls through the CRI, so through the
	// registry configuration) reaches it.
	probe := images.Registry + "/trap-probe:v1"
	list := filepath.Join(u.dataDir, "k3s", "agent", "images", "trap-probe.txt")
	if err := os.WriteFile(list, []byte(probe+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if n, first := trap.wait(time.Minute); n == 0 {
		t.Errorf("the registry trap saw no connection within 1m of asking k3s to pull %s: it proves nothing", probe)
	} else {
		t.Logf("registry trap control: pulling %s reached the trap (%d connections; first request %q)", probe, n, first)
	}
	os.Remove(list)

	r = u.run(2*time.Minute, "down", "--data-dir", u.dataDir)
	if r.code != 0 {
		t.Fatalf("down: exit %d\n%s", r.code, r.all())
	}
	u.down = true
	t.Logf("total: %s", time.Since(t0).Round(time.Millisecond))
}

// runImagePod runs a pod of image (nodeboot's smoke image under another
// tag), never pulled, until it succeeds, and reads its line through the
// API's log endpoint.
func runImagePod(t *testing.T, c *cluster.Cluster, name, image string) {
	t.Helper()
	ctx := t.Context()
	start := time.Now()
	pod := testPod(name, image, nil, podOpts{HostNetwork: true, NameEnv: true})
	if _, err := c.Client.CoreV1().Pods("default").Create(ctx, pod, metav1.CreateOptions{}); err != nil {
		t.Fatalf("create pod %s: %v", name, err)
	}
	deadline := time.Now().Add(2 * time.Minute)
	for {
		p, err := c.Client.CoreV1().Pods("default").Get(ctx, name, metav1.GetOptions{})
		if err == nil && p.Status.Phase == corev1.PodSucceeded {
			break
		}
		if err == nil && p.Status.Phase == corev1.PodFailed || time.Now().After(deadline) {
			t.Fatalf("pod %s (%s): %v %+v", name, image, err, p.Status)
		}
		time.Sleep(500 * time.Millisecond)
	}
	logs, err := c.Client.CoreV1().Pods("default").GetLogs(name, &corev1.PodLogOptions{Container: "c"}).DoRaw(ctx)
	if err != nil {
		t.Fatalf("log of pod %s: %v", name, err)
	}
	if want := images.SmokeLine + name; strings.TrimSpace(string(logs)) != want {
		t.Fatalf("pod %s printed %q, want %q", name, logs, want)
	}
	t.Logf("pod %s from %s: Succeeded and its log read back %s after create", name, image, time.Since(start).Round(time.Millisecond))
}

// registryTrap listens where containerd's only registry mirror points and
// records every connection: the test fails on any.
type registryTrap struct {
	addr  string
	mu    sync.Mutex
	conns []string
}

func newRegistryTrap(t *testing.T, c *cluster.Cluster) *registryTrap {
	t.Helper()
	l, err := cluster.ListenInNetNS(c.NetNS, "tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("registry trap: %v", err)
	}
	tr := &registryTrap{addr: l.Addr().String()}
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			conn, err := l.Accept()
			if err != nil {
				return
			}
			go func(conn net.Conn) {
				defer conn.Close()
				_ = conn.SetReadDeadline(time.Now().Add(2 * time.Second))
				line, _ := bufio.NewReader(conn).ReadString('\n')
				tr.mu.Lock()
				tr.conns = append(tr.conns, strings.TrimSpace(line))
				tr.mu.Unlock()
				// No answer: a 503 would do too, but silence is enough
				// for the pull to fail, and the test fails anyway.
			}(conn)
		}
	}()
	return tr
}

// wait waits up to d for a connection and returns how many there were,
// and the first request line.
func (tr *registryTrap) wait(d time.Duration) (int, string) {
	for deadline := time.Now().Add(d); ; time.Sleep(200 * time.Millisecond) {
		tr.mu.Lock()
		n, first := len(tr.conns), ""
		if n > 0 {
			first = tr.conns[0]
		}
		tr.mu.Unlock()
		if n > 0 || time.Now().After(deadline) {
			return n, first
		}
	}
}

func (tr *registryTrap) check(t *testing.T) {
	t.Helper()
	tr.mu.Lock()
	defer tr.mu.Unlock()
	if len(tr.conns) > 0 {
		t.Errorf("containerd tried a registry %d times; first request: %q", len(tr.conns), tr.conns[0])
		return
	}
	t.Logf("registry trap at %s (the only registry mirror, for every host): no connection", tr.addr)
}

// lastMatch is the last line of file that contains sub ("" when none).
func lastMatch(file, sub string) string {
	b, _ := os.ReadFile(file)
	last := ""
	for _, l := range strings.Split(string(b), "\n") {
		if strings.Contains(l, sub) {
			last = l
		}
	}
	if len(last) > 600 {
		last = last[:600] + "..."
	}
	return last
}
