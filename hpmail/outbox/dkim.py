"""DKIM signatures: each e-mail signed with the active keys of its From address's domain.

The admin generates, publishes and activates the keys (``hpmail.delivery.dkim_keys``); the
worker adds one DKIM-Signature per active key (RSA and Ed25519 both when both are active,
RFC 8463), relaxed/relaxed, when it builds each message (``send._message``); the test-send of
« Tester l'envoi d'e-mails » is signed the same way.

The active keys are read again for each mailing of each batch (one small query), so that a key
activated or retired in the admin signs, or stops signing, without restarting the worker; their
private keys are decrypted once per worker process and kept, by their encrypted bytes (a new key,
even under a reused id, is decrypted anew).

A key that cannot sign (its private key no longer decrypts after the instance's Fernet key
changed, or dkimpy refuses it) does not hold the e-mail back: the e-mail goes without that
signature, and the error is logged. Retrying would not help (the same key fails the same way
until the admin acts), so the e-mail would wait and then fail after the give-up time: certainly
lost, whereas unsigned it still passes DMARC through SPF when the school's server is in its SPF
record, as it usually is. The admin sees the key's problem in the worker's log.

dkimpy is pure Python: a signature costs about 20 ms for an e-mail of 140 kB, and 100 ms more
for each further MB (its body read again for each e-mail, even where the mailing shares it).
"""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from dataclasses import dataclass

from cryptography.fernet import InvalidToken
from sqlalchemy import select

from hpmail.extensions import db
from hpmail.outbox.models import DkimKey, DkimState
from hpmail.outbox.secrets import decrypt_secret

log = logging.getLogger(__name__)

# The headers a signature covers, when the message has them. Each is listed once more than the
# message holds it ("oversigning", RFC 6376 8.15): a header added later, such as a second From
# or Subject shown by a mail reader, or a Reply-To that the school's e-mail did not have (replies
# diverted by someone who replays a genuine e-mail), breaks the signature. hpmail's messages go
# through relays that add none of these, so oversigning costs nothing.
SIGNED_HEADERS = (
    "from",
    "reply-to",
    "to",
    "cc",
    "subject",
    "date",
    "message-id",
    "mime-version",
    "content-type",
    "content-transfer-encoding",
    "content-language",
    "auto-submitted",
)
ALGORITHM_NAMES = {"rsa": b"rsa-sha256", "ed25519": b"ed25519-sha256"}
CANONICALIZATION = (b"relaxed", b"relaxed")


@dataclass(frozen=True)
class SigningKey:
    """An active key, decrypted: ``private_key`` as dkimpy reads it (PEM, or an Ed25519 seed)."""

    domain: str
    selector: str
    algorithm: str
    private_key: bytes


# Decrypted private keys by their encrypted bytes; None for a key that does not decrypt.
_decrypted: OrderedDict[bytes, bytes | None] = OrderedDict()
_CACHE_SIZE = 64
_cache_lock = threading.Lock()  # a consumer may run several worker threads


def ascii_domain(domain: str) -> str | None:
    """Return ``domain`` as the DNS and ``d=`` write it: lower-case A-labels (IDNA), or None."""
    try:
        return domain.strip().lower().rstrip(".").encode("idna").decode("ascii")
    except UnicodeError:
        return None


def _domain_and_parents(domain: str) -> list[str]:
    """Return ``a.b.fr``, ``b.fr``: the domain and its parents, never a top-level domain alone."""
    labels = (ascii_domain(domain) or "").split(".")
    return [".".join(labels[start:]) for start in range(len(labels) - 1)]


def signing_keys(from_domain: str) -> list[SigningKey]:
    """Return the keys that sign an e-mail from ``from_domain``: the active keys of the domain,
    or else of its closest parent that has some (a subdomain of ``*.univ-exemple.fr``)."""
    candidates = _domain_and_parents(from_domain)
    if not candidates:
        return []
    rows = db.session.execute(
        select(
            DkimKey.id,
            DkimKey.domain,
            DkimKey.selector,
            DkimKey.algorithm,
            DkimKey.private_key_encrypted,
        )
        .where(DkimKey.state == DkimState.ACTIVE, DkimKey.domain.in_(candidates))
        .order_by(DkimKey.algorithm, DkimKey.id)
    ).all()
    for domain in candidates:  # the closest domain first
        keys = [
            SigningKey(row.domain, row.selector, row.algorithm, private)
            for row in rows
            if row.domain == domain
            and (private := _private_key(row.id, row.private_key_encrypted)) is not None
        ]
        if keys:
            return keys
    return []


def _private_key(key_id: int, encrypted: bytes) -> bytes | None:
    """Return the key's private key, decrypted once per worker process (None if it cannot be)."""
    token = bytes(encrypted)
    with _cache_lock:
        if token in _decrypted:
            _decrypted.move_to_end(token)
            return _decrypted[token]
    try:
        private = decrypt_secret(token).encode("ascii")
    except (InvalidToken, ValueError):
        log.error("the DKIM key %s cannot be decrypted: e-mails go without its signature", key_id)
        private = None
    with _cache_lock:
        _decrypted[token] = private
        while len(_decrypted) > _CACHE_SIZE:
            _decrypted.popitem(last=False)
    return private


def header_names(message: bytes) -> list[str]:
    """Return the names of the message's header fields, lower-case, in order."""
    head = message.split(b"\r\n\r\n", 1)[0]
    names = []
    for line in head.split(b"\r\n"):
        if line and line[:1] not in (b" ", b"\t"):
            names.append(line.partition(b":")[0].strip().decode("ascii", "replace").lower())
    return names


def signed_headers(message: bytes) -> list[bytes]:
    """Return the ``h=`` list: each header of ``SIGNED_HEADERS`` as many times as the message
    holds it, plus once (the oversigning that makes an added one break the signature)."""
    names = header_names(message)
    return [name.encode() for name in SIGNED_HEADERS for _ in range(names.count(name) + 1)]


def sign(message: bytes, keys: list[SigningKey]) -> bytes:
    """Return ``message`` with one DKIM-Signature per key (a key that fails is left out, logged).

    ``message`` is CRLF-separated, as the MIME builder writes it for SMTP.
    """
    if not keys:
        return message
    include = signed_headers(message)
    signatures = []
    for key in keys:
        try:
            signatures.append(signature(message, key, include))
        except Exception:  # noqa: BLE001 - a key that cannot sign never holds the e-mail back
            log.exception(
                "the DKIM key %s of %s cannot sign: the e-mail goes without its signature",
                key.selector,
                key.domain,
            )
    return b"".join(signatures) + message


def signature(message: bytes, key: SigningKey, include: list[bytes]) -> bytes:
    """Return the DKIM-Signature field of ``key`` for ``message``; raise if it cannot sign."""
    import dkim  # dkimpy and PyNaCl (~40 ms): imported by the first e-mail a process signs

    return dkim.sign(
        message,
        key.selector.encode("ascii"),
        key.domain.encode("ascii"),
        key.private_key,
        canonicalize=CANONICALIZATION,
        signature_algorithm=ALGORITHM_NAMES[key.algorithm],
        include_headers=include,
    )
