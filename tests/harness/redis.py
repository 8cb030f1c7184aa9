"""A real Redis server (Debian's redis-server) for the shared-state cases, a listener that
hangs and one that answers garbage.

Redis runs its own redis-server process as root from a throw-away directory under the
caller's workdir: its own redis.conf (no daemon, nothing saved, no append-only file, its
own dir, pidfile and logfile, nothing to syslog), a TCP listener on 127.0.0.1:PORT (and
[::1]:PORT where the machine has ::1) and a Unix socket in its directory (unixsocketperm
700: root only). The default user is off (or on with a password, when asked for: AUTH with
a password alone); every other client authenticates as an ACL user: `pam`, with the keys
and commands the module needs (docs/fleet.md's ACL line, PAM_ACL), `admin` (+@all ~*) for the
harness itself, and more users with other key patterns when asked for (a second fleet's
prefix). The system redis-server that the package installs is never used or touched.

What the server holds is read over the admin's own connection (a small RESP client, not
redis-cli, so that key names are never shell or line-split text): keys() with their TTLs
(SCAN), user_hash(), flush(). cli() runs redis-cli as the admin. halt()/restart() take the
server away and bring it back on the same port and socket (empty: nothing is saved);
hang() stops the process (SIGSTOP) so that connections are accepted by the kernel and
never answered.

host() makes one host of a fleet for the end-to-end cases: a config with its own stateDir and
a PAM service on it; two of them on the same Redis are two machines sharing their limits.

Hang is harness.slapd.BlackHole with a redis:// url: accepts, never answers. Garbage parses
each command it receives and answers every one with the same reply (+OK by default), so
that AUTH and SELECT seem to work and EVALSHA's reply is not the array it must be; or goes
silent at a given command (a server that hangs after AUTH).
"""

import atexit
import contextlib
import dataclasses
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
from pathlib import Path

from harness.core import REPO, CaseFailure, check
from harness.pam import MODULE, PAM_DIR, SERVICE_PREFIX
from harness.slapd import BlackHole
from harness.state import new_state_dir
from harness.system import free_port, install_quietly, installed, stop_process, write_file

DEBS = ("redis-server", "redis-tools")
REDIS_SERVER = "/usr/bin/redis-server"
REDIS_CLI = "/usr/bin/redis-cli"
PAM_USER = "pam"
PAM_PASSWORD = "redis-pam-Secret-0123456789"
ADMIN_USER = "admin"
ADMIN_PASSWORD = "redis-admin-Secret-9876543210"
KEY_PREFIX = "pam_twilio_sms:"
# the module's commands: the shipped example's user pam (conf/redis/pam_twilio_sms.conf, the
# fleet guide's) after its key pattern, so that every test proves that ACL is enough
SHIPPED_ACL = REPO / "conf" / "redis" / "pam_twilio_sms.conf"


def shipped_acl():
    """The commands of the example ACL's user line (everything after its key pattern)."""
    for line in SHIPPED_ACL.read_text().splitlines():
        m = re.fullmatch(r"user pam on >PASSWORD resetkeys ~pam_twilio_sms:\* (.+)", line)
        if m:
            return m.group(1)
    raise CaseFailure(f"{SHIPPED_ACL} has no 'user pam on >PASSWORD resetkeys "
                      "~pam_twilio_sms:* ...' line")


PAM_ACL = shipped_acl()
OURS = set()  # pids of the harness's redis-servers (Redis rewrites its process title)


class ReplyError(Exception):
    """The server answered a command with an error reply; the message is its text."""


# --------------------------------------------------------------------------- install

def redis_servers():
    """The pids of every redis-server process (by its command name)."""
    found = set()
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            comm = Path(f"/proc/{pid}/comm").read_text().strip()
        except OSError:
            continue
        if comm == "redis-server":
            found.add(int(pid))
    return found


def system_redises():
    """The redis-server processes that are not the harness's."""
    return redis_servers() - OURS


def install_problem(timeout=600):
    """Installs DEBS when missing, with no system redis-server left running
    (harness.system.install_quietly). Returns what is missing, or None."""
    if all(installed(pkg) for pkg in DEBS) and shutil.which("redis-cli"):
        return None
    problem = install_quietly(DEBS, "redis-server", system_redises, timeout)
    if problem:
        return problem
    for tool in (REDIS_SERVER, REDIS_CLI):
        if not os.access(tool, os.X_OK):
            return f"{tool} not found after installing {' '.join(DEBS)}"
    return None


# --------------------------------------------------------------------------- RESP

def encode(args):
    """A command as RESP: an array of bulk strings."""
    out = [b"*%d\r\n" % len(args)]
    for arg in args:
        data = arg if isinstance(arg, bytes) else str(arg).encode()
        out.append(b"$%d\r\n%s\r\n" % (len(data), data))
    return b"".join(out)


class Connection:
    """One client connection (TCP host:port or a Unix socket path); call() sends a command
    and returns its reply: str for simple and bulk strings (bytes when not UTF-8), int,
    None, a list; an error reply raises ReplyError. Closed with close() or `with`."""

    def __init__(self, address, timeout=5.0):
        if isinstance(address, tuple):
            self.sock = socket.create_connection(address, timeout=timeout)
        else:
            self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            self.sock.settimeout(timeout)
            self.sock.connect(address)
        self.buf = b""

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def close(self):
        with contextlib.suppress(OSError):
            self.sock.close()

    def call(self, *args):
        self.sock.sendall(encode(args))
        return self.reply()

    def line(self):
        while b"\r\n" not in self.buf:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError("the server closed the connection")
            self.buf += chunk
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line

    def exactly(self, n):
        while len(self.buf) < n + 2:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError("the server closed the connection")
            self.buf += chunk
        data, self.buf = self.buf[:n], self.buf[n + 2:]
        return data

    def reply(self):
        line = self.line()
        kind, rest = line[:1], line[1:]
        if kind == b"+":
            return rest.decode()
        if kind == b"-":
            raise ReplyError(rest.decode(errors="replace"))
        if kind == b":":
            return int(rest)
        if kind == b"$":
            if int(rest) < 0:
                return None
            data = self.exactly(int(rest))
            try:
                return data.decode()
            except UnicodeDecodeError:
                return data
        if kind == b"*":
            if int(rest) < 0:
                return None
            return [self.reply() for _ in range(int(rest))]
        raise ConnectionError(f"not a RESP reply: {line[:80]!r}")


# --------------------------------------------------------------------------- the server

class Redis:
    """One redis-server process, its directory, config and log. start() before anything
    else; stop() (register it with the cleanups first) ends it and removes its directory.
    users: more ACL users, name -> key pattern (e.g. {"fleetb": "fleet_b:*"}), each with
    the module's commands and password(name). default_password: the default user is on
    with that password and the pam user's rights (AUTH with a password alone, as with
    requirepass), else off."""

    def __init__(self, workdir, *, users=None, default_password=None):
        self.workdir = Path(workdir)
        self.users = {PAM_USER: KEY_PREFIX + "*", **(users or {})}
        self.default_password = default_password
        self.dir = None
        self.proc = None
        self.port = None
        self.pid = None
        self.stopped = False  # hang() in effect

    # ------------------------------------------------------------------ addresses

    @property
    def url(self):
        return f"redis://127.0.0.1:{self.port}/0"

    @property
    def ipv6_url(self):
        """redis://[::1]:PORT/0, or None when the machine has no ::1 (the server listens
        there too when it can)."""
        with contextlib.suppress(OSError), socket.socket(socket.AF_INET6) as sock:
            sock.settimeout(1)
            sock.connect(("::1", self.port))
            return f"redis://[::1]:{self.port}/0"
        return None

    @property
    def socket_path(self):
        return str(self.dir / "redis.sock")

    @property
    def unix_url(self):
        return f"unix://{self.socket_path}"

    @property
    def log_path(self):
        return self.dir / "redis.log"

    @staticmethod
    def password(user=PAM_USER):
        """The password of an ACL user of the harness."""
        if user == ADMIN_USER:
            return ADMIN_PASSWORD
        return PAM_PASSWORD if user == PAM_USER else f"{PAM_PASSWORD}-{user}"

    def module_config(self, **over):
        """The config's redis object for this server as the pam user (over: keys replaced;
        None removes one)."""
        cfg = {"url": self.url, "username": PAM_USER, "password": PAM_PASSWORD}
        for key, value in over.items():
            if value is None:
                cfg.pop(key, None)
            else:
                cfg[key] = value
        return cfg

    # ------------------------------------------------------------------ life cycle

    def start(self, timeout=15.0):
        """Makes the directory and config and starts redis-server on a free loopback port;
        returns self."""
        self.dir = Path(tempfile.mkdtemp(prefix="redis-", dir=self.workdir))  # 0700
        if len(self.socket_path) > 100:
            raise CaseFailure(f"{self.socket_path}: too long for a Unix socket")
        launches = 0
        while True:  # a free port can be taken before redis-server binds it: 3 tries
            self.port = free_port()
            self.write_config()
            launches += 1
            if self.launch(timeout, may_retry=launches < 3):
                return self

    def write_config(self):
        d = self.dir
        users = "".join(f"user {name} on >{self.password(name)} resetkeys ~{pattern} {PAM_ACL}\n"
                        for name, pattern in self.users.items())
        if self.default_password is None:
            users = "user default off\n" + users
        else:
            users = (f"user default on resetpass >{self.default_password} resetkeys "
                     f"~{KEY_PREFIX}* {PAM_ACL}\n") + users
        conf = f"""\
# tests/harness/redis.py: a throw-away server for one test run
bind 127.0.0.1 -::1
port {self.port}
protected-mode yes
unixsocket {self.socket_path}
unixsocketperm 700
daemonize no
supervised no
pidfile {d}/redis.pid
dir {d}
logfile {d}/redis.log
loglevel notice
syslog-enabled no
save ""
appendonly no
databases 16
{users}user {ADMIN_USER} on >{ADMIN_PASSWORD} ~* &* +@all
"""
        write_file(d / "redis.conf", conf, mode=0o600)

    def launch(self, timeout, may_retry):
        """Starts redis-server on self.port and waits until the admin can PING it over TCP
        and the socket; returns False when the port was taken and may_retry, else raises
        CaseFailure."""
        log_start = self.log_path.stat().st_size if self.log_path.exists() else 0
        self.proc = subprocess.Popen([REDIS_SERVER, str(self.dir / "redis.conf")],
                                     stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL, start_new_session=True,
                                     cwd=self.dir)
        self.pid = self.proc.pid
        OURS.add(self.pid)
        self.stopped = False
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                tail = self.log_tail(since=log_start)
                if may_retry and "Address already in use" in tail:
                    return False
                raise CaseFailure(f"redis-server exited with {self.proc.returncode}: {tail}")
            with contextlib.suppress(OSError, ConnectionError, ReplyError):
                if self.command("PING") == "PONG" and \
                        self.command("PING", address=self.socket_path) == "PONG":
                    return True
            time.sleep(0.02)
        self.halt()
        raise CaseFailure(f"redis-server not serving within {timeout:.0f}s: {self.log_tail()}")

    def halt(self):
        """Ends redis-server (SIGCONT when hung, SIGTERM, then SIGKILL) and reaps it; the
        directory, port and socket path stay for restart()."""
        if self.proc is not None and self.proc.poll() is None and self.stopped:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.proc.pid, signal.SIGCONT)
        stop_process(self.proc)
        self.stopped = False
        self.proc = None

    def restart(self, timeout=15.0):
        """halt(), then the same server again on the same port and socket, with no data."""
        self.halt()
        self.launch(timeout, may_retry=False)

    def stop(self):
        """Ends redis-server and removes its directory; safe to call again or before
        start()."""
        self.halt()
        OURS.discard(self.pid)
        if self.dir is not None:
            shutil.rmtree(self.dir, ignore_errors=True)

    @contextlib.contextmanager
    def hang(self):
        """The server stopped (SIGSTOP) inside the block: connections are accepted by the
        kernel and nothing is ever answered; SIGCONT at the end."""
        os.kill(self.proc.pid, signal.SIGSTOP)
        self.stopped = True
        try:
            yield self
        finally:
            if self.proc is not None and self.proc.poll() is None:
                os.kill(self.proc.pid, signal.SIGCONT)
            self.stopped = False

    def pause(self, seconds):
        """CLIENT PAUSE ALL for seconds: every client's commands wait (the admin's too)."""
        self.command("CLIENT", "PAUSE", int(seconds * 1000), "ALL")

    def log_tail(self, n=600, since=0):
        try:
            text = self.log_path.read_bytes()[since:].decode(errors="replace")
        except OSError:
            return "(no log)"
        return text[-n:].strip() or "(empty log)"

    # ------------------------------------------------------------------ data

    def connect(self, user=ADMIN_USER, password=None, address=None):
        """A Connection authenticated as user (the admin by default), over TCP or to
        address (a socket path or a (host, port) pair)."""
        conn = Connection(address or ("127.0.0.1", self.port))
        if password is None:
            password = self.default_password if user == "default" else self.password(user)
        try:
            conn.call("AUTH", user, password)
        except BaseException:
            conn.close()
            raise
        return conn

    def command(self, *args, user=ADMIN_USER, password=None, address=None):
        """One command on a new connection as user; its reply (see Connection)."""
        with self.connect(user, password, address) as conn:
            return conn.call(*args)

    def cli(self, *args, user=ADMIN_USER, ok=(0,), timeout=30):
        """redis-cli -h 127.0.0.1 -p PORT --user USER ... ARGS: the CompletedProcess (its
        password passed through REDISCLI_AUTH, so never on a command line)."""
        env = dict(os.environ, REDISCLI_AUTH=self.password(user))
        cmd = [REDIS_CLI, "-h", "127.0.0.1", "-p", str(self.port), "--user", user,
               "--no-auth-warning", *map(str, args)]
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env,
                           stdin=subprocess.DEVNULL)
        if p.returncode not in ok:
            raise CaseFailure(f"redis-cli {' '.join(map(str, args))}: exit {p.returncode}: "
                              f"{(p.stderr or p.stdout).strip()[-300:]}")
        return p

    def keys(self, db=0):
        """{key: TTL in seconds (float; -1 none, -2 gone)} of every key in db (SCAN)."""
        found = {}
        with self.connect() as conn:
            conn.call("SELECT", db)
            cursor = "0"
            while True:
                cursor, batch = conn.call("SCAN", cursor, "COUNT", 1000)
                for key in batch:
                    ttl = conn.call("PTTL", key)
                    found[key] = ttl / 1000 if ttl >= 0 else float(ttl)
                if cursor == "0":
                    return found

    def all_keys(self):
        """{(db, key): TTL} over all 16 databases."""
        return {(db, k): t for db in range(16) for k, t in self.keys(db).items()}

    def user_hash(self, name, prefix=KEY_PREFIX, db=0):
        """The fields of <prefix>user:<name> as ints ({} when there is no such key)."""
        return self.hash(f"{prefix}user:{name}", db)

    def hash(self, key, db=0):
        with self.connect() as conn:
            conn.call("SELECT", db)
            flat = conn.call("HGETALL", key) or []
        return {flat[i]: int(flat[i + 1]) for i in range(0, len(flat), 2)}

    def flush(self):
        """FLUSHALL (every database) and SCRIPT FLUSH: the next EVALSHA gets NOSCRIPT."""
        with self.connect() as conn:
            conn.call("FLUSHALL", "SYNC")
            conn.call("SCRIPT", "FLUSH", "SYNC")

    def clients(self):
        """CLIENT LIST as (user, address) pairs of the connections now open, the admin's
        own asking one left out."""
        with self.connect() as conn:
            me = conn.call("CLIENT", "ID")
            text = conn.call("CLIENT", "LIST")
        rows = []
        for line in text.splitlines():
            fields = dict(f.split("=", 1) for f in line.split() if "=" in f)
            if int(fields.get("id", -1)) != me:
                rows.append((fields.get("user"), fields.get("addr")))
        return rows

    def info(self, section="stats"):
        """INFO section as a dict of its name:value lines."""
        text = self.command("INFO", section)
        return dict(line.split(":", 1) for line in text.splitlines() if ":" in line)


# the module's one warning when Redis fails and a login falls back to this host's files
FALLBACK_RE = re.compile(r"redis (\S+) unavailable: (.+); this login keeps its limits in "
                         r"this host's stateDir (\S+)")
LOG_WARNING = 4


def fallback_warnings(run):
    """The Redis fallback warnings of a pamtester run (harness.pam.Run): (url, problem,
    stateDir) each, every one checked to be a LOG_WARNING line in the usual form."""
    found = []
    prefix = f"pam_twilio_sms({run.service}:auth): "
    for raw, line in zip(run.raw_logs, run.logs):
        if line.startswith(prefix + "redis ") and "unavailable" in line:
            m = FALLBACK_RE.fullmatch(line[len(prefix):])
            check(m, f"a Redis warning not in the usual form: {line!r}")
            pri = re.match(r"<(\d+)>", raw)
            check(pri and int(pri.group(1)) & 7 == LOG_WARNING, f"not LOG_WARNING: {raw!r}")
            found.append(m.groups())
    return found


_family_servers = {}
_family_settings = {}


def family_server(name, workdir, **kwargs):
    """The redis-server of a test family (one per name, Redis(workdir, **kwargs) made at the
    first call, stopped when the process exits), running and emptied (keys and scripts)
    at every call: what each case of the family starts from."""
    if name not in _family_servers:
        problem = install_problem()
        check(problem is None, f"redis: {problem}")
        s = Redis(workdir, **kwargs)
        atexit.register(s.stop)
        s.start()
        _family_servers[name] = s
        _family_settings[name] = kwargs
    # one name, one set of settings: whichever case of a run comes first makes the server
    check(_family_settings[name] == kwargs,
          f"redis family server {name!r} was made with {_family_settings[name]!r}, not "
          f"{kwargs!r}: give this family a name of its own")
    s = _family_servers[name]
    if s.proc is None or s.proc.poll() is not None:
        s.restart()
    s.flush()
    return s


def start_in(cleanups, workdir, **kwargs):
    """A started Redis under workdir whose stop() cleanups runs at the end (registered
    before it starts, so that a failed start is cleaned up too)."""
    server = Redis(workdir, **kwargs)
    cleanups.add(server.stop)
    return server.start()


# --------------------------------------------------------------------------- hosts

@dataclasses.dataclass
class Host:
    """One host of a fleet as the end-to-end cases make it: a config of its own with its
    own stateDir (the fallback when Redis fails) and a PAM service on that config."""
    service: str
    config: str
    state_dir: Path


def host(h, tag, args=("debug",), **over):
    """A Host of harness.pam Harness h for this case, named tag: the base config with
    stateDir h.workdir/state/CASE-TAG (not made yet) and keys replaced (e.g. redis=...),
    and a service tsms-test-PID-CASE-TAG (removed with h's services). Several hosts of one
    case never share a file."""
    state_dir = new_state_dir(h, tag)
    config = h.write_config(h.config(stateDir=str(state_dir), **over), name=f"{h.case}-{tag}")
    name = f"{SERVICE_PREFIX}{os.getpid()}-" + re.sub(r"[^a-z0-9-]", "-",
                                                     f"{h.case}-{tag}".lower())
    line = " ".join(["auth", "required", str(MODULE), f"config={config}", *args])
    path = PAM_DIR / name
    if name not in h.services:
        h.services.append(name)
    path.write_text(line + "\n")
    os.chmod(path, 0o644)
    return Host(name, config, state_dir)


# --------------------------------------------------------------------------- listeners

class Hang(BlackHole):
    """A loopback listener that accepts and never answers (harness.slapd.BlackHole);
    start(), then url; stop() closes everything."""

    @property
    def url(self):
        return f"redis://127.0.0.1:{self.port}/0"


class Talker(Hang):
    """A Hang listener that talks: each connection gets a thread of its own running
    talk(conn), a subclass's; stop() ends them all."""

    def __init__(self):
        super().__init__()
        self.talking = []

    def handle(self, conn):
        thread = threading.Thread(target=self.talk, args=(conn,), daemon=True)
        thread.start()
        self.talking.append(thread)

    def talk(self, conn):
        raise NotImplementedError

    def commands_of(self, conn):
        """The names (upper case) of the commands conn sends, each once it is whole, until
        the client hangs up or stop()."""
        conn.settimeout(0.2)
        buf = b""
        while not self.stopping.is_set():
            try:
                chunk = conn.recv(65536)
            except TimeoutError:
                continue
            except OSError:
                return
            if not chunk:
                return
            buf += chunk
            while True:
                name, buf = take_command(buf)
                if name is None:
                    break
                yield name

    def stop(self):
        self.stopping.set()
        for thread in self.talking:
            thread.join(timeout=5)
        super().stop()


class Garbage(Talker):
    """A loopback listener that reads RESP commands (arrays of bulk strings, or inline
    lines) and answers every one with reply (bytes, "+OK\\r\\n" by default), whatever it
    was: AUTH and SELECT seem to succeed, EVALSHA gets a status instead of an array.
    silent: names of commands (upper case) never answered, nor anything after them on that
    connection: a server that hangs after AUTH. commands: the names received, upper case,
    in order. start(), then url; stop()."""

    def __init__(self, reply=b"+OK\r\n", silent=()):
        super().__init__()
        self.reply = reply
        self.silent = set(silent)
        self.commands = []

    def talk(self, conn):
        hung = False
        for name in self.commands_of(conn):
            self.commands.append(name)
            hung = hung or name in self.silent
            if not hung:
                with contextlib.suppress(OSError):
                    conn.sendall(self.reply)


class Stream(Talker):
    """A loopback listener that answers the first command of every connection with head
    (e.g. a bulk string's header) and then chunk every interval seconds, without end, until
    the client hangs up or stop(): a server that trickles a reply (b"x" every 0.1 s) or
    floods one (64 KiB at once, again and again). sent: the bytes written in all."""

    def __init__(self, head=b"$1000000000\r\n", chunk=b"x", interval=0.1):
        super().__init__()
        self.head, self.chunk, self.interval = head, chunk, interval
        self.sent = 0

    def talk(self, conn):
        if next(self.commands_of(conn), None) is None:
            return  # hung up, or stop(), before one whole command
        data = self.head
        while not self.stopping.is_set():
            try:
                conn.sendall(data)
            except (TimeoutError, OSError):
                return  # hung up, or not reading: a flood that filled the socket
            self.sent += len(data)
            data = self.chunk
            if self.interval:
                self.stopping.wait(self.interval)


def take_command(buf):
    """(the first complete command's name in upper case, the rest of buf), or (None, buf)
    while it is incomplete."""
    if not buf:
        return None, buf
    if not buf.startswith(b"*"):  # an inline command: one line
        if b"\n" not in buf:
            return None, buf
        line, rest = buf.split(b"\n", 1)
        words = line.strip().split()
        return (words[0].decode(errors="replace").upper() if words else ""), rest
    if b"\r\n" not in buf:
        return None, buf
    head, rest = buf.split(b"\r\n", 1)
    try:
        count = int(head[1:])
    except ValueError:
        return "", rest
    args = []
    for _ in range(max(count, 0)):
        if b"\r\n" not in rest or not rest.startswith(b"$"):
            return None, buf
        size_line, after = rest.split(b"\r\n", 1)
        size = int(size_line[1:])
        if len(after) < size + 2:
            return None, buf
        args.append(after[:size])
        rest = after[size + 2:]
    return (args[0].decode(errors="replace").upper() if args else ""), rest
