package bootstrap

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
	"sort"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/nodeboot/nodeboot/internal/safefs"
	"github.com/nodeboot/nodeboot/profile"
)

// maxFile caps what Seed reads of an existing entry or a host file. Kernel
// files are small; a larger file simply differs.
const maxFile = 1 << 20

// Seed writes the static entries of p below root and returns what it did
// for each (see the package comment for the safety rules and for what an
// existing entry gets). It validates p first. Seed stops at the first
// error and returns the entries done so far.
//
// Errors wrap a *TreeError (with ErrUnsafeRoot, ErrSymlink, ErrConflict or
// ErrOutsideTree), a profile.ErrInvalid for a bad profile, ctx.Err() when
// ctx ends, or a *fs.PathError from a failed syscall.
func Seed(ctx context.Context, root string, p *profile.Profile, opts SeedOptions) (SeedReport, error) {
	if p == nil {
		return SeedReport{}, errors.New("seed: no profile given")
	}
	if err := p.Validate(); err != nil {
		return SeedReport{}, fmt.Errorf("seed %s: %w", root, err)
	}
	t, created, err := openRoot(root)
	if err != nil {
		return SeedReport{}, fmt.Errorf("seed: %w", err)
	}
	defer t.close()

	rep := SeedReport{Root: t.root, Profile: p.Name, RootCreated: created}
	s := &seeder{tree: t, opts: opts}
	for _, e := range plan(p) {
		if err := ctx.Err(); err != nil {
			return rep, fmt.Errorf("seed %s: %w", t.root, err)
		}
		ent, err := s.seed(e)
		if err != nil {
			return rep, fmt.Errorf("seed %s: %w", e.path, err)
		}
		rep.Entries = append(rep.Entries, ent)
	}
	return rep, nil
}

// planned is one profile entry: file or dyn is set.
type planned struct {
	path string
	file *profile.File
	dyn  *profile.Dynamic
}

// plan returns the entries of p in path order, so that a directory entry
// is made (with its mode) before the entries below it.
func plan(p *profile.Profile) []planned {
	var out []planned
	for i := range p.Files {
		out = append(out, planned{path: p.Files[i].Path, file: &p.Files[i]})
	}
	for i := range p.Dynamic {
		out = append(out, planned{path: p.Dynamic[i].Path, dyn: &p.Dynamic[i]})
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].path < out[j].path })
	return out
}

type seeder struct {
	tree *tree
	opts SeedOptions
}

// seed does one entry.
func (s *seeder) seed(e planned) (Entry, error) {
	if e.dyn != nil {
		return Entry{Path: e.path, Type: TypeDynamic, Action: Skipped,
			Detail: "dynamic (" + e.dyn.Kind + "), served by the interceptor"}, nil
	}
	elems, err := s.tree.split(e.path)
	if err != nil {
		return Entry{}, err
	}
	dirfd, err := s.tree.walk(elems[:len(elems)-1])
	if err != nil {
		return Entry{}, err
	}
	defer unix.Close(dirfd)
	name := elems[len(elems)-1]
	host := s.tree.host(elems)
	if e.file.Dir {
		return s.seedDir(dirfd, name, host, e.file)
	}
	return s.seedFile(dirfd, name, host, e.file)
}

// seedFile makes the regular file name in dirfd match f.
func (s *seeder) seedFile(dirfd int, name, host string, f *profile.File) (Entry, error) {
	ent := Entry{Path: f.Path, Type: TypeFile}
	perm := uint32(f.Perm())
	var st unix.Stat_t
	err := fstatat(dirfd, name, &st, unix.AT_SYMLINK_NOFOLLOW)
	if errors.Is(err, unix.ENOENT) {
		w, err := s.want(f, false)
		if err != nil {
			return ent, err
		}
		if err := writeAtomic(dirfd, name, host, w.data, perm); err != nil {
			return ent, err
		}
		ent.Action, ent.Detail = Created, w.detail
		return ent, nil
	}
	if err != nil {
		return ent, pathError("fstatat", host, err)
	}

	switch st.Mode & unix.S_IFMT {
	case unix.S_IFREG:
	case unix.S_IFDIR:
		return ent, &TreeError{Path: host, Err: ErrConflict,
			Msg: "is a directory, but the profile wants a file here; remove it (rm -r " + host + ") and seed again"}
	default:
		what := describeType(dirfd, name, st.Mode)
		if !s.opts.Force {
			kind := ErrConflict
			if st.Mode&unix.S_IFMT == unix.S_IFLNK {
				kind = ErrSymlink
			}
			return ent, &TreeError{Path: host, Err: kind,
				Msg: "is " + what + ", not a regular file; seeding never follows or writes through it; remove it, or seed with --force to replace it (a link's target is left alone)"}
		}
		w, err := s.want(f, false)
		if err != nil {
			return ent, err
		}
		// renameat replaces the directory entry itself: a link is not
		// followed, and its target is untouched.
		if err := writeAtomic(dirfd, name, host, w.data, perm); err != nil {
			return ent, err
		}
		ent.Action, ent.Detail = Updated, joinDetail("replaced "+what, w.detail)
		return ent, nil
	}

	cur, err := readRegular(dirfd, name, host)
	if err != nil {
		return ent, err
	}
	w, err := s.want(f, true)
	if err != nil {
		return ent, err
	}
	// A generated value is made once: any current content is the value.
	contentOK := w.generated || (cur != nil && bytes.Equal(cur, w.data))
	modeOK := st.Mode&0o7777 == perm
	var diff, was []string // how it differs, for Kept and for Updated
	if !contentOK {
		diff = append(diff, "content differs from the profile")
		was = append(was, "content reset")
	}
	if !modeOK {
		diff = append(diff, fmt.Sprintf("mode is %04o, the profile says %04o", st.Mode&0o7777, perm))
		was = append(was, fmt.Sprintf("mode %04o reset to %04o", st.Mode&0o7777, perm))
	}
	switch {
	case contentOK && modeOK:
		ent.Action = Unchanged
		if w.generated {
			ent.Detail = "generated value kept"
		}
		return ent, nil
	case !s.opts.Force:
		ent.Action, ent.Detail = Kept, strings.Join(diff, "; ")+"; seed with --force to reset it"
		return ent, nil
	}
	data := w.data
	if contentOK {
		// Only the mode is wrong. The file is still replaced rather than
		// chmod-ed: it may be a hard link to a file outside the tree.
		data = cur
	}
	if err := writeAtomic(dirfd, name, host, data, perm); err != nil {
		return ent, err
	}
	ent.Action, ent.Detail = Updated, joinDetail(strings.Join(was, "; "), w.detail)
	return ent, nil
}

// seedDir makes the directory name in dirfd match f.
func (s *seeder) seedDir(dirfd int, name, host string, f *profile.File) (Entry, error) {
	ent := Entry{Path: f.Path, Type: TypeDir}
	perm := uint32(f.Perm())
	var st unix.Stat_t
	err := fstatat(dirfd, name, &st, unix.AT_SYMLINK_NOFOLLOW)
	if errors.Is(err, unix.ENOENT) {
		if err := makeDir(dirfd, name, host, perm); err != nil {
			return ent, err
		}
		ent.Action = Created
		return ent, nil
	}
	if err != nil {
		return ent, pathError("fstatat", host, err)
	}
	if st.Mode&unix.S_IFMT != unix.S_IFDIR {
		what := describeType(dirfd, name, st.Mode)
		if !s.opts.Force {
			kind := ErrConflict
			if st.Mode&unix.S_IFMT == unix.S_IFLNK {
				kind = ErrSymlink
			}
			return ent, &TreeError{Path: host, Err: kind,
				Msg: "is " + what + ", but the profile wants a directory; remove it, or seed with --force to replace it (a link's target is left alone)"}
		}
		// unlinkat removes the entry itself, never a link's target.
		if err := safefs.IgnoringEINTR(func() error { return unix.Unlinkat(dirfd, name, 0) }); err != nil {
			return ent, pathError("unlinkat", host, err)
		}
		if err := makeDir(dirfd, name, host, perm); err != nil {
			return ent, err
		}
		ent.Action, ent.Detail = Updated, "replaced "+what
		return ent, nil
	}
	if st.Mode&0o7777 == perm {
		ent.Action = Unchanged
		return ent, nil
	}
	diff := fmt.Sprintf("mode is %04o, the profile says %04o", st.Mode&0o7777, perm)
	if !s.opts.Force {
		ent.Action, ent.Detail = Kept, diff+"; seed with --force to reset it"
		return ent, nil
	}
	fd, err := safefs.Openat(dirfd, name, safefs.DirFlags, 0)
	if err != nil {
		return ent, pathError("openat", host, err)
	}
	defer unix.Close(fd)
	if err := checkFS(fd, host); err != nil {
		return ent, err
	}
	if err := safefs.IgnoringEINTR(func() error { return unix.Fchmod(fd, perm) }); err != nil {
		return ent, pathError("fchmod", host, err)
	}
	ent.Action, ent.Detail = Updated, fmt.Sprintf("mode %04o reset to %04o", st.Mode&0o7777, perm)
	return ent, nil
}

// wanted is the content an entry should have.
type wanted struct {
	data []byte
	// generated: data comes from a generator, so an existing file keeps
	// its own value. With lazy set, data is nil.
	generated bool
	detail    string
}

// want computes the content of f. lazy skips running a generator (the
// caller only needs to know that the value is generated).
func (s *seeder) want(f *profile.File, lazy bool) (wanted, error) {
	var detail string
	if f.CopyFromHost {
		hostRoot := s.opts.HostRoot
		if hostRoot == "" {
			hostRoot = "/"
		}
		src := filepath.Join(hostRoot, f.Path)
		data, err := safefs.ReadFile(src, maxFile)
		if err == nil {
			return wanted{data: data, detail: "copied from the host"}, nil
		}
		detail = "host file unreadable: " + shortError(err) + "; "
	}
	if f.Generate != "" {
		w := wanted{generated: true, detail: detail + "generated by " + f.Generate}
		if lazy {
			return w, nil
		}
		data, err := generate(f.Generate, s.opts.Rand)
		if err != nil {
			return wanted{}, fmt.Errorf("generate %s: %w", f.Generate, err)
		}
		w.data = data
		return w, nil
	}
	if detail != "" {
		detail += "used the profile's content"
	}
	return wanted{data: []byte(f.Content), detail: detail}, nil
}

// shortError drops the path from a *fs.PathError: "permission denied".
func shortError(err error) string {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err.Error()
	}
	return err.Error()
}

func joinDetail(a, b string) string {
	switch {
	case a == "":
		return b
	case b == "":
		return a
	}
	return a + "; " + b
}
