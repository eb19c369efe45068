// Command spawn runs PROG ARGS... N times at once through os/exec (which
// uses clone with CLONE_VFORK|CLONE_VM) and prints each child's output
// after "child I:", in order. Exits 1 when a child failed.
//
// Usage: spawn N PROG ARGS...
package main

import (
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"sync"
)

func main() {
	if len(os.Args) < 3 {
		fmt.Fprintln(os.Stderr, "usage: spawn N PROG ARGS...")
		os.Exit(3)
	}
	n, _ := strconv.Atoi(os.Args[1])
	outs := make([][]byte, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			outs[i], errs[i] = exec.Command(os.Args[2], os.Args[3:]...).Output()
		}()
	}
	wg.Wait()
	failed := false
	for i := 0; i < n; i++ {
		fmt.Printf("child %d:\n%s", i, outs[i])
		if errs[i] != nil {
			fmt.Printf("child %d failed: %v\n", i, errs[i])
			failed = true
		}
	}
	if failed {
		os.Exit(1)
	}
}
