/* state.c - the state interface: the store chosen once from the config, and
 * the fall back from Redis to this host's files when Redis fails */
#include "state.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "otp.h"

struct tsms_state {
	const struct tsms_config *cfg;
	const struct tsms_log *log;
	const struct tsms_state_store *store; /* files, or Redis */
	void *conn;                           /* the store's own, e.g. the Redis connection */
	bool fell_back;                       /* Redis failed: the files from now on */
};

struct tsms_state *tsms_state_open(const struct tsms_config *cfg, const struct tsms_log *log)
{
	struct tsms_state *st = calloc(1, sizeof(*st));

	if (st == NULL)
		return NULL;
	st->cfg = cfg;
	st->log = log;
	st->store = cfg->redis != NULL ? &tsms_state_redis : &tsms_state_files;
	return st;
}

void tsms_state_close(struct tsms_state *st)
{
	if (st == NULL)
		return;
	st->store->close(st->conn);
	free(st);
}

/* Runs op in the chosen store; a Redis failure is logged once and the files
 * decide instead, unless the caller is an administrator (fallback false). */
static enum tsms_err apply(struct tsms_state *st, const char *user, time_t now,
                           enum tsms_state_op op, bool fallback, struct tsms_state_answer *a,
                           char err[TSMS_STATE_ERR_MAX])
{
	enum tsms_err e;

	err[0] = '\0';
	if (st == NULL) {
		tsms_format_clean(err, TSMS_STATE_ERR_MAX, "out of memory");
		return TSMS_ERR_STATE;
	}
	if (!st->fell_back) {
		e = st->store->apply(&st->conn, st->cfg, user, now, op, a, err);
		if (e != TSMS_ERR_UNAVAILABLE)
			return e;
		if (!fallback)
			return TSMS_ERR_STATE;
		tsms_log(st->log, LOG_WARNING,
		         "%s; this login keeps its limits in this host's stateDir %s", err,
		         st->cfg->state_dir);
		st->fell_back = true;
		*a = (struct tsms_state_answer){
			.status = a->status, .id = a->id, .grace = a->grace, .graces = a->graces
		};
	}
	return tsms_state_files.apply(NULL, st->cfg, user, now, op, a, err);
}

enum tsms_err tsms_state_reserve_send(struct tsms_state *st, const char *user, time_t now,
                                      bool count_global, enum tsms_verdict *verdict,
                                      long long *wait_seconds, char err[TSMS_STATE_ERR_MAX])
{
	struct tsms_state_answer a = { .verdict = TSMS_VERDICT_OK };
	enum tsms_err e;

	e = apply(st, user, now, count_global ? TSMS_OP_RESERVE : TSMS_OP_RESERVE_LOCAL, true, &a,
	          err);
	*verdict = a.verdict;
	*wait_seconds = a.wait;
	return e;
}

enum tsms_err tsms_state_release_send(struct tsms_state *st, const char *user, time_t now,
                                      char err[TSMS_STATE_ERR_MAX])
{
	struct tsms_state_answer a = { .verdict = TSMS_VERDICT_OK };

	return apply(st, user, now, TSMS_OP_RELEASE, true, &a, err);
}

enum tsms_err tsms_state_record_failure(struct tsms_state *st, const char *user, time_t now,
                                        bool *locked, long long *locked_before,
                                        char err[TSMS_STATE_ERR_MAX])
{
	struct tsms_state_answer a = { .verdict = TSMS_VERDICT_OK };
	enum tsms_err e;

	e = apply(st, user, now, TSMS_OP_FAILURE, true, &a, err);
	*locked = a.locked;
	*locked_before = a.verdict == TSMS_VERDICT_LOCKED ? (a.wait > 0 ? a.wait : 1) : 0;
	return e;
}

enum tsms_err tsms_state_record_success(struct tsms_state *st, const char *user, time_t now,
                                        char err[TSMS_STATE_ERR_MAX])
{
	struct tsms_state_answer a = { .locked = false };

	return apply(st, user, now, TSMS_OP_SUCCESS, true, &a, err);
}

enum tsms_err tsms_state_use_once(struct tsms_state *st, const char *user, const char *id,
                                  time_t now, bool *first, char err[TSMS_STATE_ERR_MAX])
{
	struct tsms_state_answer a = { .id = id };
	enum tsms_err e;

	e = apply(st, user, now, TSMS_OP_USE_ONCE, true, &a, err);
	*first = a.first;
	return e;
}

enum tsms_err tsms_state_status(struct tsms_state *st, const char *user, time_t now,
                                struct tsms_state_status *status, char err[TSMS_STATE_ERR_MAX])
{
	struct tsms_state_answer a = { .status = status };
	char local_err[TSMS_STATE_ERR_MAX] = "";
	struct tsms_state_status local;
	enum tsms_err e;

	memset(status, 0, sizeof(*status));
	e = apply(st, user, now, TSMS_OP_STATUS, false, &a, err);
	if (e != TSMS_OK || st->store == &tsms_state_files)
		return e;
	/* what logins made on this host while Redis was unavailable */
	memset(&local, 0, sizeof(local));
	a = (struct tsms_state_answer){ .status = &local };
	if (tsms_state_files.apply(NULL, st->cfg, user, now, TSMS_OP_STATUS, &a, local_err) ==
	            TSMS_OK &&
	    local.exists)
		tsms_format_clean(status->fallback, sizeof(status->fallback),
		                  "%s: %u SMS in the window, %u wrong code%s, %s", local.where,
		                  local.sends, local.failures, local.failures == 1 ? "" : "s",
		                  local.locked_until != 0 ? "locked" : "not locked");
	else if (local_err[0] != '\0')
		tsms_format_clean(status->fallback, sizeof(status->fallback), "%s", local_err);
	return TSMS_OK;
}

enum tsms_err tsms_state_unlock(struct tsms_state *st, const char *user, time_t now,
                                struct tsms_state_status *before, char err[TSMS_STATE_ERR_MAX])
{
	struct tsms_state_answer a = { .status = before };
	struct tsms_state_status local;
	enum tsms_err e;

	char local_err[TSMS_STATE_ERR_MAX];
	enum tsms_err local_e;

	memset(before, 0, sizeof(*before));
	e = apply(st, user, now, TSMS_OP_UNLOCK, false, &a, err);
	if (st == NULL || st->store == &tsms_state_files)
		return e;
	/* a login that fell back may have locked the user on this host too: cleared
	 * even while Redis is down, so that an outage cannot keep anyone locked out */
	memset(&local, 0, sizeof(local));
	a = (struct tsms_state_answer){ .status = &local };
	local_e = tsms_state_files.apply(NULL, st->cfg, user, now, TSMS_OP_UNLOCK, &a, local_err);
	if (local_e == TSMS_OK && local.exists)
		memcpy(before->fallback, local.where, sizeof(local.where));
	if (e != TSMS_OK)
		return e;
	if (local_e != TSMS_OK)
		memcpy(err, local_err, TSMS_STATE_ERR_MAX);
	return local_e;
}

/* Whether a grace of kind lives in Redis: the address graces of graceScope fleet. */
static bool grace_shared(const struct tsms_state *st, char kind)
{
	return kind == TSMS_GRACE_ADDRESS && st->cfg->grace_fleet && st->store == &tsms_state_redis;
}

/* Runs a grace operation where graces of kind live: Redis (falling back) or the files. */
static enum tsms_err apply_grace(struct tsms_state *st, const char *user, time_t now,
                                 enum tsms_state_op op, struct tsms_state_answer *a,
                                 char err[TSMS_STATE_ERR_MAX])
{
	if (st == NULL) {
		tsms_format_clean(err, TSMS_STATE_ERR_MAX, "out of memory");
		return TSMS_ERR_STATE;
	}
	if (grace_shared(st, a->grace->kind))
		return apply(st, user, now, op, true, a, err);
	err[0] = '\0';
	return tsms_state_files.apply(NULL, st->cfg, user, now, op, a, err);
}

static void grace_of(struct tsms_grace *g, char kind, const char *key, long long until)
{
	memset(g, 0, sizeof(*g));
	g->kind = kind;
	snprintf(g->key, sizeof(g->key), "%s", key);
	g->until = until;
}

enum tsms_err tsms_state_grace_find(struct tsms_state *st, const char *user, char kind,
                                    const char *key, time_t now, long long *left, bool *locked,
                                    char err[TSMS_STATE_ERR_MAX])
{
	struct tsms_grace g;
	struct tsms_state_answer a = { .grace = &g };
	enum tsms_err e;

	*left = 0;
	*locked = false;
	grace_of(&g, kind, key, 0);
	/* the lockout where the limits live, when the grace is kept elsewhere */
	if (st != NULL && st->store != &tsms_state_files && !grace_shared(st, kind)) {
		grace_of(&g, kind, "", 0);
		e = apply(st, user, now, TSMS_OP_GRACE_FIND, true, &a, err);
		if (e != TSMS_OK || a.locked) {
			*locked = a.locked;
			return e;
		}
		grace_of(&g, kind, key, 0);
		a = (struct tsms_state_answer){ .grace = &g };
	}
	e = apply_grace(st, user, now, TSMS_OP_GRACE_FIND, &a, err);
	if (e == TSMS_OK) {
		*locked = a.locked;
		*left = a.locked ? 0 : a.wait;
	}
	return e;
}

enum tsms_err tsms_state_grace_open(struct tsms_state *st, const char *user, char kind,
                                    const char *key, time_t now, long long until,
                                    char err[TSMS_STATE_ERR_MAX])
{
	struct tsms_grace g;
	struct tsms_state_answer a = { .grace = &g };

	grace_of(&g, kind, key, until);
	if (key[0] == '\0' || strlen(key) >= TSMS_GRACE_KEY_MAX ||
	    strspn(key, "0123456789abcdef.:-") != strlen(key)) {
		tsms_format_clean(err, TSMS_STATE_ERR_MAX, "a grace key must be [0-9a-f.:-]");
		return TSMS_ERR_STATE;
	}
	return apply_grace(st, user, now, TSMS_OP_GRACE_OPEN, &a, err);
}

enum tsms_err tsms_state_grace_take(struct tsms_state *st, const char *user, char kind,
                                    const char *key, time_t now, long long *until,
                                    char err[TSMS_STATE_ERR_MAX])
{
	struct tsms_grace g;
	struct tsms_state_answer a = { .grace = &g };
	enum tsms_err e;

	grace_of(&g, kind, key, 0);
	e = apply_grace(st, user, now, TSMS_OP_GRACE_TAKE, &a, err);
	*until = e == TSMS_OK ? g.until : 0;
	return e;
}

/* LIST or REVOKE (an administrator's): this host's graces, then the fleet's
 * (graceScope fleet; no fallback), each whatever the other answered, so that
 * neither an unreachable Redis nor a broken file keeps the other's open. out
 * receives the listed graces; *n counts those done. */
static enum tsms_err host_then_fleet(struct tsms_state *st, const char *user, time_t now,
                                     enum tsms_state_op op, struct tsms_grace *out, size_t *n,
                                     char err[TSMS_STATE_ERR_MAX])
{
	struct tsms_state_answer a = { .graces = out };
	char fleet_err[TSMS_STATE_ERR_MAX];
	enum tsms_err e, fleet_e;

	*n = 0;
	err[0] = '\0';
	if (st == NULL) {
		tsms_format_clean(err, TSMS_STATE_ERR_MAX, "out of memory");
		return TSMS_ERR_STATE;
	}
	e = tsms_state_files.apply(NULL, st->cfg, user, now, op, &a, err);
	*n = e == TSMS_OK ? a.n : 0;
	if (!grace_shared(st, TSMS_GRACE_ADDRESS))
		return e;
	/* the first problem is the one returned */
	a = (struct tsms_state_answer){ .graces = out != NULL ? out + *n : NULL };
	fleet_e = apply(st, user, now, op, false, &a, fleet_err);
	if (fleet_e == TSMS_OK)
		*n += a.n;
	else if (e == TSMS_OK)
		memcpy(err, fleet_err, TSMS_STATE_ERR_MAX);
	return e != TSMS_OK ? e : fleet_e;
}

enum tsms_err tsms_state_graces(struct tsms_state *st, const char *user, time_t now,
                                struct tsms_grace out[2 * TSMS_GRACE_MAX], size_t *n,
                                char err[TSMS_STATE_ERR_MAX])
{
	return host_then_fleet(st, user, now, TSMS_OP_GRACE_LIST, out, n, err);
}

enum tsms_err tsms_state_grace_revoke(struct tsms_state *st, const char *user, time_t now,
                                      size_t *n, char err[TSMS_STATE_ERR_MAX])
{
	return host_then_fleet(st, user, now, TSMS_OP_GRACE_REVOKE, NULL, n, err);
}

enum tsms_err tsms_state_check(struct tsms_state *st, char msg[TSMS_STATE_ERR_MAX])
{
	enum tsms_err e;

	msg[0] = '\0';
	if (st == NULL) {
		tsms_format_clean(msg, TSMS_STATE_ERR_MAX, "out of memory");
		return TSMS_ERR_STATE;
	}
	e = st->store->check(&st->conn, st->cfg, msg);
	return e == TSMS_OK ? TSMS_OK : TSMS_ERR_STATE;
}

const char *tsms_verdict_name(enum tsms_verdict v)
{
	switch (v) {
	case TSMS_VERDICT_OK:
		return "allowed";
	case TSMS_VERDICT_LOCKED:
		return "locked out (lockoutThreshold)";
	case TSMS_VERDICT_USER_LIMIT:
		return "send limit reached (sendLimit)";
	case TSMS_VERDICT_COOLDOWN:
		return "resend cooldown (resendCooldownSeconds)";
	case TSMS_VERDICT_GLOBAL_LIMIT:
		return "global send limit reached (globalSendLimit)";
	}
	return "unknown";
}

static bool plain_name(const char *user)
{
	size_t n = strlen(user);

	if (n == 0 || n > 32 || !((user[0] >= 'a' && user[0] <= 'z') || user[0] == '_'))
		return false;
	for (size_t i = 1; i < n; i++) {
		char c = user[i];
		if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '.' ||
		      c == '-'))
			return false;
	}
	return true;
}

void tsms_state_file_name(const char *user, char out[TSMS_STATE_NAME_MAX])
{
	char hex[TSMS_DIGEST_HEX];

	if (plain_name(user)) {
		snprintf(out, TSMS_STATE_NAME_MAX, "%s", user);
		return;
	}
	tsms_digest_hex(NULL, user, hex);
	snprintf(out, TSMS_STATE_NAME_MAX, "=%s", hex);
}

bool tsms_state_cap(const struct tsms_config *cfg, struct tsms_state_record *rec, time_t now)
{
	bool capped = false;

	if (rec->window_start > now) {
		rec->window_start = now;
		capped = true;
	}
	if (rec->last_send > now) {
		rec->last_send = now;
		capped = true;
	}
	if (rec->locked_until > now + (long long)cfg->lockout_seconds) {
		rec->locked_until = now + cfg->lockout_seconds;
		capped = true;
	}
	for (size_t i = 0; i < rec->n_graces; i++) {
		struct tsms_grace *g = &rec->graces[i];
		/* a grace switched off (0) ends at once */
		long long max = g->kind == TSMS_GRACE_ADDRESS ? cfg->grace_period_seconds
		                                              : cfg->session_grace_seconds;

		if (g->until > now + max) {
			g->until = now + max;
			capped = true;
		}
	}
	return capped;
}

void tsms_state_describe(const struct tsms_config *cfg, const struct tsms_state_record *stored,
                         time_t now, struct tsms_state_status *out)
{
	struct tsms_state_record rec = *stored;

	(void)tsms_state_cap(cfg, &rec, now);

	if (rec.locked_until != 0 && now >= rec.locked_until) {
		rec.locked_until = 0; /* an expired lockout is forgotten with its failures */
		rec.failures = 0;
	}
	out->failures = rec.failures;
	out->locked_until = rec.locked_until;
	out->locked_left = rec.locked_until != 0 ? rec.locked_until - now : 0;
	if (rec.window_start != 0 && now < rec.window_start + (long long)cfg->send_window_seconds) {
		out->sends = rec.sends;
		out->window_left = rec.window_start + cfg->send_window_seconds - now;
	}
	if (rec.last_send != 0 && now >= rec.last_send &&
	    now - rec.last_send < (long long)cfg->resend_cooldown_seconds)
		out->cooldown_left = rec.last_send + cfg->resend_cooldown_seconds - now;
}
