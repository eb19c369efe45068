// Package install is the "nodeboot install" command: it downloads a pinned
// k3s release into DATA-DIR/bin/k3s with bootstrap.Install, which checks
// the binary against the release's sha256 checksum file and refuses it on
// a mismatch. "nodeboot up" finds k3s there when --k3s is not given and
// k3s is not on $PATH.
package install

import (
	"fmt"
	"log/slog"

	"github.com/urfave/cli/v2"

	"github.com/nodeboot/nodeboot/bootstrap"
	"github.com/nodeboot/nodeboot/internal/cli/cmdutil"
	"github.com/nodeboot/nodeboot/internal/instance"
)

type flagpole struct {
	DataDir string
	Version string
	BaseURL string
}

// NewCommand returns the "install" command.
func NewCommand(logger *slog.Logger, streams cmdutil.IOStreams) *cli.Command {
	f := &flagpole{}
	return cmdutil.WithConfig(&cli.Command{
		Name:      "install",
		Usage:     "download a k3s release, checked against its sha256, into DATA-DIR/bin/k3s",
		UsageText: "nodeboot install --version V [--data-dir DIR] [--base-url URL]",
		Description: `Downloads k3s release V (e.g. v1.33.4+k3s1) for this machine's architecture
from --base-url, checks it against the release's sha256sum-<arch>.txt, and
installs it as DATA-DIR/bin/k3s (0755, written atomically). A checksum that
does not match, or no entry for the binary, refuses the download.

Offline? Copy a k3s binary over yourself and pass it to 'nodeboot up --k3s PATH'.

Prints the installed path on stdout.`,
		Flags: []cli.Flag{
			cmdutil.DataDirFlag(&f.DataDir),
			&cli.StringFlag{Name: "version", EnvVars: []string{"NODEBOOT_K3S_VERSION"}, Destination: &f.Version,
				Usage: "the k3s release to install (`V`), e.g. v1.33.4+k3s1"},
			&cli.StringFlag{Name: "base-url", EnvVars: []string{"NODEBOOT_K3S_BASE_URL"}, Destination: &f.BaseURL,
				Value: "https://github.com/k3s-io/k3s/releases/download",
				Usage: "where releases are (`URL`): URL/V/k3s and URL/V/sha256sum-amd64.txt"},
		},
		Action: func(cCtx *cli.Context) error {
			if cCtx.Args().Present() {
				return cmdutil.UsageErrorf("install: unexpected argument %q", cCtx.Args().First())
			}
			if f.Version == "" {
				return cmdutil.UsageErrorf("install: --version is missing; pass the k3s release, e.g. --version v1.33.4+k3s1")
			}
			in, err := instance.Open(f.DataDir)
			if err != nil {
				return fmt.Errorf("install: %w", err)
			}
			logger.Info("downloading k3s", "version", f.Version, "from", f.BaseURL, "to", in.K3sBinary())
			path, err := bootstrap.Install(cCtx.Context, bootstrap.InstallConfig{
				Version: f.Version, BaseURL: f.BaseURL, Dest: in.K3sBinary(),
			})
			if err != nil {
				return fmt.Errorf("install: %w", err)
			}
			_, err = fmt.Fprintln(streams.Out, path)
			return err
		},
	}, false)
}
