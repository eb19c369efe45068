package health

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"syscall"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
)

// observation is everything the state depends on, taken at one instant.
type observation struct {
	// ProbeErr is the reachability verdict: non-nil when the API counts as
	// unreachable (the last failed probe's error).
	ProbeErr error
	// NodeSynced: the Node informer has listed at least once since the API
	// became reachable. NodeErr is its last list/watch error.
	NodeSynced bool
	NodeErr    error
	// Node is the Node from the informer; nil when there is none.
	Node *corev1.Node
	// LeasePresent: the informer holds the Lease. LeaseAge is the time since
	// we saw it renewed, or since we began watching when we have not seen
	// a renewal yet. LeaseErr is the Lease informer's last error.
	LeasePresent bool
	LeaseAge     time.Duration
	LeaseErr     error
	Grace        time.Duration
	// LastConditions are the conditions seen before the API went away.
	LastConditions []corev1.NodeCondition
}

// derive computes the state from an observation. known is false when the
// observation cannot decide yet (the Node informer has not synced and has
// no error to show). Since is left to the caller.
func derive(o observation) (s Status, known bool) {
	if o.ProbeErr != nil {
		return Status{State: Unreachable, Reason: classify(o.ProbeErr), Message: o.ProbeErr.Error(), Conditions: o.LastConditions}, true
	}
	if !o.NodeSynced {
		if o.NodeErr == nil {
			return Status{}, false
		}
		// The API answers /readyz but the Node cannot be listed: as far as
		// the node's health goes, the API is out of reach.
		return Status{State: Unreachable, Reason: classify(o.NodeErr), Message: "list node: " + o.NodeErr.Error(), Conditions: o.LastConditions}, true
	}
	n := o.Node
	if n == nil {
		return Status{State: NotRegistered, Reason: "NodeNotFound", Message: "no Node object with this name"}, true
	}
	conds := append([]corev1.NodeCondition(nil), n.Status.Conditions...)
	var ready *corev1.NodeCondition
	for i := range conds {
		if conds[i].Type == corev1.NodeReady {
			ready = &conds[i]
			break
		}
	}
	switch {
	case ready == nil:
		return Status{State: NotReady, Reason: "NoReadyCondition", Message: "the node has no Ready condition yet", Conditions: conds}, true
	case ready.Status != corev1.ConditionTrue:
		reason := ready.Reason
		if reason == "" {
			reason = "Ready" + string(ready.Status)
		}
		return Status{State: NotReady, Reason: reason, Message: ready.Message, Conditions: conds}, true
	}
	if o.LeaseAge <= o.Grace {
		return Status{State: Ready, Reason: ready.Reason, Message: ready.Message, Conditions: conds}, true
	}
	// Ready, but nobody has renewed the Lease: with no node-lifecycle
	// controller to flip the condition to Unknown, this is how a dead or
	// frozen kubelet shows.
	s = Status{State: Stale, Conditions: conds}
	age := o.LeaseAge.Round(time.Second)
	if o.LeasePresent {
		s.Reason, s.Message = "LeaseExpired", fmt.Sprintf("lease last renewed %s ago (grace %s)", age, o.Grace)
	} else {
		s.Reason, s.Message = "LeaseMissing", fmt.Sprintf("no Lease in %s seen for %s (grace %s)", leaseNamespace, age, o.Grace)
	}
	if o.LeaseErr != nil {
		s.Message += "; watching it failed: " + o.LeaseErr.Error()
	}
	return s, true
}

// reportable says whether next is news after prev: a new State, or a new
// Reason within NotReady.
func reportable(prev *Status, next Status) bool {
	if prev == nil || prev.State != next.State {
		return true
	}
	return next.State == NotReady && prev.Reason != next.Reason
}

// classify names the class of a probe or list error for Status.Reason.
func classify(err error) string {
	var (
		dnsErr    *net.DNSError
		netErr    net.Error
		status    apierrors.APIStatus
		unknownCA x509.UnknownAuthorityError
		invalid   x509.CertificateInvalidError
		hostname  x509.HostnameError
		header    tls.RecordHeaderError
		certErr   *tls.CertificateVerificationError
	)
	switch {
	case err == nil:
		return ""
	case errors.Is(err, syscall.ECONNREFUSED):
		return "ConnectionRefused"
	case errors.Is(err, context.DeadlineExceeded), errors.As(err, &netErr) && netErr.Timeout():
		return "Timeout"
	case apierrors.IsUnauthorized(err):
		return "Unauthorized"
	case apierrors.IsForbidden(err):
		return "Forbidden"
	case apierrors.IsTooManyRequests(err):
		return "TooManyRequests"
	case errors.As(err, &status) && status.Status().Code >= http.StatusInternalServerError:
		// /readyz answers 500 while a readiness check fails (etcd, informer
		// sync after a start).
		return "APIServerNotReady"
	case errors.As(err, &certErr), errors.As(err, &unknownCA), errors.As(err, &invalid),
		errors.As(err, &hostname), errors.As(err, &header):
		return "TLSError"
	case errors.As(err, &dnsErr):
		return "DNSError"
	case errors.Is(err, syscall.EHOSTUNREACH), errors.Is(err, syscall.ENETUNREACH):
		return "HostUnreachable"
	case errors.Is(err, syscall.ECONNRESET), errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return "ConnectionReset"
	default:
		return "Error"
	}
}
