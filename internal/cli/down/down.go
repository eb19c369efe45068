// Package down is the "nodeboot down" command: it stops the supervisor of a
// data directory (and so k3s), and with --purge removes the fake tree and
// the state files.
//
// The supervisor is found through the lock, not the PID file alone: only a
// process holding DATA-DIR/nodeboot.lock is a running supervisor, and its
// PID (from nodeboot.pid) must name a nodeboot executable before it gets a
// signal, so a stale PID file never makes down signal a stranger. SIGTERM
// asks the supervisor to stop k3s cleanly (it sends SIGTERM to the whole
// traced tree, SIGKILL after its --stop-timeout); if the lock is still held
// after --timeout, the supervisor gets SIGKILL, and the kernel kills the
// traced tree with it (PTRACE_O_EXITKILL).
package down

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/urfave/cli/v2"
	"golang.org/x/sys/unix"

	"github.com/nodeboot/nodeboot/internal/cli/cmdutil"
	"github.com/nodeboot/nodeboot/internal/instance"
)

type flagpole struct {
	DataDir  string
	Timeout  time.Duration
	Purge    bool
	PurgeK3s bool
}

const description = `Stops the supervisor that "nodeboot up" started for DATA-DIR: SIGTERM, so
that it stops k3s and everything k3s started (SIGTERM to the whole tree,
SIGKILL after up's --stop-timeout), then SIGKILL if it is still running after
--timeout. Nothing running is not an error.

--purge then removes what nodeboot made: the fake tree (DATA-DIR/root),
state.json, events.jsonl, the logs and the kubeconfig. k3s's data
(DATA-DIR/k3s: its datastore, certificates and images) is kept unless you
also pass --purge-k3s, and so is DATA-DIR/bin. Only a directory that
carries nodeboot's marker (DATA-DIR/nodeboot.marker, written by "up") is
purged, and only the entries nodeboot makes: files of yours stay. No
symlink is followed, and a filesystem mounted below stops the removal.

Exit status: 0 when nothing is left running, 1 on failure.`

// NewCommand returns the "down" command.
func NewCommand(logger *slog.Logger, streams cmdutil.IOStreams) *cli.Command {
	f := &flagpole{}
	return cmdutil.WithConfig(&cli.Command{
		Name:        "down",
		Usage:       "stop the node's supervisor and k3s",
		UsageText:   "nodeboot down [--data-dir DIR] [--timeout DURATION] [--purge [--purge-k3s]]",
		Description: description,
		Flags: []cli.Flag{
			cmdutil.DataDirFlag(&f.DataDir),
			&cli.DurationFlag{
				Name: "timeout", Value: 60 * time.Second, EnvVars: []string{"NODEBOOT_DOWN_TIMEOUT"}, Destination: &f.Timeout,
				Usage: "after SIGTERM, wait this long (`DURATION`) for the supervisor to stop k3s, then SIGKILL it",
			},
			&cli.BoolFlag{Name: "purge", EnvVars: []string{"NODEBOOT_PURGE"}, Destination: &f.Purge,
				Usage: "also remove what nodeboot made: the fake tree, state, events, logs and kubeconfig (never k3s's data without --purge-k3s, never files of yours)"},
			&cli.BoolFlag{Name: "purge-k3s", EnvVars: []string{"NODEBOOT_PURGE_K3S"}, Destination: &f.PurgeK3s,
				Usage: "with --purge, also remove k3s's data (DATA-DIR/k3s)"},
		},
		Action: func(cCtx *cli.Context) error {
			if cCtx.Args().Present() {
				return cmdutil.UsageErrorf("down: unexpected argument %q", cCtx.Args().First())
			}
			if f.PurgeK3s && !f.Purge {
				return cmdutil.UsageErrorf("down: --purge-k3s goes with --purge")
			}
			return f.run(cCtx.Context, logger, streams)
		},
	}, false)
}

func (f *flagpole) run(ctx context.Context, logger *slog.Logger, streams cmdutil.IOStreams) error {
	in, err := instance.At(f.DataDir)
	if err != nil {
		return cmdutil.UsageErrorf("down: %v", err)
	}
	if _, err := os.Lstat(in.Dir); errors.Is(err, fs.ErrNotExist) {
		fmt.Fprintf(streams.Out, "nodeboot is not running for %s (no such directory)\n", in.Dir)
		return nil
	}
	stopped, err := Stop(ctx, in, f.Timeout, logger)
	if err != nil {
		return fmt.Errorf("down: %w", err)
	}
	if stopped > 0 {
		fmt.Fprintf(streams.Out, "stopped nodeboot (pid %d) for %s\n", stopped, in.Dir)
	} else {
		fmt.Fprintf(streams.Out, "nodeboot is not running for %s\n", in.Dir)
	}
	if f.Purge {
		removed, err := in.Purge(f.PurgeK3s)
		for _, r := range removed {
			fmt.Fprintf(streams.Out, "removed %s\n", r)
		}
		if err != nil {
			return fmt.Errorf("down --purge: %w", err)
		}
		if !f.PurgeK3s {
			if _, err := os.Lstat(in.K3sDataDir()); err == nil {
				logger.Info("kept k3s's data; add --purge-k3s to remove it", "dir", in.K3sDataDir())
			}
		}
	}
	return nil
}

// Stop stops the supervisor of in, if one runs, and returns its PID (0 when
// none ran). It waits until the lock is free, which the kernel guarantees
// only once the supervisor has exited.
func Stop(ctx context.Context, in *instance.Instance, timeout time.Duration, logger *slog.Logger) (int, error) {
	pid, running, err := in.Running()
	if err != nil || !running {
		return 0, err
	}
	if pid == 0 {
		return 0, fmt.Errorf("a nodeboot holds %s but %s names no PID; find it with `fuser %s`", in.LockPath(), in.PIDPath(), in.LockPath())
	}
	if err := checkNodeboot(pid); err != nil {
		return 0, err
	}
	logger.Info("stopping the supervisor", "pid", pid, "data-dir", in.Dir)
	if err := unix.Kill(pid, unix.SIGTERM); err != nil && !errors.Is(err, unix.ESRCH) {
		return 0, fmt.Errorf("signal pid %d: %w", pid, err)
	}
	if waitUnlocked(ctx, in, timeout) {
		return pid, nil
	}
	logger.Warn("the supervisor did not stop in time; killing it", "pid", pid, "timeout", timeout)
	if err := unix.Kill(pid, unix.SIGKILL); err != nil && !errors.Is(err, unix.ESRCH) {
		return 0, fmt.Errorf("kill pid %d: %w", pid, err)
	}
	if !waitUnlocked(ctx, in, 10*time.Second) {
		return 0, fmt.Errorf("pid %d still holds %s after SIGKILL", pid, in.LockPath())
	}
	return pid, nil
}

// waitUnlocked polls until no supervisor holds the lock, for up to d.
func waitUnlocked(ctx context.Context, in *instance.Instance, d time.Duration) bool {
	deadline := time.Now().Add(d)
	for {
		if _, running, err := in.Running(); err == nil && !running {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		select {
		case <-ctx.Done():
			return false
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// checkNodeboot makes sure pid runs nodeboot before it gets a signal: its
// executable is this one, or is named nodeboot, or its command line is a
// nodeboot "up".
func checkNodeboot(pid int) error {
	exe, err := os.Readlink("/proc/" + strconv.Itoa(pid) + "/exe")
	if err != nil {
		return fmt.Errorf("pid %d (from the PID file): %w", pid, err)
	}
	exe = strings.TrimSuffix(exe, " (deleted)")
	if self, err := os.Executable(); err == nil && (self == exe || resolved(self) == exe) {
		return nil
	}
	if strings.Contains(filepath.Base(exe), "nodeboot") {
		return nil
	}
	cmdline, _ := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/cmdline")
	args := strings.Split(strings.TrimRight(string(cmdline), "\x00"), "\x00")
	if len(args) > 0 && strings.Contains(filepath.Base(args[0]), "nodeboot") {
		return nil
	}
	return fmt.Errorf("pid %d holds the lock but runs %s, not nodeboot; not signalling it", pid, exe)
}

func resolved(p string) string {
	r, err := filepath.EvalSymlinks(p)
	if err != nil {
		return p
	}
	return r
}
