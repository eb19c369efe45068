#!/usr/bin/env bash
# Shows nodeboot's main job: a command reads /proc/sys/kernel/panic and gets
# the content of a file in a fresh temp dir instead, while nodeboot logs
# the rewrite and prints its counters.
#
#	hack/demo.sh [path/to/nodeboot]     (default bin/nodeboot; make demo builds it)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
bin=${1:-bin/nodeboot}

fake=$(mktemp -d -t nodeboot-demo.XXXXXX)
trap 'rm -rf "$fake"' EXIT
echo 42 >"$fake/panic"

echo "==> real /proc/sys/kernel/panic: $(cat /proc/sys/kernel/panic 2>/dev/null || echo '(unreadable)')"
echo "==> fake tree: $fake/panic holds 42"
echo "==> $bin exec --stats --log-intercepts --redirect /proc/sys/kernel=$fake -- cat /proc/sys/kernel/panic"
got=$("$bin" exec --stats --log-intercepts --redirect "/proc/sys/kernel=$fake" -- cat /proc/sys/kernel/panic)
echo "$got"
if [[ "$got" != 42 ]]; then
	echo "demo: cat read \"$got\", not the fake 42: the redirect did not happen" >&2
	exit 1
fi
echo "==> ok: cat read the fake file, not the kernel's"
