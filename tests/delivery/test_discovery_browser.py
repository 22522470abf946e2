"""In the browser: an address typed, its settings found (a real DNS server and autoconfiguration
file on loopback), accepted into the form, and saved once the test e-mail went through them."""

from __future__ import annotations

import pytest

from hpmail.outbox.settings import server_settings

pytestmark = pytest.mark.browser

PLAIN_CONFIG = """<?xml version="1.0" encoding="UTF-8"?>
<clientConfig version="1.1">
  <emailProvider id="lycee-ouvert.fr">
    <domain>lycee-ouvert.fr</domain>
    <outgoingServer type="smtp">
      <hostname>127.0.0.1</hostname>
      <port>{port}</port>
      <socketType>plain</socketType>
      <authentication>none</authentication>
    </outgoingServer>
  </emailProvider>
</clientConfig>
"""


def test_admin_types_an_address_accepts_the_settings_found_and_saves_them_tested(
    page, sign_in_page, make_user, dns_zone, autoconfig_site, smtp_server
):
    dns_zone.add("autoconfig.lycee-ouvert.fr. 60 IN A 127.0.0.1")
    dns_zone.add("lycee-ouvert.fr. 60 IN MX 0 lycee-ouvert-fr.mail.protection.outlook.com.")
    autoconfig_site.serve("/mail/config-v1.1.xml", PLAIN_CONFIG.format(port=smtp_server.port))
    sign_in_page(
        make_user("admin", email="agnes.martin@lycee-demo.fr"), at="/serveur/parametres-envoi"
    )
    page.get_by_label("Nom de l'expéditeur").fill("Lycée ouvert")
    page.get_by_label("Adresse de l'expéditeur").fill("direction@lycee-ouvert.fr")
    page.get_by_role("button", name="Trouver les paramètres").click()

    found = page.locator("li[data-origin=autoconfig]")
    found.wait_for()
    assert "publiés par le domaine (autoconfig)" in found.inner_text()
    assert "d'après les MX : Microsoft 365" in page.locator("li[data-origin=mx]").inner_text()
    found.get_by_role("button", name="Utiliser ces paramètres").click()
    found.get_by_role("button", name="Recopiés dans le formulaire").wait_for()
    assert page.get_by_label("Serveur SMTP").input_value() == "127.0.0.1"
    assert page.get_by_label("Port").input_value() == str(smtp_server.port)
    assert page.get_by_label("Chiffrement").input_value() == "none"
    # The authentication found is chosen too, and the password follows it (off: none is needed).
    assert page.get_by_label("Authentification").input_value() == "none"
    assert page.locator("input[name=password]").is_disabled()
    assert smtp_server.received == []  # nothing sent, nothing saved before "Enregistrer"

    page.get_by_role("button", name="Enregistrer", exact=True).click()
    page.get_by_text(
        "L'e-mail d'essai envoyé avec eux à agnes.martin@lycee-demo.fr a été accepté."
    ).wait_for()
    [received] = smtp_server.received
    assert received.rcpt_tos == ["agnes.martin@lycee-demo.fr"]
    assert received.mail_from == "direction@lycee-ouvert.fr"
    assert server_settings().transport.port == smtp_server.port
