"""Serveur › Paramètres d'envoi des e-mails › Domaines autorisés: SPF, DKIM, DMARC and MX of each.

The page lists the domains at once; each domain's checks arrive by themselves (htmx, on load),
so that a slow DNS holds one domain's card, not the page. Without JavaScript each domain's link
opens its checks as a page of their own. Only the domains the settings name may be checked:
any other name in the URL is a 404, so the page never becomes a DNS probe.
"""

from __future__ import annotations

from flask import abort, current_app, url_for

from hpmail.core.web import admin_required, render
from hpmail.delivery.dkim_keys import dkim_domain
from hpmail.delivery.domain_checks import check_domain, checked_domains, sending_transports
from hpmail.delivery.views import bp
from hpmail.outbox.settings import server_settings as load_server_settings

PAGE = "delivery/domains.html"


@bp.app_template_global()
def dkim_page_url(domain: str) -> str | None:
    """Return the URL of hpmail's DKIM key page of ``domain``; None when the domain has none
    (the sender address's domain, when it is not an allowed domain)."""
    if dkim_domain(domain, load_server_settings().allowed_domains or "") != domain:
        return None
    return url_for("delivery.dkim", domain=domain)


@bp.route("/serveur/parametres-envoi/domaines")
@admin_required
def domains():
    settings = load_server_settings()
    subdomains = [
        line.strip()
        for line in (settings.allowed_domains or "").splitlines()
        if line.strip().startswith("*.")
    ]
    return render(PAGE, domains=checked_domains(settings), subdomains=subdomains, report=None)


@bp.route("/serveur/parametres-envoi/domaines/<domain>")
@admin_required
def domain_checks(domain: str):
    """The checks of one domain: the fragment htmx asks for, or a page of their own."""
    settings = load_server_settings()
    chosen = [item for item in checked_domains(settings) if item.name == domain]
    if not chosen:
        abort(404)
    report = check_domain(domain, sending_transports(settings))
    current_app.logger.info("domain checks of %s: %s", domain, [c.state for c in report.checks])
    return render(PAGE, "domain_report", domains=chosen, subdomains=[], report=report)
