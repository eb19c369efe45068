package load_test

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/tarball"

	"github.com/nodeboot/nodeboot/internal/cli"
	"github.com/nodeboot/nodeboot/internal/instance"
	"github.com/nodeboot/nodeboot/node"
)

type result struct {
	code           int
	stdout, stderr string
}

func run(args ...string) result {
	var out, errOut bytes.Buffer
	code := cli.Run(append([]string{"nodeboot"}, args...), nil, &out, &errOut)
	return result{code, out.String(), errOut.String()}
}

// writeArchive writes a docker archive of a random one-layer image named
// ref to path.
func writeArchive(t *testing.T, path, ref string) {
	t.Helper()
	img, err := random.Image(512, 1)
	if err != nil {
		t.Fatal(err)
	}
	tag, err := name.NewTag(ref)
	if err != nil {
		t.Fatal(err)
	}
	if err := tarball.WriteToFile(path, tag, img); err != nil {
		t.Fatal(err)
	}
}

// staged lists DATA-DIR/images.
func staged(t *testing.T, dataDir string) []string {
	t.Helper()
	ents, err := os.ReadDir(filepath.Join(dataDir, "images"))
	if os.IsNotExist(err) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range ents {
		out = append(out, e.Name())
	}
	return out
}

func TestLoadUsage(t *testing.T) {
	dataDir := filepath.Join(t.TempDir(), "data")
	for _, args := range [][]string{
		{"load", "image-archive", "--data-dir", dataDir},
		{"load", "image-archive", "--data-dir", dataDir, "--timeout", "0s", "x.tar"},
		{"load", "nonsense"},
	} {
		if r := run(args...); r.code != 2 {
			t.Errorf("%q: exit %d, want 2 (usage)\n%s", args, r.code, r.stderr)
		}
	}
}

// TestLoadRefuses: a bad archive fails with its reason, and nothing is
// staged, not even the good archives given with it.
func TestLoadRefuses(t *testing.T) {
	dir := t.TempDir()
	dataDir := filepath.Join(dir, "data")
	good := filepath.Join(dir, "good.tar")
	writeArchive(t, good, "example.com/good:v1")
	text := filepath.Join(dir, "notes.tar")
	if err := os.WriteFile(text, []byte("hello\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	own := filepath.Join(dir, "nodeboot-images-0123.tar")
	writeArchive(t, own, "example.com/own:v1")
	for _, c := range []struct {
		files []string
		want  string
	}{
		{[]string{filepath.Join(dir, "missing.tar")}, "no such file or directory"},
		{[]string{good, text}, "notes.tar: not an image archive: not a tar archive"},
		{[]string{dir}, "not an image archive: it is a directory"},
		{[]string{own}, "nodeboot's own; rename the file"},
		{[]string{good, good}, "would both be good.tar"},
	} {
		r := run(append([]string{"load", "image-archive", "--data-dir", dataDir}, c.files...)...)
		if r.code != 1 || !strings.Contains(r.stderr, c.want) || !strings.HasPrefix(r.stderr, "nodeboot: load image-archive: ") {
			t.Errorf("%q: exit %d, stderr %q; want 1 and %q", c.files, r.code, r.stderr, c.want)
		}
		if s := staged(t, dataDir); len(s) > 0 {
			t.Fatalf("%q: staged %q", c.files, s)
		}
	}
}

// TestLoadStaged: with no node running, archives are copied into
// DATA-DIR/images (with the extension k3s's import needs), for the next
// start.
func TestLoadStaged(t *testing.T) {
	dir := t.TempDir()
	dataDir := filepath.Join(dir, "data")
	a, b := filepath.Join(dir, "a.tar"), filepath.Join(dir, "b.img")
	writeArchive(t, a, "example.com/a:v1")
	writeArchive(t, b, "b:v2")
	r := run("load", "image-archive", "--data-dir", dataDir, a, b)
	if r.code != 0 {
		t.Fatalf("exit %d: %s", r.code, r.stderr)
	}
	if got := staged(t, dataDir); strings.Join(got, " ") != "a.tar b.img.tar" {
		t.Fatalf("staged %q, want a.tar and b.img.tar", got)
	}
	for _, want := range []string{"Staged " + a + " (example.com/a:v1) in " + filepath.Join(dataDir, "images"), "(docker.io/library/b:v2)"} {
		if !strings.Contains(r.stderr, want) {
			t.Errorf("stderr %q lacks %q", r.stderr, want)
		}
	}
	src, _ := os.ReadFile(b)
	dst, _ := os.ReadFile(filepath.Join(dataDir, "images", "b.img.tar"))
	if !bytes.Equal(src, dst) {
		t.Error("the staged archive differs from the file")
	}
	// A copy, not a link: changing the file later changes nothing staged.
	fa, _ := os.Stat(a)
	fs, _ := os.Stat(filepath.Join(dataDir, "images", "a.tar"))
	if os.SameFile(fa, fs) {
		t.Error("the staged archive is the user's file (a hard link), not a copy")
	}
	if r.stdout != "" {
		t.Errorf("stdout %q, want nothing", r.stdout)
	}
}

// runningNode makes dataDir look like a running node's, as far as load
// can tell: the lock held (by this process), state.json naming k3s's data
// dir, logs/k3s.log. importer, when set, plays k3s's image watcher (the
// real one runs in the e2e test TestK3sPods): it gets each file that
// appears in agent/images and returns the log line k3s would write.
func runningNode(t *testing.T, dataDir string, importer func(path string) string) {
	t.Helper()
	in, err := instance.Open(dataDir)
	if err != nil {
		t.Fatal(err)
	}
	if err := in.Lock(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { in.Unlock() })
	k3sDir := filepath.Join(dataDir, "k3s")
	if err := in.WriteState(&node.State{Phase: node.PhaseReady, K3sDataDir: k3sDir}); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(in.LogsDir(), 0o700); err != nil {
		t.Fatal(err)
	}
	lf, err := instance.OpenLog(in.K3sLog())
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintln(lf, `time="2026-12-04T21:00:00Z" level=info msg="Imported 1 images from /elsewhere/agent/images/a.tar in 1s"`)
	done := make(chan struct{})
	t.Cleanup(func() { close(done); lf.Close() })
	if importer == nil {
		return
	}
	go func() {
		seen := map[string]bool{}
		for {
			select {
			case <-done:
				return
			case <-time.After(50 * time.Millisecond):
			}
			ents, _ := os.ReadDir(node.K3sImagesDir(k3sDir))
			for _, e := range ents {
				p := filepath.Join(node.K3sImagesDir(k3sDir), e.Name())
				if !strings.HasPrefix(e.Name(), ".") && !seen[p] {
					seen[p] = true
					fmt.Fprintln(lf, importer(p))
				}
			}
		}
	}()
}

func TestLoadRunning(t *testing.T) {
	dir := t.TempDir()
	a := filepath.Join(dir, "a.tar")
	writeArchive(t, a, "example.com/a:v1")

	t.Run("imported", func(t *testing.T) {
		dataDir := filepath.Join(t.TempDir(), "data")
		runningNode(t, dataDir, func(p string) string {
			// k3s v1.36's line (v1.32 to v1.35 say "Imported images from").
			return fmt.Sprintf(`time="2026-12-04T21:00:01Z" level=info msg="Imported 2 images from %s in 120ms"`, p)
		})
		r := run("load", "image-archive", "--data-dir", dataDir, a)
		if r.code != 0 || !strings.Contains(r.stderr, "Imported "+a+" (example.com/a:v1) into the running node") {
			t.Fatalf("exit %d: %s", r.code, r.stderr)
		}
		for _, p := range []string{filepath.Join(dataDir, "images", "a.tar"), filepath.Join(dataDir, "k3s", "agent", "images", "a.tar")} {
			if _, err := os.Stat(p); err != nil {
				t.Errorf("not staged: %v", err)
			}
		}
	})
	t.Run("failed", func(t *testing.T) {
		dataDir := filepath.Join(t.TempDir(), "data")
		runningNode(t, dataDir, func(p string) string {
			return fmt.Sprintf(`time="2026-12-04T21:00:01Z" level=error msg="Failed to process image event: failed to import %s: unexpected EOF"`, p)
		})
		r := run("load", "image-archive", "--data-dir", dataDir, a)
		if r.code != 1 || !strings.Contains(r.stderr, "k3s could not import it: ") || !strings.Contains(r.stderr, "unexpected EOF") {
			t.Fatalf("exit %d: %s; want 1 with k3s's reason", r.code, r.stderr)
		}
	})
	t.Run("silent", func(t *testing.T) {
		dataDir := filepath.Join(t.TempDir(), "data")
		runningNode(t, dataDir, nil)
		r := run("load", "image-archive", "--data-dir", dataDir, "--timeout", "1s", a)
		if r.code != 1 || !strings.Contains(r.stderr, "k3s did not say it imported") || !strings.Contains(r.stderr, "stays staged") {
			t.Fatalf("exit %d: %s; want 1, naming the timeout", r.code, r.stderr)
		}
	})
}
