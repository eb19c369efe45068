package manifests

import (
	"bytes"
	"fmt"
	"path/filepath"
	"regexp"
	"strings"

	"sigs.k8s.io/yaml"
)

// autoDeployMarker is the first line of every file WriteAutoDeploy writes.
// A file in the auto-deploy directory without it is someone else's and is
// never overwritten.
const autoDeployMarker = "# Written by nodeboot (--manifests-via k3s); nodeboot replaces this file on every run. Delete this line to make it yours.\n"

// autoDeployFile is one file to write: its name and content.
type autoDeployFile struct {
	name string
	data []byte
}

// unsafeName matches what may not appear in a generated file name.
var unsafeName = regexp.MustCompile(`[^A-Za-z0-9._-]+`)

// AutoDeployName is the name of the file in k3s's auto-deploy directory
// that WriteAutoDeploy writes o to: nodeboot-<base of o's source>.yaml.
// k3s tracks the file as the Addon in kube-system named after the file up
// to its first "." (pkg/deploy in k3s).
func AutoDeployName(o Object) string {
	base := filepath.Base(o.Source)
	base = strings.TrimSuffix(base, filepath.Ext(base))
	base = strings.Trim(unsafeName.ReplaceAllString(base, "-"), "-.")
	if base == "" {
		base = "manifest"
	}
	return "nodeboot-" + base + ".yaml"
}

// autoDeployFiles groups objs by source file, in order of first
// appearance, into files named nodeboot-<base>.yaml.
func autoDeployFiles(objs []Object) ([]autoDeployFile, error) {
	var files []autoDeployFile
	byName := map[string]int{}
	sourceOf := map[string]string{}
	for _, o := range objs {
		name := AutoDeployName(o)
		if prev, ok := sourceOf[name]; ok && prev != o.Source {
			return nil, fmt.Errorf("write auto-deploy manifests: %s and %s would both be written to %s; rename one of them", prev, o.Source, name)
		}
		i, ok := byName[name]
		if !ok {
			sourceOf[name] = o.Source
			i = len(files)
			byName[name] = i
			files = append(files, autoDeployFile{name: name, data: []byte(autoDeployMarker + "# Source: " + o.Source + "\n")})
		}
		y, err := yaml.Marshal(o.Obj.Object)
		if err != nil {
			return nil, fmt.Errorf("write auto-deploy manifests: %s: encode: %w", o, err)
		}
		var b bytes.Buffer
		b.Write(files[i].data)
		fmt.Fprintf(&b, "---\n# %s doc %d\n", o.Source, o.Index)
		b.Write(y)
		files[i].data = b.Bytes()
	}
	return files, nil
}
