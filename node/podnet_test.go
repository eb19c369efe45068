package node

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nodeboot/nodeboot/profile"
)

// podnetEnv makes the test binary start a node instead of running the
// tests: with the stand-in k3s it names, in the data dir below the
// directory it names, logging to stdout, then print the state's
// podNetwork and stop. The node runs in a process whose capabilities
// setpriv took.
const podnetEnv = "NODE_TEST_PODNET"

func TestMain(m *testing.M) {
	if v := os.Getenv(podnetEnv); v != "" {
		os.Exit(podnetHelper(v))
	}
	os.Exit(m.Run())
}

func podnetHelper(v string) int {
	k3s, dir, _ := strings.Cut(v, ",")
	p, err := profile.Load("k3s")
	if err != nil {
		fmt.Println(err)
		return 1
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	n, err := Start(ctx, Config{DataDir: filepath.Join(dir, "data"), K3s: k3s, Profile: p, NodeName: "podnet",
		Logger: slog.New(slog.NewTextHandler(os.Stdout, nil)), RunDir: filepath.Join(dir, "run")})
	if err != nil {
		fmt.Println(err)
		return 1
	}
	fmt.Printf("podNetwork=%s\n", n.Status().PodNetwork)
	if err := n.Stop(ctx); err != nil {
		fmt.Println(err)
		return 1
	}
	return 0
}

// TestIntegrationPodNetwork: a node's start probes veth pairs. Where they
// can be created (here, as root) state.json says veth and nothing is
// said; where they cannot (a root without CAP_NET_ADMIN, which setpriv
// takes from the bounding set, as in a sandbox that refuses veth links)
// it says host-only and one warning tells that pods need hostNetwork:
// true, and why.
func TestIntegrationPodNetwork(t *testing.T) {
	needRoot(t)
	k3s := standIn(t, `trap 'exit 0' TERM
while :; do sleep 0.2; done`)
	setpriv, err := exec.LookPath("setpriv")
	if err != nil {
		t.Fatalf("setpriv (util-linux): %v", err)
	}
	const warning = "veth pairs cannot be created: pods need hostNetwork: true here"
	for _, c := range []struct {
		name, drop, want string
		warnings         int
	}{
		{"all capabilities", "", "podNetwork=veth", 0},
		{"no CAP_NET_ADMIN", "net_admin", "podNetwork=host-only", 1},
	} {
		t.Run(c.name, func(t *testing.T) {
			args := []string{"--", os.Args[0], "-test.run=^$"}
			if c.drop != "" {
				args = append([]string{"--bounding-set", "-" + c.drop, "--inh-caps", "-" + c.drop}, args...)
			}
			cmd := exec.Command(setpriv, args...)
			cmd.Env = append(os.Environ(), podnetEnv+"="+k3s+","+t.TempDir())
			b, err := cmd.CombinedOutput()
			out := string(b)
			if err != nil {
				t.Fatalf("node: %v\n%s", err, out)
			}
			if !strings.Contains(out, c.want+"\n") {
				t.Errorf("want %s:\n%s", c.want, out)
			}
			var warns []string
			for _, l := range strings.Split(out, "\n") {
				if strings.Contains(l, warning) {
					warns = append(warns, l)
				}
			}
			if len(warns) != c.warnings {
				t.Errorf("%d warnings %q, want %d:\n%s", len(warns), warning, c.warnings, out)
			}
			for _, w := range warns {
				if !strings.Contains(w, "level=WARN") || !strings.Contains(w, "probe=\"create a veth pair in a new network namespace: RTM_NEWLINK veth: operation not permitted\"") {
					t.Errorf("warning %q: want level WARN and the probe's error", w)
				}
				t.Logf("%s", w)
			}
		})
	}
}
