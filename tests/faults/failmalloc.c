/*
 * failmalloc.c - an LD_PRELOAD shim for tests/faults/run_faults.py: makes the Nth
 * memory allocation of a process fail (malloc, calloc, realloc return NULL with
 * errno ENOMEM), the way SQLite's test harness walks its allocation failures.
 * strdup and strndup are implemented here on malloc's path, so that the code that
 * asked for the copy is the caller seen, not libc's strdup.
 *
 * An allocation's caller is the object (the program, a library, the module) whose code
 * called malloc. Nothing is counted before the module's first own allocation (the
 * caller's file name contains TSMS_FAILMALLOC_OBJECT); from then on, by scope.
 *
 * Read once, when the shim is initialised:
 *   TSMS_FAILMALLOC_N        the counted allocation to fail, 1 the first; 0 or unset:
 *                            count only
 *   TSMS_FAILMALLOC_OBJECT   a substring of the module's file name (pam_twilio_sms)
 *   TSMS_FAILMALLOC_SCOPE    "after" (default): every allocation counts;
 *                            "module": only the module's own;
 *                            "object:NAME": only those whose caller's file name (its
 *                            base name; "main" for the program) contains NAME
 *   TSMS_FAILMALLOC_PROCESS  "main" (default): the process the shim was loaded into
 *                            fails its Nth, its forked children only count;
 *                            "child": each forked child counts from its fork and fails
 *                            its Nth, the main process only counts
 *   TSMS_FAILMALLOC_REPORT   a file the shim appends one line to per event:
 *     "fail n=N size=S pid=P child=0|1 in_module=0|1 frames=OBJ:SYM+OFF|..."
 *                            when it fails one (in_module: a frame of the stack lies in
 *                            the module, i.e. the module was running)
 *     "count pid=P main=A child=B" when the main process exits: the allocations that
 *                            scope counted, in it and in all its forked children
 *     "objects pid=P main|child NAME=C ..." then: every allocation from the module's first
 *                            one on, by caller (the children's kept in memory shared
 *                            across fork: a child ends with _exit)
 *     "crash sig=S pid=P child=0|1 frames=..." when a process dies of SIGSEGV, SIGBUS,
 *                            SIGABRT, SIGILL or SIGFPE (the shim's handler writes it,
 *                            then the signal kills the process as it would have)
 *
 * Thread-safe: the counters are atomic; allocations the shim makes itself (while it
 * writes a report line) pass through uncounted.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <dlfcn.h>
#include <errno.h>
#include <execinfo.h>
#include <fcntl.h>
#include <link.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

/* glibc's own allocator, under the names it exports for shims like this one */
extern void *__libc_malloc(size_t size);
extern void *__libc_calloc(size_t n, size_t size);
extern void *__libc_realloc(void *p, size_t size);

#define MAX_OBJECTS 64
#define NAME_MAX_LEN 48

enum scope { SCOPE_AFTER, SCOPE_MODULE, SCOPE_OBJECT };

/* One caller object: its link map (the key), base name, allocations, what it is. */
struct tally {
	const void *map;
	char name[NAME_MAX_LEN];
	unsigned long n;
	int is_module;
	int in_scope; /* SCOPE_OBJECT: its name contains the one asked for */
	int used;     /* 0 free, 1 being filled, 2 ready */
};

struct shared {
	unsigned long child_counted;
	struct tally child[MAX_OBJECTS];
};

static int ready;             /* the constructor has read the environment */
static unsigned long fail_at; /* 0: count only */
static enum scope scope = SCOPE_AFTER;
static int fail_in_child;
static const char *module_name = "pam_twilio_sms";
static const char *scope_object = "";
static const char *report_path;
static struct shared *shared;
static struct tally main_tally[MAX_OBJECTS];
static int in_child; /* set in a forked child */
static int started;  /* the module made its first own allocation */
static unsigned long count;
static __thread int busy __attribute__((tls_model("initial-exec")));

static void on_crash(int sig);

static void after_fork_child(void)
{
	in_child = 1;
	__atomic_store_n(&count, 0, __ATOMIC_SEQ_CST);
}

__attribute__((constructor(101))) static void init(void)
{
	const char *v;
	void *frames[4];

	busy = 1;
	v = getenv("TSMS_FAILMALLOC_N");
	fail_at = v != NULL ? strtoul(v, NULL, 10) : 0;
	v = getenv("TSMS_FAILMALLOC_SCOPE");
	if (v != NULL && strcmp(v, "module") == 0) {
		scope = SCOPE_MODULE;
	} else if (v != NULL && strncmp(v, "object:", 7) == 0) {
		scope = SCOPE_OBJECT;
		scope_object = v + 7;
	}
	v = getenv("TSMS_FAILMALLOC_PROCESS");
	fail_in_child = v != NULL && strcmp(v, "child") == 0;
	v = getenv("TSMS_FAILMALLOC_OBJECT");
	if (v != NULL && v[0] != '\0')
		module_name = v;
	report_path = getenv("TSMS_FAILMALLOC_REPORT");
	shared = mmap(NULL, sizeof(*shared), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS,
	              -1, 0);
	if (shared == MAP_FAILED)
		shared = NULL;
	pthread_atfork(NULL, NULL, after_fork_child);
	if (report_path != NULL) {
		struct sigaction sa;

		memset(&sa, 0, sizeof(sa));
		sa.sa_handler = on_crash;
		sa.sa_flags = SA_RESETHAND | SA_NODEFER;
		for (int i = 0; i < 5; i++)
			sigaction((int[]){ SIGSEGV, SIGBUS, SIGABRT, SIGILL, SIGFPE }[i], &sa, NULL);
	}
	backtrace(frames, 4); /* loads libgcc_s now, not inside a failing allocation */
	busy = 0;
	__atomic_store_n(&ready, 1, __ATOMIC_RELEASE);
}

/* The tally of the object whose code is at pc (NULL when the table is full). The
 * name is learnt once per object (_dl_find_object: no lock, no allocation). */
static struct tally *caller_of(const void *pc)
{
	struct tally *table = in_child && shared != NULL ? shared->child : main_tally;
	struct dl_find_object dlfo;
	const void *map = NULL;
	const char *name = "?", *slash;

	if (_dl_find_object((void *)(uintptr_t)pc, &dlfo) == 0 && dlfo.dlfo_link_map != NULL) {
		map = dlfo.dlfo_link_map;
		name = dlfo.dlfo_link_map->l_name;
		if (name == NULL || name[0] == '\0')
			name = "main";
		else if ((slash = strrchr(name, '/')) != NULL)
			name = slash + 1;
	}
	for (int i = 0; i < MAX_OBJECTS; i++) {
		struct tally *t = &table[i];
		int state = __atomic_load_n(&t->used, __ATOMIC_ACQUIRE), free_slot = 0;

		if (state == 2 && t->map == map)
			return t;
		if (state == 0 &&
		    __atomic_compare_exchange_n(&t->used, &free_slot, 1, 0, __ATOMIC_ACQ_REL,
		                                __ATOMIC_ACQUIRE)) {
			t->map = map;
			snprintf(t->name, sizeof(t->name), "%s", name);
			t->is_module = strstr(name, module_name) != NULL;
			t->in_scope = scope == SCOPE_OBJECT && strstr(t->name, scope_object) != NULL;
			__atomic_store_n(&t->used, 2, __ATOMIC_RELEASE);
			return t;
		}
		while (__atomic_load_n(&t->used, __ATOMIC_ACQUIRE) == 1)
			; /* another thread is naming it */
		if (t->map == map)
			return t;
	}
	return NULL;
}

static void report(const char *line)
{
	int fd;

	if (report_path == NULL)
		return;
	fd = open(report_path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
	if (fd < 0)
		return;
	if (write(fd, line, strlen(line)) < 0) {
		/* nothing to do: the suite sees the line missing */
	}
	close(fd);
}

static void report_objects(const char *which, const struct tally *table)
{
	char line[4096];
	size_t len = (size_t)snprintf(line, sizeof(line), "objects pid=%d %s", (int)getpid(), which);

	for (int i = 0; i < MAX_OBJECTS && len < sizeof(line) - NAME_MAX_LEN - 24; i++)
		if (__atomic_load_n(&table[i].used, __ATOMIC_ACQUIRE) == 2 && table[i].n > 0)
			len += (size_t)snprintf(line + len, sizeof(line) - len, " %s=%lu",
			                        table[i].name, table[i].n);
	snprintf(line + len, sizeof(line) - len, "\n");
	report(line);
}

__attribute__((destructor)) static void finish(void)
{
	char line[128];

	if (!__atomic_load_n(&ready, __ATOMIC_ACQUIRE) || in_child)
		return;
	busy = 1;
	snprintf(line, sizeof(line), "count pid=%d main=%lu child=%lu\n", (int)getpid(),
	         __atomic_load_n(&count, __ATOMIC_SEQ_CST),
	         shared != NULL ? __atomic_load_n(&shared->child_counted, __ATOMIC_SEQ_CST) : 0);
	report(line);
	report_objects("main", main_tally);
	if (shared != NULL)
		report_objects("child", shared->child);
	busy = 0;
}

/* The stack as "OBJ:SYM+OFF|..." after line[0..len), then a newline. */
static void append_frames(char *line, size_t size, size_t len, void *const *frames, int depth)
{
	for (int i = 1; i < depth && len < size - 200; i++) {
		Dl_info info;
		const char *obj = "?", *sym = "?", *slash;
		uintptr_t off = 0;

		if (dladdr(frames[i], &info) != 0) {
			obj = info.dli_fname != NULL ? info.dli_fname : "?";
			if ((slash = strrchr(obj, '/')) != NULL)
				obj = slash + 1;
			if (info.dli_sname != NULL) {
				sym = info.dli_sname;
				off = (uintptr_t)frames[i] - (uintptr_t)info.dli_saddr;
			} else {
				off = (uintptr_t)frames[i] - (uintptr_t)info.dli_fbase;
			}
		}
		len += (size_t)snprintf(line + len, size - len, "%s%s:%s+0x%lx", i > 1 ? "|" : "",
		                        obj, sym, (unsigned long)off);
	}
	snprintf(line + len, size - len, "\n");
}

/* One report line for the allocation that fails: the stack as objects and symbols. */
static void report_failure(unsigned long n, size_t size)
{
	char line[4096];
	void *frames[32];
	int depth, module = 0;
	size_t len;

	depth = backtrace(frames, 32);
	for (int i = 0; i < depth; i++) {
		const struct tally *t = caller_of(frames[i]);

		module |= t != NULL && t->is_module;
	}
	len = (size_t)snprintf(line, sizeof(line),
	                       "fail n=%lu size=%zu pid=%d child=%d in_module=%d frames=", n, size,
	                       (int)getpid(), in_child, module);
	append_frames(line, sizeof(line), len, frames, depth);
	report(line);
}

/* A crash (after a failed allocation, or not): "crash sig=S pid=P child=0|1 frames=...",
 * then the signal again with its default action, so that the process dies of it. */
static void on_crash(int sig)
{
	char line[4096];
	void *frames[32];
	int depth;
	size_t len;

	busy = 1;
	depth = backtrace(frames, 32);
	len = (size_t)snprintf(line, sizeof(line), "crash sig=%d pid=%d child=%d frames=", sig,
	                       (int)getpid(), in_child);
	append_frames(line, sizeof(line), len, frames, depth);
	report(line);
	raise(sig); /* SA_RESETHAND: the default action now */
}

/* Counts the allocation that caller asks for; true when it must fail. */
static int must_fail(const void *caller, size_t size)
{
	struct tally *t;
	unsigned long n;

	if (!__atomic_load_n(&ready, __ATOMIC_ACQUIRE) || busy)
		return 0;
	busy = 1; /* snprintf of a new object's name must not come back here */
	t = caller_of(caller);
	busy = 0;
	if (!__atomic_load_n(&started, __ATOMIC_ACQUIRE)) {
		if (t == NULL || !t->is_module)
			return 0;
		__atomic_store_n(&started, 1, __ATOMIC_RELEASE);
	}
	if (t != NULL)
		__atomic_add_fetch(&t->n, 1, __ATOMIC_RELAXED);
	if ((scope == SCOPE_MODULE && (t == NULL || !t->is_module)) ||
	    (scope == SCOPE_OBJECT && (t == NULL || !t->in_scope)))
		return 0;
	n = __atomic_add_fetch(&count, 1, __ATOMIC_SEQ_CST);
	if (in_child && shared != NULL)
		__atomic_add_fetch(&shared->child_counted, 1, __ATOMIC_SEQ_CST);
	if (fail_at == 0 || n != fail_at || fail_in_child != in_child)
		return 0;
	busy = 1;
	report_failure(n, size);
	busy = 0;
	return 1;
}

static void *do_malloc(size_t size, const void *caller)
{
	if (must_fail(caller, size)) {
		errno = ENOMEM;
		return NULL;
	}
	return __libc_malloc(size);
}

void *malloc(size_t size)
{
	return do_malloc(size, __builtin_return_address(0));
}

void *calloc(size_t n, size_t size)
{
	if (must_fail(__builtin_return_address(0), n * size)) {
		errno = ENOMEM;
		return NULL;
	}
	return __libc_calloc(n, size);
}

void *realloc(void *p, size_t size)
{
	/* realloc(p, 0) frees: not an allocation that can fail */
	if (size != 0 && must_fail(__builtin_return_address(0), size)) {
		errno = ENOMEM;
		return NULL;
	}
	return __libc_realloc(p, size);
}

char *strdup(const char *s)
{
	size_t n = strlen(s) + 1;
	char *p = do_malloc(n, __builtin_return_address(0));

	if (p != NULL)
		memcpy(p, s, n);
	return p;
}

char *strndup(const char *s, size_t max)
{
	size_t n = strnlen(s, max);
	char *p = do_malloc(n + 1, __builtin_return_address(0));

	if (p != NULL) {
		memcpy(p, s, n);
		p[n] = '\0';
	}
	return p;
}
