"""Claim benchmark: workers taking the same due rows at once, with and without SKIP LOCKED.

    .venv/bin/python bench/claim.py [--database URL] [--rows 10000] [--workers 4] [--batch 200]
                                    [--repeat 3]

Writes ``--rows`` due e-mails, then ``--workers`` processes claim them in batches of ``--batch``
ids (the worker's ``DELIVERY_BATCH_SIZE``), each with the claim's UPDATE and a commit, as
``outbox.claim.claim`` does. Every worker is handed every batch, as when the sweeper enqueues
again rows a task is about to take: "same order" makes the workers race for the same rows at
every step (the worst case), "own order" has each walk the batches in an order of its own.
Prints, per way of claiming: the median and p99 latency of one claim, the claims per second,
and checks that every row was claimed exactly once.

``--database``: an empty PostgreSQL database (``postgresql+psycopg://…``; its tables are made and
dropped), or SQLite by default (a temporary file; only the plain UPDATE, SQLite has no row locks).
"""

from __future__ import annotations

import argparse
import multiprocessing
import random
import statistics
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

WAYS = {"UPDATE … WHERE id IN (…) AND due": False, "FOR UPDATE SKIP LOCKED, then UPDATE": True}


def make_app(database: str, folder: str):
    from hpmail import create_app

    return create_app(
        {
            "INSTANCE_PATH": folder,
            "SECRET_KEY": "bench",
            "DEMO": False,
            "QUEUE_URL": "memory",
            "SQLALCHEMY_DATABASE_URI": database,
        }
    )


def write_rows(rows: int) -> list[int]:
    """Write ``rows`` queued, due e-mails of one mailing; return their ids."""
    from sqlalchemy import insert, select

    from hpmail.core.time import utcnow
    from hpmail.extensions import db
    from hpmail.outbox.models import Mailing, OutboundEmail

    mailing = Mailing(subject="Claim", text_body="x", sender_address="bench@lycee-demo.fr")
    db.session.add(mailing)
    db.session.flush()
    now = utcnow() - timedelta(minutes=1)
    db.session.execute(
        insert(OutboundEmail),
        [
            {
                "mailing_id": mailing.id,
                "message_id": f"<claim-{n}@bench>",
                "state": "queued",
                "next_attempt_at": now,
                "created_at": now,
            }
            for n in range(rows)
        ],
    )
    db.session.commit()
    return list(db.session.scalars(select(OutboundEmail.id).order_by(OutboundEmail.id)))


def reset_rows() -> None:
    from sqlalchemy import update

    from hpmail.extensions import db
    from hpmail.outbox.models import OutboundEmail

    db.session.execute(
        update(OutboundEmail).values(state="queued", lease_until=None, attempts=0, claimed_by=None)
    )
    db.session.commit()


def claimable(email_ids: list[int], now, skip_locked: bool):
    """Return the claim's condition: ``outbox.claim``'s, or its rows locked first, skipping any
    another worker holds (``FOR UPDATE SKIP LOCKED``) and checked due again by the UPDATE."""
    from sqlalchemy import and_, select

    from hpmail.outbox.claim import due
    from hpmail.outbox.models import OutboundEmail

    if not skip_locked:
        return and_(OutboundEmail.id.in_(email_ids), due(now))
    free = (
        select(OutboundEmail.id)
        .where(OutboundEmail.id.in_(email_ids), due(now))
        .with_for_update(skip_locked=True)
    )
    return and_(OutboundEmail.id.in_(free), due(now))


def worker(args) -> tuple[list[int], list[float], float, float]:
    """Claim each batch in turn: the ids this process took, each claim's time (ms), start, end."""
    database, folder, batches, skip_locked, barrier = args
    from sqlalchemy import update

    from hpmail.core.time import utcnow
    from hpmail.extensions import db
    from hpmail.outbox.models import EmailState, OutboundEmail

    app = make_app(database, folder)
    taken: list[int] = []
    times: list[float] = []

    def claim(ids: list[int]) -> list[int]:
        now = utcnow()
        claimed = db.session.scalars(
            update(OutboundEmail)
            .where(claimable(ids, now, skip_locked))
            .values(
                state=EmailState.SENDING,
                lease_until=now + timedelta(minutes=5),
                attempts=OutboundEmail.attempts + 1,
            )
            .returning(OutboundEmail.id)
            .execution_options(synchronize_session=False)
        ).all()
        db.session.commit()
        return claimed

    with app.app_context():
        claim([0])  # connected and the statement compiled before the start, as in a running worker
        barrier.wait()
        first = time.time()
        for ids in batches:
            started = time.perf_counter()
            taken.extend(claim(ids))
            times.append((time.perf_counter() - started) * 1000)
        last = time.time()
        db.session.remove()
        db.engine.dispose()
    return taken, times, first, last


def run(database, folder, ids, workers, size, skip_locked, order):
    """Claim every row with ``workers`` processes; return the ids taken, the times, the seconds."""
    batches = [ids[n : n + size] for n in range(0, len(ids), size)]
    plans = []
    for number in range(workers):
        own = list(batches)
        if order == "own order":
            random.Random(number).shuffle(own)
        plans.append(own)
    context = multiprocessing.get_context("spawn")
    with context.Manager() as manager:
        barrier = manager.Barrier(workers)
        with context.Pool(workers) as pool:
            results = pool.map(
                worker, [(database, folder, plan, skip_locked, barrier) for plan in plans]
            )
    taken = [row for rows, *_ in results for row in rows]
    times = [t for _, ts, *_ in results for t in ts]
    seconds = max(r[3] for r in results) - min(r[2] for r in results)
    return taken, times, seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--database", default="")
    parser.add_argument("--rows", type=int, default=10_000)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--batch", type=int, default=200)
    parser.add_argument("--repeat", type=int, default=3, help="runs of each way, in turns")
    args = parser.parse_args()

    from hpmail.extensions import db

    with tempfile.TemporaryDirectory() as folder:
        database = args.database or f"sqlite:///{folder}/claim.sqlite3"
        app = make_app(database, folder)
        with app.app_context():
            backend = db.engine.dialect.name
            db.create_all()
            ids = write_rows(args.rows)
            ways = WAYS if backend == "postgresql" else dict(list(WAYS.items())[:1])
            table = []
            for order in ("same order", "own order"):
                results = {label: ([], 0.0, True) for label in ways}
                # The ways take turns, so that a busy moment of the machine weighs on both.
                for _ in range(args.repeat):
                    for label, skip_locked in ways.items():
                        reset_rows()
                        db.session.remove()
                        taken, times, seconds = run(
                            database, folder, ids, args.workers, args.batch, skip_locked, order
                        )
                        once = len(taken) == len(set(taken)) == len(ids)
                        all_times, all_seconds, all_once = results[label]
                        results[label] = (
                            all_times + times,
                            all_seconds + seconds,
                            all_once and once,
                        )
                for label, (times, seconds, once) in results.items():
                    p99 = statistics.quantiles(times, n=100)[-1]
                    table.append(
                        (order, label, statistics.median(times), p99, len(times) / seconds, once)
                    )
            db.session.remove()
            if args.database:
                db.drop_all()
            db.engine.dispose()

    print(
        f"{backend}: {args.workers} workers, {args.rows:,} due rows, batches of {args.batch} ids,"
        f" every batch handed to every worker; {args.repeat} runs of each way, in turns"
    )
    print()
    print("| batches | claim | median ms | p99 ms | claims/s | each row once |")
    print("|---|---|---:|---:|---:|---|")
    for order, label, median, p99, rate, once in table:
        print(
            f"| {order} | {label} | {median:.1f} | {p99:.1f} | {rate:.0f} | "
            f"{'yes' if once else 'NO'} |"
        )


if __name__ == "__main__":
    main()
