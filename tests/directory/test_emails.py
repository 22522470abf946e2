"""An address is valid, invalid or missing by its syntax alone; an invalid one is kept."""

from __future__ import annotations

import pytest

from hpmail.core.text import fold
from hpmail.directory.emails import email_status_of
from hpmail.directory.text import search_text_for


@pytest.mark.parametrize(
    ("address", "status"),
    [
        (None, "missing"),
        ("", "missing"),
        ("   ", "missing"),
        ("lea.dupont@lycee-demo.fr", "valid"),
        ("  lea.dupont@lycee-demo.fr ", "valid"),
        ("lea.dupont@@lycee-demo.fr", "invalid"),
        ("lea dupont@lycee-demo.fr", "invalid"),
        ("lea.dupont.lycee-demo.fr", "invalid"),
        ("lea.dupont@lycee-demo.fr.", "invalid"),
        ("lea.dupont@", "invalid"),
        ("x" * 300 + "@lycee-demo.fr", "invalid"),
    ],
)
def test_email_status_of(address, status):
    assert email_status_of(address) == status


def test_no_dns_lookup_for_a_domain_that_does_not_exist():
    assert email_status_of("quelquun@domaine-qui-n-existe-pas-du-tout.fr") == "valid"


def test_an_invalid_address_is_kept_on_the_person(db, make_person):
    person = make_person(email="jean@@exemple")
    assert (person.email, person.email_status) == ("jean@@exemple", "invalid")
    assert make_person(email=None).email_status == "missing"


def test_search_text_and_sort_keys_follow_the_names(db, make_person):
    person = make_person(last_name="Lefèvre", first_name="Œdipe", email="Oe@Exemple.fr")
    assert person.search_text == "lefevre oedipe oe@exemple.fr"
    assert (person.last_name_key, person.first_name_key) == ("lefevre", "oedipe")
    person.last_name = "Éluard"
    db.session.commit()
    assert person.search_text.startswith("eluard ")
    assert fold("  ÉLODIE   Ben  Saïd ") == "elodie ben said"
    assert search_text_for("A", None, None) == "a"


def test_english_browser_gets_the_lists_in_english(client, login_as, make_person):
    login_as("staff")
    make_person(last_name="Dupont")
    location = client.get("/plannings/student").headers["Location"]
    page = client.get(location, headers={"Accept-Language": "en-GB,en;q=0.9"})
    assert "<h1>Students</h1>" in page.text
    assert "Select all that match the filter (1)" in page.text
