"""Scale-out on PostgreSQL + Redis: two "machines" of workers, one killed, Redis restarted.

A machine is an instance folder of its own (``HPMAIL_INSTANCE_PATH``) with two ``huey_consumer``
processes of one worker thread each: separate processes, as on separate machines, and so that a
kill takes every worker of the machine at once. The machines share only what a deployment on
several machines shares: the PostgreSQL database, the Redis queue, the secret and Fernet keys
(passed by environment, as the deployment guide says), and the attachments folder (a network
folder in a real deployment: the mailing carries a file, so the workers must read it there).

The queue is a Redis server of the test's own, on a free port, so that restarting it disturbs no
other test running at the same time; it keeps nothing on disk, so the restart loses every task it
held and the sweeper has to find the rows again in the database.
"""

from __future__ import annotations

import collections
import re
import shutil
import signal
import subprocess
import time

import pytest
import redis
from sqlalchemy import func, select

from hpmail.outbox import api
from hpmail.outbox.attachments import store_attachment
from hpmail.outbox.models import EmailState, OutboundEmail
from hpmail.outbox.tasks import sweep
from tests.fixtures.backend import needs_postgres
from tests.fixtures.launcher import Launcher
from tests.fixtures.smtp import free_port
from tests.fixtures.worker import WORKER_SETTINGS, Worker, wait_until, worker_app_config

pytestmark = [
    pytest.mark.worker,
    needs_postgres,
]

EMAILS = 10_000
SENDER = api.Sender("ne-pas-repondre@lycee-demo.fr", "Lycée Démo")
MESSAGE_ID = re.compile(rb"^Message-ID:\s*(<[^>\r\n]+>)", re.MULTILINE | re.IGNORECASE)
# Long enough that a living worker renews its lease however loaded the machine, short enough
# that the killed machine's rows come back soon when no heartbeat releases them earlier.
LEASE_SECONDS = 8
SWEEP_SECONDS = 5
# The test waits as long as the e-mails keep arriving: a loaded machine is slow, not stuck.
STALLED_SECONDS = 60


class RedisServer:
    """A ``redis-server`` of the test's own on a loopback port, keeping nothing on disk."""

    def __init__(self, folder) -> None:
        self.folder = folder
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.process: subprocess.Popen | None = None

    def start(self) -> RedisServer:
        binary = shutil.which("redis-server") or "/usr/bin/redis-server"
        self.process = subprocess.Popen(
            [binary, "--bind", "127.0.0.1", "--port", str(self.port), "--save", ""]
            + ["--appendonly", "no", "--dir", str(self.folder)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wait_until(self.answers, timeout=10, message="redis-server did not start")
        return self

    def answers(self) -> bool:
        client = redis.Redis.from_url(self.url, socket_timeout=0.5)
        try:
            return bool(client.ping())
        except redis.RedisError:
            return False
        finally:
            client.close()

    def run_id(self) -> str:
        client = redis.Redis.from_url(self.url)
        try:
            return client.info("server")["run_id"]
        finally:
            client.close()

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(10)

    def restart(self) -> None:
        self.stop()
        self.start()


@pytest.fixture
def own_redis(tmp_path):
    server = RedisServer(tmp_path).start()
    yield server
    server.stop()


@pytest.fixture
def app_config(tmp_path, own_redis):
    return worker_app_config(
        tmp_path,
        QUEUE_URL=own_redis.url,
        ATTACHMENT_DIR=str(tmp_path / "shared-attachments"),
        DELIVERY_LEASE_SECONDS=LEASE_SECONDS,
        DELIVERY_BATCH_SIZE=200,  # as in production: 50 tasks for the mailing
        # The sweeper re-enqueues every queued row older than the grace, even one whose task is
        # still waiting in the queue: sweeping every SWEEP_SECONDS with a grace as long, as in
        # production (a minute each), keeps those extra tasks few.
        DELIVERY_QUEUED_GRACE_SECONDS=SWEEP_SECONDS,
        DELIVERY_RECORD_EVERY=1,  # the default: each answer committed as it comes
    )


class Machine:
    """Two consumer processes on an instance folder of their own."""

    def __init__(self, launcher: Launcher, name: str, folder, settings: dict) -> None:
        folder.mkdir()
        self.launcher = launcher
        self.name = name
        self.folder = str(folder)
        self.settings = settings
        self.workers: list[Worker] = []

    def start(self) -> Machine:
        self.workers += [
            Worker(self.launcher, self.folder, self.settings).start() for _ in range(2)
        ]
        return self

    def wait_ready(self) -> None:
        for worker in self.workers:
            worker.wait_ready(timeout=120)  # four imports at once on a loaded machine

    def kill(self) -> None:
        for worker in self.workers:
            worker.kill()

    def ask_to_stop(self) -> None:
        """Send SIGINT to each living worker without waiting: the machines stop side by side."""
        for worker in self.workers:
            if worker.process.poll() is None:
                worker.process.send_signal(signal.SIGINT)

    def stop(self) -> None:
        for worker in self.workers:
            try:
                worker.process.wait(10)
            except subprocess.TimeoutExpired:
                worker.kill()

    def log_text(self) -> str:
        return "".join(worker.log_text() for worker in self.workers)


def shared_settings(app) -> dict:
    """What both machines are given: the database, the queue, the keys, the attachments folder."""
    settings = {
        name: value
        for name, value in app.config.items()
        if name in WORKER_SETTINGS or name.startswith("DELIVERY")
    }
    fernet_key = app.config["FERNET_KEY"]
    settings.update(
        SQLALCHEMY_DATABASE_URI=app.config["SQLALCHEMY_DATABASE_URI"],
        QUEUE_URL=app.config["QUEUE_URL"],
        FERNET_KEY=fernet_key.decode() if isinstance(fernet_key, bytes) else fernet_key,
        ATTACHMENT_DIR=app.config["ATTACHMENT_DIR"],
    )
    return settings


def sent_count(db) -> int:
    db.session.rollback()  # a new snapshot: the workers write from other processes
    return db.session.scalar(
        select(func.count())
        .select_from(OutboundEmail)
        .where(OutboundEmail.state == EmailState.SENT)
    )


def message_ids(server) -> collections.Counter:
    return collections.Counter(MESSAGE_ID.search(r.data).group(1).decode() for r in server.received)


def test_ten_thousand_emails_through_two_machines_arrive_once_despite_a_killed_machine_and_a_redis_restart(  # noqa: E501
    app, db, tmp_path, smtp_server, delivery_settings, own_redis, launcher
):
    delivery_settings(smtp_server)
    settings = shared_settings(app)
    machines = [
        Machine(launcher, name, tmp_path / f"machine-{name}", settings)
        for name in ("alpha", "beta")
    ]
    timings = {}
    started = time.monotonic()
    try:
        for machine in machines:
            machine.start()  # they import the app while the mailing is queued
        rules = store_attachment(b"%PDF-1.4 reglement interieur", "application/pdf")
        mailing, delivery = api.queue_and_dispatch(
            author_id=None,
            sender=SENDER,
            subject="Rentrée",
            text_body="Bonjour,\n\nle règlement intérieur est joint.\n",
            emails=[
                api.EmailSpec(to=[api.Address(f"eleve{i}@example.org", f"Élève {i}")])
                for i in range(EMAILS)
            ],
            attachments=[api.AttachmentSpec(rules, "reglement.pdf")],
        )
        assert delivery.queued == EMAILS
        timings["queued"] = time.monotonic() - started
        for machine in machines:
            machine.wait_ready()
        timings["workers ready"] = time.monotonic() - started
        last_sweep = time.monotonic()

        def sweeping_until(condition, message: str):
            """Wait for ``condition``, running the sweeper as a worker would, while e-mails come."""
            nonlocal last_sweep
            progress, moved_at = -1, time.monotonic()
            while not condition():
                if len(smtp_server.received) != progress:
                    progress, moved_at = len(smtp_server.received), time.monotonic()
                elif time.monotonic() - moved_at > STALLED_SECONDS + LEASE_SECONDS:
                    pytest.fail(f"{message}: {progress} received, none for {STALLED_SECONDS} s")
                if time.monotonic() - last_sweep >= SWEEP_SECONDS:
                    db.session.rollback()
                    sweep()
                    last_sweep = time.monotonic()
                time.sleep(0.2)

        killed, survivor = machines
        sweeping_until(lambda: len(smtp_server.received) >= EMAILS // 4, "no delivery")
        assert "delivered" in killed.log_text()  # the machine to kill was taking its share
        killed.kill()
        timings["alpha killed"] = time.monotonic() - started

        sweeping_until(lambda: len(smtp_server.received) >= EMAILS // 2, "no delivery after kill")
        run_id = own_redis.run_id()
        own_redis.restart()
        assert own_redis.run_id() != run_id  # a new server: every task it held is gone
        timings["redis restarted"] = time.monotonic() - started

        sweeping_until(lambda: sent_count(db) == EMAILS, "not every e-mail was sent")
        timings["all sent"] = time.monotonic() - started
        assert "delivered" in survivor.log_text()
    finally:
        for machine in machines:
            machine.ask_to_stop()
        for machine in machines:
            machine.stop()
    timings["workers stopped"] = time.monotonic() - started
    print(", ".join(f"{name} {seconds:.1f} s" for name, seconds in timings.items()))

    received = message_ids(smtp_server)
    stored = set(db.session.scalars(select(OutboundEmail.message_id)))
    assert len(stored) == EMAILS
    assert set(received) == stored  # every e-mail arrived, under the Message-ID it was given
    twice = {message_id: seen for message_id, seen in received.items() if seen > 1}
    # Only the e-mail each killed worker had in flight (sent, answer not yet committed) may
    # arrive a second time; the rest of what it had claimed is sent once, by the other machine.
    in_flight = len(killed.workers) * app.config["DELIVERY_RECORD_EVERY"]
    assert len(twice) <= in_flight, twice
    assert set(twice.values()) <= {2}, twice
    addresses = collections.Counter(tuple(r.rcpt_tos) for r in smtp_server.received)
    assert len(addresses) == EMAILS
    assert b'filename="reglement.pdf"' in smtp_server.received[-1].data
