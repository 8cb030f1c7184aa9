"""End-to-end cases: attacks on the graces (gracePeriodSeconds, graceScope fleet) that
test_grace.py's cases of what a grace does leave out: a window an administrator lowers must
shorten the graces already open, in the fleet's Redis as in this host's stateDir."""

import time

from harness.core import case, check
from harness.pam import right
from harness.redis import family_server, host

A = "192.0.2.7"  # documentation addresses (RFC 5737): only strings here


def login_from(h, svc, user, rhost, answers=()):
    """pamtester SERVICE USER authenticate with PAM_RHOST set to rhost."""
    return h.authenticate(svc, user, answers,
                          client=["pamtester", "-I", f"rhost={rhost}", svc, user, "authenticate"])


def graced(run):
    return run.status == 0 and any("method=grace-address" in l for l in run.outcomes)


@case
def lowered_window_shortens_fleet_graces_too(h):
    """gracePeriodSeconds 600, then lowered to 2 (an administrator shortening the graces
    after an incident): the grace opened from A under 600 is let in once (capped to 2 s
    from then), and 3 s later it has ended: A's next login is asked. The files
    (graceScope host) keep the capped time when they read it; the fleet's Redis
    (graceScope fleet) must end it too, not cap it again to 2 s from each read for as long
    as the key lives (its TTL is the 600 s of the open; any later code from another address
    restarts it)."""
    s = family_server("grace-attacks", h.workdir)
    redis_cfg = s.module_config()
    verdicts = {}
    for scope in ("host", "fleet"):
        low = host(h, scope, redis=redis_cfg, graceScope=scope, gracePeriodSeconds=600)
        h.expect(login_from(h, low.service, "alice", A, [right()]), "PAM_SUCCESS", sms=1)
        # the administrator lowers the window: the host's config file rewritten
        h.write_config(h.config(stateDir=str(low.state_dir), redis=redis_cfg,
                                graceScope=scope, gracePeriodSeconds=2),
                       name=f"{h.case}-{scope}")
        first = login_from(h, low.service, "alice", A)
        check(graced(first), f"graceScope {scope}: the login just after the window was "
                             f"lowered was not let in by the grace: {first.outcomes!r}")
        time.sleep(3.2)
        later = login_from(h, low.service, "alice", A, [right()])
        verdicts[scope] = later.outcomes
    problems = [f"graceScope {scope}: 3 s after the window was lowered to 2 s, A's login "
                f"was still let in by the grace: {outcomes!r}"
                for scope, outcomes in verdicts.items()
                if any("method=grace-address" in l for l in outcomes)]
    check(not problems, " | ".join(problems))
