/* challenge.h - one SMS challenge: generate, send, prompt, verify */
#ifndef TSMS_CHALLENGE_H
#define TSMS_CHALLENGE_H

#include "config.h"
#include "error.h"
#include "log.h"
#include "phone.h"
#include "twilio.h"

/* How the front end talks to the person. ask shows prompt with echo off and
 * stores a new string in *answer (the library wipes and frees it with
 * tsms_free_secret); it returns 0, or -1 when the conversation failed. */
struct tsms_prompter {
	int (*ask)(void *ctx, const char *prompt, char **answer);
	void *ctx;
};

/* What happened, for the front end's one log line. */
struct tsms_outcome {
	char masked_phone[TSMS_PHONE_MASKED_MAX];
	char sid[40];
	unsigned attempts;
	char reason[320]; /* sanitised */
};

/* Sends a fresh code to phone (E.164) with the template of usage (Generic
 * fallback), then asks for it up to cfg->max_attempts times within
 * cfg->code_ttl_seconds. The code is wiped before returning. Returns TSMS_OK
 * for the right code, else the error; outcome always says why. */
enum tsms_err tsms_challenge_run(const struct tsms_config *cfg, const char *usage,
                                 const char *phone, const struct tsms_prompter *prompter,
                                 struct tsms_outcome *outcome);

#endif
