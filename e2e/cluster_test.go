package e2e

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/nodeboot/nodeboot/e2e/cluster"
	"github.com/nodeboot/nodeboot/e2e/sandbox"
	"github.com/nodeboot/nodeboot/images"
	"github.com/nodeboot/nodeboot/node"
)

// TestCluster: a server and two agents, each a `nodeboot up` of its own in
// its own network namespace and its own simulated sandbox, joined by one
// bridge (cluster.AddNode): all three Ready; a pod runs on each agent
// under nodeboot and one that stays (keep-AGENT) is started on each; an
// agent's kubelet SIGKILLed
// is restarted by that agent's supervisor and Ready again while the
// others see no restart; the server stopped for longer than the agents'
// graces restarts no agent (their kubelets are healthy: the API is away,
// not they), and once it is back every node is Ready again with no
// restart and the agents still run their keep pods' containers.
//
// The test bed is TestUp's: a real kube-apiserver and etcd in the
// server's namespace, a real containerd per node, and as k3s a generated
// stand-in (writeClusterStandIn) that execs the node's real kubelet. An
// agent's stand-in starts the agent's containerd first, as k3s does, so
// that it and its pods run under nodeboot in the agent's sandbox (the
// server's containerd is the bed's, outside nodeboot; it runs no pod);
// the test imports nodeboot's images into it with ctr, and the pods use
// the host network (the bed has no pod network across nodes). As
// k3s does, the server's stand-in writes the admin kubeconfig and the
// join token (K3S-DATA-DIR/server/node-token), which the test reads with
// `nodeboot token` and hands to the agents with --token-file; an agent's
// stand-in refuses to start unless k3s's --server and token file are the
// server's, and writes the node's kubelet kubeconfig (system:node:NAME)
// where k3s agent has it, K3S-DATA-DIR/agent/kubelet.kubeconfig, which
// nodeboot watches the agent with. "The server stopped" is `nodeboot down`
// on it and kube-apiserver stopped (a k3s server's API server is in its
// process); it comes back as kube-apiserver restarted and `nodeboot up`.
// TestClusterK3s runs the same with a real k3s.
func TestCluster(t *testing.T) {
	t0 := time.Now()
	c := cluster.New(t, cluster.Options{})
	c.KubeletCgroupRoot = "/" // the emulated cgroup tree, as in TestUp
	cb := newClusterBed(t, c)
	if _, err := c.StartContainerd(); err != nil {
		t.Fatal(err)
	}
	argv, err := c.KubeletArgv()
	if err != nil {
		t.Fatal(err)
	}
	// The agents run pods under nodeboot (step 2b): their containerd is
	// started by their stand-in, in their sandbox, with nodeboot's pause
	// image as sandbox image; the test imports nodeboot's images into it
	// with ctr. Pod admission wants the namespace's ServiceAccount, which
	// no controller-manager makes here (the pods mount no token).
	b, err := images.ForBinary(cb.nodeboot, "e2e")
	if err != nil {
		t.Fatal(err)
	}
	archive := filepath.Join(c.Dir, b.ArchiveName())
	if err := b.WriteArchive(archive); err != nil {
		t.Fatal(err)
	}
	cb.smoke = b.Smoke
	if _, err := c.Client.CoreV1().ServiceAccounts("default").Create(t.Context(), &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "default"}}, metav1.CreateOptions{}); err != nil {
		t.Fatalf("service account: %v", err)
	}
	server := cb.add("server", c.Name, c.NetNS, "server")
	if err := writeClusterStandIn(server.wrapper, clusterStandIn{
		Role: "server", AdminKubeconfig: c.Kubeconfig, Token: cb.token, Kubelet: argv,
	}); err != nil {
		t.Fatal(err)
	}
	for _, short := range []string{"agent1", "agent2"} {
		n, err := c.AddNode(short)
		if err != nil {
			t.Fatalf("add %s: %v", short, err)
		}
		cfg, err := n.WriteContainerdConfig(cluster.ContainerdConfig{SandboxImage: b.Pause})
		if err != nil {
			t.Fatal(err)
		}
		cdLog := filepath.Join(n.Dir, short+"-containerd.log") // keepLog keeps the base name
		t.Cleanup(func() { keepLog(t, cdLog) })
		a := cb.add(short, n.Name, n.NetNS, "agent")
		a.containerdSock, a.containerdConfig = n.ContainerdSocket(), cfg
		// Every kubelet deletes the directories of /var/log/pods that are
		// not its own pods' (measured: agent1's removed agent2's pod log
		// before it was read): each agent has its own, as on a machine of
		// its own (the server's kubelet runs no pod here).
		for _, target := range []string{"/var/log/pods", "/var/log/containers"} {
			src := filepath.Join(n.Dir, strings.ReplaceAll(strings.TrimPrefix(target, "/"), "/", "-"))
			if err := os.MkdirAll(src, 0o700); err != nil {
				t.Fatal(err)
			}
			a.spec.Binds = append(a.spec.Binds, sandbox.Bind{Source: src, Target: target})
		}
		kc := filepath.Join(a.dataDir, "k3s", "agent", "kubelet.kubeconfig")
		argv, err := n.KubeletArgv(kc)
		if err != nil {
			t.Fatal(err)
		}
		if err := writeClusterStandIn(a.wrapper, clusterStandIn{
			Role: "agent", ServerURL: c.ServerURL(), Token: cb.token, KubeletKubeconfig: n.Kubeconfig(), Kubelet: argv,
			Containerd: cfg, ContainerdSocket: n.ContainerdSocket(), ContainerdLog: cdLog,
		}); err != nil {
			t.Fatal(err)
		}
	}
	cb.beforePods = func() {
		ctr, err := exec.LookPath("ctr")
		if err != nil {
			t.Fatalf("no ctr (Debian's containerd package ships it): %v", err)
		}
		var wg sync.WaitGroup
		for _, a := range cb.nodes[1:] {
			// Under nodeboot: traced, as everything its kubelet starts.
			pid := cmdlinePID("containerd\x00--config\x00" + a.containerdConfig + "\x00")
			if tp := tracerPID(pid); pid == 0 || tp == 0 {
				t.Fatalf("%s: containerd (pid %d) is not traced (TracerPid %d): not under nodeboot", a.short, pid, tp)
			}
			wg.Go(func() {
				t0 := time.Now()
				out, err := exec.Command(ctr, "--address", a.containerdSock, "--namespace", "k8s.io", "images", "import", archive).CombinedOutput()
				if err != nil {
					t.Errorf("%s: ctr images import into its containerd under nodeboot: %v\n%s", a.short, err, out)
					return
				}
				t.Logf("%s: ctr images import %s, %s: %s", a.short, b.Pause, b.Smoke, time.Since(t0).Round(time.Millisecond))
			})
		}
		wg.Wait()
		if t.Failed() {
			t.FailNow()
		}
	}
	t.Logf("setup (control plane, 3 namespaces on a bridge, 1 containerd, build, image archive): %s", time.Since(t0).Round(time.Millisecond))
	cb.scenario(c.ServerURL())
	checkHostSysctls(t, c, "at the end")
	t.Logf("TestCluster total %s", time.Since(t0).Round(time.Millisecond))
}

// clusterBed is TestCluster's nodes: one nodeboot binary, a data dir, a
// k3s stand-in and a namespace per node.
type clusterBed struct {
	t        *testing.T
	c        *cluster.Cluster
	nodeboot string
	token    string // the server's join token
	// k3s is the real k3s (TestClusterK3s), "" for the stand-ins.
	k3s string
	// smoke, when set, is the smoke image the agents have (the test bed's,
	// imported by beforePods); "" derives it from the agent's pause image
	// (k3s imports nodeboot's images at its start).
	smoke string
	// beforePods, when set, runs before step 2b (the test bed imports
	// nodeboot's images into the agents' containerd).
	beforePods func()
	// k3sArgs are each node's K3S-ARGS (TestClusterK3s).
	k3sArgs   map[string][]string
	tokenFile string // the token as `nodeboot token` printed it, 0600
	nodes     []*clusterNode
	graces    graces
	// onServerUp, when set, runs after each up of the server (the test
	// then reaches the API with k3s's kubeconfig).
	onServerUp func()
}

// clusterNode is one node: an upBed (run, status) in its own namespace.
type clusterNode struct {
	*upBed
	short, name, role string
	// containerdSock is the agent's containerd socket (the test bed's;
	// k3s's is inside its sandbox).
	containerdSock, containerdConfig string
}

func newClusterBed(t *testing.T, c *cluster.Cluster) *clusterBed {
	cb := &clusterBed{t: t, c: c, token: newJoinToken(), k3sArgs: map[string][]string{}, graces: testbedGraces}
	u := &upBed{t: t, c: c, dataDir: filepath.Join(c.Dir, "server-data")}
	u.build()
	cb.nodeboot = u.nodeboot
	// Registered after cluster.New: runs before the cluster's cleanup.
	t.Cleanup(cb.cleanup)
	return cb
}

// newJoinToken makes a token shaped like k3s's: K10<CA hash>::server:<secret>.
func newJoinToken() string {
	var h [32]byte
	var s [16]byte
	_, _ = rand.Read(h[:])
	_, _ = rand.Read(s[:])
	return "K10" + hex.EncodeToString(h[:]) + "::server:" + hex.EncodeToString(s[:])
}

// add makes node short (Node name, namespace, role); its data dir is
// <cluster dir>/<short>-data, its stand-in <cluster dir>/<short>-k3s.
func (cb *clusterBed) add(short, name, netns, role string) *clusterNode {
	t := cb.t
	dataDir := filepath.Join(cb.c.Dir, short+"-data")
	u := &upBed{t: t, c: cb.c, nodeboot: cb.nodeboot, dataDir: dataDir, netns: netns,
		wrapper: filepath.Join(cb.c.Dir, short+"-k3s"), config: filepath.Join(cb.c.Dir, short+"-config.yaml")}
	if cb.k3s != "" {
		u.wrapper = cb.k3s
	}
	// Only the data dir: the host's /etc/nodeboot/config.yaml must not
	// steer the test.
	if err := os.WriteFile(u.config, []byte("data-dir: "+dataDir+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	// A sandbox of its own is a /run of its own: k3s's /run/k3s is the
	// node's. The claims nodeboot takes on the machine (node name,
	// network namespace, /run/k3s) are in a directory all nodes share,
	// as /run/nodeboot is on a machine where nodes share /run.
	spec := sandbox.GVisor
	spec.PrivateRun = true
	u.spec = &spec
	u.env = []string{"NODEBOOT_RUN_DIR=" + filepath.Join(cb.c.Dir, "claims")}
	n := &clusterNode{upBed: u, short: short, name: name, role: role}
	cb.nodes = append(cb.nodes, n)
	return n
}

// graces are the nodes' --start-grace and --notready-grace: the agents'
// are short, so that the server's outage outlasts them within the test's
// time.
type graces struct{ serverStart, server, agentStart, agent string }

// testbedGraces: the stand-in's kubelet is Ready within seconds.
var testbedGraces = graces{serverStart: "60s", server: "30s", agentStart: "10s", agent: "10s"}

// up runs `nodeboot up --detach --wait` for n.
func (cb *clusterBed) up(n *clusterNode, serverURL string) upResult {
	args := []string{"up", "--detach", "--wait", "--timeout", "4m", "--data-dir", n.dataDir,
		"--k3s", n.wrapper, "--node-name", n.name}
	if n.role == "agent" {
		args = append(args, "--role", "agent", "--server", serverURL, "--token-file", cb.tokenFile,
			"--start-grace", cb.graces.agentStart, "--notready-grace", cb.graces.agent)
	} else {
		args = append(args, "--start-grace", cb.graces.serverStart, "--notready-grace", cb.graces.server)
	}
	if ka := cb.k3sArgs[n.short]; len(ka) > 0 {
		args = append(append(args, "--"), ka...)
	}
	return n.run(6*time.Minute, args...)
}

// upAll runs up for nodes at once and fails the test unless each exits 0.
func (cb *clusterBed) upAll(serverURL string, nodes ...*clusterNode) {
	t := cb.t
	t.Helper()
	res := make([]upResult, len(nodes))
	var wg sync.WaitGroup
	for i, n := range nodes {
		wg.Go(func() { res[i] = cb.up(n, serverURL) })
	}
	wg.Wait()
	for i, n := range nodes {
		r := res[i]
		t.Logf("%s: nodeboot up --wait: exit %d after %s", n.short, r.code, r.took.Round(time.Millisecond))
		if r.code != 0 {
			t.Fatalf("%s: nodeboot up --detach --wait exited %d, want 0\n%s", n.short, r.code, r.all())
		}
	}
}

// ready says whether n's status is Ready as this run's kubelet reports it.
func clusterReady(s *upStatus) bool {
	return s.State.Health != nil && s.State.Health.State == "Ready" && s.State.Phase == string(node.PhaseReady)
}

// snapshot is each node's status.
func (cb *clusterBed) snapshot(nodes ...*clusterNode) map[string]*upStatus {
	m := map[string]*upStatus{}
	for _, n := range nodes {
		m[n.short] = n.status()
	}
	return m
}

// waitReady waits until every node in nodes is Ready (status) and has
// renewed its Lease after since, and the API says its Node is Ready.
func (cb *clusterBed) waitReady(what string, timeout time.Duration, since time.Time, nodes ...*clusterNode) {
	t := cb.t
	t.Helper()
	for _, n := range nodes {
		n.waitStatus(timeout, what, func(s *upStatus) bool {
			return clusterReady(s) && cb.leaseRenewedAfter(n.name, since)
		})
	}
	list, err := cb.c.Client.CoreV1().Nodes().List(t.Context(), metav1.ListOptions{})
	if err != nil {
		t.Fatalf("list nodes: %v", err)
	}
	ready := map[string]bool{}
	var seen []string
	for _, nd := range list.Items {
		for _, cond := range nd.Status.Conditions {
			if cond.Type == corev1.NodeReady {
				ready[nd.Name] = cond.Status == corev1.ConditionTrue
				seen = append(seen, fmt.Sprintf("%s=%s", nd.Name, cond.Status))
			}
		}
	}
	for _, n := range nodes {
		if !ready[n.name] {
			t.Errorf("%s: the API has Node %s not Ready (%s)", what, n.name, strings.Join(seen, ", "))
		}
	}
	t.Logf("%s: nodes %s", what, strings.Join(seen, ", "))
}

// leaseRenewedAfter reports whether node name's Lease was renewed after t0.
func (cb *clusterBed) leaseRenewedAfter(name string, t0 time.Time) bool {
	l, err := cb.c.Client.CoordinationV1().Leases(corev1.NamespaceNodeLease).Get(cb.t.Context(), name, metav1.GetOptions{})
	if err != nil || l.Spec.RenewTime == nil {
		return false
	}
	return l.Spec.RenewTime.After(t0)
}

// events returns n's supervisor events of the kinds since t.
func (cb *clusterBed) events(n *clusterNode, since time.Time, kinds ...node.EventKind) []node.Event {
	evs, _, err := node.ReadEvents(n.dataDir, 0)
	if err != nil {
		cb.t.Errorf("%s: events: %v", n.short, err)
		return nil
	}
	var out []node.Event
	for _, e := range evs {
		if !e.Time.Before(since) && slices.Contains(kinds, e.Kind) {
			out = append(out, e)
		}
	}
	return out
}

// restartEvents are the kinds that say a supervisor restarted k3s.
var restartEvents = []node.EventKind{node.KindUnhealthy, node.KindRestarting, node.KindExited}

// scenario runs the steps of TestCluster on the nodes added: server first.
func (cb *clusterBed) scenario(serverURL string) {
	t := cb.t
	server, agents := cb.nodes[0], cb.nodes[1:]
	all := cb.nodes

	// 1. The server, then its join token, by `nodeboot token`.
	t1 := time.Now()
	cb.upAll(serverURL, server)
	if cb.onServerUp != nil {
		cb.onServerUp()
	}
	r := server.run(time.Minute, "token", "--data-dir", server.dataDir)
	tok := strings.TrimSpace(r.stdout)
	if r.code != 0 || tok == "" {
		t.Fatalf("nodeboot token: exit %d\n%s", r.code, r.all())
	}
	if cb.k3s == "" && tok != cb.token {
		t.Fatalf("nodeboot token printed %q, want the token the server wrote, %q", tok, cb.token)
	}
	cb.tokenFile = filepath.Join(cb.c.Dir, "node-token")
	if err := os.WriteFile(cb.tokenFile, []byte(r.stdout), 0o600); err != nil {
		t.Fatal(err)
	}
	if r := agents[0].run(time.Minute, "token", "--data-dir", agents[0].dataDir); r.code != 1 {
		t.Errorf("nodeboot token on an agent that never ran: exit %d, want 1\n%s", r.code, r.all())
	}
	t.Logf("step 1 (server up, nodeboot token): %s", time.Since(t1).Round(time.Millisecond))

	// 2. The agents join, at once; all three Ready.
	t2 := time.Now()
	cb.upAll(serverURL, agents...)
	cb.waitReady("all three Ready", 2*time.Minute, t2, all...)
	if r := agents[0].run(time.Minute, "token", "--data-dir", agents[0].dataDir); r.code != 1 || !strings.Contains(r.stderr, "runs a k3s agent") {
		t.Errorf("nodeboot token on an agent: exit %d, want 1 saying it is an agent\n%s", r.code, r.all())
	}
	// A fourth node in agent2's network namespace (its own data dir,
	// name and sandbox) is refused at once, naming agent2: their k3s
	// and kubelets would fight over the same ports.
	a2 := agents[len(agents)-1]
	intruder := &upBed{t: t, c: cb.c, nodeboot: cb.nodeboot, dataDir: filepath.Join(cb.c.Dir, "intruder-data"), netns: a2.netns,
		config: a2.config, spec: a2.spec, env: a2.env}
	r = intruder.run(time.Minute, "up", "--detach", "--wait", "--timeout", "1m", "--data-dir", intruder.dataDir,
		"--k3s", a2.wrapper, "--node-name", a2.name+"-intruder", "--role", "agent", "--server", serverURL, "--token-file", cb.tokenFile)
	t.Logf("a fourth node in %s's network namespace: exit %d after %s: %s", a2.short, r.code, r.took.Round(time.Millisecond), strings.TrimSpace(r.stderr))
	if want := "is taken by the node of " + a2.dataDir; r.code == 0 || !strings.Contains(r.all(), "network namespace net:[") || !strings.Contains(r.all(), want) {
		t.Errorf("a fourth node in %s's network namespace: exit %d; want a refusal naming the network namespace and %q\n%s", a2.short, r.code, want, r.all())
	}
	before := cb.snapshot(all...)
	for _, n := range all {
		s := before[n.short]
		if s.State.Restarts != 0 || s.State.Role != n.role || s.State.NodeName != n.name {
			t.Errorf("%s: restarts %d, role %q, node %q; want 0, %s, %s", n.short, s.State.Restarts, s.State.Role, s.State.NodeName, n.role, n.name)
		}
	}
	t.Logf("step 2 (agents join, all Ready): %s", time.Since(t2).Round(time.Millisecond))
	cb.podsOnAgents(before, agents)

	// 3. agent1's kubelet SIGKILLed: agent1 restarts it and is Ready
	// again; nobody else restarts.
	t3 := time.Now()
	victim := agents[0]
	victimKeep := keepPID(victim.name)
	if victimKeep == 0 {
		t.Fatalf("no process of %s's keep pod found", victim.short)
	}
	vs := before[victim.short]
	kpid := vs.State.K3sPID
	if upComm(kpid) != "kubelet" {
		// k3s runs its kubelet in its own process: killing k3s is
		// killing the kubelet.
		t.Logf("%s: k3s pid %d is %q; killing it (its kubelet runs inside)", victim.short, kpid, upComm(kpid))
	}
	killed := time.Now()
	if err := unix.Kill(kpid, unix.SIGKILL); err != nil {
		t.Fatalf("SIGKILL %s's kubelet %d: %v", victim.short, kpid, err)
	}
	victim.waitStatus(60*time.Second, "restarted with a new k3s pid", func(s *upStatus) bool {
		return s.State.Restarts == 1 && s.State.K3sPID > 0 && s.State.K3sPID != kpid
	})
	cb.waitReady("agent1 Ready again after its kubelet was killed", 2*time.Minute, killed, victim)
	t.Logf("%s: Ready again %s after the kill", victim.short, time.Since(killed).Round(time.Millisecond))
	after := cb.snapshot(all...)
	for _, n := range all {
		if n == victim {
			continue
		}
		if a, b := after[n.short], before[n.short]; a.State.Restarts != 0 || a.State.K3sPID != b.State.K3sPID {
			t.Errorf("%s after %s's kubelet was killed: restarts %d, k3s pid %d (was %d); want no restart", n.short, victim.short, a.State.Restarts, a.State.K3sPID, b.State.K3sPID)
		}
		if evs := cb.events(n, t3, restartEvents...); len(evs) > 0 {
			t.Errorf("%s: supervisor events after %s's kubelet was killed: %v", n.short, victim.short, evs)
		}
	}
	t.Logf("step 3 (an agent's kubelet killed, restarted, the others untouched): %s", time.Since(t3).Round(time.Millisecond))

	// A kubelet restart keeps the running containers (issue 9), as
	// native k3s does: the supervisor's restart ends k3s (or the test
	// bed's stand-in: its kubelet and containerd) but not containerd's
	// shims, which run on in the same trace, and the next containerd
	// reconnects to them. The keep pod's container is the same process,
	// still running, once the node is Ready again.
	// Checked again once the pods are Ready: the new kubelet, once it has
	// looked at its pods, does not replace it either.
	t.Logf("%s's pod across its kubelet's restart: its container's process %d before, %d once Ready again (alive %v)",
		victim.short, victimKeep, keepPID(victim.name), upAlive(victimKeep))
	keep := cb.keptPods(agents)
	if nowKeep := keepPID(victim.name); !upAlive(victimKeep) || nowKeep != victimKeep {
		t.Errorf("%s's keep pod across its kubelet's restart: container process %d before, %d after (alive %v); want the same process running on",
			victim.short, victimKeep, nowKeep, upAlive(victimKeep))
	}

	// 4. The server away for longer than the agents' graces: each agent
	// is excused at least once (its kubelet healthy), none restarts.
	t4 := time.Now()
	pids := map[string]int{}
	for _, n := range agents {
		pids[n.short] = after[n.short].State.K3sPID
	}
	if r := server.run(2*time.Minute, "down", "--data-dir", server.dataDir); r.code != 0 {
		t.Fatalf("down on the server: exit %d\n%s", r.code, r.all())
	}
	downTook := time.Since(t4)
	cb.stopAPI()
	outage := time.Now()
	t.Logf("server down: nodeboot down %s, its API server stopped %s later", downTook.Round(time.Millisecond), outage.Sub(t4.Add(downTook)).Round(time.Millisecond))
	// Away until each agent has said why it does not restart (which it
	// does only once its start grace and its grace have passed, not
	// Ready), and for longer than the grace and the start grace together,
	// so that even an agent just restarted would have been restarted.
	minOutage := parseDuration(t, cb.graces.agentStart) + parseDuration(t, cb.graces.agent)
	for deadline := time.Now().Add(2 * time.Minute); ; time.Sleep(time.Second) {
		done := time.Since(outage) > minOutage
		for _, n := range agents {
			if len(cb.events(n, outage, node.KindExcused)) == 0 {
				done = false
			}
			if evs := cb.events(n, outage, restartEvents...); len(evs) > 0 {
				t.Fatalf("%s restarted while the server was away: %v", n.short, evs)
			}
		}
		if done {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no agent said within 2 minutes of the outage why it does not restart")
		}
	}
	for _, n := range agents {
		s := n.status()
		ex := cb.events(n, outage, node.KindExcused)
		t.Logf("%s during the outage: health %s (%s), %d excused, first %s after the outage: %s", n.short, s.State.Health.State,
			s.State.Health.Reason, len(ex), ex[0].Time.Sub(outage).Round(time.Millisecond), ex[0].Reason)
		if s.State.Health.State != "APIUnreachable" || s.State.K3sPID != pids[n.short] || !upAlive(pids[n.short]) {
			t.Errorf("%s during the outage: health %s, k3s pid %d (was %d, alive %v); want APIUnreachable and the same k3s", n.short,
				s.State.Health.State, s.State.K3sPID, pids[n.short], upAlive(pids[n.short]))
		}
	}
	t.Logf("step 4 (server away %s, no agent restarted): %s", time.Since(outage).Round(time.Millisecond), time.Since(t4).Round(time.Millisecond))

	// 5. The server back: every node Ready again, no restart anywhere.
	t5 := time.Now()
	cb.startAPI()
	cb.upAll(serverURL, server)
	if cb.onServerUp != nil {
		cb.onServerUp()
	}
	back := time.Now()
	cb.waitReady("all Ready after the server returned", 2*time.Minute, back, all...)
	final := cb.snapshot(all...)
	for _, n := range all {
		want := 0
		if n == victim {
			want = 1 // step 3's
		}
		if s := final[n.short]; s.State.Restarts != want || (n.role == "agent" && s.State.K3sPID != pids[n.short]) {
			t.Errorf("%s after the server returned: restarts %d, k3s pid %d (was %d); want %d restarts and the same k3s",
				n.short, s.State.Restarts, s.State.K3sPID, pids[n.short], want)
		}
	}
	for _, n := range agents {
		if evs := cb.events(n, t4, restartEvents...); len(evs) > 0 {
			t.Errorf("%s: supervisor events since the server went away: %v", n.short, evs)
		}
	}
	// The agents kept their pods: the same containers, still running.
	now := cb.keptPods(agents)
	for name, id := range keep {
		if now[name] != id {
			t.Errorf("pod %s: container %s after the outage, %s before: the agent did not keep it", name, now[name], id)
		}
	}
	t.Logf("the agents kept their pods through the outage: %v", now)
	t.Logf("step 5 (server back, all Ready, no restart): %s", time.Since(t5).Round(time.Millisecond))

	// 6. down everywhere: nothing of the run is left.
	t6 := time.Now()
	for _, n := range slices.Backward(all) {
		if r := n.run(2*time.Minute, "down", "--data-dir", n.dataDir); r.code != 0 {
			t.Errorf("%s: down exited %d\n%s", n.short, r.code, r.all())
		}
	}
	for _, n := range all {
		n.down = true
	}
	if left := cb.leftovers(); len(left) > 0 {
		t.Errorf("after down, processes of this run remain:\n%s", strings.Join(left, "\n"))
	}
	t.Logf("step 6 (down): %s", time.Since(t6).Round(time.Millisecond))
}

func parseDuration(t *testing.T, s string) time.Duration {
	d, err := time.ParseDuration(s)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// stopAPI and startAPI stop the server's API server and bring it back:
// the test bed's kube-apiserver (a real k3s's is in the k3s that down
// stopped, and comes back with up).
func (cb *clusterBed) stopAPI() {
	if cb.k3s != "" {
		return
	}
	if err := cb.c.StopAPIServer(10 * time.Second); err != nil {
		cb.t.Fatal(err)
	}
}

func (cb *clusterBed) startAPI() {
	if cb.k3s != "" {
		return
	}
	t := cb.t
	if _, err := cb.c.RestartAPIServer(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(2 * time.Minute)
	for {
		err := cb.c.Client.Discovery().RESTClient().Get().AbsPath("/readyz").Do(t.Context()).Error()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("kube-apiserver not ready 2 minutes after its restart: %v", err)
		}
		time.Sleep(500 * time.Millisecond)
	}
}

// leftovers lists the processes of this run: any command line naming the
// cluster's directory or name (every node's name starts with it), other
// than the test bed's own components and this test.
func (cb *clusterBed) leftovers() []string {
	u := &upBed{t: cb.t, c: cb.c, dataDir: cb.c.Dir}
	var out []string
	for _, l := range u.leftovers() {
		// The agents' containerd runs under nodeboot now: down must end
		// it, so only the bed's own (the server's, excluded by PID) and
		// its nsenter are not this run's.
		if !strings.Contains(l, "nsenter --net=") {
			out = append(out, l)
		}
	}
	return out
}

// cleanup stops what a failed test left running (down on every node, then
// SIGKILL) and keeps the nodes' logs.
func (cb *clusterBed) cleanup() {
	t := cb.t
	for _, n := range cb.nodes {
		if t.Failed() || os.Getenv("E2E_VERBOSE") != "" {
			for _, name := range []string{"nodeboot.log", "k3s.log"} {
				b, _ := os.ReadFile(filepath.Join(n.dataDir, "logs", name))
				lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
				if len(lines) > 100 {
					lines = lines[len(lines)-100:]
				}
				t.Logf("===== %s: last 100 lines of %s =====\n%s", n.short, name, strings.Join(lines, "\n"))
			}
		}
		if d := os.Getenv("E2E_LOG_DIR"); d != "" {
			dst := filepath.Join(d, t.Name())
			if err := os.MkdirAll(dst, 0o755); err == nil {
				for _, name := range []string{"nodeboot.log", "k3s.log", "events.jsonl"} {
					src := filepath.Join(n.dataDir, "logs", name)
					if name == "events.jsonl" {
						src = filepath.Join(n.dataDir, name)
					}
					if b, err := os.ReadFile(src); err == nil {
						_ = os.WriteFile(filepath.Join(dst, n.short+"-"+name), b, 0o644)
					}
				}
			}
		}
	}
	for _, n := range slices.Backward(cb.nodes) {
		if n.down {
			continue
		}
		if _, err := os.Stat(filepath.Join(n.dataDir, "nodeboot.lock")); err == nil && n.lockFree() != nil {
			cmd, err := sandbox.Command(sandbox.Options{NetNS: n.netNS(), Spec: n.sandboxSpec()}, cb.nodeboot, "down", "--data-dir", n.dataDir, "--timeout", "30s")
			if err == nil {
				cmd.Env = append(append(cmd.Env, "NODEBOOT_CONFIG="+n.config), n.env...)
				out, err := cmd.CombinedOutput()
				t.Logf("cleanup: %s: nodeboot down: %v\n%s", n.short, err, out)
			}
		}
	}
	for _, l := range cb.leftovers() {
		f := strings.Fields(l)
		var pid int
		if _, err := fmt.Sscan(strings.TrimSuffix(f[1], ":"), &pid); err == nil {
			t.Logf("cleanup: SIGKILL%s", l)
			_ = unix.Kill(pid, unix.SIGKILL)
		}
	}
}

// clusterStandIn is what a node's k3s stand-in does.
type clusterStandIn struct {
	Role string // server or agent
	// AdminKubeconfig (server) is copied to --write-kubeconfig.
	AdminKubeconfig string
	// Token: a server writes it to K3S-DATA-DIR/server/node-token; an
	// agent refuses to start unless its --token-file holds it.
	Token string
	// ServerURL (agent): --server must be this.
	ServerURL string
	// KubeletKubeconfig (agent) is copied to
	// K3S-DATA-DIR/agent/kubelet.kubeconfig, as k3s agent writes it.
	KubeletKubeconfig string
	// Kubelet is the kubelet's argv, exec'd last.
	Kubelet []string
	// Containerd (agent), when set, is the node's containerd config: the
	// stand-in starts containerd with it (logging to ContainerdLog) and
	// waits for ContainerdSocket before it execs the kubelet, as k3s
	// starts its containerd before its kubelet; so containerd runs under
	// nodeboot, in the node's sandbox.
	Containerd, ContainerdSocket, ContainerdLog string
}

// writeClusterStandIn writes TestCluster's k3s stand-in to path (see
// TestCluster and clusterStandIn). It logs its arguments as TestUp's does.
func writeClusterStandIn(path string, s clusterStandIn) error {
	q := make([]string, len(s.Kubelet))
	for i, a := range s.Kubelet {
		q[i] = upShQuote(a)
	}
	containerd := ""
	if s.Containerd != "" {
		// The socket of a containerd SIGKILLed with its kubelet (step 3)
		// stays: removed first, or the wait would not wait.
		containerd = fmt.Sprintf(`rm -f %[2]s
containerd --config %[1]s >>%[3]s 2>&1 &
i=0
while [ ! -S %[2]s ]; do
	i=$((i+1))
	[ $i -le 600 ] || { echo "k3s-wrapper: containerd: no socket %[2]s after 60 s" >&2; exit 1; }
	sleep 0.1
done
echo "k3s-wrapper: containerd up after $i waits"
`, upShQuote(s.Containerd), upShQuote(s.ContainerdSocket), upShQuote(s.ContainerdLog))
	}
	script := fmt.Sprintf(`#!/bin/sh
# k3s stand-in written by the e2e tests (writeClusterStandIn): no k3s binary
# exists offline. It does what nodeboot relies on of k3s %[1]s, then execs
# the node's kubelet.
echo "%[2]s $*"
role=$1; shift
[ "$role" = %[1]s ] || { echo "k3s-wrapper: role $role, want %[1]s" >&2; exit 2; }
kubeconfig= mode=0600 datadir= server= tokenfile=
while [ $# -gt 0 ]; do
	case "$1" in
	--write-kubeconfig|-o) kubeconfig=$2; shift ;;
	--write-kubeconfig-mode) mode=$2; shift ;;
	--data-dir|-d) datadir=$2; shift ;;
	--server|-s) server=$2; shift ;;
	--token-file) tokenfile=$2; shift ;;
	--token|-t) echo "k3s-wrapper: the token is on the command line" >&2; exit 2 ;;
	esac
	shift
done
[ -n "$datadir" ] || { echo "k3s-wrapper: no --data-dir" >&2; exit 2; }
umask 077
mkdir -p "$datadir/server" "$datadir/agent" || exit 1
case $role in
server)
	[ -n "$kubeconfig" ] || { echo "k3s-wrapper: no --write-kubeconfig" >&2; exit 2; }
	cp %[3]s "$kubeconfig.tmp" && chmod "$mode" "$kubeconfig.tmp" && mv -f "$kubeconfig.tmp" "$kubeconfig" || exit 1
	printf '%%s\n' %[4]s > "$datadir/server/token.tmp" && mv -f "$datadir/server/token.tmp" "$datadir/server/node-token" || exit 1
	echo "k3s-wrapper: wrote $kubeconfig and $datadir/server/node-token"
	;;
agent)
	[ "$server" = %[5]s ] || { echo "k3s-wrapper: --server '$server', want %[5]s" >&2; exit 1; }
	[ -n "$tokenfile" ] && [ "$(cat "$tokenfile")" = %[4]s ] || { echo "k3s-wrapper: the token in '$tokenfile' is not the server's" >&2; exit 1; }
	cp %[6]s "$datadir/agent/kubelet.kubeconfig.tmp" && mv -f "$datadir/agent/kubelet.kubeconfig.tmp" "$datadir/agent/kubelet.kubeconfig" || exit 1
	echo "k3s-wrapper: joined $server; wrote $datadir/agent/kubelet.kubeconfig"
	;;
esac
%[8]sexec %[7]s
`, s.Role, upWrapperLog, upShQuote(s.AdminKubeconfig), upShQuote(s.Token), upShQuote(s.ServerURL),
		upShQuote(s.KubeletKubeconfig), strings.Join(q, " "), containerd)
	return os.WriteFile(path, []byte(script), 0o700)
}

// TestClusterK3s is TestCluster with a real k3s: a k3s server and two k3s
// agents (`nodeboot up --role agent --server URL --token-file F`), each
// in its own network namespace on the bridge and its own sandbox. Every
// k3s on a machine keeps state at fixed host paths (/run/k3s/containerd,
// /run/flannel, /var/lib/kubelet, /var/lib/cni, /etc/rancher), which
// separate machines or gVisor sandboxes do not share and a simulated
// sandbox would: each node's sandbox has its own /run (tmpfs) and binds
// its own copies of the others (sandbox.Spec.Binds), as k3s's rootless
// mode does for itself. It needs NODEBOOT_E2E_K3S.
func TestClusterK3s(t *testing.T) {
	k3s := os.Getenv("NODEBOOT_E2E_K3S")
	if k3s == "" {
		t.Skip("NODEBOOT_E2E_K3S not set: point it at a k3s binary to run a k3s server and two agents through `nodeboot up`")
	}
	t0 := time.Now()
	c := cluster.New(t, cluster.Options{NoControlPlane: true})
	cb := newClusterBed(t, c)
	cb.k3s = k3s
	// k3s agents take half a minute to be Ready: longer graces.
	cb.graces = graces{serverStart: "2m", server: "60s", agentStart: "60s", agent: "15s"}
	serverURL := "https://" + cluster.LANServerIP + ":6443"
	common := []string{"--disable=traefik,servicelb,metrics-server,local-storage"}
	add := func(short, name, netns, role, ip string) {
		n := cb.add(short, name, netns, role)
		fs := filepath.Join(c.Dir, short+"-fs")
		var binds []sandbox.Bind
		for _, target := range []string{"/var/lib/kubelet", "/var/lib/cni", "/etc/rancher", "/var/log/pods", "/var/log/containers"} {
			src := filepath.Join(fs, strings.ReplaceAll(strings.TrimPrefix(target, "/"), "/", "-"))
			if err := os.MkdirAll(src, 0o700); err != nil {
				t.Fatal(err)
			}
			binds = append(binds, sandbox.Bind{Source: src, Target: target})
		}
		n.spec.Binds = binds
		cb.k3sArgs[short] = append([]string{"--node-ip=" + ip}, common...)
		if role == "agent" {
			cb.k3sArgs[short] = []string{"--node-ip=" + ip}
		}
	}
	// The LAN first: the server's k3s takes its node IP there.
	a1, err := c.AddNode("agent1")
	if err != nil {
		t.Fatal(err)
	}
	a2, err := c.AddNode("agent2")
	if err != nil {
		t.Fatal(err)
	}
	add("server", c.Name, c.NetNS, "server", cluster.LANServerIP)
	add("agent1", a1.Name, a1.NetNS, "agent", a1.IP)
	add("agent2", a2.Name, a2.NetNS, "agent", a2.IP)
	cb.onServerUp = func() {
		if err := c.UseKubeconfig(filepath.Join(cb.nodes[0].dataDir, "kubeconfig.yaml")); err != nil {
			t.Fatal(err)
		}
	}
	t.Logf("setup (3 namespaces on a bridge, build): %s", time.Since(t0).Round(time.Millisecond))
	cb.scenario(serverURL)
	t.Logf("TestClusterK3s total %s", time.Since(t0).Round(time.Millisecond))
}

// podsOnAgents (step 2b) runs a pod on each agent, on the pod network
// (the test bed's: the host network), from nodeboot's smoke image that the
// agent imported at its start (the test bed's: cb.smoke, beforePods), and
// reads its line through the server's API (the agent's kubelet serves
// it); then starts a pod on each that stays (keep-AGENT).
func (cb *clusterBed) podsOnAgents(st map[string]*upStatus, agents []*clusterNode) {
	t := cb.t
	t0 := time.Now()
	if cb.beforePods != nil {
		cb.beforePods()
	}
	// The test bed has no pod network across nodes: its pods use the
	// host's (the node's namespace).
	hostNet, network := cb.k3s == "", "pod network"
	if hostNet {
		network = "host network"
	}
	for _, a := range agents {
		smoke := cb.smoke
		if smoke == "" {
			pause := st[a.short].State.PauseImage
			smoke = strings.Replace(pause, "/pause:", "/smoke:", 1)
			if smoke == pause {
				t.Fatalf("%s: pause image %q is not nodeboot's", a.short, pause)
			}
		}
		p := testPod("on-"+a.short, smoke, []string{images.BinaryPath, "smoke-echo"}, podOpts{Node: a.name, HostNetwork: hostNet, NoToken: true})
		p.Spec.Containers[0].Env = []corev1.EnvVar{{Name: "NODE_NAME", Value: a.name}}
		start := time.Now()
		out, _ := runPodLog(t, cb.c, p)
		if want := images.SmokeLine + a.name; out != want {
			t.Errorf("pod on %s printed %q, want %q", a.short, out, want)
		}
		t.Logf("pod on %s (%s): %q, read back %s after create", a.short, network, out, time.Since(start).Round(time.Millisecond))
		zero := int64(0)
		_ = cb.c.Client.CoreV1().Pods("default").Delete(t.Context(), p.Name, metav1.DeleteOptions{GracePeriodSeconds: &zero})
		// One that stays, for the outage of step 4.
		k := testPod("keep-"+a.short, smoke, []string{images.BinaryPath, "smoke-cat", "--wait", "/sys/fs/cgroup/cgroup.controllers"}, podOpts{Node: a.name, HostNetwork: hostNet, NoToken: true})
		k.Spec.RestartPolicy = corev1.RestartPolicyAlways
		k.Spec.Containers[0].Env = []corev1.EnvVar{{Name: "NODE_NAME", Value: a.name}}
		if _, err := cb.c.Client.CoreV1().Pods("default").Create(t.Context(), k, metav1.CreateOptions{}); err != nil {
			t.Fatalf("create pod %s: %v", k.Name, err)
		}
	}
	cb.keptPods(agents)
	for _, a := range agents {
		// The container under nodeboot, as its containerd is.
		if pid := keepPID(a.name); pid == 0 || tracerPID(pid) == 0 {
			t.Errorf("%s: keep pod's process %d not found or not traced (TracerPid %d)", a.short, pid, tracerPID(pid))
		}
	}
	t.Logf("step 2b (a pod on each agent, and one that stays): %s", time.Since(t0).Round(time.Millisecond))
}

// keptPods waits until every agent's keep-AGENT pod runs and is Ready,
// and returns each one's container ID by pod name.
func (cb *clusterBed) keptPods(agents []*clusterNode) map[string]string {
	t := cb.t
	ids := map[string]string{}
	var last error
	if !poll(2*time.Minute, func() bool {
		for _, a := range agents {
			p, err := cb.c.Client.CoreV1().Pods("default").Get(t.Context(), "keep-"+a.short, metav1.GetOptions{})
			if err != nil {
				last = err
				return false
			}
			if p.Status.Phase != corev1.PodRunning || len(p.Status.ContainerStatuses) != 1 || !p.Status.ContainerStatuses[0].Ready {
				last = fmt.Errorf("pod %s: %s, %+v", p.Name, p.Status.Phase, p.Status.ContainerStatuses)
				return false
			}
			ids[p.Name] = p.Status.ContainerStatuses[0].ContainerID
		}
		return true
	}) {
		t.Fatalf("the agents' keep pods are not running and Ready within 2m: %v", last)
	}
	return ids
}

// keepPID returns the host PID of the container process of node's keep
// pod (smoke-cat --wait with NODE_NAME=node), 0 when there is none.
func keepPID(node string) int {
	procs, _ := os.ReadDir("/proc")
	for _, e := range procs {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		cmd, _ := os.ReadFile("/proc/" + e.Name() + "/cmdline")
		if !strings.Contains(string(cmd), "smoke-cat\x00--wait") {
			continue
		}
		env, _ := os.ReadFile("/proc/" + e.Name() + "/environ")
		if slices.Contains(strings.Split(string(env), "\x00"), "NODE_NAME="+node) {
			return pid
		}
	}
	return 0
}

// cmdlinePID returns a process whose NUL-separated command line starts
// with prefix, 0 when there is none.
func cmdlinePID(prefix string) int {
	procs, _ := os.ReadDir("/proc")
	for _, e := range procs {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if cmd, _ := os.ReadFile("/proc/" + e.Name() + "/cmdline"); strings.HasPrefix(string(cmd), prefix) {
			return pid
		}
	}
	return 0
}

// tracerPID is pid's TracerPid (0: not traced, or no such process).
func tracerPID(pid int) int {
	if pid <= 0 {
		return 0
	}
	b, _ := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "TracerPid:"); ok {
			n, _ := strconv.Atoi(strings.TrimSpace(v))
			return n
		}
	}
	return 0
}
