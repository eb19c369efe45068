package kubeconfig_test

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/nodeboot/nodeboot/internal/cli"
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
