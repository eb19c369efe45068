package e2e

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nodeboot/nodeboot/e2e/cluster"
	"github.com/nodeboot/nodeboot/e2e/internal/launch"
	"github.com/nodeboot/nodeboot/e2e/sandbox"
)

// checkHostSysctls fails when the host values differ from c's record.
func checkHostSysctls(t *testing.T, c *cluster.Cluster, when string) {
	t.Helper()
	now, err := cluster.ReadSysctls()
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range c.HostSysctls {
		if now[k] != v {
			t.Errorf("%s: host /proc/sys/%s = %s, was %s: kubelet wrote the host's sysctl", when, k, now[k], v)
		}
	}
}

// measure fills r with kubelet's numbers over window, checking the node
// stays Ready.
func measure(t *testing.T, c *cluster.Cluster, kubelet *cluster.Proc, kubeletPID, tracerPID int, window time.Duration, r *run) {
	t.Helper()
	k0, err := cluster.ProcUsage(kubeletPID)
	if err != nil {
		t.Fatalf("kubelet usage: %v", err)
	}
	var t0 cluster.Usage
	if tracerPID > 0 {
		t0, _ = cluster.ProcUsage(tracerPID)
	}
	if err := c.StayReady(kubelet, window); err != nil {
		t.Fatalf("after Ready: %v", err)
	}
	k1, err := cluster.ProcUsage(kubeletPID)
	if err != nil {
		t.Fatalf("kubelet usage: %v", err)
	}
	r.window, r.kubeletCPU, r.kubeletHWM = window, k1.CPU-k0.CPU, k1.HWM
	if tracerPID > 0 {
		t1, _ := cluster.ProcUsage(tracerPID)
		r.tracerCPU, r.tracerRSS = t1.CPU-t0.CPU, t1.HWM
	}
	t.Logf("Ready for %s more: kubelet CPU %s, kubelet VmHWM %s", window, r.kubeletCPU, mib(r.kubeletHWM))
}

// TestBaseline runs kubelet natively and checks the harness itself: the
// node turns Ready, kubelet rewrites the host sysctls (and cleanup puts
// them back), kubelet's cgroups land below the private cgroup root.
func TestBaseline(t *testing.T) {
	var c *cluster.Cluster
	// Registered first, so it runs after the cluster's own cleanup.
	t.Cleanup(func() {
		if c == nil {
			return
		}
		checkHostSysctls(t, c, "after cleanup")
		if _, err := os.Stat("/run/netns/" + c.Name); err == nil {
			t.Errorf("after cleanup: network namespace %s left", c.Name)
		}
		hs, _ := filepath.Glob("/sys/fs/cgroup/*" + c.CgroupRoot)
		if len(hs) > 0 {
			t.Errorf("after cleanup: cgroups left: %v", hs)
		}
	})
	c = cluster.New(t, cluster.Options{})
	if _, err := c.StartContainerd(); err != nil {
		t.Fatal(err)
	}
	kubelet, err := c.StartKubelet("kubelet", nil)
	if err != nil {
		t.Fatal(err)
	}
	d, err := c.WaitReady(kubelet, 3*time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("native: node %s Ready %s after kubelet started", c.Name, d.Round(time.Millisecond))

	// The harness must be what it claims: kubelet ran on the host's
	// cgroups, below our cgroup root, and wrote the host's sysctls.
	hs, _ := filepath.Glob("/sys/fs/cgroup/*" + c.CgroupRoot + "/kubepods")
	if len(hs) == 0 {
		t.Errorf("no kubepods cgroup below %s: is the cgroup root honoured?", c.CgroupRoot)
	}
	now, _ := cluster.ReadSysctls()
	if c.HostSysctls["kernel/panic"] != "10" && now["kernel/panic"] != "10" {
		t.Errorf("kernel/panic = %s while kubelet runs natively; want 10 (kubelet's setupKernelTunables)", now["kernel/panic"])
	}
	node, err := c.Client.CoreV1().Nodes().Get(t.Context(), c.Name, metav1GetOptions)
	if err != nil {
		t.Fatal(err)
	}
	if got := nodeInternalIP(node); got != cluster.NodeIP {
		t.Errorf("node InternalIP = %q, want %s", got, cluster.NodeIP)
	}

	r := &run{ready: d}
	measure(t, c, kubelet, kubelet.PID(), 0, cpuWindow(t), r)
	bench.Lock()
	bench.native = r
	bench.Unlock()
}

// TestSandbox runs the same kubelet natively in the simulated sandbox and
// checks that it fails the way it fails in gVisor, one missing interface
// at a time.
func TestSandbox(t *testing.T) {
	c := cluster.New(t, cluster.Options{})
	if _, err := c.StartContainerd(); err != nil {
		t.Fatal(err)
	}
	tunables := `(vm/overcommit_memory|vm/panic_on_oom|kernel/panic|kernel/panic_on_oops|kernel/keys/root_maxkeys|kernel/keys/root_maxbytes)`
	cgroups := `(failed to get mounted cgroup subsystems|failed to find cgroup mounts)`
	for _, tc := range []struct {
		name string
		spec sandbox.Spec
		want string
	}{
		{"proc-sys", sandbox.Spec{ProcSys: true}, `Failed to start ContainerManager.*` + tunables},
		{"cgroups", sandbox.Spec{Cgroups: true}, cgroups},
		{"dev-kmsg", sandbox.Spec{Dev: true}, `/dev/kmsg`},
		{"gvisor", sandbox.GVisor, cgroups},
	} {
		t.Run(tc.name, func(t *testing.T) {
			kubelet, err := c.StartKubelet("kubelet-"+tc.name, func(argv []string) (*exec.Cmd, error) {
				return sandbox.Command(sandbox.Options{NetNS: c.NetNS, Spec: tc.spec}, argv...)
			})
			if err != nil {
				t.Fatal(err)
			}
			const limit = 60 * time.Second
			select {
			case <-kubelet.Exited():
			case <-time.After(limit):
				t.Fatalf("kubelet still running after %s in the %s sandbox\n%s", limit, tc.name, kubelet.Tail(40))
			}
			took := time.Since(kubelet.Started)
			log := kubelet.Log()
			if strings.Contains(log, "sandbox: ") && kubelet.Err() != nil && strings.Contains(kubelet.Err().Error(), "125") {
				t.Fatalf("sandbox setup failed:\n%s", kubelet.Tail(20))
			}
			re := regexp.MustCompile(tc.want)
			if m := re.FindString(log); m == "" {
				t.Errorf("kubelet log lacks %q\n%s", tc.want, kubelet.Tail(40))
			} else {
				t.Logf("kubelet exited after %s (%v) with: %s", took.Round(10*time.Millisecond), kubelet.Err(), firstLine(log, re))
			}
			checkHostSysctls(t, c, tc.name)
		})
	}
}

func firstLine(log string, re *regexp.Regexp) string {
	for _, l := range strings.Split(log, "\n") {
		if re.MatchString(l) {
			if len(l) > 400 {
				l = l[:400] + "..."
			}
			return l
		}
	}
	return ""
}

// buildLauncher builds e2e/cmd/launch into dir.
func buildLauncher(t *testing.T, dir string) string {
	t.Helper()
	out := filepath.Join(dir, "nodeboot-launch")
	cmd := exec.Command("go", "build", "-o", out, "./cmd/launch")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build launcher: %v\n%s", err, b)
	}
	return out
}

// descendant finds the first process below pid whose command name is comm.
func descendant(pid int, comm string) int {
	ents, _ := os.ReadDir("/proc")
	parent := map[int]int{}
	name := map[int]string{}
	for _, e := range ents {
		p, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue
		}
		s := string(b)
		i, j := strings.IndexByte(s, '('), strings.LastIndexByte(s, ')')
		if i < 0 || j < i {
			continue
		}
		f := strings.Fields(s[j+1:])
		if len(f) < 2 {
			continue
		}
		pp, _ := strconv.Atoi(f[1])
		parent[p], name[p] = pp, s[i+1:j]
	}
	for p, n := range name {
		if n != comm {
			continue
		}
		for q := parent[p]; q > 1; q = parent[q] {
			if q == pid {
				return p
			}
		}
	}
	return 0
}

// TestNodeboot runs the same kubelet in the same sandbox through nodeboot's
// launch code with the built-in k3s profile: the node must turn Ready and
// stay Ready (3 minutes, E2E_SOAK longer), the host sysctls must not move,
// and the interceptor must have rewritten paths.
func TestNodeboot(t *testing.T) {
	c := cluster.New(t, cluster.Options{})
	launcher := buildLauncher(t, c.Dir)
	if _, err := c.StartContainerd(); err != nil {
		t.Fatal(err)
	}
	// The emulated cgroup tree is private to nodeboot: kubelet uses its
	// root, and any cgroup it made on the host would fail the cleanup.
	c.KubeletCgroupRoot = "/"
	root := filepath.Join(c.Dir, "nodeboot")
	stats := filepath.Join(c.Dir, "nodeboot-stats.json")
	kubelet, err := c.StartKubelet("kubelet-nodeboot", func(argv []string) (*exec.Cmd, error) {
		return sandbox.Command(sandbox.Options{NetNS: c.NetNS, Spec: sandbox.GVisor},
			append([]string{launcher, "--root", root, "--stats", stats, "--"}, argv...)...)
	})
	if err != nil {
		t.Fatal(err)
	}
	d, err := c.WaitReady(kubelet, 5*time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("nodeboot: node %s Ready %s after start", c.Name, d.Round(time.Millisecond))
	checkHostSysctls(t, c, "at Ready")

	kpid := descendant(kubelet.PID(), "kubelet")
	if kpid == 0 {
		t.Fatalf("no kubelet process below the launcher (pid %d)", kubelet.PID())
	}
	soak := envDuration(t, "E2E_SOAK", cpuWindow(t))
	r := &run{ready: d}
	measure(t, c, kubelet, kpid, kubelet.PID(), soak, r)
	checkHostSysctls(t, c, "after the soak")

	rep, err := launch.ReadReport(stats)
	if err != nil {
		t.Fatalf("interceptor counters: %v", err)
	}
	if rep.Rewrites == 0 {
		t.Errorf("interceptor counters show no rewrites: %+v", rep.Stats)
	}
	t.Logf("interceptor: %d rewrites, %d stops, mode %s; nodeboot VmHWM %s", rep.Rewrites, rep.Stats.Stops, rep.Stats.Mode, mib(r.tracerRSS))
	if r.tracerRSS > 30<<20 {
		t.Logf("nodeboot VmHWM %s is over the 30 MiB target", mib(r.tracerRSS))
	}
	bench.Lock()
	bench.nodeboot = r
	bench.Unlock()
}
