package podnet

import (
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/nodeboot/nodeboot/internal/testenv"
)

// probeEnv makes the test binary run Probe and print its result instead
// of the tests: the probe in a process whose capabilities setpriv took.
const probeEnv = "PODNET_TEST_PROBE"

func TestMain(m *testing.M) {
	if os.Getenv(probeEnv) == "1" {
		err := Probe()
		var pe *Error
		switch {
		case err == nil:
			fmt.Println("ok")
		case errors.As(err, &pe):
			fmt.Printf("step=%s eperm=%v err=%v\n", pe.Step, errors.Is(err, unix.EPERM), err)
		default:
			fmt.Printf("untyped err=%v\n", err)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// TestIntegrationProbe runs the probe in this process (root: it works), then in
// children that lack one capability each, as a sandbox's root may:
// without CAP_NET_ADMIN the new namespace is made but the veth pair is
// refused, without CAP_SYS_ADMIN the namespace is not made. The children
// are this test binary under setpriv with a smaller bounding set (root's
// capabilities after exec are its bounding set).
func TestIntegrationProbe(t *testing.T) {
	testenv.Integration(t)
	testenv.RequireRoot(t, "makes a network namespace and a veth pair")
	if err := Probe(); err != nil {
		t.Fatalf("probe as root: %v", err)
	}
	// The pair was in the probe's namespace, gone with it; this
	// thread's namespace has none of it.
	for _, n := range []string{probeLink, probePeer} {
		if _, err := net.InterfaceByName(n); err == nil {
			t.Errorf("link %s is in the test's network namespace after the probe", n)
		}
	}
	// Threads come back to their namespace: many probes at once, each
	// creating the same names, all work.
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	for range 16 {
		wg.Go(func() { errs <- Probe() })
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Errorf("concurrent probe: %v", err)
		}
	}
	if d := Decide(); !d.Veth || !strings.HasPrefix(d.String(), "pod networks") {
		t.Errorf("Decide as root: %+v %q", d, d.String())
	}

	setpriv := testenv.LookPath(t, "setpriv")
	for _, c := range []struct {
		name string
		drop string // a capability to take from the bounding set, "" none
		want string
	}{
		{"all capabilities", "", "ok"},
		{"no CAP_NET_ADMIN", "net_admin", "step=create a veth pair in a new network namespace eperm=true"},
		{"no CAP_SYS_ADMIN", "sys_admin", "step=make a network namespace eperm=true"},
	} {
		t.Run(c.name, func(t *testing.T) {
			args := []string{os.Args[0], "-test.run=^$"}
			if c.drop != "" {
				args = append([]string{"--bounding-set", "-" + c.drop, "--inh-caps", "-" + c.drop, "--"}, args...)
			} else {
				args = append([]string{"--"}, args...)
			}
			cmd := exec.Command(setpriv, args...)
			cmd.Env = append(os.Environ(), probeEnv+"=1")
			out, err := cmd.CombinedOutput()
			if err != nil {
				t.Fatalf("setpriv %v: %v\n%s", args, err, out)
			}
			if got := strings.TrimSpace(string(out)); !strings.HasPrefix(got, c.want) {
				t.Errorf("probe: %q, want %q...", got, c.want)
			} else {
				t.Logf("probe %s: %s", c.name, got)
			}
		})
	}
}

// TestDecisionString: the line a failed probe gives says what to do.
func TestDecisionString(t *testing.T) {
	d := Decision{Err: &Error{Step: "create a veth pair in a new network namespace", Err: unix.EPERM}}
	want := "hostNetwork only (create a veth pair in a new network namespace: operation not permitted): pods need hostNetwork: true here"
	if got := d.String(); !strings.HasPrefix(got, want) {
		t.Errorf("%q, want it to start with %q", got, want)
	}
}
