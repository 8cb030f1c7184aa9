"""End-to-end cases: the two state stores make the same decisions. lib/state_files.c decides
in C, lib/state_redis.c in one Lua script; one seeded pseudo-random sequence of logins (the
right code, a wrong one then the right one, wrong codes up to maxAttempts, an empty answer
asking for a new code, then the right one) and `twilio-sms-otp unlock`s, over three mapped
users and an unmapped one (a decoy challenge), runs step by step on two hosts: one keeps
its limits in stateDir, the other in a real redis-server of this family. Each step must end
alike on both: the PAM result, the outcome line, the SMS and requests the sandbox got,
everything the user saw, then `twilio-sms-otp status` of the user; seconds left may differ
by the time between the two runs, nothing else. The limits are small and the windows an
hour long, so that nothing expires during the run; the sequence comes in parts, each from
fresh state on both sides, so that the limits are reached again and again, and a last part
with a cooldown. The files side must have met every verdict, or agreeing proves nothing."""

import calendar
import os
import random
import re
import subprocess
import time

from harness.core import REPO, CaseFailure, case, check
from harness.pam import RUN_LIMIT, USERS, typed
from harness.redis import KEY_PREFIX, Redis, host, install_problem
from harness.sandbox import extract_code, wrong_code
from harness.state import GLOBAL_STATE, read_state

# TSMS_TOOL tests another build of the command (as tests/cli does), e.g. a scratch build
TOOL = os.environ.get("TSMS_TOOL") or str(REPO / "twilio-sms-otp")
# the sequence's seed; TSMS_AGREE_SEED tries another one (the verdict counts may then fall
# short of what the case asks for)
SEED = int(os.environ.get("TSMS_AGREE_SEED") or 10)

LIMITS = {"sendLimit": 3, "sendWindowSeconds": 3600, "resendCooldownSeconds": 0,
          "maxResends": 1, "lockoutThreshold": 3, "lockoutSeconds": 3600,
          "globalSendLimit": 7, "maxAttempts": 2}
COOLDOWN_LIMITS = dict(LIMITS, resendCooldownSeconds=3600, sendLimit=10)
DECOY = "mallory"  # in no users list: a decoy challenge (the services have no nullok)
PEOPLE = ("alice", "bob", "carol", DECOY)
PEOPLE_WEIGHTS = (3, 3, 3, 2)
# what a step does: answers to the prompts in turn (R the newest code sent, W a wrong one,
# E an empty answer: a new code), or the admin's unlock
ACTIONS = {"right": "R", "wrong-right": "WR", "wrongs": "W" * LIMITS["maxAttempts"],
           "resend-right": "ER", "resend-twice": "EER", "unlock": None}
ACTION_WEIGHTS = (3, 2, 3, 2, 1, 2)
PARTS = 4  # each from fresh state on both sides: the limits are met anew
PART_STEPS = 17
COOLDOWN_STEPS = 14  # a right answer ends the cooldown: enough steps to meet one

# numbers that depend on the moment, each with the text it stands in
TIMED = (
    re.compile(r"(\d+) s left"),  # outcome reason, status cooldown
    re.compile(r"try again in (\d+) seconds"),
    re.compile(r"locked for (\d+) more seconds"),
    re.compile(r"which ends in (\d+) s"),
    re.compile(r"until (\d{4}-\d\d-\d\d \d\d:\d\d:\d\d) UTC"),
    re.compile(r"UTC \((\d+) s\)"),
)
VERDICTS = {"sendLimit": "(sendLimit)", "globalSendLimit": "(globalSendLimit)",
            "locked": "(lockoutThreshold)", "cooldown": "(resendCooldownSeconds)"}


class Timed:
    """A text with its moment-dependent numbers taken out: text has '#' in their place,
    nums holds them (a UTC date as Unix seconds)."""

    def __init__(self, text):
        self.nums = []
        for pattern in TIMED:
            text = pattern.sub(self._take, text)
        self.text = text

    def _take(self, m):
        value = m.group(1)
        if "-" in value:
            self.nums.append(calendar.timegm(time.strptime(value, "%Y-%m-%d %H:%M:%S")))
        else:
            self.nums.append(int(value))
        whole, start = m.group(0), m.start(1) - m.start(0)
        return whole[:start] + "#" + whole[start + len(value):]

    def __repr__(self):
        return repr(self.text) + (f" {self.nums}" if self.nums else "")


class Side:
    """One host of the comparison: its service, config and stateDir (harness.redis.Host),
    the store's name, and for Redis the server and key prefix."""

    def __init__(self, h, name, tag, limits, server=None, prefix=None):
        over = {"redis": server.module_config(keyPrefix=prefix)} if server else {}
        self.host = host(h, tag, **limits, **over)
        self.name, self.server, self.prefix = name, server, prefix

    def normal(self, text):
        """text with this side's own names (stateDir, service, key prefix, url) neutral."""
        lines = []
        for line in text.replace(self.host.service, "SERVICE").splitlines():
            m = re.fullmatch(r"state file:\s+(\S+)", line)
            if m:
                check(os.path.dirname(m.group(1)) == str(self.host.state_dir),
                      f"{self.name}: status names {m.group(1)}, not in {self.host.state_dir}")
                line = f"state: {os.path.basename(m.group(1))}"
            m = re.fullmatch(r"state:\s+redis key (\S+) at (\S+)", line)
            if m:
                key, url = m.groups()
                check(self.server is not None and key.startswith(self.prefix + "user:") and
                      url == self.server.url, f"{self.name}: status names {line!r}")
                line = f"state: {key[len(self.prefix + 'user:'):]}"
            line = line.replace(f"in redis {self.server.url}:" if self.server else
                                f"in {self.host.state_dir}:", "in STORE:")
            lines.append(line)
        return "\n".join(lines)


def newest_code(h, user, since):
    """The code of the newest SMS to user's number after `since` outbox lines, or None."""
    if user not in USERS:
        return None
    last4 = re.sub(r"\D", "", USERS[user])[-4:]
    sent = [m for m in h.sandbox.outbox()[since:] if str(m.get("to", "")).endswith(last4)]
    return extract_code(sent[-1].get("body")) if sent else None


def answers(h, user, letters):
    """The answers of one login: the newest code sent in it, a wrong one, or nothing (a
    decoy has no code: it types a guess). Read at the prompt, after the SMS went out."""
    since = len(h.sandbox.outbox())

    def right_code():
        return newest_code(h, user, since) or "123456"

    def wrong_one():
        code = newest_code(h, user, since)
        return wrong_code(code) if code else "654321"

    return [typed({"R": right_code, "W": wrong_one, "E": ""}[c]) for c in letters]


def login(h, side, user, letters):
    """One login on side: its record, normalised, field by field."""
    run = h.authenticate(side.host.service, user, answers(h, user, letters))
    if side.server is not None:  # a fallback to the files would make both sides agree
        warned = [l for l in run.module_logs if "unavailable" in l]
        check(not warned, f"redis side fell back to its stateDir: {warned!r}")
    outcomes = [re.sub(r" sid=SM[0-9a-f]{32} ", " sid=SM... ", l) for l in run.outcomes]
    return {
        "PAM result": f"exit {run.status}, logged {' '.join(run.results) or 'nothing'}",
        "outcome line": Timed(side.normal("\n".join(outcomes))),
        "SMS": len(run.outbox),
        "requests to Twilio": len(run.requests),
        "what the user saw": Timed(side.normal(run.output)),
    }


def admin(side, *args):
    """twilio-sms-otp --config CONFIG ARGS on side: exit status and output, normalised."""
    done = subprocess.run([TOOL, "--config", side.host.config, *args], capture_output=True,
                          text=True, timeout=RUN_LIMIT, stdin=subprocess.DEVNULL)
    return {f"{args[0]} exit": done.returncode,
            f"{args[0]} stdout": Timed(side.normal(done.stdout)),
            f"{args[0]} stderr": Timed(side.normal(done.stderr))}


class Comparison:
    """One part of the sequence (fresh state on both sides): runs each operation on both
    sides, files first, and fails at the first field that differs. span: the longest time
    from a files operation's start to the end of its Redis twin; a moment that the two
    stores took from their clocks differs by less than span + 2 s (each clock read is
    rounded down to a second). counts: what the files side met, by name."""

    def __init__(self, h, tag, limits, server, counts, step):
        self.h, self.tag, self.counts, self.step = h, tag, counts, step
        self.files = Side(h, "files", f"files-{tag}", limits)
        self.redis = Side(h, "redis", f"redis-{tag}", limits, server,
                          f"{KEY_PREFIX}agree-{tag}:")
        self.span = 0.0
        self.done = []  # the steps so far, for the failure message

    def both(self, op):
        start = time.monotonic()
        got_files = op(self.files)
        got_redis = op(self.redis)
        self.span = max(self.span, time.monotonic() - start)
        for field in got_files:
            self.same(field, got_files[field], got_redis[field])
        return got_files

    def same(self, field, a, b):
        slack = self.span + 2
        if isinstance(a, Timed):
            ok = a.text == b.text and len(a.nums) == len(b.nums) and all(
                abs(x - y) < slack for x, y in zip(a.nums, b.nums))
        else:
            ok = a == b
        if not ok:
            raise CaseFailure(
                f"seed {SEED}, step {self.step} ({self.done[-1]}): {field} differs (seconds "
                f"may differ by < {slack:.1f}):\n  files: {a!r}\n  redis: {b!r}\n"
                f"  part {self.tag}, from fresh state: {', '.join(self.done)}\n"
                f"  reproduce: TSMS_AGREE_SEED={SEED} python3 tests/e2e/run_e2e.py "
                f"-k files_and_redis_agree -v")

    def run(self, user, action):
        self.step += 1
        self.done.append(f"{self.step}. {user} {action}")
        if ACTIONS[action] is None:
            got = self.both(lambda side: admin(side, "unlock", user))
            self.counts["unlock lifted a lockout"] += "lockout lifted" in got["unlock stdout"].text
        else:
            got = self.both(lambda side: login(self.h, side, user, ACTIONS[action]))
            line, seen = got["outcome line"].text, got["what the user saw"].text
            for name, needle in VERDICTS.items():
                self.counts[name] += needle in line
            self.counts["lock"] += "locked out for" in line
            self.counts["resend refused by the cooldown"] += "Wait before asking" in seen
            self.counts["success"] += "result=PAM_SUCCESS" in line
        self.both(lambda side: admin(side, "status", user))

    def finish(self):
        """Every user's status and the global count alike; the Redis side kept nothing in
        its stateDir (no fallback) and has keys under its prefix."""
        self.done.append("the end: status of every user")
        for user in PEOPLE:
            self.both(lambda side: admin(side, "status", user))
        glob = self.files.host.state_dir / GLOBAL_STATE
        self.same("global sends", read_state(glob)["sends"] if glob.exists() else 0,
                  self.redis.server.hash(self.redis.prefix + "global").get("sends", 0))
        state_dir = self.redis.host.state_dir
        left = [n for n in os.listdir(state_dir) if not n.startswith(".")] \
            if state_dir.exists() else []
        check(not left, f"the redis side wrote state files {left} in {state_dir}")
        check(any(k.startswith(self.redis.prefix) for k in self.redis.server.keys()),
              f"no key under {self.redis.prefix}: Redis was not used")


def plan(rng, steps):
    """steps (user, action) pairs; the same seed, the same plan."""
    return [(rng.choices(PEOPLE, PEOPLE_WEIGHTS)[0],
             rng.choices(list(ACTIONS), ACTION_WEIGHTS)[0]) for _ in range(steps)]


@case
def files_and_redis_agree(h):
    problem = install_problem()
    check(problem is None, f"redis: {problem}")
    server = Redis(h.workdir)
    try:
        server.start()
        rng = random.Random(SEED)
        counts = dict.fromkeys([*VERDICTS, "lock", "resend refused by the cooldown",
                                "unlock lifted a lockout", "success"], 0)
        parts = [(f"e{i}", LIMITS, PART_STEPS) for i in range(PARTS)]
        parts.append(("cooldown", COOLDOWN_LIMITS, COOLDOWN_STEPS))
        step = 0
        for tag, limits, steps in parts:
            cmp = Comparison(h, tag, limits, server, counts, step)
            for user, action in plan(rng, steps):
                cmp.run(user, action)
            cmp.finish()
            step = cmp.step
        if h.verbose:
            print(f"[{h.case}] seed {SEED}, {step} steps; the files side met: {counts}")
        missing = [name for name, n in counts.items() if n == 0]
        check(not missing, f"seed {SEED}: the sequence never met {missing} on the files side "
              f"({counts}): agreeing proves nothing there")
    finally:
        server.stop()
