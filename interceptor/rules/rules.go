// Package rules is the vocabulary shared by the tracer and what configures
// it: redirect and fstype rules, filesystem magic numbers, the lexical path
// cleaning that rules match on, and what the tracer reports to observers.
// It has no ptrace in it, so profiles and other configuration build for any
// GOOS.
package rules

import (
	"fmt"
	"sort"
	"strconv"
	"strings"
	"syscall"
)

// Redirect serves Guest, and everything below it, from the same place below
// Host, when the file exists there or the call creates it there.
type Redirect struct {
	Guest string
	Host  string
}

func (r Redirect) String() string { return "redirect " + r.Guest + "=" + r.Host }

// FSTypeRule rewrites the f_type that statfs and fstatfs return.
//
// Either Path is set or From is. A Path rule applies to that path and below
// as the program sees it: the guest path, whichever host file a redirect
// serves it from (a path inside a redirect's host tree, or an fd opened
// there, counts as the guest path it serves); a Path naming the host side
// matches too. A From rule applies to every result of that type.
type FSTypeRule struct {
	Path string
	From int64
	To   int64
}

func (r FSTypeRule) String() string {
	from := r.Path
	if from == "" {
		from = FSTypeName(r.From)
	}
	return "fstype " + from + "=" + FSTypeName(r.To)
}

// Rules is the set of rewrites a tracer applies.
type Rules struct {
	Redirects []Redirect
	FSTypes   []FSTypeRule
}

// Empty reports whether the rules change nothing.
func (r Rules) Empty() bool { return len(r.Redirects) == 0 && len(r.FSTypes) == 0 }

// Merge returns r with the rules of over added; a rule of over replaces a
// rule of r for the same guest path, path or fs type.
func (r Rules) Merge(over Rules) Rules {
	var out Rules
	seen := map[string]bool{}
	for _, x := range over.Redirects {
		seen[x.Guest] = true
	}
	for _, x := range r.Redirects {
		if !seen[x.Guest] {
			out.Redirects = append(out.Redirects, x)
		}
	}
	out.Redirects = append(out.Redirects, over.Redirects...)
	key := func(f FSTypeRule) string {
		if f.Path != "" {
			return f.Path
		}
		return "type:" + strconv.FormatInt(f.From, 16)
	}
	seen = map[string]bool{}
	for _, x := range over.FSTypes {
		seen[key(x)] = true
	}
	for _, x := range r.FSTypes {
		if !seen[key(x)] {
			out.FSTypes = append(out.FSTypes, x)
		}
	}
	out.FSTypes = append(out.FSTypes, over.FSTypes...)
	return out
}

// Validate checks that every path is absolute and clean enough to match.
func (r Rules) Validate() error {
	for _, x := range r.Redirects {
		if !strings.HasPrefix(x.Guest, "/") {
			return fmt.Errorf("redirect %s=%s: guest path %q is relative; use an absolute path", x.Guest, x.Host, x.Guest)
		}
		if !strings.HasPrefix(x.Host, "/") {
			return fmt.Errorf("redirect %s=%s: host path %q is relative; use an absolute path", x.Guest, x.Host, x.Host)
		}
	}
	for _, x := range r.FSTypes {
		if x.Path != "" && !strings.HasPrefix(x.Path, "/") {
			return fmt.Errorf("fstype %s: path %q is relative; use an absolute path", x, x.Path)
		}
	}
	return nil
}

// ParseRedirect parses GUEST=HOST. Both must be absolute paths.
func ParseRedirect(s string) (Redirect, error) {
	guest, host, ok := strings.Cut(s, "=")
	if !ok || guest == "" || host == "" {
		return Redirect{}, fmt.Errorf("redirect %q: want GUEST=HOST, e.g. /proc/sys=/var/lib/nodeboot/root/proc/sys", s)
	}
	if !strings.HasPrefix(guest, "/") {
		return Redirect{}, fmt.Errorf("redirect %q: guest path %q is relative; use an absolute path", s, guest)
	}
	if !strings.HasPrefix(host, "/") {
		return Redirect{}, fmt.Errorf("redirect %q: host path %q is relative; use an absolute path", s, host)
	}
	return Redirect{Guest: CleanPath(guest), Host: CleanPath(host)}, nil
}

// ParseFSType parses FROM=TO, where FROM is an absolute path, a filesystem
// name or a 0x magic number, and TO is a name or a 0x magic number.
func ParseFSType(s string) (FSTypeRule, error) {
	from, to, ok := strings.Cut(s, "=")
	if !ok || from == "" || to == "" {
		return FSTypeRule{}, fmt.Errorf("fstype %q: want FROM=TO, e.g. 9p=ext4 or /sys/fs/cgroup=cgroup2", s)
	}
	var r FSTypeRule
	toMagic, err := FSMagic(to)
	if err != nil {
		return FSTypeRule{}, fmt.Errorf("fstype %q: %w", s, err)
	}
	r.To = toMagic
	switch {
	case strings.HasPrefix(from, "/"):
		r.Path = CleanPath(from)
	case strings.Contains(from, "/") || strings.HasPrefix(from, "."):
		return FSTypeRule{}, fmt.Errorf("fstype %q: path %q is relative; use an absolute path", s, from)
	default:
		m, err := FSMagic(from)
		if err != nil {
			return FSTypeRule{}, fmt.Errorf("fstype %q: %w", s, err)
		}
		r.From = m
	}
	return r, nil
}

// Filesystem magic numbers from include/uapi/linux/magic.h.
var fsMagics = map[string]int64{
	"ext2":     0xEF53,
	"ext3":     0xEF53,
	"ext4":     0xEF53,
	"xfs":      0x58465342,
	"btrfs":    0x9123683E,
	"tmpfs":    0x01021994,
	"overlay":  0x794C7630,
	"cgroup2":  0x63677270,
	"cgroup":   0x27E0EB,
	"proc":     0x9FA0,
	"sysfs":    0x62656572,
	"9p":       0x01021997,
	"nfs":      0x6969,
	"zfs":      0x2FC12FC1,
	"devpts":   0x1CD1,
	"squashfs": 0x73717368,
	"ramfs":    0x858458F6,
	"fuse":     0x65735546,
}

// fsNames gives the canonical name of a magic (ext4 for 0xEF53).
var fsNames = func() map[int64]string {
	m := map[int64]string{}
	names := make([]string, 0, len(fsMagics))
	for n := range fsMagics {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		if _, ok := m[fsMagics[n]]; !ok || n == "ext4" {
			m[fsMagics[n]] = n
		}
	}
	return m
}()

// FSMagic turns a filesystem name (ext4, xfs, tmpfs, overlay, cgroup2,
// cgroup, proc, sysfs, 9p, ...) or a 0x magic number into the f_type value.
func FSMagic(s string) (int64, error) {
	if m, ok := fsMagics[strings.ToLower(s)]; ok {
		return m, nil
	}
	if strings.HasPrefix(s, "0x") || strings.HasPrefix(s, "0X") {
		v, err := strconv.ParseUint(s[2:], 16, 32)
		if err != nil || v == 0 {
			return 0, fmt.Errorf("filesystem magic %q is not a 32-bit hex number", s)
		}
		return int64(v), nil
	}
	names := make([]string, 0, len(fsMagics))
	for n := range fsMagics {
		names = append(names, n)
	}
	sort.Strings(names)
	return 0, fmt.Errorf("unknown filesystem type %q: use one of %s, or a 0x magic number", s, strings.Join(names, ", "))
}

// FSTypeName names a magic number, or formats it as 0x....
func FSTypeName(m int64) string {
	if n, ok := fsNames[m]; ok {
		return n
	}
	return "0x" + strconv.FormatInt(m, 16)
}

// CleanPath cleans an absolute path lexically, as the kernel starts its walk:
// repeated slashes collapse, "." disappears and ".." removes the previous
// element (never going above "/"). Unlike path.Clean it does not allocate
// when the path is already clean.
func CleanPath(p string) string {
	if isClean(p) {
		return p
	}
	buf := make([]byte, 0, len(p))
	buf = append(buf, '/')
	for i := 0; i < len(p); {
		for i < len(p) && p[i] == '/' {
			i++
		}
		j := i
		for j < len(p) && p[j] != '/' {
			j++
		}
		elem := p[i:j]
		i = j
		switch elem {
		case "", ".":
		case "..":
			k := len(buf) - 1
			for k > 0 && buf[k] != '/' {
				k--
			}
			buf = buf[:k]
			if len(buf) == 0 {
				buf = append(buf, '/')
			}
		default:
			if len(buf) > 1 {
				buf = append(buf, '/')
			}
			buf = append(buf, elem...)
		}
	}
	return string(buf)
}

// isClean reports whether an absolute path needs no cleaning.
func isClean(p string) bool {
	if len(p) == 0 || p[0] != '/' {
		return false
	}
	if len(p) == 1 {
		return true
	}
	if p[len(p)-1] == '/' {
		return false
	}
	start := 1
	for i := 1; i <= len(p); i++ {
		if i == len(p) || p[i] == '/' {
			elem := p[start:i]
			if elem == "" || elem == "." || elem == ".." {
				return false
			}
			start = i + 1
		}
	}
	return true
}

// HasPathPrefix reports whether p is prefix or lies below it. Both are clean
// and absolute; /proc/sysfoo is not below /proc/sys.
func HasPathPrefix(p, prefix string) bool {
	if prefix == "/" {
		return true
	}
	if !strings.HasPrefix(p, prefix) {
		return false
	}
	return len(p) == len(prefix) || p[len(prefix)] == '/'
}

// Observation is the outcome of one path of one syscall (Config.Observe).
type Observation struct {
	PID     int
	Syscall string
	// Path is the path the caller named, resolved; for fstatfs, the fd's
	// path; "" when unknown.
	Path string
	// Errno is the error the call returned, 0 on success.
	Errno syscall.Errno
	// FSType is the f_type a successful statfs or fstatfs returned (after
	// any rewrite), else 0.
	FSType int64
	// Rewritten says whether nodeboot changed the path of this call.
	Rewritten bool
}
