/* test_backup.c - unit tests of lib/backup (backup codes: their shape, the
 * sets, counting, revoking and using them once, also when processes race),
 * lib/keyfile (the root-only "KEY VALUE" files and their rewrites) and the
 * Argon2id helpers of lib/otp, in a temporary directory. */
#include "unit.h"

#include <ctype.h>
#include <dirent.h>
#include <regex.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>

#include "backup.h"
#include "config.h"
#include "keyfile.h"
#include "lock.h"
#include "otp.h"

#define ALPHABET "23456789abcdefghijkmnpqrstuvwxyz"
#define SHOWN_RE "^[2-9a-km-np-z]{4}-[2-9a-km-np-z]{4}$"
#define HASH_RE "^\\$argon2id\\$v=19\\$m=[0-9]+,t=[0-9]+,p=1\\$[A-Za-z0-9+/]+\\$[A-Za-z0-9+/]+$"
#define NOBODY 65534
#define WHAT "testFile" /* what names a keyfile in its messages */

/* one test's world: a mkdtemp directory and the backup codes file in it,
 * which does not exist until the library (or the test) writes it */
struct world {
	char root[64];
	char file[96];
	char lock[104];
	struct tsms_config cfg;
};

static int group_setup(void **state)
{
	(void)state;
	return tsms_crypto_init();
}

static int setup(void **state)
{
	struct world *w = calloc(1, sizeof(*w));

	if (w == NULL)
		return -1;
	snprintf(w->root, sizeof(w->root), "/tmp/tsms-unit-backup-XXXXXX");
	if (mkdtemp(w->root) == NULL) {
		free(w);
		return -1;
	}
	snprintf(w->file, sizeof(w->file), "%s/backup-codes", w->root);
	snprintf(w->lock, sizeof(w->lock), "%s.lock", w->file);
	w->cfg.backup_codes_file = w->file;
	*state = w;
	return 0;
}

static int teardown(void **state)
{
	struct world *w = *state;

	if (w != NULL) {
		unit_remove_tree(w->root);
		free(w);
	}
	return 0;
}

/* The library insists on root-owned files: without root there is nothing to
 * test (as root, which CI is, every case runs). */
static struct world *world_of(void **state)
{
	if (geteuid() != 0) {
		print_message("skipped: needs root (the files must be root-owned)\n");
		skip();
	}
	return *state;
}

/* ------------------------------------------------------------ files */

/* Writes text as path, mode mode (a new file, never through a symlink). */
static void write_text(const char *path, const char *text, mode_t mode)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW, 0600);
	size_t len = strlen(text);

	assert_true(fd >= 0);
	assert_int_equal(write(fd, text, len), (ssize_t)len);
	assert_int_equal(fchmod(fd, mode), 0);
	assert_int_equal(close(fd), 0);
}

/* path's whole text in a new string (the caller frees it), NULL when missing. */
static char *read_text(const char *path)
{
	struct stat st;
	char *buf;
	int fd = open(path, O_RDONLY | O_NOFOLLOW);

	if (fd < 0 && errno == ENOENT)
		return NULL;
	assert_true(fd >= 0);
	assert_int_equal(fstat(fd, &st), 0);
	buf = malloc((size_t)st.st_size + 1);
	assert_non_null(buf);
	assert_int_equal(read(fd, buf, (size_t)st.st_size), (ssize_t)st.st_size);
	buf[st.st_size] = '\0';
	close(fd);
	return buf;
}

static ino_t inode_of(const char *path)
{
	struct stat st;

	assert_int_equal(lstat(path, &st), 0);
	return st.st_ino;
}

/* path is a regular file of root's, mode 0600 */
static void assert_private(const char *path)
{
	struct stat st;

	assert_int_equal(lstat(path, &st), 0);
	assert_true(S_ISREG(st.st_mode));
	assert_int_equal(st.st_uid, 0);
	assert_int_equal(st.st_gid, 0);
	assert_int_equal(st.st_mode & 07777, 0600);
}

/* The directory holds nothing but the file and its lock: no temp file left. */
static void assert_no_leftovers(const struct world *w)
{
	struct dirent **names;
	int n = scandir(w->root, &names, NULL, alphasort);

	assert_true(n >= 0);
	for (int i = 0; i < n; i++) {
		const char *name = names[i]->d_name;

		if (strcmp(name, ".") != 0 && strcmp(name, "..") != 0 &&
		    strcmp(name, "backup-codes") != 0 && strcmp(name, "backup-codes.lock") != 0 &&
		    strncmp(name, "keep", 4) != 0) {
			print_error("left behind: %s/%s\n", w->root, name);
			fail();
		}
		free(names[i]);
	}
	free(names);
}

/* The file's text is want, byte for byte (NULL: the file does not exist). */
static void assert_file_is(const char *path, const char *want)
{
	char *text = read_text(path);

	if (want == NULL)
		assert_null(text);
	else
		assert_string_equal(text, want);
	free(text);
}

/* err is one printable line inside its buffer with every needle */
static void assert_err(const char *err, const char *needle1, const char *needle2)
{
	assert_non_null(memchr(err, '\0', TSMS_CONFIG_ERR_MAX));
	assert_no_control(err);
	assert_contains(err, needle1);
	if (needle2 != NULL)
		assert_contains(err, needle2);
}

static bool matches(const char *re, const char *s)
{
	regex_t rx;
	bool ok;

	assert_int_equal(regcomp(&rx, re, REG_EXTENDED | REG_NOSUB), 0);
	ok = regexec(&rx, s, 0, NULL, 0) == 0;
	regfree(&rx);
	return ok;
}

/* ------------------------------------------------------------ the file's lines */

/* user's line(s) of a backup codes file as the tests read it */
struct user_line {
	unsigned lines; /* lines with user as their key */
	unsigned n;     /* hashes on the (last) one */
	char hashes[TSMS_BACKUP_COUNT_MAX + 4][TSMS_HASH_MAX];
};

/* Reads user's line of text: "USER HASH HASH ...", one space between fields,
 * each field an Argon2id string (the test fails otherwise). */
static void parse_user(const char *text, const char *user, struct user_line *u)
{
	size_t ulen = strlen(user);

	memset(u, 0, sizeof(*u));
	for (const char *p = text; p != NULL && *p != '\0';) {
		const char *nl = strchr(p, '\n');
		size_t len = nl != NULL ? (size_t)(nl - p) : strlen(p);
		char line[8192];
		char *save = NULL, *field;

		assert_true(len < sizeof(line));
		memcpy(line, p, len);
		line[len] = '\0';
		p = nl != NULL ? nl + 1 : NULL;
		if (strncmp(line, user, ulen) != 0 || (line[ulen] != ' ' && line[ulen] != '\0'))
			continue;
		u->lines++;
		u->n = 0;
		assert_not_contains(line, "  ");
		assert_true(line[len - 1] != ' ');
		strtok_r(line, " ", &save);
		while ((field = strtok_r(NULL, " ", &save)) != NULL) {
			if (!matches(HASH_RE, field)) {
				print_error("not an Argon2id string on %s's line: \"%s\"\n", user,
				            field);
				fail();
			}
			assert_true(strlen(field) < TSMS_HASH_MAX);
			assert_true(u->n < TSMS_BACKUP_COUNT_MAX + 4);
			strcpy(u->hashes[u->n++], field);
		}
	}
}

static void file_user(const struct world *w, const char *user, struct user_line *u)
{
	char *text = read_text(w->file);

	parse_user(text != NULL ? text : "", user, u);
	free(text);
}

/* ------------------------------------------------------------ the library, checked */

static void plain(const char *shown, char out[TSMS_BACKUP_SYMBOLS + 1])
{
	size_t j = 0;

	for (size_t i = 0; shown[i] != '\0' && j < TSMS_BACKUP_SYMBOLS; i++) {
		if (shown[i] != '-')
			out[j++] = shown[i];
	}
	out[j] = '\0';
}

/* generate, which must succeed; returns *replaced */
static unsigned gen(const struct world *w, const char *user, unsigned count,
                    char codes[][TSMS_BACKUP_SHOWN])
{
	char err[TSMS_CONFIG_ERR_MAX] = "";
	unsigned replaced = 12345;
	enum tsms_err rc = tsms_backup_generate(&w->cfg, user, count, codes, &replaced, err);

	if (rc != TSMS_OK) {
		print_error("generate %s %u: %s: %s\n", user, count, tsms_strerror(rc), err);
		fail();
	}
	return replaced;
}

static unsigned left_of(const struct world *w, const char *user)
{
	char err[TSMS_CONFIG_ERR_MAX] = "";
	unsigned left = 12345;
	enum tsms_err rc = tsms_backup_count(&w->cfg, user, &left, err);

	if (rc != TSMS_OK) {
		print_error("count %s: %s: %s\n", user, tsms_strerror(rc), err);
		fail();
	}
	return left;
}

/* use, which must not fail; returns *used, *left in left */
static bool use(const struct world *w, const char *user, const char *answer,
                char id[TSMS_DIGEST_HEX], unsigned *left)
{
	char err[TSMS_CONFIG_ERR_MAX] = "";
	bool used = true;
	enum tsms_err rc;

	memset(id, 0, TSMS_DIGEST_HEX);
	*left = 12345;
	rc = tsms_backup_use(&w->cfg, user, answer, &used, id, left, err);
	if (rc != TSMS_OK) {
		print_error("use %s: %s: %s\n", user, tsms_strerror(rc), err);
		fail();
	}
	return used;
}

static void assert_id(const char *id)
{
	assert_int_equal(strlen(id), TSMS_DIGEST_HEX - 1);
	assert_int_equal(strspn(id, "0123456789abcdef"), TSMS_DIGEST_HEX - 1);
}

/* ------------------------------------------------------------ normalize */

static void expect_normal(const char *answer, const char *want)
{
	char out[TSMS_BACKUP_SYMBOLS + 1];

	memset(out, 'Z', sizeof(out));
	if (!tsms_backup_normalize(answer, out)) {
		print_error("\"%s\" refused, want \"%s\"\n", answer, want);
		fail();
	}
	assert_string_equal(out, want);
}

static void expect_refused(const char *answer)
{
	char out[TSMS_BACKUP_SYMBOLS + 1];

	if (tsms_backup_normalize(answer, out)) {
		print_error("\"%s\" accepted as a backup code\n", answer);
		fail();
	}
}

static void test_normalize_accepts(void **state)
{
	(void)state;
	expect_normal("k7mq-3xfa", "k7mq3xfa");
	expect_normal("k7mq3xfa", "k7mq3xfa");
	expect_normal("K7MQ3XFA", "k7mq3xfa");
	expect_normal("K7MQ-3XFA", "k7mq3xfa");
	expect_normal("k7Mq-3xFa", "k7mq3xfa");
	expect_normal("  k7mq-3xfa\t", "k7mq3xfa");
	expect_normal(" k7mq-3xfa ", "k7mq3xfa");
	expect_normal("\tk7mq3xfa  ", "k7mq3xfa");
	expect_normal("k7mq3xfa\n", "k7mq3xfa");
	expect_normal("23456789", "23456789");
	/* every symbol, in every position, in both cases */
	for (const char *s = ALPHABET; *s != '\0'; s++) {
		for (int pos = 0; pos < TSMS_BACKUP_SYMBOLS; pos++) {
			char answer[16] = "2222-2222", want[16] = "22222222";

			answer[pos < 4 ? pos : pos + 1] = *s;
			want[pos] = *s;
			expect_normal(answer, want);
			answer[pos < 4 ? pos : pos + 1] = (char)toupper((unsigned char)*s);
			expect_normal(answer, want);
		}
	}
}

static void test_normalize_refuses(void **state)
{
	static const char *const bad[] = {
		"", " ", "\t \t", "-",
		/* 7 and 9 symbols */
		"k7mq3xf", "k7mq-3xf", "k7m-q3xf", "k7mq3xfab", "k7mq-3xfab", "k7mqx-3xfa",
		/* the hyphen elsewhere, or twice */
		"k7mq--3xfa", "k7-mq-3xfa", "k7m-q3xfa", "k7mq3-xfa", "-k7mq3xfa", "k7mq3xfa-",
		"k7mq-3xf-a", "-k7mq-3xfa", "k7mq-3xfa-", "k7mq3x-fa",
		/* white space inside */
		"k7mq 3xfa", "k7mq- 3xfa", "k7mq\t3xfa", "k7 mq3xfa",
		/* an SMS code */
		"123456", "12345678", "0000-0000",
		/* other separators */
		"k7mq_3xfa", "k7mq.3xfa", "k7mq+3xfa", "k7mq:3xfa",
		/* bytes that are not symbols: high bytes, a NUL's neighbours */
		"k7mq-3xf\xc3\xa1", "\xc3\xa1k7mq3xf", "k7mq-3xf\x01", "k7mq-3xf\x7f"
	};
	/* symbols outside the alphabet */
	static const char outside[] = "01loLO!@#$%^&*()=[]{}<>/?\\|,;'\"`~";

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		expect_refused(bad[i]);
	for (const char *c = outside; *c != '\0'; c++) {
		for (int pos = 0; pos < 9; pos++) {
			char answer[16] = "k7mq-3xfa";

			if (pos == 4)
				continue;
			answer[pos] = *c;
			expect_refused(answer);
		}
	}
}

/* ------------------------------------------------------------ Argon2id */

static void test_secret_hash_and_verify(void **state)
{
	char a[TSMS_HASH_MAX], b[TSMS_HASH_MAX];

	(void)state;
	memset(a, 'Z', sizeof(a));
	assert_int_equal(tsms_secret_hash("k7mq3xfa", a), 0);
	assert_non_null(memchr(a, '\0', sizeof(a)));
	if (!matches(HASH_RE, a)) {
		print_error("not an Argon2id string: \"%s\"\n", a);
		fail();
	}
	assert_not_contains(a, "k7mq3xfa");
	assert_true(tsms_secret_verify(a, "k7mq3xfa"));
	/* a wrong secret: one symbol off, a prefix, longer, another case, empty */
	assert_false(tsms_secret_verify(a, "k7mq3xfb"));
	assert_false(tsms_secret_verify(a, "k7mq3xf"));
	assert_false(tsms_secret_verify(a, "k7mq3xfaa"));
	assert_false(tsms_secret_verify(a, "K7MQ3XFA"));
	assert_false(tsms_secret_verify(a, ""));
	/* a fresh salt each time: two hashes of one secret differ, both verify */
	assert_int_equal(tsms_secret_hash("k7mq3xfa", b), 0);
	assert_string_not_equal(a, b);
	assert_true(tsms_secret_verify(b, "k7mq3xfa"));
	/* the empty secret is a secret like any other */
	assert_int_equal(tsms_secret_hash("", b), 0);
	assert_true(tsms_secret_verify(b, ""));
	assert_false(tsms_secret_verify(b, "k7mq3xfa"));
}

/* Argon2id needs 4 MiB: without them a code cannot be checked, which is no
 * wrong code (TSMS_ERR_SYSTEM: the login fails closed, no wrong code counted,
 * the file unchanged). In a child whose address space is capped just above
 * what it uses. */
static void test_use_out_of_memory_is_no_wrong_code(void **state)
{
	const struct world *w = world_of(state);
	char codes[TSMS_BACKUP_COUNT_MAX][TSMS_BACKUP_SHOWN], before[1024];
	char *text;
	int status;
	pid_t pid;

	assert_int_equal(gen(w, "alice", 2, codes), 0);
	text = read_text(w->file); /* copied: the child leaves nothing allocated behind */
	assert_true(strlen(text) < sizeof(before));
	snprintf(before, sizeof(before), "%s", text);
	free(text);
	assert_true(tsms_secret_works());
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		unsigned long pages = 0;
		FILE *f = fopen("/proc/self/statm", "r");
		char err[TSMS_CONFIG_ERR_MAX] = "", id[TSMS_DIGEST_HEX];
		struct rlimit cap;
		enum tsms_err e;
		unsigned n;
		bool used;

		if (f == NULL || fscanf(f, "%lu", &pages) != 1)
			_exit(90);
		fclose(f);
		cap.rlim_cur = cap.rlim_max = pages * (rlim_t)sysconf(_SC_PAGESIZE) + (1 << 20);
		if (setrlimit(RLIMIT_AS, &cap) != 0)
			_exit(91);
		if (tsms_secret_works())
			_exit(92);
		e = tsms_backup_use(&w->cfg, "alice", codes[1], &used, id, &n, err);
		_exit(e == TSMS_ERR_SYSTEM && !used && strstr(err, "out of memory") != NULL ? 0
		                                                                            : 93);
	}
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
	assert_file_is(w->file, before);
	assert_int_equal(left_of(w, "alice"), 2);
}

static void test_secret_verify_refuses_damaged_hashes(void **state)
{
	char h[TSMS_HASH_MAX], damaged[TSMS_HASH_MAX];
	char *last;

	(void)state;
	assert_int_equal(tsms_secret_hash("k7mq3xfa", h), 0);
	assert_false(tsms_secret_verify("", "k7mq3xfa"));
	assert_false(tsms_secret_verify("$argon2id$", "k7mq3xfa"));
	assert_false(tsms_secret_verify("garbage", "k7mq3xfa"));
	/* cut short */
	memcpy(damaged, h, sizeof(damaged));
	damaged[strlen(damaged) - 5] = '\0';
	assert_false(tsms_secret_verify(damaged, "k7mq3xfa"));
	/* one byte of the digest changed */
	memcpy(damaged, h, sizeof(damaged));
	last = damaged + strlen(damaged) - 2;
	*last = *last == 'A' ? 'B' : 'A';
	assert_false(tsms_secret_verify(damaged, "k7mq3xfa"));
}

/* ------------------------------------------------------------ generate */

/* Checks one generated set: count codes as shown, symbols of the alphabet,
 * all distinct. */
static void assert_code_set(char codes[][TSMS_BACKUP_SHOWN], unsigned count)
{
	for (unsigned i = 0; i < count; i++) {
		char normal[TSMS_BACKUP_SYMBOLS + 1];

		assert_non_null(memchr(codes[i], '\0', TSMS_BACKUP_SHOWN));
		if (!matches(SHOWN_RE, codes[i])) {
			print_error("code %u of %u is \"%s\", not xxxx-xxxx\n", i, count, codes[i]);
			fail();
		}
		assert_int_equal(strlen(codes[i]), TSMS_BACKUP_SHOWN - 1);
		for (int j = 0; j < TSMS_BACKUP_SHOWN - 1; j++)
			assert_true(j == 4 ? codes[i][j] == '-'
			                   : strchr(ALPHABET, codes[i][j]) != NULL);
		/* typed as shown, it is the code */
		plain(codes[i], normal);
		expect_normal(codes[i], normal);
		for (unsigned k = 0; k < i; k++)
			assert_string_not_equal(codes[i], codes[k]);
	}
}

static void test_generate_counts(void **state)
{
	const struct world *w = world_of(state);
	char codes[TSMS_BACKUP_COUNT_MAX][TSMS_BACKUP_SHOWN];
	static const unsigned counts[] = { 1, 2, 10, 19, 20 };
	bool seen[256] = { false };
	unsigned distinct = 0;
	struct user_line u;

	assert_int_equal(TSMS_BACKUP_COUNT_DEFAULT, 10);
	assert_int_equal(TSMS_BACKUP_COUNT_MAX, 20);
	/* the bounds and their neighbours (each set costs its Argon2id hashes, also under
	 * valgrind) */
	for (size_t c = 0; c < sizeof(counts) / sizeof(counts[0]); c++) {
		unsigned count = counts[c];

		memset(codes, 'Z', sizeof(codes));
		assert_int_equal(gen(w, "alice", count, codes), c > 0 ? counts[c - 1] : 0);
		assert_code_set(codes, count);
		for (unsigned i = count; i < TSMS_BACKUP_COUNT_MAX; i++)
			assert_int_equal(codes[i][0], 'Z'); /* nothing past count */
		file_user(w, "alice", &u);
		assert_int_equal(u.lines, 1);
		assert_int_equal(u.n, count);
		assert_int_equal(left_of(w, "alice"), count);
		for (unsigned i = 0; i < count; i++) {
			for (const char *p = codes[i]; *p != '\0'; p++) {
				distinct += *p != '-' && !seen[(unsigned char)*p];
				seen[(unsigned char)*p] = true;
			}
		}
	}
	/* 416 symbols drawn from 32: fewer than 28 of them seen has a chance of about
	 * 1e-25, a generator that draws from part of the alphabet shows at once */
	assert_true(distinct >= 28);
	assert_private(w->file);
	assert_no_leftovers(w);
}

static void test_generate_refuses_bad_counts(void **state)
{
	const struct world *w = world_of(state);
	static const unsigned bad[] = { 0, TSMS_BACKUP_COUNT_MAX + 1, 1000, (unsigned)-1 };
	char codes[TSMS_BACKUP_COUNT_MAX + 1][TSMS_BACKUP_SHOWN];

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		char err[TSMS_CONFIG_ERR_MAX] = "";
		unsigned replaced = 0;

		/* codes has room for MAX + 1 only: the count is refused before any is written */
		assert_int_not_equal(
			tsms_backup_generate(&w->cfg, "alice", bad[i], codes, &replaced, err),
			TSMS_OK);
		assert_file_is(w->file, NULL);
	}
}

static void test_generate_refuses_bad_user_names(void **state)
{
	const struct world *w = world_of(state);
	static const char *const bad[] = { "", "a b", "#alice", "a\tb", "a\nb", "a\x7f" };
	static const char before[] = "# keep\nbob "
				     "$argon2id$v=19$m=4096,t=2,p=1$6WLP8ff4vHyO7iA/GFF8HA$dGgK2Z/"
				     "335/lpxMIO1Cq8ysokJLkArWzdsa5kVasok4\n";
	char codes[TSMS_BACKUP_COUNT_MAX][TSMS_BACKUP_SHOWN];

	write_text(w->file, before, 0600);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		char err[TSMS_CONFIG_ERR_MAX] = "";
		unsigned replaced = 0;

		assert_int_not_equal(
			tsms_backup_generate(&w->cfg, bad[i], 3, codes, &replaced, err), TSMS_OK);
		assert_no_control(err);
		assert_file_is(w->file, before);
	}
}

/* Each hash on user's line verifies exactly one of the codes (in the form
 * shown or typed), and no code is in the file in any form. */
static void assert_hashes_match_codes(const struct world *w, const char *user,
                                      char codes[][TSMS_BACKUP_SHOWN], unsigned count)
{
	struct user_line u;
	char *text = read_text(w->file);

	parse_user(text, user, &u);
	assert_int_equal(u.n, count);
	for (unsigned i = 0; i < count; i++) {
		char normal[TSMS_BACKUP_SYMBOLS + 1], upper[TSMS_BACKUP_SHOWN];

		plain(codes[i], normal);
		for (size_t j = 0; j < sizeof(upper); j++)
			upper[j] = (char)toupper((unsigned char)codes[i][j]);
		assert_not_contains(text, codes[i]);
		assert_not_contains(text, normal);
		assert_not_contains(text, upper);
	}
	for (unsigned h = 0; h < u.n; h++) {
		unsigned hits = 0;

		for (unsigned i = 0; i < count; i++) {
			char normal[TSMS_BACKUP_SYMBOLS + 1];

			plain(codes[i], normal);
			hits += tsms_secret_verify(u.hashes[h], normal) ||
			        tsms_secret_verify(u.hashes[h], codes[i]);
		}
		assert_int_equal(hits, 1);
	}
	free(text);
}

static void test_generate_file_format(void **state)
{
	const struct world *w = world_of(state);
	static const char head[] = "# backup codes: USER HASH ...\n"
				   "\n"
				   "bob "
				   "$argon2id$v=19$m=4096,t=2,p=1$wT7L+3/d58Ho84bT/7/"
				   "tJA$AxShmrRsM64eOXRQgO3dQAHT7vDDCjeGFchdIEKegYE\n"
				   "  # indented comment\n"
				   "\t\n";
	static const char tail[] = "carol "
				   "$argon2id$v=19$m=4096,t=2,p=1$6WLP8ff4vHyO7iA/GFF8HA$dGgK2Z/"
				   "335/lpxMIO1Cq8ysokJLkArWzdsa5kVasok4"; /* no \n */
	char codes[TSMS_BACKUP_COUNT_MAX][TSMS_BACKUP_SHOWN];
	char text[1024], *after;
	struct user_line u;
	size_t head_len = sizeof(head) - 1;

	snprintf(text, sizeof(text), "%s%s", head, tail);
	write_text(w->file, text, 0600);
	assert_int_equal(gen(w, "alice", 4, codes), 0);
	assert_code_set(codes, 4);
	assert_hashes_match_codes(w, "alice", codes, 4);

	/* the other lines as they were, alice's line appended */
	after = read_text(w->file);
	assert_int_equal(strncmp(after, text, strlen(text)), 0);
	assert_int_equal(after[strlen(text)], '\n');
	assert_int_equal(strncmp(after + strlen(text) + 1, "alice $argon2id$", 16), 0);
	assert_int_equal(after[strlen(after) - 1], '\n');
	free(after);
	assert_private(w->file);
	assert_private(w->lock);

	/* a new set replaces alice's line in place: still one line, the rest kept */
	assert_int_equal(gen(w, "alice", 2, codes), 4);
	assert_hashes_match_codes(w, "alice", codes, 2);
	after = read_text(w->file);
	assert_int_equal(strncmp(after, head, head_len), 0);
	file_user(w, "alice", &u);
	assert_int_equal(u.lines, 1);
	file_user(w, "bob", &u);
	assert_int_equal(u.lines, 1);
	assert_int_equal(u.n, 1);
	free(after);
	assert_private(w->file);
	assert_no_leftovers(w);
}

static void test_generate_replaces_the_set(void **state)
{
	const struct world *w = world_of(state);
	char old[TSMS_BACKUP_COUNT_MAX][TSMS_BACKUP_SHOWN];
	char codes[TSMS_BACKUP_COUNT_MAX][TSMS_BACKUP_SHOWN];
	char id[TSMS_DIGEST_HEX];
	struct user_line before, after;
	unsigned left;

	assert_int_equal(gen(w, "alice", 5, old), 0);
	assert_int_equal(gen(w, "bob", 3, codes), 0);
	file_user(w, "alice", &before);
	assert_int_equal(gen(w, "alice", 5, codes), 5);
	file_user(w, "alice", &after);
	assert_int_equal(after.n, 5);
	for (unsigned i = 0; i < before.n; i++) {
		for (unsigned j = 0; j < after.n; j++)
			assert_string_not_equal(before.hashes[i], after.hashes[j]);
	}
	assert_int_equal(left_of(w, "alice"), 5);
	assert_int_equal(left_of(w, "bob"), 3);
	/* the old codes no longer work; a used one is not counted as replaced */
	for (unsigned i = 0; i < 5; i++)
		assert_false(use(w, "alice", old[i], id, &left));
	assert_int_equal(left_of(w, "alice"), 5);
	assert_true(use(w, "alice", codes[0], id, &left));
	assert_int_equal(left, 4);
	assert_int_equal(gen(w, "alice", 1, codes), 4);
	assert_int_equal(left_of(w, "alice"), 1);
	assert_int_equal(left_of(w, "bob"), 3);
}

static void test_generate_creates_a_private_file(void **state)
{
	const struct world *w = world_of(state);
	char codes[TSMS_BACKUP_COUNT_MAX][TSMS_BACKUP_SHOWN];
	mode_t old = umask(0);

	assert_int_equal(gen(w, "alice", 1, codes), 0);
	umask(old);
	assert_private(w->file);
	assert_private(w->lock);
	assert_no_leftovers(w);
}

/* ------------------------------------------------------------ count, revoke, each */

static void test_count(void **state)
{
	const struct world *w = world_of(state);
	char codes[TSMS_BACKUP_COUNT_MAX][TSMS_BACKUP_SHOWN];

	/* no file yet: nobody has codes, and counting creates nothing */
	assert_int_equal(left_of(w, "alice"), 0);
	assert_file_is(w->file, NULL);
	assert_int_equal(gen(w, "alice", 3, codes), 0);
	assert_int_equal(gen(w, "alice2", 7, codes), 0);
	assert_int_equal(left_of(w, "alice"), 3);
	assert_int_equal(left_of(w, "alice2"), 7);
	assert_int_equal(left_of(w, "alic"), 0);
	assert_int_equal(left_of(w, "bob"), 0);
	assert_int_equal(left_of(w, "#alice"), 0);
}

static void test_revoke(void **state)
{
	const struct world *w = world_of(state);
	char codes[TSMS_BACKUP_COUNT_MAX][TSMS_BACKUP_SHOWN];
	char err[TSMS_CONFIG_ERR_MAX] = "", *bob_file, *text;
	char id[TSMS_DIGEST_HEX];
	unsigned removed = 12345, left;

	write_text(w->file, "# head\n", 0600);
	assert_int_equal(gen(w, "alice", 5, codes), 0);
	assert_int_equal(gen(w, "bob", 2, codes + 10), 0);
	assert_int_equal(tsms_backup_revoke(&w->cfg, "alice", &removed, err), TSMS_OK);
	assert_int_equal(removed, 5);
	assert_int_equal(left_of(w, "alice"), 0);
	assert_int_equal(left_of(w, "bob"), 2);
	assert_false(use(w, "alice", codes[0], id, &left));
	/* alice's line is gone, the rest kept */
	text = read_text(w->file);
	assert_int_equal(strncmp(text, "# head\nbob $argon2id$", 21), 0);
	assert_not_contains(text, "alice");
	free(text);
	assert_private(w->file);

	/* again: nothing to revoke, nothing changes */
	bob_file = read_text(w->file);
	removed = 12345;
	assert_int_equal(tsms_backup_revoke(&w->cfg, "alice", &removed, err), TSMS_OK);
	assert_int_equal(removed, 0);
	assert_file_is(w->file, bob_file);
	free(bob_file);
	/* bob's codes still work */
	assert_true(use(w, "bob", codes[11], id, &left));
	assert_int_equal(left, 1);
	assert_no_leftovers(w);
}

static void test_revoke_without_a_file(void **state)
{
	const struct world *w = world_of(state);
	char err[TSMS_CONFIG_ERR_MAX] = "";
	unsigned removed = 12345;

	assert_int_equal(tsms_backup_revoke(&w->cfg, "alice", &removed, err), TSMS_OK);
	assert_int_equal(removed, 0);
	assert_file_is(w->file, NULL);
}

struct seen {
	unsigned n;
	char users[8][32];
	unsigned left[8];
};

static void collect(void *ctx, const char *user, unsigned left)
{
	struct seen *s = ctx;

	assert_true(s->n < 8);
	snprintf(s->users[s->n], sizeof(s->users[0]), "%s", user);
	s->left[s->n++] = left;
}

static void test_each(void **state)
{
	const struct world *w = world_of(state);
	char codes[TSMS_BACKUP_COUNT_MAX][TSMS_BACKUP_SHOWN];
	char err[TSMS_CONFIG_ERR_MAX] = "";
	struct seen s = { 0 };

	/* no file: no user */
	assert_int_equal(tsms_backup_each(&w->cfg, collect, &s, err), TSMS_OK);
	assert_int_equal(s.n, 0);
	write_text(w->file, "# only a comment\n\n", 0600);
	assert_int_equal(tsms_backup_each(&w->cfg, collect, &s, err), TSMS_OK);
	assert_int_equal(s.n, 0);

	/* in file order, not the order of the names */
	assert_int_equal(gen(w, "dave", 2, codes), 0);
	assert_int_equal(gen(w, "alice", 1, codes), 0);
	assert_int_equal(gen(w, "carol", 5, codes), 0);
	assert_int_equal(gen(w, "alice", 3, codes), 1); /* in place */
	assert_int_equal(tsms_backup_each(&w->cfg, collect, &s, err), TSMS_OK);
	assert_int_equal(s.n, 3);
	assert_string_equal(s.users[0], "dave");
	assert_int_equal(s.left[0], 2);
	assert_string_equal(s.users[1], "alice");
	assert_int_equal(s.left[1], 3);
	assert_string_equal(s.users[2], "carol");
	assert_int_equal(s.left[2], 5);
}

/* ------------------------------------------------------------ use */

static void test_use_removes_exactly_that_code(void **state)
{
	const struct world *w = world_of(state);
	char codes[TSMS_BACKUP_COUNT_MAX][TSMS_BACKUP_SHOWN], bob[1][TSMS_BACKUP_SHOWN];
	char id[TSMS_DIGEST_HEX], again[TSMS_DIGEST_HEX];
	struct user_line before, after;
	char *bob_before, *bob_after;
	unsigned left;

	write_text(w->file, "# head\n", 0600);
	assert_int_equal(gen(w, "alice", 5, codes), 0);
	assert_int_equal(gen(w, "bob", 1, bob), 0);
	file_user(w, "alice", &before);
	bob_before = read_text(w->file);
	*strstr(bob_before, "alice ") = '\0';

	assert_true(use(w, "alice", codes[2], id, &left));
	assert_int_equal(left, 4);
	assert_id(id);
	/* the other four hashes as they were, in their order */
	file_user(w, "alice", &after);
	assert_int_equal(after.lines, 1);
	assert_int_equal(after.n, 4);
	for (unsigned i = 0, j = 0; i < before.n; i++) {
		if (i == 2)
			continue;
		assert_string_equal(after.hashes[j++], before.hashes[i]);
	}
	bob_after = read_text(w->file);
	*strstr(bob_after, "alice ") = '\0';
	assert_string_equal(bob_after, bob_before); /* bob's line and the comment kept */
	assert_int_equal(left_of(w, "alice"), 4);
	assert_private(w->file);
	assert_no_leftovers(w);

	/* the same code twice: refused, in any form */
	assert_false(use(w, "alice", codes[2], again, &left));
	{
		char upper[TSMS_BACKUP_SYMBOLS + 3] = " ";
		char normal[TSMS_BACKUP_SYMBOLS + 1];

		plain(codes[2], normal);
		for (int i = 0; i < TSMS_BACKUP_SYMBOLS; i++)
			upper[i + 1] = (char)toupper((unsigned char)normal[i]);
		upper[TSMS_BACKUP_SYMBOLS + 1] = '\t';
		assert_false(use(w, "alice", upper, again, &left));
		/* the form a person types works for another code */
		plain(codes[4], normal);
		for (int i = 0; i < TSMS_BACKUP_SYMBOLS; i++)
			upper[i + 1] = (char)toupper((unsigned char)normal[i]);
		assert_true(use(w, "alice", upper, again, &left));
		assert_int_equal(left, 3);
		assert_id(again);
		assert_string_not_equal(again, id);
	}
	assert_int_equal(left_of(w, "alice"), 3);
	free(bob_before);
	free(bob_after);
}

static void test_use_wrong_code_changes_nothing(void **state)
{
	const struct world *w = world_of(state);
	char codes[TSMS_BACKUP_COUNT_MAX][TSMS_BACKUP_SHOWN], bob[2][TSMS_BACKUP_SHOWN];
	static const char *const wrong[] = { "2222-2222", "zzzzzzzz",   "123456",           "",
		                             "   ",       "k7mq-3xfa-", "not a code at all" };
	char id[TSMS_DIGEST_HEX], *before;
	unsigned left;
	ino_t ino;

	assert_int_equal(gen(w, "alice", 3, codes), 0);
	assert_int_equal(gen(w, "bob", 2, bob), 0);
	before = read_text(w->file);
	ino = inode_of(w->file);
	for (size_t i = 0; i < sizeof(wrong) / sizeof(wrong[0]); i++) {
		assert_false(use(w, "alice", wrong[i], id, &left));
		assert_file_is(w->file, before);
	}
	/* one symbol off */
	{
		char near[TSMS_BACKUP_SHOWN];

		memcpy(near, codes[0], sizeof(near));
		near[8] = near[8] == 'z' ? 'y' : 'z';
		assert_false(use(w, "alice", near, id, &left));
	}
	/* another user's code, and a user without codes */
	assert_false(use(w, "alice", bob[0], id, &left));
	assert_false(use(w, "carol", codes[0], id, &left));
	assert_file_is(w->file, before);
	assert_int_equal(inode_of(w->file), ino); /* not even rewritten */
	assert_int_equal(left_of(w, "alice"), 3);
	assert_int_equal(left_of(w, "bob"), 2);
	assert_true(use(w, "bob", bob[0], id, &left));
	assert_int_equal(left, 1);
	free(before);
}

static void test_use_without_a_file(void **state)
{
	const struct world *w = world_of(state);
	char id[TSMS_DIGEST_HEX];
	unsigned left;

	assert_false(use(w, "alice", "k7mq-3xfa", id, &left));
	assert_file_is(w->file, NULL);
}

static void test_use_every_code_once(void **state)
{
	const struct world *w = world_of(state);
	char codes[TSMS_BACKUP_COUNT_MAX][TSMS_BACKUP_SHOWN];
	char ids[4][TSMS_DIGEST_HEX];
	struct user_line u;
	unsigned left;

	assert_int_equal(gen(w, "alice", 4, codes), 0);
	for (unsigned i = 0; i < 4; i++) {
		assert_true(use(w, "alice", codes[3 - i], ids[i], &left));
		assert_int_equal(left, 3 - i);
		assert_id(ids[i]);
		for (unsigned k = 0; k < i; k++)
			assert_string_not_equal(ids[i], ids[k]);
	}
	assert_int_equal(left_of(w, "alice"), 0);
	file_user(w, "alice", &u);
	assert_int_equal(u.n, 0);
	for (unsigned i = 0; i < 4; i++)
		assert_false(use(w, "alice", codes[i], ids[0], &left));
	assert_no_leftovers(w);
}

/* The id names the code the same way on every host with a copy of the file. */
static void test_use_id_same_on_a_copy(void **state)
{
	const struct world *w = world_of(state);
	char codes[TSMS_BACKUP_COUNT_MAX][TSMS_BACKUP_SHOWN];
	char copy_path[128], *text;
	char a[TSMS_DIGEST_HEX], b[TSMS_DIGEST_HEX], other[TSMS_DIGEST_HEX];
	struct world copy;
	unsigned left;

	assert_int_equal(gen(w, "alice", 3, codes), 0);
	text = read_text(w->file);
	snprintf(copy_path, sizeof(copy_path), "%s/keep-copy", w->root);
	write_text(copy_path, text, 0600);
	free(text);
	copy = *w;
	copy.cfg.backup_codes_file = copy_path;

	assert_true(use(w, "alice", codes[1], a, &left));
	assert_true(use(&copy, "alice", codes[1], b, &left));
	assert_id(a);
	assert_string_equal(a, b);
	assert_true(use(&copy, "alice", codes[0], other, &left));
	assert_string_not_equal(other, a);
	/* the id reveals nothing of the code */
	{
		char normal[TSMS_BACKUP_SYMBOLS + 1];

		plain(codes[1], normal);
		assert_not_contains(a, normal);
	}
	/* a new set of the same size: new codes, new ids */
	assert_int_equal(gen(w, "alice", 3, codes), 2);
	assert_true(use(w, "alice", codes[1], b, &left));
	assert_string_not_equal(a, b);
	unlink(copy_path);
	snprintf(copy_path, sizeof(copy_path), "%s/keep-copy.lock", w->root);
	unlink(copy_path);
}

/* children run fn(w, i) once the parent lets them go, and exit with its result */
static void run_children(const struct world *w, unsigned n,
                         int (*fn)(const struct world *, unsigned), int results[])
{
	int go[2];
	pid_t pids[32];

	assert_true(n <= 32);
	assert_int_equal(pipe(go), 0);
	for (unsigned i = 0; i < n; i++) {
		pids[i] = fork();
		assert_true(pids[i] >= 0);
		if (pids[i] == 0) {
			char c;

			close(go[1]);
			(void)!read(go[0], &c, 1); /* returns at EOF: everyone starts at once */
			_exit(fn(w, i));
		}
	}
	close(go[0]);
	close(go[1]);
	for (unsigned i = 0; i < n; i++) {
		int status;

		assert_int_equal(waitpid(pids[i], &status, 0), pids[i]);
		assert_true(WIFEXITED(status));
		results[i] = WEXITSTATUS(status);
	}
}

static char race_codes[TSMS_BACKUP_COUNT_MAX][TSMS_BACKUP_SHOWN];

/* 10: used, 11: not used, 12: an error */
static int use_child(const struct world *w, const char *code)
{
	char err[TSMS_CONFIG_ERR_MAX], id[TSMS_DIGEST_HEX];
	unsigned left;
	bool used = false;

	if (tsms_backup_use(&w->cfg, "alice", code, &used, id, &left, err) != TSMS_OK) {
		fprintf(stderr, "use: %s\n", err);
		return 12;
	}
	return used ? 10 : 11;
}

static int use_same_code(const struct world *w, unsigned i)
{
	(void)i;
	return use_child(w, race_codes[0]);
}

static int use_own_code(const struct world *w, unsigned i)
{
	return use_child(w, race_codes[i]);
}

static void test_use_races_with_the_same_code(void **state)
{
	const struct world *w = world_of(state);
	int results[8];
	unsigned used = 0;

	assert_int_equal(gen(w, "alice", 3, race_codes), 0);
	run_children(w, 8, use_same_code, results);
	for (unsigned i = 0; i < 8; i++) {
		assert_true(results[i] == 10 || results[i] == 11);
		used += results[i] == 10;
	}
	assert_int_equal(used, 1);
	assert_int_equal(left_of(w, "alice"), 2);
	assert_no_leftovers(w);
}

static void test_use_races_with_different_codes(void **state)
{
	const struct world *w = world_of(state);
	int results[6];

	assert_int_equal(gen(w, "alice", 6, race_codes), 0);
	run_children(w, 6, use_own_code, results);
	for (unsigned i = 0; i < 6; i++)
		assert_int_equal(results[i], 10);
	/* no removal lost to another */
	assert_int_equal(left_of(w, "alice"), 0);
	assert_no_leftovers(w);
}

/* Waits up to ms for pid; true when it exited (status in *status). */
static bool exited_within(pid_t pid, int ms, int *status)
{
	for (int t = 0; t < ms; t += 10) {
		pid_t r = waitpid(pid, status, WNOHANG);

		assert_true(r >= 0);
		if (r == pid)
			return true;
		usleep(10000);
	}
	return false;
}

/* Makes alice's two codes, takes the file's lock and starts a child that uses
 * the second code with child (its exit status is child's); *before is the file. */
static pid_t use_while_locked(const struct world *w,
                              int (*child)(const struct world *, const char *), char **before,
                              int *lock)
{
	pid_t pid;

	assert_int_equal(gen(w, "alice", 2, race_codes), 0);
	*before = read_text(w->file);
	*lock = open(w->lock, O_RDWR | O_CLOEXEC);
	assert_true(*lock >= 0);
	assert_int_equal(flock(*lock, LOCK_EX), 0);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0)
		_exit(child(w, race_codes[1]));
	return pid;
}

static void test_use_waits_for_the_lock(void **state)
{
	const struct world *w = world_of(state);
	char *before;
	int lock, status;
	pid_t pid = use_while_locked(w, use_child, &before, &lock);

	assert_false(exited_within(pid, 300, &status));
	assert_file_is(w->file, before); /* nothing removed while another holds the lock */
	assert_int_equal(flock(lock, LOCK_UN), 0);
	close(lock);
	assert_true(exited_within(pid, 10000, &status));
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 10);
	assert_int_equal(left_of(w, "alice"), 1);
	free(before);
}

/* 13: refused because the lock stayed held, with the problem; 14: anything else */
static int use_gives_up_child(const struct world *w, const char *code)
{
	char err[TSMS_CONFIG_ERR_MAX] = "", id[TSMS_DIGEST_HEX];
	bool used = false;
	unsigned left;
	enum tsms_err e = tsms_backup_use(&w->cfg, "alice", code, &used, id, &left, err);

	return e == TSMS_ERR_CONFIG && !used && strstr(err, "backupCodesFile") != NULL &&
	                       strstr(err, w->lock) != NULL &&
	                       strstr(err, "still locked after 5 s") != NULL
	               ? 13
	               : 14;
}

/* A holder of the lock that never lets go (a stopped twilio-sms-otp, a stuck
 * process) makes a login give up after TSMS_LOCK_WAIT_MS with the problem
 * instead of waiting for ever; the file is left as it was. */
static void test_use_gives_up_on_a_lock_held_too_long(void **state)
{
	const struct world *w = world_of(state);
	char *before;
	int lock, status;
	pid_t pid = use_while_locked(w, use_gives_up_child, &before, &lock);

	assert_false(exited_within(pid, TSMS_LOCK_WAIT_MS - 1000, &status)); /* it waits */
	if (!exited_within(pid, 5000, &status)) {                            /* then gives up */
		kill(pid, SIGKILL);
		waitpid(pid, &status, 0);
		fail_msg("a login still waits for the lock after %d ms", TSMS_LOCK_WAIT_MS + 4000);
	}
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 13);
	assert_file_is(w->file, before);
	close(lock);
	assert_int_equal(left_of(w, "alice"), 2);
	free(before);
}

/* A caller's RLIMIT_FSIZE smaller than the new file (a setuid host's caller sets
 * it): the rewrite fails closed with the problem instead of SIGXFSZ killing the
 * process, the file stays as it was, no temp file is left beside it. */
static void test_rewrite_under_a_file_size_limit_fails_closed(void **state)
{
	const struct world *w = world_of(state);
	char *before;
	int status;
	pid_t pid;

	assert_int_equal(gen(w, "alice", 2, race_codes), 0);
	before = read_text(w->file);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		const struct rlimit tiny = { 64, 64 };
		char codes[TSMS_BACKUP_COUNT_MAX][TSMS_BACKUP_SHOWN];
		char err[TSMS_CONFIG_ERR_MAX] = "";
		sigset_t pending;
		unsigned n;
		enum tsms_err e;

		free(before); /* the parent's: a child that exits leaks nothing (valgrind) */
		if (setrlimit(RLIMIT_FSIZE, &tiny) != 0)
			_exit(2);
		e = tsms_backup_generate(&w->cfg, "alice", 5, codes, &n, err);
		sigpending(&pending);
		_exit(e == TSMS_ERR_CONFIG && strstr(err, "File too large") != NULL &&
		                      !sigismember(&pending, SIGXFSZ)
		              ? 0
		              : 3);
	}
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_false(WIFSIGNALED(status)); /* not killed by SIGXFSZ */
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
	assert_file_is(w->file, before);
	assert_no_leftovers(w);
	free(before);
}

/* ------------------------------------------------------------ unusable files */

/* Every backup function refuses the file with an error that names
 * backupCodesFile, the path and needle, and leaves it as it was. */
static void expect_unusable(const struct world *w, const char *needle)
{
	char codes[TSMS_BACKUP_COUNT_MAX][TSMS_BACKUP_SHOWN];
	char err[TSMS_CONFIG_ERR_MAX], id[TSMS_DIGEST_HEX];
	struct seen s = { 0 };
	struct stat before, after;
	unsigned n;
	bool used = false;

	assert_int_equal(lstat(w->file, &before), 0);
	strcpy(err, "");
	assert_int_equal(tsms_backup_count(&w->cfg, "alice", &n, err), TSMS_ERR_CONFIG);
	assert_err(err, "backupCodesFile", needle);
	assert_contains(err, w->file);
	strcpy(err, "");
	assert_int_equal(tsms_backup_generate(&w->cfg, "alice", 2, codes, &n, err),
	                 TSMS_ERR_CONFIG);
	assert_err(err, "backupCodesFile", needle);
	strcpy(err, "");
	assert_int_equal(tsms_backup_revoke(&w->cfg, "alice", &n, err), TSMS_ERR_CONFIG);
	assert_err(err, "backupCodesFile", needle);
	strcpy(err, "");
	assert_int_equal(tsms_backup_use(&w->cfg, "alice", race_codes[0], &used, id, &n, err),
	                 TSMS_ERR_CONFIG);
	assert_false(used);
	assert_err(err, "backupCodesFile", needle);
	strcpy(err, "");
	assert_int_equal(tsms_backup_each(&w->cfg, collect, &s, err), TSMS_ERR_CONFIG);
	assert_err(err, "backupCodesFile", needle);
	assert_int_equal(s.n, 0);
	assert_int_equal(lstat(w->file, &after), 0);
	assert_int_equal(after.st_ino, before.st_ino);
	assert_int_equal(after.st_mode, before.st_mode);
	assert_int_equal(after.st_uid, before.st_uid);
}

static void test_unusable_group_or_world_readable(void **state)
{
	const struct world *w = world_of(state);
	char *text;

	assert_int_equal(gen(w, "alice", 2, race_codes), 0);
	text = read_text(w->file);
	assert_int_equal(chmod(w->file, 0644), 0);
	expect_unusable(w, "0644");
	assert_int_equal(chmod(w->file, 0640), 0);
	expect_unusable(w, "0640");
	assert_int_equal(chmod(w->file, 0602), 0);
	expect_unusable(w, "0602");
	assert_file_is(w->file, text);
	free(text);
}

static void test_unusable_not_root_owned(void **state)
{
	const struct world *w = world_of(state);

	assert_int_equal(gen(w, "alice", 2, race_codes), 0);
	assert_int_equal(chown(w->file, NOBODY, 0), 0);
	expect_unusable(w, "not root");
	assert_int_equal(chown(w->file, 0, NOBODY), 0); /* a group is fine, its bits are not */
	assert_int_equal(left_of(w, "alice"), 2);
}

static void test_unusable_symlink(void **state)
{
	const struct world *w = world_of(state);
	char real[128], *text;

	snprintf(real, sizeof(real), "%s/keep-real", w->root);
	assert_int_equal(gen(w, "alice", 2, race_codes), 0);
	assert_int_equal(rename(w->file, real), 0);
	assert_int_equal(symlink(real, w->file), 0);
	text = read_text(real);
	expect_unusable(w, "symbolic link");
	assert_file_is(real, text);
	free(text);
}

static void test_unusable_dangling_symlink(void **state)
{
	const struct world *w = world_of(state);
	char real[128];
	struct stat st;

	snprintf(real, sizeof(real), "%s/keep-nothing", w->root);
	assert_int_equal(symlink(real, w->file), 0);
	expect_unusable(w, "symbolic link");
	assert_int_equal(lstat(w->file, &st), 0);
	assert_true(S_ISLNK(st.st_mode));
	assert_int_equal(lstat(real, &st), -1);
}

static void test_unusable_not_a_file(void **state)
{
	const struct world *w = world_of(state);

	assert_int_equal(mkdir(w->file, 0700), 0);
	expect_unusable(w, "regular file");
}

/* The module refuses a user on two lines (count, use, each); a new set or a
 * revoke repairs the file: the later lines go (lib/keyfile.h). */
static void test_user_on_two_lines(void **state)
{
	const struct world *w = world_of(state);
	char codes[TSMS_BACKUP_COUNT_MAX][TSMS_BACKUP_SHOWN], one[512], two[1200];
	char err[TSMS_CONFIG_ERR_MAX] = "", id[TSMS_DIGEST_HEX];
	static const char bob[] = "bob "
				  "$argon2id$v=19$m=4096,t=2,p=1$6WLP8ff4vHyO7iA/GFF8HA$dGgK2Z/335/"
				  "lpxMIO1Cq8ysokJLkArWzdsa5kVasok4\n";
	struct seen s = { 0 };
	struct user_line u;
	unsigned n = 0;
	bool used = false;
	char *text;

	assert_int_equal(gen(w, "alice", 2, codes), 0);
	text = read_text(w->file);
	snprintf(one, sizeof(one), "%s", text);
	free(text);
	snprintf(two, sizeof(two), "%s%s%s", one, bob, one);
	write_text(w->file, two, 0600);

	assert_int_equal(tsms_backup_use(&w->cfg, "alice", codes[0], &used, id, &n, err),
	                 TSMS_ERR_CONFIG);
	assert_false(used);
	assert_err(err, "\"alice\"", "fix: keep one");
	strcpy(err, "");
	assert_int_equal(tsms_backup_count(&w->cfg, "alice", &n, err), TSMS_ERR_CONFIG);
	assert_err(err, "\"alice\"", "fix: keep one");
	strcpy(err, "");
	assert_int_not_equal(tsms_backup_each(&w->cfg, collect, &s, err), TSMS_OK);
	assert_err(err, "backupCodesFile", "alice");
	assert_file_is(w->file, two);
	/* the other users are unaffected */
	assert_int_equal(left_of(w, "bob"), 1);

	/* a new set: one line, where the first was */
	assert_int_equal(gen(w, "alice", 3, codes), 2);
	file_user(w, "alice", &u);
	assert_int_equal(u.lines, 1);
	assert_int_equal(u.n, 3);
	text = read_text(w->file);
	assert_int_equal(strncmp(text, "alice $argon2id$", 16), 0);
	assert_string_equal(strchr(text, '\n') + 1, bob);
	free(text);
	assert_int_equal(left_of(w, "alice"), 3);
	/* a revoke: no line left */
	write_text(w->file, two, 0600);
	assert_int_equal(tsms_backup_revoke(&w->cfg, "alice", &n, err), TSMS_OK);
	assert_int_equal(n, 2);
	assert_file_is(w->file, bob);
	assert_no_leftovers(w);
}

/* ------------------------------------------------------------ keyfile */

/* What an edit callback saw and what it answers. */
struct edit {
	unsigned calls;
	bool saw_null;
	char saw[256];
	const char *answer; /* the new value, NULL: remove the line */
	enum tsms_err result;
};

static enum tsms_err edit_fn(void *ctx, const char *value, char **value_out,
                             char err[TSMS_CONFIG_ERR_MAX])
{
	struct edit *e = ctx;

	e->calls++;
	e->saw_null = value == NULL;
	snprintf(e->saw, sizeof(e->saw), "%s", value != NULL ? value : "");
	if (e->result != TSMS_OK) {
		snprintf(err, TSMS_CONFIG_ERR_MAX, "the callback says no");
		return e->result;
	}
	*value_out = NULL;
	if (e->answer != NULL) {
		*value_out = strdup(e->answer);
		assert_non_null(*value_out);
	}
	return TSMS_OK;
}

/* edits key with e, expecting TSMS_OK; returns *changed */
static bool edit(const struct world *w, const char *key, struct edit *e)
{
	char err[TSMS_CONFIG_ERR_MAX] = "";
	bool changed = false;
	enum tsms_err rc =
		tsms_keyfile_edit(w->file, WHAT, 1 << 20, key, edit_fn, e, &changed, err);

	if (rc != TSMS_OK) {
		print_error("edit %s: %s: %s\n", key, tsms_strerror(rc), err);
		fail();
	}
	return changed;
}

/* A hand-made line without hashes is no user with codes (backup-codes --list
 * lists users with codes): skipped, or refused as malformed. */
static void test_each_skips_a_line_without_codes(void **state)
{
	const struct world *w = world_of(state);
	char codes[TSMS_BACKUP_COUNT_MAX][TSMS_BACKUP_SHOWN];
	char err[TSMS_CONFIG_ERR_MAX] = "";
	struct seen s = { 0 };

	write_text(w->file, "alice\n", 0600);
	assert_int_equal(gen(w, "bob", 1, codes), 0);
	assert_int_equal(left_of(w, "alice"), 0);
	if (tsms_backup_each(&w->cfg, collect, &s, err) == TSMS_OK) {
		assert_int_equal(s.n, 1);
		assert_string_equal(s.users[0], "bob");
	} else {
		assert_err(err, "backupCodesFile", w->file);
	}
}

/* A token that only looks like a hash (the prefix, no valid Argon2id string) or one
 * with other limits (which would let a damaged file make logins allocate): the line is
 * refused, not counted, and no code is accepted. */
static void test_not_quite_a_hash_refused(void **state)
{
	static const char *const bad[] = {
		"$argon2id$v=19$not-a-hash",
		"$argon2id$v=19$m=65536,t=2,p=1$6WLP8ff4vHyO7iA/GFF8HA$"
		"dGgK2Z/335/lpxMIO1Cq8ysokJLkArWzdsa5kVasok4",
		"$argon2i$v=19$m=4096,t=2,p=1$6WLP8ff4vHyO7iA/GFF8HA$"
		"dGgK2Z/335/lpxMIO1Cq8ysokJLkArWzdsa5kVasok4",
	};
	const struct world *w = world_of(state);
	char codes[TSMS_BACKUP_COUNT_MAX][TSMS_BACKUP_SHOWN], line[1024], id[TSMS_DIGEST_HEX];
	char err[TSMS_CONFIG_ERR_MAX];
	unsigned n;
	bool used;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		char *text, *hashes;

		assert_int_equal(gen(w, "alice", 1, codes), 0);
		text = read_text(w->file);
		hashes = strchr(text, ' ');
		assert_non_null(hashes);
		hashes[strcspn(hashes, "\n")] = '\0';
		snprintf(line, sizeof(line), "alice %s%s\n", bad[i], hashes);
		free(text);
		write_text(w->file, line, 0600);
		err[0] = '\0';
		assert_int_equal(tsms_backup_count(&w->cfg, "alice", &n, err), TSMS_ERR_CONFIG);
		assert_err(err, "backupCodesFile", "not a list of backup code hashes");
		used = true;
		assert_int_equal(tsms_backup_use(&w->cfg, "alice", codes[0], &used, id, &n, err),
		                 TSMS_ERR_CONFIG);
		assert_false(used);
		assert_file_is(w->file, line);
		assert_false(tsms_secret_hash_valid(bad[i]));
		assert_false(tsms_secret_verify(bad[i], "k7mqxfa3"));
	}
}

static void test_keyfile_edit_missing_file_is_empty(void **state)
{
	const struct world *w = world_of(state);
	struct edit e = { .answer = "v1" };

	assert_true(edit(w, "k", &e));
	assert_int_equal(e.calls, 1);
	assert_true(e.saw_null);
	assert_file_is(w->file, "k v1\n");
	assert_private(w->file);
	assert_private(w->lock);
	assert_no_leftovers(w);
}

static void test_keyfile_edit_keeps_other_lines(void **state)
{
	const struct world *w = world_of(state);
	struct edit e = { .answer = "new value" };

	write_text(w->file,
	           "# comment\n\nfoo 1\nk   old  value \t\n  # indented\n\t\nkk 3\n#k 4\nbar 2",
	           0600);
	assert_true(edit(w, "k", &e));
	assert_false(e.saw_null);
	assert_string_equal(e.saw, "old  value"); /* blanks around it trimmed, inside kept */
	/* the last line gets its newline (as the users file's rewrites always did) */
	assert_file_is(w->file,
	               "# comment\n\nfoo 1\nk new value\n  # indented\n\t\nkk 3\n#k 4\nbar 2\n");
	/* a new key goes at the end */
	e = (struct edit){ .answer = "5" };
	assert_true(edit(w, "new", &e));
	assert_true(e.saw_null);
	assert_file_is(w->file,
	               "# comment\n\nfoo 1\nk new value\n  # indented\n\t\nkk 3\n#k 4\nbar 2\n"
	               "new 5\n");
	/* a leading blank or a tab after the key is still the key's line */
	write_text(w->file, "  k\tx\nother y\n", 0600);
	e = (struct edit){ .answer = "z" };
	assert_true(edit(w, "k", &e));
	assert_string_equal(e.saw, "x");
	assert_file_is(w->file, "k z\nother y\n");
	assert_private(w->file);
	assert_no_leftovers(w);
}

static void test_keyfile_edit_removes_a_line(void **state)
{
	const struct world *w = world_of(state);
	struct edit e = { .answer = NULL };

	write_text(w->file, "# c\na 1\nk 2\nb 3\n", 0600);
	assert_true(edit(w, "k", &e));
	assert_string_equal(e.saw, "2");
	assert_file_is(w->file, "# c\na 1\nb 3\n");
	/* the last line, without its newline */
	write_text(w->file, "a 1\nk 2", 0600);
	e = (struct edit){ .answer = NULL };
	assert_true(edit(w, "k", &e));
	assert_file_is(w->file, "a 1\n");
	assert_no_leftovers(w);
}

static void test_keyfile_edit_unchanged_is_not_rewritten(void **state)
{
	const struct world *w = world_of(state);
	struct edit e = { .answer = "2" };
	ino_t ino;

	write_text(w->file, "a 1\nk 2\n", 0600);
	ino = inode_of(w->file);
	assert_false(edit(w, "k", &e));
	assert_int_equal(e.calls, 1);
	/* removing a key no line has */
	e = (struct edit){ .answer = NULL };
	assert_false(edit(w, "absent", &e));
	assert_true(e.saw_null);
	assert_int_equal(inode_of(w->file), ino);
	assert_file_is(w->file, "a 1\nk 2\n");
	/* nor is a missing file created for nothing */
	assert_int_equal(unlink(w->file), 0);
	e = (struct edit){ .answer = NULL };
	assert_false(edit(w, "absent", &e));
	assert_file_is(w->file, NULL);
	/* a change is a new file renamed over the old one: a reader keeps the old */
	write_text(w->file, "a 1\nk 2\n", 0600);
	{
		int old = open(w->file, O_RDONLY);
		char buf[64] = "";

		assert_true(old >= 0);
		ino = inode_of(w->file);
		e = (struct edit){ .answer = "3" };
		assert_true(edit(w, "k", &e));
		assert_int_not_equal(inode_of(w->file), ino);
		assert_int_equal(read(old, buf, sizeof(buf) - 1), 8);
		assert_string_equal(buf, "a 1\nk 2\n");
		close(old);
	}
	assert_no_leftovers(w);
}

/* fn sees a key's first line; its later lines (the module refuses them) go. */
static void test_keyfile_edit_collapses_a_key_on_two_lines(void **state)
{
	const struct world *w = world_of(state);
	struct edit e = { .answer = "9" };

	write_text(w->file, "k 1\nj 2\n# k 0\nk 3\nk 4", 0600);
	assert_true(edit(w, "k", &e));
	assert_int_equal(e.calls, 1);
	assert_string_equal(e.saw, "1");
	assert_file_is(w->file, "k 9\nj 2\n# k 0\n");
	/* also when the first line's value stays */
	write_text(w->file, "k 1\nj 2\nk 3\n", 0600);
	e = (struct edit){ .answer = "1" };
	assert_true(edit(w, "k", &e));
	assert_file_is(w->file, "k 1\nj 2\n");
	/* and when the key goes */
	write_text(w->file, "k 1\nj 2\nk 3\n", 0600);
	e = (struct edit){ .answer = NULL };
	assert_true(edit(w, "k", &e));
	assert_file_is(w->file, "j 2\n");
	assert_no_leftovers(w);
}

static void test_keyfile_edit_callback_error_keeps_the_file(void **state)
{
	const struct world *w = world_of(state);
	static const char text[] = "a 1\nk 2\n";
	char err[TSMS_CONFIG_ERR_MAX] = "";
	struct edit e = { .answer = "3", .result = TSMS_ERR_CONFIG };
	bool changed = true;
	ino_t ino;

	write_text(w->file, text, 0600);
	ino = inode_of(w->file);
	assert_int_equal(tsms_keyfile_edit(w->file, WHAT, 1 << 20, "k", edit_fn, &e, &changed, err),
	                 TSMS_ERR_CONFIG);
	assert_string_equal(err, "the callback says no");
	assert_false(changed);
	assert_int_equal(e.calls, 1);
	assert_file_is(w->file, text);
	assert_int_equal(inode_of(w->file), ino);
	/* also when there is no file */
	assert_int_equal(unlink(w->file), 0);
	e = (struct edit){ .answer = "3", .result = TSMS_ERR_SYSTEM };
	assert_int_equal(tsms_keyfile_edit(w->file, WHAT, 1 << 20, "k", edit_fn, &e, &changed, err),
	                 TSMS_ERR_SYSTEM);
	assert_false(changed);
	assert_file_is(w->file, NULL);
	assert_no_leftovers(w);
}

static void expect_edit_refused(const struct world *w, long long max, const char *needle)
{
	char err[TSMS_CONFIG_ERR_MAX] = "";
	struct edit e = { .answer = "x" };
	bool changed = true;

	assert_int_equal(tsms_keyfile_edit(w->file, WHAT, max, "k", edit_fn, &e, &changed, err),
	                 TSMS_ERR_CONFIG);
	assert_err(err, WHAT, needle);
	assert_contains(err, w->file);
	assert_false(changed);
	assert_int_equal(e.calls, 0);
}

static void test_keyfile_edit_refuses_unsafe_files(void **state)
{
	const struct world *w = world_of(state);
	char real[128];
	struct stat st;

	write_text(w->file, "k 1\n", 0644);
	expect_edit_refused(w, 1 << 20, "0644");
	assert_int_equal(chmod(w->file, 0600), 0);
	assert_int_equal(chown(w->file, NOBODY, NOBODY), 0);
	expect_edit_refused(w, 1 << 20, "not root");
	assert_int_equal(chown(w->file, 0, 0), 0);
	expect_edit_refused(w, 3, "bytes");
	assert_file_is(w->file, "k 1\n");

	snprintf(real, sizeof(real), "%s/keep-real", w->root);
	assert_int_equal(rename(w->file, real), 0);
	assert_int_equal(symlink(real, w->file), 0);
	expect_edit_refused(w, 1 << 20, "symbolic link");
	assert_file_is(real, "k 1\n");
	assert_int_equal(lstat(w->file, &st), 0);
	assert_true(S_ISLNK(st.st_mode));
	assert_no_leftovers(w);
}

static void test_keyfile_edit_refuses_bad_keys(void **state)
{
	const struct world *w = world_of(state);
	static const char *const bad[] = { "", "a b", "#k", "a\tb", "a\nb", "a\rb" };

	write_text(w->file, "k 1\n", 0600);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		char err[TSMS_CONFIG_ERR_MAX] = "";
		struct edit e = { .answer = "x" };
		bool changed = true;

		assert_int_equal(tsms_keyfile_edit(w->file, WHAT, 1 << 20, bad[i], edit_fn, &e,
		                                   &changed, err),
		                 TSMS_ERR_CONFIG);
		assert_no_control(err);
		assert_false(changed);
		assert_int_equal(e.calls, 0);
	}
	assert_file_is(w->file, "k 1\n");
}

static int add_own_key(const struct world *w, unsigned i)
{
	char key[16], value[16], err[TSMS_CONFIG_ERR_MAX];
	struct edit e = { .answer = value };
	bool changed = false;

	snprintf(key, sizeof(key), "user%02u", i);
	snprintf(value, sizeof(value), "v%u", i);
	if (tsms_keyfile_edit(w->file, WHAT, 1 << 20, key, edit_fn, &e, &changed, err) != TSMS_OK)
		return 2;
	return changed ? 0 : 1;
}

static void test_keyfile_edits_are_serialised(void **state)
{
	const struct world *w = world_of(state);
	int results[24];
	char *text;

	write_text(w->file, "# head\n", 0600);
	run_children(w, 24, add_own_key, results);
	text = read_text(w->file);
	for (unsigned i = 0; i < 24; i++) {
		char line[32];

		assert_int_equal(results[i], 0);
		snprintf(line, sizeof(line), "\nuser%02u v%u\n", i, i);
		assert_contains(text, line);
	}
	assert_int_equal(strncmp(text, "# head\n", 7), 0);
	free(text);
	assert_private(w->file);
	assert_no_leftovers(w);
}

struct lines {
	char text[512];
};

static void each_fn(void *ctx, unsigned line, const char *key, const char *value)
{
	struct lines *l = ctx;
	size_t used = strlen(l->text);

	snprintf(l->text + used, sizeof(l->text) - used, "%u:%s=%s|", line, key, value);
}

static void test_keyfile_each(void **state)
{
	const struct world *w = world_of(state);
	char err[TSMS_CONFIG_ERR_MAX] = "";
	struct lines l = { "" };

	write_text(w->file, "# c\n\nb 2\n  a\t1 x \n\t# c2\nlast", 0600);
	assert_int_equal(tsms_keyfile_each(w->file, WHAT, 1 << 20, false, each_fn, &l, err),
	                 TSMS_OK);
	assert_string_equal(l.text, "3:b=2|4:a=1 x|6:last=|");
	/* missing: empty when missing_ok, else an error naming it */
	assert_int_equal(unlink(w->file), 0);
	l.text[0] = '\0';
	assert_int_equal(tsms_keyfile_each(w->file, WHAT, 1 << 20, true, each_fn, &l, err),
	                 TSMS_OK);
	assert_string_equal(l.text, "");
	assert_int_equal(tsms_keyfile_each(w->file, WHAT, 1 << 20, false, each_fn, &l, err),
	                 TSMS_ERR_CONFIG);
	assert_err(err, WHAT, w->file);
	/* the same checks as an edit */
	write_text(w->file, "k 1\n", 0640);
	assert_int_equal(tsms_keyfile_each(w->file, WHAT, 1 << 20, true, each_fn, &l, err),
	                 TSMS_ERR_CONFIG);
	assert_err(err, WHAT, "0640");
	assert_string_equal(l.text, "");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_normalize_accepts),
		cmocka_unit_test(test_normalize_refuses),
		cmocka_unit_test(test_secret_hash_and_verify),
		cmocka_unit_test(test_secret_verify_refuses_damaged_hashes),

		cmocka_unit_test_setup_teardown(test_generate_counts, setup, teardown),
		cmocka_unit_test_setup_teardown(test_generate_refuses_bad_counts, setup, teardown),
		cmocka_unit_test_setup_teardown(test_generate_refuses_bad_user_names, setup,
		                                teardown),
		cmocka_unit_test_setup_teardown(test_generate_file_format, setup, teardown),
		cmocka_unit_test_setup_teardown(test_generate_replaces_the_set, setup, teardown),
		cmocka_unit_test_setup_teardown(test_generate_creates_a_private_file, setup,
		                                teardown),
		cmocka_unit_test_setup_teardown(test_count, setup, teardown),
		cmocka_unit_test_setup_teardown(test_revoke, setup, teardown),
		cmocka_unit_test_setup_teardown(test_revoke_without_a_file, setup, teardown),
		cmocka_unit_test_setup_teardown(test_each, setup, teardown),
		cmocka_unit_test_setup_teardown(test_use_removes_exactly_that_code, setup,
		                                teardown),
		cmocka_unit_test_setup_teardown(test_use_wrong_code_changes_nothing, setup,
		                                teardown),
		cmocka_unit_test_setup_teardown(test_use_without_a_file, setup, teardown),
		cmocka_unit_test_setup_teardown(test_use_every_code_once, setup, teardown),
		cmocka_unit_test_setup_teardown(test_use_id_same_on_a_copy, setup, teardown),
		cmocka_unit_test_setup_teardown(test_use_races_with_the_same_code, setup, teardown),
		cmocka_unit_test_setup_teardown(test_use_races_with_different_codes, setup,
		                                teardown),
		cmocka_unit_test_setup_teardown(test_use_waits_for_the_lock, setup, teardown),
		cmocka_unit_test_setup_teardown(test_use_gives_up_on_a_lock_held_too_long, setup,
		                                teardown),
		cmocka_unit_test_setup_teardown(test_rewrite_under_a_file_size_limit_fails_closed,
		                                setup, teardown),
		cmocka_unit_test_setup_teardown(test_use_out_of_memory_is_no_wrong_code, setup,
		                                teardown),
		cmocka_unit_test_setup_teardown(test_unusable_group_or_world_readable, setup,
		                                teardown),
		cmocka_unit_test_setup_teardown(test_unusable_not_root_owned, setup, teardown),
		cmocka_unit_test_setup_teardown(test_unusable_symlink, setup, teardown),
		cmocka_unit_test_setup_teardown(test_unusable_dangling_symlink, setup, teardown),
		cmocka_unit_test_setup_teardown(test_unusable_not_a_file, setup, teardown),
		cmocka_unit_test_setup_teardown(test_user_on_two_lines, setup, teardown),
		cmocka_unit_test_setup_teardown(test_not_quite_a_hash_refused, setup, teardown),
		cmocka_unit_test_setup_teardown(test_each_skips_a_line_without_codes, setup,
		                                teardown),
		cmocka_unit_test_setup_teardown(test_keyfile_edit_missing_file_is_empty, setup,
		                                teardown),
		cmocka_unit_test_setup_teardown(test_keyfile_edit_keeps_other_lines, setup,
		                                teardown),
		cmocka_unit_test_setup_teardown(test_keyfile_edit_removes_a_line, setup, teardown),
		cmocka_unit_test_setup_teardown(test_keyfile_edit_unchanged_is_not_rewritten, setup,
		                                teardown),
		cmocka_unit_test_setup_teardown(test_keyfile_edit_collapses_a_key_on_two_lines,
		                                setup, teardown),
		cmocka_unit_test_setup_teardown(test_keyfile_edit_callback_error_keeps_the_file,
		                                setup, teardown),
		cmocka_unit_test_setup_teardown(test_keyfile_edit_refuses_unsafe_files, setup,
		                                teardown),
		cmocka_unit_test_setup_teardown(test_keyfile_edit_refuses_bad_keys, setup,
		                                teardown),
		cmocka_unit_test_setup_teardown(test_keyfile_edits_are_serialised, setup, teardown),
		cmocka_unit_test_setup_teardown(test_keyfile_each, setup, teardown),
	};

	return cmocka_run_group_tests(tests, group_setup, NULL);
}
