package exec_test

import (
	"bytes"
	"strings"
	"testing"

	"github.com/nodeboot/nodeboot/internal/cli"
)

// run runs nodeboot in-process and returns its exit code, stdout and stderr.
func run(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var out, errOut bytes.Buffer
	code := cli.Run(append([]string{"nodeboot"}, args...), strings.NewReader(""), &out, &errOut)
	return code, out.String(), errOut.String()
}

// TestUsageErrors checks that bad input exits 2 with one line on stderr that
// names the input, before anything is started.
func TestUsageErrors(t *testing.T) {
	tests := []struct {
		name string
		args []string
		env  map[string]string
		want string // exact stderr line when it starts with "nodeboot:", else a substring
	}{
		{name: "no CMD", args: []string{"exec"}, want: "missing CMD"},
		{name: "no CMD after dashes", args: []string{"exec", "--"}, want: "missing CMD"},
		{name: "no CMD after flags", args: []string{"exec", "--stats", "--redirect", "/a=/b"}, want: "missing CMD"},
		{name: "unknown flag", args: []string{"exec", "--bogus", "--", "true"}, want: "nodeboot: exec: flag provided but not defined: -bogus; see 'nodeboot exec --help'"},
		{name: "flag without value", args: []string{"exec", "--redirect"}, want: "flag needs an argument: -redirect"},
		{
			name: "relative guest", args: []string{"exec", "--redirect", "proc=/x", "--", "true"},
			want: `nodeboot: --redirect "proc=/x": guest path "proc" is relative; use an absolute path`,
		},
		{
			name: "relative host", args: []string{"exec", "--redirect", "/proc=x", "--", "true"},
			want: `nodeboot: --redirect "/proc=x": host path "x" is relative; use an absolute path`,
		},
		{name: "redirect without equals", args: []string{"exec", "--redirect", "/proc", "true"}, want: `--redirect "/proc": want GUEST=HOST`},
		{name: "redirect empty host", args: []string{"exec", "--redirect", "/proc=", "true"}, want: `--redirect "/proc="`},
		{name: "second redirect bad", args: []string{"exec", "--redirect", "/a=/b", "--redirect", "c=/d", "true"}, want: `--redirect "c=/d": guest path "c" is relative`},
		{name: "unknown fs type", args: []string{"exec", "--fstype", "9p=nosuchfs", "--", "true"}, want: `--fstype "9p=nosuchfs": unknown filesystem type "nosuchfs"`},
		{name: "relative fstype path", args: []string{"exec", "--fstype", "var/lib=ext4", "--", "true"}, want: `--fstype "var/lib=ext4": path "var/lib" is relative`},
		{name: "fstype without equals", args: []string{"exec", "--fstype", "ext4", "--", "true"}, want: `--fstype "ext4": want FROM=TO`},
		{name: "bad magic", args: []string{"exec", "--fstype", "9p=0xZZ", "--", "true"}, want: `--fstype "9p=0xZZ": filesystem magic "0xZZ"`},
		{name: "bad mode", args: []string{"exec", "--mode", "fast", "--", "true"}, want: `nodeboot: --mode "fast": want auto, seccomp or ptrace`},
		{name: "bad mode from env", args: []string{"exec", "--", "true"}, env: map[string]string{"NODEBOOT_MODE": "fast"}, want: `--mode "fast"`},
		{name: "bad redirect from env", args: []string{"exec", "true"}, env: map[string]string{"NODEBOOT_REDIRECT": "proc=/x"}, want: `--redirect "proc=/x"`},
		{name: "bad bool from env", args: []string{"exec", "true"}, env: map[string]string{"NODEBOOT_STATS": "maybe"}, want: "NODEBOOT_STATS"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for k, v := range tt.env {
				t.Setenv(k, v)
			}
			code, stdout, stderr := run(t, tt.args...)
			if code != 2 {
				t.Errorf("exit code = %d, want 2; stderr:\n%s", code, stderr)
			}
			if stdout != "" {
				t.Errorf("stdout = %q, want nothing (program output only)", stdout)
			}
			lines := strings.Split(strings.TrimSuffix(stderr, "\n"), "\n")
			if len(lines) != 1 || !strings.HasSuffix(stderr, "\n") {
				t.Fatalf("stderr is not one line:\n%s", stderr)
			}
			if strings.HasPrefix(tt.want, "nodeboot:") {
				if lines[0] != tt.want {
					t.Errorf("stderr:\n got %s\nwant %s", lines[0], tt.want)
				}
			} else {
				if !strings.HasPrefix(lines[0], "nodeboot: ") || !strings.Contains(lines[0], tt.want) {
					t.Errorf("stderr = %q, want a \"nodeboot: \" line containing %q", lines[0], tt.want)
				}
			}
		})
	}
}

// TestHelp checks that --help teaches by example and goes to stdout.
func TestHelp(t *testing.T) {
	for _, args := range [][]string{{"exec", "--help"}, {"help", "exec"}, {"exec", "-h"}} {
		t.Run(strings.Join(args, " "), func(t *testing.T) {
			code, stdout, stderr := run(t, args...)
			if code != 0 || stderr != "" {
				t.Fatalf("exit code %d, stderr %q; want 0 and nothing", code, stderr)
			}
			for _, want := range []string{
				"nodeboot exec [flags] [--] CMD [ARGS...]",
				"nodeboot exec --redirect /proc/sys/kernel=",
				"--fstype 9p=ext4",
				"--redirect GUEST=HOST",
				"--fstype FROM=TO",
				"$NODEBOOT_REDIRECT",
				"$NODEBOOT_MODE",
			} {
				if !strings.Contains(stdout, want) {
					t.Errorf("help lacks %q:\n%s", want, stdout)
				}
			}
		})
	}
}
