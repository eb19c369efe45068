package node

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"golang.org/x/sys/unix"

	"github.com/nodeboot/nodeboot/images"
	"github.com/nodeboot/nodeboot/internal/instance"
)

// staticBuiltin builds a small static program (the images package's test
// program) and describes the images made of it.
func staticBuiltin(t *testing.T) *images.Builtin {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "static")
	cmd := exec.Command("go", "build", "-o", bin, "../images/testdata/static")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build a static binary: %v\n%s", err, out)
	}
	b, err := images.ForBinary(bin, "test")
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestIntegrationImagesStaged: before k3s starts, nodeboot's own archive
// (written into DATA-DIR/images) and Config.Images are in k3s's
// agent/images, an archive of another nodeboot binary is gone, k3s gets
// --pause-image, and the snapshotter is decided by an overlay probe: the
// default on this disk, native on a data dir inside an overlay mount.
func TestIntegrationImagesStaged(t *testing.T) {
	needRoot(t)
	b := staticBuiltin(t)
	user := filepath.Join(t.TempDir(), "app.img")
	img, err := random.Image(256, 1)
	if err != nil {
		t.Fatal(err)
	}
	if err := tarball.WriteToFile(user, name.MustParseReference("example.com/app:v1"), img); err != nil {
		t.Fatal(err)
	}
	// The stand-in prints what k3s would import at its start.
	k3s := standIn(t, `d=""; prev=""; for a in "$@"; do [ "$prev" = --data-dir ] && d=$a; prev=$a; done
echo "images: $(ls "$d/agent/images" | tr '\n' ' ')"
trap 'exit 0' TERM
while :; do sleep 0.2; done`)

	overlay := t.TempDir()
	for _, n := range []string{"l", "u", "w", "m"} {
		if err := os.Mkdir(filepath.Join(overlay, n), 0o700); err != nil {
			t.Fatal(err)
		}
	}
	merged := filepath.Join(overlay, "m")
	if err := unix.Mount("overlay", merged, "overlay", 0, "lowerdir="+filepath.Join(overlay, "l")+",upperdir="+filepath.Join(overlay, "u")+",workdir="+filepath.Join(overlay, "w")); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Unmount(merged, unix.MNT_DETACH) })

	for _, c := range []struct {
		name, dir, snapshotter string
	}{
		{"disk", filepath.Join(t.TempDir(), "data"), "overlayfs"},
		{"overlay-root", filepath.Join(merged, "data"), "native"},
	} {
		t.Run(c.name, func(t *testing.T) {
			if _, err := instance.Open(c.dir); err != nil { // a nodeboot data dir, with the marker
				t.Fatal(err)
			}
			stale := filepath.Join(c.dir, "k3s", "agent", "images", images.BuiltinArchivePrefix+"000000000000.tar")
			if err := os.MkdirAll(filepath.Dir(stale), 0o700); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(stale, []byte("old"), 0o644); err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
			defer cancel()
			n, err := Start(ctx, Config{DataDir: c.dir, K3s: k3s, Profile: k3sProfile(t), NodeName: "n1",
				Images: []string{user}, Builtin: b, Logger: testLogger(t)})
			if err != nil {
				t.Fatal(err)
			}
			defer n.Stop(context.Background())
			k3sLog := filepath.Join(c.dir, "logs", "k3s.log")
			var log string
			for deadline := time.Now().Add(30 * time.Second); !strings.Contains(log, "images: "); time.Sleep(50 * time.Millisecond) {
				bs, _ := os.ReadFile(k3sLog)
				log = string(bs)
				if time.Now().After(deadline) {
					t.Fatalf("the stand-in did not start: %s", log)
				}
			}
			if err := n.Stop(ctx); err != nil {
				t.Fatal(err)
			}
			want := "images: app.img.tar " + b.ArchiveName() + " \n"
			if !strings.Contains(log, want) {
				t.Errorf("k3s's images dir at its start: %q, want %q", log, want)
			}
			if !strings.Contains(log, "--pause-image "+b.Pause) {
				t.Errorf("k3s's argv lacks --pause-image %s: %s", b.Pause, log)
			}
			if got := strings.Contains(log, "--snapshotter native"); got != (c.snapshotter == "native") {
				t.Errorf("--snapshotter native in argv: %v, want %v: %s", got, c.snapshotter == "native", log)
			}
			if _, err := os.Stat(filepath.Join(c.dir, "images", b.ArchiveName())); err != nil {
				t.Errorf("nodeboot's archive is not kept in DATA-DIR/images: %v", err)
			}
			st := n.Status()
			if st.PauseImage != b.Pause || st.Snapshotter != c.snapshotter || st.K3sDataDir != filepath.Join(c.dir, "k3s") {
				t.Errorf("state: pause image %q, snapshotter %q, k3s data dir %q", st.PauseImage, st.Snapshotter, st.K3sDataDir)
			}
			ents, _ := os.ReadDir(filepath.Join(c.dir, "k3s", "agent"))
			for _, e := range ents {
				if strings.HasPrefix(e.Name(), ".nodeboot-overlay-probe-") {
					t.Errorf("the overlay probe left %s", e.Name())
				}
			}
		})
	}
}

// TestCheckImages: a bad archive is an invalid configuration, before
// anything starts.
func TestCheckImages(t *testing.T) {
	bad := filepath.Join(t.TempDir(), "bad.tar")
	if err := os.WriteFile(bad, []byte("not a tar"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := Check(Config{DataDir: t.TempDir(), K3s: "/bin/true", Profile: k3sProfile(t), NodeName: "n1", Images: []string{bad}})
	if !errors.Is(err, ErrInvalidConfig) || !errors.Is(err, images.ErrNotArchive) || !strings.Contains(err.Error(), bad) {
		t.Errorf("Check with a bad archive: %v, want ErrInvalidConfig naming it", err)
	}
}
