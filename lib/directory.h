/* directory.h - phone numbers from an LDAP directory (the only libldap user) */
#ifndef TSMS_DIRECTORY_H
#define TSMS_DIRECTORY_H

#include <stdbool.h>

#include "config.h"
#include "error.h"
#include "lookup.h"

/* Size of the buffer of tsms_directory_check_uri */
#define TSMS_DIRECTORY_MSG 200

/* Checks the config's ldap.uri with libldap's URL parser: one or more
 * space-separated ldaps://, ldap:// or ldapi:// URIs of one scheme, host (and
 * port) only. Returns true, or false with the problem. */
bool tsms_directory_check_uri(const char *uri, char problem[TSMS_DIRECTORY_MSG]);

/* Size of tsms_directory_reason's text */
#define TSMS_DIRECTORY_REASON 360

/* What a failed libldap call means, named for what it is, then "; fix: ...":
 * from the LDAP result code rc (or libldap's negative code, e.g.
 * LDAP_SERVER_DOWN) and the diagnostic message diag (the server's, such as
 * Active Directory's "80090308: LdapErr: ..., data 775, v4563", or libldap's
 * TLS detail; NULL or "" when none), which ends the "what" part in brackets,
 * cut at 120 bytes. A certificate name mismatch or other verification failure,
 * AD's refusals (data 525, 52e, 530, 531, 532, 533, 701, 773, 775) and invalid
 * credentials (49) are each named. Not sanitised: the caller's log line is. */
void tsms_directory_reason(int rc, const char *diag, char reason[TSMS_DIRECTORY_REASON]);

/* The URI scheme of a checked ldap.uri: "ldaps", "ldap" or "ldapi". */
const char *tsms_directory_scheme(const char *uri);

/* The search filter for user (a new string in *filter, to free): ldap.filter
 * with %u replaced by the user name, %s by its short name and %d by its domain,
 * each escaped per RFC 4515 by libldap. The name is split when the filter has
 * %s or %d or ldap.domains is set: NAME@DOMAIN (SSSD) and DOMAIN\NAME
 * (winbind) have a domain, NAME has none (%d empty). A name with two
 * separators ('@' and '\', or two of one) or an empty part, and a domain that
 * ldap.domains does not list (in any case), are TSMS_ERR_DIRECTORY with err:
 * the login is denied, whatever failMode says, without a search. */
enum tsms_err tsms_directory_filter(const struct tsms_ldap *l, const char *user, char **filter,
                                    char err[TSMS_CONFIG_ERR_MAX]);

/* The source of lib/lookup.h for the directory: one search under baseDN with
 * tsms_directory_filter's filter (a refusal of it is returned as it is),
 * over TLS verified against ldap.caFile (else the system store), bound as
 * bindDN or anonymously, all within ldap.timeoutSeconds. Exactly one entry
 * with the attribute: its first value, normalised, in num (source LDAP, where
 * the DN). No entry, or no attribute: num->source NONE; but no entry for a name
 * with '@' or '\' that the filter takes whole (%u only, no ldap.domains) is
 * TSMS_ERR_DIRECTORY: a setup that does not split SSSD's or winbind's names
 * would otherwise take every such user for one without a number. Several entries or a
 * value that is not "+" and 7 to 15 digits: TSMS_ERR_DIRECTORY. The directory
 * unreachable, slow, its TLS or the bind refused: TSMS_ERR_UNAVAILABLE. err
 * says why, naming the user and the DNs, never the bind password. */
enum tsms_err tsms_directory_find(const struct tsms_config *cfg, const char *user,
                                  struct tsms_number *num, char err[TSMS_CONFIG_ERR_MAX]);

/* For `twilio-sms-otp check`: what a login needs of the directory, tried as a
 * login does it (a child process, ldap.timeoutSeconds): connect, TLS, bind,
 * and one entry under baseDN that shows ldap.attribute to the service account
 * (the filter "(ATTRIBUTE=*)", size limit 1). TSMS_OK with msg "ldap: connected
 * to URI, bound as ldap.bindDN and read ATTRIBUTE of DN: OK" (never the value);
 * TSMS_ERR_DIRECTORY when no entry shows it (none has it, or the access rules
 * hide it from the service account); TSMS_ERR_UNAVAILABLE and the cause with
 * its fix (tsms_directory_reason) when the directory cannot be used. */
enum tsms_err tsms_directory_probe(const struct tsms_config *cfg, char msg[TSMS_CONFIG_ERR_MAX]);

#endif
