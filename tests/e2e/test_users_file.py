"""End-to-end cases: usersFile beside the inline users: lookup, comments and blank lines,
unusable files, malformed lines, a large file, and logins while twilio-sms-otp rewrites it."""

import pwd
import subprocess
import threading

from harness.core import REPO, CaseFailure, case, check
from harness.pam import RUN_LIMIT, TIME_SLACK, right, simple_service
from harness.system import write_file


TOOL = REPO / "twilio-sms-otp"


USERS_FILE = ("# pam_twilio_sms users: user +E164number\n"
              "\n"
              "dave +15555550100\n"
              "  erin\t+1 555 555 0101  \n"     # indented, tab, spaces, trailing blanks
              "# frank +15555550199\n"
              "frank +1-555-555-0102\n")


def write_users_file(h, text, name=None, mode=0o600, uid=0):
    """Writes the case's users file (root, 0600 unless told) and returns its path."""
    return write_file(h.confdir / f"{name or h.case}.users", text, mode, uid)


def users_file_service(h, text=None, path=None, args=("debug",), **over):
    """A service whose config names a users file, written from text unless path is given."""
    path = path or write_users_file(h, text)
    return simple_service(h, args=args, usersFile=path, **over), path


def expect_users_file_error(h, run, *needles):
    """PAM_SERVICE_ERR, nothing sent, and a log line with every needle and a fix."""
    h.expect(run, "PAM_SERVICE_ERR", sms=0, requests=0, prompts=0)
    lines = [l for l in run.module_logs if "fix:" in l and all(n in l for n in needles)]
    check(lines, f"no log line with {needles!r} and a fix: {run.module_logs!r}")


def expect_texted(h, run, number, source=None):
    """One SMS to number, and the outcome line names the source when given."""
    h.expect(run, "PAM_SUCCESS", sms=1, prompts=1)
    check(run.outbox[0]["to"] == number, f"SMS to {run.outbox[0]['to']!r}, want {number}")
    if source:
        check(f" source={source} " in run.outcomes[0], f"outcome {run.outcomes[0]!r}")
    check(run.prompts[0] == f"SMS code sent to ******{number[-4:]}: ", f"prompt {run.prompts[0]!r}")


@case
def users_file_lookup(h):
    svc, _ = users_file_service(h, USERS_FILE)
    for user, number in (("dave", "+15555550100"), ("erin", "+15555550101"),
                         ("frank", "+15555550102"), ("alice", "+15555550006")):
        # alice is in the config's users object, the others in the users file
        try:
            expect_texted(h, h.authenticate(svc, user, [right()]), number,
                          "users" if user == "alice" else "usersFile")
        except CaseFailure as e:
            raise CaseFailure(f"{user}: {e}") from None


@case
def users_file_comments_and_blank_lines(h):
    text = ("#gina +15555550103\n"
            "  # gina +15555550103\n"
            "\n \t \n"
            "hank +15555550104\r\n"           # CRLF
            "\t# ivan +15555550199\n"
            "ivan +15555550105")              # no newline at the end
    svc, _ = users_file_service(h, text, args=("nullok", "debug"), then_permit=True)
    run = h.authenticate(svc, "gina", [right()])
    h.expect(run, "PAM_IGNORE", sms=0, requests=0, prompts=0)
    expect_texted(h, h.authenticate(svc, "hank", [right()]), "+15555550104")
    expect_texted(h, h.authenticate(svc, "ivan", [right()]), "+15555550105")


@case
def users_file_name_matched_exactly(h):
    """Only a line whose user field is exactly the user counts: not "dave " or "dav"."""
    svc, _ = users_file_service(h, "dave  +15555550100\ndavey +15555550107\n",
                                args=("nullok", "debug"), then_permit=True)
    for user in ("dave ", "dav", "Dave", "dave\t", " dave"):
        run = h.authenticate(svc, user, [right()])
        try:
            h.expect(run, "PAM_IGNORE", sms=0, requests=0, prompts=0)
        except CaseFailure as e:
            raise CaseFailure(f"user {user!r}: {e}") from None
    expect_texted(h, h.authenticate(svc, "dave", [right()]), "+15555550100")


@case
def users_file_and_inline_same_user(h):
    """A user both in users and in the file: PAM_SERVICE_ERR and no SMS for that user."""
    svc, path = users_file_service(h, "alice +15555550116\ndave +15555550100\n")
    run = h.authenticate(svc, "alice", [right()])
    expect_users_file_error(h, run, "alice", path)
    expect_texted(h, h.authenticate(svc, "dave", [right()]), "+15555550100")
    expect_texted(h, h.authenticate(svc, "bob", [right()]), "+15555550007")


def unusable_users_file_case(h, needle, path=None, **write):
    """An unusable users file refuses everyone it could name, with nullok too; the users of
    the config log in (the file could only have refused them, as a second entry)."""
    path = path or write_users_file(h, "dave +15555550100\nalice +15555550116\n", **write)
    for args in (("debug",), ("nullok", "debug")):
        svc, _ = users_file_service(h, path=path, args=args, then_permit=True)
        for user in ("dave", "nobody-here"):
            run = h.authenticate(svc, user, [right()])
            try:
                expect_users_file_error(h, run, path, needle)
            except CaseFailure as e:
                raise CaseFailure(f"{args} {user}: {e}") from None
        expect_texted(h, h.authenticate(svc, "alice", [right()]), "+15555550006", "users")


@case
def users_file_group_readable(h):
    unusable_users_file_case(h, "0640", mode=0o640)


@case
def users_file_world_readable(h):
    unusable_users_file_case(h, "0604", mode=0o604)


@case
def users_file_not_root_owned(h):
    nobody = pwd.getpwnam("nobody").pw_uid
    unusable_users_file_case(h, str(nobody), uid=nobody)


@case
def users_file_symlink(h):
    target = write_users_file(h, "dave +15555550100\n", name=f"{h.case}-target")
    link = h.confdir / f"{h.case}.users"
    link.unlink(missing_ok=True)
    link.symlink_to(target)
    unusable_users_file_case(h, "symbolic link", path=str(link))


@case
def users_file_missing(h):
    """A usersFile that does not exist yet: the users of the config log in; anyone else is
    refused, with nullok too (never an unmapped user), and the line says how to fix it."""
    path = str(h.confdir / f"{h.case}-none.users")
    fix = (f"usersFile {path} does not exist; fix: create it empty (install -m 600 /dev/null "
           f"{path}), run twilio-sms-otp enroll, or remove the key")
    unusable_users_file_case(h, fix, path=path)


@case
def users_file_malformed_line_for_user(h):
    for line in ("dave +1555", "dave +15555550100 extra", "dave 555-CALL-NOW",
                 "dave +015555550100", "dave\t", "dave 15555550100"):
        svc, path = users_file_service(h, f"# team\nerin +15555550101\n{line}\n")
        run = h.authenticate(svc, "dave", [right()])
        try:
            expect_users_file_error(h, run, f"{path}:3:", "dave")
        except CaseFailure as e:
            raise CaseFailure(f"line {line!r}: {e}") from None


@case
def users_file_number_without_plus(h):
    """A number without its '+' is refused, never guessed: "2025550143" (a US number) is
    not sent to +20, Egypt; with nullok the user is refused too, and others log in."""
    svc, path = users_file_service(h, "erin +1 (555) 555-0101\ndave 2025550143\n",
                                   args=("nullok", "debug"), then_permit=True)
    run = h.authenticate(svc, "dave", [right()])
    expect_users_file_error(h, run, f"{path}:2:", 'user "dave": the number has no leading +',
                            'write the line as "dave +<country code><number>", '
                            'e.g. "dave +12025550143"')
    expect_texted(h, h.authenticate(svc, "erin", [right()]), "+15555550101", "usersFile")


@case
def users_file_line_without_number(h):
    """A line with the user name alone is malformed, not "no number": with nullok the
    user must not step past the SMS factor."""
    svc, path = users_file_service(h, "erin +15555550101\ndave\n", args=("nullok", "debug"),
                                   then_permit=True)
    run = h.authenticate(svc, "dave", [right()])
    expect_users_file_error(h, run, f"{path}:2:", "dave")


@case
def users_file_duplicate_user(h):
    svc, path = users_file_service(h, "dave +15555550100\nerin +15555550101\ndave +15555550108\n")
    run = h.authenticate(svc, "dave", [right()])
    expect_users_file_error(h, run, path, "dave", "1 and 3")


@case
def users_file_malformed_other_lines(h):
    text = "zed\nyan +1555\nxavier +15555550109 junk\nwill 555-CALL-NOW\ndave +15555550100\n"
    svc, _ = users_file_service(h, text)
    expect_texted(h, h.authenticate(svc, "dave", [right()]), "+15555550100")


@case
def users_file_100000_lines(h):
    """Stays fast: the user on the last of 100 000 lines, and a user not in the file."""
    lines = [f"user{i:06d} +1555{i:07d}\n" for i in range(99999)] + ["dave +15555550100\n"]
    svc, _ = users_file_service(h, "".join(lines), args=("nullok", "debug"), then_permit=True)
    run = h.authenticate(svc, "dave", [right()])
    expect_texted(h, run, "+15555550100")
    check(run.elapsed < 3 + TIME_SLACK, f"took {run.elapsed:.1f}s")
    run = h.authenticate(svc, "user050000", [right()])
    expect_texted(h, run, "+15550050000")
    run = h.authenticate(svc, "mallory", [right()])
    h.expect(run, "PAM_IGNORE", sms=0, prompts=0)
    check(run.elapsed < 2 + TIME_SLACK, f"an unmapped user took {run.elapsed:.1f}s")


@case
def users_file_read_while_enrolling(h):
    """Logins read the users file while twilio-sms-otp rewrites it in a loop: every login
    finds the user's number (a renamed whole file, never a half-written one)."""
    check(TOOL.is_file(), f"{TOOL} not built (run make)")
    filler = "".join(f"user{i:05d} +1555{i:07d}\n" for i in range(20000))
    path = write_users_file(h, filler + "dave +15555550100\n")
    config = h.write_config(h.config(usersFile=path))
    svc = h.service(config)
    stop, errors, writes = threading.Event(), [], [0]

    def enroll_loop():
        i = 0
        while not stop.is_set():
            args = ["enroll", "--no-verify", f"new{i % 7}", f"+1555557{i:04d}"] if i % 2 == 0 \
                else ["unenroll", f"new{(i - 1) % 7}"]
            r = subprocess.run([str(TOOL), "--config", config, *args], stdin=subprocess.DEVNULL,
                               capture_output=True, timeout=RUN_LIMIT, start_new_session=True)
            if r.returncode != 0:
                errors.append(f"{args}: exit {r.returncode} {r.stderr!r}")
            writes[0] += 1
            i += 1

    writer = threading.Thread(target=enroll_loop, daemon=True)
    writer.start()
    try:
        for n in range(6):
            run = h.authenticate(svc, "dave", [right()])
            try:
                expect_texted(h, run, "+15555550100")
            except CaseFailure as e:
                raise CaseFailure(f"login {n + 1}: {e}") from None
    finally:
        stop.set()
        writer.join(timeout=RUN_LIMIT)
    check(not errors, f"twilio-sms-otp failed: {errors[:2]}")
    check(writes[0] >= 6, f"only {writes[0]} updates ran during the logins")
