// Package node runs a k3s node on a fake kernel and keeps it up: the
// lifecycle behind "nodeboot up", as a library a Go program calls the way
// kind's cmd/ calls pkg/cluster. A test or pipeline starts a node, waits
// until it is Ready, reads its status and stops it:
//
//	n, err := node.Start(ctx, node.Config{DataDir: dir, K3s: "/usr/local/bin/k3s", Profile: p})
//	...
//	st, err := n.WaitFor(ctx, node.PhaseReady)
//	...
//	err = n.Stop(ctx)
//
// There is no terminal, flag or printing code here: what happens is told
// through Config.OnEvent (and Config.Logger), and the CLI (internal/cli/up)
// turns it into progress lines. Running the supervisor in the background
// ("up --detach", a re-executed nodeboot) is the CLI's business too; a Go
// program that wants the node to outlive it starts its own process.
//
// # Lifecycle
//
// Start is a list of steps on one data directory (package
// internal/instance has its layout):
//
//  1. Check: validate the Config and decide the k3s command line
//     (bootstrap.PlanK3s reads K3sArgs the way k3s will, so the data dir,
//     kubeconfig and node name the node uses are the ones k3s uses).
//  2. Take the data directory: its lock (one node per directory; a second
//     Start fails at once with a *LockedError), the PID file, a new
//     events.jsonl, logs/k3s.log.
//  3. Seed the profile's fake tree, once per Start (PhaseSeeding), and
//     write the files k3s's arguments name (kubelet drop-in, agent token).
//  4. Supervise (PhaseStarting): bootstrap.Supervise restarts k3s with
//     backoff when it exits or the node stays not Ready; each incarnation
//     is bootstrap.Launch on the seeded tree. A readiness watcher
//     (health.Watch, once k3s has written its kubeconfig) feeds it. An
//     agent is not restarted for its API server being unreachable while
//     its kubelet answers its own /healthz (Config.KubeletHealthz): the
//     server is away, not the agent.
//  5. The phase machine moves on as the watcher reports: PhaseAPIReachable,
//     PhaseRegistered, then PhaseNodeReady, but only once the kubelet of the
//     k3s now running has been heard from (it renewed the node's Lease or
//     posted a Ready heartbeat since its start): before that, a Ready
//     condition is the previous kubelet's. Then the manifests are applied
//     (PhaseManifestsApplied), or there are none (PhaseReady).
//  6. Stop, or the end of Start's context, stops k3s (SIGTERM to the whole
//     traced tree, SIGKILL after StopTimeout) and releases the directory
//     (PhaseStopped); giving up after MaxRestarts ends in PhaseFailed.
//
// Every step is an Event: appended to DATA-DIR/events.jsonl, folded into
// DATA-DIR/state.json (State, which "nodeboot status" shows, and
// ReadState reads from another process) and passed to OnEvent, in that
// order.
//
// # Goroutines and locks
//
// One goroutine runs bootstrap.Supervise and, when it returns, releases
// the data directory and closes Done. Beside it run the watcher (its
// informers call back on their own goroutines), a ticker that copies the
// interceptor's counters into state.json, and, once, the manifest
// applier. All of them report through emit. Lock order:
//
//	Node.advMu  (one phase decision at a time)
//	  Node.evMu (one event at a time: state, events.jsonl, OnEvent)
//	    Node.mu (the state and the fields the phase machine reads)
//
// # What is public
//
// The module's public API is what a program needs to run nodes and to
// build on the pieces: this package; bootstrap (Seed, Launch, Supervise,
// PlanK3s, Install), health (Watch), manifests (Load, Apply, Await) and
// profile (the profile format). The types of this package are the formats
// of state.json and events.jsonl, which "nodeboot status --output json"
// and "nodeboot up --output json" print: they are public already.
//
// Under internal/ is what is not meant for others: internal/instance (the
// data directory's files, lock and PID file, whose mechanics may change
// under the same formats) and internal/cli. The e2e module
// (github.com/nodeboot/nodeboot/e2e) sits inside the module's path, so it
// may import them. So is internal/vkernel, the virtual kernel: its files
// and their types change with every emulated kernel interface, and nothing
// outside nodeboot should build on them. The interceptor stays public
// (Start, Config, the counters, and interceptor/rules, the rule vocabulary
// profiles use): a Go program may trace a command as "nodeboot exec" does.
// Its FileServer hook, with the FileRequest struct it changes in place, is
// public only because the virtual kernel plugs in there; it is not promised
// to stay as it is.
//
// # Examples
//
// Example (example_test.go) shows the calls and is compiled by go test, but
// not run: a node needs k3s, and no k3s can be had offline, so there is no
// Output to check here. The runnable example is
// e2e/node_example_test.go, in the e2e module, whose test bed has a real
// kube-apiserver and kubelet: it starts a node through this package with a
// generated stand-in for k3s that runs that kubelet, waits for Ready, reads
// the status and stops it, and checks its Output.
package node
