package safefs

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

func TestReadFile(t *testing.T) {
	dir := t.TempDir()
	small := filepath.Join(dir, "small")
	if err := os.WriteFile(small, []byte("hello"), 0o600); err != nil {
		t.Fatal(err)
	}
	exact := filepath.Join(dir, "exact")
	if err := os.WriteFile(exact, []byte("12345678"), 0o600); err != nil {
		t.Fatal(err)
	}
	big := filepath.Join(dir, "big")
	if err := os.WriteFile(big, make([]byte, 9), 0o600); err != nil {
		t.Fatal(err)
	}
	fifo := filepath.Join(dir, "fifo")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(dir, "link")
	if err := os.Symlink(small, link); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		path    string
		want    string
		is      error
		wantMsg []string
	}{
		{"regular", small, "hello", nil, nil},
		{"exactly the limit", exact, "12345678", nil, nil},
		{"symlink to a regular file", link, "hello", nil, nil},
		{"one byte over", big, "", ErrTooLarge, []string{big, "larger than 8 bytes"}},
		{"FIFO (would hang)", fifo, "", ErrNotRegular, []string{fifo, "is a FIFO"}},
		{"/dev/zero (endless)", "/dev/zero", "", ErrNotRegular, []string{"/dev/zero is a character device"}},
		{"directory", dir, "", ErrNotRegular, []string{"is a directory"}},
		{"missing", filepath.Join(dir, "nope"), "", fs.ErrNotExist, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			done := make(chan struct{})
			var got []byte
			var err error
			go func() {
				got, err = ReadFile(tt.path, 8)
				close(done)
			}()
			select {
			case <-done:
			case <-time.After(10 * time.Second):
				t.Fatalf("ReadFile(%s) hangs", tt.path)
			}
			if tt.is == nil {
				if err != nil || string(got) != tt.want {
					t.Fatalf("ReadFile = %q, %v; want %q", got, err, tt.want)
				}
				return
			}
			if !errors.Is(err, tt.is) {
				t.Fatalf("ReadFile error %v is not %v", err, tt.is)
			}
			for _, m := range tt.wantMsg {
				if !strings.Contains(err.Error(), m) {
					t.Errorf("error %q does not contain %q", err, m)
				}
			}
		})
	}
}

// TestReadFileProc reads a procfs file, which reports size 0.
func TestReadFileProc(t *testing.T) {
	b, err := ReadFile("/proc/self/status", 1<<20)
	if err != nil || !strings.Contains(string(b), "Name:") {
		t.Fatalf("ReadFile(/proc/self/status) = %q, %v", b, err)
	}
}

func TestFormatSize(t *testing.T) {
	for n, want := range map[int64]string{1 << 20: "1 MiB", 64 << 10: "64 KiB", 100: "100 bytes", 1500: "1500 bytes"} {
		if got := FormatSize(n); got != want {
			t.Errorf("FormatSize(%d) = %q, want %q", n, got, want)
		}
	}
}

// TestReadFileProcfs: procfs files report size 0, and /proc/sys integer
// files give EOF to a read at a non-zero offset: the whole value must come
// in the first read.
func TestReadFileProcfs(t *testing.T) {
	for _, p := range []string{"/proc/sys/kernel/pid_max", "/proc/sys/kernel/threads-max", "/proc/sys/kernel/osrelease"} {
		want, err := os.ReadFile(p)
		if err != nil {
			t.Skipf("no %s here: %v", p, err)
		}
		got, err := ReadFile(p, 1<<20)
		if err != nil || string(got) != string(want) {
			t.Errorf("ReadFile(%s) = %q, %v; want %q", p, got, err, want)
		}
	}
}
