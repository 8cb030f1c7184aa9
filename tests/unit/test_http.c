/* test_http.c - unit tests of lib/http (proxy settings, the variables refused)
 * and lib/environ (the environment hidden from the libraries) */
#include "unit.h"

#include "environ.h"
#include "http.h"

static void assert_proxy_ok(const char *url)
{
	char problem[TSMS_HTTP_PROXY_MSG];

	if (!tsms_http_check_proxy(url, problem)) {
		print_error("refused %s: %s\n", url, problem);
		fail();
	}
	assert_string_equal(problem, "");
}

/* Refused with a problem that contains why and never the password. */
static void assert_proxy_refused(const char *url, const char *why)
{
	char problem[TSMS_HTTP_PROXY_MSG];

	memset(problem, 'Z', sizeof(problem));
	if (tsms_http_check_proxy(url, problem)) {
		print_error("accepted %s\n", url);
		fail();
	}
	assert_non_null(memchr(problem, '\0', sizeof(problem)));
	assert_contains(problem, why);
	assert_not_contains(problem, "s3cret");
}

static void test_proxy_accepted(void **state)
{
	(void)state;
	assert_proxy_ok("http://proxy.example.com:3128");
	assert_proxy_ok("https://proxy.example.com:443");
	assert_proxy_ok("HTTP://proxy.example.com:3128");
	assert_proxy_ok("http://127.0.0.1:8080/");
	assert_proxy_ok("http://[::1]:8080");
	assert_proxy_ok("http://user:s3cret@proxy.example.com:3128");
	assert_proxy_ok("https://user:p%40ss@proxy.example.com:3128");
}

static void test_proxy_refused(void **state)
{
	(void)state;
	assert_proxy_refused("proxy.example.com:3128", "http:// or https://");
	assert_proxy_refused("socks5://proxy.example.com:1080", "http:// or https://");
	assert_proxy_refused("socks5h://user:s3cret@proxy.example.com:1080", "http:// or https://");
	assert_proxy_refused("ftp://proxy.example.com:21", "http:// or https://");
	assert_proxy_refused("http://proxy.example.com", "no port");
	assert_proxy_refused("http://:3128", "");
	assert_proxy_refused("http://user@proxy.example.com:3128", "without a password");
	assert_proxy_refused("http://:s3cret@proxy.example.com:3128", "");
	assert_proxy_refused("http://proxy.example.com:3128/path", "more than");
	assert_proxy_refused("http://proxy.example.com:3128/?q=1", "more than");
	assert_proxy_refused("http://proxy.example.com:3128/#frag", "more than");
	assert_proxy_refused("http://proxy example.com:3128", "");
	assert_proxy_refused("http://user:s3cret@proxy example.com:3128", "");
	assert_proxy_refused("http://proxy.example.com:99999", "");
}

static void test_proxy_too_long_refused(void **state)
{
	char url[1100];

	(void)state;
	snprintf(url, sizeof(url), "http://%0*d.example.com:3128", 1050, 0);
	assert_proxy_refused(url, "longer than 1024");
}

static void test_proxy_shown_hides_credentials(void **state)
{
	char shown[TSMS_HTTP_PROXY_MSG];

	(void)state;
	tsms_http_proxy_shown("http://user:s3cret@proxy.example.com:3128", shown);
	assert_string_equal(shown, "http://***@proxy.example.com:3128");
	tsms_http_proxy_shown("https://proxy.example.com:443/", shown);
	assert_string_equal(shown, "https://proxy.example.com:443");
	tsms_http_proxy_shown("http://[::1]:8080", shown);
	assert_string_equal(shown, "http://[::1]:8080");
}

static void test_environ_hidden_then_restored(void **state)
{
	struct tsms_environ saved;

	(void)state;
	assert_int_equal(setenv("SSLKEYLOGFILE", "/tmp/keys", 1), 0);
	assert_int_equal(setenv("https_proxy", "http://127.0.0.1:9", 1), 0);
	tsms_environ_hide(&saved);
	assert_null(getenv("SSLKEYLOGFILE"));
	assert_null(getenv("https_proxy"));
	assert_null(getenv("PATH"));
	tsms_environ_restore(&saved);
	assert_string_equal(getenv("SSLKEYLOGFILE"), "/tmp/keys");
	assert_string_equal(getenv("https_proxy"), "http://127.0.0.1:9");
	unsetenv("SSLKEYLOGFILE");
	unsetenv("https_proxy");
}

static void test_environ_nested_and_set_while_hidden(void **state)
{
	struct tsms_environ outer, inner;

	(void)state;
	/* setenv() first, so that glibc owns the list and may reallocate it */
	assert_int_equal(setenv("TSMS_UNIT_VAR", "kept", 1), 0);
	tsms_environ_hide(&outer);
	tsms_environ_hide(&inner);
	tsms_environ_restore(&inner);
	assert_null(getenv("TSMS_UNIT_VAR"));
	/* a library that sets variables while hidden changes nothing of the caller's */
	for (int i = 0; i < 100; i++) {
		char name[32];
		snprintf(name, sizeof(name), "TSMS_UNIT_NEW%d", i);
		assert_int_equal(setenv(name, "x", 1), 0);
	}
	tsms_environ_restore(&outer);
	assert_string_equal(getenv("TSMS_UNIT_VAR"), "kept");
	assert_null(getenv("TSMS_UNIT_NEW0"));
	/* the caller can go on changing its environment */
	assert_int_equal(setenv("TSMS_UNIT_LATER", "y", 1), 0);
	assert_string_equal(getenv("TSMS_UNIT_LATER"), "y");
	assert_string_equal(getenv("TSMS_UNIT_VAR"), "kept");
	/* and the hidden list is still empty for the next hide */
	tsms_environ_hide(&outer);
	assert_null(getenv("TSMS_UNIT_NEW0"));
	assert_null(getenv("TSMS_UNIT_LATER"));
	tsms_environ_restore(&outer);
	unsetenv("TSMS_UNIT_VAR");
	unsetenv("TSMS_UNIT_LATER");
}

static void test_unsafe_environment_named(void **state)
{
	(void)state;
	unsetenv("OPENSSL_ia32cap");
	unsetenv("OPENSSL_armcap");
	assert_null(tsms_http_unsafe_environment());
	assert_int_equal(setenv("OPENSSL_ia32cap", "~0x200000200000000", 1), 0);
	assert_string_equal(tsms_http_unsafe_environment(), "OPENSSL_ia32cap");
	unsetenv("OPENSSL_ia32cap");
	assert_int_equal(setenv("OPENSSL_armcap", "0", 1), 0);
	assert_string_equal(tsms_http_unsafe_environment(), "OPENSSL_armcap");
	unsetenv("OPENSSL_armcap");
	/* what the module hides or pins is not refused */
	assert_int_equal(setenv("SSLKEYLOGFILE", "/tmp/keys", 1), 0);
	assert_int_equal(setenv("HTTPS_PROXY", "http://127.0.0.1:9", 1), 0);
	assert_null(tsms_http_unsafe_environment());
	unsetenv("SSLKEYLOGFILE");
	unsetenv("HTTPS_PROXY");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_proxy_accepted),
		cmocka_unit_test(test_proxy_refused),
		cmocka_unit_test(test_proxy_too_long_refused),
		cmocka_unit_test(test_proxy_shown_hides_credentials),
		cmocka_unit_test(test_environ_hidden_then_restored),
		cmocka_unit_test(test_environ_nested_and_set_while_hidden),
		cmocka_unit_test(test_unsafe_environment_named),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
