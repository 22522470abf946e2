"""SPF, DKIM, DMARC and MX of a sender domain, read from a real DNS server on loopback (dnslib),
evaluated as receivers do (pyspf through hpmail's own look-ups)."""

from __future__ import annotations

import threading
import time

import pytest

from hpmail.delivery.dkim_keys import new_key_pair
from hpmail.delivery.dmarc import Authentication, aligned, check_dmarc, organizational_domain
from hpmail.delivery.dns import Lookup
from hpmail.delivery.domain_checks import check_domain
from hpmail.delivery.spf_check import evaluate
from hpmail.outbox.models import DkimKey, Transport
from hpmail.outbox.secrets import encrypt_secret

DOMAIN = "lycee-exemple.fr"
RELAY = "smtp.lycee-exemple.fr"
RELAY_ADDRESS = "193.51.24.5"
# Two public keys as DKIM records carry them (base64 of SubjectPublicKeyInfo, shortened).
PUBLIC_KEY = "MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEAu1SU1LfVLPHCozMxH2Mo4lgO"
OTHER_KEY = "MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEA3Zx9Pq0wX2oHb8kqvM7bGk1t"


@pytest.fixture
def relay(dns_zone, make_transport):
    """The school's own SMTP relay, at a public address the zone gives."""
    dns_zone.add(f"{RELAY}. 60 IN A {RELAY_ADDRESS}")
    return make_transport(host=RELAY, port=587, security="starttls")


@pytest.fixture
def microsoft(dns_zone, make_transport):
    """Microsoft 365's submission server, and the SPF record customers include."""
    dns_zone.add('spf.protection.outlook.com. 60 IN TXT "v=spf1 ip4:40.92.0.0/15 -all"')
    return make_transport(
        host="smtp.office365.com", port=587, security="starttls", auth="microsoft"
    )


def checks_of(app, domain: str, *transports: Transport) -> dict:
    with app.test_request_context(headers={"Accept-Language": "fr"}):
        report = check_domain(domain, transports)
    return {check.kind: check for check in report.checks} | {"notes": report.notes}


def spf_record(zone, text: str, domain: str = DOMAIN) -> None:
    zone.add(f'{domain}. 60 IN TXT "{text}"')


# --- SPF -----------------------------------------------------------------------------------------


def test_spf_that_authorizes_the_relay_is_green_and_names_its_address(app, dns_zone, relay):
    spf_record(dns_zone, "v=spf1 ip4:193.51.24.0/24 -all")
    spf = checks_of(app, DOMAIN, relay)["spf"]
    assert spf.state == "ok"
    assert spf.findings == [
        "Le SPF de lycee-exemple.fr autorise smtp.lycee-exemple.fr (193.51.24.5)."
    ]
    assert spf.records == []


def test_spf_softfail_for_the_relay_is_orange_with_the_record_that_adds_it(app, dns_zone, relay):
    spf_record(dns_zone, "v=spf1 ip4:198.51.100.0/24 ~all")
    spf = checks_of(app, DOMAIN, relay)["spf"]
    assert spf.state == "warning"
    assert "(softfail)" in spf.findings[0]
    [record] = spf.records
    assert (record.name, record.kind) == (DOMAIN, "TXT")
    assert record.value == "v=spf1 ip4:193.51.24.5 ip4:198.51.100.0/24 ~all"
    assert spf.advice == "Remplacez l'enregistrement SPF de lycee-exemple.fr par celui-ci :"


def test_spf_neutral_is_orange_too(app, dns_zone, relay):
    spf_record(dns_zone, "v=spf1 ?all")
    assert checks_of(app, DOMAIN, relay)["spf"].state == "warning"


def test_spf_that_forbids_the_relay_is_red(app, dns_zone, relay):
    spf_record(dns_zone, "v=spf1 mx -all")
    dns_zone.add(f"{DOMAIN}. 60 IN MX 10 mx.{DOMAIN}.")
    dns_zone.add(f"mx.{DOMAIN}. 60 IN A 193.51.24.9")
    spf = checks_of(app, DOMAIN, relay)["spf"]
    assert spf.state == "error"
    assert "interdit smtp.lycee-exemple.fr (193.51.24.5) (fail)" in spf.findings[0]
    assert spf.records[0].value == "v=spf1 ip4:193.51.24.5 mx -all"


def test_missing_spf_is_red_with_a_record_built_from_the_relay(app, dns_zone, relay):
    checks = checks_of(app, DOMAIN, relay)
    spf = checks["spf"]
    assert spf.state == "error"
    assert "ne publie aucun enregistrement SPF" in spf.findings[0]
    assert spf.records[0].value == "v=spf1 ip4:193.51.24.5 ~all"
    assert "Publiez cet enregistrement TXT à la racine de lycee-exemple.fr" in spf.advice


def test_missing_spf_for_microsoft_365_proposes_its_include(app, dns_zone, microsoft):
    spf = checks_of(app, DOMAIN, microsoft)["spf"]
    assert spf.state == "error"
    assert spf.records[0].value == "v=spf1 include:spf.protection.outlook.com ~all"


def test_the_include_of_microsoft_365_is_green_even_through_another_include(
    app, dns_zone, microsoft
):
    spf_record(dns_zone, "v=spf1 include:_spf.lycee-exemple.fr -all")
    spf_record(dns_zone, "v=spf1 include:spf.protection.outlook.com -all", "_spf." + DOMAIN)
    spf = checks_of(app, DOMAIN, microsoft)["spf"]
    assert spf.state == "ok"
    assert spf.findings == [
        "Le SPF de lycee-exemple.fr inclut spf.protection.outlook.com, les serveurs de "
        "Microsoft 365."
    ]


def test_spf_without_the_include_of_google_is_red_and_the_record_adds_it(
    app, dns_zone, make_transport
):
    dns_zone.add('_spf.google.com. 60 IN TXT "v=spf1 ip4:35.190.247.0/24 ~all"')
    google = make_transport(host="smtp.gmail.com", port=587, security="starttls", auth="google")
    spf_record(dns_zone, "v=spf1 mx -all")
    spf = checks_of(app, DOMAIN, google)["spf"]
    assert spf.state == "error"
    assert "n'inclut pas _spf.google.com" in spf.findings[0]
    assert spf.records[0].value == "v=spf1 include:_spf.google.com mx -all"


def test_spf_needing_more_than_ten_lookups_is_red(app, dns_zone, relay):
    includes = [f"include:n{n}.{DOMAIN}" for n in range(11)]
    # Longer than one TXT string (255 bytes): published as two, which receivers join.
    first, second = " ".join(["v=spf1", *includes[:6]]), " ".join(["", *includes[6:], "-all"])
    dns_zone.add(f'{DOMAIN}. 60 IN TXT "{first}" "{second}"')
    for n in range(11):
        spf_record(dns_zone, "v=spf1 ip4:10.9.9.9 -all", f"n{n}.{DOMAIN}")
    spf = checks_of(app, DOMAIN, relay)["spf"]
    assert spf.state == "error"
    assert "plus de 10 requêtes DNS" in spf.findings[0]
    assert spf.records == []


def test_two_spf_records_are_red(app, dns_zone, relay):
    spf_record(dns_zone, "v=spf1 ip4:193.51.24.5 -all")
    spf_record(dns_zone, "v=spf1 include:spf.protection.outlook.com -all")
    spf = checks_of(app, DOMAIN, relay)["spf"]
    assert spf.state == "error"
    assert "publie 2 enregistrements SPF" in spf.findings[0]


def test_a_relay_inside_the_network_is_not_judged_by_its_private_address(
    app, dns_zone, make_transport
):
    dns_zone.add(f"relais.{DOMAIN}. 60 IN A 10.0.0.25")
    spf_record(dns_zone, "v=spf1 ip4:193.51.24.5 -all")
    spf = checks_of(app, DOMAIN, make_transport(host=f"relais.{DOMAIN}"))["spf"]
    assert spf.state == "warning"
    assert "est dans le réseau de l'établissement" in spf.findings[0]
    assert spf.records == []  # "ip4:10.0.0.25" would be wrong advice


def test_each_evaluation_asks_its_own_dns_servers_even_from_two_threads_at_once(
    app, dns_zone, request
):
    """pyspf's DNS function is shared by the process; each query keeps its own Lookup."""
    dns_zone.add(f"{RELAY}. 60 IN A {RELAY_ADDRESS}")
    record = f"v=spf1 a:{RELAY} -all"
    zone_port = app.config["DNS_PORT"]
    request.getfixturevalue("silent_dns")  # the app now asks a server that never answers
    results = {}
    with app.test_request_context():
        silent = Lookup(2, [])
        app.config["DNS_PORT"] = zone_port
        answering = Lookup(2, [])

        def evaluate_in_a_thread() -> None:
            with app.app_context():
                results["silent"] = evaluate(silent, DOMAIN, record, RELAY_ADDRESS, "x")

        thread = threading.Thread(target=evaluate_in_a_thread)
        thread.start()
        time.sleep(0.2)  # the silent look-up is waiting now
        results["answering"] = evaluate(answering, DOMAIN, record, RELAY_ADDRESS, "x")
        assert thread.is_alive()
        thread.join()
    assert results["answering"].result == "pass"
    assert results["silent"].result == "temperror"


# --- DKIM ----------------------------------------------------------------------------------------


def dkim_key(db, selector="hpmail1", state="active", domain=DOMAIN) -> DkimKey:
    """A key as the DKIM page makes it (Ed25519: quick to generate), its private key encrypted."""
    private, public = new_key_pair("ed25519")
    key = DkimKey(
        domain=domain,
        selector=selector,
        algorithm="ed25519",
        private_key_encrypted=encrypt_secret(private),
        public_key=public,
        state=state,
    )
    db.session.add(key)
    db.session.commit()
    return key


def publish(zone, key: DkimKey, public_key: str | None = None) -> None:
    value = public_key or key.public_key
    zone.add(f'{key.selector}._domainkey.{key.domain}. 60 IN TXT "v=DKIM1; k=ed25519; p={value}"')


def test_an_active_key_of_hpmail_published_and_matching_is_green(app, db, dns_zone, relay):
    publish(dns_zone, dkim_key(db))
    dkim = checks_of(app, DOMAIN, relay)["dkim"]
    assert dkim.state == "ok"
    assert dkim.findings == [
        "hpmail signe avec la clé « hpmail1 » (ED25519), publiée en "
        "hpmail1._domainkey.lycee-exemple.fr."
    ]


def test_an_active_key_whose_record_holds_another_key_is_red_with_the_right_record(
    app, db, dns_zone, relay
):
    key = dkim_key(db)
    publish(dns_zone, key, OTHER_KEY)
    dkim = checks_of(app, DOMAIN, relay)["dkim"]
    assert dkim.state == "error"
    assert "en publie une autre" in dkim.findings[0]
    [record] = dkim.records
    assert record.name == f"hpmail1._domainkey.{DOMAIN}"
    assert record.value == f"v=DKIM1; k=ed25519; p={key.public_key}"


@pytest.mark.parametrize(("alignment", "state"), [("r", "ok"), ("s", "error")])
def test_a_subdomain_signed_with_its_parents_key_aligns_only_under_relaxed_dmarc(
    app, db, dns_zone, relay, alignment, state
):
    """The worker signs ent.lycee-exemple.fr with lycee-exemple.fr's key: d= is the parent."""
    sub = f"ent.{DOMAIN}"
    publish(dns_zone, dkim_key(db))
    dns_zone.add(f'_dmarc.{DOMAIN}. 60 IN TXT "v=DMARC1; p=reject; adkim={alignment}"')
    checks = checks_of(app, sub, relay)  # no SPF record at the subdomain: DKIM alone decides
    assert checks["dkim"].state == "ok"
    assert "hpmail1._domainkey.lycee-exemple.fr" in checks["dkim"].findings[0]
    assert checks["dmarc"].state == state
    if state == "error":
        assert (
            "DKIM signe pour : lycee-exemple.fr (alignement : aspf=r, adkim=s)"
            in (checks["dmarc"].findings[2])
        )


def test_an_active_key_not_published_is_red(app, db, dns_zone, relay):
    dkim_key(db)
    dkim = checks_of(app, DOMAIN, relay)["dkim"]
    assert dkim.state == "error"
    assert "n'est pas publié" in dkim.findings[0]


def test_microsoft_365_signing_through_its_cnames_is_green(app, dns_zone, microsoft):
    dns_zone.add(
        f"selector1._domainkey.{DOMAIN}. 60 IN CNAME "
        "selector1-lycee-exemple-fr._domainkey.lyceeexemple.onmicrosoft.com."
    )
    dkim = checks_of(app, DOMAIN, microsoft)["dkim"]
    assert dkim.state == "ok"
    assert "Microsoft 365 signe les e-mails de lycee-exemple.fr" in dkim.findings[0]


def test_google_signing_with_its_txt_record_is_green(app, dns_zone, make_transport):
    google = make_transport(host="smtp.gmail.com", port=587, security="starttls", auth="google")
    dns_zone.add(f'google._domainkey.{DOMAIN}. 60 IN TXT "v=DKIM1; k=rsa; p={PUBLIC_KEY}"')
    assert checks_of(app, DOMAIN, google)["dkim"].state == "ok"


def test_microsoft_365_without_its_cnames_is_orange_and_points_to_its_portal(
    app, dns_zone, microsoft
):
    dkim = checks_of(app, DOMAIN, microsoft)["dkim"]
    assert dkim.state == "warning"
    assert "signe avec son propre domaine" in dkim.findings[0]
    assert "portail Microsoft Defender" in dkim.advice
    assert not dkim.dkim_page


def test_no_dkim_at_all_is_orange_and_leads_to_the_dkim_page(app, dns_zone, relay):
    dkim = checks_of(app, DOMAIN, relay)["dkim"]
    assert dkim.state == "warning"
    assert dkim.dkim_page
    assert "Générez une clé" in dkim.findings[0]


def test_a_new_key_not_yet_active_shows_its_record_to_publish(app, db, dns_zone, relay):
    dkim_key(db, selector="hpmail2", state="new")
    dkim = checks_of(app, DOMAIN, relay)["dkim"]
    assert dkim.state == "warning"
    assert dkim.records[0].name == f"hpmail2._domainkey.{DOMAIN}"


# --- DMARC ---------------------------------------------------------------------------------------


def test_missing_dmarc_is_orange_with_a_record_to_begin(app, dns_zone, relay):
    dmarc = checks_of(app, DOMAIN, relay)["dmarc"]
    assert dmarc.state == "warning"
    [record] = dmarc.records
    assert (record.name, record.kind) == (f"_dmarc.{DOMAIN}", "TXT")
    assert record.value == f"v=DMARC1; p=none; rua=mailto:postmaster@{DOMAIN}"


def test_dmarc_none_is_orange_and_offers_the_next_step(app, dns_zone, relay):
    spf_record(dns_zone, f"v=spf1 ip4:{RELAY_ADDRESS} -all")
    dns_zone.add(f'_dmarc.{DOMAIN}. 60 IN TXT "v=DMARC1; p=none; rua=mailto:dmarc@{DOMAIN}"')
    dmarc = checks_of(app, DOMAIN, relay)["dmarc"]
    assert dmarc.state == "warning"
    assert "« none » est le bon début" in dmarc.advice
    assert dmarc.records[0].value == f"v=DMARC1; p=quarantine; rua=mailto:dmarc@{DOMAIN}"


def test_dmarc_reject_with_spf_aligned_is_green(app, dns_zone, relay):
    spf_record(dns_zone, f"v=spf1 ip4:{RELAY_ADDRESS} -all")
    dns_zone.add(f'_dmarc.{DOMAIN}. 60 IN TXT "v=DMARC1; p=reject"')
    dmarc = checks_of(app, DOMAIN, relay)["dmarc"]
    assert dmarc.state == "ok"
    assert dmarc.findings == [
        "Enregistrement DMARC en _dmarc.lycee-exemple.fr : politique « reject ».",
        "Les e-mails de lycee-exemple.fr passent DMARC (SPF ou DKIM aligné).",
    ]


def test_dmarc_with_neither_spf_nor_dkim_for_the_from_is_red(app, dns_zone, microsoft):
    """Microsoft 365 without its include nor its DKIM CNAMEs: nothing authenticates the From."""
    spf_record(dns_zone, "v=spf1 mx -all")
    dns_zone.add(f'_dmarc.{DOMAIN}. 60 IN TXT "v=DMARC1; p=quarantine"')
    dmarc = checks_of(app, DOMAIN, microsoft)["dmarc"]
    assert dmarc.state == "error"
    assert "Ni SPF ni DKIM n'authentifie lycee-exemple.fr" in dmarc.findings[1]
    assert dmarc.findings[2] == (
        "SPF authentifie : rien ; DKIM signe pour : rien (alignement : aspf=r, adkim=r)."
    )


def test_spf_and_dkim_of_other_domains_do_not_align_with_the_from(app, dns_zone):
    dns_zone.add(f'_dmarc.{DOMAIN}. 60 IN TXT "v=DMARC1; p=reject"')
    elsewhere = Authentication("bounces.relais-mail.fr", True, ["lyceeexemple.onmicrosoft.com"])
    with app.test_request_context(headers={"Accept-Language": "fr"}):
        dmarc = check_dmarc(DOMAIN, elsewhere, Lookup(2, []))
    assert dmarc.state == "error"
    assert "bounces.relais-mail.fr" in dmarc.findings[2]
    assert "lyceeexemple.onmicrosoft.com" in dmarc.findings[2]


def test_strict_alignment_refuses_a_parent_domain_that_relaxed_alignment_accepts(app):
    assert aligned(DOMAIN, f"ent.{DOMAIN}", "r")
    assert not aligned(DOMAIN, f"ent.{DOMAIN}", "s")
    assert organizational_domain(f"a.b.{DOMAIN}") == DOMAIN
    assert organizational_domain("ent.ac-paris.fr") == "ac-paris.fr"


def test_a_subdomain_falls_back_to_the_dmarc_of_its_organizational_domain(app, dns_zone):
    sub = f"ent.{DOMAIN}"
    dns_zone.add(f"smtp.{sub}. 60 IN A {RELAY_ADDRESS}")
    spf_record(dns_zone, f"v=spf1 ip4:{RELAY_ADDRESS} -all", sub)
    dns_zone.add(f'_dmarc.{DOMAIN}. 60 IN TXT "v=DMARC1; p=reject; sp=quarantine; adkim=s"')
    transport = Transport(host=f"smtp.{sub}", port=587)
    dmarc = checks_of(app, sub, transport)["dmarc"]
    assert dmarc.state == "ok"
    assert dmarc.findings[0] == (
        "Enregistrement DMARC en _dmarc.lycee-exemple.fr : politique « quarantine »."
    )


def test_an_invalid_dmarc_record_is_red(app, dns_zone, relay):
    dns_zone.add(f'_dmarc.{DOMAIN}. 60 IN TXT "v=DMARC1; p=block"')
    dmarc = checks_of(app, DOMAIN, relay)["dmarc"]
    assert dmarc.state == "error"
    assert "sa politique p= doit être none, quarantine ou reject" in dmarc.findings[0]


# --- MX and a silent DNS -------------------------------------------------------------------------


def test_a_domain_without_mx_is_orange_because_replies_would_bounce(app, dns_zone, relay):
    mx = checks_of(app, DOMAIN, relay)["mx"]
    assert mx.state == "warning"
    assert mx.findings == ["lycee-exemple.fr n'a aucun enregistrement MX."]
    assert "reviendraient non distribués" in mx.advice


def test_a_domain_with_mx_is_green_and_a_null_mx_is_orange(app, dns_zone, relay):
    dns_zone.add(f"{DOMAIN}. 60 IN MX 10 mx1.{DOMAIN}.")
    assert checks_of(app, DOMAIN, relay)["mx"].state == "ok"
    dns_zone.add("college-exemple.fr. 60 IN MX 0 .")
    mx = checks_of(app, "college-exemple.fr", relay)["mx"]
    assert mx.state == "warning"
    assert "MX nul" in mx.findings[0]


def test_a_silent_dns_leaves_every_check_unknown_within_the_deadline(
    app, silent_dns, make_transport
):
    app.config["DOMAIN_CHECK_TIMEOUT_SECONDS"] = 1
    started = time.monotonic()
    checks = checks_of(app, DOMAIN, make_transport(host=RELAY))
    assert time.monotonic() - started < 2.5
    assert [checks[kind].state for kind in ("spf", "dkim", "dmarc", "mx")] == ["unknown"] * 4
    assert checks["notes"] == [
        "Les serveurs DNS n'ont pas répondu à temps : les enregistrements du domaine n'ont pas "
        "été lus."
    ]
