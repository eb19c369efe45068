// Command cgroupfd does what runc's cgroup code does with its root handle
// (libcontainer/cgroups/file.go, now opencontainers/cgroups): it opens DIR
// with openat2(O_DIRECTORY|O_PATH|O_CLOEXEC), checks that fstatfs says
// cgroup2 (an fstype rule makes it so), opens FILE relative to the handle
// with openat2 and runc's RESOLVE flags, and reads the handle's
// /proc/thread-self/fd/N back with os.Readlink, whose buffer starts at 128
// bytes and doubles while the answer fills it. runc reads the link only
// after an openat2 relative to the handle failed, to say whether the
// handle still names /sys/fs/cgroup ("cgroupRootHandle N unexpectedly
// opened to X != /sys/fs/cgroup: <the openat2 error>"; newer versions then
// open the handle again); this program always reads it.
//
//	cgroupfd DIR FILE
//
// Prints fstype=0x..., data=<FILE's content>, handle=<the link's text>,
// and exits 0 when every call worked, 1 otherwise.
package main

import (
	"fmt"
	"io"
	"os"
	"strconv"

	"golang.org/x/sys/unix"
)

func main() {
	if len(os.Args) != 3 {
		fmt.Fprintln(os.Stderr, "usage: cgroupfd DIR FILE")
		os.Exit(2)
	}
	dir, file := os.Args[1], os.Args[2]
	fd, err := unix.Openat2(-1, dir, &unix.OpenHow{Flags: unix.O_DIRECTORY | unix.O_PATH | unix.O_CLOEXEC})
	if err != nil {
		fail("openat2 %s: %v", dir, err)
	}
	var st unix.Statfs_t
	if err := unix.Fstatfs(fd, &st); err != nil {
		fail("fstatfs: %v", err)
	}
	fmt.Printf("fstype=0x%x\n", st.Type)
	resolve := uint64(unix.RESOLVE_BENEATH | unix.RESOLVE_NO_MAGICLINKS)
	if st.Type == unix.CGROUP2_SUPER_MAGIC {
		resolve |= unix.RESOLVE_NO_XDEV | unix.RESOLVE_NO_SYMLINKS
	}
	ffd, err := unix.Openat2(fd, file, &unix.OpenHow{Flags: unix.O_RDONLY | unix.O_CLOEXEC, Resolve: resolve})
	if err != nil {
		fail("openat2 %s relative to the handle: %v", file, err)
	}
	f := os.NewFile(uintptr(ffd), file)
	b, err := io.ReadAll(f)
	if err != nil {
		fail("read %s: %v", file, err)
	}
	fmt.Printf("data=%s\n", b)
	dest, err := os.Readlink("/proc/thread-self/fd/" + strconv.Itoa(fd))
	if err != nil {
		fail("readlink: %v", err)
	}
	fmt.Printf("handle=%s\n", dest)
	if dest != dir {
		fail("cgroupRootHandle %d unexpectedly opened to %s != %s", fd, dest, dir)
	}
}

func fail(format string, a ...any) {
	fmt.Printf("error="+format+"\n", a...)
	os.Exit(1)
}
