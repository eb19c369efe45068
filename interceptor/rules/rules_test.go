package rules

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
			if got := HasPathPrefix(tt.p, tt.prefix); got != tt.want {
				t.Errorf("HasPathPrefix(%q, %q) = %v, want %v", tt.p, tt.prefix, got, tt.want)
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
