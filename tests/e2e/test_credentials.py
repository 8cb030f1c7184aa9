"""End-to-end cases: the Twilio account as today's Logto config names it: a Twilio API key
(apiKeySID, apiKeySecret) instead of the auth token, and Logto's `host` (a Twilio edge such
as api.dublin.ie1.twilio.com) over real TLS, the name resolved through a hosts file
bind-mounted over /etc/hosts in the client's private mount namespace."""

import base64
import socket
import tempfile
from pathlib import Path

from harness.core import case, check
from harness.pam import (FreedScan, expect_config_error, right, simple_service, unwrapped_case,
                         wrong)
from harness.sandbox import ACCOUNT_SID, API_KEY_SECRET, API_KEY_SID, AUTH_TOKEN, Sandbox
from harness.system import write_file

EDGE = "api.dublin.ie1.twilio.com"


@case
def api_key_instead_of_auth_token(h):
    """HTTP Basic carries apiKeySID:apiKeySecret; the URL keeps the accountSID."""
    svc = simple_service(h, authToken=None, apiKeySID=API_KEY_SID, apiKeySecret=API_KEY_SECRET)
    run = h.authenticate(svc, "alice", [right()])
    h.expect(run, "PAM_SUCCESS", sms=1, requests=1)
    req = run.requests[0]
    check(req.get("auth_user") == API_KEY_SID, f"Basic user {req.get('auth_user')!r}")
    check(req.get("auth_ok") is True, "the sandbox refused the API key")
    check(f"/Accounts/{h.sandbox.module_config()['accountSID']}/" in req.get("path", ""),
          f"path {req.get('path')!r} does not name the account")


@case
def api_key_unknown_refused_by_twilio(h):
    """A revoked or mistyped key: Twilio answers 401 / 20003; never fails open."""
    svc = simple_service(h, then_permit=True, failMode="open", authToken=None,
                         apiKeySID="SK" + "ab" * 16, apiKeySecret=API_KEY_SECRET)
    run = h.authenticate(svc, "alice", [right()])
    h.expect(run, "PAM_AUTHINFO_UNAVAIL", sms=0, requests=1, prompts=0)
    check(run.requests[0]["status"] == 401, f"sandbox answered {run.requests[0]['status']}")
    check(any("20003" in l for l in run.outcomes), f"20003 not logged: {run.outcomes!r}")


@case
def api_key_credential_errors_send_nothing(h):
    for over, needles in (
            ({"apiKeySID": API_KEY_SID, "apiKeySecret": API_KEY_SECRET},
             ("authToken", "apiKeySID")),
            ({"authToken": None, "apiKeySID": API_KEY_SID}, ("apiKeySID", "apiKeySecret")),
            ({"authToken": None, "apiKeySecret": API_KEY_SECRET}, ("apiKeySecret", "apiKeySID")),
            ({"authToken": None}, ("authToken", "apiKeySID")),
            ({"authToken": None, "apiKeySID": "SK123", "apiKeySecret": API_KEY_SECRET},
             ("apiKeySID",))):
        path = h.write_config(h.config(**over))
        run = h.authenticate(h.service(path, then_permit=True), "alice", [right()])
        expect_config_error(h, run, path, *needles)


@unwrapped_case
def twilio_credential_never_left_in_freed_memory(h):
    """No heap block that pamtester frees holds the auth token, the API key secret or their
    HTTP Basic forms (base64 of SID:secret), after a login that succeeds and one that fails
    (harness.pam.FreedScan): the module wipes its copies and gives libcurl allocation
    functions that wipe libcurl's."""
    for tag, user, secret, keys in (
            ("token", ACCOUNT_SID, AUTH_TOKEN, {}),
            ("key", API_KEY_SID, API_KEY_SECRET,
             {"authToken": None, "apiKeySID": API_KEY_SID, "apiKeySecret": API_KEY_SECRET})):
        basic = base64.b64encode(f"{user}:{secret}".encode())
        svc = simple_service(h, **keys)
        for result, answers in (("PAM_SUCCESS", [right()]), ("PAM_MAXTRIES", [wrong()] * 3)):
            scan = FreedScan(h, f"{tag}-{result}", [secret, basic])
            run = h.authenticate(svc, "alice", answers, env=scan.env)
            h.expect(run, result, sms=1, requests=1)
            scan.check()


def port_443_free():
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", 443))
        except OSError:
            return False
    return True


@case
def host_key_reaches_the_edge_over_tls(h):
    """host: api.dublin.ie1.twilio.com (any case) sends to https://HOST/2010-04-01/...: a
    sandbox with a certificate for that name listens on 127.0.0.1:443, the name resolves to
    it through the client's own /etc/hosts, and the request arrives with that Host header."""
    check(port_443_free(), "127.0.0.1:443 is taken: this case needs it for the edge's sandbox")
    edge = Sandbox(Path(tempfile.mkdtemp(dir=h.workdir, prefix="edge-")), port=443,
                   server_names=[EDGE])
    edge.start()
    try:
        hosts = write_file(Path(h.workdir) / "hosts",
                           f"127.0.0.1 localhost\n127.0.0.1 {EDGE}\n", mode=0o644)
        svc = simple_service(h, apiBaseUrl=None, host="API.Dublin.IE1.twilio.com",
                             caFile=edge.ca_file)
        main, h.sandbox = h.sandbox, edge  # the run's records and codes are the edge's
        try:
            run = h.authenticate(svc, "alice", [right()], binds=[(hosts, "/etc/hosts")])
        finally:
            h.sandbox = main
        h.expect(run, "PAM_SUCCESS", sms=1, requests=1)
        host = run.requests[0].get("host_header")
        check(host == EDGE, f"Host header {host!r}, want {EDGE!r}")
    finally:
        edge.stop()


@case
def host_key_errors(h):
    for over, needles in (
            ({"host": EDGE}, ("host and apiBaseUrl",)),
            ({"apiBaseUrl": None, "host": "https://api.twilio.com"}, ("host", "^api(")),
            ({"apiBaseUrl": None, "host": "api.twilio.com.evil.example"}, ("host", "^api(")),
            ({"apiBaseUrl": None, "host": "api.twilio.com:8443"}, ("host", "^api("))):
        path = h.write_config(h.config(**over))
        run = h.authenticate(h.service(path, then_permit=True), "alice", [right()])
        expect_config_error(h, run, path, *needles)
