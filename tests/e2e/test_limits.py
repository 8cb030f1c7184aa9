"""End-to-end cases: send limits, the resend cooldown, maxResends, lockout, allowed country
codes, and many logins at once keeping the limits exactly."""

import os
import re
import subprocess
import time

from harness.core import REPO, CaseFailure, case, check
from harness.pam import (RUN_LIMIT, TIME_SLACK, USERS, authenticate_at_once, client_run,
                         expect_client, keep, right, simple_service, typed, wrong)
from harness.state import GLOBAL_STATE, check_state_files, new_state_dir, read_state
from harness.system import write_file


TOOL = REPO / "twilio-sms-otp"
TOO_MANY_SMS_RE = re.compile(r"Too many SMS codes requested\b.*?(\d+) seconds")


# a window, cooldown or lockout short enough to wait out, long enough to outlast two runs
SHORT_SECONDS = int(2 + 2 * TIME_SLACK)


def told_too_many(run, max_wait):
    m = TOO_MANY_SMS_RE.search(run.output)
    check(m, f"the user was not told to wait: {run.output!r}")
    check(0 < int(m.group(1)) <= max_wait, f"told to wait {m.group(1)} s (at most {max_wait})")


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
    """The cooldown holds against a text nobody answered right (someone with the password
    looping to bomb the phone), and ends with a right answer: a person who just logged in
    is not made to wait for the next login (ssh, then sudo at once)."""
    sd = new_state_dir(h)
    svc = simple_service(h, stateDir=str(sd), resendCooldownSeconds=30, maxAttempts=1)
    run = h.authenticate(svc, "alice", [wrong()])
    h.expect(run, "PAM_MAXTRIES", sms=1, prompts=1)
    run = h.authenticate(svc, "alice", [right()])
    h.expect(run, "PAM_AUTH_ERR", sms=0, requests=0, prompts=0)
    told_too_many(run, 30)
    check("resendCooldownSeconds" in run.outcomes[0], f"outcome {run.outcomes[0]!r}")
    svc = simple_service(h, stateDir=str(sd), resendCooldownSeconds=SHORT_SECONDS,
                         maxAttempts=1)
    time.sleep(SHORT_SECONDS + 1.1)
    for _ in range(2):  # the second at once: the first's right answer ended the cooldown
        run = h.authenticate(svc, "alice", [right()])
        h.expect(run, "PAM_SUCCESS", sms=1, prompts=1)
    check(read_state(sd / "alice")["sends"] == 3, f"state {read_state(sd / 'alice')}")
    run = h.authenticate(svc, "alice", [wrong()])  # unanswered again: the cooldown is back
    h.expect(run, "PAM_MAXTRIES", sms=1, prompts=1)
    run = h.authenticate(svc, "alice", [right()])
    h.expect(run, "PAM_AUTH_ERR", sms=0, requests=0, prompts=0)


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
    config = h.write_config(h.config(stateDir=str(sd), lockoutThreshold=3, maxAttempts=2))
    svc = h.service(config)
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
    # what an admin does to see and lift it: the command reads the module's own state
    status = admin(config, "status", "alice")
    check(status.returncode == 0 and "wrong codes:   3 in a row" in status.stdout and
          "locked:        until" in status.stdout, f"status: {status.stdout!r} {status.stderr!r}")
    unlock = admin(config, "unlock", "alice")
    check(unlock.returncode == 0 and "lockout lifted" in unlock.stdout,
          f"unlock: {unlock.stdout!r} {unlock.stderr!r}")
    state = read_state(sd / "alice")
    check(state["locked_until"] == 0 and state["failures"] == 0 and state["sends"] == 4,
          f"state after unlock {state}")
    run = h.authenticate(svc, "alice", [right()])
    h.expect(run, "PAM_SUCCESS", sms=1, prompts=1)
    check_state_files(sd)


def admin(config, *args):
    """twilio-sms-otp --config CONFIG ARGS..., as an administrator runs it."""
    return subprocess.run([str(TOOL), "--config", config, *args], capture_output=True,
                          text=True, timeout=RUN_LIMIT, stdin=subprocess.DEVNULL)


@case
def clock_stepped_back_stretches_nothing(h):
    """A state file written while the clock ran 2 hours fast (NTP then stepped it back):
    the lockout lasts lockoutSeconds from now at most, not until the fast clock's end, and
    the capped times are written back so that the next login does not cap again."""
    sd = new_state_dir(h)
    sd.mkdir(mode=0o700)
    ahead = int(time.time()) + 7200
    write_file(sd / "alice", f"v1 window_start={ahead} sends=1 last_send={ahead} failures=10 "
                             f"locked_until={ahead + 900}\n")
    svc = simple_service(h, stateDir=str(sd), lockoutSeconds=900)
    run = h.authenticate(svc, "alice", [right()])
    h.expect(run, "PAM_AUTH_ERR", sms=0, requests=0, prompts=0)
    m = re.search(r"locked for (\d+) more seconds", run.output)
    check(m and int(m.group(1)) <= 900, f"told {run.output!r}, want at most 900 seconds")
    state = read_state(sd / "alice")
    check(state["locked_until"] <= time.time() + 900 and state["window_start"] <= time.time()
          and state["last_send"] <= time.time(), f"the capped times were not kept: {state}")


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


CONCURRENT_RUNS = 50


def outcome_lines(logs, service):
    prefix = f"pam_twilio_sms({service}:auth): "
    return [l[len(prefix):] for l in logs
            if l.startswith(prefix) and re.search(r"(^| )result=PAM_[A-Z_]+", l)]


@case
def concurrent_same_user_send_limit(h):
    sd = new_state_dir(h)
    svc = simple_service(h, stateDir=str(sd), sendLimit=5, resendCooldownSeconds=0)
    before = len(h.sandbox.outbox())
    runs, logs = authenticate_at_once(h, [(svc, "alice")] * CONCURRENT_RUNS)
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
    runs, logs = authenticate_at_once(h, [(svc, u) for u in users])
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
    runs, logs = authenticate_at_once(h, [(svc, "bob")] * CONCURRENT_RUNS)
    sent = h.sandbox.outbox()[before:]
    check(len(sent) == 1, f"{len(sent)} SMS sent by {CONCURRENT_RUNS} logins within the cooldown")
    outcomes = outcome_lines(logs, svc)
    check(len(outcomes) == CONCURRENT_RUNS, f"{len(outcomes)} outcome lines")
    check(sum("resendCooldownSeconds" in l for l in outcomes) == CONCURRENT_RUNS - 1,
          f"refusals: {[l for l in outcomes if 'AUTH_ERR' in l][:2]!r}")
    check(read_state(sd / "bob")["sends"] == 1, f"state {read_state(sd / 'bob')}")
