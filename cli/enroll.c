/*
 * enroll.c - twilio-sms-otp's commands on users' numbers: test (a code to a number),
 * enroll and unenroll (the usersFile), list and lookup. test is here because it sends
 * the code as enroll does, through the same send_code().
 */
#include <getopt.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include "lib/account.h"
#include "lib/config.h"
#include "lib/http.h"
#include "lib/lookup.h"
#include "lib/otp.h"
#include "lib/phone.h"
#include "lib/template.h"
#include "lib/twilio.h"
#include "lib/users.h"

#include "cli.h"

/* ---- sending */

/* Sends a fresh code to phone with the template of usage (Generic fallback).
 * Returns 0 and fills code and res, or 1 after saying why on stderr. */
static int send_code(const struct tsms_config *cfg, const char *usage, const char *phone,
                     struct tsms_code *code, struct tsms_twilio_result *res)
{
	const struct tsms_template *tpl = tsms_config_template(cfg, usage);
	enum tsms_err e;
	char *body;

	if (tpl == NULL || !tsms_template_has_placeholder(tpl->content)) {
		fprintf(stderr,
		        "twilio-sms-otp: no %s or Generic template with {{code}}; fix: add "
		        "{\"usageType\": \"%s\", \"content\": \"... {{code}} ...\"} to templates\n",
		        usage, usage);
		return 1;
	}
	if (tsms_crypto_init() != 0 || tsms_otp_generate(code, cfg->code_length) != 0 ||
	    tsms_http_global_init() != 0) {
		fprintf(stderr, "twilio-sms-otp: cannot initialise libsodium or libcurl\n");
		return 1;
	}
	body = tsms_template_render(tpl->content, code->digits, NULL);
	if (body == NULL) {
		tsms_http_global_cleanup();
		fprintf(stderr, "twilio-sms-otp: out of memory\n");
		return 1;
	}
	if (tsms_utf8_chars(body) > TSMS_BODY_MAX_CHARS) {
		tsms_free_secret(body);
		tsms_http_global_cleanup();
		fprintf(stderr, "twilio-sms-otp: the %s template is longer than %d characters\n",
		        tpl->usage, TSMS_BODY_MAX_CHARS);
		return 1;
	}
	e = tsms_twilio_send(cfg, phone, body, res);
	tsms_free_secret(body);
	tsms_http_global_cleanup();
	if (e == TSMS_OK)
		return 0;
	if (res->error_code != 0) {
		const char *name = tsms_twilio_code_name(res->error_code);
		fprintf(stderr, "twilio-sms-otp: %s: Twilio error %ld%s%s: %s (HTTP %ld)\n",
		        res->reason, res->error_code, name != NULL ? " " : "",
		        name != NULL ? name : "", res->error_message, res->http_status);
	} else if (res->http_status != 0) {
		fprintf(stderr, "twilio-sms-otp: %s: HTTP %ld%s%s\n", res->reason, res->http_status,
		        res->error_message[0] != '\0' ? ": " : "", res->error_message);
	} else {
		fprintf(stderr, "twilio-sms-otp: %s: %s\n", res->reason, res->error_message);
	}
	return 1;
}

static bool normalize_arg(const char *number, char phone[TSMS_PHONE_MAX])
{
	const char *why;

	if (tsms_phone_parse(number, strlen(number), phone, &why))
		return true;
	fprintf(stderr, "twilio-sms-otp: the number \"%s\" %s; fix: %s\n", number, why,
	        TSMS_PHONE_FIX);
	return false;
}

int cmd_test(const char *config_path, int argc, char **argv)
{
	struct tsms_twilio_result res;
	struct tsms_code code = { 0 };
	char phone[TSMS_PHONE_MAX];
	struct tsms_config *cfg;
	int rc;

	if (argc != 2 || (argv[1][0] == '-' && argv[1][1] == '-')) {
		fprintf(stderr, "usage: twilio-sms-otp test NUMBER\n");
		return EXIT_USAGE;
	}
	if (!normalize_arg(argv[1], phone))
		return EXIT_USAGE;
	cfg = cli_load(config_path);
	if (cfg == NULL)
		return 1;
	rc = send_code(cfg, "Test", phone, &code, &res);
	tsms_otp_wipe(&code);
	if (rc == 0)
		printf("sent to %s: sid %s, status %s\n", phone, res.sid,
		       res.status[0] != '\0' ? res.status : "-");
	tsms_config_free(cfg);
	return rc;
}

/* ---- enroll */

/* Reads one line with echo off from the terminal, or from standard input when
 * there is none. Returns a new string (wipe it) or NULL at end of input. */
static char *ask(const char *prompt)
{
	FILE *in = fopen("/dev/tty", "r+");
	struct termios saved, quiet;
	bool restore = false;
	char *line = NULL;
	size_t cap = 0;
	ssize_t n;

	if (in == NULL)
		in = stdin;
	fprintf(in == stdin ? stderr : in, "%s", prompt);
	fflush(in == stdin ? stderr : in);
	if (isatty(fileno(in)) && tcgetattr(fileno(in), &saved) == 0) {
		quiet = saved;
		quiet.c_lflag &= ~(tcflag_t)ECHO;
		restore = tcsetattr(fileno(in), TCSAFLUSH, &quiet) == 0;
	}
	n = getline(&line, &cap, in);
	if (restore) {
		tcsetattr(fileno(in), TCSAFLUSH, &saved);
		fputc('\n', in);
	}
	if (in != stdin)
		fclose(in);
	if (n < 0) {
		free(line);
		return NULL;
	}
	return line;
}

int cmd_enroll(const char *config_path, int argc, char **argv)
{
	static const struct option opts[] = { { "no-verify", no_argument, NULL, 'n' },
		                              { NULL, 0, NULL, 0 } };
	char phone[TSMS_PHONE_MAX], masked[TSMS_PHONE_MASKED_MAX], prompt[96];
	char err[TSMS_CONFIG_ERR_MAX], account[TSMS_ACCOUNT_NAME_MAX];
	struct tsms_twilio_result res;
	struct tsms_code code = { 0 };
	struct tsms_config *cfg = NULL;
	bool verify = true, changed, right = false;
	const char *user;
	int opt, rc = 1;

	optind = 1;
	while ((opt = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		if (opt != 'n')
			return EXIT_USAGE;
		verify = false;
	}
	if (argc - optind != 2) {
		fprintf(stderr, "usage: twilio-sms-otp enroll [--no-verify] USER NUMBER\n");
		return EXIT_USAGE;
	}
	user = argv[optind];
	if (!tsms_users_valid_name(user)) {
		fprintf(stderr,
		        "twilio-sms-otp: \"%s\" cannot be a user name (no spaces or "
		        "control characters)\n",
		        user);
		return EXIT_USAGE;
	}
	user = tsms_account_name(user, account); /* the name the module asks for first */
	if (!normalize_arg(argv[optind + 1], phone))
		return EXIT_USAGE;
	cfg = cli_load(config_path);
	if (cfg == NULL)
		return 1;
	if (cfg->users_file == NULL) {
		fprintf(stderr,
		        "twilio-sms-otp: the config has no usersFile; fix: add \"usersFile\": "
		        "\"/etc/security/pam_twilio_sms.users\" to %s\n",
		        config_path);
		goto out;
	}
	if (tsms_config_phone(cfg, user) != NULL) {
		fprintf(stderr,
		        "twilio-sms-otp: %s is in the config's users object; fix: remove it "
		        "there first (a user may be in one place only)\n",
		        user);
		goto out;
	}
	if (!tsms_config_country_allowed(cfg, phone)) {
		fprintf(stderr,
		        "twilio-sms-otp: %s is outside allowedCountryCodes: the module would "
		        "never text it; fix: add its country code or use another number\n",
		        phone);
		goto out;
	}
	if (verify) {
		time_t deadline;

		if (send_code(cfg, "Register", phone, &code, &res) != 0)
			goto out;
		deadline = time(NULL) + cfg->code_ttl_seconds;
		tsms_phone_mask(phone, masked);
		for (unsigned i = 0; i < cfg->max_attempts && !right; i++) {
			char *answer;

			snprintf(prompt, sizeof(prompt),
			         "%sCode sent to %s: ", i > 0 ? "Wrong code. " : "", masked);
			answer = ask(prompt);
			if (answer == NULL)
				break;
			right = tsms_otp_matches(&code, answer) && time(NULL) <= deadline;
			tsms_free_secret(answer);
			if (time(NULL) > deadline) {
				fprintf(stderr,
				        "twilio-sms-otp: the code expired (codeTtlSeconds=%u)\n",
				        cfg->code_ttl_seconds);
				break;
			}
		}
		tsms_otp_wipe(&code);
		if (!right) {
			fprintf(stderr, "twilio-sms-otp: not verified; %s was not enrolled\n",
			        user);
			goto out;
		}
	}
	if (tsms_users_file_update(cfg->users_file, user, phone, &changed, err) != TSMS_OK) {
		fprintf(stderr, "twilio-sms-otp: %s\n", err);
		goto out;
	}
	printf("%s %s %s in %s\n", changed ? "enrolled" : "already enrolled:", user, phone,
	       cfg->users_file);
	rc = 0;
out:
	tsms_config_free(cfg);
	return rc;
}

int cmd_unenroll(const char *config_path, int argc, char **argv)
{
	char err[TSMS_CONFIG_ERR_MAX], account[TSMS_ACCOUNT_NAME_MAX];
	const char *user;
	struct tsms_config *cfg;
	enum tsms_err e;
	bool changed;
	int rc = 1;

	if (argc != 2 || argv[1][0] == '-') {
		fprintf(stderr, "usage: twilio-sms-otp unenroll USER\n");
		return EXIT_USAGE;
	}
	cfg = cli_load(config_path);
	if (cfg == NULL)
		return 1;
	if (cfg->users_file == NULL) {
		fprintf(stderr, "twilio-sms-otp: the config has no usersFile\n");
		goto out;
	}
	/* the account's line, else one under the spelling given (the module asks both) */
	user = tsms_account_name(argv[1], account);
	e = tsms_users_file_update(cfg->users_file, user, NULL, &changed, err);
	if (e == TSMS_OK && !changed && strcmp(user, argv[1]) != 0) {
		user = argv[1];
		e = tsms_users_file_update(cfg->users_file, user, NULL, &changed, err);
	}
	if (e != TSMS_OK) {
		fprintf(stderr, "twilio-sms-otp: %s\n", err);
	} else if (!changed) {
		fprintf(stderr, "twilio-sms-otp: %s is not in %s%s\n", user, cfg->users_file,
		        tsms_config_phone(cfg, user) != NULL
		                ? " (it is in the config's users object: edit the config)"
		                : "");
	} else {
		printf("unenrolled %s from %s\n", user, cfg->users_file);
		rc = 0;
	}
out:
	tsms_config_free(cfg);
	return rc;
}

/* ---- list */

struct list_ctx {
	bool show;
	unsigned bad;
};

static void print_entry(bool show, const char *user, const char *phone, const char *source)
{
	char masked[TSMS_PHONE_MASKED_MAX];

	tsms_phone_mask(phone, masked);
	printf("%-24s %-16s %s\n", user, show ? phone : masked, source);
}

static void list_line(void *ctx, unsigned line, const char *user, const char *phone,
                      const char *trouble)
{
	struct list_ctx *l = ctx;

	(void)line;
	if (trouble != NULL)
		l->bad++;
	else
		print_entry(l->show, user, phone, "usersFile");
}

int cmd_list(const char *config_path, int argc, char **argv)
{
	static const struct option opts[] = { { "show", no_argument, NULL, 's' },
		                              { NULL, 0, NULL, 0 } };
	struct list_ctx l = { 0 };
	char err[TSMS_CONFIG_ERR_MAX];
	struct tsms_config *cfg;
	int opt, rc = 0;

	optind = 1;
	while ((opt = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		if (opt != 's')
			return EXIT_USAGE;
		l.show = true;
	}
	if (optind != argc) {
		fprintf(stderr, "usage: twilio-sms-otp list [--show]\n");
		return EXIT_USAGE;
	}
	cfg = cli_load(config_path);
	if (cfg == NULL)
		return 1;
	for (size_t i = 0; i < cfg->n_users; i++)
		if (cfg->users[i].problem != NULL)
			fprintf(stderr, "twilio-sms-otp: %s\n", cfg->users[i].problem);
		else
			print_entry(l.show, cfg->users[i].name, cfg->users[i].phone, "config");
	if (cfg->users_file != NULL &&
	    tsms_users_file_each(cfg->users_file, true, list_line, &l, err) != TSMS_OK) {
		fprintf(stderr, "twilio-sms-otp: %s\n", err);
		rc = 1;
	}
	if (l.bad > 0)
		fprintf(stderr,
		        "twilio-sms-otp: %u malformed line%s in the users file; run "
		        "twilio-sms-otp check\n",
		        l.bad, l.bad == 1 ? "" : "s");
	tsms_config_free(cfg);
	return rc;
}

int cmd_lookup(const char *config_path, int argc, char **argv)
{
	char masked[TSMS_PHONE_MASKED_MAX], err[TSMS_CONFIG_ERR_MAX];
	char account[TSMS_ACCOUNT_NAME_MAX];
	struct tsms_number number;
	struct tsms_config *cfg;
	const char *user;
	enum tsms_err e;
	int rc;

	cfg = cli_user_command(config_path, argc, argv, "lookup", &rc, account, &user);
	if (cfg == NULL)
		return rc;
	e = tsms_lookup_account(cfg, user, argv[1], &number, err);
	if (e != TSMS_OK) {
		fprintf(stderr, "twilio-sms-otp: %s\n", err);
	} else if (number.source == TSMS_SOURCE_NONE) {
		printf("%s has no number (users, usersFile%s): the module runs a decoy challenge, "
		       "or skips the user with nullok\n",
		       user, cfg->ldap != NULL ? ", ldap" : "");
	} else {
		tsms_phone_mask(number.phone, masked);
		printf("%s: %s from %s%s%s\n", user, masked, tsms_source_name(number.source),
		       number.where[0] != '\0' ? " " : "", number.where);
		rc = 0;
	}
	tsms_config_free(cfg);
	return rc;
}
