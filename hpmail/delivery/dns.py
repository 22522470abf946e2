"""DNS look-ups of the admin pages: one resolver, one deadline, failures said once in French.

"Trouver les paramètres" (``discovery``) and the checks of the allowed domains (SPF, DKIM, DMARC,
MX) ask the DNS servers of ``DNS_SERVERS``/``DNS_PORT`` (the system's resolver when empty). A
look-up shares one deadline with the others of the same page, so that a silent DNS server holds
the page no longer than ``timeout`` seconds; what went wrong is added to ``notes`` once.

dnspython is imported by the look-ups (~40 ms): every page and worker process imports these pages'
modules, and only these pages ask the DNS.
"""

from __future__ import annotations

import ipaddress
import time

from flask import current_app
from flask_babel import gettext as _


class Lookup:
    """DNS look-ups under one deadline; ``failed`` once the DNS servers stopped answering."""

    def __init__(self, timeout: float, notes: list[str]) -> None:
        import dns.resolver

        config = current_app.config
        self.deadline = time.monotonic() + float(timeout)
        self.notes = notes
        self.failed = False
        servers = list(config["DNS_SERVERS"])
        if servers:
            self.resolver = dns.resolver.Resolver(configure=False)
            self.resolver.nameservers = servers
            self.resolver.port = int(config["DNS_PORT"])
            return
        try:
            self.resolver = dns.resolver.Resolver()
        except dns.resolver.NoResolverConfiguration:
            self.resolver = dns.resolver.Resolver(configure=False)
            self.failed = True
            notes.append(
                _(
                    "This server has no DNS server configured: the domain's records were not "
                    "read. Ask the administrator to set DNS_SERVERS."
                )
            )

    def remaining(self) -> float:
        return self.deadline - time.monotonic()

    def records(self, name: str, kind: str) -> list:
        """Return the records of ``name``, or none (a timeout is noted once, in French)."""
        import dns.exception
        import dns.name
        import dns.resolver

        if self.remaining() <= 0 or self.failed:
            return []
        try:
            answer = self.resolver.resolve(name, kind, lifetime=max(self.remaining(), 0.1))
        except (dns.resolver.NXDOMAIN, dns.resolver.NoAnswer, dns.name.NameTooLong):
            return []
        except dns.exception.Timeout:
            self.failed = True
            self.notes.append(
                _("The DNS servers did not answer in time: the domain's records were not read.")
            )
            return []
        except (dns.resolver.NoNameservers, dns.exception.DNSException) as error:
            self.failed = True
            self.notes.append(_("The DNS look-up failed (%(reason)s).", reason=str(error)[:200]))
            return []
        return list(answer)

    def texts(self, name: str) -> list[str]:
        """Return the TXT records of ``name``, each one string (its pieces joined, RFC 7208 3.3)."""
        records = self.records(name, "TXT")
        return [b"".join(record.strings).decode("utf-8", "replace") for record in records]

    def addresses(self, host: str) -> list[str]:
        """Return the IP addresses of ``host`` (itself when it is one)."""
        try:
            return [str(ipaddress.ip_address(host.strip("[]")))]
        except ValueError:
            pass
        found = [record.address for kind in ("A", "AAAA") for record in self.records(host, kind)]
        return list(dict.fromkeys(found))
