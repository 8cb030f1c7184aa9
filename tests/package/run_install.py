#!/usr/bin/env python3
"""Tests of `make install` and `make uninstall` into a DESTDIR, against the README.

Each case runs `make install` (and `make uninstall`) of this tree into its own DESTDIR, a
directory under one temporary directory /tmp/tsms-install.XXXXXX that is removed at the end.
The files installed must be exactly the paths of the README's "Installed:" table (## Files)
whose "Made by" column starts with `make install` (rows made by the module or by
`twilio-sms-otp enroll` at run time are not make's), with the modes of its "Mode" column;
`<triplet>` in a path is the compiler's multiarch triplet (`cc -print-multiarch`, as the
Makefile asks) and `$(PREFIX)` is /usr. The installed command must run, the installed man
pages must render without warnings (man-db, installed by tests/install-deps.sh when missing),
a second install must keep an edited config and users file, and `make uninstall` must leave
only the config and the users file.
Directories that install created stay after uninstall, by design: they are shared ones
(/usr/sbin, man8, ...), and the cases check that they stay.

Run as root:  python3 tests/package/run_install.py [-k PATTERN] [-v]
Prints `PASS: name` or `FAIL: name: why` per case, then `install: N passed, N failed`.
"""

import json
import os
import re
import shutil
import stat
import subprocess
import sys
import tempfile
from pathlib import Path

sys.dont_write_bytecode = True  # leave no __pycache__ in the tree
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from harness.core import REPO, CaseFailure, Tally, case, check, main, run_all  # noqa: E402
from harness.system import install_debs  # noqa: E402

README = REPO / "README.md"
CONFIG = "/etc/security/pam_twilio_sms.json"
USERS = "/etc/security/pam_twilio_sms.users"
COMMAND = "/usr/sbin/twilio-sms-otp"
PREFIX = "/usr"
DEBS = ("man-db", "groff-base")
TMP_PREFIX = "tsms-install."
MAKE_LIMIT = 300.0    # seconds for one make (it may rebuild the module and the command first)
RUN_LIMIT = 30.0      # seconds for one run of the installed command or of man
SUITE_LIMIT = 600
# What the issue asks make install for, whatever the README says: path -> mode (all root:root)
REQUIRED = {
    "/lib/<triplet>/security/pam_twilio_sms.so": 0o644,
    COMMAND: 0o755,
    "/usr/share/man/man8/pam_twilio_sms.8": 0o644,
    "/usr/share/man/man8/twilio-sms-otp.8": 0o644,
    "/usr/share/man/man5/pam_twilio_sms.json.5": 0o644,
    CONFIG: 0o600,
    USERS: 0o600,
}
# installed path -> the file of this tree it must be a copy of (None: empty)
SOURCES = {
    "/lib/<triplet>/security/pam_twilio_sms.so": "pam_twilio_sms.so",
    COMMAND: "twilio-sms-otp",
    "/usr/share/man/man8/pam_twilio_sms.8": "conf/pam_twilio_sms.8",
    "/usr/share/man/man8/twilio-sms-otp.8": "conf/twilio-sms-otp.8",
    "/usr/share/man/man5/pam_twilio_sms.json.5": "conf/pam_twilio_sms.json.5",
    CONFIG: "conf/pam_twilio_sms.json",
    USERS: None,
}
# variables of the caller that would steer make: the cases set what they mean
MAKE_ENV_DROP = ("DESTDIR", "PREFIX", "SBINDIR", "MANDIR", "PAMDIR", "SYSCONFDIR", "MAKEFLAGS",
                 "MFLAGS", "MAKELEVEL", "MAKEOVERRIDES", "GNUMAKEFLAGS")


# --------------------------------------------------------------------------- the README table

class Row:
    def __init__(self, paths, mode, made_by):
        self.paths = paths      # the backquoted paths of the Path column, as written
        self.mode = mode        # the Mode column's octal mode, or None
        self.made_by = made_by  # the Made by column as written

    @property
    def by_make(self):
        return self.made_by.startswith("`make install`")


def split_row(line):
    """The cells of a Markdown table row (no `|` inside cells here)."""
    return [c.strip() for c in line.strip().strip("|").split("|")]


def installed_table(text):
    """The rows of the table after the line "Installed:" in the ## Files section. Raises
    CaseFailure when the section, the line, the table or one of its columns is missing."""
    files = re.search(r"^## Files\n(.*?)(?=^## |\Z)", text, re.S | re.M)
    check(files, "the README has no ## Files section")
    lines = files.group(1).splitlines()
    check("Installed:" in lines, "the README's ## Files section has no line \"Installed:\"")
    i = lines.index("Installed:") + 1
    while i < len(lines) and not lines[i].strip():
        i += 1
    table = []
    while i < len(lines) and lines[i].startswith("|"):
        table.append(lines[i])
        i += 1
    check(len(table) >= 3, "no table after \"Installed:\" in the README")
    head = split_row(table[0])
    for col in ("Path", "Mode", "Made by"):
        check(col in head, f"the README's Installed table has no column {col!r}: {head}")
    rows = []
    for line in table[2:]:
        cells = dict(zip(head, split_row(line)))
        paths = re.findall(r"`([^`]+)`", cells.get("Path", ""))
        check(paths, f"a row of the README's Installed table names no path: {line}")
        mode = re.search(r"\b0[0-7]{3}\b", cells.get("Mode", ""))
        rows.append(Row(paths, int(mode.group(0), 8) if mode else None, cells["Made by"]))
    return rows


def expand(path, triplet, pamdir=None):
    """A README path as installed with PREFIX=/usr: `<triplet>` and `$(PREFIX)` replaced, the
    module's directory replaced by pamdir when one is given."""
    path = path.replace("$(PREFIX)", PREFIX).replace("<triplet>", triplet)
    default_pamdir = f"/lib/{triplet}/security"
    if pamdir and path.startswith(default_pamdir + "/"):
        path = pamdir + path[len(default_pamdir):]
    return path


def make_paths(rows, triplet, pamdir=None):
    """{installed path: mode from the README} of the rows made by `make install`."""
    return {expand(p, triplet, pamdir): r.mode for r in rows if r.by_make for p in r.paths}


def differences(expected, installed):
    """What separates the README's paths from the installed ones, as sentences (none: equal)."""
    out = [f"{p} is in the README's Installed table but not installed"
           for p in sorted(set(expected) - set(installed))]
    out += [f"{p} is installed but not in the README's Installed table (as made by `make "
            f"install`)" for p in sorted(set(installed) - set(expected))]
    return out


# --------------------------------------------------------------------------- harness

class Result:
    def __init__(self, cmd, proc):
        self.cmd = cmd
        self.status = proc.returncode
        self.out = proc.stdout
        self.err = proc.stderr

    def brief(self):
        return f"{' '.join(self.cmd)}: exit {self.status}, stdout {self.out[-600:]!r}, " \
               f"stderr {self.err[-600:]!r}"


class Harness:
    def __init__(self, tmp, triplet, verbose):
        self.tmp = Path(tmp)
        self.triplet = triplet
        self.verbose = verbose
        self.case = "case"

    def begin_case(self, name):
        self.case = name

    @property
    def readme_rows(self):
        return installed_table(README.read_text(encoding="utf-8"))

    def destdir(self, name=""):
        """A new, empty DESTDIR of the case (root, 0755 like a real root)."""
        d = self.tmp / (self.case + (f"-{name}" if name else ""))
        d.mkdir(mode=0o755)
        d.chmod(0o755)
        return d

    def run(self, cmd, limit=RUN_LIMIT, env=None, cwd=None):
        try:
            proc = subprocess.run([str(c) for c in cmd], capture_output=True, text=True,
                                  timeout=limit, env=env, cwd=cwd, stdin=subprocess.DEVNULL)
        except subprocess.TimeoutExpired:
            raise CaseFailure(f"still running after {limit:.0f}s: {cmd!r}") from None
        res = Result([str(c) for c in cmd], proc)
        if self.verbose:
            print(f"  $ {' '.join(res.cmd)}\n  exit {res.status}\n{res.out}{res.err}", flush=True)
        return res

    def make(self, target, destdir, pamdir=True, extra=()):
        """`make TARGET DESTDIR=destdir PREFIX=/usr [PAMDIR=/lib/<triplet>/security]`; the
        Result, after checking that it exited 0. pamdir=False leaves PAMDIR to the Makefile."""
        destdir = Path(destdir)
        # never the real system: DESTDIR is always one of ours
        if not (destdir.is_absolute() and destdir.parent == self.tmp and
                destdir.parent.name.startswith(TMP_PREFIX)):
            raise RuntimeError(f"refusing DESTDIR {destdir!s}")
        env = {k: v for k, v in os.environ.items() if k not in MAKE_ENV_DROP}
        cmd = ["make", "--no-print-directory", "-C", REPO, target, f"DESTDIR={destdir}",
               f"PREFIX={PREFIX}", *extra]
        if pamdir:
            cmd.append(f"PAMDIR=/lib/{self.triplet}/security")
        res = self.run(cmd, limit=MAKE_LIMIT, env=env)
        check(res.status == 0, res.brief())
        return res

    def default_pamdir(self):
        """The Makefile's PAMDIR when none is given."""
        env = {k: v for k, v in os.environ.items() if k not in MAKE_ENV_DROP}
        res = self.run(["make", "-s", "--no-print-directory", "-C", REPO, "--eval",
                        "tsms-print-pamdir: ; @echo '$(PAMDIR)'", "tsms-print-pamdir"], env=env)
        check(res.status == 0 and res.out.strip().startswith("/"), res.brief())
        return res.out.strip()


def tree(destdir):
    """{"/path": lstat} of every non-directory under destdir, and the set of directories."""
    files, dirs = {}, set()
    for root, dirnames, filenames in os.walk(destdir):
        rel = "/" + os.path.relpath(root, destdir)
        dirs.add(os.path.normpath(rel))
        for n in filenames + [d for d in dirnames if os.path.islink(os.path.join(root, d))]:
            files[os.path.normpath(f"{rel}/{n}")] = os.lstat(os.path.join(root, n))
    return files, dirs


def at(destdir, path):
    return Path(str(destdir) + path)


def required(h):
    return {expand(p, h.triplet): m for p, m in REQUIRED.items()}


# --------------------------------------------------------------------------- cases

@case
def install_matches_readme(h):
    """PREFIX=/usr PAMDIR=/lib/<triplet>/security: exactly the README's make-install paths."""
    d = h.destdir()
    h.make("install", d)
    files, _ = tree(d)
    expected = make_paths(h.readme_rows, h.triplet)
    diff = differences(expected, files)
    check(not diff, "; ".join(diff))
    missing = sorted(set(required(h)) - set(files))
    check(not missing, f"the issue's files not installed (README agrees): {missing}")


@case
def install_default_pamdir_matches_readme(h):
    """No PAMDIR: the Makefile's default, which the README gives as /lib/<triplet>/security."""
    pamdir = h.default_pamdir()
    # from pkg-config pam, else /lib/<triplet>/security; /usr/lib/... is the same with merged /usr
    check(pamdir in (f"/lib/{h.triplet}/security", f"/usr/lib/{h.triplet}/security"),
          f"the Makefile's default PAMDIR {pamdir} is not the README's /lib/{h.triplet}/security")
    d = h.destdir()
    h.make("install", d, pamdir=False)
    files, _ = tree(d)
    diff = differences(make_paths(h.readme_rows, h.triplet, pamdir), files)
    check(not diff, f"PAMDIR {pamdir}: " + "; ".join(diff))


@case
def modes_owners_and_contents(h):
    """Regular files, root:root, the README's modes and the issue's; copies of this tree, the
    users file empty."""
    d = h.destdir()
    h.make("install", d)
    files, _ = tree(d)
    readme = make_paths(h.readme_rows, h.triplet)
    sources = {expand(p, h.triplet): s for p, s in SOURCES.items()}
    bad = []
    for path, want in sorted(required(h).items()):
        st = files.get(path)
        if st is None:
            bad.append(f"{path} not installed")
            continue
        mode = stat.S_IMODE(st.st_mode)
        if not stat.S_ISREG(st.st_mode):
            bad.append(f"{path} is not a regular file")
        if mode != want:
            bad.append(f"{path} mode {mode:04o}, want {want:04o}")
        if path in readme and readme[path] != mode:
            bad.append(f"{path} mode {mode:04o}, the README says "
                       f"{'nothing' if readme[path] is None else format(readme[path], '04o')}")
        if (st.st_uid, st.st_gid) != (0, 0):
            bad.append(f"{path} owned by {st.st_uid}:{st.st_gid}, want 0:0")
        source = sources[path]
        if at(d, path).read_bytes() != (b"" if source is None else (REPO / source).read_bytes()):
            bad.append(f"{path} differs from {source or 'an empty file'}")
    check(not bad, "; ".join(bad))


@case
def installed_command_runs(h):
    """--help; check of the example config: every placeholder and example user flagged in
    one run, and nothing else (its owner and mode pass); with them replaced it is accepted
    (--offline: no request to Twilio from the test)."""
    d = h.destdir()
    h.make("install", d)
    tool, config = at(d, COMMAND), at(d, CONFIG)
    res = h.run([tool, "--help"])
    check(res.status == 0 and res.out.startswith("usage: twilio-sms-otp") and not res.err,
          f"--help: {res.brief()}")
    for command in ("check", "test", "enroll", "unenroll", "list"):
        check(f"\n  {command} " in res.out, f"--help does not list {command}: {res.out!r}")

    res = h.run([tool, "--config", config, "check"])
    lines = res.out.splitlines()
    want = [f"problem: config {config}: {key} is the example's placeholder"
            for key in ("accountSID", "authToken", "fromMessagingServiceSID")]
    want += [f"problem: config {config}: users.{user} is the example's user"
             for user in ("alice", "bob")]
    check(res.status == 1 and not res.err, f"check of the example: {res.brief()}")
    check(len(lines) == 7 and all(l.startswith(w) for l, w in zip(lines, want))
          and lines[5] == "Twilio: not verified: the config has problems"
          and lines[6] == f"{config}: 5 problems; the PAM module would refuse this config "
          "(PAM_SERVICE_ERR)", f"check of the example, not its placeholders alone: {res.out!r}")

    cfg = json.loads(config.read_text(encoding="utf-8"))
    cfg.update(accountSID="AC" + "0123456789abcdef" * 2, authToken="0123456789abcdef" * 2,
               fromMessagingServiceSID="MG" + "fedcba9876543210" * 2, stateDir=f"{d}/state",
               users={"dave": "+15555550100"})
    config.write_text(json.dumps(cfg, indent=2), encoding="utf-8")  # keeps root 0600
    res = h.run([tool, "--config", config, "check", "--offline"])
    check(res.status == 0 and not res.err and res.out == (
        "Twilio: not verified (--offline)\n"
        f"{config}: OK: 1 user in the config, no usersFile, 3 templates, "
        "SignIn template \"SignIn\"\n"), f"check of the example, edited: {res.brief()}")


@case
def man_pages_render_without_warnings(h):
    """man --warnings -l of each installed page: its title, no warning (and a broken page
    does warn, so the check can fail)."""
    d = h.destdir()
    h.make("install", d)
    env = {**os.environ, "MANWIDTH": "80", "MANPAGER": "cat", "PAGER": "cat",
           "LC_ALL": "C.UTF-8"}
    pages = sorted(p for p in make_paths(h.readme_rows, h.triplet) if "/share/man/" in p)
    check(len(pages) == 3, f"the README names {len(pages)} man pages: {pages}")
    for page in pages:
        name, section = Path(page).name.rsplit(".", 1)
        res = h.run(["man", "--warnings", "-l", at(d, page)], env=env)
        check(res.status == 0 and not res.err.strip(), f"{page}: {res.brief()}")
        check(res.out.startswith(f"{name.upper()}({section})") and "\nNAME\n" in res.out,
              f"{page}: not its man page: {res.out[:200]!r}")
    broken = h.tmp / f"{h.case}-broken.8"
    broken.write_text(".TH BROKEN 8\n.SH NAME\nbroken \\- a canary\n.NOSUCHMACRO x\n")
    res = h.run(["man", "--warnings", "-l", broken], env=env)
    check("warning" in res.err, f"a broken page gave no warning: {res.brief()}")


@case
def second_install_keeps_edited_config(h):
    """An edited config (root 0400) survives a second install, which says so and installs
    the rest again."""
    d = h.destdir()
    h.make("install", d)
    config = at(d, CONFIG)
    edited = config.read_text(encoding="utf-8").replace("alice", "carol")
    check(edited != config.read_text(encoding="utf-8"), "the example has no user alice")
    config.write_text(edited, encoding="utf-8")
    config.chmod(0o400)
    at(d, COMMAND).unlink()
    res = h.make("install", d)
    check(f"keeping the existing {config}" in res.out, f"no word of the kept config: {res.out!r}")
    st = config.stat()
    check(config.read_text(encoding="utf-8") == edited, "the edited config was overwritten")
    check(stat.S_IMODE(st.st_mode) == 0o400, f"config mode now {stat.S_IMODE(st.st_mode):04o}")
    check(at(d, COMMAND).is_file(), "the second install did not install the command again")


@case
def second_install_keeps_users_file(h):
    """The users file is made empty, root 0600, so that a config naming it before the first
    enroll refuses no one; a second install keeps an enrolled one byte for byte (and its
    mode), and a link there, even a dangling one, is left alone."""
    d = h.destdir()
    h.make("install", d)
    users = at(d, USERS)
    check(os.path.lexists(users), f"{users} not installed")
    st = users.lstat()
    check(stat.S_ISREG(st.st_mode) and stat.S_IMODE(st.st_mode) == 0o600
          and (st.st_uid, st.st_gid) == (0, 0) and st.st_size == 0,
          f"{users}: mode {stat.S_IMODE(st.st_mode):04o}, owner {st.st_uid}:{st.st_gid}, "
          f"{st.st_size} bytes; want an empty regular file, root 0600")
    enrolled = b"# pam_twilio_sms users: user +E164number\nalice +12025550188\n"
    users.write_bytes(enrolled)
    users.chmod(0o400)
    res = h.make("install", d)
    check(f"keeping the existing {users}" in res.out,
          f"no word of the kept users file: {res.out!r}")
    check(users.read_bytes() == enrolled, f"the users file was changed: {users.read_bytes()!r}")
    check(stat.S_IMODE(users.stat().st_mode) == 0o400,
          f"users file mode now {stat.S_IMODE(users.stat().st_mode):04o}")

    users.unlink()
    target = h.tmp / f"{h.case}-elsewhere.users"
    users.symlink_to(target)
    res = h.make("install", d)
    check(f"keeping the existing {users}" in res.out, f"no word of the kept link: {res.out!r}")
    check(users.is_symlink() and os.readlink(users) == str(target) and not target.exists(),
          "install replaced or followed the dangling link at the users file")


@case
def uninstall_leaves_only_config(h):
    """Install then uninstall, with the default PAMDIR and an explicit one: only the config
    and the users file stay (and what was there before); the directories stay; a second
    uninstall is fine."""
    for pamdir in (True, False):
        d = h.destdir("pamdir" if pamdir else "default")
        neighbour = at(d, "/usr/sbin/someone-else")
        neighbour.parent.mkdir(parents=True)
        neighbour.write_text("#!/bin/sh\n")
        _, dirs_before = tree(d)
        h.make("install", d, pamdir=pamdir)
        config_text = at(d, CONFIG).read_text(encoding="utf-8")
        files_installed, dirs_installed = tree(d)
        check(len(files_installed) == len(REQUIRED) + 1, f"installed: {sorted(files_installed)}")
        res = h.make("uninstall", d, pamdir=pamdir)
        check(f"keeping {at(d, CONFIG)}" in res.out, f"no word of the kept config: {res.out!r}")
        check(f"keeping {at(d, USERS)}" in res.out,
              f"no word of the kept users file: {res.out!r}")
        files, dirs = tree(d)
        check(set(files) == {CONFIG, USERS, "/usr/sbin/someone-else"},
              f"left after uninstall: {sorted(files)}")
        check(at(d, CONFIG).read_text(encoding="utf-8") == config_text, "the config changed")
        check(dirs == dirs_installed and dirs_before < dirs,
              f"directories: before install {sorted(dirs_before)}, after uninstall {sorted(dirs)}")
        h.make("uninstall", d, pamdir=pamdir)


@case
def readme_comparison_detects_drift(h):
    """The comparison is not vacuous: a README without the command's row, with a row make
    does not install, or with a run-time row claimed by make install, differs from a real
    install and says where; a README without the table is an error, not an empty list."""
    d = h.destdir()
    h.make("install", d)
    files, _ = tree(d)
    text = README.read_text(encoding="utf-8")
    rows = installed_table(text)
    check(not differences(make_paths(rows, h.triplet), files), "the README differs already")
    runtime = [p for r in rows if not r.by_make for p in r.paths]
    check({"/etc/security/pam_twilio_sms.backup-codes", "/var/lib/pam_twilio_sms/"}
          <= set(runtime),
          f"the backup codes file and stateDir are not rows of run-time files: {runtime}")

    command_row = next(line for line in text.splitlines()
                       if line.startswith(f"| `{COMMAND}` |"))
    without = text.replace(command_row + "\n", "")
    diff = differences(make_paths(installed_table(without), h.triplet), files)
    check(diff == [f"{COMMAND} is installed but not in the README's Installed table (as made by "
                   "`make install`)"], f"README without the command's row: {diff}")

    ghost = "| `/usr/share/man/man1/ghost.1` | 0644 | `make install` | a page nobody installs |"
    diff = differences(make_paths(installed_table(text.replace(
        command_row, command_row + "\n" + ghost)), h.triplet), files)
    check(diff == ["/usr/share/man/man1/ghost.1 is in the README's Installed table but not "
                   "installed"], f"README with a ghost row: {diff}")

    claimed = re.sub(r"(\| `/var/lib/pam_twilio_sms/` \| [^|]*\| )[^|]*\|",
                     r"\1`make install` |", text)
    diff = differences(make_paths(installed_table(claimed), h.triplet), files)
    check(diff == ["/var/lib/pam_twilio_sms/ is in the README's Installed table but not "
                   "installed"], f"README with stateDir made by make install: {diff}")

    try:
        installed_table(text.replace("\nInstalled:\n", "\nInstalled files:\n"))
    except CaseFailure:
        pass
    else:
        raise CaseFailure("a README without the \"Installed:\" line parsed")


# --------------------------------------------------------------------------- main

def triplet():
    res = subprocess.run([os.environ.get("CC") or "cc", "-print-multiarch"], capture_output=True,
                         text=True, timeout=RUN_LIMIT)
    if res.returncode != 0 or not res.stdout.strip():
        raise CaseFailure(f"cc -print-multiarch: exit {res.returncode}: {res.stderr.strip()}")
    return res.stdout.strip()


def prepare():
    """Root (the config is installed -o root), make, cc, man-db; returns what is missing."""
    if os.geteuid() != 0:
        return "not root (make install installs the config with -o root -g root)"
    for tool in ("make", os.environ.get("CC") or "cc"):
        if shutil.which(tool) is None:
            return f"{tool} not found"
    problem = install_debs(DEBS)
    if problem:
        return problem
    if shutil.which("man") is None:
        return "man not found after installing man-db"
    return None


def run(selected, verbose, tally: Tally):
    made = {}

    def setup(cleanups):
        made["tmp"] = tempfile.mkdtemp(prefix=TMP_PREFIX, dir="/tmp")
        cleanups.add(shutil.rmtree, made["tmp"])
        return Harness(made["tmp"], triplet(), verbose)

    errors = run_all(selected, tally, setup)
    if "tmp" in made and os.path.exists(made["tmp"]):
        errors.append(f"{made['tmp']} is still there")
    if errors:
        tally.fail("cleanup", "; ".join(errors))
    else:
        tally.ok("cleanup")


if __name__ == "__main__":
    sys.exit(main("install", __doc__.splitlines()[0], run=run, prepare=prepare,
                  time_limit=SUITE_LIMIT, one_line=True, timed=True,
                  verbose_help="print every command run and its output"))
