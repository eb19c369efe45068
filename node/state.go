package node

import (
	"encoding/json"
	"fmt"
	"path/filepath"
	"time"

	"github.com/nodeboot/nodeboot/bootstrap"
	"github.com/nodeboot/nodeboot/health"
	"github.com/nodeboot/nodeboot/internal/instance"
)

// Phase is how far the node has been brought up. The phases are reached in
// the order below; a restart goes back to PhaseStarting.
type Phase string

const (
	PhaseSeeding          Phase = "seeding"           // writing the fake tree
	PhaseStarting         Phase = "starting-k3s"      // k3s launched, API not answering yet
	PhaseAPIReachable     Phase = "api-reachable"     // the API answers; no Node yet
	PhaseRegistered       Phase = "node-registered"   // the Node exists, not Ready (as this k3s's kubelet reports it)
	PhaseNodeReady        Phase = "node-ready"        // Ready; manifests still to apply
	PhaseReady            Phase = "ready"             // Ready, no manifests to apply
	PhaseManifestsApplied Phase = "manifests-applied" // Ready and the manifests applied
	PhaseManifestsFailed  Phase = "manifests-failed"  // Ready, applying the manifests failed (LastError)
	PhaseRestarting       Phase = "restarting"        // the supervisor is restarting k3s
	PhaseStopping         Phase = "stopping"          // stopping (Stop, a cancelled context, "nodeboot down")
	PhaseStopped          Phase = "stopped"           // the supervisor ended cleanly
	PhaseFailed           Phase = "failed"            // the supervisor gave up (LastError)
)

// Done reports whether p is the end of bringing the node up: Ready, and the
// manifests applied when there were any. "nodeboot up --wait" and
// WaitFor(ctx, PhaseReady) wait for it.
func (p Phase) Done() bool { return p == PhaseReady || p == PhaseManifestsApplied }

// NodeReady reports whether the phase has the node Ready as the running
// k3s's kubelet reported it: a Ready health in an earlier phase (after a
// restart, say) may be the previous kubelet's.
func (p Phase) NodeReady() bool {
	return p == PhaseNodeReady || p == PhaseReady || p == PhaseManifestsApplied || p == PhaseManifestsFailed
}

// Final reports whether the supervisor has ended (or bringing up cannot
// succeed without a new start): --wait stops waiting.
func (p Phase) Final() bool {
	return p == PhaseStopped || p == PhaseFailed || p == PhaseManifestsFailed
}

// rank orders the phases of bringing up; the others rank lowest.
func (p Phase) rank() int {
	switch p {
	case PhaseAPIReachable:
		return 1
	case PhaseRegistered:
		return 2
	case PhaseNodeReady:
		return 3
	case PhaseReady, PhaseManifestsApplied, PhaseManifestsFailed:
		return 4
	}
	return 0
}

// State is what the node's supervisor knows: Node.Status returns it, and it
// is DATA-DIR/state.json, rewritten atomically at every change, which
// "nodeboot status" shows (--output json prints it as it is).
type State struct {
	Phase      Phase     `json:"phase"`
	PhaseSince time.Time `json:"phaseSince"`
	DataDir    string    `json:"dataDir"`
	NodeName   string    `json:"nodeName"`
	Role       Role      `json:"role"`
	K3s        string    `json:"k3s"` // the k3s binary
	// Kubeconfig is the admin kubeconfig k3s server writes (once its API
	// runs); "" for an agent.
	Kubeconfig string `json:"kubeconfig,omitempty"`
	// K3sDataDir is k3s's data dir (DATA-DIR/k3s, or K3S-ARGS'
	// --data-dir): a server's join token is its server/node-token, and
	// image archives put into its agent/images are imported while k3s runs.
	K3sDataDir string `json:"k3sDataDir,omitempty"`
	// PauseImage is the pod sandbox image k3s was given ("" its default).
	PauseImage string `json:"pauseImage,omitempty"`
	// Snapshotter is containerd's snapshotter: overlayfs, or native when
	// overlay mounts fail on k3s's data dir (or what K3S-ARGS chose).
	Snapshotter string `json:"snapshotter,omitempty"`
	// PodNetwork says whether pods may have a network namespace of their
	// own: "veth" when a veth pair could be created in a new network
	// namespace (what the CNI plugins do for each such pod), "host-only"
	// when the sandbox refused it and pods need hostNetwork: true.
	PodNetwork    string    `json:"podNetwork,omitempty"`
	StartedAt     time.Time `json:"startedAt"`
	UpdatedAt     time.Time `json:"updatedAt"`
	SupervisorPID int       `json:"supervisorPID"`
	K3sPID        int       `json:"k3sPID,omitempty"` // 0 while k3s is not running
	Restarts      int       `json:"restarts"`
	// RestartHistory holds the last MaxRestartHistory restarts.
	RestartHistory []Restart `json:"restartHistory,omitempty"`
	Health         *Health   `json:"health,omitempty"`
	Interceptor    *Counters `json:"interceptor,omitempty"`
	LastError      string    `json:"lastError,omitempty"`
}

// JoinToken is the file where k3s server keeps the token agents join
// with: K3S-DATA-DIR/server/node-token (k3s writes it once its server
// runs).
func JoinToken(k3sDataDir string) string {
	return filepath.Join(k3sDataDir, "server", "node-token")
}

// MaxRestartHistory bounds State.RestartHistory.
const MaxRestartHistory = 20

// Restart is one restart of k3s and why.
type Restart struct {
	Time   time.Time `json:"time"`
	Reason string    `json:"reason"`
	Delay  string    `json:"delay,omitempty"` // the backoff wait, as time.Duration prints it
}

// AddRestart appends r to the history, dropping the oldest entries beyond
// MaxRestartHistory.
func (s *State) AddRestart(r Restart) {
	s.RestartHistory = append(s.RestartHistory, r)
	if n := len(s.RestartHistory); n > MaxRestartHistory {
		s.RestartHistory = append([]Restart(nil), s.RestartHistory[n-MaxRestartHistory:]...)
	}
}

// clone is a deep copy of s, for a caller to keep.
func (s State) clone() State {
	s.RestartHistory = append([]Restart(nil), s.RestartHistory...)
	if s.Health != nil {
		h := *s.Health
		h.Conditions = append([]Condition(nil), h.Conditions...)
		s.Health = &h
	}
	if s.Interceptor != nil {
		c := *s.Interceptor
		s.Interceptor = &c
	}
	return s
}

// Health is the readiness watcher's last report (a health.Status without
// its Kubernetes types, so that it reads the same in JSON).
type Health struct {
	State      health.State `json:"state"` // Ready, NotReady, NodeNotRegistered, APIUnreachable, Stale
	Reason     string       `json:"reason,omitempty"`
	Message    string       `json:"message,omitempty"`
	Since      time.Time    `json:"since"`
	Conditions []Condition  `json:"conditions,omitempty"`
}

// Condition is one node condition.
type Condition struct {
	Type          string    `json:"type"`
	Status        string    `json:"status"`
	Reason        string    `json:"reason,omitempty"`
	Message       string    `json:"message,omitempty"`
	LastHeartbeat time.Time `json:"lastHeartbeat,omitzero"`
}

// Counters summarise the interceptor's counters of the running k3s.
type Counters struct {
	Mode     string `json:"mode"`
	Stops    uint64 `json:"stops"`
	Rewrites uint64 `json:"rewrites"`
	Passes   uint64 `json:"passes"`
	Tracees  int    `json:"tracees"`
}

// EventKind says what an Event reports.
type EventKind string

// The kinds of Event: a phase reached, a health change, progress of the
// manifests, an error that does not end the node, and what the supervisor
// did to k3s (bootstrap.Supervise's events).
const (
	KindPhase      EventKind = "phase"
	KindHealth     EventKind = "health"
	KindManifests  EventKind = "manifests"
	KindError      EventKind = "error"
	KindStarted    EventKind = EventKind(bootstrap.EventStarted)
	KindExited     EventKind = EventKind(bootstrap.EventExited)
	KindUnhealthy  EventKind = EventKind(bootstrap.EventUnhealthy)
	KindExcused    EventKind = EventKind(bootstrap.EventExcused)
	KindRestarting EventKind = EventKind(bootstrap.EventRestarting)
	KindStopping   EventKind = EventKind(bootstrap.EventStopping)
	KindStopped    EventKind = EventKind(bootstrap.EventStopped)
	KindGaveUp     EventKind = EventKind(bootstrap.EventGaveUp)
)

// Event is one thing that happened to the node: Config.OnEvent gets each,
// in order, and each is a line of DATA-DIR/events.jsonl (and of "nodeboot
// up --output json").
type Event struct {
	Time     time.Time `json:"time"`
	Kind     EventKind `json:"kind"`
	Phase    Phase     `json:"phase,omitempty"`    // KindPhase: the phase reached
	Message  string    `json:"message,omitempty"`  // what the phase, error or progress says
	PID      int       `json:"pid,omitempty"`      // k3s's PID (supervisor events)
	Restarts int       `json:"restarts,omitempty"` // restarts so far (supervisor events)
	Reason   string    `json:"reason,omitempty"`   // why (supervisor events)
	Delay    string    `json:"delay,omitempty"`    // KindRestarting: the backoff wait
	Health   *Health   `json:"health,omitempty"`   // KindHealth: the new health
	// Log, for KindExited and KindGaveUp, is what k3s's log
	// (DATA-DIR/logs/k3s.log) says about why it ended: the fatal lines
	// of that run first, then its latest error lines, or its last lines
	// when there are neither.
	Log []string `json:"log,omitempty"`
}

// ReadState reads the state of the node whose data directory is dataDir,
// as its supervisor (this process or another) last wrote it. A data
// directory where no node ever ran gives an error that is ErrNoState.
func ReadState(dataDir string) (*State, error) {
	in, err := instance.At(dataDir)
	if err != nil {
		return nil, err
	}
	var s State
	if err := in.ReadState(&s); err != nil {
		return nil, err
	}
	return &s, nil
}

// ErrNoState means there is no state.json: no node ever ran there.
var ErrNoState = instance.ErrNoState

// ReadEvents returns the events in dataDir's events.jsonl after byte
// offset off, and the offset to pass next time to follow the file (a
// second process waiting for the node, as "nodeboot up --wait" does). A
// file that a new start truncated is read from its beginning; a line that
// does not parse is skipped.
func ReadEvents(dataDir string, off int64) ([]Event, int64, error) {
	in, err := instance.At(dataDir)
	if err != nil {
		return nil, off, err
	}
	lines, next, err := in.ReadEvents(off)
	if err != nil {
		return nil, off, err
	}
	var evs []Event
	for _, l := range lines {
		var e Event
		if json.Unmarshal(l, &e) == nil {
			evs = append(evs, e)
		}
	}
	return evs, next, nil
}

// String is the event on one line, for logs and tests.
func (e Event) String() string {
	s := string(e.Kind)
	if e.Phase != "" {
		s += " " + string(e.Phase)
	}
	if e.Health != nil {
		s += " " + string(e.Health.State)
	}
	if e.PID != 0 {
		s += fmt.Sprintf(" pid %d", e.PID)
	}
	if e.Reason != "" {
		s += ": " + e.Reason
	} else if e.Message != "" {
		s += ": " + e.Message
	}
	return s
}
