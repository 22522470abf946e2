"""Delivery benchmark: hpmail's outbox and worker against a plain smtplib loop, same run.

    .venv/bin/python bench/delivery.py [--emails 5000] [--queue-recipients 2000]

    eval $(bash .ci/services env)   # the running PostgreSQL and Redis (or --postgres, --redis)
    .venv/bin/python bench/delivery.py --scale-out [--emails 20000] [--runs pg-2,pg-4]

Target: Postfix's ``smtp-sink`` on loopback, started by this script. Prints one table.
``--scale-out`` compares SQLite with PostgreSQL + Redis: each PostgreSQL run has a database of its
own, made and dropped here; the queue is Redis database 0 (the tests use 1 to 63).
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import smtplib
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid
from functools import partial
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
CONSUMER = Path(sys.executable).with_name("huey_consumer")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_sink() -> tuple[subprocess.Popen, int]:
    """Start ``smtp-sink`` on a loopback port; return the process and the port."""
    binary = shutil.which("smtp-sink") or "/usr/sbin/smtp-sink"
    port = free_port()
    command = [binary, "-c", f"127.0.0.1:{port}", "1000"]
    if os.geteuid() == 0:
        command[1:1] = ["-u", "nobody"]
    sink = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    for _ in range(100):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return sink, port
        except OSError:
            time.sleep(0.05)
    raise SystemExit("smtp-sink did not start")


def baseline(port: int, count: int) -> float:
    """A plain loop: build an EmailMessage and send it over one smtplib connection."""
    started = time.perf_counter()
    with smtplib.SMTP("127.0.0.1", port, local_hostname="localhost") as smtp:
        for index in range(count):
            message = EmailMessage()
            message["From"] = "Secrétariat <secretariat@lycee-demo.fr>"
            message["To"] = f"Élève {index} <eleve{index}@example.org>"
            message["Subject"] = "Emploi du temps de la semaine"
            message["Date"] = format_datetime(time_now())
            message["Message-ID"] = make_msgid(domain="lycee-demo.fr")
            message.set_content("Bonjour,\n\nvoici votre emploi du temps de la semaine.\n")
            smtp.sendmail(
                "secretariat@lycee-demo.fr", [f"eleve{index}@example.org"], message.as_bytes()
            )
    return time.perf_counter() - started


def time_now():
    from datetime import UTC, datetime

    return datetime.now(UTC)


def cpu_seconds(pid: int) -> float:
    """Return the CPU time (user + system) process ``pid`` has used so far, 0 once it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_kb(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


class Instance:
    """A fresh hpmail instance folder with its app, database and queue.

    SQLite and the SQLite queue in the folder by default; with ``database_url`` and ``queue_url``
    a PostgreSQL database (already made, empty) and a Redis queue, emptied first.
    """

    def __init__(self, port: int, database_url: str = "", queue_url: str = "") -> None:
        self.folder = Path(tempfile.mkdtemp(prefix="hpmail-bench-"))
        os.environ.update(
            HPMAIL_INSTANCE_PATH=str(self.folder),
            HPMAIL_DEMO="0",
            HPMAIL_SECRET_KEY="bench-secret-key",
        )
        for name, value in (("DATABASE_URL", database_url), ("HPMAIL_QUEUE_URL", queue_url)):
            if value:
                os.environ[name] = value
            else:
                os.environ.pop(name, None)
        from hpmail import create_app
        from hpmail.extensions import db

        self.app = create_app({"DEMO": False})
        self.context = self.app.app_context()
        self.context.push()
        import hpmail.outbox.tasks  # noqa: F401  (registers the task on the queue)

        db.create_all()
        if queue_url:
            from hpmail.queue import huey

            huey.flush()  # what an earlier run left in the queue
        from hpmail.outbox.models import Transport
        from hpmail.outbox.settings import server_settings

        settings = server_settings()
        settings.transport = Transport(host="127.0.0.1", port=port, security="none")
        settings.sender_name = "Lycée Démo"
        settings.sender_address = "ne-pas-repondre@lycee-demo.fr"
        settings.allowed_domains = "lycee-demo.fr"
        db.session.commit()
        self.db = db

    def queue(self, recipients: int, dispatch: bool):
        """Queue one mailing of one-recipient e-mails, commit, and dispatch it when asked."""
        from hpmail.outbox import api

        mailing = api.queue_mailing(
            author_id=None,
            sender=api.Sender("ne-pas-repondre@lycee-demo.fr", "Lycée Démo"),
            subject="Emploi du temps de la semaine",
            text_body="Bonjour,\n\nvoici votre emploi du temps de la semaine.\n",
            emails=[
                api.EmailSpec(to=[api.Address(f"eleve{i}@example.org", f"Élève {i}")])
                for i in range(recipients)
            ],
        )
        self.db.session.commit()
        if dispatch:
            api.dispatch(mailing)
        return mailing

    def sent(self) -> int:
        from sqlalchemy import func, select

        from hpmail.outbox.models import EmailState, OutboundEmail

        self.db.session.rollback()
        return self.db.session.scalar(
            select(func.count())
            .select_from(OutboundEmail)
            .where(OutboundEmail.state == EmailState.SENT)
        )

    def start_workers(self, count: int, threads: int = 1) -> list[subprocess.Popen]:
        """Start ``count`` consumer processes of ``threads`` worker threads each; wait for them.

        They run hpmail's worker through ``bench/delivery_worker.py``, which says when it has
        imported the app (and times each claim).
        """
        env = {**os.environ, "PYTHONPATH": str(ROOT), "BENCH_CLAIM_TIMES": str(self.folder)}
        workers = []
        for _ in range(count):
            workers.append(
                subprocess.Popen(
                    [
                        str(CONSUMER),
                        "bench.delivery_worker.huey",
                        "-w",
                        str(threads),
                        "-k",
                        "thread",
                        "-d",
                        "0.05",
                        "-m",
                        "0.2",
                        "-n",
                        "-q",
                    ],
                    cwd=ROOT,
                    env=env,
                    stdout=subprocess.DEVNULL,
                    stderr=open(self.folder / "worker.log", "ab"),  # noqa: SIM115
                )
            )
        # Let them import the app (not part of the measure).
        deadline = time.monotonic() + 120
        while len(list(self.folder.glob("ready-*"))) < count and time.monotonic() < deadline:
            time.sleep(0.1)
        time.sleep(0.5)  # the consumer starts its threads after the import
        return workers

    def server_pids(self) -> list[int]:
        """Return the PostgreSQL server processes serving this instance's database, if any."""
        from sqlalchemy import text

        if self.db.engine.dialect.name != "postgresql":
            return []
        self.db.session.rollback()
        return list(
            self.db.session.scalars(
                text(
                    "SELECT pid FROM pg_stat_activity WHERE datname = current_database()"
                    " AND pid <> pg_backend_pid()"
                )
            )
        )

    def claim_times(self) -> list[float]:
        """Return how long each claim() of the timed workers took, in seconds."""
        return [
            float(line.split()[0])
            for path in self.folder.glob("claims-*.txt")
            for line in path.read_text().splitlines()
            if line
        ]

    def close(self) -> None:
        self.db.session.remove()
        self.db.engine.dispose()
        self.context.pop()
        for name in ("DATABASE_URL", "HPMAIL_QUEUE_URL"):
            os.environ.pop(name, None)
        shutil.rmtree(self.folder, ignore_errors=True)


def end_to_end(
    port: int,
    count: int,
    workers: int,
    threads: int = 1,
    database_url: str = "",
    queue_url: str = "",
) -> dict:
    """Rows → real consumers → SMTP → states recorded, for ``count`` one-recipient e-mails.

    ``workers`` consumer processes of ``threads`` threads each; ``claims`` lists how long each
    claim() took in them.
    """
    instance = Instance(port, database_url, queue_url)
    try:
        mailing = instance.queue(count, dispatch=False)
        processes = instance.start_workers(workers, threads)
        peak = [0]
        done = threading.Event()

        def sample():
            while not done.is_set():
                peak[0] = max(peak[0], *(rss_kb(p.pid) for p in processes))
                time.sleep(0.2)

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        from hpmail.outbox import api

        cpu_before = sum(cpu_seconds(p.pid) for p in processes)
        started = time.perf_counter()
        api.dispatch(mailing)
        while instance.sent() < count:
            time.sleep(0.05)
        elapsed = time.perf_counter() - started
        # The workers' CPU time, and their database server processes' (on PostgreSQL: each
        # connection is a process; they started with the run, so all of their time is the run's).
        worker_cpu = sum(cpu_seconds(p.pid) for p in processes) - cpu_before
        server_cpu = sum(cpu_seconds(pid) for pid in instance.server_pids())
        done.set()
        sampler.join()
        for process in processes:
            process.send_signal(signal.SIGINT)
        for process in processes:
            process.wait(20)
        return {
            "seconds": elapsed,
            "rss_mb": peak[0] / 1024,
            "claims": instance.claim_times(),
            "cpu_ms": (worker_cpu + server_cpu) * 1000 / count,
            "server_cpu_ms": server_cpu * 1000 / count,
        }
    finally:
        instance.close()


def queue_request(port: int, recipients: int, runs: int) -> list[float]:
    """Time queue_mailing + commit + dispatch (delegated) of one mailing, ``runs`` times."""
    instance = Instance(port)
    try:
        timings = []
        for _ in range(runs):
            started = time.perf_counter()
            instance.queue(recipients, dispatch=True)
            timings.append(time.perf_counter() - started)
        return timings
    finally:
        instance.close()


def compose_request(port: int, recipients: int, runs: int) -> list[float] | str:
    """Time POST /e-mail/nouveau (the composer's send) to a selection of ``recipients`` students.

    One e-mail per recipient (the heaviest case: as many rows as recipients). Return the
    timings, or why the route could not be measured.
    """
    instance = Instance(port)
    try:
        from hpmail.accounts.models import Account, AccountKind, MailSettings
        from hpmail.auth.service import create_user
        from hpmail.core.time import utcnow
        from hpmail.directory.models import Person
        from hpmail.directory.selection import create_selection

        db = instance.db
        instance.app.config["WTF_CSRF_ENABLED"] = False
        user = create_user("bench", "Banc d'essai", "bench-password", "staff")
        db.session.flush()
        account = Account(
            kind=AccountKind.PERSONAL,
            label="Banc",
            display_name="Banc d'essai",
            address="bench@lycee-demo.fr",
            owner_id=user.id,
            verified_at=utcnow(),
        )
        db.session.add(account)
        db.session.flush()
        db.session.add(MailSettings(user_id=user.id, account_id=account.id))
        people = [
            Person(
                kind="student",
                last_name=f"Nom{i}",
                first_name=f"Prénom{i}",
                email=f"eleve{i}@example.org",
                email_status="valid",
            )
            for i in range(recipients)
        ]
        db.session.add_all(people)
        db.session.commit()
        client = instance.app.test_client()
        signed_in = client.post("/connexion", data={"login": "bench", "password": "bench-password"})
        if signed_in.status_code != 302:
            return f"sign-in answered {signed_in.status_code}"
        timings = []
        for _ in range(runs):
            token = create_selection(user, [p.id for p in people]).token
            db.session.commit()
            form = {
                "selection": token,
                "kinds": ["student"],
                "subject": "Emploi du temps de la semaine",
                "body": "<p>Bonjour,</p><p>voici votre emploi du temps.</p>",
                "account_id": str(account.id),
                "one_per_recipient": "1",
            }
            started = time.perf_counter()
            response = client.post("/e-mail/nouveau", data=form)
            timings.append(time.perf_counter() - started)
            if response.status_code != 303:  # sent, then redirected to its confirmation
                return f"the composer answered {response.status_code}"
        from sqlalchemy import func, select

        from hpmail.outbox.models import OutboundEmail

        queued = db.session.scalar(select(func.count()).select_from(OutboundEmail))
        if queued != recipients * runs:
            return f"the composer queued {queued} e-mails, not {recipients * runs}"
        return timings
    except Exception as error:  # the composer belongs to another feature: say why, go on
        return f"{type(error).__name__}: {error}"
    finally:
        instance.close()


def on_postgres(port: int, count: int, workers: int, threads: int, server: str, queue: str):
    """``end_to_end`` in a PostgreSQL database of its own on ``server``, dropped afterwards."""
    from tests.fixtures import backend

    name = backend.new_database_name("bench")
    url = backend.create_database(name, server)
    try:
        return end_to_end(port, count, workers, threads, database_url=url, queue_url=queue)
    finally:
        backend.drop_database(name, server)


def recording_every(every: int, run):
    """``run()`` with the workers committing answers every ``every`` e-mails."""
    os.environ["HPMAIL_DELIVERY_RECORD_EVERY"] = str(every)
    try:
        return run()
    finally:
        del os.environ["HPMAIL_DELIVERY_RECORD_EVERY"]


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


# The runs of ``--scale-out``, by the name ``--runs`` gives them: (label, workers, threads, every).
SCALE_OUT_RUNS = {
    "sqlite-procfile": ("SQLite + SQLite queue, 1 process --workers 2", 1, 2, 1),
    "sqlite-2": ("SQLite + SQLite queue, 2 consumer processes", 2, 1, 1),
    "pg-2x2": ("PostgreSQL + Redis, 2 processes --workers 2", 2, 2, 1),
    "pg-2": ("PostgreSQL + Redis, 2 consumer processes", 2, 1, 1),
    "pg-4": ("PostgreSQL + Redis, 4 consumer processes", 4, 1, 1),
    "pg-threads": ("PostgreSQL + Redis, 1 process --workers 4", 1, 4, 1),
    "pg-4-every-20": ("PostgreSQL + Redis, 4 processes, record every 20", 4, 1, 20),
}


def scale_out(
    port: int, count: int, server: str, queue: str, base_count: int, names: list[str]
) -> None:
    """SQLite + 2 workers against PostgreSQL + Redis with 2 and 4, the smtplib loop around them."""
    load = os.getloadavg()[0]
    runs = []
    for name in names:
        label, workers, threads, every = SCALE_OUT_RUNS[name]
        if name.startswith("sqlite"):
            run = partial(end_to_end, port, count, workers, threads)
        else:
            run = partial(on_postgres, port, count, workers, threads, server, queue)
        runs.append((label, partial(recording_every, every, run)))
    # The machine is shared: the smtplib loop runs before, between and after hpmail's runs.
    bases = [baseline(port, base_count)]
    results = []
    for index, (name, run) in enumerate(runs):
        results.append((name, run()))
        if index % 2:
            bases.append(baseline(port, base_count))
    bases.append(baseline(port, base_count))
    rate = base_count / statistics.median(bases)
    base = count / rate
    print(
        f"\n{count} one-recipient e-mails to smtp-sink on 127.0.0.1, end to end (queued rows → "
        f"huey_consumer → smtp-sink → states committed); {os.cpu_count()} cores, load average "
        f"{load:.1f} at the start, {os.getloadavg()[0]:.1f} at the end\n"
    )
    print(
        f"| {'run':<48} | {'seconds':>7} | {'e-mails/s':>9} | {'vs baseline':>11} "
        f"| {'CPU/e-mail':>10} | {'of it, DB':>9} | {'claim median':>12} | {'claim p99':>9} "
        f"| {'worker RSS':>10} |"
    )
    print(
        f"|{'-' * 50}|{'-' * 9}|{'-' * 11}|{'-' * 13}|{'-' * 12}|{'-' * 11}|{'-' * 14}"
        f"|{'-' * 11}|{'-' * 12}|"
    )
    print(
        f"| {'baseline: EmailMessage + smtplib, median of ' + str(len(bases)):<48} "
        f"| {base:>7.1f} | {rate:>9.0f} | {1:>10.2f}× | {'':>10} | {'':>9} | {'':>12} "
        f"| {'':>9} | {'':>10} |"
    )
    for name, result in results:
        claims = result["claims"]
        print(
            f"| {name:<48} | {result['seconds']:>7.1f} | {count / result['seconds']:>9.0f} "
            f"| {count / result['seconds'] / rate:>10.2f}× | {result['cpu_ms']:>7.2f} ms "
            f"| {result['server_cpu_ms']:>6.2f} ms "
            f"| {statistics.median(claims) * 1000:>9.1f} ms "
            f"| {percentile(claims, 0.99) * 1000:>6.1f} ms | {result['rss_mb']:>7.0f} MB |"
        )
    print(
        f"\nBaseline runs ({base_count} e-mails each, s): "
        + ", ".join(f"{seconds:.1f}" for seconds in bases)
        + "; claims per run: "
        + ", ".join(str(len(result["claims"])) for _name, result in results)
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--emails", type=int, default=None, help="5000, or 20000 with --scale-out")
    parser.add_argument("--queue-recipients", type=int, default=2000)
    parser.add_argument("--queue-runs", type=int, default=5)
    parser.add_argument("--scale-out", action="store_true", help="SQLite against PostgreSQL")
    parser.add_argument("--baseline-emails", type=int, default=5000, help="with --scale-out")
    parser.add_argument(
        "--runs",
        default="sqlite-2,pg-2,pg-4,pg-threads,pg-4-every-20",
        help=f"with --scale-out, among {', '.join(SCALE_OUT_RUNS)}",
    )
    parser.add_argument("--postgres", default=os.environ.get("HPMAIL_TEST_POSTGRES", ""))
    parser.add_argument("--redis", default=os.environ.get("HPMAIL_TEST_REDIS", ""))
    arguments = parser.parse_args()
    if arguments.scale_out:
        if not (arguments.postgres and arguments.redis):
            raise SystemExit("--scale-out needs --postgres and --redis (.ci/services env)")
        sink, port = start_sink()
        try:
            queue = f"{arguments.redis.rsplit('/', 1)[0]}/0"
            count = arguments.emails or 20_000
            base_count = min(count, arguments.baseline_emails)
            names = arguments.runs.split(",")
            unknown = set(names) - set(SCALE_OUT_RUNS)
            if unknown:
                raise SystemExit(f"--runs: unknown {', '.join(sorted(unknown))}")
            scale_out(port, count, arguments.postgres, queue, base_count, names)
        finally:
            sink.terminate()
            sink.wait()
        return
    sink, port = start_sink()
    try:
        count = arguments.emails or 5000
        # The machine is shared: the baseline runs three times around hpmail's runs (median).
        bases = [baseline(port, count)]
        one = end_to_end(port, count, 1)
        bases.append(baseline(port, count))
        two = end_to_end(port, count, 2)
        bases.append(baseline(port, count))
        # The same with answers committed every 20 e-mails instead of each (what a crash costs).
        batched = recording_every(20, partial(end_to_end, port, count, 1))
        base = statistics.median(bases)
        queued = queue_request(port, arguments.queue_recipients, arguments.queue_runs)
        composed = compose_request(port, arguments.queue_recipients, arguments.queue_runs)
    finally:
        sink.terminate()
        sink.wait()

    rate = count / base
    rows = [
        ("baseline: EmailMessage + smtplib (median of 3)", base, rate, 1.0, "", ""),
        (
            "hpmail, 1 worker (rows→SMTP→states)",
            one["seconds"],
            count / one["seconds"],
            count / one["seconds"] / rate,
            f"{one['rss_mb']:.0f} MB",
            "≥ 0.6×, < 200 MB",
        ),
        (
            "hpmail, 2 workers",
            two["seconds"],
            count / two["seconds"],
            count / two["seconds"] / rate,
            f"{two['rss_mb']:.0f} MB",
            "< 200 MB each",
        ),
        (
            "hpmail, 1 worker, DELIVERY_RECORD_EVERY=20",
            batched["seconds"],
            count / batched["seconds"],
            count / batched["seconds"] / rate,
            f"{batched['rss_mb']:.0f} MB",
            "",
        ),
    ]
    print(f"\n{count} one-recipient e-mails to smtp-sink on 127.0.0.1 ({os.cpu_count()} cores)\n")
    print(
        f"| {'run':<46} | {'seconds':>8} | {'e-mails/s':>9} | {'vs baseline':>11} "
        f"| {'worker RSS':>10} | target |"
    )
    print(f"|{'-' * 48}|{'-' * 10}|{'-' * 11}|{'-' * 13}|{'-' * 12}|--------|")
    for name, seconds, per_second, ratio, rss, target in rows:
        print(
            f"| {name:<46} | {seconds:>8.2f} | {per_second:>9.0f} | {ratio:>10.2f}× "
            f"| {rss:>10} | {target} |"
        )
    median = statistics.median(queued)
    print(
        f"\nQueue a {arguments.queue_recipients}-recipient mailing (queue_mailing + commit + "
        f"dispatch, delegated), {len(queued)} runs: median {median * 1000:.0f} ms "
        f"(min {min(queued) * 1000:.0f}, max {max(queued) * 1000:.0f}); target < 1000 ms"
    )
    if isinstance(composed, str):
        print(f"The composer's request could not be measured: {composed}")
    else:
        print(
            f"POST /e-mail/nouveau to {arguments.queue_recipients} students, one e-mail each "
            f"(Flask test client, signed in), {len(composed)} runs: median "
            f"{statistics.median(composed) * 1000:.0f} ms (min {min(composed) * 1000:.0f}, "
            f"max {max(composed) * 1000:.0f}); target < 1000 ms"
        )


if __name__ == "__main__":
    main()
