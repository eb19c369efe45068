package profile

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/nodeboot/nodeboot/interceptor/rules"
)

// writeFiles writes name -> content below dir.
func writeFiles(t *testing.T, dir string, files map[string]string) {
	t.Helper()
	for name, content := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func TestLoadMerge(t *testing.T) {
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{
		"base.yaml": `name: base
description: the base
files:
  - path: /proc/sys/a
    content: "base a\n"
  - path: /proc/sys/b
    content: "base b\n"
  - path: /proc/swaps
dynamic:
  - path: /dev/kmsg
    kind: kmsg
redirects: [/proc/sys, /proc/swaps]
fstypes: ["9p=ext4", "/sys/fs/cgroup=cgroup2"]
`,
		"sub/child.yaml": `name: child
base: ../base.yaml
files:
  - path: /proc/sys/b
    content: "child b\n"
    mode: "0600"
  - path: /sys/module/overlay
    dir: true
dynamic:
  - path: /proc/swaps
    kind: swaps
redirects: [/sys/module, /proc/sys]
fstypes: ["9p=xfs", "overlay=ext4"]
`,
	})
	p, err := Load(filepath.Join(dir, "sub/child.yaml"))
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	if p.Name != "child" || p.Description != "" || p.Base != "" {
		t.Errorf("name, description, base = %q, %q, %q; want child, \"\", \"\"", p.Name, p.Description, p.Base)
	}
	var files []string
	for _, f := range p.Files {
		files = append(files, f.Path+"="+f.Content+f.Mode)
	}
	wantFiles := []string{"/proc/sys/a=base a\n", "/proc/sys/b=child b\n0600", "/sys/module/overlay="}
	if !reflect.DeepEqual(files, wantFiles) {
		t.Errorf("files = %q, want %q (child overrides in place, new ones appended, /proc/swaps replaced by the dynamic entry)", files, wantFiles)
	}
	var dyn []string
	for _, d := range p.Dynamic {
		dyn = append(dyn, d.Path+"="+d.Kind)
	}
	if want := []string{"/dev/kmsg=kmsg", "/proc/swaps=swaps"}; !reflect.DeepEqual(dyn, want) {
		t.Errorf("dynamic = %q, want %q", dyn, want)
	}
	if want := []string{"/proc/sys", "/proc/swaps", "/sys/module"}; !reflect.DeepEqual(p.Redirects, want) {
		t.Errorf("redirects = %q, want the union %q", p.Redirects, want)
	}
	if want := []string{"9p=xfs", "/sys/fs/cgroup=cgroup2", "overlay=ext4"}; !reflect.DeepEqual(p.FSTypes, want) {
		t.Errorf("fstypes = %q, want %q (the child's 9p rule replaces the base's)", p.FSTypes, want)
	}
	if len(p.Chain) != 2 || !strings.HasSuffix(p.Chain[0], "base.yaml") || !strings.HasSuffix(p.Chain[1], "child.yaml") {
		t.Errorf("chain = %q, want base then child", p.Chain)
	}
}

func TestLoadBuiltinBase(t *testing.T) {
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{
		"mine.yaml": "name: mine\nbase: k3s\nfiles:\n  - path: /proc/sys/kernel/panic\n    content: \"0\\n\"\n",
	})
	p, err := Load(filepath.Join(dir, "mine.yaml"))
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	k3s, err := Load("k3s")
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Files) != len(k3s.Files) {
		t.Errorf("mine has %d files, want the %d of k3s", len(p.Files), len(k3s.Files))
	}
	for _, f := range p.Files {
		if f.Path == "/proc/sys/kernel/panic" && f.Content != "0\n" {
			t.Errorf("kernel/panic = %q, want the child's \"0\\n\"", f.Content)
		}
	}
	if !reflect.DeepEqual(p.Redirects, k3s.Redirects) {
		t.Errorf("redirects = %q, want k3s's %q", p.Redirects, k3s.Redirects)
	}
}

func TestLoadErrors(t *testing.T) {
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{
		"a.yaml":       "name: a\nbase: b.yaml\n",
		"b.yaml":       "name: b\nbase: ./a.yaml\n",
		"self.yaml":    "name: self\nbase: self.yaml\n",
		"nobase.yaml":  "name: nobase\nbase: missing.yaml\n",
		"nobuilt.yaml": "name: nobuilt\nbase: k4s\n",
		"badbase.yaml": "name: badbase\nbase: bad.yaml\n",
		"bad.yaml":     "name: bad\nfiles:\n  - path: /x\n    mod: \"0644\"\n",
		"unserved.yaml": `name: unserved
base: empty
files:
  - path: /proc/swaps
`,
	})
	tests := []struct {
		name    string
		ref     string
		is      error
		wantErr []string
	}{
		{"cycle", "a.yaml", ErrInvalid, []string{"cycle", "a.yaml -> ", "b.yaml -> ", "remove one of the bases"}},
		{"self cycle", "self.yaml", ErrInvalid, []string{"cycle"}},
		{"missing base file", "nobase.yaml", fs.ErrNotExist, []string{"nobase.yaml", `base "missing.yaml"`, "does not exist"}},
		{"unknown built-in base", "nobuilt.yaml", ErrNotFound, []string{`"k4s"`, "built-ins: empty, k3s"}},
		{"invalid base", "badbase.yaml", ErrInvalid, []string{"bad.yaml", `files[0] (/x): unknown field "mod"`}},
		{"file under no redirect", "unserved.yaml", ErrInvalid, []string{"unserved.yaml", "files[0] (/proc/swaps)", "add /proc/swaps"}},
		{"missing file", "nothere.yaml", fs.ErrNotExist, []string{"nothere.yaml", "no such file"}},
		{"unknown built-in", "k4s", ErrNotFound, []string{`"k4s"`, "./k4s"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ref := tt.ref
			if !IsBuiltinRef(ref) {
				ref = filepath.Join(dir, ref)
			}
			_, err := Load(ref)
			if err == nil {
				t.Fatalf("Load(%s) succeeded", tt.ref)
			}
			if !errors.Is(err, tt.is) {
				t.Errorf("error %v does not wrap %v", err, tt.is)
			}
			for _, w := range tt.wantErr {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
		})
	}
}

func TestIsBuiltinRef(t *testing.T) {
	for ref, want := range map[string]bool{
		"k3s": true, "empty": true, "./k3s": false, "k3s.yaml": false, "/etc/p.yml": false, "dir/k3s": false,
	} {
		if got := IsBuiltinRef(ref); got != want {
			t.Errorf("IsBuiltinRef(%q) = %v, want %v", ref, got, want)
		}
	}
}

func TestRules(t *testing.T) {
	p := &Profile{
		Name:      "r",
		Redirects: []string{"/proc/sys", "/sys/module"},
		FSTypes:   []string{"/sys/fs/cgroup=cgroup2", "9p=ext4"},
	}
	root := t.TempDir()
	r, err := p.Rules(root)
	if err != nil {
		t.Fatal(err)
	}
	want := rules.Rules{
		Redirects: []rules.Redirect{
			{Guest: "/proc/sys", Host: root + "/proc/sys"},
			{Guest: "/sys/module", Host: root + "/sys/module"},
		},
		FSTypes: []rules.FSTypeRule{
			{Path: "/sys/fs/cgroup", To: 0x63677270},
			{From: 0x01021997, To: 0xEF53},
		},
	}
	if !reflect.DeepEqual(r, want) {
		t.Errorf("Rules = %+v, want %+v", r, want)
	}

	t.Chdir(root)
	r, err = p.Rules("tree")
	if err != nil {
		t.Fatal(err)
	}
	if got := r.Redirects[0].Host; got != filepath.Join(root, "tree/proc/sys") {
		t.Errorf("relative root: host = %s, want it below %s", got, root)
	}
	if _, err := p.Rules(""); err == nil {
		t.Error("Rules(\"\") succeeded")
	}
}
