package interceptor

import (
	"fmt"
	"sort"
	"strconv"
	"strings"
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

// hasPathPrefix reports whether p is prefix or lies below it. Both are clean
// and absolute; /proc/sysfoo is not below /proc/sys.
func hasPathPrefix(p, prefix string) bool {
	if prefix == "/" {
		return true
	}
	if !strings.HasPrefix(p, prefix) {
		return false
	}
	return len(p) == len(prefix) || p[len(prefix)] == '/'
}

// matcher answers rule questions for clean absolute paths.
type matcher struct {
	redirects []Redirect // longest guest first
	pathTypes []FSTypeRule
	typeTypes map[int64]int64
	// ruleIndex maps a rule to its slot in the tracer's rule counters.
	redirectIdx []int
	pathTypeIdx []int
	typeIdx     map[int64]int
}

func newMatcher(r Rules) *matcher {
	m := &matcher{typeTypes: map[int64]int64{}, typeIdx: map[int64]int{}}
	type ir struct {
		r Redirect
		i int
	}
	var rs []ir
	for i, x := range r.Redirects {
		rs = append(rs, ir{x, i})
	}
	sort.SliceStable(rs, func(a, b int) bool { return len(rs[a].r.Guest) > len(rs[b].r.Guest) })
	for _, x := range rs {
		m.redirects = append(m.redirects, x.r)
		m.redirectIdx = append(m.redirectIdx, x.i)
	}
	type ft struct {
		r FSTypeRule
		i int
	}
	var ps []ft
	for i, x := range r.FSTypes {
		if x.Path != "" {
			ps = append(ps, ft{x, len(r.Redirects) + i})
		} else {
			m.typeTypes[x.From] = x.To
			m.typeIdx[x.From] = len(r.Redirects) + i
		}
	}
	sort.SliceStable(ps, func(a, b int) bool { return len(ps[a].r.Path) > len(ps[b].r.Path) })
	for _, x := range ps {
		m.pathTypes = append(m.pathTypes, x.r)
		m.pathTypeIdx = append(m.pathTypeIdx, x.i)
	}
	return m
}

// redirect returns the host path for p under the longest matching guest,
// and the index of the rule, or ok=false when no rule covers p.
func (m *matcher) redirect(p string) (host string, rule int, ok bool) {
	for i, r := range m.redirects {
		if hasPathPrefix(p, r.Guest) {
			rest := p[len(r.Guest):]
			if r.Guest == "/" {
				rest = p
				if r.Host == "/" {
					return p, m.redirectIdx[i], true
				}
				if p == "/" {
					return r.Host, m.redirectIdx[i], true
				}
			}
			if r.Host == "/" && rest != "" {
				return rest, m.redirectIdx[i], true
			}
			return r.Host + rest, m.redirectIdx[i], true
		}
	}
	return "", -1, false
}

// fsType returns the f_type to report for a statfs of path p (may be "")
// that returned real, and the rule index, or ok=false to leave it.
func (m *matcher) fsType(p string, real int64) (int64, int, bool) {
	if p != "" {
		for i, r := range m.pathTypes {
			if hasPathPrefix(p, r.Path) {
				return r.To, m.pathTypeIdx[i], true
			}
		}
	}
	if to, ok := m.typeTypes[real]; ok {
		return to, m.typeIdx[real], true
	}
	return 0, -1, false
}

func (m *matcher) needPathForFSType() bool { return len(m.pathTypes) > 0 }

func (m *matcher) hasFSTypes() bool { return len(m.pathTypes) > 0 || len(m.typeTypes) > 0 }

// isTypeRule reports whether rule index i is a by-type fstype rule.
func (m *matcher) isTypeRule(i int) bool {
	for _, j := range m.typeIdx {
		if j == i {
			return true
		}
	}
	return false
}

// unredirect maps a path below some rule's host back to the guest path it
// serves; other paths come back unchanged.
func (m *matcher) unredirect(p string) string {
	if p == "" {
		return p
	}
	best := -1
	for i, r := range m.redirects {
		if hasPathPrefix(p, r.Host) && (best < 0 || len(r.Host) > len(m.redirects[best].Host)) {
			best = i
		}
	}
	if best < 0 {
		return p
	}
	r := m.redirects[best]
	rest := p[len(r.Host):]
	if r.Host == "/" {
		rest = p
		if p == "/" {
			rest = ""
		}
	}
	if r.Guest == "/" {
		if rest == "" {
			return "/"
		}
		return rest
	}
	return r.Guest + rest
}

// covers reports whether some redirect's guest path covers p (whether or
// not its host has the file).
func (m *matcher) covers(p string) bool {
	for _, r := range m.redirects {
		if hasPathPrefix(p, r.Guest) {
			return true
		}
	}
	return false
}
