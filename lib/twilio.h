/* twilio.h - Twilio's Messages API (request fields and responses) and the
 * Messaging Service check */
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

/* What a fetch of the Messaging Service (GET /v1/Services/{sid} on Twilio's
 * Messaging API) says of the config's credential and service. No text is sent. */
enum tsms_service_verdict {
	TSMS_SERVICE_OK = 0,         /* 200 with the service: credential and service both good */
	TSMS_SERVICE_BAD_CREDENTIAL, /* 401 (Twilio error 20003) */
	TSMS_SERVICE_NOT_FOUND,      /* 404 (20404): no such service for this account */
	TSMS_SERVICE_FORBIDDEN,      /* 403: the credential may not read the service */
	TSMS_SERVICE_UNREACHABLE,    /* no answer: connection, TLS, proxy, timeout */
	TSMS_SERVICE_UNEXPECTED,     /* any other answer (429, 5xx, a body without the service) */
	TSMS_SERVICE_UNKNOWN_HOST,   /* no known Messaging API host for apiBaseUrl: not asked */
};

struct tsms_twilio_service {
	enum tsms_service_verdict verdict;
	long http_status;        /* 0 when no response arrived */
	long error_code;         /* Twilio's error code, 0 when none */
	char error_message[256]; /* Twilio's message or the transport problem; sanitised */
	char friendly_name[80];  /* the service's, when OK; sanitised */
	char url[600];           /* the URL fetched */
};

/* The base URL of Twilio's Messaging API for the base URL of its Messages
 * API: https://api[.EDGE.REGION].twilio.com becomes
 * https://messaging[.EDGE.REGION].twilio.com (Twilio's PRODUCT.EDGE.REGION
 * host names); a base that is not on twilio.com (apiBaseUrl: a gateway or the
 * test sandbox) serves both and is kept. Returns false for any other base on
 * twilio.com (a port or a path: its Messaging API host is not known) and when
 * it does not fit in size. */
bool tsms_twilio_messaging_base(const char *api_base, char *out, size_t size);

/* Interprets the answer to GET /v1/Services/{sid} (status, body of len bytes,
 * not necessarily NUL-terminated) into res. OK only for 200 with a body whose
 * sid is sid. Pure: no I/O. */
enum tsms_service_verdict tsms_twilio_parse_service(long status, const char *body, size_t len,
                                                    const char *sid,
                                                    struct tsms_twilio_service *res);

/* Fetches cfg's Messaging Service with cfg's credential (HTTP Basic, as a
 * send), within cfg->timeout_seconds, once. Returns the verdict, also in res,
 * which always says why. The credential is never part of res. */
enum tsms_service_verdict tsms_twilio_check_service(const struct tsms_config *cfg,
                                                    struct tsms_twilio_service *res);

/* Static short meaning of a Twilio error code ("bad credentials"), or NULL. */
const char *tsms_twilio_code_name(long code);

#endif
