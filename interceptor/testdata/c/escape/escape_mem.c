/* Cases that attack the rewrite itself: scratch memory, races on the path
 * buffer, and channels the filter must close (io_uring, compat syscalls,
 * CLONE_UNTRACED). */
#define _GNU_SOURCE
#include "escape.h"

const struct escape_case mem_cases[] = {
	{0},
};
