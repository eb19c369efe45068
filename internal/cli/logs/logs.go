// Package logs is the "nodeboot logs" command: it prints k3s's log
// (DATA-DIR/logs/k3s.log) or the supervisor's (logs/nodeboot.log), the
// last --tail lines of it, and with -f keeps printing what is appended
// (polling, as the files live on any filesystem) until interrupted.
package logs

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/urfave/cli/v2"
	"golang.org/x/sys/unix"

	"github.com/nodeboot/nodeboot/internal/cli/cmdutil"
	"github.com/nodeboot/nodeboot/internal/instance"
)

type flagpole struct {
	DataDir  string
	Nodeboot bool
	Follow   bool
	Tail     int
}

// pollPeriod is how often -f looks for new lines.
const pollPeriod = 250 * time.Millisecond

// NewCommand returns the "logs" command.
func NewCommand(logger *slog.Logger, streams cmdutil.IOStreams) *cli.Command {
	f := &flagpole{}
	return cmdutil.WithConfig(&cli.Command{
		Name:      "logs",
		Usage:     "print k3s's log (or nodeboot's)",
		UsageText: "nodeboot logs [--data-dir DIR] [--nodeboot] [-f] [--tail N]",
		Description: `Prints DATA-DIR/logs/k3s.log, k3s's stdout and stderr, or with --nodeboot
DATA-DIR/logs/nodeboot.log, the supervisor's log (starts, restarts and their
reasons, health transitions). --tail N prints the last N lines only; -f
keeps printing new lines until Ctrl-C.`,
		Flags: []cli.Flag{
			cmdutil.DataDirFlag(&f.DataDir),
			&cli.BoolFlag{Name: "nodeboot", Destination: &f.Nodeboot, Usage: "print nodeboot's log instead of k3s's"},
			&cli.BoolFlag{Name: "follow", Aliases: []string{"f"}, Destination: &f.Follow, Usage: "keep printing new lines until interrupted"},
			&cli.IntFlag{Name: "tail", Value: -1, Destination: &f.Tail, Usage: "print only the last `N` lines (-1: all)"},
		},
		Action: func(cCtx *cli.Context) error {
			if cCtx.Args().Present() {
				return cmdutil.UsageErrorf("logs: unexpected argument %q", cCtx.Args().First())
			}
			if f.Tail < -1 {
				return cmdutil.UsageErrorf("logs: --tail %d: want a number of lines, 0 or more (-1, the default, prints them all)", f.Tail)
			}
			return f.run(cCtx.Context, streams)
		},
	}, false)
}

func (f *flagpole) run(ctx context.Context, streams cmdutil.IOStreams) error {
	in, err := instance.At(f.DataDir)
	if err != nil {
		return cmdutil.UsageErrorf("logs: %v", err)
	}
	path := in.K3sLog()
	if f.Nodeboot {
		path = in.NodebootLog()
	}
	file, err := os.OpenFile(path, os.O_RDONLY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("logs: %s does not exist: has `nodeboot up --data-dir %s` run?", path, in.Dir)
	}
	if err != nil {
		return fmt.Errorf("logs: %w", err)
	}
	defer file.Close()
	if f.Tail >= 0 {
		if err := seekTail(file, f.Tail); err != nil {
			return fmt.Errorf("logs: %s: %w", path, err)
		}
	}
	if _, err := io.Copy(streams.Out, file); err != nil {
		return fmt.Errorf("logs: %s: %w", path, err)
	}
	if !f.Follow {
		return nil
	}
	ctx, stop := signal.NotifyContext(ctx, syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	return follow(ctx, file, path, streams.Out)
}

// follow copies what is appended to file until ctx ends. A file that
// shrinks (truncated) is read again from its start.
func follow(ctx context.Context, file *os.File, path string, w io.Writer) error {
	t := time.NewTicker(pollPeriod)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		pos, err := file.Seek(0, io.SeekCurrent)
		if err != nil {
			return fmt.Errorf("logs: %s: %w", path, err)
		}
		if fi, err := file.Stat(); err == nil && fi.Size() < pos {
			file.Seek(0, io.SeekStart)
		}
		if _, err := io.Copy(w, file); err != nil {
			return fmt.Errorf("logs: %s: %w", path, err)
		}
	}
}

// seekTail positions file at the start of its last n lines.
func seekTail(file *os.File, n int) error {
	fi, err := file.Stat()
	if err != nil {
		return err
	}
	size := fi.Size()
	const chunk = 32 << 10
	buf := make([]byte, chunk)
	end := size
	// A final newline ends the last line; it does not start another.
	lines := -1
	if size > 0 {
		last := make([]byte, 1)
		if _, err := file.ReadAt(last, size-1); err != nil {
			return err
		}
		if last[0] != '\n' {
			lines = 0
		}
	}
	for end > 0 {
		start := max(end-chunk, 0)
		b := buf[:end-start]
		if _, err := file.ReadAt(b, start); err != nil && !errors.Is(err, io.EOF) {
			return err
		}
		for i := len(b) - 1; i >= 0; i-- {
			if b[i] != '\n' {
				continue
			}
			lines++
			if lines == n {
				_, err := file.Seek(start+int64(i)+1, io.SeekStart)
				return err
			}
		}
		end = start
	}
	_, err = file.Seek(0, io.SeekStart)
	return err
}
