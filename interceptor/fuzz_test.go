package interceptor

import (
	"strings"
	"testing"

	"github.com/nodeboot/nodeboot/interceptor/rules"
)

// Run with: go test ./interceptor/ -run '^$' -fuzz FuzzCleanPath -fuzztime 30s
// (and FuzzRedirectMatch). Without -fuzz the seeds run as unit tests.

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
		rs := []rules.Redirect{
			{Guest: rules.CleanPath(g1), Host: rules.CleanPath(h1)},
			{Guest: rules.CleanPath(g2), Host: rules.CleanPath(h2)},
		}
		q := rules.CleanPath(p)
		m := newMatcher(rules.Rules{Redirects: rs})
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
			if rules.CleanPath(host) != host {
				t.Fatalf("rules %v: redirect(%q) = %q: not clean", rs, q, host)
			}
		}

		// unredirect undoes redirect, for each rule on its own.
		for _, r := range rs {
			one := newMatcher(rules.Rules{Redirects: []rules.Redirect{r}})
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
