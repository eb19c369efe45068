/* Cases that attack the rewrite itself: scratch memory, races on the path
 * buffer, and channels the filter must close (io_uring, compat syscalls,
 * CLONE_UNTRACED).
 *
 * The tracer maps its scratch memory read-only at a fixed window of every
 * address space (interceptor/window.go: scratchBase, 512 KiB regions of 64
 * slots of 8 KiB) and copies every path it inspects there. When a case gets
 * hold of the window anyway (a guard failed), it attacks it: a thread
 * writes the guest path into every slot while the main thread opens the
 * twin, and every open that reaches neither the twin nor the tree file is a
 * leak, which writes the marker to the host file for the test to see. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/filter.h>
#include <linux/io_uring.h>
#include <linux/sched.h>
#include <linux/seccomp.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ipc.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/shm.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <unistd.h>

#include "escape.h"

#if defined(__x86_64__)
#define WINDOW 0x200000000000UL
#define AUDIT_ARCH_NATIVE 0xc000003eu /* AUDIT_ARCH_X86_64 */
#elif defined(__aarch64__)
#define WINDOW 0x800000000UL
#define AUDIT_ARCH_NATIVE 0xc00000b7u /* AUDIT_ARCH_AARCH64 */
#else
#error "escape_mem.c: unknown arch"
#endif
#define REGION (512UL * 1024)
#define SLOT (8UL * 1024)
#define SLOTS (REGION / SLOT)

#ifndef SHM_REMAP
#define SHM_REMAP 040000
#endif
#ifndef SYS_clone3
#define SYS_clone3 435
#endif

/* ---- file identities ---- */

struct fid {
	dev_t dev;
	ino_t ino;
};

/* fd_id is fstat by raw syscall: glibc's fstat is newfstatat(fd, "",
 * AT_EMPTY_PATH), a path syscall the tracer stops at. */
static int fd_id(int fd, struct fid *id)
{
	struct stat st;
	if (syscall(SYS_fstat, fd, &st) != 0)
		return errno;
	id->dev = st.st_dev;
	id->ino = st.st_ino;
	return 0;
}

static int path_id(const char *path, struct fid *id)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return errno;
	int err = fd_id(fd, id);
	close(fd);
	return err;
}

static int same(const struct fid *a, const struct fid *b) { return a->dev == b->dev && a->ino == b->ino; }

/* twin_index is the index of the byte that tells GUEST from its twin: the
 * last character of its parent directory's name (see escape.h). */
static long twin_index(const char *guest)
{
	const char *slash = strrchr(guest, '/');
	if (!slash || slash == guest)
		return -1;
	return slash - guest - 1;
}

static char *twin_of(const char *guest)
{
	long k = twin_index(guest);
	if (k < 0)
		return NULL;
	char *t = strdup(guest);
	t[k]++;
	return t;
}

/* opens counts where opens of a path went. */
struct opens {
	long n, twin, tree, failed, leaks;
};

/* open_count opens path O_WRONLY (no O_TRUNC: reaching a file changes
 * nothing by itself) and files the result; a leak writes the marker. */
static void open_count(const char *path, const struct fid *twin, const struct fid *tree, struct opens *o)
{
	o->n++;
	int fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0) {
		o->failed++;
		return;
	}
	struct fid id;
	if (fd_id(fd, &id) != 0)
		o->failed++;
	else if (same(&id, twin))
		o->twin++;
	else if (same(&id, tree))
		o->tree++;
	else {
		o->leaks++;
		write_marker(fd);
	}
	close(fd);
}

static void note_opens(const char *what, const struct opens *o)
{
	note("%s: %ld opens, %ld twin, %ld tree, %ld failed, %ld leaks", what, o->n, o->twin, o->tree, o->failed,
	     o->leaks);
}

/* ids reads the identities of the twin (no rule) and of the guest (which
 * the tracer redirects: the tree file). */
static int ids(const char *guest, const char *twin, struct fid *twin_id, struct fid *tree_id)
{
	int err = path_id(twin, twin_id);
	if (err) {
		note("twin %s: %s", twin, strerror(err));
		return err;
	}
	return path_id(guest, tree_id);
}

/* ---- the race: a thread flips one byte of the path buffer ---- */

struct flipper {
	volatile char *p;
	char a, b;
	volatile int stop;
};

static void *flip(void *arg)
{
	struct flipper *f = arg;
	while (!f->stop) {
		*f->p = f->a;
		*f->p = f->b;
	}
	return NULL;
}

static long env_long(const char *name, long def)
{
	const char *v = getenv(name);
	return v && *v ? atol(v) : def;
}

static int race(const char *guest, const char *aux)
{
	(void)aux;
	char *twin = twin_of(guest);
	if (!twin)
		return EINVAL;
	struct fid twin_id, tree_id;
	int err = ids(guest, twin, &twin_id, &tree_id);
	if (err)
		return err;
	long k = twin_index(guest);
	char *buf = strdup(guest);
	struct flipper f = {.p = buf + k, .a = guest[k], .b = twin[k]};
	pthread_t th;
	if ((err = pthread_create(&th, NULL, flip, &f)) != 0)
		return err;
	struct opens o = {0};
	long n = env_long("ESCAPE_RACE_OPENS", 100000);
	for (long i = 0; i < n; i++)
		open_count(buf, &twin_id, &tree_id, &o);
	f.stop = 1;
	pthread_join(th, NULL);
	note_opens("race", &o);
	if (o.twin == 0 || o.tree == 0)
		note("the flips never landed on both sides: the race was not run");
	return open_write(AT_FDCWD, guest);
}

/* ---- the race on a file handle: a thread flips the handle's bytes ----
 *
 * open_by_handle_at reads its struct file_handle from the program's memory.
 * The real GUEST file's handle (ESCAPE_GUEST_HANDLE: hex of handle_bytes,
 * handle_type and f_handle, made by the test, untraced) and the twin's take
 * turns in one buffer while the main thread opens it for writing: each open
 * must reach the twin or fail, never the real file. */

struct handle_flipper {
	struct file_handle *h;
	const unsigned char *a, *b;
	unsigned int n;
	volatile int stop;
};

static void *flip_handle(void *arg)
{
	struct handle_flipper *f = arg;
	while (!f->stop) {
		memcpy(f->h->f_handle, f->a, f->n);
		memcpy(f->h->f_handle, f->b, f->n);
	}
	return NULL;
}

static struct file_handle *handle_from_hex(const char *hex)
{
	size_t n = hex ? strlen(hex) / 2 : 0;
	if (n < 8 || n > 8 + MAX_HANDLE_SZ)
		return NULL;
	unsigned char *b = calloc(1, sizeof(struct file_handle) + MAX_HANDLE_SZ);
	for (size_t i = 0; i < n; i++) {
		unsigned int v;
		if (sscanf(hex + 2 * i, "%2x", &v) != 1) {
			free(b);
			return NULL;
		}
		b[i] = (unsigned char)v;
	}
	return (struct file_handle *)b;
}

static int handle_race(const char *guest, const char *aux)
{
	(void)aux;
	char *twin = twin_of(guest);
	if (!twin)
		return EINVAL;
	struct file_handle *real = handle_from_hex(getenv("ESCAPE_GUEST_HANDLE"));
	if (!real) {
		note("no ESCAPE_GUEST_HANDLE: the test gives the real file's handle");
		return EINVAL;
	}
	struct file_handle *h = calloc(1, sizeof *h + MAX_HANDLE_SZ);
	h->handle_bytes = MAX_HANDLE_SZ;
	int mnt;
	if (name_to_handle_at(AT_FDCWD, twin, h, &mnt, 0) < 0)
		return errno;
	if (h->handle_bytes != real->handle_bytes || h->handle_type != real->handle_type) {
		note("the twin's handle differs in size or type from the real file's");
		return EINVAL;
	}
	struct fid twin_id = {0};
	int err = path_id(twin, &twin_id);
	if (err)
		return err;
	unsigned char twin_bytes[MAX_HANDLE_SZ];
	memcpy(twin_bytes, h->f_handle, h->handle_bytes);
	char d[PATH_MAX];
	snprintf(d, sizeof d, "%s", twin);
	char *slash = strrchr(d, '/');
	if (slash && slash != d)
		*slash = 0;
	int mfd = open(d, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (mfd < 0)
		return errno;
	struct handle_flipper f = {.h = h, .a = real->f_handle, .b = twin_bytes, .n = h->handle_bytes};
	pthread_t th;
	if ((err = pthread_create(&th, NULL, flip_handle, &f)) != 0)
		return err;
	struct opens o = {0};
	long n = env_long("ESCAPE_RACE_OPENS", 100000) / 5;
	for (long i = 0; i < n; i++) {
		o.n++;
		int fd = open_by_handle_at(mfd, h, O_WRONLY | O_CLOEXEC);
		struct fid id = {0};
		if (fd < 0)
			o.failed++;
		else if (fd_id(fd, &id) != 0)
			o.failed++;
		else if (same(&id, &twin_id))
			o.twin++;
		else {
			o.leaks++;
			write_marker(fd);
		}
		if (fd >= 0)
			close(fd);
	}
	f.stop = 1;
	pthread_join(th, NULL);
	close(mfd);
	note_opens("handle_race", &o);
	return open_write(AT_FDCWD, guest);
}

/* ---- attacks on a window the program could get hold of ---- */

struct scribbler {
	char *region;
	const char *path;
	volatile int stop;
	int memfd; /* write through /proc/PID/mem at off, or -1: store directly */
	uint64_t off;
};

static void *scribble(void *arg)
{
	struct scribbler *s = arg;
	size_t n = strlen(s->path) + 1;
	while (!s->stop) {
		for (unsigned long i = 0; i < 2 * SLOTS; i++) {
			if (s->memfd >= 0) {
				if (pwrite(s->memfd, s->path, n, s->off + i * (SLOT / 2)) < 0)
					return NULL;
			} else {
				memcpy(s->region + i * (SLOT / 2), s->path, n);
			}
		}
	}
	return NULL;
}

/* attack writes the guest path into every slot of the region at base (by
 * memory, or through memfd when it is not -1) while the main thread opens
 * the twin, and returns the number of leaks. */
static long attack(const char *guest, void *base, int memfd, uint64_t off, int opens)
{
	char *twin = twin_of(guest);
	struct fid twin_id, tree_id;
	if (!twin || ids(guest, twin, &twin_id, &tree_id) != 0)
		return 0;
	struct scribbler s = {.region = base, .path = guest, .memfd = memfd, .off = off};
	pthread_t th;
	if (pthread_create(&th, NULL, scribble, &s) != 0)
		return 0;
	struct opens o = {0};
	for (int i = 0; i < opens; i++)
		open_count(twin, &twin_id, &tree_id, &o);
	s.stop = 1;
	pthread_join(th, NULL);
	note_opens("attack", &o);
	return o.leaks;
}

/* map_scratch makes the tracer map scratch memory (the first path call of
 * an address space does) and leaves the marker in the tree. */
static int map_scratch(const char *guest) { return open_write(AT_FDCWD, guest); }

#define WIN ((void *)WINDOW)

static int scratch_munmap(const char *guest, const char *aux)
{
	(void)aux;
	int err = map_scratch(guest);
	if (err)
		return err;
	if (munmap(WIN, REGION) != 0)
		return errno;
	/* Unmapped after all: the tracer must notice and map again. */
	for (int i = 1; i <= 3; i++) {
		err = open_write(AT_FDCWD, guest);
		note("open %d after munmap: %s", i, err ? strerror(err) : "ok");
	}
	return err;
}

static int scratch_replace(const char *guest, const char *aux)
{
	(void)aux;
	int err = map_scratch(guest);
	if (err)
		return err;
	if (munmap(WIN, REGION) != 0)
		return errno;
	void *p = mmap(WIN, REGION, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
	if (p == MAP_FAILED)
		return errno;
	attack(guest, p, -1, 0, 2000);
	return open_write(AT_FDCWD, guest);
}

static int scratch_mprotect(const char *guest, const char *aux)
{
	(void)aux;
	int err = map_scratch(guest);
	if (err)
		return err;
	if (mprotect(WIN, REGION, PROT_READ | PROT_WRITE) != 0)
		return errno;
	attack(guest, WIN, -1, 0, 2000);
	return open_write(AT_FDCWD, guest);
}

static int scratch_pkey_mprotect(const char *guest, const char *aux)
{
	(void)aux;
	int err = map_scratch(guest);
	if (err)
		return err;
	if (syscall(SYS_pkey_mprotect, WIN, REGION, PROT_READ | PROT_WRITE, -1) != 0)
		return errno;
	attack(guest, WIN, -1, 0, 2000);
	return open_write(AT_FDCWD, guest);
}

static int scratch_mmap_fixed(const char *guest, const char *aux)
{
	(void)aux;
	int err = map_scratch(guest);
	if (err)
		return err;
	void *p = mmap(WIN, REGION, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
	if (p == MAP_FAILED)
		return errno;
	attack(guest, p, -1, 0, 2000);
	return open_write(AT_FDCWD, guest);
}

static int scratch_mremap_away(const char *guest, const char *aux)
{
	(void)aux;
	int err = map_scratch(guest);
	if (err)
		return err;
	void *dst = mmap(NULL, REGION, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (dst == MAP_FAILED)
		return errno;
	if (mremap(WIN, REGION, REGION, MREMAP_MAYMOVE | MREMAP_FIXED, dst) == MAP_FAILED)
		return errno;
	void *p = mmap(WIN, REGION, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
	if (p == MAP_FAILED)
		return errno;
	attack(guest, p, -1, 0, 2000);
	return open_write(AT_FDCWD, guest);
}

static int scratch_mremap_over(const char *guest, const char *aux)
{
	(void)aux;
	int err = map_scratch(guest);
	if (err)
		return err;
	void *src = mmap(NULL, REGION, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (src == MAP_FAILED)
		return errno;
	void *p = mremap(src, REGION, REGION, MREMAP_MAYMOVE | MREMAP_FIXED, WIN);
	if (p == MAP_FAILED)
		return errno;
	attack(guest, p, -1, 0, 2000);
	return open_write(AT_FDCWD, guest);
}

static int scratch_madvise(const char *guest, const char *aux)
{
	(void)aux;
	int err = map_scratch(guest);
	if (err)
		return err;
	if (madvise(WIN, REGION, MADV_DONTNEED) != 0)
		return errno;
	/* Zeroed: the slot no longer holds what the tracer wrote. */
	return open_write(AT_FDCWD, guest);
}

static int scratch_shmat(const char *guest, const char *aux)
{
	(void)aux;
	int err = map_scratch(guest);
	if (err)
		return err;
	int id = shmget(IPC_PRIVATE, REGION, IPC_CREAT | 0600);
	if (id < 0)
		return errno;
	void *p = shmat(id, WIN, SHM_REMAP);
	int serr = errno;
	shmctl(id, IPC_RMID, NULL);
	if (p == (void *)-1)
		return serr;
	attack(guest, p, -1, 0, 2000);
	return open_write(AT_FDCWD, guest);
}

static int scratch_vm_writev(const char *guest, const char *aux)
{
	(void)aux;
	int err = map_scratch(guest);
	if (err)
		return err;
	/* process_vm_writev respects page protection: the window is read-only. */
	struct iovec local = {.iov_base = (void *)guest, .iov_len = strlen(guest) + 1};
	struct iovec remote = {.iov_base = WIN, .iov_len = strlen(guest) + 1};
	if (process_vm_writev(getpid(), &local, 1, &remote, 1, 0) < 0)
		return errno;
	note("process_vm_writev wrote to the window");
	return open_write(AT_FDCWD, guest);
}

/* proc_mem_attack opens /proc/PID/mem for writing and scribbles the guest
 * path over PID's window while opens of the twin run (in this process when
 * pid is ours, else in pid, which reports its leaks by exit status). */
static int scratch_proc_mem(const char *guest, const char *aux)
{
	(void)aux;
	int err = map_scratch(guest);
	if (err)
		return err;
	int fd = open("/proc/self/mem", O_RDWR | O_CLOEXEC);
	if (fd < 0)
		return errno;
	note("/proc/self/mem opened for writing");
	attack(guest, WIN, fd, WINDOW, 2000);
	close(fd);
	return open_write(AT_FDCWD, guest);
}

static int mem_other_tracee(const char *guest, const char *aux)
{
	(void)aux;
	int err = map_scratch(guest);
	if (err)
		return err;
	char *twin = twin_of(guest);
	struct fid twin_id, tree_id;
	if ((err = ids(guest, twin, &twin_id, &tree_id)) != 0)
		return err;
	int go[2];
	if (pipe(go) != 0)
		return errno;
	fflush(stdout);
	pid_t pid = fork();
	if (pid < 0)
		return errno;
	if (pid == 0) {
		char c;
		close(go[1]);
		if (read(go[0], &c, 1) != 1)
			_exit(0); /* the parent could not open our mem */
		struct opens o = {0};
		for (int i = 0; i < 2000; i++)
			open_count(twin, &twin_id, &tree_id, &o);
		note_opens("child", &o);
		_exit(o.leaks ? 1 : 0);
	}
	close(go[0]);
	char path[64];
	snprintf(path, sizeof path, "/proc/%d/mem", (int)pid);
	int fd = open(path, O_RDWR | O_CLOEXEC);
	err = fd < 0 ? errno : 0;
	if (fd >= 0) {
		note("%s opened for writing", path);
		if (write(go[1], "x", 1) != 1)
			err = errno;
		struct scribbler s = {.path = guest, .memfd = fd, .off = WINDOW};
		pthread_t th;
		if (pthread_create(&th, NULL, scribble, &s) == 0) {
			int st;
			waitpid(pid, &st, 0);
			s.stop = 1;
			pthread_join(th, NULL);
			if (WIFEXITED(st) && WEXITSTATUS(st) != 0)
				note("the child's opens leaked");
		}
		close(fd);
	}
	close(go[1]);
	waitpid(pid, NULL, 0);
	if (err)
		return err;
	return open_write(AT_FDCWD, guest);
}

/* ---- the scratch mmap refused ---- */

/* window_regions is how many scratch regions are mapped, from
 * /proc/self/maps (adjacent regions are one line). */
static long window_regions(void)
{
	FILE *f = fopen("/proc/self/maps", "re");
	if (!f)
		return -1;
	char line[512];
	long n = 0;
	while (fgets(line, sizeof line, f)) {
		unsigned long lo, hi;
		if (sscanf(line, "%lx-%lx", &lo, &hi) == 2 && lo >= WINDOW && hi <= WINDOW + (1UL << 30))
			n += (hi - lo) / REGION;
	}
	fclose(f);
	return n;
}

static long vm_size(void)
{
	FILE *f = fopen("/proc/self/status", "re");
	if (!f)
		return -1;
	char line[256];
	long kb = -1;
	while (fgets(line, sizeof line, f))
		if (sscanf(line, "VmSize: %ld", &kb) == 1)
			break;
	fclose(f);
	return kb * 1024;
}

/* A holder thread makes one path call (taking a scratch slot, which it
 * keeps while it lives) and waits for the end. */
struct holder {
	const char *path;
	int done; /* write end: one byte per step */
	int go;   /* read end: one byte per step */
	int result[2];
};

static void *hold(void *arg)
{
	struct holder *h = arg;
	struct stat st;
	char c;
	stat(h->path, &st);
	if (write(h->done, "x", 1) == 1)
		(void)!read(h->go, &c, 1);
	return NULL;
}

/* opener waits, opens, reports, twice: its first path call comes when the
 * main thread says so. */
static void *opener(void *arg)
{
	struct holder *h = arg;
	for (int i = 0; i < 2; i++) {
		char c;
		if (read(h->go, &c, 1) != 1)
			return NULL;
		h->result[i] = open_write(AT_FDCWD, h->path);
		if (write(h->done, "x", 1) != 1)
			return NULL;
	}
	return NULL;
}

static int mmap_rlimit(const char *guest, const char *aux)
{
	(void)aux;
	/* Fill the scratch slots of this address space: a new region appears
	 * when holder k finds every slot taken, and the 63 after it fill that
	 * region. Then the opener's first path call needs a new region, which
	 * RLIMIT_AS refuses. */
	int done[2], stop[2], go[2];
	if (pipe(done) || pipe(stop) || pipe(go))
		return errno;
	pthread_attr_t attr;
	pthread_attr_init(&attr);
	pthread_attr_setstacksize(&attr, 64 * 1024);
	long regions = window_regions();
	long left = -1;
	int holders = 0;
	struct holder hs = {.path = guest, .done = done[1], .go = stop[0]};
	for (int i = 0; i < 4 * (int)SLOTS && left != 0; i++) {
		pthread_t th;
		char c;
		if (pthread_create(&th, &attr, hold, &hs) != 0 || read(done[0], &c, 1) != 1)
			return EAGAIN;
		holders++;
		if (left > 0) {
			left--;
			continue;
		}
		long now = window_regions();
		if (now > regions && regions >= 0)
			left = SLOTS - 1;
		regions = now;
	}
	int err = 0;
	if (left != 0) {
		note("no new scratch region appeared after %d threads", holders);
		err = EINVAL;
	}
	struct holder o = {.path = guest, .done = done[1], .go = go[0]};
	pthread_t th;
	if (!err && pthread_create(&th, &attr, opener, &o) != 0)
		err = EAGAIN;
	if (!err) {
		struct rlimit old, tight;
		getrlimit(RLIMIT_AS, &old);
		/* Room for small allocations, not for a region. */
		tight.rlim_cur = vm_size() + REGION / 2;
		tight.rlim_max = old.rlim_max;
		char c;
		if (setrlimit(RLIMIT_AS, &tight) != 0)
			err = errno;
		if (!err && (write(go[1], "o", 1) != 1 || read(done[0], &c, 1) != 1))
			err = EIO;
		setrlimit(RLIMIT_AS, &old);
		if (!err && (write(go[1], "o", 1) != 1 || read(done[0], &c, 1) != 1))
			err = EIO;
		if (!err) {
			pthread_join(th, NULL);
			note("first: %s", o.result[0] ? strerror(o.result[0]) : "ok");
			note("then: %s", o.result[1] ? strerror(o.result[1]) : "ok");
			err = o.result[1];
		}
	}
	/* Let the holders go. */
	for (int i = 0; i < holders; i++)
		(void)!write(stop[1], "x", 1);
	return err;
}

static int mmap_seccomp(const char *guest, const char *aux)
{
	if (!escape_stage2) {
		/* mmap -> ENOMEM for this process and what it execs. */
		struct sock_filter f[] = {
			BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, arch)),
			BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, AUDIT_ARCH_NATIVE, 0, 3),
			BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
			BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_mmap, 0, 1),
			BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | ENOMEM),
			BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
		};
		struct sock_fprog prog = {.len = sizeof f / sizeof f[0], .filter = f};
		if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0)
			return errno;
		if (syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &prog) != 0)
			return errno;
		return escape_reexec(guest, aux);
	}
	int err = 0;
	for (int i = 1; i <= 3; i++) {
		err = open_write(AT_FDCWD, guest);
		note("open %d: %s", i, err ? strerror(err) : "ok");
	}
	return err;
}

/* ---- io_uring, other ABIs, CLONE_UNTRACED ---- */

static int io_uring_openat(const char *guest, const char *aux)
{
	(void)aux;
	struct io_uring_params p;
	memset(&p, 0, sizeof p);
	int ring = syscall(SYS_io_uring_setup, 4, &p);
	if (ring < 0)
		return errno;
	note("io_uring_setup succeeded");
	size_t sq_len = p.sq_off.array + p.sq_entries * sizeof(unsigned);
	size_t cq_len = p.cq_off.cqes + p.cq_entries * sizeof(struct io_uring_cqe);
	if (p.features & IORING_FEAT_SINGLE_MMAP)
		sq_len = cq_len = sq_len > cq_len ? sq_len : cq_len;
	char *sq = mmap(NULL, sq_len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, ring, IORING_OFF_SQ_RING);
	if (sq == MAP_FAILED)
		return errno;
	char *cq = sq;
	if (!(p.features & IORING_FEAT_SINGLE_MMAP)) {
		cq = mmap(NULL, cq_len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, ring, IORING_OFF_CQ_RING);
		if (cq == MAP_FAILED)
			return errno;
	}
	struct io_uring_sqe *sqes = mmap(NULL, p.sq_entries * sizeof(struct io_uring_sqe), PROT_READ | PROT_WRITE,
					 MAP_SHARED | MAP_POPULATE, ring, IORING_OFF_SQES);
	if (sqes == MAP_FAILED)
		return errno;
	unsigned tail = *(unsigned *)(sq + p.sq_off.tail);
	unsigned idx = tail & *(unsigned *)(sq + p.sq_off.ring_mask);
	struct io_uring_sqe *sqe = &sqes[idx];
	memset(sqe, 0, sizeof *sqe);
	sqe->opcode = IORING_OP_OPENAT;
	sqe->fd = AT_FDCWD;
	sqe->addr = (uintptr_t)guest;
	sqe->open_flags = O_WRONLY | O_CLOEXEC;
	sqe->user_data = 1;
	((unsigned *)(sq + p.sq_off.array))[idx] = idx;
	__atomic_store_n((unsigned *)(sq + p.sq_off.tail), tail + 1, __ATOMIC_RELEASE);
	if (syscall(SYS_io_uring_enter, ring, 1, 1, IORING_ENTER_GETEVENTS, NULL, 0) < 0)
		return errno;
	unsigned head = __atomic_load_n((unsigned *)(cq + p.cq_off.head), __ATOMIC_ACQUIRE);
	struct io_uring_cqe *cqe =
	    &((struct io_uring_cqe *)(cq + p.cq_off.cqes))[head & *(unsigned *)(cq + p.cq_off.ring_mask)];
	int res = cqe->res;
	close(ring);
	if (res < 0)
		return -res;
	int err = write_marker(res);
	close(res);
	return err;
}

#if defined(__x86_64__)
static int int80_open(const char *guest, const char *aux)
{
	(void)aux;
	/* i386 syscalls take 32-bit pointers. */
	char *low = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_32BIT, -1, 0);
	if (low == MAP_FAILED)
		return errno;
	snprintf(low, 4096, "%s", guest);
	fflush(stdout);
	/* A kernel without ia32 emulation kills int 0x80 with SIGSEGV: try in a
	 * child. */
	pid_t pid = fork();
	if (pid < 0)
		return errno;
	if (pid == 0) {
		long ret;
		/* open(low, O_WRONLY): i386 open is 5 */
		__asm__ volatile("int $0x80"
				 : "=a"(ret)
				 : "a"(5L), "b"(low), "c"((long)O_WRONLY), "d"(0L)
				 : "memory", "r8", "r9", "r10", "r11");
		if (ret < 0)
			_exit((int)-ret);
		_exit(write_marker((int)ret));
	}
	int st;
	if (waitpid(pid, &st, 0) < 0)
		return errno;
	if (WIFSIGNALED(st)) {
		note("int 0x80 killed by signal %d: no ia32 emulation in this kernel", WTERMSIG(st));
		return ENOSYS;
	}
	return WEXITSTATUS(st);
}

static int x32_openat(const char *guest, const char *aux)
{
	(void)aux;
	/* __X32_SYSCALL_BIT | openat (257 in the x32 table too) */
	long fd = syscall(0x40000000L | 257, AT_FDCWD, guest, O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return errno;
	int err = write_marker((int)fd);
	close((int)fd);
	return err;
}
#endif

/* untraced_child waits for a child started by clone or clone3 that runs
 * open_write and exits with its result. */
static int untraced_child(long pid, const char *guest)
{
	if (pid < 0)
		return errno;
	if (pid == 0)
		_exit(open_write(AT_FDCWD, guest));
	int st;
	if (waitpid((pid_t)pid, &st, 0) < 0)
		return errno;
	if (!WIFEXITED(st)) {
		note("child killed by signal %d", WTERMSIG(st));
		return EINTR;
	}
	return WEXITSTATUS(st);
}

static int clone_untraced(const char *guest, const char *aux)
{
	(void)aux;
	fflush(stdout);
	/* fork-like: no new stack, no CLONE_VM */
	return untraced_child(syscall(SYS_clone, CLONE_UNTRACED | SIGCHLD, 0, 0, 0, 0), guest);
}

static int clone3_untraced(const char *guest, const char *aux)
{
	(void)aux;
	struct clone_args args;
	memset(&args, 0, sizeof args);
	args.flags = CLONE_UNTRACED;
	args.exit_signal = SIGCHLD;
	fflush(stdout);
	return untraced_child(syscall(SYS_clone3, &args, sizeof args), guest);
}

const struct escape_case mem_cases[] = {
    {"race", "threads flip the path buffer between the twin and GUEST while open runs (ESCAPE_RACE_OPENS, 100000)",
     race, ESCAPE_PLAIN_ONLY},
    {"handle_race", "a thread flips a file handle between the twin's and the real GUEST's while open_by_handle_at runs",
     handle_race, ESCAPE_PLAIN_ONLY},
    {"scratch_munmap", "munmap the scratch window, then open GUEST", scratch_munmap, 0},
    {"scratch_replace", "munmap the window, map a writable page there, scribble GUEST into it", scratch_replace, 0},
    {"scratch_mprotect", "mprotect the window writable and scribble GUEST into it", scratch_mprotect, 0},
    {"scratch_pkey_mprotect", "pkey_mprotect the window writable and scribble", scratch_pkey_mprotect, 0},
    {"scratch_mmap_fixed", "mmap MAP_FIXED a writable page over the window and scribble", scratch_mmap_fixed, 0},
    {"scratch_mremap_away", "mremap the window elsewhere, map a writable page in its place and scribble",
     scratch_mremap_away, 0},
    {"scratch_mremap_over", "mremap a writable page of its own onto the window and scribble", scratch_mremap_over, 0},
    {"scratch_madvise", "madvise(MADV_DONTNEED) the window (zeroes it), then open GUEST", scratch_madvise, 0},
    {"scratch_shmat", "shmat(SHM_REMAP) a segment over the window and scribble", scratch_shmat, 0},
    {"scratch_vm_writev", "process_vm_writev GUEST into its own window", scratch_vm_writev, 0},
    {"scratch_proc_mem", "write GUEST into its own window through /proc/self/mem", scratch_proc_mem, 0},
    {"mem_other_tracee", "write GUEST into a traced child's window through /proc/PID/mem", mem_other_tracee, 0},
    {"mmap_rlimit", "RLIMIT_AS too tight for the scratch mmap: first open, then one with the limit raised",
     mmap_rlimit, 0},
    {"mmap_seccomp", "a seccomp filter of its own answers mmap with ENOMEM; three opens", mmap_seccomp, 0},
    {"io_uring_openat", "io_uring IORING_OP_OPENAT of GUEST", io_uring_openat, 0},
#if defined(__x86_64__)
    {"int80_open", "i386 open(GUEST) through int 0x80", int80_open, 0},
    {"x32_openat", "x32 openat(GUEST) (__X32_SYSCALL_BIT)", x32_openat, 0},
#endif
    {"clone_untraced", "a clone(CLONE_UNTRACED) child opens GUEST", clone_untraced, 0},
    {"clone3_untraced", "a clone3(CLONE_UNTRACED) child opens GUEST", clone3_untraced, 0},
    {0},
};
