#!/usr/bin/env python3
"""SSH_ASKPASS program of the integration tests, and the outbox reader they share.

ssh (with SSH_ASKPASS_REQUIRE=force) runs it once per keyboard-interactive prompt, with the
prompt as argv[1], e.g. "(tsmsuser1@127.0.0.1) Password: " or
"(tsmsuser1@127.0.0.1) SMS code sent to ******0161: ", and sends what it prints as the answer.
run_integration.py sets the environment:

    TSMS_ASKPASS_PASSWORD   the answer to a password prompt
    TSMS_ASKPASS_OUTBOX     the Twilio sandbox's outbox.jsonl
    TSMS_ASKPASS_SKIP       outbox lines written before this login (older codes are stale)
    TSMS_ASKPASS_CODE       "right": the code just sent; "wrong": one that differs in every digit;
                            "backup:CODE": CODE, at the SMS prompt or at the backup-code prompt
                            of a Twilio outage, without waiting for an SMS
    TSMS_ASKPASS_LOG        every prompt is appended to this file as a JSON line

An unknown prompt, or no SMS to the masked number within WAIT_SECONDS, exits 1 (ssh then gives
up the login) after logging why.
"""

import json
import os
import re
import sys
import time
from pathlib import Path

sys.dont_write_bytecode = True  # leave no __pycache__ in the tree
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from harness.sandbox import extract_code, read_jsonl, wrong_code  # noqa: E402

# PAM's "Password: ", or sudo's "[sudo] password for USER: "
PASSWORD_RE = re.compile(r"[Pp]assword(?: for \S+)?: ?$")
SMS_PROMPT_RE = re.compile(r"(?:Wrong code\. )?(?:New )?SMS code sent to \*{6}(\d{4}): ?$")
BACKUP_PROMPT_RE = re.compile(r"(?:Wrong code\. )?SMS unavailable; backup code: ?$")
CODE_LENGTH = 6
WAIT_SECONDS = 10.0


def wait_for_code(outbox, skip, last4, timeout=WAIT_SECONDS):
    """The code in the newest SMS after the first `skip` outbox lines to a number ending in
    last4, waiting up to timeout seconds for one; None when none came or it holds no code."""
    deadline = time.monotonic() + timeout
    while True:
        sent = [m for m in read_jsonl(outbox)[skip:] if str(m.get("to", "")).endswith(last4)]
        if sent:
            return extract_code(sent[-1].get("body"), CODE_LENGTH)
        if time.monotonic() >= deadline:
            return None
        time.sleep(0.05)


def answer(prompt, env):
    """Returns (answer or None, note for the log)."""
    if PASSWORD_RE.search(prompt):
        return env["TSMS_ASKPASS_PASSWORD"], "password"
    code = env.get("TSMS_ASKPASS_CODE", "")
    if code.startswith("backup:") and (SMS_PROMPT_RE.search(prompt) or
                                       BACKUP_PROMPT_RE.search(prompt)):
        return code[len("backup:"):], "backup code"
    m = SMS_PROMPT_RE.search(prompt)
    if not m:
        return None, "unknown prompt"
    code = wait_for_code(env["TSMS_ASKPASS_OUTBOX"], int(env["TSMS_ASKPASS_SKIP"]), m.group(1))
    if code is None:
        return None, f"no SMS with a code to ******{m.group(1)} within {WAIT_SECONDS:.0f}s"
    if env.get("TSMS_ASKPASS_CODE") == "wrong":
        return wrong_code(code), "wrong code"
    return code, "code"


def main():
    prompt = sys.argv[1] if len(sys.argv) > 1 else ""
    try:
        reply, note = answer(prompt, os.environ)
    except (KeyError, ValueError, OSError) as e:
        reply, note = None, f"{type(e).__name__}: {e}"
    log = os.environ.get("TSMS_ASKPASS_LOG")
    if log:
        with open(log, "a", encoding="utf-8") as f:
            f.write(json.dumps({"prompt": prompt, "answered": note}) + "\n")
    if reply is None:
        return 1
    print(reply)
    return 0


if __name__ == "__main__":
    sys.exit(main())
