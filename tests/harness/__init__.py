"""The test harness shared by the end-to-end, admin command and integration suites.

Modules, one concern each:

  core     CaseFailure and check(), the case registry (@case, CASES), Tally, Interrupted and
           the signal handler, Cleanups, and the runner every suite's main() calls: -k PATTERN,
           -v, `PASS: name` / `FAIL: name: why` per case, then `SUITE: N passed, N failed`
  sandbox  the Twilio sandbox process (Sandbox), its credentials (ACCOUNT_SID, AUTH_TOKEN,
           MESSAGING_SID) and the module config that points at it
  syslog   SyslogCapture: the module's syslog lines, on a socket at /dev/log or bind-mounted
           over it in a private mount namespace; safe beside other captures (see its doc)
  system   processes, mount namespaces, test Unix users, sh(), free_port(), private files
  pam      the pamtester / pam_client harness of the end-to-end cases: PAM service files,
           the conversation, Answer helpers, Run and its expectations
  cli      the admin command (./twilio-sms-otp) as its suites run it: CommandHarness (a case's
           directory and base config, runs in a new session with what reached the sandbox,
           after(res) on every run), Result, expect(), expect_private(), prerequisite_problem()
  state    the module's stateDir files (send limits, lockout) as the cases read them
  redis    a throw-away redis-server (Debian's) on loopback and a Unix socket, with the
           module's ACL user and an admin one; its keys, TTLs and hashes as the cases read
           them, halt/restart/hang; host(): one host of a fleet (its own config, stateDir
           and PAM service); Hang (accepts, never answers), Garbage (+OK to every
           command, or silent from a given one) and Stream (a reply without end, trickled
           or flooded) listeners

A suite puts tests/ on sys.path (with sys.dont_write_bytecode set first, so that no
__pycache__ is written into the tree) and imports what it needs, e.g.
`from harness.core import case, check`.

End-to-end cases live in tests/e2e/test_*.py, one file per family. tests/e2e/run_e2e.py
imports every such file, in name order, and each registers its cases with @case; a new
family is a new file, nothing else to edit. Case names are unique across all families
(the registry refuses a second one): valgrind.sh and sanitize.sh select cases by name.
"""
