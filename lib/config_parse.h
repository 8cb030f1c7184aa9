/* config_parse.h - the parsers of the config's sections, which config.c calls (lib/config*.c
 * only); what they share is below them, in config_read.h */
#ifndef TSMS_CONFIG_PARSE_H
#define TSMS_CONFIG_PARSE_H

#include <cjson/cJSON.h>
#include <stdbool.h>

#include "config.h"

/* Each returns false after writing the problem and its fix into err. */

/* The problems of one parse (config.c): the first is kept; with fn, every
 * one is given to it and the parse reads on (tsms_config_parse_all). */
struct tsms_config_problems {
	char *first; /* TSMS_CONFIG_ERR_MAX bytes */
	tsms_config_problem_fn *fn;
	void *ctx;
	unsigned count;
};

/* After a step that returned ok, with its problem in err when !ok: records
 * the problem, and returns whether to read on (ok, or every problem wanted). */
bool tsms_config_go_on(struct tsms_config_problems *p, bool ok, const char *err);

/* The section parsers below that take p record their problems there, one per
 * key at most, and return whether to read on. */

/* config_twilio.c: accountSID and exactly one credential, fromMessagingServiceSID. */
bool tsms_config_parse_credentials(struct tsms_config *cfg, const cJSON *root,
                                   struct tsms_config_problems *p);

/* config_twilio.c: host or apiBaseUrl (api_base_url), caFile, proxy. */
bool tsms_config_parse_endpoint(struct tsms_config *cfg, const cJSON *root,
                                struct tsms_config_problems *p);

/* config_twilio.c: the templates, and a SignIn (or Generic) one that renders a
 * code of codeLength (parsed before) into one message. */
bool tsms_config_parse_templates(struct tsms_config *cfg, const cJSON *root,
                                 struct tsms_config_problems *p);

/* config_ldap.c: the optional ldap object into cfg->ldap. */
bool tsms_config_parse_ldap(struct tsms_config *cfg, const cJSON *root,
                            char err[TSMS_CONFIG_ERR_MAX]);

/* config_redis.c: the optional redis object into cfg->redis. */
bool tsms_config_parse_redis(struct tsms_config *cfg, const cJSON *root,
                             char err[TSMS_CONFIG_ERR_MAX]);

#endif
