/* account.h - the account a login names: NSS's name for it, not the spelling typed */
#ifndef TSMS_ACCOUNT_H
#define TSMS_ACCOUNT_H

/* The longest account name kept (that of tsms_users_valid_name), and its NUL. */
#define TSMS_ACCOUNT_NAME_MAX 257

/* The name of the account that typed names: the pw_name that getpwnam_r(typed)
 * returns, written to buf, so that the spellings NSS resolves to one account
 * (SSSD and winbind take ALICE, CORP\alice and alice@corp.example.com for
 * alice) are one user for the number, the limits, the lockout and the backup
 * codes. typed itself when NSS does not know it, the lookup fails, or the name
 * found is not one a users entry could hold (tsms_users_valid_name). Reads only
 * /etc/nsswitch.conf and its sources: nothing of the caller's environment. The
 * result is buf or typed; it never fails. */
const char *tsms_account_name(const char *typed, char buf[TSMS_ACCOUNT_NAME_MAX]);

#endif
