package safefs

import (
	"github.com/nodeboot/nodeboot/internal/testenv"

	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// other is the uid of "another user" in these tests.
const other = 65534

func needRoot(t *testing.T) {
	t.Helper()
	testenv.RequireRoot(t, "files of another user are made with chown")
}

func mkdir(t *testing.T, dir string, mode fs.FileMode) string {
	t.Helper()
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(dir, mode); err != nil {
		t.Fatal(err)
	}
	return dir
}

func lchown(t *testing.T, name string, uid int) {
	t.Helper()
	if err := os.Lchown(name, uid, uid); err != nil {
		t.Fatal(err)
	}
}

func TestOpenDir(t *testing.T) {
	old := unix.Umask(0o077)
	defer unix.Umask(old)
	type setup func(t *testing.T, base string) string
	tests := []struct {
		name     string
		root     bool // needs root
		follow   bool // FollowLinks
		setup    setup
		create   bool
		wantPath func(base string) string // "" keeps the input
		is       error
		wantMsgs []string
	}{
		{name: "new and nested", create: true,
			setup: func(t *testing.T, base string) string { return filepath.Join(base, "a/b/data") }},
		{name: "existing private", setup: func(t *testing.T, base string) string { return mkdir(t, filepath.Join(base, "d"), 0o700) }},
		{name: "in a sticky world-writable directory",
			setup: func(t *testing.T, base string) string {
				tmp := mkdir(t, filepath.Join(base, "tmp"), 0o777|fs.ModeSticky)
				return mkdir(t, filepath.Join(tmp, "mine"), 0o700)
			}},
		{name: "with dot-dot", setup: func(t *testing.T, base string) string {
			mkdir(t, filepath.Join(base, "d"), 0o700)
			return base + "/x/../d"
		}, create: true, wantPath: func(base string) string { return filepath.Join(base, "d") }},
		{name: "a symlink is refused",
			setup: func(t *testing.T, base string) string {
				mkdir(t, filepath.Join(base, "real"), 0o700)
				if err := os.Symlink("real", filepath.Join(base, "link")); err != nil {
					t.Fatal(err)
				}
				return filepath.Join(base, "link")
			},
			is: ErrSymlink, wantMsgs: []string{`link is a symlink to "real"`, "pass the real path"}},
		{name: "our own symlink is followed", follow: true,
			setup: func(t *testing.T, base string) string {
				mkdir(t, filepath.Join(base, "real"), 0o700)
				if err := os.Symlink("real", filepath.Join(base, "link")); err != nil {
					t.Fatal(err)
				}
				return filepath.Join(base, "link")
			},
			wantPath: func(base string) string { return filepath.Join(base, "real") }},
		{name: "a relative symlink with dot-dot", follow: true,
			setup: func(t *testing.T, base string) string {
				mkdir(t, filepath.Join(base, "real"), 0o700)
				mkdir(t, filepath.Join(base, "sub"), 0o755)
				if err := os.Symlink("../real", filepath.Join(base, "sub/link")); err != nil {
					t.Fatal(err)
				}
				return filepath.Join(base, "sub/link")
			},
			wantPath: func(base string) string { return filepath.Join(base, "real") }},
		{name: "parent owned by another user", root: true, create: true,
			setup: func(t *testing.T, base string) string {
				d := mkdir(t, filepath.Join(base, "theirs"), 0o755)
				lchown(t, d, other)
				return filepath.Join(d, "data")
			},
			is: ErrUnsafePath, wantMsgs: []string{"theirs is owned by uid 65534"}},
		{name: "group-writable parent", create: true,
			setup: func(t *testing.T, base string) string {
				return filepath.Join(mkdir(t, filepath.Join(base, "shared"), 0o775), "data")
			},
			is: ErrUnsafePath, wantMsgs: []string{"shared is writable by its group (mode 0775)", "chmod go-w"}},
		{name: "world-writable parent, not sticky", create: true,
			setup: func(t *testing.T, base string) string {
				return filepath.Join(mkdir(t, filepath.Join(base, "open"), 0o777), "data")
			},
			is: ErrUnsafePath, wantMsgs: []string{"open is writable by every user"}},
		{name: "another user's directory in a sticky one", root: true,
			setup: func(t *testing.T, base string) string {
				tmp := mkdir(t, filepath.Join(base, "tmp"), 0o777|fs.ModeSticky)
				d := mkdir(t, filepath.Join(tmp, "data"), 0o700)
				lchown(t, d, other)
				return d
			},
			is: ErrUnsafePath, wantMsgs: []string{"data is owned by uid 65534, not by you"}},
		{name: "a symlink planted by another user", root: true, create: true, follow: true,
			setup: func(t *testing.T, base string) string {
				tmp := mkdir(t, filepath.Join(base, "tmp"), 0o777|fs.ModeSticky)
				target := mkdir(t, filepath.Join(base, "target"), 0o700)
				l := filepath.Join(tmp, "data")
				if err := os.Symlink(target, l); err != nil {
					t.Fatal(err)
				}
				lchown(t, l, other)
				return l
			},
			is: ErrUnsafePath, wantMsgs: []string{"data is a symlink owned by uid 65534", "pass the real directory"}},
		{name: "world-writable itself",
			setup: func(t *testing.T, base string) string { return mkdir(t, filepath.Join(base, "d"), 0o777) },
			is:    ErrUnsafePath, wantMsgs: []string{"writable by every user (mode 0777)", "chmod go-w"}},
		{name: "sticky world-writable itself",
			setup: func(t *testing.T, base string) string {
				return mkdir(t, filepath.Join(base, "d"), 0o777|fs.ModeSticky)
			},
			is: ErrUnsafePath, wantMsgs: []string{"writable by every user (mode 1777)"}},
		{name: "a file on the way", create: true,
			setup: func(t *testing.T, base string) string {
				mustWrite(t, filepath.Join(base, "f"), "")
				return filepath.Join(base, "f/data")
			},
			is: ErrWrongType, wantMsgs: []string{"f is a regular file, not a directory"}},
		{name: "missing",
			setup: func(t *testing.T, base string) string { return filepath.Join(base, "nope") },
			is:    fs.ErrNotExist},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.root {
				needRoot(t)
			}
			base := t.TempDir()
			path := tt.setup(t, base)
			d, err := OpenDir(path, DirOptions{Create: tt.create, FollowLinks: tt.follow})
			if tt.is != nil {
				if err == nil {
					d.Close()
					t.Fatalf("OpenDir(%s) succeeded", path)
				}
				if !errors.Is(err, tt.is) {
					t.Errorf("error %v is not %v", err, tt.is)
				}
				for _, m := range tt.wantMsgs {
					if !strings.Contains(err.Error(), m) {
						t.Errorf("error %q does not contain %q", err, m)
					}
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			defer d.Close()
			want := path
			if tt.wantPath != nil {
				want = tt.wantPath(base)
			}
			if d.Path() != want {
				t.Errorf("Path() = %s, want %s", d.Path(), want)
			}
			var st unix.Stat_t
			if err := unix.Fstat(d.FD(), &st); err != nil {
				t.Fatal(err)
			}
			var want2 unix.Stat_t
			if err := unix.Stat(want, &want2); err != nil || st.Ino != want2.Ino {
				t.Errorf("FD is not %s", want)
			}
		})
	}
}

func TestOpenDirCreateModes(t *testing.T) {
	old := unix.Umask(0o077)
	defer unix.Umask(old)
	base := t.TempDir()
	d, err := OpenDir(filepath.Join(base, "a/b/c"), DirOptions{Create: true, Perm: 0o750, ParentPerm: 0o711})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	if !d.Created() {
		t.Error("Created() = false for a new directory")
	}
	for p, want := range map[string]fs.FileMode{"a": 0o711, "a/b": 0o711, "a/b/c": 0o750} {
		if m := modeOf(t, filepath.Join(base, p)); m != fs.ModeDir|want {
			t.Errorf("%s: mode %v, want %v", p, m.Perm(), want)
		}
	}
	d2, err := OpenDir(filepath.Join(base, "a/b/c"), DirOptions{Create: true})
	if err != nil {
		t.Fatal(err)
	}
	d2.Close()
	if d2.Created() {
		t.Error("Created() = true for an existing directory")
	}
	if err := CheckPath(filepath.Join(base, "a/b/nope")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("CheckPath of a missing directory = %v", err)
	}
	if _, err := os.Lstat(filepath.Join(base, "a/b/nope")); err == nil {
		t.Error("CheckPath created the directory")
	}
}

func TestOpenDirSymlinkLoop(t *testing.T) {
	base := t.TempDir()
	if err := os.Symlink("b", filepath.Join(base, "a")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("a", filepath.Join(base, "b")); err != nil {
		t.Fatal(err)
	}
	if _, err := OpenDir(filepath.Join(base, "a"), DirOptions{FollowLinks: true}); !errors.Is(err, unix.ELOOP) {
		t.Errorf("OpenDir of a symlink loop = %v, want ELOOP", err)
	}
}
