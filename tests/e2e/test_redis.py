"""End-to-end cases: send limits and lockout shared by every host through Redis
(tests/harness/redis.py: one real redis-server for this family, on loopback and a Unix
socket, with the fleet guide's ACL user). Two hosts are two configs with their own stateDir on
the same Redis: a lockout, sendLimit and globalSendLimit reached over both, many logins at
once counted exactly, keys under keyPrefix only and always with a TTL, hashed user names,
the Unix socket and databases, a second fleet's prefix, and every Redis failure (a wrong
password, a stopped, hanging or garbage-speaking server) falling back to the host's own
stateDir with one warning, then Redis used again when it is back; config errors deny.
What Redis holds is read over the harness's own admin connection (SCAN, HGETALL, PTTL)."""

import hashlib
import os
import re
import subprocess
import time
from pathlib import Path

from harness.core import REPO, CaseFailure, case, check
from harness.pam import (RUN_LIMIT, TIME_SLACK, FreedScan, authenticate_at_once,
                         expect_config_error, right, typed, unwrapped_case, wrong)
from harness.redis import (ADMIN_PASSWORD, KEY_PREFIX, PAM_PASSWORD, Garbage, Hang, Redis,
                           Stream, fallback_warnings, family_server, host)
from harness.state import read_graces, read_state
from harness.system import free_port

# TSMS_TOOL tests another build of the command (as tests/cli does)
TOOL = Path(os.environ.get("TSMS_TOOL") or REPO / "twilio-sms-otp").resolve()
FLEET_B = "fleet_b:"
FLEET_B_USER = "fleetb"
USER_FIELDS = {"window_start", "sends", "last_send", "failures", "locked_until"}
GLOBAL_FIELDS = {"window_start", "sends", "last_send"}
SECRETS = (PAM_PASSWORD, ADMIN_PASSWORD, Redis.password(FLEET_B_USER))
SECRETS_EXTRA = []  # a case's own


def redis(h):
    """The family's Redis, running and emptied for every case (harness.redis)."""
    return family_server("redis", h.workdir, users={FLEET_B_USER: FLEET_B + "*"})


def two_hosts(h, redis_cfg, tag="", **over):
    """Hosts TAGa and TAGb of one fleet: the same config (over) and redis object."""
    return (host(h, tag + "a", redis=redis_cfg, **over),
            host(h, tag + "b", redis=redis_cfg, **over))


def user_key(name, prefix=KEY_PREFIX):
    return f"{prefix}user:{name}"


def hashed(user):
    """The state name of a user name that is not a plain one: "=" and BLAKE2b-128 of a NUL
    byte and the name (lib/otp.c tsms_digest_hex with no secret), in hex."""
    return "=" + hashlib.blake2b(b"\0" + user.encode(), digest_size=16).hexdigest()


def no_secret(texts):
    for text in texts:
        for secret in SECRETS + tuple(SECRETS_EXTRA):
            check(secret not in text, f"a Redis password reached the log or output: {text!r}")


def login(h, hst, user, answers, result, *, sms=None, prompts=None, warned=None, **kw):
    """One login on hst, expected to end in result; warned: the (url, PROBLEM regex)
    of the one fallback warning it must log, else it must log none about Redis."""
    run = h.authenticate(hst.service, user, answers, **kw)
    h.expect(run, result, sms=sms, prompts=prompts)
    no_secret(run.raw_logs + [run.output])
    got = fallback_warnings(run)
    if warned is None:
        check(got == [], f"Redis warnings where Redis works: {got!r}")
    else:
        url, problem = warned
        check(len(got) == 1, f"{len(got)} Redis warnings, want 1: {run.module_logs!r}")
        check(got[0][0] == url and got[0][2] == str(hst.state_dir),
              f"warning names {got[0][0]} and {got[0][2]}, want {url} and {hst.state_dir}")
        check(re.search(problem, got[0][1]), f"problem {got[0][1]!r}, want /{problem}/")
    return run


def check_keyspace(s, want=None, prefixes=(KEY_PREFIX,), longest=None):
    """Every key in every database of s is under one of prefixes with a TTL > 0 (and at
    most longest seconds); want: the exact set of db-0 keys. Returns {key: TTL} of db 0."""
    every = s.all_keys()
    for (db, key), ttl in every.items():
        check(isinstance(key, str) and key.startswith(prefixes),
              f"key {key!r} in db {db} is outside {prefixes}")
        check(ttl > 0, f"key {key!r} has no TTL ({ttl})")
        if longest is not None:
            check(ttl <= longest, f"key {key!r}: TTL {ttl:.1f}s, longer than {longest}s")
    keys = {k: t for (db, k), t in every.items() if db == 0}
    if want is not None:
        check(set(keys) == set(want), f"keys {sorted(keys)}, want {sorted(want)}")
    return keys


def check_fields(s, key, fields):
    got = s.hash(key)
    check(set(got) <= fields, f"{key}: fields {sorted(got)}, want some of {sorted(fields)}")
    return got


def no_state_file(hst, name="alice"):
    check(not (hst.state_dir / name).exists(),
          f"{hst.state_dir / name} written although Redis answered")


# --------------------------------------------------------------------------- shared limits

@case
def redis_lockout_over_both_hosts(h):
    s = redis(h)
    a, b = two_hosts(h, s.module_config(), lockoutThreshold=3, maxAttempts=2)
    login(h, a, "alice", [wrong(), wrong()], "PAM_MAXTRIES", sms=1, prompts=2)
    run = login(h, b, "alice", [wrong(), right()], "PAM_AUTH_ERR", sms=1, prompts=1)
    check("Too many wrong codes" in run.output, f"not locked by the third: {run.output!r}")
    for hst in (a, b):
        run = login(h, hst, "alice", [right()], "PAM_AUTH_ERR", sms=0, prompts=0)
        check("lockoutThreshold" in run.outcomes[0], f"outcome {run.outcomes[0]!r}")
        check(re.search(r"locked for \d+ more seconds", run.output), f"not told: {run.output!r}")
    state = check_fields(s, user_key("alice"), USER_FIELDS)
    check(state["failures"] == 3 and state["locked_until"] > time.time() + 800,
          f"alice in Redis: {state}")
    login(h, b, "bob", [right()], "PAM_SUCCESS", sms=1)  # others are not locked
    check_keyspace(s, want=[user_key("alice"), user_key("bob")], longest=900)
    no_state_file(a)
    no_state_file(b)


@case
def redis_clock_stepped_back_stretches_nothing(h):
    """A key written while Redis's clock ran 2 hours fast (then stepped back): the lockout
    lasts lockoutSeconds from the server's now at most, and the capped times are kept."""
    s = redis(h)
    a = host(h, "a", redis=s.module_config(), lockoutSeconds=900)
    ahead = int(time.time()) + 7200
    s.command("HSET", user_key("alice"), "window_start", ahead, "sends", 1, "last_send", ahead,
              "failures", 10, "locked_until", ahead + 900)
    s.command("EXPIRE", user_key("alice"), 9000)
    run = login(h, a, "alice", [right()], "PAM_AUTH_ERR", sms=0, prompts=0)
    m = re.search(r"locked for (\d+) more seconds", run.output)
    check(m and int(m.group(1)) <= 900, f"told {run.output!r}, want at most 900 seconds")
    state = s.user_hash("alice")
    check(state["locked_until"] <= time.time() + 900 and state["window_start"] <= time.time()
          and state["last_send"] <= time.time(), f"the capped times were not kept: {state}")
    no_state_file(a)


@case
def redis_text_that_never_left_is_given_back(h):
    """Twilio refusing the credential (401): the script gives the reservation back, for the
    user and the global cap, and starts no cooldown; a 500 (may have sent) still counts."""
    s = redis(h)
    a = host(h, "a", redis=s.module_config(), globalSendLimit=100, resendCooldownSeconds=30,
             maxRetries=0)
    h.sandbox.set_scenario("401")
    try:
        login(h, a, "alice", [right()], "PAM_AUTHINFO_UNAVAIL", sms=0, prompts=0)
        state, total = s.user_hash("alice"), s.hash(f"{KEY_PREFIX}global")
        check(state.get("sends", 0) == 0 and state.get("last_send", 0) == 0 and
              total.get("sends", 0) == 0, f"counted: {state}, global {total}")
        h.sandbox.set_scenario("500")
        login(h, a, "alice", [right()], "PAM_AUTHINFO_UNAVAIL", sms=0, prompts=0)
        state = s.user_hash("alice")
        check(state["sends"] == 1 and state["last_send"] > 0, f"not counted: {state}")
    finally:
        h.sandbox.set_scenario("ok")
    no_state_file(a)


@case
def redis_send_limit_over_both_hosts(h):
    s = redis(h)
    a, b = two_hosts(h, s.module_config(), sendLimit=3)
    for hst in (a, b, a):
        login(h, hst, "alice", [right()], "PAM_SUCCESS", sms=1, prompts=1)
        s.command("SCRIPT", "FLUSH")  # NOSCRIPT for the next login: it loads the script
    for hst in (b, a):
        run = login(h, hst, "alice", [right()], "PAM_AUTH_ERR", sms=0, prompts=0)
        check("send limit reached (sendLimit)" in run.outcomes[0], f"outcome {run.outcomes[0]!r}")
    check(s.user_hash("alice")["sends"] == 3, f"alice in Redis: {s.user_hash('alice')}")
    login(h, b, "bob", [right()], "PAM_SUCCESS", sms=1)
    check_keyspace(s, want=[user_key("alice"), user_key("bob")])  # no global key: no limit


@case
def redis_global_limit_over_hosts_and_users(h):
    s = redis(h)
    a, b = two_hosts(h, s.module_config(), globalSendLimit=3, sendWindowSeconds=600)
    for hst, user in ((a, "alice"), (b, "bob"), (a, "carol")):
        login(h, hst, user, [right()], "PAM_SUCCESS", sms=1)
    for hst, user in ((b, "alice"), (a, "bob")):
        run = login(h, hst, user, [right()], "PAM_AUTH_ERR", sms=0, prompts=0)
        check("global send limit reached (globalSendLimit)" in run.outcomes[0],
              f"outcome {run.outcomes[0]!r}")
    glob = check_fields(s, KEY_PREFIX + "global", GLOBAL_FIELDS)
    check(glob["sends"] == 3, f"global in Redis: {glob}")
    keys = check_keyspace(s, want=[KEY_PREFIX + "global"] + [user_key(u) for u in
                                                             ("alice", "bob", "carol")])
    check(keys[KEY_PREFIX + "global"] <= 600, f"global TTL {keys[KEY_PREFIX + 'global']}")
    check(sum(s.user_hash(u)["sends"] for u in ("alice", "bob", "carol")) == 3,
          "the refused logins were counted for their users")


CONCURRENT = 40
CONCURRENT_USERS = 20
CONCURRENT_GLOBAL = 15


@case
def concurrent_redis_logins_over_both_hosts_count_exactly(h):
    """40 logins at once, 20 users each on both hosts, sendLimit 1 and globalSendLimit 15:
    exactly 15 SMS, never two to a user, and Redis counts exactly what was sent."""
    s = redis(h)
    users = {f"user{i:02d}": f"+1555557{i:04d}" for i in range(CONCURRENT_USERS)}
    a, b = two_hosts(h, s.module_config(), users=users, sendLimit=1,
                     globalSendLimit=CONCURRENT_GLOBAL)
    jobs = [(hst.service, u) for u in users for hst in (a, b)]
    before = len(h.sandbox.outbox())
    runs, logs = authenticate_at_once(h, jobs)
    sent = h.sandbox.outbox()[before:]
    check(len(sent) == CONCURRENT_GLOBAL, f"{len(sent)} SMS sent by {CONCURRENT} logins, want "
          f"{CONCURRENT_GLOBAL}")
    check(len({m["to"] for m in sent}) == len(sent), "a user got two SMS")
    check(sum(bool(r.prompts) for r in runs) == CONCURRENT_GLOBAL,
          f"{sum(bool(r.prompts) for r in runs)} logins prompted")
    outcomes = [l for l in logs if re.search(r"^pam_twilio_sms\(tsms-test-.*:auth\): .*"
                                             r"result=PAM_", l)]
    check(len(outcomes) == CONCURRENT, f"{len(outcomes)} outcome lines")
    refused = [l for l in outcomes if "result=PAM_AUTH_ERR" in l]
    check(len(refused) == CONCURRENT - CONCURRENT_GLOBAL and
          all("sendLimit" in l or "globalSendLimit" in l for l in refused),
          f"{len(refused)} refusals: {refused[:2]!r}")
    check(not [l for l in logs if "unavailable" in l], "a Redis warning under load")
    no_secret(logs)
    glob = s.hash(KEY_PREFIX + "global")
    check(glob.get("sends") == CONCURRENT_GLOBAL, f"global in Redis: {glob}")
    counts = {u: s.user_hash(u).get("sends", 0) for u in users}
    check(sum(counts.values()) == CONCURRENT_GLOBAL and max(counts.values()) == 1,
          f"users' sends in Redis: {counts}")
    check({m["to"] for m in sent} == {users[u] for u, n in counts.items() if n == 1},
          "Redis counted other users than those who got an SMS")
    check_keyspace(s)
    for hst in (a, b):
        check(not hst.state_dir.exists() or not any(hst.state_dir.iterdir()),
              f"fallback files in {hst.state_dir}: Redis answered every login")


@case
def redis_keys_have_ttls_and_stay_under_the_prefix(h):
    """Every key the module writes is under keyPrefix with a TTL that ends with what it
    guards: the window for sends, lockoutSeconds after a wrong code or a lockout; back to
    the window end after a success; nothing else anywhere in Redis. Each TTL is checked
    against when its login ran (slow clients, e.g. valgrind, make runs long)."""
    s = redis(h)
    window, lockout = 120, 200
    a, b = two_hosts(h, s.module_config(), sendWindowSeconds=window, lockoutSeconds=lockout,
                     lockoutThreshold=2, maxAttempts=1, globalSendLimit=100)
    ran = {}
    for tag, hst, user, answer, result in (
            ("alice", a, "alice", right(), "PAM_SUCCESS"),
            ("bob", b, "bob", wrong(), "PAM_MAXTRIES"),  # 1 of 2 wrong codes
            ("carol1", a, "carol", wrong(), "PAM_MAXTRIES"),
            ("carol", b, "carol", wrong(), "PAM_AUTH_ERR")):  # the second locks
        before = time.time()
        login(h, hst, user, [answer], result, sms=1)
        ran[tag] = (before, time.time())
    scan_start = time.time()
    keys = check_keyspace(s, want=[KEY_PREFIX + "global"] + [user_key(u) for u in
                                                             ("alice", "bob", "carol")],
                          longest=lockout)
    scan_end = time.time()

    def ends(key, tag, span):
        """key's TTL ends span seconds after a moment during login tag (1 s of rounding:
        TIME's seconds, EXPIRE's)."""
        low = ran[tag][0] - 1 + span - scan_end - 1
        high = ran[tag][1] + span - scan_start + 1
        check(low <= keys[key] <= high, f"{key}: TTL {keys[key]:.1f}s, want {low:.1f}-"
              f"{high:.1f}s ({span}s after login {tag})")

    ends(user_key("alice"), "alice", window)
    ends(KEY_PREFIX + "global", "alice", window)  # the first send opened its window
    ends(user_key("bob"), "bob", lockout)  # a wrong code: lockoutSeconds after it
    ends(user_key("carol"), "carol", lockout)  # locked: until the lockout ends
    carol = check_fields(s, user_key("carol"), USER_FIELDS)
    check(carol["failures"] == 2 and
          ran["carol"][0] - 1 + lockout <= carol["locked_until"] <= ran["carol"][1] + lockout
          and ran["carol1"][0] - 1 <= carol["window_start"] <= ran["carol1"][1],
          f"carol in Redis: {carol}")
    check_fields(s, KEY_PREFIX + "global", GLOBAL_FIELDS)
    login(h, a, "bob", [right()], "PAM_SUCCESS", sms=1)  # failures cleared
    ttl = s.keys()[user_key("bob")]
    check(ttl <= ran["bob"][1] + window - time.time() + 1,
          f"bob's TTL {ttl:.1f}s after his success: not back to his window's end")
    check(s.user_hash("bob").get("failures", 0) == 0, f"bob in Redis: {s.user_hash('bob')}")


@case
def redis_user_names_hashed_like_state_files(h):
    """A name that is not a plain user name is stored as user:=<32 hex> only, for a
    mapped user and for a decoy (an unmapped one), which never counts globally."""
    s = redis(h)
    mapped, unmapped = "Dave.Smith", "Mallory@Corp"
    a, b = two_hosts(h, s.module_config(), users={mapped: "+15555550140"},
                     globalSendLimit=10)
    login(h, a, mapped, [right()], "PAM_SUCCESS", sms=1)
    login(h, b, unmapped, [typed("000000")] * 3, "PAM_MAXTRIES", sms=0)
    keys = check_keyspace(s, want=[user_key(hashed(mapped)), user_key(hashed(unmapped)),
                                   KEY_PREFIX + "global"])
    for key in keys:
        check(re.fullmatch(rf"{KEY_PREFIX}(user:=[0-9a-f]{{32}}|global)", key), f"key {key!r}")
    check(s.user_hash(hashed(mapped))["sends"] == 1, f"{s.user_hash(hashed(mapped))}")
    check(s.hash(KEY_PREFIX + "global")["sends"] == 1, "the decoy counted globally")


@case
def redis_unix_socket_and_databases(h):
    """unix:///PATH (and ?db=N), redis://localhost:PORT/N, redis://[::1]:PORT/15 where the
    machine has ::1: the keys land in that database of the same server."""
    s = redis(h)
    cases = [(s.unix_url, 0), (s.unix_url + "?db=3", 3), (f"redis://localhost:{s.port}/5", 5)]
    if s.ipv6_url:
        cases.append((s.ipv6_url.replace("/0", "/15"), 15))
    for url, db in cases:
        s.flush()
        a, b = two_hosts(h, s.module_config(url=url), sendLimit=1)
        login(h, a, "alice", [right()], "PAM_SUCCESS", sms=1)
        run = login(h, b, "alice", [right()], "PAM_AUTH_ERR", sms=0)
        check("sendLimit" in run.outcomes[0], f"{url}: outcome {run.outcomes[0]!r}")
        check_keyspace(s)
        every = s.all_keys()
        check(set(every) == {(db, user_key("alice"))}, f"{url}: keys {sorted(every)}")


@case
def redis_second_fleet_prefix_keeps_its_own_counts(h):
    s = redis(h)
    a, b = two_hosts(h, s.module_config(), sendLimit=1)
    fleet_b = host(h, "fleet-b", sendLimit=1, redis=s.module_config(
        keyPrefix=FLEET_B, username=FLEET_B_USER, password=Redis.password(FLEET_B_USER)))
    login(h, a, "alice", [right()], "PAM_SUCCESS", sms=1)
    login(h, fleet_b, "alice", [right()], "PAM_SUCCESS", sms=1)
    for hst in (b, fleet_b):
        run = login(h, hst, "alice", [right()], "PAM_AUTH_ERR", sms=0)
        check("sendLimit" in run.outcomes[0], f"outcome {run.outcomes[0]!r}")
    check_keyspace(s, want=[user_key("alice"), user_key("alice", FLEET_B)],
                   prefixes=(KEY_PREFIX, FLEET_B))
    check(s.user_hash("alice")["sends"] == 1 and s.user_hash("alice", FLEET_B)["sends"] == 1,
          f"{s.user_hash('alice')} {s.user_hash('alice', FLEET_B)}")


@unwrapped_case
def redis_password_never_left_in_freed_memory(h):
    """No heap block that pamtester frees holds the Redis password, after AUTH with the
    right one and with a wrong one: the module wipes its copies and hiredis never gets one
    (harness.pam.FreedScan)."""
    s = redis(h)
    wrong_password = "not-" + PAM_PASSWORD
    for tag, password, warned in (("a", PAM_PASSWORD, None),
                                  ("b", wrong_password, (s.url, r"^AUTH: WRONGPASS"))):
        hst = host(h, tag, redis=s.module_config(password=password))
        scan = FreedScan(h, tag, [password])
        login(h, hst, "alice", [right()], "PAM_SUCCESS", sms=1, warned=warned, env=scan.env)
        scan.check()
    check(s.user_hash("alice").get("sends") == 1, f"alice in Redis: {s.user_hash('alice')}")


# --------------------------------------------------------------------------- Redis fails

def fallback_case(h, redis_cfg, problem, limit=None, tag=""):
    """Redis fails for every login (redis_cfg): each login decides with its own host's
    stateDir (sendLimit 1 holds per host: a second login on a is refused, one on b is
    allowed), logs one warning naming the url, the problem and that stateDir, and, with
    limit, ends within limit seconds. Returns the hosts."""
    a, b = two_hosts(h, redis_cfg, tag, sendLimit=1)
    warned = (redis_cfg["url"], problem)
    # the same logins with the files alone: what a login costs here without Redis (under
    # valgrind several seconds), so that limit bounds only what the failing Redis adds
    base = {}
    if limit is not None:
        files = host(h, tag + "files", resendCooldownSeconds=0)
        for answers in ([wrong(), right()], [right()]):
            base[len(answers)] = h.authenticate(files.service, "alice", answers).elapsed
    # the first login decides three times (send, wrong code, right code): one warning
    for hst, answers, result, sms in ((a, [wrong(), right()], "PAM_SUCCESS", 1),
                                      (a, [right()], "PAM_AUTH_ERR", 0),
                                      (b, [right()], "PAM_SUCCESS", 1)):
        run = login(h, hst, "alice", answers, result, sms=sms, warned=warned)
        if result == "PAM_AUTH_ERR":
            check("send limit reached (sendLimit)" in run.outcomes[0],
                  f"outcome {run.outcomes[0]!r}")
        if limit is not None:
            spent = base[len(answers)]
            check(run.elapsed < spent + limit + TIME_SLACK,
                  f"the login took {run.elapsed:.2f}s, more than {limit}s beyond the "
                  f"{spent:.2f}s the same login takes without Redis")
    for hst in (a, b):
        state = read_state(hst.state_dir / "alice")
        check(state["sends"] == 1 and state["failures"] == 0, f"{hst.state_dir}: {state}")
    return a, b


@case
def redis_wrong_password_falls_back(h):
    s = redis(h)
    fallback_case(h, s.module_config(password="not-" + PAM_PASSWORD), r"^AUTH: WRONGPASS")
    check_keyspace(s, want=[])


@case
def redis_stopped_falls_back_and_is_used_again(h):
    s = redis(h)
    cfg = s.module_config()
    s.halt()
    try:
        a, b = fallback_case(h, cfg, r"^connect: Connection refused", limit=3)
    finally:
        s.restart()
    # back: the next login asks Redis again (empty: a's full stateDir does not decide)
    login(h, a, "alice", [right()], "PAM_SUCCESS", sms=1)
    run = login(h, b, "alice", [right()], "PAM_AUTH_ERR", sms=0)
    check("sendLimit" in run.outcomes[0], f"outcome {run.outcomes[0]!r}")
    check(s.user_hash("alice")["sends"] == 1, f"alice in Redis: {s.user_hash('alice')}")
    check(read_state(a.state_dir / "alice")["sends"] == 1, "a's fallback file changed")


@case
def redis_hanging_falls_back_within_the_timeout(h):
    """A server that accepts and never answers, and one that hangs after AUTH and SELECT
    (at the script): each login goes on within timeoutSeconds + 1 s."""
    redis(h)
    hole = Hang().start()
    quiet = Garbage(silent=("EVALSHA", "EVAL", "SCRIPT")).start()
    try:
        for tag, server in (("hang-", hole), ("quiet-", quiet)):
            cfg = {"url": server.url, "username": "pam", "password": PAM_PASSWORD,
                   "timeoutSeconds": 1}
            fallback_case(h, cfg, r"^(?:\S+: )?timed out after 1 s", limit=1 + 1, tag=tag)
            check(server.accepted == 3, f"{tag}: {server.accepted} connections, want 3")
        check("AUTH" in quiet.commands and set(quiet.commands) & quiet.silent,
              f"the quiet server saw {quiet.commands}")
    finally:
        hole.stop()
        quiet.stop()


@case
def redis_trickling_or_flooding_reply_falls_back(h):
    """A server whose reply never ends: one byte every 0.1 s (each read gets something, so a
    read timeout alone never fires) falls back within timeoutSeconds + 1 s; 64 KiB at a time
    as fast as it can (a reply that would grow without end in the module's memory) falls back
    at once, the reply refused past 64 KiB."""
    redis(h)
    for tag, server, problem, limit in (
            ("trickle-", Stream(), r"^(?:\S+: )?timed out after 1 s", 1 + 1),
            ("flood-", Stream(chunk=b"x" * 65536, interval=0), r"a reply of more than 64 KiB",
             1)):
        server.start()
        try:
            cfg = {"url": server.url, "timeoutSeconds": 1}  # no AUTH: the script's reply
            fallback_case(h, cfg, problem, limit=limit, tag=tag)
            check(server.accepted == 3, f"{tag}: {server.accepted} connections, want 3")
        finally:
            server.stop()


@case
def redis_garbage_replies_fall_back(h):
    redis(h)
    g = Garbage().start()
    try:
        cfg = {"url": g.url, "username": "pam", "password": PAM_PASSWORD}
        fallback_case(h, cfg, r"unexpected reply")
        check(g.accepted == 3, f"{g.accepted} connections to the garbage server, want 3")
    finally:
        g.stop()


@case
def redis_nothing_listening_falls_back(h):
    redis(h)
    url = f"redis://127.0.0.1:{free_port()}/0"
    fallback_case(h, {"url": url, "username": "pam", "password": PAM_PASSWORD},
                  r"^connect: Connection refused", limit=3)


@case
def redis_password_alone_authenticates_as_the_default_user(h):
    """password without username: AUTH PASSWORD (a server with requirepass, or the
    default user's password); the limits are shared as with an ACL user."""
    secret = "redis-default-Secret-1357"
    other = Redis(h.workdir, default_password=secret)
    try:
        other.start()
        a, b = two_hosts(h, {"url": other.url, "password": secret}, sendLimit=1)
        SECRETS_EXTRA.append(secret)
        login(h, a, "alice", [right()], "PAM_SUCCESS", sms=1)
        run = login(h, b, "alice", [right()], "PAM_AUTH_ERR", sms=0)
        check("sendLimit" in run.outcomes[0], f"outcome {run.outcomes[0]!r}")
        check(other.user_hash("alice")["sends"] == 1, f"alice: {other.user_hash('alice')}")
    finally:
        SECRETS_EXTRA.clear()
        other.stop()


# --------------------------------------------------------------------------- graces

GRACE_FROM = "192.0.2.7"  # documentation addresses (RFC 5737): only strings here
GRACE_OTHER = "192.0.2.8"


def login_from(h, hst, user, rhost, answers, result, **kw):
    """login() with PAM_RHOST set to rhost."""
    return login(h, hst, user, answers, result, client=[
        "pamtester", "-I", f"rhost={rhost}", hst.service, user, "authenticate"], **kw)


def graced(run, address):
    check("method=grace-address" in run.outcomes[0] and f"reason=from {address}," in
          run.outcomes[0], f"outcome {run.outcomes[0]!r}, want a grace from {address}")


def grace_key(name="alice"):
    return f"{KEY_PREFIX}grace:{name}"


def fleet_graces(s, name="alice"):
    """{field: (address, until)} of the fleet's grace key of name."""
    flat = s.command("HGETALL", grace_key(name)) or []
    out = {}
    for field, value in zip(flat[::2], flat[1::2]):
        address, _, until = value.partition(" ")
        check(re.fullmatch(r"s([1-9]|1[0-2])", field) and until.isdigit(),
              f"{grace_key(name)}: {field} = {value!r}, want sN = 'ADDRESS UNTIL'")
        out[field] = (address, int(until))
    return out


def admin(hst, *args):
    """twilio-sms-otp --config HOST'S CONFIG ARGS..., as an administrator runs it."""
    p = subprocess.run([str(TOOL), "--config", hst.config, *args], capture_output=True,
                       text=True, timeout=RUN_LIMIT, stdin=subprocess.DEVNULL)
    no_secret([p.stdout, p.stderr])
    return p


@case
def redis_grace_fleet_lets_the_other_host_in(h):
    """graceScope fleet: a code on host a from an address lets host b in from it, not from
    another; the grace is a key under the prefix with a TTL of gracePeriodSeconds at most,
    and no stateDir holds it."""
    s = redis(h)
    a, b = two_hosts(h, s.module_config(), gracePeriodSeconds=600, graceScope="fleet")
    before = int(time.time())
    login_from(h, a, "alice", GRACE_FROM, [right()], "PAM_SUCCESS", sms=1, prompts=1)
    graced(login_from(h, b, "alice", GRACE_FROM, [], "PAM_SUCCESS", sms=0, prompts=0),
           GRACE_FROM)
    graced(login_from(h, a, "alice", GRACE_FROM, [], "PAM_SUCCESS", sms=0, prompts=0),
           GRACE_FROM)
    login_from(h, b, "alice", GRACE_OTHER, [right()], "PAM_SUCCESS", sms=1, prompts=1)
    login_from(h, b, "bob", GRACE_FROM, [right()], "PAM_SUCCESS", sms=1, prompts=1)
    got = sorted(fleet_graces(s).values())
    check([g[0] for g in got] == [GRACE_FROM, GRACE_OTHER] and
          all(before + 600 <= u <= time.time() + 600 for _, u in got),
          f"{grace_key()}: {got}, want graces from {GRACE_FROM} and {GRACE_OTHER} of 600 s")
    keys = check_keyspace(s)
    for name in ("alice", "bob"):
        check(0 < keys.get(grace_key(name), 0) <= 600,
              f"{grace_key(name)}: TTL {keys.get(grace_key(name))}, want 600 s at most")
    for hst in (a, b):
        no_state_file(hst)
        no_state_file(hst, "bob")


@case
def redis_grace_host_scope_stays_on_the_host(h):
    """graceScope host (the default) with Redis: the grace is in this host's stateDir; the
    other host asks; Redis holds no grace key."""
    s = redis(h)
    a, b = two_hosts(h, s.module_config(), gracePeriodSeconds=600)
    login_from(h, a, "alice", GRACE_FROM, [right()], "PAM_SUCCESS", sms=1, prompts=1)
    login_from(h, b, "alice", GRACE_FROM, [right()], "PAM_SUCCESS", sms=1, prompts=1)
    graced(login_from(h, a, "alice", GRACE_FROM, [], "PAM_SUCCESS", sms=0, prompts=0),
           GRACE_FROM)
    for hst in (a, b):
        check([g[:2] for g in read_graces(hst.state_dir / "alice")] == [("a", GRACE_FROM)],
              f"{hst.state_dir}: graces {read_graces(hst.state_dir / 'alice')}")
    check(grace_key() not in check_keyspace(s), f"{grace_key()} in Redis")


@case
def redis_grace_host_scope_yields_to_the_fleet_lockout(h):
    """A grace in this host's stateDir does not let in a user locked out in Redis (on
    another host)."""
    s = redis(h)
    a, b = two_hosts(h, s.module_config(), gracePeriodSeconds=600, lockoutThreshold=2,
                     maxAttempts=2)
    login_from(h, a, "alice", GRACE_FROM, [right()], "PAM_SUCCESS", sms=1, prompts=1)
    login(h, b, "alice", [wrong(), wrong()], "PAM_AUTH_ERR", sms=1, prompts=2)
    check(s.user_hash("alice")["locked_until"] > time.time(), f"{s.user_hash('alice')}")
    run = login_from(h, a, "alice", GRACE_FROM, [right()], "PAM_AUTH_ERR", sms=0, prompts=0)
    check("lockoutThreshold" in run.outcomes[0], f"outcome {run.outcomes[0]!r}")


@case
def redis_grace_fleet_yields_to_the_lockout(h):
    s = redis(h)
    a, b = two_hosts(h, s.module_config(), gracePeriodSeconds=600, graceScope="fleet",
                     lockoutThreshold=2, maxAttempts=2)
    login_from(h, a, "alice", GRACE_FROM, [right()], "PAM_SUCCESS", sms=1, prompts=1)
    login(h, a, "alice", [wrong(), wrong()], "PAM_AUTH_ERR", sms=1, prompts=2)
    check(fleet_graces(s), f"the grace is gone: {grace_key()} empty")
    run = login_from(h, b, "alice", GRACE_FROM, [right()], "PAM_AUTH_ERR", sms=0, prompts=0)
    check("lockoutThreshold" in run.outcomes[0], f"outcome {run.outcomes[0]!r}")


@case
def redis_grace_revoke_ends_the_fleet_grace(h):
    s = redis(h)
    a, b = two_hosts(h, s.module_config(), gracePeriodSeconds=600, graceScope="fleet")
    login_from(h, a, "alice", GRACE_FROM, [right()], "PAM_SUCCESS", sms=1, prompts=1)
    p = admin(b, "revoke-grace", "alice")
    check(p.returncode == 0 and
          p.stdout == "ended 1 grace of alice: their next login asks for a code\n",
          f"revoke-grace alice: exit {p.returncode}, stdout {p.stdout!r}, "
          f"stderr {p.stderr!r}")
    check(grace_key() not in check_keyspace(s), f"{grace_key()} still in Redis")
    login_from(h, b, "alice", GRACE_FROM, [right()], "PAM_SUCCESS", sms=1, prompts=1)
    p = admin(a, "revoke-grace", "bob")
    check(p.returncode == 1 and p.stdout == "bob has no open grace: nothing to revoke\n",
          f"revoke-grace bob: exit {p.returncode}, stdout {p.stdout!r}")


@case
def redis_grace_fleet_down_falls_back_to_the_host(h):
    """Redis stopped: a fleet grace opened in it is not seen (asked, the login works, one
    warning); a code then opens the grace in this host's stateDir, which lets this host in
    while Redis is down; back, Redis decides again."""
    s = redis(h)
    cfg = s.module_config()
    a, b = two_hosts(h, cfg, gracePeriodSeconds=600, graceScope="fleet")
    login_from(h, a, "alice", GRACE_FROM, [right()], "PAM_SUCCESS", sms=1, prompts=1)
    warned = (cfg["url"], r"^connect: Connection refused")
    s.halt()
    try:
        login_from(h, b, "alice", GRACE_FROM, [right()], "PAM_SUCCESS", sms=1, prompts=1,
                   warned=warned)
        check([g[:2] for g in read_graces(b.state_dir / "alice")] == [("a", GRACE_FROM)],
              f"{b.state_dir}: graces {read_graces(b.state_dir / 'alice')}")
        graced(login_from(h, b, "alice", GRACE_FROM, [], "PAM_SUCCESS", sms=0, prompts=0,
                          warned=warned), GRACE_FROM)
    finally:
        s.restart()
    login_from(h, b, "alice", GRACE_FROM, [right()], "PAM_SUCCESS", sms=1, prompts=1)


# --------------------------------------------------------------------------- config errors

@case
def redis_config_errors_deny(h):
    s = redis(h)
    port = s.port
    bad = (
        ({"url": f"rediss://127.0.0.1:{port}/0"}, ("rediss://", "TLS", "stunnel")),
        ({"url": f"redis://pam:{PAM_PASSWORD}@127.0.0.1:{port}/0"},
         ("redis.username", "redis.password")),
        ({"url": f"redis://:{PAM_PASSWORD}@127.0.0.1:{port}/0"}, ("redis.password",)),
        (s.module_config(keyprefix="x:"), ("keyprefix",)),
        (s.module_config(timeoutSeconds=0), ("redis.timeoutSeconds",)),
        (s.module_config(timeoutSeconds=11), ("redis.timeoutSeconds",)),
        (s.module_config(password=None), ("redis.username", "password")),
        (s.module_config(keyPrefix="x" * 65), ("redis.keyPrefix",)),
        (s.module_config(keyPrefix="pam twilio:"), ("redis.keyPrefix",)),
    )
    config_errors(h, s, bad)


def config_errors(h, s, bad):
    for i, (cfg, needles) in enumerate(bad):
        path = h.write_config(h.config(redis=cfg), name=f"{h.case}-{i}")
        run = h.authenticate(h.service(path), "alice", [right()])
        try:
            expect_config_error(h, run, path, *needles)
        except CaseFailure as e:
            raise CaseFailure(f"redis.url {cfg.get('url')}: {e}") from None
        no_secret(run.raw_logs + [run.output])
    check_keyspace(s, want=[])


@case
def redis_url_database_beyond_15_denied(h):
    """The url's database is 0-15 (the spec of issue 12), over TCP and the socket."""
    s = redis(h)
    config_errors(h, s, ((s.module_config(url=f"redis://127.0.0.1:{s.port}/16"), ("redis.url",)),
                         (s.module_config(url=s.unix_url + "?db=16"), ("redis.url",))))
