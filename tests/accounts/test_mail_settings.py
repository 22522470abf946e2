"""Each user's page: the account they send from, a personal account, options, the tooltip."""

from __future__ import annotations

import html

from sqlalchemy import select

from hpmail.accounts import service
from hpmail.accounts.models import Account, AccountKind, MailSettings
from hpmail.outbox.settings import server_settings
from tests.accounts.conftest import FR, HTMX, code_in

URL = "/configuration/envoi"


def test_a_user_authorised_on_a_school_account_has_it_selected_by_default(
    client, db, login_as, make_account
):
    sophie = login_as("staff")
    account = make_account(members=[sophie])
    page = client.get(URL, headers=FR)
    assert page.status_code == 200
    assert "Paramétrer l'envoi d'e-mails pour ce poste" in html.unescape(page.text)
    radio = page.text.split(f'value="{account.id}"')[1].split(">")[0]
    assert "checked" in radio
    assert service.default_account(sophie).id == account.id


def test_a_user_sets_up_a_personal_account_verified_by_the_code(client, db, login_as, mail_server):
    julien = login_as("teacher")
    response = client.post(
        f"{URL}/compte-personnel",
        data={"display_name": "Julien Petit", "address": "julien.petit@lycee.example"},
        headers=FR,
    )
    assert response.status_code == 302
    assert service.usable_accounts(julien) == []  # not before the code
    code = code_in(mail_server, "julien.petit@lycee.example")
    page = client.get(URL, headers=FR)
    assert "Code de vérification" in page.text
    checked = client.post(f"{URL}/compte-personnel/code", data={"code": code}, headers=HTMX)
    assert "adresse est vérifiée" in checked.text
    db.session.expire_all()
    [account] = service.usable_accounts(julien)
    assert account.kind == AccountKind.PERSONAL and account.owner_id == julien.id
    assert service.default_account(julien).id == account.id


def test_personal_accounts_need_no_code_when_the_admin_switched_verification_off(
    client, db, login_as, mail_server
):
    server_settings().require_personal_verification = False
    db.session.commit()
    julien = login_as("teacher")
    client.post(
        f"{URL}/compte-personnel",
        data={"display_name": "Julien", "address": "julien@lycee.example"},
        headers=FR,
    )
    assert mail_server.received == []
    assert [a.address for a in service.usable_accounts(julien)] == ["julien@lycee.example"]


def test_personal_account_input_is_checked(client, db, login_as, mail_server, make_account):
    make_account("secretariat@lycee.example")
    login_as("teacher")
    for data, message in [
        ({"display_name": "", "address": "j@lycee.example"}, "Ce champ est obligatoire."),
        (
            {"display_name": "J\nBcc: x@evil.example", "address": "j@lycee.example"},
            "retours à la ligne",
        ),
        (
            {"display_name": "Julien", "address": "secretariat@lycee.example"},
            "Un autre compte utilise",
        ),
        ({"display_name": "Julien", "address": "j@"}, "n&#39;est pas valide"),
    ]:
        response = client.post(f"{URL}/compte-personnel", data=data, headers=FR)
        assert response.status_code == 422, data
        assert message in response.text, data
    assert db.session.scalars(select(Account).where(Account.kind == "personal")).first() is None
    assert mail_server.received == []


def test_choosing_an_account_the_user_is_not_authorised_on_is_refused(
    client, db, login_as, make_account
):
    sophie = login_as("staff")
    mine = make_account("vie-scolaire@lycee.example", members=[sophie])
    other = make_account("direction@lycee.example")
    response = client.post(URL, data={"account_id": other.id}, headers=FR)
    assert response.status_code == 422
    assert "Vous n&#39;êtes pas autorisé à envoyer avec ce compte." in response.text
    settings = db.session.get(MailSettings, sophie.id)
    assert settings is None or settings.account_id != other.id
    assert client.post(URL, data={"account_id": mine.id}, headers=FR).status_code == 302
    assert db.session.get(MailSettings, sophie.id).account_id == mine.id


def test_choosing_an_account_without_csrf_token_is_refused(client, db, login_as, make_account):
    sophie = login_as("staff")
    account = make_account(members=[sophie])
    assert client.post(URL, data={"account_id": account.id}, csrf=False).status_code == 400
    settings = db.session.get(MailSettings, sophie.id)
    assert settings is None or settings.account_id is None


def test_options_save_a_reply_to_and_the_blind_copy_switch(client, db, login_as, make_account):
    sophie = login_as("staff")
    make_account(members=[sophie])
    page = client.get(URL, headers=FR)
    assert "Adresse de réponse" in page.text
    assert "Masquer les adresses des destinataires des e-mails (copie cachée)" in page.text
    bad = client.post(
        f"{URL}/options", data={"reply_to": "moi@lycee.example\r\nBcc: x@evil.example"}, headers=FR
    )
    assert bad.status_code == 422 and "retours à la ligne" in bad.text
    settings = db.session.get(MailSettings, sophie.id)  # opening the page wrote no row
    assert settings is None or settings.reply_to is None
    ok = client.post(
        f"{URL}/options",
        data={"reply_to": "sophie@lycee.example", "hide_recipients": "y"},
        headers=FR,
    )
    assert ok.status_code == 302
    db.session.expire_all()
    settings = db.session.get(MailSettings, sophie.id)
    assert settings.reply_to == "sophie@lycee.example" and settings.hide_recipients


def test_hovering_the_shared_icon_shows_the_other_users_of_the_account(
    client, db, login_as, make_user, make_account
):
    sophie = login_as("staff", display_name="Sophie Bernard")
    julien = make_user("teacher", display_name="Julien Petit")
    account = make_account(members=[sophie, julien])
    page = client.get(URL, headers=FR)
    assert 'hx-trigger="mouseenter once, focus once"' in page.text
    tip = client.get(f"{URL}/comptes/{account.id}/membres", headers=HTMX)
    assert tip.status_code == 200
    assert "Julien Petit" in tip.text and "Sophie Bernard" not in tip.text
    assert "<html" not in tip.text


def test_the_tooltip_refuses_a_user_not_on_the_account(
    client, db, login_as, make_user, make_account
):
    login_as("staff")
    julien = make_user("teacher", display_name="Julien Petit")
    account = make_account(members=[julien])
    response = client.get(f"{URL}/comptes/{account.id}/membres", headers=HTMX)
    assert response.status_code == 404
    assert "Julien Petit" not in response.text


def test_a_personal_code_is_resent_after_60_seconds_only(client, db, login_as, mail_server):
    from datetime import timedelta

    from hpmail.accounts.models import VerificationCode

    login_as("teacher")
    client.post(
        f"{URL}/compte-personnel",
        data={"display_name": "Julien", "address": "julien@lycee.example"},
        headers=FR,
    )
    too_soon = client.post(f"{URL}/compte-personnel/renvoyer-code", headers=HTMX)
    assert "secondes avant de demander un nouveau code" in too_soon.text
    assert len(mail_server.received) == 1
    for row in db.session.scalars(select(VerificationCode)):
        row.sent_at -= timedelta(seconds=61)
    db.session.commit()
    again = client.post(f"{URL}/compte-personnel/renvoyer-code", headers=HTMX)
    assert "Un nouveau code a été envoyé à julien@lycee.example." in again.text
    assert len(mail_server.received) == 2


def test_another_user_s_personal_code_cannot_be_checked(
    client, db, login_as, make_user, mail_server
):
    login_as("teacher")
    response = client.post(f"{URL}/compte-personnel/code", data={"code": "123456"}, headers=HTMX)
    assert response.status_code == 404


def test_saving_an_address_another_user_is_verifying_never_deletes_their_account(
    client, db, login_as, make_user, make_account, mail_server
):
    from hpmail.outbox.models import Mailing

    julien = make_user("teacher")
    own = make_account("julien@lycee.example", kind="personal", owner=julien, label="Julien")
    db.session.add(
        Mailing(
            author_id=julien.id,
            account_id=own.id,
            subject="Sortie au musée",
            sender_address=own.address,
        )
    )
    db.session.commit()
    # Julien moves his account to a new address: unverified until he types the code.
    login_as(julien)
    client.post(
        f"{URL}/compte-personnel",
        data={"display_name": "Julien", "address": "contact@lycee.example"},
        headers=FR,
    )
    julien_code = code_in(mail_server, "contact@lycee.example")
    client.post("/deconnexion")

    login_as("staff")
    response = client.post(
        f"{URL}/compte-personnel",
        data={"display_name": "Sophie", "address": "contact@lycee.example"},
        headers=FR,
    )
    assert response.status_code == 302
    db.session.expire_all()
    kept = db.session.get(Account, own.id)
    assert kept is not None and kept.owner_id == julien.id
    assert [a.id for a in service.visible_accounts(julien)] == [own.id]  # his archive stays
    mailing = db.session.scalar(select(Mailing).where(Mailing.subject == "Sortie au musée"))
    assert mailing.account_id == own.id

    # Whoever proves the address first takes it; the other is told so, in French, and keeps
    # their account.
    sophie_code = code_in(mail_server, "contact@lycee.example")
    checked = client.post(f"{URL}/compte-personnel/code", data={"code": sophie_code}, headers=HTMX)
    assert "adresse est vérifiée" in checked.text
    client.post("/deconnexion")
    login_as(julien)
    late = client.post(f"{URL}/compte-personnel/code", data={"code": julien_code}, headers=HTMX)
    assert late.status_code == 422 and "Un autre compte utilise déjà cette adresse." in late.text
    db.session.expire_all()
    assert db.session.get(Account, own.id).verified_at is None


def test_reply_to_and_hide_recipients_are_shown_as_the_user_s_options_for_every_account(
    client, db, login_as, make_account
):
    sophie = login_as("staff")
    make_account(members=[sophie])
    make_account("direction@lycee.example", members=[sophie], label="Direction")
    page = html.unescape(client.get(URL, headers=FR).text)
    options = page.split('id="account-options"')[1].split("</section>")[0]
    assert "Mes options d'envoi" in options
    assert "valent pour tous les comptes" in options
    assert "Options de" not in options  # not presented as one account's options


def test_a_bad_reply_to_is_explained_even_to_a_user_without_an_account(client, login_as):
    login_as("teacher")
    page = client.post(
        "/configuration/envoi/options",
        data={"reply_to": "pas une adresse"},
        headers={"Accept-Language": "fr"},
    )
    assert page.status_code == 422
    assert 'id="account-options"' in page.text
    options = page.text.split('id="account-options"')[1].split("</section>")[0]
    assert "Cette adresse e-mail n&#39;est pas valide." in options
