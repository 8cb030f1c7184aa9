/*
 * freed_secret.c - an LD_PRELOAD shim for the end-to-end tests: reports every heap block a
 * process hands back to the allocator (free, or realloc moving or shrinking it) while it still
 * holds a secret, i.e. a secret left in freed memory instead of wiped. glibc's allocator only:
 * valgrind and ASan replace it, and this shim with it.
 *
 * Read once, when the shim is initialised:
 *   TSMS_FREED_SECRET_HEX  the secrets, each in hex, separated by commas (at most 8; the
 *                          environment, which programs copy to their heap, never holds a
 *                          secret itself)
 *   TSMS_FREED_CODE        MARKER:N, optional: also report a block holding MARKER followed by
 *                          N ASCII digits (a one-time code the test cannot know in advance,
 *                          sent in a message whose template puts MARKER before it); its
 *                          index is the one after the secrets'
 *   TSMS_FREED_REPORT      a file the shim appends one line to per event:
 *     "found pid=P comm=C size=S at=OFF secret=I caller=OBJ" for each block freed with
 *                          secret I (0, 1, ...) in its malloc_usable_size bytes (caller: the
 *                          object that freed it)
 *     "scanned pid=P comm=C frees=N" when the process exits: it ran, and scanned N blocks
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <fcntl.h>
#include <link.h>
#include <malloc.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* glibc's own allocator, under the names it exports for shims like this one */
extern void __libc_free(void *p);
extern void *__libc_realloc(void *p, size_t size);

#define SECRETS_MAX 8

static char secrets[SECRETS_MAX][256];
static size_t secret_lens[SECRETS_MAX];
static size_t n_secrets;
static const char *report_path;
static unsigned long scanned;
static char code_marker[64];
static size_t code_marker_len, code_digits;

/* One secret in hex from hex up to a ',' or the end; false when it is not hex. */
static int take_secret(const char *hex, size_t n)
{
	char *out = secrets[n_secrets];

	if (n == 0 || n % 2 != 0 || n / 2 > sizeof(secrets[0]) || n_secrets == SECRETS_MAX)
		return 0;
	for (size_t i = 0; i < n / 2; i++) {
		unsigned byte;

		if (sscanf(hex + 2 * i, "%2x", &byte) != 1)
			return 0;
		out[i] = (char)byte;
	}
	secret_lens[n_secrets++] = n / 2;
	return 1;
}

__attribute__((constructor)) static void init(void)
{
	const char *hex = getenv("TSMS_FREED_SECRET_HEX");

	const char *code = getenv("TSMS_FREED_CODE");
	const char *colon = code != NULL ? strrchr(code, ':') : NULL;

	report_path = getenv("TSMS_FREED_REPORT");
	if (colon != NULL && colon > code && (size_t)(colon - code) < sizeof(code_marker) &&
	    sscanf(colon + 1, "%zu", &code_digits) == 1 && code_digits > 0) {
		code_marker_len = (size_t)(colon - code);
		memcpy(code_marker, code, code_marker_len);
	}
	while (hex != NULL && *hex != '\0') {
		const char *comma = strchr(hex, ',');
		size_t n = comma != NULL ? (size_t)(comma - hex) : strlen(hex);

		if (!take_secret(hex, n)) {
			n_secrets =
				0; /* a malformed list scans for nothing: the suite sees no "scanned" */
			return;
		}
		hex = comma != NULL ? comma + 1 : hex + n;
	}
}

static void report(const char *line)
{
	int fd, saved_errno = errno;

	if (report_path != NULL) {
		fd = open(report_path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
		if (fd >= 0) {
			if (write(fd, line, strlen(line)) < 0) {
				/* the suite sees the line missing */
			}
			close(fd);
		}
	}
	errno = saved_errno;
}

/* Where the code marker starts in [p, p + size) followed by code_digits digits, or NULL. */
static const char *find_code(const char *p, size_t size)
{
	const char *end = p + size, *at = p;

	while ((at = memmem(at, (size_t)(end - at), code_marker, code_marker_len)) != NULL) {
		const char *d = at + code_marker_len;
		size_t n = 0;

		while (d + n < end && n < code_digits && d[n] >= '0' && d[n] <= '9')
			n++;
		if (n == code_digits)
			return at;
		at++;
	}
	return NULL;
}

/* Where a secret starts in block p, or -1 (also when there is no secret); *which: its index. */
static long find(void *p, size_t *which)
{
	const char *at;
	size_t size;

	if (p == NULL || (n_secrets == 0 && code_marker_len == 0))
		return -1;
	__atomic_add_fetch(&scanned, 1, __ATOMIC_RELAXED);
	size = malloc_usable_size(p);
	for (size_t i = 0; i < n_secrets; i++) {
		at = memmem(p, size, secrets[i], secret_lens[i]);
		if (at != NULL) {
			*which = i;
			return at - (const char *)p;
		}
	}
	if (code_marker_len > 0 && (at = find_code(p, size)) != NULL) {
		*which = n_secrets;
		return at - (const char *)p;
	}
	return -1;
}

static void found(size_t size, long at, size_t which, const void *pc)
{
	struct dl_find_object dlfo;
	const char *name = "?", *slash;
	char line[512];

	if (_dl_find_object((void *)(uintptr_t)pc, &dlfo) == 0 && dlfo.dlfo_link_map != NULL) {
		name = dlfo.dlfo_link_map->l_name;
		if (name == NULL || name[0] == '\0')
			name = "main";
		else if ((slash = strrchr(name, '/')) != NULL)
			name = slash + 1;
	}
	snprintf(line, sizeof(line), "found pid=%d comm=%s size=%zu at=%ld secret=%zu caller=%s\n",
	         (int)getpid(), program_invocation_short_name, size, at, which, name);
	report(line);
}

void free(void *p)
{
	size_t which = 0;
	long at = find(p, &which);

	if (at >= 0)
		found(malloc_usable_size(p), at, which, __builtin_return_address(0));
	__libc_free(p);
}

/* The old block is freed when realloc moves it, and its tail when it shrinks in place. */
void *realloc(void *p, size_t size)
{
	size_t which = 0;
	long at = find(p, &which);
	size_t old = p != NULL ? malloc_usable_size(p) : 0;
	void *q = __libc_realloc(p, size);
	int freed = q != NULL ? q != p : size == 0; /* NULL for a size: the block stays */
	size_t len = which < n_secrets ? secret_lens[which] : code_marker_len + code_digits;

	if (at >= 0 && (freed || (q == p && (size_t)at + len > size)))
		found(old, at, which, __builtin_return_address(0));
	return q;
}

__attribute__((destructor)) static void finish(void)
{
	char line[256];

	snprintf(line, sizeof(line), "scanned pid=%d comm=%s frees=%lu\n", (int)getpid(),
	         program_invocation_short_name, __atomic_load_n(&scanned, __ATOMIC_RELAXED));
	report(line);
}
