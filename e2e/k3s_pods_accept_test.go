package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/nodeboot/nodeboot/e2e/cluster"
	"github.com/nodeboot/nodeboot/images"
)

// k3sPodChecks runs what issue 9 asks of pods on a node under nodeboot,
// with image (nodeboot's smoke image: only the static nodeboot binary, so
// its hidden smoke-cat prints files from inside the pod):
//
//   - a pod limited to 64Mi reads 67108864 from its own memory.max (the
//     emulated cgroup runc binds at the container's /sys/fs/cgroup);
//   - a pod on the pod network setting safe sysctls (net.* and
//     kernel.shm_rmid_forced) sees them; the host's and the node's values
//     are unchanged;
//   - port-forward (client-go's, as kubectl's: SPDY over WebSocket and
//     plain SPDY) reads a line from a pod on the pod network serving on
//     its loopback;
//   - a 3-replica Deployment turns Available, and exec into one of its
//     containers returns the command's output;
//   - once every pod is deleted, no shim process, no container mount in
//     k3s's mount table and no pod cgroup in the emulated hierarchy stays.
func k3sPodChecks(t *testing.T, c *cluster.Cluster, u *upBed, k3s, image string) {
	t.Helper()
	ctx := t.Context()
	t0 := time.Now()
	ns := "default"
	pods := c.Client.CoreV1().Pods(ns)
	var uids []string

	// Memory limit.
	mem := testPod("mem", image, []string{images.BinaryPath, "smoke-cat", "/sys/fs/cgroup/memory.max"}, podOpts{
		HostNetwork: true,
		Limits:      corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("64Mi")},
		Requests:    corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("64Mi")},
	})
	out, uid := runPodLog(t, c, mem)
	uids = append(uids, uid)
	if want := "/sys/fs/cgroup/memory.max=67108864"; out != want {
		t.Errorf("pod mem printed %q, want %q", out, want)
	}
	t.Logf("pod with a 64Mi limit reads its memory.max: %q", out)

	// Safe sysctls on the pod network.
	const portRange = "/proc/sys/net/ipv4/ip_local_port_range"
	const shm = "/proc/sys/kernel/shm_rmid_forced"
	hostBefore := readTrim(t, portRange) + "|" + readTrim(t, shm)
	nodeBefore := nsCat(t, c.NetNS, portRange)
	sc := testPod("sysctl", image, []string{images.BinaryPath, "smoke-cat", portRange, shm}, podOpts{Sysctls: []corev1.Sysctl{
		{Name: "net.ipv4.ip_local_port_range", Value: "20000 40000"},
		{Name: "kernel.shm_rmid_forced", Value: "1"},
	}})
	out, uid = runPodLog(t, c, sc)
	uids = append(uids, uid)
	if want := portRange + "=20000\t40000\n" + shm + "=1"; out != want {
		t.Errorf("pod sysctl printed %q, want %q", out, want)
	}
	if after := readTrim(t, portRange) + "|" + readTrim(t, shm); after != hostBefore {
		t.Errorf("the host's sysctls changed: %q, were %q", after, hostBefore)
	}
	if after := nsCat(t, c.NetNS, portRange); after != nodeBefore {
		t.Errorf("the node's %s changed: %q, was %q", portRange, after, nodeBefore)
	}
	t.Logf("pod setting safe sysctls sees them (%q); host and node unchanged", out)

	// kubectl port-forward to a pod on the pod network (flannel): k3s's
	// containerd dials the pod's loopback from inside its namespace.
	sv := testPod("serve", image, serveCommand(images.BinaryPath), podOpts{NameEnv: true})
	start := time.Now()
	createPod(t, c, sv)
	waitPod(t, c, "serve", corev1.PodRunning, 2*time.Minute)
	if got := podLog(t, c, "serve", 30*time.Second, "smoke-serve: listening on "); !strings.HasPrefix(got, "smoke-serve: listening on ") {
		t.Errorf("pod serve logged %q, want its listening line", got)
	} else if hostCfg, err := c.HostRESTConfig(); err != nil {
		t.Errorf("port-forward: %v", err)
	} else {
		t.Logf("pod serve: %q %s after create", got, time.Since(start).Round(time.Millisecond))
		for _, l := range checkPortForward(t, hostCfg, "serve", servePort, images.ServeLine("serve")) {
			t.Logf("port-forward to pod serve:%d, %s", servePort, l)
		}
	}
	if p, err := pods.Get(ctx, "serve", metav1.GetOptions{}); err == nil {
		uids = append(uids, string(p.UID))
	}

	// A Deployment of three, and exec.
	replicas := int32(3)
	labels := map[string]string{"app": "three"}
	tmpl := testPod("", image, []string{images.BinaryPath, "smoke-cat", "--wait", "/sys/fs/cgroup/memory.max"}, podOpts{HostNetwork: true})
	tmpl.Spec.RestartPolicy = corev1.RestartPolicyAlways
	tmpl.Spec.Containers[0].Env = []corev1.EnvVar{{Name: "NODE_NAME", Value: "three"}}
	d := &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: "three", Namespace: ns},
		Spec: appsv1.DeploymentSpec{
			Replicas: &replicas,
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: labels}, Spec: tmpl.Spec},
		},
	}
	start = time.Now()
	if _, err := c.Client.AppsV1().Deployments(ns).Create(ctx, d, metav1.CreateOptions{}); err != nil {
		t.Fatalf("create deployment: %v", err)
	}
	if !poll(2*time.Minute, func() bool {
		got, err := c.Client.AppsV1().Deployments(ns).Get(ctx, "three", metav1.GetOptions{})
		return err == nil && got.Status.AvailableReplicas == 3
	}) {
		got, _ := c.Client.AppsV1().Deployments(ns).Get(ctx, "three", metav1.GetOptions{})
		t.Fatalf("deployment three not Available within 2m: %+v", got.Status)
	}
	t.Logf("3-replica Deployment Available %s after create", time.Since(start).Round(time.Millisecond))
	list, err := pods.List(ctx, metav1.ListOptions{LabelSelector: "app=three"})
	if err != nil || len(list.Items) != 3 {
		t.Fatalf("deployment's pods: %v (%d)", err, len(list.Items))
	}
	for _, p := range list.Items {
		uids = append(uids, string(p.UID))
	}
	// Live figures of the pods' processes through the kubelet's summary
	// API (cAdvisor reads the emulated cgroups' files).
	if figs, err := podStats(ctx, c, list.Items); err != nil {
		t.Errorf("summary API: %v", err)
	} else {
		t.Logf("summary API: live figures of each pod's container: %s", figs)
	}
	kc := filepath.Join(u.dataDir, "kubeconfig.yaml")
	cmd := exec.CommandContext(ctx, "nsenter", "--net="+c.NetNS, k3s, "kubectl", "--kubeconfig", kc,
		"exec", "-n", ns, list.Items[0].Name, "--", images.BinaryPath, "smoke-echo")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	start = time.Now()
	if err := cmd.Run(); err != nil {
		t.Errorf("kubectl exec: %v\n%s%s", err, stdout.String(), stderr.String())
	} else if want := images.SmokeLine + "three"; strings.TrimSpace(stdout.String()) != want {
		t.Errorf("kubectl exec printed %q, want %q", stdout.String(), want)
	} else {
		t.Logf("kubectl exec into %s: %q in %s", list.Items[0].Name, strings.TrimSpace(stdout.String()), time.Since(start).Round(time.Millisecond))
	}

	// Delete everything; nothing stays behind. While pods run, the same
	// look finds their shims, mounts and cgroups (else it proves nothing).
	st := u.status()
	cgRoot := filepath.Join(u.dataDir, "root", "sys", "fs", "cgroup")
	kinds := map[string]bool{}
	for _, l := range leftovers(ctx, c, st.State.K3sPID, cgRoot, uids) {
		kinds[strings.Fields(l)[0]] = true
	}
	for _, k := range []string{"pod", "process", "mount", "cgroup"} {
		if !kinds[k] {
			t.Errorf("while pods run, the leftover check finds no %s: it would prove nothing after deletion", k)
		}
	}
	start = time.Now()
	if err := c.Client.AppsV1().Deployments(ns).Delete(ctx, "three", metav1.DeleteOptions{}); err != nil {
		t.Errorf("delete deployment: %v", err)
	}
	for _, pn := range []string{"nodeboot-smoke", ns} {
		all, _ := c.Client.CoreV1().Pods(pn).List(ctx, metav1.ListOptions{})
		for _, p := range all.Items {
			uids = append(uids, string(p.UID))
		}
		zero := int64(0)
		if err := c.Client.CoreV1().Pods(pn).DeleteCollection(ctx, metav1.DeleteOptions{GracePeriodSeconds: &zero}, metav1.ListOptions{}); err != nil {
			t.Errorf("delete pods in %s: %v", pn, err)
		}
	}
	var left []string
	clean := poll(90*time.Second, func() bool {
		left = leftovers(ctx, c, st.State.K3sPID, cgRoot, uids)
		return len(left) == 0
	})
	if !clean {
		t.Errorf("%s after deleting every pod, still there:\n%s", time.Since(start).Round(time.Millisecond), strings.Join(left, "\n"))
	} else {
		t.Logf("every pod deleted: no pod, shim, container mount or pod cgroup left after %s", time.Since(start).Round(time.Millisecond))
	}
	t.Logf("pod checks: %s", time.Since(t0).Round(time.Millisecond))
}

// runPodLog creates p, waits until it succeeded and returns its log,
// trimmed, and its UID.
func runPodLog(t *testing.T, c *cluster.Cluster, p *corev1.Pod) (string, string) {
	t.Helper()
	ctx := t.Context()
	pods := c.Client.CoreV1().Pods(p.Namespace)
	created, err := pods.Create(ctx, p, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("create pod %s: %v", p.Name, err)
	}
	var last *corev1.Pod
	if !poll(2*time.Minute, func() bool {
		last, err = pods.Get(ctx, p.Name, metav1.GetOptions{})
		return err == nil && (last.Status.Phase == corev1.PodSucceeded || last.Status.Phase == corev1.PodFailed)
	}) || last.Status.Phase != corev1.PodSucceeded {
		logs, _ := pods.GetLogs(p.Name, &corev1.PodLogOptions{Container: "c"}).DoRaw(ctx)
		var status any
		if last != nil {
			status = last.Status
		}
		t.Fatalf("pod %s did not succeed within 2m: %v %+v\nlog: %s", p.Name, err, status, logs)
	}
	logs, err := pods.GetLogs(p.Name, &corev1.PodLogOptions{Container: "c"}).DoRaw(ctx)
	if err != nil {
		t.Fatalf("log of pod %s: %v", p.Name, err)
	}
	return strings.TrimSpace(string(logs)), string(created.UID)
}

// leftovers lists what deleted pods left: pods still listed, shim
// processes, container mounts in k3s's mount table, pod cgroups in the
// emulated hierarchy.
func leftovers(ctx context.Context, c *cluster.Cluster, k3sPID int, cgRoot string, uids []string) []string {
	var left []string
	for _, pn := range []string{"default", "nodeboot-smoke"} {
		if l, err := c.Client.CoreV1().Pods(pn).List(ctx, metav1.ListOptions{}); err == nil {
			for _, p := range l.Items {
				left = append(left, "pod "+pn+"/"+p.Name)
			}
		}
	}
	procs, _ := os.ReadDir("/proc")
	for _, e := range procs {
		if _, err := strconv.Atoi(e.Name()); err != nil {
			continue
		}
		if b, err := os.ReadFile("/proc/" + e.Name() + "/comm"); err == nil && strings.HasPrefix(string(b), "containerd-shim") {
			left = append(left, "process "+e.Name()+" "+strings.TrimSpace(string(b)))
		}
	}
	if b, err := os.ReadFile("/proc/" + strconv.Itoa(k3sPID) + "/mountinfo"); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			if strings.Contains(l, "io.containerd.runtime.v2.task/") || strings.Contains(l, "/sandboxes/") {
				left = append(left, "mount "+l)
			}
		}
	}
	_ = filepath.WalkDir(cgRoot, func(p string, d os.DirEntry, err error) error {
		if err != nil || !d.IsDir() {
			return nil
		}
		for _, uid := range uids {
			if strings.Contains(d.Name(), strings.ReplaceAll(uid, "-", "_")) || strings.Contains(d.Name(), uid) {
				left = append(left, "cgroup "+p)
			}
		}
		return nil
	})
	return left
}

func poll(timeout time.Duration, ok func() bool) bool {
	deadline := time.Now().Add(timeout)
	for {
		if ok() {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(500 * time.Millisecond)
	}
}

func readTrim(t *testing.T, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatalf("read %s: %v", p, err)
	}
	return strings.TrimSpace(string(b))
}

// nsCat reads a file in network namespace ns, a path (a /proc/sys/net
// value is the reader's namespace's).
func nsCat(t *testing.T, ns, p string) string {
	t.Helper()
	out, err := exec.Command("nsenter", "--net="+ns, "cat", p).Output()
	if err != nil {
		t.Fatalf("nsenter --net=%s cat %s: %v", ns, p, err)
	}
	return strings.TrimSpace(string(out))
}

// summaryFigures are the figures of a pod's first container in the kubelet's
// summary API; a figure the summary lacks is 0.
type summaryFigures struct {
	// CPU is the cumulative CPU time (usageCoreNanoSeconds) at CPUTime,
	// the sample's time.
	CPU     time.Duration
	CPUTime time.Time
	// WorkingSet is workingSetBytes.
	WorkingSet uint64
}

// readSummary reads the node's summary API once, through the API server's
// node proxy, and returns the figures of every pod with a container, by
// pod name, and the raw answer.
func readSummary(ctx context.Context, c *cluster.Cluster) (map[string]summaryFigures, []byte, error) {
	raw, err := c.Client.CoreV1().RESTClient().Get().AbsPath("/api/v1/nodes/" + c.Name + "/proxy/stats/summary").DoRaw(ctx)
	if err != nil {
		return nil, nil, fmt.Errorf("summary API: %w", err)
	}
	var sum struct {
		Pods []struct {
			PodRef struct {
				Name string `json:"name"`
			} `json:"podRef"`
			Containers []struct {
				CPU *struct {
					Time                 time.Time `json:"time"`
					UsageCoreNanoSeconds *uint64   `json:"usageCoreNanoSeconds"`
				} `json:"cpu"`
				Memory *struct {
					WorkingSetBytes *uint64 `json:"workingSetBytes"`
				} `json:"memory"`
			} `json:"containers"`
		} `json:"pods"`
	}
	if err := json.Unmarshal(raw, &sum); err != nil {
		return nil, raw, fmt.Errorf("summary API: %w", err)
	}
	figs := map[string]summaryFigures{}
	for _, p := range sum.Pods {
		if len(p.Containers) == 0 {
			continue
		}
		ct, f := p.Containers[0], summaryFigures{}
		if ct.CPU != nil && ct.CPU.UsageCoreNanoSeconds != nil {
			f.CPU, f.CPUTime = time.Duration(*ct.CPU.UsageCoreNanoSeconds), ct.CPU.Time
		}
		if ct.Memory != nil && ct.Memory.WorkingSetBytes != nil {
			f.WorkingSet = *ct.Memory.WorkingSetBytes
		}
		figs[p.PodRef.Name] = f
	}
	return figs, raw, nil
}

// podStats reads the node's summary API until each of pods has CPU and
// memory figures of its own container: cumulative CPU above zero and a
// working set above zero.
func podStats(ctx context.Context, c *cluster.Cluster, pods []corev1.Pod) (string, error) {
	var last error
	var figs []string
	if poll(time.Minute, func() bool {
		sum, raw, err := readSummary(ctx, c)
		if err != nil {
			last = err
			return false
		}
		figs = figs[:0]
		for _, p := range pods {
			f, ok := sum[p.Name]
			if !ok {
				last = fmt.Errorf("pod %s not in the summary", p.Name)
				return false
			}
			if f.CPU == 0 || f.WorkingSet == 0 {
				last = fmt.Errorf("pod %s: no live figures yet: %.500s", p.Name, raw)
				return false
			}
			figs = append(figs, fmt.Sprintf("%s cpu %d ns, working set %d B", p.Name, f.CPU.Nanoseconds(), f.WorkingSet))
		}
		return true
	}) {
		return strings.Join(figs, "; "), nil
	}
	return "", last
}

// cpuGrows reads the summary API until pod's CPU figure has grown past
// its first non-zero reading in a sample at least span later, and returns
// both readings. A figure that stays put (a stale cache, a cgroup whose
// cpu.stat never moves) fails after timeout.
func cpuGrows(ctx context.Context, c *cluster.Cluster, pod string, span, timeout time.Duration) (first, second summaryFigures, err error) {
	var last error
	ok := poll(timeout, func() bool {
		sum, raw, err := readSummary(ctx, c)
		if err != nil {
			last = err
			return false
		}
		f := sum[pod]
		if f.CPU == 0 || f.WorkingSet == 0 {
			last = fmt.Errorf("pod %s: no CPU or working set figure: %.500s", pod, raw)
			return false
		}
		if first.CPU == 0 {
			first = f
			return false
		}
		second = f
		return f.CPUTime.Sub(first.CPUTime) >= span && f.CPU > first.CPU
	})
	if ok {
		return first, second, nil
	}
	if first.CPU != 0 {
		return first, second, fmt.Errorf("pod %s: CPU %s at %s, %s at %s, %s later", pod, first.CPU, first.CPUTime.Format(time.TimeOnly), second.CPU, second.CPUTime.Format(time.TimeOnly), timeout)
	}
	return first, second, last
}
