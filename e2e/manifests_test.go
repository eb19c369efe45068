package e2e

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/dynamic"

	"github.com/nodeboot/nodeboot/e2e/cluster"
	"github.com/nodeboot/nodeboot/manifests"
)

// syncBuffer is a log sink the test reads while Apply's goroutines write.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestManifests applies manifest directories to the test bed's real
// kube-apiserver with server-side apply. The test bed runs no scheduler or
// controller-manager, so only what the API server does by itself can become
// ready: CRDs are Established by the apiserver, a Deployment never becomes
// Available (the timeout path), a Job never completes.
func TestManifests(t *testing.T) {
	c := cluster.New(t, cluster.Options{})
	rc, err := c.RESTConfig()
	if err != nil {
		t.Fatal(err)
	}
	dyn, err := dynamic.NewForConfig(rc)
	if err != nil {
		t.Fatal(err)
	}
	logs := &syncBuffer{}
	var progress []string
	cfg := manifests.ApplyConfig{
		REST:    rc,
		Timeout: 2 * time.Minute,
		Logger:  slog.New(slog.NewTextHandler(io.MultiWriter(logs, t.Output()), &slog.HandlerOptions{Level: slog.LevelDebug})),
		OnProgress: func(s string) {
			progress = append(progress, s)
			t.Logf("progress: %s", s)
		},
	}
	dir := filepath.Join("..", "manifests", "testdata", "apply")
	objs, err := manifests.Load([]string{dir})
	if err != nil {
		t.Fatal(err)
	}

	// One directory: namespace, ConfigMaps, a Widget and its CRD. The Widget
	// sorts before its CRD by file name; Apply puts the CRD first, waits
	// for it to be Established and resets the REST mapper, whose cached
	// discovery predates the Widget kind.
	start := time.Now()
	if err := manifests.Apply(t.Context(), cfg, objs); err != nil {
		t.Fatalf("Apply %s: %v", dir, err)
	}
	t.Logf("applied %d objects from %s in %s", len(objs), dir, time.Since(start).Round(time.Millisecond))
	if !strings.Contains(logs.String(), "discovery reset") {
		t.Errorf("the REST mapper was never reset: the Widget kind should have been unknown to the first discovery")
	}
	if !slices.Contains(progress, "applied 5 objects") || !slices.Contains(progress, "customresourcedefinition/widgets.e2e.nodeboot.dev ready") {
		t.Errorf("progress lines %q lack \"applied 5 objects\" or the CRD's ready line", progress)
	}

	gvrs := map[string]schema.GroupVersionResource{
		"Namespace":                {Version: "v1", Resource: "namespaces"},
		"ConfigMap":                {Version: "v1", Resource: "configmaps"},
		"Widget":                   {Group: "e2e.nodeboot.dev", Version: "v1", Resource: "widgets"},
		"CustomResourceDefinition": {Group: "apiextensions.k8s.io", Version: "v1", Resource: "customresourcedefinitions"},
	}
	get := func(kind, ns, name string) *unstructured.Unstructured {
		t.Helper()
		u, err := dyn.Resource(gvrs[kind]).Namespace(ns).Get(t.Context(), name, metav1.GetOptions{})
		if err != nil {
			t.Fatalf("get %s %s/%s: %v", kind, ns, name, err)
		}
		return u
	}
	want := []struct{ kind, ns, name string }{
		{"Namespace", "", "nodeboot-e2e-manifests"},
		{"ConfigMap", "nodeboot-e2e-manifests", "settings"},
		{"ConfigMap", "default", "nodeboot-e2e-defaulted"}, // no namespace in the file
		{"Widget", "nodeboot-e2e-manifests", "first"},
		{"CustomResourceDefinition", "", "widgets.e2e.nodeboot.dev"},
	}
	rv := map[string]string{}
	for _, w := range want {
		u := get(w.kind, w.ns, w.name)
		rv[w.kind+"/"+w.name] = u.GetResourceVersion()
		var mgr []string
		for _, mf := range u.GetManagedFields() {
			if mf.Operation == metav1.ManagedFieldsOperationApply {
				mgr = append(mgr, mf.Manager)
			}
		}
		if !slices.Contains(mgr, manifests.DefaultFieldManager) {
			b, _ := u.MarshalJSON()
			t.Errorf("%s %s/%s: apply managers %v, want %q\n%s", w.kind, w.ns, w.name, mgr, manifests.DefaultFieldManager, b)
		}
	}
	if size, _, _ := unstructured.NestedInt64(get("Widget", "nodeboot-e2e-manifests", "first").Object, "spec", "size"); size != 3 {
		t.Errorf("widget spec.size = %d, want 3", size)
	}

	t.Run("reapply is a no-op", func(t *testing.T) {
		progress = nil
		if err := manifests.Apply(t.Context(), cfg, objs); err != nil {
			t.Fatalf("second Apply: %v", err)
		}
		for _, w := range want {
			if got := get(w.kind, w.ns, w.name).GetResourceVersion(); got != rv[w.kind+"/"+w.name] {
				t.Errorf("%s %s/%s changed on re-apply: resourceVersion %s -> %s", w.kind, w.ns, w.name, rv[w.kind+"/"+w.name], got)
			}
		}
	})

	for _, tc := range []struct {
		name, file string
		want       string // regexp over the error
		check      func(t *testing.T, err error)
	}{
		{
			name: "invalid port",
			file: "service.yaml",
			want: `^\.\./manifests/testdata/bad/service\.yaml doc 2 \(Service/nodeboot-e2e-bad-port\): Service "nodeboot-e2e-bad-port" is invalid: \[?spec\.ports\[0\]\.port: Invalid value: 70000: must be between 1 and 65535`,
			check: func(t *testing.T, err error) {
				if !apierrors.IsInvalid(err) {
					t.Errorf("apierrors.IsInvalid(%v) = false: the API's error is not wrapped", err)
				}
				// Doc 1 went in before doc 2 was refused.
				if _, err := c.Client.CoreV1().ConfigMaps("default").Get(t.Context(), "nodeboot-e2e-before-bad", metav1.GetOptions{}); err != nil {
					t.Errorf("doc 1 of service.yaml: %v", err)
				}
			},
		},
		{
			name: "unknown field",
			file: "unknown-field.yaml",
			want: `^\.\./manifests/testdata/bad/unknown-field\.yaml doc 1 \(ConfigMap/nodeboot-e2e-unknown-field\): .*\.colour: field not declared in schema`,
		},
		{
			name: "unknown kind",
			file: "unknown-kind.yaml",
			want: `^\.\./manifests/testdata/bad/unknown-kind\.yaml doc 1 \(Gadget/nodeboot-e2e-gadget\): the API server has no kind Gadget in apiVersion example\.com/v1: check the spelling, or install its CRD first \(or in the same set\)$`,
		},
		{
			// No controller-manager: the Deployment is never observed, let
			// alone Available. The error says what it waited for.
			name: "deployment never available",
			file: "deployment.yaml",
			want: `^timed out after 3s waiting for deployment/nodeboot-e2e-never \(namespace default\): 0/1 available, generation 1 not yet observed by the deployment controller`,
			check: func(t *testing.T, err error) {
				if !errors.Is(err, context.DeadlineExceeded) {
					t.Errorf("errors.Is(err, context.DeadlineExceeded) = false")
				}
				if !slices.Contains(progress, "waiting for deployment/nodeboot-e2e-never (namespace default): 0/1 available, generation 1 not yet observed by the deployment controller (observed 0; is kube-controller-manager running?)") {
					t.Errorf("no progress line for the deployment: %q", progress)
				}
			},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			objs, err := manifests.Load([]string{filepath.Join("..", "manifests", "testdata", "bad", tc.file)})
			if err != nil {
				t.Fatal(err)
			}
			cfg := cfg
			cfg.Timeout = 3 * time.Second
			progress = nil
			start := time.Now()
			err = manifests.Apply(t.Context(), cfg, objs)
			took := time.Since(start)
			if err == nil {
				t.Fatal("Apply succeeded")
			}
			t.Logf("Apply failed after %s: %v", took.Round(time.Millisecond), err)
			if !regexp.MustCompile(tc.want).MatchString(err.Error()) {
				t.Errorf("error does not match %q", tc.want)
			}
			if took > 10*time.Second {
				t.Errorf("took %s with a 3s timeout", took)
			}
			// A refused object fails at once: retrying cannot help it.
			if tc.name != "deployment never available" {
				for _, p := range progress {
					if strings.HasPrefix(p, "retrying ") {
						t.Errorf("a refusal was retried (%q): Transient(%v) should be false", p, err)
						break
					}
				}
				if errors.Is(err, context.DeadlineExceeded) {
					t.Errorf("the refusal ended in the timeout, not at once")
				}
			}
			if tc.check != nil {
				tc.check(t, err)
			}
		})
	}

	// The embedded smoke set is valid for a real API server (strict field
	// validation); its Job cannot complete without a scheduler and
	// controller-manager, which the timeout message says.
	t.Run("smoke set accepted", func(t *testing.T) {
		cfg := cfg
		cfg.Timeout = 3 * time.Second
		smoke := manifests.Smoke("nodeboot.local/smoke:test")
		err := manifests.Apply(t.Context(), cfg, smoke)
		if err == nil {
			t.Fatal("the smoke Job completed on a test bed without a scheduler")
		}
		t.Logf("Apply(Smoke()): %v", err)
		if !regexp.MustCompile(`^timed out after 3s waiting for job/smoke-[0-9a-z]+ \(namespace nodeboot-smoke\): not complete: 0 active, 0 succeeded, 0 failed, not started by the job controller yet \(is kube-controller-manager running\?\)$`).MatchString(err.Error()) {
			t.Errorf("unexpected error")
		}
	})

	// The test plays the missing controllers by writing status, to show the
	// wait ends on a watch event as soon as the object is ready, or failed.
	for _, tc := range []struct {
		name, manifest, resource, status string
		wantErr                          string // "" means Apply succeeds
	}{
		{
			name: "deployment becomes available",
			manifest: `apiVersion: apps/v1
kind: Deployment
metadata: {name: nodeboot-e2e-available}
spec:
  replicas: 1
  selector: {matchLabels: {app: available}}
  template:
    metadata: {labels: {app: available}}
    spec: {containers: [{name: c, image: registry.k8s.io/pause:3.10}]}
`,
			resource: "deployments",
			status: `{"status": {"observedGeneration": 1, "replicas": 1, "updatedReplicas": 1, "readyReplicas": 1, "availableReplicas": 1,
				"conditions": [{"type": "Available", "status": "True", "reason": "MinimumReplicasAvailable", "message": "played by the e2e test",
				"lastUpdateTime": "2026-01-01T00:00:00Z", "lastTransitionTime": "2026-01-01T00:00:00Z"}]}}`,
		},
		{
			name: "pod failure ends the wait",
			// No controller-manager makes the namespace's default
			// ServiceAccount, which Pod admission wants.
			manifest: `apiVersion: v1
kind: ServiceAccount
metadata: {name: default}
---
apiVersion: v1
kind: Pod
metadata: {name: nodeboot-e2e-failing}
spec: {containers: [{name: c, image: registry.k8s.io/pause:3.10}]}
`,
			resource: "pods",
			status:   `{"status": {"phase": "Failed", "reason": "Evicted", "message": "played by the e2e test"}}`,
			wantErr:  `^testdata-.*/obj\.yaml doc 2 \(Pod/nodeboot-e2e-failing\): pod failed: Evicted: played by the e2e test$`,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "testdata-"+strings.ReplaceAll(tc.name, " ", "-"))
			if err := os.Mkdir(dir, 0o700); err != nil {
				t.Fatal(err)
			}
			f := filepath.Join(dir, "obj.yaml")
			if err := os.WriteFile(f, []byte(tc.manifest), 0o600); err != nil {
				t.Fatal(err)
			}
			objs, err := manifests.Load([]string{f})
			if err != nil {
				t.Fatal(err)
			}
			name := objs[len(objs)-1].Obj.GetName()
			waiting := make(chan struct{})
			var once sync.Once
			cfg := cfg
			cfg.Timeout = time.Minute
			cfg.OnProgress = func(s string) {
				t.Logf("progress: %s", s)
				if strings.HasPrefix(s, "waiting for ") {
					once.Do(func() { close(waiting) })
				}
			}
			done := make(chan error, 1)
			start := time.Now()
			go func() { done <- manifests.Apply(t.Context(), cfg, objs) }()
			select {
			case <-waiting:
			case err := <-done:
				t.Fatalf("Apply returned before waiting: %v", err)
			}
			gvr := schema.GroupVersionResource{Group: "apps", Version: "v1", Resource: tc.resource}
			if tc.resource == "pods" {
				gvr = schema.GroupVersionResource{Version: "v1", Resource: "pods"}
			}
			if _, err := dyn.Resource(gvr).Namespace("default").Patch(t.Context(), name, types.MergePatchType, []byte(tc.status), metav1.PatchOptions{}, "status"); err != nil {
				t.Fatalf("write status: %v", err)
			}
			patched := time.Now()
			err = <-done
			t.Logf("Apply returned %s after the status write (%s in all): %v", time.Since(patched).Round(time.Millisecond), time.Since(start).Round(time.Millisecond), err)
			if time.Since(patched) > 5*time.Second {
				t.Errorf("Apply took %s to notice the status", time.Since(patched))
			}
			switch {
			case tc.wantErr == "" && err != nil:
				t.Fatalf("Apply: %v", err)
			case tc.wantErr != "" && (err == nil || !regexp.MustCompile(tc.wantErr).MatchString(strings.TrimPrefix(err.Error(), filepath.Dir(dir)+"/"))):
				t.Fatalf("Apply error %v, want %q", err, tc.wantErr)
			}
		})
	}

	// --manifests-via k3s: nodeboot writes the files and Await waits until
	// k3s's deploy controller has applied them. No k3s here, so the test
	// plays that controller, with Apply and a plain server-side apply.
	t.Run("await objects another applies", func(t *testing.T) {
		dir := filepath.Join(t.TempDir(), "testdata-await")
		if err := os.Mkdir(dir, 0o700); err != nil {
			t.Fatal(err)
		}
		f := filepath.Join(dir, "set.yaml")
		set := `apiVersion: v1
kind: Namespace
metadata: {name: nodeboot-e2e-await}
---
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {name: sprockets.e2e.nodeboot.dev}
spec:
  group: e2e.nodeboot.dev
  scope: Namespaced
  names: {plural: sprockets, singular: sprocket, kind: Sprocket, listKind: SprocketList}
  versions:
  - name: v1
    served: true
    storage: true
    schema: {openAPIV3Schema: {type: object, x-kubernetes-preserve-unknown-fields: true}}
---
apiVersion: e2e.nodeboot.dev/v1
kind: Sprocket
metadata: {name: first, namespace: nodeboot-e2e-await}
spec: {teeth: 12}
---
apiVersion: v1
kind: ConfigMap
metadata: {name: settings, namespace: nodeboot-e2e-await}
data: {k: v}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: nodeboot-e2e-await}
spec:
  replicas: 1
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec: {containers: [{name: c, image: registry.k8s.io/pause:3.10}]}
`
		if err := os.WriteFile(f, []byte(set), 0o600); err != nil {
			t.Fatal(err)
		}
		objs, err := manifests.Load([]string{f})
		if err != nil {
			t.Fatal(err)
		}
		var lines []string
		var mu sync.Mutex
		seen := func(prefix string) bool {
			mu.Lock()
			defer mu.Unlock()
			return slices.ContainsFunc(lines, func(l string) bool { return strings.HasPrefix(l, prefix) })
		}
		cfg := cfg
		cfg.Timeout = 2 * time.Minute
		cfg.OnProgress = func(s string) {
			t.Logf("await progress: %s", s)
			mu.Lock()
			lines = append(lines, s)
			mu.Unlock()
		}
		done := make(chan error, 1)
		go func() {
			done <- manifests.Await(t.Context(), cfg, objs, func(o manifests.Object) string {
				return "not created yet; the test applies " + manifests.AutoDeployName(o)
			})
		}()
		eventually := func(what string, cond func() bool) {
			t.Helper()
			for deadline := time.Now().Add(30 * time.Second); !cond(); time.Sleep(50 * time.Millisecond) {
				if time.Now().After(deadline) {
					t.Fatalf("no %s within 30 s; progress: %q", what, lines)
				}
			}
		}
		notReturned := func(when string) {
			t.Helper()
			select {
			case err := <-done:
				t.Fatalf("Await returned %s: %v", when, err)
			case <-time.After(500 * time.Millisecond):
			}
		}
		eventually("absent status for the CRD", func() bool {
			return seen("waiting for customresourcedefinition/sprockets.e2e.nodeboot.dev: not created yet; the test applies nodeboot-set.yaml")
		})
		notReturned("before anything was applied")

		// The deploy controller's part: everything but the Deployment.
		var noDeploy []manifests.Object
		for _, o := range objs {
			if o.Obj.GetKind() != "Deployment" {
				noDeploy = append(noDeploy, o)
			}
		}
		applyCfg := cfg
		applyCfg.OnProgress = nil
		if err := manifests.Apply(t.Context(), applyCfg, noDeploy); err != nil {
			t.Fatalf("apply (as k3s would): %v", err)
		}
		eventually("absent status for the Deployment", func() bool {
			return seen("waiting for deployment/web (namespace nodeboot-e2e-await): not created yet")
		})
		notReturned("while the Deployment did not exist")

		deploy := schema.GroupVersionResource{Group: "apps", Version: "v1", Resource: "deployments"}
		data, err := objs[len(objs)-1].Obj.MarshalJSON()
		if err != nil {
			t.Fatal(err)
		}
		force := true
		if _, err := dyn.Resource(deploy).Namespace("nodeboot-e2e-await").Patch(t.Context(), "web", types.ApplyPatchType, data, metav1.PatchOptions{FieldManager: "deploy@e2e", Force: &force}); err != nil {
			t.Fatalf("apply the Deployment (as k3s would): %v", err)
		}
		notReturned("while the Deployment was not available")
		status := `{"status": {"observedGeneration": 1, "replicas": 1, "updatedReplicas": 1, "readyReplicas": 1, "availableReplicas": 1,
			"conditions": [{"type": "Available", "status": "True", "reason": "MinimumReplicasAvailable", "message": "played by the e2e test",
			"lastUpdateTime": "2026-01-01T00:00:00Z", "lastTransitionTime": "2026-01-01T00:00:00Z"}]}}`
		if _, err := dyn.Resource(deploy).Namespace("nodeboot-e2e-await").Patch(t.Context(), "web", types.MergePatchType, []byte(status), metav1.PatchOptions{}, "status"); err != nil {
			t.Fatalf("write status: %v", err)
		}
		select {
		case err := <-done:
			if err != nil {
				t.Fatalf("Await: %v", err)
			}
		case <-time.After(30 * time.Second):
			t.Fatal("Await did not return within 30 s of the Deployment turning available")
		}

		// Nobody applies this one: the timeout names it and what it
		// waited for.
		never := []manifests.Object{objs[3]}
		never[0].Obj = never[0].Obj.DeepCopy()
		never[0].Obj.SetName("never-created")
		cfg.Timeout = 2 * time.Second
		err = manifests.Await(t.Context(), cfg, never, nil)
		want := "timed out after 2s waiting for configmap/never-created (namespace nodeboot-e2e-await): not created yet"
		if err == nil || err.Error() != want || !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("Await of an object nobody applies = %v, want %q matching context.DeadlineExceeded", err, want)
		}
	})

	// Last: it stops the apiserver. k3s under the supervisor can restart
	// right after it turned Ready, so a refused connection must be retried
	// until the API is back, not fail the apply.
	t.Run("apiserver outage is retried", func(t *testing.T) {
		dir := filepath.Join(t.TempDir(), "testdata-outage")
		if err := os.Mkdir(dir, 0o700); err != nil {
			t.Fatal(err)
		}
		f := filepath.Join(dir, "cm.yaml")
		if err := os.WriteFile(f, []byte("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: nodeboot-e2e-outage, namespace: default}\ndata: {k: v}\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		objs, err := manifests.Load([]string{f})
		if err != nil {
			t.Fatal(err)
		}
		t0 := time.Now()
		if err := c.StopAPIServer(2 * time.Second); err != nil {
			t.Fatal(err)
		}
		t.Logf("apiserver stopped in %s", time.Since(t0).Round(time.Millisecond))
		retrying := make(chan string, 1)
		var retries []string
		var mu sync.Mutex
		cfg := cfg
		cfg.Timeout = 2 * time.Minute
		cfg.OnProgress = func(s string) {
			t.Logf("progress: %s", s)
			if strings.HasPrefix(s, "retrying ") {
				mu.Lock()
				retries = append(retries, s)
				mu.Unlock()
				select {
				case retrying <- s:
				default:
				}
			}
		}
		done := make(chan error, 1)
		go func() { done <- manifests.Apply(t.Context(), cfg, objs) }()
		select {
		case s := <-retrying:
			if !strings.Contains(s, "connection refused") {
				t.Errorf("first retry line %q does not say the connection was refused", s)
			}
		case err := <-done:
			c.RestartAPIServer()
			t.Fatalf("Apply returned while the apiserver was down, without retrying: %v", err)
		case <-time.After(30 * time.Second):
			t.Fatal("no retry within 30 s")
		}
		// Let it retry a few times, then bring the API back.
		time.Sleep(3 * time.Second)
		api, err := c.RestartAPIServer()
		if err != nil {
			t.Fatal(err)
		}
		restarted := time.Now()
		select {
		case err := <-done:
			if err != nil {
				t.Fatalf("Apply after the apiserver came back: %v", err)
			}
		case <-time.After(90 * time.Second):
			t.Fatal("Apply did not finish within 90 s of the restart")
		}
		mu.Lock()
		n := len(retries)
		mu.Unlock()
		t.Logf("applied %s after the apiserver (pid %d) was restarted, after %d retries", time.Since(restarted).Round(time.Millisecond), api.PID(), n)
		if n < 2 {
			t.Errorf("%d retries during a 3 s outage, want at least 2 (the first comes after %s)", n, "250ms")
		}
		u, err := dyn.Resource(schema.GroupVersionResource{Version: "v1", Resource: "configmaps"}).Namespace("default").Get(t.Context(), "nodeboot-e2e-outage", metav1.GetOptions{})
		if err != nil {
			t.Fatalf("the ConfigMap applied through the outage: %v", err)
		}
		if v, _, _ := unstructured.NestedString(u.Object, "data", "k"); v != "v" {
			t.Errorf("data.k = %q, want v", v)
		}
	})
}
