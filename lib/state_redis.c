/* state_redis.c - the state store of a fleet: Redis, through hiredis (its only user)
 *
 * Every decision is one Lua script run by the server (EVALSHA, loaded with
 * SCRIPT LOAD on NOSCRIPT), so two logins on two hosts can never both take the
 * last slot. Keys, all under keyPrefix and all with a TTL:
 *
 *   PREFIX user:NAME  hash window_start sends last_send failures locked_until
 *                     (NAME: tsms_state_file_name, never the raw user name)
 *   PREFIX global     hash window_start sends last_send (globalSendLimit)
 *   PREFIX used:NAME  set of the backup codes NAME used (digests of their
 *                     hashes, lib/backup.h): 400 days after the last use
 *   PREFIX grace:NAME hash s1..s12 of "ADDRESS UNTIL": NAME's address graces of
 *                     graceScope fleet (lib/grace.h), gracePeriodSeconds after
 *                     the newest; read and written with HMGET, HSET, DEL and
 *                     EXPIRE, the commands conf/redis's ACL already allows
 *
 * Times are the Redis server's clock (TIME in the script): one clock for the
 * fleet. A user's key lives until the latest of its window, cooldown and
 * lockout, and lockoutSeconds after a wrong code; so with Redis, wrong codes
 * are forgotten lockoutSeconds after the last one.
 *
 * hiredis reads no environment variable; name resolution (getaddrinfo) runs
 * with the caller's environment hidden all the same. Writes to a closed
 * socket raise SIGPIPE, which would kill the host program: it is blocked
 * around every call and a SIGPIPE raised meanwhile is consumed (sigguard.h). One
 * connection per open state (one login), with SO_RCVTIMEO/SO_SNDTIMEO of
 * timeoutSeconds, close-on-exec.
 *
 * The password never passes through hiredis, which frees its copies of a
 * command unwiped: AUTH is written and wiped here (authenticate).
 *
 * Replies are read here too (read_reply), fed to hiredis's parser: SO_RCVTIMEO
 * bounds only each read, so a server that trickles bytes would hold the login
 * for ever, and hiredis buffers a reply of any size. A command's reply must
 * come within timeoutSeconds in all (counted from the command's last byte
 * written; what came by then is read even past it), and in at most REPLY_MAX
 * bytes.
 */
#include "state.h"

#include <errno.h>
#include <fcntl.h>
#include <hiredis/hiredis.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "clock.h"
#include "environ.h"
#include "otp.h"
#include "rootfile.h"
#include "sigguard.h"

/* Arguments: ARGV[1] the operation, then sendLimit, sendWindowSeconds,
 * resendCooldownSeconds, globalSendLimit, lockoutThreshold, lockoutSeconds,
 * and for used the backup code's id (KEYS[2] is then the user's used set);
 * for the graces (KEYS[2] the user's grace key) ARGV[8] the address and
 * ARGV[9] gracePeriodSeconds (their longest: a grace is capped to it).
 * Answers: reserve {verdict, wait}; release {0}; failure {locked, locked before it, the wait
 * of that lockout}; success {0}; used {1 when the id is new, 0 when a host
 * recorded it before}; grace {locked, seconds left}; graceopen {0}; gracelist
 * {now, address, until, ...}; gracerevoke {how many were open}; probe (check: may
 * this ACL user run every command of the script? it leaves nothing) {0};
 * status and unlock {now, exists, window_start, sends, last_send, failures,
 * locked_until} as the record was before. Verdicts are enum tsms_verdict. */
const char tsms_state_redis_script[] =
	"local op = ARGV[1]\n"
	"if op == 'probe' then\n"
	"  redis.call('HSET', KEYS[1], 'probe', 1)\n"
	"  redis.call('EXPIRE', KEYS[1], 10)\n"
	"  redis.call('SADD', KEYS[2], 'probe')\n"
	"  redis.call('DEL', KEYS[1], KEYS[2])\n"
	"  return {0}\n"
	"end\n"
	"if op == 'used' then\n"
	"  local first = redis.call('SADD', KEYS[2], ARGV[8])\n"
	"  redis.call('EXPIRE', KEYS[2], 34560000)\n"
	"  return {first}\n"
	"end\n"
	"local limit, window, cooldown = tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])\n"
	"local glimit, threshold = tonumber(ARGV[5]), tonumber(ARGV[6])\n"
	"local lockout = tonumber(ARGV[7])\n"
	"local now = tonumber(redis.call('TIME')[1])\n"
	"local f = redis.call('HMGET', KEYS[1], 'window_start', 'sends', 'last_send', 'failures',\n"
	"  'locked_until')\n"
	"local exists = f[1] ~= false\n"
	"local ws, sends, last = tonumber(f[1]) or 0, tonumber(f[2]) or 0, tonumber(f[3]) or 0\n"
	"local fails, untl = tonumber(f[4]) or 0, tonumber(f[5]) or 0\n"
	"local before = {now, exists and 1 or 0, ws, sends, last, fails, untl}\n"
	"local capped = ws > now or last > now or untl > now + lockout\n"
	"if ws > now then ws = now end\n"
	"if last > now then last = now end\n"
	"if untl > now + lockout then untl = now + lockout end\n"
	"if op == 'status' then return before end\n"
	"local function save()\n"
	"  local ttl = 0\n"
	"  if sends > 0 then ttl = math.max(ttl, ws + window - now) end\n"
	"  if last > 0 then ttl = math.max(ttl, last + cooldown - now) end\n"
	"  if untl > 0 then ttl = math.max(ttl, untl - now) end\n"
	"  if fails > 0 then ttl = math.max(ttl, lockout) end\n"
	"  if ttl <= 0 then redis.call('DEL', KEYS[1]) return end\n"
	"  redis.call('HSET', KEYS[1], 'window_start', ws, 'sends', sends, 'last_send', last,\n"
	"    'failures', fails, 'locked_until', untl)\n"
	"  redis.call('EXPIRE', KEYS[1], ttl)\n"
	"end\n"
	"if capped then save() end\n"
	"if untl ~= 0 and now >= untl then untl = 0 fails = 0 end\n"
	"local gmax = 12\n"
	"if op == 'grace' or op == 'graceopen' or op == 'gracelist' or op == 'gracerevoke' then\n"
	"  local names = {}\n"
	"  for i = 1, gmax do names[i] = 's' .. i end\n"
	"  local v = redis.call('HMGET', KEYS[2], unpack(names))\n"
	"  local gsecs = tonumber(ARGV[9]) or 0\n"
	"  local addr, ends, live, cut = {}, {}, 0, false\n"
	"  for i = 1, gmax do\n"
	"    local a, u = nil, nil\n"
	"    if v[i] then a, u = string.match(v[i], '^(%S+) (%d+)$') end\n"
	"    addr[i], ends[i] = a or '', tonumber(u) or 0\n"
	"    if ends[i] > now + gsecs then\n"
	"      ends[i] = now + gsecs\n"
	"      redis.call('HSET', KEYS[2], 's' .. i, addr[i] .. ' ' .. ends[i])\n"
	"      cut = true\n"
	"    end\n"
	"    if ends[i] > now then live = live + 1 end\n"
	"  end\n"
	"  if cut then\n"
	"    if gsecs > 0 then redis.call('EXPIRE', KEYS[2], gsecs)\n"
	"    else redis.call('DEL', KEYS[2]) end\n"
	"  end\n"
	"  if op == 'grace' then\n"
	"    if untl ~= 0 then return {1, 0} end\n"
	"    for i = 1, gmax do\n"
	"      if ARGV[8] ~= '' and addr[i] == ARGV[8] and ends[i] > now then\n"
	"        return {0, ends[i] - now}\n"
	"      end\n"
	"    end\n"
	"    return {0, 0}\n"
	"  end\n"
	"  if op == 'gracerevoke' then redis.call('DEL', KEYS[2]) return {live} end\n"
	"  if op == 'gracelist' then\n"
	"    local out = {now}\n"
	"    for i = 1, gmax do\n"
	"      if ends[i] > now then out[#out + 1] = addr[i] out[#out + 1] = ends[i] end\n"
	"    end\n"
	"    return out\n"
	"  end\n"
	"  if gsecs <= 0 then return {0} end\n"
	"  local slot = 0\n"
	"  for i = 1, gmax do\n"
	"    if addr[i] == ARGV[8] then slot = i end\n"
	"  end\n"
	"  for i = 1, gmax do\n"
	"    if slot == 0 and ends[i] <= now then slot = i end\n"
	"  end\n"
	"  if slot == 0 then\n"
	"    slot = 1\n"
	"    for i = 2, gmax do if ends[i] < ends[slot] then slot = i end end\n"
	"  end\n"
	"  redis.call('HSET', KEYS[2], 's' .. slot, ARGV[8] .. ' ' .. (now + gsecs))\n"
	"  redis.call('EXPIRE', KEYS[2], gsecs)\n"
	"  return {0}\n"
	"end\n"
	"if op == 'unlock' then\n"
	"  if exists then fails = 0 untl = 0 save() end\n"
	"  return before\n"
	"end\n"
	"if op == 'failure' then\n"
	"  local was = untl ~= 0 and 1 or 0\n"
	"  local wait = untl ~= 0 and untl - now or 0\n"
	"  fails = fails + 1\n"
	"  if fails >= threshold and untl == 0 then untl = now + lockout end\n"
	"  save()\n"
	"  return {untl ~= 0 and 1 or 0, was, wait}\n"
	"end\n"
	"if op == 'success' then\n"
	"  if fails ~= 0 or untl ~= 0 or last ~= 0 then fails = 0 untl = 0 last = 0 save() end\n"
	"  return {0}\n"
	"end\n"
	"if op == 'release' then\n"
	"  if sends > 0 then sends = sends - 1 end\n"
	"  last = 0\n"
	"  save()\n"
	"  local g = tonumber(redis.call('HMGET', KEYS[2], 'sends')[1]) or 0\n"
	"  if glimit > 0 and g > 0 then redis.call('HSET', KEYS[2], 'sends', g - 1) end\n"
	"  return {0}\n"
	"end\n"
	"if op ~= 'reserve' and op ~= 'local' then\n"
	"  return redis.error_reply('unknown operation')\n"
	"end\n"
	"if ws == 0 or now >= ws + window then ws = now sends = 0 end\n"
	"if untl ~= 0 then return {1, untl - now} end\n"
	"if sends >= limit then return {2, ws + window - now} end\n"
	"if last ~= 0 and now >= last and now - last < cooldown then\n"
	"  return {3, last + cooldown - now}\n"
	"end\n"
	"if op == 'reserve' and glimit > 0 then\n"
	"  local g = redis.call('HMGET', KEYS[2], 'window_start', 'sends')\n"
	"  local gws, gsends = tonumber(g[1]) or 0, tonumber(g[2]) or 0\n"
	"  if gws > now then\n"
	"    gws = now\n"
	"    redis.call('HSET', KEYS[2], 'window_start', gws)\n"
	"  end\n"
	"  if gws == 0 or now >= gws + window then gws = now gsends = 0 end\n"
	"  if gsends >= glimit then return {4, gws + window - now} end\n"
	"  redis.call('HSET', KEYS[2], 'window_start', gws, 'sends', gsends + 1,\n"
	"    'last_send', now)\n"
	"  redis.call('EXPIRE', KEYS[2], math.max(1, gws + window - now))\n"
	"end\n"
	"sends = sends + 1\n"
	"last = now\n"
	"save()\n"
	"return {0, 0}\n";

/* SHA-1 of the script, as Redis names it (tests/unit/test_state.c checks it). */
const char tsms_state_redis_sha1[] = "018a9048a86fe0f319aec60f39827116498d612c";

/* Redis's words quoted in a problem: enough to name it, never a flood. */
#define QUOTE_MAX 120
/* The longest reply read: the script's answers are a few dozen bytes, SCRIPT
 * LOAD's 40 hex digits. */
#define REPLY_MAX (64 * 1024)

struct conn {
	redisContext *c;
	char sha[41];
	bool ready; /* connected and authenticated */
};

#define problem(err, ...) tsms_format_clean((err), TSMS_STATE_ERR_MAX, __VA_ARGS__)

/* "redis URL unavailable: WHAT: why" from hiredis's error type (REDIS_ERR_*)
 * and text, with errno as the failed read or write left it. */
static void why_problem(const struct tsms_config *cfg, int type, const char *text, const char *what,
                        char err[TSMS_STATE_ERR_MAX])
{
	const struct tsms_redis *r = cfg->redis;

	if (type == REDIS_ERR_IO && (errno == EAGAIN || errno == EWOULDBLOCK))
		problem(err, "redis %s unavailable: %s: timed out after %u s", r->url, what,
		        r->timeout_seconds);
	else if (type == REDIS_ERR_EOF)
		problem(err, "redis %s unavailable: %s: the server closed the connection", r->url,
		        what);
	else if (type == REDIS_ERR_PROTOCOL)
		problem(err, "redis %s unavailable: %s: unexpected reply (not the Redis protocol)",
		        r->url, what);
	else
		problem(err, "redis %s unavailable: %s: %.*s", r->url, what, QUOTE_MAX, text);
}

/* The same from the context's error; no context: out of memory. */
static void io_problem(const struct tsms_config *cfg, const redisContext *c, const char *what,
                       char err[TSMS_STATE_ERR_MAX])
{
	if (c == NULL)
		problem(err, "redis %s unavailable: %s: out of memory", cfg->redis->url, what);
	else
		why_problem(cfg, c->err, c->errstr, what, err);
}

/* reply as hiredis gave it (NULL: none came, errno as the failure left it):
 * NULL (with err) unless it came and is not an error. */
static redisReply *answer(const struct conn *k, const struct tsms_config *cfg, const char *what,
                          redisReply *reply, char err[TSMS_STATE_ERR_MAX])
{
	if (reply == NULL) {
		io_problem(cfg, k->c, what, err);
		return NULL;
	}
	if (reply->type == REDIS_REPLY_ERROR) {
		problem(err, "redis %s unavailable: %s: %.*s", cfg->redis->url, what, QUOTE_MAX,
		        reply->str != NULL ? reply->str : "error");
		freeReplyObject(reply);
		return NULL;
	}
	return reply;
}

/* The context's error, as hiredis sets its own: type, and errnum's text (or
 * text); errno is left as errnum for io_problem. REDIS_ERR. */
static int fail_context(redisContext *c, int type, int errnum, const char *text)
{
	c->err = type;
	snprintf(c->errstr, sizeof(c->errstr), "%s", text != NULL ? text : strerror(errnum));
	errno = errnum;
	return REDIS_ERR;
}

/* Reads from the server and feeds hiredis's parser until it has one reply
 * (*reply), at most REPLY_MAX bytes and until deadline. Past the deadline what
 * has already come is still read: a login stopped past it by its caller (a
 * setuid su) finds the reply that came meanwhile, not a Redis to fall back
 * from. REDIS_OK, or REDIS_ERR with the context's error set (a timeout is
 * REDIS_ERR_IO with EAGAIN). */
static int read_reply(redisContext *c, long long deadline, void **reply)
{
	size_t total = 0;
	char buf[4096];

	*reply = NULL;
	for (;;) {
		struct pollfd p = { .fd = c->fd, .events = POLLIN };
		int ready, left;
		ssize_t n;

		if (redisGetReplyFromReader(c, reply) != REDIS_OK)
			return REDIS_ERR;
		if (*reply != NULL)
			return REDIS_OK;
		left = (int)tsms_clock_left_ms(deadline);
		ready = poll(&p, 1, left);
		if (ready < 0 && errno == EINTR)
			continue;
		if (ready <= 0)
			return fail_context(c, REDIS_ERR_IO, ready == 0 ? EAGAIN : errno, NULL);
		n = read(c->fd, buf, sizeof(buf));
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return fail_context(c, REDIS_ERR_IO, errno, NULL);
		if (n == 0)
			return fail_context(c, REDIS_ERR_EOF, 0, "Server closed the connection");
		total += (size_t)n;
		if (total > REPLY_MAX)
			return fail_context(c, REDIS_ERR_OTHER, 0,
			                    "a reply of more than 64 KiB (not the module's script "
			                    "answering)");
		if (redisReaderFeed(c->reader, buf, (size_t)n) != REDIS_OK)
			return fail_context(c, REDIS_ERR_OOM, ENOMEM, "Out of memory");
	}
}

/* Runs one command, its reply within timeoutSeconds of the command's last
 * byte written (so that the time a stopped login spent before that is not the
 * server's); NULL (with err) unless a reply came that is not an error. */
static redisReply *command(struct conn *k, const struct tsms_config *cfg, const char *what,
                           int argc, const char **argv, char err[TSMS_STATE_ERR_MAX])
{
	long long deadline;
	struct tsms_sigguard g;
	void *reply = NULL;
	int rc, done = 0, saved_errno;

	tsms_sigguard_block(&g, SIGPIPE);
	rc = redisAppendCommandArgv(k->c, argc, argv, NULL);
	while (rc == REDIS_OK && !done) /* each write bounded by SO_SNDTIMEO */
		rc = redisBufferWrite(k->c, &done);
	deadline = tsms_clock_ms() + cfg->redis->timeout_seconds * 1000LL;
	if (rc == REDIS_OK)
		rc = read_reply(k->c, deadline, &reply);
	saved_errno = errno; /* what the failed read or write left, for io_problem */
	tsms_sigguard_restore(&g);
	errno = saved_errno;
	return answer(k, cfg, what, rc == REDIS_OK ? reply : NULL, err);
}

/* True when reply (from answer, freed here) is the status OK; else err. */
static bool status_ok(const struct tsms_config *cfg, const char *what, redisReply *reply,
                      char err[TSMS_STATE_ERR_MAX])
{
	bool ok;

	if (reply == NULL)
		return false;
	ok = reply->type == REDIS_REPLY_STATUS && reply->str != NULL &&
	     strcmp(reply->str, "OK") == 0;
	freeReplyObject(reply);
	if (!ok)
		problem(err, "redis %s unavailable: %s: unexpected reply", cfg->redis->url, what);
	return ok;
}

/* Runs a command whose answer must be the status OK (SELECT). */
static bool command_ok(struct conn *k, const struct tsms_config *cfg, const char *what, int argc,
                       const char **argv, char err[TSMS_STATE_ERR_MAX])
{
	return status_ok(cfg, what, command(k, cfg, what, argc, argv, err), err);
}

/* AUTH [username] password, which must answer OK. Not through command():
 * redisCommandArgv copies the command into hiredis's output buffer and frees
 * both copies unwiped, leaving the password in the host program's freed heap.
 * So it is formatted into a buffer of ours, written to the socket (blocking,
 * SO_SNDTIMEO), wiped and freed; hiredis only parses the reply. */
static bool authenticate(struct conn *k, const struct tsms_config *cfg,
                         char err[TSMS_STATE_ERR_MAX])
{
	const struct tsms_redis *r = cfg->redis;
	const char *argv[] = { "AUTH", r->username != NULL ? r->username : r->password,
		               r->password };
	long long deadline;
	struct tsms_sigguard g;
	void *reply = NULL;
	char *cmd = NULL;
	int len, saved_errno;
	bool sent;

	len = redisFormatCommandArgv(&cmd, r->username != NULL ? 3 : 2, argv, NULL);
	if (len < 0) {
		problem(err, "redis %s unavailable: AUTH: out of memory", r->url);
		return false;
	}
	tsms_sigguard_block(&g, SIGPIPE);
	sent = tsms_write_all(k->c->fd, cmd, (size_t)len);
	saved_errno = errno;
	deadline = tsms_clock_ms() + r->timeout_seconds * 1000LL;
	tsms_wipe(cmd, (size_t)len);
	redisFreeCommand(cmd);
	if (sent) {
		if (read_reply(k->c, deadline, &reply) != REDIS_OK)
			reply = NULL;
		saved_errno = errno;
	}
	tsms_sigguard_restore(&g);
	errno = saved_errno;
	if (!sent) {
		why_problem(cfg, REDIS_ERR_IO, strerror(saved_errno), "AUTH", err);
		return false;
	}
	return status_ok(cfg, "AUTH", answer(k, cfg, "AUTH", reply, err), err);
}

static void disconnect(struct conn *k)
{
	if (k->c != NULL) {
		struct tsms_sigguard g;

		tsms_sigguard_block(&g, SIGPIPE);
		redisFree(k->c);
		tsms_sigguard_restore(&g);
	}
	k->c = NULL;
	k->ready = false;
}

static bool connect_redis(struct conn *k, const struct tsms_config *cfg,
                          char err[TSMS_STATE_ERR_MAX])
{
	const struct tsms_redis *r = cfg->redis;
	struct timeval tv = { .tv_sec = (time_t)r->timeout_seconds };
	struct tsms_environ env;
	struct tsms_sigguard g;
	int saved_errno;
	char db[12];

	tsms_sigguard_block(&g, SIGPIPE);
	tsms_environ_hide(&env);
	if (r->socket_path != NULL)
		k->c = redisConnectUnixWithTimeout(r->socket_path, tv);
	else
		k->c = redisConnectWithTimeout(r->host, (int)r->port, tv);
	saved_errno = errno;
	tsms_environ_restore(&env);
	tsms_sigguard_restore(&g);
	if (k->c == NULL || k->c->err != 0) {
		errno = saved_errno;
		io_problem(cfg, k->c, "connect", err);
		disconnect(k);
		return false;
	}
	(void)fcntl(k->c->fd, F_SETFD, FD_CLOEXEC);
	if (redisSetTimeout(k->c, tv) != REDIS_OK) {
		io_problem(cfg, k->c, "connect", err);
		disconnect(k);
		return false;
	}
	if (r->password != NULL && !authenticate(k, cfg, err)) {
		disconnect(k);
		return false;
	}
	if (r->db != 0) {
		const char *sel[] = { "SELECT", db };

		snprintf(db, sizeof(db), "%u", r->db);
		if (!command_ok(k, cfg, "SELECT", 2, sel, err)) {
			disconnect(k);
			return false;
		}
	}
	k->ready = true;
	return true;
}

static bool load_script(struct conn *k, const struct tsms_config *cfg, char err[TSMS_STATE_ERR_MAX])
{
	const char *argv[] = { "SCRIPT", "LOAD", tsms_state_redis_script };
	redisReply *reply = command(k, cfg, "SCRIPT LOAD", 3, argv, err);
	bool ok;

	if (reply == NULL)
		return false;
	ok = reply->type == REDIS_REPLY_STRING && reply->len == 40;
	if (ok)
		memcpy(k->sha, reply->str, 41);
	freeReplyObject(reply);
	if (!ok)
		problem(err, "redis %s unavailable: SCRIPT LOAD: unexpected reply",
		        cfg->redis->url);
	return ok;
}

static const char *op_word(enum tsms_state_op op)
{
	switch (op) {
	case TSMS_OP_RESERVE:
		return "reserve";
	case TSMS_OP_RESERVE_LOCAL:
		return "local";
	case TSMS_OP_RELEASE:
		return "release";
	case TSMS_OP_FAILURE:
		return "failure";
	case TSMS_OP_SUCCESS:
		return "success";
	case TSMS_OP_STATUS:
		return "status";
	case TSMS_OP_UNLOCK:
		return "unlock";
	case TSMS_OP_USE_ONCE:
		return "used";
	case TSMS_OP_GRACE_FIND:
		return "grace";
	case TSMS_OP_GRACE_OPEN:
		return "graceopen";
	case TSMS_OP_GRACE_LIST:
		return "gracelist";
	case TSMS_OP_GRACE_REVOKE:
		return "gracerevoke";
	case TSMS_OP_GRACE_TAKE: /* the graces taken are this host's (lib/state.h) */
		break;
	}
	return "?";
}

/* True when element i of reply is an integer the script may answer. */
static bool small_integer(const redisReply *reply, size_t i)
{
	return reply->element[i]->type == REDIS_REPLY_INTEGER && reply->element[i]->integer >= 0 &&
	       reply->element[i]->integer < (1LL << 40);
}

/* gracelist's answer: now, then address and until for each grace, at most
 * TSMS_GRACE_MAX, the addresses as the module wrote them. */
static bool grace_list_reply(const redisReply *reply)
{
	if (reply->elements < 1 || reply->elements % 2 != 1 ||
	    reply->elements > 1 + 2 * TSMS_GRACE_MAX || !small_integer(reply, 0))
		return false;
	for (size_t i = 1; i < reply->elements; i += 2) {
		const redisReply *a = reply->element[i];

		if (a->type != REDIS_REPLY_STRING || a->len == 0 || a->len >= TSMS_GRACE_KEY_MAX ||
		    strspn(a->str, "0123456789abcdef.:") != a->len || !small_integer(reply, i + 1))
			return false;
	}
	return true;
}

/* Runs the script's operation op (op_word) on user's key; the reply is an
 * array of n integers (n 0: gracelist's answer). */
static redisReply *run_script(struct conn *k, const struct tsms_config *cfg, const char *user_key,
                              const char *global_key, const char *op, const char *id, size_t n,
                              char err[TSMS_STATE_ERR_MAX])
{
	char nums[7][12];
	const unsigned values[7] = {
		cfg->send_limit,          cfg->send_window_seconds, cfg->resend_cooldown_seconds,
		cfg->global_send_limit,   cfg->lockout_threshold,   cfg->lockout_seconds,
		cfg->grace_period_seconds
	};
	const char *argv[] = { "EVALSHA",
		               k->sha,
		               "2",
		               user_key,
		               global_key,
		               op,
		               nums[0],
		               nums[1],
		               nums[2],
		               nums[3],
		               nums[4],
		               nums[5],
		               id != NULL ? id : "",
		               nums[6] };
	redisReply *reply;
	bool ok;

	for (size_t i = 0; i < 7; i++)
		snprintf(nums[i], sizeof(nums[i]), "%u", values[i]);
	reply = command(k, cfg, "EVALSHA", (int)(sizeof(argv) / sizeof(argv[0])), argv, err);
	if (reply == NULL && k->c != NULL && k->c->err == 0 && strstr(err, "NOSCRIPT") != NULL) {
		if (!load_script(k, cfg, err))
			return NULL;
		reply = command(k, cfg, "EVALSHA", (int)(sizeof(argv) / sizeof(argv[0])), argv,
		                err);
	}
	if (reply == NULL)
		return NULL;
	ok = reply->type == REDIS_REPLY_ARRAY &&
	     (n == 0 ? grace_list_reply(reply) : reply->elements == n);
	for (size_t i = 0; ok && i < n; i++)
		ok = small_integer(reply, i);
	if (!ok) {
		problem(err,
		        "redis %s unavailable: EVALSHA: unexpected reply (not the module's "
		        "script answering)",
		        cfg->redis->url);
		freeReplyObject(reply);
		return NULL;
	}
	return reply;
}

static struct conn *conn_of(void **conn)
{
	if (*conn == NULL) {
		struct conn *k = calloc(1, sizeof(*k));

		if (k != NULL)
			memcpy(k->sha, tsms_state_redis_sha1, 41);
		*conn = k;
	}
	return *conn;
}

static long long at(const redisReply *reply, size_t i)
{
	return reply->element[i]->integer;
}

static enum tsms_err redis_apply(void **conn, const struct tsms_config *cfg, const char *user,
                                 time_t now, enum tsms_state_op op, struct tsms_state_answer *a,
                                 char err[TSMS_STATE_ERR_MAX])
{
	const struct tsms_redis *r = cfg->redis;
	char name[TSMS_STATE_NAME_MAX], user_key[160], global_key[160];
	struct conn *k = conn_of(conn);
	size_t n = op == TSMS_OP_STATUS || op == TSMS_OP_UNLOCK                               ? 7
	           : op == TSMS_OP_FAILURE                                                    ? 3
	           : op == TSMS_OP_SUCCESS || op == TSMS_OP_USE_ONCE || op == TSMS_OP_RELEASE ? 1
	           : op == TSMS_OP_GRACE_OPEN || op == TSMS_OP_GRACE_REVOKE                   ? 1
	           : op == TSMS_OP_GRACE_LIST                                                 ? 0
	                                                                                      : 2;
	bool grace = op == TSMS_OP_GRACE_FIND || op == TSMS_OP_GRACE_OPEN ||
	             op == TSMS_OP_GRACE_LIST || op == TSMS_OP_GRACE_REVOKE;
	redisReply *reply;

	/* the server's clock decides */
	if (k == NULL) {
		problem(err, "redis %s unavailable: out of memory", r->url);
		return TSMS_ERR_UNAVAILABLE;
	}
	tsms_state_file_name(user, name);
	snprintf(user_key, sizeof(user_key), "%suser:%s", r->key_prefix, name);
	if (op == TSMS_OP_GRACE_TAKE) {
		problem(err, "redis %s: no grace is taken from Redis", r->url);
		return TSMS_ERR_STATE;
	}
	if (op == TSMS_OP_USE_ONCE)
		snprintf(global_key, sizeof(global_key), "%sused:%s", r->key_prefix, name);
	else if (grace)
		snprintf(global_key, sizeof(global_key), "%sgrace:%s", r->key_prefix, name);
	else
		snprintf(global_key, sizeof(global_key), "%sglobal", r->key_prefix);
	if (!k->ready && !connect_redis(k, cfg, err))
		return TSMS_ERR_UNAVAILABLE;
	reply = run_script(k, cfg, user_key, global_key, op_word(op),
	                   grace && a->grace != NULL ? a->grace->key : a->id, n, err);
	if (reply == NULL) {
		disconnect(k); /* whatever it says next cannot be trusted */
		return TSMS_ERR_UNAVAILABLE;
	}
	if (op == TSMS_OP_RESERVE || op == TSMS_OP_RESERVE_LOCAL) {
		a->verdict = at(reply, 0) <= TSMS_VERDICT_GLOBAL_LIMIT
		                     ? (enum tsms_verdict)at(reply, 0)
		                     : TSMS_VERDICT_LOCKED;
		a->wait = at(reply, 1);
	} else if (op == TSMS_OP_FAILURE) {
		a->locked = at(reply, 0) != 0;
		a->verdict = at(reply, 1) != 0 ? TSMS_VERDICT_LOCKED : TSMS_VERDICT_OK;
		a->wait = at(reply, 2);
	} else if (op == TSMS_OP_USE_ONCE) {
		a->first = at(reply, 0) != 0;
	} else if (op == TSMS_OP_GRACE_FIND) {
		a->locked = at(reply, 0) != 0;
		a->wait = at(reply, 1);
	} else if (op == TSMS_OP_GRACE_REVOKE) {
		a->n = (size_t)at(reply, 0);
	} else if (op == TSMS_OP_GRACE_LIST) {
		/* until by the server's clock, shown from now by this host's */
		long long skew = (long long)now - at(reply, 0);

		for (size_t i = 1; i < reply->elements; i += 2) {
			struct tsms_grace *g = &a->graces[a->n++];

			memset(g, 0, sizeof(*g));
			g->kind = TSMS_GRACE_ADDRESS;
			memcpy(g->key, reply->element[i]->str, reply->element[i]->len);
			g->until = at(reply, i + 1) + skew;
			g->shared = true;
		}
	} else if (a->status != NULL) {
		const struct tsms_state_record rec = {
			.window_start = at(reply, 2),
			.sends = (unsigned)at(reply, 3),
			.last_send = at(reply, 4),
			.failures = (unsigned)at(reply, 5),
			.locked_until = at(reply, 6),
		};
		a->status->shared = true;
		tsms_format_clean(a->status->where, sizeof(a->status->where), "%s at %s", user_key,
		                  r->url);
		a->status->exists = at(reply, 1) != 0;
		if (a->status->exists)
			tsms_state_describe(cfg, &rec, (time_t)at(reply, 0), a->status);
	}
	freeReplyObject(reply);
	return TSMS_OK;
}

static enum tsms_err redis_check(void **conn, const struct tsms_config *cfg,
                                 char msg[TSMS_STATE_ERR_MAX])
{
	const struct tsms_redis *r = cfg->redis;
	struct conn *k = conn_of(conn);
	char key[100], used_key[100];
	redisReply *reply;

	if (k == NULL) {
		problem(msg, "redis %s unavailable: out of memory", r->url);
		return TSMS_ERR_UNAVAILABLE;
	}
	if ((!k->ready && !connect_redis(k, cfg, msg)) || !load_script(k, cfg, msg)) {
		disconnect(k);
		return TSMS_ERR_UNAVAILABLE;
	}
	if (strcmp(k->sha, tsms_state_redis_sha1) != 0) {
		problem(msg, "redis %s: the server names the script %s, not %s", r->url, k->sha,
		        tsms_state_redis_sha1);
		return TSMS_ERR_UNAVAILABLE;
	}
	/* a read, then every command that writes, on a key that is gone afterwards */
	snprintf(key, sizeof(key), "%scheck", r->key_prefix);
	snprintf(used_key, sizeof(used_key), "%scheck-used", r->key_prefix);
	reply = run_script(k, cfg, key, key, op_word(TSMS_OP_STATUS), NULL, 7, msg);
	if (reply != NULL) {
		freeReplyObject(reply);
		reply = run_script(k, cfg, key, used_key, "probe", NULL, 1, msg);
	}
	if (reply == NULL) {
		disconnect(k);
		return TSMS_ERR_UNAVAILABLE;
	}
	freeReplyObject(reply);
	problem(msg, "redis %s: connected (%s%s), script loaded", r->url,
	        r->username != NULL ? "as " : "without ACL user",
	        r->username != NULL ? r->username : "");
	return TSMS_OK;
}

static void redis_close(void *conn)
{
	struct conn *k = conn;

	if (k == NULL)
		return;
	disconnect(k);
	free(k);
}

const struct tsms_state_store tsms_state_redis = {
	.name = "redis",
	.apply = redis_apply,
	.check = redis_check,
	.close = redis_close,
};
