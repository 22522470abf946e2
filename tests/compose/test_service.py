"""The composer's logic without HTTP: recipients, splitting, sanitising, checks."""

from __future__ import annotations

import pytest

from hpmail.compose import service
from hpmail.compose.richtext import html_to_text, sanitize_html
from hpmail.compose.uploads import Upload, upload_errors


def test_recipient_types_count_only_people_with_a_valid_address(db, make_person):
    people = [
        make_person("teacher"),
        make_person("student"),
        make_person("student", email=None),
        make_person("student", email="pas une adresse"),
    ]
    types = {t.kind: t for t in service.recipient_types(people)}
    assert (types["teacher"].reachable_count, types["teacher"].total) == (1, 1)
    assert (types["student"].reachable_count, types["student"].total) == (1, 3)
    assert {p.id for p, _why in types["student"].unreachable} == {people[2].id, people[3].id}


def test_recipients_are_resolved_once_each_by_field(db, make_person):
    teacher, student = make_person("teacher"), make_person("student")
    staff = make_person("staff")
    types = service.recipient_types([teacher, student])
    recipients = service.resolve_recipients(
        types,
        ["student"],
        [staff],
        [("", "parent@example.org"), ("", student.email.upper())],
        [("", "direction@example.org")],
    )
    assert [a.address for a in recipients.to] == [student.email]
    assert [a.address for a in recipients.cc] == [staff.email, "parent@example.org"]
    assert [a.address for a in recipients.bcc] == ["direction@example.org"]
    assert recipients.to[0].person_id == student.id


def test_large_lists_are_split_under_the_per_message_limit(db):
    from hpmail.outbox.api import Address

    recipients = service.Recipients(
        to=[Address(f"e{i}@example.org") for i in range(1200)],
        cc=[Address("copie@example.org")],
    )
    emails = service.split_emails(recipients, one_per_recipient=False, limit=500)
    assert [len(e.to) + len(e.cc) + len(e.bcc) for e in emails] == [500, 500, 201]
    assert sum(len(e.cc) for e in emails) == 1


def test_one_email_per_recipient_gives_each_person_their_own(db):
    from hpmail.outbox.api import Address

    recipients = service.Recipients(
        to=[Address("a@example.org"), Address("b@example.org")], bcc=[Address("c@example.org")]
    )
    emails = service.split_emails(recipients, one_per_recipient=True, limit=500)
    assert [[a.address for a in e.to] for e in emails] == [
        ["a@example.org"],
        ["b@example.org"],
        ["c@example.org"],
    ]
    assert all(not e.cc and not e.bcc for e in emails)


def test_copy_addresses_are_validated_one_by_one_naming_the_bad_one(app):
    pairs, errors = service.parse_addresses("ok@example.org; Jean <jean@example.org>, faux@")
    assert [a for _n, a in pairs] == ["ok@example.org", "jean@example.org"]
    assert len(errors) == 1 and "faux@" in errors[0]


@pytest.mark.parametrize(
    "hostile",
    [
        '<script>alert("x")</script>',
        '<img src=x onerror="alert(1)">',
        '<a href="javascript:alert(1)">clic</a>',
        '<p style="position:fixed;top:0">faux</p><style>p{display:none}</style>',
        '<p onmouseover="alert(1)">survol</p>',
        '<iframe src="https://evil.example"></iframe>',
    ],
)
def test_hostile_html_is_stripped(hostile):
    cleaned = sanitize_html("<p>Bonjour</p>" + hostile)
    for bad in ("<script", "onerror", "javascript:", "style", "onmouseover", "<iframe", "<img"):
        assert bad not in cleaned.lower()
    assert "Bonjour" in cleaned


def test_plain_text_part_is_derived_from_the_html():
    html = sanitize_html(
        "<p>Bonjour <b>à tous</b>,</p><ul><li>un</li><li>deux</li></ul>"
        '<p><a href="https://ent.example.org">l\'ENT</a></p>'
    )
    assert (
        html_to_text(html) == "Bonjour à tous,\n\n- un\n- deux\n\nl'ENT <https://ent.example.org>"
    )


def test_a_body_typed_without_the_editor_keeps_its_lines():
    assert (
        sanitize_html("ligne 1\nligne <2>\n\nfin") == "<p>ligne 1<br>ligne &lt;2&gt;</p><p>fin</p>"
    )


def test_executables_are_refused_by_name_and_by_content(app):
    with app.test_request_context(headers={"Accept-Language": "fr"}):
        errors = upload_errors(
            [
                Upload("setup.exe", "application/octet-stream", b"hello"),
                Upload("notes.pdf", "application/pdf", b"MZ\x90\x00rest"),
                Upload("script.JS", "text/javascript", b"alert(1)"),
                Upload("cours.pdf", "application/pdf", b"%PDF-1.4"),
            ]
        )
    assert len(errors) == 3
    assert "setup.exe" in errors[0] and "programme" in errors[0]
    assert "notes.pdf" in errors[1]


def test_files_over_the_limits_are_refused(app):
    app.config.update(ATTACHMENT_MAX_FILE_BYTES=100, ATTACHMENT_MAX_EMAIL_BYTES=150)
    with app.test_request_context(headers={"Accept-Language": "fr"}):
        too_big = upload_errors([Upload("gros.pdf", "application/pdf", b"x" * 101)])
        too_many = upload_errors(
            [
                Upload("a.pdf", "application/pdf", b"%PDF" + b"x" * 86),
                Upload("b.pdf", "application/pdf", b"%PDF" + b"x" * 86),
            ]
        )
    assert "gros.pdf" in too_big[0]
    assert "Mo" in too_many[0]
