#!/usr/bin/env bash
# Fails when the log of a passing go test run holds the word FAIL:
#
#	hack/check-pass-log.sh LOG
#
# go test prints FAIL for failures alone, and the tests word the failures
# they expect ("natively in the sandbox, as expected: ...") without it, so
# that grep FAIL over a CI log finds real failures only. A FAIL in a
# passing run is a failure that did not fail the run, or wording that would
# hide the real ones.
set -euo pipefail
log=${1:?usage: hack/check-pass-log.sh LOG}
if hits=$(grep -nw FAIL "$log"); then
	echo "$hits" >&2
	echo "check-pass-log: the run passed but printed FAIL (lines above): a failure that did not fail the run, or output that should say what it expects without the word FAIL" >&2
	exit 1
fi
