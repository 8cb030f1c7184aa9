/* state.h - per-user send limits and lockout, in this host's stateDir or in Redis
 *
 * One interface, two stores, chosen once from the config by tsms_state_open:
 * the files under stateDir (lib/state_files.c) or, with a "redis" object, a
 * Redis shared by every host (lib/state_redis.c, the only hiredis user). When
 * Redis fails (down, timed out, refusing the credentials, answering garbage)
 * a login makes that decision and the rest of its decisions in the files, so
 * the host's own limits still hold, and logs one warning; the next login
 * tries Redis again.
 */
#ifndef TSMS_STATE_H
#define TSMS_STATE_H

#include <stdbool.h>
#include <stddef.h>
#include <time.h>

#include "config.h"
#include "error.h"
#include "log.h"

enum tsms_verdict {
	TSMS_VERDICT_OK = 0,
	TSMS_VERDICT_LOCKED,       /* lockoutThreshold wrong answers: locked for lockoutSeconds */
	TSMS_VERDICT_USER_LIMIT,   /* sendLimit SMS in this sendWindowSeconds window */
	TSMS_VERDICT_COOLDOWN,     /* the last SMS is younger than resendCooldownSeconds */
	TSMS_VERDICT_GLOBAL_LIMIT, /* globalSendLimit SMS across all users in this window */
};

/* Size of the buffer for a state problem. */
#define TSMS_STATE_ERR_MAX 320

/* One login's (or one admin command's) view of the state. */
struct tsms_state;

/* Opens the store cfg names; cfg and log (may be NULL) must outlive it. Redis
 * is connected at the first decision. NULL only when out of memory. */
struct tsms_state *tsms_state_open(const struct tsms_config *cfg, const struct tsms_log *log);

/* Disconnects and frees; st may be NULL. */
void tsms_state_close(struct tsms_state *st);

/* Reserves one SMS for user, counting it before it is sent (a failed send still
 * counts: Twilio may have billed it). Atomically (the user's lock, and the
 * global lock when globalSendLimit is set and count_global; one server-side
 * script in Redis) it refuses while the user is locked out, over sendLimit,
 * within the cooldown or over the global cap. A decoy challenge (no phone)
 * reserves with count_global false: it keeps the same per-user limits as a
 * real one but costs nothing. Returns TSMS_OK with *verdict and *wait_seconds
 * (until the refusal ends), or TSMS_ERR_STATE with the problem and its fix in
 * err (the files failed: the caller fails closed). now is this host's clock;
 * Redis decides by its own, the one clock of the fleet. */
enum tsms_err tsms_state_reserve_send(struct tsms_state *st, const char *user, time_t now,
                                      bool count_global, enum tsms_verdict *verdict,
                                      long long *wait_seconds, char err[TSMS_STATE_ERR_MAX]);

/* Gives back a reservation of tsms_state_reserve_send (count_global true) for
 * a text that provably never left (the request failed before it was written,
 * or Twilio refused it with a 4xx): one SMS less for the user and the global
 * cap, and no cooldown. Atomic like the reservation. */
enum tsms_err tsms_state_release_send(struct tsms_state *st, const char *user, time_t now,
                                      char err[TSMS_STATE_ERR_MAX]);

/* Records one answer as a wrong one. An answer is recorded BEFORE it is judged
 * (count first: a process killed or starved of resources in between still has
 * it counted; one whose record fails has nothing judged) and the record is
 * cleared by tsms_state_record_success when it was right. *locked: the user is
 * locked out now. *locked_before: the seconds left of a lockout that was already
 * running before this answer (another login's), 0 when none: such an answer
 * must not be judged at all. */
enum tsms_err tsms_state_record_failure(struct tsms_state *st, const char *user, time_t now,
                                        bool *locked, long long *locked_before,
                                        char err[TSMS_STATE_ERR_MAX]);

/* Records a right answer: clears the failure count and the lockout, and ends
 * the cooldown (a person who just answered is not made to wait for the next
 * login: ssh then sudo); the sends still count towards sendLimit. */
enum tsms_err tsms_state_record_success(struct tsms_state *st, const char *user, time_t now,
                                        char err[TSMS_STATE_ERR_MAX]);

/* Records that user used the backup code named id (lib/backup.h). With Redis,
 * *first is false when a host recorded id before: a code copied to several
 * hosts works once in the fleet (the set of used ids lives 400 days). The
 * files keep no record of their own, the used code has left this host's
 * backupCodesFile: *first is true. A Redis failure falls back like every
 * decision. */
enum tsms_err tsms_state_use_once(struct tsms_state *st, const char *user, const char *id,
                                  time_t now, bool *first, char err[TSMS_STATE_ERR_MAX]);

/* ---- graces (lib/grace.h): a time in which a user who proved the phone skips the code */

enum tsms_grace_kind {
	TSMS_GRACE_ADDRESS = 'a', /* key: the remote address, as inet_ntop writes it */
	TSMS_GRACE_SESSION = 's', /* key: "SESSIONID:BOOTID", the kernel's audit session */
	TSMS_GRACE_PENDING = 'p', /* key: the digest of a nonce the session hook redeems */
};

#define TSMS_GRACE_KEY_MAX 72 /* keys are [0-9a-f.:-], at most 71 characters */
#define TSMS_GRACE_MAX 12     /* a user's graces a store keeps: the oldest go first */

struct tsms_grace {
	char kind; /* enum tsms_grace_kind */
	char key[TSMS_GRACE_KEY_MAX];
	long long until; /* when it ends, by the store's clock */
	bool shared;     /* in Redis, for the fleet (graceScope fleet) */
};

/* Whether user has an open grace of kind for key and is not locked out.
 * *left: the seconds it has left, 0 when none applies; *locked: the user is
 * locked out (then *left is 0). Address graces live in Redis with graceScope
 * fleet (falling back to the files like every decision), everything else in
 * this host's stateDir; the lockout is read where the limits live. */
enum tsms_err tsms_state_grace_find(struct tsms_state *st, const char *user, char kind,
                                    const char *key, time_t now, long long *left, bool *locked,
                                    char err[TSMS_STATE_ERR_MAX]);

/* Opens (or restarts) user's grace of kind for key, ending at until. */
enum tsms_err tsms_state_grace_open(struct tsms_state *st, const char *user, char kind,
                                    const char *key, time_t now, long long until,
                                    char err[TSMS_STATE_ERR_MAX]);

/* Takes (removes) user's grace of kind for key: *until when it would have
 * ended, 0 when there was none open. */
enum tsms_err tsms_state_grace_take(struct tsms_state *st, const char *user, char kind,
                                    const char *key, time_t now, long long *until,
                                    char err[TSMS_STATE_ERR_MAX]);

/* user's open graces, this host's and (graceScope fleet) the fleet's: at most
 * 2 * TSMS_GRACE_MAX in out, *n of them. With Redis there is no fallback. */
enum tsms_err tsms_state_graces(struct tsms_state *st, const char *user, time_t now,
                                struct tsms_grace out[2 * TSMS_GRACE_MAX], size_t *n,
                                char err[TSMS_STATE_ERR_MAX]);

/* Ends every grace of user (twilio-sms-otp revoke-grace): *n how many were open. */
enum tsms_err tsms_state_grace_revoke(struct tsms_state *st, const char *user, time_t now,
                                      size_t *n, char err[TSMS_STATE_ERR_MAX]);

/* A user's limits and lockout as an administrator sees them (faillock's view). */
struct tsms_state_status {
	bool exists;             /* false: no state, the rest is zero but where */
	bool shared;             /* where is a Redis key, not a file */
	char where[320];         /* stateDir/NAME, or "KEY at URL" */
	unsigned sends;          /* SMS in the current sendWindowSeconds window */
	long long window_left;   /* seconds until that window ends, 0: no window */
	long long cooldown_left; /* seconds of resendCooldownSeconds left, 0: none */
	unsigned failures;       /* consecutive wrong codes */
	long long locked_until;  /* Unix time the lockout ends, 0: not locked */
	long long locked_left;   /* seconds until then */
	/* With Redis, this host's fallback file, or "": status sums it up in a line,
	 * unlock names it when it cleared it too */
	char fallback[400];
};

/* Reads user's state (the same lock or script as logins). Returns TSMS_OK
 * (status->exists false when the user has none) or TSMS_ERR_STATE. With Redis
 * there is no fallback: an unreachable Redis is the error; status->fallback
 * sums up this host's fallback file when it has one. */
enum tsms_err tsms_state_status(struct tsms_state *st, const char *user, time_t now,
                                struct tsms_state_status *status, char err[TSMS_STATE_ERR_MAX]);

/* Clears user's wrong-code count and lockout, keeping the send counts; before
 * gets the state as it was (exists false: nothing to clear, nothing written).
 * With Redis, also clears this host's fallback file when it has one, even
 * when Redis is unavailable (then the error, with before->fallback set). */
enum tsms_err tsms_state_unlock(struct tsms_state *st, const char *user, time_t now,
                                struct tsms_state_status *before, char err[TSMS_STATE_ERR_MAX]);

/* For `twilio-sms-otp check`: the files open stateDir; Redis connects,
 * authenticates and runs the script once. msg says what was checked, or the
 * problem (TSMS_ERR_STATE). */
enum tsms_err tsms_state_check(struct tsms_state *st, char msg[TSMS_STATE_ERR_MAX]);

/* Where user's state lives by this name: the user name itself when it matches
 * ^[a-z_][a-z0-9_.-]{0,31}$, else "=" and 32 hex digits of a digest, so that no
 * name can leave stateDir or keyPrefix. */
#define TSMS_STATE_NAME_MAX 40
void tsms_state_file_name(const char *user, char out[TSMS_STATE_NAME_MAX]);

/* Static, human readable description of a verdict. */
const char *tsms_verdict_name(enum tsms_verdict v);

/* ---- for the two stores only (lib/state_files.c, lib/state_redis.c) */

enum tsms_state_op {
	TSMS_OP_RESERVE,       /* reserve, and count globally */
	TSMS_OP_RESERVE_LOCAL, /* reserve for a decoy */
	TSMS_OP_RELEASE,       /* give a reserve back, globally too */
	TSMS_OP_FAILURE,
	TSMS_OP_SUCCESS,
	TSMS_OP_STATUS,
	TSMS_OP_UNLOCK,
	TSMS_OP_USE_ONCE, /* a backup code: a->id in, a->first out */
	/* graces: a->grace in (kind, key; until for OPEN) */
	TSMS_OP_GRACE_FIND,   /* a->wait: seconds left; a->locked; key "": the lockout only */
	TSMS_OP_GRACE_OPEN,   /* replaces one of the same kind and key */
	TSMS_OP_GRACE_TAKE,   /* a->grace->until: when it would have ended, 0: none */
	TSMS_OP_GRACE_LIST,   /* a->graces (TSMS_GRACE_MAX), a->n */
	TSMS_OP_GRACE_REVOKE, /* a->n: how many were open */
};

/* What an operation answers; status is set for STATUS and UNLOCK. */
struct tsms_state_answer {
	enum tsms_verdict verdict; /* RESERVE; FAILURE: LOCKED when locked before the answer */
	long long wait;            /* and for how long */
	bool locked;               /* FAILURE: locked out now */
	struct tsms_state_status *status;
	const char *id;            /* USE_ONCE */
	bool first;                /* USE_ONCE */
	struct tsms_grace *grace;  /* GRACE_FIND, OPEN, TAKE */
	struct tsms_grace *graces; /* GRACE_LIST */
	size_t n;                  /* GRACE_LIST, GRACE_REVOKE */
};

/* A user's record, as both stores keep it. */
struct tsms_state_record {
	long long window_start;
	unsigned sends;
	long long last_send;
	unsigned failures;
	long long locked_until;
	/* the files only: the user's graces (Redis keeps them in a key of their own) */
	struct tsms_grace graces[TSMS_GRACE_MAX];
	size_t n_graces;
};

struct tsms_state_store {
	const char *name;
	/* Runs op for user. *conn is the store's own per-open state (NULL at
	 * first). TSMS_ERR_UNAVAILABLE (Redis only) makes the caller fall back to
	 * the files; TSMS_ERR_STATE fails closed. */
	enum tsms_err (*apply)(void **conn, const struct tsms_config *cfg, const char *user,
	                       time_t now, enum tsms_state_op op, struct tsms_state_answer *a,
	                       char err[TSMS_STATE_ERR_MAX]);
	enum tsms_err (*check)(void **conn, const struct tsms_config *cfg,
	                       char msg[TSMS_STATE_ERR_MAX]);
	void (*close)(void *conn);
};

extern const struct tsms_state_store tsms_state_files;
extern const struct tsms_state_store tsms_state_redis;

/* The Redis store's one Lua script and its SHA-1, the name EVALSHA uses. */
extern const char tsms_state_redis_script[];
extern const char tsms_state_redis_sha1[];

/* A clock that stepped back (NTP correcting a fast clock) must not stretch a
 * limit: times rec holds in the future of now are capped, so that no window,
 * cooldown or lockout lasts longer from now than configured. True when a time
 * was capped: the store writes the record back even when it changes nothing
 * else, or the next read would cap to its own now again. Both stores apply it
 * to what they read (the Redis script does the same by the server's clock). */
bool tsms_state_cap(const struct tsms_config *cfg, struct tsms_state_record *rec, time_t now);

/* Fills status from rec as it stands at now (an expired lockout is shown as
 * none); status->exists, where and shared are the caller's. */
void tsms_state_describe(const struct tsms_config *cfg, const struct tsms_state_record *rec,
                         time_t now, struct tsms_state_status *status);

#endif
