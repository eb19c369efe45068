// Package e2e holds nodeboot's end-to-end tests: a real kube-apiserver,
// etcd, containerd and kubelet on this machine, kubelet run natively, in a
// simulated gVisor-like sandbox, and through nodeboot in that sandbox.
// Run them with `make e2e-deps e2e` as root; docs/e2e.md explains the
// scenarios, the environment variables and what the harness cleans up.
package e2e
