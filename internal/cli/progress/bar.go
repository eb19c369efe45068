package progress

import (
	"fmt"
	"io"
	"strings"
	"sync"
	"time"
)

// Bar is a download's progress on a terminal: one line rewritten in place,
//
//	Downloading k3s v1.36.3+k3s1 [=========>          ]  45%  32.1/71.3 MiB  5.2 MiB/s
//
// at most every barPeriod, and once more at the end. Use it only in TTY
// mode; elsewhere a download shows nothing until it is done.
type Bar struct {
	w     io.Writer
	label string
	now   func() time.Time

	mu          sync.Mutex
	start, last time.Time
	drawn       bool
}

// barPeriod bounds how often the bar is redrawn.
const barPeriod = 100 * time.Millisecond

// barWidth is the number of cells between the brackets.
const barWidth = 24

// NewBar returns a bar labelled label (e.g. "Downloading k3s v1.36.3+k3s1")
// that writes to w.
func NewBar(w io.Writer, label string) *Bar {
	return &Bar{w: w, label: label, now: time.Now}
}

// Update shows done of total bytes (total < 0: unknown). It may be called
// for every read; it draws at most every barPeriod, and always the last
// update (done == total).
func (b *Bar) Update(done, total int64) {
	b.mu.Lock()
	defer b.mu.Unlock()
	now := b.now()
	if b.start.IsZero() {
		b.start = now
	}
	if b.drawn && now.Sub(b.last) < barPeriod && done != total {
		return
	}
	b.last, b.drawn = now, true
	io.WriteString(b.w, clearLine+b.line(done, total, now.Sub(b.start)))
}

// Done ends the bar with a final line, text (e.g. "✓ Downloaded k3s ..."),
// in its place.
func (b *Bar) Done(text string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.drawn {
		io.WriteString(b.w, clearLine)
		b.drawn = false
	}
	if text != "" {
		fmt.Fprintf(b.w, " %s\n", text)
	}
}

// line is the bar's text for done of total after elapsed.
func (b *Bar) line(done, total int64, elapsed time.Duration) string {
	var s strings.Builder
	s.WriteString(" " + b.label + " ")
	if total > 0 {
		frac := min(float64(done)/float64(total), 1)
		cells := int(frac * barWidth)
		head := ""
		if cells < barWidth {
			head = ">"
		}
		fmt.Fprintf(&s, "[%s%s%s] %3d%%  %s/%s", strings.Repeat("=", cells), head, strings.Repeat(" ", barWidth-cells-len(head)),
			int(frac*100), mib(done), mib(total)+" MiB")
	} else {
		fmt.Fprintf(&s, "%s MiB", mib(done))
	}
	if secs := elapsed.Seconds(); secs >= 0.5 {
		fmt.Fprintf(&s, "  %s MiB/s", mib(int64(float64(done)/secs)))
	}
	return s.String()
}

// mib is n bytes in MiB with one decimal.
func mib(n int64) string { return fmt.Sprintf("%.1f", float64(n)/(1<<20)) }
