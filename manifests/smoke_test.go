package manifests

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"

	"github.com/nodeboot/nodeboot/images"
)

// TestSmokeLog drives SmokeLog against an HTTP server that answers the two
// API requests it makes (the e2e test TestK3sPods runs it against k3s): the
// Job's pods by the job-name label, then the succeeded pod's log.
func TestSmokeLog(t *testing.T) {
	objs := Smoke("nodeboot.local/smoke:test")
	job := objs[1].Obj.GetName()
	for _, c := range []struct {
		name   string
		phase  corev1.PodPhase
		log    string
		errHas string
	}{
		{"ok", corev1.PodSucceeded, images.SmokeLine + "n1\n", ""},
		{"not succeeded", corev1.PodRunning, "", "has no succeeded pod (1 pods)"},
		{"another line", corev1.PodSucceeded, "hello\n", `printed "hello", want a line starting`},
	} {
		t.Run(c.name, func(t *testing.T) {
			var paths []string
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				paths = append(paths, r.URL.Path+"?"+r.URL.RawQuery)
				switch r.URL.Path {
				case "/api/v1/namespaces/nodeboot-smoke/pods":
					if r.URL.Query().Get("labelSelector") != "batch.kubernetes.io/job-name="+job {
						http.Error(w, "bad selector", http.StatusBadRequest)
						return
					}
					list := corev1.PodList{Items: []corev1.Pod{{ObjectMeta: metav1.ObjectMeta{Name: job + "-abcde"}, Status: corev1.PodStatus{Phase: c.phase}}}}
					json.NewEncoder(w).Encode(list)
				case "/api/v1/namespaces/nodeboot-smoke/pods/" + job + "-abcde/log":
					w.Write([]byte(c.log))
				default:
					http.NotFound(w, r)
				}
			}))
			defer srv.Close()
			line, err := SmokeLog(t.Context(), &rest.Config{Host: srv.URL}, objs)
			if c.errHas != "" {
				if err == nil || !strings.Contains(err.Error(), c.errHas) {
					t.Fatalf("SmokeLog: %q, %v; want an error with %q", line, err, c.errHas)
				}
				return
			}
			if err != nil || line != images.SmokeLine+"n1" {
				t.Fatalf("SmokeLog: %q, %v (requests %q)", line, err, paths)
			}
			if len(paths) != 2 || !strings.HasSuffix(paths[1], "?container=smoke") {
				t.Errorf("requests %q, want the pod list, then the smoke container's log", paths)
			}
		})
	}
	if _, err := SmokeLog(t.Context(), &rest.Config{Host: "http://127.0.0.1:1"}, objs[:1]); err == nil || !strings.Contains(err.Error(), "no smoke Job") {
		t.Errorf("without the Job: %v", err)
	}
}
