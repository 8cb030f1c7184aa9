/* http.h - HTTPS form POST and GET (the only libcurl user, and so of OpenSSL beneath it) */
#ifndef TSMS_HTTP_H
#define TSMS_HTTP_H

#include <stdbool.h>
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
	TSMS_HTTP_PROXY,     /* the configured proxy refused the tunnel: nothing reached Twilio */
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
	const char *ca_pem; /* PEM certificates trusted, NULL: the system trust store */
	size_t ca_pem_len;  /* for the server and for an https:// proxy alike */
	const char *proxy;  /* http(s)://[user:password@]host:port, NULL: none; a secret */
	long timeout_ms;    /* the whole exchange, connect included */
};

struct tsms_http_response {
	long status;      /* HTTP status, 0 when none arrived */
	long retry_after; /* seconds from a Retry-After header, -1 when none */
	char *body;       /* NUL-terminated; free with tsms_http_response_clear */
	size_t body_len;
	char error[256]; /* transport problem, when not TSMS_HTTP_OK */
};

/* The name of an environment variable that OpenSSL has already read when the
 * module was loaded, and that no API can undo (its CPU capability masks), or
 * NULL. The caller refuses to run while one is set: see http.c. */
const char *tsms_http_unsafe_environment(void);

/* Process-wide libcurl setup: reference counted, paired with cleanup; safe in
 * any host program. Return 0 or -1. */
int tsms_http_global_init(void);
void tsms_http_global_cleanup(void);

/* POSTs the fields as application/x-www-form-urlencoded. TLS peer and host
 * verification on, HTTPS only, no redirects, no signals; nothing is taken from
 * the process environment (see http.c). The encoded body (it may hold
 * secrets) is wiped before returning. */
enum tsms_http_status tsms_http_post_form(const struct tsms_http_request *req,
                                          struct tsms_http_response *resp);

/* GETs req's url, as tsms_http_post_form does its POST (req's fields unused). */
enum tsms_http_status tsms_http_get(const struct tsms_http_request *req,
                                    struct tsms_http_response *resp);

/* Frees the body; resp may be zeroed or used. */
void tsms_http_response_clear(struct tsms_http_response *resp);

/* Size of the buffers of tsms_http_check_proxy and tsms_http_proxy_shown */
#define TSMS_HTTP_PROXY_MSG 200

/* Checks a proxy setting: http:// or https://, a host and a port, optional
 * user:password@, nothing else. Returns true, or false with the problem in
 * problem (which never repeats the credentials). */
bool tsms_http_check_proxy(const char *url, char problem[TSMS_HTTP_PROXY_MSG]);

/* The proxy as logs may show it: scheme, host and port; credentials become
 * "***@". url must have passed tsms_http_check_proxy. */
void tsms_http_proxy_shown(const char *url, char out[TSMS_HTTP_PROXY_MSG]);

/* Static name of a status ("transport", "TLS", "timeout", ...). */
const char *tsms_http_strstatus(enum tsms_http_status st);

#endif
