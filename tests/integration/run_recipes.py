#!/usr/bin/env python3
"""Integration tests: the recipes of docs/recipes.md through the real sshd and sudo.

As root on Debian, on run_integration.py's harness (imported: its users, Twilio sandbox,
syslog capture, private mount namespaces, sshd servers and clean-up). The lines each case
uses are read from docs/recipes.md: the fenced block below a `<!-- recipe: NAME -->` line,
without its blank and comment lines, so the page cannot drift from what is tested. A pam.d
block takes the place of `@include common-auth` in Debian's /etc/pam.d/sshd or sudo, as
the README's snippets do; only the page's example values are made the test's own (each must
appear once): the group sms-exempt, the range 10.8.0.0/24 (127.0.0.1/32 here: the client
connects from 127.0.0.1, or with `ssh -b` from 127.0.0.2, outside it) and the path of the
access file (one in the run's temp dir).

  exempt group      sudo with pam_succeed_if above the module: a member of the group is
                    not asked, a user outside it is, and with the group missing the member
                    is asked too.
  trusted network   sshd with pam_access and its own access file above the module: a login
                    from the range is not asked, one from outside it is, and a missing or
                    empty file asks; sudo (no PAM_RHOST) with the same lines asks.
  key and code      sshd with AuthenticationMethods publickey,keyboard-interactive and the
                    module alone in place of common-auth: a key and the code log in without
                    a password prompt; a wrong code, no key, the password method and an
                    unauthorised key do not; nullok for a user without a number does not
                    turn it into a key alone.
  sudo's cache      two sudo from one shell: one text with Debian's default timestamp, two
                    with the page's sudoers line (bind-mounted with the suite's sudoers
                    drop-in in sudo's namespace).

Each case counts the texts in the Twilio sandbox and checks the outcome. Runs are serialised
with run_integration.py's by /run/lock/tsms-integration.lock; the group the suite makes
(tsms-test-exempt) is removed at the end, and a killed run's group at the next start.

Run as root:  python3 tests/integration/run_recipes.py [-k PATTERN] [-v]
Prints `PASS: name` or `FAIL: name: why` per case, then `recipes: N passed, N failed`.
"""

import contextlib
import grp
import json
import re
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.dont_write_bytecode = True  # leave no __pycache__ in the tree
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))
import run_integration as ri  # noqa: E402  (beside this file; its main is guarded)
from harness.core import CASES, case, check, main  # noqa: E402
from harness.system import sh  # noqa: E402

del CASES[:]  # run_integration's cases registered as it was imported: this suite runs its own

RECIPES = ri.REPO / "docs" / "recipes.md"
BLOCKS = ("exempt-group.pam", "trusted-network.access", "trusted-network.pam",
          "trusted-network.sshd_config", "key-and-code.sshd_config", "key-and-code.pam",
          "sudo-every-time.sudoers")  # every marked block of the page, each used below
TOTAL_LIMIT = 120  # seconds for everything after the install (then SIGALRM: cleanup, exit)
GROUP = "tsms-test-exempt"  # in place of the page's sms-exempt
RANGE = "127.0.0.1/32"  # in place of the page's 10.8.0.0/24
INSIDE, OUTSIDE = "127.0.0.1", "127.0.0.2"  # loopback addresses the client connects from
SUDO_ID = ["sudo", "-S", "-k", "--", "/usr/bin/id", "-un"]
TWO_SUDO = ["sh", "-c", "sudo -S -- /usr/bin/id -un && sudo -S -- /usr/bin/id -un"]


# --------------------------------------------------------------------------- the page

def blocks():
    """{name: the text of its fenced block} for every `<!-- recipe: NAME -->` of the page."""
    text = RECIPES.read_text(encoding="utf-8")
    found = re.findall(r"^<!-- recipe: (\S+) -->\n```[^\n]*\n(.*?)^```$", text, re.M | re.S)
    marks = re.findall(r"^<!-- recipe: (\S+) -->", text, re.M)
    check(len(found) == len(marks), f"docs/recipes.md: a recipe mark without a fenced block "
                                    f"right below it: {marks}")
    names = [n for n, _ in found]
    check(len(set(names)) == len(names), f"docs/recipes.md: a recipe mark twice: {names}")
    return dict(found)


def recipe(name, *replace):
    """The lines of the page's block name that are neither blank nor comments, each (old,
    new) of replace made the test's: old must appear exactly once."""
    text = blocks().get(name)
    check(text is not None, f"docs/recipes.md: no block marked `<!-- recipe: {name} -->`")
    lines = [l for l in text.splitlines() if l.strip() and not l.lstrip().startswith("#")]
    for old, new in replace:
        n = sum(l.count(old) for l in lines)
        check(n == 1, f"docs/recipes.md, {name}: {old!r} appears {n} times in {lines}, want "
                      "once (the test puts its own value there)")
        lines = [l.replace(old, new) for l in lines]
    return lines


def suite_config(h, name="recipes", **over):
    """The shared config as TMP/NAME.json with a stateDir of its own and room for the
    suite's texts (sendLimit 100), keys in over replaced."""
    ca_file = json.loads(Path(h.config).read_text())["caFile"]
    return h.write_config(name, ca_file, stateDir=str(h.tmp / f"state-{name}"), sendLimit=100,
                          **over)


def service(h, name, debian_file, lines, module_args=()):
    """TMP/pam.d-recipe-NAME: Debian's debian_file with lines in place of its `@include
    common-auth` line, the module being the built one with suite_config (or module_args)."""
    path = h.tmp / f"pam.d-recipe-{name}"
    path.write_text(ri.in_place_of_common_auth(
        debian_file, lines, list(module_args) or [f"config={suite_config(h)}"]))
    path.chmod(0o644)
    return path


def sshd_settings(config):
    p = sh([str(ri.SSHD), "-T", "-f", str(config)])
    return dict(l.split(" ", 1) for l in p.stdout.splitlines() if " " in l)


# --------------------------------------------------------------------------- expectations

def expect_in_without_code(login, stdout, prompts):
    """In, asked only prompts (kinds), no text sent, the module never ran."""
    check(login.status == 0 and login.stdout.strip() == stdout, f"not in: {login}")
    check(ri.prompt_kinds(login) == prompts, f"prompts {login.prompts!r}, want {prompts}")
    check(not login.sms and not login.requests,
          f"{len(login.sms)} SMS, {len(login.requests)} requests: {login}")
    check(not login.any_module_log(), f"the module ran: {login.any_module_log()!r}")


def expect_asked(login, service_name, user, stdout, phone, prompts=("password", "sms")):
    ri.expect_success(login, service_name, user, stdout)
    ri.expect_prompts(login, list(prompts), phone[-4:])


def expect_not_in(login, what):
    check(login.status not in (0, "timeout") and ri.SSH_USER not in login.stdout,
          f"{what}: got in: {login}")


# --------------------------------------------------------------------------- the page itself

@case
def every_recipe_block_tested(h):
    """Every marked block of docs/recipes.md is one this suite reads, and the other way
    round: a new recipe cannot go untested."""
    got = set(blocks())
    check(got == set(BLOCKS), f"docs/recipes.md marks {sorted(got)}, the suite tests "
                              f"{sorted(BLOCKS)}")


# --------------------------------------------------------------------------- exempt group

def exempt_group(h):
    """GROUP, with SSH_USER as its member (made once; removed at the end). A killed run's
    group is taken over only when it holds nobody but this suite's users."""
    if getattr(h, "exempt_group", None):
        return GROUP
    with contextlib.suppress(KeyError):
        left = grp.getgrnam(GROUP)
        check(set(left.gr_mem) <= set(ri.TEST_USERS),
              f"group {GROUP} exists with members {left.gr_mem}: not ours; not touching it")
        sh(["groupdel", GROUP])
    h.cleanups.add(lambda: sh(["groupdel", GROUP], ok=(0, 6)))  # 6: no such group
    sh(["groupadd", GROUP])
    sh(["gpasswd", "-a", ri.SSH_USER, GROUP])
    h.exempt_group = GROUP
    return GROUP


def sudo_with(h, lines, name, user):
    bind = (service(h, name, ri.SUDO_PAM, lines), ri.SUDO_PAM)
    return h.run_as(user, SUDO_ID, bind, password=h.passwords[user])


@case
def exempt_group_member_not_asked(h):
    lines = recipe("exempt-group.pam", ("sms-exempt", exempt_group(h)))
    login = sudo_with(h, lines, "exempt-group", ri.SSH_USER)
    expect_in_without_code(login, "root", ["password"])
    check(any(f'requirement "user ingroup {GROUP}" was met by user "{ri.SSH_USER}"' in l
              for l in login.logs), f"the skip is not logged: {login.logs!r}")


@case
def exempt_group_outside_asked(h):
    lines = recipe("exempt-group.pam", ("sms-exempt", exempt_group(h)))
    login = sudo_with(h, lines, "exempt-group", ri.SUDO_USER)
    expect_asked(login, "sudo", ri.SUDO_USER, "root", ri.SUDO_PHONE)


@case
def exempt_group_missing_asks_members(h):
    """The group misspelt or gone: its member is asked like everyone."""
    exempt_group(h)
    lines = recipe("exempt-group.pam", ("sms-exempt", "tsms-test-no-such-group"))
    login = sudo_with(h, lines, "exempt-group-missing", ri.SSH_USER)
    expect_asked(login, "sudo", ri.SSH_USER, "root", ri.SSH_PHONE)


# --------------------------------------------------------------------------- trusted network

def access_file(h, name, lines=None):
    """TMP/access-sms-exempt-NAME.conf, with the page's lines (the range made RANGE) or
    lines; lines False: the path, no file there."""
    path = h.tmp / f"access-sms-exempt-{name}.conf"
    if lines is None:
        lines = recipe("trusted-network.access", ("10.8.0.0/24", RANGE))
    if lines is not False:
        path.write_text("".join(l + "\n" for l in lines))
        path.chmod(0o644)
    return path


def trusted_pam(access):
    """The page's pam.d lines, reading the access file access."""
    return recipe("trusted-network.pam", ("/etc/security/access-sms-exempt.conf", str(access)))


def trusted_network(h, name, lines=None):
    """The service file of the page's pam.d lines with access_file(h, name, lines); the sshd
    of variant "trusted" has the README's drop-in and the page's sshd_config lines."""
    h.drop_ins["trusted"] = ((ri.CONF / "sshd_config.snippet").read_text(encoding="utf-8") +
                             "\n".join(recipe("trusted-network.sshd_config")) + "\n")
    return service(h, f"trusted-{name}", ri.PAM_DIR / "sshd",
                   trusted_pam(access_file(h, name, lines)))


@case
def trusted_network_not_asked(h):
    login = h.ssh("trusted", service=trusted_network(h, "page"), source=INSIDE)
    expect_in_without_code(login, ri.SSH_USER, ["password"])
    check(any(f"access denied for user `{ri.SSH_USER}' from `{INSIDE}'" in l
              for l in login.logs), f"pam_access did not log the skip: {login.logs!r}")


@case
def outside_the_range_asked(h):
    login = h.ssh("trusted", service=trusted_network(h, "page"), source=OUTSIDE)
    expect_asked(login, ri.SSHD_SERVICE, ri.SSH_USER, ri.SSH_USER, ri.SSH_PHONE)
    line = ri.outcome_line(login, ri.SSHD_SERVICE)
    check(f"rhost={OUTSIDE} " in line, f"not from {OUTSIDE}: {line!r}")


@case
def trusted_network_file_missing_or_empty_asks(h):
    """From inside the range, with no access file at the path, and with an empty one."""
    for what, lines in (("no access file", False), ("an empty access file", [])):
        name = "missing" if lines is False else "empty"
        login = h.ssh("trusted", service=trusted_network(h, name, lines), source=INSIDE)
        check(login.status == 0, f"{what}: not in: {login}")
        expect_asked(login, ri.SSHD_SERVICE, ri.SSH_USER, ri.SSH_USER, ri.SSH_PHONE)


@case
def trusted_network_under_sudo_asks(h):
    """sudo sets no PAM_RHOST: pam_access compares a terminal or service name, which the
    range does not match."""
    lines = trusted_pam(access_file(h, "sudo"))
    login = sudo_with(h, lines, "trusted-sudo", ri.SUDO_USER)
    expect_asked(login, "sudo", ri.SUDO_USER, "root", ri.SUDO_PHONE)


# --------------------------------------------------------------------------- key and code

def key_and_code(h, name="page", module_args=()):
    """The service file of the page's key-and-code.pam; the sshd of variant "keycode" has
    the page's sshd_config lines as its whole drop-in."""
    h.drop_ins["keycode"] = "\n".join(recipe("key-and-code.sshd_config")) + "\n"
    lines = recipe("key-and-code.pam")
    check(not any("common-auth" in l for l in lines), f"common-auth in {lines}")
    return service(h, f"keycode-{name}", ri.PAM_DIR / "sshd", lines, module_args)


@case
def key_and_code_without_password(h):
    svc = key_and_code(h)
    _, config = h.sshd("keycode", service=svc)
    want = {"usepam": "yes", "kbdinteractiveauthentication": "yes",
            "passwordauthentication": "no",
            "authenticationmethods": "publickey,keyboard-interactive"}
    got = sshd_settings(config)
    wrong = {k: got.get(k) for k, v in want.items() if got.get(k) != v}
    check(not wrong, f"sshd -T gives {wrong}, want {want}")
    login = h.ssh("keycode", service=svc, key="client_key",
                  methods="publickey,keyboard-interactive")
    expect_asked(login, ri.SSHD_SERVICE, ri.SSH_USER, ri.SSH_USER, ri.SSH_PHONE, ["sms"])


@case
def key_and_wrong_code_refused(h):
    login = h.ssh("keycode", service=key_and_code(h), key="client_key",
                  methods="publickey,keyboard-interactive", code="wrong")
    ri.expect_refused(login, ri.SSHD_SERVICE, ri.SSH_USER, ["PAM_MAXTRIES"], sms=1)
    ri.expect_prompts(login, ["sms", "wrong-sms", "wrong-sms"], ri.SSH_PHONE[-4:])


@case
def code_without_key_refused(h):
    """No key, the password method, an unauthorised key: refused before PAM asks anything."""
    svc = key_and_code(h)
    for what, key, methods in (("no key", None, "keyboard-interactive"),
                               ("the password method", None, "password"),
                               ("an unauthorised key", "other_key",
                                "publickey,keyboard-interactive")):
        login = h.ssh("keycode", service=svc, key=key, methods=methods)
        expect_not_in(login, f"with {what}")
        check(not login.prompts, f"with {what}: prompted {login.prompts!r}")
        check(not login.sms and not login.any_module_log(),
              f"with {what}: {len(login.sms)} SMS, module logs {login.any_module_log()!r}")


@case
def key_and_code_nullok_without_number_refused(h):
    """nullok and a user without a number: the module ignores it, the stack has no yes, and
    the key alone does not log in."""
    cfg = suite_config(h, "keycode-nullok", users={ri.SUDO_USER: ri.SUDO_PHONE})
    svc = key_and_code(h, "nullok", [f"config={cfg}", "nullok"])
    login = h.ssh("keycode", service=svc, key="client_key",
                  methods="publickey,keyboard-interactive")
    expect_not_in(login, "nullok, no number")
    check(not login.sms, f"{len(login.sms)} SMS")
    check(login.results(ri.SSHD_SERVICE) == ["PAM_IGNORE"],
          f"outcome lines {login.results(ri.SSHD_SERVICE)}, want PAM_IGNORE: {login.logs!r}")


# --------------------------------------------------------------------------- sudo's cache

def two_sudo(h, user, more_binds=()):
    """`sudo ... && sudo ...` from one shell (no terminal: the timestamp is the shell's), the
    README's sudo lines; the user's timestamps are removed before and after."""
    sh(["runuser", "-u", user, "--", "sudo", "-K"])
    try:
        return h.run_as(user, TWO_SUDO, (h.sudo_service(suite_config(h)), ri.SUDO_PAM),
                        password=h.passwords[user], more_binds=more_binds, passwords=2)
    finally:
        sh(["runuser", "-u", user, "--", "sudo", "-K"])


@case
def sudo_cached_credentials_skip_the_code(h):
    login = two_sudo(h, ri.SUDO_USER)
    expect_asked(login, "sudo", ri.SUDO_USER, "root\nroot", ri.SUDO_PHONE)


@case
def sudo_timestamp_timeout_0_asks_every_time(h):
    sudoers = h.tmp / "sudoers-every-time"
    sudoers.write_text(ri.SUDOERS_DROP_IN.read_text() +
                       "".join(l + "\n" for l in recipe("sudo-every-time.sudoers")))
    sudoers.chmod(0o440)
    sh(["visudo", "-c", "-q", "-f", str(sudoers)])
    login = two_sudo(h, ri.SUDO_USER, [(sudoers, ri.SUDOERS_DROP_IN)])
    check(login.status == 0 and login.stdout.strip() == "root\nroot", f"not in: {login}")
    ri.expect_prompts(login, ["password", "sms", "password", "sms"], ri.SUDO_PHONE[-4:])
    check(len(login.sms) == 2, f"{len(login.sms)} SMS sent, want 2: {login}")
    check(login.results("sudo") == ["PAM_SUCCESS", "PAM_SUCCESS"],
          f"outcome lines {login.results('sudo')}: {login.logs!r}")
    ri.check_no_secrets(login)


# --------------------------------------------------------------------------- main

def run(selected, verbose, tally):
    """run_integration's run, and then the group this suite makes must be gone."""
    ri.run(selected, verbose, tally)
    with contextlib.suppress(KeyError):
        grp.getgrnam(GROUP)
        tally.fail("cleanup (group)", f"group {GROUP} left behind")


if __name__ == "__main__":
    sys.exit(main("recipes", __doc__.splitlines()[0], run=run, prepare=ri.prepare,
                  time_limit=TOTAL_LIMIT, one_line=True, timed=True,
                  verbose_help="print each login's details"))
