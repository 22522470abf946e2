"""Documents benchmark: 2,000 personalised timetables as PDF + PNG, naive path against ours.

    .venv/bin/python bench/documents.py [--scale 2] [--people 2000] [--sample 100]

The demo school at ``--scale`` in a temporary SQLite instance; the week of 7 December 2026. The
naive path (each person's HTML drawn by xhtml2pdf, then page 1 by pypdfium2, one after the
other, one process) is measured on a sample and extrapolated; ``render_documents`` renders all of
them. Memory is the proportional set size (PSS) of this process and its drawing processes,
sampled every 0.1 s. Prints one table.
"""

from __future__ import annotations

import argparse
import logging
import os
import statistics
import sys
import tempfile
import threading
import time
from datetime import date
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def _tree_pss_mb(root: int) -> float:
    """Memory of ``root`` and all its descendants, in MB (Linux /proc).

    The proportional set size: pages the fork server shares with its children count once.
    """
    total, stack = 0, [root]
    while stack:
        pid = stack.pop()
        try:
            with open(f"/proc/{pid}/smaps_rollup") as rollup:
                for line in rollup:
                    if line.startswith("Pss:"):
                        total += int(line.split()[1])
            for task in os.listdir(f"/proc/{pid}/task"):
                with open(f"/proc/{pid}/task/{task}/children") as children:
                    stack.extend(int(child) for child in children.read().split())
        except (FileNotFoundError, ProcessLookupError):
            continue
    return total / 1024


def _pss_of(pid: int) -> float:
    with open(f"/proc/{pid}/smaps_rollup") as rollup:
        for line in rollup:
            if line.startswith("Pss:"):
                return int(line.split()[1]) / 1024
    return 0.0


class PeakMemory:
    """The highest memory of this process tree (and of this process alone) while the block runs."""

    def __init__(self) -> None:
        self.peak = 0.0
        self.peak_here = 0.0
        self._stop = threading.Event()

    def __enter__(self) -> PeakMemory:
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def _sample(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, _tree_pss_mb(os.getpid()))
            self.peak_here = max(self.peak_here, _pss_of(os.getpid()))
            self._stop.wait(0.1)

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--scale", type=int, default=2)
    parser.add_argument("--people", type=int, default=2000)
    parser.add_argument("--sample", type=int, default=100)
    parser.add_argument("--cpu-sample", type=int, default=300)
    args = parser.parse_args()

    from sqlalchemy import select

    from hpmail import create_app
    from hpmail.directory.demo import build_school
    from hpmail.directory.models import Person, PersonKind
    from hpmail.documents.content import person_documents
    from hpmail.documents.layout import DocumentKind, Layout, LetterheadInfo, Period
    from hpmail.documents.render import (
        RenderError,
        printed_copy,
        render_documents,
        render_pdf,
        render_png,
        zip_of,
    )
    from hpmail.extensions import db

    logging.basicConfig(level=logging.ERROR)
    layout = Layout()  # A4 landscape, colours, room, teachers and groups
    letterhead = LetterheadInfo("Université de démonstration", "1 rue de l'École", "75005 Paris")
    week = Period.week_of(date(2026, 12, 7))
    with tempfile.TemporaryDirectory() as folder:
        app = create_app(
            {"INSTANCE_PATH": folder, "SECRET_KEY": "bench", "DEMO": False, "QUEUE_URL": "memory"}
        )
        with app.app_context():
            db.create_all()
            school = build_school(scale=args.scale)
            db.session.commit()
            ids = list(
                db.session.scalars(
                    select(Person.id)
                    .where(Person.kind == PersonKind.STUDENT)
                    .order_by(Person.id)
                    .limit(args.people)
                )
            )
            started = time.perf_counter()
            by_person = person_documents(DocumentKind.TIMETABLE, ids, week)
            documents = [by_person[pid] for pid in ids if pid in by_person]
            built = time.perf_counter() - started
            sheets = len({d.shared_key() for d in documents})
            print(
                f"Demo school (scale {args.scale}): {school.students:,} students; "
                f"{len(documents):,} timetables made in {built:.2f} s, {sheets} distinct grids."
            )

            # Naive: each person's own drawing, one after the other, in this process.
            step = max(1, len(documents) // args.sample)
            sample = documents[::step][: args.sample]
            started, cpu = time.perf_counter(), time.process_time()
            for document in sample:
                render_png(render_pdf(document, layout, letterhead))
            naive_each = (time.perf_counter() - started) / len(sample)
            naive_cpu = (time.process_time() - cpu) / len(sample)

            # Ours in this process, on the first people (their groups share grids as in a
            # mailing): CPU time, which other work on the machine does not inflate.
            first = documents[: args.cpu_sample]
            cpu = time.process_time()
            for _index, _result in render_documents(
                first, layout, letterhead, png=True, processes=1
            ):
                pass
            ours_cpu = (time.process_time() - cpu) / len(first)
            first_sheets = len({d.shared_key() for d in first})

            # Ours: shared grids drawn once, names stamped, two processes.
            pdf_sizes, png_sizes, failures = [], [], 0
            with PeakMemory() as memory:
                started = time.perf_counter()
                first_ready = None
                for _index, result in render_documents(
                    documents, layout, letterhead, png=True, processes=2
                ):
                    first_ready = first_ready or time.perf_counter() - started
                    if isinstance(result, RenderError):
                        failures += 1
                        continue
                    pdf_sizes.append(len(result.pdf))
                    png_sizes.append(len(result.png))
                    # Kept on disk, as the worker stores them, not in this process's memory.
                    (Path(folder) / f"{_index}.pdf").write_bytes(result.pdf)
                ours = time.perf_counter() - started

            pdfs = [
                (Path(folder) / f"{n}.pdf").read_bytes()
                for n in range(len(documents))
                if (Path(folder) / f"{n}.pdf").exists()
            ]
            started = time.perf_counter()
            copy = printed_copy(pdfs)
            copied = time.perf_counter() - started
            started = time.perf_counter()
            archive = zip_of((f"Emploi du temps - {n}.pdf", pdf) for n, pdf in enumerate(pdfs))
            zipped = time.perf_counter() - started

    count = len(documents)
    load = os.getloadavg()[0]
    rows = [
        (
            "CPU time a person, 1 process: naive / render_documents",
            f"{naive_cpu * 1000:.0f} / {ours_cpu * 1000:.0f} ms ({naive_cpu / ours_cpu:.1f}×;"
            f" ours on the first {len(first)} people, {first_sheets} grids)",
        ),
        (
            f"naive: xhtml2pdf + pypdfium2 per person, 1 process ({len(sample)} measured)",
            f"{naive_each * 1000:.0f} ms a person → {naive_each * count:.0f} s for {count:,}"
            " (extrapolated)",
        ),
        (
            f"render_documents, {count:,} people, PDF + PNG, 2 processes",
            f"{ours:.1f} s ({ours / count * 1000:.1f} ms a person, {naive_each * count / ours:.1f}×"
            f" faster); first ready after {first_ready:.1f} s; {failures} failed",
        ),
        ("from click to rendered: documents made + rendering", f"{built + ours:.1f} s (≤ 60 s)"),
        (
            "peak memory (PSS), this process and its drawing processes / this process alone",
            f"{memory.peak:.0f} / {memory.peak_here:.0f} MB (< 500)",
        ),
        (
            f"printed copy of the {len(pdfs):,} PDFs (one PDF) / ZIP of them",
            f"{copied:.1f} s, {len(copy) / 1e6:.1f} MB / {zipped:.1f} s, "
            f"{len(archive) / 1e6:.0f} MB",
        ),
        (
            "PDF size, median / largest",
            f"{statistics.median(pdf_sizes) / 1000:.0f} / {max(pdf_sizes) / 1000:.0f} KB (≤ 100)",
        ),
        (
            "PNG size, median / largest",
            f"{statistics.median(png_sizes) / 1000:.0f} / {max(png_sizes) / 1000:.0f} KB (≤ 200)",
        ),
    ]
    print(f"\nLoad average (1 min) at the end: {load:.1f} on {os.cpu_count()} cores.")
    print("\n| measure | result |\n|---|---|")
    for name, value in rows:
        print(f"| {name} | {value} |")


if __name__ == "__main__":
    main()
