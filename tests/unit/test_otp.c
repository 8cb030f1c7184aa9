/* test_otp.c - unit tests of lib/otp: code generation, comparison, wiping */
#include "unit.h"

#include "otp.h"

static int setup(void **state)
{
	(void)state;
	/* twice: the contract says any number of times */
	if (tsms_crypto_init() != 0)
		return -1;
	return tsms_crypto_init();
}

static void set_code(struct tsms_code *code, const char *digits)
{
	memset(code, 0, sizeof(*code));
	assert_true(strlen(digits) <= TSMS_CODE_MAX);
	memcpy(code->digits, digits, strlen(digits));
	code->len = strlen(digits);
}

static void assert_all_digits(const struct tsms_code *code, size_t len)
{
	assert_int_equal(code->len, len);
	assert_int_equal(strlen(code->digits), len);
	for (size_t i = 0; i < len; i++) {
		if (code->digits[i] < '0' || code->digits[i] > '9') {
			print_error("non-digit 0x%02x at %zu\n", (unsigned char)code->digits[i], i);
			fail();
		}
	}
}

static void test_crypto_init_repeatable(void **state)
{
	(void)state;
	for (int i = 0; i < 5; i++)
		assert_int_equal(tsms_crypto_init(), 0);
}

static void test_generate_lengths(void **state)
{
	(void)state;
	assert_int_equal(TSMS_CODE_MIN, 4);
	assert_int_equal(TSMS_CODE_MAX, 10);
	for (size_t len = TSMS_CODE_MIN; len <= TSMS_CODE_MAX; len++) {
		for (int rep = 0; rep < 200; rep++) {
			struct tsms_code code;

			memset(&code, 'X', sizeof(code));
			assert_int_equal(tsms_otp_generate(&code, len), 0);
			assert_all_digits(&code, len);
			assert_int_equal(code.digits[len], '\0');
		}
	}
}

static void test_generate_refuses_bad_lengths(void **state)
{
	static const size_t bad[] = { 0, 1, 2, 3, 11, 12, 16, 100, (size_t)-1 };

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct tsms_code code;

		memset(&code, 0, sizeof(code));
		if (tsms_otp_generate(&code, bad[i]) != -1) {
			print_error("tsms_otp_generate(len=%zu) did not return -1\n", bad[i]);
			fail();
		}
	}
}

/* 20000 codes of length 4: every digit at every position, '0' first about
 * 10% of the time (bounds 30 standard deviations wide: they cannot flake). */
static void test_generate_distribution(void **state)
{
	enum { N = 20000, LEN = 4 };
	unsigned counts[LEN][10];
	static unsigned char seen[10000];
	unsigned distinct = 0;
	bool leading_zero_kept = false;

	(void)state;
	memset(counts, 0, sizeof(counts));
	memset(seen, 0, sizeof(seen));
	for (int i = 0; i < N; i++) {
		struct tsms_code code;
		unsigned value = 0;

		assert_int_equal(tsms_otp_generate(&code, LEN), 0);
		assert_all_digits(&code, LEN);
		for (int p = 0; p < LEN; p++) {
			counts[p][code.digits[p] - '0']++;
			value = value * 10 + (unsigned)(code.digits[p] - '0');
		}
		if (code.digits[0] == '0' && strlen(code.digits) == LEN)
			leading_zero_kept = true;
		if (!seen[value]) {
			seen[value] = 1;
			distinct++;
		}
	}
	for (int p = 0; p < LEN; p++) {
		for (int d = 0; d < 10; d++) {
			/* expected 2000, standard deviation about 42 */
			if (counts[p][d] < 1000 || counts[p][d] > 3000) {
				print_error(
					"digit %d at position %d appeared %u times in %d codes\n",
					d, p, counts[p][d], N);
				fail();
			}
		}
	}
	assert_in_range(counts[0][0], 1500, 2500);
	assert_true(leading_zero_kept);
	/* 20000 draws from 10000 values: about 8647 distinct */
	assert_in_range(distinct, 8000, 9300);
}

static void test_generate_leading_zero_kept_long(void **state)
{
	bool leading_zero = false;

	(void)state;
	for (int i = 0; i < 2000 && !leading_zero; i++) {
		struct tsms_code code;

		assert_int_equal(tsms_otp_generate(&code, 10), 0);
		assert_all_digits(&code, 10);
		if (code.digits[0] == '0')
			leading_zero = true;
	}
	/* chance of no leading zero in 2000 tries: 0.9^2000 */
	assert_true(leading_zero);
}

static void test_generate_codes_differ(void **state)
{
	struct tsms_code a, b;

	(void)state;
	assert_int_equal(tsms_otp_generate(&a, 10), 0);
	assert_int_equal(tsms_otp_generate(&b, 10), 0);
	assert_string_not_equal(a.digits, b.digits);
}

static void test_matches_exact(void **state)
{
	struct tsms_code code;

	(void)state;
	set_code(&code, "012345");
	assert_true(tsms_otp_matches(&code, "012345"));
	set_code(&code, "0000");
	assert_true(tsms_otp_matches(&code, "0000"));
	set_code(&code, "9876543210");
	assert_true(tsms_otp_matches(&code, "9876543210"));
}

static void test_matches_generated(void **state)
{
	struct tsms_code code;
	char copy[TSMS_CODE_MAX + 1];

	(void)state;
	for (size_t len = TSMS_CODE_MIN; len <= TSMS_CODE_MAX; len++) {
		assert_int_equal(tsms_otp_generate(&code, len), 0);
		memcpy(copy, code.digits, sizeof(copy));
		assert_true(tsms_otp_matches(&code, copy));
	}
}

static void test_matches_ignores_surrounding_whitespace(void **state)
{
	struct tsms_code code;
	char padded[2100];

	(void)state;
	set_code(&code, "012345");
	assert_true(tsms_otp_matches(&code, " 012345"));
	assert_true(tsms_otp_matches(&code, "012345 "));
	assert_true(tsms_otp_matches(&code, "012345\n"));
	assert_true(tsms_otp_matches(&code, "012345\r\n"));
	assert_true(tsms_otp_matches(&code, "\t 012345 \t\r\n"));
	assert_true(tsms_otp_matches(&code, "   012345   "));

	memset(padded, ' ', sizeof(padded));
	memcpy(padded + 1000, "012345", 6);
	padded[sizeof(padded) - 1] = '\0';
	assert_true(tsms_otp_matches(&code, padded));
}

static void test_matches_wrong_digit(void **state)
{
	struct tsms_code code;

	(void)state;
	set_code(&code, "012345");
	assert_false(tsms_otp_matches(&code, "112345")); /* first */
	assert_false(tsms_otp_matches(&code, "012346")); /* last */
	assert_false(tsms_otp_matches(&code, "013345")); /* middle */
	assert_false(tsms_otp_matches(&code, "543210"));
	assert_false(tsms_otp_matches(&code, " 112345 "));
	assert_false(tsms_otp_matches(&code, " 012346\n"));
}

static void test_matches_wrong_length(void **state)
{
	struct tsms_code code;

	(void)state;
	set_code(&code, "012345");
	assert_false(tsms_otp_matches(&code, "01234")); /* shorter: prefix */
	assert_false(tsms_otp_matches(&code, "12345")); /* shorter: suffix */
	assert_false(tsms_otp_matches(&code, "0"));
	assert_false(tsms_otp_matches(&code, "0123456")); /* longer */
	assert_false(tsms_otp_matches(&code, "0123450"));
	assert_false(tsms_otp_matches(&code, "0012345")); /* longer at the front */
	assert_false(tsms_otp_matches(&code, "012345012345"));
}

static void test_matches_leading_zero_needed(void **state)
{
	struct tsms_code code;

	(void)state;
	/* a numeric comparison would accept these */
	set_code(&code, "012345");
	assert_false(tsms_otp_matches(&code, "12345"));
	set_code(&code, "000042");
	assert_false(tsms_otp_matches(&code, "42"));
	assert_false(tsms_otp_matches(&code, "0042"));
	assert_true(tsms_otp_matches(&code, "000042"));
	set_code(&code, "0000");
	assert_false(tsms_otp_matches(&code, "0"));
	assert_false(tsms_otp_matches(&code, "000"));
	assert_false(tsms_otp_matches(&code, "00000"));
}

static void test_matches_empty_and_null(void **state)
{
	struct tsms_code code;

	(void)state;
	set_code(&code, "012345");
	assert_false(tsms_otp_matches(&code, NULL));
	assert_false(tsms_otp_matches(&code, ""));
	assert_false(tsms_otp_matches(&code, " "));
	assert_false(tsms_otp_matches(&code, "\n"));
}

static void test_matches_rejects_other_characters(void **state)
{
	struct tsms_code code;

	(void)state;
	set_code(&code, "012345");
	assert_false(tsms_otp_matches(&code, "012 345")); /* inner white space */
	assert_false(tsms_otp_matches(&code, "012345x"));
	assert_false(tsms_otp_matches(&code, "x012345"));
	assert_false(tsms_otp_matches(&code, "+012345"));
	assert_false(tsms_otp_matches(&code, "012345\x01"));
	assert_false(tsms_otp_matches(&code, "O12345")); /* letter O */
}

static void test_wipe_code(void **state)
{
	struct tsms_code code;
	char copy[TSMS_CODE_MAX + 1];

	(void)state;
	assert_int_equal(tsms_otp_generate(&code, 10), 0);
	memcpy(copy, code.digits, sizeof(copy));
	tsms_otp_wipe(&code);
	for (size_t i = 0; i < sizeof(code.digits); i++)
		assert_int_equal(code.digits[i], 0);
	assert_int_equal(code.len, 0);
	assert_false(tsms_otp_matches(&code, copy));
}

static void test_wipe_bytes(void **state)
{
	unsigned char buf[64];

	(void)state;
	memset(buf, 0xAA, sizeof(buf));
	tsms_wipe(buf + 8, 32);
	for (size_t i = 0; i < sizeof(buf); i++)
		assert_int_equal(buf[i], (i >= 8 && i < 40) ? 0 : 0xAA);

	memset(buf, 0xAA, sizeof(buf));
	tsms_wipe(buf, 0);
	for (size_t i = 0; i < sizeof(buf); i++)
		assert_int_equal(buf[i], 0xAA);
}

static void test_free_secret(void **state)
{
	char *s = strdup("012345");

	(void)state;
	assert_non_null(s);
	tsms_free_secret(s);
	tsms_free_secret(NULL);
	s = strdup("");
	assert_non_null(s);
	tsms_free_secret(s);
}

/* Digests text (and secret) into a guarded buffer; checks it is 32 lowercase hex digits. */
static void digest(const char *secret, const char *text, char out[TSMS_DIGEST_HEX])
{
	struct {
		char hex[TSMS_DIGEST_HEX];
		char canary[16];
	} g;

	memset(&g, 'Z', sizeof(g));
	tsms_digest_hex(secret, text, g.hex);
	for (size_t i = 0; i < sizeof(g.canary); i++)
		assert_int_equal(g.canary[i], 'Z');
	assert_int_equal(strlen(g.hex), 32);
	for (size_t i = 0; i < 32; i++) {
		char c = g.hex[i];

		if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) {
			print_error("digest \"%s\" has a non-hex character at %zu\n", g.hex, i);
			fail();
		}
	}
	memcpy(out, g.hex, TSMS_DIGEST_HEX);
}

static void test_digest_hex(void **state)
{
	char a[TSMS_DIGEST_HEX], b[TSMS_DIGEST_HEX];
	char big[1025];

	(void)state;
	assert_int_equal(TSMS_DIGEST_HEX, 33);
	/* BLAKE2b-128 of a zero byte and "alice" (Python's hashlib.blake2b) */
	digest(NULL, "alice", a);
	assert_string_equal(a, "041093537313cfbcd86607f0dfa6c0e6");
	/* ... and of "k", a zero byte and "alice" */
	digest("k", "alice", a);
	assert_string_equal(a, "fdc2215424960464b559e09778ba1aa4");

	/* stable */
	digest(NULL, "alice", a);
	digest(NULL, "alice", b);
	assert_string_equal(a, b);
	/* the text changes it */
	digest(NULL, "alicf", b);
	assert_string_not_equal(a, b);
	digest(NULL, "", b);
	assert_string_not_equal(a, b);
	/* the secret changes it */
	digest("secret-1", "alice", b);
	assert_string_not_equal(a, b);
	digest("secret-2", "alice", a);
	assert_string_not_equal(a, b);
	/* the zero byte keeps secret and text apart: "ab" + "c" is not "a" + "bc" */
	digest("ab", "c", a);
	digest("a", "bc", b);
	assert_string_not_equal(a, b);
	/* long text */
	memset(big, 'x', 1024);
	big[1024] = '\0';
	digest(NULL, big, a);
	big[1023] = 'y';
	digest(NULL, big, b);
	assert_string_not_equal(a, b);
}

static void test_random_below(void **state)
{
	unsigned seen[7] = { 0 };

	(void)state;
	assert_int_equal(tsms_random_below(0), 0);
	for (int i = 0; i < 100; i++)
		assert_int_equal(tsms_random_below(1), 0);
	for (int i = 0; i < 7000; i++) {
		unsigned r = tsms_random_below(7);

		assert_true(r < 7);
		seen[r]++;
	}
	/* expected 1000 each, standard deviation about 29 */
	for (int v = 0; v < 7; v++)
		assert_in_range(seen[v], 700, 1300);
	for (int i = 0; i < 1000; i++)
		assert_true(tsms_random_below(UINT32_MAX) < UINT32_MAX);
}

/* A pass is good for its user and its transaction only, for max_age seconds, and
 * cannot be made up or altered outside the process's key. */
static void test_pass(void **state)
{
	struct tsms_pass p, forged;
	static int handle, other; /* two transactions: only their addresses count */

	(void)state;
	memset(&forged, 0, sizeof(forged));
	assert_false(tsms_pass_valid(&forged, "alice", &handle, 300)); /* before any key */
	assert_int_equal(tsms_pass_make(&p, "alice", &handle), 0);
	assert_true(tsms_pass_valid(&p, "alice", &handle, 300));
	assert_false(tsms_pass_valid(&p, "bob", &handle, 300));
	assert_false(tsms_pass_valid(&p, "alice", &other, 300));
	assert_false(tsms_pass_valid(&p, "alicex", &handle, 300));
	forged = p;
	forged.tag[0] ^= 1;
	assert_false(tsms_pass_valid(&forged, "alice", &handle, 300));
	forged = p;
	forged.when += 1; /* a later time with the old tag */
	assert_false(tsms_pass_valid(&forged, "alice", &handle, 300));
	forged = p;
	forged.when -= 301 * 1000LL; /* too old (301 s, in ms), whatever its tag */
	assert_false(tsms_pass_valid(&forged, "alice", &handle, 300));
	usleep(20 * 1000);
	assert_false(tsms_pass_valid(&p, "alice", &handle, 0));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_pass),
		cmocka_unit_test(test_crypto_init_repeatable),
		cmocka_unit_test(test_generate_lengths),
		cmocka_unit_test(test_generate_refuses_bad_lengths),
		cmocka_unit_test(test_generate_distribution),
		cmocka_unit_test(test_generate_leading_zero_kept_long),
		cmocka_unit_test(test_generate_codes_differ),
		cmocka_unit_test(test_matches_exact),
		cmocka_unit_test(test_matches_generated),
		cmocka_unit_test(test_matches_ignores_surrounding_whitespace),
		cmocka_unit_test(test_matches_wrong_digit),
		cmocka_unit_test(test_matches_wrong_length),
		cmocka_unit_test(test_matches_leading_zero_needed),
		cmocka_unit_test(test_matches_empty_and_null),
		cmocka_unit_test(test_matches_rejects_other_characters),
		cmocka_unit_test(test_wipe_code),
		cmocka_unit_test(test_wipe_bytes),
		cmocka_unit_test(test_free_secret),
		cmocka_unit_test(test_digest_hex),
		cmocka_unit_test(test_random_below),
	};

	return cmocka_run_group_tests(tests, setup, NULL);
}
