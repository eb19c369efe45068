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
	"context"
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
	Merge   bool
	Context string
	Force   bool
}

// NewCommand returns the "kubeconfig" command.
func NewCommand(logger *slog.Logger, streams cmdutil.IOStreams) *cli.Command {
	f := &flagpole{}
	return cmdutil.WithConfig(&cli.Command{
		Name:      "kubeconfig",
		Usage:     "print the node's admin kubeconfig (or its path)",
		UsageText: "nodeboot kubeconfig [--data-dir DIR] [--path | --merge [--context NAME] [--force]]",
		Description: `Prints DATA-DIR/kubeconfig.yaml, the admin kubeconfig k3s writes, on stdout
(or the file a --write-kubeconfig among up's K3S-ARGS named); with --path,
prints its path instead. The file must exist (k3s writes it
once its API server runs) and is kept at mode 0600.

--merge adds the node to your kubeconfig, the first file of $KUBECONFIG or
~/.kube/config, as a cluster, user and context named nodeboot-NODE (or
--context NAME), makes that context the current one and prints its name.
Every other entry is kept. An entry of that name that nodeboot did not
write is left alone (the merge fails) unless --force. The file is
replaced atomically and keeps its mode and owner (a new one is 0600).

Examples:
   kubectl --kubeconfig "$(nodeboot kubeconfig --path)" get nodes
   nodeboot kubeconfig --merge && kubectl get nodes`,
		Flags: []cli.Flag{
			cmdutil.DataDirFlag(&f.DataDir),
			&cli.BoolFlag{Name: "path", Destination: &f.Path, Usage: "print the path of the kubeconfig instead of its content"},
			&cli.BoolFlag{Name: "merge", Destination: &f.Merge, Usage: "merge the node into $KUBECONFIG's first file or ~/.kube/config as a context, make it current, print its name"},
			&cli.StringFlag{Name: "context", Destination: &f.Context, Usage: "with --merge: the `NAME` of the context, cluster and user (default nodeboot-NODE)"},
			&cli.BoolFlag{Name: "force", Destination: &f.Force, Usage: "with --merge: replace entries of that name that nodeboot did not write"},
		},
		Action: func(cCtx *cli.Context) error {
			if cCtx.Args().Present() {
				return cmdutil.UsageErrorf("kubeconfig: unexpected argument %q", cCtx.Args().First())
			}
			switch {
			case f.Merge && f.Path:
				return cmdutil.UsageErrorf("kubeconfig: --merge and --path: use one or the other")
			case !f.Merge && (f.Context != "" || f.Force):
				return cmdutil.UsageErrorf("kubeconfig: --context and --force go with --merge")
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
	path, nodeName := in.Kubeconfig(), ""
	if st, err := node.ReadState(in.Dir); err == nil {
		if st.Kubeconfig != "" {
			path = st.Kubeconfig
		}
		nodeName = st.NodeName
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
	if f.Merge {
		return f.merge(logger, streams, in, path, nodeName)
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

// merge is --merge.
func (f *flagpole) merge(logger *slog.Logger, streams cmdutil.IOStreams, in *instance.Instance, path, nodeName string) error {
	target, err := mergeTarget()
	if err != nil {
		return fmt.Errorf("kubeconfig --merge: %w", err)
	}
	name := f.Context
	if name == "" {
		name = contextName(nodeName)
	}
	res, err := merge(path, target, name, in.Dir, f.Force)
	if err != nil {
		return fmt.Errorf("kubeconfig --merge: %w", err)
	}
	verb := "Added"
	if res.Replaced {
		verb = "Updated"
	}
	msg := fmt.Sprintf("%s context %q in %s; it is the current context now", verb, res.Context, res.File)
	if res.Previous != "" && res.Previous != res.Context {
		msg += fmt.Sprintf(" (it was %q: kubectl config use-context %s)", res.Previous, res.Previous)
	}
	// A status line as up prints them (-q drops it).
	if logger.Enabled(context.Background(), slog.LevelInfo) {
		fmt.Fprintf(streams.ErrOut, " ✓ %s\n", msg)
	}
	_, err = fmt.Fprintln(streams.Out, res.Context)
	return err
}
