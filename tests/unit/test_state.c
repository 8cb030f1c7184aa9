/* test_state.c - unit tests of lib/state: state file names, send limits,
 * cooldown, the global cap and lockout in a temporary stateDir (explicit
 * `now` values make every window deterministic), fail-closed reading of
 * damaged state, and exact counts under concurrent processes. */
#include "unit.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <netinet/in.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>

#include "config.h"
#include "state.h"

/* a fixed "now"; tests move the clock by passing T0 + n */
#define T0 1700000000LL
/* what no reservation returns: shows that the verdict was written */
#define NO_VERDICT ((enum tsms_verdict)99)

/* one test's world: a mkdtemp root and root/state as the stateDir, which
 * does not exist until the library (or the test) creates it */
struct world {
	char root[64];
	char dir[96];
	struct tsms_config cfg;
	struct tsms_state *st; /* the files: the config has no redis */
};

struct guarded_err {
	char err[TSMS_STATE_ERR_MAX];
	char canary[64];
};

static void err_init(struct guarded_err *g)
{
	memset(g, 'Z', sizeof(*g));
}

/* err terminated inside its buffer, one printable line, nothing past it */
static void err_check(const struct guarded_err *g)
{
	for (size_t i = 0; i < sizeof(g->canary); i++) {
		if (g->canary[i] != 'Z') {
			print_error("state err buffer overrun at canary byte %zu\n", i);
			fail();
		}
	}
	assert_non_null(memchr(g->err, '\0', sizeof(g->err)));
	assert_no_control(g->err);
}

/* The config defaults of SPEC3, with stateDir pointing at the world. */
static int world_setup(void **state)
{
	struct world *w = calloc(1, sizeof(*w));

	if (w == NULL)
		return -1;
	snprintf(w->root, sizeof(w->root), "/tmp/tsms-unit-state-XXXXXX");
	if (mkdtemp(w->root) == NULL) {
		free(w);
		return -1;
	}
	snprintf(w->dir, sizeof(w->dir), "%s/state", w->root);
	w->cfg.state_dir = w->dir;
	w->cfg.send_limit = 5;
	w->cfg.send_window_seconds = 900;
	w->cfg.resend_cooldown_seconds = 30;
	w->cfg.global_send_limit = 0;
	w->cfg.max_resends = 1;
	w->cfg.lockout_threshold = 10;
	w->cfg.lockout_seconds = 900;
	w->cfg.max_retries = 2;
	w->st = tsms_state_open(&w->cfg, NULL);
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
		/* a test may leave the directory unreadable or odd-moded */
		chmod(w->dir, 0700);
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

static void make_dir(const struct world *w)
{
	assert_int_equal(mkdir(w->dir, 0700), 0);
}

static const char *verdict_name(enum tsms_verdict v)
{
	const char *name = tsms_verdict_name(v);

	return name != NULL ? name : "(null)";
}

/* Reserves one SMS; the call itself must succeed. Returns the verdict. */
static enum tsms_verdict reserve(const struct world *w, const char *user, long long now,
                                 long long *wait)
{
	struct guarded_err g;
	enum tsms_verdict v = NO_VERDICT;
	long long wait_seconds = -12345;
	enum tsms_err e;

	err_init(&g);
	e = tsms_state_reserve_send(w->st, user, (time_t)now, true, &v, &wait_seconds, g.err);
	err_check(&g);
	if (e != TSMS_OK) {
		print_error("reserve_send(%s, T0%+lld) returned %d: %s\n", user, now - T0, (int)e,
		            g.err);
		fail();
	}
	if (wait != NULL)
		*wait = wait_seconds;
	return v;
}

#define expect_send(w, user, now, verdict, wait) \
	expect_send_at((w), (user), (now), (verdict), (wait), __FILE__, __LINE__)

/* The reservation must give verdict, and wait seconds when refused. */
static void expect_send_at(const struct world *w, const char *user, long long now,
                           enum tsms_verdict verdict, long long wait, const char *file, int line)
{
	long long got_wait = 0;
	enum tsms_verdict got = reserve(w, user, now, &got_wait);

	if (got != verdict || (verdict != TSMS_VERDICT_OK && got_wait != wait)) {
		print_error("%s:%d: reserve_send(%s, T0%+lld) gave \"%s\" wait %lld, expected "
		            "\"%s\" wait %lld\n",
		            file, line, user, now - T0, verdict_name(got), got_wait,
		            verdict_name(verdict), verdict == TSMS_VERDICT_OK ? 0LL : wait);
		_fail(file, line);
	}
}

/* Records a wrong answer; returns whether the user is now locked out, and in
 * *before the seconds left of a lockout that ran before it (0: none). */
static bool wrong_answer_before(const struct world *w, const char *user, long long now,
                                long long *before)
{
	struct guarded_err g;
	bool locked = false;
	enum tsms_err e;

	err_init(&g);
	*before = -1;
	e = tsms_state_record_failure(w->st, user, (time_t)now, &locked, before, g.err);
	err_check(&g);
	if (e != TSMS_OK) {
		print_error("record_failure(%s) returned %d: %s\n", user, (int)e, g.err);
		fail();
	}
	return locked;
}

static bool wrong_answer(const struct world *w, const char *user, long long now)
{
	long long before;

	return wrong_answer_before(w, user, now, &before);
}

static void right_answer(const struct world *w, const char *user, long long now)
{
	struct guarded_err g;
	enum tsms_err e;

	err_init(&g);
	e = tsms_state_record_success(w->st, user, (time_t)now, g.err);
	err_check(&g);
	if (e != TSMS_OK) {
		print_error("record_success(%s) returned %d: %s\n", user, (int)e, g.err);
		fail();
	}
}

/* Reads dir/name into buf (NUL-terminated); returns its length, -1 if missing. */
static ssize_t read_state(const char *dir, const char *name, char *buf, size_t size)
{
	char path[256];
	ssize_t n;
	int fd;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	fd = open(path, O_RDONLY | O_NOFOLLOW);
	if (fd < 0)
		return -1;
	n = read(fd, buf, size - 1);
	close(fd);
	assert_true(n >= 0);
	buf[n] = '\0';
	return n;
}

/* The record a state file must hold, byte for byte. */
static void format_record(char *buf, size_t size, long long window_start, unsigned sends,
                          long long last_send, unsigned failures, long long locked_until)
{
	snprintf(buf, size,
	         "v1 window_start=%lld sends=%u last_send=%lld failures=%u locked_until=%lld\n",
	         window_start, sends, last_send, failures, locked_until);
}

#define expect_file(dir, name, ws, sends, ls, failures, lu) \
	expect_file_at((dir), (name), (ws), (sends), (ls), (failures), (lu), __FILE__, __LINE__)

static void expect_file_at(const char *dir, const char *name, long long window_start,
                           unsigned sends, long long last_send, unsigned failures,
                           long long locked_until, const char *file, int line)
{
	char want[256], got[512];

	format_record(want, sizeof(want), window_start, sends, last_send, failures, locked_until);
	if (read_state(dir, name, got, sizeof(got)) < 0) {
		print_error("%s:%d: %s/%s is missing\n", file, line, dir, name);
		_fail(file, line);
	}
	if (strcmp(got, want) != 0) {
		print_error("%s:%d: %s/%s holds\n  \"%s\"\nexpected\n  \"%s\"\n", file, line, dir,
		            name, got, want);
		_fail(file, line);
	}
}

/* Strictly parses a state file: the record must re-render to the same bytes. */
static bool parse_record(const char *content, unsigned *sends)
{
	long long ws = -1, ls = -1, lu = -1;
	unsigned failures = 0;
	char again[256];
	int used = -1;

	*sends = 0;
	if (sscanf(content,
	           "v1 window_start=%lld sends=%u last_send=%lld failures=%u "
	           "locked_until=%lld\n%n",
	           &ws, sends, &ls, &failures, &lu, &used) != 5 ||
	    used < 0)
		return false;
	format_record(again, sizeof(again), ws, *sends, ls, failures, lu);
	return strcmp(again, content) == 0;
}

/* Writes content (len bytes) as dir/name, root-owned, mode 0600. */
static void write_state(const char *dir, const char *name, const char *content, size_t len)
{
	char path[256];
	int fd;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	unlink(path);
	fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0600);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, content, len), (ssize_t)len);
	close(fd);
}

/* Names in dir that are not "." or "..", for leftover checks. */
static int count_entries(const char *dir, const char *suffix)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	int n = 0;

	assert_non_null(d);
	while ((e = readdir(d)) != NULL) {
		size_t len = strlen(e->d_name), slen = strlen(suffix);

		if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
			continue;
		if (len >= slen && strcmp(e->d_name + len - slen, suffix) == 0)
			n++;
	}
	closedir(d);
	return n;
}

/* ---- file names ---- */

/* Writes the name of user between canaries and checks the canaries. */
static void name_of(const char *user, char out[TSMS_STATE_NAME_MAX])
{
	struct {
		char before[16];
		char name[TSMS_STATE_NAME_MAX];
		char after[16];
	} g;

	memset(&g, 'Z', sizeof(g));
	tsms_state_file_name(user, g.name);
	for (size_t i = 0; i < sizeof(g.before); i++)
		assert_int_equal(g.before[i], 'Z');
	for (size_t i = 0; i < sizeof(g.after); i++)
		assert_int_equal(g.after[i], 'Z');
	assert_non_null(memchr(g.name, '\0', sizeof(g.name)));
	memcpy(out, g.name, TSMS_STATE_NAME_MAX);
}

/* The name must be "=" and 32 lowercase hex digits. */
static void assert_hashed_name(const char *user, const char *name)
{
	bool ok = strlen(name) == 33 && name[0] == '=';

	for (size_t i = 1; ok && i < 33; i++)
		ok = (name[i] >= '0' && name[i] <= '9') || (name[i] >= 'a' && name[i] <= 'f');
	if (!ok) {
		print_error("user \"%.60s\" (%zu bytes) got the file name \"%s\", expected \"=\" "
		            "and 32 hex digits\n",
		            user, strlen(user), name);
		fail();
	}
	assert_null(strchr(name, '/'));
}

static void test_name_plain_kept(void **state)
{
	static const char *const plain[] = {
		"alice", "a",      "_",  "_svc",   "bob.smith",
		"x-1",   "user_9", "a.", "z-._09", "abcdefghijklmnopqrstuvwxyz012345",
	};
	char name[TSMS_STATE_NAME_MAX];

	(void)state;
	assert_int_equal(strlen(plain[9]), 32);
	for (size_t i = 0; i < sizeof(plain) / sizeof(plain[0]); i++) {
		name_of(plain[i], name);
		assert_string_equal(name, plain[i]);
	}
}

/* user names that must never become a path: all hashed */
static const char *const odd_users[] = {
	"",
	"Alice",
	"ALICE",
	"aLICE",
	"1abc",
	"-x",
	".hidden",
	".",
	"..",
	"../etc/passwd",
	"../../../../tmp/x",
	"a/b",
	"/",
	"/etc/shadow",
	"alice/",
	"alice\n",
	"a\nb",
	"\n",
	"a b",
	"alice\t",
	"=abc",
	"a:b",
	"a*",
	"caf\xc3\xa9",
	"abcdefghijklmnopqrstuvwxyz0123456", /* 33 characters */
};

static void test_name_hashed(void **state)
{
	char name[TSMS_STATE_NAME_MAX];

	(void)state;
	for (size_t i = 0; i < sizeof(odd_users) / sizeof(odd_users[0]); i++) {
		name_of(odd_users[i], name);
		assert_hashed_name(odd_users[i], name);
	}
}

static void test_name_1kb(void **state)
{
	static const char *const units[] = { "a", "/", "../", "\n", "A", "\xff" };
	char user[1025], name[TSMS_STATE_NAME_MAX], other[TSMS_STATE_NAME_MAX];

	(void)state;
	for (size_t u = 0; u < sizeof(units) / sizeof(units[0]); u++) {
		size_t ulen = strlen(units[u]);

		for (size_t i = 0; i < 1024; i++)
			user[i] = units[u][i % ulen];
		user[1024] = '\0';
		name_of(user, name);
		assert_hashed_name(user, name);
		/* one byte at the very end changes the name */
		user[1023] = user[1023] == 'b' ? 'c' : 'b';
		name_of(user, other);
		assert_hashed_name(user, other);
		assert_string_not_equal(name, other);
	}
}

static void test_name_stable_and_distinct(void **state)
{
	enum { N = sizeof(odd_users) / sizeof(odd_users[0]) };
	char names[N][TSMS_STATE_NAME_MAX];
	char again[TSMS_STATE_NAME_MAX];

	(void)state;
	for (size_t i = 0; i < N; i++) {
		name_of(odd_users[i], names[i]);
		name_of(odd_users[i], again);
		assert_string_equal(names[i], again);
	}
	for (size_t i = 0; i < N; i++) {
		for (size_t j = i + 1; j < N; j++) {
			if (strcmp(names[i], names[j]) == 0) {
				print_error("users #%zu and #%zu share the file name %s\n", i, j,
				            names[i]);
				fail();
			}
		}
	}
	/* a hashed name never equals a plain one, and case matters */
	name_of("alice", again);
	assert_string_not_equal(again, names[1]); /* "Alice" */
}

static void test_verdict_names(void **state)
{
	(void)state;
	/* the log reason must say which limit said no */
	assert_contains(tsms_verdict_name(TSMS_VERDICT_LOCKED), "lockoutThreshold");
	assert_contains(tsms_verdict_name(TSMS_VERDICT_USER_LIMIT), "sendLimit");
	assert_contains(tsms_verdict_name(TSMS_VERDICT_COOLDOWN), "resendCooldownSeconds");
	assert_contains(tsms_verdict_name(TSMS_VERDICT_GLOBAL_LIMIT), "globalSendLimit");
	assert_non_null(tsms_verdict_name(TSMS_VERDICT_OK));
	assert_non_null(tsms_verdict_name((enum tsms_verdict)99));
}

/* ---- send limit, window, cooldown ---- */

static void test_send_limit_exact(void **state)
{
	struct world *w = world_of(state);

	w->cfg.send_limit = 4;
	w->cfg.resend_cooldown_seconds = 0;
	for (int i = 0; i < 4; i++)
		expect_send(w, "alice", T0 + 10 * i, TSMS_VERDICT_OK, 0);
	/* window T0 .. T0+900 */
	expect_send(w, "alice", T0 + 40, TSMS_VERDICT_USER_LIMIT, 860);
	expect_send(w, "alice", T0 + 41, TSMS_VERDICT_USER_LIMIT, 859);
	expect_send(w, "alice", T0 + 899, TSMS_VERDICT_USER_LIMIT, 1);
	/* refusals are not counted */
	expect_file(w->dir, "alice", T0, 4, T0 + 30, 0, 0);
	/* another user has a limit of its own */
	expect_send(w, "bob", T0 + 50, TSMS_VERDICT_OK, 0);

	w->cfg.send_limit = 1;
	expect_send(w, "carol", T0, TSMS_VERDICT_OK, 0);
	expect_send(w, "carol", T0 + 1, TSMS_VERDICT_USER_LIMIT, 899);
}

static void test_window_rollover(void **state)
{
	struct world *w = world_of(state);

	w->cfg.send_limit = 3;
	w->cfg.resend_cooldown_seconds = 0;
	expect_send(w, "alice", T0, TSMS_VERDICT_OK, 0);
	expect_send(w, "alice", T0 + 100, TSMS_VERDICT_OK, 0);
	expect_send(w, "alice", T0 + 200, TSMS_VERDICT_OK, 0);
	expect_send(w, "alice", T0 + 899, TSMS_VERDICT_USER_LIMIT, 1);
	/* the window ends at T0+900: a full new allowance */
	expect_send(w, "alice", T0 + 900, TSMS_VERDICT_OK, 0);
	expect_file(w->dir, "alice", T0 + 900, 1, T0 + 900, 0, 0);
	expect_send(w, "alice", T0 + 901, TSMS_VERDICT_OK, 0);
	expect_send(w, "alice", T0 + 902, TSMS_VERDICT_OK, 0);
	expect_send(w, "alice", T0 + 903, TSMS_VERDICT_USER_LIMIT, 897);

	/* fixed, not aligned: the next window starts at the first SMS after the
	 * previous one ended (T0+3000), not at T0+2700 */
	expect_send(w, "alice", T0 + 3000, TSMS_VERDICT_OK, 0);
	expect_send(w, "alice", T0 + 3001, TSMS_VERDICT_OK, 0);
	expect_send(w, "alice", T0 + 3002, TSMS_VERDICT_OK, 0);
	expect_send(w, "alice", T0 + 3600, TSMS_VERDICT_USER_LIMIT, 300);
	expect_send(w, "alice", T0 + 3900, TSMS_VERDICT_OK, 0);
	expect_file(w->dir, "alice", T0 + 3900, 1, T0 + 3900, 0, 0);

	/* a window of one second */
	w->cfg.send_window_seconds = 1;
	w->cfg.send_limit = 1;
	expect_send(w, "bob", T0, TSMS_VERDICT_OK, 0);
	expect_send(w, "bob", T0, TSMS_VERDICT_USER_LIMIT, 1);
	expect_send(w, "bob", T0 + 1, TSMS_VERDICT_OK, 0);
}

static void test_cooldown(void **state)
{
	struct world *w = world_of(state);

	w->cfg.send_limit = 100;
	w->cfg.resend_cooldown_seconds = 30;
	expect_send(w, "alice", T0, TSMS_VERDICT_OK, 0);
	expect_send(w, "alice", T0, TSMS_VERDICT_COOLDOWN, 30);
	expect_send(w, "alice", T0 + 1, TSMS_VERDICT_COOLDOWN, 29);
	expect_send(w, "alice", T0 + 29, TSMS_VERDICT_COOLDOWN, 1);
	expect_send(w, "alice", T0 + 30, TSMS_VERDICT_OK, 0);
	/* measured from the last SMS, not from the refusals */
	expect_send(w, "alice", T0 + 45, TSMS_VERDICT_COOLDOWN, 15);
	expect_send(w, "alice", T0 + 60, TSMS_VERDICT_OK, 0);
	expect_file(w->dir, "alice", T0, 3, T0 + 60, 0, 0);
	/* per user */
	expect_send(w, "bob", T0 + 61, TSMS_VERDICT_OK, 0);

	/* 0 turns it off */
	w->cfg.resend_cooldown_seconds = 0;
	expect_send(w, "carol", T0, TSMS_VERDICT_OK, 0);
	expect_send(w, "carol", T0, TSMS_VERDICT_OK, 0);

	/* the send limit is reported even inside the cooldown */
	w->cfg.resend_cooldown_seconds = 30;
	w->cfg.send_limit = 1;
	expect_send(w, "dave", T0, TSMS_VERDICT_OK, 0);
	expect_send(w, "dave", T0 + 5, TSMS_VERDICT_USER_LIMIT, 895);

	/* a right answer ends it (ssh, then sudo at once); the sends still count */
	w->cfg.send_limit = 3;
	expect_send(w, "erin", T0, TSMS_VERDICT_OK, 0);
	right_answer(w, "erin", T0 + 5);
	expect_send(w, "erin", T0 + 6, TSMS_VERDICT_OK, 0);
	expect_file(w->dir, "erin", T0, 2, T0 + 6, 0, 0);
	/* a text nobody answered keeps it */
	expect_send(w, "erin", T0 + 7, TSMS_VERDICT_COOLDOWN, 29);
	right_answer(w, "erin", T0 + 8);
	expect_send(w, "erin", T0 + 9, TSMS_VERDICT_OK, 0);
	expect_send(w, "erin", T0 + 10, TSMS_VERDICT_USER_LIMIT, 890);
}

/* ---- global cap ---- */

static void test_global_cap_across_users(void **state)
{
	struct world *w = world_of(state);
	char buf[256];

	w->cfg.resend_cooldown_seconds = 0;
	w->cfg.global_send_limit = 3;
	expect_send(w, "alice", T0, TSMS_VERDICT_OK, 0);
	expect_send(w, "bob", T0 + 10, TSMS_VERDICT_OK, 0);
	expect_send(w, "carol", T0 + 20, TSMS_VERDICT_OK, 0);
	expect_send(w, "dave", T0 + 30, TSMS_VERDICT_GLOBAL_LIMIT, 870);
	expect_send(w, "alice", T0 + 40, TSMS_VERDICT_GLOBAL_LIMIT, 860);
	expect_send(w, "dave", T0 + 899, TSMS_VERDICT_GLOBAL_LIMIT, 1);
	expect_file(w->dir, "@global", T0, 3, T0 + 20, 0, 0);
	/* a refused user was not charged */
	if (read_state(w->dir, "dave", buf, sizeof(buf)) >= 0) {
		unsigned sends = 99;

		assert_true(parse_record(buf, &sends));
		assert_int_equal(sends, 0);
	}
	/* the global window rolls over like a user's */
	expect_send(w, "dave", T0 + 900, TSMS_VERDICT_OK, 0);
	expect_file(w->dir, "@global", T0 + 900, 1, T0 + 900, 0, 0);
	expect_file(w->dir, "dave", T0 + 900, 1, T0 + 900, 0, 0);
}

static void test_global_not_charged_by_user_refusals(void **state)
{
	struct world *w = world_of(state);

	w->cfg.send_limit = 1;
	w->cfg.resend_cooldown_seconds = 0;
	w->cfg.global_send_limit = 3;
	expect_send(w, "alice", T0, TSMS_VERDICT_OK, 0);
	for (int i = 1; i <= 5; i++)
		expect_send(w, "alice", T0 + i, TSMS_VERDICT_USER_LIMIT, 900 - i);
	expect_send(w, "bob", T0 + 10, TSMS_VERDICT_OK, 0);
	expect_send(w, "carol", T0 + 20, TSMS_VERDICT_OK, 0);
	expect_send(w, "dave", T0 + 30, TSMS_VERDICT_GLOBAL_LIMIT, 870);
	expect_file(w->dir, "@global", T0, 3, T0 + 20, 0, 0);
}

static void test_global_off_by_default(void **state)
{
	struct world *w = world_of(state);
	char buf[256];

	w->cfg.resend_cooldown_seconds = 0;
	for (int i = 0; i < 50; i++) {
		char user[16];

		snprintf(user, sizeof(user), "user%02d", i);
		expect_send(w, user, T0, TSMS_VERDICT_OK, 0);
	}
	assert_int_equal(read_state(w->dir, "@global", buf, sizeof(buf)), -1);
}

/* ---- lockout ---- */

static void test_lockout_after_threshold(void **state)
{
	struct world *w = world_of(state);

	w->cfg.lockout_threshold = 3;
	w->cfg.lockout_seconds = 600;
	w->cfg.resend_cooldown_seconds = 0;
	assert_false(wrong_answer(w, "alice", T0));
	assert_false(wrong_answer(w, "alice", T0 + 1));
	expect_send(w, "alice", T0 + 2, TSMS_VERDICT_OK, 0);
	assert_true(wrong_answer(w, "alice", T0 + 3));
	expect_file(w->dir, "alice", T0 + 2, 1, T0 + 2, 3, T0 + 603);
	/* locked until T0+603 */
	expect_send(w, "alice", T0 + 4, TSMS_VERDICT_LOCKED, 599);
	expect_send(w, "alice", T0 + 602, TSMS_VERDICT_LOCKED, 1);
	/* the lock is reported before the send limit */
	w->cfg.send_limit = 1;
	expect_send(w, "alice", T0 + 10, TSMS_VERDICT_LOCKED, 593);
	w->cfg.send_limit = 5;
	/* other users are not affected */
	expect_send(w, "bob", T0 + 5, TSMS_VERDICT_OK, 0);

	/* threshold 1: the first wrong answer locks */
	w->cfg.lockout_threshold = 1;
	assert_true(wrong_answer(w, "carol", T0));
	expect_send(w, "carol", T0 + 1, TSMS_VERDICT_LOCKED, 599);
}

/* Count first (lib/challenge.c records an answer before judging it): the record
 * says whether a lockout already ran before the answer, which is then not judged;
 * the answer that reaches the threshold is not "locked before". */
static void test_lockout_before_the_answer(void **state)
{
	struct world *w = world_of(state);
	long long before;

	w->cfg.lockout_threshold = 2;
	w->cfg.lockout_seconds = 600;
	assert_false(wrong_answer_before(w, "alice", T0, &before));
	assert_int_equal(before, 0);
	assert_true(wrong_answer_before(w, "alice", T0 + 1, &before));
	assert_int_equal(before, 0); /* this answer locked: it may still be the right one */
	assert_true(wrong_answer_before(w, "alice", T0 + 11, &before));
	assert_int_equal(before, 590); /* another login's lockout: not judged */
	expect_file(w->dir, "alice", 0, 0, 0, 3, T0 + 601);
	/* a right answer clears the count and the lockout */
	right_answer(w, "alice", T0 + 12);
	assert_false(wrong_answer_before(w, "alice", T0 + 13, &before));
	assert_int_equal(before, 0);
	/* an expired lockout is no lockout before */
	assert_true(wrong_answer_before(w, "alice", T0 + 14, &before));
	assert_false(wrong_answer_before(w, "alice", T0 + 614, &before));
	assert_int_equal(before, 0);
}

/* The clock stepped back (NTP correcting a fast clock): times stored in the future
 * are capped, so no lockout, window or cooldown lasts longer than configured. */
static void test_clock_stepped_back(void **state)
{
	struct world *w = world_of(state);
	char rec[160];

	w->cfg.lockout_threshold = 3;
	w->cfg.lockout_seconds = 900;
	w->cfg.send_window_seconds = 900;
	w->cfg.resend_cooldown_seconds = 30;
	w->cfg.send_limit = 2;
	assert_true(mkdir(w->dir, 0700) == 0 || errno == EEXIST);
	/* written when the clock was 7200 s ahead: locked until then + 900 */
	format_record(rec, sizeof(rec), T0 + 7200, 1, T0 + 7200, 3, T0 + 8100);
	write_state(w->dir, "alice", rec, strlen(rec));
	expect_send(w, "alice", T0, TSMS_VERDICT_LOCKED, 900);
	/* a window and a last send in the future: the window counts from now, a full
	 * cooldown at most, and the send limit still holds */
	format_record(rec, sizeof(rec), T0 + 7200, 2, T0 + 7200, 0, 0);
	write_state(w->dir, "bob", rec, strlen(rec));
	expect_send(w, "bob", T0, TSMS_VERDICT_USER_LIMIT, 900);
	format_record(rec, sizeof(rec), T0 + 7200, 1, T0 + 7200, 0, 0);
	write_state(w->dir, "carol", rec, strlen(rec));
	expect_send(w, "carol", T0, TSMS_VERDICT_COOLDOWN, 30);
	expect_send(w, "carol", T0 + 30, TSMS_VERDICT_OK, 0);
}

static void test_lockout_expiry_resets(void **state)
{
	struct world *w = world_of(state);

	w->cfg.lockout_threshold = 3;
	w->cfg.lockout_seconds = 600;
	for (int i = 0; i < 3; i++)
		assert_int_equal(wrong_answer(w, "alice", T0 + i), i == 2);
	expect_send(w, "alice", T0 + 601, TSMS_VERDICT_LOCKED, 1);
	/* expired at T0+602: allowed again, and the count starts over */
	expect_send(w, "alice", T0 + 602, TSMS_VERDICT_OK, 0);
	expect_file(w->dir, "alice", T0 + 602, 1, T0 + 602, 0, 0);
	assert_false(wrong_answer(w, "alice", T0 + 603));
	assert_false(wrong_answer(w, "alice", T0 + 604));
	assert_true(wrong_answer(w, "alice", T0 + 605));
	expect_send(w, "alice", T0 + 606, TSMS_VERDICT_LOCKED, 599);

	/* a wrong answer after expiry, without a send in between, also starts over */
	for (int i = 0; i < 3; i++)
		wrong_answer(w, "bob", T0 + i);
	assert_false(wrong_answer(w, "bob", T0 + 602));
	expect_send(w, "bob", T0 + 603, TSMS_VERDICT_OK, 0);
}

static void test_success_resets_failures(void **state)
{
	struct world *w = world_of(state);

	w->cfg.lockout_threshold = 3;
	w->cfg.lockout_seconds = 600;
	assert_false(wrong_answer(w, "alice", T0));
	assert_false(wrong_answer(w, "alice", T0 + 1));
	right_answer(w, "alice", T0 + 2);
	expect_file(w->dir, "alice", 0, 0, 0, 0, 0);
	assert_false(wrong_answer(w, "alice", T0 + 3));
	assert_false(wrong_answer(w, "alice", T0 + 4));
	assert_true(wrong_answer(w, "alice", T0 + 5));
	/* consecutive: a success in between always restarts the count */
	for (int round = 0; round < 10; round++) {
		assert_false(wrong_answer(w, "bob", T0 + round));
		assert_false(wrong_answer(w, "bob", T0 + round));
		right_answer(w, "bob", T0 + round);
	}
	expect_send(w, "bob", T0 + 20, TSMS_VERDICT_OK, 0);
	/* a success for a user with no state is fine */
	right_answer(w, "nobody-yet", T0);
}

/* ---- the state directory ---- */

static void test_state_dir_created_0700(void **state)
{
	struct world *w = world_of(state);
	struct stat st;
	mode_t old = umask(0);
	enum tsms_verdict v;

	/* even with umask 0 nothing but the owner gets in */
	v = reserve(w, "alice", T0, NULL);
	umask(old);
	assert_int_equal(v, TSMS_VERDICT_OK);
	assert_int_equal(lstat(w->dir, &st), 0);
	assert_true(S_ISDIR(st.st_mode));
	assert_int_equal(st.st_mode & 07777, 0700);
	assert_int_equal(st.st_uid, 0);
	/* and the state file is the owner's alone */
	{
		char path[256];

		snprintf(path, sizeof(path), "%s/alice", w->dir);
		assert_int_equal(lstat(path, &st), 0);
		assert_true(S_ISREG(st.st_mode));
		assert_int_equal(st.st_mode & 077, 0);
		assert_int_equal(st.st_uid, 0);
	}
}

/* Every operation must fail closed with err naming the directory. */
static void expect_dir_refused(const struct world *w, const char *why)
{
	struct guarded_err g;
	enum tsms_verdict v = TSMS_VERDICT_OK;
	long long wait = 0;
	bool locked = false;
	long long before = 0;

	err_init(&g);
	assert_int_equal(tsms_state_reserve_send(w->st, "alice", T0, true, &v, &wait, g.err),
	                 TSMS_ERR_STATE);
	err_check(&g);
	if (strstr(g.err, w->dir) == NULL || strstr(g.err, "fix") == NULL) {
		print_error("%s: err does not name %s and a fix: \"%s\"\n", why, w->dir, g.err);
		fail();
	}
	err_init(&g);
	assert_int_equal(tsms_state_record_failure(w->st, "alice", T0, &locked, &before, g.err),
	                 TSMS_ERR_STATE);
	err_check(&g);
	assert_contains(g.err, w->dir);
	err_init(&g);
	assert_int_equal(tsms_state_record_success(w->st, "alice", T0, g.err), TSMS_ERR_STATE);
	err_check(&g);
	assert_contains(g.err, w->dir);
}

static void test_state_dir_writable_by_others_refused(void **state)
{
	static const mode_t modes[] = { 0720, 0702, 0722, 0770, 0777, 01777, 0730, 0703 };
	struct world *w = world_of(state);
	char path[256];

	make_dir(w);
	for (size_t i = 0; i < sizeof(modes) / sizeof(modes[0]); i++) {
		char why[64];

		assert_int_equal(chmod(w->dir, modes[i]), 0);
		snprintf(why, sizeof(why), "stateDir mode %04o", (unsigned)modes[i]);
		expect_dir_refused(w, why);
	}
	/* nothing was created in it */
	snprintf(path, sizeof(path), "%s/alice", w->dir);
	assert_int_equal(access(path, F_OK), -1);
	assert_int_equal(chmod(w->dir, 0700), 0);
	expect_send(w, "alice", T0, TSMS_VERDICT_OK, 0);
}

static void test_state_dir_other_problems_refused(void **state)
{
	struct world *w = world_of(state);
	char target[128];

	/* owned by someone else */
	make_dir(w);
	assert_int_equal(chown(w->dir, 65534, 65534), 0);
	expect_dir_refused(w, "stateDir owned by nobody");
	assert_int_equal(rmdir(w->dir), 0);

	/* a symbolic link to a good directory */
	snprintf(target, sizeof(target), "%s/real", w->root);
	assert_int_equal(mkdir(target, 0700), 0);
	assert_int_equal(symlink(target, w->dir), 0);
	expect_dir_refused(w, "stateDir is a symlink");
	assert_int_equal(unlink(w->dir), 0);

	/* a regular file */
	write_state(w->root, "state", "x", 1);
	expect_dir_refused(w, "stateDir is a file");
	assert_int_equal(unlink(w->dir), 0);

	/* a missing parent: not created behind the admin's back */
	snprintf(w->dir, sizeof(w->dir), "%s/no/such/state", w->root);
	expect_dir_refused(w, "stateDir parent missing");
	snprintf(w->dir, sizeof(w->dir), "%s/state", w->root);
}

/* ---- the files ---- */

static void test_file_format_after_writes(void **state)
{
	struct world *w = world_of(state);
	char name[TSMS_STATE_NAME_MAX], buf[256];

	w->cfg.lockout_threshold = 2;
	w->cfg.lockout_seconds = 60;
	w->cfg.global_send_limit = 10;
	expect_send(w, "alice", T0, TSMS_VERDICT_OK, 0);
	expect_file(w->dir, "alice", T0, 1, T0, 0, 0);
	expect_file(w->dir, "@global", T0, 1, T0, 0, 0);
	expect_send(w, "alice", T0 + 31, TSMS_VERDICT_OK, 0);
	expect_file(w->dir, "alice", T0, 2, T0 + 31, 0, 0);
	assert_false(wrong_answer(w, "alice", T0 + 40));
	expect_file(w->dir, "alice", T0, 2, T0 + 31, 1, 0);
	assert_true(wrong_answer(w, "alice", T0 + 41));
	expect_file(w->dir, "alice", T0, 2, T0 + 31, 2, T0 + 101);
	/* a refusal writes nothing */
	expect_send(w, "alice", T0 + 42, TSMS_VERDICT_LOCKED, 59);
	expect_file(w->dir, "alice", T0, 2, T0 + 31, 2, T0 + 101);
	expect_file(w->dir, "@global", T0, 2, T0 + 31, 0, 0);

	/* a hashed user's file has the same format */
	tsms_state_file_name("Bob", name);
	expect_send(w, "Bob", T0 + 50, TSMS_VERDICT_OK, 0);
	expect_file(w->dir, name, T0 + 50, 1, T0 + 50, 0, 0);

	/* no temporary file survives a write */
	assert_int_equal(count_entries(w->dir, ".tmp"), 0);
	/* big times are written in full */
	expect_send(w, "carol", 4102444800LL, TSMS_VERDICT_OK, 0); /* 2100-01-01 */
	assert_true(read_state(w->dir, "carol", buf, sizeof(buf)) > 0);
	assert_contains(buf, "window_start=4102444800 ");
}

static void test_names_stay_inside_state_dir(void **state)
{
	struct world *w = world_of(state);
	size_t n = sizeof(odd_users) / sizeof(odd_users[0]);
	char big[1025];

	w->cfg.resend_cooldown_seconds = 0;
	memset(big, '/', 1024);
	big[1024] = '\0';
	for (size_t i = 0; i < n; i++)
		expect_send(w, odd_users[i], T0, TSMS_VERDICT_OK, 0);
	expect_send(w, big, T0, TSMS_VERDICT_OK, 0);
	for (size_t i = 0; i < n; i++)
		assert_false(wrong_answer(w, odd_users[i], T0));
	/* the root holds only the state directory */
	assert_int_equal(count_entries(w->root, ""), 1);
	/* one hashed state file per user, and their lock files: nothing else */
	assert_int_equal(count_entries(w->dir, ""), 2 * ((int)n + 1));
	assert_int_equal(count_entries(w->dir, ".lock"), (int)n + 1);
	for (size_t i = 0; i < n; i++) {
		char name[TSMS_STATE_NAME_MAX], buf[256];

		tsms_state_file_name(odd_users[i], name);
		assert_true(read_state(w->dir, name, buf, sizeof(buf)) > 0);
		assert_contains(buf, " sends=1 ");
		assert_contains(buf, " failures=1 ");
	}
}

/* ---- damaged state fails closed ---- */

#define expect_corrupt(w, user, why) expect_corrupt_at((w), (user), (why), __FILE__, __LINE__)

/* Every operation on user must fail closed (TSMS_ERR_STATE) with err naming
 * dir/<file> and a fix. */
static void expect_corrupt_at(const struct world *w, const char *user, const char *why,
                              const char *file, int line)
{
	char name[TSMS_STATE_NAME_MAX], path[256];
	struct guarded_err g;
	enum tsms_verdict v = TSMS_VERDICT_OK;
	long long wait = 0;
	bool locked = false;
	long long before = 0;
	enum tsms_err e[3];

	tsms_state_file_name(user, name);
	snprintf(path, sizeof(path), "%s/%s", w->dir, name);
	err_init(&g);
	e[0] = tsms_state_reserve_send(w->st, user, T0, true, &v, &wait, g.err);
	err_check(&g);
	if (e[0] != TSMS_ERR_STATE) {
		print_error("%s:%d: %s: reserve_send returned %d (verdict \"%s\"), expected "
		            "TSMS_ERR_STATE\n",
		            file, line, why, (int)e[0], verdict_name(v));
		_fail(file, line);
	}
	if (strstr(g.err, path) == NULL || strstr(g.err, "fix:") == NULL) {
		print_error("%s:%d: %s: err does not name %s and a fix: \"%s\"\n", file, line, why,
		            path, g.err);
		_fail(file, line);
	}
	err_init(&g);
	e[1] = tsms_state_record_failure(w->st, user, T0, &locked, &before, g.err);
	err_check(&g);
	err_init(&g);
	e[2] = tsms_state_record_success(w->st, user, T0, g.err);
	err_check(&g);
	if (e[1] != TSMS_ERR_STATE || e[2] != TSMS_ERR_STATE) {
		print_error("%s:%d: %s: record_failure returned %d, record_success %d, expected "
		            "TSMS_ERR_STATE\n",
		            file, line, why, (int)e[1], (int)e[2]);
		_fail(file, line);
	}
}

/* A printable copy of the first bytes of content, for messages. */
static const char *shown(const char *content, size_t len, char out[160])
{
	size_t o = 0;

	for (size_t i = 0; i < len && o + 5 < 160; i++) {
		unsigned char c = (unsigned char)content[i];

		if (c >= 0x20 && c < 0x7f && c != '\\')
			out[o++] = (char)c;
		else
			o += (size_t)snprintf(out + o, 160 - o, "\\x%02x", c);
	}
	out[o] = '\0';
	return out;
}

/* err as the contract wants it, checked without cmocka (in a child process). */
static bool err_ok(const struct guarded_err *g)
{
	for (size_t i = 0; i < sizeof(g->canary); i++) {
		if (g->canary[i] != 'Z')
			return false;
	}
	if (memchr(g->err, '\0', sizeof(g->err)) == NULL)
		return false;
	for (const char *p = g->err; *p != '\0'; p++) {
		if ((unsigned char)*p < 0x20 || *p == 0x7f)
			return false;
	}
	return true;
}

enum { PROBE_REFUSED = 42, PROBE_ACCEPTED = 43 };

/* The child's half of corrupt_refused: no cmocka here, it exits. */
static void probe_child(const struct world *w, const char *name, const char *content, size_t len)
{
	char path[256], after[2048], show[160];
	struct guarded_err g[3];
	enum tsms_verdict v = NO_VERDICT;
	long long wait = 0;
	bool locked = false, ok;
	long long before = 0;

	snprintf(path, sizeof(path), "%s/%s", w->dir, name);
	for (int i = 0; i < 3; i++)
		err_init(&g[i]);
	ok = tsms_state_reserve_send(w->st, "alice", T0, true, &v, &wait, g[0].err) ==
	     TSMS_ERR_STATE;
	ok = ok && err_ok(&g[0]) && strstr(g[0].err, path) != NULL &&
	     strstr(g[0].err, "fix:") != NULL;
	ok = tsms_state_record_failure(w->st, "alice", T0, &locked, &before, g[1].err) ==
	             TSMS_ERR_STATE &&
	     err_ok(&g[1]) && ok;
	ok = tsms_state_record_success(w->st, "alice", T0, g[2].err) == TSMS_ERR_STATE &&
	     err_ok(&g[2]) && ok;
	/* fail closed also means: the evidence is not overwritten */
	ok = ok && read_state(w->dir, name, after, sizeof(after)) == (ssize_t)len &&
	     memcmp(after, content, len) == 0;
	if (!ok)
		fprintf(stderr,
		        "state file \"%s\" was accepted or changed (verdict \"%s\", err \"%s\")\n",
		        shown(content, len, show), verdict_name(v), g[0].err);
	_exit(ok ? PROBE_REFUSED : PROBE_ACCEPTED);
}

/* Writes content as alice's file; every operation must refuse it and leave it
 * as it was. The operations run in a child process, so that a crash in the
 * library (or a sanitizer's abort) is one failed case, not a dead suite. */
static bool corrupt_refused(const struct world *w, const char *content, size_t len)
{
	char name[TSMS_STATE_NAME_MAX], show[160];
	int status = 0;
	pid_t pid;

	tsms_state_file_name("alice", name);
	write_state(w->dir, name, content, len);
	fflush(NULL);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		alarm(20);
		probe_child(w, name, content, len);
	}
	assert_int_equal(waitpid(pid, &status, 0), pid);
	if (WIFEXITED(status) && WEXITSTATUS(status) == PROBE_REFUSED)
		return true;
	if (!WIFEXITED(status) || WEXITSTATUS(status) != PROBE_ACCEPTED)
		print_error("the library crashed on the state file \"%s\" (%s %d)\n",
		            shown(content, len, show), WIFEXITED(status) ? "exit status" : "signal",
		            WIFEXITED(status) ? WEXITSTATUS(status) : WTERMSIG(status));
	return false;
}

/* Each of cases must be refused; reports all that are not, then fails. */
static void expect_all_corrupt(const struct world *w, const char *const *cases, size_t n)
{
	int accepted = 0;

	for (size_t i = 0; i < n; i++)
		accepted += !corrupt_refused(w, cases[i], strlen(cases[i]));
	assert_int_equal(accepted, 0);
}

static void test_corrupt_garbage(void **state)
{
	static const char *const cases[] = {
		"garbage\n",
		"\n",
		" ",
		"{\"sends\":1}\n",
		"v2 window_start=1700000000 sends=1 last_send=1700000000 failures=0 "
		"locked_until=0\n",
		"v1 window_start=1700000000 sends=one last_send=1700000000 failures=0 "
		"locked_until=0\n",
		"v1 sends=1 window_start=1700000000 last_send=1700000000 failures=0 "
		"locked_until=0\n",
		"V1 WINDOW_START=1700000000 SENDS=1 LAST_SEND=1700000000 FAILURES=0 "
		"LOCKED_UNTIL=0\n",
	};
	struct world *w = world_of(state);

	make_dir(w);
	expect_all_corrupt(w, cases, sizeof(cases) / sizeof(cases[0]));
	/* binary garbage, NUL bytes included */
	{
		static const char bin[] = { 'v', '1', '\0', ' ', 'w', '\x01', '\xff', '\n' };

		assert_true(corrupt_refused(w, bin, sizeof(bin)));
		assert_true(corrupt_refused(w, "", 0));
	}
}

static void test_corrupt_truncated(void **state)
{
	static const char line[] =
		"v1 window_start=1700000000 sends=3 last_send=1700000100 failures=2 "
		"locked_until=0\n";
	struct world *w = world_of(state);
	int accepted = 0;

	make_dir(w);
	/* every cut short of the last character (a record missing only its
	 * newline is complete) */
	for (size_t len = 0; len + 2 <= sizeof(line) - 1; len++)
		accepted += !corrupt_refused(w, line, len);
	assert_int_equal(accepted, 0);
}

static void test_corrupt_extra_bytes(void **state)
{
	static const char *const cases[] = {
		"v1 window_start=1700000000 sends=1 last_send=1700000000 failures=0 "
		"locked_until=0\nx",
		"v1 window_start=1700000000 sends=1 last_send=1700000000 failures=0 "
		"locked_until=0\nv1 window_start=1700000000 sends=0 last_send=1700000000 "
		"failures=0 locked_until=0\n",
		"v1 window_start=1700000000 sends=1 last_send=1700000000 failures=0 "
		"locked_until=0 extra=1\n",
		"v1 window_start=1700000000 sends=1 last_send=1700000000 failures=0 "
		"locked_until=0x\n",
		"v1 window_start=1700000000 sends=1x last_send=1700000000 failures=0 "
		"locked_until=0\n",
	};
	struct world *w = world_of(state);

	make_dir(w);
	expect_all_corrupt(w, cases, sizeof(cases) / sizeof(cases[0]));
}

static void test_corrupt_negative_numbers(void **state)
{
	static const char *const cases[] = {
		"v1 window_start=-1 sends=1 last_send=1700000000 failures=0 locked_until=0\n",
		"v1 window_start=1700000000 sends=-1 last_send=1700000000 failures=0 "
		"locked_until=0\n",
		"v1 window_start=1700000000 sends=1 last_send=-1700000000 failures=0 "
		"locked_until=0\n",
		"v1 window_start=1700000000 sends=1 last_send=1700000000 failures=-1 "
		"locked_until=0\n",
		"v1 window_start=1700000000 sends=1 last_send=1700000000 failures=0 "
		"locked_until=-5\n",
	};
	struct world *w = world_of(state);

	make_dir(w);
	expect_all_corrupt(w, cases, sizeof(cases) / sizeof(cases[0]));
}

static void test_corrupt_overflowing_numbers(void **state)
{
	static const char *const cases[] = {
		/* 2^32 + 1 would read as 1 SMS */
		"v1 window_start=1700000000 sends=4294967297 last_send=1700000000 failures=0 "
		"locked_until=0\n",
		"v1 window_start=1700000000 sends=1 last_send=1700000000 failures=4294967296 "
		"locked_until=0\n",
		"v1 window_start=99999999999999999999 sends=1 last_send=1700000000 failures=0 "
		"locked_until=0\n",
	};
	struct world *w = world_of(state);

	make_dir(w);
	expect_all_corrupt(w, cases, sizeof(cases) / sizeof(cases[0]));
}

static void test_corrupt_symlink(void **state)
{
	struct world *w = world_of(state);
	char target[256], path[256];
	/* a valid record behind the link: the link itself is the problem */
	static const char line[] =
		"v1 window_start=0 sends=0 last_send=0 failures=0 locked_until=0\n";

	make_dir(w);
	write_state(w->root, "elsewhere", line, sizeof(line) - 1);
	snprintf(target, sizeof(target), "%s/elsewhere", w->root);
	snprintf(path, sizeof(path), "%s/alice", w->dir);
	assert_int_equal(symlink(target, path), 0);
	expect_corrupt(w, "alice", "symlink as state file");
	/* the target was not touched */
	expect_file(w->root, "elsewhere", 0, 0, 0, 0, 0);
	/* a dangling one too: no file is created through it */
	snprintf(path, sizeof(path), "%s/bob", w->dir);
	snprintf(target, sizeof(target), "%s/created-through-link", w->root);
	assert_int_equal(symlink(target, path), 0);
	expect_corrupt(w, "bob", "dangling symlink as state file");
	assert_int_equal(access(target, F_OK), -1);
}

static void test_corrupt_directory(void **state)
{
	struct world *w = world_of(state);
	char path[256], name[TSMS_STATE_NAME_MAX];

	make_dir(w);
	snprintf(path, sizeof(path), "%s/alice", w->dir);
	assert_int_equal(mkdir(path, 0700), 0);
	expect_corrupt(w, "alice", "directory as state file");
	tsms_state_file_name("Alice/..", name);
	snprintf(path, sizeof(path), "%s/%s", w->dir, name);
	assert_int_equal(mkdir(path, 0700), 0);
	expect_corrupt(w, "Alice/..", "directory as hashed state file");
}

static void test_corrupt_huge_file(void **state)
{
	struct world *w = world_of(state);
	size_t big = 1024 * 1024;
	char *buf = malloc(big);
	static const char line[] =
		"v1 window_start=1700000000 sends=1 last_send=1700000000 failures=0 "
		"locked_until=0\n";

	assert_non_null(buf);
	make_dir(w);
	/* a valid record padded to 1 MB */
	memset(buf, ' ', big);
	memcpy(buf, line, sizeof(line) - 1);
	write_state(w->dir, "alice", buf, big);
	expect_corrupt(w, "alice", "1 MB state file");
	/* many copies of a valid record */
	for (size_t off = 0; off + sizeof(line) - 1 <= big; off += sizeof(line) - 1)
		memcpy(buf + off, line, sizeof(line) - 1);
	write_state(w->dir, "bob", buf, big);
	expect_corrupt(w, "bob", "1 MB of records");
	free(buf);
}

static void test_corrupt_other_kinds(void **state)
{
	struct world *w = world_of(state);
	char path[256];
	static const char line[] =
		"v1 window_start=1700000000 sends=1 last_send=1700000000 failures=0 "
		"locked_until=0\n";

	make_dir(w);
	/* a FIFO: refused without hanging on it */
	snprintf(path, sizeof(path), "%s/alice", w->dir);
	assert_int_equal(mkfifo(path, 0600), 0);
	alarm(20);
	expect_corrupt(w, "alice", "FIFO as state file");
	alarm(0);
	/* a valid record owned by someone else */
	write_state(w->dir, "bob", line, sizeof(line) - 1);
	snprintf(path, sizeof(path), "%s/bob", w->dir);
	assert_int_equal(chown(path, 65534, 65534), 0);
	expect_corrupt(w, "bob", "state file owned by nobody");
}

static void test_corrupt_global_file(void **state)
{
	struct world *w = world_of(state);
	struct guarded_err g;
	enum tsms_verdict v = TSMS_VERDICT_OK;
	long long wait = 0;

	make_dir(w);
	w->cfg.global_send_limit = 5;
	write_state(w->dir, "@global", "garbage\n", 8);
	err_init(&g);
	assert_int_equal(tsms_state_reserve_send(w->st, "alice", T0, true, &v, &wait, g.err),
	                 TSMS_ERR_STATE);
	err_check(&g);
	assert_contains(g.err, "@global");
	assert_contains(g.err, "fix:");
	/* without a global cap the file is not read */
	w->cfg.global_send_limit = 0;
	expect_send(w, "alice", T0, TSMS_VERDICT_OK, 0);
}

/* ---- concurrency: separate processes, like sshd's ---- */

enum { EXIT_ERR = 100, EXIT_HUNG = 101 };

/* Forks n children that block on a pipe until all exist, then each reserves
 * once at the same now, for user (or, when distinct, user and its index).
 * counts[v] receives the number of each verdict; *errors the children that
 * failed or died. */
static void race(const struct world *w, int n, const char *user, bool distinct, unsigned counts[8],
                 unsigned *errors)
{
	pid_t pids[64];
	int go[2];
	struct timespec nap = { 0, 20 * 1000 * 1000 };

	assert_true(n <= 64);
	memset(counts, 0, 8 * sizeof(counts[0]));
	*errors = 0;
	assert_int_equal(pipe(go), 0);
	for (int i = 0; i < n; i++) {
		pids[i] = fork();
		assert_true(pids[i] >= 0);
		if (pids[i] == 0) {
			char name[64], err[TSMS_STATE_ERR_MAX], c;
			enum tsms_verdict v = NO_VERDICT;
			long long wait = 0;

			close(go[1]);
			alarm(30);
			while (read(go[0], &c, 1) < 0 && errno == EINTR)
				;
			if (distinct)
				snprintf(name, sizeof(name), "%s%02d", user, i);
			else
				snprintf(name, sizeof(name), "%s", user);
			if (tsms_state_reserve_send(w->st, name, T0, true, &v, &wait, err) !=
			    TSMS_OK) {
				fprintf(stderr, "child %d: %s\n", i, err);
				_exit(EXIT_ERR);
			}
			_exit((int)v >= 0 && (int)v < 8 ? (int)v : EXIT_ERR);
		}
	}
	close(go[0]);
	close(go[1]); /* everybody starts */
	for (int i = 0; i < n; i++) {
		int status = 0;

		for (int tick = 0; waitpid(pids[i], &status, WNOHANG) != pids[i]; tick++) {
			if (tick == 60 * 50) { /* 60 seconds in all */
				kill(pids[i], SIGKILL);
				waitpid(pids[i], &status, 0);
				status = EXIT_HUNG << 8;
				break;
			}
			nanosleep(&nap, NULL);
		}
		if (WIFEXITED(status) && WEXITSTATUS(status) < 8) {
			counts[WEXITSTATUS(status)]++;
		} else {
			print_error("child %d: %s %d\n", i,
			            WIFEXITED(status) ? "exited" : "killed by signal",
			            WIFEXITED(status) ? WEXITSTATUS(status) : WTERMSIG(status));
			(*errors)++;
		}
	}
}

static void test_concurrent_same_user(void **state)
{
	struct world *w = world_of(state);
	unsigned counts[8], errors;
	char buf[512];

	w->cfg.send_limit = 7;
	w->cfg.resend_cooldown_seconds = 0;
	/* a few rounds, each on a fresh user */
	for (int round = 0; round < 3; round++) {
		char user[16];
		unsigned sends = 0;

		snprintf(user, sizeof(user), "racer%d", round);
		race(w, 50, user, false, counts, &errors);
		assert_int_equal(errors, 0);
		assert_int_equal(counts[TSMS_VERDICT_OK], 7);
		assert_int_equal(counts[TSMS_VERDICT_USER_LIMIT], 43);
		assert_true(read_state(w->dir, user, buf, sizeof(buf)) > 0);
		if (!parse_record(buf, &sends)) {
			print_error("malformed state after the race: \"%s\"\n", buf);
			fail();
		}
		assert_int_equal(sends, 7);
		expect_file(w->dir, user, T0, 7, T0, 0, 0);
	}
	assert_int_equal(count_entries(w->dir, ".tmp"), 0);
}

static void test_concurrent_distinct_users_global_cap(void **state)
{
	struct world *w = world_of(state);
	unsigned counts[8], errors, total = 0, sends = 0;
	char buf[512];

	w->cfg.global_send_limit = 13;
	race(w, 40, "user", true, counts, &errors);
	assert_int_equal(errors, 0);
	assert_int_equal(counts[TSMS_VERDICT_OK], 13);
	assert_int_equal(counts[TSMS_VERDICT_GLOBAL_LIMIT], 27);
	assert_true(read_state(w->dir, "@global", buf, sizeof(buf)) > 0);
	if (!parse_record(buf, &sends)) {
		print_error("malformed @global after the race: \"%s\"\n", buf);
		fail();
	}
	assert_int_equal(sends, 13);
	/* only the allowed users were charged */
	for (int i = 0; i < 40; i++) {
		char user[16];

		snprintf(user, sizeof(user), "user%02d", i);
		if (read_state(w->dir, user, buf, sizeof(buf)) < 0)
			continue;
		if (!parse_record(buf, &sends)) {
			print_error("malformed %s after the race: \"%s\"\n", user, buf);
			fail();
		}
		total += sends;
	}
	assert_int_equal(total, 13);
	assert_int_equal(count_entries(w->dir, ".tmp"), 0);
}

/* A caller's RLIMIT_FSIZE smaller than a state record (a setuid host's caller
 * sets it: 0, where the first byte raises SIGXFSZ, or a few bytes, a short write
 * first): the write fails closed with the problem instead of SIGXFSZ killing
 * the process, nothing half-written or temporary stays, the signal is consumed. */
static void under_file_size_limit(struct world *w, rlim_t limit)
{
	int status, report[2];
	char err[TSMS_STATE_ERR_MAX] = "";
	DIR *d;
	struct dirent *e;
	pid_t pid;

	assert_int_equal(pipe(report), 0);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		const struct rlimit tiny = { limit, limit };
		enum tsms_verdict v = NO_VERDICT;
		long long wait = -1;
		sigset_t pending;
		enum tsms_err rc;

		close(report[0]);
		if (setrlimit(RLIMIT_FSIZE, &tiny) != 0)
			_exit(2);
		rc = tsms_state_reserve_send(w->st, "alice", T0, true, &v, &wait, err);
		sigpending(&pending);
		if (write(report[1], err, sizeof(err)) != (ssize_t)sizeof(err))
			_exit(3);
		_exit(rc == TSMS_ERR_STATE && !sigismember(&pending, SIGXFSZ) ? 0 : 4);
	}
	close(report[1]);
	assert_int_equal(read(report[0], err, sizeof(err)), (ssize_t)sizeof(err));
	close(report[0]);
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_false(WIFSIGNALED(status)); /* not killed by SIGXFSZ */
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
	assert_contains(err, "File too large");
	d = opendir(w->dir);
	assert_non_null(d);
	while ((e = readdir(d)) != NULL) /* the lock file may stay; nothing else */
		assert_true(strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0 ||
		            strcmp(e->d_name, ".alice.lock") == 0);
	closedir(d);
}

static void test_file_size_limit_fails_closed(void **state)
{
	struct world *w = world_of(state);

	make_dir(w);
	under_file_size_limit(w, 0);
	under_file_size_limit(w, 16);
}

#define world_test(f) cmocka_unit_test_setup_teardown(f, world_setup, world_teardown)

/* ---- the Redis store, where no Redis answers (the e2e suite runs a real one) */

static void test_redis_script_sha1(void **state)
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int n = 0;
	char hex[41];

	(void)state;
	assert_int_equal(EVP_Digest(tsms_state_redis_script, strlen(tsms_state_redis_script), md,
	                            &n, EVP_sha1(), NULL),
	                 1);
	assert_int_equal(n, 20);
	for (unsigned i = 0; i < n; i++)
		snprintf(hex + 2 * i, 3, "%02x", md[i]);
	assert_string_equal(hex, tsms_state_redis_sha1); /* else EVALSHA always misses */
}

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

/* A loopback port nothing listens on: connecting is refused at once. */
static unsigned closed_port(void)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t len = sizeof(a);
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	assert_true(fd >= 0);
	assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &len), 0);
	close(fd);
	return ntohs(a.sin_port);
}

static void test_redis_down_falls_back_to_files(void **state)
{
	struct world *w = world_of(state);
	char host[] = "127.0.0.1", user[] = "pam", password[] = "pw-Secret-unit",
	     prefix[] = "pam_twilio_sms:";
	struct tsms_redis redis = { .host = host,
		                    .username = user,
		                    .password = password,
		                    .key_prefix = prefix,
		                    .timeout_seconds = 2 };
	struct log_lines lines = { 0 };
	struct tsms_log log = { .fn = keep_line, .ctx = &lines };
	struct tsms_state_status status;
	char url[64], err[TSMS_STATE_ERR_MAX];
	struct tsms_state *st;
	long long wait;
	enum tsms_verdict v;
	bool locked;
	long long before = 0;

	redis.port = closed_port();
	snprintf(url, sizeof(url), "redis://127.0.0.1:%u/0", redis.port);
	redis.url = url;
	w->cfg.redis = &redis;
	w->cfg.send_limit = 1;
	w->cfg.resend_cooldown_seconds = 0;
	st = tsms_state_open(&w->cfg, &log);
	assert_non_null(st);
	assert_int_equal(tsms_state_reserve_send(st, "alice", T0, true, &v, &wait, err), TSMS_OK);
	assert_int_equal(v, TSMS_VERDICT_OK);
	assert_int_equal(lines.n, 1); /* one warning, naming the problem and the fallback */
	assert_int_equal(lines.priority, LOG_WARNING);
	assert_contains(lines.last, url);
	assert_contains(lines.last, "unavailable: connect: Connection refused");
	assert_contains(lines.last, w->dir);
	assert_null(strstr(lines.last, "pw-Secret-unit"));
	/* the files decided, and keep deciding for the rest of the login */
	expect_file(w->dir, "alice", T0, 1, T0, 0, 0);
	assert_int_equal(tsms_state_reserve_send(st, "alice", T0 + 1, true, &v, &wait, err),
	                 TSMS_OK);
	assert_int_equal(v, TSMS_VERDICT_USER_LIMIT);
	assert_int_equal(tsms_state_record_failure(st, "alice", T0 + 1, &locked, &before, err),
	                 TSMS_OK);
	expect_file(w->dir, "alice", T0, 1, T0, 1, 0);
	assert_int_equal(lines.n, 1);
	tsms_state_close(st);
	/* an administrator gets the truth, not the fallback */
	st = tsms_state_open(&w->cfg, &log);
	assert_int_equal(tsms_state_status(st, "alice", T0, &status, err), TSMS_ERR_STATE);
	assert_contains(err, "unavailable");
	assert_int_equal(tsms_state_status(st, "bob", T0, &status, err), TSMS_ERR_STATE);
	/* unlock still clears this host's fallback file: an outage locks no one out */
	assert_int_equal(tsms_state_unlock(st, "alice", T0, &status, err), TSMS_ERR_STATE);
	assert_contains(err, "unavailable");
	assert_contains(status.fallback, "/alice");
	expect_file(w->dir, "alice", T0, 1, T0, 0, 0);
	assert_int_equal(tsms_state_check(st, err), TSMS_ERR_STATE);
	assert_contains(err, "Connection refused");
	assert_null(strstr(err, "pw-Secret-unit"));
	assert_int_equal(lines.n, 1);
	tsms_state_close(st);
	w->cfg.redis = NULL;
}

/* A Redis that answers AUTH and hangs up: the module's next write hits a closed
 * socket, which raises SIGPIPE; unguarded, that kills the host program. */
struct hang_up {
	int listen_fd;
};

static void *hang_up_serve(void *arg)
{
	struct hang_up *hu = arg;
	char buf[512];
	int fd = accept(hu->listen_fd, NULL, NULL);

	if (fd >= 0) {
		if (read(fd, buf, sizeof(buf)) > 0) /* the AUTH command */
			(void)!write(fd, "+OK\r\n", 5);
		close(fd);
	}
	return NULL;
}

static void test_redis_hang_up_raises_no_sigpipe(void **state)
{
	struct world *w = world_of(state);
	char path[] = "/tmp/tsms-unit-redis-XXXXXX/redis.sock";
	char password[] = "pw-Secret-unit", prefix[] = "pam_twilio_sms:", url[128];
	struct tsms_redis redis = { .socket_path = path,
		                    .password = password,
		                    .key_prefix = prefix,
		                    .timeout_seconds = 2 };
	struct sockaddr_un a = { .sun_family = AF_UNIX };
	struct log_lines lines = { 0 };
	struct tsms_log log = { .fn = keep_line, .ctx = &lines };
	char err[TSMS_STATE_ERR_MAX];
	struct hang_up hu;
	struct tsms_state *st;
	sigset_t pending;
	enum tsms_verdict v;
	pthread_t server;
	long long wait;

	path[strlen(path) - strlen("/redis.sock")] = '\0';
	assert_non_null(mkdtemp(path));
	strcat(path, "/redis.sock");
	snprintf(url, sizeof(url), "unix://%s", path);
	redis.url = url;
	snprintf(a.sun_path, sizeof(a.sun_path), "%s", path);
	hu.listen_fd = socket(AF_UNIX, SOCK_STREAM, 0);
	assert_true(hu.listen_fd >= 0);
	assert_int_equal(bind(hu.listen_fd, (struct sockaddr *)&a, sizeof(a)), 0);
	assert_int_equal(listen(hu.listen_fd, 1), 0);
	assert_int_equal(pthread_create(&server, NULL, hang_up_serve, &hu), 0);
	w->cfg.redis = &redis;
	st = tsms_state_open(&w->cfg, &log);
	assert_int_equal(tsms_state_reserve_send(st, "alice", T0, true, &v, &wait, err), TSMS_OK);
	assert_int_equal(v, TSMS_VERDICT_OK); /* the files decided */
	assert_int_equal(lines.n, 1);
	assert_contains(lines.last, "unavailable");
	tsms_state_close(st);
	pthread_join(server, NULL);
	assert_int_equal(sigpending(&pending), 0);
	assert_false(sigismember(&pending, SIGPIPE)); /* consumed, not left for the host */
	close(hu.listen_fd);
	unlink(path);
	path[strlen(path) - strlen("/redis.sock")] = '\0';
	rmdir(path);
	w->cfg.redis = NULL;
}

/* ---- graces (lib/grace.h): the files' g lines, through the public API ---- */

#define RECORD0 "v1 window_start=0 sends=0 last_send=0 failures=0 locked_until=0\n"
#define SESSION_KEY "4242:0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0"
#define PENDING_KEY "00112233445566778899aabbccddeeff"

static void grace_open(const struct world *w, const char *user, char kind, const char *key,
                       long long now, long long until)
{
	struct guarded_err g;
	enum tsms_err e;

	err_init(&g);
	e = tsms_state_grace_open(w->st, user, kind, key, (time_t)now, until, g.err);
	err_check(&g);
	if (e != TSMS_OK) {
		print_error("grace_open(%s, %c, %s) returned %d: %s\n", user, kind, key, (int)e,
		            g.err);
		fail();
	}
}

/* The seconds left of user's grace of kind for key at now (0: none). */
static long long grace_left(const struct world *w, const char *user, char kind, const char *key,
                            long long now, bool *locked)
{
	struct guarded_err g;
	long long left = -1;
	bool is_locked = true;
	enum tsms_err e;

	err_init(&g);
	e = tsms_state_grace_find(w->st, user, kind, key, (time_t)now, &left, &is_locked, g.err);
	err_check(&g);
	if (e != TSMS_OK) {
		print_error("grace_find(%s, %c, %s) returned %d: %s\n", user, kind, key, (int)e,
		            g.err);
		fail();
	}
	if (locked != NULL)
		*locked = is_locked;
	else
		assert_false(is_locked);
	return left;
}

static size_t grace_list(const struct world *w, const char *user, long long now,
                         struct tsms_grace out[2 * TSMS_GRACE_MAX])
{
	struct guarded_err g;
	size_t n = 99;

	err_init(&g);
	assert_int_equal(tsms_state_graces(w->st, user, (time_t)now, out, &n, g.err), TSMS_OK);
	err_check(&g);
	assert_true(n <= 2 * TSMS_GRACE_MAX);
	return n;
}

static size_t grace_revoke(const struct world *w, const char *user, long long now)
{
	struct guarded_err g;
	size_t n = 99;

	err_init(&g);
	assert_int_equal(tsms_state_grace_revoke(w->st, user, (time_t)now, &n, g.err), TSMS_OK);
	err_check(&g);
	return n;
}

static long long grace_take(const struct world *w, const char *user, char kind, const char *key,
                            long long now)
{
	struct guarded_err g;
	long long until = -1;

	err_init(&g);
	assert_int_equal(tsms_state_grace_take(w->st, user, kind, key, (time_t)now, &until, g.err),
	                 TSMS_OK);
	err_check(&g);
	return until;
}

/* The grace of kind for key in list, or NULL. */
static const struct tsms_grace *listed(const struct tsms_grace *list, size_t n, char kind,
                                       const char *key)
{
	for (size_t i = 0; i < n; i++) {
		if (list[i].kind == kind && strcmp(list[i].key, key) == 0)
			return &list[i];
	}
	return NULL;
}

static void test_grace_open_find(void **state)
{
	struct world *w = world_of(state);
	struct tsms_grace list[2 * TSMS_GRACE_MAX];
	char buf[512];

	w->cfg.grace_period_seconds = 600;
	w->cfg.session_grace_seconds = 300;
	assert_int_equal(grace_left(w, "alice", TSMS_GRACE_ADDRESS, "192.0.2.1", T0, NULL), 0);
	grace_open(w, "alice", TSMS_GRACE_ADDRESS, "192.0.2.1", T0, T0 + 600);
	assert_int_equal(grace_left(w, "alice", TSMS_GRACE_ADDRESS, "192.0.2.1", T0, NULL), 600);
	assert_int_equal(grace_left(w, "alice", TSMS_GRACE_ADDRESS, "192.0.2.1", T0 + 10, NULL),
	                 590);
	assert_int_equal(grace_left(w, "alice", TSMS_GRACE_ADDRESS, "192.0.2.1", T0 + 599, NULL),
	                 1);
	/* it ends at until */
	assert_int_equal(grace_left(w, "alice", TSMS_GRACE_ADDRESS, "192.0.2.1", T0 + 600, NULL),
	                 0);
	/* another key, kind or user */
	assert_int_equal(grace_left(w, "alice", TSMS_GRACE_ADDRESS, "192.0.2.2", T0, NULL), 0);
	assert_int_equal(grace_left(w, "alice", TSMS_GRACE_ADDRESS, "192.0.2.10", T0, NULL), 0);
	assert_int_equal(grace_left(w, "alice", TSMS_GRACE_ADDRESS, "192.0.2.", T0, NULL), 0);
	assert_int_equal(grace_left(w, "alice", TSMS_GRACE_ADDRESS, "", T0, NULL), 0);
	assert_int_equal(grace_left(w, "alice", TSMS_GRACE_SESSION, "192.0.2.1", T0, NULL), 0);
	assert_int_equal(grace_left(w, "alice", TSMS_GRACE_PENDING, "192.0.2.1", T0, NULL), 0);
	assert_int_equal(grace_left(w, "bob", TSMS_GRACE_ADDRESS, "192.0.2.1", T0, NULL), 0);
	/* the state file: the record, then the grace */
	assert_true(read_state(w->dir, "alice", buf, sizeof(buf)) > 0);
	assert_string_equal(buf, RECORD0 "g a 192.0.2.1 1700000600\n");
	/* reopening restarts it in place */
	grace_open(w, "alice", TSMS_GRACE_ADDRESS, "192.0.2.1", T0 + 100, T0 + 700);
	assert_int_equal(grace_left(w, "alice", TSMS_GRACE_ADDRESS, "192.0.2.1", T0 + 100, NULL),
	                 600);
	grace_open(w, "alice", TSMS_GRACE_SESSION, SESSION_KEY, T0 + 100, T0 + 400);
	assert_int_equal(grace_list(w, "alice", T0 + 100, list), 2);
	assert_non_null(listed(list, 2, TSMS_GRACE_ADDRESS, "192.0.2.1"));
	assert_true(listed(list, 2, TSMS_GRACE_ADDRESS, "192.0.2.1")->until == T0 + 700);
	assert_false(listed(list, 2, TSMS_GRACE_ADDRESS, "192.0.2.1")->shared);
	assert_true(listed(list, 2, TSMS_GRACE_SESSION, SESSION_KEY)->until == T0 + 400);
	assert_true(read_state(w->dir, "alice", buf, sizeof(buf)) > 0);
	assert_string_equal(buf, RECORD0 "g a 192.0.2.1 1700000700\n"
	                                 "g s " SESSION_KEY " 1700000400\n");
	/* a hashed user's file has them too */
	grace_open(w, "Bob", TSMS_GRACE_ADDRESS, "2001:db8::1", T0, T0 + 60);
	assert_int_equal(grace_left(w, "Bob", TSMS_GRACE_ADDRESS, "2001:db8::1", T0, NULL), 60);
	assert_int_equal(grace_left(w, "bob", TSMS_GRACE_ADDRESS, "2001:db8::1", T0, NULL), 0);
}

static void test_grace_lockout_wins(void **state)
{
	struct world *w = world_of(state);
	bool locked = false;

	w->cfg.grace_period_seconds = 600;
	w->cfg.session_grace_seconds = 600;
	w->cfg.lockout_threshold = 3;
	w->cfg.lockout_seconds = 60;
	grace_open(w, "alice", TSMS_GRACE_ADDRESS, "192.0.2.1", T0, T0 + 600);
	grace_open(w, "alice", TSMS_GRACE_SESSION, SESSION_KEY, T0, T0 + 600);
	assert_false(wrong_answer(w, "alice", T0 + 1));
	assert_false(wrong_answer(w, "alice", T0 + 2));
	/* wrong answers below the threshold cost nothing */
	assert_int_equal(grace_left(w, "alice", TSMS_GRACE_ADDRESS, "192.0.2.1", T0 + 3, &locked),
	                 597);
	assert_false(locked);
	assert_true(wrong_answer(w, "alice", T0 + 3));
	assert_int_equal(grace_left(w, "alice", TSMS_GRACE_ADDRESS, "192.0.2.1", T0 + 4, &locked),
	                 0);
	assert_true(locked);
	assert_int_equal(grace_left(w, "alice", TSMS_GRACE_SESSION, SESSION_KEY, T0 + 4, &locked),
	                 0);
	assert_true(locked);
	/* locked with no grace at all: locked too */
	assert_int_equal(grace_left(w, "alice", TSMS_GRACE_ADDRESS, "192.0.2.9", T0 + 4, &locked),
	                 0);
	assert_true(locked);
	/* the lockout ends: the grace is there again */
	assert_int_equal(grace_left(w, "alice", TSMS_GRACE_ADDRESS, "192.0.2.1", T0 + 63, &locked),
	                 537);
	assert_false(locked);
	/* another user's lockout is not alice's */
	for (int i = 0; i < 3; i++)
		wrong_answer(w, "bob", T0);
	assert_int_equal(grace_left(w, "alice", TSMS_GRACE_ADDRESS, "192.0.2.1", T0 + 63, NULL),
	                 537);
}

static void test_grace_take(void **state)
{
	struct world *w = world_of(state);
	struct tsms_grace list[2 * TSMS_GRACE_MAX];
	char buf[512];

	w->cfg.grace_period_seconds = 600;
	w->cfg.session_grace_seconds = 300;
	assert_int_equal(grace_take(w, "alice", TSMS_GRACE_PENDING, PENDING_KEY, T0), 0);
	grace_open(w, "alice", TSMS_GRACE_PENDING, PENDING_KEY, T0, T0 + 300);
	grace_open(w, "alice", TSMS_GRACE_ADDRESS, "192.0.2.1", T0, T0 + 600);
	/* another kind or key takes nothing */
	assert_int_equal(grace_take(w, "alice", TSMS_GRACE_SESSION, PENDING_KEY, T0 + 1), 0);
	assert_int_equal(grace_take(w, "bob", TSMS_GRACE_PENDING, PENDING_KEY, T0 + 1), 0);
	assert_int_equal(grace_take(w, "alice", TSMS_GRACE_PENDING, PENDING_KEY, T0 + 1), T0 + 300);
	/* once */
	assert_int_equal(grace_take(w, "alice", TSMS_GRACE_PENDING, PENDING_KEY, T0 + 2), 0);
	assert_int_equal(grace_list(w, "alice", T0 + 2, list), 1);
	assert_int_equal(list[0].kind, TSMS_GRACE_ADDRESS);
	assert_true(read_state(w->dir, "alice", buf, sizeof(buf)) > 0);
	assert_string_equal(buf, RECORD0 "g a 192.0.2.1 1700000600\n");
	/* an ended one is not taken */
	grace_open(w, "alice", TSMS_GRACE_PENDING, PENDING_KEY, T0, T0 + 10);
	assert_int_equal(grace_take(w, "alice", TSMS_GRACE_PENDING, PENDING_KEY, T0 + 10), 0);
}

static void test_grace_revoke(void **state)
{
	struct world *w = world_of(state);
	struct tsms_grace list[2 * TSMS_GRACE_MAX];
	char buf[512];

	w->cfg.grace_period_seconds = 600;
	w->cfg.session_grace_seconds = 300;
	/* no state: nothing to revoke, and nothing created for the look */
	assert_int_equal(grace_revoke(w, "alice", T0), 0);
	assert_int_equal(grace_list(w, "alice", T0, list), 0);
	assert_int_equal(access(w->dir, F_OK), -1);
	make_dir(w);
	assert_int_equal(grace_revoke(w, "alice", T0), 0);
	assert_int_equal(count_entries(w->dir, ""), 0);
	grace_open(w, "alice", TSMS_GRACE_ADDRESS, "192.0.2.1", T0, T0 + 600);
	grace_open(w, "alice", TSMS_GRACE_ADDRESS, "2001:db8::1", T0, T0 + 600);
	grace_open(w, "alice", TSMS_GRACE_SESSION, SESSION_KEY, T0, T0 + 300);
	grace_open(w, "alice", TSMS_GRACE_PENDING, PENDING_KEY, T0, T0 + 300);
	grace_open(w, "alice", TSMS_GRACE_ADDRESS, "192.0.2.3", T0, T0 + 5); /* ends first */
	grace_open(w, "bob", TSMS_GRACE_ADDRESS, "192.0.2.1", T0, T0 + 600);
	assert_false(wrong_answer(w, "alice", T0));
	assert_int_equal(grace_list(w, "alice", T0 + 10, list), 4);
	/* the ones still open are counted */
	assert_int_equal(grace_revoke(w, "alice", T0 + 10), 4);
	assert_int_equal(grace_list(w, "alice", T0 + 10, list), 0);
	assert_int_equal(grace_left(w, "alice", TSMS_GRACE_ADDRESS, "192.0.2.1", T0 + 10, NULL), 0);
	assert_int_equal(grace_revoke(w, "alice", T0 + 10), 0);
	/* the record stays, the other user's grace too */
	assert_true(read_state(w->dir, "alice", buf, sizeof(buf)) > 0);
	assert_string_equal(buf, "v1 window_start=0 sends=0 last_send=0 failures=1 "
	                         "locked_until=0\n");
	assert_int_equal(grace_left(w, "bob", TSMS_GRACE_ADDRESS, "192.0.2.1", T0 + 10, NULL), 590);
}

static void test_grace_at_most_12(void **state)
{
	struct world *w = world_of(state);
	struct tsms_grace list[2 * TSMS_GRACE_MAX];
	/* the order they end in is not the order they were opened in */
	static const int ends[TSMS_GRACE_MAX] = { 500, 320, 400, 310, 590, 360,
		                                  305, 450, 580, 330, 470, 340 };
	char key[32];

	w->cfg.grace_period_seconds = 600;
	w->cfg.session_grace_seconds = 600;
	assert_int_equal(TSMS_GRACE_MAX, 12);
	for (int i = 0; i < TSMS_GRACE_MAX; i++) {
		snprintf(key, sizeof(key), "192.0.2.%d", i + 1);
		grace_open(w, "alice", TSMS_GRACE_ADDRESS, key, T0, T0 + ends[i]);
	}
	assert_int_equal(grace_list(w, "alice", T0, list), 12);
	/* reopening one that is there drops nothing */
	grace_open(w, "alice", TSMS_GRACE_ADDRESS, "192.0.2.1", T0 + 1, T0 + 501);
	assert_int_equal(grace_list(w, "alice", T0 + 1, list), 12);
	/* a 13th: the one ending first (192.0.2.7, at 305) makes room */
	grace_open(w, "alice", TSMS_GRACE_ADDRESS, "198.51.100.1", T0 + 2, T0 + 600);
	assert_int_equal(grace_list(w, "alice", T0 + 2, list), 12);
	assert_null(listed(list, 12, TSMS_GRACE_ADDRESS, "192.0.2.7"));
	assert_non_null(listed(list, 12, TSMS_GRACE_ADDRESS, "198.51.100.1"));
	assert_non_null(listed(list, 12, TSMS_GRACE_ADDRESS, "192.0.2.4"));
	/* and the next one, the next ending first (192.0.2.4, at 310) */
	grace_open(w, "alice", TSMS_GRACE_SESSION, SESSION_KEY, T0 + 3, T0 + 3);
	assert_int_equal(grace_list(w, "alice", T0 + 2, list), 12);
	assert_null(listed(list, 12, TSMS_GRACE_ADDRESS, "192.0.2.4"));
	/* an ended one makes room before any open one is dropped */
	grace_open(w, "alice", TSMS_GRACE_PENDING, PENDING_KEY, T0 + 4, T0 + 300);
	assert_int_equal(grace_list(w, "alice", T0 + 4, list), 12);
	assert_non_null(listed(list, 12, TSMS_GRACE_ADDRESS, "192.0.2.10"));
	assert_non_null(listed(list, 12, TSMS_GRACE_PENDING, PENDING_KEY));
}

static void test_grace_expired_pruned(void **state)
{
	struct world *w = world_of(state);
	struct tsms_grace list[2 * TSMS_GRACE_MAX];
	char buf[512];

	w->cfg.grace_period_seconds = 600;
	grace_open(w, "alice", TSMS_GRACE_ADDRESS, "192.0.2.1", T0, T0 + 10);
	grace_open(w, "alice", TSMS_GRACE_ADDRESS, "192.0.2.2", T0, T0 + 600);
	assert_int_equal(grace_list(w, "alice", T0 + 10, list), 1);
	assert_string_equal(list[0].key, "192.0.2.2");
	/* the next grace write forgets it */
	grace_open(w, "alice", TSMS_GRACE_ADDRESS, "192.0.2.3", T0 + 11, T0 + 611);
	assert_true(read_state(w->dir, "alice", buf, sizeof(buf)) > 0);
	assert_string_equal(buf, RECORD0 "g a 192.0.2.2 1700000600\n"
	                                 "g a 192.0.2.3 1700000611\n");
	assert_int_equal(grace_revoke(w, "alice", T0 + 700), 0);
	assert_true(read_state(w->dir, "alice", buf, sizeof(buf)) > 0);
	assert_string_equal(buf, RECORD0);
}

static void test_grace_capped_by_config(void **state)
{
	struct world *w = world_of(state);
	struct tsms_grace list[2 * TSMS_GRACE_MAX];
	char buf[512];

	w->cfg.grace_period_seconds = 3600;
	w->cfg.session_grace_seconds = 3600;
	grace_open(w, "alice", TSMS_GRACE_ADDRESS, "192.0.2.1", T0, T0 + 3600);
	grace_open(w, "alice", TSMS_GRACE_SESSION, SESSION_KEY, T0, T0 + 3600);
	grace_open(w, "alice", TSMS_GRACE_PENDING, PENDING_KEY, T0, T0 + 3600);
	/* the administrator lowers the window: what is open gets no more */
	w->cfg.grace_period_seconds = 60;
	assert_int_equal(grace_left(w, "alice", TSMS_GRACE_ADDRESS, "192.0.2.1", T0 + 10, NULL),
	                 60);
	assert_true(read_state(w->dir, "alice", buf, sizeof(buf)) > 0);
	assert_contains(buf, "g a 192.0.2.1 1700000070\n");
	assert_contains(buf, "g s " SESSION_KEY " 1700003600\n"); /* its own window */
	/* and a clock that steps back does not stretch it again */
	assert_int_equal(grace_left(w, "alice", TSMS_GRACE_ADDRESS, "192.0.2.1", T0, NULL), 60);
	w->cfg.session_grace_seconds = 100;
	assert_int_equal(grace_left(w, "alice", TSMS_GRACE_SESSION, SESSION_KEY, T0 + 10, NULL),
	                 100);
	assert_int_equal(grace_take(w, "alice", TSMS_GRACE_PENDING, PENDING_KEY, T0 + 10),
	                 T0 + 110);
	/* switched off (0): they end at once */
	w->cfg.grace_period_seconds = 0;
	assert_int_equal(grace_left(w, "alice", TSMS_GRACE_ADDRESS, "192.0.2.1", T0 + 11, NULL), 0);
	w->cfg.session_grace_seconds = 0;
	assert_int_equal(grace_list(w, "alice", T0 + 11, list), 0);
	assert_true(read_state(w->dir, "alice", buf, sizeof(buf)) > 0);
	assert_string_equal(buf, RECORD0);
	/* back on: nothing comes back */
	w->cfg.grace_period_seconds = 600;
	assert_int_equal(grace_left(w, "alice", TSMS_GRACE_ADDRESS, "192.0.2.1", T0 + 12, NULL), 0);
}

static void test_grace_lines_parse_back(void **state)
{
	struct world *w = world_of(state);
	struct tsms_grace list[2 * TSMS_GRACE_MAX];
	static const char content[] =
		"v1 window_start=1700000000 sends=2 last_send=1700000010 failures=1 "
		"locked_until=0\n"
		"g a 192.0.2.1 1700000600\n"
		"g a ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255 1700000500\n"
		"g s " SESSION_KEY " 1700000300\n"
		"g p " PENDING_KEY " 1700000200\n"
		"g a 192.0.2.9 1600000000\n"; /* long ended */
	char buf[1024];

	w->cfg.grace_period_seconds = 600;
	w->cfg.session_grace_seconds = 300;
	make_dir(w);
	write_state(w->dir, "alice", content, sizeof(content) - 1);
	assert_int_equal(grace_list(w, "alice", T0, list), 4);
	assert_true(listed(list, 4, TSMS_GRACE_ADDRESS, "192.0.2.1")->until == T0 + 600);
	assert_true(
		listed(list, 4, TSMS_GRACE_ADDRESS, "ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255")
			->until == T0 + 500);
	assert_true(listed(list, 4, TSMS_GRACE_SESSION, SESSION_KEY)->until == T0 + 300);
	assert_true(listed(list, 4, TSMS_GRACE_PENDING, PENDING_KEY)->until == T0 + 200);
	assert_int_equal(grace_left(w, "alice", TSMS_GRACE_ADDRESS, "192.0.2.1", T0, NULL), 600);
	/* the limits' operations keep the graces */
	expect_send(w, "alice", T0 + 40, TSMS_VERDICT_OK, 0);
	right_answer(w, "alice", T0 + 41);
	assert_false(wrong_answer(w, "alice", T0 + 42));
	assert_true(read_state(w->dir, "alice", buf, sizeof(buf)) > 0);
	assert_contains(buf, "v1 window_start=1700000000 sends=3 last_send=0 failures=1 "
	                     "locked_until=0\n");
	assert_contains(buf, "\ng a 192.0.2.1 1700000600\n");
	assert_contains(buf, "\ng s " SESSION_KEY " 1700000300\n");
	assert_contains(buf, "\ng p " PENDING_KEY " 1700000200\n");
	assert_int_equal(grace_list(w, "alice", T0 + 42, list), 4);
	/* the longest key a line may hold */
	{
		char key[TSMS_GRACE_KEY_MAX];

		memset(key, 'f', sizeof(key) - 1);
		key[sizeof(key) - 1] = '\0';
		grace_open(w, "alice", TSMS_GRACE_PENDING, key, T0 + 43, T0 + 300);
		assert_int_equal(grace_left(w, "alice", TSMS_GRACE_PENDING, key, T0 + 43, NULL),
		                 257);
	}
}

static void test_grace_corrupt_lines(void **state)
{
#define R "v1 window_start=1700000000 sends=1 last_send=1700000000 failures=0 locked_until=0\n"
#define G "g a 192.0.2.1 1700000600\n"
	static const char *const cases[] = {
		R "g x 192.0.2.1 1700000600\n",
		R "g A 192.0.2.1 1700000600\n",
		R "g  192.0.2.1 1700000600\n",
		R "G a 192.0.2.1 1700000600\n",
		R "g a 192.0.2.1 1700000600",   /* no newline */
		R G "g a 192.0.2.2 1700000600", /* the last without one */
		R "g a 192.0.2.1\n",
		R "g a 1700000600\n",
		R "g a  1700000600\n",
		R "g a 192.0.2.1  1700000600\n",
		R "g a 192.0.2.1 1700000600 \n",
		R "g a 192.0.2.1 1700000600\n\n",
		R "g a 192.0.2.1 -1\n",
		R "g a 192.0.2.1 x\n",
		R "g a 192.0.2.1 99999999999999999999\n",
		R "g a 192.0.2.1 1700000600x\n",
		R "g a FE80::1 1700000600\n",
		R "g a 192.0.2.1/24 1700000600\n",
		R "g a ../../etc/passwd 1700000600\n",
		R "g a host.example.com 1700000600\n",
		R "g a 192.0.2.1%eth0 1700000600\n",
		R "g a 192.0.2.1\t1700000600\n",
		R "g\ta 192.0.2.1 1700000600\n",
		R "ga 192.0.2.1 1700000600\n",
		R "x a 192.0.2.1 1700000600\n",
		R "g a 192.0.2.1 1700000600\r\n",
		R "g a 192.0.2.1 1700000600\n" R,
		G R, /* the grace before the record */
		/* a key of 72 characters */
		R "g p ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff "
		  "1700000600\n",
		/* 13 graces */
		R G G G G G G G G G G G G G,
	};
#undef R
#undef G
	struct world *w = world_of(state);

	make_dir(w);
	expect_all_corrupt(w, cases, sizeof(cases) / sizeof(cases[0]));
}

/* The grace operations refuse a corrupt state file like the others. */
static void test_grace_ops_on_corrupt_file(void **state)
{
	struct world *w = world_of(state);
	static const char content[] =
		"v1 window_start=0 sends=0 last_send=0 failures=0 locked_until=0\n"
		"g z 192.0.2.1 1700000600\n";
	struct tsms_grace list[2 * TSMS_GRACE_MAX];
	struct guarded_err g;
	long long left = -1, until = -1;
	bool locked = false;
	size_t n = 99;
	char buf[256];

	w->cfg.grace_period_seconds = 600;
	make_dir(w);
	write_state(w->dir, "alice", content, sizeof(content) - 1);
	err_init(&g);
	assert_int_equal(tsms_state_grace_find(w->st, "alice", TSMS_GRACE_ADDRESS, "192.0.2.1", T0,
	                                       &left, &locked, g.err),
	                 TSMS_ERR_STATE);
	err_check(&g);
	assert_contains(g.err, "is corrupt");
	assert_contains(g.err, "fix:");
	assert_int_equal(left, 0);
	err_init(&g);
	assert_int_equal(tsms_state_grace_open(w->st, "alice", TSMS_GRACE_ADDRESS, "192.0.2.1", T0,
	                                       T0 + 600, g.err),
	                 TSMS_ERR_STATE);
	err_check(&g);
	err_init(&g);
	assert_int_equal(tsms_state_grace_take(w->st, "alice", TSMS_GRACE_PENDING, PENDING_KEY, T0,
	                                       &until, g.err),
	                 TSMS_ERR_STATE);
	err_check(&g);
	assert_int_equal(until, 0);
	err_init(&g);
	assert_int_equal(tsms_state_graces(w->st, "alice", T0, list, &n, g.err), TSMS_ERR_STATE);
	err_check(&g);
	assert_contains(g.err, "is corrupt");
	err_init(&g);
	assert_int_equal(tsms_state_grace_revoke(w->st, "alice", T0, &n, g.err), TSMS_ERR_STATE);
	err_check(&g);
	/* the evidence is left as it was */
	assert_int_equal(read_state(w->dir, "alice", buf, sizeof(buf)),
	                 (ssize_t)sizeof(content) - 1);
	assert_string_equal(buf, content);
}

static void test_grace_kept_by_status_and_unlock(void **state)
{
	struct world *w = world_of(state);
	struct tsms_grace list[2 * TSMS_GRACE_MAX];
	struct tsms_state_status status;
	struct guarded_err g;

	w->cfg.grace_period_seconds = 600;
	w->cfg.lockout_threshold = 2;
	grace_open(w, "alice", TSMS_GRACE_ADDRESS, "192.0.2.1", T0, T0 + 600);
	assert_false(wrong_answer(w, "alice", T0 + 1));
	assert_true(wrong_answer(w, "alice", T0 + 2));
	err_init(&g);
	assert_int_equal(tsms_state_status(w->st, "alice", T0 + 3, &status, g.err), TSMS_OK);
	err_check(&g);
	assert_true(status.exists);
	assert_int_equal(status.failures, 2);
	assert_int_equal(grace_list(w, "alice", T0 + 3, list), 1);
	err_init(&g);
	assert_int_equal(tsms_state_unlock(w->st, "alice", T0 + 4, &status, g.err), TSMS_OK);
	err_check(&g);
	assert_true(status.locked_until != 0);
	/* unlocked, the grace applies again: unlock is not revoke-grace */
	assert_int_equal(grace_left(w, "alice", TSMS_GRACE_ADDRESS, "192.0.2.1", T0 + 5, NULL),
	                 595);
	assert_int_equal(grace_list(w, "alice", T0 + 5, list), 1);
}

/* Graces of graceScope fleet while Redis is down: a login keeps them in this
 * host's files; an administrator gets the error, after this host's are ended. */
static void test_grace_fleet_redis_down(void **state)
{
	struct world *w = world_of(state);
	char host[] = "127.0.0.1", prefix[] = "pam_twilio_sms:", url[64];
	struct tsms_redis redis = { .host = host, .key_prefix = prefix, .timeout_seconds = 2 };
	struct log_lines lines = { 0 };
	struct tsms_log log = { .fn = keep_line, .ctx = &lines };
	struct tsms_grace list[2 * TSMS_GRACE_MAX];
	char err[TSMS_STATE_ERR_MAX], buf[512];
	struct tsms_state *st;
	long long left = 0;
	bool locked = true;
	size_t n = 99;

	redis.port = closed_port();
	snprintf(url, sizeof(url), "redis://127.0.0.1:%u/0", redis.port);
	redis.url = url;
	w->cfg.redis = &redis;
	w->cfg.grace_period_seconds = 600;
	w->cfg.grace_fleet = true;
	st = tsms_state_open(&w->cfg, &log);
	assert_int_equal(tsms_state_grace_open(st, "alice", TSMS_GRACE_ADDRESS, "192.0.2.1", T0,
	                                       T0 + 600, err),
	                 TSMS_OK);
	assert_int_equal(lines.n, 1);
	assert_contains(lines.last, "unavailable");
	assert_int_equal(tsms_state_grace_find(st, "alice", TSMS_GRACE_ADDRESS, "192.0.2.1", T0 + 1,
	                                       &left, &locked, err),
	                 TSMS_OK);
	assert_int_equal(left, 599);
	assert_false(locked);
	assert_int_equal(lines.n, 1);
	tsms_state_close(st);
	assert_true(read_state(w->dir, "alice", buf, sizeof(buf)) > 0);
	assert_contains(buf, "\ng a 192.0.2.1 1700000600\n");
	/* a new login finds it in the files too */
	lines.n = 0;
	st = tsms_state_open(&w->cfg, &log);
	assert_int_equal(tsms_state_grace_find(st, "alice", TSMS_GRACE_ADDRESS, "192.0.2.1", T0 + 2,
	                                       &left, &locked, err),
	                 TSMS_OK);
	assert_int_equal(left, 598);
	assert_int_equal(lines.n, 1);
	tsms_state_close(st);
	/* the administrator: the truth, not the fallback; revoke ends this host's first */
	st = tsms_state_open(&w->cfg, &log);
	assert_int_equal(tsms_state_graces(st, "alice", T0 + 3, list, &n, err), TSMS_ERR_STATE);
	assert_contains(err, "unavailable");
	assert_int_equal(tsms_state_grace_revoke(st, "alice", T0 + 3, &n, err), TSMS_ERR_STATE);
	assert_contains(err, "unavailable");
	tsms_state_close(st);
	assert_true(read_state(w->dir, "alice", buf, sizeof(buf)) > 0);
	assert_not_contains(buf, "g a ");
	w->cfg.redis = NULL;
	w->cfg.grace_fleet = false;
	assert_int_equal(grace_list(w, "alice", T0 + 3, list), 0);
}

/* A Redis that answers every command with the next of its replies, one
 * connection each: what a hostile or broken server may say to gracelist. */
struct canned {
	int listen_fd;
	const char *const *replies;
	size_t n;
};

static void *canned_serve(void *arg)
{
	struct canned *c = arg;
	char buf[4096];

	for (size_t i = 0; i < c->n; i++) {
		int fd = accept(c->listen_fd, NULL, NULL);

		if (fd < 0)
			break;
		if (read(fd, buf, sizeof(buf)) > 0) /* EVALSHA: no password, DB 0 */
			(void)!write(fd, c->replies[i], strlen(c->replies[i]));
		close(fd);
	}
	return NULL;
}

static void test_grace_fleet_list_hostile_reply(void **state)
{
	/* a 72-character address, and 13 graces */
#define A72 "ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff"
#define ONE "$9\r\n192.0.2.1\r\n:1700000600\r\n"
	static const char *const replies[] = {
		/* what the script answers: accepted */
		"*3\r\n:1700000000\r\n" ONE,
		"*1\r\n:1700000000\r\n",
		/* the rest refused */
		"*2\r\n:1700000000\r\n$9\r\n192.0.2.1\r\n",
		"*3\r\n:1700000000\r\n$11\r\n192.0.2.1\ng\r\n:1700000600\r\n",
		"*3\r\n:1700000000\r\n$7\r\nFE80::1\r\n:1700000600\r\n",
		"*3\r\n:1700000000\r\n$9\r\n1.2.3.4 x\r\n:1700000600\r\n",
		"*3\r\n:1700000000\r\n$7\r\n../../x\r\n:1700000600\r\n",
		"*3\r\n:1700000000\r\n$7\r\nfe80--1\r\n:1700000600\r\n",
		"*3\r\n:1700000000\r\n$0\r\n\r\n:1700000600\r\n",
		"*3\r\n:1700000000\r\n$72\r\n" A72 "\r\n:1700000600\r\n",
		"*27\r\n:1700000000\r\n" ONE ONE ONE ONE ONE ONE ONE ONE ONE ONE ONE ONE ONE,
		"*3\r\n:1700000000\r\n$9\r\n192.0.2.1\r\n:-1\r\n",
		"*3\r\n:1700000000\r\n$9\r\n192.0.2.1\r\n:1099511627776\r\n",
		"*3\r\n:1700000000\r\n:19202\r\n:1700000600\r\n",
		"*3\r\n:1700000000\r\n$9\r\n192.0.2.1\r\n$10\r\n1700000600\r\n",
		"*3\r\n$10\r\n1700000000\r\n" ONE,
		"*3\r\n:-1700000000\r\n" ONE,
		"*3\r\n:1700000000\r\n*1\r\n$9\r\n192.0.2.1\r\n:1700000600\r\n",
		"*0\r\n",
		"*-1\r\n",
		"$-1\r\n",
		":1\r\n",
		"+OK\r\n",
		"-ERR unknown operation\r\n",
	};
#undef A72
#undef ONE
	struct world *w = world_of(state);
	char path[] = "/tmp/tsms-unit-redis-XXXXXX/redis.sock";
	char prefix[] = "pam_twilio_sms:", url[128];
	struct tsms_redis redis = { .socket_path = path,
		                    .key_prefix = prefix,
		                    .timeout_seconds = 2 };
	struct sockaddr_un a = { .sun_family = AF_UNIX };
	struct tsms_grace list[2 * TSMS_GRACE_MAX];
	size_t n_cases = sizeof(replies) / sizeof(replies[0]);
	struct canned c = { .replies = replies, .n = n_cases };
	char err[TSMS_STATE_ERR_MAX];
	pthread_t server;
	int accepted = 0;

	path[strlen(path) - strlen("/redis.sock")] = '\0';
	assert_non_null(mkdtemp(path));
	strcat(path, "/redis.sock");
	snprintf(url, sizeof(url), "unix://%s", path);
	redis.url = url;
	snprintf(a.sun_path, sizeof(a.sun_path), "%s", path);
	c.listen_fd = socket(AF_UNIX, SOCK_STREAM, 0);
	assert_true(c.listen_fd >= 0);
	assert_int_equal(bind(c.listen_fd, (struct sockaddr *)&a, sizeof(a)), 0);
	assert_int_equal(listen(c.listen_fd, 4), 0);
	assert_int_equal(pthread_create(&server, NULL, canned_serve, &c), 0);
	w->cfg.redis = &redis;
	w->cfg.grace_period_seconds = 600;
	w->cfg.grace_fleet = true;
	for (size_t i = 0; i < n_cases; i++) {
		struct tsms_state *st = tsms_state_open(&w->cfg, NULL);
		size_t n = 99;
		enum tsms_err e;

		memset(list, 0, sizeof(list));
		e = tsms_state_graces(st, "alice", T0 + 5, list, &n, err);
		tsms_state_close(st);
		if (i == 0) {
			/* until by the server's clock, shown by this host's */
			assert_int_equal(e, TSMS_OK);
			assert_int_equal(n, 1);
			assert_int_equal(list[0].kind, TSMS_GRACE_ADDRESS);
			assert_string_equal(list[0].key, "192.0.2.1");
			assert_true(list[0].shared);
			assert_true(list[0].until == T0 + 605);
			continue;
		}
		if (i == 1) {
			assert_int_equal(e, TSMS_OK);
			assert_int_equal(n, 0);
			continue;
		}
		if (e != TSMS_ERR_STATE || n != 0) {
			char show[160];

			print_error("gracelist reply \"%s\" was accepted (%d, %zu graces)\n",
			            shown(replies[i], strlen(replies[i]), show), (int)e, n);
			accepted++;
		}
	}
	pthread_join(server, NULL);
	close(c.listen_fd);
	unlink(path);
	path[strlen(path) - strlen("/redis.sock")] = '\0';
	rmdir(path);
	w->cfg.redis = NULL;
	w->cfg.grace_fleet = false;
	assert_int_equal(accepted, 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_name_plain_kept),
		cmocka_unit_test(test_name_hashed),
		cmocka_unit_test(test_name_1kb),
		cmocka_unit_test(test_name_stable_and_distinct),
		cmocka_unit_test(test_verdict_names),
		world_test(test_send_limit_exact),
		world_test(test_window_rollover),
		world_test(test_cooldown),
		world_test(test_global_cap_across_users),
		world_test(test_global_not_charged_by_user_refusals),
		world_test(test_global_off_by_default),
		world_test(test_lockout_after_threshold),
		world_test(test_lockout_before_the_answer),
		world_test(test_clock_stepped_back),
		world_test(test_lockout_expiry_resets),
		world_test(test_success_resets_failures),
		world_test(test_state_dir_created_0700),
		world_test(test_state_dir_writable_by_others_refused),
		world_test(test_state_dir_other_problems_refused),
		world_test(test_file_format_after_writes),
		world_test(test_names_stay_inside_state_dir),
		world_test(test_corrupt_garbage),
		world_test(test_corrupt_truncated),
		world_test(test_corrupt_extra_bytes),
		world_test(test_corrupt_negative_numbers),
		world_test(test_corrupt_overflowing_numbers),
		world_test(test_corrupt_symlink),
		world_test(test_corrupt_directory),
		world_test(test_corrupt_huge_file),
		world_test(test_corrupt_other_kinds),
		world_test(test_corrupt_global_file),
		world_test(test_concurrent_same_user),
		world_test(test_concurrent_distinct_users_global_cap),
		cmocka_unit_test(test_redis_script_sha1),
		world_test(test_redis_down_falls_back_to_files),
		world_test(test_redis_hang_up_raises_no_sigpipe),
		world_test(test_file_size_limit_fails_closed),
		world_test(test_grace_open_find),
		world_test(test_grace_lockout_wins),
		world_test(test_grace_take),
		world_test(test_grace_revoke),
		world_test(test_grace_at_most_12),
		world_test(test_grace_expired_pruned),
		world_test(test_grace_capped_by_config),
		world_test(test_grace_lines_parse_back),
		world_test(test_grace_corrupt_lines),
		world_test(test_grace_ops_on_corrupt_file),
		world_test(test_grace_kept_by_status_and_unlock),
		world_test(test_grace_fleet_redis_down),
		world_test(test_grace_fleet_list_hostile_reply),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
