package manifests

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/rest"
)

// TestTransient classifies errors as client-go produces them from a
// server's answers (an HTTP server that answers with the Status bodies a
// kube-apiserver sends, a closed port, a dropped connection), wrapped the
// way apply wraps them. The retry itself, against a real kube-apiserver
// that is stopped and restarted, is in e2e/manifests_test.go.
func TestTransient(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		name := r.URL.Path[strings.LastIndexByte(r.URL.Path, '/')+1:]
		if name == "drop" {
			// Close the connection without an answer, as a server that
			// is killed mid-request does.
			conn, _, err := w.(http.Hijacker).Hijack()
			if err == nil {
				conn.Close()
			}
			return
		}
		// NAME is "CODE" or "CODE-WHAT", for a Status with that code, the
		// reason kube-apiserver gives it, and WHAT's message.
		codeStr, what, _ := strings.Cut(strings.TrimPrefix(name, "status-"), "-")
		code, _ := strconv.Atoi(codeStr)
		reason := map[int]metav1.StatusReason{
			400: metav1.StatusReasonBadRequest, 403: metav1.StatusReasonForbidden,
			404: metav1.StatusReasonNotFound, 409: metav1.StatusReasonConflict,
			422: metav1.StatusReasonInvalid, 500: metav1.StatusReasonInternalError,
			503: metav1.StatusReasonServiceUnavailable, 504: metav1.StatusReasonTimeout,
		}[code]
		msg := map[string]string{
			"webhook": `Internal error occurred: failed calling webhook "validate.example.com": failed to call webhook: Post "https://webhook.example.svc:443/validate": dial tcp 10.43.0.10:443: connect: connection refused`,
			"etcd":    "etcdserver: leader changed",
			// What kube-apiserver 1.36 answers a server-side apply with an
			// unknown field under strict validation.
			"unknownfield": `failed to create typed patch object (default/web; apps/v1, Kind=Deployment): .spec.colour: field not declared in schema`,
			"other":        "Internal error occurred: unexpected nil pointer",
			"unavailable":  "the server is currently unable to handle the request",
		}[what]
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(code)
		json.NewEncoder(w).Encode(metav1.Status{
			TypeMeta: metav1.TypeMeta{Kind: "Status", APIVersion: "v1"},
			Status:   metav1.StatusFailure, Code: int32(code), Reason: reason, Message: msg,
		})
	}))
	defer srv.Close()
	closed, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closedAddr := closed.Addr().String()
	closed.Close()

	// apply's request: a server-side apply patch through the dynamic
	// client (which, unlike a GET, client-go does not retry by itself).
	apply := func(host, name string) error {
		dyn, err := dynamic.NewForConfig(&rest.Config{Host: host, Timeout: 5 * time.Second})
		if err != nil {
			t.Fatal(err)
		}
		force := true
		_, err = dyn.Resource(schema.GroupVersionResource{Group: "apps", Version: "v1", Resource: "deployments"}).Namespace("default").
			Patch(t.Context(), name, types.ApplyPatchType, []byte(`{"apiVersion":"apps/v1","kind":"Deployment"}`), metav1.PatchOptions{FieldManager: "nodeboot", Force: &force})
		if err == nil {
			t.Fatalf("apply %s at %s: no error", name, host)
		}
		// As apply reports it.
		return fmt.Errorf("deploy.yaml doc 1 (Deployment/%s): %w", name, err)
	}
	discovery := func(host string) error {
		m, err := newMapper(&rest.Config{Host: host, Timeout: 5 * time.Second})
		if err != nil {
			t.Fatal(err)
		}
		_, err = m.RESTMapping(t.Context(), schema.GroupKind{Group: "apps", Kind: "Deployment"}, "v1")
		return fmt.Errorf("deploy.yaml doc 1 (Deployment/web): %w", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	for _, tc := range []struct {
		name string
		err  func() error
		want bool
	}{
		{"400 bad request", func() error { return apply(srv.URL, "status-400") }, false},
		{"403 forbidden", func() error { return apply(srv.URL, "status-403") }, false},
		{"404 not found", func() error { return apply(srv.URL, "status-404") }, false},
		{"409 conflict", func() error { return apply(srv.URL, "status-409") }, false},
		{"422 invalid", func() error { return apply(srv.URL, "status-422") }, false},
		{"500 webhook not up", func() error { return apply(srv.URL, "status-500-webhook") }, true},
		{"500 etcd leader changed", func() error { return apply(srv.URL, "status-500-etcd") }, true},
		{"500 unknown field", func() error { return apply(srv.URL, "status-500-unknownfield") }, false},
		{"500 other", func() error { return apply(srv.URL, "status-500-other") }, false},
		{"503 unavailable", func() error { return apply(srv.URL, "status-503-unavailable") }, true},
		{"504 timeout", func() error { return apply(srv.URL, "status-504") }, true},
		{"429 too many requests", func() error { return apierrors.NewTooManyRequests("slow down", 1) }, true},
		{"connection refused", func() error { return apply("http://"+closedAddr, "web") }, true},
		{"connection dropped", func() error { return apply(srv.URL, "drop") }, true},
		{"discovery unreachable", func() error { return discovery("http://" + closedAddr) }, true},
		{"unknown kind", func() error {
			return &meta.NoKindMatchError{GroupKind: schema.GroupKind{Group: "example.com", Kind: "Widget"}, SearchedVersions: []string{"v1"}}
		}, false},
		{"cancelled", func() error { return ctx.Err() }, false},
		{"nil", func() error { return nil }, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.err()
			t.Logf("%v", err)
			if got := Transient(err); got != tc.want {
				t.Errorf("Transient(%v) = %v, want %v", err, got, tc.want)
			}
		})
	}
}
