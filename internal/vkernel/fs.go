package vkernel

import (
	"bytes"
	"strings"
)

// The host tree is touched only through package safefs: directory
// descriptors opened with O_NOFOLLOW, one component at a time, so that a
// symlink the guest plants inside the root is never followed.

// hasPathPrefix reports whether p is prefix or lies below it.
func hasPathPrefix(p, prefix string) bool {
	return p == prefix || (len(p) > len(prefix) && p[len(prefix)] == '/' && strings.HasPrefix(p, prefix))
}

// sameBytes compares a file's content with a string without allocating.
func sameBytes(b []byte, s string) bool { return bytes.Equal(b, []byte(s)) }
