/* config_parse.h - what the parsers of the config's sections share (lib/config*.c only) */
#ifndef TSMS_CONFIG_PARSE_H
#define TSMS_CONFIG_PARSE_H

#include <cjson/cJSON.h>
#include <stdbool.h>
#include <stddef.h>

#include "config.h"

#define TSMS_CONFIG_MAN_REF "see pam_twilio_sms.json(5)"

/* Every function below that returns bool returns false after writing the
 * problem and its fix into err ("problem; fix: ...", sanitised). */

/* A short, printable copy of s (config text) in buf, for error messages. */
const char *tsms_config_quote(char buf[64], const char *s);

bool tsms_config_has_control(const char *s);

/* *out: the string value of key, NULL when absent; false when not a string. */
bool tsms_config_get_string(const cJSON *obj, const char *key, const char **out,
                            char err[TSMS_CONFIG_ERR_MAX]);

/* *dst: a copy of src (the caller's config frees it). */
bool tsms_config_copy_string(char **dst, const char *src, char err[TSMS_CONFIG_ERR_MAX]);

/* *dst: a copy of the optional string member key of the object what
 * ("ldap.uri"), NULL when absent: non-empty, printable, at most 1024 bytes. */
bool tsms_config_member_string(const cJSON *obj, const char *what, const char *key, char **dst,
                               char err[TSMS_CONFIG_ERR_MAX]);

/* Refuses an object (named what) with a key written twice. */
bool tsms_config_unique_keys(const cJSON *obj, const char *what, char err[TSMS_CONFIG_ERR_MAX]);

/* Refuses a key of the object what that is not one of keys[n], or a key twice. */
bool tsms_config_object_keys(const cJSON *obj, const char *what, const char *const *keys, size_t n,
                             char err[TSMS_CONFIG_ERR_MAX]);

/* A whole number option: its key (as messages name it), where it lives in
 * struct tsms_config (offset; unused by sections with their own struct), its
 * default and range. */
struct tsms_number_option {
	const char *key;
	size_t offset;
	unsigned def, min, max;
};

/* *field from item (NULL: the default), range checked. */
bool tsms_config_set_unsigned(unsigned *field, const struct tsms_number_option *opt,
                              const cJSON *item, char err[TSMS_CONFIG_ERR_MAX]);

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
