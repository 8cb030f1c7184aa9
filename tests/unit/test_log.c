/* test_log.c - unit tests of lib/log: sanitising and the log sink */
#include "unit.h"

#include "log.h"

/* What the capture callback saw. */
struct capture {
	int calls;
	int priority;
	void *ctx;
	char line[16384];
};

static void capture_fn(void *ctx, int priority, const char *line)
{
	struct capture *cap = ctx;

	cap->calls++;
	cap->priority = priority;
	cap->ctx = ctx;
	if (line == NULL) {
		snprintf(cap->line, sizeof(cap->line), "(null)");
		return;
	}
	snprintf(cap->line, sizeof(cap->line), "%s", line);
}

static struct tsms_log capture_log(struct capture *cap, bool debug)
{
	struct tsms_log log = { .fn = capture_fn, .ctx = cap, .debug = debug };

	memset(cap, 0, sizeof(*cap));
	return log;
}

/* Sanitises src with dstlen into a larger guarded buffer and checks the
 * returned length, the result and that nothing was written past dstlen. */
static void assert_sanitizes(const char *src, size_t dstlen, const char *want)
{
	char buf[512];
	size_t n;

	assert_true(dstlen < sizeof(buf));
	memset(buf, 'Z', sizeof(buf));
	n = tsms_sanitize(buf, dstlen, src);
	for (size_t i = dstlen; i < sizeof(buf); i++) {
		if (buf[i] != 'Z') {
			print_error("tsms_sanitize wrote past dstlen %zu at %zu\n", dstlen, i);
			fail();
		}
	}
	assert_non_null(memchr(buf, '\0', dstlen));
	assert_string_equal(buf, want);
	assert_int_equal(n, strlen(want));
}

static void test_sanitize_plain(void **state)
{
	(void)state;
	assert_sanitizes("hello world", 64, "hello world");
	assert_sanitizes("user=alice phone=******0006", 64, "user=alice phone=******0006");
	assert_sanitizes("", 64, "");
}

static void test_sanitize_control_chars(void **state)
{
	(void)state;
	assert_sanitizes("a\nb", 64, "a?b");
	assert_sanitizes("a\rb", 64, "a?b");
	assert_sanitizes("a\tb", 64, "a?b");
	assert_sanitizes("a\x1b[31mred", 64, "a?[31mred");
	assert_sanitizes("a\x7f"
	                 "b",
	                 64, "a?b");
	assert_sanitizes("\x01\x02\x1f", 64, "???");
	assert_sanitizes("line\r\nfake: root login ok\n", 64, "line??fake: root login ok?");
	assert_sanitizes("\b\f\v\a", 64, "????");
}

static void test_sanitize_keeps_utf8(void **state)
{
	(void)state;
	assert_sanitizes("Numéro invalide", 64, "Numéro invalide");
	assert_sanitizes("验证码 🔐", 64, "验证码 🔐");
	assert_sanitizes("ü\nü", 64, "ü?ü");
}

static void test_sanitize_null_src(void **state)
{
	(void)state;
	assert_sanitizes(NULL, 16, "");
	assert_sanitizes(NULL, 1, "");
}

static void test_sanitize_truncates(void **state)
{
	(void)state;
	assert_sanitizes("abcdef", 4, "abc");
	assert_sanitizes("abcdef", 7, "abcdef");
	assert_sanitizes("abcdef", 6, "abcde");
	assert_sanitizes("abcdef", 1, "");
	assert_sanitizes("\n\n\n\n", 3, "??");
}

static void test_sanitize_truncation_keeps_utf8_whole(void **state)
{
	(void)state;
	/* "aé" is 61 c3 a9: 2 bytes of room must not keep the lone c3 */
	assert_sanitizes("a\xc3\xa9", 3, "a");
	assert_sanitizes("a\xc3\xa9", 4, "a\xc3\xa9");
	assert_sanitizes("ab\xc3\xa9", 5, "ab\xc3\xa9");
	assert_sanitizes("ab\xc3\xa9", 4, "ab");
	/* 3-byte sequence: 验 = e9 aa 8c */
	assert_sanitizes("\xe9\xaa\x8c", 3, "");
	assert_sanitizes("\xe9\xaa\x8c", 2, "");
	assert_sanitizes("\xe9\xaa\x8c", 4, "\xe9\xaa\x8c");
	assert_sanitizes("x\xe9\xaa\x8c", 4, "x");
	assert_sanitizes("xy\xe9\xaa\x8c", 4, "xy");
	/* 4-byte sequence: 🔐 = f0 9f 94 90 */
	assert_sanitizes("\xf0\x9f\x94\x90", 4, "");
	assert_sanitizes("\xf0\x9f\x94\x90", 5, "\xf0\x9f\x94\x90");
	assert_sanitizes("ab\xf0\x9f\x94\x90", 5, "ab");
	assert_sanitizes("abc\xf0\x9f\x94\x90", 6, "abc");
	assert_sanitizes("\xf0\x9f\x94\x90\xf0\x9f\x94\x90", 8, "\xf0\x9f\x94\x90");
}

static void test_sanitize_long_utf8(void **state)
{
	char src[3 * 1000 + 1];
	char dst[101];
	size_t n;

	(void)state;
	/* 1000 x "验" (3 bytes); 100 bytes of room hold 33 of them */
	for (int i = 0; i < 1000; i++)
		memcpy(src + 3 * i, "\xe9\xaa\x8c", 3);
	src[sizeof(src) - 1] = '\0';
	n = tsms_sanitize(dst, sizeof(dst), src);
	assert_int_equal(n, 99);
	assert_int_equal(strlen(dst), 99);
	for (size_t i = 0; i < n; i += 3)
		assert_memory_equal(dst + i, "\xe9\xaa\x8c", 3);
}

static void test_log_delivers(void **state)
{
	struct capture cap;
	struct tsms_log log = capture_log(&cap, false);

	(void)state;
	tsms_log(&log, LOG_INFO, "user=%s attempts=%u result=%s", "alice", 2u, "PAM_SUCCESS");
	assert_int_equal(cap.calls, 1);
	assert_int_equal(cap.priority, LOG_INFO);
	assert_ptr_equal(cap.ctx, &cap);
	assert_string_equal(cap.line, "user=alice attempts=2 result=PAM_SUCCESS");
}

static void test_log_priorities_passed(void **state)
{
	static const int prios[] = { LOG_EMERG,   LOG_ALERT,  LOG_CRIT, LOG_ERR,
		                     LOG_WARNING, LOG_NOTICE, LOG_INFO };
	struct capture cap;
	struct tsms_log log = capture_log(&cap, false);

	(void)state;
	for (size_t i = 0; i < sizeof(prios) / sizeof(prios[0]); i++) {
		cap.calls = 0;
		tsms_log(&log, prios[i], "p%zu", i);
		assert_int_equal(cap.calls, 1);
		assert_int_equal(cap.priority, prios[i]);
	}
}

static void test_log_sanitizes(void **state)
{
	struct capture cap;
	struct tsms_log log = capture_log(&cap, false);

	(void)state;
	tsms_log(&log, LOG_WARNING, "twilio said: %s", "bad\nnumber\r\x1b[2J\x7f!");
	assert_int_equal(cap.calls, 1);
	assert_string_equal(cap.line, "twilio said: bad?number??[2J?!");

	tsms_log(&log, LOG_WARNING, "user=%s", "eve\nuser=root result=PAM_SUCCESS");
	assert_string_equal(cap.line, "user=eve?user=root result=PAM_SUCCESS");

	tsms_log(&log, LOG_NOTICE, "tab\there");
	assert_string_equal(cap.line, "tab?here");
	assert_no_control(cap.line);
}

static void test_log_keeps_utf8(void **state)
{
	struct capture cap;
	struct tsms_log log = capture_log(&cap, false);

	(void)state;
	tsms_log(&log, LOG_INFO, "message=%s", "Numéro 验证码");
	assert_string_equal(cap.line, "message=Numéro 验证码");
}

static void test_log_drops_debug(void **state)
{
	struct capture cap;
	struct tsms_log log = capture_log(&cap, false);

	(void)state;
	tsms_log(&log, LOG_DEBUG, "debug %d", 1);
	assert_int_equal(cap.calls, 0);
	tsms_log(&log, LOG_INFO, "info");
	assert_int_equal(cap.calls, 1);
	assert_string_equal(cap.line, "info");
}

static void test_log_debug_when_enabled(void **state)
{
	struct capture cap;
	struct tsms_log log = capture_log(&cap, true);

	(void)state;
	tsms_log(&log, LOG_DEBUG, "debug %d", 7);
	assert_int_equal(cap.calls, 1);
	assert_int_equal(cap.priority, LOG_DEBUG);
	assert_string_equal(cap.line, "debug 7");
	tsms_log(&log, LOG_ERR, "err");
	assert_int_equal(cap.calls, 2);
}

static void test_log_null_sink(void **state)
{
	(void)state;
	tsms_log(NULL, LOG_ERR, "dropped %s", "line");
	tsms_log(NULL, LOG_DEBUG, "dropped");
}

static void test_log_long_line(void **state)
{
	struct capture cap;
	struct tsms_log log = capture_log(&cap, false);
	char big[5001];
	size_t n;

	(void)state;
	memset(big, 'x', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	tsms_log(&log, LOG_INFO, "%s\n", big);
	assert_int_equal(cap.calls, 1);
	n = strlen(cap.line);
	assert_true(n >= 200);
	assert_no_control(cap.line);
	for (size_t i = 0; i < n && i < 5000; i++)
		assert_int_equal(cap.line[i], 'x');
}

static void test_log_long_utf8_line(void **state)
{
	struct capture cap;
	struct tsms_log log = capture_log(&cap, false);
	char big[2 * 4000 + 1];
	size_t n;

	(void)state;
	for (int i = 0; i < 4000; i++)
		memcpy(big + 2 * i, "\xc3\xa9", 2); /* é */
	big[sizeof(big) - 1] = '\0';
	tsms_log(&log, LOG_INFO, "%s", big);
	assert_int_equal(cap.calls, 1);
	n = strlen(cap.line);
	assert_true(n >= 200);
	/* however long the line the sink allows, no é is cut in half */
	assert_int_equal(n % 2, 0);
	for (size_t i = 0; i < n; i += 2)
		assert_memory_equal(cap.line + i, "\xc3\xa9", 2);
}

/* ---- tsms_log_field: fields others parse ---- */

static void test_field_word_is_one_printable_word(void **state)
{
	char out[32];

	(void)state;
	assert_int_equal(tsms_log_field(out, sizeof(out), "203.0.113.7", true), 11);
	assert_string_equal(out, "203.0.113.7");
	/* spaces, tabs, newlines, DEL and 8-bit bytes: each one '?' */
	tsms_log_field(out, sizeof(out), "a b\tc\nd\x7f\xc3\xa9", true);
	assert_string_equal(out, "a?b?c?d???");
	/* without word, spaces and UTF-8 stay, control characters do not */
	tsms_log_field(out, sizeof(out), "a b\tc\xc3\xa9", false);
	assert_string_equal(out, "a b?c\xc3\xa9");
}

static void test_field_long_value_is_cut_with_an_ellipsis(void **state)
{
	char out[8], big[300];

	(void)state;
	/* dstlen 8: at most 4 bytes of the value, then "..." */
	assert_int_equal(tsms_log_field(out, sizeof(out), "abcd", true), 4);
	assert_string_equal(out, "abcd");
	assert_int_equal(tsms_log_field(out, sizeof(out), "abcde", true), 7);
	assert_string_equal(out, "abcd...");
	/* a forged "rhost=" after a long value never survives whole */
	memset(big, 'x', sizeof(big));
	strcpy(big + 250, " rhost=198.51.100.9");
	{
		char rhost[257];

		tsms_log_field(rhost, sizeof(rhost), big, true);
		assert_int_equal(strlen(rhost), 256);
		assert_null(strchr(rhost, ' '));
		assert_string_equal(rhost + 253, "...");
	}
	/* UTF-8 is cut whole, not inside a sequence (é is 2 bytes) */
	assert_int_equal(tsms_log_field(out, sizeof(out), "abc\xc3\xa9", false), 6);
	assert_string_equal(out, "abc...");
}

static void test_field_null_and_empty(void **state)
{
	char out[8];

	(void)state;
	assert_int_equal(tsms_log_field(out, sizeof(out), NULL, true), 0);
	assert_string_equal(out, "");
	assert_int_equal(tsms_log_field(out, sizeof(out), "", false), 0);
	assert_string_equal(out, "");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_sanitize_plain),
		cmocka_unit_test(test_sanitize_control_chars),
		cmocka_unit_test(test_sanitize_keeps_utf8),
		cmocka_unit_test(test_sanitize_null_src),
		cmocka_unit_test(test_sanitize_truncates),
		cmocka_unit_test(test_sanitize_truncation_keeps_utf8_whole),
		cmocka_unit_test(test_sanitize_long_utf8),
		cmocka_unit_test(test_log_delivers),
		cmocka_unit_test(test_log_priorities_passed),
		cmocka_unit_test(test_log_sanitizes),
		cmocka_unit_test(test_log_keeps_utf8),
		cmocka_unit_test(test_log_drops_debug),
		cmocka_unit_test(test_log_debug_when_enabled),
		cmocka_unit_test(test_log_null_sink),
		cmocka_unit_test(test_log_long_line),
		cmocka_unit_test(test_log_long_utf8_line),
		cmocka_unit_test(test_field_word_is_one_printable_word),
		cmocka_unit_test(test_field_long_value_is_cut_with_an_ellipsis),
		cmocka_unit_test(test_field_null_and_empty),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
