"""Print jobs benchmark: the print dialog's request, and a click on Imprimer / Mailer for 2,000
timetables (PDF attached + PNG in the body) until every e-mail is queued, by a real worker.

    .venv/bin/python bench/print_jobs.py [--scale 2] [--people 2000] [--runs 7] [--sample 20]

The demo school at ``--scale`` in a temporary instance (SQLite file and queue), deliveries to
Postfix's ``smtp-sink``. Three figures, each beside its baseline in the same run:
- the dialog's POST for ``--people`` students (the job and its items written, the worker told);
  baseline: the home page;
- from the dialog's POST to the last e-mail queued: the dialog, then Envoyer at once (before any
  document is ready), one ``huey_consumer`` (2 threads) rendering and queueing chunk by chunk;
  baseline: the naive path (xhtml2pdf then pypdfium2 per person, one process) on a sample,
  extrapolated;
- the worker's peak memory (PSS of the consumer and its drawing processes, sampled).
"""

from __future__ import annotations

import argparse
import logging
import signal
import statistics
import sys
import threading
import time
import uuid
from datetime import date
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))
from delivery import Instance, start_sink  # noqa: E402  (the delivery bench's instance)
from documents import _tree_pss_mb  # noqa: E402  (the documents bench's memory of a tree)

PASSWORD = "bench-password-1"
WEEK = "2026-12-09"  # the week of Monday 7 December 2026


def dialog(token: str, **fields) -> dict:
    values = {
        "selection": token,
        "request_token": str(uuid.uuid4()),
        "kind": "timetable",
        "output": "printer",
        "paper": "A4",
        "orientation": "landscape",
        "colour": "colour",
        "show_room": "y",
        "show_teachers": "y",
        "show_groups": "y",
        "period": "week",
        "week": WEEK,
        "attach_pdf": "y",
        "print_copy": "none",
    }
    values.update(fields)
    return values


class WorkerMemory:
    """The highest PSS of a worker process and its children while the block runs."""

    def __init__(self, pid: int) -> None:
        self.pid, self.peak = pid, 0.0
        self._stop = threading.Event()

    def __enter__(self) -> WorkerMemory:
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def _sample(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, _tree_pss_mb(self.pid))
            self._stop.wait(0.2)

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()


def setup(instance: Instance, scale: int, people: int, kind: str | None = None):
    """Build the school, a staff user with a verified account; return a signed-in client and
    the token of a selection of ``people`` students (a list's of ``kind``, if given)."""
    from sqlalchemy import select

    from hpmail.accounts.models import Account, AccountKind, MailSettings
    from hpmail.auth.service import create_user
    from hpmail.core.time import utcnow
    from hpmail.directory.demo import build_school
    from hpmail.directory.models import Person, PersonKind
    from hpmail.directory.selection import create_selection

    db = instance.db
    build_school(scale=scale)
    user = create_user("secretariat", "Secrétariat", PASSWORD, "staff")
    account = Account(
        kind=AccountKind.PERSONAL,
        label="Secrétariat",
        display_name="Secrétariat",
        address="secretariat@lycee-demo.fr",
        owner_id=user.id,
        verified_at=utcnow(),
    )
    db.session.add(account)
    db.session.flush()
    db.session.add(MailSettings(user_id=user.id, account_id=account.id))
    ids = db.session.scalars(
        select(Person.id).where(Person.kind == PersonKind.STUDENT).order_by(Person.id).limit(people)
    ).all()
    selection = create_selection(user, ids, kind=kind)
    db.session.commit()
    instance.app.config["WTF_CSRF_ENABLED"] = False
    client = instance.app.test_client()
    signed = client.post("/connexion", data={"login": user.login, "password": PASSWORD})
    assert signed.status_code == 302, signed.text
    return client, selection.token


def timed(call, runs: int) -> list[float]:
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        response = call()
        times.append(time.perf_counter() - started)
        assert response.status_code in (200, 303), response.status_code
    return times


def naive_per_person(sample: int) -> float:
    """Seconds a person on the naive path: each document drawn alone, then its PNG."""
    from sqlalchemy import select

    from hpmail.directory.models import Person, PersonKind
    from hpmail.documents.content import person_documents
    from hpmail.documents.layout import DocumentKind, Layout, Period
    from hpmail.documents.letterhead import current_letterhead
    from hpmail.documents.render import render_pdf, render_png
    from hpmail.extensions import db

    ids = db.session.scalars(
        select(Person.id).where(Person.kind == PersonKind.STUDENT).order_by(Person.id).limit(sample)
    ).all()
    documents = person_documents(DocumentKind.TIMETABLE, ids, Period.week_of(date(2026, 12, 9)))
    started = time.perf_counter()
    for document in documents.values():
        render_png(render_pdf(document, Layout(), current_letterhead()))
    return (time.perf_counter() - started) / len(documents)


def forget_queued_jobs(instance: Instance) -> None:
    """Cancel the jobs the dialog's measure made, and empty the queue (no worker ran)."""
    from sqlalchemy import update

    from hpmail.documents.models import DocumentJob
    from hpmail.queue import huey

    instance.db.session.execute(update(DocumentJob).values(state="cancelled"))
    instance.db.session.commit()
    huey.flush()


def _print_timetables(client, token: str):
    return client.post(
        "/documents/imprimer",
        data=dialog(token, output="email", inline_png="y", print_copy="without_email"),
    )


def click_to_queued(instance: Instance, client, token: str, click=None, subject: str = "") -> dict:
    """Imprimer / Mailer then Envoyer at once; a worker renders and queues every e-mail.

    ``click(client)`` posts the dialog (by default Imprimer's, timetables, PDF + PNG).
    """
    from sqlalchemy import func, select

    from hpmail.documents.mailing import address_of, people_of
    from hpmail.documents.models import DocumentJob, DocumentJobItem

    db = instance.db
    (worker,) = instance.start_workers(1, threads=2)
    try:
        with WorkerMemory(worker.pid) as memory:
            started = time.perf_counter()
            posted = (click or _print_timetables)(client, token)
            assert posted.status_code == 303, posted.status_code
            job_id = int(posted.headers["Location"].rstrip("/").split("/")[-2])
            composer = {
                "subject": subject or "Emploi du temps — semaine du 7 décembre 2026",
                "body": "<p>Bonjour,</p><p>Voici votre emploi du temps.</p>",
                "request_token": str(uuid.uuid4()),
            }
            sent = client.post(f"/documents/impression/{job_id}/e-mail", data=composer)
            assert sent.status_code == 303, sent.text
            job = db.session.get(DocumentJob, job_id)
            expected = sum(1 for person in people_of(job) if address_of(person))
            queued = 0
            while queued < expected:
                time.sleep(0.2)
                db.session.rollback()
                queued = db.session.scalar(
                    select(func.count()).where(
                        DocumentJobItem.job_id == job_id, DocumentJobItem.email_id.is_not(None)
                    )
                )
                if time.perf_counter() - started > 600:
                    raise SystemExit(f"only {queued} of {expected} queued after 600 s")
            elapsed = time.perf_counter() - started
            while db.session.get(DocumentJob, job_id).state == "rendering":
                time.sleep(0.2)
                db.session.rollback()
    finally:
        worker.send_signal(signal.SIGINT)
        worker.wait(30)
    job = db.session.get(DocumentJob, job_id)
    total = len(job.items)
    return {"seconds": elapsed, "queued": expected, "total": total, "peak": memory.peak}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--scale", type=int, default=2)
    parser.add_argument("--people", type=int, default=2000)
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--sample", type=int, default=20)
    args = parser.parse_args()
    logging.basicConfig(level=logging.ERROR)

    sink, port = start_sink()
    instance = Instance(port)
    logging.getLogger().setLevel(logging.ERROR)
    try:
        client, token = setup(instance, args.scale, args.people)
        home = timed(lambda: client.get("/"), args.runs)
        dialog_times = timed(
            lambda: client.post("/documents/imprimer", data=dialog(token)), args.runs
        )
        forget_queued_jobs(instance)
        naive = naive_per_person(args.sample)
        end_to_end = click_to_queued(instance, client, token)
    finally:
        instance.close()
        sink.terminate()

    home_ms = statistics.median(home) * 1000
    dialog_ms = statistics.median(dialog_times) * 1000
    seconds, total = end_to_end["seconds"], end_to_end["total"]
    rows = [
        ("baseline: home page (median)", f"{home_ms:.1f} ms"),
        (
            f"print dialog POST, {args.people:,} people (median of {args.runs})",
            f"{dialog_ms:.0f} ms ({dialog_ms / home_ms:.0f}× the home page; < 300 ms)",
        ),
        (
            f"baseline: naive xhtml2pdf + pypdfium2 per person ({args.sample} measured)",
            f"{naive * 1000:.0f} ms a person → {naive * total:.0f} s for {total:,}",
        ),
        (
            f"click to all e-mails queued: {total:,} timetables, PDF + PNG, 1 worker",
            f"{seconds:.1f} s for {end_to_end['queued']:,} e-mails"
            f" ({naive * total / seconds:.1f}× the naive path; ≤ 60 s)",
        ),
        (
            "worker peak memory (PSS, with its drawing processes)",
            f"{end_to_end['peak']:.0f} MB (< 500 MB)",
        ),
    ]
    print("\n| measure | result |\n|---|---|")
    for name, value in rows:
        print(f"| {name} | {value} |")


if __name__ == "__main__":
    main()
