package profile

import (
	"sort"
	"strings"
	"syscall"

	"github.com/nodeboot/nodeboot/interceptor/rules"
)

// Recorder collects what a traced program missed from the kernel, for
// "nodeboot discover": every path under /proc, /sys and /dev that a path
// syscall failed on with ENOENT, EACCES, EROFS or EPERM, and every
// filesystem type statfs or fstatfs reported. Observe is meant to be
// interceptor.Config.Observe; it runs on the tracer thread, and the other
// methods may be called once the trace has ended.
type Recorder struct {
	misses  map[string]*Miss
	types   map[int64]int
	skipped int // per-process paths (/proc/PID/...), which no profile can hold
}

// Miss is one path a program failed on.
type Miss struct {
	Path    string
	Syscall string // the first syscall that failed on it
	Errno   syscall.Errno
	Count   int
	// Dir says the program wanted a directory (mkdir, or other misses
	// below it).
	Dir bool
}

// NewRecorder returns an empty Recorder.
func NewRecorder() *Recorder {
	return &Recorder{misses: map[string]*Miss{}, types: map[int64]int{}}
}

// watched are the trees whose failures a profile can mend.
var watched = []string{"/proc", "/sys", "/dev"}

// Observe records one syscall outcome.
func (r *Recorder) Observe(o rules.Observation) {
	if o.FSType != 0 {
		r.types[o.FSType]++
	}
	switch o.Errno {
	case syscall.ENOENT, syscall.EACCES, syscall.EROFS, syscall.EPERM:
	default:
		return
	}
	if o.Path == "" || !underAny(o.Path, watched) || o.Path == "/proc" || o.Path == "/sys" || o.Path == "/dev" {
		return
	}
	if perProcess(o.Path) {
		r.skipped++
		return
	}
	m := r.misses[o.Path]
	if m == nil {
		m = &Miss{Path: o.Path, Syscall: o.Syscall, Errno: o.Errno}
		r.misses[o.Path] = m
	}
	m.Count++
	if strings.HasPrefix(o.Syscall, "mkdir") {
		m.Dir = true
	}
}

// perProcess reports whether p names one process's entry: /proc/PID/...
func perProcess(p string) bool {
	rest, ok := strings.CutPrefix(p, "/proc/")
	if !ok || rest == "" {
		return false
	}
	return rest[0] >= '0' && rest[0] <= '9'
}

// Misses returns the recorded misses sorted by path, directories marked.
func (r *Recorder) Misses() []Miss {
	out := make([]Miss, 0, len(r.misses))
	for _, m := range r.misses {
		c := *m
		for q := range r.misses {
			if len(q) > len(c.Path) && strings.HasPrefix(q, c.Path+"/") {
				c.Dir = true
				break
			}
		}
		out = append(out, c)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Path < out[j].Path })
	return out
}

// FSTypes returns the filesystem types seen and how often, by type name.
func (r *Recorder) FSTypes() map[string]int {
	out := map[string]int{}
	for t, n := range r.types {
		out[rules.FSTypeName(t)] += n
	}
	return out
}

// Skipped is the number of failures on per-process /proc paths.
func (r *Recorder) Skipped() int { return r.skipped }

// rootFSTypesToMend are filesystem types kubelet and cAdvisor do not accept
// as a node's root (cAdvisor drops 9p); a profile shows them as ext4.
var rootFSTypesToMend = map[string]bool{"9p": true}

// Profile builds a profile, extending base ("" for none), with an entry for
// every miss, a redirect covering each, and an fstype rule for every type
// seen that kubelet would not accept. Values are placeholders: a missing
// /proc/sys file gets "0\n", which the reason asks the user to check.
func (r *Recorder) Profile(name, base string) *Profile {
	p := &Profile{Name: name, Base: base,
		Description: "written by nodeboot discover; check the values before use"}
	redirects := map[string]bool{}
	for _, m := range r.Misses() {
		f := File{Path: m.Path, Reason: "discovered: " + m.Syscall + " failed with " + errnoName(m.Errno)}
		switch {
		case m.Dir:
			f.Dir = true
		case m.Errno == syscall.ENOENT:
			f.CopyFromHost = true
			if strings.HasPrefix(m.Path, "/proc/sys/") {
				f.Content = "0\n"
				f.Reason += "; placeholder value, check it"
			}
		default:
			// The file exists but refuses the program (read-only): serve
			// a writable copy of it.
			f.CopyFromHost = true
		}
		p.Files = append(p.Files, f)
		redirects[topTwo(m.Path)] = true
	}
	for _, g := range sortedKeys(redirects) {
		p.Redirects = append(p.Redirects, g)
	}
	for _, t := range sortedKeys(r.FSTypes()) {
		if rootFSTypesToMend[t] {
			p.FSTypes = append(p.FSTypes, t+"=ext4")
		}
	}
	return p
}

func errnoName(e syscall.Errno) string {
	switch e {
	case syscall.ENOENT:
		return "ENOENT"
	case syscall.EACCES:
		return "EACCES"
	case syscall.EROFS:
		return "EROFS"
	case syscall.EPERM:
		return "EPERM"
	}
	return e.Error()
}

// ErrnoName is the kernel's name of the errnos discover records.
func ErrnoName(e syscall.Errno) string { return errnoName(e) }
