package up

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/urfave/cli/v2"
	"github.com/urfave/cli/v2/altsrc"
	"k8s.io/client-go/rest"

	"github.com/nodeboot/nodeboot/images"
	"github.com/nodeboot/nodeboot/internal/cli/cmdutil"
	"github.com/nodeboot/nodeboot/internal/cli/version"
	"github.com/nodeboot/nodeboot/internal/instance"
	"github.com/nodeboot/nodeboot/internal/safefs"
	"github.com/nodeboot/nodeboot/manifests"
	"github.com/nodeboot/nodeboot/node"
)

// flagpole holds the flags of "nodeboot up".
type flagpole struct {
	DataDir       string
	K3s           string
	Profile       string
	Role          string
	Server        string
	Token         string
	TokenFile     string
	NodeName      string
	Manifests     cli.StringSlice
	Smoke         bool
	ManifestsVia  string
	Wait          bool
	Timeout       time.Duration
	Detach        bool
	NotReadyGrace time.Duration
	StartGrace    time.Duration
	StopTimeout   time.Duration
	MaxRestarts   int
	Output        string
}

const usageText = "nodeboot up [flags] [-- K3S-ARGS...]"

const description = `Brings up a Kubernetes node with k3s on a fake kernel and keeps it up:
seeds the profile's fake tree in DATA-DIR/root, starts "k3s server" (or
"k3s agent" with --server and --token) under the interceptor with the
kubelet arguments a sandbox needs (docs/kubelet-args.md) and K3S-ARGS
appended last, watches the node through the API, restarts k3s when it
exits or stays not Ready longer than --notready-grace, and applies the
--manifest files once the node is Ready.

No registry is needed: before k3s starts, nodeboot stages for import its
own pause image (made from its static binary; k3s gets --pause-image) and
the archives 'nodeboot load image-archive' staged, and --smoke runs
nodeboot's own smoke image, never pulled. Where overlay mounts fail on
k3s's data dir (a gVisor or overlay root), k3s gets --snapshotter native.

By default nodeboot stays in the foreground as the supervisor; Ctrl-C
(SIGINT) or SIGTERM stops k3s cleanly. --detach leaves a supervisor in the
background and prints its PID; --wait (which implies --detach, since the
supervisor must outlive the command) then returns once the node is Ready
and the manifests are applied.

k3s is --k3s PATH, else k3s on $PATH, else DATA-DIR/bin/k3s (see
'nodeboot install'). One supervisor runs per DATA-DIR; 'nodeboot status',
'nodeboot logs', 'nodeboot kubeconfig', 'nodeboot kubectl' and 'nodeboot
down' act on it. up needs root (k3s does); it checks its inputs before it
looks for k3s, and when k3s dies it shows the lines of k3s's log that say
why.

Every flag can be set as NODEBOOT_<FLAG> (NODEBOOT_DATA_DIR, NODEBOOT_K3S,
...) or in the --config file (keys are the flag names); flags win over
variables, variables over the file.

Exit status: 0 when stopped cleanly (foreground), or Ready with the
manifests applied (--wait); 1 on failure, including giving up after
--max-restarts; 2 on a usage error; 3 when --wait's --timeout passed
before the node was Ready (the supervisor keeps running).

Examples:
   # A node in the foreground, with the smoke manifests
   nodeboot up --smoke

   # In CI: wait for Ready, then use the cluster
   nodeboot up --detach --wait --timeout 10m && nodeboot kubectl get nodes

   # Then kubectl of your own: the node as context nodeboot-NODE in ~/.kube/config
   nodeboot kubeconfig --merge && kubectl get nodes

   # An agent joining a server, with k3s arguments of your own
   nodeboot up --role agent --server https://10.0.0.1:6443 --token-file ./node-token -- --node-label team=a`

// NewCommand returns the "up" command. Progress goes to streams.ErrOut
// (--output json: one event per line on streams.Out).
func NewCommand(logger *slog.Logger, streams cmdutil.IOStreams) *cli.Command {
	f := &flagpole{}
	flag := func(name, env string) (string, []string) { return name, []string{"NODEBOOT_" + env} }
	str := func(name, env, usage, value string, dest *string, cat string) cli.Flag {
		n, e := flag(name, env)
		return altsrc.NewStringFlag(&cli.StringFlag{Name: n, EnvVars: e, Usage: usage, Value: value, Destination: dest, Category: cat})
	}
	dur := func(name, env, usage string, value time.Duration, dest *time.Duration, cat string) cli.Flag {
		n, e := flag(name, env)
		return altsrc.NewDurationFlag(&cli.DurationFlag{Name: n, EnvVars: e, Usage: usage, Value: value, Destination: dest, Category: cat})
	}
	boolean := func(name, env, usage string, dest *bool, cat string) cli.Flag {
		n, e := flag(name, env)
		return altsrc.NewBoolFlag(&cli.BoolFlag{Name: n, EnvVars: e, Usage: usage, Destination: dest, Category: cat})
	}
	cmd := &cli.Command{
		Name:            "up",
		Usage:           "bring up a k3s node on a fake kernel and keep it up",
		UsageText:       usageText,
		Description:     description,
		HideHelpCommand: true,
		Flags: []cli.Flag{
			cmdutil.DataDirFlag(&f.DataDir),
			str("k3s", "K3S", "the k3s binary (`PATH`); default: k3s on $PATH, else DATA-DIR/bin/k3s", "", &f.K3s, "k3s"),
			str("profile", "PROFILE", "the fake kernel's profile: a built-in name or a YAML file (`NAME|FILE`)", "k3s", &f.Profile, "k3s"),
			str("role", "ROLE", "`ROLE`: server (k3s server) or agent (k3s agent, with --server and --token)", "server", &f.Role, "k3s"),
			str("server", "SERVER", "agent: the server to join (`URL`), e.g. https://10.0.0.1:6443", "", &f.Server, "k3s"),
			str("token", "TOKEN", "agent: the cluster's join `TOKEN` (server: its token); on the command line every user can read it (ps): prefer --token-file", "", &f.Token, "k3s"),
			str("token-file", "TOKEN_FILE", "agent: read the join token from `FILE` (a regular file; the server's <k3s-data-dir>/server/node-token)", "", &f.TokenFile, "k3s"),
			str("node-name", "NODE_NAME", "the Node's `NAME` (default: the hostname)", "", &f.NodeName, "k3s"),
			altsrc.NewStringSliceFlag(&cli.StringSliceFlag{
				Name: "manifest", EnvVars: []string{"NODEBOOT_MANIFEST"}, Category: "Manifests", Destination: &f.Manifests,
				Usage: "apply `FILE|DIR` (*.yaml, *.yml, *.json; multi-document) once the node is Ready, and wait for it (repeatable)",
			}),
			boolean("smoke", "SMOKE", "also apply the built-in smoke manifests, which prove that a pod can be scheduled and run", &f.Smoke, "Manifests"),
			str("manifests-via", "MANIFESTS_VIA", "`HOW` to apply manifests: apply (server-side apply, then wait) or k3s (write them to k3s's auto-deploy directory, then wait until k3s has applied them)", "apply", &f.ManifestsVia, "Manifests"),
			boolean("detach", "DETACH", "run the supervisor in the background, print its PID and return", &f.Detach, "Running"),
			boolean("wait", "WAIT", "detach, then wait until the node is Ready and the manifests applied (exit 0), the supervisor fails (1) or --timeout passes (3)", &f.Wait, "Running"),
			dur("timeout", "TIMEOUT", "how long (`DURATION`) --wait waits, and applying the manifests may take", 5*time.Minute, &f.Timeout, "Running"),
			altsrc.NewStringFlag(&cli.StringFlag{Name: "output", Aliases: []string{"o"}, EnvVars: []string{"NODEBOOT_OUTPUT"}, Usage: "progress `FORMAT`: text (a live line on a terminal) or json (one event per line on stdout)", Value: "text", Destination: &f.Output, Category: "Running"}),
			dur("notready-grace", "NOTREADY_GRACE", "restart k3s when the node is not Ready (or the API unreachable) longer than `DURATION`", 60*time.Second, &f.NotReadyGrace, "Supervision"),
			dur("start-grace", "START_GRACE", "after each (re)start, not Ready does not count for `DURATION`", 2*time.Minute, &f.StartGrace, "Supervision"),
			dur("stop-timeout", "STOP_TIMEOUT", "stopping k3s sends SIGTERM to its whole process tree, SIGKILL after `DURATION`", 30*time.Second, &f.StopTimeout, "Supervision"),
			altsrc.NewIntFlag(&cli.IntFlag{
				Name: "max-restarts", EnvVars: []string{"NODEBOOT_MAX_RESTARTS"}, Category: "Supervision", Value: -1, Destination: &f.MaxRestarts,
				Usage: "give up (exit 1 with the last reason) after `N` restarts; -1 is unlimited",
			}),
		},
		Action: func(cCtx *cli.Context) error {
			return f.run(cCtx.Context, cCtx.Args().Slice(), logger, streams)
		},
	}
	return cmdutil.WithConfig(cmd, true)
}

// plan is the checked configuration of one "up": the node to start and
// what the library makes of it.
type plan struct {
	f    *flagpole
	cfg  node.Config
	node *node.Plan
	// builtinErr says why nodeboot's own images cannot be made (a
	// dynamically linked nodeboot); the node then uses k3s's pause image.
	builtinErr error
}

// check validates the flags and resolves what they name, in that order:
// first the flag values alone (usage errors), then whether this user may
// run a node at all (root), then the inputs on disk (data dir, profile,
// manifests, K3S-ARGS), and only then where k3s is, so that a bad input is
// reported as itself rather than as a missing k3s. It changes nothing on
// disk, so that a detaching "up" reports bad input in the foreground. What
// K3S-ARGS may say is the library's to decide (node.Check,
// bootstrap.PlanK3s); its refusals are usage errors.
func (f *flagpole) check(args []string) (*plan, error) {
	if err := f.checkValues(); err != nil {
		return nil, err
	}
	if err := needRoot(os.Geteuid()); err != nil {
		return nil, err
	}
	if err := f.readTokenFile(); err != nil {
		return nil, err
	}
	in, err := instance.Check(f.DataDir)
	if err != nil {
		return nil, cmdutil.UsageErrorf("up: %v", err)
	}
	prof, err := cmdutil.LoadProfile(f.Profile)
	if err != nil {
		return nil, err
	}
	var objs []manifests.Object
	var verify func(context.Context, *rest.Config) (string, error)
	if paths := f.Manifests.Value(); len(paths) > 0 {
		if objs, err = manifests.Load(paths); err != nil {
			return nil, fmt.Errorf("up: %w", err)
		}
	}
	// nodeboot's own images, from this binary: the pause image every pod
	// needs, and the smoke image; with them no pod needs a registry.
	builtin, builtinErr := builtinImages()
	if f.Smoke {
		if builtinErr != nil {
			return nil, fmt.Errorf("up: --smoke runs nodeboot's own smoke image, which it cannot make: %w", builtinErr)
		}
		smoke := manifests.Smoke(builtin.Smoke)
		objs = append(objs, smoke...)
		verify = func(ctx context.Context, rc *rest.Config) (string, error) { return manifests.SmokeLog(ctx, rc, smoke) }
	}
	staged, err := stagedArchives(in)
	if err != nil {
		return nil, fmt.Errorf("up: %w", err)
	}
	p := &plan{f: f, builtinErr: builtinErr, cfg: node.Config{
		Images: staged, Builtin: builtin, Verify: verify,
		DataDir: in.Dir, Profile: prof,
		Role: node.Role(f.Role), Server: f.Server, Token: f.Token, NodeName: f.NodeName, K3sArgs: args,
		Manifests: objs, ManifestsVia: node.ManifestsVia(f.ManifestsVia), ManifestTimeout: f.Timeout,
		StartGrace: f.StartGrace, NotReadyGrace: f.NotReadyGrace, StopTimeout: f.StopTimeout, MaxRestarts: f.MaxRestarts,
		// Where the nodes of this machine claim their names and network
		// namespaces; tests that run nodes side by side set their own.
		RunDir: os.Getenv(EnvRunDir),
	}}
	// K3S-ARGS are an input too, which node.Check judges; it needs a k3s
	// to resolve, so while none is found nodeboot's own binary stands in,
	// and a missing k3s is reported only once everything else is right.
	k3s, k3sErr := findK3s(f.K3s, in)
	p.cfg.K3s = k3s
	if k3sErr != nil {
		p.cfg.K3s = "/proc/self/exe"
	}
	if p.node, err = node.Check(p.cfg); err != nil {
		return nil, checkError(err)
	}
	if k3sErr != nil {
		return nil, k3sErr
	}
	return p, nil
}

// checkError is node.Check's error as up reports it: a usage error when
// the configuration is invalid.
func checkError(err error) error {
	if errors.Is(err, node.ErrInvalidConfig) {
		return cmdutil.UsageErrorf("up: %v", err)
	}
	return fmt.Errorf("up: %w", err)
}

// checkValues checks the flag values that need nothing but themselves.
func (f *flagpole) checkValues() error {
	switch f.Role {
	case "server", "agent":
	default:
		return cmdutil.UsageErrorf("up: --role %q: want server or agent", f.Role)
	}
	if f.Token != "" && f.TokenFile != "" {
		return cmdutil.UsageErrorf("up: --token and --token-file both given; pass one (--token-file keeps the token out of ps)")
	}
	if f.Role == "agent" && (f.Server == "" || (f.Token == "" && f.TokenFile == "")) {
		return cmdutil.UsageErrorf("up: --role agent needs --server URL and --token T or --token-file FILE (the server's node token), e.g. --server https://10.0.0.1:6443 --token-file node-token")
	}
	switch f.ManifestsVia {
	case "apply", "k3s":
	default:
		return cmdutil.UsageErrorf("up: --manifests-via %q: want apply or k3s", f.ManifestsVia)
	}
	switch f.Output {
	case "text", "json":
	default:
		return cmdutil.UsageErrorf("up: --output %q: want text or json", f.Output)
	}
	for _, d := range []struct {
		name, example string
		v             time.Duration
	}{
		{"timeout", "5m", f.Timeout},
		{"notready-grace", "60s", f.NotReadyGrace},
		{"start-grace", "2m", f.StartGrace},
		{"stop-timeout", "30s", f.StopTimeout},
	} {
		// 0 too: the library would read it as "the default".
		if d.v <= 0 {
			return cmdutil.UsageErrorf("up: --%s %s: want a positive duration, e.g. %s", d.name, d.v, d.example)
		}
	}
	if f.MaxRestarts < node.Unlimited {
		return cmdutil.UsageErrorf("up: --max-restarts %d: want a number of restarts (0 gives up at the first exit), or -1 for unlimited", f.MaxRestarts)
	}
	if f.Role == "agent" && (len(f.Manifests.Value()) > 0 || f.Smoke) {
		return cmdutil.UsageErrorf("up: --manifest and --smoke need --role server: an agent has no admin credentials to apply them with")
	}
	return nil
}

// needRoot fails, once and before anything else is looked at, when up
// does not run as root (euid 0): k3s cannot run a node without it.
func needRoot(euid int) error {
	if euid == 0 {
		return nil
	}
	return fmt.Errorf("up: needs root (you are uid %d): k3s runs containers, which takes mounts, cgroups, network namespaces and iptables rules that only root may set up, and nodeboot traces k3s and every process it starts; run it as root (sudo nodeboot up ...). Without root, `nodeboot exec` and `nodeboot seed` work (a fake kernel for programs that need no root)", euid)
}

// findK3s is cmdutil.FindK3s, its errors prefixed with "up: ".
func findK3s(flag string, in *instance.Instance) (string, error) {
	path, err := cmdutil.FindK3s(flag, in)
	if err == nil {
		return path, nil
	}
	var ec cli.ExitCoder
	if errors.As(err, &ec) {
		return "", cmdutil.UsageErrorf("up: %v", err)
	}
	return "", fmt.Errorf("up: %w", err)
}

// run runs "up": detached (--detach, --wait) or as the supervisor.
func (f *flagpole) run(ctx context.Context, args []string, logger *slog.Logger, streams cmdutil.IOStreams) error {
	// A detached supervisor: the parent made it with the lock in hand,
	// and the token, if any, on a pipe.
	child := os.Getenv(envLockFD) != ""
	if child {
		f.Detach, f.Wait = false, false
		if err := f.inheritToken(); err != nil {
			return err
		}
	}
	p, err := f.check(args)
	if err != nil {
		return err
	}
	if f.Detach || f.Wait {
		return p.detach(ctx, logger, streams)
	}
	return p.supervise(ctx, logger, streams, child)
}

// EnvRunDir names the directory of the machine-wide claims of the nodes
// (node.Config.RunDir; default /run/nodeboot).
const EnvRunDir = "NODEBOOT_RUN_DIR"

// maxTokenFile bounds --token-file: a k3s token is about 100 bytes.
const maxTokenFile = 16 << 10

// readTokenFile sets Token from --token-file.
func (f *flagpole) readTokenFile() error {
	if f.TokenFile == "" {
		return nil
	}
	if f.Token != "" {
		return cmdutil.UsageErrorf("up: --token and --token-file both given; pass one (--token-file keeps the token out of ps)")
	}
	b, err := safefs.ReadFile(f.TokenFile, maxTokenFile)
	if err != nil {
		return cmdutil.UsageErrorf("up: --token-file: %v", err)
	}
	f.Token = strings.TrimSpace(string(b))
	if f.Token == "" {
		return cmdutil.UsageErrorf("up: --token-file %s is empty; it should hold the server's node token", f.TokenFile)
	}
	return nil
}

// inheritToken takes the token from the pipe a detaching parent passed
// (envTokenFD), in place of any --token, --token-file or NODEBOOT_TOKEN.
func (f *flagpole) inheritToken() error {
	s := os.Getenv(envTokenFD)
	if s == "" {
		return nil
	}
	os.Unsetenv(envTokenFD)
	fd, err := strconv.Atoi(s)
	if err != nil || fd < 3 {
		return fmt.Errorf("up: %s=%q is not a descriptor", envTokenFD, s)
	}
	r := os.NewFile(uintptr(fd), "token pipe")
	defer r.Close()
	b, err := io.ReadAll(io.LimitReader(r, maxTokenFile+1))
	if err != nil || len(b) > maxTokenFile {
		return fmt.Errorf("up: read the token from the parent: %v", err)
	}
	f.Token, f.TokenFile = string(b), ""
	return nil
}

// builtinImages describes nodeboot's own images made from this binary.
func builtinImages() (*images.Builtin, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, fmt.Errorf("find nodeboot's binary: %w", err)
	}
	return images.ForBinary(exe, version.Version())
}

// stagedArchives lists the image archives "nodeboot load image-archive"
// staged in DATA-DIR/images (nodeboot's own archive there is the node's
// to write and stage: node.Config.Builtin).
func stagedArchives(in *instance.Instance) ([]string, error) {
	ents, err := os.ReadDir(in.ImagesDir())
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("staged images: %w", err)
	}
	var out []string
	for _, e := range ents {
		n := e.Name()
		if !e.Type().IsRegular() || strings.HasPrefix(n, ".") || strings.HasPrefix(n, images.BuiltinArchivePrefix) {
			continue
		}
		if strings.HasSuffix(n, ".tar") || strings.HasSuffix(n, ".tar.gz") {
			out = append(out, filepath.Join(in.ImagesDir(), n))
		}
	}
	return out, nil
}
