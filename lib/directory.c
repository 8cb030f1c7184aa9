/* directory.c - phone numbers from an LDAP directory (the only libldap user)
 *
 * One search per login: connect (ldaps://, or ldap:// and StartTLS, or
 * ldapi://), verify the server's certificate and host name, bind, search,
 * unbind. Everything the caller's environment could say to libldap is kept
 * out: the calls run with an environment of LDAPNOINIT=1 only (environ.h),
 * so libldap reads no LDAP* variable and no ldap.conf or ldaprc file at all
 * (not /etc/ldap/ldap.conf, not ~/.ldaprc, not ./ldaprc in a directory the
 * caller chose), and every option it would have taken from them (URI, base,
 * bind DN, TLS_REQCERT, TLS_CACERT, timeouts, referrals, SASL) is set on the
 * handle here. libldap's TLS (GnuTLS on Debian) is configured only through
 * these options and runs with the same hidden environment.
 */
#include "directory.h"

#include <errno.h>
#include <fcntl.h>
#include <lber.h>
#include <ldap.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "caller.h"
#include "environ.h"
#include "log.h"
#include "otp.h"
#include "phone.h"

#define fail(err, ...) tsms_format_clean((err), TSMS_CONFIG_ERR_MAX, __VA_ARGS__)

/* Debian's system trust store, used when ldap.caFile is not set */
#define SYSTEM_CA_FILE "/etc/ssl/certs/ca-certificates.crt"

/* One URI of the list: "" when it is fine, else the problem. */
static const char *uri_problem(const LDAPURLDesc *u, const char *first_scheme)
{
	const char *s = u->lud_scheme != NULL ? u->lud_scheme : "";

	if (strcasecmp(s, "ldaps") != 0 && strcasecmp(s, "ldap") != 0 &&
	    strcasecmp(s, "ldapi") != 0)
		return "has a URI that is not ldaps://, ldap:// or ldapi://";
	if (first_scheme[0] != '\0' && strcasecmp(first_scheme, s) != 0)
		return "mixes URI schemes";
	if ((u->lud_dn != NULL && u->lud_dn[0] != '\0') || u->lud_attrs != NULL ||
	    u->lud_filter != NULL || u->lud_exts != NULL)
		return "has a URI with a DN, attributes, a filter or extensions (baseDN, filter "
		       "and "
		       "attribute say those)";
	if (strcasecmp(s, "ldapi") != 0 && (u->lud_host == NULL || u->lud_host[0] == '\0'))
		return "has a URI without a host";
	return "";
}

bool tsms_directory_check_uri(const char *uri, char problem[TSMS_DIRECTORY_MSG])
{
	char *copy = strdup(uri), *save = NULL, scheme[8] = "";
	const char *why = NULL;
	unsigned n = 0;

	problem[0] = '\0';
	if (copy == NULL) {
		snprintf(problem, TSMS_DIRECTORY_MSG, "cannot be checked: out of memory");
		return false;
	}
	for (char *one = strtok_r(copy, " ", &save); one != NULL && why == NULL;
	     one = strtok_r(NULL, " ", &save)) {
		LDAPURLDesc *u = NULL;

		n++;
		if (ldap_url_parse(one, &u) != LDAP_URL_SUCCESS) {
			why = "has a URI libldap cannot parse";
		} else if (strncasecmp(one, "ldap://", 7) != 0 &&
		           strncasecmp(one, "ldaps://", 8) != 0 &&
		           strncasecmp(one, "ldapi://", 8) != 0) {
			/* libldap skips "URL:" and "<...>" around a URI, but the scheme (and
			 * so StartTLS) is read from the text itself */
			why = "has a URI that does not start with ldaps://, ldap:// or ldapi://";
		} else {
			why = uri_problem(u, scheme);
			why = why[0] != '\0' ? why : NULL;
			snprintf(scheme, sizeof(scheme), "%s", u->lud_scheme);
		}
		ldap_free_urldesc(u);
	}
	free(copy);
	if (why == NULL && n == 0)
		why = "is empty";
	if (why != NULL)
		snprintf(problem, TSMS_DIRECTORY_MSG, "%s", why);
	return why == NULL;
}

const char *tsms_directory_scheme(const char *uri)
{
	uri += strspn(uri, " \t,"); /* libldap skips list separators before the first URI */
	/* libldap takes the scheme in any case */
	if (strncasecmp(uri, "ldaps://", 8) == 0)
		return "ldaps";
	if (strncasecmp(uri, "ldapi://", 8) == 0)
		return "ldapi";
	return "ldap";
}

/* One lookup: the handle, the deadline, what went wrong. */
struct query {
	const struct tsms_ldap *l;
	LDAP *ld;
	struct timespec deadline;
	char *err;
};

static long long ms_left(const struct query *q)
{
	struct timespec now;
	long long ms;

	clock_gettime(CLOCK_MONOTONIC, &now);
	ms = (q->deadline.tv_sec - now.tv_sec) * 1000LL +
	     (q->deadline.tv_nsec - now.tv_nsec) / 1000000;
	return ms > 0 ? ms : 1;
}

static struct timeval tv_left(const struct query *q)
{
	long long ms = ms_left(q);
	struct timeval tv = { .tv_sec = ms / 1000, .tv_usec = (ms % 1000) * 1000 };

	return tv;
}

/* What libldap said went wrong, with its diagnostic message when it has one. */
static void ldap_problem(struct query *q, const char *step, int rc)
{
	char *diag = NULL;

	if (q->ld != NULL)
		ldap_get_option(q->ld, LDAP_OPT_DIAGNOSTIC_MESSAGE, &diag);
	fail(q->err, "directory unavailable: %s failed: %s%s%s (%s)", step, ldap_err2string(rc),
	     diag != NULL && diag[0] != '\0' ? ": " : "", diag != NULL ? diag : "", q->l->uri);
	ldap_memfree(diag);
}

#define SET(opt, val)                                              \
	do {                                                       \
		if (rc == LDAP_OPT_SUCCESS)                        \
			rc = ldap_set_option(q->ld, (opt), (val)); \
	} while (0)

/* Every option on the handle: nothing comes from a config file or the
 * environment (LDAPNOINIT). */
static enum tsms_err set_options(struct query *q)
{
	struct timeval budget = tv_left(q);
	int version = LDAP_VERSION3, require = LDAP_OPT_X_TLS_HARD;
	int min_tls = LDAP_OPT_X_TLS_PROTOCOL_TLS1_2, new_ctx = 0;
	int limit = (int)q->l->timeout_seconds, rc = LDAP_OPT_SUCCESS;
	char ca_path[64];

	if (q->l->ca_fd >= 0)
		snprintf(ca_path, sizeof(ca_path), "/proc/self/fd/%d", q->l->ca_fd);
	else
		snprintf(ca_path, sizeof(ca_path), "%s", SYSTEM_CA_FILE);
	SET(LDAP_OPT_PROTOCOL_VERSION, &version);
	SET(LDAP_OPT_REFERRALS, LDAP_OPT_OFF); /* a referral could lead anywhere */
	SET(LDAP_OPT_NETWORK_TIMEOUT, &budget);
	SET(LDAP_OPT_TIMEOUT, &budget);
	SET(LDAP_OPT_TIMELIMIT, &limit);
	SET(LDAP_OPT_X_TLS_REQUIRE_CERT, &require);
	SET(LDAP_OPT_X_TLS_PROTOCOL_MIN, &min_tls);
	SET(LDAP_OPT_X_TLS_CACERTFILE, ca_path);
	SET(LDAP_OPT_X_TLS_NEWCTX, &new_ctx); /* last: the TLS options above take effect */
	if (rc != LDAP_OPT_SUCCESS) {
		fail(q->err, "directory: cannot set libldap's options: %s", ldap_err2string(rc));
		return TSMS_ERR_SYSTEM;
	}
	return TSMS_OK;
}

#undef SET

static enum tsms_err connect_and_bind(struct query *q)
{
	struct berval cred = { 0, NULL };
	int rc;

	rc = ldap_initialize(&q->ld, q->l->uri);
	if (rc != LDAP_SUCCESS || q->ld == NULL) {
		fail(q->err, "directory: ldap_initialize(%s): %s", q->l->uri, ldap_err2string(rc));
		return TSMS_ERR_CONFIG;
	}
	if (set_options(q) != TSMS_OK)
		return TSMS_ERR_SYSTEM;
	if (q->l->start_tls) {
		rc = ldap_start_tls_s(q->ld, NULL, NULL);
		if (rc != LDAP_SUCCESS) {
			ldap_problem(q, "StartTLS", rc);
			return TSMS_ERR_UNAVAILABLE;
		}
	}
	if (q->l->bind_password != NULL) {
		cred.bv_val = q->l->bind_password;
		cred.bv_len = strlen(q->l->bind_password);
	}
	rc = ldap_sasl_bind_s(q->ld, q->l->bind_dn != NULL ? q->l->bind_dn : "", LDAP_SASL_SIMPLE,
	                      &cred, NULL, NULL, NULL);
	if (rc != LDAP_SUCCESS) {
		ldap_problem(
			q, q->l->bind_dn != NULL ? "the bind as ldap.bindDN" : "the anonymous bind",
			rc);
		return TSMS_ERR_UNAVAILABLE;
	}
	return TSMS_OK;
}

/* The filter with every %u replaced by user, escaped by libldap (RFC 4515).
 * Returns a new string (free) or NULL. */
static char *make_filter(const char *filter, const char *user)
{
	struct berval in = { strlen(user), (char *)(uintptr_t)user }, esc = { 0, NULL };
	size_t n = 0, len;
	char *out, *o;

	if (ldap_bv2escaped_filter_value(&in, &esc) != 0)
		return NULL;
	for (const char *p = filter; (p = strstr(p, "%u")) != NULL; p += 2)
		n++;
	len = strlen(filter) + n * esc.bv_len + 1;
	out = o = malloc(len);
	if (out != NULL) {
		for (const char *p = filter; *p != '\0';) {
			if (p[0] == '%' && p[1] == 'u') {
				memcpy(o, esc.bv_val, esc.bv_len);
				o += esc.bv_len;
				p += 2;
			} else {
				*o++ = *p++;
			}
		}
		*o = '\0';
	}
	ber_memfree(esc.bv_val);
	return out;
}

/* A directory value as a number: spaces, '-', '.', '(' and ')' dropped, then
 * "+" and 7 to 15 digits. Never a guessed country code. */
static bool directory_number(const struct berval *v, char out[TSMS_PHONE_MAX])
{
	char kept[64];
	size_t n = 0;

	out[0] = '\0';
	for (ber_len_t i = 0; i < v->bv_len; i++) {
		char c = v->bv_val[i];

		if (c == ' ' || c == '-' || c == '.' || c == '(' || c == ')')
			continue;
		if (n + 1 >= sizeof(kept))
			return false;
		kept[n++] = c;
	}
	kept[n] = '\0';
	return kept[0] == '+' && tsms_phone_normalize(kept, out);
}

/* Reads the search's entries into num, or says why they cannot be used. */
static enum tsms_err read_entries(struct query *q, const char *user, LDAPMessage *res,
                                  struct tsms_number *num)
{
	int count = ldap_count_entries(q->ld, res);
	LDAPMessage *e = ldap_first_entry(q->ld, res);
	struct berval **values;
	char *dn, *dn2;
	enum tsms_err ret = TSMS_OK;

	if (count <= 0 || e == NULL)
		return TSMS_OK; /* no entry: the user is unmapped */
	dn = ldap_get_dn(q->ld, e);
	if (count > 1) {
		dn2 = ldap_get_dn(q->ld, ldap_next_entry(q->ld, e));
		fail(q->err,
		     "directory: user \"%s\" matches several entries (%s, %s%s) under %s; fix: "
		     "make "
		     "ldap.filter match one entry per user",
		     user, dn != NULL ? dn : "?", dn2 != NULL ? dn2 : "?", count > 2 ? ", ..." : "",
		     q->l->base_dn);
		ldap_memfree(dn2);
		ldap_memfree(dn);
		return TSMS_ERR_DIRECTORY;
	}
	values = ldap_get_values_len(q->ld, e, q->l->attribute);
	if (values != NULL && values[0] != NULL) {
		if (directory_number(values[0], num->phone)) {
			num->source = TSMS_SOURCE_LDAP;
			snprintf(num->where, sizeof(num->where), "%s", dn != NULL ? dn : "?");
		} else {
			fail(q->err,
			     "directory: user \"%s\": %s of %s is not \"+\" and 7 to 15 digits (a "
			     "number without its country code is never guessed); fix: write it as "
			     "+<country code><number> in the directory",
			     user, q->l->attribute, dn != NULL ? dn : "?");
			ret = TSMS_ERR_DIRECTORY;
		}
	}
	ldap_value_free_len(values);
	ldap_memfree(dn);
	return ret;
}

static enum tsms_err search(struct query *q, const char *user, struct tsms_number *num)
{
	char *attrs[2] = { q->l->attribute, NULL };
	LDAPMessage *res = NULL;
	struct timeval tv = tv_left(q);
	enum tsms_err ret;
	char *filter;
	int rc;

	filter = make_filter(q->l->filter, user);
	if (filter == NULL) {
		fail(q->err, "directory: out of memory");
		return TSMS_ERR_NOMEM;
	}
	/* two entries are enough to tell one from several */
	rc = ldap_search_ext_s(q->ld, q->l->base_dn, LDAP_SCOPE_SUBTREE, filter, attrs, 0, NULL,
	                       NULL, &tv, 2, &res);
	free(filter);
	if (rc != LDAP_SUCCESS && rc != LDAP_SIZELIMIT_EXCEEDED) {
		ldap_problem(q, "the search", rc);
		ret = rc == LDAP_NO_SUCH_OBJECT || rc == LDAP_FILTER_ERROR ? TSMS_ERR_DIRECTORY
		                                                           : TSMS_ERR_UNAVAILABLE;
	} else {
		ret = read_entries(q, user, res, num);
	}
	ldap_msgfree(res);
	return ret;
}

/* The lookup itself, in the child (see tsms_directory_find). */
static enum tsms_err lookup(const struct tsms_config *cfg, const char *user,
                            struct tsms_number *num, char err[TSMS_CONFIG_ERR_MAX])
{
	static char ldap_noinit[] = "LDAPNOINIT=1";
	char *only_noinit[] = { ldap_noinit, NULL };
	struct query q = { .l = cfg->ldap, .err = err };
	struct tsms_environ env;
	enum tsms_err ret;

	clock_gettime(CLOCK_MONOTONIC, &q.deadline);
	q.deadline.tv_sec += q.l->timeout_seconds;
	tsms_environ_use(&env, only_noinit);
	ret = connect_and_bind(&q);
	if (ret == TSMS_OK)
		ret = search(&q, user, num);
	if (q.ld != NULL)
		ldap_unbind_ext_s(q.ld, NULL, NULL);
	tsms_environ_restore(&env);
	return ret;
}

/* What the child hands back: one write, smaller than PIPE_BUF, so atomic. */
struct answer {
	enum tsms_err ret;
	struct tsms_number num;
	char err[TSMS_CONFIG_ERR_MAX];
};

/* How the wait for the child's answer ended. */
enum awaited {
	ANSWERED, /* the whole answer came */
	TIMED_OUT,
	ENDED, /* the pipe closed before the whole answer: the child has ended */
};

/* Reads the child's answer until ms have passed. Past the deadline what has
 * already come is still read: a host stopped past it (by its caller) takes the
 * answer that came meanwhile, not a timeout. */
static enum awaited await_answer(int fd, long long ms, struct answer *a)
{
	size_t got = 0;
	struct timespec start, now;

	clock_gettime(CLOCK_MONOTONIC, &start);
	while (got < sizeof(*a)) {
		struct pollfd p = { .fd = fd, .events = POLLIN };
		long long waited, left;
		ssize_t n;
		int rc;

		clock_gettime(CLOCK_MONOTONIC, &now);
		waited = (now.tv_sec - start.tv_sec) * 1000LL +
		         (now.tv_nsec - start.tv_nsec) / 1000000;
		left = ms - waited;
		rc = poll(&p, 1, left > 0 ? (int)left : 0);
		if (rc < 0 && errno == EINTR)
			continue;
		if (rc <= 0)
			return TIMED_OUT; /* or poll failed: either way no answer */
		n = read(fd, (char *)a + got, sizeof(*a) - got);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return ENDED;
		got += (size_t)n;
	}
	return ANSWERED;
}

static long long ms_since(const struct timespec *start)
{
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	return (now.tv_sec - start->tv_sec) * 1000LL + (now.tv_nsec - start->tv_nsec) / 1000000;
}

/* Reaps the child; for a child that ended without its answer, says how in a->err:
 * an attack or a crash, never an outage (TSMS_ERR_DIRECTORY: failMode does not
 * apply, no backup prompt). */
static void reap(pid_t pid, enum awaited how, const struct timespec *start, struct answer *a)
{
	int status = 0;
	pid_t got;

	while ((got = waitpid(pid, &status, 0)) < 0 && errno == EINTR)
		;
	if (how != ENDED)
		return;
	a->ret = TSMS_ERR_DIRECTORY;
	a->num.source = TSMS_SOURCE_NONE;
	if (got == pid && WIFSIGNALED(status))
		fail(a->err,
		     "directory: the lookup process was killed by signal %d (%s) after %lld ms, "
		     "without an answer: a crash or an attack, not an outage (failMode does not "
		     "apply)",
		     WTERMSIG(status), strsignal(WTERMSIG(status)), ms_since(start));
	else if (got == pid)
		fail(a->err,
		     "directory: the lookup process ended without an answer (exit status %d) after "
		     "%lld ms: a crash, not an outage (failMode does not apply)",
		     WIFEXITED(status) ? WEXITSTATUS(status) : -1, ms_since(start));
	else /* a host program that reaps its children itself may have taken it (ECHILD) */
		fail(a->err,
		     "directory: the lookup process ended without an answer after %lld ms (its "
		     "status went to the host program): a crash, not an outage (failMode does not "
		     "apply)",
		     ms_since(start));
}

/*
 * The lookup runs in a child process that the module ends when the budget is
 * spent: libldap 2.5 with GnuTLS spins without end in the TLS handshake with a
 * server that accepts the connection and never answers (no option or socket
 * timeout stops it), and a server may drip bytes to outlast every per-read
 * timeout. The child is a copy of this process (no exec: nothing is looked up
 * on PATH), so libldap's state never lives in the host program either; it
 * answers through a pipe and exits. It leaves the caller's reach first
 * (caller.h): in a setuid host the caller could otherwise kill it and pass for
 * a directory outage.
 */
enum tsms_err tsms_directory_find(const struct tsms_config *cfg, const char *user,
                                  struct tsms_number *num, char err[TSMS_CONFIG_ERR_MAX])
{
	long long budget_ms = cfg->ldap->timeout_seconds * 1000LL + 500;
	struct timespec start;
	enum awaited how;
	enum tsms_err ret;
	struct answer a;
	int fds[2];
	pid_t pid;

	num->source = TSMS_SOURCE_NONE;
	num->phone[0] = num->where[0] = '\0';
	if (pipe2(fds, O_CLOEXEC) != 0) {
		fail(err, "directory: cannot make a pipe: %s", strerror(errno));
		return TSMS_ERR_SYSTEM;
	}
	clock_gettime(CLOCK_MONOTONIC, &start);
	pid = fork();
	if (pid < 0) {
		fail(err, "directory: cannot fork: %s", strerror(errno));
		close(fds[0]);
		close(fds[1]);
		return TSMS_ERR_SYSTEM;
	}
	if (pid == 0) {
		/* the child: a closed connection must end it quietly, not kill it mid-write */
		signal(SIGPIPE, SIG_IGN);
		close(fds[0]);
		memset(&a, 0, sizeof(a));
		if (tsms_caller_detach() != 0) {
			a.ret = TSMS_ERR_SYSTEM;
			fail(a.err,
			     "directory: the lookup process cannot leave the caller's reach: %s",
			     strerror(errno));
		} else {
			a.ret = lookup(cfg, user, &a.num, a.err);
		}
		_exit(write(fds[1], &a, sizeof(a)) == (ssize_t)sizeof(a) ? 0 : 1);
	}
	close(fds[1]);
	memset(&a, 0, sizeof(a));
	how = await_answer(fds[0], budget_ms, &a);
	if (how == TIMED_OUT) {
		kill(pid, SIGKILL); /* not reaped yet: pid is still this child's */
		a.ret = TSMS_ERR_UNAVAILABLE;
		a.num.source = TSMS_SOURCE_NONE;
		fail(a.err,
		     "directory unavailable: no answer within ldap.timeoutSeconds (%u s) from %s",
		     cfg->ldap->timeout_seconds, cfg->ldap->uri);
	}
	close(fds[0]);
	reap(pid, how, &start, &a);
	ret = a.ret;
	*num = a.num;
	snprintf(err, TSMS_CONFIG_ERR_MAX, "%s", a.err);
	if (ret != TSMS_OK || num->source != TSMS_SOURCE_LDAP) {
		num->source = TSMS_SOURCE_NONE;
		num->phone[0] = num->where[0] = '\0';
	}
	tsms_wipe(&a, sizeof(a));
	return ret;
}
