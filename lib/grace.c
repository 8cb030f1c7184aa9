/* grace.c - the graces by address and by audit session (grace.h) */
#include "grace.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "caller.h"
#include "otp.h"
#include "phone.h"

const char TSMS_METHOD_GRACE_ADDRESS[] = "grace-address";
const char TSMS_METHOD_GRACE_SESSION[] = "grace-session";

#define SESSION_UNSET 4294967295U /* (unsigned)-1: the kernel's AUDIT_SID_UNSET */
#define NONCE_BYTES 16
/* How long a nonce waits for its session: sshd opens it at once after the code. */
#define PENDING_SECONDS 120

bool tsms_grace_address(const char *rhost, char out[TSMS_GRACE_KEY_MAX])
{
	unsigned char addr[16];

	out[0] = '\0';
	if (rhost == NULL || rhost[0] == '\0')
		return false;
	if (inet_pton(AF_INET, rhost, addr) == 1)
		return inet_ntop(AF_INET, addr, out, TSMS_GRACE_KEY_MAX) != NULL;
	if (inet_pton(AF_INET6, rhost, addr) != 1)
		return false;
	if (memcmp(addr, "\0\0\0\0\0\0\0\0\0\0\xff\xff", 12) == 0) /* ::ffff:a.b.c.d */
		return inet_ntop(AF_INET, addr + 12, out, TSMS_GRACE_KEY_MAX) != NULL;
	return inet_ntop(AF_INET6, addr, out, TSMS_GRACE_KEY_MAX) != NULL;
}

/* Reads a small kernel file into buf (without its newline); false when it cannot. */
static bool read_proc(const char *path, char *buf, size_t size)
{
	ssize_t n;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return false;
	do
		n = read(fd, buf, size - 1);
	while (n < 0 && errno == EINTR);
	close(fd);
	if (n <= 0)
		return false;
	buf[n] = '\0';
	buf[strcspn(buf, "\n")] = '\0';
	return true;
}

/* This process's audit session id as the kernel gives it (SESSION_UNSET: in
 * none); false when it cannot be read. */
static bool session_id(unsigned long *v)
{
	char sid[16];
	char *end;

	if (!read_proc("/proc/self/sessionid", sid, sizeof(sid)) || sid[0] < '0' || sid[0] > '9')
		return false;
	errno = 0;
	*v = strtoul(sid, &end, 10);
	return errno == 0 && *end == '\0' && *v <= SESSION_UNSET;
}

bool tsms_grace_session(char out[TSMS_GRACE_KEY_MAX], unsigned *id)
{
	char boot[40];
	unsigned long v;

	out[0] = '\0';
	*id = SESSION_UNSET;
	if (!session_id(&v) || v == SESSION_UNSET)
		return false;
	if (!read_proc("/proc/sys/kernel/random/boot_id", boot, sizeof(boot)) ||
	    strlen(boot) != 36 || strspn(boot, "0123456789abcdef-") != 36)
		return false;
	*id = (unsigned)v;
	snprintf(out, TSMS_GRACE_KEY_MAX, "%lu:%s", v, boot);
	return true;
}

/* 12 hex digits naming process pid as it runs now: its pid and its start time
 * (/proc/PID/stat's 22nd field), so that a pid used again later is another
 * name. False when it cannot be read. */
static bool process_name(pid_t pid, char out[13])
{
	char path[40], buf[1024], id[48], hex[TSMS_DIGEST_HEX];
	const char *p;
	unsigned long long start;
	int field;

	snprintf(path, sizeof(path), "/proc/%ld/stat", (long)pid);
	if (!read_proc(path, buf, sizeof(buf)))
		return false;
	p = strrchr(buf, ')'); /* the command's name may hold anything but its end */
	if (p == NULL)
		return false;
	for (field = 2; field < 21 && p != NULL; field++) /* ")" ends field 2 */
		p = strchr(p + 1, ' ');
	if (p == NULL || sscanf(p + 1, "%llu", &start) != 1)
		return false;
	snprintf(id, sizeof(id), "%ld:%llu", (long)pid, start);
	tsms_digest_hex(NULL, id, hex);
	memcpy(out, hex, 12);
	out[12] = '\0';
	return true;
}

/* True when this process is in no audit session: a login process (sshd, login)
 * started by the system, not a program run inside someone's session. */
static bool outside_sessions(void)
{
	unsigned long v;

	return session_id(&v) && v == SESSION_UNSET;
}

bool tsms_grace_applies(const struct tsms_config *cfg, struct tsms_state *st, const char *user,
                        const char *phone, const char *rhost, struct tsms_outcome *outcome)
{
	char key[TSMS_GRACE_KEY_MAX], err[TSMS_STATE_ERR_MAX];
	time_t now = time(NULL);
	long long left = 0;
	bool locked = false;
	unsigned id;

	/* a caller that names a remote host is a login, never inside a session */
	if (cfg->session_grace_seconds > 0 && (rhost == NULL || rhost[0] == '\0') &&
	    tsms_grace_session(key, &id) &&
	    tsms_state_grace_find(st, user, TSMS_GRACE_SESSION, key, now, &left, &locked, err) ==
	            TSMS_OK &&
	    left > 0) {
		outcome->method = TSMS_METHOD_GRACE_SESSION;
		tsms_format_clean(outcome->reason, sizeof(outcome->reason),
		                  "in audit session %u, opened after a right code: "
		                  "sessionGraceSeconds, %lld s left",
		                  id, left);
	} else if (!locked && cfg->grace_period_seconds > 0 && tsms_grace_address(rhost, key) &&
	           tsms_state_grace_find(st, user, TSMS_GRACE_ADDRESS, key, now, &left, &locked,
	                                 err) == TSMS_OK &&
	           left > 0) {
		outcome->method = TSMS_METHOD_GRACE_ADDRESS;
		tsms_format_clean(outcome->reason, sizeof(outcome->reason),
		                  "from %s, where a right code was given: gracePeriodSeconds, "
		                  "%lld s left",
		                  key, left);
	} else {
		return false;
	}
	outcome->grace_until = now + left;
	tsms_phone_mask(phone, outcome->masked_phone);
	return true;
}

void tsms_grace_after(const struct tsms_config *cfg, struct tsms_state *st, const char *user,
                      const char *rhost, const struct tsms_outcome *outcome,
                      const struct tsms_log *log, char nonce[TSMS_GRACE_NONCE_MAX])
{
	bool by_code = outcome->method != NULL && (strcmp(outcome->method, "sms") == 0 ||
	                                           strcmp(outcome->method, "backup-code") == 0);
	char key[TSMS_GRACE_KEY_MAX], err[TSMS_STATE_ERR_MAX], digest[TSMS_DIGEST_HEX];
	char who[TSMS_CALLER_WHO_MAX], self[13], parent[13];
	time_t now = time(NULL);
	long long until;

	nonce[0] = '\0';
	if (!by_code && outcome->method != TSMS_METHOD_GRACE_ADDRESS)
		return;
	if (by_code && cfg->grace_period_seconds > 0 && tsms_grace_address(rhost, key) &&
	    tsms_state_grace_open(st, user, TSMS_GRACE_ADDRESS, key, now,
	                          now + cfg->grace_period_seconds, err) != TSMS_OK)
		tsms_log(log, LOG_WARNING, "no grace by address for %s: %s", user, err);
	/* a login process the caller cannot signal (sshd, login), in no session yet:
	 * su and sudo hand PAM's environment to the command they run */
	if (cfg->session_grace_seconds == 0 || !outside_sessions() || tsms_caller_can_signal(who) ||
	    !process_name(getpid(), self) || !process_name(getppid(), parent))
		return;
	until = now + cfg->session_grace_seconds;
	if (!by_code && outcome->grace_until < until)
		until = outcome->grace_until; /* never longer than the code it comes from */
	if (tsms_random_hex(nonce, NONCE_BYTES) != 0) {
		nonce[0] = '\0';
		return;
	}
	/* redeemed only by this process or its parent (sshd's monitor) */
	tsms_digest_hex(NULL, nonce, digest);
	snprintf(key, sizeof(key), "%.24s-%s-%s-%llx", digest, self, parent,
	         (unsigned long long)until);
	if (tsms_state_grace_open(st, user, TSMS_GRACE_PENDING, key, now,
	                          until < now + PENDING_SECONDS ? until : now + PENDING_SECONDS,
	                          err) != TSMS_OK) {
		tsms_log(log, LOG_WARNING, "no session grace for %s: %s", user, err);
		tsms_wipe(nonce, TSMS_GRACE_NONCE_MAX);
		nonce[0] = '\0';
	}
}

/* Takes user's pending grace of nonce, when this process may redeem it: *until
 * the session grace's end, 0 when there is none; *elsewhere when it was made for
 * another process (a nonce handed on). */
static enum tsms_err take_pending(struct tsms_state *st, const char *user, const char *nonce,
                                  time_t now, long long *until, bool *elsewhere,
                                  char err[TSMS_STATE_ERR_MAX])
{
	struct tsms_grace graces[2 * TSMS_GRACE_MAX];
	char digest[TSMS_DIGEST_HEX], prefix[26], self[13];
	unsigned long long session_until;
	long long pending_until = 0;
	enum tsms_err e;
	size_t n;

	*until = 0;
	*elsewhere = false;
	tsms_digest_hex(NULL, nonce, digest);
	snprintf(prefix, sizeof(prefix), "%.24s-", digest);
	e = tsms_state_graces(st, user, now, graces, &n, err);
	if (e != TSMS_OK)
		return e;
	for (size_t i = 0; i < n; i++) {
		const struct tsms_grace *g = &graces[i];
		const char *ids = g->key + strlen(prefix);

		if (g->kind != TSMS_GRACE_PENDING || strncmp(g->key, prefix, strlen(prefix)) != 0)
			continue;
		e = tsms_state_grace_take(st, user, TSMS_GRACE_PENDING, g->key, now, &pending_until,
		                          err); /* used once, whoever asks */
		if (e != TSMS_OK || pending_until == 0)
			return e;
		if (!process_name(getpid(), self) || strlen(ids) < 27 ||
		    (strncmp(ids, self, 12) != 0 && strncmp(ids + 13, self, 12) != 0)) {
			*elsewhere = true;
			return TSMS_OK;
		}
		if (sscanf(ids + 25, "-%llx", &session_until) == 1)
			*until = (long long)session_until;
		return TSMS_OK;
	}
	return TSMS_OK;
}

bool tsms_grace_session_opened(const struct tsms_config *cfg, struct tsms_state *st,
                               const char *user, const char *nonce, const struct tsms_log *log)
{
	char key[TSMS_GRACE_KEY_MAX], err[TSMS_STATE_ERR_MAX];
	time_t now = time(NULL);
	long long until = 0;
	bool elsewhere;
	unsigned id;

	if (cfg->session_grace_seconds == 0) {
		tsms_log(log, LOG_WARNING,
		         "no session grace for %s: sessionGraceSeconds is 0 in this session "
		         "line's config; fix: give the auth and session lines the same config=",
		         user);
		return false;
	}
	if (strlen(nonce) != 2 * NONCE_BYTES ||
	    strspn(nonce, "0123456789abcdef") != 2 * NONCE_BYTES) {
		tsms_log(log, LOG_WARNING, "no session grace for %s: %s is malformed", user,
		         TSMS_GRACE_ENV);
		return false;
	}
	if (take_pending(st, user, nonce, now, &until, &elsewhere, err) != TSMS_OK) {
		tsms_log(log, LOG_ERR, "no session grace for %s: %s", user, err);
		return false;
	}
	if (elsewhere) {
		tsms_log(log, LOG_WARNING,
		         "no session grace for %s: %s was made for another process than this "
		         "login's (handed on through an environment)",
		         user, TSMS_GRACE_ENV);
		return false;
	}
	if (until > now + cfg->session_grace_seconds)
		until = now + cfg->session_grace_seconds;
	if (until <= now) {
		tsms_log(log, LOG_WARNING,
		         "no session grace for %s: %s names no code of theirs (expired, used, "
		         "or another stateDir: give the auth and session lines the same config=)",
		         user, TSMS_GRACE_ENV);
		return false;
	}
	if (!tsms_grace_session(key, &id)) {
		tsms_log(log, LOG_WARNING,
		         "no session grace for %s: the process has no audit session; fix: put "
		         "the line 'session optional pam_twilio_sms.so' after pam_loginuid.so, "
		         "which starts it",
		         user);
		return false;
	}
	if (tsms_state_grace_open(st, user, TSMS_GRACE_SESSION, key, now, until, err) != TSMS_OK) {
		tsms_log(log, LOG_ERR, "no session grace for %s: %s", user, err);
		return false;
	}
	tsms_log(log, LOG_INFO,
	         "session grace for %s: audit session %u, %lld s (sessionGraceSeconds)", user, id,
	         until - now);
	return true;
}

void tsms_grace_session_closed(const struct tsms_config *cfg, struct tsms_state *st,
                               const char *user, const struct tsms_log *log)
{
	char key[TSMS_GRACE_KEY_MAX], err[TSMS_STATE_ERR_MAX];
	long long until = 0;
	unsigned id;

	if (cfg->session_grace_seconds == 0 || !tsms_grace_session(key, &id))
		return;
	if (tsms_state_grace_take(st, user, TSMS_GRACE_SESSION, key, time(NULL), &until, err) !=
	    TSMS_OK)
		tsms_log(log, LOG_ERR, "session grace for %s not ended: %s", user, err);
	else if (until != 0)
		tsms_log(log, LOG_DEBUG, "session grace for %s ended with audit session %u", user,
		         id);
}
