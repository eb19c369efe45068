package e2e

import (
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// podOpts are what the tests' pods differ in. The zero value is a pod on
// the pod network, placed by the scheduler, with the service account
// token mounted and no limits.
type podOpts struct {
	// Node binds the pod to a node (spec.nodeName): the upstream bed runs
	// no scheduler.
	Node string
	// HostNetwork puts the pod on the node's network namespace.
	HostNetwork bool
	// NoToken mounts no service account token (the upstream bed runs no
	// controller that makes one).
	NoToken bool
	// NameEnv sets NODE_NAME to the pod's name in the container, which
	// smoke-echo and smoke-serve print.
	NameEnv bool
	// Limits and Requests are the container's resources.
	Limits, Requests corev1.ResourceList
	// Sysctls are the pod's (securityContext.sysctls).
	Sysctls []corev1.Sysctl
}

// bedPod are the options of the upstream bed's pods: bound to node, on
// the host network, no token, NODE_NAME set.
func bedPod(node string) podOpts {
	return podOpts{Node: node, HostNetwork: true, NoToken: true, NameEnv: true}
}

// testPod is a pod in namespace default of image (never pulled) with one
// container "c" running command (the image's entrypoint when nil),
// restartPolicy Never and a 1 s grace period, as o says otherwise.
func testPod(name, image string, command []string, o podOpts) *corev1.Pod {
	p := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default"},
		Spec: corev1.PodSpec{
			NodeName:      o.Node,
			RestartPolicy: corev1.RestartPolicyNever, HostNetwork: o.HostNetwork,
			TerminationGracePeriodSeconds: new(int64(1)),
			Containers: []corev1.Container{{
				Name: "c", Image: image, ImagePullPolicy: corev1.PullNever, Command: command,
			}},
		},
	}
	if o.NoToken {
		p.Spec.AutomountServiceAccountToken = new(false)
	}
	if o.NameEnv {
		p.Spec.Containers[0].Env = []corev1.EnvVar{{Name: "NODE_NAME", Value: name}}
	}
	if o.Limits != nil || o.Requests != nil {
		p.Spec.Containers[0].Resources = corev1.ResourceRequirements{Limits: o.Limits, Requests: o.Requests}
	}
	if len(o.Sysctls) > 0 {
		p.Spec.SecurityContext = &corev1.PodSecurityContext{Sysctls: o.Sysctls}
	}
	return p
}
