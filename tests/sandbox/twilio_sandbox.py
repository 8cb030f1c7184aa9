#!/usr/bin/env python3
"""Twilio-compatible HTTPS sandbox for the pam_twilio_sms tests.

Serves POST /2010-04-01/Accounts/{AccountSid}/Messages.json (Twilio's API) and
GET /v1/Services/{Sid} (its Messaging API: the services of --service) on a loopback address,
validates every normal request against Twilio's own OpenAPI description of that operation, and
records what it saw in DIR so tests can assert on it:

    DIR/ca.pem, ca.key             test CA (point the module's caFile at ca.pem)
    DIR/server.pem, server.key     cert for localhost, 127.0.0.1, ::1 and each --server-name
    DIR/wronghost.pem, .key        cert for wrong.invalid, same CA
    DIR/selfsigned.pem, .key       self-signed cert for localhost, 127.0.0.1 and ::1 (not the CA's)
    DIR/expired.pem, .key          cert for localhost, 127.0.0.1 and ::1 from the CA, expired
    DIR/port, DIR/pid              written once the socket listens
    DIR/requests.jsonl             one line per request
    DIR/outbox.jsonl               one line per accepted message
    DIR/scenario                   written by tests; read at every accepted connection
                                   (each connection carries exactly one request)

Scenarios (content of DIR/scenario; missing, empty or "ok" is normal handling):
    401 403 400-21211 429 500 503
                                that Twilio error, whatever the request
    429:SECONDS                 429 with Retry-After: SECONDS (plain 429 sends Retry-After: 1)
    hang                        read the request, never answer until the client leaves
    slow:SECONDS                wait, then handle normally
    garbage                     201 with a body that is not JSON
    drop                        read the request, close without answering
    wronghost                   handshake with the wrong.invalid certificate
    selfsigned                  handshake with a self-signed certificate for the right host
    expired                     handshake with an expired CA-signed certificate for the right host
    tls11                       server capped at TLS 1.1 (ciphers at SECLEVEL=0 so that OpenSSL 3
                                offers TLS 1.1 at all); a TLS 1.2+ client must fail the handshake
    refuse                      close the TCP connection at once, before any TLS (nothing sent)
    seq:A,B,...                 one item per connection, in order: the first connection gets A
                                and the file is rewritten to seq:B,...; the last item then stays
                                (e.g. seq:503,ok or seq:refuse,429,ok)
    big                         201 with a 1 MiB body
    redirect                    302 to another URL on this sandbox

Python 3 standard library only; certificates come from the openssl command-line tool.
"""

import argparse
import base64
import binascii
import hmac
import http.server
import ipaddress
import json
import math
import os
import re
import secrets
import shutil
import signal
import socket
import socketserver
import ssl
import subprocess
import sys
import threading
import time
import urllib.parse
import warnings
from datetime import datetime
from pathlib import Path

DEFAULT_ACCOUNT_SID = "AC0123456789abcdef0123456789abcdef"
DEFAULT_AUTH_TOKEN = "sandbox-auth-token-0123456789"
# The account's Messaging Services unless --service names them (the test harness's)
DEFAULT_SERVICE_SIDS = ["MGfedcba9876543210fedcba9876543210"]
SPEC_UNDER_ANCESTOR = Path("shared/twilio-oai/twilio_api_v2010.json")
# The Messages create operation cut from Twilio's description (openapi_excerpt.py);
# selftest.sh checks it against the full file when that is at hand.
BUNDLED_SPEC = Path(__file__).resolve().parent / "twilio-messages-openapi.json"

MESSAGES_PATH = "/2010-04-01/Accounts/{AccountSid}/Messages.json"
FORM_CONTENT_TYPE = "application/x-www-form-urlencoded"
FORM_SCHEMA_TITLE = "CreateMessageRequest"
MESSAGE_SCHEMA = "api.v2010.account.message"
SERVICE_PATH = "/v1/Services/{Sid}"
SERVICE_SCHEMA = "messaging.v1.service"

E164 = re.compile(r"^\+[1-9][0-9]{6,14}$")
MAX_BODY_CHARS = 1600
MAX_REQUEST_BYTES = 1024 * 1024
MAX_FORM_FIELDS = 100
BIG_RESPONSE_BYTES = 1024 * 1024
HANDSHAKE_TIMEOUT = 10
IO_TIMEOUT = 30

# Twilio's magic test numbers (https://www.twilio.com/docs/iam/test-credentials).
MAGIC_TO = {
    "+15005550001": (21211, "The 'To' number +15005550001 is not a valid phone number."),
    "+15005550009": (21614, "'To' number +15005550009 is not a valid mobile number"),
    "+15005550004": (21610, "Attempt to send to unsubscribed recipient"),
}

# Twilio's codes for a bad value of these fields. The spec names no error codes, so any
# other field falls back to 20001, Twilio's code for parameters it cannot use.
FIELD_ERROR_CODES = {
    "To": 21211,
    "MessagingServiceSid": 21705,
    "StatusCallback": 21609,
}
PARAMETER_ERROR = 20001

# Codes for the x-twilio "conditional" groups, keyed by the group's first member.
CONDITIONAL_ERRORS = {
    "from": (21603, "A 'From' or 'MessagingServiceSid' parameter is required to send a message."),
    "body": (21602, "Message body is required."),
}

SCENARIO_ERRORS = {
    "401": (401, 20003, "Authenticate"),
    "403": (403, 20403, "Forbidden"),
    "400-21211": (400, 21211, "The 'To' number is not a valid phone number."),
    "429": (429, 20429, "Too Many Requests"),
    "500": (500, 20500, "Internal Server Error"),
    "503": (503, 20503, "Service Unavailable"),
}
# Scenarios decided by the TLS handshake: the name of the server context to use.
TLS_SCENARIOS = {"wronghost": "wronghost", "selfsigned": "selfsigned", "expired": "expired",
                 "tls11": "tls11"}
SCENARIOS = set(SCENARIO_ERRORS) | set(TLS_SCENARIOS) | {
    "ok", "hang", "garbage", "drop", "big", "redirect", "refuse"}
RETRY_AFTER_SCENARIO = re.compile(r"^429:([0-9]{1,6})$")


def log(text):
    print(f"[twilio-sandbox] {text}", file=sys.stderr, flush=True)


class TwilioError(Exception):
    """An error answer in Twilio's shape."""

    def __init__(self, status, code, message, headers=()):
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = list(headers)

    def body(self):
        return {
            "code": self.code,
            "message": self.message,
            "more_info": f"https://www.twilio.com/docs/errors/{self.code}",
            "status": self.status,
        }


class Reply:
    """What to do with a request: send status/headers/body, or hang, or drop."""

    def __init__(self, status=0, body=b"", headers=(), action="send"):
        self.status = status
        self.body = body
        self.headers = list(headers)
        self.action = action

    @classmethod
    def json(cls, status, obj, headers=()):
        body = json.dumps(obj).encode()
        return cls(status, body, [("Content-Type", "application/json; charset=utf-8"), *headers])

    @classmethod
    def error(cls, err):
        return cls.json(err.status, err.body(), err.headers)


def snake_case(name):
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


class MessagesApi:
    """The Messages create operation as Twilio's OpenAPI description defines it."""

    def __init__(self, spec):
        self.spec = spec
        operation = spec["paths"][MESSAGES_PATH]["post"]
        self.account_sid_schema = next(
            self.resolve(p["schema"])
            for p in operation["parameters"]
            if p["in"] == "path" and p["name"] == "AccountSid"
        )
        self.content_types = set(operation["requestBody"]["content"])
        form = self.resolve(operation["requestBody"]["content"][FORM_CONTENT_TYPE]["schema"])
        if form.get("title") != FORM_SCHEMA_TITLE:
            raise ValueError(f"form schema is {form.get('title')!r}, not {FORM_SCHEMA_TITLE}")
        self.fields = {name: self.resolve(s) for name, s in form["properties"].items()}
        self.required = list(form.get("required", []))

        # x-twilio "conditional" lists groups of snake_case fields of which one must be given.
        by_snake = {snake_case(name): name for name in self.fields}
        self.conditional = []
        for group in operation.get("x-twilio", {}).get("conditional", []):
            if group[0] not in CONDITIONAL_ERRORS or any(n not in by_snake for n in group):
                raise ValueError(f"unexpected conditional group {group} in the spec")
            self.conditional.append((group[0], [by_snake[n] for n in group]))

        message = self.resolve(spec["components"]["schemas"][MESSAGE_SCHEMA])
        self.message_fields = list(message["properties"])
        self.message_statuses = self.resolve(message["properties"]["status"])["enum"]

        # The Messaging Service fetch (Twilio's Messaging API)
        fetch = spec["paths"][SERVICE_PATH]["get"]
        self.service_sid_schema = next(
            self.resolve(p["schema"])
            for p in fetch["parameters"]
            if p["in"] == "path" and p["name"] == "Sid"
        )
        if "requestBody" in fetch:
            raise ValueError("the Services fetch has a request body in the spec")
        service = self.resolve(fetch["responses"]["200"]["content"]["application/json"]["schema"])
        if service is not self.resolve(spec["components"]["schemas"][SERVICE_SCHEMA]):
            raise ValueError(f"the Services fetch does not answer {SERVICE_SCHEMA}")
        self.service_fields = list(service["properties"])

    def resolve(self, schema):
        """Follow local "#/..." $refs, also inside array items."""
        while "$ref" in schema:
            node = self.spec
            for part in schema["$ref"].removeprefix("#/").split("/"):
                node = node[part]
            schema = node
        if schema.get("type") == "array" and "items" in schema:
            schema = {**schema, "items": self.resolve(schema["items"])}
        return schema

    def account_sid_problem(self, sid):
        return value_problem(self.account_sid_schema, sid)

    def validate(self, form):
        """Raise TwilioError for the first problem Twilio would report with this form."""
        for name in form:
            if name not in self.fields:
                raise TwilioError(400, PARAMETER_ERROR, f"Unknown parameter: {name}")

        def given(name):
            return any(v != "" for v in form.get(name, []))

        for name in self.required:
            if not given(name):
                if name == "To":
                    raise TwilioError(400, 21604, "A 'To' phone number is required.")
                raise TwilioError(400, PARAMETER_ERROR, f"Missing required parameter {name}.")
        for first, group in self.conditional:
            if not any(given(name) for name in group):
                raise TwilioError(400, *CONDITIONAL_ERRORS[first])

        for name, values in form.items():
            schema = self.fields[name]
            if schema.get("type") == "array":
                problems = [value_problem(schema["items"], v) for v in values]
            elif len(values) > 1:
                problems = ["given more than once"]
            else:
                problems = [value_problem(schema, values[0])]
            problem = next((p for p in problems if p), None)
            if problem:
                code = FIELD_ERROR_CODES.get(name, PARAMETER_ERROR)
                raise TwilioError(400, code, f"Invalid parameter {name}: {problem}")

        # The range the ValidityPeriod description states ("integers from 1 to 36000"),
        # which the schema's type alone does not
        for value in form.get("ValidityPeriod", []):
            if not 1 <= int(value) <= 36000:
                raise TwilioError(400, PARAMETER_ERROR,
                                  f"Invalid parameter ValidityPeriod: {value} is outside 1 to 36000")

        # The spec's To format is "phone-number", which also admits channel addresses
        # (whatsapp:+1...); an SMS second factor needs plain E.164.
        to = form["To"][0]
        if not E164.match(to):
            raise TwilioError(400, 21211, f"The 'To' number {to} is not a valid phone number.")
        body = form.get("Body", [""])[0]
        if len(body) > MAX_BODY_CHARS:
            raise TwilioError(
                400, 21617, "The concatenated message body exceeds the 1600 character limit."
            )
        if to in MAGIC_TO:
            raise TwilioError(400, *MAGIC_TO[to])

    def message(self, account_sid, form):
        """The 201 body for an accepted message, with every field of the message schema."""
        sid = "SM" + secrets.token_hex(16)
        service = form.get("MessagingServiceSid", [None])[0]
        # With a Messaging Service the sender is chosen later: status accepted, from unset.
        status = "accepted" if service else "queued"
        if status not in self.message_statuses:
            raise ValueError(f"status {status} is not in the spec's enum")
        body = form.get("Body", [""])[0]
        now = time.strftime("%a, %d %b %Y %H:%M:%S +0000", time.gmtime())
        uri = f"/2010-04-01/Accounts/{account_sid}/Messages/{sid}"
        values = {
            "account_sid": account_sid,
            "api_version": "2010-04-01",
            "body": body,
            "date_created": now,
            "date_updated": now,
            "date_sent": None,
            "direction": "outbound-api",
            "error_code": None,
            "error_message": None,
            "from": form.get("From", [None])[0],
            "messaging_service_sid": service,
            "num_media": str(len(form.get("MediaUrl", []))),
            "num_segments": "0" if service else str(segments(body)),
            "price": None,
            "price_unit": "USD",
            "sid": sid,
            "status": status,
            "subresource_uris": {"media": f"{uri}/Media.json"},
            "to": form["To"][0],
            "uri": f"{uri}.json",
        }
        return {name: values.get(name) for name in self.message_fields}


    def service_sid_problem(self, sid):
        return value_problem(self.service_sid_schema, sid)

    def service(self, base_url, account_sid, sid):
        """The 200 body of a Messaging Service fetch, with every field of the schema."""
        url = f"{base_url}/v1/Services/{sid}"
        values = {
            "sid": sid,
            "account_sid": account_sid,
            "friendly_name": "Sandbox sign-in codes",
            "date_created": "2026-01-01T00:00:00Z",
            "date_updated": "2026-01-01T00:00:00Z",
            "inbound_method": "POST",
            "fallback_method": "POST",
            "sticky_sender": True,
            "mms_converter": True,
            "smart_encoding": True,
            "scan_message_content": "inherit",
            "fallback_to_long_code": True,
            "area_code_geomatch": True,
            "synchronous_validation": True,
            "validity_period": 14400,
            "url": url,
            "links": {"phone_numbers": f"{url}/PhoneNumbers", "messages": f"{url}/Messages"},
            "usecase": "undeclared",
            "us_app_to_person_registered": False,
            "use_inbound_webhook_on_number": False,
        }
        return {name: values.get(name) for name in self.service_fields}


def segments(body):
    """SMS segment count, treating any non-ASCII text as UCS-2 (close enough for a sandbox)."""
    single, multi = (160, 153) if body.isascii() else (70, 67)
    return 1 if len(body) <= single else math.ceil(len(body) / multi)


def value_problem(schema, value):
    """What is wrong with one form value under its schema, or None."""
    kind = schema.get("type", "string")
    if kind == "integer" and not re.fullmatch(r"[+-]?[0-9]+", value):
        return "not an integer"
    if kind == "number":
        try:
            if not math.isfinite(float(value)):
                return "not a finite number"
        except ValueError:
            return "not a number"
    if kind == "boolean" and value.lower() not in ("true", "false"):
        return "not true or false"
    if "enum" in schema and value not in schema["enum"]:
        return f"must be one of {', '.join(schema['enum'])}"
    if "minLength" in schema and len(value) < schema["minLength"]:
        return f"shorter than {schema['minLength']} characters"
    if "maxLength" in schema and len(value) > schema["maxLength"]:
        return f"longer than {schema['maxLength']} characters"
    if "pattern" in schema and not re.search(schema["pattern"], value):
        return f"does not match {schema['pattern']}"
    if not schema.get("x-twilio", {}).get("ignoreFormat"):
        if schema.get("format") == "uri":
            parts = urllib.parse.urlsplit(value)
            if parts.scheme not in ("http", "https") or not parts.netloc:
                return "not an http(s) URL"
        if schema.get("format") == "date-time":
            try:
                datetime.fromisoformat(value.replace("Z", "+00:00"))
            except ValueError:
                return "not an ISO 8601 date-time"
    return None


class Sandbox:
    """State shared by all connections: configuration, TLS contexts, record files."""

    def __init__(self, args, api, directory):
        self.api = api
        self.directory = directory
        self.account_sid = args.account_sid
        # HTTP Basic pairs accepted: the account and its auth token, and each API key
        self.credentials = [f"{args.account_sid}:{args.auth_token}".encode()]
        self.credentials += [key.encode() for key in args.api_key]
        self.services = set(args.service or DEFAULT_SERVICE_SIDS)
        self.echo = args.echo
        server = (directory / "server.pem", directory / "server.key")
        self.contexts = {
            "server": tls_context(*server),
            "wronghost": tls_context(directory / "wronghost.pem", directory / "wronghost.key"),
            "selfsigned": tls_context(directory / "selfsigned.pem", directory / "selfsigned.key"),
            "expired": tls_context(directory / "expired.pem", directory / "expired.key"),
            "tls11": tls11_context(*server),
        }
        self.path = re.compile(
            "^" + re.escape(MESSAGES_PATH).replace(r"\{AccountSid\}", "(?P<sid>[^/]*)") + "$"
        )
        self.service_path = re.compile(
            "^" + re.escape(SERVICE_PATH).replace(r"\{Sid\}", "(?P<sid>[^/]*)") + "$"
        )
        self.stopping = threading.Event()
        self.record_lock = threading.Lock()
        self.scenario_lock = threading.Lock()
        self.base_url = ""

    def scenario(self):
        try:
            text = (self.directory / "scenario").read_text().strip()
        except FileNotFoundError:
            return "ok"
        return text or "ok"

    def next_scenario(self):
        """The scenario of a new connection; consumes the first item of a seq: scenario."""
        with self.scenario_lock:
            text = self.scenario()
            if not text.startswith("seq:"):
                return text
            items = [item.strip() for item in text.removeprefix("seq:").split(",")]
            items = [item for item in items if item] or ["ok"]
            rest = items[1:] or items
            write_atomically(self.directory / "scenario",
                             ("seq:" + ",".join(rest) if len(rest) > 1 else rest[0]) + "\n")
            return items[0]

    def record(self, name, entry):
        line = json.dumps(entry) + "\n"
        with self.record_lock, open(self.directory / name, "a", encoding="utf-8") as f:
            f.write(line)

    def auth_ok(self, header):
        if not header or not header.startswith("Basic "):
            return False
        try:
            given = base64.b64decode(header[len("Basic "):].strip(), validate=True)
        except binascii.Error:
            return False
        # every pair compared: no early exit that times which one was close
        return sum(hmac.compare_digest(given, pair) for pair in self.credentials) > 0

    def answer(self, scenario, method, path, content_type, auth_ok, form, form_error):
        """The Reply for one request under a scenario (slow: has already waited)."""
        retry_after = RETRY_AFTER_SCENARIO.match(scenario)
        if retry_after:
            return Reply.error(TwilioError(429, 20429, "Too Many Requests",
                                           [("Retry-After", retry_after[1])]))
        if scenario not in SCENARIOS:
            log(f"unknown scenario {scenario!r} in {self.directory / 'scenario'}")
            return Reply.error(TwilioError(500, 20500, f"Unknown sandbox scenario {scenario!r}"))
        if scenario in SCENARIO_ERRORS:
            status, code, message = SCENARIO_ERRORS[scenario]
            retry = [("Retry-After", "1")] if status == 429 else []
            return Reply.error(TwilioError(status, code, message, retry))
        if scenario in ("hang", "drop"):
            return Reply(action=scenario)
        if scenario == "redirect":
            return Reply.json(302, {}, [("Location", f"{self.base_url}/redirected")])
        if scenario == "garbage":
            return Reply(201, b"<html>Twilio is having a bad day</html>",
                         [("Content-Type", "application/json")])

        try:
            if self.service_path.match(path):
                return Reply.json(200, self.fetch_service(method, path, auth_ok, content_type))
            sid = self.accept(method, path, content_type, auth_ok, form, form_error)
        except TwilioError as err:
            return Reply.error(err)
        message = self.api.message(sid, form)
        if scenario == "big":
            # Still a valid message, so only the client's response size limit can reject it.
            pad = BIG_RESPONSE_BYTES - len(json.dumps(message).encode())
            message["body"] += " " * max(pad, 0)
            return Reply.json(201, message)
        self.record("outbox.jsonl", {
            "sid": message["sid"],
            "to": message["to"],
            "messaging_service_sid": message["messaging_service_sid"],
            "body": message["body"],
            "risk_check": form.get("RiskCheck", [None])[0],
            "time": time.time(),
        })
        if self.echo:
            log(f"SMS to {message['to']}: {message['body']}")
        return Reply.json(201, message)

    def fetch_service(self, method, path, auth_ok, content_type):
        """Check a Messaging Service fetch as Twilio would; its 200 body or TwilioError."""
        sid = self.service_path.match(path)["sid"]
        if method != "GET":
            raise TwilioError(404, 20404, f"The requested resource {path} was not found")
        if not auth_ok:
            raise TwilioError(401, 20003, "Authenticate")
        if content_type:
            raise TwilioError(400, PARAMETER_ERROR, "A fetch takes no request body")
        if self.api.service_sid_problem(sid) or sid not in self.services:
            raise TwilioError(404, 20404, f"The requested resource /Services/{sid} was not found")
        return self.api.service(self.base_url, self.account_sid, sid)

    def accept(self, method, path, content_type, auth_ok, form, form_error):
        """Check a request as Twilio would; return the account sid or raise TwilioError."""
        match = self.path.match(path)
        if method != "POST" or not match:
            raise TwilioError(404, 20404, f"The requested resource {path} was not found")
        if not auth_ok:
            raise TwilioError(401, 20003, "Authenticate")
        sid = match["sid"]
        if self.api.account_sid_problem(sid):
            raise TwilioError(404, 20404, f"The requested resource {path} was not found")
        if sid != self.account_sid:
            raise TwilioError(401, 20003, "Authenticate")
        if content_type not in self.api.content_types:
            raise TwilioError(400, PARAMETER_ERROR,
                              f"Unsupported Content-Type {content_type or '(none)'}; "
                              f"expected {FORM_CONTENT_TYPE}")
        if form_error:
            raise TwilioError(400, PARAMETER_ERROR, form_error)
        self.api.validate(form)
        return sid


def tls_context(cert, key):
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(cert, key)
    context.set_alpn_protocols(["http/1.1"])
    return context


def tls11_context(cert, key):
    """A server that speaks TLS 1.1 and nothing newer. OpenSSL 3 refuses TLS 1.0/1.1
    signature algorithms below security level 0, hence the cipher string."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.set_ciphers("DEFAULT:@SECLEVEL=0")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        context.minimum_version = ssl.TLSVersion.TLSv1_1
        context.maximum_version = ssl.TLSVersion.TLSv1_1
    context.load_cert_chain(cert, key)
    context.set_alpn_protocols(["http/1.1"])
    return context


class Handler(http.server.BaseHTTPRequestHandler):
    """One TLS connection; answers one request, then closes (Connection: close)."""

    protocol_version = "HTTP/1.1"
    server_version = "twilio-sandbox"
    sys_version = ""
    timeout = IO_TIMEOUT

    def __init__(self, request, client_address, server, scenario):
        self.scenario = scenario
        self.sandbox = server.sandbox
        super().__init__(request, client_address, server)

    def dispatch(self):
        self.close_connection = True
        scenario = self.scenario
        method, path = self.command, urllib.parse.urlsplit(self.path).path
        content_type = (self.headers.get("Content-Type") or "").split(";")[0].strip().lower()
        auth_ok = self.sandbox.auth_ok(self.headers.get("Authorization"))
        try:
            raw = self.read_body()
        except TwilioError as err:
            self.reply(Reply.error(err), method, path, content_type, auth_ok, {})
            return
        form, form_error = {}, None
        if content_type == FORM_CONTENT_TYPE:
            form, form_error = parse_form(raw)

        delay = slow_delay(scenario)
        if delay is not None:
            self.sandbox.stopping.wait(delay)
            scenario = "ok"
        reply = self.sandbox.answer(scenario, method, path, content_type, auth_ok, form,
                                    form_error)
        self.reply(reply, method, path, content_type, auth_ok, form)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = dispatch

    def read_body(self):
        if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
            raise TwilioError(411, PARAMETER_ERROR, "Chunked request bodies are not supported")
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            raise TwilioError(400, PARAMETER_ERROR, "Invalid Content-Length") from None
        if length < 0 or length > MAX_REQUEST_BYTES:
            raise TwilioError(413, PARAMETER_ERROR, "Request body too large")
        return self.rfile.read(length)

    def reply(self, reply, method, path, content_type, auth_ok, form):
        self.sandbox.record("requests.jsonl", {
            "time": time.time(),
            "method": method,
            "path": path,
            "content_type": content_type,
            "auth_ok": auth_ok,
            "auth_user": self.auth_user(),
            "host_header": self.headers.get("Host"),
            "form": form,
            "status": reply.status,
            "scenario": self.scenario,
        })
        if reply.action == "drop":
            self.log_message('"%s" dropped', self.requestline)
            return
        if reply.action == "hang":
            self.log_message('"%s" hanging', self.requestline)
            self.wait_for_client_to_leave()
            return
        self.send_response(reply.status)
        for name, value in reply.headers:
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(reply.body)))
        self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(reply.body)

    def auth_user(self):
        """The user name of the request's HTTP Basic header (never its password), or None."""
        header = self.headers.get("Authorization") or ""
        if not header.startswith("Basic "):
            return None
        try:
            return base64.b64decode(header[len("Basic "):].strip(), validate=True) \
                .decode(errors="replace").split(":", 1)[0]
        except binascii.Error:
            return None

    def wait_for_client_to_leave(self):
        self.connection.settimeout(0.5)
        while not self.sandbox.stopping.is_set():
            try:
                if not self.connection.recv(4096):
                    return
            except TimeoutError:
                continue
            except OSError:
                return

    def send_error(self, code, message=None, explain=None):
        # Malformed requests the base class rejects get a Twilio-shaped body too.
        self.close_connection = True
        reply = Reply.error(TwilioError(code, PARAMETER_ERROR, message or explain or "Bad request"))
        self.send_response(code, message)
        for name, value in reply.headers:
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(reply.body)))
        self.send_header("Connection", "close")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(reply.body)

    def log_message(self, format, *args):
        log(f"{self.client_address[0]} [{self.scenario}] {format % args}")


def slow_delay(scenario):
    """Seconds to wait for "slow:SECONDS", or None for any other scenario."""
    if not scenario.startswith("slow:"):
        return None
    try:
        delay = float(scenario.removeprefix("slow:"))
    except ValueError:
        return None
    return delay if math.isfinite(delay) and delay >= 0 else None


def parse_form(raw):
    """Decode an x-www-form-urlencoded body into {name: [values]}; return (form, problem)."""
    try:
        pairs = urllib.parse.parse_qsl(raw.decode("ascii"), keep_blank_values=True,
                                       encoding="utf-8", errors="strict",
                                       max_num_fields=MAX_FORM_FIELDS)
    except (UnicodeDecodeError, ValueError) as err:
        return {}, f"Malformed form body: {err}"
    form = {}
    for name, value in pairs:
        form.setdefault(name, []).append(value)
    return form, None


class LoopbackServer(http.server.ThreadingHTTPServer):
    """A threading HTTP server on a loopback address (IPv4 or IPv6) for a sandbox, whose
    finish_request does the TLS handshake: this one's Server and duo_sandbox.py's."""

    daemon_threads = True
    block_on_close = False

    def __init__(self, sandbox, host, port, handler):
        self.sandbox = sandbox
        if ipaddress.ip_address(host).version == 6:
            self.address_family = socket.AF_INET6
        super().__init__((host, port), handler)

    def server_bind(self):
        # HTTPServer.server_bind would do a reverse DNS lookup of the address.
        socketserver.TCPServer.server_bind(self)
        self.server_name, self.server_port = self.server_address[:2]


class Server(LoopbackServer):
    def __init__(self, sandbox, host, port):
        super().__init__(sandbox, host, port, Handler)

    def finish_request(self, request, client_address):
        # Runs in the connection's own thread, so a client that never completes the
        # handshake holds up only itself. curl sends no SNI for IP literals, hence the
        # certificate is chosen by the scenario at accept time.
        scenario = self.sandbox.next_scenario()
        if scenario == "refuse":
            log(f"{client_address[0]} [{scenario}] connection closed before TLS")
            return  # the server closes the socket
        context = self.sandbox.contexts[TLS_SCENARIOS.get(scenario, "server")]
        request.settimeout(HANDSHAKE_TIMEOUT)
        try:
            conn = context.wrap_socket(request, server_side=True)
        except OSError as err:
            log(f"{client_address[0]} [{scenario}] TLS handshake failed: {err}")
            return
        try:
            self.RequestHandlerClass(conn, client_address, self, scenario)
        except OSError as err:
            log(f"{client_address[0]} [{scenario}] connection error: {err}")
        finally:
            conn.close()


def find_spec():
    if BUNDLED_SPEC.is_file():
        return BUNDLED_SPEC
    here = Path(__file__).resolve().parent
    for ancestor in (here, *here.parents):
        candidate = ancestor / SPEC_UNDER_ANCESTOR
        if candidate.is_file():
            return candidate
    return None


OPENSSL_CONFIG = """\
[req]
distinguished_name = dn
prompt = no
[dn]
CN = unused
[ca]
basicConstraints = critical, CA:TRUE
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
[server]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature, keyEncipherment
extendedKeyUsage = serverAuth
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
subjectAltName = DNS:localhost, IP:127.0.0.1, IP:::1
[wronghost]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature, keyEncipherment
extendedKeyUsage = serverAuth
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
subjectAltName = DNS:wrong.invalid
[selfsigned]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature, keyEncipherment
extendedKeyUsage = serverAuth
subjectKeyIdentifier = hash
subjectAltName = DNS:localhost, IP:127.0.0.1, IP:::1
"""
# `openssl ca` (for explicit validity dates; `openssl x509` of OpenSSL 3.0 has none), kept
# apart from OPENSSL_CONFIG whose [ca] section is the CA's extensions.
OPENSSL_CA_CONFIG = """\
[ca]
default_ca = sandbox_ca
[sandbox_ca]
database = {work}/index.txt
new_certs_dir = {work}
rand_serial = yes
default_md = sha256
policy = policy_any
unique_subject = no
[policy_any]
commonName = supplied
[req]
distinguished_name = dn
prompt = no
[dn]
CN = unused
[expired]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature, keyEncipherment
extendedKeyUsage = serverAuth
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
subjectAltName = DNS:localhost, IP:127.0.0.1, IP:::1
"""
NEW_KEY = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]


def make_certificates(directory, server_names=()):
    """Create a fresh CA, the server, wrong-host and expired certificates it signs, and a
    self-signed certificate for the right host; server_names are added to server.pem.
    Also the certificates of duo_sandbox.py and of the tests' slapd."""
    config = directory / "openssl.cnf"
    extra = "".join(f", DNS:{name}" for name in server_names)
    server_san = "subjectAltName = DNS:localhost, IP:127.0.0.1, IP:::1"
    head, _, tail = OPENSSL_CONFIG.partition("[server]\n")
    section, sep, rest = tail.partition("\n[")
    config.write_text(head + "[server]\n" + section.replace(server_san, server_san + extra, 1)
                      + sep + rest)

    def openssl(*args):
        done = subprocess.run(["openssl", *args], cwd=directory, capture_output=True, text=True)
        if done.returncode != 0:
            raise RuntimeError(f"openssl {args[0]} failed: {done.stderr.strip()}")

    try:
        openssl("req", "-x509", "-config", config, "-extensions", "ca", *NEW_KEY,
                "-subj", "/CN=pam_twilio_sms sandbox CA", "-days", "30",
                "-keyout", "ca.key", "-out", "ca.pem")
        for name, cn in (("server", "localhost"), ("wronghost", "wrong.invalid")):
            openssl("req", "-new", "-config", config, *NEW_KEY, "-subj", f"/CN={cn}",
                    "-keyout", f"{name}.key", "-out", f"{name}.csr")
            openssl("x509", "-req", "-in", f"{name}.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
                    "-set_serial", "0x" + secrets.token_hex(16), "-days", "30",
                    "-extfile", config, "-extensions", name, "-out", f"{name}.pem")
            (directory / f"{name}.csr").unlink()
        openssl("req", "-x509", "-config", config, "-extensions", "selfsigned", *NEW_KEY,
                "-subj", "/CN=localhost", "-days", "30",
                "-keyout", "selfsigned.key", "-out", "selfsigned.pem")
        make_expired_certificate(directory, openssl)
    finally:
        config.unlink()
    for key in ("ca.key", "server.key", "wronghost.key", "selfsigned.key", "expired.key"):
        (directory / key).chmod(0o600)


def make_expired_certificate(directory, openssl):
    """expired.pem: signed by the CA for the right host, valid from two days ago to yesterday."""
    work = directory / "expired-ca.tmp"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir()
    try:
        (work / "ca.cnf").write_text(OPENSSL_CA_CONFIG.format(work=work.name))  # relative to DIR
        (work / "index.txt").write_text("")
        now = time.time()
        start, end = (time.strftime("%Y%m%d%H%M%SZ", time.gmtime(now - days * 86400))
                      for days in (2, 1))
        openssl("req", "-new", "-config", work / "ca.cnf", *NEW_KEY, "-subj", "/CN=localhost",
                "-keyout", "expired.key", "-out", work / "expired.csr")
        openssl("ca", "-config", work / "ca.cnf", "-batch", "-notext", "-cert", "ca.pem",
                "-keyfile", "ca.key", "-in", work / "expired.csr", "-out", "expired.pem",
                "-startdate", start, "-enddate", end,
                "-extfile", work / "ca.cnf", "-extensions", "expired")
    finally:
        shutil.rmtree(work, ignore_errors=True)


def write_atomically(path, text):
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text)
    tmp.replace(path)


def parse_args(argv):
    p = argparse.ArgumentParser(description="Twilio-compatible HTTPS sandbox for tests.")
    p.add_argument("--dir", required=True, help="working directory (certs, port, records)")
    p.add_argument("--host", default="127.0.0.1", help="loopback address to listen on")
    p.add_argument("--port", type=int, default=0, help="port (0: any free port)")
    p.add_argument("--account-sid", default=DEFAULT_ACCOUNT_SID)
    p.add_argument("--auth-token", default=DEFAULT_AUTH_TOKEN)
    p.add_argument("--api-key", action="append", default=[], metavar="SID:SECRET",
                   help="also accept this API key (SK...) and its secret; repeatable")
    p.add_argument("--service", action="append", default=[], metavar="MG_SID",
                   help="a Messaging Service of the account (GET /v1/Services/MG_SID answers "
                   "200); repeatable; default: " + ", ".join(DEFAULT_SERVICE_SIDS))
    p.add_argument("--server-name", action="append", default=[], metavar="DNS_NAME",
                   help="also name this host in server.pem; repeatable")
    p.add_argument("--echo", action="store_true", help="print each accepted SMS to stderr")
    p.add_argument("--spec", help="Twilio's OpenAPI description (default: the bundled excerpt of "
                   "twilio_api_v2010.json)")
    args = p.parse_args(argv)
    for key in args.api_key:
        if not re.fullmatch(r"SK[0-9a-fA-F]{32}:.+", key):
            p.error(f"--api-key wants SK + 32 hex digits, ':' and the secret, not {key!r}")
    for sid in args.service:
        if not re.fullmatch(r"MG[0-9a-fA-F]{32}", sid):
            p.error(f"--service wants MG + 32 hex digits, not {sid!r}")
    for name in args.server_name:
        if not re.fullmatch(r"[A-Za-z0-9.-]{1,253}", name):
            p.error(f"--server-name {name!r} is not a DNS name")
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

    spec_path = Path(args.spec) if args.spec else find_spec()
    if spec_path is None or not spec_path.is_file():
        log(f"Twilio's OpenAPI description not found ({spec_path or SPEC_UNDER_ANCESTOR} "
            "above this script); pass --spec PATH")
        return 2
    try:
        api = MessagesApi(json.loads(spec_path.read_text()))
    except (OSError, ValueError, KeyError, StopIteration) as err:
        log(f"{spec_path}: not a usable Twilio API description: {err!r}")
        return 2
    problem = api.account_sid_problem(args.account_sid)
    if problem:
        log(f"--account-sid {args.account_sid}: {problem}")
        return 2

    directory = Path(args.dir).resolve()
    directory.mkdir(parents=True, exist_ok=True)
    for stale in ("port", "pid"):
        (directory / stale).unlink(missing_ok=True)
    try:
        make_certificates(directory, args.server_name)
    except (OSError, RuntimeError) as err:
        log(f"cannot create certificates: {err}")
        return 2

    sandbox = Sandbox(args, api, directory)
    server = Server(sandbox, args.host, args.port)
    port = server.server_address[1]
    host = f"[{args.host}]" if ":" in args.host else args.host
    sandbox.base_url = f"https://{host}:{port}"
    write_atomically(directory / "pid", f"{os.getpid()}\n")
    write_atomically(directory / "port", f"{port}\n")
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.2},
                     daemon=True).start()
    log(f"listening on {sandbox.base_url} (spec {spec_path}, dir {directory})")

    while not stop.wait(1):
        pass
    sandbox.stopping.set()
    server.shutdown()
    server.server_close()
    for name in ("port", "pid"):
        (directory / name).unlink(missing_ok=True)
    log("stopped")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
