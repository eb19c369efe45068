package e2e

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/nodeboot/nodeboot/e2e/cluster"
	"github.com/nodeboot/nodeboot/e2e/sandbox"
)

// TestK3s runs a real k3s through `nodeboot up` in the sandbox, with the
// same checks as TestNodeboot: Ready, stays Ready, host sysctls unchanged.
// It needs NODEBOOT_E2E_K3S=/path/to/k3s (a k3s binary is not a Go or
// Debian package, so the suite cannot fetch one).
func TestK3s(t *testing.T) {
	k3s := os.Getenv("NODEBOOT_E2E_K3S")
	if k3s == "" {
		t.Skip("NODEBOOT_E2E_K3S not set: point it at a k3s binary to run k3s through `nodeboot up`")
	}
	c := cluster.New(t, cluster.Options{NoControlPlane: true})
	nodeboot := filepath.Join(c.Dir, "nodeboot")
	build := exec.Command("go", "build", "-o", nodeboot, "./cmd/nodeboot")
	build.Dir = ".." // the root module, whose go.sum covers cmd/nodeboot
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if b, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build nodeboot: %v\n%s", err, b)
	}
	// `nodeboot up` seeds DATA-DIR/root, runs k3s under the interceptor
	// with its data in DATA-DIR/k3s and its kubeconfig at
	// DATA-DIR/kubeconfig.yaml (0600), and supervises it; the arguments
	// after -- go to k3s, after the ones nodeboot adds.
	dataDir := filepath.Join(c.Dir, "nodeboot-data")
	kubeconfig := filepath.Join(dataDir, "kubeconfig.yaml")
	cmd, err := sandbox.Command(sandbox.Options{NetNS: c.NetNS, Spec: sandbox.GVisor},
		nodeboot, "up", "--data-dir", dataDir, "--k3s", k3s, "--node-name", c.Name, "--",
		"--node-ip="+cluster.NodeIP, "--bind-address="+cluster.NodeIP,
		"--disable=traefik,servicelb,metrics-server,local-storage",
		// No --kubelet-arg=cgroup-root=c.CgroupRoot: that is a host
		// cgroup, and the kubelet under nodeboot sees the emulated tree,
		// where it does not exist (k3s stopped with "could not read
		// controllers for cgroup"). The emulated tree is the node's own.
	)
	if err != nil {
		t.Fatal(err)
	}
	up, err := c.Start("nodeboot-up", cmd)
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(3 * time.Minute)
	for {
		if _, err := os.Stat(kubeconfig); err == nil {
			break
		}
		if !up.Running() || time.Now().After(deadline) {
			t.Fatalf("k3s wrote no kubeconfig (running %v)\n%s", up.Running(), up.Tail(40))
		}
		time.Sleep(time.Second)
	}
	if err := c.UseKubeconfig(kubeconfig); err != nil {
		t.Fatal(err)
	}
	d, err := c.WaitReady(up, 5*time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("k3s: node %s Ready %s after start", c.Name, d.Round(time.Millisecond))
	checkHostSysctls(t, c, "at Ready")
	if err := c.StayReady(up, envDuration(t, "E2E_SOAK", cpuWindow(t))); err != nil {
		t.Fatal(err)
	}
	checkHostSysctls(t, c, "after the soak")
}
