/* config_redis.c - the config's redis object: where a fleet keeps its limits
 * (lib/state_redis.c uses it) */
#include <cjson/cJSON.h>
#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "config_parse.h"
#include "config_read.h"
#include "log.h"

#define REDIS_URL_FORMS "redis://HOST[:PORT][/DB] or unix:///PATH/TO/redis.sock[?db=DB]"
#define REDIS_DB_MAX 15 /* Redis's 16 databases */
#define REDIS_PREFIX_MAX 64
#define SUN_PATH_MAX 107 /* sizeof(sockaddr_un.sun_path) - 1 */

/* Digits only, at most max; false for anything else. */
static bool parse_small(const char *s, size_t n, unsigned max, unsigned *out)
{
	unsigned v = 0;

	if (n == 0 || n > 5)
		return false;
	for (size_t i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return false;
		v = v * 10 + (unsigned)(s[i] - '0');
	}
	if (v > max)
		return false;
	*out = v;
	return true;
}

static bool host_char(char c, bool bracketed)
{
	return isalnum((unsigned char)c) || c == '.' || c == '-' || (bracketed && c == ':');
}

/* redis://HOST[:PORT][/DB]: HOST a name, an IPv4 address or [IPv6]. */
static bool parse_redis_tcp(struct tsms_redis *r, const char *rest, char err[TSMS_CONFIG_ERR_MAX])
{
	const char *p = rest, *host, *host_end, *slash;
	bool bracketed = *p == '[';

	if (strchr(rest, '@') != NULL) {
		fail(err, "redis.url holds a user or password; fix: remove \"USER:PASSWORD@\" and "
		          "put them in redis.username and redis.password (the url is logged, the "
		          "password never is)");
		return false;
	}
	host = p + bracketed;
	for (p = host; *p != '\0' && host_char(*p, bracketed); p++)
		;
	host_end = p;
	if (bracketed && *p++ != ']')
		host_end = host; /* no closing bracket: no host */
	if (host_end == host)
		goto bad;
	r->port = 6379;
	slash = strchr(p, '/');
	if (*p == ':' &&
	    !parse_small(p + 1, (size_t)((slash != NULL ? slash : p + strlen(p)) - p - 1), 65535,
	                 &r->port))
		goto bad;
	if (*p != ':' && *p != '/' && *p != '\0')
		goto bad;
	if (r->port == 0)
		goto bad;
	r->db = 0;
	if (slash != NULL && slash[1] != '\0' &&
	    !parse_small(slash + 1, strlen(slash + 1), REDIS_DB_MAX, &r->db))
		goto bad;
	r->host = strndup(host, (size_t)(host_end - host));
	if (r->host == NULL) {
		fail(err, "out of memory");
		return false;
	}
	return true;
bad:
	fail(err,
	     "redis.url is not " REDIS_URL_FORMS " (PORT 1-65535, DB 0-%d); fix: correct it, e.g. "
	     "\"redis://10.0.0.5:6379/0\"",
	     REDIS_DB_MAX);
	return false;
}

/* unix:///PATH[?db=DB] */
static bool parse_redis_unix(struct tsms_redis *r, const char *rest, char err[TSMS_CONFIG_ERR_MAX])
{
	const char *q = strchr(rest, '?');
	size_t n = q != NULL ? (size_t)(q - rest) : strlen(rest);

	r->db = 0;
	if (rest[0] != '/' || n > SUN_PATH_MAX || (q != NULL && strncmp(q, "?db=", 4) != 0) ||
	    (q != NULL && !parse_small(q + 4, strlen(q + 4), REDIS_DB_MAX, &r->db))) {
		fail(err,
		     "redis.url unix:// needs an absolute socket path of at most %d bytes, then "
		     "optionally ?db=DB (0-%d); fix: write e.g. "
		     "\"unix:///run/redis/redis-server.sock\"",
		     SUN_PATH_MAX, REDIS_DB_MAX);
		return false;
	}
	r->socket_path = strndup(rest, n);
	if (r->socket_path == NULL) {
		fail(err, "out of memory");
		return false;
	}
	return true;
}

static bool parse_redis_url(struct tsms_redis *r, char err[TSMS_CONFIG_ERR_MAX])
{
	if (r->url == NULL) {
		fail(err, "redis.url is missing; fix: add \"url\": \"redis://HOST:6379/0\"");
		return false;
	}
	if (strncasecmp(r->url, "rediss://", 9) == 0) {
		fail(err,
		     "redis.url is rediss://, but Debian's hiredis is built without TLS, so "
		     "the module cannot speak TLS to Redis; fix: reach Redis over a unix socket "
		     "(unix:///PATH) to a local TLS tunnel such as stunnel, or over a private "
		     "network with redis:// (see \"Many hosts\" in the README)");
		return false;
	}
	if (strncmp(r->url, "redis://", 8) == 0)
		return parse_redis_tcp(r, r->url + 8, err);
	if (strncmp(r->url, "unix://", 7) == 0)
		return parse_redis_unix(r, r->url + 7, err);
	fail(err, "redis.url must be " REDIS_URL_FORMS "; fix: correct it");
	return false;
}

static bool good_key_prefix(const char *p)
{
	size_t n = strlen(p);

	if (n == 0 || n > REDIS_PREFIX_MAX)
		return false;
	for (; *p != '\0'; p++) {
		if ((unsigned char)*p <= ' ' || (unsigned char)*p >= 0x7f)
			return false;
	}
	return true;
}

bool tsms_config_parse_redis(struct tsms_config *cfg, const cJSON *root,
                             char err[TSMS_CONFIG_ERR_MAX])
{
	static const char *const keys[] = { "url", "username", "password", "keyPrefix",
		                            "timeoutSeconds" };
	static const struct tsms_number_option timeout = { "redis.timeoutSeconds", 0, 2, 1, 10 };
	const cJSON *obj = cJSON_GetObjectItemCaseSensitive(root, "redis");
	struct tsms_redis *r;

	if (obj == NULL)
		return true;
	if (!cJSON_IsObject(obj)) {
		fail(err, "redis must be an object; fix: write \"redis\": {\"url\": "
		          "\"redis://HOST:6379/0\", ...} (" TSMS_CONFIG_MAN_REF ")");
		return false;
	}
	r = cfg->redis = calloc(1, sizeof(*cfg->redis));
	if (r == NULL) {
		fail(err, "out of memory");
		return false;
	}
	if (!tsms_config_object_keys(obj, "redis", keys, sizeof(keys) / sizeof(keys[0]), err) ||
	    !tsms_config_member_string(obj, "redis", "url", &r->url, err) ||
	    !tsms_config_member_string(obj, "redis", "username", &r->username, err) ||
	    !tsms_config_member_string(obj, "redis", "password", &r->password, err) ||
	    !tsms_config_member_string(obj, "redis", "keyPrefix", &r->key_prefix, err) ||
	    !parse_redis_url(r, err))
		return false;
	if (r->username != NULL && r->password == NULL) {
		fail(err, "redis.username is set without redis.password; fix: give the ACL user's "
		          "password too, or remove username");
		return false;
	}
	if (r->key_prefix == NULL &&
	    !tsms_config_copy_string(&r->key_prefix, "pam_twilio_sms:", err))
		return false;
	if (!good_key_prefix(r->key_prefix)) {
		fail(err,
		     "redis.keyPrefix must be 1-%d printable characters without spaces; fix: "
		     "write e.g. \"pam_twilio_sms:\"",
		     REDIS_PREFIX_MAX);
		return false;
	}
	return tsms_config_set_unsigned(&r->timeout_seconds, &timeout,
	                                cJSON_GetObjectItemCaseSensitive(obj, "timeoutSeconds"),
	                                err);
}
