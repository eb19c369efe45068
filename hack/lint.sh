#!/usr/bin/env bash
# Checks formatting, then vets and builds every package for each
# architecture nodeboot supports (the arm64 code must at least compile and
# vet clean on an amd64 machine, and the other way round).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
GO=${GO:-go}

echo "==> gofmt"
mapfile -t files < <(find . -type f -name '*.go' -not -path './.git/*' -not -path '*/testdata/*')
unformatted=$(gofmt -l "${files[@]}")
if [[ -n "$unformatted" ]]; then
	echo "These files need gofmt -w:" >&2
	echo "$unformatted" >&2
	exit 1
fi

# Test gating (make unit: -short -tags=nointegration; make integration:
# -run '^TestIntegration'): a file built only without nointegration holds
# TestIntegration* tests alone, or make unit would leave out a unit test
# and make integration would not run it either. (A test that traces but is
# not gated fails in make unit: interceptor/unitbuild_nointegration.go.)
echo "==> test gating"
mapfile -t tagged < <(grep -lE '^//go:build .*!nointegration' --include='*_test.go' -r . --exclude-dir=e2e --exclude-dir=.git || true)
misplaced=""
for f in "${tagged[@]}"; do
	# No pipe into grep -q under pipefail; collect, then test.
	hits=$(grep -nE '^func (Test|Fuzz)' "$f" | grep -vE '^[0-9]+:func (TestIntegration[A-Za-z0-9_]*|TestMain)\(' || true)
	if [[ -n "$hits" ]]; then
		misplaced+="$f: ${hits//$'\n'/; }"$'\n'
	fi
done
if [[ -n "$misplaced" ]]; then
	echo "These files are built only without the nointegration tag but hold tests not named TestIntegration*; move the tests to an untagged file, or rename them if they trace:" >&2
	echo -n "$misplaced" >&2
	exit 1
fi

for arch in amd64 arm64; do
	echo "==> go build and go vet for linux/$arch"
	GOOS=linux GOARCH=$arch CGO_ENABLED=0 "$GO" build ./...
	GOOS=linux GOARCH=$arch CGO_ENABLED=0 "$GO" vet ./...
done

# The configuration vocabulary has no ptrace in it: profiles and rules must
# build for any GOOS, so that tools on other systems can read and write them.
echo "==> go build for darwin/arm64 (profile, interceptor/rules)"
GOOS=darwin GOARCH=arm64 CGO_ENABLED=0 "$GO" build ./profile ./interceptor/rules
