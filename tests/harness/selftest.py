#!/usr/bin/env python3
"""Self-test of the harness: syslog captures side by side, as concurrent suite runs have them.

Two captures in one process stand for two runs (valgrind.sh's shards): each must receive the
lines of its own clients only, a client must still reach its capture after the other run's
capture closed (the one that may own /dev/log), and when the last capture closes /dev/log is
as it was before (a socket a capture made is removed, the machine's is kept). A client is
`python3 -c 'syslog.syslog(...)'`, which opens /dev/log at its first line like the module.

Two runs of one suite that share a claims directory (TSMS_CASE_CLAIMS, as valgrind.sh's
shards run) must run each case once between them, and both must take some.

Run as root:  python3 tests/harness/selftest.py [-k PATTERN] [-v]
Prints `PASS: name` or `FAIL: name: why` per case, then `harness: N passed, N failed`.
"""

import fcntl
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.dont_write_bytecode = True  # leave no __pycache__ in the tree
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from harness.core import case, check, main  # noqa: E402
from harness.syslog import DEV_LOG, LOCK, SyslogCapture, identity  # noqa: E402
from harness.system import kill_and_reap  # noqa: E402

# logs argv[1] once a line arrives on stdin, then exits
CLIENT = ("import sys, syslog; sys.stdin.readline(); syslog.openlog('tsms-selftest'); "
          "syslog.syslog(syslog.LOG_INFO, sys.argv[1])")


class Selftest:
    def __init__(self, workdir, verbose):
        self.workdir = Path(workdir)
        self.verbose = verbose
        self.captures = []
        self.procs = []

    def begin_case(self, name):
        self.case = name

    def end_case(self):
        for proc in self.procs:
            kill_and_reap(proc)
        self.procs = []
        for capture in self.captures:
            capture.close()
        self.captures = []

    def capture(self, name):
        d = self.workdir / self.case / name
        d.mkdir(parents=True)
        capture = SyslogCapture(d)
        self.captures.append(capture)
        return capture

    def close(self, capture):
        self.captures.remove(capture)
        capture.close()

    def client(self, capture, tag):
        """A client of capture, waiting to log tag until released."""
        cmd = capture.wrap([sys.executable, "-c", CLIENT, tag])
        proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, start_new_session=True)
        self.procs.append(proc)
        return proc

    def release(self, proc):
        """Lets the client log and waits for it; returns its output."""
        out, _ = proc.communicate(b"go\n", timeout=30)
        check(proc.returncode == 0, f"client exited {proc.returncode}: {out!r}")
        return out.decode(errors="replace")

    def got(self, capture, mark, tag):
        lines = capture.messages(mark)
        if self.verbose:
            print(f"[{self.case}] {capture.path}: {lines!r}")
        return any(line.endswith(tag) for line in lines)


def tag(h, what):
    return f"{h.case}-{what}-{os.getpid()}-{time.monotonic_ns()}"


def dev_log_free():
    """Whether no capture (this process's included) holds LOCK: then /dev/log is ours to
    check. A probe: the exclusive lock is given back at once."""
    fd = os.open(LOCK, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return True
    except BlockingIOError:
        return False
    finally:
        os.close(fd)


def dev_log_state():
    """What /dev/log is: None (absent) or its device, inode, type and change time."""
    try:
        st = os.lstat(DEV_LOG)
    except FileNotFoundError:
        return None
    return (st.st_dev, st.st_ino, st.st_mode, st.st_ctime_ns)


@case
def captures_side_by_side(h):
    """Two runs at once: each capture receives its own clients' lines and not the other's."""
    a, b = h.capture("a"), h.capture("b")
    tags = {"a": tag(h, "a"), "b": tag(h, "b")}
    marks = {"a": a.mark(), "b": b.mark()}
    procs = {"a": h.client(a, tags["a"]), "b": h.client(b, tags["b"])}
    for name in ("a", "b"):
        h.release(procs[name])
    for name, capture, other in (("a", a, "b"), ("b", b, "a")):
        check(h.got(capture, marks[name], tags[name]), f"capture {name} lost its client's line")
        check(not h.got(capture, marks[name], tags[other]),
              f"capture {name} received the other run's line")


@case
def client_outlives_the_other_capture(h):
    """A run that may own /dev/log ends while another run's client is going: the client's
    line must still reach its capture (a /dev/log unlinked under the other run's bind
    mount would detach it, and the line would be lost)."""
    for first_closes in ("a", "b"):
        a, b = h.capture("a-" + first_closes), h.capture("b-" + first_closes)
        leaving, staying = (a, b) if first_closes == "a" else (b, a)
        t = tag(h, first_closes)
        mark = staying.mark()
        proc = h.client(staying, t)
        time.sleep(0.3)  # the client is in its namespace, waiting
        h.close(leaving)
        out = h.release(proc)
        check(h.got(staying, mark, t),
              f"owner {'a' if a.owns_dev_log else 'b' if b.owns_dev_log else 'none'}, capture "
              f"{first_closes} closed first: the other capture's client line was lost {out!r}")
        for capture in (a, b):
            if capture in h.captures:
                h.close(capture)


@case
def last_one_out_restores_dev_log(h):
    """When no other run holds /dev/log: after the captures close it is as before (a
    socket a capture bound there is removed, the machine's own left alone)."""
    if not dev_log_free():
        return  # another run is going: /dev/log is not this case's to check
    before = dev_log_state()
    a, b = h.capture("a"), h.capture("b")
    check(bool(before) or a.owns_dev_log, "/dev/log was free and the first capture did not bind it")
    h.close(a)
    check(os.path.lexists(DEV_LOG), "/dev/log removed while another capture still used it")
    h.close(b)
    if dev_log_free():  # no run started meanwhile
        check(dev_log_state() == before, f"/dev/log was {before}, is {dev_log_state()}")


@case
def killed_owner_removed_by_the_next_last_one_out(h):
    """A run killed while it owned /dev/log leaves its socket; the next capture to close
    alone removes it (the machine's /dev/log is never one)."""
    if not dev_log_free() or os.path.lexists(DEV_LOG):
        return  # only when /dev/log is free and no other run is going
    d = h.workdir / h.case
    d.mkdir()
    child = subprocess.Popen(
        [sys.executable, "-c", "import sys, time; sys.dont_write_bytecode = True; "
         f"sys.path.insert(0, {str(Path(__file__).resolve().parents[1])!r}); "
         "from harness.syslog import SyslogCapture; "
         f"c = SyslogCapture({str(d)!r}); print(c.owns_dev_log, flush=True); time.sleep(60)"],
        stdout=subprocess.PIPE, start_new_session=True)
    h.procs.append(child)
    owned = child.stdout.readline().strip()
    os.killpg(child.pid, signal.SIGKILL)
    child.wait()
    check(owned == b"True", f"the child capture did not bind the free /dev/log: {owned!r}")
    check(identity(DEV_LOG), "the killed owner's socket is not at /dev/log")
    h.close(h.capture("next"))
    check(not os.path.lexists(DEV_LOG), "the killed owner's /dev/log was left behind")


# a suite of twelve cases, each recording its name and process in $RAN
SHARD_SUITE = """
import os, sys, time
sys.path.insert(0, {tests!r})
from harness.core import case, main

def make(i):
    def fn(h):
        time.sleep(0.2)
        with open(os.environ["RAN"], "a") as f:
            f.write(f"{{fn.__name__}} {{os.getpid()}}\\n")
    fn.__name__ = f"c{{i:02d}}"
    return case(fn)

for i in range(12):
    make(i)
sys.exit(main("shard", "shard", verbose_help="", setup=lambda cleanups, verbose: None))
"""


@case
def shards_claim_each_case_once(h):
    suite = h.workdir / "shard_suite.py"
    suite.write_text(SHARD_SUITE.format(tests=str(Path(__file__).resolve().parents[1])))
    claims, ran = h.workdir / "claims", h.workdir / "ran"
    claims.mkdir()
    env = {k: v for k, v in os.environ.items() if k != "TSMS_CASE_TIMES"}
    env.update(TSMS_CASE_CLAIMS=str(claims), RAN=str(ran))
    procs = [subprocess.Popen([sys.executable, str(suite)], env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True) for _ in range(2)]
    h.procs += procs
    outs = [p.communicate(timeout=60)[0] for p in procs]
    check(all(p.returncode == 0 for p in procs), f"exits {[p.returncode for p in procs]}: {outs}")
    runs = [line.split() for line in ran.read_text().splitlines()]
    names = sorted(name for name, _ in runs)
    check(names == [f"c{i:02d}" for i in range(12)], f"cases run: {names}")
    passes = [out.count("PASS: ") for out in outs]
    check(sum(passes) == 12 and min(passes) > 0, f"PASS lines per run: {passes}")
    check(len({pid for _, pid in runs}) == 2, f"processes that ran cases: {runs}")


def prerequisite_problem():
    if os.geteuid() != 0:
        return "not root (binds /dev/log, mount namespaces)"
    if shutil.which("unshare") is None:
        return "unshare missing (util-linux)"
    return None


def setup(cleanups, verbose):
    workdir = tempfile.mkdtemp(prefix="tsms-harness-")
    cleanups.add(shutil.rmtree, workdir, True)
    h = Selftest(workdir, verbose)
    cleanups.add(h.end_case)
    return h


if __name__ == "__main__":
    sys.exit(main("harness", __doc__.splitlines()[0], setup=setup, prepare=prerequisite_problem,
                  verbose_help="print what each capture received"))
