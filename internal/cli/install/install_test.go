package install_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/nodeboot/nodeboot/bootstrap"
	"github.com/nodeboot/nodeboot/internal/cli"
	"github.com/nodeboot/nodeboot/internal/ptytest"
)

func run(args ...string) (int, string, string) {
	var out, errOut bytes.Buffer
	code := cli.Run(append([]string{"nodeboot"}, args...), strings.NewReader(""), &out, &errOut)
	return code, out.String(), errOut.String()
}

// release serves fake k3s releases (a script named like k3s and its
// checksum file) the way GitHub does, and counts the requests.
type release struct {
	binary []byte
	mux    *http.ServeMux
	mu     sync.Mutex
	gets   []string
}

func newRelease(t *testing.T) (*release, *httptest.Server) {
	asset := map[string]string{"amd64": "k3s", "arm64": "k3s-arm64"}[runtime.GOARCH]
	if asset == "" {
		t.Skipf("no k3s asset name for %s", runtime.GOARCH)
	}
	// Big enough for a few reads, so a progress bar has something to show.
	r := &release{binary: append([]byte("#!/bin/sh\necho fake k3s\n#"), bytes.Repeat([]byte("x"), 3<<20)...), mux: http.NewServeMux()}
	sum := sha256.Sum256(r.binary)
	good := hex.EncodeToString(sum[:]) + "  " + asset + "\n"
	bad := strings.Repeat("0", 64) + "  " + asset + "\n"
	for _, v := range []struct{ version, sums string }{
		{"v1.0.0+k3s1", good}, {bootstrap.DefaultK3sVersion, good}, {"v6.6.6+k3s1", bad},
	} {
		esc := "/" + strings.ReplaceAll(v.version, "+", "%2B")
		r.mux.HandleFunc(esc+"/"+asset, func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Content-Length", strconv.Itoa(len(r.binary))) // as GitHub's downloads have
			w.Write(r.binary)
		})
		r.mux.HandleFunc(esc+"/sha256sum-"+runtime.GOARCH+".txt", func(w http.ResponseWriter, _ *http.Request) { w.Write([]byte(v.sums)) })
	}
	srv := httptest.NewServer(r)
	t.Cleanup(srv.Close)
	return r, srv
}

func (r *release) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	r.mu.Lock()
	r.gets = append(r.gets, req.URL.EscapedPath())
	r.mu.Unlock()
	r.mux.ServeHTTP(w, req)
}

func (r *release) requests() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.gets...)
}

// TestInstall serves fake releases from a local HTTP server.
func TestInstall(t *testing.T) {
	rel, srv := newRelease(t)
	dir := filepath.Join(t.TempDir(), "data")
	dest := filepath.Join(dir, "bin", "k3s")
	code, stdout, stderr := run("install", "--data-dir", dir, "--version", "v1.0.0+k3s1", "--base-url", srv.URL)
	if code != 0 || stdout != dest+"\n" {
		t.Fatalf("install: exit %d, stdout %q, stderr %q", code, stdout, stderr)
	}
	if b, err := os.ReadFile(dest); err != nil || !bytes.Equal(b, rel.binary) {
		t.Errorf("installed %d bytes, %v", len(b), err)
	}
	if fi, _ := os.Stat(dest); fi.Mode().Perm() != 0o755 {
		t.Errorf("mode %v, want 0755", fi.Mode().Perm())
	}
	// Not a terminal: no progress bar, no control characters.
	if strings.ContainsAny(stderr, "\r\x1b") {
		t.Errorf("stderr has control characters off a terminal: %q", stderr)
	}

	code, _, stderr = run("install", "--data-dir", filepath.Join(t.TempDir(), "d2"), "--version", "v6.6.6+k3s1", "--base-url", srv.URL)
	if code != 1 || !strings.Contains(stderr, "nodeboot: install: ") || !strings.Contains(stderr, "sha256 mismatch") {
		t.Errorf("checksum mismatch: exit %d, stderr %q", code, stderr)
	}
}

// TestInstallDefaultVersion: without --version, install gets the tested
// release, bootstrap.DefaultK3sVersion.
func TestInstallDefaultVersion(t *testing.T) {
	rel, srv := newRelease(t)
	dir := filepath.Join(t.TempDir(), "data")
	code, stdout, stderr := run("install", "--data-dir", dir, "--base-url", srv.URL)
	if code != 0 || stdout != filepath.Join(dir, "bin", "k3s")+"\n" {
		t.Fatalf("install: exit %d, stdout %q, stderr %q", code, stdout, stderr)
	}
	want := "/" + strings.ReplaceAll(bootstrap.DefaultK3sVersion, "+", "%2B") + "/"
	for _, p := range rel.requests() {
		if !strings.HasPrefix(p, want) {
			t.Errorf("request %s, want one for %s", p, bootstrap.DefaultK3sVersion)
		}
	}
	// The help names the default.
	if _, stdout, _ = run("install", "--help"); !strings.Contains(stdout, bootstrap.DefaultK3sVersion) {
		t.Errorf("install --help does not name the default version:\n%s", stdout)
	}
}

// TestInstallBadVersion: a version that is no k3s release name is a usage
// error that says what one looks like, and nothing is downloaded.
func TestInstallBadVersion(t *testing.T) {
	rel, srv := newRelease(t)
	for _, tc := range []struct{ version, want string }{
		{"1.33", `--version "1.33" is not a k3s release name: k3s names its releases vMAJOR.MINOR.PATCH+k3sN`},
		{"1.33", "e.g. v1.33.0+k3s1"},
		{"v1.33.4", "you may mean v1.33.4+k3s1"},
		{"latest", "e.g. " + bootstrap.DefaultK3sVersion},
	} {
		code, stdout, stderr := run("install", "--data-dir", t.TempDir(), "--version", tc.version, "--base-url", srv.URL)
		if code != 2 || stdout != "" || !strings.Contains(stderr, tc.want) || strings.Count(stderr, "\n") != 1 {
			t.Errorf("--version %s: exit %d, stdout %q, stderr %q; want exit 2 and one line with %q", tc.version, code, stdout, stderr, tc.want)
		}
	}
	if reqs := rel.requests(); len(reqs) != 0 {
		t.Errorf("bad versions made requests: %v", reqs)
	}
}

// TestInstallOffline: with the release server unreachable, the one error
// line says what to download from where, and both ways to use it.
func TestInstallOffline(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	base := srv.URL
	srv.Close() // its port now refuses connections
	dir := filepath.Join(t.TempDir(), "data")
	code, stdout, stderr := run("install", "--data-dir", dir, "--base-url", base)
	t.Logf("stderr: %s", stderr)
	rel := base + "/" + strings.ReplaceAll(bootstrap.DefaultK3sVersion, "+", "%2B")
	arch := runtime.GOARCH
	asset := map[string]string{"amd64": "k3s", "arm64": "k3s-arm64"}[arch]
	var errLines []string
	for _, l := range strings.Split(strings.TrimSpace(stderr), "\n") {
		if strings.HasPrefix(l, "nodeboot: ") {
			errLines = append(errLines, l)
		}
	}
	if code != 1 || stdout != "" || len(errLines) != 1 {
		t.Errorf("exit %d, stdout %q, error lines %q; want 1 and one error line", code, stdout, errLines)
	}
	for _, want := range []string{
		"nodeboot: install: cannot download k3s " + bootstrap.DefaultK3sVersion,
		"download " + rel + "/" + asset + " and " + rel + "/sha256sum-" + arch + ".txt",
		"sha256sum -c --ignore-missing sha256sum-" + arch + ".txt",
		"--k3s PATH", "NODEBOOT_K3S=PATH",
		filepath.Join(dir, "bin", "k3s") + " (chmod 755)",
	} {
		if !strings.Contains(stderr, want) {
			t.Errorf("error lacks %q", want)
		}
	}
}

// TestInstallIfMissing: --if-missing downloads nothing when up would find
// a k3s ($NODEBOOT_K3S, $PATH, DATA-DIR/bin/k3s), and prints which.
func TestInstallIfMissing(t *testing.T) {
	rel, srv := newRelease(t)
	dir := filepath.Join(t.TempDir(), "data")
	t.Setenv("PATH", t.TempDir()) // no k3s on it
	t.Setenv("NODEBOOT_K3S", "")

	// Nothing anywhere: it downloads.
	code, stdout, stderr := run("install", "--if-missing", "--data-dir", dir, "--base-url", srv.URL)
	dest := filepath.Join(dir, "bin", "k3s")
	if code != 0 || stdout != dest+"\n" || len(rel.requests()) != 2 {
		t.Fatalf("nothing there: exit %d, stdout %q, stderr %q, requests %v", code, stdout, stderr, rel.requests())
	}
	// DATA-DIR/bin/k3s now: nothing downloaded, not even the checksums
	// (which offline would fail).
	if code, stdout, stderr = run("install", "--if-missing", "--data-dir", dir, "--base-url", srv.URL); code != 0 || stdout != dest+"\n" || len(rel.requests()) != 2 {
		t.Errorf("installed: exit %d, stdout %q, stderr %q, requests %v", code, stdout, stderr, rel.requests())
	}
	// $NODEBOOT_K3S wins, as it does for up.
	own := filepath.Join(t.TempDir(), "my-k3s")
	if err := os.WriteFile(own, []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv("NODEBOOT_K3S", own)
	empty := filepath.Join(t.TempDir(), "empty")
	if code, stdout, stderr = run("install", "--if-missing", "--data-dir", empty, "--base-url", srv.URL); code != 0 || stdout != own+"\n" || len(rel.requests()) != 2 {
		t.Errorf("NODEBOOT_K3S: exit %d, stdout %q, stderr %q", code, stdout, stderr)
	}
	if _, err := os.Stat(empty); !os.IsNotExist(err) {
		t.Errorf("--if-missing with a k3s made the data dir: %v", err)
	}
	// k3s on $PATH too.
	t.Setenv("NODEBOOT_K3S", "")
	t.Setenv("PATH", filepath.Dir(own)+string(os.PathListSeparator)+os.Getenv("PATH"))
	if err := os.Rename(own, filepath.Join(filepath.Dir(own), "k3s")); err != nil {
		t.Fatal(err)
	}
	if code, stdout, _ = run("install", "--if-missing", "--data-dir", empty, "--base-url", srv.URL); code != 0 || stdout != filepath.Join(filepath.Dir(own), "k3s")+"\n" {
		t.Errorf("k3s on $PATH: exit %d, stdout %q", code, stdout)
	}
}

// TestInstallProgressBar: on a terminal the download shows a progress bar
// that ends at 100% and gives way to a ✓ line.
func TestInstallProgressBar(t *testing.T) {
	_, srv := newRelease(t)
	pty := ptytest.Open(t)
	var out bytes.Buffer
	dir := filepath.Join(t.TempDir(), "data")
	code := cli.Run([]string{"nodeboot", "install", "--data-dir", dir, "--base-url", srv.URL}, strings.NewReader(""), &out, pty.TTY)
	screen := pty.Output()
	t.Logf("terminal: %q", screen)
	if code != 0 || out.String() != filepath.Join(dir, "bin", "k3s")+"\n" {
		t.Fatalf("exit %d, stdout %q", code, out.String())
	}
	for _, want := range []string{
		"\r\x1b[K Downloading k3s " + bootstrap.DefaultK3sVersion + " [",
		"] 100%  3.0/3.0 MiB",
		"\r\x1b[K ✓ k3s " + bootstrap.DefaultK3sVersion + " installed at " + filepath.Join(dir, "bin", "k3s") + " (sha256 verified)",
	} {
		if !strings.Contains(screen, want) {
			t.Errorf("terminal lacks %q", want)
		}
	}
}
