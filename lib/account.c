/* account.c - the account a login names (the only user of NSS's passwd lookup) */
#include "account.h"

#include <errno.h>
#include <pwd.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "users.h"

/* getpwnam_r's buffer: sysconf's hint, doubled on ERANGE up to this (an entry
 * with more than 1 MB of fields is not one to trust for a name). */
#define PW_BUF_FIRST 1024
#define PW_BUF_MAX (1024 * 1024)

const char *tsms_account_name(const char *typed, char buf[TSMS_ACCOUNT_NAME_MAX])
{
	long hint = sysconf(_SC_GETPW_R_SIZE_MAX);
	size_t size = hint > 0 && hint <= PW_BUF_MAX ? (size_t)hint : PW_BUF_FIRST;
	const char *name = typed;
	struct passwd pw, *found = NULL;
	char *mem = NULL;
	int rc = -1;

	if (typed == NULL || typed[0] == '\0')
		return typed;
	for (;;) {
		char *bigger = realloc(mem, size);

		if (bigger == NULL)
			break;
		mem = bigger;
		rc = getpwnam_r(typed, &pw, mem, size, &found);
		if (rc != ERANGE || size >= PW_BUF_MAX)
			break;
		size *= 2;
		found = NULL;
	}
	if (mem != NULL && rc == 0 && found != NULL && found->pw_name != NULL &&
	    tsms_users_valid_name(found->pw_name) &&
	    strlen(found->pw_name) < TSMS_ACCOUNT_NAME_MAX) {
		strcpy(buf, found->pw_name);
		name = buf;
	}
	free(mem);
	return name;
}
