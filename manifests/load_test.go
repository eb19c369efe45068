package manifests

import (
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// got is the (Source base, Index, Kind/name) of an object, for comparisons.
func got(objs []Object) []string {
	var out []string
	for _, o := range objs {
		out = append(out, filepath.Base(o.Source)+" "+itoa(o.Index)+" "+kindName(o.Obj))
	}
	return out
}

func itoa(i int) string { return strconv.Itoa(i) }

func TestLoadFile(t *testing.T) {
	for _, tc := range []struct {
		name    string
		file    string // base name
		content string
		want    []string // got() of the result
		wantErr string   // regexp; "" means no error
	}{
		{
			name: "single",
			file: "one.yaml",
			content: `apiVersion: v1
kind: ConfigMap
metadata:
  name: a
data:
  port: "80"
`,
			want: []string{"one.yaml 1 ConfigMap/a"},
		},
		{
			name: "multi-doc",
			file: "multi.yaml",
			content: `apiVersion: v1
kind: Namespace
metadata: {name: ns}
---
apiVersion: v1
kind: ConfigMap
metadata: {name: a, namespace: ns}
--- # a comment after the separator is allowed
apiVersion: apps/v1
kind: Deployment
metadata: {name: d}
`,
			want: []string{"multi.yaml 1 Namespace/ns", "multi.yaml 2 ConfigMap/a", "multi.yaml 3 Deployment/d"},
		},
		{
			name: "empty and comment-only docs are skipped and not counted",
			file: "empty.yaml",
			content: `---
---
# only a comment
---
apiVersion: v1
kind: ConfigMap
metadata: {name: a}
---
---
null
---
{}
---
apiVersion: v1
kind: ConfigMap
metadata: {name: b}
`,
			want: []string{"empty.yaml 1 ConfigMap/a", "empty.yaml 2 ConfigMap/b"},
		},
		{
			name:    "empty file",
			file:    "nothing.yaml",
			content: "\n# nothing here\n",
			want:    nil,
		},
		{
			name: "List expanded",
			file: "list.yaml",
			content: `apiVersion: v1
kind: ConfigMap
metadata: {name: before}
---
apiVersion: v1
kind: List
items:
- apiVersion: v1
  kind: ConfigMap
  metadata: {name: x}
- apiVersion: v1
  kind: Secret
  metadata: {name: secret-y}
`,
			want: []string{"list.yaml 1 ConfigMap/before", "list.yaml 2 ConfigMap/x", "list.yaml 2 Secret/secret-y"},
		},
		{
			name: "typed list expanded",
			file: "cmlist.yaml",
			content: `apiVersion: v1
kind: ConfigMapList
items:
- apiVersion: v1
  kind: ConfigMap
  metadata: {name: x}
`,
			want: []string{"cmlist.yaml 1 ConfigMap/x"},
		},
		{
			name:    "JSON stream",
			file:    "objs.json",
			content: `{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"a"}} {"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"b"}}`,
			want:    []string{"objs.json 1 ConfigMap/a", "objs.json 2 ConfigMap/b"},
		},
		{
			name: "bad YAML names file, doc and file line",
			file: "bad.yaml",
			content: `apiVersion: v1
kind: ConfigMap
metadata: {name: a}
---
apiVersion: v1
kind: ConfigMap
metadata:
  name: b
 data: x
`,
			wantErr: `^load .*bad\.yaml doc 2 \(line 5\): invalid YAML: .*yaml: file line 8: did not find expected key`,
		},
		{
			name:    "bad separator",
			file:    "sep.yaml",
			content: "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\n--- nope\n",
			wantErr: `sep\.yaml doc 1 \(line 1\): invalid YAML: invalid Yaml document separator: nope`,
		},
		{
			name:    "bad JSON",
			file:    "bad.json",
			content: "{\n  \"apiVersion\": \"v1\",\n  \"kind\": \"ConfigMap\",\n  \"metadata\": {\"name\": \"a\"}\n",
			wantErr: `bad\.json doc 1: invalid JSON: unexpected EOF`,
		},
		{
			name:    "JSON syntax error",
			file:    "syntax.json",
			content: "{\n  \"apiVersion\": \"v1\",\n  \"kind\": \"ConfigMap\" \"x\"\n}\n",
			wantErr: `syntax\.json doc 1: invalid JSON at line 3: invalid character '"' after object key:value pair`,
		},
		{
			name:    "missing kind",
			file:    "nokind.yaml",
			content: "apiVersion: v1\nmetadata: {name: a}\n",
			wantErr: `nokind\.yaml doc 1 \(line 1\): no kind: every document must have apiVersion and kind`,
		},
		{
			name:    "missing apiVersion and kind",
			file:    "nothing-k8s.yaml",
			content: "---\nfoo: bar\n",
			wantErr: `nothing-k8s\.yaml doc 1 \(line 2\): no apiVersion or kind`,
		},
		{
			name:    "missing name",
			file:    "noname.yaml",
			content: "apiVersion: v1\nkind: ConfigMap\nmetadata: {generateName: x-}\n",
			wantErr: `noname\.yaml doc 1 .*ConfigMap has generateName but no metadata\.name`,
		},
		{
			name:    "scalar document",
			file:    "scalar.yaml",
			content: "just a string\n",
			wantErr: `scalar\.yaml doc 1 \(line 1\): a string, not a Kubernetes object`,
		},
		{
			name:    "bad list item",
			file:    "badlist.yaml",
			content: "apiVersion: v1\nkind: List\nitems:\n- apiVersion: v1\n  kind: ConfigMap\n  metadata: {name: ok}\n- apiVersion: v1\n  metadata: {name: nokind}\n",
			wantErr: `badlist\.yaml doc 1 \(line 1\): List item 2: no kind`,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := filepath.Join(t.TempDir(), tc.file)
			if err := os.WriteFile(p, []byte(tc.content), 0o600); err != nil {
				t.Fatal(err)
			}
			objs, err := Load([]string{p})
			if tc.wantErr != "" {
				if err == nil {
					t.Fatalf("Load = %v, want an error matching %q", got(objs), tc.wantErr)
				}
				if !regexp.MustCompile(tc.wantErr).MatchString(err.Error()) {
					t.Fatalf("error %q does not match %q", err, tc.wantErr)
				}
				if !strings.Contains(err.Error(), p) {
					t.Errorf("error %q does not name the file %s", err, p)
				}
				t.Logf("error: %v", err)
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if g := got(objs); strings.Join(g, "|") != strings.Join(tc.want, "|") {
				t.Fatalf("Load = %q, want %q", g, tc.want)
			}
			for _, o := range objs {
				if o.Source != p {
					t.Errorf("Source = %q, want %q", o.Source, p)
				}
			}
		})
	}
}

// TestLoadNumbers: integers stay int64, as the unstructured helpers (and
// the wait checks) expect.
func TestLoadNumbers(t *testing.T) {
	p := filepath.Join(t.TempDir(), "d.yaml")
	os.WriteFile(p, []byte("apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: d}\nspec: {replicas: 3}\n"), 0o600)
	objs, err := Load([]string{p})
	if err != nil {
		t.Fatal(err)
	}
	if v := objs[0].Obj.Object["spec"].(map[string]any)["replicas"]; v != int64(3) {
		t.Fatalf("replicas = %#v, want int64(3)", v)
	}
}

func TestLoadDir(t *testing.T) {
	objs, err := Load([]string{"testdata/ordered", "testdata/ordered/sub/30-nested.yaml"})
	if err != nil {
		t.Fatal(err)
	}
	// Name order across extensions; README.md, .hidden.yaml and the
	// subdirectory are skipped, a file named explicitly is read.
	want := []string{"02-a.yml 1 ConfigMap/a", "10-b.yaml 1 ConfigMap/b", "20-c.json 1 ConfigMap/c", "30-nested.yaml 1 ConfigMap/nested"}
	if g := got(objs); strings.Join(g, "|") != strings.Join(want, "|") {
		t.Fatalf("Load = %q, want %q", g, want)
	}
	if objs[0].Source != filepath.Join("testdata/ordered", "02-a.yml") {
		t.Errorf("Source = %q", objs[0].Source)
	}

	for _, tc := range []struct {
		name, path, wantErr string
	}{
		{"missing path", "testdata/does-not-exist", `load manifests: stat testdata/does-not-exist: no such file`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Load([]string{tc.path})
			if tc.wantErr == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil || !regexp.MustCompile(tc.wantErr).MatchString(err.Error()) {
				t.Fatalf("error %v, want %q", err, tc.wantErr)
			}
		})
	}
	empty := t.TempDir()
	os.WriteFile(filepath.Join(empty, "notes.txt"), []byte("x"), 0o600)
	if _, err := Load([]string{empty}); err == nil || !strings.Contains(err.Error(), "holds no *.yaml, *.yml or *.json file") {
		t.Fatalf("empty dir: error %v", err)
	}
}

func TestSmoke(t *testing.T) {
	objs := Smoke("nodeboot.local/smoke:v1-0123456789ab")
	want := []string{"smoke.yaml 1 Namespace/nodeboot-smoke", "smoke.yaml 2 Job/smoke-"}
	g := got(objs)
	if len(g) != 2 || g[0] != want[0] || !strings.HasPrefix(g[1], want[1]) {
		t.Fatalf("Smoke = %q, want %q<suffix>", g, want)
	}
	if objs[1].Obj.GetNamespace() != "nodeboot-smoke" {
		t.Errorf("job namespace %q", objs[1].Obj.GetNamespace())
	}
	cs, _, _ := unstructuredSlice(objs[1].Obj.Object, "spec", "template", "spec", "containers")
	if len(cs) != 1 || cs[0].(map[string]any)["image"] != "nodeboot.local/smoke:v1-0123456789ab" || cs[0].(map[string]any)["imagePullPolicy"] != "Never" {
		t.Errorf("containers %v: want the image given, never pulled", cs)
	}
	// Each call returns its own objects: callers may change them.
	if Smoke("x")[1].Obj == objs[1].Obj {
		t.Error("Smoke returned shared objects")
	}
}

// TestLoadSpecialFiles: --manifest /dev/zero used to read until the
// process ran out of memory, and a FIFO hung it; both are refused now, with
// the path in the message.
func TestLoadSpecialFiles(t *testing.T) {
	fifo := filepath.Join(t.TempDir(), "fifo.yaml")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ path, want string }{
		{"/dev/zero", "/dev/zero is a character device, not a regular file"},
		{fifo, fifo + " is a FIFO, not a regular file"},
		{filepath.Dir(fifo), "holds no *.yaml"}, // a FIFO in a directory is skipped
	} {
		t.Run(tc.path, func(t *testing.T) {
			done := make(chan error, 1)
			go func() {
				_, err := Load([]string{tc.path})
				done <- err
			}()
			select {
			case err := <-done:
				if err == nil || !strings.Contains(err.Error(), tc.want) {
					t.Fatalf("Load(%s) = %v, want an error containing %q", tc.path, err, tc.want)
				}
			case <-time.After(20 * time.Second):
				t.Fatalf("Load(%s) did not return within 20s", tc.path)
			}
		})
	}
}
