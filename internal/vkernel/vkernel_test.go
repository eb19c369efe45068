package vkernel

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/nodeboot/nodeboot/interceptor"
	"github.com/nodeboot/nodeboot/profile"
)

func TestNormalizers(t *testing.T) {
	tests := []struct {
		name    string
		norm    func(string, string) (string, bool)
		cur, in string
		want    string
		ok      bool
	}{
		{"memory.max max", normBytes, "max", "max\n", "max", true},
		{"memory.max suffix", normBytes, "max", "100M\n", "104857600", true},
		{"memory.max rounds to pages", normBytes, "max", "4097", "4096", true},
		{"memory.max junk", normBytes, "max", "lots", "", false},
		{"cpu.max quota only keeps period", normCPUMax, "max 250000", "50000\n", "50000 250000", true},
		{"cpu.max max", normCPUMax, "50000 100000", "max", "max 100000", true},
		{"cpu.max both", normCPUMax, "max 100000", "20000 50000", "20000 50000", true},
		{"cpu.max tiny quota", normCPUMax, "max 100000", "10", "", false},
		{"cpu.weight", normRange(1, 10000), "100", "39\n", "39", true},
		{"cpu.weight zero", normRange(1, 10000), "100", "0", "", false},
		{"pids.max", normMaxInt, "max", "1024\n", "1024", true},
		{"pids.max negative", normMaxInt, "max", "-1", "", false},
		{"cpuset list", normList, "", "3,0-1,2\n", "0-3", true},
		{"cpuset gaps", normList, "", "0,2,4-5", "0,2,4-5", true},
		{"cpuset empty", normList, "0-1", "\n", "", true},
		{"io.weight bare", normIOWeight, "default 100", "50", "default 50", true},
		{"io.weight device", normIOWeight, "default 100", "8:0 200", "default 100\n8:0 200", true},
		{"io.max", normIOMax, "", "8:0 rbps=1000", "8:0 rbps=1000 wbps=max riops=max wiops=max", true},
		{"io.max back to max", normIOMax, "8:0 rbps=1000 wbps=max riops=max wiops=max", "8:0 rbps=max", "", true},
		{"cgroup.type", normType, "domain", "threaded\n", "threaded", true},
		{"freeze", normBool, "0", "1\n", "1", true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := tc.norm(tc.cur, tc.in)
			if ok != tc.ok || (ok && got != tc.want) {
				t.Errorf("norm(%q, %q) = %q, %v; want %q, %v", tc.cur, tc.in, got, ok, tc.want, tc.ok)
			}
		})
	}
}

// gvisorMountinfo is the shape of a gVisor sandbox's table: a 9p root
// whose source is "none", a read-only /proc/sys, and cgroup v1 mounts.
const gvisorMountinfo = `1 0 0:1 / / rw,relatime - 9p none rw,trans=fd,rfdno=4
2 1 0:2 / /proc rw,nosuid,nodev,noexec,relatime - proc none rw
3 2 0:2 /sys /proc/sys ro,nosuid,nodev,noexec,relatime - proc none ro
4 1 0:3 / /sys rw,nosuid,nodev,noexec,relatime - sysfs none rw
5 4 0:4 / /sys/fs/cgroup rw,relatime - tmpfs none rw
6 5 0:5 / /sys/fs/cgroup/cpu rw,relatime - cgroup none rw,cpu
7 1 0:6 / /var/lib/kubelet rw,relatime - overlay none rw
8 1 0:7 / /my\040dir rw - tmpfs none rw
`

func TestMountinfoTransform(t *testing.T) {
	v := mountView{
		cgroupMount: "/sys/fs/cgroup", cgroupMajor: 0, cgroupMinor: 99,
		types: map[int64]int64{0x01021997: 0xEF53, 0x794C7630: 0xEF53},
		statDev: func(point string) (uint32, uint32, bool) {
			switch point {
			case "/":
				return 0, 34, true
			case "/var/lib/kubelet":
				return 0, 35, true
			}
			return 0, 0, false
		},
	}
	ms, devs := v.transform(parseMountinfo(gvisorMountinfo))
	got := formatMountinfo(ms)
	want := `1 0 0:34 / / rw,relatime - ext4 /dev/vdnodeboot34 rw,trans=fd,rfdno=4
2 1 0:2 / /proc rw,nosuid,nodev,noexec,relatime - proc none rw
3 2 0:2 /sys /proc/sys rw,nosuid,nodev,noexec,relatime - proc none rw
4 1 0:3 / /sys rw,nosuid,nodev,noexec,relatime - sysfs none rw
7 1 0:35 / /var/lib/kubelet rw,relatime - ext4 /dev/vdnodeboot35 rw
8 1 0:7 / /my\040dir rw - tmpfs none rw
9 4 0:99 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime - cgroup2 cgroup2 rw
`
	if got != want {
		t.Errorf("mountinfo:\n%s\nwant:\n%s", got, want)
	}
	mounts := formatMounts(ms)
	if !strings.Contains(mounts, "cgroup2 /sys/fs/cgroup cgroup2 rw,nosuid,nodev,noexec,relatime 0 0\n") ||
		!strings.Contains(mounts, "/dev/vdnodeboot34 / ext4 rw,relatime,trans=fd,rfdno=4 0 0\n") {
		t.Errorf("mounts:\n%s", mounts)
	}
	wantDevs := []blockDev{{0, 34, "vdnodeboot34", "/"}, {0, 35, "vdnodeboot35", "/var/lib/kubelet"}}
	if len(devs) != len(wantDevs) {
		t.Fatalf("devs = %v, want %v", devs, wantDevs)
	}
	for i := range devs {
		if devs[i] != wantDevs[i] {
			t.Errorf("devs[%d] = %v, want %v", i, devs[i], wantDevs[i])
		}
	}
	// The diskstats and partitions lines name the same devices.
	ds := diskstats(devs)
	if !strings.HasPrefix(ds, "   0      34 vdnodeboot34 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0\n") {
		t.Errorf("diskstats:\n%s", ds)
	}
	pt := partitions(devs, func(string) uint64 { return 1024 })
	if !strings.Contains(pt, "major minor  #blocks  name\n\n   0       34       1024 vdnodeboot34\n") {
		t.Errorf("partitions:\n%q", pt)
	}
}

// testKernel makes a Kernel with every dynamic kind in a temporary root.
func testKernel(t *testing.T) *Kernel {
	t.Helper()
	p := &profile.Profile{Name: "t", Dynamic: []profile.Dynamic{
		{Path: "/sys/fs/cgroup", Kind: profile.KindCgroup2},
		{Path: "/proc/self/mountinfo", Kind: profile.KindMountinfo},
		{Path: "/proc/swaps", Kind: profile.KindSwaps},
		{Path: "/dev/kmsg", Kind: profile.KindKmsg},
	}, FSTypes: []string{"/sys/fs/cgroup=cgroup2"}}
	k, err := New(filepath.Join(t.TempDir(), "root"), p, Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { k.Close() })
	return k
}

// serve runs one request as the tracer would, doing the syscall itself.
func serve(t *testing.T, k *Kernel, op interceptor.FileOp, guest string, write bool, do func(host string) error) (string, error) {
	t.Helper()
	req := &interceptor.FileRequest{PID: os.Getpid(), TGID: os.Getpid(), Op: op, Guest: guest, Write: write,
		Create: op == interceptor.OpMkdir}
	if !k.Serves(guest) {
		t.Fatalf("Serves(%s) = false", guest)
	}
	host := k.Serve(req)
	if host == "" {
		host = guest
	}
	var err error
	if do != nil {
		err = do(host)
	}
	if req.WantExit {
		ret := int64(0)
		if errno, ok := err.(unix.Errno); ok {
			ret = -int64(errno)
		} else if err != nil {
			ret = -1
		}
		k.Done(req, ret)
	}
	return host, err
}

func readGuest(t *testing.T, k *Kernel, guest string) string {
	t.Helper()
	var data []byte
	_, err := serve(t, k, interceptor.OpOpen, guest, false, func(h string) (err error) {
		data, err = os.ReadFile(h)
		return err
	})
	if err != nil {
		t.Fatalf("read %s: %v", guest, err)
	}
	return string(data)
}

func writeGuest(t *testing.T, k *Kernel, guest, s string) {
	t.Helper()
	if _, err := serve(t, k, interceptor.OpOpen, guest, true, func(h string) error {
		return os.WriteFile(h, []byte(s), 0o644)
	}); err != nil {
		t.Fatalf("write %s: %v", guest, err)
	}
}

func TestCgroupTree(t *testing.T) {
	k := testKernel(t)
	const cg = "/sys/fs/cgroup"
	mkdir := func(p string) error {
		_, err := serve(t, k, interceptor.OpMkdir, p, false, func(h string) error { return unix.Mkdir(h, 0o755) })
		return err
	}
	rmdir := func(p string) error {
		_, err := serve(t, k, interceptor.OpRmdir, p, false, func(h string) error { return unix.Rmdir(h) })
		return err
	}
	if got := readGuest(t, k, cg+"/cgroup.controllers"); got != "cpuset cpu io memory pids\n" {
		t.Errorf("root controllers = %q", got)
	}
	if err := mkdir(cg + "/kubepods"); err != nil {
		t.Fatal(err)
	}
	if got := readGuest(t, k, cg+"/kubepods/cgroup.subtree_control"); got != "\n" {
		t.Errorf("new subtree_control = %q", got)
	}
	writeGuest(t, k, cg+"/kubepods/cgroup.subtree_control", "+pids +memory +bogus")
	if got := readGuest(t, k, cg+"/kubepods/cgroup.subtree_control"); got != "memory pids\n" {
		t.Errorf("subtree_control after +pids +memory = %q", got)
	}
	if err := mkdir(cg + "/kubepods/pod"); err != nil {
		t.Fatal(err)
	}
	if got := readGuest(t, k, cg+"/kubepods/pod/cgroup.controllers"); got != "memory pids\n" {
		t.Errorf("child controllers = %q", got)
	}
	if _, err := os.Stat(k.cg.host + "/kubepods/pod/cpu.max"); err == nil {
		t.Errorf("cpu.max exists in a cgroup without the cpu controller")
	}

	// Move this process into the pod: /proc/PID/cgroup follows.
	me := os.Getpid()
	writeGuest(t, k, cg+"/kubepods/pod/cgroup.procs", strconv.Itoa(me)+"\n")
	if got := readGuest(t, k, "/proc/"+strconv.Itoa(me)+"/cgroup"); got != "0::/kubepods/pod\n" {
		t.Errorf("/proc/self/cgroup = %q", got)
	}
	if got := readGuest(t, k, cg+"/kubepods/pod/cgroup.procs"); got != strconv.Itoa(me)+"\n" {
		t.Errorf("pod cgroup.procs = %q", got)
	}
	if got := readGuest(t, k, cg+"/kubepods/cgroup.events"); got != "populated 1\nfrozen 0\n" {
		t.Errorf("kubepods cgroup.events = %q", got)
	}
	if got := readGuest(t, k, cg+"/kubepods/pod/pids.current"); got == "0\n" {
		t.Errorf("pids.current = %q with this process in the cgroup", got)
	}

	// Busy cgroups: EBUSY, as the kernel's.
	if err := rmdir(cg + "/kubepods/pod"); err != unix.EBUSY {
		t.Errorf("rmdir of a populated cgroup: %v, want EBUSY", err)
	}
	if err := rmdir(cg + "/kubepods"); err != unix.EBUSY {
		t.Errorf("rmdir of a cgroup with a child: %v, want EBUSY", err)
	}
	writeGuest(t, k, cg+"/cgroup.procs", "0\n") // 0 is the writer itself
	if got := k.CgroupOf(me); got != "/" {
		t.Errorf("after writing 0 to the root's cgroup.procs, cgroup = %s", got)
	}
	if err := rmdir(cg + "/kubepods/pod"); err != nil {
		t.Errorf("rmdir of an empty cgroup: %v", err)
	}
	if got := readGuest(t, k, cg+"/kubepods/cgroup.stat"); got != "nr_descendants 0\nnr_dying_descendants 0\n" {
		t.Errorf("cgroup.stat after rmdir = %q", got)
	}

	// Values, and writes the kernel would refuse.
	writeGuest(t, k, cg+"/kubepods/memory.max", "1G")
	writeGuest(t, k, cg+"/kubepods/pids.max", "nonsense")
	if got := readGuest(t, k, cg+"/kubepods/memory.max"); got != "1073741824\n" {
		t.Errorf("memory.max = %q", got)
	}
	if got := readGuest(t, k, cg+"/kubepods/pids.max"); got != "max\n" {
		t.Errorf("pids.max after a bad write = %q", got)
	}
	writeGuest(t, k, cg+"/kubepods/memory.current", "12\n")
	if got := readGuest(t, k, cg+"/kubepods/memory.current"); got == "12\n" {
		t.Errorf("a write to read-only memory.current stuck")
	}

	// Nothing else can be made or removed in the tree.
	for _, c := range []struct {
		op   interceptor.FileOp
		path string
	}{
		{interceptor.OpOpen, cg + "/kubepods/junk"}, {interceptor.OpUnlink, cg + "/kubepods/cpu.stat"},
		{interceptor.OpSymlink, cg + "/kubepods/link"}, {interceptor.OpRename, cg + "/kubepods/memory.max"},
		{interceptor.OpRmdir, cg + "/kubepods/cpu.stat"},
	} {
		req := &interceptor.FileRequest{TGID: me, Op: c.op, Guest: c.path,
			Create: c.op != interceptor.OpUnlink && c.op != interceptor.OpRename && c.op != interceptor.OpRmdir}
		if h := k.Serve(req); !strings.HasPrefix(h, k.deny+"/") {
			t.Errorf("%s %s served %q, want a path under %s", c.op, c.path, h, k.deny)
		}
	}
	// Host paths inside the tree (relative to a descriptor there) are
	// served without rewriting.
	req := &interceptor.FileRequest{TGID: me, Op: interceptor.OpOpen, Guest: k.cg.host + "/kubepods/memory.max"}
	if !k.Serves(req.Guest) || k.Serve(req) != "" {
		t.Errorf("host path in the tree not served as itself")
	}
}

func TestKmsgAndSwaps(t *testing.T) {
	k := testKernel(t)
	h, _ := serve(t, k, interceptor.OpOpen, "/dev/kmsg", false, nil)
	var st unix.Stat_t
	if err := unix.Stat(h, &st); err != nil || st.Mode&unix.S_IFMT != unix.S_IFIFO {
		t.Errorf("/dev/kmsg for readers is %s (%v), want a FIFO", h, err)
	}
	if h, _ := serve(t, k, interceptor.OpOpen, "/dev/kmsg", true, nil); h != "/dev/null" {
		t.Errorf("/dev/kmsg for writers is %s, want /dev/null", h)
	}
	// This host has /proc/swaps: the call is left alone.
	if _, err := os.Stat("/proc/swaps"); err == nil {
		req := &interceptor.FileRequest{TGID: os.Getpid(), Op: interceptor.OpOpen, Guest: "/proc/swaps"}
		if h := k.Serve(req); h != "" {
			t.Errorf("/proc/swaps served as %s though the real one exists", h)
		}
	}
}

// TestSubtreeControlRewrite: writing the controllers a cgroup already
// enables (runc does, into every parent, for each container) leaves its
// children's files alone; a change still reaches every level below.
func TestSubtreeControlRewrite(t *testing.T) {
	k := testKernel(t)
	const cg = "/sys/fs/cgroup"
	mkdir := func(p string) {
		t.Helper()
		if _, err := serve(t, k, interceptor.OpMkdir, p, false, func(h string) error { return unix.Mkdir(h, 0o755) }); err != nil {
			t.Fatalf("mkdir %s: %v", p, err)
		}
	}
	mkdir(cg + "/kubepods")
	writeGuest(t, k, cg+"/kubepods/cgroup.subtree_control", "+memory +pids")
	mkdir(cg + "/kubepods/pod1")
	writeGuest(t, k, cg+"/kubepods/pod1/cgroup.subtree_control", "+memory +pids")
	mkdir(cg + "/kubepods/pod1/c")
	writeGuest(t, k, cg+"/kubepods/pod1/c/memory.max", "64M")
	// Writes are applied at the next request (the tracer sees the open,
	// not the write); CgroupOf is one.
	flush := func() { k.CgroupOf(os.Getpid()) }
	flush()

	// Back-date every file below kubepods: a rewrite would move its mtime.
	past := time.Unix(1_000_000_000, 0)
	files := []string{"pod1/memory.max", "pod1/pids.max", "pod1/cgroup.controllers", "pod1/c/memory.max", "pod1/c/cgroup.controllers"}
	for _, f := range files {
		if err := os.Chtimes(filepath.Join(k.cg.host, "kubepods", f), past, past); err != nil {
			t.Fatal(err)
		}
	}
	writeGuest(t, k, cg+"/kubepods/cgroup.subtree_control", "+pids +memory")
	flush()
	for _, f := range files {
		st, err := os.Stat(filepath.Join(k.cg.host, "kubepods", f))
		if err != nil {
			t.Fatalf("%s after rewriting the same controllers: %v", f, err)
		}
		if !st.ModTime().Equal(past) {
			t.Errorf("%s rewritten (mtime %s) by a write of the controllers already enabled", f, st.ModTime())
		}
	}
	if got := readGuest(t, k, cg+"/kubepods/pod1/c/memory.max"); got != "67108864\n" {
		t.Errorf("grandchild memory.max = %q", got)
	}

	// A change still reaches the grandchild: pids goes, then comes back.
	writeGuest(t, k, cg+"/kubepods/cgroup.subtree_control", "-pids")
	flush()
	for _, f := range []string{"pod1/pids.max", "pod1/c/pids.max"} {
		if _, err := os.Stat(filepath.Join(k.cg.host, "kubepods", f)); err == nil {
			t.Errorf("%s still there after -pids above it", f)
		}
	}
	if got := readGuest(t, k, cg+"/kubepods/pod1/c/cgroup.controllers"); got != "memory\n" {
		t.Errorf("grandchild controllers after -pids = %q", got)
	}
	writeGuest(t, k, cg+"/kubepods/cgroup.subtree_control", "+pids")
	if got := readGuest(t, k, cg+"/kubepods/pod1/cgroup.controllers"); got != "memory pids\n" {
		t.Errorf("child controllers after +pids = %q", got)
	}
	// pod1 had pids enabled for its children when it lost it; the kernel
	// does not give it back by itself.
	if got := readGuest(t, k, cg+"/kubepods/pod1/c/cgroup.controllers"); got != "memory\n" {
		t.Errorf("grandchild controllers after +pids at the top = %q", got)
	}
	if got := readGuest(t, k, cg+"/kubepods/pod1/c/memory.max"); got != "67108864\n" {
		t.Errorf("grandchild memory.max after the changes = %q", got)
	}
}

// TestPendingUnchangedWrite: a write of the value a file already holds
// stays pending (it may still be followed by the real write) without being
// read again at every request, and a later change is still applied at the
// next request, long before pendingTTL.
func TestPendingUnchangedWrite(t *testing.T) {
	k := testKernel(t)
	const cg = "/sys/fs/cgroup"
	if _, err := serve(t, k, interceptor.OpMkdir, cg+"/kubepods", false, func(h string) error { return unix.Mkdir(h, 0o755) }); err != nil {
		t.Fatal(err)
	}
	writeGuest(t, k, cg+"/cgroup.subtree_control", "+pids")
	flush := func() { k.CgroupOf(os.Getpid()) }
	flush()
	if got := readGuest(t, k, cg+"/kubepods/pids.max"); got != "max\n" {
		t.Fatalf("pids.max = %q, want max", got)
	}
	host, err := serve(t, k, interceptor.OpOpen, cg+"/kubepods/pids.max", true, func(h string) error {
		return os.WriteFile(h, []byte("max\n"), 0o644)
	})
	if err != nil {
		t.Fatal(err)
	}
	flush()
	flush()
	pendingOf := func() *pending {
		for _, p := range k.cg.queue {
			if p.name == "pids.max" && p.cg.path == "/kubepods" {
				return p
			}
		}
		return nil
	}
	p := pendingOf()
	if p == nil {
		t.Fatalf("a write of the value pids.max holds is no longer pending (queue %d)", len(k.cg.queue))
	}
	if !p.seen.ok {
		t.Errorf("pending pids.max has no stamp: it is read at every request")
	}
	// The real write follows (a clock tick later, so that a filesystem
	// without fine-grained timestamps shows it too).
	time.Sleep(20 * time.Millisecond)
	start := time.Now()
	if err := os.WriteFile(host, []byte("100\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	flush()
	if got := readGuest(t, k, cg+"/kubepods/pids.max"); got != "100\n" {
		t.Errorf("pids.max after a same-size rewrite = %q, want 100", got)
	}
	if el := time.Since(start); el >= pendingTTL {
		t.Errorf("the rewrite was applied after %v, not at the next request", el)
	}
}
