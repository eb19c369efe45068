package bootstrap

import (
	"bytes"
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/nodeboot/nodeboot/internal/safefs"
	"github.com/nodeboot/nodeboot/internal/testenv"
	"github.com/nodeboot/nodeboot/profile"
)

// testProfile has one entry of each sort.
func testProfile() *profile.Profile {
	return &profile.Profile{
		Name: "test",
		Files: []profile.File{
			{Path: "/proc/sys/kernel/panic", Content: "10\n", Mode: "0644"},
			{Path: "/proc/sys/vm/ro", Content: "0\n", Mode: "0444"},
			{Path: "/proc/sys/kernel/pid_max", CopyFromHost: true, Content: "4194304\n"},
			{Path: "/proc/sys/kernel/random/boot_id", Generate: profile.GenerateUUID},
			{Path: "/proc/sys/kernel/osrelease", CopyFromHost: true, Generate: profile.GenerateUnameRelease},
			{Path: "/sys/module/overlay", Dir: true},
			{Path: "/sys/module/private", Dir: true, Mode: "0700"},
		},
		Dynamic:   []profile.Dynamic{{Path: "/sys/fs/cgroup", Kind: profile.KindCgroup2}},
		Redirects: []string{"/proc/sys", "/sys/module"},
	}
}

// hostRoot returns a fake host with a pid_max to copy.
func hostRoot(t *testing.T) string {
	t.Helper()
	h := t.TempDir()
	mustWrite(t, filepath.Join(h, "proc/sys/kernel/pid_max"), "99999\n", 0o644)
	return h
}

func mustWrite(t *testing.T, name, content string, mode fs.FileMode) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(name), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(name, []byte(content), mode); err != nil {
		t.Fatal(err)
	}
}

func readFile(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func perm(t *testing.T, name string) fs.FileMode {
	t.Helper()
	st, err := os.Lstat(name)
	if err != nil {
		t.Fatal(err)
	}
	return st.Mode().Perm()
}

// actions maps guest path to action.
func actions(rep SeedReport) map[string]Action {
	m := map[string]Action{}
	for _, e := range rep.Entries {
		m[e.Path] = e.Action
	}
	return m
}

// noTempFiles fails if a temporary file of writeAtomic is left in root.
func noTempFiles(t *testing.T, root string) {
	t.Helper()
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if strings.HasPrefix(d.Name(), tempPrefix) {
			t.Errorf("temporary file left behind: %s", p)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func TestSeedCreatesThenLeavesAlone(t *testing.T) {
	root := filepath.Join(t.TempDir(), "var/lib/nodeboot/root")
	opts := SeedOptions{HostRoot: hostRoot(t)}
	p := testProfile()

	rep, err := Seed(context.Background(), root, p, opts)
	if err != nil {
		t.Fatalf("Seed: %v", err)
	}
	if !rep.RootCreated || rep.Root != root || rep.Profile != "test" {
		t.Errorf("report root = %s (created %v), profile %s", rep.Root, rep.RootCreated, rep.Profile)
	}
	if got := perm(t, root); got != 0o700 {
		t.Errorf("new root has mode %#o, want 0700", got)
	}
	want := map[string]Action{
		"/proc/sys/kernel/panic":          Created,
		"/proc/sys/vm/ro":                 Created,
		"/proc/sys/kernel/pid_max":        Created,
		"/proc/sys/kernel/random/boot_id": Created,
		"/proc/sys/kernel/osrelease":      Created,
		"/sys/module/overlay":             Created,
		"/sys/module/private":             Created,
		"/sys/fs/cgroup":                  Skipped,
	}
	if got := actions(rep); !mapsEqual(got, want) {
		t.Errorf("first run: %v, want %v", got, want)
	}

	files := []struct {
		path, content string
		mode          fs.FileMode
	}{
		{"/proc/sys/kernel/panic", "10\n", 0o644},
		{"/proc/sys/vm/ro", "0\n", 0o444},
		{"/proc/sys/kernel/pid_max", "99999\n", 0o644}, // copied from the host
	}
	for _, f := range files {
		h := filepath.Join(root, f.path)
		if got := readFile(t, h); got != f.content {
			t.Errorf("%s = %q, want %q", f.path, got, f.content)
		}
		if got := perm(t, h); got != f.mode {
			t.Errorf("%s has mode %#o, want %#o", f.path, got, f.mode)
		}
	}
	bootID := readFile(t, filepath.Join(root, "proc/sys/kernel/random/boot_id"))
	if !regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}\n$`).MatchString(bootID) {
		t.Errorf("boot_id = %q, want a v4 UUID and a newline", bootID)
	}
	var u unix.Utsname
	if err := unix.Uname(&u); err != nil {
		t.Fatal(err)
	}
	if got, want := readFile(t, filepath.Join(root, "proc/sys/kernel/osrelease")), unix.ByteSliceToString(u.Release[:])+"\n"; got != want {
		t.Errorf("osrelease (host file missing, so generated) = %q, want %q", got, want)
	}
	for dir, mode := range map[string]fs.FileMode{
		"proc": 0o755, "proc/sys/kernel/random": 0o755, "sys/module/overlay": 0o755, "sys/module/private": 0o700,
	} {
		if got := perm(t, filepath.Join(root, dir)); got != mode {
			t.Errorf("%s has mode %#o, want %#o", dir, got, mode)
		}
	}
	if _, err := os.Lstat(filepath.Join(root, "sys/fs/cgroup")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("dynamic entry /sys/fs/cgroup was written (lstat: %v)", err)
	}
	noTempFiles(t, root)

	// Second and third runs, with and without Force: nothing to do.
	for _, force := range []bool{false, true} {
		opts.Force = force
		rep, err = Seed(context.Background(), root, p, opts)
		if err != nil {
			t.Fatalf("Seed again (force %v): %v", force, err)
		}
		if rep.RootCreated {
			t.Error("second run says it created the root")
		}
		for _, e := range rep.Entries {
			if e.Action != Unchanged && e.Action != Skipped {
				t.Errorf("second run (force %v): %s %s (%s), want unchanged", force, e.Action, e.Path, e.Detail)
			}
		}
		if got := readFile(t, filepath.Join(root, "proc/sys/kernel/random/boot_id")); got != bootID {
			t.Errorf("boot_id changed from %q to %q; it is generated once", bootID, got)
		}
		noTempFiles(t, root)
	}
}

func TestSeedChangedEntries(t *testing.T) {
	root := filepath.Join(t.TempDir(), "root")
	opts := SeedOptions{HostRoot: hostRoot(t)}
	p := testProfile()
	if _, err := Seed(context.Background(), root, p, opts); err != nil {
		t.Fatal(err)
	}
	panicFile := filepath.Join(root, "proc/sys/kernel/panic")
	roFile := filepath.Join(root, "proc/sys/vm/ro")
	bootID := filepath.Join(root, "proc/sys/kernel/random/boot_id")
	private := filepath.Join(root, "sys/module/private")
	// What kubelet (or a user) might do between two runs.
	mustWrite(t, panicFile, "0\n", 0o644)
	if err := os.Chmod(roFile, 0o600); err != nil {
		t.Fatal(err)
	}
	mustWrite(t, bootID, "not a uuid\n", 0o600)
	if err := os.Chmod(bootID, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(private, 0o755); err != nil {
		t.Fatal(err)
	}

	rep, err := Seed(context.Background(), root, p, opts)
	if err != nil {
		t.Fatal(err)
	}
	got := actions(rep)
	for path, want := range map[string]Action{
		"/proc/sys/kernel/panic":          Kept,
		"/proc/sys/vm/ro":                 Kept,
		"/proc/sys/kernel/random/boot_id": Kept, // value kept, but mode 0600 differs
		"/sys/module/private":             Kept,
		"/proc/sys/kernel/pid_max":        Unchanged,
	} {
		if got[path] != want {
			t.Errorf("without force: %s %s, want %s", got[path], path, want)
		}
	}
	if c := readFile(t, panicFile); c != "0\n" {
		t.Errorf("without force, kernel/panic = %q; the changed value must be kept", c)
	}
	for _, e := range rep.Entries {
		if e.Action == Kept && !strings.Contains(e.Detail, "--force") {
			t.Errorf("kept %s: detail %q does not mention --force", e.Path, e.Detail)
		}
	}

	opts.Force = true
	rep, err = Seed(context.Background(), root, p, opts)
	if err != nil {
		t.Fatal(err)
	}
	got = actions(rep)
	for path, want := range map[string]Action{
		"/proc/sys/kernel/panic":          Updated,
		"/proc/sys/vm/ro":                 Updated,
		"/proc/sys/kernel/random/boot_id": Updated,
		"/sys/module/private":             Updated,
		"/proc/sys/kernel/pid_max":        Unchanged,
	} {
		if got[path] != want {
			t.Errorf("with force: %s %s, want %s", got[path], path, want)
		}
	}
	if c := readFile(t, panicFile); c != "10\n" {
		t.Errorf("with force, kernel/panic = %q, want the profile's \"10\\n\"", c)
	}
	if m := perm(t, roFile); m != 0o444 {
		t.Errorf("with force, vm/ro has mode %#o, want 0444", m)
	}
	if c, m := readFile(t, bootID), perm(t, bootID); c != "not a uuid\n" || m != 0o644 {
		t.Errorf("with force, boot_id = %q mode %#o; want the generated value kept, mode reset to 0644", c, m)
	}
	if m := perm(t, private); m != 0o700 {
		t.Errorf("with force, sys/module/private has mode %#o, want 0700", m)
	}
	noTempFiles(t, root)
}

func TestSeedUnsafeRoot(t *testing.T) {
	p := testProfile()
	tests := []struct {
		name     string
		setup    func(t *testing.T) string
		is       error
		wantMsgs []string
	}{
		{
			name: "world-writable",
			setup: func(t *testing.T) string {
				d := filepath.Join(t.TempDir(), "root")
				if err := os.Mkdir(d, 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.Chmod(d, 0o777); err != nil {
					t.Fatal(err)
				}
				return d
			},
			is:       ErrUnsafeRoot,
			wantMsgs: []string{"root", "writable by every user", "chmod go-w"},
		},
		{
			name: "sticky but world-writable",
			setup: func(t *testing.T) string {
				d := filepath.Join(t.TempDir(), "root")
				if err := os.Mkdir(d, 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.Chmod(d, 0o777|fs.ModeSticky); err != nil {
					t.Fatal(err)
				}
				return d
			},
			is:       ErrUnsafeRoot,
			wantMsgs: []string{"writable by every user"},
		},
		{
			name: "owned by another user",
			setup: func(t *testing.T) string {
				testenv.RequireRoot(t, "chown to another user")
				d := filepath.Join(t.TempDir(), "root")
				if err := os.Mkdir(d, 0o700); err != nil {
					t.Fatal(err)
				}
				if err := os.Chown(d, 65534, 65534); err != nil {
					t.Fatal(err)
				}
				return d
			},
			is:       ErrUnsafeRoot,
			wantMsgs: []string{"owned by uid 65534", "chown 0"},
		},
		{
			// StrictModes: whoever can write the parent can swap root.
			name: "under a directory every user can write",
			setup: func(t *testing.T) string {
				d := filepath.Join(t.TempDir(), "shared")
				if err := os.Mkdir(d, 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.Chmod(d, 0o777); err != nil {
					t.Fatal(err)
				}
				return filepath.Join(d, "root")
			},
			is:       ErrUnsafeRoot,
			wantMsgs: []string{"shared is writable by every user (mode 0777)", "chmod go-w"},
		},
		{
			name: "under a directory of another user",
			setup: func(t *testing.T) string {
				testenv.RequireRoot(t, "chown to another user")
				d := filepath.Join(t.TempDir(), "theirs")
				if err := os.Mkdir(d, 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.Chown(d, 65534, 65534); err != nil {
					t.Fatal(err)
				}
				return filepath.Join(d, "root")
			},
			is:       ErrUnsafeRoot,
			wantMsgs: []string{"theirs is owned by uid 65534"},
		},
		{
			// In /tmp (sticky, writable by all) another user plants the
			// name first, as a link to a directory of the victim's.
			name: "a symlink planted by another user",
			setup: func(t *testing.T) string {
				testenv.RequireRoot(t, "chown to another user")
				base := t.TempDir()
				tmp := filepath.Join(base, "tmp")
				if err := os.Mkdir(tmp, 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.Chmod(tmp, 0o777|fs.ModeSticky); err != nil {
					t.Fatal(err)
				}
				victim := filepath.Join(base, "victim")
				if err := os.Mkdir(victim, 0o700); err != nil {
					t.Fatal(err)
				}
				l := filepath.Join(tmp, "root")
				if err := os.Symlink(victim, l); err != nil {
					t.Fatal(err)
				}
				if err := os.Lchown(l, 65534, 65534); err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() {
					if entries, _ := os.ReadDir(victim); len(entries) != 0 {
						t.Errorf("Seed wrote through the planted symlink into %s", victim)
					}
				})
				return l
			},
			is:       ErrUnsafeRoot,
			wantMsgs: []string{"is a symlink owned by uid 65534", "pass the real directory"},
		},
		{
			name:     "slash",
			setup:    func(*testing.T) string { return "/" },
			is:       ErrOutsideTree,
			wantMsgs: []string{"real /proc and /sys"},
		},
		{
			name:     "under /proc",
			setup:    func(*testing.T) string { return "/proc/sys/kernel" },
			is:       ErrOutsideTree,
			wantMsgs: []string{"under /proc"},
		},
		{
			name: "symlink to /sys",
			setup: func(t *testing.T) string {
				l := filepath.Join(t.TempDir(), "root")
				if err := os.Symlink("/sys", l); err != nil {
					t.Fatal(err)
				}
				return l
			},
			is:       ErrSymlink,
			wantMsgs: []string{`root is a symlink to "/sys"`, "follows no symlink in --root", "pass the real directory"},
		},
		{
			name: "a file",
			setup: func(t *testing.T) string {
				f := filepath.Join(t.TempDir(), "root")
				mustWrite(t, f, "", 0o600)
				return f
			},
			is:       ErrConflict,
			wantMsgs: []string{"not a directory"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			root := tt.setup(t)
			rep, err := Seed(context.Background(), root, p, SeedOptions{HostRoot: t.TempDir()})
			if err == nil {
				t.Fatalf("Seed(%s) succeeded: %+v", root, rep)
			}
			if !errors.Is(err, tt.is) {
				t.Errorf("error %v is not %v", err, tt.is)
			}
			for _, m := range tt.wantMsgs {
				if !strings.Contains(err.Error(), m) {
					t.Errorf("error %q does not contain %q", err, m)
				}
			}
			if len(rep.Entries) != 0 {
				t.Errorf("Seed wrote %d entries into an unsafe root", len(rep.Entries))
			}
		})
	}
}

// TestSeedPlantedLinks plants symlinks and hard links in the tree, as a
// guest writing through the redirects could, and checks that Seed never
// writes through them.
func TestSeedPlantedLinks(t *testing.T) {
	type victim struct {
		path    string
		content string
		mode    fs.FileMode
	}
	tests := []struct {
		name string
		// plant changes the seeded tree at root, pointing at files in
		// outside, and returns the files that must stay as they are.
		plant func(t *testing.T, root, outside string) []victim
		force bool
		// is is the error Seed must return, nil when it must succeed.
		is error
		// after checks the tree when Seed succeeded.
		after func(t *testing.T, root string)
	}{
		{
			name: "directory component is a symlink",
			plant: func(t *testing.T, root, outside string) []victim {
				mustWrite(t, filepath.Join(outside, "kernel/panic"), "victim\n", 0o600)
				replaceWithSymlink(t, filepath.Join(root, "proc/sys"), outside)
				return []victim{{filepath.Join(outside, "kernel/panic"), "victim\n", 0o600}}
			},
			is: ErrSymlink,
		},
		{
			name: "directory component is a symlink, with force",
			plant: func(t *testing.T, root, outside string) []victim {
				mustWrite(t, filepath.Join(outside, "kernel/panic"), "victim\n", 0o600)
				replaceWithSymlink(t, filepath.Join(root, "proc/sys"), outside)
				return []victim{{filepath.Join(outside, "kernel/panic"), "victim\n", 0o600}}
			},
			force: true,
			is:    ErrSymlink,
		},
		{
			name: "file is a symlink",
			plant: func(t *testing.T, root, outside string) []victim {
				passwd := filepath.Join(outside, "passwd")
				mustWrite(t, passwd, "root:x:0:0::/root:/bin/sh\n", 0o600)
				replaceWithSymlink(t, filepath.Join(root, "proc/sys/kernel/panic"), passwd)
				return []victim{{passwd, "root:x:0:0::/root:/bin/sh\n", 0o600}}
			},
			is: ErrSymlink,
		},
		{
			name: "file is a symlink, with force: the link is replaced",
			plant: func(t *testing.T, root, outside string) []victim {
				passwd := filepath.Join(outside, "passwd")
				mustWrite(t, passwd, "root:x:0:0::/root:/bin/sh\n", 0o600)
				replaceWithSymlink(t, filepath.Join(root, "proc/sys/kernel/panic"), passwd)
				return []victim{{passwd, "root:x:0:0::/root:/bin/sh\n", 0o600}}
			},
			force: true,
			after: func(t *testing.T, root string) {
				p := filepath.Join(root, "proc/sys/kernel/panic")
				st, err := os.Lstat(p)
				if err != nil || !st.Mode().IsRegular() || readFile(t, p) != "10\n" {
					t.Errorf("kernel/panic is not a regular file with \"10\\n\" (lstat %v, %v)", st, err)
				}
			},
		},
		{
			name: "dangling symlink to a new file",
			plant: func(t *testing.T, root, outside string) []victim {
				replaceWithSymlink(t, filepath.Join(root, "proc/sys/kernel/panic"), filepath.Join(outside, "created-by-seed"))
				return []victim{{filepath.Join(outside, "created-by-seed"), "", 0}}
			},
			is: ErrSymlink,
		},
		{
			name: "directory entry is a symlink, with force",
			plant: func(t *testing.T, root, outside string) []victim {
				mustWrite(t, filepath.Join(outside, "keep"), "keep\n", 0o600)
				if err := os.Chmod(outside, 0o751); err != nil {
					t.Fatal(err)
				}
				replaceWithSymlink(t, filepath.Join(root, "sys/module/private"), outside)
				return []victim{{filepath.Join(outside, "keep"), "keep\n", 0o600}, {outside, "", fs.ModeDir | 0o751}}
			},
			force: true,
			after: func(t *testing.T, root string) {
				st, err := os.Lstat(filepath.Join(root, "sys/module/private"))
				if err != nil || !st.IsDir() || st.Mode().Perm() != 0o700 {
					t.Errorf("sys/module/private is not a 0700 directory (lstat %v, %v)", st, err)
				}
			},
		},
		{
			name: "file is a hard link, with force",
			plant: func(t *testing.T, root, outside string) []victim {
				secret := filepath.Join(outside, "secret")
				mustWrite(t, secret, "secret\n", 0o600)
				p := filepath.Join(root, "proc/sys/kernel/panic")
				if err := os.Remove(p); err != nil {
					t.Fatal(err)
				}
				if err := os.Link(secret, p); err != nil {
					t.Skipf("cannot hard-link across the temp dirs: %v", err)
				}
				return []victim{{secret, "secret\n", 0o600}}
			},
			force: true,
			after: func(t *testing.T, root string) {
				if got := readFile(t, filepath.Join(root, "proc/sys/kernel/panic")); got != "10\n" {
					t.Errorf("kernel/panic = %q, want \"10\\n\"", got)
				}
			},
		},
		{
			name: "FIFO instead of a file",
			plant: func(t *testing.T, root, outside string) []victim {
				p := filepath.Join(root, "proc/sys/kernel/panic")
				if err := os.Remove(p); err != nil {
					t.Fatal(err)
				}
				if err := syscall.Mkfifo(p, 0o644); err != nil {
					t.Fatal(err)
				}
				return nil
			},
			is: ErrConflict,
		},
		{
			name: "directory instead of a file, even with force",
			plant: func(t *testing.T, root, outside string) []victim {
				p := filepath.Join(root, "proc/sys/kernel/panic")
				if err := os.Remove(p); err != nil {
					t.Fatal(err)
				}
				mustWrite(t, filepath.Join(p, "inside"), "x", 0o644)
				return nil
			},
			force: true,
			is:    ErrConflict,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			base := t.TempDir()
			root := filepath.Join(base, "root")
			outside := filepath.Join(base, "outside")
			if err := os.Mkdir(outside, 0o755); err != nil {
				t.Fatal(err)
			}
			p := testProfile()
			opts := SeedOptions{HostRoot: hostRoot(t)}
			if _, err := Seed(context.Background(), root, p, opts); err != nil {
				t.Fatal(err)
			}
			victims := tt.plant(t, root, outside)

			opts.Force = tt.force
			_, err := Seed(context.Background(), root, p, opts)
			switch {
			case tt.is == nil && err != nil:
				t.Fatalf("Seed: %v", err)
			case tt.is != nil && !errors.Is(err, tt.is):
				t.Fatalf("Seed = %v, want an error that is %v", err, tt.is)
			case tt.is != nil && !strings.Contains(err.Error(), root):
				t.Errorf("error %q does not name the path in the tree", err)
			}
			for _, v := range victims {
				st, lerr := os.Lstat(v.path)
				if v.mode == 0 {
					if !errors.Is(lerr, fs.ErrNotExist) {
						t.Errorf("%s was created through a symlink", v.path)
					}
					continue
				}
				if lerr != nil {
					t.Fatalf("victim %s: %v", v.path, lerr)
				}
				if st.Mode() != v.mode {
					t.Errorf("victim %s has mode %v, want %v", v.path, st.Mode(), v.mode)
				}
				if v.content != "" {
					if got := readFile(t, v.path); got != v.content {
						t.Errorf("victim %s = %q, want %q untouched", v.path, got, v.content)
					}
				}
			}
			if tt.after != nil {
				tt.after(t, root)
			}
			noTempFiles(t, root)
			noTempFiles(t, outside)
		})
	}
}

// replaceWithSymlink removes name (a file or a tree) and puts a symlink to
// target in its place.
func replaceWithSymlink(t *testing.T, name, target string) {
	t.Helper()
	if err := os.RemoveAll(name); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(target, name); err != nil {
		t.Fatal(err)
	}
}

func TestSeedContextAndProfile(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	root := filepath.Join(t.TempDir(), "root")
	if _, err := Seed(ctx, root, testProfile(), SeedOptions{}); !errors.Is(err, context.Canceled) {
		t.Errorf("Seed with a canceled context = %v, want context.Canceled", err)
	}

	bad := testProfile()
	bad.Files = append(bad.Files, profile.File{Path: "/proc/sys/../../etc/passwd", Content: "x"})
	_, err := Seed(context.Background(), root, bad, SeedOptions{})
	if !errors.Is(err, profile.ErrInvalid) {
		t.Errorf("Seed with a path that climbs out = %v, want profile.ErrInvalid", err)
	}
	if _, err := Seed(context.Background(), root, nil, SeedOptions{}); err == nil {
		t.Error("Seed(nil profile) succeeded")
	}
}

// TestSeedK3s seeds the built-in k3s profile twice.
func TestSeedK3s(t *testing.T) {
	p, err := profile.Load("k3s")
	if err != nil {
		t.Fatal(err)
	}
	root := filepath.Join(t.TempDir(), "root")
	rep, err := Seed(context.Background(), root, p, SeedOptions{})
	if err != nil {
		t.Fatalf("Seed: %v", err)
	}
	if got, want := rep.Count(Created), len(p.Files); got != want {
		t.Errorf("created %d entries, want %d (one per file entry)", got, want)
	}
	if got, want := rep.Count(Skipped), len(p.Dynamic); got != want {
		t.Errorf("skipped %d entries, want %d (one per dynamic entry)", got, want)
	}
	if got := readFile(t, filepath.Join(root, "proc/sys/vm/overcommit_memory")); got != "1\n" {
		t.Errorf("overcommit_memory = %q", got)
	}
	// kubelet's write: os.WriteFile opens O_WRONLY|O_CREAT|O_TRUNC.
	if err := os.WriteFile(filepath.Join(root, "proc/sys/kernel/panic"), []byte("10"), 0o640); err != nil {
		t.Errorf("kubelet-style write: %v", err)
	}
	rep, err = Seed(context.Background(), root, p, SeedOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if n := rep.Count(Created) + rep.Count(Updated); n != 0 {
		t.Errorf("second run created or updated %d entries", n)
	}
	if kept := rep.Paths(Kept); len(kept) != 1 || kept[0] != "/proc/sys/kernel/panic" {
		t.Errorf("second run kept %q, want only the file kubelet wrote", kept)
	}
	noTempFiles(t, root)
}

func TestCheckFS(t *testing.T) {
	for _, dir := range []string{"/proc", "/sys"} {
		fd, err := unix.Open(dir, safefs.DirFlags, 0)
		if err != nil {
			t.Skipf("open %s: %v", dir, err)
		}
		err = checkFS(fd, dir)
		unix.Close(fd)
		if !errors.Is(err, ErrOutsideTree) {
			t.Errorf("checkFS(%s) = %v, want ErrOutsideTree", dir, err)
		}
	}
	fd, err := unix.Open(t.TempDir(), safefs.DirFlags, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fd)
	if err := checkFS(fd, "tmp"); err != nil {
		t.Errorf("checkFS(temp dir) = %v", err)
	}
}

func TestGenerators(t *testing.T) {
	for _, name := range profile.Generators() {
		if _, ok := generators[name]; !ok {
			t.Errorf("generator %q of package profile is not implemented", name)
		}
	}
	u, err := generate(profile.GenerateUUID, bytes.NewReader(bytes.Repeat([]byte{0xff}, 16)))
	if err != nil {
		t.Fatal(err)
	}
	if want := "ffffffff-ffff-4fff-bfff-ffffffffffff\n"; string(u) != want {
		t.Errorf("uuid of all ones = %q, want %q", u, want)
	}
}

func mapsEqual[K comparable, V comparable](a, b map[K]V) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}
