package instance

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"slices"
	"sort"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/nodeboot/nodeboot/internal/safefs"
)

// markerName is the file that makes a directory a nodeboot data dir. Open
// writes it into an empty directory (or one an earlier nodeboot made), and
// "down --purge" removes nothing from a directory without it.
const markerName = "nodeboot.marker"

// markerHeader is the marker's first line; markerCreated follows it when
// nodeboot made the directory itself (purge may then remove it).
const (
	markerHeader  = "# nodeboot data dir: nodeboot made what the layout below names, and \"nodeboot down --purge\" removes it.\n"
	markerLayout  = "# layout: root/ k3s/ images/ bin/ logs/ kubeconfig.yaml nodeboot.lock nodeboot.pid state.json events.jsonl nodeboot.marker\n"
	markerCreated = "created-dir: true\n"
)

// layout are the entries nodeboot makes in a data dir.
var layout = []string{rootName, k3sName, imagesName, binName, logsName, kubeconfigName, lockName, pidName, stateName, eventsName, markerName}

// isOurs reports whether name is an entry nodeboot makes in a data dir,
// temporary files of its atomic writes included.
func isOurs(name string) bool {
	if slices.Contains(layout, name) {
		return true
	}
	// writeAtomic's temporary files: .state.json.tmp-*, .nodeboot.pid.tmp-*
	for _, n := range []string{stateName, pidName} {
		if strings.HasPrefix(name, "."+n+".tmp-") {
			return true
		}
	}
	return false
}

// ErrNotDataDir: a directory is not a data dir nodeboot made.
var ErrNotDataDir = errors.New("not a nodeboot data dir")

// notOursError says why d is not a nodeboot data dir.
type notOursError struct {
	dir    string
	others []string // what is in it that nodeboot did not make
}

func (e *notOursError) Error() string {
	shown := e.others
	if len(shown) > 5 {
		shown = append(shown[:5:5], fmt.Sprintf("and %d more", len(e.others)-5))
	}
	return fmt.Sprintf("data dir %s is not empty and has no %s, so nodeboot did not make it (it holds %s); nodeboot will not adopt it, and down --purge would have removed what is there: pass a new or empty --data-dir",
		e.dir, markerName, strings.Join(shown, ", "))
}

// Is indicates that a notOursError is ErrNotDataDir.
func (e *notOursError) Is(target error) bool { return target == ErrNotDataDir }

// marker reads d's marker: whether it is there, and whether it says that
// nodeboot made the directory.
func marker(d *safefs.Dir) (present, createdDir bool, err error) {
	b, err := safefs.ReadFileAt(d.FD(), markerName, d.Path()+"/"+markerName, 4096)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return false, false, nil
	case err != nil:
		return false, false, fmt.Errorf("data dir marker: %w", err)
	case !bytes.HasPrefix(b, []byte(markerHeader)):
		return false, false, fmt.Errorf("data dir marker %s/%s was not written by nodeboot; remove it, or pass another --data-dir", d.Path(), markerName)
	}
	return true, bytes.Contains(b, []byte("\n"+markerCreated)), nil
}

// ownedByLayout checks the entries of d against the layout: it returns
// what nodeboot did not make, and whether the directory has the lock file
// that every earlier "up" made (a data dir from before the marker).
func ownedByLayout(d *safefs.Dir) (others []string, hasLock bool, err error) {
	names, err := safefs.ReadDirNames(d.FD())
	if err != nil {
		return nil, false, fmt.Errorf("list data dir %s: %w", d.Path(), err)
	}
	sort.Strings(names)
	for _, n := range names {
		switch {
		case n == lockName:
			hasLock = true
		case !isOurs(n):
			others = append(others, n)
		}
	}
	return others, hasLock, nil
}

// claim makes d a nodeboot data dir: it has the marker already, or it is
// empty (or an earlier nodeboot's, see ownedByLayout), and gets one.
func claim(d *safefs.Dir) error {
	present, err := claimable(d)
	if err != nil || present {
		return err
	}
	content := markerHeader + markerLayout
	if d.Created() {
		content += markerCreated
	}
	if err := safefs.WriteFileAt(d.FD(), markerName, []byte(content), 0o644,
		safefs.WriteOptions{Sync: true, NoReplace: true, Path: d.Path() + "/" + markerName}); err != nil && !errors.Is(err, fs.ErrExist) {
		return fmt.Errorf("mark data dir: %w", err)
	}
	return nil
}

// claimable says whether claim may make d a data dir, changing nothing:
// present when it has the marker already, nil when it is empty or an
// earlier nodeboot's, a *notOursError otherwise.
func claimable(d *safefs.Dir) (present bool, err error) {
	present, _, err = marker(d)
	if err != nil || present {
		return present, err
	}
	others, hasLock, err := ownedByLayout(d)
	if err != nil {
		return false, err
	}
	names, err := safefs.ReadDirNames(d.FD())
	if err != nil {
		return false, fmt.Errorf("list data dir %s: %w", d.Path(), err)
	}
	if len(others) > 0 || (len(names) > 0 && !hasLock) {
		if len(others) == 0 {
			// Only names of the layout, but no lock file: not made by
			// "up" (a user's root/ and logs/, say).
			others = names
			sort.Strings(others)
		}
		return false, &notOursError{dir: d.Path(), others: others}
	}
	return false, nil
}

// Purge removes what nodeboot made in the data dir: the fake tree, the
// state, events, PID and lock files, the logs and the kubeconfig, and with
// withK3s k3s's data and the staged image archives too (bin/, what
// "nodeboot install" downloaded, stays).
// It removes nothing unless the directory carries the marker (or holds
// only what an earlier nodeboot made); once nothing of nodeboot's is left,
// the marker goes too, and the directory itself when nodeboot made it. It
// never follows a symlink and stops at a filesystem mounted below. It
// returns what it removed. Stop the supervisor first.
func (in *Instance) Purge(withK3s bool) ([]string, error) {
	if err := checkNotSlash(in.Dir); err != nil {
		return nil, err
	}
	d, err := safefs.OpenDir(in.Dir, safefs.DirOptions{})
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("data dir %s: %w", in.Dir, dirError(err))
	}
	defer d.Close()
	if err := checkNotSlash(d.Path()); err != nil {
		return nil, err
	}
	present, createdDir, err := marker(d)
	if err != nil {
		return nil, err
	}
	if !present {
		others, hasLock, err := ownedByLayout(d)
		if err != nil {
			return nil, err
		}
		if len(others) > 0 || !hasLock {
			if len(others) == 0 {
				return nil, nil // empty: nothing to purge
			}
			return nil, &notOursError{dir: d.Path(), others: others}
		}
	}
	names, err := safefs.ReadDirNames(d.FD())
	if err != nil {
		return nil, fmt.Errorf("list data dir %s: %w", d.Path(), err)
	}
	sort.Strings(names)
	var removed []string
	for _, n := range names {
		if !isOurs(n) || n == markerName || n == binName || ((n == k3sName || n == imagesName) && !withK3s) {
			continue
		}
		if err := safefs.RemoveAllAt(d.FD(), n); err != nil {
			return removed, fmt.Errorf("remove %s/%s: %w", d.Path(), n, err)
		}
		removed = append(removed, d.Path()+"/"+n)
	}
	left, err := safefs.ReadDirNames(d.FD())
	if err != nil || len(left) != 1 || left[0] != markerName {
		return removed, nil // keep the marker while anything else is there
	}
	if err := unix.Unlinkat(d.FD(), markerName, 0); err != nil {
		return removed, fmt.Errorf("remove %s/%s: %w", d.Path(), markerName, err)
	}
	if createdDir {
		if err := unix.Rmdir(d.Path()); err == nil {
			removed = append(removed, d.Path())
		}
	}
	return removed, nil
}
