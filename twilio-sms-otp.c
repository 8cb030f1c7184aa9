/*
 * twilio-sms-otp.c - the administrator's command: check the config, send a test
 * SMS, enroll and unenroll users, list them, show and lift lockouts. Shares lib/
 * with the PAM module:
 * the same config file, checks, HTTP client and codes.
 */
#include <errno.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include "lib/backup.h"
#include "lib/config.h"
#include "lib/directory.h"
#include "lib/http.h"
#include "lib/lookup.h"
#include "lib/otp.h"
#include "lib/phone.h"
#include "lib/state.h"
#include "lib/template.h"
#include "lib/twilio.h"
#include "lib/users.h"

#define EXIT_USAGE 2

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
	"  backup-codes USER          print a new set of single-use backup codes for USER\n"
	"                             (--count N; --list [USER]; --revoke USER)\n"
	"\n"
	"Options:\n"
	"  --config PATH              config file (default " TSMS_DEFAULT_CONFIG ")\n"
	"  --help                     this text; COMMAND --help describes a command\n";

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

static struct tsms_config *load(const char *path)
{
	char err[TSMS_CONFIG_ERR_MAX];
	struct tsms_config *cfg = tsms_config_load(path, err);

	if (cfg == NULL)
		fprintf(stderr, "twilio-sms-otp: %s\n", err);
	return cfg;
}

/* ---- check */

struct entry {
	char *name;
	unsigned line;
};

struct check_ctx {
	const struct tsms_config *cfg;
	const char *path;
	unsigned problems;
	struct entry *seen; /* users file entries, sorted afterwards to find duplicates */
	size_t n_seen, cap;
	bool nomem;
};

static void problem(struct check_ctx *c, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static void problem(struct check_ctx *c, const char *fmt, ...)
{
	va_list ap;

	fputs("problem: ", stdout);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	fputc('\n', stdout);
	c->problems++;
}

static void check_line(void *ctx, unsigned line, const char *user, const char *phone,
                       const char *trouble)
{
	struct check_ctx *c = ctx;

	if (trouble != NULL) {
		problem(c, "usersFile %s:%u: %s; fix: write \"user +15551234567\"", c->path, line,
		        trouble);
		return;
	}
	if (!tsms_config_country_allowed(c->cfg, phone))
		problem(c,
		        "usersFile %s:%u: %s's number is outside allowedCountryCodes and will "
		        "never "
		        "be texted; fix: add its country code or change the number",
		        c->path, line, user);
	if (tsms_config_phone(c->cfg, user) != NULL)
		problem(c,
		        "usersFile %s:%u: user \"%s\" is also in the config's users; fix: keep one",
		        c->path, line, user);
	if (c->n_seen == c->cap) {
		size_t cap = c->cap != 0 ? c->cap * 2 : 256;
		struct entry *grown = realloc(c->seen, cap * sizeof(*grown));

		if (grown == NULL) {
			c->nomem = true;
			return;
		}
		c->seen = grown;
		c->cap = cap;
	}
	c->seen[c->n_seen].name = strdup(user);
	c->seen[c->n_seen].line = line;
	if (c->seen[c->n_seen].name == NULL)
		c->nomem = true;
	else
		c->n_seen++;
}

static int cmp_entries(const void *a, const void *b)
{
	const struct entry *x = a, *y = b;
	int d = strcmp(x->name, y->name);

	return d != 0 ? d : (x->line > y->line) - (x->line < y->line);
}

static void check_duplicates(struct check_ctx *c)
{
	if (c->n_seen > 1)
		qsort(c->seen, c->n_seen, sizeof(*c->seen), cmp_entries);
	for (size_t i = 1; i < c->n_seen; i++) {
		if (strcmp(c->seen[i - 1].name, c->seen[i].name) == 0)
			problem(c, "usersFile %s: user \"%s\" is on lines %u and %u; fix: keep one",
			        c->path, c->seen[i].name, c->seen[i - 1].line, c->seen[i].line);
	}
	if (c->nomem)
		problem(c, "out of memory while checking %s", c->path);
}

static void check_state_dir(struct check_ctx *c, const char *dir)
{
	struct stat st;

	if (lstat(dir, &st) != 0) {
		char parent[300];
		char *slash;

		snprintf(parent, sizeof(parent), "%s", dir);
		slash = strrchr(parent, '/');
		if (slash != NULL && slash != parent)
			*slash = '\0';
		if (stat(parent, &st) != 0 || !S_ISDIR(st.st_mode))
			problem(c,
			        "stateDir %s: missing, and so is its parent %s; fix: mkdir -p %s",
			        dir, parent, parent);
		return;
	}
	if (!S_ISDIR(st.st_mode) || st.st_uid != 0 || (st.st_mode & 077) != 0)
		problem(c,
		        "stateDir %s: must be a directory owned by root, mode 0700; fix: chown "
		        "root:root %s && chmod 700 %s",
		        dir, dir, dir);
}

/* The directory as the module will use it: connect, TLS, bind and one search
 * (for a name no entry has), within ldap.timeoutSeconds. */
static void check_directory(struct check_ctx *c)
{
	struct tsms_number number;
	char err[TSMS_CONFIG_ERR_MAX];
	enum tsms_err e;

	if (c->cfg->ldap == NULL)
		return;
	e = tsms_directory_find(c->cfg, "twilio-sms-otp-check", &number, err);
	if (e == TSMS_OK)
		printf("ldap: connected to %s, bound %s and searched %s: OK\n", c->cfg->ldap->uri,
		       c->cfg->ldap->bind_dn != NULL ? "as ldap.bindDN" : "anonymously",
		       c->cfg->ldap->base_dn);
	else if (e == TSMS_ERR_UNAVAILABLE)
		problem(c,
		        "%s; fix: check ldap.uri, the server's certificate against ldap.caFile "
		        "(and its host name), ldap.bindDN and ldap.bindPassword",
		        err);
	else
		problem(c, "%s", err);
}

/* Redis as the module will use it: connect, AUTH, SELECT, load and run the script. */
static void check_redis(struct check_ctx *c)
{
	char msg[TSMS_STATE_ERR_MAX];
	struct tsms_state *st;

	if (c->cfg->redis == NULL)
		return;
	st = tsms_state_open(c->cfg, NULL);
	if (tsms_state_check(st, msg) == TSMS_OK)
		printf("%s\n", msg);
	else
		problem(c,
		        "%s; fix: check redis.url, redis.username and redis.password, and that the "
		        "ACL user may run EVALSHA and the script's commands (the user line of the "
		        "shipped Redis snippet; +sadd since 0.4.0) on keys under redis.keyPrefix "
		        "(logins would fall back to this host's stateDir)",
		        msg);
	tsms_state_close(st);
}

static void count_user(void *ctx, const char *user, unsigned left)
{
	(void)user;
	if (left > 0)
		++*(unsigned *)ctx;
}

/* The backup codes file as the module reads it: root's, 0600, well formed. */
static void check_backup_codes(struct check_ctx *c)
{
	char err[TSMS_CONFIG_ERR_MAX];
	const char *path = c->cfg->backup_codes_file;
	unsigned users = 0;

	if (path == NULL)
		return;
	if (tsms_backup_each(c->cfg, count_user, &users, err) != TSMS_OK)
		problem(c, "%s", err);
	else if (access(path, F_OK) != 0)
		printf("backupCodesFile %s: none yet (twilio-sms-otp backup-codes USER makes a "
		       "set)\n",
		       path);
	else
		printf("backupCodesFile %s: %u user%s with codes\n", path, users,
		       users == 1 ? "" : "s");
}

static int cmd_check(const char *config_path, int argc, char **argv)
{
	struct check_ctx c = { 0 };
	char err[TSMS_CONFIG_ERR_MAX];
	struct tsms_config *cfg;

	(void)argv;
	if (argc > 1) {
		fprintf(stderr, "twilio-sms-otp check: takes no arguments\n");
		return EXIT_USAGE;
	}
	cfg = tsms_config_load(config_path, err);
	if (cfg == NULL) {
		printf("problem: %s\n", err);
		printf("%s: the PAM module would refuse this config (PAM_SERVICE_ERR)\n",
		       config_path);
		return 1;
	}
	c.cfg = cfg;
	if (cfg->users_file != NULL) {
		c.path = cfg->users_file;
		if (tsms_users_file_each(cfg->users_file, false, check_line, &c, err) != TSMS_OK)
			problem(&c, "%s", err);
		check_duplicates(&c);
	}
	check_state_dir(&c, cfg->state_dir);
	check_directory(&c);
	check_redis(&c);
	check_backup_codes(&c);
	for (size_t i = 0; i < c.n_seen; i++)
		free(c.seen[i].name);
	free(c.seen);
	if (c.problems == 0)
		printf("%s: OK: %zu users in the config, %zu in the users file, %zu templates, "
		       "SignIn template \"%s\"\n",
		       config_path, cfg->n_users, c.n_seen, cfg->n_templates,
		       tsms_config_template(cfg, "SignIn")->usage);
	else
		printf("%s: %u problem%s\n", config_path, c.problems, c.problems == 1 ? "" : "s");
	tsms_config_free(cfg);
	return c.problems == 0 ? 0 : 1;
}

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
	if (tsms_phone_normalize(number, phone))
		return true;
	fprintf(stderr,
	        "twilio-sms-otp: \"%s\" is not an E.164 number; write it as "
	        "+<country code><number>, e.g. +15551234567\n",
	        number);
	return false;
}

static int cmd_test(const char *config_path, int argc, char **argv)
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
	cfg = load(config_path);
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

static int cmd_enroll(const char *config_path, int argc, char **argv)
{
	static const struct option opts[] = { { "no-verify", no_argument, NULL, 'n' },
		                              { NULL, 0, NULL, 0 } };
	char phone[TSMS_PHONE_MAX], masked[TSMS_PHONE_MASKED_MAX], prompt[96];
	char err[TSMS_CONFIG_ERR_MAX];
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
	if (!normalize_arg(argv[optind + 1], phone))
		return EXIT_USAGE;
	cfg = load(config_path);
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

static int cmd_unenroll(const char *config_path, int argc, char **argv)
{
	char err[TSMS_CONFIG_ERR_MAX];
	struct tsms_config *cfg;
	bool changed;
	int rc = 1;

	if (argc != 2 || argv[1][0] == '-') {
		fprintf(stderr, "usage: twilio-sms-otp unenroll USER\n");
		return EXIT_USAGE;
	}
	cfg = load(config_path);
	if (cfg == NULL)
		return 1;
	if (cfg->users_file == NULL) {
		fprintf(stderr, "twilio-sms-otp: the config has no usersFile\n");
	} else if (tsms_users_file_update(cfg->users_file, argv[1], NULL, &changed, err) !=
	           TSMS_OK) {
		fprintf(stderr, "twilio-sms-otp: %s\n", err);
	} else if (!changed) {
		fprintf(stderr, "twilio-sms-otp: %s is not in %s%s\n", argv[1], cfg->users_file,
		        tsms_config_phone(cfg, argv[1]) != NULL
		                ? " (it is in the config's users object: edit the config)"
		                : "");
	} else {
		printf("unenrolled %s from %s\n", argv[1], cfg->users_file);
		rc = 0;
	}
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

static int cmd_list(const char *config_path, int argc, char **argv)
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
	cfg = load(config_path);
	if (cfg == NULL)
		return 1;
	for (size_t i = 0; i < cfg->n_users; i++)
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

/* ---- status, unlock: faillock's view of the limits, through the module's own
 * state code (same lock, same name mapping: no path is built from USER) */

static void print_status(const struct tsms_config *cfg, const char *user,
                         const struct tsms_state_status *st)
{
	char masked[TSMS_PHONE_MASKED_MAX], err[TSMS_CONFIG_ERR_MAX];
	struct tsms_number number;
	char until[64] = "";
	struct tm tm;
	time_t t;

	printf("user:          %s\nphone:         ", user);
	if (tsms_lookup(cfg, user, &number, err) != TSMS_OK) {
		printf("unknown: %s\n", err);
	} else if (number.source == TSMS_SOURCE_NONE) {
		printf("none (a decoy challenge: no SMS is sent)\n");
	} else {
		tsms_phone_mask(number.phone, masked);
		printf("%s (%s)\n", masked, tsms_source_name(number.source));
	}
	printf("%s%s\n", st->shared ? "state:         redis key " : "state file:    ", st->where);
	printf("sends:         %u of %u in the window", st->sends, cfg->send_limit);
	if (st->window_left > 0)
		printf(", which ends in %lld s", st->window_left);
	printf("\ncooldown:      ");
	if (st->cooldown_left > 0)
		printf("%lld s left\n", st->cooldown_left);
	else
		printf("none\n");
	printf("wrong codes:   %u in a row (lockout at %u)\nlocked:        ", st->failures,
	       cfg->lockout_threshold);
	if (st->locked_until == 0) {
		printf("no\n");
		return;
	}
	t = (time_t)st->locked_until;
	if (gmtime_r(&t, &tm) != NULL)
		strftime(until, sizeof(until), "%Y-%m-%d %H:%M:%S UTC", &tm);
	printf("until %s (%lld s)\n", until, st->locked_left);
}

/* The user argument of status and unlock, and the config; NULL after a usage
 * error or an unusable config (rc says which). */
static struct tsms_config *user_command(const char *config_path, int argc, char **argv,
                                        const char *name, int *rc)
{
	struct tsms_config *cfg;

	if (argc != 2 || argv[1][0] == '-' || argv[1][0] == '\0') {
		fprintf(stderr, "usage: twilio-sms-otp %s USER\n", name);
		*rc = EXIT_USAGE;
		return NULL;
	}
	cfg = load(config_path);
	*rc = 1;
	return cfg;
}

static int cmd_lookup(const char *config_path, int argc, char **argv)
{
	char masked[TSMS_PHONE_MASKED_MAX], err[TSMS_CONFIG_ERR_MAX];
	struct tsms_number number;
	struct tsms_config *cfg;
	enum tsms_err e;
	int rc;

	cfg = user_command(config_path, argc, argv, "lookup", &rc);
	if (cfg == NULL)
		return rc;
	e = tsms_lookup(cfg, argv[1], &number, err);
	if (e != TSMS_OK) {
		fprintf(stderr, "twilio-sms-otp: %s\n", err);
	} else if (number.source == TSMS_SOURCE_NONE) {
		printf("%s has no number (users, usersFile%s): the module runs a decoy challenge, "
		       "or skips the user with nullok\n",
		       argv[1], cfg->ldap != NULL ? ", ldap" : "");
	} else {
		tsms_phone_mask(number.phone, masked);
		printf("%s: %s from %s%s%s\n", argv[1], masked, tsms_source_name(number.source),
		       number.where[0] != '\0' ? " " : "", number.where);
		rc = 0;
	}
	tsms_config_free(cfg);
	return rc;
}

/* Where status and unlock looked, for "has no state in ...". */
static const char *store_name(const struct tsms_config *cfg, char *buf, size_t len)
{
	if (cfg->redis == NULL)
		return cfg->state_dir;
	snprintf(buf, len, "redis %s", cfg->redis->url);
	return buf;
}

/* status's line on USER's backup codes, when the config has a file for them. */
static void print_backup_left(const struct tsms_config *cfg, const char *user)
{
	char err[TSMS_CONFIG_ERR_MAX];
	unsigned left;

	if (cfg->backup_codes_file == NULL)
		return;
	if (tsms_backup_count(cfg, user, &left, err) != TSMS_OK)
		printf("backup codes:  unknown: %s\n", err);
	else
		printf("backup codes:  %u left\n", left);
}

static int cmd_status(const char *config_path, int argc, char **argv)
{
	char store[TSMS_STATE_ERR_MAX];
	struct tsms_state *state;
	struct tsms_state_status st;
	char err[TSMS_STATE_ERR_MAX];
	struct tsms_config *cfg;
	int rc;

	cfg = user_command(config_path, argc, argv, "status", &rc);
	if (cfg == NULL)
		return rc;
	state = tsms_state_open(cfg, NULL);
	if (tsms_state_status(state, argv[1], time(NULL), &st, err) != TSMS_OK) {
		fprintf(stderr, "twilio-sms-otp: %s\n", err);
	} else if (!st.exists) {
		printf("%s has no state in %s: no SMS sent and no wrong code since it was last "
		       "cleared\n",
		       argv[1], store_name(cfg, store, sizeof(store)));
	} else {
		print_status(cfg, argv[1], &st);
		rc = 0;
	}
	if (st.fallback[0] != '\0') {
		printf("this host:     %s (logins while Redis was unavailable; unlock clears it "
		       "too)\n",
		       st.fallback);
		rc = 0;
	}
	print_backup_left(cfg, argv[1]);
	tsms_state_close(state);
	tsms_config_free(cfg);
	return rc;
}

static int cmd_unlock(const char *config_path, int argc, char **argv)
{
	char store[TSMS_STATE_ERR_MAX];
	struct tsms_state *state;
	struct tsms_state_status before;
	char err[TSMS_STATE_ERR_MAX];
	struct tsms_config *cfg;
	int rc;

	cfg = user_command(config_path, argc, argv, "unlock", &rc);
	if (cfg == NULL)
		return rc;
	state = tsms_state_open(cfg, NULL);
	if (tsms_state_unlock(state, argv[1], time(NULL), &before, err) != TSMS_OK) {
		fprintf(stderr, "twilio-sms-otp: %s\n", err);
		if (before.fallback[0] != '\0')
			printf("cleared this host's fallback state file %s only\n",
			       before.fallback);
	} else {
		if (!before.exists)
			printf("%s has no state in %s: nothing to unlock\n", argv[1],
			       store_name(cfg, store, sizeof(store)));
		else
			printf("unlocked %s: %u wrong code%s cleared, %s; sends kept (%u in the "
			       "window)\n",
			       argv[1], before.failures, before.failures == 1 ? "" : "s",
			       before.locked_until != 0 ? "lockout lifted" : "was not locked",
			       before.sends);
		if (before.fallback[0] != '\0')
			printf("also cleared this host's fallback state file %s\n",
			       before.fallback);
		rc = before.exists || before.fallback[0] != '\0' ? 0 : 1;
	}
	tsms_state_close(state);
	tsms_config_free(cfg);
	return rc;
}

/* ---- backup codes */

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

static int cmd_backup_codes(const char *config_path, int argc, char **argv)
{
	static const struct option opts[] = { { "count", required_argument, NULL, 'c' },
		                              { "list", no_argument, NULL, 'l' },
		                              { "revoke", no_argument, NULL, 'r' },
		                              { NULL, 0, NULL, 0 } };
	static const char usage[] =
		"usage: twilio-sms-otp backup-codes USER [--count N] | --list [USER] | "
		"--revoke USER\n";
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
	cfg = load(config_path);
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

static const struct command commands[] = {
	{ "check",
	  "usage: twilio-sms-otp [--config PATH] check\n"
	  "Validates the config, its users file and stateDir as the PAM module would;\n"
	  "prints each problem with its fix. Exit 0 only when the module accepts it.\n",
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
	  "and this host's fallback file when it has one. Exit 0, or 1 when USER has no\n"
	  "state.\n",
	  cmd_status },
	{ "unlock",
	  "usage: twilio-sms-otp [--config PATH] unlock USER\n"
	  "Clears USER's wrong-code count and lockout under the module's lock (in Redis\n"
	  "and this host's fallback file, with redis); the send counts stay. Exit 0 when\n"
	  "done, 1 when USER has no state.\n",
	  cmd_unlock },
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
