/* environ.c - the caller's environment, kept away from the libraries the module loads */
#include "environ.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* What getenv() searches while the caller's environment is hidden: nothing.
 * glibc's setenv() never writes a list it did not allocate; it allocates a
 * new one, so this one stays empty. */
static char *empty_environ[] = { NULL };

/* The copy that last became the environment (see tsms_environ_restore). */
static char **adopted;

void tsms_environ_hide(struct tsms_environ *saved)
{
	tsms_environ_use(saved, empty_environ);
}

void tsms_environ_use(struct tsms_environ *saved, char **list)
{
	size_t n = 0;

	saved->list = environ;
	saved->shown = list;
	saved->copy = NULL;
	if (environ != NULL) {
		while (environ[n] != NULL)
			n++;
		/* the strings stay where they are (setenv never frees them); only the
		 * list of pointers may be reallocated, so that is what is kept */
		saved->copy = malloc((n + 1) * sizeof(*saved->copy));
		if (saved->copy != NULL)
			memcpy(saved->copy, environ, (n + 1) * sizeof(*saved->copy));
	}
	environ = list;
}

void tsms_environ_restore(struct tsms_environ *saved)
{
	if (environ == saved->shown || saved->copy == NULL) {
		environ = saved->list;
		free(saved->copy);
	} else {
		/* setenv() or putenv() ran while hidden and may have reallocated the
		 * caller's list: the copy is the caller's environment as it was (and
		 * from now on the environment itself). The copy adopted before, unless it
		 * is the list being replaced, is no one's any more: glibc copies a list
		 * it did not allocate before changing it. */
		if (adopted != NULL && adopted != saved->list)
			free(adopted);
		adopted = saved->copy;
		environ = saved->copy;
	}
	saved->list = saved->copy = saved->shown = NULL;
}
