"""The machine as the suites use it: commands, processes, mount namespaces, test Unix users,
loopback ports and root-only files."""

import contextlib
import ctypes
import os
import pwd
import re
import secrets
import signal
import socket
import subprocess
import time
from pathlib import Path

from harness.core import REPO, CaseFailure


def sh(cmd, *, timeout=30, input_text=None, ok=(0,)):
    """Runs cmd, returns its CompletedProcess; a status outside ok is a CaseFailure."""
    try:
        p = subprocess.run(cmd, input=input_text, capture_output=True, text=True,
                           timeout=timeout, cwd="/")
    except subprocess.TimeoutExpired:
        raise CaseFailure(f"{' '.join(map(str, cmd))}: still running after {timeout}s") from None
    if p.returncode not in ok:
        raise CaseFailure(f"{' '.join(map(str, cmd))}: exit {p.returncode}: "
                          f"{(p.stderr or p.stdout).strip()[-300:]}")
    return p


INSTALL_LIMIT = 600.0  # seconds for apt-get on a fresh machine


def install_debs(debs, timeout=INSTALL_LIMIT):
    """Installs the Debian packages debs that are missing (tests/install-deps.sh, which waits
    for a dpkg lock held by another apt-get); returns what went wrong, or None. What it
    installed is printed ("installing Debian packages: ...")."""
    script = REPO / "tests" / "install-deps.sh"
    try:
        p = subprocess.run([str(script), *debs], capture_output=True, text=True,
                           timeout=timeout)
    except subprocess.TimeoutExpired:
        return f"tests/install-deps.sh {' '.join(debs)} still running after {timeout:.0f}s"
    if p.returncode != 0:
        return (f"tests/install-deps.sh {' '.join(debs)}: exit {p.returncode}: "
                f"{p.stderr.strip()[-300:]}")
    if p.stdout.strip():
        print(p.stdout.strip(), flush=True)
    return None


POLICY_RC_D = Path("/usr/sbin/policy-rc.d")
DENY_STARTS = ("#!/bin/sh\n# tests/harness/system.py: no service starts while the tests install "
               "one; removed afterwards\nexit 101\n")


def installed(pkg):
    """True when the Debian package pkg is installed."""
    p = subprocess.run(["dpkg-query", "-W", "-f=${Status}", pkg], capture_output=True,
                       text=True)
    return p.returncode == 0 and "install ok installed" in p.stdout


def install_quietly(debs, service, running, timeout=INSTALL_LIMIT):
    """Installs debs (install_debs) so that no system `service` (a server the tests start
    themselves, with their own config) runs afterwards: while it installs, a policy-rc.d
    that refuses every service start is put in place when the machine has none (and removed
    after); one that started anyway (the machine's own policy-rc.d allows it) is stopped
    with `service SERVICE stop`. running() gives the pids of system servers. Returns what
    went wrong, or None."""
    before = running()
    ours = False
    try:
        fd = os.open(POLICY_RC_D, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o755)
        with os.fdopen(fd, "w") as f:
            f.write(DENY_STARTS)
        ours = True
    except FileExistsError:
        pass
    try:
        problem = install_debs(debs, timeout)
    finally:
        with contextlib.suppress(OSError):
            if ours and POLICY_RC_D.read_text() == DENY_STARTS:
                POLICY_RC_D.unlink()
    if running() - before:
        subprocess.run(["service", service, "stop"], capture_output=True, timeout=60)
    return problem


def free_port():
    """A loopback TCP port nothing listens on (at the time of the call)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def write_file(path, text, mode=0o600, uid=0, gid=0):
    """Writes text to path as a whole (a renamed temporary file, never through a symbolic
    link), owned by uid:gid with mode; returns the path as a string."""
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp-test")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(text)
    os.chown(tmp, uid, gid)
    os.chmod(tmp, mode)
    os.replace(tmp, path)
    return str(path)


def in_mount_namespace(cmd, binds):
    """cmd run in a private mount namespace where each (source, target) of binds is
    bind-mounted (a failed mount exits 97 before cmd runs); cmd itself without binds."""
    if not binds:
        return cmd
    script = ('while [ "$1" != -- ]; do mount --bind "$1" "$2" || exit 97; shift 2; done; '
              'shift; exec "$@"')
    flat = [str(x) for pair in binds for x in pair]
    return ["unshare", "--mount", "--", "sh", "-c", script, "sh", *flat, "--", *cmd]


# --------------------------------------------------------------------------- processes

def wait_for_port_file(proc, port_file, timeout, what, tail):
    """The port that the server proc (the sandbox, a proxy) writes to port_file once it
    listens; a CaseFailure naming what, with tail() (its stderr's end), when it exits first
    or writes none within timeout seconds."""
    port_file = Path(port_file)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise CaseFailure(f"{what} exited with {proc.returncode}: {tail()}")
        text = port_file.read_text().strip() if port_file.exists() else ""
        if text.isdigit():
            return int(text)
        time.sleep(0.05)
    raise CaseFailure(f"{what} wrote no {port_file} within {timeout:.0f}s: {tail()}")


def cmdlines():
    """(pid, argv as a list of bytes) of every process that can be read."""
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            yield int(pid), Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        except OSError:
            continue


def running(pid):
    """Whether pid exists and is not a zombie."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def descendants(pid):
    """The processes below pid, parents before their children."""
    parent = {}
    for entry in filter(str.isdigit, os.listdir("/proc")):
        try:
            stat_line = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        # "pid (comm) state ppid ...", where comm may hold spaces and parentheses
        parent[int(entry)] = int(stat_line.rsplit(")", 1)[1].split()[1])
    found, todo = [], [pid]
    while todo:
        kids = [p for p, pp in parent.items() if pp == todo[0]]
        found += kids
        todo = todo[1:] + kids
    return found


def pids_of_uid(uid):
    """Running (not zombie) processes with uid as real or effective user id."""
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            status = Path(f"/proc/{pid}/status").read_text()
        except OSError:
            continue
        m = re.search(r"^Uid:\s+(\d+)\s+(\d+)", status, re.M)
        if m and uid in (int(m.group(1)), int(m.group(2))) and "\nState:\tZ" not in status:
            found.append(int(pid))
    return found


def stop_process(proc, timeout=5):
    """Ends proc (SIGTERM, then SIGKILL to its process group) and reaps it."""
    if proc is None or proc.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        proc.terminate()
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=timeout)


def kill_and_reap(proc):
    """Kills proc's process group (it runs in a session of its own) unless it ended, reaps
    it and closes its pipes."""
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    for f in (proc.stdin, proc.stdout, proc.stderr):
        if f is not None:
            with contextlib.suppress(OSError, ValueError):
                f.close()


def become_subreaper():
    """Makes processes orphaned below this one our children instead of PID 1's, so that
    end_orphans() can end and reap them, also where PID 1 reaps nothing (some containers)."""
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(36, 1, 0, 0, 0) != 0:  # PR_SET_CHILD_SUBREAPER
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_CHILD_SUBREAPER)")


def end_orphans():
    """Kills what is left below this process (only orphans that came to us) and reaps it;
    call when every child was stopped. Returns the pids that were still running."""
    left = [pid for pid in descendants(os.getpid()) if running(pid)]
    for pid in reversed(left):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            break
        if pid == 0:
            time.sleep(0.05)
    return left


@contextlib.contextmanager
def signals_held():
    """Holds SIGINT/SIGTERM/SIGHUP/SIGALRM back, e.g. between making a directory and
    registering its removal. Never around starting a process: it would inherit the mask."""
    sigs = {signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGALRM}
    old = signal.pthread_sigmask(signal.SIG_BLOCK, sigs)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, old)


# --------------------------------------------------------------------------- test users

def add_test_user(user, gecos):
    """Creates user (a home, /bin/sh, GECOS gecos: what marks it as a test user) with a
    random password; returns the password."""
    sh(["useradd", "--create-home", "--shell", "/bin/sh", "--comment", gecos, user])
    password = "Tsms-" + secrets.token_urlsafe(12)
    sh(["chpasswd"], input_text=f"{user}:{password}\n")
    return password


def remove_test_user(user, gecos):
    """Removes user, its processes and its home, only when its GECOS is gecos (a test user
    this harness made)."""
    try:
        pw = pwd.getpwnam(user)
    except KeyError:
        return
    if pw.pw_gecos != gecos:
        return
    # sessions that outlived their client (only ever ours: the account is a test user's)
    for pid in pids_of_uid(pw.pw_uid):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 5
    while pids_of_uid(pw.pw_uid) and time.monotonic() < deadline:
        time.sleep(0.05)
    p = subprocess.run(["userdel", "--remove", user], capture_output=True, text=True,
                       timeout=30)
    if p.returncode not in (0, 12):  # 12: home or mail spool already gone
        raise RuntimeError(f"userdel --remove {user}: exit {p.returncode}: {p.stderr.strip()}")
    with contextlib.suppress(FileNotFoundError):
        (Path("/run/sudo/ts") / user).unlink()
