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
		case kindStatfs:
			need = n.paths || n.fsTypes
			exit = exit || n.fsTypes
		case kindFstatfs:
			need = n.fsTypes
			exit = need
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

// bpfBuilder assembles a classic BPF program whose jumps name labels.
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

func (b *bpfBuilder) label(name string) { b.labels[name] = len(b.insns) }
func (b *bpfBuilder) stmt(code uint16, k uint32) {
	b.insns = append(b.insns, bpfInsn{code: code, k: k})
}
func (b *bpfBuilder) jump(code uint16, k uint32, jt, jf string) {
	b.insns = append(b.insns, bpfInsn{code: code, k: k, jt: jt, jf: jf})
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
	return out, nil
}

// buildFilter generates the seccomp program for set: the arch is checked
// first, the probe fstatfs of the shim is always traced, the syscalls of set
// are found by a binary search over their numbers (a linear chain would cost
// every untraced syscall ~60 comparisons on kernels without the seccomp
// action cache), everything else is allowed.
//
// The program reads only arch, nr and (for fstatfs) args[0], so since Linux
// 5.11 the kernel's constant-action bitmap lets every syscall outside set
// and fstatfs skip the filter entirely.
func buildFilter(set []traced) ([]unix.SockFilter, error) {
	b := &bpfBuilder{labels: map[string]int{}}
	// A = seccomp_data.arch
	b.stmt(bpfLdAbsW, offArch)
	// if A != AUDIT_ARCH_native: allow. Compat (i386) syscalls of a
	// 64-bit tracee are rare and never rewritten; failing them would break
	// programs that work natively.
	b.jump(bpfJeqK, auditArch, "", "allow")
	// A = seccomp_data.nr
	b.stmt(bpfLdAbsW, offNr)
	if x32Bit != 0 {
		// if A >= __X32_SYSCALL_BIT: allow (x32 ABI, not rewritten).
		b.jump(bpfJgeK, x32Bit, "allow", "")
	}
	fstatfsData := uint16(0)
	var rest []traced
	for _, t := range set {
		if t.nr == sysFstatfs {
			fstatfsData = t.data
			continue
		}
		rest = append(rest, t)
	}
	// if A == fstatfs: goto fstatfs
	b.jump(bpfJeqK, sysFstatfs, "fstatfs", "")
	emitTree(b, rest)
	// fstatfs: if args[0] == probeFD: return TRACE|probe
	b.label("fstatfs")
	b.stmt(bpfLdAbsW, offArg0Lo)
	b.jump(bpfJeqK, probeFDLo, "", "fstatfs-real")
	b.stmt(bpfLdAbsW, offArg0Hi)
	b.jump(bpfJeqK, 0xffffffff, "probe", "fstatfs-real")
	b.label("probe")
	b.stmt(bpfRetK, retTrace|dataProbe)
	b.label("fstatfs-real")
	if fstatfsData != 0 {
		b.stmt(bpfRetK, retTrace|uint32(fstatfsData))
	} else {
		b.stmt(bpfRetK, retAllow)
	}
	for _, t := range rest {
		b.label(fmt.Sprintf("trace-%d", t.nr))
		b.stmt(bpfRetK, retTrace|uint32(t.data))
	}
	b.label("allow")
	b.stmt(bpfRetK, retAllow)
	return b.assemble()
}

// emitTree emits a binary search over set (sorted by nr) that jumps to
// trace-<nr> on a match and to allow otherwise.
func emitTree(b *bpfBuilder, set []traced) {
	if len(set) <= 4 {
		for _, t := range set {
			// if A == nr: goto trace-nr
			b.jump(bpfJeqK, uint32(t.nr), fmt.Sprintf("trace-%d", t.nr), "")
		}
		// goto allow
		b.insns = append(b.insns, bpfInsn{code: unix.BPF_JMP | unix.BPF_JA, ja: "allow"})
		return
	}
	mid := len(set) / 2
	right := fmt.Sprintf("ge-%d", set[mid].nr)
	// if A >= set[mid].nr: goto right half
	b.jump(bpfJgeK, uint32(set[mid].nr), right, "")
	emitTree(b, set[:mid])
	b.label(right)
	emitTree(b, set[mid:])
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
