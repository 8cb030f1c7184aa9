/* fuzz_phone.c - libFuzzer target: the rule for a number, and masking.
 * Input: any bytes, parsed as they are (NULs included) and, for masking, made
 * a C string (it ends at the first NUL). Checked against phone.h: a parsed
 * number matches ^\+[1-9][0-9]{6,14}$ and keeps the input's digits, a number
 * without its '+' is refused, a refusal leaves "" and a problem, nothing
 * writes past its buffer,
 * and masking text hides every run of 7 or more digits but its last four digits and
 * changes nothing else. */
#include <stdint.h>

#include "fuzz.h"
#include "phone.h"

/* output buffers followed by canaries that catch writes past them */
struct guarded_phone {
	char out[TSMS_PHONE_MAX];
	char canary[16];
};

struct guarded_mask {
	char out[TSMS_PHONE_MASKED_MAX];
	char canary[16];
};

static bool canary_intact(const char *canary, size_t size)
{
	for (size_t i = 0; i < size; i++) {
		if (canary[i] != 'X')
			return false;
	}
	return true;
}

/* What tsms_phone_parse promises, written independently: no "(0)"; with the
 * separators (space, '-', '.', '(' and ')') taken out, '+' and then 7 to 15
 * digits, the first not 0, and nothing else (a missing '+' is never added).
 * Returns true with "+digits" in want. */
static bool expected_e164(const uint8_t *in, size_t len, char *want, size_t wantsize)
{
	size_t n = 0;

	if (memmem(in, len, "(0)", 3) != NULL)
		return false;
	for (size_t i = 0; i < len; i++) {
		if (strchr(" -.()", in[i]) != NULL && in[i] != '\0')
			continue;
		if (n >= wantsize - 1)
			return false;
		want[n++] = (char)in[i];
	}
	want[n] = '\0';
	return n >= 8 && n <= 16 && want[0] == '+' && want[1] >= '1' && want[1] <= '9' &&
	       strspn(want + 1, "0123456789") == n - 1;
}

static void check_parse(const uint8_t *in, size_t len)
{
	struct guarded_phone g, again;
	char want[TSMS_PHONE_MAX + 2];
	const char *why = NULL;
	bool ok, expect;

	memset(&g, 'X', sizeof(g));
	ok = tsms_phone_parse((const char *)in, len, g.out, &why);
	FUZZ_CHECK(canary_intact(g.canary, sizeof(g.canary)));
	FUZZ_CHECK(fuzz_terminated(g.out, sizeof(g.out)));
	expect = expected_e164(in, len, want, sizeof(want));
	FUZZ_CHECK(ok == expect);
	if (!ok) {
		FUZZ_CHECK(g.out[0] == '\0');
		FUZZ_CHECK(why != NULL && why[0] != '\0' && !fuzz_has_control(why));
		return;
	}
	FUZZ_CHECK(why == NULL);
	FUZZ_CHECK(fuzz_is_e164(g.out));
	FUZZ_CHECK(strcmp(g.out, want) == 0);
	/* a parsed number is its own normal form */
	memset(&again, 'X', sizeof(again));
	FUZZ_CHECK(tsms_phone_parse(g.out, strlen(g.out), again.out, NULL) &&
	           strcmp(again.out, g.out) == 0);
}

static void check_mask(const char *e164)
{
	struct guarded_mask g;
	size_t len = strlen(e164);

	memset(&g, 'X', sizeof(g));
	tsms_phone_mask(e164, g.out);
	FUZZ_CHECK(canary_intact(g.canary, sizeof(g.canary)));
	FUZZ_CHECK(strlen(g.out) == TSMS_PHONE_MASKED_MAX - 1);
	FUZZ_CHECK(memcmp(g.out, "******", 6) == 0);
	if (len >= 4)
		FUZZ_CHECK(memcmp(g.out + 6, e164 + len - 4, 4) == 0);
}

/* phone.h's tsms_phone_mask_text, written independently: in every maximal
 * run of 7 or more digits all but the last four digits, and a '+' right before
 * the run, become '*'. */
static void expected_mask_text(char *s)
{
	size_t i = 0, len = strlen(s);

	while (i < len) {
		size_t n = strspn(s + i, "0123456789");

		if (n >= 7) {
			memset(s + i, '*', n - 4);
			if (i > 0 && s[i - 1] == '+')
				s[i - 1] = '*';
		}
		i += n > 0 ? n : 1;
	}
}

static void check_mask_text(const char *in)
{
	size_t len = strlen(in);
	char *got = fuzz_strndup((const unsigned char *)in, len);
	char *want = fuzz_strndup((const unsigned char *)in, len);

	tsms_phone_mask_text(got);
	expected_mask_text(want);
	FUZZ_CHECK(strlen(got) == len);
	FUZZ_CHECK(fuzz_digit_run(got, 7, (size_t)-1) == 0);
	FUZZ_CHECK(strcmp(got, want) == 0);
	free(want);
	free(got);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *in = fuzz_strndup(data, size);
	char e164[TSMS_PHONE_MAX];

	check_parse(data, size);
	check_mask(in);
	if (tsms_phone_parse(in, strlen(in), e164, NULL))
		check_mask(e164);
	check_mask_text(in);
	free(in);
	return 0;
}
