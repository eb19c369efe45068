//go:build !unix

package safefs

const (
	oNonblock = 0
	oNoctty   = 0
)
