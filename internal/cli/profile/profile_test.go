package profile

import (
	"bytes"
	"errors"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/urfave/cli/v2"

	"github.com/nodeboot/nodeboot/internal/cli/cmdutil"
	"github.com/nodeboot/nodeboot/profile"
)

func run(t *testing.T, args ...string) (string, int, error) {
	t.Helper()
	var out bytes.Buffer
	streams := cmdutil.IOStreams{In: strings.NewReader(""), Out: &out, ErrOut: io.Discard}
	app := &cli.App{
		Name:           "nodeboot",
		Writer:         &out,
		ErrWriter:      io.Discard,
		ExitErrHandler: func(*cli.Context, error) {},
		Commands:       []*cli.Command{NewCommand(slog.New(slog.NewTextHandler(io.Discard, nil)), streams)},
	}
	err := app.Run(append([]string{"nodeboot", "profile"}, args...))
	code := 0
	if err != nil {
		code = 1
		var ec cli.ExitCoder
		if errors.As(err, &ec) {
			code = ec.ExitCode()
		}
	}
	return out.String(), code, err
}

func TestProfileCommand(t *testing.T) {
	dir := t.TempDir()
	mine := filepath.Join(dir, "mine.yaml")
	if err := os.WriteFile(mine, []byte("name: mine\nbase: k3s\nfiles:\n  - path: /proc/sys/kernel/panic\n    content: \"0\\n\"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name     string
		args     []string
		wantCode int
		wantOut  []string
		wantErr  string
	}{
		{name: "list", args: []string{"list"}, wantOut: []string{"NAME", "k3s ", "empty "}},
		{name: "show built-in", args: []string{"show", "k3s"}, wantOut: []string{"name: k3s\n", "  - path: /proc/sys/vm/overcommit_memory\n    content: \"1\\n\"\n", "redirects:\n  - /proc/sys\n"}},
		{name: "show merged file", args: []string{"show", mine}, wantOut: []string{"# merged: builtin:k3s <- " + mine, "name: mine\n", "  - path: /proc/sys/kernel/panic\n    content: \"0\\n\"\n"}},
		{name: "show without a name", args: []string{"show"}, wantCode: cmdutil.ExitUsage, wantErr: "want one NAME or FILE"},
		{name: "show unknown", args: []string{"show", "k4s"}, wantCode: cmdutil.ExitUsage, wantErr: `profile "k4s"`},
		{name: "list with an argument", args: []string{"list", "x"}, wantCode: cmdutil.ExitUsage, wantErr: "unexpected argument"},
		{name: "unknown subcommand", args: []string{"lst"}, wantCode: cmdutil.ExitUsage, wantErr: `unknown command "lst"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, code, err := run(t, tt.args...)
			if code != tt.wantCode {
				t.Fatalf("exit code %d (err %v), want %d", code, err, tt.wantCode)
			}
			if tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)) {
				t.Errorf("error %v, want one containing %q", err, tt.wantErr)
			}
			for _, w := range tt.wantOut {
				if !strings.Contains(out, w) {
					t.Errorf("stdout does not contain %q:\n%s", w, out)
				}
			}
		})
	}
}

// TestShowRoundTrip checks that "profile show" output is a profile that
// loads to the same thing.
func TestShowRoundTrip(t *testing.T) {
	out, _, err := run(t, "show", "k3s")
	if err != nil {
		t.Fatal(err)
	}
	f := filepath.Join(t.TempDir(), "k3s-copy.yaml")
	if err := os.WriteFile(f, []byte(out), 0o644); err != nil {
		t.Fatal(err)
	}
	copyOf, err := profile.Load(f)
	if err != nil {
		t.Fatalf("load shown profile: %v", err)
	}
	orig, _ := profile.Load("k3s")
	if !bytes.Equal(stripHeader(copyOf.YAML()), stripHeader(orig.YAML())) {
		t.Errorf("show output does not load back to the same profile")
	}
}

func stripHeader(b []byte) []byte {
	_, rest, _ := bytes.Cut(b, []byte("\n"))
	return rest
}
