/* escape: tries to change a guest file through one channel (a "case").
 *
 *   escape [-thread|-child] CASE GUEST_FILE [AUX]
 *   escape list
 *
 * GUEST_FILE is covered by a redirect rule; its host side is an ordinary
 * file the test owns. Each case tries to write the marker "escape:CASE\n"
 * (escape_marker) to GUEST_FILE by its own route and returns 0 when the
 * write call succeeded, or the errno of the first call that failed. The
 * case's line is "case CASE ok" or "case CASE errno N (name)"; a case may
 * print "note CASE: ..." lines before it. The program exits 0 (2 on a bad
 * command line or an unknown case). The Go test then checks that the host
 * file never changed and that every "ok" landed the marker in the tree.
 *
 * -thread runs the case in a new thread, -child in a forked child (which
 * prints the case's line itself). "list" prints one line per case: name,
 * what it does, and the contexts it runs in ("plain,thread,child").
 *
 * AUX is a directory the case may use, writable and outside every rule.
 * The parent directory of GUEST_FILE has a "twin": the directory whose name
 * has the last character incremented by one (".../g/f" and ".../h/f"),
 * which no rule covers and which holds a file of the same name: a path of
 * the same length that reaches another file (the race cases flip that one
 * byte).
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
	/* ESCAPE_* bits: contexts the case does not run in (0: all) */
	unsigned flags;
};

/* The case makes its own threads or children; running it in a thread or a
 * child adds nothing. */
#define ESCAPE_PLAIN_ONLY 3u
#define ESCAPE_NO_THREAD 1u
#define ESCAPE_NO_CHILD 2u

/* Tables, each ended by an entry with name == NULL. */
extern const struct escape_case path_cases[];
extern const struct escape_case mem_cases[];

/* The case being run, and the marker it writes. */
extern const char *escape_case_name;
extern char escape_marker[256];
/* escape_stage2 is 1 when the program was re-executed by a case
 * (escape_reexec) to run the case's second stage. */
extern int escape_stage2;

/* write_marker writes escape_marker to fd; 0 or errno. */
int write_marker(int fd);
/* open_write opens path (relative to dirfd) O_WRONLY|O_TRUNC, writes the
 * marker and closes; 0 or errno. */
int open_write(int dirfd, const char *path);
/* note prints "note CASE: ..." on stdout. */
void note(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* escape_reexec execs this program again with the same case, guest and aux,
 * as its stage 2 (a fresh address space); it returns errno if exec fails. */
int escape_reexec(const char *guest, const char *aux);

#endif
