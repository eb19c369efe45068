// revlink does what runc does with its cgroup root handle, and what a
// program does after chdir, and prints what the kernel (or nodeboot)
// answered, one key=value per line:
//
//	revlink DIR FILE OTHER
//
// DIR is a redirected directory, FILE a redirected file, OTHER a path no
// rule covers. It opens DIR with openat2(O_PATH|O_DIRECTORY) as runc opens
// /sys/fs/cgroup, then reads the fd's magic links in every spelling
// (readlink, readlinkat, /proc/thread-self, /proc/self, /proc/PID/task/TID,
// relative to a /proc dirfd), with a short buffer too; then chdir and
// fchdir into DIR and reads getcwd and /proc/self/cwd. Raw syscalls only,
// so that libc turns no call into another.
//
// Exit status: 0 when every call was made, 3 on a setup error.
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#ifndef SYS_openat2
#define SYS_openat2 437
#endif

struct nb_open_how {
	uint64_t flags;
	uint64_t mode;
	uint64_t resolve;
};

static char buf[8192];

// rl prints key=<the link's text> after readlinkat(dirfd, path).
static void rl(const char *key, int dirfd, const char *path) {
	memset(buf, 'Z', sizeof buf);
	long n;
	// An empty path always goes to readlinkat.
#ifdef SYS_readlink
	if (dirfd == AT_FDCWD && *path)
		n = syscall(SYS_readlink, path, buf, sizeof buf);
	else
#endif
		n = syscall(SYS_readlinkat, dirfd, path, buf, sizeof buf);
	if (n < 0) {
		printf("%s=errno:%d\n", key, errno);
		return;
	}
	// No NUL, and the byte after the answer is untouched.
	printf("%s=%.*s after=%c\n", key, (int)n, buf, buf[n]);
}

static void cwd(const char *key, size_t size) {
	memset(buf, 'Z', sizeof buf);
	long n = syscall(SYS_getcwd, buf, size);
	if (n < 0) {
		printf("%s=errno:%d\n", key, errno);
		return;
	}
	// The result includes its NUL, and the byte after it is untouched.
	printf("%s=%s ret=%ld nul=%d after=%c\n", key, buf, n, buf[n - 1] == 0, buf[n]);
}

int main(int argc, char **argv) {
	if (argc != 4) {
		fprintf(stderr, "usage: revlink DIR FILE OTHER\n");
		return 3;
	}
	const char *dir = argv[1], *file = argv[2], *other = argv[3];
	struct nb_open_how how = {.flags = O_PATH | O_DIRECTORY | O_CLOEXEC};
	int fd = syscall(SYS_openat2, AT_FDCWD, dir, &how, sizeof how);
	if (fd < 0) {
		fprintf(stderr, "openat2 %s: %s\n", dir, strerror(errno));
		return 3;
	}
	int ffd = open(file, O_RDONLY);
	int ofd = open(other, O_RDONLY);
	int proc = open("/proc", O_RDONLY | O_DIRECTORY);
	if (ffd < 0 || ofd < 0 || proc < 0) {
		fprintf(stderr, "open: %s\n", strerror(errno));
		return 3;
	}
	char p[256];
	snprintf(p, sizeof p, "/proc/thread-self/fd/%d", fd);
	rl("thread_self", AT_FDCWD, p);
	snprintf(p, sizeof p, "/proc/self/fd/%d", fd);
	rl("self", AT_FDCWD, p);
	snprintf(p, sizeof p, "/proc/%d/task/%ld/fd/%d", getpid(), (long)syscall(SYS_gettid), fd);
	rl("task", AT_FDCWD, p);
	snprintf(p, sizeof p, "thread-self/fd/%d", fd);
	rl("procfd", proc, p);
	snprintf(p, sizeof p, "/proc/self/fd/%d", ffd);
	rl("file", AT_FDCWD, p);
	snprintf(p, sizeof p, "/proc/self/fd/%d", ofd);
	rl("other", AT_FDCWD, p);

	// A short buffer: readlink truncates to it, without a NUL, and
	// returns its size; the byte after it is untouched.
	snprintf(p, sizeof p, "/proc/self/fd/%d", fd);
	memset(buf, 'Z', sizeof buf);
	long n = syscall(SYS_readlinkat, AT_FDCWD, p, buf, 5);
	printf("short=%.*s ret=%ld after=%c\n", n < 0 ? 0 : (int)n, buf, n, buf[5]);

	// A buffer the guest path fits in exactly; the kernel's answer (a
	// longer host path) may not.
	size_t dlen = strlen(dir);
	memset(buf, 'Z', sizeof buf);
	n = syscall(SYS_readlinkat, AT_FDCWD, p, buf, dlen);
	printf("fit=%.*s ret=%ld after=%c\n", n < 0 ? 0 : (int)n, buf, n, buf[dlen]);

	// readlinkat of a handle of the link itself, with an empty path, as
	// filepath-securejoin (runc 1.2+) reads /proc/thread-self/fd/N.
	snprintf(p, sizeof p, "/proc/thread-self/fd/%d", fd);
	int lfd = open(p, O_PATH | O_NOFOLLOW);
	if (lfd < 0) {
		fprintf(stderr, "open %s: %s\n", p, strerror(errno));
		return 3;
	}
	rl("empty_path", lfd, "");
	close(lfd);
	// The same through a private procfs (fsopen, fsmount: a detached
	// mount), as securejoin prefers.
	int fsfd = syscall(SYS_fsopen, "proc", 0);
	int mfd = -1;
	if (fsfd >= 0 && syscall(SYS_fsconfig, fsfd, 6 /* FSCONFIG_CMD_CREATE */, NULL, NULL, 0) == 0)
		mfd = syscall(SYS_fsmount, fsfd, 0, 0);
	if (mfd >= 0) {
		snprintf(p, sizeof p, "thread-self/fd/%d", fd);
		lfd = openat(mfd, p, O_PATH | O_NOFOLLOW);
		if (lfd >= 0) {
			rl("private_proc", lfd, "");
		} else {
			printf("private_proc=open:%d\n", errno);
		}
	} else {
		printf("private_proc=unsupported\n");
	}

	cwd("cwd_before", sizeof buf);
	if (chdir(dir) != 0) {
		fprintf(stderr, "chdir %s: %s\n", dir, strerror(errno));
		return 3;
	}
	cwd("cwd", sizeof buf);
	rl("self_cwd", AT_FDCWD, "/proc/self/cwd");
	cwd("cwd_exact", dlen + 1);
	cwd("cwd_small", dlen);
	if (chdir("/") != 0 || fchdir(fd) != 0) {
		fprintf(stderr, "fchdir: %s\n", strerror(errno));
		return 3;
	}
	cwd("fchdir_cwd", sizeof buf);
	if (chdir("/") != 0) {
		return 3;
	}
	cwd("root_cwd", sizeof buf);
	return 0;
}
