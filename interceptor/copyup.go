package interceptor

import (
	"errors"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/nodeboot/nodeboot/interceptor/rules"

	"golang.org/x/sys/unix"
)

// Host trees, copy-up and the tree-gone fault.
//
// A redirect's host tree is opened (O_PATH) when tracing starts (or when
// it appears, if it was missing then), and every call that would use it
// first checks that the host path still leads to that very directory: a
// tree moved away, deleted or replaced makes the calls under its guest fail
// with ENOENT (they must not fall through to the real files) and is
// reported once through Config.OnFault.
//
// A call that changes a covered path whose host tree lacks the file copies
// it up first: the missing parent directories are made in the tree as the
// real ones are (mode, owner), then the real file itself (a regular file's
// content, a directory, a symlink), and the call goes to the tree. Removing
// or moving a file only the real side has (unlink, rmdir, rename's or
// link's source) fails with EACCES: it would change the real file. Reads of
// a file the tree lacks still go to the real file.

// copyUpMax bounds the content copied up (real kernel files are small; a
// rule covering big files should have them in its tree).
const copyUpMax = 16 << 20

// hostTree is one redirect's host root.
type hostTree struct {
	path string
	fd   int // O_PATH of the root, -1 while it does not exist
	id   fileID
	dir  bool
	// gone: the root that was there is gone, and that was reported
	// through OnFault.
	gone bool
	// What guestRootOK found, for which epoch and alias table, and when.
	rootOK      bool
	rootEpoch   uint64
	rootGen     uint64
	rootChecked time.Time
}

// treeCheck is how long guestRootOK's answer is trusted.
const treeCheck = 100 * time.Millisecond

// openTrees opens every redirect's host root. A root missing at the start
// is taken when it appears (a file the command creates, or a tree made
// later); until then the tree has no file.
func (rs *resolver) openTrees() {
	rs.trees = make([]hostTree, len(rs.m.redirects))
	missing := 0
	for i, r := range rs.m.redirects {
		rs.trees[i] = hostTree{path: r.Host, fd: -1}
		if !rs.adoptTree(i) {
			missing++
		}
	}
	if missing > 0 {
		// The caller (exec) warns about missing hosts once; this is for
		// debugging.
		rs.log.Debug("redirect hosts missing at the start: only what the command creates goes there", "missing", missing)
	}
}

// adoptTree opens redirect i's host root if it exists now.
func (rs *resolver) adoptTree(i int) bool {
	tr := &rs.trees[i]
	fd, e := sysOpenat(unix.AT_FDCWD, rs.cp.of(tr.path), unix.O_PATH)
	if e != 0 {
		return false
	}
	var st unix.Statx_t
	if fdStatx(fd, &st) != 0 {
		sysClose(fd)
		return false
	}
	tr.fd, tr.id, tr.dir = fd, idOf(&st), st.Mode&unix.S_IFMT == unix.S_IFDIR
	return true
}

// closeTrees closes the host roots and the mount table the resolver
// watches (the tracer has ended).
func (rs *resolver) closeTrees() {
	for i := range rs.trees {
		sysClose(rs.trees[i].fd)
		rs.trees[i].fd = -1
	}
	if rs.alias.valid {
		sysClose(rs.alias.watch)
		rs.alias = aliasTable{}
	}
	rs.foreign.closeAll()
}

// treeOK checks that redirect i's host root is still the directory opened
// before; when it is not, it reports the fault once and the calls under
// the guest fail from then on. A root that was missing is taken when it
// appears. A host that is a single file may be replaced (an editor's
// atomic save): only its being missing counts, and then as a missing file.
func (rs *resolver) treeOK(i int) bool {
	tr := &rs.trees[i]
	switch {
	case tr.gone:
		return false
	case tr.fd < 0:
		rs.adoptTree(i)
		return true
	case !tr.dir:
		return true
	}
	var st unix.Statx_t
	if sysStatx(unix.AT_FDCWD, rs.cp2.of(tr.path), 0, &st) == 0 && idOf(&st).sameInode(tr.id) && st.Nlink > 0 {
		return true
	}
	tr.gone = true
	r := rs.m.redirects[i]
	rs.log.Error("redirect host tree is gone or was replaced; calls below its guest fail with ENOENT",
		"rule", r.String(), "host", tr.path)
	if rs.faults != nil {
		rs.faults(Fault{Kind: TreeGone, Rule: r})
	}
	return false
}

// copyUp makes the host tree of lk's redirect hold lk's path before a
// changing call: its missing parent directories, made as the real ones are,
// and, when file is true and the real object exists, the object itself
// (content is copied when content is true). It returns 0 or the errno the
// call must fail with.
func (rs *resolver) copyUp(lk *lookup, file, content bool) unix.Errno {
	i := lk.rule
	tr := &rs.trees[i]
	_, rel, _ := rs.m.cover(lk.canon)
	comps := splitPath(rel)
	var opened []int
	defer func() {
		for _, fd := range opened {
			sysClose(fd)
		}
	}()
	if tr.fd < 0 {
		// No tree yet: the guest itself becomes the host root (its
		// directory must be there; nothing above the root is made).
		if len(comps) > 0 || !file || !lk.exists {
			return 0
		}
		i := strings.LastIndexByte(tr.path, '/')
		parent, e := sysOpenat(unix.AT_FDCWD, rs.cp.of(tr.path[:max(i, 1)]), unix.O_PATH|unix.O_DIRECTORY)
		if e != 0 {
			return 0
		}
		opened = append(opened, parent)
		if errno := rs.copyObject(lk, parent, tr.path[i+1:], content); errno != 0 {
			return errno
		}
		rs.adoptTree(lk.rule)
		return 0
	}
	if len(comps) == 0 {
		return 0 // the host root itself is there
	}
	dir := tr.fd
	for j, name := range comps[:len(comps)-1] {
		fd, e := sysOpenat(dir, rs.cp.of(name), unix.O_PATH|unix.O_NOFOLLOW|unix.O_DIRECTORY)
		if e == unix.ENOENT {
			// The real directory in nodeboot's view gives mode and owner;
			// none there: no parent, and the call fails in the tree.
			real := rs.m.guestOf(i, strings.Join(comps[:j+1], "/"))
			var st unix.Statx_t
			if sysStatx(unix.AT_FDCWD, rs.cp2.of(real), 0, &st) != 0 || st.Mode&unix.S_IFMT != unix.S_IFDIR {
				return 0
			}
			if e := mkdirat(dir, name, uint32(st.Mode&0o7777)); e != 0 && e != unix.EEXIST {
				return rs.copyUpFailed(lk, e)
			}
			rs.chown(dir, name, &st)
			fd, e = sysOpenat(dir, rs.cp.of(name), unix.O_PATH|unix.O_NOFOLLOW|unix.O_DIRECTORY)
		}
		if e != 0 {
			return 0 // a file where a directory should be: the call fails in the tree
		}
		opened = append(opened, fd)
		dir = fd
	}
	if !file || !lk.exists {
		return 0
	}
	return rs.copyObject(lk, dir, comps[len(comps)-1], content)
}

// copyObject copies the real object lk.obj into dir/name: a regular file
// (its content when content is true), a directory or a symlink, with its
// mode and owner.
func (rs *resolver) copyObject(lk *lookup, dir int, name string, content bool) unix.Errno {
	var st unix.Statx_t
	if fdStatx(lk.obj, &st) != 0 {
		return rs.copyUpFailed(lk, unix.EIO)
	}
	switch st.Mode & unix.S_IFMT {
	case unix.S_IFREG:
		return rs.copyFile(lk, dir, name, &st, content)
	case unix.S_IFDIR:
		if e := mkdirat(dir, name, uint32(st.Mode&0o7777)); e != 0 && e != unix.EEXIST {
			return rs.copyUpFailed(lk, e)
		}
		rs.chown(dir, name, &st)
	case unix.S_IFLNK:
		n, e := sysReadlinkat(lk.obj, &emptyPath[0], rs.link)
		if e != 0 {
			return rs.copyUpFailed(lk, e)
		}
		if e := symlinkat(string(rs.link[:n]), dir, name); e != 0 && e != unix.EEXIST {
			return rs.copyUpFailed(lk, e)
		}
		rs.chown(dir, name, &st)
	default:
		// A device, fifo or socket: not something to copy.
		rs.warnOnce("copyup-type:"+lk.canon, "cannot copy up a special file into the tree; the call fails with EACCES",
			"path", lk.canon)
		return unix.EACCES
	}
	return 0
}

// realRefuses returns the errno the real file lk.obj would refuse an open
// for writing (or a truncate) by thread tid with: EROFS on a read-only
// mount, EACCES when its mode forbids it for the caller. Copying up a file
// the caller could not write would make the tree more permissive than the
// kernel: the call fails as it would have.
func (rs *resolver) realRefuses(tid int, lk *lookup) unix.Errno {
	var sfs unix.Statfs_t
	if fstatfsFd(lk.obj, &sfs) == 0 && sfs.Flags&unix.ST_RDONLY != 0 {
		return unix.EROFS
	}
	var st unix.Statx_t
	if fdStatx(lk.obj, &st) != 0 || st.Mode&unix.S_IFMT != unix.S_IFREG {
		return 0
	}
	c, ok := readCreds(tid)
	if !ok {
		return 0
	}
	kernelFile := sfs.Type == unix.PROC_SUPER_MAGIC || sfs.Type == unix.SYSFS_MAGIC
	if kernelFile && st.Mode&0o222 == 0 {
		return unix.EACCES // no write handler: not even root (kernfs, proc_sys_permission)
	}
	if c.fsuid == 0 && kernelFile {
		// proc_sys_permission checks root against the owner bits.
		if st.Mode&0o200 == 0 {
			return unix.EACCES
		}
		return 0
	}
	if c.dacOverride {
		return 0
	}
	switch {
	case c.fsuid == st.Uid:
		if st.Mode&0o200 == 0 {
			return unix.EACCES
		}
	case c.inGroup(st.Gid):
		if st.Mode&0o020 == 0 {
			return unix.EACCES
		}
	case st.Mode&0o002 == 0:
		return unix.EACCES
	}
	return 0
}

// creds are the file-access credentials of a thread.
type creds struct {
	fsuid, fsgid uint32
	groups       []uint32
	dacOverride  bool
}

func (c creds) inGroup(g uint32) bool {
	if c.fsgid == g {
		return true
	}
	for _, x := range c.groups {
		if x == g {
			return true
		}
	}
	return false
}

// readCreds reads them from /proc/TID/status.
func readCreds(tid int) (creds, bool) {
	b, err := readSmallFile("/proc/" + strconv.Itoa(tid) + "/status")
	if err != nil {
		return creds{}, false
	}
	var c creds
	seen := 0
	for _, line := range strings.Split(string(b), "\n") {
		k, v, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		f := strings.Fields(v)
		switch k {
		case "Uid", "Gid":
			if len(f) < 4 {
				return creds{}, false
			}
			n, err := strconv.ParseUint(f[3], 10, 32)
			if err != nil {
				return creds{}, false
			}
			if k == "Uid" {
				c.fsuid = uint32(n)
			} else {
				c.fsgid = uint32(n)
			}
			seen++
		case "Groups":
			for _, g := range f {
				if n, err := strconv.ParseUint(g, 10, 32); err == nil {
					c.groups = append(c.groups, uint32(n))
				}
			}
		case "CapEff":
			if len(f) == 1 {
				if n, err := strconv.ParseUint(f[0], 16, 64); err == nil {
					c.dacOverride = n&(1<<unix.CAP_DAC_OVERRIDE) != 0
				}
			}
			seen++
		}
	}
	return c, seen == 3
}

var copyUpSeq atomic.Uint64

// copyFile copies the real regular file lk.obj into dir/name: a new file
// under a name of its own, renamed into place only if nothing took the name
// meanwhile.
func (rs *resolver) copyFile(lk *lookup, dir int, name string, st *unix.Statx_t, content bool) unix.Errno {
	var data []byte
	if content {
		src, e := sysOpenat(unix.AT_FDCWD, rs.cp.of("/proc/self/fd/"+strconv.Itoa(lk.obj)), unix.O_RDONLY|unix.O_NONBLOCK)
		if e == 0 {
			data, e = readBounded(src, copyUpMax)
			sysClose(src)
			if e == unix.EFBIG {
				rs.warnOnce("copyup-size:"+lk.canon, "file too big to copy up into the tree; the call fails with EFBIG",
					"path", lk.canon, "limit", copyUpMax)
				return unix.EFBIG
			}
		}
		// A file nodeboot cannot read (write-only, 0200) is copied empty:
		// its content was not the caller's to see either.
	}
	tmp := ".nodeboot-copyup-" + strconv.Itoa(unix.Getpid()) + "-" + strconv.FormatUint(copyUpSeq.Add(1), 10)
	fd, e := sysOpenatMode(dir, rs.cp.of(tmp), unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW, 0o600)
	if e != 0 {
		return rs.copyUpFailed(lk, e)
	}
	for off := 0; off < len(data); {
		n, err := unix.Write(fd, data[off:])
		if err != nil {
			sysClose(fd)
			unlinkat(dir, tmp)
			return rs.copyUpFailed(lk, toErrno(err))
		}
		off += n
	}
	unix.Fchown(fd, int(st.Uid), int(st.Gid))
	unix.Fchmod(fd, uint32(st.Mode&0o7777))
	sysClose(fd)
	if err := unix.Renameat2(dir, tmp, dir, name, unix.RENAME_NOREPLACE); err != nil {
		unlinkat(dir, tmp)
		if err == unix.EEXIST {
			return 0 // made meanwhile: the call uses that one
		}
		return rs.copyUpFailed(lk, toErrno(err))
	}
	rs.log.Debug("copied up", "path", lk.canon, "bytes", len(data))
	return 0
}

func (rs *resolver) copyUpFailed(lk *lookup, e unix.Errno) unix.Errno {
	rs.warnOnce("copyup:"+e.Error(), "cannot copy a file up into the tree; the call fails with EACCES",
		"path", lk.canon, "err", e)
	return unix.EACCES
}

func (rs *resolver) chown(dir int, name string, st *unix.Statx_t) {
	unix.Fchownat(dir, name, int(st.Uid), int(st.Gid), unix.AT_SYMLINK_NOFOLLOW)
}

// readBounded reads fd to its end, at most max bytes (EFBIG beyond).
func readBounded(fd, limit int) ([]byte, unix.Errno) {
	var out []byte
	buf := make([]byte, 64<<10)
	for {
		n, err := unix.Read(fd, buf)
		if err != nil {
			if err == unix.EINTR {
				continue
			}
			return out, toErrno(err)
		}
		if n == 0 {
			return out, 0
		}
		out = append(out, buf[:n]...)
		if len(out) > limit {
			return nil, unix.EFBIG
		}
	}
}

func mkdirat(dir int, name string, mode uint32) unix.Errno {
	if err := unix.Mkdirat(dir, name, mode); err != nil {
		return toErrno(err)
	}
	return 0
}

func symlinkat(target string, dir int, name string) unix.Errno {
	if err := unix.Symlinkat(target, dir, name); err != nil {
		return toErrno(err)
	}
	return 0
}

// toErrno is the errno of an error of the unix package (EIO for others).
func toErrno(err error) unix.Errno {
	var e unix.Errno
	if errors.As(err, &e) {
		return e
	}
	return unix.EIO
}

func unlinkat(dir int, name string) {
	unix.Unlinkat(dir, name, 0)
}

// FaultKind says what went wrong in a Fault.
type FaultKind uint8

const (
	// TreeGone: a redirect's host tree was moved, deleted or replaced
	// while tracing. Calls below its guest fail with ENOENT from then on.
	TreeGone FaultKind = iota + 1
)

func (k FaultKind) String() string {
	switch k {
	case TreeGone:
		return "tree gone"
	}
	return "FaultKind(" + itoa(int(k)) + ")"
}

// Fault is a condition under which the tracer cannot keep its promise for
// some paths: the calls concerned fail, and whoever runs the tracer (up)
// should stop the traced program. Each fault is reported once.
type Fault struct {
	Kind FaultKind
	// Rule is the redirect concerned.
	Rule rules.Redirect
}

func (f Fault) String() string { return f.Kind.String() + ": " + f.Rule.String() }
