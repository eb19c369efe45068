// Package up is the "nodeboot up" command: flags, configuration
// precedence and printing over package node, which runs the node (seed,
// supervise, watch, phases, manifests, state.json, events.jsonl), as
// kind's cmd/ is over pkg/cluster.
//
// check turns the flags into a node.Config and lets node.Check decide
// what the K3S-ARGS after "--" mean (bootstrap.PlanK3s is the one place
// that reads them); everything it refuses is a usage error, before
// anything is started or written.
//
// In the foreground (supervise) this process runs the node: node.Start
// with a signal context (the first SIGINT or SIGTERM stops k3s cleanly, a
// second one ends nodeboot at once), the node's events shown by package
// progress and its log lines in logs/nodeboot.log (and on the terminal
// with -v), until node.Wait returns.
//
// --detach re-executes /proc/self/exe in a new session with the lock
// passed down as fd 3 (so no second "up" can slip in between); that child
// runs the node with the lock as node.Config.InheritedLock. --wait follows
// the child's events.jsonl (node.ReadEvents) until the node is up, the
// supervisor fails, or --timeout passes (exit 3; the supervisor keeps
// running).
//
// The --data-dir and --config flags the other instance commands share
// live in package cmdutil.
package up
