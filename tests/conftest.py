"""Shared fixtures: app, db, client, login_as, factories, a real SMTP server, a browser."""

from __future__ import annotations

import gc
import itertools
import os
import shutil
from pathlib import Path

import pytest
from flask import g
from flask.testing import FlaskClient
from itsdangerous import URLSafeTimedSerializer
from jinja2 import FileSystemBytecodeCache
from sqlalchemy.util import LRUCache
from werkzeug.routing import Rule

from hpmail import create_app
from hpmail.auth.models import User
from hpmail.auth.service import create_user
from hpmail.config import sqlite_file
from hpmail.extensions import db as _db
from tests.fixtures import backend

pytest_plugins = [
    "tests.fixtures.directory",
    "tests.fixtures.smtp",
    "tests.fixtures.worker",
    "tests.fixtures.browser",
    "tests.fixtures.oauth",
    "tests.fixtures.discovery",
    "tests.fixtures.spamassassin",
]

PASSWORD = "correct horse battery"
# Hashing with scrypt is most of the cost of a test that signs in; the rule is tested apart.
FAST_HASH = "pbkdf2:sha256:1000"


class CsrfClient(FlaskClient):
    """A test client that sends a valid CSRF token with each state change, unless ``csrf=False``."""

    def open(self, *args, csrf: bool = True, **kwargs):
        method = (kwargs.get("method") or "GET").upper()
        if csrf and method not in ("GET", "HEAD", "OPTIONS"):
            headers = dict(kwargs.pop("headers", None) or {})
            headers.setdefault("X-CSRFToken", self.csrf_token())
            kwargs["headers"] = headers
        return super().open(*args, **kwargs)

    # The session cookie the last token was made for, and that token.
    _csrf_for: tuple[str, str] | None = None

    def csrf_token(self) -> str:
        """Return a token valid for this client's session (as ``csrf_token()`` would render it).

        Reading and saving the session takes a request context of its own: a test that posts
        many forms paid it for each. While the session cookie is the one the last token was made
        for, the session (hence its raw token) is the same, and so is a valid token.
        """
        app = self.application
        cookie_name = app.config["SESSION_COOKIE_NAME"]
        cookie = self.get_cookie(cookie_name)
        if cookie is not None and self._csrf_for and self._csrf_for[0] == cookie.value:
            return self._csrf_for[1]
        with self.session_transaction() as session:
            raw = session.setdefault("csrf_token", "test-csrf-raw-token")
        serializer = URLSafeTimedSerializer(app.config["SECRET_KEY"], salt="wtf-csrf-token")
        token = serializer.dumps(raw)
        cookie = self.get_cookie(cookie_name)
        self._csrf_for = (cookie.value, token) if cookie is not None else None
        return token


@pytest.fixture
def app_config(tmp_path) -> dict:
    """Config of the test app; a test or a fixture may add to it before ``app`` is built."""
    return {
        "TESTING": True,
        "PASSWORD_HASH_METHOD": FAST_HASH,
        "INSTANCE_PATH": str(tmp_path / "instance"),
        "SECRET_KEY": "test-secret-key",
        "DEMO": False,
        "QUEUE_URL": "memory",
        "HUEY_IMMEDIATE": True,
        "SERVER_NAME": None,
        "DISCOVERY_AUTOCONFIG_URLS": [],
        # Print jobs run in the request here (HUEY_IMMEDIATE): drawn in this process, they skip a
        # pool of two forked processes per job, each loading the fonts again. The pool is tested
        # by tests/documents/test_render.py, tests/letters/test_render.py and every worker test
        # that prints (a real consumer keeps the default of two processes).
        "DOCUMENT_RENDER_PROCESSES": 1,
    }


@pytest.fixture(scope="session")
def schema_file(tmp_path_factory, worker_id) -> Path | str:
    """The session's empty schema: a SQLite file, or this process's PostgreSQL database."""
    if backend.ON_POSTGRES:
        yield from postgres_database(worker_id)
        return
    yield sqlite_schema_file(tmp_path_factory)


def postgres_database(worker_id: str):
    """Make this pytest process's database with every table; each test empties it first."""
    name = backend.new_database_name(worker_id)
    url = backend.create_database(name)
    app = create_app(
        {
            "TESTING": True,
            "SECRET_KEY": "schema",
            "DEMO": False,
            "SQLALCHEMY_DATABASE_URI": url,
            "INSTANCE_PATH": str(Path(os.environ.get("TMPDIR", "/tmp")) / name),
        }
    )
    with app.app_context():
        _db.create_all()
        _db.engine.dispose()
    yield url
    backend.drop_database(name)


def sqlite_schema_file(tmp_path_factory) -> Path:
    """A database file holding every table, made once: each test starts from a copy of it."""
    folder = tmp_path_factory.mktemp("schema")
    app = create_app(
        {"TESTING": True, "INSTANCE_PATH": str(folder), "SECRET_KEY": "schema", "DEMO": False}
    )
    with app.app_context():
        _db.create_all()
        _db.engine.dispose()  # the last connection closing folds the WAL into the file
    return sqlite_file(app.config["SQLALCHEMY_DATABASE_URI"], folder)


@pytest.fixture(scope="session", autouse=True)
def url_builders_made_once():
    """Each test's app compiles the same URL rules: make each rule's URL builder once.

    Werkzeug writes and compiles a Python function per rule to build its URLs (most of the time
    of ``create_app``). Without defaults, that function depends only on the rule's parsed parts,
    so the apps of the session share it; each app still has its own rules and map.
    """
    original = Rule._compile_builder
    made: dict = {}

    def compile_builder(rule: Rule, append_unknown: bool = True):
        if rule.defaults:
            return original(rule, append_unknown)
        key = (rule.rule, tuple(rule._trace), append_unknown)
        if key not in made:
            made[key] = original(rule, append_unknown)
        return made[key]

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(Rule, "_compile_builder", compile_builder)
        yield


@pytest.fixture(scope="session")
def compiled_templates(tmp_path_factory) -> FileSystemBytecodeCache:
    """Templates compiled once for the session: each test's app still loads its own copy."""
    return FileSystemBytecodeCache(str(tmp_path_factory.mktemp("templates")))


class CompiledStatements:
    """The compiled SQL of every test engine of this pytest process, shared.

    Each test's app has a new engine whose cache of compiled statements starts empty, so every
    query was compiled again in every test: about a quarter of a plain test's time. A server's
    engine lives for days and compiles each statement once; so do the tests now. SQLAlchemy keys
    its cache by the dialect object, one per engine: here by the dialect's kind and server
    version instead, which is all that shapes the SQL of engines made from the same settings.
    """

    def __init__(self, size: int = 5000) -> None:
        self.compiled = LRUCache(size)

    @staticmethod
    def shared_key(key: tuple) -> tuple:
        dialect, *rest = key
        return (type(dialect), dialect.server_version_info, *rest)

    def get(self, key: tuple, default=None):
        return self.compiled.get(self.shared_key(key), default)

    def __setitem__(self, key: tuple, statement) -> None:
        self.compiled[self.shared_key(key)] = statement


@pytest.fixture(scope="session")
def compiled_statements() -> CompiledStatements:
    return CompiledStatements()


@pytest.fixture
def test_database(schema_file):
    """The URL of the PostgreSQL database this test has to itself, emptied (None on SQLite)."""
    if not backend.ON_POSTGRES:
        return None
    backend.empty_database(schema_file, _db.metadata)
    return schema_file


@pytest.fixture
def app(
    app_config, schema_file, test_database, compiled_templates, compiled_statements, empty_dns_port
):
    # Look-ups never reach outside: tests serve DNS and files themselves
    # (tests/fixtures/discovery.py); otherwise every look-up finds nothing, at once.
    app_config = {"DNS_SERVERS": ["127.0.0.1"], "DNS_PORT": empty_dns_port, **app_config}
    if test_database and "SQLALCHEMY_DATABASE_URI" not in app_config:  # not `on_sqlite`
        app_config = {"SQLALCHEMY_DATABASE_URI": test_database, **app_config}
        if app_config.get("QUEUE_URL") is None:  # a real queue (worker tests): Redis
            app_config["QUEUE_URL"] = backend.redis_url()
            flush_redis(app_config["QUEUE_URL"])
    app = create_app(app_config)
    app.test_client_class = CsrfClient
    app.jinja_env.bytecode_cache = compiled_templates

    # The test's app context (below) is shared by every request of the test, and so is ``g``:
    # forget the user Flask-Login cached there, as a server does between two requests.
    def forget_cached_user() -> None:
        g.pop("_login_user", None)

    app.before_request_funcs.setdefault(None, []).insert(0, forget_cached_user)
    with app.app_context():
        _db.engine.update_execution_options(compiled_cache=compiled_statements)
        create_schema(app, schema_file)
        yield app
        _db.session.remove()
        _db.engine.dispose()


def flush_redis(url: str) -> None:
    import redis

    client = redis.Redis.from_url(url)
    client.flushdb()
    client.close()


def create_schema(app, schema_file: Path | str) -> None:
    """Give the app's new SQLite file the session's schema by copy; create the tables otherwise."""
    if _db.engine.dialect.name == "postgresql":
        return  # the test's database, emptied by ``test_database``
    database = sqlite_file(app.config["SQLALCHEMY_DATABASE_URI"], Path(app.instance_path))
    copied = not backend.ON_POSTGRES  # the session's schema is a SQLite file
    if copied and database is not None and database.exists() and database.stat().st_size == 0:
        _db.engine.dispose()
        shutil.copyfile(schema_file, database)  # into the file the app made, keeping its mode
    else:
        _db.create_all()


@pytest.fixture
def db(app):
    return _db


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def make_user(db):
    """Return a factory of users: ``make_user(role="staff", login=None)``."""
    counter = iter(range(1, 100_000))

    def make(role: str = "staff", login: str | None = None, **fields) -> User:
        login = login or f"{role}{next(counter)}"
        user = create_user(
            login, fields.pop("display_name", login.title()), PASSWORD, role, **fields
        )
        db.session.commit()
        return user

    return make


@pytest.fixture
def login_as(client, make_user):
    """Return ``login_as(role_or_user)``: signs the test client in and returns the user."""

    def sign_in(who: str | User = "staff", **fields) -> User:
        user = who if isinstance(who, User) else make_user(who, **fields)
        signed_in(client, user)
        return user

    return sign_in


def signed_in(client: FlaskClient, user: User) -> FlaskClient:
    """Sign ``client`` in as ``user`` through the sign-in form; return it."""
    response = client.post("/connexion", data={"login": user.login, "password": PASSWORD})
    assert response.status_code == 302, response.text
    return client


def pytest_collection_finish(session):
    """Keep the garbage collector's full collections out of the tests' time.

    The modules, models and test functions imported so far (a few hundred thousand objects)
    live until the end: they are frozen out of the collector's reach. What the session builds
    later and keeps (the compiled SQL shared by the tests' engines, babel's locale data, pytest's
    reports) grows by thousands of objects a test, and a full collection walks all of it: with
    Python's thresholds, about 100 to 250 ms each, a fifth of the pytest processes' CPU. Here a
    full collection comes after a thousand collections of the middle generation instead of ten;
    the two young generations are collected as usual. What outlived them (a test's app, kept
    for the test's length) waits longer to be freed. Measured on the whole suite: the
    collector's time fell from 22 s to 6 s, each pytest process's peak memory rose from about
    300 to 400 MB (bench/README.md, "This round: consumers from a launcher…").
    """
    gc.collect()
    gc.freeze()
    young, middle, _full = gc.get_threshold()
    gc.set_threshold(young, middle, 1000)


def pytest_xdist_auto_num_workers(config):
    """``-n auto``: two pytest processes per core, not one.

    A third of the suite's time is spent waiting (on a consumer, an SMTP answer, the browser),
    not computing: with one process per core the cores idle meanwhile. What it gained and cost on
    the shared 2-core machine: bench/README.md, "Test suite time".
    ``PYTEST_XDIST_AUTO_NUM_WORKERS`` still decides when it is set.
    """
    if os.environ.get("PYTEST_XDIST_AUTO_NUM_WORKERS"):
        return None
    return 2 * (os.cpu_count() or 1)


def slowness(item) -> int:
    """0 for a test with a real consumer, 1 for a browser test, 2 for the others."""
    names = {mark.name for mark in item.iter_markers()}
    return 0 if "worker" in names else 1 if "browser" in names else 2


def pytest_collection_modifyitems(config, items):
    """Leave the PostgreSQL run's tests to it, then deal out the slow tests."""
    if not backend.ON_POSTGRES:
        left = [item for item in items if item.get_closest_marker("postgres_run")]
        if left:
            config.hook.pytest_deselected(items=left)
            config.stash[POSTGRES_RUN_LEFT] = len(left)
            if hasattr(config, "workeroutput"):  # an xdist process: tell the controller
                config.workeroutput["postgres_run_left"] = len(left)
            items[:] = [item for item in items if not item.get_closest_marker("postgres_run")]
    deal_slow_tests(items)


POSTGRES_RUN_LEFT = pytest.StashKey[int]()


def pytest_testnodedown(node, error):
    """xdist's controller collects nothing: each process says how many tests it left out."""
    left = getattr(node, "workeroutput", {}).get("postgres_run_left", 0)
    node.config.stash[POSTGRES_RUN_LEFT] = max(left, node.config.stash.get(POSTGRES_RUN_LEFT, 0))


def pytest_terminal_summary(terminalreporter, config):
    left = config.stash.get(POSTGRES_RUN_LEFT, 0)
    if left:
        terminalreporter.write_line(
            f"{left} tests need PostgreSQL and Redis: `make test-postgres` runs them (CI does)."
        )


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """Under ``HPMAIL_TESTS_NO_SKIP`` (set by ``.ci/run``), a skipped test fails.

    A test that skips because a tool is missing proves nothing, and a green CI would hide it:
    ``.ci/run`` installs everything the suite needs, so a skip there is a missing install step.
    """
    outcome = yield
    report = outcome.get_result()
    every_test_runs = os.environ.get("HPMAIL_TESTS_NO_SKIP")
    if report.skipped and every_test_runs and not hasattr(report, "wasxfail"):
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
        report.outcome = "failed"
        report.longrepr = f"skipped where every test must run ({reason}): install what it needs"


def deal_slow_tests(items) -> None:
    """Under pytest-xdist, deal the slow tests out among the processes, spread over their runs.

    worksteal gives each process an equal run of the collection and lets an idle process take
    the second half of another's queue. The tests that wait on a real consumer or drive the
    browser (seconds each) were together, in a few files: one process ran them one after the
    other while the others, done, had nothing left to take. Dealt out like cards at the head of
    each run, every process then waited at the same time, on neighbouring tests that wait alike
    (the heartbeats' 20 s), and the cores idled for 15 s. Now each process takes a run of the
    consumers' tests (mostly waiting) and one of the browser tests (mostly computing), takes
    them in turn, spread over the first two thirds of its run, each process a step behind the
    one before: while one waits, the others compute. The runs still end with short tests, the
    ones worksteal moves.
    """
    processes = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
    if processes < 2:
        return
    consumers, browsers, others = [], [], []
    for item in items:
        (consumers, browsers, others)[slowness(item)].append(item)
    fast = iter(others)
    ordered = []
    remaining = len(items)
    for process in range(processes):
        share = remaining // (processes - process)  # what worksteal's first round sends it
        its_slow = alternate(
            share_of(consumers, process, processes), share_of(browsers, process, processes)
        )
        its_fast = list(itertools.islice(fast, max(share - len(its_slow), 0)))
        ordered += spread(its_slow, its_fast, over=2 / 3, phase=process / processes)
        remaining -= share
    items[:] = ordered + list(fast)  # what a share too full of slow tests left


def share_of(items: list, process: int, processes: int) -> list:
    """Return the process's run of ``items``, in order: neighbours (often alike) stay together."""
    return items[len(items) * process // processes : len(items) * (process + 1) // processes]


def alternate(first: list, second: list) -> list:
    """Return the items of both lists taken in turn, the rest of the longer one at the end."""
    merged = [item for pair in zip(first, second, strict=False) for item in pair]
    shorter = min(len(first), len(second))
    return merged + first[shorter:] + second[shorter:]


def spread(few: list, many: list, *, over: float, phase: float = 0) -> list:
    """Return ``many`` with ``few`` put in at even steps over its first ``over`` part, in order.

    ``phase`` (from 0 to 1) moves every one of them that part of a step later.
    """
    step = len(many) * over / max(len(few), 1)
    merged, taken = [], 0
    for index, item in enumerate(few):
        upto = max(taken, round((index + phase) * step))
        merged += many[taken:upto]
        taken = upto
        merged.append(item)
    return merged + many[taken:]
