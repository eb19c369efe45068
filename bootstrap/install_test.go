package bootstrap

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// release is a fake k3s release served by a local HTTP server the way
// GitHub serves one: /VERSION/ASSET and /VERSION/sha256sum-ARCH.txt, with
// the '+' of the version escaped as %2B in the request path.
type release struct {
	version string
	assets  map[string][]byte // name -> content
	sums    map[string]string // arch -> checksum file
	mu      sync.Mutex
	paths   []string // escaped request paths, in order
}

func newRelease(version string) *release {
	r := &release{version: version, assets: map[string][]byte{}, sums: map[string]string{}}
	var amd, arm strings.Builder
	for _, a := range []struct{ name, content string }{
		{"k3s", "#!/bin/sh\necho k3s amd64 " + version + "\n"},
		{"k3s-arm64", "#!/bin/sh\necho k3s arm64 " + version + "\n"},
		{"k3s-airgap-images-amd64.tar", "images"},
	} {
		r.assets[a.name] = []byte(a.content)
		sum := sha256.Sum256([]byte(a.content))
		line := hex.EncodeToString(sum[:]) + "  " + a.name + "\n"
		if strings.Contains(a.name, "arm64") {
			arm.WriteString(line)
		} else {
			amd.WriteString(line)
		}
	}
	r.sums["amd64"], r.sums["arm64"] = amd.String(), arm.String()
	return r
}

func (r *release) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	r.mu.Lock()
	r.paths = append(r.paths, req.URL.EscapedPath())
	r.mu.Unlock()
	// GitHub's tag path segment is v1.33.4%2Bk3s1.
	prefix := "/" + strings.ReplaceAll(r.version, "+", "%2B") + "/"
	name, ok := strings.CutPrefix(req.URL.EscapedPath(), prefix)
	if !ok {
		http.NotFound(w, req)
		return
	}
	if arch, ok := strings.CutPrefix(name, "sha256sum-"); ok {
		if s, ok := r.sums[strings.TrimSuffix(arch, ".txt")]; ok {
			fmt.Fprint(w, s)
			return
		}
	}
	if b, ok := r.assets[name]; ok {
		w.Write(b)
		return
	}
	http.NotFound(w, req)
}

func (r *release) requests() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.paths...)
}

// dirNames lists dir, to catch temporary files left behind.
func dirNames(t *testing.T, dir string) []string {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	var out []string
	for _, e := range ents {
		out = append(out, e.Name())
	}
	return out
}

func TestInstall(t *testing.T) {
	const version = "v1.33.4+k3s1"
	tests := []struct {
		name    string
		arch    string
		tamper  func(r *release)
		setup   func(t *testing.T, dest string)
		wantErr []string // substrings; nil means success
		// wantAsset is the installed content on success.
		wantAsset string
	}{
		{name: "amd64", arch: "amd64", wantAsset: "k3s"},
		{name: "arm64", arch: "arm64", wantAsset: "k3s-arm64"},
		{
			name: "replaces an older binary",
			arch: "amd64",
			setup: func(t *testing.T, dest string) {
				if err := os.WriteFile(dest, []byte("old k3s"), 0o755); err != nil {
					t.Fatal(err)
				}
			},
			wantAsset: "k3s",
		},
		{
			name:   "checksum mismatch",
			arch:   "amd64",
			tamper: func(r *release) { r.assets["k3s"] = []byte("#!/bin/sh\necho evil\n") },
			wantErr: []string{
				"sha256 mismatch",
				"/v1.33.4%2Bk3s1/k3s",
				"expected " + sumOf("#!/bin/sh\necho k3s amd64 v1.33.4+k3s1\n"),
				"got " + sumOf("#!/bin/sh\necho evil\n"),
				"refusing to install",
			},
		},
		{
			name: "no entry for the asset",
			arch: "amd64",
			tamper: func(r *release) {
				var kept []string
				for _, l := range strings.SplitAfter(r.sums["amd64"], "\n") {
					if !strings.HasSuffix(strings.TrimSpace(l), "  k3s") {
						kept = append(kept, l)
					}
				}
				r.sums["amd64"] = strings.Join(kept, "")
			},
			wantErr: []string{"sha256sum-amd64.txt", "no entry for k3s", "refusing to install"},
		},
		{
			name:    "asset missing (404)",
			arch:    "amd64",
			tamper:  func(r *release) { delete(r.assets, "k3s") },
			wantErr: []string{"HTTP 404", "/v1.33.4%2Bk3s1/k3s", "is v1.33.4+k3s1 a k3s release"},
		},
		{
			name:    "no checksum file (404)",
			arch:    "arm64",
			tamper:  func(r *release) { delete(r.sums, "arm64") },
			wantErr: []string{"HTTP 404", "sha256sum-arm64.txt"},
		},
		{
			name:    "unsupported arch",
			arch:    "riscv64",
			wantErr: []string{`no binary for "riscv64"`, "pass --k3s PATH"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rel := newRelease(version)
			if tc.tamper != nil {
				tc.tamper(rel)
			}
			srv := httptest.NewServer(rel)
			defer srv.Close()
			dir := filepath.Join(t.TempDir(), "bin")
			dest := filepath.Join(dir, "k3s")
			if tc.setup != nil {
				if err := os.MkdirAll(dir, 0o755); err != nil {
					t.Fatal(err)
				}
				tc.setup(t, dest)
			}
			before, _ := os.ReadFile(dest)
			path, err := Install(context.Background(), InstallConfig{
				Version: version, BaseURL: srv.URL + "/", Arch: tc.arch, Dest: dest, Client: srv.Client(),
			})
			t.Logf("requests: %v", rel.requests())
			if tc.wantErr != nil {
				if err == nil {
					t.Fatalf("Install succeeded; want an error with %q", tc.wantErr)
				}
				t.Logf("error: %v", err)
				for _, w := range tc.wantErr {
					if !strings.Contains(err.Error(), w) {
						t.Errorf("error lacks %q", w)
					}
				}
				after, _ := os.ReadFile(dest)
				if string(after) != string(before) {
					t.Errorf("Dest changed on failure: %q -> %q", before, after)
				}
				names := dirNames(t, dir)
				if tc.setup == nil && len(names) != 0 {
					t.Errorf("left in %s: %v", dir, names)
				}
				return
			}
			if err != nil {
				t.Fatalf("Install: %v", err)
			}
			if path != dest {
				t.Errorf("Install = %s, want %s", path, dest)
			}
			b, err := os.ReadFile(dest)
			if err != nil || string(b) != string(rel.assets[tc.wantAsset]) {
				t.Errorf("installed %q (%v), want the %s asset", b, err, tc.wantAsset)
			}
			fi, _ := os.Stat(dest)
			if fi.Mode().Perm() != 0o755 {
				t.Errorf("mode %v, want 0755", fi.Mode().Perm())
			}
			if names := dirNames(t, dir); len(names) != 1 {
				t.Errorf("%s holds %v, want only k3s", dir, names)
			}
			for _, p := range rel.requests() {
				if !strings.HasPrefix(p, "/v1.33.4%2Bk3s1/") {
					t.Errorf("request %s: the version's '+' is not escaped as %%2B", p)
				}
			}
		})
	}
}

func sumOf(s string) string {
	h := sha256.Sum256([]byte(s))
	return hex.EncodeToString(h[:])
}

func TestInstallAlreadyInstalled(t *testing.T) {
	rel := newRelease("v1.33.4+k3s1")
	srv := httptest.NewServer(rel)
	defer srv.Close()
	dest := filepath.Join(t.TempDir(), "k3s")
	cfg := InstallConfig{Version: rel.version, BaseURL: srv.URL, Arch: "amd64", Dest: dest, Client: srv.Client()}
	for i := range 2 {
		if _, err := Install(context.Background(), cfg); err != nil {
			t.Fatalf("Install #%d: %v", i+1, err)
		}
	}
	var assets int
	for _, p := range rel.requests() {
		if strings.HasSuffix(p, "/k3s") {
			assets++
		}
	}
	if assets != 1 {
		t.Errorf("the binary was downloaded %d times, want once (the second install finds it verified): %v", assets, rel.requests())
	}
}

func TestInstallRefusesSymlink(t *testing.T) {
	rel := newRelease("v1.33.4+k3s1")
	srv := httptest.NewServer(rel)
	defer srv.Close()
	dir := t.TempDir()
	victim := filepath.Join(dir, "victim")
	if err := os.WriteFile(victim, []byte("precious"), 0o644); err != nil {
		t.Fatal(err)
	}
	dest := filepath.Join(dir, "k3s")
	if err := os.Symlink(victim, dest); err != nil {
		t.Fatal(err)
	}
	_, err := Install(context.Background(), InstallConfig{Version: rel.version, BaseURL: srv.URL, Arch: "amd64", Dest: dest, Client: srv.Client()})
	if err == nil || !strings.Contains(err.Error(), "is a symlink") || !strings.Contains(err.Error(), "refusing") {
		t.Fatalf("Install = %v, want a refusal naming the symlink", err)
	}
	t.Logf("error: %v", err)
	if b, _ := os.ReadFile(victim); string(b) != "precious" {
		t.Errorf("symlink target rewritten: %q", b)
	}
	if fi, err := os.Lstat(dest); err != nil || fi.Mode()&os.ModeSymlink == 0 {
		t.Errorf("the symlink was replaced or removed (%v, %v)", fi, err)
	}
	if len(rel.requests()) != 0 {
		t.Errorf("downloaded %v before refusing", rel.requests())
	}
}

func TestInstallUnreachable(t *testing.T) {
	// A server that existed and is gone: its port now refuses connections.
	srv := httptest.NewServer(http.NotFoundHandler())
	url := srv.URL
	srv.Close()
	dest := filepath.Join(t.TempDir(), "k3s")
	_, err := Install(context.Background(), InstallConfig{Version: "v1.33.4+k3s1", BaseURL: url, Arch: "amd64", Dest: dest})
	if err == nil {
		t.Fatal("Install succeeded against a closed server")
	}
	t.Logf("error: %v", err)
	for _, w := range []string{
		"cannot download k3s v1.33.4+k3s1 from " + url + "/v1.33.4%2Bk3s1/sha256sum-amd64.txt",
		"offline, pass --k3s PATH to an existing k3s binary",
		"download " + url + "/v1.33.4%2Bk3s1/k3s and " + url + "/v1.33.4%2Bk3s1/sha256sum-amd64.txt",
		"sha256sum -c --ignore-missing sha256sum-amd64.txt",
	} {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("error lacks %q", w)
		}
	}
	var de *DownloadError
	if !errors.As(err, &de) || de.BinaryURL != url+"/v1.33.4%2Bk3s1/k3s" || de.Version != "v1.33.4+k3s1" {
		t.Errorf("error is not a *DownloadError naming the binary: %#v", de)
	}
	if _, err := os.Lstat(dest); !os.IsNotExist(err) {
		t.Errorf("Dest exists after a failed download: %v", err)
	}
}

func TestInstallNoDNS(t *testing.T) {
	// .invalid never resolves (RFC 2606): the DNS failure gets the same
	// offline hint.
	dest := filepath.Join(t.TempDir(), "k3s")
	_, err := Install(context.Background(), InstallConfig{Version: "v1.33.4+k3s1", BaseURL: "http://k3s-releases.nodeboot-test.invalid", Arch: "amd64", Dest: dest})
	if err == nil {
		t.Fatal("Install succeeded with an unresolvable host")
	}
	t.Logf("error: %v", err)
	if !strings.Contains(err.Error(), "cannot download k3s v1.33.4+k3s1 from http://k3s-releases.nodeboot-test.invalid/") ||
		!strings.Contains(err.Error(), "offline, pass --k3s PATH to an existing k3s binary") {
		t.Errorf("error lacks the download failure or the offline hint")
	}
}

func TestInstallCutTransfer(t *testing.T) {
	// The server promises more bytes than it sends: a transfer cut
	// mid-way is a network failure too, and leaves nothing behind.
	rel := newRelease("v1.33.4+k3s1")
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasSuffix(r.URL.Path, "/k3s") {
			w.Header().Set("Content-Length", "1000000")
			w.Write([]byte("partial"))
			return
		}
		rel.ServeHTTP(w, r)
	}))
	defer srv.Close()
	dir := t.TempDir()
	_, err := Install(context.Background(), InstallConfig{Version: rel.version, BaseURL: srv.URL, Arch: "amd64", Dest: filepath.Join(dir, "k3s"), Client: srv.Client()})
	if err == nil || !strings.Contains(err.Error(), "offline, pass --k3s PATH") {
		t.Fatalf("Install = %v, want a download failure with the offline hint", err)
	}
	if names := dirNames(t, dir); len(names) != 0 {
		t.Errorf("left behind: %v", names)
	}
}

func TestInstallBadInput(t *testing.T) {
	for _, tc := range []struct {
		cfg  InstallConfig
		want string
	}{
		{InstallConfig{Version: "../../etc", Dest: "/tmp/x"}, "not a k3s release name"},
		{InstallConfig{Version: "1.33", Dest: "/tmp/x"}, "e.g. v1.33.0+k3s1"},
		{InstallConfig{Version: "v1.33.4+k3s1"}, "no destination"},
	} {
		_, err := Install(context.Background(), tc.cfg)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Install(%+v) = %v, want %q", tc.cfg, err, tc.want)
		}
	}
}

func TestCheckK3sVersion(t *testing.T) {
	for _, tc := range []struct {
		v    string
		want string // "" is valid; else a substring of the error
	}{
		{"v1.36.3+k3s1", ""},
		{"v1.33.4+k3s2", ""},
		{"v1.34.0-rc1+k3s1", ""},
		{DefaultK3sVersion, ""},
		{"1.33", "1.33 is a Kubernetes minor version; a k3s release of it is v1.33.PATCH+k3sN"},
		{"v1.33", "e.g. v1.33.0+k3s1"},
		{"1.33.4", "you may mean v1.33.4+k3s1"},
		{"v1.33.4", "you may mean v1.33.4+k3s1"},
		{"v1.33.4-k3s1", "you may mean v1.33.4+k3s1"},
		{"latest", `"latest" is not a k3s release name`},
		{"v1.36.3+k3s1/../x", "vMAJOR.MINOR.PATCH+k3sN"},
		{"", "e.g. " + DefaultK3sVersion},
	} {
		err := CheckK3sVersion(tc.v)
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("CheckK3sVersion(%q) = %v, want nil", tc.v, err)
		case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
			t.Errorf("CheckK3sVersion(%q) = %v, want an error with %q", tc.v, err, tc.want)
		}
	}
}

// TestInstallDefaultVersion: no Version is DefaultK3sVersion, fetched and
// verified like any other, with Progress told of every byte.
func TestInstallDefaultVersion(t *testing.T) {
	rel := newRelease(DefaultK3sVersion)
	srv := httptest.NewServer(rel)
	defer srv.Close()
	dest := filepath.Join(t.TempDir(), "k3s")
	var calls, last, total int64 = 0, -1, -2
	_, err := Install(context.Background(), InstallConfig{BaseURL: srv.URL, Arch: "amd64", Dest: dest, Client: srv.Client(),
		Progress: func(done, tot int64) { calls++; last, total = done, tot }})
	if err != nil {
		t.Fatal(err)
	}
	want := "/" + strings.ReplaceAll(DefaultK3sVersion, "+", "%2B") + "/k3s"
	if reqs := rel.requests(); len(reqs) != 2 || reqs[1] != want {
		t.Errorf("requests %v, want the checksum file, then %s", reqs, want)
	}
	size := int64(len(rel.assets["k3s"]))
	if calls < 2 || last != size || total != size {
		t.Errorf("Progress: %d calls, last (%d of %d); want at least 2 (0 and the end), ending at (%d of %d)", calls, last, total, size, size)
	}
	// Installed already: nothing to download, no progress.
	calls = 0
	if _, err := Install(context.Background(), InstallConfig{BaseURL: srv.URL, Arch: "amd64", Dest: dest, Client: srv.Client(),
		Progress: func(done, tot int64) { calls++ }}); err != nil || calls != 0 {
		t.Errorf("second Install: %v, %d progress calls; want nil and none", err, calls)
	}
}
