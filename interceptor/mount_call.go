package interceptor

import "golang.org/x/sys/unix"

// cgroupMount is the mount point of the cgroup hierarchy that kubelet,
// runc and containerd use.
const cgroupMount = "/sys/fs/cgroup"

// fsTypeMax bounds the filesystem type name mount reads (the kernel's
// copy_mount_string takes a page; every real type is far shorter).
const fsTypeMax = 256

// mountEnter handles mount(source, target, fstype, flags, data) at its
// entry. It reports whether the caller goes on to decide the source as a
// path (a bind mount); otherwise the call has been resumed or failed here.
//
// Three cases:
//   - a bind mount (MS_BIND without MS_REMOUNT): the source is a path the
//     kernel resolves (following symlinks), so it is decided and copied
//     like any other: a redirected directory binds its tree. runc binds
//     the container's cgroup this way when it may not mount cgroup2.
//   - a new cgroup or cgroup2 filesystem while the cgroup hierarchy is
//     emulated: refused with EPERM, as in a sandbox (or a user namespace)
//     that may not mount it. A real cgroup mount would show the host's
//     cgroups instead of the emulated ones, the only ones the node's
//     processes are in. runc then bind-mounts the container's own
//     (emulated) cgroup at /sys/fs/cgroup, which is what a cgroup
//     namespace shows. The type name is copied into scratch, so the kernel
//     mounts the very type that was checked.
//   - anything else changes only the mount table: the resolver's views are
//     dropped at the entry and the exit (kindWatch).
func (t *Tracer) mountEnter(th *thread, call *pendingCall) bool {
	r := &t.regs
	t.res.bump()
	flags := r.arg(3)
	if !t.needPaths {
		t.watchEnter(th, call)
		return false
	}
	if flags&unix.MS_BIND != 0 && flags&unix.MS_REMOUNT == 0 {
		return true
	}
	const notNew = unix.MS_REMOUNT | unix.MS_BIND | unix.MS_MOVE |
		unix.MS_SHARED | unix.MS_PRIVATE | unix.MS_SLAVE | unix.MS_UNBINDABLE
	if !t.cgroupEmulated || flags&notNew != 0 || r.arg(2) == 0 {
		t.watchEnter(th, call)
		return false
	}
	if !th.hasSlot() && !t.takeSlot(th) {
		t.inject(th, call.index) // map scratch, then enter again
		return false
	}
	addr := r.arg(2)
	raw, ok, err := readString(th.tid, addr, t.buf[:fsTypeMax])
	if err == unix.ESRCH {
		return false
	}
	if err != nil || !ok {
		// The kernel would fail too (EFAULT, or a type longer than any).
		t.fail(th, call, unix.EFAULT)
		return false
	}
	if fs := string(raw); fs == "cgroup" || fs == "cgroup2" {
		t.res.warnOnce("mount-cgroup:"+itoa(th.tgidOr()), "a "+fs+" mount is refused (EPERM): the cgroup hierarchy is nodeboot's emulated one; a container gets its own emulated cgroup bound instead (runc does so by itself)",
			"pid", th.tid)
		t.fail(th, call, unix.EPERM)
		return false
	}
	// Another type: the kernel reads the copy, so no other thread can make
	// it "cgroup2" after this check.
	dst := th.mm.addr(th.slot)
	b := append(raw[:len(raw):len(raw)], 0)
	if err := th.mm.write(th.tid, dst, b); err != nil {
		if err == unix.ESRCH {
			return false
		}
		t.scratchLost(th, dst, err)
		t.fail(th, call, unix.ENOMEM)
		return false
	}
	th.slotKnown[0] = false
	r.setArg(2, dst)
	if err := setRegs(th.tid, r); err != nil {
		t.lostControl(th, "set registers", err)
		return false
	}
	t.cnt.perCall[call.index].passes.Add(1)
	call.kind = pendRewrite
	call.counted = true
	call.bump = true
	call.argIdx[0], call.argVal[0], call.nargs = 2, addr, 1
	th.call = call
	th.awaitExit = true
	th.sawEnter = false
	t.resume(th, 0)
	return false
}

// foreignCgroupMount reports whether obj, a directory whose canonical path
// is /sys/fs/cgroup, is another object than nodeboot's own /sys/fs/cgroup:
// the mount point in a sysfs a tracee mounted in a mount namespace of its
// own.
func (rs *resolver) foreignCgroupMount(obj int) bool {
	var st, ours unix.Statx_t
	if fdStatx(obj, &st) != 0 || st.Mode&unix.S_IFMT != unix.S_IFDIR {
		return false
	}
	if sysStatx(unix.AT_FDCWD, rs.cp2.of(cgroupMount), 0, &ours) != 0 {
		// nodeboot has none (a sandbox without sysfs's cgroup
		// directory): every one is the tracee's.
		return true
	}
	return !idOf(&st).sameInode(idOf(&ours))
}
