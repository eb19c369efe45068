package kubeconfig

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/tools/clientcmd"
	api "k8s.io/client-go/tools/clientcmd/api"
)

// markName is the extension nodeboot puts on the cluster, user and
// context it merges: an entry that lacks it is someone else's, and is not
// replaced without --force.
const markName = "nodeboot"

// mergeTarget is the kubeconfig file a merge writes: the first file of
// $KUBECONFIG (as kubectl writes new entries to), else ~/.kube/config.
func mergeTarget() (string, error) {
	for _, p := range filepath.SplitList(os.Getenv(clientcmd.RecommendedConfigPathEnvVar)) {
		if p != "" {
			return filepath.Abs(p)
		}
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return "", fmt.Errorf("no $KUBECONFIG and no home directory to find ~/.kube/config in: %w; set KUBECONFIG=FILE", err)
	}
	return filepath.Join(home, clientcmd.RecommendedHomeDir, clientcmd.RecommendedFileName), nil
}

// mergeResult is what a merge did.
type mergeResult struct {
	File     string // the kubeconfig written
	Context  string // the context (and cluster and user) name
	Previous string // the current context before ("" when none)
	Replaced bool   // entries of that name were there and were replaced
}

// merge adds the admin kubeconfig src (k3s's) to the kubeconfig file
// target as a cluster, a user and a context all called name, and makes
// the context the current one. Other entries are kept as they are. An
// entry called name that nodeboot did not write (it has no mark) is
// refused unless force. The file is written atomically: a new file in the
// same directory, with the old file's mode and owner (a new file: 0600,
// owned by the directory's owner), renamed over it, under kubectl's lock
// file (FILE.lock), so a kubectl writing at the same time waits or fails
// instead of losing either write.
func merge(src, target, name, dataDir string, force bool) (*mergeResult, error) {
	in, err := clientcmd.LoadFromFile(src)
	if err != nil {
		return nil, fmt.Errorf("read the node's kubeconfig: %w", err)
	}
	ctxName := in.CurrentContext
	if ctxName == "" && len(in.Contexts) == 1 {
		for n := range in.Contexts {
			ctxName = n
		}
	}
	sctx, ok := in.Contexts[ctxName]
	if !ok {
		return nil, fmt.Errorf("the node's kubeconfig %s has no current context", src)
	}
	cluster, user := in.Clusters[sctx.Cluster], in.AuthInfos[sctx.AuthInfo]
	if cluster == nil || user == nil {
		return nil, fmt.Errorf("the node's kubeconfig %s: context %q names a cluster or user it lacks", src, ctxName)
	}

	if fi, err := os.Lstat(target); err == nil && fi.Mode()&fs.ModeSymlink != 0 {
		dest, _ := filepath.EvalSymlinks(target)
		return nil, fmt.Errorf("%s is a symlink (to %s); nodeboot does not write through links: merge into the file itself with KUBECONFIG=%s", target, dest, dest)
	}
	dir := filepath.Dir(target)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("create %s: %w", dir, err)
	}
	unlock, err := lockFile(target)
	if err != nil {
		return nil, err
	}
	defer unlock()

	out := api.NewConfig()
	if _, err := os.Lstat(target); err == nil {
		if out, err = clientcmd.LoadFromFile(target); err != nil {
			return nil, fmt.Errorf("read %s: %w; fix it or merge elsewhere with KUBECONFIG=FILE", target, err)
		}
	} else if !errors.Is(err, fs.ErrNotExist) {
		return nil, err
	}
	res := &mergeResult{File: target, Context: name, Previous: out.CurrentContext}
	for _, e := range []struct {
		kind string
		have map[string]runtime.Object // the entry's extensions, nil when absent
		ok   bool
	}{
		{"cluster", extensionsOf(out.Clusters[name]), out.Clusters[name] != nil},
		{"user", extensionsOf(out.AuthInfos[name]), out.AuthInfos[name] != nil},
		{"context", extensionsOf(out.Contexts[name]), out.Contexts[name] != nil},
	} {
		if !e.ok {
			continue
		}
		res.Replaced = true
		if _, ours := e.have[markName]; !ours && !force {
			return nil, fmt.Errorf("%s already has a %s named %q that nodeboot did not write; keep it and pick another name with --context NAME, or replace it with --force", target, e.kind, name)
		}
	}
	raw, err := json.Marshal(map[string]string{"dataDir": dataDir})
	if err != nil {
		return nil, err
	}
	mark := func() map[string]runtime.Object {
		return map[string]runtime.Object{markName: &runtime.Unknown{Raw: raw, ContentType: runtime.ContentTypeJSON}}
	}
	c := cluster.DeepCopy()
	c.Extensions, c.LocationOfOrigin = mark(), ""
	u := user.DeepCopy()
	u.Extensions, u.LocationOfOrigin = mark(), ""
	x := sctx.DeepCopy()
	x.Cluster, x.AuthInfo, x.Extensions, x.LocationOfOrigin = name, name, mark(), ""
	out.Clusters[name], out.AuthInfos[name], out.Contexts[name] = c, u, x
	out.CurrentContext = name
	b, err := clientcmd.Write(*out)
	if err != nil {
		return nil, fmt.Errorf("encode %s: %w", target, err)
	}
	if err := replaceFile(target, b); err != nil {
		return nil, err
	}
	return res, nil
}

// extensionsOf returns the extensions of a kubeconfig entry.
func extensionsOf(v interface{}) map[string]runtime.Object {
	switch e := v.(type) {
	case *api.Cluster:
		if e != nil {
			return e.Extensions
		}
	case *api.AuthInfo:
		if e != nil {
			return e.Extensions
		}
	case *api.Context:
		if e != nil {
			return e.Extensions
		}
	}
	return nil
}

// lockFile takes kubectl's lock on a kubeconfig (clientcmd's lockFile:
// FILE.lock created with O_EXCL, removed when done).
func lockFile(target string) (unlock func(), err error) {
	lock := target + ".lock"
	f, err := os.OpenFile(lock, os.O_CREATE|os.O_EXCL|os.O_WRONLY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o600)
	if errors.Is(err, fs.ErrExist) {
		return nil, fmt.Errorf("%s exists: kubectl (or another nodeboot) is writing %s; try again, or remove the lock file if nothing is", lock, target)
	}
	if err != nil {
		return nil, fmt.Errorf("lock %s: %w", target, err)
	}
	f.Close()
	return func() { os.Remove(lock) }, nil
}

// replaceFile replaces path with data atomically: a new file with a random
// name in the same directory (O_EXCL: never through a planted link),
// given the old file's mode and owner (a new file: 0600 and the owner of
// the directory, so that "sudo nodeboot kubeconfig --merge" into a user's
// home leaves a file the user can read), synced and renamed over path.
func replaceFile(path string, data []byte) error {
	mode, uid, gid := fs.FileMode(0o600), -1, -1
	if fi, err := os.Stat(path); err == nil {
		mode = fi.Mode().Perm()
		if st, ok := fi.Sys().(*syscall.Stat_t); ok {
			uid, gid = int(st.Uid), int(st.Gid)
		}
	} else if fi, err := os.Stat(filepath.Dir(path)); err == nil {
		if st, ok := fi.Sys().(*syscall.Stat_t); ok {
			uid, gid = int(st.Uid), int(st.Gid)
		}
	}
	dir, base := filepath.Split(path)
	f, err := os.CreateTemp(dir, "."+base+".nodeboot-*")
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	tmp := f.Name()
	fail := func(err error) error {
		f.Close()
		os.Remove(tmp)
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := f.Chmod(mode); err != nil {
		return fail(err)
	}
	if uid >= 0 && (uid != os.Geteuid() || gid != os.Getegid()) {
		if err := f.Chown(uid, gid); err != nil && !errors.Is(err, fs.ErrPermission) {
			return fail(err)
		}
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
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync() // the rename, durable where the filesystem allows
		d.Close()
	}
	return nil
}

// contextName is the default context name for node: nodeboot-NODE, in
// the characters kubectl users type.
func contextName(node string) string {
	if node == "" {
		return "nodeboot"
	}
	return "nodeboot-" + strings.ToLower(node)
}
