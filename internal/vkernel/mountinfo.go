package vkernel

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/nodeboot/nodeboot/interceptor/rules"
)

// mount is one line of /proc/PID/mountinfo (proc(5)):
//
//	36 35 98:0 /mnt1 /mnt/parent rw,noatime master:1 - ext3 /dev/root rw,errors=continue
//	id par maj:min root point   options   optional  - type source super
type mount struct {
	id, parent int
	major      uint32
	minor      uint32
	root       string
	point      string // as printed: octal escapes kept
	opts       string
	optional   []string
	fstype     string
	source     string
	super      string
}

func (m mount) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%d %d %d:%d %s %s %s", m.id, m.parent, m.major, m.minor, m.root, m.point, m.opts)
	for _, o := range m.optional {
		b.WriteByte(' ')
		b.WriteString(o)
	}
	fmt.Fprintf(&b, " - %s %s %s\n", m.fstype, m.source, m.super)
	return b.String()
}

// mountsLine formats m as /proc/PID/mounts does: per-mount options then
// the superblock's (without its rw/ro).
func (m mount) mountsLine() string {
	opts := m.opts
	for _, o := range strings.Split(m.super, ",") {
		if o != "" && o != "rw" && o != "ro" {
			opts += "," + o
		}
	}
	return fmt.Sprintf("%s %s %s %s 0 0\n", m.source, m.point, m.fstype, opts)
}

// parseMountinfo parses mountinfo text; malformed lines are skipped.
func parseMountinfo(text string) []mount {
	var out []mount
	for _, line := range strings.Split(text, "\n") {
		f := strings.Fields(line)
		sep := -1
		for i := 6; i < len(f); i++ {
			if f[i] == "-" {
				sep = i
				break
			}
		}
		if sep < 0 || len(f) < sep+3 {
			continue
		}
		var m mount
		var err error
		if m.id, err = strconv.Atoi(f[0]); err != nil {
			continue
		}
		if m.parent, err = strconv.Atoi(f[1]); err != nil {
			continue
		}
		maj, min, ok := strings.Cut(f[2], ":")
		a, err1 := strconv.ParseUint(maj, 10, 32)
		b, err2 := strconv.ParseUint(min, 10, 32)
		if !ok || err1 != nil || err2 != nil {
			continue
		}
		m.major, m.minor = uint32(a), uint32(b)
		m.root, m.point, m.opts = f[3], f[4], f[5]
		m.optional = append([]string(nil), f[6:sep]...)
		m.fstype, m.source = f[sep+1], f[sep+2]
		if len(f) > sep+3 {
			m.super = f[sep+3]
		}
		out = append(out, m)
	}
	return out
}

// blockDev is a device that mountinfo shows as a block device: diskstats
// and partitions list the same ones.
type blockDev struct {
	major, minor uint32
	name         string // without /dev/
	point        string // where it is mounted (the first mount seen)
}

// mountView says how to turn the real mount table into the guest's.
type mountView struct {
	// cgroupMount is the emulated cgroup2 mount point ("" for none) and
	// cgroupMajor:cgroupMinor its device (stat's st_dev of the tree).
	cgroupMount              string
	cgroupMajor, cgroupMinor uint32
	// types are the statfs rules by type (FROM magic → TO magic), and
	// paths the rules by mount point.
	types map[int64]int64
	paths map[string]int64
	// statDev returns st_dev of a mount point as the guest sees it.
	statDev func(point string) (major, minor uint32, ok bool)
}

// blockFS are filesystems that live on a block device; a mount rewritten
// to one of them gets a /dev source.
var blockFS = map[string]bool{"ext2": true, "ext3": true, "ext4": true, "xfs": true, "btrfs": true}

// devName names the fake block device of a rewritten mount. It looks like a
// virtio disk so that cAdvisor's diskstats filter
// (^(?:(?:s|v|xv)d[a-z]+\d*|dm-\d+)$) accepts it, and says where it comes
// from.
func devName(minor uint32) string { return "vdnodeboot" + strconv.FormatUint(uint64(minor), 10) }

// transform applies the view to the real table: every mount at or below
// the cgroup mount point is replaced by one cgroup2 mount, filesystem types
// are rewritten by the rules (a mount that becomes a block filesystem gets
// a /dev source and the st_dev the guest's stat sees), and /proc/sys is
// shown read-write. It also returns the block devices of the result.
func (v *mountView) transform(in []mount) ([]mount, []blockDev) {
	out := make([]mount, 0, len(in)+1)
	maxID := 0
	for _, m := range in {
		maxID = max(maxID, m.id)
		if v.cgroupMount != "" && hasPathPrefix(unescape(m.point), v.cgroupMount) {
			continue
		}
		out = append(out, m)
	}
	// The topmost mount at each point is the one stat sees.
	top := map[string]int{}
	for i, m := range out {
		top[m.point] = i
	}
	var devs []blockDev
	seen := map[[2]uint32]bool{}
	for i := range out {
		m := &out[i]
		point := unescape(m.point)
		to, ok := v.paths[point]
		if !ok {
			if magic, err := rules.FSMagic(m.fstype); err == nil {
				to, ok = v.types[magic]
			}
		}
		if ok {
			name := rules.FSTypeName(to)
			if name != m.fstype && !strings.HasPrefix(name, "0x") {
				m.fstype = name
				if blockFS[name] {
					if top[m.point] == i && v.statDev != nil {
						if maj, min, ok := v.statDev(point); ok {
							m.major, m.minor = maj, min
						}
					}
					if !strings.HasPrefix(m.source, "/dev/") {
						m.source = "/dev/" + devName(m.minor)
					}
				}
			}
		}
		if hasPathPrefix(point, "/proc/sys") {
			m.opts = setRW(m.opts)
			m.super = setRW(m.super)
		}
		if blockFS[m.fstype] && strings.HasPrefix(m.source, "/dev/") && !seen[[2]uint32{m.major, m.minor}] {
			seen[[2]uint32{m.major, m.minor}] = true
			devs = append(devs, blockDev{major: m.major, minor: m.minor, name: strings.TrimPrefix(m.source, "/dev/"), point: point})
		}
	}
	if v.cgroupMount != "" {
		parent, best := 0, -1
		for _, m := range out {
			p := unescape(m.point)
			if hasPathPrefix(v.cgroupMount, p) || p == "/" {
				if len(p) >= best {
					parent, best = m.id, len(p)
				}
			}
		}
		out = append(out, mount{id: maxID + 1, parent: parent, major: v.cgroupMajor, minor: v.cgroupMinor,
			root: "/", point: escape(v.cgroupMount), opts: "rw,nosuid,nodev,noexec,relatime",
			fstype: "cgroup2", source: "cgroup2", super: "rw"})
	}
	return out, devs
}

// setRW turns a leading or inner "ro" option into "rw".
func setRW(opts string) string {
	f := strings.Split(opts, ",")
	for i, o := range f {
		if o == "ro" {
			f[i] = "rw"
		}
	}
	return strings.Join(f, ",")
}

// unescape undoes the octal escapes of mountinfo paths (\040 for space).
func unescape(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+4 <= len(s) {
			if v, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(v))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// escape escapes a path as mountinfo prints it (space, tab, newline and
// backslash as octal).
func escape(s string) string {
	if !strings.ContainsAny(s, " \t\n\\") {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		switch c := s[i]; c {
		case ' ', '\t', '\n', '\\':
			fmt.Fprintf(&b, `\%03o`, c)
		default:
			b.WriteByte(c)
		}
	}
	return b.String()
}

func formatMountinfo(ms []mount) string {
	var b strings.Builder
	for _, m := range ms {
		b.WriteString(m.String())
	}
	return b.String()
}

func formatMounts(ms []mount) string {
	var b strings.Builder
	for _, m := range ms {
		b.WriteString(m.mountsLine())
	}
	return b.String()
}
