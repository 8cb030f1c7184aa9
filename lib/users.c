/* users.c - the users file: one "user +E164number" per line, '#' comments */
#include "users.h"

#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "keyfile.h"
#include "log.h"
#include "rootfile.h"

#define NAME_MAX_BYTES TSMS_KEYFILE_KEY_MAX
/* a line's problem, e.g. "the number has no leading +" */
#define PROBLEM_MAX 128

#define fail(err, ...) tsms_format_clean((err), TSMS_CONFIG_ERR_MAX, __VA_ARGS__)

static bool is_blank(char c)
{
	return c == ' ' || c == '\t' || c == '\r';
}

static bool is_name_byte(unsigned char c)
{
	return c > 0x20 && c != 0x7f;
}

bool tsms_users_valid_name(const char *name)
{
	return tsms_keyfile_valid_key(name);
}

/* One line, split in place: [user, user_end) and the rest, [number, number_end),
 * which may hold the separators that lib/phone.h allows. */
struct line {
	const char *user, *user_end;
	const char *number, *number_end;
	bool blank; /* empty or a comment */
};

static void split(const char *p, const char *end, struct line *l)
{
	struct tsms_keyfile_line kv;

	memset(l, 0, sizeof(*l));
	tsms_keyfile_split(p, end, &kv);
	l->blank = kv.blank;
	if (kv.blank)
		return;
	l->user = kv.key;
	l->user_end = kv.key_end;
	l->number = kv.value;
	l->number_end = kv.value_end;
}

/* Checks a split line; writes the E.164 number or the problem. */
static bool parse(const struct line *l, char phone[TSMS_PHONE_MAX], char problem[PROBLEM_MAX])
{
	size_t user_len = (size_t)(l->user_end - l->user);
	const char *why;

	phone[0] = '\0';
	for (const char *c = l->user; c < l->user_end; c++) {
		if (!is_name_byte((unsigned char)*c)) {
			snprintf(problem, PROBLEM_MAX, "the user name has a control character");
			return false;
		}
	}
	if (user_len > NAME_MAX_BYTES) {
		snprintf(problem, PROBLEM_MAX, "the user name is longer than %d bytes",
		         NAME_MAX_BYTES);
		return false;
	}
	if (l->number == l->number_end) {
		snprintf(problem, PROBLEM_MAX, "expected \"user +E164number\"");
		return false;
	}
	if (!tsms_phone_parse(l->number, (size_t)(l->number_end - l->number), phone, &why)) {
		snprintf(problem, PROBLEM_MAX, "the number %s", why);
		return false;
	}
	return true;
}

/* Reads a file line by line in fixed-size chunks: no mapping (a file rewritten in
 * place cannot fault the reader) and no allocation, whatever the file's size. */
struct reader {
	int fd;
	unsigned long long base; /* file offset of buf[0] */
	size_t start, end;
	bool eof, skip;
	int error;
	char buf[16 * 1024];
};

/* Reads more into r's buffer, keeping its unread part. False when nothing came. */
static bool fill(struct reader *r)
{
	ssize_t n;

	if (r->eof)
		return false;
	r->base += r->start;
	memmove(r->buf, r->buf + r->start, r->end - r->start);
	r->end -= r->start;
	r->start = 0;
	do
		n = read(r->fd, r->buf + r->end, sizeof(r->buf) - r->end);
	while (n < 0 && errno == EINTR);
	if (n < 0)
		r->error = errno;
	r->eof = n <= 0;
	if (n > 0)
		r->end += (size_t)n;
	return n > 0;
}

/* The next line, without its '\n', in [*line, *line + *len); *cut when it was
 * longer than the buffer (its rest is skipped). False at the end or on error. */
static bool next_line(struct reader *r, const char **line, size_t *len, bool *cut)
{
	for (;;) {
		char *nl = memchr(r->buf + r->start, '\n', r->end - r->start);

		if (r->skip && nl != NULL) {
			r->start = (size_t)(nl + 1 - r->buf);
			r->skip = false;
			continue;
		}
		if (r->skip) {
			r->start = r->end = 0;
		} else if (nl != NULL) {
			*line = r->buf + r->start;
			*len = (size_t)(nl - *line);
			*cut = false;
			r->start = (size_t)(nl + 1 - r->buf);
			return true;
		} else if (r->eof) {
			*line = r->buf + r->start;
			*len = r->end - r->start;
			*cut = false;
			r->start = r->end;
			return *len > 0;
		} else if (r->start == 0 && r->end == sizeof(r->buf)) {
			*line = r->buf;
			*len = r->end;
			*cut = true;
			r->start = r->end = 0;
			r->skip = true;
			return true;
		}
		if (r->eof || (!fill(r) && r->error != 0))
			return false;
	}
}

/* All the whole lines now in the buffer, '\n's included, as one block, so that a
 * lookup can search them at once; at the end, the last line without its '\n'.
 * *cut marks a single line longer than the buffer (its rest is skipped). False
 * at the end or on error. */
static bool next_block(struct reader *r, const char **block, size_t *len, bool *cut)
{
	for (;;) {
		char *from = r->buf + r->start, *last;
		size_t have = r->end - r->start;

		if (r->skip) {
			char *nl = memchr(from, '\n', have);
			r->start = nl != NULL ? (size_t)(nl + 1 - r->buf) : r->end;
			r->skip = nl == NULL;
			if (nl == NULL && !fill(r))
				return false;
			continue;
		}
		last = have > 0 ? memrchr(from, '\n', have) : NULL;
		*block = from;
		*cut = false;
		if (last != NULL) {
			*len = (size_t)(last + 1 - from);
			r->start += *len;
			return true;
		}
		if (r->eof) {
			*len = have;
			r->start = r->end;
			return have > 0;
		}
		if (have == sizeof(r->buf)) {
			*len = have;
			*cut = true;
			r->start = r->end;
			r->skip = true;
			return true;
		}
		fill(r);
	}
}

static bool open_reader(struct reader *r, const char *path, char err[TSMS_CONFIG_ERR_MAX])
{
	struct stat st;

	memset(r, 0, offsetof(struct reader, buf));
	r->fd = tsms_open_private(path, "usersFile", TSMS_USERS_FILE_MAX_BYTES, &st, err);
	return r->fd >= 0;
}

/* Closes r; false (with err) when reading failed. */
static bool close_reader(struct reader *r, const char *path, char err[TSMS_CONFIG_ERR_MAX])
{
	close(r->fd);
	if (r->error != 0) {
		fail(err, "usersFile %s: cannot read: %s", path, strerror(r->error));
		return false;
	}
	return true;
}

/* The line number of file offset off: counted only for error messages, so that
 * lookups need not count lines at all. 0 when the file cannot be read again. */
static unsigned long long line_at(const char *path, unsigned long long off)
{
	char err[TSMS_CONFIG_ERR_MAX];
	unsigned long long line = 1;
	struct reader r;
	const char *p;
	size_t len;
	bool cut;

	if (!open_reader(&r, path, err))
		return 0;
	while (next_block(&r, &p, &len, &cut)) {
		unsigned long long at = r.base + (unsigned long long)(p - r.buf);
		size_t upto;

		if (at >= off)
			break;
		if (cut) { /* a whole over-long line before off: its '\n' was skipped */
			line++;
			continue;
		}
		upto = off - at < len ? (size_t)(off - at) : len;
		for (const char *nl = p; (nl = memchr(nl, '\n', upto - (size_t)(nl - p))) != NULL;
		     nl++)
			line++;
	}
	close_reader(&r, path, err);
	return line;
}

/* One line of the users file that names user, at file offset off: checks it,
 * keeps the number. */
static enum tsms_err take_line(const char *path, const char *user, const char *line,
                               const char *end, bool cut, unsigned long long off,
                               unsigned long long *found_off, char phone[TSMS_PHONE_MAX],
                               char err[TSMS_CONFIG_ERR_MAX])
{
	char problem[PROBLEM_MAX], number[TSMS_PHONE_MAX];
	struct line l;

	split(line, end, &l);
	if (phone[0] != '\0') {
		fail(err, "usersFile %s: user \"%s\" is on lines %llu and %llu; fix: keep one",
		     path, user, line_at(path, *found_off), line_at(path, off));
		return TSMS_ERR_CONFIG;
	}
	if (cut || !parse(&l, number, problem)) {
		fail(err,
		     "usersFile %s:%llu: user \"%s\": %s; fix: write the line as "
		     "\"%s " TSMS_PHONE_FORM "\", e.g. \"%s " TSMS_PHONE_EXAMPLE "\"",
		     path, line_at(path, off), user, cut ? "the line is too long" : problem, user,
		     user);
		return TSMS_ERR_CONFIG;
	}
	memcpy(phone, number, sizeof(number));
	*found_off = off;
	return TSMS_OK;
}

/* True when the user name at hit starts a line of [start, end) and ends a field. */
static bool starts_line(const char *start, const char *end, const char *hit, size_t user_len)
{
	const char *before = hit, *after = hit + user_len;

	while (before > start && is_blank(before[-1]))
		before--;
	return (before == start || before[-1] == '\n') &&
	       (after == end || is_blank(*after) || *after == '\n');
}

/* tsms_users_file_lookup; *unusable tells a failure of the whole file (it cannot
 * be opened, is unsafe or cannot be read) from one of user's own lines. */
static enum tsms_err file_lookup(const char *path, const char *user, char phone[TSMS_PHONE_MAX],
                                 bool *unusable, char err[TSMS_CONFIG_ERR_MAX])
{
	size_t user_len = strlen(user), len;
	enum tsms_err result = TSMS_OK;
	unsigned long long found_off = 0;
	const char *block;
	struct reader r;
	bool cut;

	phone[0] = '\0';
	*unusable = true;
	if (!open_reader(&r, path, err))
		return TSMS_ERR_CONFIG;
	/* a name that no line can hold is simply not in the file; otherwise search each
	 * block for the name (memmem) instead of walking it line by line: the cost per
	 * login stays small even for a million users */
	while (result == TSMS_OK && tsms_users_valid_name(user) &&
	       next_block(&r, &block, &len, &cut)) {
		const char *end = block + len, *p = block, *hit;

		while (result == TSMS_OK && p < end &&
		       (hit = memmem(p, (size_t)(end - p), user, user_len)) != NULL) {
			const char *line = hit, *line_end;

			if (!starts_line(block, end, hit, user_len)) {
				p = hit + 1;
				continue;
			}
			while (line > block && line[-1] != '\n')
				line--;
			line_end = memchr(hit, '\n', (size_t)(end - hit));
			if (line_end == NULL)
				line_end = end;
			result = take_line(path, user, line, line_end, cut,
			                   r.base + (unsigned long long)(line - r.buf), &found_off,
			                   phone, err);
			p = line_end;
		}
	}
	*unusable = false;
	if (!close_reader(&r, path, err)) {
		*unusable = true;
		result = TSMS_ERR_CONFIG;
	}
	if (result != TSMS_OK)
		phone[0] = '\0';
	return result;
}

enum tsms_err tsms_users_file_lookup(const char *path, const char *user, char phone[TSMS_PHONE_MAX],
                                     char err[TSMS_CONFIG_ERR_MAX])
{
	bool unusable;

	return file_lookup(path, user, phone, &unusable, err);
}

enum tsms_err tsms_users_find(const struct tsms_config *cfg, const char *user,
                              struct tsms_number *num, char err[TSMS_CONFIG_ERR_MAX])
{
	const struct tsms_user *entry = tsms_config_user(cfg, user);
	bool unusable = false;
	enum tsms_err e;

	num->phone[0] = '\0';
	num->source = TSMS_SOURCE_NONE;
	if (entry != NULL && entry->problem != NULL) {
		fail(err, "%s", entry->problem);
		return TSMS_ERR_CONFIG;
	}
	if (cfg->users_file != NULL && entry == NULL && tsms_keyfile_missing(cfg->users_file)) {
		/* what the file would have said of user is unknown: not an unmapped user
		 * (nullok would pass), and not the directory's (a line overrides it) */
		fail(err,
		     "usersFile %s does not exist; fix: create it empty (install -m 600 /dev/null "
		     "%s), run twilio-sms-otp enroll, or remove the key",
		     cfg->users_file, cfg->users_file);
		return TSMS_ERR_CONFIG;
	}
	if (cfg->users_file != NULL) {
		e = file_lookup(cfg->users_file, user, num->phone, &unusable, err);
		/* a file that cannot be read can at most hide a line that would refuse an
		 * inline user (a user in both places is refused, never given the file's
		 * number), so it does not lock out the users of the config */
		if (e != TSMS_OK && !(unusable && entry != NULL))
			return e;
		if (num->phone[0] != '\0' && entry != NULL) {
			fail(err, "user \"%s\" is both in users and in usersFile %s; fix: keep one",
			     user, cfg->users_file);
			num->phone[0] = '\0';
			return TSMS_ERR_CONFIG;
		}
		if (num->phone[0] != '\0') {
			num->source = TSMS_SOURCE_USERS_FILE;
			snprintf(num->where, sizeof(num->where), "%s", cfg->users_file);
		}
	}
	if (entry != NULL) {
		err[0] = '\0';
		snprintf(num->phone, TSMS_PHONE_MAX, "%s", entry->phone);
		num->source = TSMS_SOURCE_USERS;
	}
	return TSMS_OK;
}

enum tsms_err tsms_users_file_each(const char *path, bool missing_ok, tsms_users_fn fn, void *ctx,
                                   char err[TSMS_CONFIG_ERR_MAX])
{
	unsigned line_no = 0;
	struct reader r;
	const char *p;
	size_t len;
	bool cut;

	if (missing_ok && tsms_keyfile_missing(path))
		return TSMS_OK;
	if (!open_reader(&r, path, err))
		return TSMS_ERR_CONFIG;
	while (next_line(&r, &p, &len, &cut)) {
		char phone[TSMS_PHONE_MAX], problem[PROBLEM_MAX], name[NAME_MAX_BYTES + 1];
		struct line l;

		line_no++;
		split(p, p + len, &l);
		if (l.blank)
			continue;
		snprintf(name, sizeof(name), "%.*s", (int)(l.user_end - l.user), l.user);
		if (!cut && parse(&l, phone, problem))
			fn(ctx, line_no, name, phone, NULL);
		else
			fn(ctx, line_no, name, "", cut ? "the line is too long" : problem);
	}
	return close_reader(&r, path, err) ? TSMS_OK : TSMS_ERR_CONFIG;
}

static enum tsms_err set_phone(void *ctx, const char *value, char **value_out,
                               char err[TSMS_CONFIG_ERR_MAX])
{
	const char *phone = *(const char **)ctx;

	(void)value;
	*value_out = NULL;
	if (phone != NULL && (*value_out = strdup(phone)) == NULL) {
		fail(err, "out of memory");
		return TSMS_ERR_CONFIG;
	}
	return TSMS_OK;
}

enum tsms_err tsms_users_file_update(const char *path, const char *user, const char *phone,
                                     bool *changed, char err[TSMS_CONFIG_ERR_MAX])
{
	*changed = false;
	if (!tsms_users_valid_name(user)) {
		fail(err, "\"%s\" cannot be a user name in the users file", user);
		return TSMS_ERR_CONFIG;
	}
	return tsms_keyfile_edit(path, "usersFile", TSMS_USERS_FILE_MAX_BYTES, user, set_phone,
	                         &phone, changed, err);
}
