// Package inpod holds the hidden commands that nodeboot's own images run
// inside pods (package images builds them): "nodeboot pause", the pod
// sandbox's process, "nodeboot smoke-echo", the smoke Job's, and
// "nodeboot smoke-cat", which prints files from inside a pod (the images
// hold no shell: tests read a container's own memory.max or sysctls with
// it), "nodeboot smoke-serve", which answers one line on a loopback TCP
// port (a target for port-forward), and "nodeboot smoke-burn", which
// spends CPU in bursts (a target for the kubelet's live CPU figures).
// They are not for people, so "nodeboot --help" does not list them.
package inpod

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"runtime"
	"strings"
	"time"

	"github.com/urfave/cli/v2"
	"golang.org/x/sys/unix"

	"github.com/nodeboot/nodeboot/images"
	"github.com/nodeboot/nodeboot/internal/cli/cmdutil"
)

// NewPauseCommand returns the hidden "pause" command.
func NewPauseCommand(logger *slog.Logger, streams cmdutil.IOStreams) *cli.Command {
	return &cli.Command{
		Name:            "pause",
		Usage:           "(in a pod) hold the pod's namespaces: sleep, reap children, exit 0 on SIGTERM or SIGINT",
		Hidden:          true,
		HideHelpCommand: true,
		Action: func(cCtx *cli.Context) error {
			if cCtx.Args().Present() {
				return cmdutil.UsageErrorf("pause: takes no arguments")
			}
			return Pause(cCtx.Context, nil)
		},
	}
}

// Pause is a pod sandbox's process, as Kubernetes' pause is: it holds the
// pod's namespaces by living, and as PID 1 of the pod's PID namespace (a
// pod with shareProcessNamespace) it reaps the orphans that the kernel
// hands it, which would otherwise stay zombies. It returns nil on SIGTERM
// or SIGINT (how the runtime stops a sandbox), or ctx's error. ready, when
// not nil, is closed once the signals are caught (tests).
func Pause(ctx context.Context, ready chan<- struct{}) error {
	sigs := make(chan os.Signal, 16)
	signal.Notify(sigs, unix.SIGTERM, unix.SIGINT, unix.SIGCHLD)
	defer signal.Stop(sigs)
	// Kubernetes' pause leaves every other signal at its default, which
	// the kernel ignores for a PID 1; Go's runtime would end the process
	// on SIGHUP, SIGQUIT or SIGUSR1 instead, and with it the pod.
	signal.Ignore(unix.SIGHUP, unix.SIGQUIT, unix.SIGUSR1, unix.SIGUSR2, unix.SIGPIPE)
	if ready != nil {
		close(ready)
	}
	reap() // children that ended before the handler was in place
	for {
		select {
		case s := <-sigs:
			if s == unix.SIGCHLD {
				reap()
				continue
			}
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// reap waits for every child that has ended, without blocking. One
// SIGCHLD may stand for several children.
func reap() {
	for {
		var ws unix.WaitStatus
		pid, err := unix.Wait4(-1, &ws, unix.WNOHANG, nil)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil || pid <= 0 {
			return // ECHILD: none left; 0: the rest still run
		}
	}
}

// NewSmokeEchoCommand returns the hidden "smoke-echo" command.
func NewSmokeEchoCommand(logger *slog.Logger, streams cmdutil.IOStreams) *cli.Command {
	return &cli.Command{
		Name:            "smoke-echo",
		Usage:           "(in a pod) print the smoke line with $NODE_NAME and exit 0",
		Hidden:          true,
		HideHelpCommand: true,
		Action: func(cCtx *cli.Context) error {
			if cCtx.Args().Present() {
				return cmdutil.UsageErrorf("smoke-echo: takes no arguments")
			}
			_, err := fmt.Fprintln(streams.Out, SmokeEcho(os.Getenv("NODE_NAME")))
			return err
		},
	}
}

// serveLine is the line smoke-serve answers with on node, named as
// SmokeEcho names it.
func serveLine(node string) string {
	return images.ServeLine(strings.TrimPrefix(SmokeEcho(node), images.SmokeLine))
}

// SmokeEcho is the line the smoke container prints on node.
func SmokeEcho(node string) string {
	node = strings.TrimSpace(node)
	if node == "" {
		node = "unknown"
	}
	return images.SmokeLine + node
}

// NewSmokeCatCommand returns the hidden "smoke-cat" command.
func NewSmokeCatCommand(logger *slog.Logger, streams cmdutil.IOStreams) *cli.Command {
	return &cli.Command{
		Name:            "smoke-cat",
		Usage:           "(in a pod) print each FILE as PATH=CONTENT lines, then sleep with --wait until SIGTERM",
		ArgsUsage:       "FILE...",
		Hidden:          true,
		HideHelpCommand: true,
		Flags:           []cli.Flag{&cli.BoolFlag{Name: "wait", Usage: "then hold on as pause does (a Deployment's container)"}},
		Action: func(cCtx *cli.Context) error {
			if !cCtx.Args().Present() && !cCtx.Bool("wait") {
				return cmdutil.UsageErrorf("smoke-cat: name at least one FILE")
			}
			for _, f := range cCtx.Args().Slice() {
				b, err := os.ReadFile(f)
				if err != nil {
					return fmt.Errorf("smoke-cat: %w", err)
				}
				if _, err := fmt.Fprintf(streams.Out, "%s=%s\n", f, strings.TrimSpace(string(b))); err != nil {
					return err
				}
			}
			if cCtx.Bool("wait") {
				return Pause(cCtx.Context, nil)
			}
			return nil
		},
	}
}

// NewSmokeServeCommand returns the hidden "smoke-serve" command.
func NewSmokeServeCommand(logger *slog.Logger, streams cmdutil.IOStreams) *cli.Command {
	var listen string
	return &cli.Command{
		Name:            "smoke-serve",
		Usage:           "(in a pod) answer every TCP connection on --listen with one line, until SIGTERM",
		Hidden:          true,
		HideHelpCommand: true,
		Flags: []cli.Flag{&cli.StringFlag{
			Name: "listen", Value: "127.0.0.1:8080", Destination: &listen,
			Usage: "the loopback `ADDR:PORT` to listen on (port-forward dials the pod's localhost)",
		}},
		Action: func(cCtx *cli.Context) error {
			if cCtx.Args().Present() {
				return cmdutil.UsageErrorf("smoke-serve: takes no arguments")
			}
			l, err := net.Listen("tcp", listen)
			if err != nil {
				return fmt.Errorf("smoke-serve: %w", err)
			}
			// The log says when the port is open: tests wait for it.
			if _, err := fmt.Fprintf(streams.Out, "smoke-serve: listening on %s\n", l.Addr()); err != nil {
				l.Close()
				return err
			}
			return Serve(cCtx.Context, l, serveLine(os.Getenv("NODE_NAME")))
		},
	}
}

// Serve writes line and a newline to every connection l accepts, then
// closes it, until SIGTERM or SIGINT (nil: how a pod is stopped) or ctx
// ends. It closes l.
func Serve(ctx context.Context, l net.Listener, line string) error {
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, unix.SIGTERM, unix.SIGINT)
	defer signal.Stop(sigs)
	done := make(chan error, 1)
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				done <- err
				return
			}
			go func() {
				defer c.Close()
				_ = c.SetWriteDeadline(time.Now().Add(10 * time.Second))
				_, _ = io.WriteString(c, line+"\n")
			}()
		}
	}()
	var err error
	select {
	case <-sigs:
	case <-ctx.Done():
		err = ctx.Err()
	case aerr := <-done:
		err = fmt.Errorf("smoke-serve: %w", aerr)
	}
	l.Close()
	return err
}

// NewSmokeBurnCommand returns the hidden "smoke-burn" command.
func NewSmokeBurnCommand(logger *slog.Logger, streams cmdutil.IOStreams) *cli.Command {
	var busy, period time.Duration
	return &cli.Command{
		Name:            "smoke-burn",
		Usage:           "(in a pod) spin on one CPU for --busy of every --period, until SIGTERM",
		Hidden:          true,
		HideHelpCommand: true,
		Flags: []cli.Flag{
			&cli.DurationFlag{Name: "busy", Value: 100 * time.Millisecond, Destination: &busy, Usage: "CPU time to spend in each period"},
			&cli.DurationFlag{Name: "period", Value: time.Second, Destination: &period, Usage: "the period"},
		},
		Action: func(cCtx *cli.Context) error {
			if cCtx.Args().Present() {
				return cmdutil.UsageErrorf("smoke-burn: takes no arguments")
			}
			if busy <= 0 || period < busy {
				return cmdutil.UsageErrorf("smoke-burn: want 0 < --busy <= --period, have %s and %s", busy, period)
			}
			sigs := make(chan os.Signal, 1)
			signal.Notify(sigs, unix.SIGTERM, unix.SIGINT)
			defer signal.Stop(sigs)
			ctx, cancel := context.WithCancel(cCtx.Context)
			defer cancel()
			go func() {
				select {
				case <-sigs:
					cancel()
				case <-ctx.Done():
				}
			}()
			Burn(ctx, busy, period)
			return nil // stopped as a pod is: exit 0
		},
	}
}

// Burn spins on the CPU for busy (CPU time) of every period until ctx
// ends: a load that is small (busy/period of one CPU) but never zero, so that a
// container's cumulative CPU time grows between any two samples a
// period or more apart.
func Burn(ctx context.Context, busy, period time.Duration) {
	t := time.NewTicker(period)
	defer t.Stop()
	for {
		spin(busy)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// spin spends d of this thread's CPU time. On a busy machine that takes
// longer than d of wall time: the load it makes is the same however
// many others share the CPUs. The thread's CPU clock is a syscall
// (clock_gettime), which seccomp lets through without a tracer stop; it
// is read every 10000 rounds of arithmetic, some microseconds apart.
func spin(d time.Duration) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	var ts unix.Timespec
	now := func() time.Duration {
		if unix.ClockGettime(unix.CLOCK_THREAD_CPUTIME_ID, &ts) != nil {
			return -1
		}
		return time.Duration(ts.Nano())
	}
	start := now()
	x := 1
	for {
		for i := 0; i < 10000; i++ {
			x = x*31 + 7
		}
		if n := now(); n < 0 || n-start >= d {
			break
		}
	}
	burnSink = x
}

// burnSink keeps the compiler from dropping spin's arithmetic.
var burnSink int
