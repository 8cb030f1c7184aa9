/* lookup.c - where a user's number comes from: its sources, asked in order
 *
 * Each source is one entry of a table: adding one (the directory) is a new
 * file and a row here; callers never learn the details. */
#include "lookup.h"

#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "directory.h"
#include "users.h"

struct source {
	bool (*configured)(const struct tsms_config *cfg);
	enum tsms_err (*find)(const struct tsms_config *cfg, const char *user,
	                      struct tsms_number *num, char err[TSMS_CONFIG_ERR_MAX]);
};

static bool always(const struct tsms_config *cfg)
{
	(void)cfg;
	return true;
}

static bool has_directory(const struct tsms_config *cfg)
{
	return cfg->ldap != NULL;
}

/* In order: a local entry overrides the directory (break glass). */
static const struct source sources[] = {
	{ always, tsms_users_find },            /* users, then usersFile */
	{ has_directory, tsms_directory_find }, /* ldap */
};

enum tsms_err tsms_lookup(const struct tsms_config *cfg, const char *user, struct tsms_number *num,
                          char err[TSMS_CONFIG_ERR_MAX])
{
	memset(num, 0, sizeof(*num));
	err[0] = '\0';
	for (size_t i = 0; i < sizeof(sources) / sizeof(sources[0]); i++) {
		enum tsms_err e;

		if (!sources[i].configured(cfg))
			continue;
		e = sources[i].find(cfg, user, num, err);
		if (e != TSMS_OK || num->source != TSMS_SOURCE_NONE) {
			if (e != TSMS_OK)
				memset(num, 0, sizeof(*num));
			return e;
		}
	}
	return TSMS_OK;
}

enum tsms_err tsms_lookup_account(const struct tsms_config *cfg, const char *account,
                                  const char *typed, struct tsms_number *num,
                                  char err[TSMS_CONFIG_ERR_MAX])
{
	char first_err[TSMS_CONFIG_ERR_MAX];
	enum tsms_err first, e;

	first = tsms_lookup(cfg, account, num, err);
	if (typed == NULL || strcmp(typed, account) == 0 ||
	    (first == TSMS_OK && num->source != TSMS_SOURCE_NONE) ||
	    (first != TSMS_OK && first != TSMS_ERR_DIRECTORY))
		return first;
	memcpy(first_err, err, sizeof(first_err));
	e = tsms_lookup(cfg, typed, num, err);
	if (e != TSMS_OK || num->source != TSMS_SOURCE_NONE)
		return e;
	memcpy(err, first_err, sizeof(first_err));
	return first;
}

const char *tsms_source_name(enum tsms_source source)
{
	switch (source) {
	case TSMS_SOURCE_USERS:
		return "users";
	case TSMS_SOURCE_USERS_FILE:
		return "usersFile";
	case TSMS_SOURCE_LDAP:
		return "ldap";
	case TSMS_SOURCE_NONE:
		break;
	}
	return "-";
}
