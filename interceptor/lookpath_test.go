package interceptor

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestLookPath: a missing command's error says what was looked for, once,
// and still matches exec.ErrNotFound.
func TestLookPath(t *testing.T) {
	dir := t.TempDir()
	bin := filepath.Join(dir, "tool")
	if err := os.WriteFile(bin, []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	plain := filepath.Join(dir, "plain")
	if err := os.WriteFile(plain, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	env := []string{"PATH=/nonexistent-a:" + dir}
	tests := []struct {
		name, file string
		want       string // the path found, or the whole error text
		notFound   bool
	}{
		{"found in PATH", "tool", bin, false},
		{"absolute path", bin, bin, false},
		{"missing absolute path", "/no/such/binary", "/no/such/binary: no such file", true},
		{"missing relative path", "./nosuch", "./nosuch: no such file", true},
		{"missing in PATH", "nosuchcmd", "nosuchcmd: command not found in PATH (/nonexistent-a:" + dir + ")", true},
		{"not executable", plain, plain + ": permission denied", false},
		{"directory", dir, dir + ": is a directory", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := lookPath(tt.file, env, "")
			if err == nil {
				if got != tt.want {
					t.Errorf("lookPath(%q) = %q, want %q", tt.file, got, tt.want)
				}
				return
			}
			if err.Error() != tt.want {
				t.Errorf("lookPath(%q): %q, want %q", tt.file, err, tt.want)
			}
			if errors.Is(err, exec.ErrNotFound) != tt.notFound {
				t.Errorf("lookPath(%q): errors.Is(err, exec.ErrNotFound) = %v, want %v", tt.file, !tt.notFound, tt.notFound)
			}
			if strings.Contains(err.Error(), "$PATH") {
				t.Errorf("lookPath(%q): %q names $PATH", tt.file, err)
			}
		})
	}
}
