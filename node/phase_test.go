package node

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/nodeboot/nodeboot/bootstrap"
	"github.com/nodeboot/nodeboot/health"
	"github.com/nodeboot/nodeboot/internal/instance"
	"github.com/nodeboot/nodeboot/manifests"
)

// newPhaseNode is a Node with a data directory and no k3s: the phase
// machine's inputs (supervisor events, health reports, Lease renewals)
// are fed to it by hand.
func newPhaseNode(t *testing.T, nManifests int) *Node {
	t.Helper()
	in, err := instance.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	events, err := in.OpenEvents(true)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { events.Close() })
	n := &Node{plan: &Plan{NodeName: "n1"}, in: in, events: events, changed: make(chan struct{}), done: make(chan struct{}),
		log: testLogger(t), watchCtx: t.Context()}
	n.cfg.Manifests = make([]manifests.Object, nManifests)
	n.state = State{Phase: PhaseStarting}
	return n
}

// step is one input to the phase machine.
type step struct {
	started  time.Duration // > 0: the supervisor started k3s at t0+started
	restart  bool          // the supervisor restarts k3s
	health   health.State  // a health report, with a Ready heartbeat at t0+beat
	beat     time.Duration
	renewed  time.Duration // > 0: the Lease was renewed at t0+renewed
	wantWhen Phase         // the phase after this step
}

// TestPhaseMachine: the phases follow the health reports, and a Ready node
// counts only once the running k3s's kubelet has been heard from (a Lease
// renewal or a Ready heartbeat since its start).
func TestPhaseMachine(t *testing.T) {
	t0 := time.Now().Truncate(time.Second).Add(-time.Hour)
	tests := []struct {
		name  string
		steps []step
	}{
		{"a new node: registered, then Ready with a heartbeat since the start", []step{
			{started: time.Second, wantWhen: PhaseStarting},
			{health: health.Unreachable, wantWhen: PhaseStarting},
			{health: health.NotRegistered, wantWhen: PhaseAPIReachable},
			{health: health.NotReady, beat: 2 * time.Second, wantWhen: PhaseRegistered},
			{health: health.Ready, beat: 3 * time.Second, wantWhen: PhaseReady},
		}},
		{"an earlier run's Ready is not this one's until the Lease is renewed", []step{
			{started: 10 * time.Second, wantWhen: PhaseStarting},
			{health: health.Ready, beat: time.Second, wantWhen: PhaseRegistered},
			{renewed: 5 * time.Second, wantWhen: PhaseRegistered}, // before the start
			{renewed: 12 * time.Second, wantWhen: PhaseReady},
		}},
		{"a renewal seen before the started event proves the new kubelet", []step{
			{health: health.Ready, beat: time.Second, wantWhen: PhaseRegistered},
			{renewed: 12 * time.Second, wantWhen: PhaseRegistered},
			{started: 10 * time.Second, wantWhen: PhaseReady},
		}},
		{"after a quick restart, Ready counts again only once the new kubelet renews", []step{
			{started: time.Second, wantWhen: PhaseStarting},
			{health: health.Ready, beat: 2 * time.Second, wantWhen: PhaseReady},
			{restart: true, wantWhen: PhaseRestarting},
			{started: 20 * time.Second, wantWhen: PhaseStarting},
			{renewed: 21 * time.Second, wantWhen: PhaseReady},
		}},
		{"manifests: node-ready, not ready", []step{
			{started: time.Second},
			{health: health.Ready, beat: 2 * time.Second, wantWhen: PhaseNodeReady},
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			nManifests := 0
			if tc.name == "manifests: node-ready, not ready" {
				nManifests = 1
			}
			n := newPhaseNode(t, nManifests)
			if nManifests > 0 {
				// The applier would start now; keep it from running.
				n.applyStarted = true
			}
			var phases []Phase
			n.cfg.OnEvent = func(e Event) {
				if e.Kind == KindPhase {
					phases = append(phases, e.Phase)
				}
			}
			for i, s := range tc.steps {
				switch {
				case s.started > 0:
					n.superviseEvent(bootstrap.Event{Time: t0.Add(s.started), Kind: bootstrap.EventStarted, PID: 100 + i})
				case s.restart:
					n.superviseEvent(bootstrap.Event{Time: time.Now(), Kind: bootstrap.EventRestarting, Reason: "test", Restarts: 1})
				case s.renewed > 0:
					n.onRenew(t0.Add(s.renewed))
				default:
					st := health.Status{State: s.health, Since: time.Now()}
					if s.health == health.Ready || s.health == health.NotReady {
						status := corev1.ConditionTrue
						if s.health == health.NotReady {
							status = corev1.ConditionFalse
						}
						st.Conditions = []corev1.NodeCondition{{Type: corev1.NodeReady, Status: status, LastHeartbeatTime: metav1.NewTime(t0.Add(s.beat))}}
					}
					n.onHealth(t.Context(), st)
				}
				if s.wantWhen != "" {
					if got := n.Status().Phase; got != s.wantWhen {
						t.Fatalf("after step %d (%+v): phase %s, want %s (phases so far %v)", i, s, got, s.wantWhen, phases)
					}
				}
			}
			// Every phase reached once in a row, never twice.
			for i := 1; i < len(phases); i++ {
				if phases[i] == phases[i-1] {
					t.Errorf("phase %s reported twice in a row: %v", phases[i], phases)
				}
			}
			// state.json says what Status says.
			var file State
			if err := n.in.ReadState(&file); err != nil {
				t.Fatal(err)
			}
			if file.Phase != n.Status().Phase {
				t.Errorf("state.json phase %s, Status %s", file.Phase, n.Status().Phase)
			}
			evs, _, err := ReadEvents(n.in.Dir, 0)
			if err != nil {
				t.Fatal(err)
			}
			var filed []Phase
			for _, e := range evs {
				if e.Kind == KindPhase {
					filed = append(filed, e.Phase)
				}
			}
			if !slices.Equal(filed, phases) {
				t.Errorf("events.jsonl phases %v, OnEvent's %v", filed, phases)
			}
		})
	}
}

// TestWaitForLevels: WaitFor returns as soon as the phase is reached, and
// with the sentinel errors otherwise.
func TestWaitForLevels(t *testing.T) {
	n := newPhaseNode(t, 0)
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	got := make(chan error, 1)
	go func() {
		_, err := n.WaitFor(ctx, PhaseRegistered)
		got <- err
	}()
	n.phase(PhaseAPIReachable, "", "")
	select {
	case err := <-got:
		t.Fatalf("WaitFor(registered) returned at api-reachable: %v", err)
	case <-time.After(100 * time.Millisecond):
	}
	n.phase(PhaseRegistered, "", "")
	if err := <-got; err != nil {
		t.Fatalf("WaitFor(registered) = %v", err)
	}
	if _, err := n.WaitFor(ctx, PhaseSeeding); err == nil {
		t.Error("WaitFor(seeding) = nil, want an error: not a phase to wait for")
	}
	short, cancelShort := context.WithTimeout(ctx, 50*time.Millisecond)
	defer cancelShort()
	if _, err := n.WaitFor(short, PhaseReady); err != context.DeadlineExceeded {
		t.Errorf("WaitFor past its context = %v", err)
	}
	n.emit(Event{Kind: KindPhase, Phase: PhaseManifestsFailed}, func(s *State) { s.LastError = "apply manifests: boom" })
	if _, err := n.WaitFor(ctx, PhaseReady); err == nil || !errors.Is(err, ErrManifestsFailed) {
		t.Errorf("WaitFor(ready) after manifests-failed = %v", err)
	}
	if _, err := n.WaitFor(ctx, PhaseNodeReady); err != nil {
		t.Errorf("WaitFor(node-ready) after manifests-failed = %v: the node is Ready", err)
	}
	n.phase(PhaseStopped, "", "")
	if _, err := n.WaitFor(ctx, PhaseReady); err != ErrStopped {
		t.Errorf("WaitFor after stopped = %v, want ErrStopped", err)
	}
}
