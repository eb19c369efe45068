package seed

import (
	"bytes"
	"errors"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/nodeboot/nodeboot/internal/cli/cmdutil"
)

// run runs "nodeboot seed ARGS..." and returns stdout and the exit code.
func run(t *testing.T, env map[string]string, args ...string) (string, int, error) {
	t.Helper()
	for k, v := range env {
		t.Setenv(k, v)
	}
	var out bytes.Buffer
	streams := cmdutil.IOStreams{In: strings.NewReader(""), Out: &out, ErrOut: io.Discard}
	app := &cli.App{
		Name:           "nodeboot",
		Writer:         &out,
		ErrWriter:      io.Discard,
		ExitErrHandler: func(*cli.Context, error) {},
		Commands:       []*cli.Command{NewCommand(slog.New(slog.NewTextHandler(io.Discard, nil)), streams)},
	}
	err := app.Run(append([]string{"nodeboot", "seed"}, args...))
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

func TestSeedCommand(t *testing.T) {
	dir := t.TempDir()
	root := filepath.Join(dir, "root")
	mine := filepath.Join(dir, "mine.yaml")
	if err := os.WriteFile(mine, []byte("name: mine\nbase: empty\nredirects: [/proc/sys]\nfiles:\n  - path: /proc/sys/kernel/panic\n    content: \"10\\n\"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	bad := filepath.Join(dir, "bad.yaml")
	if err := os.WriteFile(bad, []byte("name: bad\nfiles:\n  - path: relative\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	worldWritable := filepath.Join(dir, "ww")
	if err := os.Mkdir(worldWritable, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(worldWritable, 0o777); err != nil {
		t.Fatal(err)
	}

	link := filepath.Join(dir, "link")
	if err := os.Symlink(root, link); err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name     string
		env      map[string]string
		args     []string
		wantCode int
		// wantOut are lines stdout must contain; wantErr is in the error.
		wantOut []string
		wantErr string
	}{
		{
			name:    "k3s",
			args:    []string{"--root", root},
			wantOut: []string{"created /proc/sys/vm/overcommit_memory\n", "dynamic /sys/fs/cgroup\n", "created /proc/sys/kernel/osrelease (", "seeded " + root + " with profile k3s: "},
		},
		{
			name:    "again: unchanged",
			args:    []string{"--root", root},
			wantOut: []string{"unchanged /proc/sys/vm/overcommit_memory\n", " 0 created, 0 updated, "},
		},
		{
			name:    "root and profile from the environment",
			env:     map[string]string{"NODEBOOT_ROOT": filepath.Join(dir, "envroot"), "NODEBOOT_PROFILE": mine},
			wantOut: []string{"created /proc/sys/kernel/panic\n", "with profile mine: 1 created, 0 updated, 0 unchanged, 0 kept, 0 dynamic\n"},
		},
		{
			name:     "no root",
			wantCode: cmdutil.ExitUsage,
			wantErr:  "--root is missing",
		},
		{
			name:     "unknown built-in",
			args:     []string{"--root", root, "--profile", "k4s"},
			wantCode: cmdutil.ExitUsage,
			wantErr:  `profile "k4s": no built-in profile`,
		},
		{
			name:     "missing file",
			args:     []string{"--root", root, "--profile", filepath.Join(dir, "nope.yaml")},
			wantCode: cmdutil.ExitUsage,
			wantErr:  "nope.yaml: no such file",
		},
		{
			name:     "invalid profile",
			args:     []string{"--root", root, "--profile", bad},
			wantCode: cmdutil.ExitUsage,
			wantErr:  "bad.yaml: files[0] (relative)",
		},
		{
			name:     "unsafe root",
			args:     []string{"--root", worldWritable},
			wantCode: cmdutil.ExitFailure,
			wantErr:  "chmod go-w " + worldWritable,
		},
		{
			name:     "root under a directory every user can write",
			args:     []string{"--root", filepath.Join(worldWritable, "root")},
			wantCode: cmdutil.ExitFailure,
			wantErr:  worldWritable + " is writable by every user",
		},
		{
			name:     "root through a symlink",
			args:     []string{"--root", link},
			wantCode: cmdutil.ExitFailure,
			wantErr:  "follows no symlink in --root",
		},
		{
			name:     "stray argument",
			args:     []string{"--root", root, "k3s"},
			wantCode: cmdutil.ExitUsage,
			wantErr:  `unexpected argument "k3s"`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, code, err := run(t, tt.env, tt.args...)
			if code != tt.wantCode {
				t.Fatalf("exit code %d (err %v), want %d\n%s", code, err, tt.wantCode, out)
			}
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Errorf("error %v, want one containing %q", err, tt.wantErr)
				}
				if err != nil && strings.Contains(err.Error(), "\n") {
					t.Errorf("error is not one line: %q", err)
				}
			}
			for _, w := range tt.wantOut {
				if !strings.Contains(out, w) {
					t.Errorf("stdout does not contain %q:\n%s", w, out)
				}
			}
		})
	}
}

// TestSeedSpecialProfile: a FIFO as --profile used to hang seed (os.Open
// waits for a writer), /dev/zero to read until memory ran out; both are
// usage errors now, at once.
func TestSeedSpecialProfile(t *testing.T) {
	dir := t.TempDir()
	fifo := filepath.Join(dir, "profile.yaml")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ profile, want string }{
		{fifo, fifo + " is a FIFO, not a regular file"},
		{"/dev/zero", "/dev/zero is a character device, not a regular file"},
	} {
		t.Run(filepath.Base(tc.profile), func(t *testing.T) {
			type result struct {
				code int
				err  error
			}
			done := make(chan result, 1)
			go func() {
				_, code, err := run(t, nil, "--root", filepath.Join(dir, "root"), "--profile", tc.profile)
				done <- result{code, err}
			}()
			select {
			case r := <-done:
				if r.code != cmdutil.ExitUsage || r.err == nil || !strings.Contains(r.err.Error(), tc.want) {
					t.Fatalf("seed --profile %s: exit %d, %v; want %d and an error containing %q", tc.profile, r.code, r.err, cmdutil.ExitUsage, tc.want)
				}
			case <-time.After(20 * time.Second):
				t.Fatalf("seed --profile %s did not return within 20s", tc.profile)
			}
			if _, err := os.Lstat(filepath.Join(dir, "root")); err == nil {
				t.Errorf("seed made the root although the profile was refused")
			}
		})
	}
}
