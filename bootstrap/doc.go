// Package bootstrap brings a node up inside a sandbox. The lifecycle is a
// list of steps that share one root directory: seed (write the fake tree a
// profile describes), launch (k3s under the interceptor, with the arguments
// PlanK3s gives), and supervise (restart with backoff when k3s exits or the
// node stays unhealthy; package health watches it). Waiting for readiness
// and applying manifests (package manifests) are package node's, which
// runs these steps for "nodeboot up" and for Go programs. PlanK3s decides
// k3s's command line: it is the one place that reads what K3S-ARGS mean.
// Install fetches a pinned k3s release and verifies its checksum.
//
// # Launching
//
// Launch is the primitive "nodeboot up", "nodeboot exec --profile" and the
// e2e tests share: it seeds the profile into the root, starts the virtual
// kernel (package vkernel) on it, and starts the command under the
// interceptor with the profile's rules merged with the caller's (the
// caller's win) and the virtual kernel as its FileServer.
//
// # Seeding
//
// Seed writes the static entries of a profile.Profile below a root
// directory: the guest path /proc/sys/kernel/panic becomes the file
// <root>/proc/sys/kernel/panic. It only ever writes below root; the guest
// path names a place in the tree and nothing else, so the real /proc and
// /sys are never touched.
//
// Safety. The tree is later written by the guest (kubelet writes its
// sysctls through the redirects), so Seed treats its content as hostile:
//
//   - root is created 0700 (missing parents 0755) when it does not exist.
//     It is checked as sshd's StrictModes checks ~/.ssh (safefs.OpenDir):
//     root must be a directory owned by the effective user and writable by
//     nobody else, every directory above it must belong to root or to the
//     effective user and be writable by others only when sticky (/tmp), and
//     no symlink on the way is followed, so another user can neither swap
//     a component nor plant a link. root may not be /, lie under /proc, /sys or /dev, or sit on a
//     kernel filesystem (procfs, sysfs, cgroup, ...). Otherwise Seed fails
//     before writing anything, with an error that names the directory and
//     the fix.
//   - Every path is opened from the root's file descriptor one component at
//     a time with openat(O_NOFOLLOW|O_DIRECTORY), creating missing
//     directories (0755) with mkdirat. A symlink is never followed: in a
//     directory component it is an error (ErrSymlink); as the entry itself
//     it is an error too, unless Force is set, which replaces the link
//     itself and leaves its target alone. openat2(RESOLVE_BENEATH) is not
//     used: gVisor, the main target, lacks it (ENOSYS), and the walk has to
//     create directories anyway, so one code path serves every kernel.
//   - Every directory walked into is checked with fstatfs, so a kernel
//     filesystem mounted inside the tree is refused (ErrOutsideTree).
//   - Files are written atomically (safefs.WriteFileAt) and never modified
//     in place: a temporary
//     file with a random name is created with O_CREAT|O_EXCL|O_NOFOLLOW in
//     the same directory, written, given its mode, fsynced and renamed over
//     the entry with renameat, and the directory is fsynced. A hard link
//     planted in the tree therefore never lets Seed write, or chmod, the
//     file it points to. A failed write removes its temporary file.
//
// Idempotence. Seeding again is safe and quiet. An entry that already has
// the profile's content and mode is left alone (Unchanged). An entry whose
// content or mode differs is kept as it is (Kept) unless Force is set, in
// which case it is rewritten (Updated): kubelet and k3s legitimately write
// to these files, and reseeding must not silently undo what they did.
// Generated values (boot_id) are made once, when the file is created, and
// are kept even with Force; delete the file to get a new one. Files in the
// tree that the profile does not list are never removed.
package bootstrap
