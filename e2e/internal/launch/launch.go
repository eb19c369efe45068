package launch

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"runtime/pprof"
	"syscall"
	"time"

	"github.com/nodeboot/nodeboot/interceptor"
)

// handle is the part of bootstrap.Launch's result that Main uses.
type handle interface {
	Wait() (interceptor.Exit, error)
	Stop() error
	Stats() interceptor.Stats
}

// Request is what start needs.
type Request struct {
	Root           string
	Argv           []string
	Stdout, Stderr io.Writer
}

// Report is the JSON written to --stats.
type Report struct {
	Running  bool              `json:"running"`
	Exit     string            `json:"exit,omitempty"`
	Stats    interceptor.Stats `json:"stats"`
	Rewrites uint64            `json:"rewrites"`
	Time     time.Time         `json:"time"`
}

// TotalRewrites sums the per-syscall rewrite counters.
func TotalRewrites(s interceptor.Stats) uint64 {
	var n uint64
	for _, c := range s.Syscalls {
		n += c.Rewrites
	}
	return n
}

// ReadReport reads a --stats file.
func ReadReport(name string) (Report, error) {
	var r Report
	b, err := os.ReadFile(name)
	if err != nil {
		return r, err
	}
	return r, json.Unmarshal(b, &r)
}

func writeReport(name string, r Report) error {
	r.Rewrites = TotalRewrites(r.Stats)
	r.Time = time.Now()
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	tmp := filepath.Join(filepath.Dir(name), "."+filepath.Base(name)+".tmp")
	if err := os.WriteFile(tmp, b, 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, name)
}

// Main runs `launch --root DIR [--stats FILE] -- CMD [ARGS...]` and returns
// the exit code: CMD's own, 1 on failure, 2 on bad usage.
func Main(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("launch", flag.ContinueOnError)
	fs.SetOutput(stderr)
	root := fs.String("root", "", "seed the k3s profile into `DIR` (required)")
	stats := fs.String("stats", "", "keep the interceptor counters as JSON in `FILE`")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *root == "" || fs.NArg() == 0 {
		fmt.Fprintln(stderr, "usage: launch --root DIR [--stats FILE] -- CMD [ARGS...]")
		return 2
	}
	// NODEBOOT_LAUNCH_CPUPROFILE=FILE writes a CPU profile of the tracer
	// and the vkernel (both run in this process) when the command ends:
	// how pod starts under nodeboot are profiled (docs/e2e.md).
	if name := os.Getenv("NODEBOOT_LAUNCH_CPUPROFILE"); name != "" {
		stop, err := startCPUProfile(name)
		if err != nil {
			fmt.Fprintf(stderr, "launch: %v\n", err)
			return 1
		}
		defer stop()
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	h, err := start(ctx, Request{Root: *root, Argv: fs.Args(), Stdout: stdout, Stderr: stderr})
	if err != nil {
		fmt.Fprintf(stderr, "launch: %v\n", err)
		return 1
	}
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT)
	done := make(chan struct{})
	go func() {
		ticks := 0
		tick := time.NewTicker(5 * time.Second)
		defer tick.Stop()
		for {
			select {
			case <-done:
				return
			case <-sigs:
				if err := h.Stop(); err != nil {
					fmt.Fprintf(stderr, "launch: stop: %v\n", err)
				}
			case <-tick.C:
				if *stats != "" {
					_ = writeReport(*stats, Report{Running: true, Stats: h.Stats()})
				}
				if name := os.Getenv("NODEBOOT_LAUNCH_CPUPROFILE"); name != "" {
					// Counters every tick: their differences say what the
					// tracer did in a window (pods idle, a pod starting).
					ticks++
					_ = writeReport(fmt.Sprintf("%s.%d.stats-%03d.json", name, os.Getpid(), ticks), Report{Running: true, Stats: h.Stats()})
				}
			}
		}
	}()
	exit, err := h.Wait()
	close(done)
	if name := os.Getenv("NODEBOOT_LAUNCH_CPUPROFILE"); name != "" {
		// The counters next to the profile: stops per syscall say where
		// the tracer's time goes.
		_ = writeReport(fmt.Sprintf("%s.%d.stats.json", name, os.Getpid()), Report{Exit: exit.String(), Stats: h.Stats()})
	}
	if *stats != "" {
		if werr := writeReport(*stats, Report{Exit: exit.String(), Stats: h.Stats()}); werr != nil {
			fmt.Fprintf(stderr, "launch: write stats: %v\n", werr)
		}
	}
	if err != nil {
		fmt.Fprintf(stderr, "launch: %v\n", err)
		return 1
	}
	return exit.ExitCode()
}

// startCPUProfile starts a CPU profile written to name (with the pid
// added, since a test may run several launchers) and returns what stops
// it.
func startCPUProfile(name string) (func(), error) {
	name = fmt.Sprintf("%s.%d", name, os.Getpid())
	f, err := os.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return nil, fmt.Errorf("cpu profile: %w", err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, fmt.Errorf("cpu profile %s: %w", name, err)
	}
	return func() {
		pprof.StopCPUProfile()
		f.Close()
	}, nil
}
