package safefs

import (
	"github.com/nodeboot/nodeboot/internal/testenv"

	"errors"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"
)

func openDirFD(t *testing.T, dir string) int {
	t.Helper()
	fd, err := unix.Open(dir, DirFlags, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Close(fd) })
	return fd
}

func mustWrite(t *testing.T, name, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(name), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(name, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

func mustRead(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func modeOf(t *testing.T, name string) fs.FileMode {
	t.Helper()
	fi, err := os.Lstat(name)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Mode()
}

// noTemp fails if a temporary file is left in dir.
func noTemp(t *testing.T, dir string) {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), DefaultTempPrefix) || strings.HasSuffix(e.Name(), ".tmp") {
			t.Errorf("temporary file left: %s", e.Name())
		}
	}
}

func TestWalkAt(t *testing.T) {
	old := unix.Umask(0o077) // the modes asked for must not depend on it
	defer unix.Umask(old)
	root := t.TempDir()
	outside := t.TempDir()
	if err := os.MkdirAll(filepath.Join(root, "a/b"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(outside, filepath.Join(root, "a/link")); err != nil {
		t.Fatal(err)
	}
	mustWrite(t, filepath.Join(root, "a/file"), "x")
	fd := openDirFD(t, root)

	tests := []struct {
		name    string
		rel     string
		create  bool
		is      error
		wantMsg string
	}{
		{"existing", "a/b", false, nil, ""},
		{"itself", "", false, nil, ""},
		{"created", "a/b/c/d", true, nil, ""},
		{"missing", "a/nope", false, fs.ErrNotExist, "/a/nope"},
		{"symlink", "a/link/x", true, ErrSymlink, "a/link is a symlink to"},
		{"a file", "a/file/x", true, ErrWrongType, "a/file is a regular file, not a directory"},
		{"dot-dot", "a/../..", false, nil, `element ".." could leave`},
		{"empty element", "a//b", false, nil, `element ""`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := WalkAt(fd, tt.rel, WalkOptions{Create: tt.create, Perm: 0o751, Base: root})
			if tt.wantMsg == "" {
				if err != nil {
					t.Fatal(err)
				}
				unix.Close(got)
				return
			}
			if err == nil {
				unix.Close(got)
				t.Fatalf("WalkAt(%q) succeeded", tt.rel)
			}
			if tt.is != nil && !errors.Is(err, tt.is) {
				t.Errorf("error %v is not %v", err, tt.is)
			}
			if !strings.Contains(err.Error(), tt.wantMsg) {
				t.Errorf("error %q does not contain %q", err, tt.wantMsg)
			}
		})
	}
	for _, d := range []string{"a/b/c", "a/b/c/d"} {
		if m := modeOf(t, filepath.Join(root, d)); m != fs.ModeDir|0o751 {
			t.Errorf("%s: mode %v, want drwxr-x--x", d, m)
		}
	}
	if entries, _ := os.ReadDir(outside); len(entries) != 0 {
		t.Errorf("WalkAt created %v through the symlink", entries)
	}

	// Check sees every directory opened on the way.
	var seen []string
	got, err := WalkAt(fd, "a/b/c", WalkOptions{Base: "/R", Check: func(_ int, p string) error {
		seen = append(seen, p)
		return nil
	}})
	if err != nil {
		t.Fatal(err)
	}
	unix.Close(got)
	if strings.Join(seen, ",") != "/R/a,/R/a/b,/R/a/b/c" {
		t.Errorf("Check saw %v", seen)
	}
}

func TestWriteFileAt(t *testing.T) {
	old := unix.Umask(0o077)
	defer unix.Umask(old)
	dir := t.TempDir()
	victim := filepath.Join(t.TempDir(), "victim")
	mustWrite(t, victim, "precious")
	if err := os.Symlink(victim, filepath.Join(dir, "planted")); err != nil {
		t.Fatal(err)
	}
	fd := openDirFD(t, dir)

	for _, sync := range []bool{false, true} {
		if err := WriteFileAt(fd, "new", []byte("one"), 0o644, WriteOptions{Sync: sync}); err != nil {
			t.Fatal(err)
		}
		if got := mustRead(t, filepath.Join(dir, "new")); got != "one" {
			t.Errorf("content %q", got)
		}
		if m := modeOf(t, filepath.Join(dir, "new")); m != 0o644 {
			t.Errorf("mode %v, want 0644 whatever the umask", m)
		}
	}
	// A planted symlink is replaced, its target untouched.
	if err := WriteFileAt(fd, "planted", []byte("mine"), 0o600, WriteOptions{}); err != nil {
		t.Fatal(err)
	}
	if got := mustRead(t, victim); got != "precious" {
		t.Errorf("the symlink's target was written: %q", got)
	}
	if m := modeOf(t, filepath.Join(dir, "planted")); !m.IsRegular() {
		t.Errorf("planted is %v, want a regular file", m)
	}
	// NoReplace leaves an existing entry alone.
	err := WriteFileAt(fd, "new", []byte("two"), 0o644, WriteOptions{NoReplace: true, Path: "/x/new"})
	if !errors.Is(err, fs.ErrExist) || !strings.Contains(err.Error(), "/x/new") {
		t.Errorf("NoReplace over an existing file = %v, want fs.ErrExist naming /x/new", err)
	}
	if got := mustRead(t, filepath.Join(dir, "new")); got != "one" {
		t.Errorf("NoReplace replaced the file: %q", got)
	}
	// A directory in the way: an error, and no temporary file left.
	if err := os.Mkdir(filepath.Join(dir, "d"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := WriteFileAt(fd, "d", []byte("x"), 0o644, WriteOptions{}); err == nil {
		t.Error("WriteFileAt over a directory succeeded")
	}
	noTemp(t, dir)
}

func TestRewriteFileAt(t *testing.T) {
	dir := t.TempDir()
	fd := openDirFD(t, dir)
	file := filepath.Join(dir, "f")
	mustWrite(t, file, "old content")
	before := inode(t, file)
	// A reader that has the file open sees the new content: same inode.
	r, err := os.Open(file)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if err := RewriteFileAt(fd, "f", []byte("new"), 0o644); err != nil {
		t.Fatal(err)
	}
	if inode(t, file) != before {
		t.Error("the file was replaced, not rewritten in place")
	}
	b := make([]byte, 64)
	n, _ := r.ReadAt(b, 0)
	if string(b[:n]) != "new" {
		t.Errorf("an open reader sees %q", b[:n])
	}

	// A hard link to a file outside, and a symlink: replaced, never
	// written through.
	outside := filepath.Join(t.TempDir(), "outside")
	mustWrite(t, outside, "precious")
	if err := os.Link(outside, filepath.Join(dir, "hard")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(outside, filepath.Join(dir, "soft")); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"hard", "soft", "missing"} {
		if err := RewriteFileAt(fd, name, []byte("mine"), 0o644); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if got := mustRead(t, filepath.Join(dir, name)); got != "mine" {
			t.Errorf("%s holds %q", name, got)
		}
	}
	if got := mustRead(t, outside); got != "precious" {
		t.Errorf("the outside file was written: %q", got)
	}
	noTemp(t, dir)
}

func inode(t *testing.T, name string) uint64 {
	t.Helper()
	var st unix.Stat_t
	if err := unix.Lstat(name, &st); err != nil {
		t.Fatal(err)
	}
	return st.Ino
}

func TestReadFileAt(t *testing.T) {
	dir := t.TempDir()
	fd := openDirFD(t, dir)
	mustWrite(t, filepath.Join(dir, "f"), "12345")
	if err := os.Symlink("/etc/passwd", filepath.Join(dir, "link")); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Mkfifo(filepath.Join(dir, "fifo"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name  string
		limit int
		want  string
		is    error
	}{
		{"f", 5, "12345", nil},
		{"f", 4, "", ErrTooLarge},
		{"link", 1 << 20, "", ErrSymlink},
		{"fifo", 1 << 20, "", ErrNotRegular},
		{"missing", 1, "", fs.ErrNotExist},
	}
	for _, tt := range tests {
		got, err := ReadFileAt(fd, tt.name, "/R/"+tt.name, tt.limit)
		if tt.is == nil {
			if err != nil || string(got) != tt.want {
				t.Errorf("ReadFileAt(%s) = %q, %v; want %q", tt.name, got, err, tt.want)
			}
			continue
		}
		if !errors.Is(err, tt.is) || !strings.Contains(err.Error(), "/R/"+tt.name) {
			t.Errorf("ReadFileAt(%s) error %v: want %v naming /R/%s", tt.name, err, tt.is, tt.name)
		}
	}
}

func TestRemoveAllAt(t *testing.T) {
	dir := t.TempDir()
	outside := t.TempDir()
	mustWrite(t, filepath.Join(outside, "keep"), "precious")
	mustWrite(t, filepath.Join(dir, "tree/a/b/file"), "x")
	if err := os.Symlink(outside, filepath.Join(dir, "tree/a/link")); err != nil {
		t.Fatal(err)
	}
	// A read-only directory, as k3s leaves some.
	if err := os.Chmod(filepath.Join(dir, "tree/a/b"), 0o555); err != nil {
		t.Fatal(err)
	}
	fd := openDirFD(t, dir)
	if err := RemoveAllAt(fd, "tree"); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Lstat(filepath.Join(dir, "tree")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("tree is still there: %v", err)
	}
	if got := mustRead(t, filepath.Join(outside, "keep")); got != "precious" {
		t.Errorf("the symlink's target lost its content: %q", got)
	}
	if err := RemoveAllAt(fd, "tree"); err != nil {
		t.Errorf("removing a missing entry: %v", err)
	}
}

// TestRemoveAllAtStopsAtMount mounts a tmpfs below the tree in a private
// mount namespace (a child process) and checks that removal stops there.
func TestRemoveAllAtStopsAtMount(t *testing.T) {
	if os.Getenv("SAFEFS_MOUNT_CHILD") != "" {
		dir := os.Getenv("SAFEFS_MOUNT_CHILD")
		if err := unix.Mount("", "/", "", unix.MS_REC|unix.MS_PRIVATE, ""); err != nil {
			t.Fatal(err)
		}
		if err := unix.Mount("tmpfs", filepath.Join(dir, "tree/mnt"), "tmpfs", 0, ""); err != nil {
			t.Fatal(err)
		}
		mustWrite(t, filepath.Join(dir, "tree/mnt/inside"), "mounted")
		fd := openDirFD(t, dir)
		err := RemoveAllAt(fd, "tree")
		if !errors.Is(err, ErrMountPoint) || !strings.Contains(err.Error(), "tree/mnt") {
			t.Fatalf("RemoveAllAt across a mount = %v, want ErrMountPoint naming tree/mnt", err)
		}
		if got := mustRead(t, filepath.Join(dir, "tree/mnt/inside")); got != "mounted" {
			t.Fatalf("a file on the mount was touched: %q", got)
		}
		return
	}
	testenv.RequireRoot(t, "mounts a tmpfs in a private mount namespace")
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "tree/mnt"), 0o755); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestRemoveAllAtStopsAtMount$", "-test.count=1")
	cmd.Env = append(os.Environ(), "SAFEFS_MOUNT_CHILD="+dir)
	cmd.SysProcAttr = &syscall.SysProcAttr{Cloneflags: syscall.CLONE_NEWNS}
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("child: %v\n%s", err, out)
	}
}

func TestKernelFS(t *testing.T) {
	for dir, want := range map[string]bool{"/proc": true, "/sys": true, t.TempDir(): false} {
		fd := openDirFD(t, dir)
		name, ok, err := KernelFS(fd)
		if err != nil || ok != want {
			t.Errorf("KernelFS(%s) = %q, %v, %v; want %v", dir, name, ok, err, want)
		}
	}
}
