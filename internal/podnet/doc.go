// Package podnet decides whether pods can have a network namespace of
// their own where nodeboot runs. A pod off the host network gets a new
// network namespace, and the CNI plugin links it to the node with a veth
// pair (flannel, k3s's default, and the bridge plugin both do): one end
// in the pod, one on the node's bridge. Sandboxes may refuse to create
// veth links (a netstack without the link type, a root without
// CAP_NET_ADMIN), and then every such pod fails at sandbox creation with
// a CNI error that does not say why; only hostNetwork pods run.
//
// The only reliable test is the one the CNI plugin makes: Probe creates a
// veth pair by netlink in a new network namespace, made by unshare on a
// locked thread, and leaves it; the namespace, and the pair with it, go
// away when the thread returns to its own.
package podnet
