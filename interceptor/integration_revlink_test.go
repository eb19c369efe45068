//go:build !nointegration

package interceptor

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/nodeboot/nodeboot/interceptor/rules"

	"golang.org/x/sys/unix"
)

// TestIntegrationReverseLinks runs testdata/c/revlink.c, which does what
// runc does with its cgroup root handle (openat2 O_PATH|O_DIRECTORY, then
// readlink of /proc/thread-self/fd/N must be the path it opened) and reads
// its cwd after chdir and fchdir into a redirected directory. The kernel
// answers with the host tree's path; the program must see the guest path
// instead, truncated to its buffer as the kernel truncates, and paths no
// rule covers unchanged.
func TestIntegrationReverseLinks(t *testing.T) {
	requireIntegration(t)
	bin := traceeBin(t, "revlink")
	type tcase struct {
		name  string
		setup func(t *testing.T, tr *fakeTree) (rs rules.Rules, dir, file string)
	}
	cases := []tcase{
		// G = T/guest is served from H = T/host: the guest path is one
		// byte longer than the kernel's answer.
		{name: "guest-dir", setup: func(t *testing.T, tr *fakeTree) (rules.Rules, string, string) {
			return rules.Rules{Redirects: []rules.Redirect{{Guest: tr.G, Host: tr.H}}}, tr.G, tr.G + "/both"
		}},
		// runc's own path: /sys/fs/cgroup served from a tree directory
		// whose path is longer than the guest's.
		{name: "sys-fs-cgroup", setup: func(t *testing.T, tr *fakeTree) (rules.Rules, string, string) {
			host := filepath.Join(tr.T, "tree", "sys", "fs", "cgroup")
			if err := os.MkdirAll(host, 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(host+"/cgroup.controllers", []byte("cpu memory\n"), 0o644); err != nil {
				t.Fatal(err)
			}
			return rules.Rules{Redirects: []rules.Redirect{{Guest: "/sys/fs/cgroup", Host: host}}},
				"/sys/fs/cgroup", "/sys/fs/cgroup/cgroup.controllers"
		}},
	}
	for _, mode := range testModes {
		t.Run(mode.String(), func(t *testing.T) {
			for _, c := range cases {
				t.Run(c.name, func(t *testing.T) {
					tr := newFakeTree(t)
					rs, dir, file := c.setup(t, tr)
					other := tr.T + "/other"
					cfg := Config{Path: bin, Args: []string{"revlink", dir, file, other}, Rules: rs, Mode: mode, Dir: tr.T}
					r := runTraced(t, cfg)
					if r.exit != (Exit{}) {
						t.Fatalf("%s: %s", describeRun(cfg), r.output())
					}
					cwd := func(key, p string) string {
						return fmt.Sprintf("%s=%s ret=%d nul=1 after=Z", key, p, len(p)+1)
					}
					link := func(key, p string) string { return key + "=" + p + " after=Z" }
					want := []string{
						link("thread_self", dir),
						link("self", dir),
						link("task", dir),
						link("procfd", dir),
						link("file", file),
						link("other", other),
						fmt.Sprintf("short=%s ret=5 after=Z", dir[:5]),
						fmt.Sprintf("fit=%s ret=%d after=Z", dir, len(dir)),
						link("empty_path", dir),
						link("private_proc", dir),
						cwd("cwd_before", tr.T),
						cwd("cwd", dir),
						link("self_cwd", dir),
						cwd("cwd_exact", dir),
						"cwd_small=errno:34", // ERANGE
						cwd("fchdir_cwd", dir),
						cwd("root_cwd", "/"),
					}
					got := strings.Split(strings.TrimRight(r.stdout, "\n"), "\n")
					for i, w := range want {
						g := ""
						if i < len(got) {
							g = got[i]
						}
						if g != w {
							t.Errorf("%s:\n got  %s\n want %s", describeRun(cfg), tr.unexpand(g), tr.unexpand(w))
						}
					}
					if len(got) != len(want) {
						t.Errorf("%s: %d lines, want %d\n%s", describeRun(cfg), len(got), len(want), r.output())
					}
				})
			}
		})
	}
}

// TestIntegrationCgroupRootHandle runs testdata/gotracee/cgroupfd, runc's
// cgroup root handle code in Go: openat2 of /sys/fs/cgroup, fstatfs,
// openat2 of a file relative to the handle with runc's RESOLVE flags, and
// os.Readlink of /proc/thread-self/fd/N, which must give /sys/fs/cgroup
// back. The tree's path is longer than os.Readlink's first buffer (128
// bytes), so the kernel's first answer is truncated.
func TestIntegrationCgroupRootHandle(t *testing.T) {
	requireIntegration(t)
	bin := traceeBin(t, "go-cgroupfd")
	for _, mode := range testModes {
		t.Run(mode.String(), func(t *testing.T) {
			tr := newFakeTree(t)
			host := filepath.Join(tr.T, strings.Repeat("a-long-directory-name/", 6), "sys", "fs", "cgroup")
			if len(host) <= 128 {
				t.Fatalf("host %s is not longer than 128 bytes", host)
			}
			if err := os.MkdirAll(host, 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(host+"/cgroup.controllers", []byte("cpu memory pids"), 0o644); err != nil {
				t.Fatal(err)
			}
			rs := rules.Rules{
				Redirects: []rules.Redirect{{Guest: "/sys/fs/cgroup", Host: host}},
				FSTypes:   []rules.FSTypeRule{{Path: host, To: unix.CGROUP2_SUPER_MAGIC}},
			}
			cfg := Config{Path: bin, Args: []string{"cgroupfd", "/sys/fs/cgroup", "cgroup.controllers"}, Rules: rs, Mode: mode}
			r := runTraced(t, cfg)
			got := parseKV(r.stdout)
			want := map[string]string{"fstype": "0x63677270", "data": "cpu memory pids", "handle": "/sys/fs/cgroup"}
			for k, w := range want {
				if got[k] != w {
					t.Errorf("%s: %s = %q, want %q", describeRun(cfg), k, got[k], w)
				}
			}
			if r.exit != (Exit{}) || t.Failed() {
				t.Errorf("%s:\n%s", describeRun(cfg), r.output())
			}
		})
	}
}
