package interceptor

import (
	"sort"

	"github.com/nodeboot/nodeboot/interceptor/rules"
)

// matcher answers rule questions for clean absolute paths.
type matcher struct {
	redirects []rules.Redirect // longest guest first
	pathTypes []rules.FSTypeRule
	typeTypes map[int64]int64
	// ruleIndex maps a rule to its slot in the tracer's rule counters.
	redirectIdx []int
	pathTypeIdx []int
	typeIdx     map[int64]int
}

func newMatcher(r rules.Rules) *matcher {
	m := &matcher{typeTypes: map[int64]int64{}, typeIdx: map[int64]int{}}
	type ir struct {
		r rules.Redirect
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
		r rules.FSTypeRule
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
		if rules.HasPathPrefix(p, r.Guest) {
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
			if rules.HasPathPrefix(p, r.Path) {
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
		if rules.HasPathPrefix(p, r.Host) && (best < 0 || len(r.Host) > len(m.redirects[best].Host)) {
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
		if rules.HasPathPrefix(p, r.Guest) {
			return true
		}
	}
	return false
}
