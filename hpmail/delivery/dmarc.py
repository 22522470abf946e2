"""DMARC of a sender domain: its record, its policy, and whether SPF or DKIM authenticates the
domain of the From (alignment, RFC 7489 3.1).

The record is parsed here rather than with checkdmarc: a DMARC record is a few ``tag=value``
pairs (the same parser as DKIM's, ``dkim_keys.tags``), and checkdmarc would bring its own DNS
resolver and its own network calls (and pyleri, expiringdict…), where every look-up of these
checks goes through one ``dns.Lookup`` under one deadline. The organizational domain comes from
the Public Suffix List (``publicsuffixlist``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache

from flask_babel import gettext as _
from publicsuffixlist import PublicSuffixList

from hpmail.delivery.dkim_keys import tags
from hpmail.delivery.dns import Lookup
from hpmail.delivery.findings import ERROR, OK, UNKNOWN, WARNING, Check, Record, answered, unknown

POLICIES = ("none", "quarantine", "reject")


@dataclass(frozen=True)
class Authentication:
    """What receivers authenticate on an e-mail of a domain: the envelope sender's domain when
    SPF passes (None: not known), and the ``d=`` of its valid DKIM signatures."""

    spf_domain: str
    spf_passes: bool | None
    dkim_domains: Sequence[str] = ()
    dkim_known: bool = True


@cache
def _public_suffixes() -> PublicSuffixList:
    return PublicSuffixList()


def organizational_domain(domain: str) -> str:
    """Return the domain registered under a public suffix (RFC 7489 3.2): lycee.fr for a.lycee.fr.

    A name under no known suffix (a school's internal domain) is its own organizational domain.
    """
    return _public_suffixes().privatesuffix(domain) or domain


def aligned(authenticated: str, from_domain: str, mode: str) -> bool:
    """Say whether ``authenticated`` aligns with the From's domain: strict ("s"), the same
    domain; relaxed ("r"), the same organizational domain."""
    if mode == "s":
        return authenticated == from_domain
    return organizational_domain(authenticated) == organizational_domain(from_domain)


def dmarc_passes(domain: str, authenticated: Authentication, values: dict[str, str]) -> bool | None:
    """Say whether an e-mail from ``domain`` passes DMARC (None: it depends on what is unknown)."""
    if any(aligned(d, domain, values.get("adkim", "r")) for d in authenticated.dkim_domains):
        return True
    spf_aligned = aligned(authenticated.spf_domain, domain, values.get("aspf", "r"))
    if spf_aligned and authenticated.spf_passes:
        return True
    if (spf_aligned and authenticated.spf_passes is None) or not authenticated.dkim_known:
        return None
    return False


def check_dmarc(domain: str, authenticated: Authentication, lookup: Lookup) -> Check:
    """Check the DMARC record of ``domain`` (or of its organizational domain), its policy, and
    that SPF or DKIM authenticates the From's domain."""
    name, texts = _dmarc_records(domain, lookup)
    if not answered(lookup):
        return unknown("dmarc", domain)
    starting = Record(
        f"_dmarc.{domain}", "TXT", f"v=DMARC1; p=none; rua=mailto:postmaster@{domain}"
    )
    if not texts:
        finding = _(
            "%(domain)s publishes no DMARC record: Gmail, Yahoo and Outlook.com ask for one from "
            "the senders of many e-mails.",
            domain=domain,
        )
        advice = _(
            "Publish this record to begin: it changes nothing to delivery and sends you daily "
            "reports (rua: replace postmaster@ with a mailbox someone reads)."
        )
        return Check("dmarc", WARNING, [finding], advice, [starting])
    if len(texts) > 1:
        finding = _(
            "%(name)s holds %(count)d DMARC records: receivers then ignore them all.",
            name=name,
            count=len(texts),
        )
        return Check("dmarc", ERROR, [finding], _("Keep only one."))
    values = {key: value.lower() for key, value in tags(texts[0]).items()}
    problem = _dmarc_problem(values)
    if problem:
        finding = _(
            "The DMARC record at %(name)s is invalid: %(problem)s.", name=name, problem=problem
        )
        advice = _("Replace it, for example with this record to begin:")
        return Check("dmarc", ERROR, [finding], advice, [Record(name, "TXT", starting.value)])
    inherited = name != f"_dmarc.{domain}"
    policy = values.get("sp", values["p"]) if inherited else values["p"]
    findings = [
        _(
            "DMARC record at %(name)s: policy “%(policy)s”.",
            name=name,
            policy=policy,
        )
    ]
    passes = dmarc_passes(domain, authenticated, values)
    if passes is None:
        findings.append(
            _(
                "Whether the e-mails of %(domain)s pass DMARC depends on what could not be "
                "checked above.",
                domain=domain,
            )
        )
        return Check("dmarc", UNKNOWN, findings)
    if not passes:
        findings.append(
            _(
                "Neither SPF nor DKIM authenticates %(domain)s, the domain of the From: the "
                "e-mails fail DMARC, and receivers apply the policy “%(policy)s” or put them "
                "in spam.",
                domain=domain,
                policy=policy,
            )
        )
        findings.append(_authenticated_words(authenticated, values))
        advice = _(
            "Fix the SPF record (so that it authorizes the SMTP server) or the DKIM signature "
            "above: one of the two, aligned with the From, is enough."
        )
        return Check("dmarc", ERROR, findings, advice)
    findings.append(
        _("The e-mails from %(domain)s pass DMARC (SPF or DKIM aligned).", domain=domain)
    )
    if policy != "none":
        return Check("dmarc", OK, findings)
    advice = _(
        "“none” is the right start: receivers only send reports. Once the reports show that "
        "all your e-mails pass for a few weeks, ask receivers to put the others in spam:"
    )
    return Check("dmarc", WARNING, findings, advice, [Record(name, "TXT", _quarantining(texts[0]))])


def _authenticated_words(authenticated: Authentication, values: dict[str, str]) -> str:
    """Say what SPF and DKIM authenticate, for the admin to see what does not align."""
    nothing = _("nothing")
    return _(
        "SPF authenticates: %(spf)s; DKIM signs for: %(dkim)s (alignment: aspf=%(aspf)s, "
        "adkim=%(adkim)s).",
        spf=authenticated.spf_domain if authenticated.spf_passes else nothing,
        dkim=", ".join(authenticated.dkim_domains) or nothing,
        aspf=values.get("aspf", "r"),
        adkim=values.get("adkim", "r"),
    )


def _dmarc_records(domain: str, lookup: Lookup) -> tuple[str, list[str]]:
    """Return where the DMARC records of ``domain`` are and what they say: ``_dmarc.<domain>``,
    else ``_dmarc.<organizational domain>`` (RFC 7489 6.6.3)."""
    names = dict.fromkeys([f"_dmarc.{domain}", f"_dmarc.{organizational_domain(domain)}"])
    for name in names:
        texts = [t.strip() for t in lookup.texts(name) if t.strip().lower().startswith("v=dmarc1")]
        if texts or not answered(lookup):
            return name, texts
    return f"_dmarc.{domain}", []


def _quarantining(record: str) -> str:
    """Return ``record`` with the policy p=quarantine, its other tags as they are."""
    parts = [part.strip() for part in record.split(";") if part.strip()]
    return "; ".join("p=quarantine" if part.lower().startswith("p=") else part for part in parts)


def _dmarc_problem(values: dict[str, str]) -> str:
    """Return what makes a DMARC record invalid, in French ("" when it is valid)."""
    if values.get("p") not in POLICIES:
        return _("its policy p= must be none, quarantine or reject")
    if values.get("sp", "none") not in POLICIES:
        return _("its policy sp= must be none, quarantine or reject")
    if values.get("adkim", "r") not in ("r", "s") or values.get("aspf", "r") not in ("r", "s"):
        return _("adkim= and aspf= must be r (relaxed) or s (strict)")
    percent = values.get("pct", "100")
    if not percent.isdigit() or int(percent) > 100:
        return _("pct= must be a number from 0 to 100")
    return ""
