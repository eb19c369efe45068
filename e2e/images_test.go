package e2e

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nodeboot/nodeboot/e2e/cluster"
	"github.com/nodeboot/nodeboot/images"
)

// TestImagesRunc runs nodeboot's own images with the real containerd and
// runc (Debian's, natively, in the test's network namespace): the archive
// imports with ctr, the smoke image prints its line and exits 0, and the
// pause image runs until SIGTERM, then exits 0. It needs no k3s and no
// interceptor: it checks the images themselves, which TestK3sPods then
// runs under nodeboot.
func TestImagesRunc(t *testing.T) {
	c := cluster.New(t, cluster.Options{NoControlPlane: true})
	ctrBin, err := exec.LookPath("ctr")
	if err != nil {
		t.Skipf("no ctr (Debian's containerd package ships it): %v", err)
	}
	if _, err := c.StartContainerd(); err != nil {
		t.Fatal(err)
	}
	u := &upBed{t: t, c: c, dataDir: filepath.Join(c.Dir, "nodeboot-data")}
	u.build()
	b, err := images.ForBinary(u.nodeboot, "e2e")
	if err != nil {
		t.Fatal(err)
	}
	archive := filepath.Join(c.Dir, b.ArchiveName())
	start := time.Now()
	if err := b.WriteArchive(archive); err != nil {
		t.Fatal(err)
	}
	fi, _ := os.Stat(archive)
	t.Logf("archive of %s: %d bytes in %s", b.Tag, fi.Size(), time.Since(start).Round(time.Millisecond))
	ctr := func(args ...string) *exec.Cmd {
		return exec.Command(ctrBin, append([]string{"--address", c.ContainerdSocket(), "--namespace", "nodeboot-e2e"}, args...)...)
	}
	start = time.Now()
	out, err := ctr("images", "import", archive).CombinedOutput()
	if err != nil {
		t.Fatalf("ctr images import: %v\n%s", err, out)
	}
	out, _ = ctr("images", "ls", "-q").CombinedOutput()
	for _, ref := range []string{b.Pause, b.Smoke} {
		if !strings.Contains(string(out), ref) {
			t.Errorf("ctr images ls lacks %s:\n%s", ref, out)
		}
	}
	t.Logf("ctr images import: %s", time.Since(start).Round(time.Millisecond))

	// The smoke image: its line, exit 0.
	start = time.Now()
	// Each container's cgroup below the test's own cgroup root, which the
	// harness removes (ctr's default, /NAMESPACE/ID, would stay behind).
	run := ctr("run", "--rm", "--net-host", "--cgroup", c.CgroupRoot+"/smoke", "--env", "NODE_NAME=e2e-node", b.Smoke, "smoke-"+c.Name)
	var stdout, stderr bytes.Buffer
	run.Stdout, run.Stderr = &stdout, &stderr
	if err := run.Run(); err != nil {
		t.Fatalf("ctr run %s: %v\n%s%s", b.Smoke, err, stdout.String(), stderr.String())
	}
	if want := images.SmokeLine + "e2e-node"; strings.TrimSpace(stdout.String()) != want {
		t.Errorf("smoke printed %q, want %q", stdout.String(), want)
	}
	t.Logf("smoke container: %q, exit 0, %s", strings.TrimSpace(stdout.String()), time.Since(start).Round(time.Millisecond))

	// The pause image: runs until SIGTERM, then exits 0.
	id := "pause-" + c.Name
	pause := ctr("run", "--rm", "--net-host", "--cgroup", c.CgroupRoot+"/pause", b.Pause, id)
	var pout bytes.Buffer
	pause.Stdout, pause.Stderr = &pout, &pout
	if err := pause.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- pause.Wait() }()
	t.Cleanup(func() {
		_ = ctr("task", "kill", "-s", "SIGKILL", id).Run()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			_ = pause.Process.Kill()
		}
	})
	deadline := time.Now().Add(30 * time.Second)
	for {
		out, _ := ctr("task", "ls").CombinedOutput()
		if strings.Contains(string(out), id) && strings.Contains(string(out), "RUNNING") {
			break
		}
		select {
		case err := <-done:
			t.Fatalf("pause ended by itself: %v\n%s", err, pout.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("pause not running after 30 s:\n%s", out)
		}
		time.Sleep(100 * time.Millisecond)
	}
	time.Sleep(500 * time.Millisecond)
	select {
	case err := <-done:
		t.Fatalf("pause ended by itself: %v\n%s", err, pout.String())
	default:
	}
	start = time.Now()
	if out, err := ctr("task", "kill", "-s", "SIGTERM", id).CombinedOutput(); err != nil {
		t.Fatalf("ctr task kill: %v\n%s", err, out)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("pause after SIGTERM: %v, want exit 0\n%s", err, pout.String())
		}
	case <-time.After(20 * time.Second):
		t.Fatal("pause did not exit within 20 s of SIGTERM")
	}
	t.Logf("pause container: running, then exit 0 %s after SIGTERM", time.Since(start).Round(time.Millisecond))
}
