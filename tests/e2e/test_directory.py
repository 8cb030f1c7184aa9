"""End-to-end cases: phone numbers from a real OpenLDAP server (tests/harness/slapd.py),
started once for this family on loopback with a throw-away config, database and the test CA:
ldaps and StartTLS, numbers in the directory's formats, plain text refused, filter injection,
user names with a domain (SSSD's alice@corp.example.com, winbind's CORP\\alice) finding their
own domain's alice and never another's, several entries, no attribute, invalid values, a wrong
bind password, certificates that must fail (each named), a server that is down or never
answers, local entries winning, and failMode for directory outages. What the server received comes from its own log."""

import atexit
import contextlib
import os
import signal
import subprocess
import threading
import time

from harness.core import REPO, case, check
from harness.pam import TIME_SLACK, expect_config_error, right, simple_service, typed
from harness.slapd import BlackHole, Slapd, install_problem
from harness.system import cmdlines, descendants, free_port, write_file

TOOL = REPO / "twilio-sms-otp"
BIND_CN, BIND_PASSWORD = "pam-reader", "ldap-bind-Secret-4321"
PEOPLE = {  # uid -> the mobile as written in the directory, and the number texted
    "dave": ("+1 (555) 555-0170", "+15555550170"),
    "erin": ("+1.555.555.0171", "+15555550171"),
    "frank": ("+15555550172", "+15555550172"),
}
ALICES = {"corp.example.com": "+15555550180", "other.example.com": "+15555550181"}
NO_ALICE = {"local": "+15555550179"}  # the base config's users without its alice
_server = {}


def slapd(h):
    """The family's slapd, started at the first case and stopped when the run ends."""
    if "s" not in _server:
        problem = install_problem()
        check(problem is None, f"slapd: {problem}")
        s = Slapd(h.workdir)
        atexit.register(s.stop)
        s.start()
        s.bind_dn = s.add_service_account(BIND_CN, BIND_PASSWORD)
        for uid, (mobile, _) in PEOPLE.items():
            s.add_person(uid, mobile)
        s.add_person("nomobile")
        s.add_person("local", "+15555550179")   # also in the config's users: that one wins
        s.add_person("nocountry", "555-555-0173")
        s.add_person("zero", "+0 555 555 0174")
        s.add_person("letters", "+1 555 CALL NOW")
        s.add_person("twin", "+15555550175", attrs={"description": ["twin"]})
        s.add_person("twin2", "+15555550176", attrs={"description": ["twin"]})
        for domain, mobile in ALICES.items():  # one alice in each domain's OU
            s.add_person("alice", mobile, parent=s.add_ou(domain.split(".")[0]),
                         attrs={"objectClass": "domainRelatedObject",
                                "associatedDomain": domain})
        _server["s"] = s
    return _server["s"]


def directory(s, **over):
    """The config's ldap object for s (over: keys replaced; None removes one)."""
    cfg = {"uri": s.ldaps_url, "caFile": s.ca_file, "bindDN": s.bind_dn,
           "bindPassword": BIND_PASSWORD, "baseDN": s.people_dn, "filter": "(uid=%u)",
           "timeoutSeconds": 5}
    for key, value in over.items():
        if value is None:
            cfg.pop(key, None)
        else:
            cfg[key] = value
    return cfg


def no_secret(run):
    for line in run.raw_logs + [run.output]:
        check(BIND_PASSWORD not in line, f"the bind password reached a log line: {line!r}")


def expect_from_directory(h, run, number):
    h.expect(run, "PAM_SUCCESS", sms=1, prompts=1)
    check(run.outbox[0]["to"] == number, f"SMS to {run.outbox[0]['to']}, want {number}")
    check(" source=ldap " in run.outcomes[0], f"outcome {run.outcomes[0]!r}")
    no_secret(run)


@case
def directory_ldaps(h):
    s = slapd(h)
    svc = simple_service(h, ldap=directory(s))
    for uid, (_, number) in PEOPLE.items():
        mark = s.mark()
        run = h.authenticate(svc, uid, [right()])
        expect_from_directory(h, run, number)
        searches = s.searches(mark)
        check(len(searches) == 1 and searches[0].filter == f"(uid={uid})" and
              searches[0].listener == "ldaps" and searches[0].tls,
              f"the server saw {searches!r}")
        binds = s.binds(mark)
        check(binds and binds[0].dn == s.bind_dn, f"binds {binds!r}")


@case
def directory_starttls(h):
    s = slapd(h)
    mark = s.mark()
    run = h.authenticate(simple_service(h, ldap=directory(s, uri=s.ldap_url)), "dave", [right()])
    expect_from_directory(h, run, "+15555550170")
    binds = s.binds(mark)
    check(binds and all(b.tls for b in binds), f"a bind without TLS: {binds!r}")


@case
def directory_plain_ldap_refused(h):
    s = slapd(h)
    mark = s.mark()
    path = h.write_config(h.config(ldap=directory(s, uri=s.ldap_url, startTLS=False)))
    run = h.authenticate(h.service(path), "dave", [right()])
    expect_config_error(h, run, path, "plain text")
    check(s.connections(mark) == 0, "the module connected to the directory anyway")


@case
def directory_filter_injection(h):
    """User names that try to widen the search match nothing, and the server receives them
    escaped (RFC 4515): never a filter with a wildcard or an extra clause."""
    s = slapd(h)
    svc = simple_service(h, then_permit=False, ldap=directory(s))
    for user in ("*", "a)(uid=*", "\\", "(", "d*", "x" * 200 + "*"):
        mark = s.mark()
        run = h.authenticate(svc, user, [typed("000000")] * 3)
        if "\\" in user:  # a domain part that (uid=%u) takes whole, and no entry: denied
            h.expect(run, "PAM_AUTHINFO_UNAVAIL", sms=0, prompts=0)
        else:
            h.expect(run, "PAM_MAXTRIES", sms=0)  # the decoy of an unmapped user
        for search in s.searches(mark):
            check(search.filter.count("(") == 1 and "*" not in search.filter and
                  search.entries == 0, f"user {user!r}: the server searched {search!r}")


@case
def directory_domain_names(h):
    """Active Directory's shape: baseDN is one domain (ou=corp), the filter matches the short
    name (%s) and ldap.domains lists the domain's names. alice, alice@corp.example.com and
    CORP\\alice (any case) find corp's alice; other.example.com's alice is never found: a
    login of another domain, or a name with two separators or an empty part, is denied
    (nullok or not, whatever failMode says) without a search."""
    s = slapd(h)
    ldap = directory(s, baseDN=f"ou=corp,{s.people_dn}", filter="(&(objectClass=person)(uid=%s))",
                     domains=["CORP", "corp.example.com"])
    svc = simple_service(h, users=NO_ALICE, ldap=ldap)
    for user in ("alice", "alice@corp.example.com", "CORP\\alice", "corp\\alice",
                 "alice@Corp.Example.COM"):
        mark = s.mark()
        run = h.authenticate(svc, user, [right()])
        expect_from_directory(h, run, ALICES["corp.example.com"])
        searches = s.searches(mark)
        check(len(searches) == 1 and searches[0].filter == "(&(objectClass=person)(uid=alice))",
              f"user {user!r}: the server saw {searches!r}")
    svc = simple_service(h, args=("nullok", "debug"), then_permit=True, failMode="open",
                         users=NO_ALICE, ldap=ldap)
    for user, why in (("OTHER\\alice", 'domain "OTHER" is not in ldap.domains'),
                      ("alice@other.example.com", "is not in ldap.domains"),
                      ("CORP\\alice@corp.example.com", "more than one '@' or '\\'"),
                      ("alice@corp.example.com@other.example.com", "more than one"),
                      ("CORP\\", "empty name or domain"),
                      ("@corp.example.com", "empty name or domain")):
        mark = s.mark()
        run = h.authenticate(svc, user, [right()])
        h.expect(run, "PAM_AUTHINFO_UNAVAIL", sms=0, requests=0, prompts=0)
        check(why in run.outcomes[0] and "not looked up" in run.outcomes[0],
              f"user {user!r}: outcome {run.outcomes[0]!r}, want {why!r}")
        check(s.searches(mark, wait=0.3) == [], f"user {user!r}: the directory was searched")


@case
def directory_whole_names_with_a_domain_denied(h):
    """The filter of the README before (uid=%u, sAMAccountName=%u) takes SSSD's and winbind's
    names whole and matches no entry: with nullok those users got no second factor, silently.
    Now such a login is denied, its log line naming the fix (also with ldap.domains); a bare
    name without an entry is unmapped as before, and a name with '@' that has an entry
    (mail=%u) is found."""
    s = slapd(h)
    svc = simple_service(h, args=("nullok", "debug"), then_permit=True, failMode="open",
                         users=NO_ALICE, ldap=directory(s))
    for user in ("alice@corp.example.com", "CORP\\alice"):
        run = h.authenticate(svc, user, [right()])
        h.expect(run, "PAM_AUTHINFO_UNAVAIL", sms=0, requests=0, prompts=0)
        check(f'user "{user}" has a domain part, which ldap.filter takes whole' in
              run.outcomes[0] and "ldap.domains" in run.outcomes[0],
              f"user {user!r}: outcome {run.outcomes[0]!r}")
    run = h.authenticate(svc, "nobody-there", [right()])
    h.expect(run, "PAM_IGNORE", sms=0, prompts=0)
    s.add_person("mailname", "+15555550182", attrs={"mail": "mail.name@example.com"})
    run = h.authenticate(simple_service(h, ldap=directory(s, filter="(mail=%u)")),
                         "mail.name@example.com", [right()])
    expect_from_directory(h, run, "+15555550182")
    # with ldap.domains too: the same entry's winbind name (EXAMPLE\\mail.name) matches no
    # entry of a filter that takes it whole, and is denied, not unmapped
    ldap = directory(s, filter="(mail=%u)", domains=["EXAMPLE", "example.com"])
    run = h.authenticate(simple_service(h, ldap=ldap), "mail.name@example.com", [right()])
    expect_from_directory(h, run, "+15555550182")
    svc = simple_service(h, args=("nullok", "debug"), then_permit=True, failMode="open",
                         users=NO_ALICE, ldap=ldap)
    run = h.authenticate(svc, "EXAMPLE\\mail.name", [right()])
    h.expect(run, "PAM_AUTHINFO_UNAVAIL", sms=0, requests=0, prompts=0)
    check('user "EXAMPLE\\mail.name" has a domain part, which ldap.filter takes whole' in
          run.outcomes[0], f"outcome {run.outcomes[0]!r}")


@case
def directory_domain_names_in_one_tree(h):
    """One tree with both domains' users: the filter matches the short name and the domain
    (%s and %d, associatedDomain), so each alice@DOMAIN finds its own domain's alice; a bare
    alice, whose %d would be empty, is denied (nullok or not)."""
    s = slapd(h)
    svc = simple_service(h, users=NO_ALICE,
                         ldap=directory(s, filter="(&(uid=%s)(associatedDomain=%d))"))
    for domain, number in ALICES.items():
        mark = s.mark()
        run = h.authenticate(svc, f"alice@{domain}", [right()])
        expect_from_directory(h, run, number)
        searches = s.searches(mark)
        check(len(searches) == 1 and
              searches[0].filter == f"(&(uid=alice)(associatedDomain={domain}))",
              f"the server saw {searches!r}")
    # a domain the tree does not hold matches no entry: unmapped, as any unknown user
    run = h.authenticate(svc, "alice@third.example.com", [typed("000000")] * 3)
    h.expect(run, "PAM_MAXTRIES", sms=0)
    # a bare name (SSSD's short name for alice@corp.example.com) has an empty %d, which
    # matches no entry: denied without a search, never a user without a number (with nullok
    # the short name would skip the code)
    svc = simple_service(h, args=("nullok", "debug"), then_permit=True, failMode="open",
                         users=NO_ALICE,
                         ldap=directory(s, filter="(&(uid=%s)(associatedDomain=%d))"))
    mark = s.mark()
    run = h.authenticate(svc, "alice", [right()])
    h.expect(run, "PAM_AUTHINFO_UNAVAIL", sms=0, requests=0, prompts=0)
    check('user "alice" has no domain' in run.outcomes[0] and
          "not looked up" in run.outcomes[0], f"outcome {run.outcomes[0]!r}")
    check(s.searches(mark, wait=0.3) == [], "the directory was searched")


@case
def directory_several_entries_denied(h):
    s = slapd(h)
    svc = simple_service(h, then_permit=True, failMode="open",
                         ldap=directory(s, filter="(|(uid=%u)(description=%u))"))
    run = h.authenticate(svc, "twin", [right()])
    h.expect(run, "PAM_AUTHINFO_UNAVAIL", sms=0, requests=0, prompts=0)
    line = run.outcomes[0]
    check("several entries" in line and "uid=twin," in line and "uid=twin2," in line,
          f"outcome {line!r}")


@case
def directory_no_attribute_is_unmapped(h):
    s = slapd(h)
    run = h.authenticate(simple_service(h, ldap=directory(s)), "nomobile", [typed("1")] * 3)
    h.expect(run, "PAM_MAXTRIES", sms=0)
    svc = simple_service(h, args=("nullok", "debug"), then_permit=True, ldap=directory(s))
    for user in ("nomobile", "nobody-there"):
        run = h.authenticate(svc, user, [right()])
        h.expect(run, "PAM_IGNORE", sms=0, prompts=0)


@case
def directory_invalid_values_denied(h):
    s = slapd(h)
    svc = simple_service(h, then_permit=True, failMode="open", ldap=directory(s))
    for user, why in (("nocountry", "has no leading +"),
                      ("zero", "has a country code that starts with 0"),
                      ("letters", "has a letter")):
        run = h.authenticate(svc, user, [right()])
        h.expect(run, "PAM_AUTHINFO_UNAVAIL", sms=0, requests=0, prompts=0)
        check(f'user "{user}"' in run.outcomes[0] and f"uid={user}," in run.outcomes[0],
              f"outcome {run.outcomes[0]!r}")
        # the same rule, and the same words, as the config's users and the users file
        check(f"the number {why} " in run.outcomes[0] and
              "fix: write it as +<country code><number>, e.g. +12025550143 in the directory"
              in run.outcomes[0], f"outcome {run.outcomes[0]!r}")


@case
def directory_not_asked_when_users_file_missing(h):
    """A usersFile that does not exist: what it would have said of a user is unknown, and a
    line there overrides the directory, so the directory is not asked and the user is
    refused (with nullok too); the config's users log in."""
    s = slapd(h)
    missing = str(h.workdir / "directory-none.users")
    svc = simple_service(h, args=("nullok", "debug"), then_permit=True,
                         users={"local": "+15555550178"}, usersFile=missing, ldap=directory(s))
    mark = s.mark()
    run = h.authenticate(svc, "frank", [right()])
    h.expect(run, "PAM_SERVICE_ERR", sms=0, requests=0, prompts=0)
    check(any(f"usersFile {missing} does not exist; fix: create it empty" in l
              for l in run.module_logs), f"no 'does not exist' line: {run.module_logs!r}")
    check(s.searches(mark, wait=0.3) == [], "the directory was asked")
    run = h.authenticate(svc, "local", [right()])
    h.expect(run, "PAM_SUCCESS", sms=1)
    check(run.outbox[0]["to"] == "+15555550178" and " source=users " in run.outcomes[0],
          f"{run.outbox[0]['to']}: {run.outcomes[0]!r}")


@case
def directory_local_entries_win(h):
    s = slapd(h)
    mark = s.mark()
    run = h.authenticate(simple_service(h, users={"local": "+15555550178"}, ldap=directory(s)),
                         "local", [right()])
    h.expect(run, "PAM_SUCCESS", sms=1)
    check(run.outbox[0]["to"] == "+15555550178" and " source=users " in run.outcomes[0],
          f"{run.outbox[0]['to']}: {run.outcomes[0]!r}")
    check(s.searches(mark, wait=0.3) == [], "the directory was asked for a local user")
    users_file = write_file(h.workdir / "directory-users", "frank +15555550177\n")
    mark = s.mark()
    run = h.authenticate(simple_service(h, usersFile=users_file, ldap=directory(s)), "frank",
                         [right()])
    h.expect(run, "PAM_SUCCESS", sms=1)
    check(run.outbox[0]["to"] == "+15555550177" and " source=usersFile " in run.outcomes[0],
          f"{run.outbox[0]['to']}: {run.outcomes[0]!r}")
    check(s.searches(mark, wait=0.3) == [], "the directory was asked for a users-file user")


def outage_case(h, ldap, want_reason, limit=None):
    """An outage: denied with failMode closed, skipped with open; within the budget."""
    svc = simple_service(h, then_permit=True, ldap=ldap)
    run = h.authenticate(svc, "dave", [right()])
    h.expect(run, "PAM_AUTHINFO_UNAVAIL", sms=0, requests=0, prompts=0)
    check(want_reason in run.outcomes[0], f"outcome {run.outcomes[0]!r}, want {want_reason!r}")
    if limit is not None:
        check(run.elapsed < limit + TIME_SLACK, f"took {run.elapsed:.2f}s (limit {limit}s)")
    no_secret(run)
    run = h.authenticate(simple_service(h, then_permit=True, failMode="open", ldap=ldap),
                         "dave", [right()])
    h.expect(run, "PAM_IGNORE", sms=0, requests=0, prompts=0)
    check("failMode=open" in run.outcomes[0], f"outcome {run.outcomes[0]!r}")


@case
def directory_wrong_bind_password(h):
    s = slapd(h)
    outage_case(h, directory(s, bindPassword="not-" + BIND_PASSWORD),
                "the directory refused the service account's bind (invalid credentials")


@case
def directory_untrusted_certificates(h):
    """Each certificate failure is logged as what it is, with its fix (libldap with GnuTLS
    itself says "Can't contact LDAP server: (unknown error code)" for all of them)."""
    s = slapd(h)
    outage_case(h, directory(s, caFile=h.sandbox.ca_file),
                "the server's certificate is not signed by a CA of ldap.caFile")
    try:
        for certificate, reason in (
                ("wronghost", "a certificate name mismatch: the server's certificate is not "
                              "for the host in ldap.uri"),
                ("selfsigned", "the server's certificate is not signed by a CA of ldap.caFile"),
                ("expired", "the server's certificate has expired")):
            s.use_certificate(certificate)
            outage_case(h, directory(s), reason)
            outage_case(h, directory(s, uri=s.ldap_url), reason)  # StartTLS
    finally:
        s.use_certificate("server")


@case
def directory_down_within_budget(h):
    outage_case(h, directory(slapd(h), uri=f"ldaps://127.0.0.1:{free_port()}", timeoutSeconds=3),
                "directory unavailable", limit=3 + 1)


@case
def directory_silent_server_within_budget(h):
    """A server that accepts the connection and never says a word."""
    hole = BlackHole().start()
    try:
        for uri in (hole.ldaps_url, hole.url):
            outage_case(h, directory(slapd(h), uri=uri, timeoutSeconds=2), "directory unavailable",
                        limit=2 + 1)
    finally:
        hole.stop()


def lookup_children(service):
    """The lookup's child processes of the PAM client running service: forks without exec,
    so with the command line of their parent (pamtester, or valgrind running it)."""
    argvs = {pid: argv for pid, argv in cmdlines() if service.encode() in argv}
    return [child for pid, argv in argvs.items() for child in descendants(pid)
            if argvs.get(child) == argv]


@case
def directory_lookup_child_killed_fails_closed(h):
    """The lookup's child killed by a signal (here root's SIGKILL; a setuid host's caller
    can no longer send one) is a crash or an attack, not an outage: PAM_AUTHINFO_UNAVAIL
    although failMode is open and a permitting module follows, the log names the signal, and
    it ends at once, not after timeoutSeconds."""
    hole = BlackHole().start()
    killed = []

    def killer(service, deadline):
        while not killed and time.monotonic() < deadline:
            for pid in lookup_children(service):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
                    killed.append(pid)
            time.sleep(0.01)

    try:
        svc = simple_service(h, then_permit=True, failMode="open",
                             ldap=directory(slapd(h), uri=hole.ldaps_url, timeoutSeconds=8))
        t = threading.Thread(target=killer, args=(svc, time.monotonic() + 8), daemon=True)
        t.start()
        run = h.authenticate(svc, "dave", [right()])
        t.join()
    finally:
        hole.stop()
    check(killed, "no lookup child was seen to kill")
    h.expect(run, "PAM_AUTHINFO_UNAVAIL", sms=0, requests=0, prompts=0)
    check("the lookup process was killed by signal 9" in run.outcomes[0] and
          "failMode does not apply" in run.outcomes[0], f"outcome {run.outcomes[0]!r}")
    check(run.elapsed < 8, f"took {run.elapsed:.2f}s: the death was taken for a timeout")


def admin(config, *args):
    """twilio-sms-otp --config CONFIG ARGS..., as an administrator runs it."""
    r = subprocess.run([str(TOOL), "--config", config, *args], capture_output=True, text=True,
                       timeout=60, stdin=subprocess.DEVNULL)
    check(BIND_PASSWORD not in r.stdout + r.stderr, "the bind password in the command's output")
    return r


@case
def directory_admin_lookup_and_check(h):
    """twilio-sms-otp lookup says where a number comes from (the DN for ldap); check
    connects, binds and searches, and says what failed."""
    s = slapd(h)
    config = h.write_config(h.config(users={"local": "+15555550178"}, ldap=directory(s)))
    r = admin(config, "lookup", "dave")
    check(r.returncode == 0 and r.stdout.strip() ==
          f"dave: ******0170 from ldap uid=dave,{s.people_dn}", f"lookup: {r.stdout!r} {r.stderr!r}")
    r = admin(config, "lookup", "local")
    check(r.returncode == 0 and "******0178 from users" in r.stdout, f"lookup: {r.stdout!r}")
    r = admin(config, "lookup", "nobody-there")
    check(r.returncode == 1 and "has no number" in r.stdout, f"lookup: {r.stdout!r}")
    r = admin(config, "lookup", "twin")
    check(r.returncode == 0, f"lookup twin: {r.stdout!r} {r.stderr!r}")  # (uid=twin): one entry
    mark = s.mark()
    r = admin(config, "check")
    check(r.returncode == 0 and f"ldap: connected to {s.ldaps_url}, bound as ldap.bindDN" in
          r.stdout, f"check: {r.stdout!r} {r.stderr!r}")
    check(len(s.searches(mark)) == 1, f"check searched {s.searches(mark)!r}")
    bad = h.write_config(h.config(ldap=directory(s, bindPassword="wrong-password")), name="bad")
    r = admin(bad, "check")
    check(r.returncode == 1 and "refused the service account's bind (invalid credentials" in
          r.stdout, f"check: {r.stdout!r} {r.stderr!r}")


@case
def directory_check_reads_the_attribute(h):
    """twilio-sms-otp check (tsms_directory_probe): bound as the service account, it reads
    ldap.attribute of one entry under baseDN and names the entry, never the number; an
    attribute that no entry shows the account (every user would look unmapped), and a
    refused bind, are each a problem: exit 1."""
    s = slapd(h)
    mark = s.mark()
    r = admin(h.write_config(h.config(ldap=directory(s)), name="probe"), "check")
    check(r.returncode == 0 and "bound as ldap.bindDN and read mobile of uid=" in r.stdout and
          f",{s.people_dn}: OK" in r.stdout and
          not any(n[-7:] in r.stdout for _, n in PEOPLE.values()),
          f"check: {r.returncode} {r.stdout!r} {r.stderr!r}")
    searches = s.searches(mark)
    check(len(searches) == 1 and searches[0].filter == "(mobile=*)" and
          searches[0].base == s.people_dn, f"the server saw {searches!r}")
    r = admin(h.write_config(h.config(ldap=directory(s, attribute="pager")), name="probe-pager"),
              "check")
    check(r.returncode == 1 and
          f"no entry under {s.people_dn} shows pager to ldap.bindDN" in r.stdout and
          "hide it), so every user would look unmapped (the decoy's denial, or with nullok a "
          "pass on the password alone); fix: " in r.stdout, f"check: {r.returncode} {r.stdout!r}")
