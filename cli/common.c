/*
 * common.c - what several twilio-sms-otp commands share: loading the config, and the
 * USER argument of lookup, status and unlock.
 */
#include <stdio.h>

#include "lib/config.h"

#include "cli.h"

struct tsms_config *cli_load(const char *path)
{
	char err[TSMS_CONFIG_ERR_MAX];
	struct tsms_config *cfg = tsms_config_load(path, err);

	if (cfg == NULL)
		fprintf(stderr, "twilio-sms-otp: %s\n", err);
	return cfg;
}

/* The user argument of status and unlock, and the config; NULL after a usage
 * error or an unusable config (rc says which). */
struct tsms_config *cli_user_command(const char *config_path, int argc, char **argv,
                                     const char *name, int *rc, char account[TSMS_ACCOUNT_NAME_MAX],
                                     const char **user)
{
	struct tsms_config *cfg;

	if (argc != 2 || argv[1][0] == '-' || argv[1][0] == '\0') {
		fprintf(stderr, "usage: twilio-sms-otp %s USER\n", name);
		*rc = EXIT_USAGE;
		return NULL;
	}
	cfg = cli_load(config_path);
	*rc = 1;
	*user = tsms_account_name(argv[1], account);
	return cfg;
}
