// literal passes path strings that live in read-only data and on the stack
// to syscalls that the tests redirect to a far longer path, and checks that
// nothing the program can see changed:
//
//   - the string literals themselves and their neighbours in .rodata,
//   - a stack buffer holding a path and the canaries around it,
//   - every register the kernel preserves across a syscall (x86_64: all but
//     rax, rcx and r11; arm64: all but x0),
//   - the red zone below the stack pointer and 4 KiB below that.
//
// The guest paths are fixed: /nodeboot-test-literal/dir/file (read) and
// /nodeboot-test-literal/newdir (created). Prints key=value lines:
//
//	data=<content>        read through the literal (checked syscall)
//	stackdata=<content>   read through the stack buffer (checked syscall)
//	libcdata=<content>    read through libc's open(3)
//	size=<n>              newfstatat through the literal
//	mkdir=<errno>         mkdirat of the second literal
//	literal=ok|changed    regs=ok|... redzone=ok|... below=ok|... stack=ok|...
//
// Exits 0 when all checks passed, 1 otherwise.
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#define GUEST_FILE "/nodeboot-test-literal/dir/file"
#define GUEST_NEWDIR "/nodeboot-test-literal/newdir"

// The literals and their neighbours, in one object so that their relative
// layout is known: an engine that wrote a longer path over the literal
// would overwrite "after".
static const struct {
	char before[64];
	char file[sizeof GUEST_FILE];
	char newdir[sizeof GUEST_NEWDIR];
	char after[256];
} lit = {
	"nodeboot-canary-before-0123456789abcdefghijklmnopqrstuvwxyz",
	GUEST_FILE,
	GUEST_NEWDIR,
	"nodeboot-canary-after-0123456789abcdefghijklmnopqrstuvwxyz-0123456789",
};

static uint64_t fnv(const void *p, size_t n) {
	const unsigned char *b = p;
	uint64_t h = 1469598103934665603ULL;
	for (size_t i = 0; i < n; i++) {
		h ^= b[i];
		h *= 1099511628211ULL;
	}
	return h;
}

static int allok = 1;

static void report(const char *key, int ok, const char *detail) {
	printf("%s=%s\n", key, ok ? "ok" : detail);
	if (!ok)
		allok = 0;
}

#if defined(__x86_64__)
// In and out of the checked syscall: globals, so that the asm addresses
// them without a register (it clobbers nearly all of them).
static struct {
	long nr, a[6];
} in;
static struct {
	long ret, a[6];
	unsigned long rbx, r12, r13, r14, r15;
	long redzone_bad, below_bad;
} res;

#define MAGIC_RBX 0x1111111111111111UL
#define MAGIC_R12 0x1212121212121212UL
#define MAGIC_R13 0x1313131313131313UL
#define MAGIC_R14 0x1414141414141414UL
#define MAGIC_R15 0x1515151515151515UL

// checked makes one syscall with known values in every preserved register
// and a pattern below the stack pointer, and records what survived.
static long checked(long nr, long a0, long a1, long a2, long a3, long a4, long a5) {
	in.nr = nr;
	in.a[0] = a0, in.a[1] = a1, in.a[2] = a2, in.a[3] = a3, in.a[4] = a4, in.a[5] = a5;
	__asm__ volatile(
	    // Step below the compiler's own red zone, then fill the 4 KiB
	    // below the new stack pointer (the last 128 bytes are the red
	    // zone) with a pattern.
	    "subq $512, %%rsp\n\t"
	    "leaq -4096(%%rsp), %%rdi\n\t"
	    "movq $512, %%rcx\n\t"
	    "movabsq $0xa5a5a5a5a5a5a5a5, %%rax\n\t"
	    "1: movq %%rax, (%%rdi)\n\t"
	    "addq $8, %%rdi\n\t"
	    "decq %%rcx\n\t"
	    "jnz 1b\n\t"
	    "movabsq $0x1111111111111111, %%rbx\n\t"
	    "movabsq $0x1212121212121212, %%r12\n\t"
	    "movabsq $0x1313131313131313, %%r13\n\t"
	    "movabsq $0x1414141414141414, %%r14\n\t"
	    "movabsq $0x1515151515151515, %%r15\n\t"
	    "movq %[nr], %%rax\n\t"
	    "movq %[a0], %%rdi\n\t"
	    "movq %[a1], %%rsi\n\t"
	    "movq %[a2], %%rdx\n\t"
	    "movq %[a3], %%r10\n\t"
	    "movq %[a4], %%r8\n\t"
	    "movq %[a5], %%r9\n\t"
	    "syscall\n\t"
	    "movq %%rax, %[ret]\n\t"
	    "movq %%rdi, %[o0]\n\t"
	    "movq %%rsi, %[o1]\n\t"
	    "movq %%rdx, %[o2]\n\t"
	    "movq %%r10, %[o3]\n\t"
	    "movq %%r8, %[o4]\n\t"
	    "movq %%r9, %[o5]\n\t"
	    "movq %%rbx, %[rbx]\n\t"
	    "movq %%r12, %[r12]\n\t"
	    "movq %%r13, %[r13]\n\t"
	    "movq %%r14, %[r14]\n\t"
	    "movq %%r15, %[r15]\n\t"
	    // Count changed quadwords: below the red zone, then in it.
	    "movabsq $0xa5a5a5a5a5a5a5a5, %%rax\n\t"
	    "leaq -4096(%%rsp), %%rdi\n\t"
	    "movq $496, %%rcx\n\t"
	    "xorq %%rdx, %%rdx\n\t"
	    "2: cmpq %%rax, (%%rdi)\n\t"
	    "je 3f\n\t"
	    "incq %%rdx\n\t"
	    "3: addq $8, %%rdi\n\t"
	    "decq %%rcx\n\t"
	    "jnz 2b\n\t"
	    "movq %%rdx, %[below]\n\t"
	    "movq $16, %%rcx\n\t"
	    "xorq %%rdx, %%rdx\n\t"
	    "4: cmpq %%rax, (%%rdi)\n\t"
	    "je 5f\n\t"
	    "incq %%rdx\n\t"
	    "5: addq $8, %%rdi\n\t"
	    "decq %%rcx\n\t"
	    "jnz 4b\n\t"
	    "movq %%rdx, %[redzone]\n\t"
	    "addq $512, %%rsp\n\t"
	    : [ret] "=m"(res.ret), [o0] "=m"(res.a[0]), [o1] "=m"(res.a[1]), [o2] "=m"(res.a[2]),
	      [o3] "=m"(res.a[3]), [o4] "=m"(res.a[4]), [o5] "=m"(res.a[5]), [rbx] "=m"(res.rbx),
	      [r12] "=m"(res.r12), [r13] "=m"(res.r13), [r14] "=m"(res.r14), [r15] "=m"(res.r15),
	      [below] "=m"(res.below_bad), [redzone] "=m"(res.redzone_bad)
	    : [nr] "m"(in.nr), [a0] "m"(in.a[0]), [a1] "m"(in.a[1]), [a2] "m"(in.a[2]), [a3] "m"(in.a[3]),
	      [a4] "m"(in.a[4]), [a5] "m"(in.a[5])
	    : "rax", "rbx", "rcx", "rdx", "rdi", "rsi", "r8", "r9", "r10", "r11", "r12", "r13", "r14", "r15", "memory",
	      "cc");

	char detail[512];
	int ok = 1;
	for (int i = 0; i < 6; i++)
		if (res.a[i] != in.a[i])
			ok = 0;
	if (res.rbx != MAGIC_RBX || res.r12 != MAGIC_R12 || res.r13 != MAGIC_R13 || res.r14 != MAGIC_R14 ||
	    res.r15 != MAGIC_R15)
		ok = 0;
	if (!ok) {
		snprintf(detail, sizeof detail,
		         "changed(nr=%ld args %lx,%lx,%lx,%lx,%lx,%lx -> %lx,%lx,%lx,%lx,%lx,%lx rbx=%lx r12=%lx r13=%lx "
		         "r14=%lx r15=%lx)",
		         nr, in.a[0], in.a[1], in.a[2], in.a[3], in.a[4], in.a[5], res.a[0], res.a[1], res.a[2], res.a[3],
		         res.a[4], res.a[5], res.rbx, res.r12, res.r13, res.r14, res.r15);
		report("regs", 0, detail);
	}
	if (res.redzone_bad) {
		snprintf(detail, sizeof detail, "changed(nr=%ld %ld of 16 quadwords)", nr, res.redzone_bad);
		report("redzone", 0, detail);
	}
	if (res.below_bad) {
		snprintf(detail, sizeof detail, "changed(nr=%ld %ld of 496 quadwords)", nr, res.below_bad);
		report("below", 0, detail);
	}
	if (res.ret < 0) {
		errno = (int)-res.ret;
		return -1;
	}
	return res.ret;
}
#define HAVE_CHECKED 1
#else
static long checked(long nr, long a0, long a1, long a2, long a3, long a4, long a5) {
	return syscall(nr, a0, a1, a2, a3, a4, a5);
}
#define HAVE_CHECKED 0
#endif

static void readfd(const char *key, long fd) {
	char buf[4096];
	if (fd < 0) {
		printf("%s=!errno%d\n", key, errno);
		allok = 0;
		return;
	}
	ssize_t n = read((int)fd, buf, sizeof buf - 1);
	close((int)fd);
	buf[n < 0 ? 0 : n] = 0;
	printf("%s=%s\n", key, buf);
}

// prefault touches the stack below the caller so that the pattern the
// checked syscall writes there lands in mapped memory.
static __attribute__((noinline)) void prefault(void) {
	volatile char big[64 * 1024];
	for (size_t i = 0; i < sizeof big; i += 512)
		big[i] = 1;
}

static __attribute__((noinline)) void stackcase(void) {
	// A path on the stack, with canaries right before and after it.
	struct {
		unsigned char pre[512];
		char path[sizeof GUEST_FILE];
		unsigned char post[512];
	} s;
	memset(s.pre, 0x5a, sizeof s.pre);
	memset(s.post, 0xc3, sizeof s.post);
	memcpy(s.path, GUEST_FILE, sizeof GUEST_FILE);
	uint64_t before = fnv(&s, sizeof s);
	long fd = checked(SYS_openat, AT_FDCWD, (long)s.path, O_RDONLY | O_CLOEXEC, 0, 0, 0);
	uint64_t after = fnv(&s, sizeof s);
	readfd("stackdata", fd);
	int pathok = memcmp(s.path, GUEST_FILE, sizeof GUEST_FILE) == 0;
	char detail[256];
	snprintf(detail, sizeof detail, "changed(path=%s pre/post intact=%d)", pathok ? "same" : "changed",
	         before == after);
	report("stack", before == after && pathok, detail);
}

int main(void) {
	setvbuf(stdout, NULL, _IOLBF, 0);
	char copy[sizeof lit];
	memcpy(copy, &lit, sizeof lit);
	uint64_t sum = fnv(&lit, sizeof lit);
	prefault();

	long fd = checked(SYS_openat, AT_FDCWD, (long)lit.file, O_RDONLY | O_CLOEXEC, 0, 0, 0);
	readfd("data", fd);

	struct stat st;
	long r = checked(SYS_newfstatat, AT_FDCWD, (long)lit.file, (long)&st, 0, 0, 0);
	if (r == 0)
		printf("size=%lld\n", (long long)st.st_size);
	else
		printf("size=!errno%d\n", errno);

	r = checked(SYS_mkdirat, AT_FDCWD, (long)lit.newdir, 0755, 0, 0, 0);
	printf("mkdir=%d\n", r == 0 ? 0 : errno);

	stackcase();

	fd = open(lit.file, O_RDONLY | O_CLOEXEC);
	readfd("libcdata", fd);

	int same = memcmp(copy, &lit, sizeof lit) == 0 && fnv(&lit, sizeof lit) == sum;
	report("literal", same, "changed");
	if (HAVE_CHECKED) {
		// Only failures were reported from inside checked().
		printf("checked=1\n");
	}
	printf("%s\n", allok ? "all ok" : "FAILED");
	return allok ? 0 : 1;
}
