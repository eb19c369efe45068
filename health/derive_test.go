package health

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

func node(conds ...corev1.NodeCondition) *corev1.Node {
	return &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "n1"}, Status: corev1.NodeStatus{Conditions: conds}}
}

func readyCond(status corev1.ConditionStatus, reason, msg string) corev1.NodeCondition {
	return corev1.NodeCondition{Type: corev1.NodeReady, Status: status, Reason: reason, Message: msg}
}

func TestDerive(t *testing.T) {
	refused := &url.Error{Op: "Get", URL: "https://10.0.0.1:6443/readyz", Err: &net.OpError{Op: "dial", Net: "tcp",
		Err: os.NewSyscallError("connect", syscall.ECONNREFUSED)}}
	forbidden := apierrors.NewForbidden(schema.GroupResource{Resource: "nodes"}, "", errors.New("no RBAC"))
	memPressure := corev1.NodeCondition{Type: corev1.NodeMemoryPressure, Status: corev1.ConditionFalse}
	const grace = 40 * time.Second
	for _, tc := range []struct {
		name       string
		obs        observation
		known      bool
		state      State
		reason     string
		msg        string // substring
		conditions int    // -1: nil
	}{
		{name: "no probe yet", obs: observation{}, known: false},
		{name: "probe refused", obs: observation{ProbeErr: refused}, known: true, state: Unreachable, reason: "ConnectionRefused", msg: "connection refused", conditions: -1},
		{name: "unreachable keeps last conditions",
			obs:   observation{ProbeErr: refused, LastConditions: []corev1.NodeCondition{readyCond(corev1.ConditionTrue, "KubeletReady", "")}},
			known: true, state: Unreachable, reason: "ConnectionRefused", conditions: 1},
		{name: "reachable, informer not synced", obs: observation{}, known: false},
		{name: "reachable, node list forbidden", obs: observation{NodeErr: forbidden}, known: true, state: Unreachable, reason: "Forbidden", msg: "list node: ", conditions: -1},
		{name: "not registered", obs: observation{NodeSynced: true, Grace: grace}, known: true, state: NotRegistered, reason: "NodeNotFound", conditions: -1},
		{name: "no Ready condition", obs: observation{NodeSynced: true, Node: node(memPressure), Grace: grace},
			known: true, state: NotReady, reason: "NoReadyCondition", conditions: 1},
		{name: "Ready False",
			obs:   observation{NodeSynced: true, Node: node(memPressure, readyCond(corev1.ConditionFalse, "KubeletNotReady", "container runtime is down")), Grace: grace},
			known: true, state: NotReady, reason: "KubeletNotReady", msg: "container runtime is down", conditions: 2},
		{name: "Ready Unknown",
			obs:   observation{NodeSynced: true, Node: node(readyCond(corev1.ConditionUnknown, "NodeStatusUnknown", "Kubelet stopped posting node status.")), Grace: grace},
			known: true, state: NotReady, reason: "NodeStatusUnknown", conditions: 1},
		{name: "Ready False without reason",
			obs:   observation{NodeSynced: true, Node: node(readyCond(corev1.ConditionFalse, "", "")), Grace: grace},
			known: true, state: NotReady, reason: "ReadyFalse", conditions: 1},
		{name: "Ready, lease fresh",
			obs:   observation{NodeSynced: true, Node: node(readyCond(corev1.ConditionTrue, "KubeletReady", "kubelet is posting ready status")), LeasePresent: true, LeaseAge: 10 * time.Second, Grace: grace},
			known: true, state: Ready, reason: "KubeletReady", conditions: 1},
		{name: "Ready, lease exactly at grace",
			obs:   observation{NodeSynced: true, Node: node(readyCond(corev1.ConditionTrue, "KubeletReady", "")), LeasePresent: true, LeaseAge: grace, Grace: grace},
			known: true, state: Ready, reason: "KubeletReady", conditions: 1},
		{name: "Ready, lease expired",
			obs:   observation{NodeSynced: true, Node: node(readyCond(corev1.ConditionTrue, "KubeletReady", "")), LeasePresent: true, LeaseAge: 52 * time.Second, Grace: grace},
			known: true, state: Stale, reason: "LeaseExpired", msg: "lease last renewed 52s ago", conditions: 1},
		{name: "Ready, lease never seen",
			obs: observation{NodeSynced: true, Node: node(readyCond(corev1.ConditionTrue, "KubeletReady", "")), LeaseAge: 41 * time.Second, Grace: grace,
				LeaseErr: apierrors.NewForbidden(schema.GroupResource{Group: "coordination.k8s.io", Resource: "leases"}, "", errors.New("no RBAC"))},
			known: true, state: Stale, reason: "LeaseMissing", msg: "watching it failed", conditions: 1},
		{name: "NotReady wins over a stale lease",
			obs:   observation{NodeSynced: true, Node: node(readyCond(corev1.ConditionFalse, "KubeletNotReady", "PLEG is not healthy")), LeasePresent: true, LeaseAge: time.Hour, Grace: grace},
			known: true, state: NotReady, reason: "KubeletNotReady", conditions: 1},
		{name: "probe error wins over the cache",
			obs:   observation{ProbeErr: context.DeadlineExceeded, NodeSynced: true, Node: node(readyCond(corev1.ConditionTrue, "KubeletReady", ""))},
			known: true, state: Unreachable, reason: "Timeout", conditions: -1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, known := derive(tc.obs)
			if known != tc.known {
				t.Fatalf("known = %v, want %v (%v)", known, tc.known, s)
			}
			if !known {
				return
			}
			if s.State != tc.state || s.Reason != tc.reason {
				t.Errorf("got %s / %s, want %s / %s (%v)", s.State, s.Reason, tc.state, tc.reason, s)
			}
			if !strings.Contains(s.Message, tc.msg) {
				t.Errorf("message %q lacks %q", s.Message, tc.msg)
			}
			switch {
			case tc.conditions < 0 && s.Conditions != nil:
				t.Errorf("conditions = %v, want nil", s.Conditions)
			case tc.conditions >= 0 && len(s.Conditions) != tc.conditions:
				t.Errorf("%d conditions, want %d", len(s.Conditions), tc.conditions)
			}
		})
	}
}

// TestDeriveCopiesConditions: a Status must not alias the informer's cache,
// which client-go forbids mutating and which keeps changing.
func TestDeriveCopiesConditions(t *testing.T) {
	n := node(readyCond(corev1.ConditionTrue, "KubeletReady", ""))
	s, _ := derive(observation{NodeSynced: true, Node: n, LeasePresent: true, Grace: time.Minute})
	s.Conditions[0].Reason = "changed"
	if n.Status.Conditions[0].Reason != "KubeletReady" {
		t.Fatal("Status.Conditions aliases the Node's conditions")
	}
}

func TestReportable(t *testing.T) {
	notReady := func(reason string) Status { return Status{State: NotReady, Reason: reason, Message: "m"} }
	for _, tc := range []struct {
		name string
		prev *Status
		next Status
		want bool
	}{
		{"first", nil, Status{State: Unreachable}, true},
		{"state change", &Status{State: NotRegistered}, Status{State: Ready}, true},
		{"same state", &Status{State: Ready, Reason: "KubeletReady"}, Status{State: Ready, Reason: "KubeletReady", Message: "x"}, false},
		{"reason change within NotReady", ptr(notReady("KubeletNotReady")), notReady("NodeStatusUnknown"), true},
		{"message change within NotReady", ptr(notReady("KubeletNotReady")), Status{State: NotReady, Reason: "KubeletNotReady", Message: "other"}, false},
		{"reason change within Unreachable", &Status{State: Unreachable, Reason: "ConnectionRefused"}, Status{State: Unreachable, Reason: "Timeout"}, false},
		{"Stale message grows", &Status{State: Stale, Reason: "LeaseExpired", Message: "41s"}, Status{State: Stale, Reason: "LeaseExpired", Message: "42s"}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := reportable(tc.prev, tc.next); got != tc.want {
				t.Errorf("reportable = %v, want %v", got, tc.want)
			}
		})
	}
}

func ptr[T any](v T) *T { return &v }

func TestClassify(t *testing.T) {
	netOp := func(err error) error {
		return &url.Error{Op: "Get", URL: "https://api:6443/readyz", Err: &net.OpError{Op: "dial", Net: "tcp", Err: err}}
	}
	for _, tc := range []struct {
		err  error
		want string
	}{
		{nil, ""},
		{netOp(os.NewSyscallError("connect", syscall.ECONNREFUSED)), "ConnectionRefused"},
		{fmt.Errorf("wrapped: %w", context.DeadlineExceeded), "Timeout"},
		{netOp(os.NewSyscallError("read", syscall.ECONNRESET)), "ConnectionReset"},
		{netOp(os.NewSyscallError("connect", syscall.EHOSTUNREACH)), "HostUnreachable"},
		{netOp(&net.DNSError{Err: "no such host", Name: "api", IsNotFound: true}), "DNSError"},
		{&url.Error{Op: "Get", URL: "https://api:6443/readyz", Err: x509.UnknownAuthorityError{}}, "TLSError"},
		{apierrors.NewUnauthorized("Unauthorized"), "Unauthorized"},
		{apierrors.NewForbidden(schema.GroupResource{Resource: "nodes"}, "n1", errors.New("denied")), "Forbidden"},
		{apierrors.NewTooManyRequests("slow down", 1), "TooManyRequests"},
		{apierrors.NewInternalError(errors.New("[-]etcd failed")), "APIServerNotReady"},
		{apierrors.NewGenericServerResponse(500, "get", schema.GroupResource{}, "", "readyz check failed", 0, true), "APIServerNotReady"},
		{errors.New("something else"), "Error"},
	} {
		name := "nil"
		if tc.err != nil {
			name = tc.err.Error()
		}
		t.Run(name, func(t *testing.T) {
			if got := classify(tc.err); got != tc.want {
				t.Errorf("classify(%v) = %q, want %q", tc.err, got, tc.want)
			}
		})
	}
}

func TestStatusString(t *testing.T) {
	for _, tc := range []struct {
		s    Status
		want string
	}{
		{Status{State: Ready}, "Ready"},
		{Status{State: NotReady, Reason: "KubeletNotReady", Message: "container runtime is down"}, "NotReady (KubeletNotReady: container runtime is down)"},
		{Status{State: NotRegistered, Reason: "NodeNotFound"}, "NodeNotRegistered (NodeNotFound)"},
		{Status{State: Stale, Message: "lease last renewed 52s ago"}, "Stale (lease last renewed 52s ago)"},
	} {
		if got := tc.s.String(); got != tc.want {
			t.Errorf("String() = %q, want %q", got, tc.want)
		}
	}
}

func TestProbeTimeout(t *testing.T) {
	for _, tc := range []struct{ interval, want time.Duration }{
		{100 * time.Millisecond, time.Second},
		{2 * time.Second, 4 * time.Second},
		{time.Minute, 5 * time.Second},
	} {
		if got := probeTimeout(tc.interval); got != tc.want {
			t.Errorf("probeTimeout(%s) = %s, want %s", tc.interval, got, tc.want)
		}
	}
}
