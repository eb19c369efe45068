// Command cadvisor sets up github.com/google/cadvisor's manager the way
// kubelet does (k8s.io/kubernetes v1.36.3, pkg/kubelet/cadvisor/cadvisor_linux.go
// New, with the same handler and filesystem plugins, flag overrides,
// metrics, housekeeping and cgroup roots) and checks what kubelet needs
// from it:
//
//   - manager.New and Start succeed, and GetMachineInfo works (kubelet
//     exits without both);
//   - GetDirFsInfo of the kubelet root directory (-root) works (kubelet's
//     RootFsInfo, for the node's ephemeral-storage capacity);
//   - stats of the root container "/" are there within -wait (kubelet's
//     summary API asks for them with ContainerInfoV2, "failed to get root
//     cgroup stats" otherwise);
//   - they are still fresh after -soak: the newest sample is at most
//     -max-age old.
//
// It exits 0 when all of that held, and 1 after printing the error
// otherwise. cAdvisor's own log (klog) goes to stderr.
package main

import (
	"context"
	"flag"
	"fmt"
	"net/http"
	"os"
	"path"
	"time"

	// Register supported container handlers (as kubelet does).
	_ "github.com/google/cadvisor/container/containerd/install"
	_ "github.com/google/cadvisor/container/crio/install"
	_ "github.com/google/cadvisor/container/systemd/install"

	// Register filesystem plugins needed for container stats (as kubelet does).
	_ "github.com/google/cadvisor/fs/btrfs/install"
	_ "github.com/google/cadvisor/fs/devicemapper/install"
	_ "github.com/google/cadvisor/fs/nfs/install"
	_ "github.com/google/cadvisor/fs/overlay/install"
	_ "github.com/google/cadvisor/fs/tmpfs/install"
	_ "github.com/google/cadvisor/fs/vfs/install"
	_ "github.com/google/cadvisor/fs/zfs/install"

	"github.com/google/cadvisor/cache/memory"
	cadvisormetrics "github.com/google/cadvisor/container"
	cadvisorapiv2 "github.com/google/cadvisor/info/v2"
	"github.com/google/cadvisor/manager"
	"github.com/google/cadvisor/utils/sysfs"
	"github.com/opencontainers/cgroups"
	cgroupfs2 "github.com/opencontainers/cgroups/fs2"
	"k8s.io/klog/v2"
)

// kubelet's constants (pkg/kubelet/cadvisor/cadvisor_linux.go).
const (
	statsCacheDuration          = 2 * time.Minute
	maxHousekeepingInterval     = 15 * time.Second
	defaultHousekeepingInterval = 10 * time.Second
	allowDynamicHousekeeping    = true
)

func init() {
	// Override cAdvisor flag defaults, as kubelet's init does.
	flagOverrides := map[string]string{
		"housekeeping_interval":     defaultHousekeepingInterval.String(),
		"event_storage_event_limit": "default=0",
		"event_storage_age_limit":   "default=0",
	}
	for name, defaultValue := range flagOverrides {
		if f := flag.Lookup(name); f != nil {
			f.DefValue = defaultValue
			f.Value.Set(defaultValue)
		} else {
			klog.ErrorS(nil, "Expected cAdvisor flag not found", "flag", name)
		}
	}
}

func main() {
	klog.InitFlags(nil)
	root := flag.String("root", "", "kubelet root directory (created when missing, as kubelet does)")
	wait := flag.Duration("wait", 30*time.Second, "how long the stats of / may take to appear")
	soak := flag.Duration("soak", 3*time.Minute, "how long to keep the manager running before the freshness check")
	maxAge := flag.Duration("max-age", 30*time.Second, "how old the newest sample of / may be after -soak")
	// kubelet's cgroup roots with cgroupRoot "/", cgroupsPerQOS and the
	// cgroupfs driver: the node allocatable root.
	cgroupRoot := flag.String("cgroup-root", "/kubepods", "raw container cgroup path prefix white list (kubelet's cgroupRoots)")
	flag.Parse()
	if *root == "" {
		fmt.Fprintln(os.Stderr, "usage: cadvisor -root DIR [-wait D] [-soak D] [-max-age D]")
		os.Exit(2)
	}
	if err := run(*root, []string{*cgroupRoot}, *wait, *soak, *maxAge); err != nil {
		klog.Flush()
		fmt.Fprintln(os.Stderr, "error:", err)
		os.Exit(1)
	}
	klog.Flush()
	fmt.Println("OK")
}

// newManager is kubelet's cadvisor.New with usingLegacyStats false and
// localStorageCapacityIsolation true (the defaults), KubeletPSI on (GA in
// 1.36).
func newManager(rootPath string, cgroupRoots []string) (manager.Manager, error) {
	sysFs := sysfs.NewRealSysFs()

	includedMetrics := cadvisormetrics.MetricSet{
		cadvisormetrics.CpuUsageMetrics:     struct{}{},
		cadvisormetrics.MemoryUsageMetrics:  struct{}{},
		cadvisormetrics.DiskIOMetrics:       struct{}{},
		cadvisormetrics.NetworkUsageMetrics: struct{}{},
		cadvisormetrics.AppMetrics:          struct{}{},
		cadvisormetrics.ProcessMetrics:      struct{}{},
		cadvisormetrics.OOMMetrics:          struct{}{},
	}
	if isPsiEnabled(cgroupfs2.UnifiedMountpoint, "cpu.pressure") {
		includedMetrics[cadvisormetrics.PressureMetrics] = struct{}{}
	} else {
		klog.InfoS("PSI support not available")
	}
	includedMetrics[cadvisormetrics.DiskUsageMetrics] = struct{}{}

	duration := maxHousekeepingInterval
	allowDynamic := allowDynamicHousekeeping
	housekeepingConfig := manager.HousekeepingConfig{
		Interval:     &duration,
		AllowDynamic: &allowDynamic,
	}
	m, err := manager.New(memory.New(statsCacheDuration, nil), sysFs, housekeepingConfig, includedMetrics, http.DefaultClient, cgroupRoots, nil /* containerEnvMetadataWhiteList */, "" /* perfEventsFile */, time.Duration(0) /*resctrlInterval*/)
	if err != nil {
		return nil, err
	}
	if _, err := os.Stat(rootPath); err != nil {
		if os.IsNotExist(err) {
			if err := os.MkdirAll(path.Clean(rootPath), 0750); err != nil {
				return nil, fmt.Errorf("error creating root directory %q: %v", rootPath, err)
			}
		} else {
			return nil, fmt.Errorf("failed to Stat %q: %v", rootPath, err)
		}
	}
	return m, nil
}

// isPsiEnabled is kubelet's check (cadvisor.IsPsiEnabled).
func isPsiEnabled(cgroupDir, psiFile string) bool {
	f, err := cgroups.OpenFile(cgroupDir, psiFile, os.O_RDONLY)
	if err != nil {
		klog.V(4).InfoS("PSI not available", "dir", cgroupDir, "file", psiFile, "err", err)
		return false
	}
	_ = f.Close()
	return true
}

func run(rootPath string, cgroupRoots []string, wait, soak, maxAge time.Duration) error {
	m, err := newManager(rootPath, cgroupRoots)
	if err != nil {
		return fmt.Errorf("cadvisor manager.New: %w", err)
	}
	if err := m.Start(); err != nil {
		return fmt.Errorf("cadvisor Start: %w", err)
	}
	defer m.Stop()

	mi, err := m.GetMachineInfo()
	if err != nil {
		return fmt.Errorf("GetMachineInfo: %w", err)
	}
	fmt.Printf("machine: %d cores, %d bytes of memory, boot id %s, %d filesystems, %d disks\n",
		mi.NumCores, mi.MemoryCapacity, mi.BootID, len(mi.Filesystems), len(mi.DiskMap))
	if mi.NumCores == 0 || mi.MemoryCapacity == 0 {
		return fmt.Errorf("GetMachineInfo: %d cores, %d bytes of memory", mi.NumCores, mi.MemoryCapacity)
	}

	// The first samples come from the first housekeeping: until then both
	// calls fail ("unable to find data in memory cache"), and kubelet retries.
	start := time.Now()
	var last time.Time
	for {
		last, err = rootStats(m, false)
		if err == nil {
			err = dirFsInfo(m, rootPath)
		}
		if err == nil {
			break
		}
		if time.Since(start) > wait {
			return fmt.Errorf("not within %s: %w", wait, err)
		}
		time.Sleep(time.Second)
	}
	fmt.Printf("stats for / and GetDirFsInfo after %s (sample at %s)\n", time.Since(start).Round(time.Millisecond), last.Format(time.RFC3339Nano))

	// Keep asking, as kubelet's eviction manager and summary API do.
	ctx, cancel := context.WithTimeout(context.Background(), soak)
	defer cancel()
	tick := time.NewTicker(10 * time.Second)
	defer tick.Stop()
	for done := false; !done; {
		select {
		case <-ctx.Done():
			done = true
		case <-tick.C:
			if t, err := rootStats(m, true); err != nil {
				klog.ErrorS(err, "Stats of / during the soak")
			} else {
				last = t
			}
		}
	}
	t, err := rootStats(m, true)
	if err != nil {
		return fmt.Errorf("stats for / after %s: %w", soak, err)
	}
	if err := dirFsInfo(m, rootPath); err != nil {
		return fmt.Errorf("after %s: %w", soak, err)
	}
	age := time.Since(t)
	fmt.Printf("stats for / after %s: newest sample %s old\n", soak, age.Round(time.Millisecond))
	if age > maxAge {
		return fmt.Errorf("stats for / are stale after %s: newest sample at %s, %s old (max %s)", soak, t.Format(time.RFC3339Nano), age.Round(time.Millisecond), maxAge)
	}
	return nil
}

// rootStats asks for the root container's stats as kubelet's
// getCadvisorContainerInfo does (pkg/kubelet/stats), checks that the
// newest sample has CPU and memory figures, and returns its time. A
// partial failure is logged as kubelet logs it when logPartial is set
// (before the first housekeeping it is expected, natively too).
func rootStats(m manager.Manager, logPartial bool) (time.Time, error) {
	infos, err := m.GetContainerInfoV2("/", cadvisorapiv2.RequestOptions{
		IdType:    cadvisorapiv2.TypeName,
		Count:     2, // 2 samples are needed to compute "instantaneous" CPU
		Recursive: true,
	})
	info, ok := infos["/"]
	if err != nil && !ok {
		return time.Time{}, fmt.Errorf("failed to get root cgroup stats: %w", err)
	}
	if err != nil && logPartial {
		klog.ErrorS(err, "Partial failure issuing cadvisor.ContainerInfoV2")
	}
	if len(info.Stats) == 0 {
		return time.Time{}, fmt.Errorf("no samples for / (err %v)", err)
	}
	s := info.Stats[len(info.Stats)-1]
	if s.Cpu == nil || s.Cpu.Usage.Total == 0 {
		return time.Time{}, fmt.Errorf("newest sample of / has no CPU usage")
	}
	if s.Memory == nil || s.Memory.Usage == 0 {
		return time.Time{}, fmt.Errorf("newest sample of / has no memory usage")
	}
	return s.Timestamp, nil
}

// dirFsInfo is kubelet's RootFsInfo: GetDirFsInfo of its root directory.
func dirFsInfo(m manager.Manager, rootPath string) error {
	fi, err := m.GetDirFsInfo(rootPath)
	if err != nil {
		return fmt.Errorf("GetDirFsInfo(%s): %w", rootPath, err)
	}
	fmt.Printf("GetDirFsInfo(%s): device %s at %s (%s), capacity %d, available %d\n",
		rootPath, fi.Device, fi.Mountpoint, fi.Timestamp.Format(time.RFC3339), fi.Capacity, fi.Available)
	if fi.Capacity == 0 {
		return fmt.Errorf("GetDirFsInfo(%s): capacity 0", rootPath)
	}
	return nil
}
