package interceptor

import (
	"bytes"
	"os"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// Canonical paths: the path of an object in nodeboot's own mount
// namespace, which is what rules name.
//
// An object on one of nodeboot's mounts has its path as the text of its
// /proc/self/fd link, which the resolver checks by looking that text up
// again. An object elsewhere (a mount of a tracee's private namespace, a
// bind mount of part of a filesystem, a detached open_tree/fsmount tree) is
// placed by its filesystem: the resolver climbs with ".." to the root of
// its mount, learns where that mount's root lies inside its filesystem (the
// mount tables), and then:
//
//   - procfs and sysfs are the same kernel files wherever they are mounted:
//     /proc or /sys followed by the path inside the filesystem (pids of
//     another pid namespace's procfs are translated);
//   - any other filesystem: the path through a nodeboot mount of the same
//     device whose root contains it.
//
// When none of this works, the canonical path cannot be established; the
// caller then fails the call if the object's filesystem could hold
// something a rule covers.

// maxClimb bounds the ".." steps taken to place an object.
const maxClimb = 4096

// canonOf returns the canonical path of fd's object; tid is the thread
// whose view it was reached in (its mount table places foreign mounts).
func (rs *resolver) canonOf(fd, tid int) (string, bool) {
	var st unix.Statx_t
	if fdStatx(fd, &st) != 0 {
		return "", false
	}
	id := idOf(&st)
	text, textOK := rs.fdText(fd)
	if textOK && rs.names(text, id) {
		return text, true
	}
	if st.Mode&unix.S_IFMT == unix.S_IFDIR {
		return rs.placeByMount(fd, id, text, textOK, tid)
	}
	if st.Nlink == 0 || !textOK {
		// Unlinked (a deleted file, a memfd): no path names it.
		return "", false
	}
	// A file cannot be climbed from: find its directory by the text, which
	// is the path from the root of its mount namespace, in the thread's
	// view (where it was reached), and check that the name there is it.
	i := strings.LastIndexByte(text, '/')
	dir, name := text[:max(i, 1)], text[i+1:]
	dfd, e := sysOpenat(unix.AT_FDCWD, rs.cp2.of("/proc/"+strconv.Itoa(tid)+"/root"+dir), unix.O_PATH|unix.O_DIRECTORY)
	if e != 0 {
		return "", false
	}
	defer sysClose(dfd)
	var ns unix.Statx_t
	if name == "" || sysStatx(dfd, rs.cp2.of(name), unix.AT_SYMLINK_NOFOLLOW, &ns) != 0 || !idOf(&ns).sameInode(id) {
		return "", false
	}
	c, ok := rs.canonOf(dfd, tid)
	if !ok {
		return "", false
	}
	return joinCanon(c, name), true
}

// fdText is the text of /proc/self/fd/FD: the object's path as seen from
// nodeboot's root.
func (rs *resolver) fdText(fd int) (string, bool) {
	n, e := sysReadlinkat(unix.AT_FDCWD, rs.cp2.of("/proc/self/fd/"+strconv.Itoa(fd)), rs.link)
	if e != 0 || n == 0 || n >= len(rs.link) || rs.link[0] != '/' {
		return "", false
	}
	return string(rs.link[:n]), true
}

// names reports whether text, looked up in nodeboot's view, is the object
// id (the same inode; a bind mount of it counts).
func (rs *resolver) names(text string, id fileID) bool {
	var st unix.Statx_t
	if sysStatx(unix.AT_FDCWD, rs.cp2.of(text), unix.AT_SYMLINK_NOFOLLOW, &st) != 0 {
		return false
	}
	return idOf(&st).sameInode(id)
}

// placeByMount climbs from fd to the root of its mount and places the path
// inside the filesystem (see the package comment above).
func (rs *resolver) placeByMount(fd int, id fileID, text string, textOK bool, tid int) (string, bool) {
	var names []string
	cur, curID := fd, id
	var opened []int
	defer func() {
		for _, f := range opened {
			sysClose(f)
		}
	}()
	for step := 0; step < maxClimb; step++ {
		p, e := sysOpenat(cur, rs.cp2.of(".."), unix.O_PATH)
		if e != 0 {
			return "", false
		}
		opened = append(opened, p)
		var pst unix.Statx_t
		if fdStatx(p, &pst) != 0 {
			return "", false
		}
		pid := idOf(&pst)
		atMountRoot := pid == curID || (pid.mnt != 0 && pid.mnt != curID.mnt) ||
			(pid.mnt == 0 && pid.dev != curID.dev)
		if atMountRoot {
			return rs.placeInFS(cur, curID, reverse(names), tid)
		}
		// The name of cur in p: the last component of the text while
		// it lasts (within one mount it is made of these very names),
		// else found by reading p.
		var name string
		if textOK && len(text) > 1 {
			i := strings.LastIndexByte(text, '/')
			name, text = text[i+1:], text[:max(i, 1)]
		} else {
			textOK = false
			n, ok := nameIn(p, curID)
			if !ok {
				return "", false
			}
			name = n
		}
		names = append(names, name)
		// Once a directory on the way has its path in nodeboot's view,
		// the rest is known (an object too deep for /proc/self/fd's
		// text, a race with a rename).
		if textOK {
			if rs.names(text, pid) {
				return joinNames(text, reverse(names)), true
			}
		} else if t, ok := rs.fdText(p); ok && rs.names(t, pid) {
			return joinNames(t, reverse(names)), true
		}
		cur, curID = p, pid
	}
	return "", false
}

// placeInFS gives the canonical path of root (the root of its mount) plus
// rel, from where that mount's root lies inside its filesystem.
func (rs *resolver) placeInFS(root int, rootID fileID, rel []string, tid int) (string, bool) {
	var sfs unix.Statfs_t
	if fstatfsFd(root, &sfs) != 0 {
		return "", false
	}
	o := rs.ours()
	inFS, ok := "", false
	switch sfs.Type {
	case unix.PROC_SUPER_MAGIC, unix.SYSFS_MAGIC, unix.CGROUP_SUPER_MAGIC, unix.CGROUP2_SUPER_MAGIC:
		if rootID.ino == procRootIno {
			inFS, ok = "/", true
		}
	}
	if !ok {
		inFS, ok = rs.mountRoot(rootID.mnt, tid)
	}
	if !ok {
		return "", false
	}
	path := joinNames(inFS, rel)
	switch sfs.Type {
	case unix.PROC_SUPER_MAGIC:
		if o.procDev == 0 {
			return "", false
		}
		if rootID.dev != o.procDev {
			var pok bool
			if path, pok = rs.procPidPath(root, rootID, inFS, path); !pok {
				return "", false
			}
		}
		return joinNames("/proc", splitPath(path)), true
	case unix.SYSFS_MAGIC:
		if o.sysDev == 0 {
			return "", false
		}
		return joinNames("/sys", splitPath(path)), true
	}
	// Any other filesystem: a nodeboot mount of the same device whose root
	// holds path.
	for fresh := false; ; fresh = true {
		for _, m := range rs.ourMounts(rootID.dev, fresh) {
			if !hasPathPrefixOf(inFS, m.root) {
				continue
			}
			// Where the foreign mount's root is in nodeboot's view: it must
			// be that very directory.
			at := joinNames(m.point, splitPath(inFS))
			if m.root != "/" {
				at = joinNames(m.point, splitPath(inFS[len(m.root):]))
			}
			if rs.names(at, rootID) {
				return joinNames(at, rel), true
			}
		}
		if fresh {
			return "", false
		}
	}
}

// ourMounts returns nodeboot's mounts of device dev, from a copy of its
// mount table read again when fresh is set (placeInFS asks again when the
// copy gave no answer). Every use is checked (names), so a stale entry
// costs a lookup, never a wrong answer.
//
// A fresh copy is read only when the kernel says the table changed since
// the last one (the poll of mountsChanged): the same table read again
// gives the same answer, and with a container starting every second its
// mounts made nodeboot read a mount table of hundreds of lines on nearly
// every lookup that walked up to a mount root.
func (rs *resolver) ourMounts(dev uint64, fresh bool) []mountEntry {
	rs.readOurMounts(fresh)
	return rs.mounts[dev]
}

// ourMount returns nodeboot's mount id from an up-to-date copy of its
// mount table.
func (rs *resolver) ourMount(id uint64) (mountEntry, bool) {
	rs.readOurMounts(true)
	m, ok := rs.mountsByID[id]
	return m, ok
}

// readOurMounts reads nodeboot's mount table when there is no copy, or
// when fresh is set and it changed since the copy was read.
func (rs *resolver) readOurMounts(fresh bool) {
	if rs.mounts == nil && rs.mountsWatch == 0 {
		rs.mountsWatch = -1
		if fd, e := sysOpenat(unix.AT_FDCWD, rs.cp.of("/proc/self/mountinfo"), unix.O_RDONLY|unix.O_CLOEXEC); e == 0 {
			rs.mountsWatch = fd
		}
	}
	// mountsChanged clears the notice before the read: a change after it
	// is seen by the next poll.
	if rs.mounts != nil && !(fresh && mountsChanged(rs.mountsWatch)) {
		return
	}
	rs.mounts, rs.mountsByID = map[uint64][]mountEntry{}, map[uint64]mountEntry{}
	for _, m := range readMountinfo("/proc/self/mountinfo") {
		rs.mounts[m.dev] = append(rs.mounts[m.dev], m)
		rs.mountsByID[m.id] = m
	}
}

// procPidPath translates the pid at the head of path (a path inside a
// procfs of another pid namespace) into nodeboot's numbering, when that
// procfs's "/PID" is a traced process or thread the resolver can find by
// its start time. Paths that are not below a pid pass unchanged.
func (rs *resolver) procPidPath(root int, rootID fileID, inFS, path string) (string, bool) {
	comps := splitPath(path)
	if len(comps) == 0 || !isDigits(comps[0]) {
		return path, true
	}
	if inFS != "/" {
		return "", false
	}
	// Is that procfs of nodeboot's pid namespace? Its "self" is then us.
	if n, e := sysReadlinkat(root, rs.cp2.of("self"), rs.link); e == 0 && string(rs.link[:n]) == strconv.Itoa(unix.Getpid()) {
		return path, true
	}
	id, ok := rs.translatePid(root, comps[0])
	if !ok {
		return "", false
	}
	if len(comps) >= 3 && comps[1] == "task" && isDigits(comps[2]) {
		tid, ok := rs.translatePid(root, comps[0]+"/task/"+comps[2])
		if !ok {
			return "", false
		}
		comps[2] = strconv.Itoa(tid)
	}
	comps[0] = strconv.Itoa(id)
	return "/" + strings.Join(comps, "/"), true
}

// translatePid finds the traced thread that the procfs at root shows as
// dir (PID or PID/task/TID): the one whose innermost pid is that number and
// that started at the same time.
func (rs *resolver) translatePid(root int, dir string) (int, bool) {
	fd, e := sysOpenat(root, rs.cp2.of(dir+"/stat"), unix.O_RDONLY)
	if e != 0 {
		return 0, false
	}
	start, ok := readStartTime(fd)
	sysClose(fd)
	if !ok {
		return 0, false
	}
	want, _ := strconv.Atoi(dir[strings.LastIndexByte(dir, '/')+1:])
	for _, id := range rs.candidates(want) {
		if t, ok := procStartTime("/proc/"+strconv.Itoa(id)+"/stat", rs); ok && t == start {
			return id, true
		}
	}
	return 0, false
}

// candidates lists the traced threads numbered pid in their innermost pid
// namespace, the ones the resolver may translate pid to (from the tracer,
// which keeps each thread's number; else read for each thread tids lists).
func (rs *resolver) candidates(pid int) []int {
	if rs.innerPids != nil {
		return rs.innerPids(pid)
	}
	if rs.tids == nil {
		return nil
	}
	var out []int
	for _, id := range rs.tids() {
		if ids := nsPids(id); len(ids) > 0 && ids[len(ids)-1] == pid {
			out = append(out, id)
		}
	}
	return out
}

// nameIn finds the name under which dir holds the object id, by reading
// the directory (only for objects too deep for /proc/self/fd's text).
func nameIn(dir int, id fileID) (string, bool) {
	d, e := sysOpenat(dir, &[]byte(".\x00")[0], unix.O_RDONLY|unix.O_DIRECTORY)
	if e != 0 {
		return "", false
	}
	defer sysClose(d)
	buf := make([]byte, 32<<10)
	for {
		n, err := unix.Getdents(d, buf)
		if err != nil || n <= 0 {
			return "", false
		}
		for off := 0; off < n; {
			ino := le64(buf[off:])
			reclen := int(buf[off+16]) | int(buf[off+17])<<8
			name := buf[off+19 : off+reclen]
			if i := bytes.IndexByte(name, 0); i >= 0 {
				name = name[:i]
			}
			off += reclen
			if ino != id.ino || string(name) == "." || string(name) == ".." {
				continue
			}
			var st unix.Statx_t
			nm := string(name)
			p := append([]byte(nm), 0)
			if sysStatx(dir, &p[0], unix.AT_SYMLINK_NOFOLLOW, &st) == 0 && idOf(&st).sameInode(id) {
				return nm, true
			}
		}
	}
}

func le64(b []byte) uint64 {
	return uint64(b[0]) | uint64(b[1])<<8 | uint64(b[2])<<16 | uint64(b[3])<<24 |
		uint64(b[4])<<32 | uint64(b[5])<<40 | uint64(b[6])<<48 | uint64(b[7])<<56
}

func reverse(s []string) []string {
	out := make([]string, len(s))
	for i, v := range s {
		out[len(s)-1-i] = v
	}
	return out
}

// joinNames appends names to an absolute directory path.
func joinNames(dir string, names []string) string {
	if len(names) == 0 {
		return dir
	}
	if dir == "/" {
		return "/" + strings.Join(names, "/")
	}
	return dir + "/" + strings.Join(names, "/")
}

// hasPathPrefixOf is rules.HasPathPrefix for paths that may be "/".
func hasPathPrefixOf(p, prefix string) bool {
	if prefix == "/" {
		return strings.HasPrefix(p, "/")
	}
	return strings.HasPrefix(p, prefix) && (len(p) == len(prefix) || p[len(prefix)] == '/')
}

func isDigits(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// mountEntry is one line of a mountinfo file.
type mountEntry struct {
	id     uint64
	dev    uint64
	root   string // the mount's root inside its filesystem
	point  string // where it is mounted, from the reader's root
	fstype string
}

// mountRoot returns where mount id's root lies inside its filesystem, from
// the thread's mount table or nodeboot's. A thread in nodeboot's mount
// namespace has nodeboot's table (the root field does not depend on the
// reader's root), which is kept and read again only when it changed.
// Mount ids are unique among the mounts that exist, so an id found in
// nodeboot's table is that mount even if the thread has just moved.
func (rs *resolver) mountRoot(id uint64, tid int) (string, bool) {
	if id == 0 {
		return "", false
	}
	if o := rs.ours(); o.mntNS == 0 {
		for _, m := range readMountinfo("/proc/" + strconv.Itoa(tid) + "/mountinfo") {
			if m.id == id {
				return m.root, true
			}
		}
	} else if ns, ok := rs.mountNSOf(tid); ok && ns != o.mntNS {
		if r, ok := rs.foreign.root(rs, tid, ns, id); ok {
			return r, true
		}
	}
	if m, ok := rs.ourMount(id); ok {
		return m.root, true
	}
	return "", false
}

// inMountNS reports whether thread tid is in the mount namespace ns (an
// inode number of nsfs).
func (rs *resolver) inMountNS(tid int, ns uint64) bool {
	got, ok := rs.mountNSOf(tid)
	return ok && got == ns
}

// mountNSOf returns the mount namespace of thread tid (an inode number of
// nsfs).
func (rs *resolver) mountNSOf(tid int) (uint64, bool) {
	var st unix.Statx_t
	if sysStatx(unix.AT_FDCWD, rs.cp.of("/proc/"+strconv.Itoa(tid)+"/ns/mnt"), 0, &st) != 0 {
		return 0, false
	}
	return st.Ino, true
}

// readMountinfo parses a mountinfo file (proc(5)); nil when unreadable.
func readMountinfo(path string) []mountEntry {
	b, err := readSmallFile(path)
	if err != nil {
		return nil
	}
	return parseMountinfo(b)
}

// parseMountinfo parses the text of a mountinfo file.
func parseMountinfo(b []byte) []mountEntry {
	var out []mountEntry
	for _, line := range bytes.Split(b, []byte{'\n'}) {
		f := bytes.Fields(line)
		if len(f) < 7 {
			continue
		}
		id, err := strconv.ParseUint(string(f[0]), 10, 64)
		if err != nil {
			continue
		}
		maj, min, ok := bytes.Cut(f[2], []byte{':'})
		if !ok {
			continue
		}
		ma, err1 := strconv.ParseUint(string(maj), 10, 32)
		mi, err2 := strconv.ParseUint(string(min), 10, 32)
		if err1 != nil || err2 != nil {
			continue
		}
		e := mountEntry{id: id, dev: unix.Mkdev(uint32(ma), uint32(mi)),
			root: unescapeMountinfo(string(f[3])), point: unescapeMountinfo(string(f[4]))}
		for i := 6; i < len(f)-1; i++ {
			if string(f[i]) == "-" {
				e.fstype = string(f[i+1])
				break
			}
		}
		out = append(out, e)
	}
	return out
}

// unescapeMountinfo undoes the octal escapes (\040 for a space, ...) of
// mountinfo path fields.
func unescapeMountinfo(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+4 <= len(s) {
			if v, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(v))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// readSmallFile reads a /proc file whole (their size says nothing).
func readSmallFile(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []byte
	buf := make([]byte, 16<<10)
	for len(out) < 4<<20 {
		n, err := f.Read(buf)
		out = append(out, buf[:n]...)
		if err != nil || n == 0 {
			break
		}
	}
	return out, nil
}

// holdSet says which filesystems could hold something a rule covers: the
// filesystems of the rules' guests (their deepest existing directory in
// nodeboot's view), by device, and procfs and sysfs of any instance (the
// same kernel files are in every one of them).
type holdSet struct {
	devs   map[uint64]bool
	magics map[int64]bool
}

// guestRooter is implemented by FileServers that can say below which paths
// they serve.
type guestRooter interface {
	GuestRoots() []string
}

func (rs *resolver) computeHoldSet() holdSet {
	h := holdSet{devs: map[uint64]bool{}, magics: map[int64]bool{}}
	var guests []string
	for _, r := range rs.m.redirects {
		guests = append(guests, r.Guest)
	}
	if rs.files != nil {
		if gr, ok := rs.files.(guestRooter); ok {
			guests = append(guests, gr.GuestRoots()...)
		} else {
			// Unknown guests: the kernel's own filesystems.
			guests = append(guests, "/proc", "/sys", "/sys/fs/cgroup", "/dev")
			h.magics[unix.CGROUP_SUPER_MAGIC] = true
			h.magics[unix.CGROUP2_SUPER_MAGIC] = true
		}
	}
	for _, g := range guests {
		for p := g; ; p = parentCanon(p) {
			var st unix.Stat_t
			var sfs unix.Statfs_t
			if unix.Stat(p, &st) == nil && unix.Statfs(p, &sfs) == nil {
				switch sfs.Type {
				case unix.PROC_SUPER_MAGIC, unix.SYSFS_MAGIC:
					h.magics[sfs.Type] = true
				default:
					h.devs[st.Dev] = true
				}
				break
			}
			if p == "/" {
				break
			}
		}
	}
	return h
}

// holds reports whether fd's filesystem could hold something a rule
// covers (see holdSet).
func (rs *resolver) holds(fd int) bool {
	if fd < 0 {
		return len(rs.couldHold.devs)+len(rs.couldHold.magics) > 0
	}
	var sfs unix.Statfs_t
	if fstatfsFd(fd, &sfs) == 0 && rs.couldHold.magics[sfs.Type] {
		return true
	}
	var st unix.Statx_t
	if fdStatx(fd, &st) != 0 {
		return true
	}
	return rs.couldHold.devs[unix.Mkdev(st.Dev_major, st.Dev_minor)]
}
