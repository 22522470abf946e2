"""Letters benchmark: 2,000 form letters to PDF, one by one against batches in two processes.

    .venv/bin/python bench/letters.py [--scale 2] [--letters 2000] [--sample 100]

The demo school at ``--scale`` in a temporary SQLite instance, its letter « Attestation de
scolarité » (every letter differs: names, cohort, groups). The naive path (``letter_pdf``: one
xhtml2pdf run a letter, one after the other, one process) is measured on a sample and
extrapolated; the same sample is drawn in batches in one process (what batching alone gives);
``render_letters`` then draws all the letters (batches, two processes). Prints one table.
"""

from __future__ import annotations

import argparse
import io
import logging
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=int, default=2)
    parser.add_argument("--letters", type=int, default=2000)
    parser.add_argument("--sample", type=int, default=100)
    args = parser.parse_args()

    from pypdf import PdfReader
    from sqlalchemy import select

    from hpmail import create_app
    from hpmail.auth.service import create_user
    from hpmail.directory.demo import build_school
    from hpmail.directory.models import Person, PersonKind
    from hpmail.documents.layout import LetterheadInfo
    from hpmail.documents.render import RenderError
    from hpmail.extensions import db
    from hpmail.letters.demo import load_demo_letters
    from hpmail.letters.fields import records_for
    from hpmail.letters.models import Category, LetterTemplate
    from hpmail.letters.render import letter_pdf, render_letters

    logging.basicConfig(level=logging.ERROR)
    letterhead = LetterheadInfo(
        "Université de démonstration", "1 rue de l'École\n75005 Paris", "Paris"
    )
    with tempfile.TemporaryDirectory() as folder:
        app = create_app(
            {"INSTANCE_PATH": folder, "SECRET_KEY": "bench", "DEMO": False, "QUEUE_URL": "memory"}
        )
        with app.test_request_context():
            db.create_all()
            school = build_school(scale=args.scale)
            load_demo_letters(create_user("bench", "Bench", "bench-password-1", "staff"))
            db.session.commit()
            letter = db.session.scalars(
                select(LetterTemplate).where(LetterTemplate.title == "Attestation de scolarité")
            ).one()
            ids = list(
                db.session.scalars(
                    select(Person.id)
                    .where(Person.kind == PersonKind.STUDENT)
                    .order_by(Person.id)
                    .limit(args.letters)
                )
            )
            started = time.perf_counter()
            records = records_for(Category.STUDENTS, ids)
            loaded = time.perf_counter() - started
            print(
                f"Demo school (scale {args.scale}): {school.students:,} students; "
                f"{len(records):,} records read in {loaded:.2f} s."
            )
            count = len(records)
            step = max(1, count // args.sample)
            sample = records[::step][: args.sample]

            # Naive: one xhtml2pdf run a letter, one after the other, in this process.
            started, cpu = time.perf_counter(), time.process_time()
            for record in sample:
                letter_pdf(letter, record, letterhead)
            naive_each = (time.perf_counter() - started) / len(sample)
            naive_cpu = (time.process_time() - cpu) / len(sample)

            # Batches alone: the same sample, several letters a run, one process.
            started, cpu = time.perf_counter(), time.process_time()
            list(render_letters(letter, sample, letterhead, processes=1))
            batched_each = (time.perf_counter() - started) / len(sample)
            batched_cpu = (time.process_time() - cpu) / len(sample)

            # Ours: every letter, batches, two processes.
            sizes, pages, failures = [], [], 0
            started = time.perf_counter()
            first_ready = None
            for _index, result in render_letters(letter, records, letterhead, processes=2):
                first_ready = first_ready or time.perf_counter() - started
                if isinstance(result, RenderError):
                    failures += 1
                    continue
                sizes.append(len(result))
                if len(sizes) % 50 == 1:
                    pages.append(len(PdfReader(io.BytesIO(result)).pages))
            ours = time.perf_counter() - started

    rows = [
        (
            f"naive: letter_pdf, one xhtml2pdf run a letter, 1 process ({len(sample)} measured)",
            f"{naive_each * 1000:.0f} ms a letter ({naive_cpu * 1000:.0f} ms of CPU) →"
            f" {naive_each * count:.0f} s for {count:,} (extrapolated)",
        ),
        (
            f"batches of letters a run, 1 process (the same {len(sample)})",
            f"{batched_each * 1000:.0f} ms a letter ({batched_cpu * 1000:.0f} ms of CPU;"
            f" {naive_each / batched_each:.1f}× faster)",
        ),
        (
            "CPU of the batches, spread over 2 idle cores (projection)",
            f"{batched_cpu * count / 2:.0f} s for {count:,}",
        ),
        (
            f"render_letters, {count:,} letters, batches, 2 processes",
            f"{ours:.1f} s ({ours / count * 1000:.1f} ms a letter, {naive_each * count / ours:.1f}×"
            f" faster); first ready after {first_ready:.1f} s; {failures} failed",
        ),
        ("records read + letters drawn", f"{loaded + ours:.1f} s (target click-to-queued ≤ 45 s)"),
        (
            "PDF size, median / largest; pages (sampled)",
            f"{statistics.median(sizes) / 1000:.0f} / {max(sizes) / 1000:.0f} KB;"
            f" {min(pages)}–{max(pages)}",
        ),
    ]
    print("\n| measure | result |\n|---|---|")
    for name, value in rows:
        print(f"| {name} | {value} |")


if __name__ == "__main__":
    main()
