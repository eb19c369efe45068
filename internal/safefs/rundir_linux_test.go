package safefs

import (
	"bufio"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// runDirChild makes a RunDir in a child process (this test binary) and
// returns the child, running, and the directory's path.
func runDirChild(t *testing.T, parent string) (*exec.Cmd, string) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestRunDirHelper$", "-test.count=1")
	cmd.Env = append(os.Environ(), "SAFEFS_RUNDIR_PARENT="+parent)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil {
		t.Fatalf("child: %v", err)
	}
	path, ok := strings.CutPrefix(strings.TrimSpace(line), "RUNDIR ")
	if !ok {
		t.Fatalf("child said %q", line)
	}
	return cmd, path
}

// TestRunDirHelper is the child of runDirChild: it holds a RunDir until
// it is killed.
func TestRunDirHelper(t *testing.T) {
	parent := os.Getenv("SAFEFS_RUNDIR_PARENT")
	if parent == "" {
		t.Skip("helper process of TestRunDir")
	}
	r, _, err := NewRunDir(parent)
	if err != nil {
		fmt.Println("ERROR", err)
		os.Exit(1)
	}
	mustWrite(t, filepath.Join(r.Path(), "proc/sys/kernel/panic"), "10\n")
	fmt.Println("RUNDIR", r.Path())
	time.Sleep(time.Hour)
}

func TestRunDir(t *testing.T) {
	parent := filepath.Join(t.TempDir(), "runs")
	live, livePath := runDirChild(t, parent)
	dead, deadPath := runDirChild(t, parent)
	if err := dead.Process.Kill(); err != nil { // SIGKILL: no cleanup runs
		t.Fatal(err)
	}
	dead.Wait()
	if _, err := os.Stat(deadPath); err != nil {
		t.Fatalf("the killed run's directory is gone already: %v", err)
	}

	r, swept, err := NewRunDir(parent)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(swept, []string{deadPath}) {
		t.Errorf("swept %v, want [%s]", swept, deadPath)
	}
	if _, err := os.Lstat(deadPath); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("the killed run's directory is still there: %v", err)
	}
	if _, err := os.Stat(filepath.Join(livePath, "proc/sys/kernel/panic")); err != nil {
		t.Errorf("a live run's directory was touched: %v", err)
	}
	if m := modeOf(t, r.Path()); m != fs.ModeDir|0o700 {
		t.Errorf("run directory mode %v, want 0700", m)
	}
	if m := modeOf(t, parent); m != fs.ModeDir|0o700 {
		t.Errorf("parent mode %v, want 0700", m)
	}
	if err := r.Remove(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Lstat(r.Path()); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Remove left %s: %v", r.Path(), err)
	}
	live.Process.Kill()
}

// TestRunDirSweepUnpublished: a directory that was never published (its
// run died between mkdir and rename) goes only once it is old.
func TestRunDirSweepUnpublished(t *testing.T) {
	parent, err := OpenDir(filepath.Join(t.TempDir(), "runs"), DirOptions{Create: true})
	if err != nil {
		t.Fatal(err)
	}
	defer parent.Close()
	if err := os.Mkdir(filepath.Join(parent.Path(), newPrefix+"x"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(filepath.Join(parent.Path(), "other"), 0o700); err != nil {
		t.Fatal(err)
	}
	swept, err := sweep(parent, time.Now())
	if err != nil || len(swept) != 0 {
		t.Fatalf("sweep of a young unpublished directory = %v, %v; want nothing", swept, err)
	}
	swept, err = sweep(parent, time.Now().Add(2*newGrace))
	if err != nil || len(swept) != 1 || filepath.Base(swept[0]) != newPrefix+"x" {
		t.Fatalf("sweep of an old unpublished directory = %v, %v", swept, err)
	}
	if _, err := os.Stat(filepath.Join(parent.Path(), "other")); err != nil {
		t.Errorf("sweep removed a directory that is not a run's: %v", err)
	}
}
