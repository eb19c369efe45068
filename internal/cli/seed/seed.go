package seed

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os/signal"
	"strings"
	"syscall"

	"github.com/urfave/cli/v2"

	"github.com/nodeboot/nodeboot/bootstrap"
	"github.com/nodeboot/nodeboot/internal/cli/cmdutil"
)

// flagpole holds the flags of "nodeboot seed".
type flagpole struct {
	Root    string
	Profile string
	Force   bool
}

const usageText = "nodeboot seed --root DIR [--profile NAME|FILE] [--force]"

const description = `Writes the fake tree of kernel files that a profile describes below DIR:
the guest path /proc/sys/kernel/panic becomes DIR/proc/sys/kernel/panic.
Nothing outside DIR is written; the real /proc and /sys are never touched.

DIR is created with mode 0700 when it does not exist. As sshd's StrictModes
asks of ~/.ssh, DIR must be owned by you and writable by nobody else, every
directory above it must belong to root or to you (and be writable by others
only when sticky, as /tmp), and no symlink in the path is followed: another
user cannot swap the tree under you. Symlinks inside the tree are never
followed, and every file is written to a temporary file and renamed into place.

Running seed again is safe: entries that match the profile are left alone
("unchanged"), and entries whose content or mode differs, typically because
kubelet wrote a value, are kept ("kept") unless --force resets them.
Generated values such as kernel/random/boot_id are made once and kept.

Output: one line per entry on stdout ("created /proc/sys/vm/overcommit_memory"),
then a summary. Exit status: 0 on success, 1 on failure, 2 on a bad flag.

Examples:
   # Seed the built-in k3s profile
   nodeboot seed --root /var/lib/nodeboot/root

   # Seed your own profile (see 'nodeboot profile show k3s' for the format)
   nodeboot seed --root /var/lib/nodeboot/root --profile ./my-k3s.yaml

   # Reset every file to the profile's value
   nodeboot seed --root /var/lib/nodeboot/root --force`

// NewCommand returns the "seed" command. Entries and the summary go to
// streams.Out.
func NewCommand(logger *slog.Logger, streams cmdutil.IOStreams) *cli.Command {
	f := &flagpole{}
	return &cli.Command{
		Name:        "seed",
		Usage:       "write the fake tree of kernel files a profile describes",
		UsageText:   usageText,
		Description: description,
		Flags: []cli.Flag{
			&cli.StringFlag{
				Name:        "root",
				Usage:       "write the tree below `DIR` (created 0700 when missing), e.g. /var/lib/nodeboot/root",
				EnvVars:     []string{"NODEBOOT_ROOT"},
				Destination: &f.Root,
			},
			&cli.StringFlag{
				Name:        "profile",
				Usage:       "the profile to seed: a built-in name (see 'nodeboot profile list') or a YAML file (`NAME|FILE`)",
				Value:       "k3s",
				EnvVars:     []string{"NODEBOOT_PROFILE"},
				Destination: &f.Profile,
			},
			&cli.BoolFlag{
				Name:        "force",
				Usage:       "reset entries whose content or mode differs from the profile, and replace symlinks or special files in their place (never following them)",
				EnvVars:     []string{"NODEBOOT_FORCE"},
				Destination: &f.Force,
			},
		},
		Action: func(cCtx *cli.Context) error {
			if cCtx.Args().Present() {
				return cmdutil.UsageErrorf("seed: unexpected argument %q; usage: %s", cCtx.Args().First(), usageText)
			}
			return f.run(cCtx.Context, logger, streams)
		},
	}
}

func (f *flagpole) run(ctx context.Context, logger *slog.Logger, streams cmdutil.IOStreams) error {
	if f.Root == "" {
		return cmdutil.UsageErrorf("seed: --root is missing; pass --root DIR (or set NODEBOOT_ROOT), e.g. --root /var/lib/nodeboot/root")
	}
	p, err := cmdutil.LoadProfile(f.Profile)
	if err != nil {
		return err
	}
	logger.Debug("seeding", "root", f.Root, "profile", p.Name, "chain", strings.Join(p.Chain, " <- "), "force", f.Force)
	// SIGINT or SIGTERM stops seeding between two entries, so that no
	// temporary file is left behind.
	ctx, stop := signal.NotifyContext(ctx, syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	rep, err := bootstrap.Seed(ctx, f.Root, p, bootstrap.SeedOptions{Force: f.Force})
	if err != nil && ctx.Err() != nil {
		writeEntries(streams.Out, rep)
		return fmt.Errorf("seed %s: stopped (%v); the entries listed were written, the others were not", f.Root, context.Cause(ctx))
	}
	if rep.RootCreated {
		logger.Info("created the root directory", "dir", rep.Root, "mode", "0700")
	}
	writeEntries(streams.Out, rep)
	if err != nil {
		return err
	}
	writeSummary(streams.Out, rep)
	if n := rep.Count(bootstrap.Kept); n > 0 {
		logger.Info("some entries differ from the profile and were kept; use --force to reset them", "kept", n)
	}
	return nil
}

// writeEntries prints one line per entry: "ACTION PATH (DETAIL)", where a
// dynamic entry's action is "dynamic".
func writeEntries(w io.Writer, rep bootstrap.SeedReport) {
	for _, e := range rep.Entries {
		line := string(e.Action) + " " + e.Path
		switch {
		case e.Action == bootstrap.Skipped:
			line = "dynamic " + e.Path
		case e.Detail != "":
			line += " (" + e.Detail + ")"
		}
		fmt.Fprintln(w, line)
	}
}

// writeSummary prints the counts of a finished run.
func writeSummary(w io.Writer, rep bootstrap.SeedReport) {
	fmt.Fprintf(w, "seeded %s with profile %s: %d created, %d updated, %d unchanged, %d kept, %d dynamic\n",
		rep.Root, rep.Profile,
		rep.Count(bootstrap.Created), rep.Count(bootstrap.Updated), rep.Count(bootstrap.Unchanged),
		rep.Count(bootstrap.Kept), rep.Count(bootstrap.Skipped))
}
