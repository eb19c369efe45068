package interceptor

import (
	"bytes"
	"log/slog"
	"strconv"
	"strings"
	"time"
	"unsafe"

	"github.com/nodeboot/nodeboot/interceptor/rules"

	"golang.org/x/sys/unix"
)

// The resolver decides on the object a path names, not on its text: it
// resolves every path the way the kernel will for the calling thread, in
// that thread's own view (its root, its cwd, its dirfds, its mount
// namespace), and gives the result the name the rules use, its canonical
// path: where the object is in nodeboot's own mount namespace.
//
// Two ways lead there:
//
//   - the fast path, for a thread whose root and mount namespace are
//     nodeboot's (the common case): one openat2(RESOLVE_NO_SYMLINKS) of
//     the path proves that no symlink is on the way, and then the path's
//     lexical form is the canonical path;
//   - for such a thread, when a symlink is on the way, the text walk: one
//     readlinkat per component of the path so far (textWalk);
//   - otherwise the walker, component by component with O_PATH|O_NOFOLLOW
//     from the thread's root, cwd or dirfd (opened through /proc/TID, whose
//     magic links give the very objects, whatever their text says), as
//     fs/namei.c does: symlinks followed (40 at most), ".." never above the
//     root, procfs magic links jumped through, "self" and "thread-self" of a
//     procfs replaced by the caller's ids in that procfs's pid namespace,
//     openat2's RESOLVE_* flags honoured.
//
// A canonical path reached through an alias mount of nodeboot's own
// namespace (a bind mount of a guest elsewhere, a second procfs) is moved
// onto the guest's own mount (mount_alias.go).
//
// A redirect serves its guest tree from its host tree like an overlay: a
// file the host tree has hides the real one, symlinks in the host tree
// included. The resolver therefore checks the host tree where a covered
// path meets something other than a plain directory, and resolves a host
// tree's symlink again in the tracee's view (a symlink planted in the tree
// must not lead the kernel back to the real file).
//
// What is left open: the kernel resolves the path again after the tracer
// has decided, so a program that changes its own files between the two
// (swapping a symlink or renaming a directory from another thread) can make
// the kernel reach another object than the one decided on. Only what the
// tracee can change itself is exposed that way.

// maxSymlinks is the kernel's limit of symlinks per lookup (MAXSYMLINKS).
const maxSymlinks = 40

// procRootIno is the inode number of a procfs root (PROC_ROOT_INO); kernfs
// (sysfs, cgroup) roots have 1 too.
const procRootIno = 1

// resolver holds what the tracer knows to resolve paths: the rules, its own
// view, probed features and per-cause warnings. It belongs to the tracer
// goroutine.
type resolver struct {
	// ourNS caches the inode of nodeboot's own namespaces by kind
	// ("net", "ipc", "uts"), 0 when it has no ns file.
	ourNS map[string]uint64
	m     *matcher
	files FileServer
	log   *slog.Logger

	cp, cp2 cpath
	link    []byte // readlink buffer

	// noOpenat2: the kernel has no openat2 (before 5.6, gVisor); the fast
	// path then checks with readlink instead.
	noOpenat2 bool
	// noFast and noText disable the fast path and the text walk (tests
	// compare the answers of every way).
	noFast, noText bool

	// epoch changes whenever a traced thread may have changed its root or
	// mount namespace (chroot, pivot_root, setns, unshare); thread views
	// of an older epoch are computed again.
	epoch uint64
	our   ourView

	trees []hostTree // by matcher index
	// treeGen counts the traced calls that may have changed a tree;
	// seen is what treeFirst found in the trees since.
	treeGen uint64
	seen    seenTree
	faults  func(Fault)
	// mounts caches nodeboot's mount table by device (ourMounts).
	mounts map[uint64][]mountEntry
	// mountsByID is the same copy by mount id (mountRoot).
	mountsByID map[uint64]mountEntry
	// mountsWatch is /proc/self/mountinfo open for mountsChanged: 0 before
	// the first use, -1 when it could not be opened (every fresh read is
	// then done).
	mountsWatch int
	// foreign keeps the mount tables of the tracees' other mount
	// namespaces (mountRoot).
	foreign foreignMounts
	// alias is what is known of alias mounts (mount_alias.go).
	alias aliasTable
	// tids lists the traced threads (procPidPath); innerPids, when set,
	// lists those numbered pid in their innermost pid namespace.
	tids      func() []int
	innerPids func(pid int) []int
	warned    map[string]bool
	// couldHold says which filesystems hold something a rule covers.
	couldHold holdSet
}

// ourView is nodeboot's own root and mount namespace.
type ourView struct {
	epoch   uint64
	valid   bool
	root    fileID
	mntNS   uint64
	procDev uint64 // st_dev of /proc, 0 when /proc is not a procfs
	// procOurs: /proc shows nodeboot's pid namespace (its "self" is
	// nodeboot), so tracer-side pids name the same processes there.
	procOurs bool
	sysDev   uint64
}

// traceeView is what the resolver caches of one thread's view, valid for
// one epoch.
type traceeView struct {
	epoch uint64
	valid bool
	// same: the thread's root and mount namespace are nodeboot's.
	same bool
	// rootCanon is the canonical path of the thread's root when it is
	// not nodeboot's ("" when it cannot be established).
	rootCanon string
}

func newResolver(m *matcher, files FileServer, log *slog.Logger, faults func(Fault)) *resolver {
	rs := &resolver{m: m, files: files, log: log, faults: faults, link: make([]byte, pathMax+1), ourNS: map[string]uint64{},
		warned: map[string]bool{}, epoch: 1}
	rs.openTrees()
	rs.couldHold = rs.computeHoldSet()
	return rs
}

// warnOnce logs msg once per cause.
func (rs *resolver) warnOnce(cause, msg string, args ...any) {
	if rs.warned[cause] {
		return
	}
	if len(rs.warned) > 10000 {
		return // bounded: a program making endless distinct causes
	}
	rs.warned[cause] = true
	rs.log.Warn(msg, args...)
}

// bump invalidates every cached view (see resolver.epoch).
func (rs *resolver) bump() { rs.epoch++ }

// ours returns nodeboot's view, computed again after a bump (a tracee's
// pivot_root may have moved nodeboot's root too).
func (rs *resolver) ours() *ourView {
	o := &rs.our
	if o.valid && o.epoch == rs.epoch {
		return o
	}
	*o = ourView{epoch: rs.epoch, valid: true}
	var st unix.Statx_t
	if sysStatx(unix.AT_FDCWD, rs.cp.of("/"), 0, &st) == 0 {
		o.root = idOf(&st)
	}
	if sysStatx(unix.AT_FDCWD, rs.cp.of("/proc/self/ns/mnt"), 0, &st) == 0 {
		o.mntNS = st.Ino
	}
	var sfs unix.Statfs_t
	if fd, e := sysOpenat(unix.AT_FDCWD, rs.cp.of("/proc"), unix.O_PATH|unix.O_DIRECTORY); e == 0 {
		if fstatfsFd(fd, &sfs) == 0 && sfs.Type == unix.PROC_SUPER_MAGIC && fdStatx(fd, &st) == 0 && st.Ino == procRootIno {
			o.procDev = unix.Mkdev(st.Dev_major, st.Dev_minor)
			if n, e := sysReadlinkat(fd, rs.cp.of("self"), rs.link); e == 0 {
				o.procOurs = string(rs.link[:n]) == strconv.Itoa(unix.Getpid())
			}
		}
		sysClose(fd)
	}
	if fd, e := sysOpenat(unix.AT_FDCWD, rs.cp.of("/sys"), unix.O_PATH|unix.O_DIRECTORY); e == 0 {
		if fstatfsFd(fd, &sfs) == 0 && sfs.Type == unix.SYSFS_MAGIC && fdStatx(fd, &st) == 0 {
			o.sysDev = unix.Mkdev(st.Dev_major, st.Dev_minor)
		}
		sysClose(fd)
	}
	return o
}

// viewOf returns th's view for the current epoch.
func (rs *resolver) viewOf(th *thread) *traceeView {
	v := &th.view
	if v.valid && v.epoch == rs.epoch {
		return v
	}
	o := rs.ours()
	*v = traceeView{epoch: rs.epoch, valid: true}
	var st unix.Statx_t
	tid := strconv.Itoa(th.tid)
	if sysStatx(unix.AT_FDCWD, rs.cp.of("/proc/"+tid+"/root"), 0, &st) != 0 {
		return v
	}
	root := idOf(&st)
	if sysStatx(unix.AT_FDCWD, rs.cp.of("/proc/"+tid+"/ns/mnt"), 0, &st) == 0 {
		v.same = root == o.root && st.Ino == o.mntNS && o.mntNS != 0
	} else {
		// No ns files (a sandbox without them): with none of its own
		// either, the root decides.
		v.same = root == o.root && o.mntNS == 0
	}
	if !v.same {
		if fd, e := sysOpenat(unix.AT_FDCWD, rs.cp.of("/proc/"+tid+"/root"), unix.O_PATH); e == 0 {
			if c, ok := rs.canonOf(fd, th.tid); ok {
				v.rootCanon = c
			}
			sysClose(fd)
		}
	}
	return v
}

// pathQuery is one path argument to resolve.
type pathQuery struct {
	tid, tgid int
	raw       string
	// dirfd is the tracee's fd the path is relative to, or AT_FDCWD.
	dirfd int
	// bindSource: the source of a bind mount (see Tracer.rewrite).
	bindSource bool
	// follow: a trailing symlink is followed (stat, open without
	// O_NOFOLLOW); a trailing "/" follows anyway.
	follow bool
	// resolve are openat2's RESOLVE_* flags.
	resolve uint64
	// changes: the call may change the file or create it (treeFirst then
	// checks the tree afresh).
	changes bool
}

// lookup is what the resolver found for one path.
type lookup struct {
	// errno: the lookup fails this way in the tracee's view (ELOOP,
	// EXDEV, ENOTDIR, ...): the kernel would fail the call so too.
	errno unix.Errno
	// known: canon is established. When it is not, hold says whether
	// the object's filesystem could hold something a rule covers.
	known bool
	hold  bool
	// canon is the canonical path of the object, or of its deepest
	// existing directory with the missing tail appended.
	canon string
	// exists: the real object exists (obj is its O_PATH fd).
	exists bool
	// realUnknown: the host tree's file decided (treeFirst), the real
	// side was not looked at; exists says nothing then.
	realUnknown bool
	obj         int
	// text is the path, in the tracee's view, that reaches the object
	// without the host tree: the raw path, or the path a host tree's
	// symlink led to (viaHost).
	text    string
	viaHost bool
	// host is set when a redirect covers canon: hostHas says its host
	// tree has the file (hostPath, in nodeboot's view).
	rule     int // matcher index, -1 when none covers
	hostHas  bool
	hostPath string
	// treeGone: the covering redirect's host tree is gone (see treeOK).
	treeGone bool

	fds []int // to close
}

func (lk *lookup) release() {
	for _, fd := range lk.fds {
		sysClose(fd)
	}
	lk.fds = lk.fds[:0]
}

// resolve resolves q for thread th: the fast path when it can decide, the
// slow walk otherwise; then the host tree of the redirect that covers the
// result, again from the start when a host tree's symlink leads elsewhere.
func (rs *resolver) resolve(th *thread, q pathQuery) *lookup {
	lk := &lookup{obj: -1, rule: -1, text: q.raw}
	v := rs.viewOf(th)
	links := 0
	for restart := 0; ; restart++ {
		lk.errno, lk.known, lk.hold, lk.exists, lk.canon = 0, false, false, false, ""
		if restart == 0 && v.same && !rs.noFast && rs.treeFirst(q, lk) {
			return lk
		}
		if !(v.same && !rs.noFast && rs.fast(th, q, lk)) {
			rs.slow(th, q, lk, &links)
		}
		if lk.errno != 0 || !lk.known {
			return lk
		}
		lk.canon = rs.dealias(lk.canon)
		next, ok := rs.overlay(th, v, q, lk, &links)
		if !ok {
			return lk
		}
		// A symlink of the host tree: resolve its target in the tracee's
		// view, from its root.
		q = pathQuery{tid: q.tid, tgid: q.tgid, raw: next, dirfd: unix.AT_FDCWD, follow: q.follow}
		lk.text, lk.viaHost = next, true
		for _, fd := range lk.fds {
			sysClose(fd)
		}
		lk.fds = lk.fds[:0]
		lk.obj = -1
		if links > maxSymlinks {
			lk.errno = unix.ELOOP
			return lk
		}
	}
}

// treeFirst decides the commonest redirected call with one syscall: an
// absolute path, in nodeboot's view, below a redirect's guest, whose host
// tree has the file. The tree's file hides the real one whatever the real
// side holds (overlay semantics: a tree directory hides a real symlink
// too), so the real path need not be resolved at all; it is enough that
// the guest root itself is reached by its text (guestRootOK) and that no
// alias mount is on the way. One openat2 in the tree, confined to it and
// refusing symlinks, proves the file is there. Anything else (a relative
// path, "..", a symlink in the tree, a file the tree lacks) goes the usual
// way.
func (rs *resolver) treeFirst(q pathQuery, lk *lookup) bool {
	p := q.raw
	if q.resolve != 0 || rs.noOpenat2 || len(rs.trees) == 0 || p == "" || p[0] != '/' || len(p) >= pathMax || endsDir(p) {
		return false
	}
	clean := rules.CleanPath(p)
	i, rel, ok := rs.m.cover(clean)
	if !ok || rel == "" || hasDotDot(p) {
		return false
	}
	tr := &rs.trees[i]
	if tr.fd < 0 || !tr.dir {
		return false
	}
	now := time.Now()
	if !q.changes && rs.seen.gen == rs.treeGen && now.Sub(rs.seen.at) < treeCheck && !tr.gone {
		if want, ok := rs.seen.paths[seenKey{i, rel, q.follow}]; ok && want {
			lk.known, lk.canon, lk.realUnknown = true, clean, true
			lk.rule, lk.hostPath, lk.hostHas = i, rs.m.hostOf(i, rel), true
			return true
		}
	}
	if !rs.treeOK(i) {
		return false
	}
	a := rs.aliasState()
	for _, m := range a.aliases {
		if hasPathPrefixOf(clean, m.point) {
			return false
		}
	}
	if !rs.guestRootOK(i) {
		return false
	}
	flags := uint64(unix.O_PATH)
	if !q.follow {
		flags |= unix.O_NOFOLLOW
	}
	fd, e := sysOpenat2(tr.fd, rs.cp.of(rel), flags,
		unix.RESOLVE_NO_SYMLINKS|unix.RESOLVE_NO_MAGICLINKS|unix.RESOLVE_BENEATH)
	if e != 0 {
		return false
	}
	sysClose(fd)
	if rs.seen.gen != rs.treeGen || now.Sub(rs.seen.at) >= treeCheck || len(rs.seen.paths) >= maxSeen {
		rs.seen = seenTree{gen: rs.treeGen, at: now, paths: make(map[seenKey]bool)}
	}
	rs.seen.paths[seenKey{i, rel, q.follow}] = true
	lk.known, lk.canon, lk.realUnknown = true, clean, true
	lk.rule, lk.hostPath, lk.hostHas = i, rs.m.hostOf(i, rel), true
	return true
}

// seenTree remembers the tree files treeFirst found (no symlink on the
// way), so that a program reading one file in a loop costs the tracer no
// syscall to decide. It is forgotten whenever a traced call may change a
// tree (treeGen), and after treeCheck, for changes made by others; a
// changing call always looks again. Between two looks a tree moved away
// sends reads to the old path, which the kernel then finds missing: never
// to the real file.
type seenTree struct {
	gen   uint64
	at    time.Time
	paths map[seenKey]bool
}

type seenKey struct {
	rule   int
	rel    string
	follow bool
}

// maxSeen bounds seenTree.
const maxSeen = 4096

// guestRootOK reports whether redirect i's guest root is, in nodeboot's
// view, reached by its text: no symlink on the way and not a procfs root
// or "/", whose magic links ("self", "PID/root") the text alone does not
// resolve. Checked once per epoch and alias table, and again at most every
// treeCheck.
func (rs *resolver) guestRootOK(i int) bool {
	tr := &rs.trees[i]
	now := time.Now()
	if tr.rootEpoch == rs.epoch && tr.rootGen == rs.alias.gen && now.Sub(tr.rootChecked) < treeCheck {
		return tr.rootOK
	}
	g := rs.m.redirects[i].Guest
	ok := g != "/" && g != "/proc"
	if ok {
		fd, e := sysOpenat2(unix.AT_FDCWD, rs.cp.of(g), unix.O_PATH, unix.RESOLVE_NO_SYMLINKS|unix.RESOLVE_NO_MAGICLINKS)
		switch e {
		case 0:
			var sfs unix.Statfs_t
			// A procfs root mounted at the guest (a second /proc) has
			// magic links right below it.
			var st unix.Statx_t
			if fstatfsFd(fd, &sfs) == 0 && sfs.Type == unix.PROC_SUPER_MAGIC && fdStatx(fd, &st) == 0 && st.Ino == procRootIno {
				ok = false
			}
			sysClose(fd)
		case unix.ENOENT:
			// Missing in nodeboot's view (a sandbox hiding /proc/sys):
			// only the tree has it, which is what the text names.
		default:
			ok = false
		}
	}
	tr.rootOK, tr.rootEpoch, tr.rootGen, tr.rootChecked = ok, rs.epoch, rs.alias.gen, now
	return ok
}

// fast resolves q with one openat2(RESOLVE_NO_SYMLINKS) when th's view is
// nodeboot's; it reports false when the slow walk must decide (a symlink on
// the way, RESOLVE flags, a cwd whose path is not known, ...).
func (rs *resolver) fast(th *thread, q pathQuery, lk *lookup) bool {
	if q.resolve != 0 || q.raw == "" {
		return false
	}
	p := q.raw
	if p[0] != '/' {
		base, ok := rs.baseText(th, q.dirfd)
		if !ok {
			return false
		}
		p = base + "/" + p
	}
	p = rs.procSelfText(th, p, q.follow)
	if len(p) >= pathMax {
		return false
	}
	flags := uint64(unix.O_PATH)
	if !q.follow && !endsDir(p) {
		flags |= unix.O_NOFOLLOW
	}
	var fd int
	var e unix.Errno
	if rs.noOpenat2 {
		return rs.fastReadlink(p, int(flags), lk)
	}
	fd, e = sysOpenat2(unix.AT_FDCWD, rs.cp.of(p), flags, unix.RESOLVE_NO_SYMLINKS)
	switch e {
	case 0:
		lk.fds = append(lk.fds, fd)
		lk.obj, lk.exists = fd, true
	case unix.ENOENT, unix.ENOTDIR:
		// Missing (or a file named as a directory): no symlink came
		// before the component that failed, so the text is the path;
		// unless ".." comes after it, which the kernel never reaches.
		if hasDotDot(p) {
			return false
		}
	case unix.ENOSYS:
		rs.noOpenat2 = true
		return rs.fastReadlink(p, int(flags), lk)
	default:
		return false
	}
	lk.known, lk.canon = true, rules.CleanPath(p)
	return true
}

// fastReadlink is the fast path without openat2: open the path as the
// tracee would (the views are the same), and accept it when the object's
// own path (readlink of /proc/self/fd) is the path's lexical form: that
// text has no symlink in it, so the kernel reaches the same object. A
// missing file goes to the slow walk, which finds out whether a symlink led
// there.
func (rs *resolver) fastReadlink(p string, flags int, lk *lookup) bool {
	fd, e := sysOpenat(unix.AT_FDCWD, rs.cp.of(p), flags)
	if e != 0 {
		return false
	}
	lk.fds = append(lk.fds, fd)
	n, e := sysReadlinkat(unix.AT_FDCWD, rs.cp.of("/proc/self/fd/"+strconv.Itoa(fd)), rs.link)
	clean := rules.CleanPath(p)
	if e != 0 || string(rs.link[:n]) != clean {
		return false
	}
	lk.obj, lk.exists = fd, true
	lk.known, lk.canon = true, clean
	return true
}

// baseText returns the path of th's cwd (dirfd AT_FDCWD) or of its dirfd,
// in nodeboot's view, when that text names the very object (checked: the
// text of /proc/TID/cwd lies for a deleted, unreachable or too deep one).
func (rs *resolver) baseText(th *thread, dirfd int) (string, bool) {
	link := "/proc/" + strconv.Itoa(th.tid) + "/cwd"
	if dirfd != unix.AT_FDCWD {
		if dirfd < 0 {
			return "", false
		}
		link = "/proc/" + strconv.Itoa(th.tid) + "/fd/" + strconv.Itoa(dirfd)
	}
	n, e := sysReadlinkat(unix.AT_FDCWD, rs.cp.of(link), rs.link)
	if e != 0 || n == 0 || rs.link[0] != '/' || n >= len(rs.link) {
		return "", false
	}
	text := string(rs.link[:n])
	var a, b unix.Statx_t
	if sysStatx(unix.AT_FDCWD, rs.cp.of(link), 0, &a) != 0 ||
		sysStatx(unix.AT_FDCWD, rs.cp.of(text), unix.AT_SYMLINK_NOFOLLOW, &b) != 0 ||
		idOf(&a) != idOf(&b) || a.Mode&unix.S_IFMT != unix.S_IFDIR {
		return "", false
	}
	return text, true
}

// procSelfText replaces a leading /proc/self or /proc/thread-self by the
// thread's own entries, when nodeboot's /proc shows nodeboot's pid
// namespace (then the tracer's pids name the same processes there). Other
// spellings (/proc//self, /proc/./self) reach the symlink, and the slow walk
// replaces it.
func (rs *resolver) procSelfText(th *thread, p string, follow bool) string {
	const self, threadSelf = "/proc/self", "/proc/thread-self"
	if !strings.HasPrefix(p, "/proc/") || !rs.ours().procOurs {
		return p
	}
	// A trailing "self" itself (lstat, readlink) is the symlink.
	switch {
	case strings.HasPrefix(p, self) && (len(p) == len(self) && follow || len(p) > len(self) && p[len(self)] == '/'):
		return "/proc/" + strconv.Itoa(th.tgidOr()) + p[len(self):]
	case strings.HasPrefix(p, threadSelf) && (len(p) == len(threadSelf) && follow || len(p) > len(threadSelf) && p[len(threadSelf)] == '/'):
		return "/proc/" + strconv.Itoa(th.tgidOr()) + "/task/" + strconv.Itoa(th.tid) + p[len(threadSelf):]
	}
	return p
}

// tgidOr is the thread's thread group, or its tid while unknown.
func (th *thread) tgidOr() int {
	if th.tgid != 0 {
		return th.tgid
	}
	return th.tid
}

// endsDir reports whether a path names a directory by its form: a trailing
// "/" (or "/." and "/.."), which also makes a trailing symlink followed.
func endsDir(p string) bool {
	return mustBeDir([]byte(p))
}

// slow resolves q with the walker.
func (rs *resolver) slow(th *thread, q pathQuery, lk *lookup, links *int) {
	if q.resolve == 0 && !rs.noText && rs.viewOf(th).same && rs.textWalk(th, q, lk, links) {
		return
	}
	w := walker{rs: rs, th: th, flags: q.resolve, links: *links, root: -1, scope: -1, same: rs.viewOf(th).same}
	defer func() { *links = w.links }()
	defer w.closeAll(lk)
	if q.raw == "" {
		lk.errno = unix.ENOENT
		return
	}
	var start int
	var startCanon string
	if q.raw[0] == '/' && q.resolve&(unix.RESOLVE_BENEATH|unix.RESOLVE_IN_ROOT) == 0 {
		start = -1 // the walk begins at the root
	} else {
		link := "/proc/" + strconv.Itoa(th.tid) + "/cwd"
		if q.dirfd != unix.AT_FDCWD {
			if q.dirfd < 0 {
				lk.errno = unix.EBADF
				return
			}
			link = "/proc/" + strconv.Itoa(th.tid) + "/fd/" + strconv.Itoa(q.dirfd)
		}
		fd, e := sysOpenat(unix.AT_FDCWD, rs.cp.of(link), unix.O_PATH)
		if e != 0 {
			if e == unix.ENOENT {
				e = unix.EBADF // the fd is not open
			}
			lk.errno = e
			return
		}
		w.own(fd)
		start = fd
		if w.same {
			startCanon, _ = rs.canonOf(fd, th.tid)
		}
		if q.resolve&(unix.RESOLVE_BENEATH|unix.RESOLVE_IN_ROOT) != 0 {
			w.scope = fd
			var st unix.Statx_t
			if e := fdStatx(fd, &st); e != 0 {
				lk.errno = e
				return
			}
			w.scopeID = idOf(&st)
		}
	}
	res := w.walk(start, startCanon, q.raw, q.follow)
	lk.errno = res.errno
	if res.errno != 0 {
		return
	}
	lk.exists = res.exists
	if res.exists {
		lk.obj = res.fd
	}
	canon := res.canon
	known := canon != ""
	if !known && res.exists && res.mode&unix.S_IFMT != unix.S_IFDIR && res.parent >= 0 {
		// A file: its directory's path and its name.
		if c, ok := rs.canonOf(res.parent, th.tid); ok {
			canon, known = joinCanon(c, res.pname), true
		}
	}
	if !known {
		canon, known = rs.canonOf(res.fd, th.tid)
	}
	if !known {
		// A file unlinked meanwhile (reached through /proc/PID/fd) has no
		// path: no rule can cover it.
		lk.hold = rs.holds(res.fd) && !(res.exists && unlinked(res.fd))
		if lk.hold || res.exists || res.vtext == "" {
			return
		}
		// A name missing in a filesystem nodeboot does not have (a tmpfs
		// of the tracee's own namespace): nothing there is a real file a
		// rule covers, and a missing one is named by the tracee's path,
		// as nodeboot would see it from the tracee's root.
		r := rs.viewOf(th).rootCanon
		if r == "" {
			return
		}
		canon, known = joinNames(r, splitPath(res.vtext)), true
	}
	if len(res.tail) > 0 {
		canon = rules.CleanPath(canon + "/" + strings.Join(res.tail, "/"))
	}
	lk.known, lk.canon = true, canon
}

// textWalk is the slow walk for a thread whose view is nodeboot's, done on
// text: in the same view a path with no symlink in it names the same object
// for the tracer and the tracee, so each component costs one readlinkat
// of the path so far (EINVAL: not a symlink) instead of an open, a statx
// and a close. A symlink on a procfs (a magic link, or "self" of a procfs
// other than /proc) hands the lookup to the walker: ok=false, and lk and
// links are untouched.
func (rs *resolver) textWalk(th *thread, q pathQuery, lk *lookup, links *int) bool {
	p := "/"
	if q.raw[0] != '/' {
		base, ok := rs.baseText(th, q.dirfd)
		if !ok {
			return false
		}
		p = base
	}
	n := *links
	rest := splitPath(q.raw)
	mustDir := endsDir(q.raw)
	// dir: p is known to be a directory (not after a name step).
	dir := true
	isDir := func() (bool, bool) {
		if dir {
			return true, true
		}
		var st unix.Statx_t
		if sysStatx(unix.AT_FDCWD, rs.cp.of(p), unix.AT_SYMLINK_NOFOLLOW, &st) != 0 {
			return false, false
		}
		return st.Mode&unix.S_IFMT == unix.S_IFDIR, true
	}
	finishMissing := func(tail []string, e unix.Errno) bool {
		for _, c := range tail {
			if c == ".." {
				lk.errno = e
				*links = n
				return true
			}
		}
		lk.known, lk.canon = true, rules.CleanPath(joinNames(p, tail))
		*links = n
		return true
	}
	for len(rest) > 0 {
		name := rest[0]
		rest = rest[1:]
		last := len(rest) == 0
		if name == "." || name == ".." {
			d, ok := isDir()
			if !ok {
				return false
			}
			if !d {
				return finishMissing(append([]string{name}, rest...), unix.ENOTDIR)
			}
			if name == ".." {
				p = parentCanon(p)
			}
			continue
		}
		if p == "/proc" && (name == "self" || name == "thread-self") && rs.ours().procOurs && (!last || q.follow || mustDir) {
			// nodeboot's /proc: the caller's own entries.
			n++
			t := strconv.Itoa(th.tgidOr())
			if name == "thread-self" {
				t += "/task/" + strconv.Itoa(th.tid)
			}
			rest = append(splitPath(t), rest...)
			continue
		}
		next := joinCanon(p, name)
		if len(next) >= pathMax || len(name) > 255 {
			return false
		}
		m, e := sysReadlinkat(unix.AT_FDCWD, rs.cp.of(next), rs.link)
		switch e {
		case unix.EINVAL: // there, not a symlink
			p, dir = next, false
			continue
		case unix.ENOENT:
			return finishMissing(append([]string{name}, rest...), unix.ENOENT)
		case unix.ENOTDIR:
			return finishMissing(append([]string{name}, rest...), unix.ENOTDIR)
		case 0:
		default:
			return false // the walker finds out
		}
		if !(!last || q.follow || mustDir) {
			p, dir = next, false // the symlink itself
			continue
		}
		var sfs unix.Statfs_t
		if rs.statfsPath(p, &sfs) != 0 || sfs.Type == unix.PROC_SUPER_MAGIC {
			return false
		}
		if i, rel, ok := rs.m.cover(next); ok && rs.trees[i].fd >= 0 && rs.hostHasRel(i, rel) {
			// The tree hides the real symlink (see walker.hostOverrides).
			lk.known, lk.canon = true, rules.CleanPath(joinNames(next, rest))
			*links = n
			return true
		}
		n++
		if n > maxSymlinks {
			lk.errno = unix.ELOOP
			*links = n
			return true
		}
		if m == 0 {
			lk.errno = unix.ENOENT
			*links = n
			return true
		}
		target := string(rs.link[:m])
		if last && strings.HasSuffix(target, "/") {
			mustDir = true
		}
		if target[0] == '/' {
			p = "/"
		}
		dir = true
		rest = append(splitPath(target), rest...)
	}
	fd, e := sysOpenat(unix.AT_FDCWD, rs.cp.of(p), unix.O_PATH|unix.O_NOFOLLOW)
	if e != 0 {
		return false // changed meanwhile: the walker decides
	}
	if mustDir {
		var st unix.Statx_t
		if fdStatx(fd, &st) != 0 || st.Mode&unix.S_IFMT != unix.S_IFDIR {
			sysClose(fd)
			i := strings.LastIndexByte(p, '/')
			name := p[i+1:]
			p = parentCanon(p)
			return finishMissing([]string{name}, unix.ENOTDIR)
		}
	}
	lk.fds = append(lk.fds, fd)
	lk.obj, lk.exists, lk.known, lk.canon = fd, true, true, p
	*links = n
	return true
}

// statfsPath is statfs of a path, raw.
func (rs *resolver) statfsPath(p string, st *unix.Statfs_t) unix.Errno {
	_, _, e := unix.RawSyscall(unix.SYS_STATFS, uintptr(unsafe.Pointer(rs.cp.of(p))), uintptr(unsafe.Pointer(st)), 0)
	return e
}

// hostHasRel reports whether redirect i's tree has rel (a symlink counts).
func (rs *resolver) hostHasRel(i int, rel string) bool {
	if rel == "" {
		return true
	}
	var st unix.Statx_t
	return sysStatx(rs.trees[i].fd, rs.cp2.of(rel), unix.AT_SYMLINK_NOFOLLOW, &st) == 0
}

// walker is one slow walk in a tracee's view.
type walker struct {
	rs    *resolver
	th    *thread
	flags uint64 // RESOLVE_*
	links int
	// same: the view is nodeboot's, so the canonical path of the current
	// directory can be kept as text along the walk.
	same bool

	root    int // the tracee's root (opened at the first need), or -1
	rootID  fileID
	scope   int // the dirfd of RESOLVE_BENEATH / RESOLVE_IN_ROOT, or -1
	scopeID fileID

	owned []int
}

func (w *walker) own(fd int) { w.owned = append(w.owned, fd) }

// closeAll closes what the walk opened except what lk keeps.
func (w *walker) closeAll(lk *lookup) {
	for _, fd := range w.owned {
		if fd == lk.obj && lk.exists {
			lk.fds = append(lk.fds, fd)
			continue
		}
		sysClose(fd)
	}
	w.owned = nil
}

// drop closes fd now unless it is pinned (root, scope) or kept.
func (w *walker) drop(fd int) {
	if fd < 0 || fd == w.root || fd == w.scope {
		return
	}
	for i, o := range w.owned {
		if o == fd {
			w.owned = append(w.owned[:i], w.owned[i+1:]...)
			sysClose(fd)
			return
		}
	}
}

// rootFd opens the tracee's root (the magic link gives its root object in
// its own mount namespace and chroot).
func (w *walker) rootFd() (int, unix.Errno) {
	if w.root >= 0 {
		return w.root, 0
	}
	fd, e := sysOpenat(unix.AT_FDCWD, w.rs.cp.of("/proc/"+strconv.Itoa(w.th.tid)+"/root"), unix.O_PATH)
	if e != 0 {
		return -1, e
	}
	w.own(fd)
	var st unix.Statx_t
	if e := fdStatx(fd, &st); e != 0 {
		return -1, e
	}
	w.root, w.rootID = fd, idOf(&st)
	return fd, 0
}

// walkResult is where a walk ended.
type walkResult struct {
	errno unix.Errno
	// fd is the object (exists) or the deepest directory found (its tail
	// is missing).
	fd     int
	exists bool
	mode   uint16
	tail   []string
	// canon is fd's canonical path when the walk could keep it ("" when
	// not known).
	canon string
	// parent and pname: where an existing object was found by name (-1
	// after a magic link).
	parent int
	pname  string
	// vtext is fd's path in the tracee's view, "" when not known.
	vtext string
}

// walk resolves path from start (an O_PATH directory, or -1 for the root)
// as namei does; follow says whether a trailing symlink is followed.
func (w *walker) walk(start int, startCanon, path string, follow bool) walkResult {
	rs := w.rs
	var cur int
	var canon string
	var curID fileID
	var curMode uint16
	// vtext is the path in the tracee's own view ("" once unknown: after a
	// magic link, from a dirfd or cwd, inside a RESOLVE_IN_ROOT scope).
	vtext := ""
	setCur := func(fd int, c string) unix.Errno {
		var st unix.Statx_t
		if e := fdStatx(fd, &st); e != 0 {
			return e
		}
		cur, canon, curID, curMode = fd, c, idOf(&st), st.Mode
		return 0
	}
	toRoot := func() unix.Errno {
		if w.flags&unix.RESOLVE_BENEATH != 0 {
			return unix.EXDEV
		}
		if w.flags&unix.RESOLVE_IN_ROOT != 0 {
			if w.flags&unix.RESOLVE_NO_XDEV != 0 && cur >= 0 && curID.mnt != w.scopeID.mnt {
				return unix.EXDEV
			}
			vtext = ""
			return setCur(w.scope, w.scopeCanon())
		}
		fd, e := w.rootFd()
		if e != 0 {
			return e
		}
		if w.flags&unix.RESOLVE_NO_XDEV != 0 && cur >= 0 && curID.mnt != w.rootID.mnt {
			return unix.EXDEV
		}
		c := ""
		if w.same {
			c = "/"
		}
		vtext = "/"
		return setCur(fd, c)
	}
	cur = -1
	if start < 0 || path[0] == '/' {
		if e := toRoot(); e != 0 {
			return walkResult{errno: e}
		}
	} else if e := setCur(start, startCanon); e != 0 {
		return walkResult{errno: e}
	}
	rest := splitPath(path)
	mustDir := endsDir(path)
	// parent and pname: the directory the current object was looked up
	// in, and its name there (a file cannot be climbed from with "..";
	// its canonical path is its parent's and its name).
	parent, pname := -1, ""
	leave := func() {
		w.drop(parent)
		parent = -1
	}
	// missing ends the walk at a name that is not there (or not a
	// directory): the rest is the tail, unless ".." follows, which the
	// kernel never gets to.
	missing := func(tail []string, e unix.Errno) walkResult {
		for _, c := range tail {
			if c == ".." {
				return walkResult{errno: e}
			}
		}
		return walkResult{fd: cur, canon: canon, tail: tail, vtext: vtext}
	}
	for len(rest) > 0 {
		name := rest[0]
		rest = rest[1:]
		last := len(rest) == 0
		switch name {
		case ".":
			if curMode&unix.S_IFMT != unix.S_IFDIR {
				return walkResult{errno: unix.ENOTDIR}
			}
			continue
		case "..":
			if curMode&unix.S_IFMT != unix.S_IFDIR {
				return walkResult{errno: unix.ENOTDIR}
			}
			leave()
			was := curID
			if e := w.dotdot(&cur, &canon, &curID, &curMode); e != 0 {
				return walkResult{errno: e}
			}
			if vtext != "" && curID != was {
				vtext = parentCanon(vtext)
			}
			continue
		}
		if len(name) > 255 {
			return walkResult{errno: unix.ENAMETOOLONG}
		}
		child, e := sysOpenat(cur, rs.cp.of(name), unix.O_PATH|unix.O_NOFOLLOW)
		if e == unix.ENOENT {
			return missing(append([]string{name}, rest...), unix.ENOENT)
		}
		if e != 0 {
			return walkResult{errno: e}
		}
		w.own(child)
		var st unix.Statx_t
		if e := fdStatx(child, &st); e != 0 {
			return walkResult{errno: e}
		}
		childID := idOf(&st)
		if w.flags&unix.RESOLVE_NO_XDEV != 0 && childID.mnt != curID.mnt {
			return walkResult{errno: unix.EXDEV}
		}
		childCanon := ""
		if canon != "" {
			childCanon = joinCanon(canon, name)
		}
		isLink := st.Mode&unix.S_IFMT == unix.S_IFLNK
		followIt := isLink && (!last || follow || mustDir)
		if (followIt || (!last && st.Mode&unix.S_IFMT != unix.S_IFDIR)) && w.hostOverrides(cur, canon, name) {
			// The host tree has this covered path: it hides the real
			// symlink or file; the overlay step resolves the rest there.
			if canon == "" {
				canon, _ = rs.canonOf(cur, w.th.tid)
			}
			return walkResult{fd: cur, canon: canon, tail: append([]string{name}, rest...)}
		}
		if !followIt {
			if !last && st.Mode&unix.S_IFMT != unix.S_IFDIR {
				// Not a directory: nothing below it (ENOTDIR), as a
				// missing name.
				w.drop(child)
				return missing(append([]string{name}, rest...), unix.ENOTDIR)
			}
			w.drop(parent)
			parent, pname = cur, name
			cur, canon, curID, curMode = child, childCanon, childID, st.Mode
			if vtext != "" {
				vtext = joinCanon(vtext, name)
			}
			continue
		}
		// A symlink to follow.
		if w.flags&unix.RESOLVE_NO_SYMLINKS != 0 {
			return walkResult{errno: unix.ELOOP}
		}
		w.links++
		if w.links > maxSymlinks {
			return walkResult{errno: unix.ELOOP}
		}
		var sfs unix.Statfs_t
		inProc := fstatfsFd(child, &sfs) == 0 && sfs.Type == unix.PROC_SUPER_MAGIC
		if inProc && curID.ino == procRootIno && (name == "self" || name == "thread-self") {
			// Depends on who opens it: the caller's ids in this procfs.
			target, e := w.procSelf(cur, name)
			if e != 0 {
				return walkResult{errno: e}
			}
			rest = append(splitPath(target), rest...)
			w.drop(child)
			continue
		}
		if inProc && curID.ino != procRootIno {
			// A magic link (/proc/PID/{root,cwd,exe}, fd/N, map_files/*,
			// ns/*): it jumps to its object, whoever opens it.
			if w.flags&unix.RESOLVE_NO_MAGICLINKS != 0 {
				return walkResult{errno: unix.ELOOP}
			}
			if w.flags&(unix.RESOLVE_BENEATH|unix.RESOLVE_IN_ROOT) != 0 {
				return walkResult{errno: unix.EXDEV}
			}
			w.drop(child)
			leave()
			vtext = ""
			jump, e := sysOpenat(cur, rs.cp.of(name), unix.O_PATH)
			if e != 0 {
				return walkResult{errno: e}
			}
			w.own(jump)
			var js unix.Statx_t
			if e := fdStatx(jump, &js); e != 0 {
				return walkResult{errno: e}
			}
			if w.flags&unix.RESOLVE_NO_XDEV != 0 && idOf(&js).mnt != curID.mnt {
				return walkResult{errno: unix.EXDEV}
			}
			jc := ""
			if w.same {
				jc, _ = rs.canonOf(jump, w.th.tid)
			}
			prev := cur
			cur, canon, curID, curMode = jump, jc, idOf(&js), js.Mode
			w.drop(prev)
			if !last && curMode&unix.S_IFMT != unix.S_IFDIR {
				return walkResult{errno: unix.ENOTDIR}
			}
			continue
		}
		n, e := sysReadlinkat(child, &emptyPath[0], rs.link)
		w.drop(child)
		if e != 0 {
			return walkResult{errno: e}
		}
		if n == 0 {
			return walkResult{errno: unix.ENOENT}
		}
		target := string(rs.link[:n])
		if last && strings.HasSuffix(target, "/") {
			mustDir = true
		}
		rest = append(splitPath(target), rest...)
		if target[0] == '/' {
			prev := cur
			leave()
			if e := toRoot(); e != 0 {
				return walkResult{errno: e}
			}
			w.drop(prev)
		}
	}
	if mustDir && curMode&unix.S_IFMT != unix.S_IFDIR {
		// A file named as a directory: as a missing name of its parent.
		if parent < 0 {
			return walkResult{errno: unix.ENOTDIR}
		}
		c := ""
		if canon != "" {
			c = parentCanon(canon)
		}
		if vtext != "" {
			vtext = parentCanon(vtext)
		}
		return walkResult{fd: parent, canon: c, tail: []string{pname}, vtext: vtext}
	}
	return walkResult{fd: cur, exists: true, mode: curMode, canon: canon, parent: parent, pname: pname}
}

// dotdot moves to the parent as follow_dotdot does: never above the root
// (the tracee's, or the dirfd of RESOLVE_IN_ROOT; RESOLVE_BENEATH fails).
func (w *walker) dotdot(cur *int, canon *string, curID *fileID, curMode *uint16) unix.Errno {
	if w.scope >= 0 && *curID == w.scopeID {
		if w.flags&unix.RESOLVE_BENEATH != 0 {
			return unix.EXDEV
		}
		return 0 // IN_ROOT: ".." of the root is the root
	}
	if w.scope < 0 {
		if _, e := w.rootFd(); e != 0 {
			return e
		}
		if *curID == w.rootID {
			return 0
		}
	}
	p, e := sysOpenat(*cur, w.rs.cp.of(".."), unix.O_PATH)
	if e != 0 {
		return e
	}
	w.own(p)
	var st unix.Statx_t
	if e := fdStatx(p, &st); e != 0 {
		return e
	}
	pid := idOf(&st)
	if w.flags&unix.RESOLVE_NO_XDEV != 0 && pid.mnt != curID.mnt {
		return unix.EXDEV
	}
	c := ""
	if *canon != "" {
		c = parentCanon(*canon)
	}
	prev := *cur
	*cur, *canon, *curID, *curMode = p, c, pid, st.Mode
	w.drop(prev)
	return 0
}

// scopeCanon is the canonical path of the RESOLVE_IN_ROOT dirfd, when the
// view allows keeping text.
func (w *walker) scopeCanon() string {
	if !w.same {
		return ""
	}
	c, _ := w.rs.canonOf(w.scope, w.th.tid)
	return c
}

// hostOverrides reports whether the redirect covering dir/name has that
// path in its host tree, so that the host's file hides the real one.
func (w *walker) hostOverrides(dir int, canon, name string) bool {
	if len(w.rs.m.redirects) == 0 {
		return false
	}
	if canon == "" {
		c, ok := w.rs.canonOf(dir, w.th.tid)
		if !ok {
			return false
		}
		canon = c
	}
	p := joinCanon(canon, name)
	i, rel, ok := w.rs.m.cover(p)
	if !ok {
		return false
	}
	tr := &w.rs.trees[i]
	if tr.fd < 0 {
		return false
	}
	if rel == "" {
		return true
	}
	var st unix.Statx_t
	return sysStatx(tr.fd, w.rs.cp2.of(rel), unix.AT_SYMLINK_NOFOLLOW, &st) == 0
}

// procSelf returns what "self" or "thread-self" at the procfs root dir
// means for the walking thread: its pid (and tid) as that procfs's pid
// namespace numbers them.
func (w *walker) procSelf(dir int, name string) (string, unix.Errno) {
	rs := w.rs
	tgid, tid := w.th.tgidOr(), w.th.tid
	var st unix.Statx_t
	if fdStatx(dir, &st) != 0 {
		return "", unix.ENOENT
	}
	o := rs.ours()
	if o.procOurs && unix.Mkdev(st.Dev_major, st.Dev_minor) == o.procDev {
		if name == "self" {
			return strconv.Itoa(tgid), 0
		}
		return strconv.Itoa(tgid) + "/task/" + strconv.Itoa(tid), 0
	}
	// Another procfs: find the level of NSpid (outermost first) at which
	// that procfs shows a process started when ours was.
	pids := nsPids(tgid)
	tids := nsPids(tid)
	start, ok := procStartTime("/proc/"+strconv.Itoa(tgid)+"/stat", rs)
	if !ok || len(pids) == 0 || len(pids) != len(tids) {
		return "", unix.ENOENT
	}
	for i := range pids {
		p := strconv.Itoa(pids[i])
		fd, e := sysOpenat(dir, rs.cp.of(p+"/stat"), unix.O_RDONLY)
		if e != 0 {
			continue
		}
		t, ok := readStartTime(fd)
		sysClose(fd)
		if ok && t == start {
			if name == "self" {
				return p, 0
			}
			return p + "/task/" + strconv.Itoa(tids[i]), 0
		}
	}
	// The caller is not in that procfs's pid namespace: the kernel's
	// /proc/self there is ENOENT too.
	return "", unix.ENOENT
}

// splitPath splits p into its components ("." and ".." kept, empty ones
// dropped).
func splitPath(p string) []string {
	out := make([]string, 0, 8)
	for p != "" {
		i := strings.IndexByte(p, '/')
		if i < 0 {
			out = append(out, p)
			break
		}
		if i > 0 {
			out = append(out, p[:i])
		}
		p = p[i+1:]
	}
	return out
}

func joinCanon(dir, name string) string {
	if dir == "/" {
		return "/" + name
	}
	return dir + "/" + name
}

func parentCanon(p string) string {
	i := strings.LastIndexByte(p, '/')
	if i <= 0 {
		return "/"
	}
	return p[:i]
}

// nsPids returns the ids of a thread in each pid namespace it is in,
// outermost (nodeboot's) first: the NSpid line of /proc/ID/status, or of a
// pidfd's fdinfo where the status has none (gVisor's has none; its fdinfo
// does: pkg/sentry/fsimpl/proc/task_fds.go). [id] when neither says.
func nsPids(id int) []int {
	b, err := readSmallFile("/proc/" + strconv.Itoa(id) + "/status")
	if err != nil {
		return nil
	}
	if ids := nspidLine(b); ids != nil {
		return ids
	}
	// PIDFD_THREAD (O_EXCL, Linux 6.9) for a thread that leads no group.
	for _, flags := range []int{unix.O_EXCL, 0} {
		fd, err := unix.PidfdOpen(id, flags)
		if err != nil {
			continue
		}
		info, rerr := readSmallFile("/proc/self/fdinfo/" + strconv.Itoa(fd))
		unix.Close(fd)
		if rerr == nil {
			if ids := nspidLine(info); ids != nil {
				return ids
			}
		}
		break
	}
	return []int{id}
}

// procStartTime reads field 22 (starttime) of a /proc/PID/stat file.
func procStartTime(path string, rs *resolver) (uint64, bool) {
	fd, e := sysOpenat(unix.AT_FDCWD, rs.cp2.of(path), unix.O_RDONLY)
	if e != 0 {
		return 0, false
	}
	defer sysClose(fd)
	return readStartTime(fd)
}

func readStartTime(fd int) (uint64, bool) {
	var buf [1024]byte
	n, err := unix.Read(fd, buf[:])
	if err != nil || n <= 0 {
		return 0, false
	}
	b := buf[:n]
	// comm may hold spaces and parentheses: fields start after the last ')'.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, false
	}
	f := bytes.Fields(b[i+1:])
	// f[0] is field 3 (state); starttime is field 22.
	if len(f) < 20 {
		return 0, false
	}
	v, err := strconv.ParseUint(string(f[19]), 10, 64)
	return v, err == nil
}

// overlay looks at the host tree of the redirect that covers lk.canon and
// sets lk.rule, lk.hostPath and lk.hostHas. When a symlink of the host tree
// is on the way (or is the file, and the call follows it), it returns the
// path, in the tracee's view, that the symlink leads to: the overlay hides
// the real file there, so its target is resolved as the kernel would
// resolve it for the tracee, from the tracee's root.
func (rs *resolver) overlay(th *thread, v *traceeView, q pathQuery, lk *lookup, links *int) (string, bool) {
	i, rel, ok := rs.m.cover(lk.canon)
	if !ok {
		return "", false
	}
	lk.rule, lk.hostPath, lk.hostHas = i, rs.m.hostOf(i, rel), false
	if !rs.treeOK(i) {
		lk.treeGone = true
		return "", false
	}
	tr := &rs.trees[i]
	if tr.fd < 0 {
		return "", false // no tree (yet): it has no file
	}
	mustDir := endsDir(q.raw)
	follow := q.follow || mustDir
	base, comps := tr.fd, splitPath(rel)
	if !tr.dir {
		// A single file serves the guest: nothing below it.
		if rel != "" {
			return "", false
		}
		base, comps = unix.AT_FDCWD, []string{tr.path}
	} else if !rs.noOpenat2 {
		// One openat2 proves that the host path has no symlink.
		flags := uint64(unix.O_PATH)
		if !follow {
			flags |= unix.O_NOFOLLOW
		}
		p := rel
		if p == "" {
			p = "."
		}
		fd, e := sysOpenat2(tr.fd, rs.cp.of(p), flags,
			unix.RESOLVE_NO_SYMLINKS|unix.RESOLVE_NO_MAGICLINKS|unix.RESOLVE_BENEATH)
		switch e {
		case 0:
			sysClose(fd)
			lk.hostHas = true
			return "", false
		case unix.ENOENT, unix.ENOTDIR:
			return "", false
		case unix.ENOSYS:
			rs.noOpenat2 = true
		}
	}
	cur := base
	var opened []int
	defer func() {
		for _, fd := range opened {
			sysClose(fd)
		}
	}()
	for j, name := range comps {
		last := j == len(comps)-1
		child, e := sysOpenat(cur, rs.cp.of(name), unix.O_PATH|unix.O_NOFOLLOW)
		if e != 0 {
			return "", false // missing, or below a file: not in the tree
		}
		opened = append(opened, child)
		var st unix.Statx_t
		if fdStatx(child, &st) != 0 {
			return "", false
		}
		typ := st.Mode & unix.S_IFMT
		if typ == unix.S_IFLNK && (!last || follow) {
			n, e := sysReadlinkat(child, &emptyPath[0], rs.link)
			if e != 0 || n == 0 {
				return "", false
			}
			target := string(rs.link[:n])
			*links++
			next := target
			if target[0] != '/' {
				// Relative to the directory holding the link, in the
				// merged view: its guest path, as the tracee sees it.
				dirCanon := parentCanon(lk.canon)
				if tr.dir {
					dirCanon = rs.m.guestOf(i, strings.Join(comps[:j], "/"))
				}
				dv, ok := rs.inView(th, v, dirCanon)
				if !ok {
					lk.errno = unix.EACCES
					return "", false
				}
				next = joinCanon(dv, target)
			}
			if rest := strings.Join(comps[j+1:], "/"); rest != "" {
				next += "/" + rest
			}
			if mustDir && !strings.HasSuffix(next, "/") {
				next += "/"
			}
			return next, true
		}
		if !last && typ != unix.S_IFDIR {
			return "", false
		}
		cur = child
	}
	lk.hostHas = true
	return "", false
}

// inView expresses p, a path in nodeboot's view, in th's view: the same
// path when the views are the same; without the tracee's root when that
// root is a directory of nodeboot's view above p. ok=false otherwise.
func (rs *resolver) inView(th *thread, v *traceeView, p string) (string, bool) {
	if v.same {
		return p, true
	}
	r := v.rootCanon
	switch {
	case r == "":
		return "", false
	case r == "/":
		return p, true
	case p == r:
		return "/", true
	case strings.HasPrefix(p, r) && p[len(r)] == '/':
		return p[len(r):], true
	}
	return "", false
}

// sameInViews checks that tp, resolved in th's view, is the object p is
// in nodeboot's (or, when missing, that the same tail is missing below the
// same directory): a tracee with a mount namespace of its own may have
// something else mounted there.
func (rs *resolver) sameInViews(th *thread, p, tp string) bool {
	q := pathQuery{tid: th.tid, tgid: th.tgidOr(), raw: tp, dirfd: unix.AT_FDCWD}
	theirs := &lookup{obj: -1, rule: -1}
	links := 0
	rs.slow(th, q, theirs, &links)
	defer theirs.release()
	if theirs.errno != 0 {
		return false
	}
	var st unix.Statx_t
	if theirs.exists {
		var ts unix.Statx_t
		return sysStatx(unix.AT_FDCWD, rs.cp.of(p), unix.AT_SYMLINK_NOFOLLOW, &st) == 0 &&
			fdStatx(theirs.obj, &ts) == 0 && idOf(&ts).sameInode(idOf(&st))
	}
	// Missing: its deepest existing directory is the same one when its
	// canonical path (its path in nodeboot's view) leads to p.
	return theirs.known && theirs.canon == rules.CleanPath(p) &&
		sysStatx(unix.AT_FDCWD, rs.cp.of(p), unix.AT_SYMLINK_NOFOLLOW, &st) != 0
}

// hasDotDot reports whether p has a ".." component.
func hasDotDot(p string) bool {
	for _, c := range splitPath(p) {
		if c == ".." {
			return true
		}
	}
	return false
}

// unlinked reports whether fd's object is a file with no name left.
func unlinked(fd int) bool {
	var st unix.Statx_t
	return fdStatx(fd, &st) == 0 && st.Nlink == 0 && st.Mode&unix.S_IFMT != unix.S_IFDIR
}
