//go:build unix

package safefs

import "syscall"

// oNonblock makes opening a FIFO return at once instead of waiting for a
// writer; oNoctty keeps a terminal from becoming ours.
const (
	oNonblock = syscall.O_NONBLOCK
	oNoctty   = syscall.O_NOCTTY
)
