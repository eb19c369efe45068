// Command nodeboot runs programs under a ptrace+seccomp interceptor that
// serves kernel files from a fake tree. See internal/cli for the commands.
package main

import (
	"os"

	"github.com/nodeboot/nodeboot/internal/cli"
)

func main() {
	os.Exit(cli.Run(os.Args, os.Stdin, os.Stdout, os.Stderr))
}
