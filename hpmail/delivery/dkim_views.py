"""Serveur › Paramètres d'envoi › Domaines autorisés › Signature DKIM: a domain's keys.

One page per allowed domain: its keys, the record each must publish, and the buttons that
generate a key, check its record, activate, retire and delete it (``dkim_keys`` holds the rules).
"""

from __future__ import annotations

from flask import abort, current_app, flash, redirect, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user

from hpmail.core.forms import form_again
from hpmail.core.web import admin_required, render
from hpmail.delivery import dkim_keys
from hpmail.delivery.dkim_keys import DkimRefused, NotPublished, Publication
from hpmail.delivery.dns import Lookup
from hpmail.delivery.forms import DKIM_ALGORITHMS, DkimActionForm, DkimKeyForm
from hpmail.delivery.views import bp
from hpmail.extensions import db
from hpmail.outbox.models import DkimKey, DkimState
from hpmail.outbox.settings import server_settings

DKIM_PAGE = "delivery/dkim.html"
DKIM_STATE_LABELS = {
    DkimState.NEW: _l("Not active yet"),
    DkimState.ACTIVE: _l("Active (signing)"),
    DkimState.RETIRED: _l("Retired"),
}

# The server settings page links each allowed domain to its DKIM page.
bp.add_app_template_global(dkim_keys.dkim_domains, "dkim_domains")


@bp.route("/serveur/parametres-envoi/domaines/<domain>/dkim", methods=["GET", "POST"])
@admin_required
def dkim(domain: str):
    domain = dkim_keys.dkim_domain(domain, server_settings().allowed_domains or "")
    if domain is None:
        abort(404)
    if request.method == "GET":
        return render(DKIM_PAGE, form=DkimKeyForm(formdata=None), **_context(domain))
    posted = DkimActionForm()
    if not posted.validate_on_submit():
        errors = [message for messages in posted.errors.values() for message in messages]
        return _page_again(domain, errors=errors)
    if posted.action.data == "generate":
        return _generate(domain)
    key = dkim_keys.key_of(domain, posted.key_id.data)
    if key is None:
        abort(404)
    if posted.version.data != dkim_keys.version(key):
        message = _("This key changed since the page was shown: nothing was done.")
        return _page_again(domain, errors=[message])
    return _act(posted.action.data, key, domain)


def _generate(domain: str):
    form = DkimKeyForm()
    if form.validate():
        try:
            key = dkim_keys.generate(domain, form.selector.data, form.algorithm.data, current_user)
        except DkimRefused as refused:
            db.session.rollback()
            return _page_again(domain, form=form, refused=refused)
        db.session.commit()
        flash(
            _(
                "The key « %(selector)s » is generated: publish its record, then activate it.",
                selector=key.selector,
            ),
            "success",
        )
        return redirect(url_for("delivery.dkim", domain=domain, _anchor=f"key-{key.id}"))
    return _page_again(domain, form=form)


def _act(action: str, key: DkimKey, domain: str):
    """Check, activate, retire or delete ``key``; say what happened."""
    notes: list[str] = []
    lookup = Lookup(current_app.config["DISCOVERY_TIMEOUT_SECONDS"], notes)
    try:
        if action == "check":
            found = dkim_keys.check(key, lookup)
            db.session.commit()
            return render(
                DKIM_PAGE,
                form=DkimKeyForm(formdata=None),
                **_context(domain, found={key.id: found}, notes=notes),
            )
        if action == "activate":
            retired = dkim_keys.activate(key, lookup, current_user)
            message = _activated_message(key, retired)
        elif action == "retire":
            dkim_keys.retire(key, current_user)
            message = _(
                "The key « %(selector)s » no longer signs. Leave its record published a few "
                "days, for the e-mails still on their way, then delete the key.",
                selector=key.selector,
            )
        else:
            selector = key.selector
            dkim_keys.delete(key, current_user)
            message = _(
                "The key « %(selector)s » is deleted: you can remove its record from the DNS.",
                selector=selector,
            )
    except NotPublished as refused:
        db.session.commit()  # what the look-up found is kept; the key is unchanged
        return _page_again(domain, refused=refused, found={key.id: refused.found})
    except DkimRefused as refused:
        db.session.rollback()
        return _page_again(domain, refused=refused)
    db.session.commit()
    flash(message, "success")
    return redirect(url_for("delivery.dkim", domain=domain))


def _activated_message(key: DkimKey, retired: list[DkimKey]) -> str:
    signs = _(
        "The key « %(selector)s » now signs the e-mails of %(domain)s.",
        selector=key.selector,
        domain=key.domain,
    )
    if not retired:
        return signs
    return " ".join(
        [
            signs,
            _(
                "The key « %(selector)s » is retired: leave its record published a few days, "
                "then delete it.",
                selector=", ".join(old.selector for old in retired),
            ),
        ]
    )


def _page_again(
    domain: str,
    *,
    form: DkimKeyForm | None = None,
    refused: DkimRefused | None = None,
    errors: list[str] | None = None,
    found: dict[int, Publication] | None = None,
):
    """Show the page again with status 422: what was refused, and nothing changed."""
    return form_again(
        DKIM_PAGE,
        form=form or DkimKeyForm(formdata=None),
        refused=refused,
        errors_key="errors",
        errors=errors or [],
        **_context(domain, found=found),
    )


def _context(
    domain: str, found: dict[int, Publication] | None = None, notes: list[str] | None = None
) -> dict:
    """What the page shows: the domain's keys, and what the DNS held when one was checked."""
    return {
        "domain": domain,
        "keys": dkim_keys.keys_of(domain),
        "found": found or {},
        "notes": notes or [],
        "algorithm_labels": DKIM_ALGORITHMS,
        "state_labels": DKIM_STATE_LABELS,
        "record_name": dkim_keys.record_name,
        "record_text": dkim_keys.record_text,
        "zone_line": dkim_keys.zone_line,
        "version": dkim_keys.version,
    }
