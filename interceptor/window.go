package interceptor

import "golang.org/x/sys/unix"

// The scratch window is a fixed range of every traced address space where
// the tracer maps its scratch regions (see addrSpace). Fixing it lets the
// seccomp filter, which sees only numbers, stop the calls that would
// unmap, remap, reprotect or map over it: the tracee cannot take the
// memory the kernel reads rewritten paths from.
const (
	// scratchWindowSize is the length of the window: room for
	// scratchWindowSize/regionSize regions of slotsPerRegion threads each.
	scratchWindowSize = 1 << 30
	// windowErrno answers a call that would change the window: EPERM, the
	// answer of the kernel itself for a range sealed with mseal(2) (Linux
	// 6.10), which is what the window is to the tracee.
	windowErrno = unix.EPERM
	// shmRemap is SHM_REMAP (include/uapi/linux/shm.h): shmat replaces
	// what is mapped at its address.
	shmRemap = 0o40000
)

// The window's start has a zero low word (the filter compares 64-bit
// addresses as two words) and its size fits one word.
var _ [0]struct{} = [scratchBase & 0xffffffff]struct{}{}
var _ [0]struct{} = [scratchWindowSize >> 32]struct{}{}

// Special span lengths.
const (
	lenOne   = -2 // one byte: the address itself
	lenToEnd = -3 // from the address to the end of the address space
)

// span is an address range a syscall acts on, as its arguments give it.
type span struct {
	addr int8 // argument holding the start
	len  int8 // argument holding the length, or lenOne, lenToEnd
	// flagArg, when not noArg, makes the span count only when
	// args[flagArg] has a bit of flagMask (mmap's MAP_FIXED, ...).
	flagArg  int8
	flagMask uint32
	// nonZero: a zero start means "the kernel picks": no span.
	nonZero bool
}

// windowGuard is a syscall that could change the window, with the spans
// it must stay out of. Its number depends on the arch (sysArch.nr).
type windowGuard struct {
	name  string
	spans []span
}

func always(addr, length int8) span { return span{addr: addr, len: length, flagArg: noArg} }

// windowGuards are the calls the filter (or the tracer, in ModePtrace)
// refuses with windowErrno when a span overlaps the window. mmap without
// MAP_FIXED and shmat without SHM_REMAP cannot replace a mapping; when
// they take a part of the window the tracer has not mapped yet, the tracer
// maps its next region elsewhere in the window.
var windowGuards = []windowGuard{
	{name: "munmap", spans: []span{always(0, 1)}},
	{name: "mprotect", spans: []span{always(0, 1)}},
	{name: "pkey_mprotect", spans: []span{always(0, 1)}},
	// madvise(MADV_DONTNEED) would zero the pages, and others drop them.
	{name: "madvise", spans: []span{always(0, 1)}},
	{name: "remap_file_pages", spans: []span{always(0, 1)}},
	{name: "mmap", spans: []span{
		{addr: 0, len: 1, flagArg: 3, flagMask: unix.MAP_FIXED},
	}},
	// mremap(old, old_len, new_len, flags, new): the old range, its growth
	// in place, and the new range when MREMAP_FIXED places it.
	{name: "mremap", spans: []span{
		always(0, 1),
		always(0, 2),
		{addr: 4, len: 2, flagArg: 3, flagMask: unix.MREMAP_FIXED},
	}},
	// shmat(id, addr, flags): an address in the window, or with SHM_REMAP
	// any address below its end (the segment's size is not an argument).
	{name: "shmat", spans: []span{
		always(1, lenOne),
		{addr: 1, len: lenToEnd, flagArg: 2, flagMask: shmRemap, nonZero: true},
	}},
}

// sysArch is what the seccomp program needs to know of an architecture.
// The tracer uses nativeArch; the filter tests build the program for every
// arch nodeboot supports.
type sysArch struct {
	name  string
	audit uint32 // seccomp_data.arch of native syscalls
	// x32Bit marks syscall numbers of the x32 ABI (__X32_SYSCALL_BIT), or 0.
	x32Bit uint32
	// window is the scratch window's start (scratchBase of that arch).
	window uint64
	// nr gives the numbers of the syscalls the filter handles by name:
	// the window guards, io_uring_setup/enter/register, fstatfs.
	nr map[string]int
}

// guardOf returns the window guard of native syscall nr, or nil.
func guardOf(nr int) *windowGuard {
	i, ok := nativeGuards[nr]
	if !ok {
		return nil
	}
	return &windowGuards[i]
}

var nativeGuards = func() map[int]int {
	m := map[int]int{}
	for i, g := range windowGuards {
		nr, ok := nativeArch.nr[g.name]
		if !ok {
			panic("interceptor: no syscall number for " + g.name)
		}
		m[nr] = i
	}
	return m
}()

// denies reports whether a call with args would touch the window. The
// arithmetic wraps at 2^64 as the filter's does; the kernel refuses a
// range that wraps anyway.
func (g *windowGuard) denies(window uint64, args *[6]uint64) bool {
	winEnd := window + scratchWindowSize
	for _, sp := range g.spans {
		if sp.flagArg != noArg && uint32(args[sp.flagArg])&sp.flagMask == 0 {
			continue
		}
		start := args[sp.addr]
		if sp.nonZero && start == 0 {
			continue
		}
		overlaps := start < winEnd
		switch sp.len {
		case lenToEnd:
		case lenOne:
			overlaps = overlaps && start+1 > window
		default:
			overlaps = overlaps && start+args[sp.len] > window
		}
		if overlaps {
			return true
		}
	}
	return false
}
