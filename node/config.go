package node

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"time"

	"k8s.io/client-go/rest"

	"github.com/nodeboot/nodeboot/bootstrap"
	"github.com/nodeboot/nodeboot/images"
	"github.com/nodeboot/nodeboot/internal/instance"
	"github.com/nodeboot/nodeboot/manifests"
	"github.com/nodeboot/nodeboot/profile"
)

// Role is what the node runs: "k3s server" or "k3s agent".
type Role string

const (
	RoleServer Role = "server" // k3s server: the control plane and a kubelet
	RoleAgent  Role = "agent"  // k3s agent: a kubelet joining a server
)

// ManifestsVia is how the manifests reach the cluster.
type ManifestsVia string

const (
	// ManifestsApply: server-side apply (field manager "nodeboot"), then
	// wait until every object is ready.
	ManifestsApply ManifestsVia = "apply"
	// ManifestsK3s: write them to k3s's auto-deploy directory, then wait
	// until k3s has applied them and every object is ready.
	ManifestsK3s ManifestsVia = "k3s"
)

// DefaultKubeletHealthz is Config.KubeletHealthz's default: kubelet's
// healthzBindAddress and healthzPort as k3s leaves them.
const DefaultKubeletHealthz = "http://127.0.0.1:10248/healthz"

// Unlimited as Config.MaxRestarts: never give up.
const Unlimited = -1

// DefaultManifestTimeout is Config.ManifestTimeout's default.
const DefaultManifestTimeout = 5 * time.Minute

// Config describes a node to start.
type Config struct {
	// DataDir holds everything of the node (its layout is in
	// docs/up.md): the fake tree, k3s's data, the kubeconfig, the logs,
	// state.json and events.jsonl. Created 0700 when missing; an existing
	// one must be yours and not writable by others. One node runs per data
	// directory at a time (a lock says which process runs it). Required.
	DataDir string
	// K3s is the k3s binary (a path, or a name looked up in $PATH).
	// Required.
	K3s string
	// Profile is the fake kernel (profile.Load("k3s") for the built-in
	// one). Required.
	Profile *profile.Profile

	// Role is server (the default) or agent.
	Role Role
	// Server and Token are what an agent joins: the server's
	// https://HOST:6443 and its join token (passed to k3s in a 0600 file,
	// never on argv).
	Server, Token string
	// NodeName is the Node's name; "" is the one K3sArgs give, else the
	// hostname in lower case.
	NodeName string
	// K3sArgs are appended to the k3s command line, after the arguments
	// nodeboot adds, as "nodeboot up -- K3S-ARGS" does. Where they set
	// something nodeboot sets too (--data-dir, --write-kubeconfig,
	// --node-name, an agent's --server or --token), theirs is used, by
	// k3s and by the node alike; what the node cannot follow (a
	// --with-node-id, a second node name, ...) makes Start fail before
	// anything runs. bootstrap.PlanK3s says exactly what is read and how.
	K3sArgs []string

	// Images are image archives (docker or OCI, *.tar or *.tar.gz) that
	// k3s imports into its containerd at every start, before the kubelet
	// runs: Start stages them in K3sImagesDir. Check inspects each
	// (images.Inspect), so that a bad one fails before anything starts.
	Images []string
	// Builtin, when set, are nodeboot's own pause and smoke images, made
	// from a static nodeboot binary (images.ForBinary): Start writes their
	// archive into DATA-DIR/images once per binary and stages it before
	// Images, and the pause image becomes k3s's --pause-image (unless
	// PauseImage or K3sArgs name another). Pod sandboxes then need no
	// registry.
	Builtin *images.Builtin
	// PauseImage is k3s's --pause-image unless K3sArgs name one; "" is
	// Builtin's pause image when Builtin is set, else k3s's default.
	PauseImage string

	// Manifests are applied once the node is first Ready, then waited on
	// (server only).
	Manifests []manifests.Object
	// Verify, when set, runs once the manifests are applied and ready,
	// with the node's API: a check of what they did (the smoke set's is
	// manifests.SmokeLog). Its line is reported as a manifests event; its
	// error fails the manifests (PhaseManifestsFailed), as a failed apply
	// does.
	Verify func(ctx context.Context, rest *rest.Config) (string, error)
	// ManifestsVia is how: ManifestsApply (the default) or ManifestsK3s.
	ManifestsVia ManifestsVia
	// ManifestTimeout bounds applying the manifests and waiting for them
	// (default 5m). When it passes, the phase is PhaseManifestsFailed and
	// the node keeps running.
	ManifestTimeout time.Duration

	// StartGrace, NotReadyGrace and StopTimeout are those of
	// bootstrap.SuperviseConfig (0: its defaults, 2m, 60s and 30s).
	StartGrace, NotReadyGrace, StopTimeout time.Duration
	// MaxRestarts: give up after this many restarts (the node then ends
	// with an error naming the last reason); 0 gives up at the first
	// reason to restart; Unlimited (any negative) never gives up.
	MaxRestarts int

	// KubeletHealthz is the agent's kubelet's own health endpoint
	// (default DefaultKubeletHealthz, kubelet's healthz port on the
	// loopback, where k3s leaves it). When an agent's API server has been
	// unreachable for longer than NotReadyGrace, the supervisor asks it
	// before restarting: a kubelet that answers "ok" is healthy, the API
	// is away, and restarting the agent would not bring the server back
	// (bootstrap.SuperviseConfig.Excuse). A server is restarted as
	// before: its API server is its own k3s. Dial, when set, makes this
	// connection too.
	KubeletHealthz string

	// OnEvent, when set, is called with every Event, in order, on the
	// node's own goroutines: it must return quickly and must not call
	// Stop, Wait or WaitFor (Status is fine).
	OnEvent func(Event)
	// Logger gets the supervisor's, the readiness watcher's and the
	// manifest applier's log lines; nil is slog.Default(). Events say
	// the same things at their level; the log has the detail.
	Logger *slog.Logger
	// Dial, when set, makes the connections to the node's API server
	// (rest.Config.Dial) and to KubeletHealthz: for a node reachable only
	// through another network namespace, a proxy or a tunnel. nil dials
	// directly.
	Dial func(ctx context.Context, network, address string) (net.Conn, error)

	// RunDir holds the machine-wide claims of the nodes on this machine
	// (default instance.DefaultRunDir, /run/nodeboot): Start claims the
	// node's name, its network namespace and the /run/k3s it sees there,
	// and fails with an ErrClaimed naming the other node's data dir when
	// another node runs with any of them (two nodes in one network
	// namespace fight over k3s's and kubelet's ports; two of one name
	// over the Node; two with one /run/k3s over containerd's socket).
	// Tests that run nodes side by side pass a directory of their own.
	RunDir string

	// InheritedLock is the data directory's lock file (DATA-DIR/
	// nodeboot.lock) already locked by the parent process that started
	// this one, passed down as an open descriptor so that no other start
	// can slip in between ("nodeboot up --detach" does this). Start then
	// takes the lock over instead of locking, and appends to the events
	// the parent started instead of starting a new list. nil: Start locks.
	InheritedLock *os.File
}

// ErrInvalidConfig is what every error of Check is: the configuration
// asks for something the node cannot do, and nothing was started.
var ErrInvalidConfig = errors.New("invalid node configuration")

// configError is an ErrInvalidConfig with its message.
type configError struct{ err error }

func (e *configError) Error() string        { return e.err.Error() }
func (e *configError) Unwrap() error        { return e.err }
func (e *configError) Is(target error) bool { return target == ErrInvalidConfig }

func invalid(format string, a ...any) error { return &configError{fmt.Errorf(format, a...)} }

// Plan is what Start will run for a Config, once K3sArgs have had their
// say: the k3s command line, and the names and paths both k3s and the
// node use.
type Plan struct {
	DataDir string // the data directory, absolute
	Role    Role
	K3s     string // the k3s binary, absolute
	// NodeName is the Node's name, which the readiness watcher watches.
	NodeName string
	// K3sDataDir is k3s's data dir: DATA-DIR/k3s, or K3sArgs' --data-dir.
	K3sDataDir string
	// Kubeconfig is where k3s server writes its admin kubeconfig:
	// DATA-DIR/kubeconfig.yaml, or K3sArgs' --write-kubeconfig ("" for an
	// agent).
	Kubeconfig string
	// Argv is k3s's command line, argv[0] included. Start may add a
	// --snapshotter to it (see Snapshotter).
	Argv []string
	// PauseImage is the pod sandbox image k3s is given ("" is k3s's
	// default).
	PauseImage string
	// Snapshotter is the --snapshotter k3s is given: K3sArgs' own, else
	// "" until Start has probed overlay mounts in k3s's data dir and,
	// when they fail, "native".
	Snapshotter string

	cfg    Config
	images []stagedImage
	in     *instance.Instance
	k3s    *bootstrap.K3sCommand
}

// Check validates cfg and works out what Start would run, without
// changing anything on disk; every error it returns is ErrInvalidConfig
// (a *bootstrap.K3sArgsError for K3sArgs it refuses).
func Check(cfg Config) (*Plan, error) {
	if cfg.Role == "" {
		cfg.Role = RoleServer
	}
	if cfg.ManifestsVia == "" {
		cfg.ManifestsVia = ManifestsApply
	}
	if cfg.ManifestTimeout <= 0 {
		cfg.ManifestTimeout = DefaultManifestTimeout
	}
	if cfg.KubeletHealthz == "" {
		cfg.KubeletHealthz = DefaultKubeletHealthz
	}
	switch {
	case cfg.Role != RoleServer && cfg.Role != RoleAgent:
		return nil, invalid("role %q: want %s or %s", cfg.Role, RoleServer, RoleAgent)
	case cfg.ManifestsVia != ManifestsApply && cfg.ManifestsVia != ManifestsK3s:
		return nil, invalid("manifests via %q: want %s or %s", cfg.ManifestsVia, ManifestsApply, ManifestsK3s)
	case cfg.Role == RoleAgent && len(cfg.Manifests) > 0:
		return nil, invalid("manifests need a server: an agent has no admin credentials to apply them with")
	case cfg.Profile == nil:
		return nil, invalid("no profile; load one with profile.Load(\"k3s\")")
	case cfg.K3s == "":
		return nil, invalid("no k3s binary; set Config.K3s")
	}
	if u, err := url.Parse(cfg.KubeletHealthz); err != nil || u.Scheme != "http" || u.Host == "" {
		return nil, invalid("kubelet healthz %q: want an http://HOST:PORT/healthz URL", cfg.KubeletHealthz)
	}
	in, err := instance.At(cfg.DataDir)
	if err != nil {
		return nil, invalid("%w", err)
	}
	k3s, err := lookK3s(cfg.K3s)
	if err != nil {
		return nil, invalid("k3s %q: %w", cfg.K3s, err)
	}
	staged, err := checkImages(cfg.Images)
	if err != nil {
		return nil, err
	}
	pause := cfg.PauseImage
	if pause == "" && cfg.Builtin != nil {
		pause = cfg.Builtin.Pause
	}
	cmd, err := bootstrap.PlanK3s(bootstrap.K3sArgsConfig{
		Role: string(cfg.Role), ServerURL: cfg.Server, Token: cfg.Token,
		DataDir: in.K3sDataDir(), Kubeconfig: in.Kubeconfig(), NodeName: cfg.NodeName,
		Profile: cfg.Profile, Root: in.Root(), PauseImage: pause, UserArgs: cfg.K3sArgs,
	})
	if err != nil {
		return nil, &configError{err}
	}
	return &Plan{
		DataDir: in.Dir, Role: cfg.Role, K3s: k3s, NodeName: cmd.NodeName,
		K3sDataDir: cmd.DataDir, Kubeconfig: cmd.AdminKubeconfig,
		Argv:       append([]string{"k3s"}, cmd.Args...),
		PauseImage: cmd.PauseImage, Snapshotter: cmd.Snapshotter,
		cfg: cfg, in: in, k3s: cmd, images: staged,
	}, nil
}

// lookK3s resolves the k3s binary to an absolute path of an executable
// file.
func lookK3s(k3s string) (string, error) {
	path, err := exec.LookPath(k3s)
	if err != nil {
		return "", err
	}
	return filepath.Abs(path)
}
