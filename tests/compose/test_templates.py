"""Templates (modèles): save the composer's content, fill it back, rename, delete; own only."""

from __future__ import annotations

import io

from sqlalchemy import select

from hpmail.compose.models import Signature, Template
from tests.compose.conftest import FR, PNG


def test_template_round_trip(client, sender, make_person, select_people, db):
    token = select_people(sender, [make_person("teacher"), make_person("student")])
    response = client.post(
        "/e-mail/modeles",
        data={
            "selection": token,
            "template_label": "Conseil de classe",
            "kinds": ["teacher"],
            "subject": "Conseil de classe du 3e trimestre",
            "body": "<p>Bonjour,</p><script>x()</script><p>Le conseil aura lieu <b>lundi</b>.</p>",
            "insert_signature": "1",
            "cc": "direction@example.org",
            "attachments": [(io.BytesIO(b"%PDF-1.4 ordre du jour"), "ordre du jour.pdf")],
        },
        content_type="multipart/form-data",
        headers=FR,
    )
    assert response.status_code == 200  # back to the draft as it was
    template = db.session.scalar(select(Template))
    assert template.owner_id == sender.id and template.kinds == ["teacher"]
    assert "<script" not in template.html_body
    assert [a.filename for a in template.attachments] == ["ordre du jour.pdf"]

    filled = client.get(f"/e-mail/nouveau?selection={token}&template={template.id}", headers=FR)
    assert 'value="Conseil de classe du 3e trimestre"' in filled.text
    assert "Le conseil aura lieu &lt;b&gt;lundi&lt;/b&gt;" in filled.text  # in the textarea
    assert 'name="kinds" value="teacher" checked' in filled.text
    assert 'name="kinds" value="student" >' in filled.text
    assert "ordre du jour.pdf" in filled.text
    assert 'value="direction@example.org"' in filled.text


def test_template_name_is_required_and_unique(client, sender, db):
    empty = client.post("/e-mail/modeles", data={"template_label": " ", "subject": "x"}, headers=FR)
    assert empty.status_code == 422 and "Donnez un nom au modèle" in empty.text
    client.post("/e-mail/modeles", data={"template_label": "A", "subject": "un"})
    client.post("/e-mail/modeles", data={"template_label": "B", "subject": "deux"})
    a, b = db.session.scalars(select(Template).order_by(Template.label))
    clash = client.post(
        f"/e-mail/modeles/{b.id}/renommer", data={"label": "A"}, headers=FR, follow_redirects=True
    )
    assert "Vous avez déjà un modèle nommé « A »" in clash.text
    db.session.refresh(b)
    assert b.label == "B"


def test_template_is_renamed_and_deleted(client, sender, db):
    client.post("/e-mail/modeles", data={"template_label": "Rentrée", "subject": "Rentrée"})
    template = db.session.scalar(select(Template))
    client.post(f"/e-mail/modeles/{template.id}/renommer", data={"label": "Rentrée 2026"})
    db.session.refresh(template)
    assert template.label == "Rentrée 2026"
    client.post(f"/e-mail/modeles/{template.id}/supprimer")
    db.session.expire_all()
    assert db.session.scalar(select(Template)) is None


def test_another_users_template_is_not_found(client, sender, make_user, db):
    other = make_user("staff")
    template = Template(owner_id=other.id, label="Secret", subject="Secret", html_body="<p>x</p>")
    db.session.add(template)
    db.session.commit()
    assert client.get(f"/e-mail/nouveau?template={template.id}").status_code == 404
    assert (
        client.post(f"/e-mail/modeles/{template.id}/renommer", data={"label": "x"}).status_code
        == 404
    )
    assert client.post(f"/e-mail/modeles/{template.id}/supprimer").status_code == 404
    db.session.refresh(template)
    assert template.label == "Secret"


def test_signature_accepts_png_and_refuses_other_files(app, client, sender, db):
    refused = client.post(
        "/e-mail/signature",
        data={"signature": (io.BytesIO(b"GIF89a...."), "signature.png")},
        content_type="multipart/form-data",
        headers=FR,
    )
    assert refused.status_code == 422 and "PNG ou JPEG" in refused.text
    app.config["SIGNATURE_MAX_BYTES"] = 20
    too_big = client.post(
        "/e-mail/signature",
        data={"signature": (io.BytesIO(PNG), "signature.png")},
        content_type="multipart/form-data",
        headers=FR,
    )
    assert too_big.status_code == 422 and "dépasse" in too_big.text
    assert db.session.get(Signature, sender.id) is None
    app.config["SIGNATURE_MAX_BYTES"] = 512 * 1024
    saved = client.post(
        "/e-mail/signature",
        data={"signature": (io.BytesIO(PNG), "scan.png")},
        content_type="multipart/form-data",
    )
    assert saved.status_code == 302
    assert client.get("/e-mail/signature/image").data == PNG
