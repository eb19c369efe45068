// mounts makes the mounts runc makes for a container's /sys/fs/cgroup, in a
// private mount namespace, and prints what each gave, one key=value per
// line:
//
//	cgroup2=<errno name or 0>   mount("cgroup2", DST, "cgroup2", ...)
//	cgroup=<errno name or 0>    mount("cgroup", DST, "cgroup", ...) (v1)
//	tmpfs=<errno name or 0>     mount("tmpfs", DST, "tmpfs", ...), then umount
//	bind=<errno name or 0>      mount(SRC, DST, NULL, MS_BIND|MS_REC)
//	remount=<errno name or 0>   mount(SRC, DST, NULL, MS_REMOUNT|MS_BIND|MS_RDONLY)
//	write=<errno name or 0>     open(DST/FILE, O_WRONLY)
//	data=<FILE's content through DST>
//
// Usage: [MOUNTS_NS=keep] mounts SRC DST FILE
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <unistd.h>

static const char *ename(int r)
{
	if (r == 0)
		return "0";
	switch (errno) {
	case EPERM: return "EPERM";
	case ENOENT: return "ENOENT";
	case EACCES: return "EACCES";
	case EBUSY: return "EBUSY";
	case EINVAL: return "EINVAL";
	case ENODEV: return "ENODEV";
	case EROFS: return "EROFS";
	default: return strerror(errno);
	}
}

int main(int argc, char **argv)
{
	if (argc != 4) {
		fprintf(stderr, "usage: mounts SRC DST FILE\n");
		return 3;
	}
	const char *src = argv[1], *dst = argv[2], *file = argv[3];
	// MOUNTS_NS=keep: the caller made the private namespace (a chroot's
	// root is no mount point to make private).
	const char *ns = getenv("MOUNTS_NS");
	if (ns && !strcmp(ns, "keep"))
		;
	else if (unshare(CLONE_NEWNS) < 0 || mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0) {
		perror("private mount namespace");
		return 3;
	}
	int r = mount("cgroup2", dst, "cgroup2", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL);
	printf("cgroup2=%s\n", ename(r));
	if (r == 0)
		umount2(dst, MNT_DETACH);
	r = mount("cgroup", dst, "cgroup", MS_NOSUID | MS_NODEV | MS_NOEXEC, "none,name=nodeboottest");
	printf("cgroup=%s\n", ename(r));
	if (r == 0)
		umount2(dst, MNT_DETACH);
	r = mount("tmpfs", dst, "tmpfs", 0, NULL);
	printf("tmpfs=%s\n", ename(r));
	if (r == 0)
		umount2(dst, MNT_DETACH);
	r = mount(src, dst, NULL, MS_BIND | MS_REC, NULL);
	printf("bind=%s\n", ename(r));
	r = mount(src, dst, NULL, MS_REMOUNT | MS_BIND | MS_RDONLY, NULL);
	printf("remount=%s\n", ename(r));
	char p[4096], buf[256];
	snprintf(p, sizeof p, "%s/%s", dst, file);
	int fd = open(p, O_WRONLY);
	printf("write=%s\n", ename(fd < 0 ? -1 : 0));
	if (fd >= 0)
		close(fd);
	fd = open(p, O_RDONLY);
	if (fd < 0) {
		printf("data=!%s\n", ename(-1));
		return 0;
	}
	ssize_t n = read(fd, buf, sizeof buf - 1);
	buf[n > 0 ? n : 0] = 0;
	printf("data=%s\n", buf);
	return 0;
}
