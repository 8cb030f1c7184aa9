"""The logging CONNECT proxy (tests/sandbox/connect_proxy.py) as the suites use it: as the
attacker's proxy that a caller's https_proxy names (it must never see a request) and as
the administrator's `proxy` key (the request must go through it)."""

import contextlib
import subprocess
import sys
import tempfile
from pathlib import Path

from harness.core import REPO
from harness.sandbox import read_jsonl
from harness.system import stop_process, wait_for_port_file

PROXY = REPO / "tests" / "sandbox" / "connect_proxy.py"


class ConnectProxy:
    """One proxy process on loopback; tls=(cert, key) makes it an https:// proxy and
    credentials=(user, password) makes it require Basic Proxy-Authorization."""

    def __init__(self, directory, tls=None, credentials=None):
        self.dir = Path(directory)
        self.tls = tls
        self.credentials = credentials
        self.proc = None
        self.port = None

    def start(self, timeout=15.0):
        self.dir.mkdir(parents=True, exist_ok=True)
        cmd = [sys.executable, str(PROXY), "--dir", str(self.dir)]
        if self.tls:
            cmd += ["--tls-cert", str(self.tls[0]), "--tls-key", str(self.tls[1])]
        if self.credentials:
            cmd += ["--user", self.credentials[0], "--password", self.credentials[1]]
        with open(self.dir / "stderr", "wb") as err:
            self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=err, stderr=err,
                                         start_new_session=True)
        self.port = wait_for_port_file(
            self.proc, self.dir / "port", timeout, "proxy",
            lambda: (self.dir / "stderr").read_text(errors="replace")[-300:].strip())
        return self

    def stop(self):
        stop_process(self.proc)

    def url(self, user=None, password=None):
        """The proxy's URL as the `proxy` key takes it, with user:password@ when given."""
        scheme = "https" if self.tls else "http"
        auth = f"{user}:{password}@" if user is not None else ""
        return f"{scheme}://{auth}127.0.0.1:{self.port}"

    def set_mode(self, mode):
        """tunnel (the default), refuse (403 to every CONNECT) or hang (never answer)."""
        tmp = self.dir / "mode.tmp"
        tmp.write_text(mode + "\n")
        tmp.replace(self.dir / "mode")

    def requests(self):
        """The request heads the proxy saw (connections that only failed TLS included)."""
        return read_jsonl(self.dir / "requests.jsonl")


@contextlib.contextmanager
def running_proxy(parent=None, **kwargs):
    """A started ConnectProxy in a new directory under parent, stopped on leaving."""
    directory = tempfile.mkdtemp(prefix="proxy-", dir=parent)
    proxy = ConnectProxy(directory, **kwargs)
    try:
        yield proxy.start()
    finally:
        proxy.stop()
