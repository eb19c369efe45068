package cli

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"testing"

	"github.com/urfave/cli/v2"

	"github.com/nodeboot/nodeboot/internal/cli/cmdutil"
)

func run(args ...string) (int, string, string) {
	var out, errOut bytes.Buffer
	code := Run(append([]string{"nodeboot"}, args...), strings.NewReader(""), &out, &errOut)
	return code, out.String(), errOut.String()
}

// TestUsageErrors checks the global flags and command lookup: exit 2 and
// one line on stderr that names the input.
func TestUsageErrors(t *testing.T) {
	tests := []struct {
		name string
		args []string
		want string // the whole stderr line
	}{
		{"unknown command", []string{"frobnicate"}, `nodeboot: unknown command "frobnicate"; see 'nodeboot --help'`},
		{"unknown global flag", []string{"--bogus", "exec", "true"}, "nodeboot: flag provided but not defined: -bogus; see 'nodeboot --help'"},
		{"global flag after command", []string{"exec", "-q", "true"}, "nodeboot: exec: flag provided but not defined: -q; see 'nodeboot exec --help'"},
		{"bad log level", []string{"--log-level", "loud", "exec", "true"}, `nodeboot: --log-level "loud": want debug, info, warn or error`},
		{"verbose and quiet", []string{"-v", "-q", "exec", "true"}, "nodeboot: --verbose and --quiet: use one or the other"},
		{"help for unknown command", []string{"help", "nosuch"}, `nodeboot: help: unknown command "nosuch"; see 'nodeboot --help'`},
		{"version with argument", []string{"version", "x"}, `nodeboot: version: unexpected argument "x"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, stdout, stderr := run(tt.args...)
			if code != cmdutil.ExitUsage {
				t.Errorf("exit code = %d, want %d", code, cmdutil.ExitUsage)
			}
			if stdout != "" {
				t.Errorf("stdout = %q, want nothing", stdout)
			}
			if stderr != tt.want+"\n" {
				t.Errorf("stderr:\n got %q\nwant %q", stderr, tt.want+"\n")
			}
		})
	}
}

func TestVersion(t *testing.T) {
	for _, args := range [][]string{{"version"}, {"--version"}} {
		code, stdout, stderr := run(args...)
		if code != 0 || stderr != "" || !strings.HasPrefix(stdout, "nodeboot dev ") {
			t.Errorf("%v: code %d, stdout %q, stderr %q", args, code, stdout, stderr)
		}
	}
}

func TestNoArgsShowsHelp(t *testing.T) {
	code, stdout, stderr := run()
	if code != 0 || stderr != "" {
		t.Fatalf("code %d, stderr %q", code, stderr)
	}
	for _, want := range []string{"exec", "version", "--log-level", "--quiet, -q", "--verbose, -v"} {
		if !strings.Contains(stdout, want) {
			t.Errorf("help lacks %q:\n%s", want, stdout)
		}
	}
}

func TestHelpCommand(t *testing.T) {
	for _, args := range [][]string{{"help"}, {"h"}, {"--help"}, {"-h"}, {"help", "exec"}, {"help", "version"}, {"help", "help"}} {
		code, stdout, stderr := run(args...)
		if code != 0 || stderr != "" || !strings.Contains(stdout, "USAGE:") {
			t.Errorf("%q: code %d, stderr %q, stdout:\n%s", args, code, stderr, stdout)
		}
	}
	_, stdout, _ := run("help", "exec")
	if !strings.Contains(stdout, "nodeboot exec [flags] [--] CMD [ARGS...]") {
		t.Errorf("help exec shows another page:\n%s", stdout)
	}
}

func TestLevel(t *testing.T) {
	tests := []struct {
		f    flagpole
		want slog.Level
	}{
		{flagpole{LogLevel: "info"}, slog.LevelInfo},
		{flagpole{LogLevel: "DEBUG"}, slog.LevelDebug},
		{flagpole{LogLevel: "warn"}, slog.LevelWarn},
		{flagpole{LogLevel: "error", Verbose: true}, slog.LevelDebug},
		{flagpole{LogLevel: "debug", Quiet: true}, quietLevel},
	}
	for _, tt := range tests {
		got, err := tt.f.level()
		if err != nil || got != tt.want {
			t.Errorf("%+v: level() = %v, %v; want %v", tt.f, got, err, tt.want)
		}
	}
}

// TestReport checks that errors are printed once, as one line, and pick the
// exit code.
func TestReport(t *testing.T) {
	tests := []struct {
		name     string
		err      error
		wantCode int
		wantOut  string
	}{
		{"nil", nil, 0, ""},
		{"plain error", errors.New("exec k3s: boom"), 1, "nodeboot: exec k3s: boom\n"},
		{"child status", cmdutil.ExitStatus(143), 143, ""},
		{"usage", cmdutil.UsageErrorf("--mode %q: bad", "x"), 2, "nodeboot: --mode \"x\": bad\n"},
		{"wrapped exit coder", fmt.Errorf("seed: %w", cli.Exit("not ready", cmdutil.ExitNotReady)), 3, "nodeboot: seed: not ready\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var b bytes.Buffer
			if code := report(&b, tt.err); code != tt.wantCode {
				t.Errorf("code = %d, want %d", code, tt.wantCode)
			}
			if b.String() != tt.wantOut {
				t.Errorf("printed %q, want %q", b.String(), tt.wantOut)
			}
		})
	}
	if cmdutil.ExitStatus(0) != nil {
		t.Error("ExitStatus(0) != nil")
	}
}

// TestOutputFlag: --output means the output format in every command, as in
// kubectl, and -o is always its short form; NODEBOOT_OUTPUT belongs to it
// alone (discover's file is --output-file, NODEBOOT_OUTPUT_FILE).
func TestOutputFlag(t *testing.T) {
	var walk func(path string, cmds []*cli.Command)
	seen := 0
	walk = func(path string, cmds []*cli.Command) {
		for _, c := range cmds {
			name := strings.TrimSpace(path + " " + c.Name)
			for _, f := range c.Flags {
				names := f.Names()
				var env []string
				if d, ok := f.(cli.DocGenerationFlag); ok {
					env = d.GetEnvVars()
				}
				isOutput := names[0] == "output"
				if isOutput {
					seen++
					if !slices.Contains(names, "o") {
						t.Errorf("%s: --output has no -o alias (names %v)", name, names)
					}
				} else if slices.Contains(names, "o") {
					t.Errorf("%s: -o is the short form of --%s; it must be --output's", name, names[0])
				}
				for _, e := range env {
					if e == "NODEBOOT_OUTPUT" && !isOutput {
						t.Errorf("%s: --%s reads NODEBOOT_OUTPUT, which is --output's (the format)", name, names[0])
					}
				}
			}
			walk(name, c.Subcommands)
		}
	}
	walk("", commands(slog.New(slog.DiscardHandler), cmdutil.IOStreams{}))
	if seen < 3 {
		t.Errorf("found --output in %d commands, want at least status, up and discover", seen)
	}
}
