package interceptor

import (
	"os"
	"runtime"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// maxThreadTries bounds the search for a childless thread: each try holds
// one more OS thread until the search ends.
const maxThreadTries = 32

// goOnChildlessThread runs f in a new goroutine locked to an OS thread that
// has no child processes. The thread is never unlocked: it exits with f.
//
// The tracer waits with wait4(-1, __WALL|__WNOTHREAD), which sees every
// child of its thread, not only the tracees. A process that another
// goroutine started earlier from the same thread (os/exec forks on whatever
// thread its goroutine runs on) would have its exit status stolen, and
// while it runs wait4 never reports ECHILD after the last tracee, so Wait
// would hang. A thread that has children is held by its parked goroutine
// while the next try runs, so the runtime must use another thread or start
// a new one (which has none); the held threads are let go at the end. When
// /proc cannot tell (no CONFIG_PROC_CHILDREN), the first thread is used.
func goOnChildlessThread(f func()) { go tryThread(f, nil) }

func tryThread(f func(), held []chan struct{}) {
	runtime.LockOSThread()
	if len(held) < maxThreadTries && threadHasChildren() {
		c := make(chan struct{})
		go tryThread(f, append(held, c))
		<-c
		runtime.UnlockOSThread()
		return
	}
	for _, c := range held {
		close(c)
	}
	f()
}

// threadHasChildren reports whether the calling OS thread has child
// processes (zombies included), as /proc/self/task/TID/children lists them.
func threadHasChildren() bool {
	b, err := os.ReadFile("/proc/self/task/" + strconv.Itoa(unix.Gettid()) + "/children")
	return err == nil && strings.TrimSpace(string(b)) != ""
}
