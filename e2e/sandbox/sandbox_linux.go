package sandbox

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"

	"golang.org/x/sys/unix"
)

// EnvSpec carries the JSON Spec from Command to the helper.
const EnvSpec = "NODEBOOT_E2E_SANDBOX_SPEC"

// Spec says what the sandbox takes away. The zero Spec takes nothing away;
// GVisor takes away everything gVisor lacks.
type Spec struct {
	// ProcSys replaces /proc/sys with gVisor's subset (read-only).
	ProcSys bool `json:"procSys"`
	// Cgroups unmounts every cgroup filesystem; /sys/fs/cgroup is empty.
	Cgroups bool `json:"cgroups"`
	// Dev replaces /dev with a minimal one without /dev/kmsg.
	Dev bool `json:"dev"`
	// ProcFiles hides /proc/diskstats, /proc/partitions and /proc/swaps.
	ProcFiles bool `json:"procFiles"`

	// PrivateRun mounts an empty tmpfs on /run: what k3s keeps there
	// (/run/k3s/containerd, /run/flannel) is then the sandbox's own, as
	// on a machine of its own.
	PrivateRun bool `json:"privateRun,omitempty"`
	// Binds are bind mounts made last, Source onto Target: a node's own
	// copy of a directory that every k3s on a machine shares
	// (/var/lib/kubelet, /var/lib/cni, /etc/rancher). A missing Target is
	// created (0755, on the host's filesystem: k3s would create it there
	// anyway); Source must exist.
	Binds []Bind `json:"binds,omitempty"`

	// CallerNS is the caller's mount namespace (set by Command): Setup
	// refuses to run in it.
	CallerNS string `json:"callerNS,omitempty"`
}

// Bind is one bind mount of Spec.Binds.
type Bind struct {
	Source string `json:"source"`
	Target string `json:"target"`
}

// GVisor is the full sandbox.
var GVisor = Spec{ProcSys: true, Cgroups: true, Dev: true, ProcFiles: true}

// Options of Command.
type Options struct {
	// NetNS is the network namespace to join, a path such as
	// /run/netns/NAME; "" keeps the caller's.
	NetNS string
	// Helper is the binary that calls Main; "" means the running
	// executable.
	Helper string
	Spec   Spec
}

// Command returns the command that runs argv in the sandbox. The caller
// sets Stdout, Stderr, Env (EnvSpec is added) and SysProcAttr as usual.
func Command(opts Options, argv ...string) (*exec.Cmd, error) {
	if len(argv) == 0 {
		return nil, errors.New("sandbox: empty command")
	}
	helper := opts.Helper
	if helper == "" {
		exe, err := os.Executable()
		if err != nil {
			return nil, fmt.Errorf("sandbox: find helper: %w", err)
		}
		helper = exe
	}
	opts.Spec.CallerNS, _ = os.Readlink("/proc/self/ns/mnt")
	spec, err := json.Marshal(opts.Spec)
	if err != nil {
		return nil, err
	}
	var chain []string
	if opts.NetNS != "" {
		chain = append(chain, "nsenter", "--net="+opts.NetNS, "--")
	}
	chain = append(chain, "unshare", "--mount", "--propagation", "private", "--", helper)
	chain = append(chain, argv...)
	path, err := exec.LookPath(chain[0])
	if err != nil {
		return nil, fmt.Errorf("sandbox: %w", err)
	}
	cmd := &exec.Cmd{Path: path, Args: chain}
	cmd.Env = append(os.Environ(), EnvSpec+"="+string(spec))
	return cmd, nil
}

// Main sets up the sandbox and execs os.Args[1:] when EnvSpec is set, and
// returns at once otherwise. Call it first thing in main or TestMain. On
// failure it prints the error and exits 125.
func Main() {
	raw, ok := os.LookupEnv(EnvSpec)
	if !ok {
		// A test binary is run with -test.* flags, or none. A command
		// here means a sandbox re-exec whose environment lost EnvSpec:
		// going on would run the whole test suite inside the caller's
		// test, against the host.
		if len(os.Args) > 1 && !strings.HasPrefix(os.Args[1], "-") {
			fmt.Fprintf(os.Stderr, "sandbox: asked to run %q as the sandbox helper, but %s is not set (was the environment replaced?); refusing to run the test suite instead\n", os.Args[1:], EnvSpec)
			os.Exit(125)
		}
		return
	}
	if err := run(raw, os.Args[1:]); err != nil {
		fmt.Fprintf(os.Stderr, "sandbox: %v\n", err)
		os.Exit(125)
	}
}

func run(raw string, argv []string) error {
	var spec Spec
	if err := json.Unmarshal([]byte(raw), &spec); err != nil {
		return fmt.Errorf("parse %s: %w", EnvSpec, err)
	}
	if len(argv) == 0 {
		return errors.New("no command")
	}
	if err := Setup(spec); err != nil {
		return err
	}
	path, err := exec.LookPath(argv[0])
	if err != nil {
		return err
	}
	env := make([]string, 0, len(os.Environ()))
	for _, e := range os.Environ() {
		if !strings.HasPrefix(e, EnvSpec+"=") {
			env = append(env, e)
		}
	}
	return fmt.Errorf("exec %s: %w", path, unix.Exec(path, argv, env))
}

// Setup changes the mounts of the calling process as spec says.
//
// Precondition: the process is alone in a mount namespace whose mounts are
// all private (unshare --mount --propagation private). Setup refuses to run
// in the mount namespace of the caller of Command, or of PID 1.
func Setup(spec Spec) error {
	self, err := os.Readlink("/proc/self/ns/mnt")
	if err != nil {
		return fmt.Errorf("refusing to change mounts: %w", err)
	}
	init, _ := os.Readlink("/proc/1/ns/mnt") // unreadable in some containers
	if spec.CallerNS == "" || self == spec.CallerNS || self == init {
		return fmt.Errorf("refusing to change mounts: not in a private mount namespace (self %s, caller %q, pid 1 %q)", self, spec.CallerNS, init)
	}
	// Belt and braces: nothing below may propagate anywhere.
	if err := unix.Mount("", "/", "", unix.MS_REC|unix.MS_PRIVATE, ""); err != nil {
		return fmt.Errorf("make / rprivate: %w", err)
	}
	if spec.ProcSys {
		if err := maskProcSys(); err != nil {
			return err
		}
	}
	if spec.Cgroups {
		if err := removeCgroups(); err != nil {
			return err
		}
	}
	if spec.Dev {
		if err := minimalDev(); err != nil {
			return err
		}
	}
	if spec.ProcFiles {
		for _, p := range []string{"/proc/diskstats", "/proc/partitions", "/proc/swaps"} {
			if err := unix.Mount("/dev/null", p, "", unix.MS_BIND, ""); err != nil {
				return fmt.Errorf("hide %s: %w", p, err)
			}
		}
	}
	if spec.PrivateRun {
		if err := unix.Mount("tmpfs", "/run", "tmpfs", unix.MS_NOSUID|unix.MS_NODEV, "mode=0755"); err != nil {
			return fmt.Errorf("private /run: %w", err)
		}
	}
	for _, b := range spec.Binds {
		if !filepath.IsAbs(b.Source) || !filepath.IsAbs(b.Target) {
			return fmt.Errorf("bind %s on %s: both must be absolute", b.Source, b.Target)
		}
		if err := os.MkdirAll(b.Target, 0o755); err != nil {
			return fmt.Errorf("bind %s on %s: %w", b.Source, b.Target, err)
		}
		if err := unix.Mount(b.Source, b.Target, "", unix.MS_BIND|unix.MS_REC, ""); err != nil {
			return fmt.Errorf("bind %s on %s: %w", b.Source, b.Target, err)
		}
	}
	return nil
}

// gvisorProcSys lists the /proc/sys entries gVisor provides (pkg/sentry/fsimpl/proc
// tasks_sys.go and sys_net.go); entries the host lacks are left out.
var gvisorProcSys = []string{
	"kernel/hostname",
	"kernel/domainname",
	"kernel/pid_max",
	"kernel/cap_last_cap",
	"kernel/keys/maxkeys",
	"kernel/osrelease",
	"kernel/ostype",
	"kernel/shmall",
	"kernel/shmmax",
	"kernel/shmmni",
	"kernel/msgmax",
	"kernel/msgmnb",
	"kernel/msgmni",
	"kernel/sem",
	"kernel/core_pattern",
	"kernel/yama/ptrace_scope",
	"vm/max_map_count",
	"vm/mmap_min_addr",
	"fs/nr_open",
	"fs/pipe-max-size",
	"net/core/default_qdisc",
	"net/core/message_burst",
	"net/core/message_cost",
	"net/core/optmem_max",
	"net/core/rmem_default",
	"net/core/rmem_max",
	"net/core/somaxconn",
	"net/core/wmem_default",
	"net/core/wmem_max",
	"net/ipv4/ip_forward",
	"net/ipv4/ip_local_port_range",
	"net/ipv4/ip_local_reserved_ports",
	"net/ipv4/ipfrag_time",
	"net/ipv4/ip_nonlocal_bind",
	"net/ipv4/ip_no_pmtu_disc",
	"net/ipv4/tcp_allowed_congestion_control",
	"net/ipv4/tcp_available_congestion_control",
	"net/ipv4/tcp_base_mss",
	"net/ipv4/tcp_congestion_control",
	"net/ipv4/tcp_dsack",
	"net/ipv4/tcp_early_retrans",
	"net/ipv4/tcp_fack",
	"net/ipv4/tcp_fin_timeout",
	"net/ipv4/tcp_keepalive_intvl",
	"net/ipv4/tcp_keepalive_probes",
	"net/ipv4/tcp_keepalive_time",
	"net/ipv4/tcp_mtu_probing",
	"net/ipv4/tcp_no_metrics_save",
	"net/ipv4/tcp_probe_interval",
	"net/ipv4/tcp_probe_threshold",
	"net/ipv4/tcp_recovery",
	"net/ipv4/tcp_rmem",
	"net/ipv4/tcp_sack",
	"net/ipv4/tcp_syn_retries",
	"net/ipv4/tcp_timestamps",
	"net/ipv4/tcp_wmem",
	"net/ipv6/conf/all/disable_ipv6",
	"net/ipv6/conf/default/disable_ipv6",
}

// maskProcSys mounts gVisor's /proc/sys subset over /proc/sys.
func maskProcSys() error {
	vals := map[string][]byte{}
	for _, p := range gvisorProcSys {
		b, err := os.ReadFile("/proc/sys/" + p)
		if err == nil {
			vals[p] = b
		}
	}
	// gVisor pins overcommit_memory to 0 and makes it read-only.
	vals["vm/overcommit_memory"] = []byte("0\n")
	if err := unix.Mount("tmpfs", "/proc/sys", "tmpfs", unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, "mode=0555"); err != nil {
		return fmt.Errorf("mount tmpfs on /proc/sys: %w", err)
	}
	keys := make([]string, 0, len(vals))
	for k := range vals {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		name := filepath.Join("/proc/sys", k)
		if err := os.MkdirAll(filepath.Dir(name), 0o555); err != nil {
			return err
		}
		mode := os.FileMode(0o644)
		if k == "vm/overcommit_memory" {
			mode = 0o444
		}
		if err := os.WriteFile(name, vals[k], mode); err != nil {
			return err
		}
		if err := os.Chmod(name, mode); err != nil {
			return err
		}
	}
	if err := unix.Mount("", "/proc/sys", "", unix.MS_REMOUNT|unix.MS_RDONLY|unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, ""); err != nil {
		return fmt.Errorf("remount /proc/sys read-only: %w", err)
	}
	return nil
}

// MountPoints returns the mount points at or below dir, deepest first.
func MountPoints(dir string) ([]string, error) {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []string
	s := bufio.NewScanner(f)
	s.Buffer(make([]byte, 64<<10), 1<<20)
	for s.Scan() {
		fields := strings.Fields(s.Text())
		if len(fields) < 5 {
			continue
		}
		mp := unescape(fields[4])
		if mp == dir || strings.HasPrefix(mp, dir+"/") {
			out = append(out, mp)
		}
	}
	// Deepest first; later mounts over the same point come later in the file.
	sort.SliceStable(out, func(i, j int) bool { return strings.Count(out[i], "/") > strings.Count(out[j], "/") })
	return out, s.Err()
}

// unescape undoes mountinfo's octal escapes (\040 for space, ...).
func unescape(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			var v int
			if _, err := fmt.Sscanf(s[i+1:i+4], "%03o", &v); err == nil {
				b.WriteByte(byte(v))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// UnmountUnder detaches every mount at or below dir, deepest first, and
// fails naming what is left when mounts remain after a few rounds.
func UnmountUnder(dir string) error {
	for try := 0; try < 10; try++ {
		mps, err := MountPoints(dir)
		if err != nil {
			return err
		}
		if len(mps) == 0 {
			return nil
		}
		for _, mp := range mps {
			_ = unix.Unmount(mp, unix.MNT_DETACH)
		}
	}
	mps, _ := MountPoints(dir)
	return fmt.Errorf("mounts left under %s: %v", dir, mps)
}

// removeCgroups unmounts everything at and below /sys/fs/cgroup.
func removeCgroups() error {
	const dir = "/sys/fs/cgroup"
	if err := UnmountUnder(dir); err != nil {
		return err
	}
	ents, err := os.ReadDir(dir)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	if len(ents) > 0 {
		if err := unix.Mount("tmpfs", dir, "tmpfs", unix.MS_RDONLY|unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, "mode=0555"); err != nil {
			return fmt.Errorf("mount empty tmpfs on %s: %w", dir, err)
		}
	}
	return nil
}

// minimalDev replaces /dev with a tmpfs holding the nodes gVisor has.
func minimalDev() error {
	// Keep a handle on the old /dev (a bind mount elsewhere) before covering
	// it, bind the nodes from there, then drop it.
	old, err := os.MkdirTemp("", "sandbox-olddev-")
	if err != nil {
		return err
	}
	defer os.Remove(old)
	if err := unix.Mount("/dev", old, "", unix.MS_BIND|unix.MS_REC, ""); err != nil {
		return fmt.Errorf("bind old /dev: %w", err)
	}
	defer unix.Unmount(old, unix.MNT_DETACH)
	if err := unix.Mount("tmpfs", "/dev", "tmpfs", unix.MS_NOSUID|unix.MS_NOEXEC, "mode=0755"); err != nil {
		return fmt.Errorf("mount tmpfs on /dev: %w", err)
	}
	for _, n := range []string{"null", "zero", "full", "random", "urandom", "tty"} {
		dst := filepath.Join("/dev", n)
		if err := os.WriteFile(dst, nil, 0o666); err != nil {
			return err
		}
		if err := unix.Mount(filepath.Join(old, n), dst, "", unix.MS_BIND, ""); err != nil {
			return fmt.Errorf("bind /dev/%s: %w", n, err)
		}
	}
	for _, d := range []string{"pts", "shm"} {
		dst := filepath.Join("/dev", d)
		if err := os.Mkdir(dst, 0o755); err != nil {
			return err
		}
		if err := unix.Mount(filepath.Join(old, d), dst, "", unix.MS_BIND|unix.MS_REC, ""); err != nil && !errors.Is(err, unix.ENOENT) {
			return fmt.Errorf("bind /dev/%s: %w", d, err)
		}
	}
	links := map[string]string{
		"ptmx": "pts/ptmx", "fd": "/proc/self/fd",
		"stdin": "/proc/self/fd/0", "stdout": "/proc/self/fd/1", "stderr": "/proc/self/fd/2",
	}
	for name, target := range links {
		if err := os.Symlink(target, filepath.Join("/dev", name)); err != nil {
			return err
		}
	}
	return nil
}
