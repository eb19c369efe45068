package vkernel

import (
	"bytes"
	"fmt"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/nodeboot/nodeboot/interceptor"
	"github.com/nodeboot/nodeboot/internal/safefs"
	"github.com/nodeboot/nodeboot/profile"
)

// rootFile computes a live file of the root cgroup from the system-wide
// figures, as the kernel does for the root (it has no charge of its own).
func (k *Kernel) rootFile(name string, fs *cgroupFS) string {
	switch name {
	case "cpu.stat":
		// root_cgroup_cputime (kernel/cgroup/rstat.c): user = user+nice,
		// system = system+irq+softirq, usage adds steal.
		b, _ := safefs.ReadHost(k.procDir+"/stat", 1<<16)
		line, _, _ := bytes.Cut(b, []byte{'\n'})
		f := bytes.Fields(line)
		t := func(i int) uint64 {
			if i >= len(f) {
				return 0
			}
			v, _ := strconv.ParseUint(string(f[i]), 10, 64)
			return v
		}
		// f[0] is "cpu"; then user nice system idle iowait irq softirq steal.
		return cpuStat(t(1)+t(2), t(3)+t(6)+t(7), t(8))
	case "memory.current", "memory.peak":
		mi := k.meminfo()
		// MemTotal-MemFree counts the page cache, as a cgroup's charge
		// does; kubelet's working set is then memory.current minus
		// inactive_file (runc's root fallback, rootStatsFromMeminfo, reads
		// the same).
		cur := (mi["MemTotal"] - min(mi["MemFree"], mi["MemTotal"])) * 1024
		k.memPeak = max(k.memPeak, cur)
		if name == "memory.peak" {
			return strconv.FormatUint(k.memPeak, 10) + "\n"
		}
		return strconv.FormatUint(cur, 10) + "\n"
	case "memory.stat":
		return k.rootMemoryStat()
	case "io.stat":
		if b, err := safefs.ReadHost(k.procDir+"/diskstats", 1<<20); err == nil {
			return ioStatFromDiskstats(b)
		}
		return k.ioStatLine(fs.usage(fs.root).counters)
	case "pids.current", "pids.peak":
		// The fourth field of /proc/loadavg is running/total tasks.
		n := uint64(0)
		if b, err := safefs.ReadHost(k.procDir+"/loadavg", 256); err == nil {
			if f := strings.Fields(string(b)); len(f) >= 4 {
				_, total, _ := strings.Cut(f[3], "/")
				n, _ = strconv.ParseUint(total, 10, 64)
			}
		}
		k.pidsPeak = max(k.pidsPeak, n)
		if name == "pids.peak" {
			n = k.pidsPeak
		}
		return strconv.FormatUint(n, 10) + "\n"
	}
	return ""
}

func (k *Kernel) meminfo() map[string]uint64 {
	b, _ := safefs.ReadHost(k.procDir+"/meminfo", 1<<16)
	return parseKV(b, ':')
}

// rootMemoryStat maps /proc/meminfo (kB) and /proc/vmstat (counts) to the
// keys of memory.stat (bytes and counts).
func (k *Kernel) rootMemoryStat() string {
	mi := k.meminfo()
	vb, _ := safefs.ReadHost(k.procDir+"/vmstat", 1<<16)
	vm := parseFields(vb)
	kb := func(keys ...string) uint64 {
		var n uint64
		for _, key := range keys {
			n += mi[key]
		}
		return n * 1024
	}
	v := map[string]uint64{
		"anon":               kb("AnonPages"),
		"file":               kb("Cached", "Buffers"),
		"kernel":             kb("KernelStack", "PageTables", "Percpu", "Slab"),
		"kernel_stack":       kb("KernelStack"),
		"pagetables":         kb("PageTables"),
		"sec_pagetables":     kb("SecPageTables"),
		"percpu":             kb("Percpu"),
		"vmalloc":            kb("VmallocUsed"),
		"shmem":              kb("Shmem"),
		"zswap":              kb("Zswap"),
		"zswapped":           kb("Zswapped"),
		"file_mapped":        kb("Mapped"),
		"file_dirty":         kb("Dirty"),
		"file_writeback":     kb("Writeback"),
		"swapcached":         kb("SwapCached"),
		"anon_thp":           kb("AnonHugePages"),
		"file_thp":           kb("FileHugePages"),
		"shmem_thp":          kb("ShmemHugePages"),
		"inactive_anon":      kb("Inactive(anon)"),
		"active_anon":        kb("Active(anon)"),
		"inactive_file":      kb("Inactive(file)"),
		"active_file":        kb("Active(file)"),
		"unevictable":        kb("Unevictable"),
		"slab_reclaimable":   kb("SReclaimable"),
		"slab_unreclaimable": kb("SUnreclaim"),
		"slab":               kb("Slab"),
	}
	for _, key := range memoryStatKeys {
		if _, ok := v[key]; !ok {
			v[key] = vm[key]
		}
	}
	if v["pgscan"] == 0 {
		v["pgscan"] = vm["pgscan_kswapd"] + vm["pgscan_direct"] + vm["pgscan_khugepaged"]
	}
	if v["pgsteal"] == 0 {
		v["pgsteal"] = vm["pgsteal_kswapd"] + vm["pgsteal_direct"] + vm["pgsteal_khugepaged"]
	}
	return memoryStat(v)
}

// ioStatFromDiskstats turns /proc/diskstats into io.stat lines for the
// devices that did any I/O.
func ioStatFromDiskstats(b []byte) string {
	var out strings.Builder
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) < 14 {
			continue
		}
		n := func(i int) uint64 {
			if i >= len(f) {
				return 0
			}
			v, _ := strconv.ParseUint(f[i], 10, 64)
			return v
		}
		rios, wios := n(3), n(7)
		if rios == 0 && wios == 0 {
			continue
		}
		fmt.Fprintf(&out, "%s:%s rbytes=%d wbytes=%d rios=%d wios=%d dbytes=%d dios=%d\n",
			f[0], f[1], n(5)*512, n(9)*512, rios, wios, n(16)*512, n(14))
	}
	return out.String()
}

// ioStatLine is io.stat for figures charged to the root device.
func (k *Kernel) ioStatLine(c counters) string {
	if c.rbytes == 0 && c.wbytes == 0 && c.rios == 0 && c.wios == 0 {
		return ""
	}
	return fmt.Sprintf("%d:%d rbytes=%d wbytes=%d rios=%d wios=%d dbytes=0 dios=0\n",
		k.rootMajor, k.rootMinor, c.rbytes, c.wbytes, c.rios, c.wios)
}

// serveDisk serves /proc/diskstats, /proc/partitions and /proc/swaps when
// the caller's real one is missing; otherwise the call is left alone.
func (k *Kernel) serveDisk(req *interceptor.FileRequest, kind string) string {
	rootDir := k.procDir + "/" + strconv.Itoa(req.TGID) + "/root"
	var st unix.Stat_t
	if unix.Stat(rootDir+req.Guest, &st) == nil {
		return ""
	}
	var text string
	switch kind {
	case profile.KindSwaps:
		text = swapsHeader
	case profile.KindDiskstats:
		text = diskstats(k.blockDevs(req.TGID))
	case profile.KindPartitions:
		devs := k.blockDevs(req.TGID)
		text = partitions(devs, func(point string) uint64 {
			var s unix.Statfs_t
			if unix.Statfs(rootDir+point, &s) != nil {
				return 0
			}
			return s.Blocks * uint64(s.Bsize) / 1024
		})
	}
	return k.writeProcFile(req.TGID, strings.TrimPrefix(req.Guest, "/proc/"), text)
}

// blockDevs are the block devices of the caller's mount table; at least
// the root's.
func (k *Kernel) blockDevs(pid int) []blockDev {
	_, devs, _ := k.mounts(pid)
	if len(devs) == 0 {
		devs = []blockDev{{major: k.rootMajor, minor: k.rootMinor, name: devName(k.rootMinor), point: "/"}}
	}
	return devs
}

// swapsHeader is /proc/swaps without swap (swap_show in mm/swapfile.c).
const swapsHeader = "Filename\t\t\t\tType\t\tSize\t\tUsed\t\tPriority\n"

// diskstats formats one idle line per device (diskstats_show in
// block/genhd.c: major, minor, name and 17 counters).
func diskstats(devs []blockDev) string {
	var b strings.Builder
	for _, d := range devs {
		fmt.Fprintf(&b, "%4d %7d %s 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0\n", d.major, d.minor, d.name)
	}
	return b.String()
}

// partitions formats /proc/partitions (show_partition in block/genhd.c);
// kblocks gives a device's size in KiB from its mount point.
func partitions(devs []blockDev, kblocks func(point string) uint64) string {
	var b strings.Builder
	b.WriteString("major minor  #blocks  name\n\n")
	for _, d := range devs {
		fmt.Fprintf(&b, "%4d  %7d %10d %s\n", d.major, d.minor, kblocks(d.point), d.name)
	}
	return b.String()
}

// initKmsg makes the /dev/kmsg FIFO and holds it open read-write: opens
// for reading never block (there is a writer), and reads block for good
// (nothing is ever written), as kubelet's OOM watcher expects of an idle
// kernel log.
func (k *Kernel) initKmsg() error {
	if k.kmsgFD >= 0 {
		return nil
	}
	dfd, err := safefs.WalkAt(k.nbFD, "dev", safefs.WalkOptions{Create: true, Perm: 0o755})
	if err != nil {
		return fmt.Errorf("vkernel: kmsg: %w", err)
	}
	defer unix.Close(dfd)
	if err := unix.Mkfifoat(dfd, "kmsg", 0o600); err != nil {
		return fmt.Errorf("vkernel: mkfifo kmsg: %w", err)
	}
	fd, err := safefs.Openat(dfd, "kmsg", unix.O_RDWR|unix.O_NONBLOCK|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("vkernel: open kmsg: %w", err)
	}
	unix.Fchmod(fd, 0o644)
	k.kmsgFD = fd
	k.kmsgPath = k.root + "/" + stateDir + "/dev/kmsg"
	return nil
}
