/*
 * Loads a PAM module the way libpam does (dlopen, RTLD_NOW: every symbol it needs
 * must resolve) and checks that it provides the entry points the module is
 * registered for: auth, and session for the graces' hook. exports.sh checks that nothing else is exported.
 *
 * Usage: exports MODULE.so    prints PASS:/FAIL: lines, exits 1 on any FAIL
 */
#include <dlfcn.h>
#include <stdio.h>

static const char *const entry_points[] = { "pam_sm_authenticate", "pam_sm_setcred",
	                                     "pam_sm_open_session", "pam_sm_close_session" };

int main(int argc, char **argv)
{
	void *module;
	size_t i;
	int failed = 0;

	if (argc != 2) {
		fprintf(stderr, "usage: %s MODULE.so\n", argv[0]);
		return 2;
	}
	/* a path without '/' would be searched in the library path instead */
	module = dlopen(argv[1], RTLD_NOW | RTLD_LOCAL);
	if (module == NULL) {
		printf("FAIL: dlopen RTLD_NOW: %s\n", dlerror());
		return 1;
	}
	printf("PASS: dlopen RTLD_NOW\n");
	for (i = 0; i < sizeof(entry_points) / sizeof(entry_points[0]); i++) {
		dlerror();
		if (dlsym(module, entry_points[i]) != NULL) {
			printf("PASS: resolves %s\n", entry_points[i]);
		} else {
			const char *why = dlerror();

			printf("FAIL: resolves %s: %s\n", entry_points[i],
			       why ? why : "NULL symbol");
			failed = 1;
		}
	}
	if (dlclose(module) != 0) {
		printf("FAIL: dlclose: %s\n", dlerror());
		failed = 1;
	}
	return failed;
}
