package down_test

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/nodeboot/nodeboot/internal/cli"
	"github.com/nodeboot/nodeboot/internal/instance"
	"github.com/nodeboot/nodeboot/internal/testenv"
)

// The stop path (SIGTERM to a real supervisor, the lock released, nothing
// left) is tested with real processes in internal/cli/up (TestIntegrationDetachStatusDown).

func run(args ...string) (int, string, string) {
	var out, errOut bytes.Buffer
	code := cli.Run(append([]string{"nodeboot"}, args...), strings.NewReader(""), &out, &errOut)
	return code, out.String(), errOut.String()
}

func TestNotRunning(t *testing.T) {
	for _, dir := range []string{t.TempDir(), filepath.Join(t.TempDir(), "never-made")} {
		code, stdout, stderr := run("down", "--data-dir", dir)
		if code != 0 || stdout != "nodeboot is not running for "+dir+"\n" && !strings.HasPrefix(stdout, "nodeboot is not running for "+dir+" ") {
			t.Errorf("%s: exit %d, stdout %q, stderr %q", dir, code, stdout, stderr)
		}
	}
	if code, _, stderr := run("down", "--purge-k3s"); code != 2 || !strings.Contains(stderr, "--purge-k3s goes with --purge") {
		t.Errorf("--purge-k3s alone: exit %d, %q", code, stderr)
	}
}

// TestRefusesStranger: the lock is held by a process that is not nodeboot
// (flock(1) and sleep): down must not signal it.
func TestRefusesStranger(t *testing.T) {
	testenv.LookPath(t, "flock") // util-linux
	in, err := instance.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("flock", "-n", in.LockPath(), "sleep", "60")
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL); cmd.Wait() }()
	deadline := time.Now().Add(10 * time.Second)
	for {
		if _, running, _ := in.Running(); running {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("flock did not take the lock")
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err := os.WriteFile(in.PIDPath(), []byte(strconv.Itoa(cmd.Process.Pid)+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	code, _, stderr := run("down", "--data-dir", in.Dir, "--timeout", "1s")
	if code != 1 || !strings.Contains(stderr, "not nodeboot; not signalling it") {
		t.Errorf("exit %d, stderr %q", code, stderr)
	}
	if err := cmd.Process.Signal(syscall.Signal(0)); err != nil {
		t.Errorf("the stranger was signalled: %v", err)
	}
}

// TestForeignDataDir is a directory of the user's that holds root/ and
// logs/ of its own: "up" used to adopt it as its data dir (any directory,
// / included) and seed into its root/, and "down --purge" then deleted
// root/ and logs/. Now up refuses it before writing anything, and purge
// removes nothing from a directory without nodeboot's marker.
func TestForeignDataDir(t *testing.T) {
	dir := t.TempDir()
	for _, f := range []string{"root/precious.txt", "logs/app.log", "notes.txt"} {
		p := filepath.Join(dir, f)
		if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte("mine\n"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	before := listTree(t, dir)

	code, _, stderr := run("up", "--data-dir", dir, "--k3s", "/bin/true", "--max-restarts", "0", "--config", os.DevNull)
	if code == 0 || !strings.Contains(stderr, "nodeboot will not adopt it") {
		t.Errorf("up --data-dir DIR-OF-MINE: exit %d, stderr %q; want a refusal", code, stderr)
	}
	code, _, stderr = run("down", "--purge", "--data-dir", dir)
	if code != 1 || !strings.Contains(stderr, "has no nodeboot.marker") {
		t.Errorf("down --purge: exit %d, stderr %q; want a refusal", code, stderr)
	}
	if after := listTree(t, dir); after != before {
		t.Errorf("the directory changed:\nbefore %s\nafter  %s", before, after)
	}
}

// TestSlashIsNoDataDir: --data-dir / is refused by name, before anything
// looks inside (never run a purge against the real / in a test: the code
// before the marker deleted /root, the data dir's "root").
func TestSlashIsNoDataDir(t *testing.T) {
	if _, err := instance.Open("/"); err == nil || !strings.Contains(err.Error(), "/ cannot be a data dir") {
		t.Errorf("Open(/) = %v", err)
	}
	in, err := instance.At("/")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := in.Purge(true); err == nil || !strings.Contains(err.Error(), "/ cannot be a data dir") {
		t.Errorf("Purge(/) = %v", err)
	}
}

// TestPurge removes what nodeboot made, and only that.
func TestPurge(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	in, err := instance.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"root/proc/sys/kernel/panic", "k3s/server/token", "bin/k3s", "logs/k3s.log", "state.json", "kubeconfig.yaml", "mine.txt"} {
		p := filepath.Join(dir, f)
		if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte("x\n"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	// A link planted in the tree: it goes, its target stays.
	outside := filepath.Join(t.TempDir(), "outside")
	if err := os.WriteFile(outside, []byte("precious\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(outside, filepath.Join(dir, "root/link")); err != nil {
		t.Fatal(err)
	}
	code, stdout, stderr := run("down", "--purge", "--data-dir", in.Dir)
	if code != 0 {
		t.Fatalf("down --purge: exit %d, %s", code, stderr)
	}
	for _, gone := range []string{"root", "logs", "state.json", "kubeconfig.yaml"} {
		if _, err := os.Lstat(filepath.Join(dir, gone)); err == nil {
			t.Errorf("%s was not purged", gone)
		}
		if !strings.Contains(stdout, "removed "+filepath.Join(dir, gone)+"\n") {
			t.Errorf("stdout does not say %s was removed:\n%s", gone, stdout)
		}
	}
	for _, kept := range []string{"k3s/server/token", "bin/k3s", "mine.txt", "nodeboot.marker"} {
		if _, err := os.Lstat(filepath.Join(dir, kept)); err != nil {
			t.Errorf("%s was removed: %v", kept, err)
		}
	}
	if b, err := os.ReadFile(outside); err != nil || string(b) != "precious\n" {
		t.Errorf("the link's target changed: %q, %v", b, err)
	}

	// Once nothing else of nodeboot's is left, the directory nodeboot
	// made goes too.
	os.Remove(filepath.Join(dir, "mine.txt"))
	os.RemoveAll(filepath.Join(dir, "bin"))
	if code, stdout, stderr := run("down", "--purge", "--purge-k3s", "--data-dir", in.Dir); code != 0 || !strings.Contains(stdout, "removed "+filepath.Join(dir, "k3s")+"\n") {
		t.Fatalf("down --purge --purge-k3s: exit %d, %s%s", code, stdout, stderr)
	}
	if _, err := os.Lstat(dir); err == nil {
		t.Errorf("the data dir nodeboot made is still there: %v", listTree(t, dir))
	}
}

// listTree is every path below dir with its size, sorted.
func listTree(t *testing.T, dir string) string {
	t.Helper()
	var out []string
	filepath.Walk(dir, func(p string, fi os.FileInfo, err error) error {
		if err == nil {
			out = append(out, strings.TrimPrefix(p, dir)+":"+strconv.FormatInt(fi.Size(), 10))
		}
		return nil
	})
	return strings.Join(out, " ")
}
