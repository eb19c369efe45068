package bootstrap

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"syscall"
	"time"

	"github.com/nodeboot/nodeboot/interceptor/rules"

	"golang.org/x/sys/unix"

	"github.com/nodeboot/nodeboot/interceptor"
	"github.com/nodeboot/nodeboot/internal/vkernel"
	"github.com/nodeboot/nodeboot/profile"
)

// LaunchConfig describes a command to run on a profile's fake kernel.
type LaunchConfig struct {
	// Profile is the (loaded) profile; required.
	Profile *profile.Profile
	// Root is the tree's directory: created and seeded with Seed (existing
	// entries are kept), and the virtual kernel's files go below it.
	Root string
	// Seed tunes the seeding.
	Seed SeedOptions
	// Seeded, when set, is the report of the Seed of Root (with Profile)
	// that the caller ran itself: Launch seeds no more, and uses the
	// report's Root. A supervisor seeds once per start of the node and
	// launches each incarnation on that tree.
	Seeded *SeedReport

	// Path, Args, Env, Dir, Stdin, Stdout and Stderr are those of
	// interceptor.Config.
	Path   string
	Args   []string
	Env    []string
	Dir    string
	Stdin  io.Reader
	Stdout io.Writer
	Stderr io.Writer

	// Mode picks seccomp-BPF or stop-every-syscall tracing.
	Mode interceptor.Mode
	// Rules are merged over the profile's: a redirect for the same guest
	// path, or an fstype rule for the same path or type, wins (the command
	// line's flags go here).
	Rules rules.Rules
	// Cgroup is the emulated cgroup the command starts in ("" is the root).
	Cgroup string

	Logger    *slog.Logger
	OnRewrite func(interceptor.Rewrite)
	// OnFault is interceptor.Config.OnFault: some calls fail from now on
	// (the tree was moved away); the caller should stop the command.
	OnFault func(interceptor.Fault)
	// Observe is interceptor.Config.Observe (nodeboot discover).
	Observe func(rules.Observation)
	KeepEnv bool
	Setpgid bool
	// KeepShims makes the trace and the virtual kernel outlive the
	// command, for a supervisor that restarts it: Process.StopKeeping
	// ends the command's processes but leaves containerd's shims and what
	// runs under them (the containers) running and traced, and
	// Process.Respawn starts the command again in the same trace, on the
	// same kernel (its cgroups and their members kept), as k3s's
	// containerd reconnects to the shims it left. Stop and Close still end
	// everything.
	KeepShims bool
}

// Process is a command launched by Launch, or started again by Respawn.
// The Processes of one Launch and its Respawns share one trace and one
// virtual kernel.
type Process struct {
	tracer *interceptor.Tracer
	root   *interceptor.Root // this command
	kernel *vkernel.Kernel
	seed   SeedReport
	rules  rules.Rules
	keep   bool
	trace  *traceEnd
}

// traceEnd is how the trace ended, shared by the Processes of one Launch.
type traceEnd struct {
	done chan struct{} // closed when every traced process has ended
	err  error
}

// Launch seeds cfg.Root with cfg.Profile (unless cfg.Seeded), builds the virtual kernel that
// serves the profile's dynamic entries there, and starts the command
// traced with the profile's rules (cfg.Rules merged over them) and the
// kernel as its FileServer. It returns once the command has been exec'd.
// Cancelling ctx kills every traced process. The caller must Close the
// Process once it is done with it.
func Launch(ctx context.Context, cfg LaunchConfig) (*Process, error) {
	if cfg.Profile == nil {
		return nil, errors.New("launch: no profile")
	}
	var rep SeedReport
	if cfg.Seeded != nil {
		rep = *cfg.Seeded
	} else {
		var err error
		if rep, err = Seed(ctx, cfg.Root, cfg.Profile, cfg.Seed); err != nil {
			return nil, fmt.Errorf("launch: %w", err)
		}
	}
	root := rep.Root
	rules, err := cfg.Profile.Rules(root)
	if err != nil {
		return nil, fmt.Errorf("launch: %w", err)
	}
	rules = rules.Merge(cfg.Rules)
	k, err := vkernel.New(root, cfg.Profile, vkernel.Options{FSTypes: rules.FSTypes, Cgroup: cfg.Cgroup, Logger: cfg.Logger})
	if err != nil {
		return nil, fmt.Errorf("launch: %w", err)
	}
	rules = rules.Merge(k.Rules())
	t, err := interceptor.Start(ctx, interceptor.Config{
		Path: cfg.Path, Args: cfg.Args, Env: cfg.Env, Dir: cfg.Dir,
		Stdin: cfg.Stdin, Stdout: cfg.Stdout, Stderr: cfg.Stderr,
		Rules: rules, Mode: cfg.Mode, KeepEnv: cfg.KeepEnv, Setpgid: cfg.Setpgid,
		AllowIOUring: cfg.Profile.AllowIOUring,
		Logger:       cfg.Logger, OnRewrite: cfg.OnRewrite, Observe: cfg.Observe, OnFault: cfg.OnFault,
		Files: k, Persist: cfg.KeepShims,
	})
	if err != nil {
		k.Close()
		return nil, fmt.Errorf("launch %s: %w", cfg.Path, err)
	}
	p := &Process{tracer: t, root: t.First(), kernel: k, seed: rep, rules: rules, keep: cfg.KeepShims,
		trace: &traceEnd{done: make(chan struct{})}}
	go func() {
		_, p.trace.err = t.Wait()
		close(p.trace.done)
	}()
	return p, nil
}

// PID is the process id of the command.
func (p *Process) PID() int { return p.root.PID() }

// Wait waits until the command has exited and every process of the trace
// has ended, and returns how the command ended. It may be called more
// than once. With KeepShims, the trace ends only with Stop, Close or Kill.
func (p *Process) Wait() (interceptor.Exit, error) {
	<-p.trace.done
	return p.root.Result(), p.trace.err
}

// Done is closed when Wait would return.
func (p *Process) Done() <-chan struct{} { return p.trace.done }

// Exited is closed when the command itself has exited (its children may
// still run).
func (p *Process) Exited() <-chan struct{} { return p.root.Exited() }

// Signal sends sig to the command (not to its children).
func (p *Process) Signal(sig syscall.Signal) error { return p.root.Signal(sig) }

// KeepsShims says whether p was launched with KeepShims: StopKeeping and
// Respawn restart the command without ending containerd's shims.
func (p *Process) KeepsShims() bool { return p.keep }

// Stop ends the whole traced tree: SIGTERM to every traced process, then,
// if some are left after grace (or when ctx ends first), SIGKILL to all.
// It returns once they are gone, with how the command ended. With
// KeepShims, that includes the shims, and the trace ends: no Respawn
// after it.
func (p *Process) Stop(ctx context.Context, grace time.Duration) (interceptor.Exit, error) {
	p.tracer.Release()
	select {
	case <-p.trace.done:
		return p.Wait()
	default:
	}
	p.signalAll(unix.SIGTERM)
	timer := time.NewTimer(grace)
	defer timer.Stop()
	select {
	case <-p.trace.done:
	case <-timer.C:
		p.tracer.Kill()
	case <-ctx.Done():
		p.tracer.Kill()
	}
	return p.Wait()
}

// Processes lists the traced processes (thread group ids), each once.
func (p *Process) Processes() []int { return p.tracer.Processes() }

// signalAll sends sig once to every traced process, whatever its process
// group or session (containerd's shims have sessions of their own).
func (p *Process) signalAll(sig unix.Signal) {
	p.tracer.SignalAll(sig)
}

// Stats returns a snapshot of the tracer's counters.
func (p *Process) Stats() interceptor.Stats { return p.tracer.Stats() }

// Kernel is the virtual kernel serving the dynamic entries.
func (p *Process) Kernel() *vkernel.Kernel { return p.kernel }

// SeedReport says what seeding the root did.
func (p *Process) SeedReport() SeedReport { return p.seed }

// Rules are the rules in effect (profile, cfg.Rules and the kernel's).
func (p *Process) Rules() rules.Rules { return p.rules }

// Close kills what is still running, waits for it, and closes the virtual
// kernel (the /dev/kmsg FIFO and its descriptors). The tree stays. With
// KeepShims, it ends the trace of every Process of the Launch.
func (p *Process) Close() error {
	p.tracer.Release()
	select {
	case <-p.trace.done:
	default:
		p.tracer.Kill()
		<-p.trace.done
	}
	return p.kernel.Close()
}

// Kill sends SIGKILL to every traced process (with KeepShims: and lets
// the trace end).
func (p *Process) Kill() {
	p.tracer.Release()
	p.tracer.Kill()
}
