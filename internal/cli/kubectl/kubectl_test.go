package kubectl_test

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

// script writes an executable shell script: a stand-in for k3s or
// kubectl that prints its arguments and the environment kubectl needs,
// then exits 7. It is not kubectl; what is tested is how nodeboot runs one.
func script(t *testing.T, dir, name string) string {
	t.Helper()
	path := filepath.Join(dir, name)
	body := "#!/bin/sh\necho \"" + name + " $*\"\necho \"KUBECONFIG=$KUBECONFIG K3S_DATA_DIR=$K3S_DATA_DIR\"\nexit 7\n"
	if err := os.WriteFile(path, []byte(body), 0o755); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestKubectl(t *testing.T) {
	dir := t.TempDir()
	in, err := instance.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	bin := t.TempDir()
	t.Setenv("PATH", bin)
	t.Setenv("K3S_DATA_DIR", "")

	// No kubeconfig: the node is not up.
	code, _, stderr := run("kubectl", "--data-dir", dir, "get", "nodes")
	if code != 1 || !strings.Contains(stderr, "no kubeconfig for the node of "+dir) || !strings.Contains(stderr, "nodeboot up --wait --data-dir "+dir) {
		t.Errorf("no kubeconfig: exit %d, %q", code, stderr)
	}
	if err := os.WriteFile(in.Kubeconfig(), []byte("apiVersion: v1\nkind: Config\n"), 0o600); err != nil {
		t.Fatal(err)
	}

	// The node's k3s: "k3s kubectl", in the node's k3s data dir.
	k3s := script(t, t.TempDir(), "k3s")
	if err := in.WriteState(&node.State{Phase: node.PhaseReady, DataDir: in.Dir, K3s: k3s}); err != nil {
		t.Fatal(err)
	}
	code, stdout, stderr := run("kubectl", "--data-dir", dir, "get", "pods", "-n", "kube-system")
	want := "k3s kubectl get pods -n kube-system\nKUBECONFIG=" + in.Kubeconfig() + " K3S_DATA_DIR=" + in.K3sDataDir() + "\n"
	if code != 7 || stdout != want {
		t.Errorf("k3s kubectl: exit %d, stdout %q, stderr %q; want 7 and %q", code, stdout, stderr, want)
	}
	// kubectl flags first, after --.
	if code, stdout, _ = run("kubectl", "--data-dir", dir, "--", "-n", "x", "get", "pods"); code != 7 || !strings.HasPrefix(stdout, "k3s kubectl -n x get pods\n") {
		t.Errorf("-- -n x: exit %d, stdout %q", code, stdout)
	}

	// No k3s known: kubectl on $PATH.
	if err := in.WriteState(&node.State{Phase: node.PhaseReady, DataDir: in.Dir}); err != nil {
		t.Fatal(err)
	}
	code, _, stderr = run("kubectl", "--data-dir", dir, "get", "nodes")
	if code != 1 || !strings.Contains(stderr, "no kubectl to run") {
		t.Errorf("no kubectl anywhere: exit %d, %q", code, stderr)
	}
	script(t, bin, "kubectl")
	code, stdout, _ = run("kubectl", "--data-dir", dir, "get", "nodes")
	if want := "kubectl get nodes\nKUBECONFIG=" + in.Kubeconfig() + " K3S_DATA_DIR=\n"; code != 7 || stdout != want {
		t.Errorf("kubectl on $PATH: exit %d, stdout %q; want 7 and %q", code, stdout, want)
	}

	if code, _, stderr = run("kubectl", "--data-dir", dir); code != 2 || !strings.Contains(stderr, "no kubectl arguments") {
		t.Errorf("no arguments: exit %d, %q", code, stderr)
	}
}
