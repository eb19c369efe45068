package images

import (
	"archive/tar"
	"crypto/sha256"
	"debug/elf"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

// Registry is the registry host of nodeboot's own images. ".local" is
// reserved for multicast DNS (RFC 6762): no registry on the internet has
// it, so a node that lacks the images fails to pull them instead of
// fetching something else under their name.
const Registry = "nodeboot.local"

// BinaryPath is where the images hold the nodeboot binary.
const BinaryPath = "/nodeboot"

// The entrypoints of the two images: hidden commands of nodeboot
// (internal/cli/inpod).
var (
	PauseEntrypoint = []string{BinaryPath, "pause"}
	SmokeEntrypoint = []string{BinaryPath, "smoke-echo"}
)

// SmokeLine starts the one line the smoke image prints; the node's name
// (the NODE_NAME variable, "unknown" without it) follows.
const SmokeLine = "nodeboot smoke: running on "

// ServeLine is the line "nodeboot smoke-serve" (a hidden command, not an
// entrypoint: a pod names it in its command) answers every connection
// with, in a pod whose NODE_NAME is node: the smoke line with " serve"
// after it, so that a reader tells it from the smoke Job's.
func ServeLine(node string) string { return SmokeLine + node + " serve" }

// Builtin is nodeboot's own pair of images made from one binary: the
// pause image and the smoke image.
type Builtin struct {
	// Binary is the static executable both images hold.
	Binary string
	// Digest is the sha256 of Binary, in hex.
	Digest string
	// Tag is both images' tag: the version, then the first 12 hex digits
	// of Digest, so that another build of the same version (a "dev" build,
	// say) is another image, and a node never runs a stale one.
	Tag string
	// Pause and Smoke are the images' full names: Registry/pause:Tag and
	// Registry/smoke:Tag.
	Pause, Smoke string
	// Arch is the architecture of Binary (amd64, arm64, ...).
	Arch string
}

// ForBinary describes the images made from binary, a static Linux
// executable, for nodeboot version (which may hold any characters; what a
// tag cannot hold becomes "-"). It reads the binary once, to hash it and
// check that it is static: a dynamically linked one would find no loader
// or libc in an image that holds nothing else.
func ForBinary(binary, version string) (*Builtin, error) {
	arch, err := checkStatic(binary)
	if err != nil {
		return nil, err
	}
	f, err := os.Open(binary)
	if err != nil {
		return nil, fmt.Errorf("image binary: %w", err)
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return nil, fmt.Errorf("image binary %s: %w", binary, err)
	}
	digest := hex.EncodeToString(h.Sum(nil))
	tag := tagFor(version) + "-" + digest[:12]
	b := &Builtin{Binary: binary, Digest: digest, Tag: tag, Arch: arch,
		Pause: Registry + "/pause:" + tag, Smoke: Registry + "/smoke:" + tag}
	for _, r := range []string{b.Pause, b.Smoke} {
		if _, err := name.NewTag(r, name.StrictValidation); err != nil {
			return nil, fmt.Errorf("image name %q: %w", r, err) // a defect of tagFor
		}
	}
	return b, nil
}

// tagFor turns a version into the start of a tag: [A-Za-z0-9_.-], not
// starting with "." or "-", at most 100 characters (a tag may have 128;
// the digest follows).
func tagFor(version string) string {
	t := strings.Map(func(r rune) rune {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '_', r == '.', r == '-':
			return r
		}
		return '-'
	}, version)
	t = strings.TrimLeft(t, ".-")
	if len(t) > 100 {
		t = t[:100]
	}
	if t == "" {
		t = "dev"
	}
	return t
}

// elfArch maps ELF machines to Go's (and OCI's) architecture names.
var elfArch = map[elf.Machine]string{
	elf.EM_X86_64: "amd64", elf.EM_AARCH64: "arm64", elf.EM_386: "386", elf.EM_ARM: "arm",
	elf.EM_RISCV: "riscv64", elf.EM_PPC64: "ppc64le", elf.EM_S390: "s390x", elf.EM_LOONGARCH: "loong64",
}

// checkStatic returns binary's architecture, or an error when it is not a
// static Linux ELF executable.
func checkStatic(binary string) (string, error) {
	f, err := elf.Open(binary)
	if err != nil {
		return "", fmt.Errorf("image binary %s: not an ELF executable: %w", binary, err)
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			interp, _ := io.ReadAll(io.LimitReader(p.Open(), 256))
			return "", fmt.Errorf("image binary %s is dynamically linked (it needs the loader %s), and an image holds nothing but the binary; build nodeboot with CGO_ENABLED=0 (make build does)",
				binary, strings.TrimRight(string(interp), "\x00"))
		}
	}
	if f.Type != elf.ET_EXEC && f.Type != elf.ET_DYN {
		return "", fmt.Errorf("image binary %s: ELF type %s is not an executable", binary, f.Type)
	}
	arch, ok := elfArch[f.Machine]
	if !ok {
		return "", fmt.Errorf("image binary %s: machine %s is not one nodeboot builds for", binary, f.Machine)
	}
	if f.Machine == elf.EM_PPC64 && f.ByteOrder.String() != "LittleEndian" {
		arch = "ppc64"
	}
	return arch, nil
}

// epoch is every timestamp of the images (layer files, config): the same
// binary makes the same bytes, so the same digests.
var epoch = time.Unix(0, 0).UTC()

// Images returns the two images: name to image. They share their one
// layer, which Binary's content fills when the layer is read (WriteArchive
// reads it once, to compress it, and keeps the result in memory).
func (b *Builtin) Images() (map[string]v1.Image, error) {
	layer, err := tarball.LayerFromOpener(b.layerTar, tarball.WithCompressedCaching)
	if err != nil {
		return nil, fmt.Errorf("image layer from %s: %w", b.Binary, err)
	}
	out := map[string]v1.Image{}
	for ref, entry := range map[string][]string{b.Pause: PauseEntrypoint, b.Smoke: SmokeEntrypoint} {
		img, err := b.image(layer, ref, entry)
		if err != nil {
			return nil, err
		}
		out[ref] = img
	}
	return out, nil
}

// image is one image on layer with entrypoint.
func (b *Builtin) image(layer v1.Layer, ref string, entrypoint []string) (v1.Image, error) {
	img, err := mutate.AppendLayers(empty.Image, layer)
	if err != nil {
		return nil, fmt.Errorf("image %s: %w", ref, err)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return nil, fmt.Errorf("image %s: %w", ref, err)
	}
	cf = cf.DeepCopy()
	cf.Architecture, cf.OS = b.Arch, "linux"
	cf.Created = v1.Time{Time: epoch}
	cf.Config = v1.Config{
		Entrypoint: entrypoint,
		Env:        []string{"PATH=/"},
		Labels: map[string]string{
			"org.opencontainers.image.title":  strings.TrimPrefix(ref, Registry+"/"),
			"org.opencontainers.image.source": "nodeboot (made from its own binary, sha256 " + b.Digest + ")",
		},
	}
	img, err = mutate.ConfigFile(img, cf)
	if err != nil {
		return nil, fmt.Errorf("image %s: %w", ref, err)
	}
	return img, nil
}

// layerTar opens the layer's uncompressed tar: the binary at BinaryPath,
// root's, mode 0755.
func (b *Builtin) layerTar() (io.ReadCloser, error) {
	f, err := os.Open(b.Binary)
	if err != nil {
		return nil, fmt.Errorf("image layer: %w", err)
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("image layer: %w", err)
	}
	pr, pw := io.Pipe()
	go func() {
		defer f.Close()
		tw := tar.NewWriter(pw)
		err := tw.WriteHeader(&tar.Header{
			Typeflag: tar.TypeReg, Name: strings.TrimPrefix(BinaryPath, "/"), Size: fi.Size(),
			Mode: 0o755, ModTime: epoch, Format: tar.FormatPAX,
		})
		if err == nil {
			var n int64
			n, err = io.Copy(tw, f)
			if err == nil && n != fi.Size() {
				err = fmt.Errorf("image layer: %s changed size while read (%d of %d bytes)", b.Binary, n, fi.Size())
			}
		}
		if err == nil {
			err = tw.Close()
		}
		pw.CloseWithError(err)
	}()
	return pr, nil
}

// BuiltinArchivePrefix starts the name of every Builtin's archive.
const BuiltinArchivePrefix = "nodeboot-images-"

// ArchiveName is the file name WriteArchive's archive goes by: one per
// binary, so that an archive of another build never shadows this one.
func (b *Builtin) ArchiveName() string { return BuiltinArchivePrefix + b.Digest[:12] + ".tar" }

// WriteArchive writes both images to path as one docker image archive
// (their shared layer once), atomically: a temporary file beside path,
// renamed into place once complete, so that k3s, which imports every
// archive that appears in its images directory, never reads half of one.
func (b *Builtin) WriteArchive(path string) error {
	imgs, err := b.Images()
	if err != nil {
		return err
	}
	refs := map[name.Reference]v1.Image{}
	for r, img := range imgs {
		tag, err := name.NewTag(r, name.StrictValidation)
		if err != nil {
			return fmt.Errorf("image name %q: %w", r, err)
		}
		refs[tag] = img
	}
	return writeAtomic(path, func(w io.Writer) error { return tarball.MultiRefWrite(refs, w) })
}

// writeAtomic writes path through write: into a temporary file in its
// directory (named so that k3s, which imports *.tar and the like, ignores
// it), synced, then renamed.
func writeAtomic(path string, write func(io.Writer) error) (err error) {
	dir, base := filepath.Split(path)
	if dir == "" {
		dir = "."
	}
	tmp, err := os.CreateTemp(dir, "."+base+".tmp-*")
	if err != nil {
		return fmt.Errorf("write image archive %s: %w", path, err)
	}
	defer func() {
		if err != nil {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	if err := write(tmp); err != nil {
		return fmt.Errorf("write image archive %s: %w", path, err)
	}
	if err := tmp.Chmod(0o644); err != nil {
		return fmt.Errorf("write image archive %s: %w", path, err)
	}
	if err := tmp.Sync(); err != nil {
		return fmt.Errorf("write image archive %s: %w", path, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("write image archive %s: %w", path, err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("write image archive %s: %w", path, err)
	}
	return nil
}
