// bpfcg makes the bpf(2) calls runc makes for a container's device
// program on the cgroup directory DIR (BPF_CGROUP_DEVICE): query, attach
// (of a file that is no program, then of a loaded "allow all" program) and
// detach, and prints, one key=value per line:
//
//	query=<errno name or 0>  count=<prog_cnt after the query>  flags=<attach_flags>
//	attachbad=<errno name or 0>   (attach_bpf_fd is stdin)
//	load=<errno name or 0>        (BPF_PROG_LOAD, the kernel's)
//	attach=<errno name or 0>
//	detach=<errno name or 0>
//
// Usage: bpfcg DIR
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <linux/bpf.h>
#include <unistd.h>

static const char *ename(long r)
{
	if (r == 0)
		return "0";
	switch (errno) {
	case EBADF: return "EBADF";
	case EINVAL: return "EINVAL";
	case EPERM: return "EPERM";
	default: return strerror(errno);
	}
}

int main(int argc, char **argv)
{
	if (argc != 2) {
		fprintf(stderr, "usage: bpfcg DIR\n");
		return 3;
	}
	int dir = open(argv[1], O_RDONLY | O_DIRECTORY);
	if (dir < 0) {
		perror(argv[1]);
		return 3;
	}
	uint32_t ids[4];
	union {
		struct { uint32_t target_fd, attach_type, query_flags, attach_flags; uint64_t prog_ids; uint32_t prog_cnt; } q;
		struct { uint32_t target_fd, attach_bpf_fd, attach_type, attach_flags, replace_bpf_fd; } a;
		char pad[128];
	} attr;
	memset(&attr, 0, sizeof attr);
	attr.q.target_fd = dir;
	attr.q.attach_type = 6; // BPF_CGROUP_DEVICE
	attr.q.attach_flags = 77;
	attr.q.prog_ids = (uint64_t)(uintptr_t)ids;
	attr.q.prog_cnt = 4;
	long r = syscall(SYS_bpf, 16 /* BPF_PROG_QUERY */, &attr, sizeof attr);
	printf("query=%s\ncount=%u\nflags=%u\n", ename(r), attr.q.prog_cnt, attr.q.attach_flags);
	memset(&attr, 0, sizeof attr);
	attr.a.target_fd = dir;
	attr.a.attach_bpf_fd = 0; // stdin: no program
	attr.a.attach_type = 6;
	r = syscall(SYS_bpf, 8 /* BPF_PROG_ATTACH */, &attr, sizeof attr);
	printf("attachbad=%s\n", ename(r));

	struct bpf_insn prog[] = {
		{.code = BPF_ALU64 | BPF_MOV | BPF_K, .dst_reg = 0, .imm = 1}, // r0 = 1: allow
		{.code = BPF_JMP | BPF_EXIT},
	};
	union bpf_attr load;
	memset(&load, 0, sizeof load);
	load.prog_type = BPF_PROG_TYPE_CGROUP_DEVICE;
	load.insns = (uint64_t)(uintptr_t)prog;
	load.insn_cnt = 2;
	load.license = (uint64_t)(uintptr_t)"GPL";
	long pfd = syscall(SYS_bpf, BPF_PROG_LOAD, &load, sizeof load);
	printf("load=%s\n", ename(pfd < 0 ? pfd : 0));
	memset(&attr, 0, sizeof attr);
	attr.a.target_fd = dir;
	attr.a.attach_bpf_fd = pfd < 0 ? 0 : pfd;
	attr.a.attach_type = 6;
	r = syscall(SYS_bpf, 8 /* BPF_PROG_ATTACH */, &attr, sizeof attr);
	printf("attach=%s\n", ename(r));
	r = syscall(SYS_bpf, 9 /* BPF_PROG_DETACH */, &attr, sizeof attr);
	printf("detach=%s\n", ename(r));
	return 0;
}
