package interceptor

import (
	"bytes"
	"os"
	"strconv"

	"golang.org/x/sys/unix"
)

// The pid in a clone event. PTRACE_GETEVENTMSG at PTRACE_EVENT_CLONE,
// FORK or VFORK gives the new task's pid; Linux numbers it in the tracer's
// pid namespace (ptrace_event_pid in kernel/ptrace.c), gVisor in the
// tracee's (pkg/sentry/kernel/ptrace.go, ptraceClone: t.tg.pidns.tids[child];
// docs/gvisor.md item 1). For a tracee in a pid namespace of its own (every
// container) gVisor's number names some other process or none in
// nodeboot's view, and the real child would stay held until another
// tracee exits. eventChild tells which numbering it got.

// eventChild returns the new task of parent's clone event, in nodeboot's
// numbering, from the event's msg.
func (t *Tracer) eventChild(parent *thread, msg int) int {
	if parent.pidDepth == 0 {
		parent.pidDepth = len(nsPids(parent.tid))
		if parent.pidDepth == 0 {
			parent.pidDepth = -1
		}
	}
	if parent.pidDepth <= 1 {
		// The parent is in nodeboot's pid namespace (or the kernel does
		// not say): both numberings are the same.
		return msg
	}
	// Linux's numbering: a task of ours nothing has announced yet.
	if t.unannounced(msg) && t.tracedByUs(msg) {
		return msg
	}
	// The tracee's numbering: the task among the parent's new ones whose
	// pid in the parent's namespace is msg.
	depth := parent.pidDepth
	for _, c := range t.newTasksOf(parent) {
		if cp := nsPids(c); len(cp) >= depth && cp[depth-1] == msg && t.tracedByUs(c) {
			return c
		}
	}
	// Gone already (its exit can be reported before its parent's
	// event), or a numbering nodeboot cannot map: as named, as before.
	t.log.Debug("clone event: child not found in either numbering", "pid", parent.tid, "child", msg)
	return msg
}

// unannounced reports whether tid is no thread the tracer knows, or one
// held at its first stop for its parent's event.
func (t *Tracer) unannounced(tid int) bool {
	th := t.threads[tid]
	return th == nil || th.held
}

// tracedByUs reports whether tid's tracer is this tracer's thread.
func (t *Tracer) tracedByUs(tid int) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(tid) + "/status")
	if err != nil {
		return false
	}
	v, ok := statusField(b, "TracerPid:")
	return ok && v == unix.Gettid()
}

// newTasksOf lists, in nodeboot's numbering, the tasks that may be
// parent's new one: the threads held at their first stop, the parent's
// children (a fork, or a sibling with CLONE_PARENT: the grandparent's
// children) and the threads of its group, that the tracer has not been
// told of.
func (t *Tracer) newTasksOf(parent *thread) []int {
	var out []int
	seen := map[int]bool{}
	add := func(tid int) {
		if !seen[tid] && t.unannounced(tid) {
			seen[tid] = true
			out = append(out, tid)
		}
	}
	for tid, th := range t.threads {
		if th.held {
			add(tid)
		}
	}
	tgid := t.tgidOf(parent)
	for _, p := range []string{
		"/proc/" + strconv.Itoa(tgid) + "/task/" + strconv.Itoa(parent.tid) + "/children",
		"/proc/" + strconv.Itoa(ppidOf(tgid)) + "/task/" + strconv.Itoa(ppidOf(tgid)) + "/children",
	} {
		if b, err := os.ReadFile(p); err == nil {
			for _, f := range bytes.Fields(b) {
				if n, err := strconv.Atoi(string(f)); err == nil {
					add(n)
				}
			}
		}
	}
	if ents, err := os.ReadDir("/proc/" + strconv.Itoa(tgid) + "/task"); err == nil {
		for _, e := range ents {
			if n, err := strconv.Atoi(e.Name()); err == nil {
				add(n)
			}
		}
	}
	return out
}

// ppidOf returns pid's parent in nodeboot's view, 0 when unknown.
func ppidOf(pid int) int {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return 0
	}
	v, _ := statusField(b, "PPid:")
	return v
}

// nspidLine parses the "NSpid:" line of a status or fdinfo file.
func nspidLine(b []byte) []int {
	for _, line := range bytes.Split(b, []byte{'\n'}) {
		rest, ok := bytes.CutPrefix(line, []byte("NSpid:"))
		if !ok {
			continue
		}
		var out []int
		for _, f := range bytes.Fields(rest) {
			n, err := strconv.Atoi(string(f))
			if err != nil {
				return nil
			}
			out = append(out, n)
		}
		return out
	}
	return nil
}

// statusField returns the number after name in a /proc status file.
func statusField(b []byte, name string) (int, bool) {
	for _, line := range bytes.Split(b, []byte{'\n'}) {
		if rest, ok := bytes.CutPrefix(line, []byte(name)); ok {
			n, err := strconv.Atoi(string(bytes.TrimSpace(rest)))
			return n, err == nil
		}
	}
	return 0, false
}
