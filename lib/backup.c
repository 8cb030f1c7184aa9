/* backup.c - backup codes: single-use codes for when SMS cannot help */
#include "backup.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "keyfile.h"
#include "log.h"

#define WHAT "backupCodesFile"

#define fail(err, ...) tsms_format_clean((err), TSMS_CONFIG_ERR_MAX, __VA_ARGS__)

/* 32 symbols, 5 bits each: digits and lower-case letters without 0, 1, l, o */
static const char alphabet[] = "23456789abcdefghijkmnpqrstuvwxyz";

bool tsms_backup_normalize(const char *answer, char out[TSMS_BACKUP_SYMBOLS + 1])
{
	const char *end;
	bool hyphen = false;
	size_t n = 0, len;

	if (answer == NULL)
		return false;
	len = tsms_answer_trim(answer, &answer);
	end = answer + len;
	for (const char *p = answer; p < end; p++) {
		char c = *p >= 'A' && *p <= 'Z' ? (char)(*p - 'A' + 'a') : *p;

		if (c == '-' && n == TSMS_BACKUP_SYMBOLS / 2 && !hyphen) {
			hyphen = true;
			continue;
		}
		if (n == TSMS_BACKUP_SYMBOLS || strchr(alphabet, c) == NULL) {
			tsms_wipe(out, TSMS_BACKUP_SYMBOLS + 1);
			return false;
		}
		out[n++] = c;
	}
	out[n] = '\0';
	if (n != TSMS_BACKUP_SYMBOLS) {
		tsms_wipe(out, TSMS_BACKUP_SYMBOLS + 1);
		return false;
	}
	return true;
}

/* The hashes of a line's value, in place: the next one from *p, or NULL. */
static const char *next_hash(const char **p, size_t *len)
{
	const char *s = *p;

	while (*s == ' ' || *s == '\t')
		s++;
	if (*s == '\0')
		return NULL;
	*len = strcspn(s, " \t");
	*p = s + *len;
	return s;
}

/* How many hashes value holds; false when one is not a backup code's hash. */
static bool count_hashes(const char *value, unsigned *n)
{
	const char *p = value, *h;
	size_t len;

	*n = 0;
	while ((h = next_hash(&p, &len)) != NULL) {
		char hash[TSMS_HASH_MAX];

		if (len >= TSMS_HASH_MAX)
			return false;
		memcpy(hash, h, len);
		hash[len] = '\0';
		if (!tsms_secret_hash_valid(hash))
			return false;
		(*n)++;
	}
	return true;
}

static void malformed(const char *path, const char *user, char err[TSMS_CONFIG_ERR_MAX])
{
	fail(err,
	     "%s %s: the line of user \"%s\" is not a list of backup code hashes; fix: "
	     "twilio-sms-otp backup-codes %s (a new set)",
	     WHAT, path, user, user);
}

static bool configured(const struct tsms_config *cfg, char err[TSMS_CONFIG_ERR_MAX])
{
	if (cfg->backup_codes_file != NULL)
		return true;
	fail(err, "the config has no backupCodesFile; fix: add \"backupCodesFile\": "
	          "\"/etc/security/pam_twilio_sms.backup-codes\"");
	return false;
}

/* ---- a new set */

struct generate {
	const struct tsms_config *cfg;
	const char *user;
	unsigned count;
	char (*codes)[TSMS_BACKUP_SHOWN];
	unsigned replaced;
};

/* One fresh code, distinct from the set's earlier ones: its symbols and as shown. */
static void fresh_code(char (*codes)[TSMS_BACKUP_SHOWN], unsigned i,
                       char symbols[TSMS_BACKUP_SYMBOLS + 1])
{
	bool again;

	do {
		for (size_t k = 0; k < TSMS_BACKUP_SYMBOLS; k++)
			symbols[k] = alphabet[tsms_random_below(sizeof(alphabet) - 1)];
		symbols[TSMS_BACKUP_SYMBOLS] = '\0';
		snprintf(codes[i], TSMS_BACKUP_SHOWN, "%.4s-%.4s", symbols, symbols + 4);
		again = false;
		for (unsigned k = 0; k < i; k++)
			again = again || strcmp(codes[k], codes[i]) == 0;
	} while (again);
}

static enum tsms_err new_set(void *ctx, const char *value, char **value_out,
                             char err[TSMS_CONFIG_ERR_MAX])
{
	struct generate *g = ctx;
	size_t cap = (size_t)g->count * (TSMS_HASH_MAX + 1) + 1, len = 0;
	char *out = malloc(cap);

	*value_out = NULL;
	if (value != NULL && !count_hashes(value, &g->replaced))
		g->replaced = 0; /* a damaged line is simply replaced */
	if (out == NULL) {
		fail(err, "out of memory");
		return TSMS_ERR_CONFIG;
	}
	out[0] = '\0';
	for (unsigned i = 0; i < g->count; i++) {
		char symbols[TSMS_BACKUP_SYMBOLS + 1], hash[TSMS_HASH_MAX];
		int rc;

		fresh_code(g->codes, i, symbols);
		rc = tsms_secret_hash(symbols, hash);
		tsms_wipe(symbols, sizeof(symbols));
		if (rc != 0) {
			free(out);
			fail(err, "cannot hash a backup code (out of memory?)");
			return TSMS_ERR_CONFIG;
		}
		len += (size_t)snprintf(out + len, cap - len, "%s%s", i > 0 ? " " : "", hash);
	}
	*value_out = out;
	return TSMS_OK;
}

enum tsms_err tsms_backup_generate(const struct tsms_config *cfg, const char *user, unsigned count,
                                   char codes[][TSMS_BACKUP_SHOWN], unsigned *replaced,
                                   char err[TSMS_CONFIG_ERR_MAX])
{
	struct generate g = { .cfg = cfg, .user = user, .count = count, .codes = codes };
	enum tsms_err e;
	bool changed;

	*replaced = 0;
	if (!configured(cfg, err))
		return TSMS_ERR_CONFIG;
	if (count < 1 || count > TSMS_BACKUP_COUNT_MAX) {
		fail(err, "a set has 1 to %d backup codes, not %u", TSMS_BACKUP_COUNT_MAX, count);
		return TSMS_ERR_CONFIG;
	}
	if (tsms_crypto_init() != 0) {
		fail(err, "libsodium is unavailable");
		return TSMS_ERR_SYSTEM;
	}
	e = tsms_keyfile_edit(cfg->backup_codes_file, WHAT, TSMS_BACKUP_FILE_MAX_BYTES, user,
	                      new_set, &g, &changed, err);
	if (e != TSMS_OK)
		tsms_wipe(codes, (size_t)count * TSMS_BACKUP_SHOWN);
	*replaced = g.replaced;
	return e;
}

/* ---- one user's line */

struct one {
	const char *user;
	unsigned line, second, left;
	bool bad;
};

static void find_user(void *ctx, unsigned line, const char *key, const char *value)
{
	struct one *o = ctx;

	if (strcmp(key, o->user) != 0)
		return;
	if (o->line != 0) {
		if (o->second == 0)
			o->second = line;
		return;
	}
	o->line = line;
	o->bad = !count_hashes(value, &o->left);
}

static void on_two_lines(const char *path, const char *user, unsigned a, unsigned b,
                         char err[TSMS_CONFIG_ERR_MAX])
{
	fail(err,
	     "%s %s: user \"%s\" is on lines %u and %u; fix: keep one (twilio-sms-otp "
	     "backup-codes %s makes a new set on one line)",
	     WHAT, path, user, a, b, user);
}

enum tsms_err tsms_backup_count(const struct tsms_config *cfg, const char *user, unsigned *left,
                                char err[TSMS_CONFIG_ERR_MAX])
{
	struct one o = { .user = user };

	*left = 0;
	if (!configured(cfg, err))
		return TSMS_ERR_CONFIG;
	if (tsms_keyfile_each(cfg->backup_codes_file, WHAT, TSMS_BACKUP_FILE_MAX_BYTES, true,
	                      find_user, &o, err) != TSMS_OK)
		return TSMS_ERR_CONFIG;
	if (o.second != 0) {
		on_two_lines(cfg->backup_codes_file, user, o.line, o.second, err);
		return TSMS_ERR_CONFIG;
	}
	if (o.bad) {
		malformed(cfg->backup_codes_file, user, err);
		return TSMS_ERR_CONFIG;
	}
	*left = o.left;
	return TSMS_OK;
}

static enum tsms_err drop_set(void *ctx, const char *value, char **value_out,
                              char err[TSMS_CONFIG_ERR_MAX])
{
	unsigned *removed = ctx;

	(void)err;
	*value_out = NULL;
	if (value != NULL && !count_hashes(value, removed))
		*removed = 0;
	return TSMS_OK;
}

enum tsms_err tsms_backup_revoke(const struct tsms_config *cfg, const char *user, unsigned *removed,
                                 char err[TSMS_CONFIG_ERR_MAX])
{
	bool changed;

	*removed = 0;
	if (!configured(cfg, err))
		return TSMS_ERR_CONFIG;
	return tsms_keyfile_edit(cfg->backup_codes_file, WHAT, TSMS_BACKUP_FILE_MAX_BYTES, user,
	                         drop_set, removed, &changed, err);
}

/* ---- a login */

struct use {
	const char *path, *user;
	const char *code; /* normalised */
	bool used;
	char *id;
	unsigned left;
};

/* Keeps every hash but the first one code matches. */
static enum tsms_err use_code(void *ctx, const char *value, char **value_out,
                              char err[TSMS_CONFIG_ERR_MAX])
{
	struct use *u = ctx;
	const char *p = value, *h;
	char *out, hash[TSMS_HASH_MAX];
	size_t len, cap, at = 0;
	unsigned n;

	*value_out = NULL;
	if (value == NULL)
		return TSMS_OK; /* no codes: nothing to remove */
	if (!count_hashes(value, &n)) {
		malformed(u->path, u->user, err);
		return TSMS_ERR_CONFIG;
	}
	cap = strlen(value) + 1;
	out = malloc(cap);
	if (out == NULL) {
		fail(err, "out of memory");
		return TSMS_ERR_CONFIG;
	}
	out[0] = '\0';
	while ((h = next_hash(&p, &len)) != NULL) {
		memcpy(hash, h, len);
		hash[len] = '\0';
		if (!u->used && tsms_secret_verify(hash, u->code)) {
			u->used = true;
			tsms_digest_hex(NULL, hash, u->id);
			continue;
		}
		at += (size_t)snprintf(out + at, cap - at, "%s%s", at > 0 ? " " : "", hash);
		u->left++;
	}
	tsms_wipe(hash, sizeof(hash));
	if (!u->used && n > 0 && !tsms_secret_works()) {
		/* no code could be checked: not a wrong code, nothing counts or changes */
		free(out);
		fail(err, "%s %s: cannot check a backup code: out of memory", WHAT, u->path);
		return TSMS_ERR_SYSTEM;
	}
	if (!u->used) { /* the line as it was: no rewrite */
		free(out);
		out = strdup(value);
	} else if (u->left == 0) {
		free(out); /* the last code: the user's line goes */
		return TSMS_OK;
	}
	if (out == NULL) {
		fail(err, "out of memory");
		return TSMS_ERR_CONFIG;
	}
	*value_out = out;
	return TSMS_OK;
}

enum tsms_err tsms_backup_use(const struct tsms_config *cfg, const char *user, const char *answer,
                              bool *used, char id[TSMS_DIGEST_HEX], unsigned *left,
                              char err[TSMS_CONFIG_ERR_MAX])
{
	char code[TSMS_BACKUP_SYMBOLS + 1];
	struct use u = { .path = cfg->backup_codes_file, .user = user, .code = code, .id = id };
	enum tsms_err e;
	bool changed;

	*used = false;
	*left = 0;
	id[0] = '\0';
	if (!configured(cfg, err))
		return TSMS_ERR_CONFIG;
	if (!tsms_backup_normalize(answer, code))
		return TSMS_OK;
	/* a user without codes takes no lock (and creates no lock file) */
	e = tsms_backup_count(cfg, user, left, err);
	if (e != TSMS_OK || *left == 0) {
		tsms_wipe(code, sizeof(code));
		return e;
	}
	*left = 0;
	e = tsms_keyfile_edit(cfg->backup_codes_file, WHAT, TSMS_BACKUP_FILE_MAX_BYTES, user,
	                      use_code, &u, &changed, err);
	tsms_wipe(code, sizeof(code));
	if (e != TSMS_OK || (u.used && !changed)) {
		if (e == TSMS_OK)
			fail(err, "%s %s: the used code could not be removed", WHAT, u.path);
		id[0] = '\0';
		return e == TSMS_ERR_SYSTEM ? e : TSMS_ERR_CONFIG;
	}
	*used = u.used;
	*left = u.left;
	return TSMS_OK;
}

/* ---- the whole file */

struct entry {
	char *user;
	unsigned line, left;
};

struct each {
	struct entry *entries;
	size_t n, cap;
	unsigned bad_line;
	bool nomem;
};

static void each_user(void *ctx, unsigned line, const char *key, const char *value)
{
	struct each *e = ctx;
	unsigned n;

	if (!count_hashes(value, &n)) {
		if (e->bad_line == 0)
			e->bad_line = line;
		return;
	}
	if (e->n == e->cap) {
		size_t cap = e->cap != 0 ? e->cap * 2 : 64;
		struct entry *grown = realloc(e->entries, cap * sizeof(*grown));

		if (grown == NULL) {
			e->nomem = true;
			return;
		}
		e->entries = grown;
		e->cap = cap;
	}
	e->entries[e->n] = (struct entry){ .user = strdup(key), .line = line, .left = n };
	if (e->entries[e->n].user == NULL)
		e->nomem = true;
	else
		e->n++;
}

static int by_user(const void *a, const void *b)
{
	const struct entry *x = *(const struct entry *const *)a,
			   *y = *(const struct entry *const *)b;
	int d = strcmp(x->user, y->user);

	return d != 0 ? d : (x->line > y->line) - (x->line < y->line);
}

/* A user on two lines, which every login refuses; NULL when none. */
static const struct entry *twice(const struct each *e, const struct entry **first, bool *nomem)
{
	const struct entry **sorted = e->n > 0 ? calloc(e->n, sizeof(*sorted)) : NULL;
	const struct entry *found = NULL;

	*nomem = e->n > 0 && sorted == NULL;
	if (sorted == NULL)
		return NULL;
	for (size_t i = 0; i < e->n; i++)
		sorted[i] = &e->entries[i];
	qsort(sorted, e->n, sizeof(*sorted), by_user);
	for (size_t i = 1; i < e->n && found == NULL; i++) {
		if (strcmp(sorted[i - 1]->user, sorted[i]->user) == 0) {
			*first = sorted[i - 1];
			found = sorted[i];
		}
	}
	free(sorted);
	return found;
}

enum tsms_err tsms_backup_each(const struct tsms_config *cfg, tsms_backup_fn fn, void *ctx,
                               char err[TSMS_CONFIG_ERR_MAX])
{
	const struct entry *dup = NULL, *first = NULL;
	enum tsms_err result = TSMS_ERR_CONFIG;
	struct each e = { .entries = NULL };
	bool nomem = false;

	if (!configured(cfg, err))
		return TSMS_ERR_CONFIG;
	if (tsms_keyfile_each(cfg->backup_codes_file, WHAT, TSMS_BACKUP_FILE_MAX_BYTES, true,
	                      each_user, &e, err) != TSMS_OK)
		goto out;
	if (!e.nomem && e.bad_line == 0)
		dup = twice(&e, &first, &nomem);
	if (e.nomem || nomem) {
		fail(err, "out of memory");
	} else if (e.bad_line != 0) {
		fail(err,
		     "%s %s:%u: not \"USER HASH ...\" of backup code hashes; fix: twilio-sms-otp "
		     "backup-codes USER (a new set)",
		     WHAT, cfg->backup_codes_file, e.bad_line);
	} else if (dup != NULL) {
		on_two_lines(cfg->backup_codes_file, dup->user, first->line, dup->line, err);
	} else {
		for (size_t i = 0; i < e.n; i++)
			if (e.entries[i].left > 0)
				fn(ctx, e.entries[i].user, e.entries[i].left);
		result = TSMS_OK;
	}
out:
	for (size_t i = 0; i < e.n; i++)
		free(e.entries[i].user);
	free(e.entries);
	return result;
}
