/* twilio.c - Twilio's Messages API (request fields and responses) and the
 * Messaging Service check */
#include "twilio.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "clock.h"
#include "http.h"
#include "log.h"
#include "otp.h"
#include "phone.h"

#define MESSAGES_PATH "/2010-04-01/Accounts/%s/Messages.json"

static void set_reason(struct tsms_twilio_result *res, const char *reason)
{
	snprintf(res->reason, sizeof(res->reason), "%s", reason);
}

static void copy_json_string(char *dst, size_t size, const cJSON *obj, const char *key)
{
	const cJSON *item = cJSON_GetObjectItemCaseSensitive(obj, key);

	tsms_sanitize(dst, size, cJSON_IsString(item) ? item->valuestring : "");
}

static bool is_message_sid(const char *s)
{
	size_t n = strlen(s);

	if (n < 3 || (strncmp(s, "SM", 2) != 0 && strncmp(s, "MM", 2) != 0))
		return false;
	for (size_t i = 2; i < n; i++) {
		if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f') ||
		      (s[i] >= 'A' && s[i] <= 'F')))
			return false;
	}
	return true;
}

/* Twilio's error body: {"code": 21211, "message": "...", "more_info": ..., "status": 400} */
static void read_error(const cJSON *root, struct tsms_twilio_result *res)
{
	const cJSON *code = cJSON_GetObjectItemCaseSensitive(root, "code");

	if (cJSON_IsNumber(code) && code->valuedouble >= 0 && code->valuedouble < 1e9)
		res->error_code = (long)code->valuedouble;
	copy_json_string(res->error_message, sizeof(res->error_message), root, "message");
	/* Twilio quotes the number it refused; logs show numbers masked */
	tsms_phone_mask_text(res->error_message);
}

/* Twilio's answer echoes the message ("body"), code and all: wiped before the
 * tree is freed. */
static void wipe_echoed_body(cJSON *root)
{
	cJSON *body = cJSON_GetObjectItemCaseSensitive(root, "body");

	if (cJSON_IsString(body) && body->valuestring != NULL)
		tsms_wipe(body->valuestring, strlen(body->valuestring));
}

enum tsms_err tsms_twilio_parse_response(long status, const char *body, size_t len,
                                         struct tsms_twilio_result *res)
{
	cJSON *root = cJSON_ParseWithLength(body != NULL ? body : "", body != NULL ? len : 0);
	enum tsms_err err;

	res->http_status = status;
	res->sid[0] = res->status[0] = res->error_message[0] = '\0';
	res->error_code = 0;
	if (cJSON_IsObject(root))
		read_error(root, res);
	if (status == 201) {
		char sid[sizeof(res->sid) + 1];

		copy_json_string(sid, sizeof(sid), root, "sid");
		if (cJSON_IsObject(root) && strlen(sid) < sizeof(res->sid) && is_message_sid(sid)) {
			memcpy(res->sid, sid, strlen(sid) + 1);
			copy_json_string(res->status, sizeof(res->status), root, "status");
			res->error_code = 0;
			res->error_message[0] = '\0';
			set_reason(res, "sent");
			err = TSMS_OK;
		} else {
			/* the message may or may not have gone: treat as an outage, never retry */
			snprintf(res->error_message, sizeof(res->error_message),
			         "no message sid in the body");
			set_reason(res, "unreadable Twilio response");
			err = TSMS_ERR_UNAVAILABLE;
		}
	} else if (status == 429) {
		set_reason(res, "rate limited by Twilio");
		err = TSMS_ERR_UNAVAILABLE;
	} else if (status >= 500 && status <= 599) {
		set_reason(res, "Twilio 5xx");
		err = TSMS_ERR_UNAVAILABLE;
	} else {
		set_reason(res, status >= 400 && status <= 499 ? "Twilio rejected"
		                                               : "unexpected Twilio response");
		err = TSMS_ERR_REJECTED;
	}
	wipe_echoed_body(root);
	cJSON_Delete(root);
	return err;
}

#define SERVICE_PATH "/v1/Services/"

bool tsms_twilio_messaging_base(const char *api_base, char *out, size_t size)
{
	static const char api[] = "https://api.", suffix[] = ".twilio.com";
	size_t n = strlen(api_base), ns = strlen(suffix);
	bool twilio = strncasecmp(api_base, api, strlen(api)) == 0 && n >= strlen(api) - 1 + ns &&
	              strcasecmp(api_base + n - ns, suffix) == 0 &&
	              strpbrk(api_base + strlen("https://"), ":/") == NULL;
	int w;

	if (twilio) { /* "https://api.twilio.com": the default, its "." is the suffix's */
		w = snprintf(out, size, "https://messaging%s", api_base + strlen(api) - 1);
	} else {
		const char *host = api_base + strlen("https://");
		size_t hn = strcspn(host, ":/");

		/* on twilio.com, but not an API host name as Twilio writes them */
		if ((hn >= ns && strncasecmp(host + hn - ns, suffix, ns) == 0) ||
		    (hn == ns - 1 && strncasecmp(host, suffix + 1, hn) == 0))
			return false;
		w = snprintf(out, size, "%s", api_base);
	}
	return w >= 0 && (size_t)w < size;
}

enum tsms_service_verdict tsms_twilio_parse_service(long status, const char *body, size_t len,
                                                    const char *sid,
                                                    struct tsms_twilio_service *res)
{
	cJSON *root = cJSON_ParseWithLength(body != NULL ? body : "", body != NULL ? len : 0);
	const cJSON *code = cJSON_GetObjectItemCaseSensitive(root, "code");
	const cJSON *got = cJSON_GetObjectItemCaseSensitive(root, "sid");

	res->http_status = status;
	res->error_code = 0;
	res->error_message[0] = res->friendly_name[0] = '\0';
	if (cJSON_IsObject(root) && status != 200) {
		if (cJSON_IsNumber(code) && code->valuedouble >= 0 && code->valuedouble < 1e9)
			res->error_code = (long)code->valuedouble;
		copy_json_string(res->error_message, sizeof(res->error_message), root, "message");
	}
	if (status == 200 && cJSON_IsString(got) && strcmp(got->valuestring, sid) == 0) {
		copy_json_string(res->friendly_name, sizeof(res->friendly_name), root,
		                 "friendly_name");
		res->verdict = TSMS_SERVICE_OK;
	} else if (status == 200) {
		snprintf(res->error_message, sizeof(res->error_message),
		         "the answer does not hold the service");
		res->verdict = TSMS_SERVICE_UNEXPECTED;
	} else if (status == 401 || res->error_code == 20003) {
		res->verdict = TSMS_SERVICE_BAD_CREDENTIAL;
	} else if (status == 404) {
		res->verdict = TSMS_SERVICE_NOT_FOUND;
	} else if (status == 403) {
		res->verdict = TSMS_SERVICE_FORBIDDEN;
	} else {
		res->verdict = TSMS_SERVICE_UNEXPECTED;
	}
	cJSON_Delete(root);
	return res->verdict;
}

enum tsms_service_verdict tsms_twilio_check_service(const struct tsms_config *cfg,
                                                    struct tsms_twilio_service *res)
{
	struct tsms_http_request req = {
		.username = tsms_config_basic_user(cfg),
		.password = tsms_config_secret(cfg),
		.ca_pem = cfg->ca_pem,
		.ca_pem_len = cfg->ca_pem_len,
		.proxy = cfg->proxy,
		.timeout_ms = cfg->timeout_seconds * 1000L,
	};
	struct tsms_http_response resp;
	enum tsms_http_status st;
	char base[512];

	memset(res, 0, sizeof(*res));
	if (!tsms_twilio_messaging_base(cfg->api_base_url, base, sizeof(base)) ||
	    snprintf(res->url, sizeof(res->url), "%s" SERVICE_PATH "%s", base,
	             cfg->messaging_service_sid) >= (int)sizeof(res->url)) {
		tsms_format_clean(res->error_message, sizeof(res->error_message),
		                  "the Messaging API's host for %s is not known",
		                  cfg->api_base_url);
		res->url[0] = '\0';
		res->verdict = TSMS_SERVICE_UNKNOWN_HOST;
		return res->verdict;
	}
	req.url = res->url;
	st = tsms_http_get(&req, &resp);
	if (st == TSMS_HTTP_OK) {
		tsms_twilio_parse_service(resp.status, resp.body, resp.body_len,
		                          cfg->messaging_service_sid, res);
	} else {
		tsms_format_clean(res->error_message, sizeof(res->error_message), "%s failure: %s",
		                  tsms_http_strstatus(st), resp.error);
		res->verdict = TSMS_SERVICE_UNREACHABLE;
	}
	tsms_http_response_clear(&resp);
	return res->verdict;
}

const char *tsms_twilio_code_name(long code)
{
	switch (code) {
	case 20003:
		return "bad credentials";
	case 20429:
		return "too many requests";
	case 21211:
		return "invalid number";
	case 21408:
		return "region not enabled";
	case 21610:
		return "unsubscribed recipient";
	case 21614:
		return "not a mobile number";
	}
	return NULL;
}

/* How long to wait before retrying after attempt (0-based) failed with st/err,
 * or -1 when it must not be retried: a request that may have reached Twilio is
 * sent again only when Twilio said so (429) or failed for sure (500, 503). */
static long long retry_wait_ms(enum tsms_http_status st, enum tsms_err err,
                               const struct tsms_http_response *resp, unsigned attempt)
{
	long long base = 200LL << attempt;

	if (st == TSMS_HTTP_OK && err == TSMS_ERR_UNAVAILABLE && resp->status == 429 &&
	    resp->retry_after > 0)
		return resp->retry_after * 1000LL;
	if ((st == TSMS_HTTP_CONNECT) ||
	    (st == TSMS_HTTP_OK &&
	     (resp->status == 429 || resp->status == 500 || resp->status == 503)))
		return base + tsms_random_below((unsigned)base); /* jitter spreads retries */
	return -1;
}

/* Whether the request of this attempt provably sent nothing (tsms_twilio_result). */
static bool sent_nothing(enum tsms_http_status st, const struct tsms_http_response *resp)
{
	switch (st) {
	case TSMS_HTTP_CONNECT:
	case TSMS_HTTP_TLS:
	case TSMS_HTTP_PROXY:
		return true;
	case TSMS_HTTP_OK:
		return resp->status >= 400 && resp->status <= 499;
	default:
		return false;
	}
}

static enum tsms_err post_once(const struct tsms_http_request *req, struct tsms_http_response *resp,
                               enum tsms_http_status *st, struct tsms_twilio_result *res)
{
	*st = tsms_http_post_form(req, resp);
	switch (*st) {
	case TSMS_HTTP_OK:
		return tsms_twilio_parse_response(resp->status, resp->body, resp->body_len, res);
	case TSMS_HTTP_NOMEM:
		set_reason(res, "out of memory");
		return TSMS_ERR_NOMEM;
	default:
		res->http_status = 0;
		res->error_code = 0;
		tsms_sanitize(res->error_message, sizeof(res->error_message), resp->error);
		snprintf(res->reason, sizeof(res->reason), "%s failure", tsms_http_strstatus(*st));
		return TSMS_ERR_UNAVAILABLE;
	}
}

enum tsms_err tsms_twilio_send(const struct tsms_config *cfg, const char *to, const char *body,
                               struct tsms_twilio_result *res)
{
	char validity[12];
	/* Twilio drops a text still queued when the code it carries has expired:
	 * the code lives codeTtlSeconds from now (1 to 3600, inside Twilio's 36000) */
	struct tsms_http_field fields[5] = {
		{ "To", to },
		{ "MessagingServiceSid", cfg->messaging_service_sid },
		{ "Body", body },
		{ "ValidityPeriod", validity },
		{ "RiskCheck", "disable" },
	};
	struct tsms_http_request req = {
		.username = tsms_config_basic_user(cfg),
		.password = tsms_config_secret(cfg),
		.fields = fields,
		.n_fields = cfg->disable_risk_check ? 5 : 4,
		.ca_pem = cfg->ca_pem,
		.ca_pem_len = cfg->ca_pem_len,
		.proxy = cfg->proxy,
	};
	long long deadline = tsms_clock_ms() + cfg->timeout_seconds * 1000LL;
	enum tsms_err err = TSMS_ERR_UNAVAILABLE;
	char url[600];

	bool nothing_sent = true;

	memset(res, 0, sizeof(*res));
	snprintf(validity, sizeof(validity), "%u", cfg->code_ttl_seconds);
	snprintf(url, sizeof(url), "%s" MESSAGES_PATH, cfg->api_base_url, cfg->account_sid);
	req.url = url;
	for (unsigned attempt = 0;; attempt++) {
		struct tsms_http_response resp;
		enum tsms_http_status st;
		long long wait;

		req.timeout_ms = (long)(deadline - tsms_clock_ms());
		err = post_once(&req, &resp, &st, res);
		res->attempts = attempt + 1;
		nothing_sent = nothing_sent && err != TSMS_OK && sent_nothing(st, &resp);
		res->nothing_sent = nothing_sent;
		wait = err == TSMS_OK ? -1 : retry_wait_ms(st, err, &resp, attempt);
		tsms_http_response_clear(&resp);
		/* a retry must leave its request some time inside the budget */
		if (wait < 0 || attempt >= cfg->max_retries ||
		    tsms_clock_ms() + wait + 100 >= deadline)
			break;
		struct timespec ts = { .tv_sec = wait / 1000, .tv_nsec = (wait % 1000) * 1000000 };
		while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
			;
	}
	return err;
}
