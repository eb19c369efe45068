#!/usr/bin/env bash
# The one entry point for tests (make test, CI): installs what the tests
# need, lints, builds for arm64 too and runs the interceptor's unit tests
# there (under qemu-user), then runs every test.
#
#	TESTFLAGS='-race -v' hack/test.sh    # extra go test flags
#	COVERPROFILE=coverage.out hack/test.sh
#
# Run it as root: the tracer tests skip (and say so) otherwise. Under CI=true
# a run that is not root, or has no gcc after hack/deps.sh, fails instead:
# there a skip would pass without running the tests CI exists for (the Go
# helpers in internal/testenv fail the same way, test by test).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
GO=${GO:-go}

hack/deps.sh
if [[ ${CI:-} == true || ${CI:-} == 1 ]]; then
	if [[ $(id -u) -ne 0 ]]; then
		echo "test.sh: CI=$CI but not root (uid $(id -u)): the tracer tests would skip; run CI as root" >&2
		exit 1
	fi
	if ! command -v gcc >/dev/null; then
		echo "test.sh: CI=$CI but gcc is not in PATH after hack/deps.sh: the C tracees cannot be built (apt-get install gcc libc6-dev)" >&2
		exit 1
	fi
fi
hack/lint.sh
# The arm64 code is compiled by lint.sh; run the interceptor's unit tests
# on arm64 too (qemu-user: tracing itself cannot run there, see the script).
TESTFLAGS= hack/test-arm64.sh ./interceptor/...

flags=(-count=1)
if [[ -n "${COVERPROFILE:-}" ]]; then
	flags+=(-coverprofile="$COVERPROFILE")
fi
# TESTFLAGS is split on spaces on purpose, without glob expansion.
set -f
# shellcheck disable=SC2206
flags+=(${TESTFLAGS:-})
set +f

if [[ $(id -u) -ne 0 ]]; then
	echo "==> note: not root; tests that trace or need root will skip (run 'sudo make test' for all)" >&2
fi
echo "==> go test ${flags[*]} ./..."
log=$(mktemp)
trap 'rm -f "$log"' EXIT
set +e
"$GO" test "${flags[@]}" ./... 2>&1 | tee "$log"
rc=${PIPESTATUS[0]}
set -e
if [[ $rc -ne 0 ]]; then
	exit "$rc"
fi
hack/check-pass-log.sh "$log"
