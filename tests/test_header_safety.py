"""Every control and separator character, in every field that can reach an e-mail header.

Each character of U+0000–U+001F, U+007F–U+009F, U+2028 and U+2029 goes through the real HTTP routes
into each such field. Each case ends one of two ways: refused with a French message (and nothing
changed), or accepted after cleaning and then delivered by a real worker to a real SMTP server
with headers that parse back to exactly what the application stored.
"""

from __future__ import annotations

import email.policy
import io
import re
from email.parser import BytesParser
from html import unescape

import pytest
from sqlalchemy import func, select

from hpmail.accounts.models import Account
from hpmail.auth.models import User
from hpmail.compose.models import Template
from hpmail.directory.models import Person
from hpmail.outbox.models import (
    EmailRecipient,
    EmailState,
    Mailing,
    MailingAttachment,
    OutboundEmail,
)
from tests.compose import conftest as compose_fixtures
from tests.fixtures.worker import wait_until, worker_app_config

# The composer's fixtures, shared with this module.
personal_account = compose_fixtures.personal_account
select_people = compose_fixtures.select_people
sender = compose_fixtures.sender

FR = {"Accept-Language": "fr"}
UNSAFE = [chr(c) for c in (*range(0x00, 0x20), *range(0x7F, 0xA0), 0x2028, 0x2029)]
# The French messages a refused value gets next to its field.
REFUSALS = (
    "les caractères de contrôle ne sont pas autorisés",
    "doit tenir sur une ligne",
    "n'est pas une adresse e-mail valide",
)
FORGED = "A{c}From: Le Proviseur <proviseur@lycee-demo.fr>{c}Subject: Convocation{c}{c}Corps."
PDF = b"%PDF-1.4 convocation"


@pytest.fixture
def app_config(tmp_path):
    """The delivered cases run a real worker: the test app shares its queue file with it."""
    return worker_app_config(tmp_path)


def count(db, model) -> int:
    db.session.expire_all()
    return db.session.scalar(select(func.count()).select_from(model))


def fields_not_refused(response, character: str, fields) -> list[str]:
    """Return a line for each of ``fields`` that the 422 page does not refuse beside its input.

    When one request carries the character in several fields of one form, each field must get
    its own French message, shown after its input and before the next field's.
    """
    page = unescape(response.get_data(as_text=True))
    inputs = [(m.group(1), m.start()) for m in re.finditer(r'\sname="([^"]+)"', page)]
    wrong = []
    for field in fields:
        starts = [i for i, (name, _) in enumerate(inputs) if name == field]
        beside = [
            page[inputs[i][1] : inputs[i + 1][1] if i + 1 < len(inputs) else len(page)]
            for i in starts
        ]
        refused = any(
            message in error
            for part in beside
            for error in re.findall(r'class="field-error"[^>]*>([^<]*)<', part)
            for message in REFUSALS
        )
        if response.status_code != 422 or not refused:
            wrong.append(f"{field} U+{ord(character):04X}: {response.status_code}")
    return wrong


def compose_form(token: str, **fields) -> dict:
    values = {"selection": token, "kinds": ["student"], "subject": "Convocation", "body": "Bonjour"}
    values.update(fields)
    return values


def test_the_forged_cc_entry_of_the_issue_is_refused_and_nothing_is_sent(
    client, db, sender, make_person, select_people, smtp_server
):
    token = select_people(sender, [make_person("student")])
    cc = f'"{FORGED.format(c=chr(0x0B))}" <victim@example.org>'

    response = client.post("/e-mail/nouveau", data=compose_form(token, cc=cc), headers=FR)

    assert fields_not_refused(response, "\x0b", ["cc"]) == []
    assert "« Cc » doit tenir sur une seule ligne" in unescape(response.text)
    assert count(db, Mailing) == 0
    assert smtp_server.received == []


def test_the_composer_refuses_every_control_character_in_the_subject_and_in_cc_and_bcc(
    client, db, sender, make_person, select_people, smtp_server
):
    token = select_people(sender, [make_person("student")])
    wrong = []
    for character in UNSAFE:
        forged = FORGED.format(c=character)
        fields = {
            "subject": forged,
            "cc": f'"{forged}" <victim@example.org>',
            "bcc": f"{forged} <victim@example.org>",
        }
        response = client.post("/e-mail/nouveau", data=compose_form(token, **fields), headers=FR)
        wrong += fields_not_refused(response, character, fields)
    assert wrong == []
    assert count(db, Mailing) == 0
    assert smtp_server.received == []


def test_user_forms_refuse_every_control_character_in_names_and_addresses(
    client, db, login_as, make_user
):
    login_as("admin")
    other = make_user("staff", display_name="Marc Petit")
    users = count(db, User)
    wrong = []
    for character in UNSAFE:
        fields = {
            "display_name": f"Marc{character}Bcc: x@evil.example",
            "email": f"marc@lycee.fr{character}Bcc: x@evil.example",
        }
        new = {"login": "marc", "role": "staff", **fields}
        response = client.post("/utilisateurs/nouveau", data=new, headers=FR)
        wrong += fields_not_refused(response, character, fields)
        edit = {"role": "staff", **fields}
        response = client.post(f"/utilisateurs/{other.id}", data=edit, headers=FR)
        wrong += fields_not_refused(response, character, fields)
    assert wrong == []
    assert count(db, User) == users
    db.session.refresh(other)
    assert other.display_name == "Marc Petit"


def test_account_forms_refuse_every_control_character_in_labels_names_and_addresses(
    client, db, login_as, delivery_settings, smtp_server, personal_account
):
    delivery_settings(smtp_server)
    own = personal_account(login_as("admin"))
    name = own.display_name
    wrong = []
    for character in UNSAFE:
        unsafe = f"Vie scolaire{character}Bcc: x@evil.example"
        for url, form, field in (
            (
                "/configuration/comptes-etablissement/nouveau",
                {"address": "vie@lycee-demo.fr"},
                "label",
            ),
            (
                "/configuration/envoi/compte-personnel",
                {"address": "moi@lycee-demo.fr"},
                "display_name",
            ),
            ("/configuration/envoi/options", {}, "reply_to"),
        ):
            value = unsafe if field != "reply_to" else f"moi@lycee-demo.fr{character}Bcc: x@y.fr"
            response = client.post(url, data={**form, field: value}, headers=FR)
            wrong += fields_not_refused(response, character, [field])
    assert wrong == []
    assert db.session.scalars(select(Account)).all() == [own]
    db.session.refresh(own)
    assert own.display_name == name
    assert smtp_server.received == []


def test_server_settings_refuse_every_control_character_in_the_sender_and_the_server(
    client, db, login_as
):
    from tests.delivery.test_pages import URL, saved_settings, valid_form

    login_as("admin")
    assert client.post(URL, data=valid_form(), headers=FR).status_code == 302
    wrong = []
    for character in UNSAFE:
        fields = {
            "sender_name": f"Lycée{character}Bcc: tous@exemple.fr",
            "sender_address": f"a@lycee-hugo.fr{character}Bcc: x@y.fr",
            "host": f"smtp.lycee-hugo.fr{character}RCPT TO:<x@y.fr>",
            "username": f"envoi{character}AUTH",
        }
        response = client.post(URL, data=valid_form(**fields), headers=FR)
        wrong += fields_not_refused(response, character, fields)
    assert wrong == []
    saved = saved_settings(db)
    assert (saved.sender_name, saved.transport.host) == ("Lycée Victor Hugo", "smtp.lycee-hugo.fr")


def test_template_names_refuse_every_control_character(
    client, db, sender, make_person, select_people
):
    token = select_people(sender, [make_person("student")])
    wrong = []
    for character in UNSAFE:
        data = compose_form(token, template_label=f"Réunion{character}parents")
        response = client.post("/e-mail/modeles", data=data, headers=FR)
        wrong += fields_not_refused(response, character, ["template_label"])
    assert wrong == []
    assert count(db, Template) == 0


def test_a_nul_character_in_an_imported_file_refuses_the_file_in_french(client, db, login_as):
    login_as("admin")
    csv = "nom;prénom;e-mail;type\nDu\x00pont;Léa;lea@example.org;étudiant\n".encode()
    response = client.post(
        "/import",
        data={"file": (io.BytesIO(csv), "eleves.csv")},
        headers=FR,
        content_type="multipart/form-data",
    )
    assert "rien n'a été importé" in unescape(response.text) or "UTF-16" in response.text
    assert count(db, Person) == 0


@pytest.mark.worker
def test_cleaned_names_files_and_types_are_delivered_with_exactly_the_headers_stored(
    client, db, login_as, make_user, personal_account, delivery_settings, smtp_server, worker
):
    """CSV names, upload names and upload types: the character is removed, the rest delivered."""
    delivery_settings(smtp_server)
    login_as("admin")
    imported = [c for c in UNSAFE if c != "\x00"]  # a NUL refuses the whole file (above)
    rows = "".join(
        f'"Du{c}pont{i}";"Lé{c}a";"eleve{i}@example.org";"étudiant"\n'
        for i, c in enumerate(imported)
    )
    report = client.post(
        "/import",
        data={"file": (io.BytesIO(f"nom;prénom;e-mail;type\n{rows}".encode()), "eleves.csv")},
        headers=FR,
        content_type="multipart/form-data",
    )
    page = unescape(report.text)
    assert f"{len(imported)} créé(s)" in page
    assert "Un retour à la ligne ou un caractère de contrôle a été retiré de cette ligne." in page
    people = list(db.session.scalars(select(Person)))
    assert sorted(p.last_name for p in people) == sorted(f"Dupont{i}" for i in range(len(imported)))
    assert {p.first_name for p in people} == {"Léa"}

    staff = make_user("staff", display_name="Sophie Martin")
    personal_account(staff)
    client.post("/deconnexion")
    login_as(staff)
    from hpmail.directory.selection import create_selection

    token = create_selection(staff, [p.id for p in people]).token
    db.session.commit()
    # CR and LF cannot be carried raw in a multipart part header: escaped as browsers do.
    raw = {"\r": "%0D", "\n": "%0A"}
    files = [
        (io.BytesIO(PDF), f"convo{raw.get(c, c)}cation{i}.pdf", f"application/pdf{raw.get(c, c)}x")
        for i, c in enumerate(UNSAFE)
    ]
    expected_names = {f"convo{raw.get(c, '')}cation{i}.pdf" for i, c in enumerate(UNSAFE)}
    response = client.post(
        "/e-mail/nouveau",
        data=compose_form(token, attachments=files),
        headers=FR,
        content_type="multipart/form-data",
    )
    assert response.status_code == 303, re.findall(r"class=\"[^\"]*error[^>]*>[^<]*", response.text)
    mailing = db.session.scalars(select(Mailing)).one()
    stored = db.session.scalars(
        select(MailingAttachment).where(MailingAttachment.mailing_id == mailing.id)
    ).all()
    assert {a.filename for a in stored} == expected_names
    assert {a.content_type for a in stored} == {"application/pdf"}

    worker()
    total = count(db, OutboundEmail)
    wait_until(
        lambda: (
            db.session.rollback()
            or db.session.scalar(
                select(func.count())
                .select_from(OutboundEmail)
                .where(OutboundEmail.state == EmailState.SENT)
            )
            == total
        ),
        timeout=60,
        message="the worker did not deliver every e-mail",
    )

    db.session.expire_all()
    recipients = db.session.scalars(select(EmailRecipient)).all()
    expected_to = sorted((r.name, r.address) for r in recipients if r.field == "to")
    delivered_to, names = [], set()
    for received in smtp_server.received:
        message = BytesParser(policy=email.policy.default).parsebytes(received.data)
        assert sorted(message.keys()) == sorted(
            [
                "Message-ID",
                "To",
                "From",
                "Subject",
                "Date",
                "Content-Language",
                "MIME-Version",
                "Content-Type",
            ]
        ), message.keys()
        assert message["Subject"] == "Convocation"
        (author,) = message["From"].addresses
        assert (author.display_name, author.addr_spec) == (
            mailing.sender_name,
            mailing.sender_address,
        )
        delivered_to += [(a.display_name, a.addr_spec) for a in message["To"].addresses]
        for part in message.iter_attachments():
            assert part.get_content_type() == "application/pdf"
            assert part.get_content() == PDF
            names.add(part.get_filename())
    assert sorted(delivered_to) == expected_to
    assert names == {a.filename for a in stored}
