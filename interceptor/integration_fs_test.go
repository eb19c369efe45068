//go:build !nointegration

package interceptor

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"

	"github.com/nodeboot/nodeboot/interceptor/rules"

	"golang.org/x/sys/unix"
)

// Filesystem types, long host paths, /proc/self and untouched paths.

const procMagic = 0x9FA0

// TestIntegrationStatfs checks statfs and fstatfs against FSTypeRules by
// path (matched after redirection) and by real type.
func TestIntegrationStatfs(t *testing.T) {
	requireIntegration(t)
	sysc := traceeBin(t, "sysc")
	type call struct {
		args []string
		want string // f_type placeholder: real, fake, fake2, proc, root
	}
	cases := []struct {
		name  string
		rules func(tr *fakeTree, fake, fake2 int64) rules.Rules
		calls []call
	}{
		{name: "path-rule-on-host",
			rules: func(tr *fakeTree, fake, _ int64) rules.Rules {
				return rules.Rules{Redirects: []rules.Redirect{{Guest: tr.G, Host: tr.H}}, FSTypes: []rules.FSTypeRule{{Path: tr.H, To: fake}}}
			},
			calls: []call{
				{[]string{"statfs", "{G}/both"}, "fake"},
				{[]string{"statfs", "{H}/both"}, "fake"},
				{[]string{"statfs", "{H}"}, "fake"},
				{[]string{"statfs", "{G}"}, "fake"}, // G itself is served from H
				{[]string{"statfs", "{G}/only-guest"}, "real"},
				{[]string{"statfs", "{T}/other"}, "real"},
				{[]string{"fstatfs", "{G}/both"}, "fake"},
				{[]string{"fstatfs", "{H}/only-host"}, "fake"},
				{[]string{"fstatfs", "{G}/only-guest"}, "real"},
			}},
		// A path rule names the guest view of a path, or the path after
		// redirection (see rules.FSTypeRule).
		{name: "path-rule-on-guest",
			rules: func(tr *fakeTree, fake, _ int64) rules.Rules {
				return rules.Rules{Redirects: []rules.Redirect{{Guest: tr.G, Host: tr.H}}, FSTypes: []rules.FSTypeRule{{Path: tr.G, To: fake}}}
			},
			calls: []call{
				{[]string{"statfs", "{G}/only-guest"}, "fake"}, // the real path is below G
				{[]string{"statfs", "{G}/both"}, "fake"},       // served from H/both, named below G
				{[]string{"fstatfs", "{G}/only-guest"}, "fake"},
				{[]string{"fstatfs", "{G}/both"}, "fake"},
				{[]string{"statfs", "{T}/other"}, "real"},
				// The same file, named by its host path (as a relative
				// path from a dirfd inside the redirected tree is): it is
				// the guest's G/both, and statfs and fstatfs agree.
				{[]string{"statfs", "{H}/both"}, "fake"},
				{[]string{"fstatfs", "{H}/both"}, "fake"},
			}},
		{name: "type-rule",
			rules: func(tr *fakeTree, fake, _ int64) rules.Rules {
				return rules.Rules{FSTypes: []rules.FSTypeRule{{From: tr.realType, To: fake}}}
			},
			calls: []call{
				{[]string{"statfs", "{T}/other"}, "fake"},
				{[]string{"fstatfs", "{T}/other"}, "fake"},
				{[]string{"statfs", "/proc"}, "proc"},
				{[]string{"fstatfs", "/proc/self/status"}, "proc"},
			}},
		{name: "type-rule-proc",
			rules: func(tr *fakeTree, fake, _ int64) rules.Rules {
				return rules.Rules{FSTypes: []rules.FSTypeRule{{From: procMagic, To: fake}}}
			},
			calls: []call{
				{[]string{"statfs", "/proc/self"}, "fake"},
				{[]string{"fstatfs", "/proc/self/status"}, "fake"},
				{[]string{"statfs", "{T}"}, "real"},
			}},
		{name: "path-rule-before-type-rule",
			rules: func(tr *fakeTree, fake, fake2 int64) rules.Rules {
				return rules.Rules{Redirects: []rules.Redirect{{Guest: tr.G, Host: tr.H}},
					FSTypes: []rules.FSTypeRule{{From: tr.realType, To: fake}, {Path: tr.H, To: fake2}}}
			},
			calls: []call{
				{[]string{"statfs", "{H}/both"}, "fake2"},
				{[]string{"statfs", "{G}/both"}, "fake2"},
				{[]string{"statfs", "{T}/other"}, "fake"},
				{[]string{"fstatfs", "{G}/both"}, "fake2"},
				{[]string{"fstatfs", "{T}/other"}, "fake"},
			}},
		{name: "path-rule-on-root",
			rules: func(tr *fakeTree, fake, _ int64) rules.Rules {
				return rules.Rules{FSTypes: []rules.FSTypeRule{{Path: "/", To: fake}}}
			},
			calls: []call{
				{[]string{"statfs", "/"}, "fake"},
				{[]string{"statfs", "/proc"}, "fake"},
				{[]string{"fstatfs", "{T}/other"}, "fake"},
			}},
		{name: "root-by-type",
			rules: func(tr *fakeTree, fake, _ int64) rules.Rules {
				var st unix.Statfs_t
				unix.Statfs("/", &st)
				return rules.Rules{FSTypes: []rules.FSTypeRule{{From: int64(st.Type), To: fake}}}
			},
			calls: []call{
				{[]string{"statfs", "/"}, "fake"},
				{[]string{"statfs", "/proc"}, "proc"},
			}},
		{name: "no-fstype-rules",
			rules: func(tr *fakeTree, _, _ int64) rules.Rules {
				return rules.Rules{Redirects: []rules.Redirect{{Guest: tr.G, Host: tr.H}}}
			},
			calls: []call{
				{[]string{"statfs", "{G}/both"}, "real"},
				{[]string{"statfs", "/proc"}, "proc"},
				{[]string{"fstatfs", "/proc"}, "proc"},
			}},
	}
	for _, mode := range testModes {
		t.Run(mode.String(), func(t *testing.T) {
			for _, c := range cases {
				t.Run(c.name, func(t *testing.T) {
					tr := newFakeTree(t)
					fake := otherFSMagic(tr.realType, procMagic)
					fake2 := otherFSMagic(tr.realType, procMagic, fake)
					rs := c.rules(tr, fake, fake2)
					types := map[string]int64{"real": tr.realType, "fake": fake, "fake2": fake2, "proc": procMagic}
					for _, cl := range c.calls {
						args := tr.expandAll(cl.args)
						cfg := Config{Path: sysc, Args: append([]string{"sysc"}, args...), Rules: rs, Mode: mode}
						r := runTraced(t, cfg)
						got := parseKV(r.stdout)
						want := fmt.Sprintf("0x%x", types[cl.want])
						if r.exit != (Exit{}) || got["errno"] != "0" || got["ftype"] != want {
							t.Errorf("%s: f_type %s (%s), want %s (%s); rules %v\n%s", describeRun(cfg),
								got["ftype"], typeName(got["ftype"]), want, cl.want, rs, r.output())
						}
						if cl.want == "fake" || cl.want == "fake2" {
							if len(r.rewrites) == 0 {
								t.Errorf("%s: f_type was to be rewritten, but OnRewrite was not called", describeRun(cfg))
							}
							hits := uint64(0)
							for _, f := range rs.FSTypes {
								h, _ := statsRuleHits(r.stats, f.String())
								hits += h
							}
							if hits == 0 {
								t.Errorf("%s: f_type rewritten, but no fstype rule has hits in Stats.Rules %+v", describeRun(cfg), r.stats.Rules)
							}
						}
					}
				})
			}
		})
	}
}

func typeName(hex string) string {
	v, err := strconv.ParseInt(strings.TrimPrefix(hex, "0x"), 16, 64)
	if err != nil {
		return "?"
	}
	return rules.FSTypeName(v)
}

// literalGuest is the guest path compiled into testdata/c/literal.c and
// testdata/gotracee/literal.
const literalGuest = "/nodeboot-test-literal"

// TestIntegrationLongHostPath redirects a path that the program passes as
// a string constant to a host path of more than 3000 bytes; the program
// checks that its constant, its stack and its registers are unchanged.
func TestIntegrationLongHostPath(t *testing.T) {
	requireIntegration(t)
	if _, err := os.Lstat(literalGuest); err == nil {
		t.Fatalf("%s exists on this machine; the test needs it absent (remove it)", literalGuest)
	}
	for _, prog := range []string{"literal", "go-literal"} {
		for _, mode := range testModes {
			t.Run(prog+"/"+mode.String(), func(t *testing.T) {
				bin := traceeBin(t, prog)
				tr := newFakeTree(t)
				host := tr.T
				for len(host) < 3000 {
					host += "/" + strings.Repeat("d", 200)
				}
				if err := writeTestFile(host+"/dir/file", "long-host-content"); err != nil {
					t.Fatal(err)
				}
				rs := rules.Rules{Redirects: []rules.Redirect{{Guest: literalGuest, Host: host}}}
				cfg := Config{Path: bin, Args: []string{prog}, Rules: rs, Mode: mode}
				r := runTraced(t, cfg)
				got := parseKV(r.stdout)
				want := map[string]string{"data": "long-host-content", "literal": "ok"}
				if prog == "literal" {
					want["stackdata"] = "long-host-content"
					want["libcdata"] = "long-host-content"
					want["size"] = "17"
					want["mkdir"] = "0"
					want["stack"] = "ok"
				} else {
					want["stacks"] = "ok"
					want["heap"] = "ok"
					want["goroutines"] = "ok"
				}
				for k, w := range want {
					if got[k] != w {
						t.Errorf("%s (host path %d bytes): %s = %q, want %q", describeRun(cfg), len(host), k, got[k], w)
					}
				}
				// regs, redzone and below are printed only when changed.
				for _, k := range []string{"regs", "redzone", "below"} {
					if v, bad := got[k]; bad {
						t.Errorf("%s: %s %s (registers or memory below the stack pointer were changed by the tracer)", describeRun(cfg), k, v)
					}
				}
				if r.exit != (Exit{}) || t.Failed() {
					t.Errorf("%s: exit %v\n%s", describeRun(cfg), r.exit, r.output())
				}
				if prog == "literal" {
					if fi, err := os.Stat(host + "/newdir"); err != nil || !fi.IsDir() {
						t.Errorf("%s: mkdirat(%s/newdir) did not create the directory below the long host path: %v", describeRun(cfg), literalGuest, err)
					}
				}
				if _, err := os.Lstat(literalGuest); err == nil {
					os.RemoveAll(literalGuest)
					t.Errorf("%s: %s was created on the real filesystem", describeRun(cfg), literalGuest)
				}
			})
		}
	}
}

// nsLastPID returns the last pid handed out in this pid namespace.
func nsLastPID() (int, error) {
	if b, err := os.ReadFile("/proc/sys/kernel/ns_last_pid"); err == nil {
		return strconv.Atoi(strings.TrimSpace(string(b)))
	}
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return 0, err
	}
	f := strings.Fields(string(b))
	if len(f) < 5 {
		return 0, fmt.Errorf("/proc/loadavg: %q", b)
	}
	return strconv.Atoi(f[4])
}

// TestIntegrationProcSelf checks that /proc/self and /proc/thread-self
// name the calling process for rules whose guest is /proc/PID. The pid is
// not known before Start, so the rules cover the next 64 pids; a run whose
// pid falls outside is retried.
func TestIntegrationProcSelf(t *testing.T) {
	requireIntegration(t)
	sysc := traceeBin(t, "sysc")
	cases := []struct {
		name, path, want string // want: {PID} is the tracee's pid
	}{
		{"proc-pid", "/proc/@PID@/nodeboot-fake", "pid {PID}"},
		{"proc-self", "/proc/self/nodeboot-fake", "pid {PID}"},
		{"proc-self-dotdot", "/proc/self/../self/nodeboot-fake", "pid {PID}"},
		{"proc-thread-self", "/proc/thread-self/nodeboot-fake", "tid {PID}"},
		{"proc-self-task-tid", "/proc/self/task/@TID@/nodeboot-fake", "tid {PID}"},
		{"proc-self-real-file", "/proc/self/comm", `sysc\n`},
	}
	const window = 64
	for _, mode := range testModes {
		t.Run(mode.String(), func(t *testing.T) {
			for _, c := range cases {
				t.Run(c.name, func(t *testing.T) {
					for attempt := 1; ; attempt++ {
						tr := newFakeTree(t)
						last, err := nsLastPID()
						if err != nil {
							t.Skipf("needs the last pid of the namespace: %v", err)
						}
						var rs rules.Rules
						for p := last + 1; p <= last+window; p++ {
							host := fmt.Sprintf("%s/pid%d", tr.T, p)
							writeTestFile(host+"/nodeboot-fake", fmt.Sprintf("pid %d", p))
							writeTestFile(fmt.Sprintf("%s/task/%d/nodeboot-fake", host, p), fmt.Sprintf("tid %d", p))
							rs.Redirects = append(rs.Redirects, rules.Redirect{Guest: fmt.Sprintf("/proc/%d", p), Host: host})
						}
						cfg := Config{Path: sysc, Args: []string{"sysc", "open", c.path, "r"}, Rules: rs, Mode: mode}
						r := runTraced(t, cfg)
						if r.pid <= last || r.pid > last+window {
							if attempt == 3 {
								t.Skipf("the tracee's pid was outside the %d pids after %d three times: other processes took them", window, last)
							}
							continue
						}
						want := strings.ReplaceAll(c.want, "{PID}", strconv.Itoa(r.pid))
						if got := parseKV(r.stdout)["data"]; r.exit != (Exit{}) || got != want {
							t.Errorf("%s (pid %d, rules /proc/%d../proc/%d): data %q, want %q\n%s",
								describeRun(cfg), r.pid, last+1, last+window, got, want, r.output())
						}
						return
					}
				})
			}
		})
	}
}

// TestIntegrationUntouched checks that paths outside every rule, and guest
// paths the host does not have, are passed through untouched, and that
// Stats and OnRewrite say so; and that a redirected call is counted.
func TestIntegrationUntouched(t *testing.T) {
	requireIntegration(t)
	sysc := traceeBin(t, "sysc")
	for _, mode := range append([]Mode{ModeAuto}, testModes...) {
		t.Run(mode.String(), func(t *testing.T) {
			tr := newFakeTree(t)
			rs := tr.rules()
			runOpen := func(path string) (runResult, Config) {
				cfg := Config{Path: sysc, Args: []string{"sysc", "openat", "cwd", tr.expand(path), "r"}, Rules: rs, Mode: mode}
				return runTraced(t, cfg), cfg
			}
			ruleNames := func() []string {
				var out []string
				for _, r := range rs.Redirects {
					out = append(out, r.String())
				}
				for _, f := range rs.FSTypes {
					out = append(out, f.String())
				}
				return out
			}

			for _, p := range []string{"{T}/other", "{G}/only-guest"} {
				r, cfg := runOpen(p)
				got := parseKV(r.stdout)
				wantData := map[string]string{"{T}/other": "outside", "{G}/only-guest": "guest-only"}[p]
				if got["data"] != wantData || got["fdpath"] != tr.expand(p) {
					t.Errorf("%s: read %q from %q, want %q from the real %s\n%s", describeRun(cfg), got["data"], got["fdpath"], wantData, tr.expand(p), r.output())
				}
				st, found := statsSyscall(r.stats, "openat")
				if !found || st.Passes == 0 || st.Rewrites != 0 {
					t.Errorf("%s: Stats openat = %+v (found %v), want Passes >= 1 and Rewrites 0", describeRun(cfg), st, found)
				}
				if len(r.rewrites) != 0 {
					t.Errorf("%s: OnRewrite called with %+v, want no calls", describeRun(cfg), r.rewrites)
				}
				if p == "{T}/other" {
					for _, name := range ruleNames() {
						if h, _ := statsRuleHits(r.stats, name); h != 0 {
							t.Errorf("%s: rule %q has %d hits, want 0 (no path was under it)", describeRun(cfg), name, h)
						}
					}
				}
				if r.stats.Mode == ModeAuto || (mode != ModeAuto && r.stats.Mode != mode) {
					t.Errorf("%s: Stats.Mode = %v, want %v (auto resolved to seccomp or ptrace)", describeRun(cfg), r.stats.Mode, mode)
				}
				if r.stats.Tracees != 0 {
					t.Errorf("%s: Stats.Tracees = %d after Wait, want 0", describeRun(cfg), r.stats.Tracees)
				}
			}

			r, cfg := runOpen("{G}/both")
			if got := parseKV(r.stdout); got["data"] != "host-both" {
				t.Errorf("%s: read %q, want host-both\n%s", describeRun(cfg), got["data"], r.output())
			}
			st, _ := statsSyscall(r.stats, "openat")
			if st.Rewrites != 1 || st.Stops == 0 {
				t.Errorf("%s: Stats openat = %+v, want Rewrites 1 (one redirected openat) and Stops >= 1", describeRun(cfg), st)
			}
			rule := rules.Redirect{Guest: tr.G, Host: tr.H}.String()
			if h, found := statsRuleHits(r.stats, rule); h == 0 {
				t.Errorf("%s: rule %q has %d hits (found %v), want >= 1; Stats.Rules %+v", describeRun(cfg), rule, h, found, r.stats.Rules)
			}
			wantRW := Rewrite{PID: r.pid, Syscall: "openat", From: tr.G + "/both", To: tr.H + "/both"}
			found := false
			for _, rw := range r.rewrites {
				if rw == wantRW {
					found = true
				}
			}
			if !found {
				t.Errorf("%s: OnRewrite calls %+v, want one of them %+v", describeRun(cfg), r.rewrites, wantRW)
			}
		})
	}
}
