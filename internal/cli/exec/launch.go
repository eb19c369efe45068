package exec

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"

	"github.com/urfave/cli/v2"

	"github.com/nodeboot/nodeboot/bootstrap"
	"github.com/nodeboot/nodeboot/interceptor"
	"github.com/nodeboot/nodeboot/internal/cli/cmdutil"
	"github.com/nodeboot/nodeboot/internal/safefs"
)

// The profile mode of "nodeboot exec": with --profile, CMD runs through
// bootstrap.Launch on the profile's fake kernel (seeded tree, redirects,
// fstypes and the virtual kernel's dynamic files); --redirect and --fstype
// are merged over the profile's rules and win.

// profileFlags are the flags of the profile mode; they write into f.
func profileFlags(f *flagpole) []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{
			Name:        "profile",
			Category:    "Profile",
			Usage:       "run CMD on a profile's fake kernel (`NAME|FILE`, e.g. k3s): its tree is seeded, its rules applied and its dynamic files (cgroup2, mountinfo, kmsg, ...) served; --redirect and --fstype win over its rules",
			EnvVars:     []string{"NODEBOOT_PROFILE"},
			Destination: &f.Profile,
		},
		&cli.StringFlag{
			Name:        "root",
			Category:    "Profile",
			Usage:       "seed the profile's tree in `DIR` and keep it (default: a private temporary directory under $XDG_RUNTIME_DIR, /run or $TMPDIR, removed when CMD ends, or by the next exec if nodeboot was killed)",
			EnvVars:     []string{"NODEBOOT_ROOT"},
			Destination: &f.Root,
		},
	}
}

// launch starts cfg's command with bootstrap.Launch. The returned cleanup
// closes the virtual kernel and removes a temporary root; call it once the
// command has ended.
func (f *flagpole) launch(ctx context.Context, cfg interceptor.Config, logger *slog.Logger) (tracer, func(), error) {
	p, err := cmdutil.LoadProfile(f.Profile)
	if err != nil {
		return nil, nil, err
	}
	root, temp := f.Root, false
	removeRoot := func() {}
	if root == "" {
		run, err := tempRoot(logger)
		if err != nil {
			return nil, nil, fmt.Errorf("exec: %w", err)
		}
		root, temp = run.Path(), true
		removeRoot = func() {
			if err := run.Remove(); err != nil {
				logger.Warn("remove temporary root", "root", root, "err", err)
			}
		}
	}
	logger.Debug("launching on profile", "profile", p.Name, "root", root, "temporary", temp)
	proc, err := bootstrap.Launch(ctx, bootstrap.LaunchConfig{
		Profile: p, Root: root,
		Path: cfg.Path, Args: cfg.Args, Env: cfg.Env, Dir: cfg.Dir,
		Stdin: cfg.Stdin, Stdout: cfg.Stdout, Stderr: cfg.Stderr,
		Mode: cfg.Mode, Rules: cfg.Rules, Logger: cfg.Logger, OnRewrite: cfg.OnRewrite,
		KeepEnv: cfg.KeepEnv, Setpgid: cfg.Setpgid,
	})
	if err != nil {
		removeRoot()
		return nil, nil, err
	}
	return proc, func() {
		proc.Close()
		removeRoot()
	}, nil
}

// runsDirName is the directory below $XDG_RUNTIME_DIR, /run or the
// temporary directory that holds the temporary roots of exec --profile,
// one per user.
func runsDirName() string { return "nodeboot-exec-" + strconv.Itoa(os.Geteuid()) }

// tempRoot makes a private (0700) run directory for the tree under
// $XDG_RUNTIME_DIR, /run or the temporary directory, the first that works
// (safefs.NewRunDir). The run holds a lock on it while it lives; one
// killed with SIGKILL leaves its tree behind, and the next exec removes it.
func tempRoot(logger *slog.Logger) (*safefs.RunDir, error) {
	var firstErr error
	for _, dir := range []string{os.Getenv("XDG_RUNTIME_DIR"), "/run", os.TempDir()} {
		if dir == "" {
			continue
		}
		run, swept, err := safefs.NewRunDir(filepath.Join(dir, runsDirName()))
		for _, p := range swept {
			logger.Info("removed the temporary tree of an exec that died", "dir", p)
		}
		if err == nil {
			return run, nil
		}
		logger.Debug("no temporary root here", "dir", dir, "err", err)
		if firstErr == nil {
			firstErr = err
		}
	}
	return nil, fmt.Errorf("make a temporary root: %w", firstErr)
}

// checkProfileFlags refuses --root without --profile.
func (f *flagpole) checkProfileFlags() error {
	if f.Root != "" && f.Profile == "" {
		return cmdutil.UsageErrorf("exec: --root %q needs --profile (the tree of which profile?), e.g. --profile k3s", f.Root)
	}
	return nil
}
