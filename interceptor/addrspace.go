package interceptor

import (
	"strconv"

	"golang.org/x/sys/unix"
)

// pathMax is PATH_MAX: the longest path a syscall takes, NUL included.
const pathMax = 4096

// A slot holds the paths of one thread's syscall in progress, as the kernel
// is to read them: two paths at most (rename, link), or clone3's struct
// clone_args.
const (
	slotSize       = 2 * pathMax
	slotsPerRegion = 64
	regionSize     = slotSize * slotsPerRegion
	// windowRegions is how many regions fit in the scratch window.
	windowRegions = scratchWindowSize / regionSize
)

// addrSpace is what the tracer knows of one address space (an mm in the
// kernel): the scratch regions it mapped there, which slots threads hold,
// and the file it writes them through. Threads created with CLONE_VM share
// one addrSpace; fork gives the child a copy whose regions exist (copied)
// but whose slots are all free.
//
// Scratch regions are mapped PROT_READ at fixed addresses of the scratch
// window (MAP_FIXED_NOREPLACE: never over anything of the tracee's), and
// the tracer writes them through /proc/PID/mem, which ignores page
// protection as ptrace does. The tracee cannot write them (the pages are
// read-only and the seccomp filter stops every call that would remap or
// reprotect the window), so what the tracer wrote is what the kernel reads.
//
// Sharing is only ever an optimisation: a thread whose address space is not
// known gets an addrSpace of its own, and when two addrSpaces turn out to
// be one mm, the second one's mmap finds the first one's region in place
// (EEXIST) and takes the next.
type addrSpace struct {
	regions []uint64 // base addresses of the mapped scratch regions
	// nextRegion is the index in the window of the region to map next.
	nextRegion int
	free       []int // slots returned by exited threads
	next       int   // slots never handed out start here
	refs       int   // threads attached
	// mem is /proc/TID/mem of a thread of this address space opened for
	// writing, or -1 until the first write.
	mem int
	// gen changes when the slots were given up (scratch found gone): a
	// thread's slot and what it knows of its content count only while its
	// slotGen equals gen.
	gen uint32
}

func newAddrSpace() *addrSpace { return &addrSpace{mem: -1} }

// fork returns the address space of a forked child: same regions, no slot
// in use.
func (a *addrSpace) fork() *addrSpace {
	return &addrSpace{regions: append([]uint64(nil), a.regions...), nextRegion: a.nextRegion, mem: -1}
}

// take hands out a free slot; ok=false means every region is full and a
// new one must be mapped first.
func (a *addrSpace) take() (slot int, ok bool) {
	if n := len(a.free); n > 0 {
		slot = a.free[n-1]
		a.free = a.free[:n-1]
		return slot, true
	}
	if a.next < len(a.regions)*slotsPerRegion {
		a.next++
		return a.next - 1, true
	}
	return -1, false
}

func (a *addrSpace) release(slot int) {
	if slot >= 0 {
		a.free = append(a.free, slot)
	}
}

// addr is the tracee address of the start of slot.
func (a *addrSpace) addr(slot int) uint64 {
	return a.regions[slot/slotsPerRegion] + uint64(slot%slotsPerRegion)*slotSize
}

// regionAddr is the address of region i of the window.
func regionAddr(i int) uint64 { return scratchBase + uint64(i)*regionSize }

// lose gives up every slot and region after a write to scratch memory
// failed: a region was unmapped or replaced behind the tracer's back (a
// fork with MADV_DONTFORK, or anything the guards do not know). Threads
// take new slots, and new regions are mapped from the window's start again:
// a region still in place answers EEXIST and the next one is tried.
func (a *addrSpace) lose() {
	a.regions = nil
	a.nextRegion = 0
	a.free = nil
	a.next = 0
	a.gen++
	a.closeMem()
}

func (a *addrSpace) closeMem() {
	if a.mem >= 0 {
		unix.Close(a.mem)
		a.mem = -1
	}
}

// write writes b at addr of this address space through /proc/TID/mem
// (TID: the stopped thread the write is for). When /proc/TID/mem cannot be
// opened (no procfs), PTRACE_POKEDATA does the same word by word.
func (a *addrSpace) write(tid int, addr uint64, b []byte) error {
	if a.mem < 0 {
		fd, err := unix.Open("/proc/"+strconv.Itoa(tid)+"/mem", unix.O_RDWR|unix.O_CLOEXEC, 0)
		if err != nil {
			return pokeMem(tid, addr, b)
		}
		a.mem = fd
	}
	err := pwriteFull(a.mem, b, addr)
	if err == nil {
		return nil
	}
	// The address space may have ended under the fd (the thread it was
	// opened for exec'd and this one carried on): reopen once.
	a.closeMem()
	fd, oerr := unix.Open("/proc/"+strconv.Itoa(tid)+"/mem", unix.O_RDWR|unix.O_CLOEXEC, 0)
	if oerr != nil {
		return err
	}
	a.mem = fd
	return pwriteFull(a.mem, b, addr)
}

// thread is the tracer's state of one traced thread.
type thread struct {
	tid  int
	tgid int // 0 until known
	// pidDepth is how many pid namespaces, nodeboot's included, number
	// the thread (fixed for its life; 0 until read, -1 unreadable): see
	// eventChild.
	pidDepth int
	// innerPid is the thread's number in its innermost pid namespace
	// (fixed for its life; 0 until read, -1 unreadable): translatePid.
	innerPid int
	mm       *addrSpace
	// spaceGuessed: mm is a fresh address space given at a first stop
	// that came before the parent's fork/clone event; that event may still
	// replace it, unless the thread has exec'd or mapped scratch memory
	// since.
	spaceGuessed bool
	slot         int    // scratch slot in mm, or -1
	slotGen      uint32 // mm.gen when slot was taken
	// slotHolds are the paths last written to the two halves of the slot,
	// when slotKnown says they are known.
	slotHolds [2]string
	slotKnown [2]bool

	// held: stopped at its first stop until its parent's clone event.
	held bool
	// inSyscall toggles at syscall stops in stop-every-syscall mode.
	inSyscall bool
	// awaitExit: the thread was resumed with PTRACE_SYSCALL from a seccomp
	// stop and its syscall-exit stop is due (after a syscall-enter stop
	// first when the kernel reports seccomp before syscall-enter).
	awaitExit bool
	sawEnter  bool
	// passed is 1 + the table index of a syscall passed at its entry in
	// stop-every-syscall mode, so its exit stop is counted with it.
	passed int
	// probe: the pending exit belongs to the shim's probe syscall.
	probe bool
	// call is the syscall in progress that needs work at its exit.
	call *pendingCall
	// view is the resolver's cache of the thread's root and mount
	// namespace.
	view traceeView
}

func (th *thread) attachSpace(a *addrSpace) {
	th.mm = a
	a.refs++
}

func (th *thread) detachSpace() {
	if th.mm == nil {
		return
	}
	if th.hasSlot() {
		th.mm.release(th.slot)
	}
	th.mm.refs--
	if th.mm.refs <= 0 {
		th.mm.closeMem()
	}
	th.mm = nil
	th.dropSlot()
}

// hasSlot reports whether th holds a slot of its address space.
func (th *thread) hasSlot() bool { return th.slot >= 0 && th.slotGen == th.mm.gen }

func (th *thread) dropSlot() {
	th.slot = -1
	th.slotKnown = [2]bool{}
	th.slotHolds = [2]string{}
}

func (th *thread) clearCall() {
	th.call = nil
	th.awaitExit = false
	th.sawEnter = false
	th.probe = false
	th.inSyscall = false
}

// pendKind is what a pendingCall does at syscall exit.
type pendKind uint8

const (
	// pendRewrite: put the original path argument registers back, and
	// rewrite the statfs result when statfs is set.
	pendRewrite pendKind = iota
	// pendInject: the thread runs an injected mmap; at its exit, record the
	// new region and make the thread run its own syscall again.
	pendInject
	// pendWatch: a call that may change the caller's root or mount
	// namespace; at its exit the resolver drops its cached views again.
	pendWatch
	// pendFail: the call was skipped at its entry; its exit returns
	// -errno.
	pendFail
)

// pendingCall is the work left for a syscall's exit stop.
type pendingCall struct {
	kind  pendKind
	index int // table index, for counters; -1 outside the table
	// bump: the call may change the mount table (a bind mount): the
	// resolver drops its cached views at the exit too.
	bump bool
	// saved registers of the syscall's entry (pendInject).
	saved regs
	// region is the window index of the region an injected mmap maps.
	region int
	// errno the call fails with (pendFail).
	errno unix.Errno
	// Argument registers replaced at entry and their original values.
	nargs  int
	argIdx [2]int8
	argVal [2]uint64
	// rewrote: a path argument names another file than the tracee's.
	rewrote bool
	// counted: the call's rewrite or pass counter was counted at entry.
	counted bool
	// compat: a 32-bit syscall (pendFail), whose registers stay as they are.
	compat bool
	// statfs result rewrite: buffer address and the guest path ("" if
	// none) that path rules match.
	statfs     bool
	statfsBuf  uint64
	statfsPath string
	// observed are the guest paths to report to Config.Observe at exit,
	// with whether each was rewritten.
	observed  []string
	rewritten [2]bool
	// files are the FileServer requests waiting for the exit.
	files []*FileRequest
	// statfsHost is the path after redirection (or the fd's path), "" if none.
	statfsHost string
	// rev says the result buffer at revBuf (revSize bytes) is to be
	// turned back into a guest path at the exit (reverse.go); revText is
	// the link's target as the tracer read it at the entry; revSaved the
	// buffer's bytes before the kernel wrote it, as far as its answer
	// will reach.
	rev      revKind
	revBuf   uint64
	revSize  uint64
	revText  string
	revSaved []byte
}
