/* phone.c - E.164 phone numbers: normalising and masking */
#include "phone.h"

#include <string.h>

bool tsms_phone_normalize(const char *in, char out[TSMS_PHONE_MAX])
{
	size_t n = 1;

	out[0] = '\0';
	if (in == NULL)
		return false;
	while (*in == ' ')
		in++;
	if (*in == '+')
		in++;
	for (; *in != '\0'; in++) {
		if (*in == ' ' || *in == '-')
			continue;
		if (*in < '0' || *in > '9' || n >= TSMS_PHONE_MAX - 1) {
			out[0] = '\0';
			return false;
		}
		out[n++] = *in;
	}
	out[0] = '+';
	out[n] = '\0';
	/* ^\+[1-9][0-9]{6,14}$ */
	if (n - 1 < 7 || n - 1 > 15 || out[1] == '0') {
		out[0] = '\0';
		return false;
	}
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
