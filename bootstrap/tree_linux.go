package bootstrap

import (
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/nodeboot/nodeboot/internal/safefs"
)

// Every access to the tree goes through package safefs; this file puts its
// errors in Seed's words (*TreeError and its sentinels).

// tree is an open root directory. All access goes through fd.
type tree struct {
	root string // absolute, symlinks resolved
	fd   int
}

func (t *tree) close() { unix.Close(t.fd) }

// host is the host path of the guest path elements, for messages.
func (t *tree) host(elems []string) string {
	return filepath.Join(append([]string{t.root}, elems...)...)
}

// split turns a guest path into its elements, refusing any that could
// leave the tree. A validated profile has none; this is the last guard.
func (t *tree) split(guest string) ([]string, error) {
	if !strings.HasPrefix(guest, "/") || guest == "/" {
		return nil, &TreeError{Path: guest, Err: ErrOutsideTree, Msg: "is not an absolute path below /; fix the profile"}
	}
	elems := strings.Split(guest[1:], "/")
	for _, e := range elems {
		if e == "" || e == "." || e == ".." || strings.IndexByte(e, 0) >= 0 {
			return nil, &TreeError{Path: guest, Err: ErrOutsideTree, Msg: "has an empty, \".\" or \"..\" element and could leave the tree; fix the profile"}
		}
	}
	if h := t.host(elems); !strings.HasPrefix(h, t.root+"/") {
		return nil, &TreeError{Path: h, Err: ErrOutsideTree, Msg: "is outside the root " + t.root + "; fix the profile"}
	}
	return elems, nil
}

// walk opens the directory elems below the root one component at a time,
// creating missing ones with mode 0755, and returns its fd (the caller
// closes it). No symlink is followed and no kernel filesystem entered.
func (t *tree) walk(elems []string) (int, error) {
	fd, err := safefs.WalkAt(t.fd, strings.Join(elems, "/"), safefs.WalkOptions{
		Create: true, Perm: 0o755, Base: t.root, Check: checkFS,
	})
	var te *safefs.TypeError
	if errors.As(err, &te) {
		if te.Link {
			return -1, &TreeError{Path: te.Path, Err: ErrSymlink,
				Msg: "is " + te.What + "; seeding never follows links inside the tree; remove it (rm " + te.Path + ") and seed again"}
		}
		return -1, &TreeError{Path: te.Path, Err: ErrConflict,
			Msg: "is " + te.What + ", but entries below it need a directory; remove it and seed again"}
	}
	return fd, err
}

// openRoot opens root, creating it 0700 when it does not exist, and checks
// that it is safe to seed (see the package comment). created says Seed
// made it.
func openRoot(root string) (_ *tree, created bool, _ error) {
	if root == "" {
		return nil, false, errors.New("root is empty; pass --root DIR (or set NODEBOOT_ROOT)")
	}
	abs, err := filepath.Abs(root)
	if err != nil {
		return nil, false, fmt.Errorf("root %s: %w", root, err)
	}
	if err := checkRootPath(abs); err != nil {
		return nil, false, err
	}
	t, created, err := openPrivate(abs, "--root", false)
	if err != nil {
		return nil, false, err
	}
	return t, created, nil
}

// openPrivate opens (creating it 0700, with missing parents 0755) the
// directory abs that nodeboot fills: as sshd's StrictModes, neither it nor
// a directory above it may be replaceable by another user, it must be
// ours and writable only by us, and a symlink on the way is refused, or
// with followLinks followed only when root or we made it (safefs.OpenDir). The resolved path must not be
// on the real kernel's files. what names the directory in messages
// ("--root"); followLinks is safefs.DirOptions.FollowLinks.
func openPrivate(abs, what string, followLinks bool) (*tree, bool, error) {
	d, err := safefs.OpenDir(abs, safefs.DirOptions{Create: true, Perm: 0o700, ParentPerm: 0o755, FollowLinks: followLinks})
	var ue *safefs.UnsafePathError
	var te *safefs.TypeError
	switch {
	case errors.As(err, &ue):
		msg := ue.Why
		if ue.Fix != "" {
			msg += "; " + ue.Fix
		}
		return nil, false, &TreeError{Path: ue.Path, Err: ErrUnsafeRoot, Msg: msg}
	case errors.As(err, &te) && te.Link:
		return nil, false, &TreeError{Path: te.Path, Err: ErrSymlink,
			Msg: "is " + te.What + "; nodeboot follows no symlink in " + what + " (it could lead anywhere); pass the real directory"}
	case errors.As(err, &te):
		return nil, false, &TreeError{Path: te.Path, Err: ErrConflict, Msg: "is " + te.What + ", not a directory; choose a directory for " + what}
	case err != nil:
		return nil, false, err
	}
	t := &tree{root: d.Path(), fd: d.FD()}
	if err := checkRootPath(t.root); err != nil {
		d.Close()
		return nil, false, err
	}
	if err := checkFS(t.fd, t.root); err != nil {
		d.Close()
		return nil, false, err
	}
	return t, d.Created(), nil
}

// kernelPrefixes hold the real kernel's files; the tree never goes there.
var kernelPrefixes = []string{"/proc", "/sys", "/dev"}

// checkRootPath refuses roots whose tree would land on the real kernel
// files: / itself (root/proc would be /proc) and anything below /proc,
// /sys or /dev.
func checkRootPath(abs string) error {
	if abs == "/" {
		return &TreeError{Path: abs, Err: ErrOutsideTree,
			Msg: "as the root would put the tree over the real /proc and /sys; choose a private directory such as /var/lib/nodeboot/root"}
	}
	for _, p := range kernelPrefixes {
		if abs == p || strings.HasPrefix(abs, p+"/") {
			return &TreeError{Path: abs, Err: ErrOutsideTree,
				Msg: "is under " + p + ", which holds the real kernel's files; choose a private directory such as /var/lib/nodeboot/root"}
		}
	}
	return nil
}

// checkFS refuses a directory on a kernel filesystem (procfs, sysfs, ...),
// wherever it is mounted.
func checkFS(fd int, host string) error {
	name, ok, err := safefs.KernelFS(fd)
	if err != nil {
		return pathError("fstatfs", host, err)
	}
	if ok {
		return &TreeError{Path: host, Err: ErrOutsideTree,
			Msg: "is on " + name + ", the real kernel's files, not on the tree's filesystem; unmount it or choose another --root"}
	}
	return nil
}

// makeDir creates the directory name in dirfd with mode perm exactly.
func makeDir(dirfd int, name, host string, perm uint32) error {
	return withPath(safefs.MkdirAt(dirfd, name, perm), host)
}

// readRegular reads the regular file name in dirfd. It returns nil data
// (and no error) when the file is larger than maxFile.
func readRegular(dirfd int, name, host string) ([]byte, error) {
	data, err := safefs.ReadFileAt(dirfd, name, host, maxFile)
	switch {
	case errors.Is(err, safefs.ErrTooLarge):
		return nil, nil
	case errors.Is(err, safefs.ErrSymlink):
		return nil, &TreeError{Path: host, Err: ErrSymlink, Msg: "became a symlink while seeding; remove it and seed again"}
	case errors.Is(err, safefs.ErrNotRegular):
		return nil, &TreeError{Path: host, Err: ErrConflict, Msg: "changed type while seeding; remove it and seed again"}
	}
	return data, err
}

// tempPrefix starts the names of Seed's temporary files.
const tempPrefix = ".nodeboot-seed-"

// writeAtomic replaces (or creates) the file name in dirfd with data and
// mode perm, durably (safefs.WriteFileAt with Sync).
func writeAtomic(dirfd int, name, host string, data []byte, perm uint32) error {
	return safefs.WriteFileAt(dirfd, name, data, perm, safefs.WriteOptions{Sync: true, TempPrefix: tempPrefix, Path: host})
}

// describeType names what stands at name in dirfd: "a symlink to "/etc"",
// "a FIFO", ...
func describeType(dirfd int, name string, mode uint32) string {
	return safefs.Describe(dirfd, name, mode)
}

// fstatat is fstatat(2) with flags, retried on EINTR.
func fstatat(dirfd int, name string, st *unix.Stat_t, flags int) error {
	return safefs.IgnoringEINTR(func() error { return unix.Fstatat(dirfd, name, st, flags) })
}

// pathError wraps a raw errno so that it names the call and the path and
// still matches fs.ErrNotExist and friends.
func pathError(op, path string, err error) error {
	return &fs.PathError{Op: op, Path: path, Err: err}
}

// withPath makes a *fs.PathError from safefs name host, the full path.
func withPath(err error, host string) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return &fs.PathError{Op: pe.Op, Path: host, Err: pe.Err}
	}
	return err
}
