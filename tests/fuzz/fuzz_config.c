/* fuzz_config.c - libFuzzer target: the config parser and validator.
 * The input is a config file's bytes. A rejected config must explain itself
 * in one printable line; an accepted one must hold only values the rest of
 * the module relies on (checked here, so that validation bugs show up as
 * crashes rather than as odd behaviour at login). */
#include <stdint.h>
#include <strings.h>

#include "config.h"
#include "fuzz.h"
#include "http.h"
#include "otp.h"
#include "template.h"

/* Every value the module later uses without checking it again. */
static void check_config(const struct tsms_config *cfg)
{
	const struct tsms_template *signin = tsms_config_template(cfg, "SignIn");
	char code[TSMS_CODE_MAX + 1];
	char *body;

	FUZZ_CHECK(cfg->account_sid != NULL && strlen(cfg->account_sid) == 34);
	FUZZ_CHECK(strncmp(cfg->account_sid, "AC", 2) == 0);
	FUZZ_CHECK(cfg->messaging_service_sid != NULL && strlen(cfg->messaging_service_sid) == 34);
	FUZZ_CHECK(strncmp(cfg->messaging_service_sid, "MG", 2) == 0);
	/* exactly one credential: the auth token, or an API key's SID and secret */
	FUZZ_CHECK((cfg->auth_token != NULL) != (cfg->api_key_sid != NULL));
	FUZZ_CHECK((cfg->api_key_sid != NULL) == (cfg->api_key_secret != NULL));
	FUZZ_CHECK(cfg->api_key_sid == NULL ||
	           (strlen(cfg->api_key_sid) == 34 && strncmp(cfg->api_key_sid, "SK", 2) == 0));
	FUZZ_CHECK(tsms_config_secret(cfg) != NULL && tsms_config_secret(cfg)[0] != '\0');
	FUZZ_CHECK(!fuzz_has_control(tsms_config_secret(cfg)));
	FUZZ_CHECK(tsms_config_basic_user(cfg) != NULL);
	{
		char problem[TSMS_HTTP_PROXY_MSG];
		FUZZ_CHECK(cfg->proxy == NULL || tsms_http_check_proxy(cfg->proxy, problem));
	}

	FUZZ_CHECK(cfg->api_base_url != NULL && strncmp(cfg->api_base_url, "https://", 8) == 0);
	FUZZ_CHECK(strlen(cfg->api_base_url) > 8 && !fuzz_has_control(cfg->api_base_url));
	FUZZ_CHECK(cfg->api_base_url[strlen(cfg->api_base_url) - 1] != '/');
	FUZZ_CHECK(cfg->ca_file == NULL || cfg->ca_file[0] == '/');
	FUZZ_CHECK(cfg->state_dir != NULL && cfg->state_dir[0] == '/');
	FUZZ_CHECK(!fuzz_has_control(cfg->state_dir));
	FUZZ_CHECK(cfg->fail_mode == TSMS_FAIL_CLOSED || cfg->fail_mode == TSMS_FAIL_OPEN);

	/* the directory, when configured: what lib/directory.c uses unchecked */
	if (cfg->ldap != NULL) {
		const struct tsms_ldap *l = cfg->ldap;
		/* the first URI, after the separators libldap skips */
		const char *first = l->uri != NULL ? l->uri + strspn(l->uri, " \t,") : "";

		FUZZ_CHECK(l->uri != NULL && l->base_dn != NULL && l->attribute != NULL);
		FUZZ_CHECK(l->filter != NULL &&
		           (strstr(l->filter, "%u") != NULL || strstr(l->filter, "%s") != NULL));
		/* a short name is never looked up without a rule for its domain */
		FUZZ_CHECK(strstr(l->filter, "%s") == NULL || strstr(l->filter, "%d") != NULL ||
		           l->domains != NULL);
		for (size_t i = 0; l->domains != NULL && l->domains[i] != NULL; i++)
			FUZZ_CHECK(l->domains[i][0] != '\0' && strpbrk(l->domains[i], "@\\ ") == NULL);
		FUZZ_CHECK((l->bind_dn == NULL) == (l->bind_password == NULL));
		FUZZ_CHECK(l->timeout_seconds >= 1 && l->timeout_seconds <= 30);
		FUZZ_CHECK(l->ca_fd == -1); /* only tsms_config_load opens it */
		FUZZ_CHECK(!l->start_tls || strncasecmp(first, "ldap://", 7) == 0);
		FUZZ_CHECK(strncasecmp(first, "ldap://", 7) != 0 || l->start_tls);
	}

	/* Redis, when configured: what lib/state_redis.c hands hiredis unchecked */
	if (cfg->redis != NULL) {
		const struct tsms_redis *r = cfg->redis;

		FUZZ_CHECK(r->url != NULL && !fuzz_has_control(r->url));
		/* the url is logged: no user:password@ (a socket path may hold '@') */
		FUZZ_CHECK(r->host == NULL || strchr(r->url, '@') == NULL);
		FUZZ_CHECK((r->host == NULL) != (r->socket_path == NULL));
		FUZZ_CHECK(r->host == NULL || (r->host[0] != '\0' && r->port >= 1 && r->port <= 65535));
		FUZZ_CHECK(r->host == NULL || strncmp(r->url, "redis://", 8) == 0);
		FUZZ_CHECK(r->socket_path == NULL ||
		           (r->socket_path[0] == '/' && strlen(r->socket_path) <= 107));
		FUZZ_CHECK(r->db <= 15);
		FUZZ_CHECK(r->username == NULL || r->password != NULL);
		FUZZ_CHECK(r->key_prefix != NULL && r->key_prefix[0] != '\0');
		FUZZ_CHECK(strlen(r->key_prefix) <= 64 && strpbrk(r->key_prefix, " ") == NULL);
		FUZZ_CHECK(r->timeout_seconds >= 1 && r->timeout_seconds <= 10);
	}

	/* the ranges of pam_twilio_sms.json(5)'s keys */
	FUZZ_CHECK(cfg->code_length >= TSMS_CODE_MIN && cfg->code_length <= TSMS_CODE_MAX);
	FUZZ_CHECK(cfg->code_ttl_seconds >= 1 && cfg->code_ttl_seconds <= 3600);
	FUZZ_CHECK(cfg->max_attempts >= 1 && cfg->max_attempts <= 10);
	FUZZ_CHECK(cfg->timeout_seconds >= 1 && cfg->timeout_seconds <= 60);
	FUZZ_CHECK(cfg->max_retries <= 5);
	FUZZ_CHECK(cfg->send_limit >= 1 && cfg->send_limit <= 1000);
	FUZZ_CHECK(cfg->send_window_seconds >= 1 && cfg->send_window_seconds <= 86400);
	FUZZ_CHECK(cfg->resend_cooldown_seconds <= 3600);
	FUZZ_CHECK(cfg->global_send_limit <= 1000000);
	FUZZ_CHECK(cfg->max_resends <= 5);
	FUZZ_CHECK(cfg->lockout_threshold >= 1 && cfg->lockout_threshold <= 1000);
	FUZZ_CHECK(cfg->lockout_seconds >= 1 && cfg->lockout_seconds <= 86400);

	FUZZ_CHECK(cfg->country_codes == NULL || cfg->n_country_codes > 0);
	for (size_t i = 0; i < cfg->n_country_codes; i++) {
		const char *cc = cfg->country_codes[i];

		FUZZ_CHECK(fuzz_terminated(cc, sizeof(cfg->country_codes[i])));
		FUZZ_CHECK(cc[0] == '+' && cc[1] >= '1' && cc[1] <= '9');
		FUZZ_CHECK(strspn(cc + 1, "0123456789") == strlen(cc + 1) && strlen(cc) <= 5);
	}

	/* the template the module sends: present, with a placeholder, one message long */
	FUZZ_CHECK(signin != NULL && signin->content != NULL);
	FUZZ_CHECK(tsms_template_has_placeholder(signin->content));
	memset(code, '9', cfg->code_length);
	code[cfg->code_length] = '\0';
	body = tsms_template_render(signin->content, code, NULL);
	FUZZ_CHECK(body != NULL && tsms_utf8_chars(body) <= TSMS_BODY_MAX_CHARS);
	free(body);
	for (size_t i = 0; i < cfg->n_templates; i++)
		FUZZ_CHECK(cfg->templates[i].usage != NULL && cfg->templates[i].content != NULL);

	/* users: printable, unique names mapped to E.164 numbers, or kept with a
	 * one-line problem and its fix (only that user is refused) */
	for (size_t i = 0; i < cfg->n_users; i++) {
		const struct tsms_user *u = &cfg->users[i];

		FUZZ_CHECK(u->name != NULL && u->name[0] != '\0' && !fuzz_has_control(u->name));
		FUZZ_CHECK(fuzz_terminated(u->phone, sizeof(u->phone)));
		if (u->problem == NULL)
			FUZZ_CHECK(fuzz_is_e164(u->phone));
		else
			FUZZ_CHECK(u->phone[0] == '\0' && !fuzz_has_control(u->problem) &&
			           strstr(u->problem, "fix: ") != NULL);
		FUZZ_CHECK(tsms_config_user(cfg, u->name) == u);
		FUZZ_CHECK(tsms_config_phone(cfg, u->name) == u->phone);
	}
}

/* Every problem of a parse that wants them all (tsms_config_parse_all). */
struct problems {
	unsigned n;
	char first[TSMS_CONFIG_ERR_MAX];
};

static void collect(void *ctx, const char *problem)
{
	struct problems *p = ctx;

	FUZZ_CHECK(fuzz_terminated(problem, TSMS_CONFIG_ERR_MAX));
	FUZZ_CHECK(problem[0] != '\0' && !fuzz_has_control(problem));
	if (p->n++ == 0)
		snprintf(p->first, sizeof(p->first), "%s", problem);
}

/* Reading on past a problem never crashes, refuses exactly what the module's
 * parse refuses, and its first problem is the one the module logs. */
static void check_all_problems(const uint8_t *data, size_t size, const struct tsms_config *cfg,
                               const char *err)
{
	char all_err[TSMS_CONFIG_ERR_MAX];
	struct problems p = { 0 };
	struct tsms_config *all;

	memset(all_err, 'X', sizeof(all_err));
	all = tsms_config_parse_all((const char *)data, size, collect, &p, all_err);
	FUZZ_CHECK(fuzz_terminated(all_err, sizeof(all_err)));
	FUZZ_CHECK((all == NULL) == (cfg == NULL));
	if (all == NULL) {
		FUZZ_CHECK(p.n >= 1 && strcmp(p.first, err) == 0 && strcmp(all_err, err) == 0);
	}
	tsms_config_free(all);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char err[TSMS_CONFIG_ERR_MAX];
	struct tsms_config *cfg;

	/* junk, not zeros: an error left unterminated must show */
	memset(err, 'X', sizeof(err));
	cfg = tsms_config_parse((const char *)data, size, err);
	FUZZ_CHECK(fuzz_terminated(err, sizeof(err)));
	if (cfg == NULL) {
		FUZZ_CHECK(err[0] != '\0' && !fuzz_has_control(err));
	} else {
		check_config(cfg);
	}
	check_all_problems(data, size, cfg, err);
	tsms_config_free(cfg);
	return 0;
}
