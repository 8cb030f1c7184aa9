/* test_phone.c - unit tests of lib/phone: E.164 normalising and masking */
#include "unit.h"

#include "phone.h"

/* Normalises in into a buffer pre-filled with junk; returns the result and
 * leaves the output in out. A canary after out catches overruns. */
struct guarded {
	char out[TSMS_PHONE_MAX];
	char canary[32];
};

static bool normalize_guarded(const char *in, struct guarded *g)
{
	bool ok;

	memset(g, 'X', sizeof(*g));
	ok = tsms_phone_normalize(in, g->out);
	for (size_t i = 0; i < sizeof(g->canary); i++)
		assert_int_equal(g->canary[i], 'X');
	assert_non_null(memchr(g->out, '\0', sizeof(g->out)));
	return ok;
}

static void assert_normalizes(const char *in, const char *want)
{
	struct guarded g;

	if (!normalize_guarded(in, &g)) {
		print_error("tsms_phone_normalize(\"%s\") refused, expected \"%s\"\n", in, want);
		fail();
	}
	assert_string_equal(g.out, want);
}

static void assert_refused(const char *in)
{
	struct guarded g;

	if (normalize_guarded(in, &g)) {
		print_error("tsms_phone_normalize(\"%s\") accepted as \"%s\", expected refusal\n",
		            in, g.out);
		fail();
	}
	/* contract: on failure out is "" */
	assert_string_equal(g.out, "");
}

static void test_normalize_e164_unchanged(void **state)
{
	(void)state;
	assert_normalizes("+15555550006", "+15555550006");
	assert_normalizes("+447700900123", "+447700900123");
	assert_normalizes("+8613800138000", "+8613800138000");
}

static void test_normalize_adds_missing_plus(void **state)
{
	(void)state;
	/* Logto stores numbers without '+', the module adds it */
	assert_normalizes("15555550007", "+15555550007");
	assert_normalizes("447700900123", "+447700900123");
}

static void test_normalize_drops_spaces_and_dashes(void **state)
{
	(void)state;
	assert_normalizes("+1 555-555-0008", "+15555550008");
	assert_normalizes("+1 555 555 0008", "+15555550008");
	assert_normalizes("1-555-555-0008", "+15555550008");
	assert_normalizes("1 5 5 5 5 5 5 0 0 0 8", "+15555550008");
	assert_normalizes("+1--555--555--0008", "+15555550008");
}

static void test_normalize_space_before_plus(void **state)
{
	(void)state;
	/* spaces are dropped wherever they are, also before the '+' */
	assert_normalizes(" +15555550008 ", "+15555550008");
	assert_normalizes("  +1 555 555 0008", "+15555550008");
}

static void test_normalize_long_formatted_input(void **state)
{
	(void)state;
	/* the input may be longer than the output buffer once formatting is dropped */
	assert_normalizes("+49 - 151 - 2345 - 6789", "+4915123456789");
	assert_normalizes("+1   555   555   0006         ", "+15555550006");
	assert_normalizes("+1 2 3 4 5 6 7 8 9 0 1 2 3 4 5", "+123456789012345");
}

static void test_normalize_length_limits(void **state)
{
	(void)state;
	/* ^\+[1-9][0-9]{6,14}$: 7 to 15 digits */
	assert_refused("+123456");                                 /* 6 digits */
	assert_normalizes("+1234567", "+1234567");                 /* 7 */
	assert_normalizes("1234567", "+1234567");                  /* 7, no + */
	assert_normalizes("+123456789012345", "+123456789012345"); /* 15 */
	assert_refused("+1234567890123456");                       /* 16 */
	assert_refused("1234567890123456");                        /* 16, no + */
	assert_refused("+1 234 567 890 123 456");                  /* 16 after dropping spaces */
	assert_refused("+1");
	assert_refused("1");
}

static void test_normalize_very_long_input(void **state)
{
	char in[2048];

	(void)state;
	in[0] = '+';
	memset(in + 1, '5', sizeof(in) - 2);
	in[sizeof(in) - 1] = '\0';
	assert_refused(in);
	memset(in, ' ', sizeof(in) - 1);
	assert_refused(in); /* only spaces */
}

static void test_normalize_leading_zero_refused(void **state)
{
	(void)state;
	assert_refused("+01234567890");
	assert_refused("01234567890"); /* becomes +0..., still refused */
	assert_refused("+0");
	assert_refused("+ 0 555 555 0006");
}

static void test_normalize_letters_and_symbols_refused(void **state)
{
	(void)state;
	assert_refused("+1555555000a");
	assert_refused("+1555ABC0006");
	assert_refused("phone");
	assert_refused("+1.555.555.0006");
	assert_refused("+1555555/0006");
	assert_refused("+1555555_0006");
	assert_refused("+15555550006x");
	assert_refused("+15555550006;rm");
	/* a '+' anywhere but first */
	assert_refused("++15555550006");
	assert_refused("1555+5550006");
	assert_refused("15555550006+");
	/* full-width digits are not ASCII digits */
	assert_refused("+\xef\xbc\x91"
	               "5555550006");
}

static void test_normalize_empty_refused(void **state)
{
	(void)state;
	assert_refused("");
	assert_refused("+");
	assert_refused(" ");
	assert_refused("-");
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
	assert_true(tsms_phone_normalize("1 555-555-0042", e164));
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
		cmocka_unit_test(test_normalize_e164_unchanged),
		cmocka_unit_test(test_normalize_adds_missing_plus),
		cmocka_unit_test(test_normalize_drops_spaces_and_dashes),
		cmocka_unit_test(test_normalize_space_before_plus),
		cmocka_unit_test(test_normalize_long_formatted_input),
		cmocka_unit_test(test_normalize_length_limits),
		cmocka_unit_test(test_normalize_very_long_input),
		cmocka_unit_test(test_normalize_leading_zero_refused),
		cmocka_unit_test(test_normalize_letters_and_symbols_refused),
		cmocka_unit_test(test_normalize_empty_refused),
		cmocka_unit_test(test_mask_last_four),
		cmocka_unit_test(test_mask_constant_width),
		cmocka_unit_test(test_mask_hides_everything_else),
		cmocka_unit_test(test_mask_of_normalized),
		cmocka_unit_test(test_mask_text_numbers),
		cmocka_unit_test(test_mask_text_leaves_the_rest),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
