"""Absences benchmark: Plannings › Étudiants › Absences with 30,000 absences, each filter and sort.

    .venv/bin/python bench/absences.py [--scale 10] [--rounds 15]

Builds the demo school at ``--scale`` (10: ~14,500 students and ~32,000 absences over the term)
into a temporary instance (a real SQLite file), signs a staff user in, and times each request of
the absences list through Flask's test client (server time, no network): median and p90 of
``--rounds`` runs. The home page, in the same run, is the baseline. Target: 150 ms per request.
"""

from __future__ import annotations

import argparse
import logging
import re
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.directory import timed  # noqa: E402

FR = {"Accept-Language": "fr"}
HTMX = {**FR, "HX-Request": "true"}
TARGET_MS = 150
LIST = "/plannings/etudiants/absences"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--scale", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=15)
    args = parser.parse_args()

    from sqlalchemy import select

    from hpmail import create_app
    from hpmail.auth.service import create_user
    from hpmail.directory import selection as selections
    from hpmail.directory.demo import build_school
    from hpmail.directory.models import Cohort, Selection
    from hpmail.extensions import db
    from tests.conftest import CsrfClient

    logging.basicConfig(level=logging.WARNING)
    with tempfile.TemporaryDirectory() as folder:
        app = create_app(
            {"INSTANCE_PATH": folder, "SECRET_KEY": "bench", "DEMO": False, "QUEUE_URL": "memory"}
        )
        app.test_client_class = CsrfClient
        logging.getLogger("hpmail").setLevel(logging.WARNING)
        with app.app_context():
            db.create_all()
            started = time.perf_counter()
            school = build_school(scale=args.scale)
            create_user("bench", "Bench", "bench-password", "staff")
            db.session.commit()
            built = time.perf_counter() - started
            print(
                f"Demo school (scale {args.scale}): {school.students:,} students, "
                f"{school.absences:,} absences, {school.internships:,} internships, "
                f"built in {built:.1f} s"
            )
            cohort = db.session.scalars(select(Cohort).order_by(Cohort.id)).first()

            client = app.test_client()
            client.post("/connexion", data={"login": "bench", "password": "bench-password"})
            token = re.search(r"selection=([\w-]+)", client.get(LIST).headers["Location"]).group(1)
            selection = db.session.scalar(select(Selection).where(Selection.token == token))
            select_url = f"{LIST}/selection/{token}"
            page_size = app.config["LIST_PAGE_SIZE"]
            last_page = school.absences // page_size + 1

            def clear():
                selections.clear(selection)
                db.session.commit()

            def listing(headers=HTMX, **args):
                return lambda i: client.get(
                    LIST, query_string={"selection": token, **args}, headers=headers
                )

            requests = [
                ("Baseline: home page (GET /)", lambda i: client.get("/", headers=FR), None),
                ("First page (whole page)", listing(FR), None),
                ("First page (htmx)", listing(), None),
                ("Period: one month", listing(start="2026-02-01", end="2026-02-28"), None),
                (f"Cohort ({cohort.name})", listing(cohort=cohort.id), None),
                ("Not justified", listing(justified="no"), None),
                ("Student's name (« martin »)", listing(q="martin"), None),
                (
                    "Cohort + not justified + one month",
                    listing(cohort=cohort.id, justified="no", start="2026-02-01", end="2026-02-28"),
                    None,
                ),
                ("Sort: date, descending", listing(order="desc"), None),
                ("Sort: student", listing(sort="student"), None),
                ("Sort: course", listing(sort="course"), None),
                ("Sort: hours, descending", listing(sort="hours", order="desc"), None),
                ("Sort: justified", listing(sort="justified"), None),
                (f"Last page ({last_page:,})", listing(page=last_page), None),
                (
                    f"Select all that match: all {school.absences:,}",
                    lambda i: client.post(select_url, data={"action": "all"}, headers=HTMX),
                    clear,
                ),
                (
                    "Select all that match: not justified",
                    lambda i: client.post(
                        select_url, data={"action": "all", "justified": "no"}, headers=HTMX
                    ),
                    clear,
                ),
                (
                    "Checkbox toggle (counter fragment)",
                    lambda i: client.post(
                        select_url, data={"shown": [i + 1], "item_id": [i + 1]}, headers=HTMX
                    ),
                    None,
                ),
            ]
            rows = [(label, timed(call, args.rounds, before)) for label, call, before in requests]
            db.session.remove()
            db.engine.dispose()

    baseline = statistics.median(rows[0][1])
    print()
    header = f"| request ({args.rounds} runs each)"
    print(f"{header:<46}| median ms | p90 ms | × baseline | < {TARGET_MS} ms |")
    print("|" + "-" * 45 + "|-----------|--------|------------|----------|")
    for label, times in rows:
        median = statistics.median(times)
        p90 = statistics.quantiles(times, n=10)[-1]
        ok = "yes" if median < TARGET_MS else "NO"
        print(f"| {label:<43} | {median:9.1f} | {p90:6.1f} | {median / baseline:10.2f} | {ok:>8} |")


if __name__ == "__main__":
    main()
