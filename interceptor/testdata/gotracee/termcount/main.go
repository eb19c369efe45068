// Command termcount counts the SIGTERMs it is sent. With N > 0 it first
// starts N copies of itself with N = 0, each in a session of its own (so
// neither a process group nor a session reaches them all). Every process
// runs 8 goroutines locked to OS threads, so each has a dozen threads,
// prints "ready PID THREADS", and after its first SIGTERM waits 300 ms
// for more before it prints "PID got K". A parent then waits for its
// children and exits 0. Without a SIGTERM within 20 s a process prints
// "PID timeout" and exits 4.
//
// Usage: termcount N
package main

import (
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"runtime"
	"strconv"
	"syscall"
	"time"
)

func main() {
	n, _ := strconv.Atoi(os.Args[1])
	ch := make(chan os.Signal, 64)
	signal.Notify(ch, syscall.SIGTERM)

	self, err := os.Executable()
	if err != nil {
		fmt.Println("executable:", err)
		os.Exit(3)
	}
	var kids []*exec.Cmd
	for range n {
		c := exec.Command(self, "0")
		c.Stdout, c.Stderr = os.Stdout, os.Stderr
		c.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
		if err := c.Start(); err != nil {
			fmt.Println("start:", err)
			os.Exit(3)
		}
		kids = append(kids, c)
	}
	started := make(chan struct{})
	for range 8 {
		go func() {
			runtime.LockOSThread()
			started <- struct{}{}
			select {}
		}()
	}
	for range 8 {
		<-started
	}
	threads, _ := os.ReadDir("/proc/self/task")
	fmt.Printf("ready %d %d\n", os.Getpid(), len(threads))

	select {
	case <-ch:
	case <-time.After(20 * time.Second):
		fmt.Printf("%d timeout\n", os.Getpid())
		os.Exit(4)
	}
	got := 1
	more := time.After(300 * time.Millisecond)
	for waiting := true; waiting; {
		select {
		case <-ch:
			got++
		case <-more:
			waiting = false
		}
	}
	fmt.Printf("%d got %d\n", os.Getpid(), got)
	for _, c := range kids {
		c.Wait()
	}
	os.Exit(0)
}
