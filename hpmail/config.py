"""Configuration: defaults here < ``instance/config.py`` < ``HPMAIL_*`` environment variables.

Secrets are never written in code: the Flask secret key and the Fernet key that encrypts SMTP
passwords are generated into ``instance/`` on first start and read from there afterwards.
"""

from __future__ import annotations

import json
import logging
import os
import secrets
from pathlib import Path

from cryptography.fernet import Fernet
from sqlalchemy.engine import make_url

PROJECT_ROOT = Path(__file__).resolve().parent.parent

log = logging.getLogger(__name__)


class Defaults:
    """Values used when neither ``instance/config.py`` nor the environment says otherwise."""

    # Demo mode loads the demo school and starts the local test mailbox (HPMAIL_DEMO=0: off).
    DEMO = True
    # Web
    # How passwords and secret answers are hashed (werkzeug: "scrypt", "pbkdf2:sha256:600000").
    PASSWORD_HASH_METHOD = "scrypt"  # noqa: S105 - a method name, not a password
    SESSION_COOKIE_HTTPONLY = True
    SESSION_COOKIE_SAMESITE = "Lax"
    SESSION_COOKIE_SECURE = False  # HPMAIL_SESSION_COOKIE_SECURE=1 behind HTTPS
    REMEMBER_COOKIE_HTTPONLY = True
    REMEMBER_COOKIE_SAMESITE = "Lax"
    PERMANENT_SESSION_LIFETIME = 8 * 3600
    # Behind a reverse proxy (nginx, Apache): how many proxies set X-Forwarded-For/-Proto. The
    # sign-in throttle counts failures per client address, which must then come from the proxy.
    PROXY_COUNT = 0
    MAX_CONTENT_LENGTH = 25 * 1024 * 1024
    WTF_CSRF_TIME_LIMIT = None  # the token lives as long as the session
    BABEL_DEFAULT_LOCALE = "fr"
    BABEL_DEFAULT_TIMEZONE = "Europe/Paris"
    LANGUAGES = ("fr", "en")
    # Database: SQLite file in instance/ unless DATABASE_URL is set.
    SQLALCHEMY_DATABASE_URI = None
    SQLITE_BUSY_TIMEOUT_MS = 15_000
    # Queue: Huey on a SQLite file in instance/, or Redis when QUEUE_URL is redis://…
    QUEUE_URL = None
    HUEY_IMMEDIATE = False
    # Sign-in throttling: failures counted in the database over a sliding window. A (login,
    # address) pair gets a few free failures, then waits a delay that doubles with each failure;
    # nobody else is held back. An address failing on many logins is slowed down the same way,
    # except for the logins that signed in from it lately (colleagues behind a school's NAT).
    SIGNIN_WINDOW_SECONDS = 15 * 60
    SIGNIN_FREE_FAILURES = 5
    SIGNIN_MAX_FAILURES_PER_ADDRESS = 20
    SIGNIN_FIRST_DELAY_SECONDS = 5
    SIGNIN_MAX_DELAY_SECONDS = 15 * 60
    SIGNIN_KNOWN_ADDRESS_DAYS = 30
    # Directory
    LIST_PAGE_SIZE = 50
    IMPORT_MAX_BYTES = 20 * 1024 * 1024
    # Delivery
    MESSAGE_ID_DOMAIN = None  # defaults to the server sender address's domain
    DELIVERY_BATCH_SIZE = 200
    DELIVERY_LEASE_SECONDS = 300
    DELIVERY_GIVE_UP_AFTER_SECONDS = 3 * 24 * 3600
    DELIVERY_FIRST_RETRY_SECONDS = 60
    DELIVERY_MAX_RETRY_SECONDS = 3600
    OUTBOX_COMMIT_ATTEMPTS = 3  # tries to commit a new mailing while the database is locked
    DELIVERY_QUEUED_GRACE_SECONDS = 60  # a queued row older than this lost its task: sweep it
    # Commit answers every N e-mails: 1 means a crash can resend only the e-mail in flight;
    # 20 is about 1.5x faster on loopback, but a crash may resend up to 20 (same Message-ID).
    DELIVERY_RECORD_EVERY = 1
    SWEEP_INTERVAL_MINUTES = 1
    # A transport whose server fails (cannot connect, timeout, TLS, 421) is probed by one worker
    # at most every TRANSPORT_PROBE_SECONDS; when a probe succeeds its waiting e-mails go at once.
    TRANSPORT_PROBE_SECONDS = 60
    # Tests only: a file holding seconds added to the delivery clock of every process reading it.
    CLOCK_OFFSET_FILE = None
    # Worker heartbeats: each worker process writes its row (worker_process) every
    # HEARTBEAT_SECONDS from a thread of its own, even while an SMTP server makes it wait. A worker
    # silent for WORKER_DEAD_AFTER_SECONDS (None: 3 heartbeats, 15 s; never under 2) is dead: the
    # e-mails it was sending are given to another worker at once, not when their lease ends. Its
    # row is deleted after WORKER_FORGET_AFTER_SECONDS.
    HEARTBEAT_SECONDS = 5
    WORKER_DEAD_AFTER_SECONDS = None
    WORKER_FORGET_AFTER_SECONDS = 24 * 3600
    # OAuth2 for SMTP (Microsoft 365, Google): the providers' endpoints are a table in
    # hpmail/outbox/oauth.py; OAUTH_PROVIDERS overrides a provider's fields, e.g.
    # {"microsoft": {"token_url": "https://…"}}. Every call to a provider has this timeout; an
    # access token is refreshed this long before it expires; a started sign-in lasts this long.
    OAUTH_PROVIDERS: dict = {}
    OAUTH_HTTP_TIMEOUT_SECONDS = 15
    OAUTH_REFRESH_MARGIN_SECONDS = 300
    OAUTH_CONSENT_MINUTES = 15
    # "Trouver les paramètres": the SMTP settings of an address's domain, found in the providers'
    # table, the domain's autoconfiguration file, its SRV, MX and SPF records. Every look-up ends
    # within DISCOVERY_TIMEOUT_SECONDS in all. Each URL of DISCOVERY_AUTOCONFIG_URLS is a
    # Thunderbird autoconfiguration file, {domain} replaced.
    DISCOVERY_TIMEOUT_SECONDS = 8
    # The DNS servers the admin pages ask (discovery, the checks of the allowed domains): IP
    # addresses, and their port; empty: the system's resolver.
    DNS_SERVERS: tuple[str, ...] = ()
    DNS_PORT = 53
    # The checks of an allowed domain (SPF, DKIM, DMARC, MX) share this deadline, on its page and
    # in "Tester l'envoi d'e-mails": a DNS server that does not answer makes them "unknown".
    DOMAIN_CHECK_TIMEOUT_SECONDS = 5
    DISCOVERY_AUTOCONFIG_URLS = (
        "https://autoconfig.{domain}/mail/config-v1.1.xml",
        "https://{domain}/.well-known/autoconfig/mail/config-v1.1.xml",
        "https://autoconfig.thunderbird.net/v1.1/{domain}",
    )
    DISCOVERY_AUTOCONFIG_MAX_BYTES = 64 * 1024
    DEMO_MAILBOX_HOST = "127.0.0.1"
    DEMO_MAILBOX_PORT = 8025
    # Compose
    ATTACHMENT_MAX_FILE_BYTES = 10 * 1024 * 1024
    UNUSED_FILES_KEPT_HOURS = 24  # a stored file no row uses is removed after this
    ATTACHMENT_MAX_EMAIL_BYTES = 20 * 1024 * 1024
    MAX_RECIPIENTS_PER_MESSAGE = 500
    SIGNATURE_MAX_BYTES = 512 * 1024
    ARCHIVE_PAGE_SIZE = 50
    # Print jobs (documents): a worker holds a job this long after its last chunk of documents;
    # it commits every DOCUMENT_JOB_CHUNK documents; a waiting job untouched for the grace is
    # handed to a worker again; jobs are kept DOCUMENT_JOB_KEEP_DAYS days.
    DOCUMENT_JOB_LEASE_SECONDS = 120
    DOCUMENT_JOB_CHUNK = 50
    DOCUMENT_JOB_GRACE_SECONDS = 60
    DOCUMENT_JOB_KEEP_DAYS = 90
    DOCUMENT_RENDER_PROCESSES = 2
    # Accounts: verification codes and secret answers
    VERIFICATION_CODE_TTL_SECONDS = 15 * 60
    VERIFICATION_MAX_TRIES = 5
    VERIFICATION_RESEND_SECONDS = 60
    VERIFICATION_MAX_CODES_PER_HOUR = 10
    SECRET_ANSWER_MAX_FAILURES = 5
    SECRET_ANSWER_LOCK_SECONDS = 15 * 60


def from_environment(prefix: str = "HPMAIL_") -> dict:
    """Return the ``HPMAIL_*`` variables as config keys, JSON-decoded when they parse as JSON."""
    values = {}
    for name, raw in os.environ.items():
        if not name.startswith(prefix):
            continue
        try:
            values[name[len(prefix) :]] = json.loads(raw)
        except ValueError:
            values[name[len(prefix) :]] = raw
    if os.environ.get("DATABASE_URL"):
        values["SQLALCHEMY_DATABASE_URI"] = os.environ["DATABASE_URL"]
    return values


def instance_path() -> Path:
    """Return the folder of runtime data (``HPMAIL_INSTANCE_PATH`` or ``./instance``)."""
    return Path(os.environ.get("HPMAIL_INSTANCE_PATH") or PROJECT_ROOT / "instance").resolve()


def private_folder(path: Path) -> None:
    """Create the folder ``path`` open to its owner only (0700), or tighten it if it exists."""
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    _tighten(path, 0o700)


def private_file(path: Path) -> None:
    """Create the empty file ``path`` readable by its owner only (0600), or tighten it.

    SQLite creates a database with the process's umask (usually world-readable) and gives its
    WAL and journal files the database file's mode: creating the file first decides them all.
    """
    try:
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    except FileExistsError:
        _tighten(path, 0o600)
    except OSError as error:  # the folder is missing or not ours: the database will say so
        log.warning("cannot create %s: %s", path, error)


def _tighten(path: Path, mode: int) -> None:
    """Take away the group's and others' rights (left by an older version) when we may."""
    try:
        if path.stat().st_mode & 0o077:
            path.chmod(mode)
    except OSError as error:
        log.warning("cannot restrict the rights on %s to %o: %s", path, mode, error)


def sqlite_file(uri: str, instance: Path) -> Path | None:
    """Return the file of a SQLite database URI, or None (another database, or in memory).

    A relative path is relative to the instance folder, as Flask-SQLAlchemy reads it.
    """
    url = make_url(uri)
    if url.get_backend_name() != "sqlite" or url.database in (None, "", ":memory:"):
        return None
    if url.database.startswith("file:"):
        return None
    return instance / url.database


def read_or_create_secret(path: Path, make) -> bytes:
    """Return the secret stored at ``path``, creating it (mode 0600) on first use."""
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as out:
            out.write(make())
    return path.read_bytes().strip()


def finish(config, instance: Path) -> None:
    """Fill the values that derive from the instance folder."""
    if not config.get("SECRET_KEY"):
        config["SECRET_KEY"] = read_or_create_secret(
            instance / "secret_key", lambda: secrets.token_hex(32).encode()
        ).decode()
    if not config.get("FERNET_KEY"):
        config["FERNET_KEY"] = read_or_create_secret(instance / "fernet.key", Fernet.generate_key)
    if not config.get("SQLALCHEMY_DATABASE_URI"):
        config["SQLALCHEMY_DATABASE_URI"] = f"sqlite:///{instance / 'hpmail.sqlite3'}"
    database = sqlite_file(config["SQLALCHEMY_DATABASE_URI"], instance)
    if database is not None:
        private_file(database)
    config.setdefault("QUEUE_FILE", str(instance / "queue.sqlite3"))
    config.setdefault("ATTACHMENT_DIR", str(instance / "attachments"))
    config.setdefault("DEMO_MAILBOX_DIR", str(instance / "demo-mailbox"))
