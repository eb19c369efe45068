package interceptor

import (
	"encoding/binary"

	"github.com/nodeboot/nodeboot/interceptor/rules"
	"golang.org/x/sys/unix"
)

// eBPF device programs on emulated cgroups.
//
// On cgroup v2, runc (and systemd) restrict a container's devices with a
// BPF_PROG_TYPE_CGROUP_DEVICE program attached to its cgroup directory:
// bpf(BPF_PROG_QUERY) lists the programs there, bpf(BPF_PROG_ATTACH) adds
// its own, bpf(BPF_PROG_DETACH) removes old ones. An emulated cgroup is a
// plain directory, so the kernel answers EBADF and runc cannot start a
// container. For these three commands with BPF_CGROUP_DEVICE on an
// emulated cgroup the tracer answers itself: no program attached (the
// query's count and flags are 0), attach and detach succeed. The program
// is loaded (BPF_PROG_LOAD is the kernel's) but never runs: device access
// is not restricted, as the emulation's other limits are recorded and not
// enforced; the sandbox's own device rules still apply.

const (
	bpfProgAttach   = 8
	bpfProgDetach   = 9
	bpfProgQuery    = 16
	bpfCgroupDevice = 6 // enum bpf_attach_type: BPF_CGROUP_DEVICE
)

func bpfCall(nr int) entry {
	return entry{nr: nr, name: "bpf", kind: kindBpf, flags: noArg, statfsBuf: noArg, out: noArg, outSize: noArg,
		why: "device programs attached to an emulated cgroup are accepted, not run"}
}

// bpfEnter handles bpf(cmd, attr, size) at its entry.
func (t *Tracer) bpfEnter(th *thread, call *pendingCall) {
	r := &t.regs
	cmd, attr, size := r.arg(0), r.arg(1), r.arg(2)
	// struct bpf_attr: attach and detach have target_fd, attach_bpf_fd,
	// attach_type; query has target_fd, attach_type, query_flags,
	// attach_flags (out), prog_ids, prog_cnt (in/out, at 24).
	var a [28]byte
	typeAt := 8
	switch cmd {
	case bpfProgAttach, bpfProgDetach:
	case bpfProgQuery:
		typeAt = 4
	default:
		t.pass(th, call)
		return
	}
	if !t.needPaths || size < uint64(typeAt+4) || readMem(th.tid, attr, a[:typeAt+4]) != nil {
		t.pass(th, call)
		return
	}
	target := int32(binary.NativeEndian.Uint32(a[0:4]))
	if binary.NativeEndian.Uint32(a[typeAt:]) != bpfCgroupDevice || !t.emulatedCgroup(th, target) {
		t.pass(th, call)
		return
	}
	if cmd == bpfProgAttach {
		// The kernel checks the program first: a file that is no BPF
		// program is EINVAL.
		prog := binary.NativeEndian.Uint32(a[4:8])
		if !isBPFProgLink(readlink("/proc/" + itoa(th.tid) + "/fd/" + itoa(int(prog)))) {
			t.fail(th, call, unix.EINVAL)
			return
		}
	}
	if cmd == bpfProgQuery {
		if size < 28 {
			t.fail(th, call, unix.EINVAL)
			return
		}
		// attach_flags and prog_cnt, the fields the kernel writes.
		var zero [4]byte
		if writeMem(th.tid, attr+12, zero[:]) != nil || writeMem(th.tid, attr+24, zero[:]) != nil {
			t.fail(th, call, unix.EFAULT)
			return
		}
	}
	t.res.warnOnce("bpf-device", "eBPF device programs on an emulated cgroup are accepted and never run: containers' device access is not restricted by them (the sandbox's own rules apply)",
		"pid", th.tid)
	t.answer(th, call, 0)
}

// emulatedCgroup reports whether fd of th is a directory of an emulated
// cgroup hierarchy: one whose guest path is /sys/fs/cgroup or below it.
func (t *Tracer) emulatedCgroup(th *thread, fd int32) bool {
	p := t.fdPath(th, fd)
	if p == "" {
		return false
	}
	g, ok := t.guestOfHost(p)
	if !ok || !rules.HasPathPrefix(g, cgroupMount) {
		return false
	}
	var st unix.Statx_t
	return sysStatx(unix.AT_FDCWD, t.res.cp2.of(p), 0, &st) == 0 && st.Mode&unix.S_IFMT == unix.S_IFDIR
}

// pass lets a call of the table run as it is.
func (t *Tracer) pass(th *thread, call *pendingCall) {
	t.cnt.perCall[call.index].passes.Add(1)
	if t.stopAll {
		th.passed = call.index + 1
	}
	t.resume(th, 0)
}

// answer skips the call and makes it return ret: the tracer did its work
// (counted as a rewrite).
func (t *Tracer) answer(th *thread, call *pendingCall, ret int64) {
	t.skip(th, call, ret, &t.cnt.perCall[call.index].rewrites)
}

// isBPFProgLink reports whether target, an fd's /proc link, names a BPF
// program: "anon_inode:bpf-prog" on Linux, "anon_inode:[bpf-prog]" on
// gVisor (pkg/sentry/fsimpl/ebpffd/ebpffd.go names its anonymous file
// "[bpf-prog]"; docs/gvisor.md).
func isBPFProgLink(target string) bool {
	return target == "anon_inode:bpf-prog" || target == "anon_inode:[bpf-prog]"
}
