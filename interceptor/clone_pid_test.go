package interceptor

import (
	"log/slog"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// TestIntegrationEventChild: a clone event's pid in either numbering —
// nodeboot's (Linux) or the tracee's pid namespace's (gVisor) — names the
// same new task. Real processes in a pid namespace of their own, seized
// by this test's locked thread as the tracer would.
func TestIntegrationEventChild(t *testing.T) {
	requireIntegration(t)
	requireRoot(t, "a pid namespace and ptrace")
	if _, err := exec.LookPath("unshare"); err != nil {
		t.Skipf("needs unshare (util-linux): %v", err)
	}
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()

	// sh is pid 1 of the new namespace; its two sleeps are its children.
	cmd := exec.Command("unshare", "--pid", "--fork", "--kill-child", "sh", "-c", "sleep 60 & sleep 60 & wait")
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { cmd.Process.Kill(); cmd.Wait() }()
	var sh int
	var kids []int
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if b, err := os.ReadFile("/proc/" + strconv.Itoa(cmd.Process.Pid) + "/task/" + strconv.Itoa(cmd.Process.Pid) + "/children"); err == nil {
			if f := strings.Fields(string(b)); len(f) == 1 {
				sh, _ = strconv.Atoi(f[0])
				if b, err := os.ReadFile("/proc/" + f[0] + "/task/" + f[0] + "/children"); err == nil {
					kids = nil
					for _, w := range strings.Fields(string(b)) {
						n, _ := strconv.Atoi(w)
						kids = append(kids, n)
					}
					if len(kids) == 2 {
						break
					}
				}
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no sh with two children under unshare %d", cmd.Process.Pid)
		}
	}
	if ns := nsPids(sh); len(ns) != 2 || ns[1] != 1 {
		t.Fatalf("nsPids(sh %d) = %v, want [%d 1]", sh, ns, sh)
	}
	// Seize the children as the tracer's thread: their TracerPid is this
	// thread's id.
	for _, k := range kids {
		if err := unix.PtraceSeize(k); err != nil {
			t.Fatalf("PTRACE_SEIZE %d: %v", k, err)
		}
	}
	defer func() {
		for _, k := range kids {
			unix.Kill(k, unix.SIGKILL)
		}
	}()

	tr := &Tracer{threads: map[int]*thread{}, warned: map[string]bool{}, log: slog.New(slog.DiscardHandler)}
	parent := &thread{tid: sh, tgid: sh}
	tr.threads[sh] = parent
	for _, k := range kids {
		inner := nsPids(k)
		if len(inner) != 2 {
			t.Fatalf("nsPids(%d) = %v, want two ids", k, inner)
		}
		if got := tr.eventChild(parent, k); got != k {
			t.Errorf("event naming %d in nodeboot's numbering: got %d", k, got)
		}
		if got := tr.eventChild(parent, inner[1]); got != k {
			t.Errorf("event naming %d in the namespace's numbering (%d in nodeboot's): got %d", inner[1], k, got)
		}
	}
	// A task the tracer already knows of is no new one: its number in the
	// namespace then names nothing new (taken as named, as before).
	tr.threads[kids[0]] = &thread{tid: kids[0], tgid: kids[0]}
	if inner := nsPids(kids[0]); tr.eventChild(parent, inner[1]) != inner[1] {
		t.Errorf("an announced task was taken for a new one")
	}
	// A parent in nodeboot's namespace: the number is used as it is.
	self := &thread{tid: os.Getpid(), tgid: os.Getpid()}
	if got := tr.eventChild(self, 12345678); got != 12345678 {
		t.Errorf("parent in nodeboot's namespace: got %d", got)
	}
}

func TestNspidLine(t *testing.T) {
	for _, c := range []struct {
		in   string
		want []int
	}{
		{"Name:\tsh\nNSpid:\t4242\t1\nNSsid:\t1\n", []int{4242, 1}},
		{"pos:\t0\nflags:\t02000002\nPid:\t77\nNSpid:\t77\n", []int{77}},
		{"Name:\tsh\nPid:\t5\n", nil}, // gVisor's status
		{"NSpid:\t5\tx\n", nil},
	} {
		got := nspidLine([]byte(c.in))
		if len(got) != len(c.want) {
			t.Errorf("nspidLine(%q) = %v, want %v", c.in, got, c.want)
			continue
		}
		for i := range got {
			if got[i] != c.want[i] {
				t.Errorf("nspidLine(%q) = %v, want %v", c.in, got, c.want)
			}
		}
	}
}
