"""End-to-end cases: config files the module refuses (PAM_SERVICE_ERR, nothing sent, a
`config PATH: ` log line naming the problem) and the template fallbacks it accepts."""

import json
import pwd

from harness.core import CaseFailure, case, check
from harness.pam import (check_clean_logs, config_error_case, expect_config_error, right,
                         simple_service)


@case
def config_group_readable(h):
    config_error_case(h, h.config(), ("640", "0640"), mode=0o640)


@case
def config_world_readable(h):
    config_error_case(h, h.config(), ("604", "0604"), mode=0o604)


@case
def config_not_root_owned(h):
    nobody = pwd.getpwnam("nobody").pw_uid
    config_error_case(h, h.config(), ("nobody", str(nobody)), uid=nobody)


@case
def config_symlink(h):
    target = h.write_config(h.config(), name="symlink-target")
    link = h.confdir / "symlink.json"
    link.unlink(missing_ok=True)
    link.symlink_to(target)
    config_error_case(h, None, path=str(link))


@case
def config_missing(h):
    config_error_case(h, None, path=str(h.confdir / "does-not-exist.json"))


@case
def config_unreadable_outcome_names_user(h):
    """A config that cannot be used (missing, group-readable) fails before the module asks
    PAM for the user, but the outcome line still names the user PAM holds, sanitised: the
    refusal is someone's, for whoever reads the log."""
    for name, path in (("missing", str(h.confdir / "does-not-exist.json")),
                       ("0640", h.write_config(h.config(), mode=0o640, name="unreadable"))):
        for user, shown in (("alice", "user=alice "), ("al\nice", "user=al?ice ")):
            run = h.authenticate(h.service(path), user, [right()])
            expect_config_error(h, run, path)
            check(shown in run.outcomes[0], f"{name}: outcome line for {user!r} lacks "
                  f"{shown!r}: {run.outcomes[0]!r}")
            check_clean_logs(run)


@case
def config_malformed_json(h):
    text = json.dumps(h.config())[:-1] + ',,}'
    config_error_case(h, text)


@case
def config_json_error_line_and_column(h):
    """The module's log line places a JSON error by line and column, as an editor shows it."""
    text = json.dumps(h.config(), indent=1)[:-2] + ',\n "failMode": clos\n}'
    path = h.write_config(text)
    run = h.authenticate(h.service(path), "alice", [right()])
    expect_config_error(h, run, path, "not valid JSON", f"(line {text.count(chr(10))}, column 14)")
    check(not any("byte" in l for l in run.module_logs), f"a byte offset: {run.module_logs!r}")


@case
def config_unknown_key(h):
    config_error_case(h, h.config(codeLenght=6), "codeLenght")


@case
def config_duplicate_key(h):
    text = json.dumps(h.config())[:-1] + ', "maxAttempts": 3, "maxAttempts": 10}'
    config_error_case(h, text, "maxAttempts")


@case
def config_bad_account_sid(h):
    config_error_case(h, h.config(accountSID="AC0123"), "accountSID")


@case
def config_bad_messaging_service_sid(h):
    config_error_case(h, h.config(fromMessagingServiceSID="MGnot-hex-at-all-0123456789abcdef01"),
                      "fromMessagingServiceSID")


@case
def config_http_api_base_url(h):
    config_error_case(h, h.config(apiBaseUrl=f"http://127.0.0.1:{h.sandbox.port}"), "apiBaseUrl")


@case
def config_template_without_placeholder(h):
    config_error_case(h, h.config(templates=[{"usageType": "SignIn", "content": "no code here"}]))


@case
def config_body_too_long(h):
    content = "x" * 1600 + " {{code}}"
    config_error_case(h, h.config(templates=[{"usageType": "SignIn", "content": content}]))


@case
def config_bad_phone_denies_only_its_user(h):
    """A malformed number in users is its user's problem: that user is refused
    (PAM_SERVICE_ERR, nothing sent, with or without nullok, pam_permit after the module),
    the log line names the entry and the E.164 fix; everyone else logs in. "2025550143"
    (a US number without its '+') is never sent to +20, Egypt."""
    users = {"alice": "+15555550006", "mallory": "2025550143", "eve": "+0123"}
    for args in (("debug",), ("nullok", "debug")):
        svc = simple_service(h, args=args, then_permit=True, users=users)
        for user, why in (("mallory", "has no leading +"),
                          ("eve", "is too short (fewer than 7 digits after the +)")):
            run = h.authenticate(svc, user, [right()])
            try:
                h.expect(run, "PAM_SERVICE_ERR", sms=0, requests=0, prompts=0)
                want = (f'users: user "{user}": the number {why}; fix: write it as '
                        "+<country code><number>, e.g. +12025550143")
                check(any(want in l for l in run.module_logs),
                      f"no log line {want!r}: {run.module_logs!r}")
                check(f" user={user} " in run.outcomes[0] and "phone=- " in run.outcomes[0],
                      f"outcome {run.outcomes[0]!r}")
                check_clean_logs(run)
            except CaseFailure as e:
                raise CaseFailure(f"{args} {user}: {e}") from None
        run = h.authenticate(svc, "alice", [right()])
        h.expect(run, "PAM_SUCCESS", sms=1, prompts=1)
        check(run.outbox[0]["to"] == "+15555550006", f"SMS to {run.outbox[0]['to']!r}")
    # an unmapped user is still one (nullok passes it on to pam_permit)
    h.expect(h.authenticate(svc, "nobody-here", [right()]), "PAM_IGNORE", sms=0, prompts=0)


@case
def config_bad_module_argument(h):
    """A misspelt or malformed module argument (nulok, a relative config=) is refused:
    PAM_SERVICE_ERR before any prompt, even with pam_permit after the module, and a line
    naming it with a fix; only logged, the module would run with settings the admin did
    not write."""
    path = h.write_config(h.config())
    for arg in ("nulok", "config=relative.json"):
        run = h.authenticate(h.service(path, args=("debug", arg), then_permit=True), "alice",
                             [right()])
        try:
            h.expect(run, "PAM_SERVICE_ERR", sms=0, requests=0, prompts=0)
            check(any(f'argument "{arg}"' in l and "fix:" in l for l in run.module_logs),
                  f"no line naming the argument with a fix: {run.module_logs!r}")
        except CaseFailure as e:
            raise CaseFailure(f"{arg}: {e}") from None


@case
def config_missing_signin_uses_generic(h):
    templates = [{"usageType": "Register", "content": "Register {{code}}"},
                 {"usageType": "Generic", "content": "Generic code {{code}} here"}]
    svc = simple_service(h, templates=templates)
    run = h.authenticate(svc, "alice", [right()])
    h.expect(run, "PAM_SUCCESS", sms=1)
    check(run.outbox[0]["body"] == f"Generic code {run.codes[0]} here", f"body {run.outbox[0]['body']!r}")


@case
def config_missing_signin_and_generic(h):
    templates = [{"usageType": "Register", "content": "Register {{code}}"},
                 {"usageType": "Test", "content": "Test {{code}}"}]
    config_error_case(h, h.config(templates=templates), "SignIn")


@case
def config_new_keys_validated(h):
    bad = {
        "sendLimit": 0, "sendWindowSeconds": 86401, "resendCooldownSeconds": -1,
        "globalSendLimit": 1000001, "maxResends": 6, "lockoutThreshold": 0,
        "lockoutSeconds": 0, "maxRetries": 6,
    }
    for key, value in bad.items():
        path = h.write_config(h.config(**{key: value}), name=f"{h.case}-{key}")
        run = h.authenticate(h.service(path), "alice", [right()])
        expect_config_error(h, run, path, key)
    for value in (["1"], ["+0"], ["+12345"], [], "+1", [1], ["+1\n"]):
        path = h.write_config(h.config(allowedCountryCodes=value), name=f"{h.case}-country")
        run = h.authenticate(h.service(path), "alice", [right()])
        try:
            expect_config_error(h, run, path, "allowedCountryCodes")
        except CaseFailure as e:
            raise CaseFailure(f"allowedCountryCodes={value!r}: {e}") from None
        check_clean_logs(run)
    for value in ("relative/dir", ""):  # "/" and other shared directories: see below
        path = h.write_config(h.config(stateDir=value), name=f"{h.case}-statedir")
        run = h.authenticate(h.service(path), "alice", [right()])
        try:
            expect_config_error(h, run, path, "stateDir")
        except CaseFailure as e:
            raise CaseFailure(f"stateDir={value!r}: {e}") from None


@case
def config_grace_keys_validated(h):
    """gracePeriodSeconds and sessionGraceSeconds out of 0..86400 or not whole numbers, and
    a graceScope that is unknown, set without gracePeriodSeconds, or "fleet" without a
    redis object: refused with the key named (graceScope "host" alone is fine too)."""
    bad = [({"gracePeriodSeconds": -1}, "gracePeriodSeconds"),
           ({"gracePeriodSeconds": 86401}, "gracePeriodSeconds"),
           ({"gracePeriodSeconds": "600"}, "gracePeriodSeconds"),
           ({"gracePeriodSeconds": 1.5}, "gracePeriodSeconds"),
           ({"sessionGraceSeconds": -1}, "sessionGraceSeconds"),
           ({"sessionGraceSeconds": 86401}, "sessionGraceSeconds"),
           ({"sessionGraceSeconds": True}, "sessionGraceSeconds"),
           ({"gracePeriodSeconds": 600, "graceScope": "site"},
            'graceScope "site" is unknown'),
           ({"gracePeriodSeconds": 600, "graceScope": ""}, 'graceScope "" is unknown'),
           ({"gracePeriodSeconds": 600, "graceScope": 1}, "graceScope"),
           ({"graceScope": "host"}, "graceScope is set but gracePeriodSeconds is 0"),
           ({"gracePeriodSeconds": 0, "graceScope": "fleet"},
            "graceScope is set but gracePeriodSeconds is 0"),
           ({"gracePeriodSeconds": 600, "graceScope": "fleet"},
            'graceScope "fleet" needs a redis object')]
    for over, needle in bad:
        path = h.write_config(h.config(**over), name=f"{h.case}-bad")
        run = h.authenticate(h.service(path), "alice", [right()])
        try:
            expect_config_error(h, run, path, needle)
        except CaseFailure as e:
            raise CaseFailure(f"{over}: {e}") from None
        check_clean_logs(run)
    for over in ({"gracePeriodSeconds": 86400, "sessionGraceSeconds": 86400},
                 {"gracePeriodSeconds": 1, "graceScope": "host"}):
        svc = simple_service(h, **over)
        h.expect(h.authenticate(svc, "alice", [right()]), "PAM_SUCCESS", sms=1, prompts=1)
