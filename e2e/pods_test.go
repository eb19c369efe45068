package e2e

import (
	"bytes"
	"context"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv1 "k8s.io/api/autoscaling/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/httpstream"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/remotecommand"

	"github.com/nodeboot/nodeboot/e2e/cluster"
	"github.com/nodeboot/nodeboot/e2e/internal/launch"
	"github.com/nodeboot/nodeboot/e2e/sandbox"
	"github.com/nodeboot/nodeboot/images"
)

// podsSysctl is the safe sysctl the hostNetwork sysctl pod sets: it is kept
// per IPC namespace, so a hostNetwork pod may set it (the net.* safe
// sysctls need a network namespace of the pod's own: the netsysctl pod).
const podsSysctl = "kernel.shm_rmid_forced"

// TestNodebootPods runs pods on the upstream bed with containerd AND
// kubelet under nodeboot, in the simulated gVisor sandbox: one traced tree
// (the launcher runs a shell that starts Debian's containerd, waits for its
// socket and execs the upstream kubelet), so containerd, its shims, runc
// and the containers all see the interceptor's tree. Nodeboot's own images
// are imported with ctr (no registry: containerd's only mirror is a trap
// that fails the test on any connection), the pause image is containerd's
// sandbox_image, and the pods use the host network but one, which is on
// the bridge CNI network in the test's namespace. It checks, in order:
//
//   - a pod of the smoke image runs to completion and its line is read
//     through the API's log endpoint;
//   - exec into a running container returns its output (smoke-cat);
//   - a pod with limits.memory 64Mi reads 67108864 from its memory.max;
//   - pods setting a safe sysctl see it (kernel.shm_rmid_forced in a
//     hostNetwork pod, net.ipv4.ip_unprivileged_port_start in a pod on
//     the pod network), and the host's values are unchanged;
//   - port-forward, as kubectl does it, reads the line a pod on the pod
//     network serves on its loopback (smoke-serve);
//   - a 3-replica Deployment of the pause image turns Available (a
//     kube-controller-manager with only the deployment and replicaset
//     controllers; the pods name the node, as the bed runs no scheduler);
//   - the kubelet's summary API has CPU and working-set figures of each
//     of its pods, and a pod burning CPU (smoke-burn) shows its CPU time
//     grow between two samples;
//   - deleting every pod leaves no traced process but containerd and
//     kubelet, no mount below the test's directory and no pod cgroup in
//     the emulated tree;
//   - nothing tried a registry, and the trap does see a pull when one is
//     asked for.
func TestNodebootPods(t *testing.T) {
	t0 := time.Now()
	c := cluster.New(t, cluster.Options{})
	ctrBin, err := exec.LookPath("ctr")
	if err != nil {
		t.Fatalf("no ctr (Debian's containerd package ships it): %v", err)
	}
	// Only what a Deployment needs; started first, to be up by then.
	if _, err := c.StartControllerManager("deployment", "replicaset"); err != nil {
		t.Fatal(err)
	}
	launcher := buildLauncher(t, c.Dir)
	u := &upBed{t: t, c: c, dataDir: filepath.Join(c.Dir, "nodeboot-data")}
	u.build()
	b, err := images.ForBinary(u.nodeboot, "e2e")
	if err != nil {
		t.Fatal(err)
	}
	archive := filepath.Join(c.Dir, b.ArchiveName())
	if err := b.WriteArchive(archive); err != nil {
		t.Fatal(err)
	}
	hostSysctl, err := os.ReadFile("/proc/sys/" + strings.ReplaceAll(podsSysctl, ".", "/"))
	if err != nil {
		t.Fatal(err)
	}
	trap := newRegistryTrap(t, c)
	cfg, err := c.WriteContainerdConfig(cluster.ContainerdConfig{SandboxImage: b.Pause, Mirror: trap.addr})
	if err != nil {
		t.Fatal(err)
	}
	cdLog := filepath.Join(c.Dir, "logs", "containerd-nodeboot.log")
	t.Cleanup(func() { keepLog(t, cdLog) })
	t.Logf("setup (cluster, builds, archive): %s", time.Since(t0).Round(time.Millisecond))

	root := filepath.Join(c.Dir, "nodeboot-root")
	stats := filepath.Join(c.Dir, "nodeboot-stats.json")
	node := startTracedNode(t, c, launcher, cfg, cdLog, root, stats)
	sock := c.ContainerdSocket()
	ctr := func(args ...string) *exec.Cmd {
		return exec.Command(ctrBin, append([]string{"--address", sock, "--namespace", "k8s.io"}, args...)...)
	}
	t2 := time.Now()
	if out, err := ctr("images", "import", archive).CombinedOutput(); err != nil {
		t.Fatalf("ctr images import into containerd under nodeboot: %v\n%s\n%s", err, out, tail(cdLog, 40))
	}
	t.Logf("ctr images import %s, %s: %s", b.Pause, b.Smoke, time.Since(t2).Round(time.Millisecond))

	d, err := c.WaitReady(node, 3*time.Minute)
	if err != nil {
		t.Fatalf("%v\n%s", err, tail(cdLog, 40))
	}
	t.Logf("node %s Ready %s after start", c.Name, d.Round(time.Millisecond))
	checkHostSysctls(t, c, "at Ready")
	kpid := descendant(node.PID(), "kubelet")
	if kpid == 0 {
		t.Fatalf("no kubelet process below the launcher (pid %d)", node.PID())
	}
	if !slices.Contains(slices.Collect(maps.Values(traced(node.PID()))), "containerd") {
		t.Fatalf("no containerd process traced by the launcher (pid %d)", node.PID())
	}
	mountsBefore := mountsUnder(t, kpid, c.Dir)

	// Pod admission wants the namespace's ServiceAccount, which no
	// controller-manager makes here; the pods mount no token.
	ctx := t.Context()
	if _, err := c.Client.CoreV1().ServiceAccounts("default").Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "default"}}, metav1.CreateOptions{}); err != nil {
		t.Fatalf("service account: %v", err)
	}
	var uids []string
	podUID := func(name string) {
		p, err := c.Client.CoreV1().Pods("default").Get(ctx, name, metav1.GetOptions{})
		if err == nil {
			uids = append(uids, string(p.UID))
		}
	}

	// 1. A pod to completion, its log through the API.
	t8 := time.Now()
	createPod(t, c, testPod("smoke", b.Smoke, nil, bedPod(c.Name)))
	podUID("smoke")
	waitPod(t, c, "smoke", corev1.PodSucceeded, 2*time.Minute)
	if got, want := podLog(t, c, "smoke", 10*time.Second, images.SmokeLine), images.SmokeLine+"smoke"; got != want {
		t.Fatalf("pod smoke logged %q, want %q", got, want)
	}
	t.Logf("pod smoke: Succeeded and its line read through the API %s after create", time.Since(t8).Round(time.Millisecond))

	// 2 and 3. Exec into a running pod with a 64Mi memory limit; its log
	// has memory.max as it read it at start, exec reads it again.
	memMax := "/sys/fs/cgroup/memory.max"
	t3 := time.Now()
	memOpts := bedPod(c.Name)
	memOpts.Limits = corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("64Mi")}
	mem := testPod("mem", b.Smoke, []string{images.BinaryPath, "smoke-cat", "--wait", memMax}, memOpts)
	createPod(t, c, mem)
	podUID("mem")
	waitPod(t, c, "mem", corev1.PodRunning, 2*time.Minute)
	want := memMax + "=67108864"
	if got := podLog(t, c, "mem", 30*time.Second, want); got != want {
		t.Errorf("pod mem (limits.memory 64Mi) logged %q, want %q", got, want)
	}
	t.Logf("pod mem: Running and its memory.max logged %s after create", time.Since(t3).Round(time.Millisecond))
	hostCfg, err := c.HostRESTConfig()
	if err != nil {
		t.Fatal(err)
	}
	t4 := time.Now()
	stdout, stderr, err := execPod(ctx, hostCfg, "default", "mem", "c", images.BinaryPath, "smoke-cat", memMax)
	if err != nil {
		t.Errorf("exec into pod mem: %v (stderr %q)", err, stderr)
	} else if got := strings.TrimSpace(stdout); got != want {
		t.Errorf("exec smoke-cat %s in pod mem printed %q (stderr %q), want %q", memMax, stdout, stderr, want)
	} else {
		t.Logf("exec into pod mem: %q in %s", got, time.Since(t4).Round(time.Millisecond))
	}

	// 4. A safe sysctl, seen in the pod, not on the host.
	t5 := time.Now()
	procSysctl := "/proc/sys/" + strings.ReplaceAll(podsSysctl, ".", "/")
	scOpts := bedPod(c.Name)
	scOpts.Sysctls = []corev1.Sysctl{{Name: podsSysctl, Value: "1"}}
	sc := testPod("sysctl", b.Smoke, []string{images.BinaryPath, "smoke-cat", procSysctl}, scOpts)
	createPod(t, c, sc)
	podUID("sysctl")
	waitPod(t, c, "sysctl", corev1.PodSucceeded, 2*time.Minute)
	if got, want := podLog(t, c, "sysctl", 10*time.Second, procSysctl+"="), procSysctl+"=1"; got != want {
		t.Errorf("pod setting %s=1 read %q, want %q", podsSysctl, got, want)
	} else {
		t.Logf("pod sysctl: %s=1 set and read back in %s", podsSysctl, time.Since(t5).Round(time.Millisecond))
	}
	if now, _ := os.ReadFile(procSysctl); !bytes.Equal(now, hostSysctl) {
		t.Errorf("host %s = %q after the sysctl pod, was %q", procSysctl, now, hostSysctl)
	}

	// 4b. A net.* safe sysctl in a pod of the pod network (bridge CNI),
	// where the pod has a network namespace of its own.
	t9 := time.Now()
	portStart := "/proc/sys/net/ipv4/ip_unprivileged_port_start"
	hostPortStart, err := os.ReadFile(portStart)
	if err != nil {
		t.Fatal(err)
	}
	nsOpts := bedPod(c.Name)
	nsOpts.HostNetwork = false
	nsOpts.Sysctls = []corev1.Sysctl{{Name: "net.ipv4.ip_unprivileged_port_start", Value: "0"}}
	ns := testPod("netsysctl", b.Smoke, []string{images.BinaryPath, "smoke-cat", portStart}, nsOpts)
	createPod(t, c, ns)
	podUID("netsysctl")
	waitPod(t, c, "netsysctl", corev1.PodSucceeded, 2*time.Minute)
	if got, want := podLog(t, c, "netsysctl", 10*time.Second, portStart+"="), portStart+"=0"; got != want {
		t.Errorf("pod-network pod setting net.ipv4.ip_unprivileged_port_start=0 read %q, want %q", got, want)
	} else {
		p, _ := c.Client.CoreV1().Pods("default").Get(ctx, "netsysctl", metav1.GetOptions{})
		t.Logf("pod netsysctl (pod network, IP %s): net.ipv4.ip_unprivileged_port_start=0 set and read back in %s", p.Status.PodIP, time.Since(t9).Round(time.Millisecond))
	}
	if now, _ := os.ReadFile(portStart); !bytes.Equal(now, hostPortStart) {
		t.Errorf("host %s = %q after the netsysctl pod, was %q", portStart, now, hostPortStart)
	}

	// 4c. kubectl port-forward to a pod on the pod network: the runtime
	// dials the pod's loopback from inside its network namespace
	// (containerd 1.6 does it in its own process, under the tracer).
	t10 := time.Now()
	svOpts := bedPod(c.Name)
	svOpts.HostNetwork = false
	sv := testPod("serve", b.Smoke, serveCommand(images.BinaryPath), svOpts)
	createPod(t, c, sv)
	podUID("serve")
	waitPod(t, c, "serve", corev1.PodRunning, 2*time.Minute)
	if got := podLog(t, c, "serve", 30*time.Second, "smoke-serve: listening on "); !strings.HasPrefix(got, "smoke-serve: listening on ") {
		t.Errorf("pod serve logged %q, want its listening line", got)
	} else {
		t.Logf("pod serve: %q %s after create", got, time.Since(t10).Round(time.Millisecond))
		for _, l := range checkPortForward(t, hostCfg, "serve", servePort, images.ServeLine("serve")) {
			t.Logf("port-forward to pod serve:%d, %s", servePort, l)
		}
	}

	// 5. A 3-replica Deployment of the pause image turns Available (its
	// pods bound to the node in the template: the bed runs no scheduler).
	// A pod that burns a tenth of a CPU (CPU time, whatever the load)
	// starts with it, for the live figures of 5b.
	burn := testPod("burn", b.Smoke, []string{images.BinaryPath, "smoke-burn", "--busy", "100ms", "--period", "1s"}, bedPod(c.Name))
	createPod(t, c, burn)
	podUID("burn")
	t6 := time.Now()
	replicas := int32(3)
	labels := map[string]string{"app": "pause"}
	tmpl := testPod("", b.Pause, nil, bedPod(c.Name))
	dep := &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: "pause", Namespace: "default"},
		Spec: appsv1.DeploymentSpec{
			Replicas: &replicas,
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: labels}, Spec: tmpl.Spec},
		},
	}
	dep.Spec.Template.Spec.RestartPolicy = corev1.RestartPolicyAlways
	deps := c.Client.AppsV1().Deployments("default")
	if _, err := deps.Create(ctx, dep, metav1.CreateOptions{}); err != nil {
		t.Fatalf("create deployment: %v", err)
	}
	for deadline := time.Now().Add(2 * time.Minute); ; time.Sleep(300 * time.Millisecond) {
		d, err := deps.Get(ctx, "pause", metav1.GetOptions{})
		if err == nil && d.Status.AvailableReplicas == replicas && deploymentAvailable(d) {
			break
		}
		if time.Now().After(deadline) {
			var st any
			if d != nil {
				st = d.Status
			}
			t.Fatalf("deployment pause not Available with %d replicas after 2m: %v %+v", replicas, err, st)
		}
	}
	pods, err := c.Client.CoreV1().Pods("default").List(ctx, metav1.ListOptions{LabelSelector: "app=pause"})
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range pods.Items {
		uids = append(uids, string(p.UID))
	}
	t.Logf("deployment pause: %d/%d replicas Available %s after create", len(pods.Items), replicas, time.Since(t6).Round(time.Millisecond))

	// 5b. The kubelet's summary API (through the API server's node
	// proxy; the kubelet's CRI stats provider asks containerd, which
	// reads the emulated cgroups' files) has figures of each
	// Deployment pod's container, and they are live: the burning pod's
	// CPU time grows from one sample to the next, by about its load.
	t11 := time.Now()
	if figs, err := podStats(ctx, c, pods.Items); err != nil {
		t.Errorf("summary API, the Deployment's pods: %v", err)
	} else {
		t.Logf("summary API: figures of each Deployment pod's container (%s): %s", time.Since(t11).Round(time.Millisecond), figs)
	}
	waitPod(t, c, "burn", corev1.PodRunning, time.Minute)
	// Over 10 s at least: the figures count whole 10 ms ticks, and a
	// short window on a loaded machine says little.
	if f1, f2, err := cpuGrows(ctx, c, "burn", 10*time.Second, 90*time.Second); err != nil {
		t.Errorf("summary API, pod burn: %v", err)
	} else {
		dt := f2.CPUTime.Sub(f1.CPUTime)
		share := float64(f2.CPU-f1.CPU) / float64(dt)
		t.Logf("summary API, pod burn (smoke-burn 100ms/1s): CPU %s at %s, %s at %s: %.1f%% of a CPU; working set %d B",
			f1.CPU, f1.CPUTime.Format(time.TimeOnly), f2.CPU, f2.CPUTime.Format(time.TimeOnly), 100*share, f2.WorkingSet)
		// A tenth of a CPU asked for; the figure must be of that order,
		// not a trickle of the runtime's own start.
		if share < 0.02 {
			t.Errorf("pod burn used %.1f%% of a CPU between two samples, want about 10%%", 100*share)
		}
	}

	// What the leftover checks below look for must be there while the
	// pods run, or they prove nothing: the shims and the containers'
	// processes traced below the launcher, their mounts in the node's
	// mount namespace, their cgroups in the emulated tree.
	running := tracedExcept(node.PID(), "containerd", "kubelet")
	if !slices.ContainsFunc(running, func(s string) bool { return strings.HasSuffix(s, " containerd-shim") }) ||
		!slices.ContainsFunc(running, func(s string) bool { return strings.HasSuffix(s, " nodeboot") }) {
		t.Errorf("no containerd-shim or nodeboot (pause) process traced by the launcher while pods run: %v", running)
	}
	mountsRunning := newMounts(mountsBefore, mountsUnder(t, kpid, c.Dir))
	if len(mountsRunning) == 0 {
		t.Errorf("no mount below %s made for the running pods", c.Dir)
	}
	t.Logf("while the pods run: %d traced processes besides containerd and kubelet, %d mounts below the test's directory", len(running), len(mountsRunning))
	if left := podCgroups(root, uids); len(left) == 0 {
		t.Errorf("no pod cgroup of %v in the emulated tree %s while the pods exist: the leftover check below proves nothing", uids, root)
	} else {
		t.Logf("pod cgroups while the pods run: %d (e.g. %s)", len(left), left[0])
	}

	// 6. Delete every pod: nothing may stay behind. The Deployment is
	// scaled to 0 and deleted first, or its ReplicaSet would make new
	// pods (and no garbage collector runs here to delete the ReplicaSet).
	t7 := time.Now()
	if _, err := deps.UpdateScale(ctx, "pause", &autoscalingv1.Scale{ObjectMeta: metav1.ObjectMeta{Name: "pause", Namespace: "default"}, Spec: autoscalingv1.ScaleSpec{Replicas: 0}}, metav1.UpdateOptions{}); err != nil {
		t.Fatalf("scale deployment to 0: %v", err)
	}
	orphan := metav1.DeletePropagationOrphan
	if err := deps.Delete(ctx, "pause", metav1.DeleteOptions{PropagationPolicy: &orphan}); err != nil {
		t.Fatalf("delete deployment: %v", err)
	}
	if err := c.Client.AppsV1().ReplicaSets("default").DeleteCollection(ctx, metav1.DeleteOptions{PropagationPolicy: &orphan}, metav1.ListOptions{}); err != nil {
		t.Fatalf("delete replicasets: %v", err)
	}
	if err := c.Client.CoreV1().Pods("default").DeleteCollection(ctx, metav1.DeleteOptions{GracePeriodSeconds: new(int64(1))}, metav1.ListOptions{}); err != nil {
		t.Fatalf("delete pods: %v", err)
	}
	var leftProcs, leftMounts, leftCgroups []string
	for deadline := time.Now().Add(90 * time.Second); ; time.Sleep(500 * time.Millisecond) {
		pods, err := c.Client.CoreV1().Pods("default").List(ctx, metav1.ListOptions{})
		leftProcs = tracedExcept(node.PID(), "containerd", "kubelet")
		leftMounts = newMounts(mountsBefore, mountsUnder(t, kpid, c.Dir))
		leftCgroups = podCgroups(root, uids)
		gone := err == nil && len(pods.Items) == 0
		if gone && len(leftProcs) == 0 && len(leftMounts) == 0 && len(leftCgroups) == 0 {
			break
		}
		if time.Now().After(deadline) {
			n := -1
			if err == nil {
				n = len(pods.Items)
			}
			t.Errorf("90 s after deleting every pod: %d pods left; traced processes %v; mounts %v; pod cgroups %v", n, leftProcs, leftMounts, leftCgroups)
			break
		}
	}
	if !t.Failed() {
		t.Logf("pods deleted: no pod, no traced process but containerd and kubelet, no new mount, no pod cgroup %s after delete", time.Since(t7).Round(time.Millisecond))
	}

	// 7. Nothing tried a registry; the trap sees a pull that is asked for.
	trap.check(t)
	if l := lastMatch(cdLog, "PullImage"); l != "" {
		t.Errorf("containerd pulled: %s", l)
	}
	probe := testPod("trap-probe", images.Registry+"/trap-probe:v1", nil, bedPod(c.Name))
	probe.Spec.Containers[0].ImagePullPolicy = corev1.PullAlways
	createPod(t, c, probe)
	if n, first := trap.wait(time.Minute); n == 0 {
		t.Errorf("the registry trap saw no connection within 1m of a pod asking for %s: it proves nothing", probe.Spec.Containers[0].Image)
	} else {
		t.Logf("registry trap control: a pod of %s reached the trap (%d connections; first request %q)", probe.Spec.Containers[0].Image, n, first)
	}
	checkHostSysctls(t, c, "at the end")
	if rep, err := launch.ReadReport(stats); err == nil {
		t.Logf("interceptor: %d rewrites, %d stops, mode %s", rep.Rewrites, rep.Stats.Stops, rep.Stats.Mode)
	}
	t.Logf("total: %s", time.Since(t0).Round(time.Millisecond))
}

// startTracedNode starts containerd and kubelet in one tree traced by the
// launcher (nodeboot's tracer, --root and --stats as given) in the
// simulated gVisor sandbox, and returns the launcher's process once
// containerd's socket is there. containerd reads cfg and logs to cdLog.
func startTracedNode(t *testing.T, c *cluster.Cluster, launcher, cfg, cdLog, root, stats string) *cluster.Proc {
	t.Helper()
	// One traced tree: containerd in the background, kubelet in the
	// shell's place once containerd's socket is there (kubelet gives up
	// on a runtime that does not answer at start).
	sock := c.ContainerdSocket()
	script := fmt.Sprintf(`containerd --config %q >>%q 2>&1 &
i=0
while [ ! -S %q ]; do
	i=$((i+1))
	if [ $i -gt 600 ]; then echo "containerd: no socket after 60 s" >&2; exit 1; fi
	sleep 0.1
done
exec "$@"`, cfg, cdLog, sock)
	c.KubeletCgroupRoot = "/"
	spec := sandbox.GVisor
	// containerd's shims keep runc's state in /run/containerd: the
	// sandbox's own, not the host's.
	spec.PrivateRun = true
	t1 := time.Now()
	node, err := c.StartKubelet("kubelet-nodeboot", func(argv []string) (*exec.Cmd, error) {
		return sandbox.Command(sandbox.Options{NetNS: c.NetNS, Spec: spec},
			append([]string{launcher, "--root", root, "--stats", stats, "--", "/bin/sh", "-c", script, "sh"}, argv...)...)
	})
	if err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(60 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		if _, err := os.Stat(sock); err == nil {
			break
		}
		if !node.Running() || time.Now().After(deadline) {
			t.Fatalf("containerd under nodeboot: no socket %s (running %v)\n%s\n%s", sock, node.Running(), node.Tail(30), tail(cdLog, 60))
		}
	}
	t.Logf("containerd under nodeboot: socket after %s", time.Since(t1).Round(time.Millisecond))
	return node
}

// deploymentAvailable reports whether d's Available condition is True.
func deploymentAvailable(d *appsv1.Deployment) bool {
	for _, c := range d.Status.Conditions {
		if c.Type == appsv1.DeploymentAvailable {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

func createPod(t *testing.T, c *cluster.Cluster, p *corev1.Pod) {
	t.Helper()
	if _, err := c.Client.CoreV1().Pods(p.Namespace).Create(t.Context(), p, metav1.CreateOptions{}); err != nil {
		t.Fatalf("create pod %s: %v", p.Name, err)
	}
}

// waitPod waits until pod name is in phase; a Failed pod, or a Succeeded
// one that should run, fails the test at once.
func waitPod(t *testing.T, c *cluster.Cluster, name string, phase corev1.PodPhase, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		p, err := c.Client.CoreV1().Pods("default").Get(t.Context(), name, metav1.GetOptions{})
		if err == nil && p.Status.Phase == phase {
			return
		}
		if err == nil && (p.Status.Phase == corev1.PodFailed || p.Status.Phase == corev1.PodSucceeded) || time.Now().After(deadline) {
			var st any
			if p != nil {
				st = p.Status
			}
			t.Fatalf("pod %s: want %s: %v %+v", name, phase, err, st)
		}
		time.Sleep(300 * time.Millisecond)
	}
}

// podLog reads pod name's log through the API until a line has prefix
// (or timeout passes) and returns that line.
func podLog(t *testing.T, c *cluster.Cluster, name string, timeout time.Duration, prefix string) string {
	t.Helper()
	var last string
	for deadline := time.Now().Add(timeout); ; time.Sleep(300 * time.Millisecond) {
		b, err := c.Client.CoreV1().Pods("default").GetLogs(name, &corev1.PodLogOptions{Container: "c"}).DoRaw(t.Context())
		if err == nil {
			last = string(b)
			for _, l := range strings.Split(last, "\n") {
				if strings.HasPrefix(l, prefix) {
					return l
				}
			}
		}
		if time.Now().After(deadline) {
			return fmt.Sprintf("%s (err %v)", strings.TrimSpace(last), err)
		}
	}
}

// execPod runs argv in a container through the API's exec endpoint, as
// kubectl exec does (WebSocket, SPDY when the server refuses it).
func execPod(ctx context.Context, cfg *rest.Config, ns, pod, container string, argv ...string) (string, string, error) {
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return "", "", err
	}
	req := cs.CoreV1().RESTClient().Post().Resource("pods").Namespace(ns).Name(pod).SubResource("exec").
		VersionedParams(&corev1.PodExecOptions{Container: container, Command: argv, Stdout: true, Stderr: true}, scheme.ParameterCodec)
	ws, err := remotecommand.NewWebSocketExecutor(cfg, "GET", req.URL().String())
	if err != nil {
		return "", "", err
	}
	spdy, err := remotecommand.NewSPDYExecutor(cfg, "POST", req.URL())
	if err != nil {
		return "", "", err
	}
	ex, err := remotecommand.NewFallbackExecutor(ws, spdy, func(err error) bool {
		return httpstream.IsUpgradeFailure(err) || httpstream.IsHTTPSProxyError(err)
	})
	if err != nil {
		return "", "", err
	}
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	var stdout, stderr bytes.Buffer
	err = ex.StreamWithContext(ctx, remotecommand.StreamOptions{Stdout: &stdout, Stderr: &stderr})
	return stdout.String(), stderr.String(), err
}

// mountsUnder lists the mount points below dir in pid's mount namespace.
func mountsUnder(t *testing.T, pid int, dir string) []string {
	t.Helper()
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/mountinfo")
	if err != nil {
		t.Fatalf("mounts of pid %d: %v", pid, err)
	}
	var mps []string
	for _, l := range strings.Split(string(b), "\n") {
		f := strings.Fields(l)
		if len(f) > 4 && (f[4] == dir || strings.HasPrefix(f[4], dir+"/")) {
			mps = append(mps, f[4])
		}
	}
	sort.Strings(mps)
	return mps
}

// newMounts is what after has more than before (a multiset).
func newMounts(before, after []string) []string {
	n := map[string]int{}
	for _, m := range before {
		n[m]++
	}
	var extra []string
	for _, m := range after {
		if n[m] > 0 {
			n[m]--
			continue
		}
		extra = append(extra, m)
	}
	return extra
}

// podCgroups lists the directories pod<UID> (kubelet's cgroupfs names) of
// the given pods below root, nodeboot's tree.
func podCgroups(root string, uids []string) []string {
	want := map[string]bool{}
	for _, u := range uids {
		want["pod"+u] = true
	}
	var found []string
	_ = filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return nil
		}
		if d.IsDir() && want[d.Name()] {
			found = append(found, p)
			return fs.SkipDir
		}
		return nil
	})
	return found
}

// tracedExcept lists the processes traced by tracer (the launcher, where
// nodeboot's tracer runs) whose command names are not in keep, as "PID
// COMM". Their TracerPid is what counts, not the parent chain:
// containerd's shims daemonize and leave the launcher's tree, but stay
// traced.
func tracedExcept(tracer int, keep ...string) []string {
	var left []string
	for p, comm := range traced(tracer) {
		if !slices.Contains(keep, comm) {
			left = append(left, fmt.Sprintf("%d %s", p, comm))
		}
	}
	sort.Strings(left)
	return left
}

// traced maps every process traced by a thread of process tracer to its
// command name. TracerPid is the tracing thread's ID, which is tracer's
// own only when the interceptor's loop happens to run on the main thread
// (it runs on whichever childless thread it finds: interceptor's
// goOnChildlessThread).
func traced(tracer int) map[int]string {
	tids := map[int]bool{}
	if ts, err := os.ReadDir("/proc/" + strconv.Itoa(tracer) + "/task"); err == nil {
		for _, e := range ts {
			if tid, err := strconv.Atoi(e.Name()); err == nil {
				tids[tid] = true
			}
		}
	}
	ents, _ := os.ReadDir("/proc")
	out := map[int]string{}
	for _, e := range ents {
		p, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile("/proc/" + e.Name() + "/status")
		if err != nil {
			continue
		}
		var name string
		tp := -1
		for _, l := range strings.Split(string(b), "\n") {
			k, v, _ := strings.Cut(l, ":")
			switch k {
			case "Name":
				name = strings.TrimSpace(v)
			case "TracerPid":
				tp, _ = strconv.Atoi(strings.TrimSpace(v))
			}
		}
		if tids[tp] {
			out[p] = name
		}
	}
	return out
}

// tail is the last n lines of file.
func tail(file string, n int) string {
	b, _ := os.ReadFile(file)
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// keepLog copies file into $E2E_LOG_DIR/TEST/ as the harness does with
// the logs of the processes it started.
func keepLog(t *testing.T, file string) {
	if t.Failed() {
		t.Logf("===== last 100 lines of %s =====\n%s", file, tail(file, 100))
	}
	d := os.Getenv("E2E_LOG_DIR")
	if d == "" {
		return
	}
	b, err := os.ReadFile(file)
	if err != nil {
		return
	}
	dst := filepath.Join(d, t.Name())
	if os.MkdirAll(dst, 0o755) == nil {
		_ = os.WriteFile(filepath.Join(dst, filepath.Base(file)), b, 0o644)
	}
}
