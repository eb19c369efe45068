package images

import (
	"archive/tar"
	"bufio"
	"bytes"
	"compress/gzip"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

// ErrNotArchive is what Inspect's errors are when the file is not an
// image archive containerd can import.
var ErrNotArchive = errors.New("not an image archive")

// Format is the layout of an image archive.
type Format string

const (
	// Docker is "docker save"'s: manifest.json lists each image's config,
	// layers and names (RepoTags).
	Docker Format = "docker"
	// OCI is an OCI image layout in a tar ("docker buildx --output
	// type=oci", "skopeo copy ... oci-archive:"): oci-layout, index.json,
	// blobs/; the images' names are index.json's annotations.
	OCI Format = "oci"
)

// Archive is what Inspect found in an image archive.
type Archive struct {
	Path   string
	Format Format
	// Gzip: the tar is gzip-compressed (k3s imports it as *.tar.gz).
	Gzip bool
	// Refs are the names the archive gives its images, as containerd
	// will name them (docker.io/library/ and :latest made explicit).
	Refs []string
}

// Ext is the file name extension that k3s's image import recognises for
// the archive: ".tar" or ".tar.gz".
func (a *Archive) Ext() string {
	if a.Gzip {
		return ".tar.gz"
	}
	return ".tar"
}

// StagedName is the name the archive goes by in a directory k3s imports
// from: its own, with the extension k3s's import needs when it lacks it
// (k3s skips a docker archive saved as app.img).
func (a *Archive) StagedName() string {
	name := filepath.Base(a.Path)
	if strings.HasSuffix(name, a.Ext()) {
		return name
	}
	return strings.TrimSuffix(strings.TrimSuffix(name, ".tgz"), ".tar") + a.Ext()
}

// maxJSON bounds the index files Inspect reads: real ones are a few KiB.
const maxJSON = 4 << 20

// Inspect checks that path is an image archive that containerd can import
// and that names its images (an image without a name is imported, but no
// pod can refer to it), and returns what it holds. It reads the whole file
// once; it checks that every file the index names is in the archive, not
// the content digests, which containerd checks on import. Every error
// wraps ErrNotArchive, or is the file's own (missing, unreadable).
func Inspect(file string) (*Archive, error) {
	f, err := os.Open(file)
	if err != nil {
		return nil, fmt.Errorf("image archive: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("image archive %s: %w", file, err)
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("image archive %s: %w: it is a %s, not a file", file, ErrNotArchive, kind(fi.Mode()))
	}
	a := &Archive{Path: file}
	br := bufio.NewReader(f)
	magic, _ := br.Peek(4)
	var r io.Reader = br
	switch {
	case bytes.HasPrefix(magic, []byte{0x1f, 0x8b}):
		zr, err := gzip.NewReader(br)
		if err != nil {
			return nil, fmt.Errorf("image archive %s: %w: bad gzip: %v", file, ErrNotArchive, err)
		}
		defer zr.Close()
		r, a.Gzip = zr, true
	case bytes.Equal(magic, []byte{0x28, 0xb5, 0x2f, 0xfd}):
		return nil, fmt.Errorf("image archive %s: %w: it is zstd-compressed; decompress it (zstd -d) and load the .tar", file, ErrNotArchive)
	}
	entries, files, err := readTar(r)
	if err != nil {
		return nil, fmt.Errorf("image archive %s: %w: %v", file, ErrNotArchive, err)
	}
	switch {
	case files["manifest.json"] != nil:
		a.Format = Docker
		err = a.checkDocker(files["manifest.json"], entries)
	case files["index.json"] != nil && files["oci-layout"] != nil:
		a.Format = OCI
		err = a.checkOCI(files["index.json"], entries)
	default:
		err = errors.New("it has neither manifest.json (docker save) nor oci-layout and index.json (OCI layout) at its top")
	}
	if err != nil {
		return nil, fmt.Errorf("image archive %s: %w: %v", file, ErrNotArchive, err)
	}
	return a, nil
}

// kind names a file mode's type for an error.
func kind(m os.FileMode) string {
	switch {
	case m.IsDir():
		return "directory"
	case m&os.ModeNamedPipe != 0:
		return "pipe"
	case m&os.ModeSocket != 0:
		return "socket"
	case m&os.ModeDevice != 0:
		return "device"
	}
	return "special file"
}

// readTar lists the tar's regular files (cleaned paths) and returns the
// content of the top-level index files.
func readTar(r io.Reader) (map[string]bool, map[string][]byte, error) {
	tr := tar.NewReader(r)
	entries := map[string]bool{}
	files := map[string][]byte{}
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, nil, fmt.Errorf("not a tar archive (or a truncated one): %v", err)
		}
		p := path.Clean(strings.TrimPrefix(h.Name, "./"))
		if h.Typeflag == tar.TypeReg || h.Typeflag == tar.TypeSymlink || h.Typeflag == tar.TypeLink {
			entries[p] = true
		}
		switch p {
		case "manifest.json", "index.json", "oci-layout":
			b, err := io.ReadAll(io.LimitReader(tr, maxJSON+1))
			if err != nil {
				return nil, nil, fmt.Errorf("read %s: %v", p, err)
			}
			if len(b) > maxJSON {
				return nil, nil, fmt.Errorf("%s is larger than %d bytes", p, maxJSON)
			}
			files[p] = b
		}
	}
	if len(entries) == 0 {
		return nil, nil, errors.New("the tar is empty")
	}
	return entries, files, nil
}

// checkDocker reads a docker archive's manifest.json.
func (a *Archive) checkDocker(b []byte, entries map[string]bool) error {
	var m tarball.Manifest
	if err := json.Unmarshal(b, &m); err != nil {
		return fmt.Errorf("manifest.json: %v", err)
	}
	if len(m) == 0 {
		return errors.New("manifest.json lists no image")
	}
	for i, d := range m {
		if d.Config == "" || !entries[path.Clean(d.Config)] {
			return fmt.Errorf("manifest.json image %d: its config %q is not in the archive", i, d.Config)
		}
		for _, l := range d.Layers {
			if !entries[path.Clean(l)] {
				return fmt.Errorf("manifest.json image %d: its layer %q is not in the archive", i, l)
			}
		}
		for _, t := range d.RepoTags {
			if err := a.addRef(t); err != nil {
				return fmt.Errorf("manifest.json image %d: %v", i, err)
			}
		}
	}
	if len(a.Refs) == 0 {
		return errors.New("manifest.json names no image (no RepoTags): containerd would import it without a name, which no pod can use; save it by name (docker save NAME:TAG)")
	}
	return nil
}

// OCI annotations that name an image in index.json: containerd's own,
// which "ctr images import" reads first, then the OCI one (a full name,
// as containerd's export and skopeo write it).
const (
	annContainerdName = "io.containerd.image.name"
	annOCIRefName     = "org.opencontainers.image.ref.name"
)

// checkOCI reads an OCI layout's index.json.
func (a *Archive) checkOCI(b []byte, entries map[string]bool) error {
	idx, err := v1.ParseIndexManifest(bytes.NewReader(b))
	if err != nil {
		return fmt.Errorf("index.json: %v", err)
	}
	if len(idx.Manifests) == 0 {
		return errors.New("index.json lists no image")
	}
	for i, d := range idx.Manifests {
		blob := path.Join("blobs", d.Digest.Algorithm, d.Digest.Hex)
		if d.Digest.Hex == "" || !entries[blob] {
			return fmt.Errorf("index.json manifest %d: its blob %s is not in the archive", i, blob)
		}
		n := d.Annotations[annContainerdName]
		if n == "" {
			// A bare tag ("v1") names nothing by itself: containerd
			// needs a full name.
			if r := d.Annotations[annOCIRefName]; strings.ContainsAny(r, "/:") {
				n = r
			}
		}
		if n != "" {
			if err := a.addRef(n); err != nil {
				return fmt.Errorf("index.json manifest %d: %v", i, err)
			}
		}
	}
	if len(a.Refs) == 0 {
		return fmt.Errorf("index.json names no image (no %s annotation, nor a full name in %s): containerd would import it without a name, which no pod can use", annContainerdName, annOCIRefName)
	}
	return nil
}

// addRef adds an image name, as containerd will store it.
func (a *Archive) addRef(s string) error {
	ref, err := name.ParseReference(s, name.WithDefaultRegistry(name.DefaultRegistry))
	if err != nil {
		return fmt.Errorf("image name %q: %v", s, err)
	}
	// containerd's name for Docker Hub is docker.io, not the
	// index.docker.io go-containerregistry uses.
	n := ref.Name()
	if rest, ok := strings.CutPrefix(n, name.DefaultRegistry+"/"); ok {
		n = "docker.io/" + rest
	}
	if !slices.Contains(a.Refs, n) {
		a.Refs = append(a.Refs, n)
	}
	return nil
}
