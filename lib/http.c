/* http.c - HTTPS form POST (the only libcurl user) */
#include "http.h"

#include <curl/curl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "otp.h"

#define USER_AGENT "pam_twilio_sms/" TSMS_VERSION

#ifndef TSMS_VERSION
#define TSMS_VERSION "0"
#endif

int tsms_http_global_init(void)
{
	/* reference counted, and thread-safe since libcurl 7.84 (Debian 12 ships 7.88):
	 * each init is paired with a cleanup, so a host program's own use of libcurl
	 * keeps working and the module leaves nothing initialised behind */
	return curl_global_init(CURL_GLOBAL_DEFAULT) == CURLE_OK ? 0 : -1;
}

void tsms_http_global_cleanup(void)
{
	curl_global_cleanup();
}

const char *tsms_http_strstatus(enum tsms_http_status st)
{
	switch (st) {
	case TSMS_HTTP_OK:
		return "ok";
	case TSMS_HTTP_CONNECT:
		return "connect";
	case TSMS_HTTP_TRANSPORT:
		return "transport";
	case TSMS_HTTP_TLS:
		return "TLS";
	case TSMS_HTTP_TIMEOUT:
		return "timeout";
	case TSMS_HTTP_TOO_BIG:
		return "response too large";
	case TSMS_HTTP_NOMEM:
		return "out of memory";
	}
	return "unknown";
}

struct sink {
	char *buf;
	size_t len;
	bool too_big;
	long retry_after;
};

/* Keeps "Retry-After: <seconds>" (Twilio sends seconds, not dates). */
static size_t on_header(char *data, size_t size, size_t nitems, void *userp)
{
	static const char name[] = "retry-after:";
	struct sink *s = userp;
	size_t n = size * nitems;

	if (n > sizeof(name) - 1 && strncasecmp(data, name, sizeof(name) - 1) == 0) {
		long v = 0;
		size_t i = sizeof(name) - 1;

		while (i < n && (data[i] == ' ' || data[i] == '\t'))
			i++;
		if (i < n && data[i] >= '0' && data[i] <= '9') {
			for (; i < n && data[i] >= '0' && data[i] <= '9' && v < 86400; i++)
				v = v * 10 + (data[i] - '0');
			s->retry_after = v;
		}
	}
	return n;
}

static size_t on_data(char *data, size_t size, size_t nmemb, void *userp)
{
	struct sink *s = userp;
	size_t n = size * nmemb;
	char *grown;

	if (n > TSMS_HTTP_MAX_RESPONSE - s->len) {
		s->too_big = true;
		return 0; /* aborts the transfer */
	}
	grown = realloc(s->buf, s->len + n + 1);
	if (grown == NULL)
		return 0;
	s->buf = grown;
	memcpy(s->buf + s->len, data, n);
	s->len += n;
	s->buf[s->len] = '\0';
	return n;
}

/* Returns the fields as one new form-urlencoded string (free with
 * tsms_free_secret: values may be secrets), or NULL. */
static char *encode_form(CURL *curl, const struct tsms_http_field *fields, size_t n)
{
	char *out = NULL, *name = NULL, *value = NULL;
	size_t len = 0;

	for (size_t i = 0; i < n; i++) {
		size_t add;
		char *grown;

		name = curl_easy_escape(curl, fields[i].name, 0);
		value = curl_easy_escape(curl, fields[i].value, 0);
		if (name == NULL || value == NULL)
			goto fail;
		add = strlen(name) + 1 + strlen(value) + (i > 0);
		grown = malloc(len + add + 1);
		if (grown == NULL)
			goto fail;
		if (out != NULL)
			memcpy(grown, out, len);
		snprintf(grown + len, add + 1, "%s%s=%s", i > 0 ? "&" : "", name, value);
		tsms_free_secret(out);
		out = grown;
		len += add;
		curl_free(name);
		tsms_wipe(value, strlen(value));
		curl_free(value);
		name = value = NULL;
	}
	return out != NULL ? out : strdup("");
fail:
	curl_free(name);
	if (value != NULL)
		tsms_wipe(value, strlen(value));
	curl_free(value);
	tsms_free_secret(out);
	return NULL;
}

static enum tsms_http_status classify(CURLcode rc, const struct sink *s)
{
	switch (rc) {
	case CURLE_OK:
		return TSMS_HTTP_OK;
	case CURLE_OPERATION_TIMEDOUT:
		return TSMS_HTTP_TIMEOUT;
	case CURLE_OUT_OF_MEMORY:
		return TSMS_HTTP_NOMEM;
	case CURLE_COULDNT_RESOLVE_PROXY:
	case CURLE_COULDNT_RESOLVE_HOST:
	case CURLE_COULDNT_CONNECT:
		return TSMS_HTTP_CONNECT;
	case CURLE_WRITE_ERROR:
		return s->too_big ? TSMS_HTTP_TOO_BIG : TSMS_HTTP_NOMEM;
	case CURLE_FILESIZE_EXCEEDED: /* Content-Length over CURLOPT_MAXFILESIZE */
		return TSMS_HTTP_TOO_BIG;
	case CURLE_SSL_CONNECT_ERROR:
	case CURLE_PEER_FAILED_VERIFICATION:
	case CURLE_SSL_CERTPROBLEM:
	case CURLE_SSL_CIPHER:
	case CURLE_SSL_CACERT_BADFILE:
	case CURLE_SSL_ISSUER_ERROR:
	case CURLE_SSL_INVALIDCERTSTATUS:
	case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
	case CURLE_SSL_ENGINE_INITFAILED:
	case CURLE_USE_SSL_FAILED:
		return TSMS_HTTP_TLS;
	default:
		return TSMS_HTTP_TRANSPORT;
	}
}

static CURLcode set_options(CURL *curl, const struct tsms_http_request *req, const char *form,
                            struct curl_slist *headers, struct sink *sink, char *errbuf)
{
	long budget_ms = req->timeout_ms > 0 ? req->timeout_ms : 1;
	CURLcode rc = CURLE_OK;

#define SET(opt, val)                                          \
	do {                                                   \
		if (rc == CURLE_OK)                            \
			rc = curl_easy_setopt(curl, opt, val); \
	} while (0)
	SET(CURLOPT_ERRORBUFFER, errbuf);
	SET(CURLOPT_URL, req->url);
	SET(CURLOPT_PROTOCOLS_STR, "https");
	SET(CURLOPT_REDIR_PROTOCOLS_STR, "https");
	SET(CURLOPT_FOLLOWLOCATION, 0L);
	SET(CURLOPT_NOSIGNAL, 1L); /* no SIGALRM games inside sshd or sudo */
	SET(CURLOPT_CONNECTTIMEOUT_MS, budget_ms);
	SET(CURLOPT_TIMEOUT_MS, budget_ms);
	SET(CURLOPT_SSL_VERIFYPEER, 1L);
	SET(CURLOPT_SSL_VERIFYHOST, 2L);
	SET(CURLOPT_SSLVERSION, (long)CURL_SSLVERSION_TLSv1_2);
	if (req->ca_file != NULL)
		SET(CURLOPT_CAINFO, req->ca_file);
	SET(CURLOPT_HTTPAUTH, (long)CURLAUTH_BASIC);
	SET(CURLOPT_USERNAME, req->username);
	SET(CURLOPT_PASSWORD, req->password);
	SET(CURLOPT_USERAGENT, USER_AGENT);
	SET(CURLOPT_HTTPHEADER, headers);
	SET(CURLOPT_POSTFIELDS, form);
	SET(CURLOPT_POSTFIELDSIZE, (long)strlen(form));
	SET(CURLOPT_HEADERFUNCTION, on_header);
	SET(CURLOPT_HEADERDATA, sink);
	SET(CURLOPT_WRITEFUNCTION, on_data);
	SET(CURLOPT_WRITEDATA, sink);
	SET(CURLOPT_MAXFILESIZE, (long)TSMS_HTTP_MAX_RESPONSE);
#undef SET
	return rc;
}

enum tsms_http_status tsms_http_post_form(const struct tsms_http_request *req,
                                          struct tsms_http_response *resp)
{
	enum tsms_http_status st = TSMS_HTTP_NOMEM;
	char errbuf[CURL_ERROR_SIZE] = "";
	struct curl_slist *headers = NULL, *h;
	struct sink sink = { .retry_after = -1 };
	char *form = NULL;
	CURL *curl;
	CURLcode rc;

	memset(resp, 0, sizeof(*resp));
	resp->retry_after = -1;
	curl = curl_easy_init();
	if (curl == NULL)
		goto out;
	form = encode_form(curl, req->fields, req->n_fields);
	if (form == NULL)
		goto out;
	/* no "Expect: 100-continue" round trip for long bodies */
	h = curl_slist_append(NULL, "Expect:");
	if (h == NULL)
		goto out;
	headers = h;
	h = curl_slist_append(headers, "Accept: application/json");
	if (h == NULL)
		goto out;
	rc = set_options(curl, req, form, headers, &sink, errbuf);
	if (rc == CURLE_OK)
		rc = curl_easy_perform(curl);
	st = classify(rc, &sink);
	if (st == TSMS_HTTP_OK) {
		curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &resp->status);
		resp->retry_after = sink.retry_after;
		resp->body = sink.buf != NULL ? sink.buf : strdup("");
		resp->body_len = sink.len;
		sink.buf = NULL;
		if (resp->body == NULL)
			st = TSMS_HTTP_NOMEM;
	} else {
		snprintf(resp->error, sizeof(resp->error), "%s",
		         errbuf[0] != '\0' ? errbuf : curl_easy_strerror(rc));
	}
out:
	if (st == TSMS_HTTP_NOMEM && resp->error[0] == '\0')
		snprintf(resp->error, sizeof(resp->error), "out of memory");
	free(sink.buf);
	tsms_free_secret(form);
	curl_slist_free_all(headers);
	curl_easy_cleanup(curl);
	return st;
}

void tsms_http_response_clear(struct tsms_http_response *resp)
{
	free(resp->body);
	resp->body = NULL;
	resp->body_len = 0;
}
