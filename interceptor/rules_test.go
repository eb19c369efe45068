package interceptor

import (
	"testing"

	"github.com/nodeboot/nodeboot/interceptor/rules"
)

func TestMatcherRedirect(t *testing.T) {
	rs := rules.Rules{Redirects: []rules.Redirect{
		{Guest: "/proc/sys", Host: "/h/sys"},        // 0
		{Guest: "/proc/sys/kernel", Host: "/h/k"},   // 1: longer, listed later
		{Guest: "/", Host: "/root"},                 // 2
		{Guest: "/x", Host: "/"},                    // 3: host is /
		{Guest: "/tmp/xx/a", Host: "/tmp/hh"},       // 4
		{Guest: "/deep/a/b/c", Host: "/d"},          // 5
		{Guest: "/deep/a", Host: "/e"},              // 6
		{Guest: "/same", Host: "/first"},            // 7: same guest twice: the first wins
		{Guest: "/same", Host: "/second"},           // 8
		{Guest: "/proc/sys/kernel/x", Host: "/h/x"}, // 9
	}}
	m := newMatcher(rs)
	tests := []struct {
		p    string
		host string
		rule int
	}{
		{"/proc/sys", "/h/sys", 0},
		{"/proc/sys/net/ipv4/ip_forward", "/h/sys/net/ipv4/ip_forward", 0},
		{"/proc/sys/kernel", "/h/k", 1},
		{"/proc/sys/kernel/ostype", "/h/k/ostype", 1},
		{"/proc/sys/kernel/x", "/h/x", 9},
		{"/proc/sys/kernel/x/y", "/h/x/y", 9},
		{"/proc/sys/kernel/xy", "/h/k/xy", 1},
		{"/proc/sysfoo", "/root/proc/sysfoo", 2},
		{"/proc", "/root/proc", 2},
		{"/", "/root", 2},
		{"/x", "/", 3},
		{"/x/y", "/y", 3},
		{"/x/y/z", "/y/z", 3},
		{"/xy", "/root/xy", 2},
		{"/tmp/xx/a", "/tmp/hh", 4},
		{"/tmp/xx/a/f", "/tmp/hh/f", 4},
		{"/tmp/xx/ab", "/root/tmp/xx/ab", 2},
		{"/deep/a/b/c/d", "/d/d", 5},
		{"/deep/a/b/cd", "/e/b/cd", 6},
		{"/deep/a/b", "/e/b", 6},
		{"/same/f", "/first/f", 7},
	}
	for _, tt := range tests {
		t.Run(tt.p, func(t *testing.T) {
			host, rule, ok := m.redirect(tt.p)
			if !ok || host != tt.host || rule != tt.rule {
				t.Errorf("redirect(%q) = %q, rule %d, %v; want %q, rule %d (%v), true",
					tt.p, host, rule, ok, tt.host, tt.rule, rs.Redirects[tt.rule])
			}
		})
	}
}

func TestMatcherNoMatch(t *testing.T) {
	m := newMatcher(rules.Rules{Redirects: []rules.Redirect{
		{Guest: "/proc/sys", Host: "/h/sys"},
		{Guest: "/tmp/xx/a", Host: "/tmp/hh"},
		{Guest: "/a/b", Host: "/"},
	}})
	for _, p := range []string{"/", "/proc", "/proc/sysfoo", "/proc/sy", "/procsys", "/tmp/xx", "/tmp/xx/ab", "/tmp/xx/a.b",
		"/a/bX", "/a", "/a/b.", "/other"} {
		if host, rule, ok := m.redirect(p); ok {
			t.Errorf("redirect(%q) = %q, rule %d, true; want no match", p, host, rule)
		}
	}
	// No rules at all.
	if host, _, ok := newMatcher(rules.Rules{}).redirect("/proc/sys"); ok {
		t.Errorf("empty matcher: redirect(/proc/sys) = %q, true", host)
	}
}

func TestMatcherIdentityRootRule(t *testing.T) {
	m := newMatcher(rules.Rules{Redirects: []rules.Redirect{{Guest: "/", Host: "/"}}})
	for _, p := range []string{"/", "/a", "/a/b"} {
		if host, rule, ok := m.redirect(p); !ok || host != p || rule != 0 {
			t.Errorf("redirect(%q) under /=/ = %q, %d, %v; want %q, 0, true", p, host, rule, ok, p)
		}
	}
}

func TestMatcherFSType(t *testing.T) {
	rs := rules.Rules{
		Redirects: []rules.Redirect{{Guest: "/r1", Host: "/h1"}, {Guest: "/r2", Host: "/h2"}}, // shift FSTypes' rule indexes by 2
		FSTypes: []rules.FSTypeRule{
			{Path: "/sys/fs/cgroup", To: 0x27E0EB},           // 2
			{From: 0x01021997, To: 0xEF53},                   // 3: 9p -> ext4
			{Path: "/sys/fs/cgroup/unified", To: 0x63677270}, // 4: longer path, listed later
			{Path: "/", To: 0x794C7630},                      // 5
			{From: 0x9FA0, To: 0x1234},                       // 6
		},
	}
	m := newMatcher(rs)
	if !m.needPathForFSType() {
		t.Error("needPathForFSType() = false with path rules")
	}
	tests := []struct {
		p    string
		real int64
		to   int64
		rule int
		ok   bool
	}{
		{"/sys/fs/cgroup", 0x9999, 0x27E0EB, 2, true},
		{"/sys/fs/cgroup/memory", 0x9999, 0x27E0EB, 2, true},
		{"/sys/fs/cgroup/unified", 0x9999, 0x63677270, 4, true},
		{"/sys/fs/cgroup/unified/x", 0x01021997, 0x63677270, 4, true},
		{"/sys/fs/cgroupfoo", 0x9999, 0x794C7630, 5, true}, // not below /sys/fs/cgroup: the / rule
		{"/", 0x01021997, 0x794C7630, 5, true},             // path rules come before type rules
		{"", 0x01021997, 0xEF53, 3, true},                  // no path (fstatfs of an fd without one): type rule
		{"", 0x9FA0, 0x1234, 6, true},
		{"", 0x9999, 0, -1, false},
	}
	for _, tt := range tests {
		t.Run(tt.p, func(t *testing.T) {
			to, rule, ok := m.fsType(tt.p, tt.real)
			if to != tt.to || rule != tt.rule || ok != tt.ok {
				t.Errorf("fsType(%q, %#x) = %#x, %d, %v; want %#x, %d, %v", tt.p, tt.real, to, rule, ok, tt.to, tt.rule, tt.ok)
			}
		})
	}

	// Type rules only.
	m = newMatcher(rules.Rules{FSTypes: []rules.FSTypeRule{{From: 0x01021997, To: 0xEF53}}})
	if m.needPathForFSType() {
		t.Error("needPathForFSType() = true with type rules only")
	}
	if to, rule, ok := m.fsType("/anything", 0x01021997); !ok || to != 0xEF53 || rule != 0 {
		t.Errorf("fsType(/anything, 9p) = %#x, %d, %v; want 0xef53, 0, true", to, rule, ok)
	}
	if _, _, ok := m.fsType("/anything", 0xEF53); ok {
		t.Error("fsType(/anything, ext4) matched a 9p rule")
	}
}

func TestModeString(t *testing.T) {
	for _, m := range []Mode{ModeAuto, ModeSeccomp, ModePtrace} {
		got, err := ParseMode(m.String())
		if err != nil || got != m {
			t.Errorf("ParseMode(%q) = %v, %v; want %v", m.String(), got, err, m)
		}
	}
	if m, err := ParseMode(""); err != nil || m != ModeAuto {
		t.Errorf(`ParseMode("") = %v, %v; want auto`, m, err)
	}
	if _, err := ParseMode("strace"); err == nil {
		t.Error(`ParseMode("strace"): no error`)
	}
	if s := Mode(7).String(); s != "Mode(7)" {
		t.Errorf("Mode(7).String() = %q", s)
	}
}

func TestExitCode(t *testing.T) {
	tests := []struct {
		e    Exit
		code int
		str  string
	}{
		{Exit{}, 0, "exit status 0"},
		{Exit{Code: 3}, 3, "exit status 3"},
		{Exit{Signal: 15}, 143, "killed by signal 15 (terminated)"},
		{Exit{Signal: 9}, 137, "killed by signal 9 (killed)"},
	}
	for _, tt := range tests {
		if got := tt.e.ExitCode(); got != tt.code {
			t.Errorf("%+v.ExitCode() = %d, want %d", tt.e, got, tt.code)
		}
		if got := tt.e.String(); got != tt.str {
			t.Errorf("%+v.String() = %q, want %q", tt.e, got, tt.str)
		}
	}
}

func TestMatcherUnredirect(t *testing.T) {
	tests := []struct {
		name  string
		rules []rules.Redirect
		p     string
		want  string
	}{
		{"below host", []rules.Redirect{{Guest: "/proc/sys", Host: "/h/sys"}}, "/h/sys/net/x", "/proc/sys/net/x"},
		{"host itself", []rules.Redirect{{Guest: "/proc/sys", Host: "/h/sys"}}, "/h/sys", "/proc/sys"},
		{"sibling of host", []rules.Redirect{{Guest: "/proc/sys", Host: "/h/sys"}}, "/h/sysfoo", "/h/sysfoo"},
		{"outside", []rules.Redirect{{Guest: "/proc/sys", Host: "/h/sys"}}, "/etc/passwd", "/etc/passwd"},
		{"empty", []rules.Redirect{{Guest: "/proc/sys", Host: "/h/sys"}}, "", ""},
		{"longest host", []rules.Redirect{{Guest: "/proc/sys", Host: "/h/sys"}, {Guest: "/proc/sys/kernel", Host: "/h/sys/kernel-fake"}},
			"/h/sys/kernel-fake/ostype", "/proc/sys/kernel/ostype"},
		{"shorter host", []rules.Redirect{{Guest: "/proc/sys", Host: "/h/sys"}, {Guest: "/proc/sys/kernel", Host: "/h/sys/kernel-fake"}},
			"/h/sys/kernel/ostype", "/proc/sys/kernel/ostype"},
		{"guest is root", []rules.Redirect{{Guest: "/", Host: "/root"}}, "/root/etc", "/etc"},
		{"guest is root, host itself", []rules.Redirect{{Guest: "/", Host: "/root"}}, "/root", "/"},
		{"host is root", []rules.Redirect{{Guest: "/x", Host: "/"}}, "/y/z", "/x/y/z"},
		{"host is root, root itself", []rules.Redirect{{Guest: "/x", Host: "/"}}, "/", "/x"},
		{"identity", []rules.Redirect{{Guest: "/", Host: "/"}}, "/a", "/a"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := newMatcher(rules.Rules{Redirects: tt.rules})
			if got := m.unredirect(tt.p); got != tt.want {
				t.Errorf("rules %v: unredirect(%q) = %q, want %q", tt.rules, tt.p, got, tt.want)
			}
		})
	}
}

func TestMatcherRuleKinds(t *testing.T) {
	m := newMatcher(rules.Rules{
		Redirects: []rules.Redirect{{Guest: "/a", Host: "/b"}},
		FSTypes:   []rules.FSTypeRule{{Path: "/p", To: 1}, {From: 2, To: 3}},
	})
	if !m.hasFSTypes() || !m.needPathForFSType() {
		t.Errorf("hasFSTypes() = %v, needPathForFSType() = %v; want true, true", m.hasFSTypes(), m.needPathForFSType())
	}
	for i, want := range []bool{false, false, true} { // redirect, path rule, type rule
		if got := m.isTypeRule(i); got != want {
			t.Errorf("isTypeRule(%d) = %v, want %v", i, got, want)
		}
	}
	if m := newMatcher(rules.Rules{Redirects: []rules.Redirect{{Guest: "/a", Host: "/b"}}}); m.hasFSTypes() || m.needPathForFSType() {
		t.Error("a matcher without fstype rules says it has some")
	}
}
