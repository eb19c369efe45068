// Command literal passes a path that is a Go string constant (in the
// binary's read-only data, NUL included) straight to openat, from many
// goroutines with small stacks, and checks afterwards that the constant,
// the goroutines' stack data and heap data around them are unchanged.
// The tests redirect the constant's path to a host path thousands of bytes
// long.
//
// Prints data=<content of the file> and literal=ok, stacks=ok, heap=ok
// (or what changed), and exits 0 when all checks passed, 1 otherwise.
package main

import (
	"bytes"
	"fmt"
	"os"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"unsafe"
)

// guestFile ends with a NUL so that its bytes in .rodata can be passed to
// the kernel as they are.
const guestFile = "/nodeboot-test-literal/dir/file\x00"

const neighbour = "nodeboot-neighbour-constant-0123456789abcdefghijklmnopqrstuvwxyz"

var atFDCWD = -100

// openLiteral opens guestFile with the pointer to the constant itself.
//
//go:noinline
func openLiteral() (int, syscall.Errno) {
	p := unsafe.StringData(guestFile)
	fd, _, e := syscall.Syscall6(syscall.SYS_OPENAT, uintptr(atFDCWD), uintptr(unsafe.Pointer(p)),
		syscall.O_RDONLY|syscall.O_CLOEXEC, 0, 0, 0)
	return int(fd), e
}

func readLiteral() (string, error) {
	fd, e := openLiteral()
	if e != 0 {
		return "", e
	}
	defer syscall.Close(fd)
	buf := make([]byte, 4096)
	n, err := syscall.Read(fd, buf)
	if err != nil {
		return "", err
	}
	return string(buf[:n]), nil
}

// withStack keeps a patterned array in this goroutine's frame across the
// syscall and reports whether it survived.
//
//go:noinline
func withStack(seed byte) (string, error, bool) {
	var pad [512]byte
	for i := range pad {
		pad[i] = seed + byte(i)
	}
	data, err := readLiteral()
	for i := range pad {
		if pad[i] != seed+byte(i) {
			return data, err, false
		}
	}
	return data, err, true
}

func main() {
	wantLit := strings.Clone(guestFile)
	wantNeighbour := strings.Clone(neighbour)
	ok := true

	first, err := readLiteral()
	if err != nil {
		first = "!" + err.Error()
		ok = false
	}
	fmt.Printf("data=%s\n", first)

	// Many goroutines, each on its own small stack, with heap blocks
	// allocated around them.
	const n = 64
	var wg sync.WaitGroup
	var mu sync.Mutex
	results := make([]string, 0, n)
	stacksOK := true
	heap := make([][]byte, n)
	for i := 0; i < n; i++ {
		heap[i] = bytes.Repeat([]byte{byte(i)}, 256)
	}
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			data, err, same := withStack(byte(i))
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				results = append(results, "!"+err.Error())
			} else {
				results = append(results, data)
			}
			if !same {
				stacksOK = false
			}
		}()
	}
	wg.Wait()
	runtime.GC()
	heapOK := true
	for i := 0; i < n; i++ {
		if !bytes.Equal(heap[i], bytes.Repeat([]byte{byte(i)}, 256)) {
			heapOK = false
		}
	}
	differ := 0
	for _, r := range results {
		if r != first {
			if differ < 3 {
				fmt.Printf("goroutine data=%q, first read %q\n", r, first)
			}
			differ++
		}
	}
	allSame := differ == 0
	report := func(key string, good bool, bad string) {
		if good {
			fmt.Printf("%s=ok\n", key)
			return
		}
		fmt.Printf("%s=%s\n", key, bad)
		ok = false
	}
	report("literal", guestFile == wantLit && neighbour == wantNeighbour, "changed")
	report("stacks", stacksOK, "changed")
	report("heap", heapOK, "changed")
	report("goroutines", allSame, "differ")
	if !ok {
		fmt.Println("FAILED")
		os.Exit(1)
	}
	fmt.Println("all ok")
}
