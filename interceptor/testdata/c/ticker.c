// ticker reads PATH every few milliseconds and prints "tick N data=..."
// until the file DONE exists, then prints "done" and exits 0. The tests stop
// and continue it with signals and watch the ticks.
//
// Usage: ticker PATH DONE
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

int main(int argc, char **argv) {
	if (argc != 3) {
		fprintf(stderr, "usage: ticker PATH DONE\n");
		return 3;
	}
	setvbuf(stdout, NULL, _IOLBF, 0);
	char buf[256];
	for (long n = 0;; n++) {
		int fd = (int)syscall(SYS_openat, AT_FDCWD, argv[1], O_RDONLY | O_CLOEXEC);
		ssize_t got = fd < 0 ? -1 : read(fd, buf, sizeof buf - 1);
		if (fd >= 0)
			close(fd);
		buf[got < 0 ? 0 : got] = 0;
		printf("tick %ld data=%s\n", n, buf);
		if (syscall(SYS_faccessat, AT_FDCWD, argv[2], F_OK) == 0) {
			printf("done\n");
			return 0;
		}
		struct timespec ts = {0, 5 * 1000 * 1000};
		nanosleep(&ts, NULL);
	}
}
