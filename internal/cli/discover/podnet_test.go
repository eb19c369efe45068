//go:build !nointegration

package discover_test

import (
	"os"
	"os/exec"
	"strings"
	"testing"

	nbcli "github.com/nodeboot/nodeboot/internal/cli"
	"github.com/nodeboot/nodeboot/internal/testenv"
)

// argsEnv makes the test binary run "nodeboot" with the arguments it
// holds (separated by spaces) instead of the tests: discover in a process
// whose capabilities setpriv took.
const argsEnv = "DISCOVER_TEST_ARGS"

func TestMain(m *testing.M) {
	if a := os.Getenv(argsEnv); a != "" {
		os.Exit(nbcli.Run(append([]string{"nodeboot"}, strings.Fields(a)...), os.Stdin, os.Stdout, os.Stderr))
	}
	os.Exit(m.Run())
}

// TestIntegrationDiscoverPodNetwork: the summary's POD NETWORK line says
// pods may have networks of their own where a veth pair can be created
// (here, as root), and says hostNetwork only, why and what to do, where
// it cannot: discover run by a root without CAP_NET_ADMIN (setpriv takes
// it from the bounding set), as in a sandbox that refuses veth links.
func TestIntegrationDiscoverPodNetwork(t *testing.T) {
	testenv.Integration(t)
	testenv.RequireRoot(t, "traces, and makes a network namespace")
	code, _, stderr := run(t, "discover", "--", "true")
	if want := "POD NETWORK  pod networks (a veth pair was created in a new network namespace)"; code != 0 || !strings.Contains(stderr, want) {
		t.Errorf("as root: exit %d, summary lacks %q:\n%s", code, want, stderr)
	}
	setpriv := testenv.LookPath(t, "setpriv")
	cmd := exec.Command(setpriv, "--bounding-set", "-net_admin", "--inh-caps", "-net_admin", "--", os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), argsEnv+"=discover -- true")
	out, err := cmd.CombinedOutput()
	want := "POD NETWORK  hostNetwork only (create a veth pair in a new network namespace: RTM_NEWLINK veth: operation not permitted): pods need hostNetwork: true here"
	if err != nil || !strings.Contains(string(out), want) {
		t.Errorf("without CAP_NET_ADMIN: %v, summary lacks %q:\n%s", err, want, out)
	} else {
		t.Logf("without CAP_NET_ADMIN: %s", lineWith(string(out), "POD NETWORK"))
	}
}

func lineWith(s, sub string) string {
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			return l
		}
	}
	return ""
}
