package token_test

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/nodeboot/nodeboot/internal/cli"
	"github.com/nodeboot/nodeboot/internal/instance"
	"github.com/nodeboot/nodeboot/node"
)

func run(args ...string) (int, string, string) {
	var out, errOut bytes.Buffer
	code := cli.Run(append([]string{"nodeboot"}, args...), strings.NewReader(""), &out, &errOut)
	return code, out.String(), errOut.String()
}

func writeState(t *testing.T, dir string, st node.State) {
	t.Helper()
	in, err := instance.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	st.DataDir = dir
	if err := in.WriteState(&st); err != nil {
		t.Fatal(err)
	}
}

func TestToken(t *testing.T) {
	const tok = "K10c0ffee::server:s3cr3t"
	dir := t.TempDir()

	// Nothing ever ran there.
	code, stdout, stderr := run("token", "--data-dir", dir)
	if code != 1 || stdout != "" || !strings.Contains(stderr, "no node has run on "+dir) {
		t.Errorf("no state: exit %d, stdout %q, stderr %q", code, stdout, stderr)
	}

	// A server that has not written it (and is not running).
	writeState(t, dir, node.State{Phase: node.PhaseStopped, Role: node.RoleServer, K3sDataDir: filepath.Join(dir, "k3s")})
	path := filepath.Join(dir, "k3s", "server", "node-token")
	code, _, stderr = run("token", "--data-dir", dir)
	if code != 1 || !strings.Contains(stderr, path+" does not exist: nodeboot is not running for "+dir) {
		t.Errorf("no token yet: exit %d, stderr %q", code, stderr)
	}

	// Written: printed on one line; --path prints where.
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(tok+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	code, stdout, stderr = run("token", "--data-dir", dir)
	if code != 0 || stdout != tok+"\n" || stderr != "" {
		t.Errorf("token: exit %d, stdout %q, stderr %q; want %q", code, stdout, stderr, tok)
	}
	code, stdout, _ = run("token", "--data-dir", dir, "--path")
	if code != 0 || stdout != path+"\n" {
		t.Errorf("--path: exit %d, stdout %q; want %s", code, stdout, path)
	}

	// k3s's data dir elsewhere (K3S-ARGS --data-dir): state.json says where.
	elsewhere := t.TempDir()
	if err := os.MkdirAll(filepath.Join(elsewhere, "server"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(elsewhere, "server", "token"), []byte("K10other::server:x\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	// As k3s does, node-token may be a link to token.
	if err := os.Symlink("token", filepath.Join(elsewhere, "server", "node-token")); err != nil {
		t.Fatal(err)
	}
	writeState(t, dir, node.State{Phase: node.PhaseReady, Role: node.RoleServer, K3sDataDir: elsewhere})
	if code, stdout, stderr = run("token", "--data-dir", dir); code != 0 || stdout != "K10other::server:x\n" {
		t.Errorf("k3s data dir elsewhere: exit %d, stdout %q, stderr %q", code, stdout, stderr)
	}

	// An agent has none.
	writeState(t, dir, node.State{Phase: node.PhaseReady, Role: node.RoleAgent, K3sDataDir: filepath.Join(dir, "k3s")})
	code, stdout, stderr = run("token", "--data-dir", dir)
	if code != 1 || stdout != "" || !strings.Contains(stderr, "runs a k3s agent") {
		t.Errorf("agent: exit %d, stdout %q, stderr %q", code, stdout, stderr)
	}

	// Not a token: a directory, two lines.
	writeState(t, dir, node.State{Phase: node.PhaseReady, Role: node.RoleServer})
	if err := os.WriteFile(path, []byte("a\nb\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if code, _, stderr = run("token", "--data-dir", dir); code != 1 || !strings.Contains(stderr, "more than one line") {
		t.Errorf("two lines: exit %d, stderr %q", code, stderr)
	}
	if code, _, stderr = run("token", "--data-dir", dir, "extra"); code != 2 {
		t.Errorf("an argument: exit %d, stderr %q; want 2", code, stderr)
	}
}
