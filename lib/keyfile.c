/* keyfile.c - root-only files of "KEY VALUE" lines, '#' comments: the users
 * file and the backup codes file share their reading and their rewrites */
#include "keyfile.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lock.h"
#include "log.h"
#include "otp.h"
#include "rootfile.h"
#include "sigguard.h"

#define fail(err, ...) tsms_format_clean((err), TSMS_CONFIG_ERR_MAX, __VA_ARGS__)

static bool is_blank(char c)
{
	return c == ' ' || c == '\t' || c == '\r';
}

bool tsms_keyfile_valid_key(const char *key)
{
	size_t n = strlen(key);

	if (n == 0 || n > TSMS_KEYFILE_KEY_MAX || key[0] == '#')
		return false;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)key[i];
		if (c <= 0x20 || c == 0x7f)
			return false;
	}
	return true;
}

void tsms_keyfile_split(const char *p, const char *end, struct tsms_keyfile_line *l)
{
	memset(l, 0, sizeof(*l));
	while (p < end && is_blank(*p))
		p++;
	if (p == end || *p == '#') {
		l->blank = true;
		return;
	}
	l->key = p;
	while (p < end && !is_blank(*p))
		p++;
	l->key_end = p;
	while (p < end && is_blank(*p))
		p++;
	l->value = p;
	l->value_end = end;
	while (l->value_end > l->value && is_blank(l->value_end[-1]))
		l->value_end--;
}

static bool has_key(const struct tsms_keyfile_line *l, const char *key, size_t key_len)
{
	return !l->blank && (size_t)(l->key_end - l->key) == key_len &&
	       memcmp(l->key, key, key_len) == 0;
}

/* Calls fn for each line of data[0, size) that is not blank or a comment. */
static void each_line(const char *data, size_t size,
                      void (*fn)(void *ctx, unsigned line, const char *p, const char *end,
                                 const struct tsms_keyfile_line *l),
                      void *ctx)
{
	unsigned line = 0;

	for (const char *p = data, *end = data + size; p < end;) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		const char *line_end = nl != NULL ? nl : end;
		struct tsms_keyfile_line l;

		line++;
		tsms_keyfile_split(p, line_end, &l);
		if (!l.blank)
			fn(ctx, line, p, line_end, &l);
		p = nl != NULL ? nl + 1 : end;
	}
}

bool tsms_keyfile_missing(const char *path)
{
	struct stat st;

	/* lstat: a dangling symlink is no missing file, and the open refuses it */
	return lstat(path, &st) != 0 && errno == ENOENT;
}

/* Reads the whole file into a new buffer (NUL-terminated); *size its length. */
static char *read_whole(const char *path, const char *what, long long max_size, size_t *size,
                        char err[TSMS_CONFIG_ERR_MAX])
{
	struct stat st;
	size_t got = 0;
	char *data;
	int fd = tsms_open_private(path, what, max_size, &st, err);

	if (fd < 0)
		return NULL;
	data = malloc((size_t)st.st_size + 1);
	while (data != NULL && got < (size_t)st.st_size) {
		ssize_t n = read(fd, data + got, (size_t)st.st_size - got);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			fail(err, "%s %s: cannot read: %s", what, path, strerror(errno));
			tsms_wipe(data, got);
			free(data);
			close(fd);
			return NULL;
		}
		if (n == 0)
			break;
		got += (size_t)n;
	}
	close(fd);
	if (data == NULL) {
		fail(err, "out of memory");
		return NULL;
	}
	data[got] = '\0';
	*size = got;
	return data;
}

static void free_whole(char *data, size_t size)
{
	if (data != NULL)
		tsms_wipe(data, size);
	free(data);
}

/* Appends n bytes to the growing buffer *buf of length *len. */
static bool append(char **buf, size_t *len, size_t *cap, const char *s, size_t n)
{
	if (*len + n + 1 > *cap) {
		size_t grown = (*cap + n + 1) * 2;
		char *b = malloc(grown);

		if (b == NULL)
			return false;
		memcpy(b, *buf, *len);
		free_whole(*buf, *len);
		*buf = b;
		*cap = grown;
	}
	memcpy(*buf + *len, s, n);
	*len += n;
	(*buf)[*len] = '\0';
	return true;
}

/* The new content: the old lines, with key's first line replaced by "key
 * value" (or dropped, value NULL) and any later line of key dropped; that line
 * appended when no line has key. */
static char *rewrite(const char *data, size_t size, const char *key, const char *value,
                     size_t *out_len)
{
	size_t key_len = strlen(key), len = 0;
	size_t cap = size + key_len + (value != NULL ? strlen(value) : 0) + 4;
	char *out = malloc(cap);
	bool placed = false, ok = true;

	if (out == NULL)
		return NULL;
	out[0] = '\0';
	for (const char *p = data, *end = data + size; ok && p < end;) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		const char *line_end = nl != NULL ? nl : end;
		struct tsms_keyfile_line l;

		tsms_keyfile_split(p, line_end, &l);
		if (!has_key(&l, key, key_len))
			ok = append(&out, &len, &cap, p, (size_t)(line_end - p)) &&
			     append(&out, &len, &cap, "\n", 1);
		else if (!placed && value != NULL)
			ok = append(&out, &len, &cap, key, key_len) &&
			     append(&out, &len, &cap, " ", 1) &&
			     append(&out, &len, &cap, value, strlen(value)) &&
			     append(&out, &len, &cap, "\n", 1);
		placed = placed || has_key(&l, key, key_len);
		p = nl != NULL ? nl + 1 : end;
	}
	if (ok && !placed && value != NULL)
		ok = append(&out, &len, &cap, key, key_len) && append(&out, &len, &cap, " ", 1) &&
		     append(&out, &len, &cap, value, strlen(value)) &&
		     append(&out, &len, &cap, "\n", 1);
	if (!ok) {
		free_whole(out, len);
		return NULL;
	}
	*out_len = len;
	return out;
}

static void sync_dir(const char *path)
{
	char dir[4096];
	char *slash;
	int fd;

	snprintf(dir, sizeof(dir), "%s", path);
	slash = strrchr(dir, '/');
	if (slash == NULL)
		return;
	*(slash == dir ? slash + 1 : slash) = '\0';
	fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd >= 0) {
		fsync(fd);
		close(fd);
	}
}

/* Writes content to a temp file beside path and renames it over path. */
static enum tsms_err replace_file(const char *path, const char *what, const char *content,
                                  size_t len, char err[TSMS_CONFIG_ERR_MAX])
{
	struct tsms_sigguard g;
	char tmp[4096];
	int fd, ok;

	if (snprintf(tmp, sizeof(tmp), "%s.XXXXXX", path) >= (int)sizeof(tmp)) {
		fail(err, "%s %s: path too long", what, path);
		return TSMS_ERR_CONFIG;
	}
	tsms_sigguard_block(&g, SIGXFSZ); /* the caller's RLIMIT_FSIZE: EFBIG, not death */
	fd = mkostemp(tmp, O_CLOEXEC);
	if (fd < 0) {
		fail(err, "%s %s: cannot create a temp file: %s", what, path, strerror(errno));
		ok = false;
	} else {
		ok = fchown(fd, 0, 0) == 0 && fchmod(fd, 0600) == 0 &&
		     tsms_write_all(fd, content, len) && fsync(fd) == 0;
		ok = close(fd) == 0 && ok;
		if (!ok || rename(tmp, path) != 0) {
			fail(err, "%s %s: cannot write: %s", what, path, strerror(errno));
			unlink(tmp);
			ok = false;
		}
	}
	tsms_sigguard_restore(&g);
	if (!ok)
		return TSMS_ERR_CONFIG;
	sync_dir(path); /* the rename itself survives a crash */
	return TSMS_OK;
}

/* Key's first line, for an edit. */
struct found {
	const char *key;
	size_t key_len;
	const char *value, *value_end; /* NULL when no line has key */
	bool twice;                    /* a later line has key too */
};

static void find_line(void *ctx, unsigned line, const char *p, const char *end,
                      const struct tsms_keyfile_line *l)
{
	struct found *f = ctx;

	(void)line;
	(void)p;
	(void)end;
	if (!has_key(l, f->key, f->key_len))
		return;
	if (f->value != NULL) {
		f->twice = true;
		return;
	}
	f->value = l->value;
	f->value_end = l->value_end;
}

enum tsms_err tsms_keyfile_edit(const char *path, const char *what, long long max_size,
                                const char *key, tsms_keyfile_edit_fn fn, void *ctx, bool *changed,
                                char err[TSMS_CONFIG_ERR_MAX])
{
	struct found f = { .key = key, .key_len = strlen(key) };
	char *data = NULL, *content = NULL, *old = NULL, *value = NULL;
	enum tsms_err result = TSMS_ERR_CONFIG;
	size_t size = 0, len = 0;
	char lock_path[4096];
	int lock_fd = -1;

	*changed = false;
	if (!tsms_keyfile_valid_key(key)) {
		fail(err, "\"%s\" cannot be a user name in %s %s", key, what, path);
		return TSMS_ERR_CONFIG;
	}
	if (snprintf(lock_path, sizeof(lock_path), "%s.lock", path) >= (int)sizeof(lock_path)) {
		fail(err, "%s %s: path too long", what, path);
		return TSMS_ERR_CONFIG;
	}
	lock_fd = open(lock_path, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (lock_fd < 0 || tsms_lock_exclusive(lock_fd, TSMS_LOCK_WAIT_MS) != 0) {
		char holder[TSMS_LOCK_HOLDER_MAX] = "";
		int saved = errno;

		if (lock_fd >= 0) {
			tsms_lock_holder(lock_fd, holder);
			close(lock_fd);
		}
		fail(err, "%s %s: cannot lock %s: %s%s", what, path, lock_path,
		     tsms_lock_strerror(saved), holder);
		return TSMS_ERR_CONFIG;
	}
	if (!tsms_keyfile_missing(path)) {
		data = read_whole(path, what, max_size, &size, err);
		if (data == NULL)
			goto out;
	}
	if (data != NULL)
		each_line(data, size, find_line, &f);
	if (f.value != NULL) {
		old = strndup(f.value, (size_t)(f.value_end - f.value));
		if (old == NULL) {
			fail(err, "out of memory");
			goto out;
		}
	}
	result = fn(ctx, old, &value, err);
	if (result != TSMS_OK)
		goto out;
	if (old == NULL && value == NULL)
		goto out; /* nothing to remove */
	if (!f.twice && old != NULL && value != NULL && strcmp(old, value) == 0)
		goto out; /* nothing changes */
	content = rewrite(data != NULL ? data : "", size, key, value, &len);
	if (content == NULL) {
		fail(err, "out of memory");
		result = TSMS_ERR_CONFIG;
		goto out;
	}
	result = replace_file(path, what, content, len, err);
	*changed = result == TSMS_OK;
out:
	free_whole(content, len);
	free_whole(data, size);
	tsms_free_secret(old);
	tsms_free_secret(value);
	tsms_lock_release(&lock_fd);
	return result;
}

/* tsms_keyfile_each's walk: each line's key and value as strings. */
struct each {
	tsms_keyfile_fn fn;
	void *ctx;
	bool nomem;
};

static void each_kv(void *ctx, unsigned line, const char *p, const char *end,
                    const struct tsms_keyfile_line *l)
{
	struct each *e = ctx;
	char *key = strndup(l->key, (size_t)(l->key_end - l->key));
	char *value = strndup(l->value, (size_t)(l->value_end - l->value));

	(void)p;
	(void)end;
	if (key != NULL && value != NULL)
		e->fn(e->ctx, line, key, value);
	else
		e->nomem = true;
	free(key);
	tsms_free_secret(value);
}

enum tsms_err tsms_keyfile_each(const char *path, const char *what, long long max_size,
                                bool missing_ok, tsms_keyfile_fn fn, void *ctx,
                                char err[TSMS_CONFIG_ERR_MAX])
{
	struct each e = { .fn = fn, .ctx = ctx };
	size_t size = 0;
	char *data;

	if (missing_ok && tsms_keyfile_missing(path))
		return TSMS_OK;
	data = read_whole(path, what, max_size, &size, err);
	if (data == NULL)
		return TSMS_ERR_CONFIG;
	each_line(data, size, each_kv, &e);
	free_whole(data, size);
	if (e.nomem) {
		fail(err, "out of memory");
		return TSMS_ERR_CONFIG;
	}
	return TSMS_OK;
}
