"""Where a user's own SMTP server may point: never inside the server's network unless allowed.

A user who types their own SMTP server could otherwise make hpmail probe the machines around it
(127.0.0.1, the cloud metadata service 169.254.169.254, the school's private ranges). The admin's
server settings and sending profiles may point anywhere: the admin may run a relay on 127.0.0.1.
"""

from __future__ import annotations

import ipaddress
import socket

from flask_babel import gettext as _
from sqlalchemy import select

from hpmail.auth.models import Role, User
from hpmail.extensions import db
from hpmail.outbox.models import SendingProfile, ServerSettings, Transport, UserTransport

# A user's own server answers within this many seconds, or the test-send stops waiting.
USER_TIMEOUT_CAP = 60


class InternalAddressRefused(OSError):
    """A user's own SMTP server resolves to an internal address (the message says so)."""


def is_internal(address: str) -> bool:
    """Say whether ``address`` is loopback, link-local, private, reserved: anything not public."""
    ip = ipaddress.ip_address(address.split("%", 1)[0])  # drop an IPv6 zone ("fe80::1%eth0")
    if ip.version == 6 and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return not ip.is_global or ip.is_multicast


def resolve(host: str) -> list[str]:
    """Return every address ``host`` resolves to (socket.gaierror when it does not)."""
    infos = socket.getaddrinfo(host.strip("[]"), None, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(info[4][0] for info in infos))


def refuse_internal(host: str) -> list[str]:
    """Return the addresses of ``host``; raise InternalAddressRefused if one is internal.

    Every address is checked, not the first: a name with one public and one private address
    would otherwise reach the private one on the next lookup.
    """
    addresses = resolve(host)
    if any(is_internal(address) for address in addresses):
        raise InternalAddressRefused(
            _(
                "The SMTP server “%(host)s” is inside the school's network (a local, private or "
                "reserved address): only the administrator may choose such a server. Use a "
                "sending profile or your provider's SMTP server.",
                host=host,
            )
        )
    return addresses


def internal_addresses_allowed() -> bool:
    """Say whether the admin lets users point their own SMTP server inside the network."""
    from hpmail.outbox.settings import server_settings

    return bool(server_settings().allow_internal_hosts)


def restricted_user(user: User | None) -> bool:
    """Say whether ``user``'s own SMTP server must be public (not for admins, nor when allowed)."""
    if user is None or user.role == Role.ADMIN:
        return False
    return not internal_addresses_allowed()


def is_restricted(transport: Transport) -> bool:
    """Say whether ``transport`` is a non-admin user's own server, held to public addresses.

    A transport that is also the server's or a profile's was set by the admin: never restricted.
    """
    if transport.id is None:
        return False
    set_by_admin = db.session.scalar(
        select(ServerSettings.id).where(ServerSettings.transport_id == transport.id).limit(1)
    ) or db.session.scalar(
        select(SendingProfile.id).where(SendingProfile.transport_id == transport.id).limit(1)
    )
    if set_by_admin:
        return False
    owner = db.session.scalar(
        select(User)
        .join(UserTransport, UserTransport.user_id == User.id)
        .where(UserTransport.transport_id == transport.id)
        .limit(1)
    )
    return restricted_user(owner)


def check_destination(transport: Transport) -> list[str] | None:
    """Refuse to connect a non-admin user's own SMTP server to an internal address.

    Return the checked addresses of such a server, which the connection must use (a second
    look-up could answer otherwise), or None for a server the admin set.
    """
    if is_restricted(transport):
        return refuse_internal(transport.host)
    return None
