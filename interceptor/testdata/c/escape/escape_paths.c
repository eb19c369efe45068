/* Cases that name the guest file another way than its plain path:
 * procfs magic links, symlinks, openat2 RESOLVE flags, chroot, long working
 * directories, other mount namespaces. */
#define _GNU_SOURCE
#include <fcntl.h>

#include "escape.h"

static int plain(const char *guest, const char *aux)
{
	(void)aux;
	return open_write(AT_FDCWD, guest);
}

const struct escape_case path_cases[] = {
	{"plain", "open(GUEST, O_WRONLY|O_TRUNC): the simple way", plain},
	{0},
};
