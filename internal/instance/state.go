package instance

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
)

// WriteState replaces state.json with s encoded as JSON (package node's
// State: the format is node's, the file this package's).
func (in *Instance) WriteState(s any) error {
	b, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return fmt.Errorf("encode state: %w", err)
	}
	return writeAtomic(in.StatePath(), append(b, '\n'), 0o644)
}

// ErrNoState means state.json does not exist: "nodeboot up" never ran with
// this data directory.
var ErrNoState = errors.New("no state")

// ReadState decodes state.json into s. A missing file is ErrNoState.
func (in *Instance) ReadState(s any) error {
	b, err := readNoFollow(in.StatePath())
	if errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("%s: %w", in.StatePath(), ErrNoState)
	}
	if err != nil {
		return fmt.Errorf("read state: %w", err)
	}
	if err := json.Unmarshal(b, s); err != nil {
		return fmt.Errorf("read state %s: %w", in.StatePath(), err)
	}
	return nil
}
