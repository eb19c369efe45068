// sighandler checks that signals reach a traced program as they would
// without tracing:
//
//   - SIGUSR1 sent from outside (kill) runs an SA_SIGINFO handler with
//     si_code SI_USER and the sender's pid, while the main thread is blocked
//     in read(2) on a pipe; the handler writes a byte into the pipe and,
//     thanks to SA_RESTART, the read restarts and returns that byte.
//   - SIGUSR2 raised by the program itself arrives with si_code SI_TKILL.
//   - a blocked, then unblocked, SIGHUP is delivered once.
//
// Usage: sighandler SENDER_PID
//
// Prints "ready" once the handlers are installed; then the test sends
// SIGUSR1. Prints one line per check and exits 0 when all passed, 1
// otherwise; exits 4 when SIGUSR1 does not come within 10 s.
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

static int pipefd[2];
static volatile sig_atomic_t usr1_code = 99, usr1_pid = -1, usr2_code = 99, usr2_pid = -1, hups;

static void handler(int sig, siginfo_t *si, void *uc) {
	(void)uc;
	if (sig == SIGUSR1) {
		usr1_code = si->si_code;
		usr1_pid = si->si_pid;
		if (write(pipefd[1], "U", 1) != 1)
			_exit(5);
	} else if (sig == SIGUSR2) {
		usr2_code = si->si_code;
		usr2_pid = si->si_pid;
	} else if (sig == SIGHUP) {
		hups++;
	} else if (sig == SIGALRM) {
		_exit(4);
	}
}

int main(int argc, char **argv) {
	if (argc != 2) {
		fprintf(stderr, "usage: sighandler SENDER_PID\n");
		return 3;
	}
	setvbuf(stdout, NULL, _IOLBF, 0);
	int sender = atoi(argv[1]), ok = 1;
	if (pipe(pipefd))
		return 3;
	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sa.sa_sigaction = handler;
	sa.sa_flags = SA_SIGINFO | SA_RESTART;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGUSR1, &sa, NULL);
	sigaction(SIGUSR2, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
	sigaction(SIGALRM, &sa, NULL);
	alarm(10);

	// Self-raised signal.
	raise(SIGUSR2);
	printf("usr2 code=%d pid=%d\n", (int)usr2_code, (int)usr2_pid);
	if (usr2_code != SI_TKILL || usr2_pid != getpid())
		ok = 0;

	// Blocked signal: pending while blocked, delivered once on unblock.
	sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, SIGHUP);
	sigprocmask(SIG_BLOCK, &set, NULL);
	kill(getpid(), SIGHUP);
	kill(getpid(), SIGHUP);
	int before = hups;
	sigprocmask(SIG_UNBLOCK, &set, NULL);
	printf("hup before=%d after=%d\n", before, (int)hups);
	if (before != 0 || hups != 1)
		ok = 0;

	// External signal while blocked in a restartable read.
	printf("ready\n");
	char c = 0;
	ssize_t n = read(pipefd[0], &c, 1);
	int e = errno;
	printf("read n=%zd errno=%d byte=%c\n", n, n < 0 ? e : 0, n == 1 ? c : '-');
	printf("usr1 code=%d pid=%d\n", (int)usr1_code, (int)usr1_pid);
	if (n != 1 || c != 'U' || usr1_code != SI_USER || usr1_pid != sender)
		ok = 0;
	printf("%s\n", ok ? "all ok" : "FAILED");
	return ok ? 0 : 1;
}
