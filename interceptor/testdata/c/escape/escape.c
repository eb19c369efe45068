/* main of the escape program: see escape.h. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "escape.h"

const char *escape_case_name;
char escape_marker[256];
int escape_stage2;

int write_marker(int fd)
{
	size_t n = strlen(escape_marker);
	ssize_t w = write(fd, escape_marker, n);
	if (w < 0)
		return errno;
	if ((size_t)w != n)
		return EIO;
	return 0;
}

int open_write(int dirfd, const char *path)
{
	int fd = openat(dirfd, path, O_WRONLY | O_TRUNC | O_CLOEXEC);
	if (fd < 0)
		return errno;
	int err = write_marker(fd);
	close(fd);
	return err;
}

void note(const char *fmt, ...)
{
	va_list ap;
	printf("note %s: ", escape_case_name);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf("\n");
	fflush(stdout);
}

int escape_reexec(const char *guest, const char *aux)
{
	char *argv[] = {"escape", "-stage2", (char *)escape_case_name, (char *)guest, (char *)aux, NULL};
	if (!aux)
		argv[4] = NULL;
	fflush(stdout);
	execv("/proc/self/exe", argv);
	return errno;
}

static const struct escape_case *find(const char *name)
{
	const struct escape_case *tables[] = {path_cases, mem_cases};
	for (size_t t = 0; t < sizeof tables / sizeof tables[0]; t++)
		for (const struct escape_case *c = tables[t]; c->name; c++)
			if (strcmp(c->name, name) == 0)
				return c;
	return NULL;
}

static void list(void)
{
	const struct escape_case *tables[] = {path_cases, mem_cases};
	for (size_t t = 0; t < sizeof tables / sizeof tables[0]; t++)
		for (const struct escape_case *c = tables[t]; c->name; c++)
			printf("%s\t%s\tplain%s%s\n", c->name, c->what, c->flags & ESCAPE_NO_THREAD ? "" : ",thread",
			       c->flags & ESCAPE_NO_CHILD ? "" : ",child");
}

static void report(int err)
{
	if (err == 0)
		printf("case %s ok\n", escape_case_name);
	else
		printf("case %s errno %d (%s)\n", escape_case_name, err, strerror(err));
	fflush(stdout);
}

struct run {
	const struct escape_case *c;
	const char *guest, *aux;
};

static void *run_thread(void *arg)
{
	struct run *r = arg;
	report(r->c->run(r->guest, r->aux));
	return NULL;
}

int main(int argc, char **argv)
{
	if (argc == 2 && strcmp(argv[1], "list") == 0) {
		list();
		return 0;
	}
	const char *ctx = "plain";
	if (argc > 1 && argv[1][0] == '-') {
		ctx = argv[1] + 1;
		argv++;
		argc--;
	}
	if (argc < 3) {
		fprintf(stderr, "usage: escape [-thread|-child] CASE GUEST_FILE [AUX] | escape list\n");
		return 2;
	}
	const struct escape_case *c = find(argv[1]);
	if (!c) {
		fprintf(stderr, "escape: unknown case %s\n", argv[1]);
		return 2;
	}
	escape_case_name = c->name;
	snprintf(escape_marker, sizeof escape_marker, "escape:%s\n", c->name);
	struct run r = {c, argv[2], argc > 3 ? argv[3] : NULL};
	if (strcmp(ctx, "plain") == 0 || strcmp(ctx, "stage2") == 0) {
		escape_stage2 = strcmp(ctx, "stage2") == 0;
		report(c->run(r.guest, r.aux));
	} else if (strcmp(ctx, "thread") == 0) {
		pthread_t th;
		int err = pthread_create(&th, NULL, run_thread, &r);
		if (err) {
			fprintf(stderr, "escape: pthread_create: %s\n", strerror(err));
			return 2;
		}
		pthread_join(th, NULL);
	} else if (strcmp(ctx, "child") == 0) {
		fflush(stdout);
		pid_t pid = fork();
		if (pid < 0) {
			perror("escape: fork");
			return 2;
		}
		if (pid == 0) {
			report(c->run(r.guest, r.aux));
			_exit(0);
		}
		int st;
		if (waitpid(pid, &st, 0) < 0 || !WIFEXITED(st) || WEXITSTATUS(st) != 0) {
			fprintf(stderr, "escape: child of case %s ended with status %#x\n", c->name, st);
			return 2;
		}
	} else {
		fprintf(stderr, "escape: unknown context -%s\n", ctx);
		return 2;
	}
	return 0;
}
