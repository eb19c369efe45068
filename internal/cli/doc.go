// Package cli builds the nodeboot command line: one urfave/cli App whose
// commands each live in a package of their own under internal/cli, built by
// a NewCommand(logger, streams) constructor (see package cmdutil).
//
// Run is the only entry point. It parses the global flags, sets up the
// status logger, runs one command and turns its error into a single line on
// stderr and an exit code (cmdutil.Exit*). urfave/cli never prints usage
// dumps or calls os.Exit here; only main does.
package cli
