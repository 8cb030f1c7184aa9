/* caller.c - the program that calls PAM, and what its user can do to this process */
#include "caller.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <sys/auxv.h>
#include <unistd.h>

/* The outermost raise's: the real uid and the signal mask to restore. */
static unsigned depth;
static uid_t saved_ruid;
static bool ruid_changed;
static sigset_t saved_mask;

bool tsms_caller_can_signal(char who[TSMS_CALLER_WHO_MAX])
{
	bool secure = getauxval(AT_SECURE) != 0;
	uid_t ruid = getuid();

	if (ruid == 0 && !secure)
		return false;
	snprintf(who, TSMS_CALLER_WHO_MAX, "%s%s, uid %u", secure ? "setuid " : "",
	         program_invocation_short_name, (unsigned)ruid);
	return true;
}

int tsms_shield_raise(void)
{
	sigset_t stops;
	uid_t ruid;

	if (depth++ > 0)
		return 0;
	ruid = getuid();
	ruid_changed = false;
	if (ruid != 0 && geteuid() == 0) {
		if (setresuid(0, (uid_t)-1, (uid_t)-1) != 0) {
			depth--;
			return -1;
		}
		ruid_changed = true;
	}
	saved_ruid = ruid;
	sigemptyset(&stops);
	sigaddset(&stops, SIGTSTP);
	sigaddset(&stops, SIGTTIN);
	sigaddset(&stops, SIGTTOU);
	pthread_sigmask(SIG_BLOCK, &stops, &saved_mask);
	return 0;
}

void tsms_shield_lower(void)
{
	int saved_errno = errno;

	if (depth == 0 || --depth > 0)
		return;
	/* Effective uid root may set the real uid to anything: this cannot fail.
	 * If it did, the host must not go on with the caller's process looking like
	 * root's (pam_rootok and su trust a real uid 0): ending it is failing closed. */
	if (ruid_changed && setresuid(saved_ruid, (uid_t)-1, (uid_t)-1) != 0)
		_exit(127);
	ruid_changed = false;
	pthread_sigmask(SIG_SETMASK, &saved_mask, NULL);
	errno = saved_errno;
}

int tsms_caller_detach(void)
{
	if (setsid() < 0)
		return -1;
	if (geteuid() == 0 && setresuid(0, 0, 0) != 0)
		return -1;
	return 0;
}
