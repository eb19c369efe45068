package up

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/nodeboot/nodeboot/health"
	"github.com/nodeboot/nodeboot/internal/cli/cmdutil"
	"github.com/nodeboot/nodeboot/internal/cli/progress"
	"github.com/nodeboot/nodeboot/internal/instance"
	"github.com/nodeboot/nodeboot/node"
)

// envLockFD tells a detached supervisor which descriptor holds the data
// dir's lock that its parent took (see instance.Instance.LockFile).
const envLockFD = "_NODEBOOT_LOCK_FD"

// envTokenFD tells a detached supervisor which descriptor is the read end
// of a pipe holding the join token: on its command line (--token) every
// user could read it in ps.
const envTokenFD = "_NODEBOOT_TOKEN_FD"

// detachStartTimeout bounds how long the parent waits for the detached
// supervisor to write its PID file.
const detachStartTimeout = 15 * time.Second

// pollPeriod is how often --wait reads events.jsonl.
const pollPeriod = 250 * time.Millisecond

// detach starts the supervisor in the background: /proc/self/exe with the
// same arguments minus --detach and --wait, in a new session, with stdin
// /dev/null and stdout and stderr to logs/nodeboot.log. The parent takes the
// lock first, so a second "up" fails here at once, and hands it to the
// child. With --wait it then follows the child's events.
func (p *plan) detach(ctx context.Context, logger *slog.Logger, streams cmdutil.IOStreams) error {
	in, err := instance.Open(p.node.DataDir)
	if err != nil {
		return fmt.Errorf("up: %w", err)
	}
	if err := in.Lock(); err != nil {
		return fmt.Errorf("up: %w", err)
	}
	defer in.Unlock()
	events, err := in.OpenEvents(true) // a new list for this run
	if err != nil {
		return fmt.Errorf("up: %w", err)
	}
	events.Close()
	logFile, err := instance.OpenLog(in.NodebootLog())
	if err != nil {
		return fmt.Errorf("up: %w", err)
	}
	defer logFile.Close()
	devNull, err := os.Open(os.DevNull)
	if err != nil {
		return fmt.Errorf("up: %w", err)
	}
	defer devNull.Close()

	start := time.Now()
	cmd := exec.Command("/proc/self/exe", childArgs(os.Args[1:])...)
	cmd.Args[0] = os.Args[0]
	cmd.Stdin, cmd.Stdout, cmd.Stderr = devNull, logFile, logFile
	cmd.ExtraFiles = []*os.File{in.LockFile()} // fd 3
	cmd.Env = append(childEnv(os.Environ()), envLockFD+"=3")
	var tokenW *os.File
	if p.f.Token != "" {
		r, w, err := os.Pipe()
		if err != nil {
			return fmt.Errorf("up: pass the token: %w", err)
		}
		defer r.Close()
		tokenW = w
		cmd.ExtraFiles = append(cmd.ExtraFiles, r) // fd 4
		cmd.Env = append(cmd.Env, envTokenFD+"=4")
	}
	// A new session: no controlling terminal, so Ctrl-C and the
	// terminal's hangup do not reach the supervisor.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		if tokenW != nil {
			tokenW.Close()
		}
		return fmt.Errorf("up: start the supervisor: %w", err)
	}
	if tokenW != nil {
		// A goroutine: a pipe may hold less than the token (one page
		// when the user's pipe quota is spent), and the child reads it
		// only once it runs.
		go func() {
			tokenW.WriteString(p.f.Token)
			tokenW.Close()
		}()
	}
	pid := cmd.Process.Pid
	exited := make(chan struct{})
	go func() {
		cmd.Wait() // reap it if it dies while we wait
		close(exited)
	}()
	// state.json of an earlier run must not answer for this one.
	if err := in.WriteState(&node.State{Phase: node.PhaseSeeding, PhaseSince: start, DataDir: in.Dir,
		NodeName: p.node.NodeName, Role: p.node.Role, K3s: p.node.K3s, Kubeconfig: p.node.Kubeconfig,
		StartedAt: start, UpdatedAt: start, SupervisorPID: pid}); err != nil {
		return fmt.Errorf("up: %w", err)
	}
	in.Unlock() // the child holds the lock through its own descriptor

	if err := waitStarted(in, pid, exited); err != nil {
		return err
	}
	// A status line like the progress lines, not a log line (-q drops it).
	note := ""
	if logger.Enabled(ctx, slog.LevelInfo) {
		note = fmt.Sprintf("Supervisor running in the background (pid %d), its log in %s; see `nodeboot status --data-dir %s`, stop it with `nodeboot down --data-dir %s`",
			pid, in.NodebootLog(), in.Dir, in.Dir)
	}
	if !p.f.Wait {
		if note != "" {
			fmt.Fprintf(streams.ErrOut, " • %s\n", note)
		}
		_, err := fmt.Fprintln(streams.Out, pid)
		return err
	}
	return p.follow(ctx, in, pid, exited, start, note, streams)
}

// waitStarted waits until the child has written its PID file (it then
// holds the lock) or has died.
func waitStarted(in *instance.Instance, pid int, exited <-chan struct{}) error {
	deadline := time.After(detachStartTimeout)
	for {
		if got, err := in.ReadPID(); err == nil && got == pid {
			return nil
		}
		select {
		case <-exited:
			return fmt.Errorf("up: the supervisor (pid %d) exited at start: %s", pid, lastLogLine(in))
		case <-deadline:
			return fmt.Errorf("up: the supervisor (pid %d) did not start within %s; see %s", pid, detachStartTimeout, in.NodebootLog())
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// follow shows the detached supervisor's events until the node is up, the
// supervisor fails or dies, or --timeout passes.
func (p *plan) follow(ctx context.Context, in *instance.Instance, pid int, exited <-chan struct{}, start time.Time, note string, streams cmdutil.IOStreams) error {
	ctx, stop := signal.NotifyContext(ctx, syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	out := streams.ErrOut
	if p.f.Output == "json" {
		out = streams.Out
	}
	printer := progress.New(out, progress.ModeFor(p.f.Output, out), start)
	defer printer.Close()
	printer.K3sLog = in.K3sLog()
	if note != "" {
		printer.Note(note)
	}
	deadline := time.NewTimer(p.f.Timeout)
	defer deadline.Stop()
	tick := time.NewTicker(pollPeriod)
	defer tick.Stop()

	var (
		off        int64
		lastHealth *node.Health
		lastReason string
		lastPhase  node.Phase
		lastApply  string // the latest manifests progress
	)
	// drain shows new events; it returns the end of waiting, if any.
	drain := func() (done bool, err error) {
		evs, next, rerr := node.ReadEvents(in.Dir, off)
		if rerr != nil {
			return true, fmt.Errorf("up --wait: %w", rerr)
		}
		off = next
		for _, e := range evs {
			printer.Event(e)
			if e.Health != nil {
				lastHealth = e.Health
			}
			if e.Reason != "" && e.Kind != node.KindHealth {
				lastReason = e.Reason
			}
			if e.Kind == node.KindManifests {
				lastApply = e.Message
			}
			if e.Kind != node.KindPhase {
				continue
			}
			lastPhase = e.Phase
			switch {
			case e.Phase.Done():
				return true, nil
			case e.Phase == node.PhaseManifestsFailed:
				return true, fmt.Errorf("up --wait: the node is Ready but applying the manifests failed: %s; the supervisor (pid %d) keeps running the node", e.Message, pid)
			case e.Phase == node.PhaseFailed:
				return true, fmt.Errorf("up --wait: the supervisor (pid %d) ended: %s", pid, e.Message)
			case e.Phase == node.PhaseStopped:
				return true, fmt.Errorf("up --wait: the supervisor (pid %d) was stopped before the node was Ready", pid)
			}
		}
		return false, nil
	}
	for {
		if done, err := drain(); done {
			return err
		}
		select {
		case <-tick.C:
		case <-exited:
			if done, err := drain(); done {
				return err
			}
			reason := lastReason
			if st, err := node.ReadState(in.Dir); err == nil && st.LastError != "" {
				reason = st.LastError
			}
			if reason == "" {
				reason = lastLogLine(in)
			}
			return fmt.Errorf("up --wait: the supervisor (pid %d) exited before the node was Ready: %s; see %s", pid, reason, in.NodebootLog())
		case <-deadline.C:
			return cli.Exit(fmt.Sprintf("up --wait: node %s not Ready after %s: %s; the supervisor (pid %d) keeps running: see `nodeboot status --data-dir %s`, stop it with `nodeboot down --data-dir %s`",
				p.node.NodeName, p.f.Timeout, missing(lastPhase, lastHealth, lastApply), pid, in.Dir, in.Dir), cmdutil.ExitNotReady)
		case <-ctx.Done():
			return fmt.Errorf("up --wait: interrupted; the supervisor (pid %d) keeps running: stop it with `nodeboot down --data-dir %s`", pid, in.Dir)
		}
	}
}

// missing says what --wait was still waiting for when it gave up: the
// step of bringing up that had not happened, from the last phase reached,
// the last health report and the manifests' last progress.
func missing(phase node.Phase, h *node.Health, apply string) string {
	switch {
	case phase == node.PhaseNodeReady:
		s := "the node is Ready; the manifests are not all applied and ready yet"
		if apply != "" {
			s += " (last: " + oneLine(apply) + ")"
		}
		return s
	case h == nil && phase != "":
		return fmt.Sprintf("no health report yet (phase %s)", phase)
	case h == nil:
		return "no health report yet"
	case h.State == health.Ready:
		// The phase stops short of node-ready until the kubelet of the k3s
		// now running renews the Lease or posts the Node's status: the
		// Ready condition is an earlier kubelet's until then.
		return fmt.Sprintf("the Node's Ready condition (%s) is an earlier kubelet's: the kubelet of the k3s now running has not been heard from (no renewal of the node's Lease, no status posted since it started)", healthLine(h))
	}
	return healthLine(h)
}

// oneLine is s with its whitespace runs made single spaces.
func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }

// healthLine is a health report on one line: "NotReady KubeletNotReady: msg".
func healthLine(h *node.Health) string {
	s := string(h.State)
	if h.Reason != "" {
		s += " " + h.Reason
	}
	if h.Message != "" {
		s += ": " + strings.Join(strings.Fields(h.Message), " ")
	}
	return s
}

// childArgs are args without --detach and --wait, and without --token and
// --token-file with their values (the child gets the token on a pipe), in
// any spelling, before the "--" that starts K3S-ARGS.
func childArgs(args []string) []string {
	var out []string
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			return append(out, args[i:]...)
		}
		name, _, hasValue := strings.Cut(strings.TrimLeft(a, "-"), "=")
		if !strings.HasPrefix(a, "-") {
			out = append(out, a)
			continue
		}
		switch name {
		case "detach", "wait":
			continue
		case "token", "token-file":
			if !hasValue {
				i++ // the value is the next argument
			}
			continue
		}
		out = append(out, a)
	}
	return out
}

// childEnv is env without the token's variables (the child gets the token
// on a pipe).
func childEnv(env []string) []string {
	var out []string
	for _, kv := range env {
		if strings.HasPrefix(kv, "NODEBOOT_TOKEN=") || strings.HasPrefix(kv, "NODEBOOT_TOKEN_FILE=") {
			continue
		}
		out = append(out, kv)
	}
	return out
}

// lastLogLine is the last line of logs/nodeboot.log, for an error message.
func lastLogLine(in *instance.Instance) string {
	b, err := os.ReadFile(in.NodebootLog())
	if err != nil {
		return "no log: " + err.Error()
	}
	lines := bytes.Split(bytes.TrimSpace(b), []byte("\n"))
	if len(lines) == 0 || len(lines[len(lines)-1]) == 0 {
		return "nothing logged"
	}
	return string(lines[len(lines)-1])
}
