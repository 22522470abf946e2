""" "Trouver les paramètres": the SMTP settings of an address's domain, and where each comes from.

A user should not have to know SMTP settings. From the address alone, hpmail looks, in order:
the known providers (``providers.toml``, shipped with its sources), the domain's Thunderbird
autoconfiguration file, its RFC 6186 SRV records (``_submissions._tcp``, ``_submission._tcp``),
its MX records (``*.mail.protection.outlook.com`` is Microsoft 365) and its SPF record. Each
finding is only a suggestion the user confirms; nothing is saved before a test e-mail went
through it (``transports.test_before_saving``).

Every look-up has a share of one deadline. For a user whose own SMTP server must be public
(``outbox.destinations``), no web request and no suggestion may point inside the network.
"""

from __future__ import annotations

import fnmatch
import logging
import tomllib
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

from flask import current_app
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l

from hpmail.core.addresses import EmailNotValidError, normalized_address
from hpmail.core.forms import InputRefused
from hpmail.core.text import is_header_safe
from hpmail.delivery import autoconfig
from hpmail.delivery.dns import Lookup
from hpmail.outbox.destinations import is_internal
from hpmail.outbox.models import OAUTH_KINDS, Security

log = logging.getLogger(__name__)

PROVIDERS_FILE = Path(__file__).with_name("providers.toml")

# How the form names each way of signing in to the SMTP server.
AUTH_LABELS = {
    "none": _l("None"),
    "password": _l("Login and password"),
    "microsoft": _l("Microsoft 365 (OAuth2)"),
    "google": _l("Google (OAuth2)"),
}

# Where a suggestion comes from, as the page says it.
ORIGIN_LABELS = {
    "directory": _l("found in the providers' directory"),
    "autoconfig": _l("published by the domain (autoconfig)"),
    "srv": _l("SRV record"),
    "mx": _l("from the MX records"),
    "spf": _l("from the SPF record"),
}


class DiscoveryRefused(InputRefused):
    """The address typed cannot be looked up (the message says why)."""


@dataclass(frozen=True)
class Provider:
    """One row of ``providers.toml``."""

    name: str
    host: str
    port: int
    security: str
    auth: str
    username: str
    source: str
    domains: tuple[str, ...] = ()
    mx: tuple[str, ...] = ()
    spf: tuple[str, ...] = ()
    dkim: tuple[str, ...] = ()  # the selectors it signs a customer's domain with (domain_checks)

    def serves_domain(self, domain: str) -> bool:
        return any(_within(domain, pattern) for pattern in self.domains)

    def receives_at(self, mx_host: str) -> bool:
        return any(
            mx_host.endswith(pattern) if pattern.startswith(".") else mx_host == pattern
            for pattern in self.mx
        )


@dataclass(frozen=True)
class Suggestion:
    """SMTP settings for the address, with where they were found (``origin``, ``source``)."""

    host: str
    port: int
    security: str
    auth: str
    username: str
    origin: str
    source: str = ""
    provider: str = ""

    @property
    def origin_label(self) -> str:
        label = str(ORIGIN_LABELS[self.origin])
        if self.provider and self.origin != "directory":
            return _("%(origin)s: %(provider)s", origin=label, provider=self.provider)
        return label

    @property
    def auth_label(self) -> str:
        return str(AUTH_LABELS.get(self.auth, self.auth))

    def form_values(self) -> dict[str, str]:
        """What "Utiliser ces paramètres" writes in the form (static/app.js reads it)."""
        return {
            "host": self.host,
            "port": str(self.port),
            "security": self.security,
            "username": self.username,
            "auth": self.auth,
        }


@dataclass
class Discovery:
    """What was found for ``address``: suggestions, best first, and what went wrong on the way."""

    address: str
    domain: str
    suggestions: list[Suggestion] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def add(self, suggestion: Suggestion) -> None:
        key = (suggestion.host.lower(), suggestion.port, suggestion.security)
        if all((s.host.lower(), s.port, s.security) != key for s in self.suggestions):
            self.suggestions.append(suggestion)


def _within(domain: str, pattern: str) -> bool:
    """Say whether ``domain`` is ``pattern`` or one of its subdomains (``*`` inside a label)."""
    labels, wanted = domain.split("."), pattern.split(".")
    if len(labels) < len(wanted):
        return False
    tail = labels[len(labels) - len(wanted) :]
    return all(fnmatch.fnmatchcase(label, part) for label, part in zip(tail, wanted, strict=True))


@cache
def known_providers() -> tuple[Provider, ...]:
    """Return the providers of ``providers.toml``."""
    with PROVIDERS_FILE.open("rb") as file:
        table = tomllib.load(file)
    return tuple(
        Provider(
            **{
                key: tuple(value) if isinstance(value, list) else value
                for key, value in row.items()
            }
        )
        for row in table["provider"]
    )


def checked_address(value: str) -> tuple[str, str]:
    """Return the address and its ASCII domain, or raise DiscoveryRefused with the reason."""
    value = (value or "").strip()
    if not value:
        raise DiscoveryRefused(_("Type an e-mail address first."), field="address")
    if not is_header_safe(value) or len(value) > 254:
        raise DiscoveryRefused(
            _("This address holds characters an address cannot have."), field="address"
        )
    try:
        address = normalized_address(value)
    except EmailNotValidError:
        raise DiscoveryRefused(
            _("Enter a valid e-mail address, such as name@example.fr."), field="address"
        ) from None
    return address, address.rpartition("@")[2].lower()


def _suggestion(provider: Provider, address: str, origin: str) -> Suggestion:
    username = address.partition("@")[0] if provider.username == "local_part" else address
    return Suggestion(
        provider.host,
        provider.port,
        provider.security,
        provider.auth,
        username,
        origin,
        provider.source,
        provider.name,
    )


class _Lookup(Lookup):
    """One discovery: the DNS look-ups, their deadline, and the rule for the hosts it reaches."""

    def __init__(self, discovery: Discovery, restricted: bool):
        super().__init__(current_app.config["DISCOVERY_TIMEOUT_SECONDS"], discovery.notes)
        self.discovery = discovery
        self.restricted = restricted

    def public_host(self, host: str) -> bool:
        """Say whether ``host`` may be offered; note why not (internal, or not found)."""
        if not self.restricted:
            return True
        addresses = self.addresses(host)
        if not addresses:
            self.discovery.notes.append(
                _("The server “%(host)s” was not found: it is left out.", host=host)
            )
            return False
        if any(is_internal(address) for address in addresses):
            self.discovery.notes.append(
                _(
                    "The server “%(host)s” is inside the school's network (a local, private or "
                    "reserved address): it is left out.",
                    host=host,
                )
            )
            return False
        return True

    def connect_to(self, host: str) -> list[str]:
        """Return the addresses a web request to ``host`` may use (autoconfig.fetch asks)."""
        addresses = self.addresses(host)
        if not addresses:
            raise autoconfig.AutoconfigRefused(_("%(host)s was not found.", host=host), absent=True)
        if self.restricted and any(is_internal(address) for address in addresses):
            raise autoconfig.AutoconfigRefused(
                _("%(host)s is inside the school's network: it is not asked.", host=host)
            )
        return addresses


def discover(value: str, restricted: bool) -> Discovery:
    """Return the SMTP settings found for the address ``value``, best first.

    ``restricted``: the user's own server must be public, so is every host reached or offered.
    Raise DiscoveryRefused when ``value`` is not an address.
    """
    address, domain = checked_address(value)
    discovery = Discovery(address, domain)
    for provider in known_providers():
        if provider.serves_domain(domain):
            discovery.add(_suggestion(provider, address, "directory"))
            return discovery  # the provider's own settings: nothing to ask the domain
    lookup = _Lookup(discovery, restricted)
    _from_srv(lookup)
    _from_mx_and_spf(lookup)
    _from_autoconfig(lookup)
    discovery.suggestions.sort(key=lambda s: list(ORIGIN_LABELS).index(s.origin))
    log.info(
        "discovery for %s: %d suggestion(s), %d note(s)",
        domain,
        len(discovery.suggestions),
        len(discovery.notes),
    )
    return discovery


def _from_srv(lookup: _Lookup) -> None:
    """RFC 6186 (and RFC 8314's ``_submissions``): the domain names its submission server."""
    discovery = lookup.discovery
    for service, security in (
        ("_submissions._tcp", Security.TLS),
        ("_submission._tcp", Security.STARTTLS),
    ):
        name = f"{service}.{discovery.domain}"
        records = sorted(lookup.records(name, "SRV"), key=lambda r: (r.priority, -r.weight))
        for record in records:
            host = record.target.to_text(omit_final_dot=True)
            if host in ("", ".") or record.port == 0:
                continue  # "." says the service is not offered (RFC 2782)
            if lookup.public_host(host):
                discovery.add(
                    Suggestion(
                        host,
                        record.port,
                        security,
                        "password",
                        discovery.address,
                        "srv",
                        name,
                    )
                )
            break


def _from_mx_and_spf(lookup: _Lookup) -> None:
    """A domain that receives its mail at a known provider most likely sends through it."""
    discovery = lookup.discovery
    mx_hosts = [
        record.exchange.to_text(omit_final_dot=True).lower()
        for record in sorted(lookup.records(discovery.domain, "MX"), key=lambda r: r.preference)
    ]
    for provider in known_providers():
        if any(provider.receives_at(host) for host in mx_hosts):
            discovery.add(_suggestion(provider, discovery.address, "mx"))
            return
    spf = [
        b"".join(record.strings).decode("ascii", "replace")
        for record in lookup.records(discovery.domain, "TXT")
    ]
    includes = {
        term.partition(":")[2].lower()
        for text in spf
        if text.lower().startswith("v=spf1")
        for term in text.split()
        if term.lower().startswith(("include:", "+include:"))
    }
    for provider in known_providers():
        if includes & set(provider.spf):
            discovery.add(_suggestion(provider, discovery.address, "spf"))
            return


def _from_autoconfig(lookup: _Lookup) -> None:
    """Thunderbird's autoconfiguration: the domain's own file, then Mozilla's ISPDB."""
    config = current_app.config
    discovery = lookup.discovery
    for template in config["DISCOVERY_AUTOCONFIG_URLS"]:
        if lookup.remaining() <= 0:
            discovery.notes.append(_("The search stopped at its time limit."))
            return
        url = template.format(domain=discovery.domain)
        try:
            document = autoconfig.fetch(
                url,
                lookup.connect_to,
                lookup.deadline,
                int(config["DISCOVERY_AUTOCONFIG_MAX_BYTES"]),
            )
            servers = autoconfig.outgoing_servers(document, discovery.address)
        except autoconfig.AutoconfigRefused as refused:
            log.info("autoconfig %s: %s", url, refused)
            if not refused.absent:
                discovery.notes.append(
                    _("Autoconfiguration file %(url)s: %(reason)s", url=url, reason=str(refused))
                )
            continue
        found = False
        for server in servers:
            if lookup.public_host(server.host):
                discovery.add(
                    Suggestion(
                        server.host,
                        server.port,
                        server.security,
                        _auth_kind(server),
                        server.username,
                        "autoconfig",
                        url,
                    )
                )
                found = True
        if found:
            return


def _auth_kind(server: autoconfig.OutgoingServer) -> str:
    """Map Thunderbird's authentication to hpmail's: OAuth2 at a known provider, or password."""
    if "OAuth2" in server.authentications:
        for provider in known_providers():
            if provider.host == server.host and provider.auth in OAUTH_KINDS:
                return provider.auth
    if server.authentications and all(a == "none" for a in server.authentications):
        return "none"
    return "password"
