/* fuzz_users.c - libFuzzer target: the users file ("user +E164number" lines).
 * Input: the user name to look up, a newline, then the file's bytes (no
 * newline: the whole input is the name and the file is empty). The bytes are
 * written to a private temp file, since the library reads the file by path.
 * tsms_users_file_lookup, which scans the file in place, must agree with
 * tsms_users_file_each, which reads every line, on the user's number, and
 * refuse the user's malformed or repeated lines as users.h promises. */
#include <fcntl.h>
#include <stdint.h>
#include <unistd.h>

#include "fuzz.h"
#include "users.h"

static char path[4096];

static void remove_file(void)
{
	unlink(path);
}

/* Replaces the temp file's content with size bytes of data. The file is made
 * once per process in $TMPDIR (smoke.sh points it at a directory it removes,
 * since libFuzzer's workers may end without running atexit), owner root when
 * run as root and mode 0600, as the library demands. */
static void write_file(const uint8_t *data, size_t size)
{
	int fd;

	if (path[0] == '\0') {
		const char *dir = getenv("TMPDIR");

		snprintf(path, sizeof(path), "%s/tsms-fuzz-users.XXXXXX",
		         dir != NULL && dir[0] == '/' ? dir : "/tmp");
		fd = mkstemp(path);
		FUZZ_CHECK(fd >= 0);
		close(fd);
		atexit(remove_file);
	}
	fd = open(path, O_WRONLY | O_TRUNC | O_CLOEXEC);
	FUZZ_CHECK(fd >= 0);
	FUZZ_CHECK(size == 0 || write(fd, data, size) == (ssize_t)size);
	close(fd);
}

/* What tsms_users_file_each reported about the looked-up user. */
struct seen {
	const char *user;
	unsigned lines; /* lines naming the user, well-formed or not */
	bool ok;        /* the last of them was well-formed */
	char phone[TSMS_PHONE_MAX];
};

static void on_line(void *ctx, unsigned line, const char *user, const char *phone,
                    const char *problem)
{
	struct seen *s = ctx;

	(void)line;
	FUZZ_CHECK(user != NULL && phone != NULL);
	if (problem == NULL) {
		FUZZ_CHECK(fuzz_is_e164(phone));
	} else {
		FUZZ_CHECK(phone[0] == '\0' && problem[0] != '\0' && !fuzz_has_control(problem));
	}
	if (strcmp(user, s->user) == 0) {
		s->lines++;
		s->ok = problem == NULL;
		snprintf(s->phone, sizeof(s->phone), "%s", phone);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const uint8_t *nl = memchr(data, '\n', size);
	size_t name_len = nl != NULL ? (size_t)(nl - data) : size;
	size_t skip = nl != NULL ? name_len + 1 : size;
	char err[TSMS_CONFIG_ERR_MAX];
	struct {
		char phone[TSMS_PHONE_MAX];
		char canary[16];
	} g;
	struct seen seen = { 0 };
	enum tsms_err e;
	char *user = fuzz_strndup(data, name_len);
	bool root = geteuid() == 0;

	write_file(data + skip, size - skip);

	memset(&g, 'X', sizeof(g));
	memset(err, 'X', sizeof(err));
	e = tsms_users_file_lookup(path, user, g.phone, err);
	FUZZ_CHECK(g.canary[0] == 'X' && fuzz_terminated(g.phone, sizeof(g.phone)));
	if (e == TSMS_OK) {
		FUZZ_CHECK(g.phone[0] == '\0' || fuzz_is_e164(g.phone));
	} else {
		FUZZ_CHECK(e == TSMS_ERR_CONFIG && g.phone[0] == '\0');
		FUZZ_CHECK(fuzz_terminated(err, sizeof(err)) && err[0] != '\0');
		FUZZ_CHECK(!fuzz_has_control(err));
	}

	seen.user = user;
	memset(err, 'X', sizeof(err));
	FUZZ_CHECK(tsms_users_file_each(path, false, on_line, &seen, err) == TSMS_OK || !root);

	/* the two readers agree, for names the file can hold (each() reports names
	 * cut at 256 bytes and at a NUL byte, so those are left out) */
	if (root && tsms_users_valid_name(user) && strlen(user) < 256 &&
	    memchr(data + skip, '\0', size - skip) == NULL) {
		if (seen.lines == 0) {
			FUZZ_CHECK(e == TSMS_OK && g.phone[0] == '\0');
		} else if (seen.lines == 1 && seen.ok) {
			FUZZ_CHECK(e == TSMS_OK && strcmp(g.phone, seen.phone) == 0);
		} else {
			/* the user's line is malformed, or the user is there twice */
			FUZZ_CHECK(e == TSMS_ERR_CONFIG);
		}
	}
	free(user);
	return 0;
}
