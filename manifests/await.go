package manifests

import (
	"context"
	"errors"
	"fmt"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

// Await waits, within cfg.Timeout, until every object of objs exists in
// the cluster and the ones with a notion of ready (as for Apply:
// Deployments, StatefulSets, DaemonSets, Jobs, Pods, CRDs) are ready. It
// applies nothing: it is for objects that someone else applies, k3s's
// deploy controller after WriteAutoDeploy. cfg.FieldManager is not used.
//
// absent gives the status shown while an object does not exist yet (it
// should say who is expected to create it); nil means "not created yet".
// Errors are Apply's: a kind the API server does not serve (and that no
// CRD of objs defines), a failed Job or Pod, or the timeout with what each
// unfinished object was waiting for.
func Await(ctx context.Context, cfg ApplyConfig, objs []Object, absent func(Object) string) error {
	if cfg.REST == nil {
		return errors.New("await manifests: no REST config (the kubeconfig of the cluster)")
	}
	if len(objs) == 0 {
		return nil
	}
	a, err := newApplier(cfg)
	if err != nil {
		return fmt.Errorf("await manifests: %w", err)
	}
	ctx, cancel := context.WithTimeoutCause(ctx, a.cfg.Timeout, &timeoutError{a.cfg.Timeout})
	defer cancel()
	for _, o := range objs {
		if o.Obj == nil {
			return fmt.Errorf("await manifests: %s doc %d: no object", o.Source, o.Index)
		}
		if o.Obj.GroupVersionKind().GroupKind() == crdGK {
			a.noteCRD(o)
		}
	}
	// CRDs first: the kinds they define are served only once they are
	// Established, and asking discovery for them before would poll it.
	var crds, rest []Object
	for _, o := range objs {
		if o.Obj.GroupVersionKind().GroupKind() == crdGK {
			crds = append(crds, o)
		} else {
			rest = append(rest, o)
		}
	}
	for _, set := range [][]Object{crds, rest} {
		if len(set) == 0 {
			continue
		}
		items := make([]*waitItem, 0, len(set))
		for _, o := range set {
			var w *waitItem
			err := a.retrying(ctx, o, func() (err error) {
				w, err = a.awaitItem(ctx, o)
				return err
			})
			if err != nil {
				return a.fail(ctx, err)
			}
			w.absent = "not created yet"
			if absent != nil {
				w.absent = absent(o)
			}
			items = append(items, w)
		}
		a.progress(fmt.Sprintf("waiting for %d object%s", len(items), plural(len(items))))
		if err := a.waitAll(ctx, items); err != nil {
			return err
		}
	}
	return nil
}

// awaitItem maps o to the resource to watch. A kind that a CRD of the set
// defines is waited for (mapping polls until the CRD is served).
func (a *applier) awaitItem(ctx context.Context, o Object) (*waitItem, error) {
	m, err := a.mapping(ctx, o.Obj)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", o, err)
	}
	ns := ""
	if m.Scope.Name() == meta.RESTScopeNameNamespace {
		// As Apply (and k3s's deploy controller) put it.
		if ns = o.Obj.GetNamespace(); ns == "" {
			ns = metav1.NamespaceDefault
		}
	}
	check := checkFor(m.GroupVersionKind.GroupKind())
	if check == nil {
		check = exists
	}
	return &waitItem{obj: o, gvr: m.Resource, ns: ns, name: o.Obj.GetName(), check: check}, nil
}

// exists is the check of kinds without a notion of ready: there is one.
func exists(*unstructured.Unstructured) (bool, string, error) { return true, "", nil }
