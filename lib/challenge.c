/* challenge.c - one SMS challenge: limits, generate, send, prompt, verify */
#include "challenge.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "backup.h"
#include "clock.h"
#include "otp.h"
#include "state.h"
#include "template.h"

/* One authentication's challenge; phone NULL makes it a decoy. */
struct session {
	const struct tsms_config *cfg;
	struct tsms_state *state;
	const struct tsms_template *tpl;
	const char *user;
	const char *phone;
	const struct tsms_prompter *prompter;
	struct tsms_outcome *outcome;
	struct tsms_code code; /* the live code; len 0 matches nothing */
	long long deadline;    /* tsms_clock_ms */
	unsigned resends;
	char mask[TSMS_PHONE_MASKED_MAX]; /* the number as prompts show it */
	enum tsms_verdict verdict;        /* why the last send was refused */
	long long wait;                   /* and for how long */
	bool reused;                      /* a backup code another host had used */
	bool backup_only;                 /* the number is unknown: backup codes only */
	char sms_down[200];               /* why no SMS could go out: backup codes only */
};

/* What a backup-code-shaped answer turned out to be. */
enum backup_answer {
	BACKUP_NONE, /* not one, or no backupCodesFile */
	BACKUP_WRONG,
	BACKUP_ACCEPTED,
};

/* The two prompts: the SMS code's, which also takes a backup code and, blank,
 * sends a new code; and, when no SMS could go out, the backup code's alone. */
enum prompt {
	PROMPT_SMS,
	PROMPT_BACKUP,
};

#define say(outcome, ...) \
	tsms_format_clean((outcome)->reason, sizeof((outcome)->reason), __VA_ARGS__)

static void tell(const struct session *s, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static void tell(const struct session *s, const char *fmt, ...)
{
	char msg[200];
	va_list ap;

	if (s->prompter->tell == NULL)
		return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	s->prompter->tell(s->prompter->ctx, msg);
}

/* The masked number shown in prompts. An unmapped user gets four digits derived
 * from the name and the Twilio secret: stable, unpredictable, like a real number. */
static void masked_number(const struct session *s, char out[TSMS_PHONE_MASKED_MAX])
{
	char hex[TSMS_DIGEST_HEX], digits[5];

	if (s->phone != NULL) {
		tsms_phone_mask(s->phone, out);
		return;
	}
	tsms_digest_hex(tsms_config_secret(s->cfg), s->user, hex);
	hex[8] = '\0'; /* 32 bits: mod 10000 is uniform to within 1e-5 */
	snprintf(digits, sizeof(digits), "%04lu", strtoul(hex, NULL, 16) % 10000);
	tsms_phone_mask(digits, out);
}

static enum tsms_err send_code(struct session *s)
{
	struct tsms_outcome *outcome = s->outcome;
	struct tsms_twilio_result res;
	const char *name;
	enum tsms_err err;
	char *body;

	body = tsms_template_render(s->tpl->content, s->code.digits, NULL);
	if (body == NULL) {
		say(outcome, "out of memory");
		return TSMS_ERR_NOMEM;
	}
	err = tsms_twilio_send(s->cfg, s->phone, body, &res);
	tsms_free_secret(body);
	if (err == TSMS_OK) {
		snprintf(outcome->sid, sizeof(outcome->sid), "%s", res.sid);
		outcome->sent++;
		return TSMS_OK;
	}
	if (res.nothing_sent) {
		char problem[TSMS_STATE_ERR_MAX];

		/* it never left: the reservation goes back, no cooldown; should that
		 * fail, the text stays counted, which errs on the safe side */
		(void)tsms_state_release_send(s->state, s->user, time(NULL), problem);
	}
	name = tsms_twilio_code_name(res.error_code);
	if (res.error_code != 0)
		say(outcome, "%s: Twilio error %ld%s%s: %s (HTTP %ld, %u request%s)", res.reason,
		    res.error_code, name != NULL ? " " : "", name != NULL ? name : "",
		    res.error_message, res.http_status, res.attempts, res.attempts == 1 ? "" : "s");
	else if (res.http_status != 0)
		say(outcome, "%s: HTTP %ld%s%s (%u request%s)", res.reason, res.http_status,
		    res.error_message[0] != '\0' ? ": " : "", res.error_message, res.attempts,
		    res.attempts == 1 ? "" : "s");
	else
		say(outcome, "%s: %s (%u request%s)", res.reason, res.error_message, res.attempts,
		    res.attempts == 1 ? "" : "s");
	return err;
}

/* Counts one SMS against the limits; TSMS_ERR_LIMITED leaves the refusal in
 * s->verdict and s->wait. */
static enum tsms_err reserve(struct session *s)
{
	char problem[TSMS_STATE_ERR_MAX];
	enum tsms_err err;

	err = tsms_state_reserve_send(s->state, s->user, time(NULL), s->phone != NULL, &s->verdict,
	                              &s->wait, problem);
	if (err != TSMS_OK) {
		say(s->outcome, "%s", problem);
		return err;
	}
	if (s->verdict != TSMS_VERDICT_OK) {
		say(s->outcome, "no SMS: %s, %lld s left", tsms_verdict_name(s->verdict), s->wait);
		return TSMS_ERR_LIMITED;
	}
	return TSMS_OK;
}

/* Makes a new code live: counts it against the limits, sends it, restarts the
 * clock. When the limits refuse, the old code, if any, stays valid. */
static enum tsms_err new_code(struct session *s)
{
	enum tsms_err err = reserve(s);

	if (err != TSMS_OK)
		return err;
	if (s->phone != NULL) {
		tsms_otp_wipe(&s->code);
		if (tsms_otp_generate(&s->code, s->cfg->code_length) != 0) {
			say(s->outcome, "codeLength %u out of range", s->cfg->code_length);
			return TSMS_ERR_CONFIG;
		}
		err = send_code(s);
		if (err != TSMS_OK)
			return err;
	}
	s->deadline = tsms_clock_ms() + s->cfg->code_ttl_seconds * 1000LL;
	return TSMS_OK;
}

static void tell_refusal(const struct session *s)
{
	if (s->verdict == TSMS_VERDICT_LOCKED)
		tell(s, "Too many wrong codes: SMS login is locked for %lld more seconds.",
		     s->wait);
	else
		tell(s, "Too many SMS codes requested: try again in %lld seconds.", s->wait);
}

/* Records one answer as a wrong one (lib/state.h): before a non-blank answer is
 * judged (count first), or for a blank one that sent no new code. *locked: the
 * user is locked out now. A lockout that was running before this answer
 * (another login's) ends the challenge with TSMS_ERR_LIMITED: the answer is not
 * judged. */
static enum tsms_err count_wrong(struct session *s, bool *locked)
{
	char problem[TSMS_STATE_ERR_MAX];
	long long before;
	enum tsms_err err;

	err = tsms_state_record_failure(s->state, s->user, time(NULL), locked, &before, problem);
	if (err != TSMS_OK) {
		say(s->outcome, "%s; the answer was not checked", problem);
		return err;
	}
	if (before > 0) {
		tell(s, "Too many wrong codes: SMS login is locked for %lld more seconds.", before);
		say(s->outcome, "locked out (lockoutThreshold) by another login; the answer was "
		                "not checked");
		return TSMS_ERR_LIMITED;
	}
	return TSMS_OK;
}

/* A wrong answer that locked the user out ends the challenge. */
static enum tsms_err locked_out(struct session *s)
{
	tell(s, "Too many wrong codes: SMS login is locked for %u seconds.",
	     s->cfg->lockout_seconds);
	say(s->outcome, "wrong code; locked out for %u s after %u consecutive wrong codes",
	    s->cfg->lockout_seconds, s->cfg->lockout_threshold);
	return TSMS_ERR_LIMITED;
}

/* The SMS code or a backup code (outcome->backup_used) was right. */
static enum tsms_err right_answer(struct session *s)
{
	struct tsms_outcome *outcome = s->outcome;
	char problem[TSMS_STATE_ERR_MAX];

	if (tsms_state_record_success(s->state, s->user, time(NULL), problem) != TSMS_OK) {
		say(outcome, "%s", problem);
		return TSMS_ERR_STATE;
	}
	if (!outcome->backup_used)
		say(outcome, "code accepted");
	else if (s->sms_down[0] != '\0')
		say(outcome, "SMS unavailable (%s); backup code accepted, %u left", s->sms_down,
		    outcome->backup_left);
	else
		say(outcome, "backup code accepted, %u left", outcome->backup_left);
	return TSMS_OK;
}

/* A backup code in place of the code: checked and, when right, removed from
 * backupCodesFile under its lock, then recorded as used by the state (with
 * Redis, once in the fleet). Only a mapped user's; only a code's shape. */
static enum tsms_err try_backup(struct session *s, const char *answer, enum backup_answer *out)
{
	char problem[TSMS_CONFIG_ERR_MAX], id[TSMS_DIGEST_HEX], shape[TSMS_BACKUP_SYMBOLS + 1];
	unsigned left;
	enum tsms_err err;
	bool used, first;

	*out = BACKUP_NONE;
	if ((s->phone == NULL && !s->backup_only) || s->cfg->backup_codes_file == NULL ||
	    !tsms_backup_normalize(answer, shape))
		return TSMS_OK;
	tsms_wipe(shape, sizeof(shape));
	*out = BACKUP_WRONG;
	err = tsms_backup_use(s->cfg, s->user, answer, &used, id, &left, problem);
	if (err != TSMS_OK) {
		say(s->outcome, "%s", problem);
		return err;
	}
	if (!used)
		return TSMS_OK;
	err = tsms_state_use_once(s->state, s->user, id, time(NULL), &first, problem);
	if (err != TSMS_OK) {
		say(s->outcome, "%s", problem);
		return err;
	}
	if (!first) {
		s->reused = true;
		return TSMS_OK;
	}
	*out = BACKUP_ACCEPTED;
	s->outcome->method = "backup-code";
	s->outcome->backup_used = true;
	s->outcome->backup_left = left;
	return TSMS_OK;
}

static bool is_blank(const char *answer)
{
	return answer[strspn(answer, " \t\r\n")] == '\0';
}

/* An empty answer asks for a new code. Returns TSMS_OK with *counted false when
 * a new code went out, *counted true when none could (the answer counts as a
 * wrong one), or the error that ends the challenge. */
static enum tsms_err resend(struct session *s, const char **prefix, bool *counted)
{
	enum tsms_err err;

	*counted = true;
	if (s->resends >= s->cfg->max_resends) {
		*prefix = "No more codes can be sent. ";
		return TSMS_OK;
	}
	err = new_code(s);
	if (err == TSMS_ERR_LIMITED) { /* a refused resend is not used up */
		*prefix = s->verdict == TSMS_VERDICT_COOLDOWN
		                  ? "Wait before asking for a new code. "
		                  : "No more codes can be sent now. ";
		return TSMS_OK; /* the old code stays valid */
	}
	if (err != TSMS_OK)
		return err;
	s->resends++;
	*counted = false;
	*prefix = "New ";
	return TSMS_OK;
}

/* Shows kind's prompt after prefix. Returns 0 with a new *answer (the caller
 * wipes it with tsms_free_secret), or -1 when the conversation failed. */
static int ask(const struct session *s, enum prompt kind, const char *prefix, char **answer)
{
	char prompt[128];

	if (kind == PROMPT_SMS)
		snprintf(prompt, sizeof(prompt), "%sSMS code sent to %s: ", prefix, s->mask);
	else
		snprintf(prompt, sizeof(prompt), "%sSMS unavailable; backup code: ", prefix);
	*answer = NULL;
	if (s->prompter->ask(s->prompter->ctx, prompt, answer) == 0 && *answer != NULL)
		return 0;
	tsms_free_secret(*answer);
	*answer = NULL;
	return -1;
}

/* Says why kind's prompt ended without a right answer and returns err:
 * TSMS_ERR_CONV, TSMS_ERR_EXPIRED, or TSMS_ERR_MAXTRIES after wrong answers.
 * The backup prompt's reasons begin with why no SMS could go out. */
static enum tsms_err give_up(struct session *s, enum prompt kind, enum tsms_err err, unsigned wrong)
{
	struct tsms_outcome *outcome = s->outcome;
	unsigned ttl = s->cfg->code_ttl_seconds, max = s->cfg->max_attempts;

	if (kind == PROMPT_BACKUP && err == TSMS_ERR_CONV)
		say(outcome, "SMS unavailable (%s); conversation failed", s->sms_down);
	else if (kind == PROMPT_BACKUP && err == TSMS_ERR_EXPIRED)
		say(outcome, "SMS unavailable (%s); no backup code within codeTtlSeconds=%u",
		    s->sms_down, ttl);
	else if (kind == PROMPT_BACKUP)
		say(outcome, "SMS unavailable (%s); wrong backup code (%u of %u attempts)",
		    s->sms_down, wrong, max);
	else if (err == TSMS_ERR_CONV)
		say(outcome, "conversation failed");
	else if (err == TSMS_ERR_EXPIRED)
		say(outcome, "code expired (codeTtlSeconds=%u)", ttl);
	else
		say(outcome,
		    s->phone != NULL ? "wrong code (%u of %u attempts)"
		                     : "no phone number mapped to the user (%u of %u attempts)",
		    wrong, max);
	return err;
}

/* Judges a non-blank answer: the SMS code (at the SMS prompt), else a backup
 * code. Only after count_wrong recorded it. */
static enum tsms_err judge(struct session *s, enum prompt kind, const char *answer, bool *right)
{
	enum backup_answer backup = BACKUP_NONE;
	enum tsms_err err;

	*right = kind == PROMPT_SMS && tsms_otp_matches(&s->code, answer);
	if (*right)
		return TSMS_OK;
	err = try_backup(s, answer, &backup);
	*right = backup == BACKUP_ACCEPTED;
	return err;
}

/* Asks with kind's prompt until a right answer, max_attempts wrong answers (to
 * one code: a new SMS code gets its own), the deadline, or an error. An expired
 * answer is never checked; any other is counted as a wrong one before it is
 * checked (count_wrong), and a right one clears the count. At the SMS prompt a
 * blank answer asks for a new code; at the backup prompt it is wrong. The
 * user's password as the answer (prompter->password) ends it, counting nothing. */
static enum tsms_err ask_until(struct session *s, enum prompt kind)
{
	const bool sms = kind == PROMPT_SMS;
	const char *prefix = "";
	unsigned wrong = 0;

	s->outcome->method = sms ? "sms" : "backup-code";
	while (wrong < s->cfg->max_attempts) {
		bool right = false, locked = false, counted = true;
		enum tsms_err err;
		char *answer;

		if (ask(s, kind, prefix, &answer) != 0)
			return give_up(s, kind, TSMS_ERR_CONV, wrong);
		s->outcome->attempts++;
		if (tsms_clock_ms() > s->deadline) {
			tsms_free_secret(answer);
			return give_up(s, kind, TSMS_ERR_EXPIRED, wrong);
		}
		if (sms && is_blank(answer)) {
			tsms_free_secret(answer);
			err = resend(s, &prefix, &counted);
			if (err == TSMS_OK && !counted) {
				wrong = 0; /* a new code gets its own maxAttempts */
				continue;
			}
			if (err == TSMS_OK)
				err = count_wrong(s, &locked);
		} else if (tsms_same_secret(answer, s->prompter->password)) {
			tsms_free_secret(answer);
			say(s->outcome,
			    "the answer to the code prompt was the user's password: sshd is using "
			    "password authentication; fix: KbdInteractiveAuthentication yes and "
			    "AuthenticationMethods keyboard-interactive "
			    "(conf/sshd_config.snippet)");
			return TSMS_ERR_AUTH;
		} else {
			err = count_wrong(s, &locked);
			if (err == TSMS_OK)
				err = judge(s, kind, answer, &right);
			tsms_free_secret(answer);
			prefix = "Wrong code. ";
		}
		if (err != TSMS_OK)
			return err;
		if (right)
			return right_answer(s);
		wrong++;
		if (locked)
			return locked_out(s);
	}
	return give_up(s, kind, TSMS_ERR_MAXTRIES, wrong);
}

/* No SMS could be sent (Twilio unavailable or refusing, or a send limit): a
 * user with backup codes is asked for one instead; one without keeps the error
 * (failMode decides on Twilio unavailable, as without backup codes). */
static enum tsms_err backup_instead(struct session *s, enum tsms_err sms_err)
{
	struct tsms_outcome *outcome = s->outcome;
	char problem[TSMS_CONFIG_ERR_MAX];
	unsigned left;

	if ((s->phone == NULL && !s->backup_only) || s->cfg->backup_codes_file == NULL)
		return sms_err;
	tsms_format_clean(s->sms_down, sizeof(s->sms_down), "%s", outcome->reason);
	if (tsms_backup_count(s->cfg, s->user, &left, problem) != TSMS_OK) {
		say(outcome, "%s (and SMS unavailable: %s)", problem, s->sms_down);
		return TSMS_ERR_CONFIG;
	}
	if (left == 0) {
		s->sms_down[0] = '\0';
		return sms_err;
	}
	if (sms_err == TSMS_ERR_LIMITED)
		tell_refusal(s); /* the person may rather wait than spend a code */
	s->deadline = tsms_clock_ms() + s->cfg->code_ttl_seconds * 1000LL;
	return ask_until(s, PROMPT_BACKUP);
}

/* The outcome says when a backup code typed had been used on another host. */
static void note_reused(struct session *s)
{
	size_t n = strlen(s->outcome->reason);

	if (s->reused && strstr(s->outcome->reason, "another host") == NULL)
		tsms_format_clean(s->outcome->reason + n, sizeof(s->outcome->reason) - n,
		                  "; a backup code already used on another host (redis)");
}

/* The first SMS could not go out for a reason a backup code can stand in for:
 * Twilio unavailable or refusing, a send limit or the cooldown; never a
 * lockout, which holds for backup codes too. */
static bool no_sms(const struct session *s, enum tsms_err err)
{
	return err == TSMS_ERR_UNAVAILABLE || err == TSMS_ERR_REJECTED ||
	       (err == TSMS_ERR_LIMITED && s->verdict != TSMS_VERDICT_OK &&
	        s->verdict != TSMS_VERDICT_LOCKED);
}

enum tsms_err tsms_challenge_run(const struct tsms_config *cfg, struct tsms_state *state,
                                 const char *usage, const char *user, const char *phone,
                                 const struct tsms_prompter *prompter, struct tsms_outcome *outcome)
{
	struct session s = {
		.cfg = cfg,
		.state = state,
		.tpl = tsms_config_template(cfg, usage),
		.user = user,
		.phone = phone,
		.prompter = prompter,
		.outcome = outcome,
	};
	enum tsms_err err;

	memset(outcome, 0, sizeof(*outcome));
	if (s.tpl == NULL || !tsms_template_has_placeholder(s.tpl->content)) {
		say(outcome, "no %s or Generic template with {{code}}", usage);
		return TSMS_ERR_CONFIG;
	}
	if (tsms_crypto_init() != 0) {
		say(outcome, "libsodium is unavailable");
		return TSMS_ERR_SYSTEM;
	}
	masked_number(&s, s.mask);
	if (phone != NULL) /* a decoy's made-up number stays out of the log */
		memcpy(outcome->masked_phone, s.mask, sizeof(s.mask));
	if (phone != NULL && !tsms_config_country_allowed(cfg, phone)) {
		tell(&s, "SMS codes cannot be sent to this number; ask your administrator.");
		say(outcome, "no SMS: the number's country code is not in allowedCountryCodes");
		return TSMS_ERR_LIMITED;
	}
	err = new_code(&s);
	if (err == TSMS_OK)
		err = ask_until(&s, PROMPT_SMS);
	else if (no_sms(&s, err))
		err = backup_instead(&s, err);
	if (err == TSMS_ERR_LIMITED && outcome->method == NULL)
		tell_refusal(&s); /* the first SMS was refused, and no backup code asked for */
	note_reused(&s);
	tsms_otp_wipe(&s.code);
	return err;
}

enum tsms_err tsms_challenge_backup_only(const struct tsms_config *cfg, struct tsms_state *state,
                                         const char *user, const char *why,
                                         const struct tsms_prompter *prompter,
                                         struct tsms_outcome *outcome)
{
	struct session s = {
		.cfg = cfg,
		.state = state,
		.user = user,
		.prompter = prompter,
		.outcome = outcome,
		.backup_only = true,
	};
	char problem[TSMS_CONFIG_ERR_MAX];
	enum tsms_err err;
	unsigned left;

	memset(outcome, 0, sizeof(*outcome));
	say(outcome, "%s", why);
	if (cfg->backup_codes_file == NULL)
		return TSMS_ERR_UNAVAILABLE;
	if (tsms_crypto_init() != 0) {
		say(outcome, "libsodium is unavailable");
		return TSMS_ERR_SYSTEM;
	}
	/* a user without codes leaves no trace in the state: failMode decides, as before */
	if (tsms_backup_count(cfg, user, &left, problem) != TSMS_OK) {
		say(outcome, "%s (and %s)", problem, why);
		return TSMS_ERR_CONFIG;
	}
	if (left == 0)
		return TSMS_ERR_UNAVAILABLE;
	/* the lockout holds; the attempt counts towards the user's limits like a decoy's */
	err = reserve(&s);
	if (err == TSMS_ERR_LIMITED && s.verdict == TSMS_VERDICT_LOCKED) {
		tell_refusal(&s);
		return err;
	}
	if (err != TSMS_OK && err != TSMS_ERR_LIMITED)
		return err;
	say(outcome, "%s", why);
	err = backup_instead(&s, TSMS_ERR_UNAVAILABLE);
	note_reused(&s);
	return err;
}
