#!/usr/bin/env python3
"""End-to-end tests of pam_twilio_sms.so through real libpam.

Each case writes a config file and a PAM service file /etc/pam.d/tsms-test-*,
runs `pamtester SERVICE USER authenticate` against the Twilio sandbox
(tests/sandbox/twilio_sandbox.py) and types the code it finds in the sandbox's
outbox. It checks what PAM returned (pamtester's exit status and its
pam_strerror text), what reached the sandbox, and the module's syslog lines,
captured on a datagram socket at /dev/log (bind-mounted over it inside a
private mount namespace when /dev/log already exists).

Run as root:  python3 tests/e2e/run_e2e.py [-k PATTERN] [-v]
Prints `PASS: name` or `FAIL: name: why` per case, then `e2e: N passed, N failed`.
"""

import argparse
import json
import os
import pwd
import re
import select
import shlex
import shutil
import signal
import socket
import stat
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
# TSMS_MODULE tests another build of the module, e.g. the sanitizer one (tests/analysis)
MODULE = Path(os.environ.get("TSMS_MODULE") or REPO / "pam_twilio_sms.so").resolve()
SANDBOX = REPO / "tests" / "sandbox" / "twilio_sandbox.py"
PAM_DIR = Path("/etc/pam.d")
SERVICE_PREFIX = "tsms-test-"
DEV_LOG = Path("/dev/log")

ACCOUNT_SID = "AC0123456789abcdef0123456789abcdef"
AUTH_TOKEN = "sandbox-auth-token-0123456789"
# Runs every PAM client under a command prefix, e.g. valgrind or env LD_PRELOAD=libasan.so
# for the sanitizer builds: TSMS_E2E_PREFIX="valgrind --error-exitcode=99 ..."
PAM_CLIENT_PREFIX = shlex.split(os.environ.get("TSMS_E2E_PREFIX", ""))
MESSAGING_SID = "MGfedcba9876543210fedcba9876543210"
DEFAULT_TEMPLATE = "Your sign-in code is {{code}}. Do not share it."

USERS = {
    "alice": "+15555550006",
    "bob": "15555550007",  # no '+': the module adds it
    "carol": "+1 555-555-1234",  # spaces and '-' are dropped; last four do not start with 0
}

PROMPT_RE = re.compile(r"(Wrong code\. )?(?:New )?SMS code sent to \*{6}(\d{4}): $")
PAM_TEXT = {
    "PAM_SUCCESS": "pamtester: successfully authenticated",
    "PAM_AUTH_ERR": "pamtester: Authentication failure",
    "PAM_MAXTRIES": "pamtester: Have exhausted maximum number of retries for service",
    "PAM_SERVICE_ERR": "pamtester: Error in service module",
    "PAM_AUTHINFO_UNAVAIL": "pamtester: Authentication service cannot retrieve authentication info",
    "PAM_CONV_ERR": "pamtester: Conversation error",
}
# Seconds a slow client prefix adds to each run (valgrind starting and ending pamtester),
# granted to RUN_LIMIT and to the timing checks (tests/analysis/valgrind.sh sets 3)
TIME_SLACK = float(os.environ.get("TSMS_E2E_SLACK") or 0)
RUN_LIMIT = 30.0 + TIME_SLACK  # seconds any single pamtester run may take
SYSLOG_RE = re.compile(r"^<\d+>(?:\w{3} [ \d]\d \d\d:\d\d:\d\d )?[^:\[ ]*(?:\[\d+\])?: (.*)$", re.S)


class CaseFailure(Exception):
    """A case's expectation did not hold; the message says why."""


def check(cond, why):
    if not cond:
        raise CaseFailure(why)


def read_jsonl(path):
    """Returns the complete JSON lines of path ([] when it does not exist)."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        return []
    rows = []
    for line in text.splitlines(keepends=True):
        if line.endswith("\n") and line.strip():
            rows.append(json.loads(line))
    return rows


# --------------------------------------------------------------------------- sandbox

class Sandbox:
    """The Twilio sandbox process, its directory and its records."""

    def __init__(self, workdir):
        self.dir = Path(workdir)
        self.proc = None
        self.port = None
        self.stderr_path = self.dir / "sandbox.stderr"

    @property
    def base_url(self):
        return f"https://127.0.0.1:{self.port}"

    @property
    def ca_file(self):
        return str(self.dir / "ca.pem")

    def start(self, timeout=30.0):
        self.dir.mkdir(parents=True, exist_ok=True)
        cmd = [sys.executable, str(SANDBOX), "--dir", str(self.dir), "--host", "127.0.0.1",
               "--port", "0", "--account-sid", ACCOUNT_SID, "--auth-token", AUTH_TOKEN]
        with open(self.stderr_path, "wb") as err:
            self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=err, stderr=err,
                                         start_new_session=True)
        port_file = self.dir / "port"
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"sandbox exited with {self.proc.returncode}: {self.stderr_tail()}")
            text = port_file.read_text().strip() if port_file.exists() else ""
            if text.isdigit():
                self.port = int(text)
                return
            time.sleep(0.05)
        raise RuntimeError(f"sandbox wrote no {port_file} within {timeout:.0f}s: {self.stderr_tail()}")

    def stderr_tail(self, n=400):
        try:
            return self.stderr_path.read_text(errors="replace")[-n:].strip() or "(no stderr)"
        except OSError:
            return "(no stderr)"

    def stop(self):
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.terminate()
        try:
            self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=5)

    def set_scenario(self, name):
        tmp = self.dir / "scenario.tmp"
        tmp.write_text(name + "\n")
        os.replace(tmp, self.dir / "scenario")

    def outbox(self):
        return read_jsonl(self.dir / "outbox.jsonl")

    def requests(self):
        return read_jsonl(self.dir / "requests.jsonl")


# --------------------------------------------------------------------------- syslog

class SyslogCapture:
    """Receives the datagrams glibc's syslog() sends to /dev/log.

    When /dev/log is free the socket is bound there (and removed in close());
    otherwise it is bound in workdir and wrap() runs a command in a private
    mount namespace with the socket bind-mounted over /dev/log."""

    def __init__(self, workdir):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.owns_dev_log = False
        if not os.path.lexists(DEV_LOG):
            try:
                self.sock.bind(str(DEV_LOG))
                self.owns_dev_log = True
            except OSError:
                pass
        if self.owns_dev_log:
            self.path = str(DEV_LOG)
        else:
            self.path = str(Path(workdir) / "log.sock")
            self.sock.bind(self.path)
        os.chmod(self.path, 0o666)
        self.sock.settimeout(0.2)
        self.lines = []
        self.cond = threading.Condition()
        self.stopping = False
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def _read(self):
        while not self.stopping:
            try:
                data = self.sock.recv(65536)
            except socket.timeout:
                continue
            except OSError:
                return
            with self.cond:
                self.lines.append(data.decode("utf-8", errors="replace"))
                self.cond.notify_all()

    def wrap(self, cmd):
        if self.owns_dev_log:
            return cmd
        # Another run that owned /dev/log may have removed it since: an empty file then
        # serves as the mount point (syslog() fails on it as on a missing /dev/log).
        script = '[ -e /dev/log ] || : >>/dev/log; mount --bind "$0" /dev/log && exec "$@"'
        return ["unshare", "--mount", "--", "sh", "-c", script, self.path] + cmd

    def mark(self):
        """Returns a position; collect(position) returns what arrived after it."""
        with self.cond:
            return len(self.lines)

    def collect(self, since, timeout=3.0):
        """Waits until every datagram sent before this call was read (a marker
        sent now arrives after them), then returns the raw lines since `since`."""
        marker = f"<15>tsms-e2e-marker {time.monotonic_ns()}"
        sender = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        try:
            sender.sendto(marker.encode(), self.path)
        finally:
            sender.close()
        deadline = time.monotonic() + timeout
        with self.cond:
            while marker not in self.lines[since:]:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise CaseFailure("syslog marker did not come back; log capture broken")
                self.cond.wait(left)
            return [l for l in self.lines[since:] if not l.startswith("<15>tsms-e2e-marker")]

    def close(self):
        self.stopping = True
        self.thread.join(timeout=2)
        self.sock.close()
        if self.owns_dev_log:
            try:
                os.unlink(DEV_LOG)
            except FileNotFoundError:
                pass
        else:  # the empty mount point wrap() may have made (runs still going make their own)
            try:
                st = os.lstat(DEV_LOG)
                if stat.S_ISREG(st.st_mode) and st.st_size == 0:
                    os.unlink(DEV_LOG)
            except FileNotFoundError:
                pass


# --------------------------------------------------------------------------- answers

class Answer:
    """What to type at a prompt: the code just sent (optionally padded by fmt),
    a wrong one, or the code without its leading zeros; optionally after a pause."""

    def __init__(self, kind, text=None, delay=0.0):
        self.kind, self.text, self.delay = kind, text, delay

    def render(self, code):
        if self.kind == "text":
            return self.text() if callable(self.text) else self.text
        if self.kind == "fn":
            return self.text(code)
        if self.kind == "code":
            return self.text.format(code=code) if self.text else code
        if self.kind == "wrong":
            return "".join(str((int(d) + 1) % 10) for d in code)
        return code.lstrip("0") or "0"  # "no-leading-zeros"


def right(delay=0.0, fmt=None):
    return Answer("code", fmt, delay)


def wrong():
    return Answer("wrong")


def without_leading_zeros():
    return Answer("no-leading-zeros")


def typed(text):
    """A fixed answer (or text() at the prompt); no SMS is awaited for its prompt
    (unmapped users, empty answers, resends refused)."""
    return Answer("text", text)


def answer_with(fn):
    """fn(code) -> the answer, for answers built from the code just sent."""
    return Answer("fn", fn)


# --------------------------------------------------------------------------- one run

class Run:
    """Everything one pamtester run left behind."""

    def __init__(self):
        self.status = None
        self.output = ""
        self.elapsed = 0.0
        self.prompts = []
        self.codes = []          # codes read from the outbox, in prompt order
        self.raw_logs = []       # datagrams as received
        self.logs = []           # message parts ("pam_twilio_sms(svc:auth): ...")
        self.outbox = []         # messages the sandbox accepted during the run
        self.requests = []       # requests the sandbox saw during the run
        self.service = ""

    @property
    def module_logs(self):
        prefix = f"pam_twilio_sms({self.service}:auth): "
        return [l[len(prefix):] for l in self.logs if l.startswith(prefix)]

    @property
    def outcomes(self):
        return [l for l in self.module_logs if re.search(r"(^| )result=PAM_[A-Z_]+", l)]

    @property
    def results(self):
        return [re.search(r"result=(PAM_[A-Z_]+)", l).group(1) for l in self.outcomes]

    def describe(self):
        lines = [f"  status={self.status} elapsed={self.elapsed:.2f}s prompts={self.prompts!r}",
                 f"  output: {self.output!r}"]
        lines += [f"  log: {l}" for l in self.logs]
        lines += [f"  sms: to={m.get('to')} body={m.get('body')!r}" for m in self.outbox]
        lines += [f"  request: status={r.get('status')} scenario={r.get('scenario')} "
                  f"form={sorted((r.get('form') or {}).keys())}" for r in self.requests]
        return "\n".join(lines)


def extract_code(body, length):
    found = re.findall(rf"(?<!\d)(\d{{{length}}})(?!\d)", body or "")
    return found[0] if found else None


# --------------------------------------------------------------------------- harness

class Harness:
    def __init__(self, workdir, sandbox, syslog, verbose):
        self.workdir = Path(workdir)
        self.sandbox = sandbox
        self.syslog = syslog
        self.verbose = verbose
        self.services = []
        self.confdir = self.workdir / "conf"
        self.confdir.mkdir(mode=0o700, exist_ok=True)
        self.case = "case"

    # ---- files

    def config(self, **over):
        """The base config with keys replaced (a value of None removes the key)."""
        cfg = {
            "accountSID": ACCOUNT_SID,
            "authToken": AUTH_TOKEN,
            "fromMessagingServiceSID": MESSAGING_SID,
            "templates": [
                {"usageType": "Register", "content": "Welcome, your code is {{code}}."},
                {"usageType": "SignIn", "content": DEFAULT_TEMPLATE},
                {"usageType": "Test", "content": "Test code {{code}}."},
            ],
            "users": dict(USERS),
            "apiBaseUrl": self.sandbox.base_url,
            "caFile": self.sandbox.ca_file,
            "timeoutSeconds": 5,
            # each case keeps its own send limits and lockouts; cases about limits set their own
            "stateDir": str(self.confdir / f"state-{self.case}"),
            "sendLimit": 1000,
            "resendCooldownSeconds": 0,
        }
        for key, value in over.items():
            if value is None:
                cfg.pop(key, None)
            else:
                cfg[key] = value
        return cfg

    def write_config(self, cfg, name=None, mode=0o600, uid=0, gid=0):
        """Writes cfg (dict -> JSON, or str as is) and returns its path."""
        path = self.confdir / f"{name or self.case}.json"
        text = cfg if isinstance(cfg, str) else json.dumps(cfg, ensure_ascii=False, indent=1)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        os.chown(path, uid, gid)
        os.chmod(path, mode)
        return str(path)

    def write_service(self, lines):
        # the pid keeps runs going at the same time from removing each other's services
        name = f"{SERVICE_PREFIX}{os.getpid()}-" + re.sub(r"[^a-z0-9-]", "-", self.case.lower())
        path = PAM_DIR / name
        if name not in self.services:
            self.services.append(name)
        path.write_text("".join(line + "\n" for line in lines))
        os.chmod(path, 0o644)
        return name

    def service(self, config_path, args=("debug",), then_permit=False, twice=False):
        """Writes a service: the module (twice if asked), then pam_permit if asked."""
        line = " ".join(["auth", "required", str(MODULE), f"config={config_path}", *args])
        lines = [line, line] if twice else [line]
        if then_permit:
            lines.append("auth required pam_permit.so")
        return self.write_service(lines)

    def remove_services(self):
        for name in self.services:
            try:
                (PAM_DIR / name).unlink()
            except FileNotFoundError:
                pass
        self.services = []

    # ---- running pamtester

    def authenticate(self, service, user, answers=(), code_length=6, limit=RUN_LIMIT,
                     client=None):
        """Runs pamtester, answering prompt i with answers[i] (stdin is closed when
        they run out), and returns the Run with the sandbox and syslog records.
        client: another command line than pamtester's, e.g. pam_client's stdin mode."""
        run = Run()
        run.service = service
        outbox_before = len(self.sandbox.outbox())
        requests_before = len(self.sandbox.requests())
        log_mark = self.syslog.mark()
        cmd = self.syslog.wrap(PAM_CLIENT_PREFIX +
                               (client or ["pamtester", service, user, "authenticate"]))
        start = time.monotonic()
        proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, start_new_session=True)
        try:
            self._converse(proc, run, list(answers), code_length, outbox_before, start, limit)
        finally:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            for f in (proc.stdin, proc.stdout):
                try:
                    f.close()
                except OSError:
                    pass
        run.elapsed = time.monotonic() - start
        run.status = proc.returncode
        run.outbox = self.sandbox.outbox()[outbox_before:]
        run.requests = self.sandbox.requests()[requests_before:]
        run.raw_logs = self.syslog.collect(log_mark)
        run.logs = [self._message(l) for l in run.raw_logs]
        if self.verbose:
            print(f"[{self.case}] pamtester {service} {user}\n{run.describe()}")
        self._check_no_secrets(run, code_length)
        return run

    @staticmethod
    def _message(datagram):
        m = SYSLOG_RE.match(datagram)
        return m.group(1) if m else datagram

    def _converse(self, proc, run, answers, code_length, outbox_before, start, limit):
        """Pipes are enough: pamtester's misc_conv prints the prompt on stderr and reads
        the answer from stdin with read(2) whether or not it is a terminal (it only turns
        echo off on a terminal). So one answer line is written per prompt seen, and every
        read waits in select() against the run's deadline."""
        deadline = start + limit
        out = b""
        seen_upto = 0
        stdout = proc.stdout.fileno()
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise CaseFailure(f"pamtester still running after {limit:.0f}s; "
                                  f"output so far {out.decode(errors='replace')!r}")
            ready, _, _ = select.select([stdout], [], [], min(left, 0.5))
            if not ready:
                continue
            chunk = os.read(stdout, 4096)
            if not chunk:
                break
            out += chunk
            run.output = out.decode("utf-8", errors="replace")
            m = PROMPT_RE.search(run.output[seen_upto:])
            if not m:
                continue
            seen_upto = len(run.output)
            run.prompts.append(m.group(0))
            if not answers:
                proc.stdin.close()
                continue
            answer = answers.pop(0)
            code = None
            if answer.kind != "text":
                fresh = sum(1 for p in run.prompts
                            if not p.startswith("Wrong code.") or "New SMS" in p)
                code = self._wait_for_code(m.group(2), fresh, code_length, outbox_before,
                                           deadline)
                run.codes.append(code)
            if answer.delay:
                time.sleep(answer.delay)
            try:
                proc.stdin.write((answer.render(code) + "\n").encode())
                proc.stdin.flush()
            except BrokenPipeError:
                pass
        # read to EOF done; let the process finish within the deadline
        try:
            proc.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            raise CaseFailure("pamtester closed its output but did not exit")

    def _wait_for_code(self, last4, nth, code_length, outbox_before, deadline):
        """The code in the nth message sent during this run to a number ending in last4:
        each prompt that is not a retry announces a new SMS, so that is the newest one."""
        while time.monotonic() < deadline:
            sent = [m for m in self.sandbox.outbox()[outbox_before:]
                    if str(m.get("to", "")).endswith(last4)]
            if len(sent) >= nth:
                body = sent[nth - 1].get("body")
                code = extract_code(body, code_length)
                check(code is not None, f"no {code_length}-digit code in the SMS body {body!r}")
                return code
            time.sleep(0.02)
        raise CaseFailure(f"prompt {nth} for ******{last4} but only fewer SMS to that number")

    def _check_no_secrets(self, run, code_length):
        codes = set(run.codes)
        for msg in run.outbox:
            codes.update(re.findall(rf"(?<!\d)\d{{{code_length}}}(?!\d)", msg.get("body") or ""))
        for line in run.raw_logs:
            check(AUTH_TOKEN not in line, f"auth token in a syslog line: {line!r}")
        check(AUTH_TOKEN not in run.output, "auth token in pamtester output")
        # phone numbers appear masked only, also inside Twilio's error messages
        numbers = {to.lstrip("+") for r in run.requests for to in r.get("form", {}).get("To", [])}
        for number in filter(None, numbers):
            for line in run.logs:
                check(number not in line, f"unmasked phone number {number} in a syslog line: {line!r}")
            check(number not in run.output, f"unmasked phone number {number} in pamtester output")
        for code in codes:
            # not after '*': a masked number (******1234) may end like a 4-digit code
            pattern = re.compile(rf"(?<![0-9A-Za-z*]){code}(?![0-9A-Za-z])")
            for line in run.logs:
                check(not pattern.search(line), f"code {code} in a syslog line: {line!r}")
            check(not pattern.search(run.output), f"code {code} in pamtester output {run.output!r}")

    # ---- expectations

    def expect(self, run, result, *, sms=None, requests=None, prompts=None, outcomes=1):
        """Checks the PAM result as pamtester saw it and as the module logged it,
        and the number of messages, requests and prompts when given."""
        want_status = 0 if result in ("PAM_SUCCESS", "PAM_IGNORE") else 1
        text = PAM_TEXT["PAM_SUCCESS" if result == "PAM_IGNORE" else result]
        check(run.status == want_status,
              f"pamtester exit {run.status}, want {want_status}; output {run.output!r}")
        check(text in run.output, f"pamtester said {run.output.strip()!r}, want {text!r}")
        check(len(run.outcomes) == outcomes,
              f"{len(run.outcomes)} outcome log lines, want {outcomes}: {run.module_logs!r}")
        check(all(r == result for r in run.results),
              f"logged {run.results}, want result={result}: {run.outcomes!r}")
        if sms is not None:
            check(len(run.outbox) == sms, f"{len(run.outbox)} SMS in the outbox, want {sms}")
        if requests is not None:
            check(len(run.requests) == requests,
                  f"{len(run.requests)} requests reached the sandbox, want {requests}")
        if prompts is not None:
            check(len(run.prompts) == prompts,
                  f"{len(run.prompts)} prompts, want {prompts}: {run.prompts!r}")


# --------------------------------------------------------------------------- cases

CASES = []


def case(fn):
    CASES.append((fn.__name__, fn))
    return fn


def simple_service(h, then_permit=False, args=("debug",), **over):
    return h.service(h.write_config(h.config(**over)), args=args, then_permit=then_permit)


@case
def success(h):
    svc = simple_service(h)
    run = h.authenticate(svc, "alice", [right()])
    h.expect(run, "PAM_SUCCESS", sms=1, requests=1, prompts=1)
    check(run.prompts[0] == "SMS code sent to ******0006: ", f"prompt {run.prompts[0]!r}")
    msg, req = run.outbox[0], run.requests[0]
    check(msg["to"] == "+15555550006", f"sent to {msg['to']!r}")
    check(msg["messaging_service_sid"] == MESSAGING_SID, f"sid {msg['messaging_service_sid']!r}")
    check(msg["body"] == DEFAULT_TEMPLATE.replace("{{code}}", run.codes[0]), f"body {msg['body']!r}")
    check(re.fullmatch(r"\d{6}", run.codes[0]), f"code {run.codes[0]!r} is not 6 digits")
    check(req["method"] == "POST" and req["status"] == 201, f"request {req['method']} -> {req['status']}")
    check(req["path"] == f"/2010-04-01/Accounts/{ACCOUNT_SID}/Messages.json", f"path {req['path']}")
    check(req["auth_ok"] is True, "HTTP Basic credentials not accepted")
    check(str(req["content_type"]).startswith("application/x-www-form-urlencoded"),
          f"content type {req['content_type']!r}")
    check(set(req["form"]) == {"To", "MessagingServiceSid", "Body"}, f"form fields {sorted(req['form'])}")
    check(msg.get("risk_check") in (None, ""),
          f"RiskCheck sent without disableRiskCheck: {msg.get('risk_check')!r}")
    line = run.outcomes[0]
    for part in ("user=alice", "phone=******0006", f"sid={msg['sid']}", "attempts=1"):
        check(part in line, f"outcome line lacks {part!r}: {line!r}")
    check("+15555550006" not in " ".join(run.logs), "full phone number in syslog")


@case
def answer_with_whitespace(h):
    svc = simple_service(h)
    run = h.authenticate(svc, "alice", [right(fmt="  {code}\t ")])
    h.expect(run, "PAM_SUCCESS", sms=1, prompts=1)


@case
def wrong_then_right(h):
    svc = simple_service(h, maxAttempts=3)
    run = h.authenticate(svc, "alice", [wrong(), right()])
    h.expect(run, "PAM_SUCCESS", sms=1, requests=1, prompts=2)
    check(run.prompts[1] == "Wrong code. SMS code sent to ******0006: ", f"second prompt {run.prompts[1]!r}")
    check("attempts=2" in run.outcomes[0], f"outcome line {run.outcomes[0]!r}")


@case
def all_attempts_wrong(h):
    svc = simple_service(h, maxAttempts=3)
    run = h.authenticate(svc, "alice", [wrong(), wrong(), wrong(), right()])
    h.expect(run, "PAM_MAXTRIES", sms=1, prompts=3)
    check("attempts=3" in run.outcomes[0], f"outcome line {run.outcomes[0]!r}")


@case
def code_expired(h):
    svc = simple_service(h, codeTtlSeconds=2)
    run = h.authenticate(svc, "alice", [right(delay=3.0), right()])
    h.expect(run, "PAM_AUTH_ERR", sms=1, prompts=1)


@case
def leading_zero_code(h):
    """Until a code starting with 0 arrives (each try has a 1 in 10 chance): the code
    without its leading zeros is refused, the exact code is accepted."""
    svc = simple_service(h, codeLength=4, maxAttempts=2)
    for _ in range(100):
        run = h.authenticate(svc, "carol", [without_leading_zeros(), right()], code_length=4)
        check(run.codes and re.fullmatch(r"\d{4}", run.codes[0]), f"no 4-digit code: {run.codes!r}")
        if run.codes[0].startswith("0"):
            h.expect(run, "PAM_SUCCESS", sms=1, prompts=2)
            check("attempts=2" in run.outcomes[0], f"outcome line {run.outcomes[0]!r}")
            return
        h.expect(run, "PAM_SUCCESS", sms=1, prompts=1)
    raise CaseFailure("100 codes of length 4, none started with 0 (chance 3e-5): not uniform?")


@case
def every_placeholder_replaced(h):
    template = "A {{code}} B {{code}} C {{ code }} D"
    svc = simple_service(h, templates=[{"usageType": "SignIn", "content": template}])
    run = h.authenticate(svc, "alice", [right()])
    h.expect(run, "PAM_SUCCESS", sms=1)
    c = run.codes[0]
    check(run.outbox[0]["body"] == f"A {c} B {c} C {c} D", f"body {run.outbox[0]['body']!r}")


@case
def url_encoding_plus_and_non_ascii(h):
    template = "Grüße ✓ 你好 — code {{code}} & a+b=c %20 100% ?x=1;"
    svc = simple_service(h, templates=[{"usageType": "SignIn", "content": template}])
    run = h.authenticate(svc, "alice", [right()])
    h.expect(run, "PAM_SUCCESS", sms=1)
    want = template.replace("{{code}}", run.codes[0])
    got = run.outbox[0]["body"]
    check(got.encode("utf-8") == want.encode("utf-8"), f"body {got!r}, want {want!r}")
    check(run.outbox[0]["to"] == "+15555550006", f"To arrived as {run.outbox[0]['to']!r}")
    form_to = run.requests[0]["form"].get("To")
    check(form_to == ["+15555550006"], f"form field To {form_to!r}")


@case
def number_without_plus_sent_as_e164(h):
    svc = simple_service(h)
    run = h.authenticate(svc, "bob", [right()])
    h.expect(run, "PAM_SUCCESS", sms=1)
    check(run.outbox[0]["to"] == "+15555550007", f"To {run.outbox[0]['to']!r}")
    check(run.prompts[0] == "SMS code sent to ******0007: ", f"prompt {run.prompts[0]!r}")


@case
def number_with_spaces_and_dashes(h):
    svc = simple_service(h)
    run = h.authenticate(svc, "carol", [right()])
    h.expect(run, "PAM_SUCCESS", sms=1)
    check(run.outbox[0]["to"] == "+15555551234", f"To {run.outbox[0]['to']!r}")


@case
def unmapped_user_denied(h):
    """Without nullok an unmapped user sees the same prompts as a mapped one (a stable
    made-up number), is never accepted, and no SMS is sent."""
    svc = simple_service(h, then_permit=True, maxAttempts=3)
    run = h.authenticate(svc, "mallory", [typed("123456")] * 3)
    h.expect(run, "PAM_MAXTRIES", sms=0, requests=0, prompts=3)
    check(re.fullmatch(r"SMS code sent to \*{6}\d{4}: ", run.prompts[0]), f"prompt {run.prompts[0]!r}")
    check(run.prompts[1:] == ["Wrong code. " + run.prompts[0]] * 2, f"prompts {run.prompts!r}")
    check("no phone number mapped" in run.outcomes[0], f"outcome {run.outcomes[0]!r}")
    again = h.authenticate(svc, "mallory", [typed("654321")])
    check(again.prompts[0] == run.prompts[0], f"the made-up number changed: {again.prompts[0]!r}")


@case
def unmapped_user_nullok(h):
    svc = simple_service(h, then_permit=True, args=("nullok", "debug"))
    run = h.authenticate(svc, "mallory", [right()])
    h.expect(run, "PAM_IGNORE", sms=0, requests=0, prompts=0)


@case
def mapped_user_nullok_still_asked(h):
    svc = simple_service(h, then_permit=True, args=("nullok",), maxAttempts=1)
    run = h.authenticate(svc, "alice", [wrong()])
    h.expect(run, "PAM_MAXTRIES", sms=1, prompts=1)


# ---- config refusals: PAM_SERVICE_ERR, nothing sent, a `config PATH: ` line

def expect_config_error(h, run, path, *needles):
    h.expect(run, "PAM_SERVICE_ERR", sms=0, requests=0, prompts=0)
    lines = [l for l in run.module_logs if l.startswith(f"config {path}: ")]
    check(lines, f"no 'config {path}: ' log line: {run.module_logs!r}")
    for needle in needles:
        alts = needle if isinstance(needle, tuple) else (needle,)
        check(any(a in l for l in lines for a in alts),
              f"config log line does not mention {' or '.join(alts)!r}: {lines!r}")


def config_error_case(h, cfg, *needles, mode=0o600, uid=0, path=None, then_permit=False):
    path = path or h.write_config(cfg, mode=mode, uid=uid)
    run = h.authenticate(h.service(path, then_permit=then_permit), "alice", [right()])
    expect_config_error(h, run, path, *needles)


@case
def config_group_readable(h):
    config_error_case(h, h.config(), ("640", "0640"), mode=0o640)


@case
def config_world_readable(h):
    config_error_case(h, h.config(), ("604", "0604"), mode=0o604)


@case
def config_not_root_owned(h):
    nobody = pwd.getpwnam("nobody").pw_uid
    config_error_case(h, h.config(), ("nobody", str(nobody)), uid=nobody)


@case
def config_symlink(h):
    target = h.write_config(h.config(), name="symlink-target")
    link = h.confdir / "symlink.json"
    link.unlink(missing_ok=True)
    link.symlink_to(target)
    config_error_case(h, None, path=str(link))


@case
def config_missing(h):
    config_error_case(h, None, path=str(h.confdir / "does-not-exist.json"))


@case
def config_malformed_json(h):
    text = json.dumps(h.config())[:-1] + ',,}'
    config_error_case(h, text)


@case
def config_unknown_key(h):
    config_error_case(h, h.config(codeLenght=6), "codeLenght")


@case
def config_duplicate_key(h):
    text = json.dumps(h.config())[:-1] + ', "maxAttempts": 3, "maxAttempts": 10}'
    config_error_case(h, text, "maxAttempts")


@case
def config_bad_account_sid(h):
    config_error_case(h, h.config(accountSID="AC0123"), "accountSID")


@case
def config_bad_messaging_service_sid(h):
    config_error_case(h, h.config(fromMessagingServiceSID="MGnot-hex-at-all-0123456789abcdef01"),
                      "fromMessagingServiceSID")


@case
def config_http_api_base_url(h):
    config_error_case(h, h.config(apiBaseUrl=f"http://127.0.0.1:{h.sandbox.port}"), "apiBaseUrl")


@case
def config_template_without_placeholder(h):
    config_error_case(h, h.config(templates=[{"usageType": "SignIn", "content": "no code here"}]))


@case
def config_body_too_long(h):
    content = "x" * 1600 + " {{code}}"
    config_error_case(h, h.config(templates=[{"usageType": "SignIn", "content": content}]))


@case
def config_invalid_phone_names_user(h):
    config_error_case(h, h.config(users={"alice": "+15555550006", "eve": "+0123"}), "eve")


@case
def config_missing_signin_uses_generic(h):
    templates = [{"usageType": "Register", "content": "Register {{code}}"},
                 {"usageType": "Generic", "content": "Generic code {{code}} here"}]
    svc = simple_service(h, templates=templates)
    run = h.authenticate(svc, "alice", [right()])
    h.expect(run, "PAM_SUCCESS", sms=1)
    check(run.outbox[0]["body"] == f"Generic code {run.codes[0]} here", f"body {run.outbox[0]['body']!r}")


@case
def config_missing_signin_and_generic(h):
    templates = [{"usageType": "Register", "content": "Register {{code}}"},
                 {"usageType": "Test", "content": "Test {{code}}"}]
    config_error_case(h, h.config(templates=templates), "SignIn")


# ---- Twilio failures

def twilio_case(h, scenario, result, *, fail_mode=None, timeout=5, then_permit=True, sms=0,
                requests=None):
    h.sandbox.set_scenario(scenario)
    over = {"timeoutSeconds": timeout}
    if fail_mode:
        over["failMode"] = fail_mode
    svc = simple_service(h, then_permit=then_permit, **over)
    run = h.authenticate(svc, "alice", [right()])
    h.expect(run, result, sms=sms, requests=requests, prompts=0)
    return run


@case
def twilio_401(h):
    run = twilio_case(h, "401", "PAM_AUTHINFO_UNAVAIL", requests=1)
    check(run.requests[0]["status"] == 401, f"sandbox answered {run.requests[0]['status']}")
    check(any("20003" in l for l in run.module_logs), f"error code 20003 not logged: {run.module_logs!r}")


@case
def twilio_400_21211(h):
    run = twilio_case(h, "400-21211", "PAM_AUTHINFO_UNAVAIL", requests=1)
    check(any("21211" in l for l in run.module_logs), f"error code 21211 not logged: {run.module_logs!r}")


@case
def twilio_429(h):
    twilio_case(h, "429", "PAM_AUTHINFO_UNAVAIL")


@case
def twilio_500(h):
    twilio_case(h, "500", "PAM_AUTHINFO_UNAVAIL")


@case
def twilio_503(h):
    twilio_case(h, "503", "PAM_AUTHINFO_UNAVAIL")


@case
def twilio_hang_within_budget(h):
    run = twilio_case(h, "hang", "PAM_AUTHINFO_UNAVAIL", timeout=2, sms=None)
    limit = 2 + 1.5 + TIME_SLACK
    check(run.elapsed < limit, f"took {run.elapsed:.2f}s with timeoutSeconds=2 (limit {limit:.1f}s)")


@case
def twilio_slow_within_budget(h):
    h.sandbox.set_scenario("slow:1")
    svc = simple_service(h, timeoutSeconds=5)
    run = h.authenticate(svc, "alice", [right()])
    h.expect(run, "PAM_SUCCESS", sms=1, requests=1, prompts=1)


@case
def twilio_garbage_body(h):
    twilio_case(h, "garbage", "PAM_AUTHINFO_UNAVAIL", sms=None)


@case
def twilio_connection_drop(h):
    twilio_case(h, "drop", "PAM_AUTHINFO_UNAVAIL", sms=None)


@case
def twilio_wrong_host_certificate(h):
    twilio_case(h, "wronghost", "PAM_AUTHINFO_UNAVAIL", requests=0)


@case
def twilio_unknown_ca(h):
    h.sandbox.set_scenario("ok")
    svc = simple_service(h, then_permit=True, caFile=None)  # system trust store
    run = h.authenticate(svc, "alice", [right()])
    h.expect(run, "PAM_AUTHINFO_UNAVAIL", sms=0, requests=0, prompts=0)


@case
def twilio_big_body(h):
    twilio_case(h, "big", "PAM_AUTHINFO_UNAVAIL", sms=None)


@case
def twilio_redirect_not_followed(h):
    twilio_case(h, "redirect", "PAM_AUTHINFO_UNAVAIL", sms=0, requests=1)


@case
def twilio_unreachable(h):
    # a loopback port nothing listens on
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    svc = simple_service(h, then_permit=True, apiBaseUrl=f"https://127.0.0.1:{port}")
    run = h.authenticate(svc, "alice", [right()])
    h.expect(run, "PAM_AUTHINFO_UNAVAIL", sms=0, requests=0, prompts=0)


@case
def twilio_magic_number_invalid(h):
    svc = simple_service(h, then_permit=True, users={"alice": "+15005550001"})
    run = h.authenticate(svc, "alice", [right()])
    h.expect(run, "PAM_AUTHINFO_UNAVAIL", sms=0, requests=1, prompts=0)


# ---- failMode

@case
def fail_closed_when_unavailable(h):
    twilio_case(h, "503", "PAM_AUTHINFO_UNAVAIL", fail_mode="closed", then_permit=True)


@case
def fail_open_when_unavailable(h):
    run = twilio_case(h, "503", "PAM_IGNORE", fail_mode="open", then_permit=True)
    check(any("failMode=open" in l for l in run.module_logs),
          f"no failMode=open warning: {run.module_logs!r}")


@case
def fail_open_when_timed_out(h):
    run = twilio_case(h, "hang", "PAM_IGNORE", fail_mode="open", timeout=2, then_permit=True, sms=None)
    check(run.elapsed < 2 + 1.5 + TIME_SLACK, f"took {run.elapsed:.2f}s with timeoutSeconds=2")


@case
def fail_open_not_on_config_error(h):
    path = h.write_config(h.config(failMode="open", accountSID="ACbad"))
    run = h.authenticate(h.service(path, then_permit=True), "alice", [right()])
    expect_config_error(h, run, path, "accountSID")


@case
def fail_open_not_on_401(h):
    twilio_case(h, "401", "PAM_AUTHINFO_UNAVAIL", fail_mode="open", then_permit=True, requests=1)


@case
def fail_open_not_on_400(h):
    twilio_case(h, "400-21211", "PAM_AUTHINFO_UNAVAIL", fail_mode="open", then_permit=True, requests=1)


# ---- request details and re-entry

@case
def disable_risk_check(h):
    svc = simple_service(h, disableRiskCheck=True)
    run = h.authenticate(svc, "alice", [right()])
    h.expect(run, "PAM_SUCCESS", sms=1, requests=1)
    check(run.outbox[0].get("risk_check") == "disable", f"risk_check {run.outbox[0].get('risk_check')!r}")
    check(run.requests[0]["form"].get("RiskCheck") == ["disable"], f"form {run.requests[0]['form']!r}")


@case
def module_twice_in_one_stack(h):
    path = h.write_config(h.config())
    svc = h.service(path, twice=True)
    run = h.authenticate(svc, "alice", [right(), right()])
    h.expect(run, "PAM_SUCCESS", sms=2, requests=2, prompts=2, outcomes=2)
    check(run.prompts == ["SMS code sent to ******0006: "] * 2, f"prompts {run.prompts!r}")
    sids = [m["sid"] for m in run.outbox]
    for sid, line in zip(sids, run.outcomes):
        check(f"sid={sid}" in line, f"outcome {line!r} lacks sid={sid}")


@case
def conversation_failure(h):
    svc = simple_service(h)
    run = h.authenticate(svc, "alice", [])  # stdin closed at the prompt
    h.expect(run, "PAM_CONV_ERR", sms=1, prompts=1)


# ---- TLS: certificates and protocols the module must refuse; nothing reaches Twilio

def tls_refused_case(h, scenario):
    h.sandbox.set_scenario(scenario)
    svc = simple_service(h, then_permit=True)
    run = h.authenticate(svc, "alice", [right()])
    h.expect(run, "PAM_AUTHINFO_UNAVAIL", sms=0, requests=0, prompts=0)
    check(re.search(r"\bTLS\b", run.outcomes[0]),
          f"outcome does not classify the failure as TLS: {run.outcomes[0]!r}")
    return run


@case
def tls_self_signed_refused(h):
    tls_refused_case(h, "selfsigned")
    # the same certificate made a trust anchor is accepted: only the trust was missing
    svc = simple_service(h, caFile=str(h.sandbox.dir / "selfsigned.pem"))
    run = h.authenticate(svc, "alice", [right()])
    h.expect(run, "PAM_SUCCESS", sms=1, requests=1, prompts=1)


@case
def tls_expired_refused(h):
    tls_refused_case(h, "expired")


@case
def tls_11_refused(h):
    tls_refused_case(h, "tls11")


# ---- bad input: each gives a denial, a clear log line and no crash

PAM_CLIENT_BIN = REPO / "tests" / "e2e" / "pam_client"
PAM_CODES = {
    "PAM_SUCCESS": 0, "PAM_SERVICE_ERR": 3, "PAM_SYSTEM_ERR": 4, "PAM_BUF_ERR": 5,
    "PAM_PERM_DENIED": 6, "PAM_AUTH_ERR": 7, "PAM_AUTHINFO_UNAVAIL": 9, "PAM_USER_UNKNOWN": 10,
    "PAM_MAXTRIES": 11, "PAM_CONV_ERR": 19, "PAM_IGNORE": 25, "PAM_ABORT": 26,
}
CONTROL_RE = re.compile(r"[\x00-\x1f\x7f]")
LOG_LINE_LIMIT = 1024  # the module's longest log line (lib/log.c), syslog header aside


def pam_client_problem():
    """Builds tests/e2e/pam_client when missing or older than its source (make e2e-client);
    returns what went wrong, or None."""
    src = PAM_CLIENT_BIN.with_suffix(".c")
    if PAM_CLIENT_BIN.is_file() and PAM_CLIENT_BIN.stat().st_mtime >= src.stat().st_mtime:
        return None
    done = subprocess.run(["make", "-s", "-C", str(REPO), "e2e-client"], capture_output=True,
                          text=True)
    if done.returncode != 0 or not PAM_CLIENT_BIN.is_file():
        return f"cannot build {PAM_CLIENT_BIN}: {(done.stderr or done.stdout).strip()[-300:]}"
    return None


def pam_client_cmd(service, user, mode, *extra):
    problem = pam_client_problem()
    check(problem is None, problem)
    return [str(PAM_CLIENT_BIN), service, user, mode, *extra]


def client_run(h, service, user, mode, *extra, limit=RUN_LIMIT):
    """Runs `pam_client SERVICE USER MODE [extra]` with stdin closed and returns the Run;
    its status is the PAM code pam_client exited with (negative: killed by that signal)."""
    run = Run()
    run.service = service
    outbox_before = len(h.sandbox.outbox())
    requests_before = len(h.sandbox.requests())
    log_mark = h.syslog.mark()
    cmd = h.syslog.wrap(PAM_CLIENT_PREFIX + pam_client_cmd(service, user, mode, *extra))
    start = time.monotonic()
    proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, start_new_session=True)
    try:
        out, _ = proc.communicate(timeout=limit)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        raise CaseFailure(f"pam_client {mode} still running after {limit:.0f}s") from None
    run.elapsed = time.monotonic() - start
    run.status = proc.returncode
    run.output = out.decode("utf-8", errors="replace")
    run.prompts = [m.group(0) for m in map(PROMPT_RE.search, run.output.splitlines()) if m]
    run.outbox = h.sandbox.outbox()[outbox_before:]
    run.requests = h.sandbox.requests()[requests_before:]
    run.raw_logs = h.syslog.collect(log_mark)
    run.logs = [h._message(l) for l in run.raw_logs]
    if h.verbose:
        print(f"[{h.case}] pam_client {service} {user!r} {mode}\n{run.describe()}")
    h._check_no_secrets(run, 6)
    return run


def expect_client(run, result, *, sms=None, requests=None, prompts=None, outcomes=1):
    """h.expect for pam_client runs: its exit status is the PAM code."""
    code = PAM_CODES[result]
    check(run.status is not None and run.status >= 0,
          f"pam_client killed by signal {-(run.status or 0)}; output {run.output[-300:]!r}")
    check(run.status == code and f"code={code}\n" in run.output,
          f"pam_client exit {run.status}, want {code} ({result}); output {run.output[-300:]!r}")
    check(len(run.outcomes) == outcomes,
          f"{len(run.outcomes)} outcome log lines, want {outcomes}: {run.module_logs!r}")
    check(all(r == result for r in run.results),
          f"logged {run.results}, want result={result}: {run.outcomes!r}")
    if sms is not None:
        check(len(run.outbox) == sms, f"{len(run.outbox)} SMS in the outbox, want {sms}")
    if requests is not None:
        check(len(run.requests) == requests,
              f"{len(run.requests)} requests reached the sandbox, want {requests}")
    if prompts is not None:
        check(len(run.prompts) == prompts,
              f"{len(run.prompts)} prompts, want {prompts}: {run.prompts!r}")


def check_clean_logs(run):
    """No syslog line carries a control character (log injection) or runs past the limit."""
    for line in run.logs:
        check(not CONTROL_RE.search(line), f"control character in a syslog line: {line!r}")
        check(len(line.encode()) <= LOG_LINE_LIMIT + 64,
              f"syslog line of {len(line.encode())} bytes: {line[:200]!r}...")


@case
def answer_1mb(h):
    path = h.workdir / "answer-1mb"
    path.write_bytes(b"1" * (1 << 20))
    svc = simple_service(h, maxAttempts=2)
    run = client_run(h, svc, "alice", "answer-file", str(path))
    expect_client(run, "PAM_MAXTRIES", sms=1, requests=1, prompts=2)
    check("attempts=2" in run.outcomes[0], f"outcome line {run.outcomes[0]!r}")
    check_clean_logs(run)


@case
def answer_with_nul_bytes(h):
    path = h.workdir / "answer-nul"
    path.write_bytes(b"12\x003456\x00789\n")
    svc = simple_service(h, maxAttempts=2)
    run = client_run(h, svc, "alice", "answer-file", str(path))
    expect_client(run, "PAM_MAXTRIES", sms=1, requests=1, prompts=2)
    check_clean_logs(run)


@case
def answer_nul_hides_the_right_code(h):
    """A PAM answer is a C string: what follows a NUL byte never reaches the module."""
    svc = simple_service(h, maxAttempts=1)
    wrong_digits = wrong().render
    run = h.authenticate(svc, "alice", [answer_with(lambda c: wrong_digits(c) + "\0" + c)],
                         client=pam_client_cmd(svc, "alice", "stdin"))
    expect_client(run, "PAM_MAXTRIES", sms=1, requests=1, prompts=1)
    check_clean_logs(run)


@case
def answers_with_non_digits(h):
    fullwidth = str.maketrans("0123456789", "０１２３４５６７８９")
    answers = [
        answer_with(lambda c: c[:3] + "a" + c[4:]),
        answer_with(lambda c: "x" + c),
        answer_with(lambda c: c.translate(fullwidth)),
        answer_with(lambda c: c[:3] + " " + c[3:]),
        answer_with(lambda c: "+" + c),
        answer_with(lambda c: c + "!"),
    ]
    svc = simple_service(h, maxAttempts=len(answers))
    run = h.authenticate(svc, "alice", answers)
    h.expect(run, "PAM_MAXTRIES", sms=1, requests=1, prompts=len(answers))
    check(f"attempts={len(answers)}" in run.outcomes[0], f"outcome line {run.outcomes[0]!r}")
    check_clean_logs(run)


def bad_user_case(h, user):
    """An unmapped, odd user name: denied, no SMS, one sanitised outcome line."""
    svc = simple_service(h, maxAttempts=2)
    run = h.authenticate(svc, user, [typed("123456"), typed("123456")])
    short = [l if len(l) < 200 else f"{l[:60]}...({len(l)} chars)...{l[-100:]}"
             for l in run.module_logs]
    check(len(run.outcomes) == 1, f"{len(run.outcomes)} outcome lines (result= cut off?): {short}")
    # the decoy challenge of an unmapped user ends like a mapped user's wrong answers
    h.expect(run, "PAM_MAXTRIES", sms=0, requests=0)
    check(len(run.prompts) == 2, f"{len(run.prompts)} prompts: {run.prompts!r}")
    check_clean_logs(run)
    check("user=" in run.outcomes[0], f"outcome line names no user: {run.outcomes[0]!r}")
    return run


@case
def user_name_with_slash(h):
    bad_user_case(h, "a/b")


@case
def user_name_dotdot(h):
    bad_user_case(h, "..")
    bad_user_case(h, "../../../../etc/passwd")


@case
def user_name_with_newline(h):
    forged = "sshd[1]: Accepted publickey for root"
    run = bad_user_case(h, f"mallory\n{forged}")
    for raw in run.raw_logs:
        check("\n" not in raw.rstrip("\n") and "\r" not in raw, f"newline in a datagram: {raw!r}")
    check(any(forged in l for l in run.outcomes),
          f"the user name is not in the outcome line, sanitised: {run.outcomes!r}")


@case
def user_name_1kb(h):
    bad_user_case(h, "u" * 1024)


# ---- conversations that fail or return nothing: PAM_CONV_ERR, no crash

@case
def conv_fails_at_code_prompt(h):
    svc = simple_service(h)
    run = client_run(h, svc, "alice", "conv-fail")
    expect_client(run, "PAM_CONV_ERR", sms=1, requests=1, prompts=1)


@case
def conv_returns_null_at_code_prompt(h):
    svc = simple_service(h)
    run = client_run(h, svc, "alice", "conv-null")
    expect_client(run, "PAM_CONV_ERR", sms=1, requests=1, prompts=1)


@case
def conv_null_response_at_code_prompt(h):
    svc = simple_service(h)
    run = client_run(h, svc, "alice", "null-resp")
    expect_client(run, "PAM_CONV_ERR", sms=1, requests=1, prompts=1)


def user_prompt_case(h, mode):
    """No user given to pam_start: the module's pam_get_user asks through the
    conversation, which fails; nothing may be sent."""
    svc = simple_service(h)
    run = client_run(h, svc, "-", mode)
    expect_client(run, "PAM_CONV_ERR", sms=0, requests=0, prompts=0)


@case
def conv_fails_at_user_prompt(h):
    user_prompt_case(h, "conv-fail")


@case
def conv_returns_null_at_user_prompt(h):
    user_prompt_case(h, "conv-null")


@case
def conv_null_response_at_user_prompt(h):
    user_prompt_case(h, "null-resp")


# ---- hostile config files: refused (PAM_SERVICE_ERR) quickly, nothing sent

@case
def config_100mb_refused_quickly(h):
    path = h.write_config(h.config())
    os.truncate(path, 100 << 20)  # sparse: a valid config, then NUL bytes up to 100 MB
    run = h.authenticate(h.service(path), "alice", [right()])
    expect_config_error(h, run, path, "bytes")
    check(run.elapsed < 2 + TIME_SLACK, f"took {run.elapsed:.2f}s to refuse a 100 MB config")


@case
def config_deeply_nested_json(h):
    depth = 100000
    for name, deep in (("arrays", "[" * depth + "]" * depth),
                       ("objects", '{"a":' * depth + "1" + "}" * depth)):
        text = json.dumps(h.config(users="@DEEP@")).replace('"@DEEP@"', deep)
        path = h.write_config(text, name=f"{h.case}-{name}")
        run = h.authenticate(h.service(path), "alice", [right()])
        expect_config_error(h, run, path)
        check(run.elapsed < 2 + TIME_SLACK, f"took {run.elapsed:.2f}s for {depth} nested {name}")
        check_clean_logs(run)


@case
def config_duplicate_keys_nested(h):
    base = json.dumps(h.config())
    users = '"users": {"alice": "+15555550006", "alice": "+15555550007"}'
    variants = {
        "users": (re.sub(r'"users": \{[^}]*\}', lambda _: users, base), "alice"),
        "template": (base.replace('"content": "Welcome', '"content": "x {{code}}", "content": "Welcome'),
                     "content"),
        # the same key once written with a \\u escape: duplicates are found after decoding
        "escaped": (base[:-1] + ', "accountSI\\u0044": "' + ACCOUNT_SID + '"}', "accountSID"),
    }
    for name, (text, needle) in variants.items():
        check(text != base, f"variant {name} did not change the config")
        path = h.write_config(text, name=f"{h.case}-{name}")
        run = h.authenticate(h.service(path), "alice", [right()])
        expect_config_error(h, run, path, needle)


@case
def config_template_10000_placeholders(h):
    for placeholder in ("{{code}}", "{{ code }}"):
        templates = [{"usageType": "SignIn", "content": placeholder * 10000}]
        path = h.write_config(h.config(templates=templates))
        run = h.authenticate(h.service(path), "alice", [right()])
        expect_config_error(h, run, path, "1600")
        check(run.elapsed < 2 + TIME_SLACK, f"took {run.elapsed:.2f}s")
        check_clean_logs(run)


# ---- send limits, resend, lockout and state files (issue 3)

STATE_RE = re.compile(r"v1 window_start=(\d+) sends=(\d+) last_send=(\d+) failures=(\d+) "
                      r"locked_until=(\d+)\n")
STATE_FIELDS = ("window_start", "sends", "last_send", "failures", "locked_until")
GLOBAL_STATE = "@global"  # the globalSendLimit counter's file in stateDir
TOO_MANY_SMS_RE = re.compile(r"Too many SMS codes requested\b.*?(\d+) seconds")
# a window, cooldown or lockout short enough to wait out, long enough to outlast two runs
SHORT_SECONDS = int(2 + 2 * TIME_SLACK)


def new_state_dir(h, tag="state"):
    """A stateDir path for this case that does not exist yet (its parent does)."""
    parent = h.workdir / "state"
    parent.mkdir(mode=0o700, exist_ok=True)
    path = parent / f"{h.case}-{tag}"
    shutil.rmtree(path, ignore_errors=True)
    return path


def read_state(path):
    """The fields of a state file; fails the case when it is not well-formed."""
    text = Path(path).read_text(errors="replace")
    m = STATE_RE.fullmatch(text)
    check(m, f"state file {path} is not well-formed: {text!r}")
    return dict(zip(STATE_FIELDS, map(int, m.groups())))


def check_state_files(state_dir):
    """Every file in stateDir is a root-only regular file; state files are well-formed,
    no temporary file is left behind. Returns the state file names."""
    names = []
    for name in sorted(os.listdir(state_dir)):
        path = Path(state_dir) / name
        st = os.lstat(path)
        check(stat.S_ISREG(st.st_mode) and st.st_uid == 0 and st.st_mode & 0o077 == 0,
              f"{path}: mode {st.st_mode:o} uid {st.st_uid}")
        if name.startswith(".") and name.endswith(".lock"):
            continue
        check(name == GLOBAL_STATE or re.fullmatch(r"[a-z_][a-z0-9_.-]{0,31}|=[0-9a-f]{32}", name),
              f"unexpected file in stateDir: {name!r}")
        read_state(path)
        names.append(name)
    return names


def told_too_many(run, max_wait):
    m = TOO_MANY_SMS_RE.search(run.output)
    check(m, f"the user was not told to wait: {run.output!r}")
    check(0 < int(m.group(1)) <= max_wait, f"told to wait {m.group(1)} s (at most {max_wait})")


def keep(seen, text):
    """Answers text at a prompt that announced an SMS, remembering that SMS's code in seen."""
    return answer_with(lambda c: seen.append(c) or text)


@case
def send_limit(h):
    sd = new_state_dir(h)
    svc = simple_service(h, stateDir=str(sd), sendLimit=3, resendCooldownSeconds=0)
    for _ in range(3):
        run = h.authenticate(svc, "alice", [right()])
        h.expect(run, "PAM_SUCCESS", sms=1, requests=1, prompts=1)
    run = h.authenticate(svc, "alice", [right()])
    h.expect(run, "PAM_AUTH_ERR", sms=0, requests=0, prompts=0)
    told_too_many(run, 900)
    check("sendLimit" in run.outcomes[0], f"outcome does not name sendLimit: {run.outcomes[0]!r}")
    check(read_state(sd / "alice")["sends"] == 3, f"state {read_state(sd / 'alice')}")
    run = h.authenticate(svc, "bob", [right()])  # another user is not affected
    h.expect(run, "PAM_SUCCESS", sms=1, prompts=1)
    check_state_files(sd)


@case
def send_window_rolls_over(h):
    sd = new_state_dir(h)
    svc = simple_service(h, stateDir=str(sd), sendLimit=1, sendWindowSeconds=SHORT_SECONDS)
    run = h.authenticate(svc, "alice", [right()])
    h.expect(run, "PAM_SUCCESS", sms=1, prompts=1)
    run = h.authenticate(svc, "alice", [right()])
    h.expect(run, "PAM_AUTH_ERR", sms=0, prompts=0)
    told_too_many(run, SHORT_SECONDS)
    time.sleep(SHORT_SECONDS + 1.1)
    run = h.authenticate(svc, "alice", [right()])
    h.expect(run, "PAM_SUCCESS", sms=1, prompts=1)


@case
def resend_cooldown(h):
    sd = new_state_dir(h)
    svc = simple_service(h, stateDir=str(sd), resendCooldownSeconds=30)
    run = h.authenticate(svc, "alice", [right()])
    h.expect(run, "PAM_SUCCESS", sms=1, prompts=1)
    run = h.authenticate(svc, "alice", [right()])
    h.expect(run, "PAM_AUTH_ERR", sms=0, requests=0, prompts=0)
    told_too_many(run, 30)
    check("resendCooldownSeconds" in run.outcomes[0], f"outcome {run.outcomes[0]!r}")
    svc = simple_service(h, stateDir=str(sd), resendCooldownSeconds=SHORT_SECONDS)
    time.sleep(SHORT_SECONDS + 1.1)
    run = h.authenticate(svc, "alice", [right()])
    h.expect(run, "PAM_SUCCESS", sms=1, prompts=1)


@case
def global_send_limit(h):
    sd = new_state_dir(h)
    svc = simple_service(h, stateDir=str(sd), globalSendLimit=2)
    for user in ("alice", "bob"):
        run = h.authenticate(svc, user, [right()])
        h.expect(run, "PAM_SUCCESS", sms=1, prompts=1)
    run = h.authenticate(svc, "carol", [right()])
    h.expect(run, "PAM_AUTH_ERR", sms=0, requests=0, prompts=0)
    told_too_many(run, 900)
    check("globalSendLimit" in run.outcomes[0], f"outcome {run.outcomes[0]!r}")
    check(read_state(sd / GLOBAL_STATE)["sends"] == 2, f"global {read_state(sd / GLOBAL_STATE)}")
    check_state_files(sd)


@case
def allowed_country_codes(h):
    users = dict(USERS, dave="+44 7700 900123")
    svc = simple_service(h, users=users, allowedCountryCodes=["+44"])
    run = h.authenticate(svc, "dave", [right()])
    h.expect(run, "PAM_SUCCESS", sms=1, prompts=1)
    check(run.outbox[0]["to"] == "+447700900123", f"To {run.outbox[0]['to']!r}")
    run = h.authenticate(svc, "alice", [right()])
    h.expect(run, "PAM_AUTH_ERR", sms=0, requests=0, prompts=0)
    check("allowedCountryCodes" in run.outcomes[0], f"outcome {run.outcomes[0]!r}")
    check("cannot be sent" in run.output, f"the user was not told: {run.output!r}")
    svc = simple_service(h, users=users, allowedCountryCodes=["+1", "+44"])
    run = h.authenticate(svc, "alice", [right()])
    h.expect(run, "PAM_SUCCESS", sms=1, prompts=1)


@case
def resend_on_empty_answer(h):
    """An empty answer sends a new code; the old one is then refused, the new one accepted."""
    svc = simple_service(h, maxResends=1, maxAttempts=3)
    seen = []
    run = h.authenticate(svc, "alice", [keep(seen, ""), answer_with(lambda c: seen[0]), right()])
    h.expect(run, "PAM_SUCCESS", sms=2, requests=2, prompts=3)
    check(run.prompts[1:] == ["New SMS code sent to ******0006: ",
                              "Wrong code. SMS code sent to ******0006: "],
          f"prompts {run.prompts!r}")
    check(seen[0] != run.codes[1], "the two codes happen to be equal (chance 1e-6)")
    check(run.codes[2] == run.codes[1], f"codes {run.codes!r}")


@case
def resend_limit_max_resends(h):
    for max_resends in (0, 1, 2):
        svc = simple_service(h, maxResends=max_resends, maxAttempts=3)
        seen = []
        answers = [keep(seen, "") for _ in range(max_resends + 1)]
        answers.append(typed(lambda: seen[-1]))  # the last code sent is still good
        run = h.authenticate(svc, "alice", answers)
        h.expect(run, "PAM_SUCCESS", sms=max_resends + 1, prompts=max_resends + 2)
        check("No more codes can be sent. SMS code sent to ******0006: " in run.output,
              f"maxResends={max_resends}: no refusal in {run.output!r}")


@case
def resend_respects_limits(h):
    """A resend refused by the cooldown or sendLimit sends nothing; the old code stays good."""
    for over in ({"resendCooldownSeconds": 30}, {"sendLimit": 1}):
        sd = new_state_dir(h, "-".join(over))
        svc = simple_service(h, stateDir=str(sd), maxResends=1, **over)
        seen = []
        run = h.authenticate(svc, "alice", [keep(seen, ""), typed(lambda: seen[0])])
        h.expect(run, "PAM_SUCCESS", sms=1, requests=1, prompts=2)
        check(re.search(r"(Wait before asking for a new code|No more codes can be sent now)\. "
                        r"SMS code sent to \*{6}0006: ", run.output),
              f"{over}: prompt after the refused resend: {run.output!r}")


@case
def lockout(h):
    sd = new_state_dir(h)
    svc = simple_service(h, stateDir=str(sd), lockoutThreshold=3, maxAttempts=2)
    run = h.authenticate(svc, "alice", [wrong(), wrong()])
    h.expect(run, "PAM_MAXTRIES", sms=1, prompts=2)
    run = h.authenticate(svc, "alice", [right()])  # success resets the count
    h.expect(run, "PAM_SUCCESS", sms=1, prompts=1)
    check(read_state(sd / "alice")["failures"] == 0, f"state {read_state(sd / 'alice')}")
    run = h.authenticate(svc, "alice", [wrong(), wrong()])  # 2 of 3: not locked yet
    h.expect(run, "PAM_MAXTRIES", sms=1, prompts=2)
    run = h.authenticate(svc, "alice", [wrong(), right()])  # the third wrong answer locks
    h.expect(run, "PAM_AUTH_ERR", sms=1, prompts=1)
    check("Too many wrong codes" in run.output, f"the user was not told: {run.output!r}")
    check("lock" in run.outcomes[0], f"outcome {run.outcomes[0]!r}")
    state = read_state(sd / "alice")
    check(state["locked_until"] > time.time() + 800, f"state {state}")
    run = h.authenticate(svc, "alice", [right()])  # locked: no SMS, so even the right flow fails
    h.expect(run, "PAM_AUTH_ERR", sms=0, requests=0, prompts=0)
    check(re.search(r"locked for \d+ more seconds", run.output), f"not told: {run.output!r}")
    check("lockoutThreshold" in run.outcomes[0], f"outcome {run.outcomes[0]!r}")
    run = h.authenticate(svc, "bob", [right()])  # other users are not locked
    h.expect(run, "PAM_SUCCESS", sms=1, prompts=1)
    (sd / "alice").unlink()  # what an admin does to clear a lockout (README)
    run = h.authenticate(svc, "alice", [right()])
    h.expect(run, "PAM_SUCCESS", sms=1, prompts=1)
    check_state_files(sd)


@case
def lockout_expires(h):
    sd = new_state_dir(h)
    svc = simple_service(h, stateDir=str(sd), lockoutThreshold=1, lockoutSeconds=SHORT_SECONDS,
                         maxAttempts=1)
    run = h.authenticate(svc, "alice", [wrong()])
    h.expect(run, "PAM_AUTH_ERR", sms=1, prompts=1)
    run = h.authenticate(svc, "alice", [right()])
    h.expect(run, "PAM_AUTH_ERR", sms=0, prompts=0)
    time.sleep(SHORT_SECONDS + 1.1)
    run = h.authenticate(svc, "alice", [right()])
    h.expect(run, "PAM_SUCCESS", sms=1, prompts=1)


@case
def code_single_use(h):
    svc = simple_service(h, maxAttempts=1)
    first = h.authenticate(svc, "alice", [right()])
    h.expect(first, "PAM_SUCCESS", sms=1, prompts=1)
    run = h.authenticate(svc, "alice", [typed(first.codes[0])])
    h.expect(run, "PAM_MAXTRIES", sms=1, prompts=1)


def shape(prompts):
    return [re.sub(r"\d", "N", p) for p in prompts]


@case
def unmapped_user_same_prompts_as_mapped(h):
    svc = simple_service(h, maxAttempts=3, maxResends=1)
    mapped = h.authenticate(svc, "alice", [wrong(), wrong(), wrong()])
    h.expect(mapped, "PAM_MAXTRIES", sms=1, prompts=3)
    ghost = h.authenticate(svc, "mallory", [typed("123456")] * 3)
    h.expect(ghost, "PAM_MAXTRIES", sms=0, requests=0, prompts=3)
    check(shape(ghost.prompts) == shape(mapped.prompts), f"{ghost.prompts!r} vs {mapped.prompts!r}")
    again = h.authenticate(svc, "mallory", [typed("000000")] * 3)
    check(again.prompts == ghost.prompts, f"made-up number not stable: {again.prompts!r}")
    # an empty answer: both see a new code announced, and get maxAttempts for it
    mapped = h.authenticate(svc, "alice", [keep([], ""), wrong(), wrong(), wrong()])
    h.expect(mapped, "PAM_MAXTRIES", sms=2, prompts=4)
    ghost = h.authenticate(svc, "mallory", [typed("")] + [typed("123456")] * 3)
    h.expect(ghost, "PAM_MAXTRIES", sms=0, requests=0, prompts=4)
    check(shape(ghost.prompts) == shape(mapped.prompts), f"{ghost.prompts!r} vs {mapped.prompts!r}")
    check(all(CONTROL_RE.sub("", l) == l for l in ghost.logs), "control characters in logs")


@case
def unmapped_user_indistinguishable_at_send_limit(h):
    """After sendLimit authentications a mapped user is refused before any prompt; an
    unmapped one must look the same, or the limit tells a caller who has a phone."""
    svc = simple_service(h, sendLimit=1, maxAttempts=1)
    seen = {}
    for user, answer in (("alice", wrong()), ("mallory", typed("000000"))):
        first = h.authenticate(svc, user, [answer])
        second = h.authenticate(svc, user, [typed("000000")])
        seen[user] = (len(first.prompts), len(second.prompts),
                      bool(TOO_MANY_SMS_RE.search(second.output)))
    check(seen["alice"] == seen["mallory"],
          f"(prompts 1st run, prompts 2nd run, told to wait): mapped alice {seen['alice']}, "
          f"unmapped mallory {seen['mallory']}")


@case
def corrupt_state_file(h):
    nobody = pwd.getpwnam("nobody").pw_uid
    good = b"v1 window_start=1 sends=0 last_send=0 failures=0 locked_until=0\n"
    variants = {
        "garbage": b"not a state file\n",
        "truncated": good[:20],
        "empty": b"",
        "negative": good.replace(b"window_start=1", b"window_start=-5"),
        "trailing": good + b"extra\n",
        "huge": good + b" " * 4096,
        "binary": b"\x00\xff" * 10,
    }
    cases = [(name, content, None) for name, content in variants.items()]
    cases += [("not-root", good, "chown"), ("symlink", good, "symlink"), ("directory", None, "dir")]
    for name, content, how in cases:
        sd = new_state_dir(h, name)
        sd.mkdir(mode=0o700)
        path = sd / "alice"
        if how == "dir":
            path.mkdir()
        elif how == "symlink":
            (sd / "target").write_bytes(content)
            path.symlink_to(sd / "target")
        else:
            path.write_bytes(content)
            os.chmod(path, 0o600)
            if how == "chown":
                os.chown(path, nobody, 0)
        svc = simple_service(h, stateDir=str(sd))
        run = h.authenticate(svc, "alice", [right()])
        try:
            h.expect(run, "PAM_SERVICE_ERR", sms=0, requests=0, prompts=0)
        except CaseFailure as e:
            raise CaseFailure(f"state file {name}: {e}") from None
        check(any(str(path) in l and "remove" in l for l in run.module_logs),
              f"{name}: no log line naming {path} and the fix: {run.module_logs!r}")
        if content is not None and how != "symlink":
            check(path.read_bytes() == content, f"{name}: the corrupt file was rewritten")
        check_clean_logs(run)


@case
def state_dir_created_0700(h):
    sd = new_state_dir(h)
    svc = simple_service(h, stateDir=str(sd))
    old = os.umask(0)  # the module must not depend on the caller's umask
    try:
        run = h.authenticate(svc, "alice", [right()])
    finally:
        os.umask(old)
    h.expect(run, "PAM_SUCCESS", sms=1, prompts=1)
    st = os.lstat(sd)
    check(stat.S_ISDIR(st.st_mode) and stat.S_IMODE(st.st_mode) == 0o700 and st.st_uid == 0,
          f"stateDir mode {stat.S_IMODE(st.st_mode):o} uid {st.st_uid}")
    check(check_state_files(sd) == ["alice"], f"stateDir holds {os.listdir(sd)}")


@case
def state_dir_unsafe_refused(h):
    open_dir = new_state_dir(h, "world-writable")
    open_dir.mkdir()
    os.chmod(open_dir, 0o777)
    real = new_state_dir(h, "real")
    real.mkdir(mode=0o700)
    link = new_state_dir(h, "link")
    link.symlink_to(real)
    missing_parent = new_state_dir(h, "missing") / "below"
    for sd in (open_dir, link, missing_parent):
        svc = simple_service(h, stateDir=str(sd))
        run = h.authenticate(svc, "alice", [right()])
        h.expect(run, "PAM_SERVICE_ERR", sms=0, requests=0, prompts=0)
        check(any(f"stateDir {sd}" in l for l in run.module_logs),
              f"no log line about stateDir {sd}: {run.module_logs!r}")
    check(os.listdir(real) == [], f"a symlinked stateDir was used: {os.listdir(real)}")


@case
def state_file_names_cannot_escape(h):
    odd = {"../escape": "+15555550101", "a/b": "+15555550102", "Alice": "+15555550103",
           "x" * 40: "+15555550104", ".hidden": "+15555550105", "..": "+15555550106"}
    sd = new_state_dir(h)
    parent_before = sorted(os.listdir(sd.parent))
    svc = simple_service(h, stateDir=str(sd), users=dict(USERS, **odd))
    for user in odd:
        run = h.authenticate(svc, user, [right()])
        h.expect(run, "PAM_SUCCESS", sms=1, prompts=1)
    names = check_state_files(sd)
    check(len(names) == len(odd) and all(re.fullmatch(r"=[0-9a-f]{32}", n) for n in names),
          f"state files {names}")
    check(sorted(os.listdir(sd.parent)) == sorted(parent_before + [sd.name]),
          f"files appeared beside stateDir: {sorted(os.listdir(sd.parent))}")


# ---- retries within the timeoutSeconds budget

def retry_case(h, scenario, result, *, requests, sms=None, max_retries=2, timeout=5, prompts=None):
    h.sandbox.set_scenario(scenario)
    svc = simple_service(h, then_permit=True, maxRetries=max_retries, timeoutSeconds=timeout)
    answers = [right()] if result == "PAM_SUCCESS" else []
    run = h.authenticate(svc, "alice", answers)
    if prompts is None:
        prompts = 1 if result == "PAM_SUCCESS" else 0
    h.expect(run, result, sms=sms, requests=requests, prompts=prompts)
    check(run.elapsed < timeout + 1 + TIME_SLACK,
          f"took {run.elapsed:.2f}s with timeoutSeconds={timeout}")
    return run


@case
def retry_503_then_success(h):
    run = retry_case(h, "seq:503,ok", "PAM_SUCCESS", requests=2, sms=1)
    check([r["status"] for r in run.requests] == [503, 201], f"{run.requests!r}")


@case
def retry_500_503_then_success(h):
    run = retry_case(h, "seq:500,503,ok", "PAM_SUCCESS", requests=3, sms=1)
    check([r["status"] for r in run.requests] == [500, 503, 201], f"{run.requests!r}")


@case
def retry_at_most_max_retries(h):
    run = retry_case(h, "seq:503,503,503,ok", "PAM_AUTHINFO_UNAVAIL", requests=3, sms=0)
    check("5xx" in run.outcomes[0], f"outcome does not classify Twilio 5xx: {run.outcomes[0]!r}")
    run = retry_case(h, "seq:503,ok", "PAM_AUTHINFO_UNAVAIL", requests=1, sms=0, max_retries=0)


@case
def retry_429_honours_retry_after(h):
    run = retry_case(h, "seq:429,ok", "PAM_SUCCESS", requests=2, sms=1)
    gap = run.requests[1]["time"] - run.requests[0]["time"]
    check(gap >= 0.9, f"retried {gap:.2f}s after a 429 with Retry-After: 1")


@case
def retry_429_retry_after_beyond_budget(h):
    run = retry_case(h, "429:30", "PAM_AUTHINFO_UNAVAIL", requests=1, sms=0, timeout=3)
    check("rate limited" in run.outcomes[0], f"outcome {run.outcomes[0]!r}")


@case
def no_retry_on_4xx(h):
    for scenario, needles in (("400-21211", ("21211", "invalid number")),
                              ("401", ("20003", "bad credentials"))):
        run = retry_case(h, scenario, "PAM_AUTHINFO_UNAVAIL", requests=1, sms=0, max_retries=5)
        for needle in needles + ("rejected",):
            check(needle in run.outcomes[0], f"{scenario}: outcome lacks {needle!r}: {run.outcomes[0]!r}")


@case
def no_retry_when_maybe_sent(h):
    """A 201 without a readable body or a connection dropped after the request may have
    sent the SMS: never sent again."""
    for scenario in ("garbage", "drop"):
        retry_case(h, scenario, "PAM_AUTHINFO_UNAVAIL", requests=1, max_retries=5)


@case
def timeout_budget_holds_with_retries(h):
    run = retry_case(h, "hang", "PAM_AUTHINFO_UNAVAIL", requests=1, max_retries=5, timeout=2)
    check("timeout" in run.outcomes[0], f"outcome {run.outcomes[0]!r}")
    retry_case(h, "seq:503,hang", "PAM_AUTHINFO_UNAVAIL", requests=2, max_retries=5, timeout=3)
    retry_case(h, "seq:503,503,503,503,503,ok", "PAM_AUTHINFO_UNAVAIL", requests=None,
               max_retries=5, timeout=1)


@case
def connect_failure_retried(h):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    for retries in (0, 2):
        svc = simple_service(h, then_permit=True, apiBaseUrl=f"https://127.0.0.1:{port}",
                             maxRetries=retries, timeoutSeconds=5)
        run = h.authenticate(svc, "alice", [right()])
        h.expect(run, "PAM_AUTHINFO_UNAVAIL", sms=0, requests=0, prompts=0)
        n = retries + 1
        check(f"({n} request{'s' if n > 1 else ''})" in run.outcomes[0],
              f"maxRetries={retries}: outcome {run.outcomes[0]!r}")
        check(run.elapsed < 5 + 1 + TIME_SLACK, f"took {run.elapsed:.2f}s")


# ---- concurrency: many logins at once keep the limits exactly, nothing hangs

CONCURRENT_RUNS = 50


def concurrent_authentications(h, jobs, limit=RUN_LIMIT + 60):
    """Runs h.authenticate(service, user, []) for every (service, user) in jobs, all
    released at once; stdin closes at a prompt. Returns the runs and all the syslog lines."""
    barrier = threading.Barrier(len(jobs))
    runs, errors = [None] * len(jobs), [None] * len(jobs)

    def work(i, service, user):
        try:
            barrier.wait(timeout=30)
            runs[i] = h.authenticate(service, user, [])
        except Exception as e:  # reported below
            errors[i] = e

    mark = h.syslog.mark()
    threads = [threading.Thread(target=work, args=(i, svc, user), daemon=True)
               for i, (svc, user) in enumerate(jobs)]
    deadline = time.monotonic() + limit
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=max(0.1, deadline - time.monotonic()))
    stuck = sum(t.is_alive() for t in threads)
    check(stuck == 0, f"{stuck} of {len(jobs)} authentications still running after {limit:.0f}s")
    failed = [f"{jobs[i][1]}: {e}" for i, e in enumerate(errors) if e is not None]
    check(not failed, f"{len(failed)} runs failed: {failed[:3]}")
    services = {svc for svc, _ in jobs}
    left = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if any(s.encode() in cmdline for s in services):
            left.append(pid)
    check(not left, f"processes left behind: {left}")
    logs = [Harness._message(l) for l in h.syslog.collect(mark)]
    return runs, logs


def outcome_lines(logs, service):
    prefix = f"pam_twilio_sms({service}:auth): "
    return [l[len(prefix):] for l in logs
            if l.startswith(prefix) and re.search(r"(^| )result=PAM_[A-Z_]+", l)]


@case
def concurrent_same_user_send_limit(h):
    sd = new_state_dir(h)
    svc = simple_service(h, stateDir=str(sd), sendLimit=5, resendCooldownSeconds=0)
    before = len(h.sandbox.outbox())
    runs, logs = concurrent_authentications(h, [(svc, "alice")] * CONCURRENT_RUNS)
    sent = h.sandbox.outbox()[before:]
    check(len(sent) == 5, f"{len(sent)} SMS sent by {CONCURRENT_RUNS} logins with sendLimit 5")
    prompted = [r for r in runs if r.prompts]
    refused = [r for r in runs if not r.prompts and TOO_MANY_SMS_RE.search(r.output)]
    check(len(prompted) == 5 and len(refused) == CONCURRENT_RUNS - 5,
          f"{len(prompted)} prompted, {len(refused)} told to wait; others: "
          f"{[r.output for r in runs if r not in prompted and r not in refused][:3]!r}")
    check(all(r.status == 1 for r in runs), f"exit statuses {sorted({r.status for r in runs})}")
    outcomes = outcome_lines(logs, svc)
    results = sorted(re.search(r"result=(PAM_[A-Z_]+)", l).group(1) for l in outcomes)
    want = sorted(["PAM_CONV_ERR"] * 5 + ["PAM_AUTH_ERR"] * (CONCURRENT_RUNS - 5))
    check(results == want, f"outcomes {results}")
    check(sum("sendLimit" in l for l in outcomes) == CONCURRENT_RUNS - 5,
          f"refusals not naming sendLimit: {[l for l in outcomes if 'AUTH_ERR' in l][:2]!r}")
    check(check_state_files(sd) == ["alice"], f"state files {os.listdir(sd)}")
    check(read_state(sd / "alice")["sends"] == 5, f"state {read_state(sd / 'alice')}")


@case
def concurrent_distinct_users_global_limit(h):
    sd = new_state_dir(h)
    users = {f"user{i:02d}": f"+1555556{i:04d}" for i in range(CONCURRENT_RUNS)}
    svc = simple_service(h, stateDir=str(sd), users=users, globalSendLimit=20)
    before = len(h.sandbox.outbox())
    runs, logs = concurrent_authentications(h, [(svc, u) for u in users])
    sent = h.sandbox.outbox()[before:]
    check(len(sent) == 20, f"{len(sent)} SMS sent with globalSendLimit 20")
    check(len({m["to"] for m in sent}) == 20, "a user got two SMS")
    prompted = [r for r in runs if r.prompts]
    check(len(prompted) == 20, f"{len(prompted)} logins prompted")
    outcomes = outcome_lines(logs, svc)
    check(len(outcomes) == CONCURRENT_RUNS, f"{len(outcomes)} outcome lines")
    check(sum("globalSendLimit" in l for l in outcomes) == CONCURRENT_RUNS - 20,
          f"refusals: {[l for l in outcomes if 'AUTH_ERR' in l][:2]!r}")
    names = check_state_files(sd)
    check(read_state(sd / GLOBAL_STATE)["sends"] == 20, f"global {read_state(sd / GLOBAL_STATE)}")
    counted = sum(read_state(sd / n)["sends"] for n in names if n != GLOBAL_STATE)
    check(counted == 20, f"user state files count {counted} SMS")


@case
def concurrent_same_user_cooldown(h):
    sd = new_state_dir(h)
    svc = simple_service(h, stateDir=str(sd), resendCooldownSeconds=30)
    before = len(h.sandbox.outbox())
    runs, logs = concurrent_authentications(h, [(svc, "bob")] * CONCURRENT_RUNS)
    sent = h.sandbox.outbox()[before:]
    check(len(sent) == 1, f"{len(sent)} SMS sent by {CONCURRENT_RUNS} logins within the cooldown")
    outcomes = outcome_lines(logs, svc)
    check(len(outcomes) == CONCURRENT_RUNS, f"{len(outcomes)} outcome lines")
    check(sum("resendCooldownSeconds" in l for l in outcomes) == CONCURRENT_RUNS - 1,
          f"refusals: {[l for l in outcomes if 'AUTH_ERR' in l][:2]!r}")
    check(read_state(sd / "bob")["sends"] == 1, f"state {read_state(sd / 'bob')}")


@case
def config_text_with_control_characters(h):
    """Config text that reaches the log (an unknown key, a user name) is sanitised."""
    key = "evil\n<13>Jan  1 00:00:00 host sshd[1]: forged\x1b[31m"
    path = h.write_config(h.config(**{key: 1}))
    run = h.authenticate(h.service(path), "alice", [right()])
    expect_config_error(h, run, path, "evil")
    check_clean_logs(run)
    # a user name with control characters cannot be mapped at all
    path = h.write_config(h.config(users=dict(USERS, **{"ev\x1bil\nx": "+15555550111"})))
    run = h.authenticate(h.service(path), "ev\x1bil\nx", [right()])
    expect_config_error(h, run, path, "user name")
    check_clean_logs(run)


@case
def conv_fails_while_told_to_wait(h):
    """The module tells a limited user to wait through the conversation; a conversation
    that fails or returns nothing there still ends in the same denial."""
    sd = new_state_dir(h)
    svc = simple_service(h, stateDir=str(sd), sendLimit=1)
    run = h.authenticate(svc, "alice", [right()])
    h.expect(run, "PAM_SUCCESS", sms=1, prompts=1)
    for mode in ("conv-fail", "conv-null", "null-resp"):
        run = client_run(h, svc, "alice", mode)
        try:
            expect_client(run, "PAM_AUTH_ERR", sms=0, requests=0, prompts=0)
        except CaseFailure as e:
            raise CaseFailure(f"{mode}: {e}") from None
        check("sendLimit" in run.outcomes[0], f"{mode}: outcome {run.outcomes[0]!r}")


@case
def config_new_keys_validated(h):
    bad = {
        "sendLimit": 0, "sendWindowSeconds": 86401, "resendCooldownSeconds": -1,
        "globalSendLimit": 1000001, "maxResends": 6, "lockoutThreshold": 0,
        "lockoutSeconds": 0, "maxRetries": 6,
    }
    for key, value in bad.items():
        path = h.write_config(h.config(**{key: value}), name=f"{h.case}-{key}")
        run = h.authenticate(h.service(path), "alice", [right()])
        expect_config_error(h, run, path, key)
    for value in (["1"], ["+0"], ["+12345"], [], "+1", [1], ["+1\n"]):
        path = h.write_config(h.config(allowedCountryCodes=value), name=f"{h.case}-country")
        run = h.authenticate(h.service(path), "alice", [right()])
        try:
            expect_config_error(h, run, path, "allowedCountryCodes")
        except CaseFailure as e:
            raise CaseFailure(f"allowedCountryCodes={value!r}: {e}") from None
        check_clean_logs(run)
    for value in ("relative/dir", ""):  # "/" and other shared directories: see below
        path = h.write_config(h.config(stateDir=value), name=f"{h.case}-statedir")
        run = h.authenticate(h.service(path), "alice", [right()])
        try:
            expect_config_error(h, run, path, "stateDir")
        except CaseFailure as e:
            raise CaseFailure(f"stateDir={value!r}: {e}") from None


@case
def state_dir_shared_directory_refused(h):
    """stateDir must be a directory of its own (the module creates it 0700): in a shared
    one such as / or /etc (root's, mode 0755) state files named after users land among
    that directory's files, e.g. /etc/nologin for a user "nologin", which then stops every
    non-root login (pam_nologin). Shown on a copy: a 0755 directory."""
    shared = new_state_dir(h, "etc")
    shared.mkdir()
    os.chmod(shared, 0o755)
    svc = simple_service(h, stateDir=str(shared), users=dict(USERS, nologin="+15555550121"))
    run = h.authenticate(svc, "nologin", [right()])
    check(not (shared / "nologin").exists(),
          f"a 0755 stateDir was used: {sorted(os.listdir(shared))} created; the "
          f"authentication ended {run.results}")
    h.expect(run, "PAM_SERVICE_ERR", sms=0, requests=0, prompts=0)


# ---- users file (issue 4): usersFile beside the inline users

TOOL = REPO / "twilio-sms-otp"
USERS_FILE = ("# pam_twilio_sms users: user +E164number\n"
              "\n"
              "dave +15555550100\n"
              "  erin\t15555550101  \n"         # indented, tab, no '+', trailing blanks
              "# frank +15555550199\n"
              "frank +1-555-555-0102\n")


def write_users_file(h, text, name=None, mode=0o600, uid=0):
    """Writes the case's users file (root, 0600 unless told) and returns its path."""
    path = h.confdir / f"{name or h.case}.users"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(text)
    os.chown(path, uid, 0)
    os.chmod(path, mode)
    return str(path)


def users_file_service(h, text=None, path=None, args=("debug",), **over):
    """A service whose config names a users file, written from text unless path is given."""
    path = path or write_users_file(h, text)
    return simple_service(h, args=args, usersFile=path, **over), path


def expect_users_file_error(h, run, *needles):
    """PAM_SERVICE_ERR, nothing sent, and a log line with every needle and a fix."""
    h.expect(run, "PAM_SERVICE_ERR", sms=0, requests=0, prompts=0)
    lines = [l for l in run.module_logs if "fix:" in l and all(n in l for n in needles)]
    check(lines, f"no log line with {needles!r} and a fix: {run.module_logs!r}")


def expect_texted(h, run, number):
    h.expect(run, "PAM_SUCCESS", sms=1, prompts=1)
    check(run.outbox[0]["to"] == number, f"SMS to {run.outbox[0]['to']!r}, want {number}")
    check(run.prompts[0] == f"SMS code sent to ******{number[-4:]}: ", f"prompt {run.prompts[0]!r}")


@case
def users_file_lookup(h):
    svc, _ = users_file_service(h, USERS_FILE)
    for user, number in (("dave", "+15555550100"), ("erin", "+15555550101"),
                         ("frank", "+15555550102"), ("alice", "+15555550006")):
        try:
            expect_texted(h, h.authenticate(svc, user, [right()]), number)
        except CaseFailure as e:
            raise CaseFailure(f"{user}: {e}") from None


@case
def users_file_comments_and_blank_lines(h):
    text = ("#gina +15555550103\n"
            "  # gina +15555550103\n"
            "\n \t \n"
            "hank +15555550104\r\n"           # CRLF
            "\t# ivan +15555550199\n"
            "ivan +15555550105")              # no newline at the end
    svc, _ = users_file_service(h, text, args=("nullok", "debug"), then_permit=True)
    run = h.authenticate(svc, "gina", [right()])
    h.expect(run, "PAM_IGNORE", sms=0, requests=0, prompts=0)
    expect_texted(h, h.authenticate(svc, "hank", [right()]), "+15555550104")
    expect_texted(h, h.authenticate(svc, "ivan", [right()]), "+15555550105")


@case
def users_file_name_matched_exactly(h):
    """Only a line whose user field is exactly the user counts: not "dave " or "dav"."""
    svc, _ = users_file_service(h, "dave  +15555550100\ndavey +15555550107\n",
                                args=("nullok", "debug"), then_permit=True)
    for user in ("dave ", "dav", "Dave", "dave\t", " dave"):
        run = h.authenticate(svc, user, [right()])
        try:
            h.expect(run, "PAM_IGNORE", sms=0, requests=0, prompts=0)
        except CaseFailure as e:
            raise CaseFailure(f"user {user!r}: {e}") from None
    expect_texted(h, h.authenticate(svc, "dave", [right()]), "+15555550100")


@case
def users_file_and_inline_same_user(h):
    """A user both in users and in the file: PAM_SERVICE_ERR and no SMS for that user."""
    svc, path = users_file_service(h, "alice +15555550116\ndave +15555550100\n")
    run = h.authenticate(svc, "alice", [right()])
    expect_users_file_error(h, run, "alice", path)
    expect_texted(h, h.authenticate(svc, "dave", [right()]), "+15555550100")
    expect_texted(h, h.authenticate(svc, "bob", [right()]), "+15555550007")


def unusable_users_file_case(h, needle, path=None, **write):
    """An unusable users file refuses everyone, inline users too."""
    path = path or write_users_file(h, "dave +15555550100\n", **write)
    svc, _ = users_file_service(h, path=path)
    for user in ("dave", "alice"):
        run = h.authenticate(svc, user, [right()])
        try:
            expect_users_file_error(h, run, path, needle)
        except CaseFailure as e:
            raise CaseFailure(f"{user}: {e}") from None


@case
def users_file_group_readable(h):
    unusable_users_file_case(h, "0640", mode=0o640)


@case
def users_file_world_readable(h):
    unusable_users_file_case(h, "0604", mode=0o604)


@case
def users_file_not_root_owned(h):
    nobody = pwd.getpwnam("nobody").pw_uid
    unusable_users_file_case(h, str(nobody), uid=nobody)


@case
def users_file_symlink(h):
    target = write_users_file(h, "dave +15555550100\n", name=f"{h.case}-target")
    link = h.confdir / f"{h.case}.users"
    link.unlink(missing_ok=True)
    link.symlink_to(target)
    unusable_users_file_case(h, "symbolic link", path=str(link))


@case
def users_file_missing(h):
    unusable_users_file_case(h, "cannot open", path=str(h.confdir / f"{h.case}-none.users"))


@case
def users_file_malformed_line_for_user(h):
    for line in ("dave +1555", "dave +15555550100 extra", "dave 555-CALL-NOW",
                 "dave +015555550100", "dave\t"):
        svc, path = users_file_service(h, f"# team\nerin +15555550101\n{line}\n")
        run = h.authenticate(svc, "dave", [right()])
        try:
            expect_users_file_error(h, run, f"{path}:3:", "dave")
        except CaseFailure as e:
            raise CaseFailure(f"line {line!r}: {e}") from None


@case
def users_file_line_without_number(h):
    """A line with the user name alone is malformed, not "no number": with nullok the
    user must not step past the SMS factor."""
    svc, path = users_file_service(h, "erin +15555550101\ndave\n", args=("nullok", "debug"),
                                   then_permit=True)
    run = h.authenticate(svc, "dave", [right()])
    expect_users_file_error(h, run, f"{path}:2:", "dave")


@case
def users_file_duplicate_user(h):
    svc, path = users_file_service(h, "dave +15555550100\nerin +15555550101\ndave +15555550108\n")
    run = h.authenticate(svc, "dave", [right()])
    expect_users_file_error(h, run, path, "dave", "1 and 3")


@case
def users_file_malformed_other_lines(h):
    text = "zed\nyan +1555\nxavier +15555550109 junk\nwill 555-CALL-NOW\ndave +15555550100\n"
    svc, _ = users_file_service(h, text)
    expect_texted(h, h.authenticate(svc, "dave", [right()]), "+15555550100")


@case
def users_file_100000_lines(h):
    """Stays fast: the user on the last of 100 000 lines, and a user not in the file."""
    lines = [f"user{i:06d} +1555{i:07d}\n" for i in range(99999)] + ["dave +15555550100\n"]
    svc, _ = users_file_service(h, "".join(lines), args=("nullok", "debug"), then_permit=True)
    run = h.authenticate(svc, "dave", [right()])
    expect_texted(h, run, "+15555550100")
    check(run.elapsed < 3 + TIME_SLACK, f"took {run.elapsed:.1f}s")
    run = h.authenticate(svc, "user050000", [right()])
    expect_texted(h, run, "+15550050000")
    run = h.authenticate(svc, "mallory", [right()])
    h.expect(run, "PAM_IGNORE", sms=0, prompts=0)
    check(run.elapsed < 2 + TIME_SLACK, f"an unmapped user took {run.elapsed:.1f}s")


@case
def users_file_read_while_enrolling(h):
    """Logins read the users file while twilio-sms-otp rewrites it in a loop: every login
    finds the user's number (a renamed whole file, never a half-written one)."""
    check(TOOL.is_file(), f"{TOOL} not built (run make)")
    filler = "".join(f"user{i:05d} +1555{i:07d}\n" for i in range(20000))
    path = write_users_file(h, filler + "dave +15555550100\n")
    config = h.write_config(h.config(usersFile=path))
    svc = h.service(config)
    stop, errors, writes = threading.Event(), [], [0]

    def enroll_loop():
        i = 0
        while not stop.is_set():
            args = ["enroll", "--no-verify", f"new{i % 7}", f"+1555557{i:04d}"] if i % 2 == 0 \
                else ["unenroll", f"new{(i - 1) % 7}"]
            r = subprocess.run([str(TOOL), "--config", config, *args], stdin=subprocess.DEVNULL,
                               capture_output=True, timeout=RUN_LIMIT, start_new_session=True)
            if r.returncode != 0:
                errors.append(f"{args}: exit {r.returncode} {r.stderr!r}")
            writes[0] += 1
            i += 1

    writer = threading.Thread(target=enroll_loop, daemon=True)
    writer.start()
    try:
        for n in range(6):
            run = h.authenticate(svc, "dave", [right()])
            try:
                expect_texted(h, run, "+15555550100")
            except CaseFailure as e:
                raise CaseFailure(f"login {n + 1}: {e}") from None
    finally:
        stop.set()
        writer.join(timeout=RUN_LIMIT)
    check(not errors, f"twilio-sms-otp failed: {errors[:2]}")
    check(writes[0] >= 6, f"only {writes[0]} updates ran during the logins")


# --------------------------------------------------------------------------- main

def prerequisite_problem():
    if os.geteuid() != 0:
        return "not root (needs /etc/pam.d and /dev/log)"
    if shutil.which("pamtester") is None:
        return "pamtester not installed (apt-get install pamtester)"
    if not MODULE.is_file():
        return f"module not built: {MODULE} missing (run make)"
    if not SANDBOX.is_file():
        return f"sandbox missing: {SANDBOX}"
    if os.path.lexists(DEV_LOG) and shutil.which("unshare") is None:
        return "/dev/log exists and unshare is missing: cannot capture syslog"
    return None


class Interrupted(Exception):
    pass


def on_signal(signum, _frame):
    raise Interrupted(signal.Signals(signum).name)


class Tally:
    def __init__(self):
        self.passed = 0
        self.failed = 0

    def ok(self, name):
        print(f"PASS: {name}", flush=True)
        self.passed += 1

    def fail(self, name, why):
        print(f"FAIL: {name}: {why}", flush=True)
        self.failed += 1


def run_one(harness, name, fn, tally):
    harness.case = name
    harness.sandbox.set_scenario("ok")
    try:
        fn(harness)
    except CaseFailure as e:
        tally.fail(name, e)
    except (Interrupted, KeyboardInterrupt):
        raise
    except Exception as e:  # a harness or environment problem still fails the case
        tally.fail(name, f"{type(e).__name__}: {e}")
    else:
        tally.ok(name)


def run_cases(selected, verbose, tally):
    """Runs the cases with one sandbox and one syslog capture; cleans up on every path."""
    workdir = tempfile.mkdtemp(prefix="tsms-e2e-")
    sandbox = Sandbox(Path(workdir) / "sandbox")
    syslog, harness = None, None
    todo = list(selected)
    try:
        sandbox.start()
        syslog = SyslogCapture(workdir)
        harness = Harness(workdir, sandbox, syslog, verbose)
        while todo:
            name, fn = todo[0]
            run_one(harness, name, fn, tally)
            todo.pop(0)
    except (Interrupted, KeyboardInterrupt) as e:
        for name, _ in todo:
            tally.fail(name, f"interrupted ({e or 'SIGINT'})")
    except Exception as e:
        for name, _ in todo:
            tally.fail(name, f"{type(e).__name__}: {e}")
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            signal.signal(sig, signal.SIG_IGN)  # let cleanup finish
        if harness:
            harness.remove_services()
        if syslog:
            syslog.close()
        sandbox.stop()
        shutil.rmtree(workdir, ignore_errors=True)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-k", metavar="PATTERN", help="run only cases whose name matches (regex)")
    parser.add_argument("-v", action="store_true", help="print pamtester output and log lines")
    args = parser.parse_args()

    tally = Tally()
    selected = [(n, f) for n, f in CASES if not args.k or re.search(args.k, n)]
    problem = prerequisite_problem()
    if not selected:
        tally.fail("selection", f"no case matches {args.k!r}")
    elif problem:
        for name, _ in selected:
            tally.fail(name, problem)
    else:
        for sig in (signal.SIGTERM, signal.SIGHUP):
            signal.signal(sig, on_signal)
        run_cases(selected, args.v, tally)
    print(f"e2e: {tally.passed} passed, {tally.failed} failed")
    return 1 if tally.failed else 0


if __name__ == "__main__":
    sys.exit(main())
