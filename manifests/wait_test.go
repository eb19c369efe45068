package manifests

import (
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	utiljson "k8s.io/apimachinery/pkg/util/json"
	"sigs.k8s.io/yaml"
)

// obj parses a YAML object for the readiness checks.
func obj(t *testing.T, y string) *unstructured.Unstructured {
	t.Helper()
	j, err := yaml.YAMLToJSON([]byte(y))
	if err != nil {
		t.Fatal(err)
	}
	m := map[string]any{}
	if err := utiljson.Unmarshal(j, &m); err != nil { // int64 numbers, as from the API
		t.Fatal(err)
	}
	return &unstructured.Unstructured{Object: m}
}

// TestChecks covers the readiness checks on the states the e2e test bed
// (no controllers) never reaches.
func TestChecks(t *testing.T) {
	for _, tc := range []struct {
		name       string
		gk         schema.GroupKind
		y          string
		done       bool
		status     string // substring
		errContain string // "" means no error
	}{
		{"deployment unobserved", schema.GroupKind{Group: "apps", Kind: "Deployment"},
			"metadata: {generation: 2}\nspec: {replicas: 2}\nstatus: {observedGeneration: 1, availableReplicas: 2, updatedReplicas: 2, replicas: 2}",
			false, "2/2 available, generation 2 not yet observed", ""},
		{"deployment rolling", schema.GroupKind{Group: "apps", Kind: "Deployment"},
			"metadata: {generation: 2}\nspec: {replicas: 2}\nstatus: {observedGeneration: 2, availableReplicas: 2, updatedReplicas: 1, replicas: 3}",
			false, "2/2 available, 1/2 updated", ""},
		{"deployment old replicas", schema.GroupKind{Group: "apps", Kind: "Deployment"},
			"metadata: {generation: 2}\nspec: {replicas: 2}\nstatus: {observedGeneration: 2, availableReplicas: 2, updatedReplicas: 2, replicas: 3}",
			false, "1 old replicas pending termination", ""},
		{"deployment available", schema.GroupKind{Group: "apps", Kind: "Deployment"},
			"metadata: {generation: 1}\nstatus: {observedGeneration: 1, availableReplicas: 1, updatedReplicas: 1, replicas: 1, conditions: [{type: Available, status: 'True'}]}",
			true, "1/1 available", ""},
		{"deployment deadline", schema.GroupKind{Group: "apps", Kind: "Deployment"},
			"metadata: {generation: 1}\nstatus: {observedGeneration: 1, conditions: [{type: Progressing, status: 'False', reason: ProgressDeadlineExceeded, message: 'ReplicaSet \"x\" has timed out progressing.'}]}",
			false, "", "progress deadline exceeded: ReplicaSet"},
		{"statefulset rolling", schema.GroupKind{Group: "apps", Kind: "StatefulSet"},
			"metadata: {generation: 1}\nspec: {replicas: 2}\nstatus: {observedGeneration: 1, readyReplicas: 2, updatedReplicas: 1, currentRevision: a, updateRevision: b}",
			false, "2/2 ready, 1/2 updated", ""},
		{"statefulset ready", schema.GroupKind{Group: "apps", Kind: "StatefulSet"},
			"metadata: {generation: 1}\nspec: {replicas: 2}\nstatus: {observedGeneration: 1, readyReplicas: 2, updatedReplicas: 2, currentRevision: b, updateRevision: b}",
			true, "2/2 ready", ""},
		{"statefulset OnDelete", schema.GroupKind{Group: "apps", Kind: "StatefulSet"},
			"metadata: {generation: 1}\nspec: {replicas: 1, updateStrategy: {type: OnDelete}}\nstatus: {observedGeneration: 1, readyReplicas: 1, currentRevision: a, updateRevision: b}",
			true, "1/1 ready", ""},
		{"daemonset partial", schema.GroupKind{Group: "apps", Kind: "DaemonSet"},
			"metadata: {generation: 1}\nstatus: {observedGeneration: 1, desiredNumberScheduled: 3, updatedNumberScheduled: 3, numberAvailable: 2}",
			false, "2/3 available", ""},
		{"daemonset rolled out", schema.GroupKind{Group: "apps", Kind: "DaemonSet"},
			"metadata: {generation: 1}\nstatus: {observedGeneration: 1, desiredNumberScheduled: 1, updatedNumberScheduled: 1, numberAvailable: 1}",
			true, "1/1 available", ""},
		{"job running", schema.GroupKind{Group: "batch", Kind: "Job"},
			"status: {startTime: '2026-01-01T00:00:00Z', active: 1}",
			false, "not complete: 1 active, 0 succeeded, 0 failed", ""},
		{"job complete", schema.GroupKind{Group: "batch", Kind: "Job"},
			"status: {conditions: [{type: SuccessCriteriaMet, status: 'True'}, {type: Complete, status: 'True'}]}",
			true, "complete", ""},
		{"job failed", schema.GroupKind{Group: "batch", Kind: "Job"},
			"status: {conditions: [{type: Failed, status: 'True', reason: BackoffLimitExceeded, message: Job has reached the specified backoff limit}]}",
			false, "", "job failed: BackoffLimitExceeded: Job has reached the specified backoff limit"},
		{"pod unschedulable", schema.GroupKind{Kind: "Pod"},
			"status: {phase: Pending, conditions: [{type: PodScheduled, status: 'False', reason: Unschedulable, message: '0/1 nodes are available'}]}",
			false, "Pending, not scheduled (Unschedulable: 0/1 nodes are available)", ""},
		{"pod image pull", schema.GroupKind{Kind: "Pod"},
			"status: {phase: Pending, conditions: [{type: PodScheduled, status: 'True'}], containerStatuses: [{name: c, state: {waiting: {reason: ImagePullBackOff, message: 'Back-off pulling image'}}}]}",
			false, "Pending; container c waiting: ImagePullBackOff Back-off pulling image", ""},
		{"pod ready", schema.GroupKind{Kind: "Pod"},
			"status: {phase: Running, conditions: [{type: Ready, status: 'True'}]}",
			true, "ready", ""},
		{"pod succeeded", schema.GroupKind{Kind: "Pod"},
			"status: {phase: Succeeded}",
			true, "succeeded", ""},
		{"pod failed", schema.GroupKind{Kind: "Pod"},
			"status: {phase: Failed, containerStatuses: [{name: c, state: {terminated: {reason: Error, exitCode: 3}}}]}",
			false, "", "pod failed; container c terminated: Error (exit 3)"},
		{"pod evicted", schema.GroupKind{Kind: "Pod"},
			"status: {phase: Failed, reason: Evicted, message: 'The node was low on resource: memory.'}",
			false, "", "pod failed: Evicted: The node was low on resource: memory."},
		{"crd pending", crdGK, "status: {}", false, "not established yet", ""},
		{"crd established", crdGK, "status: {conditions: [{type: NamesAccepted, status: 'True'}, {type: Established, status: 'True'}]}", true, "established", ""},
		{"crd name clash", crdGK, "status: {conditions: [{type: NamesAccepted, status: 'False', reason: ListKindConflict, message: 'x is already in use'}]}", false, "", "names not accepted: ListKindConflict: x is already in use"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			check := checkFor(tc.gk)
			if check == nil {
				t.Fatalf("no check for %v", tc.gk)
			}
			done, status, err := check(obj(t, tc.y))
			if tc.errContain != "" {
				if err == nil || !strings.Contains(err.Error(), tc.errContain) {
					t.Fatalf("err = %v, want %q", err, tc.errContain)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if done != tc.done || !strings.Contains(status, tc.status) {
				t.Fatalf("check = %v, %q; want %v, %q", done, status, tc.done, tc.status)
			}
		})
	}
	for _, gk := range []schema.GroupKind{{Kind: "ConfigMap"}, {Kind: "Namespace"}, {Kind: "Service"}, {Group: "e2e.nodeboot.dev", Kind: "Widget"}} {
		if checkFor(gk) != nil {
			t.Errorf("%v has a check; it should need no wait", gk)
		}
	}
}
