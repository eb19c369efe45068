package bootstrap

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"time"
)

// DefaultK3sBaseURL is where k3s releases are downloaded from:
// BaseURL/VERSION/ASSET.
const DefaultK3sBaseURL = "https://github.com/k3s-io/k3s/releases/download"

// DefaultK3sVersion is the k3s release Install gets when none is named:
// the one nodeboot is tested with. The e2e suite (TestK3s) runs k3s
// v1.36.3 built from k3s's main branch at 469d009f, which ships k3s's
// Kubernetes fork v1.36.3-k3s1 (its go.mod), the Kubernetes of the release
// v1.36.3+k3s1; k3s's channel.yaml at that commit names v1.36.3+k3s1 as
// the stable channel. k3s names a release vK8S+k3sN, N counting k3s's
// builds of that Kubernetes: +k3s1 is the first, and the only one there
// is at that commit.
const DefaultK3sVersion = "v1.36.3+k3s1"

// k3sVersion is a k3s release name: v1.36.3+k3s1, v1.34.0-rc1+k3s1.
var k3sVersion = regexp.MustCompile(`^v[0-9]+\.[0-9]+\.[0-9]+(-[0-9A-Za-z.]+)?\+k3s[0-9]+$`)

// CheckK3sVersion returns nil when v is the name of a k3s release
// (vMAJOR.MINOR.PATCH+k3sN, e.g. v1.36.3+k3s1), and otherwise an error
// that says what one looks like, with a guess at what was meant.
func CheckK3sVersion(v string) error {
	if k3sVersion.MatchString(v) {
		return nil
	}
	hint := ""
	w := strings.TrimPrefix(v, "v")
	w, _, _ = strings.Cut(w, "+")
	w = strings.TrimSuffix(strings.TrimSuffix(w, "-k3s1"), "-k3s2")
	switch parts := strings.Split(w, "."); {
	case len(parts) == 3 && allDigits(parts):
		hint = fmt.Sprintf(" (you may mean v%s+k3s1)", w)
	case len(parts) == 2 && allDigits(parts):
		hint = fmt.Sprintf(" (%s is a Kubernetes minor version; a k3s release of it is v%s.PATCH+k3sN, e.g. v%s.0+k3s1: pick one at https://github.com/k3s-io/k3s/releases)", v, w, w)
	}
	return fmt.Errorf("%q is not a k3s release name: k3s names its releases vMAJOR.MINOR.PATCH+k3sN after the Kubernetes version they ship, e.g. %s, the release nodeboot is tested with%s", v, DefaultK3sVersion, hint)
}

func allDigits(parts []string) bool {
	for _, p := range parts {
		if p == "" || strings.Trim(p, "0123456789") != "" {
			return false
		}
	}
	return true
}

// InstallConfig says which k3s release to install where.
type InstallConfig struct {
	// Version is the release, e.g. v1.36.3+k3s1 (CheckK3sVersion says
	// what a release name looks like); "" is DefaultK3sVersion.
	Version string
	BaseURL string // default DefaultK3sBaseURL
	// Arch is runtime.GOARCH by default: amd64 installs the asset "k3s",
	// arm64 "k3s-arm64" (arm "k3s-armhf"), checked against
	// sha256sum-<arch>.txt of the same release.
	Arch string
	Dest string // file to install (e.g. <data-dir>/bin/k3s), written atomically, mode 0755 (required)
	// Client makes the requests; nil is a client with connection and
	// response-header timeouts (the body may take as long as ctx allows).
	Client *http.Client
	// Progress, when set, is called as the binary downloads, with the
	// bytes received so far and the total (-1 when the server does not
	// say), from Install's goroutine; it is not called when the binary
	// installed already is the release.
	Progress func(done, total int64)
}

// maxSumFile bounds the checksum file read into memory.
const maxSumFile = 1 << 20

// Install downloads k3s cfg.Version for cfg.Arch and its release's checksum
// file, verifies the binary's sha256 against the file's entry for it, and
// installs it at cfg.Dest: written to a temporary file in the same
// directory, fsynced, made 0755 and renamed over Dest. It returns Dest.
//
// It refuses to install when the checksum file has no entry for the asset
// or the digests differ (the error names both), and when Dest is a symlink
// (a planted link must not redirect the install). Nothing is left at Dest
// or beside it on failure. When Dest already holds the verified release it
// is left alone and nothing but the checksum file is downloaded.
//
// A network failure (DNS, connection, TLS, a cut transfer) gives a
// *DownloadError, which says what to download where to go on offline.
func Install(ctx context.Context, cfg InstallConfig) (path string, err error) {
	if cfg.Version == "" {
		cfg.Version = DefaultK3sVersion
	}
	if err := CheckK3sVersion(cfg.Version); err != nil {
		return "", fmt.Errorf("install k3s: %w", err)
	}
	if cfg.Dest == "" {
		return "", errors.New("install k3s: no destination path")
	}
	dest, err := filepath.Abs(cfg.Dest)
	if err != nil {
		return "", fmt.Errorf("install k3s: destination %s: %w", cfg.Dest, err)
	}
	arch := cfg.Arch
	if arch == "" {
		arch = runtime.GOARCH
	}
	asset, ok := map[string]string{"amd64": "k3s", "arm64": "k3s-arm64", "arm": "k3s-armhf"}[arch]
	if !ok {
		return "", fmt.Errorf("install k3s: k3s publishes no binary for %q (amd64, arm64 and arm only); pass --k3s PATH to a k3s built for this machine", arch)
	}
	base := cfg.BaseURL
	if base == "" {
		base = DefaultK3sBaseURL
	}
	base = strings.TrimRight(base, "/")
	// Release tags hold a '+' (v1.33.4+k3s1), which PathEscape leaves
	// alone as legal in a path; GitHub's URLs carry it as %2B.
	release := base + "/" + strings.ReplaceAll(url.PathEscape(cfg.Version), "+", "%2B")
	assetURL := release + "/" + asset
	sumURL := release + "/sha256sum-" + arch + ".txt"

	if err := refuseSymlink(dest); err != nil {
		return "", err
	}
	client := cfg.Client
	if client == nil {
		client = defaultInstallClient()
	}
	i := &installer{ctx: ctx, client: client, version: cfg.Version, arch: arch, binURL: assetURL, sumURL: sumURL}

	sums, err := i.get(sumURL, func(r io.Reader) ([]byte, error) {
		b, err := io.ReadAll(io.LimitReader(r, maxSumFile+1))
		if err == nil && len(b) > maxSumFile {
			err = fmt.Errorf("larger than %d bytes; not a checksum file", maxSumFile)
		}
		return b, err
	})
	if err != nil {
		return "", err
	}
	want, err := findSum(sums, asset)
	if err != nil {
		return "", fmt.Errorf("install k3s %s: checksum file %s: %w; refusing to install an unverified binary", cfg.Version, sumURL, err)
	}
	if have, err := fileSHA256(dest); err == nil && have == want {
		if err := os.Chmod(dest, 0o755); err != nil {
			return "", fmt.Errorf("install k3s: %w", err)
		}
		return dest, nil
	}

	dir := filepath.Dir(dest)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", fmt.Errorf("install k3s: create %s: %w", dir, err)
	}
	// A random name in Dest's own directory: nothing predictable in a
	// shared directory, and the final rename stays on one filesystem.
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(dest)+".download-*")
	if err != nil {
		return "", fmt.Errorf("install k3s: %w", err)
	}
	defer func() {
		if tmp != nil {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	i.progress = cfg.Progress
	_, err = i.get(assetURL, func(r io.Reader) ([]byte, error) {
		_, err := io.Copy(tmp, r)
		return nil, err
	})
	if err != nil {
		return "", err
	}
	// Hash what is on disk, which is what will run.
	got, err := fileDigest(tmp)
	if err != nil {
		return "", fmt.Errorf("install k3s: %w", err)
	}
	if got != want {
		return "", fmt.Errorf("install k3s %s: sha256 mismatch for %s: expected %s (from %s), got %s; refusing to install it (a corrupted or tampered download; try again, or check the release page)",
			cfg.Version, assetURL, want, sumURL, got)
	}
	if err := tmp.Chmod(0o755); err != nil {
		return "", fmt.Errorf("install k3s: %w", err)
	}
	if err := tmp.Sync(); err != nil {
		return "", fmt.Errorf("install k3s: fsync %s: %w", tmp.Name(), err)
	}
	if err := tmp.Close(); err != nil {
		return "", fmt.Errorf("install k3s: close %s: %w", tmp.Name(), err)
	}
	// Checked again just before the rename; rename(2) replaces a link
	// planted since then instead of following it anyway.
	if err := refuseSymlink(dest); err != nil {
		return "", err
	}
	if err := os.Rename(tmp.Name(), dest); err != nil {
		return "", fmt.Errorf("install k3s: %w", err)
	}
	tmp = nil
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync() // make the rename durable; some filesystems refuse, the data is synced
		d.Close()
	}
	return dest, nil
}

type installer struct {
	ctx            context.Context
	client         *http.Client
	version, arch  string
	binURL, sumURL string
	progress       func(done, total int64) // for the next get
}

// get fetches u and hands the body to read. Transport failures get the
// offline hint; HTTP errors name the status.
func (i *installer) get(u string, read func(io.Reader) ([]byte, error)) ([]byte, error) {
	req, err := http.NewRequestWithContext(i.ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, fmt.Errorf("install k3s %s: bad URL %s: %w", i.version, u, err)
	}
	resp, err := i.client.Do(req)
	if err != nil {
		return nil, i.netErr(u, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		hint := ""
		if resp.StatusCode == http.StatusNotFound {
			hint = fmt.Sprintf("; is %s a k3s release (https://github.com/k3s-io/k3s/releases) with a binary for this architecture?", i.version)
		}
		return nil, fmt.Errorf("install k3s %s: GET %s: HTTP %s%s", i.version, u, resp.Status, hint)
	}
	body := io.Reader(resp.Body)
	if i.progress != nil {
		body = &progressReader{r: resp.Body, total: resp.ContentLength, report: i.progress}
		i.progress(0, resp.ContentLength)
	}
	b, err := read(body)
	if err != nil {
		return nil, i.netErr(u, err)
	}
	return b, nil
}

func (i *installer) netErr(u string, err error) error {
	if ctxErr := i.ctx.Err(); ctxErr != nil {
		return fmt.Errorf("install k3s %s: download %s: %w", i.version, u, ctxErr)
	}
	return &DownloadError{Version: i.version, Arch: i.arch, URL: u, BinaryURL: i.binURL, SumsURL: i.sumURL, Err: err}
}

// DownloadError is Install's error when the network failed it (DNS, a
// refused connection, TLS, a transfer cut short): what to fetch by other
// means to install k3s offline.
type DownloadError struct {
	Version, Arch string
	URL           string // the download that failed
	BinaryURL     string // the release's k3s binary for Arch
	SumsURL       string // its checksum file, sha256sum-ARCH.txt
	Err           error
}

func (e *DownloadError) Error() string {
	return fmt.Sprintf("cannot download k3s %s from %s: %v; offline, pass --k3s PATH to an existing k3s binary: %s", e.Version, e.URL, e.Err, e.Fetch())
}

func (e *DownloadError) Unwrap() error { return e.Err }

// Fetch says what to download where, by other means, and how to check it.
func (e *DownloadError) Fetch() string {
	return fmt.Sprintf("on a machine with internet access, download %s and %s, check the binary with `sha256sum -c --ignore-missing %s`, and copy it here",
		e.BinaryURL, e.SumsURL, path.Base(e.SumsURL))
}

// progressReader reports the bytes read through it.
type progressReader struct {
	r           io.Reader
	done, total int64
	report      func(done, total int64)
}

func (p *progressReader) Read(b []byte) (int, error) {
	n, err := p.r.Read(b)
	if n > 0 {
		p.done += int64(n)
		p.report(p.done, p.total)
	}
	return n, err
}

func defaultInstallClient() *http.Client {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.DialContext = (&net.Dialer{Timeout: 30 * time.Second, KeepAlive: 30 * time.Second}).DialContext
	tr.TLSHandshakeTimeout = 30 * time.Second
	tr.ResponseHeaderTimeout = 60 * time.Second
	return &http.Client{Transport: tr}
}

// findSum returns the lowercase hex sha256 the sha256sum-style file gives
// for name ("<hex>  name" or "<hex> *name" lines).
func findSum(sums []byte, name string) (string, error) {
	sc := bufio.NewScanner(strings.NewReader(string(sums)))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) != 2 || strings.TrimPrefix(f[1], "*") != name {
			continue
		}
		sum := strings.ToLower(f[0])
		if b, err := hex.DecodeString(sum); err != nil || len(b) != sha256.Size {
			return "", fmt.Errorf("the entry for %s has %q, not a sha256 digest", name, f[0])
		}
		return sum, nil
	}
	return "", fmt.Errorf("no entry for %s", name)
}

// refuseSymlink fails when p is a symlink (or not a regular file).
func refuseSymlink(p string) error {
	fi, err := os.Lstat(p)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return nil
	case err != nil:
		return fmt.Errorf("install k3s: %w", err)
	case fi.Mode()&fs.ModeSymlink != 0:
		target, _ := os.Readlink(p)
		return fmt.Errorf("install k3s: %s is a symlink (to %q); refusing to install through it; remove it (rm %s) or choose another path", p, target, p)
	case !fi.Mode().IsRegular():
		return fmt.Errorf("install k3s: %s exists and is not a regular file (%s); remove it or choose another path", p, fi.Mode().Type())
	}
	return nil
}

// fileSHA256 hashes the regular file p (not following a symlink).
func fileSHA256(p string) (string, error) {
	if err := refuseSymlink(p); err != nil {
		return "", err
	}
	f, err := os.Open(p)
	if err != nil {
		return "", err
	}
	defer f.Close()
	return fileDigest(f)
}

// fileDigest hashes f from its start.
func fileDigest(f *os.File) (string, error) {
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return "", err
	}
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", fmt.Errorf("read %s: %w", f.Name(), err)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}
