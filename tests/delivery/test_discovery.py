"""Settings found from the address: the providers' table, autoconfig files, SRV, MX and SPF records,
served by a real DNS server and a real web server on loopback."""

from __future__ import annotations

import time

import pytest

from hpmail.delivery.discovery import DiscoveryRefused, discover, known_providers

CONFIG = """<?xml version="1.0" encoding="UTF-8"?>
<clientConfig version="1.1">
  <emailProvider id="{domain}">
    <domain>{domain}</domain>
    <outgoingServer type="smtp">
      <hostname>{host}</hostname>
      <port>{port}</port>
      <socketType>{socket}</socketType>
      <username>%EMAILLOCALPART%</username>
      <authentication>password-cleartext</authentication>
    </outgoingServer>
  </emailProvider>
</clientConfig>
"""

BILLION_LAUGHS = """<?xml version="1.0"?>
<!DOCTYPE clientConfig [
  <!ENTITY lol "lol">
  <!ENTITY lol1 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
  <!ENTITY lol2 "&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;">
  <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
  <!ENTITY lol9 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
]>
<clientConfig><emailProvider><outgoingServer type="smtp"><hostname>&lol9;</hostname>
<port>587</port><socketType>STARTTLS</socketType></outgoingServer></emailProvider></clientConfig>
"""


def test_a_known_provider_is_found_in_the_table_without_asking_the_network(app, dns_zone):
    with app.test_request_context():
        found = discover("jeanne.martin@orange.fr", restricted=True)
    assert [(s.host, s.port, s.security, s.auth, s.origin) for s in found.suggestions] == [
        ("smtp.orange.fr", 465, "tls", "password", "directory")
    ]
    assert found.suggestions[0].username == "jeanne.martin@orange.fr"
    assert found.suggestions[0].source.startswith("https://")
    assert dns_zone.queries == []


def test_every_provider_of_the_table_says_where_its_values_come_from(app):
    providers = known_providers()
    assert {"Microsoft 365", "Google", "Orange", "Free", "RENATER Partage"} <= {
        provider.name for provider in providers
    }
    for provider in providers:
        assert provider.source.startswith("https://"), provider.name
        assert provider.security in ("none", "starttls", "tls"), provider.name
        assert provider.auth in ("none", "password", "microsoft", "google"), provider.name


def test_a_domain_whose_mx_is_exchange_online_is_microsoft_365(app, dns_zone):
    dns_zone.add("lycee-exemple.fr. 60 IN MX 0 lycee-exemple-fr.mail.protection.outlook.com.")
    with app.test_request_context():
        found = discover("secretariat@lycee-exemple.fr", restricted=True)
    suggestion = found.suggestions[0]
    assert (suggestion.host, suggestion.port, suggestion.security, suggestion.auth) == (
        "smtp.office365.com",
        587,
        "starttls",
        "microsoft",
    )
    assert suggestion.origin == "mx"
    with app.test_request_context(headers={"Accept-Language": "fr"}):
        assert suggestion.origin_label == "d'après les MX : Microsoft 365"


def test_a_domain_whose_mx_is_google_is_google_workspace(app, dns_zone):
    dns_zone.add("college-exemple.fr. 60 IN MX 1 aspmx.l.google.com.")
    dns_zone.add("college-exemple.fr. 60 IN MX 5 alt1.aspmx.l.google.com.")
    with app.test_request_context():
        found = discover("vie.scolaire@college-exemple.fr", restricted=True)
    assert [(s.host, s.auth, s.origin) for s in found.suggestions] == [
        ("smtp.gmail.com", "google", "mx")
    ]


def test_the_spf_record_names_the_provider_when_the_mx_is_a_filter(app, dns_zone):
    dns_zone.add("ecole-exemple.fr. 60 IN MX 10 filtre.antispam-exemple.fr.")
    dns_zone.add('ecole-exemple.fr. 60 IN TXT "v=spf1 include:spf.protection.outlook.com -all"')
    with app.test_request_context():
        found = discover("direction@ecole-exemple.fr", restricted=True)
    assert [(s.host, s.origin, s.provider) for s in found.suggestions] == [
        ("smtp.office365.com", "spf", "Microsoft 365")
    ]


def test_srv_records_give_the_submission_server(app, dns_zone):
    dns_zone.add("_submissions._tcp.univ-exemple.fr. 60 IN SRV 0 1 465 smtp.univ-exemple.fr.")
    dns_zone.add("_submission._tcp.univ-exemple.fr. 60 IN SRV 0 1 587 smtp.univ-exemple.fr.")
    dns_zone.add("smtp.univ-exemple.fr. 60 IN A 193.54.1.25")
    with app.test_request_context():
        found = discover("prof@univ-exemple.fr", restricted=True)
    assert [(s.host, s.port, s.security, s.origin) for s in found.suggestions] == [
        ("smtp.univ-exemple.fr", 465, "tls", "srv"),
        ("smtp.univ-exemple.fr", 587, "starttls", "srv"),
    ]
    assert found.suggestions[0].source == "_submissions._tcp.univ-exemple.fr"


def test_an_srv_record_that_says_no_service_offers_nothing(app, dns_zone):
    dns_zone.add("_submission._tcp.sans-envoi.fr. 60 IN SRV 0 0 0 .")
    with app.test_request_context():
        found = discover("a@sans-envoi.fr", restricted=True)
    assert found.suggestions == []


def test_an_srv_pointing_inside_the_network_is_refused_for_a_personal_account(app, dns_zone):
    dns_zone.add("_submission._tcp.piege.fr. 60 IN SRV 0 1 25 relais.piege.fr.")
    dns_zone.add("relais.piege.fr. 60 IN A 127.0.0.1")
    with app.test_request_context(headers={"Accept-Language": "fr"}):
        personal = discover("moi@piege.fr", restricted=True)
        admin = discover("moi@piege.fr", restricted=False)
    assert personal.suggestions == []
    assert any("relais.piege.fr" in note and "réseau" in note for note in personal.notes)
    assert [(s.host, s.port) for s in admin.suggestions] == [("relais.piege.fr", 25)]


def test_the_domain_autoconfig_file_gives_the_smtp_server(app, dns_zone, autoconfig_site):
    dns_zone.add("autoconfig.lycee-ouvert.fr. 60 IN A 127.0.0.1")
    autoconfig_site.serve(
        "/mail/config-v1.1.xml",
        CONFIG.format(
            domain="lycee-ouvert.fr", host="mail.lycee-ouvert.fr", port=587, socket="STARTTLS"
        ),
    )
    with app.test_request_context():
        found = discover("cpe@lycee-ouvert.fr", restricted=False)
    assert [(s.host, s.port, s.security, s.username, s.origin) for s in found.suggestions] == [
        ("mail.lycee-ouvert.fr", 587, "starttls", "cpe", "autoconfig")
    ]
    assert autoconfig_site.requests[0][0] == f"autoconfig.lycee-ouvert.fr:{autoconfig_site.port}"


def test_an_autoconfig_site_inside_the_network_is_not_asked_for_a_personal_account(
    app, dns_zone, autoconfig_site
):
    dns_zone.add("autoconfig.lycee-ouvert.fr. 60 IN A 127.0.0.1")
    autoconfig_site.serve(
        "/mail/config-v1.1.xml",
        CONFIG.format(
            domain="lycee-ouvert.fr", host="smtp.ailleurs.fr", port=587, socket="STARTTLS"
        ),
    )
    with app.test_request_context(headers={"Accept-Language": "fr"}):
        found = discover("cpe@lycee-ouvert.fr", restricted=True)
    assert found.suggestions == []
    assert autoconfig_site.requests == []
    assert any("réseau" in note for note in found.notes)


def test_an_autoconfig_site_whose_certificate_is_not_trusted_is_not_read(
    app, dns_zone, untrusted_https_site
):
    dns_zone.add("autoconfig.lycee-ouvert.fr. 60 IN A 127.0.0.1")
    untrusted_https_site.serve(
        "/mail/config-v1.1.xml",
        CONFIG.format(domain="lycee-ouvert.fr", host="smtp.faux.fr", port=587, socket="STARTTLS"),
    )
    with app.test_request_context(headers={"Accept-Language": "fr"}):
        found = discover("cpe@lycee-ouvert.fr", restricted=False)
    assert found.suggestions == []
    assert untrusted_https_site.requests == []
    assert any("injoignable" in note and "certificate" in note for note in found.notes), found.notes


def test_a_billion_laughs_file_is_refused_not_expanded(app, dns_zone, autoconfig_site):
    dns_zone.add("autoconfig.piege.fr. 60 IN A 127.0.0.1")
    autoconfig_site.serve("/mail/config-v1.1.xml", BILLION_LAUGHS)
    started = time.monotonic()
    with app.test_request_context(headers={"Accept-Language": "fr"}):
        found = discover("moi@piege.fr", restricted=False)
    assert time.monotonic() - started < 3
    assert found.suggestions == []
    assert any("DTD" in note for note in found.notes)


def test_a_huge_autoconfig_file_is_not_read(app, dns_zone, autoconfig_site):
    dns_zone.add("autoconfig.piege.fr. 60 IN A 127.0.0.1")
    padding = "<!-- " + "x" * (200 * 1024) + " -->"
    autoconfig_site.serve(
        "/mail/config-v1.1.xml",
        CONFIG.format(domain="piege.fr", host="smtp.piege.fr", port=587, socket="STARTTLS")
        + padding,
    )
    with app.test_request_context(headers={"Accept-Language": "fr"}):
        found = discover("moi@piege.fr", restricted=False)
    assert found.suggestions == []
    assert any("64 Ko" in note for note in found.notes)


def test_an_address_that_is_not_a_web_address_is_not_fetched(app):
    from hpmail.delivery.autoconfig import AutoconfigRefused, fetch

    with app.test_request_context(), pytest.raises(AutoconfigRefused):
        fetch("ftp://exemple.fr/config.xml", lambda host: ["127.0.0.1"], time.monotonic() + 1, 10)


def test_a_dns_server_that_never_answers_is_given_up_in_time_in_french(app, silent_dns):
    app.config["DISCOVERY_TIMEOUT_SECONDS"] = 1.5
    started = time.monotonic()
    with app.test_request_context(headers={"Accept-Language": "fr"}):
        found = discover("moi@lycee-lent.fr", restricted=True)
    assert time.monotonic() - started < 3
    assert found.suggestions == []
    assert found.notes == [
        "Les serveurs DNS n'ont pas répondu à temps : les enregistrements du domaine n'ont pas "
        "été lus."
    ]


@pytest.mark.parametrize(
    "typed",
    ["moi@lycee\x00.fr", "moi@lycee.fr\r\nBcc: x@y.fr", "pas-une-adresse", "", "a@" + "b" * 300],
)
def test_an_address_with_control_characters_or_no_domain_is_refused_in_french(app, typed):
    with app.test_request_context(headers={"Accept-Language": "fr"}):
        with pytest.raises(DiscoveryRefused) as refused:
            discover(typed, restricted=True)
        assert refused.value.errors["address"][0][0].isupper()
