// Package kubeconfig is the "nodeboot kubeconfig" command: it prints the
// admin kubeconfig that k3s wrote to DATA-DIR/kubeconfig.yaml (or where
// the K3S-ARGS' --write-kubeconfig put it, as state.json says), or with
// --path its path (for kubectl --kubeconfig "$(nodeboot kubeconfig --path)").
//
// The file holds cluster-admin credentials, so nodeboot's own must be
// 0600: a looser mode is tightened (and said so) before the file is used.
// One the user placed elsewhere keeps the mode they asked k3s for.
package kubeconfig

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"

	"github.com/urfave/cli/v2"
	"golang.org/x/sys/unix"

	"github.com/nodeboot/nodeboot/internal/cli/cmdutil"
	"github.com/nodeboot/nodeboot/internal/instance"
	"github.com/nodeboot/nodeboot/node"
)

type flagpole struct {
	DataDir string
	Path    bool
}

// NewCommand returns the "kubeconfig" command.
func NewCommand(logger *slog.Logger, streams cmdutil.IOStreams) *cli.Command {
	f := &flagpole{}
	return cmdutil.WithConfig(&cli.Command{
		Name:      "kubeconfig",
		Usage:     "print the node's admin kubeconfig (or its path)",
		UsageText: "nodeboot kubeconfig [--data-dir DIR] [--path]",
		Description: `Prints DATA-DIR/kubeconfig.yaml, the admin kubeconfig k3s writes, on stdout
(or the file a --write-kubeconfig among up's K3S-ARGS named); with --path,
prints its path instead. The file must exist (k3s writes it
once its API server runs) and is kept at mode 0600.

Example:
   kubectl --kubeconfig "$(nodeboot kubeconfig --path)" get nodes`,
		Flags: []cli.Flag{
			cmdutil.DataDirFlag(&f.DataDir),
			&cli.BoolFlag{Name: "path", Destination: &f.Path, Usage: "print the path of the kubeconfig instead of its content"},
		},
		Action: func(cCtx *cli.Context) error {
			if cCtx.Args().Present() {
				return cmdutil.UsageErrorf("kubeconfig: unexpected argument %q", cCtx.Args().First())
			}
			return f.run(logger, streams)
		},
	}, false)
}

func (f *flagpole) run(logger *slog.Logger, streams cmdutil.IOStreams) error {
	in, err := instance.At(f.DataDir)
	if err != nil {
		return cmdutil.UsageErrorf("kubeconfig: %v", err)
	}
	path := in.Kubeconfig()
	if st, err := node.ReadState(in.Dir); err == nil && st.Kubeconfig != "" {
		path = st.Kubeconfig
	}
	file, err := os.OpenFile(path, os.O_RDONLY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("kubeconfig: %s does not exist: %s", path, whyMissing(in))
	}
	if err != nil {
		return fmt.Errorf("kubeconfig: %w", err)
	}
	defer file.Close()
	fi, err := file.Stat()
	if err != nil {
		return fmt.Errorf("kubeconfig: %w", err)
	}
	if !fi.Mode().IsRegular() {
		return fmt.Errorf("kubeconfig: %s is not a regular file", path)
	}
	if perm := fi.Mode().Perm(); perm != 0o600 && path == in.Kubeconfig() {
		// Through the open descriptor: the file checked is the file fixed.
		if err := file.Chmod(0o600); err != nil {
			logger.Warn("the kubeconfig holds admin credentials but is readable by others; run chmod 600 on it", "path", path, "mode", fmt.Sprintf("%04o", perm), "err", err)
		} else {
			logger.Warn("the kubeconfig had a loose mode; set it to 0600", "path", path, "was", fmt.Sprintf("%04o", perm))
		}
	}
	if f.Path {
		_, err := fmt.Fprintln(streams.Out, path)
		return err
	}
	_, err = io.Copy(streams.Out, file)
	return err
}

// whyMissing says why there is no kubeconfig, and what to do.
func whyMissing(in *instance.Instance) string {
	pid, running, err := in.Running()
	switch {
	case err != nil:
		return err.Error()
	case running:
		return fmt.Sprintf("nodeboot is running (pid %d) but k3s has not written it yet; wait with `nodeboot status --data-dir %s`, or see `nodeboot logs --data-dir %s`", pid, in.Dir, in.Dir)
	default:
		return fmt.Sprintf("nodeboot is not running for %s; start it with `nodeboot up --data-dir %s --detach --wait`", in.Dir, in.Dir)
	}
}
