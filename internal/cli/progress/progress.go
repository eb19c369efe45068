package progress

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"github.com/nodeboot/nodeboot/node"
)

// Mode selects how events are shown.
type Mode int

const (
	Plain Mode = iota // one line per phase, no control characters
	TTY               // a live line rewritten in place
	JSON              // one JSON event per line
)

// ModeFor picks the mode for output ("text" or "json") written to w: TTY
// when w is a terminal.
func ModeFor(output string, w io.Writer) Mode {
	if output == "json" {
		return JSON
	}
	if f, ok := w.(*os.File); ok {
		if _, err := unix.IoctlGetTermios(int(f.Fd()), unix.TCGETS); err == nil {
			return TTY
		}
	}
	return Plain
}

// spinner frames of the live line.
var spinner = []string{"⠋", "⠙", "⠹", "⠸", "⠼", "⠴", "⠦", "⠧", "⠇", "⠏"}

// clearLine returns the cursor to column 0 and erases the line.
const clearLine = "\r\x1b[K"

// Printer renders events.
type Printer struct {
	// K3sLog is the path of k3s's log (DATA-DIR/logs/k3s.log), named
	// with the lines of it an exit shows. Set it before the first event.
	K3sLog string

	w    io.Writer
	mode Mode
	// shownLog is the last set of log lines shown, not shown again when
	// giving up right after the exit that showed them.
	shownLog []string

	mu sync.Mutex
	// pending is the live line's text ("" when nothing is in progress),
	// since when, and detail the latest health or manifest message.
	pending string
	since   time.Time
	detail  string
	frame   int
	drawn   bool // the live line is on the screen
	now     func() time.Time

	stop chan struct{}
	done chan struct{}
}

// New returns a Printer writing to w. start is when bringing the node up
// began (the first phase is measured from it).
func New(w io.Writer, mode Mode, start time.Time) *Printer {
	p := &Printer{w: w, mode: mode, since: start, now: time.Now, stop: make(chan struct{}), done: make(chan struct{})}
	if mode == TTY {
		go p.tick()
	} else {
		close(p.done)
	}
	return p
}

// Close stops the live line and leaves the cursor at the start of a fresh
// line.
func (p *Printer) Close() {
	p.mu.Lock()
	select {
	case <-p.stop:
		p.mu.Unlock()
		return
	default:
		close(p.stop)
	}
	p.mu.Unlock()
	<-p.done
	p.mu.Lock()
	defer p.mu.Unlock()
	p.erase()
	p.pending = ""
}

func (p *Printer) tick() {
	defer close(p.done)
	t := time.NewTicker(200 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-p.stop:
			return
		case <-t.C:
			p.mu.Lock()
			p.frame++
			p.draw()
			p.mu.Unlock()
		}
	}
}

// Write prints log output b above the live line. Use the Printer as the
// writer of a logger that shares the terminal.
func (p *Printer) Write(b []byte) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.erase()
	n, err := p.w.Write(b)
	p.draw()
	return n, err
}

// erase removes the live line. Precondition: p.mu held.
func (p *Printer) erase() {
	if p.drawn {
		io.WriteString(p.w, clearLine)
		p.drawn = false
	}
}

// draw (re)writes the live line. Precondition: p.mu held.
func (p *Printer) draw() {
	if p.mode != TTY || p.pending == "" {
		return
	}
	select {
	case <-p.stop:
		return
	default:
	}
	// Events replayed from events.jsonl may lie ahead of this clock.
	elapsed := max(p.now().Sub(p.since), 0).Truncate(time.Second)
	line := fmt.Sprintf(" %s %s (%s)", spinner[p.frame%len(spinner)], p.pending, elapsed)
	if p.detail != "" {
		line += ": " + p.detail
	}
	io.WriteString(p.w, clearLine+line)
	p.drawn = true
}

// Event shows e.
func (p *Printer) Event(e node.Event) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.mode == JSON {
		b, err := json.Marshal(e)
		if err == nil {
			p.w.Write(append(b, '\n'))
		}
		return
	}
	at := e.Time
	if at.IsZero() {
		at = p.now()
	}
	switch e.Kind {
	case node.KindPhase:
		p.phase(e, at)
	case "started":
		p.finish(fmt.Sprintf("Started k3s (pid %d)", e.PID), at)
		p.begin("Waiting for the API", at)
	case "exited":
		p.line("!", fmt.Sprintf("k3s exited: %s", e.Reason)+p.logHeader(e.Log))
		p.logLines(e.Log)
	case "unhealthy":
		p.line("!", fmt.Sprintf("k3s %s: %s", e.Kind, e.Reason))
	case "excused":
		p.line("!", "Not restarting k3s: "+e.Reason)
	case "restarting":
		p.line("!", fmt.Sprintf("Restarting k3s in %s (restart %d): %s", orDash(e.Delay), e.Restarts, e.Reason))
		p.begin("Restarting k3s", at)
	case "stopping":
		if e.Reason != "shutdown" {
			p.line("!", "Stopping k3s: "+e.Reason)
		}
		p.begin("Stopping k3s", at)
	case "stopped":
		p.finish("Stopped k3s"+paren(e.Reason), at)
	case "gave-up":
		if len(e.Log) > 0 && slices.Equal(e.Log, p.shownLog) {
			p.line("✗", "Gave up: "+e.Reason+p.logHeader(nil))
		} else {
			p.line("✗", "Gave up: "+e.Reason+p.logHeader(e.Log))
			p.logLines(e.Log)
		}
		p.pending = ""
	case node.KindHealth:
		if e.Health != nil && p.pending != "" {
			p.detail = healthText(e.Health)
			p.draw()
		}
	case node.KindManifests:
		if p.mode == TTY {
			p.detail = e.Message
			p.draw()
		}
	case node.KindError:
		p.line("✗", e.Message)
	}
}

// Note shows a status message of the command itself as a " • text" line,
// above the live line (nothing in JSON mode, whose stream is events
// only): the one way, on a terminal and off it, that up says something
// that is not an event.
func (p *Printer) Note(text string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.mode == JSON {
		return
	}
	p.line("•", text)
	p.draw()
}

// phase shows the arrival of a phase.
func (p *Printer) phase(e node.Event, at time.Time) {
	switch e.Phase {
	case node.PhaseSeeding:
		p.begin("Seeding the fake tree", at)
	case node.PhaseStarting:
		p.finish("Seeded the fake tree"+paren(e.Message), at)
		p.begin("Starting k3s", at)
	case node.PhaseAPIReachable:
		p.finish("API reachable", at)
		p.begin("Waiting for the node to register", at)
	case node.PhaseRegistered:
		p.finish("Node registered", at)
		p.begin("Waiting for the node to be Ready", at)
	case node.PhaseNodeReady:
		p.finish("Node Ready", at)
		p.begin("Applying manifests", at)
	case node.PhaseReady:
		p.finish("Node Ready", at)
	case node.PhaseManifestsApplied:
		p.finish("Manifests applied"+paren(e.Message), at)
	case node.PhaseManifestsFailed:
		p.line("✗", "Applying manifests failed: "+e.Message)
		p.pending = ""
	case node.PhaseFailed:
		p.pending = ""
	}
}

// begin makes text the live line, measured from at.
func (p *Printer) begin(text string, at time.Time) {
	p.pending, p.since, p.detail = text, at, ""
	p.draw()
}

// finish ends the phase in progress with a ✓ line for text.
func (p *Printer) finish(text string, at time.Time) {
	d := at.Sub(p.since)
	if d < 0 {
		d = 0
	}
	p.pending = ""
	p.line("✓", fmt.Sprintf("%s (%s)", text, round(d)))
}

// logHeader ends the line that reports an exit: where k3s's log is, and
// that its last meaningful lines follow (or were shown above: log nil).
func (p *Printer) logHeader(log []string) string {
	where := "k3s's log"
	if p.K3sLog != "" {
		where += " " + p.K3sLog
	}
	switch {
	case len(log) > 0:
		return "; " + where + " ends:"
	case len(p.shownLog) > 0:
		return "; " + where + " ends as shown above"
	case p.K3sLog != "":
		return "; see " + where
	}
	return ""
}

// logLines prints lines of k3s's log, indented under the line that
// reported the exit.
func (p *Printer) logLines(lines []string) {
	for _, l := range lines {
		fmt.Fprintf(p.w, "     %s\n", l)
	}
	if len(lines) > 0 {
		p.shownLog = lines
	}
}

// line prints one finished line.
func (p *Printer) line(mark, text string) {
	p.erase()
	fmt.Fprintf(p.w, " %s %s\n", mark, text)
}

// healthText is the live line's detail for a health report.
func healthText(h *node.Health) string {
	parts := []string{string(h.State)}
	if h.Reason != "" {
		parts = append(parts, h.Reason)
	}
	s := strings.Join(parts, " ")
	if h.Message != "" {
		s += " (" + oneLine(h.Message, 80) + ")"
	}
	return s
}

// oneLine cuts s to n runes on one line.
func oneLine(s string, n int) string {
	s = strings.Join(strings.Fields(s), " ")
	if r := []rune(s); len(r) > n {
		return string(r[:n-1]) + "…"
	}
	return s
}

func round(d time.Duration) time.Duration {
	if d < time.Second {
		return d.Round(time.Millisecond)
	}
	return d.Round(100 * time.Millisecond)
}

func paren(s string) string {
	if s == "" {
		return ""
	}
	return " (" + s + ")"
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
