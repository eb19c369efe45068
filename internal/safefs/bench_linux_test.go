package safefs

import (
	"crypto/rand"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"
)

// The *At functions run on the tracer's thread while a tracee waits (the
// virtual kernel rewrites cgroup files and per-process views on opens). The
// benchmarks below compare each with a minimal hand-written baseline (what
// vkernel had before this package) in the same run; "ratio" is ours over
// the baseline.

func benchDir(b *testing.B) int {
	b.Helper()
	dir := b.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "f"), []byte("1234 5678 9012\n"), 0o644); err != nil {
		b.Fatal(err)
	}
	fd, err := unix.Open(dir, DirFlags, 0)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { unix.Close(fd) })
	return fd
}

// pair runs ours and base alternately in rounds and reports both and their
// ratio, so that a machine's load hits both alike. Ratios near 1 differ
// by noise on a loaded machine: compare several runs (-count).
func pair(b *testing.B, ours, base func(i int)) {
	const rounds = 10
	var tOurs, tBase int64
	n := b.N/rounds + 1
	b.ResetTimer()
	timed := func(f func(int), r int) int64 {
		start := nanotime()
		for i := 0; i < n; i++ {
			f(r*n + i)
		}
		return nanotime() - start
	}
	for r := 0; r < rounds; r++ {
		// Alternate which goes first, so that neither always meets a
		// warmer cache or a quieter machine.
		if r%2 == 0 {
			tBase += timed(base, r)
			tOurs += timed(ours, r)
		} else {
			tOurs += timed(ours, r)
			tBase += timed(base, r)
		}
	}
	total := float64(n * rounds)
	b.ReportMetric(float64(tOurs)/total, "ns/ours")
	b.ReportMetric(float64(tBase)/total, "ns/baseline")
	b.ReportMetric(float64(tOurs)/float64(tBase), "ratio")
}

func nanotime() int64 {
	var ts unix.Timespec
	unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts)
	return ts.Nano()
}

func BenchmarkReadFileAt(b *testing.B) {
	fd := benchDir(b)
	pair(b, func(int) {
		if _, err := ReadFileAt(fd, "f", "f", 1<<16); err != nil {
			b.Fatal(err)
		}
	}, func(int) {
		if _, err := baseReadFileAt(fd, "f", 1<<16); err != nil {
			b.Fatal(err)
		}
	})
}

func BenchmarkRewriteFileAt(b *testing.B) {
	fd := benchDir(b)
	data := []byte("usage_usec 123456\nuser_usec 1234\nsystem_usec 4567\n")
	pair(b, func(int) {
		if err := RewriteFileAt(fd, "f", data, 0o644); err != nil {
			b.Fatal(err)
		}
	}, func(int) {
		if err := baseRewriteFileAt(fd, "f", data, 0o644); err != nil {
			b.Fatal(err)
		}
	})
}

func BenchmarkWriteFileAt(b *testing.B) {
	fd := benchDir(b)
	data := make([]byte, 2048)
	pair(b, func(int) {
		if err := WriteFileAt(fd, "w", data, 0o444, WriteOptions{}); err != nil {
			b.Fatal(err)
		}
	}, func(int) {
		if err := baseWriteFileAt(fd, "w", data, 0o444); err != nil {
			b.Fatal(err)
		}
	})
}

// BenchmarkWalkAt creates and opens a per-process directory, as the first
// per-process view of a traced process costs (then removes it, alike).
func BenchmarkWalkAt(b *testing.B) {
	fd := benchDir(b)
	pair(b, func(i int) {
		name := fmt.Sprint("o", i)
		d, err := WalkAt(fd, name, WalkOptions{Create: true, Perm: 0o755})
		if err != nil {
			b.Fatal(err)
		}
		unix.Close(d)
		unix.Unlinkat(fd, name, unix.AT_REMOVEDIR)
	}, func(i int) {
		name := fmt.Sprint("b", i)
		d, err := baseWalkDir(fd, name, 0o755)
		if err != nil {
			b.Fatal(err)
		}
		unix.Close(d)
		unix.Unlinkat(fd, name, unix.AT_REMOVEDIR)
	})
}

// The baselines: the shortest correct code for each job.

func baseReadFileAt(dirfd int, name string, max int) ([]byte, error) {
	fd, err := Openat(dirfd, name, unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, err
	}
	defer unix.Close(fd)
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return nil, err
	}
	if st.Mode&unix.S_IFMT != unix.S_IFREG {
		return nil, fmt.Errorf("%s: not a regular file", name)
	}
	var out []byte
	buf := make([]byte, 4096)
	for len(out) < max {
		n, err := unix.Read(fd, buf)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return out, err
		}
		if n == 0 {
			break
		}
		out = append(out, buf[:n]...)
	}
	return out, nil
}

func baseRewriteFileAt(dirfd int, name string, data []byte, perm uint32) error {
	fd, err := Openat(dirfd, name, unix.O_WRONLY|unix.O_NOFOLLOW|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	if err != nil {
		return baseWriteFileAt(dirfd, name, data, perm)
	}
	var st unix.Stat_t
	if unix.Fstat(fd, &st) != nil || st.Mode&unix.S_IFMT != unix.S_IFREG || st.Nlink != 1 {
		unix.Close(fd)
		return baseWriteFileAt(dirfd, name, data, perm)
	}
	defer unix.Close(fd)
	if err := unix.Ftruncate(fd, 0); err != nil {
		return err
	}
	return writeAll(fd, data)
}

func baseWriteFileAt(dirfd int, name string, data []byte, perm uint32) error {
	tmp := DefaultTempPrefix + rand.Text()[:12] + ".tmp"
	fd, err := Openat(dirfd, tmp, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC, perm)
	if err != nil {
		return err
	}
	if err := writeAll(fd, data); err != nil {
		unix.Close(fd)
		unix.Unlinkat(dirfd, tmp, 0)
		return err
	}
	unix.Fchmod(fd, perm)
	unix.Close(fd)
	if err := unix.Renameat(dirfd, tmp, dirfd, name); err != nil {
		unix.Unlinkat(dirfd, tmp, 0)
		return err
	}
	return nil
}

func baseWalkDir(dirfd int, name string, perm uint32) (int, error) {
	fd, err := Openat(dirfd, ".", DirFlags, 0)
	if err != nil {
		return -1, err
	}
	next, err := Openat(fd, name, DirFlags, 0)
	if err == unix.ENOENT {
		if err = unix.Mkdirat(fd, name, perm); err == nil || err == unix.EEXIST {
			next, err = Openat(fd, name, DirFlags, 0)
		}
	}
	unix.Close(fd)
	return next, err
}

// BenchmarkRemoveAllAt removes a per-process directory with one file, as
// the exit of a traced process costs.
func BenchmarkRemoveAllAt(b *testing.B) {
	fd := benchDir(b)
	mk := func(name string) {
		if err := unix.Mkdirat(fd, name, 0o755); err != nil {
			b.Fatal(err)
		}
		f, err := Openat(fd, name+"/mountinfo", unix.O_CREAT|unix.O_WRONLY|unix.O_CLOEXEC, 0o444)
		if err != nil {
			b.Fatal(err)
		}
		unix.Close(f)
	}
	pair(b, func(i int) {
		name := fmt.Sprint("o", i)
		mk(name)
		if err := RemoveAllAt(fd, name); err != nil {
			b.Fatal(err)
		}
	}, func(i int) {
		name := fmt.Sprint("b", i)
		mk(name)
		if err := baseRemoveAllAt(fd, name); err != nil {
			b.Fatal(err)
		}
	})
}

func baseRemoveAllAt(dirfd int, name string) error {
	err := unix.Unlinkat(dirfd, name, 0)
	if err == nil || err == unix.ENOENT {
		return nil
	}
	if err != unix.EISDIR && err != unix.EPERM {
		return err
	}
	fd, err := Openat(dirfd, name, DirFlags, 0)
	if err != nil {
		return err
	}
	names, err := ReadDirNames(fd)
	if err != nil {
		unix.Close(fd)
		return err
	}
	for _, n := range names {
		if err := baseRemoveAllAt(fd, n); err != nil {
			unix.Close(fd)
			return err
		}
	}
	unix.Close(fd)
	return unix.Unlinkat(dirfd, name, unix.AT_REMOVEDIR)
}
