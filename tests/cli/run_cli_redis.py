#!/usr/bin/env python3
"""Tests of twilio-sms-otp status, unlock, revoke-grace and check with the limits in Redis.

A real redis-server (tests/harness/redis.py) and the Twilio sandbox; two hosts (two configs
with their own stateDir on the same Redis) log in through real libpam (pamtester, as the
end-to-end cases do), then the command reads and clears what they left: status shows the
Redis key and the counts of both hosts, unlock lifts a lockout made over both and clears
this host's fallback state file, a user without a key and a Redis that is down exit 1,
status and revoke-grace show and end address graces in the fleet (graceScope fleet: one
Redis key with a TTL) or on one host (graceScope host), check connects, authenticates,
loads and runs the script, or says what failed. No output of any run may contain a Redis
password or the auth token.

Run as root:  python3 tests/cli/run_cli_redis.py [-k PATTERN] [-v]
Installs redis-server and redis-tools when missing (no system redis-server is started).
Prints `PASS: name` or `FAIL: name: why` per case, then `cli redis: N passed, N failed`.
TSMS_TOOL=PATH tests another build of the command, TSMS_MODULE another module.
"""

import os
import shlex
import shutil
import subprocess
import sys
import time
from pathlib import Path

sys.dont_write_bytecode = True  # leave no __pycache__ in the tree
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from harness.core import REPO, CaseFailure, case, check, main  # noqa: E402
from harness.pam import MODULE, Harness, right, wrong  # noqa: E402
from harness.redis import (ADMIN_PASSWORD, KEY_PREFIX, PAM_ACL, PAM_PASSWORD, Redis,  # noqa: E402
                           host, install_problem)
from harness.sandbox import AUTH_TOKEN, SANDBOX, start_in_workdir  # noqa: E402
from harness.state import read_state  # noqa: E402
from harness.syslog import DEV_LOG, SyslogCapture  # noqa: E402

TOOL = Path(os.environ.get("TSMS_TOOL") or REPO / "twilio-sms-otp").resolve()
RUN_LIMIT = 30.0
SUITE_LIMIT = 300
DEFAULT_PASSWORD = "redis-default-Secret-1357"
SECRETS = (PAM_PASSWORD, ADMIN_PASSWORD, AUTH_TOKEN, DEFAULT_PASSWORD)


class CliHarness(Harness):
    """The end-to-end harness (logins through libpam) with a Redis and the command."""

    def __init__(self, workdir, sandbox, syslog, verbose, server):
        super().__init__(workdir, sandbox, syslog, verbose)
        self.redis = server

    def begin_case(self, name):
        super().begin_case(name)
        if self.redis.proc is None or self.redis.proc.poll() is not None:
            self.redis.restart()
        self.redis.flush()

    def hosts(self, **over):
        """Hosts a and b on the Redis, with the same config (over)."""
        cfg = over.pop("redis", None) or self.redis.module_config()
        return host(self, "a", redis=cfg, **over), host(self, "b", redis=cfg, **over)

    def login(self, hst, user, answers, result, rhost=None, **kw):
        """pamtester's login of user on hst (with PAM_RHOST rhost when given)."""
        client = None
        if rhost is not None:
            client = ["pamtester", "-I", f"rhost={rhost}", hst.service, user, "authenticate"]
        run = self.authenticate(hst.service, user, answers, client=client)
        self.expect(run, result, **kw)
        for secret in SECRETS:
            check(not any(secret in line for line in run.raw_logs + [run.output]),
                  "a password in a log line or pamtester's output")
        return run

    def tool(self, config, *args):
        """twilio-sms-otp --config CONFIG ARGS...: the CompletedProcess, checked for
        secrets in its output."""
        cmd = [str(TOOL), "--config", str(config), *map(str, args)]
        try:
            p = subprocess.run(cmd, capture_output=True, text=True, timeout=RUN_LIMIT,
                               stdin=subprocess.DEVNULL, start_new_session=True)
        except subprocess.TimeoutExpired:
            raise CaseFailure(f"still running after {RUN_LIMIT:.0f}s: {cmd!r}") from None
        if self.verbose:
            print(f"[{self.case}] $ {' '.join(map(shlex.quote, cmd))}\n  exit {p.returncode}\n"
                  f"  stdout: {p.stdout!r}\n  stderr: {p.stderr!r}")
        for secret in SECRETS:
            check(secret not in p.stdout + p.stderr, f"a password in the output of {args}")
        return p


def expect(p, status, out=(), err=()):
    brief = f"exit {p.returncode}, stdout {p.stdout!r}, stderr {p.stderr!r}"
    check(p.returncode == status, f"want exit {status}, got {brief}")
    for needle in out:
        check(needle in p.stdout, f"stdout lacks {needle!r}: {brief}")
    for needle in err:
        check(needle in p.stderr, f"stderr lacks {needle!r}: {brief}")


def key_line(h, user="alice"):
    return f"state:         redis key {KEY_PREFIX}user:{user} at {h.redis.url}\n"


# --------------------------------------------------------------------------- cases

@case
def redis_status_shows_the_key_and_both_hosts_counts(h):
    a, b = h.hosts(sendLimit=5, lockoutThreshold=4, maxAttempts=2)
    h.login(a, "alice", [right()], "PAM_SUCCESS", sms=1)
    h.login(b, "alice", [wrong(), right()], "PAM_SUCCESS", sms=1)
    h.login(b, "alice", [wrong(), wrong()], "PAM_MAXTRIES", sms=1)
    for hst in (a, b):
        p = h.tool(hst.config, "status", "alice")
        expect(p, 0, out=("user:          alice\n", "phone:         ******0006",
                          key_line(h), "sends:         3 of 5 in the window, which ends in ",
                          "wrong codes:   2 in a row (lockout at 4)", "locked:        no"))
        check("state file:" not in p.stdout, f"a state file line: {p.stdout!r}")
    check(not (a.state_dir / "alice").exists() and not (b.state_dir / "alice").exists(),
          "status or the logins wrote a fallback state file")


@case
def redis_unlock_lifts_a_lockout_made_over_both_hosts(h):
    a, b = h.hosts(lockoutThreshold=2, maxAttempts=1)
    h.login(a, "alice", [wrong()], "PAM_MAXTRIES", sms=1)
    h.login(b, "alice", [wrong()], "PAM_AUTH_ERR", sms=1)  # the second wrong code locks
    h.login(a, "alice", [right()], "PAM_AUTH_ERR", sms=0, prompts=0)
    p = h.tool(a.config, "status", "alice")
    expect(p, 0, out=(key_line(h), "wrong codes:   2 in a row (lockout at 2)",
                      "locked:        until "))
    p = h.tool(b.config, "unlock", "alice")
    expect(p, 0, out=("unlocked alice: 2 wrong codes cleared, lockout lifted; sends kept "
                      "(2 in the window)\n",))
    check("fallback" not in p.stdout, f"a fallback file cleared that did not exist: {p.stdout!r}")
    state = h.redis.user_hash("alice")
    check(state.get("failures", 0) == 0 and state.get("locked_until", 0) == 0 and
          state["sends"] == 2, f"alice in Redis after unlock: {state}")
    check(h.redis.keys()[KEY_PREFIX + "user:alice"] > 0, "no TTL after unlock")
    h.login(a, "alice", [right()], "PAM_SUCCESS", sms=1)
    p = h.tool(a.config, "unlock", "alice")
    expect(p, 0, out=("unlocked alice: 0 wrong codes cleared, was not locked",))


@case
def redis_unlock_clears_this_hosts_fallback_file(h):
    """A lockout a kept in its own stateDir while Redis was down is lifted by unlock on a
    (with the Redis key); b's fallback file is b's own and stays."""
    a, b = h.hosts(lockoutThreshold=2, maxAttempts=2)
    h.redis.halt()
    try:
        h.login(a, "alice", [wrong(), wrong()], "PAM_AUTH_ERR", sms=1)  # locked on a only
        h.login(b, "alice", [wrong(), right()], "PAM_SUCCESS", sms=1)
        check(read_state(a.state_dir / "alice")["locked_until"] > 0, "a's fallback not locked")
    finally:
        h.redis.restart()
    h.login(b, "alice", [right()], "PAM_SUCCESS", sms=1)  # the Redis key
    p = h.tool(a.config, "unlock", "alice")
    expect(p, 0, out=("unlocked alice: 0 wrong codes cleared, was not locked; sends kept "
                      "(1 in the window)\n",
                      f"also cleared this host's fallback state file {a.state_dir}/alice\n"))
    path = a.state_dir / "alice"
    if path.exists():
        state = read_state(path)
        check(state["failures"] == 0 and state["locked_until"] == 0,
              f"a's fallback file after unlock: {state}")
    check((b.state_dir / "alice").exists(), "unlock on a touched b's stateDir")
    h.redis.halt()
    try:  # Redis down again: a's own limits no longer lock alice out
        h.login(a, "alice", [right()], "PAM_SUCCESS", sms=1)
    finally:
        h.redis.restart()


@case
def redis_status_and_unlock_without_a_key_exit_1(h):
    a, _ = h.hosts()
    for cmd, tail in (("status", ": no SMS sent"), ("unlock", ": nothing to unlock")):
        p = h.tool(a.config, cmd, "carol")
        expect(p, 1, out=(f"carol has no state in redis {h.redis.url}{tail}",))
    check(h.redis.all_keys() == {}, f"status or unlock wrote {h.redis.all_keys()}")
    check(not a.state_dir.exists(), f"status or unlock created {a.state_dir}")


@case
def redis_status_with_redis_down_exits_1(h):
    a, _ = h.hosts()
    h.login(a, "alice", [right()], "PAM_SUCCESS", sms=1)
    h.redis.halt()
    try:
        for cmd in ("status", "unlock"):
            p = h.tool(a.config, cmd, "alice")
            expect(p, 1, err=(f"twilio-sms-otp: redis {h.redis.url} unavailable: ",
                              "Connection refused"))
            check("unlocked" not in p.stdout and "state:" not in p.stdout,
                  f"{cmd} with Redis down said {p.stdout!r}")
    finally:
        h.redis.restart()


@case
def redis_check_connects_and_runs_the_script(h):
    s = h.redis
    a, _ = h.hosts()
    p = h.tool(a.config, "check")
    expect(p, 0, out=(f"redis {s.url}: connected (as pam), script loaded\n",))
    unix = host(h, "unix", redis=s.module_config(url=s.unix_url))
    p = h.tool(unix.config, "check")
    expect(p, 0, out=(f"redis {s.unix_url}: connected (as pam), script loaded\n",))
    check(all(k.startswith(KEY_PREFIX) and t > 0 for (_, k), t in s.all_keys().items()),
          f"check left {s.all_keys()}")


@case
def redis_check_without_an_acl_user(h):
    """password alone (AUTH PASSWORD, the default user): "connected (without ACL user)"."""
    other = Redis(h.workdir, default_password=DEFAULT_PASSWORD)
    try:
        other.start()
        hst = host(h, "default", redis={"url": other.url, "password": DEFAULT_PASSWORD})
        p = h.tool(hst.config, "check")
        expect(p, 0, out=(f"redis {other.url}: connected (without ACL user), script loaded\n",))
    finally:
        other.stop()


@case
def redis_check_fails_and_names_the_problem(h):
    s = h.redis
    bad = {
        "wrong-password": (s.module_config(password="not-" + PAM_PASSWORD), ("WRONGPASS",)),
        "prefix-outside-acl": (s.module_config(keyPrefix="other:"), ("NOPERM", "permission")),
        "down": (s.module_config(), ("Connection refused",)),
    }
    for tag, (cfg, needles) in bad.items():
        if tag == "down":
            s.halt()
        try:
            hst = host(h, tag, redis=cfg)
            p = h.tool(hst.config, "check")
        finally:
            if tag == "down":
                s.restart()
        text = p.stdout + p.stderr
        check(p.returncode == 1, f"{tag}: check exit {p.returncode}: {text!r}")
        check(f"redis {cfg['url']}" in text and any(n in text for n in needles),
              f"{tag}: check does not say {needles} for {cfg['url']}: {text!r}")
        check("script loaded" not in text, f"{tag}: {text!r}")
    check(not any(k.startswith("other:") for (_, k) in s.all_keys()), "check wrote other:")


@case
def redis_check_names_a_missing_command_of_the_acl(h):
    """The ACL of 0.3.0 (no +sadd, which backup codes need): check runs every write of the
    script on a throw-away key, so it fails with Redis's refusal and a fix naming +sadd; it
    leaves no key behind."""
    s = h.redis
    old_acl = PAM_ACL.replace(" +sadd", "")
    check(old_acl != PAM_ACL, f"the shipped ACL has no +sadd: {PAM_ACL!r}")
    s.command("ACL", "SETUSER", "pam-030", "on", ">pam-030-Secret", "resetkeys",
              f"~{KEY_PREFIX}*", *old_acl.split())
    try:
        hst = host(h, "acl-030", redis=s.module_config(username="pam-030",
                                                       password="pam-030-Secret"))
        p = h.tool(hst.config, "check")
        text = p.stdout + p.stderr
        check(p.returncode == 1, f"check exit {p.returncode}: {text!r}")
        # Redis 7.0 says "ERR The user executing the script can't run this command", later
        # versions NOPERM
        check(("can't run this command" in text or "NOPERM" in text) and "+sadd" in text,
              f"check does not give Redis's refusal and the fix: {text!r}")
        a, _ = h.hosts()
        expect(h.tool(a.config, "check"), 0,
               out=(f"redis {s.url}: connected (as pam), script loaded\n",))
        check(not s.all_keys(), f"check left {s.all_keys()}")
    finally:
        s.command("ACL", "DELUSER", "pam-030")


# ---- graces: status and revoke-grace, per host and in the fleet

GRACE_KEY = f"{KEY_PREFIX}grace:alice"


def grace_line(p):
    """status's first graces line, without its 'N s left'."""
    for line in p.stdout.splitlines():
        if line.startswith("graces:"):
            return line
    raise CaseFailure(f"no graces line: {p.stdout!r}")


@case
def redis_fleet_grace_status_and_revoke(h):
    """graceScope fleet: a code on a opens the grace for b too; status on either shows it in
    the fleet (redis), the key has a TTL of at most gracePeriodSeconds; revoke-grace on b
    ends it for both (the key is gone) and the next login is asked again."""
    a, b = h.hosts(gracePeriodSeconds=600, graceScope="fleet")
    h.login(a, "alice", [right()], "PAM_SUCCESS", rhost="192.0.2.7", sms=1)
    run = h.login(b, "alice", [], "PAM_SUCCESS", rhost="192.0.2.7", sms=0, prompts=0)
    check("method=grace-address" in run.outcomes[0], f"outcome {run.outcomes[0]!r}")
    keys = h.redis.keys()
    check(GRACE_KEY in keys and 590 <= keys[GRACE_KEY] <= 600,
          f"the grace key and its TTL: {keys!r}")
    fields = h.redis.command("HGETALL", GRACE_KEY)
    check(len(fields) == 2 and fields[0] == "s1" and fields[1].startswith("192.0.2.7 "),
          f"the grace key holds {fields!r}")
    for hst in (a, b):
        p = h.tool(hst.config, "status", "alice")
        expect(p, 0, out=("graces:        from address 192.0.2.7 in the fleet (redis), ",))
        check(grace_line(p).endswith(" s left"), f"{grace_line(p)!r}")
        check("on this host" not in p.stdout, f"a host's grace shown: {p.stdout!r}")
    check(not (a.state_dir / "alice").exists() or "\ng " not in (a.state_dir / "alice").read_text(),
          "the fleet's grace was written to a's stateDir")
    p = h.tool(b.config, "revoke-grace", "alice")
    expect(p, 0, out=("ended 1 grace of alice: their next login asks for a code\n",))
    check(GRACE_KEY not in h.redis.keys(), f"the grace key after revoke-grace: {h.redis.keys()!r}")
    p = h.tool(a.config, "status", "alice")
    expect(p, 0, out=("graces:        none\n",))
    p = h.tool(a.config, "revoke-grace", "alice")
    expect(p, 1, out=("alice has no open grace: nothing to revoke\n",))
    h.login(a, "alice", [right()], "PAM_SUCCESS", rhost="192.0.2.7", sms=1)


@case
def redis_host_grace_stays_on_the_host(h):
    """graceScope host (the default) with redis: the grace is a's, in a's stateDir; b asks,
    b's status shows none, and Redis holds no grace key."""
    a, b = h.hosts(gracePeriodSeconds=600)
    h.login(a, "alice", [right()], "PAM_SUCCESS", rhost="192.0.2.7", sms=1)
    h.login(b, "alice", [right()], "PAM_SUCCESS", rhost="192.0.2.8", sms=1)
    check(GRACE_KEY not in h.redis.keys(), f"a grace key with graceScope host: {h.redis.keys()!r}")
    p = h.tool(a.config, "status", "alice")
    expect(p, 0, out=(key_line(h), "graces:        from address 192.0.2.7 on this host, "))
    check("192.0.2.8" not in p.stdout, f"b's grace shown on a: {p.stdout!r}")
    p = h.tool(b.config, "status", "alice")
    expect(p, 0, out=("graces:        from address 192.0.2.8 on this host, ",))
    p = h.tool(a.config, "revoke-grace", "alice")
    expect(p, 0, out=("ended 1 grace of alice: their next login asks for a code\n",))
    p = h.tool(b.config, "status", "alice")
    expect(p, 0, out=("graces:        from address 192.0.2.8 on this host, ",))


@case
def redis_fleet_grace_outlives_the_user_key(h):
    """The grace key lives gracePeriodSeconds, the user's key only as long as its limits:
    with the user's key gone, status says there is no state but shows the grace, exit 0."""
    a, b = h.hosts(gracePeriodSeconds=600, graceScope="fleet", sendWindowSeconds=1,
                   resendCooldownSeconds=0)
    h.login(a, "alice", [right()], "PAM_SUCCESS", rhost="192.0.2.7", sms=1)
    deadline = time.monotonic() + 5
    while KEY_PREFIX + "user:alice" in h.redis.keys() and time.monotonic() < deadline:
        time.sleep(0.1)
    check(KEY_PREFIX + "user:alice" not in h.redis.keys(), "the user's key did not expire")
    p = h.tool(b.config, "status", "alice")
    expect(p, 0, out=(f"alice has no state in redis {h.redis.url}",
                      "graces:        from address 192.0.2.7 in the fleet (redis), "))
    h.login(b, "alice", [], "PAM_SUCCESS", rhost="192.0.2.7", sms=0, prompts=0)


@case
def redis_fleet_grace_revoked_despite_a_corrupt_host_file(h):
    """FAILS until lib/state.c changes (host_then_fleet returns at the host's error, and
    twilio-sms-otp(8) says so): a corrupt state file of alice's on host a must not keep the
    fleet's grace open on every other host: revoke-grace on a reports the file (exit 1) and
    still ends the grace in Redis, as unlock clears the host's file while Redis is down."""
    a, b = h.hosts(gracePeriodSeconds=600, graceScope="fleet")
    h.login(b, "alice", [right()], "PAM_SUCCESS", rhost="192.0.2.7", sms=1)
    check(GRACE_KEY in h.redis.keys(), f"no grace key: {h.redis.keys()!r}")
    a.state_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    (a.state_dir / "alice").write_text("garbage\n")
    os.chmod(a.state_dir / "alice", 0o600)
    p = h.tool(a.config, "revoke-grace", "alice")
    expect(p, 1, err=("is corrupt; fix: remove it",))
    check(GRACE_KEY not in h.redis.keys(),
          f"the fleet's grace is still open after revoke-grace: {h.redis.keys()!r}")
    h.login(b, "alice", [right()], "PAM_SUCCESS", rhost="192.0.2.7", sms=1)


@case
def redis_fleet_grace_with_redis_down(h):
    """Redis down: status says the graces are unknown, revoke-grace exits 1 naming Redis;
    with graceScope host the graces are the host's, and revoke-grace ends them."""
    a, _ = h.hosts(gracePeriodSeconds=600, graceScope="fleet")
    c = host(h, "c", redis=h.redis.module_config(), gracePeriodSeconds=600)
    h.login(a, "alice", [right()], "PAM_SUCCESS", rhost="192.0.2.7", sms=1)
    h.login(c, "alice", [right()], "PAM_SUCCESS", rhost="192.0.2.7", sms=1)
    h.redis.halt()
    try:
        p = h.tool(a.config, "status", "alice")
        check(p.returncode == 1, f"status exit {p.returncode}: {p.stdout!r} {p.stderr!r}")
        check(f"graces:        unknown: redis {h.redis.url} unavailable" in p.stdout,
              f"status with Redis down: {p.stdout!r}")
        p = h.tool(a.config, "revoke-grace", "alice")
        expect(p, 1, err=(f"twilio-sms-otp: redis {h.redis.url} unavailable: ",))
        p = h.tool(c.config, "revoke-grace", "alice")
        expect(p, 0, out=("ended 1 grace of alice: their next login asks for a code\n",))
    finally:
        h.redis.restart()


# --------------------------------------------------------------------------- main

def prerequisite_problem():
    if os.geteuid() != 0:
        return "not root (needs /etc/pam.d, /dev/log and redis-server)"
    for path, what in ((TOOL, "command"), (MODULE, "module")):
        if not path.is_file():
            return f"{what} not built: {path} missing (run make)"
    if shutil.which("pamtester") is None:
        return "pamtester not installed (apt-get install pamtester)"
    if not SANDBOX.is_file():
        return f"sandbox missing: {SANDBOX}"
    if os.path.lexists(DEV_LOG) and shutil.which("unshare") is None:
        return "/dev/log exists and unshare is missing: cannot capture syslog"
    try:
        return install_problem()
    except CaseFailure as e:
        return str(e)


def setup(cleanups, verbose):
    workdir, sandbox = start_in_workdir(cleanups, "tsms-cli-redis-")
    syslog = SyslogCapture(workdir)
    cleanups.add(syslog.close)
    server = Redis(workdir)
    cleanups.add(server.stop)
    server.start()
    h = CliHarness(workdir, sandbox, syslog, verbose, server)
    cleanups.add(h.remove_services)
    return h


if __name__ == "__main__":
    sys.exit(main("cli redis", __doc__.splitlines()[0], setup=setup,
                  prepare=prerequisite_problem, time_limit=SUITE_LIMIT, timed=True,
                  verbose_help="print every command run and its output"))
