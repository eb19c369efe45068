package bootstrap

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/nodeboot/nodeboot/profile"
)

func loadProfile(t *testing.T, name string) *profile.Profile {
	t.Helper()
	p, err := profile.Load(name)
	if err != nil {
		t.Fatalf("load profile %s: %v", name, err)
	}
	return p
}

func TestK3sArgs(t *testing.T) {
	k3s, empty := loadProfile(t, "k3s"), loadProfile(t, "empty")
	// A profile with the emulated cgroup2 but no mountinfo view: kubelet
	// runs on cgroup v2, but cAdvisor cannot find the rootfs.
	noMountinfo := loadProfile(t, "k3s")
	noMountinfo.Dynamic = slices.DeleteFunc(slices.Clone(noMountinfo.Dynamic), func(d profile.Dynamic) bool { return d.Kind == "mountinfo" })

	tests := []struct {
		name string
		cfg  func(dir string) K3sArgsConfig
		// want is argv; "DIR" stands for the test's data dir.
		want []string
		// settings are the drop-in's fields, in order.
		settings []string
		// dropinDir is where the drop-in goes when not DIR.
		dropinDir string
		// tokenFile: the agent's token is in DIR/nodeboot/agent-token.
		tokenFile bool
	}{
		{
			name: "server on the k3s profile needs no kubelet setting",
			cfg: func(dir string) K3sArgsConfig {
				return K3sArgsConfig{Role: "server", DataDir: dir, Kubeconfig: "/v/kubeconfig.yaml", NodeName: "n1", Profile: k3s}
			},
			want: []string{"server", "--data-dir", "DIR", "--write-kubeconfig", "/v/kubeconfig.yaml", "--write-kubeconfig-mode", "0600", "--node-name", "n1"},
		},
		{
			name: "server on the empty profile: cgroup v1 allowed, no rootfs capacity",
			cfg: func(dir string) K3sArgsConfig {
				return K3sArgsConfig{Role: "server", DataDir: dir, NodeName: "n1", Profile: empty}
			},
			want:     []string{"server", "--data-dir", "DIR", "--node-name", "n1"},
			settings: []string{"failCgroupV1: false", "localStorageCapacityIsolation: false"},
		},
		{
			name: "no mountinfo view: only the rootfs setting",
			cfg: func(dir string) K3sArgsConfig {
				return K3sArgsConfig{Role: "server", DataDir: dir, NodeName: "n1", Profile: noMountinfo}
			},
			want:     []string{"server", "--data-dir", "DIR", "--node-name", "n1"},
			settings: []string{"localStorageCapacityIsolation: false"},
		},
		{
			name: "user args come last; their --node-name is the name",
			cfg: func(dir string) K3sArgsConfig {
				return K3sArgsConfig{Role: "server", DataDir: dir, Profile: k3s,
					UserArgs: []string{"--disable=traefik", "--kubelet-arg=fail-cgroupv1=true", "--node-name", "mine"}}
			},
			want: []string{"server", "--data-dir", "DIR", "--disable=traefik", "--kubelet-arg=fail-cgroupv1=true", "--node-name", "mine"},
		},
		{
			name: "the user's --data-dir gets the drop-in",
			cfg: func(dir string) K3sArgsConfig {
				return K3sArgsConfig{Role: "server", DataDir: dir, NodeName: "n1", Profile: empty,
					UserArgs: []string{"--data-dir=" + filepath.Join(dir, "mine")}}
			},
			want:      []string{"server", "--node-name", "n1", "--data-dir=DIR/mine"},
			settings:  []string{"failCgroupV1: false", "localStorageCapacityIsolation: false"},
			dropinDir: "mine",
		},
		{
			name: "agent: token in a 0600 file, not on argv",
			cfg: func(dir string) K3sArgsConfig {
				return K3sArgsConfig{Role: "agent", DataDir: dir, ServerURL: "https://10.0.0.1:6443", Token: "K10secret::server:abc", NodeName: "a1", Profile: k3s}
			},
			want:      []string{"agent", "--data-dir", "DIR", "--server", "https://10.0.0.1:6443", "--token-file", "DIR/nodeboot/agent-token", "--node-name", "a1"},
			tokenFile: true,
		},
		{
			name: "agent: the user's --token wins",
			cfg: func(dir string) K3sArgsConfig {
				return K3sArgsConfig{Role: "agent", DataDir: dir, ServerURL: "https://10.0.0.1:6443", Token: "ignored", NodeName: "a1", Profile: k3s,
					UserArgs: []string{"--token", "theirs"}}
			},
			want: []string{"agent", "--data-dir", "DIR", "--server", "https://10.0.0.1:6443", "--node-name", "a1", "--token", "theirs"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			got, err := K3sArgs(tc.cfg(dir))
			if err != nil {
				t.Fatalf("K3sArgs: %v", err)
			}
			for i := range got {
				got[i] = strings.ReplaceAll(got[i], dir, "DIR")
			}
			if !slices.Equal(got, tc.want) {
				t.Errorf("argv\n got %q\nwant %q", got, tc.want)
			}
			dropin := filepath.Join(dir, tc.dropinDir, "agent", "etc", "kubelet.conf.d", DropinName)
			b, err := os.ReadFile(dropin)
			if err != nil {
				t.Fatalf("drop-in: %v", err)
			}
			var settings []string
			for _, l := range strings.Split(string(b), "\n") {
				if l != "" && !strings.HasPrefix(l, "#") && !strings.HasPrefix(l, "apiVersion:") && !strings.HasPrefix(l, "kind:") {
					settings = append(settings, l)
				}
			}
			if !slices.Equal(settings, tc.settings) {
				t.Errorf("drop-in settings %q, want %q\n%s", settings, tc.settings, b)
			}
			if !strings.Contains(string(b), "apiVersion: kubelet.config.k8s.io/v1beta1\nkind: KubeletConfiguration\n") {
				t.Errorf("drop-in is not a KubeletConfiguration:\n%s", b)
			}
			tf := filepath.Join(dir, "nodeboot", "agent-token")
			fi, err := os.Stat(tf)
			if tc.tokenFile {
				if err != nil {
					t.Fatalf("token file: %v", err)
				}
				if fi.Mode().Perm() != 0o600 {
					t.Errorf("token file mode %v, want 0600", fi.Mode().Perm())
				}
				if b, _ := os.ReadFile(tf); strings.TrimSpace(string(b)) != tc.cfg(dir).Token {
					t.Errorf("token file holds %q", b)
				}
			} else if err == nil {
				t.Errorf("token file %s written, want none", tf)
			}
		})
	}
}

func TestK3sArgsErrors(t *testing.T) {
	k3s := loadProfile(t, "k3s")
	tests := []struct {
		name string
		cfg  K3sArgsConfig
		want string
	}{
		{"bad role", K3sArgsConfig{Role: "worker", DataDir: "/x", Profile: k3s}, `role "worker" is neither server nor agent`},
		{"relative data dir", K3sArgsConfig{Role: "server", DataDir: "k3s", Profile: k3s}, `data dir "k3s" is not an absolute path`},
		{"no profile", K3sArgsConfig{Role: "server", DataDir: "/x"}, "no profile"},
		{"agent without server", K3sArgsConfig{Role: "agent", DataDir: "/x", Token: "t", Profile: k3s}, "pass --server https://HOST:6443"},
		{"agent with http server", K3sArgsConfig{Role: "agent", DataDir: "/x", ServerURL: "http://h:6443", Token: "t", Profile: k3s}, `"http://h:6443" is not an https://HOST:PORT URL`},
		{"agent without token", K3sArgsConfig{Role: "agent", DataDir: "/x", ServerURL: "https://h:6443", Profile: k3s}, "pass --token TOKEN"},
		{"relative user data dir", K3sArgsConfig{Role: "server", DataDir: "/x", Profile: k3s, UserArgs: []string{"-d", "rel"}}, `K3S-ARGS "-d rel": the path is relative`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := K3sArgs(tc.cfg)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("K3sArgs = %v, want an error containing %q", err, tc.want)
			}
		})
	}
}

// A symlink planted in the data dir is never followed: in a directory
// component it is refused, at the drop-in's own name it is replaced and
// its target left alone.
func TestK3sArgsSymlinks(t *testing.T) {
	k3s := loadProfile(t, "k3s")
	t.Run("directory component", func(t *testing.T) {
		dir, elsewhere := t.TempDir(), t.TempDir()
		if err := os.MkdirAll(filepath.Join(dir, "agent"), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink(elsewhere, filepath.Join(dir, "agent", "etc")); err != nil {
			t.Fatal(err)
		}
		_, err := K3sArgs(K3sArgsConfig{Role: "server", DataDir: dir, NodeName: "n1", Profile: k3s})
		if err == nil || !strings.Contains(err.Error(), "symlink") {
			t.Fatalf("K3sArgs = %v, want a symlink error", err)
		}
		if ents, _ := os.ReadDir(elsewhere); len(ents) != 0 {
			t.Errorf("wrote through the symlink: %v", ents)
		}
	})
	t.Run("the drop-in itself", func(t *testing.T) {
		dir := t.TempDir()
		victim := filepath.Join(t.TempDir(), "victim")
		if err := os.WriteFile(victim, []byte("keep"), 0o600); err != nil {
			t.Fatal(err)
		}
		d := filepath.Join(dir, "agent", "etc", "kubelet.conf.d")
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink(victim, filepath.Join(d, DropinName)); err != nil {
			t.Fatal(err)
		}
		if _, err := K3sArgs(K3sArgsConfig{Role: "server", DataDir: dir, NodeName: "n1", Profile: k3s}); err != nil {
			t.Fatalf("K3sArgs: %v", err)
		}
		if b, _ := os.ReadFile(victim); string(b) != "keep" {
			t.Errorf("symlink target rewritten: %q", b)
		}
		fi, err := os.Lstat(filepath.Join(d, DropinName))
		if err != nil || !fi.Mode().IsRegular() {
			t.Errorf("drop-in is %v (%v), want a regular file", fi, err)
		}
	})
}

// TestPlanK3s: whatever spelling k3s accepts for a flag nodeboot sets
// itself, the user's value (after --) is the one k3s gets and the one
// nodeboot uses; what nodeboot cannot follow is refused before anything
// runs.
func TestPlanK3s(t *testing.T) {
	k3s := loadProfile(t, "k3s")
	host, err := os.Hostname()
	if err != nil {
		t.Fatal(err)
	}
	const (
		dataDir = "/nb/k3s"
		kc      = "/nb/kubeconfig.yaml"
	)
	server := func(name string, user ...string) K3sArgsConfig {
		return K3sArgsConfig{Role: "server", DataDir: dataDir, Kubeconfig: kc, NodeName: name, Profile: k3s, UserArgs: user}
	}
	agent := func(user ...string) K3sArgsConfig {
		return K3sArgsConfig{Role: "agent", DataDir: dataDir, ServerURL: "https://10.0.0.1:6443", Token: "t", NodeName: "a1", Profile: k3s, UserArgs: user}
	}
	tests := []struct {
		name string
		cfg  K3sArgsConfig
		// What nodeboot uses: k3s's data dir, admin kubeconfig, node name.
		dataDir, kubeconfig, node string
		// nodeboot's own flags in argv before the user's (nil: none).
		own []string
	}{
		{"defaults", server("n1"), dataDir, kc, "n1",
			[]string{"--data-dir", dataDir, "--write-kubeconfig", kc, "--write-kubeconfig-mode", "0600", "--node-name", "n1"}},
		{"hostname", server(""), dataDir, kc, strings.ToLower(host),
			[]string{"--data-dir", dataDir, "--write-kubeconfig", kc, "--write-kubeconfig-mode", "0600", "--node-name", strings.ToLower(host)}},

		{"--data-dir D", server("n1", "--data-dir", "/d"), "/d", kc, "n1", []string{"--write-kubeconfig", kc, "--write-kubeconfig-mode", "0600", "--node-name", "n1"}},
		{"--data-dir=D", server("n1", "--data-dir=/d"), "/d", kc, "n1", nil},
		{"-data-dir D", server("n1", "-data-dir", "/d"), "/d", kc, "n1", nil},
		{"-data-dir=D", server("n1", "-data-dir=/d"), "/d", kc, "n1", nil},
		{"-d D", server("n1", "-d", "/d"), "/d", kc, "n1", nil},
		{"-d=D", server("n1", "-d=/d"), "/d", kc, "n1", nil},
		{"--d D", server("n1", "--d", "/d"), "/d", kc, "n1", nil},
		{"the last of two wins", server("n1", "--data-dir", "/a", "-d=/b"), "/b", kc, "n1", nil},
		{"after a bool flag", server("n1", "--cluster-init", "--data-dir", "/d"), "/d", kc, "n1", nil},
		{"a bool flag's =false", server("n1", "--cluster-init=false", "-d", "/d"), "/d", kc, "n1", nil},
		{"the value of another flag is not a flag", server("n1", "--node-label", "-d", "--token", "x"), dataDir, kc, "n1", nil},
		{"a flag of a newer k3s takes the next argument", server("n1", "--new-flag", "x", "-d", "/d"), "/d", kc, "n1", nil},
		{"after -- k3s reads no flag", server("n1", "--node-label=a=b", "--", "--data-dir", "/d"), dataDir, kc, "n1", nil},
		{"after a non-flag k3s reads no flag", server("n1", "extra", "--data-dir", "/d"), dataDir, kc, "n1", nil},

		{"--write-kubeconfig K", server("n1", "--write-kubeconfig", "/k"), dataDir, "/k", "n1",
			[]string{"--data-dir", dataDir, "--write-kubeconfig-mode", "0600", "--node-name", "n1"}},
		{"--write-kubeconfig=K", server("n1", "--write-kubeconfig=/k"), dataDir, "/k", "n1", nil},
		{"-write-kubeconfig K", server("n1", "-write-kubeconfig", "/k"), dataDir, "/k", "n1", nil},
		{"-o K", server("n1", "-o", "/k"), dataDir, "/k", "n1", nil},
		{"-o=K", server("n1", "-o=/k"), dataDir, "/k", "n1", nil},
		{"their mode", server("n1", "-o", "/k", "--write-kubeconfig-mode=0640"), dataDir, "/k", "n1",
			[]string{"--data-dir", dataDir, "--node-name", "n1"}},

		{"--node-name N", server("", "--node-name", "mine"), dataDir, kc, "mine",
			[]string{"--data-dir", dataDir, "--write-kubeconfig", kc, "--write-kubeconfig-mode", "0600"}},
		{"-node-name=N", server("", "-node-name=mine"), dataDir, kc, "mine", nil},
		{"the same name twice", server("mine", "--node-name=mine"), dataDir, kc, "mine", nil},
		{"--with-node-id=false", server("n1", "--with-node-id=false"), dataDir, kc, "n1", nil},

		{"agent: --data-dir", agent("-d", "/d"), "/d", "", "a1",
			[]string{"--server", "https://10.0.0.1:6443", "--token-file", "/d/nodeboot/agent-token", "--node-name", "a1"}},
		{"agent: the same --server", agent("-s", "https://10.0.0.1:6443"), dataDir, "", "a1",
			[]string{"--data-dir", dataDir, "--token-file", dataDir + "/nodeboot/agent-token", "--node-name", "a1"}},
		{"agent: their --token-file", agent("--token-file=/tok"), dataDir, "", "a1",
			[]string{"--data-dir", dataDir, "--server", "https://10.0.0.1:6443", "--node-name", "a1"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, err := PlanK3s(tc.cfg)
			if err != nil {
				t.Fatalf("PlanK3s: %v", err)
			}
			if c.DataDir != tc.dataDir || c.AdminKubeconfig != tc.kubeconfig || c.NodeName != tc.node {
				t.Errorf("data dir %q, kubeconfig %q, node %q; want %q, %q, %q", c.DataDir, c.AdminKubeconfig, c.NodeName, tc.dataDir, tc.kubeconfig, tc.node)
			}
			if !slices.Equal(c.Args[:1], []string{tc.cfg.Role}) || !slices.Equal(c.Args[len(c.Args)-len(tc.cfg.UserArgs):], tc.cfg.UserArgs) {
				t.Errorf("argv %q: want the role first and the user's arguments last, unchanged", c.Args)
			}
			own := c.Args[1 : len(c.Args)-len(tc.cfg.UserArgs)]
			if tc.own != nil && !slices.Equal(own, tc.own) {
				t.Errorf("nodeboot's flags %q, want %q", own, tc.own)
			}
			// nodeboot never passes a flag the user passes.
			for _, o := range own {
				if strings.HasPrefix(o, "--") {
					if f, ok := mustParse(t, tc.cfg.UserArgs)[k3sTracked[o[2:]]]; ok {
						t.Errorf("nodeboot passes %s too, and the user passes %s", o, f.arg)
					}
				}
			}
			wantWatch := tc.kubeconfig
			if tc.cfg.Role == "agent" {
				wantWatch = filepath.Join(tc.dataDir, "agent", "kubelet.kubeconfig")
			}
			if c.WatchKubeconfig() != wantWatch || c.AutoDeployDir() != filepath.Join(tc.dataDir, "server", "manifests") {
				t.Errorf("watch kubeconfig %q, auto-deploy dir %q; want %q and %s/server/manifests", c.WatchKubeconfig(), c.AutoDeployDir(), wantWatch, tc.dataDir)
			}
		})
	}
}

func mustParse(t *testing.T, args []string) k3sFlags {
	t.Helper()
	fs, err := parseK3sFlags(args)
	if err != nil {
		t.Fatal(err)
	}
	return fs
}

// TestPlanK3sRefuses: K3S-ARGS that would leave nodeboot waiting for a
// kubeconfig, a node or a data dir other than k3s's are refused, with an
// error that names the argument and what to do.
func TestPlanK3sRefuses(t *testing.T) {
	k3s := loadProfile(t, "k3s")
	server := func(name string, user ...string) K3sArgsConfig {
		return K3sArgsConfig{Role: "server", DataDir: "/nb/k3s", Kubeconfig: "/nb/kubeconfig.yaml", NodeName: name, Profile: k3s, UserArgs: user}
	}
	agent := func(user ...string) K3sArgsConfig {
		return K3sArgsConfig{Role: "agent", DataDir: "/nb/k3s", ServerURL: "https://10.0.0.1:6443", Token: "t", NodeName: "a1", Profile: k3s, UserArgs: user}
	}
	tests := []struct {
		name string
		cfg  K3sArgsConfig
		want string
	}{
		{"--with-node-id", server("n1", "--with-node-id"), `K3S-ARGS "--with-node-id": k3s would append an ID`},
		{"-with-node-id=true", server("n1", "-with-node-id=true"), `K3S-ARGS "-with-node-id=true": k3s would append an ID`},
		{"a bool flag's bad value", server("n1", "--with-node-id=maybe"), `K3S-ARGS "--with-node-id=maybe": "maybe" is not a bool`},
		{"another node name", server("n1", "--node-name", "n2"), `K3S-ARGS "--node-name n2": the node's name is "n1" already; give it once`},
		{"an empty node name", server("", "--node-name="), `K3S-ARGS "--node-name=": the node name is empty`},
		{"a relative data dir", server("n1", "--data-dir=rel"), `K3S-ARGS "--data-dir=rel": the path is relative`},
		{"an empty data dir", server("n1", "-d", ""), `K3S-ARGS "-d ": the path is empty`},
		{"no value", server("n1", "--node-label=a", "--data-dir"), `K3S-ARGS "--data-dir": the flag needs a value`},
		{"a relative kubeconfig", server("n1", "-o", "k.yaml"), `K3S-ARGS "-o k.yaml": the path is relative`},
		{"an agent's kubeconfig", agent("--write-kubeconfig=/k"), `K3S-ARGS "--write-kubeconfig=/k": k3s agent writes no admin kubeconfig`},
		{"an agent's other server", agent("--server", "https://10.9.9.9:6443"), `K3S-ARGS "--server https://10.9.9.9:6443": the server to join is "https://10.0.0.1:6443" already`},
		{"a flag of a newer k3s", server("n1", "--new-flag", "--data-dir", "/d"), `K3S-ARGS "--new-flag --data-dir": nodeboot cannot tell whether --new-flag takes a value`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, err := PlanK3s(tc.cfg)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("PlanK3s = %+v, %v; want an error containing %q", c, err, tc.want)
			}
			if !errors.Is(err, ErrK3sArgs) {
				t.Errorf("%v is not ErrK3sArgs", err)
			}
		})
	}
}

// TestK3sFlagTables: every tracked flag is a k3s flag of the right kind,
// and no flag is both bool and not.
func TestK3sFlagTables(t *testing.T) {
	for name := range k3sBoolFlags {
		if k3sValueFlags[name] {
			t.Errorf("%s is both a bool flag and a value flag", name)
		}
	}
	for name, long := range k3sTracked {
		if !k3sBoolFlags[name] && !k3sValueFlags[name] {
			t.Errorf("tracked flag %s is not a k3s flag", name)
		}
		if _, ok := k3sTracked[long]; !ok {
			t.Errorf("tracked flag %s maps to %s, which is not tracked", name, long)
		}
	}
	if !k3sBoolFlags["with-node-id"] {
		t.Error("with-node-id is a bool flag")
	}
}

// TestPlanK3sImages: nodeboot's pause image and the snapshotter it
// chooses are k3s flags unless K3S-ARGS name their own, which win and
// which nodeboot reports as the ones in use.
func TestPlanK3sImages(t *testing.T) {
	k3s := loadProfile(t, "k3s")
	cfg := func(user ...string) K3sArgsConfig {
		return K3sArgsConfig{Role: "server", DataDir: "/nb/k3s", NodeName: "n1", Profile: k3s,
			PauseImage: "nodeboot.local/pause:v1", UserArgs: user}
	}
	for _, tc := range []struct {
		name              string
		cfg               K3sArgsConfig
		pause, snap       string // what K3sCommand says k3s gets
		own               []string
		setSnap           bool // SetSnapshotter("native") applies
		ownAfterSetSuffix []string
	}{
		{"ours", cfg(), "nodeboot.local/pause:v1", "native",
			[]string{"--data-dir", "/nb/k3s", "--node-name", "n1", "--pause-image", "nodeboot.local/pause:v1"}, true,
			[]string{"--pause-image", "nodeboot.local/pause:v1", "--snapshotter", "native"}},
		{"theirs", cfg("--pause-image=reg.example/pause:3.10", "--snapshotter", "overlayfs"), "reg.example/pause:3.10", "overlayfs",
			[]string{"--data-dir", "/nb/k3s", "--node-name", "n1"}, false, []string{"--node-name", "n1"}},
		{"none", K3sArgsConfig{Role: "server", DataDir: "/nb/k3s", NodeName: "n1", Profile: k3s}, "", "native",
			[]string{"--data-dir", "/nb/k3s", "--node-name", "n1"}, true, []string{"--node-name", "n1", "--snapshotter", "native"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := PlanK3s(tc.cfg)
			if err != nil {
				t.Fatal(err)
			}
			own := func() []string { return c.Args[1 : len(c.Args)-len(tc.cfg.UserArgs)] }
			if !slices.Equal(own(), tc.own) || c.PauseImage != tc.pause {
				t.Errorf("own flags %q, pause image %q; want %q, %q", own(), c.PauseImage, tc.own, tc.pause)
			}
			if got := c.SetSnapshotter("native"); got != tc.setSnap {
				t.Errorf("SetSnapshotter: %v, want %v", got, tc.setSnap)
			}
			if c.Snapshotter != tc.snap || !slices.Equal(own()[len(own())-len(tc.ownAfterSetSuffix):], tc.ownAfterSetSuffix) {
				t.Errorf("after SetSnapshotter: snapshotter %q, own flags %q; want %q, ending %q", c.Snapshotter, own(), tc.snap, tc.ownAfterSetSuffix)
			}
			if !slices.Equal(c.Args[len(c.Args)-len(tc.cfg.UserArgs):], tc.cfg.UserArgs) {
				t.Errorf("argv %q does not end with the user's %q", c.Args, tc.cfg.UserArgs)
			}
		})
	}
}
