package up

import (
	"strings"
	"testing"

	"github.com/nodeboot/nodeboot/health"
	"github.com/nodeboot/nodeboot/node"
)

// TestMissing: the exit-3 message of "up --wait" says what had not
// happened yet, not only the last health report (which is Ready when the
// Ready condition is an earlier kubelet's, or the manifests are pending).
func TestMissing(t *testing.T) {
	ready := &node.Health{State: health.Ready, Reason: "KubeletReady", Message: "kubelet is posting ready status"}
	for _, tc := range []struct {
		name  string
		phase node.Phase
		h     *node.Health
		apply string
		want  string
	}{
		{"nothing yet", "", nil, "", "no health report yet"},
		{"seeding", node.PhaseSeeding, nil, "", "no health report yet (phase seeding)"},
		{"no kubeconfig", node.PhaseStarting, &node.Health{State: health.Unreachable, Reason: "NoKubeconfig", Message: "waiting for k3s to write its kubeconfig /d/kubeconfig.yaml"}, "",
			"APIUnreachable NoKubeconfig: waiting for k3s to write its kubeconfig /d/kubeconfig.yaml"},
		{"not ready", node.PhaseRegistered, &node.Health{State: health.NotReady, Reason: "KubeletNotReady", Message: "container runtime\nnetwork not ready"}, "",
			"NotReady KubeletNotReady: container runtime network not ready"},
		{"an earlier kubelet's Ready", node.PhaseRegistered, ready, "",
			"the Node's Ready condition (Ready KubeletReady: kubelet is posting ready status) is an earlier kubelet's: the kubelet of the k3s now running has not been heard from"},
		{"manifests pending", node.PhaseNodeReady, ready, "waiting for Deployment default/app: 0/1 available",
			"the node is Ready; the manifests are not all applied and ready yet (last: waiting for Deployment default/app: 0/1 available)"},
	} {
		if got := missing(tc.phase, tc.h, tc.apply); !strings.HasPrefix(got, tc.want) {
			t.Errorf("%s: %q, want it to start with %q", tc.name, got, tc.want)
		}
	}
}
