package manifests

import (
	_ "embed"
	"fmt"
	"strconv"
	"time"
)

//go:embed smoke/smoke.yaml
var smokeYAML []byte

// smokeSource is the Source of the objects Smoke returns; WriteAutoDeploy
// names their file nodeboot-smoke.yaml.
const smokeSource = "smoke.yaml"

// Smoke returns the embedded smoke set (smoke/smoke.yaml): namespace
// nodeboot-smoke and a busybox Job there that completes only when the
// scheduler and the kubelet work. The Job is named smoke-<time> (base 36
// seconds), so that every call proves scheduling anew.
func Smoke() []Object {
	objs, err := decode(smokeSource, smokeYAML)
	if err != nil {
		panic(fmt.Sprintf("embedded smoke manifest: %v", err)) // a build defect; TestSmoke catches it
	}
	suffix := strconv.FormatInt(time.Now().Unix(), 36)
	for _, o := range objs {
		if o.Obj.GetKind() == "Job" {
			o.Obj.SetName(o.Obj.GetName() + "-" + suffix)
		}
	}
	return objs
}
