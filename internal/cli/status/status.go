// Package status is the "nodeboot status" command: it shows the state that
// the supervisor of a data directory keeps in state.json (phase, node
// conditions, restarts and their reasons, uptime, interceptor counters,
// PIDs), checks that the supervisor still runs (it holds the lock), and
// exits 0 when the node is Ready, 3 when it is not, and 1 when nothing
// runs.
package status

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/urfave/cli/v2"
	"golang.org/x/sys/unix"

	"github.com/nodeboot/nodeboot/internal/cli/cmdutil"
	"github.com/nodeboot/nodeboot/internal/instance"
	"github.com/nodeboot/nodeboot/node"
)

type flagpole struct {
	DataDir string
	Output  string
}

const description = `Shows the node that "nodeboot up" runs for DATA-DIR: whether its supervisor
runs, the phase of bringing it up, the node's health and conditions, the
restarts of k3s and why, uptime, the interceptor's counters and the PIDs.

Output: text, or with --output json one object: {"running": bool,
"state": <DATA-DIR/state.json>}.

Exit status: 0 when the supervisor runs and the node is Ready (Ready as
reported by the kubelet of the k3s now running: while k3s restarts, the
node's Ready condition is the previous kubelet's and counts as not Ready),
3 when it runs and the node is not Ready, 1 when no supervisor runs (the
last state, if any, is still shown).`

// NewCommand returns the "status" command.
func NewCommand(logger *slog.Logger, streams cmdutil.IOStreams) *cli.Command {
	f := &flagpole{}
	return cmdutil.WithConfig(&cli.Command{
		Name:        "status",
		Usage:       "show the node's phase, health, restarts and counters",
		UsageText:   "nodeboot status [--data-dir DIR] [-o|--output text|json]",
		Description: description,
		Flags: []cli.Flag{
			cmdutil.DataDirFlag(&f.DataDir),
			&cli.StringFlag{Name: "output", Aliases: []string{"o"}, Value: "text", EnvVars: []string{"NODEBOOT_OUTPUT"}, Destination: &f.Output,
				Usage: "print text or json (`FORMAT`)"},
		},
		Action: func(cCtx *cli.Context) error {
			if cCtx.Args().Present() {
				return cmdutil.UsageErrorf("status: unexpected argument %q", cCtx.Args().First())
			}
			if f.Output != "text" && f.Output != "json" {
				return cmdutil.UsageErrorf("status: --output %q: want text or json", f.Output)
			}
			return f.run(streams)
		},
	}, false)
}

// Report is the --output json object.
type Report struct {
	DataDir string      `json:"dataDir"`
	Running bool        `json:"running"`
	PID     int         `json:"pid,omitempty"`
	State   *node.State `json:"state,omitempty"`
}

func (f *flagpole) run(streams cmdutil.IOStreams) error {
	in, err := instance.At(f.DataDir)
	if err != nil {
		return cmdutil.UsageErrorf("status: %v", err)
	}
	rep := Report{DataDir: in.Dir}
	pid, running, err := in.Running()
	if err != nil {
		return fmt.Errorf("status: %w", err)
	}
	rep.Running, rep.PID = running && alive(pid), pid
	st, err := node.ReadState(in.Dir)
	if err != nil && !errors.Is(err, node.ErrNoState) {
		return fmt.Errorf("status: %w", err)
	}
	rep.State = st

	if f.Output == "json" {
		b, err := json.MarshalIndent(rep, "", "  ")
		if err != nil {
			return err
		}
		fmt.Fprintf(streams.Out, "%s\n", b)
	} else {
		writeText(streams.Out, rep, time.Now())
	}
	switch {
	case !rep.Running && st == nil:
		return cli.Exit(fmt.Sprintf("status: nodeboot is not running for %s and has no state there; start it with `nodeboot up --data-dir %s`", in.Dir, in.Dir), cmdutil.ExitFailure)
	case !rep.Running:
		return cli.Exit(fmt.Sprintf("status: nodeboot is not running for %s", in.Dir), cmdutil.ExitFailure)
	case st == nil || st.Health == nil || st.Health.State != "Ready" || !st.Phase.NodeReady():
		// A Ready health while k3s (re)starts is the previous kubelet's.
		return cmdutil.ExitStatus(cmdutil.ExitNotReady)
	}
	return nil
}

// alive reports whether pid exists (a zombie counts: the lock says more).
func alive(pid int) bool {
	return pid > 0 && unix.Kill(pid, 0) != unix.ESRCH
}

// writeText prints rep for a person.
func writeText(w io.Writer, rep Report, now time.Time) {
	st := rep.State
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	row := func(k, v string) { fmt.Fprintf(tw, "%s:\t%s\n", k, v) }
	switch {
	case rep.Running && st != nil:
		row("supervisor", fmt.Sprintf("running, pid %d, up %s", rep.PID, since(st.StartedAt, now)))
	case rep.Running:
		row("supervisor", fmt.Sprintf("running, pid %d (no state yet)", rep.PID))
	default:
		row("supervisor", "not running")
	}
	row("data dir", rep.DataDir)
	if st == nil {
		tw.Flush()
		return
	}
	row("node", fmt.Sprintf("%s (%s)", st.NodeName, st.Role))
	row("phase", fmt.Sprintf("%s, since %s", st.Phase, since(st.PhaseSince, now)))
	k3s := "not running"
	if st.K3sPID > 0 && rep.Running {
		k3s = fmt.Sprintf("pid %d", st.K3sPID)
	}
	row("k3s", fmt.Sprintf("%s (%s)", k3s, st.K3s))
	if h := st.Health; h != nil {
		v := string(h.State)
		if h.Reason != "" {
			v += " " + h.Reason
		}
		if !h.Since.IsZero() {
			v += ", since " + since(h.Since, now)
		}
		if h.Message != "" {
			v += ": " + oneLine(h.Message)
		}
		row("health", v)
	}
	row("restarts", fmt.Sprint(st.Restarts))
	if c := st.Interceptor; c != nil {
		row("interceptor", fmt.Sprintf("%s, %d stops, %d rewrites, %d passes, %d threads traced", c.Mode, c.Stops, c.Rewrites, c.Passes, c.Tracees))
	}
	if st.LastError != "" {
		row("last error", oneLine(st.LastError))
	}
	tw.Flush()
	if h := st.Health; h != nil && len(h.Conditions) > 0 {
		fmt.Fprintln(w, "\nconditions:")
		tw = tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "  TYPE\tSTATUS\tREASON\tMESSAGE")
		for _, c := range h.Conditions {
			fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\n", c.Type, c.Status, dash(c.Reason), dash(oneLine(c.Message)))
		}
		tw.Flush()
	}
	if len(st.RestartHistory) > 0 {
		fmt.Fprintln(w, "\nrestarts (latest last):")
		tw = tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		for _, r := range st.RestartHistory {
			fmt.Fprintf(tw, "  %s\t%s ago\t%s\n", r.Time.Local().Format(time.DateTime), since(r.Time, now), oneLine(r.Reason))
		}
		tw.Flush()
	}
}

func since(t, now time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return now.Sub(t).Round(time.Second).String()
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }
