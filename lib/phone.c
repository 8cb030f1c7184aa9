/* phone.c - E.164 phone numbers: the rule for writing one, and masking */
#include "phone.h"

#include <string.h>

static bool is_separator(char c)
{
	return c == ' ' || c == '-' || c == '.' || c == '(' || c == ')';
}

static bool is_letter(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

/* The problem with [in, in + len) as a number, or NULL with its digits in
 * out + 1 (*digits of them, the first 15 kept). */
static const char *scan(const char *in, size_t len, char out[TSMS_PHONE_MAX], size_t *digits)
{
	bool plus = false;

	*digits = 0;
	for (size_t i = 0; i < len; i++) {
		char c = in[i];

		if (c == '(' && len - i >= 3 && in[i + 1] == '0' && in[i + 2] == ')')
			return "has (0), a trunk prefix that is not dialled after the country code";
		if (is_separator(c))
			continue;
		if (c == '+' && (plus || *digits > 0))
			return "has a + after its start";
		if (c == '+')
			plus = true;
		else if (c >= '0' && c <= '9' && *digits < TSMS_PHONE_MAX - 2)
			out[1 + (*digits)++] = c;
		else if (c >= '0' && c <= '9')
			++*digits; /* too long: counted, not kept */
		else if (is_letter(c))
			return "has a letter";
		else
			return "has a character other than a digit, + or separator (space - . ( ))";
	}
	if (!plus)
		return *digits == 0 ? "is empty" : "has no leading +";
	if (*digits < 7)
		return "is too short (fewer than 7 digits after the +)";
	if (*digits > 15)
		return "is too long (more than 15 digits after the +)";
	if (out[1] == '0')
		return "has a country code that starts with 0";
	return NULL;
}

bool tsms_phone_parse(const char *in, size_t len, char out[TSMS_PHONE_MAX], const char **problem)
{
	size_t digits = 0;
	const char *why = in != NULL ? scan(in, len, out, &digits) : "is empty";

	if (problem != NULL)
		*problem = why;
	if (why != NULL) {
		out[0] = '\0';
		return false;
	}
	out[0] = '+';
	out[1 + digits] = '\0';
	return true;
}

void tsms_phone_mask(const char *e164, char out[TSMS_PHONE_MASKED_MAX])
{
	size_t len = e164 != NULL ? strlen(e164) : 0;
	const char *tail = len >= 4 ? e164 + len - 4 : "????";

	memcpy(out, "******", 6);
	memcpy(out + 6, tail, 4);
	out[10] = '\0';
}

void tsms_phone_mask_text(char *text)
{
	for (char *p = text; *p != '\0';) {
		char *start = p, *digits = *p == '+' ? p + 1 : p, *end = digits;

		while (*end >= '0' && *end <= '9')
			end++;
		if (end - digits >= 7) { /* longer runs too: they may hold a number */
			memset(start, '*', (size_t)(end - 4 - start));
			p = end;
		} else {
			p = end > start ? end : start + 1;
		}
	}
}
