/* test_grace.c - unit tests of lib/grace: the address grace's key from
 * PAM_RHOST, this process's audit session (in forked children that set their
 * login uid, as pam_loginuid does), and the graces opened after a right code,
 * found before a challenge and redeemed by the session hook, in a temporary
 * stateDir (the files store). */
#include "unit.h"

#include <stdbool.h>
#include <sys/wait.h>
#include <time.h>

#include "challenge.h"
#include "config.h"
#include "grace.h"
#include "otp.h"
#include "state.h"

#define PHONE "+15555550006"
#define SESSION_UNSET 4294967295U

/* ---- the address grace's key ---- */

/* tsms_grace_address between canaries: the key, or NULL when it gave none. */
static const char *address_of(const char *rhost, char out[TSMS_GRACE_KEY_MAX])
{
	struct {
		char before[16];
		char key[TSMS_GRACE_KEY_MAX];
		char after[16];
	} g;
	bool ok;

	memset(&g, 'Z', sizeof(g));
	ok = tsms_grace_address(rhost, g.key);
	for (size_t i = 0; i < sizeof(g.before); i++)
		assert_int_equal(g.before[i], 'Z');
	for (size_t i = 0; i < sizeof(g.after); i++)
		assert_int_equal(g.after[i], 'Z');
	assert_non_null(memchr(g.key, '\0', sizeof(g.key)));
	memcpy(out, g.key, TSMS_GRACE_KEY_MAX);
	if (!ok) {
		/* nothing half-written that a caller could store */
		assert_string_equal(out, "");
		return NULL;
	}
	/* what a state file's g line may hold */
	assert_true(out[0] != '\0');
	assert_int_equal(strspn(out, "0123456789abcdef.:"), strlen(out));
	return out;
}

#define expect_address(rhost, want) expect_address_at((rhost), (want), __FILE__, __LINE__)
#define expect_no_address(rhost) expect_address_at((rhost), NULL, __FILE__, __LINE__)

/* rhost must give the key want, or none when want is NULL. */
static void expect_address_at(const char *rhost, const char *want, const char *file, int line)
{
	char key[TSMS_GRACE_KEY_MAX];
	const char *got = address_of(rhost, key);

	if ((got == NULL) != (want == NULL) || (got != NULL && strcmp(got, want) != 0)) {
		print_error("%s:%d: rhost \"%.80s\" gave \"%s\", expected \"%s\"\n", file, line,
		            rhost != NULL ? rhost : "(null)", got != NULL ? got : "(none)",
		            want != NULL ? want : "(none)");
		_fail(file, line);
	}
}

static void test_address_ipv4(void **state)
{
	(void)state;
	expect_address("192.0.2.1", "192.0.2.1");
	expect_address("127.0.0.1", "127.0.0.1");
	expect_address("0.0.0.0", "0.0.0.0");
	expect_address("255.255.255.255", "255.255.255.255");
	/* what inet_pton does not read as a dotted quad never qualifies */
	expect_no_address("192.0.2");
	expect_no_address("192.0.2.1.5");
	expect_no_address("256.0.0.1");
	expect_no_address("192.0.2.01");
	expect_no_address("0x7f.0.0.1");
	expect_no_address("3221225985"); /* 192.0.2.1 as a number */
	expect_no_address(" 192.0.2.1");
	expect_no_address("192.0.2.1 ");
	expect_no_address("192.0.2.1\n");
	expect_no_address("192.0.2.1:22");
	expect_no_address("192.0.2.1/32");
}

static void test_address_ipv6_canonical(void **state)
{
	(void)state;
	expect_address("2001:db8::1", "2001:db8::1");
	expect_address("2001:DB8::1", "2001:db8::1");
	expect_address("2001:0db8:0000:0000:0000:0000:0000:0001", "2001:db8::1");
	expect_address("2001:db8:0:0:1:0:0:1", "2001:db8::1:0:0:1");
	expect_address("::1", "::1");
	expect_address("0:0:0:0:0:0:0:1", "::1");
	expect_address("::", "::");
	expect_address("fe80::1", "fe80::1");
	expect_address("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff",
	               "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff");
	/* an IPv4 address mapped into IPv6 is that IPv4 address: one grace */
	expect_address("::ffff:192.0.2.1", "192.0.2.1");
	expect_address("::FFFF:192.0.2.1", "192.0.2.1");
	expect_address("::ffff:c000:201", "192.0.2.1");
	expect_address("0:0:0:0:0:ffff:c000:0201", "192.0.2.1");
	expect_address("::ffff:127.0.0.1", "127.0.0.1");
	/* neither is mapped: they stay IPv6, never another host's IPv4 key */
	expect_address("::ffff:0:c000:201", "::ffff:0:c000:201");
	expect_address("64:ff9b::c000:201", "64:ff9b::c000:201");
}

static void test_address_not_an_address(void **state)
{
	static const char *const refused[] = {
		"",
		"example.com",
		"localhost",
		"host-192-0-2-1.example.net",
		"192.0.2.1.example.net",
		"fe80::1%eth0", /* a scope: the address of a link, not of a host */
		"fe80::1%1",
		"[::1]",
		"[2001:db8::1]:22",
		"::1/128",
		"2001:db8::1::2",
		"2001:db8:::1",
		"12345::1",
		"2001:db8::g",
		":::",
		"::ffff:192.0.2.256",
		"::ffff:1.2.3",
		"1:2:3:4:5:6:7:8:9",
		"::1\n",
		"\t::1",
	};
	char big[1100];

	(void)state;
	expect_no_address(NULL);
	for (size_t i = 0; i < sizeof(refused) / sizeof(refused[0]); i++)
		expect_no_address(refused[i]);
	/* overlong input: never copied, never a key */
	memset(big, '1', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	expect_no_address(big);
	for (size_t i = 0; i + 1 < sizeof(big); i++)
		big[i] = i % 5 == 4 ? ':' : 'f';
	expect_no_address(big);
	memset(big, ':', sizeof(big) - 1);
	expect_no_address(big);
	for (size_t i = 0; i + 1 < sizeof(big); i++)
		big[i] = "192.0.2.1."[i % 10];
	expect_no_address(big);
	snprintf(big, sizeof(big), "%s", "\xff\xfe::1");
	expect_no_address(big);
}

/* ---- a files-backed state in a temporary stateDir ---- */

struct log_lines {
	unsigned n;
	int priority;
	char last[512];
};

static void keep_line(void *ctx, int priority, const char *line)
{
	struct log_lines *l = ctx;

	l->n++;
	l->priority = priority;
	snprintf(l->last, sizeof(l->last), "%s", line);
}

/* one test's world: a mkdtemp root, root/state the stateDir (made 0700 by the
 * library), the config's grace times set by each test */
struct world {
	char root[64];
	char dir[96];
	struct tsms_config cfg;
	struct tsms_state *st;
	struct log_lines lines;
	struct tsms_log log;
};

static int world_setup(void **state)
{
	struct world *w = calloc(1, sizeof(*w));

	if (w == NULL)
		return -1;
	snprintf(w->root, sizeof(w->root), "/tmp/tsms-unit-grace-XXXXXX");
	if (mkdtemp(w->root) == NULL) {
		free(w);
		return -1;
	}
	snprintf(w->dir, sizeof(w->dir), "%s/state", w->root);
	w->cfg.state_dir = w->dir;
	w->cfg.send_limit = 5;
	w->cfg.send_window_seconds = 900;
	w->cfg.resend_cooldown_seconds = 30;
	w->cfg.lockout_threshold = 3;
	w->cfg.lockout_seconds = 900;
	w->cfg.grace_period_seconds = 600;
	w->log = (struct tsms_log){ .fn = keep_line, .ctx = &w->lines };
	w->st = tsms_state_open(&w->cfg, &w->log);
	if (w->st == NULL) {
		free(w);
		return -1;
	}
	*state = w;
	return 0;
}

static int world_teardown(void **state)
{
	struct world *w = *state;

	if (w != NULL) {
		unit_remove_tree(w->root);
		tsms_state_close(w->st);
		free(w);
	}
	return 0;
}

/* The library insists on root-owned state: without root there is nothing to test. */
static struct world *world_of(void **state)
{
	if (geteuid() != 0) {
		print_message("skipped: needs root (state must be root-owned)\n");
		skip();
	}
	return *state;
}

/* Whether this process is in an audit session, by the kernel's own file. */
static bool in_session(void)
{
	char buf[32] = "";
	ssize_t n;
	int fd = open("/proc/self/sessionid", O_RDONLY);

	if (fd < 0)
		return false;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return false;
	buf[n] = '\0';
	return strtoul(buf, NULL, 10) != SESSION_UNSET;
}

/* The outcome of a login let in by method (a right code, or a grace). */
static struct tsms_outcome by(const char *method, long long grace_until)
{
	struct tsms_outcome o;

	memset(&o, 0, sizeof(o));
	o.method = method;
	o.grace_until = grace_until;
	return o;
}

/* tsms_grace_after for user from rhost; returns the nonce in nonce. */
static void after(struct world *w, const char *user, const char *rhost,
                  const struct tsms_outcome *o, char nonce[TSMS_GRACE_NONCE_MAX])
{
	memset(nonce, 'Z', TSMS_GRACE_NONCE_MAX);
	tsms_grace_after(&w->cfg, w->st, user, rhost, o, &w->log, nonce);
	assert_non_null(memchr(nonce, '\0', TSMS_GRACE_NONCE_MAX));
}

/* user's open graces (this host's: the files) */
static size_t graces_of(struct world *w, const char *user,
                        struct tsms_grace out[2 * TSMS_GRACE_MAX])
{
	char err[TSMS_STATE_ERR_MAX];
	size_t n = 99;

	assert_int_equal(tsms_state_graces(w->st, user, time(NULL), out, &n, err), TSMS_OK);
	return n;
}

/* tsms_grace_applies; o gets the outcome */
static bool applies(struct world *w, const char *user, const char *rhost, struct tsms_outcome *o)
{
	memset(o, 0, sizeof(*o));
	return tsms_grace_applies(&w->cfg, w->st, user, PHONE, rhost, o);
}

static void test_after_code_opens_address_grace(void **state)
{
	struct world *w = world_of(state);
	struct tsms_grace g[2 * TSMS_GRACE_MAX];
	struct tsms_outcome code = by("sms", 0), o;
	char nonce[TSMS_GRACE_NONCE_MAX];
	long long now, until;

	assert_false(applies(w, "alice", "192.0.2.1", &o));
	assert_null(o.method);
	now = time(NULL);
	after(w, "alice", "192.0.2.1", &code, nonce);
	assert_string_equal(nonce, ""); /* sessionGraceSeconds 0: no nonce */
	assert_int_equal(w->lines.n, 0);
	assert_int_equal(graces_of(w, "alice", g), 1);
	assert_int_equal(g[0].kind, TSMS_GRACE_ADDRESS);
	assert_string_equal(g[0].key, "192.0.2.1");
	assert_true(g[0].until >= now + 600 && g[0].until <= time(NULL) + 600);
	until = g[0].until;

	assert_true(applies(w, "alice", "192.0.2.1", &o));
	assert_ptr_equal(o.method, TSMS_METHOD_GRACE_ADDRESS);
	assert_string_equal(o.method, "grace-address");
	assert_contains(o.reason, "from 192.0.2.1, where a right code was given: "
	                          "gracePeriodSeconds, ");
	assert_contains(o.reason, " s left");
	assert_true(o.grace_until == g[0].until);
	assert_string_equal(o.masked_phone, "******0006");
	assert_no_control(o.reason);
	/* the same address written another way is the same grace */
	assert_true(applies(w, "alice", "::ffff:192.0.2.1", &o));
	assert_ptr_equal(o.method, TSMS_METHOD_GRACE_ADDRESS);
	/* another address, another user, no address, a host name: asked as usual */
	assert_false(applies(w, "alice", "192.0.2.2", &o));
	assert_null(o.method);
	assert_false(applies(w, "bob", "192.0.2.1", &o));
	assert_false(applies(w, "alice", NULL, &o));
	assert_false(applies(w, "alice", "", &o));
	assert_false(applies(w, "alice", "example.com", &o));
	/* a login let in by it does not extend it */
	sleep(1);
	code = by(TSMS_METHOD_GRACE_ADDRESS, until);
	after(w, "alice", "192.0.2.1", &code, nonce);
	assert_int_equal(graces_of(w, "alice", g), 1);
	assert_true(g[0].until == until);
	/* switched off, an open grace lets no one in */
	w->cfg.grace_period_seconds = 0;
	assert_false(applies(w, "alice", "192.0.2.1", &o));
}

static void test_after_backup_code_opens_ipv6_grace(void **state)
{
	struct world *w = world_of(state);
	struct tsms_grace g[2 * TSMS_GRACE_MAX];
	struct tsms_outcome code = by("backup-code", 0), o;
	char nonce[TSMS_GRACE_NONCE_MAX];

	after(w, "alice", "2001:DB8:0:0::7", &code, nonce);
	assert_int_equal(graces_of(w, "alice", g), 1);
	assert_string_equal(g[0].key, "2001:db8::7");
	assert_true(applies(w, "alice", "2001:db8::7", &o));
	assert_contains(o.reason, "from 2001:db8::7,");
}

static void test_after_opens_nothing_without_code_or_address(void **state)
{
	struct world *w = world_of(state);
	static const char *const no_address[] = { NULL, "", "example.com", "fe80::1%eth0" };
	struct tsms_grace g[2 * TSMS_GRACE_MAX];
	struct tsms_outcome o;
	char nonce[TSMS_GRACE_NONCE_MAX];

	/* not a code of this module: stacked on another factor, none, a grace */
	o = by("stacked", 0);
	after(w, "alice", "192.0.2.1", &o, nonce);
	o = by(NULL, 0);
	after(w, "alice", "192.0.2.1", &o, nonce);
	o = by("grace-session", 0);
	after(w, "alice", "192.0.2.1", &o, nonce);
	o = by(TSMS_METHOD_GRACE_SESSION, time(NULL) + 100);
	after(w, "alice", "192.0.2.1", &o, nonce);
	o = by(TSMS_METHOD_GRACE_ADDRESS, time(NULL) + 100);
	after(w, "alice", "192.0.2.1", &o, nonce);
	o = by("SMS", 0);
	after(w, "alice", "192.0.2.1", &o, nonce);
	assert_int_equal(graces_of(w, "alice", g), 0);
	/* a code, but no IP address to hold it */
	o = by("sms", 0);
	for (size_t i = 0; i < sizeof(no_address) / sizeof(no_address[0]); i++)
		after(w, "alice", no_address[i], &o, nonce);
	assert_int_equal(graces_of(w, "alice", g), 0);
	/* a code, but gracePeriodSeconds 0 */
	w->cfg.grace_period_seconds = 0;
	after(w, "alice", "192.0.2.1", &o, nonce);
	assert_int_equal(graces_of(w, "alice", g), 0);
	assert_string_equal(nonce, "");
	assert_int_equal(w->lines.n, 0);
}

static void test_locked_user_gets_no_grace(void **state)
{
	struct world *w = world_of(state);
	struct tsms_outcome code = by("sms", 0), o;
	char nonce[TSMS_GRACE_NONCE_MAX], err[TSMS_STATE_ERR_MAX];
	struct tsms_state_status st_before;
	bool locked = false;
	long long before;

	after(w, "alice", "192.0.2.1", &code, nonce);
	assert_true(applies(w, "alice", "192.0.2.1", &o));
	for (unsigned i = 0; i < w->cfg.lockout_threshold; i++)
		assert_int_equal(tsms_state_record_failure(w->st, "alice", time(NULL), &locked,
		                                           &before, err),
		                 TSMS_OK);
	assert_true(locked);
	assert_false(applies(w, "alice", "192.0.2.1", &o));
	assert_null(o.method);
	assert_int_equal(o.grace_until, 0);
	/* the grace itself is kept: an unlock gives it back */
	assert_int_equal(tsms_state_unlock(w->st, "alice", time(NULL), &st_before, err), TSMS_OK);
	assert_true(applies(w, "alice", "192.0.2.1", &o));
}

static void test_after_pending_nonce(void **state)
{
	struct world *w = world_of(state);
	struct tsms_grace g[2 * TSMS_GRACE_MAX];
	struct tsms_outcome code = by("sms", 0);
	char nonce[TSMS_GRACE_NONCE_MAX], digest[TSMS_DIGEST_HEX];
	size_t n, pending = 0;
	long long now;

	w->cfg.session_grace_seconds = 300;
	now = time(NULL);
	after(w, "alice", "192.0.2.1", &code, nonce);
	if (in_session()) {
		/* sudo or su inside a session: never a nonce, only login processes leave one */
		assert_string_equal(nonce, "");
		assert_int_equal(graces_of(w, "alice", g), 1);
		return;
	}
	assert_int_equal(strlen(nonce), 32);
	assert_int_equal(strspn(nonce, "0123456789abcdef"), 32);
	tsms_digest_hex(NULL, nonce, digest);
	n = graces_of(w, "alice", g);
	assert_int_equal(n, 2);
	for (size_t i = 0; i < n; i++) {
		if (g[i].kind != TSMS_GRACE_PENDING)
			continue;
		pending++;
		/* the digest is stored, never the nonce, then the names of this process and
		 * its parent (who may redeem it) and when the session grace would end; the
		 * nonce itself waits two minutes for its session */
		assert_memory_equal(g[i].key, digest, 24);
		assert_int_equal(g[i].key[24], '-');
		assert_null(strstr(g[i].key, nonce));
		assert_int_equal(strlen(g[i].key), 24 + 1 + 12 + 1 + 12 + 1 + 8);
		assert_true(strtoll(strrchr(g[i].key, '-') + 1, NULL, 16) >= now + 300 &&
		            strtoll(strrchr(g[i].key, '-') + 1, NULL, 16) <= time(NULL) + 300);
		assert_true(g[i].until >= now + 120 && g[i].until <= time(NULL) + 120);
	}
	assert_int_equal(pending, 1);
	/* a second login makes another nonce */
	{
		char again[TSMS_GRACE_NONCE_MAX];

		after(w, "alice", "192.0.2.1", &code, again);
		assert_string_not_equal(again, nonce);
		assert_int_equal(graces_of(w, "alice", g), 3);
	}
}

static void test_after_address_grace_login_nonce_capped(void **state)
{
	struct world *w = world_of(state);
	struct tsms_grace g[2 * TSMS_GRACE_MAX];
	struct tsms_outcome o;
	char nonce[TSMS_GRACE_NONCE_MAX];
	long long until = time(NULL) + 40;
	size_t n;

	w->cfg.session_grace_seconds = 300;
	o = by(TSMS_METHOD_GRACE_ADDRESS, until);
	after(w, "alice", "192.0.2.1", &o, nonce);
	if (in_session()) {
		assert_string_equal(nonce, "");
		return;
	}
	assert_int_equal(strlen(nonce), 32);
	n = graces_of(w, "alice", g);
	assert_int_equal(n, 1); /* the pending one alone: a grace login opens no address grace */
	assert_int_equal(g[0].kind, TSMS_GRACE_PENDING);
	/* never longer than the code it comes from */
	assert_true(g[0].until == until);
	/* a session grace login leaves no nonce */
	o = by(TSMS_METHOD_GRACE_SESSION, until);
	after(w, "bob", "", &o, nonce);
	assert_string_equal(nonce, "");
	assert_int_equal(graces_of(w, "bob", g), 0);
}

static void test_session_opened_refuses(void **state)
{
	struct world *w = world_of(state);
	struct tsms_grace g[2 * TSMS_GRACE_MAX];
	struct tsms_outcome code = by("sms", 0);
	char nonce[TSMS_GRACE_NONCE_MAX], wrong[TSMS_GRACE_NONCE_MAX];
	static const char *const malformed[] = {
		"",
		"0123456789abcdef0123456789abcde",   /* 31 */
		"0123456789abcdef0123456789abcdef0", /* 33 */
		"0123456789ABCDEF0123456789ABCDEF",
		"0123456789abcdef0123456789abcdeg",
		"0123456789abcdef0123456789abcde\n",
		"../../../../../../etc/passwd0000",
	};

	w->cfg.session_grace_seconds = 300;
	if (in_session()) {
		print_message(
			"skipped: the test runs inside an audit session (no nonce is made)\n");
		skip();
	}
	after(w, "alice", "", &code, nonce);
	assert_int_equal(strlen(nonce), 32);
	/* a nonce that names no code of alice's */
	snprintf(wrong, sizeof(wrong), "%s", nonce);
	wrong[0] = wrong[0] == '0' ? '1' : '0';
	w->lines.n = 0;
	assert_false(tsms_grace_session_opened(&w->cfg, w->st, "alice", wrong, &w->log));
	assert_int_equal(w->lines.n, 1);
	assert_int_equal(w->lines.priority, LOG_WARNING);
	assert_contains(w->lines.last, "no session grace for alice: ");
	assert_contains(w->lines.last, "names no code of theirs");
	assert_not_contains(w->lines.last, nonce);
	assert_not_contains(w->lines.last, wrong);
	/* alice's nonce for bob */
	assert_false(tsms_grace_session_opened(&w->cfg, w->st, "bob", nonce, &w->log));
	assert_contains(w->lines.last, "no session grace for bob: ");
	assert_contains(w->lines.last, "names no code of theirs");
	for (size_t i = 0; i < sizeof(malformed) / sizeof(malformed[0]); i++) {
		w->lines.n = 0;
		assert_false(
			tsms_grace_session_opened(&w->cfg, w->st, "alice", malformed[i], &w->log));
		assert_int_equal(w->lines.n, 1);
		assert_contains(w->lines.last, "PAM_TWILIO_SMS_SESSION is malformed");
	}
	/* the pending one is still there, and nothing else was opened */
	assert_int_equal(graces_of(w, "alice", g), 1);
	assert_int_equal(g[0].kind, TSMS_GRACE_PENDING);
	assert_int_equal(graces_of(w, "bob", g), 0);
	/* the session line's config without session graces */
	w->cfg.session_grace_seconds = 0;
	assert_false(tsms_grace_session_opened(&w->cfg, w->st, "alice", nonce, &w->log));
	assert_contains(w->lines.last, "sessionGraceSeconds is 0");
	/* and in a config without them, the pending one has ended */
	assert_int_equal(graces_of(w, "alice", g), 0);
	/* the right nonce in a process outside any session: taken, nothing opened */
	w->cfg.session_grace_seconds = 300;
	after(w, "alice", "", &code, nonce);
	assert_int_equal(graces_of(w, "alice", g), 1);
	assert_false(tsms_grace_session_opened(&w->cfg, w->st, "alice", nonce, &w->log));
	assert_int_equal(w->lines.priority, LOG_WARNING);
	assert_contains(w->lines.last, "the process has no audit session");
	assert_contains(w->lines.last, "after pam_loginuid.so");
	assert_int_equal(graces_of(w, "alice", g), 0);
	/* used once */
	assert_false(tsms_grace_session_opened(&w->cfg, w->st, "alice", nonce, &w->log));
	assert_contains(w->lines.last, "names no code of theirs");
}

/* ---- the audit session, in children that set their login uid ---- */

enum { CHILD_OK = 0, CHILD_SKIP = 77 };

/* In a child (no cmocka there): a failed check prints where and exits with its line. */
#define child_check(cond)                                                                         \
	do {                                                                                      \
		if (!(cond)) {                                                                    \
			fprintf(stderr, "%s:%d: child: failed: %s\n", __FILE__, __LINE__, #cond); \
			_exit(__LINE__ % 200 + 1);                                                \
		}                                                                                 \
	} while (0)

/* Reads a /proc file of this process (without its newline) into buf. */
static bool read_own(const char *path, char *buf, size_t size)
{
	ssize_t n;
	int fd = open(path, O_RDONLY);

	if (fd < 0)
		return false;
	n = read(fd, buf, size - 1);
	close(fd);
	if (n <= 0)
		return false;
	buf[n] = '\0';
	buf[strcspn(buf, "\n")] = '\0';
	return true;
}

/* What pam_loginuid does: sets the login uid, and the kernel starts a new audit
 * session. False when the kernel or the container refuses. */
static bool set_loginuid(void)
{
	int fd = open("/proc/self/loginuid", O_WRONLY);
	bool ok;

	if (fd < 0)
		return false;
	ok = write(fd, "0", 1) == 1;
	close(fd);
	return ok;
}

/* Runs fn(w) in a child; passes, skips (the kernel gives no session) or fails. */
static void in_child(struct world *w, void (*fn)(struct world *))
{
	int status = 0;
	pid_t pid;

	fflush(NULL);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		alarm(20);
		fn(w);
		_exit(CHILD_OK);
	}
	assert_int_equal(waitpid(pid, &status, 0), pid);
	if (WIFEXITED(status) && WEXITSTATUS(status) == CHILD_SKIP) {
		print_message("skipped: this process cannot set its login uid (no audit "
		              "support, or not allowed here)\n");
		skip();
	}
	if (!WIFEXITED(status) || WEXITSTATUS(status) != CHILD_OK) {
		print_error("the child failed (%s %d)\n",
		            WIFEXITED(status) ? "exit status" : "signal",
		            WIFEXITED(status) ? WEXITSTATUS(status) : WTERMSIG(status));
		fail();
	}
}

/* The key of this process's session as the kernel names it. */
static void expected_key(char out[TSMS_GRACE_KEY_MAX], unsigned long *id)
{
	char sid[32], boot[64];

	child_check(read_own("/proc/self/sessionid", sid, sizeof(sid)));
	child_check(read_own("/proc/sys/kernel/random/boot_id", boot, sizeof(boot)));
	child_check(strlen(boot) == 36);
	*id = strtoul(sid, NULL, 10);
	snprintf(out, TSMS_GRACE_KEY_MAX, "%lu:%s", *id, boot);
}

static void session_child(struct world *w)
{
	char key[TSMS_GRACE_KEY_MAX], want[TSMS_GRACE_KEY_MAX], key2[TSMS_GRACE_KEY_MAX];
	unsigned id = 7;
	unsigned long sid;

	(void)w;
	if (!in_session()) {
		child_check(!tsms_grace_session(key, &id));
		child_check(key[0] == '\0');
		child_check(id == SESSION_UNSET);
	}
	if (!set_loginuid())
		_exit(CHILD_SKIP);
	child_check(in_session());
	child_check(tsms_grace_session(key, &id));
	expected_key(want, &sid);
	child_check(strcmp(key, want) == 0);
	child_check(id == sid);
	child_check(strspn(key, "0123456789abcdef:-") == strlen(key));
	child_check(strlen(key) < TSMS_GRACE_KEY_MAX);
	/* root may start another session: another key */
	if (set_loginuid()) {
		child_check(tsms_grace_session(key2, &id));
		expected_key(want, &sid);
		child_check(strcmp(key2, want) == 0);
		child_check(strcmp(key2, key) != 0);
	}
}

static void test_session_key(void **state)
{
	struct world *w = world_of(state);

	in_child(w, session_child);
}

/* A login process outside any session: a code, the nonce; pam_loginuid; the
 * session hook; then sudo inside that session. */
static void session_flow_child(struct world *w)
{
	struct tsms_grace g[2 * TSMS_GRACE_MAX];
	struct tsms_outcome code = by("sms", 0), o;
	char nonce[TSMS_GRACE_NONCE_MAX], key[TSMS_GRACE_KEY_MAX];
	long long now = time(NULL);
	unsigned id;
	size_t n;

	if (in_session())
		_exit(CHILD_SKIP);
	memset(nonce, 0, sizeof(nonce));
	tsms_grace_after(&w->cfg, w->st, "alice", "192.0.2.1", &code, &w->log, nonce);
	child_check(strlen(nonce) == 32);
	/* before the session starts, nothing lets alice in without an address */
	memset(&o, 0, sizeof(o));
	child_check(!tsms_grace_applies(&w->cfg, w->st, "alice", PHONE, NULL, &o));
	if (!set_loginuid())
		_exit(CHILD_SKIP);
	child_check(tsms_grace_session(key, &id));
	w->lines.n = 0;
	child_check(tsms_grace_session_opened(&w->cfg, w->st, "alice", nonce, &w->log));
	child_check(w->lines.n == 1);
	child_check(w->lines.priority == LOG_INFO);
	child_check(strstr(w->lines.last, "session grace for alice: audit session ") != NULL);
	child_check(strstr(w->lines.last, "(sessionGraceSeconds)") != NULL);
	child_check(strstr(w->lines.last, nonce) == NULL);
	/* the pending one became the session's, ending when it would have */
	child_check(tsms_state_graces(w->st, "alice", time(NULL), g, &n, w->lines.last) == TSMS_OK);
	child_check(n == 2); /* the address grace, and the session's */
	for (size_t i = 0; i < n; i++) {
		child_check(g[i].kind != TSMS_GRACE_PENDING);
		if (g[i].kind == TSMS_GRACE_SESSION) {
			child_check(strcmp(g[i].key, key) == 0);
			child_check(g[i].until >= now + 300 && g[i].until <= time(NULL) + 300);
		}
	}
	/* sudo in the session, no remote host: let in */
	memset(&o, 0, sizeof(o));
	child_check(tsms_grace_applies(&w->cfg, w->st, "alice", PHONE, NULL, &o));
	child_check(o.method == TSMS_METHOD_GRACE_SESSION);
	child_check(strstr(o.reason, "in audit session ") != NULL);
	child_check(strstr(o.reason, "opened after a right code: sessionGraceSeconds, ") != NULL);
	child_check(strcmp(o.masked_phone, "******0006") == 0);
	memset(&o, 0, sizeof(o));
	child_check(tsms_grace_applies(&w->cfg, w->st, "alice", PHONE, "", &o));
	/* another user in alice's session (su bob): asked */
	memset(&o, 0, sizeof(o));
	child_check(!tsms_grace_applies(&w->cfg, w->st, "bob", PHONE, NULL, &o));
	child_check(o.method == NULL);
	/* a caller naming a remote host is a login: the address grace, not the session's */
	memset(&o, 0, sizeof(o));
	child_check(tsms_grace_applies(&w->cfg, w->st, "alice", PHONE, "192.0.2.1", &o));
	child_check(o.method == TSMS_METHOD_GRACE_ADDRESS);
	memset(&o, 0, sizeof(o));
	child_check(!tsms_grace_applies(&w->cfg, w->st, "alice", PHONE, "192.0.2.9", &o));
	/* the nonce works once */
	child_check(!tsms_grace_session_opened(&w->cfg, w->st, "alice", nonce, &w->log));
	child_check(strstr(w->lines.last, "names no code of theirs") != NULL);
	/* a process inside the session makes no nonce */
	tsms_grace_after(&w->cfg, w->st, "alice", "192.0.2.1", &code, &w->log, nonce);
	child_check(nonce[0] == '\0');
	/* session graces switched off: the session's lets no one in */
	w->cfg.session_grace_seconds = 0;
	memset(&o, 0, sizeof(o));
	child_check(!tsms_grace_applies(&w->cfg, w->st, "alice", PHONE, NULL, &o));
	w->cfg.session_grace_seconds = 300;
	/* the session's end, with session graces off in the line's config: nothing ended */
	w->cfg.session_grace_seconds = 0;
	tsms_grace_session_closed(&w->cfg, w->st, "alice", &w->log);
	w->cfg.session_grace_seconds = 300;
	memset(&o, 0, sizeof(o));
	child_check(tsms_grace_applies(&w->cfg, w->st, "alice", PHONE, NULL, &o));
	/* another user's session end ends nothing of alice's */
	tsms_grace_session_closed(&w->cfg, w->st, "bob", &w->log);
	memset(&o, 0, sizeof(o));
	child_check(tsms_grace_applies(&w->cfg, w->st, "alice", PHONE, NULL, &o));
	/* a new session (another login of root's): not the one opened after the code, and
	 * its end leaves that one open */
	if (set_loginuid()) {
		memset(&o, 0, sizeof(o));
		child_check(!tsms_grace_applies(&w->cfg, w->st, "alice", PHONE, NULL, &o));
		tsms_grace_session_closed(&w->cfg, w->st, "alice", &w->log);
		child_check(tsms_state_graces(w->st, "alice", time(NULL), g, &n, w->lines.last) ==
		            TSMS_OK);
		child_check(n == 2);
	}
}

/* The session's end (pam_close_session in the same handle) ends its grace, so that
 * what the user left running after logout cannot use it; the address grace stays. */
static void session_close_child(struct world *w)
{
	struct tsms_grace g[2 * TSMS_GRACE_MAX];
	struct tsms_outcome code = by("sms", 0), o;
	char nonce[TSMS_GRACE_NONCE_MAX];
	size_t n;

	if (in_session())
		_exit(CHILD_SKIP);
	tsms_grace_after(&w->cfg, w->st, "alice", "192.0.2.1", &code, &w->log, nonce);
	child_check(strlen(nonce) == 32);
	if (!set_loginuid())
		_exit(CHILD_SKIP);
	child_check(tsms_grace_session_opened(&w->cfg, w->st, "alice", nonce, &w->log));
	memset(&o, 0, sizeof(o));
	child_check(tsms_grace_applies(&w->cfg, w->st, "alice", PHONE, NULL, &o));
	tsms_grace_session_closed(&w->cfg, w->st, "alice", &w->log);
	memset(&o, 0, sizeof(o));
	child_check(!tsms_grace_applies(&w->cfg, w->st, "alice", PHONE, NULL, &o));
	child_check(tsms_state_graces(w->st, "alice", time(NULL), g, &n, w->lines.last) == TSMS_OK);
	child_check(n == 1 && g[0].kind == TSMS_GRACE_ADDRESS);
	/* a second end finds nothing to end */
	tsms_grace_session_closed(&w->cfg, w->st, "alice", &w->log);
	memset(&o, 0, sizeof(o));
	child_check(tsms_grace_applies(&w->cfg, w->st, "alice", PHONE, "192.0.2.1", &o));
}

static void test_session_grace_closed(void **state)
{
	struct world *w = world_of(state);

	w->cfg.session_grace_seconds = 300;
	in_child(w, session_close_child);
}

static void test_session_grace_flow(void **state)
{
	struct world *w = world_of(state);

	w->cfg.session_grace_seconds = 300;
	in_child(w, session_flow_child);
}

/* A lockout wins over a session grace too. */
static void session_locked_child(struct world *w)
{
	struct tsms_outcome code = by("sms", 0), o;
	char nonce[TSMS_GRACE_NONCE_MAX], err[TSMS_STATE_ERR_MAX];
	bool locked = false;
	long long before;

	if (in_session())
		_exit(CHILD_SKIP);
	tsms_grace_after(&w->cfg, w->st, "alice", NULL, &code, &w->log, nonce);
	child_check(strlen(nonce) == 32);
	if (!set_loginuid())
		_exit(CHILD_SKIP);
	child_check(tsms_grace_session_opened(&w->cfg, w->st, "alice", nonce, &w->log));
	memset(&o, 0, sizeof(o));
	child_check(tsms_grace_applies(&w->cfg, w->st, "alice", PHONE, NULL, &o));
	for (unsigned i = 0; i < w->cfg.lockout_threshold; i++)
		child_check(tsms_state_record_failure(w->st, "alice", time(NULL), &locked, &before,
		                                      err) == TSMS_OK);
	child_check(locked);
	memset(&o, 0, sizeof(o));
	child_check(!tsms_grace_applies(&w->cfg, w->st, "alice", PHONE, NULL, &o));
	child_check(o.method == NULL);
}

static void test_session_grace_locked_out(void **state)
{
	struct world *w = world_of(state);

	w->cfg.session_grace_seconds = 300;
	in_child(w, session_locked_child);
}

#define world_test(f) cmocka_unit_test_setup_teardown(f, world_setup, world_teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_address_ipv4),
		cmocka_unit_test(test_address_ipv6_canonical),
		cmocka_unit_test(test_address_not_an_address),
		world_test(test_after_code_opens_address_grace),
		world_test(test_after_backup_code_opens_ipv6_grace),
		world_test(test_after_opens_nothing_without_code_or_address),
		world_test(test_locked_user_gets_no_grace),
		world_test(test_after_pending_nonce),
		world_test(test_after_address_grace_login_nonce_capped),
		world_test(test_session_opened_refuses),
		world_test(test_session_key),
		world_test(test_session_grace_flow),
		world_test(test_session_grace_locked_out),
		world_test(test_session_grace_closed),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
