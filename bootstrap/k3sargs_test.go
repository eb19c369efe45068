package bootstrap

import (
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
				return K3sArgsConfig{Role: "server", DataDir: dir, Profile: empty}
			},
			want:     []string{"server", "--data-dir", "DIR"},
			settings: []string{"failCgroupV1: false", "localStorageCapacityIsolation: false"},
		},
		{
			name: "no mountinfo view: only the rootfs setting",
			cfg: func(dir string) K3sArgsConfig {
				return K3sArgsConfig{Role: "server", DataDir: dir, Profile: noMountinfo}
			},
			want:     []string{"server", "--data-dir", "DIR"},
			settings: []string{"localStorageCapacityIsolation: false"},
		},
		{
			name: "user args come last",
			cfg: func(dir string) K3sArgsConfig {
				return K3sArgsConfig{Role: "server", DataDir: dir, Profile: k3s,
					UserArgs: []string{"--disable=traefik", "--kubelet-arg=fail-cgroupv1=true", "--node-name", "mine"}}
			},
			want: []string{"server", "--data-dir", "DIR", "--disable=traefik", "--kubelet-arg=fail-cgroupv1=true", "--node-name", "mine"},
		},
		{
			name: "the user's --data-dir gets the drop-in",
			cfg: func(dir string) K3sArgsConfig {
				return K3sArgsConfig{Role: "server", DataDir: dir, Profile: empty,
					UserArgs: []string{"--data-dir=" + filepath.Join(dir, "mine")}}
			},
			want:      []string{"server", "--data-dir", "DIR", "--data-dir=DIR/mine"},
			settings:  []string{"failCgroupV1: false", "localStorageCapacityIsolation: false"},
			dropinDir: "mine",
		},
		{
			name: "agent: token in a 0600 file, not on argv",
			cfg: func(dir string) K3sArgsConfig {
				return K3sArgsConfig{Role: "agent", DataDir: dir, ServerURL: "https://10.0.0.1:6443", Token: "K10secret::server:abc", Profile: k3s}
			},
			want:      []string{"agent", "--data-dir", "DIR", "--server", "https://10.0.0.1:6443", "--token-file", "DIR/nodeboot/agent-token"},
			tokenFile: true,
		},
		{
			name: "agent: the user's --token wins",
			cfg: func(dir string) K3sArgsConfig {
				return K3sArgsConfig{Role: "agent", DataDir: dir, ServerURL: "https://10.0.0.1:6443", Token: "ignored", Profile: k3s,
					UserArgs: []string{"--token", "theirs"}}
			},
			want: []string{"agent", "--data-dir", "DIR", "--server", "https://10.0.0.1:6443", "--token", "theirs"},
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
		{"relative user data dir", K3sArgsConfig{Role: "server", DataDir: "/x", Profile: k3s, UserArgs: []string{"-d", "rel"}}, `--data-dir "rel" after -- is not an absolute path`},
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
		_, err := K3sArgs(K3sArgsConfig{Role: "server", DataDir: dir, Profile: k3s})
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
		if _, err := K3sArgs(K3sArgsConfig{Role: "server", DataDir: dir, Profile: k3s}); err != nil {
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

func TestFlagValue(t *testing.T) {
	tests := []struct {
		args  []string
		names []string
		val   string
		found bool
	}{
		{[]string{"--data-dir", "/a"}, []string{"--data-dir", "-d"}, "/a", true},
		{[]string{"-d=/b"}, []string{"--data-dir", "-d"}, "/b", true},
		{[]string{"--data-dir=/a", "-d", "/c"}, []string{"--data-dir", "-d"}, "/c", true},
		{[]string{"--data-dirx=/a"}, []string{"--data-dir"}, "", false},
		{[]string{"--", "--data-dir", "/a"}, []string{"--data-dir"}, "", false},
		{[]string{"--token"}, []string{"--token"}, "", true},
	}
	for _, tc := range tests {
		val, found := flagValue(tc.args, tc.names...)
		if val != tc.val || found != tc.found {
			t.Errorf("flagValue(%q, %q) = %q, %v; want %q, %v", tc.args, tc.names, val, found, tc.val, tc.found)
		}
	}
}
