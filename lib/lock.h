/* lock.h - exclusive flock on a lock file, bounded in time */
#ifndef TSMS_LOCK_H
#define TSMS_LOCK_H

/*
 * Every file the module rewrites (state files, the users file, the backup
 * codes file) is changed under flock on a lock file beside it. A login must
 * never hang on a lock: a holder that is stopped (an administrator's ^Z) or
 * stuck makes the wait end, and the caller fails closed with the problem.
 */

/* How long a login or the admin command waits for a lock before giving up. */
#define TSMS_LOCK_WAIT_MS 5000

/* Takes an exclusive flock on fd, retrying for at most wait_ms. 0 when held;
 * -1 with errno otherwise (EWOULDBLOCK: another process still holds it). */
int tsms_lock_exclusive(int fd, unsigned wait_ms);

/* The problem for errno err of tsms_lock_exclusive: "still locked after 5 s"
 * for EWOULDBLOCK, else strerror(err). */
const char *tsms_lock_strerror(int err);

#endif
