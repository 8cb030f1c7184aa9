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

/* The URI scheme of a checked ldap.uri: "ldaps", "ldap" or "ldapi". */
const char *tsms_directory_scheme(const char *uri);

/* The source of lib/lookup.h for the directory: one search under baseDN with
 * the filter, %u replaced by user escaped per RFC 4515 (libldap's escaping),
 * over TLS verified against ldap.caFile (else the system store), bound as
 * bindDN or anonymously, all within ldap.timeoutSeconds. Exactly one entry
 * with the attribute: its first value, normalised, in num (source LDAP, where
 * the DN). No entry, or no attribute: num->source NONE. Several entries or a
 * value that is not "+" and 7 to 15 digits: TSMS_ERR_DIRECTORY. The directory
 * unreachable, slow, its TLS or the bind refused: TSMS_ERR_UNAVAILABLE. err
 * says why, naming the user and the DNs, never the bind password. */
enum tsms_err tsms_directory_find(const struct tsms_config *cfg, const char *user,
                                  struct tsms_number *num, char err[TSMS_CONFIG_ERR_MAX]);

#endif
