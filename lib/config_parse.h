/* config_parse.h - the parsers of the config's sections, which config.c calls (lib/config*.c
 * only); what they share is below them, in config_read.h */
#ifndef TSMS_CONFIG_PARSE_H
#define TSMS_CONFIG_PARSE_H

#include <cjson/cJSON.h>
#include <stdbool.h>

#include "config.h"

/* Each returns false after writing the problem and its fix into err. */

/* config_twilio.c: accountSID and exactly one credential, fromMessagingServiceSID. */
bool tsms_config_parse_credentials(struct tsms_config *cfg, const cJSON *root,
                                   char err[TSMS_CONFIG_ERR_MAX]);

/* config_twilio.c: host or apiBaseUrl (api_base_url), caFile, proxy. */
bool tsms_config_parse_endpoint(struct tsms_config *cfg, const cJSON *root,
                                char err[TSMS_CONFIG_ERR_MAX]);

/* config_twilio.c: the templates, and a SignIn (or Generic) one that renders a
 * code of codeLength (parsed before) into one message. */
bool tsms_config_parse_templates(struct tsms_config *cfg, const cJSON *root,
                                 char err[TSMS_CONFIG_ERR_MAX]);

/* config_ldap.c: the optional ldap object into cfg->ldap. */
bool tsms_config_parse_ldap(struct tsms_config *cfg, const cJSON *root,
                            char err[TSMS_CONFIG_ERR_MAX]);

/* config_redis.c: the optional redis object into cfg->redis. */
bool tsms_config_parse_redis(struct tsms_config *cfg, const cJSON *root,
                             char err[TSMS_CONFIG_ERR_MAX]);

#endif
