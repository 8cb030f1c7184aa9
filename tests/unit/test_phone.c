/* test_phone.c - unit tests of lib/phone: the rule for a number, and masking */
#include "unit.h"

#include "phone.h"

/* Parses in into a buffer pre-filled with junk; returns the result and leaves
 * the output in out and the problem in *why. A canary after out catches overruns. */
struct guarded {
	char out[TSMS_PHONE_MAX];
	char canary[32];
};

static bool parse_guarded(const char *in, size_t len, struct guarded *g, const char **why)
{
	bool ok;

	memset(g, 'X', sizeof(*g));
	*why = "(not set)";
	ok = tsms_phone_parse(in, len, g->out, why);
	for (size_t i = 0; i < sizeof(g->canary); i++)
		assert_int_equal(g->canary[i], 'X');
	assert_non_null(memchr(g->out, '\0', sizeof(g->out)));
	return ok;
}

static void assert_parses(const char *in, const char *want)
{
	struct guarded g;
	const char *why;

	if (!parse_guarded(in, strlen(in), &g, &why)) {
		print_error("tsms_phone_parse(\"%s\") refused (%s), expected \"%s\"\n", in, why,
		            want);
		fail();
	}
	assert_null(why);
	assert_string_equal(g.out, want);
}

/* Refused, with the problem want (NULL: any). */
static void assert_refused_len(const char *in, size_t len, const char *want)
{
	struct guarded g;
	const char *why;

	if (parse_guarded(in, len, &g, &why)) {
		print_error("tsms_phone_parse(\"%s\") accepted as \"%s\", expected refusal\n", in,
		            g.out);
		fail();
	}
	/* contract: on failure out is "" and the problem is said */
	assert_string_equal(g.out, "");
	assert_non_null(why);
	if (want != NULL)
		assert_string_equal(why, want);
}

static void assert_refused_as(const char *in, const char *want)
{
	assert_refused_len(in, strlen(in), want);
}

static void assert_refused(const char *in)
{
	assert_refused_len(in, strlen(in), NULL);
}

static void test_parse_e164_unchanged(void **state)
{
	(void)state;
	assert_parses("+15555550006", "+15555550006");
	assert_parses("+447700900123", "+447700900123");
	assert_parses("+8613800138000", "+8613800138000");
}

/* A number without its '+' is never given one: "2025550143" (a US number written
 * without its country code) once became +20 25550143, Egypt. */
static void test_parse_missing_plus_refused(void **state)
{
	(void)state;
	assert_refused_as("2025550143", "has no leading +");
	assert_refused_as("12025550143", "has no leading +");
	assert_refused_as("15555550007", "has no leading +");
	assert_refused_as("447700900123", "has no leading +");
	assert_refused_as("1 555-555-0008", "has no leading +");
	assert_refused_as("(202) 555-0143", "has no leading +");
	assert_refused_as("1234567", "has no leading +");
	/* written with '+', the same digits are Egypt's: the admin said so */
	assert_parses("+2025550143", "+2025550143");
}

/* The separators: space, '-', '.', '(' and ')', anywhere. */
static void test_parse_drops_separators(void **state)
{
	(void)state;
	assert_parses("+1 (202) 555-0143", "+12025550143");
	assert_parses("+1 555-555-0008", "+15555550008");
	assert_parses("+1 555 555 0008", "+15555550008");
	assert_parses("+1.555.555.0006", "+15555550006");
	assert_parses("+1--555--555--0008", "+15555550008");
	/* "(0)" is a trunk prefix, which +44 20 ... does not dial: never dropped
	 * silently, nor kept */
	assert_refused_as("+44 (0)20 7946 0018",
	                  "has (0), a trunk prefix that is not dialled after the country code");
	assert_parses("+44 20 7946 0018", "+442079460018");
	assert_parses("+39 (06) 6982 0000", "+390669820000");
	assert_parses("(+1) 202 555 0143", "+12025550143");
	assert_parses("+ 1 202 555 0143", "+12025550143");
	/* tabs and other white space are not separators */
	assert_refused("+1\t2025550143");
	assert_refused("+1\n2025550143");
	assert_refused("+12025550143\r");
}

static void test_parse_space_before_plus(void **state)
{
	(void)state;
	/* separators are dropped wherever they are, also before the '+' */
	assert_parses(" +15555550008 ", "+15555550008");
	assert_parses("  +1 555 555 0008", "+15555550008");
}

static void test_parse_long_formatted_input(void **state)
{
	(void)state;
	/* the input may be longer than the output buffer once formatting is dropped */
	assert_parses("+49 - 151 - 2345 - 6789", "+4915123456789");
	assert_parses("+1   555   555   0006         ", "+15555550006");
	assert_parses("+1 2 3 4 5 6 7 8 9 0 1 2 3 4 5", "+123456789012345");
}

static void test_parse_length_limits(void **state)
{
	(void)state;
	/* ^\+[1-9][0-9]{6,14}$: 7 to 15 digits */
	assert_refused_as("+123456", "is too short (fewer than 7 digits after the +)");
	assert_parses("+1234567", "+1234567");                 /* 7 */
	assert_parses("+123456789012345", "+123456789012345"); /* 15 */
	assert_refused_as("+1234567890123456", "is too long (more than 15 digits after the +)");
	assert_refused_as("1234567890123456", "has no leading +");
	assert_refused("+1 234 567 890 123 456"); /* 16 after dropping spaces */
	assert_refused("+1");
	assert_refused("1");
}

static void test_parse_very_long_input(void **state)
{
	char in[2048];

	(void)state;
	in[0] = '+';
	memset(in + 1, '5', sizeof(in) - 2);
	in[sizeof(in) - 1] = '\0';
	assert_refused_as(in, "is too long (more than 15 digits after the +)");
	memset(in, ' ', sizeof(in) - 1);
	assert_refused_as(in, "is empty"); /* only spaces */
}

/* The length is the caller's: a directory value may hold a NUL. */
static void test_parse_length_given(void **state)
{
	char out[TSMS_PHONE_MAX];

	(void)state;
	assert_refused_len("+1555\0"
	                   "5550006",
	                   12,
	                   "has a character other than a digit, + or separator (space - . ( ))");
	assert_true(tsms_phone_parse("+15555550006999", 12, out, NULL));
	assert_string_equal(out, "+15555550006");
	assert_false(tsms_phone_parse(NULL, 0, out, NULL));
	assert_string_equal(out, "");
}

static void test_parse_leading_zero_refused(void **state)
{
	(void)state;
	assert_refused_as("+01234567890", "has a country code that starts with 0");
	assert_refused_as("01234567890", "has no leading +");
	assert_refused("+0");
	assert_refused_as("+ 0 555 555 0006", "has a country code that starts with 0");
}

static void test_parse_letters_and_symbols_refused(void **state)
{
	(void)state;
	assert_refused_as("+1555555000a", "has a letter");
	assert_refused_as("+1555ABC0006", "has a letter");
	assert_refused_as("phone", "has a letter");
	assert_refused_as("tel:+12025550143", "has a letter");
	assert_refused_as("+1555555/0006",
	                  "has a character other than a digit, + or separator (space - . ( ))");
	assert_refused("+1555555_0006");
	assert_refused("+15555550006x");
	assert_refused("+15555550006;rm");
	/* a '+' anywhere but first */
	assert_refused_as("++15555550006", "has a + after its start");
	assert_refused_as("1555+5550006", "has a + after its start");
	assert_refused_as("15555550006+", "has a + after its start");
	/* full-width digits are not ASCII digits */
	assert_refused("+\xef\xbc\x91"
	               "5555550006");
}

static void test_parse_empty_refused(void **state)
{
	(void)state;
	assert_refused_as("", "is empty");
	assert_refused_as("+", "is too short (fewer than 7 digits after the +)");
	assert_refused_as(" ", "is empty");
	assert_refused_as("-", "is empty");
	assert_refused("+ - -");
}

static void test_mask_last_four(void **state)
{
	char out[TSMS_PHONE_MASKED_MAX];

	(void)state;
	tsms_phone_mask("+15555550006", out);
	assert_string_equal(out, "******0006");
	tsms_phone_mask("+447700900123", out);
	assert_string_equal(out, "******0123");
	tsms_phone_mask("+15555550007", out);
	assert_string_equal(out, "******0007");
}

static void test_mask_constant_width(void **state)
{
	static const char *const numbers[] = {
		"+1234567", /* shortest valid */
		"+12345678",      "+15555550006",
		"+4915123456789", "+123456789012345", /* longest valid */
	};
	struct {
		char out[TSMS_PHONE_MASKED_MAX];
		char canary[16];
	} g;

	(void)state;
	assert_int_equal(TSMS_PHONE_MASKED_MAX, 11);
	for (size_t i = 0; i < sizeof(numbers) / sizeof(numbers[0]); i++) {
		size_t n = strlen(numbers[i]);

		memset(&g, 'X', sizeof(g));
		tsms_phone_mask(numbers[i], g.out);
		assert_int_equal(strlen(g.out), TSMS_PHONE_MASKED_MAX - 1);
		assert_memory_equal(g.out, "******", 6);
		assert_string_equal(g.out + 6, numbers[i] + n - 4);
		for (size_t j = 0; j < sizeof(g.canary); j++)
			assert_int_equal(g.canary[j], 'X');
	}
}

static void test_mask_hides_everything_else(void **state)
{
	char out[TSMS_PHONE_MASKED_MAX];

	(void)state;
	tsms_phone_mask("+198765432101234", out);
	assert_string_equal(out, "******1234");
	assert_null(strchr(out, '+'));
	assert_null(strstr(out, "9876"));
}

static void test_mask_of_normalized(void **state)
{
	char e164[TSMS_PHONE_MAX];
	char out[TSMS_PHONE_MASKED_MAX];

	(void)state;
	assert_true(tsms_phone_parse("+1 555-555-0042", 15, e164, NULL));
	tsms_phone_mask(e164, out);
	assert_string_equal(out, "******0042");
}

/* Masks a copy of in with tsms_phone_mask_text and compares it with want. */
static void assert_masks_text(const char *in, const char *want)
{
	char buf[512];

	assert_true(strlen(in) < sizeof(buf));
	snprintf(buf, sizeof(buf), "%s", in);
	tsms_phone_mask_text(buf);
	assert_string_equal(buf, want);
	assert_int_equal(strlen(buf), strlen(in));
}

static void test_mask_text_numbers(void **state)
{
	(void)state;
	/* the header's example */
	assert_masks_text("The 'To' number +15005550001 is not a valid phone number.",
	                  "The 'To' number ********0001 is not a valid phone number.");
	assert_masks_text("+15555550006", "********0006");
	assert_masks_text("call 5550006 now", "call ***0006 now");
	assert_masks_text("+123456789012345", "************2345");
	assert_masks_text("+15555550006 and +447700900123", "********0006 and *********0123");
	assert_masks_text("to=15555550006,", "to=*******0006,");
}

static void test_mask_text_leaves_the_rest(void **state)
{
	(void)state;
	assert_masks_text("", "");
	assert_masks_text("no digits here", "no digits here");
	/* shorter runs are not phone numbers: error codes, HTTP statuses, dates */
	assert_masks_text("error 21211 (HTTP 400) at 2025-11-26",
	                  "error 21211 (HTTP 400) at 2025-11-26");
	assert_masks_text("+1555 is short", "+1555 is short");
	assert_masks_text("ref 12345678901234567890", "ref ****************7890");
	assert_masks_text("123456", "123456");
	assert_masks_text("Numéro +15555550006 invalide", "Numéro ********0006 invalide");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse_e164_unchanged),
		cmocka_unit_test(test_parse_missing_plus_refused),
		cmocka_unit_test(test_parse_drops_separators),
		cmocka_unit_test(test_parse_space_before_plus),
		cmocka_unit_test(test_parse_long_formatted_input),
		cmocka_unit_test(test_parse_length_limits),
		cmocka_unit_test(test_parse_very_long_input),
		cmocka_unit_test(test_parse_length_given),
		cmocka_unit_test(test_parse_leading_zero_refused),
		cmocka_unit_test(test_parse_letters_and_symbols_refused),
		cmocka_unit_test(test_parse_empty_refused),
		cmocka_unit_test(test_mask_last_four),
		cmocka_unit_test(test_mask_constant_width),
		cmocka_unit_test(test_mask_hides_everything_else),
		cmocka_unit_test(test_mask_of_normalized),
		cmocka_unit_test(test_mask_text_numbers),
		cmocka_unit_test(test_mask_text_leaves_the_rest),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
