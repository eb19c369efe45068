package node

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/nodeboot/nodeboot/images"
	"github.com/nodeboot/nodeboot/internal/podnet"
	"github.com/nodeboot/nodeboot/internal/snapshotter"
)

// K3sImagesDir is where k3s imports image archives from, below its data
// dir: at start, every *.tar (and .tar.gz, .tar.zst, ...) there before the
// kubelet runs, and, since k3s v1.32, every archive that appears or
// changes while it runs (k3s's pkg/agent/containerd/watcher.go).
func K3sImagesDir(k3sDataDir string) string { return filepath.Join(k3sDataDir, "agent", "images") }

// checkImages inspects each archive and returns the names they are staged
// under in k3s's image directory, which must differ.
func checkImages(archives []string) ([]stagedImage, error) {
	var out []stagedImage
	seen := map[string]string{}
	for _, a := range archives {
		arch, err := images.Inspect(a)
		if err != nil {
			return nil, invalid("image archive: %w", err)
		}
		name := arch.StagedName()
		if other, ok := seen[name]; ok {
			return nil, invalid("image archives %s and %s would both be %s in k3s's image directory; rename one", other, a, name)
		}
		seen[name] = a
		out = append(out, stagedImage{src: a, name: name})
	}
	return out, nil
}

// stagedImage is an archive and its name in k3s's image directory.
type stagedImage struct{ src, name string }

// stageImages puts the archives into k3s's image directory before k3s
// starts: nodeboot's own (written into DATA-DIR/images first when this
// binary's is not there yet), then Config.Images. Each is linked when it
// can be (same filesystem), else copied, under a temporary name k3s
// ignores and then renamed, so that k3s never imports half a file.
func (n *Node) stageImages() error {
	staged := n.plan.images
	if b := n.cfg.Builtin; b != nil {
		dir := n.in.ImagesDir()
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return fmt.Errorf("images: %w", err)
		}
		path := filepath.Join(dir, b.ArchiveName())
		if _, err := os.Lstat(path); errors.Is(err, fs.ErrNotExist) {
			start := time.Now()
			if err := b.WriteArchive(path); err != nil {
				return fmt.Errorf("images: %w", err)
			}
			n.log.Info("wrote nodeboot's images", "archive", path, "pause", b.Pause, "smoke", b.Smoke, "took", time.Since(start).Round(time.Millisecond))
		} else if err != nil {
			return fmt.Errorf("images: %w", err)
		}
		removeStale(dir, b.ArchiveName(), n.log.Debug)
		staged = append([]stagedImage{{src: path, name: b.ArchiveName()}}, staged...)
	}
	dst := K3sImagesDir(n.plan.K3sDataDir)
	if err := os.MkdirAll(dst, 0o755); err != nil {
		return fmt.Errorf("images: %w", err)
	}
	keep := ""
	if n.cfg.Builtin != nil {
		keep = n.cfg.Builtin.ArchiveName()
	}
	removeStale(dst, keep, n.log.Debug)
	for _, s := range staged {
		if err := images.Stage(s.src, filepath.Join(dst, s.name), true); err != nil {
			return fmt.Errorf("images: %w", err)
		}
		n.log.Debug("staged image archive", "archive", s.src, "in", dst)
	}
	return nil
}

// removeStale removes nodeboot's own archives of other binaries from dir
// (images.BuiltinArchivePrefix): one left by an earlier binary is removed
// rather than imported again at every start.
func removeStale(dir, keep string, log func(string, ...any)) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return
	}
	for _, e := range ents {
		if n := e.Name(); strings.HasPrefix(n, images.BuiltinArchivePrefix) && n != keep && e.Type().IsRegular() {
			if os.Remove(filepath.Join(dir, n)) == nil {
				log("removed the images of another nodeboot binary", "archive", filepath.Join(dir, n))
			}
		}
	}
}

// probePodNetwork probes veth pairs in a new network namespace and, when
// the sandbox refuses them, says once that pods need the host network:
// k3s would start, and only each pod off the host network would fail, at
// sandbox creation, with a CNI error that does not say why.
func (n *Node) probePodNetwork() {
	d := podnet.Decide()
	n.mu.Lock()
	n.state.PodNetwork = "veth"
	if !d.Veth {
		n.state.PodNetwork = "host-only"
	}
	n.mu.Unlock()
	if d.Veth {
		n.log.Debug("pod network", "decision", d.String())
		return
	}
	n.log.Warn("veth pairs cannot be created: "+podnet.Advice, "probe", d.Err)
}

// chooseSnapshotter probes overlay mounts where containerd keeps its
// snapshots and, when they fail, gives k3s the native snapshotter, saying
// so once. A --snapshotter in K3sArgs is left alone (with a warning when
// it is overlayfs and the probe failed).
func (n *Node) chooseSnapshotter() {
	agent := filepath.Join(n.plan.K3sDataDir, "agent")
	if err := os.MkdirAll(agent, 0o700); err != nil {
		n.log.Warn("snapshotter: cannot probe overlay mounts", "dir", agent, "err", err)
		return
	}
	d := snapshotter.Decide(agent)
	switch {
	case d.Overlay:
		n.log.Debug("snapshotter", "decision", d.String())
	case n.plan.k3s.SetSnapshotter(d.Snapshotter):
		n.log.Warn("overlay mounts fail here; k3s gets --snapshotter native (image layers are copied, not overlaid)", "probe", d.Err)
	default:
		if s := n.plan.k3s.Snapshotter; s == "overlayfs" || s == "" {
			n.log.Warn("overlay mounts fail here, and K3S-ARGS ask for the overlayfs snapshotter; k3s may refuse to start (--snapshotter native works everywhere)", "probe", d.Err)
		}
	}
	n.plan.Argv = append([]string{"k3s"}, n.plan.k3s.Args...)
	n.plan.Snapshotter = n.plan.k3s.Snapshotter
	n.mu.Lock()
	n.state.Snapshotter = n.plan.Snapshotter
	if n.state.Snapshotter == "" {
		n.state.Snapshotter = "overlayfs"
	}
	n.mu.Unlock()
}
