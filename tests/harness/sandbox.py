"""The Twilio sandbox (tests/sandbox/twilio_sandbox.py) as the suites run it: the process,
its records, the codes in the SMS it accepted, and the module config that points at it."""

import json
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from harness.core import REPO, CaseFailure, check
from harness.system import stop_process, wait_for_port_file

SANDBOX = REPO / "tests" / "sandbox" / "twilio_sandbox.py"
ACCOUNT_SID = "AC0123456789abcdef0123456789abcdef"
AUTH_TOKEN = "sandbox-auth-token-0123456789"
MESSAGING_SID = "MGfedcba9876543210fedcba9876543210"
# an API key every sandbox accepts besides the auth token (apiKeySID / apiKeySecret)
API_KEY_SID = "SK00112233445566778899aabbccddeeff"
API_KEY_SECRET = "sandbox-api-key-secret-9876543210"


def read_jsonl(path):
    """Returns the complete JSON lines of path ([] when it does not exist)."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        return []
    rows = []
    for line in text.splitlines(keepends=True):
        if line.endswith("\n") and line.strip():
            rows.append(json.loads(line))
    return rows


def extract_code(body, length=6):
    """The first run of exactly length digits in an SMS body, or None."""
    found = re.findall(rf"(?<!\d)(\d{{{length}}})(?!\d)", body or "")
    return found[0] if found else None


def start_in_workdir(cleanups, prefix):
    """A new root-only temp dir (prefix + random) with a started sandbox in it, both
    removed by cleanups at the end; returns (workdir, sandbox)."""
    workdir = tempfile.mkdtemp(prefix=prefix)  # mode 0700
    cleanups.add(shutil.rmtree, workdir, True)
    sandbox = Sandbox(Path(workdir) / "sandbox")
    cleanups.add(sandbox.stop)
    sandbox.start()
    return workdir, sandbox


def wrong_code(code):
    """A code of the same length that differs from code in every digit."""
    return "".join(str((int(d) + 1) % 10) for d in code)


class Sandbox:
    """The Twilio sandbox process, its directory and its records."""

    def __init__(self, workdir, *, port=0, server_names=(),
                 api_keys=((API_KEY_SID, API_KEY_SECRET),)):
        """port 0: any free one; server_names: more DNS names in its certificate;
        api_keys: (SID, secret) pairs it accepts besides the auth token."""
        self.dir = Path(workdir)
        self.proc = None
        self.port = None
        self.listen_port = port
        self.server_names = tuple(server_names)
        self.api_keys = tuple(api_keys)
        self.stderr_path = self.dir / "sandbox.stderr"

    @property
    def base_url(self):
        return f"https://127.0.0.1:{self.port}"

    @property
    def ca_file(self):
        return str(self.dir / "ca.pem")

    def start(self, timeout=30.0):
        self.dir.mkdir(parents=True, exist_ok=True)
        cmd = [sys.executable, str(SANDBOX), "--dir", str(self.dir), "--host", "127.0.0.1",
               "--port", str(self.listen_port), "--account-sid", ACCOUNT_SID,
               "--auth-token", AUTH_TOKEN]
        cmd += [arg for name in self.server_names for arg in ("--server-name", name)]
        cmd += [arg for sid, secret in self.api_keys for arg in ("--api-key", f"{sid}:{secret}")]
        with open(self.stderr_path, "wb") as err:
            self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=err, stderr=err,
                                         start_new_session=True)
        self.port = wait_for_port_file(self.proc, self.dir / "port", timeout, "sandbox",
                                       self.stderr_tail)

    def stderr_tail(self, n=400):
        try:
            return self.stderr_path.read_text(errors="replace")[-n:].strip() or "(no stderr)"
        except OSError:
            return "(no stderr)"

    def stop(self):
        stop_process(self.proc)

    def set_scenario(self, name):
        tmp = self.dir / "scenario.tmp"
        tmp.write_text(name + "\n")
        tmp.replace(self.dir / "scenario")

    def outbox(self):
        return read_jsonl(self.dir / "outbox.jsonl")

    def requests(self):
        return read_jsonl(self.dir / "requests.jsonl")

    def wait_for_code(self, last4, since, deadline, nth=None, length=6):
        """The code in an SMS accepted after the first `since` outbox lines to a number ending
        in last4: the nth such message (1 is the first), or the newest once there is one."""
        while time.monotonic() < deadline:
            sent = [m for m in self.outbox()[since:] if str(m.get("to", "")).endswith(last4)]
            if sent and len(sent) >= (nth or 1):
                body = sent[nth - 1 if nth else -1].get("body")
                code = extract_code(body, length)
                check(code is not None, f"no {length}-digit code in the SMS body {body!r}")
                return code
            time.sleep(0.02)
        which = f"prompt {nth}" if nth else "a prompt"
        raise CaseFailure(f"{which} for ******{last4} but fewer SMS to that number")

    def module_config(self, **keys):
        """A module config (a dict) that sends through this sandbox: its credentials, URL and
        CA, timeoutSeconds 5, then keys in order; a key given as None is left out."""
        cfg = {
            "accountSID": ACCOUNT_SID,
            "authToken": AUTH_TOKEN,
            "fromMessagingServiceSID": MESSAGING_SID,
            "apiBaseUrl": self.base_url,
            "caFile": self.ca_file,
            "timeoutSeconds": 5,
        }
        for key, value in keys.items():
            if value is None:
                cfg.pop(key, None)
            else:
                cfg[key] = value
        return cfg
