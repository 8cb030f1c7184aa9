/* phone.h - E.164 phone numbers: the rule for writing one, and masking */
#ifndef TSMS_PHONE_H
#define TSMS_PHONE_H

#include <stdbool.h>
#include <stddef.h>

/* "+" + at most 15 digits + NUL */
#define TSMS_PHONE_MAX 17
/* "******" + last four digits + NUL */
#define TSMS_PHONE_MASKED_MAX 11

/* The fix for every number that tsms_phone_parse refuses. */
#define TSMS_PHONE_FORM "+<country code><number>"
#define TSMS_PHONE_EXAMPLE "+12025550143"
#define TSMS_PHONE_FIX "write it as " TSMS_PHONE_FORM ", e.g. " TSMS_PHONE_EXAMPLE

/* The one rule for a phone number, wherever it is written (the config's users,
 * the users file, the directory, the admin command): "+", the country code and
 * the number, with spaces, '-', '.', '(' and ')' allowed anywhere as
 * separators. Nothing is guessed: "2025550143" is refused, never read as
 * +20 (Egypt). Parses the len bytes of in (NULs included) into out as
 * ^\+[1-9][0-9]{6,14}$ and returns true; otherwise out is "", *problem (when
 * problem is not NULL) is a short static text such as "has no leading +" to
 * follow "the number", and false is returned. */
bool tsms_phone_parse(const char *in, size_t len, char out[TSMS_PHONE_MAX], const char **problem);

/* Writes "******" followed by the last four digits of e164 into out, the same
 * width for every number, e.g. "+15555550006" -> "******0006". */
void tsms_phone_mask(const char *e164, char out[TSMS_PHONE_MASKED_MAX]);

/* Masks, in place, every run of 7 or more digits (with an optional leading '+')
 * in free text such as Twilio's error messages, keeping the last four digits:
 * "The 'To' number +15005550001 is ..." -> "The 'To' number ********0001 is ...". */
void tsms_phone_mask_text(char *text);

#endif
