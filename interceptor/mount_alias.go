package interceptor

import (
	"strings"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Aliases: one file, two paths in nodeboot's own view. A bind mount of a
// guest directory somewhere else (mount --bind /proc/sys /tmp/x), or a
// second procfs (mount -t proc proc /tmp/p), reaches the very files a rule
// covers under another path, in nodeboot's own mount namespace. Such a
// mount is an alias: a mount of a filesystem that holds a guest, other
// than the mount through which nodeboot's view reaches that guest (its
// primary mount). A canonical path through an alias is moved onto the
// primary mount (dealias).
//
// Mount tables rarely have aliases, so the common case costs nothing: the
// table is read again only when it may have changed (a traced mount call,
// or, at most every aliasPoll, the kernel's change notice on
// /proc/self/mountinfo), and a path is checked only while an alias exists.

// aliasPoll is how often the tracer asks the kernel whether its mount
// table changed (poll of /proc/self/mountinfo; untraced processes mount too).
const aliasPoll = 100 * time.Millisecond

// aliasTable is what the resolver knows of nodeboot's mounts for aliases.
type aliasTable struct {
	valid   bool
	epoch   uint64
	checked time.Time
	watch   int // /proc/self/mountinfo, polled for changes; -1 when closed
	// aliases are the alias mounts by id; primaries the primary mounts of
	// the guests, by filesystem key.
	aliases   map[uint64]mountEntry
	primaries map[string][]mountEntry
	// gen counts the times the table was read (caches keyed on it).
	gen uint64
}

// fsKey identifies a filesystem as rules see it: every procfs is one
// (the same kernel files), every sysfs too; other filesystems by device.
func fsKey(m mountEntry) string {
	switch m.fstype {
	case "proc", "sysfs":
		return m.fstype
	}
	return "dev:" + itoa(int(m.dev))
}

// aliasState returns the alias table, read again when stale.
func (rs *resolver) aliasState() *aliasTable {
	a := &rs.alias
	now := time.Now()
	if a.valid {
		// Within aliasPoll of the last look, and no traced call since
		// that may have changed a root or namespace (the epoch), the
		// table is taken as it is. Otherwise the kernel is asked: the
		// poll reports every change of nodeboot's table, a tracee's
		// pivot_root in nodeboot's namespace included, and most epoch
		// changes are containers moving in their own namespaces (each
		// pod start has several), which leave nodeboot's table alone.
		recent := a.epoch == rs.epoch && now.Sub(a.checked) < aliasPoll
		if recent || !mountsChanged(a.watch) {
			if !recent {
				a.epoch, a.checked = rs.epoch, now
			}
			return a
		}
	}
	if !a.valid {
		a.watch = -1
		if fd, e := sysOpenat(unix.AT_FDCWD, rs.cp.of("/proc/self/mountinfo"), unix.O_RDONLY|unix.O_CLOEXEC); e == 0 {
			a.watch = fd
			mountsChanged(fd) // the first poll always reports a change
		}
	}
	a.valid, a.epoch, a.checked = true, rs.epoch, now
	a.gen++
	a.aliases, a.primaries = map[uint64]mountEntry{}, map[string][]mountEntry{}
	table := readMountinfo("/proc/self/mountinfo")
	byID := make(map[uint64]mountEntry, len(table))
	for _, m := range table {
		byID[m.id] = m
	}
	primaryIDs := map[uint64]bool{}
	for _, g := range rs.guestRoots() {
		if id, ok := rs.mountOfPath(g); ok {
			if m, ok := byID[id]; ok && !primaryIDs[id] {
				primaryIDs[id] = true
				a.primaries[fsKey(m)] = append(a.primaries[fsKey(m)], m)
			}
		}
	}
	for _, m := range table {
		if _, held := a.primaries[fsKey(m)]; held && !primaryIDs[m.id] {
			a.aliases[m.id] = m
		}
	}
	return a
}

// mountsChanged polls fd (/proc/self/mountinfo) for the kernel's notice
// that the mount table changed since the last poll.
func mountsChanged(fd int) bool {
	if fd < 0 {
		return true
	}
	fds := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLPRI}}
	n, _, e := unix.RawSyscall(unix.SYS_PPOLL, uintptr(unsafe.Pointer(&fds[0])), 1,
		uintptr(unsafe.Pointer(&unix.Timespec{})))
	return e != 0 || (n > 0 && fds[0].Revents&(unix.POLLPRI|unix.POLLERR) != 0)
}

// guestRoots are the paths rules and the FileServer serve below.
func (rs *resolver) guestRoots() []string {
	var out []string
	for _, r := range rs.m.redirects {
		out = append(out, r.Guest)
	}
	if rs.files != nil {
		if gr, ok := rs.files.(guestRooter); ok {
			out = append(out, gr.GuestRoots()...)
		} else {
			out = append(out, "/proc", "/sys", "/sys/fs/cgroup", "/dev")
		}
	}
	return out
}

// mountOfPath returns the mount id of p's deepest existing directory in
// nodeboot's view.
func (rs *resolver) mountOfPath(p string) (uint64, bool) {
	for {
		var st unix.Statx_t
		if sysStatx(unix.AT_FDCWD, rs.cp2.of(p), unix.AT_SYMLINK_NOFOLLOW, &st) == 0 && st.Mask&unix.STATX_MNT_ID != 0 {
			return st.Mnt_id, true
		}
		if p == "/" {
			return 0, false
		}
		p = parentCanon(p)
	}
}

// dealias moves a canonical path reached through an alias mount onto the
// primary mount of its filesystem. Paths of an alias that no primary
// mount reaches are left as they are: no guest is there.
func (rs *resolver) dealias(c string) string {
	a := rs.aliasState()
	if len(a.aliases) == 0 {
		return c
	}
	id, ok := rs.mountOfPath(c)
	if !ok {
		return c
	}
	m, isAlias := a.aliases[id]
	if !isAlias || !hasPathPrefixOf(c, m.point) {
		return c
	}
	rel := strings.TrimPrefix(c[len(m.point):], "/")
	if m.point == "/" {
		rel = strings.TrimPrefix(c, "/")
	}
	inFS := joinNames(m.root, splitPath(rel))
	for _, p := range a.primaries[fsKey(m)] {
		if !hasPathPrefixOf(inFS, p.root) {
			continue
		}
		if p.root == "/" {
			return joinNames(p.point, splitPath(inFS))
		}
		return joinNames(p.point, splitPath(inFS[len(p.root):]))
	}
	return c
}
