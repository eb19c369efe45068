package interceptor

import (
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/nodeboot/nodeboot/interceptor/rules"
)

func TestNamespacedSysctl(t *testing.T) {
	for _, c := range []struct{ path, want string }{
		{"/proc/sys/net/ipv4/ip_unprivileged_port_start", "net"},
		{"/proc/sys/net", "net"},
		{"/proc/sys/netfoo", ""},
		{"/proc/sys/kernel/shm_rmid_forced", "ipc"},
		{"/proc/sys/kernel/sem", "ipc"},
		{"/proc/sys/fs/mqueue/msg_max", "ipc"},
		{"/proc/sys/kernel/hostname", "uts"},
		{"/proc/sys/kernel/panic", ""},
		{"/proc/sys/vm/overcommit_memory", ""},
		{"/proc/net/dev", ""},
	} {
		if got := namespacedSysctl(c.path); got != c.want {
			t.Errorf("namespacedSysctl(%s) = %q, want %q", c.path, got, c.want)
		}
	}
}

// TestIntegrationNamespacedSysctl: a sysctl the kernel keeps per network
// or UTS namespace, written by a process in a namespace of its own (a
// pod), changes that namespace's copy: not the tree, not the host's. The
// same write from nodeboot's own namespace lands in the tree.
func TestIntegrationNamespacedSysctl(t *testing.T) {
	requireIntegration(t)
	requireRoot(t, "unshare -n/-u needs CAP_SYS_ADMIN")
	if _, err := exec.LookPath("unshare"); err != nil {
		t.Skipf("needs unshare (util-linux): %v", err)
	}
	const port = "/proc/sys/net/ipv4/ip_unprivileged_port_start"
	// A per-namespace sysctl this kernel lacks, as gVisor lacks port's
	// (docs/gvisor.md item 3): a pod's write is discarded, not refused.
	const missing = "/proc/sys/net/ipv4/nodeboot_no_such_sysctl"
	hostBefore, err := os.ReadFile(port)
	if err != nil {
		t.Skipf("needs %s: %v", port, err)
	}
	hostName, _ := os.ReadFile("/proc/sys/kernel/hostname")
	for _, mode := range testModes {
		t.Run(mode.String(), func(t *testing.T) {
			tr := newFakeTree(t)
			script := `unshare -n sh -c 'echo 77 > ` + port + ` && echo "pod=$(cat ` + port + `)"'
unshare -u sh -c 'echo podname > /proc/sys/kernel/hostname && echo "uts=$(cat /proc/sys/kernel/hostname)"'
echo "node=$(cat ` + port + `)"
echo 66 > ` + port + ` && echo "nodewrite=$(cat ` + port + `)"
unshare -n sh -c 'echo 1 > ` + missing + ` && echo sink=ok; cat ` + missing + ` 2>/dev/null || echo sinkread=failed'`
			cfg := Config{Path: "/bin/sh", Args: []string{"sh", "-c", script}, Mode: mode,
				Env:   append(os.Environ(), "PATH=/usr/sbin:/usr/bin:/sbin:/bin"),
				Rules: rules.Rules{Redirects: []rules.Redirect{{Guest: "/proc/sys", Host: tr.PS}}}}
			r := runTraced(t, cfg)
			got := parseKV(r.stdout)
			want := map[string]string{"pod": "77", "uts": "podname", "node": strings.TrimSpace(string(hostBefore)), "nodewrite": "66",
				"sink": "ok", "sinkread": "failed"}
			for k, v := range want {
				if got[k] != v {
					t.Errorf("%s: %s=%q, want %q\n%s", describeRun(cfg), k, got[k], v, r.output())
				}
			}
			if b, _ := os.ReadFile(port); string(b) != string(hostBefore) {
				t.Errorf("the host's %s changed: %q, was %q", port, b, hostBefore)
			}
			if b, _ := os.ReadFile("/proc/sys/kernel/hostname"); string(b) != string(hostName) {
				t.Errorf("the host's hostname changed: %q, was %q", b, hostName)
			}
			if b, err := os.ReadFile(tr.PS + "/net/ipv4/ip_unprivileged_port_start"); err != nil || string(b) != "66\n" {
				t.Errorf("tree's copy: %q (%v), want the node's write 66 only", b, err)
			}
			if _, err := os.Stat(tr.PS + "/net/ipv4/nodeboot_no_such_sysctl"); err == nil {
				t.Errorf("the pod's write of a sysctl the kernel lacks was copied into the tree")
			}
			if _, err := os.Stat(tr.PS + "/kernel/hostname"); err == nil {
				t.Errorf("the pod's hostname write was copied into the tree")
			}
		})
	}
}
