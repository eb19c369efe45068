// forker reads PATH in itself and in children made every way a C program
// makes them, and prints one tagged line per read:
//
//	parent data=...
//	fork data=...            (fork child)
//	grandchild data=...      (fork child of the fork child)
//	vfork-exec: <output of SYSC open PATH r>
//	spawn: <output of SYSC open PATH r>   (posix_spawn: clone3/CLONE_VFORK)
//	thread-fork data=...     (fork from a second thread)
//
// Usage: forker SYSC PATH
//
// Children run one after the other (the parent waits for each), so the
// output order is fixed. Exits 0 when every child exited 0.
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

static const char *path, *sysc;
static int failed;

static void readpath(const char *tag) {
	char buf[4096];
	int fd = (int)syscall(SYS_openat, AT_FDCWD, path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		printf("%s errno=%d\n", tag, errno);
		return;
	}
	ssize_t n = read(fd, buf, sizeof buf - 1);
	close(fd);
	buf[n < 0 ? 0 : n] = 0;
	// Contents are single words; strip a trailing newline.
	if (n > 0 && buf[n - 1] == '\n')
		buf[n - 1] = 0;
	printf("%s data=%s\n", tag, buf);
}

static void waitfor(pid_t pid, const char *what) {
	int st;
	if (waitpid(pid, &st, 0) != pid || !WIFEXITED(st) || WEXITSTATUS(st) != 0) {
		printf("%s child failed status=0x%x\n", what, st);
		failed = 1;
	}
}

static void *forkthread(void *arg) {
	(void)arg;
	fflush(stdout);
	pid_t pid = fork();
	if (pid == 0) {
		readpath("thread-fork");
		fflush(stdout);
		_exit(0);
	}
	waitfor(pid, "thread-fork");
	return NULL;
}

int main(int argc, char **argv) {
	if (argc != 3) {
		fprintf(stderr, "usage: forker SYSC PATH\n");
		return 3;
	}
	setvbuf(stdout, NULL, _IOLBF, 0);
	sysc = argv[1];
	path = argv[2];

	readpath("parent");

	pid_t pid = fork();
	if (pid == 0) {
		readpath("fork");
		pid_t g = fork();
		if (g == 0) {
			readpath("grandchild");
			_exit(0);
		}
		waitfor(g, "grandchild");
		_exit(failed);
	}
	waitfor(pid, "fork");

	char *args[] = {(char *)"sysc", (char *)"open", (char *)path, (char *)"r", NULL};
	printf("vfork-exec:\n");
	pid = vfork();
	if (pid == 0) {
		execve(sysc, args, environ);
		_exit(127);
	}
	waitfor(pid, "vfork-exec");

	printf("spawn:\n");
	if (posix_spawn(&pid, sysc, NULL, NULL, args, environ) != 0) {
		printf("posix_spawn failed\n");
		failed = 1;
	} else {
		waitfor(pid, "spawn");
	}

	pthread_t th;
	pthread_create(&th, NULL, forkthread, NULL);
	pthread_join(th, NULL);

	readpath("parent-end");
	return failed;
}
