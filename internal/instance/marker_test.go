package instance

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestOpenMarker(t *testing.T) {
	write := func(t *testing.T, dir string, files ...string) {
		t.Helper()
		for _, f := range files {
			p := filepath.Join(dir, f)
			if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(p, []byte("x\n"), 0o600); err != nil {
				t.Fatal(err)
			}
		}
	}
	tests := []struct {
		name    string
		setup   func(t *testing.T, dir string)
		wantErr string
		created bool // the marker says nodeboot made the directory
	}{
		{name: "new", created: true, setup: func(t *testing.T, dir string) { os.Remove(dir) }},
		{name: "empty", setup: func(t *testing.T, dir string) {}},
		{name: "an earlier nodeboot's", setup: func(t *testing.T, dir string) {
			write(t, dir, "nodeboot.lock", "state.json", "root/proc/sys/kernel/panic", ".state.json.tmp-1234")
		}},
		{name: "the user's root/ and logs/", wantErr: "has no nodeboot.marker, so nodeboot did not make it (it holds logs, root)",
			setup: func(t *testing.T, dir string) { write(t, dir, "root/mine", "logs/mine") }},
		{name: "files of the user's", wantErr: "(it holds a, b, c, d, e, and 2 more)",
			setup: func(t *testing.T, dir string) { write(t, dir, "a", "b", "c", "d", "e", "f", "g", "nodeboot.lock") }},
		{name: "a marker not written by nodeboot", wantErr: "was not written by nodeboot",
			setup: func(t *testing.T, dir string) { write(t, dir, "nodeboot.marker") }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "data")
			if err := os.Mkdir(dir, 0o700); err != nil {
				t.Fatal(err)
			}
			tt.setup(t, dir)
			before, _ := os.ReadDir(dir)
			in, err := Open(dir)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("Open = %v, want an error containing %q", err, tt.wantErr)
				}
				if tt.name != "a marker not written by nodeboot" && !errors.Is(err, ErrNotDataDir) {
					t.Errorf("error %v is not ErrNotDataDir", err)
				}
				if after, _ := os.ReadDir(dir); len(after) != len(before) {
					t.Errorf("Open wrote into a directory it refused: %v", after)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			b, err := os.ReadFile(filepath.Join(in.Dir, markerName))
			if err != nil || !strings.HasPrefix(string(b), markerHeader) {
				t.Fatalf("marker: %q, %v", b, err)
			}
			if got := strings.Contains(string(b), markerCreated); got != tt.created {
				t.Errorf("marker says created-dir %v, want %v", got, tt.created)
			}
			if _, err := Open(dir); err != nil {
				t.Errorf("Open again: %v", err)
			}
		})
	}
}
