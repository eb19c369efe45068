// Package cmdutil holds what more than one nodeboot subcommand uses, and
// nothing else: the I/O streams, the exit codes and the errors that select
// them, the --data-dir flag and --config file of the instance commands
// (WithConfig, DataDirFlag), and the loading of a --profile (LoadProfile).
// A command package never imports a sibling command package.
//
// A subcommand lives in its own package under internal/cli with a
// constructor
//
//	func NewCommand(logger *slog.Logger, streams cmdutil.IOStreams) *cli.Command
//
// and its Action returns errors instead of printing them: internal/cli.Run
// prints every error once, as "nodeboot: <message>", and picks the exit code
// from it. Return UsageErrorf for bad input (exit 2), ExitStatus to pass on
// a child's status silently, and any other error for a failure (exit 1).
package cmdutil
