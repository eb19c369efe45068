// Package progress shows the events of "nodeboot up" (node.Event) to a
// person or a pipeline, in one of three modes:
//
//   - TTY: one live line for the phase in progress, rewritten in place
//     ("\r" and clear-to-end-of-line) with a spinner and the seconds spent
//     so far, and a "✓" line, with the phase's duration, when the next
//     phase begins. The Printer is also an io.Writer: log lines written
//     through it clear the live line first and redraw it after, so they cut
//     in cleanly.
//   - Plain (not a terminal): one line per phase as it completes, and one
//     per restart or failure, with no control characters.
//   - JSON (--output json): each event as one JSON object per line, the
//     same objects as DATA-DIR/events.jsonl.
//
// Durations come from the events' times, not from the clock when they are
// printed, so replaying events.jsonl ("up --wait" follows the file) shows
// the same figures as the supervisor saw. All methods are safe for
// concurrent use; the live line is redrawn by one ticker goroutine, which
// Close stops.
package progress
