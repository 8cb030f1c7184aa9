"""End-to-end cases: what the module takes from outside its config. The caller's
environment (proxies, SSLKEYLOGFILE, OpenSSL's CPU masks) never steers it; the config's
`proxy` key does, through a real CONNECT proxy on loopback; caFile is trusted only when
root's. The same attack from a real setuid program (su, chfn) run by an unprivileged user
is in tests/integration/run_setuid.py."""

import base64
import os
import subprocess
import tempfile
from pathlib import Path

from harness.core import case, check
from harness.pam import (TIME_SLACK, FreedScan, expect_config_error, right, simple_service,
                         unwrapped_case)
from harness.proxy import running_proxy
from harness.system import free_port

PROXY_VARIABLES = ("http_proxy", "https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY")


def expect_through(proxy, run, before=0):
    """Exactly one tunnel, to the sandbox, went through proxy during the run."""
    seen = proxy.requests()[before:]
    check(len(seen) == 1, f"the proxy saw {len(seen)} requests, want 1: {seen!r}")
    check(seen[0].get("method") == "CONNECT" and seen[0].get("status") == 200,
          f"the proxy saw {seen[0]!r}, want a tunnelled CONNECT")
    return seen[0]


@case
def environment_proxies_ignored(h):
    """A caller's proxy variables: the request goes straight to Twilio, the proxy sees
    nothing, the login works."""
    with running_proxy(h.workdir) as proxy:
        env = {name: proxy.url() for name in PROXY_VARIABLES}
        run = h.authenticate(simple_service(h), "alice", [right()], env=env)
        h.expect(run, "PAM_SUCCESS", sms=1, requests=1)
        check(proxy.requests() == [], f"the caller's proxy saw {proxy.requests()!r}")


@case
def environment_no_proxy_does_not_bypass_the_config_proxy(h):
    with running_proxy(h.workdir) as proxy:
        svc = simple_service(h, proxy=proxy.url())
        run = h.authenticate(svc, "alice", [right()],
                             env={"NO_PROXY": "*", "no_proxy": "127.0.0.1,localhost"})
        h.expect(run, "PAM_SUCCESS", sms=1, requests=1)
        expect_through(proxy, run)


@case
def environment_key_log_file_ignored(h):
    """SSLKEYLOGFILE naming a new file and an existing one: neither is written, and the
    login works."""
    keys = Path(tempfile.mkdtemp(dir=h.workdir, prefix="keys-"))
    existing = keys / "existing.log"
    existing.write_text("# the caller's file\n")
    for target in (keys / "new.log", existing):
        before = existing.read_bytes()
        run = h.authenticate(simple_service(h), "alice", [right()],
                             env={"SSLKEYLOGFILE": str(target)})
        h.expect(run, "PAM_SUCCESS", sms=1, requests=1)
        check(not (keys / "new.log").exists(), "the key log file was created")
        check(existing.read_bytes() == before, f"{existing} changed: {existing.read_text()!r}")


@case
def environment_openssl_cpu_mask_refused(h):
    """OPENSSL_ia32cap is read when the module is loaded, before it can hide the
    environment: the module refuses to run, and says why."""
    run = h.authenticate(simple_service(h), "alice", [right()],
                         env={"OPENSSL_ia32cap": "~0x200000200000000"})
    h.expect(run, "PAM_SERVICE_ERR", sms=0, requests=0, prompts=0)
    check(any("refusing to run: the environment sets OPENSSL_ia32cap" in l
              for l in run.module_logs), f"no refusal line: {run.module_logs!r}")
    check("reason=unsafe environment: OPENSSL_ia32cap is set" in run.outcomes[0],
          f"outcome {run.outcomes[0]!r}")


@case
def proxy_key_tunnels_to_twilio(h):
    with running_proxy(h.workdir) as proxy:
        run = h.authenticate(simple_service(h, proxy=proxy.url()), "alice", [right()])
        h.expect(run, "PAM_SUCCESS", sms=1, requests=1)
        seen = expect_through(proxy, run)
        check(seen["target"] == f"127.0.0.1:{h.sandbox.port}", f"tunnel to {seen['target']}")
        check(seen["credentials"] is False, "credentials sent to a proxy that has none")


@case
def proxy_key_with_credentials(h):
    user, password = "pam", "proxy-Pa55-word"
    with running_proxy(h.workdir, credentials=(user, password)) as proxy:
        svc = simple_service(h, proxy=proxy.url(user, password))
        run = h.authenticate(svc, "alice", [right()])
        h.expect(run, "PAM_SUCCESS", sms=1, requests=1)
        check(expect_through(proxy, run)["credentials_ok"], "the proxy's credentials were wrong")
        shown = [l for l in run.module_logs if "proxy=" in l]
        check(shown and all(f"proxy=http://***@127.0.0.1:{proxy.port}" in l for l in shown),
              f"the settings line does not show the proxy masked: {shown!r}")
        # a wrong password: the proxy answers 407, nothing reaches Twilio
        svc = simple_service(h, proxy=proxy.url(user, "not-the-password"))
        run = h.authenticate(svc, "alice", [right()])
        h.expect(run, "PAM_AUTHINFO_UNAVAIL", sms=0, requests=0, prompts=0)
        check(any("answered CONNECT with HTTP 407" in l for l in run.outcomes),
              f"407 not in the outcome: {run.outcomes!r}")
        for line in run.raw_logs + [run.output]:
            check(password not in line and "not-the-password" not in line,
                  f"the proxy password reached a log line: {line!r}")


@unwrapped_case
def proxy_password_never_left_in_freed_memory(h):
    """No heap block that pamtester frees holds the proxy's password or its Basic form,
    after a login through the proxy (harness.pam.FreedScan): libcurl's copies are wiped."""
    user, password = "pam", "proxy-Pa55-word-freed"
    with running_proxy(h.workdir, credentials=(user, password)) as proxy:
        svc = simple_service(h, proxy=proxy.url(user, password))
        scan = FreedScan(h, "proxy", [password, base64.b64encode(f"{user}:{password}".encode())])
        run = h.authenticate(svc, "alice", [right()], env=scan.env)
        h.expect(run, "PAM_SUCCESS", sms=1, requests=1)
        check(expect_through(proxy, run)["credentials_ok"], "the proxy's credentials were wrong")
        scan.check()


@case
def proxy_key_https_proxy(h):
    """An https:// proxy, verified against caFile: works with the CA's certificate,
    refused with a self-signed one (nothing reaches Twilio)."""
    d = h.sandbox.dir
    with running_proxy(h.workdir, tls=(d / "server.pem", d / "server.key")) as proxy:
        run = h.authenticate(simple_service(h, proxy=proxy.url()), "alice", [right()])
        h.expect(run, "PAM_SUCCESS", sms=1, requests=1)
        expect_through(proxy, run)
    with running_proxy(h.workdir, tls=(d / "selfsigned.pem", d / "selfsigned.key")) as proxy:
        svc = simple_service(h, then_permit=True, proxy=proxy.url())
        run = h.authenticate(svc, "alice", [right()])
        h.expect(run, "PAM_AUTHINFO_UNAVAIL", sms=0, requests=0, prompts=0)
        check(all(r.get("method") is None for r in proxy.requests()),
              f"a request head reached the untrusted proxy: {proxy.requests()!r}")


@case
def proxy_key_refused_tunnel(h):
    with running_proxy(h.workdir) as proxy:
        proxy.set_mode("refuse")
        svc = simple_service(h, then_permit=True, proxy=proxy.url())
        run = h.authenticate(svc, "alice", [right()])
        h.expect(run, "PAM_AUTHINFO_UNAVAIL", sms=0, requests=0, prompts=0)
        check(any(f"proxy http://127.0.0.1:{proxy.port} answered CONNECT with HTTP 403" in l
                  for l in run.outcomes), f"the refusal is not in the outcome: {run.outcomes!r}")
        check(len(proxy.requests()) == 1, f"a refused tunnel was retried: {proxy.requests()!r}")


@case
def proxy_key_down_within_budget(h):
    """Nothing listens at the proxy: unavailable, within timeoutSeconds; failMode decides."""
    url = f"http://127.0.0.1:{free_port()}"
    run = h.authenticate(simple_service(h, then_permit=True, proxy=url, timeoutSeconds=2),
                         "alice", [right()])
    h.expect(run, "PAM_AUTHINFO_UNAVAIL", sms=0, requests=0, prompts=0)
    check(any(f"via proxy {url}" in l for l in run.outcomes), f"outcome {run.outcomes!r}")
    check(run.elapsed < 2 + 1.5 + TIME_SLACK, f"took {run.elapsed:.2f}s")
    svc = simple_service(h, then_permit=True, proxy=url, timeoutSeconds=2, failMode="open")
    run = h.authenticate(svc, "alice", [right()])
    h.expect(run, "PAM_IGNORE", sms=0, requests=0, prompts=0)


@case
def proxy_key_hang_within_budget(h):
    with running_proxy(h.workdir) as proxy:
        proxy.set_mode("hang")
        svc = simple_service(h, then_permit=True, proxy=proxy.url(), timeoutSeconds=2)
        run = h.authenticate(svc, "alice", [right()])
        h.expect(run, "PAM_AUTHINFO_UNAVAIL", sms=0, requests=0, prompts=0)
        limit = 2 + 1.5 + TIME_SLACK
        check(run.elapsed < limit, f"took {run.elapsed:.2f}s with timeoutSeconds=2")


@case
def proxy_key_malformed_is_a_config_error(h):
    for bad in ("socks5://127.0.0.1:1080", "http://127.0.0.1", "127.0.0.1:3128",
                "http://user:s3cret-pw@127.0.0.1"):
        cfg = h.config(proxy=bad)
        path = h.write_config(cfg)
        run = h.authenticate(h.service(path, then_permit=True), "alice", [right()])
        expect_config_error(h, run, path, "proxy")
        for line in run.raw_logs:
            check("s3cret-pw" not in line, f"the proxy password reached a log line: {line!r}")


def ca_copy(h, name, mode, uid=0, symlink=False):
    """A copy of the sandbox CA at name with mode and owner (or a symbolic link to it)."""
    path = Path(h.workdir) / name
    if path.is_symlink() or path.exists():
        path.unlink()
    if symlink:
        path.symlink_to(h.sandbox.ca_file)
    else:
        path.write_bytes(Path(h.sandbox.ca_file).read_bytes())
        os.chown(path, uid, 0)
        os.chmod(path, mode)
    return str(path)


@case
def ca_file_must_be_roots(h):
    """A CA bundle others can write would let them add a CA: refused like the config,
    before anything is sent; 0644 root is fine."""
    run = h.authenticate(simple_service(h, caFile=ca_copy(h, "ca-0644.pem", 0o644)),
                         "alice", [right()])
    h.expect(run, "PAM_SUCCESS", sms=1, requests=1)
    for name, mode, uid, symlink, needle in (
            ("ca-0664.pem", 0o664, 0, False, "gives group or others write"),
            ("ca-0646.pem", 0o646, 0, False, "gives group or others write"),
            ("ca-nobody.pem", 0o644, 65534, False, "not root"),
            ("ca-link.pem", 0, 0, True, "symbolic link")):
        path = h.write_config(h.config(caFile=ca_copy(h, name, mode, uid, symlink)))
        run = h.authenticate(h.service(path, then_permit=True), "alice", [right()])
        expect_config_error(h, run, path, "caFile", needle)


@case
def no_ca_file_trusts_the_system_directory(h):
    """Without caFile the system's trust is read through its hashed directory, not its
    bundle, which OpenSSL 3.0 would parse whole for every login (Debian's 145
    certificates: 239 M instructions): with the sandbox CA only in the directory
    (bind-mounted over /etc/ssl/certs for the client alone) and no bundle, the login works."""
    store = Path(h.workdir) / "system-certs"
    store.mkdir(exist_ok=True)
    (store / "tsms-sandbox.pem").write_bytes(Path(h.sandbox.ca_file).read_bytes())
    done = subprocess.run(["openssl", "rehash", str(store)], capture_output=True, text=True)
    check(done.returncode == 0, f"openssl rehash: {done.stderr.strip()}")
    run = h.authenticate(simple_service(h, caFile=None), "alice", [right()],
                         binds=[(store, "/etc/ssl/certs")])
    h.expect(run, "PAM_SUCCESS", sms=1, requests=1)
