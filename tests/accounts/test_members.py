"""Authorised users of a school account: the checklist, its toggles, making it personal."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from hpmail.accounts import school, service
from hpmail.accounts.models import Account, AccountKind
from hpmail.outbox.models import Mailing
from tests.accounts.conftest import FR, HTMX, unlock

URL = "/configuration/comptes-etablissement"


@pytest.fixture
def admin(login_as):
    return login_as("admin")


def toggle(client, account, user, on: bool, **kwargs):
    data = {"authorised": "1"} if on else {}
    return client.post(
        f"{URL}/{account.id}/utilisateurs/{user.id}", data=data, headers=HTMX, **kwargs
    )


def test_ticking_a_user_saves_at_once_and_unticking_removes_them(
    client, db, admin, make_user, make_account
):
    sophie = make_user("staff", display_name="Sophie Bernard")
    account = make_account()
    unlock(client, account)
    row = toggle(client, account, sophie, True)
    assert row.status_code == 200
    assert f'id="member-{sophie.id}"' in row.text and "checked" in row.text
    assert "Enregistré" in row.text and "<html" not in row.text
    assert 'hx-swap-oob="true"' in row.text  # the transform button follows the count
    db.session.expire_all()
    assert service.may_send_as(sophie.id, account.id)
    row = toggle(client, account, sophie, False)
    assert "checked" not in row.text.split("hx-post")[0]
    db.session.expire_all()
    assert not service.may_send_as(sophie.id, account.id)


def test_checklist_is_searchable_without_accents_or_case(
    client, db, admin, make_user, make_account
):
    make_user("staff", display_name="Sophie Bernard")
    make_user("teacher", display_name="Julien Petit")
    account = make_account()
    fragment = client.get(f"{URL}/{account.id}/utilisateurs?q=BERN", headers=HTMX)
    assert fragment.status_code == 200
    assert "Sophie Bernard" in fragment.text and "Julien Petit" not in fragment.text
    assert "<html" not in fragment.text
    agnes = make_user("admin", display_name="Agnès Martin")
    folded = client.get(f"{URL}/{account.id}/utilisateurs?q=agnes%20MART", headers=HTMX)
    assert "Agnès Martin" in folded.text and "Sophie Bernard" not in folded.text
    assert f'id="member-{agnes.id}"' in folded.text
    nobody = client.get(f"{URL}/{account.id}/utilisateurs?q=zzz", headers=HTMX)
    assert "Aucun utilisateur ne correspond." in nobody.text


def test_a_non_admin_cannot_toggle_members_even_with_a_valid_token(
    client, db, login_as, make_user, make_account
):
    intruder = login_as("staff")
    account = make_account()
    assert toggle(client, account, intruder, True).status_code == 403
    assert client.get(f"{URL}/{account.id}/utilisateurs", headers=HTMX).status_code == 403
    db.session.expire_all()
    assert db.session.get(Account, account.id).members == []


def test_toggle_without_csrf_token_is_refused(client, db, admin, make_user, make_account):
    sophie = make_user("staff")
    account = make_account()
    assert toggle(client, account, sophie, True, csrf=False).status_code == 400
    db.session.expire_all()
    assert db.session.get(Account, account.id).members == []


def test_transform_is_disabled_with_the_reason_unless_exactly_one_user(
    client, db, admin, make_user, make_account
):
    sophie, julien = make_user("staff"), make_user("teacher")
    account = make_account()
    page = client.get(f"{URL}?compte={account.id}", headers=FR)
    assert "Aucun utilisateur n&#39;est autorisé sur ce compte" in page.text
    assert (
        "disabled" in page.text.split("Transformer en compte personnel")[0].rsplit("<button", 1)[1]
    )
    account.members.extend([sophie, julien])
    db.session.commit()
    page = client.get(f"{URL}?compte={account.id}", headers=FR)
    assert "2 utilisateurs sont autorisés sur ce compte" in page.text
    refused = client.post(f"{URL}/{account.id}/transformer", data={"confirm": "yes"}, headers=FR)
    assert refused.status_code == 422
    db.session.expire_all()
    assert db.session.get(Account, account.id).kind == AccountKind.SCHOOL


def test_transform_asks_yes_or_no_then_gives_the_account_and_its_history_to_the_user(
    client, db, admin, make_user, make_account
):
    sophie = make_user("staff")
    account = make_account(members=[sophie])
    unlock(client, account)
    db.session.add(
        Mailing(
            author_id=admin.id,
            account_id=account.id,
            subject="Ancien envoi",
            sender_address=account.address,
        )
    )
    db.session.commit()
    confirm = client.get(f"{URL}/{account.id}/transformer", headers=FR)
    assert "Oui" in confirm.text and "Non" in confirm.text and sophie.display_name in confirm.text
    no = client.post(f"{URL}/{account.id}/transformer", data={"confirm": "no"}, headers=FR)
    assert no.status_code == 302
    db.session.expire_all()
    assert db.session.get(Account, account.id).kind == AccountKind.SCHOOL
    yes = client.post(f"{URL}/{account.id}/transformer", data={"confirm": "yes"}, headers=FR)
    assert yes.status_code == 302
    db.session.expire_all()
    account = db.session.get(Account, account.id)
    assert account.kind == AccountKind.PERSONAL and account.owner_id == sophie.id
    assert account in service.visible_accounts(sophie)
    assert account in service.usable_accounts(sophie)
    history = db.session.scalars(
        select(Mailing).where(
            Mailing.account_id.in_([a.id for a in service.visible_accounts(sophie)])
        )
    ).all()
    assert [m.subject for m in history] == ["Ancien envoi"]
    # The transformed account leaves the school list.
    assert account not in school.school_accounts()


def test_without_javascript_a_row_form_saves_the_box_and_comes_back_to_the_page(
    client, db, admin, make_user, make_account
):
    sophie = make_user("staff")
    account = make_account()
    unlock(client, account)
    response = client.post(
        f"{URL}/{account.id}/utilisateurs/{sophie.id}", data={"authorised": "1"}, headers=FR
    )
    assert response.status_code == 302
    assert response.headers["Location"].endswith(f"{URL}?compte={account.id}")
    db.session.expire_all()
    assert service.may_send_as(sophie.id, account.id)


def test_ticking_a_user_updates_the_user_count_in_the_accounts_table_at_once(
    client, db, admin, make_user, make_account
):
    sophie = make_user("staff", display_name="Sophie Bernard")
    julien = make_user("teacher", display_name="Julien Petit")
    account = make_account(members=[julien])
    unlock(client, account)
    row = toggle(client, account, sophie, True)
    rows = row.text.split('id="account-rows"')[1].split("</tbody>")[0]
    assert 'hx-swap-oob="true"' in rows
    assert f"<td>{account.address}</td>" in rows
    assert "<td>2</td>" in rows
    row = toggle(client, account, sophie, False)
    rows = row.text.split('id="account-rows"')[1].split("</tbody>")[0]
    assert "<td>1</td>" in rows and "<td>2</td>" not in rows
