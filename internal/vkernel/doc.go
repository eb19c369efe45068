// Package vkernel is nodeboot's virtual kernel: it serves the dynamic
// entries of a profile (profile.Dynamic) to traced programs, as an
// interceptor.FileServer. When a tracee names one of its paths, the tracer
// calls Serve while the tracee is stopped; Serve (re)generates a real file
// below the root directory and returns its path, which the call then uses.
// Nothing is mounted and no FUSE is needed.
//
// # What it serves
//
//   - cgroup2 (e.g. /sys/fs/cgroup): a cgroup v2 hierarchy kept as real
//     directories below root/sys/fs/cgroup, so readdir and inotify work.
//     Interface files follow the kernel's formats; figures are computed
//     when a file is opened: the root's from /proc/stat, /proc/meminfo,
//     /proc/vmstat, /proc/loadavg, /proc/diskstats and /proc/pressure, a
//     child's from the /proc/PID/{stat,statm,io} of the processes in its
//     subtree (usage charged to a cgroup stays there when a process moves
//     or exits, so counters never go down). mkdir makes a cgroup (with
//     cgroup.controllers = the parent's subtree_control), rmdir removes an
//     empty one, and one with processes or children fails with EBUSY, as
//     in the kernel. /proc/PID/cgroup reads "0::/PATH".
//   - mountinfo: /proc/PID/mountinfo, /proc/PID/mounts and /proc/mounts are
//     the caller's real table with the fstype rules applied (a 9p or overlay
//     mount rewritten to ext4 gets the source /dev/vdnodeboot<minor> and the
//     st_dev that stat reports for its mount point), every mount at or
//     below the cgroup mount point replaced by one cgroup2 mount, and
//     /proc/sys shown read-write.
//   - diskstats, partitions, swaps: generated only when the caller's real
//     file is missing (one idle line per block device of its mountinfo;
//     swaps: the header); otherwise the call is left alone.
//   - kmsg: a FIFO the Kernel holds open read-write, so an open for reading
//     succeeds at once and a read blocks for good; opens for writing get
//     /dev/null.
//
// # Writes
//
// The tracer sees opens, not writes. An interface file opened for writing
// is queued; at the next Serve, Forked or Exited (of any path) its content
// is read back and given its kernel meaning: pids written to cgroup.procs
// move processes, "+cpu -io" edits subtree_control (whose children then
// gain or lose files), and values are normalized ("50000" in cpu.max reads
// back "50000 100000", memory sizes are rounded to pages, "max" stays
// "max"). A value the kernel would refuse with EINVAL is undone instead: the
// writer cannot be given the error. Writes to read-only files are undone
// too. A file that still holds its old content waits up to two seconds for
// its write. cgroup.kill is not offered (its effect could not be immediate),
// so runc falls back to signalling the pids of cgroup.procs.
//
// Creating, renaming, linking or unlinking files in the tree fails with
// ENOENT (the kernel says EPERM or EACCES).
//
// # Thread model and safety
//
// Serve, Done, Forked and Exited run on the tracer's thread; a mutex also
// lets other goroutines call CgroupOf, Traced and Close. Files are written
// through directory descriptors opened with O_NOFOLLOW, one component at a
// time, so a symlink planted in the tree is never followed; live figures are
// replaced by rename (a reader keeps a consistent copy), state and value
// files are rewritten in place (readers that re-read an open file, and
// inotify watches, see the change).
package vkernel
