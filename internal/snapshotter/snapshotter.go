// Package snapshotter decides which containerd snapshotter k3s can use on
// the filesystem that holds its data. k3s's default, overlayfs, needs
// overlay mounts whose upper and work directories live below
// <k3s data-dir>/agent/containerd; k3s checks this itself and stops ("the
// overlayfs snapshotter cannot be enabled") when they fail. Sandboxes often
// refuse them: gVisor's root is 9p or its own overlay, and an overlayfs
// cannot be the upper layer of another. The native snapshotter (plain
// copies) works on any filesystem, at the cost of disk and copy time.
//
// The only reliable test is the one containerd makes: mount an overlay.
// Probe does that in a temporary directory below the data directory, with
// two lower layers as containerd's snapshots have, writes through it, and
// removes everything again.
package snapshotter

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"
)

// Native is k3s's --snapshotter value that needs no overlay mounts.
const Native = "native"

// Probe mounts an overlay filesystem with its layers in a new temporary
// directory below dir (which must exist), writes a file through it and
// unmounts it. nil means containerd's overlayfs snapshotter will work on
// dir's filesystem. It needs CAP_SYS_ADMIN (root), as k3s does; without
// it the mount fails with EPERM, as it would for k3s.
func Probe(dir string) (err error) {
	tmp, err := os.MkdirTemp(dir, ".nodeboot-overlay-probe-")
	if err != nil {
		return fmt.Errorf("overlay probe in %s: %w", dir, err)
	}
	mounted := ""
	defer func() {
		if mounted != "" {
			if uerr := unix.Unmount(mounted, unix.MNT_DETACH); uerr != nil {
				// Leave the directory: removing below a mount point
				// that is still mounted would remove through it.
				err = errors.Join(err, fmt.Errorf("overlay probe: unmount %s: %w", mounted, uerr))
				return
			}
		}
		if rerr := os.RemoveAll(tmp); rerr != nil {
			err = errors.Join(err, fmt.Errorf("overlay probe: remove %s: %w", tmp, rerr))
		}
	}()
	d := func(n string) string { return filepath.Join(tmp, n) }
	for _, n := range []string{"lower1", "lower2", "upper", "work", "merged"} {
		if err := os.Mkdir(d(n), 0o700); err != nil {
			return fmt.Errorf("overlay probe: %w", err)
		}
	}
	if err := os.WriteFile(filepath.Join(d("lower1"), "f"), []byte("lower\n"), 0o600); err != nil {
		return fmt.Errorf("overlay probe: %w", err)
	}
	opts := "lowerdir=" + d("lower2") + ":" + d("lower1") + ",upperdir=" + d("upper") + ",workdir=" + d("work")
	if err := unix.Mount("overlay", d("merged"), "overlay", 0, opts); err != nil {
		return fmt.Errorf("an overlay mount fails on %s: %w", dirFS(dir), err)
	}
	mounted = d("merged")
	// A copy-up: the upper layer takes writes (some filesystems mount as
	// upper but fail here).
	if err := os.WriteFile(filepath.Join(d("merged"), "f"), []byte("upper\n"), 0o600); err != nil {
		return fmt.Errorf("an overlay mount on %s takes no writes: %w", dirFS(dir), err)
	}
	return nil
}

// dirFS names dir with its filesystem type, for errors.
func dirFS(dir string) string {
	var st unix.Statfs_t
	if unix.Statfs(dir, &st) != nil {
		return dir
	}
	return fmt.Sprintf("%s (%s)", dir, fsName(int64(st.Type)))
}

// fsName names the filesystem magics a sandbox's data dir is likely on.
func fsName(magic int64) string {
	switch magic {
	case unix.EXT4_SUPER_MAGIC:
		return "ext4"
	case unix.XFS_SUPER_MAGIC:
		return "xfs"
	case unix.BTRFS_SUPER_MAGIC:
		return "btrfs"
	case unix.TMPFS_MAGIC:
		return "tmpfs"
	case unix.OVERLAYFS_SUPER_MAGIC:
		return "overlay"
	case unix.V9FS_MAGIC:
		return "9p"
	case unix.FUSE_SUPER_MAGIC:
		return "fuse"
	case unix.NFS_SUPER_MAGIC:
		return "nfs"
	}
	return fmt.Sprintf("type 0x%x", magic)
}

// Decision is which snapshotter k3s gets on a directory, and why.
type Decision struct {
	Dir string
	// Overlay: the overlay mount worked; k3s keeps its default.
	Overlay bool
	// Err is the probe's error when it did not.
	Err error
	// Snapshotter is the --snapshotter to pass: "" (k3s's default,
	// overlayfs) or Native.
	Snapshotter string
}

// String is one line for logs and "nodeboot discover".
func (d Decision) String() string {
	if d.Overlay {
		return fmt.Sprintf("overlayfs (an overlay mount works on %s)", dirFS(d.Dir))
	}
	return fmt.Sprintf("native (%v)", d.Err)
}

// Decide probes dir and returns the snapshotter for k3s.
func Decide(dir string) Decision { return decide(dir, Probe) }

func decide(dir string, probe func(string) error) Decision {
	if err := probe(dir); err != nil {
		return Decision{Dir: dir, Err: err, Snapshotter: Native}
	}
	return Decision{Dir: dir, Overlay: true}
}

// Nearest is dir, or its nearest ancestor that exists: where to probe for
// a data directory not made yet (its filesystem is that ancestor's).
func Nearest(dir string) string {
	for d := filepath.Clean(dir); ; d = filepath.Dir(d) {
		if fi, err := os.Stat(d); err == nil && fi.IsDir() {
			return d
		}
		if d == "/" || d == "." {
			return d
		}
	}
}
