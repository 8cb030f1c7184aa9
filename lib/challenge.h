/* challenge.h - one SMS challenge: limits, generate, send, prompt, verify */
#ifndef TSMS_CHALLENGE_H
#define TSMS_CHALLENGE_H

#include <stdbool.h>

#include "config.h"
#include "error.h"
#include "log.h"
#include "phone.h"
#include "state.h"
#include "twilio.h"

/* How the front end talks to the person. ask shows prompt with echo off and
 * stores a new string in *answer (the library wipes and frees it with
 * tsms_free_secret); it returns 0, or -1 when the conversation failed. tell
 * shows an error message (the person must wait, is locked out, ...). */
struct tsms_prompter {
	int (*ask)(void *ctx, const char *prompt, char **answer);
	void (*tell)(void *ctx, const char *message);
	void *ctx;
	/* The password a module before this one read (PAM_AUTHTOK), or NULL. An
	 * answer equal to it is no code: sshd with password authentication answers
	 * every prompt with the password. It ends the challenge, counting nothing. */
	const char *password;
};

/* What happened, for the front end's one log line. */
struct tsms_outcome {
	char masked_phone[TSMS_PHONE_MASKED_MAX];
	char sid[40];
	unsigned attempts; /* answers given */
	unsigned sent;     /* SMS sent */
	char reason[320];  /* sanitised */
	/* "sms", "backup-code" (one was accepted, or asked for because no SMS could
	 * be sent), a grace's (lib/grace.h), NULL when no challenge ran */
	const char *method;
	long long grace_until; /* a grace let the user in: when it ends (lib/grace.h) */
	bool backup_used;      /* a backup code was accepted */
	unsigned backup_left;  /* and this many are left */
};

/* Runs one challenge for user. With a phone (E.164) it checks the country list
 * and the send limits (lib/state.h), sends a fresh code with the template of
 * usage (Generic fallback), then asks for it: up to cfg->max_attempts answers
 * per code within cfg->code_ttl_seconds; an empty answer sends a new code
 * while cfg->max_resends allow; wrong answers count towards the lockout. With
 * phone NULL (an unmapped user) it runs a decoy: the same prompts, limits,
 * cooldown and lockout, kept in the same store (state, lib/state.h), but no SMS (and no
 * global count) and no answer accepted, so that callers cannot tell mapped
 * users from unmapped ones. With cfg->backup_codes_file, a mapped user's
 * backup code (lib/backup.h) is accepted in place of the SMS code, and when the
 * first SMS cannot be sent (Twilio unavailable or refusing, a send limit or the
 * cooldown; not a lockout) a user who has codes is asked for one instead;
 * wrong ones count like wrong SMS codes. Codes are
 * wiped before returning. Returns TSMS_OK for the right code, else the error;
 * outcome always says why. */
enum tsms_err tsms_challenge_run(const struct tsms_config *cfg, struct tsms_state *state,
                                 const char *usage, const char *user, const char *phone,
                                 const struct tsms_prompter *prompter,
                                 struct tsms_outcome *outcome);

/* When user's number cannot be looked up (the directory unavailable: why says
 * so) and user has backup codes: the backup-code prompt alone, after the
 * lockout check (the attempt counts towards the user's send limits, as a
 * decoy's does). Returns TSMS_ERR_UNAVAILABLE, touching no state, when there is
 * no backupCodesFile or user has no codes, so that failMode decides as before;
 * else as tsms_challenge_run. */
enum tsms_err tsms_challenge_backup_only(const struct tsms_config *cfg, struct tsms_state *state,
                                         const char *user, const char *why,
                                         const struct tsms_prompter *prompter,
                                         struct tsms_outcome *outcome);

#endif
