package profile

import (
	"fmt"
	"log/slog"
	"text/tabwriter"

	"github.com/urfave/cli/v2"

	"github.com/nodeboot/nodeboot/internal/cli/cmdutil"
	"github.com/nodeboot/nodeboot/profile"
)

const description = `A profile describes the fake tree of kernel files that 'nodeboot seed'
writes, and the redirect and fstype rules that serve it. Profiles are YAML;
a profile can extend another with "base:". The format is in docs/profiles.md.

Examples:
   nodeboot profile list
   nodeboot profile show k3s
   nodeboot profile show ./my-k3s.yaml > merged.yaml`

// NewCommand returns the "profile" command and its subcommands.
func NewCommand(_ *slog.Logger, streams cmdutil.IOStreams) *cli.Command {
	return &cli.Command{
		Name:        "profile",
		Usage:       "list built-in profiles and show merged ones",
		UsageText:   "nodeboot profile list\nnodeboot profile show NAME|FILE",
		Description: description,
		Subcommands: []*cli.Command{
			{
				Name:      "list",
				Usage:     "list the built-in profiles",
				ArgsUsage: " ",
				Action: func(cCtx *cli.Context) error {
					if cCtx.Args().Present() {
						return cmdutil.UsageErrorf("profile list: unexpected argument %q", cCtx.Args().First())
					}
					tw := tabwriter.NewWriter(streams.Out, 0, 8, 2, ' ', 0)
					fmt.Fprintln(tw, "NAME\tBASE\tDESCRIPTION")
					for _, in := range profile.List() {
						base := in.Base
						if base == "" {
							base = "-"
						}
						fmt.Fprintf(tw, "%s\t%s\t%s\n", in.Name, base, in.Description)
					}
					return tw.Flush()
				},
			},
			{
				Name:      "show",
				Usage:     "print a profile, its base chain merged, as YAML",
				ArgsUsage: "NAME|FILE",
				Action: func(cCtx *cli.Context) error {
					if cCtx.NArg() != 1 {
						return cmdutil.UsageErrorf("profile show: want one NAME or FILE, got %d arguments; usage: nodeboot profile show NAME|FILE", cCtx.NArg())
					}
					p, err := cmdutil.LoadProfile(cCtx.Args().First())
					if err != nil {
						return err
					}
					_, err = streams.Out.Write(p.YAML())
					return err
				},
			},
		},
		// Without this, urfave/cli answers an unknown subcommand with help
		// and exit code 3.
		Action: func(cCtx *cli.Context) error {
			if cCtx.Args().Present() {
				return cmdutil.UsageErrorf("profile: unknown command %q; use 'nodeboot profile list' or 'nodeboot profile show NAME|FILE'", cCtx.Args().First())
			}
			return cli.ShowSubcommandHelp(cCtx)
		},
	}
}
