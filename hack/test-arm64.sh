#!/usr/bin/env bash
# Runs the unit tests built for linux/arm64 under qemu-user on this
# (amd64) machine: the arm64 syscall table, register accessors and
# everything else arch-specific that unit tests reach are run, not only
# compiled (hack/lint.sh compiles and vets arm64).
#
#	hack/test-arm64.sh                    # every package (make test-arm64)
#	hack/test-arm64.sh ./interceptor/...  # these only (make test runs this)
#	TESTFLAGS='-run Matcher -v' hack/test-arm64.sh
#
# qemu-user-static is installed with hack/deps.sh when missing (as root).
#
# What it cannot run: anything that traces. qemu-user implements no
# ptrace (the call fails with ENOSYS) and refuses seccomp filters
# (prctl(PR_SET_SECCOMP) fails with EINVAL: a guest filter would see the
# host's syscall numbers), and a host tracer could not trace the guest's
# syscalls anyway, only qemu's translation of them. Tracing on arm64 needs
# an arm64 kernel (a real machine, or qemu-system-aarch64 with an arm64
# kernel and root file system, which this script does not set up). So it
# runs "make unit"'s set (-short -tags=nointegration), less the tests below.
#
# Cost, measured on the 2-core machine under a load of ~18: ./interceptor/...
# after hack/lint.sh's arm64 vet, 24 s of CPU (55 s wall); every package,
# 30 s of CPU on a warm build cache, 2 min of CPU (5.5 min wall) on a cold
# one. "make test" runs the first, "make test-arm64" the second.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
GO=${GO:-go}

qemu=$(command -v qemu-aarch64-static || command -v qemu-aarch64 || true)
if [[ -z "$qemu" ]]; then
	hack/deps.sh qemu-user-static
	qemu=$(command -v qemu-aarch64-static || command -v qemu-aarch64 || true)
fi
if [[ -z "$qemu" ]]; then
	if [[ ${CI:-} == true || ${CI:-} == 1 ]]; then
		echo "test-arm64: CI=$CI but no qemu-aarch64-static after hack/deps.sh qemu-user-static" >&2
		exit 1
	fi
	echo "==> test-arm64: skipped: no qemu-aarch64-static (apt-get install qemu-user-static)" >&2
	exit 0
fi

# Tests that cannot pass under qemu-user, and why:
#   - they run the test binary again (os.Args[0]) as a child process: the
#     kernel cannot exec an arm64 binary without binfmt_misc, which this
#     script does not register (it is a host-wide setting);
#   - TestCgroupTree reads this process's /proc/PID/stat, which qemu-user
#     rewrites for the emulated process (no thread count).
skip='^(TestUsage|TestConfigPrecedence|TestFollow|TestMissing|TestCgroupTree)$'
# ...in these packages only; the same names elsewhere still run.
reexec_pkgs=(./internal/cli/up ./internal/cli/logs ./internal/testenv ./vkernel)

flags=(-count=1 -short -tags=nointegration -exec "$qemu")
set -f
# shellcheck disable=SC2206
flags+=(${TESTFLAGS:-})
set +f
export CGO_ENABLED=0 GOOS=linux GOARCH=arm64
if [[ $# -gt 0 ]]; then
	echo "==> GOARCH=arm64 go test ${flags[*]} $* (under $qemu)"
	exec "$GO" test "${flags[@]}" "$@"
fi
mapfile -t pkgs < <("$GO" list ./... | sed "s|^github.com/nodeboot/nodeboot|.|")
other=()
for p in "${pkgs[@]}"; do
	case " ${reexec_pkgs[*]} " in
	*" $p "*) ;;
	*) other+=("$p") ;;
	esac
done
echo "==> GOARCH=arm64 go test ${flags[*]} ./... (under $qemu)"
"$GO" test "${flags[@]}" "${other[@]}"
"$GO" test "${flags[@]}" -skip "$skip" "${reexec_pkgs[@]}"
