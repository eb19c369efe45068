package interceptor

import (
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/nodeboot/nodeboot/interceptor/rules"
)

// TestIntegrationMount makes the mounts runc makes for a container's
// /sys/fs/cgroup (testdata/c/mounts.c, in a private mount namespace): a
// bind mount of a redirected directory binds its tree (the real one does
// not exist); a cgroup or
// cgroup2 filesystem is refused with EPERM while a rule covers
// /sys/fs/cgroup (runc then binds the container's emulated cgroup), and
// left to the kernel otherwise; other filesystems and the read-only
// remount are the kernel's business.
func TestIntegrationMount(t *testing.T) {
	requireIntegration(t)
	requireRoot(t, "mount(2) needs CAP_SYS_ADMIN")
	bin := traceeBin(t, "mounts")
	for _, mode := range testModes {
		for _, emulated := range []bool{true, false} {
			name := mode.String() + "/cgroup-real"
			if emulated {
				name = mode.String() + "/cgroup-emulated"
			}
			t.Run(name, func(t *testing.T) {
				tr := newFakeTree(t)
				dst := tr.T + "/mnt"
				if err := os.Mkdir(dst, 0o755); err != nil {
					t.Fatal(err)
				}
				// The guest directory exists only in the tree, as a
				// container's cgroup does in an emulated hierarchy.
				src := tr.T + "/tree-only"
				rs := rules.Rules{Redirects: []rules.Redirect{{Guest: src, Host: tr.H2}}}
				if emulated {
					cg := tr.T + "/cgroup"
					if err := os.Mkdir(cg, 0o755); err != nil {
						t.Fatal(err)
					}
					rs.Redirects = append(rs.Redirects, rules.Redirect{Guest: "/sys/fs/cgroup", Host: cg})
				}
				cfg := Config{Path: bin, Args: []string{"mounts", src, dst, "f"}, Mode: mode, Rules: rs}
				r := runTraced(t, cfg)
				got := parseKV(r.stdout)
				want := map[string]string{"tmpfs": "0", "bind": "0", "remount": "0", "write": "EROFS", "data": "host2-f"}
				if emulated {
					want["cgroup2"], want["cgroup"] = "EPERM", "EPERM"
				} else if got["cgroup2"] == "EPERM" {
					t.Errorf("%s: cgroup2 mount refused with no cgroup rule\n%s", describeRun(cfg), r.output())
				}
				for k, v := range want {
					if got[k] != v {
						t.Errorf("%s: %s=%q, want %q\n%s", describeRun(cfg), k, got[k], v, r.output())
					}
				}
				// The mounts were in the tracee's own namespace.
				if ents, _ := os.ReadDir(dst); len(ents) != 0 {
					t.Errorf("%s: %s has %d entries in the test's namespace, want none", describeRun(cfg), dst, len(ents))
				}
			})
		}
	}
}

// TestIntegrationForeignCgroupMountPoint: in a sysfs the program mounts
// itself (a container's /sys), the /sys/fs/cgroup directory is its own
// (runc opens it to mount on and checks its /proc/self/fd link), while
// what lies below it is the emulated hierarchy's.
func TestIntegrationForeignCgroupMountPoint(t *testing.T) {
	requireIntegration(t)
	requireRoot(t, "mount(2) needs CAP_SYS_ADMIN")
	if _, err := exec.LookPath("unshare"); err != nil {
		t.Skipf("needs unshare (util-linux): %v", err)
	}
	for _, mode := range testModes {
		t.Run(mode.String(), func(t *testing.T) {
			tr := newFakeTree(t)
			cg := tr.T + "/cgroup"
			sys := tr.T + "/sys"
			for _, d := range []string{cg, sys} {
				if err := os.Mkdir(d, 0o755); err != nil {
					t.Fatal(err)
				}
			}
			if err := os.WriteFile(cg+"/marker", []byte("emulated\n"), 0o644); err != nil {
				t.Fatal(err)
			}
			script := `mount -t sysfs sysfs SYS && exec 3< SYS/fs/cgroup && echo "link=$(readlink /proc/$$/fd/3)" && echo "marker=$(cat SYS/fs/cgroup/marker)"`
			script = strings.ReplaceAll(script, "SYS", sys)
			cfg := Config{Path: "/bin/sh", Args: []string{"sh", "-c", "exec unshare -m --propagation private sh -c '" + script + "'"}, Mode: mode,
				Env:   append(os.Environ(), "PATH=/usr/sbin:/usr/bin:/sbin:/bin"),
				Rules: rules.Rules{Redirects: []rules.Redirect{{Guest: "/sys/fs/cgroup", Host: cg}}}}
			r := runTraced(t, cfg)
			got := parseKV(r.stdout)
			for k, v := range map[string]string{"link": sys + "/fs/cgroup", "marker": "emulated"} {
				if got[k] != v {
					t.Errorf("%s: %s=%q, want %q\n%s", describeRun(cfg), k, got[k], v, r.output())
				}
			}
		})
	}
}

// TestIntegrationMountOutOfReach: a program whose root does not reach the
// tree (a container after pivot_root; here chroot) binds a redirected
// directory on itself, as runc does with /proc/sys to make it read-only:
// the bind is made as named (it reads and writes nothing); a file reached
// through it is read from the program's own view (the tree is out of its
// reach), and a write to it is refused (EACCES), never made to the real
// one.
func TestIntegrationMountOutOfReach(t *testing.T) {
	requireIntegration(t)
	requireRoot(t, "mount(2) and chroot(2) need root")
	unshare, err := exec.LookPath("unshare")
	if err != nil {
		t.Skipf("needs unshare (util-linux): %v", err)
	}
	chroot, err := exec.LookPath("chroot")
	if err != nil {
		t.Skipf("needs chroot (coreutils): %v", err)
	}
	bin := traceeBin(t, "mounts")
	if testTracees.link != "static" {
		t.Skipf("needs a static tracee to run in a chroot (%s)", testTracees.link)
	}
	for _, mode := range testModes {
		t.Run(mode.String(), func(t *testing.T) {
			tr := newFakeTree(t)
			jail := tr.T + "/jail"
			for _, d := range []string{jail + "/gdir", jail + "/mnt"} {
				if err := os.MkdirAll(d, 0o755); err != nil {
					t.Fatal(err)
				}
			}
			if err := os.WriteFile(jail+"/gdir/f", []byte("real"), 0o644); err != nil {
				t.Fatal(err)
			}
			b, err := os.ReadFile(bin)
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(jail+"/mounts", b, 0o755); err != nil {
				t.Fatal(err)
			}
			cfg := Config{Path: unshare, Args: []string{"unshare", "-m", "--propagation", "private", chroot, jail, "/mounts", "/gdir", "/mnt", "f"},
				Mode: mode, Env: append(os.Environ(), "MOUNTS_NS=keep"),
				Rules: rules.Rules{Redirects: []rules.Redirect{{Guest: jail + "/gdir", Host: tr.H2}}}}
			r := runTraced(t, cfg)
			got := parseKV(r.stdout)
			for k, v := range map[string]string{"bind": "0", "write": "EACCES", "data": "real"} {
				if got[k] != v {
					t.Errorf("%s: %s=%q, want %q\n%s", describeRun(cfg), k, got[k], v, r.output())
				}
			}
		})
	}
}
