/* config_twilio.c - the Twilio account's part of the config: the credential,
 * the templates (Logto's usage types, and tsms_config_template, which picks one)
 * and where requests go (host, apiBaseUrl, caFile, proxy) */
#include <cjson/cJSON.h>
#include <ctype.h>
#include <regex.h>
#include <stdlib.h>
#include <string.h>

#include "config_parse.h"
#include "config_read.h"
#include "example.h"
#include "http.h"
#include "log.h"
#include "otp.h"
#include "template.h"

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

/* A SID under key: prefix and 32 hex digits; what and where name it in the fix. */
static bool parse_sid(const cJSON *root, const char *key, const char *prefix, const char *what,
                      const char *where, char **dst, char err[TSMS_CONFIG_ERR_MAX])
{
	const char *sid;

	if (!tsms_config_get_string(root, key, &sid, err))
		return false;
	if (sid != NULL && tsms_example_placeholder(sid)) {
		fail(err,
		     "%s is the example's placeholder; fix: replace it with your %s (\"%s\" and 32 "
		     "hex digits) from %s",
		     key, what, prefix, where);
		return false;
	}
	if (sid == NULL || !is_sid(sid, prefix)) {
		fail(err, "%s %s%s%s; fix: copy the %s (\"%s\" and 32 hex digits) from %s", key,
		     sid == NULL ? "is missing" : "is not \"", sid == NULL ? "" : prefix,
		     sid == NULL ? "" : "\" and 32 hex digits", what, prefix, where);
		return false;
	}
	return tsms_config_copy_string(dst, sid, err);
}

/* A secret (authToken, apiKeySecret): present, not empty, no control
 * characters, not the example's placeholder. */
static bool check_secret(const char *key, const char *s, const char *fix,
                         char err[TSMS_CONFIG_ERR_MAX])
{
	if (tsms_example_placeholder(s)) {
		fail(err, "%s is the example's placeholder; fix: %s", key, fix);
		return false;
	}
	if (s[0] == '\0' || tsms_config_has_control(s)) {
		fail(err, "%s is empty or malformed; fix: %s", key, fix);
		return false;
	}
	return true;
}

/* Exactly one credential: the auth token, or an API key (SID and secret).
 * HTTP Basic then carries accountSID:authToken or apiKeySID:apiKeySecret. */
static bool parse_credential(struct tsms_config *cfg, const cJSON *root,
                             char err[TSMS_CONFIG_ERR_MAX])
{
	const char *token, *key_sid, *key_secret;

	if (!tsms_config_get_string(root, "authToken", &token, err) ||
	    !tsms_config_get_string(root, "apiKeySID", &key_sid, err) ||
	    !tsms_config_get_string(root, "apiKeySecret", &key_secret, err))
		return false;
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
		     "create an API key in the Twilio Console (or copy the Auth Token)");
		return false;
	}
	if (token != NULL)
		return check_secret("authToken", token,
		                    "replace it with your Auth Token from the Twilio Console, or "
		                    "use an API key (apiKeySID and apiKeySecret) instead",
		                    err) &&
		       tsms_config_copy_string(&cfg->auth_token, token, err);
	if (key_sid == NULL || key_secret == NULL) {
		fail(err, "%s is set without %s; fix: give both apiKeySID and apiKeySecret",
		     key_sid != NULL ? "apiKeySID" : "apiKeySecret",
		     key_sid != NULL ? "apiKeySecret" : "apiKeySID");
		return false;
	}
	if (tsms_example_placeholder(key_sid) || !is_sid(key_sid, "SK")) {
		fail(err,
		     "apiKeySID %s; fix: copy the API key's SID (\"SK\" and 32 hex digits) from "
		     "the Twilio Console (apiKeySecret is its secret)",
		     tsms_example_placeholder(key_sid) ? "is the example's placeholder"
		                                       : "is not \"SK\" and 32 hex digits");
		return false;
	}
	return check_secret("apiKeySecret", key_secret,
	                    "copy the secret shown when the API key (apiKeySID) was created",
	                    err) &&
	       tsms_config_copy_string(&cfg->api_key_sid, key_sid, err) &&
	       tsms_config_copy_string(&cfg->api_key_secret, key_secret, err);
}

bool tsms_config_parse_credentials(struct tsms_config *cfg, const cJSON *root,
                                   struct tsms_config_problems *p)
{
	char err[TSMS_CONFIG_ERR_MAX];

	return tsms_config_go_on(p,
	                         parse_sid(root, "accountSID", "AC", "Account SID",
	                                   "the Twilio Console", &cfg->account_sid, err),
	                         err) &&
	       tsms_config_go_on(p, parse_credential(cfg, root, err), err) &&
	       tsms_config_go_on(p,
	                         parse_sid(root, "fromMessagingServiceSID", "MG",
	                                   "Messaging Service's Sid",
	                                   "Messaging > Services in the Twilio Console",
	                                   &cfg->messaging_service_sid, err),
	                         err);
}

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
			     index, tsms_config_quote(q, item->string));
			return false;
		}
	}
	if (!tsms_config_unique_keys(obj, "a template", err) ||
	    !tsms_config_get_string(obj, "usageType", &usage, err) ||
	    !tsms_config_get_string(obj, "content", &content, err))
		return false;
	if (usage == NULL || !known_usage(usage)) {
		fail(err,
		     "templates[%zu] has %s usageType%s%s; fix: use SignIn, Register, Test or "
		     "Generic",
		     index, usage == NULL ? "no" : "the unknown", usage == NULL ? "" : " ",
		     usage == NULL ? "" : tsms_config_quote(q, usage));
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
	return tsms_config_copy_string(&t->usage, usage, err) &&
	       tsms_config_copy_string(&t->content, content, err);
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
	/* letters, not digits: the sample must never look like a code sent */
	memset(sample, 'X', cfg->code_length);
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

/* The proxy may carry a password: checked by libcurl's parser, never quoted. */
static bool parse_proxy(struct tsms_config *cfg, const cJSON *root, char err[TSMS_CONFIG_ERR_MAX])
{
	char problem[TSMS_HTTP_PROXY_MSG] = "";
	const char *proxy;

	if (!tsms_config_get_string(root, "proxy", &proxy, err))
		return false;
	if (proxy == NULL)
		return true;
	if (tsms_config_has_control(proxy) || !tsms_http_check_proxy(proxy, problem)) {
		fail(err,
		     "proxy %s; fix: write \"http://HOST:PORT\" or \"https://HOST:PORT\", with "
		     "\"USER:PASSWORD@\" before HOST if the proxy needs them, or remove proxy",
		     problem[0] != '\0' ? problem : "holds a control character");
		return false;
	}
	return tsms_config_copy_string(&cfg->proxy, proxy, err);
}

static bool parse_ca(struct tsms_config *cfg, const cJSON *root, char err[TSMS_CONFIG_ERR_MAX])
{
	const char *ca;

	if (!tsms_config_get_string(root, "caFile", &ca, err))
		return false;
	if (ca != NULL && ca[0] != '/') {
		char q[64];
		fail(err,
		     "caFile \"%s\" is not an absolute path; fix: write the full path of the PEM "
		     "bundle",
		     tsms_config_quote(q, ca));
		return false;
	}
	return ca == NULL || tsms_config_copy_string(&cfg->ca_file, ca, err);
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

	if (!tsms_config_get_string(root, "host", &host, err))
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
		     tsms_config_quote(q, host), HOST_RULE, HOST_MAX);
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

	if (!tsms_config_get_string(root, "apiBaseUrl", &base, err) ||
	    !parse_host(cfg, root, base != NULL, err))
		return false;
	if (cfg->api_base_url != NULL)
		return true;
	if (base == NULL)
		base = TSMS_DEFAULT_API_BASE;
	len = strlen(base);
	/* https://, a host (not empty, not starting with '/'), no query or fragment */
	if (strncmp(base, "https://", 8) != 0 || len <= 8 || base[8] == '/' || base[8] == ':' ||
	    len > 512 || tsms_config_has_control(base) || strpbrk(base, " ?#@\\") != NULL) {
		char q[64];
		fail(err,
		     "apiBaseUrl \"%s\" is not an https:// URL; fix: remove it for %s or use "
		     "https://host[:port]",
		     tsms_config_quote(q, base), TSMS_DEFAULT_API_BASE);
		return false;
	}
	if (!tsms_config_copy_string(&cfg->api_base_url, base, err))
		return false;
	while (len > 8 && cfg->api_base_url[len - 1] == '/')
		cfg->api_base_url[--len] = '\0';
	return true;
}

bool tsms_config_parse_endpoint(struct tsms_config *cfg, const cJSON *root,
                                struct tsms_config_problems *p)
{
	char err[TSMS_CONFIG_ERR_MAX];

	return tsms_config_go_on(p, parse_endpoint(cfg, root, err), err) &&
	       tsms_config_go_on(p, parse_ca(cfg, root, err), err) &&
	       tsms_config_go_on(p, parse_proxy(cfg, root, err), err);
}

bool tsms_config_parse_templates(struct tsms_config *cfg, const cJSON *root,
                                 struct tsms_config_problems *p)
{
	char err[TSMS_CONFIG_ERR_MAX];

	/* no SignIn check of templates that could not be read: it would only
	 * repeat their problem */
	if (!parse_templates(cfg, root, err))
		return tsms_config_go_on(p, false, err);
	return tsms_config_go_on(p, check_signin_template(cfg, err), err);
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
