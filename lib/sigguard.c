/* sigguard.c - signals the module's own system calls raise, kept from the host program */
#include "sigguard.h"

#include <errno.h>
#include <time.h>

void tsms_sigguard_block(struct tsms_sigguard *g, int sig)
{
	sigset_t set, pending;

	g->sig = sig;
	sigemptyset(&set);
	sigaddset(&set, sig);
	sigpending(&pending);
	g->was_pending = sigismember(&pending, sig) == 1;
	pthread_sigmask(SIG_BLOCK, &set, &g->old);
}

void tsms_sigguard_restore(struct tsms_sigguard *g)
{
	static const struct timespec zero = { 0, 0 };
	int saved_errno = errno;
	sigset_t set, pending;

	sigemptyset(&set);
	sigaddset(&set, g->sig);
	sigpending(&pending);
	if (!g->was_pending && sigismember(&pending, g->sig) == 1)
		while (sigtimedwait(&set, NULL, &zero) < 0 && errno == EINTR)
			;
	pthread_sigmask(SIG_SETMASK, &g->old, NULL);
	errno = saved_errno;
}
