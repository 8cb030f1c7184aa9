#!/usr/bin/env python3
"""Integration tests: the built module in a real OpenSSH server, real sudo, and setuid su and chfn.

As root on Debian: installs openssh-server, openssh-client and sudo when missing, starts the
Twilio sandbox, writes a module config (root 0600) and creates its own users (tsmsuser1 for
ssh, tsmsuser2 for sudo). Then:

  sshd   /usr/sbin/sshd -D -e started through a symlink named tsms-test-sshd (OpenSSH uses
         its program name as the PAM service name), on a free loopback port, with its own
         host key and sshd_config; the drop-in is the lines of conf/sshd_config.snippet and the
         PAM service /etc/pam.d/tsms-test-sshd is Debian's /etc/pam.d/sshd with the lines of
         conf/pam.d-sshd.snippet, and those of conf/pam.d-sshd-session.snippet right after its
         `session required pam_loginuid.so` (in every test sshd: without sessionGraceSeconds
         the hook does nothing). The real ssh client logs in, answering the keyboard-
         interactive prompts through SSH_ASKPASS (askpass.py), which reads the sandbox outbox;
         a remote command may read a text on its stdin (sudo -S's password). sudo and su in
         a session use the module with sshd's config: Debian's services with the snippet are
         bind-mounted over /etc/pam.d/sudo and su in the server's mount namespace.
         A server for a config of a case's own runs in a mount namespace where the service
         file using it is bind-mounted over /etc/pam.d/tsms-test-sshd; variant "password"
         has no snippet (Debian's defaults: password authentication). For graceScope, two
         servers on configs with their own stateDir and one redis-server (tests/harness/
         redis.py) are two hosts of a fleet.
  sudo   sudo's PAM service name is fixed, so the host's /etc/pam.d/sudo is never touched:
         sudo runs in a private mount namespace where Debian's file with the lines of
         conf/pam.d-sudo.snippet is bind-mounted over it (and, for the pam-auth-update
         profile, a copy of common-auth with its line over /etc/pam.d/common-auth). A
         sudoers drop-in (/etc/sudoers.d/tsms-test-integration) lets tsmsuser2 and tsmsuser1
         run /usr/bin/id as root; `runuser -u tsmsuser2 -- sudo -S -k /usr/bin/id -un` gets
         the password and the code on stdin, each written when its prompt appears.
  su, chfn  the attack of a hostile caller: setuid-root programs whose environment belongs
         to the unprivileged user who runs them. tsmsuser3 (no number) runs
         `su -c '/usr/bin/id -un' tsmsuser4` (tsmsuser4 has a number; tsmsuser3 knows its
         password) and `chfn -r ROOM` as itself, through runuser in a private mount namespace
         where Debian's su / chfn service with the lines of conf/pam.d-sudo.snippet is
         bind-mounted over /etc/pam.d/su / chfn, with https_proxy and friends naming a logging
         CONNECT proxy on loopback (tests/sandbox/connect_proxy.py) and SSLKEYLOGFILE naming
         a file in a directory of the caller's or in one only root can write. The proxy must
         see nothing, no key log file may appear, and the login must still work.

The module's syslog lines are captured by the harness's SyslogCapture (tests/harness): sshd
and sudo run with the capture socket bind-mounted over /dev/log in their mount namespace (or
bound at /dev/log when it is free).

Everything is removed at the end, on failures and on SIGINT/SIGTERM/SIGHUP too: sshd, the
users and their homes, /etc/pam.d/tsms-test-sshd, the sudoers drop-in, the temp dir; the last
line before the summary checks that. Runs are serialised by /run/lock/tsms-integration.lock;
what a killed run left (its processes and temp dirs, the users, recognised by their GECOS
field, the two files above) is removed first.

Run as root:  python3 tests/integration/run_integration.py [-k PATTERN] [-v]
Prints `PASS: name` or `FAIL: name: why` per case, then `integration: N passed, N failed`.
"""

import contextlib
import errno
import fcntl
import hashlib
import json
import os
import pwd
import re
import select
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
sys.dont_write_bytecode = True  # leave no __pycache__ in the tree
sys.path.insert(0, str(REPO / "tests"))
sys.path.insert(0, str(HERE))
import askpass  # noqa: E402  (beside this file)
from harness.core import CaseFailure, case, check, main, run_all  # noqa: E402
from harness.pam import MODULE, PAM_DIR  # noqa: E402
from harness.proxy import ConnectProxy  # noqa: E402
from harness.redis import install_problem as redis_install_problem  # noqa: E402
from harness.redis import start_in as start_redis  # noqa: E402
from harness.sandbox import AUTH_TOKEN, Sandbox, wrong_code  # noqa: E402
from harness.state import read_state  # noqa: E402
from harness.syslog import SyslogCapture  # noqa: E402
from harness.system import (add_test_user, become_subreaper, cmdlines,  # noqa: E402
                            descendants, end_orphans, free_port, install_debs,
                            remove_test_user, running, sh, signals_held, stop_process,
                            write_file)

CONF = REPO / "conf"
DEBS = ["openssh-server", "openssh-client", "sudo"]
SSHD = Path("/usr/sbin/sshd")
SSHD_SERVICE = "tsms-test-sshd"  # the symlink's name, so sshd's PAM service name
SUDO_PAM = PAM_DIR / "sudo"
SU_PAM = PAM_DIR / "su"
CHFN_PAM = PAM_DIR / "chfn"
COMMON_AUTH = PAM_DIR / "common-auth"
PROFILE = CONF / "pam-configs" / "twilio-sms"  # the pam-auth-update profile
PAM_CONFIGS = Path("/usr/share/pam-configs")  # the installed profiles
SUDOERS_DROP_IN = Path("/etc/sudoers.d/tsms-test-integration")  # no '.': sudo skips such names
LOCK_FILE = Path("/run/lock/tsms-integration.lock")
PRIVSEP_DIR = Path("/run/sshd")
GECOS = "pam_twilio_sms integration test"
TMP_PREFIX = "tsms-integration-"  # temp dirs: TMP_PREFIX + random, and TMP_PREFIX + "ca-" ...

SSH_USER, SSH_PHONE = "tsmsuser1", "+15555550161"
SUDO_USER, SUDO_PHONE = "tsmsuser2", "+15555550162"
CALLER = "tsmsuser3"  # the unprivileged caller of su and chfn: no number
SU_TARGET, SU_TARGET_PHONE = "tsmsuser4", "+15555550164"
TEST_USERS = (SSH_USER, SUDO_USER, CALLER, SU_TARGET)
PROXY_VARIABLES = ("http_proxy", "https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY")

LOCK_WAIT = 120.0  # another run holding the lock
RUN_LIMIT = 30.0  # one ssh or sudo run
TOTAL_LIMIT = 160  # seconds for everything after the install (then SIGALRM: cleanup, exit)


def snippet_lines(name):
    """The lines of conf/NAME that are neither blank nor comments."""
    text = (CONF / name).read_text(encoding="utf-8")
    return [l for l in text.splitlines() if l.strip() and not l.lstrip().startswith("#")]


def service_file(debian_file, snippet, module_args):
    """Debian's service file with its `@include common-auth` line replaced by the snippet's
    lines, where `pam_twilio_sms.so` becomes the built module with module_args."""
    ours = snippet_lines(snippet)
    check("@include common-auth" in ours and any("pam_twilio_sms.so" in l.split() for l in ours),
          f"conf/{snippet}: no '@include common-auth' and module lines to put in its place: {ours}")
    return in_place_of_common_auth(debian_file, ours, module_args)


def in_place_of_common_auth(debian_file, ours, module_args):
    """Debian's service file with its `@include common-auth` line replaced by the lines ours,
    where `pam_twilio_sms.so` becomes the built module with module_args."""
    lines = [l for l in Path(debian_file).read_text(encoding="utf-8").splitlines()
             if "pam_twilio_sms" not in l]
    includes = [i for i, l in enumerate(lines) if l.split() == ["@include", "common-auth"]]
    check(len(includes) == 1, f"{debian_file} has {len(includes)} '@include common-auth' lines")
    ours = [built_module(line, module_args) for line in ours]
    check(any(str(MODULE) in l for l in ours), f"no module line among {ours}")
    i = includes[0]
    return "\n".join(lines[:i] + ours + lines[i + 1:]) + "\n"


def with_session_hook(text, module_args):
    """text, an sshd service file, with the lines of conf/pam.d-sshd-session.snippet right
    after its `session required pam_loginuid.so` line (the snippet's place), where
    `pam_twilio_sms.so` becomes the built module with module_args."""
    ours = [built_module(l, module_args) for l in snippet_lines("pam.d-sshd-session.snippet")]
    check(any(l.split()[:1] == ["session"] and str(MODULE) in l for l in ours),
          f"conf/pam.d-sshd-session.snippet: no session line of the module: {ours}")
    lines = text.splitlines()
    at = [i for i, l in enumerate(lines)
          if l.split()[:3] == ["session", "required", "pam_loginuid.so"]]
    check(len(at) == 1, f"{len(at)} 'session required pam_loginuid.so' lines in {lines}")
    i = at[0] + 1
    return "\n".join(lines[:i] + ours + lines[i:]) + "\n"


def built_module(line, module_args):
    """line with `pam_twilio_sms.so` made the built module with module_args."""
    words = line.split()
    if "pam_twilio_sms.so" in words:
        i = words.index("pam_twilio_sms.so")
        words[i:i + 1] = [str(MODULE)] + list(module_args)
    return " ".join(words)


def profile_fields(path):
    """The fields of a pam-auth-update profile, each as its list of lines: "Priority: 128"
    gives ["128"], "Auth:" and its indented lines give those lines."""
    fields, key = {}, None
    for line in Path(path).read_text(encoding="utf-8").splitlines():
        if line[:1] in (" ", "\t") and key:
            fields[key].append(line.strip())
        elif ":" in line:
            key, _, value = line.partition(":")
            fields[key] = [value.strip()] if value.strip() else []
    return fields


def common_auth_with_profile(module_args):
    """The host's common-auth as `pam-auth-update --enable twilio-sms` leaves it: the Auth
    lines of conf/pam-configs/twilio-sms in the "Additional" block, before the lines of the
    installed profiles of lower priority (Debian's pam_cap, priority 0), pam_twilio_sms.so
    being the built module with module_args."""
    ours = profile_fields(PROFILE)
    check(ours.get("Auth-Type") == ["Additional"] and ours.get("Auth"),
          f"{PROFILE}: no Additional Auth lines: {ours}")
    priority = int(ours["Priority"][0])
    lower = set()  # the modules of installed Additional auth profiles below ours
    for path in PAM_CONFIGS.iterdir():
        theirs = profile_fields(path)
        if (theirs.get("Auth-Type") == ["Additional"] and
                int((theirs.get("Priority") or ["0"])[0]) < priority):
            lower |= {w for l in theirs.get("Auth", []) + theirs.get("Auth-Final", [])
                      for w in l.split() if w.endswith(".so")}
    lines = [l for l in COMMON_AUTH.read_text(encoding="utf-8").splitlines()
             if "pam_twilio_sms" not in l]
    begin = [i for i, l in enumerate(lines) if l.startswith("# and here are more per-package "
                                                           'modules (the "Additional" block)')]
    end = [i for i, l in enumerate(lines) if l.startswith("# end of pam-auth-update config")]
    check(len(begin) == 1 and len(end) == 1 and begin[0] < end[0],
          f"{COMMON_AUTH} is not pam-auth-update's: no Additional block")
    at = next((i for i in range(begin[0] + 1, end[0]) if lower & set(lines[i].split())), end[0])
    added = [built_module("auth\t" + l, module_args) for l in ours["Auth"]]
    return "\n".join(lines[:at] + added + lines[at:]) + "\n"


def file_digest(path):
    try:
        return hashlib.sha256(Path(path).read_bytes()).hexdigest()
    except FileNotFoundError:
        return None


# --------------------------------------------------------------------------- one login

class Login:
    """What one ssh or sudo run left behind."""

    def __init__(self, what):
        self.what = what
        self.status = None
        self.stdout = ""
        self.stderr = ""
        self.prompts = []
        self.sms = []
        self.requests = []
        self.proxied = []  # what the caller's proxy saw (setuid runs)
        self.logs = []  # syslog messages (ident stripped)
        self.server_log = ""  # what sshd -e wrote meanwhile
        self.elapsed = 0.0

    def module_logs(self, service):
        prefix = f"pam_twilio_sms({service}:auth): "
        return [l[len(prefix):] for l in self.logs if l.startswith(prefix)]

    def any_module_log(self):
        return [l for l in self.logs if "pam_twilio_sms(" in l]

    def results(self, service):
        return [m.group(1) for l in self.module_logs(service)
                if (m := re.search(r"(?:^| )result=(PAM_[A-Z_]+)", l))]

    def __str__(self):
        return (f"{self.what}: exit {self.status} after {self.elapsed:.1f}s, stdout "
                f"{self.stdout.strip()!r}, prompts {self.prompts!r}, {len(self.sms)} SMS, "
                f"stderr {self.stderr.strip()[-300:]!r}, logs {self.logs[-6:]!r}"
                + (f", sshd said {self.server_log.strip()[-600:]!r}" if self.server_log else ""))


# --------------------------------------------------------------------------- harness

class Harness:
    def __init__(self, tmp, verbose, cleanups):
        self.tmp = Path(tmp)
        self.cleanups = cleanups  # a core.Cleanups: run newest first at the end, whatever happens
        self.verbose = verbose
        self.sandbox = None
        self.syslog = None
        self.config = None
        self.passwords = {}
        self.servers = {}  # variant -> (port, config path) or the CaseFailure that stopped it
        self.drop_ins = {}  # variant -> the text of its sshd_config drop-in (other suites')
        self.sshd_link = self.tmp / SSHD_SERVICE
        self.config_private_ca = None
        self.logins = 0
        self.proxy = None
        self.caller_dir = None
        self.root_dir = None
        self.backup_codes_file = self.tmp / "backup-codes"
        self.redis_server = None

    # ---- set-up shared by all cases

    def setup(self):
        self.remove_leftovers()
        self.sandbox = Sandbox(self.tmp / "sandbox")
        self.cleanups.add(self.sandbox.stop)
        self.sandbox.start(timeout=20)
        self.syslog = SyslogCapture(self.tmp)
        self.cleanups.add(self.syslog.close)
        self.config = self.write_config("pam_twilio_sms", self.public_ca_file())
        # the sandbox's own ca.pem sits in the root-only temp dir
        self.config_private_ca = self.write_config("private-ca", self.sandbox.ca_file)
        for user in TEST_USERS:
            self.add_user(user)
        self.proxy = ConnectProxy(self.tmp / "proxy")
        self.cleanups.add(self.proxy.stop)
        self.proxy.start()
        # where a hostile SSLKEYLOGFILE points: a directory of the caller's, one of root's
        self.caller_dir = Path(tempfile.mkdtemp(prefix=f"{TMP_PREFIX}caller-"))
        self.cleanups.add(shutil.rmtree, self.caller_dir, True)
        os.chown(self.caller_dir, pwd.getpwnam(CALLER).pw_uid, pwd.getpwnam(CALLER).pw_gid)
        self.root_dir = self.tmp / "root-only"
        self.root_dir.mkdir(mode=0o700)
        self.write_sshd_service()
        self.write_sudoers()
        sh(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "tsms-test-host",
            "-f", str(self.tmp / "ssh_host_ed25519_key")])
        for key in ("client_key", "other_key"):
            sh(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", f"tsms-test-{key}",
                "-f", str(self.tmp / key)])
        self.authorize_key(SSH_USER, self.tmp / "client_key.pub")

    def write_config(self, name, ca_file, **over):
        """Writes the module config TMP/NAME.json (root 0600), keys in over replaced (None:
        left out), and returns its path."""
        cfg = self.sandbox.module_config(
            templates=[{"usageType": "SignIn",
                        "content": "Your login code is {{code}}. Do not share it with anyone."}],
            users={SSH_USER: SSH_PHONE, SUDO_USER: SUDO_PHONE, SU_TARGET: SU_TARGET_PHONE},
            caFile=str(ca_file),
            stateDir=str(self.tmp / "state"),
            backupCodesFile=str(self.backup_codes_file),
            resendCooldownSeconds=0,
            maxAttempts=3)  # the wrong-code cases expect three SMS prompts
        cfg = {**cfg, **over}
        cfg = {k: v for k, v in cfg.items() if v is not None}
        return Path(write_file(self.tmp / f"{name}.json", json.dumps(cfg, indent=1)))

    def backup_codes(self, user, count=2):
        """A fresh set of count backup codes for user, made with the admin command."""
        p = sh([str(REPO / "twilio-sms-otp"), "--config", str(self.config), "backup-codes", user,
                "--count", str(count)])
        codes = p.stdout.split()
        check(len(codes) == count, f"backup-codes printed {p.stdout!r}")
        return codes

    def redis(self):
        """The Redis server that the hosts of a fleet case share (harness.redis: started at
        the first call, emptied at each)."""
        if self.redis_server is None:
            problem = redis_install_problem()
            check(problem is None, f"redis: {problem}")
            self.redis_server = start_redis(self.cleanups, self.tmp)
        self.redis_server.flush()
        return self.redis_server

    def public_ca_file(self):
        """A copy of the sandbox CA that any user can read, like /etc/ssl/certs/*.pem."""
        d = Path(tempfile.mkdtemp(prefix=f"{TMP_PREFIX}ca-"))
        self.cleanups.add(shutil.rmtree, d, True)
        os.chmod(d, 0o755)
        shutil.copyfile(self.sandbox.ca_file, d / "ca.pem")
        os.chmod(d / "ca.pem", 0o644)
        return d / "ca.pem"

    def remove_leftovers(self):
        """What a killed run left (no other run is going: we hold the lock): processes
        running from its temp dirs (sshd, the sandbox, redis-server), those dirs, our users
        (recognised by their GECOS), the service file and the sudoers drop-in."""
        stale = [d for d in Path(tempfile.gettempdir()).glob(f"{TMP_PREFIX}*")
                 if d.is_dir() and d != self.tmp]
        for pid, argv in cmdlines():
            cmdline = b"\0".join(argv).decode(errors="replace")
            with contextlib.suppress(OSError):  # redis-server rewrites its argv: its directory
                cmdline += "\0" + os.readlink(f"/proc/{pid}/cwd") + "/"
            if any(f"{d}/" in cmdline for d in stale) and running(pid):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
        for d in stale:
            shutil.rmtree(d, ignore_errors=True)
        for user in TEST_USERS:
            try:
                pw = pwd.getpwnam(user)
            except KeyError:
                continue
            check(pw.pw_gecos == GECOS, f"user {user} exists and is not one of ours "
                                        f"(GECOS {pw.pw_gecos!r}); not touching it")
            remove_test_user(user, GECOS)
        for path in (PAM_DIR / SSHD_SERVICE, SUDOERS_DROP_IN):
            with contextlib.suppress(FileNotFoundError):
                path.unlink()

    def add_user(self, user):
        self.cleanups.add(remove_test_user, user, GECOS)
        self.passwords[user] = add_test_user(user, GECOS)

    def authorize_key(self, user, pub):
        pw = pwd.getpwnam(user)
        ssh_dir = Path(pw.pw_dir) / ".ssh"
        ssh_dir.mkdir(mode=0o700, exist_ok=True)
        keys = ssh_dir / "authorized_keys"
        keys.write_text(pub.read_text())
        for path, mode in ((ssh_dir, 0o700), (keys, 0o600)):
            os.chown(path, pw.pw_uid, pw.pw_gid)
            os.chmod(path, mode)

    def write_sshd_service(self):
        text = with_session_hook(service_file(PAM_DIR / "sshd", "pam.d-sshd.snippet",
                                              [f"config={self.config}"]),
                                 [f"config={self.config}"])
        path = PAM_DIR / SSHD_SERVICE
        self.cleanups.add(lambda: path.unlink(missing_ok=True))
        path.write_text(text)
        os.chmod(path, 0o644)
        self.sshd_link.symlink_to(SSHD)

    def sudo_service(self, config):
        """TMP/pam.d-sudo-NAME: Debian's sudo service with the snippet, using config."""
        return self.debian_service(SUDO_PAM, config)

    def debian_service(self, debian_file, config, snippet="pam.d-sudo.snippet"):
        """TMP/pam.d-SERVICE-NAME: Debian's service file with the lines of conf/SNIPPET in
        place of common-auth, using config; sshd's with the session hook too
        (conf/pam.d-sshd-session.snippet)."""
        path = self.tmp / f"pam.d-{debian_file.name}-{Path(config).stem}"
        if not path.exists():
            check(debian_file.is_file(), f"{debian_file} missing")
            text = service_file(debian_file, snippet, [f"config={config}"])
            if debian_file == PAM_DIR / "sshd":
                text = with_session_hook(text, [f"config={config}"])
            path.write_text(text)
            os.chmod(path, 0o644)
        return path

    def common_auth(self, config):
        """TMP/pam.d-common-auth-NAME: the host's common-auth with the pam-auth-update
        profile enabled, its module line using config."""
        path = self.tmp / f"pam.d-common-auth-{Path(config).stem}"
        if not path.exists():
            path.write_text(common_auth_with_profile([f"config={config}"]))
            os.chmod(path, 0o644)
        return path

    def write_sudoers(self):
        # the ssh user too: a login over ssh, then sudo at once
        text = (f"# pam_twilio_sms integration test (tests/integration); removed when it ends\n"
                f"Defaults:{SUDO_USER}, {SSH_USER} !lecture\n"
                f"{SUDO_USER}, {SSH_USER} ALL=(root) /usr/bin/id\n")
        staged = self.tmp / "sudoers"
        staged.write_text(text)
        os.chmod(staged, 0o440)
        sh(["visudo", "-c", "-q", "-f", str(staged)])
        self.cleanups.add(lambda: SUDOERS_DROP_IN.unlink(missing_ok=True))
        shutil.copyfile(staged, SUDOERS_DROP_IN)
        os.chmod(SUDOERS_DROP_IN, 0o440)
        sh(["visudo", "-c", "-q"])  # the whole sudoers, drop-in included, still parses

    # ---- sshd

    def sshd_config(self, variant, port, name):
        """Writes the test server's sshd_config and its drop-in in TMP/sshd-NAME, made of the
        lines of conf/sshd_config.snippet (variant "publickey": with the snippet's commented
        alternative instead of its AuthenticationMethods line; "password": without the
        snippet, as Debian's sshd_config leaves it; a variant in drop_ins: that text);
        returns the config's path."""
        d = self.tmp / f"sshd-{name}"
        (d / "sshd_config.d").mkdir(parents=True, exist_ok=True)
        text = (CONF / "sshd_config.snippet").read_text(encoding="utf-8")
        if variant in self.drop_ins:
            text = self.drop_ins[variant]
        elif variant == "password":
            text = ("# no conf/sshd_config.snippet: Debian's sshd_config (UsePAM yes, "
                    "KbdInteractiveAuthentication no,\n# PasswordAuthentication left at yes)\n"
                    "UsePAM yes\n")
        elif variant == "publickey":
            alt = re.search(r"^#.*?(AuthenticationMethods publickey,keyboard-interactive)\s*$",
                            text, re.M)
            check(alt, "conf/sshd_config.snippet has no 'AuthenticationMethods "
                       "publickey,keyboard-interactive' alternative")
            text, n = re.subn(r"^AuthenticationMethods .*$", alt.group(1), text, count=1,
                              flags=re.M)
            check(n == 1, "conf/sshd_config.snippet has no AuthenticationMethods line")
        (d / "sshd_config.d" / "10-pam_twilio_sms.conf").write_text(text)
        config = d / "sshd_config"
        config.write_text(
            "# private sshd of tests/integration/run_integration.py\n"
            f"Port {port}\n"
            "ListenAddress 127.0.0.1\n"
            f"HostKey {self.tmp / 'ssh_host_ed25519_key'}\n"
            f"PidFile {d / 'sshd.pid'}\n"
            f"AllowUsers {SSH_USER} {SU_TARGET}\n"
            "PermitRootLogin no\n"
            "LoginGraceTime 30\n"
            "UseDNS no\n"
            "LogLevel VERBOSE\n"
            # the README's place for the snippet: a drop-in that Debian's sshd_config
            # includes at its top
            f"Include {d / 'sshd_config.d'}/*.conf\n"
            "# as further down in Debian's /etc/ssh/sshd_config: the drop-in must win\n"
            "KbdInteractiveAuthentication no\n")
        return config

    def sshd(self, variant, config=None, service=None):
        """Starts (once) the test sshd of this variant, its PAM service using config (None:
        the shared one), or the service file `service` when given; returns (port, config
        path)."""
        name = variant if config is None else f"{variant}-{Path(config).stem}"
        if service is not None:
            name = f"{variant}-{Path(service).name}"
        got = self.servers.get(name)
        if isinstance(got, CaseFailure):
            raise got
        if got:
            return got
        try:
            self.servers[name] = self._start_sshd(variant, name, config, service)
        except CaseFailure as e:
            self.servers[name] = CaseFailure(f"sshd ({name}) did not start: {e}")
            raise self.servers[name] from None
        return self.servers[name]

    def _start_sshd(self, variant, name, module_config, service=None):
        # another config or service: that service file is bind-mounted over the shared one;
        # without a service of the case's own, sudo and su in the sessions use the module with
        # sshd's config, as on a host protected by one config
        binds = []
        if service is None:
            inner = module_config or self.config
            binds = [(self.sudo_service(inner), SUDO_PAM),
                     (self.debian_service(SU_PAM, inner), SU_PAM)]
        if service is None and module_config is not None:
            service = self.debian_service(PAM_DIR / "sshd", module_config, "pam.d-sshd.snippet")
        if service is not None:
            binds.insert(0, (service, PAM_DIR / SSHD_SERVICE))
        if not PRIVSEP_DIR.exists():  # systemd's ssh.service makes it (RuntimeDirectory)
            PRIVSEP_DIR.mkdir(mode=0o755)
            self.cleanups.add(lambda: PRIVSEP_DIR.rmdir() if not any(PRIVSEP_DIR.iterdir()) else None)
        for attempt in range(3):  # the free port may be taken before sshd binds it
            port = free_port()
            config = self.sshd_config(variant, port, name)
            sh([str(SSHD), "-t", "-f", str(config)])
            errlog = config.parent / "sshd.stderr"
            # an absolute path (sshd re-executes itself); argv[0]'s name is the PAM service
            cmd = self.syslog.wrap([str(self.sshd_link), "-D", "-e", "-f", str(config)],
                                   binds)
            # (a signal between Popen and cleanup() leaves sshd to end_orphans())
            with open(errlog, "wb") as err:
                proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=err, stderr=err,
                                        cwd="/", start_new_session=True)
            self.cleanups.add(stop_sshd, proc)
            if self._wait_for_banner(proc, port, errlog):
                return port, config
        raise CaseFailure(f"port {port} taken three times: {tail(errlog)}")

    @staticmethod
    def _wait_for_banner(proc, port, errlog, timeout=10.0):
        """True once sshd answers on port; False when it exited because the port was taken."""
        deadline = time.monotonic() + timeout
        while True:
            if proc.poll() is not None:
                if "Address already in use" in tail(errlog):
                    return False
                raise CaseFailure(f"exited {proc.returncode}: {tail(errlog)}")
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=2) as s:
                    s.settimeout(2)
                    if s.recv(64).startswith(b"SSH-2.0-"):
                        return True
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise CaseFailure(f"no SSH banner on 127.0.0.1:{port} within {timeout:.0f}s: "
                                  f"{tail(errlog)}")
            time.sleep(0.05)

    def ssh(self, variant, *, password=None, code="right", key=None, methods=None,
            command=("id", "-un"), config=None, service=None, source=None, user=SSH_USER,
            stdin=None):
        """Logs in as user to the variant's sshd (its PAM service using config, None: the
        shared one, or the service file `service`; sudo and su in the session use the module
        with the same config) with the real ssh client, from the loopback address source
        (None: the system's choice, 127.0.0.1), prompts answered by askpass.py; the remote
        command reads the text stdin (None: nothing, end of file); returns the Login."""
        port, server_config = self.sshd(variant, config, service)
        server_log = server_config.parent / "sshd.stderr"
        server_log_at = server_log.stat().st_size
        self.logins += 1
        n = self.logins
        login = Login(f"ssh login {n} ({variant})")
        prompt_log = self.tmp / f"askpass-{n}.jsonl"
        wrapper = self.tmp / "askpass"
        if not wrapper.exists():  # ssh execs SSH_ASKPASS directly: no reliance on the repo's x bit
            wrapper.write_text(f'#!/bin/sh\nexec "{sys.executable}" "{HERE / "askpass.py"}" "$@"\n')
            os.chmod(wrapper, 0o700)
        skip = len(self.sandbox.outbox())
        requests_before = len(self.sandbox.requests())
        env = {
            "PATH": "/usr/sbin:/usr/bin:/sbin:/bin",
            "HOME": str(self.tmp),
            "LANG": "C",
            "DISPLAY": ":0",
            "SSH_ASKPASS": str(wrapper),
            "SSH_ASKPASS_REQUIRE": "force",
            "TSMS_ASKPASS_PASSWORD": password if password is not None else self.passwords[user],
            "TSMS_ASKPASS_OUTBOX": str(self.sandbox.dir / "outbox.jsonl"),
            "TSMS_ASKPASS_SKIP": str(skip),
            "TSMS_ASKPASS_CODE": code,
            "TSMS_ASKPASS_LOG": str(prompt_log),
        }
        cmd = ["ssh", "-F", "/dev/null", "-T", "-p", str(port), "-l", user,
               "-o", "StrictHostKeyChecking=no",
               "-o", f"UserKnownHostsFile={self.tmp / 'known_hosts'}",
               "-o", "GlobalKnownHostsFile=/dev/null",
               "-o", f"PreferredAuthentications={methods or 'keyboard-interactive'}",
               "-o", "BatchMode=no", "-o", "NumberOfPasswordPrompts=1",
               "-o", "ConnectTimeout=10", "-o", "IdentitiesOnly=yes", "-o", "IdentityAgent=none",
               "-o", "LogLevel=ERROR"]
        if key:
            cmd += ["-i", str(self.tmp / key)]
        if source:
            cmd += ["-b", source]
        cmd += ["127.0.0.1", "--", *command]
        mark = self.syslog.mark()
        start = time.monotonic()
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                stdin=subprocess.DEVNULL if stdin is None else subprocess.PIPE,
                                env=env, cwd="/", text=True,
                                start_new_session=True)  # no terminal to fall back on
        try:
            login.stdout, login.stderr = proc.communicate(stdin, timeout=RUN_LIMIT)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            login.stdout, login.stderr = proc.communicate()
            login.status = "timeout"
        finally:
            stop_process(proc)
        login.elapsed = time.monotonic() - start
        if login.status is None:
            login.status = proc.returncode
        rows = prompt_log.read_text().splitlines() if prompt_log.exists() else []
        login.prompts = [(r["prompt"], r["answered"]) for r in map(json.loads, rows)]
        login.sms = self.sandbox.outbox()[skip:]
        login.requests = self.sandbox.requests()[requests_before:]
        login.logs = self.syslog.messages(mark)
        with open(server_log, "rb") as f:
            f.seek(server_log_at)
            login.server_log = f.read().decode(errors="replace")
        if self.verbose:
            print(f"  {login}")
        check(login.status != "timeout", f"ssh still running after {RUN_LIMIT:.0f}s: {login}")
        return login

    # ---- sudo

    def sudo(self, *, password=None, code="right", config=None, user=SUDO_USER, more_binds=()):
        """runuser -u USER -- sudo -S -k /usr/bin/id -un, in a namespace where the test
        service is /etc/pam.d/sudo (and more_binds are bind-mounted); the password is
        written at the first password prompt (a second one gets end of file), the code at
        each SMS prompt. Returns the Login."""
        return self.run_as(user, ["sudo", "-S", "-k", "--", "/usr/bin/id", "-un"],
                           (self.sudo_service(config or self.config), SUDO_PAM),
                           password=self.passwords[user] if password is None else password,
                           code=code, more_binds=more_binds)

    def hostile_environment(self, key_log):
        """What an attacker puts in the environment of a setuid program: the logging proxy
        in every proxy variable, and SSLKEYLOGFILE=key_log."""
        env = {name: f"http://127.0.0.1:{self.proxy.port}" for name in PROXY_VARIABLES}
        env["SSLKEYLOGFILE"] = str(key_log)
        return env

    def run_as(self, user, argv, bind, *, password, code="right", env=None, started=None,
               more_binds=(), passwords=1):
        """runuser -u USER -- ARGV in a private mount namespace where bind = (service file,
        /etc/pam.d/NAME) and each such pair of more_binds are bind-mounted, with PATH, LANG
        and env as the environment; the password is written at the first password prompt (at
        the first `passwords` ones; the next gets end of file), the code ("right", "wrong";
        "unsent": a code for a decoy prompt, no SMS awaited) at each SMS prompt. started, when
        given, is called with the Popen as soon as it runs (for a case that acts on the
        process meanwhile, from another thread). Returns the Login."""
        self.logins += 1
        login = Login(f"{argv[0]} run {self.logins}")
        cmd = self.syslog.wrap(["runuser", "-u", user, "--", *argv], [bind, *more_binds])
        skip = len(self.sandbox.outbox())
        requests_before = len(self.sandbox.requests())
        proxied_before = len(self.proxy.requests())
        mark = self.syslog.mark()
        start = time.monotonic()
        deadline = start + RUN_LIMIT
        proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, cwd="/", start_new_session=True,
                                env={"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "LANG": "C",
                                     **(env or {})})
        out_fd, err_fd = proc.stdout.fileno(), proc.stderr.fileno()
        out = {out_fd: b"", err_fd: b""}
        seen = {out_fd: 0, err_fd: 0}  # characters already searched for prompts
        try:
            if started is not None:
                started(proc)
            open_fds = {out_fd, err_fd}
            while open_fds:
                left = deadline - time.monotonic()
                check(left > 0, f"{argv[0]} still running after {RUN_LIMIT:.0f}s: "
                                f"{out[err_fd].decode(errors='replace')!r}")
                ready, _, _ = select.select(list(open_fds), [], [], min(left, 0.5))
                for fd in ready:
                    chunk = os.read(fd, 4096)
                    if not chunk:
                        open_fds.discard(fd)
                    out[fd] += chunk
                # sudo prompts on stderr, su and chfn (misc_conv) on stdout or stderr
                for fd in (err_fd, out_fd):
                    text = out[fd].decode(errors="replace")
                    reply = self._reply(text[seen[fd]:], login, password, code, skip, deadline,
                                        passwords)
                    if reply is False:
                        continue
                    seen[fd] = len(text)
                    with contextlib.suppress(BrokenPipeError, ValueError):
                        if reply is None:
                            proc.stdin.close()
                        else:
                            proc.stdin.write((reply + "\n").encode())
                            proc.stdin.flush()
            proc.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            raise CaseFailure(f"{argv[0]} closed its output but did not exit within "
                              f"{RUN_LIMIT:.0f}s") from None
        finally:
            stop_process(proc)
            for f in (proc.stdin, proc.stdout, proc.stderr):
                with contextlib.suppress(OSError, ValueError):
                    f.close()
        login.elapsed = time.monotonic() - start
        login.status = proc.returncode
        login.stdout = out[out_fd].decode(errors="replace")
        login.stderr = out[err_fd].decode(errors="replace")
        login.sms = self.sandbox.outbox()[skip:]
        login.requests = self.sandbox.requests()[requests_before:]
        login.proxied = self.proxy.requests()[proxied_before:]
        login.logs = self.syslog.messages(mark)
        if self.verbose:
            print(f"  {login}")
        return login

    def _reply(self, new, login, password, code, skip, deadline, passwords=1):
        """The answer to a prompt at the end of new (None: close stdin), False when no prompt."""
        if re.search(r"(password for \S+|Password): $", new):
            login.prompts.append((new.strip().splitlines()[-1], "password"))
            if sum(1 for _, a in login.prompts if a == "password") > passwords:
                return None
            return password
        if code.startswith("backup:") and new.endswith(": ") and (
                askpass.SMS_PROMPT_RE.search(new) or askpass.BACKUP_PROMPT_RE.search(new)):
            login.prompts.append((new.strip().splitlines()[-1], "backup code"))
            return code[len("backup:"):]
        m = askpass.SMS_PROMPT_RE.search(new)
        if m and new.endswith(": "):
            login.prompts.append((new.strip().splitlines()[-1], f"{code} code"))
            if code == "unsent":  # a decoy challenge: no SMS to wait for
                return "123456"
            sent = askpass.wait_for_code(str(self.sandbox.dir / "outbox.jsonl"), skip, m.group(1),
                                         timeout=min(askpass.WAIT_SECONDS,
                                                     max(0.1, deadline - time.monotonic())))
            check(sent is not None, f"SMS prompt {new.strip()!r} but no SMS with a code arrived")
            return wrong_code(sent) if code == "wrong" else sent
        return False


def stop_sshd(proc, timeout=5):
    """Ends the listening sshd. Its connection processes (each in its own session, so not in
    its process group) end by themselves once the ssh client is gone: they get that long
    while sshd is there to reap them, then they and their children are killed."""
    if proc.poll() is None:
        deadline = time.monotonic() + timeout
        while any(map(running, descendants(proc.pid))) and time.monotonic() < deadline:
            time.sleep(0.05)
        for pid in reversed(descendants(proc.pid)):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
    stop_process(proc, timeout)


def tail(path, n=600):
    try:
        return Path(path).read_text(errors="replace")[-n:].strip() or "(nothing on stderr)"
    except OSError:
        return "(no stderr file)"


# --------------------------------------------------------------------------- expectations

def expect_success(login, service, user, stdout):
    check(login.status == 0, f"exit {login.status}, want 0: {login}")
    check(login.stdout.strip() == stdout,
          f"output {login.stdout.strip()!r}, want {stdout!r}: {login}")
    check(len(login.sms) == 1, f"{len(login.sms)} SMS sent, want 1: {login}")
    results = login.results(service)
    check(results == ["PAM_SUCCESS"],
          f"module outcome lines say {results}, want one result=PAM_SUCCESS: {login.logs!r}")
    line = next(l for l in login.module_logs(service) if "result=" in l)
    for part in (f"user={user}", "phone=******", f"sid={login.sms[0]['sid']}"):
        check(part in line, f"outcome line lacks {part!r}: {line!r}")
    check_no_secrets(login)


def expect_refused(login, service, stdout_must_not, results, sms):
    check(login.status not in (0, "timeout"), f"exit {login.status}, want a failure: {login}")
    check(stdout_must_not not in login.stdout, f"the command ran: {login}")
    check(len(login.sms) == sms, f"{len(login.sms)} SMS sent, want {sms}: {login}")
    got = login.results(service)
    check(got == results, f"module outcome lines say {got}, want {results}: {login.logs!r}")
    check_no_secrets(login)


def check_no_secrets(login):
    for msg in login.sms:
        for code in re.findall(r"(?<!\d)\d{6}(?!\d)", msg.get("body") or ""):
            for line in login.logs:
                check(not re.search(rf"(?<![0-9A-Za-z]){code}(?![0-9A-Za-z])", line),
                      f"code {code} in a syslog line: {line!r}")
        for line in login.logs:
            check(msg["to"].lstrip("+") not in line, f"unmasked number in syslog: {line!r}")
            check(AUTH_TOKEN not in line, f"auth token in syslog: {line!r}")


def prompt_kinds(login):
    """The prompts as 'password' / 'sms' / 'wrong-sms' / 'other'."""
    kinds = []
    for prompt, _ in login.prompts:
        if askpass.PASSWORD_RE.search(prompt):
            kinds.append("password")
        elif askpass.SMS_PROMPT_RE.search(prompt):
            kinds.append("wrong-sms" if "Wrong code." in prompt else "sms")
        elif askpass.BACKUP_PROMPT_RE.search(prompt):
            kinds.append("backup")
        else:
            kinds.append("other")
    return kinds


def expect_prompts(login, want, last4):
    kinds = prompt_kinds(login)
    check(kinds == want, f"prompts {login.prompts!r}, want {want}")
    for prompt, _ in login.prompts:
        if askpass.SMS_PROMPT_RE.search(prompt):
            check(prompt.rstrip().endswith(f"******{last4}:"),
                  f"prompt {prompt!r} not for ******{last4}")


# --------------------------------------------------------------------------- cases

@case
def sshd_config_snippet_in_effect(h):
    """sshd -T: the drop-in's values beat the later `KbdInteractiveAuthentication no`."""
    for variant, methods in (("kbd", "keyboard-interactive"),
                             ("publickey", "publickey,keyboard-interactive")):
        _, config = h.sshd(variant)
        p = sh([str(SSHD), "-T", "-f", str(config)])
        got = dict(l.split(" ", 1) for l in p.stdout.splitlines() if " " in l)
        want = {"usepam": "yes", "kbdinteractiveauthentication": "yes",
                "passwordauthentication": "no", "authenticationmethods": methods}
        wrong = {k: got.get(k) for k, v in want.items() if got.get(k) != v}
        check(not wrong, f"{variant}: sshd -T gives {wrong}, want {want}")


@case
def ssh_password_then_sms_code(h):
    login = h.ssh("kbd")
    expect_success(login, SSHD_SERVICE, SSH_USER, SSH_USER)
    expect_prompts(login, ["password", "sms"], SSH_PHONE[-4:])
    check(login.sms[0]["to"] == SSH_PHONE, f"SMS to {login.sms[0]['to']}, want {SSH_PHONE}")


@case
def ssh_wrong_code_refused(h):
    login = h.ssh("kbd", code="wrong")
    expect_refused(login, SSHD_SERVICE, SSH_USER, ["PAM_MAXTRIES"], sms=1)
    expect_prompts(login, ["password", "sms", "wrong-sms", "wrong-sms"], SSH_PHONE[-4:])


@case
def ssh_wrong_password_sends_no_sms(h):
    login = h.ssh("kbd", password="not-the-password")
    check(login.status not in (0, "timeout") and SSH_USER not in login.stdout, f"got in: {login}")
    expect_prompts(login, ["password"], SSH_PHONE[-4:])
    check(not login.sms and not login.requests,
          f"{len(login.sms)} SMS, {len(login.requests)} requests after a wrong password")
    check(not login.any_module_log(), f"the module ran after a wrong password: {login.logs!r}")
    check(any(l.startswith(f"pam_unix({SSHD_SERVICE}:auth): authentication failure")
              for l in login.logs),
          f"no pam_unix failure logged for {SSHD_SERVICE}: {login.logs!r}")


@case
def ssh_key_alone_not_enough(h):
    """AuthenticationMethods keyboard-interactive: an authorised key does not bypass PAM."""
    login = h.ssh("kbd", key="client_key", methods="publickey")
    check(login.status not in (0, "timeout") and SSH_USER not in login.stdout, f"got in: {login}")
    check(not login.prompts and not login.sms, f"prompts {login.prompts!r}, {len(login.sms)} SMS")


@case
def ssh_publickey_then_password_and_sms_code(h):
    login = h.ssh("publickey", key="client_key", methods="publickey,keyboard-interactive")
    expect_success(login, SSHD_SERVICE, SSH_USER, SSH_USER)
    expect_prompts(login, ["password", "sms"], SSH_PHONE[-4:])


@case
def ssh_publickey_required_before_sms(h):
    for what, key, methods in (("an unauthorised key", "other_key",
                                "publickey,keyboard-interactive"),
                               ("no key", None, "keyboard-interactive")):
        login = h.ssh("publickey", key=key, methods=methods)
        check(login.status not in (0, "timeout") and SSH_USER not in login.stdout,
              f"with {what}: got in: {login}")
        check(not login.prompts, f"with {what}: prompted {login.prompts!r}")
        check(not login.sms and not login.any_module_log(),
              f"with {what}: {len(login.sms)} SMS, module logs {login.any_module_log()!r}")


def outcome_line(login, service):
    return next(l for l in login.module_logs(service) if "result=" in l)


@case
def ssh_backup_code_at_the_sms_prompt(h):
    """A real ssh login (password, then the factor) typing a backup code, in capitals and
    without the hyphen, at the SMS prompt: in, the code gone, a second try with it refused."""
    code, _ = h.backup_codes(SSH_USER)
    login = h.ssh("kbd", code="backup:" + code.replace("-", "").upper())
    check(login.status == 0 and login.stdout.strip() == SSH_USER, f"not in: {login}")
    expect_prompts(login, ["password", "sms"], SSH_PHONE[-4:])
    line = outcome_line(login, SSHD_SERVICE)
    check("method=backup-code" in line and "result=PAM_SUCCESS" in line and
          "backup code accepted, 1 left" in line, f"outcome line {line!r}")
    for text in [line, *login.logs]:
        check(code not in text and code.replace("-", "") not in text.lower(),
              f"the backup code in syslog: {text!r}")
    again = h.ssh("kbd", code="backup:" + code)
    check(again.status not in (0, "timeout") and SSH_USER not in again.stdout,
          f"a used code got in again: {again}")
    check(again.results(SSHD_SERVICE) == ["PAM_MAXTRIES"],
          f"outcome lines {again.results(SSHD_SERVICE)}")


@case
def sudo_backup_code_while_twilio_is_down(h):
    """sudo while Twilio answers 503: the module asks `SMS unavailable; backup code: `, a
    backup code lets the user in; without codes the same outage denies (failMode closed)."""
    code, _ = h.backup_codes(SUDO_USER)
    h.sandbox.set_scenario("503")
    try:
        login = h.sudo(code="backup:" + code)
        plain_config = h.write_config("no-backup-codes", h.public_ca_file(),
                                      backupCodesFile=None)
        denied = h.sudo(config=plain_config)
    finally:
        h.sandbox.set_scenario("ok")
    check(login.status == 0 and login.stdout.strip() == "root", f"not in: {login}")
    check([a for _, a in login.prompts] == ["password", "backup code"],
          f"prompts {login.prompts!r}")
    check(login.prompts[1][0].endswith("SMS unavailable; backup code:"),
          f"prompt {login.prompts[1][0]!r}")
    line = outcome_line(login, "sudo")
    check("method=backup-code" in line and "SMS unavailable (" in line and
          "result=PAM_SUCCESS" in line, f"outcome line {line!r}")
    check(denied.status not in (0, "timeout") and denied.results("sudo") ==
          ["PAM_AUTHINFO_UNAVAIL"], f"without backup codes: {denied} {denied.logs!r}")


@case
def sudo_password_then_sms_code(h):
    login = h.sudo()
    expect_success(login, "sudo", SUDO_USER, "root")
    expect_prompts(login, ["password", "sms"], SUDO_PHONE[-4:])
    check(login.sms[0]["to"] == SUDO_PHONE, f"SMS to {login.sms[0]['to']}, want {SUDO_PHONE}")


@case
def sudo_wrong_code_refused(h):
    login = h.sudo(code="wrong")
    expect_refused(login, "sudo", "root", ["PAM_MAXTRIES"], sms=1)
    kinds = prompt_kinds(login)
    check(kinds[:4] == ["password", "sms", "wrong-sms", "wrong-sms"] and
          set(kinds[4:]) <= {"password"}, f"prompts {login.prompts!r}")


@case
def sudo_wrong_password_sends_no_sms(h):
    login = h.sudo(password="not-the-password")
    check(login.status != 0 and "root" not in login.stdout, f"sudo ran the command: {login}")
    check(prompt_kinds(login) and set(prompt_kinds(login)) == {"password"},
          f"prompts {login.prompts!r}")
    check(not login.sms and not login.requests,
          f"{len(login.sms)} SMS, {len(login.requests)} requests after a wrong password")
    check(not login.any_module_log(), f"the module ran after a wrong password: {login.logs!r}")


@case
def sudo_ca_file_readable_by_root_only(h):
    """caFile in a directory only root can enter: sudo runs the module with the invoking user's
    real uid and euid 0, so a check with access(2) (real uid) would refuse it."""
    login = h.sudo(config=h.config_private_ca)
    refusal = [l for l in login.module_logs("sudo") if "caFile" in l]
    check(not refusal, f"the module refused the caFile under sudo (checked with the invoking "
                       f"user's real uid, e.g. access(2), instead of the effective one): {refusal}")
    expect_success(login, "sudo", SUDO_USER, "root")


def default_limits(h, name):
    """A config of the case's own, TMP/NAME.json, with the module's default limits (not the
    shared config's resendCooldownSeconds 0 and maxAttempts 3), a stateDir of its own and
    no backup codes (a refusal by the cooldown would offer them); returns (config path,
    stateDir)."""
    state_dir = h.tmp / f"state-{name}"
    return h.write_config(name, h.public_ca_file(), stateDir=str(state_dir),
                          resendCooldownSeconds=None, maxAttempts=None,
                          backupCodesFile=None), state_dir


@case
def sudo_at_once_after_an_ssh_login(h):
    """Default limits (resendCooldownSeconds 30): a user who logs in over ssh with the SMS
    code and runs sudo at once gets a text and gets in, as the right answer ended the
    cooldown. A text nobody answered right keeps it: after a sudo with a wrong code, a
    sudo at once is refused with no text."""
    cfg, state_dir = default_limits(h, "cooldown")
    login = h.ssh("kbd", config=cfg)
    expect_success(login, SSHD_SERVICE, SSH_USER, SSH_USER)
    expect_prompts(login, ["password", "sms"], SSH_PHONE[-4:])
    sudo = h.sudo(user=SSH_USER, config=cfg)
    expect_success(sudo, "sudo", SSH_USER, "root")
    expect_prompts(sudo, ["password", "sms"], SSH_PHONE[-4:])
    wrong = h.sudo(user=SSH_USER, config=cfg, code="wrong")
    expect_refused(wrong, "sudo", "root", ["PAM_MAXTRIES"], sms=1)
    again = h.sudo(user=SSH_USER, config=cfg)
    expect_refused(again, "sudo", "root", ["PAM_AUTH_ERR"], sms=0)
    check("Too many SMS codes requested" in again.stderr + again.stdout,
          f"not told why: {again}")
    line = outcome_line(again, "sudo")
    check("resendCooldownSeconds" in line, f"outcome line {line!r}")
    state = read_state(state_dir / SSH_USER)
    check(state["sends"] == 3, f"state {state}, want sends=3 (ssh, sudo, the wrong-code sudo)")


@case
def sudo_with_the_profile_and_its_own_line(h):
    """The pam-auth-update profile's line in common-auth and the hand-written line of
    conf/pam.d-sudo.snippet in /etc/pam.d/sudo, default limits: the second line accepts the
    first one's code (one text, one code prompt, in) and says it is stacked twice, with
    the fix."""
    cfg, _ = default_limits(h, "stacked")
    common_auth = h.common_auth(cfg)
    check(sum(str(MODULE) in l for l in common_auth.read_text().splitlines()) == 1,
          f"{common_auth} has no module line: {common_auth.read_text()!r}")
    login = h.sudo(config=cfg, more_binds=[(common_auth, COMMON_AUTH)])
    check(login.status == 0 and login.stdout.strip() == "root", f"not in: {login}")
    expect_prompts(login, ["password", "sms"], SUDO_PHONE[-4:])
    check(len(login.sms) == 1, f"{len(login.sms)} SMS sent, want 1: {login}")
    check(login.results("sudo") == ["PAM_SUCCESS", "PAM_SUCCESS"],
          f"outcome lines say {login.results('sudo')}, want two PAM_SUCCESS: {login.logs!r}")
    first, second = [l for l in login.module_logs("sudo") if "result=" in l]
    check(f"sid={login.sms[0]['sid']}" in first and "method=sms" in first,
          f"first outcome line {first!r}")
    check("method=stacked result=PAM_SUCCESS" in second and
          "stacked twice in sudo; fix: keep one pam_twilio_sms line" in second,
          f"second outcome line {second!r}")
    check_no_secrets(login)


@case
def ssh_password_authentication_named_not_counted(h):
    """sshd without conf/sshd_config.snippet (Debian's defaults: password authentication),
    the client using its password method: sshd answers every PAM prompt with the password.
    One text; the password as the first answer ends the login as a denial, counts no wrong
    code, and the outcome line names the sshd fix."""
    cfg, state_dir = default_limits(h, "password-auth")
    _, server_config = h.sshd("password", cfg)
    p = sh([str(SSHD), "-T", "-f", str(server_config)])
    got = dict(l.split(" ", 1) for l in p.stdout.splitlines() if " " in l)
    want = {"usepam": "yes", "passwordauthentication": "yes",
            "kbdinteractiveauthentication": "no", "authenticationmethods": "any"}
    wrong = {k: got.get(k) for k, v in want.items() if got.get(k) != v}
    check(not wrong, f"sshd -T gives {wrong}, want {want}")
    login = h.ssh("password", methods="password", config=cfg)
    expect_refused(login, SSHD_SERVICE, SSH_USER, ["PAM_AUTH_ERR"], sms=1)
    expect_prompts(login, ["password"], SSH_PHONE[-4:])
    line = outcome_line(login, SSHD_SERVICE)
    check("the answer to the code prompt was the user's password: sshd is using password "
          "authentication; fix: KbdInteractiveAuthentication yes and AuthenticationMethods "
          "keyboard-interactive (conf/sshd_config.snippet)" in line, f"outcome line {line!r}")
    state = read_state(state_dir / SSH_USER)
    check(state["failures"] == 0 and state["locked_until"] == 0, f"counted: {state}")
    password = h.passwords[SSH_USER]
    check(all(password not in l for l in login.logs), "the password in syslog")


def expect_untouched(h, login, key_logs):
    """The hostile environment steered nothing: no request reached the caller's proxy, no
    key log file appeared, nothing was created in the root-only directory."""
    check(login.proxied == [], f"the caller's proxy saw {login.proxied!r}: {login}")
    for path in key_logs:
        check(not os.path.lexists(path), f"the key log file {path} was created: {login}")
    made = sorted(os.listdir(h.root_dir))
    check(not made, f"created in the root-only directory {h.root_dir}: {made}: {login}")


@case
def su_hostile_environment_ignored(h):
    """An unprivileged caller who knows the target's password (not the phone) runs setuid su
    with its proxy and key log variables: the SMS goes straight to Twilio, nothing of the
    TLS session is written anywhere, and the login works."""
    key_log = h.caller_dir / "keys.log"
    login = h.run_as(CALLER, ["su", "-c", "/usr/bin/id -un", SU_TARGET],
                     (h.debian_service(SU_PAM, h.config), SU_PAM),
                     password=h.passwords[SU_TARGET], env=h.hostile_environment(key_log))
    expect_success(login, "su", SU_TARGET, SU_TARGET)
    check(login.sms[0]["to"] == SU_TARGET_PHONE, f"SMS to {login.sms[0]['to']}")
    expect_untouched(h, login, [key_log])


@case
def su_wrong_code_refused_in_hostile_environment(h):
    key_log = h.caller_dir / "keys-wrong.log"
    login = h.run_as(CALLER, ["su", "-c", "/usr/bin/id -un", SU_TARGET],
                     (h.debian_service(SU_PAM, h.config), SU_PAM),
                     password=h.passwords[SU_TARGET], code="wrong",
                     env=h.hostile_environment(key_log))
    expect_refused(login, "su", SU_TARGET, ["PAM_MAXTRIES"], 1)
    expect_untouched(h, login, [key_log])


@case
def chfn_key_log_in_root_only_directory_not_created(h):
    """chfn, as the caller itself (no number: the decoy challenge), with SSLKEYLOGFILE naming
    a file in a directory only root can write: libcurl would create it as root when it
    starts, even for a user without a number. Nothing is created; chfn changes nothing."""
    key_log = h.root_dir / "nologin"
    before = pwd.getpwnam(CALLER).pw_gecos
    login = h.run_as(CALLER, ["chfn", "-r", "42"], (h.debian_service(CHFN_PAM, h.config), CHFN_PAM),
                     password=h.passwords[CALLER], code="unsent",
                     env=h.hostile_environment(key_log))
    expect_refused(login, "chfn", "Room", ["PAM_MAXTRIES"], 0)
    check(len([p for p in login.prompts if p[1].endswith("code")]) == 3,
          f"the decoy challenge did not ask three times: {login.prompts!r}")
    expect_untouched(h, login, [key_log])
    check(pwd.getpwnam(CALLER).pw_gecos == before, "chfn changed the GECOS field")


@case
def su_openssl_cpu_mask_refused(h):
    """OPENSSL_ia32cap is read as the module is loaded, before it can hide the environment:
    the module refuses, says why, and sends nothing."""
    login = h.run_as(CALLER, ["su", "-c", "/usr/bin/id -un", SU_TARGET],
                     (h.debian_service(SU_PAM, h.config), SU_PAM),
                     password=h.passwords[SU_TARGET],
                     env={"OPENSSL_ia32cap": "~0x200000200000000"})
    expect_refused(login, "su", SU_TARGET, ["PAM_SERVICE_ERR"], 0)
    check(any("refusing to run: the environment sets OPENSSL_ia32cap" in l
              for l in login.module_logs("su")), f"no refusal line: {login.logs!r}")


# --------------------------------------------------------------------------- graces

SUDO_IN_SESSION = ("sudo", "-S", "-k", "--", "/usr/bin/id", "-un")  # the password on stdin
SU_IN_SESSION = ("su", "-c", "'/usr/bin/id -un'")  # and the target user


def grace_config(h, name, **over):
    """A config of the case's own, TMP/NAME.json, with a stateDir of its own and the keys
    of over (the graces); returns (config path, stateDir)."""
    state_dir = h.tmp / f"state-{name}"
    return h.write_config(name, h.public_ca_file(), stateDir=str(state_dir), **over), state_dir


def expect_graced(login, service, user, stdout, method):
    """In without a text or a code prompt, the outcome line naming the grace; returns it."""
    check(login.status == 0, f"exit {login.status}, want 0: {login}")
    check(login.stdout.strip().splitlines()[-1:] == [stdout],
          f"output {login.stdout.strip()!r}, want {stdout!r} at the end: {login}")
    check(not login.sms and not login.requests,
          f"{len(login.sms)} SMS, {len(login.requests)} requests in a grace: {login}")
    check(login.results(service) == ["PAM_SUCCESS"],
          f"{service}: outcome lines say {login.results(service)}: {login.logs!r}")
    line = outcome_line(login, service)
    for part in (f"user={user}", "sid=- attempts=0", f"method={method}"):
        check(part in line, f"outcome line lacks {part!r}: {line!r}")
    check_no_secrets(login)
    return line


def session_grace_lines(login, user=None):
    """The session hook's lines in sshd (all, or those about user)."""
    prefix = f"pam_twilio_sms({SSHD_SERVICE}:session): "
    return [l[len(prefix):] for l in login.logs if l.startswith(prefix) and
            (user is None or f" for {user}:" in l)]


@case
def ssh_address_grace_one_text_for_two_logins(h):
    """gracePeriodSeconds: a second login from 127.0.0.1 gets in on the password alone; one
    from 127.0.0.2 (ssh -b), or of another user from 127.0.0.1, is texted."""
    cfg, _ = grace_config(h, "grace-address", gracePeriodSeconds=300)
    first = h.ssh("kbd", config=cfg)
    expect_success(first, SSHD_SERVICE, SSH_USER, SSH_USER)
    again = h.ssh("kbd", config=cfg)
    line = expect_graced(again, SSHD_SERVICE, SSH_USER, SSH_USER, "grace-address")
    check("reason=from 127.0.0.1, where a right code was given: gracePeriodSeconds" in line,
          f"outcome line {line!r}")
    check(prompt_kinds(again) == ["password"], f"prompts {again.prompts!r}")
    other_address = h.ssh("kbd", config=cfg, source="127.0.0.2")
    expect_success(other_address, SSHD_SERVICE, SSH_USER, SSH_USER)
    expect_prompts(other_address, ["password", "sms"], SSH_PHONE[-4:])
    other_user = h.ssh("kbd", config=cfg, user=SU_TARGET)
    expect_success(other_user, SSHD_SERVICE, SU_TARGET, SU_TARGET)
    expect_prompts(other_user, ["password", "sms"], SU_TARGET_PHONE[-4:])


@case
def ssh_address_grace_ends_with_its_window(h):
    """gracePeriodSeconds 4: a login inside the window is let in and does not extend it; the
    first login after it is texted."""
    cfg, _ = grace_config(h, "grace-short", gracePeriodSeconds=4)
    first = h.ssh("kbd", config=cfg)
    coded = time.monotonic()  # the code was right before this
    expect_success(first, SSHD_SERVICE, SSH_USER, SSH_USER)
    inside = h.ssh("kbd", config=cfg)
    expect_graced(inside, SSHD_SERVICE, SSH_USER, SSH_USER, "grace-address")
    time.sleep(max(0.0, coded + 4.5 - time.monotonic()))
    after = h.ssh("kbd", config=cfg)
    expect_success(after, SSHD_SERVICE, SSH_USER, SSH_USER)
    expect_prompts(after, ["password", "sms"], SSH_PHONE[-4:])


@case
def ssh_session_grace_lets_sudo_in_the_session_skip_the_text(h):
    """sessionGraceSeconds: sshd carries the nonce of the auth phase to the session hook
    (conf/pam.d-sshd-session.snippet), which records the audit session and takes the nonce
    out of the session's environment; sudo in that session gets in on the password alone."""
    cfg, _ = grace_config(h, "grace-session", sessionGraceSeconds=300)
    login = h.ssh("kbd", config=cfg, command=("env", "&&", *SUDO_IN_SESSION),
                  stdin=h.passwords[SSH_USER] + "\n")
    check(f"USER={SSH_USER}" in login.stdout.splitlines(), f"env did not run: {login}")
    check("PAM_TWILIO_SMS_SESSION" not in login.stdout,
          f"the nonce's variable is in the session's environment: {login.stdout!r}")
    check(login.results(SSHD_SERVICE) == ["PAM_SUCCESS"] and len(login.sms) == 1,
          f"the ssh login: {login}")
    hook = session_grace_lines(login)
    check(len(hook) == 1, f"session hook lines {hook!r}: {login.logs!r}")
    m = re.fullmatch(rf"session grace for {SSH_USER}: audit session (\d+), (\d+) s "
                     r"\(sessionGraceSeconds\)", hook[0])
    check(m and 295 <= int(m.group(2)) <= 300, f"session hook line {hook[0]!r}")
    check(login.status == 0 and login.stdout.strip().splitlines()[-1:] == ["root"],
          f"sudo did not run: {login}")
    check(login.results("sudo") == ["PAM_SUCCESS"], f"sudo: {login.results('sudo')}")
    line = outcome_line(login, "sudo")
    check(f"user={SSH_USER}" in line and "sid=- attempts=0 method=grace-session" in line and
          f"reason=in audit session {m.group(1)}, opened after a right code: "
          "sessionGraceSeconds" in line, f"sudo's outcome line {line!r}")
    check("SMS code" not in login.stderr, f"sudo asked for a code: {login.stderr!r}")


@case
def ssh_address_graced_login_gets_a_session_grace_no_longer_than_it(h):
    """Both graces: a login let in by the address grace (no code) still gets a session grace,
    but only for what is left of the address grace (60 s, not sessionGraceSeconds 300)."""
    cfg, _ = grace_config(h, "grace-both", gracePeriodSeconds=60, sessionGraceSeconds=300)
    expect_success(h.ssh("kbd", config=cfg), SSHD_SERVICE, SSH_USER, SSH_USER)
    login = h.ssh("kbd", config=cfg, command=SUDO_IN_SESSION,
                  stdin=h.passwords[SSH_USER] + "\n")
    expect_graced(login, SSHD_SERVICE, SSH_USER, "root", "grace-address")
    hook = session_grace_lines(login)
    m = hook and re.fullmatch(rf"session grace for {SSH_USER}: audit session \d+, (\d+) s "
                              r"\(sessionGraceSeconds\)", hook[0])
    check(m and 50 <= int(m.group(1)) <= 60, f"session hook lines {hook!r}")
    check(login.results("sudo") == ["PAM_SUCCESS"] and
          "method=grace-session" in outcome_line(login, "sudo"),
          f"sudo: {login.results('sudo')}: {login.logs!r}")

@case
def ssh_without_session_grace_sudo_in_the_session_is_asked(h):
    """No graces: sudo in the ssh session sends a text and asks for the code, which its stdin
    does not have; the session hook does nothing."""
    cfg, _ = grace_config(h, "no-grace")  # its own stateDir: the shared one's sendLimit
    login = h.ssh("kbd", config=cfg, command=SUDO_IN_SESSION,
                  stdin=h.passwords[SSH_USER] + "\n")
    check(login.status != 0 and "root" not in login.stdout, f"sudo ran: {login}")
    check([m["to"] for m in login.sms] == [SSH_PHONE, SSH_PHONE],
          f"SMS to {[m['to'] for m in login.sms]}, want the login's and sudo's: {login}")
    check(login.results(SSHD_SERVICE) == ["PAM_SUCCESS"], f"the ssh login: {login}")
    check(len(login.results("sudo")) == 1 and login.results("sudo") != ["PAM_SUCCESS"],
          f"sudo: {login.results('sudo')}: {login.logs!r}")
    check(f"SMS code sent to ******{SSH_PHONE[-4:]}" in login.stderr,
          f"sudo did not ask for the code: {login.stderr!r}")
    check(not session_grace_lines(login), f"the session hook spoke: {login.logs!r}")


@case
def su_in_another_users_graced_session_is_asked(h):
    """A session with a session grace of its user's (SU_TARGET): su to SSH_USER in it is
    asked for SSH_USER's code (a text to SSH_USER's phone; the code prompt reads end of
    file)."""
    cfg, _ = grace_config(h, "grace-su", sessionGraceSeconds=300)
    login = h.ssh("kbd", config=cfg, user=SU_TARGET, command=(*SU_IN_SESSION, SSH_USER),
                  stdin=h.passwords[SSH_USER] + "\n")
    check(session_grace_lines(login, SU_TARGET) and
          session_grace_lines(login, SU_TARGET)[0].startswith(
              f"session grace for {SU_TARGET}: audit session "),
          f"no session grace for {SU_TARGET}'s session: {login.logs!r}")
    check(login.status != 0 and SSH_USER not in login.stdout, f"su ran: {login}")
    check([m["to"] for m in login.sms] == [SU_TARGET_PHONE, SSH_PHONE],
          f"SMS to {[m['to'] for m in login.sms]}, want the login's and su's: {login}")
    check(len(login.results("su")) == 1 and login.results("su") != ["PAM_SUCCESS"],
          f"su: {login.results('su')}: {login.logs!r}")
    line = outcome_line(login, "su")
    check(f"user={SSH_USER}" in line and "grace" not in line, f"su's outcome line {line!r}")


@case
def ssh_lockout_wins_over_an_address_grace(h):
    """A grace from 127.0.0.1 is open; wrong codes from 127.0.0.2 lock the user out; the
    next login from 127.0.0.1 is refused as locked, with no text."""
    cfg, state_dir = grace_config(h, "grace-lockout", gracePeriodSeconds=300,
                                  lockoutThreshold=3)
    expect_success(h.ssh("kbd", config=cfg), SSHD_SERVICE, SSH_USER, SSH_USER)
    wrong = h.ssh("kbd", config=cfg, source="127.0.0.2", code="wrong")
    check(wrong.status != 0 and len(wrong.sms) == 1, f"the wrong codes: {wrong}")
    line = outcome_line(wrong, SSHD_SERVICE)
    check("locked out for 900 s after 3 consecutive wrong codes" in line, f"not locked: {line!r}")
    # (the harness's read_state() knows only the first line of a state file)
    state = (state_dir / SSH_USER).read_text()
    check(re.search(r"^g a 127\.0\.0\.1 \d+$", state, re.M), f"no grace open: {state!r}")
    locked = h.ssh("kbd", config=cfg)
    check(locked.status not in (0, "timeout") and SSH_USER not in locked.stdout,
          f"got in: {locked}")
    check(not locked.sms, f"{len(locked.sms)} SMS to a locked-out user")
    line = outcome_line(locked, SSHD_SERVICE)
    check("locked out (lockoutThreshold)" in line and "grace" not in line,
          f"outcome line {line!r}")


@case
def ssh_key_only_session_gets_no_session_grace(h):
    """sessionGraceSeconds, the user just gave a code over ssh: a login with the key alone
    (AuthenticationMethods publickey; sshd opens a PAM session all the same) leaves no
    session grace, so sudo in it is texted."""
    h.drop_ins["keyonly"] = ("UsePAM yes\nKbdInteractiveAuthentication yes\n"
                             "PasswordAuthentication no\nAuthenticationMethods publickey\n")
    cfg, _ = grace_config(h, "grace-keyonly", sessionGraceSeconds=300)
    coded = h.ssh("kbd", config=cfg)
    expect_success(coded, SSHD_SERVICE, SSH_USER, SSH_USER)
    check(session_grace_lines(coded, SSH_USER), f"no session grace: {coded.logs!r}")
    login = h.ssh("keyonly", config=cfg, key="client_key", methods="publickey",
                  command=SUDO_IN_SESSION, stdin=h.passwords[SSH_USER] + "\n")
    check(not login.prompts and login.results(SSHD_SERVICE) == [],
          f"the key-only login ran the module: {login.prompts!r} {login.logs!r}")
    check(not session_grace_lines(login), f"the session hook spoke: {login.logs!r}")
    check(login.status != 0 and "root" not in login.stdout, f"sudo ran: {login}")
    check([m["to"] for m in login.sms] == [SSH_PHONE], f"{len(login.sms)} SMS, want sudo's")
    check(len(login.results("sudo")) == 1 and login.results("sudo") != ["PAM_SUCCESS"],
          f"sudo: {login.results('sudo')}: {login.logs!r}")


def fleet_hosts(h, name, scope):
    """The configs of two hosts (two sshd) on the case's Redis, each with its own stateDir,
    gracePeriodSeconds 300 and graceScope scope."""
    server = h.redis()
    return [grace_config(h, f"{name}-host{n}", gracePeriodSeconds=300, graceScope=scope,
                         redis=server.module_config())[0] for n in (1, 2)]


@case
def ssh_fleet_grace_covers_the_other_host(h):
    """graceScope fleet: after a code on host 1, host 2 lets the user in from the same
    address without a text; the grace is in Redis under the prefix, with its TTL."""
    one, two = fleet_hosts(h, "grace-fleet", "fleet")
    expect_success(h.ssh("kbd", config=one), SSHD_SERVICE, SSH_USER, SSH_USER)
    keys = dict(h.redis_server.keys())
    ttl = keys.get(f"pam_twilio_sms:grace:{SSH_USER}")
    check(ttl is not None and 0 < ttl <= 300, f"Redis keys {keys}")
    other = h.ssh("kbd", config=two)
    line = expect_graced(other, SSHD_SERVICE, SSH_USER, SSH_USER, "grace-address")
    check("from 127.0.0.1" in line, f"outcome line {line!r}")


@case
def ssh_host_grace_asks_on_the_other_host(h):
    """graceScope host (Redis for the limits): after a code on host 1, host 2 texts; host 1
    lets the user in again."""
    one, two = fleet_hosts(h, "grace-host", "host")
    expect_success(h.ssh("kbd", config=one), SSHD_SERVICE, SSH_USER, SSH_USER)
    other = h.ssh("kbd", config=two)
    expect_success(other, SSHD_SERVICE, SSH_USER, SSH_USER)
    expect_prompts(other, ["password", "sms"], SSH_PHONE[-4:])
    expect_graced(h.ssh("kbd", config=one), SSHD_SERVICE, SSH_USER, SSH_USER, "grace-address")


# --------------------------------------------------------------------------- main

def prerequisite_problem():
    """Installs the Debian packages; returns what is missing, or None."""
    if not MODULE.is_file():
        return f"module not built: {MODULE} missing (run make)"
    problem = install_debs(DEBS)
    if problem:
        return problem
    for tool in ("ssh", "ssh-keygen", "sudo", "visudo", "runuser", "unshare", "useradd", "su",
                 "chfn"):
        if shutil.which(tool, path="/usr/sbin:/usr/bin:/sbin:/bin") is None:
            return f"{tool} not found"
    if not SSHD.is_file():
        return f"{SSHD} missing"
    return None


def take_lock():
    """Locks LOCK_FILE until the process exits (the fd stays open); waits up to LOCK_WAIT
    seconds for another run."""
    LOCK_FILE.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(LOCK_FILE, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
    deadline = time.monotonic() + LOCK_WAIT
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return
        except OSError as e:
            if e.errno not in (errno.EAGAIN, errno.EACCES):
                raise
        if time.monotonic() > deadline:
            os.close(fd)
            raise CaseFailure(f"another integration run holds {LOCK_FILE} for {LOCK_WAIT:.0f}s")
        time.sleep(0.2)


def left_behind(h, tmp, before):
    """What cleanup failed to remove or restore (empty when all is well)."""
    problems = []
    for user in TEST_USERS:
        with contextlib.suppress(KeyError):
            pwd.getpwnam(user)
            problems.append(f"user {user}")
        if Path("/home", user).exists():
            problems.append(f"/home/{user}")
    for path in (PAM_DIR / SSHD_SERVICE, SUDOERS_DROP_IN, tmp):
        if path and os.path.lexists(path):
            problems.append(str(path))
    for path, digest in before.items():
        if file_digest(path) != digest:
            problems.append(f"{path} changed")
    for variant, got in (h.servers.items() if h else ()):
        if isinstance(got, tuple):
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", got[0]), 1):
                problems.append(f"sshd ({variant}) still listening on port {got[0]}")
    return problems


def run(selected, verbose, tally):
    """Runs the cases (holding the lock) with one set-up, then checks that cleanup left
    nothing behind (the last verdict, "cleanup")."""
    before = {p: file_digest(p) for p in (SUDO_PAM, SU_PAM, CHFN_PAM, PAM_DIR / "sshd",
                                          Path("/etc/sudoers"))}
    made = {"h": None, "tmp": None}

    def setup(cleanups):
        with signals_held():
            made["tmp"] = tempfile.mkdtemp(prefix=TMP_PREFIX)
            cleanups.add(shutil.rmtree, made["tmp"], True)
        made["h"] = Harness(made["tmp"], verbose, cleanups)
        made["h"].setup()
        return made["h"]

    become_subreaper()
    problems = run_all(selected, tally, setup, setup_failed=lambda e: f"set-up failed: {e}")
    orphans = end_orphans()
    if orphans:
        problems.append(f"processes left after cleanup (killed): {orphans}")
    problems += left_behind(made["h"], made["tmp"], before)
    if problems:
        tally.fail("cleanup", "; ".join(problems))
    else:
        tally.ok("cleanup")


def prepare():
    """Root, the lock (held until exit; it also serialises the apt-get of concurrent runs),
    the Debian packages; returns what is missing, or None."""
    if os.geteuid() != 0:
        return "not root (needs useradd, /etc/pam.d, sshd, mount namespaces)"
    take_lock()
    return prerequisite_problem()


if __name__ == "__main__":
    sys.exit(main("integration", __doc__.splitlines()[0], run=run, prepare=prepare,
                  time_limit=TOTAL_LIMIT, one_line=True, timed=True,
                  verbose_help="print each login's details"))
