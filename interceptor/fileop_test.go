package interceptor

import (
	"testing"

	"golang.org/x/sys/unix"
)

// TestFileOp checks that servers get the operation, not a syscall name to
// guess from: unlinkat is rmdir only with AT_REMOVEDIR.
func TestFileOp(t *testing.T) {
	byName := map[string]*entry{}
	for i := range archEntries {
		byName[archEntries[i].name] = table[archEntries[i].nr]
	}
	tests := []struct {
		name  string
		flags uint64 // unlinkat's third argument
		want  FileOp
	}{
		{"openat", 0, OpOpen},
		{"openat2", 0, OpOpen},
		{"newfstatat", 0, OpStat},
		{"mkdirat", 0, OpMkdir},
		{"unlinkat", 0, OpUnlink},
		{"unlinkat", unix.AT_REMOVEDIR, OpRmdir},
		{"renameat2", 0, OpRename},
		{"symlinkat", 0, OpSymlink},
		{"fchmodat", 0, OpSetattr},
		{"inotify_add_watch", 0, OpWatch},
	}
	for _, tt := range tests {
		e := byName[tt.name]
		if e == nil {
			t.Fatalf("%s is not in this arch's table", tt.name)
		}
		var r regs
		r.setArg(2, tt.flags)
		if got := fileOp(e, &r); got != tt.want {
			t.Errorf("fileOp(%s, flags %#x) = %v, want %v", tt.name, tt.flags, got, tt.want)
		}
	}
}
