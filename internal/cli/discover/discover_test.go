//go:build !nointegration

package discover_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/nodeboot/nodeboot/internal/cli/cmdutil"
	"github.com/nodeboot/nodeboot/internal/testenv"
	"github.com/nodeboot/nodeboot/profile"
)

// TestIntegrationDiscover runs a real program that reads a /proc/sys file
// this kernel does not have, and prints to stdout and stderr on the way:
// the profile discover writes (to --output-file, or to stdout, where the
// program's output must not end up) loads and has the file, and the
// program, run again on that profile, reads it.
func TestIntegrationDiscover(t *testing.T) {
	testenv.Integration(t)
	testenv.RequireRoot(t, "traces with ptrace and seeds a tree")
	const missing = "/proc/sys/kernel/nodeboot_discover_test"
	if _, err := os.Stat(missing); err == nil {
		t.Fatalf("%s exists on this host; the test needs a missing file", missing)
	}
	// NODEBOOT_OUTPUT is status's and up's format: discover must not take
	// it for a file name (it once wrote the profile to ./json).
	t.Setenv("NODEBOOT_OUTPUT", "json")
	t.Chdir(t.TempDir())
	program := []string{"sh", "-c", "echo program-stdout; echo program-stderr >&2; cat " + missing}
	dir := t.TempDir()
	tests := []struct {
		name, base string
		toFile     bool
	}{{"empty to file", "empty", true}, {"k3s to file", "k3s", true}, {"k3s to stdout", "k3s", false}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out := filepath.Join(dir, strings.ReplaceAll(tt.name, " ", "-")+".yaml")
			args := []string{"discover", "--base", tt.base}
			if tt.toFile {
				args = append(args, "--output-file", out)
			}
			code, stdout, stderr := run(t, append(append(args, "--"), program...)...)
			if code != 0 {
				t.Fatalf("discover: exit %d\nstdout: %s\nstderr: %s", code, stdout, stderr)
			}
			if !strings.Contains(stderr, missing) || !strings.Contains(stderr, "ENOENT") {
				t.Errorf("summary does not name %s with ENOENT:\n%s", missing, stderr)
			}
			for _, want := range []string{"program-stdout\n", "program-stderr\n"} {
				if !strings.Contains(stderr, want) {
					t.Errorf("the program's %q is not on stderr:\n%s", want, stderr)
				}
			}
			if tt.toFile {
				if stdout != "" {
					t.Errorf("stdout %q, want nothing with --output-file", stdout)
				}
			} else if err := os.WriteFile(out, []byte(stdout), 0o600); err != nil {
				t.Fatal(err)
			}
			p, err := profile.Load(out)
			if err != nil {
				b, _ := os.ReadFile(out)
				t.Fatalf("load the written profile: %v\n%s", err, b)
			}
			found := false
			for _, f := range p.Files {
				found = found || f.Path == missing
			}
			if !found {
				t.Fatalf("written profile has no entry for %s:\n%s", missing, p.YAML())
			}
			code, stdout, stderr = run(t, "exec", "--profile", out, "--", "cat", missing)
			if code != 0 || strings.TrimSpace(stdout) != "0" {
				t.Errorf("exec on the written profile: exit %d, stdout %q, stderr %q; want exit 0 and the placeholder 0", code, stdout, stderr)
			}
		})
	}
	if _, err := os.Lstat("json"); err == nil {
		t.Errorf("discover wrote a file named json: it took NODEBOOT_OUTPUT for its file")
	}

	out := filepath.Join(dir, "k3s-to-file.yaml")
	code, _, stderr := run(t, "discover", "--output-file", out, "--", "true")
	if code != cmdutil.ExitUsage || !strings.Contains(stderr, "--force") {
		t.Errorf("existing --output-file: exit %d, stderr %q; want exit 2 naming --force", code, stderr)
	}
}

// TestIntegrationDiscoverSnapshotter: the summary says which snapshotter
// up would give k3s on the data dir's filesystem: overlayfs on this
// machine's, native on a data dir inside an overlay mount (an overlayfs
// cannot be another's upper layer, as on an overlay-rooted sandbox).
func TestIntegrationDiscoverSnapshotter(t *testing.T) {
	testenv.Integration(t)
	testenv.RequireRoot(t, "traces, and probes with an overlay mount")
	dir := t.TempDir()
	ov := filepath.Join(dir, "ov")
	for _, n := range []string{"l", "u", "w", "m"} {
		if err := os.MkdirAll(filepath.Join(ov, n), 0o700); err != nil {
			t.Fatal(err)
		}
	}
	merged := filepath.Join(ov, "m")
	if err := unix.Mount("overlay", merged, "overlay", 0, "lowerdir="+filepath.Join(ov, "l")+",upperdir="+filepath.Join(ov, "u")+",workdir="+filepath.Join(ov, "w")); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Unmount(merged, unix.MNT_DETACH) })
	for _, c := range []struct{ dataDir, want string }{
		{filepath.Join(dir, "data"), "SNAPSHOTTER  overlayfs (an overlay mount works on " + dir + " ("},
		{filepath.Join(merged, "data"), "SNAPSHOTTER  native (an overlay mount fails on " + merged + " (overlay): invalid argument)"},
	} {
		code, _, stderr := run(t, "discover", "--data-dir", c.dataDir, "--", "true")
		if code != 0 || !strings.Contains(stderr, c.want) {
			t.Errorf("data dir %s: exit %d, summary lacks %q:\n%s", c.dataDir, code, c.want, stderr)
		}
	}
}
