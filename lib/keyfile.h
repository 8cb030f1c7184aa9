/* keyfile.h - root-only files of "KEY VALUE" lines, '#' comments: the users
 * file and the backup codes file share their reading and their rewrites */
#ifndef TSMS_KEYFILE_H
#define TSMS_KEYFILE_H

#include <stdbool.h>
#include <stddef.h>

#include "config.h"
#include "error.h"

/* The longest key (a user name) a line can hold. */
#define TSMS_KEYFILE_KEY_MAX 256

/* True when key can be a line's key: 1 to TSMS_KEYFILE_KEY_MAX bytes, no white
 * space or control characters, not starting with '#'. */
bool tsms_keyfile_valid_key(const char *key);

/* One line [p, end) split in place: its key and the rest, its value, blanks
 * around each trimmed. blank: empty or a '#' comment (key and value NULL). */
struct tsms_keyfile_line {
	const char *key, *key_end;
	const char *value, *value_end;
	bool blank;
};

void tsms_keyfile_split(const char *p, const char *end, struct tsms_keyfile_line *l);

/* Called under the file's lock with key's value (the rest of its line, blanks
 * around it trimmed; NULL when no line has key). Sets *value_out to the new
 * value, a string the caller wipes and frees, or to NULL to remove key's line.
 * Returns TSMS_OK, or an error (with err) that leaves the file as it was. */
typedef enum tsms_err (*tsms_keyfile_edit_fn)(void *ctx, const char *value, char **value_out,
                                              char err[TSMS_CONFIG_ERR_MAX]);

/* Changes key's line of the file at path (what names it in messages, e.g.
 * "usersFile"; max_size bounds it). Opened like the config (root's, 0600, no
 * symlink; a missing file is an empty one); serialised by flock on PATH.lock
 * against every other edit (waiting at most TSMS_LOCK_WAIT_MS, lib/lock.h, then
 * failing with "cannot lock PATH.lock: still locked after 5 s"); written to a temp file (root, 0600), fsynced,
 * renamed over path and the directory fsynced, so that a reader sees the old or
 * the new file, whole. Other lines, comments included, are kept; fn sees the
 * first line of key, and later lines of key (which the module refuses) are
 * dropped. *changed tells whether the file was rewritten. */
enum tsms_err tsms_keyfile_edit(const char *path, const char *what, long long max_size,
                                const char *key, tsms_keyfile_edit_fn fn, void *ctx, bool *changed,
                                char err[TSMS_CONFIG_ERR_MAX]);

/* True when nothing is at path (a dangling symlink is something: opening it
 * is refused). */
bool tsms_keyfile_missing(const char *path);

/* Called for each line that is not blank or a comment, in file order. */
typedef void (*tsms_keyfile_fn)(void *ctx, unsigned line, const char *key, const char *value);

/* Reads the whole file (without the lock: a rewrite replaces it whole). A
 * missing file is an empty one when missing_ok. TSMS_OK or TSMS_ERR_CONFIG. */
enum tsms_err tsms_keyfile_each(const char *path, const char *what, long long max_size,
                                bool missing_ok, tsms_keyfile_fn fn, void *ctx,
                                char err[TSMS_CONFIG_ERR_MAX]);

#endif
