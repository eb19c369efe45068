#!/usr/bin/env bash
# The one entry point for tests (make test, CI): installs what the tests
# need, lints, builds for arm64 too, then runs every test.
#
#	TESTFLAGS='-race -v' hack/test.sh    # extra go test flags
#	COVERPROFILE=coverage.out hack/test.sh
#
# Run it as root: the tracer tests skip (and say so) otherwise.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
GO=${GO:-go}

hack/deps.sh
hack/lint.sh

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
"$GO" test "${flags[@]}" ./...
