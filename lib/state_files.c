/* state_files.c - the state store of one host: small files under stateDir
 *
 * One file per user, "v1 window_start=... sends=... last_send=... failures=...
 * locked_until=...", then a line "g KIND KEY UNTIL" for each of the user's
 * graces (lib/grace.h), and "@global" for the cap across users. Each update
 * happens under flock on a lock file beside it (".NAME.lock", never replaced)
 * and replaces the state file atomically (temp file, fsync, rename), so that
 * concurrent logins neither lose counts nor see half-written files. Names that
 * start with '.' cannot be user state files: user names must start [a-z_],
 * hashed names start with '=' and the global counter is "@global".
 */
#include "state.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lock.h"
#include "log.h"
#include "otp.h"
#include "rootfile.h"
#include "sigguard.h"

#define GLOBAL_NAME "@global"
#define STATE_FILE_MAX 2048 /* the record and TSMS_GRACE_MAX graces */

/* One locked state file: the directory, the lock and the name. */
struct slot {
	int dir_fd;
	int lock_fd;
	char name[TSMS_STATE_NAME_MAX];
};

#define problem(err, ...) tsms_format_clean((err), TSMS_STATE_ERR_MAX, __VA_ARGS__)

/* Opens stateDir, creating it 0700 if missing; refuses one that others can write. */
static int open_dir(const char *path, bool create, char err[TSMS_STATE_ERR_MAX])
{
	struct stat st;
	int fd;

	if (create && mkdir(path, 0700) != 0 && errno != EEXIST) {
		problem(err, "stateDir %s: cannot create: %s; fix: create it (mkdir -m 700 %s)",
		        path, strerror(errno), path);
		return -1;
	}
	fd = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0) {
		problem(err, "stateDir %s: cannot open: %s; fix: make it a directory owned by root",
		        path, strerror(errno));
		return -1;
	}
	if (fstat(fd, &st) != 0 || st.st_uid != 0 || (st.st_mode & 077) != 0) {
		problem(err,
		        "stateDir %s: must be owned by root and open to root only (its files show "
		        "who logged in when); fix: chown root:root %s && chmod 700 %s",
		        path, path, path);
		close(fd);
		return -1;
	}
	return fd;
}

/* Releases the lock (lock_fd >= 0 only while it is held). */
static void slot_close(struct slot *slot)
{
	tsms_lock_release(&slot->lock_fd);
}

/* Takes the exclusive lock of name inside dir_fd, waiting at most TSMS_LOCK_WAIT_MS. */
static enum tsms_err slot_lock(struct slot *slot, int dir_fd, const char *name,
                               const char *dir_path, char err[TSMS_STATE_ERR_MAX])
{
	char lock_name[TSMS_STATE_NAME_MAX + 8];

	slot->dir_fd = dir_fd;
	snprintf(slot->name, sizeof(slot->name), "%s", name);
	snprintf(lock_name, sizeof(lock_name), ".%s.lock", name);
	slot->lock_fd = openat(dir_fd, lock_name, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (slot->lock_fd < 0) {
		problem(err, "state %s/%s: cannot open: %s", dir_path, lock_name, strerror(errno));
		return TSMS_ERR_STATE;
	}
	if (tsms_lock_exclusive(slot->lock_fd, TSMS_LOCK_WAIT_MS) != 0) {
		char holder[TSMS_LOCK_HOLDER_MAX];
		int saved = errno;

		tsms_lock_holder(slot->lock_fd, holder);
		problem(err, "state %s/%s: cannot lock: %s%s", dir_path, lock_name,
		        tsms_lock_strerror(saved), holder);
		close(slot->lock_fd);
		slot->lock_fd = -1;
		return TSMS_ERR_STATE;
	}
	return TSMS_OK;
}

/* Reads "<label><digits> " at *p into *out, at most max; advances *p. */
static bool field(const char **p, const char *label, long long max, char end, long long *out)
{
	size_t n = strlen(label);
	long long v = 0;
	const char *q;

	if (strncmp(*p, label, n) != 0)
		return false;
	q = *p + n;
	if (*q < '0' || *q > '9')
		return false;
	for (; *q >= '0' && *q <= '9'; q++) {
		v = v * 10 + (*q - '0');
		if (v > max)
			return false;
	}
	if (*q != end)
		return false;
	*out = v;
	*p = q + 1;
	return true;
}

/* Parses exactly what slot_write writes; anything else is corrupt. Bounds keep
 * all arithmetic on the values far from overflow. */
static bool parse_record(const char *buf, struct tsms_state_record *rec)
{
	const long long max_time = 1LL << 40, max_count = 100000000;
	long long sends, failures;
	const char *p = buf;

	if (strncmp(p, "v1 ", 3) != 0)
		return false;
	p += 3;
	if (!field(&p, "window_start=", max_time, ' ', &rec->window_start) ||
	    !field(&p, "sends=", max_count, ' ', &sends) ||
	    !field(&p, "last_send=", max_time, ' ', &rec->last_send) ||
	    !field(&p, "failures=", max_count, ' ', &failures) ||
	    !field(&p, "locked_until=", max_time, '\n', &rec->locked_until))
		return false;
	rec->sends = (unsigned)sends;
	rec->failures = (unsigned)failures;
	while (*p != '\0') {
		struct tsms_grace *g = &rec->graces[rec->n_graces];
		size_t n;

		if (rec->n_graces == TSMS_GRACE_MAX || p[0] != 'g' || p[1] != ' ' ||
		    (p[2] != TSMS_GRACE_ADDRESS && p[2] != TSMS_GRACE_SESSION &&
		     p[2] != TSMS_GRACE_PENDING) ||
		    p[3] != ' ')
			return false;
		g->kind = p[2];
		p += 4;
		n = strspn(p, "0123456789abcdef.:-");
		if (n == 0 || n >= TSMS_GRACE_KEY_MAX || p[n] != ' ')
			return false;
		memcpy(g->key, p, n);
		g->key[n] = '\0';
		p += n + 1;
		if (!field(&p, "", max_time, '\n', &g->until))
			return false;
		rec->n_graces++;
	}
	return true;
}

static enum tsms_err slot_read(const struct slot *slot, struct tsms_state_record *rec,
                               const char *dir_path, char err[TSMS_STATE_ERR_MAX])
{
	char buf[STATE_FILE_MAX + 1];
	struct stat st;
	ssize_t n;
	int fd;

	memset(rec, 0, sizeof(*rec));
	fd = openat(slot->dir_fd, slot->name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);
	if (fd < 0 && errno == ENOENT)
		return TSMS_OK;
	if (fd < 0 || fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || st.st_uid != 0 ||
	    st.st_size > STATE_FILE_MAX) {
		problem(err,
		        "state file %s/%s is unreadable, not a regular root-owned file, or too "
		        "large; fix: remove it (this also clears the user's limits and lockout)",
		        dir_path, slot->name);
		if (fd >= 0)
			close(fd);
		return TSMS_ERR_STATE;
	}
	n = read(fd, buf, STATE_FILE_MAX);
	close(fd);
	if (n >= 0)
		buf[n] = '\0';
	if (n < 0 || !parse_record(buf, rec)) {
		problem(err,
		        "state file %s/%s is corrupt; fix: remove it (this also clears the "
		        "user's limits and lockout)",
		        dir_path, slot->name);
		return TSMS_ERR_STATE;
	}
	return TSMS_OK;
}

static enum tsms_err slot_write(const struct slot *slot, const struct tsms_state_record *rec,
                                const char *dir_path, char err[TSMS_STATE_ERR_MAX])
{
	char tmp[TSMS_STATE_NAME_MAX + 8], buf[STATE_FILE_MAX];
	struct tsms_sigguard g;
	int fd, len, ok;

	len = snprintf(buf, sizeof(buf),
	               "v1 window_start=%lld sends=%u last_send=%lld "
	               "failures=%u locked_until=%lld\n",
	               rec->window_start, rec->sends, rec->last_send, rec->failures,
	               rec->locked_until);
	/* 12 lines of at most 4 + 71 + 1 + 13 + 1 bytes: always room */
	for (size_t i = 0; i < rec->n_graces && i < TSMS_GRACE_MAX && len < STATE_FILE_MAX - 100;
	     i++)
		len += snprintf(buf + len, sizeof(buf) - (size_t)len, "g %c %s %lld\n",
		                rec->graces[i].kind, rec->graces[i].key, rec->graces[i].until);
	snprintf(tmp, sizeof(tmp), ".%s.tmp", slot->name); /* one writer: we hold the lock */
	tsms_sigguard_block(&g, SIGXFSZ); /* the caller's RLIMIT_FSIZE: EFBIG, not death */
	fd = openat(slot->dir_fd, tmp, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0) {
		problem(err, "state %s/%s: cannot write: %s", dir_path, tmp, strerror(errno));
		tsms_sigguard_restore(&g);
		return TSMS_ERR_STATE;
	}
	ok = tsms_write_all(fd, buf, (size_t)len) && fsync(fd) == 0;
	ok = close(fd) == 0 && ok;
	if (!ok || renameat(slot->dir_fd, tmp, slot->dir_fd, slot->name) != 0) {
		problem(err, "state %s/%s: cannot replace: %s", dir_path, slot->name,
		        strerror(errno));
		unlinkat(slot->dir_fd, tmp, 0);
		ok = false;
	}
	tsms_sigguard_restore(&g);
	return ok ? TSMS_OK : TSMS_ERR_STATE;
}

/* Starts a new window when the old one has ended. */
static void roll_window(struct tsms_state_record *rec, time_t now, unsigned window)
{
	/* a clock that went back keeps the window: it must not lift the limit */
	if (rec->window_start == 0 || now >= rec->window_start + (long long)window) {
		rec->window_start = now;
		rec->sends = 0;
	}
}

/* An expired lockout is forgotten together with the failures that caused it. */
static void expire_lockout(struct tsms_state_record *rec, time_t now)
{
	if (rec->locked_until != 0 && now >= rec->locked_until) {
		rec->locked_until = 0;
		rec->failures = 0;
	}
}

/* Locks name's file and reads its record, times capped (tsms_state_cap; *capped:
 * write it back even when nothing else changes). slot_close releases it. */
static enum tsms_err slot_open(struct slot *slot, int dir_fd, const char *name,
                               const struct tsms_config *cfg, time_t now,
                               struct tsms_state_record *rec, bool *capped,
                               char err[TSMS_STATE_ERR_MAX])
{
	enum tsms_err e = slot_lock(slot, dir_fd, name, cfg->state_dir, err);

	if (e == TSMS_OK)
		e = slot_read(slot, rec, cfg->state_dir, err);
	*capped = e == TSMS_OK && tsms_state_cap(cfg, rec, now);
	return e;
}

static enum tsms_err reserve_global(const struct tsms_config *cfg, int dir_fd, time_t now,
                                    enum tsms_verdict *verdict, long long *wait,
                                    char err[TSMS_STATE_ERR_MAX])
{
	struct slot slot = { .lock_fd = -1 };
	struct tsms_state_record rec;
	enum tsms_err e;
	bool capped;

	e = slot_open(&slot, dir_fd, GLOBAL_NAME, cfg, now, &rec, &capped, err);
	if (e == TSMS_OK) {
		roll_window(&rec, now, cfg->send_window_seconds);
		if (rec.sends >= cfg->global_send_limit) {
			*verdict = TSMS_VERDICT_GLOBAL_LIMIT;
			*wait = rec.window_start + cfg->send_window_seconds - now;
			if (capped)
				e = slot_write(&slot, &rec, cfg->state_dir, err);
		} else {
			rec.sends++;
			rec.last_send = now;
			e = slot_write(&slot, &rec, cfg->state_dir, err);
		}
	}
	slot_close(&slot);
	return e;
}

/* Gives one SMS of the global cap back (tsms_state_release_send). */
static enum tsms_err release_global(const struct tsms_config *cfg, int dir_fd, time_t now,
                                    char err[TSMS_STATE_ERR_MAX])
{
	struct slot slot = { .lock_fd = -1 };
	struct tsms_state_record rec;
	enum tsms_err e;
	bool capped;

	e = slot_open(&slot, dir_fd, GLOBAL_NAME, cfg, now, &rec, &capped, err);
	if (e == TSMS_OK && (rec.sends > 0 || capped)) {
		if (rec.sends > 0)
			rec.sends--;
		e = slot_write(&slot, &rec, cfg->state_dir, err);
	}
	slot_close(&slot);
	return e;
}

/* Decides on one SMS for rec (the user's record, locked); counts it when allowed.
 * dir_fd -1 leaves the global cap out. */
static enum tsms_err decide_send(const struct tsms_config *cfg, int dir_fd,
                                 struct tsms_state_record *rec, time_t now,
                                 enum tsms_verdict *verdict, long long *wait,
                                 char err[TSMS_STATE_ERR_MAX])
{
	expire_lockout(rec, now);
	roll_window(rec, now, cfg->send_window_seconds);
	if (rec->locked_until != 0) {
		*verdict = TSMS_VERDICT_LOCKED;
		*wait = rec->locked_until - now;
	} else if (rec->sends >= cfg->send_limit) {
		*verdict = TSMS_VERDICT_USER_LIMIT;
		*wait = rec->window_start + cfg->send_window_seconds - now;
	} else if (rec->last_send != 0 && now >= rec->last_send &&
	           now - rec->last_send < (long long)cfg->resend_cooldown_seconds) {
		*verdict = TSMS_VERDICT_COOLDOWN;
		*wait = rec->last_send + cfg->resend_cooldown_seconds - now;
	} else if (cfg->global_send_limit > 0 && dir_fd >= 0) {
		/* lock order: user, then global; never the other way round */
		return reserve_global(cfg, dir_fd, now, verdict, wait, err);
	}
	return TSMS_OK;
}

/* For the administrator's operations: false when user has no state file (then
 * nothing is created for them, not even a lock file). */
static bool has_state(int dir_fd, const char *name)
{
	struct stat st;

	return fstatat(dir_fd, name, &st, AT_SYMLINK_NOFOLLOW) == 0 || errno != ENOENT;
}

/* No state file, but a login may hold the lock of the first one it writes: the
 * administrator learns who, rather than "nothing to unlock" while that
 * user's logins wait on it. A missing lock file is not created. */
static enum tsms_err no_state(int dir_fd, const char *name, const char *dir_path,
                              char err[TSMS_STATE_ERR_MAX])
{
	char lock_name[TSMS_STATE_NAME_MAX + 8];
	struct slot slot = { .lock_fd = -1 };
	struct stat st;
	enum tsms_err e;

	snprintf(lock_name, sizeof(lock_name), ".%s.lock", name);
	if (fstatat(dir_fd, lock_name, &st, AT_SYMLINK_NOFOLLOW) != 0)
		return TSMS_OK;
	e = slot_lock(&slot, dir_fd, name, dir_path, err);
	slot_close(&slot);
	return e;
}

/* Forgets the graces that ended; true when there were any. */
static bool prune_graces(struct tsms_state_record *rec, time_t now)
{
	size_t kept = 0, n = rec->n_graces;

	for (size_t i = 0; i < n; i++) {
		if (rec->graces[i].until > now)
			rec->graces[kept++] = rec->graces[i];
	}
	rec->n_graces = kept;
	return kept != n;
}

/* The index of the grace of g's kind and key in rec, or -1. */
static int grace_index(const struct tsms_state_record *rec, const struct tsms_grace *g)
{
	for (size_t i = 0; i < rec->n_graces; i++) {
		if (rec->graces[i].kind == g->kind && strcmp(rec->graces[i].key, g->key) == 0)
			return (int)i;
	}
	return -1;
}

static void remove_grace(struct tsms_state_record *rec, size_t i)
{
	memmove(&rec->graces[i], &rec->graces[i + 1],
	        (rec->n_graces - i - 1) * sizeof(rec->graces[0]));
	rec->n_graces--;
}

/* Whether a is to make room before b: a login's nonce waiting for its session
 * before any open grace, then the one that ends first. */
static bool gives_way(const struct tsms_grace *a, const struct tsms_grace *b)
{
	bool a_pending = a->kind == TSMS_GRACE_PENDING, b_pending = b->kind == TSMS_GRACE_PENDING;

	return a_pending != b_pending ? a_pending : a->until < b->until;
}

/* Puts g in rec in place of one of its kind and key, else beside them; when
 * full, the one that gives way first makes room. */
static void put_grace(struct tsms_state_record *rec, const struct tsms_grace *g)
{
	int i = grace_index(rec, g);

	if (i < 0 && rec->n_graces == TSMS_GRACE_MAX) {
		size_t first = 0;

		for (size_t j = 1; j < rec->n_graces; j++) {
			if (gives_way(&rec->graces[j], &rec->graces[first]))
				first = j;
		}
		remove_grace(rec, first);
	}
	if (i < 0)
		i = (int)rec->n_graces++;
	rec->graces[i] = *g;
	rec->graces[i].shared = false;
}

/* The grace operations on rec (locked); false when nothing is to be written. */
static bool apply_grace(const struct tsms_config *cfg, struct tsms_state_record *rec, time_t now,
                        enum tsms_state_op op, struct tsms_state_answer *a)
{
	bool pruned = prune_graces(rec, now);
	int i;

	(void)cfg;
	switch (op) {
	case TSMS_OP_GRACE_FIND:
		expire_lockout(rec, now);
		a->locked = rec->locked_until != 0;
		a->wait = 0;
		i = a->locked || a->grace->key[0] == '\0' ? -1 : grace_index(rec, a->grace);
		if (i >= 0)
			a->wait = rec->graces[i].until - now;
		return false;
	case TSMS_OP_GRACE_OPEN:
		put_grace(rec, a->grace);
		return true;
	case TSMS_OP_GRACE_TAKE:
		i = grace_index(rec, a->grace);
		a->grace->until = i >= 0 ? rec->graces[i].until : 0;
		if (i >= 0)
			remove_grace(rec, (size_t)i);
		return i >= 0 || pruned;
	case TSMS_OP_GRACE_LIST:
		a->n = rec->n_graces;
		memcpy(a->graces, rec->graces, rec->n_graces * sizeof(rec->graces[0]));
		return false;
	case TSMS_OP_GRACE_REVOKE:
		a->n = rec->n_graces;
		rec->n_graces = 0;
		return a->n > 0 || pruned;
	default:
		return false;
	}
}

static bool grace_op(enum tsms_state_op op)
{
	return op == TSMS_OP_GRACE_FIND || op == TSMS_OP_GRACE_OPEN || op == TSMS_OP_GRACE_TAKE ||
	       op == TSMS_OP_GRACE_LIST || op == TSMS_OP_GRACE_REVOKE;
}

/* Runs one read-modify-write of user's record under its lock. */
static enum tsms_err files_apply(void **conn, const struct tsms_config *cfg, const char *user,
                                 time_t now, enum tsms_state_op op, struct tsms_state_answer *a,
                                 char err[TSMS_STATE_ERR_MAX])
{
	struct tsms_state_status *status = a->status;
	struct slot slot = { .lock_fd = -1 };
	char name[TSMS_STATE_NAME_MAX];
	struct tsms_state_record rec;
	enum tsms_err e;
	bool capped, admin;
	int dir_fd;

	(void)conn; /* nothing is kept between operations */
	err[0] = '\0';
	if (op == TSMS_OP_USE_ONCE) { /* the used code left this host's backupCodesFile */
		a->first = true;
		return TSMS_OK;
	}
	tsms_state_file_name(user, name);
	/* an administrator's look creates nothing */
	admin = status != NULL || op == TSMS_OP_GRACE_LIST || op == TSMS_OP_GRACE_REVOKE;
	a->n = 0;
	if (status != NULL)
		snprintf(status->where, sizeof(status->where), "%s/%s", cfg->state_dir, name);
	if (admin && access(cfg->state_dir, F_OK) != 0 && errno == ENOENT)
		return TSMS_OK;
	dir_fd = open_dir(cfg->state_dir, !admin, err);
	if (dir_fd < 0)
		return TSMS_ERR_STATE;
	if (admin && !has_state(dir_fd, name)) {
		e = no_state(dir_fd, name, cfg->state_dir, err);
		close(dir_fd);
		return e;
	}
	if (status != NULL)
		status->exists = true;
	e = slot_open(&slot, dir_fd, name, cfg, now, &rec, &capped, err);
	if (e != TSMS_OK)
		goto out;
	if (grace_op(op)) {
		if (!apply_grace(cfg, &rec, now, op, a) && !capped)
			goto out;
		e = slot_write(&slot, &rec, cfg->state_dir, err);
		goto out;
	}
	switch (op) {
	case TSMS_OP_RESERVE:
	case TSMS_OP_RESERVE_LOCAL:
		e = decide_send(cfg, op == TSMS_OP_RESERVE ? dir_fd : -1, &rec, now, &a->verdict,
		                &a->wait, err);
		if (e != TSMS_OK || (a->verdict != TSMS_VERDICT_OK && !capped))
			goto out;
		if (a->verdict != TSMS_VERDICT_OK)
			break; /* refused, but the capped times are written back */
		rec.sends++;
		rec.last_send = now;
		break;
	case TSMS_OP_RELEASE:
		if (rec.sends > 0)
			rec.sends--;
		rec.last_send = 0; /* no cooldown for a text that never left */
		if (cfg->global_send_limit > 0) {
			/* lock order: user, then global */
			e = release_global(cfg, dir_fd, now, err);
			if (e != TSMS_OK)
				goto out;
		}
		break;
	case TSMS_OP_FAILURE:
		expire_lockout(&rec, now);
		if (rec.locked_until != 0) { /* locked before this answer: it is not judged */
			a->verdict = TSMS_VERDICT_LOCKED;
			a->wait = rec.locked_until - now;
		}
		rec.failures++;
		if (rec.failures >= cfg->lockout_threshold && rec.locked_until == 0)
			rec.locked_until = now + cfg->lockout_seconds;
		a->locked = rec.locked_until != 0;
		break;
	case TSMS_OP_SUCCESS:
		if (rec.failures == 0 && rec.locked_until == 0 && rec.last_send == 0 && !capped)
			goto out; /* nothing to write: keep logins cheap */
		rec.failures = 0;
		rec.locked_until = 0;
		rec.last_send = 0; /* the cooldown ends; the sends still count */
		break;
	case TSMS_OP_STATUS:
		if (status != NULL)
			tsms_state_describe(cfg, &rec, now, status);
		goto out;
	case TSMS_OP_UNLOCK:
		if (status != NULL)
			tsms_state_describe(cfg, &rec, now, status); /* as it was */
		rec.failures = 0;
		rec.locked_until = 0;
		break;
	default: /* USE_ONCE, answered above; the graces, in apply_grace */
		goto out;
	}
	e = slot_write(&slot, &rec, cfg->state_dir, err);
out:
	slot_close(&slot);
	close(dir_fd);
	return e;
}

static enum tsms_err files_check(void **conn, const struct tsms_config *cfg,
                                 char msg[TSMS_STATE_ERR_MAX])
{
	int dir_fd;

	(void)conn;
	dir_fd = open_dir(cfg->state_dir, true, msg);
	if (dir_fd < 0)
		return TSMS_ERR_STATE;
	close(dir_fd);
	tsms_format_clean(msg, TSMS_STATE_ERR_MAX, "stateDir %s: a root-only directory",
	                  cfg->state_dir);
	return TSMS_OK;
}

static void files_close(void *conn)
{
	(void)conn;
}

const struct tsms_state_store tsms_state_files = {
	.name = "files",
	.apply = files_apply,
	.check = files_check,
	.close = files_close,
};
