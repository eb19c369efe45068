// Package load is the "nodeboot load" command: "nodeboot load
// image-archive FILE..." (kind's verb; k3d's "image import") puts image
// archives into the node's containerd without a registry.
package load

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/urfave/cli/v2"
	"github.com/urfave/cli/v2/altsrc"

	"github.com/nodeboot/nodeboot/images"
	"github.com/nodeboot/nodeboot/internal/cli/cmdutil"
	"github.com/nodeboot/nodeboot/internal/instance"
	"github.com/nodeboot/nodeboot/node"
)

type flagpole struct {
	DataDir string
	Timeout time.Duration
}

const description = `Imports image archives into the node's containerd, with no registry: a
docker archive ("docker save", "podman save", "nerdctl save") or an OCI
layout in a tar ("docker buildx build --output type=oci", "skopeo copy
... oci-archive:"), plain or gzip-compressed. Each FILE is checked first
(its index read, every file it names present, its images named): a bad one
fails before anything is staged.

Each archive is copied into DATA-DIR/images, which nodeboot hands to k3s at
every start (k3s imports its <data-dir>/agent/images before the kubelet
runs), so a node started later has the images, and so does every restart.

When the node runs, the archive is also put into k3s's agent/images, which
k3s watches (k3s v1.32 and later): it imports a new archive there within
seconds. load waits, up to --timeout, until k3s's log says it imported the
file (or failed to), and exits 0 only then. Pods use the images by the names
the archive gives them, with imagePullPolicy IfNotPresent or Never.

Exit status: 0 when every archive is staged (and imported, when the node
runs); 1 on failure; 2 on a usage error.

Examples:
   docker save -o app.tar example.com/app:v1 && nodeboot load image-archive app.tar
   nodeboot load image-archive --data-dir /srv/nb one.tar two.tar.gz`

// NewCommand returns the "load" command.
func NewCommand(logger *slog.Logger, streams cmdutil.IOStreams) *cli.Command {
	f := &flagpole{}
	archive := cmdutil.WithConfig(&cli.Command{
		Name:        "image-archive",
		Usage:       "import image archives (docker save / OCI tar) into the node, before or while it runs",
		UsageText:   "nodeboot load image-archive [--data-dir DIR] FILE...",
		Description: description,
		Flags: []cli.Flag{
			cmdutil.DataDirFlag(&f.DataDir),
			altsrc.NewDurationFlag(&cli.DurationFlag{Name: "timeout", EnvVars: []string{"NODEBOOT_TIMEOUT"}, Value: 2 * time.Minute, Destination: &f.Timeout,
				Usage: "while the node runs, how long (`DURATION`) to wait for k3s to import each archive"}),
		},
		Action: func(cCtx *cli.Context) error {
			return f.run(cCtx.Context, cCtx.Args().Slice(), logger, streams)
		},
	}, true)
	return &cli.Command{
		Name:        "load",
		Usage:       "load images into the node without a registry",
		UsageText:   "nodeboot load image-archive [--data-dir DIR] FILE...",
		Subcommands: []*cli.Command{archive},
		Action: func(cCtx *cli.Context) error {
			if cCtx.Args().Present() {
				return cmdutil.UsageErrorf("load: unknown subcommand %q; want image-archive", cCtx.Args().First())
			}
			return cli.ShowSubcommandHelp(cCtx)
		},
	}
}

func (f *flagpole) run(ctx context.Context, files []string, logger *slog.Logger, streams cmdutil.IOStreams) error {
	if len(files) == 0 {
		return cmdutil.UsageErrorf("load image-archive: no FILE; usage: nodeboot load image-archive [--data-dir DIR] FILE...")
	}
	if f.Timeout <= 0 {
		return cmdutil.UsageErrorf("load image-archive: --timeout %s: want a positive duration, e.g. 2m", f.Timeout)
	}
	// Every archive is checked before any is staged.
	var archives []*images.Archive
	names := map[string]string{}
	for _, file := range files {
		a, err := images.Inspect(file)
		if err != nil {
			return fmt.Errorf("load image-archive: %w", err)
		}
		n := a.StagedName()
		if strings.HasPrefix(n, ".") || strings.HasPrefix(n, images.BuiltinArchivePrefix) {
			return fmt.Errorf("load image-archive: %s: names starting with %q or \".\" are nodeboot's own; rename the file", file, images.BuiltinArchivePrefix)
		}
		if other, ok := names[n]; ok {
			return fmt.Errorf("load image-archive: %s and %s would both be %s; rename one", other, file, n)
		}
		names[n] = file
		archives = append(archives, a)
	}
	in, err := instance.Open(f.DataDir)
	if err != nil {
		return fmt.Errorf("load image-archive: %w", err)
	}
	if err := os.MkdirAll(in.ImagesDir(), 0o700); err != nil {
		return fmt.Errorf("load image-archive: %w", err)
	}
	_, running, err := in.Running()
	if err != nil {
		return fmt.Errorf("load image-archive: %w", err)
	}
	var k3sImages string
	if running {
		st, err := node.ReadState(in.Dir)
		if err != nil || st.K3sDataDir == "" {
			return fmt.Errorf("load image-archive: the node runs, but its state says not where k3s keeps its data (%v); restart it with this nodeboot, or stop it and load again", err)
		}
		k3sImages = node.K3sImagesDir(st.K3sDataDir)
		if err := os.MkdirAll(k3sImages, 0o755); err != nil {
			return fmt.Errorf("load image-archive: %w", err)
		}
	}
	for _, a := range archives {
		staged := filepath.Join(in.ImagesDir(), a.StagedName())
		if err := images.Stage(a.Path, staged, false); err != nil {
			return fmt.Errorf("load image-archive: %w", err)
		}
		if !running {
			fmt.Fprintf(streams.ErrOut, "Staged %s (%s) in %s: the node imports it when it starts\n", a.Path, strings.Join(a.Refs, ", "), in.ImagesDir())
			continue
		}
		start := time.Now()
		if err := importRunning(ctx, in.K3sLog(), staged, filepath.Join(k3sImages, a.StagedName()), f.Timeout); err != nil {
			return fmt.Errorf("load image-archive: %s: %w", a.Path, err)
		}
		fmt.Fprintf(streams.ErrOut, "Imported %s (%s) into the running node in %s\n", a.Path, strings.Join(a.Refs, ", "), time.Since(start).Round(100*time.Millisecond))
	}
	return nil
}

// watcherDelay is how long k3s's image watcher waits after an event on a
// file before it looks at it (AddAfter 2 s in pkg/agent/containerd/
// watcher.go), plus a margin: a file removed and put back within it is
// seen once, as a file it already imported, which k3s v1.32 to v1.35 do
// not import again unless its size changed (v1.36 does when it is newer).
const watcherDelay = 3 * time.Second

// importRunning puts staged into k3s's watched images directory as dst
// and waits until k3s's log (logs/k3s.log) says it imported dst, or
// failed to.
func importRunning(ctx context.Context, k3sLog, staged, dst string, timeout time.Duration) error {
	// k3s re-imports a changed file only when its size changed too: an
	// archive of the same size under the same name is taken away first,
	// long enough for the watcher to forget it.
	if _, err := os.Lstat(dst); err == nil {
		if err := os.Remove(dst); err != nil {
			return err
		}
		select {
		case <-time.After(watcherDelay):
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	lf, err := os.Open(k3sLog)
	if err != nil {
		return fmt.Errorf("k3s's log: %w", err)
	}
	defer lf.Close()
	off, err := lf.Seek(0, io.SeekEnd)
	if err != nil {
		return fmt.Errorf("k3s's log: %w", err)
	}
	if err := images.Stage(staged, dst, true); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	// k3s v1.36 logs "Imported 2 images from DST in 1.1s", v1.32 to v1.35
	// "Imported images from DST in 1.1s"; a failure "Failed to process
	// image event: failed to import DST: ..." (pkg/agent/containerd/
	// watcher.go).
	ok, bad := " images from "+dst+" in ", "failed to import "+dst+": "
	var buf []byte
	tick := time.NewTicker(250 * time.Millisecond)
	defer tick.Stop()
	for {
		chunk := make([]byte, 64<<10)
		n, _ := lf.ReadAt(chunk, off)
		off += int64(n)
		buf = append(buf, chunk[:n]...)
		for {
			i := strings.IndexByte(string(buf), '\n')
			if i < 0 {
				break
			}
			line := string(buf[:i])
			buf = buf[i+1:]
			switch {
			case strings.Contains(line, "Imported ") && strings.Contains(line, ok):
				return nil
			case strings.Contains(line, bad):
				return fmt.Errorf("k3s could not import it: %s", oneLine(line))
			}
		}
		if n == len(chunk) {
			continue
		}
		select {
		case <-tick.C:
		case <-ctx.Done():
			if errors.Is(ctx.Err(), context.DeadlineExceeded) {
				return fmt.Errorf("k3s did not say it imported %s within %s (k3s before v1.32 imports only at start; it stays staged and is imported when the node restarts); see %s", dst, timeout, k3sLog)
			}
			return ctx.Err()
		}
	}
}

// oneLine collapses whitespace, for an error.
func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }
