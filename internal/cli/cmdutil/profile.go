package cmdutil

import (
	"errors"
	"io/fs"

	"github.com/nodeboot/nodeboot/internal/safefs"
	"github.com/nodeboot/nodeboot/profile"
)

// LoadProfile loads the profile a --profile flag names (seed, exec, up,
// discover --base, profile show). A name or file that does not exist, or
// names no regular file (a FIFO would hang the read, /dev/zero never end
// it), is a usage error (exit 2); a profile that does not parse is a
// failure (exit 1).
func LoadProfile(ref string) (*profile.Profile, error) {
	p, err := profile.Load(ref)
	if err == nil {
		return p, nil
	}
	if errors.Is(err, profile.ErrNotFound) || errors.Is(err, fs.ErrNotExist) || errors.Is(err, safefs.ErrNotRegular) || ref == "" {
		// The message names the profile already: `profile "k4s": no
		// built-in profile by that name (...)`.
		return nil, UsageErrorf("%v", err)
	}
	return nil, err
}
