// Package up is the "nodeboot up" command: it brings up a k3s node on a
// profile's fake kernel and keeps it up.
//
// Lifecycle, in the foreground (the supervisor): open the data directory
// (package instance) and take its lock, write the PID file, seed the fake
// tree, build k3s's arguments (bootstrap.K3sArgs), then run
// bootstrap.Supervise, whose Start launches k3s with bootstrap.Launch. A
// readiness watcher (health.Watch, once k3s has written the kubeconfig)
// feeds Supervise and moves the phase on: API reachable, node registered,
// node Ready; after the first Ready the manifests are applied. Every step
// is an instance.Event, appended to events.jsonl, folded into state.json
// and shown by package progress. SIGINT or SIGTERM cancels Supervise's
// context, which stops the whole traced tree; then the PID file is removed
// and the lock released.
//
// --detach re-executes /proc/self/exe in a new session with the lock
// passed down as fd 3 (so no second "up" can slip in between), and --wait
// follows that supervisor's events.jsonl until the node is up, the
// supervisor fails, or --timeout passes (exit 3; the supervisor keeps
// running).
//
// Package up/config holds --data-dir and --config, which the other
// instance commands (down, status, logs, kubeconfig, install) share.
package up
