"""End-to-end cases: the graces (gracePeriodSeconds by remote address, sessionGraceSeconds
by audit session): who skips the code, for how long, and who never does."""

from harness.core import case, check
from harness.pam import right, simple_service
from harness.state import new_state_dir


def login_from(h, svc, user, rhost, answers=()):
    """pamtester SERVICE USER authenticate with PAM_RHOST set to rhost."""
    return h.authenticate(svc, user, answers,
                          client=["pamtester", "-I", f"rhost={rhost}", svc, user, "authenticate"])


@case
def address_grace_skips_the_second_text(h):
    sd = new_state_dir(h)
    svc = simple_service(h, stateDir=str(sd), gracePeriodSeconds=600)
    first = login_from(h, svc, "alice", "192.0.2.7", [right()])
    h.expect(first, "PAM_SUCCESS", sms=1, prompts=1)
    again = login_from(h, svc, "alice", "192.0.2.7")
    h.expect(again, "PAM_SUCCESS", sms=0, prompts=0)
    check("method=grace-address" in again.outcomes[0], f"outcome {again.outcomes[0]!r}")
    other = login_from(h, svc, "alice", "192.0.2.8", [right()])
    h.expect(other, "PAM_SUCCESS", sms=1, prompts=1)
