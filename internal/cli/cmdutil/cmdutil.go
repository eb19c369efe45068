package cmdutil

import (
	"fmt"
	"io"

	"github.com/urfave/cli/v2"
)

// Exit codes of nodeboot. A command run by "nodeboot exec" passes its own
// status through instead.
const (
	ExitOK       = 0
	ExitFailure  = 1 // something went wrong; the message says what
	ExitUsage    = 2 // bad command line, flag value or env var
	ExitNotReady = 3 // the node did not become Ready before the deadline
)

// IOStreams are the streams a command uses. Only Out carries program
// output; status, logs and errors go to ErrOut.
//
// Commands that start a child pass the streams on unchanged, so that when
// they are *os.File the child inherits them (and the terminal) directly.
type IOStreams struct {
	In     io.Reader
	Out    io.Writer
	ErrOut io.Writer
}

// UsageErrorf returns an error that makes nodeboot print the message on one
// line and exit with ExitUsage. The message names the offending input, e.g.
// `--mode "fast": want auto, seccomp or ptrace`.
func UsageErrorf(format string, a ...any) error {
	return cli.Exit(fmt.Sprintf(format, a...), ExitUsage)
}

// ExitStatus returns an error that makes nodeboot exit with code and print
// nothing, or nil for code 0. Use it to pass on the status of a child.
func ExitStatus(code int) error {
	if code == 0 {
		return nil
	}
	return cli.Exit("", code)
}
