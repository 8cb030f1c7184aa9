/*
 * Planted bugs that prove the checkers are switched on and their reports fail a run:
 * sanitize.sh builds this with ASan+UBSan, valgrind.sh runs it under memcheck, each with
 * the options its suite uses, and expects a report for every bug and none for "clean".
 *
 * Usage: canary clean|heap-overflow|use-after-free|shift-overflow|leak|uninitialised
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* volatile: the compiler must not see through the planted bugs */
static volatile int sink;

/* the only pointer to the block dies with this frame: a definite leak */
static __attribute__((noinline)) void leak(void)
{
	char *volatile p = malloc(32);

	if (p != NULL)
		p[0] = 1;
	p = NULL;
}

int main(int argc, char **argv)
{
	const char *what = argc > 1 ? argv[1] : "clean";
	char *p;

	if (strcmp(what, "heap-overflow") == 0) {
		p = malloc(8);
		if (p == NULL)
			return 2;
		sink = 8;
		p[sink] = 1;
		free(p);
	} else if (strcmp(what, "use-after-free") == 0) {
		p = malloc(8);
		if (p == NULL)
			return 2;
		free(p);
		sink = p[sink];
	} else if (strcmp(what, "shift-overflow") == 0) {
		/* signed overflow is defined here: the build uses -fno-strict-overflow */
		sink = 0;
		sink = 1 << (32 + sink);
	} else if (strcmp(what, "leak") == 0) {
		leak();
	} else if (strcmp(what, "uninitialised") == 0) {
		p = malloc(4);
		if (p == NULL)
			return 2;
		if (p[sink])
			puts("set");
		free(p);
	} else if (strcmp(what, "clean") != 0) {
		fprintf(stderr, "unknown canary %s\n", what);
		return 2;
	}
	return 0;
}
