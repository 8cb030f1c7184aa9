/* sigguard.h - signals the module's own system calls raise, kept from the host program */
#ifndef TSMS_SIGGUARD_H
#define TSMS_SIGGUARD_H

#include <signal.h>
#include <stdbool.h>

/*
 * A write to a closed socket raises SIGPIPE; a write past RLIMIT_FSIZE raises
 * SIGXFSZ. Both kill the process by default, and in a setuid host (su, chfn)
 * the caller sets the resource limits: a state file or the backup codes file
 * written under a tiny RLIMIT_FSIZE would kill the login half way and leave a
 * temporary file behind. Around such calls the signal is blocked, so that the
 * call fails instead (EPIPE, EFBIG) and the module fails closed with the
 * problem; a signal raised meanwhile is consumed, unless one was pending
 * already (the host program's own, left for it):
 *
 *     struct tsms_sigguard g;
 *     tsms_sigguard_block(&g, SIGXFSZ);
 *     ... write, fsync, rename ...
 *     tsms_sigguard_restore(&g);
 *
 * For this thread only (pthread_sigmask): PAM hosts call PAM from one thread.
 */
struct tsms_sigguard {
	sigset_t old;
	int sig;
	bool was_pending;
};

void tsms_sigguard_block(struct tsms_sigguard *g, int sig);

/* Consumes sig if it was raised since tsms_sigguard_block, then restores the
 * signal mask; errno is kept. */
void tsms_sigguard_restore(struct tsms_sigguard *g);

#endif
