"""The selection lives on the server: checkbox posts, select all that match, one owner per token."""

from __future__ import annotations

import re

import pytest

from hpmail.directory import selection as selections
from hpmail.directory.models import Selection, SelectionMember

FR = {"Accept-Language": "fr-FR,fr;q=0.9"}
HTMX = {**FR, "HX-Request": "true"}


@pytest.fixture
def app_config(app_config):
    return {**app_config, "LIST_PAGE_SIZE": 5}


@pytest.fixture
def students(make_person, make_cohort):
    l1 = make_cohort("L1 Informatique", groups=("TD1",))
    bts = make_cohort("BTS SIO 1")
    people = [make_person(last_name=f"Info{n:02d}", cohort=l1) for n in range(8)]
    people += [make_person(last_name=f"Sio{n:02d}", cohort=bts) for n in range(3)]
    return {"l1": l1, "bts": bts, "people": people}


def current_token(client, kind="student") -> str:
    response = client.get(f"/plannings/{kind}", headers=FR)
    return re.search(r"selection=([\w-]+)", response.headers["Location"]).group(1)


def member_ids(db, token) -> set[int]:
    selection = db.session.query(Selection).filter_by(token=token).one()
    return {
        m.person_id for m in db.session.query(SelectionMember).filter_by(selection_id=selection.id)
    }


def test_list_keeps_the_token_of_the_users_current_selection(client, login_as, students):
    login_as("staff")
    assert current_token(client) == current_token(client)
    assert current_token(client, "teacher") != current_token(client)


def test_ticking_boxes_with_htmx_updates_the_counter_fragment(client, login_as, students, db):
    login_as("staff")
    token = current_token(client)
    first, second = students["people"][:2]
    shown = [p.id for p in students["people"][:5]]
    response = client.post(
        f"/plannings/student/selection/{token}",
        data={"shown": shown, "person_id": [first.id, second.id]},
        headers=HTMX,
    )
    assert response.status_code == 200
    assert response.text.strip().startswith('<strong id="selection-counter"')
    assert "2 sélectionné(s)" in response.text
    assert member_ids(db, token) == {first.id, second.id}
    # Unticking one: the page is posted again without it.
    response = client.post(
        f"/plannings/student/selection/{token}",
        data={"shown": shown, "person_id": [second.id]},
        headers=HTMX,
    )
    assert "1 sélectionné(s)" in response.text
    assert member_ids(db, token) == {second.id}


def test_selection_survives_paging_and_shows_ticked_boxes(client, login_as, students):
    login_as("staff")
    token = current_token(client)
    page1 = [p.id for p in students["people"][:5]]
    client.post(
        f"/plannings/student/selection/{token}", data={"shown": page1, "person_id": page1[:1]}
    )
    page2 = client.get("/plannings/student", query_string={"selection": token, "page": 2})
    assert "1 sélectionné(s)" in page2.text
    client.post(f"/plannings/student/selection/{token}", data={"action": "page_on", "shown": page1})
    page1_view = client.get("/plannings/student", query_string={"selection": token}, headers=FR)
    assert "5 sélectionné(s)" in page1_view.text
    assert page1_view.text.count(" checked>") == 5


def test_plain_form_post_without_javascript_redirects_back_to_the_same_list(
    client, login_as, students, db
):
    login_as("staff")
    token = current_token(client)
    person = students["people"][0]
    response = client.post(
        f"/plannings/student/selection/{token}",
        data={"shown": [person.id], "person_id": [person.id], "q": "info", "page": "1"},
    )
    assert response.status_code == 303
    assert f"selection={token}" in response.headers["Location"]
    assert "q=info" in response.headers["Location"]
    assert member_ids(db, token) == {person.id}


def test_select_all_that_match_the_cohort_filter_in_one_go(client, login_as, students, db):
    login_as("staff")
    token = current_token(client)
    l1 = students["l1"]
    page = client.get(
        "/plannings/student", query_string={"selection": token, "cohort": l1.id}, headers=FR
    )
    assert "Sélectionner tout ce qui correspond au filtre (8)" in page.text
    response = client.post(
        f"/plannings/student/selection/{token}",
        data={"action": "all", "cohort": l1.id},
        headers=HTMX,
    )
    assert response.text.lstrip().startswith('<div id="results">')
    assert "8 sélectionné(s)" in response.text
    # Twice changes nothing; then the BTS on top makes 11.
    client.post(f"/plannings/student/selection/{token}", data={"action": "all", "cohort": l1.id})
    assert len(member_ids(db, token)) == 8
    client.post(f"/plannings/student/selection/{token}", data={"action": "all", "q": "sio"})
    assert member_ids(db, token) == {p.id for p in students["people"]}
    client.post(f"/plannings/student/selection/{token}", data={"action": "none"})
    assert member_ids(db, token) == set()


def test_another_users_selection_token_is_a_404(client, login_as, students, make_user, db):
    owner = make_user("staff")
    theirs = selections.create_selection(owner, [students["people"][0].id], kind="student")
    db.session.commit()
    login_as("staff")
    listing = client.get("/plannings/student", query_string={"selection": theirs.token})
    assert listing.status_code == 404
    post = client.post(
        f"/plannings/student/selection/{theirs.token}", data={"action": "all"}, headers=FR
    )
    assert post.status_code == 404
    assert "Page introuvable" in post.text
    assert member_ids(db, theirs.token) == {students["people"][0].id}


def test_selection_of_another_kind_or_made_up_token_is_a_404(client, login_as, students):
    login_as("staff")
    token = current_token(client, "teacher")
    assert client.get("/plannings/student", query_string={"selection": token}).status_code == 404
    assert client.post("/plannings/student/selection/nope", data={}).status_code == 404


def test_checkbox_post_without_csrf_token_changes_nothing(client, login_as, students, db):
    login_as("staff")
    token = current_token(client)
    person = students["people"][0]
    response = client.post(
        f"/plannings/student/selection/{token}",
        data={"shown": [person.id], "person_id": [person.id]},
        csrf=False,
    )
    assert response.status_code == 400
    assert member_ids(db, token) == set()


def test_hostile_ids_are_ignored(client, login_as, students, db):
    login_as("staff")
    token = current_token(client)
    response = client.post(
        f"/plannings/student/selection/{token}",
        data={"shown": ["x", "-1", "99999999999999999999"], "person_id": ["x", "123456"]},
    )
    assert response.status_code == 303
    assert member_ids(db, token) == set()


def test_service_functions_create_and_read_a_selection(db, students, make_user):
    user = make_user("staff")
    people = students["people"]
    selection = selections.create_selection(user, [people[3].id, people[1].id, people[1].id])
    db.session.commit()
    assert len(selection.token) >= 32
    assert selections.selection_for(user, selection.token) is selection
    assert [p.id for p in selections.selected_people(selection)] == [people[1].id, people[3].id]
    assert selections.selected_count(selection) == 2
