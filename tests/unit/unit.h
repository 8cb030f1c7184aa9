/* unit.h - what every cmocka unit test of lib/ shares: the cmocka includes,
 * assertions cmocka lacks, and reading fixtures from $TSMS_FIXTURES
 * (default "tests/fixtures", relative to the repository root). */
#ifndef TSMS_UNIT_H
#define TSMS_UNIT_H

/* mkdtemp, fchown, nftw, mkfifo ...: before any system header */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE 1
#endif

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#define TSMS_FIXTURES_DEFAULT "tests/fixtures"

static inline int unit_remove_entry(const char *path, const struct stat *st, int flag,
                                    struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(path);
}

/* Removes the directory tree at path (a test's scratch directory), not following
 * symlinks. */
static inline void unit_remove_tree(const char *path)
{
	nftw(path, unit_remove_entry, 16, FTW_DEPTH | FTW_PHYS);
}

/* Fails the test, showing both strings, unless needle occurs in hay. */
#define assert_contains(hay, needle) assert_contains_at((hay), (needle), __FILE__, __LINE__)
/* Fails the test unless needle does not occur in hay (NULL hay passes). */
#define assert_not_contains(hay, needle) assert_not_contains_at((hay), (needle), __FILE__, __LINE__)
/* Fails the test unless s has no byte < 0x20 and no 0x7f. */
#define assert_no_control(s) assert_no_control_at((s), __FILE__, __LINE__)

static inline void assert_contains_at(const char *hay, const char *needle, const char *file,
                                      int line)
{
	if (hay == NULL || strstr(hay, needle) == NULL) {
		print_error("%s:%d: expected \"%s\" to contain \"%s\"\n", file, line,
		            hay != NULL ? hay : "(null)", needle);
		_fail(file, line);
	}
}

static inline void assert_not_contains_at(const char *hay, const char *needle, const char *file,
                                          int line)
{
	if (hay != NULL && strstr(hay, needle) != NULL) {
		print_error("%s:%d: expected \"%s\" not to contain \"%s\"\n", file, line, hay,
		            needle);
		_fail(file, line);
	}
}

static inline void assert_no_control_at(const char *s, const char *file, int line)
{
	if (s == NULL) {
		print_error("%s:%d: string is NULL\n", file, line);
		_fail(file, line);
		return;
	}
	for (const unsigned char *p = (const unsigned char *)s; *p != '\0'; p++) {
		if (*p < 0x20 || *p == 0x7f) {
			print_error("%s:%d: control byte 0x%02x at offset %zu in \"%s\"\n", file,
			            line, *p, (size_t)(p - (const unsigned char *)s), s);
			_fail(file, line);
		}
	}
}

/* Path of fixture name in $TSMS_FIXTURES, written into buf. */
static inline const char *fixture_path(const char *name, char *buf, size_t buflen)
{
	const char *dir = getenv("TSMS_FIXTURES");

	if (dir == NULL || dir[0] == '\0')
		dir = TSMS_FIXTURES_DEFAULT;
	snprintf(buf, buflen, "%s/%s", dir, name);
	return buf;
}

/* Reads fixture name into a new buffer of exactly its size plus one NUL that
 * is NOT counted in *len (so a reader that stops at len never needs it, and
 * callers may also use the buffer as a string). Fails the test when the
 * fixture cannot be read. The caller frees the buffer. */
static inline char *fixture_read_at(const char *name, size_t *len, const char *file, int line)
{
	char path[4096];
	struct stat st;
	char *buf = NULL;
	FILE *f;

	fixture_path(name, path, sizeof(path));
	f = fopen(path, "rb");
	if (f == NULL || fstat(fileno(f), &st) != 0) {
		print_error("%s:%d: cannot read fixture %s: %s (set TSMS_FIXTURES to the "
		            "fixtures directory)\n",
		            file, line, path, strerror(errno));
		if (f != NULL)
			fclose(f);
		_fail(file, line);
		return NULL;
	}
	buf = malloc((size_t)st.st_size + 1);
	if (buf == NULL || fread(buf, 1, (size_t)st.st_size, f) != (size_t)st.st_size) {
		print_error("%s:%d: short read of fixture %s\n", file, line, path);
		fclose(f);
		free(buf);
		_fail(file, line);
		return NULL;
	}
	fclose(f);
	buf[st.st_size] = '\0';
	*len = (size_t)st.st_size;
	return buf;
}
#define fixture_read(name, len) fixture_read_at((name), (len), __FILE__, __LINE__)

/* Copies len bytes of s into a new buffer of exactly len bytes, without a
 * terminating NUL, to catch readers that run past len. The caller frees it. */
static inline char *unterminated_copy(const char *s, size_t len)
{
	char *buf = malloc(len > 0 ? len : 1);

	assert_non_null(buf);
	memcpy(buf, s, len);
	return buf;
}

#endif
