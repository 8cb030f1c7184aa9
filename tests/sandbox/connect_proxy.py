#!/usr/bin/env python3
"""A logging HTTP CONNECT proxy on loopback, for the pam_twilio_sms tests.

Two uses: the attacker's proxy (a caller's https_proxy must never reach it: the tests
assert its log stays empty) and the administrator's proxy (the config's `proxy` key: the
request must go through it, TLS to the sandbox end to end inside the tunnel).

    connect_proxy.py --dir DIR [--host 127.0.0.1] [--port 0]
                     [--tls-cert PEM --tls-key KEY]     listen with TLS: an https:// proxy
                     [--user USER --password PASSWORD]  require Proxy-Authorization: Basic

    DIR/port, DIR/pid       written once the socket listens
    DIR/requests.jsonl      one line per request head: client, method, target, whether
                            credentials came and matched (never the credentials), status
    DIR/mode                written by tests, read at every request: missing, empty or
                            "tunnel" tunnels; "refuse" answers 403 to every CONNECT;
                            "hang" reads the request and never answers

Tunnels lead only to loopback addresses (the tests' own servers); anything else gets 403.
Python 3 standard library only.
"""

import argparse
import base64
import binascii
import hmac
import ipaddress
import json
import os
import select
import signal
import socket
import socketserver
import ssl
import sys
import threading
import time
from pathlib import Path

MAX_HEAD = 16 * 1024
TUNNEL_LIMIT = 60.0  # seconds a tunnel may stay open
IDLE_LIMIT = 30.0  # seconds without a byte either way


def loopback(host):
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


class Proxy(socketserver.ThreadingMixIn, socketserver.TCPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, args):
        self.dir = Path(args.dir)
        self.tls = None
        if args.tls_cert:
            self.tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            self.tls.minimum_version = ssl.TLSVersion.TLSv1_2
            self.tls.load_cert_chain(args.tls_cert, args.tls_key)
        self.expected_auth = None
        if args.user is not None:
            pair = f"{args.user}:{args.password or ''}".encode()
            self.expected_auth = b"Basic " + base64.b64encode(pair)
        self.lock = threading.Lock()
        family = socket.AF_INET6 if ":" in args.host else socket.AF_INET
        self.address_family = family
        super().__init__((args.host, args.port), Handler)

    def mode(self):
        try:
            return (self.dir / "mode").read_text().strip() or "tunnel"
        except FileNotFoundError:
            return "tunnel"

    def record(self, entry):
        line = json.dumps(entry, sort_keys=True) + "\n"
        with self.lock, open(self.dir / "requests.jsonl", "a", encoding="utf-8") as f:
            f.write(line)


class Handler(socketserver.BaseRequestHandler):
    def handle(self):
        conn = self.request
        conn.settimeout(IDLE_LIMIT)
        if self.server.tls is not None:
            try:
                conn = self.server.tls.wrap_socket(conn, server_side=True)
            except (ssl.SSLError, OSError) as e:
                self.server.record({"client": self.client_address[0], "tls_error": str(e)})
                return
        head = b""
        try:
            while b"\r\n\r\n" not in head and len(head) < MAX_HEAD:
                chunk = conn.recv(4096)
                if not chunk:
                    break
                head += chunk
        except (OSError, socket.timeout):
            return
        head, _, rest = head.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        parts = lines[0].split(" ")
        method, target = (parts[0], parts[1]) if len(parts) == 3 else ("?", "?")
        headers = {}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        auth = headers.get("proxy-authorization")
        expected = self.server.expected_auth
        auth_ok = auth is not None and expected is not None and \
            hmac.compare_digest(auth.encode("latin-1"), expected)
        entry = {"client": self.client_address[0], "method": method, "target": target,
                 "credentials": auth is not None, "credentials_ok": auth_ok,
                 "time": time.time()}
        host, _, port = target.rpartition(":")
        mode = self.server.mode()
        if mode == "hang":
            entry["status"] = 0
            self.server.record(entry)
            wait_for_client_to_leave(conn)
            return
        if method != "CONNECT":
            status = 405
        elif mode == "refuse":
            status = 403
        elif expected is not None and not auth_ok:
            status = 407
        elif not port.isdigit() or not loopback(host):
            status = 403
        else:
            status = 200
        entry["status"] = status
        self.server.record(entry)
        if status != 200:
            extra = "Proxy-Authenticate: Basic realm=\"tsms\"\r\n" if status == 407 else ""
            try:
                conn.sendall(f"HTTP/1.1 {status} No\r\n{extra}Content-Length: 0\r\n"
                             "Connection: close\r\n\r\n".encode())
            except OSError:
                pass
            return
        try:
            upstream = socket.create_connection((host.strip("[]"), int(port)), timeout=5)
        except OSError:
            conn.sendall(b"HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\n\r\n")
            return
        with upstream:
            conn.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
            if rest:
                upstream.sendall(rest)
            pipe(conn, upstream)


def wait_for_client_to_leave(conn):
    deadline = time.monotonic() + TUNNEL_LIMIT
    while time.monotonic() < deadline:
        try:
            if not conn.recv(4096):
                return
        except socket.timeout:
            continue
        except OSError:
            return


def pipe(a, b):
    """Copies bytes both ways until either side closes, or the limits run out."""
    deadline = time.monotonic() + TUNNEL_LIMIT
    peers = {a: b, b: a}
    while time.monotonic() < deadline:
        # TLS sockets may hold decrypted bytes that select() cannot see
        ready = [s for s in peers if isinstance(s, ssl.SSLSocket) and s.pending()]
        if not ready:
            ready, _, _ = select.select(list(peers), [], [], IDLE_LIMIT)
            if not ready:
                return
        for s in ready:
            try:
                data = s.recv(65536)
            except (OSError, socket.timeout):
                return
            if not data:
                return
            try:
                peers[s].sendall(data)
            except OSError:
                return


def write_atomically(path, text):
    tmp = path.with_suffix(".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def main(argv):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dir", required=True)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--tls-cert")
    parser.add_argument("--tls-key")
    parser.add_argument("--user")
    parser.add_argument("--password")
    args = parser.parse_args(argv)
    if not loopback(args.host):
        parser.error("--host must be a loopback address")
    if bool(args.tls_cert) != bool(args.tls_key):
        parser.error("--tls-cert and --tls-key go together")
    Path(args.dir).mkdir(parents=True, exist_ok=True)
    server = Proxy(args)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    write_atomically(Path(args.dir) / "pid", f"{os.getpid()}\n")
    write_atomically(Path(args.dir) / "port", f"{server.server_address[1]}\n")
    try:
        server.serve_forever(poll_interval=0.2)
    finally:
        server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
