/* directory.c - phone numbers from an LDAP directory (the only libldap user)
 *
 * One search per login: connect (ldaps://, or ldap:// and StartTLS, or
 * ldapi://), verify the server's certificate and host name, bind, search,
 * unbind. Everything the caller's environment could say to libldap is kept
 * out: the calls run with an environment of LDAPNOINIT=1 only (environ.h),
 * so libldap reads no LDAP* variable and no ldap.conf or ldaprc file at all
 * (not /etc/ldap/ldap.conf, not ~/.ldaprc, not ./ldaprc in a directory the
 * caller chose), and every option it would have taken from them (URI, base,
 * bind DN, TLS_REQCERT, TLS_CACERT, timeouts, referrals, SASL) is set on the
 * handle here. libldap's TLS (GnuTLS on Debian) is configured only through
 * these options and runs with the same hidden environment.
 */
#include "directory.h"

#include <errno.h>
#include <fcntl.h>
#include <lber.h>
#include <ldap.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "caller.h"
#include "clock.h"
#include "environ.h"
#include "log.h"
#include "otp.h"
#include "phone.h"

#define fail(err, ...) tsms_format_clean((err), TSMS_CONFIG_ERR_MAX, __VA_ARGS__)

/* Debian's system trust store, used when ldap.caFile is not set */
#define SYSTEM_CA_FILE "/etc/ssl/certs/ca-certificates.crt"

/* One URI of the list: "" when it is fine, else the problem. */
static const char *uri_problem(const LDAPURLDesc *u, const char *first_scheme)
{
	const char *s = u->lud_scheme != NULL ? u->lud_scheme : "";

	if (strcasecmp(s, "ldaps") != 0 && strcasecmp(s, "ldap") != 0 &&
	    strcasecmp(s, "ldapi") != 0)
		return "has a URI that is not ldaps://, ldap:// or ldapi://";
	if (first_scheme[0] != '\0' && strcasecmp(first_scheme, s) != 0)
		return "mixes URI schemes";
	if ((u->lud_dn != NULL && u->lud_dn[0] != '\0') || u->lud_attrs != NULL ||
	    u->lud_filter != NULL || u->lud_exts != NULL)
		return "has a URI with a DN, attributes, a filter or extensions (baseDN, filter "
		       "and "
		       "attribute say those)";
	if (strcasecmp(s, "ldapi") != 0 && (u->lud_host == NULL || u->lud_host[0] == '\0'))
		return "has a URI without a host";
	return "";
}

bool tsms_directory_check_uri(const char *uri, char problem[TSMS_DIRECTORY_MSG])
{
	char *copy = strdup(uri), *save = NULL, scheme[8] = "";
	const char *why = NULL;
	unsigned n = 0;

	problem[0] = '\0';
	if (copy == NULL) {
		snprintf(problem, TSMS_DIRECTORY_MSG, "cannot be checked: out of memory");
		return false;
	}
	for (char *one = strtok_r(copy, " ", &save); one != NULL && why == NULL;
	     one = strtok_r(NULL, " ", &save)) {
		LDAPURLDesc *u = NULL;

		n++;
		if (ldap_url_parse(one, &u) != LDAP_URL_SUCCESS) {
			why = "has a URI libldap cannot parse";
		} else if (strncasecmp(one, "ldap://", 7) != 0 &&
		           strncasecmp(one, "ldaps://", 8) != 0 &&
		           strncasecmp(one, "ldapi://", 8) != 0) {
			/* libldap skips "URL:" and "<...>" around a URI, but the scheme (and
			 * so StartTLS) is read from the text itself */
			why = "has a URI that does not start with ldaps://, ldap:// or ldapi://";
		} else {
			why = uri_problem(u, scheme);
			why = why[0] != '\0' ? why : NULL;
			snprintf(scheme, sizeof(scheme), "%s", u->lud_scheme);
		}
		ldap_free_urldesc(u);
	}
	free(copy);
	if (why == NULL && n == 0)
		why = "is empty";
	if (why != NULL)
		snprintf(problem, TSMS_DIRECTORY_MSG, "%s", why);
	return why == NULL;
}

const char *tsms_directory_scheme(const char *uri)
{
	uri += strspn(uri, " \t,"); /* libldap skips list separators before the first URI */
	/* libldap takes the scheme in any case */
	if (strncasecmp(uri, "ldaps://", 8) == 0)
		return "ldaps";
	if (strncasecmp(uri, "ldapi://", 8) == 0)
		return "ldapi";
	return "ldap";
}

/* One lookup: the handle, the deadline, what went wrong. */
struct query {
	const struct tsms_ldap *l;
	LDAP *ld;
	long long deadline; /* tsms_clock_ms */
	char *err;
};

/* At least 1 ms: libldap reads a zero timeout as none. */
static long long ms_left(const struct query *q)
{
	long long ms = tsms_clock_left_ms(q->deadline);

	return ms > 0 ? ms : 1;
}

static struct timeval tv_left(const struct query *q)
{
	long long ms = ms_left(q);
	struct timeval tv = { .tv_sec = ms / 1000, .tv_usec = (ms % 1000) * 1000 };

	return tv;
}

/* libldap's trace level LDAP_DEBUG_TRACE (ldap_log.h, not installed): with
 * GnuTLS, libldap keeps why a certificate failed only in its trace ("TLS: peer
 * cert untrusted or revoked (0x42)", "TLS: hostname (...) does not match
 * ..."); its diagnostic message says "(unknown error code)". */
#define LIBLDAP_TRACE 0x0001

/* The last "TLS: " line of libldap's trace in the lookup's child process (the
 * trace goes nowhere else: no other line is kept, and nothing is logged). */
static char tls_trace[160];

static void keep_tls_trace(const char *line)
{
	size_t n;

	if (strncmp(line, "TLS: ", 5) != 0 || strncmp(line, "TLS: can't connect", 18) == 0)
		return;
	n = strcspn(line, "\n");
	while (n > 0 && line[n - 1] == '.')
		n--;
	snprintf(tls_trace, sizeof(tls_trace), "%.*s", (int)n, line);
}

/* Sends libldap's trace to keep_tls_trace: in the lookup's child only. */
static void trace_tls(void)
{
	int level = LIBLDAP_TRACE;

	tls_trace[0] = '\0';
	ber_set_option(NULL, LBER_OPT_LOG_PRINT_FN, (const void *)keep_tls_trace);
	ldap_set_option(NULL, LDAP_OPT_DEBUG_LEVEL, &level);
}

/* An Active Directory bind refusal: the "data XXX" of its diagnostic message */
static const struct {
	const char *data, *what, *fix;
} ad_refusals[] = {
	{ "525", "the account does not exist",
	  "correct ldap.bindDN (the service account's full DN)" },
	{ "52e", "invalid credentials", "correct ldap.bindPassword (or ldap.bindDN)" },
	{ "530", "the account may not log on at this time", "clear its logon hours" },
	{ "531", "the account may not log on from this host",
	  "clear its workstation restriction (userWorkstations)" },
	{ "532", "the account's password has expired",
	  "set a new password in the directory and in ldap.bindPassword, and let it never "
	  "expire for a service account" },
	{ "533", "the account is disabled", "enable the service account" },
	{ "701", "the account has expired", "clear or extend its accountExpires" },
	{ "773", "the account must change its password",
	  "set a new password (without \"must change at next logon\") in the directory and in "
	  "ldap.bindPassword" },
	{ "775", "the account is locked out",
	  "unlock it, and find what locked it (an old password still in use somewhere)" },
};

/* The AD refusal row for diag ("..., data 775, v4563"), or -1. */
static int ad_refusal(const char *diag)
{
	const char *p = diag != NULL ? strstr(diag, "data ") : NULL;
	size_t n;

	if (p == NULL)
		return -1;
	p += 5;
	n = strspn(p, "0123456789abcdefABCDEF");
	for (size_t i = 0; i < sizeof(ad_refusals) / sizeof(ad_refusals[0]); i++) {
		if (n == strlen(ad_refusals[i].data) && strncasecmp(p, ad_refusals[i].data, n) == 0)
			return (int)i;
	}
	return -1;
}

/* GnuTLS's certificate status bits (gnutls_certificate_status_t), as libldap
 * traces them in "untrusted or revoked (0x...)" */
#define GNUTLS_REVOKED 0x20u
#define GNUTLS_SIGNER_NOT_FOUND 0x40u
#define GNUTLS_SIGNER_NOT_CA 0x80u
#define GNUTLS_INSECURE_ALGORITHM 0x100u
#define GNUTLS_NOT_ACTIVATED 0x200u
#define GNUTLS_EXPIRED 0x400u

#define FIX_CA "put the CA that issued the directory's certificate in ldap.caFile"

/* A certificate the TLS layer refused (diag: a libldap TLS message): what, and
 * *fix; NULL when diag says no such thing. */
static const char *certificate_problem(const char *diag, const char **fix)
{
	const char *status = strstr(diag, "untrusted or revoked (0x");
	unsigned long bits = status != NULL ? strtoul(status + 22, NULL, 16) : 0;

	*fix = FIX_CA;
	if (strstr(diag, "does not match") != NULL || strstr(diag, "hostname mismatch") != NULL ||
	    strstr(diag, "subjectAltName") != NULL || strstr(diag, "get CN") != NULL) {
		*fix = "write in ldap.uri the host name the certificate names (an IP address only "
		       "when its subjectAltName has it), or give the server a certificate for "
		       "the name used";
		return "a certificate name mismatch: the server's certificate is not for the host "
		       "in ldap.uri";
	}
	if ((bits & GNUTLS_EXPIRED) != 0 || strstr(diag, "is expired") != NULL ||
	    strstr(diag, "has expired") != NULL) {
		*fix = "renew it on the server (or correct this host's clock)";
		return "the server's certificate has expired";
	}
	if ((bits & GNUTLS_NOT_ACTIVATED) != 0 || strstr(diag, "not yet") != NULL) {
		*fix = "correct this host's (or the CA's) clock";
		return "the server's certificate is not valid yet";
	}
	if ((bits & GNUTLS_REVOKED) != 0) {
		*fix = "give the server a new certificate";
		return "the server's certificate is revoked";
	}
	if ((bits & (GNUTLS_SIGNER_NOT_FOUND | GNUTLS_SIGNER_NOT_CA)) != 0 ||
	    strstr(diag, "self-signed") != NULL || strstr(diag, "self signed") != NULL ||
	    strstr(diag, "local issuer") != NULL)
		return "the server's certificate is not signed by a CA of ldap.caFile (or of the "
		       "system trust store when caFile is not set)";
	if ((bits & GNUTLS_INSECURE_ALGORITHM) != 0) {
		*fix = "give the server a certificate signed with SHA-256 or better";
		return "the server's certificate is signed with an insecure algorithm";
	}
	if (status != NULL || strstr(diag, "verify failed") != NULL)
		return "the server's certificate failed verification";
	return NULL;
}

/* A refused bind: what, and *fix; NULL when rc and diag are no refusal. */
static const char *bind_problem(int rc, const char *diag, const char **fix)
{
	int ad = ad_refusal(diag);

	if (ad >= 0) {
		*fix = ad_refusals[ad].fix;
		return ad_refusals[ad].what;
	}
	*fix = "correct ldap.bindDN and ldap.bindPassword, and check the account in the "
	       "directory";
	if (rc == LDAP_INVALID_CREDENTIALS)
		return "invalid credentials: ldap.bindDN or ldap.bindPassword is wrong, or the "
		       "account is locked, disabled or expired";
	if ((rc == LDAP_UNWILLING_TO_PERFORM && strcasestr(diag, "inactivated") != NULL) ||
	    (rc == LDAP_CONSTRAINT_VIOLATION && strcasestr(diag, "retry limit") != NULL)) {
		*fix = "unlock or activate the service account";
		return "the account is locked or inactivated";
	}
	return NULL;
}

void tsms_directory_reason(int rc, const char *diag, char reason[TSMS_DIRECTORY_REASON])
{
	const char *d = diag != NULL ? diag : "", *what = NULL, *fix = NULL;
	const char *refused = "", *refused_end = "";

	if (rc == LDAP_SERVER_DOWN || rc == LDAP_CONNECT_ERROR) {
		if (strncmp(d, "TLS: ", 5) == 0 || strstr(d, "certificate") != NULL)
			what = certificate_problem(d, &fix);
		if (what == NULL && d[0] != '\0') {
			what = "the connection or its TLS handshake failed";
			fix = "check that ldap.uri names the server's TLS port (ldaps://, "
			      "usually 636) or its StartTLS port (ldap://, usually 389)";
		} else if (what == NULL) {
			what = "cannot connect to the server (refused, unreachable or closed)";
			fix = "check ldap.uri's host and port and that the server runs";
		}
	} else if (rc == LDAP_TIMEOUT) {
		what = "the server did not answer in time";
		fix = "check the server's load, or raise ldap.timeoutSeconds";
	} else if ((what = bind_problem(rc, d, &fix)) != NULL) {
		refused = "the directory refused the service account's bind (";
		refused_end = ")";
	} else if (rc == LDAP_INSUFFICIENT_ACCESS) {
		what = "the service account may not read there";
		fix = "grant it read access to ldap.filter's attributes and ldap.attribute under "
		      "ldap.baseDN";
	} else if (rc == LDAP_NO_SUCH_OBJECT) {
		what = "ldap.baseDN does not exist on the server";
		fix = "correct ldap.baseDN";
	} else if (rc == LDAP_FILTER_ERROR) {
		what = "the server refused ldap.filter";
		fix = "check its syntax and attributes";
	} else {
		what = ldap_err2string(rc);
		fix = "see the server's log";
	}
	snprintf(reason, TSMS_DIRECTORY_REASON, "%s%s%s%s%.120s%s; fix: %s", refused, what,
	         refused_end, d[0] != '\0' ? " [" : "", d, d[0] != '\0' ? "]" : "", fix);
}

/* What went wrong at step, named for what it is (tsms_directory_reason). */
static void ldap_problem(struct query *q, const char *step, int rc)
{
	char reason[TSMS_DIRECTORY_REASON], *diag = NULL;
	bool tls = tls_trace[0] != '\0' && (rc == LDAP_SERVER_DOWN || rc == LDAP_CONNECT_ERROR);

	if (q->ld != NULL)
		ldap_get_option(q->ld, LDAP_OPT_DIAGNOSTIC_MESSAGE, &diag);
	tsms_directory_reason(rc, tls ? tls_trace : diag, reason);
	fail(q->err, "directory unavailable (%s): %s failed: %s", q->l->uri, step, reason);
	ldap_memfree(diag);
}

#define SET(opt, val)                                              \
	do {                                                       \
		if (rc == LDAP_OPT_SUCCESS)                        \
			rc = ldap_set_option(q->ld, (opt), (val)); \
	} while (0)

/* Every option on the handle: nothing comes from a config file or the
 * environment (LDAPNOINIT). */
static enum tsms_err set_options(struct query *q)
{
	struct timeval budget = tv_left(q);
	int version = LDAP_VERSION3, require = LDAP_OPT_X_TLS_HARD;
	int min_tls = LDAP_OPT_X_TLS_PROTOCOL_TLS1_2, new_ctx = 0;
	int limit = (int)q->l->timeout_seconds, rc = LDAP_OPT_SUCCESS;
	char ca_path[64];

	if (q->l->ca_fd >= 0)
		snprintf(ca_path, sizeof(ca_path), "/proc/self/fd/%d", q->l->ca_fd);
	else
		snprintf(ca_path, sizeof(ca_path), "%s", SYSTEM_CA_FILE);
	SET(LDAP_OPT_PROTOCOL_VERSION, &version);
	SET(LDAP_OPT_REFERRALS, LDAP_OPT_OFF); /* a referral could lead anywhere */
	SET(LDAP_OPT_NETWORK_TIMEOUT, &budget);
	SET(LDAP_OPT_TIMEOUT, &budget);
	SET(LDAP_OPT_TIMELIMIT, &limit);
	SET(LDAP_OPT_X_TLS_REQUIRE_CERT, &require);
	SET(LDAP_OPT_X_TLS_PROTOCOL_MIN, &min_tls);
	SET(LDAP_OPT_X_TLS_CACERTFILE, ca_path);
	/* only that file: a CA directory the host process's own libldap settings may carry
	 * (LDAPTLS_CACERTDIR read before LDAPNOINIT) is not trusted */
	SET(LDAP_OPT_X_TLS_CACERTDIR, NULL);
	SET(LDAP_OPT_X_TLS_NEWCTX, &new_ctx); /* last: the TLS options above take effect */
	if (rc != LDAP_OPT_SUCCESS) {
		fail(q->err, "directory: cannot set libldap's options: %s", ldap_err2string(rc));
		return TSMS_ERR_SYSTEM;
	}
	return TSMS_OK;
}

#undef SET

static enum tsms_err connect_and_bind(struct query *q)
{
	struct berval cred = { 0, NULL };
	int rc;

	rc = ldap_initialize(&q->ld, q->l->uri);
	if (rc != LDAP_SUCCESS || q->ld == NULL) {
		fail(q->err, "directory: ldap_initialize(%s): %s", q->l->uri, ldap_err2string(rc));
		return TSMS_ERR_CONFIG;
	}
	if (set_options(q) != TSMS_OK)
		return TSMS_ERR_SYSTEM;
	if (q->l->start_tls) {
		rc = ldap_start_tls_s(q->ld, NULL, NULL);
		if (rc != LDAP_SUCCESS) {
			ldap_problem(q, "StartTLS", rc);
			return TSMS_ERR_UNAVAILABLE;
		}
	}
	if (q->l->bind_password != NULL) {
		cred.bv_val = q->l->bind_password;
		cred.bv_len = strlen(q->l->bind_password);
	}
	rc = ldap_sasl_bind_s(q->ld, q->l->bind_dn != NULL ? q->l->bind_dn : "", LDAP_SASL_SIMPLE,
	                      &cred, NULL, NULL, NULL);
	if (rc != LDAP_SUCCESS) {
		ldap_problem(
			q, q->l->bind_dn != NULL ? "the bind as ldap.bindDN" : "the anonymous bind",
			rc);
		return TSMS_ERR_UNAVAILABLE;
	}
	tls_trace[0] = '\0'; /* TLS is up: a later failure is not the handshake's */
	return TSMS_OK;
}

/* A user name's parts: the short name and the domain (length 0: none). */
struct name_parts {
	const char *name, *domain;
	size_t name_len, domain_len;
};

/* Splits user at its one '@' (NAME@DOMAIN, SSSD's fully qualified names) or
 * its one backslash (DOMAIN\NAME, winbind's); without either the name is the
 * user and the domain empty. Returns NULL, or the problem of a name with two
 * separators (two of one, or one of each: no rule every fleet shares says
 * which part is the domain, and a wrong guess finds another user) or with an
 * empty part. */
static const char *split_name(const char *user, struct name_parts *p)
{
	const char *at = strchr(user, '@'), *bs = strchr(user, '\\');
	size_t n = strlen(user);

	if ((at != NULL && (bs != NULL || strchr(at + 1, '@') != NULL)) ||
	    (bs != NULL && strchr(bs + 1, '\\') != NULL))
		return "has more than one '@' or '\\' (NAME@DOMAIN and DOMAIN\\NAME have one)";
	if (at != NULL) {
		*p = (struct name_parts){ user, at + 1, (size_t)(at - user),
			                  n - (size_t)(at - user) - 1 };
	} else if (bs != NULL) {
		*p = (struct name_parts){ bs + 1, user, n - (size_t)(bs - user) - 1,
			                  (size_t)(bs - user) };
	} else {
		*p = (struct name_parts){ user, "", n, 0 };
		return NULL;
	}
	if (p->name_len == 0 || p->domain_len == 0)
		return "has an empty name or domain beside its '@' or '\\'";
	return NULL;
}

/* Whether a login of domain parts may be looked up here: no domain, no
 * ldap.domains, or one of them (any case: NetBIOS and DNS names have none). */
/* ASCII letters compared without case: strncasecmp follows the caller's locale */
static bool same_nocase(const char *a, const char *b, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		unsigned char x = (unsigned char)a[i], y = (unsigned char)b[i];

		if (x >= 'A' && x <= 'Z')
			x = (unsigned char)(x - 'A' + 'a');
		if (y >= 'A' && y <= 'Z')
			y = (unsigned char)(y - 'A' + 'a');
		if (x != y)
			return false;
	}
	return true;
}

static bool served_domain(const struct tsms_ldap *l, const struct name_parts *p)
{
	if (p->domain_len == 0 || l->domains == NULL)
		return true;
	for (size_t i = 0; l->domains[i] != NULL; i++) {
		if (strlen(l->domains[i]) == p->domain_len &&
		    same_nocase(l->domains[i], p->domain, p->domain_len))
			return true;
	}
	return false;
}

/* The filter with %u, %s and %d replaced by value[0], [1] and [2], each
 * escaped by libldap (RFC 4515). Returns a new string (free) or NULL. */
static char *expand_filter(const char *filter, const struct berval value[3])
{
	static const char letters[] = "usd";
	struct berval esc[3] = { { 0, NULL }, { 0, NULL }, { 0, NULL } };
	size_t len = strlen(filter) + 1;
	char *out = NULL, *o;
	bool ok = true;

	for (int i = 0; i < 3 && ok; i++) /* an empty value stays { 0, NULL } */
		ok = ldap_bv2escaped_filter_value((struct berval *)(uintptr_t)&value[i], &esc[i]) ==
		     0;
	for (const char *p = filter; ok && (p = strchr(p, '%')) != NULL; p++) {
		const char *which = p[1] != '\0' ? strchr(letters, p[1]) : NULL;

		len += which != NULL ? esc[which - letters].bv_len : 0;
	}
	if (ok)
		out = o = malloc(len);
	for (const char *p = filter; out != NULL && *p != '\0';) {
		const char *which = p[0] == '%' && p[1] != '\0' ? strchr(letters, p[1]) : NULL;

		if (which != NULL) {
			if (esc[which - letters].bv_len > 0)
				memcpy(o, esc[which - letters].bv_val, esc[which - letters].bv_len);
			o += esc[which - letters].bv_len;
			p += 2;
		} else {
			*o++ = *p++;
		}
	}
	if (out != NULL)
		*o = '\0';
	for (int i = 0; i < 3; i++)
		ber_memfree(esc[i].bv_val);
	return out;
}

/* Whether names are split (tsms_directory_filter), else taken whole. */
static bool splits_names(const struct tsms_ldap *l)
{
	return strstr(l->filter, "%s") != NULL || strstr(l->filter, "%d") != NULL ||
	       l->domains != NULL;
}

enum tsms_err tsms_directory_filter(const struct tsms_ldap *l, const char *user, char **filter,
                                    char err[TSMS_CONFIG_ERR_MAX])
{
	struct name_parts parts = { user, "", strlen(user), 0 };
	struct berval value[3];
	const char *problem = NULL;

	*filter = NULL;
	if (splits_names(l))
		problem = split_name(user, &parts);
	if (problem != NULL) {
		fail(err,
		     "directory: user \"%s\" %s: refused, not looked up; fix: log in as NAME, "
		     "NAME@DOMAIN or DOMAIN\\NAME",
		     user, problem);
		return TSMS_ERR_DIRECTORY;
	}
	if (!served_domain(l, &parts)) {
		fail(err,
		     "directory: user \"%s\": domain \"%.*s\" is not in ldap.domains, so no entry "
		     "of this directory is the user's: refused, not looked up; fix: add it to "
		     "ldap.domains if the directory holds that domain's users, or give the user a "
		     "number in users or usersFile",
		     user, (int)parts.domain_len, parts.domain);
		return TSMS_ERR_DIRECTORY;
	}
	/* an empty %d matches no entry, and a user the directory cannot find passes for one
	 * without a number (nullok): a bare name that NSS gives the domain's user (SSSD's
	 * short names) would skip the code */
	if (parts.domain_len == 0 && strstr(l->filter, "%d") != NULL) {
		fail(err,
		     "directory: user \"%s\" has no domain, which ldap.filter's %%d needs: "
		     "refused, not looked up (no entry could match, and the user would pass for "
		     "one without a number); fix: log in as NAME@DOMAIN or DOMAIN\\NAME, or give "
		     "the user a number in users or usersFile",
		     user);
		return TSMS_ERR_DIRECTORY;
	}
	value[0] = (struct berval){ strlen(user), (char *)(uintptr_t)user };
	value[1] = (struct berval){ parts.name_len, (char *)(uintptr_t)parts.name };
	value[2] = (struct berval){ parts.domain_len, (char *)(uintptr_t)parts.domain };
	*filter = expand_filter(l->filter, value);
	if (*filter == NULL) {
		fail(err, "directory: out of memory");
		return TSMS_ERR_NOMEM;
	}
	return TSMS_OK;
}

/* Reads the search's entries into num, or says why they cannot be used. */
static enum tsms_err read_entries(struct query *q, const char *user, LDAPMessage *res,
                                  struct tsms_number *num)
{
	int count = ldap_count_entries(q->ld, res);
	LDAPMessage *e = ldap_first_entry(q->ld, res);
	struct berval **values;
	const char *why;
	char *dn, *dn2;
	enum tsms_err ret = TSMS_OK;

	/* also with ldap.domains: CORP\alice under (userPrincipalName=%u) matches nothing */
	if ((count <= 0 || e == NULL) && strpbrk(user, "@\\") != NULL &&
	    strstr(q->l->filter, "%s") == NULL) {
		fail(q->err,
		     "directory: user \"%s\" has a domain part, which ldap.filter takes whole "
		     "(%%u), and no entry matched: denied, not taken for a user without a number; "
		     "fix: match the short name with %%s and list the directory's domains in "
		     "ldap.domains (see pam_twilio_sms.json(5))",
		     user);
		return TSMS_ERR_DIRECTORY;
	}
	if (count <= 0 || e == NULL)
		return TSMS_OK; /* no entry: the user is unmapped */
	dn = ldap_get_dn(q->ld, e);
	if (count > 1) {
		dn2 = ldap_get_dn(q->ld, ldap_next_entry(q->ld, e));
		fail(q->err,
		     "directory: user \"%s\" matches several entries (%s, %s%s) under %s; fix: "
		     "make "
		     "ldap.filter match one entry per user",
		     user, dn != NULL ? dn : "?", dn2 != NULL ? dn2 : "?", count > 2 ? ", ..." : "",
		     q->l->base_dn);
		ldap_memfree(dn2);
		ldap_memfree(dn);
		return TSMS_ERR_DIRECTORY;
	}
	values = ldap_get_values_len(q->ld, e, q->l->attribute);
	if (values != NULL && values[0] != NULL) {
		if (tsms_phone_parse(values[0]->bv_val, (size_t)values[0]->bv_len, num->phone,
		                     &why)) {
			num->source = TSMS_SOURCE_LDAP;
			snprintf(num->where, sizeof(num->where), "%s", dn != NULL ? dn : "?");
		} else {
			fail(q->err,
			     "directory: user \"%s\": %s of %s: the number %s (a number without "
			     "its country code is never guessed); fix: " TSMS_PHONE_FIX
			     " in the directory",
			     user, q->l->attribute, dn != NULL ? dn : "?", why);
			ret = TSMS_ERR_DIRECTORY;
		}
	}
	ldap_value_free_len(values);
	ldap_memfree(dn);
	return ret;
}

/* The probe's entry (tsms_directory_probe): its DN in num->where. */
static enum tsms_err read_probe(struct query *q, LDAPMessage *res, struct tsms_number *num)
{
	LDAPMessage *e = ldap_first_entry(q->ld, res);
	struct berval **values = e != NULL ? ldap_get_values_len(q->ld, e, q->l->attribute) : NULL;
	char *dn = e != NULL ? ldap_get_dn(q->ld, e) : NULL;
	enum tsms_err ret = TSMS_OK;

	if (values == NULL || values[0] == NULL) {
		fail(q->err,
		     "directory: no entry under %s shows %s to %s (none has it, or the directory's "
		     "access rules hide it), so every user would look unmapped (the decoy's "
		     "denial, or with nullok a pass on the password alone); fix: check "
		     "ldap.baseDN and ldap.attribute, and let the service account read %s",
		     q->l->base_dn, q->l->attribute,
		     q->l->bind_dn != NULL ? "ldap.bindDN" : "an anonymous bind", q->l->attribute);
		ret = TSMS_ERR_DIRECTORY;
	} else {
		num->source = TSMS_SOURCE_LDAP;
		snprintf(num->where, sizeof(num->where), "%s", dn != NULL ? dn : "?");
	}
	ldap_value_free_len(values);
	ldap_memfree(dn);
	return ret;
}

/* The search for user, or for the probe when user is NULL. */
static enum tsms_err search(struct query *q, const char *user, const char *filter,
                            struct tsms_number *num)
{
	char *attrs[2] = { q->l->attribute, NULL };
	LDAPMessage *res = NULL;
	struct timeval tv = tv_left(q);
	enum tsms_err ret;
	int rc;

	/* two entries are enough to tell one from several; the probe needs one */
	rc = ldap_search_ext_s(q->ld, q->l->base_dn, LDAP_SCOPE_SUBTREE, filter, attrs, 0, NULL,
	                       NULL, &tv, user != NULL ? 2 : 1, &res);
	if (rc != LDAP_SUCCESS && rc != LDAP_SIZELIMIT_EXCEEDED) {
		ldap_problem(q, "the search", rc);
		ret = rc == LDAP_NO_SUCH_OBJECT || rc == LDAP_FILTER_ERROR ? TSMS_ERR_DIRECTORY
		                                                           : TSMS_ERR_UNAVAILABLE;
	} else if (user == NULL) {
		ret = read_probe(q, res, num);
	} else {
		ret = read_entries(q, user, res, num);
	}
	ldap_msgfree(res);
	return ret;
}

/* The lookup itself, in the child (see tsms_directory_find). */
static enum tsms_err lookup(const struct tsms_config *cfg, const char *user, const char *filter,
                            struct tsms_number *num, char err[TSMS_CONFIG_ERR_MAX])
{
	static char ldap_noinit[] = "LDAPNOINIT=1";
	char *only_noinit[] = { ldap_noinit, NULL };
	struct query q = { .l = cfg->ldap, .err = err };
	struct tsms_environ env;
	enum tsms_err ret;

	q.deadline = tsms_clock_ms() + q.l->timeout_seconds * 1000LL;
	tsms_environ_use(&env, only_noinit);
	trace_tls();
	ret = connect_and_bind(&q);
	if (ret == TSMS_OK)
		ret = search(&q, user, filter, num);
	if (q.ld != NULL)
		ldap_unbind_ext_s(q.ld, NULL, NULL);
	tsms_environ_restore(&env);
	return ret;
}

/* What the child hands back: one write, smaller than PIPE_BUF, so atomic. */
struct answer {
	enum tsms_err ret;
	struct tsms_number num;
	char err[TSMS_CONFIG_ERR_MAX];
};

/* How the wait for the child's answer ended. */
enum awaited {
	ANSWERED, /* the whole answer came */
	TIMED_OUT,
	ENDED, /* the pipe closed before the whole answer: the child has ended */
};

/* Reads the child's answer until ms have passed. Past the deadline what has
 * already come is still read: a host stopped past it (by its caller) takes the
 * answer that came meanwhile, not a timeout. */
static enum awaited await_answer(int fd, long long ms, struct answer *a)
{
	long long deadline = tsms_clock_ms() + ms;
	size_t got = 0;

	while (got < sizeof(*a)) {
		struct pollfd p = { .fd = fd, .events = POLLIN };
		ssize_t n;
		int rc;

		rc = poll(&p, 1, (int)tsms_clock_left_ms(deadline));
		if (rc < 0 && errno == EINTR)
			continue;
		if (rc <= 0)
			return TIMED_OUT; /* or poll failed: either way no answer */
		n = read(fd, (char *)a + got, sizeof(*a) - got);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return ENDED;
		got += (size_t)n;
	}
	return ANSWERED;
}

/* Reaps the child; for a child that ended without its answer, says how in a->err:
 * an attack or a crash, never an outage (TSMS_ERR_DIRECTORY: failMode does not
 * apply, no backup prompt). */
static void reap(pid_t pid, enum awaited how, long long start, struct answer *a)
{
	int status = 0;
	pid_t got;

	while ((got = waitpid(pid, &status, 0)) < 0 && errno == EINTR)
		;
	if (how != ENDED)
		return;
	a->ret = TSMS_ERR_DIRECTORY;
	a->num.source = TSMS_SOURCE_NONE;
	if (got == pid && WIFSIGNALED(status))
		fail(a->err,
		     "directory: the lookup process was killed by signal %d (%s) after %lld ms, "
		     "without an answer: a crash or an attack, not an outage (failMode does not "
		     "apply)",
		     WTERMSIG(status), strsignal(WTERMSIG(status)), tsms_clock_ms() - start);
	else if (got == pid)
		fail(a->err,
		     "directory: the lookup process ended without an answer (exit status %d) after "
		     "%lld ms: a crash, not an outage (failMode does not apply)",
		     WIFEXITED(status) ? WEXITSTATUS(status) : -1, tsms_clock_ms() - start);
	else /* a host program that reaps its children itself may have taken it (ECHILD) */
		fail(a->err,
		     "directory: the lookup process ended without an answer after %lld ms (its "
		     "status went to the host program): a crash, not an outage (failMode does not "
		     "apply)",
		     tsms_clock_ms() - start);
}

/*
 * The search (for user, or the probe's when user is NULL) runs in a child
 * process that the module ends when the budget is spent: libldap 2.5 with
 * GnuTLS spins without end in the TLS handshake with a server that accepts the
 * connection and never answers (no option or socket timeout stops it), and a
 * server may drip bytes to outlast every per-read timeout. The child is a copy of this process (no exec: nothing is looked up
 * on PATH), so libldap's state never lives in the host program either; it
 * answers through a pipe and exits. It leaves the caller's reach first
 * (caller.h): in a setuid host the caller could otherwise kill it and pass for
 * a directory outage.
 */
static enum tsms_err in_child(const struct tsms_config *cfg, const char *user, const char *filter,
                              struct tsms_number *num, char err[TSMS_CONFIG_ERR_MAX])
{
	long long budget_ms = cfg->ldap->timeout_seconds * 1000LL + 500;
	long long start;
	enum awaited how;
	enum tsms_err ret;
	struct answer a;
	int fds[2];
	pid_t pid;

	num->source = TSMS_SOURCE_NONE;
	num->phone[0] = num->where[0] = '\0';
	if (pipe2(fds, O_CLOEXEC) != 0) {
		fail(err, "directory: cannot make a pipe: %s", strerror(errno));
		return TSMS_ERR_SYSTEM;
	}
	start = tsms_clock_ms();
	pid = fork();
	if (pid < 0) {
		fail(err, "directory: cannot fork: %s", strerror(errno));
		close(fds[0]);
		close(fds[1]);
		return TSMS_ERR_SYSTEM;
	}
	if (pid == 0) {
		/* the child: a closed connection must end it quietly, not kill it mid-write */
		signal(SIGPIPE, SIG_IGN);
		close(fds[0]);
		memset(&a, 0, sizeof(a));
		if (tsms_caller_detach() != 0) {
			a.ret = TSMS_ERR_SYSTEM;
			fail(a.err,
			     "directory: the lookup process cannot leave the caller's reach: %s",
			     strerror(errno));
		} else {
			a.ret = lookup(cfg, user, filter, &a.num, a.err);
		}
		_exit(write(fds[1], &a, sizeof(a)) == (ssize_t)sizeof(a) ? 0 : 1);
	}
	close(fds[1]);
	memset(&a, 0, sizeof(a));
	how = await_answer(fds[0], budget_ms, &a);
	if (how == TIMED_OUT) {
		kill(pid, SIGKILL); /* not reaped yet: pid is still this child's */
		a.ret = TSMS_ERR_UNAVAILABLE;
		a.num.source = TSMS_SOURCE_NONE;
		fail(a.err,
		     "directory unavailable: no answer within ldap.timeoutSeconds (%u s) from %s",
		     cfg->ldap->timeout_seconds, cfg->ldap->uri);
	}
	close(fds[0]);
	reap(pid, how, start, &a);
	ret = a.ret;
	*num = a.num;
	snprintf(err, TSMS_CONFIG_ERR_MAX, "%s", a.err);
	if (ret != TSMS_OK || num->source != TSMS_SOURCE_LDAP) {
		num->source = TSMS_SOURCE_NONE;
		num->phone[0] = num->where[0] = '\0';
	}
	tsms_wipe(&a, sizeof(a));
	return ret;
}

enum tsms_err tsms_directory_find(const struct tsms_config *cfg, const char *user,
                                  struct tsms_number *num, char err[TSMS_CONFIG_ERR_MAX])
{
	char *filter = NULL;
	enum tsms_err ret;

	num->source = TSMS_SOURCE_NONE;
	num->phone[0] = num->where[0] = '\0';
	ret = tsms_directory_filter(cfg->ldap, user, &filter, err);
	if (ret == TSMS_OK)
		ret = in_child(cfg, user, filter, num, err);
	free(filter);
	return ret;
}

enum tsms_err tsms_directory_probe(const struct tsms_config *cfg, char msg[TSMS_CONFIG_ERR_MAX])
{
	struct tsms_number num;
	char filter[TSMS_CONFIG_ERR_MAX * 3]; /* the attribute has at most 1024 bytes */
	enum tsms_err ret;

	/* the attribute is checked by the config: letters, digits, '-' and ';' */
	snprintf(filter, sizeof(filter), "(%s=*)", cfg->ldap->attribute);
	ret = in_child(cfg, NULL, filter, &num, msg);
	if (ret == TSMS_OK)
		fail(msg, "ldap: connected to %s, bound %s and read %s of %s: OK", cfg->ldap->uri,
		     cfg->ldap->bind_dn != NULL ? "as ldap.bindDN" : "anonymously",
		     cfg->ldap->attribute, num.where);
	tsms_wipe(&num, sizeof(num));
	return ret;
}
