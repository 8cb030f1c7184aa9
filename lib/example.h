/* example.h - the values of the shipped example config (conf/pam_twilio_sms.json)
 * that must not stay in a real one */
#ifndef TSMS_EXAMPLE_H
#define TSMS_EXAMPLE_H

#include <stdbool.h>

/* True for a placeholder of the example: a value that begins with
 * "replace-with-" (authToken, apiKeySecret), or a SID written with 'x' for
 * all of its 32 digits ("ACxxxx...", "MGxxxx...", "SKxxxx..."). No real value
 * has either form, so a config pasted from Logto is never taken for one. */
bool tsms_example_placeholder(const char *value);

/* True when user and the E.164 number are one of the example's users (the
 * example's name with the example's number, in a range reserved for fiction). */
bool tsms_example_user(const char *user, const char *e164);

#endif
