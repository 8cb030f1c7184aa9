/* test_account.c - unit tests of lib/account: the account's name from NSS
 *
 * getpwnam_r is this program's own (it takes the place of glibc's for the
 * library linked in), so that each case chooses what NSS answers: an alias, no
 * entry, an error, a buffer too small, an unusable name. The "real" mode hands
 * the call to glibc's. */
#include "unit.h"

#include <dlfcn.h>
#include <pwd.h>

#include "account.h"

enum mode { REAL, ALIAS, NOT_FOUND, FAILS, NEEDS_ROOM, ALWAYS_ERANGE, NAME_IS };

static struct {
	enum mode mode;
	const char *name; /* the pw_name ALIAS and NAME_IS answer */
	size_t room;      /* the buffer NEEDS_ROOM wants */
	unsigned calls;   /* calls seen */
	size_t largest;   /* the largest buffer offered */
	char typed[64];   /* the name last asked for */
} nss;

typedef int (*getpwnam_r_fn)(const char *, struct passwd *, char *, size_t, struct passwd **);

int getpwnam_r(const char *name, struct passwd *pw, char *buf, size_t buflen,
               struct passwd **result)
{
	getpwnam_r_fn real;

	nss.calls++;
	if (buflen > nss.largest)
		nss.largest = buflen;
	snprintf(nss.typed, sizeof(nss.typed), "%s", name);
	*result = NULL;
	switch (nss.mode) {
	case REAL:
		real = (getpwnam_r_fn)dlsym(RTLD_NEXT, "getpwnam_r");
		assert_non_null(real);
		return real(name, pw, buf, buflen, result);
	case NOT_FOUND:
		return 0;
	case FAILS:
		return EIO;
	case ALWAYS_ERANGE:
		return ERANGE;
	case NEEDS_ROOM:
		if (buflen < nss.room)
			return ERANGE;
		break;
	case ALIAS:
	case NAME_IS:
		break;
	}
	memset(pw, 0, sizeof(*pw));
	assert_true(strlen(nss.name) < buflen);
	strcpy(buf, nss.name);
	pw->pw_name = buf;
	*result = pw;
	return 0;
}

static int reset(void **state)
{
	(void)state;
	memset(&nss, 0, sizeof(nss));
	nss.name = "alice";
	return 0;
}

/* tsms_account_name(typed) into a buffer pre-filled with junk. */
static const char *account(const char *typed, char buf[TSMS_ACCOUNT_NAME_MAX])
{
	memset(buf, 'X', TSMS_ACCOUNT_NAME_MAX);
	return tsms_account_name(typed, buf);
}

static void test_alias_gives_the_accounts_name(void **state)
{
	char buf[TSMS_ACCOUNT_NAME_MAX];
	const char *name;

	(void)state;
	nss.mode = ALIAS;
	name = account("CORP\\alice", buf);
	assert_ptr_equal(name, buf);
	assert_string_equal(name, "alice");
	assert_string_equal(nss.typed, "CORP\\alice");
	assert_int_equal(nss.calls, 1);
}

static void test_unknown_name_stays_as_typed(void **state)
{
	char buf[TSMS_ACCOUNT_NAME_MAX];

	(void)state;
	nss.mode = NOT_FOUND;
	assert_string_equal(account("ALICE", buf), "ALICE");
}

static void test_lookup_error_stays_as_typed(void **state)
{
	char buf[TSMS_ACCOUNT_NAME_MAX];

	(void)state;
	nss.mode = FAILS;
	assert_string_equal(account("ALICE", buf), "ALICE");
}

static void test_small_buffer_retried(void **state)
{
	char buf[TSMS_ACCOUNT_NAME_MAX];

	(void)state;
	nss.mode = NEEDS_ROOM;
	nss.room = 100000;
	assert_string_equal(account("ALICE", buf), "alice");
	assert_true(nss.calls > 1);
}

static void test_endless_erange_is_bounded(void **state)
{
	char buf[TSMS_ACCOUNT_NAME_MAX];

	(void)state;
	nss.mode = ALWAYS_ERANGE;
	assert_string_equal(account("ALICE", buf), "ALICE");
	assert_true(nss.calls <= 16);
	assert_true(nss.largest <= 1024 * 1024);
}

/* A name no users entry could hold is not taken: the typed one is used, as before. */
static void test_unusable_names_refused(void **state)
{
	static const char *const bad[] = { "", "al ice", "al\nice", "#alice" };
	char buf[TSMS_ACCOUNT_NAME_MAX], longest[TSMS_ACCOUNT_NAME_MAX + 1];

	(void)state;
	nss.mode = NAME_IS;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		nss.name = bad[i];
		assert_string_equal(account("ALICE", buf), "ALICE");
	}
	memset(longest, 'a', sizeof(longest) - 1);
	longest[sizeof(longest) - 1] = '\0';
	nss.name = longest; /* 257 bytes: one too many */
	assert_string_equal(account("ALICE", buf), "ALICE");
	longest[sizeof(longest) - 2] = '\0'; /* 256: the longest kept */
	assert_string_equal(account("ALICE", buf), longest);
}

static void test_empty_or_null_typed(void **state)
{
	char buf[TSMS_ACCOUNT_NAME_MAX];

	(void)state;
	nss.mode = ALIAS;
	assert_null(account(NULL, buf));
	assert_string_equal(account("", buf), "");
	assert_int_equal(nss.calls, 0);
}

static void test_real_nss(void **state)
{
	char buf[TSMS_ACCOUNT_NAME_MAX];

	(void)state;
	nss.mode = REAL;
	assert_string_equal(account("root", buf), "root");
	assert_string_equal(account("no-such-user-tsms", buf), "no-such-user-tsms");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup(test_alias_gives_the_accounts_name, reset),
		cmocka_unit_test_setup(test_unknown_name_stays_as_typed, reset),
		cmocka_unit_test_setup(test_lookup_error_stays_as_typed, reset),
		cmocka_unit_test_setup(test_small_buffer_retried, reset),
		cmocka_unit_test_setup(test_endless_erange_is_bounded, reset),
		cmocka_unit_test_setup(test_unusable_names_refused, reset),
		cmocka_unit_test_setup(test_empty_or_null_typed, reset),
		cmocka_unit_test_setup(test_real_nss, reset),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
