// threads starts NTHREADS pthreads that all open and read the same set of
// paths ITERS times at once and compare every read with the expected
// content.
//
// Usage: threads NTHREADS ITERS PATH WANT [PATH WANT...]
//
// A WANT of "!ENOENT" expects open to fail with ENOENT. Prints
// "ok opens=N" and exits 0 when every result was right; otherwise prints
// one "mismatch ..." line per wrong result (at most 20) and exits 1.
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

static int nthreads, iters, npairs;
static char **paths, **wants;
static atomic_long opens, bad;
static pthread_barrier_t start;
static pthread_mutex_t printmu = PTHREAD_MUTEX_INITIALIZER;

static void mismatch(int th, int it, const char *path, const char *got, const char *want) {
	if (atomic_fetch_add(&bad, 1) >= 20)
		return;
	pthread_mutex_lock(&printmu);
	printf("mismatch thread=%d iter=%d path=%s got=%s want=%s\n", th, it, path, got, want);
	pthread_mutex_unlock(&printmu);
}

static void *worker(void *arg) {
	int th = (int)(long)arg;
	char buf[4096], got[4200];
	pthread_barrier_wait(&start);
	for (int it = 0; it < iters; it++) {
		for (int k = 0; k < npairs; k++) {
			// Rotate the order per thread so that different paths are
			// in flight at the same moment.
			int i = (k + th) % npairs;
			int fd = (int)syscall(SYS_openat, AT_FDCWD, paths[i], O_RDONLY | O_CLOEXEC);
			atomic_fetch_add(&opens, 1);
			if (fd < 0) {
				snprintf(got, sizeof got, "!%s", errno == ENOENT ? "ENOENT" : strerror(errno));
				if (strcmp(got, wants[i]))
					mismatch(th, it, paths[i], got, wants[i]);
				continue;
			}
			ssize_t n = read(fd, buf, sizeof buf - 1);
			close(fd);
			if (n < 0)
				n = 0;
			buf[n] = 0;
			if (strcmp(buf, wants[i]))
				mismatch(th, it, paths[i], buf, wants[i]);
			// Also a stat of the same path from every thread: a second
			// syscall with another argument layout.
			if (th % 2) {
				struct stat st;
				if (syscall(SYS_newfstatat, AT_FDCWD, paths[i], &st, 0) == 0 &&
				    st.st_size != (off_t)strlen(wants[i])) {
					snprintf(got, sizeof got, "size %lld", (long long)st.st_size);
					mismatch(th, it, paths[i], got, wants[i]);
				}
			}
		}
	}
	return NULL;
}

int main(int argc, char **argv) {
	if (argc < 5 || (argc - 3) % 2) {
		fprintf(stderr, "usage: threads NTHREADS ITERS PATH WANT...\n");
		return 3;
	}
	setvbuf(stdout, NULL, _IOLBF, 0);
	nthreads = atoi(argv[1]);
	iters = atoi(argv[2]);
	npairs = (argc - 3) / 2;
	paths = calloc((size_t)npairs, sizeof *paths);
	wants = calloc((size_t)npairs, sizeof *wants);
	for (int i = 0; i < npairs; i++) {
		paths[i] = argv[3 + 2 * i];
		wants[i] = argv[4 + 2 * i];
	}
	pthread_t *ths = calloc((size_t)nthreads, sizeof *ths);
	pthread_barrier_init(&start, NULL, (unsigned)nthreads);
	for (int i = 0; i < nthreads; i++)
		if (pthread_create(&ths[i], NULL, worker, (void *)(long)i)) {
			fprintf(stderr, "pthread_create failed\n");
			return 3;
		}
	for (int i = 0; i < nthreads; i++)
		pthread_join(ths[i], NULL);
	if (atomic_load(&bad)) {
		printf("failed mismatches=%ld opens=%ld\n", atomic_load(&bad), atomic_load(&opens));
		return 1;
	}
	printf("ok opens=%ld\n", atomic_load(&opens));
	return 0;
}
