/* test_directory.c - unit tests of lib/directory: the filter for user names as
 * fleets write them (NAME, NAME@DOMAIN, DOMAIN\NAME), and the reason a failed
 * libldap call is logged with */
#include "unit.h"

#include <ldap.h>

#include "directory.h"

/* tsms_directory_filter's filter for user, or NULL and its err. */
static char *filter_for(const char *filter, char **domains, const char *user,
                        char err[TSMS_CONFIG_ERR_MAX])
{
	struct tsms_ldap l = { .filter = (char *)(uintptr_t)filter, .domains = domains };
	char *out = NULL;
	enum tsms_err e = tsms_directory_filter(&l, user, &out, err);

	assert_true((e == TSMS_OK) == (out != NULL));
	return out;
}

static void expect_filter(const char *filter, char **domains, const char *user, const char *want)
{
	char err[TSMS_CONFIG_ERR_MAX] = "";
	char *got = filter_for(filter, domains, user, err);

	if (got == NULL)
		fail_msg("user %s: refused: %s", user, err);
	assert_string_equal(got, want);
	free(got);
}

static void expect_refused(const char *filter, char **domains, const char *user, const char *why)
{
	char err[TSMS_CONFIG_ERR_MAX] = "";
	char *got = filter_for(filter, domains, user, err);

	if (got != NULL)
		fail_msg("user %s: filter %s, want a refusal", user, got);
	assert_non_null(strstr(err, why));
	assert_non_null(strstr(err, "not looked up"));
}

static void test_names_as_fleets_write_them(void **state)
{
	static char corp[] = "CORP", dns[] = "corp.example.com";
	char *domains[] = { corp, dns, NULL };
	const char *ad = "(&(objectCategory=person)(sAMAccountName=%s))";

	(void)state;
	for (const char *const *u =
	             (const char *const[]){ "alice", "alice@corp.example.com", "CORP\\alice",
	                                    "corp\\alice", "alice@CORP.Example.COM", NULL };
	     *u != NULL; u++)
		expect_filter(ad, domains, *u, "(&(objectCategory=person)(sAMAccountName=alice))");
	expect_filter("(|(uid=%u)(x=%s)(y=%d))", NULL, "CORP\\alice",
	              "(|(uid=CORP\\5Calice)(x=alice)(y=CORP))");
	expect_filter("(&(uid=%s)(associatedDomain=%d))", NULL, "alice@other.example.com",
	              "(&(uid=alice)(associatedDomain=other.example.com))");
	/* each value escaped: a part cannot widen the search */
	expect_filter("(&(uid=%s)(d=%d))", NULL, "a*)(uid=*@x)(y",
	              "(&(uid=a\\2A\\29\\28uid=\\2A)(d=x\\29\\28y))");
	/* a filter of %u only takes any name whole, as before */
	expect_filter("(mail=%u)", NULL, "a@b@c", "(mail=a@b@c)");
}

static void test_names_refused(void **state)
{
	static char corp[] = "CORP", dns[] = "corp.example.com";
	char *domains[] = { corp, dns, NULL };
	const char *ad = "(sAMAccountName=%s)";

	(void)state;
	expect_refused(ad, domains, "OTHER\\alice", "domain \"OTHER\" is not in ldap.domains");
	expect_refused(ad, domains, "alice@other.example.com", "is not in ldap.domains");
	expect_refused(ad, domains, "alice@corp.example.org", "is not in ldap.domains");
	expect_refused(ad, domains, "CORP\\alice@corp.example.com", "more than one");
	expect_refused(ad, domains, "alice@corp.example.com@corp.example.com", "more than one");
	expect_refused(ad, domains, "CORP\\\\alice", "more than one");
	expect_refused(ad, domains, "@corp.example.com", "empty name or domain");
	expect_refused(ad, domains, "CORP\\", "empty name or domain");
	expect_refused(ad, domains, "alice@", "empty name or domain");
	/* ldap.domains holds with a filter of %u only too */
	expect_refused("(userPrincipalName=%u)", domains, "alice@other.example.com",
	               "is not in ldap.domains");
	expect_refused("(x=%d)(y=%s)", NULL, "a\\b@c", "more than one");
	/* an empty %d matches nothing: the user would pass for one without a number */
	expect_refused("(&(uid=%s)(associatedDomain=%d))", NULL, "alice", "has no domain");
	expect_refused("(&(uid=%s)(associatedDomain=%d))", domains, "alice", "has no domain");
}

/* tsms_directory_reason(rc, diag) contains each of want (NULL-terminated). */
static void expect_reason(int rc, const char *diag, const char *const *want)
{
	char reason[TSMS_DIRECTORY_REASON];

	tsms_directory_reason(rc, diag, reason);
	for (; *want != NULL; want++) {
		if (strstr(reason, *want) == NULL)
			fail_msg("rc %d, diag %s: reason \"%s\" lacks \"%s\"", rc, diag, reason,
			         *want);
	}
	assert_non_null(strstr(reason, "; fix: "));
	assert_null(strstr(reason, "Can't contact LDAP server"));
}

#define WANT(...) ((const char *const[]){ __VA_ARGS__, NULL })
#define AD(data)                                                                             \
	"80090308: LdapErr: DSID-0C09044E, comment: AcceptSecurityContext error, data " data \
	", v4563"

static void test_active_directory_refusals(void **state)
{
	(void)state;
	expect_reason(LDAP_INVALID_CREDENTIALS, AD("532"),
	              WANT("refused the service account's bind", "password has expired", "data 532",
	                   "ldap.bindPassword"));
	expect_reason(LDAP_INVALID_CREDENTIALS, AD("773"), WANT("must change its password"));
	expect_reason(LDAP_INVALID_CREDENTIALS, AD("775"), WANT("locked out", "unlock"));
	expect_reason(LDAP_INVALID_CREDENTIALS, AD("533"), WANT("disabled", "enable"));
	expect_reason(LDAP_INVALID_CREDENTIALS, AD("701"), WANT("account has expired"));
	expect_reason(LDAP_INVALID_CREDENTIALS, AD("52e"), WANT("invalid credentials"));
	expect_reason(LDAP_INVALID_CREDENTIALS, AD("525"), WANT("does not exist", "bindDN"));
	/* Samba 4's AD DC writes the same codes */
	expect_reason(LDAP_INVALID_CREDENTIALS,
	              "80090308: LdapErr: DSID-0C0903A9, comment: AcceptSecurityContext error, "
	              "data 775, v1db1",
	              WANT("locked out"));
	/* any other directory: 49 alone */
	expect_reason(
		LDAP_INVALID_CREDENTIALS, NULL,
		WANT("the directory refused the service account's bind (invalid credentials"));
	expect_reason(LDAP_UNWILLING_TO_PERFORM,
	              "Account inactivated. Contact system administrator.",
	              WANT("refused the service account's bind", "inactivated"));
	expect_reason(LDAP_CONSTRAINT_VIOLATION, "Exceed password retry limit. Please try later.",
	              WANT("locked"));
}

static void test_certificates(void **state)
{
	(void)state;
	expect_reason(LDAP_SERVER_DOWN,
	              "TLS: hostname (127.0.0.1) does not match common name in certificate "
	              "(wrong.invalid)",
	              WANT("certificate name mismatch", "wrong.invalid", "ldap.uri"));
	expect_reason(LDAP_CONNECT_ERROR,
	              "TLS: hostname does not match subjectAltName in peer certificate",
	              WANT("certificate name mismatch"));
	expect_reason(LDAP_SERVER_DOWN, "TLS: peer cert untrusted or revoked (0x42)",
	              WANT("not signed by a CA of ldap.caFile"));
	expect_reason(LDAP_SERVER_DOWN, "TLS: peer cert untrusted or revoked (0x402)",
	              WANT("certificate has expired", "renew"));
	expect_reason(LDAP_SERVER_DOWN, "TLS: peer cert untrusted or revoked (0x202)",
	              WANT("not valid yet"));
	expect_reason(LDAP_SERVER_DOWN, "TLS: peer cert untrusted or revoked (0x22)",
	              WANT("revoked"));
	/* libldap with OpenSSL (other distributions) */
	expect_reason(LDAP_SERVER_DOWN,
	              "error:0A000086:SSL routines::certificate verify failed (hostname mismatch)",
	              WANT("certificate name mismatch"));
	expect_reason(LDAP_SERVER_DOWN,
	              "error:0A000086:SSL routines::certificate verify failed (self-signed "
	              "certificate)",
	              WANT("not signed by a CA"));
	/* what libldap with GnuTLS says when its trace was not kept */
	expect_reason(LDAP_SERVER_DOWN, "(unknown error code)", WANT("TLS handshake failed"));
	expect_reason(LDAP_SERVER_DOWN, NULL, WANT("cannot connect to the server"));
	expect_reason(LDAP_TIMEOUT, NULL, WANT("did not answer in time"));
	expect_reason(LDAP_NO_SUCH_OBJECT, NULL, WANT("ldap.baseDN does not exist"));
	expect_reason(LDAP_INSUFFICIENT_ACCESS, NULL, WANT("may not read"));
	expect_reason(LDAP_BUSY, "try later", WANT("Server is busy", "try later"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_names_as_fleets_write_them),
		cmocka_unit_test(test_names_refused),
		cmocka_unit_test(test_active_directory_refusals),
		cmocka_unit_test(test_certificates),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
