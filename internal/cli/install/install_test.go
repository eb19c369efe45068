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
	"strings"
	"testing"

	"github.com/nodeboot/nodeboot/internal/cli"
)

func run(args ...string) (int, string, string) {
	var out, errOut bytes.Buffer
	code := cli.Run(append([]string{"nodeboot"}, args...), strings.NewReader(""), &out, &errOut)
	return code, out.String(), errOut.String()
}

// TestInstall serves a fake release (a script named like k3s and its
// checksum file) from a local HTTP server.
func TestInstall(t *testing.T) {
	asset := map[string]string{"amd64": "k3s", "arm64": "k3s-arm64"}[runtime.GOARCH]
	if asset == "" {
		t.Skipf("no k3s asset name for %s", runtime.GOARCH)
	}
	binary := []byte("#!/bin/sh\necho fake k3s\n")
	sum := sha256.Sum256(binary)
	good := hex.EncodeToString(sum[:]) + "  " + asset + "\n"
	bad := strings.Repeat("0", 64) + "  " + asset + "\n"
	mux := http.NewServeMux()
	mux.HandleFunc("/v1.0.0+k3s1/"+asset, func(w http.ResponseWriter, r *http.Request) { w.Write(binary) })
	mux.HandleFunc("/v1.0.0+k3s1/sha256sum-"+runtime.GOARCH+".txt", func(w http.ResponseWriter, r *http.Request) { w.Write([]byte(good)) })
	mux.HandleFunc("/v6.6.6+k3s1/"+asset, func(w http.ResponseWriter, r *http.Request) { w.Write(binary) })
	mux.HandleFunc("/v6.6.6+k3s1/sha256sum-"+runtime.GOARCH+".txt", func(w http.ResponseWriter, r *http.Request) { w.Write([]byte(bad)) })
	srv := httptest.NewServer(mux)
	defer srv.Close()

	dir := filepath.Join(t.TempDir(), "data")
	dest := filepath.Join(dir, "bin", "k3s")
	code, stdout, stderr := run("install", "--data-dir", dir, "--version", "v1.0.0+k3s1", "--base-url", srv.URL)
	if code != 0 || stdout != dest+"\n" {
		t.Fatalf("install: exit %d, stdout %q, stderr %q", code, stdout, stderr)
	}
	if b, err := os.ReadFile(dest); err != nil || !bytes.Equal(b, binary) {
		t.Errorf("installed %q, %v", b, err)
	}
	if fi, _ := os.Stat(dest); fi.Mode().Perm() != 0o755 {
		t.Errorf("mode %v, want 0755", fi.Mode().Perm())
	}

	code, _, stderr = run("install", "--data-dir", filepath.Join(t.TempDir(), "d2"), "--version", "v6.6.6+k3s1", "--base-url", srv.URL)
	if code != 1 || !strings.Contains(stderr, "nodeboot: install: ") {
		t.Errorf("checksum mismatch: exit %d, stderr %q", code, stderr)
	}

	code, _, stderr = run("install", "--data-dir", dir)
	if code != 2 || !strings.Contains(stderr, "--version is missing") {
		t.Errorf("no version: exit %d, stderr %q", code, stderr)
	}
}
