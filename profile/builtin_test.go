package profile

import (
	"reflect"
	"strings"
	"testing"
)

// TestBuiltinK3s checks what a unit test can: the profile loads, builds
// its rules, and says for every entry which component needs it. What the
// components get from it is tested by running a real shell on it under the
// tracer (k3s_integration_test.go) and in e2e/consumers.
func TestBuiltinK3s(t *testing.T) {
	p, err := Load("k3s")
	if err != nil {
		t.Fatalf("Load(k3s): %v", err)
	}
	for _, f := range p.Files {
		if f.Reason == "" {
			t.Errorf("%s has no reason; say which component reads it", f.Path)
		}
	}
	for _, d := range p.Dynamic {
		if d.Reason == "" {
			t.Errorf("dynamic %s has no reason; say which component reads it", d.Path)
		}
	}
	if _, err := p.Rules("/var/lib/nodeboot/root"); err != nil {
		t.Errorf("Rules: %v", err)
	}
}

func TestList(t *testing.T) {
	infos := List()
	var names []string
	for _, in := range infos {
		names = append(names, in.Name)
		if in.Description == "" || strings.HasPrefix(in.Description, "(invalid") {
			t.Errorf("built-in %s: description %q", in.Name, in.Description)
		}
		if in.Source != builtinPrefix+in.Name {
			t.Errorf("built-in %s: source %q", in.Name, in.Source)
		}
		// Every built-in loads and validates with its chain.
		if _, err := Load(in.Name); err != nil {
			t.Errorf("Load(%s): %v", in.Name, err)
		}
	}
	if want := []string{"empty", "k3s"}; !reflect.DeepEqual(names, want) {
		t.Errorf("List names = %q, want %q", names, want)
	}
}

// TestYAMLRoundTrip checks that what "nodeboot profile show" prints parses
// back to the same profile.
func TestYAMLRoundTrip(t *testing.T) {
	tricky := &Profile{
		Name:        "tricky",
		Description: "yes: it's \"quoted\" # not a comment",
		Files: []File{
			{Path: "/proc/sys/a", Content: "1\t0\n"},
			{Path: "/proc/sys/b", Content: "üñí\x01\\ \"x\"\n", Mode: "0600", Reason: "on"},
			{Path: "/proc/sys/c c", Generate: GenerateUUID},
			{Path: "/proc/sys/d", Dir: true, Mode: "0700"},
			{Path: "/proc/sys/e", CopyFromHost: true, Content: "no"},
		},
		Dynamic:      []Dynamic{{Path: "/dev/kmsg", Kind: KindKmsg, Reason: "null"}},
		Redirects:    []string{"/proc/sys", "/dev/kmsg"},
		FSTypes:      []string{"9p=ext4"},
		AllowIOUring: true,
	}
	profiles := []*Profile{tricky}
	for _, in := range List() {
		p, err := Load(in.Name)
		if err != nil {
			t.Fatal(err)
		}
		profiles = append(profiles, p)
	}
	strip := func(p *Profile) Profile {
		q := *p
		q.Source, q.Chain = "", nil
		q.Files = append([]File(nil), p.Files...)
		for i := range q.Files {
			q.Files[i].origin = origin{}
		}
		q.Dynamic = append([]Dynamic(nil), p.Dynamic...)
		for i := range q.Dynamic {
			q.Dynamic[i].origin = origin{}
		}
		return q
	}
	for _, p := range profiles {
		t.Run(p.Name, func(t *testing.T) {
			out := p.YAML()
			back, err := Parse(out, "shown.yaml")
			if err != nil {
				t.Fatalf("Parse(YAML()): %v\n%s", err, out)
			}
			if got, want := strip(back), strip(p); !reflect.DeepEqual(got, want) {
				t.Errorf("round trip differs:\n got %+v\nwant %+v\n%s", got, want, out)
			}
		})
	}
}
