#!/usr/bin/env bash
# Installs the Debian packages the tests need when they are missing:
#
#	hack/deps.sh            # gcc, libc6-dev, strace, proot, qemu-user-static
#	hack/deps.sh make       # just these
#
# It installs only as root with apt-get; elsewhere it says what is missing
# and exits 0 (the tests that need a missing tool skip and say why).
set -euo pipefail

pkgs=("$@")
if [[ ${#pkgs[@]} -eq 0 ]]; then
	pkgs=(gcc libc6-dev strace proot qemu-user-static)
fi

if ! command -v dpkg-query >/dev/null || ! command -v apt-get >/dev/null; then
	echo "==> deps: not a Debian system; make sure these are installed: ${pkgs[*]}" >&2
	exit 0
fi

missing=()
for p in "${pkgs[@]}"; do
	# No pipe into grep -q: under pipefail, grep exiting early can SIGPIPE the writer.
	status=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
	if [[ $status != *'install ok installed'* ]]; then
		missing+=("$p")
	fi
done
if [[ ${#missing[@]} -eq 0 ]]; then
	echo "==> deps: ${pkgs[*]} installed"
	exit 0
fi
if [[ $(id -u) -ne 0 ]]; then
	echo "==> deps: missing ${missing[*]}; tests that need them will skip." >&2
	echo "    Install them with: sudo apt-get install -y ${missing[*]}" >&2
	exit 0
fi

echo "==> deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
for try in 1 2 3; do
	if apt-get update -qq && apt-get install -y -qq --no-install-recommends "${missing[@]}" </dev/null >/dev/null; then
		exit 0
	fi
	echo "deps: apt-get failed (try $try of 3)" >&2
	sleep $((try * 5))
done
echo "deps: could not install ${missing[*]}" >&2
exit 1
