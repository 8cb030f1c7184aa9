/* lock.h - exclusive flock on a lock file, bounded in time, held under the shield */
#ifndef TSMS_LOCK_H
#define TSMS_LOCK_H

/*
 * Every file the module rewrites (state files, the users file, the backup
 * codes file) is changed under flock on a lock file beside it. A login must
 * never hang on a lock, nor hold one that others wait on while it can be
 * stopped: a holder that is stuck or stopped (an administrator's ^Z) makes
 * the wait end, and the caller fails closed with the problem; and a lock is
 * taken and held under the shield (caller.h), so that the user of a setuid
 * host cannot stop or kill the process while it holds one.
 */

/* How long a login or the admin command waits for a lock before giving up. */
#define TSMS_LOCK_WAIT_MS 5000

/* Raises the shield, then takes an exclusive flock on fd, retrying for at most
 * wait_ms. 0 when held: release it with tsms_lock_release. -1 with errno
 * otherwise (EWOULDBLOCK: another process still holds it), the shield lowered
 * and fd left open. */
int tsms_lock_exclusive(int fd, unsigned wait_ms);

/* Closes *fd (which drops the flock), sets it to -1 and lowers the shield;
 * nothing when *fd is -1. */
void tsms_lock_release(int *fd);

/* The problem for errno err of tsms_lock_exclusive: "still locked after 5 s"
 * for EWOULDBLOCK, else strerror(err). */
const char *tsms_lock_strerror(int err);

/* Who holds fd's lock, from /proc/locks, for the problem when it could not be
 * taken: " by process 1234 (su, stopped; fix: kill -CONT 1234, or kill 1234)",
 * " by process 1234 (su, frozen with its cgroup CG; fix: ...)", or "" when that
 * cannot be told. */
#define TSMS_LOCK_HOLDER_MAX 400
void tsms_lock_holder(int fd, char out[TSMS_LOCK_HOLDER_MAX]);

#endif
