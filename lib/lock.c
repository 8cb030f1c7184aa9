/* lock.c - exclusive flock on a lock file, bounded in time, held under the shield
 *
 * flock(LOCK_EX) alone would wait for ever. Linux has no flock with a
 * timeout, and an alarm signal is not the module's to use (the host program
 * owns the signals), so the lock is tried without blocking every 10 ms until
 * the time is up. The shield goes up before the first try: there is no moment
 * when the lock is held and the caller may still stop the process.
 */
#include "lock.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <time.h>
#include <unistd.h>

#include "caller.h"
#include "clock.h"

#define POLL_NS (10 * 1000 * 1000L)
_Static_assert(TSMS_LOCK_WAIT_MS == 5000, "tsms_lock_strerror says 5 s");

int tsms_lock_exclusive(int fd, unsigned wait_ms)
{
	static const struct timespec poll = { 0, POLL_NS };
	long long deadline = tsms_clock_ms() + wait_ms;

	if (tsms_shield_raise() != 0)
		return -1;
	while (flock(fd, LOCK_EX | LOCK_NB) != 0) {
		if (errno != EWOULDBLOCK && errno != EINTR)
			goto fail;
		if (tsms_clock_left_ms(deadline) == 0) {
			errno = EWOULDBLOCK;
			goto fail;
		}
		(void)nanosleep(&poll, NULL); /* a signal only makes the next try sooner */
	}
	return 0;
fail:
	tsms_shield_lower(); /* keeps errno */
	return -1;
}

void tsms_lock_release(int *fd)
{
	if (*fd < 0)
		return;
	close(*fd);
	*fd = -1;
	tsms_shield_lower();
}

const char *tsms_lock_strerror(int err)
{
	return err == EWOULDBLOCK ? "still locked after 5 s" : strerror(err);
}

/* The pid of the process whose flock is on the file with st's device and
 * inode, from /proc/locks ("1: FLOCK  ADVISORY  WRITE 1234 08:01:5678 0 EOF";
 * waiters' lines, "1: -> FLOCK ...", are skipped); 0 when none is found. */
static long flock_holder(const struct stat *st)
{
	char line[256], want[64];
	long pid = 0;
	FILE *f;

	snprintf(want, sizeof(want), " %02x:%02x:%llu ", major(st->st_dev), minor(st->st_dev),
	         (unsigned long long)st->st_ino);
	f = fopen("/proc/locks", "re");
	if (f == NULL)
		return 0;
	while (pid == 0 && fgets(line, sizeof(line), f) != NULL) {
		long p;

		if (strstr(line, want) != NULL && strstr(line, "->") == NULL &&
		    sscanf(line, "%*d: FLOCK %*s %*s %ld", &p) == 1 && p > 0)
			pid = p;
	}
	fclose(f);
	return pid;
}

/* The cgroup v2 of pid, as its directory under the unified hierarchy (Debian's
 * /sys/fs/cgroup, or /sys/fs/cgroup/unified on hybrid systems), into cg when
 * it is frozen (cgroup.freeze: the state then shows 'S', not 'T'); false
 * otherwise. */
static bool frozen_cgroup(long pid, char *cg, size_t size)
{
	static const char *const roots[] = { "/sys/fs/cgroup", "/sys/fs/cgroup/unified" };
	char path[4200], line[4096], name[4096] = "";
	bool frozen = false;
	FILE *f = NULL;

	snprintf(path, sizeof(path), "/proc/%ld/cgroup", pid);
	f = fopen(path, "re");
	if (f != NULL) {
		while (fgets(line, sizeof(line), f) != NULL)
			if (strncmp(line, "0::", 3) == 0) {
				line[strcspn(line, "\n")] = '\0';
				snprintf(name, sizeof(name), "%s", line + 3);
			}
		fclose(f);
	}
	if (name[0] != '/')
		return false;
	for (size_t i = 0; i < 2 && !frozen; i++) {
		snprintf(path, sizeof(path), "%s%s/cgroup.events", roots[i],
		         strcmp(name, "/") == 0 ? "" : name);
		f = fopen(path, "re");
		if (f == NULL)
			continue;
		while (fgets(line, sizeof(line), f) != NULL)
			frozen = frozen || strcmp(line, "frozen 1\n") == 0;
		fclose(f);
		if (frozen)
			snprintf(cg, size, "%s%s", roots[i], strcmp(name, "/") == 0 ? "" : name);
	}
	return frozen;
}

void tsms_lock_holder(int fd, char out[TSMS_LOCK_HOLDER_MAX])
{
	char cg[4096];
	char path[64], stat_line[512], *open_paren, *close_paren, state = '?';
	const char *comm = "?";
	struct stat st;
	long pid;
	FILE *f;

	out[0] = '\0';
	if (fstat(fd, &st) != 0 || (pid = flock_holder(&st)) == 0)
		return;
	snprintf(path, sizeof(path), "/proc/%ld/stat", pid);
	f = fopen(path, "re");
	stat_line[0] = '\0';
	if (f != NULL) {
		if (fgets(stat_line, sizeof(stat_line), f) == NULL)
			stat_line[0] = '\0';
		fclose(f);
	}
	/* "PID (COMM) STATE ...", where COMM may hold anything, ')' too */
	open_paren = strchr(stat_line, '(');
	close_paren = strrchr(stat_line, ')');
	if (open_paren != NULL && close_paren != NULL && close_paren > open_paren &&
	    close_paren[1] == ' ') {
		*close_paren = '\0';
		comm = open_paren + 1;
		state = close_paren[2];
	}
	if (state == 'T' || state == 't')
		snprintf(out, TSMS_LOCK_HOLDER_MAX,
		         " by process %ld (%.16s, stopped; fix: kill -CONT %ld, or kill %ld)", pid,
		         comm, pid, pid);
	else if (frozen_cgroup(pid, cg, sizeof(cg)))
		snprintf(out, TSMS_LOCK_HOLDER_MAX,
		         " by process %ld (%.16s, frozen with its cgroup; fix: echo 0 > "
		         "%.200s/cgroup.freeze, or kill %ld)",
		         pid, comm, cg, pid);
	else
		snprintf(out, TSMS_LOCK_HOLDER_MAX, " by process %ld (%.16s)", pid, comm);
}
