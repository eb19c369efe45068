package interceptor

import (
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"testing"

	"golang.org/x/net/bpf"
	"golang.org/x/sys/unix"
)

// The seccomp program is run in golang.org/x/net/bpf's VM over every
// syscall number of both arches, foreign arch values and x32 numbers, the
// shim's probe and the window guards' arguments. The expected answers come
// from the tables below, typed from the kernel's syscall tables
// independently of the tracer's own tables (TestFilterArchTables checks that
// the two agree for the arch the test runs on).

// filterTestArch is one arch as the test knows it.
type filterTestArch struct {
	arch sysArch
	// paths are the syscalls the tracer traces when paths matter, with
	// their numbers; statfs and fstatfs are among them.
	paths map[string]int
	// foreign are seccomp_data.arch values of other ABIs a tracee of this
	// arch can issue syscalls in.
	foreign []uint32
}

var filterTestArches = []filterTestArch{
	{
		arch: sysArch{
			name: "amd64", audit: unix.AUDIT_ARCH_X86_64, x32Bit: 0x40000000, window: 0x2000_0000_0000,
			nr: map[string]int{"munmap": 11, "mprotect": 10, "pkey_mprotect": 329, "madvise": 28, "remap_file_pages": 216,
				"mmap": 9, "mremap": 25, "shmat": 30, "io_uring_setup": 425, "io_uring_enter": 426,
				"io_uring_register": 427, "fstatfs": 138},
		},
		paths: map[string]int{"open": 2, "openat": 257, "openat2": 437, "creat": 85, "stat": 4, "lstat": 6,
			"newfstatat": 262, "statx": 332, "access": 21, "faccessat": 269, "faccessat2": 439, "readlink": 89,
			"readlinkat": 267, "mkdir": 83, "mkdirat": 258, "mknod": 133, "mknodat": 259, "rmdir": 84, "unlink": 87,
			"unlinkat": 263, "rename": 82, "renameat": 264, "renameat2": 316, "link": 86, "linkat": 265, "symlink": 88,
			"symlinkat": 266, "truncate": 76, "chmod": 90, "fchmodat": 268, "fchmodat2": 452, "chown": 92, "lchown": 94,
			"fchownat": 260, "utime": 132, "utimes": 235, "futimesat": 261, "utimensat": 280, "setxattr": 188,
			"lsetxattr": 189, "getxattr": 191, "lgetxattr": 192, "listxattr": 194, "llistxattr": 195, "removexattr": 197,
			"lremovexattr": 198, "setxattrat": 463, "getxattrat": 464, "listxattrat": 465, "removexattrat": 466,
			"inotify_add_watch": 254, "chdir": 80, "statfs": 137, "fstatfs": 138,
			"chroot": 161, "pivot_root": 155, "setns": 308, "unshare": 272, "open_by_handle_at": 304,
			"mount": 165, "umount2": 166, "move_mount": 429,
			"fchmod": 91, "fchown": 93, "fsetxattr": 190, "fremovexattr": 199, "getcwd": 79, "bpf": 321},
		// i386 (int 0x80, sysenter) and, for the program's sake, the others.
		foreign: []uint32{unix.AUDIT_ARCH_I386, unix.AUDIT_ARCH_AARCH64, unix.AUDIT_ARCH_ARM, 0, 0xffffffff},
	},
	{
		arch: sysArch{
			name: "arm64", audit: unix.AUDIT_ARCH_AARCH64, window: 0x8_0000_0000,
			nr: map[string]int{"munmap": 215, "mprotect": 226, "pkey_mprotect": 288, "madvise": 233,
				"remap_file_pages": 234, "mmap": 222, "mremap": 216, "shmat": 196, "io_uring_setup": 425,
				"io_uring_enter": 426, "io_uring_register": 427, "fstatfs": 44},
		},
		paths: map[string]int{"openat": 56, "openat2": 437, "newfstatat": 79, "statx": 291, "faccessat": 48,
			"faccessat2": 439, "readlinkat": 78, "mkdirat": 34, "mknodat": 33, "unlinkat": 35, "renameat": 38,
			"renameat2": 276, "linkat": 37, "symlinkat": 36, "truncate": 45, "fchmodat": 53, "fchmodat2": 452,
			"fchownat": 54, "utimensat": 88, "setxattr": 5, "lsetxattr": 6, "getxattr": 8, "lgetxattr": 9,
			"listxattr": 11, "llistxattr": 12, "removexattr": 14, "lremovexattr": 15, "setxattrat": 463,
			"getxattrat": 464, "listxattrat": 465, "removexattrat": 466, "inotify_add_watch": 27, "chdir": 49,
			"statfs": 43, "fstatfs": 44,
			"chroot": 51, "pivot_root": 41, "setns": 268, "unshare": 97, "open_by_handle_at": 265,
			"mount": 40, "umount2": 39, "move_mount": 429,
			"fchmod": 52, "fchown": 55, "fsetxattr": 7, "fremovexattr": 16, "getcwd": 17, "bpf": 280},
		// arm32 (compat tasks), and the others.
		foreign: []uint32{unix.AUDIT_ARCH_ARM, unix.AUDIT_ARCH_X86_64, unix.AUDIT_ARCH_I386, 0, 0xffffffff},
	},
}

// seccompData is struct seccomp_data. x/net/bpf loads words big-endian,
// as from a network packet, where seccomp loads them in native order:
// packet() writes each 32-bit word big-endian so that the VM reads the
// values the kernel's loads would.
type seccompData struct {
	nr   int32
	arch uint32
	ip   uint64
	args [6]uint64
}

func (d *seccompData) packet() []byte {
	b := make([]byte, 64)
	word := func(off int, v uint32) { binary.BigEndian.PutUint32(b[off:], v) }
	// amd64 and arm64 are little-endian: a u64's low word comes first.
	dword := func(off int, v uint64) { word(off, uint32(v)); word(off+4, uint32(v>>32)) }
	word(0, uint32(d.nr))
	word(4, d.arch)
	dword(8, d.ip)
	for i, a := range d.args {
		dword(16+8*i, a)
	}
	return b
}

func filterVM(t *testing.T, prog []unix.SockFilter) *bpf.VM {
	t.Helper()
	raw := make([]bpf.RawInstruction, len(prog))
	for i, in := range prog {
		raw[i] = bpf.RawInstruction{Op: in.Code, Jt: in.Jt, Jf: in.Jf, K: in.K}
	}
	insns, ok := bpf.Disassemble(raw)
	if !ok {
		t.Fatalf("x/net/bpf cannot decode every instruction of the program:\n%s", dumpFilter(prog))
	}
	vm, err := bpf.NewVM(insns)
	if err != nil {
		t.Fatalf("x/net/bpf rejects the program: %v\n%s", err, dumpFilter(prog))
	}
	return vm
}

func runFilter(t *testing.T, vm *bpf.VM, d seccompData) uint32 {
	t.Helper()
	v, err := vm.Run(d.packet())
	if err != nil {
		t.Fatalf("run %+v: %v", d, err)
	}
	return uint32(v)
}

func dumpFilter(prog []unix.SockFilter) string {
	s := ""
	for i, in := range prog {
		s += fmt.Sprintf("%4d: code=%#04x jt=%d jf=%d k=%#x\n", i, in.Code, in.Jt, in.Jf, in.K)
	}
	return s
}

func actionName(v uint32) string {
	switch {
	case v == retAllow:
		return "ALLOW"
	case v&unix.SECCOMP_RET_ACTION_FULL == retErrno:
		return fmt.Sprintf("ERRNO(%v)", unix.Errno(v&unix.SECCOMP_RET_DATA))
	case v&unix.SECCOMP_RET_ACTION_FULL == retTrace:
		return fmt.Sprintf("TRACE(%#x)", v&unix.SECCOMP_RET_DATA)
	}
	return fmt.Sprintf("%#x", v)
}

// testTraced gives each path syscall of a an arbitrary but distinct data
// value, as filterSet does with table indexes.
func testTraced(a *filterTestArch) ([]traced, map[int]uint16) {
	data := map[int]uint16{}
	var out []traced
	i := 0
	for _, nr := range a.paths {
		i++
		d := uint16(i<<1 | i&1)
		data[nr] = d
		out = append(out, traced{nr: nr, data: d})
	}
	return out, data
}

// window guard cases: arguments near the window's edges, with the answer.
type guardCase struct {
	name string
	args [6]uint64
	deny bool
}

func guardCases(w uint64) map[string][]guardCase {
	const S = scratchWindowSize
	const page = 4096
	lo32 := func(v uint64) uint64 { return v & 0xffffffff }
	_ = lo32
	rangeCases := []guardCase{
		{"window start", [6]uint64{w, page}, true},
		{"page before", [6]uint64{w - page, page}, false},
		{"page before + 1 byte", [6]uint64{w - page, page + 1}, true},
		{"last byte", [6]uint64{w + S - 1, 1}, true},
		{"page after", [6]uint64{w + S, page}, false},
		{"around it", [6]uint64{w - page, S + 2*page}, true},
		{"from 0 over it", [6]uint64{0, w + 1}, true},
		{"from 0 up to it", [6]uint64{0, w}, false},
		// low word of the end carries into the high word
		{"carry up to start", [6]uint64{w - 0x1000_0000, 0x1000_0000}, false},
		{"carry past start", [6]uint64{w - 0x1000_0000, 0x1000_0001}, true},
		{"below, huge length", [6]uint64{page, 1 << 62}, true},
		// wraps at 2^64: the kernel refuses such a range itself
		{"wrapping", [6]uint64{w, ^uint64(0)}, false},
		{"far above", [6]uint64{w + 1<<40, page}, false},
		{"zero length inside", [6]uint64{w + page, 0}, true},
		{"zero length at start", [6]uint64{w, 0}, false},
	}
	out := map[string][]guardCase{}
	for _, name := range []string{"munmap", "mprotect", "pkey_mprotect", "madvise", "remap_file_pages"} {
		out[name] = rangeCases
	}
	var mmap []guardCase
	for _, c := range rangeCases {
		fixed := c
		fixed.name += ", MAP_FIXED"
		fixed.args[3] = unix.MAP_PRIVATE | unix.MAP_ANONYMOUS | unix.MAP_FIXED
		mmap = append(mmap, fixed)
		hint := c
		hint.name += ", a hint"
		hint.args[3] = unix.MAP_PRIVATE | unix.MAP_ANONYMOUS
		hint.deny = false
		mmap = append(mmap, hint)
		noreplace := c
		noreplace.name += ", MAP_FIXED_NOREPLACE"
		noreplace.args[3] = unix.MAP_PRIVATE | unix.MAP_FIXED_NOREPLACE
		noreplace.deny = false
		mmap = append(mmap, noreplace)
	}
	out["mmap"] = mmap
	out["mremap"] = []guardCase{
		{"move out of it", [6]uint64{w, page, page, unix.MREMAP_MAYMOVE, 0}, true},
		{"grow into it", [6]uint64{w - page, page, 2 * page, 0, 0}, true},
		{"grow below it", [6]uint64{w - 2*page, page, 2 * page, 0, 0}, false},
		{"shrink below it", [6]uint64{w - 2*page, 2 * page, page, 0, 0}, false},
		{"move into it", [6]uint64{page, page, page, unix.MREMAP_MAYMOVE | unix.MREMAP_FIXED, w + page}, true},
		{"move to just below it", [6]uint64{page, page, page, unix.MREMAP_MAYMOVE | unix.MREMAP_FIXED, w - page}, false},
		{"new address without MREMAP_FIXED", [6]uint64{page, page, page, unix.MREMAP_MAYMOVE, w + page}, false},
		{"move elsewhere", [6]uint64{page, page, page, unix.MREMAP_MAYMOVE | unix.MREMAP_FIXED, w + S}, false},
	}
	out["shmat"] = []guardCase{
		{"in it", [6]uint64{7, w + 2*page, 0}, true},
		{"at its start", [6]uint64{7, w, 0}, true},
		{"below it", [6]uint64{7, w - page, 0}, false},
		{"below it, SHM_REMAP", [6]uint64{7, w - page, shmRemap}, true},
		{"far below it, SHM_REMAP", [6]uint64{7, page, shmRemap}, true},
		{"above it, SHM_REMAP", [6]uint64{7, w + S, shmRemap}, false},
		{"kernel's choice, SHM_REMAP", [6]uint64{7, 0, shmRemap}, false},
		{"kernel's choice", [6]uint64{7, 0, 0}, false},
		{"SHM_RDONLY in it", [6]uint64{7, w + page, unix.SHM_RDONLY}, true},
	}
	return out
}

// TestFilterDecisions runs the program of both arches over every syscall
// number, foreign arches, x32 numbers, the probe and the guards' arguments.
func TestFilterDecisions(t *testing.T) {
	for _, ta := range filterTestArches {
		for _, allowIOUring := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/allowIOUring=%v", ta.arch.name, allowIOUring), func(t *testing.T) {
				tr, data := testTraced(&ta)
				prog, err := buildFilter(&ta.arch, filterSpec{traced: sortTraced(tr), allowIOUring: allowIOUring})
				if err != nil {
					t.Fatal(err)
				}
				vm := filterVM(t, prog)
				guardNr := map[int]string{}
				for _, g := range windowGuards {
					guardNr[ta.arch.nr[g.name]] = g.name
				}
				ioUring := map[int]bool{}
				for _, n := range ioUringSyscalls {
					ioUring[ta.arch.nr[n]] = true
				}
				rng := rand.New(rand.NewPCG(1, uint64(len(ta.arch.name))))
				fstatfs := ta.arch.nr["fstatfs"]
				checked := 0
				// Every number of the table and far past it (the highest
				// syscall in 2026 is below 480), with arguments that touch
				// nothing.
				for nr := int32(-1); nr < 1024; nr++ {
					d := seccompData{nr: nr, arch: ta.arch.audit, args: [6]uint64{3, 0x1000, 2, 1, 0, 0}}
					want := uint32(retAllow)
					switch {
					case ta.arch.x32Bit != 0 && uint32(nr) >= ta.arch.x32Bit:
						want = actENOSYS // -1: ENOSYS natively too
					case ioUring[int(nr)] && !allowIOUring:
						want = actENOSYS
					case data[int(nr)] != 0:
						want = retTrace | uint32(data[int(nr)])
					}
					if got := runFilter(t, vm, d); got != want {
						t.Errorf("nr %d: %s, want %s", nr, actionName(got), actionName(want))
					}
					// Syscalls that are neither guarded nor fstatfs must not
					// read their arguments, or the kernel's action cache
					// (Linux 5.11) cannot skip the filter for them.
					if _, g := guardNr[int(nr)]; !g && int(nr) != fstatfs {
						for i := range d.args {
							d.args[i] = rng.Uint64()
						}
						d.ip = rng.Uint64()
						if got := runFilter(t, vm, d); got != want {
							t.Errorf("nr %d with other arguments: %s, want %s (the program reads them)", nr, actionName(got), actionName(want))
						}
					}
					checked++
				}
				// Syscalls of other ABIs, whatever their number.
				for _, arch := range ta.foreign {
					for _, nr := range []int32{0, 2, 5, 56, 257, 295, 322, 437, -1} {
						d := seccompData{nr: nr, arch: arch}
						if got := runFilter(t, vm, d); got != actENOSYS {
							t.Errorf("arch %#x nr %d: %s, want ERRNO(ENOSYS)", arch, nr, actionName(got))
						}
						checked++
					}
				}
				// x32 numbers: __X32_SYSCALL_BIT | nr.
				if ta.arch.x32Bit != 0 {
					for _, nr := range []uint32{0, 2, 257, 437, 512, 547, 0x3fffffff, 0xbfffffff} {
						d := seccompData{nr: int32(ta.arch.x32Bit | nr), arch: ta.arch.audit}
						if got := runFilter(t, vm, d); got != actENOSYS {
							t.Errorf("x32 nr %#x: %s, want ERRNO(ENOSYS)", uint32(d.nr), actionName(got))
						}
						checked++
					}
				}
				// The shim's probe: fstatfs(probeFD), sign-extended to 64 bits.
				probeCases := []struct {
					arg  uint64
					want uint32
				}{
					{uint64(0xffff_ffff_0000_0000) | uint64(probeFDLo), retTrace | dataProbe},
					{uint64(probeFDLo), retTrace | uint32(data[fstatfs])},
					{uint64(0xffff_fffe_0000_0000) | uint64(probeFDLo), retTrace | uint32(data[fstatfs])},
					{3, retTrace | uint32(data[fstatfs])},
				}
				for _, c := range probeCases {
					d := seccompData{nr: int32(fstatfs), arch: ta.arch.audit, args: [6]uint64{c.arg}}
					if got := runFilter(t, vm, d); got != c.want {
						t.Errorf("fstatfs(%#x): %s, want %s", c.arg, actionName(got), actionName(c.want))
					}
					checked++
				}
				// The window guards.
				for name, cases := range guardCases(ta.arch.window) {
					g := findGuard(t, name)
					for _, c := range cases {
						d := seccompData{nr: int32(ta.arch.nr[name]), arch: ta.arch.audit, args: c.args}
						want := uint32(retAllow)
						if c.deny {
							want = actWindow
						}
						if got := runFilter(t, vm, d); got != want {
							t.Errorf("%s(%#x): %s: %s, want %s", name, c.args, c.name, actionName(got), actionName(want))
						}
						if got := g.denies(ta.arch.window, &c.args); got != c.deny {
							t.Errorf("windowGuard %s .denies(%#x): %s: %v, want %v", name, c.args, c.name, got, c.deny)
						}
						checked++
					}
					// Random arguments near the window's edges: the program
					// and the tracer's own check (ModePtrace) agree.
					edges := []uint64{0, ta.arch.window, ta.arch.window + scratchWindowSize}
					near := func() uint64 {
						v := edges[rng.IntN(len(edges))] + uint64(rng.IntN(1<<13)) - 1<<12
						if rng.IntN(4) == 0 {
							v = rng.Uint64()
						}
						return v
					}
					for range 2000 {
						var args [6]uint64
						for i := range args {
							args[i] = near()
						}
						args[2] = uint64(rng.Uint32()) // flags (mmap, shmat)
						args[3] = uint64(rng.Uint32())
						d := seccompData{nr: int32(ta.arch.nr[name]), arch: ta.arch.audit, args: args}
						want := uint32(retAllow)
						if g.denies(ta.arch.window, &args) {
							want = actWindow
						}
						if got := runFilter(t, vm, d); got != want {
							t.Fatalf("%s(%#x): %s, windowGuard.denies says %s", name, args, actionName(got), actionName(want))
						}
						checked++
					}
				}
				maxJump := longestCondJump(prog)
				t.Logf("%d instructions, %d inputs checked, longest conditional jump %d", len(prog), checked, maxJump)
				// Conditional jumps have 8-bit offsets. The builder keeps
				// them local (far targets go through BPF_JA); this stays
				// well under 255 so that a few more syscalls in the table
				// never make assemble fail.
				if maxJump > 128 {
					t.Errorf("longest conditional jump is %d instructions; keep it under 128 (far targets go through BPF_JA)", maxJump)
				}
			})
		}
	}
}

func findGuard(t *testing.T, name string) *windowGuard {
	for i := range windowGuards {
		if windowGuards[i].name == name {
			return &windowGuards[i]
		}
	}
	t.Fatalf("no window guard %s", name)
	return nil
}

func sortTraced(tr []traced) []traced {
	out := append([]traced(nil), tr...)
	for i := range out {
		for j := i + 1; j < len(out); j++ {
			if out[j].nr < out[i].nr {
				out[i], out[j] = out[j], out[i]
			}
		}
	}
	return out
}

func longestCondJump(prog []unix.SockFilter) int {
	n := 0
	for _, in := range prog {
		if in.Code&0x07 == unix.BPF_JMP && in.Code&0xf0 != unix.BPF_JA {
			n = max(n, int(in.Jt), int(in.Jf))
		}
	}
	return n
}

// TestFilterArchTables checks the test's tables against the tracer's for
// the arch the test runs on: same path syscalls, same numbers, and the
// filter the tracer builds (filterSet from the real table) traces exactly
// them.
func TestFilterArchTables(t *testing.T) {
	var ta *filterTestArch
	for i := range filterTestArches {
		if filterTestArches[i].arch.name == nativeArch.name {
			ta = &filterTestArches[i]
		}
	}
	if ta == nil {
		t.Fatalf("no test table for %s", nativeArch.name)
	}
	if ta.arch.audit != nativeArch.audit || ta.arch.x32Bit != nativeArch.x32Bit || ta.arch.window != nativeArch.window {
		t.Errorf("test arch %+v, tracer's %+v", ta.arch, nativeArch)
	}
	for name, nr := range ta.arch.nr {
		if nativeArch.nr[name] != nr {
			t.Errorf("%s: test says %d, nativeArch %d", name, nr, nativeArch.nr[name])
		}
	}
	if len(ta.arch.nr) != len(nativeArch.nr) {
		t.Errorf("nativeArch names %d syscalls, the test %d", len(nativeArch.nr), len(ta.arch.nr))
	}
	byName := map[string]int{}
	for _, e := range archEntries {
		byName[e.name] = e.nr
	}
	for name, nr := range ta.paths {
		if byName[name] != nr {
			t.Errorf("%s: test says %d, the tracer's table %d", name, nr, byName[name])
		}
	}
	if len(byName) != len(ta.paths) {
		t.Errorf("the tracer's table has %d syscalls, the test %d", len(byName), len(ta.paths))
	}

	spec := filterSpec{traced: filterSet(needs{paths: true, fsTypes: true})}
	prog, err := buildFilter(&nativeArch, spec)
	if err != nil {
		t.Fatal(err)
	}
	vm := filterVM(t, prog)
	for nr := int32(0); nr < 1024; nr++ {
		var args [6]uint64
		got := runFilter(t, vm, seccompData{nr: nr, arch: auditArch, args: args})
		if want := spec.decide(auditArch, nr, &args); got != want {
			t.Errorf("nr %d: program %s, filterSpec.decide %s", nr, actionName(got), actionName(want))
		}
		e := table[int(nr)]
		if e == nil {
			continue
		}
		// Every path syscall asks for its exit stop: the argument register
		// pointing to scratch memory is put back there. getcwd's exit is
		// needed only when the cwd is in a host tree, which the tracer
		// tells at the seccomp stop.
		want := retTrace | uint32(tableIndex[e.nr]+1)<<1 | dataExit
		if e.kind == kindGetcwd {
			want &^= dataExit
		}
		if got != want {
			t.Errorf("%s: %s, want %s", e.name, actionName(got), actionName(want))
		}
	}
	// Only fstype rules: only statfs and fstatfs stop.
	spec = filterSpec{traced: filterSet(needs{fsTypes: true})}
	if prog, err = buildFilter(&nativeArch, spec); err != nil {
		t.Fatal(err)
	}
	vm = filterVM(t, prog)
	for _, e := range archEntries {
		var args [6]uint64
		got := runFilter(t, vm, seccompData{nr: int32(e.nr), arch: auditArch, args: args})
		traced := got&unix.SECCOMP_RET_ACTION_FULL == retTrace
		if want := e.kind == kindStatfs || e.kind == kindFstatfs; traced != want {
			t.Errorf("fstype rules only: %s: %s", e.name, actionName(got))
		}
	}
}
