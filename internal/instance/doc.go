// Package instance is the on-disk layout of one nodeboot node: the data
// directory that "nodeboot up" and every other command pick with
// --data-dir (default /var/lib/nodeboot).
//
//	DATA-DIR/                0700
//	  root/                  the fake kernel tree (bootstrap.Launch's Root)
//	  k3s/                   k3s's --data-dir (unless K3S-ARGS name their own)
//	  images/                image archives imported at every start (nodeboot's own, and "load image-archive"'s)
//	  bin/k3s                what "nodeboot install" downloads
//	  kubeconfig.yaml        k3s --write-kubeconfig, mode 0600
//	  logs/k3s.log           k3s's stdout and stderr
//	  logs/nodeboot.log      the supervisor's log (slog text)
//	  nodeboot.lock          flock(2): held by the running supervisor
//	  nodeboot.pid           the supervisor's PID
//	  state.json             phase, health, restarts, PIDs (rewritten atomically)
//	  events.jsonl           one JSON Event per line, appended
//	  nodeboot.marker        makes the directory a nodeboot data dir
//
// This package owns the files, not what is in them: state.json and the
// lines of events.jsonl are package node's State and Event, whose formats
// are public ("nodeboot status --output json" prints them). It is under
// internal/ because its mechanics (the lock handed to a detached child,
// the PID file, how files are written) are nodeboot's own and may change;
// programs use package node.
//
// One supervisor per data directory: Lock takes an exclusive, non-blocking
// flock on nodeboot.lock and keeps the descriptor for the life of the
// process, so the kernel releases the lock when the supervisor dies, however
// it dies. The lock, not the PID file, says whether a supervisor runs; the
// PID file says which process it is.
//
// Safety. The data directory is created 0700 and checked as sshd's
// StrictModes checks ~/.ssh (package safefs): it must be owned by the
// effective user and writable by nobody else, every directory above it must
// belong to root or to the effective user (and be writable by others only
// when sticky), and no symlink in its path is followed, so nobody else can
// plant files in it or swap it. It is nodeboot's only when it carries
// nodeboot.marker: Open writes the marker into an empty directory (or one
// holding only what an earlier nodeboot made) and refuses any other, and
// Purge removes nothing from a directory without it, and only the entries
// of the layout above. Even so, files are never opened through a symlink:
// the lock, PID, log and events files are opened with O_NOFOLLOW, and
// state.json and the PID file are replaced atomically (a temporary file
// created with O_EXCL|O_NOFOLLOW, fsynced and renamed into place).
package instance
