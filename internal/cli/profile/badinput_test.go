package profile_test

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	nbcli "github.com/nodeboot/nodeboot/internal/cli"
)

// TestBadProfileIsUsageError: every command that takes a profile treats a
// bad one as bad input, exit 2 with one line naming it, whatever is wrong
// with it: a name that is no built-in, a file that is missing, a directory,
// YAML that does not parse, a profile that does not validate. (A bad file
// once exited 1 where a bad name exited 2.)
func TestBadProfileIsUsageError(t *testing.T) {
	dir := t.TempDir()
	write := func(name, body string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	profiles := map[string]string{
		"unknown built-in": "k4s",
		"missing file":     filepath.Join(dir, "nope.yaml"),
		"directory":        dir + "/",
		"bad YAML":         write("syntax.yaml", "name: [\n"),
		"wrong type":       write("type.yaml", "name: x\nfiles: 3\n"),
		"invalid entry":    write("invalid.yaml", "name: bad\nfiles:\n  - path: relative\n"),
	}
	commands := map[string]func(p string) []string{
		"exec":         func(p string) []string { return []string{"exec", "--profile", p, "--", "true"} },
		"seed":         func(p string) []string { return []string{"seed", "--root", filepath.Join(dir, "root"), "--profile", p} },
		"profile show": func(p string) []string { return []string{"profile", "show", p} },
		"discover":     func(p string) []string { return []string{"discover", "--base", p, "--", "true"} },
	}
	for cmd, args := range commands {
		for what, p := range profiles {
			t.Run(cmd+"/"+what, func(t *testing.T) {
				var out, errOut bytes.Buffer
				code := nbcli.Run(append([]string{"nodeboot"}, args(p)...), strings.NewReader(""), &out, &errOut)
				stderr := errOut.String()
				if code != 2 || !strings.HasPrefix(stderr, "nodeboot: ") || strings.Count(stderr, "\n") != 1 || !strings.Contains(stderr, "profile") {
					t.Errorf("exit %d, stderr %q; want exit 2 and one nodeboot: line naming the profile", code, stderr)
				}
			})
		}
	}
	if _, err := os.Lstat(filepath.Join(dir, "root")); err == nil {
		t.Errorf("seed made its root for a bad profile")
	}
}
