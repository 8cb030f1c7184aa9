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
#include <string.h>
#include <sys/file.h>
#include <time.h>
#include <unistd.h>

#include "caller.h"

#define POLL_NS (10 * 1000 * 1000L)
_Static_assert(TSMS_LOCK_WAIT_MS == 5000, "tsms_lock_strerror says 5 s");

static long long now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int tsms_lock_exclusive(int fd, unsigned wait_ms)
{
	static const struct timespec poll = { 0, POLL_NS };
	long long deadline = now_ms() + wait_ms;

	if (tsms_shield_raise() != 0)
		return -1;
	while (flock(fd, LOCK_EX | LOCK_NB) != 0) {
		if (errno != EWOULDBLOCK && errno != EINTR)
			goto fail;
		if (now_ms() >= deadline) {
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
