// Command threads is the Go twin of testdata/c/threads.c: NTHREADS
// goroutines, each locked to its own OS thread, open and read the same
// paths ITERS times at once and compare every read with the expected
// content.
//
// Usage: threads NTHREADS ITERS PATH WANT [PATH WANT...]
//
// A WANT of "!ENOENT" expects open to fail with ENOENT. Prints
// "ok opens=N" and exits 0, or "mismatch ..." lines and exits 1.
package main

import (
	"fmt"
	"os"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
)

func main() {
	if len(os.Args) < 5 || (len(os.Args)-3)%2 != 0 {
		fmt.Fprintln(os.Stderr, "usage: threads NTHREADS ITERS PATH WANT...")
		os.Exit(3)
	}
	n, _ := strconv.Atoi(os.Args[1])
	iters, _ := strconv.Atoi(os.Args[2])
	var paths, wants []string
	for i := 3; i+1 < len(os.Args); i += 2 {
		paths = append(paths, os.Args[i])
		wants = append(wants, os.Args[i+1])
	}
	var opens, bad atomic.Int64
	var mu sync.Mutex
	mismatch := func(th, it int, path, got, want string) {
		if bad.Add(1) > 20 {
			return
		}
		mu.Lock()
		fmt.Printf("mismatch thread=%d iter=%d path=%s got=%q want=%q\n", th, it, path, got, want)
		mu.Unlock()
	}
	var ready, wg sync.WaitGroup
	start := make(chan struct{})
	for th := 0; th < n; th++ {
		wg.Add(1)
		ready.Add(1)
		go func() {
			defer wg.Done()
			runtime.LockOSThread()
			ready.Done()
			<-start
			buf := make([]byte, 4096)
			for it := 0; it < iters; it++ {
				for k := range paths {
					i := (k + th) % len(paths)
					opens.Add(1)
					fd, err := syscall.Open(paths[i], syscall.O_RDONLY|syscall.O_CLOEXEC, 0)
					if err != nil {
						got := "!" + err.Error()
						if err == syscall.ENOENT {
							got = "!ENOENT"
						}
						if got != wants[i] {
							mismatch(th, it, paths[i], got, wants[i])
						}
						continue
					}
					m, _ := syscall.Read(fd, buf)
					syscall.Close(fd)
					if m < 0 {
						m = 0
					}
					if got := string(buf[:m]); got != wants[i] {
						mismatch(th, it, paths[i], got, wants[i])
					}
				}
			}
		}()
	}
	ready.Wait()
	close(start)
	wg.Wait()
	if bad.Load() > 0 {
		fmt.Printf("failed mismatches=%d opens=%d\n", bad.Load(), opens.Load())
		os.Exit(1)
	}
	fmt.Printf("ok opens=%d\n", opens.Load())
}
