"""Compose and archive benchmark: composer, archive search and a 2,000-e-mail send, same run.

    .venv/bin/python bench/compose.py [--students 2000] [--mailings 50000] [--runs 15]

A temporary SQLite instance; server time through Flask's test client; delegated delivery to a file
queue that no worker reads (the request only queues). Prints one table with a baseline per line.
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

WORDS = """
bonjour réunion parents professeurs conseil classe trimestre emploi temps semaine salle cours
annulé reporté examen partiel rattrapage notes bulletin relevé sortie musée théâtre visite
entreprise stage convention signature dossier inscription bourse cantine transport absence retard
justificatif certificat médical orientation parcoursup vœux entretien projet tutoré soutenance
mémoire rapport rendu date limite devoir maison contrôle continu mathématiques physique chimie
histoire géographie anglais espagnol informatique réseau algorithmique économie gestion droit
philosophie sport gymnase piscine bibliothèque cdi secrétariat scolarité direction proviseur
adjoint vie scolaire infirmerie assistante sociale merci cordialement rappel important urgent
information calendrier vacances rentrée
""".split()  # noqa: SIM905
FIRST = "Jean Marie Lucas Emma Hugo Léa Louis Chloé Gabriel Manon Arthur Camille Jules".split()  # noqa: SIM905
LAST = "Martin Bernard Dubois Thomas Robert Richard Petit Durand Leroy Moreau Simon".split()  # noqa: SIM905


def sentence(rng: random.Random, n: int) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(n))


def median_ms(action, runs: int) -> float:
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        action()
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times)


def build(args, folder: Path):
    from hpmail import create_app

    app = create_app(
        {
            "INSTANCE_PATH": str(folder),
            "SECRET_KEY": "bench",
            "DEMO": False,
            "WTF_CSRF_ENABLED": False,
            "HUEY_IMMEDIATE": False,
            "QUEUE_URL": None,  # Huey's SQLite file queue; no worker reads it
        }
    )
    return app


def fill_directory(db, students: int):
    from sqlalchemy import insert

    from hpmail.core.text import fold
    from hpmail.directory.models import Cohort, Person

    cohort = Cohort(name="L1 Bench")
    db.session.add(cohort)
    db.session.flush()
    rng = random.Random(1)
    rows = []
    for n in range(students):
        first, last = rng.choice(FIRST), f"{rng.choice(LAST)}{n}"
        email = None if n % 50 == 0 else f"{fold(first)}.{last}@etu.exemple.fr".lower()
        rows.append(
            {
                "kind": "student",
                "last_name": last,
                "first_name": first,
                "email": email,
                "email_status": "valid" if email else "missing",
                "cohort_id": cohort.id,
                "search_text": f"{last} {first} {email or ''}".lower(),
                "last_name_key": last.lower(),
                "first_name_key": first.lower(),
            }
        )
    columns = set(Person.__table__.columns.keys())
    db.session.execute(insert(Person), [{k: v for k, v in r.items() if k in columns} for r in rows])
    db.session.commit()


def fill_archive(db, account, user, count: int) -> None:
    """Insert ``count`` sent mailings (one e-mail, 1-3 recipients each) with Core, in bulk."""
    from datetime import datetime, timedelta

    from sqlalchemy import insert

    from hpmail.outbox.models import EmailRecipient, Mailing, OutboundEmail

    rng = random.Random(2)
    start = datetime(2025, 9, 1)
    batch = 5000
    for offset in range(0, count, batch):
        size = min(batch, count - offset)
        mailings = []
        for n in range(offset, offset + size):
            body = sentence(rng, rng.randint(30, 60))
            mailings.append(
                {
                    "id": n + 1,
                    "author_id": user.id,
                    "account_id": account.id,
                    "kind": "email",
                    "subject": sentence(rng, rng.randint(3, 7)).capitalize(),
                    "text_body": body,
                    "html_body": f"<p>{body}</p>",
                    "sender_name": account.label,
                    "sender_address": account.address,
                    "hide_recipients": False,
                    "created_at": start + timedelta(minutes=n),
                }
            )
        db.session.execute(insert(Mailing), mailings)
        db.session.execute(
            insert(OutboundEmail),
            [
                {
                    "id": m["id"],
                    "mailing_id": m["id"],
                    "message_id": f"<bench.{m['id']}@lycee-demo.fr>",
                    "state": "sent" if m["id"] % 97 else "failed",
                    "attempts": 1,
                    "next_attempt_at": m["created_at"],
                    "created_at": m["created_at"],
                }
                for m in mailings
            ],
        )
        recipients = []
        for m in mailings:
            for _ in range(rng.randint(1, 3)):
                first, last = rng.choice(FIRST), rng.choice(LAST)
                recipients.append(
                    {
                        "email_id": m["id"],
                        "field": "to",
                        "name": f"{first} {last}",
                        "address": f"{first}.{last}{rng.randint(1, 999)}@exemple.fr".lower()
                        .replace("è", "e")
                        .replace("é", "e"),
                        "state": "accepted",
                    }
                )
        db.session.execute(insert(EmailRecipient), recipients)
        db.session.commit()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--students", type=int, default=2000)
    parser.add_argument("--mailings", type=int, default=50_000)
    parser.add_argument("--runs", type=int, default=15)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="hpmail-bench-") as tmp:
        app = build(args, Path(tmp))
        with app.app_context():
            run(app, args)


def run(app, args) -> None:
    from sqlalchemy import func, or_, select

    from hpmail.accounts.models import Account, MailSettings
    from hpmail.accounts.service import sender_for
    from hpmail.archive import search
    from hpmail.archive.models import ArchiveWord
    from hpmail.auth.service import create_user
    from hpmail.core.time import utcnow
    from hpmail.directory.models import Person
    from hpmail.directory.selection import create_selection
    from hpmail.extensions import db
    from hpmail.outbox.api import Address, EmailSpec, queue_mailing
    from hpmail.outbox.models import Mailing, Security, Transport
    from hpmail.outbox.settings import server_settings

    db.create_all()
    transport = Transport(host="127.0.0.1", port=2525, security=Security.NONE)
    db.session.add(transport)
    db.session.flush()
    settings = server_settings()
    settings.delegate, settings.transport_id = True, transport.id
    settings.sender_address, settings.allowed_domains = "hpmail@lycee-demo.fr", "lycee-demo.fr"
    user = create_user("bench", "Sophie Bench", "bench password 1", "staff")
    db.session.flush()
    account = Account(
        kind="personal",
        label="Sophie Bench",
        address="sophie@lycee-demo.fr",
        owner_id=user.id,
        verified_at=utcnow(),
    )
    db.session.add(account)
    db.session.flush()
    db.session.add(MailSettings(user_id=user.id, account_id=account.id))
    db.session.commit()
    fill_directory(db, args.students)
    people = db.session.scalars(select(Person.id)).all()
    token = create_selection(user, people).token
    db.session.commit()

    client = app.test_client()
    client.post("/connexion", data={"login": "bench", "password": "bench password 1"})
    rows = []

    home = median_ms(lambda: client.get("/"), args.runs)
    composer = median_ms(lambda: client.get(f"/e-mail/nouveau?selection={token}"), args.runs)
    rows.append(
        (f"open the composer, {len(people):,} students selected", composer, 300, "home page", home)
    )

    started = time.perf_counter()
    fill_archive(db, account, user, args.mailings)
    filled = time.perf_counter() - started
    started = time.perf_counter()
    search.refresh_index(limit=10**9)
    indexed = time.perf_counter() - started
    rng = random.Random(3)
    queries = [f"{rng.choice(WORDS)} {rng.choice(WORDS)[:4]}" for _ in range(args.runs)]
    queries += [rng.choice(WORDS)[:5] for _ in range(args.runs)]
    queries += [rng.choice(LAST).lower() for _ in range(args.runs)]
    htmx = {"HX-Request": "true"}
    it = iter(queries * 2)
    searched = median_ms(lambda: client.get(f"/e-mails?q={next(it)}", headers=htmx), len(queries))

    def like_search():
        # What a search without the index costs: every row's subject and body read (count).
        query = select(func.count(Mailing.id))
        for word in next(it).split():
            pattern = f"%{word}%"
            query = query.where(
                or_(Mailing.subject.ilike(pattern), Mailing.text_body.ilike(pattern))
            )
        db.session.scalar(query)

    liked = median_ms(like_search, len(queries))
    rows.append(
        (
            f"archive search, {args.mailings:,} e-mails (htmx fragment)",
            searched,
            200,
            "LIKE scan of subject and body, SQL only",
            liked,
        )
    )
    listing = median_ms(lambda: client.get("/e-mails", headers=htmx), args.runs)
    rows.append(("archive list, first page, no search", listing, None, "", None))

    form = {
        "selection": token,
        "kinds": "student",
        "one_per_recipient": "1",
        "subject": "Emploi du temps",
        "body": "<p>Bonjour, voici votre emploi du temps.</p>",
    }
    sends = []
    for _ in range(3):
        started = time.perf_counter()
        response = client.post("/e-mail/nouveau", data=form)
        sends.append((time.perf_counter() - started) * 1000)
        problems = [line for line in response.text.splitlines() if 'role="alert"' in line]
        assert response.status_code == 303, problems  # sent, then redirected
    reachable = sum(
        1 for _ in db.session.scalars(select(Person.id).where(Person.email_status == "valid"))
    )

    def direct_queue():
        queue_mailing(
            author_id=user.id,
            sender=sender_for(user, account.id),
            subject="Emploi du temps",
            text_body="Bonjour",
            emails=[EmailSpec(to=[Address(f"e{n}@exemple.fr")]) for n in range(reachable)],
        )
        db.session.commit()

    direct = median_ms(direct_queue, 3)
    rows.append(
        (
            f"send one e-mail per student ({reachable:,}), queue only",
            statistics.median(sends),
            1000,
            "queue_mailing alone",
            direct,
        )
    )

    words = db.session.scalar(select(func.count()).select_from(ArchiveWord))
    print(
        f"\nArchive of {args.mailings:,} e-mails filled in {filled:.1f} s, "
        f"indexed in {indexed:.1f} s ({words:,} words).\n"
    )
    print("| measure | median | target | baseline (same run) | baseline median |")
    print("|---|---:|---:|---|---:|")
    for name, value, target, base_name, base in rows:
        target_text = f"< {target} ms" if target else ""
        base_text = f"{base:.1f} ms" if base is not None else ""
        print(f"| {name} | {value:.1f} ms | {target_text} | {base_name} | {base_text} |")


if __name__ == "__main__":
    main()
