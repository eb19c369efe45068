package cmdutil

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"

	"github.com/nodeboot/nodeboot/bootstrap"
	"github.com/nodeboot/nodeboot/internal/instance"
)

// ErrNoK3s is FindK3s's error when there is no k3s to run.
var ErrNoK3s = errors.New("no k3s")

// FindK3s returns the k3s binary "nodeboot up" runs, as an absolute path:
// flag (up's --k3s, or NODEBOOT_K3S) when set, else k3s on $PATH, else
// DATA-DIR/bin/k3s (what "nodeboot install" puts there) when it is an
// executable file. A flag that names no executable is a usage error; no
// k3s anywhere is an error that is ErrNoK3s and says how to get one.
func FindK3s(flag string, in *instance.Instance) (string, error) {
	if flag != "" {
		path, err := exec.LookPath(flag)
		if err != nil {
			return "", UsageErrorf("--k3s %q: %v", flag, errors.Unwrap(err))
		}
		return filepath.Abs(path)
	}
	if path, err := exec.LookPath("k3s"); err == nil {
		return filepath.Abs(path)
	}
	bin := in.K3sBinary()
	fi, err := os.Stat(bin)
	switch {
	case err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0:
		return bin, nil
	case err == nil:
		return "", fmt.Errorf("%s is not an executable file (mode %s); remove it and run `nodeboot install --data-dir %s`", bin, fi.Mode(), in.Dir)
	case !errors.Is(err, fs.ErrNotExist):
		return "", fmt.Errorf("%s: %w", bin, err)
	}
	return "", fmt.Errorf("%w: not on $PATH and not at %s; run `nodeboot install --data-dir %s` (downloads k3s %s, the tested release, sha256-checked) or pass --k3s PATH (or set NODEBOOT_K3S=PATH)",
		ErrNoK3s, bin, in.Dir, bootstrap.DefaultK3sVersion)
}
