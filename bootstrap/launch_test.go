//go:build linux && !nointegration

package bootstrap

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/nodeboot/nodeboot/interceptor"
	"github.com/nodeboot/nodeboot/internal/testenv"
	"github.com/nodeboot/nodeboot/profile"
)

// These tests run /bin/sh scripts under Launch with the built-in k3s
// profile, on the real tracer, and check what the virtual kernel shows.

func requireLaunch(t *testing.T) {
	t.Helper()
	testenv.Integration(t)
	testenv.RequireRoot(t, "the k3s profile's cgroup tree and ptrace run as root here")
	for _, tool := range []string{"sh", "cat", "stat", "timeout", "head", "grep"} {
		testenv.LookPath(t, tool)
	}
}

func k3sProfile(t *testing.T) *profile.Profile {
	t.Helper()
	p, err := profile.Load("k3s")
	if err != nil {
		t.Fatalf("load k3s profile: %v", err)
	}
	return p
}

type shResult struct {
	out, err string
	exit     interceptor.Exit
}

// launchSh runs script with /bin/sh under Launch in root.
func launchSh(t *testing.T, root, script string) shResult {
	t.Helper()
	var out, errb bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	p, err := Launch(ctx, LaunchConfig{
		Profile: k3sProfile(t),
		Root:    root,
		Path:    "/bin/sh",
		Args:    []string{"sh", "-c", script},
		Stdout:  &out,
		Stderr:  &errb,
		Logger:  testLogger(t),
	})
	if err != nil {
		t.Fatalf("Launch: %v", err)
	}
	defer p.Close()
	exit, err := p.Wait()
	if err != nil {
		t.Fatalf("Wait: %v", err)
	}
	return shResult{out: out.String(), err: errb.String(), exit: exit}
}

// kv collects "key=value" lines of out.
func kv(out string) map[string]string {
	m := map[string]string{}
	for _, l := range strings.Split(out, "\n") {
		if k, v, ok := strings.Cut(l, "="); ok {
			m[k] = v
		}
	}
	return m
}

func TestIntegrationLaunchVirtualKernel(t *testing.T) {
	requireLaunch(t)
	hostCgroups := listDir(t, "/sys/fs/cgroup")
	hostSelf, _ := os.ReadFile("/proc/self/cgroup")
	realSwaps, _ := os.ReadFile("/proc/swaps")

	const cg = "/sys/fs/cgroup"
	tests := []struct {
		name   string
		script string
		check  func(t *testing.T, r shResult)
	}{
		{
			name:   "statfs says cgroup2",
			script: "stat -f -c %T " + cg,
			check:  wantOut("cgroup2fs\n"), // coreutils names CGROUP2_SUPER_MAGIC so
		},
		{
			name:   "root controllers",
			script: "cat " + cg + "/cgroup.controllers",
			check:  wantOut("cpuset cpu io memory pids\n"),
		},
		{
			name: "root cpu.stat grows",
			script: `a=$(grep usage_usec ` + cg + `/cpu.stat | cut -d' ' -f2)
i=0; while [ $i -lt 200000 ]; do i=$((i+1)); done
b=$(grep usage_usec ` + cg + `/cpu.stat | cut -d' ' -f2)
echo a=$a; echo b=$b`,
			check: wantGrows("a", "b"),
		},
		{
			name: "child cpu.stat grows",
			script: `mkdir ` + cg + `/busy && echo $$ > ` + cg + `/busy/cgroup.procs
a=$(grep usage_usec ` + cg + `/busy/cpu.stat | cut -d' ' -f2)
i=0; while [ $i -lt 200000 ]; do i=$((i+1)); done
b=$(grep usage_usec ` + cg + `/busy/cpu.stat | cut -d' ' -f2)
echo a=$a; echo b=$b; echo pids=$(cat ` + cg + `/busy/pids.current)`,
			check: func(t *testing.T, r shResult) {
				wantGrows("a", "b")(t, r)
				if n, _ := strconv.Atoi(kv(r.out)["pids"]); n < 1 {
					t.Errorf("pids.current = %q, want >= 1", kv(r.out)["pids"])
				}
			},
		},
		{
			name:   "mkdir makes a cgroup",
			script: "mkdir " + cg + "/kubepods && ls " + cg + "/kubepods && echo ctl=$(cat " + cg + "/kubepods/cgroup.controllers)",
			check: func(t *testing.T, r shResult) {
				for _, f := range []string{"cgroup.procs", "cgroup.controllers", "cgroup.subtree_control", "cgroup.events",
					"cpu.stat", "cpu.max", "cpu.weight", "memory.current", "memory.max", "memory.stat", "io.stat", "pids.current", "pids.max"} {
					if !regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(f) + `$`).MatchString(r.out) {
						t.Errorf("ls kubepods lacks %s:\n%s", f, r.out)
					}
				}
				if got := kv(r.out)["ctl"]; got != "cpuset cpu io memory pids" {
					t.Errorf("kubepods cgroup.controllers = %q", got)
				}
			},
		},
		{
			name: "subtree_control reads back normalized",
			script: `mkdir ` + cg + `/kubepods
echo "+cpu +memory" > ` + cg + `/kubepods/cgroup.subtree_control
echo a=$(cat ` + cg + `/kubepods/cgroup.subtree_control)
mkdir ` + cg + `/kubepods/pod1
echo child=$(cat ` + cg + `/kubepods/pod1/cgroup.controllers)
echo hasmem=$(test -e ` + cg + `/kubepods/pod1/memory.max && echo yes)
echo haspids=$(test -e ` + cg + `/kubepods/pod1/pids.max && echo yes)
echo "-cpu" > ` + cg + `/kubepods/cgroup.subtree_control
echo b=$(cat ` + cg + `/kubepods/cgroup.subtree_control)
echo child2=$(cat ` + cg + `/kubepods/pod1/cgroup.controllers)`,
			check: wantKV(map[string]string{"a": "cpu memory", "child": "cpu memory", "hasmem": "yes", "haspids": "",
				"b": "memory", "child2": "memory"}),
		},
		{
			name: "values are normalized",
			script: `mkdir ` + cg + `/v
echo 100M > ` + cg + `/v/memory.max; echo mem=$(cat ` + cg + `/v/memory.max)
echo 50000 > ` + cg + `/v/cpu.max; echo cpu=$(cat ` + cg + `/v/cpu.max)
echo "max 200000" > ` + cg + `/v/cpu.max; echo cpu2=$(cat ` + cg + `/v/cpu.max)
echo 42 > ` + cg + `/v/pids.max; echo pids=$(cat ` + cg + `/v/pids.max)
echo bogus > ` + cg + `/v/pids.max; echo pids2=$(cat ` + cg + `/v/pids.max)
echo 0-0 > ` + cg + `/v/cpuset.cpus; echo cpus=$(cat ` + cg + `/v/cpuset.cpus)`,
			check: wantKV(map[string]string{"mem": "104857600", "cpu": "50000 100000", "cpu2": "max 200000",
				"pids": "42", "pids2": "42", "cpus": "0"}),
		},
		{
			name: "cgroup.procs moves the shell",
			script: `mkdir ` + cg + `/kubepods
echo $$ > ` + cg + `/kubepods/cgroup.procs
echo self=$(cat /proc/self/cgroup)
echo shell=$(cat /proc/$$/cgroup)
echo one=$(cat /proc/1/cgroup)
echo pid=$$
echo procs=$(cat ` + cg + `/kubepods/cgroup.procs | tr '\n' ' ')
echo populated=$(grep populated ` + cg + `/kubepods/cgroup.events)`,
			check: func(t *testing.T, r shResult) {
				m := kv(r.out)
				for k, want := range map[string]string{"self": "0::/kubepods", "shell": "0::/kubepods", "one": "0::/", "populated": "populated 1"} {
					if m[k] != want {
						t.Errorf("%s = %q, want %q\n%s", k, m[k], want, r.out)
					}
				}
				if !strings.Contains(" "+m["procs"]+" ", " "+m["pid"]+" ") {
					t.Errorf("kubepods cgroup.procs %q lacks the shell's pid %s", m["procs"], m["pid"])
				}
			},
		},
		{
			name: "rmdir: busy while populated, then works",
			script: `mkdir -p ` + cg + `/kubepods/pod
echo $$ > ` + cg + `/kubepods/pod/cgroup.procs
rmdir ` + cg + `/kubepods/pod 2>&1; echo rc1=$?
rmdir ` + cg + `/kubepods 2>&1; echo rc2=$?
echo $$ > ` + cg + `/cgroup.procs
rmdir ` + cg + `/kubepods/pod; echo rc3=$?
echo gone=$(test -e ` + cg + `/kubepods/pod || echo yes)
echo sub=$(cat ` + cg + `/kubepods/cgroup.stat | head -1)
rmdir ` + cg + `/kubepods; echo rc4=$?`,
			check: func(t *testing.T, r shResult) {
				wantKV(map[string]string{"rc1": "1", "rc2": "1", "rc3": "0", "gone": "yes", "sub": "nr_descendants 0", "rc4": "0"})(t, r)
				if !strings.Contains(r.out, "busy") {
					t.Errorf("rmdir of a populated cgroup did not say EBUSY:\n%s", r.out)
				}
			},
		},
		{
			name:   "mountinfo shows cgroup2 and no host cgroups",
			script: "cat /proc/self/mountinfo; echo ===; cat /proc/mounts",
			check: func(t *testing.T, r shResult) {
				mi, mounts, _ := strings.Cut(r.out, "===\n")
				if !regexp.MustCompile(`(?m)^\d+ \d+ \d+:\d+ / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime - cgroup2 cgroup2 rw$`).MatchString(mi) {
					t.Errorf("mountinfo lacks the cgroup2 line:\n%s", mi)
				}
				if n := strings.Count(mi, " /sys/fs/cgroup"); n != 1 {
					t.Errorf("mountinfo has %d mounts at or below /sys/fs/cgroup, want 1:\n%s", n, mi)
				}
				if !strings.Contains(mounts, "cgroup2 /sys/fs/cgroup cgroup2 rw,nosuid,nodev,noexec,relatime 0 0\n") {
					t.Errorf("/proc/mounts lacks the cgroup2 line:\n%s", mounts)
				}
				for _, l := range strings.Split(mi, "\n") {
					if f := strings.Fields(l); len(f) > 5 && f[4] == "/proc/sys" && !strings.HasPrefix(f[5], "rw") {
						t.Errorf("/proc/sys is not rw: %s", l)
					}
				}
			},
		},
		{
			name:   "kmsg opens and reads block",
			script: "timeout 1 head -c1 /dev/kmsg; echo rc=$?; echo hello > /dev/kmsg; echo wrc=$?",
			check:  wantKV(map[string]string{"rc": "124", "wrc": "0"}),
		},
		{
			name:   "real /proc/swaps is left alone",
			script: "cat /proc/swaps",
			check:  wantOut(string(realSwaps)),
		},
		{
			name:   "statfs of a child and relative paths",
			script: "mkdir " + cg + "/rel && cd " + cg + "/rel && echo t=$(stat -f -c %T .) && echo 7 > pids.max && echo p=$(cat pids.max) && echo c=$(cat cgroup.controllers)",
			check:  wantKV(map[string]string{"t": "cgroup2fs", "p": "7", "c": "cpuset cpu io memory pids"}),
		},
		{
			name:   "no files can be made in the tree",
			script: "touch " + cg + "/junk 2>/dev/null; echo rc=$?; rm -f " + cg + "/cpu.stat; echo still=$(test -e " + cg + "/cpu.stat && echo yes)",
			check:  wantKV(map[string]string{"rc": "1", "still": "yes"}),
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			root := filepath.Join(t.TempDir(), "root")
			r := launchSh(t, root, tc.script)
			if r.exit.Signal != 0 {
				t.Fatalf("script killed by %v\nstdout:\n%s\nstderr:\n%s", r.exit.Signal, r.out, r.err)
			}
			tc.check(t, r)
			if t.Failed() {
				t.Logf("stdout:\n%s\nstderr:\n%s", r.out, r.err)
			}
		})
	}

	if got := listDir(t, "/sys/fs/cgroup"); strings.Join(got, " ") != strings.Join(hostCgroups, " ") {
		t.Errorf("the host's /sys/fs/cgroup changed: %v, was %v", got, hostCgroups)
	}
	if got, _ := os.ReadFile("/proc/self/cgroup"); !bytes.Equal(got, hostSelf) {
		t.Errorf("the test's own /proc/self/cgroup changed:\n%s\nwas:\n%s", got, hostSelf)
	}
}

// TestIntegrationLaunchMissingProcFiles hides /proc in a private mount
// namespace (a tmpfs over it), where /proc/swaps, diskstats and partitions
// are missing, as in gVisor.
func TestIntegrationLaunchMissingProcFiles(t *testing.T) {
	requireLaunch(t)
	testenv.LookPath(t, "unshare")
	if err := exec.Command("unshare", "-m", "true").Run(); err != nil {
		t.Skipf("cannot make a mount namespace here (unshare -m): %v", err)
	}
	root := filepath.Join(t.TempDir(), "root")
	r := launchSh(t, root, `unshare -m sh -c 'mount -t tmpfs tmpfs /proc && echo swaps; cat /proc/swaps; echo diskstats; cat /proc/diskstats; echo partitions; cat /proc/partitions'`)
	if r.exit.Code != 0 {
		t.Fatalf("exit %v\nstdout:\n%s\nstderr:\n%s", r.exit, r.out, r.err)
	}
	if !strings.Contains(r.out, "swaps\nFilename\t\t\t\tType\t\tSize\t\tUsed\t\tPriority\ndiskstats\n") {
		t.Errorf("/proc/swaps is not the bare header:\n%s", r.out)
	}
	// The root device's line, with stat's st_dev of /.
	var st = statDev(t, "/")
	line := regexp.MustCompile(`(?m)^\s*` + strconv.Itoa(int(st[0])) + `\s+` + strconv.Itoa(int(st[1])) + `\s+\S+( 0){17}$`)
	if !line.MatchString(r.out) {
		t.Errorf("/proc/diskstats lacks a line for %d:%d:\n%s", st[0], st[1], r.out)
	}
	if !strings.Contains(r.out, "partitions\nmajor minor  #blocks  name\n\n") {
		t.Errorf("/proc/partitions lacks its header:\n%s", r.out)
	}
}

func wantOut(want string) func(*testing.T, shResult) {
	return func(t *testing.T, r shResult) {
		t.Helper()
		if r.out != want {
			t.Errorf("stdout = %q, want %q (stderr %q)", r.out, want, r.err)
		}
	}
}

func wantKV(want map[string]string) func(*testing.T, shResult) {
	return func(t *testing.T, r shResult) {
		t.Helper()
		got := kv(r.out)
		keys := make([]string, 0, len(want))
		for k := range want {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			if got[k] != want[k] {
				t.Errorf("%s = %q, want %q", k, got[k], want[k])
			}
		}
	}
}

func wantGrows(a, b string) func(*testing.T, shResult) {
	return func(t *testing.T, r shResult) {
		t.Helper()
		m := kv(r.out)
		x, err1 := strconv.ParseUint(m[a], 10, 64)
		y, err2 := strconv.ParseUint(m[b], 10, 64)
		if err1 != nil || err2 != nil || y <= x {
			t.Errorf("%s=%q then %s=%q: want a number that grows", a, m[a], b, m[b])
		}
	}
}

func listDir(t *testing.T, dir string) []string {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil
	}
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	return names
}

func statDev(t *testing.T, p string) [2]uint32 {
	t.Helper()
	var st unix.Stat_t
	if err := unix.Stat(p, &st); err != nil {
		t.Fatalf("stat %s: %v", p, err)
	}
	return [2]uint32{unix.Major(st.Dev), unix.Minor(st.Dev)}
}

// TestIntegrationLaunchSeeded: with the report of a seed the caller ran,
// Launch does not seed again: an entry removed after that seed stays
// missing (the command sees the path as absent), while the tree's other
// entries are served.
func TestIntegrationLaunchSeeded(t *testing.T) {
	requireLaunch(t)
	root := filepath.Join(t.TempDir(), "root")
	rep, err := Seed(context.Background(), root, k3sProfile(t), SeedOptions{})
	if err != nil {
		t.Fatal(err)
	}
	removed := filepath.Join(rep.Root, "proc", "sys", "vm", "overcommit_memory")
	if err := os.Remove(removed); err != nil {
		t.Fatal(err)
	}
	var out, errb bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	p, err := Launch(ctx, LaunchConfig{
		Profile: k3sProfile(t), Root: "/nonexistent-the-report-names-the-root", Seeded: &rep,
		Path: "/bin/sh", Args: []string{"sh", "-c", "cat /proc/sys/kernel/panic; test -e " + removed + " && echo seeded-again || echo still-removed"},
		Stdout: &out, Stderr: &errb, Logger: testLogger(t),
	})
	if err != nil {
		t.Fatalf("Launch: %v", err)
	}
	defer p.Close()
	if exit, err := p.Wait(); err != nil || exit.Code != 0 {
		t.Fatalf("exit %+v, %v: %s", exit, err, errb.String())
	}
	if got := p.SeedReport(); got.Root != rep.Root || len(got.Entries) != len(rep.Entries) {
		t.Errorf("SeedReport root %q with %d entries; want the caller's, %q with %d", got.Root, len(got.Entries), rep.Root, len(rep.Entries))
	}
	lines := strings.Fields(out.String())
	if len(lines) != 2 || lines[1] != "still-removed" {
		t.Errorf("output %q (stderr %q): want the panic value, then still-removed", out.String(), errb.String())
	}
}
