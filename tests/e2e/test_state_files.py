"""End-to-end cases: the stateDir and its files: created root-only, corrupt or unsafe ones
refused with a fix in the log, names that cannot escape the directory."""

import os
import pwd
import re
import stat

from harness.core import CaseFailure, case, check
from harness.pam import USERS, check_clean_logs, right, simple_service, unwrapped_case
from harness.state import check_state_files, new_state_dir


@case
def corrupt_state_file(h):
    nobody = pwd.getpwnam("nobody").pw_uid
    good = b"v1 window_start=1 sends=0 last_send=0 failures=0 locked_until=0\n"
    variants = {
        "garbage": b"not a state file\n",
        "truncated": good[:20],
        "empty": b"",
        "negative": good.replace(b"window_start=1", b"window_start=-5"),
        "trailing": good + b"extra\n",
        "huge": good + b" " * 4096,
        "binary": b"\x00\xff" * 10,
    }
    cases = [(name, content, None) for name, content in variants.items()]
    cases += [("not-root", good, "chown"), ("symlink", good, "symlink"), ("directory", None, "dir")]
    for name, content, how in cases:
        sd = new_state_dir(h, name)
        sd.mkdir(mode=0o700)
        path = sd / "alice"
        if how == "dir":
            path.mkdir()
        elif how == "symlink":
            (sd / "target").write_bytes(content)
            path.symlink_to(sd / "target")
        else:
            path.write_bytes(content)
            os.chmod(path, 0o600)
            if how == "chown":
                os.chown(path, nobody, 0)
        svc = simple_service(h, stateDir=str(sd))
        run = h.authenticate(svc, "alice", [right()])
        try:
            h.expect(run, "PAM_SERVICE_ERR", sms=0, requests=0, prompts=0)
        except CaseFailure as e:
            raise CaseFailure(f"state file {name}: {e}") from None
        check(any(str(path) in l and "remove" in l for l in run.module_logs),
              f"{name}: no log line naming {path} and the fix: {run.module_logs!r}")
        if content is not None and how != "symlink":
            check(path.read_bytes() == content, f"{name}: the corrupt file was rewritten")
        check_clean_logs(run)


@case
def state_dir_created_0700(h):
    sd = new_state_dir(h)
    svc = simple_service(h, stateDir=str(sd))
    old = os.umask(0)  # the module must not depend on the caller's umask
    try:
        run = h.authenticate(svc, "alice", [right()])
    finally:
        os.umask(old)
    h.expect(run, "PAM_SUCCESS", sms=1, prompts=1)
    st = os.lstat(sd)
    check(stat.S_ISDIR(st.st_mode) and stat.S_IMODE(st.st_mode) == 0o700 and st.st_uid == 0,
          f"stateDir mode {stat.S_IMODE(st.st_mode):o} uid {st.st_uid}")
    check(check_state_files(sd) == ["alice"], f"stateDir holds {os.listdir(sd)}")


@case
def state_dir_unsafe_refused(h):
    open_dir = new_state_dir(h, "world-writable")
    open_dir.mkdir()
    os.chmod(open_dir, 0o777)
    real = new_state_dir(h, "real")
    real.mkdir(mode=0o700)
    link = new_state_dir(h, "link")
    link.symlink_to(real)
    missing_parent = new_state_dir(h, "missing") / "below"
    for sd in (open_dir, link, missing_parent):
        svc = simple_service(h, stateDir=str(sd))
        run = h.authenticate(svc, "alice", [right()])
        h.expect(run, "PAM_SERVICE_ERR", sms=0, requests=0, prompts=0)
        check(any(f"stateDir {sd}" in l for l in run.module_logs),
              f"no log line about stateDir {sd}: {run.module_logs!r}")
    check(os.listdir(real) == [], f"a symlinked stateDir was used: {os.listdir(real)}")


@case
def state_file_names_cannot_escape(h):
    odd = {"../escape": "+15555550101", "a/b": "+15555550102", "Alice": "+15555550103",
           "x" * 40: "+15555550104", ".hidden": "+15555550105", "..": "+15555550106"}
    sd = new_state_dir(h)
    parent_before = sorted(os.listdir(sd.parent))
    svc = simple_service(h, stateDir=str(sd), users=dict(USERS, **odd))
    for user in odd:
        run = h.authenticate(svc, user, [right()])
        h.expect(run, "PAM_SUCCESS", sms=1, prompts=1)
    names = check_state_files(sd)
    check(len(names) == len(odd) and all(re.fullmatch(r"=[0-9a-f]{32}", n) for n in names),
          f"state files {names}")
    check(sorted(os.listdir(sd.parent)) == sorted(parent_before + [sd.name]),
          f"files appeared beside stateDir: {sorted(os.listdir(sd.parent))}")


@case
def state_dir_shared_directory_refused(h):
    """stateDir must be a directory of its own (the module creates it 0700): in a shared
    one such as / or /etc (root's, mode 0755) state files named after users land among
    that directory's files, e.g. /etc/nologin for a user "nologin", which then stops every
    non-root login (pam_nologin). Shown on a copy: a 0755 directory."""
    shared = new_state_dir(h, "etc")
    shared.mkdir()
    os.chmod(shared, 0o755)
    svc = simple_service(h, stateDir=str(shared), users=dict(USERS, nologin="+15555550121"))
    run = h.authenticate(svc, "nologin", [right()])
    check(not (shared / "nologin").exists(),
          f"a 0755 stateDir was used: {sorted(os.listdir(shared))} created; the "
          f"authentication ended {run.results}")
    h.expect(run, "PAM_SERVICE_ERR", sms=0, requests=0, prompts=0)


@unwrapped_case
def file_size_limit_of_the_caller_fails_closed(h):
    """A caller's RLIMIT_FSIZE (a setuid host's caller sets it: here prlimit around
    pamtester): 0, where the state file's first byte would raise SIGXFSZ and kill the login
    half way, and 16 bytes, a short write first. The login ends in PAM_SERVICE_ERR with an
    outcome line naming the problem, sends nothing, and leaves no temporary file."""
    for limit in (0, 16):
        sd = new_state_dir(h, f"fsize{limit}")
        svc = simple_service(h, stateDir=str(sd))
        run = h.authenticate(svc, "alice", [right()], client=[
            "prlimit", f"--fsize={limit}", "pamtester", svc, "alice", "authenticate"])
        h.expect(run, "PAM_SERVICE_ERR", sms=0, requests=0, prompts=0)
        check(any("File too large" in l for l in run.outcomes),
              f"fsize {limit}: the outcome does not name the problem: {run.outcomes!r}")
        left = sorted(p.name for p in sd.iterdir())
        check(left == [".alice.lock"], f"fsize {limit}: {sd} holds {left}")
        check_clean_logs(run)
