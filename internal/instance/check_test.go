package instance

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestCheck: Check says what Open would say about a data dir, and creates
// nothing.
func TestCheck(t *testing.T) {
	tmp := t.TempDir()
	file := filepath.Join(tmp, "file")
	loose := filepath.Join(tmp, "loose")
	link := filepath.Join(tmp, "link")
	own := filepath.Join(tmp, "own")
	theirs := filepath.Join(tmp, "theirs") // a directory with files of someone else's
	for _, err := range []error{
		os.WriteFile(file, nil, 0o600),
		os.Mkdir(loose, 0o700), os.Chmod(loose, 0o777),
		os.Mkdir(own, 0o700),
		os.Symlink(own, link),
		os.Mkdir(theirs, 0o700), os.WriteFile(filepath.Join(theirs, "notes.txt"), nil, 0o600),
	} {
		if err != nil {
			t.Fatal(err)
		}
	}
	for _, tc := range []struct {
		dir, want string // want "": no error
	}{
		{own, ""},
		{filepath.Join(tmp, "new", "deeper"), ""},
		{"/proc/nope", "/proc is on proc, a kernel filesystem"},
		{"/sys/fs/nodeboot", "is on sysfs"},
		{file, file + " is a regular file, not a directory"},
		{filepath.Join(file, "sub"), file + " is a regular file, not a directory"},
		{loose, "is writable by every user (mode 0777)"},
		{link, "is a symlink"},
		{"", "data dir is empty"},
		{"/", "/ cannot be a data dir"},
		{theirs, "is not empty and has no nodeboot.marker"},
	} {
		_, err := Check(tc.dir)
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("Check(%q) = %v, want nil", tc.dir, err)
		case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
			t.Errorf("Check(%q) = %v, want an error with %q", tc.dir, err, tc.want)
		}
	}
	if _, err := os.Lstat(filepath.Join(tmp, "new")); !os.IsNotExist(err) {
		t.Errorf("Check created the data dir's parent: %v", err)
	}
	// What Check accepts, Open can make; then Check accepts it as ours.
	if _, err := Open(filepath.Join(tmp, "new", "deeper")); err != nil {
		t.Errorf("Open after Check: %v", err)
	}
	if _, err := Check(filepath.Join(tmp, "new", "deeper")); err != nil {
		t.Errorf("Check after Open: %v", err)
	}
}
