"""Case plumbing shared by every suite: failures, the registry, the tally, signals, cleanups
and the runner.

A suite registers cases with @case (functions of one argument, the suite's harness object)
and calls main(); main() parses -k/-v, selects the cases, runs prepare() (what is missing,
or None) and then the cases: run_all() with the suite's setup(cleanups, verbose), or the
suite's own run(selected, verbose, tally) where it has more to do around run_all().
"""

import argparse
import os
import re
import signal
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


class CaseFailure(Exception):
    """A case's expectation did not hold; the message says why."""


def check(cond, why):
    if not cond:
        raise CaseFailure(why)


# --------------------------------------------------------------------------- registry

CASES = []  # (name, function), in registration order


def case(fn):
    """Registers fn as a case named fn.__name__ (unique across the suite's files)."""
    if any(name == fn.__name__ for name, _ in CASES):
        raise ValueError(f"a second case named {fn.__name__}")
    CASES.append((fn.__name__, fn))
    return fn


# --------------------------------------------------------------------------- tally

class Tally:
    """Prints one verdict line a case and counts them. one_line: a reason's white space
    (newlines from a command's output) is folded so that the verdict stays on its line.
    With TSMS_CASE_TIMES=FILE, each verdict also appends "SECONDS NAME" to FILE: the seconds
    since the verdict before (or the tally's start), which is where to look when a suite
    grows slow."""

    def __init__(self, one_line=False):
        self.passed = 0
        self.failed = 0
        self.one_line = one_line
        self.times = os.environ.get("TSMS_CASE_TIMES")
        self.last = time.monotonic()

    def _timed(self, name):
        now = time.monotonic()
        if self.times:
            with open(self.times, "a") as f:
                f.write(f"{now - self.last:.1f} {name}\n")
        self.last = now

    def ok(self, name):
        self._timed(name)
        print(f"PASS: {name}", flush=True)
        self.passed += 1

    def fail(self, name, why):
        self._timed(name)
        if self.one_line:
            why = " ".join(str(why).split())
        print(f"FAIL: {name}: {why}", flush=True)
        self.failed += 1


# --------------------------------------------------------------------------- signals

class Interrupted(Exception):
    """SIGTERM, SIGHUP or the suite's time limit (SIGALRM) arrived; the message names it."""


def interrupted(e):
    return f"interrupted ({str(e) or 'SIGINT'})"


def catch_signals(time_limit=None):
    """SIGTERM, SIGHUP and SIGALRM raise Interrupted from then on (SIGINT raises
    KeyboardInterrupt as always)."""

    def on_signal(signum, _frame):
        if signum == signal.SIGALRM:
            raise Interrupted(f"time limit of {time_limit}s")
        raise Interrupted(signal.Signals(signum).name)

    for sig in (signal.SIGTERM, signal.SIGHUP, signal.SIGALRM):
        signal.signal(sig, on_signal)


class Cleanups:
    """Callables run newest first at the end of a suite, each whatever happens."""

    def __init__(self):
        self.todo = []

    def add(self, fn, *args):
        self.todo.append((fn, args))

    def run(self):
        """Runs every registered cleanup; returns the errors."""
        errors = []
        while self.todo:
            fn, args = self.todo.pop()
            try:
                fn(*args)
            except Exception as e:
                errors.append(f"{type(e).__name__}: {e}")
        return errors


# --------------------------------------------------------------------------- runner

def run_case(h, name, fn, tally):
    """Runs one case; any exception but an interruption fails only this case. h may define
    begin_case(name) (before, outside the case: its failure ends the run) and end_case()."""
    if hasattr(h, "begin_case"):
        h.begin_case(name)
    try:
        fn(h)
    except CaseFailure as e:
        tally.fail(name, e)
    except (Interrupted, KeyboardInterrupt):
        raise
    except Exception as e:  # a harness or environment problem still fails the case
        tally.fail(name, f"{type(e).__name__}: {e}")
    else:
        tally.ok(name)
    finally:
        if hasattr(h, "end_case"):
            h.end_case()


class Claims:
    """Shards of one suite: with TSMS_CASE_CLAIMS=DIR, several processes run the same
    selection and each runs only the cases it claims first (mkdir DIR/NAME succeeds in one
    of them), in selection order, so that every case runs once and a shard that drew long
    cases takes fewer of them. Without it, every case is this process's."""

    def __init__(self):
        self.dir = os.environ.get("TSMS_CASE_CLAIMS")
        self.mine = set()

    def take(self, name):
        if self.dir and name not in self.mine:
            try:
                os.mkdir(os.path.join(self.dir, name))
            except FileExistsError:
                return False
        self.mine.add(name)
        return True


def run_all(selected, tally, setup, setup_failed=lambda e: f"{type(e).__name__}: {e}"):
    """Runs setup(cleanups) -> h, then each selected case with h (each this process claims:
    Claims); a case not reached (an interruption, a failed set-up) fails with the reason.
    Returns the errors of the cleanups, which run last with SIGINT, SIGTERM and SIGHUP
    ignored."""
    cleanups = Cleanups()
    claims = Claims()
    todo = list(selected)
    try:
        h = setup(cleanups)
        while todo:
            name, fn = todo[0]
            if claims.take(name):
                run_case(h, name, fn, tally)
            todo.pop(0)
    except (Interrupted, KeyboardInterrupt) as e:
        for name, _ in todo:
            if claims.take(name):
                tally.fail(name, interrupted(e))
    except Exception as e:
        for name, _ in todo:
            if claims.take(name):
                tally.fail(name, setup_failed(e))
    finally:
        signal.alarm(0)
        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            signal.signal(sig, signal.SIG_IGN)  # let cleanup finish
        errors = cleanups.run()
    return errors


def main(suite, description, *, verbose_help, setup=None, run=None, prepare=None,
         time_limit=None, one_line=False, timed=False):
    """The command line of a suite: runs the registered cases that -k selects, with
    setup(cleanups, verbose) -> harness object or through run(selected, verbose, tally),
    and prints `SUITE: N passed, N failed` (with the seconds taken when timed). prepare()
    returns what is missing (every selected case fails with it) or None, and may raise
    CaseFailure; time_limit: seconds from then on before SIGALRM interrupts the run.
    Returns the exit status."""
    if run is None:
        def run(selected, verbose, tally):
            run_all(selected, tally, lambda cleanups: setup(cleanups, verbose))

    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("-k", metavar="PATTERN", help="run only cases whose name matches (regex)")
    parser.add_argument("-v", action="store_true", help=verbose_help)
    args = parser.parse_args()

    tally = Tally(one_line)
    start = time.monotonic()
    selected = [(n, f) for n, f in CASES if not args.k or re.search(args.k, n)]
    catch_signals(time_limit)
    try:
        if not selected:
            raise CaseFailure(f"no case matches {args.k!r}")
        problem = prepare() if prepare else None
        if problem:
            raise CaseFailure(problem)
        if time_limit:
            signal.alarm(time_limit)
        run(selected, args.v, tally)
    except (CaseFailure, Interrupted, KeyboardInterrupt) as e:
        # before any case ran (selection, prerequisites): every selected case fails
        why = e if isinstance(e, CaseFailure) else interrupted(e)
        for name, _ in selected or [("selection", None)]:
            tally.fail(name, why)
    took = f" ({time.monotonic() - start:.1f}s)" if timed else ""
    print(f"{suite}: {tally.passed} passed, {tally.failed} failed{took}")
    return 1 if tally.failed else 0
