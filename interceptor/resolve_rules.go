package interceptor

import (
	"strings"

	"github.com/nodeboot/nodeboot/interceptor/rules"
)

// cover returns the redirect (index into m.redirects: the longest guest
// first) that covers the clean absolute path p, and p relative to its guest
// ("" for the guest itself).
func (m *matcher) cover(p string) (i int, rel string, ok bool) {
	for i, r := range m.redirects {
		if rules.HasPathPrefix(p, r.Guest) {
			rel = strings.TrimPrefix(p[len(r.Guest):], "/")
			if r.Guest == "/" {
				rel = strings.TrimPrefix(p, "/")
			}
			return i, rel, true
		}
	}
	return -1, "", false
}

// hostOf is the host path of rel below redirect i.
func (m *matcher) hostOf(i int, rel string) string {
	h := m.redirects[i].Host
	if rel == "" {
		return h
	}
	if h == "/" {
		return "/" + rel
	}
	return h + "/" + rel
}

// guestOf is the guest path of rel below redirect i.
func (m *matcher) guestOf(i int, rel string) string {
	g := m.redirects[i].Guest
	if rel == "" {
		return g
	}
	if g == "/" {
		return "/" + rel
	}
	return g + "/" + rel
}

// inHostTree returns the redirect whose host tree holds p (the longest
// host), and p relative to it.
func (m *matcher) inHostTree(p string) (i int, rel string, ok bool) {
	best := -1
	for j, r := range m.redirects {
		if rules.HasPathPrefix(p, r.Host) && (best < 0 || len(r.Host) > len(m.redirects[best].Host)) {
			best = j
		}
	}
	if best < 0 {
		return -1, "", false
	}
	h := m.redirects[best].Host
	rel = strings.TrimPrefix(p[len(h):], "/")
	if h == "/" {
		rel = strings.TrimPrefix(p, "/")
	}
	return best, rel, true
}
