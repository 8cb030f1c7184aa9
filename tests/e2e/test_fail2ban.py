"""End-to-end cases: fail2ban. Real pamtester logins with PAM_RHOST set (`-I rhost=...`),
the module's syslog lines written as rsyslog and fail2ban's journal backend would show
them, and fail2ban's own fail2ban-regex with conf/fail2ban/filter.d/pam_twilio_sms.conf:
every failed challenge from an address matches with that address, successes and other
results never, and no user name or hostile PAM_RHOST puts another address in its place.
The jail (conf/fail2ban/jail.d/) is read with Debian's fail2ban configuration by
`fail2ban-client -d`, which prints what a server would be told and starts nothing.

fail2ban is installed through tests/install-deps.sh when missing; its service is never
started (masked for the install when systemd runs, since Debian's package starts it)."""

import ast
import datetime
import os
import re
import shutil
import subprocess
from pathlib import Path

from harness.core import REPO, case, check
from harness.pam import right, simple_service, typed, wrong
from harness.state import new_state_dir
from harness.system import install_debs

FILTER = REPO / "conf" / "fail2ban" / "filter.d" / "pam_twilio_sms.conf"
JAIL = REPO / "conf" / "fail2ban" / "jail.d" / "pam_twilio_sms.conf"
DEBIAN_CONF = Path("/etc/fail2ban")
UNIT = "fail2ban.service"
F2B_LIMIT = 60.0

ATTACKER = "203.0.113.7"  # documentation addresses (RFC 5737): only strings here
USER_IP = "198.51.100.9"
INNOCENT = "192.0.2.66"
HOSTNAME = "tsms-host"
DATAGRAM_RE = re.compile(r"^<\d+>(\w{3} [ \d]\d \d\d:\d\d:\d\d) (\S+: .*)$", re.S)
OUTCOME_RE = re.compile(r"pam_twilio_sms\([^)]*\): rhost=(\S*) user=")

_install = {}  # "problem": what installing fail2ban said, once per run


def fail2ban_problem():
    """Installs Debian's fail2ban when fail2ban-regex is missing; returns what went wrong,
    or None. With systemd running the unit is masked (until reboot at most) while apt runs,
    so that the package's postinst cannot start the service."""
    if shutil.which("fail2ban-regex") and DEBIAN_CONF.is_dir():
        return None
    if "problem" in _install:
        return _install["problem"]
    masked = False
    if os.path.isdir("/run/systemd/system"):
        masked = subprocess.run(["systemctl", "mask", "--runtime", UNIT],
                                capture_output=True).returncode == 0
    try:
        problem = install_debs(["fail2ban"])
    finally:
        if masked:
            subprocess.run(["systemctl", "unmask", "--runtime", UNIT], capture_output=True)
    if problem is None and not shutil.which("fail2ban-regex"):
        problem = "fail2ban installed but fail2ban-regex not found"
    _install["problem"] = problem
    return problem


def confdir(h, filter_text=None):
    """A copy of Debian's /etc/fail2ban with the shipped filter and jail in it (the filter
    replaced by filter_text when given) and authpriv read from an empty file there, as an
    admin's machine has them after docs/troubleshooting.md's steps. Returns its path."""
    problem = fail2ban_problem()
    check(problem is None, problem)
    d = h.workdir / f"fail2ban-{h.case}"
    shutil.rmtree(d, ignore_errors=True)
    shutil.copytree(DEBIAN_CONF, d, symlinks=True)
    (d / "filter.d" / FILTER.name).write_text(filter_text or FILTER.read_text())
    shutil.copy(JAIL, d / "jail.d" / JAIL.name)
    (d / "auth.log").touch()
    # paths-debian.conf reads paths-overrides.local after itself
    (d / "paths-overrides.local").write_text(f"[DEFAULT]\nsyslog_authpriv = {d / 'auth.log'}\n")
    return d


def login(h, svc, user, answers, rhost=None):
    """pamtester, with PAM_RHOST set to rhost when given."""
    item = ["-I", f"rhost={rhost}"] if rhost is not None else []
    return h.authenticate(svc, user, answers,
                          client=["pamtester", *item, svc, user, "authenticate"])


def outcome_rhost(run):
    """The rhost field of the run's one outcome line, checked to be one word of printable
    ASCII, at most a DNS name (and '...') long, ahead of the user name."""
    check(len(run.outcomes) == 1, f"{len(run.outcomes)} outcome lines: {run.module_logs!r}")
    line = run.outcomes[0]
    m = re.match(r"rhost=([!-~]{1,256}) user=", line)
    check(m, f"outcome line does not start with one rhost= word: {line!r}")
    return m.group(1)


def shown_rhost(rhost):
    """How the module shows rhost: every byte but printable ASCII as '?', cut after 253
    bytes (the test's values have no UTF-8 sequence at the cut) with '...'."""
    raw = rhost.encode()
    shown = "".join(chr(b) if 0x20 < b < 0x7f else "?" for b in raw[:253])
    return shown + ("..." if len(raw) > 253 else "")


# --------------------------------------------------------------------------- fail2ban-regex

def log_forms(h, runs):
    """The syslog lines of runs as three logs: /var/log/auth.log of rsyslog's traditional
    format and of its RFC 3339 one (Debian 12's default), and the lines fail2ban's systemd
    backend builds from the journal (host, identifier[pid]: message; the date apart).
    Returns [(form, path, fail2ban-regex options, [(line, run's wanted address)])]."""
    now = datetime.datetime.now().astimezone().isoformat(timespec="microseconds")
    forms = {"traditional": [], "rfc3339": [], "journal": []}
    for run, want in runs:
        for raw in run.raw_logs:
            m = DATAGRAM_RE.match(raw.rstrip("\n"))
            check(m and "\n" not in m.group(2), f"not a one-line syslog datagram: {raw!r}")
            stamp, rest = m.groups()
            outcome = OUTCOME_RE.search(rest) is not None
            wanted = want if outcome else None  # debug lines never match
            forms["traditional"].append((f"{stamp} {HOSTNAME} {rest}", wanted))
            forms["rfc3339"].append((f"{now} {HOSTNAME} {rest}", wanted))
            forms["journal"].append((f"{HOSTNAME} {rest}", wanted))
    out = []
    for form, lines in forms.items():
        path = h.workdir / f"{h.case}-{form}.log"
        path.write_text("".join(line + "\n" for line, _ in lines))
        opts = ["-d", "{NONE}"] if form == "journal" else []
        out.append((form, path, opts, lines))
    return out


def fail2ban_regex(log, filter_path, opts=(), logtype=None):
    """fail2ban-regex LOG FILTER: {matched line: [the address fail2ban took from it, one
    for each time the line is in LOG]}."""
    check(log.is_file() and filter_path.is_file(), f"{log} or {filter_path} missing")
    spec = f"{filter_path}[logtype={logtype}]" if logtype else str(filter_path)
    try:
        p = subprocess.run(["fail2ban-regex", *opts, "-o", "<ip>\t<msg>", str(log), spec],
                           capture_output=True, text=True, timeout=F2B_LIMIT)
    except subprocess.TimeoutExpired:
        check(False, f"fail2ban-regex still running after {F2B_LIMIT:.0f}s")
    check(p.returncode == 0, f"fail2ban-regex exit {p.returncode}: {p.stderr.strip()[-400:]}")
    matched = {}
    for row in p.stdout.splitlines():
        ip, sep, msg = row.partition("\t")
        check(sep, f"fail2ban-regex printed {row!r}")
        matched.setdefault(msg, []).append(ip)
    return matched


def ban_problems(h, filter_path, runs):
    """What fail2ban-regex with filter_path does wrong with the lines of runs, each run
    given with the address its lines must be banned for (None: nobody), in every log form."""
    problems = []
    for form, path, opts, lines in log_forms(h, runs):
        matched = fail2ban_regex(path, filter_path, opts,
                                 logtype="journal" if form == "journal" else None)
        for line, want in lines:
            got = matched[line].pop(0) if matched.get(line) else None
            if got != want:
                problems.append(f"{form}: {line!r} banned {got or 'nobody'}, "
                                f"want {want or 'nobody'}")
        problems += [f"{form}: matched a line never written: {l!r}"
                     for l, ips in matched.items() if ips]
    return problems


# --------------------------------------------------------------------------- cases

@case
def fail2ban_bans_failed_challenges(h):
    """Wrong codes, maxAttempts, an expired code, an unmapped user's decoy, a sendLimit
    refusal and a lockout from ATTACKER all match with ATTACKER; successes (from any
    address), a conversation that broke off and failures without a remote host never do."""
    d = confdir(h)
    failed, other = [], []
    # one service at a time: a case's service file and config are rewritten by the next
    svc = simple_service(h, maxAttempts=1)
    run = login(h, svc, "alice", [wrong()], ATTACKER)
    h.expect(run, "PAM_MAXTRIES", sms=1, prompts=1)
    failed.append(run)
    for user in ("alice", "bob"):
        run = login(h, svc, user, [right()], USER_IP)
        h.expect(run, "PAM_SUCCESS", sms=1)
        other.append(run)
    run = login(h, svc, "carol", [right()], ATTACKER)  # the attacker's own success
    h.expect(run, "PAM_SUCCESS", sms=1)
    other.append(run)
    run = login(h, svc, "alice", [], ATTACKER)  # hung up at the prompt
    h.expect(run, "PAM_CONV_ERR", sms=1)
    other.append(run)
    for run in (login(h, svc, "alice", [wrong()]), login(h, svc, "mallory", [typed("1")])):
        h.expect(run, "PAM_MAXTRIES")  # sudo, su: PAM_RHOST unset
        check(outcome_rhost(run) == "-", f"no PAM_RHOST logged as {run.outcomes[0]!r}")
        other.append(run)

    svc = simple_service(h, maxAttempts=3)
    run = login(h, svc, "bob", [wrong(), wrong(), wrong()], ATTACKER)
    h.expect(run, "PAM_MAXTRIES", sms=1, prompts=3)
    failed.append(run)
    run = login(h, svc, "mallory", [typed("123456")] * 3, ATTACKER)
    h.expect(run, "PAM_MAXTRIES", sms=0, prompts=3)
    failed.append(run)
    svc = simple_service(h, codeTtlSeconds=1)
    run = login(h, svc, "carol", [right(delay=2.0)], ATTACKER)
    h.expect(run, "PAM_AUTH_ERR", sms=1, prompts=1)
    check("code expired" in run.outcomes[0], f"outcome {run.outcomes[0]!r}")
    failed.append(run)

    svc = simple_service(h, stateDir=str(new_state_dir(h, "limited")), sendLimit=1)
    run = login(h, svc, "alice", [right()], USER_IP)
    h.expect(run, "PAM_SUCCESS", sms=1)
    other.append(run)
    run = login(h, svc, "alice", [right()], ATTACKER)
    h.expect(run, "PAM_AUTH_ERR", sms=0, prompts=0)
    check("sendLimit" in run.outcomes[0], f"outcome {run.outcomes[0]!r}")
    failed.append(run)
    svc = simple_service(h, stateDir=str(new_state_dir(h, "locking")), lockoutThreshold=1,
                         maxAttempts=2)
    run = login(h, svc, "bob", [wrong(), right()], ATTACKER)
    h.expect(run, "PAM_AUTH_ERR", sms=1, prompts=1)
    check("locked out" in run.outcomes[0], f"outcome {run.outcomes[0]!r}")
    failed.append(run)
    run = login(h, svc, "bob", [right()], ATTACKER)
    h.expect(run, "PAM_AUTH_ERR", sms=0, prompts=0)
    check("lockoutThreshold" in run.outcomes[0], f"outcome {run.outcomes[0]!r}")
    failed.append(run)
    for run in failed:
        check(outcome_rhost(run) == ATTACKER, f"rhost in {run.outcomes[0]!r}")

    problems = ban_problems(h, d / "filter.d" / FILTER.name,
                            [(r, ATTACKER) for r in failed] + [(r, None) for r in other])
    check(not problems, f"{len(problems)} wrong verdicts: " + "; ".join(problems[:4]))


# user names that try to hand the filter another address or result; each ends in a failure
FORGED_USERS = [
    f"x rhost={INNOCENT} user=alice",
    "x phone=- source=- sid=- attempts=1 result=PAM_SUCCESS reason=",
    f"x rhost={INNOCENT} user=x phone=- source=- sid=- attempts=1 result=PAM_AUTH_ERR reason=",  # cut
    f"x\nrhost={INNOCENT} user=x",
    f"{INNOCENT}",
]
# PAM_RHOST values that are no address (an application passing on what a caller said)
HOSTILE_RHOSTS = [
    f"{INNOCENT} user=mallory",
    f"{ATTACKER}\nrhost={INNOCENT}",
    f"{INNOCENT}\tx",
    f"{INNOCENT} ",
    "h" * 300 + f" rhost={INNOCENT}",
    "1" * 2000,
    f"{INNOCENT}.example",  # a host name: never resolved
    "\u00e9" * 20 + INNOCENT,
]


def expect_maxtries(run):
    """h.expect(run, "PAM_MAXTRIES", sms=0) for user names that fake fields: the module's
    own result is the last result= of the line."""
    check(run.status == 1 and "Have exhausted maximum number of retries" in run.output,
          f"pamtester exit {run.status}: {run.output!r}")
    check(len(run.outcomes) == 1, f"{len(run.outcomes)} outcome lines: {run.module_logs!r}")
    results = re.findall(r" result=(PAM_[A-Z_]+)", run.outcomes[0])
    check(results[-1:] == ["PAM_MAXTRIES"], f"outcome {run.outcomes[0]!r}")
    check(not run.outbox, f"{len(run.outbox)} SMS sent")


@case
def fail2ban_forged_host_never_banned(h):
    """A user name carrying rhost= and a whole fake outcome bans the caller's real address
    (and nobody without one); a PAM_RHOST with white space, newlines, a second rhost=, 2 kB,
    a host name or non-ASCII text bans nobody, and its field stays one short word."""
    d = confdir(h)
    # no debug: its "user NAME has no phone number" line would pass for an outcome
    svc = simple_service(h, args=(), maxAttempts=1)
    runs = []
    for user in FORGED_USERS:
        for rhost in (ATTACKER, None):
            run = login(h, svc, user, [typed("123456")], rhost)
            expect_maxtries(run)
            check(outcome_rhost(run) == (rhost or "-"), f"rhost in {run.outcomes[0]!r}")
            runs.append((run, rhost))
    for rhost in HOSTILE_RHOSTS:
        run = login(h, svc, "mallory", [typed("123456")], rhost)
        expect_maxtries(run)
        check(outcome_rhost(run) == shown_rhost(rhost),
              f"rhost {rhost[:40]!r} logged as {run.outcomes[0][:80]!r}")
        runs.append((run, None))
    problems = ban_problems(h, d / "filter.d" / FILTER.name, runs)
    check(not problems, f"{len(problems)} wrong verdicts: " + "; ".join(problems[:4]))


# a filter that takes any rhost= of the line, the last one: what the anchoring prevents
NAIVE_FILTER = """[INCLUDES]
before = common.conf
[Definition]
failregex = ^.*rhost=<ADDR>
ignoreregex =
datepattern = {^LN-BEG}
"""


@case
def fail2ban_check_catches_a_bad_filter(h):
    """The check fails a filter that matches successes and takes the address from the
    user name: the verdicts above are not vacuous."""
    d = confdir(h, filter_text=NAIVE_FILTER)
    svc = simple_service(h, args=(), maxAttempts=1)
    ok = login(h, svc, "alice", [right()], USER_IP)
    h.expect(ok, "PAM_SUCCESS", sms=1)
    forged = login(h, svc, FORGED_USERS[0], [typed("123456")], ATTACKER)
    expect_maxtries(forged)
    problems = ban_problems(h, d / "filter.d" / FILTER.name, [(ok, None), (forged, ATTACKER)])
    for form in ("traditional", "rfc3339", "journal"):
        check(any(p.startswith(f"{form}: ") and "PAM_SUCCESS" in p and f"banned {USER_IP}," in p
                  for p in problems), f"{form}: the banned success went unnoticed: {problems}")
        check(any(p.startswith(f"{form}: ") and f"banned {INNOCENT}, want {ATTACKER}" in p
                  for p in problems), f"{form}: the forged address went unnoticed: {problems}")


def jail_stream(d):
    """What `fail2ban-client -c D -d` would tell a server about the pam_twilio_sms jail,
    as lists (['set', 'pam_twilio_sms', 'maxretry', 3], ...)."""
    try:
        p = subprocess.run(["fail2ban-client", "-c", str(d), "-d"], capture_output=True,
                           text=True, timeout=F2B_LIMIT)
    except subprocess.TimeoutExpired:
        check(False, f"fail2ban-client -d still running after {F2B_LIMIT:.0f}s")
    check(p.returncode == 0, f"fail2ban-client -d exit {p.returncode}: "
                             f"{(p.stderr or p.stdout).strip()[-400:]}")
    stream = [ast.literal_eval(l) for l in p.stdout.splitlines() if l.startswith("[")]
    return [c for c in stream if len(c) > 1 and c[1] == "pam_twilio_sms"]


@case
def fail2ban_jail_with_debian_defaults(h):
    """With Debian's /etc/fail2ban the jail is enabled, uses the filter, reads authpriv
    from the auth log with the default backend, or from the journal (authpriv only, no log
    file) when the admin sets backend = systemd in jail.local."""
    d = confdir(h)
    stream = jail_stream(d)
    check(["add", "pam_twilio_sms", "auto"] in stream,
          f"jail not added with backend auto: {stream}")
    check(["start", "pam_twilio_sms"] in stream, "jail not started")
    check(["set", "pam_twilio_sms", "addlogpath", str(d / "auth.log"), "head"] in stream,
          f"auth log not read: {stream}")
    regexes = [c[3] for c in stream if c[2:3] == ["addfailregex"]]
    check(len(regexes) == 1 and "rhost=<ADDR> user=" in regexes[0], f"failregex {regexes}")
    for opt, value in (("maxretry", 3), ("findtime", "1h"), ("bantime", "1h"),
                       ("usedns", "no")):
        check(["set", "pam_twilio_sms", opt, value] in stream, f"{opt} is not {value}: {stream}")
    (d / "jail.local").write_text("[DEFAULT]\nbackend = systemd\n")
    stream = jail_stream(d)
    check(["add", "pam_twilio_sms", "systemd"] in stream, f"not on the journal: {stream}")
    check(["set", "pam_twilio_sms", "addjournalmatch", "SYSLOG_FACILITY=10"] in stream,
          f"no journalmatch for authpriv: {stream}")
    check(not any(c[2:3] == ["addlogpath"] for c in stream), f"a log file with systemd: {stream}")
