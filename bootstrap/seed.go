package bootstrap

import (
	"errors"
	"io"
)

// SeedOptions tune Seed.
type SeedOptions struct {
	// Force rewrites entries whose content or mode differs from the
	// profile, and replaces a symlink, a special file or a file that stands
	// where the profile wants something else (the symlink itself, never its
	// target). Generated values are kept even with Force, and a directory
	// standing where a file belongs is always an error.
	Force bool
	// HostRoot is where copyFromHost entries are read from: the host file
	// of the guest path G is HostRoot/G. Empty means "/".
	HostRoot string
	// Rand is the source of generated values; nil means crypto/rand.
	Rand io.Reader
}

// Action is what Seed did with an entry.
type Action string

const (
	// Created: the entry did not exist and was written.
	Created Action = "created"
	// Updated: the entry differed from the profile and Force rewrote it.
	Updated Action = "updated"
	// Unchanged: the entry already matched the profile.
	Unchanged Action = "unchanged"
	// Kept: the entry differs from the profile and was left as it is
	// because Force is off; Detail says how it differs.
	Kept Action = "kept"
	// Skipped: a dynamic entry, which the interceptor serves; nothing is
	// written for it.
	Skipped Action = "skipped"
)

// Actions lists every Action in report order.
func Actions() []Action { return []Action{Created, Updated, Unchanged, Kept, Skipped} }

// EntryType says what kind of profile entry an Entry is.
type EntryType string

const (
	TypeFile    EntryType = "file"
	TypeDir     EntryType = "dir"
	TypeDynamic EntryType = "dynamic"
)

// Entry is the outcome for one profile entry.
type Entry struct {
	// Path is the guest path, e.g. /proc/sys/kernel/panic.
	Path   string
	Type   EntryType
	Action Action
	// Detail explains the action when there is something to say: "copied
	// from the host", "content differs from the profile", ...
	Detail string
}

// SeedReport lists what Seed did, one Entry per profile entry in path
// order. Seed returns the entries done so far along with an error.
type SeedReport struct {
	// Root is the absolute root, symlinks resolved.
	Root string
	// Profile is the profile's name.
	Profile string
	// RootCreated says Seed created the root directory (mode 0700).
	RootCreated bool
	Entries     []Entry
}

// Count returns how many entries had action a.
func (r SeedReport) Count(a Action) int {
	n := 0
	for _, e := range r.Entries {
		if e.Action == a {
			n++
		}
	}
	return n
}

// Paths returns the guest paths of the entries that had action a.
func (r SeedReport) Paths(a Action) []string {
	var out []string
	for _, e := range r.Entries {
		if e.Action == a {
			out = append(out, e.Path)
		}
	}
	return out
}

// Sentinel errors of Seed; a *TreeError wraps one of them.
var (
	// ErrUnsafeRoot: the root is world-writable or owned by another user.
	ErrUnsafeRoot = errors.New("unsafe root")
	// ErrSymlink: a symlink stands in the tree where Seed would follow it.
	ErrSymlink = errors.New("symlink in tree")
	// ErrConflict: something of the wrong type (a directory where a file
	// belongs, a FIFO, ...) stands where an entry goes.
	ErrConflict = errors.New("conflicting entry in tree")
	// ErrOutsideTree: a target would be outside root, or on a kernel
	// filesystem such as procfs or sysfs.
	ErrOutsideTree = errors.New("target outside tree")
)

// TreeError is a problem with the root or with a path in the tree.
type TreeError struct {
	// Path is the host path, e.g. /var/lib/nodeboot/root/proc/sys.
	Path string
	// Msg follows Path in the message: what is wrong and how to fix it,
	// e.g. "is a symlink to \"/etc\"; ...".
	Msg string
	// Err is one of the sentinel errors.
	Err error
}

func (e *TreeError) Error() string { return e.Path + " " + e.Msg }

// Is indicates that a TreeError is its sentinel.
func (e *TreeError) Is(target error) bool { return target == e.Err }
