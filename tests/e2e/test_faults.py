"""End-to-end cases: Twilio and the network failing: HTTP errors, hangs, garbage, TLS the
module must refuse, retries within the timeoutSeconds budget, and failMode."""

import math
import re

from harness.core import case, check
from harness.pam import TIME_SLACK, expect_config_error, right, simple_service
from harness.state import GLOBAL_STATE, new_state_dir, read_state
from harness.system import free_port


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
    port = free_port()  # a loopback port nothing listens on
    svc = simple_service(h, then_permit=True, apiBaseUrl=f"https://127.0.0.1:{port}")
    run = h.authenticate(svc, "alice", [right()])
    h.expect(run, "PAM_AUTHINFO_UNAVAIL", sms=0, requests=0, prompts=0)


@case
def twilio_magic_number_invalid(h):
    svc = simple_service(h, then_permit=True, users={"alice": "+15005550001"})
    run = h.authenticate(svc, "alice", [right()])
    h.expect(run, "PAM_AUTHINFO_UNAVAIL", sms=0, requests=1, prompts=0)


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
    # the second request must start inside the budget: under valgrind the first one alone
    # (a TLS handshake) takes a good part of 3 s, so the budget grows by the run's slack
    retry_case(h, "seq:503,hang", "PAM_AUTHINFO_UNAVAIL", requests=2, max_retries=5,
               timeout=3 + math.ceil(TIME_SLACK))
    retry_case(h, "seq:503,503,503,503,503,ok", "PAM_AUTHINFO_UNAVAIL", requests=None,
               max_retries=5, timeout=1)


@case
def connect_failure_retried(h):
    port = free_port()
    for retries in (0, 2):
        svc = simple_service(h, then_permit=True, apiBaseUrl=f"https://127.0.0.1:{port}",
                             maxRetries=retries, timeoutSeconds=5)
        run = h.authenticate(svc, "alice", [right()])
        h.expect(run, "PAM_AUTHINFO_UNAVAIL", sms=0, requests=0, prompts=0)
        n = retries + 1
        check(f"({n} request{'s' if n > 1 else ''})" in run.outcomes[0],
              f"maxRetries={retries}: outcome {run.outcomes[0]!r}")
        check(run.elapsed < 5 + 1 + TIME_SLACK, f"took {run.elapsed:.2f}s")


@case
def text_that_never_left_is_given_back(h):
    """A request that provably sent nothing (refused with 401 or 429, or no connection at
    all) gives its reservation back: no SMS counted, no cooldown, so the first login after
    the admin fixed the token or the network gets its text at once; the user reads why.
    One that may have sent a text (a 5xx, a timeout) still counts, and its cooldown holds."""
    sd = new_state_dir(h)
    svc = simple_service(h, stateDir=str(sd), resendCooldownSeconds=30, timeoutSeconds=2,
                         maxRetries=0, globalSendLimit=100)
    for scenario in ("401", "429", "refuse"):
        h.sandbox.set_scenario(scenario)
        run = h.authenticate(svc, "alice", [right()])
        h.expect(run, "PAM_AUTHINFO_UNAVAIL", sms=0, prompts=0)
        check("The SMS could not be sent; try again later or ask your administrator." in
              run.output, f"{scenario}: the user was not told: {run.output!r}")
        state, total = read_state(sd / "alice"), read_state(sd / GLOBAL_STATE)
        check(state["sends"] == 0 and state["last_send"] == 0 and total["sends"] == 0,
              f"{scenario}: a text that never left was counted: {state}, global {total}")
    h.sandbox.set_scenario("ok")
    run = h.authenticate(svc, "alice", [right()])
    h.expect(run, "PAM_SUCCESS", sms=1, prompts=1)
    for scenario in ("500", "hang"):
        h.sandbox.set_scenario(scenario)
        run = h.authenticate(svc, "bob", [right()])
        h.expect(run, "PAM_AUTHINFO_UNAVAIL", sms=None, prompts=0)
        state = read_state(sd / "bob")
        check(state["sends"] == 1 and state["last_send"] != 0,
              f"{scenario}: a text that may have left was given back: {state}")
        h.sandbox.set_scenario("ok")
        run = h.authenticate(svc, "bob", [right()])
        h.expect(run, "PAM_AUTH_ERR", sms=0, prompts=0)  # the cooldown holds
        (sd / "bob").unlink()

