//go:build !nointegration

package interceptor

import (
	"os"
	"strings"
	"sync"
	"testing"

	"github.com/nodeboot/nodeboot/interceptor/rules"
)

// TestIntegrationCopyUp changes covered files the tree lacks through sysc
// and checks that each change landed in a copy made in the tree (its
// directories as the real ones are, the real content, mode and owner),
// that the real files never changed, and that a write the real file would
// refuse is refused without a copy.
func TestIntegrationCopyUp(t *testing.T) {
	requireIntegration(t)
	requireRoot(t, "copies keep the real files' owners")
	sysc := traceeBin(t, "sysc")
	cases := []struct {
		name string
		args []string
		want map[string]string
		// check looks at the tree (H) and the real side (G).
		check func(c fsCheck)
	}{
		{name: "write-keeps-content", args: []string{"open", "{G}/sub/dir/file", "w", "X"}, want: wantOK("wrote", "1"),
			check: func(c fsCheck) {
				c.file("{H}/sub/dir/file", "Xeal content")
				c.mode("{H}/sub/dir/file", 0o640)
				c.owner("{H}/sub/dir/file", 1234, 5678)
				c.mode("{H}/sub", 0o750)
				c.mode("{H}/sub/dir", 0o710)
			}},
		{name: "truncate", args: []string{"truncate", "{G}/sub/dir/file", "4"}, want: wantOK("ret", "0"),
			check: func(c fsCheck) { c.file("{H}/sub/dir/file", "real") }},
		{name: "trunc-open-copies-no-content", args: []string{"open", "{G}/sub/dir/file", "wt", "new"}, want: wantOK("wrote", "3"),
			check: func(c fsCheck) { c.file("{H}/sub/dir/file", "new") }},
		{name: "chmod", args: []string{"chmod", "{G}/sub/dir/file", "600"}, want: wantOK("ret", "0"),
			check: func(c fsCheck) { c.mode("{H}/sub/dir/file", 0o600); c.file("{H}/sub/dir/file", "real content") }},
		{name: "create-makes-parents", args: []string{"open", "{G}/sub/dir/new", "wc", "n"}, want: wantOK("wrote", "1"),
			check: func(c fsCheck) {
				c.file("{H}/sub/dir/new", "n")
				c.mode("{H}/sub/dir", 0o710)
				c.missing("{H}/sub/dir/file")
			}},
		{name: "mkdir-makes-parents", args: []string{"mkdir", "{G}/sub/dir/newdir"}, want: wantOK("ret", "0"),
			check: func(c fsCheck) { c.dir("{H}/sub/dir/newdir"); c.missing("{G}/sub/dir/newdir") }},
		{name: "read-goes-to-the-real-file", args: []string{"open", "{G}/sub/dir/file", "r"}, want: wantOK("data", "real content"),
			check: func(c fsCheck) { c.missing("{H}/sub") }},
		{name: "unlink-real-only-EACCES", args: []string{"unlink", "{G}/sub/dir/file"}, want: wantErrno("EACCES"),
			check: func(c fsCheck) { c.missing("{H}/sub") }},
		{name: "rename-real-only-EACCES", args: []string{"rename", "{G}/sub/dir/file", "{G}/moved"}, want: wantErrno("EACCES"),
			check: func(c fsCheck) { c.missing("{H}/moved") }},
		{name: "nonroot-real-refuses-EACCES", args: []string{"-u", "65534", "open", "{G}/sub/ro", "w", "x"}, want: wantErrno("EACCES"),
			check: func(c fsCheck) { c.missing("{H}/sub") }},
	}
	for _, mode := range testModes {
		t.Run(mode.String(), func(t *testing.T) {
			for _, c := range cases {
				t.Run(c.name, func(t *testing.T) {
					tr := newFakeTree(t)
					if err := os.MkdirAll(tr.G+"/sub/dir", 0o755); err != nil {
						t.Fatal(err)
					}
					os.Chmod(tr.G+"/sub", 0o750)
					os.Chmod(tr.G+"/sub/dir", 0o710)
					if err := writeTestFile(tr.G+"/sub/dir/file", "real content"); err != nil {
						t.Fatal(err)
					}
					os.Chmod(tr.G+"/sub/dir/file", 0o640)
					os.Chown(tr.G+"/sub/dir/file", 1234, 5678)
					writeTestFile(tr.G+"/sub/ro", "read-only")
					os.Chmod(tr.G+"/sub/ro", 0o444)
					// The rule G=H only: H has no sub/ (the fake tree's own
					// H/sub and the G/sub rule are left out).
					os.RemoveAll(tr.H + "/sub")
					rs := rules.Rules{Redirects: []rules.Redirect{{Guest: tr.G, Host: tr.H}}}
					cfg := Config{Path: sysc, Args: append([]string{"sysc"}, tr.expandAll(c.args)...), Rules: rs, Mode: mode}
					r := runTraced(t, cfg)
					got := parseKV(r.stdout)
					for k, w := range c.want {
						if got[k] != w {
							t.Errorf("%s: %s = %q, want %q\n%s", describeRun(cfg), k, got[k], w, r.output())
						}
					}
					chk := fsCheck{t: t, tr: tr, ctx: describeRun(cfg)}
					c.check(chk)
					// The real side never changes.
					chk.file("{G}/sub/dir/file", "real content")
					chk.mode("{G}/sub/dir/file", 0o640)
					chk.file("{G}/sub/ro", "read-only")
				})
			}
		})
	}
}

// TestIntegrationTreeGone moves a redirect's tree away while the program
// runs: its writes below the guest fail with ENOENT (never reaching the
// real file), and Config.OnFault hears of it once.
func TestIntegrationTreeGone(t *testing.T) {
	requireIntegration(t)
	sh := "/bin/sh"
	if _, err := os.Stat(sh); err != nil {
		t.Skipf("needs %s: %v", sh, err)
	}
	for _, mode := range testModes {
		t.Run(mode.String(), func(t *testing.T) {
			tr := newFakeTree(t)
			var mu sync.Mutex
			var faults []Fault
			script := `echo one > G/both && mv H H.gone && { echo two > G/both; echo "rc=$?"; echo three > G/both; echo "rc=$?"; }`
			script = strings.NewReplacer("G/", tr.G+"/", "H ", tr.H+" ", "H.gone", tr.H+".gone").Replace(script)
			cfg := Config{Path: sh, Args: []string{"sh", "-c", script}, Mode: mode,
				Rules: rules.Rules{Redirects: []rules.Redirect{{Guest: tr.G, Host: tr.H}}},
				OnFault: func(f Fault) {
					mu.Lock()
					faults = append(faults, f)
					mu.Unlock()
				}}
			r := runTraced(t, cfg)
			// The shell says ENOENT its own way ("No such file or
			// directory", or dash's "Directory nonexistent").
			if strings.Count(r.stdout, "rc=") != 2 || strings.Contains(r.stdout, "rc=0") ||
				!(strings.Contains(r.stderr, "No such file") || strings.Contains(r.stderr, "nonexistent")) {
				t.Errorf("%s: want both writes after the move to fail with ENOENT\n%s", describeRun(cfg), r.output())
			}
			chk := fsCheck{t: t, tr: tr, ctx: describeRun(cfg)}
			chk.file("{G}/both", "guest-both")
			if b, err := os.ReadFile(tr.H + ".gone/both"); err != nil || string(b) != "one\n" {
				t.Errorf("%s: the tree's file holds %q (%v), want the first write", describeRun(cfg), b, err)
			}
			mu.Lock()
			defer mu.Unlock()
			if len(faults) != 1 || faults[0].Kind != TreeGone || faults[0].Rule.Guest != tr.G {
				t.Errorf("%s: faults %v, want one TreeGone for %s", describeRun(cfg), faults, tr.G)
			}
		})
	}
}

// TestIntegrationMissingHost: a redirect whose host is missing at the
// start is no fault: reads go to the real file, and a write copies the real
// file up as the host, which is the tree from then on.
func TestIntegrationMissingHost(t *testing.T) {
	requireIntegration(t)
	sysc := traceeBin(t, "sysc")
	for _, mode := range testModes {
		t.Run(mode.String(), func(t *testing.T) {
			tr := newFakeTree(t)
			host := tr.T + "/later"
			var faults []Fault
			cfg := func(args ...string) Config {
				return Config{Path: sysc, Args: append([]string{"sysc"}, args...), Mode: mode,
					Rules:   rules.Rules{Redirects: []rules.Redirect{{Guest: tr.G + "/only-guest", Host: host}}},
					OnFault: func(f Fault) { faults = append(faults, f) }}
			}
			c := cfg("open", tr.G+"/only-guest", "r")
			if got := parseKV(runTraced(t, c).stdout); got["data"] != "guest-only" {
				t.Errorf("%s: read %q, want the real file", describeRun(c), got["data"])
			}
			c = cfg("open", tr.G+"/only-guest", "wc", "made")
			if got := parseKV(runTraced(t, c).stdout); got["errno"] != "0" {
				t.Errorf("%s: %v, want the file made as the host", describeRun(c), got)
			}
			chk := fsCheck{t: t, tr: tr, ctx: describeRun(c)}
			chk.file(host, "madet-only") // "guest-only", copied, then "made" written over its start
			chk.file("{G}/only-guest", "guest-only")
			if len(faults) != 0 {
				t.Errorf("faults %v, want none", faults)
			}
		})
	}
}
