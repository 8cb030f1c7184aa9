/* grace.h - fewer texts for the person who just proved the phone
 *
 * Two graces, each off unless the config sets its time (pam_twilio_sms.json(5)):
 *
 * - By address (gracePeriodSeconds): after a right code (SMS or backup code)
 *   from the remote address A (PAM_RHOST, an IP address; a host name never
 *   qualifies), the same user's logins from A skip the challenge until the
 *   time ends. A login in the grace does not extend it. Kept in this host's
 *   stateDir, or (graceScope fleet) in Redis for every host.
 *
 * - By audit session (sessionGraceSeconds): sudo or su run inside a login
 *   session that was opened after a right code skip it. The kernel numbers
 *   the session (/proc/self/sessionid) when pam_loginuid sets the login uid;
 *   nobody else can choose or change it. sshd authenticates in another
 *   process than the one that opens the session (privilege separation), so
 *   the auth phase leaves a random nonce in PAM's environment, which sshd
 *   carries to the session, and its digest in stateDir; the module's session
 *   hook (session optional pam_twilio_sms.so, after pam_loginuid) redeems it
 *   and records the new session. A login without a code (a key alone) leaves
 *   no nonce, so its session never counts. Only a login process outside any
 *   session (sshd or login started by systemd) leaves one: sudo and su run
 *   inside one. Only a caller without a remote host (sudo, su) uses one.
 *
 * Neither applies to a user without a number (their challenge is a decoy) or
 * to one locked out. A grace never outlasts the code it comes from: the
 * session of a login let in by an address grace gets what is left of it.
 */
#ifndef TSMS_GRACE_H
#define TSMS_GRACE_H

#include <stdbool.h>

#include "challenge.h"
#include "config.h"
#include "log.h"
#include "state.h"

/* PAM's environment variable that carries the nonce from auth to session. */
#define TSMS_GRACE_ENV "PAM_TWILIO_SMS_SESSION"
/* Its value: 32 random hex digits. */
#define TSMS_GRACE_NONCE_MAX 48

/* The methods of the outcome line (lib/challenge.h's struct tsms_outcome). */
extern const char TSMS_METHOD_GRACE_ADDRESS[];
extern const char TSMS_METHOD_GRACE_SESSION[];

/* The address grace's key for rhost, as inet_ntop writes the address (an IPv4
 * address mapped into IPv6 as IPv4). False when rhost is NULL, empty, or no
 * IP address (a host name: sshd with UseDNS yes). */
bool tsms_grace_address(const char *rhost, char out[TSMS_GRACE_KEY_MAX]);

/* This process's audit session as a key, "SESSIONID:BOOTID" (ids start again
 * at each boot), and its number. False when the kernel gives none (no login
 * uid set, no audit support) or a file cannot be read. */
bool tsms_grace_session(char out[TSMS_GRACE_KEY_MAX], unsigned *id);

/* Before a mapped user's challenge: true when a grace lets user in; outcome
 * then has the method, the masked phone and the reason. rhost is PAM_RHOST
 * (NULL: none). A lockout, a state that cannot be read, or no grace: false. */
bool tsms_grace_applies(const struct tsms_config *cfg, struct tsms_state *st, const char *user,
                        const char *phone, const char *rhost, struct tsms_outcome *outcome);

/* After a login let in by a right code or an address grace (outcome->method):
 * opens the address grace (a code only), and when session graces are on and
 * this process is in no audit session, makes the nonce for the session hook
 * (nonce "" when none). A failure is logged and costs only the grace. */
void tsms_grace_after(const struct tsms_config *cfg, struct tsms_state *st, const char *user,
                      const char *rhost, const struct tsms_outcome *outcome,
                      const struct tsms_log *log, char nonce[TSMS_GRACE_NONCE_MAX]);

/* The session hook: redeems nonce (the value of TSMS_GRACE_ENV) for user and,
 * when the process has an audit session now (pam_loginuid ran in between),
 * opens the session grace: true then. Every outcome is logged; nothing fails
 * the session. */
bool tsms_grace_session_opened(const struct tsms_config *cfg, struct tsms_state *st,
                               const char *user, const char *nonce, const struct tsms_log *log);

/* The session hook at the end of a session it opened a grace for: ends
 * user's grace of this audit session, so that what the user left running
 * cannot use it after logout. */
void tsms_grace_session_closed(const struct tsms_config *cfg, struct tsms_state *st,
                               const char *user, const struct tsms_log *log);

#endif
