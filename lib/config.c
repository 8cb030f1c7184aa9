/* config.c - the JSON config file: permissions, parsing, validation (cJSON for config) */
#include "config.h"

#include <cjson/cJSON.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <regex.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "directory.h"
#include "http.h"
#include "otp.h"
#include "template.h"

#define MAN_REF "see pam_twilio_sms.json(5)"

/* Logto's template usage types; the module sends SignIn, else Generic. */
static const char *const usage_types[] = {
	"Register",
	"SignIn",
	"Test",
	"Generic",
	"ForgotPassword",
	"OrganizationInvitation",
	"UserPermissionValidation",
	"BindNewIdentifier",
	"MfaVerification",
	"BindMfa",
};

/* "problem; fix: ..." into err, sanitised: it quotes config text */
#define fail(err, ...) tsms_format_clean((err), TSMS_CONFIG_ERR_MAX, __VA_ARGS__)

/* A short, printable copy of text from the config for error messages. */
static const char *quote(char buf[64], const char *s)
{
	tsms_sanitize(buf, 64, s);
	return buf;
}

static bool is_sid(const char *s, const char *prefix)
{
	if (strlen(s) != 34 || strncmp(s, prefix, 2) != 0)
		return false;
	for (size_t i = 2; i < 34; i++) {
		char c = s[i];
		if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F')))
			return false;
	}
	return true;
}

static bool has_control(const char *s)
{
	for (; *s != '\0'; s++) {
		if ((unsigned char)*s < 0x20 || *s == 0x7f)
			return true;
	}
	return false;
}

/* The string value of key, NULL when absent; false when present but not a string. */
static bool get_string(const cJSON *obj, const char *key, const char **out,
                       char err[TSMS_CONFIG_ERR_MAX])
{
	const cJSON *item = cJSON_GetObjectItemCaseSensitive(obj, key);

	*out = NULL;
	if (item == NULL)
		return true;
	if (!cJSON_IsString(item) || item->valuestring == NULL) {
		fail(err, "%s must be a string; fix: write it in double quotes (" MAN_REF ")", key);
		return false;
	}
	*out = item->valuestring;
	return true;
}

static bool copy_string(char **dst, const char *src, char err[TSMS_CONFIG_ERR_MAX])
{
	*dst = strdup(src);
	if (*dst == NULL) {
		fail(err, "out of memory");
		return false;
	}
	return true;
}

/* Numeric options: one table, one setter, range checked. */
struct number_option {
	const char *key;
	size_t offset;
	unsigned def, min, max;
};

static const struct number_option number_options[] = {
	{ "codeLength", offsetof(struct tsms_config, code_length), 6, TSMS_CODE_MIN,
	  TSMS_CODE_MAX },
	{ "codeTtlSeconds", offsetof(struct tsms_config, code_ttl_seconds), 300, 1, 3600 },
	{ "maxAttempts", offsetof(struct tsms_config, max_attempts), 3, 1, 10 },
	{ "timeoutSeconds", offsetof(struct tsms_config, timeout_seconds), 10, 1, 60 },
	{ "maxRetries", offsetof(struct tsms_config, max_retries), 2, 0, 5 },
	{ "sendLimit", offsetof(struct tsms_config, send_limit), 5, 1, 1000 },
	{ "sendWindowSeconds", offsetof(struct tsms_config, send_window_seconds), 900, 1, 86400 },
	{ "resendCooldownSeconds", offsetof(struct tsms_config, resend_cooldown_seconds), 30, 0,
	  3600 },
	{ "globalSendLimit", offsetof(struct tsms_config, global_send_limit), 0, 0, 1000000 },
	{ "maxResends", offsetof(struct tsms_config, max_resends), 1, 0, 5 },
	{ "lockoutThreshold", offsetof(struct tsms_config, lockout_threshold), 10, 1, 1000 },
	{ "lockoutSeconds", offsetof(struct tsms_config, lockout_seconds), 900, 1, 86400 },
};

/* Sets *field from item (absent: the default), range checked. */
static bool set_unsigned(unsigned *field, const struct number_option *opt, const cJSON *item,
                         char err[TSMS_CONFIG_ERR_MAX])
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

static bool set_number(struct tsms_config *cfg, const struct number_option *opt, const cJSON *item,
                       char err[TSMS_CONFIG_ERR_MAX])
{
	return set_unsigned((unsigned *)((char *)cfg + opt->offset), opt, item, err);
}

static bool known_key(const char *key)
{
	static const char *const keys[] = {
		"accountSID",
		"authToken",
		"fromMessagingServiceSID",
		"templates",
		"disableRiskCheck",
		"users",
		"apiBaseUrl",
		"caFile",
		"failMode",
		"stateDir",
		"allowedCountryCodes",
		"usersFile",
		"backupCodesFile",
		"proxy",
		"host",
		"apiKeySID",
		"apiKeySecret",
		"ldap",
		"redis",
	};

	for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
		if (strcmp(key, keys[i]) == 0)
			return true;
	}
	for (size_t i = 0; i < sizeof(number_options) / sizeof(number_options[0]); i++) {
		if (strcmp(key, number_options[i].key) == 0)
			return true;
	}
	return false;
}

static int cmp_names(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* Refuses an object with a key written twice (cJSON keeps both, and which one
 * wins would be an accident). O(n log n): users may be many. */
static bool check_unique_keys(const cJSON *obj, const char *what, char err[TSMS_CONFIG_ERR_MAX])
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
			     quote(q, names[i]));
			ok = false;
		}
	}
	free(names);
	return ok;
}

/* A secret string: present, not empty, no control characters. */
static bool usable_secret(const char *s)
{
	return s != NULL && s[0] != '\0' && !has_control(s);
}

/* Exactly one credential: the auth token, or an API key (SID and secret).
 * HTTP Basic then carries accountSID:authToken or apiKeySID:apiKeySecret. */
static bool parse_credentials(struct tsms_config *cfg, const cJSON *root,
                              char err[TSMS_CONFIG_ERR_MAX])
{
	const char *account, *token, *service, *key_sid, *key_secret;

	if (!get_string(root, "accountSID", &account, err) ||
	    !get_string(root, "authToken", &token, err) ||
	    !get_string(root, "fromMessagingServiceSID", &service, err) ||
	    !get_string(root, "apiKeySID", &key_sid, err) ||
	    !get_string(root, "apiKeySecret", &key_secret, err))
		return false;
	if (account == NULL || !is_sid(account, "AC")) {
		fail(err,
		     "accountSID %s; fix: copy the Account SID (\"AC\" and 32 hex digits) from "
		     "the Twilio console",
		     account == NULL ? "is missing" : "is not \"AC\" and 32 hex digits");
		return false;
	}
	if (token != NULL && (key_sid != NULL || key_secret != NULL)) {
		fail(err,
		     "authToken and %s are both set: use one credential; fix: keep authToken, "
		     "or apiKeySID and apiKeySecret (an API key is recommended)",
		     key_sid != NULL ? "apiKeySID" : "apiKeySecret");
		return false;
	}
	if (token == NULL && key_sid == NULL && key_secret == NULL) {
		fail(err,
		     "no credential: authToken, or apiKeySID and apiKeySecret, is missing; fix: "
		     "create an API key in the Twilio console (or copy the Auth token)");
		return false;
	}
	if (token != NULL && !usable_secret(token)) {
		fail(err,
		     "authToken is empty or malformed; fix: copy the Auth token from the Twilio "
		     "console");
		return false;
	}
	if (token == NULL && (key_sid == NULL || key_secret == NULL)) {
		fail(err, "%s is set without %s; fix: give both apiKeySID and apiKeySecret",
		     key_sid != NULL ? "apiKeySID" : "apiKeySecret",
		     key_sid != NULL ? "apiKeySecret" : "apiKeySID");
		return false;
	}
	if (key_sid != NULL && !is_sid(key_sid, "SK")) {
		fail(err, "apiKeySID is not \"SK\" and 32 hex digits; fix: copy the API key's SID "
		          "from the Twilio console (apiKeySecret is its secret)");
		return false;
	}
	if (key_secret != NULL && !usable_secret(key_secret)) {
		fail(err, "apiKeySecret is empty or malformed; fix: copy the secret shown when the "
		          "API key (apiKeySID) was created");
		return false;
	}
	if (service == NULL || !is_sid(service, "MG")) {
		fail(err,
		     "fromMessagingServiceSID %s; fix: copy the Messaging Service Sid (\"MG\" and "
		     "32 hex digits) from Messaging > Services",
		     service == NULL ? "is missing" : "is not \"MG\" and 32 hex digits");
		return false;
	}
	if (!copy_string(&cfg->account_sid, account, err) ||
	    !copy_string(&cfg->messaging_service_sid, service, err))
		return false;
	if (token != NULL)
		return copy_string(&cfg->auth_token, token, err);
	return copy_string(&cfg->api_key_sid, key_sid, err) &&
	       copy_string(&cfg->api_key_secret, key_secret, err);
}

static bool known_usage(const char *usage)
{
	for (size_t i = 0; i < sizeof(usage_types) / sizeof(usage_types[0]); i++) {
		if (strcmp(usage, usage_types[i]) == 0)
			return true;
	}
	return false;
}

static bool parse_template(struct tsms_config *cfg, const cJSON *obj, size_t index,
                           char err[TSMS_CONFIG_ERR_MAX])
{
	struct tsms_template *t = &cfg->templates[index];
	const char *usage, *content;
	const cJSON *item;
	char q[64];

	if (!cJSON_IsObject(obj)) {
		fail(err,
		     "templates[%zu] is not an object; fix: write {\"usageType\": \"SignIn\", "
		     "\"content\": \"Your code is {{code}}\"}",
		     index);
		return false;
	}
	cJSON_ArrayForEach(item, obj)
	{
		if (strcmp(item->string, "usageType") != 0 &&
		    strcmp(item->string, "content") != 0) {
			fail(err,
			     "templates[%zu] has the unknown key \"%s\"; fix: remove it (a "
			     "template "
			     "has usageType and content)",
			     index, quote(q, item->string));
			return false;
		}
	}
	if (!check_unique_keys(obj, "a template", err) ||
	    !get_string(obj, "usageType", &usage, err) ||
	    !get_string(obj, "content", &content, err))
		return false;
	if (usage == NULL || !known_usage(usage)) {
		fail(err,
		     "templates[%zu] has %s usageType%s%s; fix: use SignIn, Register, Test or "
		     "Generic",
		     index, usage == NULL ? "no" : "the unknown", usage == NULL ? "" : " ",
		     usage == NULL ? "" : quote(q, usage));
		return false;
	}
	if (content == NULL) {
		fail(err,
		     "templates[%zu] (%s) has no content; fix: add \"content\": \"Your code is "
		     "{{code}}\"",
		     index, usage);
		return false;
	}
	for (size_t i = 0; i < index; i++) {
		if (cfg->templates[i].usage != NULL &&
		    strcmp(cfg->templates[i].usage, usage) == 0) {
			fail(err, "two templates have usageType %s; fix: keep one", usage);
			return false;
		}
	}
	return copy_string(&t->usage, usage, err) && copy_string(&t->content, content, err);
}

/* The template the module sends must have a placeholder and fit in one message. */
static bool check_signin_template(const struct tsms_config *cfg, char err[TSMS_CONFIG_ERR_MAX])
{
	const struct tsms_template *t = tsms_config_template(cfg, "SignIn");
	char sample[TSMS_CODE_MAX + 1];
	size_t chars;
	char *body;

	if (t == NULL) {
		fail(err, "no SignIn (or Generic) template; fix: add {\"usageType\": \"SignIn\", "
		          "\"content\": \"Your sign-in code is {{code}}\"} to templates");
		return false;
	}
	if (!tsms_template_has_placeholder(t->content)) {
		fail(err,
		     "the %s template has no {{code}} placeholder; fix: put {{code}} where the "
		     "passcode goes",
		     t->usage);
		return false;
	}
	memset(sample, '0', cfg->code_length);
	sample[cfg->code_length] = '\0';
	body = tsms_template_render(t->content, sample, NULL);
	if (body == NULL) {
		fail(err, "out of memory");
		return false;
	}
	chars = tsms_utf8_chars(body);
	free(body);
	if (chars > TSMS_BODY_MAX_CHARS) {
		fail(err,
		     "the %s template renders to %zu characters, over Twilio's limit of %d; fix: "
		     "shorten it",
		     t->usage, chars, TSMS_BODY_MAX_CHARS);
		return false;
	}
	return true;
}

static bool parse_templates(struct tsms_config *cfg, const cJSON *root,
                            char err[TSMS_CONFIG_ERR_MAX])
{
	const cJSON *list = cJSON_GetObjectItemCaseSensitive(root, "templates");
	const cJSON *item;
	size_t n;

	if (!cJSON_IsArray(list)) {
		fail(err,
		     "templates %s; fix: add \"templates\": [{\"usageType\": \"SignIn\", "
		     "\"content\": \"Your code is {{code}}\"}]",
		     list == NULL ? "is missing" : "is not an array");
		return false;
	}
	n = (size_t)cJSON_GetArraySize(list);
	cfg->templates = calloc(n > 0 ? n : 1, sizeof(*cfg->templates));
	if (cfg->templates == NULL) {
		fail(err, "out of memory");
		return false;
	}
	cJSON_ArrayForEach(item, list)
	{
		/* counted first, so that tsms_config_free frees a half-filled entry */
		cfg->n_templates++;
		if (!parse_template(cfg, item, cfg->n_templates - 1, err))
			return false;
	}
	return true;
}

static bool parse_users(struct tsms_config *cfg, const cJSON *root, char err[TSMS_CONFIG_ERR_MAX])
{
	const cJSON *users = cJSON_GetObjectItemCaseSensitive(root, "users");
	const cJSON *item;
	char q[64], q2[64];

	if (users == NULL)
		return true;
	if (!cJSON_IsObject(users)) {
		fail(err,
		     "users is not an object; fix: write \"users\": {\"alice\": \"+15551234567\"}");
		return false;
	}
	if (!check_unique_keys(users, "users", err))
		return false;
	cfg->users = calloc((size_t)cJSON_GetArraySize(users) + 1, sizeof(*cfg->users));
	if (cfg->users == NULL) {
		fail(err, "out of memory");
		return false;
	}
	cJSON_ArrayForEach(item, users)
	{
		struct tsms_user *u = &cfg->users[cfg->n_users];

		if (item->string[0] == '\0' || has_control(item->string)) {
			fail(err, "users has an empty or unprintable user name; fix: remove it");
			return false;
		}
		if (!cJSON_IsString(item) || !tsms_phone_normalize(item->valuestring, u->phone)) {
			fail(err,
			     "user \"%s\": phone %s%s%s is not an E.164 number; fix: write it as "
			     "\"+<country code><number>\", e.g. \"+15551234567\"",
			     quote(q, item->string), cJSON_IsString(item) ? "\"" : "",
			     cJSON_IsString(item) ? quote(q2, item->valuestring) : "(not a string)",
			     cJSON_IsString(item) ? "\"" : "");
			return false;
		}
		if (!copy_string(&u->name, item->string, err))
			return false;
		cfg->n_users++;
	}
	return true;
}

/* The proxy may carry a password: checked by libcurl's parser, never quoted. */
static bool parse_proxy(struct tsms_config *cfg, const cJSON *root, char err[TSMS_CONFIG_ERR_MAX])
{
	char problem[TSMS_HTTP_PROXY_MSG] = "";
	const char *proxy;

	if (!get_string(root, "proxy", &proxy, err))
		return false;
	if (proxy == NULL)
		return true;
	if (has_control(proxy) || !tsms_http_check_proxy(proxy, problem)) {
		fail(err,
		     "proxy %s; fix: write \"http://HOST:PORT\" or \"https://HOST:PORT\", with "
		     "\"USER:PASSWORD@\" before HOST if the proxy needs them, or remove proxy",
		     problem[0] != '\0' ? problem : "holds a control character");
		return false;
	}
	return copy_string(&cfg->proxy, proxy, err);
}

static bool parse_ca_and_proxy(struct tsms_config *cfg, const cJSON *root,
                               char err[TSMS_CONFIG_ERR_MAX])
{
	const char *ca;

	if (!get_string(root, "caFile", &ca, err))
		return false;
	if (ca != NULL && ca[0] != '/') {
		char q[64];
		fail(err,
		     "caFile \"%s\" is not an absolute path; fix: write the full path of the PEM "
		     "bundle",
		     quote(q, ca));
		return false;
	}
	return (ca == NULL || copy_string(&cfg->ca_file, ca, err)) && parse_proxy(cfg, root, err);
}

/* Logto's rule for its connector's host (a Twilio API hostname), case-insensitive. */
#define HOST_RULE "^api(\\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*\\.twilio\\.com$"
#define HOST_MAX 253

static bool host_matches(const char *host)
{
	regex_t re;
	bool ok;

	if (strlen(host) > HOST_MAX ||
	    regcomp(&re, HOST_RULE, REG_EXTENDED | REG_ICASE | REG_NOSUB))
		return false;
	ok = regexec(&re, host, 0, NULL, 0) == 0;
	regfree(&re);
	return ok;
}

/* Logto's optional host: requests go to https://HOST (lower-cased), as Logto
 * sends them. With apiBaseUrl as well it is ambiguous. */
static bool parse_host(struct tsms_config *cfg, const cJSON *root, bool has_base,
                       char err[TSMS_CONFIG_ERR_MAX])
{
	const char *host;
	char q[64];

	if (!get_string(root, "host", &host, err))
		return false;
	if (host == NULL)
		return true;
	if (has_base) {
		fail(err, "host and apiBaseUrl are both set, which is ambiguous; fix: keep host (a "
		          "Twilio API hostname) or apiBaseUrl (a full https:// URL), not both");
		return false;
	}
	if (!host_matches(host)) {
		fail(err,
		     "host \"%s\" is not a Twilio API hostname: it must match %s "
		     "(case-insensitive, "
		     "at most %d characters); fix: write a hostname such as "
		     "api.dublin.ie1.twilio.com, "
		     "without scheme, port or path, or remove host",
		     quote(q, host), HOST_RULE, HOST_MAX);
		return false;
	}
	cfg->api_base_url = malloc(strlen("https://") + strlen(host) + 1);
	if (cfg->api_base_url == NULL) {
		fail(err, "out of memory");
		return false;
	}
	strcpy(cfg->api_base_url, "https://");
	for (size_t i = 0; host[i] != '\0'; i++)
		cfg->api_base_url[8 + i] = (char)tolower((unsigned char)host[i]);
	cfg->api_base_url[8 + strlen(host)] = '\0';
	return true;
}

/* Where requests go: https://HOST from host, or apiBaseUrl, or Twilio's default. */
static bool parse_endpoint(struct tsms_config *cfg, const cJSON *root,
                           char err[TSMS_CONFIG_ERR_MAX])
{
	const char *base;
	size_t len;

	if (!get_string(root, "apiBaseUrl", &base, err) ||
	    !parse_host(cfg, root, base != NULL, err))
		return false;
	if (cfg->api_base_url != NULL)
		return true;
	if (base == NULL)
		base = TSMS_DEFAULT_API_BASE;
	len = strlen(base);
	/* https://, a host (not empty, not starting with '/'), no query or fragment */
	if (strncmp(base, "https://", 8) != 0 || len <= 8 || base[8] == '/' || base[8] == ':' ||
	    len > 512 || has_control(base) || strpbrk(base, " ?#@\\") != NULL) {
		char q[64];
		fail(err,
		     "apiBaseUrl \"%s\" is not an https:// URL; fix: remove it for %s or use "
		     "https://host[:port]",
		     quote(q, base), TSMS_DEFAULT_API_BASE);
		return false;
	}
	if (!copy_string(&cfg->api_base_url, base, err))
		return false;
	while (len > 8 && cfg->api_base_url[len - 1] == '/')
		cfg->api_base_url[--len] = '\0';
	return true;
}

static bool parse_options(struct tsms_config *cfg, const cJSON *root, char err[TSMS_CONFIG_ERR_MAX])
{
	const cJSON *risk = cJSON_GetObjectItemCaseSensitive(root, "disableRiskCheck");
	const char *mode;

	for (size_t i = 0; i < sizeof(number_options) / sizeof(number_options[0]); i++) {
		const struct number_option *opt = &number_options[i];
		if (!set_number(cfg, opt, cJSON_GetObjectItemCaseSensitive(root, opt->key), err))
			return false;
	}
	if (risk != NULL && !cJSON_IsBool(risk)) {
		fail(err, "disableRiskCheck must be true or false; fix: write it without quotes");
		return false;
	}
	cfg->disable_risk_check = cJSON_IsTrue(risk);
	if (!get_string(root, "failMode", &mode, err))
		return false;
	if (mode == NULL || strcmp(mode, "closed") == 0) {
		cfg->fail_mode = TSMS_FAIL_CLOSED;
	} else if (strcmp(mode, "open") == 0) {
		cfg->fail_mode = TSMS_FAIL_OPEN;
	} else {
		char q[64];
		fail(err,
		     "failMode \"%s\" is unknown; fix: use \"closed\" (the default) or \"open\"",
		     quote(q, mode));
		return false;
	}
	return parse_endpoint(cfg, root, err) && parse_ca_and_proxy(cfg, root, err);
}

static bool parse_state_dir(struct tsms_config *cfg, const cJSON *root,
                            char err[TSMS_CONFIG_ERR_MAX])
{
	const char *dir;
	char q[64];

	if (!get_string(root, "stateDir", &dir, err))
		return false;
	if (dir == NULL)
		dir = TSMS_DEFAULT_STATE_DIR;
	if (dir[0] != '/' || strlen(dir) > 256 || has_control(dir)) {
		fail(err,
		     "stateDir \"%s\" is not an absolute path; fix: remove it for %s or give "
		     "a full path",
		     quote(q, dir), TSMS_DEFAULT_STATE_DIR);
		return false;
	}
	return copy_string(&cfg->state_dir, dir, err);
}

/* An optional absolute path under key (usersFile, backupCodesFile). */
static bool parse_path(const cJSON *root, const char *key, const char *example, char **out,
                       char err[TSMS_CONFIG_ERR_MAX])
{
	const char *path;
	char q[64];

	if (!get_string(root, key, &path, err))
		return false;
	if (path == NULL)
		return true;
	if (path[0] != '/' || strlen(path) > 1024 || has_control(path)) {
		fail(err, "%s \"%s\" is not an absolute path; fix: give the full path, e.g. %s",
		     key, quote(q, path), example);
		return false;
	}
	return copy_string(out, path, err);
}

static bool parse_files(struct tsms_config *cfg, const cJSON *root, char err[TSMS_CONFIG_ERR_MAX])
{
	char q[64];

	if (!parse_path(root, "usersFile", "/etc/security/pam_twilio_sms.users", &cfg->users_file,
	                err) ||
	    !parse_path(root, "backupCodesFile", "/etc/security/pam_twilio_sms.backup-codes",
	                &cfg->backup_codes_file, err))
		return false;
	if (cfg->users_file != NULL && cfg->backup_codes_file != NULL &&
	    strcmp(cfg->users_file, cfg->backup_codes_file) == 0) {
		fail(err,
		     "backupCodesFile and usersFile are the same file \"%s\"; fix: give each "
		     "its own",
		     quote(q, cfg->users_file));
		return false;
	}
	return true;
}

static bool is_country_code(const char *s)
{
	size_t n = strlen(s);

	if (n < 2 || n > TSMS_COUNTRY_CODE_MAX - 1 || s[0] != '+' || s[1] == '0')
		return false;
	for (size_t i = 1; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return false;
	}
	return true;
}

static bool parse_country_codes(struct tsms_config *cfg, const cJSON *root,
                                char err[TSMS_CONFIG_ERR_MAX])
{
	const cJSON *list = cJSON_GetObjectItemCaseSensitive(root, "allowedCountryCodes");
	const cJSON *item;
	char q[64];

	if (list == NULL)
		return true;
	if (!cJSON_IsArray(list) || cJSON_GetArraySize(list) == 0) {
		fail(err,
		     "allowedCountryCodes must be a non-empty array such as [\"+1\", \"+44\"]; "
		     "fix: correct it, or remove it to allow every country");
		return false;
	}
	cfg->country_codes = calloc((size_t)cJSON_GetArraySize(list), sizeof(*cfg->country_codes));
	if (cfg->country_codes == NULL) {
		fail(err, "out of memory");
		return false;
	}
	cJSON_ArrayForEach(item, list)
	{
		if (!cJSON_IsString(item) || !is_country_code(item->valuestring)) {
			fail(err,
			     "allowedCountryCodes has %s%s%s, not a country calling code; fix: "
			     "write codes as \"+1\", \"+44\", ...",
			     cJSON_IsString(item) ? "\"" : "",
			     cJSON_IsString(item) ? quote(q, item->valuestring) : "a non-string",
			     cJSON_IsString(item) ? "\"" : "");
			return false;
		}
		strcpy(cfg->country_codes[cfg->n_country_codes++], item->valuestring);
	}
	return true;
}

bool tsms_config_country_allowed(const struct tsms_config *cfg, const char *e164)
{
	if (cfg->country_codes == NULL)
		return true;
	for (size_t i = 0; i < cfg->n_country_codes; i++) {
		const char *code = cfg->country_codes[i];
		if (strncmp(e164, code, strlen(code)) == 0)
			return true;
	}
	return false;
}

/* An optional string member key of the object what, copied; false after a problem. */
static bool member_string(const cJSON *obj, const char *what, const char *key, char **dst,
                          char err[TSMS_CONFIG_ERR_MAX])
{
	const cJSON *item = cJSON_GetObjectItemCaseSensitive(obj, key);

	*dst = NULL;
	if (item == NULL)
		return true;
	if (!cJSON_IsString(item) || item->valuestring == NULL || item->valuestring[0] == '\0' ||
	    has_control(item->valuestring) || strlen(item->valuestring) > 1024) {
		fail(err,
		     "%s.%s must be a non-empty string of at most 1024 printable characters; "
		     "fix: correct it (" MAN_REF ")",
		     what, key);
		return false;
	}
	return copy_string(dst, item->valuestring, err);
}

/* A filter with %u (and no other '%'), in parentheses. */
static bool good_filter(const char *f)
{
	size_t n = strlen(f);
	bool has_user = false;

	if (n < 2 || f[0] != '(' || f[n - 1] != ')')
		return false;
	for (const char *p = f; (p = strchr(p, '%')) != NULL; p += 2) {
		if (p[1] != 'u')
			return false;
		has_user = true;
	}
	return has_user;
}

/* An attribute description: a name of letters, digits and '-' (options after ';'). */
static bool good_attribute(const char *a)
{
	if (!isalpha((unsigned char)a[0]))
		return false;
	for (; *a != '\0'; a++) {
		if (!isalnum((unsigned char)*a) && *a != '-' && *a != ';')
			return false;
	}
	return true;
}

/* Refuses a key of the object what (a member of the config) that is not one of
 * keys[n], or a key written twice. */
static bool check_object_keys(const cJSON *obj, const char *what, const char *const *keys, size_t n,
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
			     what, quote(q, item->string));
			return false;
		}
	}
	return check_unique_keys(obj, what, err);
}

static bool parse_ldap_keys(const cJSON *obj, char err[TSMS_CONFIG_ERR_MAX])
{
	static const char *const keys[] = { "uri",    "startTLS",     "caFile",
		                            "bindDN", "bindPassword", "baseDN",
		                            "filter", "attribute",    "timeoutSeconds" };

	return check_object_keys(obj, "ldap", keys, sizeof(keys) / sizeof(keys[0]), err);
}

/* The directory's TLS: ldaps:// has it, ldap:// needs StartTLS (its default),
 * ldapi:// is a local socket and needs none. Plain text is never allowed. */
static bool parse_ldap_transport(struct tsms_ldap *l, const cJSON *obj,
                                 char err[TSMS_CONFIG_ERR_MAX])
{
	const cJSON *tls = cJSON_GetObjectItemCaseSensitive(obj, "startTLS");
	char problem[TSMS_DIRECTORY_MSG] = "";
	const char *scheme;

	if (l->uri == NULL) {
		fail(err, "ldap.uri is missing; fix: add \"uri\": \"ldaps://ldap.example.com\"");
		return false;
	}
	if (!tsms_directory_check_uri(l->uri, problem)) {
		fail(err,
		     "ldap.uri %s; fix: write one or more space-separated ldaps://HOST[:PORT] (or "
		     "ldap:// with startTLS, or ldapi://) URIs of one scheme",
		     problem);
		return false;
	}
	if (tls != NULL && !cJSON_IsBool(tls)) {
		fail(err, "ldap.startTLS must be true or false; fix: write it without quotes");
		return false;
	}
	scheme = tsms_directory_scheme(l->uri);
	l->start_tls = strcmp(scheme, "ldap") == 0 && (tls == NULL || cJSON_IsTrue(tls));
	if (strcmp(scheme, "ldap") == 0 && !l->start_tls) {
		fail(err,
		     "ldap.uri is ldap:// with startTLS false: the bind password and the numbers "
		     "would cross the network in plain text; fix: remove startTLS (it defaults to "
		     "true for ldap://) or use ldaps://");
		return false;
	}
	if (strcmp(scheme, "ldap") != 0 && cJSON_IsTrue(tls)) {
		fail(err,
		     "ldap.startTLS is only for ldap:// URIs (%s:// needs none); fix: remove it",
		     scheme);
		return false;
	}
	if (l->ca_file != NULL && l->ca_file[0] != '/') {
		fail(err,
		     "ldap.caFile is not an absolute path; fix: write the full path of the PEM "
		     "bundle, or remove it for the system trust store");
		return false;
	}
	return true;
}

static bool parse_ldap(struct tsms_config *cfg, const cJSON *root, char err[TSMS_CONFIG_ERR_MAX])
{
	static const struct number_option timeout = { "ldap.timeoutSeconds", 0, 5, 1, 30 };
	const cJSON *obj = cJSON_GetObjectItemCaseSensitive(root, "ldap");
	struct tsms_ldap *l;

	if (obj == NULL)
		return true;
	if (!cJSON_IsObject(obj)) {
		fail(err, "ldap must be an object; fix: write \"ldap\": {\"uri\": ..., \"baseDN\": "
		          "...} (" MAN_REF ")");
		return false;
	}
	l = cfg->ldap = calloc(1, sizeof(*cfg->ldap));
	if (l == NULL) {
		fail(err, "out of memory");
		return false;
	}
	l->ca_fd = -1;
	if (!parse_ldap_keys(obj, err) || !member_string(obj, "ldap", "uri", &l->uri, err) ||
	    !member_string(obj, "ldap", "caFile", &l->ca_file, err) ||
	    !member_string(obj, "ldap", "bindDN", &l->bind_dn, err) ||
	    !member_string(obj, "ldap", "bindPassword", &l->bind_password, err) ||
	    !member_string(obj, "ldap", "baseDN", &l->base_dn, err) ||
	    !member_string(obj, "ldap", "filter", &l->filter, err) ||
	    !member_string(obj, "ldap", "attribute", &l->attribute, err) ||
	    !parse_ldap_transport(l, obj, err))
		return false;
	if ((l->bind_dn == NULL) != (l->bind_password == NULL)) {
		fail(err,
		     "ldap.%s is set without ldap.%s; fix: give both for a simple bind as a "
		     "service account, or neither for an anonymous bind",
		     l->bind_dn != NULL ? "bindDN" : "bindPassword",
		     l->bind_dn != NULL ? "bindPassword" : "bindDN");
		return false;
	}
	if (l->base_dn == NULL) {
		fail(err, "ldap.baseDN is missing; fix: add \"baseDN\": "
		          "\"ou=people,dc=example,dc=com\"");
		return false;
	}
	if (l->filter == NULL && !copy_string(&l->filter, "(uid=%u)", err))
		return false;
	if (!good_filter(l->filter)) {
		fail(err,
		     "ldap.filter must be in parentheses and contain %%u (the user name, escaped) "
		     "and no other %%; fix: write e.g. \"(uid=%%u)\" or \"(sAMAccountName=%%u)\"");
		return false;
	}
	if (l->attribute == NULL && !copy_string(&l->attribute, "mobile", err))
		return false;
	if (!good_attribute(l->attribute)) {
		fail(err, "ldap.attribute is not an attribute name; fix: write e.g. \"mobile\"");
		return false;
	}
	return set_unsigned(&l->timeout_seconds, &timeout,
	                    cJSON_GetObjectItemCaseSensitive(obj, "timeoutSeconds"), err);
}

/* ---- redis: the shared limits (lib/state.h) */

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

static bool parse_redis(struct tsms_config *cfg, const cJSON *root, char err[TSMS_CONFIG_ERR_MAX])
{
	static const char *const keys[] = { "url", "username", "password", "keyPrefix",
		                            "timeoutSeconds" };
	static const struct number_option timeout = { "redis.timeoutSeconds", 0, 2, 1, 10 };
	const cJSON *obj = cJSON_GetObjectItemCaseSensitive(root, "redis");
	struct tsms_redis *r;

	if (obj == NULL)
		return true;
	if (!cJSON_IsObject(obj)) {
		fail(err, "redis must be an object; fix: write \"redis\": {\"url\": "
		          "\"redis://HOST:6379/0\", ...} (" MAN_REF ")");
		return false;
	}
	r = cfg->redis = calloc(1, sizeof(*cfg->redis));
	if (r == NULL) {
		fail(err, "out of memory");
		return false;
	}
	if (!check_object_keys(obj, "redis", keys, sizeof(keys) / sizeof(keys[0]), err) ||
	    !member_string(obj, "redis", "url", &r->url, err) ||
	    !member_string(obj, "redis", "username", &r->username, err) ||
	    !member_string(obj, "redis", "password", &r->password, err) ||
	    !member_string(obj, "redis", "keyPrefix", &r->key_prefix, err) ||
	    !parse_redis_url(r, err))
		return false;
	if (r->username != NULL && r->password == NULL) {
		fail(err, "redis.username is set without redis.password; fix: give the ACL user's "
		          "password too, or remove username");
		return false;
	}
	if (r->key_prefix == NULL && !copy_string(&r->key_prefix, "pam_twilio_sms:", err))
		return false;
	if (!good_key_prefix(r->key_prefix)) {
		fail(err,
		     "redis.keyPrefix must be 1-%d printable characters without spaces; fix: "
		     "write e.g. \"pam_twilio_sms:\"",
		     REDIS_PREFIX_MAX);
		return false;
	}
	return set_unsigned(&r->timeout_seconds, &timeout,
	                    cJSON_GetObjectItemCaseSensitive(obj, "timeoutSeconds"), err);
}

static bool check_keys(const cJSON *root, char err[TSMS_CONFIG_ERR_MAX])
{
	const cJSON *item;
	char q[64];

	cJSON_ArrayForEach(item, root)
	{
		if (!known_key(item->string)) {
			fail(err,
			     "unknown key \"%s\"; fix: correct its spelling or remove it (the "
			     "keys are listed in pam_twilio_sms.json(5))",
			     quote(q, item->string));
			return false;
		}
	}
	return check_unique_keys(root, "the config", err);
}

/* The parsed tree holds secrets: wipe them before freeing. */
static void wipe_tree(cJSON *root)
{
	static const char *const secrets[] = { "authToken", "apiKeySecret", "proxy" };
	static const char *const nested[][2] = { { "ldap", "bindPassword" },
		                                 { "redis", "password" } };

	for (size_t i = 0; i < sizeof(secrets) / sizeof(secrets[0]); i++) {
		cJSON *item = cJSON_GetObjectItemCaseSensitive(root, secrets[i]);

		if (cJSON_IsString(item) && item->valuestring != NULL)
			tsms_wipe(item->valuestring, strlen(item->valuestring));
	}
	for (size_t i = 0; i < sizeof(nested) / sizeof(nested[0]); i++) {
		const cJSON *obj = cJSON_GetObjectItemCaseSensitive(root, nested[i][0]);
		cJSON *item = cJSON_GetObjectItemCaseSensitive(obj, nested[i][1]);

		if (cJSON_IsString(item) && item->valuestring != NULL)
			tsms_wipe(item->valuestring, strlen(item->valuestring));
	}
	cJSON_Delete(root);
}

struct tsms_config *tsms_config_parse(const char *json, size_t len, char err[TSMS_CONFIG_ERR_MAX])
{
	struct tsms_config *cfg = NULL;
	cJSON *root = NULL;
	const char *end = NULL;
	bool ok;

	err[0] = '\0';
	if (memchr(json, '\0', len) != NULL) {
		fail(err, "the file holds a NUL byte; fix: save it as plain UTF-8 JSON");
		return NULL;
	}
	root = cJSON_ParseWithLengthOpts(json, len, &end, false);
	if (root == NULL || !cJSON_IsObject(root)) {
		size_t at =
			end != NULL && end >= json && end <= json + len ? (size_t)(end - json) : 0;
		fail(err, "%s (near byte %zu); fix: check it with `python3 -m json.tool FILE`",
		     root == NULL ? "not valid JSON" : "not a JSON object", at);
		goto out;
	}
	cfg = calloc(1, sizeof(*cfg));
	if (cfg == NULL) {
		fail(err, "out of memory");
		goto out;
	}
	ok = check_keys(root, err) && parse_credentials(cfg, root, err) &&
	     parse_options(cfg, root, err) && parse_state_dir(cfg, root, err) &&
	     parse_files(cfg, root, err) && parse_country_codes(cfg, root, err) &&
	     parse_templates(cfg, root, err) && check_signin_template(cfg, err) &&
	     parse_users(cfg, root, err) && parse_ldap(cfg, root, err) &&
	     parse_redis(cfg, root, err);
	if (!ok) {
		tsms_config_free(cfg);
		cfg = NULL;
	}
out:
	if (root != NULL)
		wipe_tree(root);
	return cfg;
}

/* Opens path read-only with O_NOFOLLOW and checks the open descriptor (not the
 * path: no race with a rename): a regular file owned by root, none of the
 * forbidden mode bits, at most max_size bytes. Returns the descriptor, or -1
 * with the problem and its fix (chmod mode_fix) in err. */
static int open_root_file(const char *path, const char *what, long long max_size, mode_t forbidden,
                          const char *mode_fix, struct stat *st, char err[TSMS_CONFIG_ERR_MAX])
{
	int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);

	if (fd < 0) {
		if (errno == ELOOP)
			fail(err, "%s %s: is a symbolic link, refused; fix: name the real file",
			     what, path);
		else
			fail(err, "%s %s: cannot open: %s; fix: create it (owner root, mode %s)",
			     what, path, strerror(errno), mode_fix);
		return -1;
	}
	if (fstat(fd, st) != 0) {
		fail(err, "%s %s: cannot stat: %s", what, path, strerror(errno));
	} else if (!S_ISREG(st->st_mode)) {
		fail(err, "%s %s: not a regular file; fix: name the file itself", what, path);
	} else if (st->st_uid != 0) {
		fail(err, "%s %s: owned by uid %u, not root; fix: chown root:root %s", what, path,
		     (unsigned)st->st_uid, path);
	} else if ((st->st_mode & forbidden) != 0) {
		fail(err, "%s %s: mode %04o gives group or others %s; fix: chmod %s %s", what, path,
		     (unsigned)(st->st_mode & 07777), forbidden == 077 ? "access" : "write",
		     mode_fix, path);
	} else if (st->st_size > max_size) {
		fail(err,
		     "%s %s: %lld bytes, larger than the %lld allowed; fix: name the right file",
		     what, path, (long long)st->st_size, max_size);
	} else {
		return fd;
	}
	close(fd);
	return -1;
}

int tsms_open_private(const char *path, const char *what, long long max_size, struct stat *st,
                      char err[TSMS_CONFIG_ERR_MAX])
{
	return open_root_file(path, what, max_size, 077, "600", st, err);
}

int tsms_open_trusted(const char *path, const char *what, long long max_size, struct stat *st,
                      char err[TSMS_CONFIG_ERR_MAX])
{
	return open_root_file(path, what, max_size, 022, "644", st, err);
}

/* Reads the whole file into a new NUL-terminated buffer; *len gets its length. */
/* Reads up to size bytes of fd into a new NUL-terminated buffer. NULL when out
 * of memory (*read_errno 0) or when a read fails (*read_errno its errno: an I/O
 * error is not an empty or truncated file); what was read is wiped first. */
static char *read_all(int fd, size_t size, size_t *len, int *read_errno)
{
	char *buf = malloc(size + 1);
	size_t got = 0;

	*read_errno = 0;
	if (buf == NULL)
		return NULL;
	while (got < size) {
		ssize_t n = read(fd, buf + got, size - got);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			*read_errno = errno;
			tsms_wipe(buf, got);
			free(buf);
			return NULL;
		}
		if (n == 0)
			break;
		got += (size_t)n;
	}
	buf[got] = '\0';
	*len = got;
	return buf;
}

/* Reads caFile into cfg->ca_pem once, from a descriptor checked like the
 * config's: whoever can write the trust can read the code and the token. */
static bool load_ca_file(struct tsms_config *cfg, const char *path, char err[TSMS_CONFIG_ERR_MAX])
{
	char perr[TSMS_CONFIG_ERR_MAX];
	struct stat st;
	int fd, read_errno;

	if (cfg->ca_file == NULL)
		return true;
	fd = tsms_open_trusted(cfg->ca_file, "caFile", TSMS_CA_MAX_BYTES, &st, perr);
	if (fd < 0) {
		fail(err, "config %s: %s", path, perr);
		return false;
	}
	cfg->ca_pem = read_all(fd, (size_t)st.st_size, &cfg->ca_pem_len, &read_errno);
	close(fd);
	if (cfg->ca_pem == NULL) {
		fail(err, "config %s: caFile %s: %s", path, cfg->ca_file,
		     read_errno != 0 ? strerror(read_errno) : "out of memory");
		return false;
	}
	if (cfg->ca_pem_len == 0) {
		fail(err,
		     "config %s: caFile %s is empty; fix: name a PEM bundle, or remove caFile to "
		     "use the system trust store",
		     path, cfg->ca_file);
		return false;
	}
	return true;
}

/* The directory's caFile, checked like the config's and kept open: libldap
 * reads it through /proc/self/fd, so the file read is the file checked. */
static bool open_ldap_ca_file(struct tsms_config *cfg, const char *path,
                              char err[TSMS_CONFIG_ERR_MAX])
{
	char perr[TSMS_CONFIG_ERR_MAX];
	struct stat st;

	if (cfg->ldap == NULL || cfg->ldap->ca_file == NULL)
		return true;
	cfg->ldap->ca_fd =
		tsms_open_trusted(cfg->ldap->ca_file, "ldap.caFile", TSMS_CA_MAX_BYTES, &st, perr);
	if (cfg->ldap->ca_fd < 0) {
		fail(err, "config %s: %s", path, perr);
		return false;
	}
	return true;
}

struct tsms_config *tsms_config_load(const char *path, char err[TSMS_CONFIG_ERR_MAX])
{
	struct tsms_config *cfg = NULL;
	char perr[TSMS_CONFIG_ERR_MAX];
	char *buf = NULL;
	struct stat st;
	size_t len = 0;
	int fd, read_errno;

	err[0] = '\0';
	fd = tsms_open_private(path, "config", TSMS_CONFIG_MAX_BYTES, &st, err);
	if (fd < 0)
		return NULL;
	buf = read_all(fd, (size_t)st.st_size, &len, &read_errno);
	if (buf == NULL) {
		fail(err, "config %s: %s", path,
		     read_errno != 0 ? strerror(read_errno) : "out of memory");
		goto out;
	}
	cfg = tsms_config_parse(buf, len, perr);
	if (cfg == NULL) {
		fail(err, "config %s: %s", path, perr);
		goto out;
	}
	if (!load_ca_file(cfg, path, err) || !open_ldap_ca_file(cfg, path, err)) {
		tsms_config_free(cfg);
		cfg = NULL;
	}
out:
	if (buf != NULL) {
		tsms_wipe(buf, len);
		free(buf);
	}
	close(fd);
	return cfg;
}

void tsms_config_free(struct tsms_config *cfg)
{
	if (cfg == NULL)
		return;
	free(cfg->account_sid);
	tsms_free_secret(cfg->auth_token);
	free(cfg->api_key_sid);
	tsms_free_secret(cfg->api_key_secret);
	free(cfg->messaging_service_sid);
	for (size_t i = 0; i < cfg->n_templates; i++) {
		free(cfg->templates[i].usage);
		free(cfg->templates[i].content);
	}
	free(cfg->templates);
	for (size_t i = 0; i < cfg->n_users; i++)
		free(cfg->users[i].name);
	free(cfg->users);
	free(cfg->api_base_url);
	free(cfg->ca_file);
	free(cfg->ca_pem);
	tsms_free_secret(cfg->proxy);
	free(cfg->state_dir);
	free(cfg->users_file);
	free(cfg->backup_codes_file);
	free(cfg->country_codes);
	if (cfg->ldap != NULL) {
		free(cfg->ldap->uri);
		free(cfg->ldap->ca_file);
		if (cfg->ldap->ca_fd >= 0)
			close(cfg->ldap->ca_fd);
		free(cfg->ldap->bind_dn);
		tsms_free_secret(cfg->ldap->bind_password);
		free(cfg->ldap->base_dn);
		free(cfg->ldap->filter);
		free(cfg->ldap->attribute);
		free(cfg->ldap);
	}
	if (cfg->redis != NULL) {
		free(cfg->redis->url);
		free(cfg->redis->host);
		free(cfg->redis->socket_path);
		free(cfg->redis->username);
		tsms_free_secret(cfg->redis->password);
		free(cfg->redis->key_prefix);
		free(cfg->redis);
	}
	free(cfg);
}

const struct tsms_template *tsms_config_template(const struct tsms_config *cfg, const char *usage)
{
	const struct tsms_template *generic = NULL;

	for (size_t i = 0; i < cfg->n_templates; i++) {
		const char *u = cfg->templates[i].usage;

		if (u == NULL) /* only in a config that failed to parse */
			continue;
		if (strcmp(u, usage) == 0)
			return &cfg->templates[i];
		if (strcmp(u, "Generic") == 0)
			generic = &cfg->templates[i];
	}
	return generic;
}

const char *tsms_config_basic_user(const struct tsms_config *cfg)
{
	return cfg->api_key_sid != NULL ? cfg->api_key_sid : cfg->account_sid;
}

const char *tsms_config_secret(const struct tsms_config *cfg)
{
	return cfg->api_key_secret != NULL ? cfg->api_key_secret : cfg->auth_token;
}

const char *tsms_config_phone(const struct tsms_config *cfg, const char *user)
{
	for (size_t i = 0; i < cfg->n_users; i++) {
		if (strcmp(cfg->users[i].name, user) == 0)
			return cfg->users[i].phone;
	}
	return NULL;
}
