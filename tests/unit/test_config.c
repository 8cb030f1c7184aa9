/* test_config.c - unit tests of lib/config: parsing, validation, lookups and
 * the file checks of tsms_config_load */
#include "unit.h"

#include <signal.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>

#include "config.h"

/* the fixtures' credentials */
#define AC "AC0123456789abcdef0123456789abcdef"
#define TOKEN "0f1e2d3c4b5a69788796a5b4c3d2e1f0"
#define MG "MGfedcba9876543210fedcba9876543210"

/* an in-memory config: the required keys with a SignIn template; tests add members */
#define REQUIRED_KEYS                                                                             \
	"\"accountSID\":\"" AC "\",\"authToken\":\"" TOKEN "\",\"fromMessagingServiceSID\":\"" MG \
	"\""
#define SIGNIN_TEMPLATES \
	"\"templates\":[{\"usageType\":\"SignIn\",\"content\":\"Your code is {{code}}\"}]"

struct guarded_err {
	char err[TSMS_CONFIG_ERR_MAX];
	char canary[64];
};

static void err_init(struct guarded_err *g)
{
	memset(g, 'Z', sizeof(*g));
}

/* err must be terminated inside its buffer, one line, free of the token, and
 * nothing written past it. */
static void err_check(const struct guarded_err *g)
{
	for (size_t i = 0; i < sizeof(g->canary); i++) {
		if (g->canary[i] != 'Z') {
			print_error("config err buffer overrun at canary byte %zu\n", i);
			fail();
		}
	}
	assert_non_null(memchr(g->err, '\0', sizeof(g->err)));
	assert_not_contains(g->err, "\n");
	assert_not_contains(g->err, TOKEN);
	assert_not_contains(g->err, "second-token-value");
	assert_not_contains(g->err, "pw-secret");
}

/* Parses len bytes of json from an exactly sized, unterminated buffer. */
static struct tsms_config *parse_len(const char *json, size_t len, struct guarded_err *g)
{
	char *buf = unterminated_copy(json, len);
	struct tsms_config *cfg;

	err_init(g);
	cfg = tsms_config_parse(buf, len, g->err);
	free(buf);
	if (cfg == NULL)
		err_check(g);
	return cfg;
}

static struct tsms_config *parse_str(const char *json, struct guarded_err *g)
{
	return parse_len(json, strlen(json), g);
}

static struct tsms_config *parse_fixture(const char *name, struct guarded_err *g)
{
	size_t len = 0;
	char *json = fixture_read(name, &len);
	struct tsms_config *cfg = parse_len(json, len, g);

	free(json);
	return cfg;
}

/* "{" + members + "}" */
static char *object_of(const char *members)
{
	size_t n = strlen(members) + 3;
	char *s = malloc(n);

	assert_non_null(s);
	snprintf(s, n, "{%s}", members);
	return s;
}

/* A config of the required keys, the given templates member and extra members. */
static char *config_with(const char *templates, const char *extra)
{
	size_t n = strlen(REQUIRED_KEYS) + strlen(templates) + strlen(extra) + 8;
	char *s = malloc(n);

	assert_non_null(s);
	snprintf(s, n, "{%s,%s%s}", REQUIRED_KEYS, templates, extra);
	return s;
}

static void assert_accepts(const char *json)
{
	struct guarded_err g;
	struct tsms_config *cfg = parse_str(json, &g);

	if (cfg == NULL) {
		print_error("refused: %s\n  config: %.300s\n", g.err, json);
		fail();
	}
	tsms_config_free(cfg);
}

/* The config must be refused with an err naming every one of names (NULL-ended). */
static void assert_refuses(const char *json, const char *name)
{
	struct guarded_err g;
	struct tsms_config *cfg = parse_str(json, &g);

	if (cfg != NULL) {
		tsms_config_free(cfg);
		print_error("accepted, expected a refusal naming \"%s\"\n  config: %.300s\n",
		            name != NULL ? name : "", json);
		fail();
	}
	assert_true(g.err[0] != '\0');
	if (name != NULL)
		assert_contains(g.err, name);
}

/* The config must be refused with an err naming one of a, b, c (c may be NULL). */
static void assert_refuses_any(const char *json, const char *a, const char *b, const char *c)
{
	struct guarded_err g;
	struct tsms_config *cfg = parse_str(json, &g);

	if (cfg != NULL) {
		tsms_config_free(cfg);
		print_error("accepted, expected a refusal\n  config: %.300s\n", json);
		fail();
	}
	if (strstr(g.err, a) == NULL && strstr(g.err, b) == NULL &&
	    (c == NULL || strstr(g.err, c) == NULL)) {
		print_error("err \"%s\" names none of \"%s\", \"%s\", \"%s\"\n", g.err, a, b,
		            c != NULL ? c : "");
		fail();
	}
}

static void assert_extra_accepted(const char *extra)
{
	char *json = config_with(SIGNIN_TEMPLATES, extra);

	assert_accepts(json);
	free(json);
}

static void assert_extra_refused(const char *extra, const char *name)
{
	char *json = config_with(SIGNIN_TEMPLATES, extra);

	assert_refuses(json, name);
	free(json);
}

static void assert_templates_refused(const char *templates, const char *name)
{
	char *json = config_with(templates, "");

	assert_refuses(json, name);
	free(json);
}

static const struct tsms_template *find_template(const struct tsms_config *cfg, const char *usage)
{
	for (size_t i = 0; i < cfg->n_templates; i++)
		if (cfg->templates[i].usage != NULL && strcmp(cfg->templates[i].usage, usage) == 0)
			return &cfg->templates[i];
	return NULL;
}

/* ---- parsing valid configs ---- */

static void test_parse_logto_with_users(void **state)
{
	struct guarded_err g;
	struct tsms_config *cfg;
	const struct tsms_template *t;

	(void)state;
	cfg = parse_fixture("config-valid-logto.json", &g);
	if (cfg == NULL) {
		print_error("refused: %s\n", g.err);
		fail();
	}
	assert_string_equal(cfg->account_sid, AC);
	assert_string_equal(cfg->auth_token, TOKEN);
	assert_string_equal(cfg->messaging_service_sid, MG);
	assert_int_equal(cfg->n_templates, 3);
	t = find_template(cfg, "SignIn");
	assert_non_null(t);
	assert_string_equal(t->content, "Your sign-in code is {{code}}");
	t = find_template(cfg, "Register");
	assert_non_null(t);
	assert_string_equal(t->content, "Your registration code is {{code}}");
	t = find_template(cfg, "Test");
	assert_non_null(t);
	assert_string_equal(t->content, "Your test code is {{code}}");
	assert_int_equal(cfg->n_users, 3);
	tsms_config_free(cfg);
}

static void test_parse_defaults(void **state)
{
	struct guarded_err g;
	struct tsms_config *cfg;

	(void)state;
	cfg = parse_fixture("config-valid-logto.json", &g);
	assert_non_null(cfg);
	assert_int_equal(cfg->code_length, 6);
	assert_int_equal(cfg->code_ttl_seconds, 300);
	assert_int_equal(cfg->max_attempts, 3);
	assert_int_equal(cfg->timeout_seconds, 10);
	assert_int_equal(cfg->fail_mode, TSMS_FAIL_CLOSED);
	assert_false(cfg->disable_risk_check);
	assert_non_null(cfg->api_base_url);
	assert_string_equal(cfg->api_base_url, "https://api.twilio.com");
	assert_string_equal(TSMS_DEFAULT_API_BASE, "https://api.twilio.com");
	assert_null(cfg->ca_file);
	/* abuse resistance (SPEC3) */
	assert_int_equal(cfg->max_retries, 2);
	assert_int_equal(cfg->send_limit, 5);
	assert_int_equal(cfg->send_window_seconds, 900);
	assert_int_equal(cfg->resend_cooldown_seconds, 30);
	assert_int_equal(cfg->global_send_limit, 0);
	assert_int_equal(cfg->max_resends, 1);
	assert_int_equal(cfg->lockout_threshold, 10);
	assert_int_equal(cfg->lockout_seconds, 900);
	assert_non_null(cfg->state_dir);
	assert_string_equal(cfg->state_dir, "/var/lib/pam_twilio_sms");
	assert_string_equal(TSMS_DEFAULT_STATE_DIR, "/var/lib/pam_twilio_sms");
	assert_null(cfg->country_codes);
	assert_int_equal(cfg->n_country_codes, 0);
	/* graces (issue 22): off */
	assert_int_equal(cfg->grace_period_seconds, 0);
	assert_int_equal(cfg->session_grace_seconds, 0);
	assert_false(cfg->grace_fleet);
	tsms_config_free(cfg);
}

static void test_parse_pure_logto(void **state)
{
	struct guarded_err g;
	struct tsms_config *cfg;

	(void)state;
	/* exactly Logto's README example, only its 4 keys: pastes in unchanged */
	cfg = parse_fixture("config-logto-pure.json", &g);
	if (cfg == NULL) {
		print_error("refused: %s\n", g.err);
		fail();
	}
	assert_int_equal(cfg->n_users, 0);
	assert_null(tsms_config_phone(cfg, "alice"));
	assert_int_equal(cfg->code_length, 6);
	assert_int_equal(cfg->fail_mode, TSMS_FAIL_CLOSED);
	assert_non_null(tsms_config_template(cfg, "SignIn"));
	tsms_config_free(cfg);
}

static void test_parse_all_keys(void **state)
{
	struct guarded_err g;
	struct tsms_config *cfg;

	(void)state;
	cfg = parse_fixture("config-all-keys.json", &g);
	if (cfg == NULL) {
		print_error("refused: %s\n", g.err);
		fail();
	}
	assert_true(cfg->disable_risk_check);
	assert_string_equal(cfg->api_base_url, "https://127.0.0.1:8443");
	assert_non_null(cfg->ca_file);
	assert_string_equal(cfg->ca_file, "/etc/ssl/tsms-test-ca.pem");
	assert_int_equal(cfg->code_length, 8);
	assert_int_equal(cfg->code_ttl_seconds, 120);
	assert_int_equal(cfg->max_attempts, 5);
	assert_int_equal(cfg->timeout_seconds, 20);
	assert_int_equal(cfg->fail_mode, TSMS_FAIL_OPEN);
	assert_int_equal(cfg->n_users, 2);
	assert_string_equal(tsms_config_phone(cfg, "dave"), "+447700900123");
	assert_int_equal(cfg->n_templates, 2);
	assert_int_equal(cfg->max_retries, 4);
	assert_int_equal(cfg->send_limit, 3);
	assert_int_equal(cfg->send_window_seconds, 3600);
	assert_int_equal(cfg->resend_cooldown_seconds, 60);
	assert_int_equal(cfg->global_send_limit, 500);
	assert_int_equal(cfg->n_country_codes, 2);
	assert_string_equal(cfg->country_codes[0], "+1");
	assert_string_equal(cfg->country_codes[1], "+44");
	assert_string_equal(cfg->state_dir, "/run/pam_twilio_sms");
	assert_int_equal(cfg->max_resends, 2);
	assert_int_equal(cfg->lockout_threshold, 5);
	assert_int_equal(cfg->lockout_seconds, 1800);
	tsms_config_free(cfg);
}

static void test_parse_all_usage_types(void **state)
{
	static const char *const usages[] = {
		"Register",
		"SignIn",
		"Test",
		"Generic",
		"ForgotPassword",
		"OrganizationInvitation",
		"UserPermissionValidation",
		"BindNewIdentifier",
		"MfaVerification",
		"BindMfa",
	};
	struct guarded_err g;
	struct tsms_config *cfg;

	(void)state;
	cfg = parse_fixture("config-all-usage-types.json", &g);
	if (cfg == NULL) {
		print_error("refused: %s\n", g.err);
		fail();
	}
	assert_int_equal(cfg->n_templates, 10);
	for (size_t i = 0; i < sizeof(usages) / sizeof(usages[0]); i++) {
		const struct tsms_template *t = tsms_config_template(cfg, usages[i]);
		char want[64];

		assert_non_null(t);
		snprintf(want, sizeof(want), "%s {{code}}", usages[i]);
		assert_string_equal(t->usage, usages[i]);
		assert_string_equal(t->content, want);
	}
	tsms_config_free(cfg);
}

static void test_parse_unterminated_buffer(void **state)
{
	char *json = config_with(SIGNIN_TEMPLATES, "");
	size_t len = strlen(json);
	char *buf = malloc(len + 16);
	struct guarded_err g;
	struct tsms_config *cfg;

	(void)state;
	assert_non_null(buf);
	/* bytes after len are not part of the config */
	memcpy(buf, json, len);
	memcpy(buf + len, ",\"junk\":{{{{{{{", 16);
	err_init(&g);
	cfg = tsms_config_parse(buf, len, g.err);
	if (cfg == NULL) {
		print_error("refused: %s\n", g.err);
		fail();
	}
	tsms_config_free(cfg);
	free(buf);
	free(json);
}

static void test_parse_len_respected(void **state)
{
	char *json = config_with(SIGNIN_TEMPLATES, "");
	struct guarded_err g;
	struct tsms_config *cfg;

	(void)state;
	/* the buffer holds the whole config, len stops before its last '}' */
	err_init(&g);
	cfg = tsms_config_parse(json, strlen(json) - 1, g.err);
	if (cfg != NULL) {
		tsms_config_free(cfg);
		print_error("parsed past len\n");
		fail();
	}
	err_check(&g);
	free(json);
}

/* ---- where a JSON error is: line and column, as an editor shows them ---- */

static void assert_json_error_at(const char *json, const char *where)
{
	struct guarded_err g;
	struct tsms_config *cfg = parse_str(json, &g);

	if (cfg != NULL) {
		tsms_config_free(cfg);
		print_error("accepted: %s\n", json);
		fail();
	}
	assert_contains(g.err, "not valid JSON");
	assert_contains(g.err, where);
	assert_not_contains(g.err, "byte");
}

static void test_json_error_line_and_column(void **state)
{
	(void)state;
	assert_json_error_at("{\"a\": 1 \"b\": 2}", "(line 1, column 9)");
	assert_json_error_at("{\n  \"a\": 1,\n  \"b\": [1 2]\n}", "(line 3, column 11)");
	/* columns count characters, not bytes: "é" is two bytes */
	assert_json_error_at("{\n\"\xc3\xa9\": x}", "(line 2, column 6)");
	assert_json_error_at("{\r\n\"a\": 1,\r\n}", "(line 3, column 1)");
	assert_json_error_at("", "(line 1, column 1)");
}

/* ---- every problem at once (tsms_config_parse_all) ---- */

struct problems {
	char text[16][TSMS_CONFIG_ERR_MAX];
	size_t n;
};

static void collect(void *ctx, const char *problem)
{
	struct problems *p = ctx;

	assert_true(p->n < 16);
	snprintf(p->text[p->n++], TSMS_CONFIG_ERR_MAX, "%s", problem);
}

/* Parses json with every problem wanted; asserts none is accepted and the
 * first is the one in err. */
static void parse_all(const char *json, struct problems *p)
{
	struct guarded_err g;
	struct tsms_config *cfg;

	memset(p, 0, sizeof(*p));
	err_init(&g);
	cfg = tsms_config_parse_all(json, strlen(json), collect, p, g.err);
	assert_null(cfg);
	err_check(&g);
	assert_true(p->n > 0);
	assert_string_equal(g.err, p->text[0]);
}

static void assert_problem(const struct problems *p, const char *a, const char *b)
{
	for (size_t i = 0; i < p->n; i++) {
		if (strstr(p->text[i], a) != NULL && strstr(p->text[i], b) != NULL)
			return;
	}
	print_error("no problem has \"%s\" and \"%s\" among %zu:\n", a, b, p->n);
	for (size_t i = 0; i < p->n; i++)
		print_error("  %s\n", p->text[i]);
	fail();
}

static void test_every_problem_at_once(void **state)
{
	struct problems p;
	struct guarded_err g;
	const char *json = "{\"accountSID\":\"AC12\",\"authToken\":\"\","
			   "\"fromMessagingServiceSID\":\"" MG "\",\"codeLenght\":6,"
			   "\"codeLength\":99,\"failMode\":\"ajar\",\"stateDir\":\"rel\","
			   "\"templates\":[{\"usageType\":\"SignIn\",\"content\":\"hi\"}],"
			   "\"users\":{\"dave\":\"+15555550100\"}}";

	(void)state;
	parse_all(json, &p);
	assert_int_equal(p.n, 7);
	assert_problem(&p, "codeLenght", "fix:");
	assert_problem(&p, "accountSID", "fix:");
	assert_problem(&p, "authToken", "fix:");
	assert_problem(&p, "codeLength", "fix:");
	assert_problem(&p, "failMode", "fix:");
	assert_problem(&p, "stateDir", "fix:");
	assert_problem(&p, "{{code}}", "fix:");
	/* the module's parse stops at the first, the same one */
	assert_null(parse_str(json, &g));
	assert_string_equal(g.err, p.text[0]);
	/* a JSON error is the one problem: nothing else can be read */
	parse_all("{\"accountSID\": }", &p);
	assert_int_equal(p.n, 1);
	assert_problem(&p, "line 1, column 16", "fix:");
}

/* The example's placeholders, as conf/pam_twilio_sms.json ships them. */
static void test_example_placeholders_refused(void **state)
{
	struct problems p;

	(void)state;
	parse_all("{\"accountSID\":\"ACxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\","
	          "\"authToken\":\"replace-with-your-twilio-auth-token\","
	          "\"fromMessagingServiceSID\":"
	          "\"MGxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\"," SIGNIN_TEMPLATES "}",
	          &p);
	assert_int_equal(p.n, 3);
	assert_problem(&p, "accountSID is the example's placeholder", "Account SID");
	assert_problem(&p, "authToken is the example's placeholder", "Auth Token");
	assert_problem(&p, "fromMessagingServiceSID is the example's placeholder",
	               "Messaging Service");
	parse_all("{\"accountSID\":\"" AC "\",\"apiKeySID\":\"SKxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\","
	          "\"apiKeySecret\":\"x\",\"fromMessagingServiceSID\":\"" MG "\"," SIGNIN_TEMPLATES
	          "}",
	          &p);
	assert_problem(&p, "apiKeySID is the example's placeholder", "fix:");
	parse_all("{\"accountSID\":\"" AC "\",\"apiKeySID\":\"SK0123456789abcdef0123456789abcdef\","
	          "\"apiKeySecret\":\"replace-with-your-api-key-secret\","
	          "\"fromMessagingServiceSID\":\"" MG "\"," SIGNIN_TEMPLATES "}",
	          &p);
	assert_problem(&p, "apiKeySecret is the example's placeholder", "fix:");
	/* a real-looking token that merely mentions the word is a token */
	assert_accepts("{\"accountSID\":\"" AC "\",\"authToken\":\"my-replace-with-token\","
	               "\"fromMessagingServiceSID\":\"" MG "\"," SIGNIN_TEMPLATES "}");
}

/* A users entry kept with a problem is reported with the others, and alone it does
 * not refuse the config (the module refuses that user only). */
static void test_every_problem_with_a_bad_user(void **state)
{
	struct problems p;
	struct guarded_err g;
	struct tsms_config *cfg;
	const char *bad = ",\"users\":{\"alice\":\"+15555550006\",\"mallory\":\"2025550143\"}";
	char *json = config_with(SIGNIN_TEMPLATES, ",\"failMode\":\"ajar\"");
	char *both;

	(void)state;
	both = malloc(strlen(json) + strlen(bad) + 1);
	assert_non_null(both);
	snprintf(both, strlen(json) + strlen(bad) + 1, "%.*s%s}", (int)strlen(json) - 1, json, bad);
	parse_all(both, &p);
	assert_int_equal(p.n, 2);
	assert_problem(&p, "failMode", "fix:");
	assert_problem(&p, "users: user \"mallory\": the number has no leading +", "fix:");
	free(both);
	free(json);
	json = config_with(SIGNIN_TEMPLATES, bad);
	memset(&p, 0, sizeof(p));
	err_init(&g);
	cfg = tsms_config_parse_all(json, strlen(json), collect, &p, g.err);
	assert_non_null(cfg);
	assert_int_equal(p.n, 1);
	assert_problem(&p, "users: user \"mallory\"", "fix:");
	assert_string_equal(tsms_config_phone(cfg, "alice"), "+15555550006");
	tsms_config_free(cfg);
	free(json);
}

/* ---- refusals, each naming the offending key or user ---- */

static void assert_fixture_refused(const char *fixture, const char *name)
{
	struct guarded_err g;
	struct tsms_config *cfg = parse_fixture(fixture, &g);

	if (cfg != NULL) {
		tsms_config_free(cfg);
		print_error("%s accepted, expected a refusal naming \"%s\"\n", fixture, name);
		fail();
	}
	assert_true(g.err[0] != '\0');
	assert_contains(g.err, name);
}

static void test_refuse_unknown_key(void **state)
{
	(void)state;
	/* "failmode" is a typo of failMode: it must not silently stay closed/open */
	assert_fixture_refused("config-unknown-key.json", "failmode");
	assert_extra_refused(",\"smsProvider\":\"twilio\"", "smsProvider");
	assert_extra_refused(",\"AuthToken\":\"x\"", "AuthToken");
	assert_extra_refused(",\"codelength\":6", "codelength");
}

static void test_refuse_unknown_key_long_or_odd_name(void **state)
{
	char key[700];
	char extra[800];

	(void)state;
	memset(key, 'k', sizeof(key) - 1);
	key[sizeof(key) - 1] = '\0';
	snprintf(extra, sizeof(extra), ",\"%s\":1", key);
	/* the name may be truncated to fit err, but must be there */
	{
		char prefix[41];

		memcpy(prefix, key, 40);
		prefix[40] = '\0';
		assert_extra_refused(extra, prefix);
	}
	/* a key with a newline must not break err into two lines (checked by err_check) */
	assert_extra_refused(",\"fail\\nMode\":\"open\"", "fail");
}

static void test_refuse_missing_required(void **state)
{
	char *json;

	(void)state;
	assert_fixture_refused("config-missing-auth-token.json", "authToken");

	json = object_of("\"authToken\":\"" TOKEN "\",\"fromMessagingServiceSID\":\"" MG
	                 "\"," SIGNIN_TEMPLATES);
	assert_refuses(json, "accountSID");
	free(json);
	json = object_of("\"accountSID\":\"" AC "\",\"fromMessagingServiceSID\":\"" MG
	                 "\"," SIGNIN_TEMPLATES);
	assert_refuses(json, "authToken");
	free(json);
	json = object_of("\"accountSID\":\"" AC "\",\"authToken\":\"" TOKEN "\"," SIGNIN_TEMPLATES);
	assert_refuses(json, "fromMessagingServiceSID");
	free(json);
	json = object_of(REQUIRED_KEYS);
	assert_refuses(json, "templates");
	free(json);
}

static void test_refuse_bad_account_sid(void **state)
{
	static const char *const bad[] = {
		"AC0123456789abcdef0123456789abcde",   /* 31 hex */
		"AC0123456789abcdef0123456789abcdef0", /* 33 hex */
		"AC0123456789abcdef0123456789abcdeg",  /* not hex */
		"ac0123456789abcdef0123456789abcdef",  /* prefix case */
		"MG0123456789abcdef0123456789abcdef",  /* a service SID */
		" AC0123456789abcdef0123456789abcdef", "",
	};
	char *json;

	(void)state;
	assert_fixture_refused("config-bad-account-sid.json", "accountSID");
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		char members[512];

		snprintf(members, sizeof(members),
		         "\"accountSID\":\"%s\",\"authToken\":\"" TOKEN
		         "\",\"fromMessagingServiceSID\":\"" MG "\"," SIGNIN_TEMPLATES,
		         bad[i]);
		json = object_of(members);
		assert_refuses(json, "accountSID");
		free(json);
	}
	json = object_of("\"accountSID\":12345,\"authToken\":\"" TOKEN
	                 "\",\"fromMessagingServiceSID\":\"" MG "\"," SIGNIN_TEMPLATES);
	assert_refuses(json, "accountSID");
	free(json);
}

static void test_accept_uppercase_hex_sids(void **state)
{
	char *json;

	(void)state;
	/* Twilio's OpenAPI patterns are ^AC[0-9a-fA-F]{32}$ and ^MG[0-9a-fA-F]{32}$ */
	json = object_of(
		"\"accountSID\":\"AC0123456789ABCDEF0123456789ABCDEF\",\"authToken\":\"" TOKEN
		"\",\"fromMessagingServiceSID\":"
		"\"MGFEDCBA9876543210FEDCBA9876543210\"," SIGNIN_TEMPLATES);
	assert_accepts(json);
	free(json);
}

static void test_refuse_bad_mg_sid(void **state)
{
	static const char *const bad[] = {
		"MG0123456789abcdef0123456789abcde",
		"MG0123456789abcdef0123456789abcdef0",
		"MGzz23456789abcdef0123456789abcdef",
		"AC0123456789abcdef0123456789abcdef",
		"",
	};

	(void)state;
	assert_fixture_refused("config-bad-mg-sid.json", "fromMessagingServiceSID");
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		char members[512];
		char *json;

		snprintf(members, sizeof(members),
		         "\"accountSID\":\"" AC "\",\"authToken\":\"" TOKEN
		         "\",\"fromMessagingServiceSID\":\"%s\"," SIGNIN_TEMPLATES,
		         bad[i]);
		json = object_of(members);
		assert_refuses(json, "fromMessagingServiceSID");
		free(json);
	}
}

/* The entry of user in cfg: kept with its problem, which names user, says what is
 * wrong (why) and shows the E.164 form; no number. */
static void assert_bad_entry(const struct tsms_config *cfg, const char *user, const char *why)
{
	const struct tsms_user *u = tsms_config_user(cfg, user);

	assert_non_null(u);
	assert_non_null(u->problem);
	assert_string_equal(u->phone, "");
	assert_string_equal(tsms_config_phone(cfg, user), "");
	assert_contains(u->problem, user);
	assert_contains(u->problem, why);
	assert_contains(u->problem, "fix: ");
	assert_contains(u->problem, "+<country code><number>, e.g. +12025550143");
}

/* A bad number is its user's problem only: the config loads, the entry keeps
 * its problem, and the other users keep their numbers. */
static void test_bad_phone_kept_for_its_user(void **state)
{
	static const struct {
		const char *extra, *user, *why;
	} bad[] = {
		{ ",\"users\":{\"alice\":\"+15555550006\",\"zed\":\"+0123456789\"}", "zed",
		  "has a country code that starts with 0" },
		{ ",\"users\":{\"alice\":\"+15555550006\",\"yan\":\"123\"}", "yan",
		  "has no leading +" },
		{ ",\"users\":{\"alice\":\"+15555550006\",\"xi\":\"\"}", "xi", "is empty" },
		{ ",\"users\":{\"alice\":\"+15555550006\",\"wu\":15555550006}", "wu",
		  "is not a string; fix: put it in quotes and write it as" },
		{ ",\"users\":{\"alice\":\"+15555550006\",\"vic\":\"+1234567890123456\"}", "vic",
		  "is too long" },
		{ ",\"users\":{\"alice\":\"+15555550006\",\"una\":null}", "una",
		  "is not a string" },
	};
	struct guarded_err g;
	struct tsms_config *cfg;

	(void)state;
	cfg = parse_fixture("config-bad-phone.json", &g);
	if (cfg == NULL) {
		print_error("refused: %s\n", g.err);
		fail();
	}
	assert_bad_entry(cfg, "mallory", "has a letter");
	assert_string_equal(tsms_config_phone(cfg, "alice"), "+15555550006");
	assert_null(tsms_config_user(cfg, "alice")->problem);
	tsms_config_free(cfg);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		char *json = config_with(SIGNIN_TEMPLATES, bad[i].extra);

		cfg = parse_str(json, &g);
		if (cfg == NULL) {
			print_error("refused: %s\n  config: %.300s\n", g.err, json);
			fail();
		}
		assert_bad_entry(cfg, bad[i].user, bad[i].why);
		assert_string_equal(tsms_config_phone(cfg, "alice"), "+15555550006");
		tsms_config_free(cfg);
		free(json);
	}
}

/* A number written without its '+' is never given one: "2025550143" (a US
 * number) once became +20 25550143, Egypt. */
static void test_phone_without_plus_not_guessed(void **state)
{
	struct guarded_err g;
	struct tsms_config *cfg;

	(void)state;
	cfg = parse_fixture("config-phone-without-plus.json", &g);
	if (cfg == NULL) {
		print_error("refused: %s\n", g.err);
		fail();
	}
	assert_bad_entry(cfg, "alice", "users: user \"alice\": the number has no leading +");
	assert_string_equal(tsms_config_phone(cfg, "bob"), "+12025550188");
	assert_int_equal(cfg->n_users, 2);
	tsms_config_free(cfg);
}

/* The users object's structure stays all or nothing. */
static void test_refuse_bad_user_name(void **state)
{
	(void)state;
	/* a user name with a newline must not split err (err_check); it may be
	 * named sanitised or described */
	{
		char *json = config_with(SIGNIN_TEMPLATES, ",\"users\":{\"eve\\nroot\":\"bad\"}");

		assert_refuses_any(json, "eve", "users", NULL);
		free(json);
	}
	assert_extra_refused(",\"users\":{\"\":\"+15555550006\"}", "users");
}

static void test_refuse_users_not_object(void **state)
{
	(void)state;
	assert_extra_refused(",\"users\":[\"alice\"]", "users");
	assert_extra_refused(",\"users\":\"alice\"", "users");
}

static void test_accept_empty_users(void **state)
{
	(void)state;
	assert_extra_accepted(",\"users\":{}");
}

static void test_refuse_duplicate_key(void **state)
{
	(void)state;
	assert_fixture_refused("config-duplicate-key.json", "authToken");
	assert_extra_refused(",\"codeLength\":6,\"codeLength\":4", "codeLength");
}

static void test_refuse_duplicate_user(void **state)
{
	(void)state;
	assert_fixture_refused("config-duplicate-user.json", "alice");
}

static void test_refuse_duplicate_template_member(void **state)
{
	(void)state;
	assert_templates_refused("\"templates\":[{\"usageType\":\"SignIn\",\"content\":\"a "
	                         "{{code}}\",\"content\":\"b\"}]",
	                         "content");
}

static void test_refuse_http_base(void **state)
{
	(void)state;
	assert_fixture_refused("config-http-base.json", "apiBaseUrl");
	assert_extra_refused(",\"apiBaseUrl\":\"ftp://api.twilio.com\"", "apiBaseUrl");
	assert_extra_refused(",\"apiBaseUrl\":\"api.twilio.com\"", "apiBaseUrl");
	assert_extra_refused(",\"apiBaseUrl\":\"\"", "apiBaseUrl");
	assert_extra_refused(",\"apiBaseUrl\":443", "apiBaseUrl");
}

static void test_api_base_variants(void **state)
{
	struct guarded_err g;
	struct tsms_config *cfg;
	char *json;

	(void)state;
	assert_extra_accepted(",\"apiBaseUrl\":\"https://api.dublin.ie1.twilio.com\"");
	/* a trailing slash is either refused or dropped: the struct holds none */
	json = config_with(SIGNIN_TEMPLATES, ",\"apiBaseUrl\":\"https://127.0.0.1:8443/\"");
	cfg = parse_str(json, &g);
	if (cfg != NULL) {
		assert_string_equal(cfg->api_base_url, "https://127.0.0.1:8443");
		tsms_config_free(cfg);
	} else {
		assert_contains(g.err, "apiBaseUrl");
	}
	free(json);
}

static void test_fail_mode(void **state)
{
	struct guarded_err g;
	struct tsms_config *cfg;
	char *json;

	(void)state;
	assert_fixture_refused("config-bad-failmode.json", "failMode");
	assert_extra_refused(",\"failMode\":\"\"", "failMode");
	assert_extra_refused(",\"failMode\":true", "failMode");

	json = config_with(SIGNIN_TEMPLATES, ",\"failMode\":\"open\"");
	cfg = parse_str(json, &g);
	assert_non_null(cfg);
	assert_int_equal(cfg->fail_mode, TSMS_FAIL_OPEN);
	tsms_config_free(cfg);
	free(json);

	json = config_with(SIGNIN_TEMPLATES, ",\"failMode\":\"closed\"");
	cfg = parse_str(json, &g);
	assert_non_null(cfg);
	assert_int_equal(cfg->fail_mode, TSMS_FAIL_CLOSED);
	tsms_config_free(cfg);
	free(json);
}

static void test_disable_risk_check(void **state)
{
	struct guarded_err g;
	struct tsms_config *cfg;
	char *json;

	(void)state;
	json = config_with(SIGNIN_TEMPLATES, ",\"disableRiskCheck\":true");
	cfg = parse_str(json, &g);
	assert_non_null(cfg);
	assert_true(cfg->disable_risk_check);
	tsms_config_free(cfg);
	free(json);

	json = config_with(SIGNIN_TEMPLATES, ",\"disableRiskCheck\":false");
	cfg = parse_str(json, &g);
	assert_non_null(cfg);
	assert_false(cfg->disable_risk_check);
	tsms_config_free(cfg);
	free(json);

	assert_extra_refused(",\"disableRiskCheck\":\"true\"", "disableRiskCheck");
}

static void test_ca_file(void **state)
{
	(void)state;
	assert_extra_refused(",\"caFile\":1", "caFile");
}

/* One numeric option: the boundaries in range are stored, the ones outside
 * and wrong types are refused naming the key. */
struct range_case {
	const char *key;
	long lo, hi;
	size_t offset;
};

static unsigned field_of(const struct tsms_config *cfg, size_t offset)
{
	return *(const unsigned *)(const void *)((const char *)cfg + offset);
}

static void check_range(const struct range_case *rc)
{
	/* wrong types and values that only a cast would bring into range */
	static const char *const odd[] = { "\"6\"", "6.5", "true", "4294967302", "1e300", "[6]" };
	const long ok[] = { rc->lo, rc->hi };
	const long bad[] = { rc->lo - 1, rc->hi + 1, -1, 0 };
	char extra[128];

	for (size_t i = 0; i < 2; i++) {
		struct guarded_err g;
		struct tsms_config *cfg;
		char *json;

		snprintf(extra, sizeof(extra), ",\"%s\":%ld", rc->key, ok[i]);
		json = config_with(SIGNIN_TEMPLATES, extra);
		cfg = parse_str(json, &g);
		if (cfg == NULL) {
			print_error("%s=%ld refused: %s\n", rc->key, ok[i], g.err);
			fail();
		}
		assert_int_equal(field_of(cfg, rc->offset), (unsigned)ok[i]);
		tsms_config_free(cfg);
		free(json);
	}
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		if (bad[i] >= rc->lo && bad[i] <= rc->hi)
			continue;
		snprintf(extra, sizeof(extra), ",\"%s\":%ld", rc->key, bad[i]);
		assert_extra_refused(extra, rc->key);
	}
	for (size_t i = 0; i < sizeof(odd) / sizeof(odd[0]); i++) {
		snprintf(extra, sizeof(extra), ",\"%s\":%s", rc->key, odd[i]);
		assert_extra_refused(extra, rc->key);
	}
}

static void test_range_code_length(void **state)
{
	const struct range_case rc = { "codeLength", 4, 10,
		                       offsetof(struct tsms_config, code_length) };

	(void)state;
	assert_fixture_refused("config-range-codelength.json", "codeLength");
	check_range(&rc);
}

static void test_range_code_ttl(void **state)
{
	const struct range_case rc = { "codeTtlSeconds", 1, 3600,
		                       offsetof(struct tsms_config, code_ttl_seconds) };

	(void)state;
	check_range(&rc);
}

static void test_range_max_attempts(void **state)
{
	const struct range_case rc = { "maxAttempts", 1, 10,
		                       offsetof(struct tsms_config, max_attempts) };

	(void)state;
	check_range(&rc);
}

static void test_range_timeout(void **state)
{
	const struct range_case rc = { "timeoutSeconds", 1, 60,
		                       offsetof(struct tsms_config, timeout_seconds) };

	(void)state;
	check_range(&rc);
}

static void test_range_abuse_keys(void **state)
{
	const struct range_case cases[] = {
		{ "maxRetries", 0, 5, offsetof(struct tsms_config, max_retries) },
		{ "sendLimit", 1, 1000, offsetof(struct tsms_config, send_limit) },
		{ "sendWindowSeconds", 1, 86400,
		  offsetof(struct tsms_config, send_window_seconds) },
		{ "resendCooldownSeconds", 0, 3600,
		  offsetof(struct tsms_config, resend_cooldown_seconds) },
		{ "globalSendLimit", 0, 1000000, offsetof(struct tsms_config, global_send_limit) },
		{ "maxResends", 0, 5, offsetof(struct tsms_config, max_resends) },
		{ "lockoutThreshold", 1, 1000, offsetof(struct tsms_config, lockout_threshold) },
		{ "lockoutSeconds", 1, 86400, offsetof(struct tsms_config, lockout_seconds) },
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		check_range(&cases[i]);
}

static void test_refuse_bad_country_codes(void **state)
{
	static const char *const bad[] = {
		"\"+1\"",             /* not an array */
		"{\"+1\":true}",      /* not an array */
		"1",                  /* not an array */
		"null",               /* not an array */
		"[]",                 /* empty */
		"[\"1\"]",            /* no '+' */
		"[\"+0\"]",           /* no country code starts with 0 */
		"[\"+012\"]",         /* no country code starts with 0 */
		"[\"+12345\"]",       /* five digits */
		"[\"+\"]",            /* no digits */
		"[\"\"]",             /* empty string */
		"[\"+1a\"]",          /* not a digit */
		"[\" +1\"]",          /* white space */
		"[\"+1 \"]",          /* white space */
		"[\"++1\"]",          /* two '+' */
		"[1]",                /* not a string */
		"[\"+1\",44]",        /* one is not a string */
		"[\"+1\",null]",      /* one is not a string */
		"[[\"+1\"]]",         /* nested */
		"[\"+1\",\"+1\\n\"]", /* control character */
	};
	char extra[128];

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		snprintf(extra, sizeof(extra), ",\"allowedCountryCodes\":%s", bad[i]);
		assert_extra_refused(extra, "allowedCountryCodes");
	}
}

/* Parses a config with extra members; the test fails when it is refused. */
static struct tsms_config *parse_extra(const char *extra)
{
	char *json = config_with(SIGNIN_TEMPLATES, extra);
	struct guarded_err g;
	struct tsms_config *cfg = parse_str(json, &g);

	if (cfg == NULL) {
		print_error("refused: %s\n  config: %.300s\n", g.err, json);
		free(json);
		fail();
	}
	free(json);
	return cfg;
}

static void test_country_codes(void **state)
{
	struct tsms_config *cfg;

	(void)state;
	cfg = parse_extra(",\"allowedCountryCodes\":[\"+1\",\"+44\"]");
	assert_int_equal(cfg->n_country_codes, 2);
	assert_true(tsms_config_country_allowed(cfg, "+15555550006"));
	assert_true(tsms_config_country_allowed(cfg, "+447700900123"));
	assert_false(tsms_config_country_allowed(cfg, "+33612345678"));
	assert_false(tsms_config_country_allowed(cfg, "+4915112345678"));
	assert_false(tsms_config_country_allowed(cfg, "+4"));
	assert_false(tsms_config_country_allowed(cfg, "15555550006"));
	assert_false(tsms_config_country_allowed(cfg, ""));
	tsms_config_free(cfg);

	/* the boundaries: one and four digits */
	cfg = parse_extra(",\"allowedCountryCodes\":[\"+9999\",\"+7\"]");
	assert_int_equal(cfg->n_country_codes, 2);
	assert_string_equal(cfg->country_codes[0], "+9999");
	assert_true(tsms_config_country_allowed(cfg, "+99991234567"));
	assert_false(tsms_config_country_allowed(cfg, "+99981234567"));
	assert_true(tsms_config_country_allowed(cfg, "+79161234567"));
	assert_false(tsms_config_country_allowed(cfg, "+15555550006"));
	tsms_config_free(cfg);

	/* a longer code is a prefix like any other */
	cfg = parse_extra(",\"allowedCountryCodes\":[\"+353\"]");
	assert_true(tsms_config_country_allowed(cfg, "+353871234567"));
	assert_false(tsms_config_country_allowed(cfg, "+35812345678"));
	assert_false(tsms_config_country_allowed(cfg, "+35"));
	tsms_config_free(cfg);

	/* absent: every country */
	cfg = parse_extra("");
	assert_null(cfg->country_codes);
	assert_true(tsms_config_country_allowed(cfg, "+15555550006"));
	assert_true(tsms_config_country_allowed(cfg, "+33612345678"));
	assert_true(tsms_config_country_allowed(cfg, "+99991234567"));
	tsms_config_free(cfg);
}

static void test_state_dir(void **state)
{
	static const char *const bad[] = {
		"\"var/lib/pam_twilio_sms\"",
		"\"./state\"",
		"\"../state\"",
		"\"~/state\"",
		"\"\"",
		"\" /var/lib/pam_twilio_sms\"",
		"\"/var/lib/tsms\\n\"",
		"5",
		"true",
		"null",
		"[\"/var/lib/pam_twilio_sms\"]",
	};
	struct tsms_config *cfg;
	char extra[128];

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		snprintf(extra, sizeof(extra), ",\"stateDir\":%s", bad[i]);
		assert_extra_refused(extra, "stateDir");
	}
	cfg = parse_extra(",\"stateDir\":\"/run/tsms\"");
	assert_string_equal(cfg->state_dir, "/run/tsms");
	tsms_config_free(cfg);
}

static void test_refuse_malformed(void **state)
{
	static const char *const bad[] = {
		"",
		"{",
		"}",
		"[]",
		"null",
		"\"config\"",
		"42",
		"{\"accountSID\":}",
		"{\"accountSID\":\"" AC "\",}",
	};
	struct guarded_err g;

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct tsms_config *cfg = parse_str(bad[i], &g);

		if (cfg != NULL) {
			tsms_config_free(cfg);
			print_error("accepted malformed config \"%s\"\n", bad[i]);
			fail();
		}
		assert_true(g.err[0] != '\0');
	}
	assert_null(parse_fixture("config-malformed.json", &g));
	assert_true(g.err[0] != '\0');
}

static void test_refuse_bad_templates(void **state)
{
	(void)state;
	assert_templates_refused("\"templates\":{}", "templates");
	assert_templates_refused("\"templates\":\"{{code}}\"", "templates");
	assert_templates_refused("\"templates\":[\"{{code}}\"]", "templates");
	assert_templates_refused("\"templates\":[{\"usageType\":\"SignIn\"}]", "content");
	assert_templates_refused("\"templates\":[{\"content\":\"{{code}}\"}]", "usageType");
	assert_templates_refused("\"templates\":[{\"usageType\":\"SignIn\",\"content\":5}]",
	                         "content");
	assert_templates_refused("\"templates\":[{\"usageType\":5,\"content\":\"{{code}}\"}]",
	                         "usageType");
}

static void test_refuse_unknown_usage_type(void **state)
{
	struct guarded_err g;
	struct tsms_config *cfg;

	(void)state;
	cfg = parse_fixture("config-bad-usage-type.json", &g);
	if (cfg != NULL) {
		tsms_config_free(cfg);
		print_error("usageType \"Login\" accepted\n");
		fail();
	}
	if (strstr(g.err, "Login") == NULL && strstr(g.err, "usageType") == NULL) {
		print_error("err names neither usageType nor Login: %s\n", g.err);
		fail();
	}
}

/* ---- which template is used ---- */

static void test_refuse_missing_signin_without_generic(void **state)
{
	(void)state;
	/* nothing to send with: a config error, not a surprise at login time */
	assert_fixture_refused("config-missing-signin.json", "SignIn");
	{
		char *json = config_with("\"templates\":[]", "");

		assert_refuses_any(json, "SignIn", "templates", NULL);
		free(json);
	}
}

static void test_signin_falls_back_to_generic(void **state)
{
	struct guarded_err g;
	struct tsms_config *cfg;
	const struct tsms_template *t;

	(void)state;
	cfg = parse_fixture("config-missing-signin-generic.json", &g);
	if (cfg == NULL) {
		print_error("refused: %s\n", g.err);
		fail();
	}
	t = tsms_config_template(cfg, "SignIn");
	assert_non_null(t);
	assert_string_equal(t->usage, "Generic");
	assert_string_equal(t->content, "Your verification code is {{code}}");
	t = tsms_config_template(cfg, "Register");
	assert_non_null(t);
	assert_string_equal(t->content, "Your registration code is {{code}}");
	t = tsms_config_template(cfg, "BindMfa");
	assert_non_null(t);
	assert_string_equal(t->usage, "Generic");
	tsms_config_free(cfg);
}

static void test_template_lookup_without_generic(void **state)
{
	struct guarded_err g;
	struct tsms_config *cfg;
	const struct tsms_template *t;

	(void)state;
	cfg = parse_fixture("config-valid-logto.json", &g);
	assert_non_null(cfg);
	t = tsms_config_template(cfg, "SignIn");
	assert_non_null(t);
	assert_string_equal(t->usage, "SignIn");
	assert_string_equal(t->content, "Your sign-in code is {{code}}");
	t = tsms_config_template(cfg, "Test");
	assert_non_null(t);
	assert_string_equal(t->content, "Your test code is {{code}}");
	assert_null(tsms_config_template(cfg, "Generic"));
	assert_null(tsms_config_template(cfg, "ForgotPassword"));
	assert_null(tsms_config_template(cfg, "signin"));
	assert_null(tsms_config_template(cfg, "Sign"));
	tsms_config_free(cfg);
}

static void test_template_signin_preferred_over_generic(void **state)
{
	struct guarded_err g;
	struct tsms_config *cfg;
	const struct tsms_template *t;
	char *json;

	(void)state;
	json = config_with("\"templates\":[{\"usageType\":\"Generic\",\"content\":\"G {{code}}\"},"
	                   "{\"usageType\":\"SignIn\",\"content\":\"S {{code}}\"}]",
	                   "");
	cfg = parse_str(json, &g);
	assert_non_null(cfg);
	t = tsms_config_template(cfg, "SignIn");
	assert_non_null(t);
	assert_string_equal(t->content, "S {{code}}");
	t = tsms_config_template(cfg, "Register");
	assert_non_null(t);
	assert_string_equal(t->content, "G {{code}}");
	tsms_config_free(cfg);
	free(json);
}

static void test_refuse_no_placeholder(void **state)
{
	struct guarded_err g;
	struct tsms_config *cfg;

	(void)state;
	cfg = parse_fixture("config-no-placeholder.json", &g);
	if (cfg != NULL) {
		tsms_config_free(cfg);
		print_error("SignIn template without {{code}} accepted\n");
		fail();
	}
	if (strstr(g.err, "{{code}}") == NULL && strstr(g.err, "SignIn") == NULL) {
		print_error("err names neither SignIn nor {{code}}: %s\n", g.err);
		fail();
	}
	/* the Generic fallback is the used template: it needs the placeholder too */
	assert_templates_refused(
		"\"templates\":[{\"usageType\":\"Generic\",\"content\":\"no code\"}]", NULL);
}

static void test_accept_spaced_placeholder(void **state)
{
	char *json;

	(void)state;
	json = config_with(
		"\"templates\":[{\"usageType\":\"SignIn\",\"content\":\"{{ code }} is it\"}]", "");
	assert_accepts(json);
	free(json);
}

/* A config whose only (SignIn) template is prefix + repeat * unit + placeholder. */
static char *long_template_config(const char *unit, size_t repeat, const char *placeholders,
                                  const char *extra)
{
	size_t n = strlen(unit) * repeat + strlen(placeholders) + 128;
	char *templates = malloc(n);
	char *json;
	size_t off;

	assert_non_null(templates);
	off = (size_t)snprintf(templates, n,
	                       "\"templates\":[{\"usageType\":\"SignIn\",\"content\":\"");
	for (size_t i = 0; i < repeat; i++) {
		memcpy(templates + off, unit, strlen(unit));
		off += strlen(unit);
	}
	snprintf(templates + off, n - off, "%s\"}]", placeholders);
	json = config_with(templates, extra);
	free(templates);
	return json;
}

static void test_body_length_limit(void **state)
{
	char *json;

	(void)state;
	{
		size_t len = 0;
		char *fx = fixture_read("config-body-too-long.json", &len);

		fx[len] = '\0';
		assert_refuses_any(fx, "SignIn", "1600", "template");
		free(fx);
	}

	/* 1594 + a 6-digit code = 1600: the limit itself is fine */
	json = long_template_config("x", 1594, "{{code}}", "");
	assert_accepts(json);
	free(json);
	json = long_template_config("x", 1595, "{{code}}", "");
	assert_refuses_any(json, "SignIn", "1600", "template");
	free(json);
	/* the placeholder's spaces are not part of the body */
	json = long_template_config("x", 1594, "{{   code   }}", "");
	assert_accepts(json);
	free(json);
	/* characters, not bytes: 1594 two-byte letters still make 1600 characters */
	json = long_template_config("é", 1594, "{{code}}", "");
	assert_accepts(json);
	free(json);
	json = long_template_config("验", 1595, "{{code}}", "");
	assert_refuses(json, NULL);
	free(json);
	/* the code length counts */
	json = long_template_config("x", 1590, "{{code}}", ",\"codeLength\":10");
	assert_accepts(json);
	free(json);
	json = long_template_config("x", 1594, "{{code}}", ",\"codeLength\":7");
	assert_refuses(json, NULL);
	free(json);
	/* every occurrence counts: 1582 + 3 x 6 = 1600, 1583 + 18 = 1601 */
	json = long_template_config("x", 1582, "{{code}}{{code}}{{ code }}", "");
	assert_accepts(json);
	free(json);
	json = long_template_config("x", 1583, "{{code}}{{code}}{{ code }}", "");
	assert_refuses(json, NULL);
	free(json);
}

/* ---- phone lookup ---- */

static void test_phone_lookup(void **state)
{
	struct guarded_err g;
	struct tsms_config *cfg;

	(void)state;
	cfg = parse_fixture("config-valid-logto.json", &g);
	assert_non_null(cfg);
	assert_string_equal(tsms_config_phone(cfg, "alice"), "+15555550006");
	/* normalised at parse time: spaces and dashes dropped */
	assert_string_equal(tsms_config_phone(cfg, "bob"), "+15555550007");
	assert_string_equal(tsms_config_phone(cfg, "carol"), "+15555550008");
	assert_null(tsms_config_phone(cfg, "eve"));
	assert_null(tsms_config_phone(cfg, "Alice"));
	assert_null(tsms_config_phone(cfg, "ali"));
	assert_null(tsms_config_phone(cfg, "alice2"));
	assert_null(tsms_config_phone(cfg, "alice "));
	assert_null(tsms_config_phone(cfg, ""));
	tsms_config_free(cfg);
}

static void test_free_null(void **state)
{
	(void)state;
	tsms_config_free(NULL);
}

/* ---- tsms_config_load: the file checks ---- */

struct load_dir {
	char path[64];
};

static int load_setup(void **state)
{
	struct load_dir *d = calloc(1, sizeof(*d));

	if (d == NULL)
		return -1;
	snprintf(d->path, sizeof(d->path), "/tmp/tsms-unit-config-XXXXXX");
	if (mkdtemp(d->path) == NULL) {
		free(d);
		return -1;
	}
	*state = d;
	return 0;
}

static int load_teardown(void **state)
{
	struct load_dir *d = *state;

	if (d != NULL) {
		unit_remove_tree(d->path);
		free(d);
	}
	return 0;
}

static void require_root(void)
{
	if (geteuid() != 0) {
		print_message("skipped: needs root (file ownership)\n");
		skip();
	}
}

/* Writes content to dir/name with mode and owner; returns the path (static). */
static const char *make_config_file(const struct load_dir *d, const char *name, const char *content,
                                    size_t len, mode_t mode, uid_t uid, gid_t gid)
{
	static char path[256];
	int fd;

	snprintf(path, sizeof(path), "%s/%s", d->path, name);
	unlink(path);
	fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0600);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, content, len), (ssize_t)len);
	assert_int_equal(fchown(fd, uid, gid), 0);
	assert_int_equal(fchmod(fd, mode), 0);
	close(fd);
	return path;
}

static const char *make_valid_file(const struct load_dir *d, const char *name, mode_t mode,
                                   uid_t uid, gid_t gid)
{
	size_t len = 0;
	char *json = fixture_read("config-valid-logto.json", &len);
	const char *path = make_config_file(d, name, json, len, mode, uid, gid);

	free(json);
	return path;
}

static void assert_load_refused(const char *path)
{
	struct guarded_err g;
	struct tsms_config *cfg;

	err_init(&g);
	cfg = tsms_config_load(path, g.err);
	if (cfg != NULL) {
		tsms_config_free(cfg);
		print_error("tsms_config_load(%s) accepted it\n", path);
		fail();
	}
	err_check(&g);
	assert_contains(g.err, path);
}

static void assert_load_accepted(const char *path)
{
	struct guarded_err g;
	struct tsms_config *cfg;

	err_init(&g);
	cfg = tsms_config_load(path, g.err);
	if (cfg == NULL) {
		print_error("tsms_config_load(%s) refused: %s\n", path, g.err);
		fail();
	}
	assert_string_equal(cfg->account_sid, AC);
	assert_string_equal(cfg->auth_token, TOKEN);
	assert_string_equal(tsms_config_phone(cfg, "bob"), "+15555550007");
	tsms_config_free(cfg);
}

static void test_load_mode_0600_accepted(void **state)
{
	require_root();
	assert_load_accepted(make_valid_file(*state, "ok.json", 0600, 0, 0));
	assert_load_accepted(make_valid_file(*state, "ro.json", 0400, 0, 0));
}

static void test_load_group_other_bits_refused(void **state)
{
	static const mode_t modes[] = {
		0644, 0640, 0604, 0660, 0620, 0610, 0602, 0601, 0666, 0606
	};
	char name[32];

	require_root();
	for (size_t i = 0; i < sizeof(modes) / sizeof(modes[0]); i++) {
		snprintf(name, sizeof(name), "mode-%04o.json", (unsigned)modes[i]);
		assert_load_refused(make_valid_file(*state, name, modes[i], 0, 0));
	}
}

static void test_load_symlink_refused(void **state)
{
	const struct load_dir *d = *state;
	char target[256], link[256];

	require_root();
	snprintf(target, sizeof(target), "%s", make_valid_file(d, "target.json", 0600, 0, 0));
	assert_load_accepted(target);
	snprintf(link, sizeof(link), "%s/link.json", d->path);
	unlink(link);
	assert_int_equal(symlink(target, link), 0);
	assert_load_refused(link);
}

static void test_load_directory_refused(void **state)
{
	const struct load_dir *d = *state;
	char dir[256];

	snprintf(dir, sizeof(dir), "%s/a-directory.json", d->path);
	assert_int_equal(mkdir(dir, 0700), 0);
	assert_load_refused(dir);
}

static void test_load_missing_refused(void **state)
{
	const struct load_dir *d = *state;
	char path[256];

	snprintf(path, sizeof(path), "%s/does-not-exist.json", d->path);
	assert_load_refused(path);
}

static void test_load_not_root_owned_refused(void **state)
{
	require_root();
	assert_load_refused(make_valid_file(*state, "nobody.json", 0600, 65534, 0));
	assert_load_refused(make_valid_file(*state, "nobody-ro.json", 0400, 65534, 65534));
}

static void test_load_root_owned_other_group_accepted(void **state)
{
	require_root();
	/* no group permission bits: the group does not matter */
	assert_load_accepted(make_valid_file(*state, "group.json", 0600, 0, 65534));
}

static void test_load_fifo_refused_without_hanging(void **state)
{
	const struct load_dir *d = *state;
	char path[256];
	pid_t pid;
	int status = 0;
	struct timespec nap = { 0, 50 * 1000 * 1000 };

	snprintf(path, sizeof(path), "%s/fifo.json", d->path);
	assert_int_equal(mkfifo(path, 0600), 0);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		char err[TSMS_CONFIG_ERR_MAX];
		struct tsms_config *cfg;

		alarm(20);
		cfg = tsms_config_load(path, err);
		_exit(cfg == NULL && strstr(err, path) != NULL ? 0 : 1);
	}
	for (int i = 0; i < 100; i++) { /* 5 seconds */
		if (waitpid(pid, &status, WNOHANG) == pid)
			break;
		nanosleep(&nap, NULL);
		if (i == 99) {
			kill(pid, SIGKILL);
			waitpid(pid, &status, 0);
			print_error("tsms_config_load(%s) hung on a FIFO\n", path);
			fail();
		}
	}
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
}

static void test_load_too_big_refused(void **state)
{
	size_t len = 0;
	size_t big = TSMS_CONFIG_MAX_BYTES + 1024;
	char *json;
	char *buf;

	require_root();
	json = fixture_read("config-valid-logto.json", &len);
	buf = malloc(big);
	assert_non_null(buf);
	/* a valid config padded with white space beyond the limit */
	memset(buf, ' ', big);
	memcpy(buf, json, len);
	assert_load_refused(make_config_file(*state, "big.json", buf, big, 0600, 0, 0));
	free(buf);
	free(json);
}

static void test_load_parse_error_names_path_and_key(void **state)
{
	size_t len = 0;
	char *json;
	const char *path;
	struct guarded_err g;

	require_root();
	json = fixture_read("config-unknown-key.json", &len);
	path = make_config_file(*state, "typo.json", json, len, 0600, 0, 0);
	free(json);
	err_init(&g);
	assert_null(tsms_config_load(path, g.err));
	err_check(&g);
	assert_contains(g.err, path);
	assert_contains(g.err, "failmode");

	json = fixture_read("config-malformed.json", &len);
	assert_load_refused(make_config_file(*state, "malformed.json", json, len, 0600, 0, 0));
	free(json);
	assert_load_refused(make_config_file(*state, "empty.json", "", 0, 0600, 0, 0));
}

static void test_host_key(void **state)
{
	static const char *const good[][2] = {
		{ "api.twilio.com", "https://api.twilio.com" },
		{ "api.dublin.ie1.twilio.com", "https://api.dublin.ie1.twilio.com" },
		{ "API.Sydney.AU1.Twilio.COM", "https://api.sydney.au1.twilio.com" },
		{ "api.a-b.twilio.com", "https://api.a-b.twilio.com" },
	};
	static const char *const bad[] = {
		"https://api.twilio.com",
		"api.twilio.com:443",
		"api.twilio.com/2010-04-01",
		"evil.com",
		"api.twilio.com.evil.com",
		"apix.twilio.com",
		"api.-dublin.twilio.com",
		"api.dublin-.twilio.com",
		"api..twilio.com",
		"api.twilio.co",
		"",
		" api.twilio.com",
	};
	char extra[600];
	struct tsms_config *cfg;

	(void)state;
	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		snprintf(extra, sizeof(extra), ",\"host\":\"%s\"", good[i][0]);
		cfg = parse_extra(extra);
		assert_string_equal(cfg->api_base_url, good[i][1]);
		tsms_config_free(cfg);
	}
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		snprintf(extra, sizeof(extra), ",\"host\":\"%s\"", bad[i]);
		assert_extra_refused(extra, "host");
		assert_extra_refused(extra, "must match ^api(");
	}
	/* a label of 63 characters is a hostname, 64 is not */
	snprintf(extra, sizeof(extra), ",\"host\":\"api.%063d.twilio.com\"", 0);
	tsms_config_free(parse_extra(extra));
	snprintf(extra, sizeof(extra), ",\"host\":\"api.%064d.twilio.com\"", 0);
	assert_extra_refused(extra, "host");
	/* at most 253 characters: 4 labels of 63 make 266 */
	snprintf(extra, sizeof(extra), ",\"host\":\"api.");
	for (int i = 0; i < 4; i++)
		snprintf(extra + strlen(extra), sizeof(extra) - strlen(extra), "%063d.", i);
	snprintf(extra + strlen(extra), sizeof(extra) - strlen(extra), "twilio.com\"");
	assert_extra_refused(extra, "253");
	assert_extra_refused(",\"host\":\"api.dublin.ie1.twilio.com\",\"apiBaseUrl\":"
	                     "\"https://api.twilio.com\"",
	                     "host and apiBaseUrl");
	assert_extra_refused(",\"host\":443", "host must be a string");
}

#define SK "SK0123456789abcdef0123456789abcdef"
#define NO_TOKEN \
	"\"accountSID\":\"" AC "\",\"fromMessagingServiceSID\":\"" MG "\"," SIGNIN_TEMPLATES

/* {accountSID, fromMessagingServiceSID, templates} + members */
static char *without_token(const char *members)
{
	size_t n = strlen(NO_TOKEN) + strlen(members) + 4;
	char *s = malloc(n);

	assert_non_null(s);
	snprintf(s, n, "{" NO_TOKEN "%s}", members);
	return s;
}

static void assert_credentials_refused(const char *members, const char *name, const char *name2)
{
	char *json = without_token(members);
	struct guarded_err g;
	struct tsms_config *cfg = parse_str(json, &g);

	free(json);
	if (cfg != NULL) {
		tsms_config_free(cfg);
		print_error("accepted credentials %s\n", members);
		fail();
	}
	assert_contains(g.err, name);
	if (name2 != NULL)
		assert_contains(g.err, name2);
	assert_not_contains(g.err, "key-secret-value");
}

static void test_api_key_credentials(void **state)
{
	struct guarded_err g;
	struct tsms_config *cfg;
	char *json;

	(void)state;
	json = without_token(",\"apiKeySID\":\"" SK "\",\"apiKeySecret\":\"key-secret-value\"");
	cfg = parse_str(json, &g);
	free(json);
	assert_non_null(cfg);
	assert_null(cfg->auth_token);
	assert_string_equal(tsms_config_basic_user(cfg), SK);
	assert_string_equal(tsms_config_secret(cfg), "key-secret-value");
	assert_string_equal(cfg->account_sid, AC);
	tsms_config_free(cfg);
	/* the auth token as before */
	cfg = parse_extra("");
	assert_string_equal(tsms_config_basic_user(cfg), AC);
	assert_string_equal(tsms_config_secret(cfg), TOKEN);
	tsms_config_free(cfg);

	assert_credentials_refused(",\"authToken\":\"" TOKEN "\",\"apiKeySID\":\"" SK
	                           "\",\"apiKeySecret\":\"key-secret-value\"",
	                           "authToken", "apiKeySID");
	assert_credentials_refused(",\"authToken\":\"" TOKEN
	                           "\",\"apiKeySecret\":\"key-secret-value\"",
	                           "authToken", "apiKeySecret");
	assert_credentials_refused("", "authToken", "apiKeySID");
	assert_credentials_refused(",\"apiKeySID\":\"" SK "\"", "apiKeySID", "apiKeySecret");
	assert_credentials_refused(",\"apiKeySecret\":\"key-secret-value\"", "apiKeySecret",
	                           "apiKeySID");
	assert_credentials_refused(",\"apiKeySID\":\"AC0123456789abcdef0123456789abcdef\","
	                           "\"apiKeySecret\":\"key-secret-value\"",
	                           "apiKeySID", "\"SK\" and 32 hex digits");
	assert_credentials_refused(
		",\"apiKeySID\":\"SK0123\",\"apiKeySecret\":\"key-secret-value\"", "apiKeySID",
		NULL);
	assert_credentials_refused(",\"apiKeySID\":\"" SK "\",\"apiKeySecret\":\"\"",
	                           "apiKeySecret", NULL);
	assert_credentials_refused(",\"apiKeySID\":\"" SK "\",\"apiKeySecret\":\"a\\nb\"",
	                           "apiKeySecret", NULL);
}

static void test_ldap_section(void **state)
{
	static const char *const refused[][2] = {
		{ "[]", "ldap must be an object" },
		{ "{\"baseDN\":\"dc=x\"}", "ldap.uri is missing" },
		{ "{\"uri\":\"ldaps://h\"}", "ldap.baseDN is missing" },
		{ "{\"uri\":\"ldaps://h\",\"baseDN\":\"dc=x\",\"port\":1}",
		  "unknown key \"port\"" },
		{ "{\"uri\":\"http://h\",\"baseDN\":\"dc=x\"}", "cannot parse" },
		{ "{\"uri\":\"URL:ldaps://h\",\"baseDN\":\"dc=x\"}", "does not start with" },
		{ "{\"uri\":\"ldaps://a ldap://b\",\"baseDN\":\"dc=x\"}", "mixes" },
		{ "{\"uri\":\"ldaps://h/dc=x??sub\",\"baseDN\":\"dc=x\"}", "with a DN" },
		{ "{\"uri\":\"ldap://h\",\"startTLS\":false,\"baseDN\":\"dc=x\"}", "plain text" },
		{ "{\"uri\":\"ldaps://h\",\"startTLS\":true,\"baseDN\":\"dc=x\"}",
		  "only for ldap://" },
		{ "{\"uri\":\"ldaps://h\",\"startTLS\":\"yes\",\"baseDN\":\"dc=x\"}",
		  "true or false" },
		{ "{\"uri\":\"ldaps://h\",\"baseDN\":\"dc=x\",\"bindDN\":\"cn=r\"}",
		  "without ldap.bindPassword" },
		{ "{\"uri\":\"ldaps://h\",\"baseDN\":\"dc=x\",\"bindPassword\":\"pw-secret\"}",
		  "without ldap.bindDN" },
		{ "{\"uri\":\"ldaps://h\",\"baseDN\":\"dc=x\",\"filter\":\"uid=%u\"}",
		  "ldap.filter" },
		{ "{\"uri\":\"ldaps://h\",\"baseDN\":\"dc=x\",\"filter\":\"(uid=alice)\"}",
		  "ldap.filter" },
		{ "{\"uri\":\"ldaps://h\",\"baseDN\":\"dc=x\",\"filter\":\"(uid=%s)\"}",
		  "%s without %d and there is no ldap.domains" },
		{ "{\"uri\":\"ldaps://h\",\"baseDN\":\"dc=x\",\"filter\":\"(uid=%x)\"}",
		  "not %u, %s or %d" },
		{ "{\"uri\":\"ldaps://h\",\"baseDN\":\"dc=x\",\"filter\":\"(uid=%%u)\"}",
		  "not %u, %s or %d" },
		{ "{\"uri\":\"ldaps://h\",\"baseDN\":\"dc=x\",\"filter\":\"(dc=%d)\"}",
		  "neither %u nor %s" },
		{ "{\"uri\":\"ldaps://h\",\"baseDN\":\"dc=x\",\"domains\":[]}", "1 to 16" },
		{ "{\"uri\":\"ldaps://h\",\"baseDN\":\"dc=x\",\"domains\":\"CORP\"}",
		  "list of 1 to 16" },
		{ "{\"uri\":\"ldaps://h\",\"baseDN\":\"dc=x\",\"domains\":[\"CORP\",1]}",
		  "not a domain name" },
		{ "{\"uri\":\"ldaps://h\",\"baseDN\":\"dc=x\",\"domains\":[\"\"]}",
		  "not a domain name" },
		{ "{\"uri\":\"ldaps://h\",\"baseDN\":\"dc=x\",\"domains\":[\"a@b\"]}",
		  "not a domain name" },
		{ "{\"uri\":\"ldaps://h\",\"baseDN\":\"dc=x\",\"domains\":[\"A\\\\B\"]}",
		  "not a domain name" },
		{ "{\"uri\":\"ldaps://h\",\"baseDN\":\"dc=x\",\"attribute\":\"mo bile\"}",
		  "ldap.attribute" },
		{ "{\"uri\":\"ldaps://h\",\"baseDN\":\"dc=x\",\"timeoutSeconds\":31}", "1 to 30" },
		{ "{\"uri\":\"ldaps://h\",\"baseDN\":\"dc=x\",\"caFile\":\"ca.pem\"}",
		  "absolute path" },
		{ "{\"uri\":\"ldaps://h\",\"baseDN\":\"\"}", "non-empty string" },
	};
	struct tsms_config *cfg;
	char extra[512];

	(void)state;
	cfg = parse_extra(",\"ldap\":{\"uri\":\"ldaps://ldap1.example.com ldaps://ldap2:636\","
	                  "\"baseDN\":\"ou=people,dc=example,dc=com\",\"bindDN\":\"cn=r,dc=x\","
	                  "\"bindPassword\":\"pw-secret\"}");
	assert_non_null(cfg->ldap);
	assert_false(cfg->ldap->start_tls);
	assert_string_equal(cfg->ldap->filter, "(uid=%u)");
	assert_string_equal(cfg->ldap->attribute, "mobile");
	assert_int_equal(cfg->ldap->timeout_seconds, 5);
	assert_string_equal(cfg->ldap->bind_password, "pw-secret");
	assert_int_equal(cfg->ldap->ca_fd, -1);
	tsms_config_free(cfg);
	cfg = parse_extra(",\"ldap\":{\"uri\":\"ldap://h\",\"baseDN\":\"dc=x\","
	                  "\"filter\":\"(&(objectClass=user)(sAMAccountName=%u))\","
	                  "\"attribute\":\"telephoneNumber\",\"timeoutSeconds\":30}");
	assert_true(cfg->ldap->start_tls);
	assert_int_equal(cfg->ldap->timeout_seconds, 30);
	assert_null(cfg->ldap->domains);
	tsms_config_free(cfg);
	/* Active Directory's names: the short name, and the domains this directory holds */
	cfg = parse_extra(",\"ldap\":{\"uri\":\"ldaps://dc1\",\"baseDN\":\"dc=corp\","
	                  "\"filter\":\"(&(objectCategory=person)(sAMAccountName=%s))\","
	                  "\"domains\":[\"CORP\",\"corp.example.com\"]}");
	assert_string_equal(cfg->ldap->domains[0], "CORP");
	assert_string_equal(cfg->ldap->domains[1], "corp.example.com");
	assert_null(cfg->ldap->domains[2]);
	tsms_config_free(cfg);
	/* %s with %d: the directory tells the domains apart */
	cfg = parse_extra(",\"ldap\":{\"uri\":\"ldaps://h\",\"baseDN\":\"dc=x\","
	                  "\"filter\":\"(&(uid=%s)(associatedDomain=%d))\"}");
	assert_null(cfg->ldap->domains);
	tsms_config_free(cfg);
	cfg = parse_extra(
		",\"ldap\":{\"uri\":\"ldapi://%2Frun%2Fslapd%2Fldapi\",\"baseDN\":\"dc=x\"}");
	assert_false(cfg->ldap->start_tls);
	tsms_config_free(cfg);
	/* the scheme is the first URI's, after the separators libldap skips */
	cfg = parse_extra(",\"ldap\":{\"uri\":\" ldaps://h\",\"baseDN\":\"dc=x\"}");
	assert_false(cfg->ldap->start_tls);
	tsms_config_free(cfg);
	cfg = parse_extra(",\"ldap\":{\"uri\":\" ldap://h\",\"baseDN\":\"dc=x\"}");
	assert_true(cfg->ldap->start_tls);
	tsms_config_free(cfg);
	cfg = parse_extra("");
	assert_null(cfg->ldap);
	tsms_config_free(cfg);
	for (size_t i = 0; i < sizeof(refused) / sizeof(refused[0]); i++) {
		snprintf(extra, sizeof(extra), ",\"ldap\":%s", refused[i][0]);
		assert_extra_refused(extra, refused[i][1]);
		assert_extra_refused(extra, "ldap");
	}
	assert_extra_refused(",\"ldap\":{\"uri\":\"ldaps://h\",\"baseDN\":\"dc=x\",\"bindDN\":"
	                     "\"cn=r\",\"bindPassword\":\"pw-secret\",\"x\":1}",
	                     "unknown key");
}

static void test_range_grace_keys(void **state)
{
	const struct range_case cases[] = {
		{ "gracePeriodSeconds", 0, 86400,
		  offsetof(struct tsms_config, grace_period_seconds) },
		{ "sessionGraceSeconds", 0, 86400,
		  offsetof(struct tsms_config, session_grace_seconds) },
	};

	(void)state;
	assert_int_equal(TSMS_GRACE_SECONDS_MAX, 86400);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		check_range(&cases[i]);
		/* the types a config written by hand tends to get wrong */
		for (size_t j = 0; j < 3; j++) {
			static const char *const odd[] = { "-1", "\"600\"", "1.5" };
			char extra[96];

			snprintf(extra, sizeof(extra), ",\"%s\":%s", cases[i].key, odd[j]);
			assert_extra_refused(extra, cases[i].key);
		}
	}
}

#define REDIS_MEMBER ",\"redis\":{\"url\":\"redis://127.0.0.1:6379\"}"

static void test_grace_scope(void **state)
{
	static const char *const refused[][2] = {
		/* a scope without an address grace to share */
		{ ",\"graceScope\":\"host\"", "gracePeriodSeconds is 0" },
		{ ",\"graceScope\":\"fleet\"" REDIS_MEMBER, "gracePeriodSeconds is 0" },
		{ ",\"graceScope\":\"host\",\"gracePeriodSeconds\":0", "gracePeriodSeconds is 0" },
		{ ",\"graceScope\":\"host\",\"sessionGraceSeconds\":600",
		  "gracePeriodSeconds is 0" },
		/* the fleet's graces live in Redis */
		{ ",\"graceScope\":\"fleet\",\"gracePeriodSeconds\":600", "needs a redis object" },
		/* unknown values and types */
		{ ",\"graceScope\":\"Fleet\",\"gracePeriodSeconds\":600" REDIS_MEMBER,
		  "graceScope" },
		{ ",\"graceScope\":\"hosts\",\"gracePeriodSeconds\":600", "is unknown" },
		{ ",\"graceScope\":\"\",\"gracePeriodSeconds\":600", "graceScope" },
		{ ",\"graceScope\":\"fleet\\n\",\"gracePeriodSeconds\":600" REDIS_MEMBER,
		  "graceScope" },
		{ ",\"graceScope\":1,\"gracePeriodSeconds\":600", "graceScope" },
		{ ",\"graceScope\":null,\"gracePeriodSeconds\":600", "graceScope" },
		{ ",\"graceScope\":[\"fleet\"],\"gracePeriodSeconds\":600", "graceScope" },
	};
	struct tsms_config *cfg;

	(void)state;
	cfg = parse_extra(",\"gracePeriodSeconds\":600,\"sessionGraceSeconds\":300");
	assert_int_equal(cfg->grace_period_seconds, 600);
	assert_int_equal(cfg->session_grace_seconds, 300);
	assert_false(cfg->grace_fleet); /* host, the default */
	tsms_config_free(cfg);
	cfg = parse_extra(",\"gracePeriodSeconds\":600,\"graceScope\":\"host\"");
	assert_false(cfg->grace_fleet);
	tsms_config_free(cfg);
	/* with Redis, host keeps the graces on this host */
	cfg = parse_extra(",\"gracePeriodSeconds\":600,\"graceScope\":\"host\"" REDIS_MEMBER);
	assert_false(cfg->grace_fleet);
	assert_non_null(cfg->redis);
	tsms_config_free(cfg);
	cfg = parse_extra(REDIS_MEMBER ",\"graceScope\":\"fleet\",\"gracePeriodSeconds\":1");
	assert_true(cfg->grace_fleet);
	tsms_config_free(cfg);
	/* a session grace alone needs no scope */
	cfg = parse_extra(",\"sessionGraceSeconds\":86400");
	assert_int_equal(cfg->session_grace_seconds, 86400);
	assert_int_equal(cfg->grace_period_seconds, 0);
	tsms_config_free(cfg);
	for (size_t i = 0; i < sizeof(refused) / sizeof(refused[0]); i++)
		assert_extra_refused(refused[i][0], refused[i][1]);
}

static void test_redis_section(void **state)
{
	static const char *const refused[][2] = {
		{ "[]", "redis must be an object" },
		{ "{}", "redis.url is missing" },
		{ "{\"url\":\"rediss://r:6380\"}", "rediss://" },
		{ "{\"url\":\"rediss://r:6380\"}", "stunnel" },
		{ "{\"url\":\"REDISS://r\"}", "without TLS" },
		{ "{\"url\":\"redis://pam:pw-secret@r:6379\"}", "redis.password" },
		{ "{\"url\":\"redis://:pw-secret@r\"}", "redis.username" },
		{ "{\"url\":\"http://r:6379\"}", "redis.url must be" },
		{ "{\"url\":\"redis://\"}", "is not redis://" },
		{ "{\"url\":\"redis://r:0\"}", "is not redis://" },
		{ "{\"url\":\"redis://r:65536\"}", "is not redis://" },
		{ "{\"url\":\"redis://r:\"}", "is not redis://" },
		{ "{\"url\":\"redis://r:63x9\"}", "is not redis://" },
		{ "{\"url\":\"redis://r/1000\"}", "is not redis://" },
		{ "{\"url\":\"redis://r/16\"}", "DB 0-15" },
		{ "{\"url\":\"unix:///r.sock?db=16\"}", "absolute socket path" },
		{ "{\"url\":\"redis://r/0/x\"}", "is not redis://" },
		{ "{\"url\":\"redis://r?db=1\"}", "is not redis://" },
		{ "{\"url\":\"redis://[::1\"}", "is not redis://" },
		{ "{\"url\":\"redis://r_x\"}", "is not redis://" },
		{ "{\"url\":\"unix://run/redis.sock\"}", "absolute socket path" },
		{ "{\"url\":\"unix:///run/redis.sock?database=1\"}", "absolute socket path" },
		{ "{\"url\":\"unix:///run/redis.sock?db=x\"}", "absolute socket path" },
		{ "{\"url\":\"redis://r\",\"port\":6379}", "unknown key \"port\"" },
		{ "{\"url\":\"redis://r\",\"username\":\"pam\"}", "without redis.password" },
		{ "{\"url\":\"redis://r\",\"timeoutSeconds\":0}", "redis.timeoutSeconds" },
		{ "{\"url\":\"redis://r\",\"timeoutSeconds\":11}", "redis.timeoutSeconds" },
		{ "{\"url\":\"redis://r\",\"timeoutSeconds\":1.5}", "redis.timeoutSeconds" },
		{ "{\"url\":\"redis://r\",\"keyPrefix\":\"a b\"}", "redis.keyPrefix" },
		{ "{\"url\":\"redis://r\",\"keyPrefix\":\"\"}", "non-empty string" },
		{ "{\"url\":\"redis://r\",\"password\":7}", "redis.password" },
	};
	struct tsms_config *cfg;
	char extra[512], path[120];

	(void)state;
	cfg = parse_extra(",\"redis\":{\"url\":\"redis://10.0.0.5:6380/3\",\"username\":\"pam\","
	                  "\"password\":\"pw-secret\",\"keyPrefix\":\"fleet-a:\","
	                  "\"timeoutSeconds\":10}");
	assert_non_null(cfg->redis);
	assert_string_equal(cfg->redis->url, "redis://10.0.0.5:6380/3");
	assert_string_equal(cfg->redis->host, "10.0.0.5");
	assert_int_equal(cfg->redis->port, 6380);
	assert_int_equal(cfg->redis->db, 3);
	assert_null(cfg->redis->socket_path);
	assert_string_equal(cfg->redis->username, "pam");
	assert_string_equal(cfg->redis->password, "pw-secret");
	assert_string_equal(cfg->redis->key_prefix, "fleet-a:");
	assert_int_equal(cfg->redis->timeout_seconds, 10);
	tsms_config_free(cfg);
	cfg = parse_extra(",\"redis\":{\"url\":\"redis://redis.example.com\"}");
	assert_string_equal(cfg->redis->host, "redis.example.com");
	assert_int_equal(cfg->redis->port, 6379);
	assert_int_equal(cfg->redis->db, 0);
	assert_null(cfg->redis->username);
	assert_null(cfg->redis->password);
	assert_string_equal(cfg->redis->key_prefix, "pam_twilio_sms:");
	assert_int_equal(cfg->redis->timeout_seconds, 2);
	tsms_config_free(cfg);
	cfg = parse_extra(",\"redis\":{\"url\":\"redis://[::1]:7000/\",\"password\":\"pw\"}");
	assert_string_equal(cfg->redis->host, "::1");
	assert_int_equal(cfg->redis->port, 7000);
	assert_int_equal(cfg->redis->db, 0);
	tsms_config_free(cfg);
	cfg = parse_extra(",\"redis\":{\"url\":\"unix:///run/redis/redis-server.sock?db=2\"}");
	assert_null(cfg->redis->host);
	assert_string_equal(cfg->redis->socket_path, "/run/redis/redis-server.sock");
	assert_int_equal(cfg->redis->db, 2);
	tsms_config_free(cfg);
	/* the longest path a unix socket address holds, and one byte more */
	memset(path, 'p', sizeof(path));
	path[0] = '/';
	path[107] = '\0';
	snprintf(extra, sizeof(extra), ",\"redis\":{\"url\":\"unix://%s\"}", path);
	cfg = parse_extra(extra);
	assert_int_equal(strlen(cfg->redis->socket_path), 107);
	tsms_config_free(cfg);
	path[107] = 'p';
	path[108] = '\0';
	snprintf(extra, sizeof(extra), ",\"redis\":{\"url\":\"unix://%s\"}", path);
	assert_extra_refused(extra, "at most 107 bytes");
	cfg = parse_extra("");
	assert_null(cfg->redis);
	tsms_config_free(cfg);
	for (size_t i = 0; i < sizeof(refused) / sizeof(refused[0]); i++) {
		snprintf(extra, sizeof(extra), ",\"redis\":%s", refused[i][0]);
		assert_extra_refused(extra, refused[i][1]);
		assert_extra_refused(extra, "redis");
	}
}

static void test_proxy_key(void **state)
{
	static const char *const bad[] = {
		"\"socks5://127.0.0.1:1080\"",
		"\"proxy.example.com:3128\"",
		"\"http://proxy.example.com\"",
		"\"http://user:s3cret@proxy.example.com\"",
		"\"http://user@proxy.example.com:3128\"",
		"\"http://proxy.example.com:3128/path\"",
		"\"http://user:s3cret@proxy.example.com:3128/?x\"",
		"\"http://proxy.example.com:3128\\n\"",
		"3128",
		"\"\"",
	};
	struct tsms_config *cfg;
	char extra[256];

	(void)state;
	cfg = parse_extra(",\"proxy\":\"http://user:s3cret@proxy.example.com:3128\"");
	assert_string_equal(cfg->proxy, "http://user:s3cret@proxy.example.com:3128");
	tsms_config_free(cfg);
	cfg = parse_extra(",\"proxy\":\"https://proxy.example.com:443\"");
	assert_string_equal(cfg->proxy, "https://proxy.example.com:443");
	tsms_config_free(cfg);
	cfg = parse_extra("");
	assert_null(cfg->proxy);
	tsms_config_free(cfg);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct guarded_err g;
		char *json;

		snprintf(extra, sizeof(extra), ",\"proxy\":%s", bad[i]);
		json = config_with(SIGNIN_TEMPLATES, extra);
		cfg = parse_str(json, &g);
		free(json);
		if (cfg != NULL) {
			tsms_config_free(cfg);
			print_error("accepted proxy %s\n", bad[i]);
			fail();
		}
		assert_contains(g.err, "proxy");
		/* the password is never quoted back */
		assert_not_contains(g.err, "s3cret");
	}
}

/* A config at dir/name whose caFile is ca_path (mode 0600, root). */
static const char *make_config_with_ca(const struct load_dir *d, const char *name,
                                       const char *ca_path)
{
	char json[1024];

	snprintf(json, sizeof(json), "{%s,%s,\"caFile\":\"%s\"}", REQUIRED_KEYS, SIGNIN_TEMPLATES,
	         ca_path);
	return make_config_file(d, name, json, strlen(json), 0600, 0, 0);
}

#define PEM "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"

/* Loads a config whose caFile is a file of mode and owner (or ca_path as
 * given, when content is NULL); expect_ok says whether it must load. */
static void check_ca(const struct load_dir *d, const char *tag, const char *content, mode_t mode,
                     uid_t uid, const char *ca_path, bool expect_ok)
{
	char ca[256], cfg_path[256], name[64];
	struct guarded_err g;
	struct tsms_config *cfg;

	if (content != NULL) {
		snprintf(name, sizeof(name), "ca-%s.pem", tag);
		snprintf(ca, sizeof(ca), "%s",
		         make_config_file(d, name, content, strlen(content), mode, uid, 0));
	} else {
		snprintf(ca, sizeof(ca), "%s", ca_path);
	}
	snprintf(name, sizeof(name), "with-ca-%s.json", tag);
	snprintf(cfg_path, sizeof(cfg_path), "%s", make_config_with_ca(d, name, ca));
	err_init(&g);
	cfg = tsms_config_load(cfg_path, g.err);
	if (expect_ok) {
		if (cfg == NULL) {
			print_error("caFile %s (%s) refused: %s\n", ca, tag, g.err);
			fail();
		}
		assert_int_equal(cfg->ca_pem_len, strlen(content));
		assert_memory_equal(cfg->ca_pem, content, cfg->ca_pem_len);
	} else {
		if (cfg != NULL) {
			tsms_config_free(cfg);
			print_error("caFile %s (%s) accepted\n", ca, tag);
			fail();
		}
		err_check(&g);
		assert_contains(g.err, "caFile");
		assert_contains(g.err, ca);
	}
	tsms_config_free(cfg);
}

static void test_load_ca_file_checked_like_config(void **state)
{
	const struct load_dir *d = *state;
	char target[256], link[256], missing[256];

	require_root();
	check_ca(d, "0644", PEM, 0644, 0, NULL, true);
	check_ca(d, "0600", PEM, 0600, 0, NULL, true);
	check_ca(d, "0444", PEM, 0444, 0, NULL, true);
	/* writable by group or others: whoever can write it can add a CA */
	check_ca(d, "0664", PEM, 0664, 0, NULL, false);
	check_ca(d, "0646", PEM, 0646, 0, NULL, false);
	check_ca(d, "0666", PEM, 0666, 0, NULL, false);
	check_ca(d, "nobody", PEM, 0644, 65534, NULL, false);
	check_ca(d, "empty", "", 0644, 0, NULL, false);
	snprintf(target, sizeof(target), "%s/ca-0644.pem", d->path);
	snprintf(link, sizeof(link), "%s/ca-link.pem", d->path);
	unlink(link);
	assert_int_equal(symlink(target, link), 0);
	check_ca(d, "link", NULL, 0, 0, link, false);
	snprintf(missing, sizeof(missing), "%s/no-such-ca.pem", d->path);
	check_ca(d, "missing", NULL, 0, 0, missing, false);
	check_ca(d, "dir", NULL, 0, 0, d->path, false);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse_logto_with_users),
		cmocka_unit_test(test_parse_defaults),
		cmocka_unit_test(test_parse_pure_logto),
		cmocka_unit_test(test_parse_all_keys),
		cmocka_unit_test(test_parse_all_usage_types),
		cmocka_unit_test(test_parse_unterminated_buffer),
		cmocka_unit_test(test_parse_len_respected),
		cmocka_unit_test(test_refuse_unknown_key),
		cmocka_unit_test(test_refuse_unknown_key_long_or_odd_name),
		cmocka_unit_test(test_refuse_missing_required),
		cmocka_unit_test(test_refuse_bad_account_sid),
		cmocka_unit_test(test_accept_uppercase_hex_sids),
		cmocka_unit_test(test_refuse_bad_mg_sid),
		cmocka_unit_test(test_bad_phone_kept_for_its_user),
		cmocka_unit_test(test_every_problem_with_a_bad_user),
		cmocka_unit_test(test_phone_without_plus_not_guessed),
		cmocka_unit_test(test_refuse_bad_user_name),
		cmocka_unit_test(test_refuse_users_not_object),
		cmocka_unit_test(test_accept_empty_users),
		cmocka_unit_test(test_refuse_duplicate_key),
		cmocka_unit_test(test_refuse_duplicate_user),
		cmocka_unit_test(test_refuse_duplicate_template_member),
		cmocka_unit_test(test_refuse_http_base),
		cmocka_unit_test(test_api_base_variants),
		cmocka_unit_test(test_fail_mode),
		cmocka_unit_test(test_disable_risk_check),
		cmocka_unit_test(test_ca_file),
		cmocka_unit_test(test_range_code_length),
		cmocka_unit_test(test_range_code_ttl),
		cmocka_unit_test(test_range_max_attempts),
		cmocka_unit_test(test_range_timeout),
		cmocka_unit_test(test_range_abuse_keys),
		cmocka_unit_test(test_range_grace_keys),
		cmocka_unit_test(test_grace_scope),
		cmocka_unit_test(test_refuse_bad_country_codes),
		cmocka_unit_test(test_country_codes),
		cmocka_unit_test(test_state_dir),
		cmocka_unit_test(test_refuse_malformed),
		cmocka_unit_test(test_refuse_bad_templates),
		cmocka_unit_test(test_refuse_unknown_usage_type),
		cmocka_unit_test(test_refuse_missing_signin_without_generic),
		cmocka_unit_test(test_signin_falls_back_to_generic),
		cmocka_unit_test(test_template_lookup_without_generic),
		cmocka_unit_test(test_template_signin_preferred_over_generic),
		cmocka_unit_test(test_refuse_no_placeholder),
		cmocka_unit_test(test_accept_spaced_placeholder),
		cmocka_unit_test(test_body_length_limit),
		cmocka_unit_test(test_phone_lookup),
		cmocka_unit_test(test_free_null),
		cmocka_unit_test(test_load_mode_0600_accepted),
		cmocka_unit_test(test_load_group_other_bits_refused),
		cmocka_unit_test(test_load_symlink_refused),
		cmocka_unit_test(test_load_directory_refused),
		cmocka_unit_test(test_load_missing_refused),
		cmocka_unit_test(test_load_not_root_owned_refused),
		cmocka_unit_test(test_load_root_owned_other_group_accepted),
		cmocka_unit_test(test_load_fifo_refused_without_hanging),
		cmocka_unit_test(test_load_too_big_refused),
		cmocka_unit_test(test_load_parse_error_names_path_and_key),
		cmocka_unit_test(test_proxy_key),
		cmocka_unit_test(test_host_key),
		cmocka_unit_test(test_ldap_section),
		cmocka_unit_test(test_redis_section),
		cmocka_unit_test(test_api_key_credentials),
		cmocka_unit_test(test_load_ca_file_checked_like_config),
		cmocka_unit_test(test_json_error_line_and_column),
		cmocka_unit_test(test_every_problem_at_once),
		cmocka_unit_test(test_example_placeholders_refused),
	};

	/* the group setup makes the temporary directory of the load tests */
	return cmocka_run_group_tests(tests, load_setup, load_teardown);
}
