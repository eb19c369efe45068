package vkernel

import (
	"os"
	"strconv"
	"strings"
	"testing"

	"github.com/nodeboot/nodeboot/interceptor"
	"golang.org/x/sys/unix"
)

// TestOOMScoreAdj: without CAP_SYS_RESOURCE (oomDrop), writes to
// /proc/PID/oom_score_adj go to /dev/null and reads to the real file; with
// it, the file is not served at all.
func TestOOMScoreAdj(t *testing.T) {
	for _, drop := range []bool{true, false} {
		k := testKernel(t)
		k.oomDrop = drop
		for _, g := range []string{"/proc/123/oom_score_adj", "/proc/123/task/124/oom_score_adj"} {
			if got := k.Serves(g); got != drop {
				t.Errorf("oomDrop %v: Serves(%s) = %v", drop, g, got)
			}
			if !drop {
				continue
			}
			w := &interceptor.FileRequest{PID: 123, TGID: 123, Op: interceptor.OpOpen, Guest: g, Write: true}
			if got := k.Serve(w); got != "/dev/null" {
				t.Errorf("write of %s served %q, want /dev/null", g, got)
			}
			r := &interceptor.FileRequest{PID: 123, TGID: 123, Op: interceptor.OpOpen, Guest: g}
			if got := k.Serve(r); got != "" {
				t.Errorf("read of %s served %q, want the real file", g, got)
			}
		}
	}
}

// TestHasCap checks hasCap against the CapEff line of /proc/self/status.
func TestHasCap(t *testing.T) {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		t.Skipf("no /proc/self/status: %v", err)
	}
	var eff uint64
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "CapEff:"); ok {
			eff, err = strconv.ParseUint(strings.TrimSpace(v), 16, 64)
			if err != nil {
				t.Fatal(err)
			}
		}
	}
	for _, c := range []int{unix.CAP_SYS_RESOURCE, unix.CAP_SYS_ADMIN, unix.CAP_BPF, unix.CAP_CHOWN} {
		if got, want := hasCap(c), eff&(1<<uint(c)) != 0; got != want {
			t.Errorf("hasCap(%d) = %v, CapEff %x says %v", c, got, eff, want)
		}
	}
}
