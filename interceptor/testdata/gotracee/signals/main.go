// Command signals checks that a traced Go program gets the signals it asks
// for through os/signal: it prints "ready", waits for SIGUSR1 (sent by the
// test through Tracer.Signal) and for a SIGUSR2 it sends itself, then
// prints "got SIGUSR1" and "got SIGUSR2" and exits with status 7. Without
// a signal within 10 s it exits 4.
package main

import (
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"
)

func main() {
	ch := make(chan os.Signal, 4)
	signal.Notify(ch, syscall.SIGUSR1, syscall.SIGUSR2)
	syscall.Kill(os.Getpid(), syscall.SIGUSR2)
	seen := map[os.Signal]bool{}
	fmt.Println("ready")
	timeout := time.After(10 * time.Second)
	for !seen[syscall.SIGUSR1] || !seen[syscall.SIGUSR2] {
		select {
		case s := <-ch:
			if !seen[s] {
				fmt.Printf("got %v\n", signame(s))
			}
			seen[s] = true
		case <-timeout:
			fmt.Println("timeout")
			os.Exit(4)
		}
	}
	os.Exit(7)
}

func signame(s os.Signal) string {
	switch s {
	case syscall.SIGUSR1:
		return "SIGUSR1"
	case syscall.SIGUSR2:
		return "SIGUSR2"
	}
	return s.String()
}
