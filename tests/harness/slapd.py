"""A real OpenLDAP server (Debian's slapd) for the directory cases, and a black hole.

Slapd runs its own slapd process as root from a throw-away directory under the caller's
workdir: its own slapd.conf (back-mdb, suffix BASE_DN, rootdn ADMIN_DN, the core, cosine,
inetorgperson and nis schemas), the Twilio sandbox's test CA and certificates
(tests/sandbox/twilio_sandbox.py make_certificates: server, wronghost, selfsigned, expired),
and three listeners: ldap://127.0.0.1:PORT (StartTLS offered, plain text allowed: refusing
it is the module's job), ldaps://127.0.0.1:PORT2 and ldapi:// on a socket in its directory
(what the harness itself uses to add entries). The system slapd that the package installs
is never used or touched.

What the server saw comes from its stats log (`-d 256` on stderr, into slapd.log):
searches() and binds() since a mark(). slapd logs nothing to syslog (`-s 0`, loglevel 0), so
the suites' SyslogCapture, which may own /dev/log, receives the module's lines only.

Access: the service accounts (entries under ou=services) read everything but passwords;
anonymous reads the same when anonymous_read, else nothing; a person reads its own entry and
cannot write it (not even its mobile); passwords are only ever used to bind.
"""

import base64
import contextlib
import dataclasses
import importlib.util
import os
import re
import shutil
import socket
import subprocess
import tempfile
import threading
import time
import urllib.parse
from pathlib import Path

from harness.core import REPO, CaseFailure
from harness.system import (free_port, install_quietly, installed, sh, stop_process,
                            write_file)

DEBS = ("slapd", "ldap-utils")
SLAPD = "/usr/sbin/slapd"
SCHEMAS = ("core", "cosine", "inetorgperson", "nis")
BASE_DN = "dc=example,dc=com"
ADMIN_DN = f"cn=admin,{BASE_DN}"
ADMIN_PASSWORD = "slapd-admin-secret-0123456789"
PEOPLE_DN = f"ou=people,{BASE_DN}"
SERVICES_DN = f"ou=services,{BASE_DN}"
CERTIFICATES = ("server", "wronghost", "selfsigned", "expired")
SCOPES = {"0": "base", "1": "one", "2": "sub", "3": "children"}

# slapd's stats lines: "<sec hex>.<nsec hex> <thread> <message>"
LINE_RE = re.compile(r"^([0-9a-f]{8})\.([0-9a-f]{8}) \S+ (.*)$")
ACCEPT_RE = re.compile(r"^conn=(\d+) fd=\d+ ACCEPT from (\S+) \((\S+)\)")
TLS_RE = re.compile(r"^conn=(\d+) fd=\d+ TLS established .*tls_proto=(\S+)")
OP_RE = re.compile(r"^conn=(\d+) op=(\d+) (.*)$")
BIND_RE = re.compile(r'^BIND dn="(.*)" method=(\d+)$')
BOUND_RE = re.compile(r'^BIND dn="(.*)" mech=(\S+)')
SRCH_RE = re.compile(r'^SRCH base="(.*)" scope=(\d) deref=\d+ filter="(.*)"$')
ATTR_RE = re.compile(r"^SRCH attr=(.*)$")
RESULT_RE = re.compile(r"^(SEARCH )?RESULT tag=(\d+) err=(\d+)(?:.* nentries=(\d+))?")


@dataclasses.dataclass
class Search:
    """One search request as the server logged it; err and entries are None until its result
    line is in the log. listener: ldap, ldaps or ldapi; tls: the protocol ("TLS1.3") when the
    connection was encrypted by the time of the request, else None."""
    conn: int
    op: int
    base: str
    scope: str  # base, one, sub, children
    filter: str  # as slapd prints it: escapes in upper case, (uid=a\2Ab)
    attrs: tuple = ()
    err: int = None
    entries: int = None
    listener: str = None
    tls: str = None
    at: int = 0  # ns since the epoch (the server's clock)


@dataclasses.dataclass
class Bind:
    """One bind request; method simple or sasl, dn "" for anonymous; err as for Search."""
    conn: int
    op: int
    dn: str
    method: str
    err: int = None
    listener: str = None
    tls: str = None
    at: int = 0


# --------------------------------------------------------------------------- install

def system_slapds():
    """The pids of slapd processes that are not a harness's (no -f slapd.conf of ours)."""
    found = set()
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if argv and argv[0].endswith(b"slapd") and b"-f" not in argv:
            found.add(int(pid))
    return found


def install_problem(timeout=600):
    """Installs DEBS when missing, with no system slapd left running
    (harness.system.install_quietly). Returns what is missing, or None."""
    if all(installed(pkg) for pkg in DEBS) and shutil.which("ldapsearch"):
        return None
    problem = install_quietly(DEBS, "slapd", system_slapds, timeout)
    if problem:
        return problem
    for tool in (SLAPD, "slapadd", "ldapsearch", "ldapadd", "ldapmodify"):
        if shutil.which(tool) is None:
            return f"{tool} not found after installing {' '.join(DEBS)}"
    return None


# --------------------------------------------------------------------------- the server

def make_certificates(directory):
    """The sandbox's CA and certificates in directory (one source of test certificates)."""
    path = REPO / "tests" / "sandbox" / "twilio_sandbox.py"
    spec = importlib.util.spec_from_file_location("tsms_twilio_sandbox", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    module.make_certificates(Path(directory))


def ldif_value(attr, value):
    """One LDIF line; values that LDIF cannot carry as they are go base64."""
    value = str(value)
    if value and value.isascii() and value.isprintable() and value[0] not in " :<" \
            and value[-1] != " ":
        return f"{attr}: {value}\n"
    return f"{attr}:: {base64.b64encode(value.encode()).decode()}\n"


def ldif_entry(dn, attrs):
    """An LDIF record: attrs maps a name to a value or a list of values (None: left out)."""
    text = ldif_value("dn", dn)
    for attr, values in attrs.items():
        if values is None:
            continue
        for value in values if isinstance(values, (list, tuple)) else [values]:
            text += ldif_value(attr, value)
    return text + "\n"


class Slapd:
    """One slapd process, its directory, data and log. start() before anything else;
    stop() (register it with the cleanups first) ends it and removes its directory."""

    def __init__(self, workdir, *, anonymous_read=True, certificate="server"):
        self.workdir = Path(workdir)
        self.anonymous_read = anonymous_read
        self.certificate = certificate
        self.dir = None
        self.proc = None
        self.port = None
        self.ldaps_port = None
        self.base_dn, self.admin_dn, self.admin_password = BASE_DN, ADMIN_DN, ADMIN_PASSWORD
        self.people_dn, self.services_dn = PEOPLE_DN, SERVICES_DN

    # ------------------------------------------------------------------ addresses

    @property
    def ldap_url(self):
        return f"ldap://127.0.0.1:{self.port}"

    @property
    def ldaps_url(self):
        return f"ldaps://127.0.0.1:{self.ldaps_port}"

    @property
    def ldapi_path(self):
        return str(self.dir / "ldapi")

    @property
    def ldapi_url(self):
        return "ldapi://" + urllib.parse.quote(self.ldapi_path, safe="")

    @property
    def ca_file(self):
        """The test CA (PEM, root's, 0644) that signed every certificate but selfsigned."""
        return str(self.dir / "tls" / "ca.pem")

    @property
    def log_path(self):
        return self.dir / "slapd.log"

    # ------------------------------------------------------------------ life cycle

    def start(self, timeout=15.0):
        """Makes the directory, certificates, config and base entries (BASE_DN, ou=people,
        ou=services) and starts slapd on free loopback ports; returns self."""
        if self.certificate not in CERTIFICATES:
            raise ValueError(f"certificate {self.certificate!r} is not one of {CERTIFICATES}")
        self.dir = Path(tempfile.mkdtemp(prefix="slapd-", dir=self.workdir))  # 0700
        if len(self.ldapi_path) > 100:
            raise CaseFailure(f"{self.ldapi_path}: too long for a Unix socket")
        (self.dir / "tls").mkdir()
        (self.dir / "db").mkdir(mode=0o700)
        make_certificates(self.dir / "tls")
        self.write_config()
        base = ldif_entry(BASE_DN, {"objectClass": ["dcObject", "organization"],
                                    "dc": "example", "o": "Example"})
        for dn, ou in ((PEOPLE_DN, "people"), (SERVICES_DN, "services")):
            base += ldif_entry(dn, {"objectClass": "organizationalUnit", "ou": ou})
        sh(["slapadd", "-q", "-f", str(self.dir / "slapd.conf")], input_text=base)
        launches = 0
        while True:  # a free port can be taken before slapd binds it: 3 tries
            self.port, self.ldaps_port = free_port(), free_port()
            if self.port == self.ldaps_port:
                continue
            launches += 1
            if self.launch(timeout, may_retry=launches < 3):
                return self

    def stop(self):
        """Ends slapd (SIGTERM, then SIGKILL), reaps it and removes its directory; safe to
        call again or before start()."""
        stop_process(self.proc)
        self.proc = None
        if self.dir is not None:
            shutil.rmtree(self.dir, ignore_errors=True)

    def use_certificate(self, name, timeout=15.0):
        """Restarts slapd with certificate name (server, wronghost: for wrong.invalid only,
        selfsigned: signed by no CA, expired) on the same ports, with the same data."""
        if name not in CERTIFICATES:
            raise ValueError(f"certificate {name!r} is not one of {CERTIFICATES}")
        stop_process(self.proc)
        self.certificate = name
        self.write_config()
        self.launch(timeout, may_retry=False)

    def launch(self, timeout, may_retry):
        """Starts slapd on self.port/self.ldaps_port and waits until it serves; returns
        False when the ports were taken and may_retry, else raises CaseFailure."""
        started = time.time_ns()
        urls = f"{self.ldap_url}/ {self.ldaps_url}/ {self.ldapi_url}"
        cmd = [SLAPD, "-h", urls, "-f", str(self.dir / "slapd.conf"), "-d", "256", "-s", "0"]
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                                         start_new_session=True, cwd=self.dir)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                tail = self.log_tail()
                if may_retry and "errno=98" in tail:  # EADDRINUSE
                    return False
                raise CaseFailure(f"slapd exited with {self.proc.returncode}: {tail}")
            if self.serving(started):
                return True
            time.sleep(0.02)
        stop_process(self.proc)
        raise CaseFailure(f"slapd not serving within {timeout:.0f}s: {self.log_tail()}")

    def serving(self, started):
        """Whether slapd logged its start after started (ns) and listens on all three
        addresses (seen in /proc/net, not by connecting: that would be in the log)."""
        if not any(t >= started and m == "slapd starting" for t, m in self.lines()):
            return False
        tcp = Path("/proc/net/tcp").read_text()
        for port in (self.port, self.ldaps_port):
            if not re.search(rf"^\s*\d+: 0100007F:{port:04X} 00000000:0000 0A ", tcp, re.M):
                return False
        # Flags 00010000: a listening socket
        return any(line.split()[3] == "00010000" and line.endswith(" " + self.ldapi_path)
                   for line in Path("/proc/net/unix").read_text().splitlines()[1:])

    def write_config(self):
        d = self.dir
        anonymous = "read" if self.anonymous_read else "none"
        readers = (f'\tby dn.children="{SERVICES_DN}" read\n\tby self read\n'
                   f"\tby anonymous {anonymous}\n\tby * none\n")
        conf = "".join(f"include /etc/ldap/schema/{s}.schema\n" for s in SCHEMAS)
        conf += f"""\
pidfile {d}/slapd.pid
argsfile {d}/slapd.args
modulepath /usr/lib/ldap
moduleload back_mdb
# nothing to syslog: a SyslogCapture of the suite may own /dev/log (stats go to stderr)
loglevel 0
TLSCACertificateFile {d}/tls/ca.pem
TLSCertificateFile {d}/tls/{self.certificate}.pem
TLSCertificateKeyFile {d}/tls/{self.certificate}.key

database mdb
suffix "{BASE_DN}"
rootdn "{ADMIN_DN}"
rootpw {ADMIN_PASSWORD}
directory {d}/db
index objectClass eq

access to attrs=userPassword
\tby anonymous auth
\tby * none
access to *
{readers}"""
        write_file(d / "slapd.conf", conf, mode=0o600)

    # ------------------------------------------------------------------ data

    def client(self, tool, *args, url=None, bind=None, starttls=False, input_text=None,
               ok=(0,)):
        """Runs an ldap-utils tool (ldapsearch, ldapadd, ldapmodify, ldapwhoami) with -x
        against url (ldapi_url when None), trusting ca_file; bind: (dn, password), else
        anonymous; starttls adds -ZZ. Returns the CompletedProcess (sh())."""
        cmd = ["env", f"LDAPTLS_CACERT={self.ca_file}", "LDAPTLS_REQCERT=demand",
               "LDAPCONF=/dev/null", tool, "-H", url or self.ldapi_url, "-x"]
        if bind:
            cmd += ["-D", bind[0], "-w", bind[1]]
        if starttls:
            cmd.append("-ZZ")
        return sh(cmd + list(args), input_text=input_text, ok=ok)

    def add_entries(self, ldif):
        """Adds the LDIF records as the admin over ldapi."""
        self.client("ldapadd", bind=(ADMIN_DN, ADMIN_PASSWORD), input_text=ldif)

    def modify(self, ldif):
        """Applies LDIF change records (changetype: modify, delete, ...) as the admin."""
        self.client("ldapmodify", bind=(ADMIN_DN, ADMIN_PASSWORD), input_text=ldif)

    def add_person(self, uid, mobile=None, *, password=None, attrs=None, parent=PEOPLE_DN):
        """Adds inetOrgPerson uid=UID under parent (ou=people) with mobile (a value, a list
        of values or None), userPassword when given and more attributes (a dict, values or
        lists; objectClass there adds classes); returns its DN."""
        dn = f"uid={uid},{parent}"
        entry = {"objectClass": ["inetOrgPerson"], "uid": uid, "cn": uid, "sn": uid,
                 "mobile": mobile, "userPassword": password}
        for attr, values in (attrs or {}).items():
            if attr == "objectClass":
                more = values if isinstance(values, (list, tuple)) else [values]
                entry["objectClass"] = entry["objectClass"] + list(more)
            else:
                entry[attr] = values
        self.add_entries(ldif_entry(dn, entry))
        return dn

    def add_ou(self, ou, parent=PEOPLE_DN):
        """Adds organizationalUnit ou=OU under parent (ou=people); returns its DN."""
        dn = f"ou={ou},{parent}"
        self.add_entries(ldif_entry(dn, {"objectClass": "organizationalUnit", "ou": ou}))
        return dn

    def add_service_account(self, cn, password):
        """Adds a simple-bind account cn=CN under ou=services (it reads everything but
        passwords); returns its DN."""
        dn = f"cn={cn},{SERVICES_DN}"
        self.add_entries(ldif_entry(dn, {"objectClass": ["applicationProcess",
                                                         "simpleSecurityObject"],
                                         "cn": cn, "userPassword": password}))
        return dn

    # ------------------------------------------------------------------ the log

    def mark(self):
        """A point in time: searches(mark) and binds(mark) return only what came after."""
        return time.time_ns()

    def lines(self):
        """(ns since the epoch, message) of every complete log line, in time order (the
        server's threads write them slightly out of order)."""
        if self.dir is None:
            return []
        try:
            text = self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return []
        found = []
        for line in text.splitlines(keepends=True):
            m = LINE_RE.match(line)
            if m and line.endswith("\n"):
                found.append((int(m.group(1), 16) * 10**9 + int(m.group(2), 16),
                              m.group(3).rstrip("\n")))
        return sorted(found, key=lambda x: x[0])

    def log_tail(self, n=600):
        try:
            return self.log_path.read_text(errors="replace")[-n:].strip() or "(empty log)"
        except OSError:
            return "(no log)"

    def operations(self):
        """Every Search and Bind the log shows, in time order."""
        listeners = {f"IP=127.0.0.1:{self.port}": "ldap",
                     f"IP=127.0.0.1:{self.ldaps_port}": "ldaps"}
        conns = {}  # conn -> [listener, tls protocol]; cleared when slapd (re)starts
        ops = {}  # (conn, op) -> Search or Bind, of this start
        found = []
        for at, msg in self.lines():
            if msg == "slapd starting":
                conns, ops = {}, {}
            if m := ACCEPT_RE.match(msg):
                via = "ldapi" if m.group(3).startswith("PATH=") else listeners.get(m.group(3))
                conns[m.group(1)] = [via, None]
            elif m := TLS_RE.match(msg):
                conns.setdefault(m.group(1), [None, None])[1] = m.group(2)
            elif m := OP_RE.match(msg):
                conn, op, rest = m.groups()
                via, tls = conns.get(conn, [None, None])
                key = (conn, op)
                if m := BIND_RE.match(rest):
                    method = {"128": "simple", "163": "sasl"}.get(m.group(2), m.group(2))
                    ops[key] = Bind(int(conn), int(op), m.group(1), method, listener=via,
                                    tls=tls, at=at)
                    found.append(ops[key])
                elif m := SRCH_RE.match(rest):
                    ops[key] = Search(int(conn), int(op), m.group(1), SCOPES[m.group(2)],
                                      m.group(3), listener=via, tls=tls, at=at)
                    found.append(ops[key])
                elif (m := ATTR_RE.match(rest)) and isinstance(ops.get(key), Search):
                    ops[key].attrs = tuple(m.group(1).split())
                elif (m := RESULT_RE.match(rest)) and key in ops:
                    ops[key].err = int(m.group(3))
                    if m.group(4) is not None:
                        ops[key].entries = int(m.group(4))
        return found

    def wait_operations(self, kind, since, wait):
        """The kind (Search or Bind) requests since the mark, waiting up to wait seconds for
        the result lines of those that have none yet (slapd logs a result after sending it)."""
        deadline = time.monotonic() + wait
        while True:
            found = [o for o in self.operations() if isinstance(o, kind) and o.at >= since]
            if all(o.err is not None for o in found) or time.monotonic() >= deadline:
                return found
            time.sleep(0.02)

    def searches(self, since=0, wait=1.0):
        """The Search requests the server received since the mark (default: all)."""
        return self.wait_operations(Search, since, wait)

    def binds(self, since=0, wait=1.0):
        """The Bind requests the server received since the mark (default: all)."""
        return self.wait_operations(Bind, since, wait)

    def connections(self, since=0):
        """How many connections the server accepted since the mark."""
        return sum(1 for at, msg in self.lines() if at >= since and ACCEPT_RE.match(msg))


def start_in(cleanups, workdir, **kwargs):
    """A started Slapd under workdir whose stop() cleanups runs at the end (registered
    before it starts, so that a failed start is cleaned up too)."""
    server = Slapd(workdir, **kwargs)
    cleanups.add(server.stop)
    return server.start()


# --------------------------------------------------------------------------- black hole

class BlackHole:
    """A loopback TCP listener that accepts connections and never sends a byte: the
    directory that accepts and never answers (a bind, a StartTLS, a TLS handshake all hang).
    start(), then url/ldaps_url; stop() closes everything. A subclass's handle(conn) may do
    more with each connection (harness.redis.Garbage answers on it)."""

    def __init__(self):
        self.sock = None
        self.conns = []
        self.accepted = 0
        self.stopping = threading.Event()
        self.thread = None

    @property
    def port(self):
        return self.sock.getsockname()[1]

    @property
    def url(self):
        return f"ldap://127.0.0.1:{self.port}"

    @property
    def ldaps_url(self):
        return f"ldaps://127.0.0.1:{self.port}"

    def start(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.sock.settimeout(0.1)
        self.thread = threading.Thread(target=self.serve, name="black-hole", daemon=True)
        self.thread.start()
        return self

    def serve(self):
        while not self.stopping.is_set():
            try:
                conn, _ = self.sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            self.conns.append(conn)
            self.accepted += 1
            self.handle(conn)

    def handle(self, conn):
        """What a connection gets here: nothing; it is held open, never read or answered."""

    def stop(self):
        self.stopping.set()
        if self.thread is not None:
            self.thread.join(timeout=5)
        for s in [*self.conns, self.sock]:
            if s is not None:
                with contextlib.suppress(OSError):
                    s.close()
        self.conns = []
