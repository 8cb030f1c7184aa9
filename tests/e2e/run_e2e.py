#!/usr/bin/env python3
"""End-to-end tests of pam_twilio_sms.so through real libpam.

Each case writes a config file and a PAM service file /etc/pam.d/tsms-test-*,
runs `pamtester SERVICE USER authenticate` against the Twilio sandbox
(tests/sandbox/twilio_sandbox.py) and types the code it finds in the sandbox's
outbox. It checks what PAM returned (pamtester's exit status and its
pam_strerror text), what reached the sandbox, and the module's syslog lines,
captured on a datagram socket at /dev/log (bind-mounted over it inside a
private mount namespace when /dev/log already exists).

The cases are in tests/e2e/test_*.py, one file per family, all imported here (a new
family is a new file); the harness is the package tests/harness.

Run as root:  python3 tests/e2e/run_e2e.py [-k PATTERN] [-v]
Prints `PASS: name` or `FAIL: name: why` per case, then `e2e: N passed, N failed`.
"""

import importlib
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.dont_write_bytecode = True  # leave no __pycache__ in the tree
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))
from harness.core import CASES, main  # noqa: E402,F401 (CASES: valgrind.sh shards it)
from harness.pam import Harness, prerequisite_problem  # noqa: E402
from harness.sandbox import start_in_workdir  # noqa: E402
from harness.syslog import SyslogCapture  # noqa: E402

for family in sorted(HERE.glob("test_*.py")):
    importlib.import_module(family.stem)


def setup(cleanups, verbose):
    """One sandbox, one syslog capture and the harness for all cases."""
    workdir, sandbox = start_in_workdir(cleanups, "tsms-e2e-")
    syslog = SyslogCapture(workdir)
    cleanups.add(syslog.close)
    h = Harness(workdir, sandbox, syslog, verbose)
    cleanups.add(h.remove_services)
    return h


if __name__ == "__main__":
    sys.exit(main("e2e", __doc__.splitlines()[0], setup=setup, prepare=prerequisite_problem,
                  verbose_help="print pamtester output and log lines"))
