package interceptor

import (
	"path"
	"strings"
	"testing"
)

// Run with: go test ./interceptor/ -run '^$' -fuzz FuzzCleanPath -fuzztime 30s
// (and FuzzRedirectMatch). Without -fuzz the seeds run as unit tests.

func FuzzCleanPath(f *testing.F) {
	for _, s := range []string{
		"/", "", ".", "..", "//", "/proc/sys", "/proc/sys/", "//proc//sys//", "/./proc/./sys/.",
		"/proc/sys/..", "/../../..", "/proc/../../x", "/...", "/.a/..b/c..", "a/b", "../a",
		"/proc/self/../sys", "/a/b/c/../../../../d/", "/\x00/x", "/a\\b/../c",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, p string) {
		c := CleanPath(p)
		if !strings.HasPrefix(c, "/") {
			t.Fatalf("CleanPath(%q) = %q: not absolute", p, c)
		}
		if CleanPath(c) != c {
			t.Fatalf("CleanPath(%q) = %q, but CleanPath(%q) = %q: not idempotent", p, c, c, CleanPath(c))
		}
		if !isClean(c) {
			t.Fatalf("CleanPath(%q) = %q, which isClean rejects", p, c)
		}
		for _, bad := range []string{"//", "/./", "/../"} {
			if strings.Contains(c, bad) {
				t.Fatalf("CleanPath(%q) = %q contains %q", p, c, bad)
			}
		}
		if c != "/" && (strings.HasSuffix(c, "/") || strings.HasSuffix(c, "/.") || strings.HasSuffix(c, "/..")) {
			t.Fatalf("CleanPath(%q) = %q has a trailing /, /. or /..", p, c)
		}
		// Absolute input: exactly path.Clean. Relative input: as if
		// below "/".
		want := path.Clean("/" + p)
		if strings.HasPrefix(p, "/") {
			want = path.Clean(p)
		}
		if c != want {
			t.Fatalf("CleanPath(%q) = %q, path.Clean gives %q", p, c, want)
		}
	})
}

// below reports whether p is base or lies below it (both clean).
func fuzzBelow(p, base string) bool {
	return base == "/" || p == base || strings.HasPrefix(p, base+"/")
}

// rel returns p's part below base ("" for base itself), for p below base.
func fuzzRel(p, base string) string {
	if base == "/" {
		return strings.TrimPrefix(p, "/")
	}
	return strings.TrimPrefix(strings.TrimPrefix(p, base), "/")
}

func FuzzRedirectMatch(f *testing.F) {
	type seed struct{ g1, h1, g2, h2, p string }
	for _, s := range []seed{
		{"/proc/sys", "/var/lib/nodeboot/sys", "/proc/sys/kernel", "/k", "/proc/sys/kernel/ostype"},
		{"/proc/sys", "/h", "/sys", "/s", "/proc/sysfoo"},
		{"/a/b", "/h", "/a", "/i", "/a/bX"},
		{"/a/b", "/h", "/a", "/i", "/a/b/../bX"},
		{"/a/b", "/h", "/a/b/c", "/j", "/a/b/c"},
		{"/", "/root", "/x", "/", "/x/y"},
		{"/", "/", "/a", "/b", "/"},
		{"//a/./b/../c", "/h/", "/a/c/d", "/e", "/a/c/d/e"},
		{"/tmp/xx/a", "/tmp/hh", "/tmp/xx/ab", "/tmp/hb", "/tmp/xx/ab/c"},
		{"/same", "/first", "/same", "/second", "/same/f"},
		{"", "", "", "", ""},
		{"..", "..", "a", "b", "../.."},
		{"/x", "/", "/a", "/b", "/x"},
	} {
		f.Add(s.g1, s.h1, s.g2, s.h2, s.p)
	}
	f.Fuzz(func(t *testing.T, g1, h1, g2, h2, p string) {
		rs := []Redirect{
			{Guest: CleanPath(g1), Host: CleanPath(h1)},
			{Guest: CleanPath(g2), Host: CleanPath(h2)},
		}
		q := CleanPath(p)
		m := newMatcher(Rules{Redirects: rs})
		host, idx, ok := m.redirect(q)

		// The expected rule: the longest guest that q lies below; on a
		// tie (the same guest twice) the first listed.
		want := -1
		for i, r := range rs {
			if fuzzBelow(q, r.Guest) && (want < 0 || len(r.Guest) > len(rs[want].Guest)) {
				want = i
			}
		}
		if want < 0 {
			if ok {
				t.Fatalf("rules %v: redirect(%q) = %q, rule %d; want no match", rs, q, host, idx)
			}
		} else {
			r := rs[want]
			if !ok || idx != want {
				t.Fatalf("rules %v: redirect(%q) = %q, rule %d, %v; want rule %d (%v)", rs, q, host, idx, ok, want, r)
			}
			if !fuzzBelow(host, r.Host) {
				t.Fatalf("rules %v: redirect(%q) = %q, not below the rule's host %q", rs, q, host, r.Host)
			}
			if fuzzRel(host, r.Host) != fuzzRel(q, r.Guest) {
				t.Fatalf("rules %v: redirect(%q) = %q: keeps %q below the host, want %q", rs, q, host, fuzzRel(host, r.Host), fuzzRel(q, r.Guest))
			}
			if CleanPath(host) != host {
				t.Fatalf("rules %v: redirect(%q) = %q: not clean", rs, q, host)
			}
		}

		// unredirect undoes redirect, for each rule on its own.
		for _, r := range rs {
			one := newMatcher(Rules{Redirects: []Redirect{r}})
			h, _, ok := one.redirect(q)
			if !ok {
				continue
			}
			if back := one.unredirect(h); back != q {
				t.Fatalf("rule %v: redirect(%q) = %q, unredirect of that = %q, want %q", r, q, h, back, q)
			}
		}

		// A name that merely starts like a guest is not below it.
		for _, r := range rs {
			if r.Guest == "/" {
				continue
			}
			lookalike := r.Guest + "X"
			if h, j, ok := m.redirect(lookalike); ok && (j < 0 || j >= len(rs) || !fuzzBelow(lookalike, rs[j].Guest)) {
				t.Fatalf("rules %v: redirect(%q) = %q by rule %d: %q is not below that rule's guest", rs, lookalike, h, j, lookalike)
			}
		}
	})
}
