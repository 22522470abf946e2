"""A domain's published mail settings: Thunderbird's autoconfiguration file, read safely.

The file is someone else's: it is fetched with a deadline and a size cap, from the addresses the
caller checked (``connect_to``: the connection goes to them, not to a second look-up of the name),
following no redirect the caller did not check; it is parsed without DTD nor entities (defusedxml),
so a "billion laughs" file is refused rather than expanded.
"""

from __future__ import annotations

import ipaddress
import time
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urljoin, urlsplit
from xml.etree.ElementTree import ParseError

from defusedxml import DefusedXmlException
from defusedxml.ElementTree import fromstring
from flask_babel import gettext as _

from hpmail.outbox.models import Security

# Thunderbird's socketType, and what hpmail calls it.
SOCKET_TYPES = {"SSL": Security.TLS, "STARTTLS": Security.STARTTLS, "plain": Security.NONE}
MAX_REDIRECTS = 2


class AutoconfigRefused(Exception):
    """The file could not be had or read; the message says why, in the user's language.

    ``absent``: the domain publishes no file there (no such host, nobody listening, 404), which
    is the common case and no news worth showing.
    """

    def __init__(self, message: str, absent: bool = False):
        super().__init__(message)
        self.absent = absent


@dataclass(frozen=True)
class OutgoingServer:
    """One ``<outgoingServer type="smtp">`` of the file, placeholders replaced."""

    host: str
    port: int
    security: str
    username: str
    authentications: tuple[str, ...]


def fetch(
    url: str,
    connect_to: Callable[[str], list[str]],
    deadline: float,
    max_bytes: int,
) -> bytes:
    """Return the body of ``url`` (200 only), following at most two checked redirects.

    ``connect_to(host)`` returns the addresses the caller allows for ``host`` (it raises
    AutoconfigRefused otherwise); the connection goes to the first, and TLS still checks the
    certificate against the host name.
    """
    import urllib3  # ~20 ms to import: only "Trouver les paramètres" fetches a file

    for _hop in range(MAX_REDIRECTS + 1):
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise AutoconfigRefused(_("“%(url)s” is not a web address.", url=url[:200]))
        host = parts.hostname
        address = connect_to(host)[0]
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise AutoconfigRefused(_("No answer in time from %(host)s.", host=host))
        pool_class = (
            urllib3.HTTPSConnectionPool if parts.scheme == "https" else urllib3.HTTPConnectionPool
        )
        tls = (
            {"server_hostname": host, "assert_hostname": host, "cert_reqs": "CERT_REQUIRED"}
            if parts.scheme == "https"
            else {}
        )
        pool = pool_class(
            address,
            parts.port,
            timeout=urllib3.Timeout(connect=remaining, read=remaining),
            retries=False,
            maxsize=1,
            **tls,
        )
        path = parts.path or "/"
        if parts.query:
            path += "?" + parts.query
        netloc_host = f"[{host}]" if _is_ipv6(host) else host
        headers = {
            "Host": netloc_host if parts.port is None else f"{netloc_host}:{parts.port}",
            "Accept": "application/xml, text/xml",
            "User-Agent": "hpmail (autoconfiguration)",
        }
        try:
            response = pool.urlopen(
                "GET", path, headers=headers, redirect=False, preload_content=False
            )
        except urllib3.exceptions.HTTPError as error:
            pool.close()
            raise AutoconfigRefused(
                _("%(host)s could not be reached (%(reason)s).", host=host, reason=_reason(error)),
                # nobody listening is the common "no file here"; a timeout or a TLS failure is news
                absent=isinstance(error, urllib3.exceptions.NewConnectionError),
            ) from None
        try:
            if response.status in (301, 302, 303, 307, 308):
                location = response.headers.get("Location", "")
                next_url = urljoin(url, location)
                if parts.scheme == "https" and urlsplit(next_url).scheme != "https":
                    raise AutoconfigRefused(
                        _("%(host)s redirects to an unencrypted address.", host=host)
                    )
                url = next_url
                continue
            if response.status != 200:
                raise AutoconfigRefused(
                    _("%(host)s answered %(status)d.", host=host, status=response.status),
                    absent=response.status == 404,
                )
            return _read_capped(response, host, deadline, max_bytes)
        finally:
            response.release_conn()
            pool.close()
    raise AutoconfigRefused(_("Too many redirects."))


def _read_capped(response, host: str, deadline: float, max_bytes: int) -> bytes:
    import urllib3

    body = bytearray()
    try:
        while len(body) <= max_bytes:
            if time.monotonic() > deadline:
                raise AutoconfigRefused(_("No answer in time from %(host)s.", host=host))
            chunk = response.read(8192)
            if not chunk:
                return bytes(body)
            body += chunk
    except urllib3.exceptions.HTTPError as error:
        raise AutoconfigRefused(
            _("%(host)s could not be reached (%(reason)s).", host=host, reason=_reason(error))
        ) from None
    raise AutoconfigRefused(
        _(
            "The file of %(host)s is larger than %(size)d KB: it is not read.",
            host=host,
            size=max_bytes // 1024,
        )
    )


def _reason(error: Exception) -> str:
    reason = getattr(error, "reason", None) or error
    return str(reason).split(": ", 1)[-1][:200]


def _is_ipv6(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).version == 6
    except ValueError:
        return False


def outgoing_servers(document: bytes, address: str) -> list[OutgoingServer]:
    """Return the SMTP servers a Thunderbird autoconfiguration file gives for ``address``."""
    try:
        root = fromstring(document, forbid_dtd=True, forbid_entities=True, forbid_external=True)
    except DefusedXmlException:
        raise AutoconfigRefused(
            _("The file declares a DTD or entities, which are refused: it is not read.")
        ) from None
    except ParseError:
        raise AutoconfigRefused(_("The file is not valid XML.")) from None
    if root.tag != "clientConfig":
        raise AutoconfigRefused(_("The file is not an autoconfiguration file."))
    local_part, _at, domain = address.rpartition("@")
    placeholders = {
        "%EMAILADDRESS%": address,
        "%EMAILLOCALPART%": local_part,
        "%EMAILDOMAIN%": domain,
    }

    def text(element, name: str) -> str:
        value = (element.findtext(name) or "").strip()
        for placeholder, replacement in placeholders.items():
            value = value.replace(placeholder, replacement)
        return value

    servers = []
    for element in root.iterfind("emailProvider/outgoingServer"):
        if element.get("type") != "smtp":
            continue
        security = SOCKET_TYPES.get(text(element, "socketType"))
        port = text(element, "port")
        host = text(element, "hostname")
        if security is None or not port.isdigit() or not 0 < int(port) < 65536 or not host:
            continue
        authentications = tuple(
            (item.text or "").strip() for item in element.iterfind("authentication")
        )
        servers.append(
            OutgoingServer(host, int(port), security, text(element, "username"), authentications)
        )
    return servers
