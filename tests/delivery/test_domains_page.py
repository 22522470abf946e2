"""Serveur › Domaines autorisés through the real routes, and the sender's domain after a real
test-send (aiosmtpd on loopback), the DNS served by a real server (dnslib)."""

from __future__ import annotations

import html
import time

import pytest

FR = {"Accept-Language": "fr"}
HTMX = {"Accept-Language": "fr", "HX-Request": "true"}
PAGE = "/serveur/parametres-envoi/domaines"
DOMAIN = "lycee-demo.fr"


def text(response) -> str:
    return html.unescape(response.text)


@pytest.fixture
def relay(make_transport):
    """The school's own SMTP relay (its address is in the zone when a test publishes it)."""
    return make_transport(host="smtp.lycee-demo.fr", port=587, security="starttls")


@pytest.fixture
def published(dns_zone):
    """lycee-demo.fr with SPF allowing its relay, DMARC quarantine and its MX."""
    dns_zone.add("smtp.lycee-demo.fr. 60 IN A 193.51.24.5")
    dns_zone.add('lycee-demo.fr. 60 IN TXT "v=spf1 ip4:193.51.24.5 -all"')
    dns_zone.add('_dmarc.lycee-demo.fr. 60 IN TXT "v=DMARC1; p=quarantine"')
    dns_zone.add("lycee-demo.fr. 60 IN MX 10 mx.lycee-demo.fr.")
    return dns_zone


@pytest.mark.parametrize("role", ["staff", "teacher"])
@pytest.mark.parametrize("url", [PAGE, f"{PAGE}/{DOMAIN}"])
def test_only_an_admin_opens_the_domains_and_their_checks(client, login_as, role, url, dns_zone):
    login_as(role)
    response = client.get(url, headers=FR)
    assert response.status_code == 403
    assert dns_zone.queries == []


def test_the_page_lists_the_sender_domain_and_the_allowed_ones_each_loaded_by_itself(
    client, login_as, delivery_settings, dns_zone
):
    delivery_settings(
        sender_address="ne-pas-repondre@lycee-demo.fr",
        allowed_domains="lycee-demo.fr\ncollege-demo.fr\n*.univ-exemple.fr",
    )
    login_as("admin")
    response = client.get(PAGE, headers=FR)
    assert response.status_code == 200
    page = text(response)
    assert "Domaines autorisés : SPF, DKIM, DMARC" in page
    for domain in ("lycee-demo.fr", "college-demo.fr"):
        assert f'hx-get="{PAGE}/{domain}" hx-trigger="load"' in page
        assert f'href="{PAGE}/{domain}"' in page  # without JavaScript: a link
    assert page.count('hx-trigger="load"') == 2
    assert "Les sous-domaines de *.univ-exemple.fr sont aussi autorisés" in page
    assert dns_zone.queries == []  # the page itself asks the DNS nothing


def test_the_fragment_of_a_domain_shows_its_checks_in_french(
    client, login_as, delivery_settings, relay, published
):
    delivery_settings(transport=relay, allowed_domains="lycee-demo.fr")
    login_as("admin")
    response = client.get(f"{PAGE}/{DOMAIN}", headers=HTMX)
    assert response.status_code == 200
    assert "HX-Request" in response.headers["Vary"]
    page = text(response)
    assert "<html" not in page
    assert "Le SPF de lycee-demo.fr autorise smtp.lycee-demo.fr (193.51.24.5)." in page
    assert 'data-check="spf" data-state="ok"' in page
    assert 'data-check="dmarc" data-state="ok"' in page
    assert 'data-check="mx" data-state="ok"' in page
    assert 'data-check="dkim" data-state="warning"' in page
    assert f'<a href="{PAGE}/{DOMAIN}/dkim">Signature DKIM de lycee-demo.fr</a>' in page
    assert "Vérifier à nouveau" in page
    assert f'hx-get="{PAGE}/{DOMAIN}"' in page


def test_without_javascript_a_domain_opens_as_a_page_with_the_record_to_publish(
    client, login_as, delivery_settings, relay, dns_zone
):
    dns_zone.add("smtp.lycee-demo.fr. 60 IN A 193.51.24.5")
    delivery_settings(transport=relay)
    login_as("admin")
    response = client.get(f"{PAGE}/{DOMAIN}", headers=FR)
    page = text(response)
    assert response.status_code == 200
    assert "<html" in page
    assert "lycee-demo.fr ne publie aucun enregistrement SPF" in page
    assert 'id="record-lycee-demo.fr-spf-1-value">v=spf1 ip4:193.51.24.5 ~all</code>' in page
    starting = "v=DMARC1; p=none; rua=mailto:postmaster@lycee-demo.fr"
    assert f'id="record-lycee-demo.fr-dmarc-1-value">{starting}</code>' in page
    assert page.count("Copier la valeur") == 2


@pytest.mark.parametrize(
    "domain",
    [
        "autre-ecole.fr",  # not one of the school's domains: never looked up
        "lycee-demo.fr.",
        "LYCEE-DEMO.FR%0d%0aX-Injected:%20yes",
        "..%2f..%2fetc",
        "lycee-demo.fr%00",
        "%E2%80%AElycee-demo.fr",
        "a" * 300 + ".fr",
        "*.univ-exemple.fr",
        "127.0.0.1",
    ],
)
def test_a_domain_the_settings_do_not_name_is_not_found_and_never_asked(
    client, login_as, delivery_settings, dns_zone, domain
):
    delivery_settings()
    login_as("admin")
    response = client.get(f"{PAGE}/{domain}", headers=HTMX)
    assert response.status_code == 404
    assert dns_zone.queries == []


def test_the_settings_page_and_the_menu_lead_to_the_domains(client, login_as):
    login_as("admin")
    page = text(client.get("/serveur/parametres-envoi", headers=FR))
    assert f'<a href="{PAGE}">Vérifier le SPF, le DKIM et le DMARC de ces domaines</a>' in page
    assert f'href="{PAGE}"' in page.split("<main")[0]  # the Serveur menu


def test_a_silent_dns_holds_one_domain_no_longer_than_its_deadline(
    client, login_as, delivery_settings, silent_dns, app
):
    app.config["DOMAIN_CHECK_TIMEOUT_SECONDS"] = 1
    delivery_settings()
    login_as("admin")
    started = time.monotonic()
    response = client.get(f"{PAGE}/{DOMAIN}", headers=HTMX)
    assert time.monotonic() - started < 3
    assert response.status_code == 200
    page = text(response)
    assert page.count('data-state="unknown"') == 4
    assert "Les serveurs DNS n'ont pas répondu à temps" in page


# --- Tester l'envoi d'e-mails: the sender's domain after the SMTP steps -----------------------


def test_the_test_send_shows_the_sender_domain_after_the_smtp_steps(
    client, login_as, delivery_settings, smtp_server, dns_zone
):
    dns_zone.add('lycee-demo.fr. 60 IN TXT "v=spf1 ip4:193.51.24.5 -all"')
    dns_zone.add('_dmarc.lycee-demo.fr. 60 IN TXT "v=DMARC1; p=reject"')
    login_as("admin", email="agnes.martin@lycee-demo.fr")
    delivery_settings(smtp_server)
    response = client.post("/serveur/parametres-envoi/essai", headers=HTMX)
    assert response.status_code == 200
    page = text(response)
    assert "Le serveur a accepté l'e-mail d'essai" in page
    assert len(smtp_server.received) == 1
    assert page.index("Données (DATA)") < page.index("Domaine de l'expéditeur : lycee-demo.fr")
    # aiosmtpd listens on 127.0.0.1: the public address it sends from cannot be known here.
    assert 'data-check="spf" data-state="warning"' in page
    assert "Le serveur SMTP 127.0.0.1 est dans le réseau de l'établissement" in page
    assert 'data-check="dmarc" data-state="unknown"' in page
    assert "dépend de ce qui n'a pas pu être vérifié ci-dessus" in page
    assert 'data-check="mx" data-state="warning"' in page
    assert ("lycee-demo.fr", "TXT") in dns_zone.queries


def test_a_silent_dns_does_not_fail_nor_hold_the_test_send(
    client, login_as, delivery_settings, smtp_server, silent_dns, app
):
    app.config["DOMAIN_CHECK_TIMEOUT_SECONDS"] = 1
    login_as("admin", email="agnes.martin@lycee-demo.fr")
    delivery_settings(smtp_server)
    started = time.monotonic()
    response = client.post("/serveur/parametres-envoi/essai", headers=HTMX)
    assert time.monotonic() - started < 4
    page = text(response)
    assert "Le serveur a accepté l'e-mail d'essai" in page
    assert len(smtp_server.received) == 1
    assert page.count('data-state="unknown"') == 4


def test_an_accented_domain_is_checked_under_its_dns_name(
    client, login_as, delivery_settings, dns_zone
):
    delivery_settings(allowed_domains="lycée-demo.fr")
    login_as("admin")
    page = text(client.get(PAGE, headers=FR))
    assert "lycée-demo.fr" in page
    assert f'hx-get="{PAGE}/xn--lyce-demo-d4a.fr"' in page
    response = client.get(f"{PAGE}/xn--lyce-demo-d4a.fr", headers=HTMX)
    assert response.status_code == 200
    assert ("xn--lyce-demo-d4a.fr", "TXT") in dns_zone.queries


def test_when_users_send_themselves_the_profiles_servers_are_checked_too(
    client, login_as, db, delivery_settings, relay, make_transport, published
):
    from hpmail.outbox.models import SendingProfile

    published.add('spf.protection.outlook.com. 60 IN TXT "v=spf1 ip4:40.92.0.0/15 -all"')
    delivery_settings(transport=relay, delegate=False)
    office = make_transport(host="smtp.office365.com", port=587, auth="microsoft")
    db.session.add(SendingProfile(name="Microsoft 365 du lycée", transport=office))
    db.session.commit()
    login_as("admin")
    page = text(client.get(f"{PAGE}/{DOMAIN}", headers=HTMX))
    assert "Le SPF de lycee-demo.fr autorise smtp.lycee-demo.fr (193.51.24.5)." in page
    assert "Le SPF de lycee-demo.fr n'inclut pas spf.protection.outlook.com" in page
    assert 'data-check="spf" data-state="error"' in page
    assert "v=spf1 include:spf.protection.outlook.com ip4:193.51.24.5 -all" in page
