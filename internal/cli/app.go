package cli

import (
	"errors"
	"fmt"
	"io"
	"log/slog"

	"github.com/urfave/cli/v2"

	"github.com/nodeboot/nodeboot/internal/cli/cmdutil"
	"github.com/nodeboot/nodeboot/internal/cli/discover"
	"github.com/nodeboot/nodeboot/internal/cli/down"
	"github.com/nodeboot/nodeboot/internal/cli/exec"
	"github.com/nodeboot/nodeboot/internal/cli/inpod"
	"github.com/nodeboot/nodeboot/internal/cli/install"
	"github.com/nodeboot/nodeboot/internal/cli/kubeconfig"
	"github.com/nodeboot/nodeboot/internal/cli/kubectl"
	"github.com/nodeboot/nodeboot/internal/cli/load"
	"github.com/nodeboot/nodeboot/internal/cli/logs"
	"github.com/nodeboot/nodeboot/internal/cli/profile"
	"github.com/nodeboot/nodeboot/internal/cli/seed"
	"github.com/nodeboot/nodeboot/internal/cli/status"
	"github.com/nodeboot/nodeboot/internal/cli/token"
	"github.com/nodeboot/nodeboot/internal/cli/up"
	"github.com/nodeboot/nodeboot/internal/cli/version"
)

// commands is the list of nodeboot's commands, in help order. To add one,
// append its NewCommand(logger, streams) here.
func commands(logger *slog.Logger, streams cmdutil.IOStreams) []*cli.Command {
	return []*cli.Command{
		exec.NewCommand(logger, streams),
		seed.NewCommand(logger, streams),
		profile.NewCommand(logger, streams),
		discover.NewCommand(logger, streams),
		up.NewCommand(logger, streams),
		down.NewCommand(logger, streams),
		status.NewCommand(logger, streams),
		logs.NewCommand(logger, streams),
		kubeconfig.NewCommand(logger, streams),
		token.NewCommand(logger, streams),
		kubectl.NewCommand(logger, streams),
		load.NewCommand(logger, streams),
		install.NewCommand(logger, streams),
		version.NewCommand(logger, streams),
		// Hidden: what nodeboot's own images run in pods (package images).
		inpod.NewPauseCommand(logger, streams),
		inpod.NewSmokeEchoCommand(logger, streams),
		inpod.NewSmokeCatCommand(logger, streams),
		inpod.NewSmokeServeCommand(logger, streams),
		inpod.NewSmokeBurnCommand(logger, streams),
	}
}

// quietLevel is above every level slog uses, so nothing is logged.
const quietLevel = slog.LevelError + 1000

// flagpole holds the global flags.
type flagpole struct {
	LogLevel string
	Verbose  bool
	Quiet    bool
	Version  bool
}

// Run runs nodeboot with args (args[0] is the program name) and returns the
// exit code. Errors are printed once, on stderr, as "nodeboot: <message>".
func Run(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	app := NewApp(cmdutil.IOStreams{In: stdin, Out: stdout, ErrOut: stderr})
	return report(stderr, app.Run(args))
}

// NewApp returns the nodeboot App. It does not print errors: pass the error
// of its Run to report, as Run does.
func NewApp(streams cmdutil.IOStreams) *cli.App {
	level := new(slog.LevelVar)
	logger := slog.New(slog.NewTextHandler(streams.ErrOut, &slog.HandlerOptions{
		Level: level,
		ReplaceAttr: func(groups []string, a slog.Attr) slog.Attr {
			if len(groups) == 0 && a.Key == slog.TimeKey {
				return slog.Attr{} // one run, one terminal: the time is noise
			}
			return a
		},
	}))

	var flags flagpole
	app := &cli.App{
		Name:      "nodeboot",
		Usage:     "run k3s, or any program, where the kernel files it needs are missing",
		UsageText: "nodeboot [global flags] COMMAND [flags] [ARGS...]",
		Description: "nodeboot runs a command under a ptrace+seccomp interceptor that redirects\n" +
			"path syscalls into a fake tree of kernel files (see 'nodeboot exec --help'),\n" +
			"and brings up a supervised k3s node that way (see 'nodeboot up --help').\n\n" +
			"  nodeboot up --detach --wait && kubectl --kubeconfig \"$(nodeboot kubeconfig --path)\" get nodes\n\n" +
			"Status messages go to stderr; stdout carries program output only.\n" +
			"Exit codes: 0 success, 1 failure, 2 usage error, 3 node not Ready ('up --wait',\n" +
			"'status'); 'exec' passes on the status of its command.",
		Reader:    streams.In,
		Writer:    streams.Out,
		ErrWriter: streams.ErrOut,
		// The version flag of urfave/cli is a package global with the alias
		// -v, which we use for --verbose; ours is in Flags below.
		HideVersion: true,
		Flags: []cli.Flag{
			// Added by urfave/cli only when it adds its own help command.
			cli.HelpFlag,
			&cli.StringFlag{
				Name:        "log-level",
				Category:    "Logging",
				Usage:       "print status messages at `LEVEL` and above: debug, info, warn or error",
				Value:       "info",
				EnvVars:     []string{"NODEBOOT_LOG_LEVEL"},
				Destination: &flags.LogLevel,
			},
			&cli.BoolFlag{
				Name:        "verbose",
				Aliases:     []string{"v"},
				Category:    "Logging",
				Usage:       "same as --log-level debug",
				Destination: &flags.Verbose,
			},
			&cli.BoolFlag{
				Name:        "quiet",
				Aliases:     []string{"q"},
				Category:    "Logging",
				Usage:       "print no status messages (errors are still printed)",
				Destination: &flags.Quiet,
			},
			&cli.BoolFlag{
				Name:        "version",
				Usage:       "print the version and exit",
				Destination: &flags.Version,
			},
		},
		Before: func(*cli.Context) error {
			l, err := flags.level()
			if err != nil {
				return err
			}
			level.Set(l)
			return nil
		},
		Action: func(cCtx *cli.Context) error {
			if cCtx.Args().Present() {
				return cmdutil.UsageErrorf("unknown command %q; see 'nodeboot --help'", cCtx.Args().First())
			}
			if flags.Version {
				_, err := fmt.Fprintln(streams.Out, version.String())
				return err
			}
			return cli.ShowAppHelp(cCtx)
		},
		OnUsageError: onUsageError,
		// Errors are printed by report, once; never exit from here.
		ExitErrHandler: func(*cli.Context, error) {},
		Commands:       append(commands(logger, streams), helpCommand()),
	}
	for _, c := range app.Commands {
		setup(c)
	}
	return app
}

// helpCommand replaces the "help" command of urfave/cli, which exits 3 for
// an unknown topic; 3 means "not Ready" here.
func helpCommand() *cli.Command {
	return &cli.Command{
		Name:      "help",
		Aliases:   []string{"h"},
		Usage:     "show the commands, or the help of one command",
		ArgsUsage: "[COMMAND]",
		Action: func(cCtx *cli.Context) error {
			name := cCtx.Args().First()
			if name == "" {
				return cli.ShowAppHelp(cCtx)
			}
			if cCtx.Args().Len() > 1 {
				return cmdutil.UsageErrorf("help: want one COMMAND, got %q", cCtx.Args().Slice())
			}
			if cCtx.App.Command(name) == nil {
				return cmdutil.UsageErrorf("help: unknown command %q; see 'nodeboot --help'", name)
			}
			// The root context resolves name among the app's commands.
			return cli.ShowCommandHelp(cCtx.Lineage()[1], name)
		},
	}
}

// setup makes a command and its subcommands report flag errors as usage
// errors, and drops the "help" subcommand of leaf commands, where it would
// shadow an argument named "help" (as in "nodeboot exec -- help").
func setup(c *cli.Command) {
	if c.OnUsageError == nil {
		c.OnUsageError = onUsageError
	}
	if len(c.Subcommands) == 0 {
		c.HideHelpCommand = true
	}
	for _, s := range c.Subcommands {
		setup(s)
	}
}

// onUsageError turns a flag parsing error into a one-line usage error.
func onUsageError(cCtx *cli.Context, err error, isSubcommand bool) error {
	if !isSubcommand {
		return cmdutil.UsageErrorf("%v; see 'nodeboot --help'", err)
	}
	return cmdutil.UsageErrorf("%s: %v; see 'nodeboot %s --help'", cCtx.Command.Name, err, cCtx.Command.Name)
}

// level returns the slog level the global flags ask for.
func (f *flagpole) level() (slog.Level, error) {
	switch {
	case f.Verbose && f.Quiet:
		return 0, cmdutil.UsageErrorf("--verbose and --quiet: use one or the other")
	case f.Quiet:
		return quietLevel, nil
	case f.Verbose:
		return slog.LevelDebug, nil
	}
	var l slog.Level
	if err := l.UnmarshalText([]byte(f.LogLevel)); err != nil {
		return 0, cmdutil.UsageErrorf("--log-level %q: want debug, info, warn or error", f.LogLevel)
	}
	return l, nil
}

// report prints err, if any, as one "nodeboot: " line on w and returns the
// exit code it selects: the code of a cli.ExitCoder, else 1.
func report(w io.Writer, err error) int {
	if err == nil {
		return cmdutil.ExitOK
	}
	code := cmdutil.ExitFailure
	var ec cli.ExitCoder
	if errors.As(err, &ec) {
		code = ec.ExitCode()
	}
	if msg := err.Error(); msg != "" {
		fmt.Fprintf(w, "nodeboot: %s\n", msg)
	}
	return code
}
