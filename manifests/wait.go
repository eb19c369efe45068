package manifests

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/tools/cache"
	toolswatch "k8s.io/client-go/tools/watch"
)

// checkFunc looks at the current state of an object. It returns done when
// the object is ready, a short human status otherwise, and an error when
// the object can never become ready (a failed Job), which ends the wait.
type checkFunc func(u *unstructured.Unstructured) (done bool, status string, err error)

// waitItem is one applied object to wait for.
type waitItem struct {
	obj   Object
	gvr   schema.GroupVersionResource
	ns    string
	name  string
	check checkFunc
	// absent is the status while the object does not exist; "" means
	// "not found (deleted?)", right for an object just applied.
	absent string

	status string // last status, for the timeout message
}

func (w *waitItem) label() string { return label(w.obj.Obj.GetKind(), w.ns, w.name) }

// checkFor returns the readiness check of a kind, or nil for kinds that
// are ready once the API server accepted them.
func checkFor(gk schema.GroupKind) checkFunc {
	switch gk {
	case schema.GroupKind{Group: "apps", Kind: "Deployment"}:
		return deploymentReady
	case schema.GroupKind{Group: "apps", Kind: "StatefulSet"}:
		return statefulSetReady
	case schema.GroupKind{Group: "apps", Kind: "DaemonSet"}:
		return daemonSetReady
	case schema.GroupKind{Group: "batch", Kind: "Job"}:
		return jobComplete
	case schema.GroupKind{Kind: "Pod"}:
		return podReady
	case crdGK:
		return crdEstablished
	}
	return nil
}

// waitAll waits for every item at once, so that a failure anywhere ends
// the wait at once. On the deadline it reports every unfinished item with
// its last status.
func (a *applier) waitAll(ctx context.Context, items []*waitItem) error {
	if len(items) == 0 {
		return nil
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	errs := make([]error, len(items))
	for i, w := range items {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if errs[i] = a.wait(ctx, w); errs[i] != nil {
				cancel() // a failure or the deadline: stop the other waits
			}
		}()
	}
	wg.Wait()
	var pending []string
	for i, err := range errs {
		var stop *stoppedError
		switch {
		case err == nil:
		case errors.As(err, &stop):
			pending = append(pending, fmt.Sprintf("%s: %s", items[i].label(), items[i].status))
		default:
			return err // a real failure, not the wait being cut short
		}
	}
	if len(pending) == 0 {
		return nil
	}
	return &waitError{cause: context.Cause(ctx), pending: pending}
}

// waitError is the deadline (or the caller's cancellation) ending a wait.
// It matches context.DeadlineExceeded or context.Canceled with errors.Is.
type waitError struct {
	cause   error
	pending []string
}

func (e *waitError) Error() string {
	return fmt.Sprintf("%v waiting for %s", e.cause, strings.Join(e.pending, "; "))
}

func (e *waitError) Unwrap() error { return e.cause }

// timeoutError is Apply's deadline, as the context's cause.
type timeoutError struct{ after time.Duration }

func (e *timeoutError) Error() string { return fmt.Sprintf("timed out after %s", e.after) }
func (e *timeoutError) Unwrap() error { return context.DeadlineExceeded }

// stoppedError marks a wait ended by the deadline or by another failure.
type stoppedError struct{ err error }

func (e *stoppedError) Error() string { return e.err.Error() }
func (e *stoppedError) Unwrap() error { return e.err }

// wait watches one object (list+watch with a metadata.name field selector)
// until its check says done. The check is level-driven: it looks at the
// whole object on every event, so a missed event costs nothing.
func (a *applier) wait(ctx context.Context, w *waitItem) error {
	ri := a.dyn.Resource(w.gvr).Namespace(w.ns)
	sel := fields.OneTermEqualSelector("metadata.name", w.name).String()
	lw := &cache.ListWatch{
		ListWithContextFunc: func(ctx context.Context, o metav1.ListOptions) (runtime.Object, error) {
			o.FieldSelector = sel
			return ri.List(ctx, o)
		},
		WatchFuncWithContext: func(ctx context.Context, o metav1.ListOptions) (watch.Interface, error) {
			o.FieldSelector = sel
			return ri.Watch(ctx, o)
		},
	}
	w.status = "not seen yet"
	report := func(status string) {
		if status != w.status {
			w.status = status
			a.progress(fmt.Sprintf("waiting for %s: %s", w.label(), status))
		}
	}
	pre := func(store cache.Store) (bool, error) {
		if len(store.List()) == 0 {
			if w.absent != "" {
				report(w.absent)
			} else {
				report("not found (deleted?)")
			}
		}
		return false, nil
	}
	_, err := toolswatch.UntilWithSync(ctx, lw, &unstructured.Unstructured{}, pre, func(ev watch.Event) (bool, error) {
		if ev.Type == watch.Deleted {
			report("deleted")
			return false, nil
		}
		u, ok := ev.Object.(*unstructured.Unstructured)
		if !ok {
			return false, nil
		}
		done, status, err := w.check(u)
		if err != nil {
			return false, fmt.Errorf("%s: %w", w.obj, err)
		}
		if !done {
			report(status)
		}
		return done, nil
	})
	if err != nil {
		if ctx.Err() != nil {
			return &stoppedError{err}
		}
		return err
	}
	a.progress(w.label() + " ready")
	return nil
}

// condition returns the status, reason and message of a status condition.
func condition(u *unstructured.Unstructured, typ string) (status, reason, message string) {
	conds, _, _ := unstructured.NestedSlice(u.Object, "status", "conditions")
	for _, c := range conds {
		m, ok := c.(map[string]any)
		if !ok || m["type"] != typ {
			continue
		}
		s, _ := m["status"].(string)
		r, _ := m["reason"].(string)
		msg, _ := m["message"].(string)
		return s, r, msg
	}
	return "", "", ""
}

func nestedInt(u *unstructured.Unstructured, def int64, path ...string) int64 {
	v, found, err := unstructured.NestedFieldNoCopy(u.Object, path...)
	if !found || err != nil {
		return def
	}
	switch n := v.(type) {
	case int64:
		return n
	case float64:
		return int64(n)
	}
	return def
}

// observed reports whether the controller has seen the latest spec, and a
// status that says so when not.
func observed(u *unstructured.Unstructured, controller string) (bool, string) {
	gen, obs := u.GetGeneration(), nestedInt(u, 0, "status", "observedGeneration")
	if obs >= gen {
		return true, ""
	}
	return false, fmt.Sprintf("generation %d not yet observed by the %s controller (observed %d; is kube-controller-manager running?)", gen, controller, obs)
}

func deploymentReady(u *unstructured.Unstructured) (bool, string, error) {
	want := nestedInt(u, 1, "spec", "replicas")
	updated := nestedInt(u, 0, "status", "updatedReplicas")
	total := nestedInt(u, 0, "status", "replicas")
	avail := nestedInt(u, 0, "status", "availableReplicas")
	status := fmt.Sprintf("%d/%d available", avail, want)
	if ok, why := observed(u, "deployment"); !ok {
		return false, status + ", " + why, nil
	}
	if s, r, msg := condition(u, "Progressing"); s == "False" && r == "ProgressDeadlineExceeded" {
		return false, status, fmt.Errorf("progress deadline exceeded: %s", msg)
	}
	switch {
	case updated < want:
		return false, fmt.Sprintf("%s, %d/%d updated", status, updated, want), nil
	case total > updated:
		return false, fmt.Sprintf("%s, %d old replicas pending termination", status, total-updated), nil
	case avail < updated:
		return false, status, nil
	}
	if s, r, msg := condition(u, "Available"); s != "True" {
		return false, fmt.Sprintf("%s, Available condition %q (%s: %s)", status, s, r, msg), nil
	}
	return true, status, nil
}

func statefulSetReady(u *unstructured.Unstructured) (bool, string, error) {
	want := nestedInt(u, 1, "spec", "replicas")
	ready := nestedInt(u, 0, "status", "readyReplicas")
	updated := nestedInt(u, 0, "status", "updatedReplicas")
	status := fmt.Sprintf("%d/%d ready", ready, want)
	if ok, why := observed(u, "statefulset"); !ok {
		return false, status + ", " + why, nil
	}
	if ready < want {
		return false, status, nil
	}
	// OnDelete: pods change only when someone deletes them, so there is no
	// rollout to wait for.
	if typ, _, _ := unstructured.NestedString(u.Object, "spec", "updateStrategy", "type"); typ != "OnDelete" {
		cur, _, _ := unstructured.NestedString(u.Object, "status", "currentRevision")
		upd, _, _ := unstructured.NestedString(u.Object, "status", "updateRevision")
		if updated < want || cur != upd {
			return false, fmt.Sprintf("%s, %d/%d updated", status, updated, want), nil
		}
	}
	return true, status, nil
}

func daemonSetReady(u *unstructured.Unstructured) (bool, string, error) {
	desired := nestedInt(u, 0, "status", "desiredNumberScheduled")
	avail := nestedInt(u, 0, "status", "numberAvailable")
	updated := nestedInt(u, 0, "status", "updatedNumberScheduled")
	status := fmt.Sprintf("%d/%d available", avail, desired)
	if ok, why := observed(u, "daemonset"); !ok {
		return false, status + ", " + why, nil
	}
	if typ, _, _ := unstructured.NestedString(u.Object, "spec", "updateStrategy", "type"); typ != "OnDelete" && updated < desired {
		return false, fmt.Sprintf("%s, %d/%d updated", status, updated, desired), nil
	}
	return avail >= desired, status, nil
}

func jobComplete(u *unstructured.Unstructured) (bool, string, error) {
	if s, r, msg := condition(u, "Failed"); s == "True" {
		return false, "failed", fmt.Errorf("job failed: %s: %s", r, msg)
	}
	if s, _, _ := condition(u, "Complete"); s == "True" {
		return true, "complete", nil
	}
	status := fmt.Sprintf("not complete: %d active, %d succeeded, %d failed",
		nestedInt(u, 0, "status", "active"), nestedInt(u, 0, "status", "succeeded"), nestedInt(u, 0, "status", "failed"))
	if s, _, _ := unstructured.NestedBool(u.Object, "spec", "suspend"); s {
		return false, status + " (suspended)", nil
	}
	// The job controller sets startTime when it first syncs the Job.
	if _, found, _ := unstructured.NestedString(u.Object, "status", "startTime"); !found {
		status += ", not started by the job controller yet (is kube-controller-manager running?)"
	}
	return false, status, nil
}

// podReady is done when the Pod is Ready, or has Succeeded: a run-once Pod
// that completed has proven what it was there for and will never be Ready.
func podReady(u *unstructured.Unstructured) (bool, string, error) {
	phase, _, _ := unstructured.NestedString(u.Object, "status", "phase")
	switch phase {
	case "Succeeded":
		return true, "succeeded", nil
	case "Failed":
		why := "pod failed"
		if r, _, _ := unstructured.NestedString(u.Object, "status", "reason"); r != "" {
			why += ": " + r
		}
		if msg, _, _ := unstructured.NestedString(u.Object, "status", "message"); msg != "" {
			why += ": " + msg
		}
		return false, "failed", errors.New(why + containerProblems(u))
	}
	if s, _, _ := condition(u, "Ready"); s == "True" {
		return true, "ready", nil
	}
	if phase == "" {
		phase = "Pending"
	}
	status := phase
	if s, r, msg := condition(u, "PodScheduled"); s == "False" {
		status += fmt.Sprintf(", not scheduled (%s: %s)", r, msg)
	} else if s == "" && phase == "Pending" {
		status += ", not scheduled yet (is a scheduler running?)"
	}
	return false, status + containerProblems(u), nil
}

// containerProblems lists containers that wait or ended, with the reason.
func containerProblems(u *unstructured.Unstructured) string {
	var out []string
	for _, key := range []string{"initContainerStatuses", "containerStatuses"} {
		sts, _, _ := unstructured.NestedSlice(u.Object, "status", key)
		for _, s := range sts {
			m, _ := s.(map[string]any)
			name, _ := m["name"].(string)
			if w, ok, _ := unstructured.NestedMap(m, "state", "waiting"); ok {
				out = append(out, strings.TrimSpace(fmt.Sprintf("container %s waiting: %v %v", name, w["reason"], orEmpty(w["message"]))))
			}
			if t, ok, _ := unstructured.NestedMap(m, "state", "terminated"); ok && t["reason"] != "Completed" {
				out = append(out, strings.TrimSpace(fmt.Sprintf("container %s terminated: %v (exit %v) %v", name, t["reason"], t["exitCode"], orEmpty(t["message"]))))
			}
		}
	}
	if len(out) == 0 {
		return ""
	}
	return "; " + strings.Join(out, "; ")
}

func orEmpty(v any) any {
	if v == nil {
		return ""
	}
	return v
}

func crdEstablished(u *unstructured.Unstructured) (bool, string, error) {
	if s, r, msg := condition(u, "NamesAccepted"); s == "False" {
		return false, "names not accepted", fmt.Errorf("names not accepted: %s: %s", r, msg)
	}
	if s, _, _ := condition(u, "Established"); s == "True" {
		return true, "established", nil
	}
	return false, "not established yet", nil
}
