// Command sandbox runs a command in the simulated gVisor-like sandbox of
// package e2e/sandbox:
//
//	go run ./e2e/cmd/sandbox [-netns NAME] [-keep procsys,cgroups,dev,procfiles] -- CMD [ARGS...]
//
// It needs root (it unshares a mount namespace). -keep leaves the named
// parts of the host alone. Exit status is CMD's; 125 when the sandbox could
// not be set up.
package main

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"strings"
	"syscall"

	"github.com/nodeboot/nodeboot/e2e/sandbox"
)

func main() {
	sandbox.Main() // in the namespace: set up and exec CMD
	os.Exit(run(os.Args[1:]))
}

func run(args []string) int {
	fs := flag.NewFlagSet("sandbox", flag.ContinueOnError)
	netns := fs.String("netns", "", "join network namespace `NAME` (/run/netns/NAME) or path")
	keep := fs.String("keep", "", "comma-separated parts to leave as on the host: procsys, cgroups, dev, procfiles")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() == 0 {
		fmt.Fprintln(os.Stderr, "usage: sandbox [-netns NAME] [-keep PARTS] -- CMD [ARGS...]")
		return 2
	}
	spec := sandbox.GVisor
	for _, k := range strings.Split(*keep, ",") {
		switch strings.TrimSpace(k) {
		case "":
		case "procsys":
			spec.ProcSys = false
		case "cgroups":
			spec.Cgroups = false
		case "dev":
			spec.Dev = false
		case "procfiles":
			spec.ProcFiles = false
		default:
			fmt.Fprintf(os.Stderr, "sandbox: -keep %q: want procsys, cgroups, dev or procfiles\n", k)
			return 2
		}
	}
	ns := *netns
	if ns != "" && !strings.Contains(ns, "/") {
		ns = "/run/netns/" + ns
	}
	cmd, err := sandbox.Command(sandbox.Options{NetNS: ns, Spec: spec}, fs.Args()...)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	signal.Ignore(syscall.SIGINT, syscall.SIGQUIT) // the terminal sends them to CMD too
	err = cmd.Run()
	var ee *exec.ExitError
	switch {
	case err == nil:
		return 0
	case errors.As(err, &ee):
		if st, ok := ee.Sys().(syscall.WaitStatus); ok && st.Signaled() {
			return 128 + int(st.Signal())
		}
		return ee.ExitCode()
	default:
		fmt.Fprintln(os.Stderr, "sandbox:", err)
		return 1
	}
}
