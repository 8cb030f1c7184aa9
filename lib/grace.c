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

#include "otp.h"
#include "phone.h"

const char TSMS_METHOD_GRACE_ADDRESS[] = "grace-address";
const char TSMS_METHOD_GRACE_SESSION[] = "grace-session";

#define SESSION_UNSET 4294967295U /* (unsigned)-1: the kernel's AUDIT_SID_UNSET */
#define NONCE_BYTES 16

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

bool tsms_grace_session(char out[TSMS_GRACE_KEY_MAX], unsigned *id)
{
	char sid[16], boot[40];
	unsigned long v;
	char *end;

	out[0] = '\0';
	*id = SESSION_UNSET;
	if (!read_proc("/proc/self/sessionid", sid, sizeof(sid)) || sid[0] < '0' || sid[0] > '9')
		return false;
	errno = 0;
	v = strtoul(sid, &end, 10);
	if (errno != 0 || *end != '\0' || v >= SESSION_UNSET)
		return false;
	if (!read_proc("/proc/sys/kernel/random/boot_id", boot, sizeof(boot)) ||
	    strlen(boot) != 36 || strspn(boot, "0123456789abcdef-") != 36)
		return false;
	*id = (unsigned)v;
	snprintf(out, TSMS_GRACE_KEY_MAX, "%lu:%s", v, boot);
	return true;
}

/* True when this process is in no audit session: a login process (sshd, login)
 * started by the system, not a program run inside someone's session. */
static bool outside_sessions(void)
{
	char sid[16];

	return read_proc("/proc/self/sessionid", sid, sizeof(sid)) &&
	       strcmp(sid, "4294967295") == 0;
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
	time_t now = time(NULL);
	long long until;

	nonce[0] = '\0';
	if (!by_code && outcome->method != TSMS_METHOD_GRACE_ADDRESS)
		return;
	if (by_code && cfg->grace_period_seconds > 0 && tsms_grace_address(rhost, key) &&
	    tsms_state_grace_open(st, user, TSMS_GRACE_ADDRESS, key, now,
	                          now + cfg->grace_period_seconds, err) != TSMS_OK)
		tsms_log(log, LOG_WARNING, "no grace by address for %s: %s", user, err);
	if (cfg->session_grace_seconds == 0 || !outside_sessions())
		return;
	until = now + cfg->session_grace_seconds;
	if (!by_code && outcome->grace_until < until)
		until = outcome->grace_until; /* never longer than the code it comes from */
	if (tsms_random_hex(nonce, NONCE_BYTES) != 0) {
		nonce[0] = '\0';
		return;
	}
	tsms_digest_hex(NULL, nonce, digest);
	if (tsms_state_grace_open(st, user, TSMS_GRACE_PENDING, digest, now, until, err) !=
	    TSMS_OK) {
		tsms_log(log, LOG_WARNING, "no session grace for %s: %s", user, err);
		tsms_wipe(nonce, TSMS_GRACE_NONCE_MAX);
		nonce[0] = '\0';
	}
}

bool tsms_grace_session_opened(const struct tsms_config *cfg, struct tsms_state *st,
                               const char *user, const char *nonce, const struct tsms_log *log)
{
	char key[TSMS_GRACE_KEY_MAX], err[TSMS_STATE_ERR_MAX], digest[TSMS_DIGEST_HEX];
	time_t now = time(NULL);
	long long until = 0;
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
	tsms_digest_hex(NULL, nonce, digest);
	if (tsms_state_grace_take(st, user, TSMS_GRACE_PENDING, digest, now, &until, err) !=
	    TSMS_OK) {
		tsms_log(log, LOG_ERR, "no session grace for %s: %s", user, err);
		return false;
	}
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
