package e2e

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/nodeboot/nodeboot/e2e/cluster"
	"github.com/nodeboot/nodeboot/e2e/sandbox"
	"github.com/nodeboot/nodeboot/images"
	"github.com/nodeboot/nodeboot/manifests"
)

// TestUp drives the real `nodeboot up` CLI end to end in the gVisor-like
// sandbox, against the test bed's real kube-apiserver and a real kubelet:
// `up --detach --wait` with a manifest directory, `status --output json`,
// `kubeconfig`, a SIGKILLed kubelet that the supervisor restarts, a second
// `up` refused by the lock, and `down`, after which nothing of the run may
// be left (process, lock, mount namespace).
//
// What is real: the nodeboot binary (built from cmd/nodeboot) and every
// code path of up/status/kubeconfig/down (detaching, the data dir's lock
// and state, seeding the fake tree, bootstrap.Launch under the interceptor
// with the k3s profile, bootstrap.Supervise, health.Watch on client-go,
// server-side apply of the manifests), kube-apiserver, etcd, containerd and
// kubelet, the sandbox's missing /proc/sys, cgroups and /dev/kmsg.
//
// What is not: k3s. No k3s binary can be fetched offline (it is neither a
// Go module nor a Debian package), so --k3s points at a generated shell
// script that plays the two parts of k3s nodeboot depends on: it writes
// the admin kubeconfig to the --write-kubeconfig path nodeboot passes (a
// copy of the test bed's, with the --write-kubeconfig-mode nodeboot
// passes), and execs the test bed's kubelet (cluster.KubeletArgv, with the
// emulated cgroup root "/" as in TestNodeboot), so the PID nodeboot
// supervises is kubelet's. The k3s-only arguments (server, --data-dir,
// --node-name, ...) are printed to logs/k3s.log, where the test checks
// them, and otherwise ignored; the kubelet drop-in nodeboot writes for k3s
// is therefore not read by this kubelet. TestK3s runs a real k3s when one
// is given.
func TestUp(t *testing.T) {
	t0 := time.Now()
	c := cluster.New(t, cluster.Options{})
	if _, err := c.StartContainerd(); err != nil {
		t.Fatal(err)
	}
	c.KubeletCgroupRoot = "/" // the emulated cgroup tree, as in TestNodeboot
	u := &upBed{t: t, c: c, dataDir: filepath.Join(c.Dir, "nodeboot-data")}
	u.build()
	u.writeWrapper()
	// Registered after cluster.New, so it runs before the cluster's own
	// cleanup: a failed test must not leave the detached supervisor (a
	// session of its own, which the harness does not know) running.
	t.Cleanup(u.cleanup)
	manifestDir, err := filepath.Abs(filepath.Join("testdata", "up"))
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("setup (cluster, containerd, build): %s", time.Since(t0).Round(time.Millisecond))

	// 1. up --detach --wait: returns 0 once Ready and the manifests applied.
	upArgs := []string{"up", "--detach", "--wait", "--timeout", "3m", "--data-dir", u.dataDir,
		"--k3s", u.wrapper, "--node-name", c.Name, "--manifest", manifestDir,
		"--notready-grace", "20s", "--start-grace", "30s"}
	t1 := time.Now()
	r := u.run(4*time.Minute, upArgs...)
	t.Logf("nodeboot up --wait: exit %d after %s\n%s", r.code, r.took.Round(time.Millisecond), r.all())
	if r.code != 0 {
		t.Fatalf("nodeboot up --detach --wait exited %d, want 0", r.code)
	}
	for _, want := range []string{"Seeded the fake tree", "Started k3s (pid", "API reachable", "Node registered", "Node Ready", "Manifests applied"} {
		if !strings.Contains(r.all(), "✓ "+want) {
			t.Errorf("up's output lacks the phase line %q", "✓ "+want)
		}
	}
	u.checkPhases(t1, []string{"seeding", "starting-k3s", "api-reachable", "node-registered", "node-ready", "manifests-applied"})
	u.checkWrapperArgs()
	u.checkManifests()
	t.Logf("step 1 (up --wait, phases, manifests): %s", time.Since(t1).Round(time.Millisecond))

	// 2. status --output json, kubeconfig.
	t2 := time.Now()
	st := u.waitStatus(15*time.Second, "Ready with interceptor counters", func(s *upStatus) bool {
		return s.State.Health != nil && s.State.Health.State == "Ready" &&
			s.State.Interceptor != nil && s.State.Interceptor.Rewrites > 0
	})
	supPID, k3sPID := st.PID, st.State.K3sPID
	if !st.Running || supPID <= 0 || st.State.SupervisorPID != supPID {
		t.Errorf("status: running %v, pid %d, state.supervisorPID %d: want the running supervisor's pid in both", st.Running, supPID, st.State.SupervisorPID)
	}
	if st.State.Phase != "manifests-applied" {
		t.Errorf("status: phase %q, want manifests-applied", st.State.Phase)
	}
	if st.State.NodeName != c.Name {
		t.Errorf("status: node %q, want %q", st.State.NodeName, c.Name)
	}
	if k3sPID <= 0 || unix.Kill(k3sPID, 0) != nil {
		t.Fatalf("status: k3s pid %d is not alive", k3sPID)
	}
	ic := st.State.Interceptor
	if ic.Stops == 0 || ic.Rewrites == 0 || ic.Tracees == 0 {
		t.Errorf("status: interceptor counters %+v, want stops, rewrites and tracees above 0", *ic)
	}
	t.Logf("status: supervisor %d, k3s %d (%s), phase %s, health %s, interceptor %s: %d stops, %d rewrites, %d passes, %d threads",
		supPID, k3sPID, upComm(k3sPID), st.State.Phase, st.State.Health.State, ic.Mode, ic.Stops, ic.Rewrites, ic.Passes, ic.Tracees)
	supNS, _ := os.Readlink(fmt.Sprintf("/proc/%d/ns/mnt", supPID))
	if mps := upMountsBelow(fmt.Sprintf("/proc/%d/mountinfo", supPID), u.dataDir); len(mps) > 0 {
		t.Logf("mounts below the data dir in the sandbox while running: %v", mps)
	}
	u.checkKubeconfig()
	t.Logf("step 2 (status, kubeconfig): %s", time.Since(t2).Round(time.Millisecond))

	// 3. SIGKILL kubelet: restarted with a reason, Ready again.
	t3 := time.Now()
	victim := k3sPID
	if upComm(victim) != "kubelet" {
		// k3s proper forks its kubelet; the wrapper execs it.
		victim = descendant(k3sPID, "kubelet")
	}
	if victim == 0 {
		t.Fatalf("no kubelet at or below k3s pid %d (%s)", k3sPID, upComm(k3sPID))
	}
	killed := time.Now()
	if err := unix.Kill(victim, unix.SIGKILL); err != nil {
		t.Fatalf("SIGKILL kubelet %d: %v", victim, err)
	}
	st = u.waitStatus(30*time.Second, "a restart with a reason and a new k3s pid", func(s *upStatus) bool {
		return s.State.Restarts >= 1 && len(s.State.RestartHistory) > 0 &&
			s.State.RestartHistory[len(s.State.RestartHistory)-1].Reason != "" &&
			s.State.K3sPID > 0 && s.State.K3sPID != k3sPID
	})
	last := st.State.RestartHistory[len(st.State.RestartHistory)-1]
	t.Logf("restarted %s after the kill: restarts %d, new k3s pid %d, reason %q, delay %s",
		time.Since(killed).Round(time.Millisecond), st.State.Restarts, st.State.K3sPID, last.Reason, last.Delay)
	if !strings.Contains(last.Reason, "signal") && !strings.Contains(last.Reason, "killed") {
		t.Errorf("restart reason %q does not say kubelet was killed by a signal", last.Reason)
	}
	newK3s := st.State.K3sPID
	// Ready again: nodeboot says so, and the new kubelet renews its Lease
	// (with no controller-manager, the Node's Ready condition alone would
	// stay True whatever kubelet does).
	st = u.waitStatus(90*time.Second, "Ready again, the new kubelet renewing the lease", func(s *upStatus) bool {
		return s.State.Health != nil && s.State.Health.State == "Ready" && s.State.K3sPID == newK3s && u.leaseRenewedAfter(killed)
	})
	t.Logf("Ready again %s after the kill (health %s since %s)", time.Since(killed).Round(time.Millisecond),
		st.State.Health.State, st.State.Health.Since.Format(time.TimeOnly))
	// The phase must come back too: `status` and whatever reads state.json
	// show it, and a Ready node still "starting-k3s" misleads them.
	if st, ok := u.pollStatus(15*time.Second, func(s *upStatus) bool { return s.State.Phase == "manifests-applied" }); !ok {
		t.Errorf("after the restart the node is Ready but status says phase %q, want manifests-applied (the phase only moves on a health transition, and a quick restart has none)", st.State.Phase)
	}
	// The new kubelet may still report NotReady for a moment (PLEG not yet
	// healthy) after its first heartbeat: poll, as a script would.
	var sr upResult
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(500 * time.Millisecond) {
		if sr = u.run(time.Minute, "status", "--data-dir", u.dataDir); sr.code == 0 || time.Now().After(deadline) {
			break
		}
	}
	if sr.code != 0 {
		t.Errorf("status (text) after the restart: exit %d for 30 s, want 0 (running, Ready)\n%s", sr.code, sr.all())
	} else {
		t.Logf("nodeboot status:\n%s", sr.stdout)
	}
	t.Logf("step 3 (kill, restart, Ready): %s", time.Since(t3).Round(time.Millisecond))

	// 4. A second up on the same data dir fails at once, naming the pid.
	t4 := time.Now()
	r = u.run(time.Minute, upArgs...)
	t.Logf("second up: exit %d after %s: %s", r.code, r.took.Round(time.Millisecond), strings.TrimSpace(r.all()))
	if r.code != 1 {
		t.Errorf("second up exited %d, want 1", r.code)
	}
	if want := fmt.Sprintf("another nodeboot is running for %s (pid %d)", u.dataDir, supPID); !strings.Contains(r.all(), want) {
		t.Errorf("second up's output lacks %q", want)
	}
	if r.took > 10*time.Second {
		t.Errorf("second up took %s to fail; want at once", r.took)
	}
	if st := u.status(); st.PID != supPID || st.State.SupervisorPID != supPID || st.State.K3sPID != newK3s {
		t.Errorf("after the second up: supervisor %d (state %d), k3s %d; want %d and %d untouched",
			st.PID, st.State.SupervisorPID, st.State.K3sPID, supPID, newK3s)
	}
	t.Logf("step 4 (second up refused): %s", time.Since(t4).Round(time.Millisecond))

	// 5. down: nothing of the run is left, k3s's data is kept.
	t5 := time.Now()
	r = u.run(2*time.Minute, "down", "--data-dir", u.dataDir)
	t.Logf("nodeboot down: exit %d after %s: %s", r.code, r.took.Round(time.Millisecond), strings.TrimSpace(r.all()))
	if r.code != 0 {
		t.Errorf("down exited %d, want 0", r.code)
	}
	if left := u.leftovers(); len(left) > 0 {
		t.Errorf("after down, processes of this run remain:\n%s", strings.Join(left, "\n"))
	}
	for _, pid := range []int{supPID, k3sPID, newK3s} {
		if upAlive(pid) {
			t.Errorf("after down, pid %d (%s) still runs", pid, upComm(pid))
		}
	}
	if supNS != "" {
		if pids := upInMountNS(supNS); len(pids) > 0 {
			t.Errorf("after down, pids %v are still in the sandbox's mount namespace %s", pids, supNS)
		}
	}
	if mps := upMountsBelow("/proc/self/mountinfo", u.dataDir); len(mps) > 0 {
		t.Errorf("after down, mounts below %s: %v", u.dataDir, mps)
	}
	if err := u.lockFree(); err != nil {
		t.Errorf("after down: %v", err)
	}
	if _, err := os.Lstat(filepath.Join(u.dataDir, "nodeboot.pid")); err == nil {
		t.Errorf("after down: %s/nodeboot.pid is left", u.dataDir)
	}
	dropin := filepath.Join(u.dataDir, "k3s", "agent", "etc", "kubelet.conf.d", "05-nodeboot.conf")
	if _, err := os.Stat(dropin); err != nil {
		t.Errorf("after down, k3s's data dir is not kept: %v", err)
	}
	if _, err := os.Stat(filepath.Join(u.dataDir, "kubeconfig.yaml")); err != nil {
		t.Errorf("after down (no --purge), the kubeconfig is gone: %v", err)
	}
	if r := u.run(time.Minute, "status", "--data-dir", u.dataDir, "--output", "json"); r.code != 1 {
		t.Errorf("status after down: exit %d, want 1 (not running)\n%s", r.code, r.all())
	} else {
		var s upStatus
		if err := json.Unmarshal([]byte(r.stdout), &s); err != nil || s.Running || s.State == nil || s.State.Phase != "stopped" {
			t.Errorf("status after down: %v, running %v, state %+v; want not running, phase stopped", err, s.Running, s.State)
		}
	}
	u.down = true
	t.Logf("step 5 (down, nothing left): %s", time.Since(t5).Round(time.Millisecond))
	// 6. --manifests-via k3s: up writes the manifests into k3s's
	// auto-deploy directory and --wait returns only once they are in the
	// cluster. The stand-in has no deploy controller, so the test plays
	// it: it applies what appears in the directory, as k3s would.
	t6 := time.Now()
	u.down = false
	viaDir := t.TempDir()
	viaFile := filepath.Join(viaDir, "via-k3s.yaml")
	if err := os.WriteFile(viaFile, []byte("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: nodeboot-up-via-k3s, namespace: default}\ndata: {via: k3s}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	upDone := make(chan upResult, 1)
	go func() {
		upDone <- u.run(4*time.Minute, "up", "--detach", "--wait", "--timeout", "2m", "--data-dir", u.dataDir,
			"--k3s", u.wrapper, "--node-name", c.Name, "--manifest", viaFile, "--manifests-via", "k3s",
			"--notready-grace", "20s", "--start-grace", "30s")
	}()
	autoDeploy := filepath.Join(u.dataDir, "k3s", "server", "manifests", "nodeboot-via-k3s.yaml")
	var written time.Time
	for deadline := time.Now().Add(2 * time.Minute); written.IsZero(); time.Sleep(100 * time.Millisecond) {
		if _, err := os.Stat(autoDeploy); err == nil {
			written = time.Now()
		} else if time.Now().After(deadline) {
			t.Fatalf("up --manifests-via k3s did not write %s within 2 minutes", autoDeploy)
		}
		select {
		case r := <-upDone:
			t.Fatalf("up --manifests-via k3s returned (exit %d) before writing %s\n%s", r.code, autoDeploy, r.all())
		default:
		}
	}
	select {
	case r := <-upDone:
		t.Fatalf("up --wait --manifests-via k3s returned (exit %d) while nothing had applied the manifests\n%s", r.code, r.all())
	case <-time.After(2 * time.Second):
	}
	rc, err := c.RESTConfig()
	if err != nil {
		t.Fatal(err)
	}
	objs, err := manifests.Load([]string{autoDeploy})
	if err != nil {
		t.Fatalf("load what up wrote for k3s: %v", err)
	}
	if err := manifests.Apply(t.Context(), manifests.ApplyConfig{REST: rc, FieldManager: "deploy@e2e"}, objs); err != nil {
		t.Fatalf("apply %s (as k3s would): %v", autoDeploy, err)
	}
	applied := time.Now()
	var r6 upResult
	select {
	case r6 = <-upDone:
	case <-time.After(3 * time.Minute):
		t.Fatal("up --wait --manifests-via k3s did not return")
	}
	t.Logf("up --wait --manifests-via k3s: exit %d, %s after the file was written, %s after the test applied it\n%s",
		r6.code, time.Since(written).Round(time.Millisecond), time.Since(applied).Round(time.Millisecond), r6.all())
	if r6.code != 0 {
		t.Errorf("up --wait --manifests-via k3s exited %d, want 0", r6.code)
	}
	if st := u.status(); st.State.Phase != "manifests-applied" {
		t.Errorf("status after up --manifests-via k3s: phase %q, want manifests-applied", st.State.Phase)
	}
	if r := u.run(2*time.Minute, "down", "--data-dir", u.dataDir); r.code != 0 {
		t.Errorf("down after step 6 exited %d\n%s", r.code, r.all())
	} else if left := u.leftovers(); len(left) > 0 {
		t.Errorf("after the second down, processes of this run remain:\n%s", strings.Join(left, "\n"))
	} else {
		u.down = true
	}
	t.Logf("step 6 (up --manifests-via k3s waits for k3s to apply): %s", time.Since(t6).Round(time.Millisecond))
	// 7. A Ready left over is not Ready: the node was Ready in the runs
	// above (its Ready condition stays True with no controller-manager to
	// mark it Unknown), and this k3s writes the kubeconfig but runs no
	// kubelet. --wait must not take the old condition for this k3s's
	// node: it times out (exit 3) instead of returning 0.
	t7 := time.Now()
	u.down = false
	script, err := os.ReadFile(u.wrapper)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimRight(string(script), "\n"), "\n")
	if !strings.HasPrefix(lines[len(lines)-1], "exec ") {
		t.Fatalf("the stand-in does not end with its exec line: %q", lines[len(lines)-1])
	}
	lines[len(lines)-1] = "exec sleep 1000 # no kubelet"
	noKubelet := filepath.Join(c.Dir, "k3s-no-kubelet")
	if err := os.WriteFile(noKubelet, []byte(strings.Join(lines, "\n")+"\n"), 0o700); err != nil {
		t.Fatal(err)
	}
	r7 := u.run(2*time.Minute, "up", "--detach", "--wait", "--timeout", "8s", "--data-dir", u.dataDir,
		"--k3s", noKubelet, "--node-name", c.Name, "--notready-grace", "5m", "--start-grace", "5m")
	t.Logf("up --wait with no kubelet on a node Ready before: exit %d after %s\n%s", r7.code, r7.took.Round(time.Millisecond), r7.all())
	if r7.code != 3 {
		t.Errorf("up --wait with no kubelet exited %d, want 3 (timeout): the Ready condition of an earlier kubelet was taken for this one's", r7.code)
	}
	// The message says what is missing, not just "Ready KubeletReady".
	if want := "is an earlier kubelet's: the kubelet of the k3s now running has not been heard from"; !strings.Contains(r7.stderr, want) {
		t.Errorf("up --wait's exit-3 message does not say what it was waiting for (%q)", want)
	}
	if st := u.status(); st.State.Phase == "ready" || st.State.Phase == "node-ready" {
		t.Errorf("status with no kubelet: phase %q; the node of an earlier kubelet counted as Ready", st.State.Phase)
	}
	if r := u.run(2*time.Minute, "down", "--data-dir", u.dataDir); r.code != 0 {
		t.Errorf("down after step 7 exited %d\n%s", r.code, r.all())
	} else {
		u.down = true
	}
	t.Logf("step 7 (an earlier kubelet's Ready is not this k3s's): %s", time.Since(t7).Round(time.Millisecond))
	t.Logf("TestUp total %s", time.Since(t0).Round(time.Millisecond))
}

// upBed is TestUp's nodeboot, wrapper and data dir.
type upBed struct {
	t        *testing.T
	c        *cluster.Cluster
	nodeboot string // the built binary
	wrapper  string // the k3s stand-in
	dataDir  string
	config   string // NODEBOOT_CONFIG: keeps /etc/nodeboot/config.yaml out
	down     bool   // step 5 passed: the cleanup has nothing to stop
	// netns is the network namespace nodeboot runs in; "" is the
	// cluster's (TestCluster's agents have their own).
	netns string
	// spec is the sandbox nodeboot runs in; nil is sandbox.GVisor.
	spec *sandbox.Spec
	// env is added to nodeboot's environment.
	env []string
}

// sandboxSpec is the sandbox nodeboot runs in.
func (u *upBed) sandboxSpec() sandbox.Spec {
	if u.spec != nil {
		return *u.spec
	}
	return sandbox.GVisor
}

// netNS is the network namespace nodeboot runs in.
func (u *upBed) netNS() string {
	if u.netns != "" {
		return u.netns
	}
	return u.c.NetNS
}

// build builds cmd/nodeboot, as TestK3s does.
func (u *upBed) build() {
	t := u.t
	u.nodeboot = buildNodeboot(t, u.c.Dir)
	// An explicit config file that names only the data dir: the host's
	// /etc/nodeboot/config.yaml, if any, must not steer the test.
	u.config = filepath.Join(u.c.Dir, "nodeboot-config.yaml")
	if err := os.WriteFile(u.config, []byte("data-dir: "+u.dataDir+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
}

// buildNodeboot builds cmd/nodeboot into dir and returns the binary.
func buildNodeboot(t *testing.T, dir string) string {
	t.Helper()
	out := filepath.Join(dir, "nodeboot")
	b := exec.Command("go", "build", "-o", out, "./cmd/nodeboot")
	// In the root module: its go.sum has what cmd/nodeboot needs, which
	// the e2e module (importing only some root packages) does not list.
	b.Dir = ".."
	b.Env = append(os.Environ(), "CGO_ENABLED=0")
	if o, err := b.CombinedOutput(); err != nil {
		t.Fatalf("build nodeboot: %v\n%s", err, o)
	}
	return out
}

// upWrapperLog marks the wrapper's line with the arguments nodeboot gave it.
const upWrapperLog = "k3s-wrapper: args:"

// writeWrapper writes the k3s stand-in (see TestUp): it logs its
// arguments, writes the admin kubeconfig where --write-kubeconfig says
// with --write-kubeconfig-mode, and execs kubelet.
func (u *upBed) writeWrapper() {
	t := u.t
	argv, err := u.c.KubeletArgv()
	if err != nil {
		t.Fatal(err)
	}
	u.wrapper = filepath.Join(u.c.Dir, "k3s-wrapper")
	if err := writeK3sStandIn(u.wrapper, u.c.Kubeconfig, argv); err != nil {
		t.Fatal(err)
	}
}

// writeK3sStandIn writes a stand-in for k3s at path, for a test bed with
// no k3s (none can be had offline). It does k3s's two jobs that nodeboot
// relies on: it writes the admin kubeconfig (a copy of kubeconfig) where
// --write-kubeconfig says, with --write-kubeconfig-mode, and it execs
// argv, a kubelet, so that the PID nodeboot supervises is kubelet's. Every
// other argument is logged (a line starting with upWrapperLog) and
// ignored. Its last line is the exec.
func writeK3sStandIn(path, kubeconfig string, argv []string) error {
	q := make([]string, len(argv))
	for i, a := range argv {
		q[i] = upShQuote(a)
	}
	script := fmt.Sprintf(`#!/bin/sh
# k3s stand-in written by the e2e tests (writeK3sStandIn): no k3s binary
# exists offline. It does k3s's two jobs that nodeboot relies on: write the
# admin kubeconfig where --write-kubeconfig says, and run a kubelet. Every
# other argument is logged and ignored.
echo "%s $*"
kubeconfig= mode=0600
while [ $# -gt 0 ]; do
	case "$1" in
	--write-kubeconfig|-o) kubeconfig=$2; shift ;;
	--write-kubeconfig=*|-o=*) kubeconfig=${1#*=} ;;
	--write-kubeconfig-mode) mode=$2; shift ;;
	--write-kubeconfig-mode=*) mode=${1#*=} ;;
	esac
	shift
done
if [ -z "$kubeconfig" ]; then
	echo "k3s-wrapper: no --write-kubeconfig among the arguments" >&2
	exit 2
fi
umask 077
cp %s "$kubeconfig.wrapper-tmp" && chmod "$mode" "$kubeconfig.wrapper-tmp" && mv -f "$kubeconfig.wrapper-tmp" "$kubeconfig" || exit 1
echo "k3s-wrapper: wrote $kubeconfig (mode $mode); exec kubelet"
exec %s
`, upWrapperLog, upShQuote(kubeconfig), strings.Join(q, " "))
	return os.WriteFile(path, []byte(script), 0o700)
}

func upShQuote(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }

// upResult is one nodeboot command's outcome.
type upResult struct {
	stdout, stderr string
	code           int
	took           time.Duration
}

func (r upResult) all() string { return r.stdout + r.stderr }

// run runs nodeboot with args in the sandbox, in the cluster's network
// namespace, as a user of a gVisor sandbox would, and returns when it
// exits (up --detach returns while its supervisor runs on).
func (u *upBed) run(timeout time.Duration, args ...string) upResult {
	t := u.t
	t.Helper()
	cmd, err := sandbox.Command(sandbox.Options{NetNS: u.netNS(), Spec: u.sandboxSpec()}, append([]string{u.nodeboot}, args...)...)
	if err != nil {
		t.Fatal(err)
	}
	cmd.Env = append(append(cmd.Env, "NODEBOOT_CONFIG="+u.config), u.env...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	cmd.WaitDelay = 5 * time.Second // a leaked descriptor must not hang the test
	start := time.Now()
	if err := cmd.Start(); err != nil {
		t.Fatalf("nodeboot %s: %v", args[0], err)
	}
	timer := time.AfterFunc(timeout, func() { _ = cmd.Process.Kill() })
	err = cmd.Wait()
	timer.Stop()
	r := upResult{stdout: stdout.String(), stderr: stderr.String(), took: time.Since(start)}
	var ee *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &ee) && ee.Exited():
		r.code = ee.ExitCode()
	default:
		t.Fatalf("nodeboot %s: %v (after %s, timeout %s)\n%s", args[0], err, r.took.Round(time.Millisecond), timeout, r.all())
	}
	if r.code == 125 && strings.Contains(r.stderr, "sandbox: ") {
		t.Fatalf("sandbox setup failed for nodeboot %s:\n%s", args[0], r.all())
	}
	return r
}

// upStatus is the documented `nodeboot status --output json` object, the
// fields the test reads.
type upStatus struct {
	DataDir string `json:"dataDir"`
	Running bool   `json:"running"`
	PID     int    `json:"pid"`
	State   *struct {
		Phase          string `json:"phase"`
		Snapshotter    string `json:"snapshotter"`
		PodNetwork     string `json:"podNetwork"`
		PauseImage     string `json:"pauseImage"`
		NodeName       string `json:"nodeName"`
		Role           string `json:"role"`
		SupervisorPID  int    `json:"supervisorPID"`
		K3sPID         int    `json:"k3sPID"`
		Restarts       int    `json:"restarts"`
		RestartHistory []struct {
			Time   time.Time `json:"time"`
			Reason string    `json:"reason"`
			Delay  string    `json:"delay"`
		} `json:"restartHistory"`
		Health *struct {
			State   string    `json:"state"`
			Reason  string    `json:"reason"`
			Message string    `json:"message"`
			Since   time.Time `json:"since"`
		} `json:"health"`
		Interceptor *struct {
			Mode     string `json:"mode"`
			Stops    uint64 `json:"stops"`
			Rewrites uint64 `json:"rewrites"`
			Passes   uint64 `json:"passes"`
			Tracees  int    `json:"tracees"`
		} `json:"interceptor"`
		LastError string `json:"lastError"`
	} `json:"state"`
}

// status runs `nodeboot status --output json`; exit 0 (running, Ready) or
// 3 (running, not Ready) are fine here, anything else fails the test.
func (u *upBed) status() *upStatus {
	t := u.t
	t.Helper()
	r := u.run(time.Minute, "status", "--data-dir", u.dataDir, "--output", "json")
	if r.code != 0 && r.code != 3 {
		t.Fatalf("nodeboot status: exit %d\n%s", r.code, r.all())
	}
	var s upStatus
	if err := json.Unmarshal([]byte(r.stdout), &s); err != nil {
		t.Fatalf("nodeboot status --output json: %v\n%s", err, r.stdout)
	}
	if s.State == nil {
		t.Fatalf("nodeboot status --output json: no state\n%s", r.stdout)
	}
	// Ready counts once the running k3s's kubelet reported it: from the
	// phase node-ready on.
	wantCode := 3
	switch s.State.Phase {
	case "node-ready", "ready", "manifests-applied", "manifests-failed":
		if s.State.Health != nil && s.State.Health.State == "Ready" {
			wantCode = 0
		}
	}
	if !s.Running || r.code != wantCode {
		t.Errorf("nodeboot status: exit %d, running %v, health %+v; want running and exit %d", r.code, s.Running, s.State.Health, wantCode)
	}
	if s.DataDir != u.dataDir {
		t.Errorf("nodeboot status: dataDir %q, want %q", s.DataDir, u.dataDir)
	}
	return &s
}

// pollStatus polls status every second until ok or timeout; it returns
// the last status and whether ok held.
func (u *upBed) pollStatus(timeout time.Duration, ok func(*upStatus) bool) (*upStatus, bool) {
	u.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		s := u.status()
		if ok(s) {
			return s, true
		}
		if time.Now().After(deadline) {
			return s, false
		}
		time.Sleep(time.Second)
	}
}

// waitStatus is pollStatus that fails the test at the timeout.
func (u *upBed) waitStatus(timeout time.Duration, what string, ok func(*upStatus) bool) *upStatus {
	u.t.Helper()
	s, done := u.pollStatus(timeout, ok)
	if !done {
		b, _ := json.MarshalIndent(s, "", "  ")
		u.t.Fatalf("status: not %s within %s:\n%s", what, timeout, b)
	}
	return s
}

// checkPhases reads events.jsonl: the phases of the run, in order.
func (u *upBed) checkPhases(since time.Time, want []string) {
	t := u.t
	t.Helper()
	b, err := os.ReadFile(filepath.Join(u.dataDir, "events.jsonl"))
	if err != nil {
		t.Errorf("events: %v", err)
		return
	}
	var got []string
	var at []string
	for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		var e struct {
			Time  time.Time `json:"time"`
			Kind  string    `json:"kind"`
			Phase string    `json:"phase"`
		}
		if err := json.Unmarshal([]byte(line), &e); err != nil {
			t.Errorf("events.jsonl: %v: %q", err, line)
			continue
		}
		if e.Kind == "phase" {
			got = append(got, e.Phase)
			at = append(at, fmt.Sprintf("%s +%s", e.Phase, e.Time.Sub(since).Round(10*time.Millisecond)))
		}
	}
	t.Logf("phases: %s", strings.Join(at, ", "))
	if !slices.Equal(got, want) {
		t.Errorf("events.jsonl phases %v, want %v", got, want)
	}
}

// checkWrapperArgs checks what nodeboot passed to "k3s".
func (u *upBed) checkWrapperArgs() {
	t := u.t
	t.Helper()
	b, err := os.ReadFile(filepath.Join(u.dataDir, "logs", "k3s.log"))
	if err != nil {
		t.Errorf("k3s log: %v", err)
		return
	}
	var args string
	for _, l := range strings.Split(string(b), "\n") {
		if a, ok := strings.CutPrefix(l, upWrapperLog+" "); ok {
			args = a
			break
		}
	}
	if args == "" {
		t.Errorf("logs/k3s.log has no %q line: is k3s's output logged there?", upWrapperLog)
		return
	}
	t.Logf("k3s arguments: %s", args)
	for _, want := range []string{
		"server ",
		"--data-dir " + filepath.Join(u.dataDir, "k3s"),
		"--write-kubeconfig " + filepath.Join(u.dataDir, "kubeconfig.yaml"),
		"--write-kubeconfig-mode 0600",
		"--node-name " + u.c.Name,
		"--pause-image " + images.Registry + "/pause:", // nodeboot's own: no registry
	} {
		if !strings.Contains(" "+args+" ", " "+want) {
			t.Errorf("k3s arguments lack %q: %s", want, args)
		}
	}
	if !strings.HasPrefix(args, "server ") {
		t.Errorf("k3s arguments do not start with the role server: %s", args)
	}
}

// checkManifests checks the manifests' objects through client-go: there,
// with the test's values, and applied server-side by manager nodeboot.
func (u *upBed) checkManifests() {
	t := u.t
	t.Helper()
	ctx := t.Context()
	ns, err := u.c.Client.CoreV1().Namespaces().Get(ctx, "nodeboot-up-e2e", metav1.GetOptions{})
	if err != nil {
		t.Errorf("manifest namespace: %v", err)
	} else {
		upCheckApplied(t, "namespace nodeboot-up-e2e", ns.ManagedFields)
	}
	cm, err := u.c.Client.CoreV1().ConfigMaps("nodeboot-up-e2e").Get(ctx, "nodeboot-up-e2e", metav1.GetOptions{})
	if err != nil {
		t.Errorf("manifest configmap: %v", err)
		return
	}
	upCheckApplied(t, "configmap nodeboot-up-e2e", cm.ManagedFields)
	if got := cm.Data["greeting"]; got != "hello from nodeboot up" {
		t.Errorf("configmap data greeting = %q", got)
	}
}

func upCheckApplied(t *testing.T, what string, mf []metav1.ManagedFieldsEntry) {
	t.Helper()
	var seen []string
	for _, m := range mf {
		if m.Manager == "nodeboot" && m.Operation == metav1.ManagedFieldsOperationApply {
			return
		}
		seen = append(seen, fmt.Sprintf("%s/%s", m.Manager, m.Operation))
	}
	t.Errorf("%s: no managedFields entry of manager nodeboot with operation Apply; have %v", what, seen)
}

// checkKubeconfig: `nodeboot kubeconfig` prints the file, which is 0600
// and the admin kubeconfig the wrapper wrote; --path prints its path.
func (u *upBed) checkKubeconfig() {
	t := u.t
	t.Helper()
	path := filepath.Join(u.dataDir, "kubeconfig.yaml")
	r := u.run(time.Minute, "kubeconfig", "--data-dir", u.dataDir)
	if r.code != 0 {
		t.Errorf("nodeboot kubeconfig: exit %d\n%s", r.code, r.all())
		return
	}
	file, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	admin, err := os.ReadFile(u.c.Kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	if r.stdout != string(file) || !bytes.Equal(file, admin) {
		t.Errorf("nodeboot kubeconfig printed %d bytes; the file has %d, the admin kubeconfig %d: want all three equal", len(r.stdout), len(file), len(admin))
	}
	if !strings.Contains(r.stdout, "apiVersion: v1") || !strings.Contains(r.stdout, "kind: Config") {
		t.Errorf("nodeboot kubeconfig did not print a kubeconfig:\n%.300s", r.stdout)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("%s: mode %04o, want 0600", path, fi.Mode().Perm())
	}
	if r := u.run(time.Minute, "kubeconfig", "--data-dir", u.dataDir, "--path"); r.code != 0 || strings.TrimSpace(r.stdout) != path {
		t.Errorf("nodeboot kubeconfig --path: exit %d, %q; want 0, %s", r.code, strings.TrimSpace(r.stdout), path)
	}
	t.Logf("kubeconfig: %d bytes, mode %04o", len(file), fi.Mode().Perm())
}

// leaseRenewedAfter reports whether the node's Lease was renewed after t0.
func (u *upBed) leaseRenewedAfter(t0 time.Time) bool {
	l, err := u.c.Client.CoordinationV1().Leases(corev1.NamespaceNodeLease).Get(u.t.Context(), u.c.Name, metav1.GetOptions{})
	if err != nil || l.Spec.RenewTime == nil {
		return false
	}
	return l.Spec.RenewTime.After(t0)
}

// lockFree takes and drops the data dir's lock, as a new supervisor would.
func (u *upBed) lockFree() error {
	path := filepath.Join(u.dataDir, "nodeboot.lock")
	f, err := os.OpenFile(path, os.O_RDWR|unix.O_NOFOLLOW, 0)
	if err != nil {
		return fmt.Errorf("open the lock %s: %w", path, err)
	}
	defer f.Close()
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		return fmt.Errorf("the lock %s is still held: %w", path, err)
	}
	return unix.Flock(int(f.Fd()), unix.LOCK_UN)
}

// leftovers lists processes of this run: a command line naming the data
// dir (nodeboot, the wrapper) or the node (kubelet, whose paths are in the
// cluster's directory), other than the test bed's own components.
func (u *upBed) leftovers() []string {
	own := map[int]bool{os.Getpid(): true}
	for _, name := range []string{"etcd", "kube-apiserver", "containerd"} {
		if p := u.c.Component(name); p != nil {
			own[p.PID()] = true
		}
	}
	var out []string
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || own[pid] {
			continue
		}
		b, err := os.ReadFile("/proc/" + e.Name() + "/cmdline")
		if err != nil || len(b) == 0 {
			continue
		}
		cl := string(bytes.ReplaceAll(bytes.TrimRight(b, "\x00"), []byte{0}, []byte{' '}))
		if strings.Contains(cl, u.dataDir) || strings.Contains(cl, u.c.Name) {
			out = append(out, fmt.Sprintf("  pid %d: %.300s", pid, cl))
		}
	}
	return out
}

// cleanup stops what a failed test left running: `nodeboot down`, then
// SIGKILL by pid for anything of the run still there; and shows the logs.
func (u *upBed) cleanup() {
	t := u.t
	if t.Failed() || os.Getenv("E2E_VERBOSE") != "" {
		for _, name := range []string{"nodeboot.log", "k3s.log"} {
			b, _ := os.ReadFile(filepath.Join(u.dataDir, "logs", name))
			lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
			if len(lines) > 150 {
				lines = lines[len(lines)-150:]
			}
			t.Logf("===== last 150 lines of %s =====\n%s", name, strings.Join(lines, "\n"))
		}
	}
	if d := os.Getenv("E2E_LOG_DIR"); d != "" {
		dst := filepath.Join(d, t.Name())
		if err := os.MkdirAll(dst, 0o755); err == nil {
			for _, name := range []string{"nodeboot.log", "k3s.log"} {
				if b, err := os.ReadFile(filepath.Join(u.dataDir, "logs", name)); err == nil {
					_ = os.WriteFile(filepath.Join(dst, "up-"+name), b, 0o644)
				}
			}
			// k3s's containerd logs what runc said when a pod fails to start.
			if b, err := os.ReadFile(filepath.Join(u.dataDir, "k3s", "agent", "containerd", "containerd.log")); err == nil {
				_ = os.WriteFile(filepath.Join(dst, "up-containerd.log"), b, 0o644)
			}
		}
	}
	if u.down || u.nodeboot == "" {
		return
	}
	if _, err := os.Stat(filepath.Join(u.dataDir, "nodeboot.lock")); err == nil && u.lockFree() != nil {
		cmd, err := sandbox.Command(sandbox.Options{NetNS: u.netNS(), Spec: u.sandboxSpec()}, u.nodeboot, "down", "--data-dir", u.dataDir, "--timeout", "30s")
		if err == nil {
			cmd.Env = append(cmd.Env, "NODEBOOT_CONFIG="+u.config)
			out, err := cmd.CombinedOutput()
			t.Logf("cleanup: nodeboot down: %v\n%s", err, out)
		}
	}
	for _, l := range u.leftovers() {
		f := strings.Fields(l)
		if pid, err := strconv.Atoi(strings.TrimSuffix(f[1], ":")); err == nil {
			t.Logf("cleanup: SIGKILL%s", l)
			_ = unix.Kill(pid, unix.SIGKILL)
		}
	}
}

// upComm is the command name of pid, or "".
func upComm(pid int) string {
	b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/comm", pid))
	return strings.TrimSpace(string(b))
}

// upAlive reports whether pid exists and is not a zombie.
func upAlive(pid int) bool {
	if pid <= 0 || unix.Kill(pid, 0) != nil {
		return false
	}
	b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	return !strings.Contains(string(b), ") Z ")
}

// upMountsBelow lists the mount points in a mountinfo file at or below dir.
func upMountsBelow(mountinfo, dir string) []string {
	b, err := os.ReadFile(mountinfo)
	if err != nil {
		return nil
	}
	var out []string
	for _, l := range strings.Split(string(b), "\n") {
		f := strings.Fields(l)
		if len(f) < 5 {
			continue
		}
		mp := upUnescapeMountinfo(f[4])
		if mp == dir || strings.HasPrefix(mp, dir+"/") {
			out = append(out, mp)
		}
	}
	return out
}

// upUnescapeMountinfo undoes mountinfo's octal escapes (\040 for a space).
func upUnescapeMountinfo(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			if n, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(n))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// upInMountNS lists the processes in mount namespace ns ("mnt:[N]").
func upInMountNS(ns string) []int {
	var out []int
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if l, err := os.Readlink("/proc/" + e.Name() + "/ns/mnt"); err == nil && l == ns {
			out = append(out, pid)
		}
	}
	return out
}
