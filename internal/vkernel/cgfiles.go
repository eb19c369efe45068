package vkernel

import (
	"fmt"
	"sort"
	"strconv"
	"strings"
)

// Controllers, in the order the kernel prints them (the order of
// include/linux/cgroup_subsys.h).
const (
	ctrlCpuset uint8 = 1 << iota
	ctrlCPU
	ctrlIO
	ctrlMemory
	ctrlPids

	ctrlAll = ctrlCpuset | ctrlCPU | ctrlIO | ctrlMemory | ctrlPids
)

var ctrlNames = []struct {
	bit  uint8
	name string
}{
	{ctrlCpuset, "cpuset"}, {ctrlCPU, "cpu"}, {ctrlIO, "io"}, {ctrlMemory, "memory"}, {ctrlPids, "pids"},
}

// ctrlString formats a controller mask as cgroup.controllers does.
func ctrlString(m uint8) string {
	var b strings.Builder
	for _, c := range ctrlNames {
		if m&c.bit != 0 {
			if b.Len() > 0 {
				b.WriteByte(' ')
			}
			b.WriteString(c.name)
		}
	}
	return b.String()
}

func ctrlBit(name string) uint8 {
	for _, c := range ctrlNames {
		if c.name == name {
			return c.bit
		}
	}
	return 0
}

// fileKind says how an interface file gets its content.
type fileKind uint8

const (
	// live files are figures computed from the processes at every open
	// for reading; they are replaced (rename), so a reader that has the
	// previous copy open reads a consistent one.
	live fileKind = iota
	// state files follow the tree (controllers, populated, frozen, ...);
	// they are rewritten in place when their content changes, so readers
	// that keep them open and re-read them (runc waits for "frozen 1" that
	// way) and inotify watches see the change.
	state
	// value files are settings the guest writes; a write is normalized
	// as the kernel would show it (or undone when the kernel would refuse
	// it) and the file rewritten in place.
	value
)

// cgFile describes one interface file.
type cgFile struct {
	name string
	ctrl uint8 // the controller that must be enabled for it to exist, or 0
	kind fileKind
	mode uint32
	// def is a value file's initial value (without the newline).
	def string
	// norm turns what the guest wrote into the value the kernel would
	// show; ok=false when the kernel would refuse the write.
	norm func(cur, in string) (string, bool)
	// childOnly files do not exist in the root cgroup.
	childOnly bool
}

// cgFiles lists the interface files, from what runc's libcontainer/cgroups
// fs2, containerd/cgroups v3 (cgroup2) and cAdvisor read and write, in
// the kernel's formats (Documentation/admin-guide/cgroup-v2.rst).
var cgFiles = []cgFile{
	{name: "cgroup.controllers", kind: state, mode: 0o444},
	{name: "cgroup.subtree_control", kind: state, mode: 0o644},
	{name: "cgroup.procs", kind: live, mode: 0o644},
	{name: "cgroup.threads", kind: live, mode: 0o644},
	{name: "cgroup.type", kind: value, mode: 0o644, def: "domain", norm: normType},
	{name: "cgroup.events", kind: state, mode: 0o444},
	{name: "cgroup.freeze", kind: value, mode: 0o644, def: "0", norm: normBool, childOnly: true},
	{name: "cgroup.max.depth", kind: value, mode: 0o644, def: "max", norm: normMaxInt},
	{name: "cgroup.max.descendants", kind: value, mode: 0o644, def: "max", norm: normMaxInt},
	{name: "cgroup.stat", kind: state, mode: 0o444},
	{name: "cgroup.pressure", kind: value, mode: 0o644, def: "1", norm: normBool},
	{name: "cpu.stat", kind: live, mode: 0o444},
	{name: "cpu.pressure", kind: live, mode: 0o644},
	{name: "memory.pressure", kind: live, mode: 0o644},
	{name: "io.pressure", kind: live, mode: 0o644},

	{name: "cpuset.cpus", ctrl: ctrlCpuset, kind: value, mode: 0o644, def: "", norm: normList},
	{name: "cpuset.cpus.effective", ctrl: ctrlCpuset, kind: state, mode: 0o444},
	{name: "cpuset.mems", ctrl: ctrlCpuset, kind: value, mode: 0o644, def: "", norm: normList},
	{name: "cpuset.mems.effective", ctrl: ctrlCpuset, kind: state, mode: 0o444},
	{name: "cpuset.cpus.partition", ctrl: ctrlCpuset, kind: value, mode: 0o644, def: "member", norm: normPartition, childOnly: true},

	{name: "cpu.max", ctrl: ctrlCPU, kind: value, mode: 0o644, def: "max 100000", norm: normCPUMax},
	{name: "cpu.max.burst", ctrl: ctrlCPU, kind: value, mode: 0o644, def: "0", norm: normUint},
	{name: "cpu.weight", ctrl: ctrlCPU, kind: value, mode: 0o644, def: "100", norm: normRange(1, 10000)},
	{name: "cpu.weight.nice", ctrl: ctrlCPU, kind: value, mode: 0o644, def: "0", norm: normRange(-20, 19)},
	{name: "cpu.idle", ctrl: ctrlCPU, kind: value, mode: 0o644, def: "0", norm: normBool},

	{name: "io.stat", ctrl: ctrlIO, kind: live, mode: 0o444},
	{name: "io.weight", ctrl: ctrlIO, kind: value, mode: 0o644, def: "default 100", norm: normIOWeight},
	{name: "io.max", ctrl: ctrlIO, kind: value, mode: 0o644, def: "", norm: normIOMax},

	{name: "memory.current", ctrl: ctrlMemory, kind: live, mode: 0o444},
	{name: "memory.peak", ctrl: ctrlMemory, kind: live, mode: 0o644},
	{name: "memory.stat", ctrl: ctrlMemory, kind: live, mode: 0o444},
	{name: "memory.events", ctrl: ctrlMemory, kind: state, mode: 0o444},
	{name: "memory.events.local", ctrl: ctrlMemory, kind: state, mode: 0o444},
	{name: "memory.min", ctrl: ctrlMemory, kind: value, mode: 0o644, def: "0", norm: normBytes},
	{name: "memory.low", ctrl: ctrlMemory, kind: value, mode: 0o644, def: "0", norm: normBytes},
	{name: "memory.high", ctrl: ctrlMemory, kind: value, mode: 0o644, def: "max", norm: normBytes},
	{name: "memory.max", ctrl: ctrlMemory, kind: value, mode: 0o644, def: "max", norm: normBytes},
	{name: "memory.oom.group", ctrl: ctrlMemory, kind: value, mode: 0o644, def: "0", norm: normBool},
	{name: "memory.swap.current", ctrl: ctrlMemory, kind: live, mode: 0o444},
	{name: "memory.swap.high", ctrl: ctrlMemory, kind: value, mode: 0o644, def: "max", norm: normBytes},
	{name: "memory.swap.max", ctrl: ctrlMemory, kind: value, mode: 0o644, def: "max", norm: normBytes},
	{name: "memory.swap.events", ctrl: ctrlMemory, kind: state, mode: 0o444},

	{name: "pids.current", ctrl: ctrlPids, kind: live, mode: 0o444},
	{name: "pids.peak", ctrl: ctrlPids, kind: live, mode: 0o444},
	{name: "pids.max", ctrl: ctrlPids, kind: value, mode: 0o644, def: "max", norm: normMaxInt},
	{name: "pids.events", ctrl: ctrlPids, kind: state, mode: 0o444},
}

var cgFileByName = func() map[string]*cgFile {
	m := make(map[string]*cgFile, len(cgFiles))
	for i := range cgFiles {
		m[cgFiles[i].name] = &cgFiles[i]
	}
	return m
}()

// Normalizers. Each takes the current value and what the guest wrote, and
// returns the value the kernel would show afterwards.

func normBool(_, in string) (string, bool) {
	switch strings.TrimSpace(in) {
	case "0":
		return "0", true
	case "1":
		return "1", true
	}
	return "", false
}

func normType(cur, in string) (string, bool) {
	// Only "threaded" may be written (cgroup_type_write).
	if strings.TrimSpace(in) == "threaded" {
		return "threaded", true
	}
	return "", false
}

func normPartition(_, in string) (string, bool) {
	switch s := strings.TrimSpace(in); s {
	case "member", "root", "isolated":
		return s, true
	}
	return "", false
}

func normUint(_, in string) (string, bool) {
	v, err := strconv.ParseUint(strings.TrimSpace(in), 10, 64)
	if err != nil {
		return "", false
	}
	return strconv.FormatUint(v, 10), true
}

// normMaxInt accepts "max" or a non-negative integer (pids.max,
// cgroup.max.depth).
func normMaxInt(_, in string) (string, bool) {
	s := strings.TrimSpace(in)
	if s == "max" {
		return s, true
	}
	v, err := strconv.ParseInt(s, 10, 64)
	if err != nil || v < 0 {
		return "", false
	}
	return strconv.FormatInt(v, 10), true
}

func normRange(lo, hi int64) func(string, string) (string, bool) {
	return func(_, in string) (string, bool) {
		v, err := strconv.ParseInt(strings.TrimSpace(in), 10, 64)
		if err != nil || v < lo || v > hi {
			return "", false
		}
		return strconv.FormatInt(v, 10), true
	}
}

// pageSize rounds memory limits, as page_counter_memparse does.
var pageSize = uint64(4096)

// normBytes accepts "max" or a size with an optional K, M, G, T, P or E
// suffix (memparse), rounded down to whole pages.
func normBytes(_, in string) (string, bool) {
	s := strings.TrimSpace(in)
	if s == "max" {
		return s, true
	}
	v, ok := memparse(s)
	if !ok {
		return "", false
	}
	return strconv.FormatUint(v/pageSize*pageSize, 10), true
}

// memparse parses a number with an optional binary suffix (lib/cmdline.c).
func memparse(s string) (uint64, bool) {
	if s == "" {
		return 0, false
	}
	shift := 0
	switch s[len(s)-1] {
	case 'k', 'K':
		shift = 10
	case 'm', 'M':
		shift = 20
	case 'g', 'G':
		shift = 30
	case 't', 'T':
		shift = 40
	case 'p', 'P':
		shift = 50
	case 'e', 'E':
		shift = 60
	}
	if shift > 0 {
		s = s[:len(s)-1]
	}
	v, err := strconv.ParseUint(s, 0, 64)
	if err != nil {
		return 0, false
	}
	if shift > 0 && v > (^uint64(0))>>shift {
		return 0, false
	}
	return v << shift, true
}

// normCPUMax accepts "$MAX [$PERIOD]": MAX is "max" or a quota in µs, and a
// missing period keeps the current one (cpu_max_write).
func normCPUMax(cur, in string) (string, bool) {
	f := strings.Fields(in)
	if len(f) == 0 || len(f) > 2 {
		return "", false
	}
	period := "100000"
	if cf := strings.Fields(cur); len(cf) == 2 {
		period = cf[1]
	}
	if len(f) == 2 {
		p, err := strconv.ParseUint(f[1], 10, 64)
		if err != nil || p < 1000 || p > 1000000 {
			return "", false
		}
		period = strconv.FormatUint(p, 10)
	}
	if f[0] == "max" {
		return "max " + period, true
	}
	q, err := strconv.ParseUint(f[0], 10, 64)
	if err != nil || q < 1000 {
		return "", false
	}
	return strconv.FormatUint(q, 10) + " " + period, true
}

// normList parses a CPU or memory-node list ("0-3,5") and prints it as the
// kernel does (ranges merged, ascending).
func normList(_, in string) (string, bool) {
	s := strings.TrimSpace(in)
	if s == "" {
		return "", true
	}
	var ids []int
	for _, part := range strings.Split(s, ",") {
		lo, hi, isRange := strings.Cut(part, "-")
		a, err := strconv.Atoi(lo)
		if err != nil || a < 0 {
			return "", false
		}
		b := a
		if isRange {
			if b, err = strconv.Atoi(hi); err != nil || b < a {
				return "", false
			}
		}
		if b-a > 1<<16 {
			return "", false
		}
		for i := a; i <= b; i++ {
			ids = append(ids, i)
		}
	}
	return formatList(ids), true
}

// formatList prints sorted ids as "0-3,5".
func formatList(ids []int) string {
	sort.Ints(ids)
	var b strings.Builder
	for i := 0; i < len(ids); {
		j := i
		for j+1 < len(ids) && ids[j+1] <= ids[j]+1 {
			j++
		}
		if b.Len() > 0 {
			b.WriteByte(',')
		}
		if ids[j] == ids[i] {
			fmt.Fprintf(&b, "%d", ids[i])
		} else {
			fmt.Fprintf(&b, "%d-%d", ids[i], ids[j])
		}
		i = j + 1
	}
	return b.String()
}

// normIOWeight accepts "N" or "default N" for the default weight, and
// "MAJ:MIN N" or "MAJ:MIN default" per device (io_weight_write). The
// value is "default N" followed by the device lines.
func normIOWeight(cur, in string) (string, bool) {
	def := "100"
	devs := map[string]string{}
	for _, l := range strings.Split(cur, "\n") {
		f := strings.Fields(l)
		if len(f) != 2 {
			continue
		}
		if f[0] == "default" {
			def = f[1]
		} else {
			devs[f[0]] = f[1]
		}
	}
	f := strings.Fields(in)
	switch {
	case len(f) == 1:
		f = []string{"default", f[0]}
	case len(f) != 2:
		return "", false
	}
	if f[0] != "default" && !isDevNum(f[0]) {
		return "", false
	}
	if f[0] != "default" && f[1] == "default" {
		delete(devs, f[0])
	} else {
		v, err := strconv.Atoi(f[1])
		if err != nil || v < 1 || v > 10000 {
			return "", false
		}
		if f[0] == "default" {
			def = f[1]
		} else {
			devs[f[0]] = f[1]
		}
	}
	out := "default " + def
	for _, d := range sortedKeys(devs) {
		out += "\n" + d + " " + devs[d]
	}
	return out, true
}

// normIOMax accepts "MAJ:MIN key=value..." with rbps, wbps, riops and
// wiops; a device whose limits are all "max" is dropped (io_max_write).
func normIOMax(cur, in string) (string, bool) {
	keys := []string{"rbps", "wbps", "riops", "wiops"}
	devs := map[string]map[string]string{}
	for _, l := range strings.Split(cur, "\n") {
		f := strings.Fields(l)
		if len(f) == 0 {
			continue
		}
		m := map[string]string{}
		for _, kv := range f[1:] {
			k, v, _ := strings.Cut(kv, "=")
			m[k] = v
		}
		devs[f[0]] = m
	}
	f := strings.Fields(in)
	if len(f) < 2 || !isDevNum(f[0]) {
		return "", false
	}
	m := devs[f[0]]
	if m == nil {
		m = map[string]string{"rbps": "max", "wbps": "max", "riops": "max", "wiops": "max"}
	}
	for _, kv := range f[1:] {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || !contains(keys, k) {
			return "", false
		}
		if v != "max" {
			if _, err := strconv.ParseUint(v, 10, 64); err != nil {
				return "", false
			}
		}
		m[k] = v
	}
	devs[f[0]] = m
	var lines []string
	for _, d := range sortedKeys(devs) {
		m := devs[d]
		all := true
		line := d
		for _, k := range keys {
			if m[k] != "max" {
				all = false
			}
			line += " " + k + "=" + m[k]
		}
		if !all {
			lines = append(lines, line)
		}
	}
	return strings.Join(lines, "\n"), true
}

func isDevNum(s string) bool {
	a, b, ok := strings.Cut(s, ":")
	if !ok {
		return false
	}
	_, err1 := strconv.ParseUint(a, 10, 32)
	_, err2 := strconv.ParseUint(b, 10, 32)
	return err1 == nil && err2 == nil
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
