package main

import (
	"bufio"
	"bytes"
	"github.com/nodeboot/nodeboot/internal/testenv"
	"os"
	"os/exec"
	"strings"
	"testing"
)

// excludedDeps are packages (and everything below them) that must not be
// linked into nodeboot. Their package init runs in every nodeboot process,
// including the tracer of "nodeboot exec" and the shim it re-executes
// before each traced command: client-go's kubernetes/scheme alone (every
// built-in API group) adds about 12 MB of resident memory, the typed
// clientset and informers more, and issue 2 caps nodeboot's own RSS while
// tracing at 30 MiB. discovery (and restmapper, which uses it) imports
// kubernetes/scheme and the gnostic OpenAPI models. health and manifests
// use plain REST clients with small schemes instead; see
// docs/benchmarks.md, "Binary size and start-up".
var excludedDeps = []string{
	"k8s.io/client-go/kubernetes",
	"k8s.io/client-go/informers",
	"k8s.io/client-go/listers",
	"k8s.io/client-go/discovery",
	"k8s.io/client-go/restmapper",
	"github.com/google/gnostic-models",
}

const mainPkg = "github.com/nodeboot/nodeboot/cmd/nodeboot"

func excluded(pkg string) (string, bool) {
	for _, e := range excludedDeps {
		if pkg == e || strings.HasPrefix(pkg, e+"/") {
			return e, true
		}
	}
	return "", false
}

// TestNoHeavyDeps fails when cmd/nodeboot depends on an excluded package,
// and names the chain of imports that brings it in.
func TestNoHeavyDeps(t *testing.T) {
	gobin := testenv.LookPath(t, "go")
	cmd := exec.Command(gobin, "list", "-deps", "-f", "{{.ImportPath}} {{join .Imports \" \"}}", mainPkg)
	// The release build: static, Linux.
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("%s: %v\n%s", strings.Join(cmd.Args, " "), err, stderr.String())
	}
	imports := map[string][]string{}
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) > 0 {
			imports[f[0]] = f[1:]
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	if _, ok := imports[mainPkg]; !ok {
		t.Fatalf("go list printed no %s: output was\n%s", mainPkg, out)
	}

	// Breadth-first from main: the first time a package is reached gives
	// a shortest import chain to it.
	parent := map[string]string{mainPkg: ""}
	queue := []string{mainPkg}
	reported := map[string]bool{}
	for len(queue) > 0 {
		p := queue[0]
		queue = queue[1:]
		if e, bad := excluded(p); bad {
			// One chain per excluded root is enough to find the culprit;
			// the packages below it come in the same way.
			if !reported[e] {
				reported[e] = true
				var chain []string
				for q := p; q != ""; q = parent[q] {
					chain = append([]string{q}, chain...)
				}
				t.Errorf("nodeboot depends on %s (excluded: its init costs every nodeboot process memory and start-up time):\n\t%s",
					p, strings.Join(chain, "\n\timports "))
			}
			continue
		}
		for _, imp := range imports[p] {
			if _, seen := parent[imp]; !seen {
				parent[imp] = p
				queue = append(queue, imp)
			}
		}
	}
	// A package reached only below an excluded one is not walked above;
	// catch any the walk missed.
	for p := range imports {
		if e, bad := excluded(p); bad && !reported[e] {
			reported[e] = true
			t.Errorf("nodeboot depends on %s (excluded; reached only through another excluded package)", p)
		}
	}
}
