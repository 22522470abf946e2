"""In the browser: the archive shows what each person received and downloads their own file."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.archive.test_email_files import send_documents

pytestmark = pytest.mark.browser


def test_the_author_opens_a_document_mailing_and_downloads_one_recipients_own_file(
    page, sign_in_page, make_user, personal_account, delivery_settings, smtp_server, db
):
    delivery_settings(smtp_server)
    author = make_user("staff", display_name="Sophie Martin")
    account = personal_account(author)
    people = {"berenice@example.org": "Bérénice", "oscar@example.org": "Oscar"}
    send_documents(db, author, account, people)
    sign_in_page(author)

    page.goto("/e-mails")
    page.get_by_role("link", name="Bulletins du trimestre").click()
    page.locator("tr.selected", has_text="Bulletins du trimestre").wait_for()  # htmx swapped
    pane = page.locator("#pane")
    pane.get_by_role("list", name="Fichiers personnels").first.wait_for()
    oscar = pane.locator("tr", has_text="oscar@example.org")
    assert "Bulletin Oscar.pdf" in oscar.inner_text()
    assert "Bulletin Bérénice.pdf" not in oscar.inner_text()

    link = oscar.get_by_role("link", name="Bulletin Oscar.pdf")
    link.scroll_into_view_if_needed()  # below the fold, as a reader scrolls to it
    with page.expect_download() as download:
        link.click()
    assert download.value.suggested_filename == "Bulletin Oscar.pdf"
    assert Path(download.value.path()).read_bytes() == b"%PDF-1.4 bulletin de Oscar"
