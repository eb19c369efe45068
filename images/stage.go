package images

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
)

// Stage puts the archive src at dst, through a temporary name that k3s's
// import ignores (it imports only names ending in an archive extension),
// renamed into place, so that k3s, which imports every archive that
// appears in its images directory, never reads half of one. With link it
// makes a hard link when both are on one filesystem (an archive nodeboot
// owns: no copy of a large file), else, and always without link, a copy
// (a user's file, which may change after it was loaded). An existing dst
// is replaced.
func Stage(src, dst string, link bool) error {
	dir := filepath.Dir(dst)
	tmp := filepath.Join(dir, "."+filepath.Base(dst)+".tmp-"+fmt.Sprint(os.Getpid()))
	os.Remove(tmp) // one a killed run of ours left
	if !link || os.Link(src, tmp) != nil {
		if err := copyFile(src, tmp); err != nil {
			os.Remove(tmp)
			return fmt.Errorf("stage %s in %s: %w", src, dir, err)
		}
	}
	if err := os.Rename(tmp, dst); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("stage %s in %s: %w", src, dir, err)
	}
	return nil
}

// copyFile copies src to a new file dst (0644), synced.
func copyFile(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	if err := out.Sync(); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}
