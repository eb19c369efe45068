package manifests

import (
	"context"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/serializer"
	"k8s.io/client-go/rest"

	"github.com/nodeboot/nodeboot/images"
)

//go:embed smoke/smoke.yaml
var smokeYAML []byte

// smokeSource is the Source of the objects Smoke returns; WriteAutoDeploy
// names their file nodeboot-smoke.yaml.
const smokeSource = "smoke.yaml"

// Smoke returns the embedded smoke set (smoke/smoke.yaml): namespace
// nodeboot-smoke and a Job there that completes only when the scheduler
// and the kubelet work, running image (nodeboot's smoke image,
// images.Builtin.Smoke, which the node must have: the pull policy is
// Never). The Job is named smoke-<time> (base 36 seconds), so that every
// call proves scheduling anew.
func Smoke(image string) []Object {
	objs, err := decode(smokeSource, smokeYAML)
	if err != nil {
		panic(fmt.Sprintf("embedded smoke manifest: %v", err)) // a build defect; TestSmoke catches it
	}
	suffix := strconv.FormatInt(time.Now().Unix(), 36)
	for _, o := range objs {
		if o.Obj.GetKind() != "Job" {
			continue
		}
		o.Obj.SetName(o.Obj.GetName() + "-" + suffix)
		cs, _, _ := unstructuredSlice(o.Obj.Object, "spec", "template", "spec", "containers")
		for _, c := range cs {
			if m, ok := c.(map[string]any); ok {
				m["image"] = image
			}
		}
	}
	return objs
}

// unstructuredSlice is the []any at path in obj.
func unstructuredSlice(obj map[string]any, path ...string) ([]any, bool, error) {
	var cur any = obj
	for _, p := range path {
		m, ok := cur.(map[string]any)
		if !ok {
			return nil, false, nil
		}
		cur = m[p]
	}
	s, ok := cur.([]any)
	return s, ok, nil
}

// SmokeLog reads back, through the API's pod log endpoint, what the smoke
// Job of objs (as Smoke returned them, applied and complete) printed, and
// returns its line. It fails unless the Job's pod succeeded and printed
// images.SmokeLine: a Complete Job proves the container exited 0, the log
// proves it was the smoke image that ran and that logs reach the API.
func SmokeLog(ctx context.Context, cfg *rest.Config, objs []Object) (string, error) {
	var ns, job string
	for _, o := range objs {
		if o.Source == smokeSource && o.Obj.GetKind() == "Job" {
			ns, job = o.Obj.GetNamespace(), o.Obj.GetName()
		}
	}
	if job == "" {
		return "", errors.New("smoke log: no smoke Job among the objects")
	}
	rc := rest.CopyConfig(cfg)
	rc.NegotiatedSerializer = serializer.NewCodecFactory(runtime.NewScheme()).WithoutConversion()
	client, err := rest.UnversionedRESTClientFor(rc)
	if err != nil {
		return "", fmt.Errorf("smoke log: %w", err)
	}
	b, err := client.Get().AbsPath("/api/v1/namespaces", ns, "pods").
		Param("labelSelector", "batch.kubernetes.io/job-name="+job).DoRaw(ctx)
	if err != nil {
		return "", fmt.Errorf("smoke log: list the pods of job %s/%s: %w", ns, job, err)
	}
	var pods corev1.PodList
	if err := json.Unmarshal(b, &pods); err != nil {
		return "", fmt.Errorf("smoke log: pods of job %s/%s: %w", ns, job, err)
	}
	var pod string
	for _, p := range pods.Items {
		if p.Status.Phase == corev1.PodSucceeded {
			pod = p.Name
		}
	}
	if pod == "" {
		return "", fmt.Errorf("smoke log: job %s/%s has no succeeded pod (%d pods)", ns, job, len(pods.Items))
	}
	b, err = client.Get().AbsPath("/api/v1/namespaces", ns, "pods", url.PathEscape(pod), "log").
		Param("container", "smoke").DoRaw(ctx)
	if err != nil {
		return "", fmt.Errorf("smoke log: GET the log of pod %s/%s: %w", ns, pod, err)
	}
	line := strings.TrimSpace(string(b))
	if !strings.HasPrefix(line, images.SmokeLine) {
		return line, fmt.Errorf("smoke log: pod %s/%s printed %q, want a line starting %q", ns, pod, line, images.SmokeLine)
	}
	return line, nil
}
