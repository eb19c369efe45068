/*
 * openread PATH [N]: N times (default 20,000) open PATH, read it, close it.
 *
 * Every read must return exactly "1\n". Exits 0 and prints
 * "ok n=N loop_ns=T" only when all N rounds succeeded; the first failure
 * (open, read, content or close) is reported on stderr with exit status 1.
 * The benchmark points PATH at a file that exists only below the redirect's
 * host directory, so a broken redirect fails here instead of running fast.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static const char want[] = "1\n";

int main(int argc, char **argv)
{
	if (argc < 2 || argc > 3) {
		fprintf(stderr, "usage: openread PATH [N]\n");
		return 2;
	}
	const char *path = argv[1];
	long n = 20000;
	if (argc > 2)
		n = atol(argv[2]);
	if (n <= 0) {
		fprintf(stderr, "openread: bad count %s\n", argv[2]);
		return 2;
	}
	char buf[64];
	struct timespec t0, t1;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (long i = 0; i < n; i++) {
		int fd = open(path, O_RDONLY | O_CLOEXEC);
		if (fd < 0) {
			fprintf(stderr, "openread: open %s (round %ld): %s\n", path, i, strerror(errno));
			return 1;
		}
		ssize_t r = read(fd, buf, sizeof buf);
		if (r < 0) {
			fprintf(stderr, "openread: read %s (round %ld): %s\n", path, i, strerror(errno));
			return 1;
		}
		if ((size_t)r != sizeof want - 1 || memcmp(buf, want, sizeof want - 1) != 0) {
			fprintf(stderr, "openread: %s (round %ld): read %zd bytes %.*s, want \"1\\n\"\n",
				path, i, r, (int)(r > 0 ? r : 0), buf);
			return 1;
		}
		if (close(fd) != 0) {
			fprintf(stderr, "openread: close %s (round %ld): %s\n", path, i, strerror(errno));
			return 1;
		}
	}
	clock_gettime(CLOCK_MONOTONIC, &t1);
	long long ns = (long long)(t1.tv_sec - t0.tv_sec) * 1000000000LL + (t1.tv_nsec - t0.tv_nsec);
	printf("ok n=%ld loop_ns=%lld\n", n, ns);
	return 0;
}
