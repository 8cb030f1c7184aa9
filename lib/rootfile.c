/* rootfile.c - the files only root may change: opened and checked on the
 * descriptor, written whole */
#include "rootfile.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "log.h"

/* "problem; fix: ..." into err, sanitised: it quotes config text */
#define fail(err, ...) tsms_format_clean((err), TSMS_CONFIG_ERR_MAX, __VA_ARGS__)

/* Opens path read-only with O_NOFOLLOW and checks the open descriptor (not the
 * path: no race with a rename): a regular file owned by root, none of the
 * forbidden mode bits, at most max_size bytes. Returns the descriptor, or -1
 * with the problem and its fix (chmod mode_fix) in err. */
static int open_root_file(const char *path, const char *what, long long max_size, mode_t forbidden,
                          const char *mode_fix, struct stat *st, char err[TSMS_CONFIG_ERR_MAX])
{
	int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);

	if (fd < 0) {
		if (errno == ELOOP)
			fail(err, "%s %s: is a symbolic link, refused; fix: name the real file",
			     what, path);
		else
			fail(err, "%s %s: cannot open: %s; fix: create it (owner root, mode %s)",
			     what, path, strerror(errno), mode_fix);
		return -1;
	}
	if (fstat(fd, st) != 0) {
		fail(err, "%s %s: cannot stat: %s", what, path, strerror(errno));
	} else if (!S_ISREG(st->st_mode)) {
		fail(err, "%s %s: not a regular file; fix: name the file itself", what, path);
	} else if (st->st_uid != 0) {
		fail(err, "%s %s: owned by uid %u, not root; fix: chown root:root %s", what, path,
		     (unsigned)st->st_uid, path);
	} else if ((st->st_mode & forbidden) != 0) {
		fail(err, "%s %s: mode %04o gives group or others %s; fix: chmod %s %s", what, path,
		     (unsigned)(st->st_mode & 07777), forbidden == 077 ? "access" : "write",
		     mode_fix, path);
	} else if (st->st_size > max_size) {
		fail(err,
		     "%s %s: %lld bytes, larger than the %lld allowed; fix: name the right file",
		     what, path, (long long)st->st_size, max_size);
	} else {
		return fd;
	}
	close(fd);
	return -1;
}

int tsms_open_private(const char *path, const char *what, long long max_size, struct stat *st,
                      char err[TSMS_CONFIG_ERR_MAX])
{
	return open_root_file(path, what, max_size, 077, "600", st, err);
}

int tsms_open_trusted(const char *path, const char *what, long long max_size, struct stat *st,
                      char err[TSMS_CONFIG_ERR_MAX])
{
	return open_root_file(path, what, max_size, 022, "644", st, err);
}

bool tsms_write_all(int fd, const void *buf, size_t len)
{
	const char *p = buf;

	while (len > 0) {
		ssize_t n = write(fd, p, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			if (n == 0)
				errno = EIO;
			return false;
		}
		p += n;
		len -= (size_t)n;
	}
	return true;
}
