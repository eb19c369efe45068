// Package health watches one node's readiness through client-go and reports
// its state as it changes. nodeboot's supervisor restarts k3s on what it
// reports; `nodeboot up --wait` and `nodeboot status` show it.
//
// # States
//
//	APIUnreachable     /readyz fails (two probes in a row once
//	                   it has answered; the first failure before that), or
//	                   the API answers but the Node cannot be listed
//	                   (Reason "Forbidden", "Unauthorized")
//	NodeNotRegistered  the API is up and there is no Node with the name
//	NotReady           Ready condition False or Unknown (its Reason and
//	                   Message, e.g. KubeletNotReady "container runtime is
//	                   down"), or no Ready condition yet
//	Ready              Ready condition True, Lease renewed within LeaseGrace
//	Stale              Ready condition True, Lease not seen renewed for
//	                   longer than LeaseGrace
//
// # Why Stale exists
//
// In a full cluster, kube-controller-manager's node-lifecycle controller
// turns the Ready condition of a node whose kubelet stopped renewing its
// Lease (kube-node-lease/NAME) into Unknown. Nothing does that when no
// controller-manager runs, as in the e2e test bed, or when the only kubelet
// is the one that died (a lone k3s node whose kubelet hangs or is frozen):
// the last Ready=True the kubelet wrote stays in the API for ever. Watching
// the Lease is the only way to tell a dead kubelet from a healthy one then.
//
// Staleness is measured on this machine's monotonic clock, from the moment
// we last saw the Lease's renewTime change, not from renewTime itself:
// renewTime is the kubelet's wall clock, and comparing it with ours would
// report a healthy node Stale whenever the two clocks disagree by more than
// the grace (or never, when the kubelet's clock runs ahead). The count also
// restarts whenever the informers start, that is at the start and every
// time the API comes back after an outage: the kubelet could not renew
// while the API was away, and an old renewTime then means nothing. The
// price is that a kubelet that was already dead when Watch started is
// reported Stale LeaseGrace later rather than at once.
//
// # How it works
//
// One goroutine (run) owns the state and calls onChange. A probe goroutine
// sends it the result of GET /readyz every ProbeInterval (timeout
// 2*ProbeInterval within [1s, 5s], no retries). While the API counts as
// reachable, a shared informer watches the Node (field selector
// metadata.name=NAME) and a poller GETs the Lease in kube-node-lease every
// ProbeInterval (same timeout). The Lease is polled, not watched, because
// a node's own credentials may get their Lease but not list or watch it
// (the Node authorizer), and an agent's watcher has no others (k3s agent's
// kubelet.kubeconfig): watched, its Lease would be Forbidden for ever and
// the node Stale. The informer's events and a changed Lease wake run
// through a channel of capacity one; the lease deadline wakes it through a
// timer. The informer and the poller are stopped when the API turns
// unreachable and started afresh, with a fresh list and GET, when it
// answers again, so that a cache from before an outage is never taken for
// the present. Failing lists and watches are retried by client-go's
// reflector with its own backoff (800ms doubling to 30s), the Lease GET
// and the probe run at a fixed period: no path loops without waiting.
// When ctx is done, Watch stops the informer, the poller and the probe and
// returns once all of them have ended.
//
// Watch talks to the API through two plain REST clients (core/v1 and
// coordination.k8s.io/v1) whose scheme holds only the types it reads, not
// through client-go's typed clientset: importing the clientset (and its
// kubernetes/scheme) makes every nodeboot process, including the tracer of
// "nodeboot exec", pay about 12 MB of memory for package init.
package health
