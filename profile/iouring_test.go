package profile

import (
	"path/filepath"
	"strings"
	"testing"
)

// TestAllowIOUring: the option is off unless a profile of the chain turns
// it on, it must be a boolean, and no built-in profile turns it on.
func TestAllowIOUring(t *testing.T) {
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{
		"on.yaml":       "name: ring-on\nallowIOUring: true\n",
		"off.yaml":      "name: ring-off\n",
		"child.yaml":    "name: child\nbase: ./on.yaml\n",
		"offchild.yaml": "name: offchild\nbase: ./off.yaml\n",
		"bad.yaml":      "name: bad\nallowIOUring: \"yes\"\n",
	})
	for name, want := range map[string]bool{"on": true, "off": false, "child": true, "offchild": false} {
		p, err := Load(filepath.Join(dir, name+".yaml"))
		if err != nil {
			t.Fatalf("Load %s: %v", name, err)
		}
		if p.AllowIOUring != want {
			t.Errorf("%s: AllowIOUring = %v, want %v", name, p.AllowIOUring, want)
		}
		back, err := Parse(p.YAML(), "shown.yaml")
		if err != nil || back.AllowIOUring != want {
			t.Errorf("%s: shown and parsed back: AllowIOUring = %v (%v), want %v\n%s", name, back != nil && back.AllowIOUring, err, want, p.YAML())
		}
	}
	if _, err := Load(filepath.Join(dir, "bad.yaml")); err == nil || !strings.Contains(err.Error(), "allowIOUring") {
		t.Errorf("allowIOUring: \"yes\": err = %v, want an error naming the field", err)
	}
	for _, in := range List() {
		p, err := Load(in.Name)
		if err != nil {
			t.Fatal(err)
		}
		if p.AllowIOUring {
			t.Errorf("built-in profile %s allows io_uring: its opens would bypass the rules", in.Name)
		}
	}
}
