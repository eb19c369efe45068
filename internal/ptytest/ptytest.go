// Package ptytest gives tests a real terminal: a pseudo-terminal whose
// slave side a command writes to as its stdout or stderr, and whose
// master side the test reads what a person would see from.
package ptytest

import (
	"bytes"
	"fmt"
	"os"
	"sync"
	"testing"

	"golang.org/x/sys/unix"
)

// PTY is a pseudo-terminal. Everything written to TTY is collected, as
// the terminal shows it (with "\n" turned into "\r\n").
type PTY struct {
	TTY *os.File // the slave side: a terminal for the command

	ptmx *os.File
	mu   sync.Mutex
	out  bytes.Buffer
	done chan struct{}
}

// Open opens a pseudo-terminal, or skips the test (with the reason) when
// the system has none. Both sides are closed when the test ends.
func Open(t testing.TB) *PTY {
	t.Helper()
	ptmx, err := os.OpenFile("/dev/ptmx", os.O_RDWR|unix.O_NOCTTY|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Skipf("no /dev/ptmx to test a terminal: %v", err)
	}
	if err := unix.IoctlSetPointerInt(int(ptmx.Fd()), unix.TIOCSPTLCK, 0); err != nil {
		ptmx.Close()
		t.Fatalf("unlock pty: %v", err)
	}
	n, err := unix.IoctlGetInt(int(ptmx.Fd()), unix.TIOCGPTN)
	if err != nil {
		ptmx.Close()
		t.Fatalf("pty number: %v", err)
	}
	tty, err := os.OpenFile(fmt.Sprintf("/dev/pts/%d", n), os.O_RDWR|unix.O_NOCTTY|unix.O_CLOEXEC, 0)
	if err != nil {
		ptmx.Close()
		t.Fatalf("open pty %d: %v", n, err)
	}
	p := &PTY{TTY: tty, ptmx: ptmx, done: make(chan struct{})}
	// Drained all the time: a full terminal buffer would block the writer.
	go func() {
		defer close(p.done)
		buf := make([]byte, 4096)
		for {
			n, err := ptmx.Read(buf)
			p.mu.Lock()
			p.out.Write(buf[:n])
			p.mu.Unlock()
			if err != nil {
				return
			}
		}
	}()
	t.Cleanup(func() {
		tty.Close()
		ptmx.Close()
	})
	return p
}

// Output closes the terminal's slave side (this process's descriptor; a
// child's copies must be gone, as they are once it has exited) and returns
// everything that was written to it.
func (p *PTY) Output() string {
	p.TTY.Close()
	<-p.done // EIO once no slave is open
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.out.String()
}
