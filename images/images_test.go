package images_test

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"

	"github.com/nodeboot/nodeboot/images"
)

var (
	staticOnce sync.Once
	staticBin  string
	staticErr  error
)

// staticBinary builds testdata/static with CGO_ENABLED=0 once per run.
func staticBinary(t *testing.T) string {
	t.Helper()
	staticOnce.Do(func() {
		dir, err := os.MkdirTemp("", "images-test-")
		if err != nil {
			staticErr = err
			return
		}
		staticBin = filepath.Join(dir, "static")
		cmd := exec.Command("go", "build", "-o", staticBin, "./testdata/static")
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			staticErr = errors.New(string(out) + err.Error())
		}
	})
	if staticErr != nil {
		t.Fatalf("build testdata/static: %v", staticErr)
	}
	return staticBin
}

func TestMain(m *testing.M) {
	code := m.Run()
	if staticBin != "" {
		os.RemoveAll(filepath.Dir(staticBin))
	}
	os.Exit(code)
}

func TestForBinary(t *testing.T) {
	bin := staticBinary(t)
	b, err := images.ForBinary(bin, "v1.2.3+dirty/x")
	if err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(bin)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(data)
	if want := "v1.2.3-dirty-x-" + b.Digest[:12]; b.Tag != want {
		t.Errorf("tag %q, want %q", b.Tag, want)
	}
	if b.Digest != hex.EncodeToString(sum[:]) {
		t.Errorf("digest %s, want the binary's sha256", b.Digest)
	}
	if b.Pause != "nodeboot.local/pause:"+b.Tag || b.Smoke != "nodeboot.local/smoke:"+b.Tag {
		t.Errorf("refs %s %s", b.Pause, b.Smoke)
	}
	for _, v := range []string{"", "-", "..."} {
		b, err := images.ForBinary(bin, v)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(b.Tag, "dev-") {
			t.Errorf("version %q: tag %q, want dev-<digest>", v, b.Tag)
		}
	}
}

func TestForBinaryRefuses(t *testing.T) {
	dir := t.TempDir()
	text := filepath.Join(dir, "text")
	if err := os.WriteFile(text, []byte("#!/bin/sh\necho hi\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	if _, err := images.ForBinary(text, "v1"); err == nil || !strings.Contains(err.Error(), "not an ELF") {
		t.Errorf("a script: %v, want not an ELF executable", err)
	}
	if _, err := images.ForBinary(filepath.Join(dir, "missing"), "v1"); err == nil {
		t.Error("a missing binary: no error")
	}
	// Debian's coreutils are dynamically linked.
	sh, err := exec.LookPath("true")
	if err != nil {
		t.Skip("no true on PATH:", err)
	}
	if _, err := images.ForBinary(sh, "v1"); err == nil || !strings.Contains(err.Error(), "CGO_ENABLED=0") {
		t.Errorf("%s (dynamic): %v, want an error naming CGO_ENABLED=0", sh, err)
	}
}

func TestWriteArchiveReadBack(t *testing.T) {
	bin := staticBinary(t)
	want, err := os.ReadFile(bin)
	if err != nil {
		t.Fatal(err)
	}
	b, err := images.ForBinary(bin, "v0.1.0")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	path := filepath.Join(dir, b.ArchiveName())
	if err := b.WriteArchive(path); err != nil {
		t.Fatal(err)
	}
	var layerDigests []string
	for _, c := range []struct {
		ref        string
		entrypoint []string
	}{{b.Pause, images.PauseEntrypoint}, {b.Smoke, images.SmokeEntrypoint}} {
		tag, err := name.NewTag(c.ref)
		if err != nil {
			t.Fatal(err)
		}
		img, err := tarball.ImageFromPath(path, &tag)
		if err != nil {
			t.Fatalf("%s: %v", c.ref, err)
		}
		cf, err := img.ConfigFile()
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(cf.Config.Entrypoint, c.entrypoint) || len(cf.Config.Cmd) != 0 {
			t.Errorf("%s: entrypoint %q cmd %q, want %q", c.ref, cf.Config.Entrypoint, cf.Config.Cmd, c.entrypoint)
		}
		if cf.OS != "linux" || cf.Architecture != b.Arch || b.Arch == "" {
			t.Errorf("%s: platform %s/%s, want linux/%s", c.ref, cf.OS, cf.Architecture, b.Arch)
		}
		layers, err := img.Layers()
		if err != nil {
			t.Fatal(err)
		}
		if len(layers) != 1 {
			t.Fatalf("%s: %d layers, want 1", c.ref, len(layers))
		}
		d, _ := layers[0].Digest()
		layerDigests = append(layerDigests, d.String())
		rc, err := layers[0].Uncompressed()
		if err != nil {
			t.Fatal(err)
		}
		tr := tar.NewReader(rc)
		h, err := tr.Next()
		if err != nil {
			t.Fatal(err)
		}
		got, err := io.ReadAll(tr)
		rc.Close()
		if err != nil {
			t.Fatal(err)
		}
		if h.Name != "nodeboot" || h.Mode != 0o755 || h.Uid != 0 || !bytes.Equal(got, want) {
			t.Errorf("%s: layer file %q mode %o uid %d (%d bytes), want nodeboot 755 uid 0 with the binary's %d bytes",
				c.ref, h.Name, h.Mode, h.Uid, len(got), len(want))
		}
		if _, err := tr.Next(); err != io.EOF {
			t.Errorf("%s: the layer holds more than the binary (%v)", c.ref, err)
		}
	}
	if layerDigests[0] != layerDigests[1] {
		t.Errorf("the images do not share their layer: %v", layerDigests)
	}
	// One layer blob in the archive, not two.
	m, err := tarball.LoadManifest(func() (io.ReadCloser, error) { return os.Open(path) })
	if err != nil {
		t.Fatal(err)
	}
	if len(m) != 2 || m[0].Layers[0] != m[1].Layers[0] {
		t.Errorf("manifest.json: %+v, want two images on one layer file", m)
	}

	// The same binary makes the same images (the archive's manifest.json
	// may list them in another order).
	again := filepath.Join(dir, "again.tar")
	if err := b.WriteArchive(again); err != nil {
		t.Fatal(err)
	}
	for _, r := range []string{b.Pause, b.Smoke} {
		if d1, d2 := imageDigest(t, path, r), imageDigest(t, again, r); d1 != d2 {
			t.Errorf("%s: two archives of one binary hold %s and %s", r, d1, d2)
		}
	}
	a, err := images.Inspect(path)
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(a.Refs)
	if a.Format != images.Docker || a.Gzip || !slices.Equal(a.Refs, []string{b.Pause, b.Smoke}) || a.Ext() != ".tar" {
		t.Errorf("Inspect: %+v", a)
	}
	// No temporary file is left beside the archive.
	ents, _ := os.ReadDir(dir)
	if len(ents) != 2 {
		t.Errorf("dir holds %d entries, want the 2 archives", len(ents))
	}
}

func imageDigest(t *testing.T, archive, ref string) string {
	t.Helper()
	tag, err := name.NewTag(ref)
	if err != nil {
		t.Fatal(err)
	}
	img, err := tarball.ImageFromPath(archive, &tag)
	if err != nil {
		t.Fatal(err)
	}
	d, err := img.Digest()
	if err != nil {
		t.Fatal(err)
	}
	return d.String()
}

// writeTar writes a tar of files (name to content) to p, gzip-compressed
// when gz.
func writeTar(t *testing.T, p string, gz bool, files map[string]string) {
	t.Helper()
	var buf bytes.Buffer
	var w io.Writer = &buf
	var zw *gzip.Writer
	if gz {
		zw = gzip.NewWriter(&buf)
		w = zw
	}
	tw := tar.NewWriter(w)
	names := make([]string, 0, len(files))
	for n := range files {
		names = append(names, n)
	}
	slices.Sort(names)
	for _, n := range names {
		if err := tw.WriteHeader(&tar.Header{Name: n, Mode: 0o644, Size: int64(len(files[n])), Typeflag: tar.TypeReg}); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write([]byte(files[n])); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	if zw != nil {
		if err := zw.Close(); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(p, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
}

func dockerManifest(t *testing.T, tags []string, layers ...string) string {
	t.Helper()
	b, err := json.Marshal([]map[string]any{{"Config": "cfg.json", "RepoTags": tags, "Layers": layers}})
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestInspect(t *testing.T) {
	dir := t.TempDir()
	p := func(n string) string { return filepath.Join(dir, n) }
	writeTar(t, p("docker.tar"), false, map[string]string{
		"manifest.json": dockerManifest(t, []string{"busybox:1.36", "example.com/a/b:v1"}, "l.tar"),
		"cfg.json":      "{}", "l.tar": "",
	})
	writeTar(t, p("docker.tar.gz"), true, map[string]string{
		"manifest.json": dockerManifest(t, []string{"busybox:1.36"}, "l.tar"),
		"cfg.json":      "{}", "l.tar": "",
	})
	writeTar(t, p("notags.tar"), false, map[string]string{
		"manifest.json": dockerManifest(t, nil, "l.tar"), "cfg.json": "{}", "l.tar": "",
	})
	writeTar(t, p("nolayer.tar"), false, map[string]string{
		"manifest.json": dockerManifest(t, []string{"a:b"}, "missing.tar"), "cfg.json": "{}",
	})
	writeTar(t, p("other.tar"), false, map[string]string{"etc/passwd": "root:x:0:0::/root:/bin/sh\n"})
	writeTar(t, p("badjson.tar"), false, map[string]string{"manifest.json": "{not json"})
	writeTar(t, p("empty.tar"), false, map[string]string{})
	if err := os.WriteFile(p("text.tar"), []byte(strings.Repeat("not a tar\n", 100)), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p("x.tar.zst"), []byte{0x28, 0xb5, 0x2f, 0xfd, 0, 0, 0, 0}, 0o644); err != nil {
		t.Fatal(err)
	}
	ociTar(t, p("oci.tar"), "example.com/app:v2")
	ociTar(t, p("oci-noname.tar"), "")
	if err := os.Mkdir(p("adir"), 0o755); err != nil {
		t.Fatal(err)
	}

	for _, c := range []struct {
		file   string
		format images.Format
		gz     bool
		refs   []string
		errHas string // "" for success
	}{
		{"docker.tar", images.Docker, false, []string{"docker.io/library/busybox:1.36", "example.com/a/b:v1"}, ""},
		{"docker.tar.gz", images.Docker, true, []string{"docker.io/library/busybox:1.36"}, ""},
		{"oci.tar", images.OCI, false, []string{"example.com/app:v2"}, ""},
		{"oci-noname.tar", "", false, nil, "names no image"},
		{"notags.tar", "", false, nil, "names no image"},
		{"nolayer.tar", "", false, nil, `layer "missing.tar" is not in the archive`},
		{"other.tar", "", false, nil, "neither manifest.json"},
		{"badjson.tar", "", false, nil, "manifest.json:"},
		{"empty.tar", "", false, nil, "empty"},
		{"text.tar", "", false, nil, "not a tar archive"},
		{"x.tar.zst", "", false, nil, "zstd"},
		{"adir", "", false, nil, "directory"},
		{"missing.tar", "", false, nil, "no such file"},
	} {
		a, err := images.Inspect(p(c.file))
		if c.errHas != "" {
			if err == nil || !strings.Contains(err.Error(), c.errHas) {
				t.Errorf("%s: %v, want an error with %q", c.file, err, c.errHas)
			}
			if err != nil && c.file != "missing.tar" && !errors.Is(err, images.ErrNotArchive) {
				t.Errorf("%s: %v is not ErrNotArchive", c.file, err)
			}
			continue
		}
		if err != nil {
			t.Errorf("%s: %v", c.file, err)
			continue
		}
		if a.Format != c.format || a.Gzip != c.gz || !slices.Equal(a.Refs, c.refs) {
			t.Errorf("%s: %+v, want format %s gzip %v refs %q", c.file, a, c.format, c.gz, c.refs)
		}
	}
}

// ociTar writes an OCI image layout holding one empty image, named ref
// (none when ""), as a tar at p.
func ociTar(t *testing.T, p, ref string) {
	t.Helper()
	dir := t.TempDir()
	lp, err := layout.Write(dir, empty.Index)
	if err != nil {
		t.Fatal(err)
	}
	img, err := mutate.AppendLayers(empty.Image)
	if err != nil {
		t.Fatal(err)
	}
	var opts []layout.Option
	if ref != "" {
		opts = append(opts, layout.WithAnnotations(map[string]string{"io.containerd.image.name": ref}))
	}
	if err := lp.AppendImage(img, opts...); err != nil {
		t.Fatal(err)
	}
	files := map[string]string{}
	err = filepath.Walk(dir, func(path string, fi os.FileInfo, err error) error {
		if err != nil || fi.IsDir() {
			return err
		}
		b, err := os.ReadFile(path)
		rel, _ := filepath.Rel(dir, path)
		files[rel] = string(b)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	writeTar(t, p, false, files)
}
