/* escape: tries to change a guest file through one channel (a "case").
 *
 *   escape CASE GUEST_FILE [AUX]
 *
 * GUEST_FILE is covered by a redirect rule; its host side is an ordinary
 * file the test owns. Each case tries to write the marker "escape:CASE\n"
 * (escape_marker) to GUEST_FILE by its own route and returns 0 when the
 * write call succeeded, or the errno of the first call that failed. main
 * prints one line, "case CASE ok" or "case CASE errno N (name)", and exits
 * 0 (it exits 2 on a bad command line or an unknown case). The Go test then
 * checks that the host file never changed and that every "ok" landed the
 * marker in the tree.
 *
 * Cases live in several files, one table each (path_cases: how a path names
 * the file; mem_cases: scratch memory, races and other channels); main
 * (escape.c) looks a case up in every table.
 */
#ifndef ESCAPE_H
#define ESCAPE_H

struct escape_case {
	const char *name;
	/* what the case does, for humans reading test output */
	const char *what;
	int (*run)(const char *guest, const char *aux);
};

/* Tables, each ended by an entry with name == NULL. */
extern const struct escape_case path_cases[];
extern const struct escape_case mem_cases[];

/* The case being run, and the marker it writes. */
extern const char *escape_case_name;
extern char escape_marker[256];

/* write_marker writes escape_marker to fd; 0 or errno. */
int write_marker(int fd);
/* open_write opens path (relative to dirfd) O_WRONLY|O_TRUNC, writes the
 * marker and closes; 0 or errno. */
int open_write(int dirfd, const char *path);

#endif
