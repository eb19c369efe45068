// Command cgroups drives github.com/containerd/cgroups/v3 (what containerd
// and k3s's agent use) against /sys/fs/cgroup: cgroups.Mode() must report
// Unified, and the cgroup2 manager must load the root, create a child
// cgroup with pids, memory and cpu settings, move a process into it, read
// its Stat(), and delete it.
//
// It exits 0 when all of that worked, and 1 after printing the library's
// error otherwise. With -child it only sleeps (the process that is moved).
package main

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/containerd/cgroups/v3"
	"github.com/containerd/cgroups/v3/cgroup2"
)

const (
	mountpoint = "/sys/fs/cgroup"
	group      = "/nodeboot-test"

	pidsMax   = 64
	memoryMax = 64 << 20
	cpuWeight = 200
	cpuQuota  = 50000
	cpuPeriod = 100000
)

var modeNames = map[cgroups.CGMode]string{
	cgroups.Unavailable: "Unavailable", cgroups.Legacy: "Legacy",
	cgroups.Hybrid: "Hybrid", cgroups.Unified: "Unified",
}

func main() {
	child := flag.Bool("child", false, "sleep until killed (the process moved into the cgroup)")
	flag.Parse()
	if *child {
		time.Sleep(time.Hour)
		return
	}
	var errs []error
	mode := cgroups.Mode()
	fmt.Printf("cgroups.Mode() = %s\n", modeNames[mode])
	if mode != cgroups.Unified {
		errs = append(errs, fmt.Errorf("cgroups.Mode() = %s, want Unified", modeNames[mode]))
	}
	// Go on either way, so the manager's own error is printed too.
	if err := manage(); err != nil {
		errs = append(errs, err)
	}
	if len(errs) > 0 {
		for _, err := range errs {
			fmt.Fprintln(os.Stderr, "error:", err)
		}
		os.Exit(1)
	}
	fmt.Println("OK")
}

func manage() (err error) {
	root, err := cgroup2.Load("/")
	if err != nil {
		return fmt.Errorf("cgroup2.Load(/): %w", err)
	}
	ctrls, err := root.RootControllers()
	if err != nil {
		return fmt.Errorf("root RootControllers: %w", err)
	}
	fmt.Printf("root controllers: %v\n", ctrls)
	for _, c := range []string{"cpu", "memory", "pids"} {
		if !slices.Contains(ctrls, c) {
			return fmt.Errorf("root controllers %v lack %s", ctrls, c)
		}
	}
	rs, err := root.Stat()
	if err != nil {
		return fmt.Errorf("root Stat: %w", err)
	}
	fmt.Printf("root stat: cpu usage %d usec, memory usage %d, pids %d\n",
		rs.GetCPU().GetUsageUsec(), rs.GetMemory().GetUsage(), rs.GetPids().GetCurrent())
	if rs.GetMemory().GetUsage() == 0 || rs.GetCPU().GetUsageUsec() == 0 {
		return fmt.Errorf("root stat has no CPU or memory usage: %v", rs)
	}

	weight := uint64(cpuWeight)
	memMax := int64(memoryMax)
	quota, period := int64(cpuQuota), uint64(cpuPeriod)
	res := &cgroup2.Resources{
		Pids:   &cgroup2.Pids{Max: pidsMax},
		Memory: &cgroup2.Memory{Max: &memMax},
		CPU:    &cgroup2.CPU{Weight: &weight, Max: cgroup2.NewCPUMax(&quota, &period)},
	}
	m, err := cgroup2.NewManager(mountpoint, group, res)
	if err != nil {
		return fmt.Errorf("cgroup2.NewManager(%s, %s): %w", mountpoint, group, err)
	}
	fmt.Printf("created %s%s\n", mountpoint, group)
	defer func() {
		if err != nil {
			m.Delete() // best effort; the error already says what went wrong
		}
	}()
	controllers, err := m.Controllers()
	if err != nil {
		return fmt.Errorf("child Controllers: %w", err)
	}
	fmt.Printf("child controllers: %v\n", controllers)
	for _, c := range []string{"cpu", "memory", "pids"} {
		if !slices.Contains(controllers, c) {
			return fmt.Errorf("child controllers %v lack %s", controllers, c)
		}
	}

	exe, err := os.Executable()
	if err != nil {
		return err
	}
	cmd := exec.Command(exe, "-child")
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start child: %w", err)
	}
	pid := cmd.Process.Pid
	defer func() {
		if cmd.ProcessState == nil {
			cmd.Process.Kill()
			cmd.Wait()
		}
	}()
	if err := m.AddProc(uint64(pid)); err != nil {
		return fmt.Errorf("AddProc(%d): %w", pid, err)
	}
	procs, err := m.Procs(false)
	if err != nil {
		return fmt.Errorf("Procs: %w", err)
	}
	fmt.Printf("child procs: %v\n", procs)
	if !slices.Contains(procs, uint64(pid)) {
		return fmt.Errorf("pid %d not in %s/cgroup.procs %v after AddProc", pid, group, procs)
	}
	pc, err := os.ReadFile(fmt.Sprintf("/proc/%d/cgroup", pid))
	if err != nil {
		return err
	}
	fmt.Printf("/proc/%d/cgroup: %s", pid, pc)
	if !strings.Contains(string(pc), "0::"+group+"\n") {
		return fmt.Errorf("/proc/%d/cgroup = %q, want 0::%s", pid, pc, group)
	}

	for file, want := range map[string]string{
		"pids.max":   fmt.Sprint(pidsMax),
		"memory.max": fmt.Sprint(memoryMax),
		"cpu.weight": fmt.Sprint(cpuWeight),
		"cpu.max":    fmt.Sprintf("%d %d", cpuQuota, cpuPeriod),
	} {
		b, err := os.ReadFile(filepath.Join(mountpoint, group, file))
		if err != nil {
			return err
		}
		if got := strings.TrimSpace(string(b)); got != want {
			return fmt.Errorf("%s%s/%s = %q, want %q", mountpoint, group, file, got, want)
		}
	}

	st, err := m.Stat()
	if err != nil {
		return fmt.Errorf("child Stat: %w", err)
	}
	fmt.Printf("child stat: pids %d/%d, memory %d/%d, cpu usage %d usec\n",
		st.GetPids().GetCurrent(), st.GetPids().GetLimit(),
		st.GetMemory().GetUsage(), st.GetMemory().GetUsageLimit(), st.GetCPU().GetUsageUsec())
	if st.GetPids().GetLimit() != pidsMax || st.GetMemory().GetUsageLimit() != memoryMax {
		return fmt.Errorf("child Stat limits: pids %d (want %d), memory %d (want %d)",
			st.GetPids().GetLimit(), pidsMax, st.GetMemory().GetUsageLimit(), memoryMax)
	}
	if st.GetPids().GetCurrent() == 0 || st.GetMemory().GetUsage() == 0 {
		return fmt.Errorf("child Stat shows no process in the cgroup: %v", st)
	}

	// The cgroup must be empty before it can go.
	if err := cmd.Process.Kill(); err != nil {
		return err
	}
	cmd.Wait()
	if err := m.Delete(); err != nil {
		return fmt.Errorf("Delete: %w", err)
	}
	if _, err := os.Stat(filepath.Join(mountpoint, group)); !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("%s%s still there after Delete (stat: %v)", mountpoint, group, err)
	}
	fmt.Printf("deleted %s%s\n", mountpoint, group)
	return nil
}
