package discover_test

import (
	"bytes"
	"os"
	"strings"
	"testing"

	nbcli "github.com/nodeboot/nodeboot/internal/cli"
	"github.com/nodeboot/nodeboot/internal/cli/cmdutil"
)

func run(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var out, errOut bytes.Buffer
	code := nbcli.Run(append([]string{"nodeboot"}, args...), strings.NewReader(""), &out, &errOut)
	return code, out.String(), errOut.String()
}

// TestUsage: --output (-o) is the format, as in status, up and kubectl; a
// file name there gets one line naming --output-file.
func TestUsage(t *testing.T) {
	t.Chdir(t.TempDir())
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"a file in --output", []string{"discover", "--output", "my.yaml", "--", "true"}, `--output "my.yaml": --output is the format (yaml); to write the profile to a file, use --output-file my.yaml`},
		{"-o json", []string{"discover", "-o", "json", "--", "true"}, `--output "json": a profile is yaml, its only format`},
		{"no command", []string{"discover", "-o", "yaml"}, "missing CMD"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, stdout, stderr := run(t, tt.args...)
			if code != cmdutil.ExitUsage || !strings.Contains(stderr, tt.want) || strings.Count(stderr, "\n") != 1 {
				t.Errorf("exit %d, stderr %q; want exit 2 and one line with %q", code, stderr, tt.want)
			}
			if stdout != "" {
				t.Errorf("stdout %q, want nothing", stdout)
			}
		})
	}
	if entries, _ := os.ReadDir("."); len(entries) != 0 {
		t.Errorf("a refused discover left %v in the working directory", entries)
	}
}
