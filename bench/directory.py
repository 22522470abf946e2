"""Directory benchmark: the student list on a 20,000-student school, and a 20,000-row CSV import.

    .venv/bin/python bench/directory.py [--scale 13] [--rounds 15] [--import-rows 20000]
                                        [--database postgresql+psycopg://…]

Builds the demo school at ``--scale`` (13: ~20,000 students, 156 cohorts) into a temporary
instance (a real SQLite file, or the empty PostgreSQL database ``--database``: its tables are
made, vacuumed and analysed after the load as autovacuum would, and dropped at the end), signs a
staff user in, and times each request through Flask's test client (server time, no network):
median and p90 of ``--rounds`` runs. The home page, in the same run, is the baseline. Then
imports a generated CSV (French columns, ``;``, cohorts and groups) and re-imports it (every row
matched, nothing duplicated).
Targets: 150 ms per list request, 20 s per import.
"""

from __future__ import annotations

import argparse
import csv
import io
import logging
import random
import re
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

FR = {"Accept-Language": "fr"}
HTMX = {**FR, "HX-Request": "true"}
LIST_TARGET_MS = 150
IMPORT_TARGET_S = 20


def timed(call, rounds: int, before=None) -> list[float]:
    """Return the times (ms) of ``rounds`` calls; ``before`` runs untimed before each one."""
    times = []
    for index in range(rounds):
        if before:
            before()
        started = time.perf_counter()
        response = call(index)
        times.append((time.perf_counter() - started) * 1000)
        assert response.status_code in (200, 303), response.status_code
    return times


def vacuum_analyze(engine) -> None:
    """Do what autovacuum does after a big load (statistics, GIN pending lists merged)."""
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        connection.exec_driver_sql("VACUUM ANALYZE")


def generated_csv(rows: int, seed: int = 7) -> bytes:
    """Return a CSV of ``rows`` students with French names, cohorts and TD/TP groups."""
    from hpmail.core.text import fold
    from hpmail.directory.demo import FIRST_NAMES, LAST_NAMES

    rng = random.Random(seed)
    out = io.StringIO()
    writer = csv.writer(out, delimiter=";", lineterminator="\r\n")
    writer.writerow(["identifiant", "nom", "prénom", "e-mail", "type", "promotion", "groupes"])
    for n in range(rows):
        first, last = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
        email = f"{fold(first)}.{fold(last)}.{n}@import.lycee-demo.fr".replace(" ", "-")
        cohort = f"Import promotion {n // 125:03d}"
        td = (n % 125) * 4 // 125 + 1
        writer.writerow(
            [f"I{n:06d}", last, first, email, "étudiant", cohort, f"TD{td}, TP{2 * td - n % 2}"]
        )
    return out.getvalue().encode("utf-8")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--scale", type=int, default=13)
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--import-rows", type=int, default=20_000)
    parser.add_argument("--database", default="", help="an empty database (default: SQLite)")
    args = parser.parse_args()

    from sqlalchemy import func, select

    from hpmail import create_app
    from hpmail.auth.service import create_user
    from hpmail.directory import selection as selections
    from hpmail.directory.demo import build_school
    from hpmail.directory.importer import import_people
    from hpmail.directory.models import Cohort, Person, Selection
    from hpmail.extensions import db
    from tests.conftest import CsrfClient

    logging.basicConfig(level=logging.WARNING)
    with tempfile.TemporaryDirectory() as folder:
        config = {"INSTANCE_PATH": folder, "SECRET_KEY": "bench", "DEMO": False}
        if args.database:
            config["SQLALCHEMY_DATABASE_URI"] = args.database
        app = create_app({**config, "QUEUE_URL": "memory"})
        app.test_client_class = CsrfClient
        logging.getLogger("hpmail").setLevel(logging.WARNING)
        with app.app_context():
            db.create_all()
            started = time.perf_counter()
            school = build_school(scale=args.scale)
            create_user("bench", "Bench", "bench-password", "staff")
            db.session.commit()
            built = time.perf_counter() - started
            if db.engine.dialect.name == "postgresql":
                vacuum_analyze(db.engine)
            print(
                f"{db.engine.dialect.name}: demo school (scale {args.scale}): "
                f"{school.students:,} students, {school.cohorts} cohorts, "
                f"{school.teachers:,} teachers, {school.courses:,} courses, built in {built:.1f} s"
            )
            cohort = db.session.scalars(select(Cohort).order_by(Cohort.id)).first()

            client = app.test_client()
            client.post("/connexion", data={"login": "bench", "password": "bench-password"})
            location = client.get("/plannings/student").headers["Location"]
            token = re.search(r"selection=([\w-]+)", location).group(1)
            selection = db.session.scalar(select(Selection).where(Selection.token == token))
            url = "/plannings/student"
            select_url = f"/plannings/student/selection/{token}"

            def clear():
                selections.clear(selection)
                db.session.commit()

            rows = [
                (
                    "Baseline: home page (GET /)",
                    timed(lambda i: client.get("/", headers=FR), args.rounds),
                ),
                (
                    "First list page (whole page)",
                    timed(
                        lambda i: client.get(url, query_string={"selection": token}, headers=FR),
                        args.rounds,
                    ),
                ),
                (
                    f"Cohort filter ({cohort.name}, htmx)",
                    timed(
                        lambda i: client.get(
                            url,
                            query_string={"selection": token, "cohort": cohort.id},
                            headers=HTMX,
                        ),
                        args.rounds,
                    ),
                ),
                (
                    "Text filter (« dupont », htmx)",
                    timed(
                        lambda i: client.get(
                            url, query_string={"selection": token, "q": "dupont"}, headers=HTMX
                        ),
                        args.rounds,
                    ),
                ),
                (
                    "Text filter, 2 words (« lea mar »)",
                    timed(
                        lambda i: client.get(
                            url, query_string={"selection": token, "q": "lea mar"}, headers=HTMX
                        ),
                        args.rounds,
                    ),
                ),
                (
                    f"Select all that match: all {school.students:,} students",
                    timed(
                        lambda i: client.post(select_url, data={"action": "all"}, headers=HTMX),
                        args.rounds,
                        before=clear,
                    ),
                ),
                (
                    "Select all that match: one cohort",
                    timed(
                        lambda i: client.post(
                            select_url, data={"action": "all", "cohort": cohort.id}, headers=HTMX
                        ),
                        args.rounds,
                        before=clear,
                    ),
                ),
                (
                    "Checkbox toggle (counter fragment)",
                    timed(
                        lambda i: client.post(
                            select_url, data={"shown": [i + 1], "person_id": [i + 1]}, headers=HTMX
                        ),
                        args.rounds,
                    ),
                ),
            ]
            selected = selections.selected_count(selection)

            data = generated_csv(args.import_rows)
            imports = []
            for label in ("Import of a new file", "Re-import of the same file"):
                started = time.perf_counter()
                report = import_people(
                    data, max_bytes=app.config["IMPORT_MAX_BYTES"], actor="bench"
                )
                db.session.commit()
                seconds = time.perf_counter() - started
                counts = (
                    report.count("created"),
                    report.count("updated"),
                    report.count("unchanged"),
                )
                imports.append((label, seconds, counts, report.count("rejected")))
            people = db.session.scalar(select(func.count()).select_from(Person))
            db.session.remove()
            if args.database:
                db.drop_all()
            db.engine.dispose()

    baseline = statistics.median(rows[0][1])
    print()
    header = f"| request ({args.rounds} runs each)"
    print(f"{header:<53}| median ms | p90 ms | × baseline | < {LIST_TARGET_MS} ms |")
    print(
        "|----------------------------------------------------|-----------|--------|------------|----------|"
    )
    for label, times in rows:
        median = statistics.median(times)
        p90 = statistics.quantiles(times, n=10)[-1]
        ok = "yes" if median < LIST_TARGET_MS else "NO"
        print(f"| {label:<50} | {median:9.1f} | {p90:6.1f} | {median / baseline:10.2f} | {ok:>8} |")
    print()
    header = f"| CSV import ({args.import_rows:,} rows, {len(data) / 1e6:.1f} MB)"
    print(f"{header:<47}| seconds | created / updated / unchanged | < {IMPORT_TARGET_S} s |")
    print(
        "|----------------------------------------------|---------|-------------------------------|--------|"
    )
    for label, seconds, (created, updated, unchanged), rejected in imports:
        ok = "yes" if seconds < IMPORT_TARGET_S and rejected == 0 else "NO"
        counts = f"{created:,} / {updated:,} / {unchanged:,}"
        print(f"| {label:<44} | {seconds:7.1f} | {counts:>29} | {ok:>6} |")
    print()
    print(
        f"(last selection held {selected:,} people; {people:,} people in the database at the end)"
    )


if __name__ == "__main__":
    main()
