// Package sandbox runs a command in a simulated gVisor-like sandbox: the
// kernel interfaces that gVisor lacks (docs: the knowledge file "What k3s
// needs from the kernel", section 1) are taken away in a private mount
// namespace, so that a program started there sees what it would see in
// gVisor, while the host is left alone.
//
// # How
//
// Command returns an *exec.Cmd for the chain
//
//	[nsenter --net=NETNS --] unshare --mount --propagation private -- HELPER CMD ARGS...
//
// nsenter (optional) joins a network namespace; unshare creates a private
// mount namespace in which every mount is private, so nothing done there
// propagates to the host. HELPER is a Go binary that calls [Main] early
// (the e2e test binary from TestMain, or e2e/cmd/sandbox): seeing the
// environment variable [EnvSpec], it changes the mounts as the Spec says
// and then execs CMD in place, so the PID the caller holds is CMD's.
// Neither nsenter nor unshare forks.
//
// # What the sandbox takes away
//
//   - /proc/sys: a tmpfs, made read-only, that holds only the entries
//     gVisor provides (kernel/{hostname,pid_max,cap_last_cap,keys/maxkeys,
//     osrelease,...}, vm/{max_map_count,mmap_min_addr}, vm/overcommit_memory
//     fixed at "0" with mode 0444, fs/{nr_open,pipe-max-size} and parts of
//     net/{core,ipv4,ipv6}). Values are copied from the host (network ones
//     from inside the network namespace). Missing entries give ENOENT and
//     every write fails with EROFS.
//   - cgroups: every cgroup and cgroup2 mount is unmounted (MNT_DETACH) in
//     the private namespace, and so is the tmpfs that holds them on hybrid
//     hosts. /sys/fs/cgroup is then sysfs's own empty directory, as in
//     gVisor when the container spec asks for no cgroups. If something is
//     left there, an empty read-only tmpfs is mounted over it.
//   - /dev/kmsg: /dev becomes a tmpfs holding null, zero, full, random,
//     urandom and tty (bind mounts of the host nodes), pts, shm, ptmx and the
//     fd/stdin/stdout/stderr links; /dev/kmsg and everything else give
//     ENOENT, as in gVisor.
//   - /proc/diskstats, /proc/partitions, /proc/swaps: procfs files cannot
//     be removed and root ignores permission bits, so ENOENT and EACCES are
//     out of reach without a private procfs; /dev/null is bind-mounted over
//     each, so they read as empty. Every reader we care about (kubelet's
//     swap check, cAdvisor's disk stats) treats an empty file like a
//     missing one.
//
// Each part can be switched off in the Spec, to check one failure at a
// time.
package sandbox
