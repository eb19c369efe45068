// Package token is the "nodeboot token" command: it prints the join token
// of the k3s server that runs (or ran) on a data directory, the token
// agents pass to "nodeboot up --role agent --token-file FILE". k3s server
// writes it to K3S-DATA-DIR/server/node-token once its server runs;
// K3S-DATA-DIR is DATA-DIR/k3s, or the --data-dir of up's K3S-ARGS, as
// state.json says.
package token

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"strings"

	"github.com/urfave/cli/v2"
	"golang.org/x/sys/unix"

	"github.com/nodeboot/nodeboot/internal/cli/cmdutil"
	"github.com/nodeboot/nodeboot/internal/instance"
	"github.com/nodeboot/nodeboot/node"
)

// maxToken bounds the token file: a k3s token is about 100 bytes.
const maxToken = 16 << 10

type flagpole struct {
	DataDir string
	Path    bool
}

// NewCommand returns the "token" command.
func NewCommand(logger *slog.Logger, streams cmdutil.IOStreams) *cli.Command {
	f := &flagpole{}
	return cmdutil.WithConfig(&cli.Command{
		Name:      "token",
		Usage:     "print the server's join token, for agents (--token-file)",
		UsageText: "nodeboot token [--data-dir DIR] [--path]",
		Description: `Prints the join token of the k3s server on DIR: the file k3s server writes
to K3S-DATA-DIR/server/node-token once it runs (K3S-DATA-DIR is DIR/k3s, or
the --data-dir among up's K3S-ARGS). With --path, prints the file's path.
The node must be a server ('nodeboot up', role server) that has started.

The token lets a machine join the cluster: keep it out of command lines
(every user sees them in ps) and pass it to agents in a file:

   nodeboot token > node-token && chmod 600 node-token     # on the server
   nodeboot up --role agent --server https://SERVER:6443 --token-file node-token`,
		Flags: []cli.Flag{
			cmdutil.DataDirFlag(&f.DataDir),
			&cli.BoolFlag{Name: "path", Destination: &f.Path, Usage: "print the path of the token file instead of the token"},
		},
		Action: func(cCtx *cli.Context) error {
			if cCtx.Args().Present() {
				return cmdutil.UsageErrorf("token: unexpected argument %q", cCtx.Args().First())
			}
			return f.run(streams)
		},
	}, false)
}

func (f *flagpole) run(streams cmdutil.IOStreams) error {
	in, err := instance.At(f.DataDir)
	if err != nil {
		return cmdutil.UsageErrorf("token: %v", err)
	}
	st, err := node.ReadState(in.Dir)
	if errors.Is(err, node.ErrNoState) {
		return fmt.Errorf("token: no node has run on %s: start a server there with `nodeboot up --data-dir %s --detach --wait`", in.Dir, in.Dir)
	}
	if err != nil {
		return fmt.Errorf("token: %w", err)
	}
	if st.Role == node.RoleAgent {
		return fmt.Errorf("token: %s runs a k3s agent, which has no join token of its own; run `nodeboot token` on the server's data dir (the server's K3S-DATA-DIR/server/node-token)", in.Dir)
	}
	k3sDir := st.K3sDataDir
	if k3sDir == "" {
		k3sDir = in.K3sDataDir() // a state.json from before k3sDataDir was recorded
	}
	path := node.JoinToken(k3sDir)
	tok, err := readToken(path)
	if errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("token: %s does not exist: %s", path, whyMissing(in))
	}
	if err != nil {
		return fmt.Errorf("token: %w", err)
	}
	if f.Path {
		_, err = fmt.Fprintln(streams.Out, path)
		return err
	}
	_, err = fmt.Fprintln(streams.Out, tok)
	return err
}

// readToken reads the token file: k3s may make node-token a symlink to
// its token file inside its own data dir, so a link is followed, but the
// file it reaches must be regular and small.
func readToken(path string) (string, error) {
	file, err := os.OpenFile(path, os.O_RDONLY|unix.O_CLOEXEC|unix.O_NONBLOCK, 0)
	if err != nil {
		return "", err
	}
	defer file.Close()
	fi, err := file.Stat()
	if err != nil {
		return "", err
	}
	if !fi.Mode().IsRegular() {
		return "", fmt.Errorf("%s is not a regular file (%s)", path, fi.Mode().Type())
	}
	b, err := io.ReadAll(io.LimitReader(file, maxToken+1))
	if err != nil {
		return "", err
	}
	if len(b) > maxToken {
		return "", fmt.Errorf("%s is larger than %d bytes: not a k3s token", path, maxToken)
	}
	tok := strings.TrimSpace(string(b))
	if tok == "" || strings.ContainsAny(tok, "\n\r\t ") {
		return "", fmt.Errorf("%s holds no token (empty, or more than one line)", path)
	}
	return tok, nil
}

// whyMissing says why there is no token file, and what to do.
func whyMissing(in *instance.Instance) string {
	pid, running, err := in.Running()
	switch {
	case err != nil:
		return err.Error()
	case running:
		return fmt.Sprintf("nodeboot is running (pid %d) but k3s server has not written it yet; wait with `nodeboot status --data-dir %s`", pid, in.Dir)
	default:
		return fmt.Sprintf("nodeboot is not running for %s and k3s never wrote it; start the server with `nodeboot up --data-dir %s --detach --wait`", in.Dir, in.Dir)
	}
}
