package profile

import (
	"reflect"
	"strings"
	"testing"
)

// TestBuiltinK3s checks the k3s profile against what kubelet, kube-proxy,
// k3s and runc read and write (docs/profiles.md).
func TestBuiltinK3s(t *testing.T) {
	p, err := Load("k3s")
	if err != nil {
		t.Fatalf("Load(k3s): %v", err)
	}
	files := map[string]File{}
	for _, f := range p.Files {
		files[f.Path] = f
	}

	// Files with fixed values that a component writes: the value is what it
	// wants, and the owner can write the file.
	written := map[string]string{
		// kubelet setupKernelTunables.
		"/proc/sys/vm/overcommit_memory":      "1\n",
		"/proc/sys/vm/panic_on_oom":           "0\n",
		"/proc/sys/kernel/panic":              "10\n",
		"/proc/sys/kernel/panic_on_oops":      "1\n",
		"/proc/sys/kernel/keys/root_maxkeys":  "1000000\n",
		"/proc/sys/kernel/keys/root_maxbytes": "25000000\n",
		// kube-proxy and k3s syssetup.
		"/proc/sys/net/netfilter/nf_conntrack_max":                     "131072\n",
		"/proc/sys/net/netfilter/nf_conntrack_tcp_timeout_established": "86400\n",
		"/proc/sys/net/netfilter/nf_conntrack_tcp_timeout_close_wait":  "3600\n",
		"/proc/sys/net/netfilter/nf_conntrack_tcp_be_liberal":          "0\n",
		"/proc/sys/net/netfilter/nf_conntrack_udp_timeout":             "30\n",
		"/proc/sys/net/netfilter/nf_conntrack_udp_timeout_stream":      "120\n",
		"/sys/module/nf_conntrack/parameters/hashsize":                 "32768\n",
		"/proc/sys/net/bridge/bridge-nf-call-iptables":                 "1\n",
		"/proc/sys/net/bridge/bridge-nf-call-ip6tables":                "1\n",
		"/proc/sys/net/ipv4/conf/all/forwarding":                       "1\n",
		"/proc/sys/net/ipv4/conf/default/forwarding":                   "1\n",
		"/proc/sys/net/ipv4/conf/all/route_localnet":                   "1\n",
		"/proc/sys/net/ipv4/conf/default/route_localnet":               "0\n",
		"/proc/sys/net/ipv6/conf/all/forwarding":                       "1\n",
		"/proc/sys/net/ipv6/conf/default/forwarding":                   "1\n",
		"/proc/sys/net/core/devconf_inherit_init_net":                  "0\n",
		"/proc/sys/net/ipv4/ip_forward":                                "1\n",
		// runc, in each pod, when the kernel is >= 4.11.
		"/proc/sys/net/ipv4/ip_unprivileged_port_start": "1024\n",
		"/proc/sys/net/ipv4/ping_group_range":           "1\t0\n",
	}
	for path, want := range written {
		f, ok := files[path]
		if !ok {
			t.Errorf("%s is missing", path)
			continue
		}
		if f.Dir || f.CopyFromHost || f.Generate != "" || f.Content != want {
			t.Errorf("%s = %+v, want the literal content %q", path, f, want)
		}
		if f.Perm() != 0o644 {
			t.Errorf("%s has mode %#o, want 0644 so that kubelet's O_WRONLY|O_TRUNC writes succeed", path, f.Perm())
		}
	}

	copied := map[string]string{
		"/proc/sys/kernel/pid_max":     "content",
		"/proc/sys/kernel/threads-max": "content",
		"/proc/sys/kernel/osrelease":   GenerateUnameRelease,
	}
	for path, fallback := range copied {
		f, ok := files[path]
		switch {
		case !ok:
			t.Errorf("%s is missing", path)
		case !f.CopyFromHost:
			t.Errorf("%s is not copied from the host", path)
		case fallback == "content" && f.Content == "":
			t.Errorf("%s has no fallback content", path)
		case fallback != "content" && f.Generate != fallback:
			t.Errorf("%s falls back to generate %q, want %q", path, f.Generate, fallback)
		}
	}
	if f := files["/proc/sys/kernel/random/boot_id"]; f.Generate != GenerateUUID {
		t.Errorf("boot_id = %+v, want generate: uuid", f)
	}

	for _, m := range []string{"overlay", "nf_conntrack", "br_netfilter", "iptable_nat", "ip6table_nat", "iptable_filter", "xt_conntrack"} {
		if f, ok := files["/sys/module/"+m]; !ok || !f.Dir {
			t.Errorf("/sys/module/%s is not a directory entry", m)
		}
	}

	dyn := map[string]string{}
	for _, d := range p.Dynamic {
		dyn[d.Path] = d.Kind
	}
	wantDyn := map[string]string{
		"/sys/fs/cgroup":       KindCgroup2,
		"/proc/self/mountinfo": KindMountinfo,
		"/proc/diskstats":      KindDiskstats,
		"/proc/partitions":     KindPartitions,
		"/proc/swaps":          KindSwaps,
		"/dev/kmsg":            KindKmsg,
	}
	if !reflect.DeepEqual(dyn, wantDyn) {
		t.Errorf("dynamic = %v, want %v", dyn, wantDyn)
	}
	if want := []string{"/proc/sys", "/sys/module"}; !reflect.DeepEqual(p.Redirects, want) {
		t.Errorf("redirects = %q, want %q", p.Redirects, want)
	}
	if want := []string{"/sys/fs/cgroup=cgroup2", "9p=ext4", "overlay=ext4"}; !reflect.DeepEqual(p.FSTypes, want) {
		t.Errorf("fstypes = %q, want %q", p.FSTypes, want)
	}
	for _, f := range p.Files {
		if f.Reason == "" {
			t.Errorf("%s has no reason; say which component reads it", f.Path)
		}
	}
	if _, err := p.Rules("/var/lib/nodeboot/root"); err != nil {
		t.Errorf("Rules: %v", err)
	}
}

func TestList(t *testing.T) {
	infos := List()
	var names []string
	for _, in := range infos {
		names = append(names, in.Name)
		if in.Description == "" || strings.HasPrefix(in.Description, "(invalid") {
			t.Errorf("built-in %s: description %q", in.Name, in.Description)
		}
		if in.Source != builtinPrefix+in.Name {
			t.Errorf("built-in %s: source %q", in.Name, in.Source)
		}
		// Every built-in loads and validates with its chain.
		if _, err := Load(in.Name); err != nil {
			t.Errorf("Load(%s): %v", in.Name, err)
		}
	}
	if want := []string{"empty", "k3s"}; !reflect.DeepEqual(names, want) {
		t.Errorf("List names = %q, want %q", names, want)
	}
}

// TestYAMLRoundTrip checks that what "nodeboot profile show" prints parses
// back to the same profile.
func TestYAMLRoundTrip(t *testing.T) {
	tricky := &Profile{
		Name:        "tricky",
		Description: "yes: it's \"quoted\" # not a comment",
		Files: []File{
			{Path: "/proc/sys/a", Content: "1\t0\n"},
			{Path: "/proc/sys/b", Content: "üñí\x01\\ \"x\"\n", Mode: "0600", Reason: "on"},
			{Path: "/proc/sys/c c", Generate: GenerateUUID},
			{Path: "/proc/sys/d", Dir: true, Mode: "0700"},
			{Path: "/proc/sys/e", CopyFromHost: true, Content: "no"},
		},
		Dynamic:      []Dynamic{{Path: "/dev/kmsg", Kind: KindKmsg, Reason: "null"}},
		Redirects:    []string{"/proc/sys", "/dev/kmsg"},
		FSTypes:      []string{"9p=ext4"},
		AllowIOUring: true,
	}
	profiles := []*Profile{tricky}
	for _, in := range List() {
		p, err := Load(in.Name)
		if err != nil {
			t.Fatal(err)
		}
		profiles = append(profiles, p)
	}
	strip := func(p *Profile) Profile {
		q := *p
		q.Source, q.Chain = "", nil
		q.Files = append([]File(nil), p.Files...)
		for i := range q.Files {
			q.Files[i].origin = origin{}
		}
		q.Dynamic = append([]Dynamic(nil), p.Dynamic...)
		for i := range q.Dynamic {
			q.Dynamic[i].origin = origin{}
		}
		return q
	}
	for _, p := range profiles {
		t.Run(p.Name, func(t *testing.T) {
			out := p.YAML()
			back, err := Parse(out, "shown.yaml")
			if err != nil {
				t.Fatalf("Parse(YAML()): %v\n%s", err, out)
			}
			if got, want := strip(back), strip(p); !reflect.DeepEqual(got, want) {
				t.Errorf("round trip differs:\n got %+v\nwant %+v\n%s", got, want, out)
			}
		})
	}
}
