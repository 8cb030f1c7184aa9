"""The module's stateDir as the end-to-end cases see it: a directory of one state file a
user (send counts, failures, lockout) and GLOBAL_STATE for globalSendLimit."""

import os
import re
import shutil
import stat
from pathlib import Path

from harness.core import check

STATE_RE = re.compile(r"v1 window_start=(\d+) sends=(\d+) last_send=(\d+) failures=(\d+) "
                      r"locked_until=(\d+)\n")
STATE_FIELDS = ("window_start", "sends", "last_send", "failures", "locked_until")
GLOBAL_STATE = "@global"  # the globalSendLimit counter's file in stateDir


def new_state_dir(h, tag="state"):
    """A stateDir path for this case that does not exist yet (its parent does)."""
    parent = h.workdir / "state"
    parent.mkdir(mode=0o700, exist_ok=True)
    path = parent / f"{h.case}-{tag}"
    shutil.rmtree(path, ignore_errors=True)
    return path


def read_state(path):
    """The fields of a state file; fails the case when it is not well-formed."""
    text = Path(path).read_text(errors="replace")
    m = STATE_RE.fullmatch(text)
    check(m, f"state file {path} is not well-formed: {text!r}")
    return dict(zip(STATE_FIELDS, map(int, m.groups())))


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
