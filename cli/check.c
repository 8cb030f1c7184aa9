/*
 * check.c - twilio-sms-otp check: the config, its users file, stateDir, the directory,
 * Redis and the backup codes file, each as the PAM module would use it; every problem
 * is printed with its fix.
 */
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lib/backup.h"
#include "lib/config.h"
#include "lib/directory.h"
#include "lib/state.h"
#include "lib/users.h"

#include "cli.h"

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

int cmd_check(const char *config_path, int argc, char **argv)
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
