package up

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strconv"
	"syscall"
	"time"

	"k8s.io/klog/v2"

	"github.com/nodeboot/nodeboot/internal/cli/cmdutil"
	"github.com/nodeboot/nodeboot/internal/cli/progress"
	"github.com/nodeboot/nodeboot/internal/instance"
	"github.com/nodeboot/nodeboot/node"
)

// supervise runs the node (node.Start) in this process until a signal or
// giving up, showing its events. child: this is the detached supervisor,
// which inherits the lock (envLockFD) and whose stderr is already
// logs/nodeboot.log.
func (p *plan) supervise(ctx context.Context, logger *slog.Logger, streams cmdutil.IOStreams, child bool) error {
	cfg := p.cfg
	start := time.Now()
	out := streams.ErrOut
	if p.f.Output == "json" && !child {
		out = streams.Out
	}
	mode := progress.ModeFor(p.f.Output, out)
	if child {
		mode = progress.Plain // into logs/nodeboot.log
	}
	printer := progress.New(out, mode, start)
	defer printer.Close()
	if in, err := instance.At(p.node.DataDir); err == nil {
		printer.K3sLog = in.K3sLog()
	}

	// logs/nodeboot.log gets Info and above (Debug with -v), whatever -q
	// says about the terminal.
	fileLevel := min(levelOf(logger), slog.LevelInfo)
	cfg.Logger = slog.New(slog.NewTextHandler(streams.ErrOut, &slog.HandlerOptions{Level: fileLevel}))
	if child {
		f, err := inheritedLock(p.node.DataDir)
		if err != nil {
			return fmt.Errorf("up: %w", err)
		}
		cfg.InheritedLock = f
	} else {
		// The node's log lines go to logs/nodeboot.log; they repeat what
		// the progress lines say, so they reach the terminal (through the
		// printer, so that they cut the live line cleanly) only with -v.
		in, err := instance.Open(p.node.DataDir)
		if err != nil {
			return fmt.Errorf("up: %w", err)
		}
		lf, err := instance.OpenLog(in.NodebootLog())
		if err != nil {
			return fmt.Errorf("up: %w", err)
		}
		defer lf.Close()
		file := slog.NewTextHandler(lf, &slog.HandlerOptions{Level: fileLevel})
		cfg.Logger = slog.New(file)
		if consoleLevel(logger) <= slog.LevelDebug {
			var console io.Writer = printer
			if mode == progress.JSON {
				console = streams.ErrOut
			}
			cfg.Logger = slog.New(slog.NewMultiHandler(file,
				slog.NewTextHandler(console, &slog.HandlerOptions{Level: consoleLevel(logger), ReplaceAttr: dropTime}),
			))
		}
	}
	cfg.OnEvent = printer.Event
	if p.builtinErr != nil {
		// Info, not a warning: a development build (go build with cgo)
		// is dynamically linked, and its nodes work, with k3s's pause
		// image.
		cfg.Logger.Info("nodeboot cannot make its own images from this binary, so pods use k3s's default pause image, from a registry or k3s's airgap images", "err", p.builtinErr)
	}
	// client-go logs through klog, straight to stderr by default: on a
	// terminal its lines would cut through the progress lines. They go
	// where the node's own log lines go.
	klog.SetSlogLogger(cfg.Logger)

	// One signal context: the first SIGINT or SIGTERM stops k3s cleanly;
	// once it has fired, a second signal gets the default action and ends
	// nodeboot at once (the tracer's death kills the traced tree).
	sctx, stopSignals := signal.NotifyContext(ctx, syscall.SIGINT, syscall.SIGTERM)
	defer stopSignals()
	go func() {
		<-sctx.Done()
		stopSignals()
	}()

	n, err := node.Start(sctx, cfg)
	if err != nil {
		return fmt.Errorf("up: %w", err)
	}
	if err := n.Wait(); err != nil {
		return fmt.Errorf("up: %w", err)
	}
	return nil
}

// inheritedLock is the data dir's lock that the detaching parent passed
// down (envLockFD), which node.Start takes over.
func inheritedLock(dataDir string) (*os.File, error) {
	fd, err := strconv.Atoi(os.Getenv(envLockFD))
	if err != nil || fd < 3 {
		return nil, fmt.Errorf("%s=%q: not a descriptor", envLockFD, os.Getenv(envLockFD))
	}
	os.Unsetenv(envLockFD) // not for k3s
	in, err := instance.At(dataDir)
	if err != nil {
		return nil, err
	}
	return os.NewFile(uintptr(fd), in.LockPath()), nil
}

// levelOf is the lowest level logger prints (above Error when none).
func levelOf(logger *slog.Logger) slog.Level {
	for _, l := range []slog.Level{slog.LevelDebug, slog.LevelInfo, slog.LevelWarn, slog.LevelError} {
		if logger.Enabled(context.Background(), l) {
			return l
		}
	}
	return slog.LevelError + 1000
}

// consoleLevel is the terminal's level: the progress lines say what the
// Info lines would, so only warnings and errors are printed unless -v.
func consoleLevel(logger *slog.Logger) slog.Level {
	l := levelOf(logger)
	if l <= slog.LevelDebug {
		return l
	}
	return max(l, slog.LevelWarn)
}

// dropTime drops the time from terminal log lines, as the CLI's logger does.
func dropTime(groups []string, a slog.Attr) slog.Attr {
	if len(groups) == 0 && a.Key == slog.TimeKey {
		return slog.Attr{}
	}
	return a
}
