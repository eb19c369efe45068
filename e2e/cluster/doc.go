// Package cluster runs a one-node Kubernetes control plane and kubelet for
// the e2e tests, from the binaries in e2e/bin and Debian's etcd and
// containerd, and leaves nothing behind.
//
// # Layout
//
// New creates, for one test:
//
//   - a network namespace nodeboot-e2e-<rand> with lo and a veth pair whose
//     both ends stay inside it (10.250.0.1/24 and 10.250.0.2/24); every
//     component runs in it (nsenter --net, never `ip netns exec`, which
//     remounts /sys and so hides the cgroups), and the test's client dials
//     into it from a thread that joined it. No traffic leaves the namespace.
//   - a directory /tmp/nodeboot-e2e-<rand> with the PKI (CA, serving and
//     client certificates made with crypto/x509), kubeconfigs (0600), the
//     etcd data, the containerd config/root/state/socket and CNI config, the
//     kubelet root dir and config, and one log file per component.
//   - etcd on 127.0.0.1:2379 and kube-apiserver on 10.250.0.1:6443 (client
//     certificates only, --authorization-mode=Node,RBAC), started by New.
//
// StartContainerd and StartKubelet (natively, or through a Wrap such as the
// sandbox or nodeboot) come next; WaitReady watches the Node with client-go.
//
// # Cleanup
//
// Every process is started in its own process group and stopped by PID:
// SIGTERM to the group, then SIGKILL after a grace period. Cleanup (a
// t.Cleanup registered by New) then, in order: dumps the tail of every log
// when the test failed; stops the processes in reverse start order;
// unmounts everything below the directory (kubelet bind-mounts its root
// dir); removes the cgroups below the private cgroup root
// /nodeboot-e2e-<rand> in every hierarchy; restores the host sysctls that
// kubelet rewrites (recorded before anything started); deletes the
// network namespace and the directory. Each step reports its errors with
// t.Errorf, so a leak fails the test.
package cluster
