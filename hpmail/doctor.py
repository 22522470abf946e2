"""``flask --app app doctor``: is this deployment able to send the school's e-mail right now?

Each check looks at one thing that has broken a real installation — the database (reachable, its
schema at the code's revision), the queue, a living worker, the SMTP settings, the keys, the rights
on the instance folder, the outbox — and says in one French line what it found and what to do.
The command's exit code is the worst level (0 all OK, 1 a warning, 2 a failure), so that
monitoring can run it and alert on anything but 0. A check that raises is a failure, named with
the error, and the others still run: one broken part must not hide the state of the rest.

It reads the same configuration as the web and the worker, so it must run as the service's user
with the service's environment (docs/DEPLOYMENT.md shows how).
"""

from __future__ import annotations

import os
import pwd
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from cryptography.fernet import InvalidToken
from flask import current_app
from sqlalchemy import func, select, text
from sqlalchemy.exc import SQLAlchemyError

from hpmail.core.text import one_line
from hpmail.core.time import utcnow
from hpmail.delivery.dkim_keys import record_text
from hpmail.extensions import db
from hpmail.outbox.dkim import SigningKey, signature, signed_headers
from hpmail.outbox.models import (
    DkimKey,
    DkimState,
    EmailState,
    Mailing,
    OutboundEmail,
    ServerSettings,
    Transport,
    WorkerProcess,
)
from hpmail.outbox.secrets import decrypt_secret, instance_fernet
from hpmail.queue import huey

OK, WARNING, FAILURE = 0, 1, 2
LEVEL_LABELS = {OK: "OK", WARNING: "ATTENTION", FAILURE: "ÉCHEC"}

# A worker writes its heartbeat every few seconds: one not seen for a minute is not working.
WORKER_SEEN_WITHIN = timedelta(minutes=1)
# The SMTP settings are proven by a test-send or an e-mail the server accepted this long ago.
SMTP_PROVEN_WITHIN = timedelta(days=7)
# The outbox: e-mails still retried this long after they were written, queued e-mails nobody took.
DEFERRED_LONG = timedelta(hours=1)
QUEUED_LONG = timedelta(minutes=15)
FAILED_WITHIN = timedelta(hours=24)

# Files of the instance folder that hold secrets or the data: owner only (0600).
PRIVATE_FILES = (
    "secret_key",
    "fernet.key",
    "config.py",
    "hpmail.sqlite3",
    "hpmail.sqlite3-wal",
    "hpmail.sqlite3-shm",
    "queue.sqlite3",
    "queue.sqlite3-wal",
    "queue.sqlite3-shm",
)


@dataclass(frozen=True)
class Finding:
    """What one check found: its subject, a level, and the French sentence an admin reads."""

    subject: str
    level: int
    message: str

    def line(self) -> str:
        return f"{LEVEL_LABELS[self.level]:<9} {self.subject} : {self.message}"


def run_checks() -> list[Finding]:
    """Run every check, each on its own: one that raises is a failure, the others still run."""
    findings = []
    for subject, check in CHECKS:
        try:
            level, message = check()
        except SQLAlchemyError as error:
            db.session.rollback()
            level, message = (
                FAILURE,
                f"non vérifié, erreur de la base de données : {unwrapped(error)}",
            )
        except Exception as error:  # noqa: BLE001 - any error is the check's answer
            db.session.rollback()
            level, message = FAILURE, f"la vérification a échoué : {one_line(str(error))[:300]}"
        findings.append(Finding(subject, level, message))
    return findings


def worst(findings: list[Finding]) -> int:
    """Return the exit code: the worst level found (0, 1 or 2)."""
    return max((finding.level for finding in findings), default=OK)


# --- the checks ---------------------------------------------------------------------------------


def check_database() -> tuple[int, str]:
    """Reachable, and migrated to the revision this code expects (``alembic current == head``)."""
    where = db.engine.url.render_as_string(hide_password=True)
    try:
        with db.engine.connect() as connection:
            connection.execute(text("SELECT 1"))
            current = set(MigrationContext.configure(connection).get_current_heads())
    except SQLAlchemyError as error:
        return FAILURE, f"injoignable ({where}) : {unwrapped(error)}"
    expected = set(ScriptDirectory(current_app.extensions["migrate"].directory).get_heads())
    upgrade = "lancez « flask --app app db upgrade »"
    if current == expected:
        return OK, f"joignable ({where}), schéma à jour (révision {', '.join(sorted(current))})"
    if not current:
        return FAILURE, f"joignable ({where}) mais jamais migrée : {upgrade}"
    return FAILURE, (
        f"schéma à la révision {', '.join(sorted(current))}, ce code attend "
        f"{', '.join(sorted(expected))} : {upgrade}"
    )


def check_queue() -> tuple[int, str]:
    """The Huey storage answers: Redis pinged, or the SQLite queue file opened and read."""
    url = current_app.config.get("QUEUE_URL") or ""
    if url == "memory":
        return WARNING, "file en mémoire (réservée aux tests) : aucun worker ne la lit"
    if url.startswith("redis"):
        where = "Redis " + re.sub(r"//[^@/]*@", "//***@", url)
    else:
        where = f"fichier {current_app.config['QUEUE_FILE']}"
    try:
        if url.startswith("redis"):
            import redis

            # Huey's own client waits for ever on a silent server; this one gives up.
            client = redis.Redis.from_url(url, socket_connect_timeout=5, socket_timeout=5)
            try:
                client.ping()
            finally:
                client.close()
        waiting = huey.storage.queue_size()
    except Exception as error:  # noqa: BLE001 - redis or sqlite3, each with its own errors
        return FAILURE, f"injoignable ({where}) : {one_line(str(error))[:300]}"
    return OK, f"joignable ({where}), {waiting} tâche(s) en attente"


def check_workers() -> tuple[int, str]:
    """A worker wrote its heartbeat within the last minute."""
    now = utcnow()
    workers = db.session.scalars(select(WorkerProcess).order_by(WorkerProcess.seen_at.desc())).all()
    alive = [worker for worker in workers if now - worker.seen_at <= WORKER_SEEN_WITHIN]
    start = "démarrez hpmail-worker (systemctl status hpmail-worker, journalctl -u hpmail-worker)"
    if alive:
        names = ", ".join(f"{worker.host} (pid {worker.pid})" for worker in alive[:5])
        more = f" et {len(alive) - 5} autre(s)" if len(alive) > 5 else ""
        return OK, f"{len(alive)} worker(s) en vie : {names}{more}"
    if workers:
        last = workers[0].seen_at
        return (
            FAILURE,
            f"aucun worker vu depuis le {moment(last)} (il y a {ago(now - last)}) : {start}",
        )
    # A worker stopped gracefully takes its row away: none left means none running.
    return FAILURE, f"aucun worker en marche (aucun signe de vie enregistré) : {start}"


def check_smtp() -> tuple[int, str]:
    """The server's SMTP settings passed a test-send, or the server accepted an e-mail, lately.

    Either proves the settings: the test-send records its success on the settings
    (``ServerSettings.smtp_tested_at``, cleared when they change), and every e-mail the server
    accepts is recorded in the outbox.
    """
    where = "Serveur › Paramètres d'envoi des e-mails"
    settings = db.session.get(ServerSettings, 1)
    transport = settings.transport if settings is not None else None
    if transport is None or not transport.host or not settings.sender_address:
        return FAILURE, f"paramètres d'envoi non renseignés : {where}"
    server = f"{transport.host}:{transport.port}"
    last_sent = db.session.scalar(
        select(func.max(OutboundEmail.sent_at))
        .join(Mailing, Mailing.id == OutboundEmail.mailing_id)
        .where(Mailing.transport_id == transport.id, OutboundEmail.state == EmailState.SENT)
    )
    proofs = [
        (when, what)
        for when, what in (
            (settings.smtp_tested_at, "essai d'envoi réussi"),
            (last_sent, "dernier e-mail accepté"),
        )
        if when is not None
    ]
    test = f"{where} › Tester l'envoi d'e-mails"
    if not proofs:
        return WARNING, f"{server} : jamais testé ni utilisé avec ces paramètres : {test}"
    when, what = max(proofs)
    age = utcnow() - when
    if age <= SMTP_PROVEN_WITHIN:
        return OK, f"{server} : {what} le {moment(when)} (il y a {ago(age)})"
    return (
        WARNING,
        f"{server} : rien d'accepté depuis le {moment(when)} (il y a {ago(age)}) : {test}",
    )


def check_keys() -> tuple[int, str]:
    """The secret key is there, and the Fernet key decrypts every SMTP password stored.

    A Fernet key other than the one that encrypted the passwords (a machine given a new
    ``fernet.key``) is found here, not at the first e-mail that cannot sign in.
    """
    secret = str(current_app.config.get("SECRET_KEY") or "")
    if len(secret) < 16:
        return FAILURE, "clé secrète (SECRET_KEY, fichier secret_key) absente ou trop courte"
    try:
        fernet = instance_fernet()
    except ValueError:
        return (
            FAILURE,
            "clé Fernet (fichier fernet.key, FERNET_KEY) illisible : ce n'est pas une clé",
        )
    stored = db.session.scalars(
        select(Transport).where(Transport.secret_encrypted.is_not(None)).order_by(Transport.id)
    ).all()
    unreadable = []
    for transport in stored:
        try:
            fernet.decrypt(bytes(transport.secret_encrypted))
        except InvalidToken:
            unreadable.append(transport.host or f"n° {transport.id}")
    if unreadable:
        return FAILURE, (
            f"la clé Fernet ne déchiffre pas {len(unreadable)} mot(s) de passe SMTP sur "
            f"{len(stored)} ({', '.join(unreadable[:5])}) : ce n'est pas la clé qui les a chiffrés "
            "— remettez le fernet.key d'origine (le même sur chaque machine), ou saisissez à "
            "nouveau ces mots de passe"
        )
    return (
        OK,
        f"clé secrète présente, clé Fernet valide "
        f"({len(stored)} mot(s) de passe SMTP déchiffré(s))",
    )


def check_dkim() -> tuple[int, str]:
    """Each active DKIM key signs, and its signature verifies with its own published record.

    The worker sends an e-mail unsigned rather than not at all when a key fails, and only logs
    it: here monitoring sees it.
    """
    keys = db.session.scalars(
        select(DkimKey)
        .where(DkimKey.state == DkimState.ACTIVE)
        .order_by(DkimKey.domain, DkimKey.selector)
    ).all()
    if not keys:
        return OK, "aucune clé active : les e-mails partent sans signature DKIM"
    broken = [
        f"{key.selector} de {key.domain} : {problem}"
        for key in keys
        if (problem := signing_problem(key, record_text(key))) is not None
    ]
    if broken:
        return FAILURE, (
            f"{len(broken)} clé(s) active(s) sur {len(keys)} ne signe(nt) pas, les e-mails de "
            f"leur domaine partent sans cette signature ({'; '.join(broken[:5])}) : générez une "
            "nouvelle clé, publiez-la et activez-la "
            "(Serveur › Paramètres d'envoi › Domaines autorisés)"
        )
    return OK, f"{len(keys)} clé(s) active(s) : chacune signe, et se vérifie avec sa clé publique"


# What ``signing_problem`` signs: an e-mail as the MIME builder writes one, to nobody.
SAMPLE = (
    b"From: hpmail <doctor@hpmail.invalid>\r\n"
    b"To: <nobody@hpmail.invalid>\r\n"
    b"Subject: DKIM\r\n"
    b"Date: Thu, 03 Dec 2026 00:00:00 +0000\r\n"
    b"Message-ID: <dkim-check@hpmail.invalid>\r\n"
    b"\r\n"
    b"hpmail doctor\r\n"
)


def signing_problem(key: DkimKey, record: str) -> str | None:
    """Return why ``key`` would not sign the worker's e-mails, in French, or None if it would.

    Its private key is decrypted, a sample e-mail signed as every e-mail is (``signature``) and
    the signature verified against ``record`` (the TXT record published for the key), as a
    recipient's server does.
    """
    import dkim

    try:
        private = decrypt_secret(bytes(key.private_key_encrypted)).encode("ascii")
    except (InvalidToken, ValueError):
        return "la clé Fernet ne déchiffre pas sa clé privée"
    signing = SigningKey(key.domain, key.selector, key.algorithm, private)
    try:
        signed = signature(SAMPLE, signing, signed_headers(SAMPLE)) + SAMPLE
    except Exception as error:  # noqa: BLE001 - dkimpy raises many kinds: each is the answer
        return f"elle ne signe pas ({one_line(str(error))[:200] or type(error).__name__})"
    name = f"{key.selector}._domainkey.{key.domain}"

    def published(qname: bytes, timeout: float = 5) -> bytes | None:
        return record.encode("ascii") if qname.decode().rstrip(".") == name else None

    if not dkim.verify(signed, dnsfunc=published):
        return "sa signature ne se vérifie pas avec sa clé publique"
    return None


def check_permissions() -> tuple[int, str]:
    """The instance folder is its owner's only (0700), its secrets and databases too (0600)."""
    instance = Path(current_app.instance_path)
    failures, warnings = [], []
    mode = instance.stat().st_mode & 0o777
    if mode & 0o077:
        failures.append(f"le dossier est en {mode:o} (chmod 700 {instance})")
    for name in PRIVATE_FILES:
        path = instance / name
        if path.exists() and (mode := path.stat().st_mode & 0o777) & 0o077:
            failures.append(f"{name} est en {mode:o} (chmod 600 {path})")
    owner = instance.stat().st_uid
    if owner != os.geteuid():
        warnings.append(
            f"le dossier appartient à {user_name(owner)}, la commande tourne en "
            f"{user_name(os.geteuid())} : lancez-la en tant qu'utilisateur du service"
        )
    attachments = Path(current_app.config["ATTACHMENT_DIR"])
    if attachments.exists() and not os.access(attachments, os.W_OK | os.X_OK):
        failures.append(f"les pièces jointes ({attachments}) ne sont pas modifiables")
    elif (
        attachments.exists()
        and instance.resolve() not in attachments.resolve().parents
        and (mode := attachments.stat().st_mode & 0o777) & 0o007
    ):
        warnings.append(f"les pièces jointes ({attachments}) sont en {mode:o} (chmod 700)")
    if failures:
        return FAILURE, f"{instance} : " + " ; ".join(failures + warnings)
    if warnings:
        return WARNING, f"{instance} : " + " ; ".join(warnings)
    return OK, f"{instance} réservé à son propriétaire (700), fichiers en 600"


def check_outbox() -> tuple[int, str]:
    """No e-mail retried for long, none queued that nobody took, none failed in the last day."""
    now = utcnow()

    def count(*conditions) -> int:
        return db.session.scalar(select(func.count(OutboundEmail.id)).where(*conditions)) or 0

    deferred = (
        OutboundEmail.state == EmailState.DEFERRED,
        OutboundEmail.created_at <= now - DEFERRED_LONG,
    )
    deferred_long = count(*deferred)
    queued_long = count(
        OutboundEmail.state == EmailState.QUEUED, OutboundEmail.created_at <= now - QUEUED_LONG
    )
    failed = count(
        OutboundEmail.state == EmailState.FAILED,
        OutboundEmail.next_attempt_at >= now - FAILED_WITHIN,
    )
    problems = []
    if deferred_long:
        oldest = db.session.scalar(select(func.min(OutboundEmail.created_at)).where(*deferred))
        error = db.session.scalar(
            select(OutboundEmail.last_error)
            .where(*deferred, OutboundEmail.last_error.is_not(None))
            .order_by(OutboundEmail.id.desc())
            .limit(1)
        )
        problems.append(
            f"{deferred_long} e-mail(s) encore en attente d'un nouvel essai, le plus ancien "
            f"écrit il y a {ago(now - oldest)}"
            + (f" (dernière erreur : {one_line(error)[:200]})" if error else "")
        )
    if queued_long:
        problems.append(
            f"{queued_long} e-mail(s) en file depuis plus de {ago(QUEUED_LONG)} : aucun worker "
            "ne les prend"
        )
    if failed:
        problems.append(f"{failed} e-mail(s) en échec depuis 24 h (Serveur › Boîte d'envoi)")
    if problems:
        return WARNING, " ; ".join(problems)
    waiting = count(
        OutboundEmail.state.in_((EmailState.QUEUED, EmailState.SENDING, EmailState.DEFERRED))
    )
    return OK, f"{waiting} e-mail(s) en cours d'envoi, aucun en retard ni en échec depuis 24 h"


CHECKS: tuple[tuple[str, Callable[[], tuple[int, str]]], ...] = (
    ("Base de données", check_database),
    ("File d'attente", check_queue),
    ("Workers", check_workers),
    ("Envoi SMTP", check_smtp),
    ("Clés", check_keys),
    ("Signature DKIM", check_dkim),
    ("Dossier instance", check_permissions),
    ("Boîte d'envoi", check_outbox),
)


# --- words --------------------------------------------------------------------------------------


def moment(when: datetime) -> str:
    """A stored (naive UTC) time as the admin reads it in a log: ``2026-12-02 07:40 UTC``."""
    return f"{when:%Y-%m-%d %H:%M} UTC"


def ago(delta: timedelta) -> str:
    """A duration in the largest unit that keeps it readable: 40 s, 12 min, 5 h, 3 jours."""
    seconds = max(0, int(delta.total_seconds()))
    if seconds < 120:
        return f"{seconds} s"
    if seconds < 2 * 3600:
        return f"{seconds // 60} min"
    if seconds < 2 * 86400:
        return f"{seconds // 3600} h"
    return f"{seconds // 86400} jours"


def unwrapped(error: SQLAlchemyError) -> str:
    """The driver's words, without SQLAlchemy's wrapping and link to its documentation."""
    original = getattr(error, "orig", None) or error
    return one_line(str(original))[:300]


def user_name(uid: int) -> str:
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return str(uid)
