//go:build !nointegration

package interceptor

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/nodeboot/nodeboot/interceptor/rules"

	"golang.org/x/sys/unix"
)

// Integration tests: real programs under the real tracer, real files. They
// are gated three ways: the nointegration build tag leaves them out, their
// names start with TestIntegration, and -short skips them.

func init() { haveIntegration = true }

// sysCase is one syscall made by testdata/c/sysc.c under the default rules
// of a fresh fakeTree (G=H, G/sub=H2, /proc/sys=PS, fstype H=fake).
type sysCase struct {
	name string
	// args are sysc's arguments; {T}, {G}, {H}, {H2}, {PS} are the tree's
	// paths. "-u UID" first runs the call as UID.
	args []string
	// root: the case needs euid 0 (chown, or -u to drop privileges).
	root  bool
	setup func(t *testing.T, tr *fakeTree)
	// want are sysc output values ({real}, {fake}: f_types); wantAny
	// accepts any of several values.
	want    map[string]string
	wantAny map[string][]string
	// check looks at the real files afterwards.
	check func(c fsCheck)
	// minKernel: an ENOSYS from a kernel older than this skips the case.
	minKernel [2]int
}

// hostListing is what a directory listing of H shows.
const hostListing = "both,dir-both,dir-host,edir-both,emptydir,hlink,lnk,only-host,perm,ro-host,sub"

// fdpathOK checks sysc's fdpath and fdid against want, the file its fd
// must be: the program reads the guest path that a host tree's file
// serves (reverse.go), so the text is compared with that, and the fd's
// identity with want's. It returns what was wanted, for messages.
func fdpathOK(rs rules.Rules, got map[string]string, want string) (string, bool) {
	guest := newMatcher(rs).unredirect(want)
	if got["fdpath"] != guest {
		return fmt.Sprintf("%q", guest), false
	}
	if guest != want {
		var st unix.Stat_t
		if err := unix.Stat(want, &st); err != nil || got["fdid"] != fmt.Sprintf("%d:%d", st.Dev, st.Ino) {
			return fmt.Sprintf("%q, the file %s (stat: %v)", guest, want, err), false
		}
	}
	return guest, true
}

func wantOK(kv ...string) map[string]string {
	m := map[string]string{"errno": "0"}
	for i := 0; i+1 < len(kv); i += 2 {
		m[kv[i]] = kv[i+1]
	}
	return m
}

func wantErrno(errno string, kv ...string) map[string]string {
	m := map[string]string{"errno": errno, "ret": "-1"}
	for i := 0; i+1 < len(kv); i += 2 {
		m[kv[i]] = kv[i+1]
	}
	return m
}

// needXattr skips when the test's filesystem has no user xattrs, and sets
// user.nb on H/both and G/both, and user.gonly on G/both.
func needXattr(t *testing.T, tr *fakeTree) {
	t.Helper()
	if err := unix.Setxattr(tr.H+"/both", "user.nb", []byte("host-x"), 0); err != nil {
		t.Skipf("needs user xattrs on %s: %v", tr.T, err)
	}
	for _, x := range []struct{ p, n, v string }{{tr.G + "/both", "user.nb", "guest-x"}, {tr.G + "/both", "user.gonly", "g"}} {
		if err := unix.Setxattr(x.p, x.n, []byte(x.v), 0); err != nil {
			t.Fatal(err)
		}
	}
}

// needReadOnlyMount bind-mounts G/romnt read-only (holding f).
func needReadOnlyMount(t *testing.T, tr *fakeTree) {
	t.Helper()
	dir := tr.G + "/romnt"
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(dir+"/f", []byte("on-ro-fs"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := unix.Mount(dir, dir, "", unix.MS_BIND, ""); err != nil {
		t.Skipf("needs mount to make a read-only bind mount: %v", err)
	}
	t.Cleanup(func() { unix.Unmount(dir, unix.MNT_DETACH) })
	if err := unix.Mount("", dir, "", unix.MS_REMOUNT|unix.MS_BIND|unix.MS_RDONLY, ""); err != nil {
		t.Skipf("needs mount to make a read-only bind mount: remount: %v", err)
	}
}

// linkOnlyGuest makes T/only-guest-alias, a hard link to G/only-guest.
func linkOnlyGuest(t *testing.T, tr *fakeTree) {
	t.Helper()
	if err := os.Link(tr.G+"/only-guest", tr.T+"/only-guest-alias"); err != nil {
		t.Fatal(err)
	}
}

func syscallCases(ngroupsMax string) []sysCase {
	const mt = "1000000000" // an mtime no file of the tree has
	return []sysCase{
		// open(2), the legacy form.
		{name: "open/redirected", args: []string{"open", "{G}/both", "r"},
			want: wantOK("data", "host-both", "fdpath", "{H}/both")},
		{name: "open/guest-only-uses-real", args: []string{"open", "{G}/only-guest", "r"},
			want: wantOK("data", "guest-only", "fdpath", "{G}/only-guest")},
		{name: "open/host-only", args: []string{"open", "{G}/only-host", "r"},
			want: wantOK("data", "host-only", "fdpath", "{H}/only-host")},
		{name: "open/neither-ENOENT", args: []string{"open", "{G}/nothing", "r"}, want: wantErrno("ENOENT")},
		{name: "open/create-below-host", args: []string{"open", "{G}/new", "wc", "created"},
			want:  wantOK("fdpath", "{H}/new", "wrote", "7"),
			check: func(c fsCheck) { c.file("{H}/new", "created"); c.missing("{G}/new") }},
		{name: "open/write-goes-to-host", args: []string{"open", "{G}/both", "wt", "XY"},
			want:  wantOK("fdpath", "{H}/both", "wrote", "2"),
			check: func(c fsCheck) { c.file("{H}/both", "XY"); c.file("{G}/both", "guest-both") }},
		{name: "open/excl-on-host-file-EEXIST", args: []string{"open", "{G}/only-host", "wcx"}, want: wantErrno("EEXIST"),
			check: func(c fsCheck) { c.file("{H}/only-host", "host-only"); c.missing("{G}/only-host") }},
		{name: "open/directory", args: []string{"open", "{G}/dir-both", "d"},
			want: wantOK("entries", "h-entry", "fdpath", "{H}/dir-both")},
		{name: "open/guest-itself", args: []string{"open", "{G}", "d"},
			want: wantOK("entries", hostListing, "fdpath", "{H}")},
		// H/only-host/ is a file with a slash: ENOTDIR (G/only-host/ would
		// be ENOENT; dropping the slash would open the file).
		{name: "open/trailing-slash-on-file-ENOTDIR", args: []string{"open", "{G}/only-host/", "r"}, want: wantErrno("ENOTDIR")},
		{name: "open/trailing-slash-on-dir", args: []string{"open", "{G}/dir-both/", "d"},
			want: wantOK("entries", "h-entry", "fdpath", "{H}/dir-both")},
		{name: "open/O_PATH", args: []string{"open", "{G}/both", "p"}, want: wantOK("fdpath", "{H}/both")},
		{name: "open/O_NOFOLLOW-on-host-symlink-ELOOP", args: []string{"open", "{G}/hlink", "n"}, want: wantErrno("ELOOP")},
		{name: "open/proc-sys-redirected", args: []string{"open", "/proc/sys/kernel/ostype", "r"},
			want: wantOK("data", escapeData(procsysOstype), "fdpath", "{PS}/kernel/ostype")},
		{name: "open/proc-sys-host-only", args: []string{"open", "/proc/sys/kernel/fake_only_host", "r"},
			want: wantOK("data", escapeData(procsysOnly))},
		{name: "open/proc-sys-real", args: []string{"open", "/proc/sys/kernel/ngroups_max", "r"},
			want: wantOK("data", escapeData(ngroupsMax), "fdpath", "/proc/sys/kernel/ngroups_max")},
		{name: "open/proc-sys-real-0444-EACCES", args: []string{"open", "/proc/sys/kernel/ngroups_max", "w", "1"},
			want: wantErrno("EACCES")},
		{name: "open/proc-sys-neither-ENOENT", args: []string{"open", "/proc/sys/kernel/nodeboot_missing", "r"},
			want: wantErrno("ENOENT")},
		{name: "open/nonroot-real-0444-EACCES", root: true, args: []string{"-u", "65534", "open", "{G}/ro", "w", "x"},
			want: wantErrno("EACCES"), check: func(c fsCheck) { c.file("{G}/ro", "read-only"); c.missing("{H}/ro") }},
		{name: "open/nonroot-host-0444-EACCES", root: true, args: []string{"-u", "65534", "open", "{G}/ro-host", "w", "x"},
			want: wantErrno("EACCES"), check: func(c fsCheck) { c.file("{H}/ro-host", "host-read-only") }},
		{name: "open/nonroot-host-0666-writable", root: true, args: []string{"-u", "65534", "open", "{G}/perm", "w", "np"},
			want:  wantOK("fdpath", "{H}/perm", "wrote", "2"),
			check: func(c fsCheck) { c.file("{H}/perm", "npst-perm"); c.file("{G}/perm", "guest-perm") }},
		{name: "open/read-only-mount-EROFS", root: true, setup: needReadOnlyMount,
			args: []string{"open", "{G}/romnt/f", "w", "x"}, want: wantErrno("EROFS"),
			check: func(c fsCheck) { c.file("{G}/romnt/f", "on-ro-fs") }},
		{name: "open/longest-guest-wins", args: []string{"open", "{G}/sub/f", "r"},
			want: wantOK("data", "host2-f", "fdpath", "{H2}/f")},
		// G/sub=H2 is the longest rule for G/sub/g; H2 has no g, so the
		// real path is used (H/sub/g of the shorter rule is not).
		{name: "open/longest-guest-no-fallback-to-shorter", args: []string{"open", "{G}/sub/g", "r"}, want: wantErrno("ENOENT")},
		{name: "open/lookalike-sibling-not-redirected", args: []string{"open", "{T}/guestX", "r"},
			want: wantOK("data", "real-guestX", "fdpath", "{T}/guestX")},
		{name: "open/proc-sysfoo-not-redirected", args: []string{"open", "/proc/sysfoo", "r"}, want: wantErrno("ENOENT")},
		{name: "open/outside-every-rule", args: []string{"open", "{T}/other", "r"},
			want: wantOK("data", "outside", "fdpath", "{T}/other")},

		{name: "openat/dirfd-relative", args: []string{"openat", "{T}", "guest/both", "r"},
			want: wantOK("data", "host-both", "fdpath", "{H}/both")},
		{name: "openat/absolute-ignores-dirfd", args: []string{"openat", "/proc", "{G}/both", "r"},
			want: wantOK("data", "host-both")},
		{name: "openat/cwd", args: []string{"openat", "cwd", "{G}/only-host", "r"}, want: wantOK("data", "host-only")},
		{name: "openat/dirfd-proc", args: []string{"openat", "/proc", "sys/kernel/ostype", "r"},
			want: wantOK("data", escapeData(procsysOstype))},
		{name: "openat/create-below-host", args: []string{"openat", "{T}", "guest/new", "wc", "made"},
			want: wantOK("fdpath", "{H}/new"), check: func(c fsCheck) { c.file("{H}/new", "made"); c.missing("{G}/new") }},
		{name: "openat/neither-ENOENT", args: []string{"openat", "{T}", "guest/nothing", "r"}, want: wantErrno("ENOENT")},
		{name: "openat/guest-only-uses-real", args: []string{"openat", "{T}", "guest/only-guest", "r"},
			want: wantOK("data", "guest-only")},

		{name: "openat2/dirfd-relative", minKernel: [2]int{5, 6}, args: []string{"openat2", "{T}", "guest/both", "r"},
			want: wantOK("data", "host-both", "fdpath", "{H}/both")},
		{name: "openat2/create-below-host", minKernel: [2]int{5, 6}, args: []string{"openat2", "cwd", "{G}/new", "wc", "made"},
			want: wantOK("fdpath", "{H}/new"), check: func(c fsCheck) { c.file("{H}/new", "made"); c.missing("{G}/new") }},
		{name: "openat2/neither-ENOENT", minKernel: [2]int{5, 6}, args: []string{"openat2", "cwd", "{G}/nothing", "r"},
			want: wantErrno("ENOENT")},

		{name: "creat/new-below-host", args: []string{"creat", "{G}/new", "made"}, want: wantOK("fdpath", "{H}/new"),
			check: func(c fsCheck) { c.file("{H}/new", "made"); c.missing("{G}/new") }},
		{name: "creat/truncates-host-file", args: []string{"creat", "{G}/both", "Z"},
			check: func(c fsCheck) { c.file("{H}/both", "Z"); c.file("{G}/both", "guest-both") }, want: wantOK()},

		{name: "stat/redirected", args: []string{"stat", "{G}/both"}, want: wantOK("ret", "0", "size", "9")},
		{name: "stat/guest-only", args: []string{"stat", "{G}/only-guest"}, want: wantOK("size", "10")},
		{name: "stat/host-only", args: []string{"stat", "{G}/only-host"}, want: wantOK("size", "9")},
		{name: "stat/follows-host-symlink-ENOENT", args: []string{"stat", "{G}/lnk"}, want: wantErrno("ENOENT")},
		{name: "stat/neither-ENOENT", args: []string{"stat", "{G}/nothing"}, want: wantErrno("ENOENT")},
		{name: "lstat/host-symlink", args: []string{"lstat", "{G}/lnk"}, want: wantOK("size", "11")},
		{name: "lstat/guest-only-symlink", args: []string{"lstat", "{G}/glink"}, want: wantOK("size", "17")},
		{name: "lstat/neither-ENOENT", args: []string{"lstat", "{G}/nothing"}, want: wantErrno("ENOENT")},
		{name: "newfstatat/dirfd-relative", args: []string{"newfstatat", "{T}", "guest/both", "0"}, want: wantOK("size", "9")},
		{name: "newfstatat/nofollow", args: []string{"newfstatat", "cwd", "{G}/lnk", "nofollow"}, want: wantOK("size", "11")},
		{name: "newfstatat/proc-sys", args: []string{"newfstatat", "/proc", "sys/kernel/ostype", "0"},
			want: wantOK("size", fmt.Sprint(len(procsysOstype)))},
		{name: "newfstatat/neither-ENOENT", args: []string{"newfstatat", "{T}", "guest/nothing", "0"}, want: wantErrno("ENOENT")},
		{name: "statx/dirfd-relative", args: []string{"statx", "{T}", "guest/both", "0"}, want: wantOK("size", "9")},
		{name: "statx/nofollow", args: []string{"statx", "cwd", "{G}/lnk", "nofollow"}, want: wantOK("size", "11")},
		{name: "statx/neither-ENOENT", args: []string{"statx", "cwd", "{G}/nothing", "0"}, want: wantErrno("ENOENT")},

		{name: "access/host-only", args: []string{"access", "{G}/only-host", "f"}, want: wantOK("ret", "0")},
		{name: "access/neither-ENOENT", args: []string{"access", "{G}/nothing", "f"}, want: wantErrno("ENOENT")},
		{name: "access/proc-sys-host-only", args: []string{"access", "/proc/sys/kernel/fake_only_host", "r"}, want: wantOK("ret", "0")},
		{name: "access/nonroot-host-0666", root: true, args: []string{"-u", "65534", "access", "{G}/perm", "w"}, want: wantOK("ret", "0")},
		{name: "access/nonroot-real-0444-EACCES", root: true, args: []string{"-u", "65534", "access", "{G}/ro", "w"}, want: wantErrno("EACCES")},
		{name: "faccessat/dirfd-relative", args: []string{"faccessat", "{T}", "guest/only-host", "f"}, want: wantOK("ret", "0")},
		{name: "faccessat/neither-ENOENT", args: []string{"faccessat", "{T}", "guest/nothing", "f"}, want: wantErrno("ENOENT")},
		{name: "faccessat2/eaccess", minKernel: [2]int{5, 8}, args: []string{"faccessat2", "cwd", "{G}/only-host", "f", "eaccess"},
			want: wantOK("ret", "0")},
		{name: "faccessat2/nonroot-host-0666", root: true, minKernel: [2]int{5, 8},
			args: []string{"-u", "65534", "faccessat2", "{T}", "guest/perm", "w", "0"}, want: wantOK("ret", "0")},
		{name: "faccessat2/neither-ENOENT", minKernel: [2]int{5, 8}, args: []string{"faccessat2", "{T}", "guest/nothing", "f", "0"},
			want: wantErrno("ENOENT")},

		{name: "readlink/host-symlink", args: []string{"readlink", "{G}/lnk"}, want: wantOK("link", "host-target")},
		{name: "readlink/guest-only-symlink", args: []string{"readlink", "{G}/glink"}, want: wantOK("link", "guest-only-target")},
		{name: "readlink/host-file-EINVAL", args: []string{"readlink", "{G}/only-host"}, want: wantErrno("EINVAL")},
		{name: "readlink/host-only-symlink", args: []string{"readlink", "{G}/hlink"}, want: wantOK("link", "host-only-target")},
		{name: "readlinkat/dirfd-relative", args: []string{"readlinkat", "{T}", "guest/lnk"}, want: wantOK("link", "host-target")},
		{name: "readlinkat/neither-ENOENT", args: []string{"readlinkat", "cwd", "{G}/nothing"}, want: wantErrno("ENOENT")},

		{name: "mkdir/creates-below-host", args: []string{"mkdir", "{G}/newdir"}, want: wantOK("ret", "0"),
			check: func(c fsCheck) { c.dir("{H}/newdir"); c.missing("{G}/newdir") }},
		{name: "mkdir/host-exists-EEXIST", args: []string{"mkdir", "{G}/dir-host"}, want: wantErrno("EEXIST"),
			check: func(c fsCheck) { c.missing("{G}/dir-host") }},
		{name: "mkdir/no-parent-ENOENT", args: []string{"mkdir", "{G}/nothing/child"}, want: wantErrno("ENOENT"),
			check: func(c fsCheck) { c.missing("{H}/nothing"); c.missing("{G}/nothing") }},
		{name: "mkdirat/dirfd-relative", args: []string{"mkdirat", "{T}", "guest/newdir"}, want: wantOK("ret", "0"),
			check: func(c fsCheck) { c.dir("{H}/newdir"); c.missing("{G}/newdir") }},
		{name: "mknod/fifo-below-host", args: []string{"mknod", "{G}/fifo"}, want: wantOK("ret", "0"),
			check: func(c fsCheck) { c.fifo("{H}/fifo"); c.missing("{G}/fifo") }},
		{name: "mknodat/dirfd-relative", args: []string{"mknodat", "{T}", "guest/fifo"}, want: wantOK("ret", "0"),
			check: func(c fsCheck) { c.fifo("{H}/fifo"); c.missing("{G}/fifo") }},

		{name: "rmdir/host-dir", args: []string{"rmdir", "{G}/emptydir"}, want: wantOK("ret", "0"),
			check: func(c fsCheck) { c.missing("{H}/emptydir") }},
		// G/edir-both is empty, H/edir-both is not: the host's answer.
		{name: "rmdir/host-not-empty-ENOTEMPTY", args: []string{"rmdir", "{G}/edir-both"}, want: wantErrno("ENOTEMPTY"),
			check: func(c fsCheck) { c.dir("{G}/edir-both"); c.file("{H}/edir-both/h-entry", "h") }},
		{name: "unlink/host-file", args: []string{"unlink", "{G}/both"}, want: wantOK("ret", "0"),
			check: func(c fsCheck) { c.missing("{H}/both"); c.file("{G}/both", "guest-both") }},
		// Removing a file only the real side has would change the real
		// files: refused.
		{name: "unlink/guest-only-EACCES", args: []string{"unlink", "{G}/only-guest"}, want: wantErrno("EACCES"),
			check: func(c fsCheck) { c.file("{G}/only-guest", "guest-only"); c.missing("{H}/only-guest") }},
		{name: "unlink/neither-ENOENT", args: []string{"unlink", "{G}/nothing"}, want: wantErrno("ENOENT")},
		{name: "unlinkat/dirfd-relative", args: []string{"unlinkat", "{T}", "guest/both", "0"}, want: wantOK("ret", "0"),
			check: func(c fsCheck) { c.missing("{H}/both"); c.file("{G}/both", "guest-both") }},
		{name: "unlinkat/removedir", args: []string{"unlinkat", "{T}", "guest/emptydir", "removedir"}, want: wantOK("ret", "0"),
			check: func(c fsCheck) { c.missing("{H}/emptydir") }},

		{name: "rename/inside-host", args: []string{"rename", "{G}/both", "{G}/renamed"}, want: wantOK("ret", "0"),
			check: func(c fsCheck) {
				c.file("{H}/renamed", "host-both")
				c.missing("{H}/both")
				c.file("{G}/both", "guest-both")
				c.missing("{G}/renamed")
			}},
		{name: "rename/out-of-guest", args: []string{"rename", "{G}/both", "{T}/out"}, want: wantOK("ret", "0"),
			check: func(c fsCheck) {
				c.file("{T}/out", "host-both")
				c.missing("{H}/both")
				c.file("{G}/both", "guest-both")
			}},
		{name: "rename/into-guest-creates-below-host", args: []string{"rename", "{T}/other", "{G}/moved"}, want: wantOK("ret", "0"),
			check: func(c fsCheck) { c.file("{H}/moved", "outside"); c.missing("{G}/moved"); c.missing("{T}/other") }},
		{name: "rename/neither-ENOENT", args: []string{"rename", "{G}/nothing", "{G}/renamed"}, want: wantErrno("ENOENT"),
			check: func(c fsCheck) { c.missing("{H}/renamed"); c.missing("{G}/renamed") }},
		{name: "renameat/dirfd-relative", args: []string{"renameat", "{T}", "guest/both", "{T}", "guest/renamed"}, want: wantOK("ret", "0"),
			check: func(c fsCheck) { c.file("{H}/renamed", "host-both"); c.missing("{H}/both"); c.missing("{G}/renamed") }},
		{name: "renameat2/noreplace-host-target-EEXIST", args: []string{"renameat2", "{T}", "guest/both", "{T}", "guest/only-host", "noreplace"},
			want:  wantErrno("EEXIST"),
			check: func(c fsCheck) { c.file("{H}/both", "host-both"); c.file("{H}/only-host", "host-only") }},
		{name: "renameat2/exchange", args: []string{"renameat2", "cwd", "{G}/both", "cwd", "{G}/only-host", "exchange"},
			want: wantOK("ret", "0"),
			check: func(c fsCheck) {
				c.file("{H}/both", "host-only")
				c.file("{H}/only-host", "host-both")
				c.file("{G}/both", "guest-both")
			}},

		{name: "link/inside-host", args: []string{"link", "{G}/both", "{G}/linked"}, want: wantOK("ret", "0"),
			check: func(c fsCheck) { c.file("{H}/linked", "host-both"); c.nlink("{H}/both", 2); c.missing("{G}/linked") }},
		{name: "linkat/dirfd-relative", args: []string{"linkat", "{T}", "guest/both", "{T}", "guest/linked", "0"}, want: wantOK("ret", "0"),
			check: func(c fsCheck) { c.file("{H}/linked", "host-both"); c.nlink("{H}/both", 2); c.missing("{G}/linked") }},
		{name: "link/host-target-exists-EEXIST", args: []string{"link", "{T}/other", "{G}/only-host"}, want: wantErrno("EEXIST")},

		{name: "symlink/below-host", args: []string{"symlink", "some/target", "{G}/newsym"}, want: wantOK("ret", "0"),
			check: func(c fsCheck) { c.link("{H}/newsym", "some/target"); c.missing("{G}/newsym") }},
		// The target is the link's content, never a path to redirect.
		{name: "symlink/target-not-rewritten", args: []string{"symlink", "{G}/both", "{G}/newsym"}, want: wantOK("ret", "0"),
			check: func(c fsCheck) { c.link("{H}/newsym", c.tr.G+"/both") }},
		{name: "symlinkat/dirfd-relative", args: []string{"symlinkat", "tgt", "{T}", "guest/newsym"}, want: wantOK("ret", "0"),
			check: func(c fsCheck) { c.link("{H}/newsym", "tgt"); c.missing("{G}/newsym") }},

		{name: "truncate/host-file", args: []string{"truncate", "{G}/both", "3"}, want: wantOK("ret", "0"),
			check: func(c fsCheck) { c.file("{H}/both", "hos"); c.file("{G}/both", "guest-both") }},
		{name: "truncate/neither-ENOENT", args: []string{"truncate", "{G}/nothing", "0"}, want: wantErrno("ENOENT"),
			check: func(c fsCheck) { c.missing("{H}/nothing") }},

		{name: "chmod/host-file", args: []string{"chmod", "{G}/both", "600"}, want: wantOK("ret", "0"),
			check: func(c fsCheck) { c.mode("{H}/both", 0o600); c.mode("{G}/both", 0o644) }},
		{name: "fchmodat/dirfd-relative", args: []string{"fchmodat", "{T}", "guest/both", "640"}, want: wantOK("ret", "0"),
			check: func(c fsCheck) { c.mode("{H}/both", 0o640); c.mode("{G}/both", 0o644) }},
		{name: "fchmodat2/host-file", minKernel: [2]int{6, 6}, args: []string{"fchmodat2", "cwd", "{G}/both", "604", "0"},
			want: wantOK("ret", "0"), check: func(c fsCheck) { c.mode("{H}/both", 0o604); c.mode("{G}/both", 0o644) }},
		{name: "chmod/neither-ENOENT", args: []string{"chmod", "{G}/nothing", "600"}, want: wantErrno("ENOENT")},

		{name: "chown/host-file", root: true, args: []string{"chown", "{G}/both", "1234", "5678"}, want: wantOK("ret", "0"),
			check: func(c fsCheck) { c.owner("{H}/both", 1234, 5678); c.owner("{G}/both", 0, 0) }},
		{name: "lchown/host-symlink", root: true, args: []string{"lchown", "{G}/lnk", "1234", "5678"}, want: wantOK("ret", "0"),
			check: func(c fsCheck) { c.owner("{H}/lnk", 1234, 5678); c.owner("{G}/lnk", 0, 0) }},
		{name: "fchownat/nofollow", root: true, args: []string{"fchownat", "{T}", "guest/lnk", "1234", "5678", "nofollow"},
			want: wantOK("ret", "0"), check: func(c fsCheck) { c.owner("{H}/lnk", 1234, 5678); c.owner("{G}/lnk", 0, 0) }},

		{name: "utimensat/host-file", args: []string{"utimensat", "cwd", "{G}/both", mt, "0"}, want: wantOK("ret", "0"),
			check: func(c fsCheck) { c.mtime("{H}/both", 1e9, true); c.mtime("{G}/both", 1e9, false) }},
		{name: "utimensat/nofollow", args: []string{"utimensat", "{T}", "guest/lnk", mt, "nofollow"}, want: wantOK("ret", "0"),
			check: func(c fsCheck) { c.mtime("{H}/lnk", 1e9, true); c.mtime("{G}/lnk", 1e9, false) }},
		{name: "utimensat/neither-ENOENT", args: []string{"utimensat", "cwd", "{G}/nothing", mt, "0"}, want: wantErrno("ENOENT")},
		{name: "utime/host-file", args: []string{"utime", "{G}/both", mt}, want: wantOK("ret", "0"),
			check: func(c fsCheck) { c.mtime("{H}/both", 1e9, true); c.mtime("{G}/both", 1e9, false) }},
		{name: "utimes/host-file", args: []string{"utimes", "{G}/both", mt}, want: wantOK("ret", "0"),
			check: func(c fsCheck) { c.mtime("{H}/both", 1e9, true); c.mtime("{G}/both", 1e9, false) }},
		{name: "futimesat/dirfd-relative", args: []string{"futimesat", "{T}", "guest/both", mt}, want: wantOK("ret", "0"),
			check: func(c fsCheck) { c.mtime("{H}/both", 1e9, true); c.mtime("{G}/both", 1e9, false) }},

		{name: "setxattr/host-file", setup: needXattr, args: []string{"setxattr", "{G}/both", "user.new", "v1"}, want: wantOK("ret", "0"),
			check: func(c fsCheck) { c.xattr("{H}/both", "user.new", "v1"); c.xattr("{G}/both", "user.new", "") }},
		{name: "lsetxattr/host-file", setup: needXattr, args: []string{"lsetxattr", "{G}/both", "user.new", "v1"}, want: wantOK("ret", "0"),
			check: func(c fsCheck) { c.xattr("{H}/both", "user.new", "v1"); c.xattr("{G}/both", "user.new", "") }},
		{name: "getxattr/host-file", setup: needXattr, args: []string{"getxattr", "{G}/both", "user.nb"}, want: wantOK("value", "host-x")},
		{name: "lgetxattr/host-file", setup: needXattr, args: []string{"lgetxattr", "{G}/both", "user.nb"}, want: wantOK("value", "host-x")},
		{name: "getxattr/guest-only-ENODATA", setup: needXattr, args: []string{"getxattr", "{G}/only-guest", "user.nb"},
			want: wantErrno("ENODATA")},
		{name: "listxattr/host-file", setup: needXattr, args: []string{"listxattr", "{G}/both"}, want: wantOK("list", "user.nb")},
		{name: "llistxattr/host-file", setup: needXattr, args: []string{"llistxattr", "{G}/both"}, want: wantOK("list", "user.nb")},
		{name: "removexattr/host-file", setup: needXattr, args: []string{"removexattr", "{G}/both", "user.nb"}, want: wantOK("ret", "0"),
			check: func(c fsCheck) { c.xattr("{H}/both", "user.nb", ""); c.xattr("{G}/both", "user.nb", "guest-x") }},
		{name: "lremovexattr/host-file", setup: needXattr, args: []string{"lremovexattr", "{G}/both", "user.nb"}, want: wantOK("ret", "0"),
			check: func(c fsCheck) { c.xattr("{H}/both", "user.nb", ""); c.xattr("{G}/both", "user.nb", "guest-x") }},
		{name: "getxattr/neither-ENOENT", setup: needXattr, args: []string{"getxattr", "{G}/nothing", "user.nb"}, want: wantErrno("ENOENT")},
		{name: "setxattrat/dirfd-relative", setup: needXattr, minKernel: [2]int{6, 13},
			args: []string{"setxattrat", "{T}", "guest/both", "user.new", "v2"}, want: wantOK("ret", "0"),
			check: func(c fsCheck) { c.xattr("{H}/both", "user.new", "v2"); c.xattr("{G}/both", "user.new", "") }},
		{name: "getxattrat/dirfd-relative", setup: needXattr, minKernel: [2]int{6, 13},
			args: []string{"getxattrat", "{T}", "guest/both", "user.nb"}, want: wantOK("value", "host-x")},
		{name: "listxattrat/dirfd-relative", setup: needXattr, minKernel: [2]int{6, 13},
			args: []string{"listxattrat", "{T}", "guest/both"}, want: wantOK("list", "user.nb")},
		{name: "removexattrat/dirfd-relative", setup: needXattr, minKernel: [2]int{6, 13},
			args: []string{"removexattrat", "{T}", "guest/both", "user.nb"}, want: wantOK("ret", "0"),
			check: func(c fsCheck) { c.xattr("{H}/both", "user.nb", ""); c.xattr("{G}/both", "user.nb", "guest-x") }},

		// The watch is on the host file: appending to H/both (a path no
		// rule covers) shows up as IN_MODIFY.
		{name: "inotify_add_watch/host-file", args: []string{"inotify_add_watch", "{G}/both", "{H}/both"},
			want: wantOK("modify", "1")},
		// The watch is on the real file; it is changed through a hard link
		// no rule covers (a write through G would be copied up).
		{name: "inotify_add_watch/guest-only-uses-real", setup: linkOnlyGuest,
			args: []string{"inotify_add_watch", "{G}/only-guest", "{T}/only-guest-alias"}, want: wantOK("modify", "1")},
		{name: "inotify_add_watch/neither-ENOENT", args: []string{"inotify_add_watch", "{G}/nothing"}, want: wantErrno("ENOENT")},

		// After chdir into a redirected directory the process is in the
		// host directory: relative opens find the host's files.
		{name: "chdir/host-dir", args: []string{"chdir", "{G}/dir-host", "f"},
			// getcwd names the guest directory the host's serves
			// (reverse.go).
			want: wantOK("ret", "0", "relerrno", "0", "data", "in-host-dir", "fdpath", "{H}/dir-host/f", "cwd", "{G}/dir-host")},
		{name: "chdir/then-relative-into-guest", args: []string{"chdir", "{T}", "guest/both"},
			want: wantOK("ret", "0", "cwd", "{T}", "relerrno", "0", "data", "host-both")},
		{name: "chdir/neither-ENOENT", args: []string{"chdir", "{G}/nothing"}, want: wantErrno("ENOENT")},

		{name: "statfs/path-rule-after-redirect", args: []string{"statfs", "{G}/both"}, want: wantOK("ftype", "{fake}")},
		{name: "statfs/guest-only-real-type", args: []string{"statfs", "{G}/only-guest"}, want: wantOK("ftype", "{real}")},
		{name: "statfs/proc-sys-redirected-reports-host-fs", args: []string{"statfs", "/proc/sys/kernel/ostype"},
			want: wantOK("ftype", "{real}")},
		{name: "statfs/neither-ENOENT", args: []string{"statfs", "{G}/nothing"}, want: wantErrno("ENOENT")},
		{name: "fstatfs/path-rule-after-redirect", args: []string{"fstatfs", "{G}/both"}, want: wantOK("fdpath", "{H}/both", "ftype", "{fake}")},
		{name: "fstatfs/O_PATH-fd", args: []string{"fstatfs", "{G}/both", "p"}, want: wantOK("ftype", "{fake}")},
		{name: "fstatfs/guest-only-real-type", args: []string{"fstatfs", "{G}/only-guest"}, want: wantOK("ftype", "{real}")},
	}
}

// TestIntegrationSyscalls makes every syscall of the table through
// redirected paths, in each mode, and checks what the call returned and
// what it did to the real files; then that both modes printed the same.
func TestIntegrationSyscalls(t *testing.T) {
	requireIntegration(t)
	sysc := traceeBin(t, "sysc")
	ngroups, err := os.ReadFile("/proc/sys/kernel/ngroups_max")
	if err != nil {
		t.Skipf("needs /proc/sys/kernel/ngroups_max: %v", err)
	}
	cases := syscallCases(string(ngroups))
	seen := map[string]bool{}
	for _, c := range cases {
		if seen[c.name] {
			t.Fatalf("duplicate case name %q", c.name)
		}
		seen[c.name] = true
	}

	outputs := map[string]map[Mode]string{} // case -> mode -> normalised output
	for _, mode := range testModes {
		t.Run(mode.String(), func(t *testing.T) {
			for _, c := range cases {
				t.Run(c.name, func(t *testing.T) {
					out := runSysCase(t, sysc, mode, c)
					if outputs[c.name] == nil {
						outputs[c.name] = map[Mode]string{}
					}
					outputs[c.name][mode] = out
				})
			}
		})
	}

	t.Run("ptrace-same-as-seccomp", func(t *testing.T) {
		names := make([]string, 0, len(outputs))
		for n := range outputs {
			names = append(names, n)
		}
		sort.Strings(names)
		for _, n := range names {
			a, okA := outputs[n][ModeSeccomp]
			b, okB := outputs[n][ModePtrace]
			if okA && okB && a != b {
				t.Errorf("%s: output differs between modes\nseccomp:\n%s\nptrace:\n%s", n, indentOutput(a), indentOutput(b))
			}
		}
	})
}

// runSysCase runs one case and returns its output with the tree's paths
// replaced by placeholders and run-dependent values (inode numbers,
// mtimes) dropped.
func runSysCase(t *testing.T, sysc string, mode Mode, c sysCase) string {
	t.Helper()
	if c.root {
		requireRoot(t, "this case uses chown, setuid or mount")
	}
	tr := newFakeTree(t)
	if c.setup != nil {
		c.setup(t, tr)
	}
	args := tr.expandAll(c.args)
	cfg := Config{
		Path:  sysc,
		Args:  append([]string{"sysc"}, args...),
		Dir:   tr.T,
		Rules: tr.rules(),
		Mode:  mode,
	}
	ctx := fmt.Sprintf("%s [%v] sysc %s", c.name, mode, strings.Join(args, " "))
	r := runTraced(t, cfg)
	got := parseKV(r.stdout)
	if r.exit.Code == 2 && got["unsupported"] == "1" {
		t.Skipf("%s: the syscall does not exist on this arch", ctx)
	}
	if r.exit != (Exit{}) || r.waitErr != nil {
		t.Fatalf("%s: sysc did not finish normally\n%s", ctx, r.output())
	}
	if got["errno"] == "ENOSYS" && c.minKernel != [2]int{} && !testKernelAtLeast(c.minKernel[0], c.minKernel[1]) {
		t.Skipf("%s: ENOSYS: the kernel is older than %d.%d", ctx, c.minKernel[0], c.minKernel[1])
	}
	keys := make([]string, 0, len(c.want))
	for k := range c.want {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		want := tr.expand(c.want[k])
		if k == "fdpath" {
			if w, ok := fdpathOK(cfg.Rules, got, want); !ok {
				t.Errorf("%s: fdpath = %q (fdid %s), want %s\n%s", ctx, got[k], got["fdid"], w, r.output())
			}
			continue
		}
		if g, present := got[k]; !present {
			t.Errorf("%s: %s missing from the output, want %q\n%s", ctx, k, want, r.output())
		} else if g != want {
			t.Errorf("%s: %s = %q, want %q\n%s", ctx, k, g, want, r.output())
		}
	}
	for k, alts := range c.wantAny {
		match := false
		var exp []string
		for _, a := range alts {
			exp = append(exp, tr.expand(a))
			if got[k] == tr.expand(a) {
				match = true
			}
		}
		if !match {
			t.Errorf("%s: %s = %q, want one of %q\n%s", ctx, k, got[k], exp, r.output())
		}
	}
	if c.want["errno"] == "0" && got["errno"] == "0" {
		if v, ok := got["ret"]; ok && strings.HasPrefix(v, "-") {
			t.Errorf("%s: ret = %s with errno 0", ctx, v)
		}
	}
	if c.check != nil {
		c.check(fsCheck{t: t, tr: tr, ctx: ctx})
	}
	var norm []string
	for _, line := range strings.Split(tr.unexpand(r.stdout), "\n") {
		if strings.HasPrefix(line, "ino=") || strings.HasPrefix(line, "mtime=") || strings.HasPrefix(line, "fdid=") {
			continue
		}
		norm = append(norm, line)
	}
	return strings.Join(norm, "\n")
}

// relCase is a cwd- or dirfd-relative, or unclean, path.
type relCase struct {
	name string
	dir  string   // working directory of the command ({T}... expanded)
	args []string // sysc arguments
	want map[string]string
}

// TestIntegrationRelativePaths resolves paths the way the kernel does:
// relative to the cwd or to a dirfd, with ".", ".." and "//", and with
// names that merely start like a guest path.
func TestIntegrationRelativePaths(t *testing.T) {
	requireIntegration(t)
	sysc := traceeBin(t, "sysc")
	ostype := escapeData(procsysOstype)
	cases := []relCase{
		{name: "dirfd-proc", args: []string{"openat", "/proc", "sys/kernel/ostype", "r"}, want: wantOK("data", ostype)},
		{name: "dirfd-proc-real-file", args: []string{"openat", "/proc", "sys/kernel/ngroups_max", "r"},
			want: wantOK("fdpath", "/proc/sys/kernel/ngroups_max")},
		{name: "cwd-proc", dir: "/proc", args: []string{"open", "sys/kernel/ostype", "r"}, want: wantOK("data", ostype)},
		{name: "cwd-proc-openat", dir: "/proc", args: []string{"openat", "cwd", "sys/kernel/ostype", "r"}, want: wantOK("data", ostype)},
		{name: "cwd-root", dir: "/", args: []string{"open", "proc/sys/kernel/ostype", "r"}, want: wantOK("data", ostype)},
		{name: "cwd-below-guest", dir: "/proc/sys/kernel", args: []string{"open", "ostype", "r"}, want: wantOK("data", ostype)},
		{name: "cwd-below-guest-real-file", dir: "/proc/sys/kernel", args: []string{"open", "ngroups_max", "r"},
			want: wantOK("fdpath", "/proc/sys/kernel/ngroups_max")},
		{name: "cwd-below-guest-dotdot", dir: "/proc/sys/kernel", args: []string{"open", "../kernel/./ostype", "r"}, want: wantOK("data", ostype)},
		{name: "dot-and-dotdot", args: []string{"open", "/proc//sys/./kernel/../kernel/ostype", "r"}, want: wantOK("data", ostype)},
		{name: "leading-double-slash", args: []string{"open", "//proc/sys/kernel/ostype", "r"}, want: wantOK("data", ostype)},
		{name: "dotdot-above-root", args: []string{"open", "/../../proc/sys/kernel/ostype", "r"}, want: wantOK("data", ostype)},
		{name: "dotdot-out-of-guest", args: []string{"open", "/proc/sys/../self/comm", "r"}, want: wantOK("data", `sysc\n`)},
		{name: "cwd-guest", dir: "{G}", args: []string{"open", "both", "r"}, want: wantOK("data", "host-both", "fdpath", "{H}/both")},
		{name: "cwd-guest-subdir-dotdot", dir: "{G}/dir-both", args: []string{"open", "../both", "r"}, want: wantOK("data", "host-both")},
		{name: "cwd-parent", dir: "{T}", args: []string{"open", "guest/both", "r"}, want: wantOK("data", "host-both")},
		{name: "cwd-parent-dot-slashes", dir: "{T}", args: []string{"open", "./guest//./both", "r"}, want: wantOK("data", "host-both")},
		{name: "cwd-parent-through-dotdot", dir: "{T}", args: []string{"open", "guest/../guest/both", "r"}, want: wantOK("data", "host-both")},
		{name: "dirfd-parent-dotdot", args: []string{"openat", "{G}/../host2", "../guest/both", "r"}, want: wantOK("data", "host-both")},
		{name: "cwd-parent-create", dir: "{T}", args: []string{"open", "guest/new", "wc", "x"}, want: wantOK("fdpath", "{H}/new")},
		{name: "cwd-outside", dir: "{T}", args: []string{"open", "other", "r"}, want: wantOK("data", "outside")},
		{name: "lookalike-sibling", dir: "{T}", args: []string{"open", "guestX", "r"}, want: wantOK("data", "real-guestX")},
		{name: "lookalike-sibling-absolute", args: []string{"open", "{T}/guestX", "r"}, want: wantOK("data", "real-guestX")},
		{name: "lookalike-proc-sysfoo", args: []string{"open", "/proc/sysfoo", "r"}, want: wantErrno("ENOENT")},
		{name: "lookalike-proc-sysfoo-relative", dir: "/proc", args: []string{"open", "sysfoo", "r"}, want: wantErrno("ENOENT")},
		{name: "trailing-slash-file-ENOTDIR", args: []string{"open", "/proc/sys/kernel/ostype/", "r"}, want: wantErrno("ENOTDIR")},
	}
	for _, mode := range testModes {
		t.Run(mode.String(), func(t *testing.T) {
			for _, c := range cases {
				t.Run(c.name, func(t *testing.T) {
					tr := newFakeTree(t)
					args := tr.expandAll(c.args)
					cfg := Config{Path: sysc, Args: append([]string{"sysc"}, args...), Dir: tr.expand(c.dir), Rules: tr.rules(), Mode: mode}
					if cfg.Dir == "" {
						cfg.Dir = tr.T
					}
					ctx := fmt.Sprintf("%s [%v] sysc %s (cwd %s)", c.name, mode, strings.Join(args, " "), cfg.Dir)
					r := runTraced(t, cfg)
					if r.exit != (Exit{}) {
						t.Fatalf("%s: sysc did not finish normally\n%s", ctx, r.output())
					}
					got := parseKV(r.stdout)
					for k, w := range c.want {
						w = tr.expand(w)
						if k == "fdpath" {
							if w, ok := fdpathOK(cfg.Rules, got, w); !ok {
								t.Errorf("%s: fdpath = %q (fdid %s), want %s\n%s", ctx, got[k], got["fdid"], w, r.output())
							}
							continue
						}
						if got[k] != w {
							t.Errorf("%s: %s = %q, want %q\n%s", ctx, k, got[k], w, r.output())
						}
					}
				})
			}
		})
	}
	// Also with a rule whose guest is a prefix by letters of an existing
	// directory's name: T/xx/a must not cover T/xx/ab.
	t.Run("lookalike-rule", func(t *testing.T) {
		for _, mode := range testModes {
			tr := newFakeTree(t)
			for p, c := range map[string]string{"xx/ab": "real-ab", "hh/f": "hh-f", "hhb": "WRONG: xx/ab redirected to hh+b"} {
				if err := writeTestFile(filepath.Join(tr.T, p), c); err != nil {
					t.Fatal(err)
				}
			}
			rs := rules.Rules{Redirects: []rules.Redirect{{Guest: tr.T + "/xx/a", Host: tr.T + "/hh"}}}
			for _, x := range []struct{ path, want string }{{"{T}/xx/ab", "real-ab"}, {"{T}/xx/a/f", "hh-f"}} {
				p := tr.expand(x.path)
				r := runTraced(t, Config{Path: sysc, Args: []string{"sysc", "open", p, "r"}, Rules: rs, Mode: mode})
				if got := parseKV(r.stdout)["data"]; got != x.want {
					t.Errorf("[%v] rule %s=%s: open %s read %q, want %q\n%s", mode, rs.Redirects[0].Guest, rs.Redirects[0].Host, p, got, x.want, r.output())
				}
			}
		}
	})
}

func writeTestFile(p, content string) error {
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return err
	}
	return os.WriteFile(p, []byte(content), 0o644)
}
