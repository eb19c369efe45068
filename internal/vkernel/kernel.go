package vkernel

import (
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"strconv"
	"strings"
	"sync"

	"github.com/nodeboot/nodeboot/interceptor/rules"

	"golang.org/x/sys/unix"

	"github.com/nodeboot/nodeboot/interceptor"
	"github.com/nodeboot/nodeboot/internal/safefs"
	"github.com/nodeboot/nodeboot/profile"
)

// Options tune a Kernel.
type Options struct {
	// FSTypes are the statfs rewrite rules in effect; mountinfo shows the
	// same filesystem types. nil means the profile's fstypes.
	FSTypes []rules.FSTypeRule
	// Cgroup is the emulated cgroup the traced command starts in, e.g.
	// "/nodeboot"; "" or "/" is the root. It is created at New.
	Cgroup string
	// Logger receives diagnostics (nil: discard).
	Logger *slog.Logger

	// procDir is where the real procfs is read ("/proc"); tests change it.
	procDir string
}

// Kernel serves a profile's dynamic entries. It implements
// interceptor.FileServer and interceptor.ProcessObserver.
type Kernel struct {
	mu      sync.Mutex
	root    string // absolute host root
	rootFD  int
	log     *slog.Logger
	procDir string

	cg        *cgroupFS // nil without a cgroup2 entry
	mountinfo bool      // serve /proc/PID/mountinfo, /proc/PID/mounts, /proc/mounts
	// oomDrop: nodeboot lacks CAP_SYS_RESOURCE (a sandbox's root often
	// does), so no traced process can lower an oom_score_adj: writes to
	// /proc/PID/oom_score_adj go to /dev/null (see serveOOMScoreAdj).
	oomDrop   bool
	oomWarned bool
	// exact maps the guest paths of the other kinds to their kind.
	exact map[string]string

	nbFD   int    // root/.nodeboot
	procFD int    // root/.nodeboot/proc
	deny   string // a host path whose directory does not exist: ENOENT

	kmsgPath string // host path of the FIFO
	kmsgFD   int    // held open read-write, so readers block and writers do not

	view                 mountView
	rootMajor, rootMinor uint32
	memPeak, pidsPeak    uint64

	mkdirs map[*interceptor.FileRequest]mkdirReq
	rmdirs map[*interceptor.FileRequest]*cgroup
	closed bool
}

type mkdirReq struct {
	parent *cgroup
	name   string
}

var (
	_ interceptor.FileServer      = (*Kernel)(nil)
	_ interceptor.ProcessObserver = (*Kernel)(nil)
)

// stateDir is the directory below root that holds generated files other
// than the cgroup tree.
const stateDir = ".nodeboot"

// New prepares the files of p's dynamic entries below root (which must
// exist, or is created 0700): root/<cgroup2 path> is emptied and made the
// root cgroup, root/.nodeboot is emptied and holds the per-process views
// and the /dev/kmsg FIFO. A profile without dynamic entries gives a Kernel
// that serves nothing.
func New(root string, p *profile.Profile, opts Options) (*Kernel, error) {
	if p == nil {
		return nil, errors.New("vkernel: no profile")
	}
	// The same checks as Seed's: nobody else can replace root or a
	// directory above it, and no symlink another user planted is followed.
	dir, err := safefs.OpenDir(root, safefs.DirOptions{Create: true, Perm: 0o700})
	if err != nil {
		return nil, fmt.Errorf("vkernel root: %w", err)
	}
	abs := dir.Path()
	if abs == "/" {
		dir.Close()
		return nil, fmt.Errorf("vkernel root %s: the tree would cover the real /proc and /sys; choose a private directory", abs)
	}
	k := &Kernel{root: abs, rootFD: -1, nbFD: -1, procFD: -1, kmsgFD: -1, log: opts.Logger, procDir: opts.procDir,
		exact: map[string]string{}, mkdirs: map[*interceptor.FileRequest]mkdirReq{}, rmdirs: map[*interceptor.FileRequest]*cgroup{}}
	if k.log == nil {
		k.log = slog.New(slog.DiscardHandler)
	}
	if k.procDir == "" {
		k.procDir = "/proc"
	}
	pageSize = uint64(unix.Getpagesize())
	ok := false
	defer func() {
		if !ok {
			k.Close()
		}
	}()
	k.rootFD = dir.FD()
	if err := safefs.RemoveAllAt(k.rootFD, stateDir); err != nil {
		return nil, fmt.Errorf("vkernel: clear %s/%s: %w", abs, stateDir, err)
	}
	if k.procFD, err = safefs.WalkAt(k.rootFD, stateDir+"/proc", safefs.WalkOptions{Create: true, Perm: 0o755, Base: abs}); err != nil {
		return nil, fmt.Errorf("vkernel: %w", err)
	}
	if k.nbFD, err = safefs.WalkAt(k.rootFD, stateDir, safefs.WalkOptions{Base: abs}); err != nil {
		return nil, fmt.Errorf("vkernel: %w", err)
	}
	k.deny = abs + "/" + stateDir + "/enoent"

	var st unix.Stat_t
	if unix.Stat("/", &st) == nil {
		k.rootMajor, k.rootMinor = unix.Major(st.Dev), unix.Minor(st.Dev)
	}
	k.oomDrop = !hasCap(unix.CAP_SYS_RESOURCE)
	if err := k.setRules(p, opts.FSTypes); err != nil {
		return nil, err
	}
	for _, d := range p.Dynamic {
		switch d.Kind {
		case profile.KindCgroup2:
			if k.cg != nil {
				return nil, fmt.Errorf("vkernel: profile %s has two cgroup2 entries (%s and %s); keep one", p.Name, k.cg.mount, d.Path)
			}
			if err := k.initCgroup(d.Path, opts.Cgroup); err != nil {
				return nil, err
			}
		case profile.KindMountinfo:
			k.mountinfo = true
			if !isProcPIDFile(d.Path, "mountinfo") {
				k.exact[d.Path] = d.Kind
			}
		case profile.KindKmsg:
			if err := k.initKmsg(); err != nil {
				return nil, err
			}
			k.exact[d.Path] = d.Kind
		case profile.KindDiskstats, profile.KindPartitions, profile.KindSwaps:
			k.exact[d.Path] = d.Kind
		default:
			return nil, fmt.Errorf("vkernel: profile %s: dynamic kind %q is not implemented", p.Name, d.Kind)
		}
	}
	ok = true
	return k, nil
}

// setRules keeps the type rules for mountinfo.
func (k *Kernel) setRules(p *profile.Profile, types []rules.FSTypeRule) error {
	if types == nil {
		for _, s := range p.FSTypes {
			r, err := rules.ParseFSType(s)
			if err != nil {
				return fmt.Errorf("vkernel: profile %s: %w", p.Name, err)
			}
			types = append(types, r)
		}
	}
	k.view.types = map[int64]int64{}
	k.view.paths = map[string]int64{}
	for _, r := range types {
		if r.Path != "" {
			k.view.paths[r.Path] = r.To
		} else {
			k.view.types[r.From] = r.To
		}
	}
	return nil
}

// initCgroup makes root/<mount> a fresh, empty cgroup root.
func (k *Kernel) initCgroup(mount, start string) error {
	rel := strings.TrimPrefix(mount, "/")
	dir, base := filepath.Split(rel)
	pfd, err := safefs.WalkAt(k.rootFD, strings.TrimSuffix(dir, "/"), safefs.WalkOptions{Create: true, Perm: 0o755, Base: k.root})
	if err != nil {
		return fmt.Errorf("vkernel: cgroup tree %s: %w", mount, err)
	}
	defer unix.Close(pfd)
	if err := safefs.RemoveAllAt(pfd, base); err != nil {
		return fmt.Errorf("vkernel: clear cgroup tree %s: %w", mount, err)
	}
	if err := safefs.MkdirAt(pfd, base, 0o755); err != nil {
		return fmt.Errorf("vkernel: cgroup tree %s: %w", mount, err)
	}
	fd, err := safefs.Openat(pfd, base, safefs.DirFlags, 0)
	if err != nil {
		return fmt.Errorf("vkernel: cgroup tree %s: %w", mount, err)
	}
	var st unix.Stat_t
	if unix.Fstat(fd, &st) == nil {
		k.view.cgroupMajor, k.view.cgroupMinor = unix.Major(st.Dev), unix.Minor(st.Dev)
	}
	k.view.cgroupMount = mount
	k.cg = newCgroupFS(k, mount, k.root+"/"+rel, fd)
	if start != "" && start != "/" {
		c, err := k.cg.mkdirAll(rules.CleanPath("/" + start))
		if err != nil {
			return fmt.Errorf("vkernel: %w", err)
		}
		k.cg.start = c
	}
	return nil
}

// Rules returns the statfs rules the Kernel needs besides the profile's:
// the cgroup tree's host directory reports cgroup2 too, so that fstatfs on
// a descriptor opened there (runc opens /sys/fs/cgroup once and works
// relative to it) sees CGROUP2_SUPER_MAGIC.
func (k *Kernel) Rules() rules.Rules {
	var r rules.Rules
	if k.cg != nil {
		r.FSTypes = append(r.FSTypes, rules.FSTypeRule{Path: k.cg.host, To: unix.CGROUP2_SUPER_MAGIC})
	}
	return r
}

// Root is the absolute host directory the Kernel writes in.
func (k *Kernel) Root() string { return k.root }

// CgroupOf returns the emulated cgroup of process pid ("/" when unknown),
// after applying pending writes.
func (k *Kernel) CgroupOf(pid int) string {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.cg == nil || k.closed {
		return "/"
	}
	k.cg.reconcile()
	if m := k.cg.procs[pid]; m != nil {
		return m.cg.path
	}
	return "/"
}

// Close releases the Kernel's descriptors, the /dev/kmsg FIFO's included
// (a reader blocked on it then sees EOF once no writer is left). The files
// stay below root for inspection; the next New clears them.
func (k *Kernel) Close() error {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.closed {
		return nil
	}
	k.closed = true
	for _, fd := range []int{k.kmsgFD, k.procFD, k.nbFD, k.rootFD} {
		if fd >= 0 {
			unix.Close(fd)
		}
	}
	if k.cg != nil {
		for _, c := range k.cg.all {
			if c.fd >= 0 {
				unix.Close(c.fd)
				c.fd = -1
			}
		}
	}
	return nil
}

// Serves reports whether guest is one of the Kernel's paths. It runs for
// every path a tracee names, so it only compares strings.
func (k *Kernel) Serves(guest string) bool {
	if k.cg != nil && (hasPathPrefix(guest, k.cg.mount) || hasPathPrefix(guest, k.cg.host)) {
		return true
	}
	if _, ok := k.exact[guest]; ok {
		return true
	}
	if strings.HasPrefix(guest, "/proc/") {
		if k.mountinfo && guest == "/proc/mounts" {
			return true
		}
		_, leaf, ok := parseProcPID(guest)
		switch {
		case !ok:
		case leaf == "cgroup":
			return k.cg != nil
		case leaf == "mountinfo", leaf == "mounts":
			return k.mountinfo
		case leaf == "oom_score_adj":
			return k.oomDrop
		}
	}
	return false
}

// parseProcPID splits /proc/PID/LEAF and /proc/PID/task/TID/LEAF.
func parseProcPID(p string) (pid int, leaf string, ok bool) {
	rest := strings.TrimPrefix(p, "/proc/")
	elems := strings.Split(rest, "/")
	switch {
	case len(elems) == 2:
	case len(elems) == 4 && elems[1] == "task" && isDigits(elems[2]):
	default:
		return 0, "", false
	}
	if !isDigits(elems[0]) {
		return 0, "", false
	}
	pid, err := strconv.Atoi(elems[0])
	if err != nil {
		return 0, "", false
	}
	return pid, elems[len(elems)-1], true
}

func isProcPIDFile(p, leaf string) bool {
	if p == "/proc/self/"+leaf || p == "/proc/thread-self/"+leaf {
		return true
	}
	_, l, ok := parseProcPID(p)
	return ok && l == leaf
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

// GuestOf maps a path below the cgroup tree's host directory back to the
// guest mount (see interceptor.GuestNamer): runc opens /sys/fs/cgroup,
// reads the fd's /proc/thread-self/fd link back and refuses a handle that
// names anything else.
func (k *Kernel) GuestOf(host string) (string, bool) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.cg == nil || !hasPathPrefix(host, k.cg.host) {
		return "", false
	}
	return k.cg.mount + host[len(k.cg.host):], true
}

var _ interceptor.GuestNamer = (*Kernel)(nil)

// Serve returns the host path for req (see interceptor.FileServer).
func (k *Kernel) Serve(req *interceptor.FileRequest) string {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.closed {
		return ""
	}
	if k.cg != nil {
		k.cg.member(req.TGID)
		k.cg.reconcile()
	}
	g := req.Guest
	if k.cg != nil {
		if hasPathPrefix(g, k.cg.mount) {
			return k.serveCgroup(req, strings.TrimPrefix(g[len(k.cg.mount):], "/"), false)
		}
		if hasPathPrefix(g, k.cg.host) {
			return k.serveCgroup(req, strings.TrimPrefix(g[len(k.cg.host):], "/"), true)
		}
	}
	if kind, ok := k.exact[g]; ok {
		switch kind {
		case profile.KindKmsg:
			if req.Write {
				// Writers get /dev/null: a write to the FIFO could block
				// once its buffer is full, and readers must see nothing.
				return "/dev/null"
			}
			return k.kmsgPath
		case profile.KindMountinfo:
			return k.serveMounts(req.TGID, req.TGID, "mountinfo")
		default:
			return k.serveDisk(req, kind)
		}
	}
	if g == "/proc/mounts" {
		return k.serveMounts(req.TGID, req.TGID, "mounts")
	}
	pid, leaf, ok := parseProcPID(g)
	if !ok {
		return ""
	}
	switch leaf {
	case "cgroup":
		return k.writeProcFile(pid, "cgroup", k.cg.procCgroup(k.tgid(pid)))
	case "mountinfo", "mounts":
		return k.serveMounts(req.TGID, pid, leaf)
	case "oom_score_adj":
		return k.serveOOMScoreAdj(req)
	}
	return ""
}

// serveOOMScoreAdj serves /proc/PID/oom_score_adj when no traced process
// may lower it (oomDrop). runc writes the value the kubelet asks for
// (-998 for a pod's sandbox, -997 for guaranteed pods) before the
// container starts and gives up on EACCES, so no pod could start; kubelet
// writes -999 for itself. Writers get /dev/null: the preference is
// dropped, as the sandbox leaves the kernel's. Readers get the real file.
func (k *Kernel) serveOOMScoreAdj(req *interceptor.FileRequest) string {
	if !req.Write {
		return ""
	}
	if !k.oomWarned {
		k.oomWarned = true
		k.log.Warn("nodeboot lacks CAP_SYS_RESOURCE, so oom_score_adj cannot be lowered: writes to /proc/PID/oom_score_adj are dropped (pods and kubelet keep the kernel's OOM preference)",
			"pid", req.PID)
	}
	return "/dev/null"
}

// hasCap reports whether nodeboot's effective set holds capability c.
func hasCap(c int) bool {
	hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
	var data [2]unix.CapUserData
	if err := unix.Capget(&hdr, &data[0]); err != nil {
		return true // cannot tell: leave the files alone
	}
	return data[c/32].Effective&(1<<(uint(c)%32)) != 0
}

// tgid maps a thread id to its process when the Kernel does not know it.
func (k *Kernel) tgid(pid int) int {
	if k.cg != nil {
		if _, ok := k.cg.procs[pid]; ok {
			return pid
		}
	}
	if t, ok := tgidOf(k.procDir, pid); ok {
		return t
	}
	return pid
}

// Operation classes of the cgroup tree.
func mkdirOp(o interceptor.FileOp) bool { return o == interceptor.OpMkdir }
func rmdirOp(o interceptor.FileOp) bool { return o == interceptor.OpRmdir }

// unlinkOp removes a name: rmdir of a file fails as unlink of one would.
func unlinkOp(o interceptor.FileOp) bool {
	return o == interceptor.OpUnlink || o == interceptor.OpRmdir
}

// changeOp creates, moves or links names; cgroupfs refuses them.
func changeOp(o interceptor.FileOp) bool {
	switch o {
	case interceptor.OpRename, interceptor.OpLink, interceptor.OpSymlink, interceptor.OpMknod:
		return true
	}
	return false
}

// openOp opens the file (truncate opens it for writing, as far as the
// tree is concerned).
func openOp(o interceptor.FileOp) bool { return o == interceptor.OpOpen || o == interceptor.OpTruncate }

// serveCgroup serves a path of the cgroup tree; rel is relative to its
// root, and hostNamed says the tracee named the host path itself (relative
// to a descriptor or working directory inside the tree), which then needs
// no rewriting.
func (k *Kernel) serveCgroup(req *interceptor.FileRequest, rel string, hostNamed bool) string {
	fs := k.cg
	host := fs.host
	if rel != "" {
		host += "/" + rel
	}
	same := func() string {
		if hostNamed {
			return ""
		}
		return host
	}
	deny := k.deny + "/" + filepath.Base(host)
	c, name := fs.lookup(rel)
	op := req.Op
	switch {
	case c != nil && name == "":
		// A cgroup directory.
		switch {
		case rmdirOp(op):
			if !fs.prepareRmdir(c) {
				// rmdir("/") fails with EBUSY before any permission
				// check (do_rmdir, LAST_ROOT), as the kernel's rmdir of
				// a populated cgroup or one with children does.
				return "/"
			}
			req.WantExit = true
			k.rmdirs[req] = c
			return same()
		case changeOp(op):
			return deny
		}
		return same()
	case c == nil:
		// Below something that is not a cgroup: nothing may be made.
		if mkdirOp(op) || changeOp(op) || req.Create {
			return deny
		}
		return same()
	}
	if f := cgFileByName[name]; f != nil && c.has(f) {
		switch {
		case unlinkOp(op) || changeOp(op):
			return deny
		case openOp(op):
			fs.opened(c, f, req.TGID, req.Write || op == interceptor.OpTruncate)
		}
		return same()
	}
	switch {
	case mkdirOp(op):
		if !validName(name) {
			return deny
		}
		req.WantExit = true
		k.mkdirs[req] = mkdirReq{parent: c, name: name}
		return same()
	case changeOp(op) || req.Create:
		return deny
	}
	return same()
}

// Done finishes a mkdir or rmdir in the cgroup tree.
func (k *Kernel) Done(req *interceptor.FileRequest, ret int64) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if m, ok := k.mkdirs[req]; ok {
		delete(k.mkdirs, req)
		if ret == 0 && !k.closed && k.cg.all[m.parent.path] == m.parent {
			if _, err := k.cg.adopt(m.parent, m.name); err != nil {
				k.log.Warn("new cgroup", "err", err)
			}
		}
	}
	if c, ok := k.rmdirs[req]; ok {
		delete(k.rmdirs, req)
		if !k.closed && k.cg.all[c.path] == c {
			k.cg.removed(c, ret == 0)
		}
	}
}

// Forked puts child in parent's cgroup.
func (k *Kernel) Forked(parent, child int) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.cg != nil && !k.closed {
		// A write to cgroup.procs just before the fork moves the parent
		// first; the child must follow it.
		k.cg.reconcile()
		k.cg.forked(parent, child)
	}
}

// Exited forgets process pid.
func (k *Kernel) Exited(pid int) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.closed {
		return
	}
	if k.cg != nil {
		k.cg.exited(pid)
	}
	safefs.RemoveAllAt(k.procFD, strconv.Itoa(pid))
}

// writeProcFile writes root/.nodeboot/proc/PID/NAME and returns its path.
func (k *Kernel) writeProcFile(pid int, name, data string) string {
	dir := strconv.Itoa(pid)
	fd, err := safefs.WalkAt(k.procFD, dir, safefs.WalkOptions{Create: true, Perm: 0o755})
	if err != nil {
		k.log.Warn("per-process view", "pid", pid, "err", err)
		return ""
	}
	defer unix.Close(fd)
	if err := safefs.WriteFileAt(fd, name, []byte(data), 0o444, safefs.WriteOptions{}); err != nil {
		k.log.Warn("per-process view", "pid", pid, "file", name, "err", err)
		return ""
	}
	return k.root + "/" + stateDir + "/proc/" + dir + "/" + name
}

// mounts returns the guest's view of pid's mount table, and its block
// devices.
func (k *Kernel) mounts(pid int) ([]mount, []blockDev, bool) {
	b, err := safefs.ReadHost(k.procDir+"/"+strconv.Itoa(pid)+"/mountinfo", 1<<20)
	if err != nil {
		return nil, nil, false
	}
	v := k.view
	if k.cg == nil {
		v.cgroupMount = ""
	}
	rootDir := k.procDir + "/" + strconv.Itoa(pid) + "/root"
	v.statDev = func(point string) (uint32, uint32, bool) {
		var st unix.Stat_t
		if unix.Stat(rootDir+point, &st) != nil {
			return 0, 0, false
		}
		return unix.Major(st.Dev), unix.Minor(st.Dev), true
	}
	ms, devs := v.transform(parseMountinfo(string(b)))
	return ms, devs, true
}

// serveMounts serves /proc/PID/mountinfo or mounts (of process pid, asked
// by process caller).
func (k *Kernel) serveMounts(caller, pid int, leaf string) string {
	ms, _, ok := k.mounts(pid)
	if !ok {
		return "" // no such process: the real /proc answers
	}
	text := formatMountinfo(ms)
	if leaf == "mounts" {
		text = formatMounts(ms)
	}
	return k.writeProcFile(pid, leaf, text)
}

// threadsOf lists the thread ids of process pid.
func (k *Kernel) threadsOf(pid int) []int {
	fd, err := safefs.Openat(unix.AT_FDCWD, k.procDir+"/"+strconv.Itoa(pid)+"/task", safefs.DirFlags, 0)
	if err != nil {
		return nil
	}
	defer unix.Close(fd)
	names, _ := safefs.ReadDirNames(fd)
	var out []int
	for _, n := range names {
		if v, err := strconv.Atoi(n); err == nil {
			out = append(out, v)
		}
	}
	return out
}
