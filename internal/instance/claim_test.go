package instance

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestClaim: a claim is exclusive across open files (a second process's
// Claim is another open file description), names its holder, is free
// again once released, and releases what it took when a later key fails.
func TestClaim(t *testing.T) {
	run := filepath.Join(t.TempDir(), "run")
	ns, err := NetNSKey()
	if err != nil {
		t.Fatal(err)
	}
	c1, err := Claim(run, "/srv/a", NodeNameKey("n1"), ns)
	if err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(run); err != nil || fi.Mode().Perm() != 0o700 {
		t.Errorf("run dir: %v, %v; want 0700", fi, err)
	}
	_, err = Claim(run, "/srv/b", NodeNameKey("n2"), NodeNameKey("n1"))
	var ce *ClaimError
	if !errors.Is(err, ErrClaimed) || !errors.As(err, &ce) || ce.DataDir != "/srv/a" || ce.PID != os.Getpid() ||
		!strings.Contains(err.Error(), `node name "n1" is taken by the node of /srv/a (pid `) {
		t.Fatalf("second claim of n1 = %v, want a ClaimError naming /srv/a and our pid", err)
	}
	// n2, taken before n1 failed, was released.
	c2, err := Claim(run, "/srv/b", NodeNameKey("n2"))
	if err != nil {
		t.Errorf("n2 after a failed claim that took it: %v", err)
	}
	c2.Release()
	if _, err := Claim(run, "/srv/b", ns); !errors.Is(err, ErrClaimed) || !strings.Contains(err.Error(), "network namespace net:[") {
		t.Errorf("second claim of the network namespace = %v, want ErrClaimed", err)
	}
	c1.Release()
	c3, err := Claim(run, "/srv/b", NodeNameKey("n1"), ns)
	if err != nil {
		t.Errorf("claim after release: %v", err)
	}
	c3.Release()

	fs, err := K3sRunDirKey()
	if err != nil {
		t.Fatal(err)
	}
	c4, err := Claim(run, "/srv/a", fs)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Claim(run, "/srv/b", fs); !errors.Is(err, ErrClaimed) || !strings.Contains(err.Error(), "k3s's run directory /run/k3s") {
		t.Errorf("second claim of /run/k3s = %v, want ErrClaimed", err)
	}
	c4.Release()

	if k := NodeNameKey("../x"); strings.ContainsAny(k.Key, "/") || !strings.HasPrefix(k.Key, "node-x") {
		t.Errorf("key of a name with a slash: %q", k.Key)
	}
	loose := t.TempDir()
	if err := os.Chmod(loose, 0o777); err != nil {
		t.Fatal(err)
	}
	if _, err := Claim(loose, "/srv/a", NodeNameKey("n1")); err == nil || !strings.Contains(err.Error(), "writable by others") {
		t.Errorf("a world-writable run dir = %v, want a refusal", err)
	}
}
