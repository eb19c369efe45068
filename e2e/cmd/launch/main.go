// Command launch runs a command through nodeboot's launch code with the
// built-in k3s profile; the e2e tests start kubelet with it:
//
//	launch --root DIR [--stats FILE] -- CMD [ARGS...]
//
// See package e2e/internal/launch.
package main

import (
	"os"

	"github.com/nodeboot/nodeboot/e2e/internal/launch"
)

func main() {
	os.Exit(launch.Main(os.Args[1:], os.Stdout, os.Stderr))
}
