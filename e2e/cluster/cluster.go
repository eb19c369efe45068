package cluster

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/clientcmd"
	toolswatch "k8s.io/client-go/tools/watch"

	"github.com/nodeboot/nodeboot/e2e/sandbox"
)

// TB is what the harness needs of a test. A *testing.T has it (any
// testing.TB does); so does the runnable example's stand-in for one
// (e2e/node_example_test.go: an Example gets no *testing.T).
type TB interface {
	Helper()
	Name() string
	Logf(format string, args ...any)
	Errorf(format string, args ...any)
	Fatal(args ...any)
	Fatalf(format string, args ...any)
	Skip(args ...any)
	Failed() bool
	Cleanup(func())
}

// Cluster is one test's control plane, containerd and kubelet.
type Cluster struct {
	t TB

	// Name is nodeboot-e2e-<rand>: the network namespace, the node, the
	// cgroup root (/Name) and the directory (/tmp/Name).
	Name       string
	Dir        string
	NetNS      string // /run/netns/Name
	CgroupRoot string // /Name
	// KubeletCgroupRoot is kubelet's cgroupRoot: CgroupRoot unless changed
	// before StartKubelet. Under nodeboot the cgroup tree is emulated and
	// private, so the tests use "/" there, as k3s does.
	KubeletCgroupRoot string
	BinDir            string
	Kubeconfig        string // admin
	Client            kubernetes.Interface
	// HostSysctls are the host values of KubeletSysctls before New.
	HostSysctls map[string]string

	pki      *pki
	procs    []*Proc
	cgroupsB map[string]bool // top-level cgroup dirs before the test

	// The LAN of a cluster of several nodes (nodes.go).
	lanUp      bool
	nodes      int
	extraNetNS []string // the switch and the agents' namespaces
}

// Options of New.
type Options struct {
	// BinDir holds kube-apiserver and kubelet; "" means $E2E_BIN or ./bin.
	BinDir string
	// NoControlPlane starts no etcd or kube-apiserver (k3s brings its own);
	// call UseKubeconfig once one exists.
	NoControlPlane bool
}

// Require checks that the test can run here: root, and every binary. It
// skips when not root and fails (naming the fix) when a binary is missing.
func Require(t TB, binDir string) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("e2e tests need root (network namespaces, mounts, cgroups)")
	}
	var missing []string
	for _, b := range []string{"etcd", "containerd", "runc", "ip", "nsenter", "unshare"} {
		if _, err := exec.LookPath(b); err != nil {
			missing = append(missing, b)
		}
	}
	for _, b := range []string{"kube-apiserver", "kubelet"} {
		if _, err := os.Stat(filepath.Join(binDir, b)); err != nil {
			missing = append(missing, filepath.Join(binDir, b))
		}
	}
	if _, err := os.Stat("/usr/lib/cni/bridge"); err != nil {
		missing = append(missing, "/usr/lib/cni/bridge")
	}
	if len(missing) > 0 {
		t.Fatalf("missing %s: run `make e2e-deps` first", strings.Join(missing, ", "))
	}
}

// DefaultBinDir is $E2E_BIN, or bin below the working directory.
func DefaultBinDir() string {
	if d := os.Getenv("E2E_BIN"); d != "" {
		return d
	}
	d, _ := filepath.Abs("bin")
	return d
}

// New starts etcd and kube-apiserver in a new network namespace and
// returns once the apiserver is ready. Cleanup is registered with t.
func New(t TB, opts Options) *Cluster {
	t.Helper()
	bin := opts.BinDir
	if bin == "" {
		bin = DefaultBinDir()
	}
	Require(t, bin)
	var rb [3]byte
	_, _ = rand.Read(rb[:])
	name := "nodeboot-e2e-" + hex.EncodeToString(rb[:])
	sys, err := ReadSysctls()
	if err != nil {
		t.Fatalf("read host sysctls: %v", err)
	}
	c := &Cluster{
		t: t, Name: name, Dir: filepath.Join(os.TempDir(), name), NetNS: "/run/netns/" + name,
		CgroupRoot: "/" + name, KubeletCgroupRoot: "/" + name, BinDir: bin, HostSysctls: sys, cgroupsB: topCgroups(),
	}
	t.Cleanup(c.cleanup)
	if err := os.Mkdir(c.Dir, 0o700); err != nil {
		t.Fatal(err)
	}
	for _, d := range []string{"logs", "etcd", "containerd", "cni/net.d", "cni/ipam", "kubelet"} {
		if err := os.MkdirAll(filepath.Join(c.Dir, d), 0o700); err != nil {
			t.Fatal(err)
		}
	}
	if err := createNetNS(name); err != nil {
		t.Fatalf("network namespace: %v", err)
	}
	if err := c.makePKI(); err != nil {
		t.Fatalf("pki: %v", err)
	}
	if opts.NoControlPlane {
		return c
	}
	if err := c.startControlPlane(); err != nil {
		t.Fatalf("control plane: %v", err)
	}
	return c
}

// UseKubeconfig points Kubeconfig and Client at another control plane.
func (c *Cluster) UseKubeconfig(path string) error {
	c.Kubeconfig = path
	cfg, err := c.RESTConfig()
	if err != nil {
		return err
	}
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return err
	}
	c.Client = cs
	return nil
}

func (c *Cluster) path(elem ...string) string {
	return filepath.Join(append([]string{c.Dir}, elem...)...)
}

func (c *Cluster) makePKI() error {
	p, err := newPKI(c.path("pki"))
	if err != nil {
		return err
	}
	c.pki = p
	ips := []net.IP{net.ParseIP(NodeIP), net.ParseIP("127.0.0.1"), net.ParseIP("10.96.0.1")}
	dns := []string{"localhost", "kubernetes", "kubernetes.default", "kubernetes.default.svc", "kubernetes.default.svc.cluster.local"}
	steps := []error{
		p.issue("apiserver", "kube-apiserver", nil, ips, dns),
		p.issue("admin", "nodeboot-e2e-admin", []string{"system:masters"}, nil, nil),
		p.issue("apiserver-kubelet-client", "kube-apiserver-kubelet-client", []string{"system:masters"}, nil, nil),
		p.issue("kubelet", "system:node:"+c.Name, []string{"system:nodes"}, nil, nil),
		p.serviceAccountKey(),
	}
	if err := errors.Join(steps...); err != nil {
		return err
	}
	server := "https://" + NodeIP + ":6443"
	c.Kubeconfig = c.path("admin.kubeconfig")
	if err := p.kubeconfig(c.Kubeconfig, server, "admin"); err != nil {
		return err
	}
	return p.kubeconfig(c.path("kubelet.kubeconfig"), server, "kubelet")
}

// InNetNS returns a command that runs argv natively in the namespace.
func (c *Cluster) InNetNS(argv ...string) *exec.Cmd {
	cmd := exec.Command("nsenter", append([]string{"--net=" + c.NetNS, "--"}, argv...)...)
	cmd.Env = os.Environ()
	return cmd
}

// Start starts cmd as component name, logging to logs/name.log, and stops
// it at cleanup.
func (c *Cluster) Start(name string, cmd *exec.Cmd) (*Proc, error) {
	p, err := startProc(name, cmd, c.path("logs", name+".log"))
	if err != nil {
		return nil, err
	}
	c.procs = append(c.procs, p)
	return p, nil
}

func (c *Cluster) startControlPlane() error {
	etcd := c.InNetNS("etcd",
		"--name=e2e", "--data-dir="+c.path("etcd"),
		"--listen-client-urls=http://127.0.0.1:2379", "--advertise-client-urls=http://127.0.0.1:2379",
		"--listen-peer-urls=http://127.0.0.1:2380", "--initial-advertise-peer-urls=http://127.0.0.1:2380",
		"--initial-cluster=e2e=http://127.0.0.1:2380", "--listen-metrics-urls=",
	)
	if runtime.GOARCH == "arm64" {
		etcd.Env = append(etcd.Env, "ETCD_UNSUPPORTED_ARCH=arm64") // etcd 3.4 wants this on arm64
	}
	if _, err := c.Start("etcd", etcd); err != nil {
		return err
	}
	pk := c.pki.path
	api, err := c.Start("kube-apiserver", c.InNetNS(filepath.Join(c.BinDir, "kube-apiserver"),
		"--etcd-servers=http://127.0.0.1:2379",
		"--bind-address="+NodeIP, "--advertise-address="+NodeIP, "--secure-port=6443",
		"--tls-cert-file="+pk("apiserver.crt"), "--tls-private-key-file="+pk("apiserver.key"),
		"--client-ca-file="+pk("ca.crt"),
		"--kubelet-client-certificate="+pk("apiserver-kubelet-client.crt"),
		"--kubelet-client-key="+pk("apiserver-kubelet-client.key"),
		"--kubelet-certificate-authority=",
		// The node's InternalIP, never its name: a name would be looked
		// up in DNS, which the namespace has not (logs and exec go to
		// the kubelet).
		"--kubelet-preferred-address-types=InternalIP",
		"--service-account-key-file="+pk("sa.pub"),
		"--service-account-signing-key-file="+pk("sa.key"),
		"--service-account-issuer=https://kubernetes.default.svc.cluster.local",
		"--authorization-mode=Node,RBAC",
		"--enable-admission-plugins=NodeRestriction",
		"--anonymous-auth=false",
		"--allow-privileged=true",
		"--service-cluster-ip-range=10.96.0.0/16",
		"--profiling=false",
		"--v=1",
	))
	if err != nil {
		return err
	}
	if err := c.UseKubeconfig(c.Kubeconfig); err != nil {
		return err
	}
	cs := c.Client
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var last error
	for {
		res := cs.Discovery().RESTClient().Get().AbsPath("/readyz").Do(ctx)
		if last = res.Error(); last == nil {
			return nil
		}
		select {
		case <-api.Exited():
			return fmt.Errorf("kube-apiserver exited: %v\n%s", api.Err(), api.Tail(30))
		case <-ctx.Done():
			return fmt.Errorf("kube-apiserver not ready after 2m: %v", last)
		case <-time.After(500 * time.Millisecond):
		}
	}
}

// RESTConfig is the admin client config; it dials into the namespace and
// ignores proxy variables.
func (c *Cluster) RESTConfig() (*rest.Config, error) {
	cfg, err := clientcmd.BuildConfigFromFlags("", c.Kubeconfig)
	if err != nil {
		return nil, err
	}
	cfg.Dial = netnsDialer(c.NetNS)
	cfg.Proxy = func(*http.Request) (*url.URL, error) { return nil, nil }
	cfg.QPS, cfg.Burst = 50, 100
	return cfg, nil
}

// StartContainerd writes a private containerd config (root, state, socket,
// CNI config) and starts containerd natively in the namespace. It returns
// once the socket exists.
func (c *Cluster) StartContainerd() (*Proc, error) {
	return c.startContainerd("containerd", c.Dir, c.NetNS)
}

// ContainerdConfig is what a test may change in the private containerd
// config.
type ContainerdConfig struct {
	// SandboxImage is CRI's sandbox_image; "" is registry.k8s.io/pause:3.10.
	SandboxImage string
	// Mirror, when set (host:port), is the registry mirror of every host
	// ("*"): a test that must pull nothing points it at a trap.
	Mirror string
	// RuncRoot, when set, is runc's state directory (its --root); ""
	// is runc's default below /run/containerd, which a containerd run
	// natively shares with the host's own.
	RuncRoot string
	// RestrictOOMScoreAdj keeps the containers' oom_score_adj at or above
	// containerd's own (CRI's restrict_oom_score_adj): a native runc
	// cannot lower it without CAP_SYS_RESOURCE, which a host that is
	// itself a container may lack (the sandbox's -998 then fails runc
	// create with "can't get final child's PID from pipe").
	RestrictOOMScoreAdj bool
}

// WriteContainerdConfig writes the private containerd config (root, state,
// socket below Dir/containerd, CNI config below Dir/cni) and returns the
// config file's path, for a test that starts containerd itself (under
// nodeboot, say).
func (c *Cluster) WriteContainerdConfig(cc ContainerdConfig) (string, error) {
	return writeContainerdConfig(c.Dir, cc)
}

// startContainerd starts a containerd as component name, with its files
// below dir (containerd/, cni/), in the network namespace netns.
func (c *Cluster) startContainerd(name, dir, netns string) (*Proc, error) {
	cfg, err := writeContainerdConfig(dir, ContainerdConfig{})
	if err != nil {
		return nil, err
	}
	cmd := exec.Command("nsenter", "--net="+netns, "--", "containerd", "--config", cfg)
	cmd.Env = os.Environ()
	proc, err := c.Start(name, cmd)
	if err != nil {
		return nil, err
	}
	sock := filepath.Join(dir, "containerd", "containerd.sock")
	deadline := time.Now().Add(60 * time.Second)
	for {
		if _, err := os.Stat(sock); err == nil {
			return proc, nil
		}
		if !proc.Running() || time.Now().After(deadline) {
			return proc, fmt.Errorf("containerd socket %s not there (running %v)\n%s", sock, proc.Running(), proc.Tail(30))
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// writeContainerdConfig writes containerd's and the CNI config below dir
// and returns containerd's config file.
func writeContainerdConfig(dir string, cc ContainerdConfig) (string, error) {
	p := func(elem ...string) string { return filepath.Join(append([]string{dir}, elem...)...) }
	if cc.SandboxImage == "" {
		cc.SandboxImage = "registry.k8s.io/pause:3.10"
	}
	mirror := ""
	if cc.Mirror != "" {
		mirror = fmt.Sprintf(`  [plugins."io.containerd.grpc.v1.cri".registry.mirrors."*"]
    endpoint = ["http://%s"]
`, cc.Mirror)
	}
	runcOpts := ""
	if cc.RuncRoot != "" {
		runcOpts = fmt.Sprintf(`    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
      Root = %q
`, cc.RuncRoot)
	}
	for _, d := range []string{"containerd", "cni/net.d", "cni/ipam"} {
		if err := os.MkdirAll(p(d), 0o700); err != nil {
			return "", err
		}
	}
	cni := fmt.Sprintf(`{
  "cniVersion": "0.4.0",
  "name": "e2e",
  "plugins": [{
    "type": "bridge",
    "bridge": "e2e0",
    "isGateway": true,
    "ipMasq": false,
    "ipam": {"type": "host-local", "ranges": [[{"subnet": "10.251.0.0/24"}]], "dataDir": %q}
  }]
}
`, p("cni", "ipam"))
	if err := os.WriteFile(p("cni", "net.d", "10-e2e.conflist"), []byte(cni), 0o644); err != nil {
		return "", err
	}
	cfg := fmt.Sprintf(`version = 2
root = "%[1]s/root"
state = "%[1]s/state"
disabled_plugins = ["io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.devmapper", "io.containerd.snapshotter.v1.aufs"]

[grpc]
  address = "%[1]s/containerd.sock"

[debug]
  address = ""

[metrics]
  address = ""

[plugins."io.containerd.internal.v1.opt"]
  path = "%[1]s/opt"

[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = %[3]q
  stream_server_address = "127.0.0.1"
  restrict_oom_score_adj = %[6]t
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "%[2]s"
  [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
    runtime_type = "io.containerd.runc.v2"
%[5]s%[4]s`, p("containerd"), p("cni", "net.d"), cc.SandboxImage, mirror, runcOpts, cc.RestrictOOMScoreAdj)
	cfgPath := p("containerd", "config.toml")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o644); err != nil {
		return "", fmt.Errorf("containerd config: %w", err)
	}
	return cfgPath, nil
}

// ContainerdSocket is the private containerd socket.
func (c *Cluster) ContainerdSocket() string { return c.path("containerd", "containerd.sock") }

// KubeletRoot is kubelet's --root-dir.
func (c *Cluster) KubeletRoot() string { return c.path("kubelet") }

// KubeletArgv writes the KubeletConfiguration and returns kubelet's argv.
func (c *Cluster) KubeletArgv() ([]string, error) {
	return c.kubeletArgv(kubeletSpec{
		name: c.Name, ip: NodeIP, dir: c.Dir, cgroupRoot: c.KubeletCgroupRoot,
		kubeconfig: c.path("kubelet.kubeconfig"), containerd: c.ContainerdSocket(),
	})
}

// kubeletSpec is what differs between the kubelets of one cluster.
type kubeletSpec struct {
	name, ip   string
	dir        string // kubelet/, kubelet-pki/, kubelet-config.yaml, resolv.conf go here
	cgroupRoot string
	kubeconfig string
	containerd string // socket
}

func (c *Cluster) kubeletArgv(k kubeletSpec) ([]string, error) {
	p := func(elem ...string) string { return filepath.Join(append([]string{k.dir}, elem...)...) }
	if err := os.MkdirAll(p("kubelet"), 0o700); err != nil {
		return nil, err
	}
	if err := os.WriteFile(p("resolv.conf"), []byte("nameserver 127.0.0.1\n"), 0o644); err != nil {
		return nil, err
	}
	// failCgroupV1: false because hybrid hosts (v1 controllers) would make
	// kubelet 1.35+ refuse to start.
	cfg := fmt.Sprintf(`apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
failCgroupV1: false
cgroupDriver: cgroupfs
cgroupRoot: %s
cgroupsPerQOS: true
containerRuntimeEndpoint: unix://%s
address: %s
port: 10250
readOnlyPort: 0
healthzBindAddress: 127.0.0.1
healthzPort: 10248
authentication:
  anonymous:
    enabled: false
  webhook:
    enabled: false
  x509:
    clientCAFile: %s
authorization:
  mode: AlwaysAllow
failSwapOn: false
resolvConf: %s
registerNode: true
serializeImagePulls: false
evictionHard:
  memory.available: "1Mi"
  nodefs.available: "1%%"
  nodefs.inodesFree: "1%%"
  imagefs.available: "1%%"
`, k.cgroupRoot, k.containerd, k.ip, c.pki.path("ca.crt"), p("resolv.conf"))
	if err := os.WriteFile(p("kubelet-config.yaml"), []byte(cfg), 0o644); err != nil {
		return nil, err
	}
	return []string{
		filepath.Join(c.BinDir, "kubelet"),
		"--config=" + p("kubelet-config.yaml"),
		"--kubeconfig=" + k.kubeconfig,
		"--root-dir=" + p("kubelet"),
		"--cert-dir=" + p("kubelet-pki"),
		"--hostname-override=" + k.name,
		"--node-ip=" + k.ip,
		"--v=2",
	}, nil
}

// Wrap turns kubelet's argv into the command that runs it.
type Wrap func(argv []string) (*exec.Cmd, error)

// StartKubelet starts kubelet through wrap, or natively in the namespace
// when wrap is nil. The private cgroup root is created first when kubelet
// uses it.
func (c *Cluster) StartKubelet(name string, wrap Wrap) (*Proc, error) {
	if c.KubeletCgroupRoot == c.CgroupRoot {
		if err := createCgroupRoot(c.CgroupRoot); err != nil {
			return nil, err
		}
	}
	argv, err := c.KubeletArgv()
	if err != nil {
		return nil, err
	}
	var cmd *exec.Cmd
	if wrap == nil {
		cmd = c.InNetNS(argv...)
	} else if cmd, err = wrap(argv); err != nil {
		return nil, err
	}
	return c.Start(name, cmd)
}

// nodeReady reports whether the Node's Ready condition is True.
func nodeReady(n *corev1.Node) bool {
	for _, cond := range n.Status.Conditions {
		if cond.Type == corev1.NodeReady {
			return cond.Status == corev1.ConditionTrue
		}
	}
	return false
}

func (c *Cluster) nodeLW() *cache.ListWatch {
	return cache.NewListWatchFromClient(c.Client.CoreV1().RESTClient(), "nodes", "",
		fields.OneTermEqualSelector("metadata.name", c.Name))
}

// WaitReady watches the Node until it is Ready, kubelet exits or timeout
// passes, and returns the time from kubelet's start.
func (c *Cluster) WaitReady(kubelet *Proc, timeout time.Duration) (time.Duration, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	go func() {
		select {
		case <-kubelet.Exited():
			cancel()
		case <-ctx.Done():
		}
	}()
	_, err := toolswatch.UntilWithSync(ctx, c.nodeLW(), &corev1.Node{}, nil, func(ev watch.Event) (bool, error) {
		n, ok := ev.Object.(*corev1.Node)
		return ok && ev.Type != watch.Deleted && nodeReady(n), nil
	})
	d := time.Since(kubelet.Started)
	if err != nil {
		if !kubelet.Running() {
			return d, fmt.Errorf("kubelet exited before the node was Ready: %v", kubelet.Err())
		}
		return d, fmt.Errorf("node %s not Ready after %s: %w", c.Name, timeout, err)
	}
	return d, nil
}

// StayReady watches the Node for d and fails as soon as it is not Ready or
// kubelet exits.
func (c *Cluster) StayReady(kubelet *Proc, d time.Duration) error {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	exited := make(chan struct{})
	go func() {
		select {
		case <-kubelet.Exited():
			close(exited)
			cancel()
		case <-ctx.Done():
		}
	}()
	var notReady error
	_, err := toolswatch.UntilWithSync(ctx, c.nodeLW(), &corev1.Node{}, nil, func(ev watch.Event) (bool, error) {
		n, ok := ev.Object.(*corev1.Node)
		if !ok || ev.Type == watch.Deleted || !nodeReady(n) {
			notReady = fmt.Errorf("node %s not Ready (%s) after %s", c.Name, ev.Type, time.Since(kubelet.Started).Round(time.Second))
			return true, nil
		}
		return false, nil
	})
	select {
	case <-exited:
		return fmt.Errorf("kubelet exited: %v", kubelet.Err())
	default:
	}
	if notReady != nil {
		return notReady
	}
	if err != nil && ctx.Err() == nil {
		return err
	}
	return nil
}

// topCgroups lists the top-level directories of every cgroup hierarchy.
func topCgroups() map[string]bool {
	m := map[string]bool{}
	hs, _ := cgroupHierarchies()
	for _, h := range hs {
		ents, _ := os.ReadDir(h)
		for _, e := range ents {
			if e.IsDir() {
				m[filepath.Join(h, e.Name())] = true
			}
		}
	}
	return m
}

func (c *Cluster) cleanup() {
	t := c.t
	if t.Failed() || os.Getenv("E2E_VERBOSE") != "" {
		for _, p := range c.procs {
			t.Logf("===== %s (pid %d): last 150 lines of %s =====\n%s", p.Name, p.PID(), p.LogPath, p.Tail(150))
		}
	}
	if d := os.Getenv("E2E_LOG_DIR"); d != "" {
		dst := filepath.Join(d, t.Name())
		if err := os.MkdirAll(dst, 0o755); err == nil {
			for _, p := range c.procs {
				if b, err := os.ReadFile(p.LogPath); err == nil {
					_ = os.WriteFile(filepath.Join(dst, p.Name+".log"), b, 0o644)
				}
			}
		}
	}
	for i := len(c.procs) - 1; i >= 0; i-- {
		grace := 10 * time.Second
		if err := c.procs[i].Stop(grace); err != nil {
			t.Errorf("cleanup: %v", err)
		}
	}
	if err := sandbox.UnmountUnder(c.Dir); err != nil {
		t.Errorf("cleanup: %v", err)
	}
	if err := removeCgroupRoot(c.CgroupRoot); err != nil {
		t.Errorf("cleanup: %v", err)
	}
	for d := range topCgroups() {
		if !c.cgroupsB[d] {
			t.Errorf("cleanup: cgroup %s appeared during the test and is not ours; left alone", d)
		}
	}
	if changed, err := restoreSysctls(c.HostSysctls); err != nil {
		t.Errorf("cleanup: %v", err)
	} else if len(changed) > 0 {
		t.Logf("cleanup: restored host sysctls changed during the test: %s", strings.Join(changed, ", "))
	}
	for _, ns := range append(c.extraNetNS, c.Name) {
		if err := deleteNetNS(ns); err != nil {
			t.Errorf("cleanup: %v", err)
		}
	}
	if mps, _ := sandbox.MountPoints(c.Dir); len(mps) == 0 {
		if err := os.RemoveAll(c.Dir); err != nil {
			t.Errorf("cleanup: %v", err)
		}
	} else {
		t.Errorf("cleanup: mounts still under %s, not removing it: %v", c.Dir, mps)
	}
}
