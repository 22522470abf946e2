"""In the browser, under the Content-Security-Policy: static/app.js drives the pages' behaviours."""

from __future__ import annotations

import pytest

from hpmail.outbox.api import Address, EmailSpec, Sender, queue_mailing

pytestmark = pytest.mark.browser


def test_a_script_injected_in_a_page_is_refused_by_the_browser(page):
    page.goto("/connexion")
    page.evaluate(
        """() => { const s = document.createElement('script');
                   s.textContent = 'window.injected = true'; document.body.append(s); }"""
    )
    page.wait_for_timeout(200)
    assert page.evaluate("() => window.injected === undefined")
    assert any("inline script" in text for text in page.csp_violations)
    page.csp_violations.clear()  # expected here; any other test fails on one


def test_a_sending_limit_preset_fills_the_two_limits(page, sign_in_page):
    sign_in_page("admin", at="/serveur/parametres-envoi")
    preset = page.get_by_label("Limites d'envoi")
    preset.select_option("microsoft365")
    assert page.locator("input[name=per_minute]").input_value() == "30"
    assert page.locator("input[name=per_day]").input_value() == "10000"
    page.locator("input[name=per_minute]").fill("12")
    page.locator("input[name=per_minute]").dispatch_event("change")
    assert preset.input_value() == "custom"


def test_the_outbox_tick_all_box_ticks_every_e_mail(
    page, sign_in_page, make_user, db, delivery_settings, smtp_server
):
    delivery_settings(smtp_server)
    author = make_user("staff")
    for subject in ("Conseil de classe", "Réunion"):
        queue_mailing(
            author_id=author.id,
            sender=Sender("ne-pas-repondre@lycee-demo.fr", "Lycée Démo"),
            subject=subject,
            text_body="Bonjour",
            emails=[EmailSpec(to=[Address("parent@exemple.fr")])],
        )
    db.session.commit()
    sign_in_page("admin", at="/serveur/file-envoi")
    boxes = page.locator("input[type=checkbox][name=email_id]")
    assert boxes.count() >= 2
    page.get_by_label("Tout cocher").check()
    assert all(boxes.nth(i).is_checked() for i in range(boxes.count()))
    page.get_by_label("Tout cocher").uncheck()
    assert not any(boxes.nth(i).is_checked() for i in range(boxes.count()))
