/* twilio.c - Twilio's Messages API: request fields and responses */
#include "twilio.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <string.h>

#include "http.h"
#include "log.h"
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
			         "HTTP %ld without a message sid in the body", status);
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
	cJSON_Delete(root);
	return err;
}

enum tsms_err tsms_twilio_send(const struct tsms_config *cfg, const char *to, const char *body,
                               struct tsms_twilio_result *res)
{
	struct tsms_http_field fields[4] = {
		{ "To", to },
		{ "MessagingServiceSid", cfg->messaging_service_sid },
		{ "Body", body },
		{ "RiskCheck", "disable" },
	};
	struct tsms_http_request req = {
		.username = cfg->account_sid,
		.password = cfg->auth_token,
		.fields = fields,
		.n_fields = cfg->disable_risk_check ? 4 : 3,
		.ca_file = cfg->ca_file,
		.timeout_seconds = (long)cfg->timeout_seconds,
	};
	struct tsms_http_response resp = { 0 };
	enum tsms_http_status st;
	enum tsms_err err;
	char url[600];

	memset(res, 0, sizeof(*res));
	snprintf(url, sizeof(url), "%s" MESSAGES_PATH, cfg->api_base_url, cfg->account_sid);
	req.url = url;
	st = tsms_http_post_form(&req, &resp);
	switch (st) {
	case TSMS_HTTP_OK:
		err = tsms_twilio_parse_response(resp.status, resp.body, resp.body_len, res);
		break;
	case TSMS_HTTP_NOMEM:
		set_reason(res, "out of memory");
		err = TSMS_ERR_NOMEM;
		break;
	default:
		tsms_sanitize(res->error_message, sizeof(res->error_message), resp.error);
		snprintf(res->reason, sizeof(res->reason), "%s failure", tsms_http_strstatus(st));
		err = TSMS_ERR_UNAVAILABLE;
		break;
	}
	tsms_http_response_clear(&resp);
	return err;
}
