#!/usr/bin/env python3
"""Tests of the Debian package libpam-twilio-sms: built, lintian-clean, installed, used, purged.

The suite builds the package with `make deb` (whose last line is the .deb's path), runs
lintian on it, installs it with dpkg -i on this machine and uses what it installed: the
command twilio-sms-otp and the module named bare (`pam_twilio_sms.so`, from the multiarch
PAM directory) in a service file, against the Twilio sandbox (tests/harness). The config is
made as README.Debian's step 1 says, at /etc/security/pam_twilio_sms.json, so that remove
and purge meet the files a real setup has (config, users file and its lock, stateDir).

pam-auth-update --enable runs in a private mount namespace where copies of /etc/pam.d,
/var/lib/pam (its state) and /var/cache/debconf (its answers) are bind-mounted over the
real ones; the common-auth it writes is used from pamtester in a namespace with the same
copy of /etc/pam.d. The machine's /etc/pam.d/common-* and /var/lib/pam are never changed:
hashed before, after dpkg -i and after the purge. The removal cases run dpkg --remove in
such a namespace too, with sudo in the copy naming the module: the prerm must refuse and
list it. Test users are made with useradd (GECOS marks them); files at the package's paths
that existed before are moved aside and put back; the package is purged at the end
whatever happens. The suite refuses to run when
libpam-twilio-sms is installed already (it would purge someone's package).

Run as root:  python3 tests/package/run_deb.py [-k PATTERN] [-v]
Prints `PASS: name` or `FAIL: name: why` per case, then `deb: N passed, N failed`.
"""

import hashlib
import json
import os
import re
import select
import shutil
import stat
import subprocess
import sys
import time
from pathlib import Path

sys.dont_write_bytecode = True  # leave no __pycache__ in the tree
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from harness.core import REPO, CaseFailure, Tally, case, check, main, run_all  # noqa: E402
from harness.pam import PROMPT_RE, SERVICE_PREFIX, Harness, right, wrong  # noqa: E402
from harness.sandbox import start_in_workdir  # noqa: E402
from harness.syslog import SyslogCapture  # noqa: E402
from harness.system import (add_test_user, in_mount_namespace, install_debs,  # noqa: E402
                            remove_test_user, signals_held, write_file)

PACKAGE = "libpam-twilio-sms"
PROFILE = "twilio-sms"
CONFIG = Path("/etc/security/pam_twilio_sms.json")
USERS_FILE = Path("/etc/security/pam_twilio_sms.users")
USERS_LOCK = Path("/etc/security/pam_twilio_sms.users.lock")
BACKUP_FILE = Path("/etc/security/pam_twilio_sms.backup-codes")
BACKUP_LOCK = Path("/etc/security/pam_twilio_sms.backup-codes.lock")
STATE_DIR = Path("/var/lib/pam_twilio_sms")
# made after install, purged
LEFT_BY_ADMIN = (CONFIG, USERS_FILE, USERS_LOCK, BACKUP_FILE, BACKUP_LOCK, STATE_DIR)
COMMAND = "/usr/sbin/twilio-sms-otp"
DOC = Path("/usr/share/doc/libpam-twilio-sms")
EXAMPLE = DOC / "examples" / "pam_twilio_sms.json"
GECOS = "pam_twilio_sms deb test"
ENROLLED = "tsmsdeb-enrolled"   # in the users file, by twilio-sms-otp enroll
UNMAPPED = "tsmsdeb-unmapped"   # no number anywhere: nullok lets the password alone pass
NUMBER = "+15555550006"
DEBS = ("pamtester", "lintian", "util-linux", "passwd")
# what a private mount namespace replaces with copies (pam-auth-update's files)
PRIVATE = ("/etc/pam.d", "/var/lib/pam", "/var/cache/debconf")
# what the prerm prints when a PAM file still names the module (refused or forced)
STILL_USED = "these PAM files still use pam_twilio_sms.so"
REFUSED = "The removal is refused; the package stays installed and working."
FORCE = "PAM_TWILIO_SMS_FORCE_REMOVE=1 apt remove libpam-twilio-sms"
FORCED = "removing it anyway"
# what the machine must still have when the suite ends, and must not lose to dpkg -i
WATCHED = ["/var/cache/debconf/config.dat"]
SEEN = "/var/lib/pam/seen"
LINE_RE = re.compile(r"^(\w+)\s+(\[[^]]*\]|\S+)\s+(\S+)\s*(.*)$")
PASSWORD_RE = re.compile(r"(^|\n)Password: $")
RUN_LIMIT = 60.0
BUILD_LIMIT = 600.0   # make deb, with apt-get on a fresh machine
SUITE_LIMIT = 900
TMP_PREFIX = "/tmp/tsms-deb-test."


def run(cmd, limit=RUN_LIMIT, env=None, ok=(0,)):
    """cmd's CompletedProcess (stdin closed); a status outside ok is a CaseFailure."""
    try:
        p = subprocess.run([str(c) for c in cmd], capture_output=True, text=True, timeout=limit,
                           stdin=subprocess.DEVNULL, env=env, cwd="/")
    except subprocess.TimeoutExpired:
        raise CaseFailure(f"{' '.join(map(str, cmd))}: still running after {limit:.0f}s") from None
    if ok is not None and p.returncode not in ok:
        raise CaseFailure(f"{' '.join(map(str, cmd))}: exit {p.returncode}: "
                          f"{(p.stderr + p.stdout).strip()[-600:]}")
    return p


def digest(paths):
    """{path: sha256 or None} of each regular file among paths (directories: their files)."""
    out = {}
    for p in map(Path, paths):
        files = sorted(f for f in p.rglob("*") if f.is_file()) if p.is_dir() else [p]
        for f in files:
            out[str(f)] = hashlib.sha256(f.read_bytes()).hexdigest() if f.exists() else None
    return out


def watched():
    """The files an install must leave alone and the suite must leave as it found them."""
    common = sorted(str(p) for p in Path("/etc/pam.d").glob("common-*"))
    return digest(common + ["/var/lib/pam"] + WATCHED)


def package_status():
    """dpkg's status of the package ("" when dpkg knows nothing of it)."""
    p = run(["dpkg-query", "-W", "-f=${Status}", PACKAGE], ok=None)
    return p.stdout.strip() if p.returncode == 0 else ""


def installed():
    return package_status() == "install ok installed"


class DebHarness:
    def __init__(self, tmp, sandbox, syslog, cleanups, verbose):
        self.tmp = Path(tmp)
        self.pam = Harness(self.tmp, sandbox, syslog, verbose)
        self.sandbox = sandbox
        self.cleanups = cleanups
        self.verbose = verbose
        self.before = watched()
        self.seen_before = Path(SEEN).read_text() if Path(SEEN).exists() else ""
        self.passwords = {}
        self.built = None       # (path of the .deb, make deb's output) once built
        self.build_error = None
        self.private = None     # the private /etc/pam.d with the profile enabled
        self.case = "case"

    def begin_case(self, name):
        self.case = name
        self.pam.begin_case(name)

    # ---- the package

    def deb(self):
        """The .deb `make deb` built (once per run): the path its last line names."""
        if self.build_error:
            raise CaseFailure(self.build_error)
        if self.built is None:
            env = {k: v for k, v in os.environ.items()
                   if k not in ("MAKEFLAGS", "MFLAGS", "MAKELEVEL", "DEB_BUILD_OPTIONS")}
            p = run(["make", "--no-print-directory", "-C", REPO, "deb"], limit=BUILD_LIMIT,
                    env=env, ok=None)
            last = p.stdout.rstrip("\n").rsplit("\n", 1)[-1]
            if p.returncode != 0 or not last.endswith(".deb") or not Path(last).is_file():
                self.build_error = (f"make deb: exit {p.returncode}, last line {last!r}: "
                                    f"{p.stderr.strip()[-600:]}")
                raise CaseFailure(self.build_error)
            self.built = (Path(last), p)
        return self.built[0]

    def install(self):
        """dpkg -i of the .deb (again, when it is installed: what an upgrade runs)."""
        deb = self.deb()
        run(["dpkg", "-i", deb], env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"})
        check(installed(), f"after dpkg -i: {package_status()!r}")

    def ensure_installed(self):
        if not installed():
            self.install()

    def field(self, name):
        return run(["dpkg-deb", "-f", self.deb(), name]).stdout.strip()

    def contents(self):
        """{path: (mode, type char)} of the .deb's members."""
        out = {}
        for line in run(["dpkg-deb", "-c", self.deb()]).stdout.splitlines():
            perms, _owner, _size, _date, _time, name = line.split(None, 5)
            name = name.split(" -> ")[0]
            out["/" + name.lstrip("./").rstrip("/")] = (perms, perms[0])
        return out

    # ---- the setup README.Debian describes

    def user(self, name):
        if name not in self.passwords:
            self.cleanups.add(remove_test_user, name, GECOS)
            remove_test_user(name, GECOS)
            check(run(["id", name], ok=None).returncode != 0,
                  f"user {name} exists and is not one of ours; not touching it")
            self.passwords[name] = add_test_user(name, GECOS)
        return self.passwords[name]

    def configure(self):
        """Step 1 of README.Debian: the example installed root 0600, then edited to send
        through the sandbox, with a users file; ENROLLED enrolled with the command."""
        self.ensure_installed()
        if not CONFIG.exists():
            run(["install", "-m", "600", "-o", "root", "-g", "root", EXAMPLE, "/etc/security/"])
            cfg = self.pam.config(users={}, usersFile=str(USERS_FILE),
                                  backupCodesFile=str(BACKUP_FILE), stateDir=None)
            write_file(CONFIG, json.dumps(cfg, indent=1))
        if not USERS_FILE.exists() or ENROLLED not in USERS_FILE.read_text():
            run([COMMAND, "enroll", "--no-verify", ENROLLED, NUMBER])
        if not BACKUP_FILE.exists():
            run([COMMAND, "backup-codes", ENROLLED, "--count", "2"])
        self.user(ENROLLED)
        self.user(UNMAPPED)

    def private_pam(self, name):
        """Copies of /etc/pam.d, /var/lib/pam and /var/cache/debconf under tmp/name, where
        `pam-auth-update --enable twilio-sms` ran, with a service tsms-deb-common that
        includes common-auth: {real path: copy}; in_mount_namespace binds them."""
        self.ensure_installed()
        root = self.tmp / name
        root.mkdir(mode=0o700)
        copies = {}
        for real in PRIVATE:
            copies[real] = root / real.strip("/").replace("/", "-")
            # without the test services (the cases' own name the module)
            shutil.copytree(real, copies[real], symlinks=True,
                            ignore=shutil.ignore_patterns(f"{SERVICE_PREFIX}*"))
        (copies["/etc/pam.d"] / "tsms-deb-common").write_text("@include common-auth\n")
        self.in_private(copies, ["pam-auth-update", "--enable", PROFILE])
        return copies

    def in_private(self, copies, cmd, env=None, ok=(0,)):
        """cmd run where the copies stand in for the real directories."""
        binds = [(copies[real], real) for real in PRIVATE]
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive", **(env or {})}
        return run(in_mount_namespace(cmd, binds), env=env, ok=ok)

    def enable_profile(self):
        """A private /etc/pam.d where `pam-auth-update --enable twilio-sms` ran (once)."""
        if self.private:
            return self.private
        copies = self.private_pam("private")
        self.private = copies["/etc/pam.d"]
        self.private_state = copies["/var/lib/pam"]
        return self.private

    # ---- pamtester with a password prompt

    def login(self, service, user, answers, binds=()):
        """pamtester SERVICE USER authenticate, answering "Password: " and the module's
        prompts in order: a string is typed as is, an Answer (right(), wrong()) gets the
        code of the SMS the prompt announced. Returns the Run."""
        todo = list(answers)
        sandbox = self.sandbox

        def drive(proc, r, since, deadline):
            out, seen = b"", 0
            while True:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise CaseFailure(f"pamtester still running; output {out!r}")
                if not select.select([proc.stdout.fileno()], [], [], min(left, 0.5))[0]:
                    continue
                chunk = os.read(proc.stdout.fileno(), 4096)
                if not chunk:
                    break
                out += chunk
                r.output = out.decode(errors="replace")
                tail = r.output[seen:]
                m = PROMPT_RE.search(tail)
                if not (m or PASSWORD_RE.search(tail)):
                    continue
                seen = len(r.output)
                r.prompts.append(m.group(0) if m else "Password: ")
                if not todo:
                    proc.stdin.close()
                    continue
                answer = todo.pop(0)
                if not isinstance(answer, str):
                    check(m, f"an SMS code asked for at {tail!r}")
                    # a prompt that is no retry announces a new SMS: its code
                    sms = sum(1 for p in r.prompts if PROMPT_RE.search(p) and
                              (not p.startswith("Wrong code.") or "New SMS" in p))
                    code = sandbox.wait_for_code(m.group(2), since, deadline, nth=sms)
                    r.codes.append(code)
                    answer = answer.render(code)
                try:
                    proc.stdin.write((answer + "\n").encode())
                    proc.stdin.flush()
                except BrokenPipeError:
                    pass
            proc.wait(timeout=max(0.1, deadline - time.monotonic()))

        return self.pam.run_client(service, ["pamtester", service, user, "authenticate"], drive,
                                   what=f"pamtester {service} {user}", limit=RUN_LIMIT,
                                   binds=binds)

    def common_auth_login(self, user, answers):
        private = self.enable_profile()
        return self.login("tsms-deb-common", user, answers, binds=[(private, "/etc/pam.d")])


def expect_pam(run_, ok, *, sms, prompts):
    want = "pamtester: successfully authenticated" if ok else "pamtester: Authentication failure"
    check(want in run_.output and run_.status == (0 if ok else 1),
          f"pamtester exit {run_.status}, output {run_.output!r}, want {want!r}")
    check(len(run_.outbox) == sms, f"{len(run_.outbox)} SMS, want {sms}")
    check(run_.prompts == prompts, f"prompts {run_.prompts!r}, want {prompts!r}")


# --------------------------------------------------------------------------- cases

@case
def make_deb_builds_out_of_tree(h):
    """make deb exits 0, its last line is the path of a .deb under build/deb/; the tree gets
    no build files (debian/libpam-twilio-sms/, debian/.debhelper) and its parent no .deb."""
    parent_before = set(os.listdir(REPO.parent))
    status_before = run(["git", "-C", REPO, "status", "--porcelain", "--ignored"]).stdout
    h.built = None
    deb = h.deb()
    check(deb.parent == REPO / "build" / "deb" and deb.name.startswith(f"{PACKAGE}_"),
          f"the .deb is {deb}")
    check(set(os.listdir(REPO.parent)) == parent_before,
          f"make deb left {sorted(set(os.listdir(REPO.parent)) - parent_before)} beside the tree")
    status_after = run(["git", "-C", REPO, "status", "--porcelain", "--ignored"]).stdout
    new = set(status_after.splitlines()) - set(status_before.splitlines())
    check(new <= {"!! build/"}, f"make deb changed the tree: {sorted(new)}")
    for junk in ("debian/libpam-twilio-sms", "debian/.debhelper", "debian/files"):
        check(not (REPO / junk).exists(), f"{junk} is in the tree")


@case
def one_version_everywhere(h):
    """The Makefile's VERSION is debian/changelog's, and the .deb's; the changelog's entry
    for it names this release's features."""
    p = run(["make", "-s", "--no-print-directory", "-C", REPO, "--eval",
             "tsms-print-version: ; @echo '$(VERSION)'", "tsms-print-version"])
    make_version = p.stdout.strip()
    changelog = REPO / "debian" / "changelog"
    deb_version = run(["dpkg-parsechangelog", "-l", changelog, "-S", "Version"]).stdout.strip()
    check(re.fullmatch(r"\d+\.\d+\.\d+", make_version or ""), f"make VERSION {make_version!r}")
    check(make_version == deb_version, f"Makefile {make_version}, changelog {deb_version}")
    check(h.field("Version") == deb_version, f".deb Version {h.field('Version')}")
    check(h.deb().name == f"{PACKAGE}_{deb_version}_{h.field('Architecture')}.deb",
          f"the .deb's name {h.deb().name}")
    entry = run(["dpkg-parsechangelog", "-l", changelog, "-S", "Changes"]).stdout
    for word in ("/etc/ssl/certs", "caFile", "145 certificates", "twilio-sms-otp check",
                 "unmapped", "users file"):
        check(word in entry, f"the changelog entry does not mention {word!r}")


@case
def lintian_clean(h):
    """lintian --fail-on error,warning passes; every override carries a comment."""
    p = run(["lintian", "--fail-on", "error,warning", "--display-info", h.deb()], limit=180,
            ok=None)
    check(p.returncode == 0, f"lintian exit {p.returncode}: {(p.stdout + p.stderr)[-800:]}")
    check(not re.search(r"^[EW]: ", p.stdout, re.M), f"lintian: {p.stdout[-800:]}")
    overrides = REPO / "debian" / f"{PACKAGE}.lintian-overrides"
    if overrides.exists():
        comment = False
        for line in overrides.read_text().splitlines():
            if line.startswith("#"):
                comment = True
            elif line.strip():
                check(comment, f"override without a comment above it: {line}")
            else:
                comment = False


@case
def package_contents(h):
    """What a Debian PAM module package has, with the modes; no file under /etc (the config
    holds a token: the admin makes it), the profile opt-in with nullok after the password."""
    c = h.contents()
    triplet = run(["dpkg-architecture", "-qDEB_HOST_MULTIARCH"]).stdout.strip()
    want = {f"/lib/{triplet}/security/pam_twilio_sms.so": "-rw-r--r--",
            COMMAND: "-rwxr-xr-x",
            "/usr/share/man/man8/pam_twilio_sms.8.gz": "-rw-r--r--",
            "/usr/share/man/man8/twilio-sms-otp.8.gz": "-rw-r--r--",
            "/usr/share/man/man5/pam_twilio_sms.json.5.gz": "-rw-r--r--",
            f"{DOC}/README.md.gz": "-rw-r--r--", f"{DOC}/README.Debian": "-rw-r--r--",
            # the README's guides, where its links expect them (over 4 KB: dh_compress)
            f"{DOC}/docs/fleet.md.gz": "-rw-r--r--",
            f"{DOC}/docs/security.md.gz": "-rw-r--r--",
            f"{DOC}/docs/troubleshooting.md.gz": "-rw-r--r--",
            f"{DOC}/docs/benchmarks.md.gz": "-rw-r--r--",
            f"{DOC}/docs/recipes.md.gz": "-rw-r--r--",
            # the upgrade notice apt-listchanges shows (debian/libpam-twilio-sms.NEWS)
            f"{DOC}/NEWS.Debian.gz": "-rw-r--r--",
            # the plot benchmarks.md embeds, where its link expects it (dh_compress keeps .svg)
            f"{DOC}/tests/bench/results.svg": "-rw-r--r--",
            f"{DOC}/copyright": "-rw-r--r--", f"{DOC}/changelog.gz": "-rw-r--r--",
            str(EXAMPLE): "-rw-r--r--",
            f"{DOC}/examples/pam.d-sshd.snippet": "-rw-r--r--",
            f"{DOC}/examples/pam.d-sshd-session.snippet": "-rw-r--r--",
            f"{DOC}/examples/pam.d-sudo.snippet": "-rw-r--r--",
            f"{DOC}/examples/sshd_config.snippet": "-rw-r--r--",
            f"{DOC}/examples/fail2ban/filter.d/pam_twilio_sms.conf": "-rw-r--r--",
            f"{DOC}/examples/fail2ban/jail.d/pam_twilio_sms.conf": "-rw-r--r--",
            f"/usr/share/pam-configs/{PROFILE}": "-rw-r--r--"}
    for path, mode in want.items():
        check(path in c, f"{path} is not in the package")
        check(c[path][0] == mode, f"{path}: {c[path][0]}, want {mode}")
    check(not [p for p in c if p.startswith("/etc")], f"files under /etc: "
          f"{[p for p in c if p.startswith('/etc')]}")
    depends = h.field("Depends")
    for lib in ("libc6", "libpam0g", "libcurl4", "libsodium23", "libcjson1", "libssl3",
                "libldap-2.5-0", "libhiredis0.14"):
        check(re.search(rf"(^|, ){lib}\b", depends), f"Depends lacks {lib}: {depends}")
    profile = (REPO / "conf" / "pam-configs" / PROFILE).read_text()
    check(re.search(r"^Default: no$", profile, re.M), "the profile is not Default: no")
    check(re.search(r"^Auth-Type: Additional$", profile, re.M), "the profile is not Additional")
    check(re.search(r"^\trequired\tpam_twilio_sms\.so nullok$", profile, re.M),
          f"the profile's Auth line: {profile!r}")


# a Markdown link or image: [text](target) or ![text](target), text on one or more lines
MD_LINK_RE = re.compile(r"(!?)\[((?:[^\[\]]|\[[^\]]*\])*)\]\(([^)\s]+)\)")
MD_FENCE_RE = re.compile(r"^\s*```.*?^\s*```[^\n]*$", re.M | re.S)


def md_anchors(text):
    """The anchors GitHub makes of a Markdown file's headings (not those in code blocks)."""
    anchors, seen = set(), {}
    for m in re.finditer(r"^#{1,6}\s+(.*?)\s*$", MD_FENCE_RE.sub("", text), re.M):
        slug = re.sub(r"[^\w\- ]", "", m.group(1).lower()).replace(" ", "-")
        seen[slug] = seen.get(slug, 0) + 1
        anchors.add(slug if seen[slug] == 1 else f"{slug}-{seen[slug] - 1}")
    return anchors


def md_links(path):
    """(is an image, target) of every relative link of a Markdown file, outside code."""
    text = re.sub(r"`[^`\n]*`", "", MD_FENCE_RE.sub("", path.read_text()))
    return [(m.group(1) == "!", m.group(3)) for m in MD_LINK_RE.finditer(text)
            if not re.match(r"[a-z][a-z0-9+.-]*:", m.group(3))]


@case
def readme_is_the_short_path(h):
    """README.md is the path to a protected host: at most 25 KB, and a newcomer meets the
    first module line of a service (a line that starts `auth ... pam_twilio_sms.so`, not
    one quoted in a command) within its first 150 lines; the reference stays in the man
    pages and the guides in docs/."""
    text = (REPO / "README.md").read_text()
    size = len(text.encode())
    check(size <= 25 * 1024, f"README.md is {size} bytes, over 25 KB: move reference to the "
          "man pages and prose to docs/")
    first = next((n for n, line in enumerate(text.splitlines(), 1)
                  if re.match(r"\s*auth\s+\S+\s+pam_twilio_sms\.so\b", line)), None)
    check(first is not None and first <= 150, f"the first auth line is at line {first}")


@case
def docs_links_resolve(h):
    """Every relative link of the README, the guides in docs/ and tests/README.md names a file
    (and a heading) of the source tree, and every image a shipped document embeds is shipped
    beside it at the same relative path, uncompressed."""
    bad = []
    for doc in (REPO / "README.md", REPO / "tests" / "README.md", *(REPO / "docs").glob("*.md")):
        for _image, target in md_links(doc):
            path, _, anchor = target.partition("#")
            dest = (doc.parent / path).resolve() if path else doc
            if not dest.is_file():
                bad.append(f"{doc.relative_to(REPO)}: {target}: no such file")
            elif anchor and dest.suffix == ".md" and anchor not in md_anchors(dest.read_text()):
                bad.append(f"{doc.relative_to(REPO)}: {target}: no such heading")
    c = h.contents()
    shipped = [p for p in c if p.startswith(f"{DOC}/") and re.search(r"\.md(\.gz)?$", p)]
    check(f"{DOC}/README.md.gz" in shipped, f"no README in the package: {shipped}")
    for p in shipped:
        rel = Path(p).relative_to(DOC)
        rel = rel.with_suffix("") if rel.suffix == ".gz" else rel
        for image, target in md_links(REPO / rel):
            want = os.path.normpath(DOC / rel.parent / target.partition("#")[0])
            if image and want not in c:
                bad.append(f"{p}: the image {target} is not in the package at {want}")
    check(not bad, "; ".join(bad))


@case
def install_enables_nothing(h):
    """dpkg -i registers the profile but changes no login: common-* and pam-auth-update's
    state are as before, and the module and the command are where Debian puts them."""
    h.ensure_installed()
    # pam-auth-update records the profile as seen, debconf its list of profiles: no more
    now = watched()
    changed = sorted(k for k in set(now) | set(h.before)
                     if k not in WATCHED + [SEEN] and now.get(k) != h.before.get(k))
    check(not changed, f"dpkg -i changed {changed}")
    check(Path(SEEN).read_text().split() == h.seen_before.split() + [PROFILE]
          or sorted(Path(SEEN).read_text().split()) == sorted(h.seen_before.split() + [PROFILE]),
          f"{SEEN}: {Path(SEEN).read_text()!r}, before {h.seen_before!r}")
    check("pam_twilio_sms" not in Path("/etc/pam.d/common-auth").read_text(),
          "common-auth names the module after dpkg -i")
    check(Path(f"/usr/share/pam-configs/{PROFILE}").is_file(), "no profile installed")
    triplet = run(["dpkg-architecture", "-qDEB_HOST_MULTIARCH"]).stdout.strip()
    check(Path(f"/lib/{triplet}/security/pam_twilio_sms.so").is_file(), "no module installed")
    p = run([COMMAND, "--help"])
    check(p.stdout.startswith("usage: twilio-sms-otp"), f"--help: {p.stdout[:100]!r}")
    # README.Debian's step 1 without the edit: its placeholders and example users, all in
    # one run, nothing else
    copy = h.tmp / "unedited.json"
    run(["install", "-m", "600", "-o", "root", "-g", "root", EXAMPLE, copy])
    p = run([COMMAND, "--config", copy, "check"], ok=(1,))
    check(p.stdout.startswith(f"problem: config {copy}: accountSID is the example's placeholder")
          and len(p.stdout.splitlines()) == 7 and "authToken is the example's placeholder" in
          p.stdout and p.stdout.endswith(f"{copy}: 5 problems; the PAM module would refuse this "
                                         "config (PAM_SERVICE_ERR)\n"),
          f"check of the unedited example: {p.stdout!r}")


@case
def install_makes_empty_users_file(h):
    """dpkg -i makes the default users file empty, root:root 0600, as the module wants it (a
    config that names it works before the first enroll; a named file that is missing refuses
    everyone); dpkg -i again keeps an existing file as it is: content, mode and inode."""
    h.ensure_installed()
    st = USERS_FILE.lstat()
    check(stat.S_ISREG(st.st_mode) and st.st_size == 0,
          f"{USERS_FILE}: not an empty regular file ({st})")
    check((st.st_uid, st.st_gid, stat.S_IMODE(st.st_mode)) == (0, 0, 0o600),
          f"{USERS_FILE}: {st.st_uid}:{st.st_gid} {stat.S_IMODE(st.st_mode):o}, want 0:0 600")
    USERS_FILE.write_text("# the administrator's\n")
    before = USERS_FILE.lstat()
    h.install()
    after = USERS_FILE.lstat()
    check(USERS_FILE.read_text() == "# the administrator's\n", "dpkg -i rewrote the users file")
    check((after.st_ino, after.st_mtime_ns, after.st_mode) ==
          (before.st_ino, before.st_mtime_ns, before.st_mode), "dpkg -i touched the users file")
    USERS_FILE.write_text("")


@case
def bare_module_authenticates(h):
    """`auth required pam_twilio_sms.so config=...`: the installed module, by its bare
    name, sends through the sandbox to the number the installed command enrolled."""
    h.configure()
    service = h.pam.write_service([f"auth required pam_twilio_sms.so config={CONFIG}"])
    r = h.pam.authenticate(service, ENROLLED, [right()])
    h.pam.expect(r, "PAM_SUCCESS", sms=1, prompts=1)
    check(r.outbox[0].get("to") == NUMBER, f"sent to {r.outbox[0].get('to')}")
    r = h.pam.authenticate(service, ENROLLED, [wrong(), wrong(), wrong()])
    check(r.status == 1 and len(r.outbox) == 1, f"wrong codes: {r.describe()}")
    run([COMMAND, "unlock", ENROLLED])
    check(STATE_DIR.is_dir() and stat.S_IMODE(STATE_DIR.stat().st_mode) == 0o700,
          f"{STATE_DIR} not made 0700 by the module")


@case
def pam_auth_update_enables_after_password(h):
    """pam-auth-update --enable twilio-sms (private /etc/pam.d): the module is right after
    the password block, required, with nullok; the machine's files did not change."""
    private = h.enable_profile()
    text = (private / "common-auth").read_text()
    lines = [LINE_RE.match(l).groups() for l in text.splitlines()
             if l.strip() and not l.startswith("#")]
    modules = [l[2] for l in lines]
    check("pam_twilio_sms.so" in modules, f"common-auth: {lines}")
    i = modules.index("pam_twilio_sms.so")
    check(modules[:i] == ["pam_unix.so", "pam_deny.so", "pam_permit.so"],
          f"modules before ours: {modules[:i]}")
    check(lines[i][1:] == ("required", "pam_twilio_sms.so", "nullok"), f"our line: {lines[i]}")
    check(lines[1][1] == "requisite", f"pam_deny is not requisite: {lines[1]}")
    check(PROFILE in (h.private_state / "seen").read_text(), "not in the private seen")
    check("pam_twilio_sms" not in Path("/etc/pam.d/common-auth").read_text(),
          "the machine's common-auth names the module")


@case
def common_auth_password_then_code(h):
    """Through the generated common-auth: the password, then the SMS code: success."""
    h.configure()
    r = h.common_auth_login(ENROLLED, [h.passwords[ENROLLED], right()])
    expect_pam(r, True, sms=1, prompts=["Password: ", r.prompts[-1]])
    check(PROMPT_RE.search(r.prompts[-1]), f"no code prompt: {r.prompts}")


@case
def common_auth_wrong_password_sends_no_sms(h):
    """A wrong password stops at pam_deny: no SMS is sent, no code is asked."""
    h.configure()
    r = h.common_auth_login(ENROLLED, ["not-the-password"])
    expect_pam(r, False, sms=0, prompts=["Password: "])
    check(not r.requests, f"{len(r.requests)} requests reached the sandbox")


@case
def common_auth_wrong_code_refused(h):
    """The right password and then wrong codes: refused."""
    h.configure()
    r = h.common_auth_login(ENROLLED, [h.passwords[ENROLLED], wrong(), wrong(), wrong()])
    check(r.status == 1 and "successfully" not in r.output, f"wrong codes: {r.output!r}")
    check(len(r.outbox) == 1 and r.prompts[0] == "Password: ", f"{r.describe()}")
    run([COMMAND, "unlock", ENROLLED])


@case
def common_auth_unmapped_user_passes_with_nullok(h):
    """A user with no number (a system account, someone not enrolled) passes on the
    password alone; with a wrong password still fails."""
    h.configure()
    r = h.common_auth_login(UNMAPPED, [h.passwords[UNMAPPED]])
    expect_pam(r, True, sms=0, prompts=["Password: "])
    r = h.common_auth_login(UNMAPPED, ["not-the-password"])
    expect_pam(r, False, sms=0, prompts=["Password: "])


@case
def reinstall_keeps_edited_config(h):
    """dpkg -i again (the maintainer scripts of an upgrade) keeps the edited config, its
    mode, the users file and the state."""
    h.configure()
    before = digest(LEFT_BY_ADMIN)
    mode = stat.S_IMODE(CONFIG.stat().st_mode)
    h.install()
    check(digest(LEFT_BY_ADMIN) == before, "dpkg -i changed the config, users file or state")
    check(stat.S_IMODE(CONFIG.stat().st_mode) == mode == 0o600, f"config mode {mode:o}")


def module_path():
    triplet = run(["dpkg-architecture", "-qDEB_HOST_MULTIARCH"]).stdout.strip()
    return Path(f"/lib/{triplet}/security/pam_twilio_sms.so")


def machine_pam():
    """The machine's own PAM files (not the test services that e2e runs come and go with),
    and whether the private ones leaked into /etc/pam.d."""
    pamd = Path("/etc/pam.d")
    files = [p for p in pamd.iterdir() if not p.name.startswith(SERVICE_PREFIX)]
    return digest(files + [pamd / "tsms-prerm-test", pamd / "tsms-prerm-chain"])


def admin_lines(pamd):
    """In the copy pamd of /etc/pam.d: sudo names the module after its common-auth (as
    README.Debian's "chosen services" says), tsms-prerm-test names it too (also as libpam
    reads lines that a search for "auth" misses: a type in capitals, a line continued after
    a backslash across a blank and a comment line) and tsms-prerm-chain reaches it through
    an @include; returns the lines the prerm must list."""
    sudo = pamd / "sudo"
    lines = sudo.read_text().splitlines()
    check("@include common-auth" in lines, f"no '@include common-auth' in sudo: {lines}")
    at = lines.index("@include common-auth") + 1
    lines.insert(at, "auth required pam_twilio_sms.so")
    sudo.write_text("\n".join(lines) + "\n")
    # by the package's path, and a module built elsewhere that the removal leaves alone
    (pamd / "tsms-prerm-test").write_text("# a test service\n"
                                          f"auth\t[success=ok default=die]\t{module_path()}\n"
                                          "auth required /opt/elsewhere/pam_twilio_sms.so\n"
                                          "AUTH required pam_twilio_sms.so\n"
                                          "auth [default=die] \\\n"
                                          "\n"
                                          "# the module, on the line libpam joins\n"
                                          "    pam_twilio_sms.so nullok\n")
    (pamd / "tsms-prerm-chain").write_text("@include tsms-prerm-test\n")
    return [f"/etc/pam.d/sudo:{at + 1}: auth required pam_twilio_sms.so",
            f"/etc/pam.d/tsms-prerm-test:2: auth [success=ok default=die] {module_path()}",
            "/etc/pam.d/tsms-prerm-test:4: AUTH required pam_twilio_sms.so",
            "/etc/pam.d/tsms-prerm-test:5: auth [default=die] pam_twilio_sms.so nullok",
            "/etc/pam.d/tsms-prerm-chain: includes /etc/pam.d/tsms-prerm-test"]


@case
def remove_refused_while_a_service_names_module(h):
    """With the profile on and the module named in sudo (and a test service, and one that
    @includes it; all in a private copy of /etc/pam.d): dpkg --remove and --purge are
    refused, the package stays installed, stderr lists each file and says what to do; an
    upgrade (dpkg -i again) is not refused. Once the lines are gone the removal goes through
    and takes the profile out of common-auth."""
    real = machine_pam()
    copies = h.private_pam("refused")
    pamd = copies["/etc/pam.d"]
    sudo_before = (pamd / "sudo").read_bytes()
    want = admin_lines(pamd)
    try:
        for cmd in (["dpkg", "--remove", PACKAGE], ["dpkg", "--purge", PACKAGE]):
            p = h.in_private(copies, cmd, ok=None)
            check(p.returncode != 0, f"{' '.join(cmd)} was not refused: {p.stderr[-600:]!r}")
            # dpkg keeps the package; the selection stays "deinstall" until apt or dpkg -i
            check(package_status().endswith(" ok installed") and module_path().is_file(),
                  f"after a refused {cmd[1]}: {package_status()!r}")
            for text in want + [STILL_USED, "Module is unknown", REFUSED, FORCE,
                                "grep -rl pam_twilio_sms.so /etc/pam.d"]:
                check(text in p.stderr, f"{cmd[1]}: stderr lacks {text!r}: {p.stderr!r}")
            # the profile's line is pam-auth-update's to take out; sudo's copy names it twice
            for text in ("common-auth", "tsms-deb-common", "sudo-i", "/opt/elsewhere"):
                check(text not in p.stderr, f"{cmd[1]}: stderr names {text}: {p.stderr!r}")
        check("pam_twilio_sms.so" in (pamd / "common-auth").read_text(),
              "a refused removal took the profile out of common-auth")
        p = h.in_private(copies, ["dpkg", "-i", h.deb()])
        check(STILL_USED not in p.stderr, f"dpkg -i (an upgrade) complained: {p.stderr!r}")
        check(installed(), f"after dpkg -i: {package_status()!r}")
        # what README.Debian says: delete the lines, then remove
        (pamd / "sudo").write_bytes(sudo_before)
        (pamd / "tsms-prerm-test").unlink()
        (pamd / "tsms-prerm-chain").unlink()
        p = h.in_private(copies, ["dpkg", "--remove", PACKAGE])
        check(STILL_USED not in p.stderr, f"clean removal complained: {p.stderr!r}")
        check(package_status() == "deinstall ok config-files", f"{package_status()!r}")
        check("pam_twilio_sms" not in (pamd / "common-auth").read_text(),
              "common-auth still names the module after the removal")
    finally:
        h.install()
    check(machine_pam() == real, "the machine's /etc/pam.d changed")


@case
def remove_forced_with_override(h):
    """PAM_TWILIO_SMS_FORCE_REMOVE=1: dpkg --remove goes through although sudo names the
    module, and stderr still lists the files and says what PAM will do."""
    real = machine_pam()
    copies = h.private_pam("forced")
    want = admin_lines(copies["/etc/pam.d"])
    try:
        p = h.in_private(copies, ["dpkg", "--remove", PACKAGE],
                         env={"PAM_TWILIO_SMS_FORCE_REMOVE": "1"})
        check(package_status() == "deinstall ok config-files", f"{package_status()!r}")
        check(not module_path().exists(), "the module is still there")
        for text in want + [STILL_USED, "Module is unknown", FORCED]:
            check(text in p.stderr, f"stderr lacks {text!r}: {p.stderr!r}")
        check(REFUSED not in p.stderr, f"stderr says refused: {p.stderr!r}")
    finally:
        h.install()
    check(machine_pam() == real, "the machine's /etc/pam.d changed")


@case
def remove_keeps_config_purge_leaves_nothing(h):
    """dpkg --remove: the package's files go, the config, users file (and lock) and state
    stay; dpkg --purge: those go too, dpkg forgets the package, and /etc/pam.d/common-*,
    /var/lib/pam and debconf's answers are as before the suite."""
    h.configure()
    # the cases' services name the module: the prerm would refuse the removal
    h.pam.remove_services()
    files = [p for p, (_, kind) in h.contents().items() if kind != "d"]
    for p in LEFT_BY_ADMIN:
        check(p.exists(), f"{p} was not made by the cases")
    run(["dpkg", "--remove", PACKAGE])
    left = [p for p in files if os.path.lexists(p) and not p.startswith("/usr/share/doc")]
    check(not left, f"after --remove: {left}")
    for p in LEFT_BY_ADMIN:
        check(p.exists(), f"dpkg --remove deleted {p}")
    run(["dpkg", "--purge", PACKAGE])
    check(package_status() in ("", "unknown ok not-installed"),
          f"dpkg still knows it: {package_status()!r}")
    left = [p for p in files + [str(x) for x in LEFT_BY_ADMIN] if os.path.lexists(p)]
    check(not left, f"after --purge: {left}")
    check(watched() == h.before, "the purge did not restore /etc/pam.d/common-*, "
          f"/var/lib/pam or debconf: {sorted(k for k, v in watched().items() if h.before.get(k) != v)}")


# --------------------------------------------------------------------------- main

def prepare():
    if os.geteuid() != 0:
        return "not root (dpkg -i, useradd, mount namespaces)"
    if installed() or package_status() not in ("", "unknown ok not-installed"):
        return f"{PACKAGE} is on this machine already ({package_status()}); not touching it"
    return install_debs(DEBS, BUILD_LIMIT)


def restore(saved):
    """Puts back what stood at the package's paths before the suite (after the purge)."""
    for real, copy in saved:
        if real.is_dir() and not real.is_symlink():
            shutil.rmtree(real)
        elif os.path.lexists(real):
            real.unlink()
        os.rename(copy, real)


def purge_if_installed():
    if package_status() not in ("", "unknown ok not-installed"):
        run(["dpkg", "--purge", PACKAGE], env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"})


def run_suite(selected, verbose, tally: Tally):
    made = {}

    def setup(cleanups):
        workdir, sandbox = start_in_workdir(cleanups, TMP_PREFIX)
        made["tmp"] = workdir
        saved_dir = Path(workdir) / "saved"
        saved_dir.mkdir(mode=0o700)
        saved = []
        with signals_held():
            cleanups.add(restore, saved)  # runs after the purge below
            for p in LEFT_BY_ADMIN:
                if os.path.lexists(p):
                    copy = saved_dir / p.name
                    os.rename(p, copy)
                    saved.append((p, copy))
            cleanups.add(purge_if_installed)
        syslog = SyslogCapture(workdir)
        cleanups.add(syslog.close)
        h = DebHarness(workdir, sandbox, syslog, cleanups, verbose)
        cleanups.add(h.pam.remove_services)
        return h

    errors = run_all(selected, tally, setup)
    if "tmp" in made and os.path.exists(made["tmp"]):
        errors.append(f"{made['tmp']} is still there")
    if package_status() not in ("", "unknown ok not-installed"):
        errors.append(f"{PACKAGE} is still on the machine: {package_status()}")
    if errors:
        tally.fail("cleanup", "; ".join(errors))
    else:
        tally.ok("cleanup")


if __name__ == "__main__":
    sys.exit(main("deb", __doc__.splitlines()[0], run=run_suite, prepare=prepare,
                  time_limit=SUITE_LIMIT, one_line=True, timed=True,
                  verbose_help="print every pamtester run"))
