"""The module's stateDir as the end-to-end cases see it: a directory of one state file a
user (send counts, failures, lockout, then a line a grace: gracePeriodSeconds,
sessionGraceSeconds) and GLOBAL_STATE for globalSendLimit."""

import os
import re
import shutil
import stat
from pathlib import Path

from harness.core import check

STATE_RE = re.compile(r"v1 window_start=(\d+) sends=(\d+) last_send=(\d+) failures=(\d+) "
                      r"locked_until=(\d+)\n")
STATE_FIELDS = ("window_start", "sends", "last_send", "failures", "locked_until")
# after the first line, one line a grace (lib/state_files.c): KIND a (remote address, as
# inet_ntop writes it), s (audit session, "SESSIONID:BOOTID") or p (a nonce the session
# hook redeems: its digest, the processes that may redeem it, the session grace's end),
# its KEY, and the unix time it ends
GRACE_RE = re.compile(r"g ([asp]) ([0-9a-f.:-]{1,71}) (\d+)\n")
GRACE_KEY_RE = {
    "a": re.compile(r"\d{1,3}(\.\d{1,3}){3}|[0-9a-f:]*:[0-9a-f:.]*"),
    "s": re.compile(r"\d{1,10}:[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"),
    "p": re.compile(r"[0-9a-f]{24}-[0-9a-f]{12}-[0-9a-f]{12}-[0-9a-f]{1,16}"),
}
GRACE_MAX = 12  # a user's graces a file keeps
GLOBAL_STATE = "@global"  # the globalSendLimit counter's file in stateDir


def new_state_dir(h, tag="state"):
    """A stateDir path for this case that does not exist yet (its parent does)."""
    parent = h.workdir / "state"
    parent.mkdir(mode=0o700, exist_ok=True)
    path = parent / f"{h.case}-{tag}"
    shutil.rmtree(path, ignore_errors=True)
    return path


def parse_state(path, text=None):
    """(fields, graces) of a state file (text: its content, read elsewhere): its first
    line's fields and its graces as (kind, key, until) tuples, in the file's order; fails
    the case when it is not well-formed (GLOBAL_STATE never has a grace)."""
    if text is None:
        text = Path(path).read_text(errors="replace")
    m = STATE_RE.match(text)
    check(m, f"state file {path} is not well-formed: {text!r}")
    graces = []
    pos = m.end()
    while pos < len(text):
        g = GRACE_RE.match(text, pos)
        check(g and GRACE_KEY_RE[g.group(1)].fullmatch(g.group(2)),
              f"state file {path}: not a grace line at byte {pos}: {text[pos:pos + 100]!r}")
        graces.append((g.group(1), g.group(2), int(g.group(3))))
        pos = g.end()
    check(len(graces) <= GRACE_MAX, f"state file {path}: {len(graces)} graces, at most "
          f"{GRACE_MAX}")
    check(len({(k, key) for k, key, _ in graces}) == len(graces),
          f"state file {path}: a grace twice: {graces}")
    check(not graces or Path(path).name != GLOBAL_STATE, f"{path}: graces {graces}")
    return dict(zip(STATE_FIELDS, map(int, m.groups()))), graces


def read_state(path):
    """The fields of a state file's first line; fails the case when the file is not
    well-formed."""
    return parse_state(path)[0]


def read_graces(path, kind=None):
    """The graces of a state file as (kind, key, until) tuples (only those of kind when
    given; [] when the file does not exist); fails the case when it is not well-formed."""
    if not os.path.lexists(path):
        return []
    return [g for g in parse_state(path)[1] if kind is None or g[0] == kind]


def check_state_files(state_dir):
    """Every file in stateDir is a root-only regular file; state files are well-formed,
    no temporary file is left behind. Returns the state file names."""
    names = []
    for name in sorted(os.listdir(state_dir)):
        path = Path(state_dir) / name
        st = os.lstat(path)
        check(stat.S_ISREG(st.st_mode) and st.st_uid == 0 and st.st_mode & 0o077 == 0,
              f"{path}: mode {st.st_mode:o} uid {st.st_uid}")
        if name.startswith(".") and name.endswith(".lock"):
            continue
        check(name == GLOBAL_STATE or re.fullmatch(r"[a-z_][a-z0-9_.-]{0,31}|=[0-9a-f]{32}", name),
              f"unexpected file in stateDir: {name!r}")
        read_state(path)
        names.append(name)
    return names
