// Package inpod holds the hidden commands that nodeboot's own images run
// inside pods (package images builds them): "nodeboot pause", the pod
// sandbox's process, "nodeboot smoke-echo", the smoke Job's, and
// "nodeboot smoke-cat", which prints files from inside a pod (the images
// hold no shell: tests read a container's own memory.max or sysctls with
// it). They are not for people, so "nodeboot --help" does not list them.
package inpod

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"strings"

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
