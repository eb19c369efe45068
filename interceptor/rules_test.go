package interceptor

import (
	"path"
	"reflect"
	"strings"
	"testing"
)

func TestCleanPath(t *testing.T) {
	tests := []struct {
		in, want string
	}{
		{"/", "/"},
		{"//", "/"},
		{"///", "/"},
		{"/proc/sys", "/proc/sys"},
		{"/proc/sys/", "/proc/sys"},
		{"/proc//sys", "/proc/sys"},
		{"//proc///sys//kernel//", "/proc/sys/kernel"},
		{"/proc/./sys", "/proc/sys"},
		{"/./proc/sys/.", "/proc/sys"},
		{"/proc/sys/..", "/proc"},
		{"/proc/sys/../..", "/"},
		{"/proc/sys/../../../..", "/"},
		{"/..", "/"},
		{"/../proc", "/proc"},
		{"/proc/sys/kernel/../net/./ipv4/", "/proc/sys/net/ipv4"},
		{"/.", "/"},
		{"/a/b/c/../../d", "/a/d"},
		// Names that only look like dots are names.
		{"/...", "/..."},
		{"/.a", "/.a"},
		{"/a.", "/a."},
		{"/a..", "/a.."},
		{"/..a/b", "/..a/b"},
		{"/a/.../b", "/a/.../b"},
		// CleanPath is for absolute paths; a relative one is taken as
		// relative to "/".
		{"", "/"},
		{".", "/"},
		{"..", "/"},
		{"a/b", "/a/b"},
		{"a/../../b", "/b"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			if got := CleanPath(tt.in); got != tt.want {
				t.Errorf("CleanPath(%q) = %q, want %q", tt.in, got, tt.want)
			}
			if strings.HasPrefix(tt.in, "/") {
				if pc := path.Clean(tt.in); pc != tt.want {
					t.Errorf("path.Clean(%q) = %q, want %q (the table is wrong)", tt.in, pc, tt.want)
				}
			}
		})
	}
}

func TestCleanPathDoesNotAllocateWhenClean(t *testing.T) {
	for _, p := range []string{"/", "/proc/sys/kernel/ostype", "/a/.b/c..d"} {
		if n := testing.AllocsPerRun(100, func() { _ = CleanPath(p) }); n != 0 {
			t.Errorf("CleanPath(%q) allocates %v times per call, want 0", p, n)
		}
	}
}

func TestIsClean(t *testing.T) {
	tests := []struct {
		in   string
		want bool
	}{
		{"/", true},
		{"/a", true},
		{"/a/b", true},
		{"/...", true},
		{"", false},
		{"a", false},
		{"//", false},
		{"/a/", false},
		{"/a//b", false},
		{"/./a", false},
		{"/a/.", false},
		{"/a/..", false},
		{"/../a", false},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			if got := isClean(tt.in); got != tt.want {
				t.Errorf("isClean(%q) = %v, want %v", tt.in, got, tt.want)
			}
		})
	}
}

func TestHasPathPrefix(t *testing.T) {
	tests := []struct {
		p, prefix string
		want      bool
	}{
		{"/proc/sys", "/proc/sys", true},
		{"/proc/sys/kernel", "/proc/sys", true},
		{"/proc/sysfoo", "/proc/sys", false},
		{"/proc/sy", "/proc/sys", false},
		{"/proc", "/proc/sys", false},
		{"/anything", "/", true},
		{"/", "/", true},
		{"/a/bX", "/a/b", false},
		{"/a/b/X", "/a/b", true},
	}
	for _, tt := range tests {
		t.Run(tt.p+"~"+tt.prefix, func(t *testing.T) {
			if got := hasPathPrefix(tt.p, tt.prefix); got != tt.want {
				t.Errorf("hasPathPrefix(%q, %q) = %v, want %v", tt.p, tt.prefix, got, tt.want)
			}
		})
	}
}

func TestParseRedirect(t *testing.T) {
	tests := []struct {
		in      string
		want    Redirect
		wantErr string // substring of the error; "" means no error
	}{
		{in: "/proc/sys=/var/lib/nodeboot/root/proc/sys", want: Redirect{"/proc/sys", "/var/lib/nodeboot/root/proc/sys"}},
		{in: "/proc//sys/=/x/./y/", want: Redirect{"/proc/sys", "/x/y"}},
		{in: "/=/", want: Redirect{"/", "/"}},
		{in: "/a/../b=/h/c/..", want: Redirect{"/b", "/h"}},
		// Only the first '=' separates: a host path may contain '='.
		{in: "/a=/b=c", want: Redirect{"/a", "/b=c"}},
		{in: "", wantErr: "want GUEST=HOST"},
		{in: "/proc/sys", wantErr: "want GUEST=HOST"},
		{in: "=/x", wantErr: "want GUEST=HOST"},
		{in: "/x=", wantErr: "want GUEST=HOST"},
		{in: "=", wantErr: "want GUEST=HOST"},
		{in: "proc/sys=/x", wantErr: `guest path "proc/sys" is relative`},
		{in: "/proc/sys=x", wantErr: `host path "x" is relative`},
		{in: "./a=/x", wantErr: "relative"},
		{in: "a=b=c", wantErr: `guest path "a" is relative`},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := ParseRedirect(tt.in)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("ParseRedirect(%q) = %+v, %v; want an error containing %q", tt.in, got, err, tt.wantErr)
				}
				if !strings.Contains(err.Error(), tt.in) {
					t.Errorf("ParseRedirect(%q) error %q does not quote the input", tt.in, err)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("ParseRedirect(%q) = %+v, %v; want %+v, nil", tt.in, got, err, tt.want)
			}
			if s := got.String(); s != "redirect "+tt.want.Guest+"="+tt.want.Host {
				t.Errorf("String() = %q", s)
			}
		})
	}
}

func TestParseFSType(t *testing.T) {
	tests := []struct {
		in      string
		want    FSTypeRule
		wantErr string
	}{
		{in: "9p=ext4", want: FSTypeRule{From: 0x01021997, To: 0xEF53}},
		{in: "overlay=ext4", want: FSTypeRule{From: 0x794C7630, To: 0xEF53}},
		{in: "EXT4=xfs", want: FSTypeRule{From: 0xEF53, To: 0x58465342}},
		{in: "0x1234=tmpfs", want: FSTypeRule{From: 0x1234, To: 0x01021994}},
		{in: "0XABCD=0xef53", want: FSTypeRule{From: 0xABCD, To: 0xEF53}},
		{in: "0xffffffff=ext4", want: FSTypeRule{From: 0xFFFFFFFF, To: 0xEF53}},
		{in: "/sys/fs/cgroup=cgroup2", want: FSTypeRule{Path: "/sys/fs/cgroup", To: 0x63677270}},
		{in: "/a/../b/=xfs", want: FSTypeRule{Path: "/b", To: 0x58465342}},
		{in: "/=ext4", want: FSTypeRule{Path: "/", To: 0xEF53}},
		{in: "", wantErr: "want FROM=TO"},
		{in: "ext4", wantErr: "want FROM=TO"},
		{in: "=ext4", wantErr: "want FROM=TO"},
		{in: "ext4=", wantErr: "want FROM=TO"},
		{in: "foo=ext4", wantErr: `unknown filesystem type "foo"`},
		{in: "ext4=foo", wantErr: `unknown filesystem type "foo"`},
		{in: "ext4=0xZZ", wantErr: "not a 32-bit hex number"},
		{in: "ext4=0x", wantErr: "not a 32-bit hex number"},
		{in: "ext4=0x0", wantErr: "not a 32-bit hex number"},
		{in: "ext4=0x1ffffffff", wantErr: "not a 32-bit hex number"},
		{in: "a/b=ext4", wantErr: `path "a/b" is relative`},
		{in: "./x=ext4", wantErr: "relative"},
		{in: ".=ext4", wantErr: "relative"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := ParseFSType(tt.in)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("ParseFSType(%q) = %+v, %v; want an error containing %q", tt.in, got, err, tt.wantErr)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("ParseFSType(%q) = %+v, %v; want %+v, nil", tt.in, got, err, tt.want)
			}
		})
	}
}

func TestFSMagic(t *testing.T) {
	tests := []struct {
		in      string
		want    int64
		wantErr bool
	}{
		{in: "ext4", want: 0xEF53},
		{in: "ext2", want: 0xEF53},
		{in: "Ext3", want: 0xEF53},
		{in: "XFS", want: 0x58465342},
		{in: "btrfs", want: 0x9123683E},
		{in: "tmpfs", want: 0x01021994},
		{in: "overlay", want: 0x794C7630},
		{in: "cgroup2", want: 0x63677270},
		{in: "cgroup", want: 0x27E0EB},
		{in: "proc", want: 0x9FA0},
		{in: "sysfs", want: 0x62656572},
		{in: "9p", want: 0x01021997},
		{in: "0x9fa0", want: 0x9FA0},
		{in: "0X9FA0", want: 0x9FA0},
		{in: "0x80000000", want: 0x80000000},
		{in: "", wantErr: true},
		{in: "ext5", wantErr: true},
		{in: "0x", wantErr: true},
		{in: "0x0", wantErr: true},
		{in: "0x-1", wantErr: true},
		{in: "0x100000000", wantErr: true},
		{in: "40787", wantErr: true}, // decimal is not accepted
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := FSMagic(tt.in)
			if tt.wantErr {
				if err == nil {
					t.Fatalf("FSMagic(%q) = %#x, nil; want an error", tt.in, got)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("FSMagic(%q) = %#x, %v; want %#x, nil", tt.in, got, err, tt.want)
			}
		})
	}
}

func TestFSMagicErrorListsNames(t *testing.T) {
	_, err := FSMagic("nosuchfs")
	if err == nil {
		t.Fatal("FSMagic(nosuchfs): no error")
	}
	for _, name := range []string{"ext4", "xfs", "tmpfs", "9p", "overlay", "0x magic"} {
		if !strings.Contains(err.Error(), name) {
			t.Errorf("FSMagic error %q does not mention %q", err, name)
		}
	}
}

func TestFSTypeName(t *testing.T) {
	tests := []struct {
		in   int64
		want string
	}{
		{0xEF53, "ext4"},
		{0x9FA0, "proc"},
		{0x01021997, "9p"},
		{0x794C7630, "overlay"},
		{0x1234, "0x1234"},
		{0xdeadbeef, "0xdeadbeef"},
	}
	for _, tt := range tests {
		if got := FSTypeName(tt.in); got != tt.want {
			t.Errorf("FSTypeName(%#x) = %q, want %q", tt.in, got, tt.want)
		}
	}
	// Every name round-trips to a name of the same magic.
	for name, magic := range fsMagics {
		n := FSTypeName(magic)
		m, err := FSMagic(n)
		if err != nil || m != magic {
			t.Errorf("FSMagic(FSTypeName(FSMagic(%q))) = %#x, %v; want %#x", name, m, err, magic)
		}
	}
}

func TestFSTypeRuleString(t *testing.T) {
	tests := []struct {
		r    FSTypeRule
		want string
	}{
		{FSTypeRule{From: 0x01021997, To: 0xEF53}, "fstype 9p=ext4"},
		{FSTypeRule{Path: "/sys/fs/cgroup", To: 0x63677270}, "fstype /sys/fs/cgroup=cgroup2"},
		{FSTypeRule{From: 0x1234, To: 0x5678}, "fstype 0x1234=0x5678"},
	}
	for _, tt := range tests {
		if got := tt.r.String(); got != tt.want {
			t.Errorf("%+v.String() = %q, want %q", tt.r, got, tt.want)
		}
	}
}

func TestRulesValidate(t *testing.T) {
	tests := []struct {
		name    string
		rules   Rules
		wantErr string
	}{
		{name: "empty", rules: Rules{}},
		{name: "ok", rules: Rules{
			Redirects: []Redirect{{"/proc/sys", "/h"}},
			FSTypes:   []FSTypeRule{{Path: "/sys", To: 1}, {From: 2, To: 3}},
		}},
		{name: "relative guest", rules: Rules{Redirects: []Redirect{{"proc", "/h"}}}, wantErr: `guest path "proc" is relative`},
		{name: "relative host", rules: Rules{Redirects: []Redirect{{"/proc", "h"}}}, wantErr: `host path "h" is relative`},
		{name: "relative fstype path", rules: Rules{FSTypes: []FSTypeRule{{Path: "sys", To: 1}}}, wantErr: `path "sys" is relative`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.rules.Validate()
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("Validate() = %v, want nil", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("Validate() = %v, want an error containing %q", err, tt.wantErr)
			}
		})
	}
}

func TestRulesMerge(t *testing.T) {
	base := Rules{
		Redirects: []Redirect{{"/proc/sys", "/base/sys"}, {"/sys", "/base/sysfs"}},
		FSTypes:   []FSTypeRule{{From: 0x01021997, To: 0xEF53}, {Path: "/sys/fs/cgroup", To: 0x27E0EB}},
	}
	over := Rules{
		Redirects: []Redirect{{"/proc/sys", "/over/sys"}, {"/dev", "/over/dev"}},
		FSTypes:   []FSTypeRule{{From: 0x01021997, To: 0x58465342}, {Path: "/sys/fs/cgroup", To: 0x63677270}},
	}
	got := base.Merge(over)
	want := Rules{
		Redirects: []Redirect{{"/sys", "/base/sysfs"}, {"/proc/sys", "/over/sys"}, {"/dev", "/over/dev"}},
		FSTypes:   []FSTypeRule{{From: 0x01021997, To: 0x58465342}, {Path: "/sys/fs/cgroup", To: 0x63677270}},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Merge:\n got %+v\nwant %+v", got, want)
	}
	if !(Rules{}).Empty() || base.Empty() || !(Rules{}).Merge(Rules{}).Empty() {
		t.Error("Empty() is wrong")
	}
	if m := (Rules{}).Merge(base); !reflect.DeepEqual(m, base) {
		t.Errorf("empty.Merge(base) = %+v, want %+v", m, base)
	}
}

func TestMatcherRedirect(t *testing.T) {
	rules := Rules{Redirects: []Redirect{
		{"/proc/sys", "/h/sys"},        // 0
		{"/proc/sys/kernel", "/h/k"},   // 1: longer, listed later
		{"/", "/root"},                 // 2
		{"/x", "/"},                    // 3: host is /
		{"/tmp/xx/a", "/tmp/hh"},       // 4
		{"/deep/a/b/c", "/d"},          // 5
		{"/deep/a", "/e"},              // 6
		{"/same", "/first"},            // 7: same guest twice: the first wins
		{"/same", "/second"},           // 8
		{"/proc/sys/kernel/x", "/h/x"}, // 9
	}}
	m := newMatcher(rules)
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
					tt.p, host, rule, ok, tt.host, tt.rule, rules.Redirects[tt.rule])
			}
		})
	}
}

func TestMatcherNoMatch(t *testing.T) {
	m := newMatcher(Rules{Redirects: []Redirect{
		{"/proc/sys", "/h/sys"},
		{"/tmp/xx/a", "/tmp/hh"},
		{"/a/b", "/"},
	}})
	for _, p := range []string{"/", "/proc", "/proc/sysfoo", "/proc/sy", "/procsys", "/tmp/xx", "/tmp/xx/ab", "/tmp/xx/a.b",
		"/a/bX", "/a", "/a/b.", "/other"} {
		if host, rule, ok := m.redirect(p); ok {
			t.Errorf("redirect(%q) = %q, rule %d, true; want no match", p, host, rule)
		}
	}
	// No rules at all.
	if host, _, ok := newMatcher(Rules{}).redirect("/proc/sys"); ok {
		t.Errorf("empty matcher: redirect(/proc/sys) = %q, true", host)
	}
}

func TestMatcherIdentityRootRule(t *testing.T) {
	m := newMatcher(Rules{Redirects: []Redirect{{"/", "/"}}})
	for _, p := range []string{"/", "/a", "/a/b"} {
		if host, rule, ok := m.redirect(p); !ok || host != p || rule != 0 {
			t.Errorf("redirect(%q) under /=/ = %q, %d, %v; want %q, 0, true", p, host, rule, ok, p)
		}
	}
}

func TestMatcherFSType(t *testing.T) {
	rules := Rules{
		Redirects: []Redirect{{"/r1", "/h1"}, {"/r2", "/h2"}}, // shift FSTypes' rule indexes by 2
		FSTypes: []FSTypeRule{
			{Path: "/sys/fs/cgroup", To: 0x27E0EB},           // 2
			{From: 0x01021997, To: 0xEF53},                   // 3: 9p -> ext4
			{Path: "/sys/fs/cgroup/unified", To: 0x63677270}, // 4: longer path, listed later
			{Path: "/", To: 0x794C7630},                      // 5
			{From: 0x9FA0, To: 0x1234},                       // 6
		},
	}
	m := newMatcher(rules)
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
	m = newMatcher(Rules{FSTypes: []FSTypeRule{{From: 0x01021997, To: 0xEF53}}})
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
		rules []Redirect
		p     string
		want  string
	}{
		{"below host", []Redirect{{"/proc/sys", "/h/sys"}}, "/h/sys/net/x", "/proc/sys/net/x"},
		{"host itself", []Redirect{{"/proc/sys", "/h/sys"}}, "/h/sys", "/proc/sys"},
		{"sibling of host", []Redirect{{"/proc/sys", "/h/sys"}}, "/h/sysfoo", "/h/sysfoo"},
		{"outside", []Redirect{{"/proc/sys", "/h/sys"}}, "/etc/passwd", "/etc/passwd"},
		{"empty", []Redirect{{"/proc/sys", "/h/sys"}}, "", ""},
		{"longest host", []Redirect{{"/proc/sys", "/h/sys"}, {"/proc/sys/kernel", "/h/sys/kernel-fake"}},
			"/h/sys/kernel-fake/ostype", "/proc/sys/kernel/ostype"},
		{"shorter host", []Redirect{{"/proc/sys", "/h/sys"}, {"/proc/sys/kernel", "/h/sys/kernel-fake"}},
			"/h/sys/kernel/ostype", "/proc/sys/kernel/ostype"},
		{"guest is root", []Redirect{{"/", "/root"}}, "/root/etc", "/etc"},
		{"guest is root, host itself", []Redirect{{"/", "/root"}}, "/root", "/"},
		{"host is root", []Redirect{{"/x", "/"}}, "/y/z", "/x/y/z"},
		{"host is root, root itself", []Redirect{{"/x", "/"}}, "/", "/x"},
		{"identity", []Redirect{{"/", "/"}}, "/a", "/a"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := newMatcher(Rules{Redirects: tt.rules})
			if got := m.unredirect(tt.p); got != tt.want {
				t.Errorf("rules %v: unredirect(%q) = %q, want %q", tt.rules, tt.p, got, tt.want)
			}
		})
	}
}

func TestMatcherRuleKinds(t *testing.T) {
	m := newMatcher(Rules{
		Redirects: []Redirect{{"/a", "/b"}},
		FSTypes:   []FSTypeRule{{Path: "/p", To: 1}, {From: 2, To: 3}},
	})
	if !m.hasFSTypes() || !m.needPathForFSType() {
		t.Errorf("hasFSTypes() = %v, needPathForFSType() = %v; want true, true", m.hasFSTypes(), m.needPathForFSType())
	}
	for i, want := range []bool{false, false, true} { // redirect, path rule, type rule
		if got := m.isTypeRule(i); got != want {
			t.Errorf("isTypeRule(%d) = %v, want %v", i, got, want)
		}
	}
	if m := newMatcher(Rules{Redirects: []Redirect{{"/a", "/b"}}}); m.hasFSTypes() || m.needPathForFSType() {
		t.Error("a matcher without fstype rules says it has some")
	}
}
