#!/usr/bin/env python3
"""Fault injection: every system call and memory allocation of a login failed in turn.

The way SQLite tests its error paths: each login runs through real libpam (pamtester)
against the Twilio sandbox, and one thing in it fails. Four scenarios, each with a login
that types the right code and one that types a wrong code:

  files  the users object, state in stateDir (with globalSendLimit, so @global too)
  redis  state in a real redis-server (tests/harness/redis.py), stateDir the fallback;
         the numbers from a usersFile
  ldap   the number from a real slapd over ldaps (tests/harness/slapd.py); the lookup
         runs in a child process the module forks
  backup files plus a backupCodesFile (root 0600, one per worker in its own directory of
         the workdir); at the SMS prompt (or at "SMS unavailable; backup code: " when no
         SMS went out) the right login types a valid backup code instead of the SMS code,
         the wrong one a code of the right shape that is not in the set. Codes are single
         use: before a login a fresh set of 2 is made with the real admin command
         (twilio-sms-otp backup-codes USER --count 2: a separate process, before strace
         attaches, unseen by the shim) unless the file still holds the whole last set
         (after a wrong code, or a right one that failed before its removal); the right
         login types the set's second code, so that the first hash is checked and fails
         before the second matches. On its paths: the missing-file test and reading of
         the file, the flock on PATH.lock, Argon2id's 4 MiB (an mmap of libsodium's), the
         rewrite (temp file, fchown, fchmod, write, fsync, close, rename, directory fsync).
         Its second service, backup-down, has Twilio unreachable (apiBaseUrl at a port
         nothing listens on, maxRetries 0): no SMS, the code is typed at the backup prompt

System calls (strace --inject=SYSCALL:error=ERRNO:when=N): the service runs a gate first
(pam_exec of a gate script the suite writes, blocked on a lock the suite holds); strace attaches to
pamtester while it waits there, so a call's number N counts from just before the
module's pam_sm_authenticate, not from pamtester's start. strace counts per syscall and per
tracee (its manual: "Accounting of syscalls that are subject to injection is done per
syscall and per tracee"): the directory lookup's child counts from its fork, so in the
ldap scenario when=N fails the Nth call of the parent and the Nth of the child, both when
both make that many. A clean traced login of each kind counts the calls of each family
first; then every N from 1 to that count is run with each errno of the family. The backup
scenario sweeps four families of its own as well (BACKUP_FAMILIES: chown, chmod, close,
mmap), fstat with ENOENT too (BACKUP_ERRNOS: the missing-file test is an lstat) and, to stay
within its time, not send and recv (BACKUP_SKIPS): its network paths are the files
scenario's, swept there. Its backup-down service is swept for the families of the file's
lock, Argon2id and rewrite only (DOWN_FAMILIES: flock, write, fsync, rename, chown, chmod,
mmap): the rest of its path is the backup service's.

Allocations (tests/faults/failmalloc.so, LD_PRELOAD): nothing is counted before the
module's first own allocation; from then on each allocation belongs to its caller object
(the module, libcurl, libcrypto, cJSON, hiredis, libpam, pamtester, ...). Every allocation
of the module's own code is failed, one run each; of every other object all of them when
it makes at most OBJECT_FULL (40), else every STEPth with STEP chosen so that it gets about
OBJECT_FULL runs, from an offset derived from its name and the kind (deterministic; the
plan is printed). In the ldap scenario the directory child is swept the same way
(TSMS_FAILMALLOC_PROCESS=child: each child counts from its fork). The backup scenario gives
OBJECT_FULL only to the objects on its own paths (BACKUP_OBJECTS: libsodium, whose Argon2id
allocates, and libc) and a quarter of it to the others, whose paths (libcurl, OpenSSL,
cJSON) are the files scenario's, swept there; its backup-down service only the module's own.

Invariants of every run: pamtester (and the directory child) not killed by a signal;
done within the budget (the config's timeouts plus slack); never PAM_SUCCESS for a wrong
code, from pamtester or in the module's outcome line; when the result is not success,
the module's outcome line was logged (when the failed allocation was the logging's own,
libpam's or glibc's out-of-memory line stands for it); no process left in pamtester's
group; in stateDir no temporary file, every state file well-formed; in Redis every key
under the prefix, with a TTL, a hash of numbers; and then a normal login of the same user
with the right code (the SMS code, in the backup scenario too) succeeds.

In the backup scenario also: the file never corrupt or half written (no temp file
PATH.XXXXXX or anything else beside it and its PATH.lock, both root's with no group or
other bits; every line not blank or a comment "USER $argon2id$..." hashes; `twilio-sms-otp
backup-codes --list USER` exits 0 or 1, nothing on stderr, and counts the hashes the file
holds); its hashes only ever the set's, less at most one: one less after a success (the
module's outcome line or pamtester's), none less after a wrong code, none or one less after
a right code that failed (a code removed before a later failure is burned: that fails
closed); a code that left the file never works again (a second login typing it, with no
fault, fails and leaves the file as it was: never two successes with one code); neither
the typed code nor a hash in any log line.

A crash inside a library the module calls (libcrypto, hiredis, libldap, GnuTLS, ...),
on that library's own failed allocation, is no invariant of the module's: it is printed
("third-party crash", with the stack of the failed allocation and the crash site, from
the shim's handler) and fails the case only with TSMS_FAULTS_STRICT=1. A crash in the
module's code, or after the module's own allocation failed, always fails.

Run as root:  python3 tests/faults/run_faults.py [-k PATTERN] [-v]
Prints the counts per family, `PASS: name` or `FAIL: name: why` per case, then
`faults: N passed, N failed`.
"""

import collections
import contextlib
import fcntl
import json
import os
import queue
import random
import re
import select
import shutil
import stat
import subprocess
import sys
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.dont_write_bytecode = True  # leave no __pycache__ in the tree
sys.path.insert(0, str(HERE.parent))
from harness import redis as redis_harness  # noqa: E402
from harness import slapd as slapd_harness  # noqa: E402
from harness.core import REPO, CaseFailure, case, check, main  # noqa: E402
from harness.pam import (BACKUP_PROMPT_RE, MODULE, PAM_DIR, PROMPT_RE, SERVICE_PREFIX,  # noqa: E402
                          Harness, Run)
from harness.pam import prerequisite_problem as pam_prerequisite_problem  # noqa: E402
from harness.sandbox import extract_code, start_in_workdir, wrong_code  # noqa: E402
from harness.state import check_state_files  # noqa: E402
from harness.syslog import SyslogCapture, message  # noqa: E402
from harness.system import free_port, install_debs, kill_and_reap, write_file  # noqa: E402

SHIM = HERE / "failmalloc.so"
WORKERS = 2  # logins at once: one user, service and stateDir each
TWILIO_TIMEOUT = 4
LDAP_TIMEOUT = 3
REDIS_TIMEOUT = 2
# seconds a login may take: every timeout of the config (the directory's budget is its
# timeoutSeconds + 0.5 s), the lock wait of the state files (5 s) and slack for strace
BUDGET = TWILIO_TIMEOUT + LDAP_TIMEOUT + 0.5 + REDIS_TIMEOUT + 5 + 3
# allocation runs of a caller object (a library, the program) per kind and process
OBJECT_FULL = int(os.environ.get("TSMS_FAULTS_OBJECT_RUNS") or 40)
KINDS = ("right", "wrong")
WAIT4 = "61"  # x86_64's wait4 in /proc/PID/syscall: pamtester waits for the gate
READ = "0"  # and its read: pamtester waits for an answer

# the families of the module's paths, the syscalls each stands for, the errnos injected
FAMILIES = [
    ("open", ("openat", "open"), ("EACCES", "EMFILE")),
    ("read", ("read", "readv", "pread64"), ("EIO", "EINTR")),
    ("write", ("write", "writev", "pwrite64"), ("EIO", "ENOSPC")),
    ("fsync", ("fsync", "fdatasync"), ("EIO",)),
    ("rename", ("rename", "renameat", "renameat2"), ("EIO",)),
    ("flock", ("flock",), ("EAGAIN", "EINTR")),
    ("mkdir", ("mkdir", "mkdirat"), ("EACCES",)),
    ("fstat", ("fstat", "newfstatat", "statx"), ("EIO",)),
    ("connect", ("connect",), ("ECONNREFUSED", "ENETUNREACH")),
    ("send", ("sendto", "sendmsg", "sendmmsg"), ("ECONNRESET", "EAGAIN")),
    ("recv", ("recvfrom", "recvmsg"), ("ECONNRESET", "EAGAIN")),
]
# the backup scenario's own families, beyond FAMILIES: the temp file's owner and mode, its
# close (a late write error), Argon2id's 4 MiB (mmap). strace skips an injected call, so a
# "failed" close leaves its descriptor open (a real close frees it, EIO or not): a flock held
# on it makes the next lock of that file wait out its limit (the state lock's 5 s, in budget)
BACKUP_FAMILIES = [
    ("chown", ("fchown", "chown", "fchownat"), ("EPERM",)),
    ("chmod", ("fchmod", "chmod", "fchmodat"), ("EPERM",)),
    ("close", ("close",), ("EIO",)),
    ("mmap", ("mmap",), ("ENOMEM",)),
]
# more errnos of a family there: ENOENT from the missing-file test (lstat, a newfstatat)
# makes the file look gone, which the module must take as "no codes", not as an empty set
BACKUP_ERRNOS = {"fstat": ("EIO", "ENOENT")}
# the families the backup scenario leaves out: its network paths are the files scenario's
# (connect stands for them: its failure is what leads to the backup prompt)
BACKUP_SKIPS = ("send", "recv")
# caller objects on the backup paths, swept like the others; the rest more sparsely
BACKUP_OBJECTS = ("libsodium", "libc.so")
BACKUP, DOWN = "backup", "backup-down"
# the backup scenario's second service: Twilio unreachable, so the backup prompt; swept for
# the families of the backup file's use and rewrite only
DOWN_FAMILIES = ("flock", "write", "fsync", "rename", "chown", "chmod", "mmap")
CLI = REPO / "twilio-sms-otp"
BACKUP_COUNT = 2  # codes per fresh set: the right login types the last
BACKUP_SYMBOLS = "23456789abcdefghijkmnpqrstuvwxyz"
BACKUP_CODE_RE = re.compile(r"[2-9a-km-np-z]{4}-[2-9a-km-np-z]{4}")
# libsodium's crypto_pwhash_str: a 16-byte salt and a 32-byte hash in unpadded base64
BACKUP_HASH_RE = re.compile(r"\$argon2id\$v=19\$m=\d+,t=\d+,p=\d+\$[A-Za-z0-9+/]{22}"
                            r"\$[A-Za-z0-9+/]{43}")

GATE = """#!/bin/sh
# tests/faults: holds pamtester in pam_exec, before the module, until the suite lets go
: > "$1"
exec flock "$2" true
"""
TRACE_RE = re.compile(r"^(\d+)\s+([a-z_0-9]+)\(")
INJECTED_RE = re.compile(r"^(\d+)\s+(.*\(INJECTED\).*)$", re.M)
KILLED_RE = re.compile(r"^(\d+)\s+\+\+\+ killed by (SIG\w+)(.*)\+\+\+", re.M)
OUTCOME_RE = re.compile(r"(^| )result=(PAM_[A-Z_]+)")
# what stands for the outcome line when the allocation that failed was the logging's own
OOM_LINES = re.compile(r"^(v?asprintf: |out of memory \[)")
SUCCESS_TEXT = "pamtester: successfully authenticated"
REDIS_FIELDS = {"window_start", "sends", "last_send", "failures", "locked_until"}


# --------------------------------------------------------------------------- set-up

def prerequisite_problem():
    problem = pam_prerequisite_problem("/etc/pam.d, /dev/log and ptrace")
    if problem:
        return problem
    if shutil.which("strace") is None:
        problem = install_debs(["strace"])
        if problem or shutil.which("strace") is None:
            return f"strace missing and not installed: {problem}"
    if shutil.which("flock") is None:
        return "flock (util-linux) missing"
    if not SHIM.is_file() or SHIM.stat().st_mtime < SHIM.with_suffix(".c").stat().st_mtime:
        done = subprocess.run(["make", "-s", "-C", str(REPO), "faults-shim"],
                              capture_output=True, text=True)
        if done.returncode != 0 or not SHIM.is_file():
            return f"cannot build {SHIM}: {(done.stderr or done.stdout).strip()[-300:]}"
    return None


class Outbox:
    """The sandbox's outbox read from an offset on: each run reads only what it added."""

    def __init__(self, sandbox):
        self.path = sandbox.dir / "outbox.jsonl"

    def size(self):
        """Where the next run's lines begin: after the last whole line. Another worker's
        line may be half written (a write that crosses a page grows the file in steps),
        and an offset inside it would make the run read its tail as a line."""
        try:
            with open(self.path, "rb") as f:
                data = f.read()
        except FileNotFoundError:
            return 0
        return data.rfind(b"\n") + 1

    def since(self, offset):
        try:
            with open(self.path, "rb") as f:
                f.seek(offset)
                data = f.read()
        except FileNotFoundError:
            return []
        cut = data.rfind(b"\n")
        return [json.loads(l) for l in data[:cut + 1].splitlines() if l.strip()]


class Worker:
    """One user of the suite: its number, gate and, per scenario, its service and stateDir."""

    def __init__(self, suite, i):
        self.i = i
        self.user = f"fault{i}"
        self.phone = f"+1555555018{i}"
        self.last4 = self.phone[-4:]
        self.ready = suite.workdir / f"gate-{i}.ready"
        self.lock = suite.workdir / f"gate-{i}.lock"
        self.lock.touch()
        self.services = {}  # scenario -> (service, stateDir)
        self.configs = {}   # scenario -> config path
        # its backupCodesFile, alone in its directory (the temp files appear beside it)
        self.backup_file = suite.workdir / f"backup-{i}" / "codes"
        self.backup_set = ([], [])  # the codes last made and their hashes


class Suite:
    """The sandbox, the syslog capture, Redis, slapd and the workers."""

    def __init__(self, cleanups, verbose):
        workdir, self.sandbox = start_in_workdir(cleanups, "tsms-faults-")
        self.workdir = Path(workdir)
        self.syslog = SyslogCapture(workdir)
        cleanups.add(self.syslog.close)
        self.h = Harness(workdir, self.sandbox, self.syslog, verbose)
        cleanups.add(self.h.remove_services)
        self.verbose = verbose
        self.outbox = Outbox(self.sandbox)
        self.gate = write_file(self.workdir / "gate", GATE, mode=0o755)
        self.traces = self.workdir / "traces"
        self.traces.mkdir()
        self.workers = [Worker(self, i) for i in range(WORKERS)]
        self.cleanups = cleanups
        self.redis = None
        self.slapd = None
        self.cli = None  # the admin command (the backup scenario's copy)

    # ---- scenarios

    def scenario(self, name):
        """Fresh services and stateDirs of every worker for scenario name (for backup also
        a fresh backupCodesFile, and the backup-down service beside it)."""
        over = {"users": {w.user: w.phone for w in self.workers}}
        if name == "redis":
            if self.redis is None:
                problem = redis_harness.install_problem()
                check(problem is None, f"redis: {problem}")
                self.redis = redis_harness.start_in(self.cleanups, self.workdir)
            self.redis.flush()
            # the numbers from a usersFile here: its reading is on the paths too
            users_file = write_file(self.workdir / "users-redis", "".join(
                f"{w.user} {w.phone}\n" for w in self.workers))
            over = {"usersFile": users_file,
                    "redis": self.redis.module_config(timeoutSeconds=REDIS_TIMEOUT)}
        elif name == "ldap":
            if self.slapd is None:
                problem = slapd_harness.install_problem()
                check(problem is None, f"slapd: {problem}")
                self.slapd = slapd_harness.start_in(self.cleanups, self.workdir)
                bind_dn = self.slapd.add_service_account("pam-reader", "ldap-bind-Secret-4321")
                self.slapd.bind_dn = bind_dn
                for w in self.workers:
                    self.slapd.add_person(w.user, w.phone)
            s = self.slapd
            over = {"ldap": {"uri": s.ldaps_url, "caFile": s.ca_file, "bindDN": s.bind_dn,
                             "bindPassword": "ldap-bind-Secret-4321", "baseDN": s.people_dn,
                             "filter": "(uid=%u)", "timeoutSeconds": LDAP_TIMEOUT}}
        elif name == BACKUP:
            check(CLI.is_file(), f"{CLI} missing (run make)")
            # the scenario's own copy: a rebuild during the sweep (make relinks it in
            # place) would make runs fail to start it
            self.cli = self.workdir / CLI.name
            shutil.copy2(CLI, self.cli)
        for w in self.workers:
            if name == BACKUP:
                shutil.rmtree(w.backup_file.parent, ignore_errors=True)
                w.backup_file.parent.mkdir(mode=0o700)
                w.backup_set = ([], [])
                over = {**over, "backupCodesFile": str(w.backup_file)}
            state_dir = self.workdir / "state" / f"{name}-{w.i}"
            shutil.rmtree(state_dir, ignore_errors=True)
            state_dir.parent.mkdir(mode=0o700, exist_ok=True)
            cfg = self.h.config(stateDir=str(state_dir), maxAttempts=1, sendLimit=1000,
                                sendWindowSeconds=60, lockoutThreshold=1000,
                                globalSendLimit=1000000, timeoutSeconds=TWILIO_TIMEOUT,
                                **over)
            self.add_service(w, name, cfg, state_dir)
            if name == BACKUP:
                # Twilio unreachable (nothing listens there): the backup prompt instead
                down = {**cfg, "apiBaseUrl": f"https://127.0.0.1:{free_port()}",
                        "maxRetries": 0}
                self.add_service(w, DOWN, down, state_dir)

    def add_service(self, w, name, cfg, state_dir):
        """Writes cfg and a service of w for scenario name: the gate, then the module."""
        path = self.h.write_config(cfg, name=f"faults-{name}-{w.i}")
        w.configs[name] = str(path)
        service = f"{SERVICE_PREFIX}{os.getpid()}-faults-{name}-{w.i}"
        lines = [f"auth optional pam_exec.so quiet {self.gate} {w.ready} {w.lock}",
                 f"auth required {MODULE} config={path} debug"]
        (PAM_DIR / service).write_text("".join(l + "\n" for l in lines))
        os.chmod(PAM_DIR / service, 0o644)
        if service not in self.h.services:
            self.h.services.append(service)
        w.services[name] = (service, state_dir)

    # ---- one login

    def login(self, w, scenario, kind, *, trace=None, inject=None, shim=None, tag="run",
              backup=None):
        """One pamtester login of worker w typing the right or a wrong code (as soon as
        the SMS is in the outbox, prompt or not). trace: the syscalls strace records
        (attached at the gate), inject: (syscall, errno, N) for strace; shim: the
        allocation shim's settings; backup: a Backup whose code is typed instead of the
        SMS code (also at the backup prompt). Returns an Attempt."""
        service, state_dir = w.services[scenario]
        a = Attempt(w, scenario, kind, inject, shim)
        a.backup = backup
        run = a.run = Run(service)
        offset = self.outbox.size()
        mark = self.syslog.mark()
        env = None
        if shim is not None:
            a.report = self.traces / f"{tag}-{w.i}.shim"
            a.report.unlink(missing_ok=True)
            env = {**os.environ, "LD_PRELOAD": str(SHIM), "TSMS_FAILMALLOC_OBJECT": MODULE.name,
                   "TSMS_FAILMALLOC_REPORT": str(a.report),
                   **{f"TSMS_FAILMALLOC_{k.upper()}": str(v) for k, v in shim.items()}}
        gate = None
        if trace is not None:
            gate = os.open(w.lock, os.O_RDWR)
            fcntl.flock(gate, fcntl.LOCK_EX)
            w.ready.unlink(missing_ok=True)
        cmd = self.syslog.wrap(["pamtester", service, w.user, "authenticate"])
        start = time.monotonic()
        deadline = start + BUDGET
        proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, start_new_session=True, env=env,
                                cwd=self.workdir)
        a.pid = proc.pid
        tracer = None
        try:
            if trace is not None:
                tracer = self.attach(a, proc, trace, inject, deadline, tag)
                os.close(gate)
                gate = None
            self.converse(a, proc, offset, deadline)
        except Hang as e:
            a.hang = str(e)
        finally:
            if gate is not None:
                os.close(gate)
            run.elapsed = time.monotonic() - start
            if proc.poll() is None:
                a.left = "pamtester itself"
            else:
                a.left = left_in_group(proc.pid)
            kill_and_reap(proc)
            if tracer is not None:
                with contextlib.suppress(subprocess.TimeoutExpired):
                    tracer.wait(timeout=10)  # it ends with its last tracee
                kill_and_reap(tracer)
        run.status = proc.returncode
        run.outbox = self.outbox.since(offset)
        run.raw_logs = self.syslog.collect(mark)
        run.logs = [message(l) for l in run.raw_logs]
        if tracer is not None:
            a.read_trace()
        if shim is not None:
            a.read_report(proc.pid)
        a.state_dir = state_dir
        if self.verbose:
            print(f"[{scenario} {kind} {inject or shim}] {w.user}\n{run.describe()}", flush=True)
        return a

    def attach(self, a, proc, trace, inject, deadline, tag):
        """Waits until pamtester waits for the gate, attaches strace (recording trace, with
        inject) and returns it; the caller then opens the gate."""
        pid = proc.pid
        while not (a.worker.ready.exists() and syscall_of(pid) == WAIT4 and
                   comm_of(pid) == "pamtester"):
            if proc.poll() is not None or time.monotonic() > deadline:
                raise Hang(f"pamtester never reached the gate (exit {proc.returncode})")
            time.sleep(0.002)
        a.trace = self.traces / f"{tag}-{a.worker.i}.trace"
        cmd = ["strace", "-f", "-q", "-y", "-o", str(a.trace), "-e", f"trace={','.join(trace)}"]
        if inject is not None:
            syscall, errno, n = inject
            cmd += ["-e", f"inject={syscall}:error={errno}:when={n}"]
        tracer = subprocess.Popen(cmd + ["-p", str(pid)], stdin=subprocess.DEVNULL,
                                  stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                  start_new_session=True)
        while tracer_of(pid) != tracer.pid:
            if tracer.poll() is not None:
                raise CaseFailure(f"strace -p {pid} exited {tracer.returncode}: "
                                  f"{tracer.stderr.read().decode(errors='replace')[-300:]}")
            if time.monotonic() > deadline:
                raise Hang("strace did not attach")
            time.sleep(0.002)
        return tracer

    def converse(self, a, proc, offset, deadline):
        """Reads pamtester's output to its end; types the code (right or wrong) once the
        SMS to the worker's number is in the outbox, then closes stdin. A prompt with no
        SMS behind it (1 s) gets stdin closed: there is no code to type. With a.backup its
        code is typed instead, at the first prompt (the SMS or the backup one), SMS, or
        read of stdin (a prompt whose write failed: no SMS behind the backup prompt)."""
        run, w = a.run, a.worker
        out = b""
        answered = False
        prompt_seen = None
        fd = proc.stdout.fileno()
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise Hang(f"still running after {BUDGET:.1f}s; output {run.output!r}")
            ready, _, _ = select_read(fd, min(left, 0.02))
            if ready:
                chunk = os.read(fd, 4096)
                if not chunk:
                    break
                out += chunk
                run.output = out.decode("utf-8", errors="replace")
            if answered:
                continue
            typed = None
            sent = [m for m in self.outbox.since(offset) if str(m.get("to", "")).endswith(w.last4)]
            if a.backup is not None and (sent or PROMPT_RE.search(run.output) or
                                         BACKUP_PROMPT_RE.search(run.output) or
                                         waits_for_input(proc.pid)):
                typed = a.backup.typed  # in place of the SMS code, right or wrong
            elif sent:
                code = extract_code(sent[0].get("body"))
                run.codes.append(code)
                typed = code if a.kind == "right" else wrong_code(code)
            if typed is not None:
                with contextlib.suppress(BrokenPipeError):
                    proc.stdin.write((typed + "\n").encode())
                    proc.stdin.flush()
                with contextlib.suppress(BrokenPipeError):
                    proc.stdin.close()
                answered = True
            elif PROMPT_RE.search(run.output):
                prompt_seen = prompt_seen or time.monotonic()
                if time.monotonic() - prompt_seen > 1.0:
                    with contextlib.suppress(BrokenPipeError):
                        proc.stdin.close()
                    answered = True
        try:
            proc.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            raise Hang("pamtester closed its output but did not exit") from None

    # ---- checks

    def check_state(self, a, when):
        """stateDir: root-only files, no temporary one, every state file well-formed;
        Redis: every key under the prefix, each with a TTL."""
        problems = []
        if a.state_dir.exists():
            try:
                check_state_files(a.state_dir)
            except CaseFailure as e:
                problems.append(f"{when}: {e}")
        if a.scenario == "redis":
            for key, ttl in self.redis.keys(0).items():
                if not (isinstance(key, str) and key.startswith(redis_harness.KEY_PREFIX)) or ttl <= 0:
                    problems.append(f"{when}: Redis key {key!r}, TTL {ttl}")
                    continue
                try:
                    fields = self.redis.hash(key)
                except (ValueError, redis_harness.ReplyError) as e:
                    problems.append(f"{when}: Redis key {key!r} is not a hash of numbers: {e}")
                    continue
                if not fields or set(fields) - REDIS_FIELDS:
                    problems.append(f"{when}: Redis key {key!r} holds {sorted(fields)}")
        return problems

    def fresh_backup(self, w, kind):
        """What a login of kind types: the last code of a whole set of BACKUP_COUNT, or one
        of its shape not in it. The set is made anew (the admin command, outside any
        fault) unless the file still holds all of the last one made (nothing was used)."""
        hashes, problems = self.read_backup(w, listed=False)
        if problems or hashes != w.backup_set[1]:
            done = subprocess.run([str(self.cli), "--config", w.configs[BACKUP],
                                   "backup-codes", w.user, "--count", str(BACKUP_COUNT)],
                                  capture_output=True, text=True, timeout=30)
            codes = done.stdout.split()
            check(done.returncode == 0 and len(codes) == BACKUP_COUNT and
                  all(BACKUP_CODE_RE.fullmatch(c) for c in codes),
                  f"backup-codes {w.user}: exit {done.returncode}, {len(codes)} codes, "
                  f"stderr {done.stderr.strip()[-200:]!r}")
            hashes, problems = self.read_backup(w, listed=False)
            check(not problems and len(hashes) == BACKUP_COUNT,
                  f"after backup-codes {w.user}: {len(hashes)} hashes; {problems}")
            w.backup_set = (codes, hashes)
        codes = w.backup_set[0]
        if kind == "right":
            return Backup(codes[-1], hashes)
        rng = random.Random(f"{w.user} {' '.join(codes)}")
        while True:
            symbols = "".join(rng.choice(BACKUP_SYMBOLS) for _ in range(8))
            code = f"{symbols[:4]}-{symbols[4:]}"
            if code not in codes:
                return Backup(code, hashes)

    def read_backup(self, w, listed=True):
        """(the user's hashes in order, problems) of w's backupCodesFile and its directory:
        only the file and its lock, both root's without group or other bits, every line
        blank, a comment or "USER HASH ...", the user on one line at most, and (listed)
        `backup-codes --list USER` agreeing with it, silent on stderr."""
        problems, hashes, lines = [], [], 0
        path, d = w.backup_file, w.backup_file.parent
        extra = sorted(set(os.listdir(d)) - {path.name, path.name + ".lock"})
        if extra:
            problems.append(f"beside {path}: {extra}")
        for f in (path, Path(f"{path}.lock")):
            try:
                st = os.lstat(f)
            except FileNotFoundError:
                if f == path:
                    problems.append(f"{path} is gone")
                continue
            if not (stat.S_ISREG(st.st_mode) and st.st_uid == 0 and st.st_mode & 0o077 == 0):
                problems.append(f"{f}: mode {st.st_mode:o} uid {st.st_uid}")
        text = path.read_text(errors="replace") if path.is_file() else ""
        if text and not text.endswith("\n"):
            problems.append(f"{path} does not end with a newline: ...{text[-60:]!r}")
        for n, line in enumerate(text.splitlines(), 1):
            fields = line.split()
            if not fields or fields[0].startswith("#"):
                continue
            if len(fields) < 2 or not all(BACKUP_HASH_RE.fullmatch(h) for h in fields[1:]):
                problems.append(f"{path}:{n} is not USER HASH ...: {line[:100]!r}")
            elif fields[0] != w.user:
                problems.append(f"{path}:{n} of another user: {fields[0]!r}")
            else:
                lines += 1
                hashes = fields[1:]
        if lines > 1:
            problems.append(f"{path}: user {w.user} on {lines} lines")
        if not listed:
            return hashes, problems
        done = subprocess.run([str(self.cli), "--config", w.configs[BACKUP], "backup-codes",
                               "--list", w.user], capture_output=True, text=True, timeout=30)
        m = re.fullmatch(rf"{w.user}: (?:(\d+) backup codes? left|no backup codes)\n", done.stdout)
        said = int(m.group(1) or 0) if m else None
        if done.returncode not in (0, 1) or done.stderr or said != len(hashes) or \
                done.returncode != (0 if hashes else 1):
            problems.append(f"backup-codes --list {w.user}: exit {done.returncode}, "
                            f"{done.stdout.strip()!r}, stderr {done.stderr.strip()[-160:]!r}, "
                            f"the file holds {len(hashes)}")
        return hashes, problems

    def check_backup(self, a, when):
        """The backup invariants of a login (module docstring); a code that left the
        file is typed again by a second login, which must fail and change nothing."""
        hashes, problems = self.read_backup(a.worker)
        problems = [f"{when}: {p}" for p in problems]
        before = collections.Counter(a.backup.hashes)
        added = collections.Counter(hashes) - before
        removed = sum((before - collections.Counter(hashes)).values())
        success = (a.run.status == 0 and SUCCESS_TEXT in a.run.output) or \
            "PAM_SUCCESS" in outcomes(a.run)
        if added:
            problems.append(f"{when}: {sum(added.values())} hashes not of the set in the file")
        if success and removed != 1:
            problems.append(f"{when}: PAM_SUCCESS by a backup code, and {removed} of "
                            f"{len(before)} hashes left the file (not 1)")
        elif a.kind == "wrong" and removed:
            problems.append(f"{when}: a wrong code, and {removed} hashes left the file")
        elif removed > 1:
            problems.append(f"{when}: {removed} hashes left the file")
        a.backup.fate = "used" if success else "burned" if removed else "kept"
        logs = "\n".join(a.run.raw_logs).lower()
        typed = a.backup.typed.lower()
        if typed in logs or typed.replace("-", "") in logs or "$argon2id$" in logs:
            problems.append(f"{when}: the typed backup code or a hash in the logs")
        if removed == 1 and not added and a.kind == "right":
            again = self.login(a.worker, BACKUP, "wrong", tag="again",
                               backup=Backup(a.backup.typed, hashes))
            reused = again.run.status == 0 or "PAM_SUCCESS" in outcomes(again.run)
            if reused:
                problems.append(f"{when}: the used code worked a second time: "
                                f"{again.run.output.strip()[-120:]!r}, {outcomes(again.run)}")
            problems += [f"{when}, typing the used code again: {p}"
                         for p in again.invariants() if not reused or "SUCCESS" not in p]
            after, _ = self.read_backup(a.worker, listed=False)
            if after != hashes:
                problems.append(f"{when}, typing the used code again: the file changed "
                                f"({len(hashes)} hashes, then {len(after)})")
        return problems

    def attempt(self, w, scenario, kind, *, inject=None, shim=None):
        """An injected login, its checks, then a normal login with the right code."""
        trace = None
        if inject is not None:
            trace = [inject[0]]
        elif scenario == "ldap":
            trace = ["none"]  # strace only to see the directory child killed by a signal
        backup = self.fresh_backup(w, kind) if scenario in (BACKUP, DOWN) else None
        a = self.login(w, scenario, kind, trace=trace, inject=inject, shim=shim, backup=backup)
        a.problems += a.invariants()
        a.problems += self.check_state(a, "after the fault")
        if backup is not None:
            a.problems += self.check_backup(a, "after the fault")
        b = self.login(w, BACKUP if scenario == DOWN else scenario, "right", tag="next")
        if b.hang or b.run.status != 0 or SUCCESS_TEXT not in b.run.output:
            a.problems.append(f"the next normal login failed: status {b.run.status}, "
                              f"{b.hang or b.run.output.strip()[-160:]!r}, "
                              f"outcomes {outcomes(b.run)}")
        a.problems += self.check_state(b, "after the next login")
        return a


class Hang(Exception):
    """The login outlived its budget."""


class Backup:
    """The backup code a login types (right or wrong) and the user's hashes before it."""

    def __init__(self, typed, hashes):
        self.typed, self.hashes = typed, hashes
        self.fate = None  # after the login: "used" (success), "burned" (removed, failed), "kept"


def print_backup_fates(scenario, attempts):
    """What the backup logins did with their codes, per service and kind."""
    fates = collections.Counter((a.scenario, a.kind, a.backup.fate) for a in attempts
                                if a is not None and a.backup is not None and a.backup.fate)
    for service in sorted({k[0] for k in fates}):
        shown = "; ".join(f"{kind}: " + ", ".join(f"{fates[(service, kind, f)]} {f}"
                                                   for f in ("used", "burned", "kept")
                                                   if fates[(service, kind, f)])
                          for kind in KINDS if any(k[:2] == (service, kind) for k in fates))
        print(f"  {service} codes: {shown}", flush=True)


class Attempt:
    """One login and what it left: the Run, strace's record, the shim's report."""

    def __init__(self, worker, scenario, kind, inject, shim):
        self.worker, self.scenario, self.kind = worker, scenario, kind
        self.inject, self.shim = inject, shim
        self.run = None
        self.pid = None
        self.hang = None
        self.left = None
        self.trace = None
        self.report = None
        self.counts = collections.Counter()  # (pid, syscall) -> calls
        self.pids = []                      # tracees in order of appearance
        self.injected = []                  # the calls that failed, as strace printed them
        self.killed = []                    # (pid, signal) of tracees killed by a signal
        self.shim_counts = {}               # "main"/"child" -> counted allocations
        self.failed_alloc = None            # the shim's "fail ..." line
        self.objects = {}                   # "main"/"child" -> {caller object: allocations}
        self.state_dir = None
        self.problems = []
        self.crashes = []                   # (pid, frames) of the shim's crash lines
        self.crashed = []                   # third-party crashes (third_party_crash)
        self.backup = None                  # the Backup typed (the backup scenario)

    def read_trace(self):
        text = self.trace.read_text(errors="replace") if self.trace.exists() else ""
        for line in text.splitlines():
            m = TRACE_RE.match(line)
            if m:
                pid = int(m.group(1))
                if pid not in self.pids:
                    self.pids.append(pid)
                self.counts[(pid, m.group(2))] += 1
        self.injected = [m.group(2)[:160] for m in INJECTED_RE.finditer(text)]
        self.killed = [(int(m.group(1)), m.group(2)) for m in KILLED_RE.finditer(text)]

    def read_report(self, pid):
        text = self.report.read_text(errors="replace") if self.report.exists() else ""
        for line in text.splitlines():
            m = re.match(r"count pid=(\d+) main=(\d+) child=(\d+)$", line)
            if m and int(m.group(1)) == pid:
                self.shim_counts = {"main": int(m.group(2)), "child": int(m.group(3))}
            elif line.startswith("fail "):
                self.failed_alloc = line
            elif m := re.match(r"crash sig=\d+ pid=(\d+) child=\d frames=(.*)$", line):
                self.crashes.append((int(m.group(1)), m.group(2).split("|")))
            elif (m := re.match(r"objects pid=(\d+) (main|child)((?: \S+=\d+)*)$", line)) and \
                    int(m.group(1)) == pid:
                self.objects[m.group(2)] = {k: int(v) for k, v in
                                            (f.rsplit("=", 1) for f in m.group(3).split())}

    def where(self):
        """The fault in words, for a reproducer."""
        if self.inject:
            sc, errno, n = self.inject
            what = f"strace --inject={sc}:error={errno}:when={n}"
            if self.injected:
                what += f" [{'; '.join(self.injected)}]"
            elif self.trace is not None:
                what += " [not reached]"
            return what
        if self.shim:
            what = " ".join(f"TSMS_FAILMALLOC_{k.upper()}={v}" for k, v in self.shim.items())
            if self.failed_alloc:
                frames = re.search(r"frames=(.*)", self.failed_alloc)
                shown = [f for f in (frames.group(1).split("|") if frames else [])
                         if not f.startswith("failmalloc.so:")][:6]
                what += f" [{' < '.join(shown)}]"
            else:
                what += " [not reached]"
            return what
        return "no fault"

    def crash_site(self, pid):
        """Where pid crashed (the shim's crash line): its first frame outside the shim,
        libc and the loader, as OBJ:SYM+OFF, or None."""
        for crash_pid, frames in self.crashes:
            if crash_pid == pid:
                for f in frames:
                    if not re.match(r"(failmalloc\.so|libc\.so\.6|ld-linux[^:]*):", f):
                        return f
        return None

    def third_party_crash(self, pid):
        """The crash site of pid when both it and the failed allocation are a library's
        (neither is the module's code), else None."""
        site = self.crash_site(pid)
        if not site or MODULE.name in site or self.failed_alloc is None:
            return None
        frames = re.search(r"frames=(.*)", self.failed_alloc).group(1).split("|")
        caller = next((f for f in frames if not f.startswith("failmalloc.so:")), "")
        if MODULE.name in caller:
            return None
        return f"{site} (the failed allocation: {caller})"

    def loader_fatal(self):
        """glibc's dynamic loader ended the process on its own failed allocation (exit 127,
        "cannot allocate memory for thread-local data", say while getpwnam_r loads an NSS
        module): like a third-party crash, nothing of the module's. None otherwise."""
        run = self.run
        if run.status != 127 or self.failed_alloc is None or \
                not re.search(r"cannot allocate memory", run.output):
            return None
        frames = re.search(r"frames=(.*)", self.failed_alloc).group(1).split("|")
        caller = next((f for f in frames if not f.startswith("failmalloc.so:")), "")
        if not caller.startswith("ld-linux") or MODULE.name in caller:
            return None
        return f"ld.so: {run.output.strip()[-80:]!r} (the failed allocation: {caller})"

    def oom_in_logging(self):
        """The failed allocation was the logging's own (pam_syslog, syslog)."""
        return self.failed_alloc is not None and re.search(
            r"libpam\.so[^|]*:pam_v?syslog|libc\.so[^|]*:v?syslog|:__vsyslog", self.failed_alloc)

    def invariants(self):
        run, problems = self.run, []
        if self.hang:
            problems.append(f"hang: {self.hang}")
        died = [(self.pid, f"signal {-run.status}")] if run.status is not None and \
            run.status < 0 and not self.hang else []
        died += [(pid, sig) for pid, sig in self.killed if pid != self.pid]
        for pid, sig in died:
            if sig == "SIGKILL":
                continue  # the module ends a directory child that outlives its budget
            who = "pamtester" if pid == self.pid else f"directory child {pid}"
            culprit = self.third_party_crash(pid)
            if culprit:
                # a library the module calls crashed on its own failed allocation:
                # reported (and failed under TSMS_FAULTS_STRICT), not the module's code
                self.crashed.append(f"{who} died of {sig} in {culprit}")
                continue
            problems.append(f"{who} killed by {sig}" +
                            (f" at {self.crash_site(pid)}" if self.crash_site(pid) else ""))
        loader = self.loader_fatal()
        if loader:
            self.crashed.append(f"pamtester ended by {loader}")
        cores = list(Path(self.worker_dir()).glob("core*"))
        if cores:
            problems.append(f"core files {cores}")
        if run.elapsed > BUDGET:
            problems.append(f"took {run.elapsed:.1f}s, budget {BUDGET:.1f}s")
        if self.left:
            problems.append(f"processes left in pamtester's group: {self.left}")
        success = run.status == 0 and SUCCESS_TEXT in run.output
        if self.kind == "wrong" and (success or run.status == 0):
            problems.append(f"PAM_SUCCESS for a wrong code: {run.output.strip()[-160:]!r}")
        results = outcomes(run)
        # (after a right code the stack may still fail where the module succeeded: libpam's
        # audit message, a failed write of pamtester's own; that is libpam's to decide)
        if self.kind == "wrong" and "PAM_SUCCESS" in results:
            problems.append(f"the module logged PAM_SUCCESS for a wrong code: {results}")
        host_died = any(c.startswith("pamtester ") for c in self.crashed)
        if not success and not self.hang and not host_died:
            if not results and not (self.oom_in_logging() and any(
                    OOM_LINES.search(l) for l in run.logs)):
                problems.append(f"no outcome line for status {run.status} "
                                f"({run.output.strip()[-120:]!r}); module lines {run.module_logs!r}")
        return problems

    def worker_dir(self):
        return self.state_dir.parent.parent


def outcomes(run):
    return [m.group(2) for l in run.module_logs if (m := OUTCOME_RE.search(l))]


def select_read(fd, timeout):
    return select.select([fd], [], [], timeout)


def syscall_of(pid):
    try:
        return Path(f"/proc/{pid}/syscall").read_text().split(" ", 1)[0]
    except OSError:
        return None


def waits_for_input(pid):
    """pid is blocked in a read of its stdin (the conversation waits for an answer)."""
    try:
        fields = Path(f"/proc/{pid}/syscall").read_text().split()
    except OSError:
        return False
    return fields[:2] == [READ, "0x0"]


def comm_of(pid):
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip()
    except OSError:
        return None


def tracer_of(pid):
    try:
        m = re.search(r"^TracerPid:\s+(\d+)", Path(f"/proc/{pid}/status").read_text(), re.M)
    except OSError:
        return None
    return int(m.group(1)) if m else None


def left_in_group(pgid):
    """Processes (not zombies) still in process group pgid, as "pid comm" strings."""
    left = []
    for entry in filter(str.isdigit, os.listdir("/proc")):
        try:
            st = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        comm = st[st.find("(") + 1:st.rfind(")")]
        fields = st.rsplit(")", 1)[1].split()
        if int(fields[2]) == pgid and fields[0] != "Z":
            left.append(f"{entry} {comm}")
    return ", ".join(left)


# --------------------------------------------------------------------------- sweeps

def run_jobs(suite, jobs):
    """Runs attempt(**job) for every job, WORKERS at once; returns the Attempts in order.
    TSMS_FAULTS_EVERY=K (for working on the suite) keeps every Kth job only."""
    every = int(os.environ.get("TSMS_FAULTS_EVERY") or 1)
    jobs = jobs[::every]
    todo = queue.Queue()
    for i, job in enumerate(jobs):
        todo.put((i, job))
    done = [None] * len(jobs)
    errors = []

    def work(w):
        while True:
            try:
                i, job = todo.get_nowait()
            except queue.Empty:
                return
            try:
                done[i] = suite.attempt(w, **job)
            except Exception as e:  # a harness problem: reported, the others go on
                errors.append(f"{job}: {type(e).__name__}: {e}")

    threads = [threading.Thread(target=work, args=(w,), daemon=True) for w in suite.workers]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    check(not errors, f"{len(errors)} runs could not be made: {errors[:3]}")
    return done


def clean_counts(suite, scenario, kind):
    """A traced login with no fault: {syscall: [calls of the parent, of the child]}."""
    w = suite.workers[0 if kind == "right" else 1]
    backup = suite.fresh_backup(w, kind) if scenario in (BACKUP, DOWN) else None
    a = suite.login(w, scenario, kind, trace=["all"], tag=f"count-{kind}", backup=backup)
    problems = a.invariants() + suite.check_state(a, "after a clean login")
    if backup is not None:
        problems += suite.check_backup(a, "after a clean login")
    check(not problems, f"clean {kind} login: {problems}")
    want = 0 if kind == "right" else 1
    check(a.run.status == want, f"clean {kind} login: exit {a.run.status}: {a.run.output!r}")
    main_pid = a.pid
    counts = collections.defaultdict(lambda: [0, 0])
    for (pid, sc), n in a.counts.items():
        counts[sc][0 if pid == main_pid else 1] += n
    others = len(set(a.pids) - {main_pid})
    check(others <= (1 if scenario == "ldap" else 0),
          f"clean {kind} login: {others} more tracees than expected: {a.pids}")
    return counts


def report_failures(attempts, limit=4, shown=40):
    """Prints every run that broke an invariant (the first `shown`), then fails the case
    with the first `limit` of them."""
    bad = [a for a in attempts if a is not None and a.problems]
    if not bad:
        return
    lines = [f"{a.scenario}/{a.kind} {a.where()}: {'; '.join(a.problems)}" for a in bad]
    for line in lines[:shown]:
        print(f"  broken: {' '.join(line.split())}", flush=True)
    raise CaseFailure(f"{len(bad)} of {len(attempts)} runs broke an invariant: " +
                      " || ".join(lines[:limit]))


def syscall_plan(suite, scenario, families):
    """The jobs of scenario (a service of the suite's) for families, from a clean login of
    each kind: (jobs, printed rows, the counts of the calls no family has)."""
    counts = {kind: clean_counts(suite, scenario, kind) for kind in KINDS}
    swept = {sc for _, calls, _ in families for sc in calls}
    jobs, rows = [], []
    for family, calls, errnos in families:
        found = {kind: [0, 0] for kind in KINDS}
        runs = 0
        for sc in calls:
            for kind in KINDS:
                parent, child = counts[kind].get(sc, [0, 0])
                found[kind][0] += parent
                found[kind][1] += child
                for n in range(1, max(parent, child) + 1):
                    for errno in errnos:
                        jobs.append({"scenario": scenario, "kind": kind,
                                     "inject": (sc, errno, n)})
                        runs += 1
        rows.append((scenario, family, found, runs, errnos))
    others = collections.Counter()
    for kind in KINDS:
        for sc, (p, c) in counts[kind].items():
            if sc not in swept:
                others[sc] += p + c
    return jobs, rows, others


def syscall_sweep(suite, scenario):
    suite.scenario(scenario)
    plans = [(scenario, FAMILIES)]
    if scenario == BACKUP:
        mine = [(name, calls, BACKUP_ERRNOS.get(name, errnos))
                for name, calls, errnos in FAMILIES if name not in BACKUP_SKIPS]
        mine += BACKUP_FAMILIES
        plans = [(BACKUP, mine), (DOWN, [f for f in mine if f[0] in DOWN_FAMILIES])]
    jobs, rows, others = [], [], None
    for service, families in plans:
        more_jobs, more_rows, not_swept = syscall_plan(suite, service, families)
        jobs += more_jobs
        rows += more_rows
        others = others if others is not None else not_swept  # the first plan's
    start = time.monotonic()
    attempts = run_jobs(suite, jobs)
    took = time.monotonic() - start
    reached = collections.Counter()
    for a in attempts:
        if a is not None and a.injected:
            reached[(a.scenario, a.inject[0])] += 1
    for service, family, found, runs, errnos in rows:
        hit = sum(reached[(service, sc)] for sc in FAMILY_CALLS[family])
        shown = ", ".join(f"{k} {p}" + (f"+{c} in the child" if c else "")
                          for k, (p, c) in found.items())
        print(f"  {service} {family:7} calls: {shown}; runs {runs} "
              f"({'/'.join(errnos)}), injected {hit}, sampled out 0", flush=True)
    print(f"  {scenario}: {len(jobs)} runs in {took:.0f}s; not swept: "
          f"{', '.join(f'{k} {v}' for k, v in others.most_common(8))}", flush=True)
    print_backup_fates(scenario, attempts)
    report_failures(attempts)


FAMILY_CALLS = {family: calls for family, calls, _ in FAMILIES + BACKUP_FAMILIES}


def shim_counts(suite, scenario, kind):
    """A login with the shim counting only: {"main"/"child": {caller object: allocations}}
    from the module's first allocation on, and the module's own ({"main"/"child": n})."""
    w = suite.workers[0 if kind == "right" else 1]
    backup = suite.fresh_backup(w, kind) if scenario in (BACKUP, DOWN) else None
    a = suite.login(w, scenario, kind, shim={"scope": "module", "n": 0}, tag=f"count-{kind}",
                    backup=backup)
    want = 0 if kind == "right" else 1
    check(a.run.status == want, f"clean {kind} login with the shim: exit {a.run.status}: "
                                f"{a.run.output.strip()[-160:]!r}")
    check(a.shim_counts and a.objects, f"{kind} login with the shim: no count in {a.report}")
    return a.objects, a.shim_counts


def allocation_plan(objects, own, kind, process, full=lambda name: OBJECT_FULL):
    """The runs of one kind and process: every allocation of the module's own (scope
    module), and for each other caller object all its allocations when it has at most
    full(name) (OBJECT_FULL), else every STEPth so that it gets about that many runs, from
    an offset that moves with the object and the kind. Returns (jobs' shim settings,
    printed rows)."""
    plans = [({"scope": "module", "process": process, "n": n}) for n in range(1, own + 1)]
    rows = [f"module's own {own}: all {own}"]
    for name, total in sorted(objects.items(), key=lambda kv: -kv[1]):
        if MODULE.name in name:
            continue
        step = max(1, -(-total // full(name)))
        first = 1 + (sum(map(ord, name)) + 3 * KINDS.index(kind)) % step
        ns = range(first, total + 1, step)
        plans += [{"scope": f"object:{name}", "process": process, "n": n} for n in ns]
        rows.append(f"{name} {total}: " + (f"all {total}" if step == 1 else
                                           f"every {step}th from #{first}, {len(ns)} runs"))
    return plans, rows


def backup_object_runs(name):
    """The backup scenario's runs of a caller object: OBJECT_FULL for those on its own
    paths (libsodium's Argon2id, libc), a quarter for the rest (libcurl, OpenSSL, cJSON,
    ...), whose paths are the files scenario's and swept there at OBJECT_FULL."""
    if any(own in name for own in BACKUP_OBJECTS):
        return OBJECT_FULL
    return max(1, OBJECT_FULL // 4)


def allocation_sweep(suite, scenario):
    suite.scenario(scenario)
    processes = ("main", "child") if scenario == "ldap" else ("main",)
    jobs = []
    # backup-down: the module's own allocations only (the others' paths are backup's)
    for service in (scenario, DOWN) if scenario == BACKUP else (scenario,):
        for kind in KINDS:
            objects, own = shim_counts(suite, service, kind)
            for process in processes:
                plans, rows = allocation_plan(
                    {} if service == DOWN else objects[process], own[process], kind, process,
                    **({"full": backup_object_runs} if scenario == BACKUP else {}))
                jobs += [{"scenario": service, "kind": kind, "shim": p} for p in plans]
                total = sum(objects[process].values())
                print(f"  {service} allocations {kind} {process}: {total} from the module's "
                      f"first on, {len(plans)} runs ({total - len(plans)} sampled out): "
                      f"{'; '.join(rows)}", flush=True)
    start = time.monotonic()
    attempts = run_jobs(suite, jobs)
    reached = sum(1 for a in attempts if a is not None and a.failed_alloc)
    print(f"  {scenario} allocations: {len(jobs)} runs in {time.monotonic() - start:.0f}s, "
          f"{reached} failed an allocation", flush=True)
    print_backup_fates(scenario, attempts)
    crashed = [a for a in attempts if a is not None and a.crashed]
    by_site = collections.OrderedDict()
    for a in crashed:
        for c in a.crashed:
            key = re.sub(r"(directory child) \d+", r"\1", c)
            key = re.sub(r"\+0x[0-9a-f]+", "", key)
            by_site.setdefault(key, []).append(a)
    for key, runs in by_site.items():
        print(f"  third-party crash, {len(runs)} runs: {scenario}/{runs[0].kind}: {key}; "
              f"e.g. {runs[0].where()}", flush=True)
    if crashed and os.environ.get("TSMS_FAULTS_STRICT"):
        for a in crashed:
            a.problems += a.crashed
    report_failures(attempts)


# --------------------------------------------------------------------------- cases

@case
def faults_files_syscalls(s):
    syscall_sweep(s, "files")


@case
def faults_redis_syscalls(s):
    syscall_sweep(s, "redis")


@case
def faults_ldap_syscalls(s):
    syscall_sweep(s, "ldap")


@case
def faults_backup_syscalls(s):
    syscall_sweep(s, "backup")


@case
def faults_files_allocations(s):
    allocation_sweep(s, "files")


@case
def faults_redis_allocations(s):
    allocation_sweep(s, "redis")


@case
def faults_ldap_allocations(s):
    allocation_sweep(s, "ldap")


@case
def faults_backup_allocations(s):
    allocation_sweep(s, "backup")


def setup(cleanups, verbose):
    return Suite(cleanups, verbose)


if __name__ == "__main__":
    sys.exit(main("faults", __doc__.splitlines()[0], setup=setup, prepare=prerequisite_problem,
                  verbose_help="print every login", time_limit=1500, one_line=True,
                  timed=True))
