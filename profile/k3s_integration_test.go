//go:build linux && !nointegration

package profile_test

import (
	"bytes"
	"context"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nodeboot/nodeboot/bootstrap"
	"github.com/nodeboot/nodeboot/internal/testenv"
	"github.com/nodeboot/nodeboot/profile"
)

// TestIntegrationK3sProfile checks the built-in k3s profile by what its
// consumers get through the tracer: a tree seeded from it, and a real
// shell under bootstrap.Launch that reads and writes the files the way
// kubelet, k3s, kube-proxy, runc and cAdvisor do. The expected values are
// the consumers' (their sources are named at each), not a copy of
// k3s.yaml: a profile that changes a value they need fails here, one that
// changes a value nobody checks does not.
//
// Every write puts back the value just read, so a write that escaped the
// fake tree would leave the host as it was; the host's values are checked
// before and after all the same.
func TestIntegrationK3sProfile(t *testing.T) {
	testenv.Integration(t)
	testenv.RequireRoot(t, "the k3s profile's cgroup tree and ptrace run as root here")
	for _, tool := range []string{"sh", "cat", "stat", "grep", "head", "uname", "readlink"} {
		testenv.LookPath(t, tool)
	}
	p, err := profile.Load("k3s")
	if err != nil {
		t.Fatalf("load k3s: %v", err)
	}

	// kubelet: setupKernelTunables (pkg/kubelet/cm/container_manager_linux.go)
	// with k8s.io/component-helpers/node/util/sysctl's desired values. A
	// read error is fatal; a differing value is written, or with
	// --protect-kernel-defaults is fatal: so the tree must already hold
	// exactly these.
	kubelet := map[string]int{
		"vm/overcommit_memory":      1,        // VMOvercommitMemoryAlways
		"vm/panic_on_oom":           0,        // VMPanicOnOOMInvokeOOMKiller
		"kernel/panic":              10,       // KernelPanicRebootTimeout
		"kernel/panic_on_oops":      1,        // KernelPanicOnOopsAlways
		"kernel/keys/root_maxkeys":  1000000,  // RootMaxKeysSetting
		"kernel/keys/root_maxbytes": 25000000, // RootMaxBytesSetting
	}
	// k3s: syssetup.Configure (pkg/agent/syssetup/setup.go) reads each and
	// writes k3s's value when it differs (IPv6 and bridge filtering on);
	// kube-proxy: route_localnet (it fails when it cannot set it to 1),
	// conntrack. runc: the two pod sysctls it writes on kernels >= 4.11.
	// They must exist and take a write.
	settable := []string{
		"net/ipv4/conf/all/forwarding", "net/ipv4/conf/default/forwarding",
		"net/ipv6/conf/all/forwarding", "net/ipv6/conf/default/forwarding",
		"net/core/devconf_inherit_init_net",
		"net/bridge/bridge-nf-call-iptables", "net/bridge/bridge-nf-call-ip6tables",
		"net/netfilter/nf_conntrack_max",
		"net/netfilter/nf_conntrack_tcp_timeout_established", "net/netfilter/nf_conntrack_tcp_timeout_close_wait",
		"net/netfilter/nf_conntrack_tcp_be_liberal",
		"net/netfilter/nf_conntrack_udp_timeout", "net/netfilter/nf_conntrack_udp_timeout_stream",
		"net/ipv4/conf/all/route_localnet", "net/ipv4/conf/default/route_localnet",
		"net/ipv4/ip_forward",
		"net/ipv4/ip_unprivileged_port_start", "net/ipv4/ping_group_range",
	}
	// k3s: loadKernelModule stats /sys/module/NAME and runs modprobe when
	// it is missing (its nft-* names are modprobe aliases, never in
	// /sys/module, so k3s warns about them on any kernel).
	modules := []string{"overlay", "nf_conntrack", "br_netfilter", "iptable_nat", "iptable_filter", "ip6table_nat", "ip6table_filter"}

	var script strings.Builder
	for _, name := range append(slices.Sorted(maps.Keys(kubelet)), settable...) {
		// kubelet and k3s write with os.WriteFile: O_WRONLY|O_CREAT|O_TRUNC.
		fmt.Fprintf(&script, "v=$(cat /proc/sys/%[1]s) && printf '%%s\\n' \"$v\" > /proc/sys/%[1]s && echo %[1]s=\"$v\" && echo %[1]s.after=\"$(cat /proc/sys/%[1]s)\"\n", name)
	}
	for _, m := range modules {
		fmt.Fprintf(&script, "test -d /sys/module/%[1]s && echo module.%[1]s=yes\n", m)
	}
	script.WriteString(`echo hashsize=$(cat /sys/module/nf_conntrack/parameters/hashsize)
echo pid_max=$(cat /proc/sys/kernel/pid_max)
echo threads_max=$(cat /proc/sys/kernel/threads-max)
echo osrelease=$(cat /proc/sys/kernel/osrelease)
echo uname=$(uname -r)
echo boot_id=$(cat /proc/sys/kernel/random/boot_id)
echo boot_id2=$(cat /proc/sys/kernel/random/boot_id)
echo cgroupfs=$(stat -f -c %T /sys/fs/cgroup)
exec 9</sys/fs/cgroup
echo cgroupfd=$(readlink /proc/self/fd/9)
exec 9<&-
cd /sys/fs/cgroup && echo cgroupcwd=$(pwd -P) && echo cgroupselfcwd=$(readlink /proc/self/cwd); cd /
echo cgroupmount=$(grep -c ' /sys/fs/cgroup .* - cgroup2 ' /proc/self/mountinfo)
echo swaps=$(head -n1 /proc/swaps | cut -c1-8)
echo partitions=$(head -n1 /proc/partitions | tr -s ' ')
echo diskstats=$(test -r /proc/diskstats && echo readable)
echo kmsg=$( (exec 3</dev/kmsg) && echo opens)
`)
	// cAdvisor and kubelet statfs the containerd root, an overlay in
	// gVisor: the profile says ext4 for every overlay. A private mount
	// namespace with an overlay of our own shows it, where the kernel
	// lets us make one.
	ovl := t.TempDir()
	fmt.Fprintf(&script, `if unshare -m sh -c 'cd %[1]s && mkdir l u w m && mount -t overlay overlay -o lowerdir=l,upperdir=u,workdir=w m && echo overlay=$(stat -f -c %%T m)' 2>/dev/null; then :; fi
`, ovl)

	hostBefore := readHostSysctls(t, append(slices.Sorted(maps.Keys(kubelet)), settable...))
	out := launchK3s(t, p, script.String())
	if after := readHostSysctls(t, append(slices.Sorted(maps.Keys(kubelet)), settable...)); !maps.Equal(hostBefore, after) {
		t.Errorf("host sysctls changed under the test:\nbefore %v\nafter  %v", hostBefore, after)
	}
	kv := map[string]string{}
	for _, l := range strings.Split(out, "\n") {
		if k, v, ok := strings.Cut(l, "="); ok {
			kv[k] = v
		}
	}

	for _, name := range slices.Sorted(maps.Keys(kubelet)) {
		if got, want := kv[name], strconv.Itoa(kubelet[name]); got != want || kv[name+".after"] != want {
			t.Errorf("kubelet reads /proc/sys/%s = %q (after its write: %q), wants %s", name, got, kv[name+".after"], want)
		}
	}
	for _, name := range settable {
		if got, after := kv[name], kv[name+".after"]; got == "" || after != got {
			t.Errorf("/proc/sys/%s: read %q, after writing it back %q; k3s, kube-proxy or runc set it", name, got, after)
		}
	}
	// kube-proxy needs route_localnet at 1 and fails when it cannot set it.
	if got := kv["net/ipv4/conf/all/route_localnet"]; got != "1" {
		t.Errorf("route_localnet = %q, kube-proxy wants 1", got)
	}
	// Forwarding on, as k3s sets it and pod networking needs it.
	for _, name := range []string{"net/ipv4/ip_forward", "net/ipv4/conf/all/forwarding", "net/bridge/bridge-nf-call-iptables"} {
		if got := kv[name]; got != "1" {
			t.Errorf("%s = %q, k3s wants 1", name, got)
		}
	}
	// kube-proxy sets conntrack max to max(32768 per CPU, 131072) when it
	// is lower, and the hash size to a quarter of it when that is lower.
	ctMax, _ := strconv.Atoi(kv["net/netfilter/nf_conntrack_max"])
	if hs, _ := strconv.Atoi(kv["hashsize"]); ctMax == 0 || hs < ctMax/4 {
		t.Errorf("nf_conntrack_max %q, hashsize %q: kube-proxy wants hashsize >= max/4", kv["net/netfilter/nf_conntrack_max"], kv["hashsize"])
	}
	if want := max(32768*runtime.NumCPU(), 131072); ctMax < want && runtime.NumCPU() <= 4 {
		t.Errorf("nf_conntrack_max = %d; kube-proxy and k3s want at least %d here", ctMax, want)
	}
	for _, m := range modules {
		if kv["module."+m] != "yes" {
			t.Errorf("/sys/module/%s is missing: k3s would run modprobe %s", m, m)
		}
	}
	// kubelet's pid limit is min(pid_max, threads-max): the host's.
	for key, file := range map[string]string{"pid_max": "pid_max", "threads_max": "threads-max"} {
		host := strings.TrimSpace(readFile(t, "/proc/sys/kernel/"+file))
		if kv[key] != host {
			t.Errorf("/proc/sys/kernel/%s = %q under the profile, the host's is %q", file, kv[key], host)
		}
	}
	// runc compares uname's release; the sysctl must say the same.
	if kv["osrelease"] == "" || kv["osrelease"] != kv["uname"] {
		t.Errorf("osrelease %q, uname -r %q: want them equal", kv["osrelease"], kv["uname"])
	}
	uuid := regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$`)
	if !uuid.MatchString(kv["boot_id"]) || kv["boot_id"] != kv["boot_id2"] {
		t.Errorf("boot_id %q then %q: kubelet and cAdvisor want one UUID", kv["boot_id"], kv["boot_id2"])
	}
	for key, want := range map[string]string{
		"cgroupfs":    "cgroup2fs", // CGROUP2_SUPER_MAGIC: kubelet, k3s and cAdvisor pick cgroup v2
		"cgroupmount": "1",         // cAdvisor and runc find the cgroup2 mount in mountinfo
		// runc (libcontainer/cgroups/file.go) opens /sys/fs/cgroup and
		// fails unless /proc/thread-self/fd/N reads back as that path;
		// a cwd there reads as the guest path too.
		"cgroupfd":      "/sys/fs/cgroup",
		"cgroupcwd":     "/sys/fs/cgroup",
		"cgroupselfcwd": "/sys/fs/cgroup",
		"swaps":         "Filename", // kubelet's swap check reads the lines after this header
		"partitions":    "major minor #blocks name",
		"diskstats":     "readable",
		"kmsg":          "opens", // kubelet's OOM watcher opens /dev/kmsg
	} {
		if kv[key] != want {
			t.Errorf("%s = %q, want %q", key, kv[key], want)
		}
	}
	if got, ok := kv["overlay"]; !ok {
		t.Logf("no overlay mount in a private namespace here: overlay=ext4 not checked")
	} else if got != "ext2/ext3" { // coreutils' name for EXT4_SUPER_MAGIC
		t.Errorf("statfs of an overlay mount says %q, want ext2/ext3 (EXT4_SUPER_MAGIC)", got)
	}
	if t.Failed() {
		t.Logf("output of the traced shell:\n%s", out)
	}
}

// launchK3s runs script with /bin/sh on profile p's fake kernel, in a tree
// of its own, and returns its stdout.
func launchK3s(t *testing.T, p *profile.Profile, script string) string {
	t.Helper()
	var out, errb bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	proc, err := bootstrap.Launch(ctx, bootstrap.LaunchConfig{
		Profile: p,
		Root:    filepath.Join(t.TempDir(), "root"),
		Path:    "/bin/sh",
		Args:    []string{"sh", "-c", script},
		Stdout:  &out,
		Stderr:  &errb,
	})
	if err != nil {
		t.Fatalf("Launch: %v", err)
	}
	defer proc.Close()
	exit, err := proc.Wait()
	if err != nil {
		t.Fatalf("Wait: %v", err)
	}
	if errb.Len() > 0 || exit.Code != 0 || exit.Signal != 0 {
		t.Logf("traced shell: %s, stderr:\n%s", exit, errb.String())
	}
	return out.String()
}

// readHostSysctls reads the host's values of names natively ("" for a
// file the host lacks).
func readHostSysctls(t *testing.T, names []string) map[string]string {
	t.Helper()
	m := map[string]string{}
	for _, n := range names {
		b, _ := os.ReadFile("/proc/sys/" + n)
		m[n] = string(b)
	}
	return m
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
