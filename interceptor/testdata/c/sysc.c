// sysc performs exactly one syscall, named on the command line, with raw
// syscall(2) so that no libc wrapper turns one call into another (open into
// openat, stat into newfstatat, ...), and prints what happened, one
// key=value per line:
//
//	ret=<return value>
//	errno=<ENAME or 0>
//	data=<bytes read>      (escaped: \n, \\, \xHH)
//	fdpath=<readlink of /proc/self/fd/N for an fd it opened>
//	fdid=<st_dev:st_ino of that fd>
//	size=, mode=, uid=, gid=, mtime=, nlink=   (stat family)
//	link=, value=, list=, ftype=0x..., cwd=, entries=, events=, ...
//
// Usage: sysc [-u UID] SYSCALL ARGS...
//
// -u switches to that uid and gid (and no supplementary groups) before the
// call, so that permission checks apply to root's tests too.
//
// Dirfd arguments are "cwd" (AT_FDCWD) or a directory path that sysc opens
// with openat(AT_FDCWD, path, O_RDONLY|O_DIRECTORY) before the call. In
// every argument "@PID@" becomes getpid() and "@TID@" gettid().
//
// Open flags are letters: r O_RDONLY, w O_WRONLY, b O_RDWR, c O_CREAT,
// t O_TRUNC, x O_EXCL, a O_APPEND, d O_DIRECTORY, n O_NOFOLLOW, p O_PATH.
//
// Other commands: exit N, raise SIGNUM, segv, threadexit N.
//
// Exit status: 0 when the syscall was made (whatever it returned), 2 when
// it does not exist on this arch ("unsupported=1"), 3 on a usage or setup
// error.
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>
#include <utime.h>

#ifndef SYS_openat2
#define SYS_openat2 437
#endif
#ifndef SYS_faccessat2
#define SYS_faccessat2 439
#endif
#ifndef SYS_fchmodat2
#define SYS_fchmodat2 452
#endif
#ifndef SYS_setxattrat
#define SYS_setxattrat 463
#define SYS_getxattrat 464
#define SYS_listxattrat 465
#define SYS_removexattrat 466
#endif
#ifndef AT_EACCESS
#define AT_EACCESS 0x200
#endif
#ifndef RENAME_NOREPLACE
#define RENAME_NOREPLACE 1
#define RENAME_EXCHANGE 2
#endif

struct nb_open_how {
	uint64_t flags;
	uint64_t mode;
	uint64_t resolve;
};

struct nb_xattr_args {
	uint64_t value;
	uint32_t size;
	uint32_t flags;
};

static const char *errname(int e) {
	static char buf[32];
	switch (e) {
	case 0: return "0";
	case EPERM: return "EPERM";
	case ENOENT: return "ENOENT";
	case EIO: return "EIO";
	case EBADF: return "EBADF";
	case EACCES: return "EACCES";
	case EFAULT: return "EFAULT";
	case EBUSY: return "EBUSY";
	case EEXIST: return "EEXIST";
	case EXDEV: return "EXDEV";
	case ENOTDIR: return "ENOTDIR";
	case EISDIR: return "EISDIR";
	case EINVAL: return "EINVAL";
	case ENOSPC: return "ENOSPC";
	case EROFS: return "EROFS";
	case EMLINK: return "EMLINK";
	case ERANGE: return "ERANGE";
	case ENAMETOOLONG: return "ENAMETOOLONG";
	case ENOSYS: return "ENOSYS";
	case ENOTEMPTY: return "ENOTEMPTY";
	case ELOOP: return "ELOOP";
	case ENODATA: return "ENODATA";
	case EOPNOTSUPP: return "EOPNOTSUPP";
	case ETXTBSY: return "ETXTBSY";
	case E2BIG: return "E2BIG";
	}
	snprintf(buf, sizeof buf, "E%d", e);
	return buf;
}

// out prints key=value with value escaped so that it stays on one line.
static void out(const char *key, const char *val, size_t n) {
	printf("%s=", key);
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)val[i];
		if (c == '\n')
			fputs("\\n", stdout);
		else if (c == '\\')
			fputs("\\\\", stdout);
		else if (c < 0x20 || c >= 0x7f)
			printf("\\x%02x", c);
		else
			putchar(c);
	}
	putchar('\n');
}

static void outs(const char *key, const char *val) { out(key, val, strlen(val)); }

static void result(long r) {
	int e = r < 0 ? errno : 0;
	printf("ret=%ld\nerrno=%s\n", r, errname(e));
}

static void die(const char *msg) {
	fprintf(stderr, "sysc: %s\n", msg);
	exit(3);
}

__attribute__((unused)) static void unsupported(const char *name) {
	printf("unsupported=1\n");
	fprintf(stderr, "sysc: %s does not exist on this arch\n", name);
	exit(2);
}

static int oflags(const char *s) {
	int f = 0, acc = O_RDONLY;
	for (; *s; s++) {
		switch (*s) {
		case 'r': acc = O_RDONLY; break;
		case 'w': acc = O_WRONLY; break;
		case 'b': acc = O_RDWR; break;
		case 'c': f |= O_CREAT; break;
		case 't': f |= O_TRUNC; break;
		case 'x': f |= O_EXCL; break;
		case 'a': f |= O_APPEND; break;
		case 'd': f |= O_DIRECTORY; break;
		case 'n': f |= O_NOFOLLOW; break;
		case 'p': f |= O_PATH; break;
		default: die("bad open flag letter");
		}
	}
	return f | acc | O_CLOEXEC;
}

// atflags parses "0" or names joined by '|'.
static int atflags(const char *s) {
	int f = 0;
	char buf[256];
	snprintf(buf, sizeof buf, "%s", s);
	for (char *tok = strtok(buf, "|"); tok; tok = strtok(NULL, "|")) {
		if (!strcmp(tok, "0"))
			continue;
		else if (!strcmp(tok, "nofollow"))
			f |= AT_SYMLINK_NOFOLLOW;
		else if (!strcmp(tok, "follow"))
			f |= AT_SYMLINK_FOLLOW;
		else if (!strcmp(tok, "removedir"))
			f |= AT_REMOVEDIR;
		else if (!strcmp(tok, "eaccess"))
			f |= AT_EACCESS;
		else if (!strcmp(tok, "empty"))
			f |= AT_EMPTY_PATH;
		else if (!strcmp(tok, "noreplace"))
			f |= RENAME_NOREPLACE;
		else if (!strcmp(tok, "exchange"))
			f |= RENAME_EXCHANGE;
		else
			die("bad flag name");
	}
	return f;
}

static int amode(const char *s) {
	int m = 0;
	for (; *s; s++) {
		switch (*s) {
		case 'f': break;
		case 'r': m |= R_OK; break;
		case 'w': m |= W_OK; break;
		case 'x': m |= X_OK; break;
		default: die("bad access mode letter");
		}
	}
	return m;
}

static int dirfd_arg(const char *s) {
	if (!strcmp(s, "cwd"))
		return AT_FDCWD;
	int fd = (int)syscall(SYS_openat, AT_FDCWD, s, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0) {
		fprintf(stderr, "sysc: open dirfd %s: %s\n", s, strerror(errno));
		exit(3);
	}
	return fd;
}

// fdpath prints the fd's link (under nodeboot the guest path a host
// tree's file serves) and, as fdid=DEV:INO, which file it really is.
static void fdpath(int fd) {
	char p[64], buf[8192];
	snprintf(p, sizeof p, "/proc/self/fd/%d", fd);
	long n = syscall(SYS_readlinkat, AT_FDCWD, p, buf, sizeof buf - 1);
	if (n >= 0)
		out("fdpath", buf, (size_t)n);
	struct stat st;
	if (fstat(fd, &st) == 0)
		printf("fdid=%llu:%llu\n", (unsigned long long)st.st_dev, (unsigned long long)st.st_ino);
}

static void readall(int fd) {
	static char buf[65536];
	size_t got = 0;
	for (;;) {
		ssize_t n = read(fd, buf + got, sizeof buf - got);
		if (n < 0) {
			printf("readerr=%s\n", errname(errno));
			return;
		}
		if (n == 0 || got + (size_t)n >= sizeof buf) {
			got += (size_t)n;
			break;
		}
		got += (size_t)n;
	}
	out("data", buf, got);
}

static int cmpstr(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

static void listdir(int fd) {
	static char buf[65536];
	char *names[1024];
	int n = 0;
	for (;;) {
		long r = syscall(SYS_getdents64, fd, buf, sizeof buf);
		if (r <= 0)
			break;
		for (long off = 0; off < r;) {
			struct dirent64 *d = (struct dirent64 *)(buf + off);
			if (strcmp(d->d_name, ".") && strcmp(d->d_name, "..") && n < 1024)
				names[n++] = strdup(d->d_name);
			off += d->d_reclen;
		}
	}
	qsort(names, (size_t)n, sizeof names[0], cmpstr);
	printf("entries=");
	for (int i = 0; i < n; i++)
		printf("%s%s", i ? "," : "", names[i]);
	printf("\n");
}

// afteropen prints what an fd opened with flags fl leads to: where it is,
// and the data written to it or read from it.
static void afteropen(long fd, int fl, const char *data) {
	if (fd < 0)
		return;
	fdpath((int)fd);
	if (fl & O_PATH)
		return;
	if (fl & O_DIRECTORY) {
		listdir((int)fd);
		return;
	}
	int acc = fl & O_ACCMODE;
	if (data && acc != O_RDONLY) {
		ssize_t n = write((int)fd, data, strlen(data));
		printf("wrote=%zd\n", n);
		return;
	}
	if (acc != O_WRONLY)
		readall((int)fd);
}

static void printstat(const struct stat *st) {
	printf("size=%lld\nmode=%o\nuid=%u\ngid=%u\nnlink=%lu\nmtime=%lld\nino=%llu\n", (long long)st->st_size,
	       (unsigned)st->st_mode & 07777, (unsigned)st->st_uid, (unsigned)st->st_gid, (unsigned long)st->st_nlink,
	       (long long)st->st_mtime, (unsigned long long)st->st_ino);
}

static void printlist(const char *buf, long n) {
	// Names are NUL-separated; print the user.* ones sorted, comma-joined.
	char *names[256];
	int k = 0;
	for (long i = 0; i < n && k < 256;) {
		const char *s = buf + i;
		if (!strncmp(s, "user.", 5))
			names[k++] = strdup(s);
		i += (long)strlen(s) + 1;
	}
	qsort(names, (size_t)k, sizeof names[0], cmpstr);
	printf("list=");
	for (int i = 0; i < k; i++)
		printf("%s%s", i ? "," : "", names[i]);
	printf("\n");
}

static void *exit_thread(void *arg) {
	syscall(SYS_exit_group, (long)(intptr_t)arg);
	return NULL;
}

// subst replaces @PID@ and @TID@ in s.
static char *subst(const char *s) {
	char pid[32], tid[32];
	snprintf(pid, sizeof pid, "%ld", (long)getpid());
	snprintf(tid, sizeof tid, "%ld", (long)syscall(SYS_gettid));
	size_t cap = strlen(s) * 4 + 64;
	char *o = malloc(cap), *w = o;
	while (*s) {
		if (!strncmp(s, "@PID@", 5)) {
			w = stpcpy(w, pid);
			s += 5;
		} else if (!strncmp(s, "@TID@", 5)) {
			w = stpcpy(w, tid);
			s += 5;
		} else {
			*w++ = *s++;
		}
	}
	*w = 0;
	return o;
}

#define NEED(n)                                                                                                        \
	do {                                                                                                           \
		if (argc < (n))                                                                                        \
			die("too few arguments");                                                                      \
	} while (0)

int main(int argc, char **argv) {
	setvbuf(stdout, NULL, _IOLBF, 0);
	argv++;
	argc--;
	if (argc >= 2 && !strcmp(argv[0], "-u")) {
		long uid = strtol(argv[1], NULL, 10);
		if (setgroups(0, NULL) || setgid((gid_t)uid) || setuid((uid_t)uid))
			die("cannot switch uid");
		argv += 2;
		argc -= 2;
	}
	NEED(1);
	for (int i = 1; i < argc; i++)
		argv[i] = subst(argv[i]);
	const char *cmd = argv[0];
	char **a = argv + 1;
	argc--;
	long r;
	static char buf[8192];

	if (!strcmp(cmd, "exit")) {
		NEED(1);
		exit(atoi(a[0]));
	} else if (!strcmp(cmd, "raise")) {
		NEED(1);
		signal(atoi(a[0]), SIG_DFL);
		raise(atoi(a[0]));
		exit(99);
	} else if (!strcmp(cmd, "segv")) {
		volatile int *volatile bad = NULL;
		*bad = 1;
		exit(99);
	} else if (!strcmp(cmd, "threadexit")) {
		NEED(1);
		pthread_t th;
		pthread_create(&th, NULL, exit_thread, (void *)(intptr_t)atoi(a[0]));
		for (;;)
			pause();
	} else if (!strcmp(cmd, "open")) {
		NEED(2);
#ifdef SYS_open
		int fl = oflags(a[1]);
		r = syscall(SYS_open, a[0], fl, 0644);
		result(r);
		afteropen(r, fl, argc > 2 ? a[2] : NULL);
#else
		unsupported(cmd);
#endif
	} else if (!strcmp(cmd, "openat")) {
		NEED(3);
		int d = dirfd_arg(a[0]), fl = oflags(a[2]);
		r = syscall(SYS_openat, d, a[1], fl, 0644);
		result(r);
		afteropen(r, fl, argc > 3 ? a[3] : NULL);
	} else if (!strcmp(cmd, "openat2")) {
		NEED(3);
		int d = dirfd_arg(a[0]), fl = oflags(a[2]);
		struct nb_open_how how = {.flags = (uint64_t)fl, .mode = (fl & O_CREAT) ? 0644 : 0, .resolve = 0};
		r = syscall(SYS_openat2, d, a[1], &how, sizeof how);
		result(r);
		afteropen(r, fl, argc > 3 ? a[3] : NULL);
	} else if (!strcmp(cmd, "creat")) {
		NEED(1);
#ifdef SYS_creat
		r = syscall(SYS_creat, a[0], 0644);
		result(r);
		afteropen(r, O_WRONLY, argc > 1 ? a[1] : NULL);
#else
		unsupported(cmd);
#endif
	} else if (!strcmp(cmd, "stat") || !strcmp(cmd, "lstat")) {
		NEED(1);
#ifdef SYS_stat
		struct stat st;
		r = syscall(!strcmp(cmd, "stat") ? SYS_stat : SYS_lstat, a[0], &st);
		result(r);
		if (r == 0)
			printstat(&st);
#else
		unsupported(cmd);
#endif
	} else if (!strcmp(cmd, "newfstatat")) {
		NEED(3);
		struct stat st;
		r = syscall(SYS_newfstatat, dirfd_arg(a[0]), a[1], &st, atflags(a[2]));
		result(r);
		if (r == 0)
			printstat(&st);
	} else if (!strcmp(cmd, "statx")) {
		NEED(3);
		struct statx sx;
		r = syscall(SYS_statx, dirfd_arg(a[0]), a[1], atflags(a[2]), STATX_BASIC_STATS, &sx);
		result(r);
		if (r == 0)
			printf("size=%llu\nmode=%o\nuid=%u\nmtime=%lld\n", (unsigned long long)sx.stx_size,
			       (unsigned)sx.stx_mode & 07777, sx.stx_uid, (long long)sx.stx_mtime.tv_sec);
	} else if (!strcmp(cmd, "access")) {
		NEED(2);
#ifdef SYS_access
		r = syscall(SYS_access, a[0], amode(a[1]));
		result(r);
#else
		unsupported(cmd);
#endif
	} else if (!strcmp(cmd, "faccessat")) {
		NEED(3);
		r = syscall(SYS_faccessat, dirfd_arg(a[0]), a[1], amode(a[2]));
		result(r);
	} else if (!strcmp(cmd, "faccessat2")) {
		NEED(4);
		r = syscall(SYS_faccessat2, dirfd_arg(a[0]), a[1], amode(a[2]), atflags(a[3]));
		result(r);
	} else if (!strcmp(cmd, "readlink")) {
		NEED(1);
#ifdef SYS_readlink
		r = syscall(SYS_readlink, a[0], buf, sizeof buf);
		result(r);
		if (r >= 0)
			out("link", buf, (size_t)r);
#else
		unsupported(cmd);
#endif
	} else if (!strcmp(cmd, "readlinkat")) {
		NEED(2);
		r = syscall(SYS_readlinkat, dirfd_arg(a[0]), a[1], buf, sizeof buf);
		result(r);
		if (r >= 0)
			out("link", buf, (size_t)r);
	} else if (!strcmp(cmd, "mkdir")) {
		NEED(1);
#ifdef SYS_mkdir
		r = syscall(SYS_mkdir, a[0], 0755);
		result(r);
#else
		unsupported(cmd);
#endif
	} else if (!strcmp(cmd, "mkdirat")) {
		NEED(2);
		r = syscall(SYS_mkdirat, dirfd_arg(a[0]), a[1], 0755);
		result(r);
	} else if (!strcmp(cmd, "mknod")) {
		NEED(1);
#ifdef SYS_mknod
		r = syscall(SYS_mknod, a[0], S_IFIFO | 0644, 0);
		result(r);
#else
		unsupported(cmd);
#endif
	} else if (!strcmp(cmd, "mknodat")) {
		NEED(2);
		r = syscall(SYS_mknodat, dirfd_arg(a[0]), a[1], S_IFIFO | 0644, 0);
		result(r);
	} else if (!strcmp(cmd, "rmdir")) {
		NEED(1);
#ifdef SYS_rmdir
		r = syscall(SYS_rmdir, a[0]);
		result(r);
#else
		unsupported(cmd);
#endif
	} else if (!strcmp(cmd, "unlink")) {
		NEED(1);
#ifdef SYS_unlink
		r = syscall(SYS_unlink, a[0]);
		result(r);
#else
		unsupported(cmd);
#endif
	} else if (!strcmp(cmd, "unlinkat")) {
		NEED(3);
		r = syscall(SYS_unlinkat, dirfd_arg(a[0]), a[1], atflags(a[2]));
		result(r);
	} else if (!strcmp(cmd, "rename")) {
		NEED(2);
#ifdef SYS_rename
		r = syscall(SYS_rename, a[0], a[1]);
		result(r);
#else
		unsupported(cmd);
#endif
	} else if (!strcmp(cmd, "renameat")) {
		NEED(4);
#ifdef SYS_renameat
		int d1 = dirfd_arg(a[0]), d2 = dirfd_arg(a[2]);
		r = syscall(SYS_renameat, d1, a[1], d2, a[3]);
		result(r);
#else
		unsupported(cmd);
#endif
	} else if (!strcmp(cmd, "renameat2")) {
		NEED(5);
		int d1 = dirfd_arg(a[0]), d2 = dirfd_arg(a[2]);
		r = syscall(SYS_renameat2, d1, a[1], d2, a[3], atflags(a[4]));
		result(r);
	} else if (!strcmp(cmd, "link")) {
		NEED(2);
#ifdef SYS_link
		r = syscall(SYS_link, a[0], a[1]);
		result(r);
#else
		unsupported(cmd);
#endif
	} else if (!strcmp(cmd, "linkat")) {
		NEED(5);
		int d1 = dirfd_arg(a[0]), d2 = dirfd_arg(a[2]);
		r = syscall(SYS_linkat, d1, a[1], d2, a[3], atflags(a[4]));
		result(r);
	} else if (!strcmp(cmd, "symlink")) {
		NEED(2);
#ifdef SYS_symlink
		r = syscall(SYS_symlink, a[0], a[1]);
		result(r);
#else
		unsupported(cmd);
#endif
	} else if (!strcmp(cmd, "symlinkat")) {
		NEED(3);
		r = syscall(SYS_symlinkat, a[0], dirfd_arg(a[1]), a[2]);
		result(r);
	} else if (!strcmp(cmd, "truncate")) {
		NEED(2);
		r = syscall(SYS_truncate, a[0], atol(a[1]));
		result(r);
	} else if (!strcmp(cmd, "chmod")) {
		NEED(2);
#ifdef SYS_chmod
		r = syscall(SYS_chmod, a[0], strtol(a[1], NULL, 8));
		result(r);
#else
		unsupported(cmd);
#endif
	} else if (!strcmp(cmd, "fchmodat")) {
		NEED(3);
		r = syscall(SYS_fchmodat, dirfd_arg(a[0]), a[1], strtol(a[2], NULL, 8));
		result(r);
	} else if (!strcmp(cmd, "fchmodat2")) {
		NEED(4);
		r = syscall(SYS_fchmodat2, dirfd_arg(a[0]), a[1], strtol(a[2], NULL, 8), atflags(a[3]));
		result(r);
	} else if (!strcmp(cmd, "chown") || !strcmp(cmd, "lchown")) {
		NEED(3);
#ifdef SYS_chown
		r = syscall(!strcmp(cmd, "chown") ? SYS_chown : SYS_lchown, a[0], atoi(a[1]), atoi(a[2]));
		result(r);
#else
		unsupported(cmd);
#endif
	} else if (!strcmp(cmd, "fchownat")) {
		NEED(5);
		r = syscall(SYS_fchownat, dirfd_arg(a[0]), a[1], atoi(a[2]), atoi(a[3]), atflags(a[4]));
		result(r);
	} else if (!strcmp(cmd, "utimensat")) {
		NEED(4);
		struct timespec ts[2] = {{atol(a[2]), 0}, {atol(a[2]), 0}};
		r = syscall(SYS_utimensat, dirfd_arg(a[0]), a[1], ts, atflags(a[3]));
		result(r);
	} else if (!strcmp(cmd, "utime")) {
		NEED(2);
#ifdef SYS_utime
		struct utimbuf ub = {atol(a[1]), atol(a[1])};
		r = syscall(SYS_utime, a[0], &ub);
		result(r);
#else
		unsupported(cmd);
#endif
	} else if (!strcmp(cmd, "utimes")) {
		NEED(2);
#ifdef SYS_utimes
		struct timeval tv[2] = {{atol(a[1]), 0}, {atol(a[1]), 0}};
		r = syscall(SYS_utimes, a[0], tv);
		result(r);
#else
		unsupported(cmd);
#endif
	} else if (!strcmp(cmd, "futimesat")) {
		NEED(3);
#ifdef SYS_futimesat
		struct timeval tv[2] = {{atol(a[2]), 0}, {atol(a[2]), 0}};
		r = syscall(SYS_futimesat, dirfd_arg(a[0]), a[1], tv);
		result(r);
#else
		unsupported(cmd);
#endif
	} else if (!strcmp(cmd, "setxattr") || !strcmp(cmd, "lsetxattr")) {
		NEED(3);
		r = syscall(cmd[0] == 'l' ? SYS_lsetxattr : SYS_setxattr, a[0], a[1], a[2], strlen(a[2]), 0);
		result(r);
	} else if (!strcmp(cmd, "getxattr") || !strcmp(cmd, "lgetxattr")) {
		NEED(2);
		r = syscall(cmd[0] == 'l' ? SYS_lgetxattr : SYS_getxattr, a[0], a[1], buf, sizeof buf);
		result(r);
		if (r >= 0)
			out("value", buf, (size_t)r);
	} else if (!strcmp(cmd, "listxattr") || !strcmp(cmd, "llistxattr")) {
		NEED(1);
		r = syscall(cmd[0] == 'l' ? SYS_llistxattr : SYS_listxattr, a[0], buf, sizeof buf);
		result(r);
		if (r >= 0)
			printlist(buf, r);
	} else if (!strcmp(cmd, "removexattr") || !strcmp(cmd, "lremovexattr")) {
		NEED(2);
		r = syscall(cmd[0] == 'l' ? SYS_lremovexattr : SYS_removexattr, a[0], a[1]);
		result(r);
	} else if (!strcmp(cmd, "setxattrat")) {
		NEED(4);
		struct nb_xattr_args xa = {.value = (uint64_t)(uintptr_t)a[3], .size = (uint32_t)strlen(a[3])};
		r = syscall(SYS_setxattrat, dirfd_arg(a[0]), a[1], 0, a[2], &xa, sizeof xa);
		result(r);
	} else if (!strcmp(cmd, "getxattrat")) {
		NEED(3);
		struct nb_xattr_args xa = {.value = (uint64_t)(uintptr_t)buf, .size = sizeof buf};
		r = syscall(SYS_getxattrat, dirfd_arg(a[0]), a[1], 0, a[2], &xa, sizeof xa);
		result(r);
		if (r >= 0)
			out("value", buf, (size_t)r);
	} else if (!strcmp(cmd, "listxattrat")) {
		NEED(2);
		r = syscall(SYS_listxattrat, dirfd_arg(a[0]), a[1], 0, buf, sizeof buf);
		result(r);
		if (r >= 0)
			printlist(buf, r);
	} else if (!strcmp(cmd, "removexattrat")) {
		NEED(3);
		r = syscall(SYS_removexattrat, dirfd_arg(a[0]), a[1], 0, a[2]);
		result(r);
	} else if (!strcmp(cmd, "inotify_add_watch")) {
		// inotify_add_watch PATH [TOUCH]: watch PATH; then append to TOUCH
		// (a path no rule covers) and report the events the watch saw.
		NEED(1);
		int ifd = (int)syscall(SYS_inotify_init1, IN_NONBLOCK | IN_CLOEXEC);
		if (ifd < 0)
			die("inotify_init1");
		r = syscall(SYS_inotify_add_watch, ifd, a[0], IN_MODIFY | IN_ATTRIB | IN_OPEN | IN_CLOSE_WRITE);
		result(r);
		if (r >= 0 && argc > 1) {
			int fd = (int)syscall(SYS_openat, AT_FDCWD, a[1], O_WRONLY | O_APPEND | O_CLOEXEC);
			if (fd < 0)
				die("open touch file");
			if (write(fd, "+", 1) != 1)
				die("write touch file");
			close(fd);
			uint32_t mask = 0;
			ssize_t n = read(ifd, buf, sizeof buf);
			for (ssize_t off = 0; n > 0 && off < n;) {
				struct inotify_event *ev = (struct inotify_event *)(buf + off);
				mask |= ev->mask;
				off += (ssize_t)sizeof *ev + ev->len;
			}
			printf("events=0x%x\nmodify=%d\n", mask, (mask & IN_MODIFY) ? 1 : 0);
		}
	} else if (!strcmp(cmd, "chdir")) {
		// chdir DIR [REL]: chdir, print getcwd, then open REL relative to
		// the new working directory.
		NEED(1);
		r = syscall(SYS_chdir, a[0]);
		result(r);
		long n = syscall(SYS_getcwd, buf, sizeof buf);
		if (n > 0)
			outs("cwd", buf);
		if (r == 0 && argc > 1) {
			long fd = syscall(SYS_openat, AT_FDCWD, a[1], O_RDONLY | O_CLOEXEC);
			printf("relerrno=%s\n", errname(fd < 0 ? errno : 0));
			afteropen(fd, O_RDONLY, NULL);
		}
	} else if (!strcmp(cmd, "statfs")) {
		NEED(1);
		struct statfs sf;
		r = syscall(SYS_statfs, a[0], &sf);
		result(r);
		if (r == 0)
			printf("ftype=0x%lx\n", (unsigned long)sf.f_type);
	} else if (!strcmp(cmd, "fstatfs")) {
		// fstatfs PATH: open PATH (O_RDONLY, or O_PATH for "p"), fstatfs it.
		NEED(1);
		int fl = O_RDONLY | O_CLOEXEC | (argc > 1 && !strcmp(a[1], "p") ? O_PATH : 0);
		long fd = syscall(SYS_openat, AT_FDCWD, a[0], fl);
		if (fd < 0) {
			printf("openerrno=%s\n", errname(errno));
			exit(0);
		}
		fdpath((int)fd);
		struct statfs sf;
		r = syscall(SYS_fstatfs, fd, &sf);
		result(r);
		if (r == 0)
			printf("ftype=0x%lx\n", (unsigned long)sf.f_type);
	} else {
		die("unknown syscall name");
	}
	return 0;
}
