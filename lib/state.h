/* state.h - per-user send limits and lockout, kept in small files under stateDir */
#ifndef TSMS_STATE_H
#define TSMS_STATE_H

#include <stdbool.h>
#include <stddef.h>
#include <time.h>

#include "config.h"
#include "error.h"

enum tsms_verdict {
	TSMS_VERDICT_OK = 0,
	TSMS_VERDICT_LOCKED,       /* lockoutThreshold wrong answers: locked for lockoutSeconds */
	TSMS_VERDICT_USER_LIMIT,   /* sendLimit SMS in this sendWindowSeconds window */
	TSMS_VERDICT_COOLDOWN,     /* the last SMS is younger than resendCooldownSeconds */
	TSMS_VERDICT_GLOBAL_LIMIT, /* globalSendLimit SMS across all users in this window */
};

/* Size of the buffer for a state problem. */
#define TSMS_STATE_ERR_MAX 320

/* Reserves one SMS for user, counting it before it is sent (a failed send still
 * counts: Twilio may have billed it). Under the user's lock, and the global lock
 * when globalSendLimit is set and count_global, it refuses while the user is
 * locked out, over sendLimit, within the cooldown or over the global cap. A
 * decoy challenge (no phone) reserves with count_global false: it keeps the same
 * per-user limits as a real one but costs nothing. Returns TSMS_OK with *verdict
 * and *wait_seconds (until the refusal ends), or TSMS_ERR_STATE with the problem
 * and its fix in err. */
enum tsms_err tsms_state_reserve_send(const struct tsms_config *cfg, const char *user, time_t now,
                                      bool count_global, enum tsms_verdict *verdict,
                                      long long *wait_seconds, char err[TSMS_STATE_ERR_MAX]);

/* Records a wrong answer; *locked is set when it locks the user out. */
enum tsms_err tsms_state_record_failure(const struct tsms_config *cfg, const char *user, time_t now,
                                        bool *locked, char err[TSMS_STATE_ERR_MAX]);

/* Records a right answer: clears the failure count. */
enum tsms_err tsms_state_record_success(const struct tsms_config *cfg, const char *user, time_t now,
                                        char err[TSMS_STATE_ERR_MAX]);

/* A user's limits and lockout as an administrator sees them (faillock's view). */
struct tsms_state_status {
	bool exists;             /* false: no state file, the rest is zero */
	char file[320];          /* stateDir/NAME */
	unsigned sends;          /* SMS in the current sendWindowSeconds window */
	long long window_left;   /* seconds until that window ends, 0: no window */
	long long cooldown_left; /* seconds of resendCooldownSeconds left, 0: none */
	unsigned failures;       /* consecutive wrong codes */
	long long locked_until;  /* Unix time the lockout ends, 0: not locked */
	long long locked_left;   /* seconds until then */
};

/* Reads user's state under the same lock as the module. Returns TSMS_OK (with
 * status->exists false when the user has none) or TSMS_ERR_STATE. */
enum tsms_err tsms_state_status(const struct tsms_config *cfg, const char *user, time_t now,
                                struct tsms_state_status *status, char err[TSMS_STATE_ERR_MAX]);

/* Clears user's wrong-code count and lockout, keeping the send counts, under
 * the module's lock; before gets the state as it was (exists false: nothing
 * to clear, nothing written). */
enum tsms_err tsms_state_unlock(const struct tsms_config *cfg, const char *user, time_t now,
                                struct tsms_state_status *before, char err[TSMS_STATE_ERR_MAX]);

/* Writes the name of user's state file inside stateDir: the user name itself
 * when it matches ^[a-z_][a-z0-9_.-]{0,31}$, else "=" and 32 hex digits of a
 * digest, so that no name can leave the directory. */
#define TSMS_STATE_NAME_MAX 40
void tsms_state_file_name(const char *user, char out[TSMS_STATE_NAME_MAX]);

/* Static, human readable description of a verdict. */
const char *tsms_verdict_name(enum tsms_verdict v);

#endif
