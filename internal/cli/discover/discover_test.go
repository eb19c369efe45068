//go:build !nointegration

package discover_test

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	nbcli "github.com/nodeboot/nodeboot/internal/cli"
	"github.com/nodeboot/nodeboot/internal/cli/cmdutil"
	"github.com/nodeboot/nodeboot/internal/testenv"
	"github.com/nodeboot/nodeboot/profile"
)

func run(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var out, errOut bytes.Buffer
	code := nbcli.Run(append([]string{"nodeboot"}, args...), strings.NewReader(""), &out, &errOut)
	return code, out.String(), errOut.String()
}

// TestIntegrationDiscover runs a real program that reads a /proc/sys file
// this kernel does not have, checks that the written profile has it, and
// that the program, run again on that profile, reads it.
func TestIntegrationDiscover(t *testing.T) {
	testenv.Integration(t)
	testenv.RequireRoot(t, "traces with ptrace and seeds a tree")
	const missing = "/proc/sys/kernel/nodeboot_discover_test"
	if _, err := os.Stat(missing); err == nil {
		t.Fatalf("%s exists on this host; the test needs a missing file", missing)
	}
	out := filepath.Join(t.TempDir(), "found.yaml")
	tests := []struct {
		base string
	}{{"empty"}, {"k3s"}}
	for _, tt := range tests {
		t.Run(tt.base, func(t *testing.T) {
			os.Remove(out)
			code, stdout, stderr := run(t, "discover", "--base", tt.base, "--output", out, "--", "cat", missing)
			if code != 0 {
				t.Fatalf("discover: exit %d\nstdout: %s\nstderr: %s", code, stdout, stderr)
			}
			if !strings.Contains(stderr, missing) || !strings.Contains(stderr, "ENOENT") {
				t.Errorf("summary does not name %s with ENOENT:\n%s", missing, stderr)
			}
			p, err := profile.Load(out)
			if err != nil {
				t.Fatalf("load the written profile: %v", err)
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

	code, _, stderr := run(t, "discover", "--output", out, "--", "true")
	if code != cmdutil.ExitUsage || !strings.Contains(stderr, "--force") {
		t.Errorf("existing --output: exit %d, stderr %q; want exit 2 naming --force", code, stderr)
	}
}
