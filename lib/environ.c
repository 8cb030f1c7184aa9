/* environ.c - the caller's environment, kept away from the libraries the module loads */
#include "environ.h"

#include <stddef.h>
#include <unistd.h>

/* What getenv() searches while the caller's environment is hidden: nothing.
 * Not const: environ is char **, and glibc's setenv() copies a foreign list
 * before changing it, so this one is never written. */
static char *empty_environ[] = { NULL };

char **tsms_environ_hide(void)
{
	char **saved = environ;

	environ = empty_environ;
	return saved;
}

void tsms_environ_restore(char **saved)
{
	environ = saved;
}
