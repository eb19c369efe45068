// Package seed is the "nodeboot seed" command: it loads a profile (the
// built-in k3s by default) and writes its fake tree of kernel files below
// --root with bootstrap.Seed, printing one line per entry on stdout.
//
// Seeding is idempotent: a second run reports every entry unchanged, and an
// entry that kubelet or a user changed is kept unless --force is given.
package seed
