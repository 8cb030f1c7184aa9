"""SyslogCapture: the datagrams glibc's syslog() sends to /dev/log, for one suite run.

Where the socket is:
  - /dev/log absent: the capture binds its socket there ("owns" /dev/log) and clients
    need nothing; wrap() adds only the binds asked for.
  - /dev/log present (journald, rsyslog, or another run's socket): the socket is bound in
    the run's workdir and wrap() runs a client in a private mount namespace with it
    bind-mounted over /dev/log.

Several runs at once (valgrind.sh shards run_e2e.py, a developer runs a suite beside
`make test`): a bind mount over /dev/log lives on the dentry /dev/log of the root namespace,
and Linux detaches it, in every namespace, when that name is unlinked. So no run may
remove /dev/log while another one can still mount over it. Every capture holds a shared
flock on LOCK for its lifetime; a /dev/log that a capture made is recorded in LOCK (device,
inode, change time) and removed only by a capture that gets LOCK exclusively when it
closes, i.e. the last one out. A capture killed before close() leaves its record; the next last one out
removes the socket. Nothing else on the machine (a symlink to journald, rsyslog's socket) is
ever removed.
"""

import fcntl
import os
import re
import socket
import stat
import threading
import time
from pathlib import Path

from harness.core import CaseFailure
from harness.system import in_mount_namespace

DEV_LOG = Path("/dev/log")
LOCK = Path("/run/lock/tsms-test-dev-log.lock")
SYSLOG_RE = re.compile(r"^<\d+>(?:\w{3} [ \d]\d \d\d:\d\d:\d\d )?[^:\[ ]*(?:\[\d+\])?: (.*)$", re.S)
MARKER = "<15>tsms-e2e-marker"


def message(datagram):
    """The message part of a syslog datagram ("pam_twilio_sms(svc:auth): ..."), or the
    datagram when it has no header."""
    m = SYSLOG_RE.match(datagram)
    return m.group(1) if m else datagram


class SyslogCapture:
    """Receives the syslog datagrams of the clients wrap() prepares (all of them, when it
    owns /dev/log); mark() and collect() cut out what one client run logged."""

    def __init__(self, workdir):
        LOCK.parent.mkdir(parents=True, exist_ok=True)
        self.lock = os.open(LOCK, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
        # waits only while a last one out removes its /dev/log
        fcntl.flock(self.lock, fcntl.LOCK_SH)
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.owns_dev_log = False
        if not os.path.lexists(DEV_LOG):
            try:
                self.sock.bind(str(DEV_LOG))
                self.owns_dev_log = True
            except OSError:  # another run bound it first
                pass
        if self.owns_dev_log:
            self.path = str(DEV_LOG)
        else:
            self.path = str(Path(workdir) / "log.sock")
            self.sock.bind(self.path)
        os.chmod(self.path, 0o666)
        if self.owns_dev_log:
            os.ftruncate(self.lock, 0)
            os.pwrite(self.lock, identity(DEV_LOG).encode(), 0)
        self.sock.settimeout(0.2)
        self.lines = []
        self.cond = threading.Condition()
        self.stopping = False
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def _read(self):
        while not self.stopping:
            try:
                data = self.sock.recv(65536)
            except socket.timeout:
                continue
            except OSError:
                return
            with self.cond:
                self.lines.append(data.decode("utf-8", errors="replace"))
                self.cond.notify_all()

    def wrap(self, cmd, binds=()):
        """cmd logging to this capture, with each (source, target) of binds bind-mounted in
        its mount namespace too."""
        binds = list(binds)
        if not self.owns_dev_log:
            binds.insert(0, (self.path, str(DEV_LOG)))
        return in_mount_namespace(cmd, binds)

    def mark(self):
        """Returns a position; collect(position) returns what arrived after it."""
        with self.cond:
            return len(self.lines)

    def collect(self, since, timeout=3.0):
        """Waits until every datagram sent before this call was read (a marker
        sent now arrives after them), then returns the raw lines since `since`."""
        marker = f"{MARKER} {time.monotonic_ns()}"
        sender = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        try:
            sender.sendto(marker.encode(), self.path)
        finally:
            sender.close()
        deadline = time.monotonic() + timeout
        with self.cond:
            while marker not in self.lines[since:]:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise CaseFailure("syslog marker did not come back; log capture broken")
                self.cond.wait(left)
            return [l for l in self.lines[since:] if not l.startswith(MARKER)]

    def messages(self, since, timeout=3.0):
        """collect(), each datagram cut down to its message part."""
        return [message(l) for l in self.collect(since, timeout)]

    def close(self):
        self.stopping = True
        self.thread.join(timeout=2)
        self.sock.close()
        try:
            # the last one out (no other capture holds LOCK) removes a /dev/log a capture made
            fcntl.flock(self.lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            pass
        else:
            self._remove_recorded_dev_log()
        finally:
            os.close(self.lock)

    def _remove_recorded_dev_log(self):
        recorded = os.pread(self.lock, 200, 0).decode(errors="replace")
        if recorded and identity(DEV_LOG) == recorded:
            os.unlink(DEV_LOG)
        os.ftruncate(self.lock, 0)


def identity(path):
    """What tells the socket a capture bound at path from any later file there: device,
    inode and change time ("" when path is not a socket)."""
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return ""
    if not stat.S_ISSOCK(st.st_mode):
        return ""
    return f"{st.st_dev} {st.st_ino} {st.st_ctime_ns}\n"
