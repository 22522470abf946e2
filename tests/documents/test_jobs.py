"""Print jobs: rendered by the worker chunk by chunk under a lease, one file at the end, a
document that cannot be made reported by name, a killed worker's job resumed, old jobs deleted."""

from __future__ import annotations

import io
import uuid
import zipfile
from datetime import timedelta

import pytest
from sqlalchemy import func, select, update

from hpmail import queue
from hpmail.core.time import utcnow
from hpmail.directory.models import Person
from hpmail.directory.selection import create_selection
from hpmail.documents import printing, tasks
from hpmail.documents.models import DocumentJob, DocumentJobItem
from hpmail.outbox.attachments import read_attachment
from tests.documents.print_fixtures import FR, dialog, pdf_text
from tests.fixtures.worker import wait_until, worker_app_config


def the_job(db) -> DocumentJob:
    """Return the latest job, as the database has it now."""
    db.session.rollback()  # a new snapshot: the worker writes from another process
    return db.session.scalars(select(DocumentJob).order_by(DocumentJob.id.desc())).first()


def print_for(client, user, people, db, **fields):
    selection = create_selection(user, [p.id for p in people])
    db.session.commit()
    form = dialog(selection=selection.token, request_token=str(uuid.uuid4()), **fields)
    response = client.post("/documents/imprimer", data=form)
    assert response.status_code == 303, response.text
    return the_job(db)


def test_a_pdf_job_gives_a_zip_of_one_pdf_per_person_named_by_person(client, login_as, school, db):
    user = login_as("staff")

    job = print_for(client, user, school.students, db, output="pdf")

    assert job.state == "done"
    download = client.get(f"/documents/impression/{job.id}/fichier")
    assert download.status_code == 200
    archive = zipfile.ZipFile(io.BytesIO(download.data))
    names = archive.namelist()
    assert names == [
        "Emploi du temps - Bruno Durand.pdf",
        "Emploi du temps - Alice Martin.pdf",
        "Emploi du temps - Chloé Sansmail.pdf",
    ]
    alice = pdf_text(archive.read("Emploi du temps - Alice Martin.pdf"))
    assert "Alice Martin" in alice and "Bruno" not in alice


def test_a_printer_job_gives_one_pdf_of_everyone_and_the_page_offers_it(
    client, login_as, school, db
):
    user = login_as("staff")

    job = print_for(client, user, school.students, db, output="printer")

    page = client.get(f"/documents/impression/{job.id}", headers=FR)
    assert "3 / 3 documents prêts" in page.text
    assert "Télécharger le PDF à imprimer" in page.text
    assert "hx-trigger" not in page.text.split('id="job-progress"')[1].split(">")[0]
    text = pdf_text(client.get(f"/documents/impression/{job.id}/fichier").data)
    assert text.index("Bruno Durand") < text.index("Alice Martin") < text.index("Chloé Sansmail")


def test_a_document_that_cannot_be_made_is_reported_by_name_and_the_others_go_on(
    client, login_as, school, db, monkeypatch
):
    real = printing.render_documents

    def failing_for_bruno(documents, *args, **kwargs):
        for index, rendered in real(documents, *args, **kwargs):
            if documents[index].owner.name == "Bruno Durand":
                rendered = printing.RenderError("la grille ne tient pas sur la page")
            yield index, rendered

    monkeypatch.setattr(printing, "render_documents", failing_for_bruno)
    monkeypatch.setattr(queue.huey, "_immediate", False)  # the test runs the worker's task
    user = login_as("staff")
    gone = Person(kind="student", first_name="Zoé", last_name="Partie")
    db.session.add(gone)
    db.session.commit()
    job = print_for(client, user, school.students + [gone], db)
    db.session.delete(gone)  # after the dialog, before the worker
    db.session.commit()

    tasks.run_job(job.id)

    job = the_job(db)
    states = {item.name: (item.state, item.error) for item in job.items}
    assert states["Bruno Durand"] == ("failed", "la grille ne tient pas sur la page")
    assert states["Zoé Partie"] == ("failed", "Ne figure plus dans l'annuaire.")
    assert states["Alice Martin"][0] == states["Chloé Sansmail"][0] == "ready"
    page = client.get(f"/documents/impression/{job.id}", headers=FR)
    assert "2 / 4 documents prêts" in page.text
    assert "Bruno Durand — la grille ne tient pas sur la page" in page.text
    text = pdf_text(read_attachment(job.output_file))
    assert "Alice Martin" in text and "Bruno" not in text


def test_a_job_is_taken_by_one_worker_at_a_time(client, login_as, school, db, app, monkeypatch):
    monkeypatch.setattr(queue.huey, "_immediate", False)  # nobody takes the job but this test
    user = login_as("staff")
    job = print_for(client, user, school.students, db)
    now = utcnow()

    assert printing.claim_job(job.id, now) is True
    assert printing.claim_job(job.id, now) is False
    later = now + timedelta(seconds=app.config["DOCUMENT_JOB_LEASE_SECONDS"] + 1)
    assert printing.claim_job(job.id, later) is True  # the lease expired: another worker takes it


def test_old_jobs_are_deleted_with_their_items(client, login_as, school, db, app):
    user = login_as("staff")
    old = print_for(client, user, [school.alice], db)
    recent = print_for(client, user, [school.bruno], db)
    long_ago = utcnow() - timedelta(days=app.config["DOCUMENT_JOB_KEEP_DAYS"] + 1)
    db.session.execute(
        update(DocumentJob).where(DocumentJob.id == old.id).values(created_at=long_ago)
    )
    db.session.commit()

    tasks.sweep()

    assert db.session.scalars(select(DocumentJob.id)).all() == [recent.id]
    items = db.session.scalar(select(func.count()).select_from(DocumentJobItem))
    assert items == 1


# --- with a real worker process ----------------------------------------------------------------


@pytest.fixture
def worker_config(tmp_path):
    return worker_app_config(
        tmp_path, DOCUMENT_JOB_CHUNK=5, DOCUMENT_JOB_LEASE_SECONDS=3, DOCUMENT_JOB_GRACE_SECONDS=1
    )


@pytest.mark.worker
class TestWithAWorker:
    @pytest.fixture
    def app_config(self, worker_config):
        return worker_config

    def test_the_worker_renders_the_job_and_stores_each_persons_pdf(
        self, client, login_as, school, db, worker
    ):
        user = login_as("staff")
        job = print_for(client, user, school.students, db)
        worker().wait_ready()

        # Done is committed first, then the worker lets the job go (its lease cleared).
        wait_until(
            lambda: the_job(db).state == "done" and the_job(db).lease_until is None,
            timeout=60,
            message="job not done and let go",
        )

        job = the_job(db)
        for item in job.items:
            text = pdf_text(read_attachment(item.pdf))
            assert item.name in text
            assert all(o.name not in text for o in job.items if o is not item)
        assert job.output_filename == "Emploi du temps.pdf"
        assert job.finished_at is not None

    def test_a_killed_workers_job_is_resumed_from_its_pending_documents(
        self, client, login_as, make_cohort, db, worker, app
    ):
        user = login_as("staff")
        cohort = make_cohort("L1 Histoire", groups=("TD1",))
        people = [
            Person(
                kind="student",
                first_name=f"Élève{i}",
                last_name=f"Nom{i:03d}",
                cohort=cohort,
                groups=[cohort.groups[0]],
            )
            for i in range(120)
        ]
        db.session.add_all(people)
        db.session.commit()
        first = worker().wait_ready()
        job = print_for(client, user, people, db)

        def some_ready():
            db.session.rollback()
            return db.session.scalar(
                select(func.count()).where(
                    DocumentJobItem.job_id == job.id, DocumentJobItem.state == "ready"
                )
            )

        wait_until(lambda: some_ready() >= 5, timeout=60, message="nothing rendered")
        first.kill()
        ready_when_killed = some_ready()
        assert 5 <= ready_when_killed < 120
        assert the_job(db).state == "rendering"

        second = worker()  # it starts while the lease runs out; nothing tells it of the job yet
        wait_until(lambda: the_job(db).lease_until < utcnow(), timeout=10, message="no lease")
        second.wait_ready()
        assert tasks.sweep() == 1
        wait_until(lambda: the_job(db).state == "done", timeout=120, message="not resumed")

        job = the_job(db)
        assert {item.state for item in job.items} == {"ready"}
        text = pdf_text(read_attachment(job.output_file))
        assert [f"Élève{i} Nom{i:03d}" in text for i in range(120)] == [True] * 120


def test_a_job_that_cannot_go_on_fails_with_why_and_is_not_taken_again(
    client, login_as, school, db, monkeypatch
):
    def broken(_pdfs):
        raise OSError("disque plein")

    monkeypatch.setattr(printing, "printed_copy", broken)
    user = login_as("staff")

    job = print_for(client, user, school.students, db)

    assert (job.state, job.error) == (
        "failed",
        "Les documents n'ont pas pu être préparés : disque plein",
    )
    assert tasks.sweep() == 0
    page = client.get(f"/documents/impression/{job.id}", headers=FR)
    assert "disque plein" in page.text and 'hx-trigger="load' not in page.text
