/* fuzz_backup.c - libFuzzer target: the backup codes file ("USER HASH ..." lines).
 * Input: the user name, a newline, the typed answer, a newline, then the file's
 * bytes (a part with no newline before it is empty). The bytes are written to
 * a file in a private temp directory, since the library reads the file by path
 * and an edit puts PATH.lock and a PATH.XXXXXX temp file beside it.
 *
 * Checked against a model of the file built here from the lines as
 * tsms_keyfile_split cuts them (whose cut is checked first): tsms_backup_each
 * lists the model's users with codes, or no one for a damaged file or a user on
 * two lines; tsms_backup_count reports the user's hashes as each() does;
 * tsms_backup_use accepts exactly the answers that are one of the real codes
 * below whose hash is on the user's line, and a used code leaves the count one
 * lower; tsms_backup_revoke and a plain tsms_keyfile_edit keep every other line
 * byte for byte and leave no temp file behind. tsms_backup_normalize agrees
 * with backup.h's rule for any text. Argon2id costs a few milliseconds a hash,
 * so use() runs only for files with at most MAX_VERIFY hashes. */
#include <dirent.h>
#include <fcntl.h>
#include <stdint.h>
#include <sys/stat.h>
#include <unistd.h>

#include "backup.h"
#include "fuzz.h"
#include "keyfile.h"

#define WHAT "backupCodesFile"
#define HASH_PREFIX "$argon2id$"
#define MAX_VERIFY 3

static const char symbols[] = "23456789abcdefghijkmnpqrstuvwxyz";

/* A token is a hash when libsodium reads it as an Argon2id string with the
 * module's limits (lib/otp.h), not only by its prefix. */
static bool whole_hash(const char *tok, size_t len)
{
	char hash[TSMS_HASH_MAX];

	memcpy(hash, tok, len);
	hash[len] = '\0';
	return tsms_secret_hash_valid(hash);
}

/* Made by `twilio-sms-otp backup-codes` on a scratch config (the same hashes are
 * in backup.dict and the seeds of seeds.sh): the only answers use() may accept. */
static const struct {
	const char *code; /* normalised */
	const char *hash;
} known[] = {
	{ "3h3aj4xn", "$argon2id$v=19$m=4096,t=2,p=1$wDlzHQkQloarz38wOxrCHg$"
	              "+qz6JaGa9/YV24Bb2Jibq1V5eXRoqjW1xb1UjzZQtpM" },
	{ "kefu52ka", "$argon2id$v=19$m=4096,t=2,p=1$r830KKJ6CKWxIM8fHcdZ5Q$"
	              "veMAHzGOu6k1A1Mw225W+8tl7Sve22w43xv4Yeeh05Q" },
	{ "fzrj95gx", "$argon2id$v=19$m=4096,t=2,p=1$VvHPIvgXdgwzg+7ic3h7RA$"
	              "B7QIzh6pWxoEnd4FIgzrtq6Zjp+B9gd6dsYJeMLTSyg" },
};

static char dir[4096];
static char path[4096 + 16];

/* ---- the file and its directory */

static void remove_dir(void)
{
	DIR *d = opendir(dir);
	struct dirent *ent;

	if (d == NULL)
		return;
	while ((ent = readdir(d)) != NULL) {
		if (strcmp(ent->d_name, ".") != 0 && strcmp(ent->d_name, "..") != 0)
			unlinkat(dirfd(d), ent->d_name, 0);
	}
	closedir(d);
	rmdir(dir);
}

/* Replaces the file's content with size bytes of data. The directory is made
 * once per process in $TMPDIR (smoke.sh points it at a directory it removes,
 * since libFuzzer's workers may end without running atexit); the file is owner
 * root when run as root and mode 0600, as the library demands. */
static void write_file(const char *data, size_t size)
{
	int fd;

	if (dir[0] == '\0') {
		const char *tmp = getenv("TMPDIR");

		snprintf(dir, sizeof(dir), "%s/tsms-fuzz-backup.XXXXXX",
		         tmp != NULL && tmp[0] == '/' ? tmp : "/tmp");
		FUZZ_CHECK(mkdtemp(dir) != NULL);
		snprintf(path, sizeof(path), "%s/codes", dir);
		atexit(remove_dir);
	}
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0600);
	FUZZ_CHECK(fd >= 0 && fchmod(fd, 0600) == 0);
	FUZZ_CHECK(size == 0 || write(fd, data, size) == (ssize_t)size);
	close(fd);
}

/* The file's content now (the caller frees it); *size its length. */
static char *read_file(size_t *size)
{
	struct stat st;
	char *buf;
	int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);

	FUZZ_CHECK(fd >= 0 && fstat(fd, &st) == 0);
	FUZZ_CHECK(st.st_uid == 0 && (st.st_mode & 07777) == 0600);
	buf = malloc((size_t)st.st_size + 1);
	FUZZ_CHECK(buf != NULL);
	FUZZ_CHECK(st.st_size == 0 || read(fd, buf, (size_t)st.st_size) == (ssize_t)st.st_size);
	close(fd);
	*size = (size_t)st.st_size;
	return buf;
}

/* After an edit: the file is exactly want[0, want_len), and the directory holds
 * the file and its lock file and nothing else (no PATH.XXXXXX left behind). */
static void check_file(const char *want, size_t want_len)
{
	size_t size;
	char *got = read_file(&size);
	DIR *d = opendir(dir);
	struct dirent *ent;

	FUZZ_CHECK(size == want_len && (size == 0 || memcmp(got, want, size) == 0));
	free(got);
	FUZZ_CHECK(d != NULL);
	while ((ent = readdir(d)) != NULL) {
		FUZZ_CHECK(strcmp(ent->d_name, ".") == 0 || strcmp(ent->d_name, "..") == 0 ||
		           strcmp(ent->d_name, "codes") == 0 ||
		           strcmp(ent->d_name, "codes.lock") == 0);
	}
	closedir(d);
}

/* ---- a model of the file */

static bool is_blank(char c)
{
	return c == ' ' || c == '\t' || c == '\r';
}

static bool all_blank(const char *p, const char *end)
{
	for (; p < end; p++) {
		if (!is_blank(*p))
			return false;
	}
	return true;
}

/* tsms_keyfile_split's cut of [p, end) is the one keyfile.h describes: blanks,
 * the key (no blank in it), blanks, the value (no blank at either end), blanks. */
static void check_split(const char *p, const char *end, const struct tsms_keyfile_line *l)
{
	const char *q = p;

	while (q < end && is_blank(*q))
		q++;
	if (l->blank) {
		FUZZ_CHECK(q == end || *q == '#');
		FUZZ_CHECK(l->key == NULL && l->key_end == NULL && l->value == NULL &&
		           l->value_end == NULL);
		return;
	}
	FUZZ_CHECK(q < end && *q != '#' && l->key == q);
	FUZZ_CHECK(l->key < l->key_end && l->key_end <= l->value && l->value <= l->value_end &&
	           l->value_end <= end);
	for (const char *k = l->key; k < l->key_end; k++)
		FUZZ_CHECK(!is_blank(*k));
	FUZZ_CHECK(l->key_end == end || is_blank(*l->key_end));
	FUZZ_CHECK(all_blank(l->key_end, l->value) && all_blank(l->value_end, end));
	FUZZ_CHECK(l->value == end || !is_blank(*l->value));
	FUZZ_CHECK(l->value == l->value_end || !is_blank(l->value_end[-1]));
}

/* The next hash of [*p, end) (runs without space or tab), or NULL. */
static const char *next_token(const char **p, const char *end, size_t *len)
{
	const char *s = *p, *e;

	while (s < end && (*s == ' ' || *s == '\t'))
		s++;
	if (s == end)
		return NULL;
	for (e = s; e < end && *e != ' ' && *e != '\t'; e++)
		;
	*len = (size_t)(e - s);
	*p = e;
	return s;
}

struct line {
	const char *p, *end; /* the line, without its newline */
	struct tsms_keyfile_line l;
	bool ok;         /* not blank, and its value a list of hashes */
	unsigned hashes; /* then how many */
};

struct model {
	const char *data;
	size_t size;
	struct line *lines;
	size_t n;
	bool nul;        /* a NUL byte: the library's strings end there, the model's do not */
	unsigned argon;  /* how often HASH_PREFIX occurs: a bound on the hashes use() checks */
	size_t user_len; /* the looked-up user's lines */
	unsigned user_lines;
	const struct line *user_line; /* the first of them */
};

static bool line_has_key(const struct line *ln, const char *key, size_t key_len)
{
	return !ln->l.blank && (size_t)(ln->l.key_end - ln->l.key) == key_len &&
	       memcmp(ln->l.key, key, key_len) == 0;
}

static void build_model(struct model *m, const char *data, size_t size, const char *user)
{
	size_t cap = 1;

	memset(m, 0, sizeof(*m));
	m->data = data;
	m->size = size;
	m->nul = memchr(data, '\0', size) != NULL;
	m->user_len = strlen(user);
	for (size_t i = 0; i < size; i++)
		cap += data[i] == '\n';
	m->lines = calloc(cap, sizeof(*m->lines));
	FUZZ_CHECK(m->lines != NULL);
	for (const char *p = data, *end = data + size; p < end;) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		struct line *ln = &m->lines[m->n++];
		const char *v, *tok;
		size_t len;

		ln->p = p;
		ln->end = nl != NULL ? nl : end;
		tsms_keyfile_split(ln->p, ln->end, &ln->l);
		check_split(ln->p, ln->end, &ln->l);
		p = nl != NULL ? nl + 1 : end;
		if (ln->l.blank)
			continue;
		ln->ok = true;
		v = ln->l.value;
		while ((tok = next_token(&v, ln->l.value_end, &len)) != NULL) {
			ln->ok = ln->ok && len < TSMS_HASH_MAX && len >= strlen(HASH_PREFIX) &&
			         memcmp(tok, HASH_PREFIX, strlen(HASH_PREFIX)) == 0 &&
			         whole_hash(tok, len);
			ln->hashes++;
		}
		if (!ln->ok)
			ln->hashes = 0;
		if (line_has_key(ln, user, m->user_len)) {
			if (m->user_lines++ == 0)
				m->user_line = ln;
		}
	}
	for (const char *p = data, *end = data + size; p < end; p++) {
		p = memmem(p, (size_t)(end - p), HASH_PREFIX, strlen(HASH_PREFIX));
		if (p == NULL)
			break;
		m->argon++;
	}
}

/* A growing buffer for an expected file. */
struct buf {
	char *s;
	size_t len, cap;
};

static void put(struct buf *b, const char *s, size_t n)
{
	if (b->len + n + 1 > b->cap) {
		b->cap = (b->cap + n + 1) * 2;
		b->s = realloc(b->s, b->cap);
		FUZZ_CHECK(b->s != NULL);
	}
	memcpy(b->s + b->len, s, n);
	b->len += n;
}

/* The file after an edit of user's line as keyfile.h describes it: every other
 * line as it was, with a newline; the user's first line replaced by "user
 * value" (none when value is NULL), the user's later lines dropped, and the
 * line appended when the user had none. */
static void expect_edit(const struct model *m, const char *user, const char *value, struct buf *b)
{
	bool placed = false;

	for (size_t i = 0; i < m->n; i++) {
		const struct line *ln = &m->lines[i];

		if (!line_has_key(ln, user, m->user_len)) {
			put(b, ln->p, (size_t)(ln->end - ln->p));
			put(b, "\n", 1);
		} else if (!placed && value != NULL) {
			put(b, user, m->user_len);
			put(b, " ", 1);
			put(b, value, strlen(value));
			put(b, "\n", 1);
		}
		placed = placed || line_has_key(ln, user, m->user_len);
	}
	if (!placed && value != NULL) {
		put(b, user, m->user_len);
		put(b, " ", 1);
		put(b, value, strlen(value));
		put(b, "\n", 1);
	}
}

/* ---- the rules of the headers, written out again */

/* keyfile.h: 1 to TSMS_KEYFILE_KEY_MAX bytes, no white space or control
 * characters, not starting with '#'. */
static bool valid_key(const char *key)
{
	size_t n = strlen(key);

	if (n == 0 || n > TSMS_KEYFILE_KEY_MAX || key[0] == '#')
		return false;
	for (size_t i = 0; i < n; i++) {
		if ((unsigned char)key[i] <= 0x20 || key[i] == 0x7f)
			return false;
	}
	return true;
}

static bool is_space(char c)
{
	return c != '\0' && strchr(" \t\n\r\v\f", c) != NULL;
}

/* backup.h: 8 symbols, capitals accepted, one hyphen optional after the
 * fourth, white space around ignored. */
static bool ref_normalize(const char *answer, char out[TSMS_BACKUP_SYMBOLS + 1])
{
	const char *s = answer, *e = answer + strlen(answer);
	size_t n = 0;

	while (s < e && is_space(*s))
		s++;
	while (e > s && is_space(e[-1]))
		e--;
	if (e - s == TSMS_BACKUP_SYMBOLS + 1 && s[TSMS_BACKUP_SYMBOLS / 2] != '-')
		return false;
	if (e - s != TSMS_BACKUP_SYMBOLS && e - s != TSMS_BACKUP_SYMBOLS + 1)
		return false;
	for (const char *p = s; p < e; p++) {
		char c = *p >= 'A' && *p <= 'Z' ? (char)(*p - 'A' + 'a') : *p;

		if (e - s == TSMS_BACKUP_SYMBOLS + 1 && p - s == TSMS_BACKUP_SYMBOLS / 2)
			continue;
		if (strchr(symbols, c) == NULL)
			return false;
		out[n++] = c;
	}
	out[n] = '\0';
	return true;
}

static void check_normalize(const char *answer, char code[TSMS_BACKUP_SYMBOLS + 1], bool *ok)
{
	struct {
		char out[TSMS_BACKUP_SYMBOLS + 1];
		char canary[16];
	} g;
	char want[TSMS_BACKUP_SYMBOLS + 1];
	bool want_ok = ref_normalize(answer, want);

	memset(&g, 'X', sizeof(g));
	*ok = tsms_backup_normalize(answer, g.out);
	FUZZ_CHECK(g.canary[0] == 'X');
	FUZZ_CHECK(*ok == want_ok);
	if (*ok) {
		FUZZ_CHECK(strlen(g.out) == TSMS_BACKUP_SYMBOLS &&
		           strspn(g.out, symbols) == TSMS_BACKUP_SYMBOLS);
		FUZZ_CHECK(strcmp(g.out, want) == 0);
		memcpy(code, g.out, sizeof(g.out));
	}
}

static void check_err(enum tsms_err e, const char err[TSMS_CONFIG_ERR_MAX])
{
	FUZZ_CHECK(e == TSMS_ERR_CONFIG);
	FUZZ_CHECK(fuzz_terminated(err, TSMS_CONFIG_ERR_MAX) && err[0] != '\0');
	FUZZ_CHECK(!fuzz_has_control(err));
}

/* ---- the readers */

struct seen {
	const struct model *m;
	const char *user;
	size_t next;    /* the model's line after the one last reported */
	unsigned calls; /* reports in all */
	unsigned lines; /* reports of the user */
	unsigned left;  /* the last one's count */
};

/* A line each() reports: well-formed, with codes left. */
static bool listed(const struct line *ln)
{
	return ln->ok && ln->hashes > 0;
}

static void on_user(void *ctx, const char *user, unsigned left)
{
	struct seen *s = ctx;

	/* a key is cut at a NUL byte, and so can be empty then */
	FUZZ_CHECK(user != NULL && (user[0] != '\0' || s->m->nul) && user[0] != '#');
	FUZZ_CHECK(left > 0 && left <= s->m->argon);
	s->calls++;
	if (strcmp(user, s->user) == 0) {
		s->lines++;
		s->left = left;
	}
	if (s->m->nul)
		return;
	/* the model's next line with codes, in file order */
	while (s->next < s->m->n && !listed(&s->m->lines[s->next]))
		s->next++;
	FUZZ_CHECK(s->next < s->m->n);
	{
		const struct line *ln = &s->m->lines[s->next++];

		FUZZ_CHECK(strlen(user) == (size_t)(ln->l.key_end - ln->l.key) &&
		           memcmp(user, ln->l.key, strlen(user)) == 0 && left == ln->hashes);
	}
}

/* True when two of the model's lines have one key. */
static bool has_twice(const struct model *m)
{
	for (size_t i = 0; i < m->n; i++) {
		const struct tsms_keyfile_line *a = &m->lines[i].l;

		for (size_t j = i + 1; !a->blank && j < m->n; j++) {
			if (line_has_key(&m->lines[j], a->key, (size_t)(a->key_end - a->key)))
				return true;
		}
	}
	return false;
}

/* Returns count's TSMS_OK or not, and *left. */
static bool check_readers(const struct tsms_config *cfg, const struct model *m, const char *user,
                          unsigned *left)
{
	char err[TSMS_CONFIG_ERR_MAX];
	struct seen seen = { .m = m, .user = user };
	enum tsms_err e, ce;
	bool bad = false;

	memset(err, 'X', sizeof(err));
	e = tsms_backup_each(cfg, on_user, &seen, err);
	if (e != TSMS_OK) {
		/* all or nothing: a damaged file lists no one */
		check_err(e, err);
		FUZZ_CHECK(seen.calls == 0);
	}
	memset(err, 'X', sizeof(err));
	*left = 12345;
	ce = tsms_backup_count(cfg, user, left, err);
	if (ce != TSMS_OK) {
		check_err(ce, err);
		FUZZ_CHECK(*left == 0);
	} else if (e == TSMS_OK) {
		/* count agrees with each(), whatever the file holds */
		FUZZ_CHECK(seen.lines <= 1 && *left == (seen.lines == 1 ? seen.left : 0));
	}
	if (m->nul)
		return ce == TSMS_OK;

	for (size_t i = 0; i < m->n; i++)
		bad = bad || (!m->lines[i].l.blank && !m->lines[i].ok);
	FUZZ_CHECK((e == TSMS_OK) == (!bad && !has_twice(m)));
	if (e == TSMS_OK) {
		while (seen.next < m->n && !listed(&m->lines[seen.next]))
			seen.next++;
		FUZZ_CHECK(seen.next == m->n); /* every line with codes reported */
	}
	if (m->user_lines > 1 || (m->user_lines == 1 && !m->user_line->ok)) {
		FUZZ_CHECK(ce == TSMS_ERR_CONFIG);
	} else {
		FUZZ_CHECK(ce == TSMS_OK);
		FUZZ_CHECK(*left == (m->user_lines == 1 ? m->user_line->hashes : 0));
	}
	return ce == TSMS_OK;
}

/* ---- the writers */

/* Whether the user's line holds known[k]'s hash; *k the code's entry or -1. */
static bool holds_code(const struct model *m, const char *code, int *k)
{
	const char *v, *tok;
	size_t len;

	*k = -1;
	for (size_t i = 0; i < sizeof(known) / sizeof(known[0]); i++) {
		if (strcmp(known[i].code, code) == 0)
			*k = (int)i;
	}
	if (*k < 0 || m->user_line == NULL)
		return false;
	v = m->user_line->l.value;
	while ((tok = next_token(&v, m->user_line->l.value_end, &len)) != NULL) {
		if (len == strlen(known[*k].hash) && memcmp(tok, known[*k].hash, len) == 0)
			return true;
	}
	return false;
}

/* The user's line without known[k]'s first hash, its hashes joined by one space
 * (NULL: none left). The caller frees it. */
static char *without(const struct model *m, int k)
{
	const char *v = m->user_line->l.value, *tok;
	struct buf b = { 0 };
	bool dropped = false;
	size_t len;

	while ((tok = next_token(&v, m->user_line->l.value_end, &len)) != NULL) {
		if (!dropped && len == strlen(known[k].hash) &&
		    memcmp(tok, known[k].hash, len) == 0) {
			dropped = true;
			continue;
		}
		if (b.len > 0)
			put(&b, " ", 1);
		put(&b, tok, len);
	}
	if (b.s != NULL)
		b.s[b.len] = '\0';
	return b.s;
}

static void check_use(const struct tsms_config *cfg, const struct model *m, const char *user,
                      const char *answer, bool count_ok, unsigned before)
{
	char err[TSMS_CONFIG_ERR_MAX], id[TSMS_DIGEST_HEX];
	char code[TSMS_BACKUP_SYMBOLS + 1] = "";
	bool used = true, looks, exact = false;
	unsigned left = 12345, after;
	enum tsms_err e;
	int k = -1;

	check_normalize(answer, code, &looks);
	if (looks && !m->nul)
		exact = holds_code(m, code, &k);
	memset(err, 'X', sizeof(err));
	memset(id, 'X', sizeof(id));
	e = tsms_backup_use(cfg, user, answer, &used, id, &left, err);
	if (e != TSMS_OK) {
		check_err(e, err);
		/* an unusable file, or a name no edit takes (a key longer than
		 * TSMS_KEYFILE_KEY_MAX or with control characters can still be read) */
		FUZZ_CHECK(!used && id[0] == '\0' && looks && (!count_ok || !valid_key(user)));
		check_file(m->data, m->size);
		return;
	}
	FUZZ_CHECK(looks || !used);
	FUZZ_CHECK(count_ok || !looks);
	if (!used) {
		/* nothing changed; a random answer never opens a real hash */
		FUZZ_CHECK(id[0] == '\0' && (m->nul || left == (looks ? before : 0)));
		FUZZ_CHECK(!exact);
		check_file(m->data, m->size);
		return;
	}
	FUZZ_CHECK(before > 0 && left == before - 1);
	FUZZ_CHECK(strlen(id) == TSMS_DIGEST_HEX - 1 &&
	           strspn(id, "0123456789abcdef") == TSMS_DIGEST_HEX - 1);
	/* only the fixed codes have hashes the fuzzer can know */
	for (k = 0; k < (int)(sizeof(known) / sizeof(known[0])); k++) {
		if (strcmp(known[k].code, code) == 0)
			break;
	}
	FUZZ_CHECK(k < (int)(sizeof(known) / sizeof(known[0])));
	if (exact) {
		struct buf b = { 0 };
		char *rest = without(m, k);

		expect_edit(m, user, rest, &b);
		check_file(b.s, b.len);
		free(rest);
		free(b.s);
	}
	memset(err, 'X', sizeof(err));
	FUZZ_CHECK(tsms_backup_count(cfg, user, &after, err) == TSMS_OK && after == left);
}

static void check_revoke(const struct tsms_config *cfg, const struct model *m, const char *user)
{
	char err[TSMS_CONFIG_ERR_MAX];
	unsigned removed = 12345, after;
	enum tsms_err e;
	struct buf b = { 0 };

	memset(err, 'X', sizeof(err));
	e = tsms_backup_revoke(cfg, user, &removed, err);
	if (!valid_key(user)) {
		check_err(e, err);
		FUZZ_CHECK(removed == 0);
		check_file(m->data, m->size);
		return;
	}
	FUZZ_CHECK(e == TSMS_OK);
	if (m->user_lines == 0) {
		FUZZ_CHECK(removed == 0);
		check_file(m->data, m->size);
	} else {
		expect_edit(m, user, NULL, &b);
		check_file(b.s, b.len);
		free(b.s);
		FUZZ_CHECK(m->nul || removed == m->user_line->hashes);
	}
	/* (with a NUL byte, count's names end there, an edit's do not) */
	memset(err, 'X', sizeof(err));
	e = tsms_backup_count(cfg, user, &after, err);
	FUZZ_CHECK(m->nul || (e == TSMS_OK && after == 0));
}

static enum tsms_err set_value(void *ctx, const char *value, char **value_out,
                               char err[TSMS_CONFIG_ERR_MAX])
{
	const char **set = ctx;

	(void)err;
	FUZZ_CHECK(value == NULL || set[1] != NULL);
	FUZZ_CHECK(value == NULL || strcmp(value, set[1]) == 0);
	*value_out = strdup(set[0]);
	FUZZ_CHECK(*value_out != NULL);
	return TSMS_OK;
}

/* A plain edit that sets the user's value to the answer. */
static void check_edit(const struct model *m, const char *user, const char *value)
{
	char err[TSMS_CONFIG_ERR_MAX];
	char *old = NULL;
	const char *set[2] = { value, NULL };
	bool changed = true, same;
	enum tsms_err e;

	if (m->user_line != NULL) {
		/* what the library hands the callback: the first line's value as a string */
		old = strndup(m->user_line->l.value,
		              (size_t)(m->user_line->l.value_end - m->user_line->l.value));
		FUZZ_CHECK(old != NULL);
		set[1] = old;
	}
	memset(err, 'X', sizeof(err));
	e = tsms_keyfile_edit(path, WHAT, TSMS_BACKUP_FILE_MAX_BYTES, user, set_value, set,
	                      &changed, err);
	FUZZ_CHECK(tsms_keyfile_valid_key(user) == valid_key(user));
	if (!valid_key(user)) {
		check_err(e, err);
		FUZZ_CHECK(!changed);
		check_file(m->data, m->size);
	} else {
		same = m->user_lines == 1 && strcmp(old, value) == 0;
		FUZZ_CHECK(e == TSMS_OK && changed == !same);
		if (same) {
			check_file(m->data, m->size);
		} else {
			struct buf b = { 0 };

			expect_edit(m, user, value, &b);
			check_file(b.s, b.len);
			free(b.s);
		}
	}
	free(old);
}

/* Without backupCodesFile every call fails closed, with a message. */
static void check_unconfigured(const char *user, const char *answer)
{
	const struct tsms_config none = { 0 };
	char err[TSMS_CONFIG_ERR_MAX], id[TSMS_DIGEST_HEX];
	unsigned n = 12345;
	bool used = true;

	memset(err, 'X', sizeof(err));
	check_err(tsms_backup_count(&none, user, &n, err), err);
	FUZZ_CHECK(n == 0);
	memset(err, 'X', sizeof(err));
	check_err(tsms_backup_use(&none, user, answer, &used, id, &n, err), err);
	FUZZ_CHECK(!used && n == 0 && id[0] == '\0');
	memset(err, 'X', sizeof(err));
	check_err(tsms_backup_revoke(&none, user, &n, err), err);
	memset(err, 'X', sizeof(err));
	check_err(tsms_backup_each(&none, on_user, NULL, err), err);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *in = (const char *)data, *end = in + size;
	const char *nl1 = memchr(in, '\n', size);
	const char *a = nl1 != NULL ? nl1 + 1 : end;
	const char *nl2 = memchr(a, '\n', (size_t)(end - a));
	const char *content = nl2 != NULL ? nl2 + 1 : end;
	size_t content_len = (size_t)(end - content);
	char *user = fuzz_strndup(data, (size_t)((nl1 != NULL ? nl1 : end) - in));
	char *answer = fuzz_strndup((const uint8_t *)a, (size_t)((nl2 != NULL ? nl2 : end) - a));
	char *whole = fuzz_strndup(data, size);
	struct tsms_config cfg = { 0 };
	char code[TSMS_BACKUP_SYMBOLS + 1];
	struct model m;
	unsigned left;
	bool ok;

	check_normalize(whole, code, &ok);
	free(whole);
	check_unconfigured(user, answer);

	write_file(content, content_len);
	cfg.backup_codes_file = path;
	build_model(&m, content, content_len, user);
	if (geteuid() != 0) {
		/* the library refuses a file that is not root's: nothing to compare */
		free(m.lines);
		free(user);
		free(answer);
		return 0;
	}
	ok = check_readers(&cfg, &m, user, &left);
	if (m.argon <= MAX_VERIFY) {
		check_use(&cfg, &m, user, answer, ok, left);
		write_file(content, content_len);
	}
	check_revoke(&cfg, &m, user);
	write_file(content, content_len);
	check_edit(&m, user, answer);

	free(m.lines);
	free(user);
	free(answer);
	return 0;
}
