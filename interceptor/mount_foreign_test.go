package interceptor

import (
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strconv"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/nodeboot/nodeboot/interceptor/rules"
)

// TestForeignMountRoot checks mountRoot for a thread in a mount namespace
// of its own: the namespace's table is kept between lookups, read again
// after a mount or unmount there, and closed when unused.
func TestForeignMountRoot(t *testing.T) {
	requireRoot(t, "mounts in another mount namespace need CAP_SYS_ADMIN")
	nsenter, err := exec.LookPath("nsenter")
	if err != nil {
		t.Skipf("needs nsenter (util-linux): %v", err)
	}
	dir := t.TempDir()
	for _, d := range []string{"src/a", "src/b", "at1", "at2"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	// The helper moves its root to dir later (after "pause"), as runc's
	// pivot_root moves a container's root after its first lookups.
	v := startView(t, unix.CLONE_NEWNS, "private", "pause", "bind "+dir+" "+dir, "pivot "+dir, "bind /src/a /at1")
	inNS := func(args ...string) {
		t.Helper()
		full := append([]string{"-t", strconv.Itoa(v.pid), "-m", "--"}, args...)
		if out, err := exec.Command(nsenter, full...).CombinedOutput(); err != nil {
			t.Fatalf("nsenter %q: %v: %s", args, err, out)
		}
	}
	// mountAt finds the helper's mount at point: its id and root.
	mountAt := func(point string) (uint64, string, bool) {
		t.Helper()
		for _, m := range readMountinfo("/proc/" + strconv.Itoa(v.pid) + "/mountinfo") {
			if m.point == point {
				return m.id, m.root, true
			}
		}
		return 0, "", false
	}
	rs := newTestResolver(t, rules.Rules{}, v.pid)
	ns, ok := rs.mountNSOf(v.pid)
	if !ok || ns == rs.ours().mntNS {
		t.Fatalf("helper's mount namespace %d (ok %v), nodeboot's %d: want another", ns, ok, rs.ours().mntNS)
	}

	inNS("mount", "--bind", filepath.Join(dir, "src/a"), filepath.Join(dir, "at1"))
	id1, root1, ok := mountAt(filepath.Join(dir, "at1"))
	if !ok || filepath.Base(root1) != "a" {
		t.Fatalf("bind mount at at1 not in the helper's table (id %d, root %q)", id1, root1)
	}
	if got, ok := rs.mountRoot(id1, v.pid); !ok || got != root1 {
		t.Fatalf("mountRoot(%d) = %q, %v; want %q", id1, got, ok, root1)
	}
	key, ok := rs.viewKeyOf(v.pid, ns)
	if !ok {
		t.Fatalf("no view key for the helper")
	}
	kept := rs.foreign.byNS[key]
	if kept == nil {
		t.Fatalf("no table kept for namespace %d", ns)
	}
	before := reflect.ValueOf(kept.roots).Pointer()
	if got, ok := rs.mountRoot(id1, v.pid); !ok || got != root1 {
		t.Fatalf("second mountRoot(%d) = %q, %v; want %q", id1, got, ok, root1)
	}
	if reflect.ValueOf(kept.roots).Pointer() != before {
		t.Errorf("the table was read again although nothing was mounted")
	}

	// A mount made since: the kept table must not hide it.
	inNS("mount", "--bind", filepath.Join(dir, "src/b"), filepath.Join(dir, "at2"))
	id2, root2, ok := mountAt(filepath.Join(dir, "at2"))
	if !ok || filepath.Base(root2) != "b" {
		t.Fatalf("bind mount at at2 not in the helper's table (id %d, root %q)", id2, root2)
	}
	if got, ok := rs.mountRoot(id2, v.pid); !ok || got != root2 {
		t.Fatalf("mountRoot(%d) after a new mount = %q, %v; want %q", id2, got, ok, root2)
	}
	// An unmounted one is gone (its id is nowhere).
	inNS("umount", filepath.Join(dir, "at1"))
	if got, ok := rs.mountRoot(id1, v.pid); ok {
		t.Errorf("mountRoot(%d) after its unmount = %q; want not found", id1, got)
	}

	// The helper's root moves to dir with runc's pivot_root, and the old
	// root is detached: a mountinfo file opened before lists none of the
	// mounts made since (they are out of its reader's root), so the
	// table kept for the old root must not answer for the new one.
	v.next()
	id3, root3, ok := mountAt("/at1")
	if !ok {
		t.Fatalf("bind mount at /at1 not in the helper's table after its pivot_root")
	}
	if got, ok := rs.mountRoot(id3, v.pid); !ok || got != root3 {
		t.Fatalf("mountRoot(%d) after the helper's pivot_root = %q, %v; want %q", id3, got, ok, root3)
	}
	if len(rs.foreign.byNS) != 2 {
		t.Errorf("%d tables kept; want 2 (the namespace from the old root and from the new)", len(rs.foreign.byNS))
	}

	// Unused tables are closed at the next lookup.
	rs.foreign.expire(time.Now().Add(2 * foreignMountsKeep))
	if len(rs.foreign.byNS) != 0 {
		t.Errorf("%d tables kept after %v unused; want none", len(rs.foreign.byNS), 2*foreignMountsKeep)
	}
	if _, err := unix.FcntlInt(uintptr(kept.fd), unix.F_GETFD, 0); err == nil {
		// The number may have been reused by another open: only a
		// mountinfo file of the helper would be wrong.
		if p, _ := os.Readlink("/proc/self/fd/" + strconv.Itoa(kept.fd)); p == "/proc/"+strconv.Itoa(v.pid)+"/mountinfo" {
			t.Errorf("kept fd %d still open after expiry", kept.fd)
		}
	}
}
