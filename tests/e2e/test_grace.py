"""End-to-end cases: the graces (gracePeriodSeconds by remote address, sessionGraceSeconds
by audit session): who skips the code, for how long, and who never does.

Address graces: pamtester with PAM_RHOST set (`-I rhost=...`); the grace is read back from
the user's state file (its `g a ADDRESS UNTIL` line). Session graces: tests/e2e/pam_client's
session-run mode authenticates, opens the PAM session (pam_loginuid, then the module's
session hook), and runs pamtester inside it, as sudo runs in an ssh session: the kernel's
audit session is the one pam_loginuid started in pam_client. pam_loginuid needs alice to be
an account: the session's clients resolve her through test_account.py's NSS source (an
nsswitch.conf in their mount namespace only, not a passwd file bound over /etc/passwd,
which a user added or removed on the host meanwhile would replace). The Redis graces
(graceScope fleet) are in test_redis.py; the config refusals in test_config.py."""

import math
import os
import re
import time
from pathlib import Path

from harness.core import CaseFailure, case, check
from harness.pam import (MODULE, TIME_SLACK, USERS, expect_client, pam_client_cmd, right,
                         simple_service, typed, wrong)
from harness.state import (check_state_files, new_state_dir, parse_state, read_graces,
                           read_state)
from harness.system import write_file
from test_account import alias_nss
from test_backup import make_codes
from test_fail2ban import FILTER, ban_problems, confdir

A = "192.0.2.7"  # documentation addresses (RFC 5737, RFC 3849): only strings here
B = "192.0.2.8"
GRACE_RE = re.compile(r"method=grace-address result=PAM_SUCCESS reason=from (\S+), where a "
                      r"right code was given: gracePeriodSeconds, (\d+) s left$")
SESSION_RE = re.compile(r"method=grace-session result=PAM_SUCCESS reason=in audit session "
                        r"(\d+), opened after a right code: sessionGraceSeconds, (\d+) s left$")
GRACE_ENV = "PAM_TWILIO_SMS_SESSION"


def login_from(h, svc, user, rhost, answers=()):
    """pamtester SERVICE USER authenticate with PAM_RHOST set to rhost."""
    return h.authenticate(svc, user, answers,
                          client=["pamtester", "-I", f"rhost={rhost}", svc, user, "authenticate"])


def expect_grace(h, run, address, window):
    """A login let in by the address grace of address: no text, no prompt, the outcome's
    method and reason, at most window seconds left."""
    h.expect(run, "PAM_SUCCESS", sms=0, requests=0, prompts=0)
    m = GRACE_RE.search(run.outcomes[0])
    check(m and m.group(1) == address and 0 < int(m.group(2)) <= window,
          f"outcome {run.outcomes[0]!r}, want method=grace-address from {address}, at most "
          f"{window} s left")


def expect_asked(h, run):
    """A login that was asked for a code as usual (one text, one prompt) and gave it."""
    h.expect(run, "PAM_SUCCESS", sms=1, prompts=1)
    check("method=grace" not in run.outcomes[0], f"outcome {run.outcomes[0]!r}")


def address_graces(sd, user="alice"):
    return read_graces(Path(sd) / user, "a")


# --------------------------------------------------------------------------- by address

@case
def address_grace_skips_the_second_text(h):
    sd = new_state_dir(h)
    svc = simple_service(h, stateDir=str(sd), gracePeriodSeconds=600)
    before = int(time.time())
    first = login_from(h, svc, "alice", A, [right()])
    h.expect(first, "PAM_SUCCESS", sms=1, prompts=1)
    check("method=sms" in first.outcomes[0], f"outcome {first.outcomes[0]!r}")
    graces = address_graces(sd)
    check(len(graces) == 1 and graces[0][1] == A and
          before + 600 <= graces[0][2] <= time.time() + 600,
          f"graces {graces}, want one from {A} ending 600 s after the code")
    for _ in range(2):
        expect_grace(h, login_from(h, svc, "alice", A), A, 600)
    check(address_graces(sd) == graces, f"a grace login changed the graces: "
          f"{address_graces(sd)}, was {graces}")
    # the state file stays root's, 0600, with the grace in the form the module writes
    check(check_state_files(sd) == ["alice"], f"stateDir holds {os.listdir(sd)}")
    text = (sd / "alice").read_text()
    check(re.fullmatch(r"v1 [^\n]*\ng a 192\.0\.2\.7 \d+\n", text), f"state file {text!r}")


@case
def address_grace_only_that_user_from_that_address(h):
    """Another address, another user, a host name, an empty PAM_RHOST: asked. A code from
    a host name or an empty PAM_RHOST opens no grace."""
    sd = new_state_dir(h)
    svc = simple_service(h, stateDir=str(sd), gracePeriodSeconds=600)
    h.expect(login_from(h, svc, "alice", A, [right()]), "PAM_SUCCESS", sms=1, prompts=1)
    expect_asked(h, login_from(h, svc, "alice", B, [right()]))
    expect_asked(h, login_from(h, svc, "bob", A, [right()]))
    expect_asked(h, login_from(h, svc, "alice", f"{A}.example", [right()]))
    expect_asked(h, login_from(h, svc, "alice", "", [right()]))
    expect_asked(h, h.authenticate(svc, "alice", [right()]))  # no PAM_RHOST at all
    for rhost in ("client.example", "cafe.de", ""):  # a name of hex digits and dots too
        expect_asked(h, login_from(h, svc, "carol", rhost, [right()]))
        expect_asked(h, login_from(h, svc, "carol", rhost, [right()]))
    check(read_graces(sd / "carol") == [], f"carol's graces {read_graces(sd / 'carol')}")
    check([g[1] for g in address_graces(sd)] == [A, B],
          f"alice's graces {address_graces(sd)}, want from {A} and {B}")
    check([g[1] for g in address_graces(sd, "bob")] == [A],
          f"bob's graces {address_graces(sd, 'bob')}")
    expect_grace(h, login_from(h, svc, "alice", A), A, 600)


@case
def address_grace_same_address_other_spelling(h):
    """An IPv4 address mapped into IPv6 is the IPv4 address; an IPv6 address is one
    however it is written."""
    sd = new_state_dir(h)
    svc = simple_service(h, stateDir=str(sd), gracePeriodSeconds=600)
    h.expect(login_from(h, svc, "alice", A, [right()]), "PAM_SUCCESS", sms=1, prompts=1)
    expect_grace(h, login_from(h, svc, "alice", f"::ffff:{A}"), A, 600)
    h.expect(login_from(h, svc, "bob", f"::ffff:{B}", [right()]), "PAM_SUCCESS", sms=1)
    check([g[1] for g in address_graces(sd, "bob")] == [B],
          f"bob's graces {address_graces(sd, 'bob')}, want one from {B}")
    expect_grace(h, login_from(h, svc, "bob", B), B, 600)
    h.expect(login_from(h, svc, "carol", "2001:DB8:0:0::7", [right()]), "PAM_SUCCESS", sms=1)
    expect_grace(h, login_from(h, svc, "carol", "2001:db8::7"), "2001:db8::7", 600)
    expect_asked(h, login_from(h, svc, "carol", "2001:db8::8", [right()]))
    expect_asked(h, login_from(h, svc, "carol", "fe80::1%lo", [right()]))  # a zone: no


@case
def address_grace_ends_and_is_not_extended(h):
    """A short gracePeriodSeconds: a login in the grace a second or more after the code
    leaves the end where it was (extended, it would move by as much); after the end the
    next login is asked and opens a new grace."""
    window = 3 + 2 * math.ceil(TIME_SLACK)  # a slow client's grace login still fits
    sd = new_state_dir(h)
    svc = simple_service(h, stateDir=str(sd), gracePeriodSeconds=window)
    h.expect(login_from(h, svc, "alice", A, [right()]), "PAM_SUCCESS", sms=1, prompts=1)
    (_, _, until), = address_graces(sd)
    time.sleep(max(0.0, until - window + 1.1 - time.time()))  # the opening second is over
    expect_grace(h, login_from(h, svc, "alice", A), A, window - 1)
    check(address_graces(sd) == [("a", A, until)],
          f"graces {address_graces(sd)} after a grace login, want it to end at {until}")
    time.sleep(max(0.0, until + 0.1 - time.time()))
    expect_asked(h, login_from(h, svc, "alice", A, [right()]))
    (_, _, again), = address_graces(sd)
    check(again > until, f"the new grace ends at {again}, the old one at {until}")


@case
def address_grace_ended_or_too_long_in_the_file(h):
    """A grace line that ended is no grace; one that ends further away than
    gracePeriodSeconds (a window lowered since, a clock stepped back) counts as that long,
    and the next write keeps it so."""
    sd = new_state_dir(h)
    sd.mkdir(mode=0o700)
    now = int(time.time())
    write_file(sd / "bob", "v1 window_start=0 sends=0 last_send=0 failures=0 locked_until=0\n"
               f"g a {A} {now - 5}\ng a {B} {now + 100000}\n")
    svc = simple_service(h, stateDir=str(sd), gracePeriodSeconds=600)
    expect_asked(h, login_from(h, svc, "bob", A, [right()]))
    expect_grace(h, login_from(h, svc, "bob", B), B, 600)
    graces = dict((key, until) for _, key, until in address_graces(sd, "bob"))
    check(set(graces) == {A, B} and all(u <= time.time() + 600 for u in graces.values()) and
          graces[A] >= now + 600, f"bob's graces {graces}, want both ending within 600 s")


@case
def address_grace_keeps_the_twelve_latest(h):
    """At most 12 graces a user: a 13th address makes room by the one ending first."""
    sd = new_state_dir(h)
    svc = simple_service(h, stateDir=str(sd), gracePeriodSeconds=600)
    addresses = [f"198.51.100.{i}" for i in range(1, 14)]
    for address in addresses:
        h.expect(login_from(h, svc, "alice", address, [right()]), "PAM_SUCCESS", sms=1)
    kept = [g[1] for g in address_graces(sd)]
    check(sorted(kept) == sorted(addresses[1:]), f"graces from {kept}, want all but the first")
    expect_grace(h, login_from(h, svc, "alice", addresses[-1]), addresses[-1], 600)
    expect_asked(h, login_from(h, svc, "alice", addresses[0], [right()]))


@case
def address_grace_outlives_unredeemed_session_nonces(h):
    """With sessionGraceSeconds on, each login outside an audit session leaves a pending
    session grace that only a session hook redeems; a service that authenticates without
    opening a session (a mail or web login, pamtester) never does. Those pending graces
    must not push the address grace out of the user's twelve: every login from the address
    within the window skips the text, however many came before. (A window shorter than a
    nonce's wait for its session: each ends with the address grace, none before it.)"""
    sd = new_state_dir(h)
    svc = simple_service(h, stateDir=str(sd), gracePeriodSeconds=60, sessionGraceSeconds=600)
    h.expect(login_from(h, svc, "alice", A, [right()]), "PAM_SUCCESS", sms=1, prompts=1)
    for i in range(2, 16):
        run = login_from(h, svc, "alice", A)
        if run.status != 0 or run.prompts:
            raise CaseFailure(f"login {i} from {A} within the window was asked again: "
                              f"{run.outcomes}; alice's graces then {read_graces(sd / 'alice')}")
        expect_grace(h, run, A, 60)


@case
def address_grace_malformed_line_fails_closed(h):
    """A state file whose grace lines are not the module's (an unknown kind, a key out of
    [0-9a-f.:-], no end, a negative end, thirteen lines) is refused like any corrupt state
    file: PAM_SERVICE_ERR, nothing sent, the file named with the fix, left as it was."""
    head = "v1 window_start=0 sends=0 last_send=0 failures=0 locked_until=0\n"
    until = int(time.time()) + 600
    variants = {
        "kind": f"g x {A} {until}\n",
        "key": f"g a HOST.example {until}\n",
        "no-end": f"g a {A}\n",
        "negative": f"g a {A} -{until}\n",
        "spaces": f"g  a {A} {until}\n",
        "long-key": f"g a {'1' * 80} {until}\n",
        "thirteen": "".join(f"g a 198.51.100.{i} {until}\n" for i in range(13)),
        "no-newline": f"g a {A} {until}",
    }
    for name, lines in variants.items():
        sd = new_state_dir(h, name)
        sd.mkdir(mode=0o700)
        write_file(sd / "alice", head + lines)
        svc = simple_service(h, stateDir=str(sd), gracePeriodSeconds=600)
        run = login_from(h, svc, "alice", A, [right()])
        try:
            h.expect(run, "PAM_SERVICE_ERR", sms=0, requests=0, prompts=0)
        except CaseFailure as e:
            raise CaseFailure(f"{name}: {e}") from None
        check(any(str(sd / "alice") in l and "remove" in l for l in run.module_logs),
              f"{name}: no log line naming the file and the fix: {run.module_logs!r}")
        check((sd / "alice").read_text() == head + lines, f"{name}: the file was rewritten")


@case
def address_grace_opened_by_a_backup_code(h):
    sd = new_state_dir(h)
    path = str(h.confdir / f"{h.case}.backup-codes")
    for p in (path, path + ".lock"):
        Path(p).unlink(missing_ok=True)
    config = h.write_config(h.config(stateDir=str(sd), gracePeriodSeconds=600,
                                     backupCodesFile=path))
    svc = h.service(config)
    code = make_codes(config, "alice", 1)[0]
    run = login_from(h, svc, "alice", A, [typed(code)])
    h.expect(run, "PAM_SUCCESS", sms=1, prompts=1)
    check("method=backup-code" in run.outcomes[0], f"outcome {run.outcomes[0]!r}")
    expect_grace(h, login_from(h, svc, "alice", A), A, 600)


@case
def address_grace_not_after_a_wrong_code(h):
    sd = new_state_dir(h)
    svc = simple_service(h, stateDir=str(sd), gracePeriodSeconds=600, maxAttempts=1)
    h.expect(login_from(h, svc, "alice", A, [wrong()]), "PAM_MAXTRIES", sms=1, prompts=1)
    check(read_graces(sd / "alice") == [], f"graces {read_graces(sd / 'alice')}")
    expect_asked(h, login_from(h, svc, "alice", A, [right()]))


@case
def address_grace_never_for_a_decoy(h):
    """A user without a number gets the decoy prompt from a graced address, even with a
    grace line of their own in stateDir: no grace tells who has a number."""
    sd = new_state_dir(h)
    svc = simple_service(h, stateDir=str(sd), gracePeriodSeconds=600, maxAttempts=1)
    h.expect(login_from(h, svc, "alice", A, [right()]), "PAM_SUCCESS", sms=1, prompts=1)
    write_file(sd / "mallory", "v1 window_start=0 sends=0 last_send=0 failures=0 "
               f"locked_until=0\ng a {A} {int(time.time()) + 600}\n")
    run = login_from(h, svc, "mallory", A, [typed("123456")])
    h.expect(run, "PAM_MAXTRIES", sms=0, requests=0, prompts=1)
    check("method=grace" not in run.outcomes[0], f"outcome {run.outcomes[0]!r}")


@case
def address_grace_not_for_a_locked_out_user(h):
    sd = new_state_dir(h)
    svc = simple_service(h, stateDir=str(sd), gracePeriodSeconds=600, lockoutThreshold=2,
                         maxAttempts=2)
    h.expect(login_from(h, svc, "alice", A, [right()]), "PAM_SUCCESS", sms=1, prompts=1)
    h.expect(login_from(h, svc, "alice", B, [wrong(), wrong()]), "PAM_AUTH_ERR", sms=1)
    check(read_state(sd / "alice")["locked_until"] > time.time(),
          f"alice not locked: {read_state(sd / 'alice')}")
    check([g[1] for g in address_graces(sd)] == [A], f"graces {address_graces(sd)}")
    run = login_from(h, svc, "alice", A, [right()])
    h.expect(run, "PAM_AUTH_ERR", sms=0, prompts=0)
    check("lockoutThreshold" in run.outcomes[0], f"outcome {run.outcomes[0]!r}")
    check(re.search(r"locked for \d+ more seconds", run.output), f"not told: {run.output!r}")


@case
def address_grace_off_at_zero(h):
    for tag, over in (("zero", {"gracePeriodSeconds": 0}), ("unset", {})):
        sd = new_state_dir(h, tag)
        svc = simple_service(h, stateDir=str(sd), **over)
        for _ in range(2):
            expect_asked(h, login_from(h, svc, "alice", A, [right()]))
        text = (sd / "alice").read_text()
        check("\ng " not in text, f"{tag}: state file {text!r}")


@case
def address_grace_login_not_banned_by_fail2ban(h):
    d = confdir(h)
    svc = simple_service(h, stateDir=str(new_state_dir(h)), gracePeriodSeconds=600)
    h.expect(login_from(h, svc, "alice", A, [right()]), "PAM_SUCCESS", sms=1)
    run = login_from(h, svc, "alice", A)
    expect_grace(h, run, A, 600)
    problems = ban_problems(h, d / "filter.d" / FILTER.name, [(run, None)])
    check(not problems, f"{len(problems)} wrong verdicts: " + "; ".join(problems[:4]))


# --------------------------------------------------------------------------- by session

def session_services(h, config, *, auth=True, hook_first=False, hook_config=None):
    """(outer, inner) services on config: outer authenticates with the module (auth) or
    pam_permit, then opens the session with pam_loginuid and the module's session hook
    (hook_first: the hook before pam_loginuid; hook_config: the hook's own config); inner
    is a plain one like sudo's, with the module alone."""
    module = f"auth required {MODULE} config={config} debug"
    hook = f"session optional {MODULE} config={hook_config or config} debug"
    loginuid = "session required pam_loginuid.so"
    outer = h.write_service([module if auth else "auth required pam_permit.so",
                             *((hook, loginuid) if hook_first else (loginuid, hook))])
    return outer, h.write_service([module], tag="-inner")


def in_session(h, outer, user, answers, cmd, env=None):
    """pam_client OUTER USER session-run CMD: authenticate (answers), open the session and
    run CMD in it (answers go on to CMD's prompts), alice an account (alias_nss). Returns
    the Run."""
    binds, nss_env = alias_nss(h)
    return h.authenticate(outer, user, answers, env={**nss_env, **(env or {})}, binds=binds,
                          client=pam_client_cmd(outer, user, "session-run", *cmd))


def service_lines(run, service, kind):
    prefix = f"pam_twilio_sms({service}:{kind}): "
    return [l[len(prefix):] for l in run.logs if l.startswith(prefix)]


def inner_outcome(run, inner, n=1):
    """The outcome line of inner's one login in run (n: the list of n logins' lines)."""
    lines = [l for l in service_lines(run, inner, "auth") if re.search(r" result=PAM_", l)]
    check(len(lines) == n, f"{len(lines)} outcome lines of {inner}, want {n}: {run.logs!r}")
    return lines[0] if n == 1 else lines


def expect_session_run(run, sms, prompts, child=0, outcomes=1):
    """pam_client's session-run succeeded, with sms texts and prompts in all, and CMD
    exited with child; outcomes: the outer service's outcome lines (0: pam_permit)."""
    expect_client(run, "PAM_SUCCESS", sms=sms, prompts=prompts, outcomes=outcomes)
    check(f"\nchild={child}\n" in run.output, f"want child={child}: {run.output[-400:]!r}")


def sent_to(h, user):
    """An answer: the code of the newest text to user (a prompt of a program inside the
    session, whose texts the run's own count does not tell apart)."""
    last4 = re.sub(r"\D", "", USERS[user])[-4:]

    def code():
        bodies = [m.get("body") or "" for m in h.sandbox.outbox()
                  if str(m.get("to", "")).endswith(last4)]
        check(bodies, f"no text to {user}")
        return re.search(r"\d{6}", bodies[-1]).group(0)
    return typed(code)


def session_graces(sd, user="alice"):
    return read_graces(Path(sd) / user, "s")


OPENED_RE = re.compile(r"session grace for alice: audit session (\d+), (\d+) s "
                       r"\(sessionGraceSeconds\)")


def opened_and_ended(run, outer, longest):
    """The session hook's lines of alice's session in run: the grace opened (at most
    longest seconds) and, at the session's end, ended. Returns (audit session, seconds)."""
    hook = service_lines(run, outer, "session")
    m = OPENED_RE.fullmatch(hook[0]) if hook else None
    check(m and 0 < int(m.group(2)) <= longest and
          hook[1:] == [f"session grace for alice ended with audit session {m.group(1)}"],
          f"session hook lines {hook!r}, want the grace opened (at most {longest} s), "
          f"then ended")
    return m.group(1), int(m.group(2))


def state_dump(path):
    """A shell command printing the state file at path between markers, for state_seen."""
    return f"echo '<state>'; cat {path}; echo '</state>'"


def state_seen(run, path):
    """The graces of the state file as state_dump printed it inside the session."""
    m = re.search(r"<state>\n(.*?)</state>\n", run.output, re.S)
    check(m, f"no state file printed in the session: {run.output[-400:]!r}")
    return parse_state(path, m.group(1))[1]


def plant_session_grace(sd, sid="4000000000", user="alice"):
    """A session grace of user for an audit session none of the case's is, ending in 300 s;
    returns the file's text."""
    boot = Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    sd.mkdir(mode=0o700, exist_ok=True)
    text = ("v1 window_start=0 sends=0 last_send=0 failures=0 locked_until=0\n"
            f"g s {sid}:{boot} {int(time.time()) + 300}\n")
    write_file(sd / user, text)
    return text


@case
def session_grace_lets_sudo_in_the_session(h):
    """sudo inside a session opened after a code: no text, method=grace-session; the
    session hook logs the session and consumes the pending grace, the session's end ends
    its grace (another session's stays). A caller naming a remote host in the session, or
    one outside it: asked."""
    sd = new_state_dir(h)
    other = parse_state(sd / "alice", plant_session_grace(sd))[1]
    config = h.write_config(h.config(stateDir=str(sd), sessionGraceSeconds=300))
    outer, inner = session_services(h, config)
    run = in_session(h, outer, "alice", [right(), right()], [
        "sh", "-c", f"pamtester {inner} alice authenticate && "
        f"pamtester -I rhost={A} {inner} alice authenticate && {state_dump(sd / 'alice')}"])
    expect_session_run(run, sms=2, prompts=2)
    sid, _ = opened_and_ended(run, outer, 300)
    line, remote = inner_outcome(run, inner, 2)
    check("method=sms" in remote and f"rhost={A} " in remote, f"with PAM_RHOST: {remote!r}")
    got = SESSION_RE.search(line)
    check(got and got.group(1) == sid and 0 < int(got.group(2)) <= 300,
          f"inner outcome {line!r}, want method=grace-session in audit session {sid}")
    boot = Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    graces = [g for g in state_seen(run, sd / "alice") if g not in other]
    check([g[:2] for g in graces] == [("s", f"{sid}:{boot}")] and
          graces[0][2] <= time.time() + 300, f"graces in the session {graces}, want the "
          f"session's alone beside {other}")
    check(check_state_files(sd) == ["alice"], f"stateDir holds {os.listdir(sd)}")
    check(read_graces(sd / "alice") == other,
          f"graces after the session {read_graces(sd / 'alice')}, want {other}")
    expect_asked(h, h.authenticate(inner, "alice", [right()]))  # outside the session


@case
def session_grace_never_outlasts_the_address_grace(h):
    """A login let in by the address grace opens a session grace that ends with the address
    grace, not sessionGraceSeconds later."""
    sd = new_state_dir(h)
    config = h.write_config(h.config(stateDir=str(sd), gracePeriodSeconds=600,
                                     sessionGraceSeconds=3000))
    outer, inner = session_services(h, config)
    cmd = ["pamtester", inner, "alice", "authenticate"]
    for answers, method, longest in (([right()], "method=sms", 3000),
                                     ([], "method=grace-address", 600)):
        run = in_session(h, outer, "alice", answers, cmd, env={"TSMS_CLIENT_RHOST": A})
        expect_session_run(run, sms=len(answers), prompts=len(answers))
        check(method in run.outcomes[0] and f"rhost={A} " in run.outcomes[0],
              f"outcome {run.outcomes[0]!r}, want {method}")
        _, seconds = opened_and_ended(run, outer, longest)
        check(seconds >= longest - 60, f"{method}: a session grace of {seconds} s, want "
              f"{longest} s")
        got = SESSION_RE.search(inner_outcome(run, inner))
        check(got and int(got.group(2)) <= longest, f"inner {inner_outcome(run, inner)!r}")


@case
def session_grace_not_for_a_locked_out_user(h):
    """Locked out inside a session opened after a code (wrong codes from a remote host in
    it): sudo there is refused for the lockout, not let in by the session grace."""
    sd = new_state_dir(h)
    config = h.write_config(h.config(stateDir=str(sd), sessionGraceSeconds=300,
                                     lockoutThreshold=2, maxAttempts=2))
    outer, inner = session_services(h, config)
    run = in_session(h, outer, "alice", [right(), wrong(), wrong()], [
        "sh", "-c", f"pamtester -I rhost={B} {inner} alice authenticate; "
        f"pamtester {inner} alice authenticate"])
    expect_session_run(run, sms=2, prompts=3, child=1)
    opened_and_ended(run, outer, 300)
    locking, refused = inner_outcome(run, inner, 2)
    check("result=PAM_AUTH_ERR" in locking and "locked out" in locking, f"{locking!r}")
    check("method=grace" not in refused and "result=PAM_AUTH_ERR" in refused and
          "lockoutThreshold" in refused, f"in the session: {refused!r}")


@case
def session_grace_not_for_another_user(h):
    sd = new_state_dir(h)
    config = h.write_config(h.config(stateDir=str(sd), sessionGraceSeconds=300))
    outer, inner = session_services(h, config)
    run = in_session(h, outer, "alice", [right(), sent_to(h, "bob")],
                     ["pamtester", inner, "bob", "authenticate"])
    expect_session_run(run, sms=2, prompts=2)
    line = inner_outcome(run, inner)
    check("method=sms" in line and "user=bob" in line, f"inner outcome {line!r}")


@case
def session_grace_not_in_a_session_opened_without_a_code(h):
    """A login without the module's code (a key alone: here pam_permit) leaves no nonce:
    the hook does nothing, the session never counts, though the user has a session grace
    in another session; that one outlives this session's end."""
    sd = new_state_dir(h)
    text = plant_session_grace(sd)
    config = h.write_config(h.config(stateDir=str(sd), sessionGraceSeconds=300))
    outer, inner = session_services(h, config, auth=False)
    run = in_session(h, outer, "alice", [right()], ["pamtester", inner, "alice", "authenticate"])
    expect_session_run(run, sms=1, prompts=1, outcomes=0)
    check(service_lines(run, outer, "session") == [],
          f"session hook lines {service_lines(run, outer, 'session')!r}")
    check("method=sms" in inner_outcome(run, inner), f"inner {inner_outcome(run, inner)!r}")
    check((sd / "alice").read_text().endswith(text.split("\n", 1)[1]),
          f"the other session's grace is gone: {read_graces(sd / 'alice')}")


@case
def session_grace_off_at_zero(h):
    """sessionGraceSeconds 0: no nonce in PAM's environment, nothing recorded, sudo in the
    session asked; a hook whose config has it 0 says so and records nothing."""
    sd = new_state_dir(h)
    config = h.write_config(h.config(stateDir=str(sd)))
    outer, inner = session_services(h, config)
    run = in_session(h, outer, "alice", [right(), right()],
                     ["sh", "-c", f"env; exec pamtester {inner} alice authenticate"])
    expect_session_run(run, sms=2, prompts=2)
    check(f"{GRACE_ENV}=" not in run.output, f"{GRACE_ENV} in the session: {run.output!r}")
    check(service_lines(run, outer, "session") == [], f"hook: {run.logs!r}")
    check("method=sms" in inner_outcome(run, inner), f"inner {inner_outcome(run, inner)!r}")
    check(read_graces(sd / "alice") == [], f"graces {read_graces(sd / 'alice')}")

    on = h.write_config(h.config(stateDir=str(sd), sessionGraceSeconds=300), name=f"{h.case}-on")
    outer, inner = session_services(h, on, hook_config=config)
    run = in_session(h, outer, "alice", [right(), right()],
                     ["pamtester", inner, "alice", "authenticate"])
    expect_session_run(run, sms=2, prompts=2)
    hook = service_lines(run, outer, "session")
    check(len(hook) == 1 and hook[0].startswith("no session grace for alice: "
                                                "sessionGraceSeconds is 0"), f"hook: {hook!r}")
    check("method=sms" in inner_outcome(run, inner), f"inner {inner_outcome(run, inner)!r}")
    check(session_graces(sd) == [], f"graces {read_graces(sd / 'alice')}")


@case
def session_grace_hook_before_loginuid_records_nothing(h):
    sd = new_state_dir(h)
    config = h.write_config(h.config(stateDir=str(sd), sessionGraceSeconds=300))
    outer, inner = session_services(h, config, hook_first=True)
    run = in_session(h, outer, "alice", [right(), right()],
                     ["pamtester", inner, "alice", "authenticate"])
    expect_session_run(run, sms=2, prompts=2)
    hook = service_lines(run, outer, "session")
    check(len(hook) == 1 and hook[0].startswith("no session grace for alice: the process has "
                                                "no audit session; fix: ") and
          "after pam_loginuid.so" in hook[0], f"hook: {hook!r}")
    check("method=sms" in inner_outcome(run, inner), f"inner {inner_outcome(run, inner)!r}")
    check(session_graces(sd) == [], f"graces {read_graces(sd / 'alice')}")


@case
def session_grace_forged_variable_records_nothing(h):
    """PAM_TWILIO_SMS_SESSION put in PAM's environment by another (a pam_env line, a
    forger) in a session opened without a code: well-formed, it names no code; else
    malformed; either way no grace, and sudo in the session is asked."""
    sd = new_state_dir(h)
    config = h.write_config(h.config(stateDir=str(sd), sessionGraceSeconds=300))
    outer, inner = session_services(h, config, auth=False)
    for value, why in (("0123456789abcdef" * 2, f"{GRACE_ENV} names no code of theirs"),
                       ("not-a-nonce", f"{GRACE_ENV} is malformed")):
        run = in_session(h, outer, "alice", [right()],
                         ["pamtester", inner, "alice", "authenticate"],
                         env={"TSMS_CLIENT_PUTENV": f"{GRACE_ENV}={value}"})
        expect_session_run(run, sms=1, prompts=1, outcomes=0)
        hook = service_lines(run, outer, "session")
        check(len(hook) == 1 and hook[0].startswith(f"no session grace for alice: {why}"),
              f"{value}: hook {hook!r}")
        check("method=sms" in inner_outcome(run, inner), f"inner {inner_outcome(run, inner)!r}")
        check(session_graces(sd) == [], f"graces {read_graces(sd / 'alice')}")


@case
def session_grace_variable_kept_from_the_session(h):
    """The nonce leaves PAM's environment at the session hook: the session's programs never
    see it (what a pam_env line puts there, they do)."""
    sd = new_state_dir(h)
    config = h.write_config(h.config(stateDir=str(sd), sessionGraceSeconds=300))
    outer, _ = session_services(h, config)
    run = in_session(h, outer, "alice", [right()], ["env"],
                     env={"TSMS_CLIENT_PUTENV": "TSMS_PAM_ENV_PROBE=seen"})
    expect_session_run(run, sms=1, prompts=1)
    check("\nTSMS_PAM_ENV_PROBE=seen\n" in run.output,
          f"PAM's environment did not reach the session: {run.output!r}")
    check(f"{GRACE_ENV}=" not in run.output, f"{GRACE_ENV} in the session: {run.output!r}")
    opened_and_ended(run, outer, 300)
