/* users.h - the users file: one "user +E164number" per line, '#' comments */
#ifndef TSMS_USERS_H
#define TSMS_USERS_H

#include <stdbool.h>
#include <stddef.h>

#include "config.h"
#include "error.h"
#include "lookup.h"
#include "phone.h"

/* A users file larger than this is refused (a million users take about 30 MB). */
#define TSMS_USERS_FILE_MAX_BYTES (512LL * 1024 * 1024)

/* Finds user in the users file at path (opened like the config: root's, 0600,
 * no symlink) by scanning it in place, without parsing or allocating per line,
 * so that very large files stay cheap per login. Returns TSMS_OK with phone set,
 * or phone "" when user is not in the file; TSMS_ERR_CONFIG with the problem and
 * fix in err when the file is unusable, user's line is malformed or user is in
 * the file twice. */
enum tsms_err tsms_users_file_lookup(const char *path, const char *user, char phone[TSMS_PHONE_MAX],
                                     char err[TSMS_CONFIG_ERR_MAX]);

/* The source of lib/lookup.h for the local files: user's number from the
 * config's users object or its usersFile, with num->source telling which
 * (TSMS_SOURCE_NONE when neither has user). TSMS_ERR_CONFIG with err, for user
 * only: when user's entry in users is malformed, user's line in the file is
 * malformed or repeated, or user is in both places; and, for a user who is not
 * in users, when the file does not exist or is unusable (what it says of user
 * is unknown: never an unmapped user). A user of users is not refused for an
 * unusable file, which could only have refused them. */
enum tsms_err tsms_users_find(const struct tsms_config *cfg, const char *user,
                              struct tsms_number *num, char err[TSMS_CONFIG_ERR_MAX]);

/* Called for each line that is not blank or a comment: user and the normalised
 * phone, or problem (then phone is "") for a malformed line. */
typedef void (*tsms_users_fn)(void *ctx, unsigned line, const char *user, const char *phone,
                              const char *problem);

/* Reads the whole file, for the admin command. A missing file is an empty one
 * when missing_ok. Returns TSMS_OK or TSMS_ERR_CONFIG with err. */
enum tsms_err tsms_users_file_each(const char *path, bool missing_ok, tsms_users_fn fn, void *ctx,
                                   char err[TSMS_CONFIG_ERR_MAX]);

/* Sets user's number (phone E.164) or, with phone NULL, removes user. Other
 * lines, comments included, are kept. Serialised by flock on PATH.lock against
 * other admins, written to a temp file (root, 0600), fsynced and renamed over
 * path, so that a module reading at the same moment sees the old or the new
 * file, whole. *changed tells whether anything changed. */
enum tsms_err tsms_users_file_update(const char *path, const char *user, const char *phone,
                                     bool *changed, char err[TSMS_CONFIG_ERR_MAX]);

/* True when name can be a users file entry: 1 to 256 bytes, no white space or
 * control characters, not starting with '#'. */
bool tsms_users_valid_name(const char *name);

#endif
