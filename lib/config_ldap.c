/* config_ldap.c - the config's ldap object: the directory the numbers come from
 * (lib/directory.c reads it) */
#include <cjson/cJSON.h>
#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "config_parse.h"
#include "config_read.h"
#include "directory.h"
#include "log.h"

/* The filter's problem, or NULL: in parentheses, each '%' one of %u (the whole
 * user name), %s (the name without its domain) and %d (the domain), with %u or
 * %s (lib/directory.h). */
static const char *filter_problem(const char *f)
{
	size_t n = strlen(f);
	bool has_user = false;

	if (n < 2 || f[0] != '(' || f[n - 1] != ')')
		return "must be in parentheses";
	for (const char *p = f; (p = strchr(p, '%')) != NULL; p += 2) {
		if (p[1] != 'u' && p[1] != 's' && p[1] != 'd')
			return "has a '%' that is not %u, %s or %d";
		has_user = has_user || p[1] != 'd';
	}
	return has_user ? NULL : "has neither %u nor %s (the user)";
}

/* ldap.domains: the domain parts (of NAME@DOMAIN or DOMAIN\NAME) whose users
 * this directory holds, e.g. ["CORP", "corp.example.com"]. */
static bool parse_ldap_domains(struct tsms_ldap *l, const cJSON *obj, char err[TSMS_CONFIG_ERR_MAX])
{
	const cJSON *list = cJSON_GetObjectItemCaseSensitive(obj, "domains"), *d;
	int n = cJSON_GetArraySize(list), i = 0;

	if (list == NULL)
		return true;
	if (!cJSON_IsArray(list) || n < 1 || n > TSMS_LDAP_DOMAINS_MAX) {
		fail(err,
		     "ldap.domains must be a list of 1 to %d domain names; fix: write e.g. "
		     "\"domains\": [\"CORP\", \"corp.example.com\"] (the NetBIOS and DNS names of "
		     "the directory's domain)",
		     TSMS_LDAP_DOMAINS_MAX);
		return false;
	}
	l->domains = calloc((size_t)n + 1, sizeof(*l->domains));
	if (l->domains == NULL) {
		fail(err, "out of memory");
		return false;
	}
	cJSON_ArrayForEach(d, list)
	{
		const char *v = cJSON_GetStringValue(d);

		if (v == NULL || v[0] == '\0' || strlen(v) > 255 || strpbrk(v, " @\\") != NULL ||
		    tsms_config_has_control(v)) {
			fail(err,
			     "ldap.domains has an entry that is not a domain name (a non-empty "
			     "string without spaces, '@' or '\\'); fix: write the domain as "
			     "users type it, e.g. \"CORP\" or \"corp.example.com\"");
			return false;
		}
		if (!tsms_config_copy_string(&l->domains[i++], v, err))
			return false;
	}
	return true;
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

static bool parse_ldap_keys(const cJSON *obj, char err[TSMS_CONFIG_ERR_MAX])
{
	static const char *const keys[] = { "uri",          "startTLS",      "caFile", "bindDN",
		                            "bindPassword", "baseDN",        "filter", "domains",
		                            "attribute",    "timeoutSeconds" };

	return tsms_config_object_keys(obj, "ldap", keys, sizeof(keys) / sizeof(keys[0]), err);
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

bool tsms_config_parse_ldap(struct tsms_config *cfg, const cJSON *root,
                            char err[TSMS_CONFIG_ERR_MAX])
{
	static const struct tsms_number_option timeout = { "ldap.timeoutSeconds", 0, 5, 1, 30 };
	const cJSON *obj = cJSON_GetObjectItemCaseSensitive(root, "ldap");
	const char *problem;
	struct tsms_ldap *l;

	if (obj == NULL)
		return true;
	if (!cJSON_IsObject(obj)) {
		fail(err, "ldap must be an object; fix: write \"ldap\": {\"uri\": ..., \"baseDN\": "
		          "...} (" TSMS_CONFIG_MAN_REF ")");
		return false;
	}
	l = cfg->ldap = calloc(1, sizeof(*cfg->ldap));
	if (l == NULL) {
		fail(err, "out of memory");
		return false;
	}
	l->ca_fd = -1;
	if (!parse_ldap_keys(obj, err) ||
	    !tsms_config_member_string(obj, "ldap", "uri", &l->uri, err) ||
	    !tsms_config_member_string(obj, "ldap", "caFile", &l->ca_file, err) ||
	    !tsms_config_member_string(obj, "ldap", "bindDN", &l->bind_dn, err) ||
	    !tsms_config_member_string(obj, "ldap", "bindPassword", &l->bind_password, err) ||
	    !tsms_config_member_string(obj, "ldap", "baseDN", &l->base_dn, err) ||
	    !tsms_config_member_string(obj, "ldap", "filter", &l->filter, err) ||
	    !tsms_config_member_string(obj, "ldap", "attribute", &l->attribute, err) ||
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
	if (l->filter == NULL && !tsms_config_copy_string(&l->filter, "(uid=%u)", err))
		return false;
	problem = filter_problem(l->filter);
	if (problem != NULL) {
		fail(err,
		     "ldap.filter %s; fix: write e.g. \"(uid=%%u)\", or \"(sAMAccountName=%%s)\" "
		     "with ldap.domains (%%u: the user name, %%s: it without @DOMAIN or DOMAIN\\, "
		     "%%d: the domain; each escaped)",
		     problem);
		return false;
	}
	if (!parse_ldap_domains(l, obj, err))
		return false;
	if (strstr(l->filter, "%s") != NULL && strstr(l->filter, "%d") == NULL &&
	    l->domains == NULL) {
		fail(err,
		     "ldap.filter has %%s without %%d and there is no ldap.domains: OTHER\\alice "
		     "and alice@other.example.com would find this directory's alice; fix: add "
		     "\"domains\": [...] with the domain names of this directory's users, or match "
		     "%%d in the filter");
		return false;
	}
	if (l->attribute == NULL && !tsms_config_copy_string(&l->attribute, "mobile", err))
		return false;
	if (!good_attribute(l->attribute)) {
		fail(err, "ldap.attribute is not an attribute name; fix: write e.g. \"mobile\"");
		return false;
	}
	return tsms_config_set_unsigned(&l->timeout_seconds, &timeout,
	                                cJSON_GetObjectItemCaseSensitive(obj, "timeoutSeconds"),
	                                err);
}
