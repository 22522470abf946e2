"""Accounts benchmark: server time of the htmx fragments of the accounts pages.

    .venv/bin/python bench/accounts.py [--users 200] [--accounts 30] [--rounds 60]

200 users and 30 school accounts in a temporary SQLite file; each fragment is requested through
Flask's test client with htmx headers (so the figure is the server's time, no network). The home
page, measured in the same run, is the baseline. Target: each fragment under 100 ms median.
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

HTMX = {"HX-Request": "true", "Accept-Language": "fr"}
PASSWORD = "bench-password"


def build(app, users: int, accounts: int):
    """Fill the database: users (one password hash shared), verified school accounts, members."""
    from werkzeug.security import generate_password_hash

    from hpmail.accounts.models import Account, AccountKind
    from hpmail.accounts.verification import hash_answer
    from hpmail.auth.models import User
    from hpmail.core.time import utcnow
    from hpmail.extensions import db

    db.create_all()
    password_hash = generate_password_hash(PASSWORD)
    people = []
    for index in range(users):
        role = "admin" if index == 0 else ("staff" if index % 3 else "teacher")
        people.append(
            User(
                login=f"user{index:03d}",
                display_name=f"Utilisateur {index:03d}",
                email=f"user{index:03d}@lycee.example",
                role=role,
                password_hash=password_hash,
            )
        )
    db.session.add_all(people)
    db.session.flush()
    answer = hash_answer("Victor Hugo")
    rng = random.Random(4)
    school = []
    for index in range(accounts):
        account = Account(
            kind=AccountKind.SCHOOL,
            label=f"Compte {index:02d}",
            display_name=f"Compte {index:02d}",
            address=f"compte{index:02d}@lycee.example",
            verified_at=utcnow(),
            secret_question="Auteur ?",
            secret_answer_hash=answer,
        )
        account.members = rng.sample(people, 20)
        school.append(account)
    db.session.add_all(school)
    # Accounts awaiting their code, for the code-check fragment.
    pending = [
        Account(kind=AccountKind.SCHOOL, label=f"Attente {i}", address=f"attente{i}@lycee.example")
        for i in range(accounts)
    ]
    db.session.add_all(pending)
    db.session.commit()
    return people, school, pending


def timed(call, rounds: int, expected: int = 200) -> list[float]:
    times = []
    for index in range(rounds):
        started = time.perf_counter()
        response = call(index)
        times.append((time.perf_counter() - started) * 1000)
        assert response.status_code == expected, response.status_code
    return times


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--users", type=int, default=200)
    parser.add_argument("--accounts", type=int, default=30)
    parser.add_argument("--rounds", type=int, default=60)
    args = parser.parse_args()

    from hpmail import create_app
    from hpmail.accounts.verification import issue_code
    from hpmail.extensions import db
    from tests.conftest import CsrfClient

    with tempfile.TemporaryDirectory() as folder:
        app = create_app(
            {
                "INSTANCE_PATH": folder,
                "SECRET_KEY": "bench",
                "DEMO": False,
                "QUEUE_URL": "memory",
                "HUEY_IMMEDIATE": True,
                "VERIFICATION_RESEND_SECONDS": 0,
                "VERIFICATION_MAX_CODES_PER_HOUR": 10_000,
            }
        )
        app.test_client_class = CsrfClient
        import logging

        logging.getLogger("hpmail").setLevel(logging.WARNING)
        with app.app_context():
            people, school, pending = build(app, args.users, args.accounts)
            admin = people[0]
            member = school[0].members[0]
            account_ids = [a.id for a in school]
            pending_ids = [a.id for a in pending]
            for account in pending:
                issue_code(account)
            db.session.commit()
            user_ids = [u.id for u in people[1:]]
            member_login = member.login
            tooltip_accounts = [a.id for a in school if member in a.members]
            db.session.remove()

            admin_client = app.test_client()
            admin_client.post("/connexion", data={"login": admin.login, "password": PASSWORD})
            # Changes to a school account need its secret answer: unlocked once, as the admin does.
            for account_id in account_ids:
                admin_client.post(
                    f"/configuration/comptes-etablissement/{account_id}/deverrouiller",
                    data={"unlock-current_answer": "Victor Hugo"},
                )
            member_client = app.test_client()
            member_client.post("/connexion", data={"login": member_login, "password": PASSWORD})

            def home(_index):
                return admin_client.get("/", headers={"Accept-Language": "fr"})

            def code_check(index):
                account_id = pending_ids[index % len(pending_ids)]
                # Three wrong tries per code at most, then a fresh code: the check stays open.
                if index and index % (3 * len(pending_ids)) == 0:
                    for pid in pending_ids:
                        from hpmail.accounts.models import Account

                        issue_code(db.session.get(Account, pid))
                    db.session.commit()
                return admin_client.post(
                    f"/configuration/comptes-etablissement/{account_id}/code",
                    data={"code": "000000" if index % 2 else "999999"},
                    headers=HTMX,
                )

            def toggle(index):
                account_id = account_ids[index % len(account_ids)]
                user_id = user_ids[(index * 7) % len(user_ids)]
                return admin_client.post(
                    f"/configuration/comptes-etablissement/{account_id}/utilisateurs/{user_id}",
                    data={"authorised": "1"} if index % 2 == 0 else {},
                    headers=HTMX,
                )

            def checklist(index):
                account_id = account_ids[index % len(account_ids)]
                return admin_client.get(
                    f"/configuration/comptes-etablissement/{account_id}/utilisateurs?q=01",
                    headers=HTMX,
                )

            def tooltip(index):
                account_id = tooltip_accounts[index % len(tooltip_accounts)]
                return member_client.get(
                    f"/configuration/envoi/comptes/{account_id}/membres", headers=HTMX
                )

            for warm in (home, code_check, toggle, checklist, tooltip):
                warm(0)
            rows = [
                ("Baseline: home page (GET /)", timed(home, args.rounds)),
                ("Code check (POST, wrong code)", timed(code_check, args.rounds, expected=422)),
                ("Checklist toggle (POST)", timed(toggle, args.rounds)),
                ("Checklist search (GET ?q=)", timed(checklist, args.rounds)),
                ("Members tooltip (GET)", timed(tooltip, args.rounds)),
            ]
            db.session.remove()
            db.engine.dispose()

    base = statistics.median(rows[0][1])
    print(
        f"\n{args.users} users, {args.accounts} school accounts (+{args.accounts} awaiting "
        f"their code), {args.rounds} requests each, SQLite file, Flask test client\n"
    )
    print(f"| {'fragment':<32} | median ms | p90 ms | × baseline | < 100 ms |")
    print(f"|{'-' * 34}|-----------|--------|------------|----------|")
    for name, times in rows:
        median = statistics.median(times)
        p90 = statistics.quantiles(times, n=10)[-1]
        ok = "yes" if median < 100 else "NO"
        print(f"| {name:<32} | {median:9.1f} | {p90:6.1f} | {median / base:10.2f} | {ok:>8} |")


if __name__ == "__main__":
    main()
