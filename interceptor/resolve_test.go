package interceptor

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/nodeboot/nodeboot/interceptor/rules"

	"golang.org/x/sys/unix"
)

// The resolver's tests resolve paths in the view of a real process: a
// helper (this test binary again, see resolveHelper) that sets up its view
// (cwd, open fds, a mount namespace of its own with bind mounts and a
// procfs, a chroot, a pid namespace) and then waits. The resolver needs no
// ptrace for that: it looks at the process through /proc/PID.

const resolveHelperEnv = "NODEBOOT_RESOLVE_HELPER"

func init() {
	if steps := os.Getenv(resolveHelperEnv); steps != "" {
		resolveHelper(steps)
		os.Exit(0)
	}
}

// resolveHelper runs the steps (separated by ";") and prints "ready" and
// the fd numbers it opened, then waits for stdin to close. Steps:
//
//	private            make every mount private (the namespace is new)
//	bind SRC DST       bind-mount SRC on DST
//	proc DST           mount a procfs on DST
//	tmpfs DST          mount a tmpfs on DST
//	fd PATH            open PATH (O_PATH) and report its number
//	tree PATH          open_tree(PATH, OPEN_TREE_CLONE) and report its number
//	chdir DIR / chroot DIR
func resolveHelper(steps string) {
	var fds []string
	in := bufio.NewReader(os.Stdin)
	for _, step := range strings.Split(steps, ";") {
		f := strings.Fields(step)
		if len(f) == 0 {
			continue
		}
		var err error
		switch f[0] {
		case "private":
			err = unix.Mount("", "/", "", unix.MS_REC|unix.MS_PRIVATE, "")
		case "bind":
			err = unix.Mount(f[1], f[2], "", unix.MS_BIND, "")
		case "proc":
			err = unix.Mount("proc", f[1], "proc", 0, "")
		case "tmpfs":
			err = unix.Mount("tmpfs", f[1], "tmpfs", 0, "")
		case "fd":
			var fd int
			fd, err = unix.Open(f[1], unix.O_PATH, 0)
			fds = append(fds, strconv.Itoa(fd))
		case "tree":
			var fd int
			fd, err = unix.OpenTree(unix.AT_FDCWD, f[1], unix.OPEN_TREE_CLONE)
			fds = append(fds, strconv.Itoa(fd))
		case "chdir":
			err = unix.Chdir(f[1])
		case "chroot":
			err = unix.Chroot(f[1])
		case "pivot":
			// runc's pivot_root: the new root over the old, which is
			// then detached.
			if err = unix.Chdir(f[1]); err == nil {
				if err = unix.PivotRoot(".", "."); err == nil {
					if err = unix.Unmount(".", unix.MNT_DETACH); err == nil {
						err = unix.Chdir("/")
					}
				}
			}
		case "pause":
			// Report ready, then wait for a line (viewProc.next) before
			// the steps after this one.
			fmt.Printf("ready %s\n", strings.Join(fds, " "))
			_, err = in.ReadString('\n')
		default:
			err = fmt.Errorf("unknown step")
		}
		if err != nil {
			fmt.Printf("error %s: %v\n", step, err)
			return
		}
	}
	fmt.Printf("ready %s\n", strings.Join(fds, " "))
	io.Copy(io.Discard, in)
}

// viewProc is a helper process and what it reported.
type viewProc struct {
	pid int
	fds []int
	// next runs the steps after a "pause" step, until the helper is
	// ready again.
	next func()
}

// startView starts a helper with the steps; flags are clone flags
// (CLONE_NEWNS, CLONE_NEWPID). It is killed when the test ends.
func startView(t testing.TB, flags uintptr, steps ...string) viewProc {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(exe)
	cmd.Env = append(os.Environ(), resolveHelperEnv+"="+strings.Join(steps, ";"))
	cmd.SysProcAttr = &syscall.SysProcAttr{Cloneflags: flags, Pdeathsig: syscall.SIGKILL}
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Skipf("cannot start a helper with clone flags %#x: %v", flags, err)
	}
	t.Cleanup(func() {
		stdin.Close()
		cmd.Process.Kill()
		cmd.Wait()
	})
	out := bufio.NewReader(stdout)
	ready := func() string {
		t.Helper()
		line, err := out.ReadString('\n')
		if err != nil {
			t.Fatalf("helper (%q): %v", steps, err)
		}
		if f := strings.Fields(line); len(f) == 0 || f[0] != "ready" {
			t.Fatalf("helper (%q): %s", steps, line)
		}
		return line
	}
	f := strings.Fields(ready())
	v := viewProc{pid: cmd.Process.Pid, next: func() {
		t.Helper()
		if _, err := io.WriteString(stdin, "go\n"); err != nil {
			t.Fatalf("helper (%q): %v", steps, err)
		}
		ready()
	}}
	for _, s := range f[1:] {
		n, _ := strconv.Atoi(s)
		v.fds = append(v.fds, n)
	}
	return v
}

// resolveTree is the file layout of the resolver tests, under T:
//
//	T/g          G, the guest of the main rule (T/g=T/tree)
//	T/g/f        a real file; T/tree/f its host side
//	T/g/only     a real file the tree lacks
//	T/g/lnk      -> f (real); T/tree/lnk -> hosted (the tree's wins)
//	T/tree/back  -> T/g/f (absolute, planted in the tree)
//	T/tree/rel   -> ../g/only (relative, planted in the tree)
//	T/h/f        a file no rule covers
//	T/l/*        symlinks: abs -> T/g/f, dir -> T/g, up -> T/h,
//	             loop1 <-> loop2, chain0..chain40 (chain0 -> T/g/f)
//	T/aux/{b,p,s} mount points for the private namespace
type resolveTree struct {
	T, G, H, Tree string
}

func newResolveTree(t testing.TB) *resolveTree {
	t.Helper()
	root, err := filepath.EvalSymlinks(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	r := &resolveTree{T: root, G: root + "/g", H: root + "/h", Tree: root + "/tree"}
	files := map[string]string{"g/f": "real", "g/only": "real-only", "tree/f": "tree", "tree/hosted": "hosted", "h/f": "twin"}
	for p, c := range files {
		os.MkdirAll(filepath.Dir(root+"/"+p), 0o755)
		if err := os.WriteFile(root+"/"+p, []byte(c), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	links := map[string]string{"g/lnk": "f", "tree/lnk": "hosted", "tree/back": r.G + "/f", "tree/rel": "../g/only",
		"l/abs": r.G + "/f", "l/dir": r.G, "l/up": r.H, "l/loop1": "loop2", "l/loop2": "loop1", "l/chain0": r.G + "/f"}
	for i := 1; i <= 40; i++ {
		links[fmt.Sprintf("l/chain%d", i)] = fmt.Sprintf("chain%d", i-1)
	}
	for p, target := range links {
		os.MkdirAll(filepath.Dir(root+"/"+p), 0o755)
		if err := os.Symlink(target, root+"/"+p); err != nil {
			t.Fatal(err)
		}
	}
	for _, d := range []string{"aux/b", "aux/p", "aux/s"} {
		os.MkdirAll(root+"/"+d, 0o755)
	}
	return r
}

func (r *resolveTree) rules() rules.Rules {
	return rules.Rules{Redirects: []rules.Redirect{
		{Guest: r.G, Host: r.Tree},
		{Guest: "/proc/sys/kernel/nodeboot-test", Host: r.T + "/procsys"},
	}}
}

func (r *resolveTree) expand(s string) string {
	return strings.NewReplacer("{T}", r.T, "{G}", r.G, "{H}", r.H, "{Tree}", r.Tree).Replace(s)
}

// resolveCase is one path to resolve and what the lookup must say.
type resolveCase struct {
	name    string
	path    string
	dirfd   int // index into the helper's fds, or -1 for AT_FDCWD
	nofol   bool
	resolve uint64
	// want: "canon PATH", "missing PATH" (known, not existing), "errno
	// NAME", "unknown held" (not known: the call fails), "unknown" (not
	// known, and nothing a rule covers can be there).
	want string
	// host: "" (no rule), "has PATH" (tree has it), "lacks PATH".
	host string
	// via: a tree's symlink led the lookup, to this text.
	via string
}

func newTestResolver(t testing.TB, rs rules.Rules, pids ...int) *resolver {
	t.Helper()
	r := newResolver(newMatcher(rs), nil, slog.New(slog.DiscardHandler), nil)
	r.tids = func() []int { return pids }
	t.Cleanup(r.closeTrees)
	return r
}

// describeLookup renders a lookup as the cases' want/host/via strings.
func describeLookup(lk *lookup) (want, host, via string) {
	switch {
	case lk.errno != 0:
		want = "errno " + unix.ErrnoName(lk.errno)
	case !lk.known && lk.hold:
		want = "unknown held"
	case !lk.known:
		want = "unknown"
	case lk.exists:
		want = "canon " + lk.canon
	case lk.realUnknown:
		// treeFirst decided from the tree alone; what the real side has
		// is looked up here, so that the cases read the same either way.
		var st unix.Stat_t
		if unix.Lstat(lk.canon, &st) == nil {
			want = "canon " + lk.canon
		} else {
			want = "missing " + lk.canon
		}
	default:
		want = "missing " + lk.canon
	}
	switch {
	case lk.rule < 0:
	case lk.hostHas:
		host = "has " + lk.hostPath
	default:
		host = "lacks " + lk.hostPath
	}
	if lk.viaHost {
		via = lk.text
	}
	return
}

func runResolveCases(t *testing.T, rs *resolver, v viewProc, tr *resolveTree, cases []resolveCase) {
	t.Helper()
	th := &thread{tid: v.pid, tgid: v.pid}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			q := pathQuery{tid: v.pid, tgid: v.pid, raw: tr.expand(c.path), dirfd: unix.AT_FDCWD, follow: !c.nofol,
				resolve: c.resolve}
			if c.dirfd >= 0 {
				q.dirfd = v.fds[c.dirfd]
			}
			lk := rs.resolve(th, q)
			want, host, via := describeLookup(lk)
			lk.release()
			if w := tr.expand(c.want); want != w {
				t.Errorf("resolve %q: %s, want %s", q.raw, want, w)
			}
			if w := tr.expand(c.host); host != w {
				t.Errorf("resolve %q: host %q, want %q", q.raw, host, w)
			}
			if w := tr.expand(c.via); via != w {
				t.Errorf("resolve %q: via the tree to %q, want %q", q.raw, via, w)
			}
		})
	}
}

// lookupObject identifies the object a lookup found (zero when none).
func lookupObject(lk *lookup) fileID {
	var st unix.Statx_t
	if !lk.exists || fdStatx(lk.obj, &st) != 0 {
		return fileID{}
	}
	return idOf(&st)
}

// sameViewCases resolve in a process whose view is nodeboot's, cwd T, with
// fds 0: T, 1: T/g/f, 2: /proc.
func sameViewCases() []resolveCase {
	chain40 := "{T}/l/chain39" // 40 links: the limit
	return []resolveCase{
		{name: "plain", path: "{G}/f", dirfd: -1, want: "canon {G}/f", host: "has {Tree}/f"},
		{name: "uncovered", path: "{H}/f", dirfd: -1, want: "canon {H}/f"},
		{name: "missing", path: "{G}/nothing/deeper", dirfd: -1, want: "missing {G}/nothing/deeper", host: "lacks {Tree}/nothing/deeper"},
		{name: "only-real", path: "{G}/only", dirfd: -1, want: "canon {G}/only", host: "lacks {Tree}/only"},
		{name: "dotdot-lexical", path: "{H}/../g/f", dirfd: -1, want: "canon {G}/f", host: "has {Tree}/f"},
		{name: "dotdot-above-root", path: "/../../..{G}/f", dirfd: -1, want: "canon {G}/f", host: "has {Tree}/f"},
		{name: "relative-cwd", path: "g/f", dirfd: -1, want: "canon {G}/f", host: "has {Tree}/f"},
		{name: "relative-dirfd", path: "g/f", dirfd: 0, want: "canon {G}/f", host: "has {Tree}/f"},
		{name: "relative-dirfd-dotdot", path: "../" + "001/h/f", dirfd: 0, want: "canon {H}/f"},
		{name: "trailing-slash-file", path: "{H}/f/", dirfd: -1, want: "missing {H}/f"},
		{name: "below-file-dotdot", path: "{H}/f/../f", dirfd: -1, want: "errno ENOTDIR"},
		{name: "below-missing-dotdot", path: "{H}/nothing/../f", dirfd: -1, want: "errno ENOENT"},
		{name: "symlink-abs", path: "{T}/l/abs", dirfd: -1, want: "canon {G}/f", host: "has {Tree}/f"},
		{name: "symlink-nofollow", path: "{T}/l/abs", dirfd: -1, nofol: true, want: "canon {T}/l/abs"},
		{name: "symlink-dir", path: "{T}/l/dir/f", dirfd: -1, want: "canon {G}/f", host: "has {Tree}/f"},
		{name: "dotdot-after-symlink", path: "{T}/l/up/../g/f", dirfd: -1, want: "canon {G}/f", host: "has {Tree}/f"},
		{name: "symlink-chain-40", path: chain40, dirfd: -1, want: "canon {G}/f", host: "has {Tree}/f"},
		{name: "symlink-chain-41-ELOOP", path: "{T}/l/chain40", dirfd: -1, want: "errno ELOOP"},
		{name: "symlink-loop", path: "{T}/l/loop1", dirfd: -1, want: "errno ELOOP"},
		{name: "proc-self-root", path: "/proc/self/root{G}/f", dirfd: -1, want: "canon {G}/f", host: "has {Tree}/f"},
		{name: "proc-thread-self-root", path: "/proc/thread-self/root{G}/f", dirfd: -1, want: "canon {G}/f", host: "has {Tree}/f"},
		{name: "proc-self-spelled", path: "/proc//./self/root{G}/f", dirfd: -1, want: "canon {G}/f", host: "has {Tree}/f"},
		{name: "proc-self-cwd", path: "/proc/self/cwd/g/f", dirfd: -1, want: "canon {G}/f", host: "has {Tree}/f"},
		{name: "proc-self-fd-dir", path: "/proc/self/fd/{fd0}/g/f", dirfd: -1, want: "canon {G}/f", host: "has {Tree}/f"},
		{name: "proc-self-fd-file", path: "/proc/self/fd/{fd1}", dirfd: -1, want: "canon {G}/f", host: "has {Tree}/f"},
		{name: "proc-fd-dirfd", path: "self/fd/{fd1}", dirfd: 2, want: "canon {G}/f", host: "has {Tree}/f"},
		{name: "proc-mounts-text-link", path: "/proc/mounts", dirfd: -1, want: "canon /proc/{pid}/mounts"},
		{name: "proc-sys-missing-guest", path: "/proc/sys/kernel/nodeboot-test/x", dirfd: -1,
			want: "missing /proc/sys/kernel/nodeboot-test/x", host: "lacks {T}/procsys/x"},
		// The tree's lnk (-> hosted) hides the real one (-> f).
		{name: "host-symlink-hides-real", path: "{G}/lnk", dirfd: -1, want: "missing {G}/hosted", host: "has {Tree}/hosted",
			via: "{G}/hosted"},
		{name: "host-symlink-nofollow", path: "{G}/lnk", dirfd: -1, nofol: true, want: "canon {G}/lnk", host: "has {Tree}/lnk"},
		{name: "tree-symlink-abs", path: "{G}/back", dirfd: -1, want: "canon {G}/f", host: "has {Tree}/f", via: "{G}/f"},
		{name: "tree-symlink-rel", path: "{G}/rel", dirfd: -1, want: "canon {G}/only", host: "lacks {Tree}/only",
			via: "{G}/../g/only"},
		{name: "tree-symlink-nofollow", path: "{G}/back", dirfd: -1, nofol: true, want: "missing {G}/back", host: "has {Tree}/back"},
		{name: "beneath-ok", path: "g/f", dirfd: 0, resolve: unix.RESOLVE_BENEATH, want: "canon {G}/f", host: "has {Tree}/f"},
		{name: "beneath-dotdot-EXDEV", path: "../x", dirfd: 0, resolve: unix.RESOLVE_BENEATH, want: "errno EXDEV"},
		{name: "beneath-absolute-EXDEV", path: "{G}/f", dirfd: 0, resolve: unix.RESOLVE_BENEATH, want: "errno EXDEV"},
		{name: "in-root-absolute", path: "/g/f", dirfd: 0, resolve: unix.RESOLVE_IN_ROOT, want: "canon {G}/f", host: "has {Tree}/f"},
		{name: "in-root-dotdot-clamped", path: "../../g/f", dirfd: 0, resolve: unix.RESOLVE_IN_ROOT, want: "canon {G}/f", host: "has {Tree}/f"},
		{name: "no-symlinks-ELOOP", path: "l/abs", dirfd: 0, resolve: unix.RESOLVE_NO_SYMLINKS, want: "errno ELOOP"},
		{name: "no-magiclinks-ELOOP", path: "self/fd/{fd1}", dirfd: 2, resolve: unix.RESOLVE_NO_MAGICLINKS, want: "errno ELOOP"},
		{name: "no-xdev-EXDEV", path: "/proc/sys", dirfd: -1, resolve: unix.RESOLVE_NO_XDEV, want: "errno EXDEV"},
	}
}

func expandFds(cases []resolveCase, v viewProc) []resolveCase {
	out := make([]resolveCase, len(cases))
	for i, c := range cases {
		kv := []string{"{pid}", strconv.Itoa(v.pid)}
		for j, fd := range v.fds {
			kv = append(kv, "{fd"+strconv.Itoa(j)+"}", strconv.Itoa(fd))
		}
		r := strings.NewReplacer(kv...)
		c.path, c.want, c.host = r.Replace(c.path), r.Replace(c.want), r.Replace(c.host)
		out[i] = c
	}
	return out
}

// TestResolveSameView resolves paths in the view of a process that shares
// nodeboot's root and mount namespace, by the fast path where it can and
// by the slow walk alone: both must give the same answers.
func TestResolveSameView(t *testing.T) {
	requireRoot(t, "the resolver opens another process's /proc/PID/root and fds")
	tr := newResolveTree(t)
	if err := os.WriteFile(tr.T+"/h/deleted", nil, 0o644); err != nil {
		t.Fatal(err)
	}
	v := startView(t, 0, "chdir "+tr.T, "fd "+tr.T, "fd "+tr.G+"/f", "fd /proc", "fd "+tr.T+"/h/deleted")
	if err := os.Remove(tr.T + "/h/deleted"); err != nil {
		t.Fatal(err)
	}
	cases := expandFds(append(sameViewCases(),
		// Same filesystem as the guest, but unlinked: no rule covers it.
		resolveCase{name: "deleted-file", path: "/proc/self/fd/{fd3}", dirfd: -1, want: "unknown"}), v)
	for _, way := range []string{"fast", "text", "walker"} {
		t.Run(way, func(t *testing.T) {
			rs := newTestResolver(t, tr.rules(), v.pid)
			rs.noFast = way != "fast"
			rs.noText = way == "walker"
			runResolveCases(t, rs, v, tr, cases)
		})
	}
}

// TestResolveFastMatchesSlow resolves many paths every way (the fast
// path, the text walk, the walker) in the same process and compares the
// answers and the objects found.
func TestResolveFastMatchesSlow(t *testing.T) {
	requireRoot(t, "the resolver opens another process's /proc/PID/root and fds")
	tr := newResolveTree(t)
	v := startView(t, 0, "chdir "+tr.T, "fd "+tr.T, "fd "+tr.G+"/f", "fd /proc")
	fast := newTestResolver(t, tr.rules(), v.pid)
	text := newTestResolver(t, tr.rules(), v.pid)
	text.noFast = true
	slow := newTestResolver(t, tr.rules(), v.pid)
	slow.noFast, slow.noText = true, true
	th := &thread{tid: v.pid, tgid: v.pid}
	var paths []string
	for _, c := range sameViewCases() {
		if c.dirfd < 0 && c.resolve == 0 {
			paths = append(paths, tr.expand(c.path))
		}
	}
	paths = append(paths, "/", "/proc", "/proc/self", "/proc/self/", "/proc/self/status", "/proc/thread-self/comm",
		"/proc/sys/kernel/ostype", "/etc/hostname", "/etc/../etc/./hostname", "/nonexistent/x/y",
		".", "..", "g", "g/", "g/./f", "g/../h/f", "tree/f", "l", "l/", "/dev/null", "/sys/fs/cgroup",
		tr.T+"//g///f", tr.T+"/g/f/.", tr.T+"/g/.", tr.T+"/tree/lnk", tr.T+"/h/f/..")
	paths = append(paths, strings.ReplaceAll(strings.Join(paths, "\n"), "{fd0}", strconv.Itoa(v.fds[0])))
	n := 0
	for _, p := range strings.Split(strings.Join(paths, "\n"), "\n") {
		for _, follow := range []bool{true, false} {
			q := pathQuery{tid: v.pid, tgid: v.pid, raw: p, dirfd: unix.AT_FDCWD, follow: follow}
			b := slow.resolve(th, q)
			wb, hb, vb := describeLookup(b)
			ib := lookupObject(b)
			b.release()
			for _, r := range []*resolver{fast, text} {
				a := r.resolve(th, q)
				wa, ha, va := describeLookup(a)
				ia := lookupObject(a)
				if a.realUnknown {
					// Decided from the tree alone: no real object to
					// compare.
					ia = ib
				}
				a.release()
				if wa != wb || ha != hb || va != vb || ia != ib {
					way := "fast"
					if r == text {
						way = "text"
					}
					t.Errorf("%q (follow %v): %s %s %q %q object %+v, walker %s %q %q object %+v", p, follow, way, wa, ha, va, ia, wb, hb, vb, ib)
				}
			}
			n++
		}
	}
	t.Logf("%d lookups compared", n)
}

// TestResolveOtherViews resolves paths in processes whose view is not
// nodeboot's: a chroot, a mount namespace of their own with a bind mount
// of the guest, a procfs and a bind mount of /proc/sys, a pid namespace
// with its own procfs, and a detached open_tree copy.
func TestResolveOtherViews(t *testing.T) {
	requireRoot(t, "mount namespaces, chroot and open_tree need root")
	tr := newResolveTree(t)
	t.Run("chroot", func(t *testing.T) {
		v := startView(t, 0, "chroot "+tr.T, "chdir /")
		rs := newTestResolver(t, tr.rules(), v.pid)
		runResolveCases(t, rs, v, tr, []resolveCase{
			{name: "absolute", path: "/g/f", dirfd: -1, want: "canon {G}/f", host: "has {Tree}/f"},
			{name: "dotdot-stays-in-root", path: "/../../g/f", dirfd: -1, want: "canon {G}/f", host: "has {Tree}/f"},
			{name: "relative", path: "g/f", dirfd: -1, want: "canon {G}/f", host: "has {Tree}/f"},
			{name: "abs-symlink-restarts-at-its-root", path: "/l/abs", dirfd: -1, want: "missing {T}{G}/f"},
		})
		th := &thread{tid: v.pid, tgid: v.pid}
		if got := rs.viewOf(th); got.same || got.rootCanon != tr.T {
			t.Errorf("view of a process chrooted to %s: same %v, root %q", tr.T, got.same, got.rootCanon)
		}
		if kp, ok := rs.inView(th, rs.viewOf(th), tr.Tree+"/f"); !ok || kp != "/tree/f" || !rs.sameInViews(th, tr.Tree+"/f", kp) {
			t.Errorf("tree file in the chroot's view: %q %v", kp, ok)
		}
		if _, ok := rs.inView(th, rs.viewOf(th), "/etc/hostname"); ok {
			t.Errorf("/etc/hostname is out of the chroot's reach, but inView expressed it")
		}
	})
	t.Run("mount-namespace", func(t *testing.T) {
		v := startView(t, unix.CLONE_NEWNS, "private", "bind "+tr.G+" "+tr.T+"/aux/b", "proc "+tr.T+"/aux/p",
			"bind /proc/sys "+tr.T+"/aux/s", "tree "+tr.G, "chdir "+tr.T, "tmpfs /proc")
		rs := newTestResolver(t, tr.rules(), v.pid)
		runResolveCases(t, rs, v, tr, expandFds([]resolveCase{
			{name: "plain", path: "{G}/f", dirfd: -1, want: "canon {G}/f", host: "has {Tree}/f"},
			{name: "bind-of-guest", path: "{T}/aux/b/f", dirfd: -1, want: "canon {G}/f", host: "has {Tree}/f"},
			{name: "bind-of-guest-missing", path: "{T}/aux/b/new", dirfd: -1, want: "missing {G}/new", host: "lacks {Tree}/new"},
			{name: "own-procfs", path: "{T}/aux/p/sys/kernel/ostype", dirfd: -1, want: "canon /proc/sys/kernel/ostype"},
			{name: "own-procfs-guest", path: "{T}/aux/p/sys/kernel/nodeboot-test", dirfd: -1,
				want: "missing /proc/sys/kernel/nodeboot-test", host: "lacks {T}/procsys"},
			{name: "own-procfs-self", path: "{T}/aux/p/self/comm", dirfd: -1, want: "canon /proc/{pid}/comm"},
			{name: "bind-of-proc-sys", path: "{T}/aux/s/kernel/ostype", dirfd: -1, want: "canon /proc/sys/kernel/ostype"},
			{name: "open-tree-clone", path: "f", dirfd: 0, want: "unknown held"},
			// /proc is a tmpfs in the helper's namespace (the last step): a
			// name missing there is the tracee's path.
			{name: "private-tmpfs-over-proc", path: "/proc/sys/kernel/nodeboot-test", dirfd: -1,
				want: "missing /proc/sys/kernel/nodeboot-test", host: "lacks {T}/procsys"},
		}, v))
		th := &thread{tid: v.pid, tgid: v.pid}
		if got := rs.viewOf(th); got.same || got.rootCanon != "/" {
			t.Errorf("view of a process in a mount namespace of its own: same %v, root %q", got.same, got.rootCanon)
		}
		if !rs.sameInViews(th, tr.Tree+"/f", tr.Tree+"/f") {
			t.Errorf("the tree is the same in both namespaces, sameInViews says no")
		}
		if rs.sameInViews(th, tr.T+"/aux/b/f", tr.T+"/aux/b/f") {
			t.Errorf("aux/b has a bind mount in the helper's namespace only, sameInViews says they are the same")
		}
		q := pathQuery{tid: v.pid, tgid: v.pid, raw: "f", dirfd: v.fds[0], follow: true}
		if lk := rs.resolve(th, q); lk.known || !lk.hold {
			t.Errorf("a file of a detached open_tree copy of the guest: known %v (%q), hold %v; want unknown and held", lk.known, lk.canon, lk.hold)
		}
	})
	t.Run("pid-namespace", func(t *testing.T) {
		v := startView(t, unix.CLONE_NEWNS|unix.CLONE_NEWPID, "private", "proc "+tr.T+"/aux/p")
		rs := newTestResolver(t, tr.rules(), v.pid)
		// The helper is pid 1 in its namespace; its procfs says so, and the
		// canonical path has nodeboot's number for it.
		cases := []resolveCase{
			{name: "self", path: "{T}/aux/p/self/comm", dirfd: -1, want: "canon /proc/{pid}/comm"},
			{name: "pid-1", path: "{T}/aux/p/1/comm", dirfd: -1, want: "canon /proc/{pid}/comm"},
			{name: "thread-self", path: "{T}/aux/p/thread-self/comm", dirfd: -1, want: "canon /proc/{pid}/task/{pid}/comm"},
			{name: "sysctl", path: "{T}/aux/p/sys/kernel/ostype", dirfd: -1, want: "canon /proc/sys/kernel/ostype"},
		}
		runResolveCases(t, rs, v, tr, expandFds(cases, v))
	})
}

// BenchmarkResolve measures what the resolver adds to an intercepted path
// call, against a baseline measured in the same run: one open(O_PATH) and
// close of the same path by the tracer, the least a look at the file
// costs. It reports the time per lookup and the ratio to the baseline.
//
//   - fast-uncovered: a path no rule covers, no symlink on the way (most
//     calls): one openat2(RESOLVE_NO_SYMLINKS);
//   - fast-covered: a redirected file the tree has: the tree is checked
//     too;
//   - fast-missing-covered: the benchmark's /proc/sys case, a guest file the
//     real side lacks;
//   - relative: relative to the cwd;
//   - slow-symlink: a symlink on the way: the slow walk;
//   - other-view: the same plain path for a process with a mount namespace
//     of its own (slow walk, canonical path through the mount table).
func BenchmarkResolve(b *testing.B) {
	if os.Geteuid() != 0 {
		b.Skipf("needs root: the resolver opens another process's /proc/PID/root (euid %d)", os.Geteuid())
	}
	tr := newResolveTree(b)
	same := startView(b, 0, "chdir "+tr.T)
	other := startView(b, unix.CLONE_NEWNS, "chdir "+tr.T)
	// The baseline, timed by hand (testing.Benchmark cannot run inside a
	// benchmark): the best of a few rounds.
	base := 0.0
	for round := 0; round < 5; round++ {
		const n = 20000
		p := tr.H + "/f"
		start := time.Now()
		for i := 0; i < n; i++ {
			fd, err := unix.Open(p, unix.O_PATH|unix.O_CLOEXEC, 0)
			if err != nil {
				b.Fatal(err)
			}
			unix.Close(fd)
		}
		if ns := float64(time.Since(start).Nanoseconds()) / n; base == 0 || ns < base {
			base = ns
		}
	}
	b.Logf("baseline open(O_PATH)+close: %.0f ns", base)
	for _, c := range []struct {
		name, path string
		v          viewProc
	}{
		{"fast-uncovered", tr.H + "/f", same},
		{"fast-covered", tr.G + "/f", same},
		{"fast-missing-covered", tr.G + "/nodeboot_bench", same},
		{"relative", "h/f", same},
		{"slow-symlink", tr.T + "/l/abs", same},
		{"other-view", tr.H + "/f", other},
	} {
		b.Run(c.name, func(b *testing.B) {
			rs := newTestResolver(b, tr.rules(), c.v.pid)
			th := &thread{tid: c.v.pid, tgid: c.v.pid}
			q := pathQuery{tid: c.v.pid, tgid: c.v.pid, raw: c.path, dirfd: unix.AT_FDCWD, follow: true}
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				lk := rs.resolve(th, q)
				if lk.errno != 0 || !lk.known {
					b.Fatalf("resolve %s: errno %v known %v", c.path, lk.errno, lk.known)
				}
				lk.release()
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/base, "x-baseline")
		})
	}
}

// TestResolveAliases checks paths through alias mounts in nodeboot's own
// mount namespace: a bind mount of the guest elsewhere and a second
// procfs. The test runs again in a child process with a mount namespace of
// its own (the mounts must not touch the machine's), which is then
// nodeboot's view.
func TestResolveAliases(t *testing.T) {
	requireRoot(t, "mounts need root")
	if os.Getenv("NODEBOOT_RESOLVE_INNER") == "" {
		exe, err := os.Executable()
		if err != nil {
			t.Fatal(err)
		}
		cmd := exec.Command(exe, "-test.run=^TestResolveAliases$", "-test.v")
		cmd.Env = append(os.Environ(), "NODEBOOT_RESOLVE_INNER=1")
		cmd.SysProcAttr = &syscall.SysProcAttr{Unshareflags: unix.CLONE_NEWNS, Pdeathsig: syscall.SIGKILL}
		out, err := cmd.CombinedOutput()
		var perr *os.PathError
		if errors.As(err, &perr) {
			// Not started at all (an emulated arch: qemu-user runs the test
			// binary, the kernel cannot exec it again).
			t.Skipf("cannot run the test binary again in a mount namespace of its own: %v", err)
		}
		if err != nil || !strings.Contains(string(out), "--- PASS: TestResolveAliases") {
			if strings.Contains(string(out), "--- SKIP") {
				t.Skipf("inner run skipped:\n%s", out)
			}
			t.Fatalf("inner run in a mount namespace of its own: %v\n%s", err, out)
		}
		return
	}
	if err := unix.Mount("", "/", "", unix.MS_REC|unix.MS_PRIVATE, ""); err != nil {
		t.Skipf("cannot make the mounts private: %v", err)
	}
	tr := newResolveTree(t)
	if err := unix.Mount(tr.G, tr.T+"/aux/b", "", unix.MS_BIND, ""); err != nil {
		t.Fatal(err)
	}
	if err := unix.Mount("proc", tr.T+"/aux/p", "proc", 0, ""); err != nil {
		t.Fatal(err)
	}
	if err := unix.Mount("/proc/sys", tr.T+"/aux/s", "", unix.MS_BIND, ""); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		for _, d := range []string{"b", "p", "s"} {
			unix.Unmount(tr.T+"/aux/"+d, unix.MNT_DETACH)
		}
	})
	v := startView(t, 0, "chdir "+tr.T)
	rs := newTestResolver(t, tr.rules(), v.pid)
	cases := []resolveCase{
		{name: "bind-of-guest", path: "{T}/aux/b/f", dirfd: -1, want: "canon {G}/f", host: "has {Tree}/f"},
		{name: "bind-of-guest-missing", path: "{T}/aux/b/new", dirfd: -1, want: "missing {G}/new", host: "lacks {Tree}/new"},
		{name: "second-procfs", path: "{T}/aux/p/sys/kernel/nodeboot-test", dirfd: -1,
			want: "missing /proc/sys/kernel/nodeboot-test", host: "lacks {T}/procsys"},
		{name: "bind-of-proc-sys", path: "{T}/aux/s/kernel/ostype", dirfd: -1, want: "canon /proc/sys/kernel/ostype"},
		{name: "primary-untouched", path: "{G}/f", dirfd: -1, want: "canon {G}/f", host: "has {Tree}/f"},
		{name: "elsewhere-untouched", path: "{H}/f", dirfd: -1, want: "canon {H}/f"},
	}
	for _, way := range []string{"fast", "text", "walker"} {
		t.Run(way, func(t *testing.T) {
			rs.noFast = way != "fast"
			rs.noText = way == "walker"
			runResolveCases(t, rs, v, tr, cases)
		})
	}
}
