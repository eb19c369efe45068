package vkernel

import (
	"bytes"
	"strconv"

	"github.com/nodeboot/nodeboot/internal/safefs"
)

// userHZ is the unit of the tick counts in /proc/stat and /proc/PID/stat
// (USER_HZ, 100 on every Linux architecture).
const userHZ = 100

// counters are the cumulative figures of a process, as the cgroup files
// show them: they only ever grow.
type counters struct {
	userTicks, sysTicks uint64
	minflt, majflt      uint64
	rbytes, wbytes      uint64
	rios, wios          uint64
}

func (c *counters) add(o counters) {
	c.userTicks += o.userTicks
	c.sysTicks += o.sysTicks
	c.minflt += o.minflt
	c.majflt += o.majflt
	c.rbytes += o.rbytes
	c.wbytes += o.wbytes
	c.rios += o.rios
	c.wios += o.wios
}

// since returns c - base, field by field, never below zero.
func (c counters) since(base counters) counters {
	d := func(a, b uint64) uint64 {
		if a < b {
			return 0
		}
		return a - b
	}
	return counters{
		userTicks: d(c.userTicks, base.userTicks), sysTicks: d(c.sysTicks, base.sysTicks),
		minflt: d(c.minflt, base.minflt), majflt: d(c.majflt, base.majflt),
		rbytes: d(c.rbytes, base.rbytes), wbytes: d(c.wbytes, base.wbytes),
		rios: d(c.rios, base.rios), wios: d(c.wios, base.wios),
	}
}

// sample is what one read of a process's /proc files gives.
type sample struct {
	counters
	rssPages, sharedPages uint64
	threads               uint64
}

// readSample reads /proc/PID/stat, statm and io below procDir.
func readSample(procDir string, pid int) (sample, bool) {
	var s sample
	dir := procDir + "/" + strconv.Itoa(pid)
	b, err := safefs.ReadHost(dir+"/stat", 4096)
	if err != nil {
		return s, false
	}
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return s, false
	}
	f := bytes.Fields(b[i+1:])
	// f[0] is field 3 (state) of proc(5); field n is f[n-3].
	field := func(n int) uint64 {
		if n-3 >= len(f) {
			return 0
		}
		v, _ := strconv.ParseUint(string(f[n-3]), 10, 64)
		return v
	}
	s.minflt, s.majflt = field(10), field(12)
	s.userTicks, s.sysTicks = field(14), field(15)
	s.threads = field(20)
	if b, err := safefs.ReadHost(dir+"/statm", 512); err == nil {
		f := bytes.Fields(b)
		if len(f) >= 3 {
			s.rssPages, _ = strconv.ParseUint(string(f[1]), 10, 64)
			s.sharedPages, _ = strconv.ParseUint(string(f[2]), 10, 64)
		}
	}
	if b, err := safefs.ReadHost(dir+"/io", 1024); err == nil {
		kv := parseKV(b, ':')
		s.rbytes, s.wbytes = kv["read_bytes"], kv["write_bytes"]
		s.rios, s.wios = kv["syscr"], kv["syscw"]
	}
	return s, true
}

// parseKV parses "key<sep> value [unit]" lines into numbers.
func parseKV(b []byte, sep byte) map[string]uint64 {
	m := map[string]uint64{}
	for _, line := range bytes.Split(b, []byte{'\n'}) {
		k, v, ok := bytes.Cut(line, []byte{sep})
		if !ok {
			continue
		}
		f := bytes.Fields(v)
		if len(f) == 0 {
			continue
		}
		n, err := strconv.ParseUint(string(f[0]), 10, 64)
		if err != nil {
			continue
		}
		m[string(bytes.TrimSpace(k))] = n
	}
	return m
}

// parseFields parses "key value" lines (/proc/vmstat) into numbers.
func parseFields(b []byte) map[string]uint64 {
	m := map[string]uint64{}
	for _, line := range bytes.Split(b, []byte{'\n'}) {
		f := bytes.Fields(line)
		if len(f) != 2 {
			continue
		}
		if n, err := strconv.ParseUint(string(f[1]), 10, 64); err == nil {
			m[string(f[0])] = n
		}
	}
	return m
}

// tgidOf returns the thread group of a thread id, from /proc/TID/status.
func tgidOf(procDir string, tid int) (int, bool) {
	b, err := safefs.ReadHost(procDir+"/"+strconv.Itoa(tid)+"/status", 8192)
	if err != nil {
		return 0, false
	}
	kv := parseKV(b, ':')
	v, ok := kv["Tgid"]
	if !ok {
		return 0, false
	}
	return int(v), true
}
