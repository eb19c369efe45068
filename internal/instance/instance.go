package instance

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/nodeboot/nodeboot/internal/safefs"
)

// DefaultDataDir is the data directory when --data-dir is not given.
const DefaultDataDir = "/var/lib/nodeboot"

// Names of the entries of a data directory.
const (
	rootName       = "root"
	k3sName        = "k3s"
	binName        = "bin"
	imagesName     = "images"
	kubeconfigName = "kubeconfig.yaml"
	logsName       = "logs"
	k3sLogName     = "k3s.log"
	nodebootLog    = "nodeboot.log"
	lockName       = "nodeboot.lock"
	pidName        = "nodeboot.pid"
	stateName      = "state.json"
	eventsName     = "events.jsonl"
)

// Instance is one data directory. Its path methods only compute names; Open
// creates the directory, Lock makes this process its supervisor.
type Instance struct {
	// Dir is the data directory, absolute and clean.
	Dir string

	lock *os.File // held while this process is the supervisor
}

// At returns the instance at dataDir without touching the filesystem
// (commands that only read: status, logs, kubeconfig, down).
func At(dataDir string) (*Instance, error) {
	if dataDir == "" {
		return nil, errors.New("data dir is empty; pass --data-dir DIR, e.g. --data-dir " + DefaultDataDir)
	}
	abs, err := filepath.Abs(dataDir)
	if err != nil {
		return nil, fmt.Errorf("data dir %q: %w", dataDir, err)
	}
	return &Instance{Dir: abs}, nil
}

// checkNotSlash refuses / as a data dir by name: its "root" and "logs"
// would be /root and /logs.
func checkNotSlash(dir string) error {
	if dir == "/" {
		return errors.New("data dir /: / cannot be a data dir (its root/ would be /root); pass a directory of its own, e.g. --data-dir " + DefaultDataDir)
	}
	return nil
}

// Open returns the instance at dataDir, creating the directory (0700, with
// missing parents 0755) and its logs/ subdirectory when missing, and makes
// it nodeboot's by writing the marker file. The path is checked as sshd's
// StrictModes does (safefs.OpenDir): the data directory must be a real
// directory (no symlink anywhere in the path), owned by the effective user
// and writable by nobody else, and every directory above it must belong to
// root or to the effective user and be writable by others only when sticky.
// An existing data directory must carry the marker, be empty, or hold only
// what an earlier nodeboot (before the marker) made; anything else is
// somebody else's directory, and Open refuses it rather than adopt it (and
// let "down --purge" delete what was there). Errors name the fix.
func Open(dataDir string) (*Instance, error) {
	in, err := At(dataDir)
	if err != nil {
		return nil, err
	}
	if err := checkNotSlash(in.Dir); err != nil {
		return nil, err
	}
	d, err := safefs.OpenDir(in.Dir, safefs.DirOptions{Create: true, Perm: 0o700, ParentPerm: 0o755})
	if err != nil {
		return nil, fmt.Errorf("data dir %s: %w", in.Dir, dirError(err))
	}
	defer d.Close()
	in.Dir = d.Path()
	if err := checkNotSlash(in.Dir); err != nil {
		return nil, err
	}
	if err := claim(d); err != nil {
		return nil, err
	}
	fd, err := safefs.WalkAt(d.FD(), logsName, safefs.WalkOptions{Create: true, Perm: 0o700, Base: in.Dir})
	if err != nil {
		return nil, fmt.Errorf("data dir %s: %w", in.Dir, dirError(err))
	}
	unix.Close(fd)
	return in, nil
}

// dirError adds the fix to a refused data directory.
func dirError(err error) error {
	switch {
	case errors.Is(err, safefs.ErrSymlink):
		return fmt.Errorf("%w; nodeboot follows no symlink in its data dir: pass the real directory", err)
	case errors.Is(err, safefs.ErrWrongType):
		return fmt.Errorf("%w; remove it or pick another --data-dir", err)
	}
	return err
}

// Root is the fake kernel tree.// Root is the fake kernel tree.
func (in *Instance) Root() string { return filepath.Join(in.Dir, rootName) }

// K3sDataDir is k3s's --data-dir.
func (in *Instance) K3sDataDir() string { return filepath.Join(in.Dir, k3sName) }

// ImagesDir holds the image archives the node imports at every start:
// nodeboot's own (package images) and those "nodeboot load image-archive"
// staged.
func (in *Instance) ImagesDir() string { return filepath.Join(in.Dir, imagesName) }

// BinDir holds the k3s that "nodeboot install" downloads.
func (in *Instance) BinDir() string { return filepath.Join(in.Dir, binName) }

// K3sBinary is the k3s that "nodeboot install" downloads.
func (in *Instance) K3sBinary() string { return filepath.Join(in.BinDir(), "k3s") }

// Kubeconfig is where k3s writes its admin kubeconfig.
func (in *Instance) Kubeconfig() string { return filepath.Join(in.Dir, kubeconfigName) }

// LogsDir holds the log files.
func (in *Instance) LogsDir() string { return filepath.Join(in.Dir, logsName) }

// K3sLog receives k3s's stdout and stderr.
func (in *Instance) K3sLog() string { return filepath.Join(in.LogsDir(), k3sLogName) }

// NodebootLog receives the supervisor's log.
func (in *Instance) NodebootLog() string { return filepath.Join(in.LogsDir(), nodebootLog) }

// LockPath is the flock(2) file.
func (in *Instance) LockPath() string { return filepath.Join(in.Dir, lockName) }

// PIDPath is the supervisor's PID file.
func (in *Instance) PIDPath() string { return filepath.Join(in.Dir, pidName) }

// StatePath is state.json.
func (in *Instance) StatePath() string { return filepath.Join(in.Dir, stateName) }

// EventsPath is events.jsonl.
func (in *Instance) EventsPath() string { return filepath.Join(in.Dir, eventsName) }

// OpenLog opens a log file of the instance for appending, creating it 0600.
// It refuses a symlink at path.
func OpenLog(path string) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return nil, fmt.Errorf("open log %s: %w", path, err)
	}
	return f, nil
}

// LockedError is returned by Lock when another process is the supervisor.
// It is ErrLocked.
type LockedError struct {
	Dir string
	PID int // from the PID file; 0 when unknown
}

// ErrLocked means another nodeboot supervises the data directory.
var ErrLocked = errors.New("data dir is locked by another nodeboot")

func (e *LockedError) Error() string {
	pid := ""
	if e.PID > 0 {
		pid = fmt.Sprintf(" (pid %d)", e.PID)
	}
	return fmt.Sprintf("another nodeboot is running for %s%s; stop it with `nodeboot down --data-dir %s`", e.Dir, pid, e.Dir)
}

// Is makes a LockedError match ErrLocked.
func (e *LockedError) Is(target error) bool { return target == ErrLocked }

// Lock makes this process the supervisor of the instance: an exclusive
// flock on nodeboot.lock, without waiting. When another process holds it,
// Lock returns a *LockedError at once. The lock lasts until Unlock or the
// end of the process.
func (in *Instance) Lock() error {
	f, err := os.OpenFile(in.LockPath(), os.O_RDWR|os.O_CREATE|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return fmt.Errorf("open lock file %s: %w", in.LockPath(), err)
	}
	if err := flock(f, unix.LOCK_EX); err != nil {
		f.Close()
		if errors.Is(err, unix.EWOULDBLOCK) {
			pid, _ := in.ReadPID()
			return &LockedError{Dir: in.Dir, PID: pid}
		}
		return fmt.Errorf("lock %s: %w", in.LockPath(), err)
	}
	in.lock = f
	return nil
}

// LockFile is the locked file, for handing the lock to a detached child
// (exec.Cmd.ExtraFiles): a flock belongs to the open file description, so
// the child holds it too and keeps it after this process exits. nil when
// not locked.
func (in *Instance) LockFile() *os.File { return in.lock }

// AdoptLock takes over a lock that a parent passed as f (see LockFile). It
// checks that f is this instance's lock file and that the lock is held
// through it, and marks it close-on-exec so k3s does not inherit it.
func (in *Instance) AdoptLock(f *os.File) error {
	var fst, pst unix.Stat_t
	if err := unix.Fstat(int(f.Fd()), &fst); err != nil {
		return fmt.Errorf("adopt lock fd %d: %w", f.Fd(), err)
	}
	if err := unix.Lstat(in.LockPath(), &pst); err != nil {
		return fmt.Errorf("adopt lock: %w", err)
	}
	if fst.Dev != pst.Dev || fst.Ino != pst.Ino {
		return fmt.Errorf("adopt lock: fd %d is not %s", f.Fd(), in.LockPath())
	}
	// Locking again through the same open file description succeeds at
	// once when it already holds the lock, and fails if it does not.
	if err := flock(f, unix.LOCK_EX); err != nil {
		return fmt.Errorf("adopt lock %s: %w", in.LockPath(), err)
	}
	unix.CloseOnExec(int(f.Fd()))
	in.lock = f
	return nil
}

// Unlock releases the lock taken by Lock or AdoptLock.
func (in *Instance) Unlock() error {
	if in.lock == nil {
		return nil
	}
	err := in.lock.Close()
	in.lock = nil
	return err
}

// Running reports whether a supervisor holds the lock, and its PID from the
// PID file (0 when unknown). It never creates the lock file.
func (in *Instance) Running() (pid int, running bool, err error) {
	f, err := os.OpenFile(in.LockPath(), os.O_RDONLY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if errors.Is(err, fs.ErrNotExist) {
		return 0, false, nil
	}
	if err != nil {
		return 0, false, fmt.Errorf("open lock file %s: %w", in.LockPath(), err)
	}
	defer f.Close()
	pid, _ = in.ReadPID()
	// A shared lock cannot be had while the supervisor holds its exclusive
	// one; when it can, nobody runs (it is dropped by the Close above).
	switch err := flock(f, unix.LOCK_SH); {
	case err == nil:
		return pid, false, nil
	case errors.Is(err, unix.EWOULDBLOCK):
		return pid, true, nil
	default:
		return pid, false, fmt.Errorf("probe lock %s: %w", in.LockPath(), err)
	}
}

// flock tries how on f without blocking, retrying on EINTR.
func flock(f *os.File, how int) error {
	for {
		err := unix.Flock(int(f.Fd()), how|unix.LOCK_NB)
		if err != unix.EINTR {
			return err
		}
	}
}

// WritePID writes this process's PID to the PID file (atomically).
func (in *Instance) WritePID() error {
	return writeAtomic(in.PIDPath(), []byte(strconv.Itoa(os.Getpid())+"\n"), 0o644)
}

// ReadPID returns the PID in the PID file; 0 and an error when it is
// missing or malformed.
func (in *Instance) ReadPID() (int, error) {
	b, err := readNoFollow(in.PIDPath())
	if err != nil {
		return 0, err
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || pid <= 0 {
		return 0, fmt.Errorf("pid file %s: %q is not a PID", in.PIDPath(), strings.TrimSpace(string(b)))
	}
	return pid, nil
}

// RemovePID removes the PID file if it holds this process's PID.
func (in *Instance) RemovePID() error {
	if pid, err := in.ReadPID(); err != nil || pid != os.Getpid() {
		return nil
	}
	if err := os.Remove(in.PIDPath()); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("remove pid file: %w", err)
	}
	return nil
}

// maxSmallFile bounds what nodeboot reads of its own small files (PID
// file, state.json, marker).
const maxSmallFile = 1 << 20

// readNoFollow reads the regular file path, refusing a symlink.
func readNoFollow(path string) ([]byte, error) {
	f, err := os.OpenFile(path, os.O_RDONLY|unix.O_NOFOLLOW|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return safefs.ReadOpened(f, path, maxSmallFile)
}

// writeAtomic replaces path with data, durably (safefs.WriteFile): readers
// see the old content or the new, never a mix, and a link planted at path
// is replaced, not followed.
func writeAtomic(path string, data []byte, perm uint32) error {
	base := filepath.Base(path)
	if err := safefs.WriteFile(path, data, perm, safefs.WriteOptions{Sync: true, TempPrefix: "." + base + ".tmp-"}); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}
