"""The admin creates a school account: code e-mailed, checked, secret set; and every refusal."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from sqlalchemy import event, select

from hpmail.accounts.models import Account, VerificationCode
from hpmail.accounts.verification import hash_code
from tests.accounts.conftest import FR, HTMX, SECRET_ANSWER, code_in

URL = "/configuration/comptes-etablissement"


def create(client, label="Secrétariat", address="secretariat@lycee.example", **kwargs):
    return client.post(
        f"{URL}/nouveau", data={"label": label, "address": address}, headers=FR, **kwargs
    )


def only_account(db) -> Account:
    return db.session.scalars(select(Account)).one()


def created_with_code(client, db, mail_server) -> tuple[Account, str]:
    """Create the school account; return it and the code e-mailed to its address."""
    create(client)
    account = only_account(db)
    return account, code_in(mail_server, account.address)


def type_code(client, account, code, **kwargs):
    return client.post(f"{URL}/{account.id}/code", data={"code": code}, headers=HTMX, **kwargs)


def latest_code_row(db, account) -> VerificationCode:
    return db.session.scalars(
        select(VerificationCode)
        .where(VerificationCode.account_id == account.id)
        .order_by(VerificationCode.id.desc())
    ).first()


@pytest.fixture
def admin(login_as):
    return login_as("admin")


def test_admin_creates_a_school_account_with_the_code_received_by_e_mail(
    client, db, admin, mail_server
):
    response = create(client)
    assert response.status_code == 302
    account = only_account(db)
    assert account.verified_at is None
    [received] = mail_server.received
    assert received.rcpt_tos == ["secretariat@lycee.example"]
    assert received.message["Subject"] == "Votre code de vérification hpmail"
    assert received.message.get_body(("html",)) is not None
    code = code_in(mail_server, "secretariat@lycee.example")
    row = latest_code_row(db, account)
    assert code not in row.code_hash and row.code_hash == hash_code(
        account.id, account.address, code
    )

    page = client.get(response.headers["Location"], headers=FR)
    assert "Code de vérification" in page.text and "Renvoyer le code" in page.text

    checked = type_code(client, account, code)
    assert checked.status_code == 200
    assert (
        "L&#39;adresse est vérifiée." in checked.text or "L'adresse est vérifiée." in checked.text
    )
    assert "Question secrète" in checked.text and "<html" not in checked.text

    done = client.post(
        f"{URL}/{account.id}/secret",
        data={"question": "Auteur préféré ?", "answer": "  Victor   HUGO "},
        headers=FR,
    )
    assert done.status_code == 302
    db.session.expire_all()
    account = only_account(db)
    assert account.is_ready and account.secret_answer_hash != "victor hugo"
    page = client.get(done.headers["Location"], headers=FR)
    assert "Utilisateurs autorisés" in page.text and "Transformer en compte personnel" in page.text


def test_wrong_code_is_refused_and_five_wrong_tries_end_the_attempt(client, db, admin, mail_server):
    account, code = created_with_code(client, db, mail_server)
    wrong = f"{(int(code) + 1) % 1_000_000:06d}"
    answer = type_code(client, account, wrong)
    assert "Code incorrect. Il vous reste 4 essais." in answer.text
    for _ in range(4):
        answer = type_code(client, account, wrong)
    assert "Trop de codes erronés" in answer.text
    # Even the right code no longer works: the attempt is over (brute force stops here).
    answer = type_code(client, account, code)
    assert "Trop de codes erronés" in answer.text
    db.session.expire_all()
    assert only_account(db).verified_at is None


def test_expired_code_is_refused(client, db, admin, mail_server):
    account, code = created_with_code(client, db, mail_server)
    row = latest_code_row(db, account)
    row.expires_at -= timedelta(minutes=16)
    db.session.commit()
    answer = type_code(client, account, code)
    assert "Ce code a expiré" in answer.text
    db.session.expire_all()
    assert only_account(db).verified_at is None


def test_a_used_code_cannot_be_replayed(client, db, admin, mail_server):
    account, code = created_with_code(client, db, mail_server)
    type_code(client, account, code)
    # The admin changes the address back to unverified state through a new code; replay the old one.
    db.session.expire_all()
    account = only_account(db)
    account.verified_at = None
    db.session.commit()
    answer = type_code(client, account, code)
    assert "déjà été utilisé" in answer.text
    db.session.expire_all()
    assert only_account(db).verified_at is None


@pytest.mark.parametrize("typed", ["", "12345", "1234567", "abcdef", "１２３４５６"])
def test_malformed_code_is_refused_without_counting_a_try(client, db, admin, mail_server, typed):
    create(client)
    account = only_account(db)
    answer = type_code(client, account, typed)
    assert "Saisissez les 6 chiffres" in answer.text
    assert latest_code_row(db, account).tries == 0


def test_resending_the_code_waits_60_seconds_and_ends_the_previous_code(
    client, db, admin, mail_server
):
    create(client)
    account = only_account(db)
    first = code_in(mail_server, account.address)
    too_soon = client.post(f"{URL}/{account.id}/renvoyer-code", headers=HTMX)
    assert (
        "Attendez" in too_soon.text
        and "secondes avant de demander un nouveau code" in too_soon.text
    )
    assert len(mail_server.received) == 1
    row = latest_code_row(db, account)
    row.sent_at -= timedelta(seconds=61)
    db.session.commit()
    again = client.post(f"{URL}/{account.id}/renvoyer-code", headers=HTMX)
    assert "Un nouveau code a été envoyé" in again.text
    assert len(mail_server.received) == 2
    second = code_in(mail_server, account.address)
    if first != second:
        old = type_code(client, account, first)
        assert "Code incorrect" in old.text
    ok = type_code(client, account, second)
    assert "adresse est vérifiée" in ok.text


@pytest.mark.parametrize(
    ("label", "address", "message"),
    [
        ("", "a@lycee.example", "Ce champ est obligatoire."),
        ("Vie\r\nBcc: x@evil.example", "a@lycee.example", "retours à la ligne"),
        ("x" * 121, "a@lycee.example", "120 caractères au maximum."),
        ("Vie scolaire", "", "Saisissez une adresse e-mail."),
        ("Vie scolaire", "pas une adresse", "n&#39;est pas valide"),
        ("Vie scolaire", "a@lycee.example\r\nBcc: x@evil.example", "retours à la ligne"),
        ("Vie scolaire", "a" * 250 + "@lycee.example", "254 caractères au maximum."),
    ],
)
def test_bad_input_is_refused_next_to_the_field_and_nothing_is_created(
    client, db, admin, mail_server, label, address, message
):
    response = create(client, label=label, address=address)
    assert response.status_code == 422
    assert message in response.text
    assert db.session.scalars(select(Account)).first() is None
    assert mail_server.received == []


def test_an_address_used_by_another_account_is_refused(
    client, db, admin, mail_server, make_account
):
    make_account("secretariat@lycee.example")
    response = create(client, label="Doublon", address="Secretariat@LYCEE.example")
    assert response.status_code == 422
    assert "Un autre compte utilise déjà cette adresse." in response.text
    assert len(db.session.scalars(select(Account)).all()) == 1
    assert mail_server.received == []


def test_display_name_with_quotes_and_commas_is_accepted(client, db, admin, mail_server):
    response = create(client, label='Vie scolaire, "bâtiment A"')
    assert response.status_code == 302
    assert only_account(db).label == 'Vie scolaire, "bâtiment A"'


def test_the_label_is_escaped_in_the_html_of_the_verification_e_mail(
    client, db, admin, mail_server
):
    create(client, label="<script>alert(1)</script> Accueil", address="accueil@lycee.example")
    html = mail_server.received[0].message.get_body(("html",)).get_content()
    assert "<script>" not in html and "&lt;script&gt;" in html


def test_an_internationalised_domain_is_stored_in_its_ascii_form(client, db, admin, mail_server):
    assert create(client, address="accueil@lycée.example").status_code == 302
    assert only_account(db).address == "accueil@xn--lyce-dpa.example"


def test_without_a_configured_sender_no_account_is_created(client, db, admin):
    response = create(client)
    assert response.status_code == 422
    assert "adresse d&#39;expédition du serveur n&#39;est pas renseignée" in response.text
    assert db.session.scalars(select(Account)).first() is None


def test_creation_without_csrf_token_is_refused(client, db, admin, mail_server):
    response = create(client, csrf=False)
    assert response.status_code == 400
    assert db.session.scalars(select(Account)).first() is None


def test_code_check_without_csrf_token_is_refused(client, db, admin, mail_server):
    account, code = created_with_code(client, db, mail_server)
    response = type_code(client, account, code, csrf=False)
    assert response.status_code == 400
    db.session.expire_all()
    assert only_account(db).verified_at is None


def test_staff_cannot_open_or_create_school_accounts(client, db, login_as, mail_server):
    login_as("staff")
    assert client.get(URL).status_code == 403
    assert create(client).status_code == 403
    assert db.session.scalars(select(Account)).first() is None


def test_secret_answer_is_required_to_edit_and_compared_without_case_or_accents(
    client, db, admin, mail_server, make_account
):
    account = make_account("secretariat@lycee.example")
    refused = client.post(
        f"{URL}/{account.id}/modifier",
        data={
            "edit-label": "Autre",
            "edit-address": account.address,
            "edit-current_answer": "Zola",
        },
        headers=FR,
    )
    assert refused.status_code == 422
    assert "Réponse secrète incorrecte" in refused.text
    db.session.expire_all()
    assert db.session.get(Account, account.id).label == "Secrétariat"
    accepted = client.post(
        f"{URL}/{account.id}/modifier",
        data={
            "edit-label": "Autre",
            "edit-address": account.address,
            "edit-current_answer": "víctor  hugo",
        },
        headers=FR,
    )
    assert accepted.status_code == 302
    db.session.expire_all()
    assert db.session.get(Account, account.id).label == "Autre"
    assert db.session.get(Account, account.id).is_ready


def test_guessing_the_secret_answer_locks_changes_for_15_minutes(
    client, db, admin, mail_server, make_account
):
    account = make_account("secretariat@lycee.example")
    for guess in ["a1", "a2", "a3", "a4"]:
        answer = client.post(
            f"{URL}/{account.id}/supprimer", data={"delete-current_answer": guess}, headers=FR
        )
        assert "Réponse secrète incorrecte" in answer.text
    answer = client.post(
        f"{URL}/{account.id}/supprimer", data={"delete-current_answer": "a5"}, headers=FR
    )
    assert "bloquées pendant 15 minutes" in answer.text
    # Locked: even the right answer is refused now, and the lock is kept in the database.
    answer = client.post(
        f"{URL}/{account.id}/supprimer", data={"delete-current_answer": SECRET_ANSWER}, headers=FR
    )
    assert answer.status_code == 422 and "Réessayez dans 15 minutes" in answer.text
    db.session.expire_all()
    assert db.session.get(Account, account.id) is not None
    assert db.session.get(Account, account.id).secret_locked_until is not None


def test_changing_the_address_restarts_verification(client, db, admin, mail_server, make_account):
    account = make_account("secretariat@lycee.example")
    response = client.post(
        f"{URL}/{account.id}/modifier",
        data={
            "edit-label": "Secrétariat",
            "edit-address": "accueil@lycee.example",
            "edit-current_answer": SECRET_ANSWER,
        },
        headers=FR,
    )
    assert response.status_code == 302
    db.session.expire_all()
    account = db.session.get(Account, account.id)
    assert account.address == "accueil@lycee.example" and account.verified_at is None
    assert not account.is_ready
    code = code_in(mail_server, "accueil@lycee.example")
    type_code(client, account, code)
    db.session.expire_all()
    assert db.session.get(Account, account.id).is_ready


def test_changing_the_secret_needs_the_current_answer(client, db, admin, make_account):
    account = make_account("secretariat@lycee.example")
    data = {"secret-current_answer": "faux", "secret-question": "Ville ?", "secret-answer": "Lyon"}
    assert (
        client.post(f"{URL}/{account.id}/changer-secret", data=data, headers=FR).status_code == 422
    )
    db.session.expire_all()
    assert db.session.get(Account, account.id).secret_question == "Auteur préféré ?"
    data["secret-current_answer"] = "VICTOR HUGO"
    assert (
        client.post(f"{URL}/{account.id}/changer-secret", data=data, headers=FR).status_code == 302
    )
    db.session.expire_all()
    assert db.session.get(Account, account.id).secret_question == "Ville ?"


def test_an_account_with_e_mails_in_the_outbox_cannot_be_deleted(
    client, db, admin, mail_server, make_account
):
    from hpmail.accounts.service import sender_for
    from hpmail.outbox.api import Address, EmailSpec, queue_mailing
    from hpmail.outbox.models import EmailState, OutboundEmail

    account = make_account("secretariat@lycee.example", members=[admin])
    mailing = queue_mailing(
        author_id=admin.id,
        sender=sender_for(admin, account.id),
        subject="Réunion",
        text_body="Bonjour",
        emails=[EmailSpec(to=[Address("parent@example.org")])],
    )
    db.session.commit()
    refused = client.post(
        f"{URL}/{account.id}/supprimer", data={"delete-current_answer": SECRET_ANSWER}, headers=FR
    )
    assert refused.status_code == 422
    assert "encore dans la file d&#39;envoi" in refused.text
    db.session.expire_all()
    assert db.session.get(Account, account.id) is not None
    for email in db.session.scalars(
        select(OutboundEmail).where(OutboundEmail.mailing_id == mailing.id)
    ):
        email.state = EmailState.CANCELLED
    db.session.commit()
    deleted = client.post(
        f"{URL}/{account.id}/supprimer", data={"delete-current_answer": SECRET_ANSWER}, headers=FR
    )
    assert deleted.status_code == 302
    db.session.expire_all()
    assert db.session.get(Account, account.id) is None


def test_each_form_field_of_the_page_has_its_own_id(client, db, admin, make_account):
    account = make_account("secretariat@lycee.example")
    page = client.get(f"{URL}?compte={account.id}", headers=FR).text
    ids = re.findall(r'<input[^>]* id="([^"]+)"', page)
    assert len(ids) == len(set(ids)), sorted(ids)


def test_an_address_typo_can_be_fixed_while_the_new_address_awaits_its_code(
    client, db, admin, mail_server, make_account
):
    account = make_account("secretariat@lycee.example")
    data = {
        "edit-label": "Secrétariat",
        "edit-address": "acceuil@lycee.example",
        "edit-current_answer": SECRET_ANSWER,
    }
    client.post(f"{URL}/{account.id}/modifier", data=data, headers=FR)
    page = client.get(f"{URL}?compte={account.id}", headers=FR)
    assert "Code de vérification" in page.text and "Modifier le compte" in page.text
    latest_code_row(db, account).sent_at -= timedelta(seconds=61)
    db.session.commit()
    data["edit-address"] = "accueil@lycee.example"
    assert client.post(f"{URL}/{account.id}/modifier", data=data, headers=FR).status_code == 302
    code = code_in(mail_server, "accueil@lycee.example")
    type_code(client, account, code)
    db.session.expire_all()
    account = db.session.get(Account, account.id)
    assert account.address == "accueil@lycee.example" and account.is_ready


def test_a_user_cannot_block_the_school_s_address_with_an_unverified_personal_account(
    client, db, admin, make_user, mail_server
):
    from hpmail.accounts import service

    squatter = make_user("teacher")
    service.save_personal_account(squatter, "Direction", "direction@lycee.example")
    db.session.commit()
    response = create(client, label="Direction", address="direction@lycee.example")
    assert response.status_code == 302
    accounts = db.session.scalars(select(Account).order_by(Account.id)).all()
    # The claim is not deleted (it is the user's account) but gives no right to the address.
    assert [(a.kind, a.address, a.verified_at) for a in accounts] == [
        ("personal", "direction@lycee.example", None),
        ("school", "direction@lycee.example", None),
    ]
    assert service.usable_accounts(squatter) == []


def test_a_verified_personal_address_stays_taken(client, db, admin, make_user, make_account):
    owner = make_user("teacher")
    make_account("julien@lycee.example", kind="personal", owner=owner, label="Julien")
    response = create(client, label="Julien", address="julien@lycee.example")
    assert response.status_code == 422
    assert "Un autre compte utilise déjà cette adresse." in response.text


def test_the_account_list_costs_the_same_queries_whatever_the_number_of_accounts(
    client, db, admin, make_account
):
    def queries_of_the_list() -> int:
        statements = []
        db.session.expire_all()  # nothing cached from setting up: the page loads what it shows

        def count(*_args):
            statements.append(1)

        event.listen(db.engine, "before_cursor_execute", count)
        try:
            assert client.get(URL, headers=FR).status_code == 200
        finally:
            event.remove(db.engine, "before_cursor_execute", count)
        return len(statements)

    make_account("a1@lycee.example", members=[admin])
    few = queries_of_the_list()
    for n in range(2, 7):
        make_account(f"a{n}@lycee.example", members=[admin])
    assert queries_of_the_list() == few


def test_the_durations_the_pages_and_the_code_e_mail_give_are_the_configured_ones(
    app, client, db, admin, mail_server, make_account
):
    app.config["VERIFICATION_CODE_TTL_SECONDS"] = 10 * 60
    app.config["SECRET_ANSWER_LOCK_SECONDS"] = 30 * 60
    response = create(client)
    account = only_account(db)
    code = code_in(mail_server, account.address)
    e_mail = mail_server.received[-1].message.get_body(("plain",)).get_content()
    assert "Il est valable 10 minutes" in e_mail
    page = client.get(response.headers["Location"], headers=FR)
    assert "le code est valable 10 minutes" in page.text
    row = latest_code_row(db, account)
    row.expires_at -= timedelta(minutes=11)
    db.session.commit()
    assert "il est valable 10 minutes" in type_code(client, account, code).text

    ready = make_account("direction@lycee.example", label="Direction")
    for guess in ["a1", "a2", "a3", "a4", "a5"]:
        answer = client.post(
            f"{URL}/{ready.id}/supprimer", data={"delete-current_answer": guess}, headers=FR
        )
    assert "bloquées pendant 30 minutes" in answer.text
