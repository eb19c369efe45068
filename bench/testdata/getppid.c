/*
 * getppid: calls syscall(SYS_getppid) N times (default 1,000,000).
 *
 * No tracer in the benchmark asks to see getppid, so this measures what a
 * tracer costs a program whose syscalls it does not care about: nothing for a
 * seccomp-BPF tracer (a few BPF instructions per call), two stops per call for
 * a tracer that stops at every syscall.
 *
 * Exits 0 and prints "ok n=N loop_ns=T" only when every call returned the
 * same positive parent pid.
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	long n = 1000000;
	if (argc > 1)
		n = atol(argv[1]);
	if (n <= 0) {
		fprintf(stderr, "getppid: bad count %s\n", argv[1]);
		return 2;
	}
	long first = syscall(SYS_getppid);
	if (first <= 0) {
		fprintf(stderr, "getppid: first call returned %ld\n", first);
		return 1;
	}
	struct timespec t0, t1;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	long bad = 0;
	for (long i = 0; i < n; i++) {
		if (syscall(SYS_getppid) != first)
			bad++;
	}
	clock_gettime(CLOCK_MONOTONIC, &t1);
	if (bad) {
		fprintf(stderr, "getppid: %ld of %ld calls did not return %ld\n", bad, n, first);
		return 1;
	}
	long long ns = (long long)(t1.tv_sec - t0.tv_sec) * 1000000000LL + (t1.tv_nsec - t0.tv_nsec);
	printf("ok n=%ld loop_ns=%lld\n", n, ns);
	return 0;
}
