// Package safefs is the one place where nodeboot creates, reads, replaces
// and removes the files it owns: the fake kernel tree, the data directory,
// the auto-deploy manifests and the per-run directories of exec. Every
// other package goes through it, so that the rules below hold everywhere.
//
// The rules:
//
//   - A path that nodeboot writes below is checked the way sshd's
//     StrictModes checks ~/.ssh (OpenDir): walking from / one component at
//     a time with openat, every directory must belong to root or to the
//     caller, and may be writable by others only when it is sticky (then
//     the next component's owner is checked, and only its owner can replace
//     it). The last directory must belong to the caller and be writable by
//     nobody else. A symlink on the way is refused; callers that must
//     accept one (a data directory moved to another disk) follow it only
//     when nobody but root or the caller could have made it.
//   - Below a checked directory, entries are reached through directory
//     descriptors opened with O_NOFOLLOW, one component at a time (WalkAt),
//     so a symlink planted inside the tree is never followed. Go's os.Root
//     does not fit there: it follows symlinks that stay inside the root,
//     and the tree's symlinks are the guest's, not ours.
//   - A file is replaced atomically (WriteFileAt): a temporary file with
//     an unpredictable name is created with O_CREAT|O_EXCL|O_NOFOLLOW in
//     the same directory, written, chmod-ed to its exact mode, optionally
//     fsynced, and renamed over the name; the rename replaces a planted
//     link, never writes through it. O_TMPFILE would save the name, but
//     gVisor's gofer filesystems refuse it (google/gvisor#11143).
//   - What nodeboot reads is a regular file, up to a size limit
//     (ReadFile, ReadFileAt): a FIFO, a device such as /dev/zero, a socket
//     or a directory is refused with an error that names the path, and a
//     file larger than the limit with one that names the limit. The open
//     uses O_NONBLOCK, so a FIFO cannot hang it.
//   - Removal (RemoveAllAt) unlinks entries through their parent's
//     descriptor, never follows a symlink and never crosses into another
//     filesystem mounted below.
//
// The *At functions are the vkernel's hot path (the tracer calls them while
// a tracee waits): they take raw descriptors, allocate little, and make no
// syscall the job does not need.
package safefs
