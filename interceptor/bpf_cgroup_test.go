package interceptor

import (
	"os"
	"testing"

	"github.com/nodeboot/nodeboot/interceptor/rules"
)

// TestIntegrationBpfDeviceCgroup makes runc's bpf(2) calls for a
// container's device program (testdata/c/bpfcg.c): on a directory of an
// emulated cgroup (a redirect of /sys/fs/cgroup) the query finds no
// program and attach and detach succeed; a file that is no program is
// still EINVAL; on a plain directory the kernel answers (EBADF).
func TestIntegrationBpfDeviceCgroup(t *testing.T) {
	requireIntegration(t)
	requireRoot(t, "BPF_PROG_LOAD of a cgroup device program needs CAP_BPF")
	bin := traceeBin(t, "bpfcg")
	for _, mode := range testModes {
		t.Run(mode.String(), func(t *testing.T) {
			tr := newFakeTree(t)
			cg := tr.T + "/cgroup"
			if err := os.MkdirAll(cg+"/pod/ctr", 0o755); err != nil {
				t.Fatal(err)
			}
			rs := rules.Rules{Redirects: []rules.Redirect{{Guest: "/sys/fs/cgroup", Host: cg}}}
			for _, c := range []struct {
				dir  string
				want map[string]string
			}{
				{"/sys/fs/cgroup/pod/ctr", map[string]string{"query": "0", "count": "0", "flags": "0",
					"attachbad": "EINVAL", "load": "0", "attach": "0", "detach": "0"}},
				{tr.T, map[string]string{"query": "EBADF", "count": "4", "flags": "77",
					"attachbad": "EINVAL", "load": "0", "attach": "EBADF", "detach": "EBADF"}},
			} {
				cfg := Config{Path: bin, Args: []string{"bpfcg", c.dir}, Mode: mode, Rules: rs}
				r := runTraced(t, cfg)
				got := parseKV(r.stdout)
				for k, v := range c.want {
					if got[k] != v {
						t.Errorf("%s: %s=%q, want %q\n%s", describeRun(cfg), k, got[k], v, r.output())
					}
				}
			}
		})
	}
}

// TestIsBPFProgLink: both kernels' names of a program fd count, nothing
// else does (the integration test above covers Linux's for real).
func TestIsBPFProgLink(t *testing.T) {
	for _, c := range []struct {
		link string
		want bool
	}{
		{"anon_inode:bpf-prog", true},   // Linux
		{"anon_inode:[bpf-prog]", true}, // gVisor
		{"anon_inode:bpf-map", false},   // a map is no program
		{"anon_inode:[eventfd]", false}, // any other anonymous file
		{"/tmp/bpf-prog", false},        // a file named so
		{"", false},                     // no such fd
	} {
		if got := isBPFProgLink(c.link); got != c.want {
			t.Errorf("isBPFProgLink(%q) = %v, want %v", c.link, got, c.want)
		}
	}
}
