// Package exec is the "nodeboot exec" command: it runs one command under the
// interceptor with the rules given as flags, forwards signals to it and
// exits with its status.
//
// The Action runs on one goroutine: it builds the interceptor.Config from
// the flags (bad input is a usage error, exit 2), subscribes to the
// forwarded signals before starting the command, so that none is lost
// between the fork and the first Wait, then waits. A second goroutine
// forwards signals until Wait returns. After the command itself has
// exited, the first signal is passed on to every process it left running
// (whatever its process group or session), and the next one kills them.
package exec
