"""Delivery benchmark: hpmail's outbox and worker against a plain smtplib loop, same run.

    .venv/bin/python bench/delivery.py [--emails 5000] [--queue-recipients 2000]

Target: Postfix's ``smtp-sink`` on loopback, started by this script. Prints one table.
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


def rss_kb(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


class Instance:
    """A fresh hpmail instance folder with its app, database and SQLite queue."""

    def __init__(self, port: int) -> None:
        self.folder = Path(tempfile.mkdtemp(prefix="hpmail-bench-"))
        os.environ.update(
            HPMAIL_INSTANCE_PATH=str(self.folder),
            HPMAIL_DEMO="0",
            HPMAIL_SECRET_KEY="bench-secret-key",
        )
        from hpmail import create_app
        from hpmail.extensions import db

        self.app = create_app({"DEMO": False})
        self.context = self.app.app_context()
        self.context.push()
        import hpmail.outbox.tasks  # noqa: F401  (registers the task on the queue)

        db.create_all()
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

    def start_workers(self, count: int) -> list[subprocess.Popen]:
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        workers = []
        for _ in range(count):
            workers.append(
                subprocess.Popen(
                    [
                        str(CONSUMER),
                        "hpmail.worker.huey",
                        "-w",
                        "1",
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
        time.sleep(2.5)  # let them import the app (not part of the measure)
        return workers

    def close(self) -> None:
        self.db.session.remove()
        self.db.engine.dispose()
        self.context.pop()
        shutil.rmtree(self.folder, ignore_errors=True)


def end_to_end(port: int, count: int, workers: int) -> dict:
    """Rows → real consumers → SMTP → states recorded, for ``count`` one-recipient e-mails."""
    instance = Instance(port)
    try:
        mailing = instance.queue(count, dispatch=False)
        processes = instance.start_workers(workers)
        peak = [0]
        done = threading.Event()

        def sample():
            while not done.is_set():
                peak[0] = max(peak[0], *(rss_kb(p.pid) for p in processes))
                time.sleep(0.2)

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        from hpmail.outbox import api

        started = time.perf_counter()
        api.dispatch(mailing)
        while instance.sent() < count:
            time.sleep(0.05)
        elapsed = time.perf_counter() - started
        done.set()
        sampler.join()
        for process in processes:
            process.send_signal(signal.SIGINT)
        for process in processes:
            process.wait(20)
        return {"seconds": elapsed, "rss_mb": peak[0] / 1024}
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--emails", type=int, default=5000)
    parser.add_argument("--queue-recipients", type=int, default=2000)
    parser.add_argument("--queue-runs", type=int, default=5)
    arguments = parser.parse_args()
    sink, port = start_sink()
    try:
        count = arguments.emails
        # The machine is shared: the baseline runs three times around hpmail's runs (median).
        bases = [baseline(port, count)]
        one = end_to_end(port, count, 1)
        bases.append(baseline(port, count))
        two = end_to_end(port, count, 2)
        bases.append(baseline(port, count))
        # The same with answers committed every 20 e-mails instead of each (what a crash costs).
        os.environ["HPMAIL_DELIVERY_RECORD_EVERY"] = "20"
        try:
            batched = end_to_end(port, count, 1)
        finally:
            del os.environ["HPMAIL_DELIVERY_RECORD_EVERY"]
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
