package instance

import (
	"errors"
	"github.com/nodeboot/nodeboot/internal/testenv"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

func TestOpen(t *testing.T) {
	base := t.TempDir()
	real := filepath.Join(base, "real")
	if err := os.Mkdir(real, 0o700); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(base, "link")
	if err := os.Symlink(real, link); err != nil {
		t.Fatal(err)
	}
	open := filepath.Join(base, "open")
	if err := os.Mkdir(open, 0o777); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(open, 0o777); err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(base, "file")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name    string
		dir     string
		wantErr string
	}{
		{"new, nested", filepath.Join(base, "a", "b", "data"), ""},
		{"existing", real, ""},
		{"symlink", link, "is a symlink"},
		{"world-writable", open, "chmod go-w " + open},
		{"under a world-writable directory", filepath.Join(open, "data"), open + " is writable by every user (mode 0777), who could replace what is below it"},
		{"under a symlink", filepath.Join(link, "data"), "follows no symlink in its data dir"},
		{"a file", file, "is a regular file, not a directory"},
		{"empty", "", "pass --data-dir"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in, err := Open(tt.dir)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("Open(%q) = %v, want an error containing %q", tt.dir, err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			for _, d := range []string{in.Dir, in.LogsDir()} {
				fi, err := os.Lstat(d)
				if err != nil {
					t.Fatal(err)
				}
				if !fi.IsDir() || fi.Mode().Perm() != 0o700 {
					t.Errorf("%s: mode %v, want a 0700 directory", d, fi.Mode())
				}
			}
		})
	}
}

func TestOpenRelative(t *testing.T) {
	t.Chdir(t.TempDir())
	in, err := Open("data")
	if err != nil {
		t.Fatal(err)
	}
	if !filepath.IsAbs(in.Dir) {
		t.Errorf("Dir %q is not absolute", in.Dir)
	}
}

// TestLock takes the lock in a real second process (flock is per open file
// description, so a second Lock in this process would conflict too, but a
// process is what "up" meets).
func TestLock(t *testing.T) {
	in, err := Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if _, running, err := in.Running(); err != nil || running {
		t.Fatalf("Running before any lock = %v, %v", running, err)
	}
	// flock(1) holds the lock from another process, like a running "up".
	testenv.LookPath(t, "flock") // util-linux
	holder := exec.Command("flock", "-n", in.LockPath(), "sleep", "60")
	// flock(1) forks sleep, which inherits the locked descriptor: kill the
	// whole group to drop the lock.
	holder.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := holder.Start(); err != nil {
		t.Fatal(err)
	}
	kill := func() { syscall.Kill(-holder.Process.Pid, syscall.SIGKILL); holder.Wait() }
	t.Cleanup(kill)
	if err := os.WriteFile(in.PIDPath(), []byte(strconv.Itoa(holder.Process.Pid)+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		_, running, err := in.Running()
		if err != nil {
			t.Fatal(err)
		}
		if running {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("flock(1) did not take the lock within 10s")
		}
		time.Sleep(20 * time.Millisecond)
	}

	err = in.Lock()
	var le *LockedError
	if !errors.As(err, &le) || !errors.Is(err, ErrLocked) {
		t.Fatalf("Lock while held = %v, want a *LockedError", err)
	}
	want := "another nodeboot is running for " + in.Dir + " (pid " + strconv.Itoa(holder.Process.Pid) + "); stop it with `nodeboot down --data-dir " + in.Dir + "`"
	if err.Error() != want {
		t.Errorf("error:\n got %s\nwant %s", err, want)
	}

	kill()
	// Wait returns when flock(1) is reaped; its sleep, which holds the
	// descriptor too, may still be exiting: the lock is free once it has.
	deadline = time.Now().Add(10 * time.Second)
	for {
		err := in.Lock()
		if err == nil {
			break
		}
		if !errors.Is(err, ErrLocked) || time.Now().After(deadline) {
			t.Fatalf("Lock after the holder died: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if _, running, _ := in.Running(); !running {
		t.Error("Running = false while we hold the lock")
	}
	if err := in.Unlock(); err != nil {
		t.Fatal(err)
	}
	if _, running, _ := in.Running(); running {
		t.Error("Running = true after Unlock")
	}
}

func TestLockRefusesSymlink(t *testing.T) {
	in, err := Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	target := filepath.Join(t.TempDir(), "victim")
	if err := os.Symlink(target, in.LockPath()); err != nil {
		t.Fatal(err)
	}
	if err := in.Lock(); err == nil {
		t.Fatal("Lock followed a symlink at nodeboot.lock")
	}
	if _, err := os.Lstat(target); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the link target was created: %v", err)
	}
}

func TestAdoptLock(t *testing.T) {
	in, err := Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if err := in.Lock(); err != nil {
		t.Fatal(err)
	}
	child, _ := At(in.Dir)
	if err := child.AdoptLock(in.LockFile()); err != nil {
		t.Fatalf("AdoptLock(the lock's own fd): %v", err)
	}
	f, err := os.CreateTemp(in.Dir, "x")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := child.AdoptLock(f); err == nil || !strings.Contains(err.Error(), "is not") {
		t.Errorf("AdoptLock(another file) = %v, want an error", err)
	}
}

func TestPIDFile(t *testing.T) {
	in, err := Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := in.ReadPID(); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("ReadPID without a file = %v", err)
	}
	// A symlink planted at the PID file is replaced, not written through.
	victim := filepath.Join(t.TempDir(), "victim")
	if err := os.WriteFile(victim, []byte("keep"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(victim, in.PIDPath()); err != nil {
		t.Fatal(err)
	}
	if err := in.WritePID(); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(victim); string(b) != "keep" {
		t.Errorf("the symlink's target was written: %q", b)
	}
	pid, err := in.ReadPID()
	if err != nil || pid != os.Getpid() {
		t.Fatalf("ReadPID = %d, %v; want %d", pid, err, os.Getpid())
	}
	if err := in.RemovePID(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Lstat(in.PIDPath()); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("PID file still there: %v", err)
	}
	// Another process's PID file is not ours to remove.
	if err := os.WriteFile(in.PIDPath(), []byte("1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := in.RemovePID(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Lstat(in.PIDPath()); err != nil {
		t.Errorf("RemovePID removed another process's PID file: %v", err)
	}
	if err := os.WriteFile(in.PIDPath(), []byte("x\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := in.ReadPID(); err == nil || !strings.Contains(err.Error(), "is not a PID") {
		t.Errorf("ReadPID of garbage = %v", err)
	}
}

// testState stands for package node's State, whose format this package
// does not know.
type testState struct {
	Phase     string    `json:"phase"`
	StartedAt time.Time `json:"startedAt"`
	PIDs      []int     `json:"pids"`
}

func TestState(t *testing.T) {
	in, err := Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	var got testState
	if err := in.ReadState(&got); !errors.Is(err, ErrNoState) {
		t.Fatalf("ReadState without a file = %v, want ErrNoState", err)
	}
	now := time.Now().UTC().Truncate(time.Second)
	s := &testState{Phase: "node-registered", StartedAt: now, PIDs: []int{10, 11}}
	if err := in.WriteState(s); err != nil {
		t.Fatal(err)
	}
	if err := in.ReadState(&got); err != nil {
		t.Fatal(err)
	}
	if got.Phase != s.Phase || !got.StartedAt.Equal(now) || len(got.PIDs) != 2 || got.PIDs[1] != 11 {
		t.Errorf("round trip: got %+v", got)
	}
	left, _ := filepath.Glob(filepath.Join(in.Dir, ".state.json.tmp-*"))
	if len(left) != 0 {
		t.Errorf("temporary files left: %v", left)
	}
	if err := os.WriteFile(in.StatePath(), []byte("{"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := in.ReadState(&got); err == nil || errors.Is(err, ErrNoState) {
		t.Errorf("ReadState of a broken file = %v, want a decode error", err)
	}
}

func TestEvents(t *testing.T) {
	in, err := Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	lines, off, err := in.ReadEvents(0)
	if err != nil || len(lines) != 0 || off != 0 {
		t.Fatalf("ReadEvents without a file = %q, %d, %v", lines, off, err)
	}
	log, err := in.OpenEvents(true)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"seeding", "starting-k3s"} {
		if err := log.Append(map[string]string{"kind": "phase", "phase": p}); err != nil {
			t.Fatal(err)
		}
	}
	lines, off, err = in.ReadEvents(0)
	if err != nil || len(lines) != 2 || string(lines[1]) != `{"kind":"phase","phase":"starting-k3s"}` {
		t.Fatalf("ReadEvents = %q, %v", lines, err)
	}
	// A half-written line is left for the next read.
	f, err := os.OpenFile(in.EventsPath(), os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteString(`{"kind":"phase","pha`)
	lines, off2, _ := in.ReadEvents(off)
	if len(lines) != 0 || off2 != off {
		t.Errorf("half line: %q, offset %d -> %d", lines, off, off2)
	}
	f.WriteString(`se":"ready"}` + "\n")
	f.Close()
	lines, _, _ = in.ReadEvents(off2)
	if len(lines) != 1 || string(lines[0]) != `{"kind":"phase","phase":"ready"}` {
		t.Errorf("completed line: %q", lines)
	}
	log.Close()
	// A new run truncates; a follower with an old offset starts over.
	log, err = in.OpenEvents(true)
	if err != nil {
		t.Fatal(err)
	}
	log.Append(map[string]string{"phase": "seeding"})
	log.Close()
	lines, _, _ = in.ReadEvents(off)
	if len(lines) != 1 || string(lines[0]) != `{"phase":"seeding"}` {
		t.Errorf("after truncation: %q", lines)
	}
}

func TestOpenLogRefusesSymlink(t *testing.T) {
	in, err := Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	victim := filepath.Join(t.TempDir(), "victim")
	if err := os.Symlink(victim, in.K3sLog()); err != nil {
		t.Fatal(err)
	}
	if f, err := OpenLog(in.K3sLog()); err == nil {
		f.Close()
		t.Fatal("OpenLog followed a symlink")
	}
	f, err := OpenLog(in.NodebootLog())
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if fi, _ := f.Stat(); fi.Mode().Perm() != 0o600 {
		t.Errorf("log mode %v, want 0600", fi.Mode().Perm())
	}
}
