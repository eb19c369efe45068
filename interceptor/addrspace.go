package interceptor

// pathMax is PATH_MAX: the longest path a syscall takes, NUL included.
const pathMax = 4096

// A slot holds the rewritten paths of one thread's syscall in progress: two
// paths at most (rename, link).
const (
	slotSize       = 2 * pathMax
	slotsPerRegion = 64
	regionSize     = slotSize * slotsPerRegion
)

// addrSpace is what the tracer knows of one address space (an mm in the
// kernel): the scratch regions it mapped there and which slots threads hold.
// Threads created with CLONE_VM share one addrSpace; fork gives the child a
// copy whose regions exist (copied) but whose slots are all free.
//
// Sharing is only ever an optimisation: a thread whose address space is not
// known gets an addrSpace of its own and maps its own region.
type addrSpace struct {
	regions []uint64 // base addresses of the mapped scratch regions
	free    []int    // slots returned by exited threads
	next    int      // slots never handed out start here
	refs    int      // threads attached
	// injectFailed is set when mmap failed in this address space; paths are
	// then left alone rather than retried on every call.
	injectFailed bool
}

func newAddrSpace() *addrSpace { return &addrSpace{} }

// fork returns the address space of a forked child: same regions, no slot
// in use.
func (a *addrSpace) fork() *addrSpace {
	return &addrSpace{regions: append([]uint64(nil), a.regions...), injectFailed: a.injectFailed}
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

// thread is the tracer's state of one traced thread.
type thread struct {
	tid  int
	tgid int // 0 until known
	mm   *addrSpace
	// spaceGuessed: mm is a fresh address space given at a first stop
	// that came before the parent's fork/clone event; that event may still
	// replace it, unless the thread has exec'd or mapped scratch memory
	// since.
	spaceGuessed bool
	slot         int // scratch slot in mm, or -1
	// slotHolds are the paths last written to the two halves of the slot.
	slotHolds [2]string

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
	th.mm.release(th.slot)
	th.mm.refs--
	th.mm = nil
	th.slot = -1
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
)

// pendingCall is the work left for a syscall's exit stop.
type pendingCall struct {
	kind  pendKind
	index int // table index, for counters
	// saved registers of the syscall's entry (pendInject).
	saved regs
	// Argument registers replaced at entry and their original values.
	nargs  int
	argIdx [2]int8
	argVal [2]uint64
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
}
