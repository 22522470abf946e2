"""The print dialog (Imprimer): whose documents, which, where they go; bad input refused in
French with 422 and nothing written; a replayed form makes one job; jobs are their owner's."""

from __future__ import annotations

import time
import uuid

import pytest
from sqlalchemy import select

from hpmail.directory.selection import create_selection
from hpmail.documents.models import DocumentJob, DocumentJobItem
from tests.documents.print_fixtures import FR, dialog, item_count, job_count


@pytest.fixture
def app_config(app_config):
    # The dialog's tests look at what the request writes: the worker's task waits in the queue.
    return {**app_config, "HUEY_IMMEDIATE": False}


def test_the_dialog_names_whose_documents_it_prints(client, login_as, school, selection_of):
    user = login_as("staff")
    token = selection_of(user, school.students)

    page = client.get(f"/documents/imprimer?selection={token}", headers=FR)

    assert page.status_code == 200
    assert "3 personnes sélectionnées" in page.text
    assert "Imprimante" in page.text and "E-mail" in page.text
    assert "Uniquement à ceux qui ne reçoivent pas d'e-mail" in page.text
    one = client.get(f"/documents/imprimer?person={school.alice.id}", headers=FR)
    assert "Alice Martin" in one.text


def test_the_dialog_writes_the_job_with_its_people_in_list_order_and_redirects(
    client, login_as, school, selection_of, db
):
    user = login_as("staff")
    token = selection_of(user, school.students)

    response = client.post(
        "/documents/imprimer", data=dialog(selection=token, request_token=str(uuid.uuid4()))
    )

    assert response.status_code == 303
    job = db.session.scalars(select(DocumentJob)).one()
    assert response.headers["Location"].endswith(f"/documents/impression/{job.id}")
    assert (job.user_id, job.kind, job.output, job.state) == (
        user.id,
        "timetable",
        "printer",
        "waiting",
    )
    assert str(job.period_start.date()) == "2026-12-07"
    assert str(job.period_end.date()) == "2026-12-13"
    names = [item.name for item in job.items]
    assert names == ["Bruno Durand", "Alice Martin", "Chloé Sansmail"]  # by last name


def test_an_email_output_goes_on_to_the_composer(client, login_as, school, selection_of, db):
    user = login_as("staff")
    token = selection_of(user, school.students)

    response = client.post(
        "/documents/imprimer",
        data=dialog(selection=token, output="email", inline_png="y", print_copy="without_email"),
    )

    job = db.session.scalars(select(DocumentJob)).one()
    assert response.status_code == 303
    assert response.headers["Location"].endswith(f"/documents/impression/{job.id}/e-mail")
    assert (job.attach_pdf, job.inline_png, job.print_copy) == (True, True, "without_email")


def test_an_empty_selection_is_refused_and_makes_no_job(client, login_as, db):
    user = login_as("staff")
    empty = create_selection(user, [])
    db.session.commit()

    response = client.post("/documents/imprimer", data=dialog(selection=empty.token), headers=FR)

    assert response.status_code == 422
    assert "Personne n&#39;est sélectionné" in response.text
    assert job_count(db) == 0


def test_no_selection_at_all_is_refused(client, login_as, db):
    login_as("staff")

    response = client.post("/documents/imprimer", data=dialog(), headers=FR)

    assert response.status_code == 422
    assert job_count(db) == 0


def test_an_email_without_pdf_nor_preview_is_refused(client, login_as, school, selection_of, db):
    user = login_as("staff")
    token = selection_of(user, school.students)

    response = client.post(
        "/documents/imprimer",
        data=dialog(selection=token, output="email", attach_pdf=None, inline_png=None),
        headers=FR,
    )

    assert response.status_code == 422
    assert "Joignez le document en PDF, insérez son aperçu dans le corps, ou les deux" in (
        response.text
    )
    assert job_count(db) == 0


@pytest.mark.parametrize(
    ("start", "end", "message"),
    [
        ("2026-12-14", "2026-12-07", "La fin de la période est avant son début."),
        ("2026-09-01", "2027-09-30", "La période dure au plus un an."),
        ("2026-09-01", "pas une date", "Donnez une date (jour, mois et année)."),
    ],
)
def test_a_bad_period_is_refused(client, login_as, school, selection_of, db, start, end, message):
    user = login_as("staff")
    token = selection_of(user, school.students)

    response = client.post(
        "/documents/imprimer",
        data=dialog(selection=token, period="dates", start=start, end=end),
        headers=FR,
    )

    assert response.status_code == 422
    assert message in response.text
    assert job_count(db) == 0


@pytest.mark.parametrize(
    "hostile",
    [
        {"kind": "<script>alert(1)</script>"},
        {"output": "fax"},
        {"paper": "A0"},
        {"orientation": "diagonal"},
        {"colour": "fluo"},
        {"print_copy": "everyone' OR 1=1"},
        {"period": "forever"},
        {"week": "2026-13-45"},
        {"week": "9" * 5000},
    ],
)
def test_hostile_values_are_refused_and_change_nothing(
    client, login_as, school, selection_of, db, hostile
):
    user = login_as("staff")
    token = selection_of(user, school.students)

    response = client.post(
        "/documents/imprimer", data=dialog(selection=token, **hostile), headers=FR
    )

    assert response.status_code == 422
    assert "<script>alert(1)</script>" not in response.text
    assert job_count(db) == 0


def test_an_email_of_a_cohorts_document_is_refused(client, login_as, school, db):
    login_as("staff")
    cohort_id = school.alice.cohort_id

    response = client.post(
        "/documents/imprimer", data=dialog(cohort=cohort_id, output="email"), headers=FR
    )

    assert response.status_code == 422
    assert job_count(db) == 0
    printed = client.post("/documents/imprimer", data=dialog(cohort=cohort_id))
    assert printed.status_code == 303
    item = db.session.scalars(select(DocumentJobItem)).one()
    assert (item.owner_kind, item.name) == ("cohort", "L2 Droit")


def test_a_replayed_dialog_makes_one_job(client, login_as, school, selection_of, db):
    user = login_as("staff")
    token = selection_of(user, school.students)
    form = dialog(selection=token, request_token=str(uuid.uuid4()))

    first = client.post("/documents/imprimer", data=form)
    second = client.post("/documents/imprimer", data=form)

    assert first.status_code == second.status_code == 303
    assert first.headers["Location"] == second.headers["Location"]
    assert job_count(db) == 1
    assert item_count(db) == 3


def test_the_dialog_refuses_a_post_without_its_csrf_token(
    client, login_as, school, selection_of, db
):
    user = login_as("staff")
    token = selection_of(user, school.students)

    response = client.post("/documents/imprimer", data=dialog(selection=token), csrf=False)

    assert response.status_code in (400, 422)
    assert job_count(db) == 0


def test_another_users_selection_is_not_found(
    client, login_as, make_user, school, selection_of, db
):
    login_as("staff")
    token = selection_of(make_user("staff"), school.students)

    assert client.get(f"/documents/imprimer?selection={token}").status_code == 404
    assert client.post("/documents/imprimer", data=dialog(selection=token)).status_code == 404
    assert job_count(db) == 0


def test_another_users_job_its_file_and_its_composer_are_not_found(
    client, login_as, make_user, school, selection_of, db
):
    owner = login_as("staff")
    token = selection_of(owner, school.students)
    client.post("/documents/imprimer", data=dialog(selection=token, output="email"))
    job = db.session.scalars(select(DocumentJob)).one()
    client.post("/deconnexion")
    login_as("staff")

    assert client.get(f"/documents/impression/{job.id}").status_code == 404
    assert client.get(f"/documents/impression/{job.id}/fichier").status_code == 404
    assert client.get(f"/documents/impression/{job.id}/e-mail").status_code == 404
    assert client.post(f"/documents/impression/{job.id}/e-mail", data={}).status_code == 404


def test_the_dialog_answers_quickly_for_two_thousand_people(client, login_as, make_cohort, db):
    from hpmail.directory.models import Person

    user = login_as("staff")
    cohort = make_cohort("L1 Droit")
    db.session.add_all(
        Person(kind="student", first_name=f"Prénom{i}", last_name=f"Nom{i:04d}", cohort=cohort)
        for i in range(2000)
    )
    db.session.commit()
    people = db.session.scalars(select(Person.id)).all()
    selection = create_selection(user, people)
    db.session.commit()

    started = time.perf_counter()
    response = client.post("/documents/imprimer", data=dialog(selection=selection.token))
    elapsed = time.perf_counter() - started

    assert response.status_code == 303
    assert item_count(db) == 2000
    assert elapsed < 1.0, f"{elapsed:.3f} s"  # bench/print_jobs.py measures it (< 300 ms)


def test_the_lists_and_the_document_pages_open_the_dialog_on_their_people(
    client, login_as, school, db
):
    login_as("staff")

    people = client.get("/plannings/student", follow_redirects=True, headers=FR)
    timetable = client.get(
        f"/plannings/student/emploi-du-temps?personne={school.alice.id}&semaine=2026-12-09",
        follow_redirects=True,
        headers=FR,
    )
    cohort = client.get(
        f"/promotions/{school.alice.cohort_id}/recapitulatif?du=2026-09-01&au=2026-12-31",
        headers=FR,
    )

    token = people.request.args["selection"]
    assert f'href="/documents/imprimer?selection={token}"' in people.text
    assert f"/documents/imprimer?selection={token}&amp;kind=timetable" in timetable.text
    assert (
        f"/documents/imprimer?person={school.alice.id}&amp;kind=timetable&amp;week=2026-12-07"
        in timetable.text
    )
    assert (
        f"/documents/imprimer?cohort={school.alice.cohort_id}&amp;kind=summary&amp;period=dates"
        "&amp;start=2026-09-01&amp;end=2026-12-31" in cohort.text
    )
    dialog_page = client.get(
        f"/documents/imprimer?kind=summary&cohort={school.alice.cohort_id}&period=dates"
        "&start=2026-09-01&end=2026-12-31",
        headers=FR,
    )
    assert 'value="summary" checked' in dialog_page.text
    assert 'value="2026-09-01"' in dialog_page.text and "L2 Droit" in dialog_page.text
