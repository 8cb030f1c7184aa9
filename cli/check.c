/*
 * check.c - twilio-sms-otp check: the config, its users file, stateDir, the Twilio
 * credential and Messaging Service, the directory, Redis and the backup codes file, each
 * as the PAM module would use it; every problem is printed with its fix, in one run.
 */
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lib/account.h"
#include "lib/backup.h"
#include "lib/config.h"
#include "lib/directory.h"
#include "lib/example.h"
#include "lib/http.h"
#include "lib/state.h"
#include "lib/twilio.h"
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

/* An entry under a spelling of a user name that NSS resolves to another account
 * (SSSD, winbind): the module names a login by its account, so a login typed as
 * the account's own name would not find the entry (with nullok: no code). */
static void check_account(struct check_ctx *c, const char *where, const char *user)
{
	char buf[TSMS_ACCOUNT_NAME_MAX];
	const char *account = tsms_account_name(user, buf);

	if (strcmp(account, user) != 0)
		problem(c,
		        "%s: user \"%s\" is the account \"%s\" (getent passwd); fix: write the "
		        "entry as \"%s\", or a login typed as \"%s\" does not find it",
		        where, user, account, account, account);
}

static void check_line(void *ctx, unsigned line, const char *user, const char *phone,
                       const char *trouble)
{
	struct check_ctx *c = ctx;
	char where[1100]; /* the path has at most 1024 bytes */

	if (trouble != NULL) {
		problem(c, "usersFile %s:%u: %s; fix: write \"user +15551234567\"", c->path, line,
		        trouble);
		return;
	}
	snprintf(where, sizeof(where), "usersFile %s:%u", c->path, line);
	check_account(c, where, user);
	if (tsms_example_user(user, phone))
		problem(c,
		        "usersFile %s:%u: %s is the example's user, with a number reserved for "
		        "fiction; fix: remove the line, or enroll the user's own number",
		        c->path, line, user);
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

/* Where a service's session stack has the module's session hook (lib/grace.h). */
enum hook_place { HOOK_NONE, HOOK_BEFORE_LOGINUID, HOOK_WITHOUT_LOGINUID, HOOK_OK };

struct session_scan {
	bool loginuid; /* pam_loginuid.so seen in the session stack so far */
	enum hook_place place;
	char config[300]; /* the hook's config= ("": the default) */
};

/* The module file name of a PAM line's module path. */
static bool is_module(const char *path, const char *name)
{
	const char *base = strrchr(path, '/');

	return strcmp(base != NULL ? base + 1 : path, name) == 0;
}

/* Reads the session lines of /etc/pam.d/NAME in order, @include followed
 * (depth bounds the nesting). */
static void scan_session(const char *name, unsigned depth, struct session_scan *scan)
{
	char path[300], line[1024];
	FILE *f;

	if (depth > 3 || strchr(name, '/') != NULL)
		return;
	snprintf(path, sizeof(path), "/etc/pam.d/%s", name);
	f = fopen(path, "re");
	if (f == NULL)
		return;
	while (fgets(line, sizeof(line), f) != NULL) {
		char *save = NULL, *type = strtok_r(line, " \t\r\n", &save), *control, *module;

		if (type == NULL || type[0] == '#')
			continue;
		if (strcmp(type, "@include") == 0) {
			char *inc = strtok_r(NULL, " \t\r\n", &save);

			if (inc != NULL)
				scan_session(inc, depth + 1, scan);
			continue;
		}
		if (strcasecmp(type[0] == '-' ? type + 1 : type, "session") != 0)
			continue;
		control = strtok_r(NULL, " \t\r\n", &save);
		while (control != NULL && control[0] == '[' && strchr(control, ']') == NULL)
			control = strtok_r(NULL, " \t\r\n", &save); /* [value=action ...] */
		module = control != NULL ? strtok_r(NULL, " \t\r\n", &save) : NULL;
		if (module == NULL)
			continue;
		if (is_module(module, "pam_loginuid.so")) {
			scan->loginuid = true;
		} else if (is_module(module, "pam_twilio_sms.so") && scan->place == HOOK_NONE) {
			char *arg;

			scan->place = scan->loginuid ? HOOK_OK : HOOK_BEFORE_LOGINUID;
			while ((arg = strtok_r(NULL, " \t\r\n", &save)) != NULL) {
				if (strncmp(arg, "config=", 7) == 0)
					snprintf(scan->config, sizeof(scan->config), "%s", arg + 7);
			}
		}
	}
	fclose(f);
}

/* With sessionGraceSeconds, the session hook must follow pam_loginuid.so in a
 * login service (sshd, login) and read this config: else no session grace
 * ever opens, and sshd hands the auth phase's nonce to the user's session. */
static void check_session_hook(struct check_ctx *c, const char *config_path)
{
	static const char *const services[] = { "sshd", "login" };
	bool found = false;

	if (c->cfg->session_grace_seconds == 0)
		return;
	for (size_t i = 0; i < sizeof(services) / sizeof(services[0]); i++) {
		struct session_scan scan = { .place = HOOK_NONE };
		const char *config;

		scan_session(services[i], 0, &scan);
		config = scan.config[0] != '\0' ? scan.config : TSMS_DEFAULT_CONFIG;
		if (scan.place == HOOK_NONE)
			continue;
		found = true;
		if (scan.place == HOOK_BEFORE_LOGINUID)
			problem(c,
			        "sessionGraceSeconds: in /etc/pam.d/%s the line 'session ... "
			        "pam_twilio_sms.so' comes before pam_loginuid.so, where the login "
			        "has "
			        "no audit session yet, so no session grace opens; fix: move it "
			        "right "
			        "after 'session required pam_loginuid.so'",
			        services[i]);
		else if (strcmp(config, config_path) != 0)
			problem(c,
			        "sessionGraceSeconds: the session line of /etc/pam.d/%s reads %s, "
			        "not "
			        "this config; fix: give it the auth line's config= (config=%s)",
			        services[i], config, config_path);
		else
			printf("session hook: /etc/pam.d/%s, after pam_loginuid.so\n", services[i]);
	}
	if (!found)
		problem(c,
		        "sessionGraceSeconds is set, but neither /etc/pam.d/sshd nor "
		        "/etc/pam.d/login "
		        "has the session hook, so no session grace ever opens; fix: add 'session "
		        "optional pam_twilio_sms.so' right after 'session required "
		        "pam_loginuid.so' "
		        "in /etc/pam.d/sshd (examples/pam.d-sshd-session.snippet), or set "
		        "sessionGraceSeconds to 0");
}

/* The directory as the module will use it: connect, TLS, bind and one search
 * for an entry whose number the service account can read, within
 * ldap.timeoutSeconds. */
static void check_directory(struct check_ctx *c)
{
	char msg[TSMS_CONFIG_ERR_MAX];

	if (c->cfg->ldap == NULL)
		return;
	/* as a login: connect, TLS, bind; then one entry whose number the account can read */
	if (tsms_directory_probe(c->cfg, msg) == TSMS_OK)
		printf("%s\n", msg);
	else
		problem(c, "%s", msg);
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

/* Each problem of the config itself, as the loader finds them. */
static void config_problem(void *ctx, const char *text)
{
	problem(ctx, "%s", text);
}

/* The fix for a Twilio verdict, or NULL for none. */
static const char *twilio_fix(enum tsms_service_verdict v)
{
	switch (v) {
	case TSMS_SERVICE_BAD_CREDENTIAL:
		return "copy the Auth Token of accountSID from the Twilio Console into authToken, "
		       "or an API key of that account into apiKeySID and apiKeySecret (a key "
		       "made in another region is not valid here)";
	case TSMS_SERVICE_NOT_FOUND:
		return "copy the Sid of your Messaging Service (Messaging > Services in the Twilio "
		       "Console) into fromMessagingServiceSID; a service of another account or "
		       "region is not found either";
	case TSMS_SERVICE_FORBIDDEN:
		return "use the Auth Token, or a Standard or Main API key: this key may not read "
		       "the Messaging Service, and may not send through it either";
	case TSMS_SERVICE_UNREACHABLE:
		return "check the network, proxy and caFile (the module sends the same way), or "
		       "run check --offline to leave Twilio out";
	case TSMS_SERVICE_UNEXPECTED:
		return "try again later; if it persists, check Twilio's status page";
	case TSMS_SERVICE_OK:
	case TSMS_SERVICE_UNKNOWN_HOST:
		break;
	}
	return NULL;
}

/* The credential and the Messaging Service, proved by fetching the service
 * (GET /v1/Services/{sid}): no text is sent. */
static void check_twilio(struct check_ctx *c)
{
	const struct tsms_config *cfg = c->cfg;
	struct tsms_twilio_service res;
	enum tsms_service_verdict v;

	if (tsms_http_global_init() != 0) {
		problem(c, "Twilio: cannot initialise libcurl; fix: run check again, or check "
		           "--offline");
		return;
	}
	v = tsms_twilio_check_service(cfg, &res);
	tsms_http_global_cleanup();
	if (v == TSMS_SERVICE_OK) {
		printf("Twilio: credential (%s) and Messaging Service %s (\"%s\") verified: GET "
		       "%s\n",
		       cfg->api_key_sid != NULL ? "API key" : "auth token",
		       cfg->messaging_service_sid, res.friendly_name, res.url);
	} else if (v == TSMS_SERVICE_UNKNOWN_HOST) {
		problem(c,
		        "Twilio: not verified: %s; fix: use host (e.g. api.dublin.ie1.twilio.com) "
		        "for a Twilio region, or an apiBaseUrl that also serves /v1/Services, or "
		        "run check --offline",
		        res.error_message);
	} else if (res.http_status == 0) {
		problem(c, "Twilio: GET %s: %s; fix: %s", res.url, res.error_message,
		        twilio_fix(v));
	} else {
		static const char *const what[] = {
			[TSMS_SERVICE_BAD_CREDENTIAL] = "refused the credential",
			[TSMS_SERVICE_NOT_FOUND] = "has no such Messaging Service in the account",
			[TSMS_SERVICE_FORBIDDEN] = "refused the credential access to the Messaging "
						   "Service",
			[TSMS_SERVICE_UNEXPECTED] = "gave an unexpected answer",
		};
		problem(c, "Twilio %s (GET %s: HTTP %ld, error %ld%s%s); fix: %s", what[v], res.url,
		        res.http_status, res.error_code, res.error_message[0] != '\0' ? ": " : "",
		        res.error_message, twilio_fix(v));
	}
}

int cmd_check(const char *config_path, int argc, char **argv)
{
	struct check_ctx c = { 0 };
	char err[TSMS_CONFIG_ERR_MAX];
	struct tsms_config *cfg;
	bool offline = false;

	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--offline") != 0) {
			fprintf(stderr,
			        "twilio-sms-otp check: unknown argument %s; usage: "
			        "twilio-sms-otp check [--offline]\n",
			        argv[i]);
			return EXIT_USAGE;
		}
		offline = true;
	}
	cfg = tsms_config_load_all(config_path, config_problem, &c, err);
	if (cfg == NULL) {
		printf("Twilio: not verified: the config has problems\n");
		printf("%s: %u problem%s; the PAM module would refuse this config "
		       "(PAM_SERVICE_ERR)\n",
		       config_path, c.problems, c.problems == 1 ? "" : "s");
		return 1;
	}
	c.cfg = cfg;
	if (cfg->users_file != NULL) {
		c.path = cfg->users_file;
		if (tsms_users_file_each(cfg->users_file, false, check_line, &c, err) != TSMS_OK)
			problem(&c, "%s", err);
		check_duplicates(&c);
	}
	for (size_t i = 0; i < cfg->n_users; i++)
		check_account(&c, "users", cfg->users[i].name);
	check_state_dir(&c, cfg->state_dir);
	check_session_hook(&c, config_path);
	if (offline) {
		printf("Twilio: not verified (--offline)%s\n",
		       cfg->ldap != NULL || cfg->redis != NULL ? "; ldap and redis not tried either"
		                                               : "");
	} else {
		check_twilio(&c);
		check_directory(&c);
		check_redis(&c);
	}
	check_backup_codes(&c);
	for (size_t i = 0; i < c.n_seen; i++)
		free(c.seen[i].name);
	free(c.seen);
	if (c.problems == 0) {
		char in_file[48] = "no usersFile";

		if (cfg->users_file != NULL)
			snprintf(in_file, sizeof(in_file), "%zu in the users file", c.n_seen);
		printf("%s: OK: %zu user%s in the config, %s, %zu templates, SignIn template "
		       "\"%s\"\n",
		       config_path, cfg->n_users, cfg->n_users == 1 ? "" : "s", in_file,
		       cfg->n_templates, tsms_config_template(cfg, "SignIn")->usage);
	} else {
		printf("%s: %u problem%s\n", config_path, c.problems, c.problems == 1 ? "" : "s");
	}
	tsms_config_free(cfg);
	return c.problems == 0 ? 0 : 1;
}
