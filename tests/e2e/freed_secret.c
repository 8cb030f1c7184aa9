/*
 * freed_secret.c - an LD_PRELOAD shim for the end-to-end tests: reports every heap block a
 * process hands back to the allocator (free, or realloc moving or shrinking it) while it still
 * holds a secret, i.e. a secret left in freed memory instead of wiped. glibc's allocator only:
 * valgrind and ASan replace it, and this shim with it.
 *
 * Read once, when the shim is initialised:
 *   TSMS_FREED_SECRET_HEX  the secret, in hex (the environment, which programs copy to their
 *                          heap, never holds the secret itself)
 *   TSMS_FREED_REPORT      a file the shim appends one line to per event:
 *     "found pid=P comm=C size=S at=OFF caller=OBJ" for each block freed with the secret in
 *                          its malloc_usable_size bytes (caller: the object that freed it)
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

static char secret[256];
static size_t secret_len;
static const char *report_path;
static unsigned long scanned;

__attribute__((constructor)) static void init(void)
{
	const char *hex = getenv("TSMS_FREED_SECRET_HEX");
	size_t n = hex != NULL ? strlen(hex) : 0;

	report_path = getenv("TSMS_FREED_REPORT");
	if (n % 2 != 0 || n / 2 > sizeof(secret))
		n = 0;
	for (size_t i = 0; i < n / 2; i++) {
		unsigned byte;

		if (sscanf(hex + 2 * i, "%2x", &byte) != 1)
			return;
		secret[i] = (char)byte;
	}
	secret_len = n / 2;
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

/* Where the secret starts in block p, or -1 (also when there is no secret). */
static long find(void *p)
{
	const char *at;
	size_t size;

	if (p == NULL || secret_len == 0)
		return -1;
	__atomic_add_fetch(&scanned, 1, __ATOMIC_RELAXED);
	size = malloc_usable_size(p);
	at = memmem(p, size, secret, secret_len);
	return at != NULL ? at - (const char *)p : -1;
}

static void found(size_t size, long at, const void *pc)
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
	snprintf(line, sizeof(line), "found pid=%d comm=%s size=%zu at=%ld caller=%s\n",
	         (int)getpid(), program_invocation_short_name, size, at, name);
	report(line);
}

void free(void *p)
{
	long at = find(p);

	if (at >= 0)
		found(malloc_usable_size(p), at, __builtin_return_address(0));
	__libc_free(p);
}

/* The old block is freed when realloc moves it, and its tail when it shrinks in place. */
void *realloc(void *p, size_t size)
{
	long at = find(p);
	size_t old = p != NULL ? malloc_usable_size(p) : 0;
	void *q = __libc_realloc(p, size);
	int freed = q != NULL ? q != p : size == 0; /* NULL for a size: the block stays */

	if (at >= 0 && (freed || (q == p && (size_t)at + secret_len > size)))
		found(old, at, __builtin_return_address(0));
	return q;
}

__attribute__((destructor)) static void finish(void)
{
	char line[256];

	snprintf(line, sizeof(line), "scanned pid=%d comm=%s frees=%lu\n", (int)getpid(),
	         program_invocation_short_name, __atomic_load_n(&scanned, __ATOMIC_RELAXED));
	report(line);
}
