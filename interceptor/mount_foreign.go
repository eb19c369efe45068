package interceptor

import (
	"strconv"
	"time"

	"golang.org/x/sys/unix"

	"github.com/nodeboot/nodeboot/internal/safefs"
)

// foreignMounts keeps the mount tables of the tracees' mount namespaces
// that are not nodeboot's (containers after runc's unshare and
// pivot_root), by namespace and root (viewKey), each read again only when the kernel says it
// changed. Every object a container names on one of its own mounts is
// placed by its mount's root (mountRoot); reading the container's table
// of dozens of lines for each such call was the largest single cost of the
// tracer while pods start (profiled: 14 % of its CPU).
//
// A kept table holds its mountinfo file open, for the poll that says it
// changed, and that open file pins the namespace: an entry unused for
// foreignMountsKeep is closed at the next lookup, and at most
// foreignMountsMax are kept.
type foreignMounts struct {
	byNS map[viewKey]*nsMounts
}

// viewKey names a view of a mount table: a namespace and a root. A
// mountinfo file lists the mounts reachable from the root its reader had
// when it was opened (fs/proc_namespace.c, show_mountinfo: seq_path_root
// skips the others), so after runc's pivot_root a file opened before shows
// none of the container's mounts: the root is part of the key. Both stay
// pinned by the open file, so neither number is reused while it is kept.
type viewKey struct {
	ns   uint64
	root fileID
}

// nsMounts is the kept mount table of one view (namespace and root).
type nsMounts struct {
	fd    int               // /proc/TID/mountinfo of a thread in the namespace
	roots map[uint64]string // mount id -> its root inside its filesystem
	used  time.Time
}

const (
	foreignMountsKeep = time.Second
	foreignMountsMax  = 16
)

// root returns where mount id's root lies inside its filesystem, from the
// table of mount namespace ns as seen from thread tid's root (tid is
// stopped at a syscall).
func (fm *foreignMounts) root(rs *resolver, tid int, ns, id uint64) (string, bool) {
	key, ok := rs.viewKeyOf(tid, ns)
	if !ok {
		return "", false
	}
	now := time.Now()
	fm.expire(now)
	e := fm.byNS[key]
	switch {
	case e == nil:
		fd, errno := sysOpenat(unix.AT_FDCWD, rs.cp.of("/proc/"+strconv.Itoa(tid)+"/mountinfo"), unix.O_RDONLY|unix.O_CLOEXEC)
		if errno != 0 {
			return "", false
		}
		// The file shows the namespace and root the thread had at the
		// open: they must still be the key's (a stopped thread cannot
		// move, but its number may have been reused by a thread elsewhere).
		if again, ok := rs.viewKeyOf(tid, ns); !ok || again != key || !rs.inMountNS(tid, ns) {
			sysClose(fd)
			return "", false
		}
		e = &nsMounts{fd: fd}
		if !e.read() {
			sysClose(fd)
			return "", false
		}
		if fm.byNS == nil {
			fm.byNS = map[viewKey]*nsMounts{}
		}
		fm.byNS[key] = e
	case mountsChanged(e.fd):
		// mountsChanged cleared the notice: a change after it is seen by
		// the next lookup.
		if !e.read() {
			fm.drop(key)
			return "", false
		}
	}
	e.used = now
	r, ok := e.roots[id]
	return r, ok
}

// read reads the table again from the start of the kept file.
func (e *nsMounts) read() bool {
	if _, err := unix.Seek(e.fd, 0, 0); err != nil {
		return false
	}
	b, err := safefs.ReadFD(e.fd, 16<<10, 4<<20)
	if err != nil {
		return false
	}
	e.roots = map[uint64]string{}
	for _, m := range parseMountinfo(b) {
		e.roots[m.id] = m.root
	}
	return true
}

// expire closes the tables unused for foreignMountsKeep, and the oldest
// beyond foreignMountsMax.
func (fm *foreignMounts) expire(now time.Time) {
	for k, e := range fm.byNS {
		if now.Sub(e.used) > foreignMountsKeep {
			fm.drop(k)
		}
	}
	for len(fm.byNS) >= foreignMountsMax {
		var oldest viewKey
		var at time.Time
		for k, e := range fm.byNS {
			if at.IsZero() || e.used.Before(at) {
				oldest, at = k, e.used
			}
		}
		fm.drop(oldest)
	}
}

func (fm *foreignMounts) drop(k viewKey) {
	if e := fm.byNS[k]; e != nil {
		sysClose(e.fd)
		delete(fm.byNS, k)
	}
}

// closeAll closes every kept table (the end of the trace: nothing may pin
// a container's namespace after it).
func (fm *foreignMounts) closeAll() {
	for k := range fm.byNS {
		fm.drop(k)
	}
}

// viewKeyOf returns the key of thread tid's view: ns and its root.
func (rs *resolver) viewKeyOf(tid int, ns uint64) (viewKey, bool) {
	var st unix.Statx_t
	if sysStatx(unix.AT_FDCWD, rs.cp.of("/proc/"+strconv.Itoa(tid)+"/root"), 0, &st) != 0 {
		return viewKey{}, false
	}
	return viewKey{ns: ns, root: idOf(&st)}, true
}
