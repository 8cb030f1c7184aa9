#!/usr/bin/env python3
"""Tests of the twilio-sms-otp admin command against the Twilio sandbox.

Each case writes a config (root, 0600) and often a users file in its own directory,
runs ./twilio-sms-otp in a new session (no controlling terminal, so `enroll` reads
the code from standard input) and checks its exit status, its output, the users
file and what reached the sandbox (tests/sandbox/twilio_sandbox.py). No output of
any run may contain the auth token.

Run as root:  python3 tests/cli/run_cli.py [-k PATTERN] [-v]
Prints `PASS: name` or `FAIL: name: why` per case, then `cli: N passed, N failed`.
TSMS_TOOL=PATH tests another build of the command; TSMS_CLI_PREFIX runs it under a
command prefix (e.g. valgrind).
"""

import fcntl
import hashlib
import json
import os
import pwd
import re
import select
import signal
import socket
import stat
import subprocess
import sys
import threading
import time
from pathlib import Path

sys.dont_write_bytecode = True  # leave no __pycache__ in the tree
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from harness.cli import (RUN_LIMIT, TEMPLATES, CommandHarness, expect,  # noqa: E402
                         expect_private, prerequisite_problem)
from harness.core import REPO, CaseFailure, case, check, main  # noqa: E402
from harness.sandbox import AUTH_TOKEN, MESSAGING_SID, extract_code  # noqa: E402
from harness.system import in_mount_namespace, kill_and_reap, write_file  # noqa: E402

SUITE_LIMIT = 600    # seconds for the whole suite (SIGALRM)
PROMPT_RE = re.compile(r"(Wrong code\. )?Code sent to \*{6}(\d{4}): ")
SID_RE = re.compile(r"\bsid (SM[0-9a-f]{32}), status (\w+)")
COMMANDS = ("check", "test", "enroll", "unenroll", "list")


# --------------------------------------------------------------------------- runs

class Harness(CommandHarness):
    """The admin command's harness with the users file as the cases read it, enroll's
    prompts answered, and no code of a run in its output."""

    def users_text(self):
        """The users file's text, or None when it does not exist."""
        try:
            return self.users_path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return None

    def enroll(self, config, user, number, answers, *options, limit=RUN_LIMIT):
        """Runs `enroll [OPTIONS] USER NUMBER` and answers prompt i with answers[i](code),
        where code is the one in the SMS just sent (standard input is closed when the
        answers run out)."""
        res = self.started(["enroll", *options, user, number], config)
        deadline = res.start + limit
        proc = subprocess.Popen(res.cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, start_new_session=True)
        self.procs.append(proc)
        answers = list(answers)
        out, err = b"", b""
        seen = 0
        try:
            if not answers:
                proc.stdin.close()
            streams = {proc.stdout.fileno(): "out", proc.stderr.fileno(): "err"}
            while streams:
                left = deadline - time.monotonic()
                check(left > 0, f"enroll still running after {limit:.0f}s; stderr {err!r}")
                ready, _, _ = select.select(list(streams), [], [], min(left, 0.5))
                for fd in ready:
                    chunk = os.read(fd, 4096)
                    if not chunk:
                        del streams[fd]
                    elif streams[fd] == "out":
                        out += chunk
                    else:
                        err += chunk
                text = err.decode("utf-8", errors="replace")
                for m in PROMPT_RE.finditer(text, seen):
                    seen = m.end()
                    res.prompts.append(m.group(0))
                    if not answers:
                        continue
                    code = self.sandbox.wait_for_code(m.group(2), res.outbox_from, deadline)
                    res.codes.append(code)
                    try:
                        proc.stdin.write((answers.pop(0)(code) + "\n").encode())
                        proc.stdin.flush()
                        if not answers:
                            proc.stdin.close()
                    except BrokenPipeError:
                        pass
            proc.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            raise CaseFailure("enroll closed its output but did not exit") from None
        finally:
            kill_and_reap(proc)
        return self.finished(res, proc.returncode, out, err)

    def after(self, res):
        """Every run: the base's checks, and no code it was sent or typed in its output."""
        super().after(res)
        codes = set(res.codes) | {extract_code(m.get("body")) for m in res.outbox} - {None}
        for code in codes:
            for name, text in (("stdout", res.out), ("stderr", res.err)):
                check(not re.search(rf"(?<![\d*]){code}(?!\d)", text),
                      f"the code {code} in {name}: {text!r}")


def user_lines(text):
    """(user, number) of every line that is not blank or a comment."""
    rows = []
    for line in (text or "").splitlines():
        parts = line.split()
        if parts and not parts[0].startswith("#"):
            rows.append(tuple(parts))
    return rows


def leftovers(h):
    """Files beside the users file other than itself, its lock and the case's own."""
    name = h.users_path.name
    return sorted(p for p in os.listdir(h.dir)
                  if p.startswith(name + ".") and p != name + ".lock")


# --------------------------------------------------------------------------- cases

# ---- usage

@case
def help_main(h):
    for flag in ("--help", "-h"):
        res = h.run(flag)
        expect(res, 0, out=["usage: twilio-sms-otp", "--config PATH", *COMMANDS])
    # before any config is read: a missing config does not matter
    res = h.run("--help", config=h.dir / "missing.json")
    expect(res, 0, out=["usage: twilio-sms-otp"])


@case
def help_every_command(h):
    for command in COMMANDS:
        for flag in ("--help", "-h"):
            res = h.run(command, flag, config=h.dir / "missing.json")
            expect(res, 0, out=["usage: twilio-sms-otp", command])
            check(res.err == "", f"{command} {flag}: stderr {res.err!r}")
    res = h.run("enroll", "--help")
    expect(res, 0, out=["--no-verify", "USER", "NUMBER"])
    res = h.run("list", "--help")
    expect(res, 0, out=["--show"])


@case
def version(h):
    """--version prints the Makefile's VERSION (debian/changelog's), before any config."""
    p = subprocess.run(["make", "-s", "--no-print-directory", "-C", str(REPO), "--eval",
                        "tsms-print-version: ; @echo '$(VERSION)'", "tsms-print-version"],
                       capture_output=True, text=True, check=True)
    want = p.stdout.strip()
    check(re.fullmatch(r"\d+\.\d+\.\d+", want), f"make VERSION {want!r}")
    res = h.run("--version", config=h.dir / "missing.json")
    expect(res, 0)
    check(res.out == f"twilio-sms-otp {want}\n", f"stdout {res.out!r}, want the version {want}")
    check(res.err == "", f"stderr {res.err!r}")


@case
def no_command(h):
    res = h.run()
    expect(res, 2, err=["usage: twilio-sms-otp"])


@case
def unknown_command(h):
    res = h.run("frobnicate", config=h.write_config())
    expect(res, 2, err=["frobnicate", "usage: twilio-sms-otp"], requests=0)


@case
def unknown_option(h):
    config = h.write_config()
    res = h.run("--bogus", "check", config=config)
    expect(res, 2, err=["--bogus"])
    res = h.run("--config")
    expect(res, 2)
    for args in (["check", "--bogus"], ["test", "--bogus"], ["enroll", "--bogus", "dave", "+15555550100"],
                 ["unenroll", "--bogus"], ["list", "--bogus"]):
        res = h.run(*args, config=config)
        check(res.status == 2, f"{' '.join(args)}: want exit 2, got {res.brief()}")
    check(not h.users_path.exists(), "an unknown option wrote the users file")


@case
def wrong_number_of_arguments(h):
    config = h.write_config()
    for args in (["check", "extra"], ["test"], ["test", "+15555550009", "extra"], ["enroll", "dave"],
                 ["enroll", "dave", "+15555550100", "extra"], ["unenroll"], ["list", "extra"]):
        res = h.run(*args, config=config)
        check(res.status == 2, f"{' '.join(args)}: want exit 2, got {res.brief()}")
        check(res.err.strip(), f"{' '.join(args)}: nothing on stderr")
        check(not res.requests, f"{' '.join(args)}: a request reached the sandbox")


@case
def config_option_forms(h):
    config = h.write_config()
    h.write_users("dave +15555550100\n")
    for args in (["--config", config, "check"], [f"--config={config}", "check"]):
        res = h.run(*args)
        expect(res, 0, out=["OK"])


# ---- check

def only_service_fetches(res):
    """check asked Twilio nothing but the Messaging Service: no text sent."""
    check(not res.outbox, f"check sent a text: {res.outbox!r}")
    for r in res.requests:
        check(r["method"] == "GET" and r["path"] == f"/v1/Services/{MESSAGING_SID}",
              f"check made {r['method']} {r['path']}")


@case
def check_ok(h):
    h.write_users("# admins\n\ndave +15555550100\nerin +1 555 555 0101\n")
    res = h.run("check", config=h.write_config())
    expect(res, 0, out=["OK"], requests=1)
    check("problem" not in res.out, f"stdout {res.out!r}")
    check("2 users in the config, 2 in the users file" in res.out, f"stdout {res.out!r}")
    check(f"Twilio: credential (auth token) and Messaging Service {MESSAGING_SID} "
          f"(\"Sandbox sign-in codes\") verified: GET https://127.0.0.1:" in res.out,
          f"stdout {res.out!r}")
    only_service_fetches(res)
    check(res.requests[0]["auth_ok"] is True, "the credential was not the config's")


@case
def check_ok_without_users_file(h):
    res = h.run("check", config=h.write_config(h.config(usersFile=None)))
    expect(res, 0, out=["OK"])


def check_problem(h, config, *needles, args=()):
    """check exits 1 with a `problem:` line that has every needle and a `fix:`; it asked
    Twilio for the Messaging Service at most (no text sent)."""
    res = h.run("check", *args, config=config)
    expect(res, 1, sms=0)
    only_service_fetches(res)
    lines = [l for l in res.out.splitlines() if l.startswith("problem: ")]
    check(lines, f"no 'problem:' line: {res.brief()}")
    for line in lines:
        check("fix:" in line, f"problem without a fix: {line!r}")
    for needle in needles:
        alts = needle if isinstance(needle, tuple) else (needle,)
        check(any(a in l for l in lines for a in alts),
              f"no problem line mentions {' or '.join(alts)!r}: {lines!r}")
    return res, lines


def problem_case(name, setup):
    """Registers check_problem_NAME: setup(h) returns (config path, needles...)."""
    def fn(h):
        h.write_users("dave +15555550100\n")
        config, *needles = setup(h)
        check_problem(h, config, *needles)
    fn.__name__ = f"check_problem_{name}"
    case(fn)


def _symlinked_config(h):
    target = h.write_config(name="real.json")
    link = h.dir / "link.json"
    link.symlink_to(target)
    return str(link), "symbolic link"


def _symlinked_users_file(h):
    real = write_file(h.dir / "real.users", "dave +15555550100\n")
    link = h.dir / "link.users"
    link.symlink_to(real)
    return h.write_config(h.config(usersFile=str(link))), "symbolic link", str(link)


def _unsafe_state_dir(h):
    state = h.dir / "state"
    state.mkdir(mode=0o755)
    os.chmod(state, 0o755)
    return h.write_config(), "stateDir", str(state)


def _state_dir_not_root(h):
    state = h.dir / "state"
    state.mkdir(mode=0o700)
    os.chown(state, pwd.getpwnam("nobody").pw_uid, 0)
    return h.write_config(), "stateDir", "chown"


problem_case("config_group_readable", lambda h: (h.write_config(mode=0o640), ("0640", "640")))
problem_case("config_world_readable", lambda h: (h.write_config(mode=0o604), ("0604", "604")))
problem_case("config_not_root_owned",
             lambda h: (h.write_config(uid=pwd.getpwnam("nobody").pw_uid), "not root"))
problem_case("config_symlink", _symlinked_config)
problem_case("config_missing", lambda h: (str(h.dir / "missing.json"), "cannot open"))
problem_case("config_malformed_json",
             lambda h: (h.write_config(json.dumps(h.config())[:-1] + ",,}"), "JSON"))
problem_case("unknown_key", lambda h: (h.write_config(h.config(codeLenght=6)), "codeLenght"))
problem_case("bad_account_sid", lambda h: (h.write_config(h.config(accountSID="AC0123")), "accountSID"))
problem_case("bad_messaging_service_sid",
             lambda h: (h.write_config(h.config(fromMessagingServiceSID="MG12")),
                        "fromMessagingServiceSID"))
problem_case("template_without_code",
             lambda h: (h.write_config(h.config(templates=[{"usageType": "SignIn", "content": "hi"}])),
                        "{{code}}"))
problem_case("users_file_missing",
             lambda h: (h.write_config(h.config(usersFile=str(h.dir / "none.users"))),
                        "cannot open", str(h.dir / "none.users")))


def _users_file_group_readable(h):
    h.write_users("dave +15555550100\n", mode=0o640)
    return h.write_config(), ("0640", "640")


def _users_file_not_root_owned(h):
    h.write_users("dave +15555550100\n", uid=pwd.getpwnam("nobody").pw_uid)
    return h.write_config(), "not root"


problem_case("users_file_group_readable", _users_file_group_readable)
problem_case("users_file_not_root_owned", _users_file_not_root_owned)
problem_case("users_file_symlink", _symlinked_users_file)
problem_case("users_file_relative_path",
             lambda h: (h.write_config(h.config(usersFile="users")), "usersFile"))
def _state_dir_symlink(h):
    real = h.dir / "real-state"
    real.mkdir(mode=0o700)
    (h.dir / "state").symlink_to(real)
    return h.write_config(), "stateDir"


problem_case("state_dir_group_writable", _unsafe_state_dir)
problem_case("state_dir_not_root_owned", _state_dir_not_root)
problem_case("state_dir_symlink", _state_dir_symlink)
problem_case("state_dir_parent_missing",
             lambda h: (h.write_config(h.config(stateDir=str(h.dir / "none" / "state"))),
                        "stateDir", "mkdir"))


@case
def check_problem_users_file_lines(h):
    """Every kind of bad line is reported with its line number and a fix."""
    h.write_users("# ok\n"
                  "dave +15555550100\n"       # 2
                  "erin\n"                    # 3: no number
                  "frank +1555\n"             # 4: too short
                  "gina +15555550103 extra\n"  # 5: something after the number
                  "hank +1555555010x\n"       # 6: not digits
                  "dave +15555550104\n"       # 7: dave again
                  "alice +15555550006\n")     # 8: also inline
    res, lines = check_problem(h, h.write_config(), ":3:", ":4:", ":5:", ":6:",
                               "lines 2 and 7", ("alice", ":8:"))
    check(len(lines) == 6, f"{len(lines)} problem lines, want 6: {lines!r}")
    check("6 problems" in res.out, f"stdout {res.out!r}")


@case
def check_problem_inline_number_without_plus(h):
    """A number without its '+' in the config's users: the module refuses that user only,
    and check names the entry with the E.164 fix and exits 1."""
    h.write_users("dave +15555550100\n")
    cfg = h.config(users={"alice": "+15555550006", "mallory": "2025550143", "eve": 12025550143})
    res, lines = check_problem(h, h.write_config(cfg),
                               'users: user "mallory": the number has no leading +; fix: write '
                               "it as +<country code><number>, e.g. +12025550143",
                               'users: user "eve": the number is not a string; fix: put it in '
                               "quotes and write it as +<country code><number>")
    check(len(lines) == 2, f"{len(lines)} problem lines, want 2: {lines!r}")
    check("2 problems" in res.out, f"stdout {res.out!r}")
    # with a problem that refuses the whole config, the entry is still reported
    cfg["failMode"] = "sometimes"
    check_problem(h, h.write_config(cfg), "failMode", 'users: user "mallory": the number has '
                  "no leading +")


@case
def check_problem_duplicate_user(h):
    h.write_users("dave +15555550100\nerin +15555550101\ndave +15555550100\n")
    check_problem(h, h.write_config(), "dave", "lines 1 and 3")


@case
def check_problem_user_inline_and_in_file(h):
    h.write_users("dave +15555550100\nbob +15555550107\n")
    check_problem(h, h.write_config(), "bob", "users")


@case
def check_all_problems_at_once(h):
    h.write_users("dave\ndave +15555550100\nalice +15555550006\n")
    state = h.dir / "state"
    state.mkdir(mode=0o777)
    os.chmod(state, 0o777)
    res, lines = check_problem(h, h.write_config(), ":1:", "alice", "stateDir")
    check(len(lines) == 3, f"{len(lines)} problem lines, want 3: {lines!r}")
    check("3 problems" in res.out, f"stdout {res.out!r}")


@case
def check_example_config(h):
    """A fresh copy of the example the package installs: every placeholder and example user
    flagged in one run, nothing asked of Twilio."""
    text = (REPO / "conf" / "pam_twilio_sms.json").read_text(encoding="utf-8")
    res, lines = check_problem(h, h.write_config(text),
                               "accountSID is the example's placeholder",
                               "authToken is the example's placeholder",
                               "fromMessagingServiceSID is the example's placeholder",
                               "users.alice is the example's user",
                               "users.bob is the example's user")
    check(len(lines) == 5, f"{len(lines)} problem lines, want 5: {lines!r}")
    check("5 problems; the PAM module would refuse this config" in res.out, f"stdout {res.out!r}")
    check("Auth Token from the Twilio Console" in res.out, f"stdout {res.out!r}")
    check(not res.requests, f"{len(res.requests)} requests with placeholder credentials")


@case
def check_json_error_line_and_column(h):
    """A JSON syntax error is placed by line and column, not by byte."""
    text = json.dumps(h.config(), indent=1)
    text = text[:-2] + ',\n "failMode": clos\n}'
    line = text.count("\n")  # the next-to-last line
    res, lines = check_problem(h, h.write_config(text), "not valid JSON",
                               f"(line {line}, column 14)")
    check("byte" not in res.out, f"stdout {res.out!r}")
    check(len(lines) == 1, f"{len(lines)} problem lines, want 1: {lines!r}")


@case
def check_bad_credential(h):
    """The sandbox answers 401 to a token that is not the account's: no text is sent."""
    h.write_users("dave +15555550100\n")
    res, lines = check_problem(h, h.write_config(h.config(authToken="not-the-token-0123456789")),
                               ("Twilio refused the credential", "HTTP 401", "error 20003",
                                "Auth Token"))
    check(len(res.requests) == 1, f"{len(res.requests)} requests, want 1")
    check(len(lines) == 1, f"{len(lines)} problem lines, want 1: {lines!r}")
    check("not-the-token" not in res.out + res.err, "the wrong token was printed")


@case
def check_unknown_messaging_service(h):
    h.write_users("dave +15555550100\n")
    other = "MG" + "0" * 32
    res = h.run("check", config=h.write_config(h.config(fromMessagingServiceSID=other)))
    expect(res, 1, sms=0, requests=1,
           out=["has no such Messaging Service", "HTTP 404", "error 20404",
                "Messaging > Services", f"/v1/Services/{other}"])
    check(res.requests[0]["path"] == f"/v1/Services/{other}", f"path {res.requests[0]['path']}")


@case
def check_twilio_forbidden_and_unreachable(h):
    h.write_users("dave +15555550100\n")
    h.sandbox.set_scenario("403")
    check_problem(h, h.write_config(), ("HTTP 403", "Standard or Main API key"))
    h.sandbox.set_scenario("ok")
    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))
    port = closed.getsockname()[1]
    closed.close()  # nothing listens there now
    config = h.write_config(h.config(apiBaseUrl=f"https://127.0.0.1:{port}"))
    check_problem(h, config, (f"GET https://127.0.0.1:{port}/v1/Services/{MESSAGING_SID}",
                              "check --offline"))
    # an apiBaseUrl on twilio.com whose Messaging API host is not known: said, not guessed
    res, _ = check_problem(h, h.write_config(h.config(apiBaseUrl="https://api.twilio.com:443")),
                           ("Messaging API's host for https://api.twilio.com:443 is not known",))
    check(not res.requests, "a request for an unknown host")


@case
def check_offline(h):
    """--offline asks nothing of the network; the rest is checked as ever."""
    h.write_users("dave +15555550100\n")
    res = h.run("check", "--offline", config=h.write_config(h.config(authToken="not-the-token")))
    expect(res, 0, out=["Twilio: not verified (--offline)", "OK"], requests=0)
    state = h.dir / "state"
    state.mkdir(mode=0o777)
    os.chmod(state, 0o777)
    res, _ = check_problem(h, h.write_config(), "stateDir", args=["--offline"])
    check(not res.requests, f"{len(res.requests)} requests with --offline")


@case
def check_every_problem_in_one_run(h):
    """Problems of several keys of the config, all in one run, each with its fix."""
    h.write_users("dave +15555550100\n")
    config = h.config(codeLenght=6, codeLength=99, failMode="ajar", stateDir="state",
                      templates=[{"usageType": "SignIn", "content": "hi"}],
                      allowedCountryCodes=["1"])
    res, lines = check_problem(h, h.write_config(config), "codeLenght", "codeLength",
                               "failMode", "stateDir", "allowedCountryCodes", "{{code}}")
    check(len(lines) == 6, f"{len(lines)} problem lines, want 6: {lines!r}")
    check("6 problems; the PAM module would refuse" in res.out, f"stdout {res.out!r}")


@case
def check_example_users_in_a_real_config(h):
    """The example's users left in an otherwise real config: flagged, the rest verified."""
    h.write_users("dave +15555550100\nbob +447700900123\n")
    res, lines = check_problem(h, h.write_config(h.config(users={"alice": "+12025550143"})),
                               "users.alice is the example's user", ":2: bob is the example's user")
    check(len(lines) == 2, f"{len(lines)} problem lines, want 2: {lines!r}")
    check("verified" in res.out, f"Twilio not verified: {res.out!r}")


@case
def check_never_prints_auth_token(h):
    """Also when the token itself is what is wrong (h.run checks every output)."""
    h.write_users("dave +15555550100\n")
    for token in (AUTH_TOKEN + "\n", AUTH_TOKEN + "\x1b[31m", AUTH_TOKEN * 200, " " + AUTH_TOKEN):
        config = h.write_config(h.config(authToken=token))
        res = h.run("check", config=config)
        check(res.status in (0, 1), f"token {token[:40]!r}: {res.brief()}")
    for broken in (h.config(authToken=[AUTH_TOKEN]), h.config(authToken={"t": AUTH_TOKEN}),
                   json.dumps(h.config())[:-1] + f', "authToken": "{AUTH_TOKEN}"}}',
                   json.dumps(h.config()).replace(AUTH_TOKEN, AUTH_TOKEN + '"x')):
        res = h.run("check", config=h.write_config(broken))
        expect(res, 1)


# ---- test

@case
def test_sends_test_template(h):
    res = h.run("test", "+15555550009", config=h.write_config())
    expect(res, 0, sms=1, requests=1)
    m = SID_RE.search(res.out)
    check(m, f"no 'sid SM..., status ...' in stdout {res.out!r}")
    msg = res.outbox[0]
    check(m.group(1) == msg["sid"], f"printed sid {m.group(1)}, Twilio's {msg['sid']}")
    check(m.group(2) == "accepted", f"status {m.group(2)!r}")
    check(msg["to"] == "+15555550009", f"To {msg['to']!r}")
    check(msg["messaging_service_sid"] == MESSAGING_SID, f"sid {msg['messaging_service_sid']!r}")
    code = extract_code(msg["body"])
    check(code and msg["body"] == TEMPLATES["Test"].replace("{{code}}", code), f"body {msg['body']!r}")
    check(res.requests[0]["auth_ok"] is True, "credentials refused")


@case
def test_generic_fallback(h):
    templates = [{"usageType": u, "content": TEMPLATES[u]} for u in ("SignIn", "Generic")]
    res = h.run("test", "+15555550009", config=h.write_config(h.config(templates=templates)))
    expect(res, 0, sms=1)
    code = extract_code(res.outbox[0]["body"])
    check(res.outbox[0]["body"] == TEMPLATES["Generic"].replace("{{code}}", code or "-"),
          f"body {res.outbox[0]['body']!r}")


@case
def test_without_test_or_generic_template(h):
    templates = [{"usageType": "SignIn", "content": TEMPLATES["SignIn"]}]
    res = h.run("test", "+15555550009", config=h.write_config(h.config(templates=templates)))
    expect(res, 1, err=["Test", "Generic"], requests=0)


@case
def test_number_normalised(h):
    config = h.write_config()
    for number in ("+1.555.555.0009", "+1 555 555-0009", "+1 (555) 555-0009"):
        res = h.run("test", number, config=config)
        expect(res, 0, sms=1)
        check(res.outbox[0]["to"] == "+15555550009", f"{number!r} sent to {res.outbox[0]['to']!r}")


@case
def test_bad_number(h):
    config = h.write_config()
    for number, why in (("5555", "has no leading +"),
                        ("+0155555500", "has a country code that starts with 0"),
                        ("+1555555000912345678", "is too long"), ("phone", "has a letter"),
                        ("15555550009", "has no leading +"),
                        ("+44 (0)20 7946 0018", "has (0), a trunk prefix")):
        res = h.run("test", number, config=config)
        expect(res, 2, err=[f'the number "{number}" {why}',
                            "fix: write it as +<country code><number>, e.g. +12025550143"],
               requests=0)


@case
def test_bad_config(h):
    res = h.run("test", "+15555550009", config=h.write_config(mode=0o644))
    expect(res, 1, err=["0644", "fix:"], requests=0)


def twilio_error_case(h, scenario, *needles, timeout=5):
    h.sandbox.set_scenario(scenario)
    res = h.run("test", "+15555550009", config=h.write_config(h.config(timeoutSeconds=timeout)))
    expect(res, "nonzero", err=needles, sms=0)
    check(not SID_RE.search(res.out), f"a sid printed: {res.out!r}")
    return res


@case
def test_twilio_400_21211(h):
    twilio_error_case(h, "400-21211", "21211", "The 'To' number is not a valid phone number.")


@case
def test_twilio_magic_invalid_number(h):
    res = h.run("test", "+15005550001", config=h.write_config())
    expect(res, "nonzero", err=["21211", "not a valid phone number"], sms=0)


@case
def test_twilio_401(h):
    twilio_error_case(h, "401", "20003", "Authenticate", "401")


@case
def test_twilio_503(h):
    twilio_error_case(h, "503", "503")


@case
def test_twilio_hang(h):
    res = twilio_error_case(h, "hang", "time", timeout=2)
    check(res.elapsed < 2 + 3, f"took {res.elapsed:.1f}s with timeoutSeconds 2")


# ---- enroll

def right(code):
    return code


def wrong(code):
    return "".join(str((int(d) + 1) % 10) for d in code)


@case
def enroll_verified(h):
    h.write_users("dave +15555550100\n")
    res = h.enroll(h.write_config(), "erin", "+15555550101", [right])
    expect(res, 0, out=["enrolled", "erin"], sms=1, requests=1)
    check(res.prompts == ["Code sent to ******0101: "], f"prompts {res.prompts!r}")
    msg = res.outbox[0]
    check(msg["to"] == "+15555550101", f"To {msg['to']!r}")
    check(msg["body"] == TEMPLATES["Register"].replace("{{code}}", res.codes[0]),
          f"body {msg['body']!r}: not the Register template")
    check(h.users_text() == "dave +15555550100\nerin +15555550101\n", f"users {h.users_text()!r}")
    expect_private(h.users_path)
    check(leftovers(h) == [], f"left behind: {leftovers(h)}")


@case
def enroll_register_falls_back_to_generic(h):
    templates = [{"usageType": u, "content": TEMPLATES[u]} for u in ("SignIn", "Generic")]
    res = h.enroll(h.write_config(h.config(templates=templates)), "erin", "+15555550101", [right])
    expect(res, 0, sms=1)
    check(res.outbox[0]["body"] == TEMPLATES["Generic"].replace("{{code}}", res.codes[0]),
          f"body {res.outbox[0]['body']!r}")


@case
def enroll_wrong_code(h):
    h.write_users("dave +15555550100\n")
    res = h.enroll(h.write_config(h.config(maxAttempts=3)), "erin", "+15555550101",
                   [wrong, wrong, wrong])
    expect(res, 1, err=["not enrolled"], sms=1)
    check(res.prompts == ["Code sent to ******0101: "] + ["Wrong code. Code sent to ******0101: "] * 2,
          f"prompts {res.prompts!r}")
    check(h.users_text() == "dave +15555550100\n", f"users file changed: {h.users_text()!r}")


@case
def enroll_wrong_then_right(h):
    res = h.enroll(h.write_config(h.config(maxAttempts=3)), "erin", "+15555550101", [wrong, right])
    expect(res, 0, sms=1)
    check(len(res.prompts) == 2, f"prompts {res.prompts!r}")
    check(user_lines(h.users_text()) == [("erin", "+15555550101")], f"users {h.users_text()!r}")


@case
def enroll_no_answer(h):
    """End of input at the prompt: nothing written."""
    res = h.enroll(h.write_config(), "erin", "+15555550101", [])
    expect(res, "nonzero", sms=1)
    check(len(res.prompts) == 1, f"prompts {res.prompts!r}")
    check(not h.users_path.exists(), "users file written")


@case
def enroll_twilio_error(h):
    h.sandbox.set_scenario("400-21211")
    res = h.enroll(h.write_config(), "erin", "+15555550101", [right])
    expect(res, "nonzero", err=["21211"], sms=0)
    check(res.prompts == [], f"prompted after a failed SMS: {res.prompts!r}")
    check(not h.users_path.exists(), "users file written")


@case
def enroll_no_verify(h):
    h.write_users("dave +15555550100\n")
    res = h.run("enroll", "--no-verify", "erin", "+15555550101", config=h.write_config())
    expect(res, 0, out=["enrolled"], sms=0, requests=0)
    check(h.users_text() == "dave +15555550100\nerin +15555550101\n", f"users {h.users_text()!r}")
    expect_private(h.users_path)
    # the option may also follow the arguments
    res = h.run("enroll", "frank", "+15555550102", "--no-verify", config=h.write_config())
    expect(res, 0, requests=0)
    check(("frank", "+15555550102") in user_lines(h.users_text()), f"users {h.users_text()!r}")


@case
def enroll_creates_users_file(h):
    check(not h.users_path.exists(), "users file exists before")
    res = h.run("enroll", "--no-verify", "erin", "+15555550101", config=h.write_config())
    expect(res, 0)
    check(h.users_text() == "erin +15555550101\n", f"users {h.users_text()!r}")
    expect_private(h.users_path)
    res = h.run("check", config=h.write_config())
    expect(res, 0, out=["OK"])


@case
def enroll_creates_users_file_under_umask_0(h):
    """The new file is 0600 whatever the caller's umask."""
    old = os.umask(0)
    try:
        res = h.run("enroll", "--no-verify", "erin", "+15555550101", config=h.write_config())
    finally:
        os.umask(old)
    expect(res, 0)
    expect_private(h.users_path)


@case
def enroll_again_changes_number(h):
    h.write_users("dave +15555550100\nerin +15555550101\nfrank +15555550102\n")
    config = h.write_config()
    res = h.run("enroll", "--no-verify", "erin", "+15555550199", config=config)
    expect(res, 0, out=["enrolled"])
    check(h.users_text() == "dave +15555550100\nerin +15555550199\nfrank +15555550102\n",
          f"users {h.users_text()!r}")
    res = h.enroll(config, "erin", "+15555550198", [right])
    expect(res, 0, sms=1)
    check(res.outbox[0]["to"] == "+15555550198", f"SMS to {res.outbox[0]['to']!r}, not the new number")
    check(h.users_text() == "dave +15555550100\nerin +15555550198\nfrank +15555550102\n",
          f"users {h.users_text()!r}")


@case
def enroll_same_number_again(h):
    h.write_users("erin +15555550101\n")
    before = os.stat(h.users_path)
    res = h.run("enroll", "--no-verify", "erin", "+1 555 555 0101", config=h.write_config())
    expect(res, 0, out=["already enrolled"])
    check(h.users_text() == "erin +15555550101\n", f"users {h.users_text()!r}")
    check(os.stat(h.users_path).st_ino == before.st_ino, "file rewritten although nothing changed")


@case
def enroll_collapses_duplicates(h):
    h.write_users("erin +15555550101\ndave +15555550100\nerin +15555550109\n")
    res = h.run("enroll", "--no-verify", "erin", "+15555550102", config=h.write_config())
    expect(res, 0)
    check(h.users_text() == "erin +15555550102\ndave +15555550100\n", f"users {h.users_text()!r}")


@case
def enroll_numbers_normalised(h):
    config = h.write_config()
    for user, number in (("erin", "+1.555.555.0101"), ("frank", "+1 555 555 0102"),
                         ("gina", "+1-555-555-0103"), ("hank", "  +15555550104")):
        res = h.run("enroll", "--no-verify", user, number, config=config)
        expect(res, 0)
    check(h.users_text() == "erin +15555550101\nfrank +15555550102\ngina +15555550103\n"
          "hank +15555550104\n", f"users {h.users_text()!r}")
    res = h.enroll(config, "ivan", "+1 (555) 555-0105", [right])
    expect(res, 0, sms=1)
    check(res.outbox[0]["to"] == "+15555550105", f"SMS to {res.outbox[0]['to']!r}")


@case
def enroll_bad_arguments(h):
    config = h.write_config()
    for user, number in (("erin", "12345"), ("erin", "+0155555501"), ("erin", "tel:+15555550101"),
                         ("er in", "+15555550101"), ("#erin", "+15555550101"), ("", "+15555550101"),
                         ("er\x01in", "+15555550101"), ("x" * 300, "+15555550101")):
        res = h.run("enroll", "--no-verify", user, number, config=config)
        check(res.status == 2, f"enroll {user[:20]!r} {number!r}: want exit 2, got {res.brief()}")
        res = h.run("enroll", user, number, config=config)
        check(res.status == 2 and not res.requests, f"enroll {user[:20]!r} {number!r}: {res.brief()}")
    check(not h.users_path.exists(), "users file written")


@case
def enroll_number_without_plus_refused(h):
    """A number without its '+' is refused with the E.164 form, never guessed: 2025550188
    (a US number) would have been enrolled as +20 25550188, Egypt."""
    config = h.write_config()
    for args in (["--no-verify", "alice2", "2025550188"], ["alice2", "2025550188"]):
        res = h.run("enroll", *args, config=config)
        expect(res, 2, err=['the number "2025550188" has no leading +',
                            "fix: write it as +<country code><number>, e.g. +12025550143"],
               requests=0)
    check(not h.users_path.exists(), "users file written")


@case
def enroll_inline_user_refused(h):
    h.write_users("dave +15555550100\n")
    config = h.write_config()
    for args in (["--no-verify", "alice", "+15555550106"], ["alice", "+15555550106"]):
        res = h.run("enroll", *args, config=config)
        expect(res, 1, err=["alice", "users"], requests=0)
    check(h.users_text() == "dave +15555550100\n", f"users {h.users_text()!r}")


@case
def enroll_without_users_file_key(h):
    res = h.run("enroll", "erin", "+15555550101", config=h.write_config(h.config(usersFile=None)))
    expect(res, 1, err=["usersFile", "fix:"], requests=0)


@case
def enroll_refuses_unsafe_users_file(h):
    config = h.write_config()
    nobody = pwd.getpwnam("nobody").pw_uid
    for mode, uid, needle in ((0o644, 0, "0644"), (0o600, nobody, "not root")):
        h.write_users("dave +15555550100\n", mode=mode, uid=uid)
        res = h.run("enroll", "--no-verify", "erin", "+15555550101", config=config)
        expect(res, 1, err=[needle])
        check(h.users_text() == "dave +15555550100\n", f"users {h.users_text()!r}")
        st = os.stat(h.users_path)
        check(st.st_uid == uid and stat.S_IMODE(st.st_mode) == mode, "the unsafe file was replaced")


@case
def enroll_refuses_symlinked_users_file(h):
    real = write_file(h.dir / "real.users", "dave +15555550100\n")
    h.users_path.symlink_to(real)
    res = h.run("enroll", "--no-verify", "erin", "+15555550101", config=h.write_config())
    expect(res, 1, err=["symbolic link"])
    check(h.users_path.is_symlink(), "the symlink was replaced")
    check(Path(real).read_text() == "dave +15555550100\n", "the symlink's target was changed")


@case
def enroll_replaces_file_atomically(h):
    """An update is a new file renamed over the old one: a reader that opened the old
    file keeps reading it, whole."""
    old_text = "".join(f"user{i:05d} +1555{i:07d}\n" for i in range(5000))
    h.write_users(old_text)
    with open(h.users_path, encoding="utf-8") as old:
        before = os.fstat(old.fileno())
        res = h.run("enroll", "--no-verify", "user00000", "+15555550199", config=h.write_config())
        expect(res, 0)
        check(old.read() == old_text, "the open file changed under its reader")
    after = os.stat(h.users_path)
    check(after.st_ino != before.st_ino, "updated in place, not replaced")
    check(h.users_text() == old_text.replace("user00000 +15550000000", "user00000 +15555550199"),
          "unexpected content")
    check(leftovers(h) == [], f"left behind: {leftovers(h)}")


@case
def enroll_keeps_comments_and_blank_lines(h):
    h.write_users("# pam_twilio_sms users: user +E164number\n"
                  "\n"
                  "# ops team\n"
                  "dave +15555550100\n"
                  "  # indented comment\n"
                  "\t\n"
                  "erin +15555550101\n"
                  "frank +15555550102")  # no newline at the end
    config = h.write_config()
    for args in (["enroll", "--no-verify", "gina", "+15555550103"],
                 ["enroll", "--no-verify", "dave", "+15555550199"],
                 ["unenroll", "erin"]):
        res = h.run(*args, config=config)
        expect(res, 0)
    want = ("# pam_twilio_sms users: user +E164number\n"
            "\n"
            "# ops team\n"
            "dave +15555550199\n"
            "  # indented comment\n"
            "\t\n"
            "frank +15555550102\n"
            "gina +15555550103\n")
    check(h.users_text() == want, f"users file {h.users_text()!r}, want {want!r}")


# ---- unenroll

@case
def unenroll(h):
    h.write_users("# team\ndave +15555550100\nerin +15555550101\nfrank +15555550102\n")
    config = h.write_config()
    res = h.run("unenroll", "erin", config=config)
    expect(res, 0, out=["unenrolled", "erin"], requests=0)
    check(h.users_text() == "# team\ndave +15555550100\nfrank +15555550102\n", f"users {h.users_text()!r}")
    expect_private(h.users_path)
    res = h.run("unenroll", "erin", config=config)
    expect(res, 1, err=["erin"])
    check(h.users_text() == "# team\ndave +15555550100\nfrank +15555550102\n", "file changed")


@case
def unenroll_inline_user(h):
    h.write_users("dave +15555550100\n")
    res = h.run("unenroll", "alice", config=h.write_config())
    expect(res, 1, err=["alice", "config"])
    check(h.users_text() == "dave +15555550100\n", "file changed")


@case
def unenroll_malformed_line(h):
    """An admin can remove a user whose line is broken."""
    h.write_users("dave +15555550100\nerin\nfrank +15555550102\n")
    res = h.run("unenroll", "erin", config=h.write_config())
    expect(res, 0)
    check(h.users_text() == "dave +15555550100\nfrank +15555550102\n", f"users {h.users_text()!r}")


# ---- list

def list_rows(text):
    return [tuple(l.split()) for l in text.splitlines() if l.strip()]


@case
def list_masks_numbers(h):
    h.write_users("# c\ndave +15555550100\nerin +15555550101\n")
    res = h.run("list", config=h.write_config())
    expect(res, 0, requests=0)
    rows = list_rows(res.out)
    want = [("alice", "******0006", "config"), ("bob", "******0007", "config"),
            ("dave", "******0100", "usersFile"), ("erin", "******0101", "usersFile")]
    check(sorted(rows) == want, f"list {rows!r}, want {want!r}")
    for number in ("5555550006", "5555550007", "5555550100", "5555550101"):
        check(number not in res.out, f"unmasked {number} in {res.out!r}")


@case
def list_show(h):
    h.write_users("dave +15555550100\nerin +15555550101\n")
    res = h.run("list", "--show", config=h.write_config())
    expect(res, 0)
    want = [("alice", "+15555550006", "config"), ("bob", "+15555550007", "config"),
            ("dave", "+15555550100", "usersFile"), ("erin", "+15555550101", "usersFile")]
    check(sorted(list_rows(res.out)) == want, f"list {res.out!r}")


@case
def list_bad_inline_entry(h):
    """An entry of users whose number the module refuses is not listed as a number: its
    problem and fix go to standard error."""
    h.write_users("dave +15555550100\n")
    cfg = h.config(users={"alice": "+15555550006", "mallory": "2025550143"})
    res = h.run("list", "--show", config=h.write_config(cfg))
    expect(res, 0, err=['users: user "mallory": the number has no leading +; fix: write it as '
                        "+<country code><number>, e.g. +12025550143"])
    want = [("alice", "+15555550006", "config"), ("dave", "+15555550100", "usersFile")]
    check(sorted(list_rows(res.out)) == want, f"list {res.out!r}")


@case
def list_without_users_file(h):
    res = h.run("list", config=h.write_config())  # usersFile named, not created yet
    expect(res, 0)
    check(sorted(list_rows(res.out)) == [("alice", "******0006", "config"), ("bob", "******0007", "config")],
          f"list {res.out!r}")


@case
def list_warns_of_malformed_lines(h):
    h.write_users("dave +15555550100\nerin\nfrank +1555\n")
    res = h.run("list", config=h.write_config())
    check(res.status in (0, 1), f"{res.brief()}")
    check("2 malformed lines" in res.err and "check" in res.err, f"stderr {res.err!r}")
    check(("dave", "******0100", "usersFile") in list_rows(res.out), f"list {res.out!r}")


@case
def list_refuses_unsafe_users_file(h):
    h.write_users("dave +15555550100\n", mode=0o644)
    res = h.run("list", "--show", config=h.write_config())
    expect(res, 1, err=["0644"])
    check("+15555550100" not in res.out, f"numbers listed from an unsafe file: {res.out!r}")


# ---- concurrency

@case
def concurrent_enrolls(h):
    """20 admins enrolling at once: every line lands exactly once."""
    h.write_users("# team\ndave +15555550100\n")
    config = h.write_config()
    users = {f"user{i:02d}": f"+1555556{i:04d}" for i in range(20)}
    for status, _, err in h.run_at_once([["enroll", "--no-verify", u, n] for u, n in users.items()],
                                        config, "enroll"):
        check(status == 0, f"enroll exit {status}: {err!r}")
    rows = user_lines(h.users_text())
    check(sorted(rows) == sorted([("dave", "+15555550100")] + list(users.items())),
          f"{len(rows)} user lines: {sorted(rows)!r}")
    check(h.users_text().startswith("# team\ndave +15555550100\n"), "the head of the file changed")
    expect_private(h.users_path)
    check(leftovers(h) == [], f"left behind: {leftovers(h)}")


BASE_LINE = re.compile(r"^base\d{5} \+1555\d{7}$")
ANY_LINE = re.compile(r"^(#.*|[^\s#]\S* \+[1-9]\d{6,14})$")


@case
def reads_during_updates_see_whole_files(h):
    """While enroll/unenroll run in a loop, `list` and plain reads of the file always see
    a whole file: every line, none cut."""
    base = 20000
    h.write_users("# base users\n" + "".join(f"base{i:05d} +1555{i:07d}\n" for i in range(base)))
    config = h.write_config()
    stop = threading.Event()
    errors = []
    counts = {"list": 0, "read": 0, "write": 0}

    def writer():
        try:
            for i in range(30):
                for args in (["enroll", "--no-verify", f"new{i:02d}", f"+1555557{i:04d}"],
                             ["enroll", "--no-verify", "base00000", f"+1555558{i:04d}"],
                             ["unenroll", f"new{i - 1:02d}"] if i else None):
                    if args is None:
                        continue
                    r = subprocess.run(h.command(args, config), stdin=subprocess.DEVNULL,
                                       capture_output=True, timeout=RUN_LIMIT, start_new_session=True)
                    if r.returncode != 0:
                        errors.append(f"{args}: exit {r.returncode} {r.stderr!r}")
                    counts["write"] += 1
        except Exception as e:  # reported below
            errors.append(f"writer: {type(e).__name__}: {e}")
        finally:
            stop.set()

    def raw_reader():
        while not stop.is_set():
            text = h.users_path.read_text(encoding="utf-8")
            lines = text.split("\n")
            if lines[-1] != "" or sum(1 for l in lines if BASE_LINE.match(l)) != base or \
                    not all(ANY_LINE.match(l) for l in lines[:-1]):
                errors.append(f"a read saw a partial file of {len(text)} bytes")
                return
            counts["read"] += 1

    def list_reader():
        while not stop.is_set():
            r = subprocess.run(h.command(["list", "--show"], config), stdin=subprocess.DEVNULL,
                               capture_output=True, timeout=RUN_LIMIT, start_new_session=True)
            out = r.stdout.decode()
            n = sum(1 for l in out.splitlines() if l.startswith("base"))
            if r.returncode != 0 or r.stderr or n != base:
                errors.append(f"list saw {n} base users, exit {r.returncode}, stderr {r.stderr[:200]!r}")
                return
            counts["list"] += 1

    threads = [threading.Thread(target=f, daemon=True) for f in (writer, raw_reader, list_reader)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=RUN_LIMIT * 3)
    stop.set()
    check(not any(t.is_alive() for t in threads), "a reader or the writer hung")
    check(not errors, "; ".join(errors[:3]))
    check(counts["write"] == 89, f"{counts['write']} updates ran")
    check(counts["list"] >= 3 and counts["read"] >= 3, f"too little overlap: {counts}")
    rows = dict(user_lines(h.users_text()))
    check(rows.get("new29") == "+15555570029" and "new28" not in rows, "the last updates are missing")
    check(rows.get("base00000") == "+15555580029", f"base00000 -> {rows.get('base00000')}")
    check(len(rows) == base + 1, f"{len(rows)} users at the end")
    check(leftovers(h) == [], f"left behind: {leftovers(h)}")


# ---- status and unlock

def write_state(h, name, window_start, sends, last_send, failures, locked_until):
    """A state file as the module writes it (root 0600), in the case's stateDir."""
    d = h.dir / "state"
    d.mkdir(mode=0o700, exist_ok=True)
    return write_file(d / name, f"v1 window_start={window_start} sends={sends} "
                      f"last_send={last_send} failures={failures} "
                      f"locked_until={locked_until}\n")


def state_fields(path):
    return dict(re.findall(r"(\w+)=(\d+)", Path(path).read_text()))


@case
def status_of_a_locked_user(h):
    now = int(time.time())
    write_state(h, "alice", now - 100, 2, now - 5, 10, now + 300)
    h.write_users("dave +15555550100\n")
    res = h.run("status", "alice", config=h.write_config(h.config(resendCooldownSeconds=30)))
    expect(res, 0, out=("user:          alice", "phone:         ******0006",
                        "sends:         2 of 5 in the window, which ends in",
                        "wrong codes:   10 in a row (lockout at 10)", "locked:        until ",
                        " UTC ("))
    check(re.search(r"cooldown:      2[0-9] s left", res.out), f"no cooldown: {res.out!r}")
    check("5555550006" not in res.out, f"the full number is shown: {res.out!r}")


@case
def status_after_the_window_and_lockout_ended(h):
    now = int(time.time())
    write_state(h, "alice", now - 5000, 4, now - 4000, 10, now - 10)
    res = h.run("status", "alice", config=h.write_config())
    expect(res, 0, out=("sends:         0 of 5 in the window\n", "cooldown:      none",
                        "wrong codes:   0 in a row", "locked:        no"))


@case
def status_and_unlock_without_state(h):
    config = h.write_config()
    for cmd in ("status", "unlock"):
        res = h.run(cmd, "carol", config=config)
        expect(res, 1, out=("carol has no state in",))
    state = h.dir / "state"
    made = sorted(os.listdir(state)) if state.exists() else []
    check(made == [], f"status or unlock created {made} for a user without state")


@case
def unlock_clears_failures_keeps_sends(h):
    now = int(time.time())
    path = write_state(h, "alice", now - 100, 3, now - 50, 12, now + 600)
    config = h.write_config()
    res = h.run("unlock", "alice", config=config)
    expect(res, 0, out=("unlocked alice: 12 wrong codes cleared, lockout lifted; sends kept "
                        "(3 in the window)",))
    got = state_fields(path)
    check(got["failures"] == "0" and got["locked_until"] == "0", f"state after unlock: {got}")
    check(got["sends"] == "3" and got["window_start"] == str(now - 100) and
          got["last_send"] == str(now - 50), f"send counts changed: {got}")
    res = h.run("unlock", "alice", config=config)
    expect(res, 0, out=("0 wrong codes cleared, was not locked",))
    res = h.run("status", "alice", config=config)
    expect(res, 0, out=("locked:        no", "sends:         3 of 5"))


@case
def unlock_waits_for_the_modules_lock(h):
    """unlock takes the lock the module holds while it updates the user's state."""
    now = int(time.time())
    path = write_state(h, "alice", now - 100, 1, now - 50, 10, now + 600)
    config = h.write_config()
    lock = os.open(Path(path).parent / ".alice.lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(lock, fcntl.LOCK_EX)
        proc = subprocess.Popen(h.command(["unlock", "alice"], config), stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, stdin=subprocess.DEVNULL)
        time.sleep(1.0)
        check(proc.poll() is None, "unlock finished while the lock was held")
        check(state_fields(path)["failures"] == "10", "the state changed under the lock")
        fcntl.flock(lock, fcntl.LOCK_UN)
        out, err = proc.communicate(timeout=RUN_LIMIT)
    finally:
        os.close(lock)
    check(proc.returncode == 0, f"unlock exit {proc.returncode}: {out!r} {err!r}")
    check(state_fields(path)["failures"] == "0", "unlock did not clear the failures")


@case
def unlock_names_a_stopped_lock_holder(h):
    """A stopped process holds the lock of a user who has no state file yet (a first
    login, stopped while it writes): status and unlock do not say "nothing to unlock"
    while that user's logins wait on it, they fail after 5 s naming the holder, stopped,
    and how to free it; once it is gone, unlock has nothing to do."""
    config = h.write_config()
    state = h.dir / "state"
    state.mkdir(mode=0o700, exist_ok=True)
    lock = state / ".alice.lock"
    holder = subprocess.Popen(["flock", str(lock), "sleep", "60"], stdin=subprocess.DEVNULL,
                              start_new_session=True)
    try:
        deadline = time.monotonic() + 5
        while not lock.exists() and time.monotonic() < deadline:
            time.sleep(0.02)
        time.sleep(0.2)  # flock(1) holds it before it starts sleep
        os.killpg(holder.pid, signal.SIGSTOP)
        for command in ("status", "unlock"):
            res = h.run(command, "alice", config=config)
            expect(res, "nonzero",
                   err=(f".alice.lock: cannot lock: still locked after 5 s by process "
                        f"{holder.pid} (flock, stopped; fix: kill -CONT {holder.pid}, or kill "
                        f"{holder.pid})",))
    finally:
        os.killpg(holder.pid, signal.SIGKILL)
        holder.wait()
    res = h.run("unlock", "alice", config=config)
    expect(res, 1, out=("nothing to unlock",))
    check(not (state / "alice").exists(), "unlock wrote a state file for a user without one")


@case
def status_and_unlock_map_names_like_the_module(h):
    """A name that is not a plain user name is never a path: the module's hashed name is
    used, nothing outside stateDir is read or written."""
    config = h.write_config()
    outside = h.dir / "outside"
    write_file(outside, "v1 window_start=1 sends=1 last_send=1 failures=9 locked_until=9\n")
    for user in ("../outside", "a/b", "Alice", "..", "x" * 300):
        res = h.run("status", user, config=config)
        expect(res, 1, out=("has no state",))
        res = h.run("unlock", user, config=config)
        expect(res, 1, out=("nothing to unlock",))
    check("failures=9" in outside.read_text(), "a file outside stateDir was changed")
    state = h.dir / "state"
    made = sorted(os.listdir(state)) if state.exists() else []
    check(made == [], f"files created in stateDir: {made}")


@case
def status_of_a_corrupt_state_file(h):
    write_state(h, "alice", 1, 1, 1, 1, 1)
    (h.dir / "state" / "alice").write_text("garbage\n")
    res = h.run("status", "alice", config=h.write_config())
    expect(res, 1, err=("is corrupt; fix: remove it",))


# ---- graces: status's lines and revoke-grace

BOOT_ID = "0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0"
PENDING = "00112233445566778899aabbccddeeff"


def write_graces(h, name, *graces):
    """A state file as the module writes it with graces: the record (nothing sent, no wrong
    code), then one `g KIND KEY UNTIL` line per (kind, key, until)."""
    path = write_state(h, name, 0, 0, 0, 0, 0)
    with open(path, "a", encoding="ascii") as f:
        f.write("".join(f"g {kind} {key} {until}\n" for kind, key, until in graces))
    expect_private(path)
    return path


def grace_lines(out):
    """status's grace lines: the first after "graces:", the rest indented under it."""
    lines, inside = [], False
    for line in out.splitlines():
        if line.startswith("graces:"):
            inside = True
            lines.append(line[len("graces:"):].strip())
        elif inside and line.startswith("               ") and line.strip():
            lines.append(line.strip())
        else:
            inside = False
    return lines


def seconds_left(line):
    m = re.search(r", (\d+) s left$", line)
    check(m, f"no 'N s left' in {line!r}")
    return int(m.group(1))


@case
def status_graces_none(h):
    """With graces configured and none open, status says so; without them, nothing."""
    now = int(time.time())
    write_state(h, "alice", now - 100, 1, now - 100, 0, 0)
    for over in ({"gracePeriodSeconds": 600}, {"sessionGraceSeconds": 300}):
        res = h.run("status", "alice", config=h.write_config(h.config(**over)))
        expect(res, 0, out=("user:          alice", "graces:        none\n"))
        check(grace_lines(res.out) == ["none"], f"grace lines {grace_lines(res.out)!r}")
    res = h.run("status", "alice", config=h.write_config())
    expect(res, 0, out=("locked:        no",))
    check("graces:" not in res.out, f"a graces line without graces configured: {res.out!r}")
    # no state at all: still exit 1, with the graces line
    res = h.run("status", "carol", config=h.write_config(h.config(gracePeriodSeconds=600)))
    expect(res, 1, out=("carol has no state in", "graces:        none\n"))
    check(not (h.dir / "state" / "carol").exists(), "status created carol's state file")


@case
def status_shows_open_graces(h):
    now = int(time.time())
    write_graces(h, "alice", ("a", "192.0.2.7", now + 300), ("s", f"4242:{BOOT_ID}", now + 200),
                 ("p", PENDING, now + 100), ("a", "2001:db8::7", now + 250),
                 ("a", "192.0.2.9", now - 5))  # ended: not shown
    config = h.write_config(h.config(gracePeriodSeconds=600, sessionGraceSeconds=300))
    res = h.run("status", "alice", config=config)
    expect(res, 0, out=("user:          alice", "graces:        from address 192.0.2.7 on this "
                        "host, "))
    lines = grace_lines(res.out)
    check(len(lines) == 4, f"want 4 grace lines, got {lines!r}")
    want = {"from address 192.0.2.7 on this host": 300,
            "in audit session 4242 on this host": 200,
            "for the session of a login not opened yet": 100,
            "from address 2001:db8::7 on this host": 250}
    for line in lines:
        head = line.rsplit(", ", 1)[0]
        check(head in want, f"unexpected grace line {line!r}")
        left = seconds_left(line)
        check(want[head] - 3 <= left <= want[head], f"{line!r}: want about {want[head]} s left")
    check("192.0.2.9" not in res.out, f"an ended grace is shown: {res.out!r}")
    check(PENDING not in res.out and BOOT_ID not in res.out,
          f"a digest or the boot id is shown: {res.out!r}")
    # a window lowered in the config caps what is open
    res = h.run("status", "alice", config=h.write_config(h.config(gracePeriodSeconds=60,
                                                                  sessionGraceSeconds=300)))
    expect(res, 0)
    for line in grace_lines(res.out):
        if line.startswith("from address"):
            check(seconds_left(line) <= 60, f"not capped by gracePeriodSeconds 60: {line!r}")


@case
def status_shows_graces_of_a_locked_user(h):
    """A lockout hides no grace from the administrator (the module gives none meanwhile)."""
    now = int(time.time())
    path = write_state(h, "alice", now - 100, 2, now - 50, 10, now + 300)
    with open(path, "a", encoding="ascii") as f:
        f.write(f"g a 192.0.2.7 {now + 300}\n")
    res = h.run("status", "alice", config=h.write_config(h.config(gracePeriodSeconds=600)))
    expect(res, 0, out=("locked:        until ", "graces:        from address 192.0.2.7 on this "
                        "host, "))


@case
def revoke_grace_ends_them_all(h):
    now = int(time.time())
    path = write_state(h, "alice", now - 100, 3, now - 50, 2, 0)
    with open(path, "a", encoding="ascii") as f:
        f.write(f"g a 192.0.2.7 {now + 300}\ng s 4242:{BOOT_ID} {now + 200}\n"
                f"g p {PENDING} {now + 100}\ng a 192.0.2.9 {now - 5}\n")
    write_graces(h, "bob", ("a", "192.0.2.7", now + 300))
    config = h.write_config(h.config(gracePeriodSeconds=600, sessionGraceSeconds=300))
    res = h.run("revoke-grace", "alice", config=config)
    expect(res, 0, out=("ended 3 graces of alice: their next login asks for a code\n",))
    check(res.err == "", f"stderr {res.err!r}")
    text = Path(path).read_text()
    check("\ng " not in text, f"graces left in the state file: {text!r}")
    check(text == f"v1 window_start={now - 100} sends=3 last_send={now - 50} failures=2 "
          f"locked_until=0\n", f"the record changed: {text!r}")
    expect_private(path)
    res = h.run("revoke-grace", "alice", config=config)
    expect(res, 1, out=("alice has no open grace: nothing to revoke\n",))
    res = h.run("status", "alice", config=config)
    expect(res, 0, out=("graces:        none\n", "sends:         3 of 5"))
    # bob's are bob's
    res = h.run("status", "bob", config=config)
    expect(res, 0, out=("graces:        from address 192.0.2.7 on this host, ",))
    res = h.run("revoke-grace", "bob", config=config)
    expect(res, 0, out=("ended 1 grace of bob: their next login asks for a code\n",))


@case
def revoke_grace_without_state(h):
    config = h.write_config(h.config(gracePeriodSeconds=600))
    res = h.run("revoke-grace", "carol", config=config)
    expect(res, 1, out=("carol has no open grace: nothing to revoke\n",))
    check(not (h.dir / "state").exists(), "revoke-grace created stateDir")
    now = int(time.time())
    write_state(h, "dave", now - 10, 1, now - 10, 0, 0)
    write_graces(h, "erin", ("a", "192.0.2.7", now - 1))  # ended
    for user in ("carol", "dave", "erin"):
        res = h.run("revoke-grace", user, config=config)
        expect(res, 1, out=(f"{user} has no open grace: nothing to revoke\n",))
    made = sorted(os.listdir(h.dir / "state"))
    check(made == [".dave.lock", ".erin.lock", "dave", "erin"], f"revoke-grace created {made}")
    # a config without graces has ended what an earlier one opened: nothing to revoke
    path = write_graces(h, "frank", ("a", "192.0.2.7", now + 300))
    res = h.run("revoke-grace", "frank", config=h.write_config())
    expect(res, 1, out=("frank has no open grace: nothing to revoke\n",))
    check("\ng " not in Path(path).read_text(), "the ended grace is still in the file")


@case
def revoke_grace_help_and_usage(h):
    config = h.write_config(h.config(gracePeriodSeconds=600))
    for flag in ("--help", "-h"):
        res = h.run("revoke-grace", flag, config=h.dir / "missing.json")
        expect(res, 0, out=("usage: twilio-sms-otp [--config PATH] revoke-grace USER",
                            "graceScope"))
        check(res.err == "", f"revoke-grace {flag}: stderr {res.err!r}")
    res = h.run("--help")
    expect(res, 0, out=("revoke-grace USER",))
    for args in (["revoke-grace"], ["revoke-grace", "alice", "bob"], ["revoke-grace", "-x"],
                 ["revoke-grace", ""], ["revoke-grace", "--bogus", "alice"]):
        res = h.run(*args, config=config)
        check(res.status == 2, f"{args!r}: want exit 2, got {res.brief()}")
        check("usage: twilio-sms-otp" in res.err, f"{args!r}: no usage on stderr: {res.err!r}")
    check(not (h.dir / "state").exists(), "a usage error created stateDir")
    res = h.run("revoke-grace", "alice", config=h.dir / "missing.json")
    expect(res, 1, err=("missing.json",))


@case
def revoke_grace_maps_names_like_the_module(h):
    """A USER that is not a plain user name is never a path: the module's hashed name."""
    now = int(time.time())
    config = h.write_config(h.config(gracePeriodSeconds=600))
    outside = h.dir / "outside"
    write_file(outside, f"v1 window_start=1 sends=1 last_send=1 failures=0 locked_until=0\n"
                        f"g a 192.0.2.7 {now + 300}\n")
    for user in ("../outside", "a/b", "Alice", "..", "x" * 300, "alice\n", "*"):
        res = h.run("revoke-grace", user, config=config)
        expect(res, 1, out=("has no open grace: nothing to revoke",))
    check("g a 192.0.2.7" in outside.read_text(), "a file outside stateDir was changed")
    state = h.dir / "state"
    made = sorted(os.listdir(state)) if state.exists() else []
    check(made == [], f"files created in stateDir: {made}")
    # the module's hashed name is the one revoked
    write_graces(h, "=" + hashed_name("Alice"), ("a", "192.0.2.7", now + 300))
    res = h.run("revoke-grace", "Alice", config=config)
    expect(res, 0, out=("ended 1 grace of Alice: their next login asks for a code\n",))


def hashed_name(user):
    """tsms_state_file_name's digest of a name that is not a plain user name: 32 hex
    digits of BLAKE2b-128 over a zero byte and the name (lib/otp.h tsms_digest_hex)."""
    return hashlib.blake2b(b"\0" + user.encode(), digest_size=16).hexdigest()


@case
def revoke_grace_of_a_corrupt_state_file(h):
    now = int(time.time())
    path = write_state(h, "alice", 1, 1, 1, 1, 1)
    Path(path).write_text(f"v1 window_start=0 sends=0 last_send=0 failures=0 locked_until=0\n"
                          f"g x 192.0.2.7 {now + 300}\n")
    config = h.write_config(h.config(gracePeriodSeconds=600))
    res = h.run("revoke-grace", "alice", config=config)
    expect(res, 1, err=("is corrupt; fix: remove it",))
    check("ended" not in res.out, f"stdout {res.out!r}")
    res = h.run("status", "alice", config=config)
    expect(res, 1, err=("is corrupt; fix: remove it",))


# ---- check: the session hook of sessionGraceSeconds

SSHD_STACK = """# as Debian's /etc/pam.d/sshd
@include common-auth
account    required     pam_nologin.so
session [success=ok ignore=ignore module_unknown=ignore default=bad]        pam_selinux.so close
session    required     pam_loginuid.so
{after}session    optional     pam_keyinit.so force revoke
@include common-session
session    required     pam_env.so user_readenv=1 envfile=/etc/default/locale
"""
NO_HOOK_LOGIN = "# a login service without the hook\nsession required pam_loginuid.so\n"


def check_with_pam_d(h, config, sshd_text, common_session=None):
    """check --offline in a mount namespace whose /etc/pam.d/sshd holds sshd_text and whose
    /etc/pam.d/login has no hook (and /etc/pam.d/common-session common_session, when given)."""
    binds = [(write_file(h.dir / "pam.d-sshd", sshd_text, 0o644), "/etc/pam.d/sshd"),
             (write_file(h.dir / "pam.d-login", NO_HOOK_LOGIN, 0o644), "/etc/pam.d/login")]
    if common_session is not None:
        binds.append((write_file(h.dir / "pam.d-common-session", common_session, 0o644),
                      "/etc/pam.d/common-session"))
    for _, target in binds:
        check(Path(target).exists(), f"{target} missing on this machine (Debian's PAM)")
    res = h.started(["check", "--offline"], config)
    res.cmd = in_mount_namespace(res.cmd, binds)
    proc = subprocess.run(res.cmd, stdin=subprocess.DEVNULL, capture_output=True,
                          timeout=RUN_LIMIT, start_new_session=True)
    return h.finished(res, proc.returncode, proc.stdout, proc.stderr)


@case
def check_session_hook(h):
    """With sessionGraceSeconds, check finds the session hook after pam_loginuid.so in
    /etc/pam.d/sshd (directly or through an @include), reading this config; a hook before
    pam_loginuid.so, one reading another config, or none at all is a problem with its fix.
    Without sessionGraceSeconds the PAM files are not looked at."""
    h.write_users("dave +15555550100\n")
    config = h.write_config(h.config(sessionGraceSeconds=900))
    hook = f"session optional {REPO / 'pam_twilio_sms.so'} config={config}\n"
    res = check_with_pam_d(h, config, SSHD_STACK.format(after=hook))
    expect(res, 0, out=("session hook: /etc/pam.d/sshd, after pam_loginuid.so\n", "OK"))
    res = check_with_pam_d(h, config, SSHD_STACK.format(after=""),
                           common_session="session required pam_unix.so\n" + hook)
    expect(res, 0, out=("session hook: /etc/pam.d/sshd, after pam_loginuid.so\n",))
    for text, needle in (
            (hook + SSHD_STACK.format(after=""), "comes before pam_loginuid.so"),
            (SSHD_STACK.format(after=hook.replace(str(config), "/etc/other.json")),
             "reads /etc/other.json, not this config"),
            (SSHD_STACK.format(after=""), "neither /etc/pam.d/sshd nor /etc/pam.d/login has "
                                          "the session hook")):
        res = check_with_pam_d(h, config, text, common_session="session required pam_unix.so\n")
        expect(res, 1, out=(needle, "fix:"))
    res = check_with_pam_d(h, h.write_config(name="plain.json"), SSHD_STACK.format(after=""))
    expect(res, 0, out=("OK",))
    check("session hook" not in res.out and "sessionGraceSeconds" not in res.out,
          f"check looked for the hook without sessionGraceSeconds: {res.out!r}")


# --------------------------------------------------------------------------- main

def setup(cleanups, verbose):
    return Harness.start(cleanups, verbose, "tsms-cli-")


if __name__ == "__main__":
    sys.exit(main("cli", __doc__.splitlines()[0], setup=setup,
                  prepare=lambda: prerequisite_problem("users files"), time_limit=SUITE_LIMIT,
                  verbose_help="print every command run and its output"))
