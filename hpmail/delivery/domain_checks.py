"""The allowed domains checked before the first send: SPF, DKIM, DMARC and MX, said in French.

Gmail, Outlook.com or Orange trust an e-mail from lycee.fr when lycee.fr's DNS says that the
server which sent it may (SPF), when it bears a valid signature of lycee.fr (DKIM), and when what
was authenticated is the domain of the From (DMARC alignment). Each check reads the DNS through
one ``Lookup`` (one deadline for the four) and says ok (green), warning (orange), error (red) or
unknown (grey: the DNS did not answer), what it found, and the exact record to publish.

hpmail's envelope sender is the From address itself (``outbox.policy.sending_identity``): the
domain SPF checks is the From's domain. hpmail signs with ``d=`` the domain whose keys the worker
takes (``outbox.dkim.signing_keys``: the From's domain, else its closest parent with keys); a
provider signs with ``d=`` the From's domain once its custom-domain key is published, else with
its own domain (onmicrosoft.com, gappssmtp.com), which does not align.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from flask import current_app
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from sqlalchemy import func, select

from hpmail.delivery.discovery import Provider
from hpmail.delivery.dkim_keys import publication, record_name, record_text, tags
from hpmail.delivery.dmarc import Authentication, check_dmarc
from hpmail.delivery.dns import Lookup
from hpmail.delivery.findings import (
    ERROR,
    OK,
    UNKNOWN,
    WARNING,
    Check,
    Record,
    answered,
    unknown,
    worst,
)
from hpmail.extensions import db
from hpmail.outbox.dkim import ascii_domain, signing_keys
from hpmail.outbox.models import DkimKey, DkimState, SendingProfile, ServerSettings, Transport
from hpmail.outbox.policy import domain_of

if TYPE_CHECKING:
    from hpmail.delivery.spf_check import Relay


@dataclass
class DomainReport:
    """The four checks of ``domain``, and what went wrong with the DNS on the way."""

    domain: str
    checks: list[Check]
    notes: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class CheckedDomain:
    """A domain the school sends from: ``name`` in ASCII (IDNA) for the DNS and the URL."""

    name: str
    label: str


def checked_domains(settings: ServerSettings) -> list[CheckedDomain]:
    """Return the sender address's domain, then each allowed domain (``*.x`` lines left out:
    each subdomain that sends is a domain of its own)."""
    labels = [domain_of(settings.sender_address)] if settings.sender_address else []
    labels += [line.strip() for line in (settings.allowed_domains or "").splitlines()]
    found: dict[str, CheckedDomain] = {}
    for label in labels:
        name = ascii_domain(label.lstrip("@"))
        if name and not label.startswith("*") and name not in found:
            found[name] = CheckedDomain(name, label.lstrip("@"))
    return list(found.values())


def sending_transports(settings: ServerSettings) -> list[Transport]:
    """Return the SMTP servers the school's e-mails leave through: the server's, and the sending
    profiles' when users send themselves (their own servers are theirs, not the school's)."""
    found = [settings.transport] if settings.transport is not None else []
    if not settings.delegate:
        found += db.session.scalars(
            select(Transport)
            .join(SendingProfile, SendingProfile.transport_id == Transport.id)
            .order_by(func.lower(SendingProfile.name))
        )
    return [transport for transport in found if transport.host]


def check_domain(domain: str, transports: Sequence[Transport]) -> DomainReport:
    """Check SPF, DKIM, DMARC and MX of ``domain`` for e-mails leaving through ``transports``."""
    # pyspf and dnspython load with the first check, not with every process that has the pages.
    from hpmail.delivery.spf_check import check_spf, relays_of

    notes: list[str] = []
    lookup = Lookup(current_app.config["DOMAIN_CHECK_TIMEOUT_SECONDS"], notes)
    relays = relays_of(transports)
    spf, spf_passes = check_spf(domain, relays, lookup)
    dkim, dkim_domains = check_dkim(domain, relays, lookup)
    authenticated = Authentication(domain, spf_passes, dkim_domains, dkim.state != UNKNOWN)
    checks = [spf, dkim, check_dmarc(domain, authenticated, lookup), check_mx(domain, lookup)]
    if lookup.remaining() <= 0 and not lookup.failed:
        notes.append(_("The checks stopped at their time limit."))
    return DomainReport(domain, checks, notes)


# --- DKIM ---------------------------------------------------------------------------------------

PROVIDER_DKIM_ADVICE = {
    "microsoft": _l(
        "Enable DKIM for this domain in the Microsoft Defender portal (Email & collaboration › "
        "Policies › Email authentication settings › DKIM): it gives the two CNAME records, "
        "selector1 and selector2, to publish."
    ),
    "google": _l(
        "Enable DKIM in the Google Admin console (Apps › Google Workspace › Gmail › Authenticate "
        "email): it generates the TXT record google._domainkey to publish, then start signing."
    ),
}


@dataclass(frozen=True)
class _Signature:
    """What one signer of the domain's e-mails looks like from the DNS."""

    state: str
    finding: str
    record: Record | None = None
    own: bool = False  # hpmail's key (``d=`` its domain), not the provider's


def check_dkim(domain: str, relays: Sequence[Relay], lookup: Lookup) -> tuple[Check, list[str]]:
    """Check hpmail's keys of ``domain`` and the providers' signatures; return the domains whose
    valid signatures receivers will find (``d=``)."""
    # The worker signs with the domain's active keys, else its closest parent's (``d=`` parent).
    signing = signing_keys(domain)
    signer = signing[0].domain if signing else domain
    keys = db.session.scalars(
        select(DkimKey)
        .where(DkimKey.domain == signer, DkimKey.state != DkimState.RETIRED)
        .order_by(DkimKey.created_at, DkimKey.id)
    ).all()
    signatures = [_own_signature(key, lookup) for key in keys if key.state == DkimState.ACTIVE]
    providers = dict.fromkeys(relay.provider for relay in relays if relay.provider)
    signatures += [_provider_signature(p, domain, lookup) for p in providers if p.dkim]
    if not answered(lookup):
        return unknown("dkim", domain), []
    waiting = [key for key in keys if key.state == DkimState.NEW]
    if waiting and all(signature.state != OK for signature in signatures):
        finding = _(
            "hpmail's key “%(key)s” is generated but does not sign yet: publish its record, then "
            "activate it.",
            key=waiting[-1].selector,
        )
        signatures.append(_Signature(WARNING, finding, _record_of(waiting[-1])))
    if not signatures:
        finding = _(
            "No DKIM signature for %(domain)s is known to hpmail: receivers trust unsigned "
            "e-mails less. Generate a key for hpmail to sign with (if your own SMTP server "
            "already signs, with a selector hpmail does not know, leave this as it is).",
            domain=domain,
        )
        signatures.append(_Signature(WARNING, finding))
    states = [signature.state for signature in signatures]
    unsigned = [p for p in providers if p.dkim and p.auth in PROVIDER_DKIM_ADVICE]
    advice = str(PROVIDER_DKIM_ADVICE[unsigned[0].auth]) if unsigned and OK not in states else ""
    check = Check(
        "dkim",
        worst(states),
        [signature.finding for signature in signatures],
        advice,
        [signature.record for signature in signatures if signature.record],
        dkim_page=not advice and worst(states) != OK,
    )
    own = OK in [signature.state for signature in signatures if signature.own]
    providers_sign = OK in [signature.state for signature in signatures if not signature.own]
    return check, [signer] * own + [domain] * providers_sign


def _record_of(key: DkimKey) -> Record:
    return Record(record_name(key), "TXT", record_text(key))


def _own_signature(key: DkimKey, lookup: Lookup) -> _Signature:
    """hpmail signs with an active key: its record must be published, with this public key."""
    found = publication(key, lookup)
    names = {"key": key.selector, "name": record_name(key), "algorithm": key.algorithm.upper()}
    if found.state == "published":
        finding = _(
            "hpmail signs with the key “%(key)s” (%(algorithm)s), published at %(name)s.", **names
        )
        return _Signature(OK, finding, own=True)
    if found.state == "mismatch":
        finding = _(
            "hpmail signs with the key “%(key)s”, but %(name)s publishes another one: receivers "
            "find every signature false.",
            **names,
        )
    else:
        finding = _(
            "hpmail signs with the key “%(key)s”, but %(name)s is not published: receivers "
            "cannot check the signatures.",
            **names,
        )
    return _Signature(ERROR, finding, _record_of(key), own=True)


def _provider_signature(provider: Provider, domain: str, lookup: Lookup) -> _Signature:
    """A provider signs with the domain's own key once its selectors are published (Microsoft
    365: CNAMEs to the tenant's keys; Google: a TXT), else with its own domain."""
    for selector in provider.dkim:
        name = f"{selector}._domainkey.{domain}"
        if lookup.records(name, "CNAME") or any(tags(t).get("p") for t in lookup.texts(name)):
            finding = _(
                "%(provider)s signs the e-mails of %(domain)s: %(name)s is published.",
                provider=provider.name,
                domain=domain,
                name=name,
            )
            return _Signature(OK, finding)
    finding = _(
        "%(provider)s signs with its own domain, not %(domain)s: the signature does not count "
        "for DMARC.",
        provider=provider.name,
        domain=domain,
    )
    return _Signature(WARNING, finding)


# --- MX -----------------------------------------------------------------------------------------


def check_mx(domain: str, lookup: Lookup) -> Check:
    """Check that ``domain`` receives mail: the replies to its e-mails go there."""
    from dns.name import root  # dnspython only when a page asks the DNS (see ``dns``)

    records = sorted(lookup.records(domain, "MX"), key=lambda record: record.preference)
    if not answered(lookup):
        return unknown("mx", domain)
    hosts = [r.exchange.to_text(omit_final_dot=True) for r in records if r.exchange != root]
    if not hosts:
        finding = (
            _("%(domain)s says it receives no e-mail (null MX).", domain=domain)
            if records
            else _("%(domain)s has no MX record.", domain=domain)
        )
        advice = _(
            "The replies to your e-mails, and the receivers' notices, would come back "
            "undelivered: send from a domain that receives e-mail, or publish its MX records."
        )
        return Check("mx", WARNING, [finding], advice)
    finding = _(
        "%(domain)s receives its e-mails at %(hosts)s.", domain=domain, hosts=", ".join(hosts[:4])
    )
    return Check("mx", OK, [finding])
