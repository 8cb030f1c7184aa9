/* twilio.h - Twilio's Messages API: request fields and responses */
#ifndef TSMS_TWILIO_H
#define TSMS_TWILIO_H

#include <stdbool.h>
#include <stddef.h>

#include "config.h"
#include "error.h"

struct tsms_twilio_result {
	long http_status;        /* 0 when no response arrived */
	char sid[40];            /* message sid on success ("SM..."), else "" */
	char status[24];         /* message status on success ("accepted", "queued") */
	long error_code;         /* Twilio error code, 0 when none */
	char error_message[256]; /* Twilio's message or the transport problem; sanitised */
	char reason[64];         /* short classification for logs: "sent", "timeout", ... */
	unsigned attempts;       /* requests made, retries included */
	/* No request may have made Twilio send a text: each one failed before it was
	 * written (no connection, TLS or the proxy refused) or was refused with a
	 * 4xx status (429 included). A timeout, a connection lost after connecting,
	 * a 5xx or an unreadable answer may have sent one. */
	bool nothing_sent;
};

/* Interprets a Messages API response (status, body of len bytes, not
 * necessarily NUL-terminated) into res. Returns TSMS_OK for 201 with a
 * message sid, TSMS_ERR_UNAVAILABLE for 429, 5xx or an unreadable success body,
 * TSMS_ERR_REJECTED for other statuses. Pure: no I/O. */
enum tsms_err tsms_twilio_parse_response(long status, const char *body, size_t len,
                                         struct tsms_twilio_result *res);

/* Sends body to the E.164 number to through cfg's Messaging Service, with a
 * ValidityPeriod of cfg->code_ttl_seconds (the code's lifetime: Twilio drops a
 * text it could not deliver before the code expires), retrying
 * only what cannot bill twice (no connection made, 429 after Retry-After, 500
 * and 503) at most cfg->max_retries times with backoff and jitter, all within
 * cfg->timeout_seconds. Returns TSMS_OK, TSMS_ERR_UNAVAILABLE (transport, TLS,
 * timeout, 429, 5xx), TSMS_ERR_REJECTED (other 4xx) or TSMS_ERR_NOMEM; res
 * always says why. */
enum tsms_err tsms_twilio_send(const struct tsms_config *cfg, const char *to, const char *body,
                               struct tsms_twilio_result *res);

/* Static short meaning of a Twilio error code ("bad credentials"), or NULL. */
const char *tsms_twilio_code_name(long code);

#endif
