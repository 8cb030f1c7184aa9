/* config_read.h - the readers every part of the config uses (lib/config*.c only): the
 * sections (config_parse.h) and config.c, which reads the whole file, sit above it */
#ifndef TSMS_CONFIG_READ_H
#define TSMS_CONFIG_READ_H

#include <cjson/cJSON.h>
#include <stdbool.h>
#include <stddef.h>

#include "config.h"
#include "log.h"

/* "problem; fix: ..." into err, sanitised: it quotes config text */
#define fail(err, ...) tsms_format_clean((err), TSMS_CONFIG_ERR_MAX, __VA_ARGS__)

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

#endif
