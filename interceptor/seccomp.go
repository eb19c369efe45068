package interceptor

import (
	"encoding/binary"
	"fmt"
	"sort"

	"golang.org/x/sys/unix"
)

// The filter's SECCOMP_RET_DATA (16 bits), read with PTRACE_GETEVENTMSG at a
// seccomp stop:
//
//	 15                     1   0
//	+------------------------+---+
//	| table index + 1        | X |   X: the exit stop is always needed
//	+------------------------+---+
//
// dataProbe marks the shim's probe syscall (see shim.go).
const (
	dataExit  = 1
	dataProbe = 0xffff
)

// probeFD is the fd the shim passes to its probe fstatfs. fstatfs fails
// with EBADF on it, which is how the tracer tells the probe's syscall-exit
// stop from its syscall-enter stop.
const (
	probeFD   = -0x4e42
	probeFDLo = uint32(0xffffffff + probeFD + 1)
)

// Offsets in struct seccomp_data.
const (
	offNr      = 0
	offArch    = 4
	offArg0Lo  = 16
	offArg0Hi  = 20
	bpfLdAbsW  = unix.BPF_LD | unix.BPF_W | unix.BPF_ABS
	bpfJeqK    = unix.BPF_JMP | unix.BPF_JEQ | unix.BPF_K
	bpfJgeK    = unix.BPF_JMP | unix.BPF_JGE | unix.BPF_K
	bpfRetK    = unix.BPF_RET | unix.BPF_K
	retAllow   = unix.SECCOMP_RET_ALLOW
	retTrace   = unix.SECCOMP_RET_TRACE
	maxBPFJump = 255
)

// Offsets of the halves of argument i in struct seccomp_data (amd64 and
// arm64 are little-endian: the low word comes first).
func offArgLo(i int8) uint32 { return 16 + 8*uint32(i) }
func offArgHi(i int8) uint32 { return 20 + 8*uint32(i) }

// Opcodes beyond the ones above.
const (
	bpfLdImm  = unix.BPF_LD | unix.BPF_IMM
	bpfLdMem  = unix.BPF_LD | unix.BPF_MEM
	bpfLdxImm = unix.BPF_LDX | unix.BPF_IMM
	bpfSt     = unix.BPF_ST
	bpfTax    = unix.BPF_MISC | unix.BPF_TAX
	bpfAddX   = unix.BPF_ALU | unix.BPF_ADD | unix.BPF_X
	bpfAndK   = unix.BPF_ALU | unix.BPF_AND | unix.BPF_K
	bpfJgtK   = unix.BPF_JMP | unix.BPF_JGT | unix.BPF_K
	bpfJgeX   = unix.BPF_JMP | unix.BPF_JGE | unix.BPF_X
	bpfJa     = unix.BPF_JMP | unix.BPF_JA
	retErrno  = unix.SECCOMP_RET_ERRNO
)

// traced is one syscall the filter sends to the tracer.
type traced struct {
	nr   int
	data uint16
}

// needs says which syscalls a tracer must see.
type needs struct {
	paths   bool // path arguments matter: redirects, a FileServer, observing
	fsTypes bool // statfs results matter: fstype rules, observing
	observe bool // every path call's result matters: its exit is needed
}

// filterSet returns the syscalls that n needs, with their data.
func filterSet(n needs) []traced {
	var out []traced
	for _, e := range archEntries {
		need := false
		exit := n.observe
		switch e.kind {
		case kindPath:
			need = n.paths
			// Every path the tracer reads is copied into scratch memory,
			// and the argument register is put back at the exit.
			exit = need
		case kindStatfs:
			need = n.paths || n.fsTypes
			exit = need
		case kindFstatfs:
			need = n.fsTypes
			exit = need
		case kindWatch, kindHandle, kindFdChange, kindMount, kindBpf:
			// Only paths need them: views and handles matter to the
			// resolver alone.
			need = n.paths
			exit = need
		case kindGetcwd:
			// Only a cwd inside a redirect's host tree needs its exit,
			// which the tracer asks for at the seccomp stop.
			need = n.paths
			exit = false
		}
		if !need {
			continue
		}
		d := uint16(tableIndex[e.nr]+1) << 1
		if exit {
			d |= dataExit
		}
		out = append(out, traced{nr: e.nr, data: d})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].nr < out[j].nr })
	return out
}

// filterSpec is everything the seccomp program decides. Its decide method
// is the same decision in Go: the tracer applies it itself when every
// syscall stops (ModePtrace, or no filter could be installed), and the
// filter tests run the BPF program against it.
type filterSpec struct {
	traced []traced // sorted by nr
	// allowIOUring lets io_uring_setup, io_uring_enter and
	// io_uring_register through (Config.AllowIOUring).
	allowIOUring bool
	// noWindowGuards leaves the scratch window unguarded: only for tests
	// of what the tracer does when scratch memory is gone anyway.
	noWindowGuards bool
}

// ioUringSyscalls are refused with ENOSYS unless allowed: an io_uring
// submission (IORING_OP_OPENAT, ...) runs in the kernel without a syscall
// the tracer could see. gVisor refuses io_uring by default the same way;
// ENOSYS makes liburing and Go runtimes fall back to plain syscalls.
var ioUringSyscalls = [...]string{"io_uring_setup", "io_uring_enter", "io_uring_register"}

// Answers of the filter and of decide.
const (
	actAllow = retAllow
	// actENOSYS is the answer to syscalls of another ABI (i386 on amd64
	// through int 0x80 or sysenter, x32, arm32 on arm64): their numbers
	// mean other calls, which the tracer neither decodes nor rewrites.
	actENOSYS = retErrno | uint32(unix.ENOSYS)
	// actWindow is the answer to a call that would unmap, remap, reprotect
	// or map over the scratch window.
	actWindow = retErrno | uint32(windowErrno)
)

// decide returns the filter's answer for one native syscall:
// SECCOMP_RET_ALLOW, SECCOMP_RET_ERRNO|errno or SECCOMP_RET_TRACE|data.
func (s *filterSpec) decide(arch uint32, nr int32, args *[6]uint64) uint32 {
	if arch != auditArch {
		return actENOSYS
	}
	if x32Bit != 0 && uint32(nr) >= x32Bit {
		return actENOSYS
	}
	if !s.allowIOUring {
		for _, u := range ioUringSyscalls {
			if int(nr) == nativeArch.nr[u] {
				return actENOSYS
			}
		}
	}
	if g := guardOf(int(nr)); g != nil && !s.noWindowGuards {
		if g.denies(scratchBase, args) {
			return actWindow
		}
		return actAllow
	}
	if int(nr) == sysFstatfs && int64(args[0]) == probeFD {
		return retTrace | dataProbe
	}
	for _, t := range s.traced {
		if t.nr == int(nr) {
			return retTrace | uint32(t.data)
		}
	}
	return actAllow
}

// bpfBuilder assembles a classic BPF program whose jumps name labels.
// Conditional jumps only go a short way forward (a tree node to its right
// half, a check to the end of its block); far targets are reached with
// BPF_JA, whose offset has 32 bits. assemble fails on a conditional jump
// longer than maxBPFJump, and the tests check the longest one.
type bpfBuilder struct {
	insns  []bpfInsn
	labels map[string]int
}

type bpfInsn struct {
	code   uint16
	k      uint32
	jt, jf string // label names; "" is the next instruction
	ja     string // for BPF_JA: the label; the offset goes in k
}

func (b *bpfBuilder) label(name string) {
	if _, dup := b.labels[name]; dup {
		panic("bpf: duplicate label " + name)
	}
	b.labels[name] = len(b.insns)
}
func (b *bpfBuilder) stmt(code uint16, k uint32) {
	b.insns = append(b.insns, bpfInsn{code: code, k: k})
}
func (b *bpfBuilder) jump(code uint16, k uint32, jt, jf string) {
	b.insns = append(b.insns, bpfInsn{code: code, k: k, jt: jt, jf: jf})
}
func (b *bpfBuilder) jumpAlways(label string) {
	b.insns = append(b.insns, bpfInsn{code: bpfJa, ja: label})
}

func (b *bpfBuilder) assemble() ([]unix.SockFilter, error) {
	out := make([]unix.SockFilter, len(b.insns))
	off := func(i int, l string) (uint8, error) {
		if l == "" {
			return 0, nil
		}
		t, ok := b.labels[l]
		if !ok {
			return 0, fmt.Errorf("bpf: undefined label %q", l)
		}
		d := t - i - 1
		if d < 0 || d > maxBPFJump {
			return 0, fmt.Errorf("bpf: jump from %d to %q (%d) out of range", i, l, t)
		}
		return uint8(d), nil
	}
	for i, in := range b.insns {
		if in.ja != "" {
			t, ok := b.labels[in.ja]
			if !ok || t <= i {
				return nil, fmt.Errorf("bpf: bad jump to %q", in.ja)
			}
			in.k = uint32(t - i - 1)
		}
		jt, err := off(i, in.jt)
		if err != nil {
			return nil, err
		}
		jf, err := off(i, in.jf)
		if err != nil {
			return nil, err
		}
		out[i] = unix.SockFilter{Code: in.code, Jt: jt, Jf: jf, K: in.k}
	}
	if len(out) > unix.BPF_MAXINSNS {
		return nil, fmt.Errorf("bpf: %d instructions, the kernel takes %d", len(out), unix.BPF_MAXINSNS)
	}
	return out, nil
}

// filterLeaf is one syscall number the program's search finds, with the
// instruction it runs: a return, or a jump to a block.
type filterLeaf struct {
	nr   int
	code uint16 // bpfRetK or bpfJa
	k    uint32 // the return value
	ja   string // the block
}

// buildFilter generates the seccomp program of s:
//
//	arch != native                  -> ERRNO(ENOSYS)
//	nr >= __X32_SYSCALL_BIT (amd64) -> ERRNO(ENOSYS)
//	a binary search over the syscalls the program knows:
//	  traced                        -> TRACE|data
//	  io_uring_* (unless allowed)   -> ERRNO(ENOSYS)
//	  munmap, mprotect, ...         -> the window guard of that syscall
//	  fstatfs                       -> TRACE|probe for the shim's probe fd
//	anything else                   -> ALLOW
//
// A binary search, not a chain: a chain would cost every untraced syscall
// ~60 comparisons on kernels without the seccomp action cache. The program
// reads only arch and nr on the way to ALLOW for every other syscall, so
// since Linux 5.11 the kernel's constant-action bitmap lets them skip the
// filter entirely; the guarded memory calls and fstatfs read their
// arguments and always run it.
func buildFilter(a *sysArch, s filterSpec) ([]unix.SockFilter, error) {
	b := &bpfBuilder{labels: map[string]int{}}
	// A = seccomp_data.arch
	b.stmt(bpfLdAbsW, offArch)
	// if A != AUDIT_ARCH_native: return ERRNO(ENOSYS)
	b.jump(bpfJeqK, a.audit, "native", "")
	b.stmt(bpfRetK, actENOSYS)
	b.label("native")
	// A = seccomp_data.nr
	b.stmt(bpfLdAbsW, offNr)
	if a.x32Bit != 0 {
		// if A >= __X32_SYSCALL_BIT: return ERRNO(ENOSYS)
		b.jump(bpfJgeK, a.x32Bit, "", "x64")
		b.stmt(bpfRetK, actENOSYS)
		b.label("x64")
	}
	if a.window&0xffffffff != 0 {
		return nil, fmt.Errorf("bpf: scratch window %#x of %s does not start at a 4 GiB boundary", a.window, a.name)
	}
	fstatfsNr, ok := a.nr["fstatfs"]
	if !ok {
		return nil, fmt.Errorf("bpf: no fstatfs on %s", a.name)
	}
	var leaves []filterLeaf
	seen := map[int]string{}
	add := func(l filterLeaf, what string) error {
		if other, dup := seen[l.nr]; dup {
			return fmt.Errorf("bpf: syscall %d is both %s and %s", l.nr, other, what)
		}
		seen[l.nr] = what
		leaves = append(leaves, l)
		return nil
	}
	for _, t := range s.traced {
		if t.nr == fstatfsNr {
			continue // below, with the probe
		}
		if err := add(filterLeaf{nr: t.nr, code: bpfRetK, k: retTrace | uint32(t.data)}, "traced"); err != nil {
			return nil, err
		}
	}
	if !s.allowIOUring {
		for _, name := range ioUringSyscalls {
			nr, ok := a.nr[name]
			if !ok {
				return nil, fmt.Errorf("bpf: no %s on %s", name, a.name)
			}
			if err := add(filterLeaf{nr: nr, code: bpfRetK, k: actENOSYS}, name); err != nil {
				return nil, err
			}
		}
	}
	for i := range windowGuards {
		g := &windowGuards[i]
		if s.noWindowGuards {
			break
		}
		nr, ok := a.nr[g.name]
		if !ok {
			return nil, fmt.Errorf("bpf: no %s on %s", g.name, a.name)
		}
		if err := add(filterLeaf{nr: nr, code: bpfJa, ja: "guard-" + g.name}, g.name); err != nil {
			return nil, err
		}
	}
	if err := add(filterLeaf{nr: fstatfsNr, code: bpfJa, ja: "fstatfs"}, "fstatfs"); err != nil {
		return nil, err
	}
	sort.Slice(leaves, func(i, j int) bool { return leaves[i].nr < leaves[j].nr })
	emitTree(b, leaves)

	// fstatfs: if args[0] == probeFD: return TRACE|probe
	b.label("fstatfs")
	b.stmt(bpfLdAbsW, offArg0Lo)
	b.jump(bpfJeqK, probeFDLo, "", "fstatfs-real")
	b.stmt(bpfLdAbsW, offArg0Hi)
	b.jump(bpfJeqK, 0xffffffff, "", "fstatfs-real")
	b.stmt(bpfRetK, retTrace|dataProbe)
	b.label("fstatfs-real")
	fstatfs := uint32(retAllow)
	for _, t := range s.traced {
		if t.nr == fstatfsNr {
			fstatfs = retTrace | uint32(t.data)
		}
	}
	b.stmt(bpfRetK, fstatfs)

	for i := range windowGuards {
		if !s.noWindowGuards {
			emitGuard(b, &windowGuards[i], a.window)
		}
	}
	return b.assemble()
}

// emitTree emits a binary search over leaves (sorted by nr): A == nr runs
// the leaf's instruction, a number that is no leaf returns ALLOW.
func emitTree(b *bpfBuilder, leaves []filterLeaf) {
	if len(leaves) <= 4 {
		for _, l := range leaves {
			// if A != nr: skip the next instruction
			b.jump(bpfJeqK, uint32(l.nr), "", fmt.Sprintf("not-%d", l.nr))
			if l.code == bpfJa {
				// goto block
				b.jumpAlways(l.ja)
			} else {
				// return k
				b.stmt(l.code, l.k)
			}
			b.label(fmt.Sprintf("not-%d", l.nr))
		}
		// return ALLOW
		b.stmt(bpfRetK, retAllow)
		return
	}
	mid := len(leaves) / 2
	right := fmt.Sprintf("ge-%d", leaves[mid].nr)
	// if A >= leaves[mid].nr: goto right half
	b.jump(bpfJgeK, uint32(leaves[mid].nr), right, "")
	emitTree(b, leaves[:mid])
	b.label(right)
	emitTree(b, leaves[mid:])
}

// emitGuard emits the block of one guarded syscall: for each span, in
// order, return ERRNO(windowErrno) when it overlaps the window; then
// return ALLOW. Arguments are 64-bit: both halves are loaded and the end
// of a span is added with the carry, in BPF's 32-bit ALU.
func emitGuard(b *bpfBuilder, g *windowGuard, window uint64) {
	windowHi := uint32(window >> 32)
	b.label("guard-" + g.name)
	for i, sp := range g.spans {
		next := fmt.Sprintf("%s-%d-next", g.name, i)
		deny := fmt.Sprintf("%s-%d-deny", g.name, i)
		if sp.flagArg != noArg {
			// if !(args[flagArg] & flagMask): next span
			b.stmt(bpfLdAbsW, offArgLo(sp.flagArg))
			b.stmt(bpfAndK, sp.flagMask)
			b.jump(bpfJeqK, 0, next, "")
		}
		if sp.nonZero {
			// if args[addr] == 0 (the kernel picks the address): next span
			b.stmt(bpfLdAbsW, offArgLo(sp.addr))
			b.jump(bpfJeqK, 0, "", fmt.Sprintf("%s-%d-nz", g.name, i))
			b.stmt(bpfLdAbsW, offArgHi(sp.addr))
			b.jump(bpfJeqK, 0, next, "")
			b.label(fmt.Sprintf("%s-%d-nz", g.name, i))
		}
		if sp.len != lenToEnd {
			// end = args[addr] + length, 64-bit:
			// X = low word of the length
			if sp.len == lenOne {
				b.stmt(bpfLdxImm, 1)
			} else {
				b.stmt(bpfLdAbsW, offArgLo(sp.len))
				b.stmt(bpfTax, 0)
			}
			// M[0] = A = low(addr) + X
			b.stmt(bpfLdAbsW, offArgLo(sp.addr))
			b.stmt(bpfAddX, 0)
			b.stmt(bpfSt, 0)
			// carry = A < X: X = carry
			b.jump(bpfJgeX, 0, fmt.Sprintf("%s-%d-nc", g.name, i), "")
			b.stmt(bpfLdImm, 1)
			b.jumpAlways(fmt.Sprintf("%s-%d-c", g.name, i))
			b.label(fmt.Sprintf("%s-%d-nc", g.name, i))
			b.stmt(bpfLdImm, 0)
			b.label(fmt.Sprintf("%s-%d-c", g.name, i))
			b.stmt(bpfTax, 0)
			// X = high word of the length + carry
			if sp.len == lenOne {
				b.stmt(bpfLdImm, 0)
			} else {
				b.stmt(bpfLdAbsW, offArgHi(sp.len))
			}
			b.stmt(bpfAddX, 0)
			b.stmt(bpfTax, 0)
			// A = high(addr) + X = high word of the end
			b.stmt(bpfLdAbsW, offArgHi(sp.addr))
			b.stmt(bpfAddX, 0)
			// if end <= window start: next span (the start's low word is 0)
			b.jump(bpfJgtK, windowHi, fmt.Sprintf("%s-%d-lt", g.name, i), "")
			b.jump(bpfJeqK, windowHi, "", next)
			b.stmt(bpfLdMem, 0)
			b.jump(bpfJeqK, 0, next, "")
			b.label(fmt.Sprintf("%s-%d-lt", g.name, i))
		}
		// if start >= window end: next span; else deny
		b.stmt(bpfLdAbsW, offArgHi(sp.addr))
		b.jump(bpfJgtK, windowHi, next, "")
		b.jump(bpfJeqK, windowHi, "", deny)
		b.stmt(bpfLdAbsW, offArgLo(sp.addr))
		b.jump(bpfJgeK, scratchWindowSize, next, "")
		b.label(deny)
		// return ERRNO(windowErrno)
		b.stmt(bpfRetK, actWindow)
		b.label(next)
	}
	// return ALLOW
	b.stmt(bpfRetK, retAllow)
}

// encodeFilter serializes a program for the shim (native byte order, the
// layout of struct sock_filter).
func encodeFilter(prog []unix.SockFilter) []byte {
	out := make([]byte, 0, 8*len(prog))
	for _, in := range prog {
		out = binary.NativeEndian.AppendUint16(out, in.Code)
		out = append(out, in.Jt, in.Jf)
		out = binary.NativeEndian.AppendUint32(out, in.K)
	}
	return out
}

func decodeFilter(b []byte) ([]unix.SockFilter, error) {
	if len(b)%8 != 0 || len(b) == 0 || len(b)/8 > unix.BPF_MAXINSNS {
		return nil, fmt.Errorf("bpf program of %d bytes", len(b))
	}
	out := make([]unix.SockFilter, len(b)/8)
	for i := range out {
		r := b[8*i:]
		out[i] = unix.SockFilter{
			Code: binary.NativeEndian.Uint16(r),
			Jt:   r[2], Jf: r[3],
			K: binary.NativeEndian.Uint32(r[4:]),
		}
	}
	return out, nil
}
