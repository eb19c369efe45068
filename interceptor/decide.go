package interceptor

import (
	"encoding/binary"
	"strconv"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

// decision is the resolver's answer for one path argument of a syscall: what
// the kernel must resolve instead of the tracee's bytes, or that the call
// must fail.
//
// The contract with the rest of enter: the tracer reads the path bytes once
// (raw), decide looks at them and at the objects they name, and the caller
// copies kernelPath (matched or not) into the thread's protected scratch
// slot and points the argument there, so that the kernel reads exactly the
// bytes decided on.
type decision struct {
	// kernelPath is the exact path the kernel must resolve for this
	// argument, in the tracee's own view (its root, cwd and mount
	// namespace): the raw path itself when nothing is redirected, or the
	// served file expressed so that the tracee reaches it. Meaningful only
	// when errno is 0.
	kernelPath string
	// errno, when not 0, says the call must fail with this error and not
	// run (fail closed: a rule matched and cannot be honoured).
	errno syscall.Errno
	// rewritten says kernelPath names another file than raw does: the call
	// counts as a rewrite, and OnRewrite and Observe hear of it.
	rewritten bool
	// guest is the canonical path of what raw names: its path in
	// nodeboot's mount namespace, with a tail that does not exist appended
	// as text; an object inside a redirect's host tree is the guest path it
	// serves. "" when it could not be established (and nothing a rule
	// covers can be involved). It is what FileServers, Observe and statfs
	// path rules see.
	guest string
	// host is the file served, in nodeboot's view, when rewritten; statfs
	// path rules may name it.
	host string
	// rule is the index of the redirect rule used (for its counter), or -1.
	rule int
	// req is the FileServer request of this argument when it asked for
	// Done at the syscall's exit.
	req *FileRequest
}

// decide resolves path argument i of entry e (raw: its bytes, read once
// from the tracee, nil for a NULL pointer; r: the registers at syscall
// entry) and decides what the kernel must see. It may call the
// FileServer's Serve, which must then run once per call: the caller has
// mapped scratch memory before, so nothing makes the thread enter the
// syscall again after decide.
func (t *Tracer) decide(th *thread, e *entry, i int, raw []byte, r *regs) decision {
	rs := t.res
	d := decision{kernelPath: string(raw), rule: -1}
	s := t.semantics(th, e, i, r)
	q := pathQuery{tid: th.tid, tgid: th.tgidOr(), raw: string(raw), follow: s.follow, resolve: s.resolve,
		dirfd: unix.AT_FDCWD, changes: s.changes(), bindSource: e.kind == kindMount}
	if q.changes {
		// The trees may change: what treeFirst remembers of them is old.
		rs.treeGen++
	}
	if a := e.paths[i]; a.dirfd != noArg {
		q.dirfd = int(int32(r.arg(int(a.dirfd))))
	}
	if len(raw) == 0 {
		// No path: the call acts on the dirfd's own object (AT_EMPTY_PATH,
		// utimensat's NULL path) or fails by itself.
		if (raw == nil && e.name == "utimensat") || s.emptyPath {
			d.errno = rs.decideFd(th, q.dirfd, s)
		}
		return d
	}
	lk := rs.resolve(th, q)
	defer lk.release()
	if lk.errno != 0 {
		d.errno = lk.errno
		return d
	}
	if !lk.known {
		if lk.hold {
			rs.warnOnce("unknown:"+e.name, "cannot tell which file a path names; the call fails with EACCES",
				"pid", th.tid, "syscall", e.name, "path", q.raw)
			d.errno = unix.EACCES
		}
		return d
	}
	d.guest = lk.canon
	if t.cgroupEmulated && lk.canon == cgroupMount && lk.exists && !lk.realUnknown && rs.foreignCgroupMount(lk.obj) {
		// The cgroup mount point of a sysfs the tracee mounted itself (a
		// container's /sys, before runc binds its emulated cgroup there):
		// the directory is the tracee's own, which runc opens with O_PATH
		// to mount on, and checks by its /proc/self/fd link. Everything
		// below it is still the emulated hierarchy's.
		return d
	}
	if lk.rule >= 0 {
		if ns := namespacedSysctl(lk.canon); ns != "" && rs.inOwnNamespace(th.tid, ns) {
			// The thread's namespace's own copy (see ns_sysctl.go), or
			// none when the sandbox's kernel lacks the file.
			return t.ownNamespaceSysctl(th, d, lk, s, q)
		}
	}
	if s.write && t.tracedMem(lk.canon) {
		// /proc/PID/mem writes ignore page protection: another tracee's
		// scratch memory would be writable through it.
		rs.warnOnce("mem:"+itoa(th.tid), "a traced process opened another traced process's memory for writing; refused (EACCES)",
			"pid", th.tid, "path", lk.canon)
		d.errno = unix.EACCES
		return d
	}
	if t.cfg.Files != nil {
		if done, ok := t.decideServed(th, e, s, lk, raw, q, &d); ok {
			return done
		}
	}
	if lk.rule < 0 {
		// No redirect covers it: the path as the tracee gave it (or where
		// a host tree's symlink led).
		if lk.viaHost {
			d.kernelPath, d.rewritten = lk.text, true
		}
		return d
	}
	if lk.treeGone {
		d.errno = unix.ENOENT
		return d
	}
	d.rule = rs.m.redirectIdx[lk.rule]
	if !lk.hostHas {
		switch {
		case !s.changes():
			// A read of a file the tree lacks goes to the real file.
			if lk.viaHost {
				d.kernelPath, d.rewritten = lk.text, true
			}
			d.rule = -1
			return d
		case s.source || s.op == OpUnlink || s.op == OpRmdir:
			if lk.exists {
				// Removing or moving the real file: never.
				d.errno = unix.EACCES
				return d
			}
		default:
			// Copy the real file up (parents at least), then write there.
			file := lk.exists && (!s.create || s.op == OpOpen)
			if file && (s.write || s.op == OpTruncate) && !s.excl {
				if errno := rs.realRefuses(th.tid, lk); errno != 0 {
					d.errno = errno
					return d
				}
			}
			if errno := rs.copyUp(lk, file, !s.trunc); errno != 0 {
				d.errno = errno
				return d
			}
		}
	}
	return t.rewrite(th, d, lk.hostPath, raw, q)
}

// decideServed asks the FileServer about lk's path, or the guest path an
// object inside a redirect's host tree serves; ok=false when it does not
// serve it or leaves it to the rules.
func (t *Tracer) decideServed(th *thread, e *entry, s callSemantics, lk *lookup, raw []byte, q pathQuery, d *decision) (decision, bool) {
	rs := t.res
	g := lk.canon
	if !t.cfg.Files.Serves(g) {
		j, rel, ok := rs.m.inHostTree(g)
		if !ok || !t.cfg.Files.Serves(rs.m.guestOf(j, rel)) {
			return decision{}, false
		}
		g = rs.m.guestOf(j, rel)
	}
	req := &FileRequest{PID: th.tid, TGID: t.tgidOf(th), Op: s.op, Syscall: e.name, Guest: g,
		Create: s.create, Write: s.write}
	host := t.cfg.Files.Serve(req)
	req.Host = host
	if req.WantExit {
		d.req = req
	}
	if host == "" {
		return decision{}, false
	}
	d.guest = g
	if host == lk.canon && !lk.viaHost {
		// The tracee names the served file itself.
		return *d, true
	}
	return t.rewrite(th, *d, host, raw, q), true
}

// rewrite makes d send the kernel to host (a path in nodeboot's view),
// expressed in th's view; for openat2 with RESOLVE_BENEATH or
// RESOLVE_IN_ROOT, relative to the dirfd, which the kernel still applies.
func (t *Tracer) rewrite(th *thread, d decision, host string, raw []byte, q pathQuery) decision {
	rs := t.res
	if q.resolve&(unix.RESOLVE_BENEATH|unix.RESOLVE_IN_ROOT) != 0 {
		rel, errno := rs.inScope(th, q.dirfd, host)
		if errno != 0 {
			rs.warnOnce("scope:"+itoa(th.tgidOr()), "a redirected file is outside the directory openat2 is confined to; the call fails with EXDEV",
				"pid", th.tid, "path", d.guest, "host", host)
			d.errno = errno
			return d
		}
		if mustBeDir(raw) && !strings.HasSuffix(rel, "/") {
			rel += "/"
		}
		d.kernelPath, d.host, d.rewritten = rel, host, true
		return d
	}
	v := rs.viewOf(th)
	kp, ok := rs.inView(th, v, host)
	if ok && !v.same && !rs.sameInViews(th, host, kp) {
		ok = false
	}
	if !ok && q.bindSource {
		// A bind mount reads and writes nothing: a source the tree is out
		// of reach for (a container's own /proc/sys, which runc binds on
		// itself to make it read-only) is bound as the tracee named it.
		// What is reached through the new mount is decided by its
		// canonical path, as through any other.
		return d
	}
	if !ok && !q.changes {
		// A process whose root does not reach the tree: a container after
		// pivot_root. Its reads go to the file of its own view (its own
		// procfs, the kernel's values), as reads of a file the tree lacks
		// do; its writes fail below. runc makes a container's /proc/sys
		// read-only anyway, and the sysctls a pod sets are its own
		// namespaces' (ns_sysctl.go).
		rs.warnOnce("view-read:"+itoa(th.tgidOr()), "a redirected file is out of reach of a process with a root or mount namespace of its own (a container): its reads go to the file in its own view, its writes fail with EACCES",
			"pid", th.tid, "path", d.guest, "host", host)
		return d
	}
	if !ok {
		rs.warnOnce("view:"+itoa(th.tgidOr()), "a redirected file is out of reach of a process with a root or mount namespace of its own; the call fails with EACCES",
			"pid", th.tid, "path", d.guest, "host", host)
		d.errno = unix.EACCES
		return d
	}
	if mustBeDir(raw) && !strings.HasSuffix(kp, "/") {
		// A trailing "/" (or "/.") keeps the kernel's ENOTDIR for a file
		// named that way.
		kp += "/"
	}
	if len(kp) >= pathMax {
		d.errno = unix.ENAMETOOLONG
		return d
	}
	d.kernelPath, d.host, d.rewritten = kp, host, true
	return d
}

// inScope expresses host relative to the tracee's dirfd (or cwd), which
// confines an openat2 with RESOLVE_BENEATH or RESOLVE_IN_ROOT; EXDEV when
// host lies outside it.
func (rs *resolver) inScope(th *thread, dirfd int, host string) (string, unix.Errno) {
	link := "/proc/" + itoa(th.tid) + "/cwd"
	if dirfd != unix.AT_FDCWD {
		link = "/proc/" + itoa(th.tid) + "/fd/" + itoa(dirfd)
	}
	fd, e := sysOpenat(unix.AT_FDCWD, rs.cp.of(link), unix.O_PATH)
	if e != 0 {
		return "", unix.EBADF
	}
	defer sysClose(fd)
	scope, ok := rs.canonOf(fd, th.tid)
	switch {
	case !ok:
		return "", unix.EXDEV
	case host == scope:
		return ".", 0
	case scope == "/":
		return host[1:], 0
	case strings.HasPrefix(host, scope) && host[len(scope)] == '/':
		return host[len(scope)+1:], 0
	}
	return "", unix.EXDEV
}

// decideFd decides a call that changes the object of the tracee's fd
// itself (AT_EMPTY_PATH): it fails when that object is a real file a rule
// covers, which cannot be sent to the tree.
func (rs *resolver) decideFd(th *thread, fd int, s callSemantics) unix.Errno {
	if !s.changes() || fd < 0 {
		return 0
	}
	obj, e := sysOpenat(unix.AT_FDCWD, rs.cp.of("/proc/"+itoa(th.tid)+"/fd/"+itoa(fd)), unix.O_PATH)
	if e != 0 {
		return 0 // not open: the kernel says EBADF
	}
	defer sysClose(obj)
	c, ok := rs.canonOf(obj, th.tid)
	if !ok {
		if rs.holds(obj) {
			return unix.EACCES
		}
		return 0
	}
	if _, _, covered := rs.m.cover(c); covered {
		if _, _, inTree := rs.m.inHostTree(c); !inTree {
			return unix.EACCES
		}
	}
	return 0
}

// tracedMem reports whether canon is the mem file of a traced process or
// thread (/proc/PID/mem, /proc/PID/task/TID/mem).
func (t *Tracer) tracedMem(canon string) bool {
	rest, ok := strings.CutPrefix(canon, "/proc/")
	if !ok || !strings.HasSuffix(rest, "/mem") {
		return false
	}
	c := strings.Split(rest, "/")
	var id string
	switch {
	case len(c) == 2:
		id = c[0]
	case len(c) == 4 && c[1] == "task":
		id = c[2]
	default:
		return false
	}
	n, err := strconv.Atoi(id)
	if err != nil {
		return false
	}
	if _, ok := t.threads[n]; ok {
		return true
	}
	for _, th := range t.threads {
		if th.tgid == n {
			return true
		}
	}
	return false
}

// hasPathArg reports whether a call of e with registers r passes a path
// pointer (a NULL path, as utimensat allows, is none).
func hasPathArg(e *entry, r *regs) bool {
	for _, a := range e.paths {
		if r.arg(int(a.idx)) != 0 {
			return true
		}
	}
	return false
}

// tracedTids lists the traced threads (the resolver translates pids of
// other pid namespaces' procfs to them). Tracer goroutine only.
func (t *Tracer) tracedTids() []int {
	out := make([]int, 0, len(t.threads))
	for tid := range t.threads {
		out = append(out, tid)
	}
	return out
}

// tracedWithInnerPid lists the traced threads numbered pid in their
// innermost pid namespace. Each thread's number is read once: a procfs of
// a container's pid namespace names a thread by it (translatePid), and
// reading the status of every traced thread for each such name was a
// visible part of the tracer's CPU while pods start.
func (t *Tracer) tracedWithInnerPid(pid int) []int {
	var out []int
	for tid, th := range t.threads {
		if th.innerPid == 0 {
			th.innerPid = -1
			if ids := nsPids(tid); len(ids) > 0 {
				th.innerPid = ids[len(ids)-1]
			}
		}
		if th.innerPid == pid {
			out = append(out, tid)
		}
	}
	return out
}

// watchEnter handles the entry of chroot, pivot_root, setns or unshare:
// cached views are dropped now (another thread may make a path call while
// this one runs) and again at the exit (views computed meanwhile saw the
// state before the change).
func (t *Tracer) watchEnter(th *thread, call *pendingCall) {
	t.res.bump()
	t.cnt.perCall[call.index].passes.Add(1)
	call.kind = pendWatch
	th.call = call
	th.awaitExit = true
	th.sawEnter = false
	t.resume(th, 0)
}

// handleEnter handles open_by_handle_at(mount_fd, handle, flags): the file
// a handle names has no path to rewrite, so a handle of a file a rule
// covers is refused (EACCES). The handle that was checked is copied into
// the thread's scratch slot and the kernel reads that copy, as for paths:
// another thread changing the tracee's buffer in between changes nothing.
func (t *Tracer) handleEnter(th *thread, call *pendingCall) {
	r := &t.regs
	if !t.needPaths {
		t.cnt.perCall[call.index].passes.Add(1)
		if t.stopAll {
			th.passed = call.index + 1
		}
		t.resume(th, 0)
		return
	}
	if !th.hasSlot() && !t.takeSlot(th) {
		t.inject(th, call.index) // map scratch, then enter again
		return
	}
	h, errno := t.res.decideHandle(th, int(int32(r.arg(0))), r.arg(1))
	if errno != 0 {
		t.fail(th, call, errno)
		return
	}
	dst := th.mm.addr(th.slot)
	if err := th.mm.write(th.tid, dst, h); err != nil {
		if err == unix.ESRCH {
			return
		}
		t.scratchLost(th, dst, err)
		t.fail(th, call, unix.ENOMEM)
		return
	}
	th.slotKnown[0] = false // the slot holds no path now
	call.argIdx[0], call.argVal[0], call.nargs = 1, r.arg(1), 1
	r.setArg(1, dst)
	if err := setRegs(th.tid, r); err != nil {
		t.lostControl(th, "set registers", err)
		return
	}
	t.cnt.perCall[call.index].passes.Add(1)
	call.counted = true
	th.call = call
	th.awaitExit = true
	th.sawEnter = false
	t.resume(th, 0)
}

// fdChangeEnter handles fchmod, fchown, fsetxattr and fremovexattr: the
// fd may be a real file a rule covers (a read-only open of a file the tree
// lacks reaches the real one), whose metadata must not change.
func (t *Tracer) fdChangeEnter(th *thread, call *pendingCall) {
	if t.needPaths {
		s := callSemantics{op: OpSetattr}
		if errno := t.res.decideFd(th, int(int32(t.regs.arg(0))), s); errno != 0 {
			t.fail(th, call, errno)
			return
		}
	}
	t.pass(th, call)
}

// maxHandleSize is MAX_HANDLE_SZ.
const maxHandleSize = 128

// decideHandle reads the handle at addr and decides on it (checkHandle).
// It returns the handle's bytes as read (struct file_handle), which the
// kernel is then given. A handle that cannot be read, or has a size the
// kernel refuses, fails as the kernel would fail it (EFAULT, EINVAL):
// reading it again later could find another.
func (rs *resolver) decideHandle(th *thread, mountFd int, addr uint64) ([]byte, unix.Errno) {
	var hdr [8]byte
	if mountFd < 0 && mountFd != unix.AT_FDCWD {
		return nil, unix.EBADF
	}
	if readMem(th.tid, addr, hdr[:]) != nil {
		return nil, unix.EFAULT
	}
	size := binary.NativeEndian.Uint32(hdr[:4])
	typ := int32(binary.NativeEndian.Uint32(hdr[4:]))
	if size == 0 || size > maxHandleSize {
		return nil, unix.EINVAL
	}
	h := make([]byte, 8+size)
	copy(h, hdr[:])
	if readMem(th.tid, addr+8, h[8:]) != nil {
		return nil, unix.EFAULT
	}
	return h, rs.checkHandle(th, mountFd, typ, h[8:])
}

// checkHandle opens the handle (typ, b) relative to the tracee's mount_fd
// itself, O_PATH, and refuses it when its file is a real file a rule
// covers, or one whose path cannot be told on a filesystem that could hold
// one. Handles the kernel would refuse pass to the kernel.
func (rs *resolver) checkHandle(th *thread, mountFd int, typ int32, b []byte) unix.Errno {
	link := "/proc/" + itoa(th.tid) + "/cwd"
	if mountFd != unix.AT_FDCWD {
		link = "/proc/" + itoa(th.tid) + "/fd/" + itoa(mountFd)
	}
	// open_by_handle_at takes no O_PATH fd for the mount: reopen it.
	mfd, e := sysOpenat(unix.AT_FDCWD, rs.cp.of(link), unix.O_RDONLY|unix.O_NONBLOCK|unix.O_NOCTTY)
	if e != 0 {
		pfd, pe := sysOpenat(unix.AT_FDCWD, rs.cp.of(link), unix.O_PATH)
		if pe != 0 {
			return 0 // not open: the kernel says EBADF
		}
		defer sysClose(pfd)
		if rs.holds(pfd) {
			return unix.EACCES // cannot look: refused
		}
		return 0
	}
	defer sysClose(mfd)
	fd, err := unix.OpenByHandleAt(mfd, unix.NewFileHandle(typ, b), unix.O_PATH|unix.O_CLOEXEC)
	if err != nil {
		if toErrno(err) == unix.ESTALE || toErrno(err) == unix.EINVAL || !rs.holds(mfd) {
			return 0 // the kernel refuses it too, or nothing covered can be there
		}
		return unix.EACCES
	}
	defer unix.Close(fd)
	c, ok := rs.canonOf(fd, th.tid)
	if !ok {
		if rs.holds(fd) {
			return unix.EACCES
		}
		return 0
	}
	if _, _, covered := rs.m.cover(c); covered {
		if _, _, inTree := rs.m.inHostTree(c); !inTree {
			rs.warnOnce("handle:"+c, "open_by_handle_at of a file a rule covers is refused (EACCES): a handle cannot be redirected",
				"pid", th.tid, "path", c)
			return unix.EACCES
		}
	}
	return 0
}
