package progress

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/nodeboot/nodeboot/node"
)

var t0 = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

// events is a bring-up with one restart, seconds after t0.
func events() []node.Event {
	at := func(s float64) time.Time { return t0.Add(time.Duration(s * float64(time.Second))) }
	return []node.Event{
		{Time: at(0), Kind: node.KindPhase, Phase: node.PhaseSeeding},
		{Time: at(0.4), Kind: node.KindPhase, Phase: node.PhaseStarting, Message: "68 created"},
		{Time: at(0.5), Kind: "started", PID: 1234},
		{Time: at(3), Kind: "exited", PID: 1234, Reason: "exit status 1"},
		{Time: at(3), Kind: "restarting", Restarts: 1, Reason: "exit status 1", Delay: "1.1s"},
		{Time: at(4.1), Kind: "started", PID: 1300, Restarts: 1},
		{Time: at(4.2), Kind: node.KindHealth, Health: &node.Health{State: "APIUnreachable", Message: "waiting for k3s to write its kubeconfig"}},
		{Time: at(12.1), Kind: node.KindPhase, Phase: node.PhaseAPIReachable},
		{Time: at(15.2), Kind: node.KindPhase, Phase: node.PhaseRegistered},
		{Time: at(30), Kind: node.KindHealth, Health: &node.Health{State: "NotReady", Reason: "KubeletNotReady", Message: "container runtime\nnetwork not ready"}},
		{Time: at(31.25), Kind: node.KindPhase, Phase: node.PhaseNodeReady},
		{Time: at(32), Kind: node.KindManifests, Message: "applied Deployment default/smoke"},
		{Time: at(40), Kind: node.KindPhase, Phase: node.PhaseManifestsApplied, Message: "3 objects"},
	}
}

func TestPlain(t *testing.T) {
	var out bytes.Buffer
	p := New(&out, Plain, t0)
	for _, e := range events() {
		p.Event(e)
	}
	p.Close()
	want := ` ✓ Seeded the fake tree (68 created) (400ms)
 ✓ Started k3s (pid 1234) (100ms)
 ! k3s exited: exit status 1
 ! Restarting k3s in 1.1s (restart 1): exit status 1
 ✓ Started k3s (pid 1300) (1.1s)
 ✓ API reachable (8s)
 ✓ Node registered (3.1s)
 ✓ Node Ready (16.1s)
 ✓ Manifests applied (3 objects) (8.8s)
`
	if out.String() != want {
		t.Errorf("output:\n%s\nwant:\n%s", out.String(), want)
	}
}

func TestJSON(t *testing.T) {
	var out bytes.Buffer
	p := New(&out, JSON, t0)
	for _, e := range events() {
		p.Event(e)
	}
	p.Close()
	sc := bufio.NewScanner(&out)
	var got []node.Event
	for sc.Scan() {
		var e node.Event
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
			t.Fatalf("line %q: %v", sc.Text(), err)
		}
		got = append(got, e)
	}
	want := events()
	if len(got) != len(want) {
		t.Fatalf("%d lines, want %d", len(got), len(want))
	}
	for i := range want {
		if !got[i].Time.Equal(want[i].Time) || got[i].Kind != want[i].Kind || got[i].Phase != want[i].Phase || got[i].PID != want[i].PID {
			t.Errorf("line %d: %+v, want %+v", i, got[i], want[i])
		}
	}
}

// syncBuffer is a bytes.Buffer the ticker goroutine and the test share.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func TestTTY(t *testing.T) {
	var out syncBuffer
	p := New(&out, TTY, t0)
	p.now = func() time.Time { return t0.Add(17 * time.Second) }
	evs := events()
	for _, e := range evs[:10] { // up to the NotReady report
		p.Event(e)
	}
	// The ticker redraws the live line with the health detail.
	deadline := time.Now().Add(5 * time.Second)
	for !strings.Contains(out.String(), "Waiting for the node to be Ready (1s): NotReady KubeletNotReady (container runtime network not ready)") {
		if time.Now().After(deadline) {
			t.Fatalf("no live line with the health detail:\n%q", out.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	fmt.Fprintf(p, "level=INFO msg=hello\n")
	for _, e := range evs[10:] {
		p.Event(e)
	}
	p.Close()
	s := out.String()
	// A log line cuts in: the live line is cleared before it.
	if !strings.Contains(s, clearLine+"level=INFO msg=hello\n") {
		t.Errorf("log line not written on a cleared line:\n%q", s)
	}
	for _, want := range []string{
		clearLine + " ✓ API reachable (8s)\n",
		clearLine + " ✓ Node Ready (16.1s)\n",
		" ✓ Manifests applied (3 objects) (8.8s)\n",
	} {
		if !strings.Contains(s, want) {
			t.Errorf("output lacks %q:\n%q", want, s)
		}
	}
	if !strings.HasSuffix(s, "\n") {
		t.Errorf("the live line is left on the screen after Close:\n%q", s)
	}
}

func TestModeFor(t *testing.T) {
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	defer w.Close()
	if m := ModeFor("text", w); m != Plain {
		t.Errorf("pipe: mode %d, want Plain", m)
	}
	if m := ModeFor("json", os.Stderr); m != JSON {
		t.Errorf("json: mode %d, want JSON", m)
	}
	if m := ModeFor("text", &bytes.Buffer{}); m != Plain {
		t.Errorf("buffer: mode %d, want Plain", m)
	}
	// A real terminal: the slave side of a pseudo-terminal.
	ptmx, err := os.OpenFile("/dev/ptmx", os.O_RDWR, 0)
	if err != nil {
		t.Skipf("no /dev/ptmx to test a terminal: %v", err)
	}
	defer ptmx.Close()
	if err := unix.IoctlSetPointerInt(int(ptmx.Fd()), unix.TIOCSPTLCK, 0); err != nil {
		t.Fatal(err)
	}
	n, err := unix.IoctlGetInt(int(ptmx.Fd()), unix.TIOCGPTN)
	if err != nil {
		t.Fatal(err)
	}
	tty, err := os.OpenFile(fmt.Sprintf("/dev/pts/%d", n), os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer tty.Close()
	if m := ModeFor("text", tty); m != TTY {
		t.Errorf("pty: mode %d, want TTY", m)
	}
}

// TestExitLog: an exit shows what k3s's log says and where it is; giving
// up right after does not repeat the same lines.
func TestExitLog(t *testing.T) {
	var out bytes.Buffer
	p := New(&out, Plain, t0)
	p.K3sLog = "/d/logs/k3s.log"
	fatal := []string{`level=fatal msg="no cgroups"`, `level=error msg="x"`}
	for _, e := range []node.Event{
		{Time: t0, Kind: "exited", Reason: "command exited with status 1", Log: fatal},
		{Time: t0, Kind: "restarting", Restarts: 1, Reason: "command exited with status 1", Delay: "1s"},
		{Time: t0, Kind: "exited", Reason: "command exited with status 1", Log: fatal},
		{Time: t0, Kind: "gave-up", Reason: "command exited with status 1", Log: fatal},
		{Time: t0, Kind: "gave-up", Reason: "other", Log: []string{"level=fatal msg=other"}},
	} {
		p.Event(e)
	}
	p.Close()
	want := ` ! k3s exited: command exited with status 1; k3s's log /d/logs/k3s.log ends:
     level=fatal msg="no cgroups"
     level=error msg="x"
 ! Restarting k3s in 1s (restart 1): command exited with status 1
 ! k3s exited: command exited with status 1; k3s's log /d/logs/k3s.log ends:
     level=fatal msg="no cgroups"
     level=error msg="x"
 ✗ Gave up: command exited with status 1; k3s's log /d/logs/k3s.log ends as shown above
 ✗ Gave up: other; k3s's log /d/logs/k3s.log ends:
     level=fatal msg=other
`
	if out.String() != want {
		t.Errorf("output:\n%s\nwant:\n%s", out.String(), want)
	}
}

// TestExcused: an agent not restarted for an unreachable API says why.
func TestExcused(t *testing.T) {
	var out bytes.Buffer
	p := New(&out, Plain, t0)
	p.Event(node.Event{Time: t0, Kind: node.KindExcused, PID: 1234,
		Reason: "the API server is unreachable (ConnectionRefused), but the kubelet is healthy (http://127.0.0.1:10248/healthz says ok): the server is away, not this agent"})
	p.Close()
	want := " ! Not restarting k3s: the API server is unreachable (ConnectionRefused), but the kubelet is healthy (http://127.0.0.1:10248/healthz says ok): the server is away, not this agent\n"
	if out.String() != want {
		t.Errorf("output %q, want %q", out.String(), want)
	}
}
