//go:build !linux

package bootstrap

import (
	"context"
	"errors"
	"fmt"

	"github.com/nodeboot/nodeboot/profile"
)

// Seed is only implemented on Linux: the tree is walked with openat and
// O_NOFOLLOW, and the interceptor that serves it is Linux-only.
func Seed(ctx context.Context, root string, p *profile.Profile, opts SeedOptions) (SeedReport, error) {
	return SeedReport{}, fmt.Errorf("seed %s: %w", root, errors.ErrUnsupported)
}
