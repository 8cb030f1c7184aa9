/*
 * state.c - twilio-sms-otp status and unlock: faillock's view of the limits, through
 * the module's own state code (same lock, same name mapping: no path is built from USER),
 * for the account USER names, as the module keys them (lib/account.h)
 */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "lib/account.h"
#include "lib/backup.h"
#include "lib/config.h"
#include "lib/lookup.h"
#include "lib/phone.h"
#include "lib/state.h"

#include "cli.h"

static void print_status(const struct tsms_config *cfg, const char *user, const char *typed,
                         const struct tsms_state_status *st)
{
	char masked[TSMS_PHONE_MASKED_MAX], err[TSMS_CONFIG_ERR_MAX];
	struct tsms_number number;
	char until[64] = "";
	struct tm tm;
	time_t t;

	printf("user:          %s", user);
	if (strcmp(user, typed) != 0)
		printf(" (NSS's name for %s)", typed);
	printf("\nphone:         ");
	if (tsms_lookup_account(cfg, user, typed, &number, err) != TSMS_OK) {
		printf("unknown: %s\n", err);
	} else if (number.source == TSMS_SOURCE_NONE) {
		printf("none (a decoy challenge: no SMS is sent)\n");
	} else {
		tsms_phone_mask(number.phone, masked);
		printf("%s (%s)\n", masked, tsms_source_name(number.source));
	}
	printf("%s%s\n", st->shared ? "state:         redis key " : "state file:    ", st->where);
	printf("sends:         %u of %u in the window", st->sends, cfg->send_limit);
	if (st->window_left > 0)
		printf(", which ends in %lld s", st->window_left);
	printf("\ncooldown:      ");
	if (st->cooldown_left > 0)
		printf("%lld s left\n", st->cooldown_left);
	else
		printf("none\n");
	printf("wrong codes:   %u in a row (lockout at %u)\nlocked:        ", st->failures,
	       cfg->lockout_threshold);
	if (st->locked_until == 0) {
		printf("no\n");
		return;
	}
	t = (time_t)st->locked_until;
	if (gmtime_r(&t, &tm) != NULL)
		strftime(until, sizeof(until), "%Y-%m-%d %H:%M:%S UTC", &tm);
	printf("until %s (%lld s)\n", until, st->locked_left);
}

/* Where status and unlock looked, for "has no state in ...". */
static const char *store_name(const struct tsms_config *cfg, char *buf, size_t len)
{
	if (cfg->redis == NULL)
		return cfg->state_dir;
	snprintf(buf, len, "redis %s", cfg->redis->url);
	return buf;
}

/* status's line on USER's backup codes, when the config has a file for them. */
static void print_backup_left(const struct tsms_config *cfg, const char *user)
{
	char err[TSMS_CONFIG_ERR_MAX];
	unsigned left;

	if (cfg->backup_codes_file == NULL)
		return;
	if (tsms_backup_count(cfg, user, &left, err) != TSMS_OK)
		printf("backup codes:  unknown: %s\n", err);
	else
		printf("backup codes:  %u left\n", left);
}

/* status's lines on USER's open graces (lib/grace.h); true when there is one. */
static bool print_graces(const struct tsms_config *cfg, struct tsms_state *state, const char *user)
{
	struct tsms_grace graces[2 * TSMS_GRACE_MAX];
	char err[TSMS_STATE_ERR_MAX];
	time_t now = time(NULL);
	size_t n;

	if (tsms_state_graces(state, user, now, graces, &n, err) != TSMS_OK) {
		printf("graces:        unknown: %s\n", err);
		return false;
	}
	if (n == 0) {
		if (cfg->grace_period_seconds > 0 || cfg->session_grace_seconds > 0)
			printf("graces:        none\n");
		return false;
	}
	for (size_t i = 0; i < n; i++) {
		const struct tsms_grace *g = &graces[i];
		const char *where = g->shared ? "in the fleet (redis)" : "on this host";

		printf("%s", i == 0 ? "graces:        " : "               ");
		if (g->kind == TSMS_GRACE_ADDRESS)
			printf("from address %s %s", g->key, where);
		else if (g->kind == TSMS_GRACE_SESSION)
			printf("in audit session %.*s %s", (int)strcspn(g->key, ":"), g->key,
			       where);
		else
			printf("for the session of a login not opened yet");
		printf(", %lld s left\n", g->until - now);
	}
	return true;
}

int cmd_status(const char *config_path, int argc, char **argv)
{
	char store[TSMS_STATE_ERR_MAX];
	struct tsms_state *state;
	struct tsms_state_status st;
	char err[TSMS_STATE_ERR_MAX], account[TSMS_ACCOUNT_NAME_MAX];
	struct tsms_config *cfg;
	const char *user;
	int rc;

	cfg = cli_user_command(config_path, argc, argv, "status", &rc, account, &user);
	if (cfg == NULL)
		return rc;
	state = tsms_state_open(cfg, NULL);
	if (tsms_state_status(state, user, time(NULL), &st, err) != TSMS_OK) {
		fprintf(stderr, "twilio-sms-otp: %s\n", err);
	} else if (!st.exists) {
		printf("%s has no state in %s: no SMS sent and no wrong code since it was last "
		       "cleared\n",
		       user, store_name(cfg, store, sizeof(store)));
	} else {
		print_status(cfg, user, argv[1], &st);
		rc = 0;
	}
	if (st.fallback[0] != '\0') {
		printf("this host:     %s (logins while Redis was unavailable; unlock clears it "
		       "too)\n",
		       st.fallback);
		rc = 0;
	}
	print_backup_left(cfg, user);
	if (print_graces(cfg, state, user))
		rc = 0;
	tsms_state_close(state);
	tsms_config_free(cfg);
	return rc;
}

int cmd_unlock(const char *config_path, int argc, char **argv)
{
	char store[TSMS_STATE_ERR_MAX];
	struct tsms_state *state;
	struct tsms_state_status before;
	char err[TSMS_STATE_ERR_MAX], account[TSMS_ACCOUNT_NAME_MAX];
	struct tsms_config *cfg;
	const char *user;
	int rc;

	cfg = cli_user_command(config_path, argc, argv, "unlock", &rc, account, &user);
	if (cfg == NULL)
		return rc;
	state = tsms_state_open(cfg, NULL);
	if (tsms_state_unlock(state, user, time(NULL), &before, err) != TSMS_OK) {
		fprintf(stderr, "twilio-sms-otp: %s\n", err);
		if (before.fallback[0] != '\0')
			printf("cleared this host's fallback state file %s only\n",
			       before.fallback);
	} else {
		if (!before.exists)
			printf("%s has no state in %s: nothing to unlock\n", user,
			       store_name(cfg, store, sizeof(store)));
		else
			printf("unlocked %s: %u wrong code%s cleared, %s; sends kept (%u in the "
			       "window)\n",
			       user, before.failures, before.failures == 1 ? "" : "s",
			       before.locked_until != 0 ? "lockout lifted" : "was not locked",
			       before.sends);
		if (before.fallback[0] != '\0')
			printf("also cleared this host's fallback state file %s\n",
			       before.fallback);
		rc = before.exists || before.fallback[0] != '\0' ? 0 : 1;
	}
	tsms_state_close(state);
	tsms_config_free(cfg);
	return rc;
}

int cmd_revoke_grace(const char *config_path, int argc, char **argv)
{
	char err[TSMS_STATE_ERR_MAX], account[TSMS_ACCOUNT_NAME_MAX];
	struct tsms_state *state;
	struct tsms_config *cfg;
	const char *user;
	size_t n = 0;
	int rc;

	cfg = cli_user_command(config_path, argc, argv, "revoke-grace", &rc, account, &user);
	if (cfg == NULL)
		return rc;
	state = tsms_state_open(cfg, NULL);
	if (tsms_state_grace_revoke(state, user, time(NULL), &n, err) != TSMS_OK) {
		fprintf(stderr, "twilio-sms-otp: %s\n", err);
		if (n > 0)
			printf("ended %zu grace%s of %s where the store could be used\n", n,
			       n == 1 ? "" : "s", user);
		rc = 1;
	} else if (n == 0) {
		printf("%s has no open grace: nothing to revoke\n", user);
		rc = 1;
	} else {
		printf("ended %zu grace%s of %s: their next login asks for a code\n", n,
		       n == 1 ? "" : "s", user);
		rc = 0;
	}
	tsms_state_close(state);
	tsms_config_free(cfg);
	return rc;
}
