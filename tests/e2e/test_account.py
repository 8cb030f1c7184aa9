"""End-to-end cases: the account a login names. sshd hands PAM the name as the client typed
it, and SSSD or winbind resolve ALICE, CORP\\alice and alice@corp.example.com to the account
alice: the module takes the account's name from NSS for the number, the limits, the lockout
and the outcome line. The alias comes from a real NSS source (tests/e2e/libnss_tsmsalias.c)
named by an nsswitch.conf bind-mounted in the client's mount namespace only."""

import os
import subprocess
import time
from pathlib import Path

from harness.core import REPO, case, check
from harness.pam import RUN_LIMIT, built_problem, right, simple_service, typed, wrong
from harness.state import new_state_dir, read_state
from harness.system import in_mount_namespace, write_file

NSS_SOURCE = REPO / "tests" / "e2e" / "libnss_tsmsalias.so.2"
TOOL = Path(os.environ.get("TSMS_TOOL") or REPO / "twilio-sms-otp").resolve()


def alias_nss(h):
    """(binds, env) under which NSS resolves ALICE, CORP\\alice and alice@corp.example.com
    to alice, for h.authenticate and admin()."""
    problem = built_problem(NSS_SOURCE, "e2e-nss")
    check(problem is None, problem)
    conf = write_file(h.confdir / "nsswitch.conf",
                      "passwd: files tsmsalias\ngroup: files\nshadow: files\n", 0o644)
    return [(conf, "/etc/nsswitch.conf")], {"LD_LIBRARY_PATH": str(NSS_SOURCE.parent)}


def admin(config, alias, *args):
    """twilio-sms-otp --config CONFIG ARGS... under the alias NSS."""
    binds, env = alias
    return subprocess.run(in_mount_namespace([str(TOOL), "--config", config, *args], binds),
                          capture_output=True, text=True, timeout=RUN_LIMIT,
                          stdin=subprocess.DEVNULL, env={"PATH": "/usr/bin:/bin", **env})


def outcome_names(run, want):
    check(len(run.outcomes) == 1 and want in run.outcomes[0],
          f"outcome does not say {want!r}: {run.outcomes!r}")


@case
def other_spelling_is_the_account(h):
    """With nullok, ALICE and CORP\\alice (alice by NSS) are asked for alice's code: the
    typed spelling, which no entry names, used to pass for a user without a number."""
    binds, env = alias_nss(h)
    svc = simple_service(h, then_permit=True, args=("nullok", "debug"))
    for typed, shown in (("ALICE", "ALICE"), ("CORP\\alice", "CORP\\alice"),
                         ("alice@corp.example.com", "alice@corp.example.com")):
        run = h.authenticate(svc, typed, [right()], binds=binds, env=env)
        h.expect(run, "PAM_SUCCESS", sms=1, prompts=1)
        check(run.outbox[0]["to"] == "+15555550006", f"sent to {run.outbox[0]['to']!r}")
        outcome_names(run, f" user=alice typed={shown} phone=******0006 source=users ")
    run = h.authenticate(svc, "alice", [right()], binds=binds, env=env)  # the name itself
    h.expect(run, "PAM_SUCCESS", sms=1, prompts=1)
    outcome_names(run, " user=alice phone=")
    # a name NSS does not know stays as typed: unmapped, skipped with nullok
    run = h.authenticate(svc, "ALICE", [right()])
    h.expect(run, "PAM_IGNORE", sms=0, prompts=0)
    outcome_names(run, " user=ALICE phone=- ")


@case
def entry_of_the_typed_spelling_still_asked(h):
    """An entry made under the spelling users type (CORP\\alice) while NSS names the account
    alice: the sources are asked again with the typed name, so the user is still asked."""
    binds, env = alias_nss(h)
    svc = simple_service(h, then_permit=True, args=("nullok", "debug"),
                         users={"CORP\\alice": "+15555550006"})
    run = h.authenticate(svc, "CORP\\alice", [right()], binds=binds, env=env)
    h.expect(run, "PAM_SUCCESS", sms=1, prompts=1)
    outcome_names(run, " user=alice typed=CORP\\alice phone=******0006 source=users ")
    # alice itself has no entry and did not type the spelling that has one
    run = h.authenticate(svc, "alice", [right()], binds=binds, env=env)
    h.expect(run, "PAM_IGNORE", sms=0, prompts=0)


@case
def spellings_share_lockout_and_send_limit(h):
    """A guesser cannot multiply attempts by spelling: wrong codes as CORP\\alice lock alice,
    and ALICE and alice are then refused as locked, with no SMS; the admin command names the
    account by any spelling too. The send limit is the account's likewise."""
    alias = binds, env = alias_nss(h)
    sd = new_state_dir(h)
    config = h.write_config(h.config(stateDir=str(sd), lockoutThreshold=2, maxAttempts=2))
    svc = h.service(config, args=("nullok", "debug"), then_permit=True)
    run = h.authenticate(svc, "CORP\\alice", [wrong(), wrong()], binds=binds, env=env)
    check(run.results and run.results[0] in ("PAM_AUTH_ERR", "PAM_MAXTRIES"),
          f"wrong codes: {run.outcomes!r}")
    state = read_state(sd / "alice")
    check(state["locked_until"] > time.time() + 60, f"state {state}")
    for typed in ("ALICE", "alice", "alice@corp.example.com"):
        run = h.authenticate(svc, typed, [right()], binds=binds, env=env)
        h.expect(run, "PAM_AUTH_ERR", sms=0, requests=0, prompts=0)
        check("lockoutThreshold" in run.outcomes[0], f"outcome {run.outcomes[0]!r}")
    status = admin(config, alias, "status", "ALICE")
    check(status.returncode == 0 and
          "user:          alice (NSS's name for ALICE)\n" in status.stdout and
          "locked:        until" in status.stdout, f"status: {status.stdout!r} {status.stderr!r}")
    unlock = admin(config, alias, "unlock", "CORP\\alice")
    check(unlock.returncode == 0 and "unlocked alice:" in unlock.stdout and
          "lockout lifted" in unlock.stdout, f"unlock: {unlock.stdout!r} {unlock.stderr!r}")
    run = h.authenticate(svc, "ALICE", [right()], binds=binds, env=env)
    h.expect(run, "PAM_SUCCESS", sms=1, prompts=1)
    # the send limit: one SMS for alice, whatever the spelling
    svc = simple_service(h, then_permit=True, args=("nullok",),
                         stateDir=str(new_state_dir(h, "send")), sendLimit=1)
    run = h.authenticate(svc, "alice@corp.example.com", [right()], binds=binds, env=env)
    h.expect(run, "PAM_SUCCESS", sms=1, prompts=1)
    run = h.authenticate(svc, "ALICE", [right()], binds=binds, env=env)
    h.expect(run, "PAM_AUTH_ERR", sms=0, prompts=0)


@case
def admin_command_names_the_account(h):
    """enroll, lookup, backup-codes and unenroll given ALICE or CORP\\alice act on alice, the
    name the module asks for: a number enrolled or codes made under the typed spelling were
    out of reach of a login as alice@corp.example.com."""
    alias = binds, env = alias_nss(h)
    users = write_file(h.confdir / f"{h.case}.users", "bob +15555550007\n")
    codes = h.confdir / f"{h.case}.backup-codes"
    codes.unlink(missing_ok=True)
    config = h.write_config(h.config(users={}, usersFile=users, backupCodesFile=str(codes)))
    enroll = admin(config, alias, "enroll", "--no-verify", "ALICE", "+15555550009")
    check(enroll.returncode == 0 and enroll.stdout.startswith("enrolled alice +15555550009"),
          f"enroll: {enroll.stdout!r} {enroll.stderr!r}")
    with open(users, encoding="utf-8") as f:
        check("\nalice +15555550009\n" in f.read(), "enroll did not write alice's line")
    lookup = admin(config, alias, "lookup", "CORP\\alice")
    check(lookup.returncode == 0 and lookup.stdout.startswith("alice: ******0009 from usersFile"),
          f"lookup: {lookup.stdout!r} {lookup.stderr!r}")
    made = admin(config, alias, "backup-codes", "ALICE", "--count", "1")
    check(made.returncode == 0 and "for alice," in made.stderr,
          f"backup-codes: {made.stdout!r} {made.stderr!r}")
    svc = h.service(config, args=("nullok", "debug"), then_permit=True)
    run = h.authenticate(svc, "alice@corp.example.com", [typed(made.stdout.strip())],
                         binds=binds, env=env)
    h.expect(run, "PAM_SUCCESS", sms=1, prompts=1)
    outcome_names(run, " user=alice typed=alice@corp.example.com phone=******0009 ")
    check("method=backup-code " in run.outcomes[0], f"outcome {run.outcomes[0]!r}")
    gone = admin(config, alias, "unenroll", "CORP\\alice")
    check(gone.returncode == 0 and gone.stdout.startswith("unenrolled alice from"),
          f"unenroll: {gone.stdout!r} {gone.stderr!r}")


@case
def check_flags_entries_of_another_spelling(h):
    """twilio-sms-otp check names a users entry and a users-file line written under a
    spelling that NSS resolves to another account (CORP\\alice, ALICE: alice), with the
    account's name as the fix: a login typed as alice would not find them. Without the
    alias NSS the same config is clean."""
    alias = alias_nss(h)
    users = write_file(h.confdir / f"{h.case}.users", "ALICE +15555550009\nbob +15555550007\n")
    config = h.write_config(h.config(users={"CORP\\alice": "+15555550006"}, usersFile=users))
    r = admin(config, alias, "check", "--offline")
    check(r.returncode == 1, f"check: {r.returncode} {r.stdout!r} {r.stderr!r}")
    for where, name in (("users", "CORP\\alice"), (f"usersFile {users}:1", "ALICE")):
        want = (f'problem: {where}: user "{name}" is the account "alice" (getent passwd); '
                'fix: write the entry as "alice"')
        check(want in r.stdout, f"check lacks {want!r}: {r.stdout!r}")
    check("bob" not in r.stdout, f"check flagged bob: {r.stdout!r}")
    plain = subprocess.run([str(TOOL), "--config", config, "check", "--offline"],
                           capture_output=True, text=True, timeout=RUN_LIMIT,
                           stdin=subprocess.DEVNULL)
    check(plain.returncode == 0 and "getent passwd" not in plain.stdout,
          f"check without the alias: {plain.returncode} {plain.stdout!r}")
