"""Per-e-mail files benchmark: a document mailing, one PDF and one inline PNG per recipient.

    .venv/bin/python bench/outbox_files.py [--emails 2000] [--chunk 200] [--runs 3]

Three figures, each beside its baseline in the same run:
- queueing: ``queue_mailing`` for the first chunk, then ``queue_more_emails`` + commit +
  ``dispatch_emails`` (delegated) per chunk, the files already stored (as the documents path does
  while rendering); baseline: the same e-mails without files. Target: 2,000 e-mails < 60 s in all.
- building: ``MailingMessages.message_bytes`` with each e-mail's own files (read from the store);
  baseline: an ``EmailMessage`` built from scratch per e-mail with the same files.
- end to end: rows → one real ``huey_consumer`` → Postfix's ``smtp-sink`` on loopback → states.
"""

from __future__ import annotations

import argparse
import os
import signal
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from delivery import Instance, start_sink  # noqa: E402  (the delivery bench's instance)

SENDER = ("ne-pas-repondre@lycee-demo.fr", "Lycée Démo")
HTML = '<p>Bonjour,</p><p>Votre emploi du temps :</p><img src="cid:document-preview">'
PNG_MAGIC = bytes.fromhex("89504e470d0a1a0a0000000d49484452")


def store_documents(count: int) -> list[tuple]:
    """Store ``count`` distinct PDFs (~60 KB) and PNGs (~40 KB); return their rows, committed."""
    from hpmail.extensions import db
    from hpmail.outbox.attachments import store_attachment

    files = []
    for index in range(count):
        pdf = store_attachment(
            b"%PDF-1.4\n" + f"emploi du temps {index}\n".encode() + os.urandom(60_000),
            "application/pdf",
        )
        png = store_attachment(PNG_MAGIC + str(index).encode() + os.urandom(40_000), "image/png")
        files.append((pdf, png))
    db.session.commit()
    return files


def specs(files: list[tuple] | None, count: int, start: int = 0) -> list:
    from hpmail.outbox import api

    emails = []
    for index in range(start, start + count):
        attachments = ()
        if files is not None:
            pdf, png = files[index]
            attachments = (
                api.AttachmentSpec(pdf, f"Emploi du temps – Élève {index}.pdf"),
                api.AttachmentSpec(png, "apercu.png", content_id=api.DOCUMENT_PREVIEW),
            )
        emails.append(
            api.EmailSpec(
                to=[api.Address(f"eleve{index}@example.org", f"Élève {index}")],
                attachments=attachments,
            )
        )
    return emails


def queue_in_chunks(instance: Instance, files, count: int, chunk: int, dispatch: bool = True):
    """Queue ``count`` e-mails in chunks, committing (and dispatching) each; return their ids."""
    from hpmail.outbox import api

    db = instance.db
    first = min(chunk, count)
    mailing = api.queue_mailing(
        author_id=None,
        sender=api.Sender(*SENDER),
        subject="Emploi du temps de la semaine",
        text_body="Bonjour,\n\nvotre emploi du temps est joint.\n",
        html_body=HTML,
        kind="document",
        emails=specs(files, first),
    )
    db.session.commit()
    ids = [email.id for email in mailing.emails]
    if dispatch:
        api.dispatch_emails(ids)
    for start in range(first, count, chunk):
        more = api.queue_more_emails(mailing, specs(files, min(chunk, count - start), start))
        db.session.commit()
        if dispatch:
            api.dispatch_emails(more)
        ids += more
    return ids


def timed_queueing(instance: Instance, files, count: int, chunk: int, runs: int) -> list[float]:
    timings = []
    for _ in range(runs):
        started = time.perf_counter()
        queue_in_chunks(instance, files, count, chunk)
        timings.append(time.perf_counter() - started)
    return timings


def naive_message(index: int, pdf: bytes, png: bytes) -> bytes:
    """The baseline: one ``EmailMessage`` built from scratch for the e-mail, with its files."""
    from email.message import EmailMessage
    from email.utils import make_msgid

    message = EmailMessage()
    message["From"] = "Lycée Démo <ne-pas-repondre@lycee-demo.fr>"
    message["To"] = f"Élève {index} <eleve{index}@example.org>"
    message["Subject"] = "Emploi du temps de la semaine"
    message["Message-ID"] = make_msgid(domain="lycee-demo.fr")
    message.set_content("Bonjour,\n\nvotre emploi du temps est joint.\n")
    cid = make_msgid(domain="lycee-demo.fr")
    message.add_alternative(HTML.replace("cid:document-preview", "cid:" + cid[1:-1]), "html")
    message.get_payload()[-1].add_related(png, "image", "png", cid=cid, filename="apercu.png")
    message.add_attachment(pdf, "application", "pdf", filename=f"Emploi du temps {index}.pdf")
    return message.as_bytes()


def building(instance: Instance, files, count: int) -> tuple[float, float]:
    """Return the seconds to build ``count`` messages with their own files, and the baseline's."""
    from hpmail.outbox.attachments import read_attachment
    from hpmail.outbox.models import OutboundEmail
    from hpmail.outbox.send import _load, messages_of, own_parts

    ids = queue_in_chunks(instance, files, count, count, dispatch=False)
    pending = _load(ids)
    builder = messages_of(instance.db.session.get(OutboundEmail, ids[0]).mailing)
    to = [("Élève", "eleve@example.org")]
    started = time.perf_counter()
    for email in pending:
        builder.message_bytes(email.message_id, to, (), own_parts(email))
    own = time.perf_counter() - started
    started = time.perf_counter()
    for index, (pdf, png) in enumerate(files[:count]):
        naive_message(index, read_attachment(pdf), read_attachment(png))
    naive = time.perf_counter() - started
    return own, naive


def end_to_end(instance: Instance, files, count: int) -> float:
    """Return the seconds one real worker takes to send ``count`` document e-mails."""
    from hpmail.outbox import api

    ids = queue_in_chunks(instance, files, count, count, dispatch=False)
    processes = instance.start_workers(1)
    started = time.perf_counter()
    api.dispatch_emails(ids)
    while instance.sent() < count:
        time.sleep(0.1)
    elapsed = time.perf_counter() - started
    for process in processes:
        process.send_signal(signal.SIGINT)
    for process in processes:
        process.wait(20)
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--emails", type=int, default=2000)
    parser.add_argument("--chunk", type=int, default=200)
    parser.add_argument("--runs", type=int, default=3)
    arguments = parser.parse_args()
    count = arguments.emails
    sink, port = start_sink()
    try:
        instance = Instance(port)
        try:
            files = store_documents(count)
            plain = timed_queueing(instance, None, count, arguments.chunk, arguments.runs)
            with_files = timed_queueing(instance, files, count, arguments.chunk, arguments.runs)
            own, naive = building(instance, files, count)
        finally:
            instance.close()
        instance = Instance(port)
        try:
            files = store_documents(count)
            sent = end_to_end(instance, files, count)
        finally:
            instance.close()
    finally:
        sink.terminate()
        sink.wait()

    chunked = (
        f"queue in chunks of {arguments.chunk} + commit + dispatch (median of {arguments.runs})"
    )
    rows = [
        (
            chunked,
            f"{statistics.median(with_files):.2f} s",
            f"no files {statistics.median(plain):.2f} s",
            "< 60 s",
        ),
        (
            "build each message with its own files",
            f"{own:.2f} s",
            f"EmailMessage each {naive:.2f} s",
            "",
        ),
        (
            "end to end, 1 worker, to smtp-sink",
            f"{count / sent:.0f} e-mails/s",
            f"{sent:.1f} s in all",
            "",
        ),
    ]
    print(f"\n{count} document e-mails (one PDF ~60 KB + one inline PNG ~40 KB each)\n")
    print(f"| {'measure':<66} | {'result':>14} | {'baseline (same run)':>24} | target |")
    print(f"|{'-' * 68}|{'-' * 16}|{'-' * 26}|--------|")
    for name, result, base, target in rows:
        print(f"| {name:<66} | {result:>14} | {base:>24} | {target} |")


if __name__ == "__main__":
    main()
