/* main of the escape program: see escape.h. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "escape.h"

const char *escape_case_name;
char escape_marker[256];

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
			printf("%s\t%s\n", c->name, c->what);
}

int main(int argc, char **argv)
{
	if (argc == 2 && strcmp(argv[1], "list") == 0) {
		list();
		return 0;
	}
	if (argc < 3) {
		fprintf(stderr, "usage: escape CASE GUEST_FILE [AUX] | escape list\n");
		return 2;
	}
	const struct escape_case *c = find(argv[1]);
	if (!c) {
		fprintf(stderr, "escape: unknown case %s\n", argv[1]);
		return 2;
	}
	escape_case_name = c->name;
	snprintf(escape_marker, sizeof escape_marker, "escape:%s\n", c->name);
	int err = c->run(argv[2], argc > 3 ? argv[3] : NULL);
	if (err == 0)
		printf("case %s ok\n", c->name);
	else
		printf("case %s errno %d (%s)\n", c->name, err, strerror(err));
	fflush(stdout);
	return 0;
}
