/* backup.h - backup codes: single-use codes for when SMS cannot help
 *
 * A code is 8 symbols of 23456789abcdefghijkmnpqrstuvwxyz (no 0/o, 1/l: 5 bits
 * each, 40 bits in all), shown "k7mq-3xfa". Only Argon2id hashes are kept, in
 * backupCodesFile: one line per user, "USER HASH HASH ...", rewritten whole under
 * its lock (lib/keyfile.h). A used code leaves the file before the login
 * succeeds.
 */
#ifndef TSMS_BACKUP_H
#define TSMS_BACKUP_H

#include <stdbool.h>

#include "config.h"
#include "error.h"
#include "otp.h"

#define TSMS_BACKUP_SYMBOLS 8        /* per code */
#define TSMS_BACKUP_SHOWN 10         /* "xxxx-xxxx" and its NUL */
#define TSMS_BACKUP_COUNT_DEFAULT 10 /* codes per set */
#define TSMS_BACKUP_COUNT_MAX 20
#define TSMS_BACKUP_FEW 3 /* this many left, or fewer: a warning */
#define TSMS_BACKUP_FILE_MAX_BYTES (256LL * 1024 * 1024)

/* Writes answer's code, lower case, without the hyphen, to out when answer
 * looks like a backup code: surrounding white space ignored, one hyphen
 * optional after the fourth symbol, capitals accepted. False otherwise. */
bool tsms_backup_normalize(const char *answer, char out[TSMS_BACKUP_SYMBOLS + 1]);

/* Replaces user's codes with count (1..TSMS_BACKUP_COUNT_MAX) fresh ones,
 * written to codes as shown to people; *replaced: how many the old set had
 * left. TSMS_OK or TSMS_ERR_CONFIG with err. The caller wipes codes. */
enum tsms_err tsms_backup_generate(const struct tsms_config *cfg, const char *user, unsigned count,
                                   char codes[][TSMS_BACKUP_SHOWN], unsigned *replaced,
                                   char err[TSMS_CONFIG_ERR_MAX]);

/* How many codes user has left (0: none, or no file yet). */
enum tsms_err tsms_backup_count(const struct tsms_config *cfg, const char *user, unsigned *left,
                                char err[TSMS_CONFIG_ERR_MAX]);

/* Removes user's codes; *removed: how many were left. */
enum tsms_err tsms_backup_revoke(const struct tsms_config *cfg, const char *user, unsigned *removed,
                                 char err[TSMS_CONFIG_ERR_MAX]);

/* Checks answer against every one of user's codes and, under the file's lock,
 * removes the one it matches before returning: *used true, id names the used
 * code (a digest of its hash, the same on every host with a copy of the file;
 * for the fleet's record, lib/state.h), *left the codes still left. *used
 * false: no code matched, nothing changed. TSMS_ERR_CONFIG when the file is
 * unusable or cannot be rewritten (the code is then not accepted);
 * TSMS_ERR_SYSTEM when a code could not be checked (out of memory): not a wrong
 * code, nothing changed. */
enum tsms_err tsms_backup_use(const struct tsms_config *cfg, const char *user, const char *answer,
                              bool *used, char id[TSMS_DIGEST_HEX], unsigned *left,
                              char err[TSMS_CONFIG_ERR_MAX]);

/* Called for each user of the file with how many codes they have left. */
typedef void (*tsms_backup_fn)(void *ctx, const char *user, unsigned left);

/* Every user with codes, in file order (for `backup-codes --list`). */
enum tsms_err tsms_backup_each(const struct tsms_config *cfg, tsms_backup_fn fn, void *ctx,
                               char err[TSMS_CONFIG_ERR_MAX]);

#endif
