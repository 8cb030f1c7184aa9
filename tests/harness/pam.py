"""The end-to-end harness: pam_twilio_sms.so through real libpam.

Harness writes a config and a PAM service file /etc/pam.d/tsms-test-PID-CASE, runs
`pamtester SERVICE USER authenticate` (or tests/e2e/pam_client for conversations pamtester
cannot have) against the sandbox, types the code it finds in the sandbox's outbox, and
returns a Run: what PAM returned, what reached the sandbox, the module's syslog lines.
Every run is also checked for leaked secrets (codes, the auth token, full phone numbers).
"""

import json
import os
import re
import select
import shlex
import shutil
import subprocess
import threading
import time
from pathlib import Path

from harness.core import REPO, CaseFailure, case, check
from harness.sandbox import API_KEY_SECRET, AUTH_TOKEN, SANDBOX, wrong_code
from harness.syslog import DEV_LOG, message
from harness.system import cmdlines, kill_and_reap, write_file

# TSMS_MODULE tests another build of the module, e.g. the sanitizer one (tests/analysis)
MODULE = Path(os.environ.get("TSMS_MODULE") or REPO / "pam_twilio_sms.so").resolve()
PAM_DIR = Path("/etc/pam.d")
SERVICE_PREFIX = "tsms-test-"
# Runs every PAM client under a command prefix, e.g. valgrind or env LD_PRELOAD=libasan.so
# for the sanitizer builds: TSMS_E2E_PREFIX="valgrind --error-exitcode=99 ..."
PAM_CLIENT_PREFIX = shlex.split(os.environ.get("TSMS_E2E_PREFIX", ""))
PAM_CLIENT_BIN = REPO / "tests" / "e2e" / "pam_client"
DEFAULT_TEMPLATE = "Your sign-in code is {{code}}. Do not share it."

USERS = {
    "alice": "+15555550006",
    "bob": "+1 (555) 555.0007",  # '(', ')' and '.' are dropped; a number needs its '+'
    "carol": "+1 555-555-1234",  # spaces and '-' are dropped; last four do not start with 0
}

PROMPT_RE = re.compile(r"(Wrong code\. )?(?:New )?SMS code sent to \*{6}(\d{4}): $")
# the backup-code prompt when no SMS could be sent (Twilio unavailable, backupCodesFile set):
# no SMS announced, so only typed() answers fit it
BACKUP_PROMPT_RE = re.compile(r"(Wrong code\. )?SMS unavailable; backup code: $")
PAM_TEXT = {
    "PAM_SUCCESS": "pamtester: successfully authenticated",
    "PAM_AUTH_ERR": "pamtester: Authentication failure",
    "PAM_MAXTRIES": "pamtester: Have exhausted maximum number of retries for service",
    "PAM_SERVICE_ERR": "pamtester: Error in service module",
    "PAM_AUTHINFO_UNAVAIL": "pamtester: Authentication service cannot retrieve authentication info",
    "PAM_CONV_ERR": "pamtester: Conversation error",
}
PAM_CODES = {
    "PAM_SUCCESS": 0, "PAM_SERVICE_ERR": 3, "PAM_SYSTEM_ERR": 4, "PAM_BUF_ERR": 5,
    "PAM_PERM_DENIED": 6, "PAM_AUTH_ERR": 7, "PAM_AUTHINFO_UNAVAIL": 9, "PAM_USER_UNKNOWN": 10,
    "PAM_MAXTRIES": 11, "PAM_CONV_ERR": 19, "PAM_IGNORE": 25, "PAM_ABORT": 26,
}
# Seconds a slow client prefix adds to each run (valgrind starting and ending pamtester),
# granted to RUN_LIMIT and to the timing checks (tests/analysis/valgrind.sh sets 3)
TIME_SLACK = float(os.environ.get("TSMS_E2E_SLACK") or 0)
RUN_LIMIT = 30.0 + TIME_SLACK  # seconds any single pamtester run may take
CONTROL_RE = re.compile(r"[\x00-\x1f\x7f]")
LOG_LINE_LIMIT = 1024  # the module's longest log line (lib/log.c), syslog header aside


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
            return wrong_code(code)
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


def keep(seen, text):
    """Answers text at a prompt that announced an SMS, remembering that SMS's code in seen."""
    return answer_with(lambda c: seen.append(c) or text)


# --------------------------------------------------------------------------- one run

class Run:
    """Everything one pamtester run left behind."""

    def __init__(self, service):
        self.status = None
        self.output = ""
        self.elapsed = 0.0
        self.prompts = []
        self.codes = []          # codes read from the outbox, in prompt order
        self.raw_logs = []       # datagrams as received
        self.logs = []           # message parts ("pam_twilio_sms(svc:auth): ...")
        self.outbox = []         # messages the sandbox accepted during the run
        self.requests = []       # requests the sandbox saw during the run
        self.service = service

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

    def begin_case(self, name):
        self.case = name
        self.sandbox.set_scenario("ok")

    # ---- files

    def config(self, **over):
        """The base config with keys replaced (a value of None removes the key)."""
        return self.sandbox.module_config(**{
            "templates": [
                {"usageType": "Register", "content": "Welcome, your code is {{code}}."},
                {"usageType": "SignIn", "content": DEFAULT_TEMPLATE},
                {"usageType": "Test", "content": "Test code {{code}}."},
            ],
            "users": dict(USERS),
            # each case keeps its own send limits and lockouts; cases about limits set their own
            "stateDir": str(self.confdir / f"state-{self.case}"),
            "sendLimit": 1000,
            "resendCooldownSeconds": 0,
            **over})

    def write_config(self, cfg, name=None, mode=0o600, uid=0, gid=0):
        """Writes cfg (dict -> JSON, or str as is) and returns its path."""
        text = cfg if isinstance(cfg, str) else json.dumps(cfg, ensure_ascii=False, indent=1)
        return write_file(self.confdir / f"{name or self.case}.json", text, mode, uid, gid)

    def write_service(self, lines, tag=""):
        """Writes the service file of this case (tag: one more of the case, named so)."""
        # the pid keeps runs going at the same time from removing each other's services
        name = f"{SERVICE_PREFIX}{os.getpid()}-" + re.sub(r"[^a-z0-9-]", "-",
                                                         f"{self.case}{tag}".lower())
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

    # ---- running PAM clients

    def authenticate(self, service, user, answers=(), code_length=6, limit=RUN_LIMIT,
                     client=None, env=None, binds=()):
        """Runs pamtester, answering prompt i with answers[i] (stdin is closed when
        they run out), and returns the Run with the sandbox and syslog records.
        client: another command line than pamtester's, e.g. pam_client's stdin mode;
        env: variables added to the client's environment; binds: (source, target) pairs
        bind-mounted in the client's mount namespace (e.g. a hosts file)."""
        def converse(proc, run, since, deadline):
            self._converse(proc, run, list(answers), code_length, since, deadline, limit)

        cmd = client or ["pamtester", service, user, "authenticate"]
        return self.run_client(service, cmd, converse, what=f"pamtester {service} {user}",
                               code_length=code_length, limit=limit, env=env, binds=binds)

    def run_client(self, service, cmd, drive, *, what, code_length=6, stdin=subprocess.PIPE,
                   limit=RUN_LIMIT, env=None, binds=()):
        """Runs the PAM client cmd (logging to the capture, under PAM_CLIENT_PREFIX), calls
        drive(proc, run, outbox lines before, deadline) to talk to it, kills what is left
        and returns the Run with the sandbox and syslog records of the run."""
        run = Run(service)
        outbox_before = len(self.sandbox.outbox())
        requests_before = len(self.sandbox.requests())
        log_mark = self.syslog.mark()
        start = time.monotonic()
        proc = subprocess.Popen(self.syslog.wrap(PAM_CLIENT_PREFIX + cmd, binds), stdin=stdin,
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                start_new_session=True,
                                env={**os.environ, **env} if env else None)
        try:
            drive(proc, run, outbox_before, start + limit)
        finally:
            kill_and_reap(proc)
        run.elapsed = time.monotonic() - start
        run.status = proc.returncode
        run.outbox = self.sandbox.outbox()[outbox_before:]
        run.requests = self.sandbox.requests()[requests_before:]
        run.raw_logs = self.syslog.collect(log_mark)
        run.logs = [message(l) for l in run.raw_logs]
        if self.verbose:
            print(f"[{self.case}] {what}\n{run.describe()}")
        self._check_no_secrets(run, code_length)
        return run

    def _converse(self, proc, run, answers, code_length, outbox_before, deadline, limit):
        """Pipes are enough: pamtester's misc_conv prints the prompt on stderr and reads
        the answer from stdin with read(2) whether or not it is a terminal (it only turns
        echo off on a terminal). So one answer line is written per prompt seen, and every
        read waits in select() against the run's deadline."""
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
            tail = run.output[seen_upto:]
            m = PROMPT_RE.search(tail) or BACKUP_PROMPT_RE.search(tail)
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
                check(m.re is PROMPT_RE, f"an SMS code to type at the prompt {m.group(0)!r}")
                # each prompt that is not a retry announces a new SMS: the newest one
                fresh = sum(1 for p in run.prompts
                            if not p.startswith("Wrong code.") or "New SMS" in p)
                code = self.sandbox.wait_for_code(m.group(2), outbox_before, deadline,
                                                  nth=fresh, length=code_length)
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

    def _check_no_secrets(self, run, code_length):
        codes = set(run.codes)
        for msg in run.outbox:
            codes.update(re.findall(rf"(?<!\d)\d{{{code_length}}}(?!\d)", msg.get("body") or ""))
        for line in run.raw_logs:
            check(AUTH_TOKEN not in line, f"auth token in a syslog line: {line!r}")
            check(API_KEY_SECRET not in line, f"API key secret in a syslog line: {line!r}")
        check(AUTH_TOKEN not in run.output, "auth token in pamtester output")
        check(API_KEY_SECRET not in run.output, "API key secret in pamtester output")
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
        expect_records(run, result, sms, requests, prompts, outcomes)


def expect_records(run, result, sms, requests, prompts, outcomes):
    """The module logged `outcomes` outcome lines, all with result; the SMS, request and
    prompt counts are as given (None: not checked)."""
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


# --------------------------------------------------------------------------- helpers of cases

def simple_service(h, then_permit=False, args=("debug",), **over):
    """A service on the base config with keys replaced."""
    return h.service(h.write_config(h.config(**over)), args=args, then_permit=then_permit)


def expect_config_error(h, run, path, *needles):
    """A config refusal: PAM_SERVICE_ERR, nothing sent, a `config PATH: ` line mentioning
    each needle (a tuple: any of its strings)."""
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


def check_clean_logs(run):
    """No syslog line carries a control character (log injection) or runs past the limit."""
    for line in run.logs:
        check(not CONTROL_RE.search(line), f"control character in a syslog line: {line!r}")
        check(len(line.encode()) <= LOG_LINE_LIMIT + 64,
              f"syslog line of {len(line.encode())} bytes: {line[:200]!r}...")


# ---- pam_client: conversations that fail, NUL bytes, huge answers

def built_problem(path, target):
    """Builds path (make target) when missing or older than its .c source; returns what
    went wrong, or None."""
    src = path.parent / (path.name.split(".")[0] + ".c")
    if path.is_file() and path.stat().st_mtime >= src.stat().st_mtime:
        return None
    done = subprocess.run(["make", "-s", "-C", str(REPO), target], capture_output=True,
                          text=True)
    if done.returncode != 0 or not path.is_file():
        return f"cannot build {path}: {(done.stderr or done.stdout).strip()[-300:]}"
    return None


def pam_client_problem():
    """Builds tests/e2e/pam_client when missing or older than its source (make e2e-client);
    returns what went wrong, or None."""
    return built_problem(PAM_CLIENT_BIN, "e2e-client")


# ---- freed memory: secrets left in blocks handed back to the allocator

FREED_SHIM = REPO / "tests" / "e2e" / "freed_secret.so"


class FreedScan:
    """One or more runs under tests/e2e/freed_secret.so (LD_PRELOAD over glibc's free and
    realloc): every heap block their processes free is searched for secrets (str or bytes).
    Pass env to h.authenticate(..., env=scan.env); then check() asserts that the shim ran in
    program and that no freed block held a secret. Only without valgrind or ASan
    (PAM_CLIENT_PREFIX), which replace the allocator: register such cases with
    unwrapped_case."""

    def __init__(self, h, tag, secrets, code=None):
        """code: (MARKER, N): also a block holding MARKER and N digits (the one-time code
        of a message whose template puts MARKER before it)."""
        problem = built_problem(FREED_SHIM, "e2e-shim")
        check(problem is None, problem)
        self.secrets = [s.encode() if isinstance(s, str) else s for s in secrets]
        self.tag = tag
        self.report = h.workdir / f"{h.case}-{tag}.freed"
        self.report.unlink(missing_ok=True)
        self.env = {"LD_PRELOAD": str(FREED_SHIM),
                    "TSMS_FREED_SECRET_HEX": ",".join(s.hex() for s in self.secrets),
                    "TSMS_FREED_REPORT": str(self.report)}
        if code is not None:
            self.env["TSMS_FREED_CODE"] = f"{code[0]}:{code[1]}"

    def check(self, program="pamtester"):
        lines = self.report.read_text().splitlines() if self.report.exists() else []
        check(any(re.fullmatch(rf"scanned pid=\d+ comm={re.escape(program)} frees=[1-9]\d*", l)
                  for l in lines), f"{self.tag}: the shim scanned nothing in {program}: {lines}")
        found = [l for l in lines if l.startswith("found ")]
        check(not found, f"{self.tag}: {len(found)} freed blocks held a secret (secret=N: "
              f"the Nth of {len(self.secrets)}): {found}")


def unwrapped_case(fn):
    """Registers fn as a case, except when the suite runs its clients under valgrind or ASan
    (TSMS_E2E_PREFIX): for cases whose client cannot run there, because the tool replaces
    the allocator (freed_secret.so) or because the case sets a resource limit that the
    tool's own log writes would hit. The plain run of the suite has them."""
    return case(fn) if not PAM_CLIENT_PREFIX else fn


def pam_client_cmd(service, user, mode, *extra):
    problem = pam_client_problem()
    check(problem is None, problem)
    return [str(PAM_CLIENT_BIN), service, user, mode, *extra]


def client_run(h, service, user, mode, *extra, limit=RUN_LIMIT):
    """Runs `pam_client SERVICE USER MODE [extra]` with stdin closed and returns the Run;
    its status is the PAM code pam_client exited with (negative: killed by that signal)."""
    def wait(proc, run, _since, _deadline):
        try:
            out, _ = proc.communicate(timeout=limit)
        except subprocess.TimeoutExpired:
            raise CaseFailure(f"pam_client {mode} still running after {limit:.0f}s") from None
        run.output = out.decode("utf-8", errors="replace")
        run.prompts = [m.group(0) for m in map(PROMPT_RE.search, run.output.splitlines()) if m]

    return h.run_client(service, pam_client_cmd(service, user, mode, *extra), wait,
                        what=f"pam_client {service} {user!r} {mode}", stdin=subprocess.DEVNULL,
                        limit=limit)


def expect_client(run, result, *, sms=None, requests=None, prompts=None, outcomes=1):
    """h.expect for pam_client runs: its exit status is the PAM code."""
    code = PAM_CODES[result]
    check(run.status is not None and run.status >= 0,
          f"pam_client killed by signal {-(run.status or 0)}; output {run.output[-300:]!r}")
    check(run.status == code and f"code={code}\n" in run.output,
          f"pam_client exit {run.status}, want {code} ({result}); output {run.output[-300:]!r}")
    expect_records(run, result, sms, requests, prompts, outcomes)


def authenticate_at_once(h, jobs, limit=RUN_LIMIT + 60):
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
    left = [pid for pid, argv in cmdlines() if any(s.encode() in argv for s in services)]
    check(not left, f"processes left behind: {left}")
    return runs, h.syslog.messages(mark)


def prerequisite_problem(needs="/etc/pam.d and /dev/log"):
    """Why pamtester logins against the sandbox cannot run here, or None; needs: what root
    is needed for (a suite adds its own, e.g. ptrace)."""
    if os.geteuid() != 0:
        return f"not root (needs {needs})"
    if shutil.which("pamtester") is None:
        return "pamtester not installed (apt-get install pamtester)"
    if not MODULE.is_file():
        return f"module not built: {MODULE} missing (run make)"
    if not SANDBOX.is_file():
        return f"sandbox missing: {SANDBOX}"
    if os.path.lexists(DEV_LOG) and shutil.which("unshare") is None:
        return "/dev/log exists and unshare is missing: cannot capture syslog"
    return None
