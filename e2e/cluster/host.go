package cluster

import (
	"bufio"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// KubeletSysctls are the host files kubelet's setupKernelTunables rewrites
// when it runs natively (pkg/kubelet/cm/container_manager_linux.go).
var KubeletSysctls = []string{
	"vm/overcommit_memory",
	"vm/panic_on_oom",
	"kernel/panic",
	"kernel/panic_on_oops",
	"kernel/keys/root_maxkeys",
	"kernel/keys/root_maxbytes",
}

// ReadSysctls returns the host values of KubeletSysctls.
func ReadSysctls() (map[string]string, error) {
	m := map[string]string{}
	for _, k := range KubeletSysctls {
		b, err := os.ReadFile("/proc/sys/" + k)
		if err != nil {
			return nil, err
		}
		m[k] = strings.TrimSpace(string(b))
	}
	return m, nil
}

// restoreSysctls writes back the values in want that differ now.
func restoreSysctls(want map[string]string) (changed []string, err error) {
	now, err := ReadSysctls()
	if err != nil {
		return nil, err
	}
	var errs []error
	for _, k := range KubeletSysctls {
		if now[k] == want[k] {
			continue
		}
		changed = append(changed, fmt.Sprintf("%s %s->%s", k, want[k], now[k]))
		if err := os.WriteFile("/proc/sys/"+k, []byte(want[k]+"\n"), 0o644); err != nil {
			errs = append(errs, fmt.Errorf("restore %s: %w", k, err))
		}
	}
	return changed, errors.Join(errs...)
}

// cgroupHierarchies returns the mount points of the host's cgroup and
// cgroup2 filesystems.
func cgroupHierarchies() ([]string, error) {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []string
	s := bufio.NewScanner(f)
	for s.Scan() {
		l := s.Text()
		_, post, ok := strings.Cut(l, " - ")
		if !ok {
			continue
		}
		pf := strings.Fields(post)
		fs := strings.Fields(l)
		if len(pf) > 0 && (pf[0] == "cgroup" || pf[0] == "cgroup2") && len(fs) > 4 {
			out = append(out, fs[4])
		}
	}
	return out, s.Err()
}

// createCgroupRoot makes the private cgroup root in every hierarchy;
// kubelet refuses a --cgroup-root that does not exist. cpuset children
// start with empty cpus and mems, so the parent's are copied.
func createCgroupRoot(root string) error {
	hs, err := cgroupHierarchies()
	if err != nil {
		return err
	}
	for _, h := range hs {
		dir := filepath.Join(h, root)
		if err := os.Mkdir(dir, 0o755); err != nil && !errors.Is(err, fs.ErrExist) {
			return fmt.Errorf("create cgroup %s: %w", dir, err)
		}
		for _, f := range []string{"cpuset.cpus", "cpuset.mems"} {
			if _, err := os.Stat(filepath.Join(h, f)); err != nil || filepath.Base(h) == "unified" {
				continue
			}
			v, err := os.ReadFile(filepath.Join(h, f))
			if err != nil {
				return err
			}
			if err := os.WriteFile(filepath.Join(dir, f), v, 0o644); err != nil {
				return fmt.Errorf("write %s: %w", filepath.Join(dir, f), err)
			}
		}
	}
	return nil
}

// removeCgroupRoot removes the private cgroup root and everything kubelet
// made below it, deepest first, in every hierarchy. Processes still in
// those cgroups are killed first.
func removeCgroupRoot(root string) error {
	hs, err := cgroupHierarchies()
	if err != nil {
		return err
	}
	var errs []error
	for _, h := range hs {
		top := filepath.Join(h, root)
		var dirs []string
		_ = filepath.WalkDir(top, func(p string, d fs.DirEntry, err error) error {
			if err == nil && d.IsDir() {
				dirs = append(dirs, p)
			}
			return nil
		})
		sort.Slice(dirs, func(i, j int) bool { return len(dirs[i]) > len(dirs[j]) })
		for _, d := range dirs {
			var err error
			for try := 0; try < 50; try++ {
				killCgroupProcs(d)
				if err = unix.Rmdir(d); err == nil || errors.Is(err, unix.ENOENT) {
					err = nil
					break
				}
				time.Sleep(100 * time.Millisecond)
			}
			if err != nil {
				errs = append(errs, fmt.Errorf("remove cgroup %s: %w", d, err))
			}
		}
	}
	return errors.Join(errs...)
}

func killCgroupProcs(dir string) {
	b, err := os.ReadFile(filepath.Join(dir, "cgroup.procs"))
	if err != nil {
		return
	}
	for _, f := range strings.Fields(string(b)) {
		var pid int
		if _, err := fmt.Sscan(f, &pid); err == nil && pid > 1 {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
	}
}
