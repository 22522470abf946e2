"""In the browser: the admin generates a DKIM key, publishes its record, checks and activates it."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from hpmail.delivery import dkim_keys
from hpmail.outbox.models import DkimKey, DkimState

pytestmark = pytest.mark.browser


def test_admin_generates_a_key_copies_its_record_checks_it_and_activates_it(
    page, sign_in_page, delivery_settings, dns_zone, db, live_server
):
    delivery_settings(allowed_domains="lycee-demo.fr")
    sign_in_page("admin")
    page.context.grant_permissions(["clipboard-read", "clipboard-write"], origin=live_server)
    page.goto("/serveur/parametres-envoi")
    page.locator(".dkim-links").get_by_role("link", name="lycee-demo.fr").click()
    page.get_by_role("heading", name="Signature DKIM de lycee-demo.fr").wait_for()

    page.get_by_label("Sélecteur").fill("HPmail2026")
    page.get_by_role("button", name="Créer la clé").click()
    page.get_by_text("La clé « hpmail2026 » est créée").wait_for()
    key = db.session.scalars(select(DkimKey)).one()
    value = page.locator(f"#record-value-{key.id}")
    assert value.input_value() == dkim_keys.record_text(key)
    assert page.locator(f"#record-name-{key.id}").inner_text() == (
        "hpmail2026._domainkey.lycee-demo.fr"
    )
    page.get_by_role("button", name="Copier la valeur").click()
    page.get_by_role("button", name="Copié").wait_for()
    assert page.evaluate("navigator.clipboard.readText()") == dkim_keys.record_text(key)

    page.get_by_role("button", name="Activer").click()
    page.get_by_text("La clé n'a pas été activée : aucun enregistrement DKIM").wait_for()

    dns_zone.add(dkim_keys.zone_line(key))
    page.get_by_role("button", name="Vérifier la publication").click()
    page.get_by_text("Publié et conforme : le DNS contient l'enregistrement").wait_for()
    page.get_by_role("button", name="Activer").click()
    page.get_by_text(
        "La clé « hpmail2026 » signe désormais les e-mails de lycee-demo.fr."
    ).wait_for()
    db.session.expire_all()
    assert db.session.get(DkimKey, key.id).state == DkimState.ACTIVE

    page.get_by_role("button", name="Retirer").click()
    page.get_by_text("La clé « hpmail2026 » ne signe plus.").wait_for()
    page.on("dialog", lambda dialog: dialog.accept())
    page.get_by_role("button", name="Supprimer").click()
    page.get_by_text("La clé « hpmail2026 » est supprimée").wait_for()
    assert page.get_by_text("Aucune clé pour l'instant").is_visible()
