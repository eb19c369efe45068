package vkernel

import (
	"os"
	"path/filepath"
	"strconv"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/nodeboot/nodeboot/interceptor"

	"github.com/nodeboot/nodeboot/internal/safefs"
	"github.com/nodeboot/nodeboot/profile"
)

// The tracer calls these on its own thread while a tracee waits: every open
// of a per-process file (mountinfo) writes the view, and every read of a
// live cgroup file rewrites it in place. internal/safefs has the same
// operations paired with a baseline in one run (ratio); these measure them
// as vkernel calls them.

func benchKernel(b *testing.B) *Kernel {
	b.Helper()
	p := &profile.Profile{Name: "b", Dynamic: []profile.Dynamic{
		{Path: "/sys/fs/cgroup", Kind: profile.KindCgroup2},
		{Path: "/proc/self/mountinfo", Kind: profile.KindMountinfo},
	}, FSTypes: []string{"/sys/fs/cgroup=cgroup2"}}
	k, err := New(filepath.Join(b.TempDir(), "root"), p, Options{})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { k.Close() })
	return k
}

// BenchmarkWriteProcFile is the per-open cost of a per-process view: walk
// (creating the PID directory the first time) and an atomic replace.
func BenchmarkWriteProcFile(b *testing.B) {
	k := benchKernel(b)
	data := string(make([]byte, 2048))
	pid := os.Getpid()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if k.writeProcFile(pid, "mountinfo", data) == "" {
			b.Fatal("writeProcFile failed")
		}
	}
}

// BenchmarkProcFileNewPID adds the directory's creation and removal, as a
// short-lived process costs.
func BenchmarkProcFileNewPID(b *testing.B) {
	k := benchKernel(b)
	data := string(make([]byte, 2048))
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		pid := 1000000 + i
		if k.writeProcFile(pid, "mountinfo", data) == "" {
			b.Fatal("writeProcFile failed")
		}
		k.Exited(pid)
	}
}

// BenchmarkCgroupRefresh rewrites every live file of the root cgroup in
// place, as reading cpu.stat or memory.current does.
func BenchmarkCgroupRefresh(b *testing.B) {
	k := benchKernel(b)
	fs := k.cg
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		for j := range cgFiles {
			f := &cgFiles[j]
			if fs.root.has(f) {
				fs.refresh(fs.root, f, true)
			}
		}
	}
}

// BenchmarkReadWritten reads back a file the guest wrote (reconcile).
func BenchmarkReadWritten(b *testing.B) {
	k := benchKernel(b)
	fd := k.cg.root.fd
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := safefs.ReadFileAt(fd, "cgroup.procs", "cgroup.procs", 1<<16); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkCgroupMkdir is one cgroup's life as runc and kubelet make it
// (a pod's or a container's): mkdir, which writes the new directory's
// interface files, then rmdir. The traced mkdir waits for all of it.
func BenchmarkCgroupMkdir(b *testing.B) {
	k := benchKernel(b)
	me := os.Getpid()
	run := func(op interceptor.FileOp, guest string, do func(string) error) {
		req := &interceptor.FileRequest{PID: me, TGID: me, Op: op, Guest: guest, Create: op == interceptor.OpMkdir}
		host := k.Serve(req)
		err := do(host)
		if req.WantExit {
			ret := int64(0)
			if errno, ok := err.(unix.Errno); ok {
				ret = -int64(errno)
			}
			k.Done(req, ret)
		}
		if err != nil {
			b.Fatalf("%s %s: %v", op, guest, err)
		}
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		g := "/sys/fs/cgroup/pod" + strconv.Itoa(i)
		run(interceptor.OpMkdir, g, func(h string) error { return unix.Mkdir(h, 0o755) })
		run(interceptor.OpRmdir, g, func(h string) error { return unix.Rmdir(h) })
	}
}
