package safefs

import (
	"errors"
	"fmt"
)

var (
	// ErrNotRegular: a file to be read is not a regular file.
	ErrNotRegular = errors.New("not a regular file")
	// ErrTooLarge: a file to be read is larger than the limit.
	ErrTooLarge = errors.New("file too large")
	// ErrSymlink: a symlink stands where nodeboot will not follow one.
	ErrSymlink = errors.New("symlink not followed")
	// ErrWrongType: an entry is not of the type needed (a file where a
	// directory belongs, a FIFO where a file belongs, ...). A symlink in
	// the way is ErrSymlink instead.
	ErrWrongType = errors.New("wrong file type")
	// ErrUnsafePath: another user could replace a component of the path.
	ErrUnsafePath = errors.New("unsafe path")
	// ErrMountPoint: removal stopped at another filesystem mounted below.
	ErrMountPoint = errors.New("mount point")
)

// NotRegularError is a file that is read but is not a regular file. It is
// ErrNotRegular.
type NotRegularError struct {
	Path string
	What string // "a FIFO", "a character device", "a directory", ...
}

func (e *NotRegularError) Error() string {
	return fmt.Sprintf("%s is %s, not a regular file; nodeboot reads only regular files", e.Path, e.What)
}

// Is indicates that a NotRegularError is ErrNotRegular.
func (e *NotRegularError) Is(target error) bool { return target == ErrNotRegular }

// TooLargeError is a file larger than what its reader accepts. It is
// ErrTooLarge.
type TooLargeError struct {
	Path  string
	Limit int64
}

func (e *TooLargeError) Error() string {
	return fmt.Sprintf("%s is larger than %s, the most nodeboot reads of it", e.Path, FormatSize(e.Limit))
}

// Is indicates that a TooLargeError is ErrTooLarge.
func (e *TooLargeError) Is(target error) bool { return target == ErrTooLarge }

// TypeError is an entry that is not of the type needed. It is ErrSymlink
// when the entry is a symlink, ErrWrongType otherwise.
type TypeError struct {
	Path string
	What string // what stands there: `a symlink to "/etc"`, "a FIFO"
	Want string // "a directory", "a regular file"
	Link bool   // it is a symlink
}

func (e *TypeError) Error() string {
	if e.Link {
		return fmt.Sprintf("%s is %s; nodeboot follows no symlink here (pass the real path)", e.Path, e.What)
	}
	return fmt.Sprintf("%s is %s, not %s", e.Path, e.What, e.Want)
}

// Is indicates that a TypeError is ErrSymlink or ErrWrongType.
func (e *TypeError) Is(target error) bool {
	return (e.Link && target == ErrSymlink) || (!e.Link && target == ErrWrongType)
}

// UnsafePathError is a path component that another user could replace. It
// is ErrUnsafePath.
type UnsafePathError struct {
	// Path is the component, e.g. /tmp/shared for /tmp/shared/root.
	Path string
	// Why says what is wrong and Fix what to do, e.g. "is writable by
	// every user (mode 0777)" and "chmod o-w /tmp/shared, or choose
	// another directory".
	Why, Fix string
}

func (e *UnsafePathError) Error() string {
	msg := e.Path + " " + e.Why
	if e.Fix != "" {
		msg += "; " + e.Fix
	}
	return msg
}

// Is indicates that an UnsafePathError is ErrUnsafePath.
func (e *UnsafePathError) Is(target error) bool { return target == ErrUnsafePath }

// FormatSize prints a byte count the way limits are written: "1 MiB",
// "64 KiB", "100 bytes".
func FormatSize(n int64) string {
	switch {
	case n >= 1<<20 && n%(1<<20) == 0:
		return fmt.Sprintf("%d MiB", n>>20)
	case n >= 1<<10 && n%(1<<10) == 0:
		return fmt.Sprintf("%d KiB", n>>10)
	}
	return fmt.Sprintf("%d bytes", n)
}
