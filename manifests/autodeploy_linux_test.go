package manifests

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

func loadT(t *testing.T, paths ...string) []Object {
	t.Helper()
	objs, err := Load(paths)
	if err != nil {
		t.Fatal(err)
	}
	return objs
}

func TestWriteAutoDeploy(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "k3s", "server", "manifests") // created by WriteAutoDeploy
	objs := append(loadT(t, "testdata/apply"), Smoke("nodeboot.local/smoke:test")...)
	if err := WriteAutoDeploy(dir, objs); err != nil {
		t.Fatal(err)
	}
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	want := "nodeboot-00-namespace.yaml nodeboot-10-config.yaml nodeboot-20-widget.yaml nodeboot-30-crd.yaml nodeboot-smoke.yaml"
	if strings.Join(names, " ") != want {
		t.Fatalf("files %v, want %s (and no temporary file left)", names, want)
	}
	if st, _ := os.Stat(dir); st.Mode().Perm() != 0o700 {
		t.Errorf("dir mode %v, want 0700", st.Mode().Perm())
	}
	for _, n := range names {
		st, err := os.Lstat(filepath.Join(dir, n))
		if err != nil {
			t.Fatal(err)
		}
		if st.Mode() != 0o600 {
			t.Errorf("%s: mode %v, want -rw-------", n, st.Mode())
		}
	}
	// The written files load back to the same objects, as k3s will read them.
	back := loadT(t, filepath.Join(dir, "nodeboot-10-config.yaml"))
	if g := got(back); strings.Join(g, "|") != "nodeboot-10-config.yaml 1 ConfigMap/settings|nodeboot-10-config.yaml 2 ConfigMap/nodeboot-e2e-defaulted" {
		t.Fatalf("read back %q", g)
	}
	if v, _, _ := unstructured.NestedString(back[0].Obj.Object, "data", "greeting"); v != "hello" {
		t.Errorf("greeting = %q", v)
	}
	b, _ := os.ReadFile(filepath.Join(dir, "nodeboot-10-config.yaml"))
	if !strings.HasPrefix(string(b), autoDeployMarker) || !strings.Contains(string(b), "# testdata/apply/10-config.yaml doc 2\n") {
		t.Errorf("content lacks the marker or the source comments:\n%s", b)
	}

	// Writing again replaces nodeboot's own files.
	objs[1].Obj.Object["data"] = map[string]any{"greeting": "again"}
	if err := WriteAutoDeploy(dir, objs); err != nil {
		t.Fatalf("rewrite: %v", err)
	}
	if b, _ := os.ReadFile(filepath.Join(dir, "nodeboot-10-config.yaml")); !strings.Contains(string(b), "greeting: again") {
		t.Errorf("not rewritten:\n%s", b)
	}
}

func TestWriteAutoDeployRefuses(t *testing.T) {
	objs := loadT(t, "testdata/ordered/02-a.yml", "testdata/ordered/10-b.yaml")
	for _, tc := range []struct {
		name    string
		plant   func(t *testing.T, dir string) // prepares dir
		wantErr string
		check   func(t *testing.T, dir string)
	}{
		{
			name: "symlink planted as the file",
			plant: func(t *testing.T, dir string) {
				victim := filepath.Join(t.TempDir(), "victim")
				os.WriteFile(victim, []byte("precious\n"), 0o600)
				if err := os.Symlink(victim, filepath.Join(dir, "nodeboot-10-b.yaml")); err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() {
					if b, _ := os.ReadFile(victim); string(b) != "precious\n" {
						t.Errorf("symlink target written: %q", b)
					}
				})
			},
			wantErr: "nodeboot-10-b.yaml: is a symlink",
		},
		{
			name: "dangling symlink planted as the file",
			plant: func(t *testing.T, dir string) {
				os.Symlink(filepath.Join(t.TempDir(), "created-through-link"), filepath.Join(dir, "nodeboot-02-a.yaml"))
			},
			wantErr: "nodeboot-02-a.yaml: is a symlink",
		},
		{
			name: "foreign file",
			plant: func(t *testing.T, dir string) {
				os.WriteFile(filepath.Join(dir, "nodeboot-10-b.yaml"), []byte("# mine\napiVersion: v1\n"), 0o644)
			},
			wantErr: "nodeboot-10-b.yaml: exists and was not written by nodeboot",
			check: func(t *testing.T, dir string) {
				if b, _ := os.ReadFile(filepath.Join(dir, "nodeboot-10-b.yaml")); string(b) != "# mine\napiVersion: v1\n" {
					t.Errorf("foreign file changed: %q", b)
				}
			},
		},
		{
			name: "directory in the way",
			plant: func(t *testing.T, dir string) {
				os.Mkdir(filepath.Join(dir, "nodeboot-02-a.yaml"), 0o700)
			},
			wantErr: "nodeboot-02-a.yaml: exists and is not a regular file",
		},
		{
			name:    "world-writable directory",
			plant:   func(t *testing.T, dir string) { os.Chmod(dir, 0o777) },
			wantErr: "is writable by every user",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			tc.plant(t, dir)
			err := WriteAutoDeploy(dir, objs)
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("WriteAutoDeploy error %v, want %q", err, tc.wantErr)
			}
			t.Logf("error: %v", err)
			// Refused before writing anything: no other file appeared.
			ents, _ := os.ReadDir(dir)
			if len(ents) != 1 && tc.name != "world-writable directory" {
				var n []string
				for _, e := range ents {
					n = append(n, e.Name())
				}
				t.Errorf("directory holds %v after a refusal", n)
			}
			if tc.check != nil {
				tc.check(t, dir)
			}
		})
	}

	t.Run("directory is a symlink", func(t *testing.T) {
		real := t.TempDir()
		link := filepath.Join(t.TempDir(), "manifests")
		os.Symlink(real, link)
		err := WriteAutoDeploy(link, objs)
		if err == nil || !strings.Contains(err.Error(), "manifests is a symlink to") {
			t.Fatalf("error %v", err)
		}
		if ents, _ := os.ReadDir(real); len(ents) != 0 {
			t.Errorf("wrote through the symlinked directory")
		}
	})

	t.Run("two sources, one name", func(t *testing.T) {
		a, b := t.TempDir(), t.TempDir()
		for _, d := range []string{a, b} {
			os.WriteFile(filepath.Join(d, "app.yaml"), []byte("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\n"), 0o600)
		}
		err := WriteAutoDeploy(t.TempDir(), loadT(t, filepath.Join(a, "app.yaml"), filepath.Join(b, "app.yaml")))
		if err == nil || !strings.Contains(err.Error(), "would both be written to nodeboot-app.yaml") {
			t.Fatalf("error %v", err)
		}
	})
}
