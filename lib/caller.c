/* caller.c - the program that calls PAM, and what its user can do to this process */
#include "caller.h"

#include <errno.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <sys/auxv.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

/* ioprio_get/ioprio_set (linux/ioprio.h): the class sits above 13 bits of data */
#define IOPRIO_WHO_PROCESS 1
#define IOPRIO_CLASS_IDLE 3
#define IOPRIO_BEST_EFFORT_NORMAL ((2 << 13) | 4)

/* What the outermost raise changed, to restore at the outermost lower. */
static struct {
	unsigned depth;
	bool uids_changed;
	uid_t ruid, suid;
	sigset_t mask;
	bool policy_changed, nice_changed, cpus_changed, ioprio_changed;
	int policy, nice, ioprio;
	struct sched_param param;
	cpu_set_t cpus;
} shield;

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

/* The caller may have made this process as slow as it can be (SCHED_IDLE,
 * nice 19, one busy CPU, idle I/O) so that a lock is held for minutes; under the
 * shield it runs as an ordinary process. Best effort: where root lacks
 * CAP_SYS_NICE a setting stays as it was. */
static void ordinary_scheduling(void)
{
	struct sched_param zero = { 0 };
	cpu_set_t all;
	long n = sysconf(_SC_NPROCESSORS_CONF);
	int prio;

	shield.policy = sched_getscheduler(0);
	if ((shield.policy == SCHED_IDLE || shield.policy == SCHED_BATCH) &&
	    sched_getparam(0, &shield.param) == 0 && sched_setscheduler(0, SCHED_OTHER, &zero) == 0)
		shield.policy_changed = true;
	errno = 0;
	shield.nice = getpriority(PRIO_PROCESS, 0);
	if (errno == 0 && shield.nice > 0 && setpriority(PRIO_PROCESS, 0, 0) == 0)
		shield.nice_changed = true;
	CPU_ZERO(&all);
	for (long i = 0; i < n && i < CPU_SETSIZE; i++)
		CPU_SET((int)i, &all);
	if (sched_getaffinity(0, sizeof(shield.cpus), &shield.cpus) == 0 &&
	    CPU_COUNT(&shield.cpus) < CPU_COUNT(&all) &&
	    sched_setaffinity(0, sizeof(all), &all) == 0)
		shield.cpus_changed = true;
	prio = (int)syscall(SYS_ioprio_get, IOPRIO_WHO_PROCESS, 0);
	if (prio >= 0 && (prio >> 13) == IOPRIO_CLASS_IDLE &&
	    syscall(SYS_ioprio_set, IOPRIO_WHO_PROCESS, 0, IOPRIO_BEST_EFFORT_NORMAL) == 0) {
		shield.ioprio = prio;
		shield.ioprio_changed = true;
	}
}

static void caller_scheduling(void)
{
	if (shield.ioprio_changed)
		(void)syscall(SYS_ioprio_set, IOPRIO_WHO_PROCESS, 0, shield.ioprio);
	if (shield.cpus_changed)
		(void)sched_setaffinity(0, sizeof(shield.cpus), &shield.cpus);
	if (shield.nice_changed)
		(void)setpriority(PRIO_PROCESS, 0, shield.nice);
	if (shield.policy_changed)
		(void)sched_setscheduler(0, shield.policy, &shield.param);
	shield.policy_changed = shield.nice_changed = false;
	shield.cpus_changed = shield.ioprio_changed = false;
}

int tsms_shield_raise(void)
{
	sigset_t stops;
	uid_t ruid, euid, suid;

	if (shield.depth++ > 0)
		return 0;
	shield.uids_changed = false;
	if (getresuid(&ruid, &euid, &suid) != 0) {
		shield.depth--;
		return -1;
	}
	if (euid == 0 && (ruid != 0 || suid != 0)) {
		if (setresuid(0, (uid_t)-1, 0) != 0) {
			shield.depth--;
			return -1;
		}
		shield.ruid = ruid;
		shield.suid = suid;
		shield.uids_changed = true;
	}
	sigemptyset(&stops);
	sigaddset(&stops, SIGTSTP);
	sigaddset(&stops, SIGTTIN);
	sigaddset(&stops, SIGTTOU);
	pthread_sigmask(SIG_BLOCK, &stops, &shield.mask);
	if (shield.uids_changed)
		ordinary_scheduling(); /* the caller can no longer change it back */
	return 0;
}

void tsms_shield_lower(void)
{
	int saved_errno = errno;

	if (shield.depth == 0 || --shield.depth > 0)
		return;
	caller_scheduling();
	/* Effective uid root may set the real and saved uids to anything: this cannot
	 * fail. If it did, the host must not go on with the caller's process looking
	 * like root's (pam_rootok and su trust a real uid 0): ending it is failing
	 * closed. */
	if (shield.uids_changed && setresuid(shield.ruid, (uid_t)-1, shield.suid) != 0)
		_exit(127);
	shield.uids_changed = false;
	pthread_sigmask(SIG_SETMASK, &shield.mask, NULL);
	errno = saved_errno;
}

int tsms_caller_detach(void)
{
	static const int limits[] = { RLIMIT_AS,  RLIMIT_DATA,   RLIMIT_STACK,
		                      RLIMIT_CPU, RLIMIT_NOFILE, RLIMIT_FSIZE };

	if (setsid() < 0)
		return -1;
	if (geteuid() != 0)
		return 0;
	if (setresuid(0, 0, 0) != 0)
		return -1;
	/* the caller's soft limits, as far as the hard ones allow: a lookup starved
	 * of memory must not take a libldap failure for an absent attribute */
	for (size_t i = 0; i < sizeof(limits) / sizeof(limits[0]); i++) {
		struct rlimit rl;

		if (getrlimit(limits[i], &rl) == 0 && rl.rlim_cur != rl.rlim_max) {
			rl.rlim_cur = rl.rlim_max;
			(void)setrlimit(limits[i], &rl);
		}
	}
	ordinary_scheduling();
	return 0;
}
