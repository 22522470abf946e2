"""From policy (allowed domains) and the header-value rules every e-mail obeys."""

from __future__ import annotations

import re
from dataclasses import dataclass
from email.errors import HeaderParseError
from email.headerregistry import Address as HeaderAddress

from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l

from hpmail.core.text import InvalidHeader, refuse_unsafe

ADDRESS = _l("Address")
NAME = _l("Name")
# The common shape of an address (dot-atom@domain.tld): checked without the full parser.
SIMPLE_ADDRESS = re.compile(
    r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*"
    r"@(?:[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?\.)+[A-Za-z0-9-]{2,}"
)


def checked_address(address: str, name: str = "") -> str:
    """Return ``address`` without surrounding spaces if it can go in a header, else raise."""
    refuse_unsafe(address, ADDRESS)
    refuse_unsafe(name, NAME)
    address = address.strip()
    if SIMPLE_ADDRESS.fullmatch(address):
        return address
    return header_address(address, name).addr_spec


def header_address(address: str, name: str = "") -> HeaderAddress:
    """Return ``address`` parsed as a header address, or raise ``InvalidHeader``."""
    refuse_unsafe(address, ADDRESS)
    refuse_unsafe(name, NAME)
    try:
        parsed = HeaderAddress(display_name=name or "", addr_spec=address.strip())
    except (HeaderParseError, ValueError, IndexError) as error:
        raise InvalidHeader(_("Invalid e-mail address: %(address)s", address=address)) from error
    if not parsed.username or not parsed.domain or "." not in parsed.domain:
        raise InvalidHeader(_("Invalid e-mail address: %(address)s", address=address))
    return parsed


def domain_of(address: str) -> str:
    return address.rpartition("@")[2].strip().lower()


def allowed_domain(address: str, allowed_domains: str) -> bool:
    """Tell whether ``address`` is in an allowed domain (one per line, ``*.x``: subdomains)."""
    domain = domain_of(address)
    for line in allowed_domains.splitlines():
        pattern = line.strip().lower()
        if not pattern:
            continue
        if pattern.startswith("*."):
            if domain.endswith(pattern[1:]):
                return True
        elif domain == pattern.lstrip("@"):
            return True
    return False


@dataclass(frozen=True)
class Identity:
    """Who an e-mail says it is from: the From and Reply-To headers and the envelope sender."""

    from_address: HeaderAddress
    reply_to: HeaderAddress | None
    envelope_from: str


def sending_identity(
    *,
    name: str,
    address: str,
    reply_to: str | None,
    server_name: str,
    server_address: str,
    allowed_domains: str,
) -> Identity:
    """Apply the From policy: outside the allowed domains, send as "<name> via <server>"."""
    own = HeaderAddress(display_name=name or "", addr_spec=address)
    outside = (
        server_address
        and address.lower() != server_address.lower()
        and not allowed_domain(address, allowed_domains)
    )
    if not outside:
        reply = HeaderAddress(addr_spec=reply_to) if reply_to else None
        return Identity(own, reply, address)
    shown = f"{name or address} via {server_name or server_address}"
    return Identity(
        HeaderAddress(display_name=shown, addr_spec=server_address),
        HeaderAddress(display_name="" if reply_to else name or "", addr_spec=reply_to or address),
        server_address,
    )
