"""The worker of the benchmarks' consumers: hpmail's worker, each ``claim()`` timed.

    huey_consumer bench.delivery_worker.huey …   (with BENCH_CLAIM_TIMES=<folder>)

The claim is the one statement every worker runs against the shared database; how long it takes
while other workers claim and record is what changes from SQLite to PostgreSQL. Timing it inside
the real consumer process, around the real function, measures it with everything else a worker
does going on. Each process appends ``seconds claimed`` lines to a file of its own, and says
when it has imported the app (under load, that takes from 2 to 40 s: not part of the measure).
"""

from __future__ import annotations

import os
import time
from pathlib import Path

from sqlalchemy import select

from hpmail.extensions import db
from hpmail.outbox import send
from hpmail.worker import app, huey

_claim = send.claim
_times = (Path(os.environ["BENCH_CLAIM_TIMES"]) / f"claims-{os.getpid()}.txt").open(
    "a", buffering=1
)


def timed_claim(*args, **kwargs):
    started = time.perf_counter()
    claimed = _claim(*args, **kwargs)
    _times.write(f"{time.perf_counter() - started:.6f} {len(claimed)}\n")
    return claimed


send.claim = timed_claim
# Connect now, as a worker that has been running a while is: the first claim would otherwise
# count the connection's start (a new server process on PostgreSQL) as claiming time.
with app.app_context():
    db.session.execute(select(1))
    db.session.remove()
# Imported and ready: the benchmark starts its clock once every worker has written this.
(Path(os.environ["BENCH_CLAIM_TIMES"]) / f"ready-{os.getpid()}").touch()

__all__ = ["app", "huey"]
