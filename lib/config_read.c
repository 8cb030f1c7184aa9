/* config_read.c - the readers every part of the config uses (config_read.h): strings,
 * whole numbers, an object's keys, and quoting config text in messages. Below the
 * sections (config_twilio.c, config_ldap.c, config_redis.c) and config.c, which reads the
 * whole file: it calls none of them. */
#include <cjson/cJSON.h>
#include <stdlib.h>
#include <string.h>

#include "config_read.h"
#include "log.h"

/* A short, printable copy of text from the config for error messages. */
const char *tsms_config_quote(char buf[64], const char *s)
{
	tsms_sanitize(buf, 64, s);
	return buf;
}

bool tsms_config_has_control(const char *s)
{
	for (; *s != '\0'; s++) {
		if ((unsigned char)*s < 0x20 || *s == 0x7f)
			return true;
	}
	return false;
}

/* The string value of key, NULL when absent; false when present but not a string. */
bool tsms_config_get_string(const cJSON *obj, const char *key, const char **out,
                            char err[TSMS_CONFIG_ERR_MAX])
{
	const cJSON *item = cJSON_GetObjectItemCaseSensitive(obj, key);

	*out = NULL;
	if (item == NULL)
		return true;
	if (!cJSON_IsString(item) || item->valuestring == NULL) {
		fail(err,
		     "%s must be a string; fix: write it in double quotes (" TSMS_CONFIG_MAN_REF
		     ")",
		     key);
		return false;
	}
	*out = item->valuestring;
	return true;
}

bool tsms_config_copy_string(char **dst, const char *src, char err[TSMS_CONFIG_ERR_MAX])
{
	*dst = strdup(src);
	if (*dst == NULL) {
		fail(err, "out of memory");
		return false;
	}
	return true;
}

/* Sets *field from item (absent: the default), range checked. */
bool tsms_config_set_unsigned(unsigned *field, const struct tsms_number_option *opt,
                              const cJSON *item, char err[TSMS_CONFIG_ERR_MAX])
{
	double v;

	if (item == NULL) {
		*field = opt->def;
		return true;
	}
	v = cJSON_IsNumber(item) ? item->valuedouble : -1;
	/* range first: casting an out-of-range double is undefined */
	if (!cJSON_IsNumber(item) || !(v >= opt->min && v <= opt->max) ||
	    v != (double)(unsigned)v) {
		fail(err,
		     "%s must be a whole number from %u to %u; fix: set it in range or remove it "
		     "for the default %u",
		     opt->key, opt->min, opt->max, opt->def);
		return false;
	}
	*field = (unsigned)v;
	return true;
}

static int cmp_names(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* Refuses an object with a key written twice (cJSON keeps both, and which one
 * wins would be an accident). O(n log n): users may be many. */
bool tsms_config_unique_keys(const cJSON *obj, const char *what, char err[TSMS_CONFIG_ERR_MAX])
{
	size_t n = 0, i = 0;
	const char **names;
	const cJSON *item;
	bool ok = true;
	char q[64];

	cJSON_ArrayForEach(item, obj) n++;
	if (n < 2)
		return true;
	names = calloc(n, sizeof(*names));
	if (names == NULL) {
		fail(err, "out of memory");
		return false;
	}
	cJSON_ArrayForEach(item, obj) names[i++] = item->string != NULL ? item->string : "";
	qsort(names, n, sizeof(*names), cmp_names);
	for (i = 1; i < n && ok; i++) {
		if (strcmp(names[i - 1], names[i]) == 0) {
			fail(err, "%s has the key \"%s\" twice; fix: keep one", what,
			     tsms_config_quote(q, names[i]));
			ok = false;
		}
	}
	free(names);
	return ok;
}

/* An optional string member key of the object what, copied; false after a problem. */
bool tsms_config_member_string(const cJSON *obj, const char *what, const char *key, char **dst,
                               char err[TSMS_CONFIG_ERR_MAX])
{
	const cJSON *item = cJSON_GetObjectItemCaseSensitive(obj, key);

	*dst = NULL;
	if (item == NULL)
		return true;
	if (!cJSON_IsString(item) || item->valuestring == NULL || item->valuestring[0] == '\0' ||
	    tsms_config_has_control(item->valuestring) || strlen(item->valuestring) > 1024) {
		fail(err,
		     "%s.%s must be a non-empty string of at most 1024 printable characters; "
		     "fix: correct it (" TSMS_CONFIG_MAN_REF ")",
		     what, key);
		return false;
	}
	return tsms_config_copy_string(dst, item->valuestring, err);
}

/* Refuses a key of the object what (a member of the config) that is not one of
 * keys[n], or a key written twice. */
bool tsms_config_object_keys(const cJSON *obj, const char *what, const char *const *keys, size_t n,
                             char err[TSMS_CONFIG_ERR_MAX])
{
	const cJSON *item;
	char q[64];

	cJSON_ArrayForEach(item, obj)
	{
		bool known = false;

		for (size_t i = 0; i < n; i++)
			known = known || strcmp(item->string, keys[i]) == 0;
		if (!known) {
			fail(err,
			     "%s has the unknown key \"%s\"; fix: correct its spelling or remove "
			     "it (the keys are listed in pam_twilio_sms.json(5))",
			     what, tsms_config_quote(q, item->string));
			return false;
		}
	}
	return tsms_config_unique_keys(obj, what, err);
}
