package interceptor

import (
	"strings"

	"golang.org/x/sys/unix"
)

// Namespaced sysctls: the kernel keeps one copy of net.*, of the IPC
// limits (kernel.shm*, kernel.msg*, kernel.sem, fs.mqueue.*) and of
// kernel.hostname and kernel.domainname per network, IPC and UTS
// namespace, and /proc/sys shows the copy of the namespace of the process
// that opens it. A pod's processes (runc writing
// net.ipv4.ip_unprivileged_port_start, a pod's securityContext.sysctls)
// live in namespaces of their own: their writes there change their own
// copy, never the node's or the host's, so such a path is left to the
// kernel for a thread in a namespace of that kind of its own (neither
// nodeboot's nor pid 1's).
// The tree keeps serving the node's own processes.

// namespacedSysctl returns the kind of namespace ("net", "ipc", "uts")
// that has its own copy of the sysctl at canonical path p, or "".
func namespacedSysctl(p string) string {
	rest, ok := strings.CutPrefix(p, "/proc/sys/")
	if !ok {
		return ""
	}
	switch {
	case rest == "net" || strings.HasPrefix(rest, "net/"):
		return "net"
	case rest == "fs/mqueue" || strings.HasPrefix(rest, "fs/mqueue/"):
		return "ipc"
	}
	switch rest {
	case "kernel/shmmax", "kernel/shmall", "kernel/shmmni", "kernel/shm_rmid_forced",
		"kernel/msgmax", "kernel/msgmnb", "kernel/msgmni", "kernel/sem",
		"kernel/sem_next_id", "kernel/msg_next_id", "kernel/shm_next_id":
		return "ipc"
	case "kernel/hostname", "kernel/domainname":
		return "uts"
	}
	return ""
}

// inOwnNamespace reports whether thread tid is in a namespace of kind ns
// ("net", "ipc", "uts") of its own: neither nodeboot's nor that of pid 1
// (the machine's or the sandbox's init), which a thread could join with
// setns to reach the host's copy. When the thread's or nodeboot's cannot
// be told (no ns files), it is not: the tree serves the call, as for the
// node.
func (rs *resolver) inOwnNamespace(tid int, ns string) bool {
	ours, ok := rs.ourNS[ns]
	if !ok {
		ours = rs.nsIno("/proc/self/ns/" + ns)
		rs.ourNS[ns] = ours
	}
	if ours == 0 {
		return false
	}
	theirs := rs.nsIno("/proc/" + itoa(tid) + "/ns/" + ns)
	if theirs == 0 || theirs == ours {
		return false
	}
	// pid 1's namespace file unreadable (it is in another user namespace,
	// say): nodeboot, root, cannot open it, so neither can a tracee to
	// join it.
	init := rs.nsIno("/proc/1/ns/" + ns)
	return init == 0 || theirs != init
}

// nsIno returns the inode of a namespace file, 0 when it cannot be read.
func (rs *resolver) nsIno(p string) uint64 {
	var st unix.Statx_t
	if sysStatx(unix.AT_FDCWD, rs.cp2.of(p), 0, &st) != 0 {
		return 0
	}
	return st.Ino
}

// ownNamespaceSysctl decides a namespaced sysctl for a thread in a
// namespace of its own: the kernel's per-namespace file, as it is. Where
// the kernel has no such file, a write goes to the thread's own /dev/null
// instead of failing with ENOENT: gVisor's /proc/sys/net lacks
// ip_unprivileged_port_start and ping_group_range, which containerd puts in
// every pod's spec and runc writes after pivot_root, where no tree of
// nodeboot's can be reached (docs/gvisor.md item 3). The setting has no
// effect there, as it has no meaning in that kernel; the host's and the
// node's copies are untouched either way. Reads still fail with ENOENT.
func (t *Tracer) ownNamespaceSysctl(th *thread, d decision, lk *lookup, s callSemantics, q pathQuery) decision {
	if lk.exists || lk.realUnknown || !s.changes() || s.op != OpOpen {
		return d
	}
	if q.resolve&(unix.RESOLVE_BENEATH|unix.RESOLVE_IN_ROOT) != 0 {
		// /dev/null is not below the dirfd: the kernel's answer stands.
		return d
	}
	t.warnOnce("sysctl-sink:"+lk.canon, "a sysctl the kernel does not have, written in a pod's own namespace, is discarded (the write goes to /dev/null)",
		"pid", th.tid, "path", lk.canon)
	d.kernelPath, d.rewritten = "/dev/null", true
	return d
}
