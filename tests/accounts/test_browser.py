"""The admin creates a school account in a browser, reading the code from a real SMTP server."""

from __future__ import annotations

import time

import pytest

from hpmail.accounts import service
from hpmail.accounts.models import Account
from hpmail.outbox.api import Address, EmailSpec, dispatch, queue_mailing
from tests.accounts.conftest import code_in

pytestmark = pytest.mark.browser


def wait_for_mail(server, count: int, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while len(server.received) < count:
        assert time.monotonic() < deadline, "the verification e-mail did not arrive"
        time.sleep(0.05)


def test_admin_creates_a_school_account_and_only_authorised_users_send_with_it(
    page, sign_in_page, make_user, db, mail_server
):
    sophie = make_user("staff", display_name="Sophie Bernard")
    julien = make_user("teacher", display_name="Julien Petit")
    sign_in_page("admin", at="/configuration/comptes-etablissement")
    page.get_by_role("heading", name="Gérer les comptes e-mails de l'établissement").wait_for()
    page.get_by_label("Libellé").fill("Vie scolaire")
    page.get_by_label("Adresse e-mail").fill("vie-scolaire@lycee.example")
    page.get_by_role("button", name="Créer et envoyer le code").click()
    page.get_by_text(
        "Un code de vérification a été envoyé à vie-scolaire@lycee.example."
    ).wait_for()

    wait_for_mail(mail_server, 1)
    code = code_in(mail_server, "vie-scolaire@lycee.example")
    wrong = f"{(int(code) + 1) % 1_000_000:06d}"
    page.get_by_label("Code de vérification").fill(wrong)
    page.get_by_role("button", name="Vérifier le code").click()
    page.get_by_text("Code incorrect. Il vous reste 4 essais.").wait_for()
    page.get_by_label("Code de vérification").fill(code)
    page.get_by_role("button", name="Vérifier le code").click()
    page.get_by_text("L'adresse est vérifiée.").wait_for()
    page.locator("#account-rows").get_by_text("Question secrète manquante").wait_for()

    page.get_by_label("Question secrète").fill("Nom du premier proviseur ?")
    page.get_by_label("Réponse secrète").fill("Dupré")
    page.get_by_role("button", name="Valider la création du compte").click()
    page.get_by_text("Le compte Vie scolaire est créé.").wait_for()

    page.get_by_role("heading", name="Utilisateurs autorisés").wait_for()
    page.get_by_placeholder("Rechercher un utilisateur").fill("bern")
    page.locator(f"#member-{julien.id}").wait_for(state="detached")
    page.get_by_label("Sophie Bernard").check()
    page.locator(f"#member-{sophie.id}").get_by_text("Enregistré").wait_for()
    # One user authorised: the transform button is now enabled (swapped out of band).
    assert page.get_by_role("link", name="Transformer en compte personnel").is_visible()

    db.session.expire_all()
    account = db.session.query(Account).filter_by(address="vie-scolaire@lycee.example").one()
    assert account.is_ready and [m.id for m in account.members] == [sophie.id]
    mailing = queue_mailing(
        author_id=sophie.id,
        sender=service.sender_for(sophie, account.id),
        subject="Sortie au musée",
        text_body="Bonjour",
        emails=[EmailSpec(to=[Address("parent@example.org")])],
    )
    db.session.commit()
    dispatch(mailing)
    wait_for_mail(mail_server, 2)
    sent = mail_server.received[-1]
    assert sent.rcpt_tos == ["parent@example.org"]
    assert sent.message["From"].addresses[0].addr_spec == "vie-scolaire@lycee.example"
    with pytest.raises(service.NotAuthorised):
        service.sender_for(julien, account.id)


def test_hovering_the_shared_icon_lists_the_other_users(
    page, sign_in_page, make_user, make_account
):
    sophie = make_user("staff", display_name="Sophie Bernard")
    julien = make_user("teacher", display_name="Julien Petit")
    account = make_account(members=[sophie, julien])
    sign_in_page(sophie, at="/configuration/envoi")
    page.get_by_role("button", name="Autres utilisateurs de ce compte").hover()
    tip = page.locator(f"#tip-{account.id}")
    tip.get_by_text("Julien Petit").wait_for()
    assert "Sophie Bernard" not in tip.inner_text()


def test_admin_unlocks_a_school_account_with_its_answer_then_ticks_a_user_and_the_count_follows(
    page, sign_in_page, make_user, make_account, db
):
    from tests.accounts.conftest import SECRET_ANSWER

    sophie = make_user("staff", display_name="Sophie Bernard")
    account = make_account()
    sign_in_page("admin", at=f"/configuration/comptes-etablissement?compte={account.id}")
    box = page.locator(f"#member-{sophie.id}").get_by_role("checkbox")
    assert box.is_disabled()  # locked until the answer is given
    page.locator("#unlock").get_by_label("Réponse secrète").fill("Baudelaire")
    page.get_by_role("button", name="Déverrouiller les modifications").click()
    page.get_by_text("Réponse secrète incorrecte. Rien n'a été modifié.").wait_for()
    page.locator("#unlock").get_by_label("Réponse secrète").fill(SECRET_ANSWER)
    page.get_by_role("button", name="Déverrouiller les modifications").click()
    page.locator("#unlock").get_by_text("Déverrouillé").wait_for()
    row = page.locator("#account-rows tr", has_text=account.address)
    assert row.locator("td").nth(3).inner_text() == "0"
    page.locator(f"#member-{sophie.id}").get_by_role("checkbox").check()
    page.locator(f"#member-{sophie.id}").get_by_text("Enregistré").wait_for()
    # The users column of the accounts table follows at once (out-of-band swap).
    page.locator("#account-rows tr", has_text=account.address).locator("td").nth(3).get_by_text(
        "1", exact=True
    ).wait_for()
    page.locator(".history").get_by_text("Utilisateur autorisé").wait_for(state="attached")
    db.session.expire_all()
    assert service.may_send_as(sophie.id, account.id)
