#!/usr/bin/env python3
"""Tests of twilio-sms-otp backup-codes: new sets, --list, --revoke, and the backup codes
lines of status and check.

Each case writes a config (root, 0600) with backupCodesFile in its own directory, runs
./twilio-sms-otp in a new session and checks its exit status, its output and the file:
root's, 0600, one "USER HASH ..." line a user of Argon2id strings only, other lines kept,
no temp file left behind. No code ever reaches the file or any output but the stdout of the
run that made it; no hash and no auth token reaches any output; no request reaches the
Twilio sandbox.

Run as root:  python3 tests/cli/run_cli_backup.py [-k PATTERN] [-v]
Prints `PASS: name` or `FAIL: name: why` per case, then `cli backup: N passed, N failed`.
TSMS_TOOL=PATH tests another build of the command; TSMS_CLI_PREFIX runs it under a
command prefix (e.g. valgrind).
"""

import os
import pwd
import re
import sys
import time
from pathlib import Path

sys.dont_write_bytecode = True  # leave no __pycache__ in the tree
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from harness.cli import (CommandHarness, expect, expect_private,  # noqa: E402
                         prerequisite_problem)
from harness.core import case, check, main  # noqa: E402
from harness.system import write_file  # noqa: E402

SUITE_LIMIT = 300  # seconds for the whole suite (SIGALRM)
SYMBOL = "[2-9a-km-np-z]"  # 23456789abcdefghijkmnpqrstuvwxyz
CODE_RE = re.compile(rf"{SYMBOL}{{4}}-{SYMBOL}{{4}}")
# a code as shown anywhere in a text, and the 8 symbols of one (words such as "security"
# are 8 symbols too: only a code a run showed counts there)
SHOWN_IN_TEXT = re.compile(rf"(?<![\w-]){SYMBOL}{{4}}-{SYMBOL}{{4}}(?![\w-])", re.I)
PLAIN_IN_TEXT = re.compile(rf"(?<![\w-]){SYMBOL}{{8}}(?![\w-])", re.I)
HASH_RE = re.compile(r"\$argon2id\$v=19\$m=\d+,t=\d+,p=1\$[A-Za-z0-9+/]+\$[A-Za-z0-9+/]+")
NO_FILE_KEY = ('twilio-sms-otp: the config has no backupCodesFile; fix: add "backupCodesFile": '
               '"/etc/security/pam_twilio_sms.backup-codes"\n')
USAGE = "usage: twilio-sms-otp backup-codes"


class BackupHarness(CommandHarness):
    """The admin command's harness with a backupCodesFile in each case's directory, and
    every code a case was shown, to find it where it must not be."""

    def begin_case(self, name):
        super().begin_case(name)
        self.codes = set()

    @property
    def codes_path(self):
        return self.dir / "backup-codes"

    def config(self, **over):
        return super().config(**{"backupCodesFile": str(self.codes_path), **over})

    def codes_text(self):
        """The file's text, or None when it does not exist."""
        try:
            return self.codes_path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return None

    def write_codes(self, text, mode=0o600, uid=0):
        return write_file(self.codes_path, text, mode, uid)

    def generate(self, config, user, *options, count=10):
        """backup-codes USER OPTIONS..., which must print count codes and one line on
        stderr; returns (codes, the stderr line)."""
        res = self.run("backup-codes", user, *options, config=config)
        expect(res, 0)
        codes = res.out.splitlines()
        check(res.out == "".join(c + "\n" for c in codes), f"stdout {res.out!r}")
        check(len(codes) == count, f"{len(codes)} codes, want {count}: {res.out!r}")
        for code in codes:
            check(CODE_RE.fullmatch(code), f"code {code!r} is not xxxx-xxxx of the alphabet")
        check(len(set(codes)) == count, f"a code twice in {codes}")
        check(res.err.count("\n") == 1 and res.err.endswith("\n"),
              f"stderr is not one line: {res.err!r}")
        check(not self.codes & set(codes), "a code of an earlier set again")
        self.codes |= set(codes)
        return codes, res.err

    def after(self, res):
        super().after(res)
        check("$argon2id$" not in res.out + res.err, f"a hash in the output: {res.brief()}")
        # codes only on the stdout of the run that made them (generate() checks that)
        for name, text in (("stdout", res.out), ("stderr", res.err)):
            for word in SHOWN_IN_TEXT.findall(text):
                check(name == "stdout" and res.status == 0 and not self.shown(word),
                      f"a code {word!r} in {name}: {res.brief()}")
            for word in PLAIN_IN_TEXT.findall(text):
                check(not self.shown(word), f"the code {word!r} in {name}: {res.brief()}")
        text = self.codes_text() if self.codes_path.is_file() else None
        if text is not None:
            for code in self.codes:
                for form in (code, code.replace("-", "")):
                    check(form not in text.lower(), f"the code {code} in the file {text!r}")

    def shown(self, word):
        """True when word is one of the codes a run showed before this one."""
        plain = word.lower().replace("-", "")
        return any(plain == c.replace("-", "") for c in self.codes)


# --------------------------------------------------------------------------- file checks

def user_hashes(text):
    """{user: [hash, ...]} of a backup codes file's text; a user on two lines, a field that
    is not an Argon2id string or two blanks in a row fail the case."""
    rows = {}
    for line in (text or "").splitlines():
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        user, *hashes = line.split(" ")
        check(user not in rows, f"{user} on two lines: {text!r}")
        for h in hashes:
            check(HASH_RE.fullmatch(h), f"{user}'s line has {h!r}, not an Argon2id string")
        rows[user] = hashes
    return rows


def expect_file(h, want):
    """The file is root's, 0600, and has want ({user: number of hashes}) as its users;
    nothing but it and its lock beside it."""
    expect_private(h.codes_path)
    got = {u: len(v) for u, v in user_hashes(h.codes_text()).items()}
    check(got == want, f"users and hashes in the file {got}, want {want}")
    lock = h.codes_path.with_name(h.codes_path.name + ".lock")
    if lock.exists():
        expect_private(lock)
    extra = sorted(p for p in os.listdir(h.dir)
                   if p.startswith(h.codes_path.name) and p not in (h.codes_path.name, lock.name))
    check(extra == [], f"left behind: {extra}")


def generated_line(n, user, path, previous=0):
    noun = "backup code" if n == 1 else "backup codes"
    tail = f"; the previous {previous} no longer work" if previous else ""
    return f"{n} {noun} for {user}, each works once; only their hashes are kept in {path}{tail}\n"


def write_state(h, user):
    """A state file as the module writes it, so that status USER shows the whole view."""
    d = h.dir / "state"
    d.mkdir(mode=0o700, exist_ok=True)
    now = int(time.time())
    write_file(d / user, f"v1 window_start={now - 100} sends=1 last_send={now - 100} "
               "failures=0 locked_until=0\n")


def nobody():
    return pwd.getpwnam("nobody").pw_uid


# --------------------------------------------------------------------------- cases

# ---- usage

@case
def backup_help(h):
    for flag in ("--help", "-h"):
        res = h.run("backup-codes", flag, config=h.dir / "missing.json")
        expect(res, 0, out=["usage: twilio-sms-otp", "backup-codes USER [--count N]",
                            "backup-codes --list [USER]", "backup-codes --revoke USER",
                            "backupCodesFile"])
        check(res.err == "", f"stderr {res.err!r}")
    res = h.run("--help")
    expect(res, 0, out=["backup-codes"])


@case
def backup_usage_errors(h):
    config = h.write_config()
    for args in ([], ["alice", "bob"], ["--list", "alice", "bob"], ["--revoke"],
                 ["--revoke", "alice", "bob"], ["--list", "--revoke", "alice"],
                 ["--list", "--count", "3"], ["--revoke", "alice", "--count", "3"],
                 ["--bogus", "alice"], ["alice", "--bogus"], ["alice", "-c", "3"],
                 ["alice", "--count"]):
        res = h.run("backup-codes", *args, config=config)
        check(res.status == 2, f"backup-codes {' '.join(args)}: want exit 2, got {res.brief()}")
        check(USAGE in res.err, f"backup-codes {' '.join(args)}: no usage: {res.err!r}")
        check(res.out == "", f"backup-codes {' '.join(args)}: stdout {res.out!r}")
    check(not h.codes_path.exists(), "a usage error wrote the file")


@case
def backup_count_out_of_range(h):
    config = h.write_config()
    for value in ("0", "21", "x", "-1", "", "3x", " 3", "+3", "1e1", "0x3", "3.0",
                  "99999999999999999999", "4294967299"):
        for args in (["alice", "--count", value], [f"--count={value}", "alice"]):
            res = h.run("backup-codes", *args, config=config)
            expect(res, 2, err=["--count must be 1 to 20"])
            check(res.out == "", f"--count {value!r}: stdout {res.out!r}")
    check(not h.codes_path.exists(), "a bad --count wrote the file")


@case
def backup_user_names_refused(h):
    config = h.write_config()
    for user in ("a b", "#alice", "", "al\x01ice", "x" * 300, "a\tb"):
        for args in ([user], ["--list", user], ["--revoke", user]):
            res = h.run("backup-codes", *args, config=config)
            check(res.status == 2, f"backup-codes {args!r}: want exit 2, got {res.brief()}")
    check(not h.codes_path.exists(), "a bad user name wrote the file")


# ---- a new set

@case
def backup_generate_prints_codes(h):
    h.write_codes("# backup codes\n\nerin $argon2id$v=19$m=4096,t=2,p=1$6WLP8ff4vHyO7iA/GFF8HA$dGgK2Z/335/lpxMIO1Cq8ysokJLkArWzdsa5kVasok4\n")
    res_codes, line = h.generate(h.write_config(), "alice")
    check(line == generated_line(10, "alice", h.codes_path), f"stderr {line!r}")
    expect_file(h, {"erin": 1, "alice": 10})
    text = h.codes_text()
    check(text.startswith("# backup codes\n\nerin $argon2id$v=19$m=4096,t=2,p=1$6WLP8ff4vHyO7iA/GFF8HA$dGgK2Z/335/lpxMIO1Cq8ysokJLkArWzdsa5kVasok4\n"
                          "alice $argon2id$"), f"the file {text!r}")
    check(len(res_codes) == 10, "not 10 codes")


@case
def backup_generate_every_count(h):
    config = h.write_config()
    previous = 0
    for n in (1, 2, 19, 20):
        _, line = h.generate(config, "alice", "--count", str(n), count=n)
        check(line == generated_line(n, "alice", h.codes_path, previous), f"stderr {line!r}")
        expect_file(h, {"alice": n})
        previous = n
    # the option before the user, and --count=N
    h.generate(config, "--count", "3", "bob", count=3)
    h.generate(config, "--count=4", "dave", count=4)
    expect_file(h, {"alice": 20, "bob": 3, "dave": 4})


@case
def backup_generate_replaces_the_set(h):
    config = h.write_config()
    old, _ = h.generate(config, "alice")
    h.generate(config, "dave", "--count", "2", count=2)
    old_hashes = set(user_hashes(h.codes_text())["alice"])
    new, line = h.generate(config, "alice", "--count", "5", count=5)
    check(line == generated_line(5, "alice", h.codes_path, previous=10), f"stderr {line!r}")
    check(not set(old) & set(new), "an old code in the new set")
    new_hashes = set(user_hashes(h.codes_text())["alice"])
    check(not old_hashes & new_hashes, "an old hash is still in the file")
    expect_file(h, {"alice": 5, "dave": 2})
    res = h.run("backup-codes", "--list", "alice", config=config)
    expect(res, 0)
    check(res.out == "alice: 5 backup codes left\n", f"stdout {res.out!r}")
    _, line = h.generate(config, "alice")
    check(line == generated_line(10, "alice", h.codes_path, previous=5), f"stderr {line!r}")
    expect_file(h, {"alice": 10, "dave": 2})


@case
def backup_generate_creates_a_private_file(h):
    config = h.write_config()
    old = os.umask(0)
    try:
        h.generate(config, "alice", "--count", "1", count=1)
    finally:
        os.umask(old)
    expect_file(h, {"alice": 1})


@case
def backup_concurrent_generations(h):
    """Ten admins making sets at once, five of them for one user: every line lands once."""
    config = h.write_config()
    h.write_codes("# head\n")
    users = [f"user{i}" for i in range(10)] + ["alice"] * 5
    replaced = []
    for status, out, err in h.run_at_once([["backup-codes", u, "--count", "2"] for u in users],
                                          config, "backup-codes"):
        check(status == 0, f"exit {status}: {err!r}")
        codes = out.split()
        check(len(codes) == 2 and all(CODE_RE.fullmatch(c) for c in codes), f"stdout {out!r}")
        h.codes |= set(codes)
        m = re.search(r"the previous (\d+) no longer work", err)
        replaced.append(int(m.group(1)) if m else 0)
    expect_file(h, dict({u: 2 for u in users}))
    check(h.codes_text().startswith("# head\n"), "the head of the file changed")
    check(sorted(replaced[10:]) == [0, 2, 2, 2, 2], f"alice's sets replaced {replaced[10:]}")


@case
def backup_generate_to_a_full_stdout_fails(h):
    """Codes that could not be written out are no set: the command says so, exit non-zero."""
    config = h.write_config()
    with open("/dev/full", "wb") as full:
        res = h.run("backup-codes", "alice", config=config, stdout=full)
    check(res.status not in (0, None), f"exit {res.status} with stdout on /dev/full; "
          f"stderr {res.err!r}, file {h.codes_text()!r}")


# ---- --list and --revoke

@case
def backup_list(h):
    config = h.write_config()
    res = h.run("backup-codes", "--list", config=config)
    expect(res, 0)
    check(res.out == "no user has backup codes\n", f"stdout {res.out!r}")
    check(not h.codes_path.exists(), "--list created the file")
    h.write_codes("# only a comment\n\n")
    res = h.run("backup-codes", "--list", config=config)
    expect(res, 0)
    check(res.out == "no user has backup codes\n", f"stdout {res.out!r}")
    h.generate(config, "dave", "--count", "1", count=1)
    h.generate(config, "alice", "--count", "3", count=3)
    res = h.run("backup-codes", "--list", config=config)
    expect(res, 0)
    check(res.out == "dave: 1 backup code left\nalice: 3 backup codes left\n",
          f"stdout {res.out!r}")
    for user, status, want in (("alice", 0, "alice: 3 backup codes left\n"),
                               ("dave", 0, "dave: 1 backup code left\n"),
                               ("carol", 1, "carol: no backup codes\n"),
                               ("alic", 1, "alic: no backup codes\n")):
        res = h.run("backup-codes", "--list", user, config=config)
        expect(res, status)
        check(res.out == want, f"--list {user}: stdout {res.out!r}, want {want!r}")
        check(res.err == "", f"--list {user}: stderr {res.err!r}")
    expect_file(h, {"dave": 1, "alice": 3})


@case
def backup_revoke(h):
    config = h.write_config()
    res = h.run("backup-codes", "--revoke", "alice", config=config)
    expect(res, 1)
    check(res.out == "alice: no backup codes to revoke\n", f"stdout {res.out!r}")
    check(not h.codes_path.exists(), "--revoke created the file")
    h.write_codes("# head\n")
    h.generate(config, "alice", "--count", "3", count=3)
    h.generate(config, "dave", "--count", "1", count=1)
    res = h.run("backup-codes", "--revoke", "alice", config=config)
    expect(res, 0)
    check(res.out == "alice: 3 backup codes revoked\n", f"stdout {res.out!r}")
    expect_file(h, {"dave": 1})
    check(h.codes_text().startswith("# head\ndave $argon2id$"), f"the file {h.codes_text()!r}")
    before = h.codes_text()
    res = h.run("backup-codes", "--revoke", "alice", config=config)
    expect(res, 1)
    check(res.out == "alice: no backup codes to revoke\n", f"stdout {res.out!r}")
    check(h.codes_text() == before, "the file changed")
    res = h.run("backup-codes", "--revoke", "dave", config=config)
    expect(res, 0)
    check(res.out == "dave: 1 backup code revoked\n", f"stdout {res.out!r}")
    res = h.run("backup-codes", "--list", config=config)
    expect(res, 0)
    check(res.out == "no user has backup codes\n", f"stdout {res.out!r}")
    expect_file(h, {})
    check(h.codes_text() == "# head\n", f"the file {h.codes_text()!r}")


# ---- the config and the file

@case
def backup_without_backup_codes_file(h):
    config = h.write_config(h.config(backupCodesFile=None))
    for args in (["alice"], ["alice", "--count", "3"], ["--list"], ["--list", "alice"],
                 ["--revoke", "alice"]):
        res = h.run("backup-codes", *args, config=config)
        expect(res, 1, requests=0)
        check(res.err == NO_FILE_KEY, f"backup-codes {' '.join(args)}: stderr {res.err!r}")
        check(res.out == "", f"stdout {res.out!r}")
    write_state(h, "alice")
    res = h.run("status", "alice", config=config)
    expect(res, 0)
    check("backup codes" not in res.out, f"status without backupCodesFile: {res.out!r}")
    h.write_users("dave +15555550100\n")
    res = h.run("check", config=config)
    expect(res, 0, out=["OK"])
    check("backupCodesFile" not in res.out, f"check without backupCodesFile: {res.out!r}")


@case
def backup_config_errors(h):
    h.write_users("dave +15555550100\n")
    bad = {
        "relative": (h.config(backupCodesFile="backup-codes"),
                     'backupCodesFile "backup-codes" is not an absolute path; fix: give the '
                     'full path, e.g. /etc/security/pam_twilio_sms.backup-codes'),
        "same": (h.config(backupCodesFile=str(h.users_path)),
                 f'backupCodesFile and usersFile are the same file "{h.users_path}'),
    }
    for tag, (cfg, message) in bad.items():
        config = h.write_config(cfg, name=f"{tag}.json")
        res = h.run("backup-codes", "alice", config=config)
        expect(res, 1, err=[message])
        check(res.out == "", f"{tag}: stdout {res.out!r}")
        res = h.run("check", config=config)
        expect(res, 1, out=["problem: ", message])
    check(h.users_path.read_text() == "dave +15555550100\n", "the users file changed")
    check(not h.codes_path.exists(), "the file was written")


def unsafe_file_case(name, make, needle):
    """Registers backup_refuses_NAME: make(h) leaves an unsafe file at the path (returns what
    to compare afterwards); every command that reads or writes it exits 1 with an error that
    names backupCodesFile, the path, needle and a fix, and leaves it as it was."""
    def fn(h):
        config = h.write_config()
        h.write_users("dave +15555550100\n")
        h.generate(config, "alice", "--count", "2", count=2)
        target = make(h)
        before = os.lstat(h.codes_path)
        target_text = Path(target).read_text() if target else None
        for args in (["backup-codes", "alice"], ["backup-codes", "--list"],
                     ["backup-codes", "--list", "alice"], ["backup-codes", "--revoke", "alice"]):
            res = h.run(*args, config=config)
            expect(res, 1, err=["twilio-sms-otp: backupCodesFile ", str(h.codes_path), needle,
                                "fix:"])
            check(res.out == "", f"{' '.join(args)}: stdout {res.out!r}")
        res = h.run("check", config=config)
        expect(res, 1, out=[f"problem: backupCodesFile {h.codes_path}", needle])
        res = h.run("status", "alice", config=config)
        check(not re.search(r"backup codes: +\d+ left", res.out),
              f"status counted codes of an unsafe file: {res.out!r}")
        after = os.lstat(h.codes_path)
        check((after.st_ino, after.st_mode, after.st_uid) ==
              (before.st_ino, before.st_mode, before.st_uid), "the unsafe file was replaced")
        if target:
            check(Path(target).read_text() == target_text, "the symlink's target changed")
    fn.__name__ = f"backup_refuses_{name}"
    case(fn)


def _world_readable(h):
    os.chmod(h.codes_path, 0o644)


def _group_readable(h):
    os.chmod(h.codes_path, 0o640)


def _not_root_owned(h):
    os.chown(h.codes_path, nobody(), 0)


def _symlink(h):
    real = h.dir / "real-backup-codes"
    os.rename(h.codes_path, real)
    h.codes_path.symlink_to(real)
    return real


unsafe_file_case("world_readable_file", _world_readable, "0644")
unsafe_file_case("group_readable_file", _group_readable, "0640")
unsafe_file_case("file_of_another_uid", _not_root_owned, f"owned by uid {nobody()}, not root")
unsafe_file_case("symlinked_file", _symlink, "symbolic link")


@case
def backup_user_on_two_lines(h):
    """The module refuses a user on two lines: --list USER and check say so; a new set
    (or a revoke) repairs the file, the later line goes."""
    config = h.write_config()
    h.write_users("erin +15555550101\n")
    h.generate(config, "alice", "--count", "2", count=2)
    line = h.codes_text()
    dave = "dave $argon2id$v=19$m=4096,t=2,p=1$6WLP8ff4vHyO7iA/GFF8HA$dGgK2Z/335/lpxMIO1Cq8ysokJLkArWzdsa5kVasok4\n"
    text = line + dave + line
    h.write_codes(text)
    res = h.run("backup-codes", "--list", "alice", config=config)
    expect(res, 1, err=["backupCodesFile", '"alice"', "fix:"])
    res = h.run("check", config=config)
    expect(res, 1, out=["problem: backupCodesFile", "alice"])
    check(h.codes_text() == text, "the file changed")
    _, err = h.generate(config, "alice")
    check(err == generated_line(10, "alice", h.codes_path, previous=2), f"stderr {err!r}")
    expect_file(h, {"alice": 10, "dave": 1})
    check(h.codes_text().endswith("\n" + dave), f"the file {h.codes_text()!r}")
    h.write_codes(text)
    res = h.run("backup-codes", "--revoke", "alice", config=config)
    expect(res, 0)
    check(res.out == "alice: 2 backup codes revoked\n", f"stdout {res.out!r}")
    check(h.codes_text() == dave, f"the file {h.codes_text()!r}")


# ---- status and check

@case
def backup_status_shows_codes_left(h):
    config = h.write_config()
    write_state(h, "alice")
    res = h.run("status", "alice", config=config)
    expect(res, 0, out=["user:          alice\n", "backup codes:  0 left\n"])
    h.generate(config, "alice", "--count", "4", count=4)
    res = h.run("status", "alice", config=config)
    expect(res, 0, out=["backup codes:  4 left\n"])
    h.run("backup-codes", "--revoke", "alice", config=config)
    res = h.run("status", "alice", config=config)
    expect(res, 0, out=["backup codes:  0 left\n"])


@case
def backup_check_mentions_the_file(h):
    h.write_users("dave +15555550100\n")
    config = h.write_config()
    res = h.run("check", config=config)
    expect(res, 0, out=["OK", f"backupCodesFile {h.codes_path}"], sms=0)
    check(not h.codes_path.exists(), "check created the file")
    h.generate(config, "alice", "--count", "2", count=2)
    h.generate(config, "dave", "--count", "1", count=1)
    res = h.run("check", config=config)
    expect(res, 0, out=["OK", f"backupCodesFile {h.codes_path}: 2 users with codes\n"],
           sms=0)
    h.run("backup-codes", "--revoke", "dave", config=config)
    res = h.run("check", config=config)
    expect(res, 0, out=[f"backupCodesFile {h.codes_path}: 1 user with codes\n"])


# --------------------------------------------------------------------------- main

def setup(cleanups, verbose):
    return BackupHarness.start(cleanups, verbose, "tsms-cli-backup-")


if __name__ == "__main__":
    sys.exit(main("cli backup", __doc__.splitlines()[0], setup=setup,
                  prepare=lambda: prerequisite_problem("backup codes files"), time_limit=SUITE_LIMIT, timed=True,
                  verbose_help="print every command run and its output"))
