// Package launch is the body of e2e/cmd/launch: it runs a command through
// nodeboot's own launch code (bootstrap.Launch with the built-in k3s
// profile, seeded into --root), forwards SIGTERM and SIGINT as a Stop, and
// keeps the interceptor's counters in a JSON file (--stats) that the e2e
// tests read while it runs and after it ends.
package launch
