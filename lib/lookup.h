/* lookup.h - where a user's number comes from: its sources, asked in order */
#ifndef TSMS_LOOKUP_H
#define TSMS_LOOKUP_H

#include "config.h"
#include "error.h"
#include "phone.h"

enum tsms_source {
	TSMS_SOURCE_NONE = 0,   /* no source knows the user */
	TSMS_SOURCE_USERS,      /* the config's users object */
	TSMS_SOURCE_USERS_FILE, /* the usersFile */
	TSMS_SOURCE_LDAP,       /* the directory (config "ldap") */
};

/* A user's number and where it was found. */
struct tsms_number {
	char phone[TSMS_PHONE_MAX]; /* E.164; "" with TSMS_SOURCE_NONE */
	enum tsms_source source;
	char where[320]; /* the usersFile's path or the entry's DN; "" otherwise */
};

/* Asks the sources in order: the config's users and its usersFile (a user in
 * both is a config error), then the directory when one is configured, so a
 * local entry overrides the directory. Returns TSMS_OK (num->source NONE when
 * no source knows user); TSMS_ERR_CONFIG for a malformed entry of user or a
 * users file that cannot answer for user (see tsms_users_find);
 * TSMS_ERR_UNAVAILABLE when the directory cannot be asked (failMode decides);
 * TSMS_ERR_DIRECTORY when its answer cannot be used. err says why. */
enum tsms_err tsms_lookup(const struct tsms_config *cfg, const char *user, struct tsms_number *num,
                          char err[TSMS_CONFIG_ERR_MAX]);

/* tsms_lookup for an account (lib/account.h) whose user typed another spelling
 * of its name: the sources are asked for account first; when they map no number
 * to it, or the directory refuses it (TSMS_ERR_DIRECTORY: SSSD's short name under
 * a filter with %d), they are asked for typed, as before there was an account
 * name, so that entries made under the spelling users type are still found.
 * typed's number or error wins then, except that typed unmapped leaves
 * account's result. So against asking for typed alone the result can only be a
 * number where there was none, or a refusal. typed NULL or equal to account:
 * tsms_lookup. */
enum tsms_err tsms_lookup_account(const struct tsms_config *cfg, const char *account,
                                  const char *typed, struct tsms_number *num,
                                  char err[TSMS_CONFIG_ERR_MAX]);

/* "users", "usersFile", "ldap", or "-" for none. */
const char *tsms_source_name(enum tsms_source source);

#endif
