#!/usr/bin/env bash
# Runs the real-consumer tests (e2e/consumers/, a Go module of its own) as
# CI does: kubelet's sysctl code, containerd/cgroups v3 and cAdvisor, each
# natively in the simulated sandbox (must fail) and under
# "nodeboot exec --profile k3s" there (must pass), plus "nodeboot discover".
#
#	hack/e2e-consumers.sh
#	CADVISOR_SOAK=30s hack/e2e-consumers.sh        # shorter cAdvisor soak (default 3m)
#	TESTFLAGS='-run Cgroups' hack/e2e-consumers.sh
#
# Needs root (the sandbox unshares a mount namespace) and util-linux's
# unshare. Dependencies come from the Go module proxy. About 4 minutes:
# the build, then 3 minutes of cAdvisor soak; the rest takes seconds.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../e2e/consumers"
GO=${GO:-go}

if [[ $(id -u) -ne 0 ]]; then
	echo "e2e-consumers: needs root (the sandbox mounts over /proc/sys, /sys/fs/cgroup and /dev in a private mount namespace)" >&2
	exit 1
fi
flags=(-count=1 -timeout 20m -v)
set -f
# shellcheck disable=SC2206
flags+=(${TESTFLAGS:-})
set +f
echo "==> e2e/consumers: go vet ./..."
"$GO" vet ./...
echo "==> e2e/consumers: go test ${flags[*]} ./..."
log=$(mktemp)
trap 'rm -f "$log"' EXIT
set +e
"$GO" test "${flags[@]}" ./... 2>&1 | tee "$log"
rc=${PIPESTATUS[0]}
set -e
if [[ $rc -ne 0 ]]; then
	exit "$rc"
fi
# The native runs fail on purpose; their output says so without "FAIL".
../../hack/check-pass-log.sh "$log"
