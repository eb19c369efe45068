// Package install is the "nodeboot install" command: it downloads a k3s
// release (by default bootstrap.DefaultK3sVersion, the one nodeboot is
// tested with) into DATA-DIR/bin/k3s with bootstrap.Install, which checks
// the binary against the release's sha256 checksum file and refuses it on
// a mismatch. "nodeboot up" finds k3s there when --k3s is not given and
// k3s is not on $PATH. On a terminal the download shows a progress bar.
package install

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"

	"github.com/urfave/cli/v2"

	"github.com/nodeboot/nodeboot/bootstrap"
	"github.com/nodeboot/nodeboot/internal/cli/cmdutil"
	"github.com/nodeboot/nodeboot/internal/cli/progress"
	"github.com/nodeboot/nodeboot/internal/instance"
)

type flagpole struct {
	DataDir   string
	Version   string
	BaseURL   string
	IfMissing bool
}

// NewCommand returns the "install" command.
func NewCommand(logger *slog.Logger, streams cmdutil.IOStreams) *cli.Command {
	f := &flagpole{}
	return cmdutil.WithConfig(&cli.Command{
		Name:      "install",
		Usage:     "download a k3s release, checked against its sha256, into DATA-DIR/bin/k3s",
		UsageText: "nodeboot install [--version V] [--data-dir DIR] [--base-url URL] [--if-missing]",
		Description: `Downloads k3s release V (default ` + bootstrap.DefaultK3sVersion + `, the release nodeboot is
tested with) for this machine's architecture from --base-url, checks it
against the release's sha256sum-<arch>.txt, and installs it as
DATA-DIR/bin/k3s (0755, written atomically). A checksum that does not
match, or no entry for the binary, refuses the download. A release name
is vMAJOR.MINOR.PATCH+k3sN (see https://github.com/k3s-io/k3s/releases).

--if-missing downloads nothing when 'nodeboot up' would find a k3s
already: $NODEBOOT_K3S, k3s on $PATH, or DATA-DIR/bin/k3s.

Offline? The error names the two files to download elsewhere; copy the
binary over and pass it to 'nodeboot up --k3s PATH' (or NODEBOOT_K3S=PATH).

Prints the path of the k3s 'up' will run on stdout.`,
		Flags: []cli.Flag{
			cmdutil.DataDirFlag(&f.DataDir),
			&cli.StringFlag{Name: "version", EnvVars: []string{"NODEBOOT_K3S_VERSION"}, Destination: &f.Version,
				Value: bootstrap.DefaultK3sVersion,
				Usage: "the k3s release to install (`V`); the default is the release nodeboot is tested with"},
			&cli.StringFlag{Name: "base-url", EnvVars: []string{"NODEBOOT_K3S_BASE_URL"}, Destination: &f.BaseURL,
				Value: bootstrap.DefaultK3sBaseURL,
				Usage: "where releases are (`URL`): URL/V/k3s and URL/V/sha256sum-amd64.txt"},
			&cli.BoolFlag{Name: "if-missing", Destination: &f.IfMissing,
				Usage: "download nothing when 'nodeboot up' would find a k3s already ($NODEBOOT_K3S, k3s on $PATH, DATA-DIR/bin/k3s)"},
		},
		Action: func(cCtx *cli.Context) error {
			if cCtx.Args().Present() {
				return cmdutil.UsageErrorf("install: unexpected argument %q", cCtx.Args().First())
			}
			if err := bootstrap.CheckK3sVersion(f.Version); err != nil {
				return cmdutil.UsageErrorf("install: --version %v; see https://github.com/k3s-io/k3s/releases", err)
			}
			return f.run(cCtx, logger, streams)
		},
	}, false)
}

func (f *flagpole) run(cCtx *cli.Context, logger *slog.Logger, streams cmdutil.IOStreams) error {
	if f.IfMissing {
		in, err := instance.At(f.DataDir)
		if err != nil {
			return cmdutil.UsageErrorf("install: %v", err)
		}
		path, err := cmdutil.FindK3s(os.Getenv("NODEBOOT_K3S"), in)
		switch {
		case err == nil:
			status(logger, streams, "•", "k3s is there already: "+path+"; nothing to download")
			_, err := fmt.Fprintln(streams.Out, path)
			return err
		case !errors.Is(err, cmdutil.ErrNoK3s):
			return fmt.Errorf("install --if-missing: %w", err)
		}
	}
	in, err := instance.Open(f.DataDir)
	if err != nil {
		return fmt.Errorf("install: %w", err)
	}
	cfg := bootstrap.InstallConfig{Version: f.Version, BaseURL: f.BaseURL, Dest: in.K3sBinary()}
	var bar *progress.Bar
	if progress.ModeFor("text", streams.ErrOut) == progress.TTY {
		bar = progress.NewBar(streams.ErrOut, "Downloading k3s "+f.Version)
		cfg.Progress = bar.Update
	} else {
		status(logger, streams, "•", fmt.Sprintf("Downloading k3s %s from %s", f.Version, f.BaseURL))
	}
	path, err := bootstrap.Install(cCtx.Context, cfg)
	if bar != nil {
		bar.Done("")
	}
	if err == nil {
		status(logger, streams, "✓", fmt.Sprintf("k3s %s installed at %s (sha256 verified)", f.Version, path))
	}
	if err != nil {
		var de *bootstrap.DownloadError
		if errors.As(err, &de) {
			return offline(de, in)
		}
		return fmt.Errorf("install: %w", err)
	}
	_, err = fmt.Fprintln(streams.Out, path)
	return err
}

// offline is the error for a download the network failed: what to fetch
// elsewhere, and the two ways to hand it to "nodeboot up".
func offline(de *bootstrap.DownloadError, in *instance.Instance) error {
	return fmt.Errorf("install: cannot download k3s %s from %s: %v. Offline: %s; then pass it to up as --k3s PATH (or NODEBOOT_K3S=PATH), or install it as %s (chmod 755)",
		de.Version, de.URL, de.Err, de.Fetch(), in.K3sBinary())
}

// status prints a status line as up's progress lines look (-q drops it).
func status(logger *slog.Logger, streams cmdutil.IOStreams, mark, text string) {
	if logger.Enabled(context.Background(), slog.LevelInfo) {
		fmt.Fprintf(streams.ErrOut, " %s %s\n", mark, text)
	}
}
