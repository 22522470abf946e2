"""What a check of a sender domain found: its state, its words, the DNS records to publish.

The checks (``spf_evaluation``, ``dmarc``, ``domain_checks``) each return a ``Check``; the pages
show its state in colour: ok green, warning orange, error red, unknown grey (the DNS did not
answer, so nothing could be told).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l

from hpmail.delivery.dns import Lookup

OK, WARNING, ERROR, UNKNOWN = "ok", "warning", "error", "unknown"
# The worst state of several wins: a server SPF forbids outweighs one it allows.
SEVERITY = (OK, UNKNOWN, WARNING, ERROR)
STATE_LABELS = {
    OK: _l("Correct"),
    WARNING: _l("To improve"),
    ERROR: _l("To fix"),
    UNKNOWN: _l("Not checked"),
}
CHECK_LABELS = {
    "spf": _l("SPF: the servers allowed to send"),
    "dkim": _l("DKIM: the signature"),
    "dmarc": _l("DMARC: policy and alignment"),
    "mx": _l("MX: receiving the replies"),
}


@dataclass(frozen=True)
class Record:
    """A DNS record to publish, as the DNS host's form asks for it."""

    name: str
    kind: str
    value: str


@dataclass
class Check:
    """One check of a domain: its state, what was found, what to do, and the records to publish."""

    kind: str
    state: str
    findings: list[str]
    advice: str = ""
    records: list[Record] = field(default_factory=list)
    dkim_page: bool = False  # hpmail's DKIM key page of the domain would fix it

    @property
    def label(self) -> str:
        return str(CHECK_LABELS[self.kind])

    @property
    def state_label(self) -> str:
        return str(STATE_LABELS[self.state])


def worst(states: Sequence[str]) -> str:
    return max(states, key=SEVERITY.index, default=UNKNOWN)


def answered(lookup: Lookup) -> bool:
    """Say whether the look-ups so far were answered (a failure or the deadline: not known)."""
    return not lookup.failed and lookup.remaining() > 0


def not_read(domain: str) -> str:
    return _("The DNS did not answer: the records of %(domain)s were not read.", domain=domain)


def unknown(kind: str, domain: str) -> Check:
    return Check(kind, UNKNOWN, [not_read(domain)])
