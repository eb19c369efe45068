package cluster

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// Component returns the running (or last started) process of the component
// started as name, or nil.
func (c *Cluster) Component(name string) *Proc {
	for i := len(c.procs) - 1; i >= 0; i-- {
		if c.procs[i].Name == name {
			return c.procs[i]
		}
	}
	return nil
}

// StopAPIServer stops kube-apiserver (SIGTERM, SIGKILL after grace); etcd
// and everything else keep running. RestartAPIServer starts it again.
func (c *Cluster) StopAPIServer(grace time.Duration) error {
	p := c.Component("kube-apiserver")
	if p == nil {
		return fmt.Errorf("stop kube-apiserver: this cluster has none (NoControlPlane?)")
	}
	return p.Stop(grace)
}

// RestartAPIServer starts kube-apiserver again with the argv and
// environment it had, appending to the same log, after StopAPIServer. It
// does not wait for it to be ready. The new process takes the old one's
// place in the cleanup order.
func (c *Cluster) RestartAPIServer() (*Proc, error) {
	for i, p := range c.procs {
		if p.Name != "kube-apiserver" {
			continue
		}
		if p.Running() {
			return nil, fmt.Errorf("restart kube-apiserver: pid %d still running; StopAPIServer first", p.PID())
		}
		cmd := exec.Command(p.Cmd.Path, p.Cmd.Args[1:]...)
		cmd.Env = p.Cmd.Env
		np, err := startProc(p.Name, cmd, p.LogPath)
		if err != nil {
			return nil, fmt.Errorf("restart kube-apiserver: %w", err)
		}
		c.procs[i] = np
		return np, nil
	}
	return nil, fmt.Errorf("restart kube-apiserver: this cluster has none (NoControlPlane?)")
}

// Freeze stops every process of p's group with SIGSTOP: it keeps its
// sockets and state but does nothing, like a hung process. Thaw resumes
// it. Stop works on a frozen process (SIGKILL needs no SIGCONT), but Thaw
// first lets it shut down cleanly.
func (p *Proc) Freeze() error {
	if err := syscall.Kill(-p.PID(), syscall.SIGSTOP); err != nil {
		return fmt.Errorf("freeze %s (pid %d): %w", p.Name, p.PID(), err)
	}
	return nil
}

// Thaw resumes a frozen process group with SIGCONT.
func (p *Proc) Thaw() error {
	if err := syscall.Kill(-p.PID(), syscall.SIGCONT); err != nil {
		return fmt.Errorf("thaw %s (pid %d): %w", p.Name, p.PID(), err)
	}
	return nil
}

// StartControllerManager starts kube-controller-manager natively in the
// namespace with only the controllers named (e.g. "deployment",
// "replicaset"): the bed runs none by default, so nothing turns a
// Deployment into pods. It talks to the apiserver as admin, serves nothing
// (--secure-port=0) and elects no leader.
func (c *Cluster) StartControllerManager(controllers ...string) (*Proc, error) {
	bin := filepath.Join(c.BinDir, "kube-controller-manager")
	if _, err := os.Stat(bin); err != nil {
		return nil, fmt.Errorf("kube-controller-manager: %w (run `make e2e-deps`)", err)
	}
	return c.Start("kube-controller-manager", c.InNetNS(bin,
		"--kubeconfig="+c.Kubeconfig,
		"--controllers="+strings.Join(controllers, ","),
		"--leader-elect=false",
		"--secure-port=0",
		"--use-service-account-credentials=false",
		"--v=1",
	))
}
