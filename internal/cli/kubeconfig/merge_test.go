package kubeconfig_test

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"k8s.io/client-go/tools/clientcmd"

	"github.com/nodeboot/nodeboot/internal/instance"
	"github.com/nodeboot/nodeboot/node"
)

// k3sKubeconfig is what k3s writes: one cluster, user and context, all
// called default.
const k3sKubeconfig = `apiVersion: v1
kind: Config
clusters:
- cluster:
    certificate-authority-data: Y2E=
    server: https://127.0.0.1:6443
  name: default
contexts:
- context:
    cluster: default
    user: default
  name: default
current-context: default
users:
- name: default
  user:
    client-certificate-data: Y2VydA==
    client-key-data: a2V5
`

// theirs is a user's kubeconfig with entries of its own.
const theirs = `apiVersion: v1
kind: Config
clusters:
- cluster:
    server: https://prod.example:6443
  name: prod
contexts:
- context:
    cluster: prod
    user: alice
    namespace: shop
  name: prod
current-context: prod
users:
- name: alice
  user:
    token: s3cret
`

// nodeDir makes a data dir as up leaves it: k3s's kubeconfig and
// state.json naming the node.
func nodeDir(t *testing.T, nodeName string) string {
	t.Helper()
	dir := t.TempDir()
	in, err := instance.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	if err := in.WriteState(&node.State{Phase: node.PhaseReady, DataDir: in.Dir, NodeName: nodeName}); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(in.Kubeconfig(), []byte(k3sKubeconfig), 0o600); err != nil {
		t.Fatal(err)
	}
	return dir
}

func TestMerge(t *testing.T) {
	dir := nodeDir(t, "CI-Node")
	target := filepath.Join(t.TempDir(), "config")
	if err := os.WriteFile(target, []byte(theirs), 0o640); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(target, 0o640); err != nil {
		t.Fatal(err)
	}
	owner := os.Getuid()
	if owner == 0 {
		owner = 4321 // root: the file is a user's, and stays theirs
		if err := os.Chown(target, owner, owner); err != nil {
			t.Fatal(err)
		}
	}
	before, _ := os.Stat(target)
	t.Setenv("KUBECONFIG", target+string(os.PathListSeparator)+filepath.Join(t.TempDir(), "second"))

	code, stdout, stderr := run("kubeconfig", "--data-dir", dir, "--merge")
	t.Logf("stderr: %s", stderr)
	if code != 0 || stdout != "nodeboot-ci-node\n" {
		t.Fatalf("merge: exit %d, stdout %q, stderr %q", code, stdout, stderr)
	}
	if !strings.Contains(stderr, ` ✓ Added context "nodeboot-ci-node" in `+target+`; it is the current context now (it was "prod": kubectl config use-context prod)`) {
		t.Errorf("stderr does not say what was done: %q", stderr)
	}
	cfg, err := clientcmd.LoadFromFile(target)
	if err != nil {
		t.Fatal(err)
	}
	// Theirs, untouched.
	if c := cfg.Clusters["prod"]; c == nil || c.Server != "https://prod.example:6443" {
		t.Errorf("cluster prod: %+v", c)
	}
	if u := cfg.AuthInfos["alice"]; u == nil || u.Token != "s3cret" {
		t.Errorf("user alice: %+v", u)
	}
	if x := cfg.Contexts["prod"]; x == nil || x.Namespace != "shop" || x.AuthInfo != "alice" {
		t.Errorf("context prod: %+v", x)
	}
	// Ours, complete and current.
	if cfg.CurrentContext != "nodeboot-ci-node" {
		t.Errorf("current context %q", cfg.CurrentContext)
	}
	rc, err := clientcmd.NewNonInteractiveClientConfig(*cfg, "", &clientcmd.ConfigOverrides{}, nil).ClientConfig()
	if err != nil {
		t.Fatalf("the merged current context is not usable: %v", err)
	}
	if rc.Host != "https://127.0.0.1:6443" || string(rc.CAData) != "ca" || string(rc.CertData) != "cert" || string(rc.KeyData) != "key" {
		t.Errorf("merged context gives host %s, CA %q, cert %q, key %q", rc.Host, rc.CAData, rc.CertData, rc.KeyData)
	}
	// The file keeps its mode and owner, and was replaced, not rewritten.
	after, _ := os.Stat(target)
	st, bst := after.Sys().(*syscall.Stat_t), before.Sys().(*syscall.Stat_t)
	if after.Mode().Perm() != 0o640 || int(st.Uid) != owner {
		t.Errorf("mode %v, owner %d; want 0640 and %d kept", after.Mode().Perm(), st.Uid, owner)
	}
	if st.Ino == bst.Ino {
		t.Errorf("the kubeconfig was written in place, not replaced atomically")
	}
	if ents, _ := os.ReadDir(filepath.Dir(target)); len(ents) != 1 {
		t.Errorf("left beside the kubeconfig: %v", ents)
	}

	// Again (a new cluster on the same node): ours is replaced.
	code, stdout, stderr = run("kubeconfig", "--data-dir", dir, "--merge")
	if code != 0 || stdout != "nodeboot-ci-node\n" || !strings.Contains(stderr, "Updated context") {
		t.Errorf("second merge: exit %d, stdout %q, stderr %q", code, stdout, stderr)
	}

	// A name that is theirs: refused, nothing changed, unless --force.
	was, _ := os.ReadFile(target)
	code, stdout, stderr = run("kubeconfig", "--data-dir", dir, "--merge", "--context", "prod")
	if code != 1 || stdout != "" || !strings.Contains(stderr, target+` already has a cluster named "prod" that nodeboot did not write; keep it and pick another name with --context NAME, or replace it with --force`) {
		t.Errorf("foreign name: exit %d, stdout %q, stderr %q", code, stdout, stderr)
	}
	if now, _ := os.ReadFile(target); !bytes.Equal(now, was) {
		t.Errorf("a refused merge changed the file")
	}
	if code, _, stderr = run("kubeconfig", "--data-dir", dir, "--merge", "--context", "prod", "--force"); code != 0 {
		t.Errorf("--force: exit %d, %s", code, stderr)
	}
	if cfg, _ := clientcmd.LoadFromFile(target); cfg.Clusters["prod"].Server != "https://127.0.0.1:6443" || cfg.AuthInfos["alice"] == nil {
		t.Errorf("--force: prod not replaced, or alice lost")
	}
}

// TestMergeNewFile: no kubeconfig yet: ~/.kube/config is made, 0600.
func TestMergeNewFile(t *testing.T) {
	dir := nodeDir(t, "n1")
	home := t.TempDir()
	t.Setenv("HOME", home)
	t.Setenv("KUBECONFIG", "")
	code, stdout, stderr := run("kubeconfig", "--data-dir", dir, "--merge")
	if code != 0 || stdout != "nodeboot-n1\n" {
		t.Fatalf("exit %d, stdout %q, stderr %q", code, stdout, stderr)
	}
	target := filepath.Join(home, ".kube", "config")
	fi, err := os.Stat(target)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("%s: %v, mode %v; want 0600", target, err, fi)
	}
	if cfg, err := clientcmd.LoadFromFile(target); err != nil || cfg.CurrentContext != "nodeboot-n1" || len(cfg.Contexts) != 1 {
		t.Errorf("new kubeconfig: %v, %+v", err, cfg)
	}
}

// TestMergeRefuses: a symlinked kubeconfig, or one kubectl is writing
// (its lock file), is left alone.
func TestMergeRefuses(t *testing.T) {
	dir := nodeDir(t, "n1")
	tmp := t.TempDir()
	real, link := filepath.Join(tmp, "real"), filepath.Join(tmp, "link")
	if err := os.WriteFile(real, []byte(theirs), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(real, link); err != nil {
		t.Fatal(err)
	}
	t.Setenv("KUBECONFIG", link)
	if code, _, stderr := run("kubeconfig", "--data-dir", dir, "--merge"); code != 1 || !strings.Contains(stderr, "is a symlink (to "+real+"); nodeboot does not write through links: merge into the file itself with KUBECONFIG="+real) {
		t.Errorf("symlink: exit %d, %q", code, stderr)
	}
	t.Setenv("KUBECONFIG", real)
	if err := os.WriteFile(real+".lock", nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if code, _, stderr := run("kubeconfig", "--data-dir", dir, "--merge"); code != 1 || !strings.Contains(stderr, real+".lock exists: kubectl (or another nodeboot) is writing "+real) {
		t.Errorf("locked: exit %d, %q", code, stderr)
	}
	if b, _ := os.ReadFile(real); string(b) != theirs {
		t.Errorf("a refused merge changed the file")
	}
	if code, _, stderr := run("kubeconfig", "--data-dir", dir, "--merge", "--path"); code != 2 || !strings.Contains(stderr, "--merge and --path") {
		t.Errorf("--merge --path: exit %d, %q", code, stderr)
	}
}
