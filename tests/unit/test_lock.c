/* test_lock.c - unit tests of lib/lock: the exclusive flock bounded in time */
#include "unit.h"

#include <sched.h>
#include <signal.h>
#include <stdbool.h>
#include <sys/file.h>
#include <sys/resource.h>
#include <sys/stat.h>
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

/* True when the process runs as the caller below made it: SCHED_IDLE, nice 19. */
static bool slowed_down(void)
{
	errno = 0;
	return sched_getscheduler(0) == SCHED_IDLE && getpriority(PRIO_PROCESS, 0) == 19;
}

static bool ordinary(void)
{
	errno = 0;
	return sched_getscheduler(0) == SCHED_OTHER && getpriority(PRIO_PROCESS, 0) == 0;
}

/* As in setuid su run by an unprivileged user who slowed it down as much as it
 * can (SCHED_IDLE, nice 19): real uid NOBODY, effective and saved uid root.
 * While the lock is held the user's kill() fails with EPERM, the terminal's
 * stop signals are blocked and the process runs as an ordinary one; before and
 * after, all is as it was. A lock that cannot be taken leaves nothing raised. */
static void shielded_child(const struct world *w)
{
	int fd = open(w->path, O_RDWR | O_CLOEXEC), busy;
	struct sched_param zero = { 0 };

	CHILD_CHECK(sched_setscheduler(0, SCHED_IDLE, &zero) == 0 &&
	            setpriority(PRIO_PROCESS, 0, 19) == 0);
	CHILD_CHECK(fd >= 0 && setresuid(NOBODY, 0, 0) == 0);
	CHILD_CHECK(kill_as_nobody(getpid(), 0) == 0);
	CHILD_CHECK(!stop_signals_blocked());
	CHILD_CHECK(slowed_down());
	CHILD_CHECK(tsms_lock_exclusive(fd, 1000) == 0);
	CHILD_CHECK(getuid() == 0 && geteuid() == 0);
	CHILD_CHECK(ordinary());
	CHILD_CHECK(kill_as_nobody(getpid(), SIGSTOP) == EPERM);
	CHILD_CHECK(kill_as_nobody(getpid(), SIGKILL) == EPERM);
	CHILD_CHECK(stop_signals_blocked());
	/* nested: only the outermost lower ends it */
	CHILD_CHECK(tsms_shield_raise() == 0);
	tsms_shield_lower();
	CHILD_CHECK(getuid() == 0 && stop_signals_blocked());
	tsms_lock_release(&fd);
	CHILD_CHECK(fd == -1 && getuid() == NOBODY && geteuid() == 0);
	CHILD_CHECK(slowed_down());
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

/* The name the kernel gives pid (test_lock, or valgrind's under valgrind). */
static void comm_of(pid_t pid, char comm[32])
{
	char path[64];
	int fd;
	ssize_t n;

	snprintf(path, sizeof(path), "/proc/%ld/comm", (long)pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	n = fd >= 0 ? read(fd, comm, 31) : -1;
	if (fd >= 0)
		close(fd);
	comm[n > 0 ? n : 0] = '\0';
	comm[strcspn(comm, "\n")] = '\0';
}

/* A lock that cannot be taken names its holder, and says how to free it when the
 * holder is stopped; a free lock or a bad descriptor names no one. */
static void test_holder_named(void **state)
{
	struct world *w = *state;
	char holder[2][TSMS_LOCK_HOLDER_MAX], want[2][TSMS_LOCK_HOLDER_MAX], comm[32];
	int status;
	pid_t pid;

	tsms_lock_holder(w->waiter, holder[0]);
	assert_string_equal(holder[0], "");
	tsms_lock_holder(-1, holder[0]);
	assert_string_equal(holder[0], "");
	pid = child_holding(w, 0);
	comm_of(pid, comm);
	assert_int_equal(tsms_lock_exclusive(w->waiter, 50), -1);
	tsms_lock_holder(w->waiter, holder[0]);
	snprintf(want[0], sizeof(want[0]), " by process %ld (%.16s)", (long)pid, comm);
	assert_int_equal(kill(pid, SIGSTOP), 0);
	assert_int_equal(waitpid(pid, &status, WUNTRACED), pid);
	tsms_lock_holder(w->waiter, holder[1]);
	snprintf(want[1], sizeof(want[1]),
	         " by process %ld (%.16s, stopped; fix: kill -CONT %ld, or kill %ld)", (long)pid,
	         comm, (long)pid, (long)pid);
	assert_int_equal(kill(pid, SIGKILL), 0); /* before an assertion can end the case */
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_string_equal(holder[0], want[0]);
	assert_string_equal(holder[1], want[1]);
	assert_int_equal(tsms_lock_exclusive(w->waiter, 1000), 0); /* gone with its holder */
	tsms_lock_release(&w->waiter);
}

/* Writes text to path; true when it went. */
static bool put(const char *path, const char *text)
{
	int fd = open(path, O_WRONLY | O_CLOEXEC);
	bool ok = fd >= 0 && write(fd, text, strlen(text)) == (ssize_t)strlen(text);

	if (fd >= 0)
		close(fd);
	return ok;
}

/* A holder frozen with its cgroup (cgroup v2's cgroup.freeze, which a user can
 * write in a cgroup of its own): its state is not 'T', so the cgroup is named,
 * with how to thaw it. */
static void test_holder_frozen_with_its_cgroup(void **state)
{
	struct world *w = *state;
	const char *root = access("/sys/fs/cgroup/cgroup.controllers", F_OK) == 0
	                           ? "/sys/fs/cgroup"
	                           : "/sys/fs/cgroup/unified";
	char cg[128], file[192], holder[TSMS_LOCK_HOLDER_MAX] = "", want[TSMS_LOCK_HOLDER_MAX];
	char events[512] = "", pid_s[24], comm[32];
	int status;
	pid_t pid = child_holding(w, 0);
	bool made, moved = false, frozen = false;

	comm_of(pid, comm);
	snprintf(cg, sizeof(cg), "%s/tsms-test-lock-%ld", root, (long)getpid());
	made = mkdir(cg, 0755) == 0;
	snprintf(file, sizeof(file), "%s/cgroup.procs", cg);
	snprintf(pid_s, sizeof(pid_s), "%ld", (long)pid);
	moved = made && put(file, pid_s);
	snprintf(file, sizeof(file), "%s/cgroup.freeze", cg);
	snprintf(events, sizeof(events), "%s/cgroup.events", cg);
	if (moved && put(file, "1"))
		for (int i = 0; i < 500 && !frozen; i++) { /* freezing is asynchronous */
			char text[512];
			int fd = open(events, O_RDONLY | O_CLOEXEC);
			ssize_t n = fd >= 0 ? read(fd, text, sizeof(text) - 1) : -1;

			if (fd >= 0)
				close(fd);
			text[n > 0 ? n : 0] = '\0';
			frozen = strstr(text, "frozen 1") != NULL;
			if (!frozen)
				usleep(10 * 1000);
		}
	if (frozen)
		tsms_lock_holder(w->waiter, holder);
	/* whatever happened: the child ends (a frozen task dies all the same) */
	assert_int_equal(kill(pid, SIGKILL), 0);
	assert_int_equal(waitpid(pid, &status, 0), pid);
	if (made)
		assert_int_equal(rmdir(cg), 0);
	assert_true(made && moved && frozen);
	snprintf(want, sizeof(want),
	         " by process %ld (%.16s, frozen with its cgroup; fix: echo 0 > "
	         "%s/cgroup.freeze, or kill %ld)",
	         (long)pid, comm, cg, (long)pid);
	assert_string_equal(holder, want);
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
		cmocka_unit_test_setup_teardown(test_holder_frozen_with_its_cgroup, setup,
		                                teardown),
		cmocka_unit_test(test_bad_descriptor_fails_at_once),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
