#!/usr/bin/env python3
"""Integration tests: a hostile caller's signals against setuid su.

As root on Debian, on run_integration.py's harness (imported: its users, Twilio sandbox,
syslog capture, private mount namespaces and clean-up): tsmsuser3 (the caller), who knows
tsmsuser4's password but not its phone, runs setuid `su -c '/usr/bin/id -un' tsmsuser4`
through runuser, against Debian's su service with the module. su keeps the caller's real
uid, so the caller may send it, and the children it forks, any signal at any moment
(SIGSTOP, SIGCONT, SIGKILL) and watch it in /proc. The attacker is a real process of the
caller: attacker.py (beside this file, copied to a directory of the caller's and run with
`runuser -u tsmsuser3`) finds su below the runuser that started it and signals su or its
child at its moment, seen in /proc/net/tcp (the request to Twilio is on its way),
/proc/PID/stat (a child of su) or /proc/locks (su holds a flock). Each case gives the
module its own config and stateDir:

  fail-open  failMode open. su is stopped past timeoutSeconds while its request is in
             flight (the sandbox answers after 2 s), then continued; the directory
             lookup's child is killed, and stopped (ldap.uri: a listener that never
             answers). The command never runs as the target: where the caller can signal
             the process an outage does not open (PAM_AUTHINFO_UNAVAIL, logged as
             `failMode open ignored: the caller can signal this process`).
  locks      su is stopped while it holds a lock: the global counter's (globalSendLimit,
             su to the caller's own mapped account), the victim's state file's, the backup
             codes file's (a backup-code-shaped answer being checked). While su stays
             stopped, another user's sudo and the victim's next su still get in with the
             right code: a stop while a lock is held fails (EPERM) and succeeds once none is.
  counting   the cooldown active (no SMS, so no state write before the prompt) and
             RLIMIT_FSIZE 0 set by the caller on su (prlimit): the failure record cannot be
             written, so no answer is judged (PAM_SERVICE_ERR for the state file; su never
             takes the backup codes file's lock, under which a backup code is checked); the
             right one is not used up and works later. And su killed (SIGKILL) when it takes
             the victim's lock after a wrong code: each such run still raised the failure
             count, and the victim ends locked out.
  graces     sessionGraceSeconds on, su and sudo run from a process in no audit session
             (the caller's here) with the right code: no session nonce reaches the command's
             environment and no pending session grace is left in the state file (a nonce is
             a login process's, for the session pam_loginuid then opens). And the nonce
             a root login process hands to the session it starts when its service has no
             session line of the module (su by root, without pam_rootok), put in
             ~/.pam_environment, does not open a session grace for a login without a code
             through a service whose session stack reads that file (pam_env
             user_readenv=1, as Debian's sshd has) before the module's session line.

Whatever a case stopped is continued and killed (SIGCONT, then SIGKILL to su and its
children) and the attacker ended, in every path. Runs are serialised with run_integration.py's
by /run/lock/tsms-integration.lock; the whole run is bounded by TOTAL_LIMIT seconds.

Run as root:  python3 tests/integration/run_signals.py [-k PATTERN] [-v]
Prints `PASS: name` or `FAIL: name: why` per case, then `signals: N passed, N failed`.
"""

import contextlib
import functools
import hashlib
import json
import os
import pwd
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.dont_write_bytecode = True  # leave no __pycache__ in the tree
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))
import run_integration as ri  # noqa: E402  (beside this file; its main is guarded)
from harness.core import CASES, case, check, main  # noqa: E402
from harness.slapd import BlackHole  # noqa: E402
from harness.state import read_state  # noqa: E402
from harness.system import descendants  # noqa: E402

del CASES[:]  # run_integration's cases registered as it was imported: this suite runs its own

ATTACKER = HERE / "attacker.py"
FSIZE_0 = ("prlimit", "--fsize=0:0", "--")  # what the caller puts before su: RLIMIT_FSIZE 0
TOTAL_LIMIT = 240  # seconds for everything after the install (then SIGALRM: cleanup, exit)
CALLER_PHONE = "+15555550163"  # the caller's own number, where a case gives it one
BAD_BACKUP_CODE = "zzzz-zzzz"  # a backup code's shape, no user's code
USERS = {ri.SSH_USER: ri.SSH_PHONE, ri.SUDO_USER: ri.SUDO_PHONE,
         ri.SU_TARGET: ri.SU_TARGET_PHONE}
OPEN_IGNORED = "failMode open ignored: the caller can signal this process"


# --------------------------------------------------------------------------- helpers

def config(h, name, **over):
    """The suite's module config with over, as TMP/NAME.json, with a stateDir of its own."""
    ca_file = json.loads(Path(h.config).read_text())["caFile"]
    over.setdefault("stateDir", str(h.tmp / f"state-{name}"))
    return h.write_config(name, ca_file, **over)


def su(h, cfg, target=ri.SU_TARGET, *, code="right", prefix=(), started=None):
    """The caller runs `PREFIX su -c '/usr/bin/id -un' TARGET` (knowing TARGET's password)
    with cfg's su service; returns the Login."""
    return h.run_as(ri.CALLER, [*prefix, "su", "-c", "/usr/bin/id -un", target],
                    (h.debian_service(ri.SU_PAM, cfg), ri.SU_PAM),
                    password=h.passwords[target], code=code, started=started)


def process_state(pid):
    """The state letter of /proc/PID/stat (R, S, T, Z, ...), None when pid is gone."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return None


class Background:
    """fn(started=...) (a run_as) in a thread of its own, so that the case can act while it
    runs; end() stops what is left of it.

    runuser, which waits for su, stops itself when su stops and, once continued, continues
    su (util-linux's watching parent, for job control): it is the caller's shell here. A
    second thread plays the shell's part: it continues runuser once su runs again (the
    attacker continued it) or ended, so that the run goes on."""

    def __init__(self, fn):
        self.proc = None
        self.login = None
        self.error = None
        self.started = threading.Event()
        self.thread = threading.Thread(target=self._run, args=(fn,), daemon=True)
        self.thread.start()
        self.shell = threading.Thread(target=self._shell, daemon=True)
        self.shell.start()

    def _shell(self):
        self.started.wait()
        while self.proc is not None and self.thread.is_alive():
            if process_state(self.proc.pid) == "T" and not any(
                    process_state(pid) == "T" for pid in descendants(self.proc.pid)):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(self.proc.pid, signal.SIGCONT)
            time.sleep(0.05)

    def _run(self, fn):
        try:
            self.login = fn(started=self._started)
        except BaseException as e:  # handed to the case by result()
            self.error = e
        finally:
            self.started.set()

    def _started(self, proc):
        self.proc = proc
        self.started.set()

    def pid(self, timeout=10):
        check(self.started.wait(timeout) and self.proc is not None,
              f"the run did not start: {self.error}")
        return self.proc.pid

    def result(self, timeout=ri.RUN_LIMIT + 10):
        """The Login once the run ended (its failure raised here)."""
        self.thread.join(timeout)
        check(not self.thread.is_alive(), f"the run still going after {timeout:.0f}s")
        if self.error is not None:
            raise self.error
        return self.login

    def end(self):
        """SIGCONT, then SIGKILL, to the run's processes that are left (a stopped su, its
        child), then waits for the thread."""
        if self.proc is not None and self.thread.is_alive():
            pids = [self.proc.pid, *descendants(self.proc.pid)]
            for sig in (signal.SIGCONT, signal.SIGKILL):
                for pid in pids:
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(pid, sig)
        self.thread.join(ri.RUN_LIMIT + 5)
        self.shell.join(5)


class Attacker:
    """attacker.py MODE ARGS as the caller (as root with as_root: an observer), its JSON
    events collected by a thread."""

    def __init__(self, h, mode, *args, as_root=False, limit=40):
        tail = [mode, "--limit", str(limit), *map(str, args)]
        if as_root:
            cmd = [sys.executable, "-B", str(ATTACKER), *tail]
        else:  # the caller's own copy, in its own directory, with the system's python3
            script = h.caller_dir / ATTACKER.name
            if not script.exists():
                shutil.copyfile(ATTACKER, script)
                pw = pwd.getpwnam(ri.CALLER)
                os.chown(script, pw.pw_uid, pw.pw_gid)
                os.chmod(script, 0o644)
            python = shutil.which("python3", path="/usr/bin:/bin") or sys.executable
            cmd = ["runuser", "-u", ri.CALLER, "--", python, "-B", str(script), *tail]
        self.what = f"attacker {mode}"
        self.verbose = h.verbose
        self.events = []
        self.stderr = ""
        self.cond = threading.Condition()
        self.proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, text=True, cwd="/",
                                     start_new_session=True,
                                     env={"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "LANG": "C"})
        self.readers = [threading.Thread(target=self._read, daemon=True),
                        threading.Thread(target=self._read_stderr, daemon=True)]
        for t in self.readers:
            t.start()

    def _read(self):
        for line in self.proc.stdout:
            try:
                event = json.loads(line)
            except ValueError:
                event = {"event": "unreadable", "line": line.strip()}
            if self.verbose:
                print(f"  {self.what}: {event}", flush=True)
            with self.cond:
                self.events.append(event)
                self.cond.notify_all()
        with self.cond:
            self.events.append({"event": "exited"})
            self.cond.notify_all()

    def _read_stderr(self):
        self.stderr = self.proc.stderr.read()

    def wait_for(self, names, timeout):
        """The first event named one of names, waiting up to timeout seconds; None when it
        did not come (or the attacker exited first)."""
        deadline = time.monotonic() + timeout
        with self.cond:
            while True:
                for e in self.events:
                    if e["event"] in names:
                        return e
                if self.events and self.events[-1]["event"] == "exited":
                    return None
                left = deadline - time.monotonic()
                if left <= 0:
                    return None
                self.cond.wait(left)

    def event(self, name):
        with self.cond:
            return next((e for e in self.events if e["event"] == name), None)

    def tell(self, line):
        with contextlib.suppress(BrokenPipeError, ValueError, OSError):
            self.proc.stdin.write(line + "\n")
            self.proc.stdin.flush()

    def ready(self, timeout=15):
        """Waits until the attacker has started (and waits for its target)."""
        check(self.wait_for(("ready",), timeout),
              f"{self.what} did not start: {self.events} {self.stderr[-300:]!r}")

    def end(self):
        """End of file on its stdin (it continues what it stopped and exits), SIGKILL to its
        process group when it does not within 5 s."""
        with contextlib.suppress(OSError, ValueError):
            self.proc.stdin.close()
        try:
            self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=5)
        for t in self.readers:
            t.join(5)

    def __str__(self):
        return f"{self.what}: {self.events} {self.stderr.strip()[-300:]!r}"


def attack(h, mode, args, run, *, as_root=False, limit=40):
    """Starts the attacker, then run(started=...) (a su, see su()) in the background, and
    aims the attacker at it; returns (attacker, background)."""
    attacker = Attacker(h, mode, *args, as_root=as_root, limit=limit)
    bg = None
    try:
        attacker.ready()  # before su starts: it must not miss su's first moves
        bg = Background(run)
        attacker.tell(str(bg.pid()))  # the runuser below which su runs
    except BaseException:
        end_all(bg, attacker)
        raise
    return attacker, bg


def end_all(*things):
    """Ends attackers and background runs (None skipped), whatever happened."""
    for thing in things:
        if thing is not None:
            thing.end()


def expect_no_shell(login, target, what):
    check(login.status != 0 and target not in login.stdout,
          f"{what}: su ran the command as {target}: {login}")


def expect_in(login, stdout, what):
    check(login.status == 0 and login.stdout.strip() == stdout,
          f"{what}: not in (want exit 0 and {stdout!r}): {login}")


def inode(path):
    return os.stat(path).st_ino


def lock_names(directories):
    """{inode: name} of the lock files in directories, for messages."""
    names = {}
    for d in directories:
        with contextlib.suppress(OSError):
            for entry in os.scandir(d):
                if entry.name.endswith(".lock"):
                    names[entry.inode()] = entry.name
    return names


def shown_locks(event, names):
    return [names.get(i, f"inode {i}") for i in (event or {}).get("locks", [])]


def digest(path):
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def outcome(login, service="su"):
    """The module's outcome line of a run (the last one), or "" when it logged none."""
    lines = [l for l in login.module_logs(service) if "result=" in l]
    return lines[-1] if lines else ""


class Problems:
    """Checks that go on after a failure: each `with problems.each():` block keeps its
    CaseFailure's reason; end() fails the case with all of them."""

    def __init__(self):
        self.found = []

    @contextlib.contextmanager
    def each(self):
        try:
            yield
        except ri.CaseFailure as e:
            self.found.append(str(e))

    def end(self):
        check(not self.found, " | ".join(self.found))


# --------------------------------------------------------------------------- fail-open

@case
def su_fail_open_stopped_during_twilio_request(h):
    """failMode open; the caller stops su for longer than timeoutSeconds while its request
    is in flight (the sandbox answers after 2 s), then continues it: libcurl times out.
    Not a shell: an outage the caller causes at will does not open."""
    cfg = config(h, "open-request", failMode="open", timeoutSeconds=3, maxRetries=0,
                 backupCodesFile=None)
    h.sandbox.set_scenario("slow:2")
    attacker = bg = None
    try:
        attacker, bg = attack(h, "request",
                              ["--port", h.sandbox.port, "--after", 0.5, "--hold", 6],
                              functools.partial(su, h, cfg, code="wrong"), limit=30)
        login = bg.result()
        attacker.wait_for(("continued", "ended", "gave-up"), 10)
    finally:
        h.sandbox.set_scenario("ok")
        end_all(bg, attacker)
    stopped = attacker.event("stopped")
    check(stopped and stopped.get("errno") is None and attacker.event("continued"),
          f"the attacker did not stop su during the request: {attacker}")
    expect_no_shell(login, ri.SU_TARGET, "failMode open, su stopped past timeoutSeconds")
    results = login.results("su")
    check(results == ["PAM_AUTHINFO_UNAVAIL"],
          f"module outcome lines say {results}, want PAM_AUTHINFO_UNAVAIL (the request timed "
          f"out while su was stopped): {login.logs!r}")
    check(any(OPEN_IGNORED in l for l in login.module_logs("su")),
          f"an outage under failMode open without {OPEN_IGNORED!r}: {login.logs!r}")


@case
def su_fail_open_directory_child_signalled(h):
    """failMode open, the victim's number in a directory that never answers (ldap.uri a
    listener that accepts and stays silent): the caller kills the module's lookup child
    (SIGKILL), and in a second run stops it (SIGSTOP). Not a shell either way; a child
    that died by the caller's signal is not an outage."""
    hole = BlackHole().start()
    try:
        cfg = config(h, "open-ldap", failMode="open", backupCodesFile=None,
                     users={ri.SSH_USER: ri.SSH_PHONE, ri.SUDO_USER: ri.SUDO_PHONE},
                     ldap={"uri": hole.url, "baseDN": "dc=example,dc=org", "timeoutSeconds": 3})
        runs = {}
        for sig in ("KILL", "STOP"):
            attacker = bg = None
            try:
                attacker, bg = attack(h, "child", ["--signal", sig],
                                      functools.partial(su, h, cfg, code="wrong"), limit=20)
                login = bg.result()
                attacker.wait_for(("signalled", "signal-failed", "ended", "gave-up"), 5)
            finally:
                end_all(bg, attacker)
            runs[sig] = (login, attacker)
    finally:
        hole.stop()
    problems = Problems()
    for sig, (login, attacker) in runs.items():
        with problems.each():
            what = f"SIG{sig} to the lookup child"
            check(attacker.event("child"), f"{what}: the attacker saw no child of su: {attacker}")
            expect_no_shell(login, ri.SU_TARGET, what)
            results = login.results("su")
            check(results == ["PAM_AUTHINFO_UNAVAIL"],
                  f"{what}: module outcome lines say {results}, want PAM_AUTHINFO_UNAVAIL: "
                  f"{outcome(login)!r} ({attacker})")
            if sig == "KILL" and attacker.event("signalled"):  # it died by the signal
                line = outcome(login)
                check("killed by signal" in line or "without an answer" in line,
                      f"{what}: the child died by the signal, the outcome says {line!r}")
    problems.end()


# --------------------------------------------------------------------------- locks

ROUNDS = 4  # su runs in which the attacker may find its moment (it may miss a short one)


def stop_holding(h, args, run, dirs, want):
    """Runs run (a su) with the attacker `lock --signal STOP ARGS` until it reports su
    stopped (at most ROUNDS runs: in one, su may let the lock go before it sees it).
    Returns (attacker, background, stopped event); the caller ends both."""
    tried = []
    for _ in range(ROUNDS):
        attacker, bg = attack(h, "lock", ["--signal", "STOP", *args], run, limit=30)
        try:
            got = attacker.wait_for(("stopped", "ended", "gave-up", "signal-failed"), 30)
        except BaseException:
            end_all(bg, attacker)
            raise
        if got and got["event"] == "stopped":
            return attacker, bg, got
        tried.append(str(attacker))
        end_all(bg, attacker)
    names = lock_names(dirs)
    raise ri.CaseFailure(f"in {ROUNDS} runs the attacker never stopped su holding {want} "
                         f"(lock files {names}): {tried}")


def describe_stop(event, dirs):
    """How the attacker's stop went, for messages: what su held then, what it had seen."""
    names = lock_names(dirs)
    held = shown_locks(event, names)
    sighted = shown_locks({"locks": event.get("sighted", [])}, names)
    how = f"after EPERM {event['eperm']} times, " if event.get("eperm") else ""
    return f"su stopped ({how}holding {held or 'no lock'}; it was seen holding {sighted})"


@case
def su_stopped_holding_the_global_lock(h):
    """globalSendLimit > 0: the caller, mapped, runs su to its own account and stops it
    while it holds the global counter's lock (with its own). While it stays stopped,
    another user's sudo still gets in with the right code."""
    users = {**USERS, ri.CALLER: CALLER_PHONE}
    cfg = config(h, "global-lock", globalSendLimit=100, users=users)
    state_dir = json.loads(Path(cfg).read_text())["stateDir"]
    attacker, bg, stopped = stop_holding(h, ["--min-locks", 2],
                                         functools.partial(su, h, cfg, ri.CALLER),
                                         [state_dir], "two locks (its own and @global)")
    try:
        other = h.sudo(config=cfg)
        attacker.tell("release")
        attacker.wait_for(("released",), 5)
        bg.result()
    finally:
        end_all(bg, attacker)
    expect_in(other, "root", f"sudo by {ri.SUDO_USER} while {describe_stop(stopped, [state_dir])}")


@case
def su_stopped_holding_the_victims_lock(h):
    """The caller runs su to the victim and stops it while it holds the victim's state
    lock. While it stays stopped, the victim's next login (su again, the right code) gets
    in."""
    cfg = config(h, "user-lock")
    state_dir = json.loads(Path(cfg).read_text())["stateDir"]
    attacker, bg, stopped = stop_holding(h, ["--min-locks", 1],
                                         functools.partial(su, h, cfg, code="wrong"),
                                         [state_dir], f"{ri.SU_TARGET}'s lock")
    try:
        again = su(h, cfg, code="right")
        attacker.tell("release")
        attacker.wait_for(("released",), 5)
        bg.result()
    finally:
        end_all(bg, attacker)
    expect_in(again, ri.SU_TARGET,
              f"the victim's next su while {describe_stop(stopped, [state_dir])}")


@case
def su_stopped_holding_the_backup_codes_lock(h):
    """The caller answers su's SMS prompt with a backup code's shape and stops su while it
    holds the backup codes file's lock (the answer is checked against the victim's ten
    Argon2id hashes under it). While it stays stopped, another user's backup code still
    works (sudo)."""
    h.backup_codes(ri.SU_TARGET, count=10)
    code = h.backup_codes(ri.SUDO_USER)[0]
    lock = Path(f"{h.backup_codes_file}.lock")
    check(lock.exists(), f"{lock} missing after twilio-sms-otp backup-codes")
    cfg = config(h, "codes-lock")
    attacker, bg, stopped = stop_holding(h, ["--inode", inode(lock)],
                                         functools.partial(su, h, cfg,
                                                           code="backup:" + BAD_BACKUP_CODE),
                                         [lock.parent], f"{lock.name}")
    try:
        other = h.sudo(config=cfg, code="backup:" + code)
        attacker.tell("release")
        attacker.wait_for(("released",), 5)
        bg.result()
    finally:
        end_all(bg, attacker)
    expect_in(other, "root", f"sudo by {ri.SUDO_USER} with a backup code while "
                             f"{describe_stop(stopped, [lock.parent])}")


# --------------------------------------------------------------------------- counting

@case
def su_file_size_limit_answer_not_judged(h):
    """The cooldown is active (a code went out a moment ago and was answered wrong; a right
    answer would have ended it: no SMS, no state write, the backup-code prompt) and the
    caller sets RLIMIT_FSIZE 0 on su (prlimit --fsize=0:0): the
    failure record cannot be written, so no answer is judged. For the victim's right backup
    code and for a wrong one: PAM_SERVICE_ERR for the state file (not the codes file), su
    never takes the codes file's lock (watched from root), no shell; the right code is not
    used up and works afterwards without the limit."""
    codes = h.backup_codes(ri.SU_TARGET, count=10)
    lock = Path(f"{h.backup_codes_file}.lock")
    cfg = config(h, "fsize", resendCooldownSeconds=600, lockoutThreshold=10, sendLimit=50,
                 maxAttempts=1)
    state_dir = json.loads(Path(cfg).read_text())["stateDir"]
    expect_no_shell(su(h, cfg, code="wrong"), ri.SU_TARGET,
                    "the first su (a wrong code for the SMS that starts the cooldown)")
    before = digest(h.backup_codes_file)
    runs = []
    for answer in (codes[0], BAD_BACKUP_CODE, BAD_BACKUP_CODE):
        watcher = bg = None
        try:
            watcher, bg = attack(h, "watch", ["--inode", inode(lock)],
                                 functools.partial(su, h, cfg, code="backup:" + answer,
                                                   prefix=FSIZE_0),
                                 as_root=True, limit=30)
            login = bg.result()
            watcher.wait_for(("ended", "gave-up"), 5)
        finally:
            end_all(bg, watcher)
        runs.append((answer, login, watcher))
    unchanged = digest(h.backup_codes_file) == before
    after = su(h, cfg, code="backup:" + codes[0])
    problems = Problems()
    for answer, login, watcher in runs:
        with problems.each():
            what = (f"{'the right' if answer == codes[0] else 'a wrong'} backup code under "
                    f"RLIMIT_FSIZE 0")
            check(watcher.event("su"), f"{what}: the watcher found no su: {watcher}")
            check([a for _, a in login.prompts] == ["password", "backup code"],
                  f"{what}: prompts {login.prompts!r}, want the password and one backup-code "
                  f"prompt (the cooldown's): {login}")
            expect_no_shell(login, ri.SU_TARGET, what)
            results = login.results("su")
            check(results == ["PAM_SERVICE_ERR"],
                  f"{what}: module outcome lines say {results}, want PAM_SERVICE_ERR: "
                  f"{outcome(login)!r}")
            line = outcome(login)
            check(f"{state_dir}/" in line and str(h.backup_codes_file) not in line,
                  f"{what}: the outcome names no state file that could not be written, or "
                  f"names the codes file (the answer was checked): {line!r}")
            check(not watcher.event("held"),
                  f"{what}: judged although its failure could not be recorded (su took "
                  f"{lock.name}, under which backup codes are checked): {line!r}")
    with problems.each():
        check(unchanged, "the right backup code under RLIMIT_FSIZE 0 was used up: the codes "
                         "file changed")
    with problems.each():
        expect_in(after, ri.SU_TARGET, "the right backup code, without the limit, after")
    problems.end()


@case
def su_killed_at_the_failure_record_still_counted(h):
    """lockoutThreshold 3: in su runs to the victim the caller types a wrong SMS code and
    kills su (SIGKILL) as soon as it is seen taking the victim's state lock after the answer
    (its first lock, the send's, let go; an EPERM is tried again until the kill goes
    through). Each run where the kill went through (or was refused) still raised the
    victim's failure count; the victim ends locked out, and the right code is then refused
    as locked. A run where the attacker missed its moment is not an attack (its wrong code
    counts as usual); runs go on until three attacks or the lockout, six at most."""
    threshold = 3
    cfg = config(h, "kill-record", lockoutThreshold=threshold, sendLimit=50)
    state_file = Path(json.loads(Path(cfg).read_text())["stateDir"]) / ri.SU_TARGET

    def state():
        return read_state(state_file) if state_file.exists() else {"failures": 0,
                                                                   "locked_until": 0}

    attacks, runs = [], []
    while len(attacks) < threshold and len(runs) < 2 * threshold:
        before = state()
        if before["locked_until"] > 0:
            break
        attacker = bg = None
        try:
            attacker, bg = attack(h, "lock", ["--signal", "KILL", "--skip", 1],
                                  functools.partial(su, h, cfg, code="wrong"), limit=30)
            login = bg.result()
            attacker.wait_for(("killed", "ended", "gave-up", "signal-failed"), 5)
        finally:
            end_all(bg, attacker)
        runs.append(str(attacker))
        expect_no_shell(login, ri.SU_TARGET, "a wrong code")
        if attacker.event("killed") or attacker.event("eperm"):
            attacks.append(attacker)
            after = state()
            check(after["failures"] > before["failures"] or after["locked_until"] > 0,
                  f"su killed at the victim's lock after a wrong code: the failure count "
                  f"stayed {after['failures']} (state {after}): {attacker}: {login}")
    check(attacks, f"in {len(runs)} su runs the attacker never found su holding the victim's "
                   f"lock after the answer: {runs}")
    final_state = state()
    final = su(h, cfg, code="right")
    what = f"after {len(runs)} su runs with a wrong code, {len(attacks)} of them attacked"
    check(final_state["failures"] >= threshold and final_state["locked_until"] > 0,
          f"{what}: the victim's state is {final_state}, want failures >= {threshold} and a "
          f"lockout: {runs}")
    expect_no_shell(final, ri.SU_TARGET, f"{what}: the right code")
    line = outcome(final)
    check("locked" in line, f"{what}: the right code's outcome {line!r}, want locked out")


# --------------------------------------------------------------------------- graces

def outside_audit_sessions():
    """This process (and so what it runs) in no audit session, as sshd and login started by
    the system are: leaves the one it is in when it can (root with CAP_AUDIT_CONTROL, the
    login uid not immutable); fails the case otherwise."""
    sid = Path("/proc/self/sessionid")
    if sid.read_text().strip() != "4294967295":
        with contextlib.suppress(OSError):
            Path("/proc/self/loginuid").write_text("4294967295")
    check(sid.read_text().strip() == "4294967295",
          "the suite runs in an audit session it cannot leave: run it from a process with "
          "no login uid (a system service, a container)")


def pending_graces(state_dir, user):
    """The pending session graces ('g p DIGEST UNTIL' lines) of user's state file."""
    path = Path(state_dir) / user
    if not path.exists():
        return []
    return [l for l in path.read_text(errors="replace").splitlines() if l.startswith("g p ")]


@case
def su_outside_audit_sessions_hands_on_no_session_nonce(h):
    """sessionGraceSeconds on. The caller runs setuid su from a process in no audit session
    (/proc/self/sessionid 4294967295: here runuser from the harness; on a host a systemd
    service, a shell of an sshd without UsePAM, anything whose login uid was never set) and
    gives the victim's right code. A session nonce is for a login process that
    pam_loginuid then puts in a session (sshd, login); su and sudo never make one
    (docs/security.md, the nonce). Want: the command su runs does not find
    PAM_TWILIO_SMS_SESSION in its environment (su's service, like Debian's, has no session
    line of the module, so su exports PAM's environment as it is), and no pending grace is
    left in the victim's state file; sudo by another user leaves none either."""
    outside_audit_sessions()
    cfg = config(h, "session-nonce", sessionGraceSeconds=300)
    state_dir = json.loads(Path(cfg).read_text())["stateDir"]
    login = h.run_as(ri.CALLER, ["su", "-c", "cat /proc/self/sessionid; echo; /usr/bin/env",
                                 ri.SU_TARGET],
                     (h.debian_service(ri.SU_PAM, cfg), ri.SU_PAM),
                     password=h.passwords[ri.SU_TARGET], code="right")
    sudo = h.sudo(config=cfg)
    problems = Problems()
    with problems.each():
        check(login.status == 0 and login.stdout.startswith("4294967295\n"),
              f"su with the right code from outside any audit session: want exit 0 and the "
              f"command in no audit session: {login}")
    with problems.each():
        leaked = [l for l in login.stdout.splitlines()
                  if l.startswith("PAM_TWILIO_SMS_SESSION=")]
        check(not leaked,
              f"su handed the session nonce (PAM_TWILIO_SMS_SESSION, {len(leaked)} line(s); "
              f"value not shown) to the command it ran as {ri.SU_TARGET}")
    with problems.each():
        pending = pending_graces(state_dir, ri.SU_TARGET)
        check(not pending, f"su left {len(pending)} pending session grace(s) in "
                           f"{state_dir}/{ri.SU_TARGET}: {pending}")
    with problems.each():
        expect_in(sudo, "root", "sudo with the right code")
        pending = pending_graces(state_dir, ri.SUDO_USER)
        check(not pending, f"sudo left {len(pending)} pending session grace(s) in "
                           f"{state_dir}/{ri.SUDO_USER}: {pending}")
    problems.end()


@case
def leaked_session_nonce_opens_a_grace_for_a_session_without_a_code(h):
    """sessionGraceSeconds on. A login process run by root in no audit session whose
    service has no session line of the module (su here, run by root with the victim's
    password and code through a su service without pam_rootok; on a host a display manager
    or any service whose auth stack has the module and whose session stack lacks the line)
    hands the nonce to the session it starts, so the victim's account sees it. Written in
    ~/.pam_environment, it must not open a session grace for a login without a code (a key
    alone: the auth phase never runs the module) through another service whose session stack
    reads that file (pam_env user_readenv=1, as Debian's sshd has) before the module's
    session line: the line appended at the end of /etc/pam.d/sshd is "after pam_loginuid",
    which `twilio-sms-otp check` accepts. A nonce names a code given to its own service."""
    outside_audit_sessions()
    cfg = config(h, "nonce-reuse", sessionGraceSeconds=300)
    text = h.debian_service(ri.SU_PAM, cfg).read_text()
    su_service = h.tmp / "pam.d-su-without-rootok"
    su_service.write_text("".join(l + "\n" for l in text.splitlines()
                                  if "pam_rootok.so" not in l))
    os.chmod(su_service, 0o644)
    login = h.run_as("root", ["su", "-c", "/usr/bin/env", ri.SU_TARGET],
                     (su_service, ri.SU_PAM), password=h.passwords[ri.SU_TARGET],
                     code="right")
    nonces = [l.split("=", 1)[1] for l in login.stdout.splitlines()
              if l.startswith("PAM_TWILIO_SMS_SESSION=")]
    check(login.status == 0 and len(nonces) == 1,
          f"root's su with the right code: want exit 0 and the nonce in the command's "
          f"environment (its service has no session line of the module): exit "
          f"{login.status}, {len(nonces)} nonce line(s), prompts {login.prompts!r}")
    pw = pwd.getpwnam(ri.SU_TARGET)
    env_file = Path(pw.pw_dir) / ".pam_environment"
    service = h.tmp / "pam.d-key-only-login"
    service.write_text("auth required pam_permit.so\n"
                       "account required pam_permit.so\n"
                       "session required pam_loginuid.so\n"
                       "session required pam_env.so user_readenv=1 "
                       "envfile=/etc/default/locale\n"
                       f"session optional {ri.MODULE} config={cfg} debug\n")
    os.chmod(service, 0o644)
    try:
        env_file.write_text(f"PAM_TWILIO_SMS_SESSION={nonces[0]}\n")
        os.chown(env_file, pw.pw_uid, pw.pw_gid)
        mark = h.syslog.mark()
        cmd = h.syslog.wrap(["pamtester", "login", ri.SU_TARGET, "open_session",
                             "close_session"], [(service, "/etc/pam.d/login")])
        run = subprocess.run(cmd, capture_output=True, text=True, timeout=ri.RUN_LIMIT)
        logs = h.syslog.collect(mark)
    finally:
        env_file.unlink(missing_ok=True)
    hook = [l for l in logs if "pam_twilio_sms(login:session)" in l]
    check(run.returncode == 0 and hook,
          f"pamtester open_session: exit {run.returncode} {run.stderr.strip()[-300:]!r}; "
          f"the session line logged nothing: {logs[-6:]!r}")
    opened = [l for l in hook if f"session grace for {ri.SU_TARGET}: audit session" in l]
    check(not opened,
          f"a session opened without a code got a session grace from the nonce of a code "
          f"given to another service, put in ~/.pam_environment: {opened!r}")


if __name__ == "__main__":
    sys.exit(main("signals", __doc__.splitlines()[0], run=ri.run, prepare=ri.prepare,
                  time_limit=TOTAL_LIMIT, one_line=True, timed=True,
                  verbose_help="print each login's details and the attacker's events"))
