/* http.h - HTTPS form POST (the only libcurl user) */
#ifndef TSMS_HTTP_H
#define TSMS_HTTP_H

#include <stddef.h>

/* Largest response body read; a longer one fails with TSMS_HTTP_TOO_BIG. */
#define TSMS_HTTP_MAX_RESPONSE (64 * 1024)

enum tsms_http_status {
	TSMS_HTTP_OK = 0,    /* a response arrived (any HTTP status) */
	TSMS_HTTP_CONNECT,   /* no connection was made: nothing was sent, safe to retry */
	TSMS_HTTP_TRANSPORT, /* connection dropped or refused after connecting, bad URL */
	TSMS_HTTP_TLS,       /* certificate or handshake refused */
	TSMS_HTTP_TIMEOUT,   /* the whole budget ran out */
	TSMS_HTTP_TOO_BIG,   /* response larger than TSMS_HTTP_MAX_RESPONSE */
	TSMS_HTTP_NOMEM,
};

struct tsms_http_field {
	const char *name;
	const char *value; /* URL-encoded by tsms_http_post_form */
};

struct tsms_http_request {
	const char *url;      /* must be https:// */
	const char *username; /* HTTP Basic */
	const char *password; /* HTTP Basic; a secret */
	const struct tsms_http_field *fields;
	size_t n_fields;
	const char *ca_file; /* NULL: system trust store */
	long timeout_ms;     /* the whole exchange, connect included */
};

struct tsms_http_response {
	long status;      /* HTTP status, 0 when none arrived */
	long retry_after; /* seconds from a Retry-After header, -1 when none */
	char *body;       /* NUL-terminated; free with tsms_http_response_clear */
	size_t body_len;
	char error[256]; /* transport problem, when not TSMS_HTTP_OK */
};

/* Process-wide libcurl setup: reference counted, paired with cleanup; safe in
 * any host program. Return 0 or -1. */
int tsms_http_global_init(void);
void tsms_http_global_cleanup(void);

/* POSTs the fields as application/x-www-form-urlencoded. TLS peer and host
 * verification on, HTTPS only, no redirects, no signals. The encoded body
 * (it may hold secrets) is wiped before returning. */
enum tsms_http_status tsms_http_post_form(const struct tsms_http_request *req,
                                          struct tsms_http_response *resp);

/* Frees the body; resp may be zeroed or used. */
void tsms_http_response_clear(struct tsms_http_response *resp);

/* Static name of a status ("transport", "TLS", "timeout", ...). */
const char *tsms_http_strstatus(enum tsms_http_status st);

#endif
