/* fuzz_twilio.c - libFuzzer target: reading Twilio's Messages API responses,
 * and the same bytes as the answer to a Messaging Service fetch.
 * Input: an optional HTTP status line "<digits>\n" (e.g. "400\n"; default 201)
 * followed by the response body, handed over without a terminating NUL. Every
 * text field of the result must be terminated inside its array and free of
 * control characters (it reaches syslog), Twilio's message must have numbers
 * masked, and the result must match the status as twilio.h promises. */
#include <stdint.h>

#include "fuzz.h"
#include "twilio.h"

/* Reads "<digits>\n" (at most 6 digits, an optional '-') at the start of
 * data into *status; returns the bytes used, 0 when there is no such prefix. */
static size_t read_status(const uint8_t *data, size_t size, long *status)
{
	size_t i = 0;
	long v = 0;
	bool neg = false;

	if (i < size && data[i] == '-') {
		neg = true;
		i++;
	}
	while (i < size && i < 7 && data[i] >= '0' && data[i] <= '9')
		v = v * 10 + (data[i++] - '0');
	if (i == 0 || (neg && i == 1) || i >= size || data[i] != '\n')
		return 0;
	*status = neg ? -v : v;
	return i + 1;
}

static bool is_hex(const char *s)
{
	return s[strspn(s, "0123456789abcdefABCDEF")] == '\0';
}

static void check_text(const char *field, size_t size)
{
	FUZZ_CHECK(fuzz_terminated(field, size));
	FUZZ_CHECK(!fuzz_has_control(field));
}

#define FUZZ_SERVICE "MG0123456789abcdef0123456789abcdef"

/* The same answer to GET /v1/Services/{sid}: texts safe for a terminal, and
 * a verdict that follows the status as twilio.h promises. */
static void check_service(long status, const char *body, size_t len)
{
	struct tsms_twilio_service res;
	enum tsms_service_verdict v;

	memset(&res, 0x7f, sizeof(res));
	v = tsms_twilio_parse_service(status, body, len, FUZZ_SERVICE, &res);
	FUZZ_CHECK(v == res.verdict && res.http_status == status);
	check_text(res.error_message, sizeof(res.error_message));
	check_text(res.friendly_name, sizeof(res.friendly_name));
	FUZZ_CHECK(res.error_code >= 0 && res.error_code < 1000000000L);
	FUZZ_CHECK((v == TSMS_SERVICE_OK) == (status == 200 && res.error_message[0] == '\0'));
	if (status == 401)
		FUZZ_CHECK(v == TSMS_SERVICE_BAD_CREDENTIAL);
	if (status != 200 && status != 401 && res.error_code != 20003)
		FUZZ_CHECK(v == (status == 404   ? TSMS_SERVICE_NOT_FOUND
		                 : status == 403 ? TSMS_SERVICE_FORBIDDEN
		                                 : TSMS_SERVICE_UNEXPECTED));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct tsms_twilio_result res;
	long status = 201;
	size_t skip = read_status(data, size, &status);
	char *body;
	enum tsms_err err;

	/* an exact-size copy: a read past len is a heap overflow ASan reports */
	body = malloc(size - skip + 1);
	FUZZ_CHECK(body != NULL);
	memcpy(body, data + skip, size - skip);
	/* junk, not zeros: a field left unterminated must show */
	memset(&res, 0x7f, sizeof(res));
	err = tsms_twilio_parse_response(status, body, size - skip, &res);

	check_text(res.sid, sizeof(res.sid));
	check_text(res.status, sizeof(res.status));
	check_text(res.error_message, sizeof(res.error_message));
	check_text(res.reason, sizeof(res.reason));
	FUZZ_CHECK(res.reason[0] != '\0');
	FUZZ_CHECK(res.http_status == status);
	FUZZ_CHECK(res.error_code >= 0 && res.error_code < 1000000000L);
	/* phone numbers (7 to 15 digits) in Twilio's message are masked */
	FUZZ_CHECK(fuzz_digit_run(res.error_message, 7, 15) == 0);

	if (status == 201) {
		FUZZ_CHECK(err == TSMS_OK || err == TSMS_ERR_UNAVAILABLE);
	} else if (status == 429 || (status >= 500 && status <= 599)) {
		FUZZ_CHECK(err == TSMS_ERR_UNAVAILABLE);
	} else {
		FUZZ_CHECK(err == TSMS_ERR_REJECTED);
	}
	if (err == TSMS_OK) {
		FUZZ_CHECK(strncmp(res.sid, "SM", 2) == 0 || strncmp(res.sid, "MM", 2) == 0);
		FUZZ_CHECK(strlen(res.sid) > 2 && is_hex(res.sid + 2));
		FUZZ_CHECK(res.error_code == 0 && res.error_message[0] == '\0');
	} else {
		FUZZ_CHECK(res.sid[0] == '\0');
	}
	check_service(status, body, size - skip);
	free(body);
	return 0;
}
