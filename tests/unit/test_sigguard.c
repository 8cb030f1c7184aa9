/* test_sigguard.c - unit tests of lib/sigguard: signals the module's own calls raise */
#include "unit.h"

#include <signal.h>

#include "sigguard.h"

static bool pending(int sig)
{
	sigset_t set;

	assert_int_equal(sigpending(&set), 0);
	return sigismember(&set, sig) == 1;
}

static bool blocked(int sig)
{
	sigset_t set;

	assert_int_equal(pthread_sigmask(SIG_SETMASK, NULL, &set), 0);
	return sigismember(&set, sig) == 1;
}

/* A signal raised inside the guard neither kills the process (both kill by
 * default) nor stays pending for the host program; the mask is as before. */
static void test_raised_inside_is_consumed(void **state)
{
	const int sigs[] = { SIGPIPE, SIGXFSZ };

	(void)state;
	for (size_t i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++) {
		struct tsms_sigguard g;

		assert_false(blocked(sigs[i]));
		tsms_sigguard_block(&g, sigs[i]);
		assert_true(blocked(sigs[i]));
		assert_int_equal(raise(sigs[i]), 0);
		assert_true(pending(sigs[i]));
		errno = EFBIG;
		tsms_sigguard_restore(&g);
		assert_int_equal(errno, EFBIG); /* kept for the caller's message */
		assert_false(pending(sigs[i]));
		assert_false(blocked(sigs[i]));
	}
}

/* One the host program had pending (blocked) before is its own: left pending,
 * and the host's mask stays. */
static void test_pending_before_is_left_for_the_host(void **state)
{
	struct tsms_sigguard g;
	sigset_t set, old;

	(void)state;
	sigemptyset(&set);
	sigaddset(&set, SIGXFSZ);
	assert_int_equal(pthread_sigmask(SIG_BLOCK, &set, &old), 0);
	assert_int_equal(raise(SIGXFSZ), 0);
	tsms_sigguard_block(&g, SIGXFSZ);
	assert_int_equal(raise(SIGXFSZ), 0); /* merged with the host's: still one */
	tsms_sigguard_restore(&g);
	assert_true(pending(SIGXFSZ));
	assert_true(blocked(SIGXFSZ));
	/* the host takes it, and gets its mask back */
	assert_int_equal(sigwaitinfo(&set, NULL), SIGXFSZ);
	assert_int_equal(pthread_sigmask(SIG_SETMASK, &old, NULL), 0);
	assert_false(pending(SIGXFSZ));
}

/* Nothing raised: nothing consumed, nothing changed. */
static void test_nothing_raised(void **state)
{
	struct tsms_sigguard g;

	(void)state;
	tsms_sigguard_block(&g, SIGPIPE);
	tsms_sigguard_restore(&g);
	assert_false(pending(SIGPIPE));
	assert_false(blocked(SIGPIPE));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_raised_inside_is_consumed),
		cmocka_unit_test(test_pending_before_is_left_for_the_host),
		cmocka_unit_test(test_nothing_raised),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
