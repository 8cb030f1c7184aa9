/* test_twilio.c - unit tests of lib/twilio: reading Messages API responses
 * (fixture bodies) and classifying failures of tsms_twilio_send */
#include "unit.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <time.h>

#include "config.h"
#include "http.h"
#include "twilio.h"

#define SID "SM1f0e2d3c4b5a69788796a5b4c3d2e1f0"
#define TOKEN "0f1e2d3c4b5a69788796a5b4c3d2e1f0"

/* the result between canaries, to catch writes past its fields */
struct guarded_result {
	unsigned char before[64];
	struct tsms_twilio_result res;
	unsigned char after[64];
};

static bool utf8_valid(const char *s)
{
	const unsigned char *p = (const unsigned char *)s;

	while (*p != '\0') {
		size_t n;

		if (*p < 0x80)
			n = 1;
		else if ((*p & 0xe0) == 0xc0)
			n = 2;
		else if ((*p & 0xf0) == 0xe0)
			n = 3;
		else if ((*p & 0xf8) == 0xf0)
			n = 4;
		else
			return false;
		for (size_t i = 1; i < n; i++)
			if ((p[i] & 0xc0) != 0x80)
				return false;
		p += n;
	}
	return true;
}

/* Every field terminated inside its array, the text ones printable, nothing
 * outside the struct touched. */
static void check_result(const struct guarded_result *g)
{
	const struct tsms_twilio_result *r = &g->res;

	for (size_t i = 0; i < sizeof(g->before); i++)
		assert_int_equal(g->before[i], 0xA5);
	for (size_t i = 0; i < sizeof(g->after); i++)
		assert_int_equal(g->after[i], 0xA5);
	assert_non_null(memchr(r->sid, '\0', sizeof(r->sid)));
	assert_non_null(memchr(r->status, '\0', sizeof(r->status)));
	assert_non_null(memchr(r->error_message, '\0', sizeof(r->error_message)));
	assert_non_null(memchr(r->reason, '\0', sizeof(r->reason)));
	assert_no_control(r->sid);
	assert_no_control(r->error_message);
	assert_no_control(r->reason);
	assert_true(utf8_valid(r->error_message));
	assert_true(r->reason[0] != '\0');
}

/* Parses body (len bytes from an exactly sized unterminated buffer). */
static enum tsms_err parse_body(long status, const char *body, size_t len, struct guarded_result *g)
{
	char *buf = unterminated_copy(body, len);
	enum tsms_err e;

	memset(g, 0xA5, sizeof(*g));
	e = tsms_twilio_parse_response(status, buf, len, &g->res);
	free(buf);
	check_result(g);
	assert_int_equal(g->res.http_status, status);
	return e;
}

static enum tsms_err parse_fixture(long status, const char *name, struct guarded_result *g)
{
	size_t len = 0;
	char *body = fixture_read(name, &len);
	enum tsms_err e = parse_body(status, body, len, g);

	free(body);
	return e;
}

static enum tsms_err parse_str(long status, const char *body, struct guarded_result *g)
{
	return parse_body(status, body, strlen(body), g);
}

/* ---- success ---- */

static void test_201_accepted(void **state)
{
	struct guarded_result g;

	(void)state;
	assert_int_equal(parse_fixture(201, "twilio-201.json", &g), TSMS_OK);
	assert_string_equal(g.res.sid, SID);
	assert_string_equal(g.res.status, "accepted");
	assert_int_equal(g.res.error_code, 0);
}

static void test_201_queued(void **state)
{
	struct guarded_result g;

	(void)state;
	assert_int_equal(parse_fixture(201, "twilio-201-queued.json", &g), TSMS_OK);
	assert_string_equal(g.res.sid, "SMaaaabbbbccccddddeeeeffff00001111");
	assert_string_equal(g.res.status, "queued");
}

static void test_201_minimal(void **state)
{
	struct guarded_result g;

	(void)state;
	assert_int_equal(parse_str(201, "{\"sid\":\"" SID "\",\"status\":\"accepted\"}", &g),
	                 TSMS_OK);
	assert_string_equal(g.res.sid, SID);
}

static void test_201_unterminated_body(void **state)
{
	const char *json = "{\"sid\":\"" SID "\",\"status\":\"accepted\"}";
	size_t len = strlen(json);
	char *buf = malloc(len + 8);
	struct tsms_twilio_result res;

	(void)state;
	assert_non_null(buf);
	/* bytes after len are not part of the body */
	memcpy(buf, json, len);
	memcpy(buf + len, "}}}}}}}}", 8);
	memset(&res, 0xA5, sizeof(res));
	assert_int_equal(tsms_twilio_parse_response(201, buf, len, &res), TSMS_OK);
	assert_string_equal(res.sid, SID);
	free(buf);
}

static void test_201_len_respected(void **state)
{
	size_t len = 0;
	char *body = fixture_read("twilio-201.json", &len);
	struct tsms_twilio_result res;

	(void)state;
	/* the buffer holds the whole (NUL-terminated) body, len only its first half */
	memset(&res, 0xA5, sizeof(res));
	assert_int_equal(tsms_twilio_parse_response(201, body, len / 2, &res),
	                 TSMS_ERR_UNAVAILABLE);
	assert_string_equal(res.sid, "");
	free(body);
}

static void test_201_long_fields_no_overflow(void **state)
{
	struct guarded_result g;
	enum tsms_err e;

	(void)state;
	/* a 322-character sid and a 348-character status: truncated or refused, never overrun */
	e = parse_fixture(201, "twilio-201-long-sid.json", &g);
	assert_true(e == TSMS_OK || e == TSMS_ERR_UNAVAILABLE);
	assert_true(strlen(g.res.sid) < sizeof(g.res.sid));
	assert_true(strlen(g.res.status) < sizeof(g.res.status));
	if (e == TSMS_OK)
		assert_memory_equal(g.res.sid, "SM0123456789abcdef", 18);
}

/* ---- unreadable success bodies: Twilio's state is unknown -> unavailable ---- */

static void test_201_unreadable(void **state)
{
	static const char *const fixtures[] = {
		"twilio-201-no-sid.json", "twilio-201-truncated.json", "twilio-garbage.txt",
		"twilio-500.html",        "twilio-400-21211.json",
	};
	static const char *const bodies[] = {
		"",
		"{}",
		"[]",
		"null",
		"\"SM\"",
		"{\"sid\":12345}",
		"{\"sid\":\"\"}",
		"{\"sid\":null}",
		"{\"sid\":[\"" SID "\"]}",
		"{\"sid\":\"" SID "\"",
	};
	struct guarded_result g;

	(void)state;
	for (size_t i = 0; i < sizeof(fixtures) / sizeof(fixtures[0]); i++) {
		if (parse_fixture(201, fixtures[i], &g) != TSMS_ERR_UNAVAILABLE) {
			print_error("201 with %s not TSMS_ERR_UNAVAILABLE\n", fixtures[i]);
			fail();
		}
		assert_string_equal(g.res.sid, "");
	}
	for (size_t i = 0; i < sizeof(bodies) / sizeof(bodies[0]); i++) {
		if (parse_str(201, bodies[i], &g) != TSMS_ERR_UNAVAILABLE) {
			print_error("201 with body '%s' not TSMS_ERR_UNAVAILABLE\n", bodies[i]);
			fail();
		}
		assert_string_equal(g.res.sid, "");
	}
}

/* ---- refusals: 4xx but 429 never fail open ---- */

static void test_400_21211(void **state)
{
	struct guarded_result g;

	(void)state;
	assert_int_equal(parse_fixture(400, "twilio-400-21211.json", &g), TSMS_ERR_REJECTED);
	assert_int_equal(g.res.error_code, 21211);
	assert_contains(g.res.error_message, "The 'To' number +1555 is not a valid phone number.");
	assert_string_equal(g.res.sid, "");
}

static void test_400_number_masked(void **state)
{
	struct guarded_result g;

	(void)state;
	/* Twilio quotes the number: the message goes to the logs, the number must not */
	assert_int_equal(parse_fixture(400, "twilio-400-21211-number.json", &g), TSMS_ERR_REJECTED);
	assert_int_equal(g.res.error_code, 21211);
	assert_not_contains(g.res.error_message, "15005550001");
	assert_contains(g.res.error_message, "0001 is not a valid phone number.");
}

static void test_400_21610(void **state)
{
	struct guarded_result g;

	(void)state;
	assert_int_equal(parse_fixture(400, "twilio-400-21610.json", &g), TSMS_ERR_REJECTED);
	assert_int_equal(g.res.error_code, 21610);
	assert_contains(g.res.error_message, "unsubscribed recipient");
}

static void test_401_20003(void **state)
{
	struct guarded_result g;

	(void)state;
	assert_int_equal(parse_fixture(401, "twilio-401-20003.json", &g), TSMS_ERR_REJECTED);
	assert_int_equal(g.res.error_code, 20003);
	assert_contains(g.res.error_message, "Authenticate");
	assert_string_equal(g.res.sid, "");
}

static void test_404_20404(void **state)
{
	struct guarded_result g;

	(void)state;
	assert_int_equal(parse_fixture(404, "twilio-404-20404.json", &g), TSMS_ERR_REJECTED);
	assert_int_equal(g.res.error_code, 20404);
}

static void test_4xx_without_twilio_body(void **state)
{
	static const long statuses[] = { 400, 401, 403, 404, 405, 413, 451, 499 };
	struct guarded_result g;

	(void)state;
	for (size_t i = 0; i < sizeof(statuses) / sizeof(statuses[0]); i++) {
		if (parse_fixture(statuses[i], "twilio-garbage.txt", &g) != TSMS_ERR_REJECTED) {
			print_error("%ld with a garbage body not TSMS_ERR_REJECTED\n", statuses[i]);
			fail();
		}
		assert_int_equal(g.res.error_code, 0);
		if (parse_str(statuses[i], "", &g) != TSMS_ERR_REJECTED) {
			print_error("%ld with an empty body not TSMS_ERR_REJECTED\n", statuses[i]);
			fail();
		}
		assert_int_equal(g.res.error_code, 0);
	}
}

static void test_only_201_is_success(void **state)
{
	size_t len = 0;
	char *body = fixture_read("twilio-201.json", &len);
	static const long statuses[] = { 200, 202, 204, 301, 302, 307, 100 };
	struct guarded_result g;
	int wrong = 0;

	(void)state;
	/* "TSMS_OK for 201 with a message sid ... TSMS_ERR_REJECTED for other statuses" */
	for (size_t i = 0; i < sizeof(statuses) / sizeof(statuses[0]); i++) {
		enum tsms_err e = parse_body(statuses[i], body, len, &g);

		if (e != TSMS_ERR_REJECTED) {
			print_error(
				"status %ld with a message body gave %d, not TSMS_ERR_REJECTED\n",
				statuses[i], (int)e);
			wrong++;
		}
	}
	free(body);
	assert_int_equal(wrong, 0);
}

/* ---- unavailable: 429 and 5xx (failMode applies) ---- */

static void test_429(void **state)
{
	struct guarded_result g;

	(void)state;
	assert_int_equal(parse_fixture(429, "twilio-429.json", &g), TSMS_ERR_UNAVAILABLE);
	assert_int_equal(g.res.error_code, 20429);
	assert_contains(g.res.error_message, "Too Many Requests");
	assert_int_equal(parse_str(429, "", &g), TSMS_ERR_UNAVAILABLE);
	assert_int_equal(parse_fixture(429, "twilio-garbage.txt", &g), TSMS_ERR_UNAVAILABLE);
}

static void test_5xx(void **state)
{
	static const long statuses[] = { 500, 502, 503, 504, 599 };
	struct guarded_result g;

	(void)state;
	assert_int_equal(parse_fixture(500, "twilio-500.html", &g), TSMS_ERR_UNAVAILABLE);
	assert_int_equal(g.res.error_code, 0);
	assert_string_equal(g.res.sid, "");
	assert_int_equal(parse_fixture(503, "twilio-503.json", &g), TSMS_ERR_UNAVAILABLE);
	assert_int_equal(g.res.error_code, 20503);
	for (size_t i = 0; i < sizeof(statuses) / sizeof(statuses[0]); i++) {
		if (parse_str(statuses[i], "", &g) != TSMS_ERR_UNAVAILABLE ||
		    parse_fixture(statuses[i], "twilio-garbage.txt", &g) != TSMS_ERR_UNAVAILABLE ||
		    parse_fixture(statuses[i], "twilio-201.json", &g) != TSMS_ERR_UNAVAILABLE) {
			print_error("status %ld not TSMS_ERR_UNAVAILABLE\n", statuses[i]);
			fail();
		}
	}
}

/* ---- what Twilio says is sanitised and bounded ---- */

static void test_error_message_sanitised(void **state)
{
	struct guarded_result g;

	(void)state;
	assert_int_equal(parse_fixture(400, "twilio-400-control-chars.json", &g),
	                 TSMS_ERR_REJECTED);
	assert_int_equal(g.res.error_code, 21211);
	/* check_result checked: no control characters; UTF-8 is kept */
	assert_contains(g.res.error_message, "Numéro invalide?Injected: result=PAM_SUCCESS?");
	assert_contains(g.res.error_message, "[31mred");
}

static void test_error_message_long(void **state)
{
	struct guarded_result g;

	(void)state;
	/* a 6000-byte message of "Zé": cut inside 256 bytes, never inside the é */
	assert_int_equal(parse_fixture(400, "twilio-400-long-message.json", &g), TSMS_ERR_REJECTED);
	assert_int_equal(g.res.error_code, 21211);
	assert_true(strlen(g.res.error_message) < sizeof(g.res.error_message));
	assert_true(strlen(g.res.error_message) > 100);
	assert_contains(g.res.error_message, "The 'To' number is not valid. ZéZé");
}

static void test_error_body_odd_types(void **state)
{
	struct guarded_result g;

	(void)state;
	/* code as a string, message as a number: no crash, still refused */
	assert_int_equal(parse_str(400, "{\"code\":\"21211\",\"message\":42}", &g),
	                 TSMS_ERR_REJECTED);
	assert_int_equal(parse_str(400, "{\"code\":null,\"message\":null}", &g), TSMS_ERR_REJECTED);
	assert_int_equal(g.res.error_code, 0);
	assert_int_equal(parse_str(400, "[21211]", &g), TSMS_ERR_REJECTED);
}

/* ---- tsms_twilio_send failing before any response ---- */

static int send_setup(void **state)
{
	(void)state;
	return tsms_http_global_init();
}

static int send_teardown(void **state)
{
	(void)state;
	tsms_http_global_cleanup();
	return 0;
}

static struct tsms_config *config_for_port(unsigned port)
{
	char json[1024];
	char err[TSMS_CONFIG_ERR_MAX];
	struct tsms_config *cfg;

	snprintf(json, sizeof(json),
	         "{\"accountSID\":\"AC0123456789abcdef0123456789abcdef\",\"authToken\":\"" TOKEN
	         "\","
	         "\"fromMessagingServiceSID\":\"MGfedcba9876543210fedcba9876543210\","
	         "\"templates\":[{\"usageType\":\"SignIn\",\"content\":\"code {{code}}\"}],"
	         "\"apiBaseUrl\":\"https://127.0.0.1:%u\",\"timeoutSeconds\":1}",
	         port);
	cfg = tsms_config_parse(json, strlen(json), err);
	if (cfg == NULL) {
		print_error("config refused: %s\n", err);
		fail();
	}
	return cfg;
}

/* A TCP socket on 127.0.0.1 bound to a free port; listening when listening. */
static int local_socket(bool listening, unsigned *port)
{
	struct sockaddr_in sa;
	socklen_t sl = sizeof(sa);
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	assert_true(fd >= 0);
	memset(&sa, 0, sizeof(sa));
	sa.sin_family = AF_INET;
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&sa, &sl), 0);
	*port = ntohs(sa.sin_port);
	if (listening)
		assert_int_equal(listen(fd, 4), 0);
	return fd;
}

static double now_seconds(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void check_send_failure(const struct guarded_result *g)
{
	check_result(g);
	assert_int_equal(g->res.http_status, 0);
	assert_string_equal(g->res.sid, "");
	assert_true(g->res.error_message[0] != '\0');
	assert_not_contains(g->res.error_message, TOKEN);
	assert_not_contains(g->res.reason, TOKEN);
}

static void test_send_connection_refused(void **state)
{
	unsigned port = 0;
	int fd = local_socket(false, &port);
	struct tsms_config *cfg;
	struct guarded_result g;
	double t0;

	(void)state;
	close(fd); /* nothing listens there now */
	cfg = config_for_port(port);
	memset(&g, 0xA5, sizeof(g));
	t0 = now_seconds();
	assert_int_equal(tsms_twilio_send(cfg, "+15555550006", "code 123456", &g.res),
	                 TSMS_ERR_UNAVAILABLE);
	assert_true(now_seconds() - t0 < 5.0);
	check_send_failure(&g);
	tsms_config_free(cfg);
}

static void test_send_timeout_within_budget(void **state)
{
	unsigned port = 0;
	int fd = local_socket(true, &port); /* accepts TCP, never speaks TLS */
	struct tsms_config *cfg;
	struct guarded_result g;
	double elapsed;

	(void)state;
	cfg = config_for_port(port);
	memset(&g, 0xA5, sizeof(g));
	elapsed = now_seconds();
	assert_int_equal(tsms_twilio_send(cfg, "+15555550006", "code 123456", &g.res),
	                 TSMS_ERR_UNAVAILABLE);
	elapsed = now_seconds() - elapsed;
	close(fd);
	/* timeoutSeconds is 1: the whole exchange ends near it */
	if (elapsed > 4.0) {
		print_error("send took %.1f s with timeoutSeconds 1\n", elapsed);
		fail();
	}
	check_send_failure(&g);
	assert_contains(g.res.reason, "timeout");
	tsms_config_free(cfg);
}

/* ---- the Messaging Service check (GET /v1/Services/{sid}) ---- */

#define MG "MGfedcba9876543210fedcba9876543210"

static enum tsms_service_verdict service_of(long status, const char *fixture,
                                            struct tsms_twilio_service *res)
{
	size_t len = 0;
	char *body = fixture != NULL ? fixture_read(fixture, &len) : NULL;
	char *exact = body != NULL ? unterminated_copy(body, len) : NULL;
	enum tsms_service_verdict v;

	memset(res, 0xA5, sizeof(*res));
	v = tsms_twilio_parse_service(status, exact, len, MG, res);
	assert_int_equal(v, res->verdict);
	assert_int_equal(res->http_status, status);
	assert_non_null(memchr(res->error_message, '\0', sizeof(res->error_message)));
	assert_non_null(memchr(res->friendly_name, '\0', sizeof(res->friendly_name)));
	free(exact);
	free(body);
	return v;
}

static void test_service_verdicts(void **state)
{
	struct tsms_twilio_service res;

	(void)state;
	assert_int_equal(service_of(200, "twilio-200-service.json", &res), TSMS_SERVICE_OK);
	assert_string_equal(res.friendly_name, "Sign-in codes");
	assert_int_equal(service_of(401, "twilio-401-20003.json", &res),
	                 TSMS_SERVICE_BAD_CREDENTIAL);
	assert_int_equal(res.error_code, 20003);
	assert_int_equal(service_of(404, "twilio-404-20404.json", &res), TSMS_SERVICE_NOT_FOUND);
	assert_int_equal(res.error_code, 20404);
	assert_true(res.error_message[0] != '\0');
	assert_int_equal(service_of(403, NULL, &res), TSMS_SERVICE_FORBIDDEN);
	assert_int_equal(service_of(429, "twilio-429.json", &res), TSMS_SERVICE_UNEXPECTED);
	assert_int_equal(service_of(503, "twilio-503.json", &res), TSMS_SERVICE_UNEXPECTED);
	assert_int_equal(service_of(500, "twilio-500.html", &res), TSMS_SERVICE_UNEXPECTED);
	/* 200 is a success only with the service asked for in it */
	assert_int_equal(service_of(200, "twilio-garbage.txt", &res), TSMS_SERVICE_UNEXPECTED);
	assert_int_equal(service_of(200, "twilio-201.json", &res), TSMS_SERVICE_UNEXPECTED);
	assert_int_equal(service_of(200, NULL, &res), TSMS_SERVICE_UNEXPECTED);
	/* an error body with 200 is not an error code */
	assert_int_equal(service_of(201, "twilio-200-service.json", &res), TSMS_SERVICE_UNEXPECTED);
}

static void assert_messaging_base(const char *api, const char *want)
{
	char out[600];

	assert_true(tsms_twilio_messaging_base(api, out, sizeof(out)));
	assert_string_equal(out, want);
}

static void test_messaging_base(void **state)
{
	char small[24];

	(void)state;
	assert_messaging_base("https://api.twilio.com", "https://messaging.twilio.com");
	assert_messaging_base("https://api.dublin.ie1.twilio.com",
	                      "https://messaging.dublin.ie1.twilio.com");
	assert_messaging_base("https://API.Sydney.AU1.twilio.com",
	                      "https://messaging.Sydney.AU1.twilio.com");
	/* anything else is kept: a gateway or the sandbox serves both APIs */
	assert_messaging_base("https://127.0.0.1:8443", "https://127.0.0.1:8443");
	assert_messaging_base("https://api.twilio.com.example", "https://api.twilio.com.example");
	assert_messaging_base("https://gateway.example/twilio", "https://gateway.example/twilio");
	/* on twilio.com but not an API host as Twilio writes them: not known, not guessed */
	assert_false(
		tsms_twilio_messaging_base("https://api.twilio.com:443", small, sizeof(small)));
	assert_false(tsms_twilio_messaging_base("https://api.twilio.com/x", small, sizeof(small)));
	assert_false(tsms_twilio_messaging_base("https://twilio.com", small, sizeof(small)));
	assert_false(tsms_twilio_messaging_base("https://sms.TWILIO.com", small, sizeof(small)));
	assert_false(tsms_twilio_messaging_base("https://api.dublin.ie1.twilio.com", small,
	                                        sizeof(small)));
}

static void test_check_service_unreachable(void **state)
{
	struct tsms_twilio_service res;
	unsigned port = 0;
	int fd = local_socket(false, &port);
	struct tsms_config *cfg;

	(void)state;
	close(fd); /* nothing listens there now */
	cfg = config_for_port(port);
	assert_int_equal(tsms_twilio_check_service(cfg, &res), TSMS_SERVICE_UNREACHABLE);
	assert_int_equal(res.http_status, 0);
	assert_true(res.error_message[0] != '\0');
	assert_not_contains(res.error_message, TOKEN);
	assert_contains(res.url, "/v1/Services/" MG);
	assert_not_contains(res.url, TOKEN);
	tsms_config_free(cfg);
}

/* ---- names of Twilio's error codes, for the log ---- */

static void test_code_names(void **state)
{
	/* SPEC3: the codes the log must name */
	static const struct {
		long code;
		const char *words;
	} named[] = {
		{ 20003, "credentials" },  { 21211, "invalid number" },      { 21408, "region" },
		{ 21610, "unsubscribed" }, { 21614, "not a mobile number" },
	};
	static const long unnamed[] = { 0,     -1,    1,     20002, 20004, 20404,
		                        21210, 21212, 21407, 21409, 21609, 21611,
		                        21613, 21615, 30003, 30007, 99999, -20003 };

	(void)state;
	for (size_t i = 0; i < sizeof(named) / sizeof(named[0]); i++) {
		const char *name = tsms_twilio_code_name(named[i].code);

		if (name == NULL) {
			print_error("code %ld has no name\n", named[i].code);
			fail();
		}
		assert_contains(name, named[i].words);
		assert_no_control(name);
		/* static: the same text each time */
		assert_ptr_equal(name, tsms_twilio_code_name(named[i].code));
	}
	for (size_t i = 0; i < sizeof(unnamed) / sizeof(unnamed[0]); i++) {
		const char *name = tsms_twilio_code_name(unnamed[i]);

		if (name != NULL) {
			print_error("code %ld is named \"%s\", expected NULL\n", unnamed[i], name);
			fail();
		}
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_201_accepted),
		cmocka_unit_test(test_201_queued),
		cmocka_unit_test(test_201_minimal),
		cmocka_unit_test(test_201_unterminated_body),
		cmocka_unit_test(test_201_len_respected),
		cmocka_unit_test(test_201_long_fields_no_overflow),
		cmocka_unit_test(test_201_unreadable),
		cmocka_unit_test(test_400_21211),
		cmocka_unit_test(test_400_number_masked),
		cmocka_unit_test(test_400_21610),
		cmocka_unit_test(test_401_20003),
		cmocka_unit_test(test_404_20404),
		cmocka_unit_test(test_4xx_without_twilio_body),
		cmocka_unit_test(test_only_201_is_success),
		cmocka_unit_test(test_429),
		cmocka_unit_test(test_5xx),
		cmocka_unit_test(test_error_message_sanitised),
		cmocka_unit_test(test_error_message_long),
		cmocka_unit_test(test_error_body_odd_types),
		cmocka_unit_test(test_send_connection_refused),
		cmocka_unit_test(test_send_timeout_within_budget),
		cmocka_unit_test(test_code_names),
		cmocka_unit_test(test_service_verdicts),
		cmocka_unit_test(test_messaging_base),
		cmocka_unit_test(test_check_service_unreachable),
	};

	/* the group setup initialises libcurl for the tsms_twilio_send tests */
	return cmocka_run_group_tests(tests, send_setup, send_teardown);
}
