#!/usr/bin/env python3
"""Loopback stand-in for Duo's Auth API, the peer that `make bench` measures pam_duo against.

Answers the one request pam_duo makes for a user whose preauth result is "allow", so that a
login through pam_duo costs one HTTPS request, as a login through pam_twilio_sms does:

    POST /rest/v1/preauth.bson   duo_unix 1.x (Debian 12's libpam-duo 1.11.3): form fields
                                 user, hostname, failmode (and ipaddr); Authorization: Basic
                                 base64(ikey ":" hex HMAC-SHA1(skey, METHOD\\nhost\\npath\\nqs));
                                 the answer is BSON {stat: "OK", response: {result: "allow",
                                 status: MESSAGE}}
    POST /auth/v2/preauth        duo_unix 2.x: the same fields; X-Duo-Date, and the signature
                                 HMAC-SHA512(skey, date\\nMETHOD\\nhost\\npath\\nqs); JSON
                                 {"stat": "OK", "response": {"result": "allow", "status_msg": ...}}

qs is the form, its name=value pairs sorted, as duo_unix builds and signs it. The signature
is checked the way Duo checks it: a request signed with another skey or ikey gets Duo's 401
({stat: FAIL, code: 40101}), which pam_duo with `failmode = secure` turns into a refusal;
any other path is a 404. The host in the signed string is the one pam_duo was configured
with (the Host header without its port).

Files in DIR:

    DIR/ca.pem, ca.key           a throw-away test CA (pam_duo's cafile), made as the Twilio
                                 sandbox makes its own (twilio_sandbox.make_certificates)
    DIR/server.pem, server.key   its certificate for localhost, 127.0.0.1 and ::1 (pam_duo
                                 1.x matches DNS names only: configure host = localhost:PORT)
    DIR/port, DIR/pid            written once the socket listens
    DIR/requests.jsonl           one line per request: time (time.time() once the body is
                                 read, like the Twilio sandbox's), method, path, form,
                                 signature_ok, user agent, status
    DIR/delay                    optional: seconds to wait before answering (read per request),
                                 so that a caller can look at the client while it waits

Python 3 standard library only (and twilio_sandbox.py beside it); certificates come from the
openssl command-line tool.

    python3 tests/sandbox/duo_sandbox.py --dir DIR [--host 127.0.0.1] [--port 0]
                                         [--ikey IKEY] [--skey SKEY]
"""

import argparse
import base64
import hashlib
import hmac
import http.server
import ipaddress
import json
import os
import signal
import struct
import sys
import threading
import time
import urllib.parse
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import twilio_sandbox as twilio  # noqa: E402  the loopback TLS server and the certificates

DEFAULT_IKEY = "DIXXXXXXXXXXXXXXXXXX"  # Duo's integration keys: "DI" + 18 characters
DEFAULT_SKEY = "sandbox-duo-secret-key-0123456789abcdefgh"  # 40 characters, as Duo's
ALLOW_MESSAGE = "Allowed by the bench's Duo stand-in"
MAX_REQUEST_BYTES = 64 * 1024
IO_TIMEOUT = 30

def log(text):
    print(f"duo-sandbox: {text}", file=sys.stderr, flush=True)


# ---------------------------------------------------------------------------- BSON

def bson_document(items):
    """A BSON document of str and dict values (all that pam_duo 1.x reads)."""
    body = b""
    for name, value in items.items():
        key = name.encode() + b"\0"
        if isinstance(value, dict):
            body += b"\x03" + key + bson_document(value)
        else:
            data = str(value).encode() + b"\0"
            body += b"\x02" + key + struct.pack("<i", len(data)) + data
    return struct.pack("<i", len(body) + 5) + body + b"\0"


# ---------------------------------------------------------------------------- signature

def canonical_qs(form_pairs):
    """duo_unix's query string: each name=value as sent (already URL-encoded), sorted."""
    return "&".join(sorted(form_pairs))


def expected_authorization(ikey, skey, method, host, path, qs, date=None):
    """The Authorization header duo_unix sends: v1 (no date) signs with HMAC-SHA1, v2 with
    HMAC-SHA512 over the X-Duo-Date first."""
    if date is None:
        canon, digest = f"{method}\n{host}\n{path}\n{qs}", hashlib.sha1
    else:
        canon, digest = f"{date}\n{method}\n{host}\n{path}\n{qs}", hashlib.sha512
    sig = hmac.new(skey.encode(), canon.encode(), digest).hexdigest()
    return "Basic " + base64.b64encode(f"{ikey}:{sig}".encode()).decode()


# ---------------------------------------------------------------------------- server

class DuoSandbox:
    def __init__(self, directory, ikey, skey):
        self.dir = directory
        self.ikey = ikey
        self.skey = skey
        self.lock = threading.Lock()
        self.stopping = threading.Event()
        self.context = twilio.tls_context(directory / "server.pem", directory / "server.key")

    def record(self, entry):
        with self.lock, open(self.dir / "requests.jsonl", "a", encoding="utf-8") as f:
            f.write(json.dumps(entry) + "\n")

    def delay(self):
        try:
            return max(0.0, min(float((self.dir / "delay").read_text().strip() or 0), 30.0))
        except (OSError, ValueError):
            return 0.0


class Handler(http.server.BaseHTTPRequestHandler):
    """One TLS connection; answers one request, then closes (pam_duo closes it too)."""

    protocol_version = "HTTP/1.1"
    server_version = "duo-sandbox"
    sys_version = ""
    timeout = IO_TIMEOUT

    def dispatch(self):
        self.close_connection = True
        sandbox = self.server.sandbox
        split = urllib.parse.urlsplit(self.path)
        path = split.path
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            length = -1
        if not 0 <= length <= MAX_REQUEST_BYTES:
            self.answer(400, "json", {"stat": "FAIL", "code": 40002, "message": "Bad length"},
                        path, {}, False)
            return
        raw = self.rfile.read(length).decode("utf-8", "replace")
        pairs = [p for p in (raw if self.command != "GET" else split.query).split("&") if p]
        form = urllib.parse.parse_qs(raw if self.command != "GET" else split.query)
        host = (self.headers.get("Host") or "").rsplit(":", 1)[0]
        date = self.headers.get("X-Duo-Date")
        want = expected_authorization(sandbox.ikey, sandbox.skey, self.command, host, path,
                                      canonical_qs(pairs), date)
        signed = hmac.compare_digest((self.headers.get("Authorization") or "").encode(),
                                     want.encode())
        wait = sandbox.delay()
        if wait:
            sandbox.stopping.wait(wait)
        if path == "/rest/v1/preauth.bson" and self.command == "POST":
            kind, ok = "bson", {"stat": "OK",
                                "response": {"result": "allow", "status": ALLOW_MESSAGE}}
        elif path == "/auth/v2/preauth" and self.command == "POST":
            kind, ok = "json", {"stat": "OK",
                                "response": {"result": "allow", "status_msg": ALLOW_MESSAGE}}
        else:
            self.answer(404, "json", {"stat": "FAIL", "code": 40401, "message": "Not found"},
                        path, form, signed)
            return
        if not form.get("user"):
            self.answer(400, kind, {"stat": "FAIL", "code": 40001,
                                    "message": "Missing required request parameters"},
                        path, form, signed)
        elif not signed:
            self.answer(401, kind, {"stat": "FAIL", "code": 40101,
                                    "message": "Invalid signature in request credentials"},
                        path, form, signed)
        else:
            self.answer(200, kind, ok, path, form, signed)

    do_GET = do_POST = dispatch

    def answer(self, status, kind, obj, path, form, signed):
        self.server.sandbox.record({
            "time": time.time(),
            "method": self.command,
            "path": path,
            "form": form,
            "signature_ok": signed,
            "user_agent": self.headers.get("User-Agent"),
            "status": status,
        })
        body = bson_document(obj) if kind == "bson" else json.dumps(obj).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/bson" if kind == "bson"
                         else "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format, *args):
        log(f"{self.client_address[0]} {format % args}")


class Server(twilio.LoopbackServer):
    def __init__(self, sandbox, host, port):
        super().__init__(sandbox, host, port, Handler)

    def finish_request(self, request, client_address):
        request.settimeout(IO_TIMEOUT)
        try:
            conn = self.sandbox.context.wrap_socket(request, server_side=True)
        except OSError as err:
            log(f"{client_address[0]} TLS handshake failed: {err}")
            return
        try:
            self.RequestHandlerClass(conn, client_address, self)
        except OSError as err:
            log(f"{client_address[0]} connection error: {err}")
        finally:
            conn.close()


def parse_args(argv):
    p = argparse.ArgumentParser(description="Loopback stand-in for Duo's Auth API (preauth "
                                "answers allow).")
    p.add_argument("--dir", required=True, help="working directory (certs, port, records)")
    p.add_argument("--host", default="127.0.0.1", help="loopback address to listen on")
    p.add_argument("--port", type=int, default=0, help="port (0: any free port)")
    p.add_argument("--ikey", default=DEFAULT_IKEY, help="the integration key it accepts")
    p.add_argument("--skey", default=DEFAULT_SKEY, help="the secret key requests are signed with")
    args = p.parse_args(argv)
    try:
        if not ipaddress.ip_address(args.host).is_loopback:
            p.error(f"--host {args.host} is not a loopback address")
    except ValueError:
        p.error(f"--host {args.host} is not an IP address")
    return args


def main(argv):
    args = parse_args(argv)
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    directory = Path(args.dir).resolve()
    directory.mkdir(parents=True, exist_ok=True)
    for stale in ("port", "pid"):
        (directory / stale).unlink(missing_ok=True)
    try:
        twilio.make_certificates(directory)  # the same throw-away CA and key type
    except (OSError, RuntimeError) as err:
        log(f"cannot create certificates: {err}")
        return 2
    sandbox = DuoSandbox(directory, args.ikey, args.skey)
    server = Server(sandbox, args.host, args.port)
    port = server.server_address[1]
    twilio.write_atomically(directory / "pid", f"{os.getpid()}\n")
    twilio.write_atomically(directory / "port", f"{port}\n")
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.2},
                     daemon=True).start()
    log(f"listening on {args.host}:{port} (dir {directory})")
    while not stop.wait(1):
        pass
    sandbox.stopping.set()
    server.shutdown()
    server.server_close()
    for name in ("port", "pid"):
        (directory / name).unlink(missing_ok=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
