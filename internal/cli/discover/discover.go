package discover

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"text/tabwriter"

	"github.com/urfave/cli/v2"

	"github.com/nodeboot/nodeboot/bootstrap"
	"github.com/nodeboot/nodeboot/interceptor"
	"github.com/nodeboot/nodeboot/internal/cli/cmdutil"
	"github.com/nodeboot/nodeboot/internal/podnet"
	"github.com/nodeboot/nodeboot/internal/snapshotter"
	"github.com/nodeboot/nodeboot/profile"
)

// flagpole holds the flags of "nodeboot discover".
type flagpole struct {
	DataDir    string
	OutputFile string
	Output     string
	Base       string
	Name       string
	Force      bool
}

const usageText = "nodeboot discover [--output-file FILE] [--base k3s|empty|FILE] -- CMD [ARGS...]"

const description = `Runs CMD traced in observe mode on the --base profile's fake kernel, and
records every path under /proc, /sys and /dev that a syscall failed on
(ENOENT, EACCES, EROFS, EPERM) and every filesystem type statfs reported.
Then it writes a profile that extends the base with an entry for each miss
to stdout, or to --output-file, and prints a summary table on stderr.

stdout carries the profile alone: CMD's own output, stdout and stderr, goes
to stderr, so "nodeboot discover -- CMD > my.yaml" writes a profile that
loads. --output (-o) is the output format, as everywhere in nodeboot and
kubectl; a profile is YAML, its only format.

This is how nodeboot is adapted to a new sandbox or a new k3s release: run
the program once, read the table, check the placeholder values in the
profile, and pass it to 'nodeboot exec --profile FILE' or 'nodeboot seed'.

It also probes whether overlay mounts work on the filesystem of --data-dir
(or of its nearest existing parent): containerd's default snapshotter,
overlayfs, needs them, and sandboxes often refuse them (gVisor's 9p root,
an overlay root). The summary's SNAPSHOTTER line says which one 'nodeboot
up' will give k3s there: overlayfs, or native when the mount fails.

And it probes whether a veth pair can be created in a new network
namespace: the CNI plugins (flannel, bridge) link each pod that is not on
the host network to the node with one. The POD NETWORK line says "pod
networks" when that works, or "hostNetwork only" with the reason when the
sandbox refuses it: there, pods need hostNetwork: true.

Every path syscall stops twice in observe mode: use it to discover, not to run.
Exit status: 0 when the profile was written (whatever CMD's status, which
the summary shows), 1 on failure, 2 on a bad flag.

Examples:
   # What does this kubelet still miss on top of the k3s profile?
   nodeboot discover --output-file my-k3s.yaml -- kubelet --config /etc/kubelet.yaml
   nodeboot discover -- kubelet --config /etc/kubelet.yaml > my-k3s.yaml

   # Start from nothing
   nodeboot discover --base empty -- cat /proc/sys/net/bridge/bridge-nf-call-iptables`

// NewCommand returns the "discover" command.
func NewCommand(logger *slog.Logger, streams cmdutil.IOStreams) *cli.Command {
	f := &flagpole{}
	return &cli.Command{
		Name:            "discover",
		Usage:           "run a command and write the profile that would satisfy what it missed",
		UsageText:       usageText,
		Description:     description,
		HideHelpCommand: true,
		Flags: []cli.Flag{
			cmdutil.DataDirFlag(&f.DataDir),
			&cli.StringFlag{
				Name:        "output-file",
				Usage:       "write the profile to `FILE` (default: stdout); an existing file is kept unless --force",
				EnvVars:     []string{"NODEBOOT_OUTPUT_FILE"},
				Destination: &f.OutputFile,
			},
			// Not NODEBOOT_OUTPUT: that is status's and up's text|json,
			// which a profile does not come in.
			&cli.StringFlag{
				Name:        "output",
				Aliases:     []string{"o"},
				Usage:       "the profile's `FORMAT`: yaml (the only one)",
				Value:       "yaml",
				Destination: &f.Output,
			},
			&cli.StringFlag{
				Name:        "base",
				Usage:       "run on, and extend, this profile (`NAME|FILE`): k3s records what k3s's profile still lacks, empty records everything",
				Value:       "k3s",
				EnvVars:     []string{"NODEBOOT_BASE"},
				Destination: &f.Base,
			},
			&cli.StringFlag{
				Name:        "name",
				Usage:       "the `NAME` of the written profile",
				Value:       "discovered",
				Destination: &f.Name,
			},
			&cli.BoolFlag{
				Name:        "force",
				Usage:       "overwrite --output-file when it exists",
				Destination: &f.Force,
			},
		},
		Action: func(cCtx *cli.Context) error {
			return f.run(cCtx.Context, cCtx.Args().Slice(), logger, streams)
		},
	}
}

func (f *flagpole) run(ctx context.Context, argv []string, logger *slog.Logger, streams cmdutil.IOStreams) error {
	if len(argv) == 0 || argv[0] == "" {
		return cmdutil.UsageErrorf("discover: missing CMD; usage: %s", usageText)
	}
	if f.Output != "yaml" {
		if strings.ContainsAny(f.Output, "/.") {
			return cmdutil.UsageErrorf("discover: --output %q: --output is the format (yaml); to write the profile to a file, use --output-file %s", f.Output, f.Output)
		}
		return cmdutil.UsageErrorf("discover: --output %q: a profile is yaml, its only format", f.Output)
	}
	if f.OutputFile != "" && !f.Force {
		if _, err := os.Lstat(f.OutputFile); err == nil {
			return cmdutil.UsageErrorf("discover: --output-file %q exists; pass --force to overwrite it, or choose another file", f.OutputFile)
		}
	}
	base, err := cmdutil.LoadProfile(f.Base)
	if err != nil {
		return err
	}
	root, err := os.MkdirTemp("", "nodeboot-discover-")
	if err != nil {
		return fmt.Errorf("discover: %w", err)
	}
	defer os.RemoveAll(root)

	rec := profile.NewRecorder()
	// CMD's stdout goes to stderr: stdout is the profile's.
	cmdOut := streams.ErrOut
	if _, ok := cmdOut.(*os.File); !ok {
		// The tracer copies each stream that is not a file in a goroutine
		// of its own: two of them must not write one writer at once.
		cmdOut = &lockedWriter{w: cmdOut}
	}
	proc, err := bootstrap.Launch(ctx, bootstrap.LaunchConfig{
		Profile: base, Root: root,
		Path: argv[0], Args: argv,
		Stdin: streams.In, Stdout: cmdOut, Stderr: cmdOut,
		Logger:  logger,
		Observe: rec.Observe,
	})
	if err != nil {
		return fmt.Errorf("discover %s: %w", argv[0], err)
	}
	exit, err := proc.Wait()
	proc.Close()
	if err != nil {
		return fmt.Errorf("discover %s: %w", argv[0], err)
	}

	baseRef := f.Base
	if profile.IsBuiltinRef(baseRef) && baseRef == "empty" {
		baseRef = ""
	}
	out := rec.Profile(f.Name, baseRef)
	writeSummary(streams.ErrOut, rec, argv[0], exit)
	fmt.Fprintf(streams.ErrOut, "\nSNAPSHOTTER  %s\n", snapshotterLine(f.DataDir))
	fmt.Fprintf(streams.ErrOut, "POD NETWORK  %s\n", podNetworkLine())
	if err := writeProfile(f.OutputFile, out.YAML(), streams.Out); err != nil {
		return err
	}
	return nil
}

// lockedWriter serializes the writes of several goroutines to w.
type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// writeProfile writes data to path (atomically: a temporary file in the
// same directory renamed into place) or to w when path is "".
func writeProfile(path string, data []byte, w io.Writer) error {
	if path == "" {
		_, err := w.Write(data)
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return fmt.Errorf("write profile %s: %w", path, err)
	}
	_, werr := tmp.Write(data)
	cerr := tmp.Close()
	if err := errors.Join(werr, cerr); err != nil {
		os.Remove(tmp.Name())
		return fmt.Errorf("write profile %s: %w", path, err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		os.Remove(tmp.Name())
		return fmt.Errorf("write profile %s: %w", path, err)
	}
	return nil
}

// writeSummary prints what was missed and which filesystem types were seen.
func writeSummary(w io.Writer, rec *profile.Recorder, cmd string, exit interceptor.Exit) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "%s: %s\n\n", cmd, exit)
	misses := rec.Misses()
	fmt.Fprintln(tw, "MISSED PATH\tSYSCALL\tERRNO\tCALLS\tPROFILE ENTRY")
	for _, m := range misses {
		kind := "file"
		if m.Dir {
			kind = "directory"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%s\n", m.Path, m.Syscall, profile.ErrnoName(m.Errno), m.Count, kind)
	}
	if len(misses) == 0 {
		fmt.Fprintln(tw, "(none)\t\t\t\t")
	}
	if n := rec.Skipped(); n > 0 {
		fmt.Fprintf(tw, "(%d failures on /proc/PID/... paths: per process, not in a profile)\t\t\t\t\n", n)
	}
	fmt.Fprintln(tw)
	fmt.Fprintln(tw, "STATFS TYPE\tCALLS")
	types := rec.FSTypes()
	for _, t := range slices.Sorted(maps.Keys(types)) {
		fmt.Fprintf(tw, "%s\t%d\n", t, types[t])
	}
	if len(types) == 0 {
		fmt.Fprintln(tw, "(none)\t")
	}
	tw.Flush()
}

// snapshotterLine probes overlay mounts where the data dir is (or will
// be): the snapshotter "nodeboot up" would give k3s there.
func snapshotterLine(dataDir string) string {
	dir := snapshotter.Nearest(dataDir)
	if euid := os.Geteuid(); euid != 0 {
		return fmt.Sprintf("unknown: the overlay probe on %s mounts, which needs root (you are uid %d)", dir, euid)
	}
	return snapshotter.Decide(dir).String()
}

// podNetworkLine probes veth pairs in a new network namespace: whether
// pods off the host network can run here.
func podNetworkLine() string {
	if euid := os.Geteuid(); euid != 0 {
		return fmt.Sprintf("unknown: the veth probe makes a network namespace, which needs root (you are uid %d)", euid)
	}
	return podnet.Decide().String()
}
