#!/usr/bin/env python3
"""The hostile caller of tests/integration/run_signals.py: the unprivileged user who started a
setuid su and may send it, and its children, any signal at any moment.

run_signals.py runs it as that user (`runuser -u tsmsuser3 -- python3 attacker.py MODE ...`),
so it sees what the caller sees and nothing more: /proc/PID/stat of every process (name,
state, parent), /proc/locks (the FLOCK holders by pid and inode), /proc/net/tcp. Its kill()
is the caller's: allowed while su's real uid is the caller's, EPERM once it is root's.

It prints {"event": "ready"} and reads from stdin the pid of the process below which su
runs (the runuser that started it); su is the descendant named su whose parent is not.
Then, by MODE, reporting each step as one JSON line on stdout ("event", "t" seconds since
the pid arrived, errno names such as "EPERM" where a kill failed):

  request --port P --after S --hold S
      once a TCP connection to 127.0.0.1:P is established (the request to Twilio is on its
      way), waits `after` seconds, stops su (SIGSTOP) for `hold` seconds, then SIGCONT.
  child --signal KILL|STOP
      sends the signal to su's child named su (the module's directory lookup, a fork), until
      it is delivered or the child is gone (a kill that fails with EPERM is tried again).
  lock --signal STOP|KILL [--min-locks N] [--inode I] [--skip K]
      polls /proc/locks until su holds at least N flocks (and, with --inode, that one),
      lets the first K such moments pass (--skip), then signals su; an EPERM is tried again
      at each poll until the signal is delivered. KILL: reports and exits. STOP: a stop that
      came too late (su no longer holds those locks, and no EPERM on the way: it let them go
      meanwhile) is reported as "missed" and undone (SIGCONT), and the hunt goes on (--tries
      stops in all); otherwise "stopped" with the flocks su holds, and su stays stopped
      until "release" (or end of file) on stdin.
  watch --inode I      (run as root, by the test: an observer, not an attack)
      reports whether su ever held the flock on inode I before it ended.

Every mode ends when su does ({"event": "ended"}) and after --limit seconds; whatever it
stopped is continued (SIGCONT) before it exits, also on SIGTERM and end of file on stdin.
"""

import argparse
import errno
import json
import os
import select
import signal
import sys
import time

sys.dont_write_bytecode = True

START = time.monotonic()
stopped = set()  # pids this process stopped and has not continued


def say(event, **fields):
    print(json.dumps({"event": event, "t": round(time.monotonic() - START, 4), **fields}),
          flush=True)


def stat_fields(pid):
    """(name, state, ppid) from /proc/PID/stat, or None when it is gone."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            text = f.read().decode(errors="replace")
    except OSError:
        return None
    name = text[text.index("(") + 1:text.rindex(")")]
    rest = text[text.rindex(")") + 2:].split()
    return name, rest[0], int(rest[1])


def processes():
    """{pid: (name, state, ppid)} of every process."""
    found = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            got = stat_fields(int(entry))
            if got is not None:
                found[int(entry)] = got
    return found


def alive(pid):
    got = stat_fields(pid)
    return got is not None and got[1] not in ("Z", "X")


def find_su(top, deadline):
    """The su below top: a descendant named su whose parent is not one (a fork of su, such
    as the module's lookup child, is named su too)."""
    while time.monotonic() < deadline:
        procs = processes()
        below, todo = set(), [top]
        while todo:
            parent = todo.pop()
            kids = [p for p, (_, _, pp) in procs.items() if pp == parent]
            below.update(kids)
            todo += kids
        for pid in sorted(below):
            name, state, ppid = procs[pid]
            if name == "su" and procs.get(ppid, ("",))[0] != "su" and state != "Z":
                return pid
        if top not in procs:
            return None
        time.sleep(0.002)
    return None


def signal_name(sig):
    return signal.Signals(sig).name


def send(pid, sig):
    """kill(pid, sig): None when delivered, else the errno's name."""
    try:
        os.kill(pid, sig)
    except OSError as e:
        return errno.errorcode.get(e.errno, str(e.errno))
    if sig == signal.SIGSTOP:
        stopped.add(pid)
    elif sig in (signal.SIGCONT, signal.SIGKILL):
        stopped.discard(pid)
    return None


def continue_all():
    for pid in list(stopped):
        send(pid, signal.SIGCONT)


def wait_stopped(pid, timeout=3.0):
    """Waits until pid's state is T (a process in uninterruptible sleep stops after it);
    returns the last state seen."""
    deadline = time.monotonic() + timeout
    state = "?"
    while time.monotonic() < deadline:
        got = stat_fields(pid)
        if got is None:
            return "gone"
        state = got[1]
        if state in ("T", "t", "Z", "X"):
            return state
        time.sleep(0.0005)
    return state


class Locks:
    """/proc/locks, read again through one descriptor: the inodes each pid holds a FLOCK on
    (waiters, the "->" lines, hold nothing)."""

    def __init__(self):
        self.fd = os.open("/proc/locks", os.O_RDONLY | os.O_CLOEXEC)

    def held_by(self, pid):
        text = os.pread(self.fd, 1 << 20, 0).decode(errors="replace")
        held = []
        want = str(pid)
        for line in text.splitlines():
            f = line.split()
            if len(f) >= 6 and f[1] == "FLOCK" and f[4] == want:
                held.append(int(f[5].rsplit(":", 1)[1]))
        return held


def commands(timeout):
    """The next line on stdin within timeout seconds: the text, "" on end of file, None when
    none came."""
    ready, _, _ = select.select([sys.stdin], [], [], timeout)
    if not ready:
        return None
    line = sys.stdin.readline()
    return line.strip() if line else ""


def hold_until_released(pid, deadline):
    """Keeps pid stopped until "release", end of file or the deadline; then continues it."""
    while time.monotonic() < deadline:
        got = commands(min(0.5, max(0.01, deadline - time.monotonic())))
        if got is not None and got in ("release", ""):
            break
    why = send(pid, signal.SIGCONT)
    say("released", pid=pid, errno=why)


# --------------------------------------------------------------------------- modes

def tcp_established(port):
    """True when a TCP connection to port (any address) is established."""
    hexport = f"{port:04X}"
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(table) as f:
                rows = f.read().splitlines()[1:]
        except OSError:
            continue
        for row in rows:
            f = row.split()
            if len(f) > 3 and f[2].endswith(":" + hexport) and f[3] == "01":
                return True
    return False


def mode_request(args, su, deadline):
    while not tcp_established(args.port):
        if not alive(su):
            return say("ended", pid=su)
        if time.monotonic() > deadline:
            return say("gave-up", why=f"no connection to port {args.port}")
        time.sleep(0.005)
    say("connected", port=args.port)
    time.sleep(args.after)
    why = send(su, signal.SIGSTOP)
    state = wait_stopped(su) if why is None else None
    say("stopped", pid=su, errno=why, state=state)
    if why is None:
        time.sleep(args.hold)
        say("continued", pid=su, errno=send(su, signal.SIGCONT), held_for=args.hold)


def mode_child(args, su, deadline):
    sig = getattr(signal, "SIG" + args.signal)
    child = None
    while child is None:
        if not alive(su):
            return say("ended", pid=su)
        if time.monotonic() > deadline:
            return say("gave-up", why="su forked no child")
        # new pids are larger (no wrap-around in a short test)
        for entry in os.listdir("/proc"):
            if entry.isdigit() and int(entry) > su:
                got = stat_fields(int(entry))
                if got and got[0] == "su" and got[2] == su and got[1] not in ("Z", "X"):
                    child = int(entry)
                    break
        else:
            time.sleep(0.002)
    say("child", pid=child)
    refused = 0
    while time.monotonic() < deadline:
        why = send(child, sig)
        if why is None:
            state = wait_stopped(child) if sig == signal.SIGSTOP else None
            return say("signalled", pid=child, signal=signal_name(sig), eperm=refused,
                       state=state)
        if why != "EPERM" or not alive(child):
            return say("signal-failed", pid=child, signal=signal_name(sig), errno=why,
                       eperm=refused)
        if refused == 0:
            say("eperm", pid=child, signal=signal_name(sig))
        refused += 1
        time.sleep(0.001)
    return say("signal-failed", pid=child, signal=signal_name(sig), errno="EPERM",
               eperm=refused)


def mode_lock(args, su, deadline):
    sig = getattr(signal, "SIG" + args.signal)
    locks = Locks()

    def wanted(held):
        return len(held) >= args.min_locks and (args.inode is None or args.inode in held)

    episodes, refused, tries = 0, 0, 0
    was, aiming, sighted = False, False, []
    polls = 0
    while time.monotonic() < deadline:
        polls += 1
        held = locks.held_by(su)
        now = wanted(held)
        if now and not was:
            episodes += 1
            if episodes > args.skip and not aiming:
                aiming, sighted = True, held
                say("holds", pid=su, locks=held, episode=episodes)
        was = now
        if aiming:
            why = send(su, sig)
            if why is None:
                tries += 1
                if sig == signal.SIGKILL:
                    return say("killed", pid=su, sighted=sighted, eperm=refused)
                state = wait_stopped(su)
                held_now = locks.held_by(su)
                if wanted(held_now) or refused > 0:
                    say("stopped", pid=su, state=state, locks=held_now, sighted=sighted,
                        eperm=refused)
                    return hold_until_released(su, deadline)
                # too late, and nothing refused: the lock was let go meanwhile
                say("missed", pid=su, state=state, locks=held_now, sighted=sighted,
                    errno=send(su, signal.SIGCONT))
                if tries >= args.tries:
                    return say("gave-up", why=f"{tries} stops came too late")
                aiming = False
                continue
            if why != "EPERM":
                return say("signal-failed", pid=su, errno=why, eperm=refused)
            if refused == 0:
                say("eperm", pid=su, signal=signal_name(sig), locks=held)
            refused += 1
        if polls % 256 == 0 and not alive(su):
            return say("ended", pid=su, episodes=episodes, eperm=refused)
        os.sched_yield()
    say("gave-up", why=f"limit of {args.limit}s", episodes=episodes, eperm=refused)


def mode_watch(args, su, deadline):
    locks = Locks()
    seen = False
    polls = 0
    while time.monotonic() < deadline:
        polls += 1
        if not seen and args.inode in locks.held_by(su):
            seen = True
            say("held", pid=su, inode=args.inode)
        if polls % 256 == 0 and not alive(su):
            return say("ended", pid=su, seen=seen)
        os.sched_yield()
    say("gave-up", why=f"limit of {args.limit}s", seen=seen)


MODES = {"request": mode_request, "child": mode_child, "lock": mode_lock, "watch": mode_watch}


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("mode", choices=sorted(MODES))
    p.add_argument("--limit", type=float, default=40.0, help="seconds in all")
    p.add_argument("--port", type=int)
    p.add_argument("--after", type=float, default=0.3)
    p.add_argument("--hold", type=float, default=5.0)
    p.add_argument("--signal", choices=("STOP", "KILL"), default="STOP")
    p.add_argument("--min-locks", type=int, default=1)
    p.add_argument("--inode", type=int)
    p.add_argument("--skip", type=int, default=0)
    p.add_argument("--tries", type=int, default=25, help="stops that came too late, at most")
    args = p.parse_args()

    def on_term(signum, _frame):
        continue_all()
        os._exit(3)

    signal.signal(signal.SIGTERM, on_term)
    try:
        say("ready", uid=os.getuid())
        line = sys.stdin.readline().strip()
        if not line.isdigit():
            return say("no-target", got=line)
        global START
        START = time.monotonic()
        deadline = START + args.limit
        su = find_su(int(line), min(deadline, START + 10))
        if su is None:
            return say("gave-up", why=f"no su below {line}")
        say("su", pid=su)
        MODES[args.mode](args, su, deadline)
    finally:
        continue_all()


if __name__ == "__main__":
    main()
