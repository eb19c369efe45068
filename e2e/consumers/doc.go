// Package consumers tests nodeboot against the real consumers of the
// kernel files it fakes, linked from their upstream modules:
//
//   - cmd/sysctl: kubelet's sysctl code (k8s.io/component-helpers
//     v0.36.3, node/util/sysctl) over the six tunables of
//     setupKernelTunables;
//   - cmd/cgroups: github.com/containerd/cgroups/v3 (Mode and the cgroup2
//     manager);
//   - cmd/cadvisor: github.com/google/cadvisor v0.56.2 (the version
//     k8s.io/kubernetes v1.36.3 uses), its manager set up as kubelet sets
//     it up.
//
// The tests build each program, bin/nodeboot and the sandbox helper
// (e2e/cmd/sandbox), then run every program in the simulated gVisor-like
// sandbox twice: natively, where it must fail with the library's error,
// and under "nodeboot exec --profile k3s", where it must pass. TestDiscover
// runs "nodeboot discover" on cmd/sysctl. They need root and skip without
// it. See docs/e2e.md, "Real consumers".
package consumers
