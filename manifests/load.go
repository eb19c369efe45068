package manifests

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	utiljson "k8s.io/apimachinery/pkg/util/json"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"

	"github.com/nodeboot/nodeboot/internal/safefs"
)

// Object is one Kubernetes object of a manifest set.
type Object struct {
	// Source is the file the object came from, as Load was given it (a
	// directory's files are joined to the directory).
	Source string
	// Index is the document's position in Source, counted from 1. The items
	// of a List share the List's index.
	Index int
	Obj   *unstructured.Unstructured
}

// String names the object for messages: "FILE doc N (Kind/name)".
func (o Object) String() string {
	return fmt.Sprintf("%s doc %d (%s)", o.Source, o.Index, kindName(o.Obj))
}

func kindName(u *unstructured.Unstructured) string {
	if u == nil {
		return "<nil>"
	}
	return u.GetKind() + "/" + u.GetName()
}

// extensions are the file names a directory contributes.
var extensions = map[string]bool{".yaml": true, ".yml": true, ".json": true}

// Load reads the manifests in paths, in order. A path is a file, or a
// directory whose *.yaml, *.yml and *.json files are read in name order
// (not recursively; names starting with "." are skipped). See the package
// comment for the document rules. Every object needs apiVersion, kind and
// metadata.name (server-side apply cannot generate names).
//
// An error names the file, the document and, where the parser says, the
// line; a directory that holds no manifest file is an error too.
func Load(paths []string) ([]Object, error) {
	var objs []Object
	for _, p := range paths {
		st, err := os.Stat(p)
		if err != nil {
			return nil, fmt.Errorf("load manifests: %w", err)
		}
		if !st.IsDir() {
			got, err := loadFile(p)
			if err != nil {
				return nil, err
			}
			objs = append(objs, got...)
			continue
		}
		ents, err := os.ReadDir(p) // sorted by name
		if err != nil {
			return nil, fmt.Errorf("load manifests: %w", err)
		}
		n := 0
		for _, e := range ents {
			name := e.Name()
			if strings.HasPrefix(name, ".") || !extensions[strings.ToLower(filepath.Ext(name))] {
				continue
			}
			f := filepath.Join(p, name)
			// Stat, not e.Type(): a symlink to a manifest is the user's
			// choice and is read like the file it points to.
			if fst, err := os.Stat(f); err != nil {
				return nil, fmt.Errorf("load manifests: %w", err)
			} else if !fst.Mode().IsRegular() {
				continue
			}
			n++
			got, err := loadFile(f)
			if err != nil {
				return nil, err
			}
			objs = append(objs, got...)
		}
		if n == 0 {
			return nil, fmt.Errorf("load manifests: directory %s holds no *.yaml, *.yml or *.json file (subdirectories are not read)", p)
		}
	}
	return objs, nil
}

// maxManifestFile bounds one manifest file: large CRD bundles are a few
// MiB; more is a mistake (or /dev/zero), not a manifest.
const maxManifestFile = 64 << 20

// loadFile decodes every document of one file, which must be a regular
// file of at most maxManifestFile bytes.
func loadFile(path string) ([]Object, error) {
	data, err := safefs.ReadFile(path, maxManifestFile)
	if err != nil {
		return nil, fmt.Errorf("load manifests: %w", err)
	}
	return decode(path, data)
}

// decode splits data into documents with the apimachinery YAML-or-JSON
// decoder (the one kubectl uses) and turns each into objects.
func decode(source string, data []byte) ([]Object, error) {
	isJSON := utilyaml.IsJSONBuffer(data)
	var docs []yamlDoc // where each YAML document is, for messages
	if !isJSON {
		docs = yamlDocs(data)
	}
	dec := utilyaml.NewYAMLOrJSONDecoder(bytes.NewReader(data), 4096)
	var objs []Object
	index := 0 // documents with content so far
	for chunk := 0; ; chunk++ {
		var raw json.RawMessage
		err := dec.Decode(&raw)
		if errors.Is(err, io.EOF) {
			return objs, nil
		}
		where := fmt.Sprintf("%s doc %d", source, index+1)
		var doc *yamlDoc
		if chunk < len(docs) {
			doc = &docs[chunk]
			where += fmt.Sprintf(" (line %d)", doc.content)
		}
		if err != nil {
			return nil, fmt.Errorf("load %s: %s", where, syntaxMessage(err, data, isJSON, doc))
		}
		got, empty, err := toObjects(raw)
		if err != nil {
			return nil, fmt.Errorf("load %s: %w", where, err)
		}
		if empty {
			continue
		}
		index++
		for _, u := range got {
			objs = append(objs, Object{Source: source, Index: index, Obj: u})
		}
	}
}

// toObjects validates one document; a List yields its items. An empty
// document (nothing, only comments, null or {}) yields nothing and empty.
func toObjects(raw json.RawMessage) (objs []*unstructured.Unstructured, empty bool, err error) {
	trimmed := bytes.TrimSpace(raw)
	if len(trimmed) == 0 || bytes.Equal(trimmed, []byte("null")) || bytes.Equal(trimmed, []byte("{}")) {
		return nil, true, nil
	}
	objs, err = toObjectList(trimmed)
	return objs, false, err
}

func toObjectList(trimmed []byte) ([]*unstructured.Unstructured, error) {
	var v any
	// apimachinery's json turns numbers into int64 where they fit, as the
	// unstructured types expect (encoding/json would give float64).
	if err := utiljson.Unmarshal(trimmed, &v); err != nil {
		return nil, fmt.Errorf("not valid JSON after YAML conversion: %w", err)
	}
	m, ok := v.(map[string]any)
	if !ok {
		return nil, fmt.Errorf("a %T, not a Kubernetes object (a mapping with apiVersion, kind and metadata)", v)
	}
	u := &unstructured.Unstructured{Object: m}
	if err := checkObject(u); err != nil {
		return nil, err
	}
	if !u.IsList() {
		return []*unstructured.Unstructured{u}, nil
	}
	items, _ := m["items"].([]any)
	var out []*unstructured.Unstructured
	for i, it := range items {
		im, ok := it.(map[string]any)
		if !ok {
			return nil, fmt.Errorf("%s item %d: a %T, not a Kubernetes object", u.GetKind(), i+1, it)
		}
		iu := &unstructured.Unstructured{Object: im}
		if err := checkObject(iu); err != nil {
			return nil, fmt.Errorf("%s item %d: %w", u.GetKind(), i+1, err)
		}
		if iu.IsList() {
			return nil, fmt.Errorf("%s item %d: a %s inside a list is not supported; put its items in the outer list", u.GetKind(), i+1, iu.GetKind())
		}
		out = append(out, iu)
	}
	return out, nil
}

// checkObject rejects what the API server would refuse anyway, with a
// message that says which field is missing.
func checkObject(u *unstructured.Unstructured) error {
	var missing []string
	if u.GetAPIVersion() == "" {
		missing = append(missing, "apiVersion")
	}
	if u.GetKind() == "" {
		missing = append(missing, "kind")
	}
	if len(missing) > 0 {
		return fmt.Errorf("no %s: every document must have apiVersion and kind (e.g. apiVersion: v1, kind: ConfigMap)", strings.Join(missing, " or "))
	}
	if u.IsList() {
		return nil
	}
	if u.GetName() == "" {
		if u.GetGenerateName() != "" {
			return fmt.Errorf("%s has generateName but no metadata.name: server-side apply needs a fixed name", u.GetKind())
		}
		return fmt.Errorf("%s has no metadata.name", u.GetKind())
	}
	return nil
}

// yamlDoc locates one document that the apimachinery YAMLReader yields.
type yamlDoc struct {
	start   int // its first line (from 1), where go-yaml counts from
	content int // its first line that is neither blank nor a comment
}

// yamlDocs locates the documents of data by the YAMLReader's rule: a line
// starting with "---" ends a document, and a document is yielded only when
// it has at least one line.
func yamlDocs(data []byte) []yamlDoc {
	var docs []yamlDoc
	inDoc := false
	for i, line := range strings.SplitAfter(string(data), "\n") {
		if strings.HasPrefix(line, "---") {
			inDoc = false
			continue
		}
		if line == "" { // after the final newline
			continue
		}
		if !inDoc {
			docs = append(docs, yamlDoc{start: i + 1})
			inDoc = true
		}
		d := &docs[len(docs)-1]
		if t := strings.TrimSpace(line); d.content == 0 && t != "" && !strings.HasPrefix(t, "#") {
			d.content = i + 1
		}
	}
	for i := range docs {
		if docs[i].content == 0 {
			docs[i].content = docs[i].start
		}
	}
	return docs
}

// yamlLine matches the document-relative line in go-yaml's messages.
var yamlLine = regexp.MustCompile(`yaml: line (\d+): `)

// syntaxMessage makes a decoder error point into the file: go-yaml counts
// lines from the document's start, and the JSON decoder gives a byte
// offset.
func syntaxMessage(err error, data []byte, isJSON bool, doc *yamlDoc) string {
	msg := err.Error()
	var js utilyaml.JSONSyntaxError
	if errors.As(err, &js) && js.Offset >= 0 && js.Offset <= int64(len(data)) {
		line := 1 + bytes.Count(data[:js.Offset], []byte("\n"))
		return fmt.Sprintf("invalid JSON at line %d: %v", line, js.Err)
	}
	if isJSON {
		return "invalid JSON: " + msg
	}
	if m := yamlLine.FindStringSubmatchIndex(msg); m != nil && doc != nil {
		rel, _ := strconv.Atoi(msg[m[2]:m[3]])
		msg = msg[:m[0]] + fmt.Sprintf("yaml: file line %d: ", doc.start+rel-1) + msg[m[1]:]
	}
	return "invalid YAML: " + msg
}
