/* Cases that name the guest file another way than its plain path:
 * procfs magic links, symlinks (also planted in the tree), ".." after a
 * symlink, openat2 RESOLVE flags, chroot, a working directory deeper than
 * PATH_MAX, other mount namespaces and detached mounts, file handles,
 * copy-up and a tree that is gone.
 *
 * The layout (escape.h): GUEST is T/g/f, the rule covers T/g, AUX is T/aux.
 * T is therefore dirname(AUX), and the guest's directory T/g. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "escape.h"

#ifndef SYS_openat2
#define SYS_openat2 437
#endif
#ifndef SYS_open_tree
#define SYS_open_tree 428
#endif
#ifndef SYS_fsopen
#define SYS_fsopen 430
#define SYS_fsconfig 431
#define SYS_fsmount 432
#endif
#ifndef OPEN_TREE_CLONE
#define OPEN_TREE_CLONE 1
#endif
#ifndef OPEN_TREE_CLOEXEC
#define OPEN_TREE_CLOEXEC O_CLOEXEC
#endif
#ifndef FSCONFIG_SET_STRING
#define FSCONFIG_SET_STRING 1
#define FSCONFIG_CMD_CREATE 6
#endif
#ifndef RESOLVE_IN_ROOT
#define RESOLVE_BENEATH 0x08
#define RESOLVE_IN_ROOT 0x10
#endif

/* BUF holds a path of PATH_MAX and a few bytes more. */
#define BUF (PATH_MAX + 64)

struct how {
	unsigned long long flags, mode, resolve;
};

/* dir_of copies the directory part of p into out. */
static void dir_of(const char *p, char *out, size_t n)
{
	snprintf(out, n, "%s", p);
	char *s = strrchr(out, '/');
	if (s == out)
		s[1] = 0;
	else if (s)
		*s = 0;
}

/* top is T, the directory holding g/ and aux/. */
static void top(const char *aux, char *out, size_t n)
{
	dir_of(aux, out, n);
}

static int write_path(const char *p)
{
	return open_write(AT_FDCWD, p);
}

static int plain(const char *guest, const char *aux)
{
	(void)aux;
	return write_path(guest);
}

static int proc_self_root(const char *guest, const char *aux)
{
	(void)aux;
	char p[PATH_MAX];
	snprintf(p, sizeof p, "/proc/self/root%s", guest);
	return write_path(p);
}

static int proc_self_root_dotdot(const char *guest, const char *aux)
{
	(void)aux;
	char p[PATH_MAX];
	snprintf(p, sizeof p, "/proc/self/root/../..%s", guest);
	return write_path(p);
}

static int proc_thread_self_root(const char *guest, const char *aux)
{
	(void)aux;
	char p[PATH_MAX];
	snprintf(p, sizeof p, "/proc/thread-self/root%s", guest);
	return write_path(p);
}

static int proc_pid_root(const char *guest, const char *aux)
{
	(void)aux;
	char p[PATH_MAX];
	snprintf(p, sizeof p, "/proc/%d/root%s", getpid(), guest);
	return write_path(p);
}

/* /proc//self: another spelling the kernel accepts. */
static int proc_slash_self(const char *guest, const char *aux)
{
	(void)aux;
	char p[PATH_MAX];
	snprintf(p, sizeof p, "/proc//./self/root%s", guest);
	return write_path(p);
}

static int proc_self_cwd(const char *guest, const char *aux)
{
	char t[PATH_MAX], p[PATH_MAX];
	top(aux, t, sizeof t);
	if (chdir(t) < 0)
		return errno;
	/* guest is T/g/f: below T it is g/f */
	snprintf(p, sizeof p, "/proc/self/cwd%s", guest + strlen(t));
	return write_path(p);
}

static int proc_self_fd_dir(const char *guest, const char *aux)
{
	char t[PATH_MAX], p[PATH_MAX];
	top(aux, t, sizeof t);
	int fd = open(t, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return errno;
	snprintf(p, sizeof p, "/proc/self/fd/%d%s", fd, guest + strlen(t));
	int err = write_path(p);
	close(fd);
	return err;
}

/* The magic link reached relative to a dirfd of /proc/thread-self/fd. */
static int dirfd_proc_fd(const char *guest, const char *aux)
{
	char t[PATH_MAX], p[PATH_MAX];
	top(aux, t, sizeof t);
	int fd = open(t, O_PATH | O_DIRECTORY | O_CLOEXEC);
	int pfd = open("/proc/thread-self/fd", O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0 || pfd < 0)
		return errno;
	snprintf(p, sizeof p, "%d%s", fd, guest + strlen(t));
	int err = open_write(pfd, p);
	close(fd);
	close(pfd);
	return err;
}

/* Reopen, for writing, an fd of the real file: the tree lacks the file, so
 * a read-only open reaches the real one. */
static int reopen_real_fd(const char *guest, const char *aux)
{
	(void)aux;
	if (unlink(guest) < 0) /* removes the tree's file */
		return errno;
	int fd = open(guest, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return errno;
	char p[64];
	snprintf(p, sizeof p, "/proc/self/fd/%d", fd);
	int err = write_path(p);
	close(fd);
	return err;
}

static int dirfd_parent(const char *guest, const char *aux)
{
	char t[PATH_MAX];
	top(aux, t, sizeof t);
	int fd = open(t, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return errno;
	int err = open_write(fd, guest + strlen(t) + 1);
	close(fd);
	return err;
}

static int symlink_abs(const char *guest, const char *aux)
{
	char l[PATH_MAX];
	snprintf(l, sizeof l, "%s/l", aux);
	if (symlink(guest, l) < 0)
		return errno;
	return write_path(l);
}

static int symlink_rel(const char *guest, const char *aux)
{
	char t[PATH_MAX], l[PATH_MAX], target[PATH_MAX];
	top(aux, t, sizeof t);
	snprintf(l, sizeof l, "%s/l", aux);
	snprintf(target, sizeof target, "..%s", guest + strlen(t));
	if (symlink(target, l) < 0)
		return errno;
	return write_path(l);
}

static int symlink_dir(const char *guest, const char *aux)
{
	char d[PATH_MAX], l[BUF], p[2 * BUF];
	dir_of(guest, d, sizeof d);
	snprintf(l, sizeof l, "%s/d", aux);
	if (symlink(d, l) < 0)
		return errno;
	snprintf(p, sizeof p, "%s/%s", l, strrchr(guest, '/') + 1);
	return write_path(p);
}

static int symlink_chain(const char *guest, const char *aux)
{
	char a[PATH_MAX], b[PATH_MAX];
	const char *prev = guest;
	for (int i = 0; i < 10; i++) {
		snprintf(a, sizeof a, "%s/c%d", aux, i);
		if (symlink(prev, a) < 0)
			return errno;
		snprintf(b, sizeof b, "%s", a);
		prev = b;
	}
	return write_path(a);
}

/* aux/up -> T/h (the twin's directory, outside every rule): aux/up/../g/f
 * is T/g/f for the kernel (".." after the symlink), and aux/g/f as text. */
static int dotdot_after_symlink(const char *guest, const char *aux)
{
	char t[PATH_MAX], d[PATH_MAX], l[BUF], p[2 * BUF];
	top(aux, t, sizeof t);
	dir_of(guest, d, sizeof d);
	snprintf(l, sizeof l, "%s/up", aux);
	char twin[PATH_MAX];
	snprintf(twin, sizeof twin, "%s", d);
	twin[strlen(twin) - 1]++;
	if (symlink(twin, l) < 0)
		return errno;
	snprintf(p, sizeof p, "%s/..%s", l, guest + strlen(t));
	return write_path(p);
}

/* A symlink made through the guest lands in the tree; it points back at
 * the real file (absolute): the tree's symlink must be resolved in the
 * program's view, not followed by the kernel from the tree. */
static int tree_symlink_abs(const char *guest, const char *aux)
{
	(void)aux;
	char d[PATH_MAX], l[BUF];
	dir_of(guest, d, sizeof d);
	snprintf(l, sizeof l, "%s/evil", d);
	if (symlink(guest, l) < 0)
		return errno;
	return write_path(l);
}

/* The same, relative: "../g/f" from the tree's directory is the real
 * file for the kernel, and the guest itself in the overlay. */
static int tree_symlink_rel(const char *guest, const char *aux)
{
	char t[PATH_MAX], d[PATH_MAX], l[BUF], target[BUF];
	top(aux, t, sizeof t);
	dir_of(guest, d, sizeof d);
	snprintf(l, sizeof l, "%s/evil", d);
	snprintf(target, sizeof target, "..%s", guest + strlen(t));
	if (symlink(target, l) < 0)
		return errno;
	return write_path(l);
}

static long openat2_write(int dirfd, const char *p, unsigned long long resolve)
{
	struct how how = {O_WRONLY | O_TRUNC | O_CLOEXEC, 0, resolve};
	long fd = syscall(SYS_openat2, dirfd, p, &how, sizeof how);
	if (fd < 0)
		return errno;
	int err = write_marker((int)fd);
	close((int)fd);
	return err;
}

/* "/g/f" with RESOLVE_IN_ROOT relative to T is T/g/f. */
static int openat2_in_root(const char *guest, const char *aux)
{
	char t[PATH_MAX];
	top(aux, t, sizeof t);
	int fd = open(t, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return errno;
	int err = (int)openat2_write(fd, guest + strlen(t), RESOLVE_IN_ROOT);
	close(fd);
	return err;
}

static int openat2_beneath(const char *guest, const char *aux)
{
	char t[PATH_MAX];
	top(aux, t, sizeof t);
	int fd = open(t, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return errno;
	int err = (int)openat2_write(fd, guest + strlen(t) + 1, RESOLVE_BENEATH);
	close(fd);
	return err;
}

static int chroot_top(const char *guest, const char *aux)
{
	char t[PATH_MAX];
	top(aux, t, sizeof t);
	if (chroot(t) < 0)
		return errno;
	return write_path(guest + strlen(t));
}

/* A working directory deeper than PATH_MAX (20 names of 250 bytes), and a
 * short relative path from there to the guest. */
static int deep_cwd(const char *guest, const char *aux)
{
	char t[PATH_MAX], name[251], p[PATH_MAX];
	top(aux, t, sizeof t);
	if (chdir(aux) < 0)
		return errno;
	memset(name, 'd', 250);
	name[250] = 0;
	int depth = 20;
	for (int i = 0; i < depth; i++) {
		if (mkdir(name, 0755) < 0 || chdir(name) < 0)
			return errno;
	}
	p[0] = 0;
	for (int i = 0; i < depth + 1; i++)
		strcat(p, "../");
	strcat(p, guest + strlen(t) + 1);
	return write_path(p);
}

/* A bind mount of the guest's directory in a private mount namespace. */
static int bind_private_ns(const char *guest, const char *aux)
{
	char d[PATH_MAX], b[BUF], p[2 * BUF];
	dir_of(guest, d, sizeof d);
	snprintf(b, sizeof b, "%s/b", aux);
	if (mkdir(b, 0755) < 0)
		return errno;
	if (unshare(CLONE_NEWNS) < 0)
		return errno;
	if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0)
		return errno;
	if (mount(d, b, NULL, MS_BIND, NULL) < 0)
		return errno;
	snprintf(p, sizeof p, "%s/%s", b, strrchr(guest, '/') + 1);
	return write_path(p);
}

/* A detached copy of the guest's directory (open_tree). */
static int open_tree_clone(const char *guest, const char *aux)
{
	(void)aux;
	char d[PATH_MAX];
	dir_of(guest, d, sizeof d);
	long fd = syscall(SYS_open_tree, AT_FDCWD, d, OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC);
	if (fd < 0)
		return errno;
	int err = open_write((int)fd, strrchr(guest, '/') + 1);
	close((int)fd);
	return err;
}

/* A new mount of the guest's filesystem (fsopen/fsmount), found through
 * mountinfo: the guest is reached inside it, past every path the program's
 * view has. */
static int fsmount_guest_fs(const char *guest, const char *aux)
{
	(void)aux;
	struct stat st;
	if (stat(guest, &st) < 0)
		return errno;
	FILE *f = fopen("/proc/self/mountinfo", "re");
	if (!f)
		return errno;
	char line[4096], best_root[PATH_MAX] = "", best_point[PATH_MAX] = "", fstype[64] = "", source[PATH_MAX] = "";
	size_t best = 0;
	while (fgets(line, sizeof line, f)) {
		unsigned maj, min;
		char root[PATH_MAX], point[PATH_MAX];
		if (sscanf(line, "%*u %*u %u:%u %4095s %4095s", &maj, &min, root, point) != 4)
			continue;
		if (makedev(maj, min) != st.st_dev)
			continue;
		size_t n = strlen(point);
		if (strncmp(guest, point, n) != 0 || (n > 1 && guest[n] != '/') || n < best)
			continue;
		char *dash = strstr(line, " - ");
		if (!dash || sscanf(dash, " - %63s %4095s", fstype, source) != 2)
			continue;
		best = n;
		snprintf(best_root, sizeof best_root, "%s", root);
		snprintf(best_point, sizeof best_point, "%s", point);
	}
	fclose(f);
	if (!best)
		return ENOENT;
	int fs = (int)syscall(SYS_fsopen, fstype, 1 /* FSOPEN_CLOEXEC */);
	if (fs < 0)
		return errno;
	if (syscall(SYS_fsconfig, fs, FSCONFIG_SET_STRING, "source", source, 0) < 0 ||
	    syscall(SYS_fsconfig, fs, FSCONFIG_CMD_CREATE, NULL, NULL, 0) < 0) {
		int err = errno;
		close(fs);
		return err;
	}
	int m = (int)syscall(SYS_fsmount, fs, 1 /* FSMOUNT_CLOEXEC */, 0);
	int err = m < 0 ? errno : 0;
	close(fs);
	if (m < 0)
		return err;
	char p[PATH_MAX];
	const char *rest = guest + (strcmp(best_point, "/") == 0 ? 0 : strlen(best_point));
	snprintf(p, sizeof p, "%s%s", strcmp(best_root, "/") == 0 ? "" : best_root, rest);
	err = open_write(m, p + 1);
	close(m);
	return err;
}

static int handle(const char *guest, const char *aux)
{
	(void)aux;
	struct file_handle *h = malloc(sizeof *h + MAX_HANDLE_SZ);
	h->handle_bytes = MAX_HANDLE_SZ;
	int mnt;
	if (name_to_handle_at(AT_FDCWD, guest, h, &mnt, 0) < 0) {
		int err = errno;
		free(h);
		return err;
	}
	char d[PATH_MAX];
	dir_of(guest, d, sizeof d);
	int mfd = open(d, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	int fd = open_by_handle_at(mfd, h, O_WRONLY | O_TRUNC | O_CLOEXEC);
	int err = fd < 0 ? errno : write_marker(fd);
	if (fd >= 0)
		close(fd);
	close(mfd);
	free(h);
	return err;
}

static int hardlink(const char *guest, const char *aux)
{
	char l[PATH_MAX];
	snprintf(l, sizeof l, "%s/hl", aux);
	if (link(guest, l) < 0)
		return errno;
	return write_path(l);
}

/* The tree lacks the file: the write copies it up and lands there. */
static int copyup(const char *guest, const char *aux)
{
	(void)aux;
	if (unlink(guest) < 0) /* removes the tree's file */
		return errno;
	return write_path(guest);
}

/* The tree lacks the file: a read-only open reaches the real file; its
 * metadata must not change through that fd. 0 (a leak the harness sees:
 * no marker in the tree) only when fchmod went through. */
static int fchmod_real_fd(const char *guest, const char *aux)
{
	(void)aux;
	if (unlink(guest) < 0) /* removes the tree's file */
		return errno;
	int fd = open(guest, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return errno;
	int err = fchmod(fd, 0600) < 0 ? errno : 0;
	if (!err)
		fchmod(fd, 0666); /* put it back */
	close(fd);
	return err;
}

/* The tree moved away while the program runs: writes must fail. */
static int tree_gone(const char *guest, const char *aux)
{
	char t[PATH_MAX], from[BUF], to[BUF];
	top(aux, t, sizeof t);
	snprintf(from, sizeof from, "%s/tree", t);
	snprintf(to, sizeof to, "%s/tree.gone", t);
	if (rename(from, to) < 0)
		return errno;
	return write_path(guest);
}

const struct escape_case path_cases[] = {
	{"plain", "open(GUEST, O_WRONLY|O_TRUNC): the simple way", plain, 0},
	{"proc_self_root", "/proc/self/root/GUEST", proc_self_root, 0},
	{"proc_self_root_dotdot", "/proc/self/root/../../GUEST: .. stays at the root", proc_self_root_dotdot, 0},
	{"proc_thread_self_root", "/proc/thread-self/root/GUEST", proc_thread_self_root, 0},
	{"proc_pid_root", "/proc/PID/root/GUEST", proc_pid_root, 0},
	{"proc_slash_self", "/proc//./self/root/GUEST: self spelled so no prefix matches", proc_slash_self, 0},
	{"proc_self_cwd", "chdir(T), /proc/self/cwd/g/f", proc_self_cwd, 0},
	{"proc_self_fd_dir", "/proc/self/fd/N/g/f, N a dirfd of T", proc_self_fd_dir, 0},
	{"dirfd_proc_fd", "openat(/proc/thread-self/fd, \"N/g/f\"), N a dirfd of T", dirfd_proc_fd, 0},
	{"reopen_real_fd", "the tree lacks f: open it read-only (the real file), reopen /proc/self/fd/N for writing",
	 reopen_real_fd, 0},
	{"dirfd_parent", "openat(dirfd of T, \"g/f\")", dirfd_parent, 0},
	{"symlink_abs", "AUX/l -> GUEST", symlink_abs, 0},
	{"symlink_rel", "AUX/l -> ../g/f", symlink_rel, 0},
	{"symlink_dir", "AUX/d -> T/g, AUX/d/f", symlink_dir, 0},
	{"symlink_chain", "ten symlinks in a row to GUEST", symlink_chain, 0},
	{"dotdot_after_symlink", "AUX/up -> T/h, AUX/up/../g/f", dotdot_after_symlink, 0},
	{"tree_symlink_abs", "symlink(GUEST, T/g/evil) lands in the tree, then open T/g/evil", tree_symlink_abs, 0},
	{"tree_symlink_rel", "symlink(\"../g/f\", T/g/evil) lands in the tree, then open T/g/evil", tree_symlink_rel, 0},
	{"openat2_in_root", "openat2(dirfd of T, \"/g/f\", RESOLVE_IN_ROOT)", openat2_in_root, 0},
	{"openat2_beneath", "openat2(dirfd of T, \"g/f\", RESOLVE_BENEATH)", openat2_beneath, 0},
	{"chroot", "chroot(T), open /g/f", chroot_top, 0},
	{"deep_cwd", "a cwd deeper than PATH_MAX below AUX, ../../(21 times)g/f", deep_cwd, 0},
	{"bind_private_ns", "unshare(CLONE_NEWNS), bind T/g on AUX/b, open AUX/b/f", bind_private_ns, ESCAPE_NO_THREAD},
	{"open_tree_clone", "open_tree(T/g, OPEN_TREE_CLONE), openat(tree, \"f\")", open_tree_clone, 0},
	{"fsmount_guest_fs", "fsopen/fsmount the guest's filesystem again, open GUEST inside it", fsmount_guest_fs, 0},
	{"open_by_handle", "name_to_handle_at(GUEST), open_by_handle_at for writing", handle, 0},
	{"hardlink", "link(GUEST, AUX/hl), open AUX/hl", hardlink, 0},
	{"copyup", "unlink GUEST (the tree's file), then write GUEST: copied up into the tree", copyup, 0},
	{"fchmod_real_fd", "the tree lacks f: open it read-only (the real file), fchmod the fd", fchmod_real_fd, 0},
	{"tree_gone", "rename T/tree away, then write GUEST", tree_gone, 0},
	{0},
};
