#!/usr/bin/env python3
"""Benchmark of pam_twilio_sms.so against the floor: a bare curl sending the same request.

Everything runs on loopback against one Twilio sandbox (tests/sandbox/twilio_sandbox.py),
side by side in one run; every figure is a median over --runs runs (default 30) after
--warmup runs (default 3) that are thrown away:

  1. latency      time to dispatch (client start -> the sandbox has the request, from the
                  sandbox's requests.jsonl "time") and full wall time of `pamtester SERVICE
                  USER authenticate` with the module (the code typed back through pipes as
                  soon as the prompt shows, read from the sandbox's outbox), next to a bare
                  `curl` process sending the identical request (same form fields, HTTP Basic,
                  --cacert). Target: module / curl <= 1.10.
                  Also: the module with its stateDir on tmpfs (no fsync cost), pamtester
                  with pam_permit.so, the module for an unmapped user (no request).
  2. rss          peak RSS (/usr/bin/time %M) of pamtester with the module against pamtester
                  with pam_permit.so, and where the RSS is (/proc/PID/smaps at the prompt).
                  Target: at most 3 MiB more. (Part of the latency section.)
  3. scale        full authentication with 10 / 10 000 / 100 000 / 1 000 000 users in the
                  usersFile (and the lookup alone) and 10 / 10 000 / 100 000 inline in the
                  JSON config. Target: 100 000 in the users file at most 5 % slower than 10.
  4. concurrency  1, 8, 32, 128 simultaneous authentications of distinct users (batches),
                  against as many simultaneous curls: throughput, p50/p99 latency, errors,
                  lost or duplicated SMS (counted in the sandbox's outbox), sandbox CPU.
  5. callgrind    instructions of one authentication under valgrind --tool=callgrind, by
                  object file (self cost) and by phase (inclusive), and of the curl floor.
  6. directory    the number from ldap: the bench starts its own slapd (tests/harness/slapd.py,
                  the one the e2e directory family uses) on loopback and one config with an
                  ldap object (ldaps, bindDN, the slapd CA, timeoutSeconds 10): one
                  authentication of a user in its users object (local) against one whose
                  number the module reads from the directory, next to ldapsearch -x doing
                  the same bind and search over ldaps and over plain ldap (the floor), with
                  the phases of each connection from slapd's log; then batches of 128
                  simultaneous authentications of distinct directory users against 128 of
                  distinct local users. Target: ldap at most 3 ms slower than local (median),
                  and the 128-client batches without errors or lost SMS.
  7. redis        the send limits and lockout in Redis against the files: the bench starts its
                  own redis-server (tests/harness/redis.py, the one the e2e Redis cases use:
                  nothing saved, the default user off, the module's ACL user) and batches of
                  1, 32 and 128 simultaneous authentications of distinct users, with the
                  state in the files (stateDir on the normal disk), in Redis over TCP on
                  loopback and over its Unix socket, the three in a new random order every
                  round so that drift hits all alike. globalSendLimit never refuses, so every
                  login takes the global lock (files) or the global key (Redis). Per side:
                  p50/p99, throughput, SMS per batch (lost, duplicated), the EVALSHA calls
                  Redis counted per login and its time per call, Redis and sandbox CPU, and
                  the logins that fell back to the files (their own stateDir stays empty).
                  Targets: Redis (TCP) no slower than the files at the median at every
                  level, and a shorter p99 at 128 (the files' lock is polled every 10 ms).
  8. peer         the module users would pick instead: Debian's pam_duo (libpam-duo) against
                  a loopback Duo Auth API stand-in (tests/sandbox/duo_sandbox.py: its own
                  throw-away CA, checks each request's HMAC signature, answers preauth with
                  "allow", so that a pam_duo login makes one HTTPS request, as the module's
                  does), failmode secure (a failed request refuses, it does not let through).
                  Per round, in a new random order: pamtester with pam_duo, pamtester with
                  the module, and real ssh logins (the ssh client on a pseudo-terminal, to
                  throw-away sshds on loopback, keyboard-interactive: the password, then the
                  factor; Debian's sshd service with pam_duo, with the module, or with
                  nothing after common-auth) as a test user it creates and removes. Time to
                  the first request (spawn -> the request at the stand-in or the sandbox),
                  full wall time, module / pam_duo; what each loads (ldd, pamtester's
                  mappings, RSS, PSS while the server holds its answer, peak RSS).
                  No target: it tells where the two stand.
  9. backup       logins of one user with backupCodesFile, every kind once per round in a new
                  random order: (a) the SMS code typed, a backup code whose hash the module
                  checks (b) 1st of 10, (c) 10th of 10, (d) 20th of 20 (the largest set), (e) a
                  wrong one against 20 (every hash checked), (f) the sandbox answering 503 and
                  the 1st of 10 at the `SMS unavailable; backup code:` prompt. A code works
                  once, so `twilio-sms-otp backup-codes USER --count N` makes a fresh set
                  before each backup login, outside the timed run. Full wall time to the
                  PAM_SUCCESS or the denial, the ratio to (a), client CPU, peak RSS of (a), (b)
                  and (d) (Argon2id's 4 MiB, one check against twenty), the time the command
                  takes to make a set.
                  No target: it tells what a backup code costs.
 10. grace        a login let in by an address grace (gracePeriodSeconds: pamtester -I
                  rhost=192.0.2.7 after one SMS login from that address, outside the timed
                  runs) against an SMS login (from an address of its own each round, so that
                  each is a first login, which opens a grace too), per backend: the files
                  (stateDir on the normal disk; also the SMS login with graces off), Redis with
                  graceScope host (the grace in the stateDir, the lockout read from Redis) and
                  Redis with graceScope fleet (the grace in Redis); every kind once per round
                  in a new random order. Full wall time, client CPU, each login's outcome line
                  (method sms or grace-address), SMS and request checked.
                  No target: it tells what a grace login costs against an SMS login.

Prints a table; a full default run also writes tests/bench/results.md, results.json and
results.svg (the plot docs/benchmarks.md embeds); --only SECTIONS --merge measures only those and
puts their figures into the results files there are, the others' unchanged. Needs root
(service files in /etc/pam.d, root-owned config), pamtester, curl, /usr/bin/time and
valgrind; `make bench` installs them, and the directory section installs slapd and
ldap-utils, the redis section redis-server and redis-tools, as the e2e families do (no
system slapd or redis-server starts), the peer section libpam-duo, openssh-server and
openssh-client (no system sshd starts; the system's PAM config and sshd are not touched).

    python3 tests/bench/run_bench.py [--runs N] [--warmup N] [--quick] [--only SECTIONS]
                                     [--levels 1,8,32,128] [--redis-levels 1,32,128]
                                     [--callgrind-runs N] [--keep-callgrind DIR] [--out DIR]
                                     [--merge]
"""

import argparse
import collections
import contextlib
import datetime
import fcntl
import hashlib
import json
import math
import os
import platform
import random
import re
import secrets
import select
import selectors
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import termios
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
sys.dont_write_bytecode = True  # leave no __pycache__ in the tree
sys.path.insert(0, str(REPO / "tests"))
from harness.core import CaseFailure  # noqa: E402
from harness.pam import BACKUP_PROMPT_RE, DEFAULT_TEMPLATE, PROMPT_RE  # noqa: E402
from harness.sandbox import (ACCOUNT_SID, AUTH_TOKEN, MESSAGING_SID, SANDBOX,  # noqa: E402
                             Sandbox, extract_code)
from harness.slapd import (ACCEPT_RE, OP_RE, RESULT_RE, TLS_RE, Slapd,  # noqa: E402
                           install_problem, ldif_entry)
from harness.syslog import SyslogCapture  # noqa: E402
from harness.system import (add_test_user, cmdlines, descendants, free_port,  # noqa: E402
                            install_quietly, remove_test_user, running, stop_process,
                            wait_for_port_file)

MODULE = Path(os.environ.get("TSMS_MODULE") or REPO / "pam_twilio_sms.so").resolve()
PAM_DIR = Path("/etc/pam.d")
SERVICE_PREFIX = "tsms-bench-"
NS_MARK = "TSMS_BENCH_IN_NS"
VERSION = (re.search(r"^VERSION\s*:?=\s*(\S+)", (REPO / "Makefile").read_text(), re.M)
           or ["", "0"])[1]
USER_AGENT = f"pam_twilio_sms/{VERSION}"  # the module's (lib/http.c), so curl's request is the same
SECTIONS = ("latency", "rss", "scale", "concurrency", "callgrind", "directory", "redis",
            "peer", "backup", "grace")
LEVELS = (1, 8, 32, 128)
SCALE_FILE = (10, 10_000, 100_000, 1_000_000)
SCALE_INLINE = (10, 10_000, 100_000)
BENCH_USER, BENCH_PHONE = "bench", "+15555550100"
SCALE_USER, SCALE_PHONE = "scaleuser", "+15555550199"
LDAP_USER, LDAP_PHONE = "ldapbench", "+15555550198"  # in the directory only
LDAP_CLIENTS = 128  # the directory's batch (32 with --quick)
REDIS_LEVELS = (1, 32, 128)  # the redis section's batches (up to 32 with --quick)
REDIS_SIDES = (("files", "files, stateDir on the normal disk"),
               ("redis", "Redis over TCP on loopback"),
               ("redis_unix", "Redis over its Unix socket"))
DUO_SANDBOX = REPO / "tests" / "sandbox" / "duo_sandbox.py"
PEER_DEBS = ("libpam-duo", "openssh-server", "openssh-client")
PEER_USER, PEER_PHONE = "tsmsbench", "+15555550197"  # a system user: pam_duo and sshd want one
PEER_GECOS = "pam_twilio_sms bench peer user"  # what marks it as the bench's, for removal
PEER_OK = b"peer-login-ok"  # what the ssh logins' remote command prints
SSHD = Path("/usr/sbin/sshd")
PRIVSEP_DIR = Path("/run/sshd")
# the admin command that makes backup code sets (TSMS_TOOL: another build, as tests/e2e)
TOOL = Path(os.environ.get("TSMS_TOOL") or REPO / "twilio-sms-otp").resolve()
BACKUP_USER, BACKUP_PHONE = "backupbench", "+15555550196"
BACKUP_SYMBOLS = "23456789abcdefghijkmnpqrstuvwxyz"  # lib/backup.c's alphabet
# the backup section's logins: key, label, codes in the user's set (None: the SMS code is
# typed), which code is typed (0-based, in the file's order, the order the hashes are
# checked in; "wrong": one the set does not hold), Twilio answering 503
BACKUP_KINDS = (
    ("sms", "(a) SMS code typed (baseline)", None, None, False),
    ("first_of_10", "(b) backup code, the 1st of a set of 10", 10, 0, False),
    ("tenth_of_10", "(c) backup code, the 10th of 10", 10, 9, False),
    ("twentieth_of_20", "(d) backup code, the 20th of 20 (the largest set)", 20, 19, False),
    ("wrong_of_20", "(e) wrong backup code, set of 20 (every hash checked)", 20, "wrong", False),
    ("unavailable_first_of_10", "(f) Twilio 503, `SMS unavailable; backup code:`, the 1st "
     "of 10", 10, 0, True),
)
# also run under /usr/bin/time for their peak RSS: one check's memory against twenty's
BACKUP_RSS = ("sms", "first_of_10", "twentieth_of_20")
GRACE_USER, GRACE_PHONE = "gracebench", "+15555550195"  # the grace logins
GRACE_SMS_USER, GRACE_SMS_PHONE = "gracesms", "+15555550194"  # the SMS logins beside them
GRACE_ADDRESS = "192.0.2.7"
GRACE_SECONDS = 3600  # longer than any run: the grace never ends inside one
# the grace section's sides: key, label, the config's keys beyond the base, and
# whether a Redis is needed
GRACE_SIDES = (
    ("files", "files (stateDir on the normal disk)", {}, False),
    ("redis_host", "Redis over TCP, graceScope host (the grace in stateDir)", {}, True),
    ("redis_fleet", "Redis over TCP, graceScope fleet (the grace in Redis)",
     {"graceScope": "fleet"}, True),
)
OUTCOME_RE = re.compile(r" method=(\S+) result=(PAM_[A-Z_]+) reason=(.*)$")
BIND_CN, BIND_PASSWORD = "pam-reader", "bench-bind-" + secrets.token_hex(8)
MIB = 1024 * 1024

TARGET_RATIO = 1.10
TARGET_RSS_KIB = 3 * 1024
TARGET_SCALE = 1.05
TARGET_LDAP_MS = 3.0
# against what users would pick instead (issue 23): the module's time to its request
TARGET_CURL_DISPATCH = 1.25   # pamtester, module / curl, each with the sandbox's CA file
TARGET_DUO_PAMTESTER = 1.45   # pamtester, module / pam_duo (section 8)
TARGET_DUO_SSH = 0.95         # a real ssh login, module / pam_duo (section 8)


class BenchError(Exception):
    """The benchmark cannot go on (setup failed, a client hung)."""


# --------------------------------------------------------------------------- statistics

def median(xs):
    return statistics.median(xs) if xs else float("nan")


def pct(xs, p):
    """The p-th percentile, linear between closest ranks."""
    if not xs:
        return float("nan")
    s = sorted(xs)
    k = (len(s) - 1) * p / 100
    lo = int(k)
    hi = min(lo + 1, len(s) - 1)
    return s[lo] + (s[hi] - s[lo]) * (k - lo)


# --------------------------------------------------------------------------- records

class Tail:
    """The complete JSON lines appended to a file since the last read."""

    def __init__(self, path):
        self.path = Path(path)
        self.f = None
        self.rest = b""

    def read(self):
        if self.f is None:
            try:
                self.f = open(self.path, "rb")
            except FileNotFoundError:
                return []
        data = self.rest + self.f.read()
        lines = data.split(b"\n")
        self.rest = lines.pop()
        return [json.loads(line) for line in lines if line.strip()]

    def close(self):
        if self.f:
            self.f.close()


class Job:
    """One client process: pamtester (answers its prompt) or curl (or anything else)."""

    def __init__(self, kind, argv, phone=None):
        self.kind = kind          # "pam": answer the SMS code prompt; "plain": just run
        self.argv = argv
        self.phone = phone        # the number the SMS goes to (None: no SMS expected)
        self.proc = None
        self.out = b""
        self.answered = False
        self.start_wall = self.start = self.end = None
        self.status = None
        self.cpu = None           # user + system seconds of the client (wait4)
        self.maxrss_kib = None
        self.request_time = None  # when the sandbox had the request (its clock, time.time())
        self.request_status = None
        self.form = None
        self.env = None           # the client's environment (None: the bench's)
        self.sms = 0
        self.rss_file = None      # /usr/bin/time -o FILE: the client's peak RSS in KiB
        self.snapshot = None      # {} to fill with the client's memory at its prompt
        self.answer = None        # typed at the prompt instead of the SMS code (a backup code)

    @property
    def wall(self):
        return self.end - self.start

    @property
    def dispatch(self):
        return None if self.request_time is None else self.request_time - self.start_wall

    def ok(self, want_output):
        return self.status == 0 and want_output in self.out and (
            self.phone is None or (self.sms == 1 and self.request_status == 201))


# --------------------------------------------------------------------------- the bench

def bind_over(source, target):
    """Bind-mounts source over target in the bench's own mount namespace (enter_namespace),
    so that the machine's file stays untouched; returns what went wrong, or None."""
    if not os.environ.get(NS_MARK):
        return "not in a mount namespace of the bench's own (unshare missing?)"
    done = subprocess.run(["mount", "--bind", str(source), str(target)], capture_output=True,
                          text=True)
    return None if done.returncode == 0 else f"mount --bind over {target}: {done.stderr.strip()}"


def unbind(target):
    subprocess.run(["umount", str(target)], capture_output=True)


class Accounts:
    """The bench's login names as accounts in /etc/passwd, as every real login's is: a copy
    of the machine's file with them added, bind-mounted over it in the bench's own mount
    namespace (enter_namespace), so the machine's files stay untouched. Without them, each
    login of a name NSS's files source does not know goes on to the next source in
    nsswitch.conf (Debian: systemd, which loads libnss_systemd and asks systemd-userdb),
    which no real login does: pamtester's time and peak RSS would carry that."""

    GECOS = "pam_twilio_sms bench account"
    FIRST_UID = 3_000_000  # far above the uids useradd gives out

    def __init__(self, workdir, names):
        self.copy = Path(workdir) / "passwd"
        self.names = sorted(set(names))
        self.mounted = False
        self.problem = None

    def mount(self):
        text = Path("/etc/passwd").read_text()
        known = {line.split(":", 1)[0] for line in text.splitlines()}
        added = "".join(f"{n}:x:{self.FIRST_UID + i}:{self.FIRST_UID + i}:{self.GECOS}:"
                        "/nonexistent:/usr/sbin/nologin\n"
                        for i, n in enumerate(self.names) if n not in known)
        self.copy.write_text(text + ("" if text.endswith("\n") else "\n") + added)
        self.copy.chmod(0o644)
        self.problem = bind_over(self.copy, "/etc/passwd")
        self.mounted = self.problem is None

    def unmount(self):
        if self.mounted:
            unbind("/etc/passwd")
            self.mounted = False

    @contextlib.contextmanager
    def lifted(self):
        """The machine's own /etc/passwd for a while (useradd and userdel rename over it,
        which a bind mount refuses); then the copy again, made anew from it."""
        was = self.mounted
        self.unmount()
        try:
            yield
        finally:
            if was:
                self.mount()


class SystemCAs:
    """The system's trust as a default install has it, with the sandbox's CA added: a copy of
    /etc/ssl/certs (its links to /usr/share/ca-certificates, the bundle
    ca-certificates.crt) with the CA in the bundle and in the hashed directory (openssl
    rehash), bind-mounted over it in the bench's mount namespace. So a module config
    without caFile and a curl without --cacert trust the sandbox through the system's CAs,
    each as it does by default (the module through the hashed directory, curl and 0.4.1
    through the bundle), and the machine's store stays untouched."""

    DIR = Path("/etc/ssl/certs")

    def __init__(self, workdir):
        self.copy = Path(workdir) / "system-certs"
        self.problem = None
        self.mounted = False
        self.certificates = None  # in the bundle, once mounted

    def mount(self, ca_file):
        bundle = self.DIR / "ca-certificates.crt"
        if not bundle.is_file():
            self.problem = f"no {bundle} (ca-certificates not installed)"
            return
        shutil.copytree(self.DIR, self.copy, symlinks=True)
        ca = Path(ca_file).read_bytes()
        (self.copy / "tsms-bench-sandbox.pem").write_bytes(ca)
        with open(self.copy / "ca-certificates.crt", "ab") as f:
            f.write(ca)
        done = subprocess.run(["openssl", "rehash", str(self.copy)], capture_output=True,
                              text=True)
        self.problem = (f"openssl rehash: {done.stderr.strip()}" if done.returncode != 0 else
                        bind_over(self.copy, self.DIR))
        self.mounted = self.problem is None
        if self.mounted:
            self.certificates = bundle.read_text().count("BEGIN CERTIFICATE")

    def unmount(self):
        if self.mounted:
            unbind(self.DIR)
            self.mounted = False


def bench_login_names(args):
    """Every name the sections log in with (their accounts: Accounts)."""
    names = {BENCH_USER, SCALE_USER, LDAP_USER, BACKUP_USER, GRACE_USER, GRACE_SMS_USER,
             "unmapped"}
    names |= {f"user{i}" for i in range(9)}  # latency_users()
    names |= {f"c{i:03d}" for i in range(max(args.level_list, default=0))}
    names |= {f"d{i:03d}" for i in range(args.ldap_clients)}
    names |= {f"r{i:03d}" for i in range(max(args.redis_level_list, default=0))}
    return names


class Bench:
    def __init__(self, workdir, args):
        self.workdir = Path(workdir)
        self.args = args
        self.sandbox = Sandbox(self.workdir / "sandbox")
        self.syslog = None
        self.services = []
        self.conf = self.workdir / "conf"
        self.conf.mkdir(mode=0o700)
        self.tmpfs = None
        self.outbox = self.requests = None
        self.pending = collections.defaultdict(collections.deque)  # phone -> SMS bodies
        self.sms_count = collections.Counter()
        self.scale_cases = []  # (name, service) of the scale section, for callgrind
        self.slapd = None      # the directory section's server (start_directory)
        self.redis = None      # the redis section's server (start_redis)
        self.accounts = Accounts(self.workdir, bench_login_names(args))
        self.system_cas = SystemCAs(self.workdir)

    # ---- setup

    def start(self):
        self.sandbox.start()
        self.outbox = Tail(self.sandbox.dir / "outbox.jsonl")
        self.requests = Tail(self.sandbox.dir / "requests.jsonl")
        self.syslog = SyslogCapture(self.workdir)
        if not self.syslog.owns_dev_log and os.environ.get(NS_MARK):
            # in our own mount namespace (enter_namespace): every client logs to our socket
            problem = bind_over(self.syslog.path, "/dev/log")
            if problem:
                say(f"bench: cannot mount the log socket over /dev/log ({problem}); "
                    "module log lines go to the system's /dev/log")
        shm = Path("/dev/shm")
        if shm.is_dir():
            self.tmpfs = Path(tempfile.mkdtemp(prefix="tsms-bench-", dir=shm))
        self.system_cas.mount(self.sandbox.ca_file)
        self.accounts.mount()
        if self.accounts.problem:
            say(f"bench: the login names are not accounts ({self.accounts.problem}): each "
                "login also asks nsswitch.conf's sources after files")

    def stop(self):
        self.accounts.unmount()
        self.system_cas.unmount()
        for name in self.services:
            (PAM_DIR / name).unlink(missing_ok=True)
        self.services = []
        if self.slapd:
            self.slapd.stop()
        if self.redis:
            self.redis.stop()
        if self.syslog:
            self.syslog.close()
        self.sandbox.stop()
        for t in (self.outbox, self.requests):
            if t:
                t.close()
        if self.tmpfs:
            shutil.rmtree(self.tmpfs, ignore_errors=True)

    def config(self, name, users=None, state=None, **over):
        """Writes a root-owned 0600 config and returns its path."""
        cfg = {
            "accountSID": ACCOUNT_SID,
            "authToken": AUTH_TOKEN,
            "fromMessagingServiceSID": MESSAGING_SID,
            "templates": [{"usageType": "SignIn", "content": DEFAULT_TEMPLATE}],
            "apiBaseUrl": self.sandbox.base_url,
            "caFile": self.sandbox.ca_file,
            "timeoutSeconds": 30,  # room for a client under callgrind
            "stateDir": str(state or self.conf / f"state-{name}"),
            # limits that count (a state file per user and @global, written per SMS) but
            # never refuse: windows of a second, so no number of runs reaches them
            "sendLimit": 1000,
            "sendWindowSeconds": 1,
            "resendCooldownSeconds": 0,
            "globalSendLimit": 1_000_000,
        }
        if users is not None:
            cfg["users"] = users
        cfg.update(over)
        cfg = {k: v for k, v in cfg.items() if v is not None}  # caFile=None: no caFile
        path = self.conf / f"{name}.json"
        write_private(path, json.dumps(cfg, separators=(",", ":")))
        return path

    def service(self, name, module_line):
        svc = f"{SERVICE_PREFIX}{os.getpid()}-{name}"
        path = PAM_DIR / svc
        self.services.append(svc)
        path.write_text(module_line + "\n")
        os.chmod(path, 0o644)
        return svc

    def module_service(self, name, config, module=MODULE):
        return self.service(name, f"auth required {module} config={config}")

    def start_directory(self, people):
        """Starts the bench's own slapd under the workdir (tests/harness/slapd.py: its own
        config, database and the sandbox's test CA, on free loopback ports), with the
        service account and people (uid -> mobile); stop() ends it. Returns what is
        missing to run one, or None."""
        problem = install_problem()
        if problem:
            return problem
        self.slapd = Slapd(self.workdir)  # before start(): stop() removes a failed one too
        try:
            self.slapd.start()
            self.slapd.bind_dn = self.slapd.add_service_account(BIND_CN, BIND_PASSWORD)
            self.slapd.add_entries("".join(
                ldif_entry(f"uid={uid},{self.slapd.people_dn}",
                           {"objectClass": "inetOrgPerson", "uid": uid, "cn": uid, "sn": uid,
                            "mobile": mobile})
                for uid, mobile in people.items()))
        except CaseFailure as e:
            raise BenchError(f"slapd: {e}") from None
        return None

    def start_redis(self):
        """Starts the bench's own redis-server under the workdir (tests/harness/redis.py:
        its own config, nothing saved, a free loopback port and a Unix socket, the default
        user off, the module's ACL user); stop() ends it. Returns what is missing to run
        one, or None."""
        try:
            from harness.redis import Redis, install_problem as redis_install_problem
        except ImportError as e:
            return f"tests/harness/redis.py not usable: {e}"
        problem = redis_install_problem()
        if problem:
            return problem
        self.redis = Redis(self.workdir)  # before start(): stop() removes a failed one too
        try:
            self.redis.start()
        except CaseFailure as e:
            raise BenchError(f"redis-server: {e}") from None
        return None

    def ldap_object(self):
        """The config's ldap object for the bench's slapd, as an administrator writes it:
        ldaps, a service account, the server's CA."""
        s = self.slapd
        return {"uri": s.ldaps_url, "caFile": s.ca_file, "bindDN": s.bind_dn,
                "bindPassword": BIND_PASSWORD, "baseDN": s.people_dn, "filter": "(uid=%u)",
                "attribute": "mobile", "timeoutSeconds": 10}

    # ---- clients

    def pam_job(self, service, user, phone, prefix=()):
        return Job("pam", [*prefix, "pamtester", service, user, "authenticate"], phone)

    def curl_job(self, phone, prefix=(), cacert=True):
        """The module's request, sent by the curl command: same URL, HTTP Basic, form fields
        in the same order, body of the same template and code length, Accept header,
        User-Agent, no Expect, TLS 1.2 or later against the same CA file (cacert=False: the
        system's CAs, curl's default, as a module config without caFile)."""
        body = DEFAULT_TEMPLATE.replace("{{code}}", f"{secrets.randbelow(10**6):06d}")
        url = f"{self.sandbox.base_url}/2010-04-01/Accounts/{ACCOUNT_SID}/Messages.json"
        argv = [*prefix, "curl", "-sS", "--proto", "=https", "--tlsv1.2",
                *(("--cacert", self.sandbox.ca_file) if cacert else ()),
                "--user", f"{ACCOUNT_SID}:{AUTH_TOKEN}",
                "-A", USER_AGENT, "-H", "Accept: application/json", "-H", "Expect:",
                "--max-time", "10",
                "--data-urlencode", f"To={phone}",
                "--data-urlencode", f"MessagingServiceSid={MESSAGING_SID}",
                "--data-urlencode", f"Body={body}",
                "--data-urlencode", "ValidityPeriod=300",
                "-o", "/dev/null", "-w", "%{http_code}", url]
        return Job("plain", argv, phone)

    def ldapsearch_job(self, url, user):
        """The module's directory work done by ldapsearch: a simple bind as the service
        account, then the same subtree search for the same attribute, over url, trusting
        the slapd CA only (no config files: LDAPCONF=/dev/null, no HOME)."""
        s = self.slapd
        job = Job("plain", ["ldapsearch", "-H", url, "-x", "-D", s.bind_dn, "-w", BIND_PASSWORD,
                            "-b", s.people_dn, "-s", "sub", "-LLL", f"(uid={user})", "mobile"])
        job.env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LDAPCONF": "/dev/null",
                   "LDAPTLS_CACERT": s.ca_file, "LDAPTLS_REQCERT": "demand"}
        return job

    # ---- running a batch of clients at once

    def _read_records(self):
        for row in self.outbox.read():
            self.pending[row.get("to")].append(row.get("body"))
            self.sms_count[row.get("to")] += 1

    def _code_for(self, job, deadline):
        """The code of the SMS the job's client just caused: the module sends before it
        prompts and the sandbox writes the outbox before it answers, so it is there."""
        while True:
            self._read_records()
            if self.pending[job.phone]:
                return extract_code(self.pending[job.phone].popleft(), 6)
            if time.monotonic() > deadline:
                return None
            time.sleep(0.0005)

    def _spawn(self, job, sel):
        stdin = subprocess.PIPE if job.kind == "pam" else subprocess.DEVNULL
        job.start_wall = time.time()
        job.start = time.monotonic()
        job.proc = subprocess.Popen(job.argv, stdin=stdin, stdout=subprocess.PIPE,
                                    stderr=subprocess.STDOUT, env=job.env)
        sel.register(job.proc.stdout.fileno(), selectors.EVENT_READ, job)

    def _service(self, sel, timeout, deadline):
        for key, _ in sel.select(timeout):
            job = key.data
            chunk = os.read(key.fd, 65536)
            if not chunk:
                job.end = time.monotonic()
                sel.unregister(key.fd)
                _, status, usage = os.wait4(job.proc.pid, 0)
                job.proc.returncode = job.status = os.waitstatus_to_exitcode(status)
                job.maxrss_kib = usage.ru_maxrss
                job.cpu = usage.ru_utime + usage.ru_stime
                if job.rss_file:
                    job.maxrss_kib = read_time_rss(job.rss_file)
                for f in (job.proc.stdin, job.proc.stdout):
                    if f:
                        try:
                            f.close()
                        except OSError:
                            pass
                continue
            job.out += chunk
            prompt = None
            if job.kind == "pam" and not job.answered:
                text = job.out.decode("utf-8", "replace")
                prompt = PROMPT_RE.search(text) or BACKUP_PROMPT_RE.search(text)
            if prompt:
                job.answered = True
                if job.snapshot is not None:
                    job.snapshot.update(memory_map(job.proc.pid))
                # read the SMS also when a backup code is typed, so that the harness does
                # the same work; the backup prompt comes with no SMS
                code = self._code_for(job, deadline) if prompt.re is PROMPT_RE else None
                try:
                    job.proc.stdin.write(((job.answer or code or "no-sms") + "\n").encode())
                    job.proc.stdin.close()
                except BrokenPipeError:
                    pass

    def run(self, jobs, timeout=60.0):
        """Starts the jobs one right after the other (answering prompts in between) and
        waits for all; then matches each to its SMS and its request in the sandbox."""
        sel = selectors.DefaultSelector()
        deadline = time.monotonic() + timeout
        self.sms_count.clear()
        try:
            for job in jobs:
                self._spawn(job, sel)
                self._service(sel, 0, deadline)
            while sel.get_map():
                left = deadline - time.monotonic()
                if left <= 0:
                    raise BenchError(f"{len(sel.get_map())} clients still running after "
                                     f"{timeout:.0f}s, e.g. {jobs[0].argv[:4]}")
                self._service(sel, min(left, 1.0), deadline)
        finally:
            for job in jobs:
                if job.proc and job.proc.returncode is None:
                    job.proc.kill()
                    job.proc.wait()
            sel.close()
        return self.match(jobs)

    def match(self, jobs):
        """Matches each job that expects an SMS to its SMS and its request in the sandbox
        (the records since the last match); returns jobs."""
        self._read_records()
        rows = {}
        for row in self.requests.read():
            for to in (row.get("form") or {}).get("To", []):
                rows.setdefault(to, []).append(row)
        for job in jobs:
            if job.phone is None:
                continue
            job.sms = self.sms_count[job.phone]
            reqs = rows.get(job.phone, [])
            if reqs:
                job.request_time = reqs[0]["time"]
                job.request_status = reqs[0]["status"]
                job.form = reqs[0]["form"]
            if len(reqs) != 1:
                job.request_status = -len(reqs)  # none or several: an error either way
        self.pending.clear()
        return jobs

    def run_tty(self, job, answers, timeout=60.0):
        """Runs job.argv on a new pseudo-terminal, its controlling terminal (ssh reads its
        keyboard-interactive answers from /dev/tty), answering each prompt as it shows:
        answers is a list of (regex, reply), reply None for the SMS code. Returns the job,
        matched like run()'s."""
        master, slave = os.openpty()
        self.sms_count.clear()
        deadline = time.monotonic() + timeout
        seen = 0  # job.out before this position was answered already
        try:
            job.start_wall = time.time()
            job.start = time.monotonic()
            job.proc = subprocess.Popen(
                job.argv, stdin=slave, stdout=slave, stderr=slave, env=job.env, cwd="/",
                start_new_session=True, preexec_fn=take_terminal)
            os.close(slave)
            slave = -1
            while True:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise BenchError(f"{job.argv[0]} still running after {timeout:.0f}s: "
                                     f"{job.out[-300:]!r}")
                ready, _, _ = select.select([master], [], [], min(left, 1.0))
                if not ready:
                    continue
                try:
                    chunk = os.read(master, 65536)
                except OSError:  # EIO: every holder of the terminal's other side has gone
                    chunk = b""
                if not chunk:
                    job.end = time.monotonic()
                    break
                job.out += chunk
                text = job.out[seen:].decode("utf-8", "replace")
                for pattern, reply in answers:
                    if pattern.search(text):
                        if reply is None:
                            reply = self._code_for(job, deadline) or "no-sms"
                        os.write(master, (reply + "\n").encode())
                        seen = len(job.out)
                        break
            _, status, usage = os.wait4(job.proc.pid, 0)
            job.proc.returncode = job.status = os.waitstatus_to_exitcode(status)
            job.cpu = usage.ru_utime + usage.ru_stime
        finally:
            if job.proc and job.proc.returncode is None:
                job.proc.kill()
                job.proc.wait()
            os.close(master)
            if slave >= 0:
                os.close(slave)
        return self.match([job])[0]


def take_terminal():
    """In the child of run_tty, after setsid: its standard input becomes its controlling
    terminal."""
    fcntl.ioctl(0, termios.TIOCSCTTY, 0)


def read_time_rss(path):
    """The %M line /usr/bin/time wrote (the last line: a failing client adds one before)."""
    try:
        return int(Path(path).read_text().split()[-1])
    except (OSError, ValueError, IndexError):
        return None


def with_rss(job, path):
    """The job run under /usr/bin/time, which reports its peak RSS. Its wait4 rusage
    would not do: a child of a vfork()ing Python inherits Python's high-water mark at
    exec, while time, a small C program, fork()s."""
    job.argv = ["/usr/bin/time", "-f", "%M", "-o", str(path), *job.argv]
    job.rss_file = path
    return job


RSS_GROUPS = (
    ("pam_twilio_sms.so", r"pam_twilio_sms\.so"),
    ("libcrypto", r"libcrypto"),
    ("libssl", r"libssl"),
    ("libcurl", r"libcurl"),
    ("libc", r"/libc\.so"),
    ("libcjson, libsodium", r"libcjson|libsodium"),
    ("pamtester, libpam, ld.so", r"pamtester|libpam|ld-linux"),
    ("libcurl's other dependencies", r"\.so"),
    ("heap and anonymous memory", r"^\[heap\]$|^$|^\[anon"),
    ("stack", r"^\[stack\]$"),
)


def memory_map(pid):
    """The process's RSS (KiB) now, by mapping group, from /proc/PID/smaps, its peak so
    far (VmHWM) and its proportional share (PSS: shared library pages divided among the
    processes that map them)."""
    groups, files, pss, dirty, name = collections.Counter(), collections.Counter(), 0, 0, ""
    try:
        smaps = Path(f"/proc/{pid}/smaps").read_text()
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return {}
    for line in smaps.splitlines():
        head = re.match(r"^[0-9a-f]+-[0-9a-f]+ \S+ \S+ \S+ \S+\s*(.*)$", line)
        if head:
            name = head.group(1).strip()
            continue
        m = re.match(r"^(Rss|Pss|Private_Dirty):\s+(\d+) kB", line)
        if not m:
            continue
        if m.group(1) == "Pss":
            pss += int(m.group(2))
            continue
        if m.group(1) == "Private_Dirty":
            dirty += int(m.group(2))
            continue
        files[name.rsplit("/", 1)[-1] or "[anon]"] += int(m.group(2))
        for group, pattern in RSS_GROUPS:
            if re.search(pattern, name):
                groups[group] += int(m.group(2))
                break
        else:
            groups["other"] += int(m.group(2))
    hwm = re.search(r"^VmHWM:\s+(\d+) kB", status, re.M)
    return {"groups": dict(groups), "rss_kib": sum(groups.values()), "pss_kib": pss,
            "private_dirty_kib": dirty, "hwm_kib": int(hwm.group(1)) if hwm else None,
            "top_files": dict(files.most_common(12))}


def write_private(path, text):
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(text)
    os.chown(path, 0, 0)
    os.chmod(path, 0o600)


def phone_of(i, base=5_550_000):
    return f"+1555{base + i:07d}"


# --------------------------------------------------------------------------- sections

PAM_OK = b"successfully authenticated"
CURL_OK = b"201"


class Series:
    """Samples of one client kind: wall and dispatch seconds, peak RSS, failures."""

    def __init__(self, name):
        self.name = name
        self.wall, self.dispatch, self.rss, self.cpu, self.errors = [], [], [], [], 0

    def add(self, job, want, ok=None):
        """One sample of the job, if job.ok(want) (or ok, when given: the caller checked)."""
        if not (job.ok(want) if ok is None else ok):
            self.errors += 1
            return
        if job.rss_file:
            self.rss.append(job.maxrss_kib)
            return
        self.wall.append(job.wall)
        self.cpu.append(job.cpu)
        if job.dispatch is not None:
            self.dispatch.append(job.dispatch)

    def summary(self):
        return {
            "n": len(self.wall), "errors": self.errors,
            "wall_ms": ms(median(self.wall)), "wall_p10_ms": ms(pct(self.wall, 10)),
            "wall_p90_ms": ms(pct(self.wall, 90)),
            "cpu_ms": ms(median(self.cpu)) if self.cpu else None,
            "dispatch_ms": ms(median(self.dispatch)) if self.dispatch else None,
            "dispatch_p10_ms": ms(pct(self.dispatch, 10)) if self.dispatch else None,
            "dispatch_p90_ms": ms(pct(self.dispatch, 90)) if self.dispatch else None,
            "rss_kib": median(self.rss) if self.rss else None,
            "rss_min_kib": min(self.rss) if self.rss else None,
            "rss_max_kib": max(self.rss) if self.rss else None,
        }


def ms(seconds):
    return round(seconds * 1000, 3)


def say(text):
    print(text, file=sys.stderr, flush=True)


def latency_users():
    """Ten users, the benchmarked one among them."""
    users = {f"user{i}": phone_of(i, 5_550_110) for i in range(9)}
    users[BENCH_USER] = BENCH_PHONE
    return users


def section_latency(b, runs, warmup):
    """Module vs curl (and pam_permit, the module with its stateDir on tmpfs, the module
    for an unmapped user), one of each per round in a random order; and the module, curl
    and pam_permit under /usr/bin/time for their peak RSS (the timed runs go without)."""
    users = latency_users()
    svc = b.module_service("latency", b.config("latency", users))
    permit = b.service("permit", "auth required pam_permit.so")
    # the module loaded and its config read, but no state, request or prompt: an unmapped
    # user with nullok (PAM_IGNORE), then pam_permit
    nosend = b.service("nosend", f"auth required {MODULE} config={b.conf / 'latency.json'} "
                       "nullok\nauth required pam_permit.so")
    kinds = {
        "module": lambda: (b.pam_job(svc, BENCH_USER, BENCH_PHONE), PAM_OK),
        "curl": lambda: (b.curl_job(BENCH_PHONE), CURL_OK),
        "permit": lambda: (b.pam_job(permit, BENCH_USER, None), PAM_OK),
        "module_nosend": lambda: (b.pam_job(nosend, "unmapped", None), PAM_OK),
    }
    if b.args.baseline:  # another build of the module, same config, in the same rounds
        bsvc = b.module_service("latency-baseline", b.conf / "latency.json", b.args.baseline)
        kinds["baseline"] = lambda: (b.pam_job(bsvc, BENCH_USER, BENCH_PHONE), PAM_OK)
    if b.tmpfs:
        tsvc = b.module_service("latency-tmpfs", b.config("latency-tmpfs", users,
                                                          state=b.tmpfs / "state"))
        kinds["module_tmpfs"] = lambda: (b.pam_job(tsvc, BENCH_USER, BENCH_PHONE), PAM_OK)
    if b.system_cas.mounted:  # as installed: no caFile, no --cacert (SystemCAs)
        scfg = b.config("latency-system-cas", users, caFile=None)
        ssvc = b.module_service("latency-system-cas", scfg)
        kinds["module_system_cas"] = lambda: (b.pam_job(ssvc, BENCH_USER, BENCH_PHONE), PAM_OK)
        kinds["curl_system_cas"] = lambda: (b.curl_job(BENCH_PHONE, cacert=False), CURL_OK)
        if b.args.baseline:
            sbsvc = b.module_service("latency-system-cas-baseline", scfg, b.args.baseline)
            kinds["baseline_system_cas"] = lambda: (b.pam_job(sbsvc, BENCH_USER, BENCH_PHONE),
                                                    PAM_OK)
    rss = b.workdir / "rss"
    kinds["rss_module"] = lambda: (with_rss(b.pam_job(svc, BENCH_USER, BENCH_PHONE), rss), PAM_OK)
    kinds["rss_permit"] = lambda: (with_rss(b.pam_job(permit, BENCH_USER, None), rss), PAM_OK)
    kinds["rss_curl"] = lambda: (with_rss(b.curl_job(BENCH_PHONE), rss), CURL_OK)
    if b.args.baseline:
        kinds["rss_baseline"] = lambda: (with_rss(b.pam_job(bsvc, BENCH_USER, BENCH_PHONE), rss),
                                         PAM_OK)
    if "module_system_cas" in kinds:
        kinds["rss_module_system_cas"] = lambda: (
            with_rss(b.pam_job(ssvc, BENCH_USER, BENCH_PHONE), rss), PAM_OK)
    if "baseline_system_cas" in kinds:
        kinds["rss_baseline_system_cas"] = lambda: (
            with_rss(b.pam_job(sbsvc, BENCH_USER, BENCH_PHONE), rss), PAM_OK)
    series = {k: Series(k) for k in kinds}
    forms = {}
    rng = random.Random(5)  # a new order every round: no kind always follows another
    for i in range(warmup + runs):
        order = list(kinds)
        rng.shuffle(order)
        for k in order:
            job, want = kinds[k]()
            b.run([job])
            if i >= warmup:
                series[k].add(job, want)
                forms.setdefault(k, job.form)
    same = forms.get("module") and forms.get("curl") and \
        list(forms["module"]) == list(forms["curl"]) and \
        all(forms["module"][f] == forms["curl"][f] for f in ("To", "MessagingServiceSid")) and \
        len(forms["module"]["Body"][0]) == len(forms["curl"]["Body"][0])
    out = {k: s.summary() for k, s in series.items() if not k.startswith("rss_")}
    for k in [k[len("rss_"):] for k in kinds if k.startswith("rss_")]:
        r = series["rss_" + k].summary()
        out[k].update({f: r[f] for f in ("rss_kib", "rss_min_kib", "rss_max_kib")})
        out[k]["rss_errors"] = r["errors"]
    for key, service in (("module", svc),) + ((("baseline", bsvc),) if b.args.baseline else ()):
        snap = b.pam_job(service, BENCH_USER, BENCH_PHONE)
        snap.snapshot = {}
        b.run([snap])
        out[f"{key}_memory_at_prompt"] = snap.snapshot
    out["identical_form"] = bool(same)
    out["form_fields"] = list(forms.get("module") or [])
    return out


def write_users_file(path, n):
    """n users, the benchmarked one last (the module scans the whole file anyway)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write("# pam_twilio_sms users: user +E164number\n")
        chunk = []
        for i in range(n - 1):
            chunk.append(f"u{i:07d} {phone_of(i, 1_000_000)}\n")
            if len(chunk) == 10000:
                f.write("".join(chunk))
                chunk = []
        f.write("".join(chunk))
        f.write(f"{SCALE_USER} {SCALE_PHONE}\n")
    os.chown(path, 0, 0)


def section_scale(b, runs, warmup, file_sizes, inline_sizes):
    """Full authentications of a user among n others, in the users file or inline; and,
    for the users file, the lookup alone: an unmapped user with nullok (the whole file is
    scanned, as for a mapped user) then pam_permit, without state files or a request.
    The cases run in a new random order every round, so that none always follows a
    heavy one."""
    state = str(b.conf / "state-scale")
    cases = []
    for n in file_sizes:
        path = b.conf / f"users-{n}"
        write_users_file(path, n)
        cfg = b.config(f"file-{n}", usersFile=str(path), stateDir=state)
        size = path.stat().st_size
        cases.append(dict(name=f"file-{n}", where="usersFile", users=n, bytes=size,
                          svc=b.module_service(f"file-{n}", cfg), user=SCALE_USER,
                          phone=SCALE_PHONE))
        cases.append(dict(name=f"lookup-file-{n}", where="usersFile, lookup only", users=n,
                          bytes=size, user="unmapped", phone=None,
                          svc=b.service(f"lookup-file-{n}", f"auth required {MODULE} "
                                        f"config={cfg} nullok\nauth required pam_permit.so")))
    for n in inline_sizes:
        users = {f"u{i:07d}": phone_of(i, 1_000_000) for i in range(n - 1)}
        users[SCALE_USER] = SCALE_PHONE
        cfg = b.config(f"inline-{n}", users, stateDir=state)
        cases.append(dict(name=f"inline-{n}", where="inline", users=n, bytes=cfg.stat().st_size,
                          svc=b.module_service(f"inline-{n}", cfg), user=SCALE_USER,
                          phone=SCALE_PHONE))
    b.scale_cases = [(c["name"], c["svc"]) for c in cases if c["phone"]]
    series = {c["name"]: Series(c["name"]) for c in cases}
    rng = random.Random(5)
    for i in range(warmup + runs):
        order = list(cases)
        rng.shuffle(order)
        for c in order:
            job = b.run([b.pam_job(c["svc"], c["user"], c["phone"])])[0]
            if i >= warmup:
                series[c["name"]].add(job, PAM_OK)
    return {c["name"]: dict(series[c["name"]].summary(), where=c["where"], users=c["users"],
                            bytes=c["bytes"]) for c in cases}


def cpu_seconds(pid):
    """User + system CPU seconds of a running process."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def listen_overflows():
    """TcpExt ListenOverflows: connections the kernel dropped because a listen queue was full
    (the client retries its SYN after a second)."""
    try:
        rows = [l.split() for l in Path("/proc/net/netstat").read_text().splitlines()
                if l.startswith("TcpExt:")]
        return int(dict(zip(rows[0], rows[1]))["ListenOverflows"])
    except (OSError, IndexError, KeyError, ValueError):
        return 0


def threads_cpu_seconds(pid):
    """CPU seconds of a running process's threads, to the nanosecond (their schedstat);
    a multi-threaded server such as slapd uses less than a clock tick per request."""
    total = 0
    try:
        tids = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return 0.0
    for tid in tids:
        try:
            total += int(Path(f"/proc/{pid}/task/{tid}/schedstat").read_text().split()[0])
        except (OSError, ValueError, IndexError):
            pass
    return total / 1e9


class Batches:
    """Batches of simultaneous clients of one side: throughput, p50/p99 latency, errors,
    lost and duplicated SMS (and the SMS each batch produced), client CPU, the CPU each
    server used while the batches ran (a share of one core) and the SYNs the kernel
    dropped at a full listen queue."""

    def __init__(self, b, want, servers):
        self.b, self.want, self.servers = b, want, servers  # servers: name -> CPU seconds
        self.lat, self.tput, self.cpu, self.sms = [], [], [], []
        self.n = self.errors = self.lost = self.dup = self.overflows = self.batches = 0
        self.span_sum = 0.0
        self.busy = collections.Counter()
        self.failed = []  # the first few failures: what the client said

    def run(self, jobs, measured):
        t0, o0 = time.monotonic(), listen_overflows()
        c0 = {name: f() for name, f in self.servers.items()}
        self.b.run(jobs, timeout=120)
        span = max(j.end for j in jobs) - t0
        if not measured:
            return
        for name, f in self.servers.items():
            self.busy[name] += f() - c0[name]
        self.overflows += listen_overflows() - o0
        self.span_sum += span
        self.batches += 1
        self.cpu += [j.cpu for j in jobs if j.cpu is not None]
        self.tput.append(len(jobs) / span)
        self.sms.append(sum(j.sms for j in jobs))
        for j in jobs:
            self.n += 1
            self.lost += j.sms == 0
            self.dup += j.sms > 1
            if j.ok(self.want):
                self.lat.append(j.wall)
            else:
                self.errors += 1
                if len(self.failed) < 3:
                    self.failed.append({"status": j.status, "sms": j.sms,
                                        "request_status": j.request_status,
                                        "wall_ms": ms(j.wall),
                                        "output": j.out[-300:].decode("utf-8", "replace")})

    def summary(self):
        out = {
            "batches": self.batches, "auths": self.n, "errors": self.errors,
            "lost_sms": self.lost, "duplicate_sms": self.dup,
            "sms_per_batch": [min(self.sms), max(self.sms)] if self.sms else None,
            "throughput": round(median(self.tput), 2),
            "p50_ms": ms(pct(self.lat, 50)), "p99_ms": ms(pct(self.lat, 99)),
            "client_cpu_ms": ms(median(self.cpu)),
        }
        for name in self.servers:
            out[f"{name}_cpu_pct"] = (round(100 * self.busy[name] / self.span_sum, 1)
                                      if self.span_sum else None)
        out["listen_overflows"] = self.overflows
        if self.failed:
            out["failed"] = self.failed
        return out


def say_batches(label, x):
    servers = ", ".join(f"{k[:-8]} CPU {v} %" for k, v in x.items() if k.endswith("_cpu_pct"))
    say(f"  {label}: {x['throughput']:7.1f}/s p50 {x['p50_ms']:.1f} ms p99 {x['p99_ms']:.1f} ms "
        f"errors {x['errors']} lost {x['lost_sms']} dup {x['duplicate_sms']}, {servers}, "
        f"{x['listen_overflows']} SYNs dropped")


def section_concurrency(b, runs, warmup, levels):
    top = max(levels)
    users = {f"c{i:03d}": phone_of(i, 2_000_000) for i in range(top)}
    svc = b.module_service("concurrency", b.config("concurrency", users))
    sides = {"module": svc, "curl": None}
    if b.tmpfs:
        sides["module_tmpfs"] = b.module_service(
            "concurrency-tmpfs", b.config("concurrency-tmpfs", users, state=b.tmpfs / "cstate"))
    sandbox = {"sandbox": lambda: cpu_seconds(b.sandbox.proc.pid)}
    out = {}
    for c in levels:
        res = {}
        for side, side_svc in sides.items():
            batches = Batches(b, PAM_OK if side_svc else CURL_OK, sandbox)
            for r in range(warmup + runs):
                if side_svc:
                    jobs = [b.pam_job(side_svc, f"c{i:03d}", phone_of(i, 2_000_000))
                            for i in range(c)]
                else:
                    jobs = [b.curl_job(phone_of(i, 2_000_000)) for i in range(c)]
                batches.run(jobs, measured=r >= warmup)
            res[side] = batches.summary()
            say_batches(f"concurrency {c:>3} {side:<12}", res[side])
        out[str(c)] = res
    return out


# ---- directory

CLOSED_RE = re.compile(r"^conn=(\d+) fd=\d+ closed")
BIND_RESULT, SEARCH_RESULT = "97", "101"  # LDAP result tags


def slapd_connections(server):
    """conn -> when (seconds since the epoch, slapd's clock) slapd accepted it, finished the
    TLS handshake (tls), answered the bind (bound) and the search (found), and closed it."""
    conns = {}
    for at, msg in server.lines():
        t = at / 1e9
        if m := ACCEPT_RE.match(msg):
            conns[m.group(1)] = {"accept": t}
        elif (m := TLS_RE.match(msg)) and m.group(1) in conns:
            conns[m.group(1)].setdefault("tls", t)
        elif (m := CLOSED_RE.match(msg)) and m.group(1) in conns:
            conns[m.group(1)].setdefault("closed", t)
        elif (m := OP_RE.match(msg)) and m.group(1) in conns:
            r = RESULT_RE.match(m.group(3))
            if r and r.group(2) == BIND_RESULT:
                conns[m.group(1)].setdefault("bound", t)
            elif r and r.group(2) == SEARCH_RESULT:
                conns[m.group(1)].setdefault("found", t)
    return conns


# (key, from, to): the phases of one client's directory work; "start" is when the bench
# spawned the client, "done" the request at the sandbox (module) or the client's exit
LDAP_PHASES = (
    ("connect", "start", "accept"),
    ("handshake", "accept", "tls"),
    ("bind", "tls", "bound"),
    ("search", "bound", "found"),
    ("close", "found", "closed"),
    ("after", "closed", "done"),
    ("connection", "accept", "closed"),
)


def connection_phases(jobs, conns):
    """Median ms of each phase over the jobs that made exactly one connection (the one slapd
    accepted while the job ran: the jobs ran one at a time), and how many made one, none or
    more."""
    spans, count = collections.defaultdict(list), collections.Counter()
    for job in jobs:
        end = job.start_wall + job.wall
        mine = [c for c in conns.values() if job.start_wall <= c["accept"] <= end]
        count[min(len(mine), 2)] += 1
        if len(mine) != 1:
            continue
        at = dict(mine[0], start=job.start_wall,
                  done=job.request_time if job.phone else end)
        at.setdefault("tls", at["accept"])  # plain ldap: no handshake, the bind follows
        for key, a, z in LDAP_PHASES:
            if at.get(a) is not None and at.get(z) is not None:
                spans[key].append(at[z] - at[a])
    out = {key: ms(median(v)) for key, v in spans.items()}
    out["connections"] = {"none": count[0], "one": count[1], "several": count[2]}
    return out


def section_directory(b, runs, warmup, clients):
    """The number from the directory against the number from the users object, and
    ldapsearch doing the module's bind and search (the floor), one of each per round in
    a random order; then batches of clients simultaneous authentications, local and
    directory users in turn."""
    people = {f"d{i:03d}": phone_of(i, 3_000_000) for i in range(clients)}
    problem = b.start_directory({LDAP_USER: LDAP_PHONE, **people})
    if problem:
        say(f"  directory: skipped: {problem}")
        return {"skipped": problem}
    s, ldap = b.slapd, b.ldap_object()
    # one config for both users: the local one is in its users object (a local entry wins:
    # the directory is not asked), LDAP_USER only in the directory
    svc = b.module_service("ldap", b.config("ldap", latency_users(), ldap=ldap))
    found = f"mobile: {LDAP_PHONE}".encode()
    kinds = {
        "local": lambda: (b.pam_job(svc, BENCH_USER, BENCH_PHONE), PAM_OK),
        "ldap": lambda: (b.pam_job(svc, LDAP_USER, LDAP_PHONE), PAM_OK),
        "ldapsearch_ldaps": lambda: (b.ldapsearch_job(s.ldaps_url, LDAP_USER), found),
        "ldapsearch_ldap": lambda: (b.ldapsearch_job(s.ldap_url, LDAP_USER), found),
    }
    series = {k: Series(k) for k in kinds}
    done = collections.defaultdict(list)
    slapd_cpu = collections.defaultdict(list)
    rng = random.Random(5)
    for i in range(warmup + runs):
        order = list(kinds)
        rng.shuffle(order)
        for k in order:
            job, want = kinds[k]()
            c0 = threads_cpu_seconds(s.proc.pid)
            b.run([job])
            if i < warmup:
                continue
            slapd_cpu[k].append(threads_cpu_seconds(s.proc.pid) - c0)
            series[k].add(job, want)
            if job.ok(want):
                done[k].append(job)
    time.sleep(0.2)  # slapd logs a connection's close after the client has gone
    conns = slapd_connections(s)
    out = {}
    for k in kinds:
        out[k] = series[k].summary()
        out[k]["slapd_cpu_ms"] = ms(statistics.fmean(slapd_cpu[k])) if slapd_cpu[k] else None
        out[k]["phases_ms"] = connection_phases(done[k], conns)
        say(f"  directory {k:<17}: dispatch {fmt(out[k]['dispatch_ms'])} ms, wall "
            f"{fmt(out[k]['wall_ms'])} ms, client CPU {fmt(out[k]['cpu_ms'])} ms, slapd CPU "
            f"{fmt(out[k]['slapd_cpu_ms'])} ms, errors {out[k]['errors']}")

    local = b.module_service("ldap-batch-local", b.config("ldap-batch-local", people, ldap=ldap))
    remote = b.module_service("ldap-batch", b.config("ldap-batch", latency_users(), ldap=ldap))
    servers = {"sandbox": lambda: cpu_seconds(b.sandbox.proc.pid),
               "slapd": lambda: threads_cpu_seconds(s.proc.pid)}
    sides = {"local": (local, Batches(b, PAM_OK, servers)),
             "ldap": (remote, Batches(b, PAM_OK, servers))}
    for r in range(warmup + runs):
        order = list(sides)
        rng.shuffle(order)
        for side in order:
            side_svc, batches = sides[side]
            batches.run([b.pam_job(side_svc, uid, phone) for uid, phone in people.items()],
                        measured=r >= warmup)
    out["batch"] = {"clients": clients}
    for side, (_, batches) in sides.items():
        out["batch"][side] = batches.summary()
        say_batches(f"directory {clients} clients, {side:<5}", out["batch"][side])
    out["config"] = {k: v for k, v in ldap.items() if k != "bindPassword"}
    return out


# ---- redis

def redis_calls(server):
    """EVALSHA calls Redis has run so far, and the microseconds they took (its INFO
    commandstats; the admin's own connection, outside any timed batch)."""
    row = server.info("commandstats").get("cmdstat_evalsha", "")
    stats = dict(kv.split("=", 1) for kv in row.split(",") if "=" in kv)
    return int(stats.get("calls", 0)), float(stats.get("usec", 0))


def section_redis(b, runs, warmup, levels):
    """Batches of simultaneous authentications of distinct users with the state in the
    files (stateDir on the normal disk), in Redis over TCP and over its Unix socket: one
    batch of each per round, in a new random order every round, so that the machine's
    drift hits the three alike. The same users, numbers and limits on every side; the
    limits count (a per-user record and the global one for every SMS) but never refuse.
    A Redis side has its own stateDir, the fallback: a login that could not use Redis
    leaves files there and a warning in the log."""
    problem = b.start_redis()
    if problem:
        say(f"  redis: skipped: {problem}")
        return {"skipped": problem}
    r = b.redis
    top = max(levels)
    users = {f"r{i:03d}": phone_of(i, 4_000_000) for i in range(top)}
    fallback = {"redis": b.conf / "fallback-redis", "redis_unix": b.conf / "fallback-redis-unix"}
    configs = {
        "files": b.config("redis-files", users, state=b.conf / "state-redis-files"),
        "redis": b.config("redis-tcp", users, state=fallback["redis"],
                          redis=r.module_config()),
        "redis_unix": b.config("redis-unix", users, state=fallback["redis_unix"],
                               redis=r.module_config(url=r.unix_url)),
    }
    services = {side: b.module_service(f"redis-{side}", cfg) for side, cfg in configs.items()}
    servers = {"sandbox": lambda: cpu_seconds(b.sandbox.proc.pid),
               "redis": lambda: threads_cpu_seconds(r.pid)}
    mark = b.syslog.mark()
    rng = random.Random(12)
    out = {}
    for c in levels:
        batches = {side: Batches(b, PAM_OK, servers) for side in services}
        calls = collections.Counter()
        usec = collections.Counter()
        for i in range(warmup + runs):
            order = list(services)
            rng.shuffle(order)
            for side in order:
                n0, u0 = redis_calls(r)
                batches[side].run([b.pam_job(services[side], f"r{k:03d}", phone_of(k, 4_000_000))
                                   for k in range(c)], measured=i >= warmup)
                if i >= warmup:
                    n1, u1 = redis_calls(r)
                    calls[side] += n1 - n0
                    usec[side] += u1 - u0
        res = {}
        for side, x in batches.items():
            res[side] = x.summary()
            res[side]["evalsha_per_login"] = round(calls[side] / x.n, 2) if x.n else None
            res[side]["evalsha_us"] = (round(usec[side] / calls[side], 1) if calls[side]
                                       else None)
            say_batches(f"redis {c:>3} {side:<10}", res[side])
        out[str(c)] = res
    warnings = [l for l in b.syslog.collect(mark, timeout=5)
                if "pam_twilio_sms(" in l and "this login keeps its limits" in l]
    out["fallback"] = {
        "warnings": len(warnings),
        "files": {side: sorted(p.name for p in d.iterdir()) if d.is_dir() else []
                  for side, d in fallback.items()},
    }
    out["global_files"] = sorted(p.name for p in (b.conf / "state-redis-files").iterdir()
                                 if p.name.startswith((".@global", "@global")))
    out["server"] = r.info("server").get("redis_version")
    out["url"] = {"redis": r.url, "redis_unix": r.unix_url}
    out["state_fs"] = fs_type(b.conf)
    return out


# ---- peer

class DuoStandIn:
    """The loopback Duo Auth API stand-in (tests/sandbox/duo_sandbox.py): its process, its
    throw-away CA, its requests and the pam_duo config that points at it."""

    def __init__(self, workdir):
        self.dir = Path(workdir) / "duo"
        self.ikey = "DI" + secrets.token_hex(9).upper()
        self.skey = secrets.token_hex(20)
        self.proc = self.port = None
        self.requests = Tail(self.dir / "requests.jsonl")

    @property
    def ca_file(self):
        return str(self.dir / "ca.pem")

    def start(self, timeout=30.0):
        self.dir.mkdir(parents=True, exist_ok=True)
        err = open(self.dir / "stderr", "wb")
        with err:
            self.proc = subprocess.Popen(
                [sys.executable, str(DUO_SANDBOX), "--dir", str(self.dir), "--host",
                 "127.0.0.1", "--ikey", self.ikey, "--skey", self.skey],
                stdin=subprocess.DEVNULL, stdout=err, stderr=err, start_new_session=True)
        try:
            self.port = wait_for_port_file(self.proc, self.dir / "port", timeout,
                                           "duo_sandbox.py", self.stderr_tail)
        except CaseFailure as e:
            raise BenchError(str(e)) from None

    def stderr_tail(self, n=400):
        try:
            return (self.dir / "stderr").read_text(errors="replace")[-n:].strip() or "-"
        except OSError:
            return "-"

    def stop(self):
        stop_process(self.proc)
        self.requests.close()

    def hold(self, seconds):
        """Every answer waits this long from now on (0: none)."""
        tmp = self.dir / "delay.tmp"
        tmp.write_text(f"{seconds}\n")
        tmp.replace(self.dir / "delay")

    def config(self, path, **more):
        """pam_duo's config, as an administrator writes /etc/duo/pam_duo.conf, root 0600:
        the stand-in's keys, host by name (pam_duo 1.x matches DNS names in the certificate,
        not IP addresses), its CA, and failmode secure, so that a request that fails refuses
        the login instead of letting it through unchecked."""
        write_private(path, f"[duo]\nikey = {self.ikey}\nskey = {self.skey}\n"
                      f"host = localhost:{self.port}\ncafile = {self.ca_file}\n"
                      "failmode = secure\n" + "".join(f"{k} = {v}\n" for k, v in more.items()))
        return path


def find_pam_duo():
    for d in ("/lib/x86_64-linux-gnu/security", "/usr/lib/x86_64-linux-gnu/security",
              "/lib/security", "/usr/lib/security"):
        if (Path(d) / "pam_duo.so").is_file():
            return Path(d) / "pam_duo.so"
    found = sorted(Path("/usr/lib").glob("*/security/pam_duo.so")) + \
        sorted(Path("/lib").glob("*/security/pam_duo.so"))
    return found[0] if found else None


def peer_install_problem():
    """Installs libpam-duo and OpenSSH when missing (no system sshd started); returns what
    is still missing, or None."""
    if find_pam_duo() is None or not SSHD.is_file() or shutil.which("ssh") is None:
        problem = install_quietly(list(PEER_DEBS), "ssh", system_sshds)
        if problem:
            return problem
    if find_pam_duo() is None:
        return "pam_duo.so not found after installing libpam-duo"
    if not SSHD.is_file() or shutil.which("ssh") is None:
        return "sshd or ssh not found after installing openssh-server, openssh-client"
    return None


def system_sshds():
    """The pids of sshd processes that are not the bench's (theirs run from its workdir)."""
    return {pid for pid, cmd in cmdlines()
            if cmd and os.path.basename(cmd[0].split(b" ")[0]).startswith(b"sshd")}


def deb_version(pkg):
    r = subprocess.run(["dpkg-query", "-W", "-f=${Version}", pkg], capture_output=True,
                       text=True)
    return r.stdout.strip() if r.returncode == 0 else "unknown"


def sshd_service_text(module_line):
    """Debian's /etc/pam.d/sshd, with module_line (if any) right after its
    `@include common-auth`: the password first, then the factor (conf/pam.d-sshd.snippet's
    shape)."""
    lines = (PAM_DIR / "sshd").read_text().splitlines()
    at = [i for i, l in enumerate(lines) if l.split() == ["@include", "common-auth"]]
    if len(at) != 1:
        raise BenchError(f"{PAM_DIR / 'sshd'} has {len(at)} '@include common-auth' lines")
    extra = [module_line] if module_line else []
    return "\n".join(lines[:at[0] + 1] + extra + lines[at[0] + 1:]) + "\n"


class PeerSshd:
    """A throw-away sshd on loopback whose PAM service is `service` (OpenSSH takes the PAM
    service name from its program name: a symlink to /usr/sbin/sshd named so), keyboard-
    interactive only, as conf/sshd_config.snippet has it."""

    def __init__(self, workdir, service, user, host_key):
        self.dir = Path(workdir) / service
        self.service = service
        self.user = user
        self.host_key = host_key
        self.proc = self.port = None

    def start(self):
        self.dir.mkdir(mode=0o700)
        link = self.dir / self.service
        link.symlink_to(SSHD)
        for _ in range(3):  # the free port may be taken before sshd binds it
            self.port = free_port()
            config = self.dir / "sshd_config"
            config.write_text(
                "# private sshd of tests/bench/run_bench.py (section peer)\n"
                f"Port {self.port}\nListenAddress 127.0.0.1\nHostKey {self.host_key}\n"
                f"PidFile {self.dir / 'sshd.pid'}\nAllowUsers {self.user}\n"
                "PermitRootLogin no\nUseDNS no\nLogLevel INFO\nUsePAM yes\n"
                "KbdInteractiveAuthentication yes\nPasswordAuthentication no\n"
                "PubkeyAuthentication no\nAuthenticationMethods keyboard-interactive\n"
                "PrintMotd no\nPrintLastLog no\n")
            errlog = self.dir / "sshd.stderr"
            with open(errlog, "wb") as err:
                # an absolute path: sshd re-executes itself for every connection
                self.proc = subprocess.Popen([str(link), "-D", "-e", "-f", str(config)],
                                             stdin=subprocess.DEVNULL, stdout=err, stderr=err,
                                             cwd="/", start_new_session=True)
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:
                if self.proc.poll() is not None:
                    break
                try:
                    with socket.create_connection(("127.0.0.1", self.port), timeout=2) as s:
                        s.settimeout(2)
                        if s.recv(64).startswith(b"SSH-2.0-"):
                            return
                except OSError:
                    pass
                time.sleep(0.05)
            tail = errlog.read_text(errors="replace")[-300:]
            stop_process(self.proc)
            if "Address already in use" not in tail:
                raise BenchError(f"sshd ({self.service}) did not start: {tail.strip()}")
        raise BenchError(f"sshd ({self.service}): port taken three times")

    def stop(self, timeout=5):
        """Its connection processes (each in its own session) end once their client has
        gone: they get that long, then they are killed; then the listener."""
        if self.proc and self.proc.poll() is None:
            deadline = time.monotonic() + timeout
            while any(map(running, descendants(self.proc.pid))) and time.monotonic() < deadline:
                time.sleep(0.05)
            for pid in reversed(descendants(self.proc.pid)):
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
        stop_process(self.proc)


def ssh_job(port, user, phone, home):
    """The real ssh client logging in as user to 127.0.0.1:port, keyboard-interactive only
    (the password, then what the PAM stack asks), then running a trivial command."""
    argv = ["ssh", "-F", "/dev/null", "-T", "-p", str(port), "-l", user,
            "-o", "StrictHostKeyChecking=no", "-o", f"UserKnownHostsFile={home / 'known_hosts'}",
            "-o", "GlobalKnownHostsFile=/dev/null",
            "-o", "PreferredAuthentications=keyboard-interactive",
            "-o", "NumberOfPasswordPrompts=1", "-o", "ConnectTimeout=10",
            "-o", "IdentitiesOnly=yes", "-o", "IdentityAgent=none", "-o", "ControlMaster=no",
            "-o", "LogLevel=ERROR", "127.0.0.1", "--", "echo", PEER_OK.decode()]
    job = Job("tty", argv, phone)
    job.env = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "HOME": str(home), "LANG": "C",
               "TERM": "dumb"}
    return job


def mapped_libraries(pid):
    """The shared objects mapped into the process now (/proc/PID/maps), by path."""
    try:
        text = Path(f"/proc/{pid}/maps").read_text()
    except OSError:
        return []
    return sorted({line.split(None, 5)[5].strip() for line in text.splitlines()
                   if len(line.split(None, 5)) == 6 and ".so" in line.split(None, 5)[5]})


def ldd_closure(path):
    """Every library the object needs, directly or not (ldd), as {soname: path}."""
    r = subprocess.run(["ldd", str(path)], capture_output=True, text=True, timeout=30)
    libs = {}
    for line in r.stdout.splitlines():
        m = re.match(r"^\s*(\S+)\s+=>\s+(\S+)\s+\(", line) or \
            re.match(r"^\s*(/\S+)\s+\(", line)
        if m and "vdso" not in m.group(1):
            libs[Path(m.group(1)).name] = m.group(m.lastindex)
    return libs


def library_facts(path):
    """ldd's closure of a module: count, names, size on disk; and which of the module's
    own direct dependencies bring how many of them."""
    libs = ldd_closure(path)
    size = sum(os.path.getsize(p) for p in libs.values() if os.path.exists(p))
    return {"count": len(libs), "names": sorted(libs), "disk_mib": round(size / MIB, 2),
            "paths": libs}


def peer_memory(b, job, hold, release):
    """Runs job with the server holding its answer; 0.3 s in (long after the request went
    out, before the answer comes) looks at the client's mappings and memory."""
    seen = {}

    def look():
        time.sleep(0.3)
        if job.proc and job.proc.poll() is None:
            seen.update(memory_map(job.proc.pid))
            seen["libraries"] = mapped_libraries(job.proc.pid)

    hold()
    try:
        t = threading.Thread(target=look)
        t.start()
        b.run([job])
        t.join()
    finally:
        release()
    return seen


def section_peer(b, runs, warmup):
    """Debian's pam_duo against a loopback Duo stand-in that answers preauth with "allow"
    (one HTTPS request per login, as this module makes one) next to this module against
    the Twilio sandbox: through pamtester and through a real ssh login to a real sshd
    (password, then the factor), every kind once per round in a new random order; then
    what each loads."""
    at_start = machine()
    problem = peer_install_problem()
    if problem:
        say(f"  peer: skipped: {problem}")
        return {"skipped": problem}
    pam_duo = find_pam_duo()
    duo = DuoStandIn(b.workdir)
    servers, made = [], []
    with b.accounts.lifted():
        remove_test_user(PEER_USER, PEER_GECOS)  # what a killed run left
    try:
        duo.start()
        with b.accounts.lifted():
            password = add_test_user(PEER_USER, PEER_GECOS)
        duo_conf = duo.config(b.conf / "pam_duo.conf")
        mod_conf = b.config("peer", {PEER_USER: PEER_PHONE})
        duo_line = f"auth required {pam_duo} conf={duo_conf}"
        mod_line = f"auth required {MODULE} config={mod_conf}"
        svc = {"duo": b.service("peer-duo", duo_line),
               "module": b.service("peer-module", mod_line)}
        host_key = b.workdir / "ssh_host_ed25519_key"
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "tsms-bench",
                        "-f", str(host_key)], check=True, capture_output=True, timeout=30)
        if not PRIVSEP_DIR.exists():  # systemd's ssh.service makes it (RuntimeDirectory)
            PRIVSEP_DIR.mkdir(mode=0o755)
            made.append(PRIVSEP_DIR)
        sshd = {}
        for side, line in (("duo", duo_line), ("module", mod_line), ("password", None)):
            name = b.service(f"peer-sshd-{side}", "")
            (PAM_DIR / name).write_text(sshd_service_text(line))
            sshd[side] = PeerSshd(b.workdir, name, PEER_USER, host_key)
            servers.append(sshd[side])
            sshd[side].start()
        home = b.workdir / "ssh-home"
        home.mkdir(mode=0o700)
        rss = b.workdir / "rss-peer"
        tty = [(re.compile(r"[Pp]assword: ?$"), password), (PROMPT_RE, None)]
        kinds = {
            "duo": lambda: b.run([b.pam_job(svc["duo"], PEER_USER, None)])[0],
            "module": lambda: b.run([b.pam_job(svc["module"], PEER_USER, PEER_PHONE)])[0],
            "ssh_duo": lambda: b.run_tty(ssh_job(sshd["duo"].port, PEER_USER, None, home), tty),
            "ssh_module": lambda: b.run_tty(ssh_job(sshd["module"].port, PEER_USER,
                                                    PEER_PHONE, home), tty),
            "ssh_password": lambda: b.run_tty(ssh_job(sshd["password"].port, PEER_USER, None,
                                                      home), tty),
            "rss_duo": lambda: b.run([with_rss(b.pam_job(svc["duo"], PEER_USER, None),
                                               rss)])[0],
            "rss_module": lambda: b.run([with_rss(b.pam_job(svc["module"], PEER_USER,
                                                            PEER_PHONE), rss)])[0],
        }
        # each module loaded and its config read, but no request: pam_duo for a user outside
        # its `groups` (it lets the user by before it opens the API handle), the module for
        # an unmapped user with nullok (PAM_IGNORE), then pam_permit
        nodup = duo.config(b.conf / "pam_duo-bypass.conf", groups="root")
        nsvc = {"duo": b.service("peer-duo-norequest", f"auth required {pam_duo} conf={nodup}"),
                "module": b.service("peer-module-norequest",
                                    f"auth required {MODULE} config={mod_conf} nullok\n"
                                    "auth required pam_permit.so")}
        kinds["duo_norequest"] = lambda: b.run([b.pam_job(nsvc["duo"], PEER_USER, None)])[0]
        kinds["module_norequest"] = lambda: b.run([b.pam_job(nsvc["module"], "unmapped",
                                                             None)])[0]
        if b.tmpfs:  # the part of the gap that is the module's state files (fsync)
            tsvc = b.module_service("peer-tmpfs", b.config("peer-tmpfs", {PEER_USER: PEER_PHONE},
                                                           state=b.tmpfs / "state-peer"))
            kinds["module_tmpfs"] = lambda: b.run([b.pam_job(tsvc, PEER_USER, PEER_PHONE)])[0]
        want = {k: PEER_OK if k.startswith("ssh") else PAM_OK for k in kinds}
        series = {k: Series(k) for k in kinds}
        duo_rows, failed = [], []
        mark = b.syslog.mark()
        rng = random.Random(8)
        for i in range(warmup + runs):
            order = list(kinds)
            rng.shuffle(order)
            for k in order:
                try:
                    job = kinds[k]()
                except BenchError as e:  # a client that hung: counted, and the bench goes on
                    b.match([])
                    rows = duo.requests.read()
                    if i >= warmup:
                        series[k].errors += 1
                        if len(failed) < 3:
                            failed.append({"kind": k, "status": "hung", "duo_requests": rows,
                                           "output": str(e)[-400:]})
                    continue
                rows = duo.requests.read()
                if k == "duo_norequest":
                    if rows:
                        job.status = -1  # it should have let the user by without asking
                elif "duo" in k:
                    # one signed preauth, answered allow: else the login did not go through
                    # the peer as meant (failmode secure makes a failed one a refusal)
                    good = (len(rows) == 1 and rows[0]["status"] == 200 and
                            rows[0]["signature_ok"] and rows[0]["form"].get("user") == [PEER_USER])
                    if rows:
                        job.request_time = rows[0]["time"]
                    if not good:
                        job.status = job.status or -1
                    if i >= warmup:
                        duo_rows.extend(rows)
                elif rows:
                    job.status = -1  # a request to Duo from a login that has no pam_duo
                if i >= warmup:
                    series[k].add(job, want[k])
                    if not job.ok(want[k]) and len(failed) < 3:
                        failed.append({"kind": k, "status": job.status, "duo_requests": rows,
                                       "output": job.out.decode("utf-8", "replace")[-400:]})
        logged = collections.Counter()
        for line in b.syslog.collect(mark, timeout=5):
            m = re.search(r"(Successful|Skipped|Failed|Aborted|Failsafe|Failsecure|Error in) "
                          r"Duo login", line)
            if m:
                logged[m.group(1)] += 1
        out = {}
        for k in ("duo", "module", "module_tmpfs", "duo_norequest", "module_norequest",
                  "ssh_duo", "ssh_module", "ssh_password"):
            if k not in series:
                continue
            out[k] = series[k].summary()
            say(f"  peer {k:<13}: first request {fmt(out[k]['dispatch_ms'])} ms, wall "
                f"{fmt(out[k]['wall_ms'])} ms, client CPU {fmt(out[k]['cpu_ms'])} ms, "
                f"errors {out[k]['errors']}")
        for k in ("duo", "module"):
            r = series["rss_" + k].summary()
            out[k].update({f: r[f] for f in ("rss_kib", "rss_min_kib", "rss_max_kib")})
            out[k]["rss_errors"] = r["errors"]
        # what each has loaded while its request is out (the server holds its answer)
        out["duo_memory"] = peer_memory(
            b, b.pam_job(svc["duo"], PEER_USER, None), lambda: duo.hold(0.6),
            lambda: duo.hold(0))
        duo.requests.read()
        out["module_memory"] = peer_memory(
            b, b.pam_job(svc["module"], PEER_USER, PEER_PHONE),
            lambda: b.sandbox.set_scenario("slow:0.6"), lambda: b.sandbox.set_scenario("ok"))
        out["duo_libraries"] = library_facts(pam_duo)
        out["module_libraries"] = library_facts(MODULE)
        for name in ("libcurl.so.4", "libldap-2.5.so.0", "libhiredis.so.0.14"):
            path = out["module_libraries"]["paths"].get(name)
            if path:
                out["module_libraries"].setdefault("via", {})[name] = sorted(ldd_closure(path))
        out["duo_requests"] = {
            "n": len(duo_rows), "paths": sorted({r["path"] for r in duo_rows}),
            "user_agents": sorted({r["user_agent"] or "-" for r in duo_rows}),
            "fields": sorted({f for r in duo_rows for f in r["form"]}),
            "signed": sum(1 for r in duo_rows if r["signature_ok"]),
        }
        asking = [k for k in kinds if "duo" in k and k != "duo_norequest"]
        out["duo_requests"]["logins"] = sum(series[k].errors + len(series[k].wall) +
                                            len(series[k].rss) for k in asking)
        out["duo_logged"] = dict(logged)
        out["duo_logged_logins"] = (warmup + runs) * len(asking)
        out["failed"] = failed
        out["pam_duo"] = {"path": str(pam_duo),
                          "package": f"libpam-duo {deb_version('libpam-duo')}",
                          "sha256": hashlib.sha256(pam_duo.read_bytes()).hexdigest()[:16]}
        out["openssh"] = deb_version("openssh-server")
        out["runs"], out["warmup"] = runs, warmup
        out["machine"] = {k: v for k, v in at_start.items()
                          if k in ("date", "loadavg", "module")}
        return out
    finally:
        for s in servers:
            s.stop()
        duo.stop()
        with b.accounts.lifted():
            remove_test_user(PEER_USER, PEER_GECOS)
        for d in made:
            if d.is_dir() and not any(d.iterdir()):
                d.rmdir()


def backup_hashes_checked(size, which):
    """How many hashes the module checks for a login of BACKUP_KINDS: in file order up to
    the first match, every one for a wrong code, none for the SMS code."""
    if size is None:
        return 0
    return size if which == "wrong" else which + 1


def section_backup(b, runs, warmup):
    """Logins of one user with backupCodesFile: the SMS code typed, backup codes whose hash
    the module checks 1st, 10th and 20th, a wrong one against 20 hashes and, with the
    sandbox answering 503, one at the `SMS unavailable; backup code:` prompt; every kind
    once per round in a new random order, each backup login with a fresh set made by the
    admin command just before it (outside the timed run); (a), (b) and (d) also under
    /usr/bin/time for their peak RSS."""
    at_start = machine()
    if not TOOL.is_file():
        return {"skipped": f"{TOOL} not built (make)"}
    codes_file = b.conf / "backup-codes"
    users = {BACKUP_USER: BACKUP_PHONE}
    state = b.conf / "state-backup"
    # one wrong answer ends the login (a second prompt would read EOF); never a lockout
    common = {"backupCodesFile": str(codes_file), "maxAttempts": 1, "lockoutThreshold": 1000}
    cfg = b.config("backup", users, state=state, **common)
    # Twilio down: one request, no retry backoff in the figure (the default maxRetries 2
    # waits 200-399 and 400-799 ms before the backup prompt)
    down_cfg = b.config("backup-down", users, state=state, maxRetries=0, **common)
    svc = {False: b.module_service("backup", cfg), True: b.module_service("backup-down",
                                                                           down_cfg)}
    kinds = {k: (size, which, down) for k, _, size, which, down in BACKUP_KINDS}
    made = collections.defaultdict(list)  # codes per set -> seconds the command took

    def new_set(n):
        t = time.monotonic()
        p = subprocess.run([str(TOOL), "--config", str(cfg), "backup-codes", BACKUP_USER,
                            "--count", str(n)], capture_output=True, text=True, timeout=60,
                           stdin=subprocess.DEVNULL)
        made[n].append(time.monotonic() - t)
        codes = p.stdout.split()
        if p.returncode != 0 or len(codes) != n:
            raise BenchError(f"twilio-sms-otp backup-codes {BACKUP_USER} --count {n}: exit "
                             f"{p.returncode}, {len(codes)} codes: {p.stderr.strip()[:300]}")
        return codes

    def not_in(codes):
        while True:
            c = "".join(secrets.choice(BACKUP_SYMBOLS) for _ in range(8))
            c = f"{c[:4]}-{c[4:]}"
            if c not in codes:
                return c

    def login(key, rss=None):
        """One timed login of kind key; returns the job and what went wrong (None: as
        expected: the result, method and reason of its outcome line, its SMS and request)."""
        size, which, down = kinds[key]
        job = b.pam_job(svc[down], BACKUP_USER, BACKUP_PHONE)
        if size:
            codes = new_set(size)
            job.answer = not_in(codes) if which == "wrong" else codes[which]
        if rss:
            with_rss(job, rss)
        if down:
            b.sandbox.set_scenario("503")
        mark = b.syslog.mark()
        try:
            b.run([job])
        finally:
            if down:
                b.sandbox.set_scenario("ok")
        outcomes = [m.groups() for l in b.syslog.collect(mark, timeout=5)
                    if "pam_twilio_sms(" in l and (m := OUTCOME_RE.search(l.strip()))]
        if which == "wrong":
            want = ("sms", "PAM_MAXTRIES", "wrong code (1 of 1 attempts)")
        elif size:
            want = ("backup-code", "PAM_SUCCESS", f"backup code accepted, {size - 1} left")
        else:
            want = ("sms", "PAM_SUCCESS", "code accepted")
        got = outcomes[0] if len(outcomes) == 1 else None
        sms, status = (0, 503) if down else (1, 201)
        problems = []
        if not got or got[:2] != want[:2] or not got[2].endswith(want[2]) or \
                down != got[2].startswith("SMS unavailable ("):
            problems.append(f"outcome lines {outcomes!r}, want {want!r}")
        if (job.status == 0) != (want[1] == "PAM_SUCCESS") or \
                (want[1] == "PAM_SUCCESS" and PAM_OK not in job.out):
            problems.append(f"pamtester exit {job.status}")
        if job.sms != sms or job.request_status != status:
            problems.append(f"{job.sms} SMS, request status {job.request_status}, want "
                            f"{sms} and {status}")
        return job, "; ".join(problems) or None

    rss = b.workdir / "rss-backup"
    order_of = list(kinds) + [f"rss_{k}" for k in BACKUP_RSS]
    series = {k: Series(k) for k in order_of}
    failed = []
    rng = random.Random(9)
    b.sandbox.set_scenario("ok")
    for i in range(warmup + runs):
        order = list(order_of)
        rng.shuffle(order)
        for k in order:
            job, problem = login(k.removeprefix("rss_"), rss if k.startswith("rss_") else None)
            if i < warmup:
                continue
            series[k].add(job, None, ok=problem is None)
            if problem and len(failed) < 3:
                failed.append({"kind": k, "problem": problem,
                               "output": job.out.decode("utf-8", "replace")[-400:]})
    out = {}
    for key, label, size, which, down in BACKUP_KINDS:
        out[key] = series[key].summary()
        out[key].update({"label": label, "codes": size or 0,
                         "hashes_checked": backup_hashes_checked(size, which),
                         "twilio": "503" if down else "201"})
        say(f"  backup {key:<23}: wall {fmt(out[key]['wall_ms'])} ms (p90 "
            f"{fmt(out[key]['wall_p90_ms'])}), client CPU {fmt(out[key]['cpu_ms'])} ms, "
            f"errors {out[key]['errors']}")
    for key in BACKUP_RSS:
        r = series["rss_" + key].summary()
        out[key].update({f: r[f] for f in ("rss_kib", "rss_min_kib", "rss_max_kib")})
        out[key]["rss_errors"] = r["errors"]
        say(f"  backup {key:<23}: peak RSS {r['rss_kib'] / 1024:.2f} MiB")
    m = re.search(r"\$argon2id\$v=(\d+)\$(m=\d+,t=\d+,p=\d+)\$",
                  codes_file.read_text() if codes_file.is_file() else "")
    out["argon2id"] = f"v={m.group(1)} {m.group(2)}" if m else None
    out["making_a_set_ms"] = {str(n): ms(median(v)) for n, v in sorted(made.items())}
    out["config"] = {"maxAttempts": 1, "lockoutThreshold": 1000, "maxRetries_503": 0}
    out["failed"] = failed
    out["runs"], out["warmup"] = runs, warmup
    out["machine"] = {k: v for k, v in at_start.items() if k in ("date", "loadavg", "module")}
    return out


# ---- grace

def section_grace(b, runs, warmup):
    """Logins let in by an address grace against SMS logins, per backend (the files, Redis
    with graceScope host, Redis with graceScope fleet), and the files' SMS login with graces
    off: every kind once per round in a new random order. The grace user's grace is opened
    by one SMS login from GRACE_ADDRESS on each side before the rounds; the SMS user logs
    in from an address of its own each round (198.51.100.N), so that every SMS login is a
    first one from its address and opens a grace, as it does with gracePeriodSeconds set."""
    at_start = machine()
    users = {GRACE_USER: GRACE_PHONE, GRACE_SMS_USER: GRACE_SMS_PHONE}
    problem = None
    if b.redis is None:
        problem = b.start_redis()
    sides = [side for side in GRACE_SIDES if not side[3] or problem is None]
    svc = {}
    for key, _, over, redis in sides:
        extra = {"redis": b.redis.module_config()} if redis else {}
        cfg = b.config(f"grace-{key}", users, state=b.conf / f"state-grace-{key}",
                       gracePeriodSeconds=GRACE_SECONDS, **extra, **over)
        svc[key] = b.module_service(f"grace-{key}", cfg)
    svc["files_off"] = b.module_service("grace-off", b.config(
        "grace-off", users, state=b.conf / "state-grace-off"))

    def job_of(service, user, phone, rhost):
        return Job("pam", ["pamtester", "-I", f"rhost={rhost}", service, user, "authenticate"],
                   phone)

    def login(service, user, phone, rhost, want_method):
        """One login; returns the job and what went wrong (None: the outcome line's method
        and result, the SMS and the request as expected)."""
        job = job_of(service, user, phone, rhost)
        mark = b.syslog.mark()
        b.run([job])
        outcomes = [m.groups() for l in b.syslog.collect(mark, timeout=5)
                    if "pam_twilio_sms(" in l and (m := OUTCOME_RE.search(l.strip()))]
        sms, status = (1, 201) if want_method == "sms" else (0, 0)
        problems = []
        if len(outcomes) != 1 or outcomes[0][:2] != (want_method, "PAM_SUCCESS"):
            problems.append(f"outcome lines {outcomes!r}, want method={want_method} "
                            f"result=PAM_SUCCESS")
        if job.status != 0 or PAM_OK not in job.out:
            problems.append(f"pamtester exit {job.status}")
        if job.sms != sms or job.request_status != status:
            problems.append(f"{job.sms} SMS, request status {job.request_status}, want "
                            f"{sms} and {status}")
        return job, "; ".join(problems) or None

    # the grace each side's grace logins use, opened by a code
    for key, *_ in sides:
        _, bad = login(svc[key], GRACE_USER, GRACE_PHONE, GRACE_ADDRESS, "sms")
        if bad:
            raise BenchError(f"grace {key}: the SMS login that opens the grace: {bad}")
    kinds = {"files_off_sms": (svc["files_off"], "sms")}
    for key, *_ in sides:
        kinds[f"{key}_sms"] = (svc[key], "sms")
        kinds[f"{key}_grace"] = (svc[key], "grace-address")
    series = {k: Series(k) for k in kinds}
    failed = []
    rng = random.Random(22)
    for i in range(warmup + runs):
        order = list(kinds)
        rng.shuffle(order)
        for k in order:
            service, method = kinds[k]
            if method == "sms":
                job, problem_ = login(service, GRACE_SMS_USER, GRACE_SMS_PHONE,
                                      f"198.51.100.{i % 254 + 1}", "sms")
            else:
                job, problem_ = login(service, GRACE_USER, GRACE_PHONE, GRACE_ADDRESS, method)
            if i < warmup:
                continue
            series[k].add(job, None, ok=problem_ is None)
            if problem_ and len(failed) < 3:
                failed.append({"kind": k, "problem": problem_,
                               "output": job.out.decode("utf-8", "replace")[-400:]})
    out = {"sides": [[key, label] for key, label, *_ in sides], "kinds": {}}
    for k in kinds:
        out["kinds"][k] = series[k].summary()
        x = out["kinds"][k]
        say(f"  grace {k:<18}: wall {fmt(x['wall_ms'])} ms (p10-p90 {fmt(x['wall_p10_ms'])}-"
            f"{fmt(x['wall_p90_ms'])}), client CPU {fmt(x['cpu_ms'])} ms, errors {x['errors']}")
    if problem:
        out["redis_skipped"] = problem
    elif b.redis is not None:
        out["redis_server"] = b.redis.info("server").get("redis_version")
    out["config"] = {"gracePeriodSeconds": GRACE_SECONDS, "address": GRACE_ADDRESS}
    out["failed"] = failed
    out["runs"], out["warmup"] = runs, warmup
    out["state_fs"] = fs_type(b.conf)
    out["machine"] = {k: v for k, v in at_start.items() if k in ("date", "loadavg", "module")}
    return out


# ---- callgrind

class Callgrind:
    """Self and inclusive instruction counts from a callgrind.out file."""

    KEY = re.compile(r"^(ob|fl|fi|fe|fn|cob|cfi|cfl|cfn)=(?:\((\d+)\))?\s*(.*)$")
    SPACE = {"ob": "ob", "cob": "ob", "fn": "fn", "cfn": "fn"}

    def __init__(self, path):
        names = {"ob": {}, "fl": {}, "fn": {}}
        self.self_by_obj = collections.Counter()
        self.self_by_fn = collections.Counter()
        self.incl_by_fn = collections.Counter()
        self.total = 0
        ob = fn = "?"
        after_calls = False
        with open(path, encoding="utf-8", errors="replace") as f:
            for line in f:
                line = line.rstrip("\n")
                if not line:
                    continue
                m = self.KEY.match(line)
                if m:
                    key, ident, name = m.groups()
                    space = names[self.SPACE.get(key, "fl")]
                    if ident is not None:
                        if name:
                            space[ident] = name
                        name = space.get(ident, "?")
                    if key == "ob":
                        ob = name
                    elif key == "fn":
                        fn = name
                    continue
                if line.startswith("calls="):
                    after_calls = True
                    continue
                if line.startswith(("totals:", "summary:")):
                    self.total = max(self.total, int(line.split()[1]))
                    continue
                c = line[0]
                if not (c.isdigit() or c in "+-*"):
                    continue
                cost = int(line.split()[-1]) if len(line.split()) > 1 else 0
                if after_calls:
                    self.incl_by_fn[(ob, fn)] += cost
                    after_calls = False
                else:
                    self.self_by_obj[ob] += cost
                    self.self_by_fn[(ob, fn)] += cost
                    self.incl_by_fn[(ob, fn)] += cost

    def inclusive(self, fn_name):
        return sum(v for (o, f), v in self.incl_by_fn.items() if f == fn_name)


OBJECT_GROUPS = (
    ("pam_twilio_sms.so", r"pam_twilio_sms\.so"),
    ("libcurl", r"libcurl"),
    ("libssl", r"libssl"),
    ("libcrypto", r"libcrypto"),
    ("libcjson", r"libcjson"),
    ("libsodium", r"libsodium"),
    ("libc", r"/libc\.so"),
    ("ld.so", r"ld-linux|ld\.so"),
    ("libpam", r"libpam"),
    ("pamtester / curl", r"/pamtester$|/curl$"),
)
# lib/http.c initialises libcurl with curl_global_init_mem (its wiping allocator)
CURL_GLOBAL = ("curl_global_init_mem", "curl_global_init", "curl_global_cleanup")
PHASES = (
    ("pam_sm_authenticate (all)", ("pam_sm_authenticate",)),
    ("config load", ("tsms_config_load",)),
    ("the account's name and its number", ("tsms_account_name", "tsms_lookup_account")),
    ("state files (limits, lockout)", ("tsms_state_reserve_send", "tsms_state_record_failure",
                                       "tsms_state_record_success")),
    ("curl/OpenSSL global init+cleanup", CURL_GLOBAL),
    ("HTTPS request (curl_easy_perform)", ("curl_easy_perform",)),
    ("connection teardown (curl_easy_cleanup)", ("curl_easy_cleanup",)),
    ("template, OTP, prompt, logging", ("tsms_template_render", "tsms_otp_generate",
                                        "tsms_otp_matches", "pam_prompt", "pam_syslog")),
)


def group_objects(cg):
    out = collections.Counter()
    for obj, cost in cg.self_by_obj.items():
        for name, pattern in OBJECT_GROUPS:
            if re.search(pattern, obj):
                out[name] += cost
                break
        else:
            out["other"] += cost
    return out


def section_callgrind(b, runs):
    if shutil.which("valgrind") is None:
        return {"skipped": "valgrind not installed"}
    svc = b.module_service("callgrind", b.config("callgrind", latency_users(), timeoutSeconds=60))
    results = {"module": [], "curl": []}
    for r in range(runs):
        for side in ("module", "curl"):
            out = b.workdir / f"callgrind.{side}.{r}"
            prefix = ["valgrind", "--tool=callgrind", "-q", f"--callgrind-out-file={out}"]
            job = (b.pam_job(svc, BENCH_USER, BENCH_PHONE, prefix) if side == "module"
                   else b.curl_job(BENCH_PHONE, prefix))
            b.run([job], timeout=300)
            if not job.ok(PAM_OK if side == "module" else CURL_OK):
                raise BenchError(f"{side} under callgrind failed: {job.out[-300:]!r}")
            cg = Callgrind(out)
            keep(b, out)
            entry = {"total": cg.total, "objects": dict(group_objects(cg))}
            if side == "module":
                entry["phases"] = {name: sum(cg.inclusive(f) for f in fns)
                                   for name, fns in PHASES}
                http = sum(cg.inclusive(f) for f in CURL_GLOBAL + (
                    "curl_easy_perform", "curl_easy_cleanup"))
                entry["module_work"] = entry["phases"]["pam_sm_authenticate (all)"] - http
                # libpam loads the module in pam_start: dlopen(RTLD_NOW) of it and its
                # libraries; curl's binary binds the same libraries at exec (_dl_start)
                entry["loading"] = cg.inclusive("pam_start")
            else:
                entry["loading"] = cg.inclusive("_dl_start")
            results[side].append(entry)
    # the run with the median total stands for all (counts barely move between runs)
    pick = {side: sorted(rs, key=lambda e: e["total"])[len(rs) // 2]
            for side, rs in results.items()}
    pick["runs"] = runs
    pick["module_totals"] = [e["total"] for e in results["module"]]
    pick["scale"] = {}
    for name, scale_svc in b.scale_cases:  # one run each: the lookups are deterministic
        out = b.workdir / f"callgrind.{name}"
        job = b.pam_job(scale_svc, SCALE_USER, SCALE_PHONE,
                        ["valgrind", "--tool=callgrind", "-q", f"--callgrind-out-file={out}"])
        b.run([job], timeout=600)
        if not job.ok(PAM_OK):
            raise BenchError(f"{name} under callgrind failed: {job.out[-300:]!r}")
        cg = Callgrind(out)
        keep(b, out)
        pick["scale"][name] = {"total": cg.total,
                               "config_load": cg.inclusive("tsms_config_load"),
                               "user_lookup": cg.inclusive("tsms_lookup")}
    return pick


def keep(b, path):
    """Copies a callgrind file to --keep-callgrind DIR, for callgrind_annotate."""
    if b.args.keep_callgrind:
        Path(b.args.keep_callgrind).mkdir(parents=True, exist_ok=True)
        shutil.copy(path, b.args.keep_callgrind)


# --------------------------------------------------------------------------- report

def machine():
    model = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass

    def version(cmd):
        try:
            r = subprocess.run(cmd, capture_output=True, text=True, timeout=10)
            return (r.stdout or r.stderr).splitlines()[0].strip()
        except (OSError, IndexError, subprocess.TimeoutExpired):
            return "not found"

    return {
        "nproc": os.cpu_count(),
        "cpu": model,
        "kernel": platform.release(),
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "curl": version(["curl", "--version"]),
        "python": platform.python_version(),
        "state_fs": fs_type(Path(tempfile.gettempdir())),
        "loadavg": round(os.getloadavg()[0], 2),  # other work on the machine at the start
        "module": module_identity(),
    }


def module_identity():
    """The measured build: its sha256 (first 16 hex digits) and modification time."""
    st = MODULE.stat()
    built = datetime.datetime.fromtimestamp(st.st_mtime, datetime.timezone.utc)
    return {"path": str(MODULE), "sha256": hashlib.sha256(MODULE.read_bytes()).hexdigest()[:16],
            "built": built.strftime("%Y-%m-%d %H:%M UTC")}


def fs_type(path):
    try:
        r = subprocess.run(["findmnt", "-n", "-o", "FSTYPE", "--target", str(path)],
                           capture_output=True,
                           text=True, timeout=5)
        return r.stdout.strip() or "unknown"
    except OSError:
        return "unknown"


def verdict(ok):
    return "met" if ok else "MISSED"


def fmt(x, unit=""):
    if x is None or (isinstance(x, float) and x != x):
        return "-"
    return f"{x:,.1f}{unit}" if isinstance(x, float) else f"{x:,}{unit}"


def report(res, args):
    """The results as Markdown tables (printed and written to results.md)."""
    m = res["machine"]
    L = [f"Measured {m['date']} on {m['nproc']} × {m['cpu']}, Linux {m['kernel']}, "
         f"{m['curl'].split(' (')[0]}, Python {m['python']} (sandbox); stateDir in "
         f"{tempfile.gettempdir()} ({m['state_fs']}); {args.runs} runs after {args.warmup} "
         f"warm-up runs, medians; load average {m.get('loadavg', '-')} at the start. Module: "
         f"{m['module']['path'].rsplit('/', 1)[-1]} built {m['module']['built']}, sha256 "
         f"{m['module']['sha256']}…. Login names: "
         f"{m.get('accounts') or 'accounts in /etc/passwd, as a real login'}.", ""]
    lat = res.get("latency")
    if lat:
        mod, curl = lat["module"], lat["curl"]
        rd = mod["dispatch_ms"] / curl["dispatch_ms"]
        rw = mod["wall_ms"] / curl["wall_ms"]
        res["targets"]["time to dispatch, module / curl <= 1.10"] = (round(rd, 3),
                                                                       rd <= TARGET_RATIO)
        res["targets"]["full authentication, module / curl <= 1.10"] = (round(rw, 3),
                                                                          rw <= TARGET_RATIO)
        res["targets"][f"time to dispatch, module / curl <= {TARGET_CURL_DISPATCH:.2f}"] = (
            round(rd, 3), rd <= TARGET_CURL_DISPATCH)
        L += ["### 1. Latency: module vs the curl floor (ms)", "",
              "| client | time to dispatch | p10–p90 | full wall time | p10–p90 | client CPU "
              "| errors |",
              "| --- | ---: | ---: | ---: | ---: | ---: | ---: |"]
        rows = [("curl (floor)", curl), ("pamtester + module", mod)]
        if "baseline" in lat:
            rows.append((f"pamtester + baseline module ({args.baseline})", lat["baseline"]))
        if "module_tmpfs" in lat:
            rows.append(("pamtester + module, stateDir on tmpfs", lat["module_tmpfs"]))
        if "module_system_cas" in lat:
            rows.append(("curl, the system's CAs (its default: the bundle)",
                         lat["curl_system_cas"]))
            rows.append(("pamtester + module, no caFile (the system's hashed CA directory)",
                         lat["module_system_cas"]))
        if "baseline_system_cas" in lat:
            rows.append(("pamtester + baseline module, no caFile", lat["baseline_system_cas"]))
        rows.append(("pamtester + pam_permit (no request)", lat["permit"]))
        rows.append(("pamtester + module, unmapped user with nullok (loads, reads the "
                     "config; no request)", lat["module_nosend"]))
        for name, s in rows:
            d = s["dispatch_ms"]
            spread = ("-" if d is None else
                      f"{fmt(s['dispatch_p10_ms'])}–{fmt(s['dispatch_p90_ms'])}")
            L.append(f"| {name} | {fmt(d)} | {spread} | {fmt(s['wall_ms'])} | "
                     f"{fmt(s['wall_p10_ms'])}–{fmt(s['wall_p90_ms'])} | {fmt(s['cpu_ms'])} | "
                     f"{s['errors']} |")
        L += ["", f"Module / curl: time to dispatch **{rd:.2f}**, full authentication "
              f"**{rw:.2f}** (target ≤ {TARGET_RATIO:.2f}: {verdict(rd <= TARGET_RATIO)}, "
              f"{verdict(rw <= TARGET_RATIO)}). Same form fields in both requests "
              f"({', '.join(lat['form_fields'])}; same To, MessagingServiceSid and body "
              f"length): {'yes' if lat['identical_form'] else 'NO'}."]
        if "baseline" in lat:
            base = lat["baseline"]
            L += ["", f"Module / baseline module: time to dispatch "
                  f"**{mod['dispatch_ms'] / base['dispatch_ms']:.3f}**, full authentication "
                  f"**{mod['wall_ms'] / base['wall_ms']:.3f}**, client CPU "
                  f"**{mod['cpu_ms'] / base['cpu_ms']:.3f}**."]
        if "module_system_cas" in lat:
            sm, sc = lat["module_system_cas"], lat["curl_system_cas"]
            L += ["", f"As installed, with the system's CAs ({m.get('system_cas', '?')} "
                  f"certificates in Debian's bundle, the sandbox's among them) instead of the "
                  f"one-certificate caFile: module / curl at dispatch **"
                  f"{sm['dispatch_ms'] / sc['dispatch_ms']:.2f}**, full authentication **"
                  f"{sm['wall_ms'] / sc['wall_ms']:.2f}**; without a CA file of its own the "
                  f"module takes {sm['wall_ms'] - mod['wall_ms']:+.1f} ms over its caFile row, "
                  f"curl {sc['wall_ms'] - curl['wall_ms']:+.1f} ms over its --cacert row."]
            if "baseline_system_cas" in lat:
                sb = lat["baseline_system_cas"]
                more = (sm["rss_kib"] - sb["rss_kib"]) / 1024
                L[-1] += (f" The baseline module without caFile: {sb['wall_ms']:.1f} ms, the "
                          f"module / baseline **{sm['wall_ms'] / sb['wall_ms']:.3f}**; peak RSS "
                          f"{sm['rss_kib'] / 1024:.2f} MiB against the baseline's "
                          f"{sb['rss_kib'] / 1024:.2f} MiB (**{more:+.2f} MiB**).")
        if "module_tmpfs" in lat:
            t = lat["module_tmpfs"]
            gap = mod["dispatch_ms"] - curl["dispatch_ms"]
            fsync = mod["dispatch_ms"] - t["dispatch_ms"]
            L += ["", f"With the stateDir on tmpfs (state files without fsync cost): dispatch "
                  f"**{t['dispatch_ms'] / curl['dispatch_ms']:.2f}**, full authentication "
                  f"**{t['wall_ms'] / curl['wall_ms']:.2f}** × curl. Of the "
                  f"{gap:.1f} ms the module is behind curl at dispatch, {fsync:.1f} ms go to the "
                  f"state files on {m['state_fs']} (module minus module with tmpfs stateDir) and "
                  f"{gap - fsync:.1f} ms to the rest, against {lat['permit']['wall_ms']:.1f} ms "
                  f"for a whole pamtester + pam_permit run."]
        L.append("")
        rss_mod, rss_permit = mod["rss_kib"], lat["permit"]["rss_kib"]
        extra = rss_mod - rss_permit
        res["targets"]["peak RSS, module - pam_permit <= 3 MiB"] = (extra, extra <= TARGET_RSS_KIB)
        L += ["### 2. Peak RSS (/usr/bin/time %M, median)", "",
              "| client | peak RSS |", "| --- | ---: |",
              f"| pamtester + pam_permit.so | {rss_permit / 1024:.2f} MiB |",
              f"| pamtester + pam_twilio_sms.so | {rss_mod / 1024:.2f} MiB |",
              f"| curl (for reference) | {curl['rss_kib'] / 1024:.2f} MiB |", "",
              f"The module adds **{extra / 1024:.2f} MiB** (target ≤ 3 MiB: "
              f"{verdict(extra <= TARGET_RSS_KIB)})."]
        if "baseline" in lat:
            base, bsnap = lat["baseline"], lat.get("baseline_memory_at_prompt") or {}
            msnap = lat.get("module_memory_at_prompt") or {}
            more = rss_mod - base["rss_kib"]
            L += ["", f"Against the baseline module ({args.baseline}): peak RSS "
                  f"{base['rss_kib'] / 1024:.2f} MiB, the module **{more / 1024:+.2f} MiB**"]
            if bsnap.get("groups") and msnap.get("groups"):
                dirty = msnap["private_dirty_kib"] - bsnap["private_dirty_kib"]
                L[-1] += (f"; private dirty at the prompt {bsnap['private_dirty_kib'] / 1024:.2f}"
                          f" MiB, the module **{dirty / 1024:+.2f} MiB**")
            L[-1] += "."
        snap = lat.get("module_memory_at_prompt") or {}
        if snap.get("groups"):
            L += ["", f"Where pamtester + module's RSS is at the prompt (after the request; "
                  f"/proc/PID/smaps): {snap['rss_kib'] / 1024:.2f} MiB resident, of which "
                  f"only {snap['pss_kib'] / 1024:.2f} MiB proportional (PSS: library pages are "
                  f"shared with every other process that maps them).", "",
                  "| mappings | RSS |", "| --- | ---: |"]
            for g, v in sorted(snap["groups"].items(), key=lambda kv: -kv[1]):
                L.append(f"| {g} | {v / 1024:.2f} MiB |")
            L += ["", f"Private dirty memory (what the process alone costs): "
                  f"{snap['private_dirty_kib'] / 1024:.2f} MiB. Largest files: " +
                  ", ".join(f"{k} {v / 1024:.2f}" for k, v in snap["top_files"].items()) +
                  " (MiB)."]
        L.append("")
    sc = res.get("scale")
    if sc:
        L += ["### 3. Scale with mapped users (full authentication, ms)", "",
              "| users | where | file size | wall time | p10–p90 | vs 10 users in the same place "
              "| errors |",
              "| ---: | --- | ---: | ---: | ---: | ---: | ---: |"]
        for name, s in sc.items():
            base = sc.get(re.sub(r"-\d+$", "-10", name))
            rel = s["wall_ms"] / base["wall_ms"] if base else float("nan")
            L.append(f"| {s['users']:,} | {s['where']} | {s['bytes'] / MIB:.2f} MiB | "
                     f"{fmt(s['wall_ms'])} | {fmt(s['wall_p10_ms'])}–{fmt(s['wall_p90_ms'])} | "
                     f"{(rel - 1) * 100:+.1f} % | {s['errors']} |")
        if "file-100000" in sc and "file-10" in sc:
            r = sc["file-100000"]["wall_ms"] / sc["file-10"]["wall_ms"]
            res["targets"]["usersFile: 100 000 users <= 10 users + 5 %"] = (round(r, 3),
                                                                          r <= TARGET_SCALE)
            L += ["", f"100 000 users in the users file: **{(r - 1) * 100:+.1f} %** wall time "
                  f"against 10 (target ≤ +5 %: {verdict(r <= TARGET_SCALE)})."]
            if "lookup-file-100000" in sc and "lookup-file-10" in sc:
                d = sc["lookup-file-100000"]["wall_ms"] - sc["lookup-file-10"]["wall_ms"]
                L += [f"The lookup alone (unmapped user with nullok: module loaded, config read, "
                      f"whole file scanned, no request) takes {d:+.1f} ms with 100 000 users "
                      f"than with 10, i.e. {d / sc['file-10']['wall_ms'] * 100:+.1f} % of a "
                      f"full authentication with 10 users."]
        cgs = (res.get("callgrind") or {}).get("scale")
        if cgs:
            L += ["", "Instructions (callgrind, one run each) of the config load and the user "
                  "lookup:", "", "| case | config load | user lookup | whole pamtester |",
                  "| --- | ---: | ---: | ---: |"]
            for name, e in cgs.items():
                L.append(f"| {name} | {e['config_load']:,} | {e['user_lookup']:,} | "
                         f"{e['total']:,} |")
        L.append("")
    cc = res.get("concurrency")
    if cc:
        L += ["### 4. Concurrency (batches of simultaneous clients, distinct users)", "",
              "| clients | side | per second | p50 | p99 | client CPU each | sandbox CPU | "
              "errors | lost SMS | duplicate SMS | SYNs dropped |",
              "| ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
        for c, r in cc.items():
            for side, label in (("curl", "curl"), ("module", "module"),
                                ("module_tmpfs", "module, tmpfs stateDir")):
                if side not in r:
                    continue
                x = r[side]
                L.append(f"| {c} | {label} | {x['throughput']:.1f} | {x['p50_ms']:.1f} ms | "
                         f"{x['p99_ms']:.1f} ms | {x['client_cpu_ms']:.1f} ms | "
                         f"{x['sandbox_cpu_pct']} % | {x['errors']} | {x['lost_sms']} | "
                         f"{x['duplicate_sms']} | {x['listen_overflows']} |")
        L += ["", "Sandbox CPU is the share of one core the sandbox process used while a "
              "batch ran (one Python process: its GIL caps it near 100 %). SYNs dropped: "
              "the kernel's ListenOverflows counter over the batches (a full listen queue "
              "makes a client wait a second before it tries again).", ""]
    cg = res.get("callgrind")
    if cg and "module" in cg:
        mo, cu = cg["module"], cg["curl"]
        L += ["### 5. Instructions per authentication (callgrind, self cost by object)", "",
              "| object | pamtester + module | curl |", "| --- | ---: | ---: |"]
        for n in [n for n, _ in OBJECT_GROUPS] + ["other"]:
            a, c = mo["objects"].get(n, 0), cu["objects"].get(n, 0)
            if a or c:
                L.append(f"| {n} | {a:,} | {c:,} |")
        L.append(f"| **total** | **{mo['total']:,}** | **{cu['total']:,}** |")
        L += ["", "| phase (inclusive) | instructions |", "| --- | ---: |",
              f"| loading: pam_start (dlopen RTLD_NOW of the module and its libraries) | "
              f"{mo['loading']:,} |",
              f"| curl's loading for comparison (_dl_start at exec) | {cu['loading']:,} |"]
        for name, v in mo["phases"].items():
            L.append(f"| {name} | {v:,} |")
        L.append(f"| **module's own work** (pam_sm_authenticate minus curl/OpenSSL init, "
                 f"request and teardown) | **{mo['module_work']:,}** |")
        L += ["", f"Instructions in pam_twilio_sms.so itself: "
              f"**{mo['objects'].get('pam_twilio_sms.so', 0):,}**; process totals of the "
              f"{cg['runs']} module runs: {', '.join(f'{t:,}' for t in cg['module_totals'])}.",
              ""]
    L += report_directory(res)
    L += report_redis(res)
    L += report_peer(res)
    L += report_backup(res)
    L += report_grace(res)
    if res["targets"]:
        L += ["### Targets", "", "| target | measured | |", "| --- | ---: | --- |"]
        for name, (value, ok) in res["targets"].items():
            shown = (f"{value / 1024:+.2f} MiB" if "RSS" in name else
                     f"{value:+.2f} ms" if "+ 3 ms" in name else
                     f"{value}" if isinstance(value, int) else f"{value:.3f}")
            L.append(f"| {name} | {shown} | {verdict(ok)} |")
        L.append("")
    return "\n".join(L)


LDAP_ROWS = (
    ("local", "pamtester + module, number from the users object (local)"),
    ("ldap", "pamtester + module, number from ldap (ldaps)"),
    ("ldapsearch_ldaps", "ldapsearch -x, the same bind and search over ldaps (floor)"),
    ("ldapsearch_ldap", "ldapsearch -x, the same over plain ldap (no TLS)"),
)
LDAP_PHASE_ROWS = (
    ("connect", "client start → slapd accepts the connection"),
    ("handshake", "TLS handshake (accepted → TLS established)"),
    ("bind", "simple bind (→ its result)"),
    ("search", "search (bind result → search result)"),
    ("close", "unbind and close (→ slapd sees the close)"),
    ("after", "close → request at the sandbox (module) or client exit (ldapsearch)"),
    ("connection", "the whole connection (accepted → closed)"),
)


def report_directory(res):
    """Section 6 of the report: the number from the directory."""
    d = res.get("directory")
    if not d:
        return []
    if "skipped" in d:
        return ["### 6. Numbers from the directory", "", f"Skipped: {d['skipped']}.", ""]
    loc, rem = d["local"], d["ldap"]
    dd, dw = rem["dispatch_ms"] - loc["dispatch_ms"], rem["wall_ms"] - loc["wall_ms"]
    batch = d["batch"]
    bad = sum(batch["ldap"][k] for k in ("errors", "lost_sms", "duplicate_sms"))
    res["targets"]["number from ldap: full authentication <= local + 3 ms"] = (
        round(dw, 3), dw <= TARGET_LDAP_MS)
    res["targets"][f"{batch['clients']} clients, number from ldap: errors + lost + "
                   f"duplicated SMS = 0"] = (bad, bad == 0)
    L = ["### 6. Numbers from the directory: ldaps to a slapd on loopback (ms)", "",
         f"One config with an ldap object ({d['config']['uri'].split('://')[0]}, bindDN, caFile "
         f"the slapd CA, timeoutSeconds {d['config']['timeoutSeconds']}) for both users: the "
         f"local one is in its users object, the other only in the directory. slapd CPU: "
         f"what slapd's threads used per client (mean).", "",
         "| client | time to dispatch | p10–p90 | full wall time | p10–p90 | client CPU "
         "| slapd CPU | errors |",
         "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for key, name in LDAP_ROWS:
        x = d[key]
        spread = ("-" if x["dispatch_ms"] is None else
                  f"{fmt(x['dispatch_p10_ms'])}–{fmt(x['dispatch_p90_ms'])}")
        L.append(f"| {name} | {fmt(x['dispatch_ms'])} | {spread} | {fmt(x['wall_ms'])} | "
                 f"{fmt(x['wall_p10_ms'])}–{fmt(x['wall_p90_ms'])} | {fmt(x['cpu_ms'])} | "
                 f"{fmt(x['slapd_cpu_ms'])} | {x['errors']} |")
    L += ["", f"The number from ldap costs **{dd:+.1f} ms** at dispatch and **{dw:+.1f} ms** "
          f"for the full authentication against the local number (target ≤ "
          f"+{TARGET_LDAP_MS:.0f} ms: {verdict(dw <= TARGET_LDAP_MS)}); client CPU "
          f"{rem['cpu_ms'] - loc['cpu_ms']:+.1f} ms (the lookup's child included), slapd "
          f"{fmt(rem['slapd_cpu_ms'])} ms.", "",
          "Where the time goes, from slapd's log (its clock; median ms of the runs):", "",
          "| phase | module, ldaps | ldapsearch, ldaps | ldapsearch, ldap |",
          "| --- | ---: | ---: | ---: |"]
    for key, name in LDAP_PHASE_ROWS:
        L.append(f"| {name} | " + " | ".join(
            fmt(d[k]["phases_ms"].get(key)) for k in ("ldap", "ldapsearch_ldaps",
                                                      "ldapsearch_ldap")) + " |")
    conn = rem["phases_ms"].get("connection")
    if conn is not None:
        L += ["", f"Of the {dd:+.1f} ms at dispatch, {conn:.1f} ms is the connection as slapd "
              f"saw it and {dd - conn:.1f} ms lies outside it: the fork; libldap's first use "
              f"in the new child, which resolves the host's name and loads every Cyrus SASL "
              f"plugin once per process, so on every lookup; the TLS context with the CA file; "
              f"and the child's exit and reaping. Connections per client (none / one / several): "
              + ", ".join(f"{k} {c['none']}/{c['one']}/{c['several']}" for k, c in (
                  (k, d[k]["phases_ms"]["connections"]) for k, _ in LDAP_ROWS)) + "."]
    L += ["", f"| {batch['clients']} simultaneous clients | per second | p50 | p99 | client CPU "
          "each | slapd CPU | sandbox CPU | errors | lost SMS | duplicate SMS | SYNs dropped |",
          "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for side, label in (("local", "number from the users object"),
                        ("ldap", "number from ldap (ldaps)")):
        x = batch[side]
        L.append(f"| {label} | {x['throughput']:.1f} | {x['p50_ms']:.1f} ms | "
                 f"{x['p99_ms']:.1f} ms | {x['client_cpu_ms']:.1f} ms | {x['slapd_cpu_pct']} % | "
                 f"{x['sandbox_cpu_pct']} % | {x['errors']} | {x['lost_sms']} | "
                 f"{x['duplicate_sms']} | {x['listen_overflows']} |")
    L += ["", f"{batch['ldap']['batches']} batches of each, in turn; distinct users in every "
          f"batch, the same numbers on both sides. slapd and sandbox CPU: share of one core "
          f"while the batches ran.", ""]
    return L


def report_redis(res):
    """Section 7 of the report: the limits in Redis against the files."""
    d = res.get("redis")
    if not d:
        return []
    if "skipped" in d:
        return ["### 7. Limits in Redis against the files", "", f"Skipped: {d['skipped']}.", ""]
    levels = [k for k in d if k.isdigit()]
    L = ["### 7. Limits in Redis against the files (batches of simultaneous logins, distinct "
         "users)", "",
         f"The bench's own Redis {d['server']} on this machine (the pam ACL user; over TCP on "
         f"127.0.0.1 and over its Unix socket) against the files in a stateDir on "
         f"{d['state_fs']}. globalSendLimit never refuses, so every login takes the global "
         f"lock (files: {', '.join(d['global_files']) or 'NO @global file'} in their "
         f"stateDir) or updates the global key (Redis). The three sides in a new random order "
         f"every round.", "",
         "| clients | state | per second | p50 | p99 | client CPU each | Redis CPU | "
         "sandbox CPU | errors | SMS per batch | lost SMS | duplicate SMS | EVALSHA per login "
         "| µs per EVALSHA | SYNs dropped |",
         "| ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: "
         "| ---: | ---: | ---: |"]
    for c in levels:
        for side, label in REDIS_SIDES:
            x = d[c][side]
            lo, hi = x["sms_per_batch"] or (0, 0)
            L.append(f"| {c} | {label} | {x['throughput']:.1f} | {x['p50_ms']:.1f} ms | "
                     f"{x['p99_ms']:.1f} ms | {x['client_cpu_ms']:.1f} ms | "
                     f"{x['redis_cpu_pct']} % | {x['sandbox_cpu_pct']} % | {x['errors']} | "
                     f"{lo}" + (f"–{hi}" if hi != lo else "") + f" of {c} | {x['lost_sms']} | "
                     f"{x['duplicate_sms']} | {fmt(x['evalsha_per_login'])} | "
                     f"{fmt(x['evalsha_us'])} | {x['listen_overflows']} |")
    L.append("")
    for c in levels:
        f, t, u = (d[c][k] for k in ("files", "redis", "redis_unix"))
        p50, p99 = t["p50_ms"] / f["p50_ms"], t["p99_ms"] / f["p99_ms"]
        res["targets"][f"{clients(c)}: p50 with Redis (TCP) / files <= 1"] = (
            round(p50, 3), p50 <= 1)
        L.append(f"- {clients(c)}: Redis over TCP / files: p50 **{p50:.3f}** "
                 f"({t['p50_ms'] - f['p50_ms']:+.3f} ms), p99 **{p99:.3f}** "
                 f"({t['p99_ms'] - f['p99_ms']:+.1f} ms); over the Unix socket: p50 "
                 f"{u['p50_ms'] / f['p50_ms']:.3f}, p99 {u['p99_ms'] / f['p99_ms']:.3f}.")
    top = max(levels, key=int)
    f, t = d[top]["files"], d[top]["redis"]
    p99 = t["p99_ms"] / f["p99_ms"]
    res["targets"][f"{clients(top)}: p99 with Redis (TCP) / files < 1"] = (round(p99, 3),
                                                                           p99 < 1)
    bad = sum(d[c][side][k] for c in levels for side, _ in REDIS_SIDES
              for k in ("errors", "lost_sms", "duplicate_sms"))
    fb = d["fallback"]
    fell = fb["warnings"] + sum(len(v) for v in fb["files"].values())
    L += ["", f"Targets: Redis over TCP no slower than the files at the median ("
          + ", ".join(f"{c}: {verdict(d[c]['redis']['p50_ms'] <= d[c]['files']['p50_ms'])}"
                      for c in levels)
          + f"), and a shorter p99 at {clients(top)}: {verdict(p99 < 1)}. Errors, lost and "
          f"duplicated SMS over every batch: {bad}. Logins that fell back from Redis to the "
          f"files: {fb['warnings']} warnings logged, "
          f"{sum(len(v) for v in fb['files'].values())} files in the Redis sides' own "
          f"stateDirs ({'every decision was made by Redis' if not fell else 'SOME WERE NOT'}). "
          f"EVALSHA per login: the reservation and the right answer, one script each; µs per "
          f"EVALSHA is Redis's own time for the script. Redis and sandbox CPU: share of one "
          f"core while the batches ran.", ""]
    for c in levels:
        for side, label in REDIS_SIDES:
            for x in d[c][side].get("failed", [])[:1]:
                last = (x["output"].strip().splitlines() or [""])[-1]
                L.append(f"- A failed login ({clients(c)}, {label}): exit {x['status']}, "
                         f"{x['sms']} SMS, request status {x['request_status']}, after "
                         f"{x['wall_ms']:.0f} ms: `{last[:160]}`")
    if L[-1] != "":
        L.append("")
    return L


PEER_ROWS = (
    ("duo", "pamtester + pam_duo (preauth says allow: no prompt)"),
    ("module", "pamtester + pam_twilio_sms (prompt, code typed back)"),
    ("module_tmpfs", "pamtester + pam_twilio_sms, stateDir on tmpfs (no fsync cost)"),
    ("duo_norequest", "pamtester + pam_duo, user outside its groups (loads, reads its config; "
     "no request)"),
    ("module_norequest", "pamtester + pam_twilio_sms, unmapped user with nullok (loads, reads "
     "its config; no request)"),
    ("ssh_duo", "ssh login: password, then pam_duo"),
    ("ssh_module", "ssh login: password, then pam_twilio_sms"),
    ("ssh_password", "ssh login: password only (no second factor, for reference)"),
)


def report_peer(res):
    """Section 8 of the report: the peer, pam_duo."""
    d = res.get("peer")
    if not d:
        return []
    if "skipped" in d:
        return ["### 8. The peer: pam_duo", "", f"Skipped: {d['skipped']}.", ""]
    q = d["duo_requests"]
    m = d.get("machine", {})
    L = ["### 8. The peer: Debian's pam_duo against a loopback Duo stand-in (ms)", "",
         f"Measured {m.get('date', '-')}, {d['runs']} rounds after {d['warmup']} warm-up "
         f"rounds (every kind once per round, in a new random order), medians; load average "
         f"{m.get('loadavg', '-')} at the start; pam_twilio_sms.so sha256 "
         f"{m.get('module', {}).get('sha256', '-')}…. {d['pam_duo']['package']} "
         f"({d['pam_duo']['path']}, sha256 {d['pam_duo']['sha256']}…) with failmode secure "
         f"against tests/sandbox/duo_sandbox.py, which checks each request's HMAC signature "
         f"and answers its preauth with allow: {q['n']} requests for the "
         f"{q.get('logins', '-')} measured pam_duo logins (pamtester, ssh, pamtester under "
         f"/usr/bin/time), {q['signed']} correctly signed, to "
         f"{', '.join(q['paths']) or '-'} (fields {', '.join(q['fields']) or '-'}; "
         f"{', '.join(q['user_agents'])}); pam_duo logged "
         + (", ".join(f"{v} × {k} Duo login" for k, v in sorted(d["duo_logged"].items()))
            or "nothing") +
         f" for its {d.get('duo_logged_logins', '-')} logins with the warm-up ones (Skipped: "
         f"what pam_duo logs for a preauth that allows). This module sends one SMS request "
         f"per login to the Twilio sandbox. Time to "
         f"first request: client spawn → the request is at the stand-in or the sandbox (their "
         f"records' time). ssh: the real client on a pseudo-terminal against a throw-away "
         f"sshd (OpenSSH {d['openssh']}) on loopback, keyboard-interactive, the PAM service "
         f"Debian's sshd with the module after `@include common-auth`, `echo` as the remote "
         f"command; wall time from spawn to exit.", "",
         "| client | time to first request | p10–p90 | full wall time | p10–p90 | client CPU "
         "| errors |",
         "| --- | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for key, name in PEER_ROWS:
        if key not in d:
            continue
        x = d[key]
        spread = ("-" if x["dispatch_ms"] is None else
                  f"{fmt(x['dispatch_p10_ms'])}–{fmt(x['dispatch_p90_ms'])}")
        L.append(f"| {name} | {fmt(x['dispatch_ms'])} | {spread} | {fmt(x['wall_ms'])} | "
                 f"{fmt(x['wall_p10_ms'])}–{fmt(x['wall_p90_ms'])} | {fmt(x['cpu_ms'])} | "
                 f"{x['errors']} |")
    L.append("")
    for label, a, b, most in (("pamtester", "module", "duo", TARGET_DUO_PAMTESTER),
                              ("ssh login", "ssh_module", "ssh_duo", TARGET_DUO_SSH)):
        x, y = d[a], d[b]
        target = f"{label}: time to first request, module / pam_duo <= {most:.2f}"
        if None in (x["dispatch_ms"], y["dispatch_ms"]) or not (x["n"] and y["n"]):
            L.append(f"- {label}: no ratio (a side has no successful login)")
            res["targets"][target] = (float("nan"), False)
            continue
        ratio = x["dispatch_ms"] / y["dispatch_ms"]
        res["targets"][target] = (round(ratio, 3), ratio <= most)
        L.append(f"- {label}: pam_twilio_sms / pam_duo: time to first request "
                 f"**{x['dispatch_ms'] / y['dispatch_ms']:.2f}** "
                 f"({x['dispatch_ms'] - y['dispatch_ms']:+.1f} ms), full wall time "
                 f"**{x['wall_ms'] / y['wall_ms']:.2f}** ({x['wall_ms'] - y['wall_ms']:+.1f} ms).")
    if "duo_norequest" in d and "module_norequest" in d:
        a, c = d["module_norequest"]["wall_ms"], d["duo_norequest"]["wall_ms"]
        L.append(f"- pamtester, each module loaded and its config read, no request: "
                 f"pam_twilio_sms {a - c:+.1f} ms against pam_duo (client CPU "
                 f"{d['module_norequest']['cpu_ms'] - d['duo_norequest']['cpu_ms']:+.1f} ms).")
    p = d["ssh_password"]["wall_ms"]
    L += [f"- ssh login, the second factor over the password alone: pam_duo "
          f"{d['ssh_duo']['wall_ms'] - p:+.1f} ms, pam_twilio_sms "
          f"{d['ssh_module']['wall_ms'] - p:+.1f} ms.", ""]
    dl, ml = d["duo_libraries"], d["module_libraries"]
    dm, mm = d.get("duo_memory") or {}, d.get("module_memory") or {}

    def mib(v):
        return "-" if v is None else f"{v / 1024:.2f} MiB"

    L += ["What each loads (ldd of the module; pamtester's mappings 0.3 s into a login whose "
          "server holds its answer, so every library the login uses is in):", "",
          "| | pam_duo | pam_twilio_sms |", "| --- | ---: | ---: |",
          f"| libraries the module needs (ldd, transitive) | {dl['count']} | {ml['count']} |",
          f"| their size on disk | {dl['disk_mib']:.2f} MiB | {ml['disk_mib']:.2f} MiB |",
          f"| shared objects mapped in pamtester during the request | "
          f"{len(dm.get('libraries', [])) or '-'} | {len(mm.get('libraries', [])) or '-'} |",
          f"| pamtester's RSS then | {mib(dm.get('rss_kib'))} | {mib(mm.get('rss_kib'))} |",
          f"| of it proportional (PSS) | {mib(dm.get('pss_kib'))} | {mib(mm.get('pss_kib'))} |",
          f"| private dirty | {mib(dm.get('private_dirty_kib'))} | "
          f"{mib(mm.get('private_dirty_kib'))} |",
          f"| peak RSS (/usr/bin/time %M, median) | {mib(d['duo'].get('rss_kib'))} | "
          f"{mib(d['module'].get('rss_kib'))} |", ""]
    dlibs = {Path(p).name for p in dm.get("libraries", [])}
    mlibs = {Path(p).name for p in mm.get("libraries", [])}
    if dlibs and mlibs:
        L += [f"Mapped in both pamtesters ({len(dlibs & mlibs)}): "
              + ", ".join(n.split(".so")[0] for n in sorted(dlibs & mlibs))
              + f". Only with pam_duo ({len(dlibs - mlibs)}): "
              + (", ".join(n.split(".so")[0] for n in sorted(dlibs - mlibs)) or "-")
              + f". Only with pam_twilio_sms ({len(mlibs - dlibs)}): "
              + (", ".join(n.split(".so")[0] for n in sorted(mlibs - dlibs)) or "-") + ".", ""]
    names = set(ml["names"])
    via = ml.get("via", {})
    curl = (set(via.get("libcurl.so.4", [])) | {"libcurl.so.4"}) & names
    ldap = ((set(via.get("libldap-2.5.so.0", [])) | {"libldap-2.5.so.0"}) & names) - curl
    hiredis = ((set(via.get("libhiredis.so.0.14", [])) | {"libhiredis.so.0.14"}) & names) \
        - curl - ldap
    rest = names - curl - ldap - hiredis
    L += [f"pam_duo needs {dl['count']}: {', '.join(n.split('.so')[0] for n in dl['names'])} "
          + ("(libduo: duo_unix's own HTTP client, BSON parser and INI reader, on OpenSSL)"
             if any(n.startswith("libduo") for n in dl["names"]) else
             "(duo_unix's own HTTP client, parser and INI reader are compiled in)")
          + f". pam_twilio_sms needs "
          f"{ml['count']}: {len(curl)} come with libcurl ("
          + ", ".join(n.split(".so")[0] for n in sorted(curl)) + f"), {len(ldap)} more with "
          f"libldap (" + (", ".join(n.split(".so")[0] for n in sorted(ldap)) or "-") +
          f"), {len(hiredis)} with hiredis, and " +
          ", ".join(n.split(".so")[0] for n in sorted(rest)) + ".", ""]
    for x in d.get("failed", [])[:2]:
        last = (x["output"].strip().splitlines() or [""])[-1]
        L.append(f"- A failed login ({x['kind']}): status {x['status']}, "
                 f"{len(x['duo_requests'])} Duo requests: `{last[:160]}`")
    if L[-1] != "":
        L.append("")
    return L


def report_backup(res):
    """Section 9 of the report: logins by backup code against one by SMS code."""
    d = res.get("backup")
    if not d:
        return []
    if "skipped" in d:
        return ["### 9. Backup codes", "", f"Skipped: {d['skipped']}.", ""]
    m = d.get("machine", {})
    base = d["sms"]
    made = d["making_a_set_ms"]
    L = ["### 9. Backup codes: logins by backup code against one by SMS code (ms)", "",
         f"Measured {m.get('date', '-')}, {d['runs']} rounds after {d['warmup']} warm-up "
         f"rounds (every kind once per round, in a new random order), medians; load average "
         f"{m.get('loadavg', '-')} at the start; pam_twilio_sms.so sha256 "
         f"{m.get('module', {}).get('sha256', '-')}…. One user with backupCodesFile; before "
         f"each backup-code login, outside the timed run, `twilio-sms-otp backup-codes USER "
         f"--count N` made a fresh set (a code works once). The module checks the typed code "
         f"against the user's hashes in the file's order (Argon2id "
         f"{d.get('argon2id') or '-'}), up to the first match, and then rewrites the file "
         f"without it. maxAttempts {d['config']['maxAttempts']} (a wrong code ends the login), "
         f"lockoutThreshold {d['config']['lockoutThreshold']}; the 503 config has maxRetries "
         f"{d['config']['maxRetries_503']} (the default 2 would wait 0.6–1.2 s of backoff "
         f"first). Full wall time: pamtester spawn → its exit after PAM_SUCCESS or the "
         f"denial; each login's outcome line, SMS and request checked.", "",
         "| login | hashes checked | full wall time | p10–p90 | / (a) | − (a) | client CPU "
         "| peak RSS | errors |",
         "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for key, label, *_ in BACKUP_KINDS:
        x = d[key]
        rss = "-" if x.get("rss_kib") is None else f"{x['rss_kib'] / 1024:.2f} MiB"
        ratio = x["wall_ms"] / base["wall_ms"] if x["n"] and base["n"] else float("nan")
        diff = x["wall_ms"] - base["wall_ms"] if x["n"] and base["n"] else float("nan")
        L.append(f"| {label} | {x['hashes_checked']} | {fmt(x['wall_ms'])} | "
                 f"{fmt(x['wall_p10_ms'])}–{fmt(x['wall_p90_ms'])} | "
                 + ("-" if key == "sms" else f"{ratio:.2f}") + " | "
                 + ("-" if key == "sms" else f"{diff:+.1f}") + f" | {fmt(x['cpu_ms'])} | "
                 f"{rss} | {x['errors']} |")
    L.append("")
    one, ten, twenty = d["first_of_10"], d["tenth_of_10"], d["twentieth_of_20"]
    if one["n"] and twenty["n"]:
        per = (twenty["wall_ms"] - one["wall_ms"]) / 19
        per_cpu = (twenty["cpu_ms"] - one["cpu_ms"]) / 19
        per10 = (ten["wall_ms"] - one["wall_ms"]) / 9 if ten["n"] else float("nan")
        L.append(f"- Each hash checked costs **{per:.1f} ms** of wall time ((d) − (b) over "
                 f"19 more hashes; {per10:.1f} ms from (c) − (b) over 9) and {per_cpu:.1f} ms "
                 f"of client CPU: a backup-code login takes the SMS login's time plus "
                 f"about N × {per:.1f} ms for the code whose hash is N-th in the set, plus the "
                 f"file's rewrite (fsync, rename) when the code is right.")
    w = d["wrong_of_20"]
    if w["n"] and base["n"]:
        L.append(f"- A wrong code against the largest set (20 hashes) is the dearest answer: "
                 f"{w['wall_ms']:.1f} ms to the denial, {w['wall_ms'] - base['wall_ms']:+.1f} ms "
                 f"over an SMS login; so each guess costs the host (and a guesser) 20 checks, "
                 f"and maxAttempts and the lockout bound the guesses.")
    f = d["unavailable_first_of_10"]
    if f["n"] and base["n"]:
        L.append(f"- Twilio answering 503: the `SMS unavailable; backup code:` login with the "
                 f"1st of 10 takes {f['wall_ms']:.1f} ms ({f['wall_ms'] / base['wall_ms']:.2f} × "
                 f"the SMS login): one request answered 503, no SMS, the prompt, one hash.")
    if base.get("rss_kib") and twenty.get("rss_kib"):
        extra = twenty["rss_kib"] - base["rss_kib"]
        first = "" if not one.get("rss_kib") else (
            f", and {one['rss_kib'] / 1024:.2f} MiB with one hash checked ((b), "
            f"{(one['rss_kib'] - base['rss_kib']) / 1024:+.2f} MiB)")
        L.append(f"- Peak RSS (/usr/bin/time %M, median): {base['rss_kib'] / 1024:.2f} MiB for "
                 f"the SMS login, {twenty['rss_kib'] / 1024:.2f} MiB with 20 hashes checked "
                 f"((d), **{extra / 1024:+.2f} MiB**){first}: Argon2id's memory (m=4096 KiB), "
                 f"taken for each check and given back after it, so the peak does not grow "
                 f"with the number of hashes checked.")
    if made:
        L.append("- Making a set (`backup-codes USER --count N`, the whole command, median): "
                 + ", ".join(f"{n} codes {v:.1f} ms" for n, v in made.items()) + ".")
    for x in d.get("failed", [])[:2]:
        last = (x["output"].strip().splitlines() or [""])[-1]
        L.append(f"- A failed login ({x['kind']}): {x['problem']}: `{last[:160]}`")
    L.append("")
    return L


def report_grace(res):
    """Section 10 of the report: a login let in by an address grace against an SMS login."""
    d = res.get("grace")
    if not d:
        return []
    if "skipped" in d:
        return ["### 10. Graces", "", f"Skipped: {d['skipped']}.", ""]
    m = d.get("machine", {})
    k = d["kinds"]
    L = ["### 10. Graces: a login let in by an address grace against an SMS login (ms)", "",
         f"Measured {m.get('date', '-')}, {d['runs']} rounds after {d['warmup']} warm-up "
         f"rounds (every kind once per round, in a new random order), medians; load average "
         f"{m.get('loadavg', '-')} at the start; pam_twilio_sms.so sha256 "
         f"{m.get('module', {}).get('sha256', '-')}…. gracePeriodSeconds "
         f"{d['config']['gracePeriodSeconds']}; the grace logins are `pamtester -I "
         f"rhost={d['config']['address']}` after one SMS login from that address (before the "
         f"rounds); each SMS login comes from an address of its own, so it is a first login "
         f"from it and opens a grace too. stateDir on {d.get('state_fs', '-')}"
         + (f"; Redis {d['redis_server']} on loopback" if d.get("redis_server") else "")
         + ". Full wall time: pamtester spawn → its exit after PAM_SUCCESS; each login's "
         "outcome line (method=sms or method=grace-address), SMS and request checked.", "",
         "| backend | SMS login | p10–p90 | grace login | p10–p90 | grace / SMS | grace − SMS "
         "| client CPU SMS / grace | errors |",
         "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for key, label in d["sides"]:
        a, g = k[f"{key}_sms"], k[f"{key}_grace"]
        ok = a["n"] and g["n"]
        L.append(f"| {label} | {fmt(a['wall_ms'])} | {fmt(a['wall_p10_ms'])}–"
                 f"{fmt(a['wall_p90_ms'])} | {fmt(g['wall_ms'])} | {fmt(g['wall_p10_ms'])}–"
                 f"{fmt(g['wall_p90_ms'])} | "
                 + (f"{g['wall_ms'] / a['wall_ms']:.2f}" if ok else "-") + " | "
                 + (f"{g['wall_ms'] - a['wall_ms']:+.1f}" if ok else "-")
                 + f" | {fmt(a['cpu_ms'])} / {fmt(g['cpu_ms'])} | {a['errors'] + g['errors']} |")
    off, on = k["files_off_sms"], k["files_sms"]
    L.append(f"| files, graces off (SMS login only) | {fmt(off['wall_ms'])} | "
             f"{fmt(off['wall_p10_ms'])}–{fmt(off['wall_p90_ms'])} | - | - | - | - | "
             f"{fmt(off['cpu_ms'])} / - | {off['errors']} |")
    L.append("")
    if off["n"] and on["n"]:
        L.append(f"- An SMS login with gracePeriodSeconds set (it opens a grace: one more write "
                 f"of the user's state file) takes {on['wall_ms']:.1f} ms against "
                 f"{off['wall_ms']:.1f} ms with graces off ({on['wall_ms'] - off['wall_ms']:+.1f} "
                 f"ms, within the noise when smaller than the p10–p90 spread).")
    if d.get("redis_skipped"):
        L.append(f"- The Redis rows were skipped: {d['redis_skipped']}.")
    for x in d.get("failed", [])[:2]:
        last = (x["output"].strip().splitlines() or [""])[-1]
        L.append(f"- A failed login ({x['kind']}): {x['problem']}: `{last[:160]}`")
    L.append("")
    return L


def clients(c):
    return f"{c} client" if str(c) == "1" else f"{c} clients"


# --------------------------------------------------------------------------- plot

PALETTE = {"curl": "#7f8c8d", "module": "#c0392b", "tmpfs": "#e67e22", "permit": "#2980b9",
           "inline": "#8e44ad", "file": "#c0392b", "target": "#27ae60", "lookup": "#16a085",
           "ldap": "#2c3e50", "ldapsearch": "#5d8aa8", "plain": "#b0bec5",
           "files": "#c0392b", "redis": "#1f618d", "redis_unix": "#76b7e0"}


def esc(s):
    return str(s).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def ticks(vmax, n=4):
    """Round tick values from 0 to at least vmax, about n steps."""
    if vmax <= 0:
        return [0, 1]
    raw = vmax / n
    mag = 10 ** math.floor(math.log10(raw))
    step = next(m * mag for m in (1, 2, 2.5, 5, 10) if m * mag >= raw)
    return [i * step for i in range(int(math.ceil(vmax / step - 1e-9)) + 1)]


def num(v):
    return f"{v:,.0f}" if v >= 100 else f"{v:g}"


class Svg:
    def __init__(self, w, h):
        self.w, self.h, self.parts = w, h, []

    def add(self, s):
        self.parts.append(s)

    def text(self, x, y, s, size=11, anchor="start", weight="normal", fill="#222"):
        self.add(f'<text x="{x:.1f}" y="{y:.1f}" font-size="{size}" text-anchor="{anchor}" '
                 f'font-weight="{weight}" fill="{fill}">{esc(s)}</text>')

    def rect(self, x, y, w, h, fill):
        self.add(f'<rect x="{x:.1f}" y="{y:.1f}" width="{max(w, 0):.1f}" height="{h:.1f}" '
                 f'fill="{fill}"/>')

    def line(self, x1, y1, x2, y2, stroke="#bbb", width=1, dash=None):
        d = f' stroke-dasharray="{dash}"' if dash else ""
        self.add(f'<line x1="{x1:.1f}" y1="{y1:.1f}" x2="{x2:.1f}" y2="{y2:.1f}" '
                 f'stroke="{stroke}" stroke-width="{width}"{d}/>')

    def legend(self, x, y, items, right=None):
        """Rows of (name, color, dash) keys from x, wrapping before right; returns the
        y of the last row."""
        x0 = x
        for name, color, dash in items:
            width = 32 + 6 * len(name)
            if right is not None and x > x0 and x + width > right:
                x, y = x0, y + 14
            self.line(x, y - 4, x + 18, y - 4, color, 3 if not dash else 2, dash)
            self.text(x + 22, y, name, 10)
            x += width
        return y

    def render(self):
        return (f'<svg xmlns="http://www.w3.org/2000/svg" width="{self.w}" height="{self.h}" '
                f'viewBox="0 0 {self.w} {self.h}" font-family="DejaVu Sans, Arial, sans-serif">'
                f'<rect width="100%" height="100%" fill="white"/>' + "".join(self.parts) +
                "</svg>\n")


def hbars(svg, x, y, w, h, title, rows, unit, targets=(), legend=()):
    """rows: (label, [(value, color)]): a group of bars per row, from 0.
    targets: (value, label, first_row, last_row): a dashed line across those rows."""
    svg.text(x, y + 14, title, 13, weight="bold")
    if legend:
        svg.legend(x + 8, y + 32, legend, x + w)
    if not rows:
        return
    left, top, bottom = x + 190, y + (48 if legend else 34), y + h - 22
    width = x + w - left - 60
    vmax = max([v for _, bars in rows for v, _ in bars] + [t[0] for t in targets])
    tk = ticks(vmax)
    vmax = tk[-1]
    step = (bottom - top) / len(rows)
    for t in tk:
        gx = left + width * t / vmax
        svg.line(gx, top, gx, bottom, "#eee")
        svg.text(gx, bottom + 14, num(t), 10, "middle", fill="#666")
    for i, (label, bars) in enumerate(rows):
        bh = step * 0.7 / len(bars)
        by = top + i * step + step * 0.15
        svg.text(left - 6, by + step * 0.35 + 4, label, 11, "end")
        for j, (v, color) in enumerate(bars):
            yy = by + j * bh
            svg.rect(left, yy, width * v / vmax, bh - 1, color)
            svg.text(left + width * v / vmax + 4, yy + bh / 2 + 3.5,
                     f"{v:,.1f} {unit}".strip(), 9.5)
    for value, label, first, last in targets:
        tx = left + width * value / vmax
        y0, y1 = top + first * step + 2, top + (last + 1) * step - 2
        svg.line(tx, y0, tx, y1, PALETTE["target"], 1.5, "5,3")
        svg.text(tx + 3, y1 - 2, label, 9.5, fill=PALETTE["target"])


def lines(svg, x, y, w, h, title, series, xlabel, ylabel):
    """series: (name, [(x, y)], color, dash); x on a log scale."""
    svg.text(x, y + 14, title, 13, weight="bold")
    last = svg.legend(x + 60, y + 32, [(n, c, d) for n, s, c, d in series if s], x + w)
    pts = [p for _, s, _, _ in series for p in s]
    if not pts:
        return
    left, top, bottom, right = x + 60, last + 14, y + h - 40, x + w - 20
    xs = sorted({p[0] for p in pts})
    x0, x1 = math.log10(xs[0]), math.log10(xs[-1])
    if x1 == x0:
        x1 = x0 + 1
    tk = ticks(max(p[1] for p in pts))
    vmax = tk[-1]

    def px(v):
        return left + (right - left) * (math.log10(v) - x0) / (x1 - x0)

    def py(v):
        return bottom - (bottom - top) * v / vmax

    for t in tk:
        svg.line(left, py(t), right, py(t), "#eee")
        svg.text(left - 6, py(t) + 4, num(t), 10, "end", fill="#666")
    for t in xs:
        svg.line(px(t), bottom, px(t), bottom + 4, "#999")
        svg.text(px(t), bottom + 16, f"{t:,}", 10, "middle", fill="#666")
    svg.text((left + right) / 2, bottom + 32, xlabel, 11, "middle", fill="#444")
    cy = (top + bottom) / 2
    svg.add(f'<text x="{x + 14}" y="{cy}" font-size="11" fill="#444" text-anchor="middle" '
            f'transform="rotate(-90 {x + 14} {cy})">{esc(ylabel)}</text>')
    for name, s, color, dash in series:
        if not s:
            continue
        d = " ".join(f"{'M' if i == 0 else 'L'}{px(a):.1f},{py(v):.1f}"
                     for i, (a, v) in enumerate(s))
        extra = f' stroke-dasharray="{dash}"' if dash else ""
        svg.add(f'<path d="{d}" fill="none" stroke="{color}" stroke-width="2"{extra}/>')
        if not dash:
            for a, v in s:
                svg.add(f'<circle cx="{px(a):.1f}" cy="{py(v):.1f}" r="3" fill="{color}"/>')


def plot(res):
    m = res["machine"]
    d = res.get("directory")
    d = d if d and "skipped" not in d else None
    rd = res.get("redis")
    rd = rd if rd and "skipped" not in rd else None
    height = 930 + (310 if d else 0)
    svg = Svg(1000, height + (310 if rd else 0))
    svg.text(500, 22, f"pam_twilio_sms benchmark, {m['date']}: {m['nproc']} × {m['cpu']}, "
             f"Linux {m['kernel']}; medians of {res['runs']} runs", 13, "middle", "bold")
    mod_key = [("curl (floor)", PALETTE["curl"], None),
               ("pamtester + module", PALETTE["module"], None)]
    lat = res.get("latency")
    if lat:
        keys = ["curl", "module"] + (["module_tmpfs"] if "module_tmpfs" in lat else [])
        colors = [PALETTE["curl"], PALETTE["module"], PALETTE["tmpfs"]]
        rows = [("time to dispatch", [(lat[k]["dispatch_ms"], c) for k, c in zip(keys, colors)]),
                ("full authentication", [(lat[k]["wall_ms"], c) for k, c in zip(keys, colors)])]
        legend = mod_key + ([("module, tmpfs stateDir", PALETTE["tmpfs"], None)]
                            if "module_tmpfs" in lat else [])
        hbars(svg, 10, 40, 480, 270, "1. Latency (ms)", rows, "ms",
              [(lat["curl"]["dispatch_ms"] * TARGET_RATIO, "target 1.10 × curl", 0, 0),
               (lat["curl"]["wall_ms"] * TARGET_RATIO, "target 1.10 × curl", 1, 1)], legend)
        mib = [("pamtester + pam_permit", [(lat["permit"]["rss_kib"] / 1024, PALETTE["permit"])]),
               ("pamtester + module", [(lat["module"]["rss_kib"] / 1024, PALETTE["module"])]),
               ("curl", [(lat["curl"]["rss_kib"] / 1024, PALETTE["curl"])])]
        hbars(svg, 510, 40, 480, 270, "2. Peak RSS (MiB)", mib, "MiB",
              [(lat["permit"]["rss_kib"] / 1024 + 3, "target: pam_permit + 3 MiB", 0, 2)])
    sc = res.get("scale")
    if sc:
        f = [(s["users"], s["wall_ms"]) for s in sc.values() if s["where"] == "usersFile"]
        i = [(s["users"], s["wall_ms"]) for s in sc.values() if s["where"] == "inline"]
        lk = [(s["users"], s["wall_ms"]) for s in sc.values()
              if s["where"] == "usersFile, lookup only"]
        series = [("users file", f, PALETTE["file"], None),
                  ("inline in the config", i, PALETTE["inline"], None),
                  ("users file, lookup only", lk, PALETTE["lookup"], None)]
        if "file-10" in sc and f:
            t = sc["file-10"]["wall_ms"] * TARGET_SCALE
            series.append(("target: 10 + 5 %", [(10, t), (max(p[0] for p in f), t)],
                           PALETTE["target"], "5,3"))
        lines(svg, 10, 320, 480, 290, "3. Full authentication vs mapped users (ms)", series,
              "users (log scale)", "ms")
    cc = res.get("concurrency")
    if cc:
        lv = [int(c) for c in cc]
        lines(svg, 510, 320, 480, 290, "4a. Throughput (per second)",
              [("module auth/s", [(c, cc[str(c)]["module"]["throughput"]) for c in lv],
                PALETTE["module"], None),
               ("curl req/s", [(c, cc[str(c)]["curl"]["throughput"]) for c in lv],
                PALETTE["curl"], None),
               ("module, tmpfs stateDir", [(c, cc[str(c)]["module_tmpfs"]["throughput"])
                                           for c in lv if "module_tmpfs" in cc[str(c)]],
                PALETTE["tmpfs"], None)],
              "simultaneous clients (log scale)", "per second")
        lines(svg, 510, 625, 480, 290, "4b. Latency, p50 and p99 (ms)",
              [("module p50", [(c, cc[str(c)]["module"]["p50_ms"]) for c in lv],
                PALETTE["module"], None),
               ("p99", [(c, cc[str(c)]["module"]["p99_ms"]) for c in lv],
                PALETTE["module"], "5,3"),
               ("curl p50", [(c, cc[str(c)]["curl"]["p50_ms"]) for c in lv],
                PALETTE["curl"], None),
               ("p99", [(c, cc[str(c)]["curl"]["p99_ms"]) for c in lv],
                PALETTE["curl"], "5,3")],
              "simultaneous clients (log scale)", "ms")
    cg = res.get("callgrind")
    if cg and "module" in cg:
        rows = []
        for n in [n for n, _ in OBJECT_GROUPS] + ["other"]:
            a = cg["module"]["objects"].get(n, 0) / 1e6
            c = cg["curl"]["objects"].get(n, 0) / 1e6
            if max(a, c) >= 0.05:
                rows.append((n, [(c, PALETTE["curl"]), (a, PALETTE["module"])]))
        rows.append(("total", [(cg["curl"]["total"] / 1e6, PALETTE["curl"]),
                               (cg["module"]["total"] / 1e6, PALETTE["module"])]))
        rows.append(("module's own work", [(cg["module"]["module_work"] / 1e6,
                                            PALETTE["module"])]))
        hbars(svg, 10, 625, 480, 290, "5. Instructions per process (callgrind, millions)",
              rows, "", legend=mod_key)
    if d:
        loc, rem = PALETTE["module"], PALETTE["ldap"]
        rows = [("time to dispatch", [(d["local"]["dispatch_ms"], loc),
                                      (d["ldap"]["dispatch_ms"], rem)]),
                ("full authentication", [(d["local"]["wall_ms"], loc),
                                         (d["ldap"]["wall_ms"], rem)]),
                ("ldapsearch (floor)", [(d["ldapsearch_ldaps"]["wall_ms"], PALETTE["ldapsearch"]),
                                        (d["ldapsearch_ldap"]["wall_ms"], PALETTE["plain"])])]
        hbars(svg, 10, 930, 480, 300, "6a. Number from the directory, one authentication (ms)",
              rows, "ms",
              [(d["local"]["dispatch_ms"] + TARGET_LDAP_MS, "target local + 3 ms", 0, 0),
               (d["local"]["wall_ms"] + TARGET_LDAP_MS, "target local + 3 ms", 1, 1)],
              [("users object (local)", loc, None), ("ldap (ldaps)", rem, None),
               ("ldapsearch ldaps", PALETTE["ldapsearch"], None),
               ("ldapsearch plain", PALETTE["plain"], None)])
        bt = d["batch"]
        rows = [(f"{q} latency", [(bt["local"][f"{q}_ms"], loc), (bt["ldap"][f"{q}_ms"], rem)])
                for q in ("p50", "p99")]
        hbars(svg, 510, 930, 480, 300, f"6b. {bt['clients']} simultaneous clients (ms)", rows,
              "ms", legend=[("users object (local)", loc, None), ("ldap (ldaps)", rem, None)])
    if rd:
        levels = [k for k in rd if k.isdigit()]
        key = [("files (stateDir on disk)", PALETTE["files"], None),
               ("Redis, TCP", PALETTE["redis"], None),
               ("Redis, Unix socket", PALETTE["redis_unix"], None)]
        for x, q, title in ((10, "p50", "7a. Limits in Redis vs files: median (ms)"),
                            (510, "p99", "7b. Limits in Redis vs files: p99 (ms)")):
            rows = [(clients(c), [(rd[c][side][f"{q}_ms"], PALETTE[side])
                                  for side, _ in REDIS_SIDES]) for c in levels]
            hbars(svg, x, height, 480, 300, title, rows, "ms", legend=key)
    return svg.render()


# --------------------------------------------------------------------------- main

def enter_namespace():
    """Reruns this script in a private mount namespace, where our syslog socket can be
    bind-mounted over /dev/log for every client without touching the machine's."""
    if os.environ.get(NS_MARK) or not os.path.lexists("/dev/log"):
        return
    if shutil.which("unshare") is None:
        return
    os.environ[NS_MARK] = "1"
    os.execvp("unshare", ["unshare", "--mount", "--propagation", "private", "--",
                          sys.executable, str(Path(__file__).resolve()), *sys.argv[1:]])


def prerequisites():
    if os.geteuid() != 0:
        return "run as root (service files in /etc/pam.d, root-owned config files)"
    for tool, pkg in (("pamtester", "pamtester"), ("curl", "curl"), ("/usr/bin/time", "time")):
        if shutil.which(tool) is None:
            return f"{tool} not found: tests/install-deps.sh {pkg}"
    if not MODULE.is_file():
        return f"{MODULE} not built: make"
    if not SANDBOX.is_file():
        return f"sandbox missing: {SANDBOX}"
    return None


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--runs", type=int, default=30, help="measured runs per figure (30)")
    p.add_argument("--warmup", type=int, default=3, help="runs thrown away first (3)")
    p.add_argument("--quick", action="store_true",
                   help="5 runs, 1 warm-up, up to 100 000 users and 32 clients (also for the "
                   "directory and redis), 1 callgrind run")
    p.add_argument("--only", default=",".join(SECTIONS),
                   help=f"comma-separated sections ({','.join(SECTIONS)})")
    p.add_argument("--levels", default=",".join(map(str, LEVELS)),
                   help="concurrency levels (1,8,32,128)")
    p.add_argument("--redis-levels", default=",".join(map(str, REDIS_LEVELS)),
                   help="simultaneous logins of the redis section (1,32,128)")
    p.add_argument("--baseline", metavar="MODULE",
                   help="the latency section also runs this build of the module (e.g. the "
                   "last release's, built in a git worktree) in the same rounds, and gives "
                   "the ratios; nothing is written unless --out says where")
    p.add_argument("--callgrind-runs", type=int, default=3)
    p.add_argument("--keep-callgrind", metavar="DIR",
                   help="keep the callgrind.out files there (callgrind_annotate --inclusive=no)")
    p.add_argument("--out", help="write results.md/json/svg here (default: tests/bench/ for a "
                   "full default run, nowhere otherwise)")
    p.add_argument("--merge", action="store_true",
                   help="with --only: put these sections' new figures into the results.json "
                   "already in --out (default tests/bench/) and write results.md/json/svg again "
                   "from it, the other sections' figures unchanged")
    a = p.parse_args()
    a.sections = [s.strip() for s in a.only.split(",") if s.strip()]
    for s in a.sections:
        if s not in SECTIONS:
            p.error(f"unknown section {s!r}")
    a.level_list = [int(x) for x in a.levels.split(",")]
    a.file_sizes, a.inline_sizes = SCALE_FILE, SCALE_INLINE
    a.ldap_clients = LDAP_CLIENTS
    a.redis_level_list = [int(x) for x in a.redis_levels.split(",")]
    if a.quick:
        a.runs, a.warmup, a.callgrind_runs = 5, 1, 1
        a.level_list = [c for c in a.level_list if c <= 32]
        a.file_sizes = tuple(n for n in SCALE_FILE if n <= 100_000)
        a.ldap_clients = 32
        a.redis_level_list = [c for c in a.redis_level_list if c <= 32]
    if a.baseline:
        a.baseline = str(Path(a.baseline).resolve())
        if not Path(a.baseline).is_file():
            p.error(f"--baseline: no {a.baseline}")
    full = not a.quick and a.runs >= 30 and set(a.sections) == set(SECTIONS) and not a.baseline
    a.out_dir = Path(a.out) if a.out else (HERE if full or a.merge else None)
    if a.merge and not (a.out_dir / "results.json").is_file():
        p.error(f"--merge: no {a.out_dir / 'results.json'} to merge into")
    return a


def merge_results(res, args):
    """The figures in OUT/results.json with the sections just measured in place of theirs;
    args.runs and args.warmup become those of the file's run, which its report header
    names (a merged section names its own)."""
    old = json.loads((args.out_dir / "results.json").read_text())
    for name in args.sections:
        key = "latency" if name == "rss" else name
        if key in res:
            old[key] = res[key]
    args.runs, args.warmup = old["runs"], old["warmup"]
    return old


def on_signal(signum, _frame):
    raise KeyboardInterrupt(signal.Signals(signum).name)


def main():
    args = parse_args()
    problem = prerequisites()
    if problem:
        print(f"bench: {problem}", file=sys.stderr)
        return 2
    enter_namespace()
    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, on_signal)
    workdir = tempfile.mkdtemp(prefix="tsms-bench-")
    b = Bench(workdir, args)
    res = {"machine": machine(), "runs": args.runs, "warmup": args.warmup, "targets": {}}
    t0 = time.monotonic()
    try:
        b.start()
        res["machine"]["accounts"] = (b.accounts.problem and
                                      f"not accounts ({b.accounts.problem})")
        res["machine"]["system_cas"] = (b.system_cas.certificates or
                                        f"not measured ({b.system_cas.problem})")
        if "latency" in args.sections or "rss" in args.sections:
            say(f"latency and RSS: {args.runs} rounds of module, curl, pam_permit, tmpfs state")
            res["latency"] = section_latency(b, args.runs, args.warmup)
        if "scale" in args.sections:
            say(f"scale: users file {args.file_sizes}, inline {args.inline_sizes}")
            res["scale"] = section_scale(b, args.runs, args.warmup, args.file_sizes,
                                         args.inline_sizes)
        if "concurrency" in args.sections:
            say(f"concurrency: {args.level_list}, {args.runs} batches each")
            res["concurrency"] = section_concurrency(b, args.runs, args.warmup, args.level_list)
        if "callgrind" in args.sections:
            say(f"callgrind: {args.callgrind_runs} runs of module and curl")
            res["callgrind"] = section_callgrind(b, args.callgrind_runs)
        if "directory" in args.sections:
            say(f"directory: {args.runs} rounds of local, ldap and ldapsearch; "
                f"{args.runs} batches of {args.ldap_clients} local and ldap")
            res["directory"] = section_directory(b, args.runs, args.warmup, args.ldap_clients)
        if "redis" in args.sections:
            say(f"redis: {args.redis_level_list}, {args.runs} batches each of files, Redis "
                f"over TCP and over its Unix socket, in turn")
            res["redis"] = section_redis(b, args.runs, args.warmup, args.redis_level_list)
        if "peer" in args.sections:
            say(f"peer: {args.runs} rounds of pam_duo and the module, through pamtester and "
                f"through ssh logins to sshd")
            res["peer"] = section_peer(b, args.runs, args.warmup)
        if "backup" in args.sections:
            say(f"backup: {args.runs} rounds of an SMS login and backup-code logins (the 1st "
                f"and 10th of 10, the 20th of 20, a wrong one, Twilio 503), a fresh set before "
                f"each")
            res["backup"] = section_backup(b, args.runs, args.warmup)
        if "grace" in args.sections:
            say(f"grace: {args.runs} rounds of grace and SMS logins on the files, Redis "
                f"(graceScope host) and Redis (graceScope fleet)")
            res["grace"] = section_grace(b, args.runs, args.warmup)
        outcomes = [l for l in b.syslog.collect(0, timeout=5)
                    if "pam_twilio_sms(" in l and "result=" in l]
        res["logged_outcomes"] = collections.Counter(
            re.search(r"result=(\S+)", l).group(1) for l in outcomes)
        res["logged_sources"] = collections.Counter(
            m.group(1) for l in outcomes if (m := re.search(r" source=(\S+)", l)))
    except KeyboardInterrupt:
        print("bench: interrupted", file=sys.stderr)
        return 130
    except (BenchError, RuntimeError, OSError) as e:
        print(f"bench: {type(e).__name__}: {e}", file=sys.stderr)
        return 1
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            signal.signal(sig, signal.SIG_IGN)
        b.stop()
        shutil.rmtree(workdir, ignore_errors=True)
    res["seconds"] = round(time.monotonic() - t0, 1)
    if args.merge:
        seconds = res["seconds"]
        skipped = [n for n in args.sections if (res.get(n) or {}).get("skipped")]
        if skipped:
            print("\n".join(report_peer(res) + report_backup(res) + report_grace(res)))
            print(f"bench: {', '.join(skipped)} skipped: nothing merged", file=sys.stderr)
            return 1
        res = merge_results(res, args)
        text = report(res, args)
        alone = {"peer": report_peer, "backup": report_backup, "grace": report_grace}.get(
            args.sections[0] if len(args.sections) == 1 else None)
        print("\n".join(alone(res)) if alone else text)
        print(f"merged {', '.join(args.sections)} ({seconds} s) into "
              f"{args.out_dir / 'results.json'}")
    else:
        text = report(res, args)
        print(text)
        print(f"logged outcomes: {dict(res['logged_outcomes'])}, sources: "
              f"{dict(res['logged_sources'])}; {res['seconds']} s in all")
    if args.out_dir:
        args.out_dir.mkdir(parents=True, exist_ok=True)
        header = ("# pam_twilio_sms benchmark: latest figures\n\n"
                  "Written by `make bench` (tests/bench/run_bench.py); plot: results.svg, "
                  "raw figures: results.json.\n\n")
        (args.out_dir / "results.md").write_text(header + text)
        (args.out_dir / "results.json").write_text(json.dumps(res, indent=1) + "\n")
        (args.out_dir / "results.svg").write_text(plot(res))
        print(f"wrote {args.out_dir}/results.md, results.json, results.svg")
    return 0


if __name__ == "__main__":
    sys.exit(main())
