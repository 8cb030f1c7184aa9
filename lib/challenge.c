/* challenge.c - one SMS challenge: generate, send, prompt, verify */
#include "challenge.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "otp.h"
#include "template.h"

static void say(struct tsms_outcome *outcome, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static void say(struct tsms_outcome *outcome, const char *fmt, ...)
{
	char raw[sizeof(outcome->reason)];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(raw, sizeof(raw), fmt, ap);
	va_end(ap);
	tsms_sanitize(outcome->reason, sizeof(outcome->reason), raw);
}

static int now_seconds(double *out)
{
	struct timespec ts;

	if (clock_gettime(CLOCK_MONOTONIC, &ts) != 0)
		return -1;
	*out = (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
	return 0;
}

static enum tsms_err send_code(const struct tsms_config *cfg, const struct tsms_template *tpl,
                               const char *phone, const struct tsms_code *code,
                               struct tsms_outcome *outcome)
{
	struct tsms_twilio_result res;
	enum tsms_err err;
	char *body;

	body = tsms_template_render(tpl->content, code->digits, NULL);
	if (body == NULL) {
		say(outcome, "out of memory");
		return TSMS_ERR_NOMEM;
	}
	err = tsms_twilio_send(cfg, phone, body, &res);
	tsms_free_secret(body);
	if (err == TSMS_OK) {
		snprintf(outcome->sid, sizeof(outcome->sid), "%s", res.sid);
		return TSMS_OK;
	}
	if (res.error_code != 0)
		say(outcome, "%s: Twilio error %ld: %s (HTTP %ld)", res.reason, res.error_code,
		    res.error_message, res.http_status);
	else if (res.http_status != 0)
		say(outcome, "%s: HTTP %ld%s%s", res.reason, res.http_status,
		    res.error_message[0] != '\0' ? ": " : "", res.error_message);
	else
		say(outcome, "%s: %s", res.reason, res.error_message);
	return err;
}

/* Asks until the right code, cfg->max_attempts wrong ones, or the deadline. */
static enum tsms_err verify_code(const struct tsms_config *cfg, const struct tsms_code *code,
                                 double deadline, const struct tsms_prompter *prompter,
                                 struct tsms_outcome *outcome)
{
	char prompt[96];
	double now;

	while (outcome->attempts < cfg->max_attempts) {
		char *answer = NULL;
		bool right;
		int rc;

		snprintf(prompt, sizeof(prompt),
		         "%sSMS code sent to %s: ", outcome->attempts > 0 ? "Wrong code. " : "",
		         outcome->masked_phone);
		rc = prompter->ask(prompter->ctx, prompt, &answer);
		if (rc != 0 || answer == NULL) {
			tsms_free_secret(answer);
			say(outcome, "conversation failed");
			return TSMS_ERR_CONV;
		}
		outcome->attempts++;
		right = tsms_otp_matches(code, answer);
		tsms_free_secret(answer);
		if (now_seconds(&now) != 0) {
			say(outcome, "clock unavailable");
			return TSMS_ERR_SYSTEM;
		}
		if (now > deadline) {
			say(outcome, "code expired (codeTtlSeconds=%u)", cfg->code_ttl_seconds);
			return TSMS_ERR_EXPIRED;
		}
		if (right) {
			say(outcome, "code accepted");
			return TSMS_OK;
		}
	}
	say(outcome, "wrong code (%u of %u attempts)", outcome->attempts, cfg->max_attempts);
	return TSMS_ERR_MAXTRIES;
}

enum tsms_err tsms_challenge_run(const struct tsms_config *cfg, const char *usage,
                                 const char *phone, const struct tsms_prompter *prompter,
                                 struct tsms_outcome *outcome)
{
	const struct tsms_template *tpl = tsms_config_template(cfg, usage);
	struct tsms_code code = { 0 };
	enum tsms_err err;
	double start;

	memset(outcome, 0, sizeof(*outcome));
	tsms_phone_mask(phone, outcome->masked_phone);
	if (tpl == NULL || !tsms_template_has_placeholder(tpl->content)) {
		say(outcome, "no %s or Generic template with {{code}}", usage);
		return TSMS_ERR_CONFIG;
	}
	if (tsms_crypto_init() != 0 || now_seconds(&start) != 0) {
		say(outcome, "libsodium or the clock is unavailable");
		return TSMS_ERR_SYSTEM;
	}
	if (tsms_otp_generate(&code, cfg->code_length) != 0) {
		say(outcome, "codeLength %u out of range", cfg->code_length);
		return TSMS_ERR_CONFIG;
	}
	err = send_code(cfg, tpl, phone, &code, outcome);
	if (err == TSMS_OK)
		err = verify_code(cfg, &code, start + cfg->code_ttl_seconds, prompter, outcome);
	tsms_otp_wipe(&code);
	return err;
}
