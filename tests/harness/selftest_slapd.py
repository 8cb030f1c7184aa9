#!/usr/bin/env python3
"""Self-test of the OpenLDAP harness (tests/harness/slapd.py) with Debian's ldap-utils.

A real slapd of the harness's own: ldaps:// and StartTLS searches that trust the test CA,
plain ldap:// (the server allows it, so that end-to-end cases can show the module refuses),
the service account's bind, the server's view of each search and bind since a mark, the
access rules (a person cannot write its own mobile, anonymous read can be switched off),
certificates that must fail verification, the black hole, and a stop() that leaves nothing.

Run as root:  python3 tests/harness/selftest_slapd.py [-k PATTERN] [-v]
Installs slapd and ldap-utils when missing (no system slapd is started).
Prints `PASS: name` or `FAIL: name: why` per case, then `slapd harness: N passed, N failed`.
"""

import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.dont_write_bytecode = True  # leave no __pycache__ in the tree
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from harness.core import CaseFailure, case, check, main  # noqa: E402
from harness.slapd import BlackHole, Slapd, install_problem, start_in  # noqa: E402
from harness.system import running  # noqa: E402

MOBILE = "+15551230001"
SERVICE_PASSWORD = "service-password-0123"
PERSON_PASSWORD = "person-password-4567"


class Selftest:
    def __init__(self, workdir, verbose, server):
        self.workdir = Path(workdir)
        self.verbose = verbose
        self.server = server
        self.person = server.add_person("alice", MOBILE, password=PERSON_PASSWORD)
        self.service = server.add_service_account("pam", SERVICE_PASSWORD)

    def search(self, url, filt="(uid=alice)", *, ok=(0,), **kwargs):
        """ldapsearch of people for filt's mobile; returns the CompletedProcess."""
        p = self.server.client("ldapsearch", "-LLL", "-b", self.server.people_dn, filt, "mobile",
                               url=url, ok=ok, **kwargs)
        if self.verbose:
            print(f"ldapsearch {url} {filt}: exit {p.returncode}\n{p.stdout}{p.stderr}")
        return p

    def only_search(self, mark):
        found = self.server.searches(mark)
        if self.verbose:
            print(f"searches: {found!r}")
        check(len(found) == 1, f"the server saw {len(found)} searches: {found!r}")
        return found[0]


@case
def ldaps_search_finds_the_person(h):
    """ldaps:// with the test CA: the entry's mobile, and the server saw the search over TLS."""
    mark = h.server.mark()
    p = h.search(h.server.ldaps_url)
    check(f"mobile: {MOBILE}" in p.stdout, f"no mobile in {p.stdout!r}")
    s = h.only_search(mark)
    check((s.base, s.scope, s.filter, s.attrs) ==
          (h.server.people_dn, "sub", "(uid=alice)", ("mobile",)), f"search seen as {s!r}")
    check((s.err, s.entries, s.listener) == (0, 1, "ldaps") and s.tls, f"search seen as {s!r}")


@case
def starttls_search_is_encrypted(h):
    """ldap:// with -ZZ: the search came on the ldap:// listener after TLS was established."""
    mark = h.server.mark()
    p = h.search(h.server.ldap_url, starttls=True)
    check(f"mobile: {MOBILE}" in p.stdout, f"no mobile in {p.stdout!r}")
    s = h.only_search(mark)
    check(s.listener == "ldap" and s.tls and s.entries == 1, f"search seen as {s!r}")


@case
def plain_ldap_is_allowed_and_seen_as_such(h):
    """The server answers plain ldap:// (refusing it is the module's side) and the record
    says the search was not encrypted."""
    mark = h.server.mark()
    p = h.search(h.server.ldap_url)
    check(f"mobile: {MOBILE}" in p.stdout, f"no mobile in {p.stdout!r}")
    s = h.only_search(mark)
    check(s.listener == "ldap" and s.tls is None, f"search seen as {s!r}")


@case
def service_account_binds_and_wrong_password_fails(h):
    mark = h.server.mark()
    p = h.search(h.server.ldaps_url, bind=(h.service, SERVICE_PASSWORD))
    check(f"mobile: {MOBILE}" in p.stdout, f"the service account read no mobile: {p.stdout!r}")
    h.search(h.server.ldaps_url, bind=(h.service, "wrong-password"), ok=(49,))
    binds = h.server.binds(mark)
    seen = [(b.dn, b.method, b.err) for b in binds]
    check(seen == [(h.service, "simple", 0), (h.service, "simple", 49)], f"binds seen: {binds!r}")
    check(len(h.server.searches(mark)) == 1, "a search after the failed bind")


@case
def searches_show_the_filter_as_sent_since_the_mark(h):
    """An escaped filter as slapd prints it (hex escapes in upper case); nothing before the
    mark; no match is err 0 with 0 entries."""
    h.search(h.server.ldaps_url, "(uid=before-the-mark)")
    mark = h.server.mark()
    h.search(h.server.ldaps_url, r"(&(uid=al\2aice)(mobile=*))")
    s = h.only_search(mark)
    check(s.filter == r"(&(uid=al\2Aice)(mobile=*))", f"filter seen as {s.filter!r}")
    check((s.err, s.entries) == (0, 0), f"search seen as {s!r}")


@case
def person_cannot_write_its_own_mobile(h):
    change = f"dn: {h.person}\nchangetype: modify\nreplace: mobile\nmobile: +15559990000\n"
    h.server.client("ldapmodify", url=h.server.ldaps_url, bind=(h.person, PERSON_PASSWORD),
                    input_text=change, ok=(50,))  # insufficientAccessRights
    p = h.search(h.server.ldaps_url)
    check(f"mobile: {MOBILE}" in p.stdout, f"mobile changed: {p.stdout!r}")


@case
def anonymous_read_can_be_switched_off(h):
    """anonymous_read=False: an anonymous search finds nothing, the service account finds
    the person (a second server beside the first)."""
    server = Slapd(h.workdir, anonymous_read=False)
    try:
        server.start()
        server.add_person("bob", "+15551230002")
        service = server.add_service_account("pam", SERVICE_PASSWORD)
        search = ["ldapsearch", "-LLL", "-b", server.people_dn, "(uid=bob)", "mobile"]
        p = server.client(*search, url=server.ldaps_url, ok=(0, 32))  # 32: noSuchObject
        check("mobile:" not in p.stdout, f"anonymous read the mobile: {p.stdout!r}")
        p = server.client(*search, url=server.ldaps_url, bind=(service, SERVICE_PASSWORD))
        check("mobile: +15551230002" in p.stdout, f"the service account read none: {p.stdout!r}")
    finally:
        server.stop()


@case
def bad_certificates_fail_verification(h):
    """wronghost (the name), selfsigned (no known issuer) and expired fail libldap's
    verification; after going back to the server certificate the same URL works again with
    the same data. GnuTLS's status bits: 0x40 signer not found, 0x400 expired."""
    url = h.server.ldaps_url
    try:
        for name, why in (("wronghost", r"TLS: hostname \(127\.0\.0\.1\) does not match"),
                          ("selfsigned", r"TLS: peer cert untrusted or revoked \(0x4.\)"),
                          ("expired", r"TLS: peer cert untrusted or revoked \(0x4..\)")):
            h.server.use_certificate(name)
            p = h.server.client("ldapsearch", "-d", "1", "-b", h.server.base_dn, "-s", "base",
                                url=url, ok=(255,))  # LDAP_SERVER_DOWN: TLS failed
            check(re.search(why, p.stderr),
                  f"{name}: not that TLS verification failure: {p.stderr[-300:]!r}")
    finally:
        h.server.use_certificate("server")
    p = h.search(url)
    check(f"mobile: {MOBILE}" in p.stdout, f"after the restart: {p.stdout!r}")


@case
def black_hole_accepts_and_never_answers(h):
    hole = BlackHole().start()
    port = hole.port
    try:
        start = time.monotonic()
        env = dict(os.environ, LDAPTIMEOUT="1", LDAPNETWORK_TIMEOUT="1", LDAPCONF="/dev/null")
        p = subprocess.run(["ldapsearch", "-x", "-H", hole.url, "-b", "dc=example,dc=com"],
                           env=env, capture_output=True, text=True, timeout=20)
        took = time.monotonic() - start
        check(p.returncode != 0, f"ldapsearch against the black hole exited 0: {p.stdout!r}")
        check(hole.accepted == 1, f"{hole.accepted} connections accepted")
        check(0.8 < took < 10, f"ldapsearch gave up after {took:.1f}s, not ~1s")
    finally:
        hole.stop()
    with socket.socket() as s:
        check(s.connect_ex(("127.0.0.1", port)) != 0, "the black hole still listens")


@case
def stop_leaves_no_process_and_no_directory(h):
    server = Slapd(h.workdir)
    try:
        server.start()
        pid, directory = server.proc.pid, server.dir
        check(Path(server.ca_file).stat().st_mode & 0o777 == 0o644, "ca_file is not 0644")
        check(os.stat(server.ca_file).st_uid == 0, "ca_file is not root's")
    finally:
        server.stop()
    check(not running(pid), f"slapd {pid} still running")
    check(not directory.exists(), f"{directory} left behind")
    server.stop()  # a second stop is harmless
    with socket.socket() as s:
        check(s.connect_ex(("127.0.0.1", server.port)) != 0, "its port still listens")


def prerequisite_problem():
    if os.geteuid() != 0:
        return "not root (slapd, /usr/sbin/policy-rc.d while installing)"
    try:
        return install_problem()
    except CaseFailure as e:
        return str(e)


def setup(cleanups, verbose):
    workdir = tempfile.mkdtemp(prefix="tsms-slapd-")
    cleanups.add(shutil.rmtree, workdir, True)
    started = time.monotonic()
    server = start_in(cleanups, workdir)
    if verbose:
        print(f"slapd started in {time.monotonic() - started:.2f}s: {server.ldap_url} "
              f"{server.ldaps_url} {server.ldapi_url}")
    return Selftest(workdir, verbose, server)


if __name__ == "__main__":
    sys.exit(main("slapd harness", __doc__.splitlines()[0], setup=setup,
                  prepare=prerequisite_problem, time_limit=120, timed=True,
                  verbose_help="print each ldapsearch and what the server saw"))
