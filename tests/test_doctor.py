"""``flask --app app doctor`` on a real instance: all OK when it is healthy, and each broken part
named in French with the exit code monitoring reads (0 OK, 1 a warning, 2 a failure)."""

from __future__ import annotations

import os
import time
from datetime import timedelta

import pytest
from cryptography.fernet import Fernet
from flask_migrate import stamp
from sqlalchemy import text

from hpmail import create_app
from hpmail.core.time import utcnow
from hpmail.delivery import dkim_keys
from hpmail.outbox.models import DkimKey, DkimState, Mailing, OutboundEmail, WorkerProcess
from hpmail.outbox.secrets import encrypt_secret
from tests.fixtures import backend
from tests.fixtures.smtp import free_port

HEALTHY, WARNING, FAILURE = 0, 1, 2
SUBJECTS = (
    "Base de données",
    "File d'attente",
    "Workers",
    "Envoi SMTP",
    "Clés",
    "Signature DKIM",
    "Dossier instance",
    "Boîte d'envoi",
)


@pytest.fixture
def app_config(app_config):
    """A real instance: its secret key and Fernet key in files, the real queue (file or Redis)."""
    config = {**app_config, "QUEUE_URL": None, "HUEY_IMMEDIATE": False}
    del config["SECRET_KEY"]
    return config


@pytest.fixture(autouse=True)
def no_revision_left(app, db):
    """On PostgreSQL the database outlives the test: leave it unstamped, as the next expects."""
    yield
    if backend.ON_POSTGRES:
        db.session.rollback()
        with db.engine.begin() as connection:
            connection.execute(text("DROP TABLE IF EXISTS alembic_version"))


def doctor(app) -> tuple[int, dict[str, str]]:
    """Run the command; return its exit code and each check's line by subject."""
    result = app.test_cli_runner().invoke(args=["doctor"])
    assert result.exception is None or isinstance(result.exception, SystemExit), result.output
    lines = result.output.strip().splitlines()
    by_subject = {}
    for line in lines:
        subject = next(s for s in SUBJECTS if f" {s} : " in line)
        by_subject[subject] = line
    assert list(by_subject) == list(SUBJECTS), result.output
    return result.exit_code, by_subject


def alive_worker(db, seen_ago: timedelta = timedelta(seconds=3)) -> WorkerProcess:
    """The row a running worker's heartbeat keeps fresh."""
    worker = WorkerProcess(id="web1:4242:abcd", host="web1", pid=4242, seen_at=utcnow() - seen_ago)
    db.session.add(worker)
    db.session.commit()
    return worker


@pytest.fixture
def healthy(app, db, client, login_as, delivery_settings, smtp_server):
    """Migrated, a worker alive, the SMTP settings tested through the page, keys in place."""
    stamp()
    alive_worker(db)
    login_as("admin", email="agnes.martin@lycee-demo.fr")
    delivery_settings(smtp_server)
    response = client.post("/serveur/parametres-envoi/essai")
    assert response.status_code == 200
    assert len(smtp_server.received) == 1
    return app


def test_a_healthy_deployment_is_all_ok_and_exits_0(healthy):
    code, lines = doctor(healthy)
    assert code == HEALTHY, "\n".join(lines.values())
    for line in lines.values():
        assert line.startswith("OK "), line
    assert "schéma à jour" in lines["Base de données"]
    assert "1 worker(s) en vie : web1 (pid 4242)" in lines["Workers"]
    assert "essai d'envoi réussi le " in lines["Envoi SMTP"]
    assert "réservé à son propriétaire (700)" in lines["Dossier instance"]
    assert "aucune clé active : les e-mails partent sans signature DKIM" in lines["Signature DKIM"]


def test_a_database_never_migrated_or_behind_the_code_is_a_failure_saying_what_to_run(healthy, db):
    with db.engine.begin() as connection:
        connection.execute(text("DROP TABLE alembic_version"))
    code, lines = doctor(healthy)
    assert code == FAILURE
    assert lines["Base de données"].startswith("ÉCHEC ")
    assert "jamais migrée : lancez « flask --app app db upgrade »" in lines["Base de données"]

    stamp(revision="a0e1c0ffee15")
    code, lines = doctor(healthy)
    assert code == FAILURE
    assert "schéma à la révision a0e1c0ffee15, ce code attend " in lines["Base de données"]
    assert lines["Workers"].startswith("OK ")  # the other checks still ran


def test_no_worker_seen_for_a_minute_is_a_failure_saying_since_when(healthy, db):
    db.session.query(WorkerProcess).delete()
    db.session.commit()
    code, lines = doctor(healthy)
    assert code == FAILURE
    assert (
        "aucun worker en marche (aucun signe de vie enregistré) : démarrez hpmail-worker"
        in lines["Workers"]
    )

    alive_worker(db, seen_ago=timedelta(minutes=5))
    code, lines = doctor(healthy)
    assert code == FAILURE
    assert lines["Workers"].startswith("ÉCHEC ")
    assert "aucun worker vu depuis le " in lines["Workers"]
    assert "(il y a 5 min)" in lines["Workers"]


def test_a_key_file_readable_by_others_is_a_failure(healthy):
    key = f"{healthy.instance_path}/fernet.key"
    os.chmod(key, 0o644)
    code, lines = doctor(healthy)
    assert code == FAILURE
    assert lines["Dossier instance"].startswith("ÉCHEC ")
    assert f"fernet.key est en 644 (chmod 600 {key})" in lines["Dossier instance"]


def test_a_fernet_key_that_did_not_encrypt_the_stored_passwords_is_a_failure(
    healthy, db, make_transport
):
    # The password saved on a machine whose fernet.key differs from this one's.
    other = Fernet(Fernet.generate_key())
    make_transport(host="smtp.rectorat.example", secret_encrypted=other.encrypt(b"secret"))
    code, lines = doctor(healthy)
    assert code == FAILURE
    assert lines["Clés"].startswith("ÉCHEC ")
    assert "ne déchiffre pas 1 mot(s) de passe SMTP sur 1 (smtp.rectorat.example)" in lines["Clés"]


def active_key(domain: str, selector: str, algorithm: str, admin) -> DkimKey:
    """A key generated as the DKIM page does, then active (its record's look-up left out)."""
    key = dkim_keys.generate(domain, selector, algorithm, admin)
    key.state = DkimState.ACTIVE
    return key


def test_each_active_dkim_key_must_sign_and_verify_or_the_doctor_names_it(healthy, db, make_user):
    admin = make_user("admin")
    rsa = active_key("lycee-demo.fr", "hpmail2026", "rsa", admin)
    ed = active_key("lycee-demo.fr", "ed2026", "ed25519", admin)
    active_key("college-demo.fr", "hpmail2026", "rsa", admin).state = DkimState.NEW
    db.session.commit()
    code, lines = doctor(healthy)
    assert code == HEALTHY, lines["Signature DKIM"]
    assert (
        "2 clé(s) active(s) : chacune signe, et se vérifie avec sa clé publique"
        in (lines["Signature DKIM"])
    )

    # Its private key encrypted on a machine whose fernet.key differs from this one's.
    rsa.private_key_encrypted = Fernet(Fernet.generate_key()).encrypt(b"-----BEGIN")
    # Its record published for another key (the admin pasted an old one).
    ed.public_key = active_key("lycee-demo.fr", "autre", "ed25519", admin).public_key
    db.session.commit()
    code, lines = doctor(healthy)
    assert code == FAILURE
    line = lines["Signature DKIM"]
    assert line.startswith("ÉCHEC ")
    assert "2 clé(s) active(s) sur 3 ne signe(nt) pas" in line
    assert "hpmail2026 de lycee-demo.fr : la clé Fernet ne déchiffre pas sa clé privée" in line
    assert "ed2026 de lycee-demo.fr : sa signature ne se vérifie pas avec sa clé publique" in line
    assert "(Serveur › Paramètres d'envoi › Domaines autorisés)" in line
    assert lines["Clés"].startswith("OK ")  # the other checks still ran


def test_a_dkim_key_that_cannot_sign_is_a_failure_with_the_reason(healthy, db, make_user):
    key = active_key("lycee-demo.fr", "hpmail2026", "rsa", make_user("admin"))
    key.private_key_encrypted = encrypt_secret("not a private key")
    db.session.commit()
    code, lines = doctor(healthy)
    assert code == FAILURE
    assert "hpmail2026 de lycee-demo.fr : elle ne signe pas (" in lines["Signature DKIM"]


def test_smtp_settings_never_tested_are_a_warning_until_a_test_send_succeeds_again(
    app, db, client, login_as, delivery_settings, smtp_server
):
    stamp()
    alive_worker(db)
    settings = delivery_settings(smtp_server)
    code, lines = doctor(app)
    assert code == WARNING
    assert "jamais testé ni utilisé avec ces paramètres" in lines["Envoi SMTP"]
    assert "Tester l'envoi d'e-mails" in lines["Envoi SMTP"]

    login_as("admin", email="agnes.martin@lycee-demo.fr")
    client.post("/serveur/parametres-envoi/essai")
    code, lines = doctor(app)
    assert code == HEALTHY, lines["Envoi SMTP"]

    # The admin moves to another SMTP server: the test proved the old one only.
    form = {
        "delegate": "y",
        "sender_name": settings.sender_name,
        "sender_address": settings.sender_address,
        "allowed_domains": settings.allowed_domains,
        "host": "smtp.autre.example",
        "port": "587",
        "security": "starttls",
        "timeout_seconds": "20",
        "limit_preset": "custom",
        "require_personal_verification": "y",
    }
    response = client.post("/serveur/parametres-envoi", data=form)
    assert response.status_code == 302, response.text
    code, lines = doctor(app)
    assert code == WARNING
    assert "smtp.autre.example:587 : jamais testé" in lines["Envoi SMTP"]

    # Settings found by « Trouver les paramètres » are saved once a test e-mail went through them.
    found = {
        **form,
        "host": smtp_server.host,
        "port": str(smtp_server.port),
        "security": "none",
        "discovered_for": "direction@lycee-demo.fr",
    }
    response = client.post("/serveur/parametres-envoi", data=found)
    assert response.status_code == 302, response.text
    assert len(smtp_server.received) == 2
    code, lines = doctor(app)
    assert code == HEALTHY, lines["Envoi SMTP"]
    assert "essai d'envoi réussi le " in lines["Envoi SMTP"]


def test_an_email_the_server_accepted_this_week_proves_the_smtp_settings(
    app, db, delivery_settings, smtp_server
):
    stamp()
    alive_worker(db)
    settings = delivery_settings(smtp_server)
    mailing = Mailing(sender_address=settings.sender_address, transport=settings.transport)
    sent = utcnow() - timedelta(days=2)
    db.session.add(mailing)
    db.session.add(
        OutboundEmail(mailing=mailing, message_id="<a@lycee-demo.fr>", state="sent", sent_at=sent)
    )
    db.session.commit()
    code, lines = doctor(app)
    assert code == HEALTHY, lines["Envoi SMTP"]
    assert "dernier e-mail accepté le " in lines["Envoi SMTP"]

    db.session.query(OutboundEmail).update({"sent_at": utcnow() - timedelta(days=9)})
    db.session.commit()
    code, lines = doctor(app)
    assert code == WARNING
    assert "rien d'accepté depuis le " in lines["Envoi SMTP"]
    assert "(il y a 9 jours)" in lines["Envoi SMTP"]


def test_emails_retried_for_an_hour_or_failed_today_are_warnings(healthy, db):
    mailing = Mailing(sender_address="ne-pas-repondre@lycee-demo.fr")
    now = utcnow()
    db.session.add(mailing)
    db.session.add_all(
        [
            OutboundEmail(
                mailing=mailing,
                message_id="<late@lycee-demo.fr>",
                state="deferred",
                created_at=now - timedelta(hours=3),
                next_attempt_at=now + timedelta(minutes=10),
                last_error="421 4.7.0 Try again later",
            ),
            OutboundEmail(
                mailing=mailing,
                message_id="<refused@lycee-demo.fr>",
                state="failed",
                created_at=now - timedelta(hours=2),
                next_attempt_at=now - timedelta(hours=1),
                last_error="550 5.1.1 Unknown user",
            ),
            OutboundEmail(
                mailing=mailing,
                message_id="<old-failure@lycee-demo.fr>",
                state="failed",
                created_at=now - timedelta(days=5),
                next_attempt_at=now - timedelta(days=4),
            ),
        ]
    )
    db.session.commit()
    code, lines = doctor(healthy)
    assert code == WARNING
    outbox = lines["Boîte d'envoi"]
    assert outbox.startswith("ATTENTION ")
    assert (
        "1 e-mail(s) encore en attente d'un nouvel essai, le plus ancien écrit il y a 3 h" in outbox
    )
    assert "(dernière erreur : 421 4.7.0 Try again later)" in outbox
    assert "1 e-mail(s) en échec depuis 24 h" in outbox


def test_a_queue_that_does_not_answer_is_a_failure_named_with_its_address(app_config):
    port = free_port()  # nothing listens there
    app = create_app({**app_config, "QUEUE_URL": f"redis://:pw@127.0.0.1:{port}/0"})
    with app.app_context():
        code, lines = doctor(app)
    assert code == FAILURE
    assert lines["File d'attente"].startswith("ÉCHEC ")
    assert f"injoignable (Redis redis://***@127.0.0.1:{port}/0) : " in lines["File d'attente"]


def test_a_database_that_does_not_answer_fails_every_check_that_needs_it_and_still_answers(
    app_config,
):
    port = free_port()
    url = f"postgresql+psycopg://hpmail:secret@127.0.0.1:{port}/hpmail"
    app = create_app({**app_config, "SQLALCHEMY_DATABASE_URI": url})
    started = time.monotonic()
    with app.app_context():
        code, lines = doctor(app)
    assert time.monotonic() - started < 30
    assert code == FAILURE
    assert lines["Base de données"].startswith("ÉCHEC ")
    assert (
        f"injoignable (postgresql+psycopg://hpmail:***@127.0.0.1:{port}/hpmail) : "
        in (lines["Base de données"])
    )
    assert "secret" not in "\n".join(lines.values())
    for subject in ("Workers", "Envoi SMTP", "Clés", "Boîte d'envoi"):
        assert lines[subject].startswith("ÉCHEC     "), lines[subject]
        assert "non vérifié, erreur de la base de données : " in lines[subject]
