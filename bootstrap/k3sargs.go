package bootstrap

import (
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/nodeboot/nodeboot/profile"
)

// K3sArgsConfig describes the k3s nodeboot starts.
type K3sArgsConfig struct {
	Role      string // "server" or "agent"
	ServerURL string // agent: the server's https URL (required unless UserArgs have --server)
	Token     string // agent: the cluster token (required unless UserArgs have --token or --token-file); passed as a 0600 file, not on argv
	DataDir   string // k3s --data-dir (absolute) unless UserArgs name one
	// Kubeconfig is server's --write-kubeconfig (with --write-kubeconfig-mode
	// 0600) unless UserArgs name one; "" leaves k3s's default.
	Kubeconfig string
	// NodeName is --node-name. "" is the name UserArgs give, else the
	// hostname in lower case (k3s's own default), which is then passed
	// explicitly: nodeboot watches the Node by this name.
	NodeName string
	Profile  *profile.Profile // decides which sandbox settings kubelet needs
	// Root is the fake tree. The drop-in does not live there (kubelet reads
	// it through k3s's data dir); it is kept for callers that pass it.
	Root string
	// PauseImage is --pause-image, the pod sandbox image k3s has
	// containerd use, unless UserArgs name one; "" leaves k3s's default
	// (a registry image). nodeboot names its own (package images), which
	// the node imports before kubelet needs it: no registry is asked.
	PauseImage string
	UserArgs   []string // K3S-ARGS after --, appended last (so they win)
}

// DropinName is the file K3sArgs writes in k3s's kubelet drop-in directory
// (<data-dir>/agent/etc/kubelet.conf.d). k3s (v1.32 and later) passes that
// directory to kubelet as --config-dir and writes 00-k3s-defaults.conf
// there; kubelet merges *.conf files in lexical order, later ones winning.
// 05 sorts after k3s's defaults (which nodeboot overrides) and before the
// 10-cli-config.conf and 20-cli-config-dir/ into which k3s copies a user's
// --kubelet-arg=config=FILE and config-dir=DIR (which override nodeboot).
const DropinName = "05-nodeboot.conf"

// kubeletSetting is one KubeletConfiguration field the drop-in sets.
type kubeletSetting struct {
	Field string // KubeletConfiguration field
	Value string // YAML value
	Why   string // one line, written above it in the file
}

// sandboxKubeletSettings are the KubeletConfiguration fields kubelet needs
// on what the profile emulates (docs/kubelet-args.md has the long story).
func sandboxKubeletSettings(p *profile.Profile) []kubeletSetting {
	var out []kubeletSetting
	cgroup2, mountinfo := false, false
	for _, d := range p.Dynamic {
		switch {
		case d.Kind == "cgroup2" && d.Path == "/sys/fs/cgroup":
			cgroup2 = true
		case d.Kind == "mountinfo":
			mountinfo = true
		}
	}
	if !cgroup2 {
		// kubelet 1.35+ refuses to start on cgroup v1 unless told
		// otherwise (KEP-5573); without the emulated cgroup2 kubelet
		// sees the sandbox's own cgroups, which are v1 in gVisor.
		out = append(out, kubeletSetting{"failCgroupV1", "false",
			"the profile does not emulate cgroup v2; the sandbox's cgroups may be v1, which kubelet 1.35+ refuses by default"})
	}
	if !cgroup2 || !mountinfo {
		// ContainerManager.Start asks cAdvisor for RootFsInfo and fails
		// kubelet when it has none; cAdvisor needs the root cgroup's
		// stats and a mountinfo line for /var/lib/kubelet's device.
		out = append(out, kubeletSetting{"localStorageCapacityIsolation", "false",
			"the profile cannot give cAdvisor rootfs info (emulated cgroup2 and mountinfo); kubelet fails without it unless this is off"})
	}
	return out
}

// K3sCommand is the k3s command K3S-ARGS leave: its argv and the names and
// paths k3s will use, which nodeboot must use too (it waits for the
// kubeconfig where k3s writes it, watches the Node by the name k3s gives
// it, writes the kubelet drop-in where k3s reads it). PlanK3s makes it;
// WriteFiles writes the files its argv names.
type K3sCommand struct {
	// Args is argv after the k3s binary: role, nodeboot's flags for what
	// UserArgs do not set, then UserArgs unchanged.
	Args []string
	// DataDir is k3s's data dir: UserArgs' --data-dir, else the config's.
	DataDir string
	// AdminKubeconfig is where k3s server writes its admin kubeconfig
	// (UserArgs' --write-kubeconfig, else the config's); "" for an agent,
	// or when neither names one (k3s then picks its own place).
	AdminKubeconfig string
	// NodeName is the Node's name: the config's, UserArgs', or the hostname.
	NodeName string
	// PauseImage is the sandbox image k3s is given: UserArgs' --pause-image,
	// else the config's; "" when neither names one (k3s's default).
	PauseImage string
	// Snapshotter is the containerd snapshotter k3s is given: UserArgs'
	// --snapshotter, else what SetSnapshotter set; "" is k3s's default
	// (overlayfs).
	Snapshotter string

	own             []string // argv before UserArgs: role and nodeboot's flags
	user            []string // UserArgs
	userSnapshotter bool     // UserArgs name a --snapshotter
	dropin          []byte
	tokenFile       string // agent: the token file nodeboot writes ("" when the user passes theirs)
	token           []byte
}

// WatchKubeconfig is the kubeconfig to watch the node with once k3s has
// written it: the admin one for a server, the kubelet's for an agent (node
// credentials may read their own Node and Lease).
func (c *K3sCommand) WatchKubeconfig() string {
	if c.AdminKubeconfig != "" {
		return c.AdminKubeconfig
	}
	return filepath.Join(c.DataDir, "agent", "kubelet.kubeconfig")
}

// AutoDeployDir is k3s server's auto-deploy directory (manifests it applies).
func (c *K3sCommand) AutoDeployDir() string { return filepath.Join(c.DataDir, "server", "manifests") }

// ErrK3sArgs is what a *K3sArgsError is: K3S-ARGS that nodeboot refuses.
var ErrK3sArgs = errors.New("k3s arguments refused")

// K3sArgsError is a K3S-ARGS argument nodeboot refuses, and why.
type K3sArgsError struct {
	Arg string // the argument as given, e.g. "--data-dir=rel"
	Msg string // what is wrong and what to do
}

func (e *K3sArgsError) Error() string { return fmt.Sprintf("K3S-ARGS %q: %s", e.Arg, e.Msg) }

// Is makes a *K3sArgsError match ErrK3sArgs.
func (e *K3sArgsError) Is(target error) bool { return target == ErrK3sArgs }

// PlanK3s decides the k3s command: the one place that reads what the user
// meant by K3S-ARGS (see parseK3sFlags for how they are read, as k3s
// reads them). A flag nodeboot sets itself and UserArgs set too is left
// to the user's value, which nodeboot then uses itself: a --data-dir gets
// the drop-in and the token file and is where nodeboot looks for the
// agent's kubeconfig and the auto-deploy directory; a --write-kubeconfig
// is the kubeconfig nodeboot waits for and watches the node with; a
// --node-name is the Node nodeboot watches. What nodeboot cannot follow is
// refused here, before anything starts, with a *K3sArgsError:
// --with-node-id (the Node's name is then unknown until k3s runs), a
// --node-name or agent --server that disagrees with the config's, a
// --write-kubeconfig for an agent (k3s agent has none), a relative or
// empty path, and a flag whose value nodeboot cannot tell apart from the
// next flag. PlanK3s writes nothing.
func PlanK3s(cfg K3sArgsConfig) (*K3sCommand, error) {
	if cfg.Profile == nil {
		return nil, errors.New("k3s args: no profile")
	}
	if cfg.DataDir == "" || !filepath.IsAbs(cfg.DataDir) {
		return nil, fmt.Errorf("k3s args: data dir %q is not an absolute path; pass an absolute --data-dir", cfg.DataDir)
	}
	if cfg.Role != "server" && cfg.Role != "agent" {
		return nil, fmt.Errorf("k3s args: role %q is neither server nor agent", cfg.Role)
	}
	user, err := parseK3sFlags(cfg.UserArgs)
	if err != nil {
		return nil, err
	}
	c := &K3sCommand{DataDir: cfg.DataDir, dropin: kubeletDropin(sandboxKubeletSettings(cfg.Profile), cfg.Profile)}
	args := []string{cfg.Role}

	// --data-dir: the user's, else nodeboot's.
	if f, ok := user.get("data-dir"); ok {
		if err := f.absPath("k3s's data dir: nodeboot writes its kubelet drop-in there"); err != nil {
			return nil, err
		}
		c.DataDir = f.value
	} else {
		args = append(args, "--data-dir", cfg.DataDir)
	}

	switch cfg.Role {
	case "server":
		if f, ok := user.get("write-kubeconfig"); ok {
			if err := f.absPath("the admin kubeconfig nodeboot waits for and watches the node with"); err != nil {
				return nil, err
			}
			c.AdminKubeconfig = f.value
		} else if cfg.Kubeconfig != "" {
			c.AdminKubeconfig = cfg.Kubeconfig
			args = append(args, "--write-kubeconfig", cfg.Kubeconfig)
		}
		if _, ok := user.get("write-kubeconfig-mode"); !ok && c.AdminKubeconfig != "" {
			args = append(args, "--write-kubeconfig-mode", "0600")
		}
	case "agent":
		if f, ok := user.get("write-kubeconfig"); ok {
			return nil, &K3sArgsError{f.arg, "k3s agent writes no admin kubeconfig (only k3s server has this flag); drop it, or run a server"}
		}
		server := cfg.ServerURL
		if f, ok := user.get("server"); ok {
			if server != "" && f.value != server {
				return nil, &K3sArgsError{f.arg, fmt.Sprintf("the server to join is %q already; give it once", server)}
			}
			server = f.value
		} else if server != "" {
			args = append(args, "--server", server)
		}
		if server == "" {
			return nil, errors.New("k3s args: an agent needs the server's URL; pass --server https://HOST:6443")
		}
		if u, err := url.Parse(server); err != nil || u.Scheme != "https" || u.Host == "" {
			return nil, fmt.Errorf("k3s args: server URL %q is not an https://HOST:PORT URL; pass --server https://HOST:6443", server)
		}
		// The user's own --token or --token-file wins; do not make k3s
		// choose between two.
		_, userToken := user.get("token")
		_, userTokenFile := user.get("token-file")
		if !userToken && !userTokenFile {
			if cfg.Token == "" {
				return nil, errors.New("k3s args: an agent needs the cluster token; pass --token TOKEN (the server's <data-dir>/server/node-token)")
			}
			// On argv the token would be readable by every user
			// (/proc/PID/cmdline); a 0600 file is not.
			c.tokenFile = filepath.Join(c.DataDir, "nodeboot", "agent-token")
			c.token = []byte(cfg.Token + "\n")
			args = append(args, "--token-file", c.tokenFile)
		}
	}

	if f, ok := user.get("with-node-id"); ok && f.value != "false" {
		return nil, &K3sArgsError{f.arg, "k3s would append an ID to the node's name that is not known before it starts, and nodeboot watches the Node by its name; pass --node-name NAME with the name you want instead"}
	}
	c.NodeName = cfg.NodeName
	if f, ok := user.get("node-name"); ok {
		if f.value == "" {
			return nil, &K3sArgsError{f.arg, "the node name is empty; give a name, or drop the flag for the hostname"}
		}
		if c.NodeName != "" && f.value != c.NodeName {
			return nil, &K3sArgsError{f.arg, fmt.Sprintf("the node's name is %q already; give it once", c.NodeName)}
		}
		c.NodeName = f.value
	} else {
		if c.NodeName == "" {
			h, err := os.Hostname()
			if err != nil || h == "" {
				return nil, fmt.Errorf("k3s args: no node name and no hostname (%v); pass a node name", err)
			}
			// k3s names the node after the hostname in lower case.
			c.NodeName = strings.ToLower(h)
		}
		args = append(args, "--node-name", c.NodeName)
	}
	if f, ok := user.get("pause-image"); ok {
		c.PauseImage = f.value
	} else if cfg.PauseImage != "" {
		c.PauseImage = cfg.PauseImage
		args = append(args, "--pause-image", cfg.PauseImage)
	}
	if f, ok := user.get("snapshotter"); ok {
		c.Snapshotter, c.userSnapshotter = f.value, true
	}
	c.own, c.user = args, cfg.UserArgs
	c.Args = append(slices.Clip(args), cfg.UserArgs...)
	return c, nil
}

// SetSnapshotter gives k3s --snapshotter name, unless UserArgs name one,
// which stays (SetSnapshotter then returns false). The node decides it
// once its data dir exists, by probing the filesystem (package
// internal/snapshotter), after PlanK3s.
func (c *K3sCommand) SetSnapshotter(name string) bool {
	if c.userSnapshotter {
		return false
	}
	c.Snapshotter = name
	c.own = append(slices.Clip(c.own), "--snapshotter", name)
	c.Args = append(slices.Clip(c.own), c.user...)
	return true
}

// WriteFiles writes the files c's argv names below its data dir: the
// kubelet drop-in, and an agent's 0600 token file. They are written
// atomically and never through a symlink below the data dir.
func (c *K3sCommand) WriteFiles() error {
	if c.tokenFile != "" {
		if _, err := writeDataFile(c.DataDir, []string{"nodeboot"}, filepath.Base(c.tokenFile), c.token, 0o600); err != nil {
			return fmt.Errorf("k3s args: write the agent token: %w", err)
		}
	}
	if _, err := writeDataFile(c.DataDir, []string{"agent", "etc", "kubelet.conf.d"}, DropinName, c.dropin, 0o644); err != nil {
		return fmt.Errorf("k3s args: write the kubelet drop-in: %w", err)
	}
	return nil
}

// K3sArgs returns argv after the k3s binary: role, the sandbox kubelet
// arguments (each documented in docs/kubelet-args.md with why and how to
// override), then UserArgs; it is PlanK3s followed by WriteFiles.
func K3sArgs(cfg K3sArgsConfig) ([]string, error) {
	c, err := PlanK3s(cfg)
	if err != nil {
		return nil, err
	}
	if err := c.WriteFiles(); err != nil {
		return nil, err
	}
	return c.Args, nil
}

// kubeletDropin renders the KubeletConfiguration drop-in. It is written
// even with no settings, so that one left by an earlier run with another
// profile does not linger.
func kubeletDropin(set []kubeletSetting, p *profile.Profile) []byte {
	var b strings.Builder
	fmt.Fprintf(&b, "# Written by nodeboot for profile %q on every start; edits are lost.\n", p.Name)
	b.WriteString("# Why each setting is here, and how to override it: docs/kubelet-args.md.\n")
	b.WriteString("# Files that sort later in this directory, and --kubelet-arg flags, win.\n")
	b.WriteString("apiVersion: kubelet.config.k8s.io/v1beta1\nkind: KubeletConfiguration\n")
	for _, s := range set {
		fmt.Fprintf(&b, "# %s\n%s: %s\n", s.Why, s.Field, s.Value)
	}
	return []byte(b.String())
}

// writeDataFile writes name with data and mode perm into the directory
// elems below dataDir, creating what is missing (dataDir 0700, the rest
// 0755), and returns its path. dataDir is checked as sshd's StrictModes
// does (openPrivate); it may be reached through a symlink of root's or
// ours (a data dir moved to another disk often is); below it no symlink is
// followed, and the file is replaced atomically (see
// writeAtomic), so a link planted at its name is replaced, not written
// through.
func writeDataFile(dataDir string, elems []string, name string, data []byte, perm uint32) (string, error) {
	abs, err := filepath.Abs(dataDir)
	if err != nil {
		return "", fmt.Errorf("data dir %s: %w", dataDir, err)
	}
	t, _, err := openPrivate(abs, "k3s's --data-dir", true)
	if err != nil {
		return "", fmt.Errorf("k3s data dir (another user could plant the kubelet configuration k3s trusts): %w", err)
	}
	real := t.root
	defer t.close()
	dfd, err := t.walk(elems)
	if err != nil {
		return "", err
	}
	defer unix.Close(dfd)
	host := filepath.Join(append(append([]string{real}, elems...), name)...)
	if err := writeAtomic(dfd, name, host, data, perm); err != nil {
		return "", err
	}
	return host, nil
}
