/*
 * twilio-sms-otp.c - the administrator's command: check the config, send a test
 * SMS, enroll and unenroll users, list them, show and lift lockouts. Shares lib/
 * with the PAM module:
 * the same config file, checks, HTTP client and codes.
 *
 * This file is main, the global options and the table of commands; the commands
 * live in cli/, one file per thing they own (cli/cli.h).
 */
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "lib/config.h"

#include "cli/cli.h"

#ifndef TSMS_VERSION
#define TSMS_VERSION "0" /* the Makefile sets it from debian/changelog */
#endif

static const char usage_main[] =
	"usage: twilio-sms-otp [--config PATH] COMMAND [ARGS]\n"
	"\n"
	"Commands:\n"
	"  check                      validate the config as the PAM module would\n"
	"  test NUMBER                send the Test template with a fresh code to NUMBER\n"
	"  enroll USER NUMBER         text USER a code (Register template), and when it is\n"
	"                             typed back, map USER to NUMBER in the usersFile\n"
	"  unenroll USER              remove USER from the usersFile\n"
	"  list [--show]              list users and their numbers (masked unless --show)\n"
	"  lookup USER                where USER's number comes from, masked\n"
	"  status USER                USER's sends, cooldown, wrong codes and lockout\n"
	"  unlock USER                clear USER's wrong-code count and lockout\n"
	"  revoke-grace USER          end USER's graces: the next login asks for a code\n"
	"  backup-codes USER          print a new set of single-use backup codes for USER\n"
	"                             (--count N; --list [USER]; --revoke USER)\n"
	"\n"
	"Options:\n"
	"  --config PATH              config file (default " TSMS_DEFAULT_CONFIG ")\n"
	"  --help                     this text; COMMAND --help describes a command\n"
	"  --version                  print twilio-sms-otp's version\n";

struct command {
	const char *name;
	const char *usage;
	int (*run)(const char *config_path, int argc, char **argv);
};

static bool wants_help(int argc, char **argv)
{
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0)
			return true;
	}
	return false;
}

static const struct command commands[] = {
	{ "check",
	  "usage: twilio-sms-otp [--config PATH] check [--offline]\n"
	  "Validates the config, its users file and stateDir as the PAM module would,\n"
	  "flags the example's placeholders and users, and proves the Twilio credential\n"
	  "and Messaging Service by fetching the service (no text is sent); with ldap or\n"
	  "redis, connects as the module would. --offline leaves the network out. Prints\n"
	  "every problem with its fix. Exit 0 only when there is none.\n",
	  cmd_check },
	{ "test",
	  "usage: twilio-sms-otp [--config PATH] test NUMBER\n"
	  "Sends the Test template (else Generic) with a fresh code to NUMBER and prints\n"
	  "Twilio's message sid and status, or Twilio's error. Exit 0 when sent.\n",
	  cmd_test },
	{ "enroll",
	  "usage: twilio-sms-otp [--config PATH] enroll [--no-verify] USER NUMBER\n"
	  "Texts NUMBER a code with the Register template (else Generic), asks for it,\n"
	  "and when it matches maps USER to NUMBER in the config's usersFile (atomic\n"
	  "write, root 0600). --no-verify skips the SMS.\n",
	  cmd_enroll },
	{ "unenroll",
	  "usage: twilio-sms-otp [--config PATH] unenroll USER\n"
	  "Removes USER from the config's usersFile.\n",
	  cmd_unenroll },
	{ "list",
	  "usage: twilio-sms-otp [--config PATH] list [--show]\n"
	  "Lists users with their numbers, masked unless --show, and where each is set.\n",
	  cmd_list },
	{ "lookup",
	  "usage: twilio-sms-otp [--config PATH] lookup USER\n"
	  "Finds USER's number as the module does (users, usersFile, then ldap) and prints\n"
	  "it masked, with where it came from (the entry's DN for ldap). Exit 0 when found,\n"
	  "1 when USER has none.\n",
	  cmd_lookup },
	{ "status",
	  "usage: twilio-sms-otp [--config PATH] status USER\n"
	  "Shows USER's SMS sent in the current window, the cooldown left, consecutive\n"
	  "wrong codes and the lockout, and the masked number; with redis, from Redis,\n"
	  "and this host's fallback file when it has one; and USER's open graces. Exit 0,\n"
	  "or 1 when USER has no state.\n",
	  cmd_status },
	{ "unlock",
	  "usage: twilio-sms-otp [--config PATH] unlock USER\n"
	  "Clears USER's wrong-code count and lockout under the module's lock (in Redis\n"
	  "and this host's fallback file, with redis); the send counts stay. Exit 0 when\n"
	  "done, 1 when USER has no state.\n",
	  cmd_unlock },
	{ "revoke-grace",
	  "usage: twilio-sms-otp [--config PATH] revoke-grace USER\n"
	  "Ends USER's graces by address and by session (this host's, and with graceScope\n"
	  "fleet the fleet's in Redis), so that USER's next login asks for a code. Exit 0\n"
	  "when one was open, 1 when none was.\n",
	  cmd_revoke_grace },
	{ "backup-codes",
	  "usage: twilio-sms-otp [--config PATH] backup-codes USER [--count N]\n"
	  "       twilio-sms-otp [--config PATH] backup-codes --list [USER]\n"
	  "       twilio-sms-otp [--config PATH] backup-codes --revoke USER\n"
	  "Prints N (1 to 20, default 10) new single-use backup codes for USER, one a\n"
	  "line, and replaces USER's previous set; only their hashes are kept, in the\n"
	  "config's backupCodesFile. The module accepts one at the SMS prompt, and asks\n"
	  "for one when no SMS can be sent. --list shows how many are left (exit 1 when\n"
	  "USER has none), --revoke removes USER's codes (exit 1 when there were none).\n",
	  cmd_backup_codes },
};

int main(int argc, char **argv)
{
	const char *config_path = TSMS_DEFAULT_CONFIG;
	int i = 1;

	for (; i < argc && argv[i][0] == '-'; i++) {
		if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
			fputs(usage_main, stdout);
			return 0;
		}
		if (strcmp(argv[i], "--version") == 0) {
			puts("twilio-sms-otp " TSMS_VERSION);
			return 0;
		}
		if (strcmp(argv[i], "--config") == 0) {
			if (i + 1 == argc) {
				fprintf(stderr, "twilio-sms-otp: --config needs a PATH\n");
				return EXIT_USAGE;
			}
			config_path = argv[++i];
		} else if (strncmp(argv[i], "--config=", 9) == 0) {
			config_path = argv[i] + 9;
		} else {
			fprintf(stderr, "twilio-sms-otp: unknown option %s\n%s", argv[i],
			        usage_main);
			return EXIT_USAGE;
		}
	}
	if (i == argc) {
		fputs(usage_main, stderr);
		return EXIT_USAGE;
	}
	for (size_t c = 0; c < sizeof(commands) / sizeof(commands[0]); c++) {
		if (strcmp(argv[i], commands[c].name) != 0)
			continue;
		if (wants_help(argc - i, argv + i)) {
			fputs(commands[c].usage, stdout);
			return 0;
		}
		return commands[c].run(config_path, argc - i, argv + i);
	}
	fprintf(stderr, "twilio-sms-otp: unknown command %s\n%s", argv[i], usage_main);
	return EXIT_USAGE;
}
