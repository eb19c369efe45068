package cluster

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Proc is a component process. It runs in a process group of its own and is
// stopped by PID.
type Proc struct {
	Name    string
	Cmd     *exec.Cmd
	LogPath string
	Started time.Time

	done    chan struct{}
	waitErr error
	log     *os.File
}

// startProc starts cmd (Stdout and Stderr go to logPath) in its own process
// group, killed with SIGKILL if the test binary dies.
func startProc(name string, cmd *exec.Cmd, logPath string) (*Proc, error) {
	log, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	fmt.Fprintf(log, "+ %s\n", strings.Join(cmd.Args, " "))
	cmd.Stdout, cmd.Stderr = log, log
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	cmd.SysProcAttr.Setpgid = true
	cmd.SysProcAttr.Pdeathsig = syscall.SIGKILL
	p := &Proc{Name: name, Cmd: cmd, LogPath: logPath, done: make(chan struct{}), log: log}
	if err := cmd.Start(); err != nil {
		log.Close()
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	p.Started = time.Now()
	go func() {
		p.waitErr = cmd.Wait()
		log.Close()
		close(p.done)
	}()
	return p, nil
}

// PID is the process id (and process group id).
func (p *Proc) PID() int { return p.Cmd.Process.Pid }

// Exited is closed when the process has exited and been reaped.
func (p *Proc) Exited() <-chan struct{} { return p.done }

// Err is the Wait error; valid after Exited.
func (p *Proc) Err() error { <-p.done; return p.waitErr }

// Running says whether the process has not exited yet.
func (p *Proc) Running() bool {
	select {
	case <-p.done:
		return false
	default:
		return true
	}
}

// Stop sends SIGTERM to the process group, then SIGKILL after grace, and
// waits for the process. It returns an error only when the process could
// not be killed.
func (p *Proc) Stop(grace time.Duration) error {
	pgid := p.PID()
	_ = syscall.Kill(-pgid, syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(grace):
		_ = syscall.Kill(-pgid, syscall.SIGKILL)
		select {
		case <-p.done:
		case <-time.After(10 * time.Second):
			return fmt.Errorf("stop %s (pid %d): still running after SIGKILL", p.Name, pgid)
		}
	}
	// Stragglers in the group (children that ignored SIGTERM).
	_ = syscall.Kill(-pgid, syscall.SIGKILL)
	return nil
}

// Log returns the whole log.
func (p *Proc) Log() string {
	b, _ := os.ReadFile(p.LogPath)
	return string(b)
}

// Tail returns the last n lines of the log.
func (p *Proc) Tail(n int) string {
	b, _ := os.ReadFile(p.LogPath)
	lines := bytes.Split(bytes.TrimRight(b, "\n"), []byte("\n"))
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return string(bytes.Join(lines, []byte("\n")))
}

// Usage is what /proc says about a process.
type Usage struct {
	RSS, HWM int64         // bytes: VmRSS and VmHWM
	CPU      time.Duration // utime+stime
	// ChildCPU is cutime+cstime: the CPU time of the children the
	// process has waited for (a shim's runc, say), which CPU leaves out.
	ChildCPU time.Duration
}

// ProcUsage reads /proc/PID/status and /proc/PID/stat.
func ProcUsage(pid int) (Usage, error) {
	var u Usage
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return u, err
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	for s.Scan() {
		k, v, ok := strings.Cut(s.Text(), ":")
		if !ok {
			continue
		}
		fs := strings.Fields(v)
		if len(fs) < 1 {
			continue
		}
		n, _ := strconv.ParseInt(fs[0], 10, 64)
		switch k {
		case "VmRSS":
			u.RSS = n << 10
		case "VmHWM":
			u.HWM = n << 10
		}
	}
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return u, err
	}
	// The command name is in parentheses and may hold spaces.
	i := bytes.LastIndexByte(stat, ')')
	if i < 0 {
		return u, errors.New("parse /proc/pid/stat")
	}
	fs := strings.Fields(string(stat[i+1:]))
	// After ")": state(0) ... utime(11) stime(12) cutime(13) cstime(14).
	if len(fs) < 15 {
		return u, errors.New("parse /proc/pid/stat: short")
	}
	ut, _ := strconv.ParseInt(fs[11], 10, 64)
	st, _ := strconv.ParseInt(fs[12], 10, 64)
	const clkTck = 100 // USER_HZ on every Linux arch Go supports
	u.CPU = time.Duration(ut+st) * time.Second / clkTck
	cut, _ := strconv.ParseInt(fs[13], 10, 64)
	cst, _ := strconv.ParseInt(fs[14], 10, 64)
	u.ChildCPU = time.Duration(cut+cst) * time.Second / clkTck
	return u, nil
}
