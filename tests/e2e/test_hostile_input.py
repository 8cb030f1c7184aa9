"""End-to-end cases: hostile input: huge answers, NUL bytes, non-digits, odd user names,
conversations that fail or return nothing, and huge or deeply nested configs; each is a
denial with clean log lines and no crash."""

import json
import os
import re

from harness.core import case, check
from harness.pam import (TIME_SLACK, USERS, answer_with, check_clean_logs,
                         client_run, expect_client, expect_config_error, pam_client_cmd, right,
                         simple_service, typed, wrong)
from harness.sandbox import ACCOUNT_SID


@case
def conversation_failure(h):
    svc = simple_service(h)
    run = h.authenticate(svc, "alice", [])  # stdin closed at the prompt
    h.expect(run, "PAM_CONV_ERR", sms=1, prompts=1)


@case
def answer_1mb(h):
    path = h.workdir / "answer-1mb"
    path.write_bytes(b"1" * (1 << 20))
    svc = simple_service(h, maxAttempts=2)
    run = client_run(h, svc, "alice", "answer-file", str(path))
    expect_client(run, "PAM_MAXTRIES", sms=1, requests=1, prompts=2)
    check("attempts=2" in run.outcomes[0], f"outcome line {run.outcomes[0]!r}")
    check_clean_logs(run)


@case
def answer_with_nul_bytes(h):
    path = h.workdir / "answer-nul"
    path.write_bytes(b"12\x003456\x00789\n")
    svc = simple_service(h, maxAttempts=2)
    run = client_run(h, svc, "alice", "answer-file", str(path))
    expect_client(run, "PAM_MAXTRIES", sms=1, requests=1, prompts=2)
    check_clean_logs(run)


@case
def answer_nul_hides_the_right_code(h):
    """A PAM answer is a C string: what follows a NUL byte never reaches the module."""
    svc = simple_service(h, maxAttempts=1)
    wrong_digits = wrong().render
    run = h.authenticate(svc, "alice", [answer_with(lambda c: wrong_digits(c) + "\0" + c)],
                         client=pam_client_cmd(svc, "alice", "stdin"))
    expect_client(run, "PAM_MAXTRIES", sms=1, requests=1, prompts=1)
    check_clean_logs(run)


@case
def answers_with_non_digits(h):
    fullwidth = str.maketrans("0123456789", "０１２３４５６７８９")
    answers = [
        answer_with(lambda c: c[:3] + "a" + c[4:]),
        answer_with(lambda c: "x" + c),
        answer_with(lambda c: c.translate(fullwidth)),
        answer_with(lambda c: c[:3] + " " + c[3:]),
        answer_with(lambda c: "+" + c),
        answer_with(lambda c: c + "!"),
    ]
    svc = simple_service(h, maxAttempts=len(answers))
    run = h.authenticate(svc, "alice", answers)
    h.expect(run, "PAM_MAXTRIES", sms=1, requests=1, prompts=len(answers))
    check(f"attempts={len(answers)}" in run.outcomes[0], f"outcome line {run.outcomes[0]!r}")
    check_clean_logs(run)


def bad_user_case(h, user):
    """An unmapped, odd user name: denied, no SMS, one sanitised outcome line."""
    svc = simple_service(h, maxAttempts=2)
    run = h.authenticate(svc, user, [typed("123456"), typed("123456")])
    short = [l if len(l) < 200 else f"{l[:60]}...({len(l)} chars)...{l[-100:]}"
             for l in run.module_logs]
    check(len(run.outcomes) == 1, f"{len(run.outcomes)} outcome lines (result= cut off?): {short}")
    # the decoy challenge of an unmapped user ends like a mapped user's wrong answers
    h.expect(run, "PAM_MAXTRIES", sms=0, requests=0)
    check(len(run.prompts) == 2, f"{len(run.prompts)} prompts: {run.prompts!r}")
    check_clean_logs(run)
    check("user=" in run.outcomes[0], f"outcome line names no user: {run.outcomes[0]!r}")
    return run


@case
def user_name_with_slash(h):
    bad_user_case(h, "a/b")


@case
def user_name_dotdot(h):
    bad_user_case(h, "..")
    bad_user_case(h, "../../../../etc/passwd")


@case
def user_name_with_newline(h):
    forged = "sshd[1]: Accepted publickey for root"
    run = bad_user_case(h, f"mallory\n{forged}")
    for raw in run.raw_logs:
        check("\n" not in raw.rstrip("\n") and "\r" not in raw, f"newline in a datagram: {raw!r}")
    check(any(forged in l for l in run.outcomes),
          f"the user name is not in the outcome line, sanitised: {run.outcomes!r}")


@case
def user_name_1kb(h):
    bad_user_case(h, "u" * 1024)


@case
def conv_fails_at_code_prompt(h):
    svc = simple_service(h)
    run = client_run(h, svc, "alice", "conv-fail")
    expect_client(run, "PAM_CONV_ERR", sms=1, requests=1, prompts=1)


@case
def conv_returns_null_at_code_prompt(h):
    svc = simple_service(h)
    run = client_run(h, svc, "alice", "conv-null")
    expect_client(run, "PAM_CONV_ERR", sms=1, requests=1, prompts=1)


@case
def conv_null_response_at_code_prompt(h):
    svc = simple_service(h)
    run = client_run(h, svc, "alice", "null-resp")
    expect_client(run, "PAM_CONV_ERR", sms=1, requests=1, prompts=1)


def user_prompt_case(h, mode):
    """No user given to pam_start: the module's pam_get_user asks through the
    conversation, which fails; nothing may be sent."""
    svc = simple_service(h)
    run = client_run(h, svc, "-", mode)
    expect_client(run, "PAM_CONV_ERR", sms=0, requests=0, prompts=0)


@case
def conv_fails_at_user_prompt(h):
    user_prompt_case(h, "conv-fail")


@case
def conv_returns_null_at_user_prompt(h):
    user_prompt_case(h, "conv-null")


@case
def conv_null_response_at_user_prompt(h):
    user_prompt_case(h, "null-resp")


@case
def config_100mb_refused_quickly(h):
    path = h.write_config(h.config())
    os.truncate(path, 100 << 20)  # sparse: a valid config, then NUL bytes up to 100 MB
    run = h.authenticate(h.service(path), "alice", [right()])
    expect_config_error(h, run, path, "bytes")
    check(run.elapsed < 2 + TIME_SLACK, f"took {run.elapsed:.2f}s to refuse a 100 MB config")


@case
def config_deeply_nested_json(h):
    depth = 100000
    for name, deep in (("arrays", "[" * depth + "]" * depth),
                       ("objects", '{"a":' * depth + "1" + "}" * depth)):
        text = json.dumps(h.config(users="@DEEP@")).replace('"@DEEP@"', deep)
        path = h.write_config(text, name=f"{h.case}-{name}")
        run = h.authenticate(h.service(path), "alice", [right()])
        expect_config_error(h, run, path)
        check(run.elapsed < 2 + TIME_SLACK, f"took {run.elapsed:.2f}s for {depth} nested {name}")
        check_clean_logs(run)


@case
def config_duplicate_keys_nested(h):
    base = json.dumps(h.config())
    users = '"users": {"alice": "+15555550006", "alice": "+15555550007"}'
    variants = {
        "users": (re.sub(r'"users": \{[^}]*\}', lambda _: users, base), "alice"),
        "template": (base.replace('"content": "Welcome', '"content": "x {{code}}", "content": "Welcome'),
                     "content"),
        # the same key once written with a \\u escape: duplicates are found after decoding
        "escaped": (base[:-1] + ', "accountSI\\u0044": "' + ACCOUNT_SID + '"}', "accountSID"),
    }
    for name, (text, needle) in variants.items():
        check(text != base, f"variant {name} did not change the config")
        path = h.write_config(text, name=f"{h.case}-{name}")
        run = h.authenticate(h.service(path), "alice", [right()])
        expect_config_error(h, run, path, needle)


@case
def config_template_10000_placeholders(h):
    for placeholder in ("{{code}}", "{{ code }}"):
        templates = [{"usageType": "SignIn", "content": placeholder * 10000}]
        path = h.write_config(h.config(templates=templates))
        run = h.authenticate(h.service(path), "alice", [right()])
        expect_config_error(h, run, path, "1600")
        check(run.elapsed < 2 + TIME_SLACK, f"took {run.elapsed:.2f}s")
        check_clean_logs(run)


@case
def config_text_with_control_characters(h):
    """Config text that reaches the log (an unknown key, a user name) is sanitised."""
    key = "evil\n<13>Jan  1 00:00:00 host sshd[1]: forged\x1b[31m"
    path = h.write_config(h.config(**{key: 1}))
    run = h.authenticate(h.service(path), "alice", [right()])
    expect_config_error(h, run, path, "evil")
    check_clean_logs(run)
    # a user name with control characters cannot be mapped at all
    path = h.write_config(h.config(users=dict(USERS, **{"ev\x1bil\nx": "+15555550111"})))
    run = h.authenticate(h.service(path), "ev\x1bil\nx", [right()])
    expect_config_error(h, run, path, "user name")
    check_clean_logs(run)
