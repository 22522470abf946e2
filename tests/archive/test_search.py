"""The archive's word index answers a search from an index on PostgreSQL too (a prefix: a range)."""

from __future__ import annotations

import random

from sqlalchemy import insert, text
from sqlalchemy.dialects import postgresql

from hpmail.archive.models import ArchiveWord
from hpmail.archive.search import matching_ids
from hpmail.outbox.models import Mailing
from tests.fixtures import backend


@backend.needs_postgres
def test_a_search_of_a_word_and_a_prefix_reads_the_word_index_on_postgresql(db):
    db.session.execute(
        insert(Mailing),
        [{"subject": "Sujet", "sender_address": "a@lycee-demo.fr"} for _ in range(20_000)],
    )
    rng = random.Random(3)
    words = [f"mot{n}" for n in range(3_000)]
    rows = [
        {"word": word, "mailing_id": mailing}
        for mailing in range(1, 20_001)
        for word in set(rng.sample(words, 10))
    ]
    db.session.execute(insert(ArchiveWord), rows)
    db.session.commit()
    db.session.execute(text("ANALYZE archive_word"))

    query = matching_ids("mot12 mot13")  # « mot12 » exactly, then words starting with « mot13 »
    sql = query.compile(dialect=postgresql.dialect(), compile_kwargs={"literal_binds": True})
    plan = "\n".join(db.session.scalars(text(f"EXPLAIN {sql}")))

    assert plan.count("Index Cond") == 2, plan
    assert "pk_archive_word" in plan and "Seq Scan" not in plan, plan
    assert "'mot13{'" in plan, plan  # the prefix is one range of the primary key
