"""End-to-end cases: the sign-in flow through pamtester: codes and prompts, the SMS as
Twilio receives it, wrong and expired codes, unmapped users (nullok, the decoy challenge),
a resend on an empty answer, the module twice in one stack, the password typed at the code
prompt."""

import re

from harness.core import CaseFailure, case, check
from harness.pam import (CONTROL_RE, DEFAULT_TEMPLATE, MODULE, PAM_TEXT, FreedScan,
                         answer_with, client_run, expect_client, keep, right, simple_service,
                         typed, unwrapped_case, without_leading_zeros, wrong)
from harness.sandbox import ACCOUNT_SID, AUTH_TOKEN, MESSAGING_SID
from harness.state import new_state_dir, read_state


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
    check(set(req["form"]) == {"To", "MessagingServiceSid", "Body", "ValidityPeriod"},
          f"form fields {sorted(req['form'])}")
    check(req["form"]["ValidityPeriod"] == ["300"],  # codeTtlSeconds: Twilio drops it after
          f"ValidityPeriod {req['form']['ValidityPeriod']!r}, want the code's 300 s")
    check(msg.get("risk_check") in (None, ""),
          f"RiskCheck sent without disableRiskCheck: {msg.get('risk_check')!r}")
    line = run.outcomes[0]
    for part in ("user=alice", "phone=******0006 source=users", f"sid={msg['sid']}",
                 "attempts=1"):
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


@unwrapped_case
def code_never_left_in_freed_memory(h):
    """No heap block that pamtester frees holds the text of the SMS with its code (the
    module's rendering, the request libcurl sends, Twilio's answer that echoes it and its
    parsed JSON), after a login that succeeds and one that fails (harness.pam.FreedScan,
    with a template that puts a marker before the code)."""
    marker = "Sign-in code QzMark:"
    svc = simple_service(h, templates=[{"usageType": "SignIn", "content": marker + "{{code}}"}])
    for result, answers in (("PAM_SUCCESS", [right()]), ("PAM_MAXTRIES", [wrong()] * 3)):
        scan = FreedScan(h, result, [], code=(marker, 6))
        run = h.authenticate(svc, "alice", answers, env=scan.env)
        h.expect(run, result, sms=1, requests=1)
        check(run.outbox[0]["body"] == marker + run.codes[0], f"body {run.outbox[0]['body']!r}")
        scan.check()


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
def unmapped_user_number_keyed(h):
    """The made-up numbers of unmapped users change when only authToken changes: they come
    from a keyed hash with the Twilio secret, so knowing a name is not enough to tell its
    decoy from a real number."""
    shown = {}
    for token in (AUTH_TOKEN, "another-auth-token-9876543210"):
        svc = simple_service(h, authToken=token, maxAttempts=1)
        for user in ("mallory", "eve", "trudy"):
            run = h.authenticate(svc, user, [typed("000000")])
            h.expect(run, "PAM_MAXTRIES", sms=0, requests=0, prompts=1)
            shown.setdefault(token, []).append(run.prompts[0])
    first, second = shown.values()
    check(first != second, f"the same made-up numbers under both authTokens: {first!r}")


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
def code_single_use(h):
    svc = simple_service(h, maxAttempts=1)
    first = h.authenticate(svc, "alice", [right()])
    h.expect(first, "PAM_SUCCESS", sms=1, prompts=1)
    run = h.authenticate(svc, "alice", [typed(first.codes[0])])
    h.expect(run, "PAM_MAXTRIES", sms=1, prompts=1)


@case
def disable_risk_check(h):
    svc = simple_service(h, disableRiskCheck=True)
    run = h.authenticate(svc, "alice", [right()])
    h.expect(run, "PAM_SUCCESS", sms=1, requests=1)
    check(run.outbox[0].get("risk_check") == "disable", f"risk_check {run.outbox[0].get('risk_check')!r}")
    check(run.requests[0]["form"].get("RiskCheck") == ["disable"], f"form {run.requests[0]['form']!r}")


@case
def module_twice_in_one_stack(h):
    """The module on two lines of one stack (the pam-auth-update profile in common-auth and
    a line of the service's own), with the default cooldown: one code for the login, and
    the second line says it is stacked twice, with the fix. A first line that failed
    leaves nothing: the second asks on its own (and the cooldown refuses it)."""
    path = h.write_config(h.config(resendCooldownSeconds=30, maxAttempts=1))
    svc = h.service(path, twice=True)
    run = h.authenticate(svc, "alice", [right(), right()])
    h.expect(run, "PAM_SUCCESS", sms=1, requests=1, prompts=1, outcomes=2)
    check(f"sid={run.outbox[0]['sid']}" in run.outcomes[0], f"outcome {run.outcomes[0]!r}")
    check("method=stacked result=PAM_SUCCESS" in run.outcomes[1] and
          f"stacked twice in {svc}; fix: keep one pam_twilio_sms line" in run.outcomes[1],
          f"second outcome {run.outcomes[1]!r}")
    run = h.authenticate(svc, "bob", [wrong(), right()])
    check(run.status == 1 and PAM_TEXT["PAM_MAXTRIES"] in run.output, f"output {run.output!r}")
    check(run.results == ["PAM_MAXTRIES", "PAM_AUTH_ERR"] and len(run.outbox) == 1 and
          "resendCooldownSeconds" in run.outcomes[1],
          f"after a failed first line: {run.outcomes!r}, {len(run.outbox)} SMS")


@case
def resend_on_empty_answer(h):
    """An empty answer sends a new code; the old one is then refused, the new one accepted.
    The new code gets its own maxAttempts: with 2, a wrong answer before the resend and
    the old code after it still leave the new code its try."""
    svc = simple_service(h, maxResends=1, maxAttempts=2)
    seen = []
    run = h.authenticate(svc, "alice", [wrong(), keep(seen, ""), answer_with(lambda c: seen[0]),
                                        right()])
    h.expect(run, "PAM_SUCCESS", sms=2, requests=2, prompts=4)
    check(run.prompts[1:] == ["Wrong code. SMS code sent to ******0006: ",
                              "New SMS code sent to ******0006: ",
                              "Wrong code. SMS code sent to ******0006: "],
          f"prompts {run.prompts!r}")
    check(seen[0] != run.codes[2], "the two codes happen to be equal (chance 1e-6)")
    check(run.codes[3] == run.codes[2], f"codes {run.codes!r}")


@case
def password_at_the_code_prompt(h):
    """sshd with password authentication answers every PAM prompt with the password (here
    pam_client answers every prompt with one file's bytes; pam_exec's expose_authtok reads
    it first and sets PAM_AUTHTOK, as pam_unix does): the module ends at the first answer,
    counts no wrong code, and its outcome line says what is wrong and the fix."""
    sd = new_state_dir(h)
    path = h.write_config(h.config(stateDir=str(sd), lockoutThreshold=1))
    svc = h.write_service(["auth required pam_exec.so expose_authtok /bin/true",
                           f"auth required {MODULE} config={path} debug"])
    answer = h.workdir / f"{h.case}-password"
    answer.write_text("Not-a-code-Pa55word")
    run = client_run(h, svc, "alice", "answer-file", str(answer))
    expect_client(run, "PAM_AUTH_ERR", sms=1, prompts=1)
    check("reason=the answer to the code prompt was the user's password: sshd is using "
          "password authentication; fix: KbdInteractiveAuthentication yes" in run.outcomes[0],
          f"outcome {run.outcomes[0]!r}")
    state = read_state(sd / "alice")
    check(state["failures"] == 0 and state["locked_until"] == 0, f"counted: {state}")
    check(all("Not-a-code-Pa55word" not in l for l in run.raw_logs), "the password was logged")

