package instance

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

// DefaultDataDir is the data directory when --data-dir is not given.
const DefaultDataDir = "/var/lib/nodeboot"

// Names of the entries of a data directory.
const (
	rootName       = "root"
	k3sName        = "k3s"
	binName        = "bin"
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

// Open returns the instance at dataDir, creating the directory (0700) and
// its logs/ subdirectory when missing. An existing data directory must be a
// real directory (not a symlink), owned by the effective user and not
// writable by group or others; otherwise Open fails with an error naming
// the fix.
func Open(dataDir string) (*Instance, error) {
	in, err := At(dataDir)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(filepath.Dir(in.Dir), 0o755); err != nil {
		return nil, fmt.Errorf("create the parent of data dir %s: %w", in.Dir, err)
	}
	if err := mkdirPrivate(in.Dir); err != nil {
		return nil, fmt.Errorf("data dir %s: %w", in.Dir, err)
	}
	if err := mkdirPrivate(in.LogsDir()); err != nil {
		return nil, fmt.Errorf("data dir %s: %w", in.Dir, err)
	}
	return in, nil
}

// mkdirPrivate makes dir 0700 unless it exists, then checks that it is a
// directory of ours that only we can write. Mkdir never follows a symlink
// at dir, and Lstat does not either, so a planted link is refused.
func mkdirPrivate(dir string) error {
	if err := os.Mkdir(dir, 0o700); err != nil && !errors.Is(err, fs.ErrExist) {
		return err
	}
	fi, err := os.Lstat(dir)
	if err != nil {
		return err
	}
	return checkPrivate(dir, fi)
}

// checkPrivate checks that dir (whose Lstat is fi) is a directory of ours
// that only we can write.
func checkPrivate(dir string, fi fs.FileInfo) error {
	if fi.Mode()&fs.ModeSymlink != 0 {
		target, _ := os.Readlink(dir)
		return fmt.Errorf("%s is a symlink (to %q); nodeboot does not follow links in its data dir: pass the real directory", dir, target)
	}
	if !fi.IsDir() {
		return fmt.Errorf("%s is not a directory; remove it or pick another --data-dir", dir)
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if ok && int(st.Uid) != os.Geteuid() {
		return fmt.Errorf("%s is owned by uid %d, not by you (uid %d); pick another --data-dir or chown it", dir, st.Uid, os.Geteuid())
	}
	if fi.Mode().Perm()&0o022 != 0 {
		return fmt.Errorf("%s is writable by group or others (mode %04o); run chmod go-w %s", dir, fi.Mode().Perm(), dir)
	}
	return nil
}

// Root is the fake kernel tree.
func (in *Instance) Root() string { return filepath.Join(in.Dir, rootName) }

// K3sDataDir is k3s's --data-dir.
func (in *Instance) K3sDataDir() string { return filepath.Join(in.Dir, k3sName) }

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

// readNoFollow reads path, refusing a symlink.
func readNoFollow(path string) ([]byte, error) {
	f, err := os.OpenFile(path, os.O_RDONLY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return io.ReadAll(f)
}

// writeAtomic replaces path with data: a new file with a random name in the
// same directory (O_CREAT|O_EXCL never follows a symlink), written, synced
// and renamed over path. Readers see the old or the new content, never a
// mix, and a link planted at path is replaced, not followed.
func writeAtomic(path string, data []byte, perm fs.FileMode) error {
	dir, base := filepath.Split(path)
	f, err := os.CreateTemp(dir, "."+base+".tmp-*")
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	tmp := f.Name()
	fail := func(err error) error {
		f.Close()
		os.Remove(tmp)
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := f.Chmod(perm); err != nil {
		return fail(err)
	}
	if _, err := f.Write(data); err != nil {
		return fail(err)
	}
	if err := f.Sync(); err != nil {
		return fail(err)
	}
	if err := f.Close(); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}
