"""Changes to a school account: unlocked by the secret answer only, throttled, each audited."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from hpmail.accounts import service
from hpmail.accounts.audit import SESSION_KEY
from hpmail.accounts.models import Account, AccountAuditLine, AccountKind
from tests.accounts.conftest import FR, HTMX, SECRET_ANSWER, code_in, unlock

URL = "/configuration/comptes-etablissement"


@pytest.fixture
def admin(login_as):
    return login_as("admin", display_name="Agnès Martin")


def tick(client, account, user, on=True):
    data = {"authorised": "1"} if on else {}
    return client.post(f"{URL}/{account.id}/utilisateurs/{user.id}", data=data, headers=HTMX)


def test_without_the_secret_answer_no_change_of_a_school_account_goes_through(
    client, db, admin, make_user, make_account
):
    sophie, julien = make_user("staff"), make_user("teacher")
    account = make_account(members=[sophie])
    refused = tick(client, account, admin)
    assert "Donnez la réponse secrète" in refused.text
    client.post(f"{URL}/{account.id}/utilisateurs/{julien.id}", data={"authorised": "1"})
    tick(client, account, sophie, on=False)
    transform = client.post(f"{URL}/{account.id}/transformer", data={"confirm": "yes"}, headers=FR)
    assert transform.status_code == 422 and "Donnez la réponse secrète" in transform.text
    edit = client.post(
        f"{URL}/{account.id}/modifier",
        data={"edit-label": "Pirate", "edit-address": "pirate@lycee.example"},
        headers=FR,
    )
    assert edit.status_code == 422
    delete = client.post(f"{URL}/{account.id}/supprimer", headers=FR)
    assert delete.status_code == 422
    secret = client.post(
        f"{URL}/{account.id}/changer-secret",
        data={"secret-question": "?", "secret-answer": "nouvelle"},
        headers=FR,
    )
    assert secret.status_code == 422
    db.session.expire_all()
    account = db.session.get(Account, account.id)
    assert account.kind == AccountKind.SCHOOL and account.label == "Secrétariat"
    assert account.address == "secretariat@lycee.example"
    assert [m.id for m in account.members] == [sophie.id]
    assert not service.may_send_as(admin.id, account.id)
    page = client.get(f"{URL}?compte={account.id}", headers=FR).text
    assert "Déverrouiller les modifications" in page
    assert f'id="member-{sophie.id}"' in page
    row = page.split(f'id="member-{sophie.id}"')[1].split("</li>")[0]
    assert "disabled" in row  # the checklist is read-only while locked


def test_the_answer_unlocks_the_account_for_a_while_and_every_change_is_audited(
    client, db, admin, make_user, make_account
):
    sophie = make_user("staff", display_name="Sophie Bernard", login="sbernard")
    account = make_account()
    wrong = unlock(client, account, "Baudelaire")
    assert wrong.status_code == 422 and "Réponse secrète incorrecte. Rien" in wrong.text
    assert tick(client, account, sophie).text.count("Donnez la réponse secrète") == 1
    assert unlock(client, account).status_code == 302
    saved = tick(client, account, sophie)
    assert "Enregistré" in saved.text
    db.session.expire_all()
    assert service.may_send_as(sophie.id, account.id)

    lines = db.session.scalars(
        select(AccountAuditLine).where(AccountAuditLine.account_id == account.id)
    ).all()
    assert [(line.action, line.user_id) for line in lines] == [
        ("wrong_answer", admin.id),
        ("unlocked", admin.id),
        ("member_added", admin.id),
    ]
    page = client.get(f"{URL}?compte={account.id}", headers=FR).text
    history = page.split("Historique des modifications")[1]
    assert "Agnès Martin" in history and "Utilisateur autorisé" in history
    assert "Sophie Bernard (sbernard)" in history and "Réponse secrète incorrecte" in history

    # The unlock lasts a few minutes only.
    with client.session_transaction() as session:
        session[SESSION_KEY][str(account.id)][1] = "2000-01-01T00:00:00"
        session.modified = True
    assert "Donnez la réponse secrète" in tick(client, account, sophie, on=False).text
    db.session.expire_all()
    assert service.may_send_as(sophie.id, account.id)


def test_an_unlocked_account_is_transformed_and_deleted_and_its_history_is_kept(
    client, db, admin, make_user, make_account
):
    sophie = make_user("staff", display_name="Sophie Bernard")
    other = make_account("direction@lycee.example", label="Direction")
    account = make_account(members=[sophie])
    # A form that carries the answer unlocks and changes at once.
    client.post(
        f"{URL}/{account.id}/transformer",
        data={"confirm": "yes", "unlock-current_answer": SECRET_ANSWER},
        headers=FR,
    )
    db.session.expire_all()
    assert db.session.get(Account, account.id).kind == AccountKind.PERSONAL
    actions = db.session.scalars(
        select(AccountAuditLine.action).where(AccountAuditLine.account_id == account.id)
    ).all()
    assert actions == ["unlocked", "transformed"]

    unlock(client, other)
    deleted = client.post(f"{URL}/{other.id}/supprimer", headers=FR)
    assert deleted.status_code == 302
    db.session.expire_all()
    assert db.session.get(Account, other.id) is None
    kept = db.session.scalars(
        select(AccountAuditLine).where(
            AccountAuditLine.account_address == "direction@lycee.example"
        )
    ).all()
    assert [line.action for line in kept] == ["unlocked", "deleted"]


def test_unlocking_is_throttled_after_five_wrong_answers(client, db, admin, make_account):
    account = make_account()
    for _ in range(5):
        unlock(client, account, "Baudelaire")
    locked = unlock(client, account)
    assert locked.status_code == 422 and "Trop de réponses erronées" in locked.text
    assert "Donnez la réponse secrète" in tick(client, account, admin).text


def test_an_admin_who_forgot_the_answer_unlocks_with_a_code_sent_to_the_account(
    client, db, admin, make_user, make_account, mail_server
):
    sophie = make_user("staff", display_name="Sophie Bernard")
    account = make_account()
    sent = client.post(f"{URL}/{account.id}/code-deverrouillage", headers=HTMX)
    assert "Un code a été envoyé à secretariat@lycee.example." in sent.text
    code = code_in(mail_server, "secretariat@lycee.example")
    wrong = f"{(int(code) + 1) % 1_000_000:06d}"
    refused = client.post(
        f"{URL}/{account.id}/deverrouiller", data={"unlockcode-code": wrong}, headers=HTMX
    )
    assert "Code incorrect" in refused.text
    assert "Donnez la réponse secrète" in tick(client, account, sophie).text
    client.post(f"{URL}/{account.id}/deverrouiller", data={"unlockcode-code": code}, headers=HTMX)
    assert "Enregistré" in tick(client, account, sophie).text
    actions = db.session.scalars(
        select(AccountAuditLine.action).where(AccountAuditLine.account_id == account.id)
    ).all()
    assert actions == ["wrong_code", "unlocked_by_code", "member_added"]
