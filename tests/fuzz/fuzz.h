/* fuzz.h - invariant checks shared by the libFuzzer targets.
 * A violated invariant aborts, which libFuzzer reports as a crash and saves. */
#ifndef TSMS_FUZZ_H
#define TSMS_FUZZ_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define FUZZ_CHECK(cond)                                                                       \
	do {                                                                                   \
		if (!(cond)) {                                                                 \
			fprintf(stderr, "%s:%d: invariant violated: %s\n", __FILE__, __LINE__, \
			        #cond);                                                        \
			abort();                                                               \
		}                                                                              \
	} while (0)

/* True when buf (size bytes) holds a NUL: a string that cannot run off its array. */
static inline bool fuzz_terminated(const char *buf, size_t size)
{
	return memchr(buf, '\0', size) != NULL;
}

/* True when s holds a control character as lib/log.c defines them (< 0x20, 0x7f). */
static inline bool fuzz_has_control(const char *s)
{
	for (; *s != '\0'; s++) {
		if ((unsigned char)*s < 0x20 || *s == 0x7f)
			return true;
	}
	return false;
}

/* Length of the first maximal run of ASCII digits in s whose length is in
 * [min, max], or 0 when there is none. */
static inline size_t fuzz_digit_run(const char *s, size_t min, size_t max)
{
	while (*s != '\0') {
		size_t n = strspn(s, "0123456789");

		if (n >= min && n <= max)
			return n;
		s += n > 0 ? n : 1;
	}
	return 0;
}

/* True when s matches ^\+[1-9][0-9]{6,14}$ (E.164 as the module accepts it). */
static inline bool fuzz_is_e164(const char *s)
{
	size_t n;

	if (s[0] != '+' || s[1] < '1' || s[1] > '9')
		return false;
	n = strspn(s + 1, "0123456789");
	return s[1 + n] == '\0' && n >= 7 && n <= 15;
}

/* A NUL-terminated copy of data (size bytes); the caller frees it. */
static inline char *fuzz_strndup(const unsigned char *data, size_t size)
{
	char *s = malloc(size + 1);

	if (s == NULL)
		abort();
	memcpy(s, data, size);
	s[size] = '\0';
	return s;
}

#endif
