"""Nobody sees, downloads or resends mail of an account they are not authorised on."""

from __future__ import annotations

from hpmail.accounts.models import Account, AccountKind
from hpmail.core.time import utcnow
from hpmail.outbox.api import AttachmentSpec
from hpmail.outbox.attachments import store_attachment
from tests.archive.test_archive import send
from tests.compose.conftest import FR, HTMX


def archive_urls(app, mailing) -> list[tuple[str, str]]:
    """Return every archive URL of ``mailing`` (method, path), read from the URL map."""
    urls = []
    for rule in app.url_map.iter_rules():
        if not rule.endpoint.startswith("archive.") or "mailing_id" not in rule.arguments:
            continue
        values = {"mailing_id": mailing.id}
        if "item_id" in rule.arguments:
            values["item_id"] = mailing.attachments[0].id
        path = rule.build(values)[1]
        for method in rule.methods - {"HEAD", "OPTIONS"}:
            urls.append((method, path))
    return urls


def school_account(db, address, members):
    account = Account(
        kind=AccountKind.SCHOOL,
        label="Scolarité",
        display_name="Scolarité",
        address=address,
        verified_at=utcnow(),
        secret_question="?",
        secret_answer_hash="x",
    )
    account.members = list(members)
    db.session.add(account)
    db.session.commit()
    return account


def test_another_user_cannot_see_download_or_resend_anything(
    app, client, db, make_user, login_as, personal_account, delivery_settings, smtp_server
):
    delivery_settings(smtp_server)
    smtp_server.refuse("refuse@example.org")
    author = make_user("staff")
    member = make_user("teacher")
    mine = personal_account(author)
    school = school_account(db, "scolarite@lycee-demo.fr", [author, member])
    pdf = store_attachment(b"%PDF-1.4 confidentiel", "application/pdf")
    mailings = [
        send(
            db,
            author,
            account,
            f"Confidentiel {n}",
            body="Dossier médical",
            to=("refuse@example.org",),
            attachments=[AttachmentSpec(pdf, "dossier.pdf")],
        )
        for n, account in enumerate((mine, school, None))
    ]
    outsider = login_as("staff")
    personal_account(outsider)
    assert archive_urls(app, mailings[0])  # the walk covers detail, attachment and resend
    for mailing in mailings:
        for method, path in archive_urls(app, mailing):
            for headers in (FR, HTMX):
                response = client.open(path, method=method, headers=headers)
                assert response.status_code in (403, 404), (method, path)
    listing = client.get("/e-mails", headers=FR).text
    assert "Confidentiel" not in listing
    assert "Confidentiel" not in client.get("/e-mails?q=dossier", headers=HTMX).text
    assert "Confidentiel" not in client.get(f"/e-mails?account={mine.id}", headers=HTMX).text
    assert "Confidentiel" not in client.get("/e-mails?account=none", headers=HTMX).text
    assert len(smtp_server.received) == 0  # nothing was resent


def test_school_account_members_see_its_mail_but_not_server_mail(
    app, client, db, make_user, login_as, personal_account, delivery_settings, smtp_server
):
    delivery_settings(smtp_server)
    author = make_user("staff")
    member = login_as("teacher")
    school = school_account(db, "scolarite@lycee-demo.fr", [author, member])
    shared = send(db, author, school, "Partagé")
    server = send(db, None, None, "Test du serveur")
    assert client.get(f"/e-mails/{shared.id}").status_code == 200
    assert client.get(f"/e-mails/{server.id}").status_code == 404
    listing = client.get("/e-mails", headers=FR).text
    assert "Partagé" in listing and "Test du serveur" not in listing


def test_admin_reads_only_their_own_accounts_mail_and_the_servers_but_keeps_the_outbox(
    client, db, make_user, login_as, personal_account, delivery_settings, smtp_server
):
    delivery_settings(smtp_server)
    smtp_server.refuse("refuse@example.org")
    author = make_user("staff")
    pdf = store_attachment(b"%PDF-1.4 bilan", "application/pdf")
    private = send(
        db,
        author,
        personal_account(author),
        "Bilan Dupont",
        body="Dossier médical",
        to=("refuse@example.org",),
        attachments=[AttachmentSpec(pdf, "bilan.pdf")],
    )
    server = send(db, None, None, "Test du serveur")
    admin = login_as("admin")
    school = school_account(db, "scolarite@lycee-demo.fr", [admin, author])
    shared = send(db, author, school, "Partagé")
    listing = client.get("/e-mails", headers=FR).text
    assert "Partagé" in listing and "Test du serveur" in listing
    assert "Bilan Dupont" not in listing
    assert "Bilan Dupont" not in client.get("/e-mails?q=dossier", headers=HTMX).text
    filtered = client.get(f"/e-mails?account={private.account_id}", headers=HTMX).text
    assert "Bilan Dupont" not in filtered
    assert f'value="{private.account_id}"' not in listing  # not in the account picker either
    for method, path in archive_urls(client.application, private):
        assert client.open(path, method=method, headers=FR).status_code in (403, 404), path
    only_server = client.get("/e-mails?account=none", headers=HTMX).text
    assert "Test du serveur" in only_server and "Partagé" not in only_server
    assert client.get(f"/e-mails/{server.id}").status_code == 200
    assert client.get(f"/e-mails/{shared.id}").status_code == 200
    # Operations: the outbox still lists every waiting or failed e-mail's subject and state.
    outbox = client.get("/serveur/file-envoi", headers=FR).text
    assert "Bilan Dupont" in outbox


def test_a_final_failure_is_visible_to_its_author_with_the_servers_words(
    client, sender, db, smtp_server
):
    from hpmail.accounts.service import default_account

    smtp_server.recorder.data_reply = "554 5.7.1 Message refusé par la politique anti-spam"
    mailing = send(db, sender, default_account(sender), "Bulletin", to=("parent@example.org",))
    listing = client.get("/e-mails", headers=FR).text
    assert "state-failed" in listing and "Échec" in listing
    pane = client.get(f"/e-mails/{mailing.id}", headers=HTMX).text
    assert "554" in pane and "politique anti-spam" in pane
