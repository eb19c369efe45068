package kubeconfig_test

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

func TestKubeconfig(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "kubeconfig.yaml")

	code, stdout, stderr := run("kubeconfig", "--data-dir", dir)
	if code != 1 || stdout != "" || !strings.Contains(stderr, path+" does not exist: nodeboot is not running for "+dir) {
		t.Errorf("missing: exit %d, stdout %q, stderr %q", code, stdout, stderr)
	}

	content := "apiVersion: v1\nkind: Config\n"
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, 0o644); err != nil {
		t.Fatal(err)
	}
	code, stdout, stderr = run("kubeconfig", "--data-dir", dir)
	if code != 0 || stdout != content {
		t.Errorf("print: exit %d, stdout %q, stderr %q", code, stdout, stderr)
	}
	if !strings.Contains(stderr, "set it to 0600") {
		t.Errorf("no warning about the loose mode: %q", stderr)
	}
	if fi, _ := os.Stat(path); fi.Mode().Perm() != 0o600 {
		t.Errorf("mode %v after kubeconfig, want 0600", fi.Mode().Perm())
	}
	code, stdout, stderr = run("kubeconfig", "--data-dir", dir, "--path")
	if code != 0 || stdout != path+"\n" || stderr != "" {
		t.Errorf("--path: exit %d, stdout %q, stderr %q", code, stdout, stderr)
	}

	// A symlink is not followed.
	other := t.TempDir()
	if err := os.Symlink(path, filepath.Join(other, "kubeconfig.yaml")); err != nil {
		t.Fatal(err)
	}
	if code, _, stderr = run("kubeconfig", "--data-dir", other); code != 1 {
		t.Errorf("symlink: exit %d, stderr %q", code, stderr)
	}
}

// TestKubeconfigElsewhere: a run whose K3S-ARGS had k3s write the
// kubeconfig elsewhere says so in state.json; kubeconfig follows it and
// leaves its mode alone.
func TestKubeconfigElsewhere(t *testing.T) {
	dir, elsewhere := t.TempDir(), filepath.Join(t.TempDir(), "admin.yaml")
	in, err := instance.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	if err := in.WriteState(&node.State{Phase: node.PhaseReady, DataDir: dir, Kubeconfig: elsewhere}); err != nil {
		t.Fatal(err)
	}
	content := "apiVersion: v1\nkind: Config\n"
	if err := os.WriteFile(elsewhere, []byte(content), 0o640); err != nil {
		t.Fatal(err)
	}
	code, stdout, stderr := run("kubeconfig", "--data-dir", dir, "--path")
	if code != 0 || stdout != elsewhere+"\n" {
		t.Errorf("--path: exit %d, stdout %q, stderr %q; want %s", code, stdout, stderr, elsewhere)
	}
	code, stdout, _ = run("kubeconfig", "--data-dir", dir)
	if code != 0 || stdout != content {
		t.Errorf("print: exit %d, stdout %q", code, stdout)
	}
	if fi, _ := os.Stat(elsewhere); fi.Mode().Perm() != 0o640 {
		t.Errorf("mode %v, want the user's 0640 kept", fi.Mode().Perm())
	}
}
