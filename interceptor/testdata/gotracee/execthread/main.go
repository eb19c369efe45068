// Command execthread execs PROG ARGS... from a thread that is not the
// thread group leader, while other threads keep opening FILE. It prints
// "exec from tid T of pid P" on stderr first (T != P), so a test can check
// that the exec really came from a non-leader thread.
//
// Usage: execthread FILE PROG ARGS...
package main

import (
	"fmt"
	"os"
	"runtime"
	"syscall"
)

func init() {
	// Keep main on the leader thread, so the exec below runs elsewhere.
	runtime.LockOSThread()
}

func main() {
	if len(os.Args) < 3 {
		fmt.Fprintln(os.Stderr, "usage: execthread FILE PROG ARGS...")
		os.Exit(3)
	}
	for i := 0; i < 4; i++ {
		go func() {
			runtime.LockOSThread()
			for {
				if f, err := os.Open(os.Args[1]); err == nil {
					f.Close()
				}
			}
		}()
	}
	done := make(chan error)
	go func() {
		runtime.LockOSThread()
		tid, pid := syscall.Gettid(), os.Getpid()
		if tid == pid {
			done <- fmt.Errorf("exec thread is the leader (tid %d)", tid)
			return
		}
		fmt.Fprintf(os.Stderr, "exec from tid %d of pid %d\n", tid, pid)
		done <- syscall.Exec(os.Args[2], os.Args[2:], os.Environ())
	}()
	fmt.Fprintln(os.Stderr, <-done)
	os.Exit(2)
}
