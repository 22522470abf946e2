"""Serveur › Paramètres d'envoi › Domaines autorisés › Signature DKIM, through the real routes.

The DNS records are served by a real local DNS server (``dns_zone``, dnslib).
"""

from __future__ import annotations

import base64
import html

import pytest
from sqlalchemy import func, select, text

from hpmail.delivery import dkim_keys
from hpmail.outbox.models import DkimKey, DkimState
from hpmail.outbox.secrets import decrypt_secret
from hpmail.outbox.settings import server_settings

FR = {"Accept-Language": "fr"}
SCHOOL = "lycee-demo.fr"
URL = f"/serveur/parametres-envoi/domaines/{SCHOOL}/dkim"


def page_text(response) -> str:
    return html.unescape(response.text)


@pytest.fixture
def admin(client, login_as, delivery_settings):
    delivery_settings(allowed_domains=f"{SCHOOL}\n*.univ-exemple.fr")
    return login_as("admin")


def generate(client, selector="hpmail2026", algorithm="rsa", **extra):
    data = {"action": "generate", "selector": selector, "algorithm": algorithm, **extra}
    return client.post(URL, data=data, headers=FR)


def act(client, key: DkimKey, action: str, version: str | None = None):
    data = {
        "action": action,
        "key_id": str(key.id),
        "version": version if version is not None else dkim_keys.version(key),
    }
    return client.post(URL, data=data, headers=FR)


def keys(db) -> list[DkimKey]:
    db.session.expire_all()
    return db.session.scalars(select(DkimKey).order_by(DkimKey.id)).all()


def key_count(db) -> int:
    db.session.rollback()
    return db.session.scalar(select(func.count()).select_from(DkimKey))


def test_a_generated_key_shows_the_exact_record_to_publish_and_never_its_private_key(
    client, db, admin
):
    response = generate(client)
    assert response.status_code == 302
    (key,) = keys(db)
    assert (key.domain, key.selector, key.algorithm, key.state) == (
        SCHOOL,
        "hpmail2026",
        "rsa",
        DkimState.NEW,
    )
    page = client.get(URL, headers=FR)
    shown = page_text(page)
    assert "La clé « hpmail2026 » est créée : publiez son enregistrement, puis activez-la." in shown
    assert "hpmail2026._domainkey.lycee-demo.fr" in shown
    assert f"v=DKIM1; k=rsa; p={key.public_key}" in shown
    assert "Pas encore active" in shown
    # The record is longer than a TXT string: the zone-file form cuts it into 255-character ones.
    strings = dkim_keys.record_strings(key)
    assert len(strings) == 2 and all(len(piece) <= 255 for piece in strings)
    assert "".join(strings) == dkim_keys.record_text(key)
    assert dkim_keys.zone_line(key) in shown

    # The private key: encrypted at rest (the row's bytes), never on the page.
    row = db.session.execute(
        text("SELECT private_key_encrypted FROM dkim_key WHERE id = :id"), {"id": key.id}
    ).scalar_one()
    private = decrypt_secret(bytes(row))
    assert private.startswith("-----BEGIN RSA PRIVATE KEY-----")
    body = "".join(private.splitlines()[1:-1])
    assert b"PRIVATE KEY" not in bytes(row) and body[:40].encode() not in bytes(row)
    assert body[:40] not in page.text and "PRIVATE KEY" not in page.text


def test_an_ed25519_key_publishes_its_raw_32_byte_public_key(client, db, admin):
    assert generate(client, "ed2026", "ed25519").status_code == 302
    (key,) = keys(db)
    assert len(base64.b64decode(key.public_key)) == 32
    assert len(base64.b64decode(decrypt_secret(key.private_key_encrypted))) == 32
    assert f"v=DKIM1; k=ed25519; p={key.public_key}" in page_text(client.get(URL))


def test_check_says_missing_then_mismatch_then_published_with_the_record_found(
    client, db, admin, dns_zone
):
    generate(client)
    (key,) = keys(db)
    name = dkim_keys.record_name(key)

    response = act(client, key, "check")
    assert response.status_code == 200
    assert "Pas encore d'enregistrement DKIM à ce nom" in page_text(response)
    assert keys(db)[0].checked_at is not None and not keys(db)[0].published

    other = base64.b64encode(b"\x01" * 32).decode()
    dns_zone.add(f'{name}. 60 IN TXT "v=DKIM1; k=rsa; p={other}"')
    response = act(client, keys(db)[0], "check")
    shown = page_text(response)
    assert "Le DNS contient une autre clé à ce nom" in shown
    assert f"v=DKIM1; k=rsa; p={other}" in shown
    assert not keys(db)[0].published

    dns_zone.records.clear()
    dns_zone.add(dkim_keys.zone_line(key))  # the zone-file line the page shows, as is
    response = act(client, keys(db)[0], "check")
    assert "Publié et conforme : le DNS contient l'enregistrement de cette clé." in page_text(
        response
    )
    assert keys(db)[0].published
    assert keys(db)[0].state == DkimState.NEW  # a check activates nothing


def test_activation_is_refused_until_the_record_is_published_and_matching(
    client, db, admin, dns_zone
):
    generate(client)
    (key,) = keys(db)
    response = act(client, key, "activate")
    assert response.status_code == 422
    assert "La clé n'a pas été activée : aucun enregistrement DKIM n'a été trouvé" in page_text(
        response
    )
    assert keys(db)[0].state == DkimState.NEW

    dns_zone.add(f'{dkim_keys.record_name(key)}. 60 IN TXT "v=DKIM1; k=rsa; p=AAAA"')
    response = act(client, keys(db)[0], "activate")
    assert response.status_code == 422
    assert "contient une autre clé publique" in page_text(response)
    assert keys(db)[0].state == DkimState.NEW

    dns_zone.add(dkim_keys.zone_line(key))
    response = act(client, keys(db)[0], "activate")
    assert response.status_code == 302
    (key,) = keys(db)
    assert key.state == DkimState.ACTIVE and key.activated_at is not None and key.published
    shown = page_text(client.get(URL, headers=FR))
    assert "La clé « hpmail2026 » signe désormais les e-mails de lycee-demo.fr." in shown


def test_a_silent_dns_server_is_said_in_french_and_activates_nothing(
    app, client, db, admin, silent_dns
):
    app.config["DISCOVERY_TIMEOUT_SECONDS"] = 1
    generate(client)
    response = act(client, keys(db)[0], "check")
    assert "Les serveurs DNS n'ont pas répondu à temps" in page_text(response)
    response = act(client, keys(db)[0], "activate")
    assert response.status_code == 422
    assert "La clé n'a pas été activée. Les serveurs DNS n'ont pas répondu à temps" in page_text(
        response
    )
    assert keys(db)[0].state == DkimState.NEW
    assert keys(db)[0].checked_at is None  # a silent DNS server said nothing of the record


def publish(dns_zone, key: DkimKey) -> None:
    dns_zone.add(dkim_keys.zone_line(key))


def test_rotation_retires_the_former_key_and_an_ed25519_key_signs_alongside(
    client, db, admin, dns_zone
):
    generate(client, "hpmail2026")
    first = keys(db)[0]
    publish(dns_zone, first)
    assert act(client, first, "activate").status_code == 302
    generate(client, "ed2026", "ed25519")
    ed = keys(db)[1]
    publish(dns_zone, ed)
    assert act(client, ed, "activate").status_code == 302
    assert [key.state for key in keys(db)] == [DkimState.ACTIVE, DkimState.ACTIVE]

    generate(client, "hpmail2027")
    second = keys(db)[2]
    publish(dns_zone, second)
    assert act(client, second, "activate").status_code == 302
    first, ed, second = keys(db)
    assert (first.state, ed.state, second.state) == (
        DkimState.RETIRED,
        DkimState.ACTIVE,
        DkimState.ACTIVE,
    )
    assert first.retired_at is not None
    shown = page_text(client.get(URL, headers=FR))
    assert "La clé « hpmail2027 » signe désormais les e-mails de lycee-demo.fr." in shown
    assert "La clé « hpmail2026 » est retirée : laissez son enregistrement publié" in shown
    assert "Pour changer de clé" in shown  # the rotation explained on the page

    # A replayed « Activer » of the first key (from a page shown before) changes nothing.
    stale = f"new-{first.created_at:%Y%m%d%H%M%S%f}"
    response = act(client, first, "activate", version=stale)
    assert response.status_code == 422
    assert "Cette clé a changé depuis l'affichage de la page : rien n'a été fait." in page_text(
        response
    )
    assert [key.state for key in keys(db)] == [
        DkimState.RETIRED,
        DkimState.ACTIVE,
        DkimState.ACTIVE,
    ]


def test_retire_then_delete_and_an_active_key_cannot_be_deleted(client, db, admin, dns_zone):
    generate(client)
    key = keys(db)[0]
    publish(dns_zone, key)
    act(client, key, "activate")
    key = keys(db)[0]
    response = act(client, key, "delete")
    assert response.status_code == 422
    assert "Une clé active ne peut pas être supprimée : retirez-la d'abord." in page_text(response)
    assert key_count(db) == 1

    assert act(client, keys(db)[0], "retire").status_code == 302
    key = keys(db)[0]
    assert key.state == DkimState.RETIRED
    version = dkim_keys.version(key)
    assert act(client, key, "delete").status_code == 302
    assert key_count(db) == 0
    replayed = client.post(
        URL, data={"action": "delete", "key_id": str(key.id), "version": version}, headers=FR
    )
    assert replayed.status_code == 404


def test_a_selector_used_twice_in_the_domain_is_refused(client, db, admin):
    assert generate(client).status_code == 302
    response = generate(client)  # a double click, or a replayed POST
    assert response.status_code == 422
    assert "Le sélecteur « hpmail2026 » est déjà celui d'une clé de ce domaine" in page_text(
        response
    )
    assert key_count(db) == 1


@pytest.mark.parametrize(
    "selector",
    [
        "bad\x00selector",
        "line\nbreak",
        "para\u2028graph",
        "../etc",
        "a" * 64,
        "sel_ector",
        "sélecteur",
        "ſelector",  # a long s: case-insensitive [a-z] would take it
        "-start",
        "two..dots",
        "trailing.",
        "with space",
        "",
    ],
)
def test_hostile_selectors_are_refused_in_french_and_nothing_is_saved(client, db, admin, selector):
    response = generate(client, selector)
    assert response.status_code == 422
    shown = page_text(response)
    assert any(
        words in shown
        for words in (
            "Un sélecteur ne contient que des lettres sans accents",
            "Saisissez un sélecteur",
            "doit tenir sur une ligne",
        )
    ), shown
    assert key_count(db) == 0


def test_a_selector_too_long_for_the_domain_name_is_refused(client, db, admin):
    long_domain = ".".join(["a" * 60] * 3) + ".fr"  # 186 characters
    server_settings().allowed_domains = long_domain
    db.session.commit()
    url = f"/serveur/parametres-envoi/domaines/{long_domain}/dkim"
    data = {"action": "generate", "selector": "b" * 63, "algorithm": "rsa"}
    response = client.post(url, data=data, headers=FR)
    assert response.status_code == 422
    assert "Ce sélecteur est trop long pour ce domaine" in page_text(response)
    assert key_count(db) == 0


def test_an_unknown_algorithm_or_action_is_refused(client, db, admin):
    assert generate(client, algorithm="dsa").status_code == 422
    response = client.post(URL, data={"action": "publish", "key_id": "1"}, headers=FR)
    assert response.status_code == 422
    assert key_count(db) == 0


def test_without_csrf_token_nothing_is_generated(client, db, admin):
    response = client.post(
        URL,
        data={"action": "generate", "selector": "hpmail2026", "algorithm": "rsa"},
        csrf=False,
    )
    assert response.status_code == 400
    assert key_count(db) == 0


@pytest.mark.parametrize("role", ["teacher", "staff"])
def test_only_admins_open_the_dkim_page(client, login_as, delivery_settings, role):
    delivery_settings(allowed_domains=SCHOOL)
    login_as(role)
    assert client.get(URL, headers=FR).status_code == 403
    assert generate(client).status_code == 403


def test_a_domain_not_allowed_has_no_dkim_page(client, db, admin):
    for domain in ("exemple.com", "lycee-demo.fr.evil.com", "..", "%0a"):
        assert client.get(f"/serveur/parametres-envoi/domaines/{domain}/dkim").status_code == 404
    assert key_count(db) == 0


def test_another_domains_key_is_not_found_from_this_page(client, db, admin, make_user):
    other = dkim_keys.generate("univ-exemple.fr", "hpmail2026", "rsa", make_user("admin"))
    db.session.commit()
    response = act(client, other, "retire")
    assert response.status_code == 404
    assert keys(db)[0].state == DkimState.NEW


def test_a_wildcard_allowed_domain_has_its_parent_domains_page_linked_from_the_settings(
    client, admin
):
    settings_page = client.get("/serveur/parametres-envoi", headers=FR)
    assert 'href="/serveur/parametres-envoi/domaines/lycee-demo.fr/dkim"' in settings_page.text
    assert 'href="/serveur/parametres-envoi/domaines/univ-exemple.fr/dkim"' in settings_page.text
    page = client.get("/serveur/parametres-envoi/domaines/univ-exemple.fr/dkim", headers=FR)
    assert page.status_code == 200
    assert "Signature DKIM de univ-exemple.fr" in page_text(page)


def test_a_domain_holds_a_bounded_number_of_keys(client, db, admin, make_user):
    someone = make_user("admin")
    for number in range(dkim_keys.KEYS_PER_DOMAIN):
        dkim_keys.generate(SCHOOL, f"old{number}", "ed25519", someone)
    db.session.commit()
    response = generate(client, "one-more")
    assert response.status_code == 422
    assert "Ce domaine a déjà 10 clés : supprimez d'abord une clé retirée." in page_text(response)
    assert key_count(db) == dkim_keys.KEYS_PER_DOMAIN
