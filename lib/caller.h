/* caller.h - the program that calls PAM, and what its user can do to this process
 *
 * In a setuid host (su, sudo, chfn, pkexec) the process keeps the caller's real
 * uid, so the unprivileged user who started it may send it and its children any
 * signal at any moment: stop it past a timeout, kill it half way, let it go on.
 * The environment and the resource limits are the caller's too (environ.h,
 * sigguard.h). What the module does about the signals:
 *
 *   - an outage such a caller can cause at will (stopping the process until a
 *     timeout passes) never opens: failMode open applies only where the caller
 *     cannot signal this process (tsms_caller_can_signal; sshd, login);
 *   - nothing others wait on is held while the caller could stop the process:
 *     every lock is taken and held under the shield (tsms_shield_raise), which
 *     makes the real and saved uids root, so that the caller's kill() fails with
 *     EPERM, blocks the terminal's stop signals, which ignore permissions, and
 *     undoes the scheduling the caller could have slowed it down with. The
 *     terminal's ^C still ends the process: that releases its locks, and every
 *     answer is counted before it is judged. A cgroup the caller owns (systemd
 *     --user scopes) can still freeze it: a waiting login then fails after 5 s
 *     (lock.h), and the holder is named;
 *   - a child the module forks (the directory lookup) leaves the caller for good
 *     (tsms_caller_detach): a child that dies by a signal is a crash or an
 *     attack, never an outage.
 *
 * For one thread (PAM hosts call PAM from one thread); the shield nests.
 */
#ifndef TSMS_CALLER_H
#define TSMS_CALLER_H

#include <stdbool.h>

/* Size of the buffer naming the caller: "setuid su, uid 1009". */
#define TSMS_CALLER_WHO_MAX 80

/* True when the caller can signal this process: its real uid is not root, or
 * the kernel marked the program AT_SECURE (setuid, setgid, file capabilities).
 * who then names the program and the real uid, for the log. */
bool tsms_caller_can_signal(char who[TSMS_CALLER_WHO_MAX]);

/* Raises the shield: the real and saved uids become root (when the effective
 * one is; a process without root has nothing to shield), SIGTSTP, SIGTTIN and
 * SIGTTOU are blocked, and where the uids changed, SCHED_IDLE or SCHED_BATCH,
 * a positive nice value, a narrowed CPU affinity and the idle I/O class become
 * the ordinary ones (best effort). Nests: only the outermost lower restores it
 * all. 0, or -1 with errno when the uids could not be changed (then nothing
 * changed). */
int tsms_shield_raise(void);

/* Lowers one raise; errno is kept. */
void tsms_shield_lower(void);

/* In a child the module forked: a session of its own (no terminal's signals)
 * and, when the effective uid is root, root's real and saved uid too, so that
 * the caller cannot signal it, its soft resource limits raised to the hard
 * ones and ordinary scheduling. 0, or -1 with errno. */
int tsms_caller_detach(void);

#endif
