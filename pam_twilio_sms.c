/*
 * pam_twilio_sms.c - PAM entry points: an SMS one-time passcode through Twilio.
 *
 * Load the config, find the user's phone, run one SMS challenge, map the
 * outcome to a PAM result and log it once. Everything else lives in lib/.
 */
#include <security/pam_ext.h>
#include <security/pam_modules.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>

#include "lib/account.h"
#include "lib/backup.h"
#include "lib/caller.h"
#include "lib/challenge.h"
#include "lib/config.h"
#include "lib/error.h"
#include "lib/grace.h"
#include "lib/http.h"
#include "lib/log.h"
#include "lib/lookup.h"
#include "lib/otp.h"

#define TSMS_EXPORT __attribute__((visibility("default")))
#define RHOST_SHOWN_MAX 253 /* the longest DNS name */

/* outcome.method of a second line of the module that accepted the first one's code */
static const char METHOD_STACKED[] = "stacked";

struct module_args {
	const char *config;
	bool nullok;
	bool debug;
};

static void log_to_syslog(void *ctx, int priority, const char *line)
{
	pam_syslog((pam_handle_t *)ctx, priority, "%s", line);
}

static int ask_echo_off(void *ctx, const char *prompt, char **answer)
{
	return pam_prompt((pam_handle_t *)ctx, PAM_PROMPT_ECHO_OFF, answer, "%s", prompt) ==
	                       PAM_SUCCESS
	               ? 0
	               : -1;
}

static void tell_error(void *ctx, const char *message)
{
	pam_error((pam_handle_t *)ctx, "%s", message);
}

/* The password a module before this one read, or NULL (lib/challenge.h). */
static const char *password_item(pam_handle_t *pamh)
{
	const void *item = NULL;

	return pam_get_item(pamh, PAM_AUTHTOK, &item) == PAM_SUCCESS ? item : NULL;
}

static const char *skip_prefix(const char *s, const char *prefix)
{
	size_t n = strlen(prefix);

	return strncmp(s, prefix, n) == 0 ? s + n : NULL;
}

/* Unknown arguments are refused: a misspelt option must not pass silently. */
static enum tsms_err parse_args(int argc, const char **argv, struct module_args *args,
                                const struct tsms_log *log)
{
	args->config = TSMS_DEFAULT_CONFIG;
	args->nullok = args->debug = false;
	for (int i = 0; i < argc; i++) {
		const char *v;

		if ((v = skip_prefix(argv[i], "config=")) != NULL && v[0] == '/')
			args->config = v;
		else if (strcmp(argv[i], "nullok") == 0)
			args->nullok = true;
		else if (strcmp(argv[i], "debug") == 0)
			args->debug = true;
		else {
			tsms_log(log, LOG_ERR,
			         "unknown or malformed module argument \"%s\"; fix: use "
			         "config=/absolute/path, nullok or debug",
			         argv[i]);
			return TSMS_ERR_CONFIG;
		}
	}
	return TSMS_OK;
}

/* failMode open skips the factor when Twilio or the directory is unavailable,
 * but only where the caller cannot signal this process (sshd, login): in a
 * setuid host (su, sudo) the caller could stop it past a timeout and make the
 * outage at will (lib/caller.h). */
static bool fail_open(enum tsms_err err, const struct tsms_config *cfg, const struct tsms_log *log)
{
	char who[TSMS_CALLER_WHO_MAX];

	if (err != TSMS_ERR_UNAVAILABLE || cfg == NULL || cfg->fail_mode != TSMS_FAIL_OPEN)
		return false;
	if (!tsms_caller_can_signal(who))
		return true;
	tsms_log(log, LOG_WARNING,
	         "failMode open ignored: the caller can signal this process (%s), so an outage "
	         "could be of its making; failMode open applies where PAM runs with a real uid "
	         "of root only (sshd, login)",
	         who);
	return false;
}

/* The one place where library errors become PAM results. */
static int pam_result(enum tsms_err err, bool open, bool nullok)
{
	switch (err) {
	case TSMS_OK:
		return PAM_SUCCESS;
	case TSMS_ERR_NO_PHONE:
		return nullok ? PAM_IGNORE : PAM_AUTH_ERR;
	case TSMS_ERR_UNAVAILABLE:
		return open ? PAM_IGNORE : PAM_AUTHINFO_UNAVAIL;
	case TSMS_ERR_REJECTED:
	case TSMS_ERR_DIRECTORY:
		return PAM_AUTHINFO_UNAVAIL;
	case TSMS_ERR_NO_USER:
		return PAM_USER_UNKNOWN;
	case TSMS_ERR_CONV:
		return PAM_CONV_ERR;
	case TSMS_ERR_AUTH:
	case TSMS_ERR_EXPIRED:
	case TSMS_ERR_LIMITED:
		return PAM_AUTH_ERR;
	case TSMS_ERR_MAXTRIES:
		return PAM_MAXTRIES;
	case TSMS_ERR_NOMEM:
		return PAM_BUF_ERR;
	case TSMS_ERR_CONFIG:
	case TSMS_ERR_SYSTEM:
	case TSMS_ERR_STATE:
		break;
	}
	return PAM_SERVICE_ERR;
}

static const char *pam_result_name(int rc)
{
	switch (rc) {
	case PAM_SUCCESS:
		return "PAM_SUCCESS";
	case PAM_IGNORE:
		return "PAM_IGNORE";
	case PAM_AUTH_ERR:
		return "PAM_AUTH_ERR";
	case PAM_MAXTRIES:
		return "PAM_MAXTRIES";
	case PAM_AUTHINFO_UNAVAIL:
		return "PAM_AUTHINFO_UNAVAIL";
	case PAM_USER_UNKNOWN:
		return "PAM_USER_UNKNOWN";
	case PAM_CONV_ERR:
		return "PAM_CONV_ERR";
	case PAM_BUF_ERR:
		return "PAM_BUF_ERR";
	default:
		return "PAM_SERVICE_ERR";
	}
}

/* PAM_RHOST, or NULL. */
static const char *rhost_item(pam_handle_t *pamh)
{
	const void *item = NULL;

	return pam_get_item(pamh, PAM_RHOST, &item) == PAM_SUCCESS ? item : NULL;
}

/* The remote host as the outcome line shows it: one word, at most a DNS name long,
 * "-" when the application set none. It comes first in the line, before the caller's
 * user name: fail2ban takes the address only from there (conf/fail2ban/), so no user
 * name can put another address in its place. */
static void shown_rhost(pam_handle_t *pamh, char out[RHOST_SHOWN_MAX + 4])
{
	const char *item = rhost_item(pamh);

	tsms_log_field(out, RHOST_SHOWN_MAX + 4, item != NULL && item[0] != '\0' ? item : "-",
	               true);
}

/* The user the outcome line names: the one authenticated, else the one PAM holds
 * already (an unreadable config fails before pam_get_user; PAM_USER asks nobody). */
static const char *shown_user(pam_handle_t *pamh, const char *user)
{
	const void *item = NULL;

	if (user != NULL)
		return user;
	if (pam_get_item(pamh, PAM_USER, &item) != PAM_SUCCESS || item == NULL ||
	    ((const char *)item)[0] == '\0')
		return "-";
	return item;
}

/* user= names the account (lib/account.h); typed= follows when the name typed
 * was another spelling of it. */
static void log_outcome(pam_handle_t *pamh, const struct tsms_log *log, const char *user,
                        const char *typed, enum tsms_source source, int rc, enum tsms_err err,
                        const struct tsms_outcome *outcome)
{
	const char *name = shown_user(pamh, user);
	bool retyped = user != NULL && typed != NULL && strcmp(user, typed) != 0;
	bool phone_shown = outcome->masked_phone[0] != '\0';
	bool stacked = outcome->method == METHOD_STACKED;
	int priority = rc == PAM_SUCCESS ? (stacked ? LOG_WARNING : LOG_INFO)
	               : err == TSMS_ERR_CONFIG || err == TSMS_ERR_SYSTEM ||
	                               err == TSMS_ERR_STATE || err == TSMS_ERR_DIRECTORY
	                       ? LOG_ERR
	               : rc == PAM_IGNORE && err != TSMS_ERR_NO_PHONE ? LOG_WARNING
	                                                              : LOG_NOTICE;
	char shown[68], shown_typed[68] = "", rhost[RHOST_SHOWN_MAX + 4];

	shown_rhost(pamh, rhost);
	tsms_log_field(shown, sizeof(shown), name, false);
	if (retyped)
		tsms_log_field(shown_typed, sizeof(shown_typed), typed, false);
	tsms_log(log, priority,
	         "rhost=%s user=%s%s%s phone=%s source=%s sid=%s attempts=%u method=%s result=%s "
	         "reason=%s%s",
	         rhost, shown, retyped ? " typed=" : "", shown_typed,
	         phone_shown ? outcome->masked_phone : "-", tsms_source_name(source),
	         outcome->sid[0] != '\0' ? outcome->sid : "-", outcome->attempts,
	         outcome->method != NULL ? outcome->method : "-", pam_result_name(rc),
	         outcome->reason[0] != '\0' ? outcome->reason : tsms_strerror(err),
	         rc == PAM_IGNORE && err == TSMS_ERR_UNAVAILABLE
	                 ? " (failMode=open: the SMS factor was skipped)"
	                 : "");
	if (rc == PAM_SUCCESS && outcome->backup_used && outcome->backup_left <= TSMS_BACKUP_FEW)
		tsms_log(log, LOG_WARNING,
		         "user %s has %u backup code%s left; fix: twilio-sms-otp backup-codes %s",
		         shown, outcome->backup_left, outcome->backup_left == 1 ? "" : "s", shown);
}

/* With debug: the settings in force, so an admin can see what the module read. */
static void log_settings(const struct tsms_log *log, const char *path,
                         const struct tsms_config *cfg)
{
	char proxy[TSMS_HTTP_PROXY_MSG] = "-";

	if (!log->debug)
		return; /* the line would be dropped: no proxy parse on every login */
	if (cfg->proxy != NULL)
		tsms_http_proxy_shown(cfg->proxy, proxy);
	tsms_log(log, LOG_DEBUG,
	         "config %s: %zu templates, %zu users, usersFile=%s, codeLength=%u "
	         "codeTtlSeconds=%u maxAttempts=%u maxResends=%u timeoutSeconds=%u maxRetries=%u "
	         "failMode=%s sendLimit=%u/%us resendCooldownSeconds=%u globalSendLimit=%u "
	         "lockoutThreshold=%u lockoutSeconds=%u stateDir=%s apiBaseUrl=%s caFile=%s "
	         "proxy=%s redis=%s backupCodesFile=%s gracePeriodSeconds=%u graceScope=%s "
	         "sessionGraceSeconds=%u",
	         path, cfg->n_templates, cfg->n_users,
	         cfg->users_file != NULL ? cfg->users_file : "-", cfg->code_length,
	         cfg->code_ttl_seconds, cfg->max_attempts, cfg->max_resends, cfg->timeout_seconds,
	         cfg->max_retries, cfg->fail_mode == TSMS_FAIL_OPEN ? "open" : "closed",
	         cfg->send_limit, cfg->send_window_seconds, cfg->resend_cooldown_seconds,
	         cfg->global_send_limit, cfg->lockout_threshold, cfg->lockout_seconds,
	         cfg->state_dir, cfg->api_base_url, cfg->ca_file != NULL ? cfg->ca_file : "-",
	         proxy, cfg->redis != NULL ? cfg->redis->url : "-",
	         cfg->backup_codes_file != NULL ? cfg->backup_codes_file : "-",
	         cfg->grace_period_seconds, cfg->grace_fleet ? "fleet" : "host",
	         cfg->session_grace_seconds);
}

/* A right answer leaves a pass in the PAM handle (lib/otp.h): a second line of
 * the module in the same stack (the pam-auth-update profile in common-auth and
 * a line of the service's own) lets the same user through in the same
 * transaction within codeTtlSeconds: one code per login, not a second text that
 * the cooldown would refuse. */
#define PASS_DATA "pam_twilio_sms:pass"

static void free_pass(pam_handle_t *pamh, void *data, int error_status)
{
	(void)pamh;
	(void)error_status;
	tsms_wipe(data, sizeof(struct tsms_pass));
	free(data);
}

static void leave_pass(pam_handle_t *pamh, const char *user)
{
	struct tsms_pass *pass = malloc(sizeof(*pass));

	if (pass == NULL || tsms_pass_make(pass, user, pamh) != 0 ||
	    pam_set_data(pamh, PASS_DATA, pass, free_pass) != PAM_SUCCESS)
		free(pass); /* no pass: a second line asks again */
}

static bool passed_already(pam_handle_t *pamh, const struct tsms_config *cfg, const char *user,
                           struct tsms_outcome *outcome)
{
	const void *pass = NULL, *service = NULL;

	if (pam_get_data(pamh, PASS_DATA, &pass) != PAM_SUCCESS || pass == NULL ||
	    !tsms_pass_valid(pass, user, pamh, cfg->code_ttl_seconds))
		return false;
	if (pam_get_item(pamh, PAM_SERVICE, &service) != PAM_SUCCESS || service == NULL)
		service = "?";
	outcome->method = METHOD_STACKED;
	tsms_format_clean(outcome->reason, sizeof(outcome->reason),
	                  "passed already in this PAM transaction: pam_twilio_sms is stacked "
	                  "twice in %s; fix: keep one pam_twilio_sms line (the pam-auth-update "
	                  "profile's in common-auth, or the service's own)",
	                  (const char *)service);
	return true;
}

/* The caller's environment is hidden from the libraries (lib/environ.h), except
 * what they read when the module was loaded: while such a variable is set the
 * module refuses, whoever the caller is. */
static enum tsms_err check_environment(const struct tsms_log *log, struct tsms_outcome *outcome)
{
	const char *name = tsms_http_unsafe_environment();

	if (name == NULL)
		return TSMS_OK;
	snprintf(outcome->reason, sizeof(outcome->reason), "unsafe environment: %s is set", name);
	tsms_log(log, LOG_ERR,
	         "refusing to run: the environment sets %s, which OpenSSL read when the module "
	         "was loaded and which cannot be undone; fix: remove it from the environment of "
	         "the program that calls PAM",
	         name);
	return TSMS_ERR_SYSTEM;
}

/* After a right code: the address grace, and the nonce that PAM's environment
 * carries to the session hook (lib/grace.h). */
static void hand_on_grace(pam_handle_t *pamh, const struct tsms_config *cfg,
                          struct tsms_state *state, const char *user,
                          const struct tsms_outcome *outcome, const struct tsms_log *log)
{
	char nonce[TSMS_GRACE_NONCE_MAX], var[sizeof(TSMS_GRACE_ENV) + TSMS_GRACE_NONCE_MAX];

	tsms_grace_after(cfg, state, user, rhost_item(pamh), outcome, log, nonce);
	if (nonce[0] == '\0')
		return;
	snprintf(var, sizeof(var), "%s=%s", TSMS_GRACE_ENV, nonce);
	if (pam_putenv(pamh, var) != PAM_SUCCESS)
		tsms_log(log, LOG_WARNING,
		         "no session grace for %s: PAM's environment refused "
		         "the nonce",
		         user);
	tsms_wipe(var, sizeof(var));
	tsms_wipe(nonce, sizeof(nonce));
}

TSMS_EXPORT int pam_sm_authenticate(pam_handle_t *pamh, int flags, int argc, const char **argv)
{
	struct tsms_log log = { .fn = log_to_syslog, .ctx = pamh };
	struct tsms_prompter prompter = { .ask = ask_echo_off, .tell = tell_error, .ctx = pamh };
	struct tsms_outcome outcome = { .reason = "" };
	struct tsms_config *cfg = NULL;
	struct tsms_state *state;
	struct module_args args;
	struct tsms_number number = { .source = TSMS_SOURCE_NONE };
	char problem[TSMS_CONFIG_ERR_MAX], account[TSMS_ACCOUNT_NAME_MAX];
	const char *typed = NULL, *user = NULL, *phone;
	enum tsms_err err;
	int rc;

	(void)flags;
	err = parse_args(argc, argv, &args, &log);
	if (err != TSMS_OK)
		goto out;
	log.debug = args.debug;
	err = check_environment(&log, &outcome);
	if (err != TSMS_OK)
		goto out;
	cfg = tsms_config_load(args.config, problem);
	if (cfg == NULL) {
		tsms_log(&log, LOG_ERR, "%s", problem);
		err = TSMS_ERR_CONFIG;
		goto out;
	}
	log_settings(&log, args.config, cfg);
	rc = pam_get_user(pamh, &typed, NULL);
	if (rc != PAM_SUCCESS || typed == NULL || typed[0] == '\0') {
		typed = NULL;
		err = rc == PAM_CONV_ERR ? TSMS_ERR_CONV : TSMS_ERR_NO_USER;
		goto out;
	}
	/* the account's name from here on: ALICE and CORP\alice share alice's number,
	 * limits, lockout and backup codes */
	user = tsms_account_name(typed, account);
	if (passed_already(pamh, cfg, user, &outcome)) {
		err = TSMS_OK;
		goto out;
	}
	prompter.password = password_item(pamh);
	/* without nullok an unmapped user gets a decoy challenge (phone NULL): the same
	 * prompts, no SMS, no success */
	err = tsms_lookup_account(cfg, user, typed, &number, problem);
	if (err != TSMS_OK) {
		tsms_log(&log, err == TSMS_ERR_UNAVAILABLE ? LOG_WARNING : LOG_ERR, "%s", problem);
		tsms_format_clean(outcome.reason, sizeof(outcome.reason), "%s", problem);
		if (err == TSMS_ERR_UNAVAILABLE && cfg->backup_codes_file != NULL) {
			/* no number, no SMS: a user with backup codes may still use one */
			state = tsms_state_open(cfg, &log);
			err = tsms_challenge_backup_only(cfg, state, user, problem, &prompter,
			                                 &outcome);
			tsms_state_close(state);
		}
		goto out;
	}
	phone = number.source != TSMS_SOURCE_NONE ? number.phone : NULL;
	if (phone == NULL && args.nullok) {
		err = TSMS_ERR_NO_PHONE;
		goto out;
	}
	tsms_log(&log, LOG_DEBUG, "user %s %s", user,
	         phone != NULL ? "has a phone number: SignIn challenge" : "has no phone number");
	state = tsms_state_open(cfg, &log); /* the files, or Redis with the files behind */
	/* a decoy (no phone) never has a grace: none may tell who has a number */
	if (phone != NULL &&
	    tsms_grace_applies(cfg, state, user, phone, rhost_item(pamh), &outcome)) {
		err = TSMS_OK;
	} else if (tsms_http_global_init() != 0) {
		err = TSMS_ERR_SYSTEM;
	} else {
		err = tsms_challenge_run(cfg, state, "SignIn", user, phone, &prompter, &outcome);
		tsms_http_global_cleanup();
	}
	if (err == TSMS_OK)
		hand_on_grace(pamh, cfg, state, user, &outcome, &log);
	tsms_state_close(state);
out:
	if (err == TSMS_OK && user != NULL && outcome.method != NULL &&
	    outcome.method != METHOD_STACKED)
		leave_pass(pamh, user);
	rc = pam_result(err, fail_open(err, cfg, &log), args.nullok);
	if (rc == PAM_AUTHINFO_UNAVAIL && outcome.method == NULL) /* no prompt said why */
		tell_error(pamh, "The SMS could not be sent; try again later or ask your "
		                 "administrator.");
	log_outcome(pamh, &log, user, typed, number.source, rc, err, &outcome);
	tsms_config_free(cfg);
	return rc;
}

/* Set in the PAM handle when the session hook opened a grace: its close ends it. */
#define SESSION_DATA "pam_twilio_sms:session"
static char session_opened;

/* What a session hook does with its config, a state and the session's account. */
typedef void session_fn(pam_handle_t *pamh, const struct tsms_config *cfg, struct tsms_state *state,
                        const char *user, const struct tsms_log *log, void *ctx);

/* Loads the session line's config, finds the session's account and runs fn;
 * a problem is logged after failed ("no session grace", ...). */
static void session_hook(pam_handle_t *pamh, int argc, const char **argv, const char *failed,
                         session_fn *fn, void *ctx)
{
	struct tsms_log log = { .fn = log_to_syslog, .ctx = pamh };
	char problem[TSMS_CONFIG_ERR_MAX], account[TSMS_ACCOUNT_NAME_MAX];
	const char *typed = NULL;
	struct tsms_config *cfg;
	struct tsms_state *state;
	struct module_args args;

	if (parse_args(argc, argv, &args, &log) != TSMS_OK)
		return;
	log.debug = args.debug;
	cfg = tsms_config_load(args.config, problem);
	if (cfg == NULL) {
		tsms_log(&log, LOG_ERR, "%s: %s", failed, problem);
		return;
	}
	if (pam_get_item(pamh, PAM_USER, (const void **)&typed) != PAM_SUCCESS || typed == NULL ||
	    typed[0] == '\0') {
		tsms_log(&log, LOG_WARNING, "%s: the session has no user", failed);
	} else {
		state = tsms_state_open(cfg, &log);
		fn(pamh, cfg, state, tsms_account_name(typed, account), &log, ctx);
		tsms_state_close(state);
	}
	tsms_config_free(cfg);
}

static void open_grace(pam_handle_t *pamh, const struct tsms_config *cfg, struct tsms_state *state,
                       const char *user, const struct tsms_log *log, void *nonce)
{
	if (tsms_grace_session_opened(cfg, state, user, nonce, log))
		(void)pam_set_data(pamh, SESSION_DATA, &session_opened, NULL);
}

static void close_grace(pam_handle_t *pamh, const struct tsms_config *cfg, struct tsms_state *state,
                        const char *user, const struct tsms_log *log, void *ctx)
{
	(void)pamh;
	(void)ctx;
	tsms_grace_session_closed(cfg, state, user, log);
}

/* The session hook, for sessionGraceSeconds (lib/grace.h): after pam_loginuid,
 * it redeems the nonce its auth phase left in PAM's environment, which it
 * removes whatever happens, so that the session's programs never see it. It
 * never fails a session: without a nonce (a login without a code) it does
 * nothing and loads nothing. */
TSMS_EXPORT int pam_sm_open_session(pam_handle_t *pamh, int flags, int argc, const char **argv)
{
	const char *value = pam_getenv(pamh, TSMS_GRACE_ENV);
	char nonce[TSMS_GRACE_NONCE_MAX];

	(void)flags;
	if (value == NULL)
		return PAM_IGNORE;
	snprintf(nonce, sizeof(nonce), "%s", value);
	(void)pam_putenv(pamh, TSMS_GRACE_ENV); /* removes it */
	session_hook(pamh, argc, argv, "no session grace", open_grace, nonce);
	tsms_wipe(nonce, sizeof(nonce));
	return PAM_IGNORE;
}

/* The end of a session whose hook opened a grace ends it (lib/grace.h); any
 * other session's end (su, sudo, a login without a code) does nothing. */
TSMS_EXPORT int pam_sm_close_session(pam_handle_t *pamh, int flags, int argc, const char **argv)
{
	const void *opened = NULL;

	(void)flags;
	if (pam_get_data(pamh, SESSION_DATA, &opened) == PAM_SUCCESS && opened != NULL)
		session_hook(pamh, argc, argv, "session grace not ended", close_grace, NULL);
	return PAM_IGNORE;
}

TSMS_EXPORT int pam_sm_setcred(pam_handle_t *pamh, int flags, int argc, const char **argv)
{
	(void)pamh;
	(void)flags;
	(void)argc;
	(void)argv;
	return PAM_SUCCESS;
}
