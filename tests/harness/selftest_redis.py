#!/usr/bin/env python3
"""Self-test of the Redis harness (tests/harness/redis.py) with Debian's redis-server.

A real redis-server of the harness's own: the pam ACL user runs a script with EVALSHA on a
key under the prefix and is refused every key outside it (directly and from a script) and
every command outside its list; the default user is refused; the Unix socket (root only)
serves; the helpers (keys and TTLs by SCAN, a user's hash, flush, redis-cli as the admin)
read what the server holds; halt/restart, hang and pause; the Hang and Garbage listeners;
a stop() that leaves no process and no directory.

Run as root:  python3 tests/harness/selftest_redis.py [-k PATTERN] [-v]
Installs redis-server and redis-tools when missing (no system redis-server is started).
Prints `PASS: name` or `FAIL: name: why` per case, then `redis harness: N passed, N failed`.
"""

import os
import shutil
import socket
import stat
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.dont_write_bytecode = True  # leave no __pycache__ in the tree
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from harness.core import CaseFailure, case, check, main  # noqa: E402
from harness.redis import (ADMIN_PASSWORD, KEY_PREFIX, PAM_PASSWORD, PAM_USER,  # noqa: E402
                           REDIS_CLI, Connection, Garbage, Hang, Redis, ReplyError, Stream,
                           install_problem, redis_servers, start_in)
from harness.system import running  # noqa: E402

# the shape of the module's script: a hash updated with the server's clock, and a TTL
SCRIPT = """
local now = tonumber(redis.call('TIME')[1])
redis.call('HSET', KEYS[1], 'window_start', now, 'sends', 1)
redis.call('EXPIRE', KEYS[1], tonumber(ARGV[1]))
return redis.call('HMGET', KEYS[1], 'window_start', 'sends')
"""


class Selftest:
    def __init__(self, workdir, verbose, server):
        self.workdir = Path(workdir)
        self.verbose = verbose
        self.server = server

    def refused(self, why, *args, **kwargs):
        """The server answers args (as the pam user unless told) with an error that
        contains why (a tuple: one of them)."""
        kwargs.setdefault("user", PAM_USER)
        try:
            reply = self.server.command(*args, **kwargs)
        except ReplyError as e:
            if self.verbose:
                print(f"{' '.join(map(str, args))}: {e}")
            alts = why if isinstance(why, tuple) else (why,)
            check(any(a in str(e) for a in alts), f"{args!r}: refused with {e}, want {why}")
            return
        raise CaseFailure(f"{args!r} as {kwargs['user']} was answered: {reply!r}")


@case
def pam_user_runs_the_script_with_evalsha(h):
    s = h.server
    with s.connect(PAM_USER) as conn:
        sha = conn.call("SCRIPT", "LOAD", SCRIPT)
        got = conn.call("EVALSHA", sha, 1, KEY_PREFIX + "user:alice", 60)
        check(conn.call("PING") == "PONG", "PING refused")
        check(conn.call("SELECT", 0) == "OK", "SELECT refused")
    check(isinstance(got, list) and got[1] == "1" and abs(int(got[0]) - time.time()) < 5,
          f"EVALSHA returned {got!r}")
    check(s.user_hash("alice")["sends"] == 1, f"hash {s.user_hash('alice')}")
    ttl = s.keys()[KEY_PREFIX + "user:alice"]
    check(0 < ttl <= 60, f"TTL {ttl}")


@case
def pam_user_cannot_touch_a_key_outside_the_prefix(h):
    s = h.server
    sha = s.command("SCRIPT", "LOAD", SCRIPT, user=PAM_USER)
    for key in ("other:user:alice", "pam_twilio_sms", "Pam_twilio_sms:x", "user:alice"):
        h.refused("NOPERM", "HSET", key, "sends", 1)
        h.refused("NOPERM", "EVALSHA", sha, 1, key, 60)
    # a script that names no key and writes one outside the prefix anyway
    h.refused(("NOPERM", "can't access"), "EVAL", "return redis.call('HSET', 'outside', 'a', 1)",
              0)
    for args in (("KEYS", "*"), ("FLUSHALL",), ("CONFIG", "GET", "*"), ("SCAN", "0"),
                 ("SET", KEY_PREFIX + "x", "1"), ("SCRIPT", "FLUSH"), ("ACL", "LIST"),
                 ("PUBLISH", "ch", "x")):
        h.refused("NOPERM", *args)
    check("outside" not in s.keys(), "a key outside the prefix was written")


@case
def default_user_is_refused(h):
    s = h.server
    with Connection(("127.0.0.1", s.port)) as conn:
        try:
            conn.call("PING")
        except ReplyError as e:
            check(str(e).startswith("NOAUTH"), f"PING without AUTH: {e}")
        else:
            raise CaseFailure("PING without AUTH was answered")
    h.refused("WRONGPASS", "PING", user="default", password="")
    h.refused("WRONGPASS", "PING", user="default", password=PAM_PASSWORD)
    h.refused("WRONGPASS", "PING", user=PAM_USER, password="not-" + PAM_PASSWORD)


@case
def unix_socket_serves_root_only(h):
    s = h.server
    st = os.stat(s.socket_path)
    check(stat.S_ISSOCK(st.st_mode) and stat.S_IMODE(st.st_mode) == 0o700 and st.st_uid == 0,
          f"{s.socket_path}: mode {st.st_mode:o} uid {st.st_uid}")
    check(s.unix_url == "unix://" + s.socket_path and s.socket_path.startswith("/"),
          f"unix_url {s.unix_url}")
    check(s.command("PING", user=PAM_USER, address=s.socket_path) == "PONG",
          "PING over the socket")
    check(s.url == f"redis://127.0.0.1:{s.port}/0", f"url {s.url}")


@case
def helpers_read_keys_ttls_and_hashes(h):
    s = h.server
    s.flush()
    s.command("HSET", KEY_PREFIX + "user:bob", "sends", 3, "failures", 2)
    s.command("EXPIRE", KEY_PREFIX + "user:bob", 100)
    s.command("HSET", "no-ttl key", "a", 1)
    with s.connect() as conn:
        conn.call("SELECT", 5)
        conn.call("SET", "in-db-5", "x", "EX", 50)
    keys = s.keys()
    check(set(keys) == {KEY_PREFIX + "user:bob", "no-ttl key"}, f"keys {keys}")
    check(90 < keys[KEY_PREFIX + "user:bob"] <= 100 and keys["no-ttl key"] == -1, f"{keys}")
    check(s.user_hash("bob") == {"sends": 3, "failures": 2}, f"hash {s.user_hash('bob')}")
    check(s.user_hash("nobody") == {}, "a hash for a missing key")
    every = s.all_keys()
    check((5, "in-db-5") in every and len(every) == 3, f"all keys {every}")
    sha = s.command("SCRIPT", "LOAD", SCRIPT, user=PAM_USER)
    s.flush()
    check(s.all_keys() == {}, f"after flush: {s.all_keys()}")
    h.refused("NOSCRIPT", "EVALSHA", sha, 1, KEY_PREFIX + "x", 10)


@case
def cli_runs_as_the_admin_without_the_password_in_argv(h):
    s = h.server
    p = s.cli("SET", "cli-key", "v")
    check(p.stdout.strip() == "OK", f"redis-cli SET: {p.stdout!r} {p.stderr!r}")
    check(s.cli("GET", "cli-key").stdout.strip() == "v", "redis-cli GET")
    p = s.cli("SET", KEY_PREFIX + "x", "v", user=PAM_USER)
    check("NOPERM" in p.stdout + p.stderr, f"the pam user may SET: {p.stdout!r}")
    proc = subprocess.Popen([REDIS_CLI, "-p", str(s.port), "--user", "admin", "--no-auth-warning",
                             "-r", "1", "-i", "2", "PING"],
                            env=dict(os.environ, REDISCLI_AUTH=ADMIN_PASSWORD),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        time.sleep(0.3)
        argv = Path(f"/proc/{proc.pid}/cmdline").read_bytes()
        check(ADMIN_PASSWORD.encode() not in argv, "the password on the command line")
    finally:
        proc.kill()
        proc.wait()
    s.command("DEL", "cli-key")


@case
def second_acl_user_keeps_to_its_own_prefix(h):
    server = Redis(h.workdir, users={"fleetb": "fleet_b:*"})
    try:
        server.start()
        check(server.command("HSET", "fleet_b:user:a", "sends", 1, user="fleetb") == 1,
              "fleetb HSET")
        for key in (KEY_PREFIX + "user:a", "fleet_c:user:a"):
            try:
                server.command("HSET", key, "sends", 1, user="fleetb")
            except ReplyError as e:
                check("NOPERM" in str(e), f"{key}: {e}")
            else:
                raise CaseFailure(f"fleetb wrote {key}")
        check(Redis.password("fleetb") not in (PAM_PASSWORD, ADMIN_PASSWORD), "a shared password")
    finally:
        server.stop()


@case
def default_user_with_a_password_when_asked_for(h):
    """default_password: AUTH PASSWORD alone works, with the pam user's rights only."""
    server = Redis(h.workdir, default_password="default-Secret-2468")
    try:
        server.start()
        with Connection(("127.0.0.1", server.port)) as conn:
            check(conn.call("AUTH", "default-Secret-2468") == "OK", "AUTH PASSWORD")
            check(conn.call("HSET", KEY_PREFIX + "user:a", "sends", 1) == 1, "HSET")
            try:
                conn.call("HSET", "outside", "sends", 1)
            except ReplyError as e:
                check("NOPERM" in str(e), f"HSET outside: {e}")
            else:
                raise CaseFailure("the default user wrote outside the prefix")
        check(server.command("PING", user="default") == "PONG", "connect() as default")
    finally:
        server.stop()


@case
def ipv6_loopback_when_the_machine_has_it(h):
    s = h.server
    if not socket.has_ipv6 or not Path("/proc/net/if_inet6").exists() or \
            "00000000000000000000000000000001" not in Path("/proc/net/if_inet6").read_text():
        check(s.ipv6_url is None, f"ipv6_url {s.ipv6_url} without ::1")
        return
    check(s.ipv6_url == f"redis://[::1]:{s.port}/0", f"ipv6_url {s.ipv6_url}")
    check(s.command("PING", user=PAM_USER, address=("::1", s.port)) == "PONG", "PING on ::1")


@case
def halt_and_restart_on_the_same_port(h):
    s = h.server
    port, path, pid = s.port, s.socket_path, s.proc.pid
    s.command("SET", "before-restart", "1")
    s.halt()
    check(not running(pid), "redis-server still running after halt()")
    with socket.socket() as sock:
        check(sock.connect_ex(("127.0.0.1", port)) != 0, "the port listens after halt()")
    s.restart()
    check((s.port, s.socket_path) == (port, path), "another port or socket after restart()")
    check(s.command("PING", user=PAM_USER) == "PONG", "PING after restart()")
    check(s.keys() == {}, f"data kept over a restart: {s.keys()}")


@case
def hang_accepts_and_never_answers(h):
    s = h.server
    with s.hang():
        for address in (("127.0.0.1", s.port), s.socket_path):
            start = time.monotonic()
            with Connection(address, timeout=0.5) as conn:
                try:
                    conn.call("PING")
                except (TimeoutError, socket.timeout):
                    pass
                else:
                    raise CaseFailure(f"{address}: answered while hung")
            took = time.monotonic() - start
            check(0.4 < took < 3, f"{address}: gave up after {took:.2f}s")
    check(s.command("PING") == "PONG", "no answer after hang()")
    s.pause(0.5)
    start = time.monotonic()
    check(s.command("PING", user=PAM_USER) == "PONG", "PING after the pause")
    took = time.monotonic() - start
    check(0.3 < took < 3, f"PING during CLIENT PAUSE took {took:.2f}s")


@case
def hang_listener_accepts_and_never_answers(h):
    hole = Hang().start()
    port = hole.port
    try:
        check(hole.url == f"redis://127.0.0.1:{port}/0", f"url {hole.url}")
        start = time.monotonic()
        with Connection(("127.0.0.1", port), timeout=0.5) as conn:
            try:
                conn.call("PING")
            except (TimeoutError, socket.timeout):
                pass
            else:
                raise CaseFailure("the hang listener answered")
        took = time.monotonic() - start
        check(0.4 < took < 3, f"gave up after {took:.2f}s")
        check(hole.accepted == 1, f"{hole.accepted} connections accepted")
    finally:
        hole.stop()
    with socket.socket() as sock:
        check(sock.connect_ex(("127.0.0.1", port)) != 0, "the hang listener still listens")


@case
def garbage_listener_answers_ok_to_everything(h):
    g = Garbage().start()
    try:
        with Connection(("127.0.0.1", g.port)) as conn:
            check(conn.call("AUTH", "pam", "x") == "OK", "AUTH")
            check(conn.call("SELECT", 0) == "OK", "SELECT")
            reply = conn.call("EVALSHA", "0" * 40, 1, KEY_PREFIX + "user:a")
            check(reply == "OK" and not isinstance(reply, list), f"EVALSHA {reply!r}")
        # pipelined and split across writes: one reply a command
        with socket.create_connection(("127.0.0.1", g.port), timeout=2) as sock:
            data = b"*1\r\n$4\r\nPING\r\n*2\r\n$6\r\nSELECT\r\n$1\r\n0\r\nPING\r\n"
            sock.sendall(data[:7])
            time.sleep(0.1)
            sock.sendall(data[7:])
            got = b""
            while got.count(b"\r\n") < 3:
                got += sock.recv(100)
            check(got == b"+OK\r\n" * 3, f"replies {got!r}")
        check(g.commands == ["AUTH", "SELECT", "EVALSHA", "PING", "SELECT", "PING"],
              f"commands seen {g.commands}")
        check(g.accepted == 2, f"{g.accepted} connections")
    finally:
        g.stop()
    quiet = Garbage(silent=("EVALSHA",)).start()
    try:
        with Connection(("127.0.0.1", quiet.port), timeout=0.5) as conn:
            check(conn.call("AUTH", "pam", "x") == "OK", "AUTH before the silence")
            for args in (("EVALSHA", "0" * 40, 0), ("PING",)):
                try:
                    got = conn.call(*args)
                except (TimeoutError, socket.timeout):
                    continue
                raise CaseFailure(f"{args[0]} answered {got!r} after a silent command")
    finally:
        quiet.stop()
    other = Garbage(reply=b":7\r\n").start()
    try:
        with Connection(("127.0.0.1", other.port)) as conn:
            check(conn.call("EVALSHA", "x", 0) == 7, "reply=:7")
    finally:
        other.stop()


@case
def stream_listener_sends_a_reply_without_end(h):
    """Stream: nothing before a whole command; then its head, then chunk after chunk, at
    the interval (trickle) or at once (flood), until the client hangs up."""
    trickle = Stream(interval=0.1).start()
    try:
        with socket.create_connection(("127.0.0.1", trickle.port), timeout=2) as sock:
            sock.settimeout(0.3)
            sock.sendall(b"*1\r\n$4\r\nPI")  # half a command: no answer yet
            try:
                early = sock.recv(100)
            except (TimeoutError, socket.timeout):
                early = b""
            check(early == b"", f"answered half a command: {early!r}")
            sock.sendall(b"NG\r\n")
            got, start = b"", time.monotonic()
            while time.monotonic() - start < 1.0:
                got += sock.recv(100)
            check(got.startswith(b"$1000000000\r\n"), f"head {got[:20]!r}")
            body = got[len(b"$1000000000\r\n"):]
            check(4 <= len(body) <= 14 and set(body) == {ord("x")},
                  f"{len(body)} bytes in about 1 s at one per 0.1 s: {body[:20]!r}")
    finally:
        trickle.stop()
    flood = Stream(chunk=b"y" * 65536, interval=0).start()
    try:
        with socket.create_connection(("127.0.0.1", flood.port), timeout=2) as sock:
            sock.sendall(b"*1\r\n$4\r\nPING\r\n")
            got = 0
            while got < 4 * 1024 * 1024:
                got += len(sock.recv(1 << 20))
        check(flood.accepted == 1, f"{flood.accepted} connections")
    finally:
        flood.stop()
    check(flood.sent >= 4 * 1024 * 1024, f"the flood sent {flood.sent} bytes")


@case
def stop_leaves_no_process_and_no_directory(h):
    server = Redis(h.workdir)
    try:
        server.start()
        pid, directory, port = server.proc.pid, server.dir, server.port
        check(pid in redis_servers(), f"{pid} is not a redis-server")
        check(stat.S_IMODE(directory.stat().st_mode) == 0o700, "the directory is not 0700")
        check(stat.S_IMODE((directory / "redis.conf").stat().st_mode) == 0o600,
              "redis.conf is not 0600")
        with server.hang():  # a stop while hung still ends it
            server.stop()
    finally:
        server.stop()
    check(not running(pid), f"redis-server {pid} still running")
    check(not directory.exists(), f"{directory} left behind")
    server.stop()  # a second stop is harmless
    with socket.socket() as sock:
        check(sock.connect_ex(("127.0.0.1", port)) != 0, "its port still listens")


def prerequisite_problem():
    if os.geteuid() != 0:
        return "not root (redis-server, /usr/sbin/policy-rc.d while installing)"
    try:
        return install_problem()
    except CaseFailure as e:
        return str(e)


def setup(cleanups, verbose):
    workdir = tempfile.mkdtemp(prefix="tsms-redis-")
    cleanups.add(shutil.rmtree, workdir, True)
    started = time.monotonic()
    server = start_in(cleanups, workdir)
    if verbose:
        print(f"redis-server started in {time.monotonic() - started:.2f}s: {server.url} "
              f"{server.unix_url}")
    return Selftest(workdir, verbose, server)


if __name__ == "__main__":
    sys.exit(main("redis harness", __doc__.splitlines()[0], setup=setup,
                  prepare=prerequisite_problem, time_limit=120, timed=True,
                  verbose_help="print each refusal and what the server saw"))
