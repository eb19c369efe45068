package cmdutil

import (
	"errors"
	"io/fs"
	"syscall"

	"github.com/nodeboot/nodeboot/internal/safefs"
	"github.com/nodeboot/nodeboot/profile"
)

// LoadProfile loads the profile a --profile flag names (seed, exec, up,
// discover --base, profile show). Every fault of the input is a usage
// error (exit 2), as for any other bad flag value: a name or file that does
// not exist, one that names no regular file (a FIFO would hang the read,
// /dev/zero never end it), a profile that does not parse or validate. Only
// a file that cannot be read (permissions, I/O) is a failure (exit 1).
func LoadProfile(ref string) (*profile.Profile, error) {
	p, err := profile.Load(ref)
	if err == nil {
		return p, nil
	}
	if errors.Is(err, profile.ErrNotFound) || errors.Is(err, fs.ErrNotExist) || errors.Is(err, safefs.ErrNotRegular) ||
		errors.Is(err, profile.ErrInvalid) || errors.Is(err, syscall.EISDIR) || ref == "" {
		// The message names the profile already: `profile "k4s": no
		// built-in profile by that name (...)`.
		return nil, UsageErrorf("%v", err)
	}
	return nil, err
}
