/* test_users.c - unit tests of lib/users: the users file lookup across read
 * blocks, over-long lines, line numbers in errors, exact names; the number rule,
 * and what a bad entry or a missing or unusable file refuses */
#include "unit.h"

#include "lookup.h"
#include "users.h"

struct dir {
	char path[64];
	char file[96];
};

static int setup(void **state)
{
	struct dir *d = calloc(1, sizeof(*d));

	assert_non_null(d);
	snprintf(d->path, sizeof(d->path), "/tmp/tsms-users-XXXXXX");
	assert_non_null(mkdtemp(d->path));
	snprintf(d->file, sizeof(d->file), "%s/users", d->path);
	*state = d;
	return 0;
}

static int teardown(void **state)
{
	struct dir *d = *state;

	unlink(d->file);
	rmdir(d->path);
	free(d);
	return 0;
}

/* Writes text (len bytes) as a root-owned 0600 users file. */
static void write_file(const struct dir *d, const char *text, size_t len)
{
	int fd = open(d->file, O_WRONLY | O_CREAT | O_TRUNC, 0600);

	assert_true(fd >= 0);
	assert_int_equal(write(fd, text, len), (ssize_t)len);
	assert_int_equal(fchmod(fd, 0600), 0);
	close(fd);
}

static void expect_phone(const struct dir *d, const char *user, const char *want)
{
	char phone[TSMS_PHONE_MAX], err[TSMS_CONFIG_ERR_MAX];

	assert_int_equal(tsms_users_file_lookup(d->file, user, phone, err), TSMS_OK);
	assert_string_equal(phone, want);
}

static void expect_error(const struct dir *d, const char *user, const char *needle)
{
	char phone[TSMS_PHONE_MAX], err[TSMS_CONFIG_ERR_MAX];

	assert_int_equal(tsms_users_file_lookup(d->file, user, phone, err), TSMS_ERR_CONFIG);
	assert_string_equal(phone, "");
	assert_contains(err, needle);
}

/* A file of n lines "u<i> +1555<i>", with extras, far larger than one read block. */
static char *big_file(unsigned n, size_t *len)
{
	size_t cap = (size_t)n * 32 + 64, used = 0;
	char *text = malloc(cap);

	assert_non_null(text);
	for (unsigned i = 0; i < n; i++)
		used += (size_t)snprintf(text + used, cap - used, "%su%u +1555%07u\n",
		                         i % 1000 == 7 ? "  \t" : "", i, i);
	*len = used;
	return text;
}

static void test_lookup_across_blocks(void **state)
{
	const struct dir *d = *state;
	size_t len;
	char *text = big_file(50000, &len);

	write_file(d, text, len);
	expect_phone(d, "u0", "+15550000000");
	expect_phone(d, "u7", "+15550000007"); /* leading blanks */
	expect_phone(d, "u12345", "+15550012345");
	expect_phone(d, "u49999", "+15550049999");
	expect_phone(d, "u5000", "+15550005000");
	expect_phone(d, "u", "");      /* a prefix of every name is no name */
	expect_phone(d, "u50000", ""); /* absent */
	expect_phone(d, "1555", "");   /* inside the numbers */
	free(text);
}

static void test_last_line_without_newline(void **state)
{
	const struct dir *d = *state;
	static const char text[] = "a +15550000001\nlast +15550000002";

	write_file(d, text, sizeof(text) - 1);
	expect_phone(d, "last", "+15550000002");
}

static void test_exact_names(void **state)
{
	const struct dir *d = *state;
	static const char text[] = "alice2 +15550000001\nxalice +15550000002\n#alice +15550000003\n"
				   "alice\t+15550000004\n";

	write_file(d, text, sizeof(text) - 1);
	expect_phone(d, "alice", "+15550000004");
	expect_phone(d, "alice ", "");
	expect_phone(d, "#alice", "");
}

static void test_line_numbers_in_errors(void **state)
{
	const struct dir *d = *state;
	size_t len;
	char *text = big_file(30000, &len);
	char *more = malloc(len + 128);

	/* a duplicate and a malformed line, both far past the first read block */
	memcpy(more, text, len);
	len += (size_t)sprintf(more + len, "u17 +15559999999\nbad 123\n");
	write_file(d, more, len);
	expect_error(d, "u17", "lines 18 and 30001");
	expect_error(d, "bad", ":30002:");
	free(text);
	free(more);
}

static void test_over_long_lines(void **state)
{
	const struct dir *d = *state;
	size_t n = 40000, len = 0;
	char *text = malloc(3 * n + 200);

	/* an over-long line of another user, then an over-long line of the user looked up */
	len += (size_t)sprintf(text + len, "a +15550000001\n");
	memset(text + len, 'x', n);
	len += n;
	len += (size_t)sprintf(text + len, " +15550000002\nb ");
	memset(text + len, '5', n);
	len += n;
	len += (size_t)sprintf(text + len, "\nc +15550000003\n");
	write_file(d, text, len);
	expect_phone(d, "a", "+15550000001");
	expect_phone(d, "c", "+15550000003");
	expect_error(d, "b", ":3:");
	free(text);
}

/* The one rule of lib/phone.h, in the file: '+' required, separators allowed. */
static void test_number_rule(void **state)
{
	const struct dir *d = *state;
	static const char text[] = "alice 2025550143\nbob +1 (202) 555-0188\n"
				   "carol +15550000003 mobile\nderek +20 2555 0143\n";

	write_file(d, text, sizeof(text) - 1);
	expect_error(d, "alice",
	             ":1: user \"alice\": the number has no leading +; fix: write the "
	             "line as \"alice +<country code><number>\", e.g. \"alice "
	             "+12025550143\"");
	expect_phone(d, "bob", "+12025550188");
	expect_error(d, "carol", "the number has a letter");
	/* written with its '+', the same digits are Egypt's: the admin said so */
	expect_phone(d, "derek", "+2025550143");
}

/* A config whose users object is users (JSON members) and whose usersFile is d's. */
static struct tsms_config *config_for(const struct dir *d, const char *users)
{
	char json[1024], err[TSMS_CONFIG_ERR_MAX];
	struct tsms_config *cfg;

	snprintf(json, sizeof(json),
	         "{\"accountSID\":\"AC0123456789abcdef0123456789abcdef\","
	         "\"authToken\":\"0f1e2d3c4b5a69788796a5b4c3d2e1f0\","
	         "\"fromMessagingServiceSID\":\"MGfedcba9876543210fedcba9876543210\","
	         "\"templates\":[{\"usageType\":\"SignIn\",\"content\":\"code {{code}}\"}],"
	         "\"users\":{%s},\"usersFile\":\"%s\"}",
	         users, d->file);
	cfg = tsms_config_parse(json, strlen(json), err);
	if (cfg == NULL) {
		print_error("refused: %s\n", err);
		fail();
	}
	return cfg;
}

static void expect_found(const struct tsms_config *cfg, const char *user, enum tsms_source source,
                         const char *phone)
{
	char err[TSMS_CONFIG_ERR_MAX];
	struct tsms_number num;

	if (tsms_users_find(cfg, user, &num, err) != TSMS_OK) {
		print_error("%s refused: %s\n", user, err);
		fail();
	}
	assert_int_equal(num.source, source);
	assert_string_equal(num.phone, phone);
}

static void expect_refused(const struct tsms_config *cfg, const char *user, const char *needle)
{
	char err[TSMS_CONFIG_ERR_MAX];
	struct tsms_number num;

	assert_int_equal(tsms_users_find(cfg, user, &num, err), TSMS_ERR_CONFIG);
	assert_int_equal(num.source, TSMS_SOURCE_NONE);
	assert_string_equal(num.phone, "");
	assert_contains(err, needle);
}

/* A bad entry of the users object refuses its user, and only its user. */
static void test_bad_inline_entry_refuses_its_user(void **state)
{
	const struct dir *d = *state;
	static const char text[] = "carol +15550000003\n";
	struct tsms_config *cfg;

	write_file(d, text, sizeof(text) - 1);
	cfg = config_for(d, "\"alice\":\"+15550000001\",\"mallory\":\"2025550143\"");
	expect_refused(cfg, "mallory",
	               "users: user \"mallory\": the number has no leading +; fix: write it as "
	               "+<country code><number>, e.g. +12025550143");
	expect_found(cfg, "alice", TSMS_SOURCE_USERS, "+15550000001");
	expect_found(cfg, "carol", TSMS_SOURCE_USERS_FILE, "+15550000003");
	expect_found(cfg, "eve", TSMS_SOURCE_NONE, "");
	tsms_config_free(cfg);
}

/* tsms_lookup_account(account, typed) into num; returns the result, err in err. */
static enum tsms_err account_lookup(const struct tsms_config *cfg, const char *account,
                                    const char *typed, struct tsms_number *num,
                                    char err[TSMS_CONFIG_ERR_MAX])
{
	memset(num, 'X', sizeof(*num));
	return tsms_lookup_account(cfg, account, typed, num, err);
}

/* The account's name is asked first; the typed spelling only when it has no number (or the
 * directory refuses it), and then typed's answer counts, except that typed unmapped leaves
 * the account's: against asking for typed alone, never a skip where there was a number. */
static void test_account_then_typed(void **state)
{
	const struct dir *d = *state;
	static const char text[] = "short +15550000003\n";
	char err[TSMS_CONFIG_ERR_MAX];
	struct tsms_config *cfg;
	struct tsms_number num;

	write_file(d, text, sizeof(text) - 1);
	cfg = config_for(d, "\"alice\":\"+15550000001\",\"CORP\\\\alice\":\"+15550000002\","
	                    "\"bad\":\"2025550143\"");
	/* the account's entry wins over another entry of the typed spelling */
	assert_int_equal(account_lookup(cfg, "alice", "CORP\\alice", &num, err), TSMS_OK);
	assert_string_equal(num.phone, "+15550000001");
	assert_int_equal(account_lookup(cfg, "alice", "ALICE", &num, err), TSMS_OK);
	assert_string_equal(num.phone, "+15550000001");
	/* SSSD's fully qualified name has no entry; the short name typed has one */
	assert_int_equal(account_lookup(cfg, "short@corp.example.com", "short", &num, err),
	                 TSMS_OK);
	assert_int_equal(num.source, TSMS_SOURCE_USERS_FILE);
	assert_string_equal(num.phone, "+15550000003");
	/* neither has one */
	assert_int_equal(account_lookup(cfg, "eve", "EVE", &num, err), TSMS_OK);
	assert_int_equal(num.source, TSMS_SOURCE_NONE);
	assert_string_equal(num.phone, "");
	/* the account's malformed entry refuses it: another spelling does not get past it */
	assert_int_equal(account_lookup(cfg, "bad", "alice", &num, err), TSMS_ERR_CONFIG);
	assert_contains(err, "user \"bad\"");
	assert_int_equal(num.source, TSMS_SOURCE_NONE);
	/* typed NULL or the same: the account alone */
	assert_int_equal(account_lookup(cfg, "short@corp.example.com", NULL, &num, err), TSMS_OK);
	assert_int_equal(num.source, TSMS_SOURCE_NONE);
	assert_int_equal(account_lookup(cfg, "short", "short", &num, err), TSMS_OK);
	assert_string_equal(num.phone, "+15550000003");
	tsms_config_free(cfg);
}

/* SSSD's short name under a filter with %d: the directory refuses the account's name
 * before any search, and the entry of the spelling typed is still found. */
static void test_account_refused_by_directory(void **state)
{
	const struct dir *d = *state;
	static const char text[] = "CORP\\bob +15550000004\n";
	char json[1024], err[TSMS_CONFIG_ERR_MAX];
	struct tsms_config *cfg;
	struct tsms_number num;

	write_file(d, text, sizeof(text) - 1);
	snprintf(json, sizeof(json),
	         "{\"accountSID\":\"AC0123456789abcdef0123456789abcdef\","
	         "\"authToken\":\"0f1e2d3c4b5a69788796a5b4c3d2e1f0\","
	         "\"fromMessagingServiceSID\":\"MGfedcba9876543210fedcba9876543210\","
	         "\"templates\":[{\"usageType\":\"SignIn\",\"content\":\"code {{code}}\"}],"
	         "\"usersFile\":\"%s\",\"ldap\":{\"uri\":\"ldaps://127.0.0.1:1\","
	         "\"baseDN\":\"dc=corp\",\"filter\":\"(&(uid=%%s)(dc=%%d))\","
	         "\"domains\":[\"CORP\"],\"attribute\":\"mobile\"}}",
	         d->file);
	cfg = tsms_config_parse(json, strlen(json), err);
	if (cfg == NULL)
		fail_msg("refused: %s", err);
	assert_int_equal(account_lookup(cfg, "bob", "CORP\\bob", &num, err), TSMS_OK);
	assert_int_equal(num.source, TSMS_SOURCE_USERS_FILE);
	assert_string_equal(num.phone, "+15550000004");
	/* a spelling that the directory refuses too: refused, as it was alone */
	assert_int_equal(account_lookup(cfg, "bob", "BOB", &num, err), TSMS_ERR_DIRECTORY);
	assert_contains(err, "user \"BOB\" has no domain");
	tsms_config_free(cfg);
}

/* A usersFile that does not exist: the users of the config log in; anyone else is
 * refused (never an unmapped user, whom nullok would pass). */
static void test_missing_file(void **state)
{
	const struct dir *d = *state;
	struct tsms_config *cfg;
	char want[512];

	unlink(d->file);
	cfg = config_for(d, "\"alice\":\"+15550000001\"");
	expect_found(cfg, "alice", TSMS_SOURCE_USERS, "+15550000001");
	snprintf(want, sizeof(want),
	         "usersFile %s does not exist; fix: create it empty (install -m 600 /dev/null "
	         "%s), run twilio-sms-otp enroll, or remove the key",
	         d->file, d->file);
	expect_refused(cfg, "carol", want);
	tsms_config_free(cfg);
}

/* A usersFile that exists but cannot be used (here: others may read it) refuses
 * everyone it could name; the config's users log in (the file could only have
 * refused them, as a second entry). */
static void test_unusable_file(void **state)
{
	const struct dir *d = *state;
	static const char text[] = "carol +15550000003\nalice +15550000009\n";
	struct tsms_config *cfg;

	if (geteuid() != 0)
		skip();
	write_file(d, text, sizeof(text) - 1);
	cfg = config_for(d, "\"alice\":\"+15550000001\"");
	expect_refused(cfg, "alice", "is both in users and in usersFile");
	assert_int_equal(chmod(d->file, 0644), 0);
	expect_refused(cfg, "carol", d->file);
	expect_refused(cfg, "eve", d->file);
	expect_found(cfg, "alice", TSMS_SOURCE_USERS, "+15550000001");
	tsms_config_free(cfg);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_lookup_across_blocks, setup, teardown),
		cmocka_unit_test_setup_teardown(test_last_line_without_newline, setup, teardown),
		cmocka_unit_test_setup_teardown(test_exact_names, setup, teardown),
		cmocka_unit_test_setup_teardown(test_line_numbers_in_errors, setup, teardown),
		cmocka_unit_test_setup_teardown(test_over_long_lines, setup, teardown),
		cmocka_unit_test_setup_teardown(test_number_rule, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bad_inline_entry_refuses_its_user, setup,
		                                teardown),
		cmocka_unit_test_setup_teardown(test_account_then_typed, setup, teardown),
		cmocka_unit_test_setup_teardown(test_account_refused_by_directory, setup, teardown),
		cmocka_unit_test_setup_teardown(test_missing_file, setup, teardown),
		cmocka_unit_test_setup_teardown(test_unusable_file, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
