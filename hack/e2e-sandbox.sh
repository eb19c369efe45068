#!/usr/bin/env bash
# Runs a command in the simulated gVisor-like sandbox (package e2e/sandbox):
# /proc/sys reduced to gVisor's entries and read-only, no cgroup mounts,
# no /dev/kmsg, empty /proc/{diskstats,partitions,swaps}. Needs root.
#
#	hack/e2e-sandbox.sh -- sh -c 'ls /proc/sys/vm /sys/fs/cgroup'
#	hack/e2e-sandbox.sh -netns NAME -keep cgroups -- CMD ARGS...
#
# Flags are those of e2e/cmd/sandbox: -netns joins /run/netns/NAME first,
# -keep procsys,cgroups,dev,procfiles leaves those parts as on the host.
# Nothing changes outside the private mount namespace.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../e2e"
bin=bin/sandbox
GO=${GO:-go}
mkdir -p bin
CGO_ENABLED=0 "$GO" build -o "$bin" ./cmd/sandbox
cd - >/dev/null
exec "$(dirname "${BASH_SOURCE[0]}")/../e2e/$bin" "$@"
