/*
 * runstat STATFILE CMD [ARG...]: runs CMD as a child, waits for it with
 * wait4 and writes "wall_ns maxrss_kib exit_code signal cpu_ns" to STATFILE
 * (cpu_ns: user+system time of CMD and of the descendants it reaped); exits
 * with CMD's exit status (128+N when killed by signal N).
 *
 * Why a C launcher: Go's os/exec starts children with CLONE_VM|CLONE_VFORK,
 * and the kernel folds the high-water RSS of the address space a process
 * leaves at execve into its ru_maxrss. A child of the (large) Go test binary
 * therefore reports at least the test binary's RSS. runstat is a tiny static
 * program, so the ru_maxrss of its child is the child's own peak (and that of
 * the child's reaped descendants).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	if (argc < 3) {
		fprintf(stderr, "usage: runstat STATFILE CMD [ARG...]\n");
		return 125;
	}
	struct timespec t0, t1;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	pid_t pid = fork();
	if (pid < 0) {
		fprintf(stderr, "runstat: fork: %s\n", strerror(errno));
		return 125;
	}
	if (pid == 0) {
		execvp(argv[2], argv + 2);
		fprintf(stderr, "runstat: exec %s: %s\n", argv[2], strerror(errno));
		_exit(127);
	}
	int status;
	struct rusage ru;
	pid_t w;
	do {
		w = wait4(pid, &status, 0, &ru);
	} while (w < 0 && errno == EINTR);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	if (w < 0) {
		fprintf(stderr, "runstat: wait4: %s\n", strerror(errno));
		return 125;
	}
	long long ns = (long long)(t1.tv_sec - t0.tv_sec) * 1000000000LL + (t1.tv_nsec - t0.tv_nsec);
	int code = 0, sig = 0;
	if (WIFEXITED(status))
		code = WEXITSTATUS(status);
	else if (WIFSIGNALED(status))
		sig = WTERMSIG(status);
	long long cpu = ((long long)ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1000000000LL +
			((long long)ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) * 1000LL;
	FILE *f = fopen(argv[1], "w");
	if (!f || fprintf(f, "%lld %ld %d %d %lld\n", ns, ru.ru_maxrss, code, sig, cpu) < 0 || fclose(f) != 0) {
		fprintf(stderr, "runstat: write %s: %s\n", argv[1], strerror(errno));
		return 125;
	}
	return sig ? 128 + sig : code;
}
