"""The admin command (./twilio-sms-otp) as its suites run it: a case's own directory (root,
0700) with its config, runs of the command in a new session with what reached the Twilio
sandbox during each, and the checks the suites share (exit status and texts, root-only files).

A suite subclasses CommandHarness for its own files and checks (after(res) sees every run;
the base refuses any output with the auth token), e.g. tests/cli/run_cli_backup.py; a run
of its own making (enroll's prompts in tests/cli/run_cli.py) goes from started() to
finished(). Its setup() is CommandHarness.start() of its subclass, its prepare
prerequisite_problem().
TSMS_TOOL=PATH runs another build of the command, TSMS_CLI_PREFIX runs it under a command
prefix (e.g. valgrind).
"""

import json
import os
import shlex
import shutil
import stat
import subprocess
import time
from pathlib import Path

from harness.core import REPO, CaseFailure, check
from harness.sandbox import AUTH_TOKEN, SANDBOX, start_in_workdir
from harness.system import kill_and_reap, write_file

TOOL = Path(os.environ.get("TSMS_TOOL") or REPO / "twilio-sms-otp").resolve()
TOOL_PREFIX = shlex.split(os.environ.get("TSMS_CLI_PREFIX", ""))
TEMPLATES = {
    "Register": "Welcome, your code is {{code}}.",
    "SignIn": "Your sign-in code is {{code}}.",
    "Test": "Test code {{code}}.",
    "Generic": "Generic code {{code}}.",
}
INLINE_USERS = {"alice": "+15555550006", "bob": "+15555550007"}
RUN_LIMIT = 30.0  # seconds any single run of the command may take


class Result:
    """One run: the command, its exit status, its output and the sandbox records of it."""

    def __init__(self, cmd):
        self.cmd = cmd
        self.status = None
        self.out = ""
        self.err = ""
        self.elapsed = 0.0
        self.prompts = []
        self.codes = []
        self.outbox = []
        self.requests = []
        self.start = 0.0  # time.monotonic() and the sandbox's counts when it started
        self.outbox_from = 0
        self.requests_from = 0

    def describe(self):
        return (f"  $ {' '.join(shlex.quote(str(a)) for a in self.cmd)}\n"
                f"  status={self.status} elapsed={self.elapsed:.2f}s\n"
                f"  stdout: {self.out!r}\n  stderr: {self.err!r}")

    def brief(self):
        return f"exit {self.status}, stdout {self.out!r}, stderr {self.err!r}"


class CommandHarness:
    """A case's directory and config, and runs of the command against the sandbox."""

    def __init__(self, workdir, sandbox, verbose):
        self.workdir = Path(workdir)
        self.sandbox = sandbox
        self.verbose = verbose
        self.case = "case"
        self.procs = []

    @classmethod
    def start(cls, cleanups, verbose, prefix):
        """A harness in a new work directory (named prefix...) with the sandbox running,
        both undone by cleanups: what a suite's setup() returns."""
        workdir, sandbox = start_in_workdir(cleanups, prefix)
        h = cls(workdir, sandbox, verbose)
        cleanups.add(h.kill_all)
        return h

    def begin_case(self, name):
        self.case = name
        self.sandbox.set_scenario("ok")

    def end_case(self):
        self.kill_all()

    # ---- files

    @property
    def dir(self):
        """The case's own directory (root, 0700)."""
        d = self.workdir / "cases" / self.case
        d.mkdir(mode=0o700, parents=True, exist_ok=True)
        return d

    @property
    def users_path(self):
        return self.dir / "users"

    def config(self, **over):
        """The base config with keys replaced (a value of None removes the key)."""
        return self.sandbox.module_config(**{
            "templates": [{"usageType": u, "content": c} for u, c in TEMPLATES.items()
                          if u != "Generic"],
            "users": dict(INLINE_USERS),
            "usersFile": str(self.users_path),
            "stateDir": str(self.dir / "state"),
            **over})

    def write_config(self, cfg=None, name="config.json", mode=0o600, uid=0):
        """Writes cfg (dict -> JSON, str as is; default the base config), returns its path."""
        cfg = self.config() if cfg is None else cfg
        text = cfg if isinstance(cfg, str) else json.dumps(cfg, indent=1)
        return write_file(self.dir / name, text, mode, uid)

    def write_users(self, text, mode=0o600, uid=0):
        return write_file(self.users_path, text, mode, uid)

    # ---- running the command

    def command(self, args, config):
        return TOOL_PREFIX + [str(TOOL)] + (["--config", str(config)] if config else []) + \
            [str(a) for a in args]

    def run(self, *args, config=None, stdin="", limit=RUN_LIMIT, stdout=None):
        """Runs the command with stdin's text (closed at once when empty) and returns the
        Result with the sandbox records of the run. stdout: a file object to write standard
        output to instead of capturing it (res.out is then empty)."""
        res = self.started(args, config)
        try:
            proc = subprocess.run(res.cmd, input=stdin.encode(), timeout=limit,
                                  stdout=stdout or subprocess.PIPE, stderr=subprocess.PIPE,
                                  start_new_session=True)
        except subprocess.TimeoutExpired:
            raise CaseFailure(f"still running after {limit:.0f}s: {res.cmd!r}") from None
        return self.finished(res, proc.returncode, proc.stdout, proc.stderr)

    def started(self, args, config):
        """The Result of a run about to start, with its start time and how many SMS and
        requests the sandbox holds before it (res.start, res.outbox_from, res.requests_from):
        a suite that runs the command its own way (e.g. answering prompts) starts here and
        ends with finished()."""
        res = Result(self.command(args, config))
        res.outbox_from = len(self.sandbox.outbox())
        res.requests_from = len(self.sandbox.requests())
        res.start = time.monotonic()
        return res

    def finished(self, res, status, out, err):
        """Fills in res from started(): the exit status, the output (bytes; out None when
        not captured) and what reached the sandbox since; checks it with after(res) and
        returns it."""
        res.elapsed = time.monotonic() - res.start
        res.status = status
        res.out = (out or b"").decode("utf-8", errors="replace")
        res.err = err.decode("utf-8", errors="replace")
        res.outbox = self.sandbox.outbox()[res.outbox_from:]
        res.requests = self.sandbox.requests()[res.requests_from:]
        self.after(res)
        return res

    def after(self, res):
        """Every run: -v prints it; no output may hold the auth token."""
        if self.verbose:
            print(f"[{self.case}]\n{res.describe()}")
        for name, text in (("stdout", res.out), ("stderr", res.err)):
            check(AUTH_TOKEN not in text, f"the auth token in {name}: {text!r}")

    def run_at_once(self, runs, config, what):
        """Starts the command once for each argument list in runs, all at the same moment
        (stdin closed), and waits for them within RUN_LIMIT; returns (status, stdout,
        stderr) of each, texts decoded. what names them in a timeout's failure."""
        procs = []
        for args in runs:
            p = subprocess.Popen(self.command(args, config), stdin=subprocess.DEVNULL,
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                 start_new_session=True)
            self.procs.append(p)
            procs.append(p)
        deadline = time.monotonic() + RUN_LIMIT
        done = []
        for p in procs:
            try:
                out, err = p.communicate(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                raise CaseFailure(f"a concurrent {what} did not finish") from None
            done.append((p.returncode, out.decode(errors="replace"), err.decode(errors="replace")))
        return done

    def kill_all(self):
        for proc in self.procs:
            kill_and_reap(proc)
        self.procs = []


def expect(res, status, *, out=(), err=(), sms=None, requests=None):
    """Checks the exit status, texts in stdout/stderr, and the SMS and requests counts."""
    ok = res.status == status if status != "nonzero" else res.status not in (0, None)
    check(ok, f"want exit {status}, got {res.brief()}")
    for needle in out:
        check(needle in res.out, f"stdout lacks {needle!r}: {res.out!r}")
    for needle in err:
        check(needle in res.err, f"stderr lacks {needle!r}: {res.err!r}")
    if sms is not None:
        check(len(res.outbox) == sms, f"{len(res.outbox)} SMS sent, want {sms}")
    if requests is not None:
        check(len(res.requests) == requests, f"{len(res.requests)} requests, want {requests}")


def expect_private(path):
    """path is a regular file of root's, mode 0600."""
    st = os.lstat(path)
    check(stat.S_ISREG(st.st_mode), f"{path} is not a regular file")
    check(st.st_uid == 0 and st.st_gid == 0, f"{path} owned by {st.st_uid}:{st.st_gid}")
    check(stat.S_IMODE(st.st_mode) == 0o600, f"{path} has mode {stat.S_IMODE(st.st_mode):04o}")


def prerequisite_problem(files):
    """Why a suite of the command cannot run here, or None; files: the root-owned files
    besides configs that it writes (e.g. "users files")."""
    if os.geteuid() != 0:
        return f"not root (writes root-owned configs and {files})"
    if not TOOL.is_file():
        return f"command not built: {TOOL} missing (run make)"
    if not SANDBOX.is_file():
        return f"sandbox missing: {SANDBOX}"
    if shutil.which("openssl") is None:
        return "openssl missing (the sandbox makes its certificates with it)"
    return None
