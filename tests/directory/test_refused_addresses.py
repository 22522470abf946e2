"""Addresses refused by the server: counted unreachable by every page, their documents printed,
the mark kept by an import of the same address, cleared by a new one or by an administrator."""

from __future__ import annotations

import html
import io
import uuid
from datetime import UTC
from zoneinfo import ZoneInfo

import pytest
from babel.dates import format_date
from sqlalchemy import select

from hpmail.core.time import utcnow
from hpmail.directory.models import Person
from hpmail.directory.refusals import mark_refused
from hpmail.directory.selection import create_selection
from hpmail.documents.models import DocumentJob
from hpmail.outbox.api import UnknownMailbox
from hpmail.outbox.attachments import read_attachment
from tests.documents.print_fixtures import dialog, pdf_text, school, sender  # noqa: F401
from tests.documents.test_document_mailing import composer

FR = {"Accept-Language": "fr"}
HTMX = {"HX-Request": "true", "Accept-Language": "fr"}
UNKNOWN = "550 5.1.1 <{}>: Recipient address rejected: User unknown"


def page_text(response) -> str:
    return html.unescape(response.text)


def french_day(moment) -> str:
    """The day a page shows for ``moment`` (stored in UTC): the school's day, in Paris."""
    local = moment.replace(tzinfo=UTC).astimezone(ZoneInfo("Europe/Paris"))
    return format_date(local, "d MMMM y", locale="fr")


def reloaded(db, person) -> Person:
    db.session.rollback()
    return db.session.get(Person, person.id)


@pytest.fixture
def refused(db):
    """Return ``refused(person, reply=None)``: the person's address marked as the engine does."""

    def mark(person, reply=None):
        reply = reply or UNKNOWN.format(person.email)
        mark_refused([UnknownMailbox(person.id, person.email, utcnow(), reply)])
        db.session.commit()
        return reloaded(db, person)

    return mark


def test_a_refused_address_is_unreachable_for_the_composer_and_its_document_is_printed(
    client,
    sender,  # noqa: F811
    school,  # noqa: F811
    db,
    smtp_server,
):
    smtp_server.refuse(school.bruno.email, UNKNOWN.format(school.bruno.email))
    token = create_selection(sender, [p.id for p in school.students]).token
    db.session.commit()

    sent = client.post(
        "/e-mail/nouveau",
        data={"selection": token, "kinds": ["student"], "subject": "Rentrée", "body": "<p>Hé</p>"},
        headers=FR,
    )

    assert sent.status_code == 303, sent.text
    bruno = reloaded(db, school.bruno)
    assert bruno.email_status == "refused"
    reason = (
        f"Adresse refusée par le serveur ({bruno.email}) le {french_day(bruno.email_refused_at)}"
        f" : {UNKNOWN.format(bruno.email)}"
    )
    again = page_text(client.get(f"/e-mail/nouveau?selection={token}", headers=FR))
    assert "Étudiants (1)" in again  # Alice alone: Chloé has no address, Bruno's was refused
    assert f"DURAND Bruno — {reason}" in again
    found = page_text(client.get("/e-mail/personnes?q=durand", headers=HTMX))
    assert f'value="{bruno.id}" disabled' in found and "Refusée par le serveur" in found

    smtp_server.recorder.received.clear()
    selection = create_selection(sender, [p.id for p in school.students])
    db.session.commit()
    values = {"output": "email", "print_copy": "without_email", "request_token": str(uuid.uuid4())}
    assert (
        client.post("/documents/imprimer", data=dialog(selection=selection.token, **values))
    ).status_code == 303
    job = db.session.scalars(select(DocumentJob).order_by(DocumentJob.id.desc())).first()
    dialog_page = page_text(client.get(f"/documents/impression/{job.id}/e-mail", headers=FR))
    assert "1 peut recevoir l'e-mail" in dialog_page
    assert f"DURAND Bruno — {reason}" in dialog_page
    assert "Leurs documents sont dans l'exemplaire à imprimer." in dialog_page

    client.post(f"/documents/impression/{job.id}/e-mail", data=composer())

    assert [r.rcpt_tos for r in smtp_server.received] == [[school.alice.email]]
    db.session.rollback()
    printed = pdf_text(read_attachment(db.session.get(DocumentJob, job.id).output_file))
    assert "Bruno Durand" in printed and "Chloé Sansmail" in printed
    assert "Alice" not in printed


def test_the_lists_show_when_and_what_the_server_said_and_filter_on_it(
    client, login_as, make_person, make_course, refused, db
):
    login_as("staff")
    gone = refused(make_person("teacher", last_name="Parti", email="parti@example.org"))
    make_person("teacher", last_name="Present")
    course = make_course("Droit", teachers=[gone])

    listing = page_text(
        client.get("/plannings/teacher?address=refused", headers=FR, follow_redirects=True)
    )

    assert "Refusée par le serveur" in listing
    assert f"le {french_day(gone.email_refused_at)} : {UNKNOWN.format(gone.email)}" in listing
    assert "Parti" in listing and "Present" not in listing
    assert '<option value="refused" selected>Refusée par le serveur</option>' in listing
    assert "L'adresse est de nouveau valide" not in listing  # an admin's button
    everyone = page_text(
        client.get("/plannings/teacher?address=nonsense", headers=FR, follow_redirects=True)
    )
    assert "Parti" in everyone and "Present" in everyone
    course_page = page_text(client.get(f"/cours/{course.id}", headers=FR))
    assert "Refusée par le serveur" in course_page
    assert "Enseignants : 0 joignable(s) sur 1" in course_page
    assert "PARTI Prénom1 — Adresse refusée par le serveur (parti@example.org) le" in course_page


def test_an_import_with_a_new_address_clears_the_mark_and_the_same_address_keeps_it(
    client, login_as, make_person, refused, db
):
    login_as("admin")
    same = refused(make_person("student", last_name="Meme", first_name="Ana", external_id="E1"))
    moved = refused(make_person("student", last_name="Neuve", first_name="Léo", external_id="E2"))
    csv = (
        "nom;prénom;e-mail;type;identifiant\n"
        f"Meme;Ana;{same.email.upper()};étudiant;E1\n"
        "Neuve;Léo;leo.neuve@example.org;étudiant;E2\n"
    )

    report = client.post(
        "/import",
        data={"file": (io.BytesIO(csv.encode()), "eleves.csv")},
        content_type="multipart/form-data",
        headers=FR,
    )

    assert "Adresse refusée par le serveur : elle reste marquée comme telle." in page_text(report)
    kept, cleared = reloaded(db, same), reloaded(db, moved)
    assert (kept.email, kept.email_status) == (same.email.upper(), "refused")
    assert (kept.email_refused_at, kept.email_refused_reply) == (
        same.email_refused_at,
        same.email_refused_reply,
    )
    assert (cleared.email, cleared.email_status) == ("leo.neuve@example.org", "valid")
    assert (cleared.email_refused_at, cleared.email_refused_reply) == (None, None)


def clear_form(person, **fields) -> dict:
    return {"refused_at": person.email_refused_at.isoformat(), **fields}


def test_an_admin_says_the_address_is_valid_again_from_the_list(
    client, login_as, make_person, refused, db
):
    login_as("admin")
    gone = refused(make_person("student", last_name="Parti"))
    listing = page_text(
        client.get("/plannings/student?address=refused", headers=FR, follow_redirects=True)
    )
    assert f'value="{gone.email_refused_at.isoformat()}"' in listing
    assert "L'adresse est de nouveau valide" in listing

    response = client.post(
        f"/personnes/{gone.id}/adresse-valide",
        data=clear_form(gone, q="parti", address="refused"),
        headers=FR,
    )

    assert response.status_code == 303
    assert response.headers["Location"].endswith("/plannings/student?q=parti&address=refused")
    person = reloaded(db, gone)
    assert (person.email_status, person.email_refused_at, person.email_refused_reply) == (
        "valid",
        None,
        None,
    )
    shown = page_text(client.get("/plannings/student", headers=FR, follow_redirects=True))
    assert f"L'adresse de {person.full_name} est de nouveau valide." in shown


def test_with_htmx_the_button_gets_the_address_cell_back(client, login_as, make_person, refused):
    login_as("admin")
    gone = refused(make_person("staff", last_name="Parti"))

    cell = client.post(f"/personnes/{gone.id}/adresse-valide", data=clear_form(gone), headers=HTMX)

    assert cell.status_code == 200
    assert "Adresse valide" in page_text(cell) and "<html" not in cell.text
    assert "de nouveau valide." in page_text(cell)


def test_the_button_changes_nothing_on_a_replay_a_newer_refusal_or_a_bad_request(
    client, login_as, make_person, refused, db
):
    admin = login_as("admin")
    gone = refused(make_person("student", last_name="Parti"))
    seen = clear_form(gone)
    url = f"/personnes/{gone.id}/adresse-valide"

    assert client.post(url, data=seen, csrf=False).status_code == 400
    assert client.post(url, data={}, headers=HTMX).status_code == 422  # which mark is not said
    for role in ("staff", "teacher"):
        client.post("/deconnexion")
        login_as(role)
        assert client.post(url, data=seen).status_code == 403
    assert reloaded(db, gone).email_status == "refused"

    client.post("/deconnexion")
    login_as(admin)
    assert client.post("/personnes/999999/adresse-valide", data=seen).status_code == 404
    assert client.post(url, data=seen).status_code == 303  # cleared
    replay = client.post(url, data=seen, headers=HTMX)
    assert replay.status_code == 422
    assert "n'a pas été modifiée" in page_text(replay)

    again = refused(reloaded(db, gone))  # refused again since the page was shown
    assert client.post(url, data=seen, headers=HTMX).status_code == 422
    assert reloaded(db, gone).email_refused_at == again.email_refused_at
    assert reloaded(db, gone).email_status == "refused"


@pytest.mark.browser
def test_in_a_browser_an_admin_finds_the_refused_addresses_and_clears_one(
    page, sign_in_page, make_person, refused
):
    from playwright.sync_api import expect

    gone = refused(make_person("student", last_name="Parti", first_name="Zoé"))
    make_person("student", last_name="Present")
    sign_in_page("admin")

    page.get_by_text("Plannings").first.click()
    page.get_by_role("link", name="Étudiants").first.click()
    # The rows are there before the deferred htmx binds the filters: a choice made then is lost.
    page.wait_for_load_state()
    expect(page.locator("table.people tbody tr")).to_have_count(2)
    page.select_option("select[name=address]", label="Refusée par le serveur")
    expect(page.locator("table.people tbody tr")).to_have_count(1)
    row = page.locator("table.people tbody tr")
    expect(row).to_contain_text("Refusée par le serveur")
    expect(row).to_contain_text(UNKNOWN.format(gone.email))

    row.get_by_role("button", name="L'adresse est de nouveau valide").click()

    expect(row).to_contain_text("Adresse valide")
    expect(row).to_contain_text("L'adresse de PARTI Zoé est de nouveau valide.")
    expect(page.locator("#selection-counter")).to_have_text("0 sélectionné(s)")
