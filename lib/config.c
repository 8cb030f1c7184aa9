/* config.c - the JSON config file: permissions, parsing, validation (cJSON for config)
 *
 * This file reads the file and the top-level options (numbers, failMode, stateDir,
 * the users, usersFile, backupCodesFile, allowedCountryCodes). The sections of their own:
 * config_twilio.c (credentials, templates, where requests go), config_ldap.c
 * (the directory), config_redis.c (the shared limits). Below them all, the readers
 * they share: config_read.c. */
#include "config.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config_parse.h"
#include "config_read.h"
#include "example.h"
#include "otp.h"
#include "rootfile.h"

/* Numeric options: one table, one setter (tsms_config_set_unsigned), range checked. */
static const struct tsms_number_option number_options[] = {
	{ "codeLength", offsetof(struct tsms_config, code_length), 6, TSMS_CODE_MIN,
	  TSMS_CODE_MAX },
	{ "codeTtlSeconds", offsetof(struct tsms_config, code_ttl_seconds), 300, 1, 3600 },
	{ "maxAttempts", offsetof(struct tsms_config, max_attempts), 3, 1, 10 },
	{ "timeoutSeconds", offsetof(struct tsms_config, timeout_seconds), 10, 1, 60 },
	{ "maxRetries", offsetof(struct tsms_config, max_retries), 2, 0, 5 },
	{ "sendLimit", offsetof(struct tsms_config, send_limit), 5, 1, 1000 },
	{ "sendWindowSeconds", offsetof(struct tsms_config, send_window_seconds), 900, 1, 86400 },
	{ "resendCooldownSeconds", offsetof(struct tsms_config, resend_cooldown_seconds), 30, 0,
	  3600 },
	{ "globalSendLimit", offsetof(struct tsms_config, global_send_limit), 0, 0, 1000000 },
	{ "maxResends", offsetof(struct tsms_config, max_resends), 1, 0, 5 },
	{ "lockoutThreshold", offsetof(struct tsms_config, lockout_threshold), 10, 1, 1000 },
	{ "lockoutSeconds", offsetof(struct tsms_config, lockout_seconds), 900, 1, 86400 },
	{ "gracePeriodSeconds", offsetof(struct tsms_config, grace_period_seconds), 0, 0,
	  TSMS_GRACE_SECONDS_MAX },
	{ "sessionGraceSeconds", offsetof(struct tsms_config, session_grace_seconds), 0, 0,
	  TSMS_GRACE_SECONDS_MAX },
};

static bool set_number(struct tsms_config *cfg, const struct tsms_number_option *opt,
                       const cJSON *item, char err[TSMS_CONFIG_ERR_MAX])
{
	return tsms_config_set_unsigned((unsigned *)((char *)cfg + opt->offset), opt, item, err);
}

static bool known_key(const char *key)
{
	static const char *const keys[] = {
		"accountSID",
		"authToken",
		"fromMessagingServiceSID",
		"templates",
		"disableRiskCheck",
		"users",
		"apiBaseUrl",
		"caFile",
		"failMode",
		"stateDir",
		"allowedCountryCodes",
		"usersFile",
		"backupCodesFile",
		"proxy",
		"host",
		"apiKeySID",
		"apiKeySecret",
		"ldap",
		"redis",
		"graceScope",
	};

	for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
		if (strcmp(key, keys[i]) == 0)
			return true;
	}
	for (size_t i = 0; i < sizeof(number_options) / sizeof(number_options[0]); i++) {
		if (strcmp(key, number_options[i].key) == 0)
			return true;
	}
	return false;
}

static bool parse_users(struct tsms_config *cfg, const cJSON *root, char err[TSMS_CONFIG_ERR_MAX])
{
	const cJSON *users = cJSON_GetObjectItemCaseSensitive(root, "users");
	const cJSON *item;
	char q[64];

	if (users == NULL)
		return true;
	if (!cJSON_IsObject(users)) {
		fail(err,
		     "users is not an object; fix: write \"users\": {\"alice\": \"+15551234567\"}");
		return false;
	}
	if (!tsms_config_unique_keys(users, "users", err))
		return false;
	cfg->users = calloc((size_t)cJSON_GetArraySize(users) + 1, sizeof(*cfg->users));
	if (cfg->users == NULL) {
		fail(err, "out of memory");
		return false;
	}
	cJSON_ArrayForEach(item, users)
	{
		struct tsms_user *u = &cfg->users[cfg->n_users];
		const char *why = "is not a string";
		char msg[TSMS_CONFIG_ERR_MAX];

		if (item->string[0] == '\0' || tsms_config_has_control(item->string)) {
			fail(err, "users has an empty or unprintable user name; fix: remove it");
			return false;
		}
		if (!tsms_config_copy_string(&u->name, item->string, err))
			return false;
		cfg->n_users++;
		if (cJSON_IsString(item) &&
		    tsms_phone_parse(item->valuestring, strlen(item->valuestring), u->phone, &why))
			continue;
		/* kept, so that only this user's logins fail (with this text), not everyone's */
		u->phone[0] = '\0';
		tsms_format_clean(msg, sizeof(msg), "users: user \"%s\": the number %s; fix: %s%s",
		                  tsms_config_quote(q, item->string), why,
		                  cJSON_IsString(item) ? "" : "put it in quotes and ",
		                  TSMS_PHONE_FIX);
		if (!tsms_config_copy_string(&u->problem, msg, err))
			return false;
	}
	return true;
}

static bool parse_risk_check(struct tsms_config *cfg, const cJSON *root,
                             char err[TSMS_CONFIG_ERR_MAX])
{
	const cJSON *risk = cJSON_GetObjectItemCaseSensitive(root, "disableRiskCheck");

	if (risk != NULL && !cJSON_IsBool(risk)) {
		fail(err, "disableRiskCheck must be true or false; fix: write it without quotes");
		return false;
	}
	cfg->disable_risk_check = cJSON_IsTrue(risk);
	return true;
}

static bool parse_fail_mode(struct tsms_config *cfg, const cJSON *root,
                            char err[TSMS_CONFIG_ERR_MAX])
{
	const char *mode;

	if (!tsms_config_get_string(root, "failMode", &mode, err))
		return false;
	if (mode == NULL || strcmp(mode, "closed") == 0) {
		cfg->fail_mode = TSMS_FAIL_CLOSED;
	} else if (strcmp(mode, "open") == 0) {
		cfg->fail_mode = TSMS_FAIL_OPEN;
	} else {
		char q[64];
		fail(err,
		     "failMode \"%s\" is unknown; fix: use \"closed\" (the default) or \"open\"",
		     tsms_config_quote(q, mode));
		return false;
	}
	return true;
}

/* graceScope: where an address grace holds (lib/grace.h); read after redis. */
static bool parse_grace_scope(struct tsms_config *cfg, const cJSON *root,
                              char err[TSMS_CONFIG_ERR_MAX])
{
	const char *scope;
	char q[64];

	if (!tsms_config_get_string(root, "graceScope", &scope, err))
		return false;
	if (scope == NULL || strcmp(scope, "host") == 0) {
		cfg->grace_fleet = false;
	} else if (strcmp(scope, "fleet") == 0) {
		cfg->grace_fleet = true;
	} else {
		fail(err,
		     "graceScope \"%s\" is unknown; fix: use \"host\" (the default) or "
		     "\"fleet\"",
		     tsms_config_quote(q, scope));
		return false;
	}
	if (scope != NULL && cfg->grace_period_seconds == 0) {
		fail(err, "graceScope is set but gracePeriodSeconds is 0, so there is no grace "
		          "by address to share; fix: set gracePeriodSeconds (e.g. 600) or remove "
		          "graceScope");
		return false;
	}
	if (cfg->grace_fleet && cfg->redis == NULL) {
		fail(err, "graceScope \"fleet\" needs a redis object (the fleet's graces live "
		          "there); fix: add redis, or use \"host\"");
		return false;
	}
	return true;
}

static bool parse_options(struct tsms_config *cfg, const cJSON *root,
                          struct tsms_config_problems *p)
{
	char err[TSMS_CONFIG_ERR_MAX];

	for (size_t i = 0; i < sizeof(number_options) / sizeof(number_options[0]); i++) {
		const struct tsms_number_option *opt = &number_options[i];
		if (!tsms_config_go_on(p,
		                       set_number(cfg, opt,
		                                  cJSON_GetObjectItemCaseSensitive(root, opt->key),
		                                  err),
		                       err))
			return false;
	}
	return tsms_config_go_on(p, parse_risk_check(cfg, root, err), err) &&
	       tsms_config_go_on(p, parse_fail_mode(cfg, root, err), err) &&
	       tsms_config_parse_endpoint(cfg, root, p);
}

static bool parse_state_dir(struct tsms_config *cfg, const cJSON *root,
                            char err[TSMS_CONFIG_ERR_MAX])
{
	const char *dir;
	char q[64];

	if (!tsms_config_get_string(root, "stateDir", &dir, err))
		return false;
	if (dir == NULL)
		dir = TSMS_DEFAULT_STATE_DIR;
	if (dir[0] != '/' || strlen(dir) > 256 || tsms_config_has_control(dir)) {
		fail(err,
		     "stateDir \"%s\" is not an absolute path; fix: remove it for %s or give "
		     "a full path",
		     tsms_config_quote(q, dir), TSMS_DEFAULT_STATE_DIR);
		return false;
	}
	return tsms_config_copy_string(&cfg->state_dir, dir, err);
}

/* An optional absolute path under key (usersFile, backupCodesFile). */
static bool parse_path(const cJSON *root, const char *key, const char *example, char **out,
                       char err[TSMS_CONFIG_ERR_MAX])
{
	const char *path;
	char q[64];

	if (!tsms_config_get_string(root, key, &path, err))
		return false;
	if (path == NULL)
		return true;
	if (path[0] != '/' || strlen(path) > 1024 || tsms_config_has_control(path)) {
		fail(err, "%s \"%s\" is not an absolute path; fix: give the full path, e.g. %s",
		     key, tsms_config_quote(q, path), example);
		return false;
	}
	return tsms_config_copy_string(out, path, err);
}

static bool parse_files(struct tsms_config *cfg, const cJSON *root, struct tsms_config_problems *p)
{
	char err[TSMS_CONFIG_ERR_MAX], q[64];

	if (!tsms_config_go_on(p,
	                       parse_path(root, "usersFile", "/etc/security/pam_twilio_sms.users",
	                                  &cfg->users_file, err),
	                       err) ||
	    !tsms_config_go_on(p,
	                       parse_path(root, "backupCodesFile",
	                                  "/etc/security/pam_twilio_sms.backup-codes",
	                                  &cfg->backup_codes_file, err),
	                       err))
		return false;
	if (cfg->users_file != NULL && cfg->backup_codes_file != NULL &&
	    strcmp(cfg->users_file, cfg->backup_codes_file) == 0) {
		fail(err,
		     "backupCodesFile and usersFile are the same file \"%s\"; fix: give each "
		     "its own",
		     tsms_config_quote(q, cfg->users_file));
		return tsms_config_go_on(p, false, err);
	}
	return true;
}

static bool is_country_code(const char *s)
{
	size_t n = strlen(s);

	if (n < 2 || n > TSMS_COUNTRY_CODE_MAX - 1 || s[0] != '+' || s[1] == '0')
		return false;
	for (size_t i = 1; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return false;
	}
	return true;
}

static bool parse_country_codes(struct tsms_config *cfg, const cJSON *root,
                                char err[TSMS_CONFIG_ERR_MAX])
{
	const cJSON *list = cJSON_GetObjectItemCaseSensitive(root, "allowedCountryCodes");
	const cJSON *item;
	char q[64];

	if (list == NULL)
		return true;
	if (!cJSON_IsArray(list) || cJSON_GetArraySize(list) == 0) {
		fail(err,
		     "allowedCountryCodes must be a non-empty array such as [\"+1\", \"+44\"]; "
		     "fix: correct it, or remove it to allow every country");
		return false;
	}
	cfg->country_codes = calloc((size_t)cJSON_GetArraySize(list), sizeof(*cfg->country_codes));
	if (cfg->country_codes == NULL) {
		fail(err, "out of memory");
		return false;
	}
	cJSON_ArrayForEach(item, list)
	{
		if (!cJSON_IsString(item) || !is_country_code(item->valuestring)) {
			fail(err,
			     "allowedCountryCodes has %s%s%s, not a country calling code; fix: "
			     "write codes as \"+1\", \"+44\", ...",
			     cJSON_IsString(item) ? "\"" : "",
			     cJSON_IsString(item) ? tsms_config_quote(q, item->valuestring)
			                          : "a non-string",
			     cJSON_IsString(item) ? "\"" : "");
			return false;
		}
		strcpy(cfg->country_codes[cfg->n_country_codes++], item->valuestring);
	}
	return true;
}

bool tsms_config_country_allowed(const struct tsms_config *cfg, const char *e164)
{
	if (cfg->country_codes == NULL)
		return true;
	for (size_t i = 0; i < cfg->n_country_codes; i++) {
		const char *code = cfg->country_codes[i];
		if (strncmp(e164, code, strlen(code)) == 0)
			return true;
	}
	return false;
}

static bool check_keys(const cJSON *root, struct tsms_config_problems *p)
{
	char err[TSMS_CONFIG_ERR_MAX];
	const cJSON *item;
	char q[64];

	cJSON_ArrayForEach(item, root)
	{
		if (!known_key(item->string)) {
			fail(err,
			     "unknown key \"%s\"; fix: correct its spelling or remove it (the "
			     "keys are listed in pam_twilio_sms.json(5))",
			     tsms_config_quote(q, item->string));
			if (!tsms_config_go_on(p, false, err))
				return false;
		}
	}
	return tsms_config_go_on(p, tsms_config_unique_keys(root, "the config", err), err);
}

/* The parsed tree holds secrets: wipe them before freeing. */
static void wipe_tree(cJSON *root)
{
	static const char *const secrets[] = { "authToken", "apiKeySecret", "proxy" };
	static const char *const nested[][2] = { { "ldap", "bindPassword" },
		                                 { "redis", "password" } };

	for (size_t i = 0; i < sizeof(secrets) / sizeof(secrets[0]); i++) {
		cJSON *item = cJSON_GetObjectItemCaseSensitive(root, secrets[i]);

		if (cJSON_IsString(item) && item->valuestring != NULL)
			tsms_wipe(item->valuestring, strlen(item->valuestring));
	}
	for (size_t i = 0; i < sizeof(nested) / sizeof(nested[0]); i++) {
		const cJSON *obj = cJSON_GetObjectItemCaseSensitive(root, nested[i][0]);
		cJSON *item = cJSON_GetObjectItemCaseSensitive(obj, nested[i][1]);

		if (cJSON_IsString(item) && item->valuestring != NULL)
			tsms_wipe(item->valuestring, strlen(item->valuestring));
	}
	cJSON_Delete(root);
}

bool tsms_config_go_on(struct tsms_config_problems *p, bool ok, const char *err)
{
	if (ok)
		return true;
	if (p->count++ == 0)
		snprintf(p->first, TSMS_CONFIG_ERR_MAX, "%s", err);
	if (p->fn == NULL)
		return false;
	p->fn(p->ctx, err);
	return true;
}

/* Where offset (bytes into json, of len bytes) is, as an editor shows it:
 * line and column from 1, the column counted in characters (UTF-8). */
static void position(const char *json, size_t len, size_t offset, unsigned *line, unsigned *column)
{
	*line = 1;
	*column = 1;
	for (size_t i = 0; i < offset && i < len; i++) {
		if (json[i] == '\n') {
			++*line;
			*column = 1;
		} else if (((unsigned char)json[i] & 0xc0) != 0x80) {
			++*column;
		}
	}
}

/* The example's users, for a caller that wants every problem (fn) only: the
 * module accepts them (a user's number concerns that user alone), but they
 * are no one's. Read from the tree, whatever the users section made of it. */
static void flag_example_users(const cJSON *root, struct tsms_config_problems *p)
{
	const cJSON *users = cJSON_GetObjectItemCaseSensitive(root, "users");
	char phone[TSMS_PHONE_MAX], msg[TSMS_CONFIG_ERR_MAX], q[64];
	const cJSON *item;

	if (p->fn == NULL || !cJSON_IsObject(users))
		return;
	cJSON_ArrayForEach(item, users)
	{
		if (!cJSON_IsString(item) ||
		    !tsms_phone_parse(item->valuestring, strlen(item->valuestring), phone, NULL) ||
		    !tsms_example_user(item->string, phone))
			continue;
		fail(msg,
		     "users.%s is the example's user, with a number reserved for fiction; fix: "
		     "replace the example's users with yours and their mobile numbers, or remove "
		     "them",
		     tsms_config_quote(q, item->string));
		p->fn(p->ctx, msg);
	}
}

/* The entries of users kept with a problem, for a caller that wants every
 * problem (fn) only: the module refuses those users alone, so the config is
 * still used. */
static void flag_bad_users(const struct tsms_config *cfg, struct tsms_config_problems *p)
{
	if (p->fn == NULL)
		return;
	for (size_t i = 0; i < cfg->n_users; i++) {
		if (cfg->users[i].problem != NULL)
			p->fn(p->ctx, cfg->users[i].problem);
	}
}

/* The sections in order: the first problem is the one a refusal names. */
static void parse_sections(struct tsms_config *cfg, const cJSON *root,
                           struct tsms_config_problems *p)
{
	char err[TSMS_CONFIG_ERR_MAX];

	(void)(check_keys(root, p) && tsms_config_parse_credentials(cfg, root, p) &&
	       parse_options(cfg, root, p) &&
	       tsms_config_go_on(p, parse_state_dir(cfg, root, err), err) &&
	       parse_files(cfg, root, p) &&
	       tsms_config_go_on(p, parse_country_codes(cfg, root, err), err) &&
	       tsms_config_parse_templates(cfg, root, p) &&
	       tsms_config_go_on(p, parse_users(cfg, root, err), err) &&
	       tsms_config_go_on(p, tsms_config_parse_ldap(cfg, root, err), err) &&
	       tsms_config_go_on(p, tsms_config_parse_redis(cfg, root, err), err) &&
	       tsms_config_go_on(p, parse_grace_scope(cfg, root, err), err));
}

static struct tsms_config *parse(const char *json, size_t len, struct tsms_config_problems *p)
{
	struct tsms_config *cfg = NULL;
	char err[TSMS_CONFIG_ERR_MAX];
	cJSON *root = NULL;
	const char *end = NULL;

	p->first[0] = '\0';
	if (memchr(json, '\0', len) != NULL) {
		fail(err, "the file holds a NUL byte; fix: save it as plain UTF-8 JSON");
		tsms_config_go_on(p, false, err);
		return NULL;
	}
	root = cJSON_ParseWithLengthOpts(json, len, &end, false);
	if (root == NULL || !cJSON_IsObject(root)) {
		unsigned line = 1, column = 1;

		/* cJSON points at the first byte it could not take */
		if (root == NULL && end != NULL && end >= json && end <= json + len)
			position(json, len, (size_t)(end - json), &line, &column);
		fail(err, "%s (line %u, column %u); fix: check it with `python3 -m json.tool FILE`",
		     root == NULL ? "not valid JSON" : "not a JSON object", line, column);
		tsms_config_go_on(p, false, err);
		goto out;
	}
	cfg = calloc(1, sizeof(*cfg));
	if (cfg == NULL) {
		fail(err, "out of memory");
		tsms_config_go_on(p, false, err);
		goto out;
	}
	parse_sections(cfg, root, p);
	flag_bad_users(cfg, p);
	flag_example_users(root, p);
	if (p->count > 0) {
		tsms_config_free(cfg);
		cfg = NULL;
	}
out:
	if (root != NULL)
		wipe_tree(root);
	return cfg;
}

struct tsms_config *tsms_config_parse(const char *json, size_t len, char err[TSMS_CONFIG_ERR_MAX])
{
	struct tsms_config_problems p = { .first = err };

	return parse(json, len, &p);
}

struct tsms_config *tsms_config_parse_all(const char *json, size_t len, tsms_config_problem_fn *fn,
                                          void *ctx, char err[TSMS_CONFIG_ERR_MAX])
{
	struct tsms_config_problems p = { .first = err, .fn = fn, .ctx = ctx };

	return parse(json, len, &p);
}

/* Reads up to size bytes of fd into a new NUL-terminated buffer. NULL when out
 * of memory (*read_errno 0) or when a read fails (*read_errno its errno: an I/O
 * error is not an empty or truncated file); what was read is wiped first. */
static char *read_all(int fd, size_t size, size_t *len, int *read_errno)
{
	char *buf = malloc(size + 1);
	size_t got = 0;

	*read_errno = 0;
	if (buf == NULL)
		return NULL;
	while (got < size) {
		ssize_t n = read(fd, buf + got, size - got);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			*read_errno = errno;
			tsms_wipe(buf, got);
			free(buf);
			return NULL;
		}
		if (n == 0)
			break;
		got += (size_t)n;
	}
	buf[got] = '\0';
	*len = got;
	return buf;
}

/* Reads caFile into cfg->ca_pem once, from a descriptor checked like the
 * config's: whoever can write the trust can read the code and the token. */
static bool load_ca_file(struct tsms_config *cfg, const char *path, char err[TSMS_CONFIG_ERR_MAX])
{
	char perr[TSMS_CONFIG_ERR_MAX];
	struct stat st;
	int fd, read_errno;

	if (cfg->ca_file == NULL)
		return true;
	fd = tsms_open_trusted(cfg->ca_file, "caFile", TSMS_CA_MAX_BYTES, &st, perr);
	if (fd < 0) {
		fail(err, "config %s: %s", path, perr);
		return false;
	}
	cfg->ca_pem = read_all(fd, (size_t)st.st_size, &cfg->ca_pem_len, &read_errno);
	close(fd);
	if (cfg->ca_pem == NULL) {
		fail(err, "config %s: caFile %s: %s", path, cfg->ca_file,
		     read_errno != 0 ? strerror(read_errno) : "out of memory");
		return false;
	}
	if (cfg->ca_pem_len == 0) {
		fail(err,
		     "config %s: caFile %s is empty; fix: name a PEM bundle, or remove caFile to "
		     "use the system trust store",
		     path, cfg->ca_file);
		return false;
	}
	return true;
}

/* The directory's caFile, checked like the config's and kept open: libldap
 * reads it through /proc/self/fd, so the file read is the file checked. */
static bool open_ldap_ca_file(struct tsms_config *cfg, const char *path,
                              char err[TSMS_CONFIG_ERR_MAX])
{
	char perr[TSMS_CONFIG_ERR_MAX];
	struct stat st;

	if (cfg->ldap == NULL || cfg->ldap->ca_file == NULL)
		return true;
	cfg->ldap->ca_fd =
		tsms_open_trusted(cfg->ldap->ca_file, "ldap.caFile", TSMS_CA_MAX_BYTES, &st, perr);
	if (cfg->ldap->ca_fd < 0) {
		fail(err, "config %s: %s", path, perr);
		return false;
	}
	return true;
}

/* The file's problems are "config PATH: ..." (the parser's own do not name it). */
struct prefixed {
	const char *path;
	tsms_config_problem_fn *fn;
	void *ctx;
};

static void with_path(void *ctx, const char *problem)
{
	const struct prefixed *w = ctx;
	char msg[TSMS_CONFIG_ERR_MAX];

	snprintf(msg, sizeof(msg), "config %s: %s", w->path, problem);
	w->fn(w->ctx, msg);
}

static struct tsms_config *load(const char *path, tsms_config_problem_fn *fn, void *ctx,
                                char err[TSMS_CONFIG_ERR_MAX])
{
	struct prefixed w = { .path = path, .fn = fn, .ctx = ctx };
	struct tsms_config *cfg = NULL;
	char perr[TSMS_CONFIG_ERR_MAX];
	char *buf = NULL;
	struct stat st;
	size_t len = 0;
	int fd, read_errno;

	err[0] = '\0';
	fd = tsms_open_private(path, "config", TSMS_CONFIG_MAX_BYTES, &st, err);
	if (fd < 0)
		goto report;
	buf = read_all(fd, (size_t)st.st_size, &len, &read_errno);
	if (buf == NULL) {
		fail(err, "config %s: %s", path,
		     read_errno != 0 ? strerror(read_errno) : "out of memory");
		goto report;
	}
	cfg = fn != NULL ? tsms_config_parse_all(buf, len, with_path, &w, perr)
	                 : tsms_config_parse(buf, len, perr);
	if (cfg == NULL) {
		fail(err, "config %s: %s", path, perr);
		goto out; /* each one given to fn already */
	}
	if (!load_ca_file(cfg, path, err) || !open_ldap_ca_file(cfg, path, err)) {
		tsms_config_free(cfg);
		cfg = NULL;
	}
report:
	if (cfg == NULL && fn != NULL)
		fn(ctx, err);
out:
	if (buf != NULL) {
		tsms_wipe(buf, len);
		free(buf);
	}
	if (fd >= 0)
		close(fd);
	return cfg;
}

struct tsms_config *tsms_config_load(const char *path, char err[TSMS_CONFIG_ERR_MAX])
{
	return load(path, NULL, NULL, err);
}

struct tsms_config *tsms_config_load_all(const char *path, tsms_config_problem_fn *fn, void *ctx,
                                         char err[TSMS_CONFIG_ERR_MAX])
{
	return load(path, fn, ctx, err);
}

void tsms_config_free(struct tsms_config *cfg)
{
	if (cfg == NULL)
		return;
	free(cfg->account_sid);
	tsms_free_secret(cfg->auth_token);
	free(cfg->api_key_sid);
	tsms_free_secret(cfg->api_key_secret);
	free(cfg->messaging_service_sid);
	for (size_t i = 0; i < cfg->n_templates; i++) {
		free(cfg->templates[i].usage);
		free(cfg->templates[i].content);
	}
	free(cfg->templates);
	for (size_t i = 0; i < cfg->n_users; i++) {
		free(cfg->users[i].name);
		free(cfg->users[i].problem);
	}
	free(cfg->users);
	free(cfg->api_base_url);
	free(cfg->ca_file);
	free(cfg->ca_pem);
	tsms_free_secret(cfg->proxy);
	free(cfg->state_dir);
	free(cfg->users_file);
	free(cfg->backup_codes_file);
	free(cfg->country_codes);
	if (cfg->ldap != NULL) {
		free(cfg->ldap->uri);
		free(cfg->ldap->ca_file);
		if (cfg->ldap->ca_fd >= 0)
			close(cfg->ldap->ca_fd);
		free(cfg->ldap->bind_dn);
		tsms_free_secret(cfg->ldap->bind_password);
		free(cfg->ldap->base_dn);
		free(cfg->ldap->filter);
		for (size_t i = 0; cfg->ldap->domains != NULL && cfg->ldap->domains[i] != NULL; i++)
			free(cfg->ldap->domains[i]);
		free(cfg->ldap->domains);
		free(cfg->ldap->attribute);
		free(cfg->ldap);
	}
	if (cfg->redis != NULL) {
		free(cfg->redis->url);
		free(cfg->redis->host);
		free(cfg->redis->socket_path);
		free(cfg->redis->username);
		tsms_free_secret(cfg->redis->password);
		free(cfg->redis->key_prefix);
		free(cfg->redis);
	}
	free(cfg);
}

const char *tsms_config_basic_user(const struct tsms_config *cfg)
{
	return cfg->api_key_sid != NULL ? cfg->api_key_sid : cfg->account_sid;
}

const char *tsms_config_secret(const struct tsms_config *cfg)
{
	return cfg->api_key_secret != NULL ? cfg->api_key_secret : cfg->auth_token;
}

const struct tsms_user *tsms_config_user(const struct tsms_config *cfg, const char *user)
{
	for (size_t i = 0; i < cfg->n_users; i++) {
		if (strcmp(cfg->users[i].name, user) == 0)
			return &cfg->users[i];
	}
	return NULL;
}

const char *tsms_config_phone(const struct tsms_config *cfg, const char *user)
{
	const struct tsms_user *u = tsms_config_user(cfg, user);

	return u != NULL ? u->phone : NULL;
}
