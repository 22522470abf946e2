"""In the browser: each allowed domain's checks load by themselves, and « Vérifier à nouveau »
reads the DNS again once the admin published the record the page gave (a real DNS server)."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.browser


def test_admin_publishes_the_spf_record_given_and_checks_again(
    page, sign_in_page, make_user, delivery_settings, make_transport, dns_zone
):
    dns_zone.add("smtp.lycee-demo.fr. 60 IN A 193.51.24.5")
    dns_zone.add("college-demo.fr. 60 IN MX 10 mx.college-demo.fr.")
    delivery_settings(
        transport=make_transport(host="smtp.lycee-demo.fr", port=587, security="starttls"),
        allowed_domains="lycee-demo.fr\ncollege-demo.fr",
    )
    errors = []
    page.on("console", lambda message: message.type == "error" and errors.append(message.text))
    sign_in_page(make_user("admin"), at="/serveur/parametres-envoi")
    page.get_by_role("link", name="Vérifier le SPF, le DKIM et le DMARC de ces domaines").click()

    lycee = page.locator("section#domain-lycee-demo\\.fr")
    college = page.locator("section#domain-college-demo\\.fr")
    spf = lycee.locator("li[data-check=spf]")
    spf.wait_for()
    college.locator("li[data-check=mx][data-state=ok]").wait_for()
    assert spf.get_attribute("data-state") == "error"
    assert "À corriger" in spf.inner_text()
    record = spf.locator("code.record-value").inner_text()
    assert record == "v=spf1 ip4:193.51.24.5 ~all"
    spf.get_by_role("button", name="Copier la valeur").click()
    spf.get_by_role("button", name="Copié").wait_for()

    dns_zone.add(f'lycee-demo.fr. 60 IN TXT "{record}"')  # the admin publishes it
    lycee.get_by_role("link", name="Vérifier à nouveau").click()
    lycee.locator("li[data-check=spf][data-state=ok]").wait_for()
    assert (
        "Le SPF de lycee-demo.fr autorise smtp.lycee-demo.fr (193.51.24.5)."
        in lycee.locator("li[data-check=spf]").inner_text()
    )
    assert "Correct" in lycee.locator("li[data-check=spf]").inner_text()
    assert college.locator("li[data-check=mx]").get_attribute("data-state") == "ok"
    assert errors == []
