/* example.c - the values of the shipped example config (conf/pam_twilio_sms.json)
 * that must not stay in a real one: the loader refuses its placeholders, and
 * twilio-sms-otp check flags its users */
#include "example.h"

#include <string.h>

#define SECRET_MARK "replace-with-"
#define SID_DIGITS 32

bool tsms_example_placeholder(const char *value)
{
	size_t n = strlen(value);

	if (strncmp(value, SECRET_MARK, strlen(SECRET_MARK)) == 0)
		return true;
	if (n != 2 + SID_DIGITS)
		return false;
	for (size_t i = 2; i < n; i++) {
		if (value[i] != 'x' && value[i] != 'X')
			return false;
	}
	return true;
}

bool tsms_example_user(const char *user, const char *e164)
{
	/* as in conf/pam_twilio_sms.json: 555-01xx and 07700 900xxx are reserved
	 * for fiction, so neither can be someone's real number */
	static const char *const users[][2] = {
		{ "alice", "+12025550143" },
		{ "bob", "+447700900123" },
	};

	for (size_t i = 0; i < sizeof(users) / sizeof(users[0]); i++) {
		if (strcmp(user, users[i][0]) == 0 && strcmp(e164, users[i][1]) == 0)
			return true;
	}
	return false;
}
