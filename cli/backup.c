/*
 * backup.c - twilio-sms-otp backup-codes: print a new set for a user, list how many
 * are left, revoke a user's set.
 */
#include <errno.h>
#include <getopt.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/account.h"
#include "lib/backup.h"
#include "lib/config.h"
#include "lib/otp.h"
#include "lib/users.h"

#include "cli.h"

static void list_backup(void *ctx, const char *user, unsigned left)
{
	++*(unsigned *)ctx;
	printf("%s: %u backup code%s left\n", user, left, left == 1 ? "" : "s");
}

static int backup_list(const struct tsms_config *cfg, const char *user)
{
	char err[TSMS_CONFIG_ERR_MAX];
	unsigned n = 0;

	if (user == NULL) {
		if (tsms_backup_each(cfg, list_backup, &n, err) != TSMS_OK) {
			fprintf(stderr, "twilio-sms-otp: %s\n", err);
			return 1;
		}
		if (n == 0)
			printf("no user has backup codes\n");
		return 0;
	}
	if (tsms_backup_count(cfg, user, &n, err) != TSMS_OK) {
		fprintf(stderr, "twilio-sms-otp: %s\n", err);
		return 1;
	}
	if (n == 0) {
		printf("%s: no backup codes\n", user);
		return 1;
	}
	list_backup(&(unsigned){ 0 }, user, n);
	return 0;
}

static int backup_revoke(const struct tsms_config *cfg, const char *user)
{
	char err[TSMS_CONFIG_ERR_MAX];
	unsigned removed;

	if (tsms_backup_revoke(cfg, user, &removed, err) != TSMS_OK) {
		fprintf(stderr, "twilio-sms-otp: %s\n", err);
		return 1;
	}
	if (removed == 0) {
		printf("%s: no backup codes to revoke\n", user);
		return 1;
	}
	printf("%s: %u backup code%s revoked\n", user, removed, removed == 1 ? "" : "s");
	return 0;
}

static int backup_generate(const struct tsms_config *cfg, const char *user, unsigned count)
{
	char codes[TSMS_BACKUP_COUNT_MAX][TSMS_BACKUP_SHOWN], err[TSMS_CONFIG_ERR_MAX];
	unsigned replaced;

	if (tsms_backup_generate(cfg, user, count, codes, &replaced, err) != TSMS_OK) {
		fprintf(stderr, "twilio-sms-otp: %s\n", err);
		return 1;
	}
	for (unsigned i = 0; i < count; i++)
		printf("%s\n", codes[i]);
	tsms_wipe(codes, sizeof(codes));
	if (fflush(stdout) != 0 || ferror(stdout)) {
		/* codes nobody has read must not stay valid */
		int saved = errno;
		bool revoked = tsms_backup_revoke(cfg, user, &replaced, err) == TSMS_OK;

		fprintf(stderr,
		        "twilio-sms-otp: cannot print the backup codes: %s; %s (the previous set "
		        "was replaced): run the command again\n",
		        strerror(saved), revoked ? "the new set is revoked" : err);
		return 1;
	}
	fprintf(stderr,
	        "%u backup code%s for %s, each works once; only their hashes are kept in %s", count,
	        count == 1 ? "" : "s", user, cfg->backup_codes_file);
	if (replaced > 0)
		fprintf(stderr, "; the previous %u no longer work", replaced);
	fputc('\n', stderr);
	return 0;
}

int cmd_backup_codes(const char *config_path, int argc, char **argv)
{
	static const struct option opts[] = { { "count", required_argument, NULL, 'c' },
		                              { "list", no_argument, NULL, 'l' },
		                              { "revoke", no_argument, NULL, 'r' },
		                              { NULL, 0, NULL, 0 } };
	static const char usage[] =
		"usage: twilio-sms-otp backup-codes USER [--count N] | --list [USER] | "
		"--revoke USER\n";
	char account[TSMS_ACCOUNT_NAME_MAX];
	unsigned count = TSMS_BACKUP_COUNT_DEFAULT;
	bool list = false, revoke = false, counted = false;
	const char *user = NULL;
	struct tsms_config *cfg;
	int opt, rc;

	optind = 1;
	opterr = 0;
	while ((opt = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		char *end;
		unsigned long n;

		if (opt == 'l') {
			list = true;
		} else if (opt == 'r') {
			revoke = true;
		} else if (opt == 'c') {
			n = strtoul(optarg, &end, 10);
			if (optarg[0] < '0' || optarg[0] > '9' || *end != '\0' || n < 1 ||
			    n > TSMS_BACKUP_COUNT_MAX) {
				fprintf(stderr, "twilio-sms-otp: --count must be 1 to %d\n%s",
				        TSMS_BACKUP_COUNT_MAX, usage);
				return EXIT_USAGE;
			}
			count = (unsigned)n;
			counted = true;
		} else {
			fprintf(stderr, "twilio-sms-otp: unknown option\n%s", usage);
			return EXIT_USAGE;
		}
	}
	if (optind < argc)
		user = argv[optind++];
	if (optind != argc || (list && (revoke || counted)) || (revoke && counted) ||
	    (!list && user == NULL) || (user != NULL && !tsms_users_valid_name(user))) {
		fputs(usage, stderr);
		return EXIT_USAGE;
	}
	if (user != NULL)
		user = tsms_account_name(user, account); /* the module's key for the codes */
	cfg = cli_load(config_path);
	if (cfg == NULL)
		return 1;
	if (cfg->backup_codes_file == NULL) {
		fprintf(stderr,
		        "twilio-sms-otp: the config has no backupCodesFile; fix: add "
		        "\"backupCodesFile\": \"/etc/security/pam_twilio_sms.backup-codes\"\n");
		rc = 1;
	} else if (list) {
		rc = backup_list(cfg, user);
	} else if (revoke) {
		rc = backup_revoke(cfg, user);
	} else {
		rc = backup_generate(cfg, user, count);
	}
	tsms_config_free(cfg);
	return rc;
}
