/* test_template.c - unit tests of lib/template: {{code}} rendering, UTF-8 counting */
#include "unit.h"

#include "otp.h"
#include "template.h"

/* Renders content with code and checks the result and the replacement count. */
static void assert_renders(const char *content, const char *code, const char *want,
                           size_t want_replaced)
{
	size_t replaced = 12345;
	char *out = tsms_template_render(content, code, &replaced);

	if (out == NULL) {
		print_error("render(\"%s\") returned NULL\n", content);
		fail();
	}
	assert_string_equal(out, want);
	assert_int_equal(replaced, want_replaced);
	assert_ptr_not_equal(out, content);
	tsms_free_secret(out);
}

static void test_has_placeholder(void **state)
{
	(void)state;
	assert_true(tsms_template_has_placeholder("{{code}}"));
	assert_true(tsms_template_has_placeholder("Your code is {{code}}"));
	assert_true(tsms_template_has_placeholder("{{ code }} is your code"));
	assert_true(tsms_template_has_placeholder("{{code }}"));
	assert_true(tsms_template_has_placeholder("{{ code}}"));
	assert_true(tsms_template_has_placeholder("{{    code    }}"));
	assert_true(tsms_template_has_placeholder("Ваш код {{code}}"));
	/* a later occurrence counts after a near miss */
	assert_true(tsms_template_has_placeholder("{{cod}} then {{code}}"));
	assert_true(tsms_template_has_placeholder("{{{code}}}"));
}

static void test_has_no_placeholder(void **state)
{
	(void)state;
	assert_false(tsms_template_has_placeholder(""));
	assert_false(tsms_template_has_placeholder("Your code is"));
	assert_false(tsms_template_has_placeholder("{{cod}}"));
	assert_false(tsms_template_has_placeholder("{code}"));
	assert_false(tsms_template_has_placeholder("{{code}"));
	assert_false(tsms_template_has_placeholder("{code}}"));
	assert_false(tsms_template_has_placeholder("{{codes}}"));
	assert_false(tsms_template_has_placeholder("{{ c o d e }}"));
	assert_false(tsms_template_has_placeholder("{{CODE}}"));
	assert_false(tsms_template_has_placeholder("{{xcode}}"));
	assert_false(tsms_template_has_placeholder("{{ code"));
	assert_false(tsms_template_has_placeholder("code"));
	assert_false(tsms_template_has_placeholder("{{"));
}

static void test_render_single(void **state)
{
	(void)state;
	assert_renders("Your code is {{code}}", "123456", "Your code is 123456", 1);
	assert_renders("{{code}}", "123456", "123456", 1);
	assert_renders("{{code}} is your code.", "4821", "4821 is your code.", 1);
}

static void test_render_spaced(void **state)
{
	(void)state;
	assert_renders("Code: {{ code }}.", "123456", "Code: 123456.", 1);
	assert_renders("Code: {{code }}.", "123456", "Code: 123456.", 1);
	assert_renders("Code: {{ code}}.", "123456", "Code: 123456.", 1);
	assert_renders("Code: {{   code   }}.", "123456", "Code: 123456.", 1);
}

static void test_render_several(void **state)
{
	(void)state;
	assert_renders("{{code}} and {{ code }} and {{code}}", "0042", "0042 and 0042 and 0042", 3);
	assert_renders("{{code}}{{code}}", "1234", "12341234", 2);
	assert_renders("a{{code}}b{{ code }}c{{code}}d{{code}}e", "9", "a9b9c9d9e", 4);
}

static void test_render_none(void **state)
{
	(void)state;
	assert_renders("No placeholder here", "123456", "No placeholder here", 0);
	assert_renders("", "123456", "", 0);
}

static void test_render_near_misses_untouched(void **state)
{
	(void)state;
	assert_renders("{{cod}} {code} {{code} {code}} {{CODE}}", "123456",
	               "{{cod}} {code} {{code} {code}} {{CODE}}", 0);
	assert_renders("{{cod}} {code} {{code}}", "123456", "{{cod}} {code} 123456", 1);
	assert_renders("{{{code}}}", "1234", "{1234}", 1);
	assert_renders("{{ {{code}} }}", "1234", "{{ 1234 }}", 1);
}

static void test_render_leading_zero_kept(void **state)
{
	(void)state;
	assert_renders("code {{code}}", "000000", "code 000000", 1);
	assert_renders("code {{code}}", "0123456789", "code 0123456789", 1);
}

static void test_render_not_recursive(void **state)
{
	(void)state;
	/* the inserted text is not scanned again */
	assert_renders("x {{code}} y", "{{code}}", "x {{code}} y", 1);
}

static void test_render_non_ascii_preserved(void **state)
{
	(void)state;
	assert_renders("Ваш код: {{code}} — не сообщайте его никому", "482910",
	               "Ваш код: 482910 — не сообщайте его никому", 1);
	assert_renders("您的验证码是 {{ code }}，5分钟内有效。🔐", "0815",
	               "您的验证码是 0815，5分钟内有效。🔐", 1);
	assert_renders("Código: {{code}} ✓ +1 & 100% = ok", "7", "Código: 7 ✓ +1 & 100% = ok", 1);
}

static void test_render_replaced_may_be_null(void **state)
{
	char *out;

	(void)state;
	out = tsms_template_render("a {{code}} b {{code}}", "55", NULL);
	assert_non_null(out);
	assert_string_equal(out, "a 55 b 55");
	tsms_free_secret(out);
}

static void test_render_long(void **state)
{
	char content[TSMS_BODY_MAX_CHARS * 2];
	size_t replaced = 0;
	char *out;

	(void)state;
	/* 200 placeholders in a long template */
	content[0] = '\0';
	for (int i = 0; i < 200; i++)
		strcat(content, "ab{{code}}");
	out = tsms_template_render(content, "0123456789", &replaced);
	assert_non_null(out);
	assert_int_equal(replaced, 200);
	assert_int_equal(strlen(out), 200 * 12);
	for (int i = 0; i < 200; i++)
		assert_memory_equal(out + i * 12, "ab0123456789", 12);
	tsms_free_secret(out);
}

static void test_utf8_chars(void **state)
{
	(void)state;
	assert_int_equal(TSMS_BODY_MAX_CHARS, 1600);
	assert_int_equal(tsms_utf8_chars(""), 0);
	assert_int_equal(tsms_utf8_chars("abc"), 3);
	assert_int_equal(tsms_utf8_chars("é"), 1);      /* 2 bytes */
	assert_int_equal(tsms_utf8_chars("验证码"), 3); /* 3 bytes each */
	assert_int_equal(tsms_utf8_chars("🔐"), 1);      /* 4 bytes */
	assert_int_equal(tsms_utf8_chars("Ваш код: 123"), 12);
	assert_int_equal(tsms_utf8_chars("a\xc3\xa9z\xe2\x9c\x93\xf0\x9f\x94\x90!"), 6);
}

static void test_utf8_chars_long(void **state)
{
	char s[3 * 1600 + 1];

	(void)state;
	for (int i = 0; i < 1600; i++)
		memcpy(s + 3 * i, "\xe9\xaa\x8c", 3); /* 验 */
	s[sizeof(s) - 1] = '\0';
	assert_int_equal(tsms_utf8_chars(s), 1600);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_has_placeholder),
		cmocka_unit_test(test_has_no_placeholder),
		cmocka_unit_test(test_render_single),
		cmocka_unit_test(test_render_spaced),
		cmocka_unit_test(test_render_several),
		cmocka_unit_test(test_render_none),
		cmocka_unit_test(test_render_near_misses_untouched),
		cmocka_unit_test(test_render_leading_zero_kept),
		cmocka_unit_test(test_render_not_recursive),
		cmocka_unit_test(test_render_non_ascii_preserved),
		cmocka_unit_test(test_render_replaced_may_be_null),
		cmocka_unit_test(test_render_long),
		cmocka_unit_test(test_utf8_chars),
		cmocka_unit_test(test_utf8_chars_long),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
