package instance

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"time"
)

// Phase is how far "nodeboot up" has brought the node. The phases are
// reached in the order below; a restart goes back to PhaseStarting.
type Phase string

const (
	PhaseSeeding          Phase = "seeding"           // writing the fake tree
	PhaseStarting         Phase = "starting-k3s"      // k3s launched, API not answering yet
	PhaseAPIReachable     Phase = "api-reachable"     // the API answers; no Node yet
	PhaseRegistered       Phase = "node-registered"   // the Node exists, not Ready
	PhaseNodeReady        Phase = "node-ready"        // Ready; manifests still to apply
	PhaseReady            Phase = "ready"             // Ready, no manifests to apply
	PhaseManifestsApplied Phase = "manifests-applied" // Ready and the manifests applied
	PhaseManifestsFailed  Phase = "manifests-failed"  // Ready, applying the manifests failed (LastError)
	PhaseRestarting       Phase = "restarting"        // the supervisor is restarting k3s
	PhaseStopping         Phase = "stopping"          // stopping on a signal or "nodeboot down"
	PhaseStopped          Phase = "stopped"           // the supervisor ended cleanly
	PhaseFailed           Phase = "failed"            // the supervisor gave up (LastError)
)

// Done reports whether p is the end of bringing the node up: Ready, and the
// manifests applied when there were any. "nodeboot up --wait" waits for it.
func (p Phase) Done() bool { return p == PhaseReady || p == PhaseManifestsApplied }

// NodeReady reports whether the phase has the node Ready as the running
// k3s's kubelet reported it: a Ready health in an earlier phase (after a
// restart, say) may be the previous kubelet's.
func (p Phase) NodeReady() bool {
	return p == PhaseNodeReady || p == PhaseReady || p == PhaseManifestsApplied || p == PhaseManifestsFailed
}

// Final reports whether the supervisor has ended (or bringing up cannot
// succeed without a new "up"): --wait stops waiting.
func (p Phase) Final() bool {
	return p == PhaseStopped || p == PhaseFailed || p == PhaseManifestsFailed
}

// State is state.json: what "nodeboot status" shows. The supervisor rewrites
// it atomically at every change.
type State struct {
	Phase         Phase     `json:"phase"`
	PhaseSince    time.Time `json:"phaseSince"`
	DataDir       string    `json:"dataDir"`
	NodeName      string    `json:"nodeName"`
	Role          string    `json:"role"`
	K3s           string    `json:"k3s"` // the k3s binary
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

// Health is the readiness watcher's last report (health.Status, flattened so
// that this package needs no Kubernetes types).
type Health struct {
	State      string      `json:"state"` // Ready, NotReady, NodeNotRegistered, APIUnreachable, Stale
	Reason     string      `json:"reason,omitempty"`
	Message    string      `json:"message,omitempty"`
	Since      time.Time   `json:"since"`
	Conditions []Condition `json:"conditions,omitempty"`
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

// WriteState replaces state.json with s.
func (in *Instance) WriteState(s *State) error {
	b, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return fmt.Errorf("encode state: %w", err)
	}
	return writeAtomic(in.StatePath(), append(b, '\n'), 0o644)
}

// ErrNoState means state.json does not exist: "nodeboot up" never ran with
// this data directory.
var ErrNoState = errors.New("no state")

// ReadState reads state.json. A missing file is ErrNoState.
func (in *Instance) ReadState() (*State, error) {
	b, err := readNoFollow(in.StatePath())
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("%s: %w", in.StatePath(), ErrNoState)
	}
	if err != nil {
		return nil, fmt.Errorf("read state: %w", err)
	}
	var s State
	if err := json.Unmarshal(b, &s); err != nil {
		return nil, fmt.Errorf("read state %s: %w", in.StatePath(), err)
	}
	return &s, nil
}
