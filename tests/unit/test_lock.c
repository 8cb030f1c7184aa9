/* test_lock.c - unit tests of lib/lock: the exclusive flock bounded in time */
#include "unit.h"

#include <signal.h>
#include <stdbool.h>
#include <sys/file.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>

#include "caller.h"
#include "lock.h"

static long long now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* A lock file in a scratch directory and two descriptions of it: flock treats
 * them as two holders, even in one process. */
struct world {
	char dir[64];
	char path[96];
	int holder, waiter;
	int go[2], held[2]; /* the shield case's handshake */
};

static int setup(void **state)
{
	struct world *w = calloc(1, sizeof(*w));

	assert_non_null(w);
	snprintf(w->dir, sizeof(w->dir), "/tmp/tsms-lock.XXXXXX");
	assert_non_null(mkdtemp(w->dir));
	snprintf(w->path, sizeof(w->path), "%s/x.lock", w->dir);
	w->holder = open(w->path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	w->waiter = open(w->path, O_RDWR | O_CLOEXEC);
	assert_true(w->holder >= 0 && w->waiter >= 0);
	*state = w;
	return 0;
}

static int teardown(void **state)
{
	struct world *w = *state;

	close(w->holder);
	if (w->waiter >= 0)
		close(w->waiter);
	unit_remove_tree(w->dir);
	free(w);
	return 0;
}

static void test_free_lock_is_taken_at_once(void **state)
{
	struct world *w = *state;
	long long start = now_ms();

	assert_int_equal(tsms_lock_exclusive(w->waiter, 2000), 0);
	assert_true(now_ms() - start < 1000);
	/* and it is exclusive: the other description cannot have it now */
	assert_int_equal(flock(w->holder, LOCK_EX | LOCK_NB), -1);
	assert_int_equal(errno, EWOULDBLOCK);
	tsms_lock_release(&w->waiter);
	assert_int_equal(w->waiter, -1);
	assert_int_equal(flock(w->holder, LOCK_EX | LOCK_NB), 0); /* released */
}

static void test_held_lock_gives_up_after_the_wait(void **state)
{
	struct world *w = *state;
	long long start, took;

	assert_int_equal(flock(w->holder, LOCK_EX), 0);
	start = now_ms();
	errno = 0;
	assert_int_equal(tsms_lock_exclusive(w->waiter, 300), -1);
	took = now_ms() - start;
	assert_int_equal(errno, EWOULDBLOCK);
	assert_true(took >= 300);
	assert_true(took < 3000); /* bounded, not for ever */
	assert_string_equal(tsms_lock_strerror(EWOULDBLOCK), "still locked after 5 s");
	assert_string_equal(tsms_lock_strerror(EBADF), strerror(EBADF));
}

/* A child that holds the lock for hold_ms (0: until it is killed), then exits 0;
 * returns once it holds it. */
static pid_t child_holding(const struct world *w, unsigned hold_ms)
{
	int ready[2];
	pid_t pid;

	assert_int_equal(pipe(ready), 0);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		int fd = open(w->path, O_RDWR | O_CLOEXEC);

		if (fd < 0 || flock(fd, LOCK_EX) != 0 || write(ready[1], "x", 1) != 1)
			_exit(1);
		if (hold_ms == 0)
			pause();
		usleep(hold_ms * 1000);
		_exit(0); /* the lock goes with the process */
	}
	close(ready[1]);
	assert_int_equal(read(ready[0], &(char){ 0 }, 1), 1);
	close(ready[0]);
	return pid;
}

/* A lock released during the wait is taken: a child holds it for 200 ms. */
static void test_lock_released_during_the_wait_is_taken(void **state)
{
	struct world *w = *state;
	pid_t pid = child_holding(w, 200);
	int status;

	assert_int_equal(flock(w->waiter, LOCK_EX | LOCK_NB), -1); /* held by the child */
	assert_int_equal(tsms_lock_exclusive(w->waiter, 10000), 0);
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	tsms_lock_release(&w->waiter);
}

/* ---- the shield: a lock is held where the caller of a setuid host cannot
 * signal the process (lib/caller.h) */

#define NOBODY 65534

/* kill(pid, sig) sent by an unprivileged user: 0 when sent, else its errno. */
static int kill_as_nobody(pid_t pid, int sig)
{
	int status;
	pid_t a = fork();

	if (a == 0) {
		if (setresgid(NOBODY, NOBODY, NOBODY) != 0 ||
		    setresuid(NOBODY, NOBODY, NOBODY) != 0)
			_exit(200);
		_exit(kill(pid, sig) == 0 ? 0 : errno);
	}
	if (a < 0 || waitpid(a, &status, 0) != a || !WIFEXITED(status))
		return 255;
	return WEXITSTATUS(status);
}

static bool stop_signals_blocked(void)
{
	sigset_t now;

	pthread_sigmask(SIG_BLOCK, NULL, &now);
	return sigismember(&now, SIGTSTP) == 1 && sigismember(&now, SIGTTIN) == 1 &&
	       sigismember(&now, SIGTTOU) == 1;
}

#define CHILD_CHECK(cond)                                                         \
	do {                                                                      \
		if (!(cond)) {                                                    \
			fprintf(stderr, "test_lock.c:%d: %s\n", __LINE__, #cond); \
			_exit(1);                                                 \
		}                                                                 \
	} while (0)

/* As in setuid su run by an unprivileged user: real uid NOBODY, effective and
 * saved uid root. While the lock is held the user's kill() fails with EPERM and
 * the terminal's stop signals are blocked; before and after, all is as it was.
 * A lock that cannot be taken leaves nothing raised. */
static void shielded_child(const struct world *w)
{
	int fd = open(w->path, O_RDWR | O_CLOEXEC), busy;

	CHILD_CHECK(fd >= 0 && setresuid(NOBODY, 0, 0) == 0);
	CHILD_CHECK(kill_as_nobody(getpid(), 0) == 0);
	CHILD_CHECK(!stop_signals_blocked());
	CHILD_CHECK(tsms_lock_exclusive(fd, 1000) == 0);
	CHILD_CHECK(getuid() == 0 && geteuid() == 0);
	CHILD_CHECK(kill_as_nobody(getpid(), SIGSTOP) == EPERM);
	CHILD_CHECK(kill_as_nobody(getpid(), SIGKILL) == EPERM);
	CHILD_CHECK(stop_signals_blocked());
	/* nested: only the outermost lower ends it */
	CHILD_CHECK(tsms_shield_raise() == 0);
	tsms_shield_lower();
	CHILD_CHECK(getuid() == 0 && stop_signals_blocked());
	tsms_lock_release(&fd);
	CHILD_CHECK(fd == -1 && getuid() == NOBODY && geteuid() == 0);
	CHILD_CHECK(kill_as_nobody(getpid(), 0) == 0);
	CHILD_CHECK(!stop_signals_blocked());
	/* the parent holds it now: the wait fails, and nothing stays raised */
	busy = open(w->path, O_RDWR | O_CLOEXEC);
	CHILD_CHECK(write(w->go[1], "x", 1) == 1);
	CHILD_CHECK(read(w->held[0], &(char){ 0 }, 1) == 1);
	CHILD_CHECK(busy >= 0 && tsms_lock_exclusive(busy, 100) == -1 && errno == EWOULDBLOCK);
	CHILD_CHECK(getuid() == NOBODY && !stop_signals_blocked());
	CHILD_CHECK(kill_as_nobody(getpid(), 0) == 0);
	_exit(0);
}

static void test_held_lock_is_shielded_from_the_caller(void **state)
{
	struct world *w = *state;
	int status;
	pid_t pid;

	assert_int_equal(pipe(w->go), 0);
	assert_int_equal(pipe(w->held), 0);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0)
		shielded_child(w);
	assert_int_equal(read(w->go[0], &(char){ 0 }, 1), 1);
	assert_int_equal(flock(w->holder, LOCK_EX), 0);
	assert_int_equal(write(w->held[1], "x", 1), 1);
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
	for (int i = 0; i < 2; i++) {
		close(w->go[i]);
		close(w->held[i]);
	}
}

/* Where the real uid is root already (sshd, the admin command) only the stop
 * signals are blocked, and the shield comes down with the lock. */
static void test_shield_of_root_blocks_only_stop_signals(void **state)
{
	struct world *w = *state;

	assert_int_equal(getuid(), 0);
	assert_false(stop_signals_blocked());
	assert_int_equal(tsms_lock_exclusive(w->waiter, 1000), 0);
	assert_int_equal(getuid(), 0);
	assert_true(stop_signals_blocked());
	tsms_lock_release(&w->waiter);
	assert_false(stop_signals_blocked());
	tsms_lock_release(&w->waiter); /* -1: nothing */
	assert_false(stop_signals_blocked());
}

/* Signals during the wait (the host program's, e.g. SIGCHLD or a timer) neither
 * end it early nor make it fail. */
static void handler(int sig)
{
	(void)sig;
}

static void test_signals_during_the_wait(void **state)
{
	struct world *w = *state;
	struct sigaction sa = { .sa_handler = handler }, old;
	struct itimerval every = { { 0, 3000 }, { 0, 3000 } }, off = { 0 };
	long long start, took;

	assert_int_equal(sigaction(SIGALRM, &sa, &old), 0);
	assert_int_equal(flock(w->holder, LOCK_EX), 0);
	assert_int_equal(setitimer(ITIMER_REAL, &every, NULL), 0);
	start = now_ms();
	errno = 0;
	assert_int_equal(tsms_lock_exclusive(w->waiter, 300), -1);
	took = now_ms() - start;
	assert_int_equal(setitimer(ITIMER_REAL, &off, NULL), 0);
	assert_int_equal(sigaction(SIGALRM, &old, NULL), 0);
	assert_int_equal(errno, EWOULDBLOCK);
	assert_true(took >= 300);
}

/* A lock that cannot be taken names its holder, and says how to free it when the
 * holder is stopped; a free lock or a bad descriptor names no one. */
static void test_holder_named(void **state)
{
	struct world *w = *state;
	char holder[TSMS_LOCK_HOLDER_MAX], want[TSMS_LOCK_HOLDER_MAX];
	int status;
	pid_t pid;

	tsms_lock_holder(w->waiter, holder);
	assert_string_equal(holder, "");
	tsms_lock_holder(-1, holder);
	assert_string_equal(holder, "");
	pid = child_holding(w, 0);
	assert_int_equal(tsms_lock_exclusive(w->waiter, 50), -1);
	tsms_lock_holder(w->waiter, holder);
	snprintf(want, sizeof(want), " by process %ld (test_lock)", (long)pid);
	assert_string_equal(holder, want);
	assert_int_equal(kill(pid, SIGSTOP), 0);
	assert_int_equal(waitpid(pid, &status, WUNTRACED), pid);
	tsms_lock_holder(w->waiter, holder);
	snprintf(want, sizeof(want),
	         " by process %ld (test_lock, stopped; fix: kill -CONT %ld, or kill %ld)",
	         (long)pid, (long)pid, (long)pid);
	assert_string_equal(holder, want);
	assert_int_equal(kill(pid, SIGKILL), 0);
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_int_equal(tsms_lock_exclusive(w->waiter, 1000), 0); /* gone with its holder */
	tsms_lock_release(&w->waiter);
}

static void test_bad_descriptor_fails_at_once(void **state)
{
	long long start = now_ms();

	(void)state;
	errno = 0;
	assert_int_equal(tsms_lock_exclusive(-1, 5000), -1);
	assert_int_equal(errno, EBADF);
	assert_true(now_ms() - start < 1000);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_free_lock_is_taken_at_once, setup, teardown),
		cmocka_unit_test_setup_teardown(test_held_lock_gives_up_after_the_wait, setup,
		                                teardown),
		cmocka_unit_test_setup_teardown(test_lock_released_during_the_wait_is_taken, setup,
		                                teardown),
		cmocka_unit_test_setup_teardown(test_signals_during_the_wait, setup, teardown),
		cmocka_unit_test_setup_teardown(test_held_lock_is_shielded_from_the_caller, setup,
		                                teardown),
		cmocka_unit_test_setup_teardown(test_shield_of_root_blocks_only_stop_signals, setup,
		                                teardown),
		cmocka_unit_test_setup_teardown(test_holder_named, setup, teardown),
		cmocka_unit_test(test_bad_descriptor_fails_at_once),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
