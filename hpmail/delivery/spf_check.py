"""SPF of a sender domain: does it authorize the SMTP servers the school's e-mails leave through?

pyspf evaluates the record as receivers do (RFC 7208: include, redirect, a, mx, macros, the limit
of 10 look-ups), through hpmail's own DNS look-ups (``dns.Lookup``: the servers of
``DNS_SERVERS``, one deadline). A relay is checked by its addresses; a provider's submission
server (Microsoft 365, Google: ``providers.toml``) by the provider's include, since its e-mails
leave from other servers, which the include lists.

pyspf asks the DNS through one module function, ``spf.DNSLookup(name, qtype, strict, timeout)``,
which uses dnspython's default resolver (the system's, with pyspf's own 20-second timeouts) and is
given no query object to say which look-up it serves. So it is replaced once, when this module is
imported, by a function that asks the ``Lookup`` of the query being evaluated: ``SpfQuery.dns``
puts its ``Lookup`` in a context variable for the length of each of its look-ups. A context
variable belongs to one thread (and one asyncio task): two requests evaluating SPF at the same
time never see each other's ``Lookup``. Code that uses pyspf without an ``SpfQuery`` finds no
``Lookup`` there and gets pyspf's own function, unchanged.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from contextvars import ContextVar
from dataclasses import dataclass

import spf
from flask_babel import gettext as _

from hpmail.delivery.discovery import Provider, known_providers
from hpmail.delivery.dns import Lookup
from hpmail.delivery.findings import (
    ERROR,
    OK,
    UNKNOWN,
    WARNING,
    Check,
    Record,
    answered,
    not_read,
    unknown,
    worst,
)
from hpmail.outbox.destinations import is_internal
from hpmail.outbox.models import Transport

SPF_RECORD = re.compile(r"v=spf1(\s|$)", re.IGNORECASE)
# An address no SPF record names (RFC 5737, TEST-NET-1): evaluating it walks every include.
UNLISTED_ADDRESS = "192.0.2.1"

_current_lookup: ContextVar[Lookup | None] = ContextVar("hpmail_spf_lookup", default=None)
_pyspf_dns_lookup = spf.DNSLookup


def _dns_lookup(name: str, qtype: str, strict=True, timeout=None) -> list:
    """pyspf's DNS function: the answers of the current ``SpfQuery``'s ``Lookup``, in its shape.

    A look-up the DNS servers did not answer (or past the deadline) is pyspf's TempError, so the
    evaluation says "temperror" rather than "no record".
    """
    lookup = _current_lookup.get()
    if lookup is None:
        return _pyspf_dns_lookup(name, qtype, strict, timeout)
    records = lookup.records(name, qtype)
    if lookup.failed or lookup.remaining() <= 0:
        raise spf.TempError(f"DNS {qtype} {name}: no answer in time")
    return [((name, qtype), _value(qtype, record)) for record in records]


def _value(qtype: str, record):
    """Return a record as pyspf's dnspython function does (TXT: its strings, as bytes)."""
    if qtype in ("A", "AAAA"):
        return record.address
    if qtype == "MX":
        return (record.preference, record.exchange.to_text(omit_final_dot=True))
    if qtype == "PTR":
        return record.target.to_text(omit_final_dot=True)
    return record.strings


spf.DNSLookup = _dns_lookup


class SpfQuery(spf.query):
    """A pyspf query whose DNS look-ups go through ``lookup`` (see the module's docstring)."""

    def __init__(self, lookup: Lookup, **arguments) -> None:
        super().__init__(**arguments)
        self.lookup = lookup

    def dns(self, *arguments, **options):
        token = _current_lookup.set(self.lookup)
        try:
            return super().dns(*arguments, **options)
        finally:
            _current_lookup.reset(token)


@dataclass(frozen=True)
class Evaluation:
    """What a receiver concludes for one sending address.

    ``result`` is RFC 7208's: pass, fail, softfail, neutral, none, permerror or temperror;
    ``reason`` pyspf's words for a permerror; ``names`` every domain whose SPF record was read
    on the way (the domain itself, its includes and redirects).
    """

    result: str
    reason: str = ""
    too_many_lookups: bool = False
    names: frozenset[str] = frozenset()


def spf_records(domain: str, lookup: Lookup) -> list[str]:
    """Return the SPF records published at ``domain`` (more than one is an error, RFC 7208 3.2)."""
    return [text.strip() for text in lookup.texts(domain) if SPF_RECORD.match(text.strip())]


def evaluate(lookup: Lookup, domain: str, record: str, address: str, helo: str) -> Evaluation:
    """Evaluate ``record`` (the SPF record of ``domain``) for a server sending from ``address``."""
    query = SpfQuery(lookup, i=address, s=f"postmaster@{domain}", h=helo)
    result, _code, _explanation = query.check(spf=record)
    names = frozenset(name for name, kind in query.cache if kind == "TXT")
    return Evaluation(
        result,
        reason=getattr(query, "prob", "") if result == "permerror" else "",
        too_many_lookups=query.lookups > spf.MAX_LOOKUP,
        names=names | {domain},
    )


# --- What the record says of each server the e-mails leave through ----------------------------


@dataclass(frozen=True)
class Relay:
    """An SMTP server the e-mails leave through, and the provider it belongs to, if known."""

    host: str
    provider: Provider | None


@dataclass(frozen=True)
class _Verdict:
    """What the SPF record says of one relay; ``passes`` None when it cannot be told."""

    state: str
    finding: str
    mechanisms: tuple[str, ...] = ()
    passes: bool | None = None


def relays_of(transports: Sequence[Transport]) -> list[Relay]:
    """Return the distinct servers of ``transports``, each with its provider (``providers.toml``:
    a provider whose SPF record customers include, such as Microsoft 365 or Google)."""
    relays: dict[str, Relay] = {}
    for transport in transports:
        host = (transport.host or "").strip().lower().rstrip(".")
        if host and host not in relays:
            provider = next((p for p in known_providers() if p.host == host), None)
            relays[host] = Relay(host, provider)
    return list(relays.values())


def check_spf(domain: str, relays: Sequence[Relay], lookup: Lookup) -> tuple[Check, bool | None]:
    """Check that the SPF record of ``domain`` authorizes every relay; say whether SPF passes."""
    records = spf_records(domain, lookup)
    if not answered(lookup):
        return unknown("spf", domain), None
    if len(records) > 1:
        finding = _(
            "%(domain)s publishes %(count)d SPF records: receivers then ignore them all "
            "(permerror).",
            domain=domain,
            count=len(records),
        )
        advice = _("Merge them into one TXT record starting with v=spf1, and delete the others.")
        return Check("spf", ERROR, [finding], advice), False
    record = records[0] if records else None
    if not relays:
        finding = _("No SMTP server is saved: there is no server to look for in the SPF record.")
        return Check("spf", UNKNOWN, [finding]), None
    verdicts = [_relay_verdict(domain, record, relay, lookup) for relay in relays]
    mechanisms = list(dict.fromkeys(m for verdict in verdicts for m in verdict.mechanisms))
    check = Check(
        "spf",
        worst([verdict.state for verdict in verdicts]),
        list(dict.fromkeys(verdict.finding for verdict in verdicts)),
    )
    if mechanisms:
        check.records = [Record(domain, "TXT", _amended(record, mechanisms))]
        check.advice = (
            _(
                "Publish this TXT record at the root of %(domain)s (whoever manages its DNS can: "
                "the host of the domain, the académie, the local authority).",
                domain=domain,
            )
            if record is None
            else _("Replace the SPF record of %(domain)s with this one:", domain=domain)
        )
    elif record is None:
        check.advice = _(
            "Publish an SPF record at the root of %(domain)s naming the public address your "
            "SMTP server sends from, such as “v=spf1 ip4:… ~all”.",
            domain=domain,
        )
    passes = [verdict.passes for verdict in verdicts]
    spf_passes = False if False in passes else (True if all(passes) else None)
    return check, spf_passes


def _relay_verdict(domain: str, record: str | None, relay: Relay, lookup: Lookup) -> _Verdict:
    if relay.provider is not None and relay.provider.spf:
        return _provider_verdict(domain, record, relay, lookup)
    addresses = lookup.addresses(relay.host)
    if not answered(lookup):
        return _Verdict(UNKNOWN, not_read(domain))
    if not addresses:
        finding = _(
            "The SMTP server %(host)s is not in the DNS: it was not checked.", host=relay.host
        )
        return _Verdict(UNKNOWN, finding)
    shown = (
        relay.host
        if addresses == [relay.host]  # an address typed as the server's name
        else _("%(host)s (%(addresses)s)", host=relay.host, addresses=", ".join(addresses))
    )
    if any(is_internal(address) for address in addresses):
        if record is None:
            return _Verdict(ERROR, _no_record(domain, shown), passes=False)
        finding = _(
            "The SMTP server %(server)s is inside the school's network: receivers see the public "
            "address it sends from, which hpmail cannot know from here. Check that the SPF "
            "record of %(domain)s authorizes that address.",
            server=shown,
            domain=domain,
        )
        return _Verdict(WARNING, finding)
    mechanisms = tuple(f"ip{6 if ':' in address else 4}:{address}" for address in addresses)
    if record is None:
        return _Verdict(ERROR, _no_record(domain, shown), mechanisms, passes=False)
    evaluations = [evaluate(lookup, domain, record, a, relay.host) for a in addresses]
    results = {evaluation.result for evaluation in evaluations}
    if "temperror" in results:
        return _Verdict(UNKNOWN, not_read(domain))
    broken = next((e for e in evaluations if e.result == "permerror"), None)
    if broken is not None:
        return _permerror(domain, broken)
    if results == {"pass"}:
        finding = _(
            "The SPF record of %(domain)s authorizes %(server)s.", domain=domain, server=shown
        )
        return _Verdict(OK, finding, passes=True)
    missing = tuple(m for m, e in zip(mechanisms, evaluations, strict=True) if e.result != "pass")
    if "fail" in results:
        finding = _(
            "The SPF record of %(domain)s forbids %(server)s (fail): receivers reject its e-mails "
            "or put them in spam.",
            domain=domain,
            server=shown,
        )
        return _Verdict(ERROR, finding, missing, passes=False)
    finding = _(
        "The SPF record of %(domain)s does not authorize %(server)s (%(result)s): receivers may "
        "put its e-mails in spam.",
        domain=domain,
        server=shown,
        result=", ".join(sorted(results - {"pass"})),
    )
    return _Verdict(WARNING, finding, missing, passes=False)


def _provider_verdict(domain: str, record: str | None, relay: Relay, lookup: Lookup) -> _Verdict:
    """A provider's submission server is not where its e-mails leave from: its SPF record,
    which customers include, lists those servers."""
    provider, include = relay.provider, relay.provider.spf[0]
    if record is None:
        return _Verdict(
            ERROR, _no_record(domain, provider.name), (f"include:{include}",), passes=False
        )
    evaluation = evaluate(lookup, domain, record, UNLISTED_ADDRESS, relay.host)
    if evaluation.result == "temperror":
        return _Verdict(UNKNOWN, not_read(domain))
    if evaluation.result == "permerror":
        return _permerror(domain, evaluation)
    if evaluation.names & set(provider.spf):
        finding = _(
            "The SPF record of %(domain)s includes %(include)s, the servers of %(provider)s.",
            domain=domain,
            include=include,
            provider=provider.name,
        )
        return _Verdict(OK, finding, passes=True)
    finding = _(
        "The SPF record of %(domain)s does not include %(include)s: receivers do not know that "
        "%(provider)s sends its e-mails.",
        domain=domain,
        include=include,
        provider=provider.name,
    )
    return _Verdict(ERROR, finding, (f"include:{include}",), passes=False)


def _no_record(domain: str, server: str) -> str:
    return _(
        "%(domain)s publishes no SPF record: receivers cannot tell that %(server)s may send its "
        "e-mails.",
        domain=domain,
        server=server,
    )


def _permerror(domain: str, evaluation) -> _Verdict:
    if evaluation.too_many_lookups:
        finding = _(
            "The SPF record of %(domain)s needs more than 10 DNS look-ups (include, a, mx, "
            "redirect): receivers stop and ignore it (permerror). Replace some includes by the "
            "ip4: ranges they stand for.",
            domain=domain,
        )
    else:
        finding = _(
            "The SPF record of %(domain)s is invalid (%(reason)s): receivers ignore it "
            "(permerror).",
            domain=domain,
            reason=evaluation.reason,
        )
    return _Verdict(ERROR, finding, passes=False)


def _amended(record: str | None, mechanisms: Sequence[str]) -> str:
    """Return ``record`` with ``mechanisms`` added first (a new record ending in ``~all``)."""
    if record is None:
        return " ".join(["v=spf1", *mechanisms, "~all"])
    terms = record.split()
    present = {term.lower().lstrip("+") for term in terms}
    added = [mechanism for mechanism in mechanisms if mechanism.lower() not in present]
    return " ".join([terms[0], *added, *terms[1:]])
