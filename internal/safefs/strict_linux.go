package safefs

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"
)

// maxLinks bounds the symlinks OpenDir follows, as the kernel's MAXSYMLINKS.
const maxLinks = 40

// pathFlags open a directory on the way only to walk through it: O_PATH
// needs no read permission (a 0711 home directory is fine).
const pathFlags = unix.O_PATH | unix.O_DIRECTORY | unix.O_NOFOLLOW | unix.O_CLOEXEC

// DirOptions tune OpenDir.
type DirOptions struct {
	// Create makes missing directories: the last one with mode Perm
	// (default 0700), the ones above it with ParentPerm (default 0755),
	// exactly (the umask does not apply).
	Create     bool
	Perm       uint32
	ParentPerm uint32
	// FollowLinks follows a symlink on the way when root or the caller
	// owns it (its directory is checked already, so nobody else could
	// have made it). Without it every symlink is refused (ErrSymlink).
	// A symlink owned by anyone else is always refused (ErrUnsafePath).
	FollowLinks bool
}

// Dir is a directory opened by OpenDir. Access below it goes through FD
// with the *At functions.
type Dir struct {
	fd      int
	path    string
	created bool
}

// FD is the directory's descriptor (O_RDONLY|O_DIRECTORY), valid until
// Close.
func (d *Dir) FD() int { return d.fd }

// Path is the directory's absolute path, symlinks resolved.
func (d *Dir) Path() string { return d.path }

// Created says OpenDir made the directory itself.
func (d *Dir) Created() bool { return d.created }

// Close closes FD.
func (d *Dir) Close() error {
	if d.fd < 0 {
		return nil
	}
	err := unix.Close(d.fd)
	d.fd = -1
	return err
}

// OpenDir opens the directory path for nodeboot to write below, after
// checking, as sshd's StrictModes does, that nobody but root and the caller
// can replace it or any directory above it:
//
//   - every directory from / down belongs to root or to the caller;
//   - a directory above the last is writable by group or others only when
//     it is sticky (/tmp): others may add entries there, but not replace
//     ours, and the next component's owner is checked in turn;
//   - the last directory belongs to the caller and is writable by nobody
//     else;
//   - a symlink on the way is refused; with opts.FollowLinks it is
//     followed when it belongs to root or to the caller (its directory is
//     checked already, so nobody else could have made it). The kernel
//     never follows one: OpenDir reads the link and walks its target with
//     the same checks.
//
// Components are opened one at a time with openat(O_NOFOLLOW) and checked
// on the open descriptor, so nothing can be swapped between the check and
// the use. With opts.Create, missing directories are made. Errors: an
// *UnsafePathError (ErrUnsafePath), a *TypeError when a component is a
// symlink (ErrSymlink) or not a directory (ErrWrongType), a *fs.PathError
// otherwise (fs.ErrNotExist without Create).
func OpenDir(path string, opts DirOptions) (*Dir, error) {
	if path == "" {
		return nil, &fs.PathError{Op: "open", Path: path, Err: unix.ENOENT}
	}
	if opts.Perm == 0 {
		opts.Perm = 0o700
	}
	if opts.ParentPerm == 0 {
		opts.ParentPerm = 0o755
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	w := &walker{euid: os.Geteuid(), opts: opts, cur: -1, lastFD: -1}
	defer w.closeAll()
	if err := w.toRoot(); err != nil {
		return nil, err
	}
	comps := splitPath(abs)
	links := 0
	for len(comps) > 0 {
		name := comps[0]
		comps = comps[1:]
		last := len(comps) == 0
		switch name {
		case ".":
			if last {
				if err := w.reopenLast(); err != nil {
					return nil, err
				}
			}
			continue
		case "..":
			w.up()
			if last {
				if err := w.reopenLast(); err != nil {
					return nil, err
				}
			}
			continue
		}
		st, created, err := w.lstat(name, last)
		if err != nil {
			return nil, err
		}
		full := join(w.path, name)
		switch st.Mode & unix.S_IFMT {
		case unix.S_IFLNK:
			if uid := int(st.Uid); uid != 0 && uid != w.euid {
				return nil, &UnsafePathError{Path: full,
					Why: fmt.Sprintf("is a symlink owned by uid %d, who could point it anywhere", uid),
					Fix: "nodeboot follows only symlinks of root or of you; pass the real directory"}
			}
			if !w.opts.FollowLinks {
				return nil, &TypeError{Path: full, What: Describe(w.cur, name, st.Mode), Want: "a directory", Link: true}
			}
			if links++; links > maxLinks {
				return nil, &fs.PathError{Op: "open", Path: abs, Err: unix.ELOOP}
			}
			target, err := readlinkat(w.cur, name)
			if err != nil {
				return nil, &fs.PathError{Op: "readlink", Path: full, Err: err}
			}
			if strings.HasPrefix(target, "/") {
				if err := w.toRoot(); err != nil {
					return nil, err
				}
			}
			comps = append(splitPath(target), comps...)
			continue
		case unix.S_IFDIR:
		default:
			return nil, &TypeError{Path: full, What: describeType(st.Mode), Want: "a directory"}
		}
		if err := w.enter(name, full, st, last, created); err != nil {
			return nil, err
		}
	}
	if w.lastFD < 0 {
		// The path ended at / (or went up to it).
		if err := w.reopenLast(); err != nil {
			return nil, err
		}
	}
	d := &Dir{fd: w.lastFD, path: w.path, created: w.created}
	w.lastFD = -1
	return d, nil
}

// walker is OpenDir's position: cur is the directory reached (an O_PATH
// descriptor), stack the ones above it, for "..".
type walker struct {
	euid  int
	opts  DirOptions
	cur   int
	path  string
	stack []walkStep
	// lastFD is the last directory opened O_RDONLY (the result), -1 while
	// the walk goes on.
	lastFD  int
	created bool
}

type walkStep struct {
	fd   int
	path string
}

// toRoot restarts at /, checked like any other directory.
func (w *walker) toRoot() error {
	w.closeAll()
	fd, err := Openat(unix.AT_FDCWD, "/", pathFlags, 0)
	if err != nil {
		return &fs.PathError{Op: "open", Path: "/", Err: err}
	}
	w.cur, w.path, w.lastFD = fd, "/", -1
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return &fs.PathError{Op: "fstat", Path: "/", Err: err}
	}
	return w.checkParent("/", &st)
}

func (w *walker) closeAll() {
	for _, s := range w.stack {
		unix.Close(s.fd)
	}
	w.stack = w.stack[:0]
	if w.cur >= 0 {
		unix.Close(w.cur)
	}
	w.cur = -1
	if w.lastFD >= 0 {
		unix.Close(w.lastFD)
	}
	w.lastFD = -1
}

// up goes to the parent (.. of / is /).
func (w *walker) up() {
	if len(w.stack) == 0 {
		return
	}
	unix.Close(w.cur)
	top := w.stack[len(w.stack)-1]
	w.stack = w.stack[:len(w.stack)-1]
	w.cur, w.path = top.fd, top.path
	if w.lastFD >= 0 {
		unix.Close(w.lastFD)
		w.lastFD = -1
	}
}

// reopenLast makes the directory reached the result: checked as the last
// component and opened O_RDONLY.
func (w *walker) reopenLast() error {
	var st unix.Stat_t
	if err := unix.Fstat(w.cur, &st); err != nil {
		return &fs.PathError{Op: "fstat", Path: w.path, Err: err}
	}
	if err := w.checkLast(w.path, &st); err != nil {
		return err
	}
	fd, err := Openat(w.cur, ".", DirFlags, 0)
	if err != nil {
		return &fs.PathError{Op: "open", Path: w.path, Err: err}
	}
	if w.lastFD >= 0 {
		unix.Close(w.lastFD)
	}
	w.lastFD = fd
	return nil
}

// lstat looks name up in the current directory, creating it (with
// Create) when it is missing.
func (w *walker) lstat(name string, last bool) (unix.Stat_t, bool, error) {
	var st unix.Stat_t
	full := join(w.path, name)
	err := Fstatat(w.cur, name, &st)
	if err == unix.ENOENT && w.opts.Create {
		err = IgnoringEINTR(func() error { return unix.Mkdirat(w.cur, name, 0o700) })
		created := err == nil
		if err != nil && err != unix.EEXIST {
			return st, false, &fs.PathError{Op: "mkdir", Path: full, Err: err}
		}
		// Created or not, look again: what stands there now is checked.
		if err = Fstatat(w.cur, name, &st); err == nil {
			return st, created, nil
		}
	}
	if err != nil {
		return st, false, &fs.PathError{Op: "lstat", Path: full, Err: err}
	}
	return st, false, nil
}

// enter opens the directory name (whose lstat is st) and makes it the
// current one.
func (w *walker) enter(name, full string, st unix.Stat_t, last, created bool) error {
	flags := pathFlags
	if last || created {
		flags = DirFlags // fchmod needs more than O_PATH
	}
	fd, err := Openat(w.cur, name, flags, 0)
	if err != nil {
		return dirError(w.cur, name, full, err)
	}
	keep := false
	defer func() {
		if !keep {
			unix.Close(fd)
		}
	}()
	if created {
		perm := w.opts.ParentPerm
		if last {
			perm = w.opts.Perm
		}
		if err := IgnoringEINTR(func() error { return unix.Fchmod(fd, perm) }); err != nil {
			return &fs.PathError{Op: "fchmod", Path: full, Err: err}
		}
	}
	var got unix.Stat_t
	if err := unix.Fstat(fd, &got); err != nil {
		return &fs.PathError{Op: "fstat", Path: full, Err: err}
	}
	if got.Dev != st.Dev || got.Ino != st.Ino {
		return &UnsafePathError{Path: full, Why: "was replaced while nodeboot checked it", Fix: "find out who changes it"}
	}
	if last {
		err = w.checkLast(full, &got)
	} else {
		err = w.checkParent(full, &got)
	}
	if err != nil {
		return err
	}
	keep = true
	if last {
		// The result; cur stays an O_PATH descriptor for a final "..".
		p, err := Openat(fd, ".", pathFlags, 0)
		if err != nil {
			return &fs.PathError{Op: "open", Path: full, Err: err}
		}
		w.stack = append(w.stack, walkStep{w.cur, w.path})
		w.cur, w.path = p, full
		if w.lastFD >= 0 {
			unix.Close(w.lastFD)
		}
		w.lastFD, w.created = fd, created
		return nil
	}
	w.stack = append(w.stack, walkStep{w.cur, w.path})
	w.cur, w.path = fd, full
	return nil
}

// checkParent checks a directory above the last one.
func (w *walker) checkParent(path string, st *unix.Stat_t) error {
	if uid := int(st.Uid); uid != 0 && uid != w.euid {
		return &UnsafePathError{Path: path,
			Why: fmt.Sprintf("is owned by uid %d, who could replace what is below it", uid),
			Fix: "choose a directory whose every parent belongs to root or to you"}
	}
	if st.Mode&0o022 != 0 && st.Mode&unix.S_ISVTX == 0 {
		return &UnsafePathError{Path: path,
			Why: fmt.Sprintf("is writable by %s (mode %04o), who could replace what is below it", writers(st.Mode), st.Mode&0o7777),
			Fix: fmt.Sprintf("chmod go-w %s, or choose another directory", path)}
	}
	return nil
}

// checkLast checks the directory nodeboot writes in.
func (w *walker) checkLast(path string, st *unix.Stat_t) error {
	if uid := int(st.Uid); uid != w.euid {
		return &UnsafePathError{Path: path,
			Why: fmt.Sprintf("is owned by uid %d, not by you (uid %d), so that user could change what nodeboot writes there", uid, w.euid),
			Fix: fmt.Sprintf("chown %d %s, or choose a directory of your own", w.euid, path)}
	}
	if st.Mode&0o022 != 0 {
		return &UnsafePathError{Path: path,
			Why: fmt.Sprintf("is writable by %s (mode %04o), who could plant files that nodeboot trusts", writers(st.Mode), st.Mode&0o7777),
			Fix: fmt.Sprintf("chmod go-w %s (0700 is best), or choose another directory", path)}
	}
	return nil
}

// writers names who may write a directory of mode m besides its owner.
func writers(m uint32) string {
	switch {
	case m&0o002 != 0:
		return "every user"
	default:
		return "its group"
	}
}

func join(dir, name string) string {
	if dir == "/" {
		return "/" + name
	}
	return dir + "/" + name
}

// splitPath splits p into its non-empty elements.
func splitPath(p string) []string {
	var out []string
	for _, e := range strings.Split(p, "/") {
		if e != "" {
			out = append(out, e)
		}
	}
	return out
}

func readlinkat(dirfd int, name string) (string, error) {
	buf := make([]byte, unix.PathMax)
	n, err := unix.Readlinkat(dirfd, name, buf)
	if err != nil {
		return "", err
	}
	return string(buf[:n]), nil
}

// CheckPath checks path as OpenDir does, without creating anything.
func CheckPath(path string) error {
	d, err := OpenDir(path, DirOptions{})
	if err != nil {
		return err
	}
	return d.Close()
}
