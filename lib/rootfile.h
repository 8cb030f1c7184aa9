/* rootfile.h - the files only root may change: opened and checked on the
 * descriptor, written whole */
#ifndef TSMS_ROOTFILE_H
#define TSMS_ROOTFILE_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/stat.h>

#include "config.h"

/* Opens path for reading with O_NOFOLLOW and checks the open file: a regular
 * file owned by root, no group or other permission bits, at most max_size
 * bytes. Returns the descriptor (st filled), or -1 with "WHAT PATH: problem;
 * fix: ..." in err. Shared by every file that holds secrets or phone numbers. */
int tsms_open_private(const char *path, const char *what, long long max_size, struct stat *st,
                      char err[TSMS_CONFIG_ERR_MAX]);

/* The same for files that decide what is trusted (CA bundles): readable by
 * anyone, but a regular file owned by root, not writable by group or others. */
int tsms_open_trusted(const char *path, const char *what, long long max_size, struct stat *st,
                      char err[TSMS_CONFIG_ERR_MAX]);

/* Writes all len bytes of buf to fd (a file, or a socket), retrying short
 * writes and EINTR (a short write is how a caller's RLIMIT_FSIZE shows first).
 * False with errno set. */
bool tsms_write_all(int fd, const void *buf, size_t len);

#endif
