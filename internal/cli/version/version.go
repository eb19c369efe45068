package version

import (
	"fmt"
	"log/slog"
	"runtime"

	"github.com/urfave/cli/v2"

	"github.com/nodeboot/nodeboot/internal/cli/cmdutil"
)

// version is replaced by the linker (see the Makefile's build target).
var version = "dev"

// Version returns nodeboot's version, "dev" for an unstamped build.
func Version() string { return version }

// String is the one line "nodeboot version" prints, e.g.
// "nodeboot v0.1.0 go1.26.0 linux/amd64".
func String() string {
	return fmt.Sprintf("nodeboot %s %s %s/%s", version, runtime.Version(), runtime.GOOS, runtime.GOARCH)
}

// NewCommand returns the "version" command.
func NewCommand(_ *slog.Logger, streams cmdutil.IOStreams) *cli.Command {
	return &cli.Command{
		Name:      "version",
		Usage:     "print the version of nodeboot",
		ArgsUsage: " ",
		Action: func(cCtx *cli.Context) error {
			if cCtx.Args().Present() {
				return cmdutil.UsageErrorf("version: unexpected argument %q", cCtx.Args().First())
			}
			_, err := fmt.Fprintln(streams.Out, String())
			return err
		},
	}
}
