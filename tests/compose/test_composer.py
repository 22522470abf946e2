"""The composer page: counts, sending, bad input refused with French messages, nothing changed."""

from __future__ import annotations

import io

from sqlalchemy import func, select

from hpmail.outbox.models import Attachment, EmailRecipient, Mailing, OutboundEmail
from tests.compose.conftest import FR, HTMX, PNG


def count(db, model) -> int:
    return db.session.scalar(select(func.count()).select_from(model))


def form(**fields):
    values = {"kinds": ["student"], "subject": "Sortie au musée", "body": "<p>Bonjour à tous</p>"}
    values.update(fields)
    return values


def test_composer_shows_each_type_with_how_many_can_receive_it(
    client, sender, make_person, make_cohort, select_people
):
    cohort = make_cohort("L1 Histoire")
    students = [make_person("student", cohort=cohort) for _ in range(3)]
    students.append(make_person("student", email=None, cohort=cohort, last_name="Sansmail"))
    students.append(make_person("student", email="faux@", cohort=cohort, last_name="Malécrit"))
    teacher = make_person("teacher")
    token = select_people(sender, students + [teacher])

    page = client.get(f"/e-mail/nouveau?selection={token}", headers=FR)

    assert page.status_code == 200
    assert "Étudiants (3)" in page.text
    assert "Enseignants (1)" in page.text
    assert "Sans adresse</span> : <span" in page.text and "SANSMAIL" in page.text
    assert (
        "Adresse invalide</span> : <span" in page.text and "MALÉCRIT Prénom5 (faux@)" in page.text
    )
    assert "Envoyer l&#39;e-mail" in page.text or "Envoyer l'e-mail" in page.text


def test_another_users_selection_is_not_found(
    client, sender, make_user, make_person, select_people
):
    other = make_user("staff")
    token = select_people(other, [make_person("student")])
    assert client.get(f"/e-mail/nouveau?selection={token}").status_code == 404


def test_sending_queues_the_mailing_and_delivers_it(
    client, sender, make_person, select_people, smtp_server, db
):
    people = [make_person("student") for _ in range(3)] + [make_person("student", email=None)]
    token = select_people(sender, people)

    response = client.post(
        "/e-mail/nouveau",
        data=form(selection=token, cc="parent@example.org", bcc="direction@example.org"),
        headers=FR,
        follow_redirects=True,
    )

    assert response.status_code == 200, response.text
    assert "1 e-mail envoyé" in response.text
    mailing = db.session.scalar(select(Mailing))
    assert mailing.kind == "email" and mailing.subject == "Sortie au musée"
    assert "Bonjour à tous" in mailing.text_body
    (received,) = smtp_server.received
    assert sorted(received.rcpt_tos) == sorted(
        [p.email for p in people[:3]] + ["parent@example.org", "direction@example.org"]
    )
    assert "direction@example.org" not in received.data.decode()
    assert received.message["Cc"] == "parent@example.org"


def test_one_email_per_recipient_and_hidden_recipients(
    client, sender, make_person, select_people, smtp_server, db
):
    people = [make_person("student") for _ in range(3)]
    token = select_people(sender, people)
    response = client.post(
        "/e-mail/nouveau",
        data=form(selection=token, one_per_recipient="1", hide_recipients="1"),
        headers=FR,
        follow_redirects=True,
    )
    assert "3 e-mails envoyés" in response.text
    assert sorted(r.rcpt_tos[0] for r in smtp_server.received) == sorted(p.email for p in people)
    for received in smtp_server.received:
        assert received.rcpt_tos[0] not in str(received.message["To"])


def test_large_lists_are_split_under_the_recipient_limit(
    app, client, sender, make_person, select_people, db
):
    app.config["MAX_RECIPIENTS_PER_MESSAGE"] = 2
    token = select_people(sender, [make_person("student") for _ in range(5)])
    client.post("/e-mail/nouveau", data=form(selection=token), headers=FR)
    sizes = db.session.execute(
        select(func.count(EmailRecipient.id)).group_by(EmailRecipient.email_id)
    ).scalars()
    assert sorted(sizes) == [1, 2, 2]


def test_crlf_in_the_subject_is_refused_and_nothing_is_queued(
    client, sender, make_person, select_people, db
):
    token = select_people(sender, [make_person("student")])
    response = client.post(
        "/e-mail/nouveau",
        data=form(selection=token, subject="Bonjour\r\nBcc: victime@example.org"),
        headers=FR,
    )
    assert response.status_code == 422
    assert "« Objet » doit tenir sur une seule ligne" in response.text
    assert count(db, Mailing) == 0


def test_an_empty_recipient_list_is_refused(client, sender, make_person, select_people, db):
    token = select_people(sender, [make_person("student", email=None)])
    response = client.post("/e-mail/nouveau", data=form(selection=token), headers=FR)
    assert response.status_code == 422
    assert "Choisissez au moins un destinataire" in response.text
    assert count(db, Mailing) == 0


def test_a_bad_copy_address_is_named_and_nothing_is_queued(
    client, sender, make_person, select_people, db
):
    token = select_people(sender, [make_person("student")])
    response = client.post(
        "/e-mail/nouveau",
        data=form(selection=token, cc="ok@example.org, pas-une-adresse"),
        headers=FR,
    )
    assert response.status_code == 422
    assert "« pas-une-adresse » n&#39;est pas une adresse e-mail valide" in response.text
    assert count(db, Mailing) == 0


def test_an_empty_subject_is_warned_then_sent_when_confirmed(
    client, sender, make_person, select_people, db, smtp_server
):
    token = select_people(sender, [make_person("student")])
    data = form(selection=token, subject="  ")
    first = client.post("/e-mail/nouveau", data=data, headers=FR)
    assert first.status_code == 200
    assert "Cet e-mail n&#39;a pas d&#39;objet" in first.text
    assert "Envoyer sans objet" in first.text
    assert count(db, Mailing) == 0

    second = client.post(
        "/e-mail/nouveau",
        data={**data, "confirm_empty_subject": "1"},
        headers=FR,
        follow_redirects=True,
    )
    assert "1 e-mail envoyé" in second.text
    assert len(smtp_server.received) == 1


def test_forbidden_and_oversized_attachments_are_refused_and_nothing_is_stored(
    app, client, sender, make_person, select_people, db
):
    app.config["ATTACHMENT_MAX_FILE_BYTES"] = 1000
    token = select_people(sender, [make_person("student")])
    for name, content, message in [
        ("virus.exe", b"hello", "programme"),
        ("cours.pdf", b"MZ\x90\x00" + b"x" * 50, "programme"),
        ("gros.pdf", b"%PDF" + b"x" * 2000, "dépasse"),
    ]:
        data = form(selection=token, attachments=[(io.BytesIO(content), name)])
        response = client.post(
            "/e-mail/nouveau", data=data, headers=FR, content_type="multipart/form-data"
        )
        assert response.status_code == 422
        assert name in response.text and message in response.text
    assert count(db, Mailing) == 0
    assert count(db, Attachment) == 0
    assert count(db, OutboundEmail) == 0


def test_attachment_and_signature_are_sent_and_a_valid_file_survives_a_warning(
    client, sender, make_person, select_people, db, smtp_server
):
    client.post(
        "/e-mail/signature",
        data={"signature": (io.BytesIO(PNG), "ma-signature.png")},
        content_type="multipart/form-data",
    )
    token = select_people(sender, [make_person("student")])
    data = form(
        selection=token,
        subject="",
        insert_signature="1",
        attachments=[(io.BytesIO(b"%PDF-1.4 planning"), "planning été.pdf")],
    )
    warned = client.post(
        "/e-mail/nouveau", data=data, headers=FR, content_type="multipart/form-data"
    )
    assert "planning été.pdf" in warned.text
    kept = warned.text.split('name="kept" value="')[1].split('"')[0]

    data = form(selection=token, subject="Planning", insert_signature="1", kept=[kept])
    client.post("/e-mail/nouveau", data=data, headers=FR)

    message = smtp_server.received[0].message
    html = message.get_body(("html",)).get_content()
    image = next(p for p in message.walk() if p.get_content_type() == "image/png")
    content_id = image["Content-ID"].strip("<>")
    assert f'src="cid:{content_id}"' in html
    assert image.get_content() == PNG
    (attached,) = [p for p in message.iter_attachments() if p.get_filename() == "planning été.pdf"]
    assert attached.get_content() == b"%PDF-1.4 planning"


def test_hostile_body_is_not_put_back_into_the_page_when_the_form_is_shown_again(
    client, sender, make_person, select_people
):
    token = select_people(sender, [make_person("student")])
    body = '<p>Bonjour</p><img src=x onerror="alert(1)"><script>alert(2)</script>'
    page = client.post("/e-mail/nouveau", data=form(selection=token, subject="", body=body))
    textarea = page.text.split("data-editor>")[1].split("</textarea>")[0]
    assert "Bonjour" in textarea and "onerror" not in textarea and "script" not in textarea


def test_hostile_body_is_sanitised_before_it_is_stored(
    client, sender, make_person, select_people, db
):
    token = select_people(sender, [make_person("student")])
    body = (
        '<p onclick="x()">Bonjour</p><script>alert(1)</script><img src=x onerror=alert(1)>'
        '<a href="javascript:alert(1)">clic</a><p style="display:none">caché</p>'
    )
    client.post("/e-mail/nouveau", data=form(selection=token, body=body), headers=FR)
    html = db.session.scalar(select(Mailing.html_body))
    for bad in ("<script", "onclick", "onerror", "javascript:", "style="):
        assert bad not in html
    assert "Bonjour" in html


def test_sending_from_an_account_the_user_may_not_use_is_refused(
    client, sender, make_person, select_people, make_user, personal_account, db
):
    other = personal_account(make_user("staff"))
    token = select_people(sender, [make_person("student")])
    response = client.post(
        "/e-mail/nouveau", data=form(selection=token, account_id=str(other.id)), headers=FR
    )
    assert response.status_code == 403
    assert count(db, Mailing) == 0


def test_posting_without_csrf_token_is_refused(client, sender, make_person, select_people, db):
    token = select_people(sender, [make_person("student")])
    response = client.post("/e-mail/nouveau", data=form(selection=token), csrf=False)
    assert response.status_code == 400
    assert count(db, Mailing) == 0


def test_others_are_picked_by_name_and_put_in_copy(
    client, sender, make_person, select_people, smtp_server
):
    student = make_person("student")
    teacher = make_person("teacher", last_name="Lefèvre", first_name="Anne")
    token = select_people(sender, [student])
    found = client.get("/e-mail/personnes?q=lefevre", headers=HTMX)
    assert "LEFÈVRE Anne" in found.text and f'value="{teacher.id}"' in found.text
    client.post(
        "/e-mail/nouveau", data=form(selection=token, other_ids=[str(teacher.id)]), headers=FR
    )
    assert smtp_server.received[0].message["Cc"] == f"Anne Lefèvre <{teacher.email}>"


def test_composer_opens_without_a_selection_for_free_addresses(client, sender, smtp_server):
    page = client.get("/e-mail/nouveau", headers=FR)
    assert page.status_code == 200 and "Autres" in page.text
    client.post(
        "/e-mail/nouveau", data={"cc": "parent@example.org", "subject": "Hello", "body": "Bonjour"}
    )
    assert smtp_server.received[0].rcpt_tos == ["parent@example.org"]


def test_every_compose_form_refuses_a_post_without_csrf_token(app, client, sender, db):
    from hpmail.compose.models import Template

    template = Template(owner_id=sender.id, label="Rentrée", subject="Rentrée")
    db.session.add(template)
    db.session.commit()
    posts = [
        rule
        for rule in app.url_map.iter_rules()
        if rule.endpoint.startswith("compose.") and "POST" in rule.methods
    ]
    assert len(posts) >= 5
    for rule in posts:
        ids = {"template_id": template.id, "course_id": 1, "cohort_id": 1}
        path = rule.build({k: ids[k] for k in rule.arguments}, append_unknown=False)[1]
        response = client.post(path, data={"label": "x", "subject": "x"}, csrf=False)
        assert response.status_code == 400, path
    db.session.refresh(template)
    assert template.label == "Rentrée"


def test_without_delegation_the_page_gives_the_delivery_outcome(
    client, sender, make_person, select_people, smtp_server, delivery_settings, db
):
    from hpmail.outbox.models import UserTransport

    settings = delivery_settings(smtp_server, delegate=False)
    db.session.add(UserTransport(user_id=sender.id, transport_id=settings.transport_id))
    db.session.commit()
    token = select_people(sender, [make_person("student"), make_person("student")])
    response = client.post(
        "/e-mail/nouveau",
        data=form(selection=token, one_per_recipient="1"),
        headers=FR,
        follow_redirects=True,
    )
    assert "2 e-mails envoyés" in response.text
    assert "file d'attente" not in response.text
    assert len(smtp_server.received) == 2
