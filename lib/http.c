/* http.c - HTTPS form POST and GET (the only libcurl user, and so of OpenSSL beneath it) */
#include "http.h"

#include <curl/curl.h>
#include <malloc.h>
#include <openssl/ssl.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "environ.h"
#include "log.h"
#include "otp.h"

#define USER_AGENT "pam_twilio_sms/" TSMS_VERSION

#ifndef TSMS_VERSION
#define TSMS_VERSION "0"
#endif

/*
 * The caller's environment never steers a request (see environ.h for why).
 * Every getenv() of libcurl 7.88.1 (lib/, Debian's OpenSSL build) and of
 * OpenSSL 3.0 (libcrypto, libssl) that a request can reach, and what stops it.
 * First line of defence for all of them: curl_global_init, the transfer and
 * curl_global_cleanup run with the environment hidden (tsms_environ_hide).
 * Second, each is also pinned through the API where the API allows:
 *
 *   SSLKEYLOGFILE         libcurl opens (creates, appends to) it in curl_global_init
 *                         and writes every TLS secret there. No option stops the open:
 *                         the hidden environment does; setup_tls() below also drops
 *                         the key log callback from every TLS context, for a host
 *                         program that initialised libcurl itself beforehand.
 *   http_proxy https_proxy HTTPS_PROXY all_proxy ALL_PROXY
 *                         read per connection unless CURLOPT_PROXY is set: it is, to
 *                         the config's proxy or to "" (no proxy).
 *   no_proxy NO_PROXY     read per connection unless CURLOPT_NOPROXY is set: "".
 *   HOME (.netrc)         only with CURLOPT_NETRC: set to CURL_NETRC_IGNORED.
 *   HOME (ssh keys), NTLMUSER, LOGNAME, USER
 *                         only for scp/sftp and NTLM_WB: HTTPS is the only protocol
 *                         (also after redirects, which are off) and Basic the only
 *                         authentication.
 *   CURL_SSL_BACKEND, CURL_CA_BUNDLE, SSL_CERT_FILE, SSL_CERT_DIR, CURL_HOME
 *                         not read by this build of the library (single TLS backend;
 *                         the others are the curl tool's).
 *   OPENSSL_CONF OPENSSL_CONF_INCLUDE OPENSSL_MODULES OPENSSL_ENGINES SSL_CERT_FILE
 *   SSL_CERT_DIR CTLOG_FILE RANDFILE
 *                         OpenSSL reads these with secure_getenv(): ignored in setuid
 *                         programs; hidden from the others while libcurl initialises
 *                         OpenSSL. What is trusted is caFile (CURLOPT_CAINFO_BLOB,
 *                         with CURLOPT_CAPATH cleared) or the system's: libcurl's
 *                         built-in directory, or its built-in bundle when it has none.
 *   OPENSSL_ia32cap (and the other CPU masks: OPENSSL_armcap, OPENSSL_ppccap,
 *   OPENSSL_s390xcap, OPENSSL_sparcv9cap)
 *                         read by libcrypto's constructor when the module is loaded,
 *                         before any code of ours runs: no API undoes it, so
 *                         tsms_http_unsafe_environment() names it and the module
 *                         refuses to run.
 *   RES_OPTIONS LOCALDOMAIN HOSTALIASES (glibc's resolver)
 *                         removed by the dynamic loader from setuid programs, and
 *                         hidden during the transfer.
 */

/* Variables that were read before the environment could be hidden (above). */
static const char *const unsafe_variables[] = {
	"OPENSSL_ia32cap",  "OPENSSL_armcap",     "OPENSSL_ppccap",
	"OPENSSL_s390xcap", "OPENSSL_sparcv9cap",
};

const char *tsms_http_unsafe_environment(void)
{
	for (size_t i = 0; i < sizeof(unsafe_variables) / sizeof(unsafe_variables[0]); i++) {
		if (getenv(unsafe_variables[i]) != NULL)
			return unsafe_variables[i];
	}
	return NULL;
}

/*
 * libcurl's own allocations go through these while the module has it
 * initialised: a block is wiped before it goes back to the allocator, so
 * libcurl's copies of the credential (CURLOPT_USERNAME/PASSWORD, the
 * Authorization header it builds, its request buffer) and of the proxy's
 * password do not stay in freed memory of sshd or sudo. Plain malloc blocks
 * (glibc's malloc_usable_size gives their size), so a block freed by either
 * side is freed rightly.
 */
static void wiping_free(void *p)
{
	if (p != NULL) {
		tsms_wipe(p, malloc_usable_size(p));
		free(p);
	}
}

/* Never realloc(): a block it moves would be freed unwiped. */
static void *wiping_realloc(void *p, size_t size)
{
	size_t old;
	void *q;

	if (p == NULL)
		return malloc(size);
	if (size == 0) {
		wiping_free(p);
		return NULL;
	}
	old = malloc_usable_size(p);
	if (size <= old)
		return p; /* shrinking: the tail is wiped with the block */
	q = malloc(size);
	if (q != NULL) {
		memcpy(q, p, old);
		wiping_free(p);
	}
	return q;
}

int tsms_http_global_init(void)
{
	struct tsms_environ env;
	CURLcode rc;

	/* reference counted, and thread-safe since libcurl 7.84 (Debian 12 ships 7.88):
	 * each init is paired with a cleanup, so a host program's own use of libcurl
	 * keeps working and the module leaves nothing initialised behind. The first
	 * init opens SSLKEYLOGFILE and loads OpenSSL's config: hidden from both. When
	 * the host program has libcurl initialised already, its allocation functions
	 * stay (libcurl changes them only on a first init). */
	tsms_environ_hide(&env);
	rc = curl_global_init_mem(CURL_GLOBAL_DEFAULT, malloc, wiping_free, wiping_realloc, strdup,
	                          calloc);
	tsms_environ_restore(&env);
	return rc == CURLE_OK ? 0 : -1;
}

void tsms_http_global_cleanup(void)
{
	struct tsms_environ env;

	tsms_environ_hide(&env);
	curl_global_cleanup();
	/* libcurl keeps the last allocation functions it was given after its last
	 * cleanup; a host program that calls it later without an init of its own
	 * must not call into this module, which PAM may have unloaded by then. So
	 * the C library's are given back (an init that sets nothing up). */
	if (curl_global_init_mem(CURL_GLOBAL_NOTHING, malloc, free, realloc, strdup, calloc) ==
	    CURLE_OK)
		curl_global_cleanup();
	tsms_environ_restore(&env);
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
	case TSMS_HTTP_PROXY:
		return "proxy";
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
	grown = wiping_realloc(s->buf, s->len + n + 1); /* Twilio echoes the code back */
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

/* CURLOPT_SSL_CTX_FUNCTION: no TLS secret is ever written to a key log file,
 * even one that a host program's own earlier curl_global_init opened; and
 * OpenSSL wipes what it decrypted once libcurl has it (Twilio's answer echoes
 * the message, code and all), instead of keeping it in its read buffer. */
static CURLcode setup_tls(CURL *curl, void *ssl_ctx, void *userp)
{
	(void)curl;
	(void)userp;
	SSL_CTX_set_keylog_callback(ssl_ctx, NULL);
	SSL_CTX_set_options(ssl_ctx, SSL_OP_CLEANSE_PLAINTEXT);
	return CURLE_OK;
}

/* Sets one option of the handle `curl` unless an earlier one failed (CURLcode rc). */
#define SET(opt, val)                                          \
	do {                                                   \
		if (rc == CURLE_OK)                            \
			rc = curl_easy_setopt(curl, opt, val); \
	} while (0)

/* Where the request may go and what it trusts: only what req says. Every
 * option here also keeps libcurl from consulting the environment for it. */
static CURLcode set_route(CURL *curl, const struct tsms_http_request *req)
{
	struct curl_blob ca = {
		.data = (void *)(uintptr_t)req->ca_pem,
		.len = req->ca_pem_len,
		.flags = CURL_BLOB_COPY,
	};
	char *system_dir = NULL;
	CURLcode rc = CURLE_OK;

	/* Without caFile the system's trust is read through its hashed directory
	 * when libcurl was built with one (Debian: /etc/ssl/certs), not its bundle:
	 * OpenSSL 3.0 parses every certificate of a CA file for every handshake
	 * (Debian's 145: 239 M instructions, 28 ms of CPU a login), while a directory
	 * gives only the issuers the chain names. update-ca-certificates writes both
	 * from the same certificates. */
	if (req->ca_pem == NULL &&
	    curl_easy_getinfo(curl, CURLINFO_CAPATH, &system_dir) != CURLE_OK)
		system_dir = NULL;

	/* "" is no proxy at all: the *_proxy variables are then never read */
	SET(CURLOPT_PROXY, req->proxy != NULL ? req->proxy : "");
	/* "" is no exception: no_proxy / NO_PROXY are then never read */
	SET(CURLOPT_NOPROXY, "");
	SET(CURLOPT_NETRC, (long)CURL_NETRC_IGNORED);
	SET(CURLOPT_SSL_CTX_FUNCTION, setup_tls);
	SET(CURLOPT_SSL_VERIFYPEER, 1L);
	SET(CURLOPT_SSL_VERIFYHOST, 2L);
	SET(CURLOPT_SSLVERSION, (long)CURL_SSLVERSION_TLSv1_2);
	if (req->ca_pem != NULL) {
		/* the bundle the config checked, from memory: no path to swap after the
		 * check, and the built-in bundle and directory are not added to it */
		SET(CURLOPT_CAINFO, (char *)NULL);
		SET(CURLOPT_CAPATH, (char *)NULL);
		SET(CURLOPT_CAINFO_BLOB, &ca);
	} else if (system_dir != NULL) {
		SET(CURLOPT_CAINFO, (char *)NULL);
	}
	if (req->proxy != NULL) {
		/* a CONNECT tunnel: TLS with Twilio end to end, verified as without a
		 * proxy; an https:// proxy is verified against the same trust */
		SET(CURLOPT_HTTPPROXYTUNNEL, 1L);
		SET(CURLOPT_PROXYAUTH, (long)CURLAUTH_BASIC);
		SET(CURLOPT_PROXY_SSL_VERIFYPEER, 1L);
		SET(CURLOPT_PROXY_SSL_VERIFYHOST, 2L);
		SET(CURLOPT_PROXY_SSLVERSION, (long)CURL_SSLVERSION_TLSv1_2);
		if (req->ca_pem != NULL) {
			SET(CURLOPT_PROXY_CAINFO, (char *)NULL);
			SET(CURLOPT_PROXY_CAPATH, (char *)NULL);
			SET(CURLOPT_PROXY_CAINFO_BLOB, &ca);
		} else if (system_dir != NULL) {
			SET(CURLOPT_PROXY_CAINFO, (char *)NULL);
		}
	}
	return rc;
}

static CURLcode set_options(CURL *curl, const struct tsms_http_request *req, const char *form,
                            struct curl_slist *headers, struct sink *sink, char *errbuf)
{
	long budget_ms = req->timeout_ms > 0 ? req->timeout_ms : 1;
	CURLcode rc = set_route(curl, req);

	SET(CURLOPT_ERRORBUFFER, errbuf);
	SET(CURLOPT_URL, req->url);
	SET(CURLOPT_PROTOCOLS_STR, "https");
	SET(CURLOPT_REDIR_PROTOCOLS_STR, "https");
	SET(CURLOPT_FOLLOWLOCATION, 0L);
	SET(CURLOPT_NOSIGNAL, 1L); /* no SIGALRM games inside sshd or sudo */
	SET(CURLOPT_CONNECTTIMEOUT_MS, budget_ms);
	SET(CURLOPT_TIMEOUT_MS, budget_ms);
	SET(CURLOPT_HTTPAUTH, (long)CURLAUTH_BASIC);
	SET(CURLOPT_USERNAME, req->username);
	SET(CURLOPT_PASSWORD, req->password);
	SET(CURLOPT_USERAGENT, USER_AGENT);
	SET(CURLOPT_HTTPHEADER, headers);
	if (form != NULL) {
		SET(CURLOPT_POSTFIELDS, form);
		SET(CURLOPT_POSTFIELDSIZE, (long)strlen(form));
	} else {
		SET(CURLOPT_HTTPGET, 1L);
	}
	SET(CURLOPT_HEADERFUNCTION, on_header);
	SET(CURLOPT_HEADERDATA, sink);
	SET(CURLOPT_WRITEFUNCTION, on_data);
	SET(CURLOPT_WRITEDATA, sink);
	SET(CURLOPT_MAXFILESIZE, (long)TSMS_HTTP_MAX_RESPONSE);
	return rc;
}

#undef SET

/* A failed transfer through the proxy: a refused CONNECT becomes
 * TSMS_HTTP_PROXY, and every message names the proxy (never its password). */
static enum tsms_http_status proxy_failure(CURL *curl, const struct tsms_http_request *req,
                                           enum tsms_http_status st,
                                           struct tsms_http_response *resp)
{
	char shown[TSMS_HTTP_PROXY_MSG], why[sizeof(resp->error)];
	long connect_code = 0;

	tsms_http_proxy_shown(req->proxy, shown);
	snprintf(why, sizeof(why), "%s", resp->error);
	if (curl_easy_getinfo(curl, CURLINFO_HTTP_CONNECTCODE, &connect_code) == CURLE_OK &&
	    connect_code != 0 && connect_code != 200) {
		tsms_format_clean(resp->error, sizeof(resp->error),
		                  "proxy %s answered CONNECT with HTTP %ld", shown, connect_code);
		return TSMS_HTTP_PROXY;
	}
	tsms_format_clean(resp->error, sizeof(resp->error), "via proxy %s: %s", shown, why);
	return st;
}

/* One request: a form POST of req's fields, or a GET (post false). */
static enum tsms_http_status perform(const struct tsms_http_request *req, bool post,
                                     struct tsms_http_response *resp)
{
	enum tsms_http_status st = TSMS_HTTP_NOMEM;
	char errbuf[CURL_ERROR_SIZE] = "";
	struct curl_slist *headers = NULL, *h;
	struct sink sink = { .retry_after = -1 };
	char *form = NULL;
	CURL *curl;
	CURLcode rc;

	curl = curl_easy_init();
	if (curl == NULL)
		goto out;
	if (post) {
		form = encode_form(curl, req->fields, req->n_fields);
		if (form == NULL)
			goto out;
	}
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
		if (req->proxy != NULL && st != TSMS_HTTP_NOMEM)
			st = proxy_failure(curl, req, st, resp);
	}
out:
	wiping_free(sink.buf);
	tsms_free_secret(form);
	curl_slist_free_all(headers);
	curl_easy_cleanup(curl);
	return st;
}

static enum tsms_http_status request(const struct tsms_http_request *req, bool post,
                                     struct tsms_http_response *resp)
{
	struct tsms_environ env;
	enum tsms_http_status st;

	memset(resp, 0, sizeof(*resp));
	resp->retry_after = -1;
	/* hidden for the whole transfer: OpenSSL loads its config on first use and
	 * the resolver reads RES_OPTIONS and LOCALDOMAIN */
	tsms_environ_hide(&env);
	st = perform(req, post, resp);
	tsms_environ_restore(&env);
	if (st == TSMS_HTTP_NOMEM && resp->error[0] == '\0')
		snprintf(resp->error, sizeof(resp->error), "out of memory");
	return st;
}

enum tsms_http_status tsms_http_post_form(const struct tsms_http_request *req,
                                          struct tsms_http_response *resp)
{
	return request(req, true, resp);
}

enum tsms_http_status tsms_http_get(const struct tsms_http_request *req,
                                    struct tsms_http_response *resp)
{
	return request(req, false, resp);
}

/* The parts of a proxy URL; curl_url_get(CURLUPART_*) gives each, NULL when absent. */
struct proxy_parts {
	char *scheme, *user, *password, *options, *host, *port, *path, *query, *fragment;
};

static void proxy_parts_free(struct proxy_parts *p)
{
	curl_free(p->scheme);
	if (p->password != NULL)
		tsms_wipe(p->password, strlen(p->password));
	curl_free(p->user);
	curl_free(p->password);
	curl_free(p->options);
	curl_free(p->host);
	curl_free(p->port);
	curl_free(p->path);
	curl_free(p->query);
	curl_free(p->fragment);
}

/* Splits url with libcurl's own parser (the one the request will use), with
 * libcurl initialised by the module, so that its copies of the password are
 * wiped. Returns false when libcurl cannot parse it. */
static bool proxy_parse(const char *url, struct proxy_parts *p)
{
	CURLU *u;
	bool ok;

	memset(p, 0, sizeof(*p));
	if (tsms_http_global_init() != 0)
		return false;
	u = curl_url();
	if (u == NULL) {
		tsms_http_global_cleanup();
		return false;
	}
	/* no CURLU_GUESS_SCHEME and no CURLU_DEFAULT_SCHEME: the scheme is required */
	ok = curl_url_set(u, CURLUPART_URL, url, 0) == CURLUE_OK;
	if (ok) {
		curl_url_get(u, CURLUPART_SCHEME, &p->scheme, 0);
		curl_url_get(u, CURLUPART_USER, &p->user, 0);
		curl_url_get(u, CURLUPART_PASSWORD, &p->password, 0);
		curl_url_get(u, CURLUPART_OPTIONS, &p->options, 0);
		curl_url_get(u, CURLUPART_HOST, &p->host, 0);
		curl_url_get(u, CURLUPART_PORT, &p->port, 0);
		curl_url_get(u, CURLUPART_PATH, &p->path, 0);
		curl_url_get(u, CURLUPART_QUERY, &p->query, 0);
		curl_url_get(u, CURLUPART_FRAGMENT, &p->fragment, 0);
	}
	curl_url_cleanup(u);
	tsms_http_global_cleanup();
	return ok;
}

bool tsms_http_check_proxy(const char *url, char problem[TSMS_HTTP_PROXY_MSG])
{
	struct proxy_parts p;
	const char *why = NULL;

	problem[0] = '\0';
	if (strlen(url) > 1024)
		why = "is longer than 1024 characters";
	else if (strncasecmp(url, "http://", 7) != 0 && strncasecmp(url, "https://", 8) != 0)
		why = "does not start with http:// or https://";
	if (why == NULL && !proxy_parse(url, &p))
		why = "is not a URL libcurl can parse";
	else if (why == NULL) {
		if (p.host == NULL || p.host[0] == '\0')
			why = "has no host";
		else if (p.port == NULL)
			why = "has no port";
		else if ((p.user == NULL) != (p.password == NULL) ||
		         (p.user != NULL && p.user[0] == '\0'))
			why = "has a user without a password (or a password without a user)";
		else if (p.options != NULL || (p.path != NULL && strcmp(p.path, "/") != 0) ||
		         p.query != NULL || p.fragment != NULL)
			why = "has more than scheme, credentials, host and port";
		proxy_parts_free(&p);
	}
	if (why != NULL)
		snprintf(problem, TSMS_HTTP_PROXY_MSG, "%s", why);
	return why == NULL;
}

void tsms_http_proxy_shown(const char *url, char out[TSMS_HTTP_PROXY_MSG])
{
	struct proxy_parts p;

	if (!proxy_parse(url, &p)) {
		snprintf(out, TSMS_HTTP_PROXY_MSG, "(unparsable)");
		return;
	}
	snprintf(out, TSMS_HTTP_PROXY_MSG, "%s://%s%s:%s", p.scheme != NULL ? p.scheme : "?",
	         p.user != NULL ? "***@" : "", p.host != NULL ? p.host : "?",
	         p.port != NULL ? p.port : "?");
	proxy_parts_free(&p);
}

void tsms_http_response_clear(struct tsms_http_response *resp)
{
	wiping_free(resp->body);
	resp->body = NULL;
	resp->body_len = 0;
}
