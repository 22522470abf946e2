"""DKIM keys of the allowed domains: generated, published, checked, activated, retired, deleted.

The one place for DKIM key rules. A key's record is published as TXT at
``<selector>._domainkey.<domain>``: ``v=DKIM1; k=rsa; p=<base64 of the public key>``
(``k=ed25519`` for an Ed25519 key, RFC 8463). A record holding another ``p=`` is a mismatch:
receivers would fail every signature, so a key is activated only once its record is published
and matching. Activating a key retires the domain's active key of the same algorithm (rotation
with two selectors); the worker signs with the active keys (``hpmail.outbox.dkim``).
"""

from __future__ import annotations

import base64
import logging
from dataclasses import dataclass

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, rsa
from flask_babel import gettext as _
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from hpmail.auth.models import User
from hpmail.core.forms import InputRefused
from hpmail.core.time import utcnow
from hpmail.delivery.dns import Lookup
from hpmail.extensions import db
from hpmail.outbox.dkim import ascii_domain
from hpmail.outbox.models import DkimKey, DkimState
from hpmail.outbox.secrets import encrypt_secret

log = logging.getLogger(__name__)

ALGORITHMS = ("rsa", "ed25519")
RSA_BITS = 2048
TXT_STRING_MAX = 255  # the longest string of a TXT record; a longer value is split (RFC 1035)
RECORD_NAME_MAX = 253
KEYS_PER_DOMAIN = 10  # two selectors rotate; a few retired keys wait to be deleted


class DkimRefused(InputRefused):
    """A DKIM key action refused, with the reason in French."""


class NotPublished(DkimRefused):
    """A key not activated: ``found`` is what the DNS holds at its name (nothing, another key)."""

    def __init__(self, message: str, found: Publication) -> None:
        super().__init__(message)
        self.found = found


# --- the record a key publishes ----------------------------------------------------------------


def record_name(key: DkimKey) -> str:
    """Return the DNS name the key's record is published at."""
    return f"{key.selector}._domainkey.{key.domain}"


def record_text(key: DkimKey) -> str:
    """Return the TXT record to publish for ``key``."""
    return f"v=DKIM1; k={key.algorithm}; p={key.public_key}"


def record_strings(key: DkimKey) -> list[str]:
    """Return the record cut into strings of at most 255 characters, as a zone file writes it."""
    text = record_text(key)
    return [text[start : start + TXT_STRING_MAX] for start in range(0, len(text), TXT_STRING_MAX)]


def zone_line(key: DkimKey) -> str:
    """Return the record as a zone file line (BIND): each string quoted, within parentheses."""
    strings = " ".join(f'"{piece}"' for piece in record_strings(key))
    return f"{record_name(key)}. IN TXT ( {strings} )"


def tags(text: str) -> dict[str, str]:
    """Return the tags of a DKIM (or DMARC) record: ``a=1; b = 2`` gives {"a": "1", "b": "2"}."""
    found = {}
    for item in text.split(";"):
        name, equals, value = item.partition("=")
        if equals:
            found.setdefault(name.strip().lower(), "".join(value.split()))
    return found


@dataclass(frozen=True)
class Publication:
    """What the DNS holds for a key: ``state`` is published, missing or mismatch."""

    state: str
    found: str = ""  # the record read, when there is one


def publication(key: DkimKey, lookup: Lookup) -> Publication:
    """Look the key's record up and say whether it is published with this very public key."""
    records = [text for text in lookup.texts(record_name(key)) if "p=" in text]
    for text in records:
        values = tags(text)
        if values.get("p") == key.public_key and values.get("k", "rsa") == key.algorithm:
            return Publication("published", text)
    if records:
        return Publication("mismatch", records[0])
    return Publication("missing")


# --- which domains have keys -------------------------------------------------------------------


def dkim_domain(name: str, allowed_domains: str) -> str | None:
    """Return the domain whose keys the page ``name`` shows, or None when it is not allowed.

    A line ``*.univ-exemple.fr`` allows the subdomains: their keys are ``univ-exemple.fr``'s,
    the worker signing a subdomain's e-mails with its closest parent's keys (``d=`` aligns with
    the From under DMARC's relaxed alignment).
    """
    wanted = ascii_domain(name.strip().removeprefix("*."))
    for line in allowed_domains.splitlines():
        domain = ascii_domain(line.strip().lstrip("@").removeprefix("*."))
        if domain and domain == wanted:
            return domain
    return None


def dkim_domains(allowed_domains: str) -> list[str]:
    """Return the domains that may have DKIM keys, in the order of the allowed domains."""
    found = (dkim_domain(line, allowed_domains) for line in allowed_domains.splitlines())
    return list(dict.fromkeys(domain for domain in found if domain))


def keys_of(domain: str) -> list[DkimKey]:
    """Return the domain's keys: active first, then new, then retired, newest first."""
    order = {DkimState.ACTIVE: 0, DkimState.NEW: 1, DkimState.RETIRED: 2}
    keys = db.session.scalars(
        select(DkimKey).where(DkimKey.domain == domain).order_by(DkimKey.created_at.desc())
    ).all()
    return sorted(keys, key=lambda key: order.get(key.state, 3))


def key_of(domain: str, key_id: int | None) -> DkimKey | None:
    """Return the key ``key_id`` if it belongs to ``domain`` (another domain's key is none)."""
    key = db.session.get(DkimKey, key_id) if key_id else None
    return key if key is not None and key.domain == domain else None


def version(key: DkimKey) -> str:
    """Return what a page's button remembers of the key: any change since makes it stale.

    A replayed « Activer » of a key retired since would otherwise activate it again and retire
    its successor; a stale button changes nothing.
    """
    moments = (key.created_at, key.activated_at, key.retired_at)
    stamp = max(moment for moment in moments if moment is not None)
    return f"{key.state}-{stamp:%Y%m%d%H%M%S%f}"


# --- generation ----------------------------------------------------------------------------------


def new_key_pair(algorithm: str) -> tuple[str, str]:
    """Return (private key as dkimpy reads it, the record's ``p=`` value) for ``algorithm``.

    RSA: the private key in PEM (PKCS#1), ``p=`` the base64 DER SubjectPublicKeyInfo.
    Ed25519 (RFC 8463): the private key is the base64 32-byte seed, ``p=`` the base64 raw
    32-byte public key.
    """
    if algorithm == "rsa":
        private = rsa.generate_private_key(public_exponent=65537, key_size=RSA_BITS)
        pem = private.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.TraditionalOpenSSL,
            serialization.NoEncryption(),
        ).decode("ascii")
        public = private.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        return pem, base64.b64encode(public).decode("ascii")
    private = ed25519.Ed25519PrivateKey.generate()
    seed = private.private_bytes(
        serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption()
    )
    public = private.public_key().public_bytes(
        serialization.Encoding.Raw, serialization.PublicFormat.Raw
    )
    return base64.b64encode(seed).decode("ascii"), base64.b64encode(public).decode("ascii")


def generate(domain: str, selector: str, algorithm: str, actor: User) -> DkimKey:
    """Generate a key of ``domain`` under ``selector`` (a checked DNS name, lower-case).

    The private key is stored Fernet-encrypted and never shown again; the key starts as new,
    signing nothing until it is activated.
    """
    if algorithm not in ALGORITHMS:
        raise DkimRefused(_("Choose RSA or Ed25519."), field="algorithm")
    if len(f"{selector}._domainkey.{domain}") > RECORD_NAME_MAX:
        raise DkimRefused(
            _("This selector is too long for this domain: choose a shorter one."),
            field="selector",
        )
    taken = _selector_taken(domain, selector)
    if taken is not None:
        raise taken
    if len(keys_of(domain)) >= KEYS_PER_DOMAIN:
        raise DkimRefused(
            _(
                "This domain already has %(count)d keys: delete a retired key first.",
                count=KEYS_PER_DOMAIN,
            )
        )
    private, public = new_key_pair(algorithm)
    key = DkimKey(
        domain=domain,
        selector=selector,
        algorithm=algorithm,
        private_key_encrypted=encrypt_secret(private),
        public_key=public,
        state=DkimState.NEW,
        created_at=utcnow(),
    )
    try:
        with db.session.begin_nested():  # two admins choosing the same selector at once
            db.session.add(key)
    except IntegrityError:
        raise _selector_taken(domain, selector) or DkimRefused(_("Try again.")) from None
    log.info("%s generated the DKIM key %s (%s) of %s", actor.login, selector, algorithm, domain)
    return key


def _selector_taken(domain: str, selector: str) -> DkimRefused | None:
    used = db.session.scalar(
        select(DkimKey.id).where(DkimKey.domain == domain, DkimKey.selector == selector)
    )
    if used is None:
        return None
    return DkimRefused(
        _(
            "The selector « %(selector)s » is already used by a key of this domain: "
            "choose another one.",
            selector=selector,
        ),
        field="selector",
    )


# --- publication, activation, retirement, deletion -----------------------------------------------


def check(key: DkimKey, lookup: Lookup) -> Publication:
    """Look the key's record up and remember when, and whether it was published and matching.

    A DNS server that did not answer says nothing of the record: nothing is remembered then.
    """
    found = publication(key, lookup)
    if lookup.failed:
        return found
    key.checked_at = utcnow()
    key.published = found.state == "published"
    db.session.flush()
    return found


def activate(key: DkimKey, lookup: Lookup, actor: User) -> list[DkimKey]:
    """Sign with ``key`` from now on, once its record is published; return the keys it retires.

    The record is looked up now, whatever an earlier check said: a key whose record receivers
    cannot find would make every signature fail. The domain's active key of the same algorithm
    is retired (its record should stay published a few days, for the e-mails still on their way).
    """
    if key.state == DkimState.ACTIVE:
        return []
    # Two activations at once in the same domain take their turns (PostgreSQL): the second sees
    # the first's key active and retires it, so that one key of an algorithm signs, not two.
    db.session.execute(select(DkimKey.id).where(DkimKey.domain == key.domain).with_for_update())
    found = check(key, lookup)
    if found.state != "published":
        raise NotPublished(unpublished_reason(key, found, lookup), found)
    now = utcnow()
    replaced = db.session.scalars(
        select(DkimKey).where(
            DkimKey.domain == key.domain,
            DkimKey.algorithm == key.algorithm,
            DkimKey.state == DkimState.ACTIVE,
            DkimKey.id != key.id,
        )
    ).all()
    for old in replaced:
        old.state, old.retired_at = DkimState.RETIRED, now
    key.state, key.activated_at, key.retired_at = DkimState.ACTIVE, now, None
    db.session.flush()
    log.info(
        "%s activated the DKIM key %s of %s (retired: %s)",
        actor.login,
        key.selector,
        key.domain,
        ", ".join(old.selector for old in replaced) or "none",
    )
    return list(replaced)


def unpublished_reason(key: DkimKey, found: Publication, lookup: Lookup) -> str:
    """Say in French why the key cannot be activated: its record missing, or another one."""
    if lookup.notes:
        return " ".join([_("The key was not activated."), *lookup.notes])
    if found.state == "mismatch":
        return _(
            "The key was not activated: the record found at %(name)s holds another public key. "
            "Publish the record shown for this key, then try again.",
            name=record_name(key),
        )
    return _(
        "The key was not activated: no DKIM record was found at %(name)s. Publish the record "
        "shown for this key (the DNS may take a while to show it), then try again.",
        name=record_name(key),
    )


def retire(key: DkimKey, actor: User) -> None:
    """Stop signing with ``key``; its record may stay published while e-mails are on their way."""
    if key.state == DkimState.RETIRED:
        return
    key.state, key.retired_at = DkimState.RETIRED, utcnow()
    db.session.flush()
    log.info("%s retired the DKIM key %s of %s", actor.login, key.selector, key.domain)


def delete(key: DkimKey, actor: User) -> None:
    """Delete a key that signs nothing (new or retired); an active key is retired first."""
    if key.state == DkimState.ACTIVE:
        raise DkimRefused(_("An active key cannot be deleted: retire it first."))
    db.session.delete(key)
    db.session.flush()
    log.info("%s deleted the DKIM key %s of %s", actor.login, key.selector, key.domain)
