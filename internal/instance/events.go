package instance

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"sync"

	"golang.org/x/sys/unix"
)

// EventLog appends events to events.jsonl. It is safe for concurrent use.
type EventLog struct {
	mu sync.Mutex
	f  *os.File
}

// OpenEvents opens events.jsonl for appending. With truncate, the events of
// an earlier run are dropped first: each "up" starts a new list, which
// "up --wait" follows from its start.
func (in *Instance) OpenEvents(truncate bool) (*EventLog, error) {
	flags := os.O_WRONLY | os.O_APPEND | os.O_CREATE | unix.O_NOFOLLOW | unix.O_CLOEXEC
	if truncate {
		flags |= os.O_TRUNC
	}
	f, err := os.OpenFile(in.EventsPath(), flags, 0o644)
	if err != nil {
		return nil, fmt.Errorf("open events %s: %w", in.EventsPath(), err)
	}
	return &EventLog{f: f}, nil
}

// Append writes e, encoded as JSON (package node's Event), as one line,
// with one write(2) on an O_APPEND file. A reader may still catch a line
// half written; ReadEvents stops at the last complete line.
func (l *EventLog) Append(e any) error {
	b, err := json.Marshal(e)
	if err != nil {
		return fmt.Errorf("encode event: %w", err)
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if _, err := l.f.Write(append(b, '\n')); err != nil {
		return fmt.Errorf("append event: %w", err)
	}
	return nil
}

// Close closes the file.
func (l *EventLog) Close() error { return l.f.Close() }

// ReadEvents returns the complete lines after byte offset off of
// events.jsonl (without their newline) and the offset after the last of
// them; pass it to the next call to follow the file. A missing file has no
// lines.
func (in *Instance) ReadEvents(off int64) ([][]byte, int64, error) {
	f, err := os.OpenFile(in.EventsPath(), os.O_RDONLY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, off, nil
	}
	if err != nil {
		return nil, off, fmt.Errorf("read events: %w", err)
	}
	defer f.Close()
	if fi, err := f.Stat(); err == nil && fi.Size() < off {
		off = 0 // truncated by a new "up"
	}
	if _, err := f.Seek(off, io.SeekStart); err != nil {
		return nil, off, fmt.Errorf("read events: %w", err)
	}
	b, err := io.ReadAll(f)
	if err != nil {
		return nil, off, fmt.Errorf("read events: %w", err)
	}
	var lines [][]byte
	for {
		i := bytes.IndexByte(b, '\n')
		if i < 0 {
			break
		}
		lines = append(lines, b[:i])
		b = b[i+1:]
		off += int64(i + 1)
	}
	return lines, off, nil
}
