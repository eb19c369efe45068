// Package kubectl is the "nodeboot kubectl" command: kubectl on the node
// that "nodeboot up" runs, with no kubeconfig to find. It runs the
// kubectl built into the node's k3s ("k3s kubectl", the same version as
// the node's API server), else kubectl on $PATH, with KUBECONFIG set to
// the node's admin kubeconfig, and passes kubectl's exit status on.
package kubectl

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"os/signal"
	"syscall"

	"github.com/urfave/cli/v2"

	"github.com/nodeboot/nodeboot/internal/cli/cmdutil"
	"github.com/nodeboot/nodeboot/internal/instance"
	"github.com/nodeboot/nodeboot/node"
)

type flagpole struct {
	DataDir string
}

// NewCommand returns the "kubectl" command.
func NewCommand(logger *slog.Logger, streams cmdutil.IOStreams) *cli.Command {
	f := &flagpole{}
	return cmdutil.WithConfig(&cli.Command{
		Name:      "kubectl",
		Usage:     "run kubectl on the node, with its admin kubeconfig",
		UsageText: "nodeboot kubectl [--data-dir DIR] [--] KUBECTL-ARGS...",
		Description: `Runs kubectl KUBECTL-ARGS against the node of DATA-DIR: the kubectl built
into its k3s ('k3s kubectl', the version of the node's API server), else
kubectl on $PATH, with KUBECONFIG set to the node's admin kubeconfig. The
exit status is kubectl's.

nodeboot's own flags come first; everything from the first argument that
is not one of them is kubectl's. Put -- before kubectl flags that come
first: nodeboot kubectl -- -n kube-system get pods.

Examples:
   nodeboot kubectl get nodes -o wide
   nodeboot kubectl -- -n kube-system get pods`,
		Flags: []cli.Flag{cmdutil.DataDirFlag(&f.DataDir)},
		Action: func(cCtx *cli.Context) error {
			if !cCtx.Args().Present() {
				return cmdutil.UsageErrorf("kubectl: no kubectl arguments; e.g. nodeboot kubectl get nodes")
			}
			return f.run(cCtx.Args().Slice(), logger, streams)
		},
	}, false)
}

func (f *flagpole) run(args []string, logger *slog.Logger, streams cmdutil.IOStreams) error {
	in, err := instance.At(f.DataDir)
	if err != nil {
		return cmdutil.UsageErrorf("kubectl: %v", err)
	}
	kubeconfig, k3s := in.Kubeconfig(), ""
	if st, err := node.ReadState(in.Dir); err == nil {
		if st.Kubeconfig != "" {
			kubeconfig = st.Kubeconfig
		}
		k3s = st.K3s
	}
	if _, err := os.Stat(kubeconfig); err != nil {
		return fmt.Errorf("kubectl: no kubeconfig for the node of %s (%v); bring it up with `nodeboot up --wait --data-dir %s`", in.Dir, err, in.Dir)
	}
	if k3s == "" {
		k3s, _ = cmdutil.FindK3s("", in)
	}
	var cmd *exec.Cmd
	if path, err := exec.LookPath(k3s); k3s != "" && err == nil {
		cmd = exec.Command(path, append([]string{"kubectl"}, args...)...)
		// k3s unpacks its tools into its data dir before running one:
		// the node's, where the server unpacked them already, and not
		// /var/lib/rancher/k3s.
		cmd.Env = append(os.Environ(), "K3S_DATA_DIR="+in.K3sDataDir())
	} else if path, err := exec.LookPath("kubectl"); err == nil {
		cmd = exec.Command(path, args...)
		cmd.Env = os.Environ()
	} else {
		return fmt.Errorf("kubectl: no kubectl to run: the node's k3s is not known (no state in %s) and there is no kubectl on $PATH; use kubectl --kubeconfig %s", in.Dir, kubeconfig)
	}
	cmd.Env = append(cmd.Env, "KUBECONFIG="+kubeconfig)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = streams.In, streams.Out, streams.ErrOut
	logger.Debug("running kubectl", "argv", cmd.Args, "kubeconfig", kubeconfig)
	// The terminal's Ctrl-C reaches kubectl too; nodeboot waits for it to
	// end and passes its status on.
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGQUIT)
	defer signal.Stop(sigs)
	err = cmd.Run()
	var ee *exec.ExitError
	switch {
	case err == nil:
		return nil
	case errors.As(err, &ee):
		if st, ok := ee.Sys().(syscall.WaitStatus); ok && st.Signaled() {
			return cmdutil.ExitStatus(128 + int(st.Signal()))
		}
		return cmdutil.ExitStatus(ee.ExitCode())
	}
	return fmt.Errorf("kubectl: %w", err)
}
