"""End-to-end cases: backup codes (backupCodesFile). Codes are made by the admin command
(`twilio-sms-otp backup-codes USER`, as an administrator makes them) and typed at the SMS
prompt in every accepted form, or at the prompt the module shows when no SMS can go out
(Twilio unavailable: 5xx, 429, unreachable, a timeout; a 4xx rejection; a send limit, never
a lockout). Each code works once: also for two logins racing with it, and across hosts
sharing Redis with copies of one file (and still on a host whose Redis is down). Wrong and
used codes are wrong answers (maxAttempts, lockoutThreshold), late ones are not spent, a
revoked or replaced set is gone, an unsafe or malformed file fails closed while plain SMS
logins go on, three codes left or fewer bring a warning; no code or hash ever reaches
syslog, pamtester's output or Twilio."""

import os
import pwd
import re
import shutil
import stat
import subprocess
import threading
from pathlib import Path

from harness.core import REPO, CaseFailure, case, check
from harness.pam import (RUN_LIMIT, TIME_SLACK, Answer, config_error_case, right, typed,
                         wrong)
from harness.redis import KEY_PREFIX, Hang, fallback_warnings, family_server, host
from harness.state import new_state_dir, read_state
from harness.system import free_port, write_file

# TSMS_TOOL tests another build of the command (as tests/cli does), e.g. a scratch build
TOOL = Path(os.environ.get("TSMS_TOOL") or REPO / "twilio-sms-otp").resolve()
SYMBOL = "[2-9a-km-np-z]"
CODE_RE = re.compile(rf"{SYMBOL}{{4}}-{SYMBOL}{{4}}")
HASH_RE = re.compile(r"\$argon2id\$v=19\$m=\d+,t=\d+,p=\d+\$[A-Za-z0-9+/]+\$[A-Za-z0-9+/]+")
BACKUP_PROMPT = "SMS unavailable; backup code: "
SMS_PROMPT = "SMS code sent to ******0006: "  # alice's
DEFAULT_COUNT = 10
DENIED = ("PAM_AUTH_ERR", "PAM_MAXTRIES")  # what a wrong answer ends in
FAILED_CLOSED = ("PAM_SERVICE_ERR", "PAM_AUTHINFO_UNAVAIL", "PAM_AUTH_ERR")
LOG_WARNING = 4
OUTCOME_RE = re.compile(r"rhost=\S+ user=\S+ phone=\S+ source=\S+ sid=\S+ attempts=(\d+) "
                        r"method=(\S+) result=(PAM_[A-Z_]+) reason=(.*)")
# well-formed codes that no set holds (the chance that one of them was made is 2^-40 each)
NOT_ISSUED = ("zzzz-zzzz", "2222-3333", "wxyz-wxyz", "9999-aaaa", "hjkm-npqr")
GENERATED = []  # every code made in this run: none may ever be logged
HASHES = set()  # every hash seen in a backupCodesFile of this run: the same


# --------------------------------------------------------------------------- admin command

def admin(config, *args):
    """twilio-sms-otp --config CONFIG ARGS..., as an administrator runs it."""
    check(TOOL.is_file(), f"{TOOL} not built (run make)")
    return subprocess.run([str(TOOL), "--config", str(config), *args], capture_output=True,
                          text=True, timeout=RUN_LIMIT, stdin=subprocess.DEVNULL)


def make_codes(config, user, count=None):
    """A fresh set of USER's codes from `backup-codes USER [--count N]`: its stdout, one
    code a line, each well-formed and distinct."""
    args = ["backup-codes", user] + (["--count", str(count)] if count else [])
    p = admin(config, *args)
    check(p.returncode == 0, f"{' '.join(args)}: exit {p.returncode}: {p.stderr.strip()!r}")
    codes = p.stdout.splitlines()
    want = count or DEFAULT_COUNT
    check(len(codes) == want and len(set(codes)) == want and
          all(CODE_RE.fullmatch(c) for c in codes),
          f"{' '.join(args)}: stdout {p.stdout!r}, want {want} codes like k7mq-3xfa")
    GENERATED.extend(codes)
    return codes


def codes_left(config, user):
    """How many codes `backup-codes --list USER` says USER has (0: `no backup codes`)."""
    p = admin(config, "backup-codes", "--list", user)
    if p.returncode == 1 and p.stdout == f"{user}: no backup codes\n":
        return 0
    m = re.fullmatch(rf"{re.escape(user)}: (\d+) backup codes? left\n", p.stdout)
    check(p.returncode == 0 and m, f"backup-codes --list {user}: exit {p.returncode}, "
          f"stdout {p.stdout!r}, stderr {p.stderr.strip()!r}")
    return int(m.group(1))


def read_codes_file(path):
    """{user: [hash, ...]} of a backupCodesFile (every line that is not blank or a comment
    is `USER HASH...`); checks it is root's, 0600, a regular file, and holds no code."""
    st = os.lstat(path)
    check(stat.S_ISREG(st.st_mode) and st.st_uid == 0 and stat.S_IMODE(st.st_mode) == 0o600,
          f"{path}: mode {st.st_mode:o} uid {st.st_uid}, want a root 0600 regular file")
    text = Path(path).read_text()
    users = {}
    for line in text.splitlines():
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        user, *hashes = line.split()
        check(hashes and all(HASH_RE.fullmatch(x) for x in hashes),
              f"{path}: line {line[:120]!r}... is not USER HASH...")
        check(user not in users, f"{path}: {user} on two lines")
        users[user] = hashes
        HASHES.update(hashes)
    low = text.lower()
    for code in GENERATED:
        check(code not in low and code.replace("-", "") not in low, f"{path} holds a code")
    return users


def codes_file(h, tag=""):
    """The path of this case's backupCodesFile (none there yet, nor its lock)."""
    path = h.confdir / f"{h.case}{tag}.backup-codes"
    for p in (path, path.with_name(path.name + ".lock")):
        p.unlink(missing_ok=True)
    return str(path)


def setup(h, users=("alice",), count=None, **over):
    """A config with this case's backupCodesFile (and keys replaced) and a set of codes
    for each of users made with it: (config, file, {user: codes})."""
    path = codes_file(h)
    config = h.write_config(h.config(backupCodesFile=path, **over))
    return config, path, {u: make_codes(config, u, count) for u in users}


# --------------------------------------------------------------------------- logins

def no_backup_secrets(texts, what):
    """No code (as shown, without its hyphen, in any case) and no hash in texts."""
    for text in texts:
        low = text.lower()
        check("$argon2" not in low, f"a hash in {what}: {text!r}")
        for code in GENERATED:
            check(code not in low and code.replace("-", "") not in low,
                  f"backup code {code} in {what}: {text!r}")
        for hsh in HASHES:
            salt, digest = hsh.rsplit("$", 2)[1:]
            check(salt not in text and digest not in text, f"part of a hash in {what}: {text!r}")


def check_run_secrets(run):
    no_backup_secrets(run.raw_logs, "a syslog line")
    no_backup_secrets([run.output], "pamtester's output")
    no_backup_secrets([m.get("body") or "" for m in run.outbox], "an SMS")
    no_backup_secrets([repr(r.get("form")) for r in run.requests], "a request to Twilio")


def login(h, svc, user, answers, result, *, sms=None, requests=None, prompts=None):
    """One pamtester login ending in result (a tuple: any one of them), its records
    checked for backup secrets. Returns the Run."""
    run = h.authenticate(svc, user, answers)
    if isinstance(result, tuple):
        check(len(run.results) == 1 and run.results[0] in result,
              f"logged {run.results}, want one of {result}: {run.module_logs!r}; "
              f"output {run.output!r}")
        result = run.results[0]
    h.expect(run, result, sms=sms, requests=requests, prompts=prompts)
    check_run_secrets(run)
    return run


def outcome(run):
    """(attempts, method, reason) of the run's outcome line, in the spec's form."""
    m = OUTCOME_RE.fullmatch(run.outcomes[0])
    check(m, f"outcome line not `... attempts=N method=M result=R reason=...`: "
          f"{run.outcomes[0]!r}")
    return int(m.group(1)), m.group(2), m.group(4)


def expect_backup_success(run, left, unavailable=False):
    """The outcome of a login by backup code with left codes left."""
    attempts, method, reason = outcome(run)
    check(method == "backup-code", f"method={method}, want backup-code: {run.outcomes[0]!r}")
    if unavailable:
        check(re.fullmatch(rf"SMS unavailable \(.+\)\W+backup code accepted, {left} left", reason),
              f"reason {reason!r}, want 'SMS unavailable (...) ... backup code accepted, "
              f"{left} left'")
    else:
        check(reason == f"backup code accepted, {left} left",
              f"reason {reason!r}, want 'backup code accepted, {left} left'")
    return attempts


def expect_method(run, method):
    got = outcome(run)[1]
    check(got == method, f"method={got}, want {method}: {run.outcomes[0]!r}")


def expect_left(config, path, user, n):
    check(codes_left(config, user) == n, f"--list: {codes_left(config, user)} codes left, "
          f"want {n}")
    got = len(read_codes_file(path).get(user, []))
    check(got == n, f"{path}: {got} hashes for {user}, want {n}")


def backup_prompts_only(run):
    check(run.prompts and all(p.endswith(BACKUP_PROMPT) for p in run.prompts) and
          run.prompts[0] == BACKUP_PROMPT,
          f"prompts {run.prompts!r}, want {BACKUP_PROMPT!r} (no SMS was sent)")
    check("SMS code sent" not in run.output, f"an SMS prompt: {run.output!r}")


def down_service(h, path, tag="down", then_permit=True, args=("debug",), **over):
    """A service (then pam_permit) on its own config with backupCodesFile path and no
    retries (fast, when Twilio is down)."""
    config = h.write_config(h.config(backupCodesFile=path, maxRetries=0, **over),
                            name=f"{h.case}-{tag}")
    return h.service(config, args=args, then_permit=then_permit)


# --------------------------------------------------------------------------- at the SMS prompt

@case
def backup_code_at_sms_prompt(h):
    """A code typed at the SMS prompt instead of the SMS code, as shown, in capitals,
    without its hyphen, with blanks around it: each works and leaves the file (exactly
    that user's one hash, the other lines and comments kept, root 0600, no temp file)."""
    config, path, codes = setup(h, users=("bob", "alice"))
    write_file(path, "# backup codes: USER HASH...\n\n" + Path(path).read_text())
    before = read_codes_file(path)
    listing = set(os.listdir(h.confdir))
    svc = h.service(config)
    c = codes["alice"]
    forms = (("as shown", c[0]), ("in capitals", c[1].upper()),
             ("without the hyphen", c[2].replace("-", "")),
             ("with blanks around it", f"  {c[3]}\t "),
             ("capitals, no hyphen, blanks", f" {c[4].upper().replace('-', '')}  "))
    prev = before["alice"]
    for n, (what, answer) in enumerate(forms, 1):
        left = DEFAULT_COUNT - n
        try:
            run = login(h, svc, "alice", [typed(answer)], "PAM_SUCCESS", sms=1, requests=1,
                        prompts=1)
            check(run.prompts[0] == SMS_PROMPT, f"prompt {run.prompts[0]!r}")
            attempts = expect_backup_success(run, left)
            check(attempts == 1, f"attempts={attempts}")
            expect_left(config, path, "alice", left)
            now = read_codes_file(path)
            gone = set(prev) - set(now["alice"])
            check(len(gone) == 1 and set(now["alice"]) < set(prev),
                  f"{len(gone)} hashes removed, {len(set(now['alice']) - set(prev))} added")
            check(now["bob"] == before["bob"], "bob's codes changed")
            check(Path(path).read_text().startswith("# backup codes: USER HASH...\n\n"),
                  "the comment and blank line were not kept")
        except CaseFailure as e:
            raise CaseFailure(f"a code {what} ({answer!r}): {e}") from None
        prev = now["alice"]
    # the rewrites leave no temporary file (the lock stays; the stateDir is the login's)
    extra = {n for n in set(os.listdir(h.confdir)) - listing
             if n != Path(path).name + ".lock" and not n.startswith("state-")}
    check(not extra, f"files left beside {path}: {sorted(extra)}")
    expect_left(config, path, "bob", DEFAULT_COUNT)


@case
def backup_code_not_for_unmapped_user(h):
    """A user with no phone (a decoy challenge) has a line of valid hashes: nothing is
    accepted, nothing leaves the file; the same code still works for its owner."""
    config, path, codes = setup(h, maxAttempts=1)
    hashes = read_codes_file(path)["alice"]
    write_file(path, Path(path).read_text() + "mallory " + " ".join(hashes) + "\n")
    svc = h.service(config)
    run = login(h, svc, "mallory", [typed(codes["alice"][0])], DENIED, sms=0, requests=0,
                prompts=1)
    check(outcome(run)[1] != "backup-code", f"outcome {run.outcomes[0]!r}")
    check(read_codes_file(path) == {"alice": hashes, "mallory": hashes},
          "the decoy's login changed the file")
    run = login(h, svc, "alice", [typed(codes["alice"][0])], "PAM_SUCCESS", sms=1, prompts=1)
    expect_backup_success(run, DEFAULT_COUNT - 1)


@case
def backup_code_reuse_refused(h):
    """A used code, in any form, is a wrong answer (maxAttempts, the wrong-code count) at
    the SMS prompt and at the backup prompt; the SMS code still works after one."""
    sd = new_state_dir(h)
    config, path, codes = setup(h, maxAttempts=2, stateDir=str(sd))
    svc = h.service(config)
    x = codes["alice"][0]
    run = login(h, svc, "alice", [typed(x)], "PAM_SUCCESS", sms=1, prompts=1)
    expect_backup_success(run, DEFAULT_COUNT - 1)
    run = login(h, svc, "alice", [typed(x), typed(x.upper().replace("-", ""))], "PAM_MAXTRIES",
                sms=1, prompts=2)
    check(run.prompts[1] == "Wrong code. " + SMS_PROMPT, f"second prompt {run.prompts[1]!r}")
    attempts, method, reason = outcome(run)
    check(attempts == 2 and method == "sms" and reason == "wrong code (2 of 2 attempts)",
          f"outcome {run.outcomes[0]!r}")
    check(read_state(sd / "alice")["failures"] == 2, f"state {read_state(sd / 'alice')}")
    expect_left(config, path, "alice", DEFAULT_COUNT - 1)
    run = login(h, svc, "alice", [typed(x), right()], "PAM_SUCCESS", sms=1, prompts=2)
    attempts, method, reason = outcome(run)
    check(attempts == 2 and method == "sms" and reason == "code accepted",
          f"outcome {run.outcomes[0]!r}")
    check(read_state(sd / "alice")["failures"] == 0, f"state {read_state(sd / 'alice')}")
    # at the backup prompt, Twilio down
    h.sandbox.set_scenario("503")
    down = down_service(h, path, maxAttempts=2, stateDir=str(sd))
    run = login(h, down, "alice", [typed(x), typed(f" {x} ")], DENIED, sms=0, prompts=2)
    backup_prompts_only(run)
    expect_method(run, "backup-code")
    check(read_state(sd / "alice")["failures"] == 2, f"state {read_state(sd / 'alice')}")
    expect_left(config, path, "alice", DEFAULT_COUNT - 1)


RACE_ROUNDS = 5


def authenticate_pairs(h, jobs):
    """h.authenticate(service, user, answers) for each job, started at the same moment;
    returns the runs."""
    start = threading.Barrier(len(jobs))
    runs, errors = [None] * len(jobs), [None] * len(jobs)

    def work(i, svc, user, answers):
        try:
            start.wait(timeout=RUN_LIMIT)
            runs[i] = h.authenticate(svc, user, answers)
        except Exception as e:  # reported below
            errors[i] = e

    threads = [threading.Thread(target=work, args=(i, *job), daemon=True)
               for i, job in enumerate(jobs)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=2 * RUN_LIMIT + 10)
    check(not any(t.is_alive() for t in threads), "a login still running")
    failed = [f"{type(e).__name__}: {e}" for e in errors if e is not None]
    check(not failed, f"logins failed: {failed}")
    return runs


@case
def concurrent_backup_code_used_once(h):
    """Two logins (two services on one backupCodesFile) type the same code at the same
    moment, RACE_ROUNDS times with a fresh code: exactly one succeeds each time, the other
    gets a wrong answer, and the file loses exactly one code a round."""
    config, path, codes = setup(h)
    one = host(h, "one", backupCodesFile=path, maxAttempts=1)
    two = host(h, "two", backupCodesFile=path, maxAttempts=1)
    for rnd in range(RACE_ROUNDS):
        code = codes["alice"][rnd]
        together = threading.Barrier(2)

        def answer(code=code, together=together):
            together.wait(timeout=RUN_LIMIT)  # both prompts are up: type at once
            return code

        runs = authenticate_pairs(h, [(one.service, "alice", [typed(answer)]),
                                      (two.service, "alice", [typed(answer)])])
        results = []
        for run in runs:
            check_run_secrets(run)
            check(len(run.results) == 1, f"round {rnd + 1}: outcomes {run.outcomes!r}")
            results.append(run.results[0])
            h.expect(run, run.results[0], prompts=1)
        won = [r for r in runs if r.results[0] == "PAM_SUCCESS"]
        lost = [r for r in runs if r.results[0] in DENIED]
        check(len(won) == 1 and len(lost) == 1,
              f"round {rnd + 1}: results {results}, want one PAM_SUCCESS and one of "
              f"{DENIED}: {[r.outcomes[0] for r in runs]!r}")
        left = DEFAULT_COUNT - rnd - 1
        expect_backup_success(won[0], left)
        expect_method(lost[0], "sms")
        expect_left(config, path, "alice", left)


# --------------------------------------------------------------------------- Twilio down

@case
def backup_prompt_when_twilio_unavailable(h):
    """Twilio 503, 500, 429, a timeout, nothing listening: the backup prompt instead of a
    failure; a code works there; wrong ones and a used one are wrong answers up to
    maxAttempts (each counted) and cost no code."""
    sd = new_state_dir(h)
    config, path, codes = setup(h, maxRetries=0, maxAttempts=3, stateDir=str(sd))
    c = codes["alice"]
    ways = (("503", {}), ("500", {}), ("429", {}), ("hang", {"timeoutSeconds": 2}),
            ("unreachable", {"apiBaseUrl": f"https://127.0.0.1:{free_port()}"}))
    for i, (scenario, over) in enumerate(ways):
        h.sandbox.set_scenario("ok" if scenario == "unreachable" else scenario)
        svc = down_service(h, path, maxAttempts=3, stateDir=str(sd), **over)
        run = login(h, svc, "alice", [typed(c[i])], "PAM_SUCCESS", sms=0, prompts=1)
        try:
            backup_prompts_only(run)
            expect_backup_success(run, DEFAULT_COUNT - i - 1, unavailable=True)
        except CaseFailure as e:
            raise CaseFailure(f"Twilio {scenario}: {e}") from None
        if scenario == "hang":
            check(run.elapsed < 2 + 1.5 + TIME_SLACK, f"hang: took {run.elapsed:.2f}s")
    left = DEFAULT_COUNT - len(ways)
    expect_left(config, path, "alice", left)
    h.sandbox.set_scenario("503")
    svc = down_service(h, path, maxAttempts=3, stateDir=str(sd))
    run = login(h, svc, "alice", [typed(NOT_ISSUED[0]), typed(c[0]), typed(NOT_ISSUED[1]),
                                  typed(c[len(ways)])], DENIED, sms=0, prompts=3)
    backup_prompts_only(run)
    expect_method(run, "backup-code")
    check(read_state(sd / "alice")["failures"] == 3, f"state {read_state(sd / 'alice')}")
    expect_left(config, path, "alice", left)
    run = login(h, svc, "alice", [typed(c[len(ways)])], "PAM_SUCCESS", sms=0, prompts=1)
    expect_backup_success(run, left - 1, unavailable=True)


@case
def backup_none_fail_mode_decides(h):
    """Twilio down and no codes for the user (none in the file, or no file at all):
    failMode decides as without backup codes. A user with codes gets the backup prompt
    also with failMode=open, and a wrong code there is no skipped factor."""
    config, path, codes = setup(h, users=("alice",))  # bob has none
    h.sandbox.set_scenario("503")
    for fail_mode, result in (("closed", "PAM_AUTHINFO_UNAVAIL"), ("open", "PAM_IGNORE")):
        svc = down_service(h, path, failMode=fail_mode)
        run = login(h, svc, "bob", [typed(codes["alice"][0])], result, sms=0, prompts=0)
        check(BACKUP_PROMPT not in run.output, f"failMode={fail_mode}: {run.output!r}")
        check(outcome(run)[1] != "backup-code", f"outcome {run.outcomes[0]!r}")
        if fail_mode == "open":
            check(any("failMode=open" in l for l in run.module_logs),
                  f"no failMode=open warning: {run.module_logs!r}")
    svc = down_service(h, path, failMode="open", maxAttempts=2)
    run = login(h, svc, "alice", [typed(NOT_ISSUED[0]), typed(NOT_ISSUED[1])], DENIED, sms=0,
                prompts=2)
    backup_prompts_only(run)
    expect_method(run, "backup-code")
    run = login(h, svc, "alice", [typed(codes["alice"][0])], "PAM_SUCCESS", sms=0, prompts=1)
    expect_backup_success(run, DEFAULT_COUNT - 1, unavailable=True)
    missing = codes_file(h, "-missing")
    for fail_mode, result in (("closed", "PAM_AUTHINFO_UNAVAIL"), ("open", "PAM_IGNORE")):
        svc = down_service(h, missing, failMode=fail_mode)
        run = login(h, svc, "alice", [typed(codes["alice"][1])], result, sms=0, prompts=0)
        check(BACKUP_PROMPT not in run.output, f"no file, failMode={fail_mode}: {run.output!r}")
    check(not os.path.exists(missing), f"{missing} created by a login")
    expect_left(config, path, "alice", DEFAULT_COUNT - 1)


def unreachable_directory(h):
    """A config's ldap object for a directory that is down (nothing listening on its port)."""
    return {"uri": f"ldaps://127.0.0.1:{free_port()}", "caFile": h.sandbox.ca_file,
            "baseDN": "ou=people,dc=example,dc=org", "filter": "(uid=%u)",
            "timeoutSeconds": 2}


@case
def backup_code_when_the_directory_is_down(h):
    """The directory unavailable (nothing listening on its ldaps port): no number, so no
    SMS; a user with backup codes gets the backup prompt and gets in with one, wrong ones
    count towards the lockout; a user without codes gets what failMode says, as before,
    and leaves nothing in stateDir."""
    sd = new_state_dir(h)
    ldap = unreachable_directory(h)
    config, path, codes = setup(h, users=("dave",), ldap=ldap, stateDir=str(sd),
                                maxAttempts=2)
    svc = h.service(config, then_permit=True)
    run = login(h, svc, "dave", [typed(codes["dave"][0])], "PAM_SUCCESS", sms=0, requests=0,
                prompts=1)
    backup_prompts_only(run)
    expect_backup_success(run, DEFAULT_COUNT - 1, unavailable=True)
    check("unavailable" in outcome(run)[2] and " source=- " in run.outcomes[0],
          f"outcome {run.outcomes[0]!r}")
    run = login(h, svc, "dave", [typed(NOT_ISSUED[0]), typed(codes["dave"][0])], DENIED,
                sms=0, requests=0, prompts=2)
    backup_prompts_only(run)
    check(read_state(sd / "dave")["failures"] == 2, f"state {read_state(sd / 'dave')}")
    expect_left(config, path, "dave", DEFAULT_COUNT - 1)
    run = login(h, svc, "erin", [], "PAM_AUTHINFO_UNAVAIL", sms=0, requests=0, prompts=0)
    expect_method(run, "-")
    check(not (sd / "erin").exists(), f"state written for a user without codes: "
          f"{sorted(p.name for p in sd.iterdir())}")
    svc_open = h.service(h.write_config(h.config(backupCodesFile=path, ldap=ldap,
                                                 stateDir=str(sd), failMode="open"),
                                        name=f"{h.case}-open"), then_permit=True)
    login(h, svc_open, "erin", [], "PAM_IGNORE", sms=0, requests=0, prompts=0)
    run = login(h, svc_open, "dave", [typed(codes["dave"][1])], "PAM_SUCCESS", sms=0,
                requests=0, prompts=1)
    expect_backup_success(run, DEFAULT_COUNT - 2, unavailable=True)


@case
def backup_locked_out_when_the_directory_is_down(h):
    """The directory down and the user locked out (here by a wrong code at the backup
    prompt): no backup prompt, not even for a right code, and no code spent, as with
    Twilio down; otherwise a directory outage would lift the lockout of every user with
    codes."""
    sd = new_state_dir(h)
    config, path, codes = setup(h, users=("dave",), ldap=unreachable_directory(h),
                                stateDir=str(sd), maxAttempts=1, lockoutThreshold=1)
    svc = h.service(config, then_permit=True)
    run = login(h, svc, "dave", [typed(NOT_ISSUED[0])], "PAM_AUTH_ERR", sms=0, requests=0,
                prompts=1)
    backup_prompts_only(run)
    check("Too many wrong codes" in run.output, f"dave was not told: {run.output!r}")
    run = login(h, svc, "dave", [typed(codes["dave"][0])], "PAM_AUTH_ERR", sms=0, requests=0,
                prompts=0)
    check(BACKUP_PROMPT not in run.output, f"a backup prompt while locked out: {run.output!r}")
    check("lockoutThreshold" in run.outcomes[0], f"outcome {run.outcomes[0]!r}")
    expect_left(config, path, "dave", DEFAULT_COUNT)


@case
def backup_no_prompt_on_users_file_error(h):
    """Only an unavailable directory leads to the backup prompt: an unsafe usersFile
    (writable by others, or not root's) refuses everyone it could name with
    PAM_SERVICE_ERR and no prompt, also users with codes and with failMode=open, so that
    tampering with the file never trades the SMS for a backup code. A user of the config's
    users object (alice) gets her SMS as usual: the file could only have refused her."""
    users = str(h.confdir / f"{h.case}.users")
    write_file(users, "dave +15555550100\n")
    config, path, codes = setup(h, users=("alice", "dave"), usersFile=users, failMode="open")
    svc = h.service(config, then_permit=True)
    nobody = pwd.getpwnam("nobody").pw_uid
    for what, write in (("mode 0606", dict(mode=0o606)), ("owned by nobody", dict(uid=nobody))):
        write_file(users, "dave +15555550100\n", **write)
        run = h.authenticate(svc, "alice", [right()])
        h.expect(run, "PAM_SUCCESS", sms=1, prompts=1)
        check(BACKUP_PROMPT not in run.output, f"a backup prompt: {run.output!r}")
        for user in ("dave",):
            try:
                run = login(h, svc, user, [typed(codes[user][0])], "PAM_SERVICE_ERR", sms=0,
                            requests=0, prompts=0)
                check(BACKUP_PROMPT not in run.output, f"a backup prompt: {run.output!r}")
                check(any(f"usersFile {users}: " in l and "fix:" in l for l in run.module_logs),
                      f"no line 'usersFile {users}: ...; fix: ...': {run.module_logs!r}")
            except CaseFailure as e:
                raise CaseFailure(f"usersFile {what}, {user}: {e}") from None
    write_file(users, "dave +15555550100\n")
    for user in ("alice", "dave"):
        expect_left(config, path, user, DEFAULT_COUNT)


@case
def backup_prompt_when_twilio_rejects(h):
    """A Twilio 4xx rejection (an invalid number, bad credentials) for a user with codes:
    the backup prompt too, where a code works; for a user without codes the login fails
    as before, with no prompt."""
    config, path, codes = setup(h)  # bob has none
    for n, scenario in enumerate(("400-21211", "401"), 1):
        h.sandbox.set_scenario(scenario)
        svc = down_service(h, path)
        try:
            run = login(h, svc, "alice", [typed(codes["alice"][n])], "PAM_SUCCESS", sms=0,
                        requests=1, prompts=1)
            backup_prompts_only(run)
            expect_backup_success(run, DEFAULT_COUNT - n, unavailable=True)
            check("rejected" in outcome(run)[2], f"outcome {run.outcomes[0]!r}")
            run = login(h, svc, "bob", [typed(codes["alice"][0])], "PAM_AUTHINFO_UNAVAIL",
                        sms=0, requests=1, prompts=0)
            check(BACKUP_PROMPT not in run.output, f"bob has no codes: {run.output!r}")
            check(outcome(run)[1] != "backup-code", f"bob: outcome {run.outcomes[0]!r}")
        except CaseFailure as e:
            raise CaseFailure(f"Twilio {scenario}: {e}") from None
    expect_left(config, path, "alice", DEFAULT_COUNT - 2)


@case
def backup_prompt_when_send_limited(h):
    """sendLimit, resendCooldownSeconds or globalSendLimit refuse the SMS: a user with
    codes is told the refusal first, then gets the backup prompt (a code works, a wrong
    one is a wrong answer); one without codes is refused as before."""
    ways = (("sendLimit", {"sendLimit": 1}),
            ("resendCooldownSeconds", {"resendCooldownSeconds": 3600}),
            ("globalSendLimit", {"globalSendLimit": 2}))
    for limit, over in ways:
        sd = new_state_dir(h, limit)
        config, path, codes = setup(h, users=("alice", "carol"), maxAttempts=2,
                                    stateDir=str(sd), **over)
        svc = h.service(config)
        try:
            for user in ("alice", "bob"):
                if limit == "resendCooldownSeconds":  # a right answer would end the cooldown
                    login(h, svc, user, [wrong(), wrong()], "PAM_MAXTRIES", sms=1, prompts=2)
                else:
                    login(h, svc, user, [right()], "PAM_SUCCESS", sms=1, prompts=1)
            if limit != "globalSendLimit":  # bob has no codes: refused as before
                run = login(h, svc, "bob", [typed(codes["alice"][0])], "PAM_AUTH_ERR", sms=0,
                            requests=0, prompts=0)
                check(f"({limit})" in run.outcomes[0], f"bob: outcome {run.outcomes[0]!r}")
                check("Too many SMS codes requested" in run.output, f"bob: {run.output!r}")
            user = "carol" if limit == "globalSendLimit" else "alice"
            c = codes[user]
            run = login(h, svc, user, [typed(NOT_ISSUED[0]), typed(c[0])], "PAM_SUCCESS",
                        sms=0, requests=0, prompts=2)
            backup_prompts_only(run)
            told = run.output.find("Too many SMS codes requested")
            check(0 <= told < run.output.find(BACKUP_PROMPT),
                  f"the refusal not told before the backup prompt: {run.output!r}")
            expect_backup_success(run, DEFAULT_COUNT - 1, unavailable=True)
            check(f"({limit})" in outcome(run)[2], f"outcome {run.outcomes[0]!r}")
            check(read_state(sd / user)["failures"] == 0, f"state {read_state(sd / user)}")
            failures = 2
            if limit == "resendCooldownSeconds":  # the backup code's success ended it
                login(h, svc, user, [wrong(), wrong()], "PAM_MAXTRIES", sms=1, prompts=2)
                failures += 2
            run = login(h, svc, user, [typed(NOT_ISSUED[1]), typed(NOT_ISSUED[2])], DENIED,
                        sms=0, requests=0, prompts=2)
            backup_prompts_only(run)
            check(read_state(sd / user)["failures"] == failures,
                  f"state {read_state(sd / user)}")
            expect_left(config, path, user, DEFAULT_COUNT - 1)
        except CaseFailure as e:
            raise CaseFailure(f"{limit}: {e}") from None


@case
def backup_code_expired_not_spent(h):
    """A code typed after codeTtlSeconds, at the SMS prompt or at the backup prompt: the
    login fails as an expired one and the code stays unspent; typed in time it works."""
    config, path, codes = setup(h, codeTtlSeconds=2, maxAttempts=1)
    code = codes["alice"][0]
    late = Answer("text", code, delay=3.0)
    svc = h.service(config)
    run = login(h, svc, "alice", [late], "PAM_AUTH_ERR", sms=1, prompts=1)
    check("expired" in outcome(run)[2], f"outcome {run.outcomes[0]!r}")
    expect_left(config, path, "alice", DEFAULT_COUNT)
    h.sandbox.set_scenario("503")
    down = down_service(h, path, codeTtlSeconds=2, maxAttempts=1)
    run = login(h, down, "alice", [late], "PAM_AUTH_ERR", sms=0, prompts=1)
    backup_prompts_only(run)
    check("codeTtlSeconds" in outcome(run)[2], f"outcome {run.outcomes[0]!r}")
    expect_left(config, path, "alice", DEFAULT_COUNT)
    in_time = down_service(h, path, tag="in-time", maxAttempts=1)  # codeTtlSeconds 300
    run = login(h, in_time, "alice", [typed(code)], "PAM_SUCCESS", sms=0, prompts=1)
    expect_backup_success(run, DEFAULT_COUNT - 1, unavailable=True)


@case
def backup_codes_file_config_errors(h):
    """backupCodesFile not an absolute path, or the usersFile itself: config errors (the
    module refuses, whatever the answer), each naming the key and a fix."""
    users_file = write_file(h.confdir / f"{h.case}.users", "dave +15555550100\n")
    for cfg, needles in (
            (h.config(backupCodesFile="pam_twilio_sms.backup-codes"),
             ("backupCodesFile", "absolute path", "fix:")),
            (h.config(usersFile=users_file, backupCodesFile=users_file),
             ("backupCodesFile and usersFile are the same file",))):
        config_error_case(h, cfg, *needles)


# --------------------------------------------------------------------------- limits, admin

@case
def backup_wrong_codes_lock_out(h):
    """Wrong backup-shaped answers and wrong SMS codes count together towards
    lockoutThreshold; once locked, neither a right backup code nor Twilio being down gets
    anyone in, and no code is spent; after `unlock` a code works. The same at the backup
    prompt."""
    sd = new_state_dir(h)
    config, path, codes = setup(h, users=("alice", "bob"), lockoutThreshold=3, maxAttempts=2,
                                stateDir=str(sd))
    svc = h.service(config)
    c = codes["alice"]
    run = login(h, svc, "alice", [typed(NOT_ISSUED[0]), wrong()], "PAM_MAXTRIES", sms=1,
                prompts=2)
    check(read_state(sd / "alice")["failures"] == 2, f"state {read_state(sd / 'alice')}")
    run = login(h, svc, "alice", [typed(NOT_ISSUED[1]), typed(c[0])], "PAM_AUTH_ERR", sms=1,
                prompts=1)
    check("Too many wrong codes" in run.output, f"the user was not told: {run.output!r}")
    check("lock" in run.outcomes[0], f"outcome {run.outcomes[0]!r}")
    check(read_state(sd / "alice")["locked_until"] > 0, f"state {read_state(sd / 'alice')}")
    run = login(h, svc, "alice", [typed(c[0])], "PAM_AUTH_ERR", sms=0, requests=0, prompts=0)
    check("lockoutThreshold" in run.outcomes[0], f"outcome {run.outcomes[0]!r}")
    h.sandbox.set_scenario("503")
    down = down_service(h, path, lockoutThreshold=3, maxAttempts=2, stateDir=str(sd))
    run = login(h, down, "alice", [typed(c[0])], "PAM_AUTH_ERR", requests=0, prompts=0)
    check("lockoutThreshold" in run.outcomes[0], f"Twilio down: outcome {run.outcomes[0]!r}")
    expect_left(config, path, "alice", DEFAULT_COUNT)
    # at the backup prompt: bob's wrong codes lock him the same way
    b = codes["bob"]
    login(h, down, "bob", [typed(NOT_ISSUED[2]), typed(NOT_ISSUED[3])], DENIED, sms=0,
          prompts=2)
    run = login(h, down, "bob", [typed(NOT_ISSUED[4]), typed(b[0])], "PAM_AUTH_ERR", sms=0,
                prompts=1)
    check("Too many wrong codes" in run.output, f"bob was not told: {run.output!r}")
    run = login(h, down, "bob", [typed(b[0])], "PAM_AUTH_ERR", requests=0, prompts=0)
    check("lockoutThreshold" in run.outcomes[0], f"bob: outcome {run.outcomes[0]!r}")
    expect_left(config, path, "bob", DEFAULT_COUNT)
    # the codes were good all along
    h.sandbox.set_scenario("ok")
    unlock = admin(config, "unlock", "alice")
    check(unlock.returncode == 0, f"unlock: {unlock.stdout!r} {unlock.stderr!r}")
    run = login(h, svc, "alice", [typed(c[0])], "PAM_SUCCESS", sms=1, prompts=1)
    expect_backup_success(run, DEFAULT_COUNT - 1)


@case
def backup_codes_revoked(h):
    """After `backup-codes --revoke USER` a former code is a wrong answer and Twilio
    down gives no backup prompt; a new set replaces the old one (the old codes fail, the
    new work)."""
    config, path, codes = setup(h, maxAttempts=1)
    svc = h.service(config)
    old = codes["alice"]
    run = login(h, svc, "alice", [typed(old[0])], "PAM_SUCCESS", sms=1, prompts=1)
    expect_backup_success(run, DEFAULT_COUNT - 1)
    p = admin(config, "backup-codes", "--revoke", "alice")
    check(p.returncode == 0 and p.stdout == f"alice: {DEFAULT_COUNT - 1} backup codes revoked\n",
          f"--revoke: exit {p.returncode}, stdout {p.stdout!r}, stderr {p.stderr.strip()!r}")
    check(codes_left(config, "alice") == 0, "codes left after --revoke")
    run = login(h, svc, "alice", [typed(old[1])], DENIED, sms=1, prompts=1)
    expect_method(run, "sms")
    h.sandbox.set_scenario("503")
    down = down_service(h, path, maxAttempts=1)
    run = login(h, down, "alice", [typed(old[2])], "PAM_AUTHINFO_UNAVAIL", sms=0, prompts=0)
    check(BACKUP_PROMPT not in run.output, f"a backup prompt after --revoke: {run.output!r}")
    # a new set
    h.sandbox.set_scenario("ok")
    first = make_codes(config, "alice", 3)
    new = make_codes(config, "alice", 4)  # replaces the 3
    expect_left(config, path, "alice", 4)
    for code in (old[3], first[0]):
        run = login(h, svc, "alice", [typed(code)], DENIED, sms=1, prompts=1)
        expect_method(run, "sms")
    run = login(h, svc, "alice", [typed(new[0])], "PAM_SUCCESS", sms=1, prompts=1)
    expect_backup_success(run, 3)


@case
def backup_few_codes_warning(h):
    """Down to 3 codes left, and below: one LOG_WARNING line a login telling the admin
    how many are left and the command that makes new ones; above 3 none."""
    config, path, codes = setup(h, count=5)
    svc = h.service(config)
    for n, code in enumerate(codes["alice"][:3], 1):
        left = 5 - n
        run = login(h, svc, "alice", [typed(code)], "PAM_SUCCESS", sms=1, prompts=1)
        expect_backup_success(run, left)
        prefix = f"pam_twilio_sms({run.service}:auth): "
        lines = [(raw, line) for raw, line in zip(run.raw_logs, run.logs)
                 if "backup codes left" in line or "backup code left" in line]
        if left > 3:
            check(not lines, f"{left} left: a warning {lines!r}")
            continue
        want = f"user alice has {left} backup codes left; fix: twilio-sms-otp backup-codes alice"
        check(len(lines) == 1 and lines[0][1] == prefix + want,
              f"{left} left: lines {[l for _, l in lines]!r}, want one {want!r}")
        pri = re.match(r"<(\d+)>", lines[0][0])
        check(pri and int(pri.group(1)) & 7 == LOG_WARNING, f"not LOG_WARNING: {lines[0][0]!r}")


@case
def backup_codes_never_logged(h):
    """Through every path (debug on): a code at the SMS prompt, in capitals and without
    its hyphen, a wrong one, a used one, Twilio down with a right and a wrong one, the
    few-codes warning: no code in any form and no hash reaches syslog, pamtester's output,
    an SMS or a request to Twilio; the file and stateDir hold no code either."""
    sd = new_state_dir(h)
    config, path, codes = setup(h, count=5, maxAttempts=2, stateDir=str(sd))
    read_codes_file(path)
    svc = h.service(config, args=("debug",))
    c = codes["alice"]
    logs, texts = [], []

    def keep(run):
        logs.extend(run.raw_logs)
        texts.append(run.output)

    keep(login(h, svc, "alice", [typed(c[0].upper())], "PAM_SUCCESS", sms=1))
    keep(login(h, svc, "alice", [typed(c[0].replace("-", "")), typed(c[1])], "PAM_SUCCESS",
               sms=1, prompts=2))  # the used one, then a fresh one
    keep(login(h, svc, "alice", [typed(NOT_ISSUED[0]), typed(c[0])], "PAM_MAXTRIES", sms=1))
    h.sandbox.set_scenario("503")
    down = down_service(h, path, maxAttempts=2, stateDir=str(sd), args=("debug",))
    keep(login(h, down, "alice", [typed(c[2])], "PAM_SUCCESS", sms=0))
    keep(login(h, down, "alice", [typed(c[2]), typed(NOT_ISSUED[1])], DENIED, sms=0))
    check(any("backup codes left" in l for l in logs), "the few-codes warning never came")
    check(sum("result=PAM_" in l for l in logs) == 5, f"not 5 outcome lines: {logs!r}")
    no_backup_secrets(logs, "a syslog line")
    no_backup_secrets(texts, "pamtester's output")
    read_codes_file(path)
    for name in os.listdir(sd):
        no_backup_secrets([(sd / name).read_text(errors="replace")], f"{sd / name}")


@case
def backup_file_unsafe_fails_closed(h):
    """A backupCodesFile that is group or world readable, not root's, or a symbolic link:
    a login that needs it (a backup-shaped answer, Twilio down, also with failMode=open)
    fails closed with a line naming backupCodesFile and a fix; a plain SMS login still
    works; nothing is used up."""
    config, path, codes = setup(h)
    code = codes["alice"][0]
    good = Path(path).read_text()
    nobody = pwd.getpwnam("nobody").pw_uid
    target = h.confdir / f"{h.case}-target.backup-codes"
    write_file(target, good)
    states = (("mode 0644", dict(mode=0o644), path, "0644"),
              ("mode 0640", dict(mode=0o640), path, "0640"),
              ("owned by nobody", dict(uid=nobody), path, str(nobody)),
              ("a symbolic link", None, path + "-link", "symbolic link"))
    for what, write, shown, needle in states:
        if write is None:
            Path(shown).unlink(missing_ok=True)
            Path(shown).symlink_to(target)
        else:
            write_file(path, good, **write)
        cfg = h.write_config(h.config(backupCodesFile=shown), name=f"{h.case}-sms")
        sms_svc = h.service(cfg, then_permit=True)
        try:
            h.sandbox.set_scenario("ok")
            run = login(h, sms_svc, "alice", [typed(code)], FAILED_CLOSED, sms=1, prompts=1)
            expect_file_error(run, shown, needle)
            login(h, sms_svc, "alice", [right()], "PAM_SUCCESS", sms=1, prompts=1)
            h.sandbox.set_scenario("503")
            for fail_mode in ("closed", "open"):
                svc = down_service(h, shown, failMode=fail_mode)
                run = login(h, svc, "alice", [typed(code)], FAILED_CLOSED, sms=0)
                expect_file_error(run, shown, needle)
        except CaseFailure as e:
            raise CaseFailure(f"{what}: {e}") from None
    write_file(path, good)
    expect_left(config, path, "alice", DEFAULT_COUNT)
    check(Path(target).read_text() == good, "the symbolic link's target changed")


def expect_file_error(run, path, needle):
    """A log line `backupCodesFile PATH[:LINE]: ...NEEDLE...; fix: ...`."""
    named = re.compile(rf"backupCodesFile {re.escape(path)}(:\d+)?: ")
    lines = [l for l in run.module_logs if named.search(l)]
    check(lines and any(needle in l and "fix:" in l for l in lines),
          f"no line 'backupCodesFile {path}: ...{needle}...; fix: ...': {run.module_logs!r}")


@case
def backup_file_malformed_fails_closed(h):
    """The user on two lines, or a line of the user's that is not all hashes: a login
    that needs the file fails closed naming it (no hash echoed), a plain SMS login works,
    the file is left as it was."""
    config, path, codes = setup(h, users=("alice", "bob"))
    code = codes["alice"][0]
    users = read_codes_file(path)
    line = {u: f"{u} {' '.join(hs)}\n" for u, hs in users.items()}
    texts = (("alice on two lines", line["alice"] + line["bob"] + "alice " + users["alice"][0]
              + "\n"),
             ("a line that is not all hashes", line["bob"] + line["alice"][:-1] +
              " not-a-hash\n"))
    for what, text in texts:
        write_file(path, text)
        try:
            h.sandbox.set_scenario("ok")
            svc = down_service(h, path, tag="up")
            run = login(h, svc, "alice", [typed(code)], FAILED_CLOSED, sms=1, prompts=1)
            expect_file_error(run, path, "alice")
            login(h, svc, "alice", [right()], "PAM_SUCCESS", sms=1, prompts=1)
            h.sandbox.set_scenario("503")
            for fail_mode in ("closed", "open"):
                svc = down_service(h, path, failMode=fail_mode)
                run = login(h, svc, "alice", [typed(code)], FAILED_CLOSED, sms=0)
                expect_file_error(run, path, "alice")
            check(Path(path).read_text() == text, "the file was changed")
        except CaseFailure as e:
            raise CaseFailure(f"{what}: {e}") from None


# --------------------------------------------------------------------------- Redis

def redis(h):
    """The family's Redis, running and emptied (harness.redis)."""
    return family_server("backup", h.workdir)


def used_ids(s, user="alice"):
    """The members of PREFIX used:USER and its TTL in seconds."""
    key = f"{KEY_PREFIX}used:{user}"
    return set(s.command("SMEMBERS", key) or []), s.keys().get(key)


def hosts_sharing_codes(h, s, tags, **over):
    """Hosts of one fleet on Redis s (the shipped ACL), each with its own copy of one
    backupCodesFile made on the first: (hosts, their files, the codes)."""
    files = [codes_file(h, f"-{t}") for t in tags]
    hosts = [host(h, t, redis=s.module_config(), backupCodesFile=f, **over)
             for t, f in zip(tags, files)]
    codes = make_codes(hosts[0].config, "alice")
    for f in files[1:]:
        shutil.copy2(files[0], f)
    return hosts, files, codes


@case
def backup_redis_single_use_across_hosts(h):
    """Two hosts on one Redis, each with a copy of the same file: a code used on one is
    refused on the other (already used on another host, a wrong answer, counted in Redis);
    another code works there; Redis keeps only ids, 400 days."""
    s = redis(h)
    (a, b), (fa, fb), codes = hosts_sharing_codes(h, s, ("a", "b"), maxAttempts=1)
    run = login(h, a.service, "alice", [typed(codes[0])], "PAM_SUCCESS", sms=1, prompts=1)
    expect_backup_success(run, DEFAULT_COUNT - 1)
    check(fallback_warnings(run) == [], f"Redis warnings: {run.module_logs!r}")
    ids, ttl = used_ids(s)
    check(len(ids) == 1, f"{KEY_PREFIX}used:alice holds {sorted(ids)}, want one id")
    check(ttl is not None and 399 * 86400 < ttl <= 400 * 86400,
          f"{KEY_PREFIX}used:alice TTL {ttl}, want 400 days")
    no_backup_secrets(list(ids), "Redis")
    for member in ids:
        check(re.fullmatch(r"[0-9a-f]{16,}", member), f"id {member!r} is not a digest")
    run = login(h, b.service, "alice", [typed(codes[0])], DENIED, sms=1, prompts=1)
    reason = outcome(run)[2]
    check("already used on another host" in reason,
          f"reason {reason!r}, want 'backup code already used on another host (redis)'")
    check(fallback_warnings(run) == [], f"Redis warnings: {run.module_logs!r}")
    check(s.user_hash("alice").get("failures") == 1,
          f"not counted as a wrong answer: {s.user_hash('alice')}")
    run = login(h, b.service, "alice", [typed(codes[1])], "PAM_SUCCESS", sms=1, prompts=1)
    expect_backup_success(run, DEFAULT_COUNT - 2)
    check(len(used_ids(s)[0]) == 2, f"ids {sorted(used_ids(s)[0])}")
    run = login(h, a.service, "alice", [typed(codes[1])], DENIED, sms=1, prompts=1)
    check("already used on another host" in outcome(run)[2], f"outcome {run.outcomes[0]!r}")
    run = login(h, a.service, "alice", [typed(codes[2])], "PAM_SUCCESS", sms=1, prompts=1)
    check(len(used_ids(s)[0]) == 3, f"ids {sorted(used_ids(s)[0])}")
    login(h, b.service, "alice", [right()], "PAM_SUCCESS", sms=1, prompts=1)
    for f in (fa, fb):
        read_codes_file(f)


@case
def backup_redis_down_falls_back(h):
    """Redis stopped (with Twilio up, and down too), gone between the SMS and the code, or
    hanging: a backup code still works on the host, its file decides, with the one usual
    fallback warning; Redis back, codes are recorded there again."""
    s = redis(h)
    (a,), (fa,), codes = hosts_sharing_codes(h, s, ("a",))
    down = host(h, "a-down", redis=s.module_config(), backupCodesFile=fa, maxRetries=0)
    s.halt()
    try:
        for n, (hst, scenario) in enumerate(((a, "ok"), (down, "503"))):
            h.sandbox.set_scenario(scenario)
            run = login(h, hst.service, "alice", [typed(codes[n])], "PAM_SUCCESS",
                        sms=1 if scenario == "ok" else 0, prompts=1)
            expect_backup_success(run, DEFAULT_COUNT - n - 1, unavailable=scenario != "ok")
            got = fallback_warnings(run)
            check(len(got) == 1 and got[0][0] == s.url and got[0][2] == str(hst.state_dir),
                  f"Redis stopped, Twilio {scenario}: warnings {got!r}: {run.module_logs!r}")
    finally:
        s.restart()
    # Redis there for the SMS, gone when the code is typed: the code's record falls back
    h.sandbox.set_scenario("ok")

    def halt_then(code):
        s.halt()
        return code

    try:
        run = login(h, a.service, "alice", [typed(lambda: halt_then(codes[2]))], "PAM_SUCCESS",
                    sms=1, prompts=1)
        expect_backup_success(run, DEFAULT_COUNT - 3)
        got = fallback_warnings(run)
        check(len(got) == 1 and got[0][0] == s.url,
              f"Redis gone at the code: warnings {got!r}: {run.module_logs!r}")
    finally:
        s.restart()
    hole = Hang().start()
    try:
        hung = host(h, "hang", backupCodesFile=fa,
                    redis=s.module_config(url=hole.url, timeoutSeconds=1))
        run = login(h, hung.service, "alice", [typed(codes[3])], "PAM_SUCCESS", sms=1,
                    prompts=1)
        expect_backup_success(run, DEFAULT_COUNT - 4)
        got = fallback_warnings(run)
        check(len(got) == 1 and got[0][0] == hole.url and "timed out" in got[0][1],
              f"Redis hanging: warnings {got!r}: {run.module_logs!r}")
    finally:
        hole.stop()
    run = login(h, a.service, "alice", [typed(codes[4])], "PAM_SUCCESS", sms=1, prompts=1)
    expect_backup_success(run, DEFAULT_COUNT - 5)
    check(fallback_warnings(run) == [], f"Redis back: warnings {run.module_logs!r}")
    ids = used_ids(s)[0]
    check(len(ids) == 1, f"ids in Redis after its restart (empty): {sorted(ids)}, want 1")
