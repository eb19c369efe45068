//go:build !nointegration

package exec_test

import (
	"bufio"
	"context"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// trees lists the directories below dir that hold a seeded tree (a
// proc/sys directory), however nodeboot named them.
func trees(t *testing.T, dir string) []string {
	t.Helper()
	var out []string
	filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err == nil && d.IsDir() && strings.HasSuffix(p, "/proc/sys") {
			out = append(out, strings.TrimSuffix(p, "/proc/sys"))
			return filepath.SkipDir
		}
		return nil
	})
	return out
}

// TestIntegrationKilledExecTree SIGKILLs a real "nodeboot exec --profile
// k3s" (no cleanup can run) and checks that the next exec removes the tree
// it left, and removes its own.
func TestIntegrationKilledExecTree(t *testing.T) {
	requiresRoot(t)
	bin := nodeboot(t)
	runtimeDir := t.TempDir()
	env := append(os.Environ(), "XDG_RUNTIME_DIR="+runtimeDir)

	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, "exec", "--profile", "k3s", "--", "sh", "-c", "echo started; exec sleep 60")
	cmd.Env = env
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	if line, err := bufio.NewReader(out).ReadString('\n'); err != nil || line != "started\n" {
		t.Fatalf("the command did not start: %q, %v", line, err)
	}
	left := trees(t, runtimeDir)
	if len(left) != 1 {
		t.Fatalf("trees while exec runs: %v, want one", left)
	}
	cmd.Process.Signal(syscall.SIGKILL)
	cmd.Wait()
	if _, err := os.Stat(left[0]); err != nil {
		t.Fatalf("the killed exec's tree is gone before the next run: %v", err)
	}

	r := runNodeboot(t, "", env, "exec", "--profile", "k3s", "--", "cat", "/proc/sys/vm/overcommit_memory")
	if r.code != 0 || strings.TrimSpace(r.stdout) != "1" {
		t.Fatalf("second exec: exit %d, stdout %q, stderr:\n%s", r.code, r.stdout, r.stderr)
	}
	if got := trees(t, runtimeDir); len(got) != 0 {
		t.Errorf("trees left after the second exec: %v (the killed run's was %s)", got, left[0])
	}
	if !strings.Contains(r.stderr, "removed the temporary tree of an exec that died") {
		t.Errorf("the second exec did not say it removed the leftover; stderr:\n%s", r.stderr)
	}
}

// TestIntegrationSignalWhileSeeding sends SIGTERM to a real exec while it
// seeds a profile of many files: it must stop seeding and exit 143 without
// ever running the command.
func TestIntegrationSignalWhileSeeding(t *testing.T) {
	requiresRoot(t)
	bin := nodeboot(t)
	dir := t.TempDir()
	const files = 10000
	var b strings.Builder
	b.WriteString("name: many\nbase: empty\nredirects: [/proc/sys/many]\nfiles:\n")
	for i := 0; i < files; i++ {
		fmt.Fprintf(&b, "  - {path: /proc/sys/many/f%d, content: \"1\"}\n", i)
	}
	prof := filepath.Join(dir, "many.yaml")
	if err := os.WriteFile(prof, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	root := filepath.Join(dir, "root")
	marker := filepath.Join(dir, "ran")

	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, "exec", "--profile", prof, "--root", root, "--", "touch", marker)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	// Signal once seeding is under way (every file is fsynced, so 10,000
	// take far longer than this poll).
	seeded := func() int {
		ents, _ := os.ReadDir(filepath.Join(root, "proc/sys/many"))
		return len(ents)
	}
	for seeded() == 0 {
		if ctx.Err() != nil {
			t.Fatal("seeding never started")
		}
		time.Sleep(5 * time.Millisecond)
	}
	signalled := time.Now()
	cmd.Process.Signal(syscall.SIGTERM)
	err := cmd.Wait()
	took := time.Since(signalled)
	if ctx.Err() != nil {
		t.Fatalf("exec did not end after SIGTERM; stderr:\n%s", stderr.String())
	}
	code := cmd.ProcessState.ExitCode()
	if code != 143 || !strings.Contains(stderr.String(), "interrupted by SIGTERM before the command ran") {
		t.Errorf("exit %d (%v), want 143 and the reason; stderr:\n%s", code, err, stderr.String())
	}
	if n := seeded(); n >= files {
		t.Errorf("all %d files were seeded after SIGTERM (it took %s to exit): the signal did not stop the seeding", n, took)
	}
	if _, err := os.Stat(marker); err == nil {
		t.Error("the command ran although SIGTERM came before it started")
	}
	t.Logf("exited %s after SIGTERM, %d of %d files seeded", took, seeded(), files)
}

// TestIntegrationFIFOProfile: exec --profile FIFO used to hang in open(2)
// (and, being subscribed to signals already, ignore SIGTERM).
func TestIntegrationFIFOProfile(t *testing.T) {
	fifo := filepath.Join(t.TempDir(), "p.yaml")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	r := runNodeboot(t, "", os.Environ(), "exec", "--profile", fifo, "--", "true")
	if r.code != 2 || !strings.Contains(r.stderr, fifo+" is a FIFO, not a regular file") {
		t.Errorf("exit %d, stderr %q; want 2 and the reason", r.code, r.stderr)
	}
}
