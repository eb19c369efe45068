package snapshotter

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/nodeboot/nodeboot/internal/testenv"
)

// mountT mounts fstype on dir for the test's life.
func mountT(t *testing.T, src, dir, fstype, opts string) {
	t.Helper()
	if err := unix.Mount(src, dir, fstype, 0, opts); err != nil {
		t.Fatalf("mount %s on %s: %v", fstype, dir, err)
	}
	t.Cleanup(func() {
		if err := unix.Unmount(dir, unix.MNT_DETACH); err != nil {
			t.Errorf("unmount %s: %v", dir, err)
		}
	})
}

// empty fails the test when dir holds anything: the probe leaves nothing.
func empty(t *testing.T, dir string) {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(ents) != 0 {
		t.Errorf("the probe left %s in %s", ents[0].Name(), dir)
	}
}

func TestProbe(t *testing.T) {
	testenv.RequireRoot(t, "the probe mounts an overlay filesystem")
	dir := t.TempDir()
	var st unix.Statfs_t
	if err := unix.Statfs(dir, &st); err != nil {
		t.Fatal(err)
	}
	t.Run(fsName(int64(st.Type)), func(t *testing.T) {
		d := Decide(dir)
		if !d.Overlay || d.Snapshotter != "" || d.Err != nil {
			t.Fatalf("on %s: %+v, want overlay to work", fsName(int64(st.Type)), d)
		}
		t.Log(d)
		empty(t, dir)
	})
	t.Run("tmpfs", func(t *testing.T) {
		tmp := filepath.Join(dir, "tmpfs")
		if err := os.Mkdir(tmp, 0o700); err != nil {
			t.Fatal(err)
		}
		mountT(t, "tmpfs", tmp, "tmpfs", "size=16m")
		if d := Decide(tmp); !d.Overlay {
			t.Fatalf("on tmpfs: %+v, want overlay to work", d)
		}
		empty(t, tmp)
	})
	// An overlayfs cannot be another's upper layer (the kernel says
	// "filesystem on ... not supported as upperdir"): a data dir on an
	// overlay root, as in a container, or on gVisor's, falls back.
	t.Run("overlay-upper", func(t *testing.T) {
		base := filepath.Join(dir, "ov")
		for _, n := range []string{"l", "u", "w", "m"} {
			if err := os.MkdirAll(filepath.Join(base, n), 0o700); err != nil {
				t.Fatal(err)
			}
		}
		mountT(t, "overlay", filepath.Join(base, "m"), "overlay",
			"lowerdir="+filepath.Join(base, "l")+",upperdir="+filepath.Join(base, "u")+",workdir="+filepath.Join(base, "w"))
		data := filepath.Join(base, "m")
		d := Decide(data)
		if d.Overlay || d.Snapshotter != Native || d.Err == nil {
			t.Fatalf("on an overlay: %+v, want the native fallback", d)
		}
		if !errors.Is(d.Err, unix.EINVAL) || !strings.Contains(d.String(), "native (an overlay mount fails on "+data+" (overlay): invalid argument)") {
			t.Errorf("decision %q (%v), want EINVAL named with the directory and its filesystem", d, d.Err)
		}
		t.Log(d)
		empty(t, data)
	})
}

func TestDecide(t *testing.T) {
	for _, c := range []struct {
		probe error
		want  Decision
	}{
		{nil, Decision{Dir: "/d", Overlay: true}},
		{unix.EPERM, Decision{Dir: "/d", Err: unix.EPERM, Snapshotter: Native}},
		{unix.EINVAL, Decision{Dir: "/d", Err: unix.EINVAL, Snapshotter: Native}},
	} {
		got := decide("/d", func(string) error { return c.probe })
		if got != c.want {
			t.Errorf("probe %v: %+v, want %+v", c.probe, got, c.want)
		}
	}
}

func TestNearest(t *testing.T) {
	dir := t.TempDir()
	for in, want := range map[string]string{
		dir:                             dir,
		filepath.Join(dir, "a", "b"):    dir,
		"/nonexistent-nodeboot-test/x/": "/",
	} {
		if got := Nearest(in); got != want {
			t.Errorf("Nearest(%s) = %s, want %s", in, got, want)
		}
	}
}
