/*
 * cli.h - the commands of twilio-sms-otp, and what several of them share.
 *
 * twilio-sms-otp.c holds main and the table of commands; each command lives in the file
 * of what it owns (check.c, enroll.c, state.c, backup.c) and works on lib/ only. A
 * command runs as run(config path, argc, argv), argv[0] its name, and returns the exit
 * status: 0, 1, or EXIT_USAGE.
 */
#ifndef TSMS_CLI_H
#define TSMS_CLI_H

#include "lib/account.h"

#define EXIT_USAGE 2

struct tsms_config;

/* The config at path, or NULL after saying why on stderr. Free with tsms_config_free. */
struct tsms_config *cli_load(const char *path);

/* The config for a command of one USER argument (argv[1]); NULL after a usage error or an
 * unusable config, *rc the exit status for either. *user is the account's name for it
 * (tsms_account_name, written to account), as the module names a login. */
struct tsms_config *cli_user_command(const char *config_path, int argc, char **argv,
                                     const char *name, int *rc, char account[TSMS_ACCOUNT_NAME_MAX],
                                     const char **user);

int cmd_check(const char *config_path, int argc, char **argv);        /* check.c */
int cmd_test(const char *config_path, int argc, char **argv);         /* enroll.c */
int cmd_enroll(const char *config_path, int argc, char **argv);       /* enroll.c */
int cmd_unenroll(const char *config_path, int argc, char **argv);     /* enroll.c */
int cmd_list(const char *config_path, int argc, char **argv);         /* enroll.c */
int cmd_lookup(const char *config_path, int argc, char **argv);       /* enroll.c */
int cmd_status(const char *config_path, int argc, char **argv);       /* state.c */
int cmd_unlock(const char *config_path, int argc, char **argv);       /* state.c */
int cmd_revoke_grace(const char *config_path, int argc, char **argv); /* state.c */
int cmd_backup_codes(const char *config_path, int argc, char **argv); /* backup.c */

#endif
