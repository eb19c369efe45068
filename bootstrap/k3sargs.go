package bootstrap

import (
	"errors"
	"fmt"
	"net/url"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/nodeboot/nodeboot/profile"
)

// K3sArgsConfig describes the k3s nodeboot starts.
type K3sArgsConfig struct {
	Role      string // "server" or "agent"
	ServerURL string // agent: the server's https URL (required)
	Token     string // agent: the cluster token (required); passed as a 0600 file, not on argv
	DataDir   string // k3s --data-dir (absolute)
	// Kubeconfig is server's --write-kubeconfig (with --write-kubeconfig-mode
	// 0600); "" leaves k3s's default.
	Kubeconfig string
	NodeName   string           // --node-name; "" leaves k3s's default (the hostname)
	Profile    *profile.Profile // decides which sandbox settings kubelet needs
	// Root is the fake tree. The drop-in does not live there (kubelet reads
	// it through k3s's data dir); it is kept for callers that pass it.
	Root     string
	UserArgs []string // K3S-ARGS after --, appended last (so they win)
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

// K3sArgs returns argv after the k3s binary: role, the sandbox kubelet
// arguments (each documented in docs/kubelet-args.md with why and how to
// override), then UserArgs. Files it needs (a kubelet config drop-in, and
// for an agent a 0600 token file) are written under the data dir: the
// user's --data-dir from UserArgs if there is one, else DataDir. They are
// written atomically and never through a symlink.
func K3sArgs(cfg K3sArgsConfig) ([]string, error) {
	if cfg.Profile == nil {
		return nil, errors.New("k3s args: no profile")
	}
	if cfg.DataDir == "" || !filepath.IsAbs(cfg.DataDir) {
		return nil, fmt.Errorf("k3s args: data dir %q is not an absolute path; pass an absolute --data-dir", cfg.DataDir)
	}
	dataDir := cfg.DataDir
	if d, ok := flagValue(cfg.UserArgs, "--data-dir", "-d"); ok {
		if !filepath.IsAbs(d) {
			return nil, fmt.Errorf("k3s args: --data-dir %q after -- is not an absolute path; nodeboot writes its kubelet drop-in there, so use an absolute path", d)
		}
		dataDir = d
	}

	var args []string
	switch cfg.Role {
	case "server":
		args = append(args, "server", "--data-dir", cfg.DataDir)
		if cfg.Kubeconfig != "" {
			args = append(args, "--write-kubeconfig", cfg.Kubeconfig, "--write-kubeconfig-mode", "0600")
		}
	case "agent":
		if cfg.ServerURL == "" {
			return nil, errors.New("k3s args: an agent needs the server's URL; pass --server https://HOST:6443")
		}
		if u, err := url.Parse(cfg.ServerURL); err != nil || u.Scheme != "https" || u.Host == "" {
			return nil, fmt.Errorf("k3s args: server URL %q is not an https://HOST:PORT URL; pass --server https://HOST:6443", cfg.ServerURL)
		}
		args = append(args, "agent", "--data-dir", cfg.DataDir, "--server", cfg.ServerURL)
		// The user's own --token or --token-file wins; do not make k3s
		// choose between two.
		_, userToken := flagValue(cfg.UserArgs, "--token", "-t")
		_, userTokenFile := flagValue(cfg.UserArgs, "--token-file")
		if !userToken && !userTokenFile {
			if cfg.Token == "" {
				return nil, errors.New("k3s args: an agent needs the cluster token; pass --token TOKEN (the server's <data-dir>/server/node-token)")
			}
			// On argv the token would be readable by every user
			// (/proc/PID/cmdline); a 0600 file is not.
			f, err := writeDataFile(dataDir, []string{"nodeboot"}, "agent-token", []byte(cfg.Token+"\n"), 0o600)
			if err != nil {
				return nil, fmt.Errorf("k3s args: write the agent token: %w", err)
			}
			args = append(args, "--token-file", f)
		}
	default:
		return nil, fmt.Errorf("k3s args: role %q is neither server nor agent", cfg.Role)
	}
	if cfg.NodeName != "" {
		args = append(args, "--node-name", cfg.NodeName)
	}

	if _, err := writeDataFile(dataDir, []string{"agent", "etc", "kubelet.conf.d"}, DropinName,
		kubeletDropin(sandboxKubeletSettings(cfg.Profile), cfg.Profile), 0o644); err != nil {
		return nil, fmt.Errorf("k3s args: write the kubelet drop-in: %w", err)
	}
	return append(args, cfg.UserArgs...), nil
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

// flagValue finds the last value of a flag (any of names) in args, in the
// forms "--flag value", "--flag=value". Scanning stops at "--".
func flagValue(args []string, names ...string) (string, bool) {
	val, found := "", false
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			break
		}
		for _, n := range names {
			switch {
			case a == n:
				found = true
				if i+1 < len(args) {
					val = args[i+1]
					i++
				} else {
					val = ""
				}
			case strings.HasPrefix(a, n+"="):
				found, val = true, a[len(n)+1:]
			}
		}
	}
	return val, found
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
