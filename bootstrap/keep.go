package bootstrap

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/nodeboot/nodeboot/interceptor"
)

// shimPrefix starts the name of containerd's shim binaries
// (containerd-shim-runc-v2, and the v1 containerd-shim).
const shimPrefix = "containerd-shim"

// Respawn starts the command again in p's trace, on p's virtual kernel
// (KeepShims only), and returns once it has been exec'd. The processes
// p's command left running (StopKeeping kept them) stay as they are.
// Cancelling ctx kills every traced process, as Launch's does.
func (p *Process) Respawn(ctx context.Context) (*Process, error) {
	if !p.keep {
		return nil, errors.New("respawn: launched without KeepShims")
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("respawn: %w", err)
	}
	r, err := p.tracer.Spawn()
	if err != nil {
		return nil, fmt.Errorf("respawn: %w", err)
	}
	np := *p
	np.root = r
	go func() {
		select {
		case <-ctx.Done():
			np.Kill()
		case <-np.trace.done:
		}
	}()
	return &np, nil
}

// StopKeeping ends the command's processes but not containerd's shims nor
// what runs under them (KeepShims; without it, it is Stop): SIGTERM to
// each traced process that is not kept, SIGKILL to those left after grace
// (or once ctx ends), and it returns when none is left, with how the
// command ended. The trace goes on, for Respawn.
//
// What is kept: a process whose executable (or, for a binary started
// through a link, its comm) is named containerd-shim*, and every process
// whose parent chain leads to one. The name is what marks a shim: the
// other signs it has are not its alone. Being reparented away from k3s
// is not, since a killed k3s leaves everything it started (its containerd
// too) reparented; a session of its own is not, since the containers
// have one too, and so may any helper k3s runs. The parent chain, read
// from /proc when the stop is made, is what ties a container to its shim:
// runc's container process is reparented to the shim (a child
// subreaper), so whatever a container starts, even daemonized, has the
// shim among its ancestors. The shims are what k3s keeps itself: its
// containerd exits without ending them, and the next containerd
// reconnects to them through their sockets under /run/k3s/containerd.
func (p *Process) StopKeeping(ctx context.Context, grace time.Duration) (interceptor.Exit, error) {
	if !p.keep {
		return p.Stop(ctx, grace)
	}
	timer := time.NewTimer(grace)
	defer timer.Stop()
	ctxDone := ctx.Done()
	kill := false
	termed := map[int]bool{}
	for {
		// Taken before the look, so that an exit in between wakes the
		// wait below.
		next := p.tracer.NextExit()
		victims := p.unkept()
		if len(victims) == 0 {
			break
		}
		for _, pid := range victims {
			switch {
			case kill:
				unix.Kill(pid, unix.SIGKILL)
			case !termed[pid]:
				// One SIGTERM per process: a Go program takes a
				// second one as "exit now" (see Tracer.SignalAll).
				termed[pid] = true
				unix.Kill(pid, unix.SIGTERM)
			}
		}
		select {
		case <-next:
		case <-p.trace.done:
			return p.Wait()
		case <-timer.C:
			kill = true
		case <-ctxDone:
			kill = true
			ctxDone = nil
		}
	}
	<-p.root.Exited()
	return p.root.Result(), nil
}

// Kept lists the traced processes StopKeeping keeps (see there).
func (p *Process) Kept() []int {
	var out []int
	k := keeper{}
	for _, pid := range p.tracer.Processes() {
		if k.kept(pid) {
			out = append(out, pid)
		}
	}
	return out
}

// unkept lists the traced processes StopKeeping ends.
func (p *Process) unkept() []int {
	var out []int
	k := keeper{}
	for _, pid := range p.tracer.Processes() {
		if !k.kept(pid) {
			out = append(out, pid)
		}
	}
	return out
}

// keeper decides which processes are shims or below one, remembering
// what it read for one look at the process tree.
type keeper map[int]bool

// maxDepth bounds the walk up the parent chain (a chain that long is a
// loop read across pid reuse, not a tree).
const maxDepth = 64

func (k keeper) kept(pid int) bool {
	var chain []int
	res := false
	for i := 0; i < maxDepth && pid > 1 && pid != os.Getpid(); i++ {
		if v, ok := k[pid]; ok {
			res = v
			break
		}
		chain = append(chain, pid)
		if isShim(pid) {
			res = true
			break
		}
		ppid, ok := parentOf(pid)
		if !ok {
			break
		}
		pid = ppid
	}
	for _, c := range chain {
		k[c] = res
	}
	return res
}

// isShim says whether pid runs a containerd shim: by its executable's
// name, or by its comm (a shim exec'd through a link to a multi-call
// binary; comm is the first 15 bytes of the name it was exec'd by, and
// "containerd-shim" is exactly 15).
func isShim(pid int) bool {
	if exe, err := os.Readlink("/proc/" + strconv.Itoa(pid) + "/exe"); err == nil {
		if strings.HasPrefix(filepath.Base(exe), shimPrefix) {
			return true
		}
	}
	comm, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/comm")
	return err == nil && strings.HasPrefix(string(comm), shimPrefix)
}

// parentOf reads pid's parent from /proc/PID/stat.
func parentOf(pid int) (int, bool) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, false
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0, false
	}
	f := strings.Fields(s[i+1:])
	if len(f) < 2 {
		return 0, false
	}
	ppid, err := strconv.Atoi(f[1])
	return ppid, err == nil
}
