package vkernel

import (
	"errors"
	"fmt"
	"os"
	"sort"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/nodeboot/nodeboot/internal/safefs"
)

// cgroup is one directory of the emulated hierarchy.
type cgroup struct {
	path     string // "/" or "/kubepods/burstable"
	name     string // last element ("" for the root)
	parent   *cgroup
	children map[string]*cgroup
	fd       int // the host directory, opened O_NOFOLLOW
	subtree  uint8
	values   map[string]string
	// written is the content last written to each file, so that an
	// unchanged file is not rewritten.
	written map[string]string
	// dead holds the usage of processes that left the cgroup (moved or
	// exited) and of removed child cgroups, so figures never go down.
	dead     counters
	peakMem  uint64
	peakPids uint64
}

func (c *cgroup) isRoot() bool { return c.parent == nil }

// controllers are the controllers available in c: all in the root, else
// those its parent enables for its children.
func (c *cgroup) controllers() uint8 {
	if c.parent == nil {
		return ctrlAll
	}
	return c.parent.subtree
}

// has reports whether c has the interface file f.
func (c *cgroup) has(f *cgFile) bool {
	if f.childOnly && c.isRoot() {
		return false
	}
	return f.ctrl == 0 || c.controllers()&f.ctrl != 0
}

// isBelow reports whether c is a or a descendant of a.
func (c *cgroup) isBelow(a *cgroup) bool {
	for x := c; x != nil; x = x.parent {
		if x == a {
			return true
		}
	}
	return false
}

func (c *cgroup) descendants() int {
	n := 0
	for _, ch := range c.children {
		n += 1 + ch.descendants()
	}
	return n
}

// member is a process the emulation places in a cgroup.
type member struct {
	cg *cgroup
	// traced processes are told about by the tracer (Forked, Exited);
	// others were written into a cgroup.procs and are dropped once gone.
	traced bool
	// base is the process's counters when it entered cg; last the last
	// ones read. cg is charged last-base when the process leaves.
	base, last counters
}

// pending is an interface file opened for writing: its new content is read
// back and applied at the next reconcile.
type pending struct {
	cg     *cgroup
	name   string
	tgid   int    // the writer, for "0" in cgroup.procs
	before string // content when it was opened
	at     time.Time
	// seen is what the file's stat said when it was last read unchanged:
	// while it says the same, the file is not read again (see reconcile).
	seen fileStamp
}

// fileStamp is what a stat says of a file's content: a write changes the
// size or the times (a ctime asked for since its last change is taken
// fine-grained at the next one, Linux 6.13's multigrain timestamps; older
// kernels may miss a same-size rewrite within one clock tick, which is
// then read when pendingTTL ends).
type fileStamp struct {
	ok           bool
	ino          uint64
	size         int64
	mtime, ctime unix.Timespec
}

func stampOf(dirfd int, name string) fileStamp {
	var st unix.Stat_t
	if unix.Fstatat(dirfd, name, &st, unix.AT_SYMLINK_NOFOLLOW) != nil {
		return fileStamp{}
	}
	return fileStamp{ok: true, ino: st.Ino, size: st.Size, mtime: st.Mtim, ctime: st.Ctim}
}

// pendingTTL is how long a file opened for writing but still unchanged
// waits for its write before it is regenerated.
const pendingTTL = 2 * time.Second

// cgroupFS is the emulated cgroup v2 hierarchy.
type cgroupFS struct {
	k     *Kernel
	mount string // guest mount point, e.g. /sys/fs/cgroup
	host  string // its host directory, root/sys/fs/cgroup
	root  *cgroup
	all   map[string]*cgroup // by path
	procs map[int]*member
	start *cgroup // where the traced command starts
	queue []*pending
	// cpusOnline and memsOnline are the root's effective cpuset.
	cpusOnline, memsOnline string
}

// newCgroupFS makes an empty hierarchy at host (a fresh directory, fd
// open) for the guest mount point mount.
func newCgroupFS(k *Kernel, mount, host string, fd int) *cgroupFS {
	fs := &cgroupFS{k: k, mount: mount, host: host, all: map[string]*cgroup{}, procs: map[int]*member{}}
	fs.cpusOnline = readTrim("/sys/devices/system/cpu/online", "0")
	fs.memsOnline = readTrim("/sys/devices/system/node/online", "0")
	fs.root = &cgroup{path: "/", fd: fd, children: map[string]*cgroup{}, subtree: ctrlAll,
		values: map[string]string{}, written: map[string]string{}}
	fs.all["/"] = fs.root
	fs.fillValues(fs.root)
	fs.syncFiles(fs.root)
	fs.start = fs.root
	return fs
}

func readTrim(path, def string) string {
	b, err := safefs.ReadHost(path, 4096)
	if err != nil {
		return def
	}
	if s := strings.TrimSpace(string(b)); s != "" {
		return s
	}
	return def
}

// mkdirAll creates the cgroup p and its parents (for Options.Cgroup).
func (fs *cgroupFS) mkdirAll(p string) (*cgroup, error) {
	c := fs.root
	for _, name := range strings.Split(strings.Trim(p, "/"), "/") {
		if name == "" {
			continue
		}
		if ch := c.children[name]; ch != nil {
			c = ch
			continue
		}
		if err := unix.Mkdirat(c.fd, name, 0o755); err != nil && !errors.Is(err, unix.EEXIST) {
			return nil, fmt.Errorf("create cgroup %s: %w", p, err)
		}
		ch, err := fs.adopt(c, name)
		if err != nil {
			return nil, err
		}
		c = ch
	}
	return c, nil
}

// adopt registers the directory name that was just made in parent as a
// cgroup and gives it its interface files.
func (fs *cgroupFS) adopt(parent *cgroup, name string) (*cgroup, error) {
	fd, err := safefs.Openat(parent.fd, name, safefs.DirFlags, 0)
	if err != nil {
		return nil, fmt.Errorf("open cgroup %s/%s: %w", parent.path, name, err)
	}
	p := "/" + name
	if !parent.isRoot() {
		p = parent.path + "/" + name
	}
	c := &cgroup{path: p, name: name, parent: parent, fd: fd, children: map[string]*cgroup{},
		values: map[string]string{}, written: map[string]string{}}
	parent.children[name] = c
	fs.all[p] = c
	fs.fillValues(c)
	fs.syncFiles(c)
	fs.refreshState(parent)
	return c, nil
}

func (fs *cgroupFS) fillValues(c *cgroup) {
	for i := range cgFiles {
		f := &cgFiles[i]
		if f.kind == value {
			if _, ok := c.values[f.name]; !ok {
				c.values[f.name] = f.def
			}
		}
	}
	if c.isRoot() {
		c.values["cpuset.cpus.partition"] = "root"
	}
}

// syncFiles makes c's directory hold exactly the interface files c has:
// missing ones are written, those of disabled controllers removed.
func (fs *cgroupFS) syncFiles(c *cgroup) {
	for i := range cgFiles {
		f := &cgFiles[i]
		if !c.has(f) {
			if _, ok := c.written[f.name]; ok {
				unix.Unlinkat(c.fd, f.name, 0)
				delete(c.written, f.name)
			}
			continue
		}
		fs.refresh(c, f, true)
	}
}

// refresh regenerates the file f of c: always when force is set or f is
// live, else when its content changed. Pending files are left alone.
func (fs *cgroupFS) refresh(c *cgroup, f *cgFile, force bool) {
	for _, p := range fs.queue {
		if p.cg == c && p.name == f.name {
			return
		}
	}
	data := fs.content(c, f)
	old, had := c.written[f.name]
	if had && old == data && !force && f.kind != live {
		return
	}
	if had && old == data && f.kind == live {
		return
	}
	// Existing files change in place: a rename would reach cAdvisor's
	// inotify watch on the directory as IN_MOVED_TO, which it takes for a
	// new cgroup, fails to read as one, and rereads, in a loop.
	var err error
	if !had {
		err = safefs.WriteFileAt(c.fd, f.name, []byte(data), f.mode, safefs.WriteOptions{})
	} else {
		err = safefs.RewriteFileAt(c.fd, f.name, []byte(data), f.mode)
	}
	if err != nil {
		fs.k.log.Warn("cgroup file", "cgroup", c.path, "file", f.name, "err", err)
		return
	}
	c.written[f.name] = data
}

// refreshState rewrites the state files of c that changed.
func (fs *cgroupFS) refreshState(c *cgroup) {
	for i := range cgFiles {
		f := &cgFiles[i]
		if f.kind == state && c.has(f) {
			fs.refresh(c, f, false)
		}
	}
}

// refreshAllState rewrites the changed state files of c and its ancestors
// (populated and nr_descendants are hierarchical).
func (fs *cgroupFS) refreshUp(c *cgroup) {
	for x := c; x != nil; x = x.parent {
		fs.refreshState(x)
	}
}

// lookup resolves rel (relative to the mount, "" for the root) to a cgroup
// directory, or to a cgroup and the name of an entry in it.
func (fs *cgroupFS) lookup(rel string) (c *cgroup, name string) {
	p := "/" + rel
	if c := fs.all[p]; c != nil {
		return c, ""
	}
	i := strings.LastIndexByte(p, '/')
	dir := p[:i]
	if dir == "" {
		dir = "/"
	}
	return fs.all[dir], p[i+1:]
}

// member returns the member entry of a traced process, placing a process
// not seen before (the traced command itself) in the start cgroup.
func (fs *cgroupFS) member(tgid int) *member {
	m := fs.procs[tgid]
	if m == nil {
		m = &member{cg: fs.start, traced: true}
		fs.procs[tgid] = m
		fs.refreshUp(m.cg)
	}
	m.traced = true
	return m
}

func (fs *cgroupFS) forked(parent, child int) {
	pm := fs.member(parent)
	if m := fs.procs[child]; m != nil {
		m.cg = pm.cg
		m.traced = true
		return
	}
	fs.procs[child] = &member{cg: pm.cg, traced: true}
}

func (fs *cgroupFS) exited(pid int) {
	m := fs.procs[pid]
	if m == nil {
		return
	}
	m.cg.dead.add(m.last.since(m.base))
	delete(fs.procs, pid)
	fs.refreshUp(m.cg)
}

// alive reports whether a member still runs; untraced ones that are gone
// are dropped.
func (fs *cgroupFS) alive(pid int, m *member) bool {
	if m.traced {
		return true
	}
	if _, err := os.Lstat(fs.k.procDir + "/" + strconv.Itoa(pid)); err == nil {
		return true
	}
	m.cg.dead.add(m.last.since(m.base))
	delete(fs.procs, pid)
	return false
}

// move puts process pid in cgroup to; its usage so far stays charged to
// the cgroup it leaves.
func (fs *cgroupFS) move(pid int, to *cgroup) {
	m := fs.procs[pid]
	if m == nil {
		m = &member{cg: to}
		fs.procs[pid] = m
		if s, ok := readSample(fs.k.procDir, pid); ok {
			m.base, m.last = s.counters, s.counters
		}
		fs.refreshUp(to)
		return
	}
	if m.cg == to {
		return
	}
	from := m.cg
	if s, ok := readSample(fs.k.procDir, pid); ok {
		m.last = s.counters
	}
	from.dead.add(m.last.since(m.base))
	m.base = m.last
	m.cg = to
	fs.refreshUp(from)
	fs.refreshUp(to)
}

// membersOf lists the live pids directly in c (sorted).
func (fs *cgroupFS) membersOf(c *cgroup) []int {
	var pids []int
	for pid, m := range fs.procs {
		if m.cg == c && fs.alive(pid, m) {
			pids = append(pids, pid)
		}
	}
	sort.Ints(pids)
	return pids
}

// populated reports whether c or a descendant has a live process.
func (fs *cgroupFS) populated(c *cgroup) bool {
	for pid, m := range fs.procs {
		if m.cg.isBelow(c) && fs.alive(pid, m) {
			return true
		}
	}
	return false
}

// usage sums the figures of c's subtree: what left it, and what its
// processes did since they entered.
type usage struct {
	counters
	rssPages, sharedPages uint64
	threads, procs        uint64
}

func (fs *cgroupFS) usage(c *cgroup) usage {
	var u usage
	var walk func(*cgroup)
	walk = func(x *cgroup) {
		u.counters.add(x.dead)
		for _, ch := range x.children {
			walk(ch)
		}
	}
	walk(c)
	for pid, m := range fs.procs {
		if !m.cg.isBelow(c) {
			continue
		}
		s, ok := readSample(fs.k.procDir, pid)
		if !ok {
			if !m.traced {
				fs.alive(pid, m)
			}
			u.counters.add(m.last.since(m.base))
			continue
		}
		m.last = s.counters
		u.counters.add(s.counters.since(m.base))
		u.rssPages += s.rssPages
		u.sharedPages += s.sharedPages
		u.threads += s.threads
		u.procs++
	}
	if mem := u.rssPages * pageSize; mem > c.peakMem {
		c.peakMem = mem
	}
	if u.threads > c.peakPids {
		c.peakPids = u.threads
	}
	return u
}

// content computes the text of file f of c.
func (fs *cgroupFS) content(c *cgroup, f *cgFile) string {
	switch f.kind {
	case value:
		v := c.values[f.name]
		if v == "" && f.name == "io.max" {
			return ""
		}
		return v + "\n"
	}
	switch f.name {
	case "cgroup.controllers":
		return ctrlString(c.controllers()) + "\n"
	case "cgroup.subtree_control":
		return ctrlString(c.subtree) + "\n"
	case "cgroup.procs":
		return joinInts(fs.membersOf(c))
	case "cgroup.threads":
		var tids []int
		for _, pid := range fs.membersOf(c) {
			tids = append(tids, fs.k.threadsOf(pid)...)
		}
		return joinInts(tids)
	case "cgroup.events":
		return fmt.Sprintf("populated %d\nfrozen %s\n", b2i(fs.populated(c)), fs.frozen(c))
	case "cgroup.stat":
		return fmt.Sprintf("nr_descendants %d\nnr_dying_descendants 0\n", c.descendants())
	case "cpuset.cpus.effective":
		return fs.effective(c, "cpuset.cpus", fs.cpusOnline) + "\n"
	case "cpuset.mems.effective":
		return fs.effective(c, "cpuset.mems", fs.memsOnline) + "\n"
	case "memory.events", "memory.events.local":
		return "low 0\nhigh 0\nmax 0\noom 0\noom_kill 0\noom_group_kill 0\n"
	case "memory.swap.events":
		return "high 0\nmax 0\nfail 0\n"
	case "memory.swap.current":
		return "0\n"
	case "pids.events":
		return "max 0\n"
	case "cpu.pressure", "memory.pressure", "io.pressure":
		return fs.pressure(c, strings.TrimSuffix(f.name, ".pressure"))
	}
	if c.isRoot() {
		return fs.k.rootFile(f.name, fs)
	}
	u := fs.usage(c)
	switch f.name {
	case "cpu.stat":
		return cpuStat(u.userTicks, u.sysTicks, 0)
	case "memory.current":
		return strconv.FormatUint(u.rssPages*pageSize, 10) + "\n"
	case "memory.peak":
		return strconv.FormatUint(c.peakMem, 10) + "\n"
	case "memory.stat":
		anon := (u.rssPages - min(u.sharedPages, u.rssPages)) * pageSize
		file := u.sharedPages * pageSize
		return memoryStat(map[string]uint64{
			"anon": anon, "file": file, "kernel": u.threads * 16384, "kernel_stack": u.threads * 16384,
			"file_mapped": file, "active_anon": anon, "active_file": file,
			"pgfault": u.minflt + u.majflt, "pgmajfault": u.majflt,
		})
	case "io.stat":
		return fs.k.ioStatLine(u.counters)
	case "pids.current":
		return strconv.FormatUint(u.threads, 10) + "\n"
	case "pids.peak":
		return strconv.FormatUint(c.peakPids, 10) + "\n"
	}
	return ""
}

func (fs *cgroupFS) frozen(c *cgroup) string {
	for x := c; x != nil; x = x.parent {
		if x.values["cgroup.freeze"] == "1" {
			return "1"
		}
	}
	return "0"
}

// effective is cpuset.cpus.effective (or mems): the nearest configured
// value up the tree, else the online set.
func (fs *cgroupFS) effective(c *cgroup, name, online string) string {
	for x := c; x != nil; x = x.parent {
		if v := x.values[name]; v != "" && !x.isRoot() {
			return v
		}
	}
	return online
}

func (fs *cgroupFS) pressure(c *cgroup, res string) string {
	if c.isRoot() {
		if b, err := safefs.ReadHost(fs.k.procDir+"/pressure/"+res, 4096); err == nil && len(b) > 0 {
			return string(b)
		}
	}
	return "some avg10=0.00 avg60=0.00 avg300=0.00 total=0\nfull avg10=0.00 avg60=0.00 avg300=0.00 total=0\n"
}

// cpuStat formats cpu.stat from tick counts (and extra system ticks).
func cpuStat(user, sys, steal uint64) string {
	const usec = 1000000 / userHZ
	return fmt.Sprintf("usage_usec %d\nuser_usec %d\nsystem_usec %d\nnr_periods 0\nnr_throttled 0\nthrottled_usec 0\nnr_bursts 0\nburst_usec 0\n",
		(user+sys+steal)*usec, user*usec, sys*usec)
}

// memoryStatKeys are the keys of memory.stat in the kernel's order (6.x).
var memoryStatKeys = []string{
	"anon", "file", "kernel", "kernel_stack", "pagetables", "sec_pagetables", "percpu", "sock", "vmalloc",
	"shmem", "zswap", "zswapped", "file_mapped", "file_dirty", "file_writeback", "swapcached",
	"anon_thp", "file_thp", "shmem_thp", "inactive_anon", "active_anon", "inactive_file", "active_file",
	"unevictable", "slab_reclaimable", "slab_unreclaimable", "slab",
	"workingset_refault_anon", "workingset_refault_file", "workingset_activate_anon", "workingset_activate_file",
	"workingset_restore_anon", "workingset_restore_file", "workingset_nodereclaim",
	"pgscan", "pgsteal", "pgscan_kswapd", "pgscan_direct", "pgscan_khugepaged",
	"pgsteal_kswapd", "pgsteal_direct", "pgsteal_khugepaged", "pgfault", "pgmajfault",
	"pgrefill", "pgactivate", "pgdeactivate", "pglazyfree", "pglazyfreed",
	"zswpin", "zswpout", "zswpwb", "thp_fault_alloc", "thp_collapse_alloc", "thp_swpout", "thp_swpout_fallback",
}

func memoryStat(v map[string]uint64) string {
	var b strings.Builder
	for _, k := range memoryStatKeys {
		fmt.Fprintf(&b, "%s %d\n", k, v[k])
	}
	return b.String()
}

func joinInts(ids []int) string {
	var b strings.Builder
	for _, id := range ids {
		b.WriteString(strconv.Itoa(id))
		b.WriteByte('\n')
	}
	return b.String()
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

// opened handles an open of an interface file: one for writing is queued
// for reconcile, one for reading regenerates a live or changed file.
func (fs *cgroupFS) opened(c *cgroup, f *cgFile, tgid int, write bool) {
	if !write {
		fs.refresh(c, f, false)
		return
	}
	for _, p := range fs.queue {
		if p.cg == c && p.name == f.name {
			p.at = time.Now()
			return
		}
	}
	before := c.written[f.name]
	fs.queue = append(fs.queue, &pending{cg: c, name: f.name, tgid: tgid, before: before, at: time.Now()})
}

// reconcile applies what the guest wrote into files opened for writing.
// A file that still holds what it held at the open (or nothing, after
// O_TRUNC) waits up to pendingTTL for its write.
func (fs *cgroupFS) reconcile() {
	if len(fs.queue) == 0 {
		return
	}
	q := fs.queue
	fs.queue = nil
	var keep []*pending
	for _, p := range q {
		if fs.all[p.cg.path] != p.cg {
			continue // removed meanwhile
		}
		// Every served call reconciles, and a write of the value a file
		// already holds (runc writes pids.max "max" and the like) keeps
		// it pending for pendingTTL: read it only when its stat changed
		// since it was last read unchanged. The stat is taken before the
		// read, so a write in between is seen by the next stat.
		fresh := time.Since(p.at) < pendingTTL
		stamp := stampOf(p.cg.fd, p.name)
		if fresh && stamp.ok && stamp == p.seen {
			keep = append(keep, p)
			continue
		}
		data, err := safefs.ReadFileAt(p.cg.fd, p.name, p.name, 1<<16)
		if err != nil {
			continue
		}
		s := string(data)
		if (s == "" || s == p.before) && fresh {
			p.seen = stamp
			keep = append(keep, p)
			continue
		}
		fs.apply(p, s)
	}
	fs.queue = append(keep, fs.queue...)
	for _, p := range q {
		if fs.all[p.cg.path] == p.cg && !isQueued(fs.queue, p) {
			if f := cgFileByName[p.name]; f != nil && p.cg.has(f) {
				fs.refresh(p.cg, f, true)
			}
		}
	}
}

func isQueued(q []*pending, p *pending) bool {
	for _, x := range q {
		if x == p {
			return true
		}
	}
	return false
}

// apply gives a write its kernel meaning.
func (fs *cgroupFS) apply(p *pending, s string) {
	c := p.cg
	f := cgFileByName[p.name]
	if f == nil {
		return
	}
	switch f.name {
	case "cgroup.procs", "cgroup.threads":
		for _, w := range strings.Fields(s) {
			pid, err := strconv.Atoi(w)
			if err != nil || pid < 0 {
				continue
			}
			if pid == 0 {
				pid = p.tgid
			}
			tgid, ok := tgidOf(fs.k.procDir, pid)
			if !ok {
				continue // no such process: ESRCH
			}
			fs.move(tgid, c)
		}
		return
	case "cgroup.subtree_control":
		avail := c.controllers()
		next := c.subtree
		for _, w := range strings.Fields(s) {
			if len(w) < 2 {
				continue
			}
			bit := ctrlBit(w[1:])
			if bit == 0 || avail&bit == 0 {
				continue // ENOENT in the kernel
			}
			switch w[0] {
			case '+':
				next |= bit
			case '-':
				next &^= bit
			}
		}
		fs.setSubtree(c, next)
		return
	}
	if f.kind != value {
		// A read-only file: the write has no effect. Mark the copy stale
		// so that the next refresh puts the real figures back, in place
		// (a replacement would show cAdvisor's watch a new entry).
		c.written[f.name] = "\x00stale"
		return
	}
	v, ok := f.norm(c.values[f.name], s)
	if !ok {
		fs.k.log.Debug("cgroup write refused", "cgroup", c.path, "file", f.name, "value", s)
		return
	}
	c.values[f.name] = v
	switch f.name {
	case "cgroup.freeze":
		fs.refreshTree(c)
	case "cpuset.cpus", "cpuset.mems":
		fs.refreshTree(c)
	}
}

// setSubtree changes the controllers c enables for its children; disabling
// one disables it below too.
//
// Writing what is already enabled changes nothing, as in the kernel; it is
// also the common case (runc writes "+cpu +memory ..." into every parent's
// cgroup.subtree_control for each container it starts), so it must not
// touch the children: rewriting every child's files on each write made a
// pod start cost O(pods already running).
func (fs *cgroupFS) setSubtree(c *cgroup, mask uint8) {
	next := mask & c.controllers()
	if next == c.subtree {
		return
	}
	c.subtree = next
	for _, ch := range c.children {
		// ch's controllers are c's subtree: its files follow it, and what
		// ch enables for its own children narrows to what it still has
		// (which recurses only when that changes).
		fs.setSubtree(ch, ch.subtree&next)
		fs.fillValues(ch)
		fs.syncFiles(ch)
	}
	fs.refreshState(c)
}

// refreshTree rewrites the changed state files of c and all below it.
func (fs *cgroupFS) refreshTree(c *cgroup) {
	fs.refreshState(c)
	for _, ch := range c.children {
		fs.refreshTree(ch)
	}
}

// prepareRmdir readies the removal of c: a populated cgroup, or one with
// children, cannot go (ok=false); otherwise its interface files are
// removed so that rmdir(2) finds the directory empty.
func (fs *cgroupFS) prepareRmdir(c *cgroup) bool {
	if c.isRoot() || len(c.children) > 0 || fs.populated(c) {
		return false
	}
	for name := range c.written {
		unix.Unlinkat(c.fd, name, 0)
	}
	c.written = map[string]string{}
	return true
}

// removed finishes an rmdir: on success c is forgotten, else its files are
// put back.
func (fs *cgroupFS) removed(c *cgroup, ok bool) {
	if !ok {
		fs.syncFiles(c)
		return
	}
	parent := c.parent
	parent.dead.add(fs.usage(c).counters)
	for _, m := range fs.procs {
		if m.cg == c {
			m.cg = parent
		}
	}
	delete(parent.children, c.name)
	delete(fs.all, c.path)
	unix.Close(c.fd)
	c.fd = -1
	fs.refreshUp(parent)
}

// procCgroup is /proc/PID/cgroup: the v2 line only.
func (fs *cgroupFS) procCgroup(pid int) string {
	if m := fs.procs[pid]; m != nil {
		return "0::" + m.cg.path + "\n"
	}
	return "0::/\n"
}

// validName reports whether mkdir may make a cgroup called name.
func validName(name string) bool {
	return name != "" && !strings.ContainsAny(name, "\n") && !strings.HasPrefix(name, safefs.DefaultTempPrefix)
}
