package instance

import (
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// DefaultRunDir holds the claims of the nodes that run on this machine
// (Claim): a lock file per node name and per network namespace, each held
// by the supervisor of the node that claimed it.
const DefaultRunDir = "/run/nodeboot"

// ErrClaimed is what a *ClaimError is.
var ErrClaimed = errors.New("claimed by another node on this machine")

// ClaimError says which node holds what a node wanted to claim.
type ClaimError struct {
	What    string // "node name \"n1\"", "network namespace net:[4026531840]"
	DataDir string // the holder's data directory ("" when unknown)
	PID     int    // the holder's supervisor (0 when unknown)
	Why     string // why two nodes cannot share it, and what to do
}

func (e *ClaimError) Error() string {
	holder := "another nodeboot node"
	if e.DataDir != "" {
		holder = fmt.Sprintf("the node of %s", e.DataDir)
	}
	if e.PID > 0 {
		holder += fmt.Sprintf(" (pid %d)", e.PID)
	}
	return fmt.Sprintf("%s is taken by %s on this machine: %s", e.What, holder, e.Why)
}

// Is makes a *ClaimError match ErrClaimed.
func (e *ClaimError) Is(target error) bool { return target == ErrClaimed }

// ClaimKey is one thing a node claims on the machine.
type ClaimKey struct {
	What string // human: "node name \"n1\""
	Key  string // the lock file's name below the run dir, without .lock
	Why  string // ClaimError.Why
}

// NodeNameKey is the claim of a node name: two nodes of one name on one
// machine fight over the Node (k3s refuses the second: its node password
// does not match).
func NodeNameKey(name string) ClaimKey {
	key := name
	if !safeKey.MatchString(name) {
		key = "x" + hex.EncodeToString([]byte(name))
	}
	return ClaimKey{What: fmt.Sprintf("node name %q", name), Key: "node-" + key,
		Why: "two nodes of one name fight over the one Node; give each its own --node-name"}
}

// safeKey is what a claim key may hold as it is (a DNS subdomain, which a
// Node's name is, fits).
var safeKey = regexp.MustCompile(`^[a-z0-9][a-z0-9.-]*$`)

// NetNSKey is the claim of the process's network namespace: k3s
// and its kubelet listen on fixed ports (6443, 6444, 10248, 10250, ...)
// there, so a second node in it fails to bind and restarts for ever.
func NetNSKey() (ClaimKey, error) {
	ns, err := os.Readlink("/proc/self/ns/net")
	if err != nil {
		return ClaimKey{}, fmt.Errorf("network namespace: %w", err)
	}
	// "net:[4026531840]"
	ino := strings.TrimSuffix(strings.TrimPrefix(ns, "net:["), "]")
	if _, err := strconv.ParseUint(ino, 10, 64); err != nil {
		return ClaimKey{}, fmt.Errorf("network namespace %q: not net:[INODE]", ns)
	}
	return ClaimKey{What: "network namespace " + ns, Key: "netns-" + ino,
		Why: "k3s and kubelet listen on the same ports (6443, 6444, 10248, 10250, ...) in it; run each node in a network namespace, sandbox or machine of its own"}, nil
}

// K3sRunDir is where every k3s on a machine keeps its containerd's
// socket and state (/run/k3s/containerd, fixed in k3s).
const K3sRunDir = "/run/k3s"

// K3sRunDirKey is the claim of the K3sRunDir this process sees: the
// directory itself when it exists, else /run, where k3s will make it
// (identified by device and inode, so that two nodes that see one
// directory, whatever its path in their mount namespaces, are caught,
// and two that each have their own are not). Two k3s with one
// /run/k3s/containerd take each other's containerd socket.
func K3sRunDirKey() (ClaimKey, error) {
	path := K3sRunDir
	var st unix.Stat_t
	err := unix.Stat(path, &st)
	if errors.Is(err, unix.ENOENT) {
		path = filepath.Dir(K3sRunDir)
		err = unix.Stat(path, &st)
	}
	if err != nil {
		return ClaimKey{}, fmt.Errorf("k3s's run directory: %w", err)
	}
	return ClaimKey{
		What: fmt.Sprintf("k3s's run directory %s (%s: device %d, inode %d)", K3sRunDir, path, st.Dev, st.Ino),
		Key:  fmt.Sprintf("fs-%d-%d", st.Dev, st.Ino),
		Why: "every k3s keeps its containerd's socket and state in /run/k3s/containerd; give each node a /run of its own " +
			"(a sandbox, machine or mount namespace of its own), and its own /var/lib/kubelet, /var/lib/cni and /etc/rancher (docs/cluster.md)",
	}, nil
}

// Claims are the claims a node holds: open, locked files, released by
// Release or by the kernel when the process dies.
type Claims struct{ files []*os.File }

// Claim takes keys for the node of dataDir, below runDir (created 0700
// when missing; it must be a directory of the effective user, not
// writable by others, and no symlink), each with an exclusive,
// non-blocking flock held until Release. A key another live process
// holds fails the whole claim with a *ClaimError naming the holder; the
// keys taken until then are released.
func Claim(runDir, dataDir string, keys ...ClaimKey) (*Claims, error) {
	if err := os.MkdirAll(runDir, 0o700); err != nil {
		return nil, fmt.Errorf("claims: %w", err)
	}
	fi, err := os.Lstat(runDir)
	if err != nil {
		return nil, fmt.Errorf("claims: %w", err)
	}
	st, _ := fi.Sys().(*unix.Stat_t)
	switch {
	case !fi.IsDir():
		return nil, fmt.Errorf("claims: %s is not a directory", runDir)
	case fi.Mode().Perm()&0o022 != 0 || (st != nil && int(st.Uid) != os.Geteuid()):
		return nil, fmt.Errorf("claims: %s is writable by others or not ours (mode %v); it must be a 0700 directory of uid %d", runDir, fi.Mode().Perm(), os.Geteuid())
	}
	c := &Claims{}
	for _, k := range keys {
		path := filepath.Join(runDir, k.Key+".lock")
		f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o600)
		if err != nil {
			c.Release()
			return nil, fmt.Errorf("claim %s: %w", k.What, err)
		}
		if err := flock(f, unix.LOCK_EX); err != nil {
			f.Close()
			c.Release()
			if errors.Is(err, unix.EWOULDBLOCK) {
				e := &ClaimError{What: k.What, Why: k.Why}
				e.DataDir, e.PID = readHolder(path)
				return nil, e
			}
			return nil, fmt.Errorf("claim %s: %w", k.What, err)
		}
		// Who holds it, for the error of the next one to try.
		holder := fmt.Sprintf("%d\n%s\n", os.Getpid(), dataDir)
		if err := f.Truncate(0); err == nil {
			_, _ = f.WriteAt([]byte(holder), 0)
		}
		c.files = append(c.files, f)
	}
	return c, nil
}

// readHolder reads the PID and data dir a claim's holder wrote.
func readHolder(path string) (dataDir string, pid int) {
	b, err := readNoFollow(path)
	if err != nil {
		return "", 0
	}
	lines := strings.SplitN(string(b), "\n", 3)
	if len(lines) >= 2 {
		pid, _ = strconv.Atoi(lines[0])
		dataDir = lines[1]
	}
	return dataDir, pid
}

// Release drops every claim. The lock files stay: removing one another
// process has just opened would let two processes hold "the same" claim.
func (c *Claims) Release() {
	if c == nil {
		return
	}
	for _, f := range c.files {
		_ = flock(f, unix.LOCK_UN)
		f.Close()
	}
	c.files = nil
}
