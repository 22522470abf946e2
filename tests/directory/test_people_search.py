"""The people's text filter on a big directory: PostgreSQL finds the rows in its trigram index."""

from __future__ import annotations

import random

from sqlalchemy import func, insert, select, text
from sqlalchemy.dialects import postgresql

from hpmail.core.text import fold
from hpmail.directory.demo import FIRST_NAMES, LAST_NAMES
from hpmail.directory.models import Person
from hpmail.directory.people import PeopleFilter, matching_ids, people_page
from hpmail.directory.text import search_text_for
from tests.fixtures import backend

PEOPLE = 20_000


def add_people(db, count: int) -> None:
    """Write ``count`` students with French names at once, three of them named Zoubiri."""
    rng = random.Random(12)
    rows = []
    for n in range(count):
        last = "Zoubiri" if n in (5, count // 2, count - 3) else rng.choice(LAST_NAMES)
        first = rng.choice(FIRST_NAMES)
        email = f"{fold(first)}.{fold(last)}.{n}@etu.lycee-demo.fr".replace(" ", "-")
        rows.append(
            {
                "kind": "student",
                "last_name": last,
                "first_name": first,
                "email": email,
                "email_status": "valid",
                "search_text": search_text_for(last, first, email),
                "last_name_key": fold(last),
                "first_name_key": fold(first),
            }
        )
    db.session.execute(insert(Person), rows)
    db.session.commit()


def plan_of(db, query) -> str:
    sql = query.compile(dialect=postgresql.dialect(), compile_kwargs={"literal_binds": True})
    return "\n".join(db.session.scalars(text(f"EXPLAIN {sql}")))


@backend.needs_postgres
def test_the_text_filter_on_20000_people_uses_the_trigram_index_on_postgresql(db):
    add_people(db, PEOPLE)
    # As autovacuum does after an import: the new rows wait in GIN's pending list until then
    # (scanned row by row, as fast as without the index), then are merged into the index.
    server = backend.server_engine(db.engine.url)
    with server.connect() as connection:
        connection.exec_driver_sql("VACUUM ANALYZE person")
    server.dispose()
    flt = PeopleFilter(kind="student", q="Zoubiri")
    ids = matching_ids(flt)
    counted = select(func.count()).select_from(ids.subquery())

    for query in (ids, counted):
        plan = plan_of(db, query)
        assert "ix_person_search_trgm" in plan, plan
        assert "Seq Scan" not in plan, plan
    page = people_page(flt, page_size=50)
    assert page.total == 3
    assert [p.last_name for p in page.people] == ["Zoubiri"] * 3


def test_the_text_filter_finds_the_same_people_whatever_the_database(db):
    """Every word must be found, accents and case aside, as on SQLite: the index changes nothing."""
    add_people(db, 2_000)
    db.session.add(Person(kind="student", last_name="Zoubiri-Lefèvre", first_name="Élodie"))
    db.session.commit()
    for words, expected in (
        ("zoubiri", 4),
        ("ZOUBIRI elodie", 1),
        ("lefevre élo", 1),
        ("zou", 4),
        ("%", 0),
        ("_oubiri", 0),
    ):
        page = people_page(PeopleFilter(kind="student", q=words), page_size=50)
        assert page.total == expected, words
