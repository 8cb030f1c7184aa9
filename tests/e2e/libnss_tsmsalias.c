/*
 * libnss_tsmsalias.c - an NSS passwd source for the e2e tests (tests/e2e/test_account.py):
 * like SSSD or winbind it resolves several spellings of one account, here ALICE,
 * CORP\alice and alice@corp.example.com, to the account alice. Loaded by glibc from
 * LD_LIBRARY_PATH as "tsmsalias" of an nsswitch.conf bind-mounted in the client's
 * mount namespace only.
 */
#include <errno.h>
#include <nss.h>
#include <pwd.h>
#include <string.h>
#include <sys/types.h>

enum nss_status _nss_tsmsalias_getpwnam_r(const char *name, struct passwd *pw, char *buf,
                                          size_t buflen, int *errnop);

static const char *const spellings[] = { "alice", "ALICE", "CORP\\alice",
	                                 "alice@corp.example.com" };
static const char fields[] = "alice\0x\0\0/nonexistent\0/usr/sbin/nologin";

enum nss_status _nss_tsmsalias_getpwnam_r(const char *name, struct passwd *pw, char *buf,
                                          size_t buflen, int *errnop)
{
	for (size_t i = 0; i < sizeof(spellings) / sizeof(spellings[0]); i++) {
		if (strcmp(name, spellings[i]) != 0)
			continue;
		if (buflen < sizeof(fields)) {
			*errnop = ERANGE;
			return NSS_STATUS_TRYAGAIN;
		}
		memcpy(buf, fields, sizeof(fields));
		pw->pw_name = buf;
		pw->pw_passwd = buf + 6;
		pw->pw_gecos = buf + 8;
		pw->pw_dir = buf + 9;
		pw->pw_shell = buf + 22;
		pw->pw_uid = pw->pw_gid = 4242;
		return NSS_STATUS_SUCCESS;
	}
	*errnop = ENOENT;
	return NSS_STATUS_NOTFOUND;
}
