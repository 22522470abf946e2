"""The DKIM record of a key: what the admin publishes, and whether the DNS holds it.

A key's record is published as TXT at ``<selector>._domainkey.<domain>``:
``v=DKIM1; k=rsa; p=<base64 of the public key>`` (``k=ed25519`` for an Ed25519 key, RFC 8463).
A record holding another ``p=`` is a mismatch: receivers would fail every signature.
"""

from __future__ import annotations

from dataclasses import dataclass

from hpmail.delivery.dns import Lookup
from hpmail.outbox.models import DkimKey


def record_name(key: DkimKey) -> str:
    """Return the DNS name the key's record is published at."""
    return f"{key.selector}._domainkey.{key.domain}"


def record_text(key: DkimKey) -> str:
    """Return the TXT record to publish for ``key``."""
    return f"v=DKIM1; k={key.algorithm}; p={key.public_key}"


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
