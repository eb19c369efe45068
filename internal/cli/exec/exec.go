package exec

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/nodeboot/nodeboot/interceptor/rules"

	"github.com/urfave/cli/v2"
	"golang.org/x/sys/unix"

	"github.com/nodeboot/nodeboot/interceptor"
	"github.com/nodeboot/nodeboot/internal/cli/cmdutil"
)

// forwarded are the signals nodeboot passes on to the command instead of
// acting on them.
var forwarded = []os.Signal{syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP, syscall.SIGQUIT}

// tracer is the part of *interceptor.Tracer that exec uses; tests swap in a
// fake through start.
type tracer interface {
	PID() int
	Signal(syscall.Signal) error
	Kill()
	Processes() []int
	Wait() (interceptor.Exit, error)
	Exited() <-chan struct{}
	Stats() interceptor.Stats
}

var _ tracer = (*interceptor.Tracer)(nil)

// start launches the traced command.
var start = func(ctx context.Context, cfg interceptor.Config) (tracer, error) {
	t, err := interceptor.Start(ctx, cfg)
	if err != nil {
		return nil, err
	}
	return t, nil
}

// flagpole holds the flags of "nodeboot exec".
type flagpole struct {
	Redirects     cli.StringSlice
	FSTypes       cli.StringSlice
	Mode          string
	Stats         bool
	LogIntercepts bool
	KeepEnv       bool
	// Profile and Root select the profile mode (launch.go).
	Profile string
	Root    string
}

const description = `Runs CMD with ARGS under the interceptor. Path syscalls (open, stat,
statfs, readlink, ...) that name a --redirect GUEST, or a path below it,
are served from the same place below HOST when the file exists there or
the call creates it there; other paths are left alone. --fstype rewrites
the filesystem type that statfs and fstatfs report. The rules apply to CMD
and to every process and thread it starts.

Everything after "--", or after the first argument that is not a flag, is
CMD and its ARGS, passed on as they are: "nodeboot exec -- ls -l".

Exit status: CMD's own (128+N when signal N killed it), 1 when CMD could
not be started, 2 on a bad flag or value. SIGINT, SIGTERM, SIGHUP and
SIGQUIT sent to nodeboot are forwarded to CMD; one that arrives before CMD
runs (while a --profile is seeded, say) stops nodeboot, which exits 128+N. Like "strace -f", nodeboot
returns when CMD and every process it left running have ended; after CMD
has exited, the first such signal goes to each process left (to stop
cleanly) and the second kills them.

Examples:
   # Serve /proc/sys/kernel from a fake tree
   mkdir -p /tmp/fake/kernel && echo 1 > /tmp/fake/kernel/panic
   nodeboot exec --redirect /proc/sys/kernel=/tmp/fake/kernel -- cat /proc/sys/kernel/panic

   # Make /var/lib look like ext4, and every 9p filesystem like ext4 too
   nodeboot exec --fstype /var/lib=ext4 --fstype 9p=ext4 -- stat -f -c %T /var/lib

   # Show each rewrite as it happens, and a syscall table at the end
   nodeboot exec --log-intercepts --stats --redirect /proc/sys=/tmp/fake/sys -- sysctl kernel.panic

   # The same rules from the environment (several values: comma-separated)
   NODEBOOT_REDIRECT=/proc/sys/kernel=/tmp/fake/kernel nodeboot exec -- cat /proc/sys/kernel/panic`

// NewCommand returns the "exec" command. Status goes to logger; the command
// runs with streams (pass *os.File streams so it inherits the terminal), and
// the --stats table and --log-intercepts lines go to streams.ErrOut.
func NewCommand(logger *slog.Logger, streams cmdutil.IOStreams) *cli.Command {
	f := &flagpole{}
	return &cli.Command{
		Name:        "exec",
		Usage:       "run a command with its kernel-file paths redirected",
		UsageText:   "nodeboot exec [flags] [--] CMD [ARGS...]",
		Description: description,
		// CMD and ARGS are ours to pass on verbatim: no "help" subcommand
		// that would swallow "nodeboot exec help".
		HideHelpCommand: true,
		Flags: append([]cli.Flag{
			&cli.StringSliceFlag{
				Name:        "redirect",
				Category:    "Rules",
				Usage:       "serve `GUEST=HOST`: paths at and below GUEST come from the same place below HOST (absolute paths; repeatable), e.g. /proc/sys=/srv/fake/proc/sys",
				EnvVars:     []string{"NODEBOOT_REDIRECT"},
				Destination: &f.Redirects,
			},
			&cli.StringSliceFlag{
				Name:        "fstype",
				Category:    "Rules",
				Usage:       "rewrite `FROM=TO`: statfs reports type TO for the absolute path FROM and below, or for every filesystem of type FROM (repeatable), e.g. 9p=ext4 or /var/lib=0xEF53",
				EnvVars:     []string{"NODEBOOT_FSTYPE"},
				Destination: &f.FSTypes,
			},
			&cli.StringFlag{
				Name:        "mode",
				Category:    "Tracing",
				Usage:       "catch syscalls with `MODE`: seccomp (a BPF filter stops only the syscalls the rules need), ptrace (every syscall stops; slow) or auto (seccomp, else ptrace)",
				Value:       "auto",
				EnvVars:     []string{"NODEBOOT_MODE"},
				Destination: &f.Mode,
			},
			&cli.BoolFlag{
				Name:        "keep-env",
				Category:    "Tracing",
				Usage:       "pass the environment as is (by default GODEBUG gains asyncpreemptoff=1: Go's preemption signals would stop the tracer)",
				EnvVars:     []string{"NODEBOOT_KEEP_ENV"},
				Destination: &f.KeepEnv,
			},
			&cli.BoolFlag{
				Name:        "stats",
				Category:    "Output",
				Usage:       "when CMD ends, print per-syscall and per-rule counters on stderr",
				EnvVars:     []string{"NODEBOOT_STATS"},
				Destination: &f.Stats,
			},
			&cli.BoolFlag{
				Name:        "log-intercepts",
				Category:    "Output",
				Usage:       `print each rewrite on stderr: "openat /proc/sys/kernel/panic -> /tmp/fake/kernel/panic"`,
				EnvVars:     []string{"NODEBOOT_LOG_INTERCEPTS"},
				Destination: &f.LogIntercepts,
			},
		}, profileFlags(f)...),
		Action: func(cCtx *cli.Context) error {
			if err := f.checkProfileFlags(); err != nil {
				return err
			}
			return f.run(cCtx.Context, cCtx.Args().Slice(), logger, streams)
		},
	}
}

// config builds the interceptor configuration for argv. Bad input is a
// usage error that names the flag and the value.
func (f *flagpole) config(argv []string, logger *slog.Logger, streams cmdutil.IOStreams) (interceptor.Config, error) {
	if len(argv) == 0 || argv[0] == "" {
		return interceptor.Config{}, cmdutil.UsageErrorf("exec: missing CMD; usage: nodeboot exec [flags] [--] CMD [ARGS...]")
	}
	var rs rules.Rules
	for _, s := range f.Redirects.Value() {
		r, err := rules.ParseRedirect(s)
		if err != nil {
			return interceptor.Config{}, flagError("redirect", s, err)
		}
		rs.Redirects = append(rs.Redirects, r)
	}
	for _, s := range f.FSTypes.Value() {
		r, err := rules.ParseFSType(s)
		if err != nil {
			return interceptor.Config{}, flagError("fstype", s, err)
		}
		rs.FSTypes = append(rs.FSTypes, r)
	}
	if err := rs.Validate(); err != nil {
		return interceptor.Config{}, cmdutil.UsageErrorf("%v", err)
	}
	mode, err := interceptor.ParseMode(f.Mode)
	if err != nil {
		return interceptor.Config{}, flagError("mode", f.Mode, err)
	}
	warnMissingHosts(logger, rs.Redirects)
	cfg := interceptor.Config{
		Path:    argv[0],
		Args:    argv,
		Stdin:   streams.In,
		Stdout:  streams.Out,
		Stderr:  streams.ErrOut,
		Rules:   rs,
		Mode:    mode,
		KeepEnv: f.KeepEnv,
		Logger:  logger,
	}
	if f.LogIntercepts {
		w := streams.ErrOut
		cfg.OnRewrite = func(r interceptor.Rewrite) {
			fmt.Fprintf(w, "%s %s -> %s\n", r.Syscall, r.From, r.To)
		}
	}
	return cfg, nil
}

// maxNamedMissing bounds the rules that the missing-host warning names.
const maxNamedMissing = 3

// warnMissingHosts warns, in one line whatever their number, about the
// redirects whose host path does not exist.
func warnMissingHosts(logger *slog.Logger, rs []rules.Redirect) {
	var missing []string
	var firstErr error
	for _, r := range rs {
		if _, err := os.Stat(r.Host); err != nil {
			if firstErr == nil {
				firstErr = err
			}
			missing = append(missing, r.String())
		}
	}
	switch len(missing) {
	case 0:
	case 1:
		logger.Warn("redirect host path is missing: only files the command creates will be redirected", "rule", missing[0], "err", firstErr)
	default:
		named := missing[:min(len(missing), maxNamedMissing)]
		logger.Warn(fmt.Sprintf("%d of %d redirect host paths are missing: only files the command creates will be redirected there", len(missing), len(rs)),
			"first", strings.Join(named, " "), "err", firstErr)
	}
}

// flagError is the usage error for value of --name: `--name "value": why`.
// The parsers of package interceptor start their errors with `name "value": `;
// that part is said once.
func flagError(name, value string, err error) error {
	msg := strings.TrimPrefix(err.Error(), fmt.Sprintf("%s %q: ", name, value))
	return cmdutil.UsageErrorf("--%s %q: %s", name, value, msg)
}

// run runs argv traced and returns its exit status as an error (nil for 0).
func (f *flagpole) run(ctx context.Context, argv []string, logger *slog.Logger, streams cmdutil.IOStreams) error {
	cfg, err := f.config(argv, logger, streams)
	if err != nil {
		return err
	}

	// Subscribe before anything else. Until the command runs, a signal
	// cancels the start (loading and seeding the profile, the virtual
	// kernel, the tracer's start all take ctx) and nodeboot exits as if
	// the signal had killed it; from then on signals are forwarded.
	sigs := make(chan os.Signal, 8)
	for _, s := range forwarded {
		// A signal nodeboot inherited as ignored (a background job of a
		// non-interactive shell ignores SIGINT) stays ignored, so that
		// CMD inherits the same disposition as without nodeboot.
		if !signal.Ignored(s) {
			signal.Notify(sigs, s)
		}
	}
	defer signal.Stop(sigs)

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	interrupted := make(chan os.Signal, 1)
	starting, watched := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(watched)
		select {
		case s := <-sigs:
			interrupted <- s
			cancel()
		case <-starting:
		}
	}()

	logger.Debug("starting", "cmd", argv, "mode", cfg.Mode, "redirects", len(cfg.Rules.Redirects), "fstypes", len(cfg.Rules.FSTypes))
	var t tracer
	if f.Profile != "" {
		var cleanup func()
		t, cleanup, err = f.launch(ctx, cfg, logger)
		if cleanup != nil {
			defer cleanup()
		}
	} else {
		t, err = start(ctx, cfg)
	}
	close(starting)
	<-watched
	select {
	case s := <-interrupted:
		// ctx is cancelled: a command that did start is being killed
		// with its tree; wait for that before cleaning up.
		if err == nil {
			t.Wait()
		}
		sig, _ := s.(syscall.Signal)
		return cli.Exit(fmt.Sprintf("exec %s: interrupted by %s before the command ran", argv[0], unix.SignalName(sig)), 128+int(sig))
	default:
	}
	if err != nil {
		return fmt.Errorf("exec %s: %w", argv[0], err)
	}
	logger.Debug("started", "pid", t.PID())

	done := make(chan struct{})
	forwarding := make(chan struct{})
	go func() {
		defer close(forwarding)
		forwardSignals(t, sigs, done, logger)
	}()
	exit, err := t.Wait()
	close(done)
	<-forwarding

	if f.Stats {
		writeStats(streams.ErrOut, t.Stats())
	}
	if err != nil {
		return fmt.Errorf("exec %s: %w", argv[0], err)
	}
	logger.Debug("command ended", "status", exit.String())
	return cmdutil.ExitStatus(exit.ExitCode())
}

// forwardSignals sends each signal from sigs to the command until done is
// closed. Once the command itself has exited there is no one to pass a
// signal to, and nodeboot is still waiting for what the command left
// running (daemons, background jobs): the first signal goes to each of
// them, so they can stop cleanly, as they would get it from a terminal or
// a service manager; the next one kills them all.
func forwardSignals(t tracer, sigs <-chan os.Signal, done <-chan struct{}, logger *slog.Logger) {
	passedOn := false
	for {
		select {
		case <-done:
			return
		case s := <-sigs:
			sig, ok := s.(syscall.Signal)
			if !ok {
				continue
			}
			select {
			case <-t.Exited(): // a nil channel (never closed) falls to default
				if passedOn {
					logger.Warn("killing the processes the command left", "signal", sig.String())
					t.Kill()
					continue
				}
				passedOn = true
				pids := t.Processes()
				fromTerminal := terminalDelivered(sig)
				sent := 0
				for _, pid := range pids {
					if fromTerminal && samePgrp(pid) {
						continue // the terminal sent it to our group already
					}
					if err := unix.Kill(pid, sig); err == nil {
						sent++
					}
				}
				logger.Warn(fmt.Sprintf("the command has exited; %s passed on to the %d processes it left running; send it again to kill them", unix.SignalName(sig), len(pids)),
					"signal", sig.String(), "processes", pids, "sent", sent)
				continue
			default:
			}
			if terminalDelivered(sig) {
				// Ctrl-C or Ctrl-\ on the terminal: the kernel sent the
				// signal to the whole foreground process group, CMD
				// included. Sending it again would make a second
				// SIGINT, which many programs (k3s too) take as "exit now".
				logger.Debug("signal from the terminal reached the command directly", "signal", sig.String())
				continue
			}
			logger.Debug("forwarding signal", "signal", sig.String(), "pid", t.PID())
			if err := t.Signal(sig); err != nil {
				logger.Warn("forward signal", "signal", sig.String(), "pid", t.PID(), "err", err)
			}
		}
	}
}

// samePgrp reports whether pid is in nodeboot's process group.
func samePgrp(pid int) bool {
	pg, err := unix.Getpgid(pid)
	return err == nil && pg == unix.Getpgrp()
}

// terminalDelivered reports whether sig is one a terminal sends to its
// foreground process group (SIGINT, SIGQUIT) while nodeboot, and so CMD,
// are that group. os/signal does not say who sent a signal; a SIGINT sent
// with kill(1) to a foreground nodeboot is therefore not forwarded either.
var terminalDelivered = func(sig syscall.Signal) bool {
	if sig != syscall.SIGINT && sig != syscall.SIGQUIT {
		return false
	}
	pgrp, err := unix.IoctlGetInt(0, unix.TIOCGPGRP)
	return err == nil && pgrp == unix.Getpgrp()
}

// writeStats prints the --stats table on w: per syscall (FAILED: calls
// nodeboot made fail, fail closed), per rule, then the
// mode and the total number of stops.
func writeStats(w io.Writer, st interceptor.Stats) {
	tw := newTable(w)
	tw.row("SYSCALL", "STOPS", "REWRITES", "PASSES", "FAILED", "TIME")
	var total interceptor.SyscallStats
	for _, s := range sortedSyscalls(st.Syscalls) {
		tw.row(s.Name, s.Stops, s.Rewrites, s.Passes, s.Fails, roundDuration(s.Time))
		total.Stops += s.Stops
		total.Rewrites += s.Rewrites
		total.Passes += s.Passes
		total.Fails += s.Fails
		total.Time += s.Time
	}
	// The stops at no syscall (start, exec, fork and clone events,
	// signals, exits): without them the total fell short of the "stops"
	// line below.
	if st.Events > 0 {
		tw.row("(events)", st.Events, "-", "-", "-", "-")
		total.Stops += st.Events
	}
	tw.row("total", total.Stops, total.Rewrites, total.Passes, total.Fails, roundDuration(total.Time))
	tw.blank()
	tw.row("RULE", "HITS")
	for _, r := range st.Rules {
		tw.row(r.Rule, r.Hits)
	}
	if len(st.Rules) == 0 {
		tw.row("(no rules)", "")
	}
	tw.blank()
	tw.row("mode", st.Mode)
	tw.row("stops", st.Stops)
	tw.flush()
}
