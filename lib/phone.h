/* phone.h - E.164 phone numbers: normalising and masking */
#ifndef TSMS_PHONE_H
#define TSMS_PHONE_H

#include <stdbool.h>

/* "+" + at most 15 digits + NUL */
#define TSMS_PHONE_MAX 17
/* "******" + last four digits + NUL */
#define TSMS_PHONE_MASKED_MAX 11

/* Normalises in to E.164 into out: spaces and '-' are dropped, a missing
 * leading '+' is added (as Logto does); the result must match
 * ^\+[1-9][0-9]{6,14}$. Returns true on success; on failure out is "". */
bool tsms_phone_normalize(const char *in, char out[TSMS_PHONE_MAX]);

/* Writes "******" followed by the last four digits of e164 into out, the same
 * width for every number, e.g. "+15555550006" -> "******0006". */
void tsms_phone_mask(const char *e164, char out[TSMS_PHONE_MASKED_MAX]);

/* Masks, in place, every run of 7 or more digits (with an optional leading '+')
 * in free text such as Twilio's error messages, keeping the last four digits:
 * "The 'To' number +15005550001 is ..." -> "The 'To' number ********0001 is ...". */
void tsms_phone_mask_text(char *text);

#endif
